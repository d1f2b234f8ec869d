//! The `ring` port, like DPDK's `net_ring`: two ports joined in-process by SPSC rings.
//!
//! Transmit queue `q` of one port feeds receive queue `q` of its peer through a ring of mbuf
//! handles, so packets cross without a copy. A port can also be its own peer (loopback). It
//! exists for tests and for chaining pipelines running on different lcores.
//!
//! A side built with [`RingSide::tx_l4_checksum_offload`] accepts partial TCP/UDP checksums on
//! transmit, as Linux veth and loopback accept `CHECKSUM_PARTIAL`: the bytes never leave the
//! process, so the checksum is never completed; the receiving side gets the packet flagged
//! [`ol::RX_L4_CKSUM_GOOD`] instead of [`ol::TX_L4_CKSUM`] (the checksum field keeps the
//! pseudo-header sum, which is what a capture shows, as `tcpdump` on veth shows). Transmit
//! requests never reach a receiver: the other `TX_*` flags are cleared on receive, and so are
//! checksum verdicts left from an earlier receive of the same mbuf (a forwarded or echoed
//! packet): the receiver sees only this port's own verdict.

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, QueueSlots, RxQueue, TxQueue,
};
use crate::batch::Burst;
use crate::mem::{ol, Mbuf};
use crate::port::counters::QueueCounterRef;
use crate::ring::{spsc, Consumer, Producer};

/// Settings of one side of a ring pair.
#[derive(Debug, Clone)]
pub struct RingSide {
    /// Port name.
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// Receive queues (must equal the peer's transmit queues).
    pub rx_queues: u16,
    /// Transmit queues (must equal the peer's receive queues).
    pub tx_queues: u16,
    /// MAC address.
    pub mac: MacAddr,
    /// MTU.
    pub mtu: u16,
    /// Accept partial L4 checksums on transmit (see the module doc and
    /// [`PortInfo::tx_l4_checksum_offload`]); false for a port that must carry complete ones.
    pub tx_l4_checksum_offload: bool,
}

#[cfg(test)]
impl RingSide {
    /// A test side: `queues` each way, MAC `02:…:id+1`, MTU 1500.
    pub(crate) fn for_test(name: &str, id: u16, queues: u16, offload: bool) -> Self {
        RingSide {
            name: name.into(),
            id,
            rx_queues: queues,
            tx_queues: queues,
            mac: MacAddr::local(id as u8 + 1),
            mtu: 1500,
            tx_l4_checksum_offload: offload,
        }
    }
}

/// One port of a ring pair.
pub struct RingPort {
    info: PortInfo,
    counters: PortCounters,
    rx: QueueSlots<RingRx>,
    tx: QueueSlots<RingTx>,
}

fn driver_err(port: &str, message: String) -> PortError {
    PortError::Driver {
        port: port.to_string(),
        message,
    }
}

impl RingPort {
    /// Creates two ports joined to each other; each ring holds `depth` packets.
    pub fn pair(a: RingSide, b: RingSide, depth: usize) -> Result<(RingPort, RingPort), PortError> {
        if a.tx_queues != b.rx_queues || b.tx_queues != a.rx_queues {
            return Err(driver_err(
                &a.name,
                format!(
                    "queue counts do not match its peer {}: tx_queues must equal the peer's \
                     rx_queues and the other way round",
                    b.name
                ),
            ));
        }
        let (a_to_b_tx, a_to_b_rx) = rings(&a.name, a.tx_queues, depth)?;
        let (b_to_a_tx, b_to_a_rx) = rings(&b.name, b.tx_queues, depth)?;
        let (a_offload, b_offload) = (a.tx_l4_checksum_offload, b.tx_l4_checksum_offload);
        Ok((
            RingPort::build(a, a_to_b_tx, b_to_a_rx, b_offload),
            RingPort::build(b, b_to_a_tx, a_to_b_rx, a_offload),
        ))
    }

    /// Creates a port whose transmit queue `q` loops back to its own receive queue `q`.
    pub fn loopback(side: RingSide, depth: usize) -> Result<RingPort, PortError> {
        if side.tx_queues != side.rx_queues {
            return Err(driver_err(
                &side.name,
                "a loopback ring port needs as many tx_queues as rx_queues".into(),
            ));
        }
        let (tx, rx) = rings(&side.name, side.tx_queues, depth)?;
        let offload = side.tx_l4_checksum_offload;
        Ok(RingPort::build(side, tx, rx, offload))
    }

    /// A port of `side` sending on `tx` and receiving from `rx`, whose sender accepts partial
    /// checksums when `peer_offload`.
    fn build(
        side: RingSide,
        tx: Vec<Producer<Mbuf>>,
        rx: Vec<Consumer<Mbuf>>,
        peer_offload: bool,
    ) -> RingPort {
        let counters = PortCounters::new(side.rx_queues, side.tx_queues);
        let rx = rx
            .into_iter()
            .enumerate()
            .map(|(q, ring)| RingRx {
                ring,
                port: side.id,
                peer_offload,
                counters: counters.rx(q as u16),
            })
            .collect();
        let tx = tx
            .into_iter()
            .enumerate()
            .map(|(q, ring)| RingTx {
                ring,
                counters: counters.tx(q as u16),
            })
            .collect();
        RingPort {
            rx: QueueSlots::new(&side.name, "rx", rx),
            tx: QueueSlots::new(&side.name, "tx", tx),
            info: PortInfo {
                name: side.name,
                id: side.id,
                driver: "ring",
                mac: side.mac,
                mtu: side.mtu,
                rx_queues: side.rx_queues,
                tx_queues: side.tx_queues,
                tx_l4_checksum_offload: side.tx_l4_checksum_offload,
            },
            counters,
        }
    }
}

type Rings = (Vec<Producer<Mbuf>>, Vec<Consumer<Mbuf>>);

fn rings(port: &str, n: u16, depth: usize) -> Result<Rings, PortError> {
    let mut p = Vec::new();
    let mut c = Vec::new();
    for _ in 0..n {
        let (tx, rx) = spsc(depth).map_err(|e| driver_err(port, e.to_string()))?;
        p.push(tx);
        c.push(rx);
    }
    Ok((p, c))
}

impl Port for RingPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkStatus {
        LinkStatus::up(100_000)
    }

    fn counters(&self) -> &PortCounters {
        &self.counters
    }

    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError> {
        Ok(Box::new(self.rx.take(q)?))
    }

    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(self.tx.take(q)?))
    }
}

struct RingRx {
    ring: Consumer<Mbuf>,
    port: u16,
    /// The sending side accepts partial L4 checksums: `TX_L4_CKSUM` becomes
    /// `RX_L4_CKSUM_GOOD`.
    peer_offload: bool,
    counters: QueueCounterRef,
}

/// Transmit requests and checksum verdicts, cleared from what a ring delivers (its own verdict
/// is set again).
const STALE_FLAGS: u64 = ol::TX_L4_CKSUM
    | ol::TX_IP_CKSUM
    | ol::TX_VLAN
    | ol::RX_L4_CKSUM_GOOD
    | ol::RX_L4_CKSUM_BAD
    | ol::RX_IP_CKSUM_GOOD
    | ol::RX_IP_CKSUM_BAD;

/// The receive flags of a packet sent with `flags` through a side that does (`offload`) or
/// does not accept partial L4 checksums: transmit requests and earlier verdicts cleared; a
/// partial checksum vouched for when the sender accepted it (a sender that did not has passed
/// it on as it was, so the receiver verifies it and finds it wrong, as on a real wire).
#[inline]
fn rx_flags(flags: u64, offload: bool) -> u64 {
    let good = if offload && flags & ol::TX_L4_CKSUM != 0 {
        ol::RX_L4_CKSUM_GOOD
    } else {
        0
    };
    (flags & !STALE_FLAGS) | good
}

impl RxQueue for RingRx {
    #[inline]
    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let start = out.len();
        let n = self.ring.dequeue_burst(out, max);
        if n == 0 {
            return 0;
        }
        let mut bytes = 0;
        for m in &mut out.as_mut_slice()[start..] {
            m.set_port(self.port);
            let flags = m.ol_flags();
            if flags & STALE_FLAGS != 0 {
                m.set_ol_flags(rx_flags(flags, self.peer_offload));
            }
            bytes += m.pkt_len();
        }
        self.counters.packets.add(n as u64);
        self.counters.bytes.add(bytes as u64);
        n
    }
}

struct RingTx {
    ring: Producer<Mbuf>,
    counters: QueueCounterRef,
}

impl TxQueue for RingTx {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let want = pkts.len();
        let fits = self.ring.free_count().min(want);
        let bytes: usize = pkts.as_slice()[..fits].iter().map(|m| m.pkt_len()).sum();
        let n = self.ring.enqueue_burst(pkts);
        debug_assert_eq!(n, fits);
        self.counters.packets.add(n as u64);
        self.counters.bytes.add(bytes as u64);
        self.counters.errors.add((want - n) as u64);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};

    fn side(name: &str, id: u16, q: u16) -> RingSide {
        RingSide::for_test(name, id, q, false)
    }

    fn pool() -> Mempool {
        let mut p = MempoolParams::new("ring-test", 256);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    #[test]
    fn pair_carries_packets_both_ways() {
        let mp = pool();
        let (mut a, mut b) = RingPort::pair(side("a", 0, 2), side("b", 1, 2), 64).unwrap();
        let mut a_tx1 = a.take_tx_queue(1).unwrap();
        let mut b_rx1 = b.take_rx_queue(1).unwrap();
        let mut b_rx0 = b.take_rx_queue(0).unwrap();
        let mut burst = Burst::new();
        assert!(mp.alloc_bulk(&mut burst, 3));
        for (i, m) in burst.iter_mut().enumerate() {
            m.append(10 + i).unwrap().fill(i as u8);
        }
        assert_eq!(a_tx1.tx_burst(&mut burst), 3);
        assert_eq!(b_rx0.rx_burst(&mut burst, 32), 0);
        assert_eq!(b_rx1.rx_burst(&mut burst, 32), 3);
        let lens: Vec<usize> = burst.iter().map(|m| m.pkt_len()).collect();
        assert_eq!(lens, [10, 11, 12]);
        assert!(burst.iter().all(|m| m.port() == 1));
        assert_eq!(a.stats().opackets, 3);
        assert_eq!(a.stats().obytes, 33);
        assert_eq!(b.stats().ipackets, 3);
    }

    #[test]
    fn full_ring_leaves_packets_with_caller() {
        let mp = pool();
        let mut p = RingPort::loopback(side("lo", 0, 1), 64).unwrap();
        let mut tx = p.take_tx_queue(0).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut burst = Burst::new();
        assert!(mp.alloc_bulk(&mut burst, 100));
        assert_eq!(tx.tx_burst(&mut burst), 64);
        assert_eq!(burst.len(), 36);
        assert_eq!(p.stats().oerrors, 36);
        burst.clear();
        assert_eq!(mp.in_use(), 64);
        assert_eq!(rx.rx_burst(&mut burst, 256), 64);
        burst.clear();
        drop(tx);
        drop(rx);
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn dropping_ports_frees_queued_packets() {
        let mp = pool();
        {
            let (mut a, _b) = RingPort::pair(side("a", 0, 1), side("b", 1, 1), 64).unwrap();
            let mut tx = a.take_tx_queue(0).unwrap();
            let mut burst = Burst::new();
            assert!(mp.alloc_bulk(&mut burst, 10));
            assert_eq!(tx.tx_burst(&mut burst), 10);
            assert_eq!(mp.in_use(), 10);
        }
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn partial_checksums_are_vouched_for_only_from_a_side_that_accepts_them() {
        let mp = pool();
        let mut a = side("a", 0, 1);
        a.tx_l4_checksum_offload = true;
        let (mut a, mut b) = RingPort::pair(a, side("b", 1, 1), 64).unwrap();
        assert!(a.info().tx_l4_checksum_offload);
        assert!(!b.info().tx_l4_checksum_offload);
        let (mut a_tx, mut a_rx) = (a.take_tx_queue(0).unwrap(), a.take_rx_queue(0).unwrap());
        let (mut b_tx, mut b_rx) = (b.take_tx_queue(0).unwrap(), b.take_rx_queue(0).unwrap());
        let send = |tx: &mut Box<dyn TxQueue>, flags: u64| {
            let mut burst = Burst::new();
            let mut m = mp.alloc().unwrap();
            m.append(60).unwrap().fill(7);
            m.set_ol_flags(flags);
            burst.push(m).unwrap();
            assert_eq!(tx.tx_burst(&mut burst), 1);
        };
        let recv = |rx: &mut Box<dyn RxQueue>| {
            let mut burst = Burst::new();
            assert_eq!(rx.rx_burst(&mut burst, 32), 1);
            burst.as_slice()[0].ol_flags()
        };
        // a accepts partial checksums: b sees them as good, and no transmit request.
        send(
            &mut a_tx,
            ol::TX_L4_CKSUM | ol::TX_IP_CKSUM | ol::RX_RSS_HASH,
        );
        assert_eq!(recv(&mut b_rx), ol::RX_L4_CKSUM_GOOD | ol::RX_RSS_HASH);
        send(&mut a_tx, 0);
        assert_eq!(recv(&mut b_rx), 0);
        // A verdict from an earlier receive (a forwarded mbuf) is not the ring's to give.
        send(&mut a_tx, ol::RX_L4_CKSUM_GOOD | ol::RX_IP_CKSUM_GOOD);
        assert_eq!(recv(&mut b_rx), 0);
        // b does not: a gets the bytes as they were, unvouched for.
        send(&mut b_tx, ol::TX_L4_CKSUM | ol::TX_VLAN);
        assert_eq!(recv(&mut a_rx), 0);
        // A loopback side that accepts them vouches to itself.
        let mut lo = side("lo", 2, 1);
        lo.tx_l4_checksum_offload = true;
        let mut lo = RingPort::loopback(lo, 64).unwrap();
        let (mut lo_tx, mut lo_rx) = (lo.take_tx_queue(0).unwrap(), lo.take_rx_queue(0).unwrap());
        send(&mut lo_tx, ol::TX_L4_CKSUM);
        assert_eq!(recv(&mut lo_rx), ol::RX_L4_CKSUM_GOOD);
    }

    #[test]
    fn mismatched_queue_counts_rejected() {
        let mut b = side("b", 1, 1);
        b.rx_queues = 2;
        assert!(RingPort::pair(side("a", 0, 1), b, 64).is_err());
        assert!(RingPort::pair(side("a", 0, 1), side("b", 1, 1), 100).is_err());
    }
}
