//! The rules held in memory and the lookup the request path makes: at most four hash-map
//! lookups (jti; issuer then subject; `client_id`; `azp`), no allocation, no I/O.
//!
//! The maps are keyed by what a verified token carries, so the cost does not grow with the number
//! of rules (the `lookup` benchmark holds 10,000). They use the standard library's SipHash with a
//! per-process random key: rule identifiers come from operators, but lookups are keyed by claims a
//! client chose, and a keyed hash leaves nobody able to precompute colliding values.

use crate::rule::{Rule, RuleKey};
use jwtgate_core::Verified;
use std::collections::HashMap;
use std::fmt;

/// What a lookup needs from a verified token.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenFacts<'a> {
    /// `iss`.
    pub iss: &'a str,
    /// `sub`, when a string.
    pub sub: Option<&'a str>,
    /// `jti`, when a string.
    pub jti: Option<&'a str>,
    /// `client_id`, when a string.
    pub client_id: Option<&'a str>,
    /// `azp`, when a string.
    pub azp: Option<&'a str>,
    /// `iat`, when a number.
    pub iat: Option<f64>,
}

impl<'a> TokenFacts<'a> {
    /// The facts of a verified token (the claims verification already captured).
    pub fn of(verified: &'a Verified) -> TokenFacts<'a> {
        let text = |name: &str| verified.text(name);
        TokenFacts {
            iss: verified.issuer(),
            sub: verified.subject(),
            jti: text("jti"),
            client_id: text("client_id"),
            azp: text("azp"),
            iat: verified.number("iat"),
        }
    }
}

/// Which rule refused a token, for the refusal's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// A jti rule.
    Jti,
    /// A subject rule with its `before` time.
    Subject {
        /// Tokens issued before this time are refused.
        before: i64,
    },
    /// A client rule with its `before` time.
    Client {
        /// Tokens issued before this time are refused.
        before: i64,
    },
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: i64| jwtgate_core::time::format_utc(t as f64);
        match self {
            Match::Jti => f.write_str("jti"),
            Match::Subject { before } => write!(f, "subject, issued before {}", time(*before)),
            Match::Client { before } => write!(f, "client, issued before {}", time(*before)),
        }
    }
}

/// `(before, until)` of an issued-before rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    before: i64,
    until: i64,
}

impl Window {
    /// True when a token issued at `iat` (unknown: `None`) is refused at `now`.
    fn refuses(&self, iat: Option<f64>, now: i64) -> bool {
        now < self.until && iat.is_none_or(|iat| iat < self.before as f64)
    }
}

/// Rules indexed for O(1) lookups. A rule replaces an earlier one with the same key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    /// jti → until.
    jtis: HashMap<String, i64>,
    /// iss → sub → window.
    subjects: HashMap<String, HashMap<String, Window>>,
    /// client → window.
    clients: HashMap<String, Window>,
}

impl RuleSet {
    /// An empty set.
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// A set of `rules` (a later rule replaces an earlier one with the same key).
    pub fn from_rules<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> RuleSet {
        let mut set = RuleSet::new();
        for rule in rules {
            set.insert(rule);
        }
        set
    }

    /// Adds `rule`, replacing the rule with the same key.
    pub fn insert(&mut self, rule: &Rule) {
        let window = |before| Window {
            before,
            until: rule.until(),
        };
        match (rule.key(), rule.before()) {
            (RuleKey::Jti { jti }, _) => {
                self.jtis.insert(jti.clone(), rule.until());
            }
            (RuleKey::Subject { iss, sub }, Some(before)) => {
                self.subjects
                    .entry(iss.clone())
                    .or_default()
                    .insert(sub.clone(), window(before));
            }
            (RuleKey::Client { client }, Some(before)) => {
                self.clients.insert(client.clone(), window(before));
            }
            // A subject or client rule always has `before` (the constructors see to it).
            (_, None) => {}
        }
    }

    /// Removes the rule with `key`; true when there was one.
    pub fn remove(&mut self, key: &RuleKey) -> bool {
        match key {
            RuleKey::Jti { jti } => self.jtis.remove(jti).is_some(),
            RuleKey::Subject { iss, sub } => {
                let Some(subjects) = self.subjects.get_mut(iss) else {
                    return false;
                };
                let removed = subjects.remove(sub).is_some();
                if subjects.is_empty() {
                    self.subjects.remove(iss);
                }
                removed
            }
            RuleKey::Client { client } => self.clients.remove(client).is_some(),
        }
    }

    /// Drops the rules no longer live at `now`; returns how many.
    pub fn purge(&mut self, now: i64) -> usize {
        let before = self.len();
        self.jtis.retain(|_, until| now < *until);
        self.clients.retain(|_, window| now < window.until);
        for subjects in self.subjects.values_mut() {
            subjects.retain(|_, window| now < window.until);
        }
        self.subjects.retain(|_, subjects| !subjects.is_empty());
        before - self.len()
    }

    /// Rules held (live or not yet purged).
    pub fn len(&self) -> usize {
        self.jtis.len()
            + self.clients.len()
            + self.subjects.values().map(HashMap::len).sum::<usize>()
    }

    /// True when no rule is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rule held, in key order.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = Vec::with_capacity(self.len());
        rules.extend(
            self.jtis
                .iter()
                .filter_map(|(jti, until)| Rule::jti(jti.clone(), *until).ok()),
        );
        for (iss, subjects) in &self.subjects {
            rules.extend(subjects.iter().filter_map(|(sub, w)| {
                Rule::subject(iss.clone(), sub.clone(), w.before, w.until).ok()
            }));
        }
        rules.extend(
            self.clients
                .iter()
                .filter_map(|(client, w)| Rule::client(client.clone(), w.before, w.until).ok()),
        );
        rules.sort_by(|a, b| a.key().cmp(b.key()));
        rules
    }

    /// The rule refusing a token with these facts at `now`, if any.
    pub fn check(&self, token: &TokenFacts<'_>, now: i64) -> Option<Match> {
        if self.is_empty() {
            return None;
        }
        if let Some(jti) = token.jti {
            if self.jtis.get(jti).is_some_and(|until| now < *until) {
                return Some(Match::Jti);
            }
        }
        if let Some(sub) = token.sub {
            let window = self.subjects.get(token.iss).and_then(|s| s.get(sub));
            if let Some(window) = window.filter(|w| w.refuses(token.iat, now)) {
                return Some(Match::Subject {
                    before: window.before,
                });
            }
        }
        for client in [token.client_id, token.azp].into_iter().flatten() {
            if let Some(window) = self
                .clients
                .get(client)
                .filter(|w| w.refuses(token.iat, now))
            {
                return Some(Match::Client {
                    before: window.before,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn facts<'a>(sub: &'a str, jti: &'a str, iat: Option<f64>) -> TokenFacts<'a> {
        TokenFacts {
            iss: "https://i/",
            sub: Some(sub),
            jti: Some(jti),
            client_id: Some("spa"),
            azp: None,
            iat,
        }
    }

    #[test]
    fn each_kind_refuses_what_it_targets_and_nothing_else() {
        let set = RuleSet::from_rules(&[
            Rule::jti("stolen", NOW + 60).unwrap(),
            Rule::subject("https://i/", "alice", NOW, NOW + 3600).unwrap(),
            Rule::client("rogue", NOW, NOW + 3600).unwrap(),
        ]);
        assert_eq!(set.len(), 3);
        assert_eq!(
            set.check(&facts("bob", "stolen", Some(1.0)), NOW),
            Some(Match::Jti)
        );
        assert_eq!(set.check(&facts("bob", "fine", Some(1.0)), NOW), None);
        // Subject: issued before the time (or without iat) is refused, at or after it passes.
        let alice_old = facts("alice", "a1", Some((NOW - 1) as f64));
        assert_eq!(
            set.check(&alice_old, NOW),
            Some(Match::Subject { before: NOW })
        );
        assert_eq!(
            set.check(&facts("alice", "a2", Some(NOW as f64)), NOW),
            None
        );
        assert!(set
            .check(&facts("alice", "a3", Some(NOW as f64 - 0.5)), NOW)
            .is_some());
        assert!(set.check(&facts("alice", "a4", None), NOW).is_some());
        // Same subject at another issuer passes.
        let other_issuer = TokenFacts {
            iss: "https://other/",
            ..alice_old
        };
        assert_eq!(set.check(&other_issuer, NOW), None);
        // Client: client_id or azp.
        let by_azp = TokenFacts {
            client_id: None,
            azp: Some("rogue"),
            ..facts("bob", "b", Some(1.0))
        };
        assert_eq!(set.check(&by_azp, NOW), Some(Match::Client { before: NOW }));
        let by_client_id = TokenFacts {
            client_id: Some("rogue"),
            ..facts("bob", "b", Some(1.0))
        };
        assert!(set.check(&by_client_id, NOW).is_some());
    }

    #[test]
    fn rules_stop_mattering_at_until_and_are_purged() {
        let mut set = RuleSet::from_rules(&[
            Rule::jti("j", NOW + 10).unwrap(),
            Rule::subject("https://i/", "alice", NOW, NOW + 20).unwrap(),
        ]);
        let token = facts("alice", "j", Some(1.0));
        assert_eq!(set.check(&token, NOW + 9), Some(Match::Jti));
        assert!(matches!(
            set.check(&token, NOW + 10),
            Some(Match::Subject { .. })
        ));
        assert_eq!(set.check(&token, NOW + 20), None);
        assert_eq!(set.purge(NOW + 10), 1);
        assert_eq!(set.purge(NOW + 20), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn same_key_replaces_and_remove_forgets() {
        let mut set = RuleSet::new();
        set.insert(&Rule::subject("https://i/", "alice", NOW, NOW + 100).unwrap());
        set.insert(&Rule::subject("https://i/", "alice", NOW + 50, NOW + 150).unwrap());
        assert_eq!(set.len(), 1);
        assert_eq!(
            set.rules(),
            vec![Rule::subject("https://i/", "alice", NOW + 50, NOW + 150).unwrap()]
        );
        let key = set.rules()[0].key().clone();
        assert!(set.remove(&key));
        assert!(!set.remove(&key));
        assert!(set.is_empty());
        assert_eq!(set.check(&facts("alice", "x", None), NOW), None);
    }
}
