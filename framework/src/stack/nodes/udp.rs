//! UDP (RFC 768): `udp-input` validates datagrams and hands them to the bound socket's node
//! (Linux: `udp_rcv` → `__udp4_lib_lookup` → socket queue), application nodes built on
//! [`UdpApp`] receive them as [`Datagram`]s on the same lcore, and `udp-output` puts UDP and
//! IPv4 headers in front of what applications send (Linux: `udp_sendmsg` → `ip_make_skb` /
//! `udp_send_skb`).
//!
//! Everything is zero copy: a received datagram reaches the application as the mbuf it arrived
//! in, with its data moved to the UDP payload, and a reply built in that same mbuf gets its new
//! headers written into the headroom the old ones left behind.
//!
//! Metadata handed between the nodes (host order):
//!
//! | node → next | `meta.aux[0]` | `meta.aux[1]` | `meta.addr` |
//! |---|---|---|---|
//! | `udp-input` → app | source IPv4 | `src_port << 16 \| dst_port` | destination IPv4 |
//! | app → `udp-output` | remote IPv4 | `remote_port << 16 \| local_port` | local IPv4 (0: pick) |

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use super::icmp::chain_sum;
use super::ipv4_route::set_icmp_error;
use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::{ol, Mbuf, NO_PORT};
use crate::stack::StackEnv;
use crate::wire::{checksum, icmpv4_code, icmpv4_type, ip_protocol, Ipv4Packet};

/// Length of a UDP header.
const UDP_HDR: usize = 8;
/// Length of the IPv4 header `udp-output` writes (no options).
const IP_HDR: usize = 20;
/// Headroom a payload needs to leave the stack: UDP + IPv4 here, Ethernet in `ipv4-rewrite`.
const TX_HEADROOM: usize = UDP_HDR + IP_HDR + 14;
/// Largest UDP message (header and payload) that fits in an IPv4 datagram.
const UDP_MAX: usize = u16::MAX as usize - IP_HDR;

#[inline]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// A bound UDP socket: datagrams to (`addr`, or any of our addresses, `port`) go to the graph
/// node `node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpBinding {
    /// Local port.
    pub port: u16,
    /// Local address; `None` (or `0.0.0.0`) matches every local destination, broadcasts
    /// included. A binding with an address wins over a wildcard one on the same port.
    pub addr: Option<Ipv4Addr>,
    /// Name of the node that receives the datagrams (usually a [`UdpAppNode`]).
    pub node: String,
}

/// One entry of the socket table, sorted by port.
#[derive(Debug, Clone, Copy)]
struct Sock {
    port: u16,
    /// Host-order address; meaningless for wildcards.
    addr: u32,
    wildcard: bool,
    edge: usize,
}

/// `udp-input`: validates datagrams addressed to us and dispatches them to their socket's node,
/// or answers ICMP port unreachable.
///
/// Input: packets with data at the IPv4 header, `meta.l3_len` set and the total length already
/// trimmed (by `ipv4-input`); reassembled datagrams may be chains. Next nodes: the bindings'
/// nodes in binding order, then `icmp-error`.
///
/// Drops, each under its own reason: `truncated` (no room for the UDP header in the first
/// segment), `bad_length` (UDP length below 8 or beyond the IP payload), `bad_checksum`.
/// Datagrams to closed ports are counted as `port_unreachable` and go to `icmp-error` with
/// type 3 code 3 (that node suppresses errors about broadcasts itself).
pub struct UdpInput {
    /// Sorted by port; within a port, in binding order.
    socks: Vec<Sock>,
    /// Next-node names, in edge order.
    nodes: Vec<String>,
    truncated: DropId,
    bad_length: DropId,
    bad_checksum: DropId,
    port_unreachable: DropId,
}

impl UdpInput {
    /// A node dispatching to `bindings`. When two bindings match a datagram equally (same port,
    /// same address or both wildcards) the first one listed wins.
    pub fn new(env: &Arc<StackEnv>, bindings: Vec<UdpBinding>) -> Self {
        // Every packet reaching udp-input is already known to be local (ipv4-lookup decided),
        // so dispatch needs no table from the environment.
        let _ = env;
        let mut socks: Vec<Sock> = bindings
            .iter()
            .enumerate()
            .map(|(edge, b)| {
                let addr = b.addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
                Sock {
                    port: b.port,
                    addr: u32::from(addr),
                    wildcard: addr.is_unspecified(),
                    edge,
                }
            })
            .collect();
        // Stable: bindings of one port keep their order.
        socks.sort_by_key(|s| s.port);
        let mut nodes: Vec<String> = bindings.into_iter().map(|b| b.node).collect();
        nodes.push(names::ICMP_ERROR.into());
        UdpInput {
            socks,
            nodes,
            truncated: DropId::placeholder(),
            bad_length: DropId::placeholder(),
            bad_checksum: DropId::placeholder(),
            port_unreachable: DropId::placeholder(),
        }
    }

    /// The edge of the socket for (`dst`, `port`): an address binding, else a wildcard.
    #[inline]
    fn lookup(&self, dst: u32, port: u16) -> Option<usize> {
        let start = self.socks.partition_point(|s| s.port < port);
        let mut any = None;
        for s in &self.socks[start..] {
            if s.port != port {
                break;
            }
            if s.wildcard {
                any = any.or(Some(s.edge));
            } else if s.addr == dst {
                return Some(s.edge);
            }
        }
        any
    }

    /// Edge to `icmp-error`.
    #[inline]
    fn icmp_edge(&self) -> usize {
        self.nodes.len() - 1
    }
}

impl Node for UdpInput {
    fn next_nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.truncated = ctx.drop_reason("truncated");
        self.bad_length = ctx.drop_reason("bad_length");
        self.bad_checksum = ctx.drop_reason("bad_checksum");
        self.port_unreachable = ctx.drop_reason("port_unreachable");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let hl = meta(&m).l3_len as usize;
            let d = m.data();
            if hl < IP_HDR || d.len() < hl + UDP_HDR {
                crate::trace_pkt!(ctx, &m, "no room for a udp header → drop");
                ctx.drop(self.truncated, m);
                return;
            }
            let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
            let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
            let sport = be16(d, hl);
            let dport = be16(d, hl + 2);
            let ulen = be16(d, hl + 4) as usize;
            let csum = be16(d, hl + 6);
            let ip_payload = m.pkt_len() - hl;
            if ulen < UDP_HDR || ulen > ip_payload {
                crate::trace_pkt!(
                    ctx,
                    &m,
                    "udp length {ulen} vs ip payload {ip_payload} → drop"
                );
                ctx.drop(self.bad_length, m);
                return;
            }
            if ip_payload > ulen {
                // Bytes after the UDP message inside the IP payload are not part of it.
                m.truncate(hl + ulen);
            }
            let md = *meta(&m);
            // Good per the port, or a partial checksum of our own (ports clear transmit flags).
            let hw_good = m.ol_flags() & (ol::RX_L4_CKSUM_GOOD | ol::TX_L4_CKSUM) != 0
                && md.flags & PktMeta::F_REASSEMBLED == 0;
            if csum != 0 && !hw_good {
                let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, ulen as u16);
                if !checksum::verify_sum(checksum::combine(ph, chain_sum(&m, hl))) {
                    crate::trace_pkt!(ctx, &m, "bad udp checksum {csum:#06x} → drop");
                    ctx.drop(self.bad_checksum, m);
                    return;
                }
            }
            let Some(edge) = self.lookup(u32::from(dst), dport) else {
                ctx.count(self.port_unreachable, 1);
                let next = ctx.edge_name(self.icmp_edge());
                crate::trace_pkt!(
                    ctx,
                    &m,
                    "{src}:{sport} → {dst}:{dport}: port unreachable → {next}"
                );
                set_icmp_error(
                    &mut m,
                    icmpv4_type::DST_UNREACHABLE,
                    icmpv4_code::PORT_UNREACHABLE,
                    0,
                );
                ctx.enqueue(self.icmp_edge(), m);
                return;
            };
            let mdm = meta_mut(&mut m);
            mdm.aux[0] = u32::from(src);
            mdm.aux[1] = (sport as u32) << 16 | dport as u32;
            mdm.addr = u32::from(dst);
            let ok = m.adj(hl + UDP_HDR);
            debug_assert!(ok, "header length checked against the first segment");
            let node = ctx.edge_name(edge);
            crate::trace_pkt!(ctx, &m, "{src}:{sport} → {dst}:{dport} → {node}");
            ctx.enqueue(edge, m);
        });
    }
}

/// A received datagram as an application sees it.
#[derive(Debug)]
pub struct Datagram {
    /// Sender.
    pub src: SocketAddrV4,
    /// Where it was sent: one of our addresses, or a broadcast address.
    pub dst: SocketAddrV4,
    /// The payload: data starts at the UDP payload (may be a chain for reassembled datagrams).
    /// Headers of the received packet are still in the headroom, so the same mbuf can be sent
    /// back with [`UdpOut::send`] without copying.
    pub payload: Mbuf,
}

/// An application that lives on the lcore as a graph node (see [`UdpAppNode`]): called for
/// every datagram its socket receives, and once per loop turn.
pub trait UdpApp: Send {
    /// Handles one datagram. The payload is owned: send it (or another mbuf) with `out`, hand it
    /// to [`UdpOut::drop_datagram`] to count it, or drop it.
    fn on_datagram(&mut self, d: Datagram, out: &mut UdpOut<'_, '_>);

    /// Called once per loop turn (timers, datagrams the application originates).
    fn poll(&mut self, _out: &mut UdpOut<'_, '_>) {}
}

/// What a [`UdpApp`] can do while it runs: send datagrams (to `udp-output`), allocate buffers,
/// and drop with a count.
pub struct UdpOut<'c, 'a> {
    ctx: &'c mut NodeCtx<'a>,
    env: &'c StackEnv,
    app_dropped: DropId,
}

impl UdpOut<'_, '_> {
    /// Sends `payload` (data = the UDP payload) from `from` to `to`, without copying: the
    /// headers are later prepended into the mbuf's headroom. An unspecified `from` address
    /// (`0.0.0.0`), or one that is not ours (such as the broadcast address a request came to),
    /// is replaced by the address of the interface towards `to`.
    #[inline]
    pub fn send(&mut self, mut payload: Mbuf, from: SocketAddrV4, to: SocketAddrV4) {
        let md = meta_mut(&mut payload);
        md.aux[0] = u32::from(*to.ip());
        md.aux[1] = (to.port() as u32) << 16 | from.port() as u32;
        md.addr = u32::from(*from.ip());
        md.flags = 0;
        let next = self.ctx.edge_name(0);
        self.ctx
            .trace(&payload, format_args!("send {from} → {to} → {next}"));
        self.ctx.enqueue(0, payload);
    }

    /// A fresh, empty mbuf from the pool of port `port_hint` (the stack's first pool for
    /// unknown ports) with room in front for every header; `None` when the pool is empty (or
    /// its headroom is below 42 bytes). Write the payload with [`Mbuf::append`].
    #[inline]
    pub fn alloc(&self, port_hint: u16) -> Option<Mbuf> {
        let mut m = self.env.pool(port_hint).alloc()?;
        if m.headroom() < TX_HEADROOM {
            return None;
        }
        *meta_mut(&mut m) = PktMeta {
            rx_port: NO_PORT,
            ..PktMeta::default()
        };
        Some(m)
    }

    /// Drops a datagram, counted as `app_dropped` of this application's node.
    #[inline]
    pub fn drop_datagram(&mut self, m: Mbuf) {
        self.ctx.drop(self.app_dropped, m);
    }

    /// Time of this graph dispatch in nanoseconds (monotonic).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.ctx.now_ns()
    }
}

/// A graph node that runs a [`UdpApp`]: the target of a [`UdpBinding`]. Next node:
/// `udp-output`.
pub struct UdpAppNode {
    env: Arc<StackEnv>,
    app: Box<dyn UdpApp>,
    app_dropped: DropId,
}

impl UdpAppNode {
    /// A node running `app` with `env`'s pools.
    pub fn new(env: &Arc<StackEnv>, app: Box<dyn UdpApp>) -> Self {
        UdpAppNode {
            env: env.clone(),
            app,
            app_dropped: DropId::placeholder(),
        }
    }
}

impl Node for UdpAppNode {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::UDP_OUTPUT.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.app_dropped = ctx.drop_reason("app_dropped");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let mut out = UdpOut {
            ctx,
            env: &self.env,
            app_dropped: self.app_dropped,
        };
        let app = &mut self.app;
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let md = meta(&m);
            let src = SocketAddrV4::new(Ipv4Addr::from(md.aux[0]), (md.aux[1] >> 16) as u16);
            let dst = SocketAddrV4::new(Ipv4Addr::from(md.addr), md.aux[1] as u16);
            app.on_datagram(
                Datagram {
                    src,
                    dst,
                    payload: m,
                },
                &mut out,
            );
        });
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        let mut out = UdpOut {
            ctx,
            env: &self.env,
            app_dropped: self.app_dropped,
        };
        self.app.poll(&mut out);
    }
}

/// The echo service (RFC 862 over UDP): every datagram goes back to its sender, from the
/// address and port it was sent to, in the same mbuf.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpEcho;

impl UdpApp for UdpEcho {
    #[inline]
    fn on_datagram(&mut self, d: Datagram, out: &mut UdpOut<'_, '_>) {
        out.send(d.payload, d.dst, d.src);
    }
}

/// `udp-output`: writes the UDP and IPv4 headers in front of payloads that applications send
/// and hands the packets to `ipv4-lookup` as locally originated.
///
/// Picks the source address when the application gave none (or one that is not ours): the
/// address of the interface the route to the remote uses. Drops: `no_route` (no interface
/// towards the remote to take a source address from), `too_long` (more than 65507 bytes of
/// payload), `shared_buffer` (a payload shared with a clone cannot take headers),
/// `no_headroom` (fewer than 28 bytes in front of the payload).
///
/// When the route to the remote leaves through a port that takes partial L4 checksums
/// ([`StackEnv::tx_l4_checksum_offload`]), the checksum field gets only the pseudo-header sum
/// and the mbuf `TX_L4_CKSUM`; the payload is not summed.
pub struct UdpOutput {
    env: Arc<StackEnv>,
    /// Some interface takes partial L4 checksums (otherwise no per-datagram route check).
    any_offload: bool,
    ident: u16,
    no_route: DropId,
    too_long: DropId,
    shared: DropId,
    no_headroom: DropId,
}

impl UdpOutput {
    /// A node taking routes and addresses from `env`.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        UdpOutput {
            env: env.clone(),
            any_offload: env
                .fib
                .interfaces()
                .iter()
                .any(|i| i.tx_l4_checksum_offload),
            ident: 0,
            no_route: DropId::placeholder(),
            too_long: DropId::placeholder(),
            shared: DropId::placeholder(),
            no_headroom: DropId::placeholder(),
        }
    }
}

impl Node for UdpOutput {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOOKUP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.no_route = ctx.drop_reason("no_route");
        self.too_long = ctx.drop_reason("too_long");
        self.shared = ctx.drop_reason("shared_buffer");
        self.no_headroom = ctx.drop_reason("no_headroom");
        // Lcores start their identification counters apart, so that two lcores sending to
        // one peer do not walk the same sequence in step.
        self.ident = (ctx.lcore() as u16).wrapping_mul(0x9e37);
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let env = self.env.clone();
        let ttl = env.params.ttl;
        let n = pkts.len();
        pkts.drain_front(n, |mut m| {
            let md = *meta(&m);
            let remote = Ipv4Addr::from(md.aux[0]);
            let rport = (md.aux[1] >> 16) as u16;
            let lport = md.aux[1] as u16;
            let mut local = Ipv4Addr::from(md.addr);
            let pick = md.addr == 0 || !env.fib.is_local_addr(local);
            // The port of the route towards the remote (ECMP member 0): its interface gives
            // the source address when the app left it to us, and whether the checksum can be
            // left partial (`tx` completes it should the datagram leave through another port).
            let hop_port = if pick || self.any_offload {
                env.fib.lookup(remote, 0).map(|hop| hop.port)
            } else {
                None
            };
            let offload = hop_port.is_some_and(|p| env.tx_l4_checksum_offload(p));
            if pick {
                let picked = hop_port
                    .and_then(|p| env.interface(p))
                    .and_then(|ifc| ifc.source_for(remote));
                match picked {
                    Some(a) => local = a,
                    None => {
                        crate::trace_pkt!(ctx, &m, "no source address towards {remote} → drop");
                        ctx.drop(self.no_route, m);
                        return;
                    }
                }
            }
            let ulen = m.pkt_len() + UDP_HDR;
            if ulen > UDP_MAX {
                ctx.drop(self.too_long, m);
                return;
            }
            if m.is_shared() {
                ctx.drop(self.shared, m);
                return;
            }
            let Some(h) = m.prepend(IP_HDR + UDP_HDR) else {
                ctx.drop(self.no_headroom, m);
                return;
            };
            self.ident = self.ident.wrapping_add(1);
            {
                let (iph, udph) = h.split_at_mut(IP_HDR);
                udph[0..2].copy_from_slice(&lport.to_be_bytes());
                udph[2..4].copy_from_slice(&rport.to_be_bytes());
                udph[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
                udph[6..8].fill(0);
                iph.fill(0);
                let mut ip = Ipv4Packet::new_unchecked(iph);
                ip.set_version(4);
                ip.set_header_len(IP_HDR);
                ip.set_total_len((IP_HDR + ulen) as u16);
                ip.set_ident(self.ident);
                ip.set_ttl(ttl);
                ip.set_protocol(ip_protocol::UDP);
                ip.set_src_addr(local);
                ip.set_dst_addr(remote);
                ip.fill_checksum();
            }
            let ph = checksum::pseudo_header_v4(local, remote, ip_protocol::UDP, ulen as u16);
            let c = if offload {
                // Partial: the pseudo-header sum, for the port to complete (DPDK convention).
                m.set_ol_flags(m.ol_flags() | ol::TX_L4_CKSUM);
                ph as u16
            } else {
                match checksum::finish(checksum::combine(ph, chain_sum(&m, IP_HDR))) {
                    0 => 0xffff, // RFC 768: a computed zero is sent as all ones
                    c => c,
                }
            };
            m.data_mut()[IP_HDR + 6..IP_HDR + 8].copy_from_slice(&c.to_be_bytes());
            let mdm = meta_mut(&mut m);
            mdm.flags = PktMeta::F_LOCAL_ORIGIN;
            mdm.l3_len = IP_HDR as u8;
            let next = ctx.edge_name(0);
            crate::trace_pkt!(
                ctx,
                &m,
                "{local}:{lport} → {remote}:{rport} len {ulen} → {next}"
            );
            ctx.enqueue(0, m);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use etherparse::{Ipv4Header, PacketBuilder, UdpHeader};

    use super::*;
    use crate::graph::{Graph, GraphBuilder, NodeStats, TraceControl};
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::runtime::LcoreIo;
    use crate::stack::{Fib, Interface, NeighTable, StackParams};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn ifc(port: u16, addr: &str, len: u8) -> Interface {
        ifc_offload(port, addr, len, false)
    }

    fn ifc_offload(port: u16, addr: &str, len: u8, offload: bool) -> Interface {
        Interface::for_test(port, ip(addr), len, offload)
    }

    fn pool(name: &str, headroom: u16) -> Mempool {
        let mut p = MempoolParams::new(name, 256);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.headroom = headroom;
        Mempool::new(&p).unwrap()
    }

    /// What a capture stub saw: bytes (segments joined), metadata, segment count, buffer index.
    #[derive(Debug, Clone)]
    struct Seen {
        bytes: Vec<u8>,
        flags: u64,
        meta: PktMeta,
        segs: usize,
        buf: u32,
    }

    type Log<T> = Arc<Mutex<Vec<T>>>;

    fn joined(m: &Mbuf) -> Vec<u8> {
        m.segments().flat_map(|s| s.iter().copied()).collect()
    }

    /// Stands in for `ipv4-lookup` / `icmp-error`: records and frees what it receives.
    struct Capture(Log<Seen>);
    impl Node for Capture {
        fn next_nodes(&self) -> Vec<String> {
            Vec::new()
        }
        fn process(&mut self, pkts: &mut Burst, _ctx: &mut NodeCtx<'_>) {
            let n = pkts.len();
            pkts.drain_front(n, |m| {
                self.0.lock().unwrap().push(Seen {
                    bytes: joined(&m),
                    flags: m.ol_flags(),
                    meta: *meta(&m),
                    segs: m.nb_segs(),
                    buf: m.buf_index(),
                });
            });
        }
    }

    /// An app that records datagrams (tagged with its name) and drops them.
    struct Recorder(&'static str, Log<(&'static str, Datagram2)>);
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Datagram2 {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: Vec<u8>,
        segs: usize,
    }
    impl UdpApp for Recorder {
        fn on_datagram(&mut self, d: Datagram, out: &mut UdpOut<'_, '_>) {
            self.1.lock().unwrap().push((
                self.0,
                Datagram2 {
                    src: d.src,
                    dst: d.dst,
                    payload: joined(&d.payload),
                    segs: d.payload.nb_segs(),
                },
            ));
            out.drop_datagram(d.payload);
        }
    }

    /// What the sender app sends on its next poll: a given mbuf, or bytes in a fresh one.
    enum Cmd {
        Mbuf(Mbuf, SocketAddrV4, SocketAddrV4),
        Bytes(&'static [u8], SocketAddrV4, SocketAddrV4),
    }

    /// An app that originates datagrams from `poll`.
    struct Sender(Log<Cmd>);
    impl UdpApp for Sender {
        fn on_datagram(&mut self, d: Datagram, out: &mut UdpOut<'_, '_>) {
            out.drop_datagram(d.payload);
        }
        fn poll(&mut self, out: &mut UdpOut<'_, '_>) {
            let cmds: Vec<Cmd> = self.0.lock().unwrap().drain(..).collect();
            for c in cmds {
                match c {
                    Cmd::Mbuf(m, from, to) => out.send(m, from, to),
                    Cmd::Bytes(b, from, to) => {
                        let mut m = out.alloc(0).expect("pool has mbufs");
                        assert!(m.headroom() >= TX_HEADROOM);
                        m.append(b.len()).unwrap().copy_from_slice(b);
                        out.send(m, from, to);
                    }
                }
            }
        }
    }

    struct Harness {
        graph: Graph,
        io: LcoreIo,
        env: Arc<StackEnv>,
        trace: Arc<TraceControl>,
        out: Log<Seen>,
        icmp: Log<Seen>,
        apps: Log<(&'static str, Datagram2)>,
        sends: Log<Cmd>,
    }

    fn harness() -> Harness {
        harness_with(false)
    }

    /// The harness, port 1 taking partial L4 checksums when `offload`.
    fn harness_with(offload: bool) -> Harness {
        let fib = Fib::new(
            vec![
                ifc(0, "198.18.0.1", 24),
                ifc_offload(1, "198.18.1.1", 24, offload),
            ],
            &[],
        )
        .unwrap();
        let env = StackEnv::new(
            fib,
            NeighTable::new(64, 1_000_000_000),
            vec![pool("udp-test", 128)],
            StackParams::default(),
        );
        let out: Log<Seen> = Arc::default();
        let icmp: Log<Seen> = Arc::default();
        let apps: Log<(&'static str, Datagram2)> = Arc::default();
        let sends: Log<Cmd> = Arc::default();
        let bind = |port, addr: Option<&str>, node: &str| UdpBinding {
            port,
            addr: addr.map(ip),
            node: node.into(),
        };
        // The wildcard on port 9 is listed first: the address binding must still win.
        let bindings = vec![
            bind(7, None, "echo"),
            bind(9, None, "app-any"),
            bind(9, Some("198.18.1.1"), "app-b"),
            bind(53, Some("0.0.0.0"), "sender"),
        ];
        let mut b = GraphBuilder::new();
        b.add(names::UDP_INPUT, Box::new(UdpInput::new(&env, bindings)))
            .add("echo", Box::new(UdpAppNode::new(&env, Box::new(UdpEcho))))
            .add(
                "app-any",
                Box::new(UdpAppNode::new(
                    &env,
                    Box::new(Recorder("any", apps.clone())),
                )),
            )
            .add(
                "app-b",
                Box::new(UdpAppNode::new(&env, Box::new(Recorder("b", apps.clone())))),
            )
            .add(
                "sender",
                Box::new(UdpAppNode::new(&env, Box::new(Sender(sends.clone())))),
            )
            .add(names::UDP_OUTPUT, Box::new(UdpOutput::new(&env)))
            .add(names::IPV4_LOOKUP, Box::new(Capture(out.clone())))
            .add(names::ICMP_ERROR, Box::new(Capture(icmp.clone())));
        let trace = TraceControl::new();
        let graph = b.build(1, names::UDP_INPUT, trace.clone()).unwrap();
        Harness {
            graph,
            io: LcoreIo::new(Vec::new()),
            env,
            trace,
            out,
            icmp,
            apps,
            sends,
        }
    }

    impl Harness {
        fn pool(&self) -> &Mempool {
            self.env.pool(0)
        }

        /// An mbuf holding `bytes` (data at the IPv4 header, as after ipv4-input), split into
        /// two segments at `split` if given.
        fn mbuf(&self, bytes: &[u8], split: Option<usize>) -> Mbuf {
            let at = split.unwrap_or(bytes.len());
            let mut m = self.pool().alloc().unwrap();
            m.append(at).unwrap().copy_from_slice(&bytes[..at]);
            if at < bytes.len() {
                let mut t = self.pool().alloc().unwrap();
                t.append(bytes.len() - at)
                    .unwrap()
                    .copy_from_slice(&bytes[at..]);
                m.chain(t).unwrap();
            }
            *meta_mut(&mut m) = PktMeta {
                l3_len: 20,
                flags: PktMeta::F_LOCAL,
                ..PktMeta::default()
            };
            m
        }

        fn input(&mut self, ms: Vec<Mbuf>) {
            let mut burst = Burst::new();
            for m in ms {
                burst.push(m).unwrap();
            }
            let id = self.graph.node_id(names::UDP_INPUT).unwrap();
            self.graph.dispatch(id, &mut burst, &mut self.io);
        }

        fn send_bytes(&mut self, bytes: &[u8]) {
            let m = self.mbuf(bytes, None);
            self.input(vec![m]);
        }

        fn poll(&mut self) {
            self.graph.poll(&mut self.io);
        }

        fn stats(&self, node: &str) -> NodeStats {
            self.graph
                .monitor()
                .stats()
                .into_iter()
                .find(|s| s.node == node)
                .unwrap()
        }

        fn drops(&self, node: &str, reason: &str) -> u64 {
            self.stats(node)
                .drops
                .iter()
                .find(|(r, _)| r == reason)
                .map_or_else(|| panic!("{node} has no reason {reason}"), |(_, c)| *c)
        }

        fn take_out(&self) -> Vec<Seen> {
            std::mem::take(&mut *self.out.lock().unwrap())
        }

        fn take_apps(&self) -> Vec<(&'static str, Datagram2)> {
            std::mem::take(&mut *self.apps.lock().unwrap())
        }
    }

    /// An IPv4 + UDP packet built by etherparse (an independent implementation).
    fn datagram(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = (sa(src), sa(dst));
        let mut v = Vec::new();
        PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
            .udp(src.port(), dst.port())
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// Sets a 16-bit field of a packet and refreshes the IPv4 header checksum.
    fn patch(v: &mut [u8], at: usize, val: u16) {
        v[at..at + 2].copy_from_slice(&val.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut v[..20]).fill_checksum();
    }

    /// Checks a packet udp-output produced with etherparse and our own checksum code; returns
    /// (ip header, udp header, payload).
    fn check_output(b: &[u8]) -> (Ipv4Header, UdpHeader, Vec<u8>) {
        let (iph, rest) = Ipv4Header::from_slice(b).unwrap();
        assert_eq!(
            iph.header_checksum,
            iph.calc_header_checksum(),
            "ip checksum"
        );
        assert!(checksum::verify(&b[..20]));
        assert_eq!(iph.total_len as usize, b.len());
        assert_eq!(iph.ihl(), 5);
        assert!(!iph.dont_fragment && !iph.more_fragments);
        assert_eq!(iph.time_to_live, 64);
        assert_eq!(iph.protocol, etherparse::IpNumber::UDP);
        let (udph, payload) = UdpHeader::from_slice(rest).unwrap();
        assert_eq!(udph.length as usize, rest.len());
        assert_ne!(udph.checksum, 0, "udp-output always computes a checksum");
        assert_eq!(
            udph.checksum,
            udph.calc_checksum_ipv4(&iph, payload).unwrap(),
            "udp checksum"
        );
        let ph = checksum::pseudo_header_v4(
            iph.source.into(),
            iph.destination.into(),
            ip_protocol::UDP,
            udph.length,
        );
        assert!(checksum::verify_sum(checksum::combine(
            ph,
            checksum::sum(rest)
        )));
        (iph, udph, payload.to_vec())
    }

    #[test]
    fn datagram_to_bound_port_reaches_the_app() {
        let mut h = harness();
        h.send_bytes(&datagram("198.18.0.9:5000", "198.18.0.1:9", b"hello"));
        let got = h.take_apps();
        assert_eq!(got.len(), 1);
        let (tag, d) = &got[0];
        assert_eq!(*tag, "any");
        assert_eq!(d.src, sa("198.18.0.9:5000"));
        assert_eq!(d.dst, sa("198.18.0.1:9"));
        assert_eq!(d.payload, b"hello");
        assert_eq!(h.drops("app-any", "app_dropped"), 1);
        assert!(h.take_out().is_empty());
        assert_eq!(h.pool().in_use(), 0, "every mbuf went back to the pool");
    }

    #[test]
    fn echo_swaps_addresses_in_the_same_mbuf_with_correct_checksums() {
        let mut h = harness();
        let a = h.mbuf(&datagram("198.18.0.9:5000", "198.18.0.1:7", b"hello"), None);
        let b = h.mbuf(
            &datagram("198.18.0.9:5001", "198.18.0.1:7", b"odd-sized!!"),
            None,
        );
        let (ia, ib) = (a.buf_index(), b.buf_index());
        h.input(vec![a, b]);
        let out = h.take_out();
        assert_eq!(out.len(), 2);
        for (s, (port, payload, buf)) in out
            .iter()
            .zip([(5000, &b"hello"[..], ia), (5001, &b"odd-sized!!"[..], ib)])
        {
            let (iph, udph, p) = check_output(&s.bytes);
            assert_eq!(Ipv4Addr::from(iph.source), ip("198.18.0.1"));
            assert_eq!(Ipv4Addr::from(iph.destination), ip("198.18.0.9"));
            assert_eq!((udph.source_port, udph.destination_port), (7, port));
            assert_eq!(p, payload);
            assert_eq!(s.buf, buf, "zero copy: the reply is the request's mbuf");
            assert_eq!(s.meta.flags, PktMeta::F_LOCAL_ORIGIN);
            assert_eq!(s.meta.l3_len, 20);
        }
        let id = |s: &Seen| u16::from_be_bytes([s.bytes[4], s.bytes[5]]);
        assert_eq!(id(&out[1]), id(&out[0]).wrapping_add(1), "ident counter");
        assert_eq!(h.stats("echo").packets, 2);
        assert_eq!(h.stats(names::UDP_OUTPUT).packets, 2);
    }

    #[test]
    fn closed_port_goes_to_icmp_error_at_its_ip_header() {
        let mut h = harness();
        let pkt = datagram("198.18.0.9:5000", "198.18.0.1:9999", b"anyone?");
        h.send_bytes(&pkt);
        let got = std::mem::take(&mut *h.icmp.lock().unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].bytes, pkt,
            "data still at the IPv4 header, untouched"
        );
        assert_eq!((got[0].meta.icmp_type, got[0].meta.icmp_code), (3, 3));
        assert_eq!(got[0].meta.mtu, 0);
        assert_eq!(h.drops(names::UDP_INPUT, "port_unreachable"), 1);
        assert!(h.take_apps().is_empty());
        // An address binding on port 9 (198.18.1.1) does not close port 9 on other addresses:
        // the wildcard binding takes those.
        h.send_bytes(&datagram("198.18.0.9:5000", "198.18.0.1:9", b""));
        assert_eq!(h.take_apps()[0].0, "any");
    }

    #[test]
    fn malformed_datagrams_are_dropped_by_reason() {
        let mut h = harness();
        // Bad checksum: one payload bit flipped.
        let mut bad = datagram("198.18.0.9:5000", "198.18.0.1:7", b"hello");
        bad[30] ^= 1;
        h.send_bytes(&bad);
        assert_eq!(h.drops(names::UDP_INPUT, "bad_checksum"), 1);

        // UDP length below 8.
        let mut short = datagram("198.18.0.9:5000", "198.18.0.1:7", b"hello");
        patch(&mut short, 24, 7);
        h.send_bytes(&short);
        // UDP length beyond the IP payload.
        let mut long = datagram("198.18.0.9:5000", "198.18.0.1:7", b"hello");
        patch(&mut long, 24, 14);
        h.send_bytes(&long);
        assert_eq!(h.drops(names::UDP_INPUT, "bad_length"), 2);

        // Only 5 bytes after the IP header.
        let mut trunc = datagram("198.18.0.9:5000", "198.18.0.1:7", b"hello")[..25].to_vec();
        patch(&mut trunc, 2, 25);
        h.send_bytes(&trunc);
        assert_eq!(h.drops(names::UDP_INPUT, "truncated"), 1);

        assert!(h.take_out().is_empty());
        assert!(h.take_apps().is_empty());
        assert_eq!(h.drops(names::UDP_INPUT, "port_unreachable"), 0);
        assert_eq!(h.pool().in_use(), 0);
    }

    #[test]
    fn hardware_checksum_verdict_is_trusted_except_for_reassembled_datagrams() {
        let mut h = harness();
        let mut bad = datagram("198.18.0.9:5000", "198.18.0.1:9", b"hello");
        bad[30] ^= 1;
        let mut m = h.mbuf(&bad, None);
        m.set_ol_flags(ol::RX_L4_CKSUM_GOOD);
        h.input(vec![m]);
        assert_eq!(h.take_apps().len(), 1, "the NIC vouched for the checksum");
        // A reassembled datagram carries its first fragment's flags, which say nothing about
        // the whole datagram: verified in software.
        let mut m = h.mbuf(&bad, None);
        m.set_ol_flags(ol::RX_L4_CKSUM_GOOD);
        meta_mut(&mut m).flags |= PktMeta::F_REASSEMBLED;
        h.input(vec![m]);
        assert!(h.take_apps().is_empty());
        assert_eq!(h.drops(names::UDP_INPUT, "bad_checksum"), 1);
    }

    #[test]
    fn ip_payload_longer_than_udp_length_is_trimmed() {
        let mut h = harness();
        let mut v = datagram("198.18.0.9:5000", "198.18.0.1:9", b"abc");
        v.extend_from_slice(b"JUNK");
        let tl = v.len() as u16;
        patch(&mut v, 2, tl);
        h.send_bytes(&v);
        let got = h.take_apps();
        assert_eq!(got.len(), 1, "{:?}", h.stats(names::UDP_INPUT));
        assert_eq!(got[0].1.payload, b"abc");
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut h = harness();
        let mut v = datagram("198.18.0.9:5000", "198.18.0.1:9", b"no checksum");
        v[26] = 0;
        v[27] = 0;
        h.send_bytes(&v);
        let got = h.take_apps();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.payload, b"no checksum");
        assert_eq!(h.drops(names::UDP_INPUT, "bad_checksum"), 0);
    }

    #[test]
    fn computed_zero_checksum_is_sent_as_ffff() {
        let mut h = harness();
        // Choose the 2-byte payload so the one's-complement sum of the reply is 0xffff (its
        // checksum computes to 0). The request's sum is the same (addresses and ports swap).
        let (src, dst) = (ip("198.18.0.9"), ip("198.18.0.1"));
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, 10);
        let hdr = [0x13, 0x88, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00]; // 5000 → 7, len 10
        let s = checksum::combine(ph, checksum::sum(&hdr));
        let word = !(s as u16);
        h.send_bytes(&datagram(
            "198.18.0.9:5000",
            "198.18.0.1:7",
            &word.to_be_bytes(),
        ));
        let out = h.take_out();
        assert_eq!(out.len(), 1, "{:?}", h.stats(names::UDP_INPUT));
        let b = &out[0].bytes;
        assert_eq!(&b[26..28], &[0xff, 0xff]);
        check_output(b);
    }

    #[test]
    fn address_binding_beats_wildcard() {
        let mut h = harness();
        h.send_bytes(&datagram("198.18.1.7:4000", "198.18.1.1:9", b"to b"));
        h.send_bytes(&datagram("198.18.0.9:4000", "198.18.0.1:9", b"to any"));
        h.send_bytes(&datagram("198.18.1.7:4000", "198.18.1.255:9", b"bcast"));
        let got = h.take_apps();
        let tags: Vec<_> = got.iter().map(|(t, d)| (*t, d.payload.clone())).collect();
        assert_eq!(
            tags,
            vec![
                ("b", b"to b".to_vec()),
                ("any", b"to any".to_vec()),
                ("any", b"bcast".to_vec())
            ]
        );
        assert_eq!(got[2].1.dst, sa("198.18.1.255:9"));
    }

    #[test]
    fn chained_datagram_checksum_is_verified_across_segments() {
        let mut h = harness();
        let payload: Vec<u8> = (0..301u32).map(|i| (i * 7 + 3) as u8).collect();
        let pkt = datagram("198.18.0.9:5000", "198.18.0.1:9", &payload);
        // Odd split: the second segment starts at an odd offset of the UDP message.
        let m = h.mbuf(&pkt, Some(20 + 8 + 101));
        assert_eq!(m.nb_segs(), 2);
        h.input(vec![m]);
        let got = h.take_apps();
        assert_eq!(got.len(), 1, "{:?}", h.stats(names::UDP_INPUT));
        assert_eq!(got[0].1.payload, payload);
        assert_eq!(got[0].1.segs, 2);

        // A flipped bit in the second segment is caught.
        let mut bad = pkt.clone();
        bad[250] ^= 0x10;
        let m = h.mbuf(&bad, Some(20 + 8 + 101));
        h.input(vec![m]);
        assert_eq!(h.drops(names::UDP_INPUT, "bad_checksum"), 1);

        // Echo of a chain: headers go in front of the first segment, the checksum covers both.
        let echo = datagram("198.18.0.9:5000", "198.18.0.1:7", &payload);
        let m = h.mbuf(&echo, Some(20 + 8 + 33));
        h.input(vec![m]);
        let out = h.take_out();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].segs, 2);
        let (_, udph, p) = check_output(&out[0].bytes);
        assert_eq!(udph.destination_port, 5000);
        assert_eq!(p, payload);
        assert_eq!(h.pool().in_use(), 0);
    }

    #[test]
    fn reply_to_a_broadcast_comes_from_the_interface_address() {
        let mut h = harness();
        h.send_bytes(&datagram("198.18.0.9:5000", "198.18.0.255:7", b"who"));
        h.send_bytes(&datagram("198.18.1.7:6000", "255.255.255.255:7", b"all"));
        let out = h.take_out();
        assert_eq!(out.len(), 2);
        let (a, ua, _) = check_output(&out[0].bytes);
        assert_eq!(Ipv4Addr::from(a.source), ip("198.18.0.1"));
        assert_eq!(Ipv4Addr::from(a.destination), ip("198.18.0.9"));
        assert_eq!((ua.source_port, ua.destination_port), (7, 5000));
        let (b, ub, _) = check_output(&out[1].bytes);
        assert_eq!(Ipv4Addr::from(b.source), ip("198.18.1.1"));
        assert_eq!(Ipv4Addr::from(b.destination), ip("198.18.1.7"));
        assert_eq!((ub.source_port, ub.destination_port), (7, 6000));
    }

    #[test]
    fn apps_originate_datagrams_from_poll() {
        let mut h = harness();
        let low = pool("udp-low-headroom", 16);
        let mut tight = low.alloc().unwrap();
        tight.append(4).unwrap().copy_from_slice(b"tiny");
        h.sends.lock().unwrap().extend([
            // Unspecified source: the address of port 1, towards which the remote lies.
            Cmd::Bytes(b"ping", sa("0.0.0.0:53"), sa("198.18.1.7:5353")),
            // A given local address is kept even on the other interface.
            Cmd::Bytes(b"pong", sa("198.18.0.1:53"), sa("198.18.1.7:5353")),
            // Nowhere to go: no route, so no source address.
            Cmd::Bytes(b"lost", sa("0.0.0.0:53"), sa("10.9.9.9:1")),
            // 16 bytes of headroom cannot take 28 bytes of headers.
            Cmd::Mbuf(tight, sa("198.18.0.1:53"), sa("198.18.0.9:1")),
        ]);
        h.poll();
        let out = h.take_out();
        assert_eq!(out.len(), 2);
        let (a, ua, pa) = check_output(&out[0].bytes);
        assert_eq!(Ipv4Addr::from(a.source), ip("198.18.1.1"));
        assert_eq!(Ipv4Addr::from(a.destination), ip("198.18.1.7"));
        assert_eq!(
            (ua.source_port, ua.destination_port, &pa[..]),
            (53, 5353, &b"ping"[..])
        );
        assert_eq!(out[0].meta.flags, PktMeta::F_LOCAL_ORIGIN);
        let (b, _, pb) = check_output(&out[1].bytes);
        assert_eq!(Ipv4Addr::from(b.source), ip("198.18.0.1"));
        assert_eq!(pb, b"pong");
        assert_eq!(h.drops(names::UDP_OUTPUT, "no_route"), 1);
        assert_eq!(h.drops(names::UDP_OUTPUT, "no_headroom"), 1);
        assert_eq!(h.pool().in_use(), 0);
        assert_eq!(low.in_use(), 0);
    }

    #[test]
    fn checksums_are_left_partial_towards_a_port_that_completes_them() {
        let mut h = harness_with(true);
        h.sends.lock().unwrap().extend([
            // Routed through port 1, which takes partial checksums.
            Cmd::Bytes(b"ping!", sa("0.0.0.0:53"), sa("198.18.1.7:5353")),
            // Through port 0, which does not (the given source is port 1's: the route counts).
            Cmd::Bytes(b"pong", sa("198.18.1.1:53"), sa("198.18.0.9:5353")),
        ]);
        h.poll();
        let out = h.take_out();
        assert_eq!(out.len(), 2);
        let partial = &out[0];
        assert_eq!(partial.flags & ol::TX_L4_CKSUM, ol::TX_L4_CKSUM);
        let ph =
            checksum::pseudo_header_v4(ip("198.18.1.1"), ip("198.18.1.7"), ip_protocol::UDP, 8 + 5);
        assert_eq!(
            u16::from_be_bytes([partial.bytes[26], partial.bytes[27]]),
            ph as u16
        );
        // What the tx node does for a port without offload gives the checksum etherparse
        // computes.
        let mut m = h.mbuf(&partial.bytes, None);
        m.set_ol_flags(partial.flags);
        assert!(crate::stack::offload::complete_l4_checksum(&mut m, 0));
        let (_, _, payload) = check_output(&joined(&m));
        assert_eq!(payload, b"ping!");
        drop(m);
        // Port 0: complete, unflagged.
        assert_eq!(out[1].flags & ol::TX_L4_CKSUM, 0);
        check_output(&out[1].bytes);
        assert_eq!(h.pool().in_use(), 0);
    }

    #[test]
    fn trace_names_the_socket() {
        let mut h = harness();
        h.trace.arm(1, None);
        let mut burst = Burst::new();
        burst
            .push(h.mbuf(&datagram("198.18.0.9:5000", "198.18.0.1:7", b"x"), None))
            .unwrap();
        h.graph.mark_traced(0, &mut burst);
        let id = h.graph.node_id(names::UDP_INPUT).unwrap();
        h.graph.dispatch(id, &mut burst, &mut h.io);
        h.poll();
        let text = h.trace.to_text();
        assert!(
            text.contains("198.18.0.9:5000 → 198.18.0.1:7 → echo"),
            "{text}"
        );
        assert!(
            text.contains("send 198.18.0.1:7 → 198.18.0.9:5000 → udp-output"),
            "{text}"
        );
        assert!(
            text.contains("198.18.0.1:7 → 198.18.0.9:5000 len 9 → ipv4-lookup"),
            "{text}"
        );
    }
}
