//! Cache and fetch settings, each with a documented default and the reason for it.

use std::time::Duration;
use thiserror::Error;

/// How keys are fetched and cached. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    /// Shortest time keys are kept, whatever `Cache-Control` says (default 5 min): a provider that
    /// sends `max-age=0` must not make every request wait for a fetch.
    pub min_ttl: Duration,
    /// Longest time keys are kept (default 24 h): a provider's removal of a compromised key takes
    /// effect within a day even if it advertised a longer lifetime.
    pub max_ttl: Duration,
    /// Lifetime when the response has no usable `Cache-Control: max-age` (default 10 min, as jose
    /// and express-oauth2-jwt-bearer use).
    pub default_ttl: Duration,
    /// Fraction of the lifetime after which a request triggers a background refresh while the keys
    /// are still fresh (default 0.8): keys are renewed before they expire, never on the request path.
    pub refresh_ahead: f64,
    /// Minimum time between two unknown-`kid` refreshes, and the wait after a failed fetch (default
    /// 30 s): invented `kid`s cannot make jwtgate hammer the provider.
    pub cooldown: Duration,
    /// How long keys stay in use after their lifetime when refreshing keeps failing (default 24 h):
    /// a provider outage does not become an outage of every API behind jwtgate.
    pub max_stale: Duration,
    /// Largest JWKS or discovery document accepted (default 512 KiB; real sets are a few KiB).
    pub max_body: usize,
    /// TCP/TLS connect timeout (default 2 s).
    pub connect_timeout: Duration,
    /// Timeout for a whole fetch, body included (default 5 s).
    pub total_timeout: Duration,
    /// Redirects followed (default 3).
    pub max_redirects: usize,
    /// Allow `http://` URLs to hosts other than loopback (default false: keys fetched over plain
    /// HTTP from the network could be replaced by anyone on the path).
    pub allow_insecure_http: bool,
    /// `User-Agent` sent with every fetch.
    pub user_agent: String,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            min_ttl: Duration::from_secs(5 * 60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(10 * 60),
            refresh_ahead: 0.8,
            cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            max_body: 512 * 1024,
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            max_redirects: 3,
            allow_insecure_http: false,
            user_agent: concat!("jwtgate/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Settings that cannot work together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    /// `min_ttl` is greater than `max_ttl`.
    #[error("min_ttl ({min:?}) is greater than max_ttl ({max:?})")]
    TtlRange {
        /// The minimum.
        min: Duration,
        /// The maximum.
        max: Duration,
    },
    /// `refresh_ahead` is not in (0, 1].
    #[error("refresh_ahead must be in (0, 1], not {0}")]
    RefreshAhead(String),
    /// A timeout or limit is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl CacheSettings {
    /// Checks the settings are consistent.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.min_ttl > self.max_ttl {
            return Err(SettingsError::TtlRange {
                min: self.min_ttl,
                max: self.max_ttl,
            });
        }
        if !(self.refresh_ahead > 0.0 && self.refresh_ahead <= 1.0) {
            return Err(SettingsError::RefreshAhead(self.refresh_ahead.to_string()));
        }
        for (name, zero) in [
            ("max_body", self.max_body == 0),
            ("connect_timeout", self.connect_timeout.is_zero()),
            ("total_timeout", self.total_timeout.is_zero()),
            ("max_ttl", self.max_ttl.is_zero()),
        ] {
            if zero {
                return Err(SettingsError::Zero(name));
            }
        }
        Ok(())
    }

    /// The lifetime for a response with `max_age` (from `Cache-Control`), clamped.
    pub fn ttl_for(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.default_ttl)
            .clamp(self.min_ttl, self.max_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_max_age() {
        let s = CacheSettings::default();
        assert_eq!(
            s.ttl_for(Some(Duration::from_secs(0))),
            Duration::from_secs(300)
        );
        assert_eq!(
            s.ttl_for(Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
        assert_eq!(
            s.ttl_for(Some(Duration::from_secs(10 * 86400))),
            Duration::from_secs(86400)
        );
        assert_eq!(s.ttl_for(None), Duration::from_secs(600));
    }

    #[test]
    fn validates() {
        assert!(CacheSettings::default().validate().is_ok());
        let bad = CacheSettings {
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(5),
            ..CacheSettings::default()
        };
        assert!(bad.validate().is_err());
        let bad = CacheSettings {
            refresh_ahead: 1.5,
            ..CacheSettings::default()
        };
        assert!(bad.validate().is_err());
    }
}
