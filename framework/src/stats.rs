//! Point-in-time statistics of a running data plane, gathered from the lock-free per-core
//! counters when someone asks (the stats line, the final report, a Prometheus scrape).

use crate::mem::MempoolStats;
use crate::port::{PortInfo, PortStats};

/// Counters of one lcore's poll loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LcoreStats {
    /// Lcore id.
    pub id: u32,
    /// CPU the thread is pinned to, if any.
    pub cpu: Option<usize>,
    /// Loop turns.
    pub turns: u64,
    /// Turns that received at least one packet.
    pub busy_turns: u64,
    /// Packets received from the queues this lcore polls.
    pub rx_packets: u64,
    /// Packets handed to transmit queues and accepted.
    pub tx_packets: u64,
    /// Times the idle policy slept.
    pub idle_sleeps: u64,
    /// TSC cycles spent in turns that received packets.
    pub busy_cycles: u64,
    /// TSC cycles since the loop started.
    pub total_cycles: u64,
    /// Packets dropped on this lcore, by reason (`tx_full`, `runt`, …); reasons with zero drops
    /// may be omitted.
    pub drops: Vec<(&'static str, u64)>,
    /// Per-node counters when the lcore runs a packet graph (empty otherwise).
    pub nodes: Vec<crate::graph::NodeStats>,
}

/// Everything a stats reader wants in one consistent-enough snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds since the data plane started.
    pub uptime_secs: f64,
    /// TSC ticks per second (to turn cycles into time).
    pub tsc_hz: u64,
    /// Each port with its counters.
    pub ports: Vec<(PortInfo, PortStats)>,
    /// Each lcore with its counters.
    pub lcores: Vec<LcoreStats>,
    /// Each mempool with its counters.
    pub pools: Vec<MempoolStats>,
}

/// Anything that can produce a [`Snapshot`] on demand (the runtime does).
pub trait StatsSource: Send + Sync {
    /// Reads every counter now.
    fn snapshot(&self) -> Snapshot;
}
