//! `ipv4-output`, `ipv4-rewrite` and `tx` (Linux: `ip_output` / `ip_fragment`,
//! `neigh_output` / `neigh_resolve_output`, `dev_queue_xmit`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::ipv4_route::set_icmp_error;
use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::port::MacAddr;
use crate::stack::frag::{fragment, fragment_count};
use crate::stack::{NeighState, StackEnv};
use crate::wire::{ethertype, icmpv4_code, icmpv4_type, Ipv4Packet};

const OUT_REWRITE: usize = 0;
const OUT_ICMP_ERROR: usize = 1;

/// MTU check and fragmentation.
pub struct Ipv4Output {
    env: Arc<StackEnv>,
    frag_needed: DropId,
    frag_needed_local: DropId,
    fragmented: DropId,
    frag_failed: DropId,
    frag_no_room: DropId,
    no_interface: DropId,
}

impl Ipv4Output {
    /// A node using the MTUs of `env`'s interfaces.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        Ipv4Output {
            env: env.clone(),
            frag_needed: DropId::placeholder(),
            frag_needed_local: DropId::placeholder(),
            fragmented: DropId::placeholder(),
            frag_failed: DropId::placeholder(),
            frag_no_room: DropId::placeholder(),
            no_interface: DropId::placeholder(),
        }
    }
}

impl Node for Ipv4Output {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_REWRITE.into(), names::ICMP_ERROR.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.frag_needed = ctx.drop_reason("fragmentation_needed");
        self.frag_needed_local = ctx.drop_reason("fragmentation_needed_local_origin");
        self.fragmented = ctx.drop_reason("fragmented_packets");
        self.frag_failed = ctx.drop_reason("fragmentation_failed");
        self.frag_no_room = ctx.drop_reason("fragment_queue_full");
        self.no_interface = ctx.drop_reason("no_interface");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let env = self.env.clone();
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let port = meta(&m).tx_port;
            let Some(ifc) = env.interface(port) else {
                ctx.drop(self.no_interface, m);
                return;
            };
            let mtu = ifc.mtu as usize;
            if m.pkt_len() <= mtu {
                crate::trace_pkt!(
                    ctx,
                    &m,
                    "len {} <= mtu {mtu} → {}",
                    m.pkt_len(),
                    names::IPV4_REWRITE
                );
                ctx.enqueue(OUT_REWRITE, m);
                return;
            }
            let p = Ipv4Packet::new_unchecked(m.data());
            let (df, hl, tl) = (p.dont_fragment(), p.header_len(), p.total_len() as usize);
            if df {
                if meta(&m).flags & PktMeta::F_LOCAL_ORIGIN != 0 {
                    ctx.drop(self.frag_needed_local, m);
                } else {
                    ctx.count(self.frag_needed, 1);
                    crate::trace_pkt!(ctx, &m, "len {tl} > mtu {mtu} with DF → icmp-error");
                    set_icmp_error(
                        &mut m,
                        icmpv4_type::DST_UNREACHABLE,
                        icmpv4_code::FRAGMENTATION_NEEDED,
                        mtu as u16,
                    );
                    ctx.enqueue(OUT_ICMP_ERROR, m);
                }
                return;
            }
            if fragment_count(tl, hl, mtu) > ctx.room(OUT_REWRITE) {
                ctx.drop(self.frag_no_room, m);
                return;
            }
            crate::trace_pkt!(
                ctx,
                &m,
                "len {tl} > mtu {mtu}: fragmenting → {}",
                names::IPV4_REWRITE
            );
            let pool = env.pool(port);
            let mut made = 0u64;
            let res = fragment(&m, mtu, pool, &mut |f| {
                made += 1;
                ctx.enqueue(OUT_REWRITE, f);
            });
            match res {
                Ok(_) => {
                    ctx.count(self.fragmented, 1);
                    drop(m);
                }
                Err(_) => ctx.drop(self.frag_failed, m),
            }
        });
    }
}

const REWRITE_TX: usize = 0;
const REWRITE_ARP: usize = 1;

/// Writes the Ethernet header from the neighbour table, or hands the packet to `arp`.
pub struct Ipv4Rewrite {
    env: Arc<StackEnv>,
    no_headroom: DropId,
    no_interface: DropId,
}

impl Ipv4Rewrite {
    /// A node using `env`'s neighbour table.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        Ipv4Rewrite {
            env: env.clone(),
            no_headroom: DropId::placeholder(),
            no_interface: DropId::placeholder(),
        }
    }
}

impl Node for Ipv4Rewrite {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::TX.into(), names::ARP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.no_headroom = ctx.drop_reason("no_headroom");
        self.no_interface = ctx.drop_reason("no_interface");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let env = self.env.clone();
        let now = ctx.now_ns();
        let n = pkts.len();
        // Most packets of a burst go to the same neighbour: remember the last answer for the
        // length of this burst (each burst asks the table again, which keeps the entry's "in
        // use" mark for the refresher).
        let mut last: Option<(u16, u32, MacAddr, MacAddr)> = None;
        pkts.drain_front(n, |mut m| {
            let md = *meta(&m);
            let nh = Ipv4Addr::from(md.addr);
            let resolved = match last {
                Some((port, addr, mac, src)) if port == md.tx_port && addr == md.addr => {
                    Some((mac, src))
                }
                _ => {
                    let Some(ifc) = env.interface(md.tx_port) else {
                        ctx.drop(self.no_interface, m);
                        return;
                    };
                    match env.neigh.lookup(md.tx_port, nh, now) {
                        NeighState::Reachable(mac) | NeighState::Stale(mac) => {
                            last = Some((md.tx_port, md.addr, mac, ifc.mac));
                            Some((mac, ifc.mac))
                        }
                        NeighState::Incomplete => None,
                    }
                }
            };
            let (mac, src) = match resolved {
                Some(r) => r,
                None => {
                    meta_mut(&mut m).flags |= PktMeta::F_NEEDS_ARP;
                    crate::trace_pkt!(ctx, &m, "{nh} unresolved → {}", names::ARP);
                    ctx.enqueue(REWRITE_ARP, m);
                    return;
                }
            };
            let Some(h) = m.prepend(14) else {
                ctx.drop(self.no_headroom, m);
                return;
            };
            h[0..6].copy_from_slice(&mac.0);
            h[6..12].copy_from_slice(&src.0);
            h[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            crate::trace_pkt!(ctx, &m, "{nh} is {mac} → tx port {}", md.tx_port);
            ctx.enqueue(REWRITE_TX, m);
        });
    }
}

/// Hands packets to the lcore's transmit queue of `meta.tx_port` (buffered until the end of the
/// loop turn, then one `tx_burst` per port).
pub struct Tx;

impl Node for Tx {
    fn next_nodes(&self) -> Vec<String> {
        Vec::new()
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let port = meta(&m).tx_port;
            crate::trace_pkt!(ctx, &m, "queued on port {port}");
            ctx.io().enqueue(port, m);
        });
    }
}
