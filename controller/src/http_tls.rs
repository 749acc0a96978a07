//! Optional TLS on a node's HTTP port: the admin API, `/status`, `/active`,
//! `/metrics` and the status page. With `admin.tls_cert_file` and
//! `admin.tls_key_file` set, the port speaks only HTTPS (HTTP/1.1), and a
//! node that cannot carry out an admin call itself forwards it, token
//! included, over HTTPS to the node that can, trusting the system's roots
//! and, if set, `admin.tls_ca_file`. Every node of a cluster turns it on or
//! off together: a node calls the others with its own scheme.
//!
//! The files are read and checked at start and at each reload: a
//! certificate that is not PEM, a key that does not match it, or a CA file
//! without a certificate stops the node (or refuses the reload) with the
//! key's name. Connections accepted after a reload use its files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::BadSetting;

/// The TLS side of the HTTP port, built from the node's files.
#[derive(Clone)]
pub struct HttpTls {
    /// Wraps each admitted connection.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Extra roots for calls to the other nodes' HTTPS ports.
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for HttpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTls").field("extra_roots", &self.extra_roots.len()).finish_non_exhaustive()
    }
}

/// Builds the acceptor from a PEM certificate chain and its key, and reads
/// the optional CA file. Errors name the setting at fault.
pub fn load(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<HttpTls, BadSetting> {
    let read = |name: &str, path: &Path| {
        std::fs::read(path).map_err(|e| BadSetting::new(name, format!("cannot read {}: {e}", path.display())))
    };
    let cert_pem = read("admin.tls_cert_file", cert)?;
    let key_pem = read("admin.tls_key_file", key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| BadSetting::new("admin.tls_cert_file", format!("{}: not PEM: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(BadSetting::new("admin.tls_cert_file", format!("{}: holds no PEM certificate", cert.display())));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| BadSetting::new("admin.tls_key_file", format!("{}: no PEM private key: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BadSetting::new("admin.tls_cert_file", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            BadSetting::new("admin.tls_key_file", format!("{} does not go with the certificate: {e}", key.display()))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let extra_roots = match ca {
        Some(path) => read_ca_file(path).map_err(|p| BadSetting::new("admin.tls_ca_file", p))?,
        None => Vec::new(),
    };
    Ok(HttpTls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), extra_roots })
}

/// The client for calls to the other nodes' HTTP ports: the system's
/// roots plus `admin.tls_ca_file`'s, no redirects followed.
pub fn node_client(tls: Option<&HttpTls>) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    for root in tls.map(|t| t.extra_roots.as_slice()).unwrap_or_default() {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build()
}

/// The certificates of a PEM file, each checked to be X.509; at least one.
pub fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        pem.parse_x509().map_err(|e| format!("{}: not an X.509 certificate: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_der(&pem.contents)
            .map_err(|e| format!("{}: unusable certificate: {e}", path.display()))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}
