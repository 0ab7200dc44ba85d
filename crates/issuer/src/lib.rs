//! # jwtgate-issuer
//!
//! A local OpenID Connect issuer for development and tests that real clients use unchanged —
//! `@auth0/auth0-spa-js`, `openid-client`, `jose` — and that issues tokens shaped like Auth0's,
//! so an SPA, a gateway and an API can run the whole login → token → API call loop offline. It
//! also reproduces a provider's sharp edges on command: key rotation, a failing JWKS endpoint,
//! the opaque access token you get without an `audience`, the ID token sent to an API.
//!
//! ## Endpoints
//!
//! | path | what |
//! | --- | --- |
//! | `/.well-known/openid-configuration`, `/.well-known/oauth-authorization-server` | metadata |
//! | `/.well-known/jwks.json` | the public keys (next, current and retiring) |
//! | `GET /authorize` | authorization code + PKCE `S256`; `response_mode` `query` or `web_message`; `prompt=none` with the issuer's session cookie, else `login_required`; `audience` or RFC 8707 `resource` |
//! | `POST /register` | RFC 7591 dynamic registration of public clients (see the `clients` module; an `https://` `client_id` is a Client ID Metadata Document) |
//! | `POST /login` | the login page's form: a configured user, or a typed name; no passwords |
//! | `POST /oauth/token` | `authorization_code` (single-use codes, PKCE), `refresh_token` (rotation, reuse detection), `client_credentials` |
//! | `GET, POST /userinfo` | profile claims for an access token |
//! | `POST /oauth/revoke` | RFC 7009 |
//! | `GET /v2/logout`, `GET, POST /oidc/logout` | end the session, return to a registered URL |
//! | `/admin/…` | operator controls, loopback only (see the `admin` module) |
//!
//! ## Tokens, as Auth0 issues them
//!
//! * `iss` is the issuer URL with its trailing slash.
//! * The access token is a JWT only when an `audience` (a configured API) was requested: `aud` =
//!   `[api, <issuer>userinfo]` when `openid` was granted (else the API alone), `azp`, `scope`
//!   (requested ∩ granted) and, with RBAC on, `permissions`; Auth0's header (`typ` `JWT`) or
//!   RFC 9068's (`typ` `at+jwt`, plus `client_id` and `jti`). Without an audience it is an
//!   **opaque** random string, usable only at `/userinfo`; `client_credentials` without an
//!   audience is refused.
//! * The ID token is RS256 with `aud` = client id, `nonce`, `at_hash`, `auth_time`, `sid` and the
//!   user's profile claims for the granted scopes.
//!
//! Signing goes through [`jwtgate_core::SigningKey`] (AWS-LC); codes, refresh tokens, session
//! cookies and key ids come from AWS-LC's CSPRNG; PKCE and `at_hash` use its SHA-256.
//!
//! ## Example
//!
//! ```
//! use jwtgate_issuer::{Config, Issuer, IssuerOptions, KeyRing, MintRequest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::new(
//!     Config::builtin()?,
//!     KeyRing::ephemeral(),
//!     IssuerOptions { public_url: Some("http://localhost:4400/".into()), ..Default::default() },
//! )?;
//! let tokens = issuer.mint(&MintRequest {
//!     user: Some("alice".into()),
//!     audience: Some("https://api.jwtgate.local/".into()),
//!     ..Default::default()
//! })?;
//! assert_eq!(tokens.access_token.split('.').count(), 3);
//! // `issuer.router()` is the axum Router; `jwtgate_issuer::serve` runs it on a listener.
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
mod authorize;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
mod dpop;
pub mod http;
mod issuer;
pub mod keyring;
mod logout;
mod pages;
mod params;
pub mod pattern;
pub mod random;
mod store;
mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Api, Client, Config, ConfigError, GrantType, IssuerSettings, TokenProfile, User};
pub use http::{exposure_warning, router, serve};
pub use issuer::{
    normalize_issuer_url, FailureStatus, Issuer, IssuerError, IssuerOptions, JwksFailure,
    MintRequest, TokenResponse,
};
pub use keyring::{KeyInfo, KeyRing, KeyRingError, KeyState};
