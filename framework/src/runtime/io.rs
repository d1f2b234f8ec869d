//! What a stage on an lcore can do with packets: send them to a port's transmit queue (at once,
//! or buffered until the end of the turn) or drop them, counted by reason.

use std::sync::Arc;

use crate::batch::Burst;
use crate::counter::Counter;
use crate::mem::Mbuf;
use crate::port::TxQueue;

/// Index of a drop reason registered with [`LcoreIo::drop_reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReason(usize);

impl DropReason {
    /// A stand-in until the stage registers its reasons in [`Stage::init`](super::Stage::init)
    /// (counts under `unhandled`).
    pub const fn placeholder() -> Self {
        DROP_UNHANDLED
    }
}

/// Drop reason for packets a transmit queue refused.
pub const DROP_TX_FULL: DropReason = DropReason(0);
/// Drop reason for packets sent to a port this lcore has no transmit queue on.
pub const DROP_NO_TX_QUEUE: DropReason = DropReason(1);
/// Drop reason for packets a stage left in its input burst.
pub const DROP_UNHANDLED: DropReason = DropReason(2);

/// Largest number of distinct drop reasons per lcore.
pub const MAX_DROP_REASONS: usize = 32;

/// Per-lcore drop counters by reason, readable from other threads.
#[derive(Debug)]
pub struct DropCounters {
    names: std::sync::Mutex<Vec<&'static str>>,
    counts: [Counter; MAX_DROP_REASONS],
}

impl DropCounters {
    fn new() -> Self {
        DropCounters {
            names: std::sync::Mutex::new(vec!["tx_full", "no_tx_queue", "unhandled"]),
            counts: std::array::from_fn(|_| Counter::default()),
        }
    }

    /// Every reason with its count (reasons with no drops included).
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, self.counts[i].get()))
            .collect()
    }
}

struct TxSlot {
    queue: Box<dyn TxQueue>,
    pending: Burst,
}

/// The transmit side and drop accounting of one lcore, handed to its stage on every call.
pub struct LcoreIo {
    tx: Vec<Option<TxSlot>>,
    tx_packets: u64,
    drops: Arc<DropCounters>,
    /// Copies of the first drop names, so registering does not lock on the data path.
    n_reasons: usize,
}

impl LcoreIo {
    /// An io context with one optional transmit queue per port id.
    pub fn new(tx: Vec<Option<Box<dyn TxQueue>>>) -> Self {
        LcoreIo {
            tx: tx
                .into_iter()
                .map(|q| {
                    q.map(|queue| TxSlot {
                        queue,
                        pending: Burst::new(),
                    })
                })
                .collect(),
            tx_packets: 0,
            drops: Arc::new(DropCounters::new()),
            n_reasons: 3,
        }
    }

    /// Registers (or finds) a drop reason; call at set-up, not per packet.
    ///
    /// # Panics
    /// If more than [`MAX_DROP_REASONS`] distinct reasons are registered (a set-up bug).
    pub fn drop_reason(&mut self, name: &'static str) -> DropReason {
        let mut names = self.drops.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| *n == name) {
            return DropReason(i);
        }
        assert!(names.len() < MAX_DROP_REASONS, "too many drop reasons");
        names.push(name);
        self.n_reasons = names.len();
        DropReason(names.len() - 1)
    }

    /// The shared drop counters (for stats readers).
    pub fn drop_counters(&self) -> Arc<DropCounters> {
        self.drops.clone()
    }

    /// Packets accepted by transmit queues so far.
    pub fn tx_packets(&self) -> u64 {
        self.tx_packets
    }

    /// True if this lcore can transmit on `port`.
    pub fn has_tx(&self, port: u16) -> bool {
        matches!(self.tx.get(port as usize), Some(Some(_)))
    }

    /// Drops one packet, counting it under `reason`.
    #[inline]
    pub fn drop_pkt(&mut self, reason: DropReason, m: Mbuf) {
        self.drops.counts[reason.0].add(1);
        drop(m);
    }

    /// Counts `n` drops under `reason` (for packets the caller frees itself).
    #[inline]
    pub fn count_drops(&mut self, reason: DropReason, n: u64) {
        self.drops.counts[reason.0].add(n);
    }

    /// Drops every packet of `pkts`, counting them under `reason`.
    #[inline]
    pub fn drop_burst(&mut self, reason: DropReason, pkts: &mut Burst) {
        self.drops.counts[reason.0].add(pkts.len() as u64);
        crate::mem::free_burst(pkts);
    }

    /// Transmits `pkts` on `port` now (after anything already buffered for that port). What the
    /// queue refuses is dropped and counted as `tx_full`. Leaves `pkts` empty.
    #[inline]
    pub fn send_burst(&mut self, port: u16, pkts: &mut Burst) {
        let Some(Some(slot)) = self.tx.get_mut(port as usize) else {
            self.drop_burst(DROP_NO_TX_QUEUE, pkts);
            return;
        };
        if !slot.pending.is_empty() {
            while !pkts.is_empty() {
                slot.pending.append_from(pkts);
                if slot.pending.is_full() {
                    Self::flush_slot(slot, &mut self.tx_packets, &self.drops);
                }
            }
            Self::flush_slot(slot, &mut self.tx_packets, &self.drops);
            return;
        }
        let n = slot.queue.tx_burst(pkts);
        self.tx_packets += n as u64;
        if !pkts.is_empty() {
            self.drops.counts[DROP_TX_FULL.0].add(pkts.len() as u64);
            crate::mem::free_burst(pkts);
        }
    }

    /// Transmits from the front of `pkts` on `port` now and returns how many the queue took;
    /// the rest stay in `pkts`, in order, for the caller to retry (a generator keeps them
    /// instead of dropping). Anything buffered for `port` goes first. Without a tx queue on
    /// `port` nothing is sent.
    #[inline]
    pub fn try_send_burst(&mut self, port: u16, pkts: &mut Burst) -> usize {
        let Some(Some(slot)) = self.tx.get_mut(port as usize) else {
            return 0;
        };
        Self::flush_slot(slot, &mut self.tx_packets, &self.drops);
        let n = slot.queue.tx_burst(pkts);
        self.tx_packets += n as u64;
        n
    }

    /// Queues one packet for `port`; buffered packets go out at the end of the turn, or as soon
    /// as a full burst has gathered.
    #[inline]
    pub fn enqueue(&mut self, port: u16, m: Mbuf) {
        let Some(Some(slot)) = self.tx.get_mut(port as usize) else {
            self.drop_pkt(DROP_NO_TX_QUEUE, m);
            return;
        };
        if let Err(m) = slot.pending.push(m) {
            Self::flush_slot(slot, &mut self.tx_packets, &self.drops);
            if let Err(m) = slot.pending.push(m) {
                // The flush emptied `pending`, so this cannot happen; count it if it does.
                self.drop_pkt(DROP_TX_FULL, m);
            }
        }
    }

    fn flush_slot(slot: &mut TxSlot, tx_packets: &mut u64, drops: &DropCounters) {
        if slot.pending.is_empty() {
            return;
        }
        let n = slot.queue.tx_burst(&mut slot.pending);
        *tx_packets += n as u64;
        if !slot.pending.is_empty() {
            drops.counts[DROP_TX_FULL.0].add(slot.pending.len() as u64);
            crate::mem::free_burst(&mut slot.pending);
        }
    }

    /// Sends everything buffered and lets drivers flush their own buffers (end of a turn).
    #[inline]
    pub fn flush(&mut self) {
        for slot in self.tx.iter_mut().flatten() {
            Self::flush_slot(slot, &mut self.tx_packets, &self.drops);
        }
    }

    /// Flushes driver-internal buffers too (on shutdown).
    pub fn flush_drivers(&mut self) {
        self.flush();
        for slot in self.tx.iter_mut().flatten() {
            slot.queue.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::port::ring::{RingPort, RingSide};
    use crate::port::{MacAddr, Port};

    fn setup(depth: usize) -> (LcoreIo, Mempool, RingPort) {
        let mut p = MempoolParams::new("io-test", 512);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        let mp = Mempool::new(&p).unwrap();
        let side = |n: &str, id| RingSide {
            name: n.into(),
            id,
            rx_queues: 1,
            tx_queues: 1,
            mac: MacAddr::local(1),
            mtu: 1500,
            tx_l4_checksum_offload: false,
        };
        let (mut a, b) = RingPort::pair(side("a", 0), side("b", 1), depth).unwrap();
        let io = LcoreIo::new(vec![Some(a.take_tx_queue(0).unwrap()), None]);
        (io, mp, b)
    }

    fn drop_count(io: &LcoreIo, reason: &str) -> u64 {
        io.drop_counters()
            .snapshot()
            .into_iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    }

    #[test]
    fn a_full_tx_queue_drops_and_counts_never_blocks() {
        let (mut io, mp, _peer) = setup(64);
        let mut b = Burst::new();
        assert!(mp.alloc_bulk(&mut b, 100));
        io.send_burst(0, &mut b);
        assert!(b.is_empty());
        assert_eq!(io.tx_packets(), 64);
        assert_eq!(drop_count(&io, "tx_full"), 36);
        // Buffered path: the ring is still full, so all buffered packets are refused at flush.
        for _ in 0..10 {
            io.enqueue(0, mp.alloc().unwrap());
        }
        io.flush();
        assert_eq!(drop_count(&io, "tx_full"), 46);
        // Every refused packet went back to the pool; only the 64 in the ring are out.
        assert_eq!(mp.in_use(), 64);
    }

    #[test]
    fn packets_for_a_port_without_a_queue_are_counted() {
        let (mut io, mp, _peer) = setup(64);
        let mut b = Burst::new();
        assert!(mp.alloc_bulk(&mut b, 3));
        io.send_burst(1, &mut b);
        io.enqueue(7, mp.alloc().unwrap());
        assert_eq!(drop_count(&io, "no_tx_queue"), 4);
        assert_eq!(mp.in_use(), 0);
        assert!(io.has_tx(0) && !io.has_tx(1));
    }
}
