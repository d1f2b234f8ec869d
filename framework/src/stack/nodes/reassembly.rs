//! `ipv4-reassembly` (Linux: `ip_defrag` → `ip_frag_queue` → `ip_frag_reasm`).
//!
//! Fragments of datagrams addressed to us are held per (source, destination, identification,
//! protocol) until they cover the datagram from offset 0 to the end announced by the last
//! fragment, then chained into one packet (no byte is copied) and handed to `ipv4-local`.
//!
//! Every piece of state is allocated when the node is built (one instance per lcore, so no
//! locks): `reassembly_max` datagram slots, each with room for `reassembly_max_frags`
//! fragments, an open-addressing index over the slots and a list of slots in creation order.
//! Handling a fragment never touches the heap.
//!
//! Like RFC 5722 (IPv6) and Linux since 2018 for IPv4, a datagram with overlapping fragments is
//! dropped as a whole rather than patched; so is one whose fragments contradict each other
//! (a second last fragment, data beyond the announced end) or that cannot complete (too big,
//! too many fragments). An exact duplicate of a held fragment is dropped alone.
//!
//! Note on memory: held fragments are the received mbufs themselves, so the worst case holds
//! `reassembly_max × reassembly_max_frags` buffers of the receive pool until the timeout.

use std::hash::BuildHasher;
use std::sync::Arc;

use super::ipv4_route::set_icmp_error;
use super::names;
use crate::batch::Burst;
use crate::graph::{meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::Mbuf;
use crate::stack::StackEnv;
use crate::wire::{icmpv4_code, icmpv4_type, Ipv4Packet};

const EDGE_LOCAL: usize = 0;
const EDGE_ICMP_ERROR: usize = 1;

/// "No slot" in links and index cells.
const NIL: u32 = u32::MAX;

/// Fragments dropped by one `poll` at most (the drop node's input holds `PENDING_CAP`); the
/// rest of the expired datagrams wait for the next loop turn.
const EXPIRE_BUDGET: usize = 256;

/// Largest IPv4 datagram.
const IP_MAX: u32 = 65535;

/// What identifies a datagram (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Key {
    src: u32,
    dst: u32,
    ident: u16,
    proto: u8,
}

/// One held fragment: its payload range in the datagram and its own header length.
struct Frag {
    off: u32,
    end: u32,
    hl: u8,
    m: Mbuf,
}

/// A datagram in reassembly.
struct Slot {
    key: Key,
    /// Fragments ordered by offset; they never overlap.
    frags: Vec<Frag>,
    /// Payload bytes held (the sum of the fragment lengths, which equals the coverage since
    /// nothing overlaps).
    covered: u32,
    /// End of the payload announced by the last fragment (valid when `has_last`).
    last_end: u32,
    has_last: bool,
    created_ns: u64,
    /// Creation-order list: the neighbour created just before / after this one.
    older: u32,
    newer: u32,
}

/// Why a datagram or fragment is given up (indexes into the node's drop ids).
#[derive(Debug, Clone, Copy)]
enum Why {
    Overlap,
    TooBig,
    TooMany,
    BadLength,
    InconsistentLast,
    Timeout,
}

/// Drop reasons of the node.
struct Reasons {
    malformed: DropId,
    duplicate: DropId,
    overlap: DropId,
    too_big: DropId,
    too_many: DropId,
    table_full: DropId,
    bad_length: DropId,
    inconsistent_last: DropId,
    timeout: DropId,
    shared: DropId,
    reassembled: DropId,
    memory_full: DropId,
}

impl Reasons {
    fn of(&self, why: Why) -> DropId {
        match why {
            Why::Overlap => self.overlap,
            Why::TooBig => self.too_big,
            Why::TooMany => self.too_many,
            Why::BadLength => self.bad_length,
            Why::InconsistentLast => self.inconsistent_last,
            Why::Timeout => self.timeout,
        }
    }
}

/// IPv4 fragment reassembly, one table per lcore.
///
/// Input: fragments with data at the IPv4 header, `meta.l3_len` set and the packet trimmed to
/// the total length (as `ipv4-input` leaves them). Next nodes: `ipv4-local` (whole datagrams,
/// flagged [`PktMeta::F_REASSEMBLED`]) and `icmp-error` (time exceeded, code 1, about the first
/// fragment of a datagram that timed out).
///
/// Drop reasons: `malformed`, `duplicate`, `overlap`, `too_big`, `too_many_fragments`,
/// `table_full`, `bad_fragment_length`, `inconsistent_last`, `timeout` (counted per fragment),
/// `shared_buffer`; `datagrams_reassembled` counts successes.
///
/// The index is an open-addressing table (linear probing, backward-shift deletion, at most half
/// full) keyed by a seeded hash, so a lookup costs O(1) whatever the number of datagrams in
/// progress, and a sender cannot aim many keys at one bucket without knowing the seed. A linear
/// scan would cost up to `reassembly_max` (1024 by default) key compares per fragment, which a
/// fragment flood would turn into the bottleneck. Timeouts use the creation-order list: `poll`
/// only looks at its oldest entry, so it costs one compare per loop turn while nothing
/// expires, and nothing at all when the table is empty.
pub struct Ipv4Reassembly {
    env: Arc<StackEnv>,
    slots: Vec<Slot>,
    /// Free slot numbers (a stack).
    free: Vec<u32>,
    /// Open-addressing index: slot numbers, `NIL` for empty cells; `mask + 1` cells.
    index: Vec<u32>,
    mask: usize,
    seed: u64,
    /// Oldest and newest datagram in progress.
    oldest: u32,
    newest: u32,
    live: usize,
    max_frags: usize,
    /// Fragments held across all datagrams, and the cap on them (like Linux's
    /// `ipfrag_high_thresh`): a fragment flood must not drain the receive pool.
    held: usize,
    max_held: usize,
    r: Reasons,
}

impl Ipv4Reassembly {
    /// A node with its table sized from `env.params` (`reassembly_max` datagrams of at most
    /// `reassembly_max_frags` fragments each, given up after `reassembly_timeout_ns`). All
    /// memory is allocated here.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        let p = env.params;
        let max = p.reassembly_max as usize;
        let max_frags = p.reassembly_max_frags as usize;
        let slots = (0..max)
            .map(|_| Slot {
                key: Key::default(),
                frags: Vec::with_capacity(max_frags),
                covered: 0,
                last_end: 0,
                has_last: false,
                created_ns: 0,
                older: NIL,
                newer: NIL,
            })
            .collect();
        let cells = (max * 2).next_power_of_two().max(2);
        // At most a quarter of the smallest pool may sit in reassembly, and never less than
        // one full datagram's worth.
        let smallest_pool = env.pools.iter().map(|p| p.capacity()).min().unwrap_or(0);
        let max_held = (max * max_frags).min(smallest_pool / 4).max(max_frags);
        Ipv4Reassembly {
            env: env.clone(),
            slots,
            free: (0..max as u32).rev().collect(),
            index: vec![NIL; cells],
            mask: cells - 1,
            seed: std::collections::hash_map::RandomState::new().hash_one(0x6672_6167u64),
            oldest: NIL,
            newest: NIL,
            live: 0,
            max_frags,
            held: 0,
            max_held,
            r: Reasons {
                malformed: DropId::placeholder(),
                duplicate: DropId::placeholder(),
                overlap: DropId::placeholder(),
                too_big: DropId::placeholder(),
                too_many: DropId::placeholder(),
                table_full: DropId::placeholder(),
                bad_length: DropId::placeholder(),
                inconsistent_last: DropId::placeholder(),
                timeout: DropId::placeholder(),
                shared: DropId::placeholder(),
                reassembled: DropId::placeholder(),
                memory_full: DropId::placeholder(),
            },
        }
    }

    /// Datagrams currently in reassembly.
    pub fn in_progress(&self) -> usize {
        self.live
    }

    #[inline]
    fn hash(&self, k: &Key) -> usize {
        let a = (u64::from(k.src) << 32 | u64::from(k.dst)) ^ self.seed;
        let b = (u64::from(k.ident) << 8 | u64::from(k.proto)) ^ self.seed.rotate_left(29);
        let mut x = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        x as usize
    }

    /// The index cell holding `k` (`Ok`), or the empty cell where it would go (`Err`). The index
    /// is never more than half full, so an empty cell always ends the probe.
    #[inline]
    fn find(&self, k: &Key) -> Result<usize, usize> {
        let mut i = self.hash(k) & self.mask;
        loop {
            let s = self.index[i];
            if s == NIL {
                return Err(i);
            }
            if self.slots[s as usize].key == *k {
                return Ok(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Empties index cell `i` and shifts later cells of the probe run back (no tombstones).
    fn index_remove(&mut self, mut i: usize) {
        self.index[i] = NIL;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.index[j];
            if s == NIL {
                return;
            }
            let home = self.hash(&self.slots[s as usize].key) & self.mask;
            // The entry at j may move to i if its home is not in the cyclic range (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.index[i] = s;
                self.index[j] = NIL;
                i = j;
            }
        }
    }

    /// Takes a free slot for `k`, placing it in index cell `cell` (from `find`).
    fn alloc(&mut self, k: Key, cell: usize, now: u64) -> Option<usize> {
        let s = self.free.pop()?;
        self.index[cell] = s;
        let slot = &mut self.slots[s as usize];
        slot.key = k;
        slot.covered = 0;
        slot.last_end = 0;
        slot.has_last = false;
        slot.created_ns = now;
        slot.older = self.newest;
        slot.newer = NIL;
        if self.newest != NIL {
            self.slots[self.newest as usize].newer = s;
        } else {
            self.oldest = s;
        }
        self.newest = s;
        self.live += 1;
        Some(s as usize)
    }

    /// Returns an emptied slot to the free list.
    fn release(&mut self, s: usize) {
        debug_assert!(self.slots[s].frags.is_empty());
        if let Ok(cell) = self.find(&self.slots[s].key) {
            self.index_remove(cell);
        }
        let (older, newer) = (self.slots[s].older, self.slots[s].newer);
        if older != NIL {
            self.slots[older as usize].newer = newer;
        } else {
            self.oldest = newer;
        }
        if newer != NIL {
            self.slots[newer as usize].older = older;
        } else {
            self.newest = older;
        }
        self.free.push(s as u32);
        self.live -= 1;
    }

    /// Drops every fragment of datagram `s` under `why` and frees the slot.
    fn kill(&mut self, s: usize, why: Why, ctx: &mut NodeCtx<'_>) {
        let reason = self.r.of(why);
        self.held -= self.slots[s].frags.len();
        for f in self.slots[s].frags.drain(..) {
            ctx.drop(reason, f.m);
        }
        self.release(s);
    }

    /// Drops `m` under `why`, and with it the datagram it belongs to, if one is in progress.
    fn reject(&mut self, k: &Key, m: Mbuf, why: Why, ctx: &mut NodeCtx<'_>) {
        crate::trace_pkt!(ctx, &m, "{why:?}: datagram dropped");
        ctx.drop(self.r.of(why), m);
        if let Ok(cell) = self.find(k) {
            let s = self.index[cell] as usize;
            self.kill(s, why, ctx);
        }
    }

    fn handle(&mut self, mut m: Mbuf, now: u64, ctx: &mut NodeCtx<'_>) {
        let d = m.data();
        if d.len() < 20 {
            ctx.drop(self.r.malformed, m);
            return;
        }
        let p = Ipv4Packet::new_unchecked(d);
        let hl = p.header_len();
        let tl = p.total_len() as usize;
        if p.version() != 4 || hl < 20 || d.len() < hl || tl < hl || tl > m.pkt_len() {
            ctx.drop(self.r.malformed, m);
            return;
        }
        let off = u32::from(p.fragment_offset());
        let mf = p.more_fragments();
        let key = Key {
            src: u32::from(p.src_addr()),
            dst: u32::from(p.dst_addr()),
            ident: p.ident(),
            proto: p.protocol(),
        };
        if !mf && off == 0 {
            crate::trace_pkt!(ctx, &m, "not a fragment → {}", names::IPV4_LOCAL);
            ctx.enqueue(EDGE_LOCAL, m);
            return;
        }
        m.truncate(tl);
        let plen = (tl - hl) as u32;
        let end = off + plen;
        if plen == 0 || (mf && plen % 8 != 0) {
            self.reject(&key, m, Why::BadLength, ctx);
            return;
        }
        if end > IP_MAX {
            self.reject(&key, m, Why::TooBig, ctx);
            return;
        }
        if off == 0 && m.is_shared() {
            // The first fragment's header is rewritten on completion.
            ctx.drop(self.r.shared, m);
            return;
        }
        // The cap stops a flood of new datagrams; fragments of datagrams already in progress
        // get `max_frags` of slack so that they can still complete.
        let found = self.find(&key);
        let limit = if found.is_ok() {
            self.max_held + self.max_frags
        } else {
            self.max_held
        };
        if self.held >= limit {
            crate::trace_pkt!(ctx, &m, "fragment memory full → drop");
            ctx.drop(self.r.memory_full, m);
            return;
        }
        let s = match found {
            Ok(cell) => self.index[cell] as usize,
            Err(cell) => match self.alloc(key, cell, now) {
                Some(s) => s,
                None => {
                    crate::trace_pkt!(ctx, &m, "reassembly table full → drop");
                    ctx.drop(self.r.table_full, m);
                    return;
                }
            },
        };
        let slot = &self.slots[s];
        let n = slot.frags.len();
        let pos = slot.frags.partition_point(|f| f.off < off);
        let dup = pos < n && slot.frags[pos].off == off && slot.frags[pos].end == end;
        let max_end = slot.frags.last().map_or(0, |f| f.end);
        let verdict = if !mf {
            if slot.has_last {
                if dup && end == slot.last_end {
                    Err(None)
                } else {
                    Err(Some(Why::InconsistentLast))
                }
            } else if end <= max_end {
                // A fragment with "more fragments" already reaches at least this far.
                Err(Some(Why::InconsistentLast))
            } else {
                Ok(())
            }
        } else if slot.has_last && end >= slot.last_end {
            Err(Some(Why::InconsistentLast))
        } else if dup {
            Err(None)
        } else {
            Ok(())
        };
        let verdict = verdict.and_then(|()| {
            if (pos > 0 && slot.frags[pos - 1].end > off) || (pos < n && slot.frags[pos].off < end)
            {
                Err(Some(Why::Overlap))
            } else if n >= self.max_frags {
                Err(Some(Why::TooMany))
            } else {
                Ok(())
            }
        });
        match verdict {
            Ok(()) => {}
            Err(None) => {
                crate::trace_pkt!(ctx, &m, "duplicate fragment off {off} → drop");
                ctx.drop(self.r.duplicate, m);
                return;
            }
            Err(Some(why)) => {
                self.reject(&key, m, why, ctx);
                return;
            }
        }
        crate::trace_pkt!(
            ctx,
            &m,
            "fragment off {off} len {plen}{}: held",
            if mf { " MF" } else { "" }
        );
        let slot = &mut self.slots[s];
        slot.frags.insert(
            pos,
            Frag {
                off,
                end,
                hl: hl as u8,
                m,
            },
        );
        slot.covered += plen;
        self.held += 1;
        if !mf {
            slot.has_last = true;
            slot.last_end = end;
        }
        if slot.has_last && slot.covered == slot.last_end {
            self.complete(s, ctx);
        }
    }

    /// Chains the fragments of complete datagram `s` into one packet for `ipv4-local`.
    fn complete(&mut self, s: usize, ctx: &mut NodeCtx<'_>) {
        let slot = &mut self.slots[s];
        let hl0 = slot.frags[0].hl as usize;
        let total = hl0 as u32 + slot.last_end;
        if total > IP_MAX {
            self.kill(s, Why::TooBig, ctx);
            return;
        }
        self.held -= slot.frags.len();
        let mut frags = slot.frags.drain(..);
        let mut head = frags.next().expect("a complete datagram has fragments").m;
        let mut failed = false;
        for f in frags {
            let mut t = f.m;
            if failed || !t.adj(f.hl as usize) {
                failed = true;
                ctx.drop(self.r.malformed, t);
                continue;
            }
            if let Err(t) = head.chain(t) {
                failed = true;
                ctx.drop(self.r.too_many, t);
            }
        }
        self.release(s);
        if failed {
            ctx.drop(self.r.too_many, head);
            return;
        }
        {
            let d = head.data_mut();
            let mut p = Ipv4Packet::new_unchecked(&mut d[..hl0]);
            p.set_total_len(total as u16);
            p.set_more_fragments(false);
            p.set_fragment_offset(0);
            p.fill_checksum();
        }
        let md = meta_mut(&mut head);
        md.flags |= PktMeta::F_REASSEMBLED;
        md.l3_len = hl0 as u8;
        ctx.count(self.r.reassembled, 1);
        crate::trace_pkt!(
            ctx,
            &head,
            "reassembled {total} bytes in {} segments → {}",
            head.nb_segs(),
            names::IPV4_LOCAL
        );
        ctx.enqueue(EDGE_LOCAL, head);
    }

    /// Gives up on datagram `s`: an ICMP time exceeded about its first fragment if it arrived,
    /// every other fragment dropped. Returns the number of fragments it held.
    fn expire(&mut self, s: usize, ctx: &mut NodeCtx<'_>) -> usize {
        let slot = &mut self.slots[s];
        let n = slot.frags.len();
        let first = if slot.frags.first().is_some_and(|f| f.off == 0) {
            self.held -= 1;
            Some(slot.frags.remove(0).m)
        } else {
            None
        };
        self.kill(s, Why::Timeout, ctx);
        if let Some(mut m) = first {
            ctx.count(self.r.timeout, 1);
            crate::trace_pkt!(ctx, &m, "reassembly timed out → {}", names::ICMP_ERROR);
            set_icmp_error(
                &mut m,
                icmpv4_type::TIME_EXCEEDED,
                icmpv4_code::REASSEMBLY_TIME_EXCEEDED,
                0,
            );
            ctx.enqueue(EDGE_ICMP_ERROR, m);
        }
        n
    }
}

impl Node for Ipv4Reassembly {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOCAL.into(), names::ICMP_ERROR.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.r = Reasons {
            malformed: ctx.drop_reason("malformed"),
            duplicate: ctx.drop_reason("duplicate"),
            overlap: ctx.drop_reason("overlap"),
            too_big: ctx.drop_reason("too_big"),
            too_many: ctx.drop_reason("too_many_fragments"),
            table_full: ctx.drop_reason("table_full"),
            bad_length: ctx.drop_reason("bad_fragment_length"),
            inconsistent_last: ctx.drop_reason("inconsistent_last"),
            timeout: ctx.drop_reason("timeout"),
            shared: ctx.drop_reason("shared_buffer"),
            reassembled: ctx.drop_reason("datagrams_reassembled"),
            memory_full: ctx.drop_reason("fragment_memory_full"),
        };
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let now = ctx.now_ns();
        let n = pkts.len();
        pkts.drain_front(n, |m| self.handle(m, now, ctx));
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.live == 0 {
            return;
        }
        let now = ctx.now_ns();
        let timeout = self.env.params.reassembly_timeout_ns;
        let mut budget = EXPIRE_BUDGET;
        while self.oldest != NIL && budget > 0 {
            let s = self.oldest as usize;
            if now.saturating_sub(self.slots[s].created_ns) < timeout {
                break;
            }
            budget = budget.saturating_sub(self.expire(s, ctx));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::graph::{meta, Graph, GraphBuilder, NodeStats, TraceControl};
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::runtime::LcoreIo;
    use crate::stack::frag::fragment;
    use crate::stack::{Fib, NeighTable, StackParams};
    use crate::wire::checksum;

    type Captured = Arc<Mutex<Vec<Mbuf>>>;

    /// Keeps every packet it receives.
    struct Capture(Captured);
    impl Node for Capture {
        fn next_nodes(&self) -> Vec<String> {
            Vec::new()
        }
        fn process(&mut self, pkts: &mut Burst, _ctx: &mut NodeCtx<'_>) {
            let mut v = self.0.lock().unwrap();
            while let Some(m) = pkts.pop() {
                v.push(m);
            }
        }
    }

    struct Rig {
        graph: Graph,
        io: LcoreIo,
        entry: usize,
        local: Captured,
        icmp: Captured,
        mp: Mempool,
    }

    impl Rig {
        fn new(params: StackParams) -> Rig {
            let mut p = MempoolParams::new("reasm-test", 1024);
            p.huge = HugePolicy::Off;
            p.cache_size = 0;
            let mp = Mempool::new(&p).unwrap();
            let env = StackEnv::new(
                Fib::new(Vec::new(), &[]).unwrap(),
                NeighTable::new(16, 1_000_000_000),
                vec![mp.clone()],
                params,
            );
            let local: Captured = Arc::default();
            let icmp: Captured = Arc::default();
            let mut b = GraphBuilder::new();
            b.add(names::IPV4_REASSEMBLY, Box::new(Ipv4Reassembly::new(&env)))
                .add(names::IPV4_LOCAL, Box::new(Capture(local.clone())))
                .add(names::ICMP_ERROR, Box::new(Capture(icmp.clone())));
            let graph = b
                .build(1, names::IPV4_REASSEMBLY, TraceControl::new())
                .unwrap();
            let entry = graph.node_id(names::IPV4_REASSEMBLY).unwrap();
            Rig {
                graph,
                io: LcoreIo::new(Vec::new()),
                entry,
                local,
                icmp,
                mp,
            }
        }

        fn send(&mut self, frags: Vec<Mbuf>) {
            let mut it = frags.into_iter().peekable();
            while it.peek().is_some() {
                let mut b = Burst::new();
                while !b.is_full() {
                    match it.next() {
                        Some(m) => b.push(m).ok().unwrap(),
                        None => break,
                    }
                }
                self.graph.dispatch(self.entry, &mut b, &mut self.io);
            }
        }

        fn take_local(&self) -> Vec<Mbuf> {
            std::mem::take(&mut *self.local.lock().unwrap())
        }

        fn take_icmp(&self) -> Vec<Mbuf> {
            std::mem::take(&mut *self.icmp.lock().unwrap())
        }

        fn drops(&self) -> Vec<(String, u64)> {
            let s: Vec<NodeStats> = self.graph.monitor().stats();
            s.into_iter()
                .find(|n| n.node == names::IPV4_REASSEMBLY)
                .unwrap()
                .drops
                .into_iter()
                .filter(|(_, c)| *c > 0)
                .collect()
        }

        fn count(&self, reason: &str) -> u64 {
            self.drops()
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |(_, c)| *c)
        }

        /// Drops the graph (and every held fragment) and checks the pool is whole again.
        fn finish(self) {
            let Rig {
                graph,
                local,
                icmp,
                mp,
                ..
            } = self;
            drop(graph);
            local.lock().unwrap().clear();
            icmp.lock().unwrap().clear();
            assert_eq!(mp.in_use(), 0, "mbufs leaked");
        }
    }

    fn params() -> StackParams {
        StackParams {
            reassembly_max: 8,
            reassembly_max_frags: 64,
            ..StackParams::default()
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32 * 7) as u8)
            .collect()
    }

    fn header(b: &mut [u8], total: usize, ident: u16, off: usize, mf: bool) {
        b[0] = 0x45;
        b[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        b[4..6].copy_from_slice(&ident.to_be_bytes());
        let fo = ((off / 8) as u16) | if mf { 0x2000 } else { 0 };
        b[6..8].copy_from_slice(&fo.to_be_bytes());
        b[8] = 64;
        b[9] = 17;
        b[12..16].copy_from_slice(&[198, 18, 0, 2]);
        b[16..20].copy_from_slice(&[198, 18, 0, 1]);
        let c = checksum::internet_checksum(&b[..20]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
    }

    fn init_meta(m: &mut Mbuf) {
        *meta_mut(m) = PktMeta {
            l3_len: 20,
            ..PktMeta::default()
        };
    }

    /// One fragment by hand: 20-byte header, payload `data` at byte offset `off`.
    fn frag(mp: &Mempool, ident: u16, off: usize, mf: bool, data: &[u8]) -> Mbuf {
        let mut m = mp.alloc().unwrap();
        let b = m.append(20 + data.len()).unwrap();
        header(b, 20 + data.len(), ident, off, mf);
        b[20..].copy_from_slice(data);
        init_meta(&mut m);
        m
    }

    /// A whole datagram of `payload` (chained over as many buffers as needed), fragmented for
    /// an MTU of 1500 by `stack::frag::fragment`.
    fn fragments(mp: &Mempool, ident: u16, payload: &[u8]) -> Vec<Mbuf> {
        fragments_with_options(mp, ident, payload, &[])
    }

    /// As `fragments`, with IPv4 options (a multiple of 4 bytes) in the header.
    fn fragments_with_options(
        mp: &Mempool,
        ident: u16,
        payload: &[u8],
        options: &[u8],
    ) -> Vec<Mbuf> {
        let hl = 20 + options.len();
        let mut hdr = [0u8; 60];
        header(&mut hdr, hl + payload.len(), ident, 0, false);
        hdr[0] = 0x40 | (hl / 4) as u8;
        hdr[20..hl].copy_from_slice(options);
        hdr[10..12].fill(0);
        let c = checksum::internet_checksum(&hdr[..hl]);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let mut whole = mp.alloc().unwrap();
        whole.append(hl).unwrap().copy_from_slice(&hdr[..hl]);
        for chunk in payload.chunks(1800) {
            let mut seg = mp.alloc().unwrap();
            seg.append(chunk.len()).unwrap().copy_from_slice(chunk);
            whole.chain(seg).ok().unwrap();
        }
        init_meta(&mut whole);
        let mut out = Vec::new();
        fragment(&whole, 1500, mp, &mut |f| out.push(f)).unwrap();
        out
    }

    fn bytes(m: &Mbuf) -> Vec<u8> {
        let mut v = vec![0u8; m.pkt_len()];
        assert!(m.read_at(0, &mut v));
        v
    }

    /// Checks a reassembled datagram: valid header, not a fragment, the expected payload.
    fn check_whole(m: &Mbuf, ident: u16, payload: &[u8]) {
        let all = bytes(m);
        let p = Ipv4Packet::new_checked(&all[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(!p.is_fragment());
        assert_eq!(p.ident(), ident);
        assert_eq!(p.total_len() as usize, 20 + payload.len());
        assert_eq!(m.pkt_len(), 20 + payload.len());
        assert!(p.payload() == payload, "payload differs");
        assert_ne!(meta(m).flags & PktMeta::F_REASSEMBLED, 0);
        assert_eq!(meta(m).l3_len, 20);
    }

    /// A deterministic shuffle (xorshift), so failures reproduce.
    fn shuffle<T>(v: &mut [T], mut seed: u64) {
        for i in (1..v.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            v.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }

    #[test]
    fn in_order_reverse_and_shuffled_fragments_reassemble() {
        for (len, expect_frags) in [(3000usize, 3usize), (40000, 28)] {
            for order in 0..3 {
                let mut rig = Rig::new(params());
                let ident = 0x1000 + order as u16;
                let payload = pattern(len, order as u8);
                let mut fr = fragments(&rig.mp, ident, &payload);
                assert_eq!(fr.len(), expect_frags);
                match order {
                    0 => {}
                    1 => fr.reverse(),
                    _ => shuffle(&mut fr, 0x9e37_79b9 + len as u64),
                }
                rig.send(fr);
                let got = rig.take_local();
                assert_eq!(got.len(), 1, "len {len} order {order}: {:?}", rig.drops());
                check_whole(&got[0], ident, &payload);
                assert_eq!(got[0].nb_segs(), expect_frags);
                assert_eq!(rig.count("datagrams_reassembled"), 1);
                assert_eq!(rig.drops().len(), 1, "{:?}", rig.drops());
                drop(got);
                rig.finish();
            }
        }
    }

    #[test]
    fn first_fragment_options_are_kept() {
        let mut rig = Rig::new(params());
        // A copied option (0x83, 7 bytes, padded with EOL) and a not-copied one (record route).
        let opts = [0x83, 7, 4, 1, 2, 3, 4, 0, 0x07, 3, 4, 0];
        let payload = pattern(5000, 9);
        let mut fr = fragments_with_options(&rig.mp, 42, &payload, &opts);
        assert_eq!(fr.len(), 4);
        assert_eq!(meta(&fr[0]).l3_len, 32);
        assert_eq!(Ipv4Packet::new_unchecked(fr[1].data()).header_len(), 28);
        shuffle(&mut fr, 7);
        rig.send(fr);
        let got = rig.take_local();
        assert_eq!(got.len(), 1, "{:?}", rig.drops());
        let all = bytes(&got[0]);
        let p = Ipv4Packet::new_checked(&all[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(!p.is_fragment());
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.options(), &opts);
        assert_eq!(p.total_len() as usize, 32 + payload.len());
        assert!(p.payload() == &payload[..]);
        assert_eq!(meta(&got[0]).l3_len, 32);
        drop(got);
        rig.finish();
    }

    #[test]
    fn interleaved_datagrams_and_a_non_fragment() {
        let mut rig = Rig::new(params());
        let a = pattern(3000, 1);
        let b = pattern(4000, 2);
        let fa = fragments(&rig.mp, 1, &a);
        let fb = fragments(&rig.mp, 2, &b);
        let mut all: Vec<Mbuf> = Vec::new();
        let (mut ia, mut ib) = (fa.into_iter(), fb.into_iter());
        loop {
            let (x, y) = (ia.next(), ib.next());
            if x.is_none() && y.is_none() {
                break;
            }
            all.extend(x);
            all.extend(y);
        }
        // A whole datagram that reached this node passes through untouched.
        let plain = frag(&rig.mp, 3, 0, false, &[7; 16]);
        all.push(plain);
        rig.send(all);
        let mut got = rig.take_local();
        assert_eq!(got.len(), 3);
        got.sort_by_key(|m| Ipv4Packet::new_unchecked(m.data()).ident());
        check_whole(&got[0], 1, &a);
        check_whole(&got[1], 2, &b);
        assert_eq!(got[2].pkt_len(), 36);
        assert_eq!(meta(&got[2]).flags & PktMeta::F_REASSEMBLED, 0);
        drop(got);
        rig.finish();
    }

    #[test]
    fn exact_duplicate_is_dropped_alone() {
        let mut rig = Rig::new(params());
        let p = pattern(24, 3);
        let f0 = frag(&rig.mp, 9, 0, true, &p[..8]);
        let f0b = frag(&rig.mp, 9, 0, true, &p[..8]);
        let f1 = frag(&rig.mp, 9, 8, true, &p[8..16]);
        let f2 = frag(&rig.mp, 9, 16, false, &p[16..]);
        let f2b = frag(&rig.mp, 9, 16, false, &p[16..]);
        rig.send(vec![f0, f0b, f2, f2b, f1]);
        let got = rig.take_local();
        assert_eq!(got.len(), 1);
        check_whole(&got[0], 9, &p);
        assert_eq!(rig.count("duplicate"), 2);
        drop(got);
        rig.finish();
    }

    #[test]
    fn overlap_drops_the_whole_datagram() {
        let mut rig = Rig::new(params());
        let p = pattern(32, 4);
        // Held: [0,16) and [24,32 last); then [8,24) overlaps the first.
        rig.send(vec![
            frag(&rig.mp, 5, 0, true, &p[..16]),
            frag(&rig.mp, 5, 24, false, &p[24..]),
            frag(&rig.mp, 5, 8, true, &p[8..24]),
        ]);
        assert_eq!(rig.count("overlap"), 3);
        assert!(rig.take_local().is_empty());
        // Same offset, different length (not an exact duplicate) is an overlap too; and a
        // fragment ending inside the next one.
        rig.send(vec![
            frag(&rig.mp, 6, 0, true, &p[..16]),
            frag(&rig.mp, 6, 0, true, &p[..8]),
        ]);
        assert_eq!(rig.count("overlap"), 5);
        rig.send(vec![
            frag(&rig.mp, 7, 16, true, &p[16..24]),
            frag(&rig.mp, 7, 8, true, &p[8..24]),
        ]);
        assert_eq!(rig.count("overlap"), 7);
        // The datagram is gone: a later fragment with the same key starts afresh.
        rig.send(vec![
            frag(&rig.mp, 5, 0, true, &p[..24]),
            frag(&rig.mp, 5, 24, false, &p[24..]),
        ]);
        let got = rig.take_local();
        assert_eq!(got.len(), 1);
        check_whole(&got[0], 5, &p);
        drop(got);
        rig.finish();
    }

    #[test]
    fn too_big_fragment_and_datagram() {
        let mut rig = Rig::new(params());
        // Offset 65528 + 16 bytes ends past 65535.
        rig.send(vec![
            frag(&rig.mp, 8, 0, true, &[1; 8]),
            frag(&rig.mp, 8, 65528, false, &[1; 16]),
        ]);
        assert_eq!(rig.count("too_big"), 2);
        // Payload ending at exactly 65535 fits a fragment but not the 20-byte header: caught on
        // completion. Built from a 64-byte first fragment and a last at 65520 + 15 bytes; the
        // middle is filled with 1480-byte fragments.
        let mut fr = vec![frag(&rig.mp, 9, 0, true, &[2; 1480])];
        let mut off = 1480;
        while off + 1480 <= 65520 {
            fr.push(frag(&rig.mp, 9, off, true, &[2; 1480]));
            off += 1480;
        }
        fr.push(frag(&rig.mp, 9, off, true, &vec![2; 65520 - off]));
        fr.push(frag(&rig.mp, 9, 65520, false, &[2; 15]));
        let n = fr.len() as u64;
        rig.send(fr);
        assert!(rig.take_local().is_empty());
        assert_eq!(rig.count("too_big"), 2 + n);
        rig.finish();
    }

    #[test]
    fn too_many_fragments() {
        let mut rig = Rig::new(StackParams {
            reassembly_max_frags: 4,
            ..params()
        });
        let fr: Vec<Mbuf> = (0..5)
            .map(|i| frag(&rig.mp, 3, i * 8, true, &[i as u8; 8]))
            .collect();
        rig.send(fr);
        assert_eq!(rig.count("too_many_fragments"), 5);
        // Exactly at the limit is fine.
        let p = pattern(32, 1);
        let fr: Vec<Mbuf> = (0..4)
            .map(|i| frag(&rig.mp, 4, i * 8, i < 3, &p[i * 8..i * 8 + 8]))
            .collect();
        rig.send(fr);
        let got = rig.take_local();
        assert_eq!(got.len(), 1);
        check_whole(&got[0], 4, &p);
        drop(got);
        rig.finish();
    }

    #[test]
    fn table_full_then_space_again() {
        let mut rig = Rig::new(StackParams {
            reassembly_max: 2,
            ..params()
        });
        rig.send(vec![
            frag(&rig.mp, 1, 0, true, &[1; 8]),
            frag(&rig.mp, 2, 0, true, &[2; 8]),
            frag(&rig.mp, 3, 0, true, &[3; 8]),
        ]);
        assert_eq!(rig.count("table_full"), 1);
        // Completing datagram 1 frees its slot for datagram 3.
        rig.send(vec![
            frag(&rig.mp, 1, 8, false, &[1; 4]),
            frag(&rig.mp, 3, 0, true, &[3; 8]),
            frag(&rig.mp, 3, 8, false, &[3; 4]),
        ]);
        let got = rig.take_local();
        assert_eq!(got.len(), 2);
        assert_eq!(rig.count("table_full"), 1);
        drop(got);
        rig.finish();
    }

    /// A flood of first fragments cannot take more than a quarter of the pool (1024 / 4).
    #[test]
    fn held_fragments_are_capped_like_ipfrag_high_thresh() {
        let mut rig = Rig::new(StackParams {
            reassembly_max: 1024,
            ..params()
        });
        let firsts: Vec<Mbuf> = (0..300u16)
            .map(|id| frag(&rig.mp, id, 0, true, &[1; 8]))
            .collect();
        rig.send(firsts);
        assert_eq!(rig.count("fragment_memory_full"), 44);
        assert_eq!(rig.mp.in_use(), 256);
        // Completing one datagram makes room again.
        rig.send(vec![frag(&rig.mp, 0, 8, false, &[1; 4])]);
        assert_eq!(rig.take_local().len(), 1);
        rig.send(vec![frag(&rig.mp, 999, 0, true, &[1; 8])]);
        assert_eq!(rig.count("fragment_memory_full"), 44);
        rig.finish();
    }

    #[test]
    fn many_datagrams_exercise_the_index() {
        // Fill and drain the table several times, completing in varied orders, so index
        // deletions (backward shifts) run over every kind of probe run.
        let mut rig = Rig::new(StackParams {
            reassembly_max: 64,
            ..params()
        });
        for round in 0..4u16 {
            let mut firsts = Vec::new();
            let mut lasts = Vec::new();
            for i in 0..64u16 {
                let id = round * 1000 + i;
                firsts.push(frag(&rig.mp, id, 0, true, &[i as u8; 8]));
                lasts.push(frag(&rig.mp, id, 8, false, &[i as u8; 3]));
            }
            rig.send(firsts);
            shuffle(&mut lasts, round as u64 + 1);
            rig.send(lasts);
            let got = rig.take_local();
            assert_eq!(got.len(), 64, "{:?}", rig.drops());
        }
        assert_eq!(rig.count("table_full"), 0);
        rig.finish();
    }

    #[test]
    fn bad_lengths() {
        let mut rig = Rig::new(params());
        // A non-last fragment of 12 bytes (not a multiple of 8) kills the datagram it joins.
        rig.send(vec![
            frag(&rig.mp, 1, 0, true, &[1; 8]),
            frag(&rig.mp, 1, 8, true, &[1; 12]),
        ]);
        assert_eq!(rig.count("bad_fragment_length"), 2);
        // An empty fragment, alone.
        rig.send(vec![frag(&rig.mp, 2, 8, false, &[])]);
        assert_eq!(rig.count("bad_fragment_length"), 3);
        // A last fragment may have any length.
        rig.send(vec![
            frag(&rig.mp, 3, 8, false, &[3; 5]),
            frag(&rig.mp, 3, 0, true, &[3; 8]),
        ]);
        assert_eq!(rig.take_local().len(), 1);
        // Not even an IPv4 header.
        let mut m = rig.mp.alloc().unwrap();
        m.append(10).unwrap().fill(0x45);
        rig.send(vec![m]);
        assert_eq!(rig.count("malformed"), 1);
        rig.finish();
    }

    #[test]
    fn inconsistent_last_fragments() {
        let mut rig = Rig::new(params());
        // Two different "last" fragments.
        rig.send(vec![
            frag(&rig.mp, 1, 16, false, &[1; 8]),
            frag(&rig.mp, 1, 32, false, &[1; 8]),
        ]);
        assert_eq!(rig.count("inconsistent_last"), 2);
        // Data beyond the announced end.
        rig.send(vec![
            frag(&rig.mp, 2, 16, false, &[1; 8]),
            frag(&rig.mp, 2, 24, true, &[1; 8]),
        ]);
        assert_eq!(rig.count("inconsistent_last"), 4);
        // A last fragment ending before data already held.
        rig.send(vec![
            frag(&rig.mp, 3, 32, true, &[1; 8]),
            frag(&rig.mp, 3, 8, false, &[1; 8]),
        ]);
        assert_eq!(rig.count("inconsistent_last"), 6);
        rig.finish();
    }

    #[test]
    fn timeout_with_first_fragment_sends_icmp() {
        let mut rig = Rig::new(StackParams {
            reassembly_timeout_ns: 20_000_000,
            ..params()
        });
        let p = pattern(3000, 5);
        let mut fr = fragments(&rig.mp, 77, &p);
        fr.pop(); // the last never arrives
        let t0 = std::time::Instant::now();
        rig.send(fr);
        rig.graph.poll(&mut rig.io);
        let mut icmp = rig.take_icmp();
        if t0.elapsed() < Duration::from_millis(20) {
            assert!(icmp.is_empty(), "expired too early");
        }
        std::thread::sleep(Duration::from_millis(25));
        rig.graph.poll(&mut rig.io);
        icmp.extend(rig.take_icmp());
        assert_eq!(icmp.len(), 1);
        let m = &icmp[0];
        assert_eq!(meta(m).icmp_type, icmpv4_type::TIME_EXCEEDED);
        assert_eq!(meta(m).icmp_code, icmpv4_code::REASSEMBLY_TIME_EXCEEDED);
        let ip = Ipv4Packet::new_unchecked(m.data());
        assert_eq!(ip.fragment_offset(), 0);
        assert_eq!(ip.ident(), 77);
        assert_eq!(rig.count("timeout"), 2);
        assert!(rig.take_local().is_empty());
        drop(icmp);
        // Nothing left: later polls do nothing.
        rig.graph.poll(&mut rig.io);
        assert_eq!(rig.mp.in_use(), 0);
        rig.finish();
    }

    #[test]
    fn timeout_without_first_fragment_just_drops() {
        let mut rig = Rig::new(StackParams {
            reassembly_timeout_ns: 1_000_000,
            ..params()
        });
        let p = pattern(3000, 6);
        let mut fr = fragments(&rig.mp, 78, &p);
        drop(fr.remove(0));
        rig.send(fr);
        std::thread::sleep(Duration::from_millis(5));
        rig.graph.poll(&mut rig.io);
        assert!(rig.take_icmp().is_empty());
        assert_eq!(rig.count("timeout"), 2);
        assert_eq!(rig.mp.in_use(), 0);
        // The slot is free again: the datagram can be reassembled from scratch.
        rig.send(fragments(&rig.mp, 78, &p));
        let got = rig.take_local();
        assert_eq!(got.len(), 1);
        check_whole(&got[0], 78, &p);
        drop(got);
        rig.finish();
    }
}
