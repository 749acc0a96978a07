//! Mutual TLS between the nodes: the `[tls]` section and its three PEM
//! files, read and checked at start and at each reload (the node's
//! certificate must name the node, and must go with its key). It never
//! verifies a peer itself: that is done at each handshake
//! ([`crate::peer`]), with the files of the latest reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use serde::Deserialize;

use crate::settings::BadSetting;

/// `[tls]`: PEM files; the node's certificate must name the node (DNS SAN).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The cluster CA certificate.
    pub ca_file: PathBuf,
    /// This node's certificate.
    pub cert_file: PathBuf,
    /// This node's private key.
    pub key_file: PathBuf,
}

/// The TLS material, read and checked at start.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca: Vec<u8>,
    /// This node's certificate (PEM).
    pub cert: Vec<u8>,
    /// This node's key (PEM).
    pub key: Vec<u8>,
}

impl TlsSection {
    /// Reads the three files; the certificate must be issued for `node`.
    /// Errors name the key (`tls.…`).
    pub fn read(&self, node: &str) -> Result<TlsFiles, BadSetting> {
        let read = |key: &str, path: &Path| {
            std::fs::read(path).map_err(|e| BadSetting::new(key, format!("cannot read {}: {e}", path.display())))
        };
        let files = TlsFiles {
            ca: read("tls.ca_file", &self.ca_file)?,
            cert: read("tls.cert_file", &self.cert_file)?,
            key: read("tls.key_file", &self.key_file)?,
        };
        let names = crate::certs::pem_dns_names(&files.cert);
        if !names.iter().any(|n| n == node) {
            return Err(BadSetting::new(
                "tls.cert_file",
                format!("{} is issued for {names:?}, not for node {node:?}", self.cert_file.display()),
            ));
        }
        files.server_config()?;
        Ok(files)
    }
}

/// The peer TLS files in use; a reload sends new ones, which every
/// connection made from then on, in or out, uses.
pub type LiveTls = tokio::sync::watch::Receiver<TlsFiles>;

impl TlsFiles {
    /// The server side of mutual TLS: this node's certificate, and client
    /// certificates required and checked against the CA file (HTTP/2 only,
    /// as gRPC needs). Errors name the key at fault.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, BadSetting> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| BadSetting::new("tls.cert_file", format!("not PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| BadSetting::new("tls.key_file", format!("no PEM private key: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            let cert = cert.map_err(|e| BadSetting::new("tls.ca_file", format!("not PEM: {e}")))?;
            roots.add(cert).map_err(|e| BadSetting::new("tls.ca_file", format!("unusable CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| BadSetting::new("tls.ca_file", format!("cannot verify clients with it: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BadSetting::new("tls.cert_file", e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| BadSetting::new("tls.key_file", format!("does not go with tls.cert_file: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}
