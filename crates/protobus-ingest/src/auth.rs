//! Bearer tokens for the ingest service, each allowed to publish to some of
//! the contract's topics. Tokens come from a file (never the command line,
//! where `ps` shows them) and never appear in logs or errors: callers and
//! logs see the token's name.
//!
//! ```json
//! { "tokens": [
//!     { "name": "checkout", "token": "…", "topics": ["shop.orders"] },
//!     { "name": "backfill", "token": "…", "topics": ["*"] }
//! ] }
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use protobus_runtime::Contract;
use serde_json::Value;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing::warn;

use crate::Error;

/// The tokens the service accepts; none configured means no authentication.
pub struct Tokens {
    grants: Vec<Arc<Grant>>,
}

/// What one token may do.
pub struct Grant {
    name: String,
    secret: Vec<u8>,
    /// Contract topic names (without any topic prefix); `None`: all of them.
    topics: Option<HashSet<String>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.grants.iter().map(|g| g.name.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads a tokens file (see the module documentation).
    pub fn from_file(path: &Path, contract: &Contract) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::settings(format!("reading tokens file {}: {e}", path.display())))?;
        Self::parse(&text, contract)
            .map_err(|e| Error::settings(format!("tokens file {}: {e}", path.display())))
    }

    /// Parses the tokens file's text; topics must be the contract's.
    pub fn parse(text: &str, contract: &Contract) -> Result<Self, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let entries = root
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or("expected {\"tokens\": [ … ]}")?;
        let known: HashSet<&str> = contract.events.iter().map(|e| e.topic).collect();
        let mut grants: Vec<Arc<Grant>> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let field = |name: &str| {
                entry
                    .get(name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("token #{} has no `{name}`", i + 1))
            };
            let name = field("name")?.to_owned();
            let secret = field("token")?.as_bytes().to_vec();
            if secret.len() < 16 {
                return Err(format!("token `{name}` is shorter than 16 characters"));
            }
            if grants.iter().any(|g| g.name == name) {
                return Err(format!("two tokens are named `{name}`"));
            }
            if grants.iter().any(|g| g.secret == secret) {
                return Err(format!("token `{name}` repeats another token's secret"));
            }
            let listed: Vec<&str> = entry
                .get("topics")
                .and_then(Value::as_array)
                .map(|ts| ts.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if listed.is_empty() {
                return Err(format!("token `{name}` lists no topics (\"*\" for all)"));
            }
            let topics = if listed.contains(&"*") {
                None
            } else {
                if let Some(unknown) = listed.iter().find(|t| !known.contains(*t)) {
                    let mut known: Vec<&str> = known.iter().copied().collect();
                    known.sort_unstable();
                    return Err(format!(
                        "token `{name}`: `{unknown}` is not a topic of the contract ({})",
                        known.join(", ")
                    ));
                }
                Some(listed.iter().map(|t| (*t).to_owned()).collect())
            };
            grants.push(Arc::new(Grant {
                name,
                secret,
                topics,
            }));
        }
        Ok(Tokens { grants })
    }

    /// The grant of the request's `authorization: Bearer …` token.
    pub(crate) fn authenticate(&self, metadata: &MetadataMap) -> Result<Arc<Grant>, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("send `authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header is not `Bearer <token>`")
            })?;
        // Every grant is compared in full, so timing tells nothing about a near miss.
        let mut found = None;
        for grant in &self.grants {
            if constant_time_eq(&grant.secret, token.as_bytes()) {
                found = Some(grant);
            }
        }
        found
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown bearer token"))
    }
}

impl Grant {
    /// The token's name, for logs.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Refuses `topic` (a contract topic name) unless the token may publish there.
    pub(crate) fn allow(&self, topic: &str, event_type: &str) -> Result<(), Status> {
        match &self.topics {
            Some(topics) if !topics.contains(topic) => Err(Status::permission_denied(format!(
                "token `{}` may not publish to topic `{topic}` ({event_type}); nothing was written",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

/// Authenticates each call from its metadata, before its body is read or
/// decoded, and hands the caller's [`Grant`] to the service (as a request
/// extension). Without tokens every call passes.
#[derive(Debug, Clone)]
pub struct Authenticate(Option<Arc<Tokens>>);

impl Authenticate {
    pub(crate) fn new(tokens: Option<Arc<Tokens>>) -> Self {
        Authenticate(tokens)
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(tokens) = &self.0 else {
            return Ok(request);
        };
        let grant = tokens
            .authenticate(request.metadata())
            .inspect_err(|status| {
                warn!(reason = status.message(), "unauthenticated request refused");
            })?;
        request.extensions_mut().insert(grant);
        Ok(request)
    }
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    static CONTRACT: Contract = Contract {
        files: &[],
        events: &[],
        topics: &[],
    };

    #[test]
    fn bad_files_get_a_reason() {
        let cases = [
            ("nope", "not JSON"),
            ("{}", "expected"),
            (
                r#"{"tokens":[{"token":"0123456789abcdef","topics":["*"]}]}"#,
                "has no `name`",
            ),
            (
                r#"{"tokens":[{"name":"a","token":"short","topics":["*"]}]}"#,
                "shorter than 16",
            ),
            (
                r#"{"tokens":[{"name":"a","token":"0123456789abcdef"}]}"#,
                "lists no topics",
            ),
            (
                r#"{"tokens":[{"name":"a","token":"0123456789abcdef","topics":["nowhere"]}]}"#,
                "not a topic of the contract",
            ),
            (
                r#"{"tokens":[{"name":"a","token":"0123456789abcdef","topics":["*"]},
                             {"name":"a","token":"0123456789abcdeX","topics":["*"]}]}"#,
                "two tokens are named",
            ),
        ];
        for (text, reason) in cases {
            let err = Tokens::parse(text, &CONTRACT).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(
                !err.contains("0123456789abcde"),
                "a secret in an error: {err}"
            );
        }
    }
}
