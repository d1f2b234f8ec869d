//! `ipv4-input`: validation of received IPv4 packets per RFC 1812 §5.2.2 (Linux: `ip_rcv` /
//! `ip_rcv_core` and the martian checks of `fib_validate_source`). Every failed check is a
//! counted drop with its own reason.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::names;
use crate::batch::Burst;
use crate::graph::{meta_mut, DropId, InitCtx, Node, NodeCtx};
use crate::stack::StackEnv;
use crate::wire::{Ipv4Packet, WireError};

/// The IPv4 input node.
pub struct Ipv4Input {
    env: Arc<StackEnv>,
    wire: [DropId; WireError::ALL.len()],
    bad_checksum: DropId,
    martian_src: DropId,
    martian_dst: DropId,
    multicast: DropId,
}

impl Ipv4Input {
    /// A node using the interfaces of `env` for the martian checks.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        Ipv4Input {
            env: env.clone(),
            wire: [DropId::placeholder(); WireError::ALL.len()],
            bad_checksum: DropId::placeholder(),
            martian_src: DropId::placeholder(),
            martian_dst: DropId::placeholder(),
            multicast: DropId::placeholder(),
        }
    }
}

/// Source addresses a router must not accept (RFC 1812 §5.3.7, plus our own addresses).
fn martian_source(src: Ipv4Addr) -> bool {
    let o = src.octets();
    o[0] == 0 || o[0] == 127 || src.is_multicast() || o[0] >= 240
}

/// Destination addresses that are never valid on the wire.
fn martian_destination(dst: Ipv4Addr) -> bool {
    let o = dst.octets();
    (o[0] == 0) || o[0] == 127 || (o[0] >= 240 && dst != Ipv4Addr::BROADCAST)
}

impl Node for Ipv4Input {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOOKUP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        for (i, e) in WireError::ALL.iter().enumerate() {
            self.wire[i] = ctx.drop_reason(e.as_str());
        }
        self.bad_checksum = ctx.drop_reason("bad_checksum");
        self.martian_src = ctx.drop_reason("martian_source");
        self.martian_dst = ctx.drop_reason("martian_destination");
        self.multicast = ctx.drop_reason("multicast_not_supported");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let total = m.pkt_len();
            let d = m.data();
            // The header must sit in the first segment; the total length is checked against
            // the whole chain (jumbo frames arrive as chains).
            let check = if d.len() < Ipv4Packet::<&[u8]>::MIN_HEADER_LEN {
                Err(WireError::Truncated)
            } else {
                let p = Ipv4Packet::new_unchecked(d);
                let hl = p.header_len();
                if p.version() != 4 {
                    Err(WireError::BadVersion)
                } else if p.ihl() < 5 {
                    Err(WireError::BadIhl)
                } else if d.len() < hl {
                    Err(WireError::Truncated)
                } else if (p.total_len() as usize) < hl || p.total_len() as usize > total {
                    Err(WireError::BadTotalLength)
                } else if hl > 20 {
                    Ipv4Packet::new_unchecked(&d[..hl]).validate_options()
                } else {
                    Ok(())
                }
            };
            if let Err(e) = check {
                crate::trace_pkt!(ctx, &m, "{} → drop", e.as_str());
                let idx = WireError::ALL.iter().position(|x| *x == e).unwrap_or(0);
                ctx.drop(self.wire[idx], m);
                return;
            }
            let p = Ipv4Packet::new_unchecked(d);
            let hl = p.header_len();
            if !Ipv4Packet::new_unchecked(&d[..hl]).verify_checksum() {
                crate::trace_pkt!(ctx, &m, "bad header checksum → drop");
                ctx.drop(self.bad_checksum, m);
                return;
            }
            let (src, dst, tl) = (p.src_addr(), p.dst_addr(), p.total_len() as usize);
            if martian_source(src) || src == Ipv4Addr::BROADCAST || self.env.fib.is_local_addr(src)
            {
                crate::trace_pkt!(ctx, &m, "martian source {src} → drop");
                ctx.drop(self.martian_src, m);
                return;
            }
            if martian_destination(dst) {
                crate::trace_pkt!(ctx, &m, "martian destination {dst} → drop");
                ctx.drop(self.martian_dst, m);
                return;
            }
            if dst.is_multicast() {
                ctx.drop(self.multicast, m);
                return;
            }
            // Ethernet pads short frames: cut the packet to the IP total length.
            if total > tl {
                m.truncate(tl);
            }
            meta_mut(&mut m).l3_len = hl as u8;
            crate::trace_pkt!(
                ctx,
                &m,
                "{src} → {dst} ttl {} len {tl} ok → {}",
                p_ttl(&m),
                names::IPV4_LOOKUP
            );
            ctx.enqueue(0, m);
        });
    }
}

fn p_ttl(m: &crate::mem::Mbuf) -> u8 {
    m.data().get(8).copied().unwrap_or(0)
}
