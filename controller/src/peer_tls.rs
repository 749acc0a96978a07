//! Mutual TLS between the nodes: the `[tls]` section and its three PEM
//! files, read and checked at start (the node's certificate must name the
//! node). It never verifies a peer itself: that is done at each handshake
//! ([`crate::peer`]).

use std::path::{Path, PathBuf};

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
        Ok(files)
    }
}
