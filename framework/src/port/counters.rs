//! Per-queue counters: one writer (the owning lcore), any number of readers (stats, metrics).

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::PortStats;
pub use crate::counter::Counter;

/// The counters of one queue. On an rx queue `missed` and `nombuf` apply; on a tx queue
/// `errors` counts packets the device refused.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Packets moved.
    pub packets: Counter,
    /// Bytes moved (frame bytes, without FCS).
    pub bytes: Counter,
    /// Erroneous packets (rx) or refused packets (tx).
    pub errors: Counter,
    /// Packets lost before reaching the queue for lack of room.
    pub missed: Counter,
    /// Packets not received because the mempool was empty.
    pub nombuf: Counter,
}

/// A snapshot of one queue's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Packets moved.
    pub packets: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Erroneous (rx) or refused (tx) packets.
    pub errors: u64,
    /// Packets lost for lack of room.
    pub missed: u64,
    /// Receive attempts that found the pool empty.
    pub nombuf: u64,
}

impl QueueCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> QueueStats {
        QueueStats {
            packets: self.packets.get(),
            bytes: self.bytes.get(),
            errors: self.errors.get(),
            missed: self.missed.get(),
            nombuf: self.nombuf.get(),
        }
    }
}

/// All queue counters of a port. Queues hold an `Arc` to their own entry.
#[derive(Debug, Clone)]
pub struct PortCounters {
    rx: Arc<[CachePadded<QueueCounters>]>,
    tx: Arc<[CachePadded<QueueCounters>]>,
}

/// A handle to one queue's counters, held by the queue object.
#[derive(Debug, Clone)]
pub struct QueueCounterRef {
    all: Arc<[CachePadded<QueueCounters>]>,
    index: usize,
}

impl std::ops::Deref for QueueCounterRef {
    type Target = QueueCounters;
    #[inline]
    fn deref(&self) -> &QueueCounters {
        &self.all[self.index]
    }
}

impl PortCounters {
    /// Counters for a port with the given queue counts.
    pub fn new(rx_queues: u16, tx_queues: u16) -> Self {
        let mk = |n: u16| -> Arc<[CachePadded<QueueCounters>]> {
            (0..n)
                .map(|_| CachePadded::new(QueueCounters::default()))
                .collect()
        };
        PortCounters {
            rx: mk(rx_queues),
            tx: mk(tx_queues),
        }
    }

    /// The counters of rx queue `q` (for the queue object to keep).
    pub fn rx(&self, q: u16) -> QueueCounterRef {
        assert!((q as usize) < self.rx.len(), "rx queue {q} out of range");
        QueueCounterRef {
            all: self.rx.clone(),
            index: q as usize,
        }
    }

    /// The counters of tx queue `q` (for the queue object to keep).
    pub fn tx(&self, q: u16) -> QueueCounterRef {
        assert!((q as usize) < self.tx.len(), "tx queue {q} out of range");
        QueueCounterRef {
            all: self.tx.clone(),
            index: q as usize,
        }
    }

    /// Sums every queue into `rte_eth_stats`-like totals.
    pub fn stats(&self) -> PortStats {
        let rx: Vec<QueueStats> = self.rx.iter().map(|c| c.snapshot()).collect();
        let tx: Vec<QueueStats> = self.tx.iter().map(|c| c.snapshot()).collect();
        PortStats {
            ipackets: rx.iter().map(|q| q.packets).sum(),
            ibytes: rx.iter().map(|q| q.bytes).sum(),
            imissed: rx.iter().map(|q| q.missed).sum(),
            ierrors: rx.iter().map(|q| q.errors).sum(),
            rx_nombuf: rx.iter().map(|q| q.nombuf).sum(),
            opackets: tx.iter().map(|q| q.packets).sum(),
            obytes: tx.iter().map(|q| q.bytes).sum(),
            oerrors: tx.iter().map(|q| q.errors).sum(),
            rx_queues: rx,
            tx_queues: tx,
        }
    }
}
