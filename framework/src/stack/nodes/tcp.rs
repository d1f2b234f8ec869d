//! `tcp-input`: checks TCP segments addressed to us and feeds them to the lcore's
//! [`TcpLayer`] (Linux: `tcp_v4_rcv` → `__inet_lookup_skb` → `tcp_rcv_established` /
//! `tcp_rcv_state_process`), and turns what the engine sends into IPv4 packets for
//! `ipv4-lookup` (Linux: `tcp_transmit_skb` → `ip_queue_xmit`), like `udp-output` does for UDP.
//!
//! Received payload is copied once, into the connection's receive ring; the mbuf goes back to
//! its pool right after. Segments to send are built in fresh mbufs from the pool of the port
//! the flow uses: IPv4 header, TCP header and options, payload copied from the send ring,
//! checksum over the pseudo header — or, when that port accepts partial checksums
//! ([`StackEnv::tx_l4_checksum_offload`]), only the pseudo-header sum and `TX_L4_CKSUM`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::{ol, Mbuf, NO_PORT};
use crate::stack::tcp::{InputOutcome, LayerStats, SegmentSink, SourceFn, TcpLayer};
use crate::stack::StackEnv;
use crate::tcp::{Payload, TcpSegment, Transmit};
use crate::wire::{checksum, ip_protocol, Ipv4Packet, WireError};

/// Length of the IPv4 header the node writes (no options).
const IP_HDR: usize = 20;
/// Smallest TCP header.
const TCP_HDR: usize = 20;
/// Room an output mbuf needs in front for the Ethernet header (`ipv4-rewrite`).
const ETH_ROOM: usize = 14;
/// Largest segment taken from a chained (reassembled) packet.
const SCRATCH: usize = 65536;

/// A [`SourceFn`] over the stack's FIB: our address on the interface of the route towards a
/// peer, and that interface's port.
pub fn source_from_env(env: &Arc<StackEnv>) -> SourceFn {
    let env = env.clone();
    Arc::new(move |remote: Ipv4Addr| {
        let hop = env.fib.lookup(remote, 0)?;
        let ifc = env.interface(hop.port)?;
        Some((ifc.source_for(remote)?, hop.port))
    })
}

/// Event counters exported from [`LayerStats`], with their names.
const EVENTS: [&str; 14] = [
    "conn_accepted",
    "conn_connect",
    "conn_connect_failed",
    "conn_closed",
    "conn_reset_by_peer",
    "conn_timed_out",
    "rst_sent",
    "accept_table_full",
    "time_wait_overflow",
    "time_wait_reclaimed",
    "timer_fired",
    "tx_deferred",
    "tx_no_mbuf",
    "tx_by_reference",
];

fn event_values(s: &LayerStats, out: &OutCounts) -> [u64; 14] {
    [
        s.accepted,
        s.connects,
        s.connect_failed,
        s.closed,
        s.resets_in,
        s.timeouts,
        s.rst_sent,
        s.accept_table_full,
        s.time_wait_overflow,
        s.time_wait_reclaimed,
        s.timers,
        s.tx_deferred,
        out.no_mbuf,
        out.by_reference,
    ]
}

/// `tcp-input`: the TCP layer of one lcore as a graph node. Next node: `ipv4-lookup` (every
/// segment the layer sends).
///
/// Drops, each under its own reason: `truncated` (no room for a TCP header), `bad_address`
/// (to a broadcast address or from a non-unicast one), `bad_checksum`, `bad_data_offset`,
/// `bad_options` (malformed options), `no_listener` (answered with a reset), `table_full`
/// (a SYN while the connection table is full). Other counted events: the layer's
/// ([`LayerStats`]) as `conn_*`, `rst_sent`, `accept_table_full`, `time_wait_overflow`,
/// `time_wait_reclaimed`, `timer_fired`, `tx_deferred`, `tx_no_mbuf` (a segment not sent for want of a buffer:
/// the engine retransmits it) and `tx_by_reference` (segments whose payload left as references
/// to the send buffer's chunks instead of a copy), `rx_gathered` (received chains whose
/// payload lay in more than two pieces, copied into one buffer to be read); and the applications' own counters ([`TcpApp::counters`](crate::stack::tcp::TcpApp::counters)).
pub struct TcpInput {
    env: Arc<StackEnv>,
    layer: TcpLayer,
    scratch: Box<[u8]>,
    ident: u16,
    ttl: u8,
    out: OutCounts,
    exported: [u64; 14],
    events: [DropId; 14],
    /// The applications' counters: event id and the total last exported (sized at init).
    app_events: Vec<(DropId, u64)>,
    truncated: DropId,
    bad_address: DropId,
    bad_checksum: DropId,
    bad_data_offset: DropId,
    bad_options: DropId,
    no_listener: DropId,
    table_full: DropId,
    rx_gathered: DropId,
}

impl TcpInput {
    /// A node running `layer` with `env`'s routes and pools.
    pub fn new(env: &Arc<StackEnv>, layer: TcpLayer) -> Self {
        TcpInput {
            env: env.clone(),
            layer,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            ident: 0,
            ttl: env.params.ttl,
            out: OutCounts::default(),
            exported: [0; 14],
            events: [DropId::placeholder(); 14],
            app_events: Vec::new(),
            truncated: DropId::placeholder(),
            bad_address: DropId::placeholder(),
            bad_checksum: DropId::placeholder(),
            bad_data_offset: DropId::placeholder(),
            bad_options: DropId::placeholder(),
            no_listener: DropId::placeholder(),
            table_full: DropId::placeholder(),
            rx_gathered: DropId::placeholder(),
        }
    }

    /// The TCP layer inside.
    pub fn layer(&self) -> &TcpLayer {
        &self.layer
    }

    fn export(&mut self, ctx: &mut NodeCtx<'_>) {
        let now = event_values(self.layer.stats(), &self.out);
        for ((&v, &last), &id) in now.iter().zip(&self.exported).zip(&self.events) {
            if v != last {
                ctx.count(id, v - last);
            }
        }
        self.exported = now;
        let mut i = 0;
        let events = &mut self.app_events;
        self.layer.app_counters(&mut |_, v| {
            if let Some((id, last)) = events.get_mut(i) {
                if v != *last {
                    ctx.count(*id, v.wrapping_sub(*last));
                    *last = v;
                }
            }
            i += 1;
        });
    }
}

/// What [`Out`] counts.
#[derive(Debug, Default)]
struct OutCounts {
    /// Segments not sent for want of an mbuf.
    no_mbuf: u64,
    /// Segments whose payload left by reference.
    by_reference: u64,
}

/// Payloads at least this long leave as references to the send buffer's chunks (an indirect
/// mbuf per chunk, chained after the headers) rather than copied. Below it the copy costs less
/// than the extra mbufs and the chained receive: measured with `tcp-bulk-ferroplane`, 1448-byte
/// payloads by reference ran 17 % slower than copied, 64 948-byte ones 1.6× faster.
const BY_REFERENCE_MIN: usize = 2048;

/// The node's [`SegmentSink`]: builds IPv4 + TCP packets and enqueues them to `ipv4-lookup`.
struct Out<'c, 'a> {
    ctx: &'c mut NodeCtx<'a>,
    env: &'c StackEnv,
    ident: &'c mut u16,
    ttl: u8,
    counts: &'c mut OutCounts,
}

impl SegmentSink for Out<'_, '_> {
    #[inline]
    fn room(&self) -> usize {
        self.ctx.room(0)
    }

    fn send(&mut self, t: &Transmit<'_>, port_hint: u16) {
        let pool = self.env.pool(port_hint);
        let len = IP_HDR + t.buffer_len();
        // A large payload (jumbo MSS) that lies in send-buffer chunks goes by reference: the
        // first mbuf gets the headers only, from the small header pool when it has one.
        let by_ref = t.payload_len() >= BY_REFERENCE_MIN && t.payload_mbufs.0[0].is_some();
        let small = by_ref.then_some(self.env.headers.as_ref()).flatten();
        let Some(mut m) = small.and_then(|h| h.alloc()).or_else(|| pool.alloc()) else {
            self.counts.no_mbuf += 1;
            return;
        };
        let first = if by_ref {
            IP_HDR + t.header.header_len()
        } else {
            len
        };
        if m.headroom() < ETH_ROOM {
            self.counts.no_mbuf += 1;
            return;
        }
        let Some(buf) = m.append(first) else {
            // The pool's buffers are smaller than the segment (MSS is clamped to prevent it).
            self.counts.no_mbuf += 1;
            return;
        };
        *self.ident = self.ident.wrapping_add(1);
        // Leave the checksum to the port when the flow's port takes partial ones; `tx`
        // completes it in software should the packet leave through another port.
        let offload = self.env.tx_l4_checksum_offload(port_hint);
        {
            let (iph, tcp) = buf.split_at_mut(IP_HDR);
            iph.fill(0);
            let mut ip = Ipv4Packet::new_unchecked(iph);
            ip.set_version(4);
            ip.set_header_len(IP_HDR);
            ip.set_total_len(len as u16);
            ip.set_ident(*self.ident);
            ip.set_dont_fragment(true);
            ip.set_ttl(self.ttl);
            ip.set_protocol(ip_protocol::TCP);
            ip.set_src_addr(t.src_addr);
            ip.set_dst_addr(t.dst_addr);
            ip.fill_checksum();
            if by_ref {
                // Headers only here: the payload follows as references.
                t.emit_header(tcp, offload);
            } else if offload {
                t.emit_partial(tcp);
            } else {
                t.emit(tcp);
            }
        }
        if offload {
            m.set_ol_flags(ol::TX_L4_CKSUM);
        }
        if by_ref {
            for (p, bytes) in t.payload_mbufs.0.iter().zip(t.payload.0) {
                let Some((chunk, off)) = *p else {
                    continue;
                };
                let r = small
                    .and_then(|h| chunk.clone_range(h, off, bytes.len()))
                    .or_else(|| chunk.clone_range(pool, off, bytes.len()));
                let Some(r) = r else {
                    self.counts.no_mbuf += 1;
                    return;
                };
                if m.chain(r).is_err() {
                    self.counts.no_mbuf += 1;
                    return;
                }
            }
            self.counts.by_reference += 1;
        }
        *meta_mut(&mut m) = PktMeta {
            rx_port: NO_PORT,
            flags: PktMeta::F_LOCAL_ORIGIN,
            l3_len: IP_HDR as u8,
            ..PktMeta::default()
        };
        self.ctx.enqueue(0, m);
    }
}

/// True when the TCP checksum of `head` (the segment, or its header when the payload lies
/// elsewhere) followed by `payload` verifies over the IPv4 pseudo header of `src` → `dst`.
fn checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, head: &[u8], payload: Payload<'_>) -> bool {
    let len = (head.len() + payload.len()) as u16;
    let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, len);
    let mut sum = checksum::combine(ph, checksum::sum(head));
    if !payload.is_empty() {
        // (A header has an even length, so the payload's sum adds as is.)
        sum = checksum::combine(sum, payload.sum());
    }
    checksum::verify_sum(sum)
}

/// For a chain whose first segment holds the whole TCP header (at `hl`, options included):
/// the header bytes and the payload where it lies, when it lies in at most two pieces (the
/// rest of the first segment and the segments after it, empty ones skipped) that add up to
/// `seg_len`. A peer sending by reference produces such chains: a header mbuf followed by
/// clones of one or two send-buffer chunks. Anything else is `None` (the caller gathers the
/// chain into one buffer).
fn header_and_payload(m: &Mbuf, hl: usize, seg_len: usize) -> Option<(&[u8], Payload<'_>)> {
    let mut segs = m.segments();
    let first = segs.next()?.get(hl..)?;
    let doff = (*first.get(12)? >> 4) as usize * 4;
    if doff < TCP_HDR || first.len() < doff {
        return None;
    }
    let (head, rest) = first.split_at(doff);
    let mut parts: [&[u8]; 2] = [&[], &[]];
    let mut n = 0;
    let mut len = doff;
    for piece in std::iter::once(rest).chain(segs) {
        if piece.is_empty() {
            continue;
        }
        *parts.get_mut(n)? = piece;
        n += 1;
        len += piece.len();
    }
    (len == seg_len).then_some((head, Payload(parts)))
}

impl Node for TcpInput {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_LOOKUP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.truncated = ctx.drop_reason("truncated");
        self.bad_address = ctx.drop_reason("bad_address");
        self.bad_checksum = ctx.drop_reason("bad_checksum");
        self.bad_data_offset = ctx.drop_reason("bad_data_offset");
        self.bad_options = ctx.drop_reason("bad_options");
        self.no_listener = ctx.drop_reason("no_listener");
        self.table_full = ctx.drop_reason("table_full");
        self.rx_gathered = ctx.drop_reason("rx_gathered");
        for (i, name) in EVENTS.iter().enumerate() {
            self.events[i] = ctx.drop_reason(name);
        }
        let mut app_events = Vec::new();
        self.layer
            .app_counters(&mut |name, _| app_events.push((ctx.drop_reason(name), 0)));
        self.app_events = app_events;
        self.ident = (ctx.lcore() as u16).wrapping_mul(0x9e37);
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let now = ctx.now_ns();
        let TcpInput {
            env,
            layer,
            scratch,
            ident,
            ttl,
            out: out_counts,
            truncated,
            bad_address,
            bad_checksum,
            bad_data_offset,
            bad_options,
            no_listener,
            table_full,
            rx_gathered,
            ..
        } = self;
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let md = *meta(&m);
            let hl = md.l3_len as usize;
            let total = m.pkt_len();
            let d = m.data();
            if hl < IP_HDR || d.len() < hl || total < hl + TCP_HDR {
                crate::trace_pkt!(ctx, &m, "no room for a tcp header → drop");
                ctx.drop(*truncated, m);
                return;
            }
            let src = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
            let dst = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
            let src_ok = !(src.is_broadcast()
                || src.is_multicast()
                || src.is_unspecified()
                || env.fib.is_local_addr(src));
            if !src_ok || !env.fib.is_local_addr(dst) {
                crate::trace_pkt!(ctx, &m, "{src} → {dst}: not unicast between hosts → drop");
                ctx.drop(*bad_address, m);
                return;
            }
            let seg_len = total - hl;
            // The segment as one slice, or (header, payload) when a two-mbuf chain holds the
            // header in the first and the payload in the second (what a peer sending payload
            // by reference produces): the payload is then read where it is.
            let mut split: Option<Payload<'_>> = None;
            let bytes: &[u8] = if m.nb_segs() == 1 {
                &d[hl..hl + seg_len]
            } else if let Some((h, p)) = header_and_payload(&m, hl, seg_len) {
                split = Some(p);
                h
            } else {
                if seg_len > scratch.len() || !m.read_at(hl, &mut scratch[..seg_len]) {
                    ctx.drop(*truncated, m);
                    return;
                }
                ctx.count(*rx_gathered, 1);
                &scratch[..seg_len]
            };
            // Good per the port, or a partial checksum of our own (never on a received packet:
            // ports clear transmit flags).
            let hw_good = m.ol_flags() & (ol::RX_L4_CKSUM_GOOD | ol::TX_L4_CKSUM) != 0
                && md.flags & PktMeta::F_REASSEMBLED == 0;
            if !hw_good && !checksum_ok(src, dst, bytes, split.unwrap_or_default()) {
                crate::trace_pkt!(ctx, &m, "bad tcp checksum → drop");
                ctx.drop(*bad_checksum, m);
                return;
            }
            let seg = match TcpSegment::parse(bytes) {
                Ok(mut s) => {
                    if let Some(Payload([a, b])) = split {
                        s.payload = a;
                        s.payload_tail = b;
                    }
                    s
                }
                Err(e) => {
                    let reason = match e {
                        WireError::BadOption => *bad_options,
                        WireError::BadDataOffset => *bad_data_offset,
                        _ => *truncated,
                    };
                    crate::trace_pkt!(ctx, &m, "malformed tcp header ({e:?}) → drop");
                    ctx.drop(reason, m);
                    return;
                }
            };
            let (sport, dport) = (seg.src_port, seg.dst_port);
            let outcome = {
                let mut out = Out {
                    ctx: &mut *ctx,
                    env,
                    ident: &mut *ident,
                    ttl: *ttl,
                    counts: &mut *out_counts,
                };
                layer.input_deferred(src, dst, &seg, md.rx_port, now, &mut out)
            };
            match outcome {
                InputOutcome::Connection | InputOutcome::Listener => {
                    crate::trace_pkt!(ctx, &m, "{src}:{sport} → {dst}:{dport}: {outcome:?}");
                    // Consumed: payload copied into the connection's ring.
                    drop(m);
                }
                InputOutcome::NoListener => {
                    crate::trace_pkt!(ctx, &m, "{dst}:{dport} closed → reset");
                    ctx.drop(*no_listener, m);
                }
                InputOutcome::TableFull => ctx.drop(*table_full, m),
            }
        });
        // One pump per connection for the whole vector: one ACK, one round of callbacks.
        {
            let mut out = Out {
                ctx: &mut *ctx,
                env: &self.env,
                ident: &mut self.ident,
                ttl: self.ttl,
                counts: &mut self.out,
            };
            self.layer.flush_deferred(now, &mut out);
        }
        self.export(ctx);
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        let now = ctx.now_ns();
        {
            let mut out = Out {
                ctx: &mut *ctx,
                env: &self.env,
                ident: &mut self.ident,
                ttl: self.ttl,
                counts: &mut self.out,
            };
            self.layer.poll(now, &mut out);
        }
        self.export(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::tcp::{Seq, TcpHeader, TcpOptions};
    use crate::wire::TcpFlags;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// An IPv4 header followed by a TCP segment (with a timestamps option, 32-byte header)
    /// carrying `payload`, checksum filled in.
    fn packet(payload: &[u8]) -> Vec<u8> {
        let seg = TcpSegment {
            header: TcpHeader {
                src_port: 4000,
                dst_port: 80,
                seq: Seq(7),
                ack: Seq(9),
                flags: TcpFlags::ACK,
                window: 1000,
                options: TcpOptions {
                    timestamps: Some(crate::tcp::Timestamps { tsval: 1, tsecr: 2 }),
                    ..Default::default()
                },
            },
            payload,
            payload_tail: &[],
        };
        let mut v = vec![0u8; IP_HDR + seg.buffer_len()];
        v[0] = 0x45;
        let n = seg.emit(&mut v[IP_HDR..], SRC, DST);
        assert_eq!(n, seg.buffer_len());
        v
    }

    /// `bytes` as a chain cut at `cuts` (offsets into `bytes`).
    fn chain(pool: &Mempool, bytes: &[u8], cuts: &[usize]) -> Mbuf {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(bytes.len());
        let mut head: Option<Mbuf> = None;
        for w in bounds.windows(2) {
            let mut m = pool.alloc().unwrap();
            m.append(w[1] - w[0])
                .unwrap()
                .copy_from_slice(&bytes[w[0]..w[1]]);
            match head.as_mut() {
                None => head = Some(m),
                Some(h) => h.chain(m).map_err(|_| "chain").unwrap(),
            }
        }
        head.unwrap()
    }

    fn verifies(h: &[u8], p: Payload<'_>) -> bool {
        checksum_ok(SRC, DST, h, p)
    }

    #[test]
    fn chained_payload_in_up_to_two_pieces_is_read_where_it_lies() {
        let mut p = MempoolParams::new("tcp-node-test", 64);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = 4096;
        let pool = Mempool::new(&p).unwrap();
        let payload: Vec<u8> = (0..3001u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let pkt = packet(&payload);
        let (hl, th) = (IP_HDR, 32);
        let seg_len = pkt.len() - hl;
        let body = hl + th;
        // (cuts, pieces expected): header alone then one or two payload mbufs (odd lengths,
        // so the second piece's sum is byte-swapped), payload starting in the header's mbuf,
        // empty mbufs in between.
        let cases: [(&[usize], Option<[usize; 2]>); 7] = [
            (&[body], Some([3001, 0])),
            (&[body, body + 1001], Some([1001, 2000])),
            (&[body + 5], Some([5, 2996])),
            (&[body, body, body + 1501, body + 1501], Some([1501, 1500])),
            (&[body + 5, body + 10], None), // three pieces: gathered by the caller
            (&[body - 4], None),            // header split across mbufs
            (&[body, body + 1, body + 2], None),
        ];
        for (cuts, want) in cases {
            let m = chain(&pool, &pkt, cuts);
            let got = header_and_payload(&m, hl, seg_len);
            match (got, want) {
                (None, None) => {}
                (Some((h, parts)), Some(w)) => {
                    assert_eq!(h, &pkt[hl..body], "{cuts:?}");
                    assert_eq!([parts.0[0].len(), parts.0[1].len()], w, "{cuts:?}");
                    assert_eq!([parts.0[0], parts.0[1]].concat(), payload, "{cuts:?}");
                    assert!(verifies(h, parts), "{cuts:?}: checksum over the pieces");
                    let seg = TcpSegment::parse(h).unwrap();
                    assert_eq!(seg.payload_len(), 0);
                }
                (g, w) => panic!("{cuts:?}: got {:?}, want {w:?}", g.map(|(_, p)| p.len())),
            }
        }
        // A wrong total (bytes missing) is not taken in place either.
        let m = chain(&pool, &pkt, &[body]);
        assert!(header_and_payload(&m, hl, seg_len + 1).is_none());
        // Corrupting one byte of the second piece fails the checksum.
        let mut bad = pkt.clone();
        bad[body + 2000] ^= 0x01;
        let m = chain(&pool, &bad, &[body, body + 1001]);
        let (h, parts) = header_and_payload(&m, hl, seg_len).unwrap();
        assert!(!verifies(h, parts));
    }
}
