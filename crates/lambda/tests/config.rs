//! Configuration from environment variables and files: every mistake fails with a message naming
//! the variable (or file and key) and what is wrong; defaults follow the routes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_engine::args::EngineArgs;
use jwtgate_engine::path::PathPolicy;
use jwtgate_lambda::config::Overrides;
use jwtgate_lambda::{HttpApiResponse, PolicyResource};

fn base() -> Overrides {
    Overrides {
        engine: EngineArgs {
            issuer: Some("https://tenant.example.com/".into()),
            audiences: vec!["https://api.example.com".into()],
            jwks_url: Some("https://tenant.example.com/.well-known/jwks.json".into()),
            ..EngineArgs::default()
        },
        ..Overrides::default()
    }
}

/// The base settings with one change.
fn with(change: impl FnOnce(&mut Overrides)) -> Overrides {
    let mut overrides = base();
    change(&mut overrides);
    overrides
}

fn error(overrides: &Overrides) -> String {
    match overrides.load(None) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn environment_only_configuration() {
    let mut o = base();
    o.engine.scopes = vec!["read:users write:users".into()];
    o.context_claims = vec!["email".into()];
    o.http_api_response = Some("IAM".into());
    o.engine.leeway = Some("30".into());
    let (config, _) = o.load(None).unwrap();
    assert_eq!(config.issuers.len(), 1);
    assert_eq!(config.issuers[0].scopes, ["read:users", "write:users"]);
    assert_eq!(config.issuers[0].leeway, 30);
    assert_eq!(config.lambda.http_api_response, HttpApiResponse::Iam);
    assert_eq!(config.effective_policy_resource(), PolicyResource::Wildcard);
    assert!(config.lambda.prefetch);

    o.engine.routes = vec![
        "GET /users read:users".into(),
        "  ".into(),
        "DELETE /users/{id} admin".into(),
    ];
    let (config, _) = o.load(None).unwrap();
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.effective_policy_resource(), PolicyResource::Method);
}

#[test]
fn environment_mistakes_name_the_variable() {
    let cases: Vec<(Overrides, &str)> = vec![
        (Overrides::default(), "environment: `issuers`: no issuer configured: set JWTGATE_ISSUER and JWTGATE_AUDIENCE"),
        (with(|o| o.engine.audiences = vec![]), "environment: `JWTGATE_AUDIENCE`: JWTGATE_ISSUER is \"https://tenant.example.com/\" but no audience is set"),
        (with(|o| o.engine.issuer = None), "environment: `JWTGATE_AUDIENCE`: JWTGATE_AUDIENCE is set but JWTGATE_ISSUER is not"),
        (with(|o| o.engine.leeway = Some("5s".into())), "environment: `JWTGATE_LEEWAY`: \"5s\" is not a number of seconds"),
        (with(|o| o.engine.algorithms = vec!["RS257".into()]), "environment: `JWTGATE_ALGORITHMS`: "),
        (with(|o| o.engine.algorithms = vec!["HS256".into()]), "environment: `JWTGATE_ALGORITHMS`: HS256 needs a shared secret"),
        (with(|o| o.engine.jwks_url = Some("http://example.com/jwks".into())), "environment: `JWTGATE_JWKS_URL`: "),
        (with(|o| o.engine.jwks_file = Some("/k.json".into())), "environment: `JWTGATE_JWKS_URL`: give jwks_url or jwks_file, not both"),
        (with(|o| o.policy_resource = Some("everything".into())), "environment: `JWTGATE_POLICY_RESOURCE`: \"everything\" is not wildcard or method"),
        (with(|o| {
            o.policy_resource = Some("wildcard".into());
            o.engine.routes = vec!["GET /a x".into()];
        }), "environment: `JWTGATE_POLICY_RESOURCE`: `wildcard` cannot be combined with per-route rules"),
        (with(|o| o.http_api_response = Some("boolean".into())), "environment: `JWTGATE_HTTP_API_RESPONSE`: \"boolean\" is not simple or iam"),
        (with(|o| o.engine.routes = vec!["GET".into()]), "environment: `JWTGATE_ROUTES`: route \"GET\" is not 'METHODS PATH [SCOPE …]'"),
        (with(|o| o.engine.routes = vec!["GET users x".into()]), "environment: `JWTGATE_ROUTES`: route pattern \"users\" must start with '/'"),
        (with(|o| o.engine.unmatched = Some("maybe".into())), "environment: `JWTGATE_UNMATCHED`: \"maybe\" is not deny, authenticated or public"),
        (with(|o| o.context_claims = vec!["scope".into()]), "environment: `JWTGATE_CONTEXT_CLAIMS`: context key \"scope\" is always set by jwtgate"),
        (with(|o| o.prefetch = Some("sometimes".into())), "environment: `JWTGATE_PREFETCH`: \"sometimes\" is not true or false"),
        (with(|o| o.engine.token_cache = Some("-1".into())), "environment: `JWTGATE_TOKEN_CACHE`: \"-1\" is not a number of entries"),
        (with(|o| o.engine.strict = Some("y".into())), "environment: `JWTGATE_STRICT`: \"y\" is not true or false"),
        (with(|o| o.engine.paths_allow_semicolon = Some("maybe".into())), "environment: `JWTGATE_PATHS_ALLOW_SEMICOLON`: \"maybe\" is not true or false"),
    ];
    for (overrides, expected) in cases {
        let message = error(&overrides);
        assert!(
            message.starts_with(expected),
            "{message:?}\nshould start with\n{expected:?}"
        );
    }
}

#[test]
fn file_with_environment_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorizer.toml");
    std::fs::write(
        &path,
        r#"
        [[issuers]]
        issuer = "https://a.example.com/"
        audiences = ["api"]
        jwks_url = "https://a.example.com/jwks"

        [[routes]]
        methods = ["GET"]
        path = "/users"
        scopes = ["read:users"]

        [keys]
        cooldown = 10

        [cache]
        capacity = 50

        [lambda]
        context_claims = ["email"]
        prefetch = false
        "#,
    )
    .unwrap();
    let overrides = with(|o| {
        o.engine.routes = vec!["POST /users write:users".into()];
        o.context_claims = vec!["name".into()];
    });
    let (config, _) = overrides.load(Some(&path)).unwrap();
    assert_eq!(config.issuers.len(), 2);
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.lambda.context_claims, ["email", "name"]);
    assert_eq!(config.cache.capacity, Some(50));
    assert!(!config.lambda.prefetch);

    // A mistake in the file names the file and the key.
    std::fs::write(
        &path,
        "[[issuers]]\nissuer = \"https://a/\"\naudiences = []\n",
    )
    .unwrap();
    let message = match Overrides::default().load(Some(&path)) {
        Err(e) => e.to_string(),
        Ok(_) => "ok".into(),
    };
    assert!(
        message.contains("authorizer.toml: `issuers[0].audiences`"),
        "{message}"
    );
    std::fs::write(&path, "[lambda]\npolicy = \"x\"\n").unwrap();
    let message = match Overrides::default().load(Some(&path)) {
        Err(e) => e.to_string(),
        Ok(_) => "ok".into(),
    };
    assert!(message.contains("unknown field `policy`"), "{message}");
    let missing = dir.path().join("absent.toml");
    let message = match Overrides::default().load(Some(&missing)) {
        Err(e) => e.to_string(),
        Ok(_) => "ok".into(),
    };
    assert!(
        message.contains("cannot read the configuration file"),
        "{message}"
    );
}

#[test]
fn path_settings_from_the_environment_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authorizer.toml");
    std::fs::write(
        &path,
        "[paths]\nallow_encoded_slash = true\nallow_semicolon = true\n",
    )
    .unwrap();
    let overrides = with(|o| {
        o.engine.paths_allow_semicolon = Some("false".into());
        o.engine.paths_allow_double_encoding = Some("true".into());
    });
    let (config, authorizer) = overrides.load(Some(&path)).unwrap();
    let expected = PathPolicy {
        allow_encoded_slash: true,
        allow_double_encoding: true,
        ..PathPolicy::default()
    };
    assert_eq!(config.paths, expected);
    assert_eq!(*authorizer.engine().path_policy(), expected);
    let (config, authorizer) = base().load(None).unwrap();
    assert_eq!(config.paths, PathPolicy::default());
    assert_eq!(*authorizer.engine().path_policy(), PathPolicy::default());
}
