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
    /// A CA file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A validity of zero days.
    #[error("--days must be at least 1")]
    Days,
    /// A validity longer than the CA's own.
    #[error("--days {0} is more than the limit of {CA_DAYS} (the CA's own validity)")]
    TooManyDays(u32),
    /// A validity whose end the calendar cannot hold.
    #[error("a validity of {0} days from today ends beyond any date a certificate can hold")]
    ValidityOutOfRange(u32),
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

/// How long `failoverctl certs init` makes the CA valid: about ten years.
pub const CA_DAYS: u32 = 3650;

/// How long a node certificate is valid unless `--days` says otherwise:
/// about two years, so it is renewed (`certs issue`) well before the CA.
pub const NODE_DAYS: u32 = 730;

/// The node certificates to issue.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Node names, each a valid member name ([`crate::member_name`]).
    pub nodes: &'a [String],
    /// `(node, name)`: also issue `node`'s certificate for `name`, a host
    /// name or an IP address its HTTP port is reached by.
    pub http_names: &'a [(String, String)],
    /// Days each node certificate is valid, from today.
    pub days: u32,
}

impl Request<'_> {
    fn check(&self) -> Result<(), CertError> {
        for node in self.nodes {
            crate::member_name::check(node)?;
        }
        if let Some((node, name)) = self.http_names.iter().find(|(n, _)| !self.nodes.contains(n)) {
            return Err(CertError::UnknownNode { node: node.clone(), name: name.clone() });
        }
        if self.days == 0 {
            return Err(CertError::Days);
        }
        if self.days > CA_DAYS {
            return Err(CertError::TooManyDays(self.days));
        }
        Ok(())
    }
}

/// Valid from the start of today (UTC, so a clock a little behind still
/// accepts it) for `days`.
fn validity(params: &mut CertificateParams, days: u32) -> Result<(), CertError> {
    let start = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    params.not_before = start;
    params.not_after =
        start.checked_add(time::Duration::days(i64::from(days))).ok_or(CertError::ValidityOutOfRange(days))?;
    Ok(())
}

/// Creates `ca.pem`, `ca.key` (valid [`CA_DAYS`]) and `<node>.pem` /
/// `<node>.key` for every node of `request` in `out` (created if missing).
/// Returns the files written. Nothing is written if the request is wrong.
pub fn init(request: Request<'_>, out: &Path) -> Result<Vec<PathBuf>, CertError> {
    request.check()?;
    fs::create_dir_all(out).map_err(|source| CertError::Write { path: out.to_owned(), source })?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "failover cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params, CA_DAYS)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let mut written = vec![
        write(out.join("ca.pem"), &ca_cert.pem(), false)?,
        write(out.join("ca.key"), &ca_key.serialize_pem(), true)?,
    ];
    written.extend(issue_with(&Issuer::new(ca_params, ca_key), request, out)?);
    Ok(written)
}

/// New node certificates from the CA in `ca_dir` (`ca.pem`, `ca.key`), for
/// renewing them before they expire or adding a node: `<node>.pem` and
/// `<node>.key` in `out`, which must not hold them yet.
pub fn issue(request: Request<'_>, ca_dir: &Path, out: &Path) -> Result<Vec<PathBuf>, CertError> {
    request.check()?;
    let read = |name: &str| {
        let path = ca_dir.join(name);
        fs::read_to_string(&path).map_err(|source| CertError::Read { path, source })
    };
    let ca_key = KeyPair::from_pem(&read("ca.key")?)?;
    let issuer = Issuer::from_ca_cert_pem(&read("ca.pem")?, ca_key)?;
    fs::create_dir_all(out).map_err(|source| CertError::Write { path: out.to_owned(), source })?;
    issue_with(&issuer, request, out)
}

fn issue_with(issuer: &Issuer<'_, KeyPair>, request: Request<'_>, out: &Path) -> Result<Vec<PathBuf>, CertError> {
    let mut written = Vec::new();
    for node in request.nodes {
        let key = KeyPair::generate()?;
        let extra = request.http_names.iter().filter(|(n, _)| n == node).map(|(_, name)| name.clone());
        let mut params = CertificateParams::new(std::iter::once(node.clone()).chain(extra).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, node.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, request.days)?;
        let cert = params.signed_by(&key, issuer)?;
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
        let files = init(Request { nodes: &nodes, http_names: &http, days: NODE_DAYS }, dir.path()).expect("init");
        assert_eq!(files.len(), 6);
        let pem = fs::read_to_string(dir.path().join("site-a.pem")).expect("read");
        assert_eq!(dns_names(&pem_body(&pem)), vec!["site-a".to_string(), "site-a.example.com".to_string()]);
        let pem = fs::read_to_string(dir.path().join("witness.pem")).expect("read");
        assert_eq!(dns_names(&pem_body(&pem)), vec!["witness".to_string()]);
        let again = Request { nodes: &nodes, http_names: &[], days: NODE_DAYS };
        assert!(matches!(init(again, dir.path()), Err(CertError::Exists(_))), "must not overwrite");
        let stray = vec![("site-b".to_string(), "127.0.0.2".to_string())];
        let request = Request { nodes: &nodes, http_names: &stray, days: NODE_DAYS };
        let err = init(request, &dir.path().join("other")).expect_err("site-b is not listed");
        assert!(err.to_string().contains("\"site-b\" is not one of --nodes"), "{err}");
    }

    #[test]
    fn a_validity_beyond_the_cas_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("certs");
        let nodes = vec!["site-a".to_string()];
        for days in [CA_DAYS + 1, u32::MAX] {
            let err = init(Request { nodes: &nodes, http_names: &[], days }, &out).expect_err("too many days");
            assert!(matches!(err, CertError::TooManyDays(d) if d == days), "{days}: {err}");
            assert!(err.to_string().contains(&days.to_string()) && err.to_string().contains(&CA_DAYS.to_string()));
            assert!(!out.exists(), "{days}: files were written");
        }
        init(Request { nodes: &nodes, http_names: &[], days: CA_DAYS }, &out).expect("the CA's own validity");
    }

    #[test]
    fn a_node_name_that_is_not_a_member_name_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("certs");
        for bad in ["site a", "../site-a", "127.0.0.1", ""] {
            let nodes = vec!["site-b".to_string(), bad.to_string()];
            let err = init(Request { nodes: &nodes, http_names: &[], days: NODE_DAYS }, &out).expect_err(bad);
            assert!(matches!(err, CertError::BadNodeName(_)), "{bad:?}: {err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "the message must name {bad:?}: {err}");
            assert!(!out.exists(), "{bad:?}: files were written");
        }
    }

    /// Renewed node certificates come from the same CA, valid for the days
    /// asked from today, and a certificate from init is not valid for ever.
    #[test]
    fn certificates_are_valid_for_the_days_asked_and_renewed_from_the_same_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = vec!["site-a".to_string()];
        init(Request { nodes: &nodes, http_names: &[], days: NODE_DAYS }, dir.path()).expect("init");
        let renewed = dir.path().join("renewed");
        let request = Request { nodes: &nodes, http_names: &[], days: 30 };
        issue(request, dir.path(), &renewed).expect("issue");
        let days_valid = |path: &Path| {
            let pem = fs::read_to_string(path).expect("read");
            let der = pem_body(&pem);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
            let v = cert.validity();
            (v.not_after.timestamp() - v.not_before.timestamp()) / 86_400
        };
        assert_eq!(days_valid(&dir.path().join("site-a.pem")), i64::from(NODE_DAYS));
        assert_eq!(days_valid(&dir.path().join("ca.pem")), i64::from(CA_DAYS));
        assert_eq!(days_valid(&renewed.join("site-a.pem")), 30);
        let ca = x509_parser::pem::parse_x509_pem(&fs::read(dir.path().join("ca.pem")).expect("ca")).expect("pem").1;
        let ca = ca.parse_x509().expect("ca x509");
        let renewed_pem = fs::read_to_string(renewed.join("site-a.pem")).expect("read");
        let der = pem_body(&renewed_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
        assert_eq!(cert.issuer(), ca.subject());
        cert.verify_signature(Some(ca.public_key())).expect("signed by the same CA key");
        let request = Request { nodes: &nodes, http_names: &[], days: 30 };
        assert!(matches!(issue(request, dir.path(), &renewed), Err(CertError::Exists(_))));
        let request = Request { nodes: &nodes, http_names: &[], days: 0 };
        assert!(matches!(issue(request, dir.path(), &dir.path().join("x")), Err(CertError::Days)));
    }

    fn pem_body(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        parsed.contents
    }
}
