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
    /// Of those, sleeps a packet ended early (queues with a wake descriptor).
    pub idle_wakeups: u64,
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

    /// The packet trace control, when the data plane runs a graph.
    fn trace(&self) -> Option<std::sync::Arc<crate::graph::TraceControl>> {
        None
    }
}

/// Formats the per-node counters of every lcore like VPP's `show runtime`: calls (vectors),
/// packets, packets per call, cycles per packet, and each node's non-zero event counters.
pub fn render_runtime(s: &Snapshot) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for l in &s.lcores {
        if l.nodes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "Lcore {}:", l.id);
        let _ = writeln!(
            out,
            "  {:<20} {:>12} {:>14} {:>10} {:>12}",
            "Node", "Calls", "Packets", "Pkts/Call", "Cycles/Pkt"
        );
        for n in &l.nodes {
            if n.calls == 0 && n.drops.iter().all(|d| d.1 == 0) {
                continue;
            }
            let per_call = if n.calls > 0 {
                n.packets as f64 / n.calls as f64
            } else {
                0.0
            };
            let cpp = if n.packets > 0 {
                n.cycles as f64 / n.packets as f64
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "  {:<20} {:>12} {:>14} {:>10.1} {:>12.1}",
                n.node, n.calls, n.packets, per_call, cpp
            );
            let events: Vec<String> = n
                .drops
                .iter()
                .filter(|d| d.1 > 0)
                .map(|(r, c)| format!("{r}={c}"))
                .collect();
            if !events.is_empty() {
                let _ = writeln!(out, "  {:<20} {}", "", events.join(" "));
            }
        }
    }
    out
}
