//! `icmp-input` (echo replies; Linux: `icmp_rcv` / `icmp_echo`) and `icmp-error` (destination
//! unreachable, time exceeded, fragmentation needed; Linux: `__icmp_send` with its rate limit).

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::Mbuf;
use crate::stack::StackEnv;
use crate::wire::{checksum, icmpv4_type, ip_protocol, Icmpv4Packet, Ipv4Packet};

/// Sum of a packet's bytes from `offset` to its end, across segments (for checksums of
/// reassembled datagrams).
pub(crate) fn chain_sum(m: &Mbuf, offset: usize) -> u32 {
    chain_sum_range(m, offset, m.pkt_len())
}

/// Sum of a packet's bytes `[from, to)`, across segments: each piece combined at its offset
/// from `from`.
pub(crate) fn chain_sum_range(m: &Mbuf, from: usize, to: usize) -> u32 {
    let mut sum = 0u32;
    let mut pos = 0usize; // packet offset of the segment's first byte
    for seg in m.segments() {
        let (a, b) = (from.max(pos), to.min(pos + seg.len()));
        if a < b {
            sum = checksum::combine_at(sum, checksum::sum(&seg[a - pos..b - pos]), a - from);
        }
        pos += seg.len();
        if pos >= to {
            break;
        }
    }
    sum
}

/// Answers echo requests addressed to us.
pub struct IcmpInput {
    env: Arc<StackEnv>,
    truncated: DropId,
    bad_checksum: DropId,
    broadcast_echo: DropId,
    not_handled: DropId,
    echo_replies_sent: DropId,
}

impl IcmpInput {
    /// A node for `env`.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        IcmpInput {
            env: env.clone(),
            truncated: DropId::placeholder(),
            bad_checksum: DropId::placeholder(),
            broadcast_echo: DropId::placeholder(),
            not_handled: DropId::placeholder(),
            echo_replies_sent: DropId::placeholder(),
        }
    }
}

impl Node for IcmpInput {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOOKUP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.truncated = ctx.drop_reason("truncated");
        self.bad_checksum = ctx.drop_reason("bad_checksum");
        self.broadcast_echo = ctx.drop_reason("broadcast_echo_ignored");
        self.not_handled = ctx.drop_reason("type_not_handled");
        self.echo_replies_sent = ctx.drop_reason("echo_replies_sent");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let env = self.env.clone();
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let hl = meta(&m).l3_len as usize;
            let d = m.data();
            if d.len() < hl + 8 {
                ctx.drop(self.truncated, m);
                return;
            }
            if !checksum::verify_sum(chain_sum(&m, hl)) {
                crate::trace_pkt!(ctx, &m, "bad icmp checksum → drop");
                ctx.drop(self.bad_checksum, m);
                return;
            }
            let ip = Ipv4Packet::new_unchecked(d);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let icmp_type = d[hl];
            if icmp_type != icmpv4_type::ECHO_REQUEST {
                crate::trace_pkt!(ctx, &m, "type {icmp_type} not handled → drop");
                ctx.drop(self.not_handled, m);
                return;
            }
            // Like Linux's icmp_echo_ignore_broadcasts: no replies to broadcast pings.
            if !env.fib.is_local_addr(dst) || meta(&m).flags & PktMeta::F_L2_MULTICAST != 0 {
                ctx.drop(self.broadcast_echo, m);
                return;
            }
            if m.is_shared() {
                ctx.drop(self.not_handled, m);
                return;
            }
            let ttl = env.params.ttl;
            let d = m.data_mut();
            {
                let mut icmp = Icmpv4Packet::new_unchecked(&mut d[hl..]);
                icmp.make_echo_reply();
            }
            let mut p = Ipv4Packet::new_unchecked(&mut d[..hl]);
            p.set_src_addr(dst);
            p.set_dst_addr(src);
            p.set_ttl(ttl);
            p.fill_checksum();
            let md = meta_mut(&mut m);
            md.flags = PktMeta::F_LOCAL_ORIGIN;
            ctx.count(self.echo_replies_sent, 1);
            crate::trace_pkt!(
                ctx,
                &m,
                "echo request from {src}: reply → {}",
                names::IPV4_LOOKUP
            );
            ctx.enqueue(0, m);
        });
    }
}

/// A token bucket: `rate` per second, up to `burst` at once.
#[derive(Debug)]
struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: u64,
    last_ns: u64,
}

impl TokenBucket {
    fn take(&mut self, now_ns: u64) -> bool {
        if self.rate == 0 {
            return false;
        }
        let elapsed = now_ns.saturating_sub(self.last_ns);
        let add = elapsed.saturating_mul(self.rate) / 1_000_000_000;
        if add > 0 {
            self.tokens = (self.tokens + add).min(self.burst);
            self.last_ns = now_ns;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Largest ICMP error datagram (RFC 1812 §4.3.2.3).
const ICMP_ERROR_MAX: usize = 576;

/// Turns an offending packet (data at its IPv4 header, error in `meta.icmp_type/code/mtu`) into
/// the ICMP error about it, in place: the new IPv4 + ICMP headers go in front of the quoted
/// original, which is cut to 576 bytes in all. Follows RFC 1812 §4.3.2.7 on what never gets an
/// error (ICMP errors, non-first fragments, broadcast or invalid sources).
pub struct IcmpError {
    env: Arc<StackEnv>,
    bucket: TokenBucket,
    rate_limited: DropId,
    suppressed: DropId,
    no_source: DropId,
    sent: DropId,
}

impl IcmpError {
    /// A node for `env` with its rate limit.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        let p = env.params;
        IcmpError {
            env: env.clone(),
            bucket: TokenBucket {
                rate: p.icmp_rate as u64,
                burst: p.icmp_burst as u64,
                tokens: p.icmp_burst as u64,
                last_ns: 0,
            },
            rate_limited: DropId::placeholder(),
            suppressed: DropId::placeholder(),
            no_source: DropId::placeholder(),
            sent: DropId::placeholder(),
        }
    }

    /// Whether RFC 1812 forbids an error about this packet.
    fn suppressed(&self, m: &Mbuf) -> bool {
        let d = m.data();
        if d.len() < 20 {
            return true;
        }
        let p = Ipv4Packet::new_unchecked(d);
        let hl = p.header_len();
        let src = p.src_addr();
        if p.fragment_offset() != 0
            || src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
            || p.dst_addr().is_broadcast()
            || meta(m).flags & PktMeta::F_L2_MULTICAST != 0
        {
            return true;
        }
        if p.protocol() == ip_protocol::ICMP {
            // Never an error about an error; only about queries.
            let t = d.get(hl).copied().unwrap_or(0);
            return !matches!(
                t,
                icmpv4_type::ECHO_REQUEST | icmpv4_type::ECHO_REPLY | 13 | 15 | 17
            );
        }
        false
    }
}

impl Node for IcmpError {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOOKUP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.rate_limited = ctx.drop_reason("rate_limited");
        self.suppressed = ctx.drop_reason("not_allowed_rfc1812");
        self.no_source = ctx.drop_reason("no_source_address");
        self.sent = ctx.drop_reason("errors_sent");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let env = self.env.clone();
        let n = pkts.len();
        let now = ctx.now_ns();
        pkts.drain_front(n, |mut m| {
            if self.suppressed(&m) {
                ctx.drop(self.suppressed, m);
                return;
            }
            if !self.bucket.take(now) {
                ctx.drop(self.rate_limited, m);
                return;
            }
            let md = *meta(&m);
            let orig_src = Ipv4Addr::new(m.data()[12], m.data()[13], m.data()[14], m.data()[15]);
            let Some(src) = env
                .interface(md.rx_port)
                .and_then(|i| i.source_for(orig_src))
                .or_else(|| {
                    env.fib
                        .interfaces()
                        .first()
                        .and_then(|i| i.source_for(orig_src))
                })
            else {
                ctx.drop(self.no_source, m);
                return;
            };
            if m.is_shared() || m.headroom() < 28 {
                ctx.drop(self.no_source, m);
                return;
            }
            // Quote the original header and as much of the rest as fits in 576 bytes.
            m.truncate(ICMP_ERROR_MAX - 28);
            let quoted = m.pkt_len();
            let h = m.prepend(28).expect("headroom checked");
            h.fill(0);
            {
                let mut ip = Ipv4Packet::new_unchecked(&mut h[..20]);
                ip.set_version(4);
                ip.set_header_len(20);
                ip.set_total_len((28 + quoted) as u16);
                ip.set_ttl(env.params.ttl);
                ip.set_protocol(ip_protocol::ICMP);
                ip.set_src_addr(src);
                ip.set_dst_addr(orig_src);
                ip.fill_checksum();
            }
            {
                let mut icmp = Icmpv4Packet::new_unchecked(&mut h[20..28]);
                icmp.set_msg_type(md.icmp_type);
                icmp.set_msg_code(md.icmp_code);
                if md.mtu != 0 {
                    icmp.set_next_hop_mtu(md.mtu);
                }
            }
            let sum = chain_sum(&m, 20);
            let c = checksum::finish(sum);
            m.data_mut()[22..24].copy_from_slice(&c.to_be_bytes());
            let mdm = meta_mut(&mut m);
            mdm.flags = PktMeta::F_LOCAL_ORIGIN;
            mdm.l3_len = 20;
            ctx.count(self.sent, 1);
            crate::trace_pkt!(
                ctx,
                &m,
                "icmp {}/{} to {orig_src} → {}",
                md.icmp_type,
                md.icmp_code,
                names::IPV4_LOOKUP
            );
            ctx.enqueue(0, m);
        });
    }
}
