//! Method and route ARNs of API Gateway
//! (`arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{method}/{resource path}`): the
//! method and path they name, for route matching, and the wildcard ARN covering the whole stage,
//! for cache-safe policies.

use thiserror::Error;

/// An `execute-api` ARN taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodArn {
    full: String,
    /// `full[..stage_end]` is `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}`.
    stage_end: usize,
    method: String,
    path: String,
}

/// An ARN that is not an `execute-api` method ARN.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an API Gateway method ARN (arn:…:execute-api:region:account:apiId/stage/METHOD/path)")]
pub struct ArnError(pub String);

impl MethodArn {
    /// Parses a `methodArn` (REST, HTTP API 1.0) or `routeArn` (HTTP API 2.0).
    pub fn parse(text: &str) -> Result<MethodArn, ArnError> {
        let error = || ArnError(text.to_owned());
        let mut fields = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("execute-api"), Some(region), Some(account)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(error());
        };
        let resource = fields.next().ok_or_else(error)?;
        let mut parts = resource.splitn(4, '/');
        let (Some(api_id), Some(stage), Some(method)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(error());
        };
        if [partition, region, account, api_id, stage, method]
            .iter()
            .any(|s| s.is_empty())
        {
            return Err(error());
        }
        let rest = parts.next().unwrap_or_default();
        let mut path = String::with_capacity(rest.len() + 1);
        path.push('/');
        path.push_str(rest);
        // `resource` (everything after the fifth `:`) ends the text; the stage prefix ends after
        // `{apiId}/{stage}` at its start.
        let stage_end = text.len() - resource.len() + api_id.len() + 1 + stage.len();
        Ok(MethodArn {
            full: text.to_owned(),
            stage_end,
            method: method.to_ascii_uppercase(),
            path,
        })
    }

    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The HTTP method (upper case; `*` when API Gateway's console tests send one).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The resource path, starting with `/` (not normalised).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Every method and path of the same API and stage: `arn:…:apiId/stage/*/*`.
    pub fn wildcard(&self) -> String {
        let stage_prefix = self.full.get(..self.stage_end).unwrap_or_default();
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
