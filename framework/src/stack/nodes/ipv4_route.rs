//! `ipv4-lookup`, `ipv4-forward` and `ipv4-local` (Linux: `ip_route_input` / `fib_lookup`,
//! `ip_forward` + `ip_decrease_ttl`, `ip_local_deliver`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::Mbuf;
use crate::stack::{HopKind, StackEnv};
use crate::wire::{icmpv4_code, icmpv4_type, ip_protocol, Ipv4Packet};

#[inline]
fn addrs(m: &Mbuf) -> (Ipv4Addr, Ipv4Addr) {
    let d = m.data();
    (
        Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        Ipv4Addr::new(d[16], d[17], d[18], d[19]),
    )
}

/// A flow hash for ECMP: the port's RSS hash when it set one, else a hash of the addresses.
#[inline]
fn flow_hash(m: &Mbuf, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
    if m.ol_flags() & crate::mem::ol::RX_RSS_HASH != 0 {
        return m.rss_hash();
    }
    let x = (u32::from(src) as u64) << 32 | u32::from(dst) as u64;
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// Sets the ICMP error an `icmp-error` node should send for `m`.
#[inline]
pub(crate) fn set_icmp_error(m: &mut Mbuf, icmp_type: u8, code: u8, mtu: u16) {
    let md = meta_mut(m);
    md.icmp_type = icmp_type;
    md.icmp_code = code;
    md.mtu = mtu;
}

const LOOKUP_LOCAL: usize = 0;
const LOOKUP_FORWARD: usize = 1;
const LOOKUP_OUTPUT: usize = 2;
const LOOKUP_ICMP_ERROR: usize = 3;

/// Route lookup: decides local delivery, forwarding, or an error.
pub struct Ipv4Lookup {
    env: Arc<StackEnv>,
    no_route: DropId,
    no_route_local: DropId,
    blackhole: DropId,
    rejected: DropId,
    to_self: DropId,
}

impl Ipv4Lookup {
    /// A node looking up in `env`'s FIB.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        Ipv4Lookup {
            env: env.clone(),
            no_route: DropId::placeholder(),
            no_route_local: DropId::placeholder(),
            blackhole: DropId::placeholder(),
            rejected: DropId::placeholder(),
            to_self: DropId::placeholder(),
        }
    }
}

impl Node for Ipv4Lookup {
    fn next_nodes(&self) -> Vec<String> {
        vec![
            names::IPV4_LOCAL.into(),
            names::IPV4_FORWARD.into(),
            names::IPV4_OUTPUT.into(),
            names::ICMP_ERROR.into(),
        ]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.no_route = ctx.drop_reason("no_route");
        self.no_route_local = ctx.drop_reason("no_route_local_origin");
        self.blackhole = ctx.drop_reason("blackhole_route");
        self.rejected = ctx.drop_reason("reject_route");
        self.to_self = ctx.drop_reason("local_origin_to_self");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let fib = self.env.fib.clone();
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let (src, dst) = addrs(&m);
            let local_origin = meta(&m).flags & PktMeta::F_LOCAL_ORIGIN != 0;
            let hop = fib.lookup(dst, flow_hash(&m, src, dst)).copied();
            let Some(hop) = hop else {
                if local_origin {
                    ctx.drop(self.no_route_local, m);
                } else {
                    ctx.count(self.no_route, 1);
                    crate::trace_pkt!(ctx, &m, "{dst}: no route → icmp-error");
                    set_icmp_error(
                        &mut m,
                        icmpv4_type::DST_UNREACHABLE,
                        icmpv4_code::NET_UNREACHABLE,
                        0,
                    );
                    ctx.enqueue(LOOKUP_ICMP_ERROR, m);
                }
                return;
            };
            match hop.kind {
                HopKind::Local => {
                    if local_origin {
                        ctx.drop(self.to_self, m);
                        return;
                    }
                    let md = meta_mut(&mut m);
                    md.flags |= PktMeta::F_LOCAL;
                    crate::trace_pkt!(ctx, &m, "{dst} is local → {}", names::IPV4_LOCAL);
                    ctx.enqueue(LOOKUP_LOCAL, m);
                }
                HopKind::Forward => {
                    let nh = hop.gateway.unwrap_or(dst);
                    let md = meta_mut(&mut m);
                    md.tx_port = hop.port;
                    md.addr = u32::from(nh);
                    let (edge, name) = if local_origin {
                        (LOOKUP_OUTPUT, names::IPV4_OUTPUT)
                    } else {
                        (LOOKUP_FORWARD, names::IPV4_FORWARD)
                    };
                    crate::trace_pkt!(ctx, &m, "{dst} via {nh} port {} → {name}", hop.port);
                    ctx.enqueue(edge, m);
                }
                HopKind::Drop => ctx.drop(self.blackhole, m),
                HopKind::Reject => {
                    if local_origin {
                        ctx.drop(self.rejected, m);
                    } else {
                        ctx.count(self.rejected, 1);
                        set_icmp_error(
                            &mut m,
                            icmpv4_type::DST_UNREACHABLE,
                            icmpv4_code::NET_UNREACHABLE,
                            0,
                        );
                        ctx.enqueue(LOOKUP_ICMP_ERROR, m);
                    }
                }
            }
        });
    }
}

/// TTL handling for forwarded packets (RFC 1812 §5.3.1).
pub struct Ipv4Forward {
    ttl_expired: DropId,
    l2_broadcast: DropId,
    shared: DropId,
}

impl Ipv4Forward {
    /// A new node.
    pub fn new() -> Self {
        Ipv4Forward {
            ttl_expired: DropId::placeholder(),
            l2_broadcast: DropId::placeholder(),
            shared: DropId::placeholder(),
        }
    }
}

impl Default for Ipv4Forward {
    fn default() -> Self {
        Self::new()
    }
}

impl Node for Ipv4Forward {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_OUTPUT.into(), names::ICMP_ERROR.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.ttl_expired = ctx.drop_reason("ttl_expired");
        self.l2_broadcast = ctx.drop_reason("l2_broadcast_not_forwarded");
        self.shared = ctx.drop_reason("shared_buffer");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            // RFC 1812 §5.3.4: do not forward what arrived as a link-layer broadcast.
            if meta(&m).flags & PktMeta::F_L2_MULTICAST != 0 {
                ctx.drop(self.l2_broadcast, m);
                return;
            }
            if m.is_shared() {
                ctx.drop(self.shared, m);
                return;
            }
            let mut p = Ipv4Packet::new_unchecked(m.data_mut());
            let ttl = p.ttl();
            if ttl <= 1 {
                ctx.count(self.ttl_expired, 1);
                crate::trace_pkt!(ctx, &m, "ttl {ttl} expired → icmp-error");
                set_icmp_error(
                    &mut m,
                    icmpv4_type::TIME_EXCEEDED,
                    icmpv4_code::TTL_EXCEEDED,
                    0,
                );
                ctx.enqueue(1, m);
                return;
            }
            p.decrement_ttl();
            crate::trace_pkt!(ctx, &m, "ttl {ttl} → {} → {}", ttl - 1, names::IPV4_OUTPUT);
            ctx.enqueue(0, m);
        });
    }
}

const LOCAL_REASSEMBLY: usize = 0;
const LOCAL_ICMP: usize = 1;
const LOCAL_UDP: usize = 2;
const LOCAL_ICMP_ERROR: usize = 3;
const LOCAL_TCP: usize = 4;

/// Local delivery: reassembly of fragments, then dispatch on the protocol.
pub struct Ipv4Local {
    unknown_proto: DropId,
}

impl Ipv4Local {
    /// A new node.
    pub fn new() -> Self {
        Ipv4Local {
            unknown_proto: DropId::placeholder(),
        }
    }
}

impl Default for Ipv4Local {
    fn default() -> Self {
        Self::new()
    }
}

impl Node for Ipv4Local {
    fn next_nodes(&self) -> Vec<String> {
        vec![
            names::IPV4_REASSEMBLY.into(),
            names::ICMP_INPUT.into(),
            names::UDP_INPUT.into(),
            names::ICMP_ERROR.into(),
            names::TCP_INPUT.into(),
        ]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.unknown_proto = ctx.drop_reason("protocol_unreachable");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let d = m.data();
            let p = Ipv4Packet::new_unchecked(d);
            if p.is_fragment() {
                crate::trace_pkt!(ctx, &m, "fragment → {}", names::IPV4_REASSEMBLY);
                ctx.enqueue(LOCAL_REASSEMBLY, m);
                return;
            }
            match p.protocol() {
                ip_protocol::ICMP => {
                    crate::trace_pkt!(ctx, &m, "proto icmp → {}", names::ICMP_INPUT);
                    ctx.enqueue(LOCAL_ICMP, m);
                }
                ip_protocol::UDP => {
                    crate::trace_pkt!(ctx, &m, "proto udp → {}", names::UDP_INPUT);
                    ctx.enqueue(LOCAL_UDP, m);
                }
                ip_protocol::TCP => {
                    crate::trace_pkt!(ctx, &m, "proto tcp → {}", names::TCP_INPUT);
                    ctx.enqueue(LOCAL_TCP, m);
                }
                proto => {
                    ctx.count(self.unknown_proto, 1);
                    crate::trace_pkt!(ctx, &m, "proto {proto} unreachable → icmp-error");
                    set_icmp_error(
                        &mut m,
                        icmpv4_type::DST_UNREACHABLE,
                        icmpv4_code::PROTOCOL_UNREACHABLE,
                        0,
                    );
                    ctx.enqueue(LOCAL_ICMP_ERROR, m);
                }
            }
        });
    }
}
