//! The `null` port, like DPDK's `net_null`: receive makes packets out of thin air, transmit frees.
//!
//! Receive allocates a full burst of mbufs from the port's pool and gives each the configured
//! length. Without a template the bytes are whatever the buffer held (no copy, as `net_null`
//! does by default); with a template, its bytes are copied into the front of every frame. It
//! measures the cost of the framework itself: pool, burst handling, stage and loop.

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, QueueSlots, RxQueue, TxQueue,
};
use crate::batch::Burst;
use crate::mem::{free_burst, Mempool};
use crate::port::counters::QueueCounterRef;

/// Settings of a null port.
#[derive(Debug, Clone)]
pub struct NullConfig {
    /// Port name.
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// Pool that received packets come from.
    pub pool: Mempool,
    /// Frame length of every received packet.
    pub size: u16,
    /// Bytes copied into the start of every received frame, if any.
    pub template: Option<Vec<u8>>,
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// MAC address.
    pub mac: MacAddr,
    /// MTU.
    pub mtu: u16,
}

/// A null port.
pub struct NullPort {
    info: PortInfo,
    counters: PortCounters,
    rx: QueueSlots<NullRx>,
    tx: QueueSlots<NullTx>,
}

impl NullPort {
    /// Creates the port. Fails if the frame size or template does not fit the pool's buffers.
    pub fn new(cfg: NullConfig) -> Result<NullPort, PortError> {
        let room = cfg.pool.data_room();
        if cfg.size == 0 || cfg.size > room {
            return Err(PortError::Driver {
                port: cfg.name.clone(),
                message: format!(
                    "size {} does not fit: it must be 1..={} (data_room of pool {})",
                    cfg.size,
                    room,
                    cfg.pool.name()
                ),
            });
        }
        if let Some(t) = &cfg.template {
            if t.len() > cfg.size as usize {
                return Err(PortError::Driver {
                    port: cfg.name.clone(),
                    message: format!(
                        "template is {} bytes, longer than the frame size {}",
                        t.len(),
                        cfg.size
                    ),
                });
            }
        }
        let counters = PortCounters::new(cfg.rx_queues, cfg.tx_queues);
        let rx = (0..cfg.rx_queues)
            .map(|q| NullRx {
                pool: cfg.pool.clone(),
                size: cfg.size,
                template: cfg.template.clone().map(Vec::into_boxed_slice),
                port: cfg.id,
                counters: counters.rx(q),
            })
            .collect();
        let tx = (0..cfg.tx_queues)
            .map(|q| NullTx {
                counters: counters.tx(q),
            })
            .collect();
        Ok(NullPort {
            info: PortInfo {
                name: cfg.name.clone(),
                id: cfg.id,
                driver: "null",
                mac: cfg.mac,
                mtu: cfg.mtu,
                rx_queues: cfg.rx_queues,
                tx_queues: cfg.tx_queues,
                tx_l4_checksum_offload: false,
            },
            counters,
            rx: QueueSlots::new(&cfg.name, "rx", rx),
            tx: QueueSlots::new(&cfg.name, "tx", tx),
        })
    }
}

impl Port for NullPort {
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

struct NullRx {
    pool: Mempool,
    size: u16,
    template: Option<Box<[u8]>>,
    port: u16,
    counters: QueueCounterRef,
}

impl RxQueue for NullRx {
    #[inline]
    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let n = max.min(out.remaining());
        if n == 0 {
            return 0;
        }
        let start = out.len();
        if !self.pool.alloc_bulk(out, n) {
            self.counters.nombuf.add(n as u64);
            return 0;
        }
        let size = self.size as usize;
        for m in &mut out.as_mut_slice()[start..] {
            // Cannot fail: the size was checked against the pool's data room at creation.
            m.set_len(size);
            m.set_port(self.port);
            if let Some(t) = &self.template {
                m.data_mut()[..t.len()].copy_from_slice(t);
            }
        }
        self.counters.packets.add(n as u64);
        self.counters.bytes.add((n * size) as u64);
        n
    }
}

struct NullTx {
    counters: QueueCounterRef,
}

impl TxQueue for NullTx {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        let bytes = free_burst(pkts);
        self.counters.packets.add(n as u64);
        self.counters.bytes.add(bytes);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};

    fn pool(n: u32) -> Mempool {
        let mut p = MempoolParams::new("null-test", n);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    fn port(pool: &Mempool, template: Option<Vec<u8>>) -> NullPort {
        NullPort::new(NullConfig {
            name: "n0".into(),
            id: 7,
            pool: pool.clone(),
            size: 60,
            template,
            rx_queues: 2,
            tx_queues: 1,
            mac: MacAddr::local(1),
            mtu: 1500,
        })
        .unwrap()
    }

    #[test]
    fn rx_makes_frames_tx_frees_them() {
        let mp = pool(64);
        let mut p = port(&mp, Some(vec![0xaa, 0xbb]));
        let mut rx = p.take_rx_queue(1).unwrap();
        let mut tx = p.take_tx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 32);
        assert!(b
            .iter()
            .all(|m| m.data_len() == 60 && m.port() == 7 && m.data()[..2] == [0xaa, 0xbb]));
        assert_eq!(mp.in_use(), 32);
        assert_eq!(tx.tx_burst(&mut b), 32);
        assert!(b.is_empty());
        assert_eq!(mp.in_use(), 0);
        let s = p.stats();
        assert_eq!(
            (s.ipackets, s.ibytes, s.opackets, s.obytes),
            (32, 1920, 32, 1920)
        );
        assert_eq!(s.rx_queues[1].packets, 32);
        assert_eq!(s.rx_queues[0].packets, 0);
    }

    #[test]
    fn empty_pool_counts_nombuf() {
        let mp = pool(16);
        let mut p = port(&mp, None);
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 16), 16);
        assert_eq!(rx.rx_burst(&mut b, 8), 0);
        assert_eq!(p.stats().rx_nombuf, 8);
    }

    #[test]
    fn queues_are_taken_once_and_checked() {
        let mp = pool(16);
        let mut p = port(&mp, None);
        assert!(p.take_rx_queue(0).is_ok());
        assert!(matches!(
            p.take_rx_queue(0),
            Err(PortError::QueueTaken { .. })
        ));
        assert!(matches!(
            p.take_tx_queue(3),
            Err(PortError::NoSuchQueue { count: 1, .. })
        ));
    }

    #[test]
    fn rejects_oversized_frames_and_templates() {
        let mp = pool(16);
        let mk = |size, template| {
            NullPort::new(NullConfig {
                name: "bad".into(),
                id: 0,
                pool: mp.clone(),
                size,
                template,
                rx_queues: 1,
                tx_queues: 1,
                mac: MacAddr::local(1),
                mtu: 1500,
            })
        };
        assert!(mk(4000, None).is_err());
        assert!(mk(10, Some(vec![0; 11])).is_err());
        assert!(mk(10, Some(vec![0; 10])).is_ok());
    }
}
