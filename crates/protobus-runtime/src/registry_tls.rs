//! How a registry client speaks TLS to an `https://` registry: the system's
//! trusted CAs plus any given here, and a client certificate for registries
//! that ask for one (Confluent's `schema.registry.ssl.*` settings).

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// TLS settings of a registry client; the default trusts the system's CAs only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryTls {
    /// CA certificates (PEM) to trust besides the system's, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and its private key (PEM files) for a
    /// registry that requires client certificates (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl RegistryTls {
    /// An HTTP client with these settings, for registry calls beyond what
    /// [`SchemaRegistry`](crate::SchemaRegistry) makes.
    pub fn http_client(&self) -> Result<reqwest::Client, Error> {
        self.client_builder()?
            .build()
            .map_err(|e| config(format!("the registry's HTTP client: {e}")))
    }

    pub(crate) fn client_builder(&self) -> Result<reqwest::ClientBuilder, Error> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &self.ca_file {
            let pem = read("registry CA", path)?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| config(format!("the registry CA {}: {e}", path.display())))?;
            if certificates.is_empty() {
                return Err(config(format!(
                    "the registry CA {} holds no PEM certificate",
                    path.display()
                )));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some((certificate, key)) = &self.identity {
            let mut pem = read("registry client certificate", certificate)?;
            pem.push(b'\n');
            pem.extend(read("registry client key", key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                config(format!(
                    "the registry client certificate {} with key {}: {e}",
                    certificate.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| config(format!("reading the {what} {}: {e}", path.display())))
}

fn config(message: String) -> Error {
    ErrorKind::Config(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_missing_or_hold_no_certificate_are_named() {
        let dir = std::env::temp_dir().join(format!("protobus-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();

        let missing = RegistryTls {
            ca_file: Some(dir.join("missing.pem")),
            identity: None,
        };
        let error = missing.http_client().unwrap_err().to_string();
        assert!(error.contains("reading the registry CA") && error.contains("missing.pem"));

        let no_certificate = RegistryTls {
            ca_file: Some(empty.clone()),
            identity: None,
        };
        let error = no_certificate.http_client().unwrap_err().to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");

        let bad_identity = RegistryTls {
            ca_file: None,
            identity: Some((empty.clone(), empty)),
        };
        let error = bad_identity.http_client().unwrap_err().to_string();
        assert!(error.contains("registry client certificate"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
