//! `failoverctl certs init`: a private CA and one certificate per node, the
//! node's name as its DNS subject alternative name, for mutual TLS between
//! nodes (no openssl recipe needed), plus any host names or IP addresses
//! given for the node, so the same certificate can serve its HTTP port over
//! TLS. Keys are written mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file would be overwritten.
    #[error("{0} exists; remove it or choose another --out directory")]
    Exists(PathBuf),
    /// A node name cannot be a member name, nor so a certificate's DNS name.
    #[error("node name: {0}")]
    BadNodeName(#[from] crate::member_name::BadMemberName),
    /// An extra name was given for a node not in the list.
    #[error("--http-name {node}={name}: {node:?} is not one of --nodes")]
    UnknownNode {
        /// The node named.
        node: String,
        /// The extra name.
        name: String,
    },
}

fn write(path: PathBuf, text: &str, private: bool) -> Result<PathBuf, CertError> {
    if path.exists() {
        return Err(CertError::Exists(path));
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true).mode(if private { 0o600 } else { 0o644 });
    let mut f = opts.open(&path).map_err(|source| CertError::Write { path: path.clone(), source })?;
    f.write_all(text.as_bytes()).map_err(|source| CertError::Write { path: path.clone(), source })?;
    Ok(path)
}

/// Creates `ca.pem`, `ca.key` and `<node>.pem` / `<node>.key` for every node
/// in `out` (created if missing). Returns the files written. Every node
/// name must be a valid member name ([`crate::member_name`]); each
/// `(node, name)` of `http_names` adds `name` (a host name, or an IP
/// address) to that node's certificate. Nothing is written on any error.
pub fn init(nodes: &[String], http_names: &[(String, String)], out: &Path) -> Result<Vec<PathBuf>, CertError> {
    for node in nodes {
        crate::member_name::check(node)?;
    }
    if let Some((node, name)) = http_names.iter().find(|(n, _)| !nodes.contains(n)) {
        return Err(CertError::UnknownNode { node: node.clone(), name: name.clone() });
    }
    fs::create_dir_all(out).map_err(|source| CertError::Write { path: out.to_owned(), source })?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "failover cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut written = vec![
        write(out.join("ca.pem"), &ca_cert.pem(), false)?,
        write(out.join("ca.key"), &ca_key.serialize_pem(), true)?,
    ];
    let issuer = Issuer::new(ca_params, ca_key);
    for node in nodes {
        let key = KeyPair::generate()?;
        let extra = http_names.iter().filter(|(n, _)| n == node).map(|(_, name)| name.clone());
        let mut params = CertificateParams::new(std::iter::once(node.clone()).chain(extra).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, node.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer)?;
        written.push(write(out.join(format!("{node}.pem")), &cert.pem(), false)?);
        written.push(write(out.join(format!("{node}.key")), &key.serialize_pem(), true)?);
    }
    Ok(written)
}

/// The DNS names of the first certificate in a PEM file (none if unreadable).
pub fn pem_dns_names(pem: &[u8]) -> Vec<String> {
    match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, parsed)) => dns_names(&parsed.contents),
        Err(_) => Vec::new(),
    }
}

/// The DNS names a certificate (DER) is issued for.
pub fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_certificate_names_its_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = vec!["site-a".to_string(), "witness".to_string()];
        let http = vec![("site-a".to_string(), "site-a.example.com".to_string())];
        let files = init(&nodes, &http, dir.path()).expect("init");
        assert_eq!(files.len(), 6);
        let pem = fs::read_to_string(dir.path().join("site-a.pem")).expect("read");
        assert_eq!(dns_names(&pem_body(&pem)), vec!["site-a".to_string(), "site-a.example.com".to_string()]);
        let pem = fs::read_to_string(dir.path().join("witness.pem")).expect("read");
        assert_eq!(dns_names(&pem_body(&pem)), vec!["witness".to_string()]);
        assert!(matches!(init(&nodes, &[], dir.path()), Err(CertError::Exists(_))), "must not overwrite");
        let stray = vec![("site-b".to_string(), "10.0.0.2".to_string())];
        let err = init(&nodes, &stray, &dir.path().join("other")).expect_err("site-b is not listed");
        assert!(err.to_string().contains("\"site-b\" is not one of --nodes"), "{err}");
    }

    #[test]
    fn a_node_name_that_is_not_a_member_name_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("certs");
        for bad in ["site a", "../site-a", "127.0.0.1", ""] {
            let nodes = vec!["site-b".to_string(), bad.to_string()];
            let err = init(&nodes, &[], &out).expect_err(bad);
            assert!(matches!(err, CertError::BadNodeName(_)), "{bad:?}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "the message must name {bad:?}: {err}");
            assert!(!out.exists(), "{bad:?}: files were written");
        }
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        parsed.contents
    }
}
