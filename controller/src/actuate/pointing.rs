//! What a DNS-style actuator points its service names at, from its
//! section's `cname` and `addresses` keys: this site's addresses (A/AAAA)
//! or one name (CNAME), checked the same way for every such actuator.

use std::net::IpAddr;

use crate::settings::BadSetting;

/// What the service names point at; `N` is the actuator's form of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointing<N> {
    /// A and AAAA records.
    Addresses(Vec<IpAddr>),
    /// One CNAME.
    Cname(N),
}

/// The pointing a section asks for: `cname` (read with `name`), else its
/// own `addresses`, else the site's; errors name the key.
pub fn from_section<N>(
    cname: Option<&str>,
    addresses: Option<&[IpAddr]>,
    site_addresses: &[IpAddr],
    name: impl Fn(&str) -> Result<N, String>,
) -> Result<Pointing<N>, BadSetting> {
    let pointing = match (cname, addresses) {
        (Some(_), Some(_)) => return Err(BadSetting::new("cname", "set either cname or addresses, not both")),
        (Some(c), None) => Pointing::Cname(name(c).map_err(|p| BadSetting::new("cname", p))?),
        (None, Some(a)) => Pointing::Addresses(a.to_vec()),
        (None, None) => Pointing::Addresses(site_addresses.to_vec()),
    };
    if matches!(&pointing, Pointing::Addresses(a) if a.is_empty()) {
        return Err(BadSetting::new(
            "addresses",
            "no addresses: set actuators.addresses, this section's addresses or cname",
        ));
    }
    Ok(pointing)
}
