//! `tcp-handoff`: sends each TCP segment to the lcore that owns its flow (software RSS, like
//! VPP's worker handoff). Sits on the edge `ipv4-local → tcp-input` only when several lcores
//! run TCP; with one TCP lcore the graph has no such node and no rings.
//!
//! The owner is the symmetric Toeplitz hash of the 4-tuple through the redirection table of
//! [`Handoff`] (the port's hash when it says it is that hash, [`ol::RX_RSS_SYM_TOEPLITZ`]).
//! Segments this lcore owns go on to `tcp-input`; the others are gathered per owner and pushed
//! as one burst into the SPSC ring towards it. Every turn (`poll`, also when the lcore's own
//! queues are empty) the node drains the rings from the other lcores into `tcp-input`.

use std::net::Ipv4Addr;

use crate::batch::Burst;
use crate::graph::{meta, DropId, InitCtx, Node, NodeCtx};
use crate::mem::{ol, Mbuf};
use crate::stack::tcp::Handoff;

use super::names;

/// `tcp-handoff`. Next node: `tcp-input`.
///
/// Counted: `handed_off` (segments pushed towards another lcore), `received` (segments taken
/// from the other lcores' rings); dropped: `handoff_full` (the ring towards the owner was
/// full).
pub struct TcpHandoff {
    handoff: Handoff,
    /// Segments gathered per owner during one vector.
    outbox: Vec<Burst>,
    inbox: Box<Burst>,
    handed_off: DropId,
    received: DropId,
    full: DropId,
}

impl TcpHandoff {
    /// A node steering over `handoff`'s lcores.
    pub fn new(handoff: Handoff) -> Self {
        TcpHandoff {
            outbox: (0..handoff.lcores()).map(|_| Burst::new()).collect(),
            handoff,
            inbox: Box::new(Burst::new()),
            handed_off: DropId::placeholder(),
            received: DropId::placeholder(),
            full: DropId::placeholder(),
        }
    }
}

/// The owner of a segment (an IPv4 packet with `l3_len` set); this lcore for a packet too
/// short to carry ports (`tcp-input` drops it).
#[inline]
fn owner(h: &Handoff, m: &Mbuf) -> usize {
    if m.ol_flags() & ol::RX_RSS_SYM_TOEPLITZ != 0 {
        return h.owner_of_hash(m.rss_hash());
    }
    let hl = meta(m).l3_len as usize;
    let d = m.data();
    if hl < 20 || d.len() < hl + 4 {
        return h.index();
    }
    let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let sport = u16::from_be_bytes([d[hl], d[hl + 1]]);
    let dport = u16::from_be_bytes([d[hl + 2], d[hl + 3]]);
    h.owner(src, dst, sport, dport)
}

impl Node for TcpHandoff {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::TCP_INPUT.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.handed_off = ctx.drop_reason("handed_off");
        self.received = ctx.drop_reason("received");
        self.full = ctx.drop_reason("handoff_full");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let TcpHandoff {
            handoff,
            outbox,
            full,
            handed_off,
            ..
        } = self;
        let me = handoff.index();
        let mut away = false;
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let to = owner(handoff, &m);
            if to == me {
                ctx.enqueue(0, m);
                return;
            }
            crate::trace_pkt!(ctx, &m, "flow owned by tcp lcore {to} → handoff");
            away = true;
            // An input vector never holds more than a burst, so this only fails in theory.
            if let Err(m) = outbox[to].push(m) {
                ctx.drop(*full, m);
            }
        });
        if !away {
            return;
        }
        for (to, out) in outbox.iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            let sent = handoff.sender(to).map_or(0, |ring| ring.enqueue_burst(out));
            if sent > 0 {
                ctx.count(*handed_off, sent as u64);
            }
            // What the ring refused is dropped: the owner is behind.
            while let Some(m) = out.pop() {
                ctx.drop(*full, m);
            }
        }
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        for from in 0..self.handoff.lcores() {
            let Some(ring) = self.handoff.receiver(from) else {
                continue;
            };
            let room = ctx.room(0);
            if room == 0 {
                return;
            }
            let got = ring.dequeue_burst(&mut self.inbox, room);
            if got > 0 {
                ctx.count(self.received, got as u64);
                ctx.enqueue_burst(0, &mut self.inbox);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::graph::{meta_mut, Graph, GraphBuilder, TraceControl};
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::runtime::LcoreIo;
    use crate::stack::tcp::mesh;

    /// Stands in for `tcp-input`: records the source port of every segment it gets.
    struct Sink(Arc<Mutex<Vec<u16>>>);
    impl Node for Sink {
        fn next_nodes(&self) -> Vec<String> {
            Vec::new()
        }
        fn process(&mut self, pkts: &mut Burst, _ctx: &mut NodeCtx<'_>) {
            let mut v = self.0.lock().unwrap();
            let n = pkts.len();
            pkts.drain_front(n, |m| {
                v.push(u16::from_be_bytes([m.data()[20], m.data()[21]]))
            });
        }
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn graph(h: Handoff, seen: Arc<Mutex<Vec<u16>>>) -> Graph {
        let mut b = GraphBuilder::new();
        b.add(names::TCP_HANDOFF, Box::new(TcpHandoff::new(h)))
            .add(names::TCP_INPUT, Box::new(Sink(seen)));
        b.build(1, names::TCP_HANDOFF, TraceControl::new()).unwrap()
    }

    /// An IPv4 + TCP header from SRC:sport to DST:80.
    fn segment(pool: &Mempool, sport: u16) -> Mbuf {
        let mut m = pool.alloc().unwrap();
        let d = m.append(40).unwrap();
        d.fill(0);
        d[0] = 0x45;
        d[9] = 6;
        d[12..16].copy_from_slice(&SRC.octets());
        d[16..20].copy_from_slice(&DST.octets());
        d[20..22].copy_from_slice(&sport.to_be_bytes());
        d[22..24].copy_from_slice(&80u16.to_be_bytes());
        meta_mut(&mut m).l3_len = 20;
        m
    }

    fn event(g: &Graph, reason: &str) -> u64 {
        let stats = g.monitor().stats();
        let n = stats.iter().find(|n| n.node == names::TCP_HANDOFF).unwrap();
        n.drops.iter().find(|d| d.0 == reason).map_or(0, |d| d.1)
    }

    #[test]
    fn segments_go_to_their_owner_and_a_full_ring_drops_and_counts() {
        let mut p = MempoolParams::new("handoff-node", 1024);
        p.huge = HugePolicy::Off;
        let pool = Mempool::new(&p).unwrap();
        let mut ends = mesh(2, 64).unwrap().into_iter();
        let (h0, h1) = (ends.next().unwrap(), ends.next().unwrap());
        // Every end maps alike; a spare one answers for the test.
        let probe = mesh(2, 64).unwrap().remove(0);
        let owner_of = |sport: u16| probe.owner(SRC, DST, sport, 80);
        let ports: Vec<u16> = (40000..40200).collect();
        let theirs = ports.iter().filter(|&&p| owner_of(p) == 1).count();
        assert!(theirs > 64, "{theirs} of 200 flows owned by lcore 1");
        let (seen0, seen1) = (Arc::default(), Arc::default());
        let mut g0 = graph(h0, Arc::clone(&seen0));
        let mut g1 = graph(h1, Arc::clone(&seen1));
        let mut io = LcoreIo::new(Vec::new());

        let mut burst = Burst::new();
        for &sp in &ports {
            burst.push(segment(&pool, sp)).unwrap();
        }
        let entry = g0.node_id(names::TCP_HANDOFF).unwrap();
        g0.dispatch(entry, &mut burst, &mut io);
        // Lcore 0 kept its own flows; the ring (64 slots) took the first 64 of lcore 1's.
        let mine: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|&p| owner_of(p) == 0)
            .collect();
        assert_eq!(*seen0.lock().unwrap(), mine);
        assert_eq!(event(&g0, "handed_off"), 64);
        assert_eq!(event(&g0, "handoff_full"), (theirs - 64) as u64);
        assert!(seen1.lock().unwrap().is_empty());

        // Lcore 1 drains its inbox on its next poll, with no packet of its own.
        g1.poll(&mut io);
        let got = seen1.lock().unwrap().clone();
        assert_eq!(got.len(), 64);
        assert!(got.iter().all(|&p| owner_of(p) == 1));
        assert_eq!(event(&g1, "received"), 64);
        g1.poll(&mut io);
        assert_eq!(seen1.lock().unwrap().len(), 64, "nothing left to drain");

        // A port's symmetric hash is trusted: hash 1 selects lcore 1 whatever the ports.
        let p0 = mine[0];
        let mut m = segment(&pool, p0);
        m.set_rss_hash(1);
        m.set_ol_flags(ol::RX_RSS_SYM_TOEPLITZ);
        burst.push(m).unwrap();
        g0.dispatch(entry, &mut burst, &mut io);
        assert_eq!(event(&g0, "handed_off"), 65);
        g1.poll(&mut io);
        assert_eq!(seen1.lock().unwrap().last(), Some(&p0));
    }
}
