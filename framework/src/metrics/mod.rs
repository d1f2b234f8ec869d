//! Prometheus metrics: ports, queues, lcores and mempools in the text exposition format.
//!
//! The data-path lcores never touch this module. It only calls [`StatsSource::snapshot`], which
//! reads the per-core counters with plain atomic loads and sums them; each scrape takes exactly
//! one snapshot and turns it into metric families:
//!
//! * [`MetricsCollector`] — a [`prometheus::core::Collector`] for use with a
//!   [`prometheus::Registry`];
//! * [`render`] / [`render_snapshot`] — the text exposition format as a `String`;
//! * [`MetricsServer`] — a tiny HTTP/1.1 endpoint on one background thread (`GET /metrics`).
//!
//! # Metric families
//!
//! | family | type | labels |
//! |---|---|---|
//! | `ferroplane_port_rx_packets_total`, `_rx_bytes_total`, `_rx_missed_total`, `_rx_errors_total`, `_rx_nombuf_total` | counter | `port`, `queue` |
//! | `ferroplane_port_tx_packets_total`, `_tx_bytes_total`, `_tx_errors_total` | counter | `port`, `queue` |
//! | `ferroplane_port_info` (= 1) | gauge | `port`, `driver`, `mac` |
//! | `ferroplane_port_mtu_bytes` | gauge | `port` |
//! | `ferroplane_lcore_turns_total`, `_busy_turns_total`, `_rx_packets_total`, `_tx_packets_total`, `_idle_sleeps_total`, `_idle_wakeups_total` | counter | `lcore` |
//! | `ferroplane_lcore_busy_seconds_total`, `ferroplane_lcore_seconds_total` (cycles / TSC Hz) | counter | `lcore` |
//! | `ferroplane_lcore_dropped_packets_total` | counter | `lcore`, `reason` |
//! | `ferroplane_mempool_mbufs` (capacity), `_available_mbufs`, `_in_use_mbufs` | gauge | `pool` |
//! | `ferroplane_mempool_cache_hits_total`, `_cache_refills_total`, `_empty_events_total` | counter | `pool` |
//! | `ferroplane_uptime_seconds` | gauge | — |
//!
//! Port counters are exported per queue (`queue` is the queue index). A count the driver keeps
//! only per port (the port total exceeds the sum of its queues), or a port without queues in
//! that direction, shows up as a series without the `queue` label, so `sum by (port)` always
//! gives the port total. The lcore time counters are left out while the TSC frequency is unknown
//! (0), and families without any sample are not written.

mod collector;
mod server;

#[cfg(test)]
mod tests;

use prometheus::TextEncoder;

pub use collector::{metric_families, MetricsCollector};
pub use server::MetricsServer;

use crate::stats::{Snapshot, StatsSource};

/// `Content-Type` of the text exposition format, as served on `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Takes one snapshot of `source` and renders it in the Prometheus text exposition format.
pub fn render(source: &dyn StatsSource) -> String {
    render_snapshot(&source.snapshot())
}

/// Renders a snapshot already taken in the Prometheus text exposition format.
pub fn render_snapshot(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    // The encoder only refuses nameless or empty families, which `metric_families` never yields.
    if let Err(e) = TextEncoder::new().encode_utf8(&metric_families(snapshot), &mut out) {
        let e = e.to_string().replace('\n', " ");
        out.push_str(&format!("# error encoding metrics: {e}\n"));
    }
    out
}
