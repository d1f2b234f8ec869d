//! What every stack node on every lcore shares: the forwarding and neighbour tables, the
//! interfaces, the pools to build packets from, and the stack's tunables.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::fib::{Fib, Interface};
use super::neigh::NeighTable;
use crate::mem::{HugePolicy, Mempool, MempoolParams};

/// Mbufs in [`StackEnv::headers`].
const HEADER_MBUFS: u32 = 4096;

/// Timers and limits of the stack (from `[stack]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackParams {
    /// A neighbour confirmation stays fresh this long.
    pub arp_timeout_ns: u64,
    /// Requests sent before a neighbour is declared unreachable.
    pub arp_retries: u32,
    /// Packets held per unresolved neighbour.
    pub arp_hold: u16,
    /// Interval between requests for one neighbour.
    pub arp_retry_ns: u64,
    /// Reassembly gives up on a datagram after this long.
    pub reassembly_timeout_ns: u64,
    /// Datagrams in reassembly per lcore.
    pub reassembly_max: u32,
    /// Fragments per datagram.
    pub reassembly_max_frags: u16,
    /// ICMP errors per second per lcore (0: none are sent).
    pub icmp_rate: u32,
    /// ICMP error burst.
    pub icmp_burst: u32,
    /// TTL of locally originated packets.
    pub ttl: u8,
}

impl Default for StackParams {
    fn default() -> Self {
        StackParams {
            arp_timeout_ns: 60_000_000_000,
            arp_retries: 3,
            arp_hold: 4,
            arp_retry_ns: 1_000_000_000,
            reassembly_timeout_ns: 30_000_000_000,
            reassembly_max: 1024,
            reassembly_max_frags: 64,
            icmp_rate: 1000,
            icmp_burst: 50,
            ttl: 64,
        }
    }
}

/// Shared state of the stack, one per data plane.
#[derive(Debug)]
pub struct StackEnv {
    /// Forwarding table (also knows the interfaces).
    pub fib: Arc<Fib>,
    /// Neighbour table.
    pub neigh: Arc<NeighTable>,
    /// Pool to build locally generated packets for each port (indexed by port id).
    pub pools: Vec<Mempool>,
    /// Tunables.
    pub params: StackParams,
    /// Per port id: gratuitous ARP already announced (only one lcore does it).
    pub garp_sent: Vec<AtomicBool>,
    /// Small mbufs (128 data bytes) for the headers of TCP segments whose payload leaves by
    /// reference, and for the indirect mbufs that refer to that payload: a few hot cache lines
    /// of a small pool instead of a cold, page-sized-or-larger buffer of a jumbo port pool per
    /// segment. `None` if it could not be made; the port pools serve then, as they do when it
    /// runs empty.
    pub headers: Option<Mempool>,
}

impl StackEnv {
    /// Assembles the environment. `pools[i]` is the pool of port `i`.
    pub fn new(fib: Fib, neigh: NeighTable, pools: Vec<Mempool>, params: StackParams) -> Arc<Self> {
        let n = pools.len();
        let mut h = MempoolParams::new("stack-headers", HEADER_MBUFS);
        h.data_room = 128;
        h.huge = HugePolicy::Off;
        Arc::new(StackEnv {
            fib: Arc::new(fib),
            neigh: Arc::new(neigh),
            pools,
            params,
            garp_sent: (0..n).map(|_| AtomicBool::new(false)).collect(),
            headers: Mempool::new(&h).ok(),
        })
    }

    /// The interface of port `port`.
    #[inline]
    pub fn interface(&self, port: u16) -> Option<&Interface> {
        self.fib.interface(port)
    }

    /// True when `port` accepts partial L4 checksums on transmit
    /// ([`Interface::tx_l4_checksum_offload`]); false for unknown ports.
    #[inline]
    pub fn tx_l4_checksum_offload(&self, port: u16) -> bool {
        self.interface(port)
            .is_some_and(|i| i.tx_l4_checksum_offload)
    }

    /// The pool for packets generated on `port` (the first pool for unknown ports).
    #[inline]
    pub fn pool(&self, port: u16) -> &Mempool {
        self.pools.get(port as usize).unwrap_or(&self.pools[0])
    }
}
