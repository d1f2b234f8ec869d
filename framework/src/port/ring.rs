//! The `ring` port, like DPDK's `net_ring`: two ports joined in-process by SPSC rings.
//!
//! Transmit queue `q` of one port feeds receive queue `q` of its peer through a ring of mbuf
//! handles, so packets cross without a copy. A port can also be its own peer (loopback). It
//! exists for tests and for chaining pipelines running on different lcores.

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, QueueSlots, RxQueue, TxQueue,
};
use crate::batch::Burst;
use crate::mem::Mbuf;
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
        Ok((
            RingPort::build(a, a_to_b_tx, b_to_a_rx),
            RingPort::build(b, b_to_a_tx, a_to_b_rx),
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
        Ok(RingPort::build(side, tx, rx))
    }

    fn build(side: RingSide, tx: Vec<Producer<Mbuf>>, rx: Vec<Consumer<Mbuf>>) -> RingPort {
        let counters = PortCounters::new(side.rx_queues, side.tx_queues);
        let rx = rx
            .into_iter()
            .enumerate()
            .map(|(q, ring)| RingRx {
                ring,
                port: side.id,
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
    counters: QueueCounterRef,
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
        RingSide {
            name: name.into(),
            id,
            rx_queues: q,
            tx_queues: q,
            mac: MacAddr::local(id as u8 + 1),
            mtu: 1500,
        }
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
    fn mismatched_queue_counts_rejected() {
        let mut b = side("b", 1, 1);
        b.rx_queues = 2;
        assert!(RingPort::pair(side("a", 0, 1), b, 64).is_err());
        assert!(RingPort::pair(side("a", 0, 1), side("b", 1, 1), 100).is_err());
    }
}
