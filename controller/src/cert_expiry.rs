//! When the certificates this node uses expire: the peer certificate and
//! CA of `[tls]`, the HTTP port's certificate and `admin.tls_ca_file`. Read
//! at start and after each applied reload (which puts renewed files in use)
//! and published in [`crate::snapshot`]; `/metrics` shows the seconds left,
//! `/status` and `failoverctl status` a warning once fewer than
//! [`WARN_WITHIN`] are left, and the log warns at start and at each reload.
//!
//! It only reads certificates and says how long they have: whether one is
//! acceptable is for the TLS handshake to decide. Every certificate of
//! `failoverctl certs init` ends on the same day, so a cluster warns on
//! every node at once.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::reports::CertificateReport;
use crate::settings::Loaded;
use crate::snapshot::NodeSnapshot;

/// How long before its end a certificate is shown as expiring.
pub const WARN_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// The earliest end of validity (seconds since the Unix epoch) of the
/// certificates in a PEM file: a chain or a CA bundle is as good as its
/// first certificate to expire. `None` if it holds no readable one.
pub fn earliest_not_after(pem: &[u8]) -> Option<i64> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .filter_map(|p| p.parse_x509().ok().map(|c| c.validity().not_after.timestamp()))
        .min()
}

/// The certificate files `loaded` puts in use, each with when it expires.
/// The peer files are taken as read when the file was validated; a file
/// without a readable certificate is left out, with a log warning.
pub fn in_use(loaded: &Loaded) -> Vec<CertificateReport> {
    let (tls, admin) = (loaded.settings.tls.as_ref(), &loaded.settings.admin);
    let peer = loaded.tls.as_ref();
    let read = |path: &Path| std::fs::read(path).ok();
    let files = [
        ("peer", "tls.cert_file", tls.map(|t| t.cert_file.as_path()), peer.map(|f| f.cert.clone())),
        ("ca", "tls.ca_file", tls.map(|t| t.ca_file.as_path()), peer.map(|f| f.ca.clone())),
        ("http", "admin.tls_cert_file", admin.tls_cert_file.as_deref(), admin.tls_cert_file.as_deref().and_then(read)),
        ("http_ca", "admin.tls_ca_file", admin.tls_ca_file.as_deref(), admin.tls_ca_file.as_deref().and_then(read)),
    ];
    files
        .into_iter()
        .filter_map(|(certificate, key, path, pem)| {
            let file = path?.display().to_string();
            match pem.as_deref().and_then(earliest_not_after) {
                Some(not_after_unix) => Some(CertificateReport { certificate, key, file, not_after_unix }),
                None => {
                    tracing::warn!(%file, key, "cannot read when this certificate expires");
                    None
                }
            }
        })
        .collect()
}

/// Seconds from `now` until `report`'s certificate expires (negative once
/// it has).
pub fn seconds_left(report: &CertificateReport, now: SystemTime) -> i64 {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    report.not_after_unix.saturating_sub(now)
}

/// When `report`'s certificate expires, as RFC 3339 text.
pub fn expires_at(report: &CertificateReport) -> String {
    crate::clock::wall_from_unix_ms(u64::try_from(report.not_after_unix).unwrap_or(0).saturating_mul(1000))
}

/// Whether a certificate with `seconds_left` is to be warned about.
pub fn expires_soon(seconds_left: i64) -> bool {
    seconds_left < WARN_WITHIN.as_secs() as i64
}

/// The warning for `report` at `now`, if it expires within [`WARN_WITHIN`]
/// or has expired: which certificate, which file, when, and what to do.
pub fn warning(report: &CertificateReport, now: SystemTime) -> Option<String> {
    let left = seconds_left(report, now);
    if !expires_soon(left) {
        return None;
    }
    let CertificateReport { certificate, key, file, .. } = report;
    let at = expires_at(report);
    let when = match left / 86_400 {
        _ if left <= 0 => format!("EXPIRED at {at}"),
        0 => format!("expires at {at}, in less than a day"),
        1 => format!("expires at {at}, in 1 day"),
        days => format!("expires at {at}, in {days} days"),
    };
    Some(format!(
        "{certificate} certificate {file} ({key}) {when}: renew it (failoverctl certs issue) and reload every node"
    ))
}

/// Reads the certificates `loaded` puts in use, logs a warning for each
/// that expires soon and publishes them (at start and after each applied
/// reload).
pub fn publish(loaded: &Loaded, snapshot: &NodeSnapshot) {
    let certificates = in_use(loaded);
    for text in certificates.iter().filter_map(|r| warning(r, SystemTime::now())) {
        tracing::warn!("{text}");
    }
    snapshot.set_certificates(certificates);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn report(not_after_unix: i64) -> CertificateReport {
        CertificateReport { certificate: "peer", key: "tls.cert_file", file: "/tls/site-a.pem".into(), not_after_unix }
    }

    fn at(unix: i64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix as u64)
    }

    #[test]
    fn a_certificate_is_expiring_from_thirty_days_before_its_end() {
        assert!(!expires_soon(30 * DAY));
        assert!(expires_soon(30 * DAY - 1));
        assert!(expires_soon(0) && expires_soon(-DAY));
        let now = 1_000 * DAY;
        assert_eq!(seconds_left(&report(now + 5), at(now)), 5);
        assert_eq!(seconds_left(&report(now - 5), at(now)), -5);
        assert_eq!(warning(&report(now + 30 * DAY), at(now)), None);
    }

    #[test]
    fn the_warning_names_the_certificate_the_file_the_key_and_when() {
        let now = 20_000 * DAY;
        let soon = warning(&report(now + 14 * DAY), at(now)).expect("a warning");
        assert_eq!(
            soon,
            "peer certificate /tls/site-a.pem (tls.cert_file) expires at 2024-10-18T00:00:00.000Z, in 14 days: \
             renew it (failoverctl certs issue) and reload every node"
        );
        let hours = warning(&report(now + DAY + 3_600), at(now)).expect("a warning");
        assert!(hours.contains("in 1 day:"), "{hours}");
        let hours = warning(&report(now + 3_600), at(now)).expect("a warning");
        assert!(hours.contains("in less than a day:"), "{hours}");
        let past = warning(&report(now - DAY), at(now)).expect("a warning");
        assert!(past.contains("EXPIRED at 2024-10-03T00:00:00.000Z"), "{past}");
    }

    #[test]
    fn a_file_expires_with_its_first_certificate_to_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = vec!["site-a".to_string()];
        let request = crate::certs::Request { nodes: &nodes, http_names: &[], days: 20 };
        crate::certs::init(request, dir.path()).expect("init");
        let read = |name: &str| std::fs::read(dir.path().join(name)).expect("read");
        let (node, ca) = (read("site-a.pem"), read("ca.pem"));
        let node_end = earliest_not_after(&node).expect("node certificate");
        let ca_end = earliest_not_after(&ca).expect("CA certificate");
        assert_eq!((ca_end - node_end) / DAY, i64::from(crate::certs::CA_DAYS) - 20);
        let bundle = [ca.clone(), node].concat();
        assert_eq!(earliest_not_after(&bundle), Some(node_end));
        assert_eq!(earliest_not_after(b"not a certificate"), None);
        assert_eq!(earliest_not_after(&read("site-a.key")), None, "a key is no certificate");
    }
}
