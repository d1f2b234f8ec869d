//! Ports: the drivers that move frames between queues and mbufs.
//!
//! A [`Port`] is the control side of a device (name, MAC, MTU, link, statistics). Its queues are
//! separate objects, [`RxQueue`] and [`TxQueue`], taken from the port once and moved to the lcore
//! that polls them. This is DPDK's rule — a queue is used by one core at a time — made safe:
//! the type system, not a comment, keeps two cores off one queue, and a queue call needs no lock.
//!
//! Statistics follow `rte_eth_stats`. Every queue counts into its own cache-line-padded
//! [`QueueCounters`] (single writer, plain loads and stores); [`Port::stats`] sums them on demand.

pub mod af_packet;
pub mod af_xdp;
mod counters;
pub mod impair;
pub mod null;
pub mod pcap;
pub mod ring;
pub mod tap;

use std::fmt;

pub use counters::{PortCounters, QueueCounters, QueueStats};

use crate::batch::Burst;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// A locally administered unicast address `02:00:00:00:00:nn`.
    pub fn local(n: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, n])
    }

    /// True for group (multicast or broadcast) addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Static facts about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Name from the config (used in metrics labels).
    pub name: String,
    /// Index of the port in the config; written into `Mbuf::port` on receive.
    pub id: u16,
    /// Driver name (`null`, `ring`, `pcap`, …).
    pub driver: &'static str,
    /// MAC address.
    pub mac: MacAddr,
    /// MTU in bytes (L3 payload of a frame).
    pub mtu: u16,
    /// Number of receive queues.
    pub rx_queues: u16,
    /// Number of transmit queues.
    pub tx_queues: u16,
    /// The port accepts packets whose TCP/UDP checksum is only partial on transmit: an mbuf
    /// flagged [`ol::TX_L4_CKSUM`](crate::mem::ol::TX_L4_CKSUM) whose checksum field holds the
    /// pseudo-header sum (DPDK's convention, Linux's `CHECKSUM_PARTIAL`). The port completes
    /// it, or, like `ring` and Linux veth, hands it to a receiver that knows the bytes were
    /// never corrupted. When false, the stack's `tx` node completes such checksums in software
    /// before the packet reaches the port.
    pub tx_l4_checksum_offload: bool,
}

/// Link state, like `rte_eth_link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

impl LinkStatus {
    /// An up, full-duplex link of the given speed.
    pub fn up(speed_mbps: u32) -> Self {
        LinkStatus {
            up: true,
            speed_mbps,
            full_duplex: true,
        }
    }
}

/// Port totals, like `rte_eth_stats`, plus the per-queue figures they were summed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets transmitted.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes transmitted.
    pub obytes: u64,
    /// Packets the device dropped on receive for lack of room (full rx ring / queue).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions (packets the device refused or could not send).
    pub oerrors: u64,
    /// Receive attempts that found the mempool empty.
    pub rx_nombuf: u64,
    /// Per receive queue.
    pub rx_queues: Vec<QueueStats>,
    /// Per transmit queue.
    pub tx_queues: Vec<QueueStats>,
}

/// Errors from port set-up.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The queue index does not exist.
    #[error("port {port}: {dir} queue {queue} does not exist (the port has {count})")]
    NoSuchQueue {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        dir: &'static str,
        /// Queue asked for.
        queue: u16,
        /// Queues the port has.
        count: u16,
    },
    /// The queue was already taken by an lcore.
    #[error("port {port}: {dir} queue {queue} is already owned by an lcore")]
    QueueTaken {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        dir: &'static str,
        /// Queue asked for.
        queue: u16,
    },
    /// Driver-specific failure (file, device, permissions…), with what to do about it.
    #[error("port {port}: {message}")]
    Driver {
        /// Port name.
        port: String,
        /// What failed and the fix.
        message: String,
    },
}

/// The receive side of one queue, owned by one lcore.
pub trait RxQueue: Send {
    /// Appends up to `max` received packets to `out` (bounded by its free space) and returns how
    /// many. Never blocks; 0 means nothing was waiting (or the pool was empty, which is counted
    /// as `rx_nombuf`).
    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize;

    /// A file descriptor that polls readable (`POLLIN`) when packets wait in this queue, so an
    /// idle lcore can sleep in `poll(2)` and wake on the first packet (DPDK's rx interrupt
    /// mode). `None` (the default) for queues without one: the lcore then sleeps for a fixed
    /// time.
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// The transmit side of one queue, owned by one lcore.
pub trait TxQueue: Send {
    /// Sends packets from the front of `pkts` and returns how many were taken. Packets not sent
    /// stay in `pkts`, in order; the caller retries, or drops and counts them. Never blocks.
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize;

    /// Pushes out anything the driver buffers internally (file writers, batched kicks).
    fn flush(&mut self) {}
}

/// The control side of a port.
pub trait Port: Send + Sync {
    /// Name, id, MAC, MTU, queue counts.
    fn info(&self) -> &PortInfo;

    /// Current link state.
    fn link(&self) -> LinkStatus;

    /// The per-queue counters of this port.
    fn counters(&self) -> &PortCounters;

    /// Totals over all queues.
    fn stats(&self) -> PortStats {
        self.counters().stats()
    }

    /// True once the port will never receive again (a pcap file read to its end without
    /// looping). Live devices always return false.
    fn rx_finished(&self) -> bool {
        false
    }

    /// Takes receive queue `q` to be polled by one lcore. Each queue can be taken once.
    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError>;

    /// Takes transmit queue `q` to be used by one lcore. Each queue can be taken once.
    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError>;
}

/// Shared bookkeeping for drivers: hands each queue out once.
#[derive(Debug)]
pub(crate) struct QueueSlots<T> {
    port: String,
    dir: &'static str,
    slots: Vec<Option<T>>,
}

impl<T> QueueSlots<T> {
    pub(crate) fn new(port: &str, dir: &'static str, items: Vec<T>) -> Self {
        QueueSlots {
            port: port.to_string(),
            dir,
            slots: items.into_iter().map(Some).collect(),
        }
    }

    pub(crate) fn take(&mut self, q: u16) -> Result<T, PortError> {
        let count = self.slots.len() as u16;
        match self.slots.get_mut(q as usize) {
            None => Err(PortError::NoSuchQueue {
                port: self.port.clone(),
                dir: self.dir,
                queue: q,
                count,
            }),
            Some(slot) => slot.take().ok_or_else(|| PortError::QueueTaken {
                port: self.port.clone(),
                dir: self.dir,
                queue: q,
            }),
        }
    }
}
