//! The registry's REST calls beyond what producers and consumers make: for
//! tools, whether it answers, a subject's versions, a version with its
//! references, and a subject's compatibility level, read and set.

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::schemas::{SchemaRegistry, innermost, unreachable};

/// A registered schema version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredVersion {
    /// The schema text.
    pub schema: String,
    /// `PROTOBUF`, `JSON`; Confluent leaves it out for `AVRO`.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// The registered schemas it imports.
    #[serde(default)]
    pub references: Vec<RegisteredReference>,
}

/// A reference of a registered schema: its import name and where that
/// file is registered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredReference {
    /// The import path the schema uses.
    pub name: String,
    /// The subject the imported file is registered under.
    pub subject: String,
    /// Its version there.
    pub version: i32,
}

/// A registered version with every file it imports, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredFiles {
    /// The version's own schema text.
    pub schema: String,
    /// The files it imports, directly or through others, in the order a
    /// breadth-first walk reaches them.
    pub imports: Vec<RegisteredImport>,
}

/// A file a registered version imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredImport {
    /// The reference that reached it (import name, subject, version).
    pub reference: RegisteredReference,
    /// Its schema text.
    pub schema: String,
}

impl SchemaRegistry {
    /// Fails, in one line that names the registry, unless it answers
    /// (`GET /config`) and accepts this client's credentials: for services
    /// and tools to check before they start work.
    pub async fn reachable(&self) -> Result<(), Error> {
        self.get::<serde_json::Value>("/config").await.map(drop)
    }

    /// The versions registered under `subject`, in order; `None` when it has none.
    pub async fn versions(&self, subject: &str) -> Result<Option<Vec<i32>>, Error> {
        let mut versions: Option<Vec<i32>> = self
            .get(&format!("/subjects/{}/versions", encode(subject)))
            .await?;
        if let Some(versions) = &mut versions {
            versions.sort_unstable();
        }
        Ok(versions)
    }

    /// Version `version` of `subject`; `None` when it is not registered.
    pub async fn version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<Option<RegisteredVersion>, Error> {
        self.get(&format!("/subjects/{}/versions/{version}", encode(subject)))
            .await
    }

    /// Every subject with a live version (`GET /subjects`).
    pub async fn subjects(&self) -> Result<Vec<String>, Error> {
        Ok(self.get("/subjects").await?.unwrap_or_default())
    }

    /// Version `version` of `subject` (`-1` for the latest) with every file
    /// it imports, at most `max_imports` of them; `None` when the version
    /// is not registered. A reference that is missing is an error.
    pub async fn version_with_imports(
        &self,
        subject: &str,
        version: i32,
        max_imports: usize,
    ) -> Result<Option<RegisteredFiles>, Error> {
        let Some(found) = self.version(subject, version).await? else {
            return Ok(None);
        };
        let imports = self.imports(found.references, max_imports).await?;
        Ok(Some(RegisteredFiles {
            schema: found.schema,
            imports,
        }))
    }

    /// Every file `references` lead to, directly or through others, each
    /// once and at most `max` of them. A reference that is missing is an error.
    pub async fn imports(
        &self,
        references: Vec<RegisteredReference>,
        max: usize,
    ) -> Result<Vec<RegisteredImport>, Error> {
        let too_many = |e: protobus_contract::TooManyImports| -> Error {
            ErrorKind::Registry(e.to_string()).into()
        };
        let mut walk = protobus_contract::Closure::new(max);
        for reference in references {
            walk.push(reference.name.clone(), reference)
                .map_err(too_many)?;
        }
        let mut imports = Vec::new();
        while let Some(reference) = walk.pop() {
            let imported = self
                .version(&reference.subject, reference.version)
                .await?
                .ok_or_else(|| {
                    ErrorKind::Registry(format!(
                        "the reference {} ({} version {}) is not registered",
                        reference.name, reference.subject, reference.version
                    ))
                })?;
            for next in imported.references {
                walk.push(next.name.clone(), next).map_err(too_many)?;
            }
            imports.push(RegisteredImport {
                reference,
                schema: imported.schema,
            });
        }
        Ok(imports)
    }

    /// The compatibility level the registry applies to `subject` (its own,
    /// else the global one), as the REST API names it.
    pub async fn level(&self, subject: &str) -> Result<String, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Config {
            compatibility_level: String,
        }
        let path = format!("/config/{}?defaultToGlobal=true", encode(subject));
        let found: Option<Config> = self.get(&path).await?;
        Ok(found.map_or_else(|| "BACKWARD".to_owned(), |c| c.compatibility_level))
    }

    /// Sets `subject`'s compatibility level (`PUT /config/{subject}`).
    pub async fn set_level(&self, subject: &str, level: &str) -> Result<(), Error> {
        let path = format!("/config/{}", encode(subject));
        let body = serde_json::json!({ "compatibility": level });
        self.send(
            self.http.put(format!("{}{path}", self.url)).json(&body),
            &path,
        )
        .await
        .map(drop)
    }

    /// `POST path` with a JSON `body`: the answer as `T`, `None` on 404.
    pub(crate) async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Option<T>, Error> {
        let request = self.http.post(format!("{}{path}", self.url)).json(body);
        self.send_json(request, path).await
    }

    /// `GET path`: the answer as `T`, `None` on 404.
    pub(crate) async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
    ) -> Result<Option<T>, Error> {
        let request = self.http.get(format!("{}{path}", self.url));
        self.send_json(request, path).await
    }

    /// [`send`](Self::send), the answer decoded as `T`.
    async fn send_json<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Option<T>, Error> {
        match self.send(request, path).await? {
            None => Ok(None),
            Some(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
                ErrorKind::Registry(format!("{} answered {path} with {e}", self.url)).into()
            }),
        }
    }

    /// Sends `request` (to `path`) with this client's credentials: the
    /// answer's body, `None` on 404, a one-line error otherwise.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|err| {
            ErrorKind::RegistryUnavailable(unreachable(&self.url, innermost(&err)))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ErrorKind::Registry(format!(
                "{} answered {status}: check the user and password in the registry URL",
                self.url
            ))
            .into());
        }
        let body = response.bytes().await.map_err(|err| {
            ErrorKind::RegistryUnavailable(unreachable(&self.url, innermost(&err)))
        })?;
        if !status.is_success() {
            return Err(ErrorKind::Registry(format!(
                "{} answered {status} to {path}: {}",
                self.url,
                String::from_utf8_lossy(&body)
            ))
            .into());
        }
        Ok(Some(body.to_vec()))
    }
}

/// A subject as a path segment.
pub(crate) fn encode(subject: &str) -> String {
    subject.replace('%', "%25").replace('/', "%2F")
}
