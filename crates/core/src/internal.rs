//! Building blocks jwtgate's own crates share — strict base64url, strict JSON, DER certificate
//! reading — public so the workspace uses one implementation of each, with no promise of
//! stability to anyone else. Verify tokens with [`crate::Verifier`], not with these.

pub mod base64url;
pub mod der;
pub mod json;
pub mod members;
pub mod pieces;
