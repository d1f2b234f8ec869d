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
