//! The per-lcore flow index: 4-tuple → connection slot, open addressing with linear probing
//! and backward-shift deletion (no tombstones, so lookups stay short after churn). Fixed
//! capacity, no locks, no allocation after construction.

use std::net::{Ipv4Addr, SocketAddrV4};

/// A connection's 4-tuple as seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Our address (host order).
    pub local_ip: u32,
    /// The peer's address (host order).
    pub remote_ip: u32,
    /// Our port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
}

impl FlowKey {
    /// The key of the connection `local` ↔ `remote`.
    #[inline]
    pub fn new(local: SocketAddrV4, remote: SocketAddrV4) -> Self {
        FlowKey {
            local_ip: u32::from(*local.ip()),
            remote_ip: u32::from(*remote.ip()),
            local_port: local.port(),
            remote_port: remote.port(),
        }
    }

    /// Our end.
    pub fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(self.local_ip), self.local_port)
    }

    /// The peer's end.
    pub fn remote(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(self.remote_ip), self.remote_port)
    }

    /// A seeded 32-bit hash (the seed is random per table, so a peer cannot aim collisions).
    #[inline]
    pub fn hash(&self, seed: u64) -> u32 {
        let a = (self.local_ip as u64) << 32 | self.remote_ip as u64;
        let b = (self.local_port as u64) << 16 | self.remote_port as u64;
        let mut x = (a ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 29;
        x = (x ^ b ^ (seed >> 17)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 32;
        x as u32
    }
}

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u32,
    slot: u32,
}

/// Open-addressing index from [`FlowKey`] to a slot number. The keys themselves live in the
/// slots (the caller's array); lookups compare through a closure.
#[derive(Debug)]
pub struct FlowIndex {
    entries: Vec<Entry>,
    mask: usize,
    seed: u64,
    len: usize,
}

impl FlowIndex {
    /// An index for up to `capacity` keys, at most half full (table size: the next power of
    /// two ≥ 2 × capacity).
    pub fn new(capacity: usize, seed: u64) -> Self {
        let size = (capacity.max(1) * 2).next_power_of_two();
        FlowIndex {
            entries: vec![
                Entry {
                    hash: 0,
                    slot: EMPTY
                };
                size
            ],
            mask: size - 1,
            seed,
            len: 0,
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash this index uses for `key`.
    #[inline]
    pub fn hash_of(&self, key: &FlowKey) -> u32 {
        key.hash(self.seed)
    }

    /// The slot of `key`; `key_of(slot)` returns the key stored in a slot.
    #[inline]
    pub fn get(&self, key: &FlowKey, key_of: impl Fn(u32) -> FlowKey) -> Option<u32> {
        let h = self.hash_of(key);
        let mut i = h as usize & self.mask;
        loop {
            let e = self.entries[i];
            if e.slot == EMPTY {
                return None;
            }
            if e.hash == h && key_of(e.slot) == *key {
                return Some(e.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `key` → `slot` (the caller guarantees the key is absent and the capacity is
    /// respected; the table never fills because it is sized at twice the capacity).
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, slot: u32) {
        debug_assert!(self.len < self.entries.len() / 2 + 1);
        let h = self.hash_of(key);
        let mut i = h as usize & self.mask;
        while self.entries[i].slot != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = Entry { hash: h, slot };
        self.len += 1;
    }

    /// Removes the entry of `key` that points at `slot`; true if it was there.
    pub fn remove(&mut self, key: &FlowKey, slot: u32) -> bool {
        let h = self.hash_of(key);
        let mut i = h as usize & self.mask;
        loop {
            let e = self.entries[i];
            if e.slot == EMPTY {
                return false;
            }
            if e.slot == slot {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion: pull later members of the probe run into the hole when
        // their home bucket does not lie (cyclically) between the hole and them.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = self.entries[j];
            if e.slot == EMPTY {
                break;
            }
            let home = e.hash as usize & self.mask;
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = Entry {
            hash: 0,
            slot: EMPTY,
        };
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> FlowKey {
        FlowKey {
            local_ip: 0xc612_0001,
            remote_ip: 0xc612_0100 + (i % 7),
            local_port: 80,
            remote_port: (1000 + i) as u16,
        }
    }

    #[test]
    fn insert_get_remove_under_churn_matches_a_model() {
        let cap = 64;
        let mut idx = FlowIndex::new(cap, 0x1234_5678);
        let mut keys: Vec<Option<FlowKey>> = vec![None; cap];
        let mut rng = 0x9e37_79b9u32;
        let mut next = 0u32;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let slot = (rng as usize) % cap;
            match keys[slot] {
                Some(k) => {
                    assert!(idx.remove(&k, slot as u32));
                    keys[slot] = None;
                }
                None => {
                    let k = key(next);
                    next += 1;
                    idx.insert(&k, slot as u32);
                    keys[slot] = Some(k);
                }
            }
            // Every held key is found at its slot; a few absent ones are not.
            let key_of = |s: u32| keys[s as usize].unwrap_or_default();
            for (s, k) in keys.iter().enumerate() {
                if let Some(k) = k {
                    assert_eq!(idx.get(k, key_of), Some(s as u32));
                }
            }
            assert_eq!(idx.get(&key(next + 5), key_of), None);
            assert_eq!(idx.len(), keys.iter().flatten().count());
        }
    }
}
