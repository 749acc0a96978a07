//! Connection slots of one listening port, shared out so that no single
//! source can hold them all. A port has `total` slots: a source (an IPv4
//! address, or an IPv6 /64, what one host usually holds) may hold at most
//! `per_source` of them, and each of the `reserved` addresses (the
//! members' peer addresses, on the peer port) has `per_reserved` slots of
//! its own that no other source can take. A reserved address that has used
//! its own slots takes further ones from the shared pool like any other
//! source. A slot is held by the [`Slot`] [`ConnectionSlots::admit`] gives,
//! and freed when it is dropped. Refusals are counted by reason.
//!
//! This module only counts: it never touches a socket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How a port's slots are shared out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotPolicy {
    /// Slots of the port, reserved ones included.
    pub total: usize,
    /// Slots of the shared pool one source may hold at once.
    pub per_source: usize,
    /// Addresses with slots of their own.
    pub reserved: Vec<IpAddr>,
    /// Slots each reserved address has of its own.
    pub per_reserved: usize,
}

impl SlotPolicy {
    /// No reserved addresses: `total` slots shared, `per_source` of them
    /// at most for one source.
    pub fn shared(total: usize, per_source: usize) -> SlotPolicy {
        SlotPolicy { total, per_source, reserved: Vec::new(), per_reserved: 0 }
    }

    /// The slots left for the shared pool once each reserved address has
    /// its own.
    pub fn shared_pool(&self) -> usize {
        self.total.saturating_sub(self.reserved_addresses().len().saturating_mul(self.per_reserved))
    }

    /// The reserved addresses, each once, as sources are compared.
    fn reserved_addresses(&self) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = self.reserved.iter().map(|ip| canonical(*ip)).collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }
}

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot the source could take is held by others.
    Full,
    /// The source already holds its share of the shared pool.
    SourceShare,
}

impl Refusal {
    /// The reason as a metric label and log field.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Full => "cap",
            Refusal::SourceShare => "per_source",
        }
    }
}

/// Connections refused since start, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    /// For want of a free slot.
    pub full: u64,
    /// Because the source held its share.
    pub source_share: u64,
}

/// The slots of one port. Cheap to clone; clones share the slots.
#[derive(Clone, Debug)]
pub struct ConnectionSlots {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total: usize,
    shared_pool: usize,
    per_source: usize,
    per_reserved: usize,
    counts: Mutex<Counts>,
    refused_full: AtomicU64,
    refused_source: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    /// Slots of the shared pool held, in all.
    shared: usize,
    /// Slots of the shared pool held, by source.
    by_source: HashMap<Source, usize>,
    /// Slots held by each reserved address of its own ones (every reserved
    /// address has an entry).
    reserved: HashMap<IpAddr, usize>,
}

/// What one source is counted as: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Source {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => Source(v4),
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, what a dual-stack
/// socket reports) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Which slot a [`Slot`] holds.
#[derive(Debug)]
enum Held {
    Reserved(IpAddr),
    Shared(Source),
}

/// One slot, held until dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Inner>,
    held: Held,
}

impl ConnectionSlots {
    /// Slots shared out as `policy` says.
    pub fn new(policy: &SlotPolicy) -> ConnectionSlots {
        let reserved = policy.reserved_addresses().into_iter().map(|ip| (ip, 0)).collect();
        ConnectionSlots {
            inner: Arc::new(Inner {
                total: policy.total,
                shared_pool: policy.shared_pool(),
                per_source: policy.per_source,
                per_reserved: policy.per_reserved,
                counts: Mutex::new(Counts { reserved, ..Counts::default() }),
                refused_full: AtomicU64::new(0),
                refused_source: AtomicU64::new(0),
            }),
        }
    }

    /// A slot for a connection from `ip`: one of its own if `ip` is
    /// reserved and has one free, else one of the shared pool within the
    /// source's share. A refusal is counted.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let taken = self.take(ip);
        match taken {
            Err(Refusal::Full) => self.inner.refused_full.fetch_add(1, Ordering::Relaxed),
            Err(Refusal::SourceShare) => self.inner.refused_source.fetch_add(1, Ordering::Relaxed),
            Ok(_) => 0,
        };
        taken.map(|held| Slot { slots: Arc::clone(&self.inner), held })
    }

    fn take(&self, ip: IpAddr) -> Result<Held, Refusal> {
        let ip = canonical(ip);
        let mut counts = self.inner.lock();
        if let Some(own) = counts.reserved.get_mut(&ip) {
            if *own < self.inner.per_reserved {
                *own += 1;
                return Ok(Held::Reserved(ip));
            }
        }
        let source = Source::of(ip);
        let held = counts.by_source.get(&source).copied().unwrap_or(0);
        if held >= self.inner.per_source {
            return Err(Refusal::SourceShare);
        }
        if counts.shared >= self.inner.shared_pool {
            return Err(Refusal::Full);
        }
        counts.shared += 1;
        counts.by_source.insert(source, held + 1);
        Ok(Held::Shared(source))
    }

    /// Slots of the port, reserved ones included.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Slots held now, in all.
    pub fn held(&self) -> usize {
        let counts = self.inner.lock();
        counts.shared + counts.reserved.values().sum::<usize>()
    }

    /// Connections refused since start.
    pub fn refused(&self) -> Refused {
        Refused {
            full: self.inner.refused_full.load(Ordering::Relaxed),
            source_share: self.inner.refused_source.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// The counts. Every update under the lock is a single step that
    /// cannot panic, so a poisoned lock still holds consistent counts.
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        match self.held {
            Held::Reserved(ip) => {
                if let Some(own) = counts.reserved.get_mut(&ip) {
                    *own = own.saturating_sub(1);
                }
            }
            Held::Shared(source) => {
                counts.shared = counts.shared.saturating_sub(1);
                if let Some(held) = counts.by_source.get_mut(&source) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        counts.by_source.remove(&source);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    /// Takes up to `n` slots for `from`; the ones given.
    fn take(slots: &ConnectionSlots, from: &str, n: usize) -> Vec<Slot> {
        (0..n).map_while(|_| slots.admit(ip(from)).ok()).collect()
    }

    #[test]
    fn one_source_holds_at_most_its_share_and_others_still_get_in() {
        let slots = ConnectionSlots::new(&SlotPolicy::shared(8, 3));
        let held = take(&slots, "192.0.2.1", 10);
        assert_eq!(held.len(), 3);
        assert_eq!(slots.admit(ip("192.0.2.1")).err(), Some(Refusal::SourceShare));
        assert!(slots.admit(ip("192.0.2.2")).is_ok(), "another source was refused");
        // The fourth try of `take` and the one after it.
        assert_eq!(slots.refused(), Refused { full: 0, source_share: 2 });
    }

    #[test]
    fn a_full_port_refuses_every_source_until_a_slot_is_dropped() {
        let slots = ConnectionSlots::new(&SlotPolicy::shared(4, 2));
        let mut held = take(&slots, "192.0.2.1", 2);
        held.extend(take(&slots, "192.0.2.2", 2));
        assert_eq!(slots.held(), 4);
        assert_eq!(slots.admit(ip("192.0.2.3")).err(), Some(Refusal::Full));
        drop(held.pop());
        assert_eq!(slots.held(), 3);
        assert!(slots.admit(ip("192.0.2.3")).is_ok(), "a freed slot was not given again");
        assert_eq!(slots.refused(), Refused { full: 1, source_share: 0 });
    }

    #[test]
    fn dropping_every_slot_gives_a_source_its_whole_share_back() {
        let slots = ConnectionSlots::new(&SlotPolicy::shared(4, 2));
        for _ in 0..3 {
            let held = take(&slots, "192.0.2.1", 5);
            assert_eq!(held.len(), 2);
            drop(held);
            assert_eq!(slots.held(), 0);
        }
    }

    #[test]
    fn strangers_cannot_take_the_reserved_slots() {
        let policy = SlotPolicy {
            total: 10,
            per_source: 10,
            reserved: vec![ip("127.0.10.1"), ip("127.0.10.2")],
            per_reserved: 3,
        };
        assert_eq!(policy.shared_pool(), 4);
        let slots = ConnectionSlots::new(&policy);
        let strangers = take(&slots, "192.0.2.9", 10);
        assert_eq!(strangers.len(), 4, "a stranger took more than the shared pool");
        let mut members = Vec::new();
        for member in ["127.0.10.1", "127.0.10.2"] {
            let own = take(&slots, member, 3);
            assert_eq!(own.len(), 3, "{member} did not get its own slots");
            members.extend(own);
        }
        assert_eq!(slots.admit(ip("127.0.10.1")).err(), Some(Refusal::Full));
    }

    #[test]
    fn a_reserved_address_beyond_its_own_slots_shares_the_pool_like_a_stranger() {
        let policy = SlotPolicy { total: 6, per_source: 2, reserved: vec![ip("127.0.10.1")], per_reserved: 2 };
        let slots = ConnectionSlots::new(&policy);
        let member = take(&slots, "127.0.10.1", 10);
        assert_eq!(member.len(), 4, "own slots, then its share of the pool");
        assert_eq!(slots.admit(ip("127.0.10.1")).err(), Some(Refusal::SourceShare));
        // Its own slots come back first when it drops one of them.
        drop(member);
        assert_eq!(slots.held(), 0);
        assert_eq!(take(&slots, "192.0.2.1", 10).len(), 2);
    }

    #[test]
    fn a_reserved_address_listed_twice_has_its_slots_once() {
        let policy = SlotPolicy { total: 10, per_source: 10, reserved: vec![ip("127.0.10.1"); 3], per_reserved: 2 };
        assert_eq!(policy.shared_pool(), 8);
    }

    #[test]
    fn an_ipv6_source_is_its_64_and_a_mapped_ipv4_is_the_ipv4() {
        let slots = ConnectionSlots::new(&SlotPolicy::shared(10, 2));
        let _a = take(&slots, "2001:db8:0:1::1", 1);
        let _b = take(&slots, "2001:db8:0:1::ffff", 1);
        assert_eq!(slots.admit(ip("2001:db8:0:1:abcd::1")).err(), Some(Refusal::SourceShare));
        assert!(slots.admit(ip("2001:db8:0:2::1")).is_ok(), "another /64 was refused");
        let _c = take(&slots, "192.0.2.1", 2);
        assert_eq!(slots.admit(ip("::ffff:192.0.2.1")).err(), Some(Refusal::SourceShare));
    }

    #[test]
    fn a_mapped_ipv4_member_gets_its_reserved_slots() {
        let policy = SlotPolicy { total: 2, per_source: 0, reserved: vec![ip("127.0.10.1")], per_reserved: 1 };
        let slots = ConnectionSlots::new(&policy);
        assert!(slots.admit(ip("::ffff:127.0.10.1")).is_ok());
    }
}
