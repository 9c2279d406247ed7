//! Loading PEM files into rustls configurations.
//!
//! Done during validation so that `check` reports a missing file, a key that
//! does not match its certificate, or a certificate that does not cover a
//! configured server name, with the key path that named it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ResolvesServerCertUsingSni};
use rustls::sign::CertifiedKey;

/// TLS protocol versions offered: 1.3 and 1.2 only.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Reads a PEM certificate chain (leaf first).
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Reads the first PEM private key.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => format!("{} holds no PEM private key", path.display()),
        e => format!("{} is not valid PEM: {e}", path.display()),
    })
}

/// Builds a certified key and checks that the key belongs to the certificate.
pub fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let ck = CertifiedKey::from_der(chain, key_der, &provider::default_provider()).map_err(
        |e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "private key {} does not match certificate {}",
                key.display(),
                cert.display()
            ),
            other => format!("unusable key {}: {other}", key.display()),
        },
    )?;
    Ok(Arc::new(ck))
}

/// Chooses a certificate by SNI; falls back to the default certificate
/// (the first one configured without `server_names`, else the first one).
pub struct SniResolver {
    by_name: ResolvesServerCertUsingSni,
    default: Arc<CertifiedKey>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl SniResolver {
    /// Certificates with the names they answer for; `Err` says which name a
    /// certificate does not cover.
    pub fn new(certs: Vec<(Vec<String>, Arc<CertifiedKey>)>) -> Result<Self, (usize, String)> {
        let mut by_name = ResolvesServerCertUsingSni::new();
        let mut default = None;
        for (i, (names, ck)) in certs.iter().enumerate() {
            if names.is_empty() && default.is_none() {
                default = Some(ck.clone());
            }
            for name in names {
                by_name
                    .add(name, (**ck).clone())
                    .map_err(|e| (i, format!("certificate cannot serve {name:?}: {e}")))?;
            }
        }
        let default = match default.or_else(|| certs.first().map(|c| c.1.clone())) {
            Some(d) => d,
            None => return Err((0, "at least one certificate is required".into())),
        };
        Ok(SniResolver { by_name, default })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello.server_name().is_some() {
            if let Some(ck) = self.by_name.resolve(hello) {
                return Some(ck);
            }
        }
        Some(self.default.clone())
    }
}

/// A listener's certificates, swappable on reload: new handshakes use the
/// certificates in force, connections already open keep theirs.
pub struct ReloadableResolver {
    inner: arc_swap::ArcSwap<SniResolver>,
}

impl fmt::Debug for ReloadableResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReloadableResolver")
    }
}

impl ReloadableResolver {
    /// Starts with `resolver`.
    pub fn new(resolver: SniResolver) -> Self {
        ReloadableResolver {
            inner: arc_swap::ArcSwap::from_pointee(resolver),
        }
    }

    /// Takes the certificates of `other` (a freshly loaded configuration).
    pub fn replace_with(&self, other: &ReloadableResolver) {
        self.inner.store(other.inner.load_full());
    }
}

impl ResolvesServerCert for ReloadableResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.inner.load().resolve(hello)
    }
}

/// A server configuration offering TLS 1.2/1.3 and the given ALPN protocols.
pub fn server_config(
    resolver: Arc<ReloadableResolver>,
    http2: bool,
) -> Result<rustls::ServerConfig, String> {
    let mut cfg =
        rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

/// A client configuration for the upstream: the CA bundle if given, else the
/// web PKI roots (`use_roots`), else nothing trusted; hostname verification
/// always on.
pub fn client_config(
    ca_file: Option<&Path>,
    use_roots: bool,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        _ if !use_roots => {}
        Some(path) => {
            for cert in read_chain(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pem_files_are_read_and_every_failure_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["portal.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = file(d, "cert.pem", &cert.pem());
        let key_path = file(d, "key.pem", &key.serialize_pem());
        assert_eq!(read_chain(&cert_path).unwrap().len(), 1);
        assert!(read_key(&key_path).is_ok());
        assert!(certified_key(&cert_path, &key_path).is_ok());

        let empty = file(d, "empty.pem", "");
        assert!(read_chain(&empty)
            .unwrap_err()
            .contains("holds no PEM certificate"));
        assert!(read_key(&cert_path)
            .unwrap_err()
            .contains("holds no PEM private key"));
        let broken = file(
            d,
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        );
        assert!(read_chain(&broken)
            .unwrap_err()
            .contains("is not valid PEM"));
        let other_key = rcgen::KeyPair::generate().unwrap();
        let other = file(d, "other.pem", &other_key.serialize_pem());
        assert!(certified_key(&cert_path, &other)
            .unwrap_err()
            .contains("does not match"));
        assert!(read_chain(&d.join("missing.pem"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
