//! The issuer's signing keys: one current key per algorithm in use, optionally a *next* key
//! published ahead of a switch, and *retiring* keys still published for a grace period after it.
//!
//! Rotation follows what real providers do, in three steps an operator can take one at a time:
//!
//! 1. [`KeyRing::publish_next`]: a new key per algorithm appears in the JWKS but signs nothing,
//!    so verifiers' caches pick it up ahead of time.
//! 2. [`KeyRing::activate`]: the next key signs from now on; the old one stays published until
//!    its `retire_at` (now + grace), so tokens it signed keep verifying.
//! 3. Retirement: past `retire_at` the old key leaves the JWKS ([`KeyRing::expire`]), or at once
//!    with [`KeyRing::retire`].
//!
//! With a state directory the ring is kept in `keys.json` there (PKCS#8 private keys, mode 0600,
//! written atomically), so restarts keep issuing tokens that verify against cached key sets.
//! Every change is written before it takes effect; a failed write leaves the ring unchanged.

use crate::random;
use jwtgate_core::internal::base64url;
use jwtgate_core::{Algorithm, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The file in the state directory that holds the keys.
pub const KEYS_FILE: &str = "keys.json";

/// A key operation failed.
#[derive(Debug, Error)]
pub enum KeyRingError {
    /// The state directory or key file could not be read or written.
    #[error("{action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The key file is not what the issuer wrote.
    #[error("{path} is not a usable key file ({reason}); move it away to start with new keys")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key could not be generated or encoded.
    #[error("key generation failed: {0}")]
    Key(String),
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum KeyState {
    /// Published ahead, not signing yet.
    Next,
    /// Signing new tokens.
    Current,
    /// Replaced; still published until `retire_at` (Unix seconds).
    Retiring {
        /// When it leaves the JWKS.
        retire_at: i64,
    },
}

/// A description of one key, for operators (no private material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// State.
    #[serde(flatten)]
    pub state: KeyState,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

#[derive(Clone)]
struct Entry {
    key: Arc<SigningKey>,
    state: KeyState,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: String,
    #[serde(flatten)]
    state: KeyState,
    created_at: i64,
    pkcs8: String,
}

#[derive(Serialize, Deserialize)]
struct StoredRing {
    version: u32,
    keys: Vec<StoredKey>,
}

/// The signing keys, and where they are kept.
pub struct KeyRing {
    entries: Vec<Entry>,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.describe())
            .field("dir", &self.dir)
            .finish()
    }
}

fn generate(alg: Algorithm, now: i64, state: KeyState) -> Result<Entry, KeyRingError> {
    let suffix = random::token(9).map_err(|e| KeyRingError::Key(e.to_string()))?;
    let kid = format!("{}-{suffix}", alg.name().to_ascii_lowercase());
    let key = SigningKey::generate(alg, kid).map_err(|e| KeyRingError::Key(e.to_string()))?;
    Ok(Entry {
        key: Arc::new(key),
        state,
        created_at: now,
    })
}

impl KeyRing {
    /// An empty ring kept only in memory (`--ephemeral`).
    pub fn ephemeral() -> KeyRing {
        KeyRing {
            entries: Vec::new(),
            dir: None,
        }
    }

    /// Opens the ring kept in `dir`, creating the directory (mode 0700) if needed; an absent key
    /// file is an empty ring.
    pub fn open(dir: &Path) -> Result<KeyRing, KeyRingError> {
        create_private_dir(dir)?;
        let path = dir.join(KEYS_FILE);
        let entries = match std::fs::read(&path) {
            Ok(bytes) => load(&path, &bytes)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(KeyRingError::Io {
                    action: "cannot read",
                    path,
                    error,
                })
            }
        };
        Ok(KeyRing {
            entries,
            dir: Some(dir.to_owned()),
        })
    }

    /// The state directory, if the ring is kept on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Makes sure each of `algs` has a current key, generating the missing ones. Returns true
    /// when keys were added.
    pub fn ensure(&mut self, algs: &[Algorithm], now: i64) -> Result<bool, KeyRingError> {
        let mut entries = self.entries.clone();
        for &alg in algs {
            if !entries
                .iter()
                .any(|e| e.key.algorithm() == alg && e.state == KeyState::Current)
            {
                entries.push(generate(alg, now, KeyState::Current)?);
            }
        }
        let added = entries.len() != self.entries.len();
        if added {
            self.commit(entries)?;
        }
        Ok(added)
    }

    /// The key that signs `alg` tokens now.
    pub fn current(&self, alg: Algorithm) -> Option<Arc<SigningKey>> {
        self.entries
            .iter()
            .find(|e| e.key.algorithm() == alg && e.state == KeyState::Current)
            .map(|e| Arc::clone(&e.key))
    }

    /// The published key set: next, current and retiring keys.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.entries.iter().map(|e| e.key.public_jwk()).collect();
        json!({ "keys": keys })
    }

    /// Every key, for operators.
    pub fn describe(&self) -> Vec<KeyInfo> {
        self.entries
            .iter()
            .map(|e| KeyInfo {
                kid: e.key.kid().to_owned(),
                alg: e.key.algorithm().name().to_owned(),
                state: e.state,
                created_at: e.created_at,
            })
            .collect()
    }

    /// Step 1: publishes a next key for every algorithm that has a current key and no next key
    /// yet. Returns the new keys' ids (empty if every algorithm already had one).
    pub fn publish_next(&mut self, now: i64) -> Result<Vec<String>, KeyRingError> {
        let mut entries = self.entries.clone();
        let mut added = Vec::new();
        for alg in self.current_algorithms() {
            if !entries
                .iter()
                .any(|e| e.key.algorithm() == alg && e.state == KeyState::Next)
            {
                let entry = generate(alg, now, KeyState::Next)?;
                added.push(entry.key.kid().to_owned());
                entries.push(entry);
            }
        }
        if !added.is_empty() {
            self.commit(entries)?;
        }
        Ok(added)
    }

    /// Step 2: for every algorithm, the next key becomes current (one is generated first where
    /// none was published) and the current key retires at `now + grace`. Returns the ids of
    /// the keys now current.
    pub fn activate(&mut self, now: i64, grace: u64) -> Result<Vec<String>, KeyRingError> {
        let retire_at = now.saturating_add(i64::try_from(grace).unwrap_or(i64::MAX));
        let mut entries = self.entries.clone();
        let mut activated = Vec::new();
        for alg in self.current_algorithms() {
            if !entries
                .iter()
                .any(|e| e.key.algorithm() == alg && e.state == KeyState::Next)
            {
                entries.push(generate(alg, now, KeyState::Next)?);
            }
            for entry in entries.iter_mut().filter(|e| e.key.algorithm() == alg) {
                match entry.state {
                    KeyState::Current => entry.state = KeyState::Retiring { retire_at },
                    KeyState::Next => {
                        entry.state = KeyState::Current;
                        activated.push(entry.key.kid().to_owned());
                    }
                    KeyState::Retiring { .. } => {}
                }
            }
        }
        self.commit(entries)?;
        Ok(activated)
    }

    /// Step 3 at once: removes every retiring key from the JWKS. Returns their ids.
    pub fn retire(&mut self) -> Result<Vec<String>, KeyRingError> {
        self.remove_where(|state| matches!(state, KeyState::Retiring { .. }))
    }

    /// Removes retiring keys whose `retire_at` has passed. Returns their ids.
    pub fn expire(&mut self, now: i64) -> Result<Vec<String>, KeyRingError> {
        self.remove_where(
            |state| matches!(state, KeyState::Retiring { retire_at } if retire_at <= now),
        )
    }

    fn remove_where(
        &mut self,
        doomed: impl Fn(KeyState) -> bool,
    ) -> Result<Vec<String>, KeyRingError> {
        let removed: Vec<String> = self
            .entries
            .iter()
            .filter(|e| doomed(e.state))
            .map(|e| e.key.kid().to_owned())
            .collect();
        if !removed.is_empty() {
            let kept = self
                .entries
                .iter()
                .filter(|e| !doomed(e.state))
                .cloned()
                .collect();
            self.commit(kept)?;
        }
        Ok(removed)
    }

    fn current_algorithms(&self) -> Vec<Algorithm> {
        let mut algs = Vec::new();
        for entry in &self.entries {
            if entry.state == KeyState::Current && !algs.contains(&entry.key.algorithm()) {
                algs.push(entry.key.algorithm());
            }
        }
        algs
    }

    /// Writes `entries` (when kept on disk) and then makes them the ring.
    fn commit(&mut self, entries: Vec<Entry>) -> Result<(), KeyRingError> {
        if let Some(dir) = &self.dir {
            save(dir, &entries)?;
        }
        self.entries = entries;
        Ok(())
    }
}

fn load(path: &Path, bytes: &[u8]) -> Result<Vec<Entry>, KeyRingError> {
    let corrupt = |reason: String| KeyRingError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let stored: StoredRing = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if stored.version != 1 {
        return Err(corrupt(format!("unknown version {}", stored.version)));
    }
    let mut entries = Vec::new();
    for key in stored.keys {
        let alg: Algorithm = key
            .alg
            .parse()
            .map_err(|_| corrupt(format!("key {}: unknown algorithm {:?}", key.kid, key.alg)))?;
        let der = base64url::decode(key.pkcs8.as_bytes())
            .map_err(|_| corrupt(format!("key {}: pkcs8 is not base64url", key.kid)))?;
        let signing = SigningKey::from_pkcs8(alg, key.kid.clone(), &der)
            .map_err(|e| corrupt(format!("key {}: {e}", key.kid)))?;
        entries.push(Entry {
            key: Arc::new(signing),
            state: key.state,
            created_at: key.created_at,
        });
    }
    Ok(entries)
}

fn save(dir: &Path, entries: &[Entry]) -> Result<(), KeyRingError> {
    let mut keys = Vec::new();
    for entry in entries {
        let der = entry
            .key
            .to_pkcs8()
            .map_err(|e| KeyRingError::Key(e.to_string()))?;
        keys.push(StoredKey {
            kid: entry.key.kid().to_owned(),
            alg: entry.key.algorithm().name().to_owned(),
            state: entry.state,
            created_at: entry.created_at,
            pkcs8: base64url::encode(&der),
        });
    }
    let ring = StoredRing { version: 1, keys };
    let text = serde_json::to_vec_pretty(&ring).map_err(|e| KeyRingError::Key(e.to_string()))?;
    let path = dir.join(KEYS_FILE);
    let temporary = dir.join(format!("{KEYS_FILE}.tmp"));
    write_private(&temporary, &text).map_err(|error| KeyRingError::Io {
        action: "cannot write",
        path: temporary.clone(),
        error,
    })?;
    std::fs::rename(&temporary, &path).map_err(|error| KeyRingError::Io {
        action: "cannot replace",
        path,
        error,
    })
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn create_private_dir(dir: &Path) -> Result<(), KeyRingError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|error| KeyRingError::Io {
        action: "cannot create the state directory",
        path: dir.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn states(ring: &KeyRing) -> Vec<(String, KeyState)> {
        ring.describe()
            .into_iter()
            .map(|k| (k.alg, k.state))
            .collect()
    }

    #[test]
    fn rotation_steps() {
        let mut ring = KeyRing::ephemeral();
        assert!(ring
            .ensure(&[Algorithm::RS256, Algorithm::ES256], 100)
            .unwrap());
        assert!(!ring.ensure(&[Algorithm::RS256], 100).unwrap());
        let old = ring.current(Algorithm::RS256).unwrap().kid().to_owned();

        let next = ring.publish_next(200).unwrap();
        assert_eq!(next.len(), 2);
        assert!(ring.publish_next(201).unwrap().is_empty(), "idempotent");
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 4);
        assert_eq!(
            ring.current(Algorithm::RS256).unwrap().kid(),
            old,
            "not switched yet"
        );

        let active = ring.activate(300, 60).unwrap();
        assert_eq!(active, next);
        let new = ring.current(Algorithm::RS256).unwrap().kid().to_owned();
        assert_ne!(new, old);
        assert!(states(&ring).contains(&("RS256".into(), KeyState::Retiring { retire_at: 360 })));

        assert!(ring.expire(359).unwrap().is_empty());
        assert_eq!(ring.expire(360).unwrap().len(), 2);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);

        // Activation without a published next key generates one.
        ring.activate(400, 0).unwrap();
        assert_ne!(ring.current(Algorithm::RS256).unwrap().kid(), new);
        assert_eq!(ring.retire().unwrap().len(), 2);
    }

    #[test]
    fn kept_across_restarts_for_every_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let algs = [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::PS256,
        ];
        let mut ring = KeyRing::open(dir.path()).unwrap();
        ring.ensure(&algs, 1).unwrap();
        ring.publish_next(2).unwrap();
        let before = ring.describe();
        let jwks = ring.jwks();

        let reopened = KeyRing::open(dir.path()).unwrap();
        assert_eq!(reopened.describe(), before);
        assert_eq!(reopened.jwks(), jwks);
        // The reloaded private keys still sign what the published keys verify.
        let keys = jwtgate_core::KeySet::from_json(jwks.to_string().as_bytes()).unwrap();
        for alg in algs {
            let token = reopened
                .current(alg)
                .unwrap()
                .sign(&Default::default(), &json!({"x": 1}))
                .unwrap();
            let policy = jwtgate_core::Policy::builder()
                .issuer("i")
                .audience("a")
                .build()
                .unwrap();
            let parsed = jwtgate_core::UnverifiedToken::parse(token.as_bytes(), &policy).unwrap();
            assert!(parsed.verify_signature(&keys).is_ok(), "{alg}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file must be private");
        }
    }

    #[test]
    fn corrupt_files_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), b"{\"version\":1,\"keys\":[{").unwrap();
        let error = KeyRing::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not a usable key file"), "{error}");
        assert_eq!(
            std::fs::read(dir.path().join(KEYS_FILE)).unwrap(),
            b"{\"version\":1,\"keys\":[{"
        );
    }
}
