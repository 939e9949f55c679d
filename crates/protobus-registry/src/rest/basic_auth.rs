//! HTTP basic auth in front of the REST API, as Confluent's registry offers
//! it: a request without valid credentials gets 401 with
//! `{"error_code":401,"message":"Unauthorized"}` and a `WWW-Authenticate`
//! challenge. Users come from a file of `user:password` lines; passwords are
//! compared in constant time and never logged.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use serde_json::json;

/// Who may call the API.
pub struct Users {
    entries: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

impl Users {
    /// Reads `user:password` lines (`#` comments, blank lines ignored).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading users file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("users file {}: {e}", path.display()))
    }

    /// Parses the users file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!("line {}: expected `user:password`", number + 1));
            };
            if user.is_empty() || password.is_empty() {
                return Err(format!("line {}: empty user or password", number + 1));
            }
            if entries.iter().any(|(u, _)| u == user) {
                return Err(format!("line {}: user `{user}` appears twice", number + 1));
            }
            entries.push((user.to_owned(), password.as_bytes().to_vec()));
        }
        if entries.is_empty() {
            return Err("no users".into());
        }
        Ok(Users { entries })
    }

    fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(credentials) = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
        else {
            return false;
        };
        let Some(colon) = credentials.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, password) = (&credentials[..colon], &credentials[colon + 1..]);
        // Every entry is compared in full, whatever matched.
        self.entries.iter().fold(false, |found, (u, p)| {
            found | (constant_time_eq(u.as_bytes(), user) & constant_time_eq(p, password))
        })
    }
}

/// `router` behind HTTP basic auth for `users`.
pub fn with_basic_auth(router: Router, users: Users) -> Router {
    let users = Arc::new(users);
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let users = users.clone();
            async move {
                if users.admits(request.headers().get(header::AUTHORIZATION)) {
                    next.run(request).await
                } else {
                    unauthorized()
                }
            }
        },
    ))
}

fn unauthorized() -> Response {
    let mut response = super::json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "error_code": 401, "message": "Unauthorized" }),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"protobus-registry\""),
    );
    response
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(text: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn admits_only_a_listed_user_with_its_password() {
        let users = Users::parse("# who may call\nalice:wonder:land\nbob:builder\n").unwrap();
        assert!(users.admits(Some(&basic("alice:wonder:land"))));
        assert!(users.admits(Some(&basic("bob:builder"))));
        assert!(!users.admits(Some(&basic("bob:wonder:land"))));
        assert!(!users.admits(Some(&basic("carol:builder"))));
        assert!(!users.admits(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!users.admits(None));
    }

    #[test]
    fn bad_files_say_where() {
        for (text, reason) in [
            ("alice", "line 1: expected `user:password`"),
            ("\nalice:", "line 2: empty user or password"),
            ("a:1\na:2", "line 2: user `a` appears twice"),
            ("# nobody", "no users"),
        ] {
            let err = Users::parse(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
