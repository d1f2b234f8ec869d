//! `ipv4-output`, `ipv4-rewrite` and `tx` (Linux: `ip_output` / `ip_fragment`,
//! `neigh_output` / `neigh_resolve_output`, `dev_queue_xmit`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::ipv4_route::set_icmp_error;
use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::ol;
use crate::port::MacAddr;
use crate::stack::frag::{fragment, fragment_count};
use crate::stack::offload::{complete_l4_checksum, complete_l4_checksum_frame};
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
            // Fragments cannot carry a partial checksum: the port would see pieces of the
            // bytes it covers. Complete it first (Linux does the same in ip_do_fragment).
            if m.ol_flags() & ol::TX_L4_CKSUM != 0 && !complete_l4_checksum(&mut m, 0) {
                ctx.drop(self.frag_failed, m);
                return;
            }
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
///
/// A packet with a partial L4 checksum ([`ol::TX_L4_CKSUM`]) bound for a port that does not
/// accept them gets its checksum completed in software first (Linux: `skb_checksum_help`),
/// counted as `l4_checksum_completed`; one that cannot be completed (not IPv4 TCP/UDP, or
/// truncated) is dropped as `l4_checksum_failed`.
pub struct Tx {
    env: Arc<StackEnv>,
    completed: DropId,
    failed: DropId,
}

impl Tx {
    /// A node using the offload capabilities of `env`'s interfaces.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        Tx {
            env: env.clone(),
            completed: DropId::placeholder(),
            failed: DropId::placeholder(),
        }
    }
}

impl Node for Tx {
    fn next_nodes(&self) -> Vec<String> {
        Vec::new()
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.completed = ctx.drop_reason("l4_checksum_completed");
        self.failed = ctx.drop_reason("l4_checksum_failed");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        let mut completed = 0;
        pkts.drain_front(n, |mut m| {
            let port = meta(&m).tx_port;
            if m.ol_flags() & ol::TX_L4_CKSUM != 0 && !self.env.tx_l4_checksum_offload(port) {
                if !complete_l4_checksum_frame(&mut m) {
                    crate::trace_pkt!(ctx, &m, "partial checksum not completed → drop");
                    ctx.drop(self.failed, m);
                    return;
                }
                completed += 1;
            }
            crate::trace_pkt!(ctx, &m, "queued on port {port}");
            ctx.io().enqueue(port, m);
        });
        if completed != 0 {
            ctx.count(self.completed, completed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, TraceControl};
    use crate::mem::{HugePolicy, Mbuf, Mempool, MempoolParams};
    use crate::port::ring::{RingPort, RingSide};
    use crate::port::Port;
    use crate::runtime::LcoreIo;
    use crate::stack::{Fib, Interface, NeighTable, StackParams};
    use crate::wire::{checksum, ip_protocol};

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn ifc(port: u16, offload: bool) -> Interface {
        Interface::for_test(port, Ipv4Addr::new(198, 18, port as u8, 1), 24, offload)
    }

    fn ring_side(name: &str, id: u16, offload: bool) -> RingSide {
        RingSide::for_test(name, id, 1, offload)
    }

    /// An Ethernet frame carrying an IPv4 TCP segment with `len` payload bytes and a partial
    /// checksum (the pseudo-header sum), flagged `TX_L4_CKSUM`, bound for `port`.
    fn partial_frame(pool: &Mempool, port: u16, len: usize) -> Mbuf {
        let tcp_len = 20 + len;
        let mut m = pool.alloc().unwrap();
        let b = m.append(14 + 20 + tcp_len).unwrap();
        b.fill(0);
        b[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut b[14..34]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len((20 + tcp_len) as u16);
        ip.set_ttl(64);
        ip.set_protocol(ip_protocol::TCP);
        ip.set_src_addr(SRC);
        ip.set_dst_addr(DST);
        ip.fill_checksum();
        let tcp = &mut b[34..];
        tcp[0..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        for (i, x) in tcp[20..].iter_mut().enumerate() {
            *x = (i * 13 + 5) as u8;
        }
        let ph = checksum::pseudo_header_v4(SRC, DST, ip_protocol::TCP, tcp_len as u16);
        tcp[16..18].copy_from_slice(&(ph as u16).to_be_bytes());
        m.set_ol_flags(ol::TX_L4_CKSUM);
        meta_mut(&mut m).tx_port = port;
        m
    }

    fn tcp_checksum_verifies(frame: &[u8]) -> bool {
        let tcp = &frame[34..];
        let ph = checksum::pseudo_header_v4(SRC, DST, ip_protocol::TCP, tcp.len() as u16);
        checksum::verify_sum(checksum::combine(ph, checksum::sum(tcp)))
    }

    #[test]
    fn tx_completes_partial_checksums_only_for_ports_without_offload() {
        let mut p = MempoolParams::new("tx-test", 64);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        let pool = Mempool::new(&p).unwrap();
        let fib = Fib::new(vec![ifc(0, false), ifc(1, true)], &[]).unwrap();
        let env = StackEnv::new(
            fib,
            NeighTable::new(16, 1_000_000_000),
            vec![pool.clone(), pool.clone()],
            StackParams::default(),
        );
        // Port 0 carries full checksums only; port 1 takes partial ones (like its ring side).
        let (mut p0, mut peer0) =
            RingPort::pair(ring_side("p0", 0, false), ring_side("h0", 2, false), 64).unwrap();
        let (mut p1, mut peer1) =
            RingPort::pair(ring_side("p1", 1, true), ring_side("h1", 3, false), 64).unwrap();
        let mut io = LcoreIo::new(vec![
            Some(p0.take_tx_queue(0).unwrap()),
            Some(p1.take_tx_queue(0).unwrap()),
        ]);
        let mut b = GraphBuilder::new();
        b.add(names::TX, Box::new(Tx::new(&env)));
        let mut graph = b.build(1, names::TX, TraceControl::new()).unwrap();
        let mut burst = Burst::new();
        for len in [0, 1, 1000, 1001] {
            burst.push(partial_frame(&pool, 0, len)).unwrap();
            burst.push(partial_frame(&pool, 1, len)).unwrap();
        }
        let id = graph.node_id(names::TX).unwrap();
        graph.dispatch(id, &mut burst, &mut io);
        io.flush();

        let mut rx0 = peer0.take_rx_queue(0).unwrap();
        let mut got = Burst::new();
        assert_eq!(rx0.rx_burst(&mut got, 32), 4);
        for m in got.iter() {
            assert!(tcp_checksum_verifies(m.data()), "completed in software");
            assert_eq!(m.ol_flags(), 0, "no offload flag left, none vouched for");
        }
        got.clear();
        let mut rx1 = peer1.take_rx_queue(0).unwrap();
        assert_eq!(rx1.rx_burst(&mut got, 32), 4);
        for m in got.iter() {
            assert!(
                !tcp_checksum_verifies(m.data()),
                "left partial for the port"
            );
            assert_eq!(m.ol_flags(), ol::RX_L4_CKSUM_GOOD);
        }
        got.clear();
        let stats = graph.monitor().stats();
        let tx = stats.iter().find(|s| s.node == names::TX).unwrap();
        let count = |r: &str| tx.drops.iter().find(|d| d.0 == r).map_or(0, |d| d.1);
        assert_eq!(count("l4_checksum_completed"), 4);
        assert_eq!(count("l4_checksum_failed"), 0);
        drop(io);
        assert_eq!(pool.in_use(), 0);
    }
}
