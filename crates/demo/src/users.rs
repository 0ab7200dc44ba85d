//! The sample users API behind the gateway: `GET /api/users` and `POST /api/users`, stored in a
//! real SQLite file (created and seeded on first start, kept across restarts).
//!
//! The API trusts the gateway: it reads the caller from `X-Auth-Subject`, which the gateway sets
//! from the verified token (and strips from client requests). It never sees the token itself.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// The database could not be opened or prepared.
#[derive(Debug, Error)]
#[error("users database {path}: {source}")]
pub struct StoreError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// One user row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Who created it (`sub` of the caller, or `seed`).
    pub created_by: String,
}

/// A new user, as posted.
#[derive(Debug, Clone, Deserialize)]
pub struct NewUser {
    /// Display name (1–100 characters).
    pub name: String,
    /// Email address (must contain `@`).
    pub email: String,
}

/// The users store: one SQLite connection behind a mutex (the demo's load is a person clicking).
#[derive(Clone)]
pub struct UserStore {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore").finish_non_exhaustive()
    }
}

const SEED: [(&str, &str); 3] = [
    ("Ada Lovelace", "ada@example.com"),
    ("Alan Turing", "alan@example.com"),
    ("Grace Hopper", "grace@example.com"),
];

impl UserStore {
    /// Opens (creating and seeding if new) the database at `path`.
    pub fn open(path: &Path) -> Result<UserStore, StoreError> {
        let error = |source| StoreError {
            path: path.display().to_string(),
            source,
        };
        let connection = Connection::open(path).map_err(error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS users (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     name TEXT NOT NULL,
                     email TEXT NOT NULL,
                     created_by TEXT NOT NULL,
                     created_at INTEGER NOT NULL DEFAULT (unixepoch())
                 );
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
            )
            .map_err(error)?;
        let seeded: bool = connection
            .query_row(
                "SELECT COUNT(*) FROM meta WHERE key = 'seeded'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(error)?;
        if !seeded {
            for (name, email) in SEED {
                connection
                    .execute(
                        "INSERT INTO users (name, email, created_by) VALUES (?1, ?2, 'seed')",
                        params![name, email],
                    )
                    .map_err(error)?;
            }
            connection
                .execute("INSERT INTO meta (key, value) VALUES ('seeded', '1')", [])
                .map_err(error)?;
        }
        Ok(UserStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.connection.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Every user, oldest first.
    pub fn list(&self) -> Result<Vec<UserRow>, rusqlite::Error> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id, name, email, created_by FROM users ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok(UserRow {
                id: row.get(0)?,
                name: row.get(1)?,
                email: row.get(2)?,
                created_by: row.get(3)?,
            })
        })?;
        rows.collect()
    }

    /// Adds a user created by `creator`.
    pub fn create(&self, user: &NewUser, creator: &str) -> Result<UserRow, rusqlite::Error> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO users (name, email, created_by) VALUES (?1, ?2, ?3)",
            params![user.name, user.email, creator],
        )?;
        Ok(UserRow {
            id: connection.last_insert_rowid(),
            name: user.name.clone(),
            email: user.email.clone(),
            created_by: creator.to_owned(),
        })
    }
}

fn caller(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-auth-subject")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /api/users`.
pub async fn list_users(State(store): State<UserStore>, headers: HeaderMap) -> Response {
    if caller(&headers).is_none() {
        return problem(
            StatusCode::UNAUTHORIZED,
            "no verified caller (is the gateway in front?)",
        );
    }
    match store.list() {
        Ok(users) => Json(users).into_response(),
        Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// `POST /api/users` with `{"name": …, "email": …}`.
pub async fn create_user(
    State(store): State<UserStore>,
    headers: HeaderMap,
    Json(user): Json<NewUser>,
) -> Response {
    let Some(creator) = caller(&headers) else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "no verified caller (is the gateway in front?)",
        );
    };
    let name_ok = !user.name.trim().is_empty() && user.name.chars().count() <= 100;
    if !name_ok || !user.email.contains('@') || user.email.len() > 200 {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a name (1-100 characters) and an email are required",
        );
    }
    match store.create(&user, &creator) {
        Ok(row) => (StatusCode::CREATED, Json(row)).into_response(),
        Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_once_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("users.sqlite");
        let store = UserStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.list().map(|u| u.len()).ok(), Some(3));
        let added = store.create(
            &NewUser {
                name: "Eve".into(),
                email: "eve@example.com".into(),
            },
            "auth0|x",
        );
        assert!(added.is_ok());
        drop(store);
        let again = UserStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let users = again.list().unwrap_or_default();
        assert_eq!(users.len(), 4, "reopening neither loses nor re-seeds");
        assert_eq!(users[3].created_by, "auth0|x");
    }
}
