//! Software flow steering between the TCP lcores (like VPP's worker handoff): every TCP
//! segment belongs to the lcore that the symmetric Toeplitz hash of its 4-tuple selects
//! through a 128-entry redirection table ([`rss::queue_for`]), and a segment that arrives on
//! another lcore travels there through a lockless SPSC ring, one per (from, to) pair.
//!
//! The mapping is the one [`RssSteer`] uses to choose ephemeral ports, so replies to an active
//! open hash back to the lcore that opened it. [`mesh`] builds the rings once at start-up;
//! each lcore takes its [`Handoff`] (its producers towards the others and its consumers from
//! them), so every ring has exactly one producer thread and one consumer thread.

use std::net::Ipv4Addr;

use super::rss::{self, RssSteer, SYMMETRIC_KEY};
use crate::mem::Mbuf;
use crate::ring::{spsc, BadCapacity, Consumer, Producer};

/// Default slots of each handoff ring (per ordered pair of lcores).
pub const HANDOFF_RING: usize = 1024;

/// Most lcores flows can be steered over: the redirection table has 128 entries.
pub const MAX_STEERED_LCORES: usize = 128;

/// Bytes of the hash input of a TCP/IPv4 flow (addresses and ports).
const INPUT: usize = 12;

/// Per byte position, the hash contribution of each byte value: the Toeplitz hash is linear
/// over XOR, so the hash of an input is the XOR of its bytes' entries (12 lookups instead of
/// 96 bit steps).
struct HashTable(Box<[[u32; 256]; INPUT]>);

impl HashTable {
    fn new(key: &[u8; 40]) -> Self {
        let mut t = Box::new([[0u32; 256]; INPUT]);
        let mut d = [0u8; INPUT];
        for (i, row) in t.iter_mut().enumerate() {
            for (v, slot) in row.iter_mut().enumerate() {
                d[i] = v as u8;
                *slot = rss::toeplitz(key, &d);
            }
            d[i] = 0;
        }
        HashTable(t)
    }

    #[inline]
    fn hash(&self, d: &[u8; INPUT]) -> u32 {
        let mut h = 0;
        for (row, &b) in self.0.iter().zip(d) {
            h ^= row[b as usize];
        }
        h
    }
}

/// One lcore's end of the handoff mesh: where it sends segments it does not own, and where
/// the others send it theirs.
pub struct Handoff {
    index: usize,
    lcores: usize,
    table: HashTable,
    to: Vec<Option<Producer<Mbuf>>>,
    from: Vec<Option<Consumer<Mbuf>>>,
}

/// Builds the rings between `lcores` TCP lcores (`depth` slots each, a power of two) and
/// returns one [`Handoff`] per lcore, in order. Fails on a bad depth, or on more lcores than
/// [`MAX_STEERED_LCORES`] or fewer than 2 (reported as a bad capacity of `lcores`).
pub fn mesh(lcores: usize, depth: usize) -> Result<Vec<Handoff>, BadCapacity> {
    if !(2..=MAX_STEERED_LCORES).contains(&lcores) {
        return Err(BadCapacity(lcores));
    }
    let mut out: Vec<Handoff> = (0..lcores)
        .map(|index| Handoff {
            index,
            lcores,
            table: HashTable::new(&SYMMETRIC_KEY),
            to: (0..lcores).map(|_| None).collect(),
            from: (0..lcores).map(|_| None).collect(),
        })
        .collect();
    for a in 0..lcores {
        for b in 0..lcores {
            if a != b {
                let (p, c) = spsc(depth)?;
                out[a].to[b] = Some(p);
                out[b].from[a] = Some(c);
            }
        }
    }
    Ok(out)
}

impl Handoff {
    /// This lcore's place among the TCP lcores (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many TCP lcores share the flows.
    pub fn lcores(&self) -> usize {
        self.lcores
    }

    /// The steering an active open on this lcore needs: ephemeral ports whose replies map to
    /// this lcore.
    pub fn steer(&self) -> RssSteer {
        RssSteer {
            key: SYMMETRIC_KEY,
            queues: self.lcores as u16,
            queue: self.index as u16,
        }
    }

    /// The lcore (index) that owns flows with RSS hash `hash` ([`SYMMETRIC_KEY`]).
    #[inline]
    pub fn owner_of_hash(&self, hash: u32) -> usize {
        rss::queue_for(hash, self.lcores as u16) as usize
    }

    /// The symmetric Toeplitz hash of a TCP/IPv4 flow (same value as [`rss::hash_v4_l4`]
    /// with [`SYMMETRIC_KEY`], from a table).
    #[inline]
    pub fn hash(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> u32 {
        let mut d = [0u8; INPUT];
        d[..4].copy_from_slice(&src.octets());
        d[4..8].copy_from_slice(&dst.octets());
        d[8..10].copy_from_slice(&sport.to_be_bytes());
        d[10..].copy_from_slice(&dport.to_be_bytes());
        self.table.hash(&d)
    }

    /// The lcore (index) that owns the flow of a segment from `src:sport` to `dst:dport`
    /// (either direction gives the same answer).
    #[inline]
    pub fn owner(&self, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> usize {
        self.owner_of_hash(self.hash(src, dst, sport, dport))
    }

    /// The ring towards lcore `to` (None for this lcore itself or an index out of range).
    pub fn sender(&mut self, to: usize) -> Option<&mut Producer<Mbuf>> {
        self.to.get_mut(to)?.as_mut()
    }

    /// The ring from lcore `from` (None for this lcore itself or an index out of range).
    pub fn receiver(&mut self, from: usize) -> Option<&mut Consumer<Mbuf>> {
        self.from.get_mut(from)?.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows() -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr, u16, u16)> {
        (0..3000u32).map(|i| {
            let a = Ipv4Addr::from(0xc612_0000 | (i.wrapping_mul(7919) & 0xffff));
            let b = Ipv4Addr::from(0xc613_0000 | (i.wrapping_mul(104_729) & 0xffff));
            (a, b, 1024 + (i * 31 % 60000) as u16, 80 + (i % 11) as u16)
        })
    }

    #[test]
    fn the_table_hash_is_the_toeplitz_hash() {
        let h = &mesh(2, 8).unwrap()[0];
        for (a, b, pa, pb) in flows() {
            assert_eq!(
                h.hash(a, b, pa, pb),
                rss::hash_v4_l4(&SYMMETRIC_KEY, a, b, pa, pb)
            );
        }
    }

    #[test]
    fn both_directions_of_a_flow_have_one_owner_and_flows_spread() {
        for n in [2usize, 3, 4] {
            let m = mesh(n, 8).unwrap();
            let mut per = vec![0u32; n];
            for (a, b, pa, pb) in flows() {
                let o = m[0].owner(a, b, pa, pb);
                assert_eq!(o, m[0].owner(b, a, pb, pa), "{a}:{pa} <-> {b}:{pb}");
                // Every lcore's view of the mapping is the same.
                assert!(m.iter().all(|h| h.owner(a, b, pa, pb) == o));
                per[o] += 1;
            }
            let fair = 3000 / n as u32;
            for (i, c) in per.iter().enumerate() {
                assert!(
                    *c > fair * 7 / 10 && *c < fair * 13 / 10,
                    "{n} lcores: lcore {i} owns {c} of 3000 flows"
                );
            }
        }
    }

    #[test]
    fn ephemeral_ports_chosen_by_rss_steer_come_home_through_the_handoff() {
        let m = mesh(3, 8).unwrap();
        let (local, remote) = ("198.18.0.1".parse().unwrap(), "198.18.0.2".parse().unwrap());
        for h in &m {
            let s = h.steer();
            let mut mine = 0;
            for p in 40000..41000u16 {
                let owner_in = h.owner(remote, local, 80, p);
                let owner_out = h.owner(local, remote, p, 80);
                assert_eq!(owner_in, owner_out);
                assert_eq!(s.is_mine(remote, 80, local, p), owner_in == h.index());
                mine += s.is_mine(remote, 80, local, p) as u32;
            }
            assert!((200..470).contains(&mine), "lcore {}: {mine}", h.index());
        }
    }

    #[test]
    fn each_pair_has_its_own_ring_and_none_to_itself() {
        let mut m = mesh(3, 16).unwrap();
        assert!(m[1].sender(1).is_none() && m[1].receiver(1).is_none());
        assert!(m[0].sender(7).is_none());
        let pool = crate::mem::Mempool::new(&{
            let mut p = crate::mem::MempoolParams::new("handoff-test", 64);
            p.huge = crate::mem::HugePolicy::Off;
            p
        })
        .unwrap();
        let mut mb = pool.alloc().unwrap();
        mb.append(3).unwrap().copy_from_slice(&[1, 2, 3]);
        assert!(m[0].sender(2).unwrap().enqueue(mb).is_ok());
        assert!(m[1].receiver(0).unwrap().dequeue().is_none());
        assert!(m[2].receiver(1).unwrap().dequeue().is_none());
        let got = m[2].receiver(0).unwrap().dequeue().unwrap();
        assert_eq!(got.data(), &[1, 2, 3]);
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(mesh(1, 8).is_err());
        assert!(mesh(MAX_STEERED_LCORES + 1, 8).is_err());
        assert!(mesh(2, 100).is_err());
    }
}
