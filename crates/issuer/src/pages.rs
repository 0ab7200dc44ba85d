//! The issuer's HTML: the login page, the `web_message` response page, error and sign-out pages
//! and the landing page. Everything interpolated is HTML-escaped (or, inside the one script,
//! JSON-encoded with `<`, `>`, `&` escaped); every page carries a Content-Security-Policy.

use crate::config::User;
use crate::issuer::Issuer;
use crate::store::AuthRequest;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.25rem}
h1{font-size:1.35rem;margin:0 0 .25rem}p.sub{color:#5b6475;margin:0 0 1.25rem;font-size:.9rem}
.banner{background:#fff4d6;border:1px solid #f0d58a;border-radius:8px;padding:.5rem .75rem;font-size:.8rem;color:#6b5200;margin-bottom:1.25rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .9rem;font-size:.85rem;margin:0 0 1.25rem}dt{color:#5b6475}dd{margin:0;word-break:break-all}
button.user{display:block;width:100%;text-align:left;background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:.7rem .9rem;margin:.5rem 0;cursor:pointer;font:inherit}
button.user:hover{border-color:#3b5bdb;background:#f5f7ff}button.user strong{display:block}button.user span{color:#5b6475;font-size:.8rem}
.typed{display:flex;gap:.5rem;margin-top:1rem}.typed input{flex:1;padding:.55rem .7rem;border:1px solid #d5d9e0;border-radius:8px;font:inherit}
.primary{background:#3b5bdb;color:#fff;border:0;border-radius:8px;padding:.55rem 1rem;font:inherit;cursor:pointer}
.cancel{background:none;border:0;color:#5b6475;margin-top:1rem;cursor:pointer;font:inherit;text-decoration:underline}
.error{background:#ffe3e3;border:1px solid #ffa8a8;color:#862e2e;border-radius:8px;padding:.5rem .75rem;font-size:.85rem;margin-bottom:1rem}
code{background:#f1f3f5;border-radius:4px;padding:0 .25rem;font-size:.85em}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    )
}

fn html(status: StatusCode, csp: &str, frame: bool, text: String) -> Response {
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    crate::params::no_store(headers);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !frame {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

const PLAIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// A page explaining an error that cannot be sent back to the client (unknown client, bad
/// redirect URI, expired sign-in).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<div class=\"banner\">jwtgate development issuer</div><h1>{}</h1><div class=\"error\">{}</div>",
        escape(title),
        escape(message)
    );
    html(status, PLAIN_CSP, false, document(title, &body))
}

/// The page shown after `/v2/logout` or `/oidc/logout` without a return URL.
pub fn signed_out_page() -> Response {
    let body = "<div class=\"banner\">jwtgate development issuer</div><h1>Signed out</h1>\
                <p class=\"sub\">Your session at this issuer has ended.</p>";
    html(
        StatusCode::OK,
        PLAIN_CSP,
        false,
        document("Signed out", body),
    )
}

fn user_button(user: &User, audience: Option<&str>) -> String {
    let mut detail = String::new();
    if let Some(email) = &user.email {
        detail.push_str(&escape(email));
        detail.push_str(" · ");
    }
    match audience {
        Some(api) => {
            let permissions = user.permissions_for(api);
            if permissions.is_empty() {
                detail.push_str("no permissions");
            } else {
                detail.push_str(&escape(&permissions.join(" ")));
            }
        }
        None => detail.push_str(&escape(&user.sub)),
    }
    format!(
        "<button class=\"user\" type=\"submit\" name=\"user\" value=\"{}\"><strong>{}</strong><span>{}</span></button>",
        escape(&user.username),
        escape(user.name.as_deref().unwrap_or(&user.username)),
        detail
    )
}

/// The login page for a parked authorization request.
pub fn login_page(
    issuer: &Issuer,
    request: &AuthRequest,
    tx: &str,
    error: Option<&str>,
) -> Response {
    let config = issuer.config();
    let app = request
        .client_name
        .clone()
        .unwrap_or_else(|| request.client_id.clone());
    let mut body = String::new();
    body.push_str(
        "<div class=\"banner\">jwtgate development issuer — no passwords; pick who you are.</div>",
    );
    body.push_str(&format!("<h1>Sign in to {}</h1>", escape(&app)));
    body.push_str(&format!(
        "<p class=\"sub\">at <code>{}</code></p>",
        escape(issuer.url())
    ));
    if let Some(error) = error {
        body.push_str(&format!("<div class=\"error\">{}</div>", escape(error)));
    }
    body.push_str("<dl>");
    let unverified = if config.client(&request.client_id).is_some() {
        ""
    } else {
        " <em>(not configured: it described itself — check where it returns to)</em>"
    };
    body.push_str(&format!(
        "<dt>client</dt><dd>{}{unverified}</dd>",
        escape(&request.client_id)
    ));
    body.push_str(&format!(
        "<dt>audience</dt><dd>{}</dd>",
        match &request.audience {
            Some(a) => escape(a),
            None => "none — the access token will be opaque".to_owned(),
        }
    ));
    body.push_str(&format!(
        "<dt>scope</dt><dd>{}</dd>",
        escape(&request.scopes.join(" "))
    ));
    body.push_str(&format!(
        "<dt>returns to</dt><dd>{}</dd></dl>",
        escape(request.target.as_str())
    ));
    body.push_str(&format!(
        "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"tx\" value=\"{}\">",
        escape(tx)
    ));
    for user in &config.users {
        body.push_str(&user_button(user, request.audience.as_deref()));
    }
    body.push_str("</form>");
    if config.issuer.allow_any_user {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/login\" class=\"typed\"><input type=\"hidden\" name=\"tx\" value=\"{}\">\
             <input name=\"username\" placeholder=\"or type any name\" aria-label=\"user name\" \
             pattern=\"[A-Za-z0-9._@+\\-]{{1,64}}\" required><button class=\"primary\" type=\"submit\">Continue</button></form>",
            escape(tx)
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"tx\" value=\"{}\">\
         <button class=\"cancel\" type=\"submit\" name=\"cancel\" value=\"1\">Cancel</button></form>",
        escape(tx)
    ));
    let target = crate::pattern::origin_of(&request.target);
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {target}; frame-ancestors 'none'"
    );
    html(
        StatusCode::OK,
        &csp,
        false,
        document("Sign in — jwtgate issuer", &body),
    )
}

/// JSON for a `<script>`: `<`, `>` and `&` escaped, so no string can close the script element.
fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The `response_mode=web_message` page: posts `{type: "authorization_response", response}` to
/// the opener (popup) or parent (silent iframe), for `target_origin` only.
pub fn web_message_page(target_origin: &str, response: &Value) -> Response {
    let message = serde_json::json!({"type": "authorization_response", "response": response});
    let script = format!(
        "(window.opener||window.parent).postMessage({},{});",
        script_json(&message),
        script_json(&Value::String(target_origin.to_owned()))
    );
    let hash =
        base64::engine::general_purpose::STANDARD.encode(crate::random::sha256(script.as_bytes()));
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>jwtgate issuer</title></head>\
         <body><script>{script}</script></body></html>\n"
    );
    let csp =
        format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors {target_origin}");
    html(StatusCode::OK, &csp, true, page)
}

/// The landing page at `/`: what this is and where everything is.
pub fn index_page(issuer: &Issuer) -> Response {
    let config = issuer.config();
    let iss = issuer.url();
    let mut body = String::new();
    body.push_str(
        "<div class=\"banner\">jwtgate development issuer — for development and tests only.</div>",
    );
    body.push_str("<h1>jwtgate issuer</h1>");
    body.push_str(&format!(
        "<p class=\"sub\">issuer <code>{}</code></p><dl>",
        escape(iss)
    ));
    let mut endpoints = vec![
        ("discovery", ".well-known/openid-configuration"),
        ("JWKS", ".well-known/jwks.json"),
        ("authorize", "authorize"),
        ("token", "oauth/token"),
    ];
    if config.issuer.dynamic_registration {
        endpoints.push(("registration", "register"));
    }
    for (name, path) in endpoints {
        body.push_str(&format!(
            "<dt>{name}</dt><dd><code>{}{}</code></dd>",
            escape(iss),
            path
        ));
    }
    let apis: Vec<String> = config.apis.iter().map(|a| escape(&a.identifier)).collect();
    let clients: Vec<String> = config.clients.iter().map(|c| escape(&c.id)).collect();
    let users: Vec<String> = config.users.iter().map(|u| escape(&u.username)).collect();
    body.push_str(&format!("<dt>APIs</dt><dd>{}</dd>", apis.join(", ")));
    body.push_str(&format!("<dt>clients</dt><dd>{}</dd>", clients.join(", ")));
    body.push_str(&format!("<dt>users</dt><dd>{}</dd></dl>", users.join(", ")));
    html(
        StatusCode::OK,
        PLAIN_CSP,
        false,
        document("jwtgate issuer", &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let json =
            script_json(&serde_json::json!({"state": "</script><script>alert(1)</script>&"}));
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
    }
}
