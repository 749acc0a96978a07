//! Who is in a lab: two sites and a witness (three voters, the shape of
//! every scenario but the five-voter set), or three sites and two
//! witnesses (five voters); each host's address and each site's priority.
//!
//! Pure data: nothing here starts a process or touches the network.

use std::net::Ipv4Addr;

pub const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const W: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
pub const C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 4);
pub const W2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 5);
pub const PROBE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
pub const SVC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);

/// Every site any lab has, in order of priority; the prober's answers are
/// indexed in this order.
pub const SITES: [&str; 3] = ["site-a", "site-b", "site-c"];

/// The address of any host of a lab: a site, a witness, the prober or the
/// services host.
pub fn host_addr(host: &str) -> Ipv4Addr {
    match host {
        "site-a" => A,
        "site-b" => B,
        "site-c" => C,
        "witness" => W,
        "witness-2" => W2,
        "probe" => PROBE,
        "svc" => SVC,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Whether `host` is a witness (it votes, never becomes active).
pub fn is_witness(host: &str) -> bool {
    host.starts_with("witness")
}

/// The voters of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// site-a, site-b and the witness.
    ThreeVoters,
    /// site-a, site-b, site-c, the witness and witness-2: any two may go
    /// and three of five are still a majority.
    FiveVoters,
}

impl Shape {
    /// Every shape, in the order their labs run.
    pub const ALL: [Shape; 2] = [Shape::ThreeVoters, Shape::FiveVoters];

    /// As a lab's log directory names it.
    pub fn name(self) -> &'static str {
        match self {
            Shape::ThreeVoters => "three-voters",
            Shape::FiveVoters => "five-voters",
        }
    }

    /// Its sites, highest priority first.
    pub fn sites(self) -> &'static [&'static str] {
        match self {
            Shape::ThreeVoters => &SITES[..2],
            Shape::FiveVoters => &SITES,
        }
    }

    /// Its witnesses.
    pub fn witnesses(self) -> &'static [&'static str] {
        match self {
            Shape::ThreeVoters => &["witness"],
            Shape::FiveVoters => &["witness", "witness-2"],
        }
    }

    /// Every voter, in the order they start: the witnesses first.
    pub fn voters(self) -> impl Iterator<Item = &'static str> {
        self.witnesses().iter().chain(self.sites()).copied()
    }

    /// `site`'s priority: 1 for the last site, one more for each before
    /// it (priority 0 would never be active). Two sites: 2 and 1.
    pub fn priority(self, site: &str) -> Option<usize> {
        let sites = self.sites();
        sites.iter().position(|s| *s == site).map(|i| sites.len() - i)
    }

    /// Every host of a lab and its address: the voters, the prober and
    /// the services host.
    pub fn hosts(self) -> Vec<(&'static str, Ipv4Addr)> {
        self.voters().chain(["probe", "svc"]).map(|h| (h, host_addr(h))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_voters_add_a_third_site_below_the_others_and_a_second_witness() {
        assert_eq!(Shape::ThreeVoters.voters().collect::<Vec<_>>(), ["witness", "site-a", "site-b"]);
        assert_eq!(
            Shape::FiveVoters.voters().collect::<Vec<_>>(),
            ["witness", "witness-2", "site-a", "site-b", "site-c"]
        );
        let priorities = |shape: Shape| SITES.map(|s| shape.priority(s));
        assert_eq!(priorities(Shape::ThreeVoters), [Some(2), Some(1), None]);
        assert_eq!(priorities(Shape::FiveVoters), [Some(3), Some(2), Some(1)]);
        assert_eq!(Shape::FiveVoters.priority("witness"), None);
        // One address per host, every one in the benchmarking range.
        let hosts = Shape::FiveVoters.hosts();
        let mut addrs: Vec<Ipv4Addr> = hosts.iter().map(|h| h.1).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 7);
        assert!(addrs.iter().all(|a| a.octets()[..2] == [198, 18]), "{addrs:?}");
        assert!(is_witness("witness-2") && !is_witness("site-c"));
    }
}
