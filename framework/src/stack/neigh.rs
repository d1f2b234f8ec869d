//! The neighbour (ARP) table, shared by every lcore without locks.
//!
//! An ARP reply can arrive on any lcore (whichever polls the queue RSS put it on), while the
//! packets waiting for that neighbour sit on another. So the table of resolved addresses is
//! shared: a fixed-size open-addressing array whose slots are atomics. Readers (`ipv4-rewrite`,
//! once per packet) do one or two relaxed loads; writers (the `arp` node, rare) publish a MAC
//! with one store. The packets held while a neighbour resolves stay on the lcore that holds
//! them (see the `arp` node). The table never allocates after creation: when it is full, new
//! neighbours are refused and the caller counts the drop.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::port::MacAddr;

const VALID: u64 = 1 << 63;
const STATIC: u64 = 1 << 62;
const MAC_MASK: u64 = (1 << 48) - 1;

/// One neighbour slot.
#[derive(Debug, Default)]
struct Slot {
    /// `(port + 1) << 32 | ip`; 0 = empty. Never changes once set.
    key: AtomicU64,
    /// MAC in the low 48 bits, plus VALID / STATIC flags.
    mac: AtomicU64,
    /// When the MAC was last confirmed (ns, `monotonic_ns`).
    confirmed_ns: AtomicU64,
    /// When a request for this neighbour was last sent (rate limit across lcores).
    requested_ns: AtomicU64,
    /// Requests sent since the last confirmation.
    probes: AtomicU32,
    /// Set by users of a resolved entry, cleared by the refresher: "someone still needs this".
    used: AtomicU32,
}

/// State of a neighbour as seen by a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Resolved; the MAC is fresh.
    Reachable(MacAddr),
    /// Resolved long ago; the MAC may still be used while a refresh is under way.
    Stale(MacAddr),
    /// Not resolved (never, or given up on).
    Incomplete,
}

/// A handle to a slot, valid for the life of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighId(pub u32);

/// The shared neighbour table.
#[derive(Debug)]
pub struct NeighTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// How long a confirmation stays fresh.
    timeout_ns: u64,
    /// Entries that went from unresolved to resolved, ever (see [`NeighTable::resolutions`]).
    resolutions: AtomicU64,
}

fn key(port: u16, ip: Ipv4Addr) -> u64 {
    ((port as u64 + 1) << 32) | u32::from(ip) as u64
}

fn hash(k: u64) -> usize {
    // A multiplicative hash is plenty: keys are not attacker-chosen beyond the subnet's size.
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

/// Longest probe sequence before giving up (keeps a full table from costing a full scan).
const MAX_PROBE: usize = 64;

impl NeighTable {
    /// A table with `capacity` slots (rounded up to a power of two); confirmations stay fresh for
    /// `timeout_ns`.
    pub fn new(capacity: usize, timeout_ns: u64) -> Self {
        let cap = capacity.max(16).next_power_of_two();
        NeighTable {
            slots: (0..cap).map(|_| Slot::default()).collect(),
            mask: cap - 1,
            timeout_ns,
            resolutions: AtomicU64::new(0),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Finds the slot of `(port, ip)` without creating it.
    #[inline]
    pub fn find(&self, port: u16, ip: Ipv4Addr) -> Option<NeighId> {
        let k = key(port, ip);
        let mut i = hash(k) & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = self.slots[i].key.load(Ordering::Acquire);
            if s == k {
                return Some(NeighId(i as u32));
            }
            if s == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Finds or creates the slot of `(port, ip)`; `None` when the table is full.
    pub fn find_or_insert(&self, port: u16, ip: Ipv4Addr) -> Option<NeighId> {
        let k = key(port, ip);
        let mut i = hash(k) & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let slot = &self.slots[i].key;
            match slot.compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(NeighId(i as u32)),
                Err(existing) if existing == k => return Some(NeighId(i as u32)),
                Err(_) => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// The state of a slot at time `now_ns`. Marks resolved entries as used (one store only
    /// when the flag was clear, so readers on many cores do not fight over the line).
    #[inline]
    pub fn state(&self, id: NeighId, now_ns: u64) -> NeighState {
        let s = &self.slots[id.0 as usize];
        let mac = s.mac.load(Ordering::Acquire);
        if mac & VALID == 0 {
            return NeighState::Incomplete;
        }
        let m = mac_of(mac);
        if mac & STATIC != 0 {
            return NeighState::Reachable(m);
        }
        if s.used.load(Ordering::Relaxed) == 0 {
            s.used.store(1, Ordering::Relaxed);
        }
        let age = now_ns.saturating_sub(s.confirmed_ns.load(Ordering::Relaxed));
        if age <= self.timeout_ns {
            NeighState::Reachable(m)
        } else {
            NeighState::Stale(m)
        }
    }

    /// Convenience: the state of `(port, ip)`, `Incomplete` if unknown.
    #[inline]
    pub fn lookup(&self, port: u16, ip: Ipv4Addr, now_ns: u64) -> NeighState {
        match self.find(port, ip) {
            Some(id) => self.state(id, now_ns),
            None => NeighState::Incomplete,
        }
    }

    /// Records `mac` for `(port, ip)` as confirmed now (ARP reply or request from it). Static
    /// entries are not overwritten. Returns the slot, or `None` if the table is full.
    pub fn confirm(&self, port: u16, ip: Ipv4Addr, mac: MacAddr, now_ns: u64) -> Option<NeighId> {
        let id = self.find_or_insert(port, ip)?;
        let s = &self.slots[id.0 as usize];
        if s.mac.load(Ordering::Acquire) & STATIC != 0 {
            return Some(id);
        }
        s.confirmed_ns.store(now_ns, Ordering::Relaxed);
        s.probes.store(0, Ordering::Relaxed);
        let old = s.mac.swap(VALID | mac_bits(mac), Ordering::AcqRel);
        if old & VALID == 0 {
            self.resolutions.fetch_add(1, Ordering::Release);
        }
        Some(id)
    }

    /// How many entries have gone from unresolved to resolved so far: a node holding packets
    /// for unresolved neighbours looks again when this changes (the reply may have arrived on
    /// another lcore).
    pub fn resolutions(&self) -> u64 {
        self.resolutions.load(Ordering::Acquire)
    }

    /// Updates an existing entry only (a frame from a known neighbour refreshes it; one from an
    /// unknown host does not create state, as Linux does for ARP requests not aimed at us).
    pub fn refresh_if_known(&self, port: u16, ip: Ipv4Addr, mac: MacAddr, now_ns: u64) -> bool {
        match self.find(port, ip) {
            Some(_) => self.confirm(port, ip, mac, now_ns).is_some(),
            None => false,
        }
    }

    /// Adds a permanent entry (from config).
    pub fn add_static(&self, port: u16, ip: Ipv4Addr, mac: MacAddr) -> Option<NeighId> {
        let id = self.find_or_insert(port, ip)?;
        self.slots[id.0 as usize]
            .mac
            .store(VALID | STATIC | mac_bits(mac), Ordering::Release);
        Some(id)
    }

    /// Claims the right to send a request for `id` now: true for exactly one caller per
    /// `interval_ns`, across all lcores. Counts the probe.
    pub fn claim_request(&self, id: NeighId, now_ns: u64, interval_ns: u64) -> bool {
        let s = &self.slots[id.0 as usize];
        let last = s.requested_ns.load(Ordering::Relaxed);
        if last != 0 && now_ns.saturating_sub(last) < interval_ns {
            return false;
        }
        if s.requested_ns
            .compare_exchange(last, now_ns.max(1), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        s.probes.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Requests sent since the last confirmation.
    pub fn probes(&self, id: NeighId) -> u32 {
        self.slots[id.0 as usize].probes.load(Ordering::Relaxed)
    }

    /// Forgets the MAC of a dynamic entry (it stopped answering).
    pub fn invalidate(&self, id: NeighId) {
        let s = &self.slots[id.0 as usize];
        let cur = s.mac.load(Ordering::Acquire);
        if cur & STATIC == 0 {
            let _ = s
                .mac
                .compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// The (port, ip) of a slot.
    pub fn key_of(&self, id: NeighId) -> Option<(u16, Ipv4Addr)> {
        let k = self.slots[id.0 as usize].key.load(Ordering::Acquire);
        if k == 0 {
            return None;
        }
        Some((((k >> 32) - 1) as u16, Ipv4Addr::from(k as u32)))
    }

    /// Stale dynamic entries that were used since the last call: the refresher sends a
    /// request for each (and clears the mark). Visits at most `max` slots starting at `from`;
    /// returns the next starting point, so a caller can spread the scan over turns.
    pub fn scan_stale(
        &self,
        from: usize,
        max: usize,
        now_ns: u64,
        mut f: impl FnMut(NeighId, u16, Ipv4Addr),
    ) -> usize {
        let n = self.slots.len();
        let mut i = from % n;
        for _ in 0..max.min(n) {
            let s = &self.slots[i];
            let mac = s.mac.load(Ordering::Acquire);
            if mac & VALID != 0 && mac & STATIC == 0 {
                let age = now_ns.saturating_sub(s.confirmed_ns.load(Ordering::Relaxed));
                if age > self.timeout_ns && s.used.swap(0, Ordering::Relaxed) != 0 {
                    if let Some((port, ip)) = self.key_of(NeighId(i as u32)) {
                        f(NeighId(i as u32), port, ip);
                    }
                }
            }
            i = (i + 1) % n;
        }
        i
    }

    /// Every resolved entry: (port, ip, mac, static) — for display.
    pub fn entries(&self) -> Vec<(u16, Ipv4Addr, MacAddr, bool)> {
        (0..self.slots.len())
            .filter_map(|i| {
                let mac = self.slots[i].mac.load(Ordering::Acquire);
                let (port, ip) = self.key_of(NeighId(i as u32))?;
                (mac & VALID != 0).then(|| (port, ip, mac_of(mac), mac & STATIC != 0))
            })
            .collect()
    }
}

fn mac_bits(m: MacAddr) -> u64 {
    let b = m.0;
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

fn mac_of(v: u64) -> MacAddr {
    let b = (v & MAC_MASK).to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn resolve_age_refresh_and_invalidate() {
        let t = NeighTable::new(64, 30 * SEC);
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(t.lookup(0, ip("198.18.0.2"), 0), NeighState::Incomplete);
        let id = t.find_or_insert(0, ip("198.18.0.2")).unwrap();
        assert_eq!(t.state(id, 0), NeighState::Incomplete);
        assert!(t.claim_request(id, 5, SEC));
        assert!(!t.claim_request(id, 6, SEC), "rate limited");
        assert!(t.claim_request(id, 5 + SEC, SEC));
        assert_eq!(t.probes(id), 2);
        t.confirm(0, ip("198.18.0.2"), mac, 10 * SEC).unwrap();
        assert_eq!(t.probes(id), 0);
        assert_eq!(
            t.lookup(0, ip("198.18.0.2"), 20 * SEC),
            NeighState::Reachable(mac)
        );
        assert_eq!(
            t.lookup(0, ip("198.18.0.2"), 50 * SEC),
            NeighState::Stale(mac)
        );
        // Same IP on another port is another neighbour.
        assert_eq!(
            t.lookup(1, ip("198.18.0.2"), 20 * SEC),
            NeighState::Incomplete
        );
        let mut stale = Vec::new();
        t.scan_stale(0, 64, 50 * SEC, |id, port, ip| stale.push((id, port, ip)));
        assert_eq!(stale, [(id, 0, ip("198.18.0.2"))]);
        // The use mark was consumed: not reported again until used again.
        let mut again = 0;
        t.scan_stale(0, 64, 50 * SEC, |_, _, _| again += 1);
        assert_eq!(again, 0);
        t.invalidate(id);
        assert_eq!(t.state(id, 50 * SEC), NeighState::Incomplete);
        assert!(!t.refresh_if_known(0, ip("198.18.0.77"), mac, 0));
        assert!(t.refresh_if_known(0, ip("198.18.0.2"), mac, 60 * SEC));
        assert_eq!(t.entries(), vec![(0, ip("198.18.0.2"), mac, false)]);
    }

    #[test]
    fn static_entries_never_age_or_change() {
        let t = NeighTable::new(16, SEC);
        let m1 = MacAddr([2, 0, 0, 0, 0, 1]);
        let id = t.add_static(3, ip("10.0.0.1"), m1).unwrap();
        t.confirm(3, ip("10.0.0.1"), MacAddr([2, 0, 0, 0, 0, 2]), 0);
        t.invalidate(id);
        assert_eq!(
            t.lookup(3, ip("10.0.0.1"), 100 * SEC),
            NeighState::Reachable(m1)
        );
    }

    #[test]
    fn a_full_table_refuses_new_neighbours() {
        let t = NeighTable::new(16, SEC);
        let mut ok = 0;
        for i in 0..100u32 {
            if t.find_or_insert(0, Ipv4Addr::from(0xc612_0000 + i))
                .is_some()
            {
                ok += 1;
            }
        }
        assert_eq!(ok, 16);
        assert!(t.find(0, Ipv4Addr::from(0xc612_0000 + 99)).is_none());
    }

    #[test]
    fn concurrent_confirm_and_read() {
        let t = std::sync::Arc::new(NeighTable::new(1024, SEC));
        let n = if cfg!(miri) { 20 } else { 500 };
        let w = {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    let mac = MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
                    t.confirm(0, Ipv4Addr::from(0x0a00_0000 + i), mac, 1);
                }
            })
        };
        for _ in 0..n {
            for i in 0..n {
                if let NeighState::Reachable(m) = t.lookup(0, Ipv4Addr::from(0x0a00_0000 + i), 1) {
                    assert_eq!(m, MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8]));
                }
            }
        }
        w.join().unwrap();
        assert_eq!(t.entries().len(), n as usize);
    }
}
