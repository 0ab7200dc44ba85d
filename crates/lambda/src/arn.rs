//! Method and route ARNs of API Gateway
//! (`arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{method}/{resource path}`): the
//! method and path they name, for route matching, and the wildcard ARN covering the whole stage,
//! for cache-safe policies.

use thiserror::Error;

/// An `execute-api` ARN taken apart: the text as given, and where its parts are in it.
///
/// Invariant (the constructor's): `full[..stage_end]` is
/// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}`, then `/`, the method
/// (`full[stage_end + 1..method_end]`), and the resource path from `method_end` on (empty, or
/// starting with `/`), every part between the separators non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodArn {
    full: String,
    stage_end: usize,
    method_end: usize,
    /// The method upper-cased, when the ARN's is not already.
    upper_method: Option<String>,
}

/// An ARN that is not an `execute-api` method ARN.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an API Gateway method ARN (arn:…:execute-api:region:account:apiId/stage/METHOD/path)")]
pub struct ArnError(pub String);

/// The end of the field of `bytes` that starts at `from` and ends before `separator` (or the
/// end of the text when `last`); `None` when it is empty or the separator is missing.
fn field_end(bytes: &[u8], from: usize, separator: u8, last: bool) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let end = match rest.iter().position(|&b| b == separator) {
        Some(length) => from + length,
        None if last => bytes.len(),
        None => return None,
    };
    (end > from).then_some(end)
}

impl MethodArn {
    /// Parses a `methodArn` (REST, HTTP API 1.0) or `routeArn` (HTTP API 2.0).
    pub fn parse(text: &str) -> Result<MethodArn, ArnError> {
        let error = || ArnError(text.to_owned());
        let bytes = text.as_bytes();
        let prefix = b"arn:";
        if !bytes.starts_with(prefix) {
            return Err(error());
        }
        let partition_end = field_end(bytes, prefix.len(), b':', false).ok_or_else(error)?;
        let service = b":execute-api:";
        if bytes.get(partition_end..partition_end + service.len()) != Some(service) {
            return Err(error());
        }
        let region_end =
            field_end(bytes, partition_end + service.len(), b':', false).ok_or_else(error)?;
        let account_end = field_end(bytes, region_end + 1, b':', false).ok_or_else(error)?;
        let api_end = field_end(bytes, account_end + 1, b'/', false).ok_or_else(error)?;
        let stage_end = field_end(bytes, api_end + 1, b'/', false).ok_or_else(error)?;
        let method_end = field_end(bytes, stage_end + 1, b'/', true).ok_or_else(error)?;
        let method = text.get(stage_end + 1..method_end).ok_or_else(error)?;
        let upper_method = method
            .bytes()
            .any(|b| b.is_ascii_lowercase())
            .then(|| method.to_ascii_uppercase());
        Ok(MethodArn {
            full: text.to_owned(),
            stage_end,
            method_end,
            upper_method,
        })
    }

    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The HTTP method (upper case; `*` when API Gateway's console tests send one).
    pub fn method(&self) -> &str {
        match &self.upper_method {
            Some(upper) => upper,
            None => self
                .full
                .get(self.stage_end + 1..self.method_end)
                .unwrap_or_default(),
        }
    }

    /// The resource path, starting with `/` (not normalised).
    pub fn path(&self) -> &str {
        match self.full.get(self.method_end..) {
            Some(path) if !path.is_empty() => path,
            _ => "/",
        }
    }

    /// `arn:…:apiId/stage`: the ARN up to its stage.
    pub fn stage_prefix(&self) -> &str {
        self.full.get(..self.stage_end).unwrap_or_default()
    }

    /// Every method and path of the same API and stage: `arn:…:apiId/stage/*/*`.
    pub fn wildcard(&self) -> String {
        let stage_prefix = self.stage_prefix();
        let mut wildcard = String::with_capacity(stage_prefix.len() + 4);
        wildcard.push_str(stage_prefix);
        wildcard.push_str("/*/*");
        wildcard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_method_and_path() {
        let arn = MethodArn::parse(
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request/a/b",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(arn.method(), "GET");
        assert_eq!(arn.path(), "/request/a/b");
        assert_eq!(
            arn.wildcard(),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
        );
        let root = MethodArn::parse("arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/GET/")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(root.path(), "/");
        assert_eq!(
            root.wildcard(),
            "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/*/*"
        );
        let china =
            MethodArn::parse("arn:aws-cn:execute-api:cn-north-1:123456789012:api/$default/POST")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(china.path(), "/");
        assert_eq!(
            china.wildcard(),
            "arn:aws-cn:execute-api:cn-north-1:123456789012:api/$default/*/*"
        );
    }

    #[test]
    fn refuses_other_arns() {
        for bad in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123",
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test",
            "arn:aws:execute-api::123456789012:abcdef123/test/GET/x",
            "not an arn",
        ] {
            assert!(MethodArn::parse(bad).is_err(), "{bad}");
        }
    }
}
