//! The characters a member name may use. A name is written into the DNS
//! fencing record (`epoch=N site=S`), into HAProxy and MongoDB mappings, and
//! into each node's TLS certificate as its DNS name, so it must be a plain
//! DNS name: 1 to 63 characters of ASCII letters, digits, `-`, `_` and `.`,
//! starting with a letter or a digit, with no empty dot-separated label, no
//! label that starts or ends with `-`, and not ending in an all-digit label
//! (which would read as an IP address).

use failover_core::{ClusterConfig, NodeId};
use rustls_pki_types::DnsName;

/// The longest member name.
pub const MAX_LEN: usize = 63;

/// Why a member name cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadMemberName {
    /// Empty or longer than [`MAX_LEN`].
    #[error("{0:?} must be 1 to 63 characters long")]
    Length(String),
    /// A character outside the allowed set.
    #[error("{name:?} contains {found:?}: use only ASCII letters, digits, '-', '_' and '.'")]
    Character {
        /// The name.
        name: String,
        /// The first character not allowed.
        found: char,
    },
    /// Does not start with a letter or a digit.
    #[error("{0:?} must start with an ASCII letter or digit")]
    Start(String),
    /// Allowed characters, but not a DNS name a certificate can carry.
    #[error(
        "{0:?} is not a DNS name: no empty label (\"..\", a trailing '.'), no label starting or ending with '-', \
         and the last label must not be all digits"
    )]
    NotDnsName(String),
}

/// The name of member `id` in `cfg`: the one rule every status line, event
/// and hook uses. An id the config does not know (only possible from a
/// message of a differently configured peer) is shown as `node#N`.
pub fn of(cfg: &ClusterConfig, id: NodeId) -> String {
    cfg.member(id).map_or_else(|| id.to_string(), |m| m.name.clone())
}

/// `Ok` if `name` can name a member (see the module documentation).
pub fn check(name: &str) -> Result<(), BadMemberName> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(BadMemberName::Length(name.to_owned()));
    }
    if let Some(found) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(BadMemberName::Character { name: name.to_owned(), found });
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(BadMemberName::Start(name.to_owned()));
    }
    if name.ends_with('.') || DnsName::try_from(name).is_err() {
        return Err(BadMemberName::NotDnsName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dns_names_are_accepted() {
        for name in ["site-a", "witness", "a", "Site_B.region-1", "eu-west.dc2", "x1", &"a".repeat(63)] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_that_break_fences_or_certificates_are_refused() {
        let too_long = "a".repeat(64);
        let cases = [
            ("", "Length"),
            (&too_long, "Length"),
            ("site a", "Character"),
            ("site=a", "Character"),
            ("sité", "Character"),
            ("a/b", "Character"),
            ("-site", "Start"),
            ("_site", "Start"),
            ("site..a", "NotDnsName"),
            ("site-a.", "NotDnsName"),
            ("site-.a", "NotDnsName"),
            ("127.0.0.1", "NotDnsName"),
        ];
        for (name, kind) in cases {
            let err = check(name).expect_err(name);
            assert!(format!("{err:?}").starts_with(kind), "{name:?}: {err:?}, want {kind}");
            assert!(err.to_string().contains(&format!("{name:?}")), "the message must quote the name: {err}");
        }
    }
}
