//! Throwaway certificates for TLS tests, as PEM files: a CA, a server
//! certificate for 127.0.0.1 and localhost, a client certificate from the
//! same CA and one from a CA nobody trusts.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM).
    pub ca: String,
    /// A client certificate and key (PEM) signed by the CA.
    pub client: (String, String),
    /// A client certificate and key (PEM) signed by another CA.
    pub stranger: (String, String),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(names: &[&str], issuer: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Writes `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key`
    /// and `stranger.pem`/`stranger.key` into a fresh directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("protobus test CA");
        let server = leaf(&["127.0.0.1", "localhost"], &ca);
        let client = leaf(&["checkout"], &ca);
        let stranger = leaf(&["stranger"], &self::ca("someone else's CA"));
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem());
        for (name, (cert, key)) in [
            ("server", &server),
            ("client", &client),
            ("stranger", &stranger),
        ] {
            write(&format!("{name}.pem"), cert);
            write(&format!("{name}.key"), key);
        }
        Pki {
            ca: ca.pem(),
            dir,
            client,
            stranger,
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}
