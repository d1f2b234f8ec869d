//! The Prometheus collector: one [`Snapshot`] per scrape, turned into metric families.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::port::QueueStats;
use crate::stats::{Snapshot, StatsSource};

/// Whether a family is a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// The fixed description of one metric family.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    kind: Kind,
    pub(crate) labels: &'static [&'static str],
}

/// Declares every family once: the [`Families`] builder (one field per family, emitted in
/// declaration order) and the [`SPECS`] table the collector's descriptors are made from.
macro_rules! families {
    ($($field:ident: $kind:ident $name:literal [$($label:literal),*] $help:literal;)*) => {
        /// Every metric family of one scrape, filled from one snapshot.
        struct Families {
            $($field: Family,)*
        }

        impl Families {
            fn new() -> Self {
                Families {
                    $($field: Family::new(Spec {
                        name: $name,
                        help: $help,
                        kind: Kind::$kind,
                        labels: &[$($label),*],
                    }),)*
                }
            }

            /// The non-empty families, in declaration order.
            fn finish(self) -> Vec<MetricFamily> {
                [$(self.$field,)*]
                    .into_iter()
                    .filter(|f| !f.metrics.is_empty())
                    .map(Family::finish)
                    .collect()
            }
        }

        /// Every family this module can emit, in output order.
        pub(crate) const SPECS: &[Spec] = &[$(Spec {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: &[$($label),*],
        },)*];
    };
}

families! {
    port_rx_packets: Counter "ferroplane_port_rx_packets_total" ["port", "queue"]
        "Packets received, per port and receive queue.";
    port_rx_bytes: Counter "ferroplane_port_rx_bytes_total" ["port", "queue"]
        "Bytes received (frame bytes without FCS), per port and receive queue.";
    port_rx_missed: Counter "ferroplane_port_rx_missed_total" ["port", "queue"]
        "Packets the device dropped on receive for lack of room in the queue.";
    port_rx_errors: Counter "ferroplane_port_rx_errors_total" ["port", "queue"]
        "Erroneous packets received, per port and receive queue.";
    port_rx_nombuf: Counter "ferroplane_port_rx_nombuf_total" ["port", "queue"]
        "Receive attempts that found the mempool empty, per port and receive queue.";
    port_tx_packets: Counter "ferroplane_port_tx_packets_total" ["port", "queue"]
        "Packets transmitted, per port and transmit queue.";
    port_tx_bytes: Counter "ferroplane_port_tx_bytes_total" ["port", "queue"]
        "Bytes transmitted (frame bytes without FCS), per port and transmit queue.";
    port_tx_errors: Counter "ferroplane_port_tx_errors_total" ["port", "queue"]
        "Packets the device refused to transmit, per port and transmit queue.";
    port_info: Gauge "ferroplane_port_info" ["port", "driver", "mac"]
        "Static facts about a port (always 1).";
    port_mtu: Gauge "ferroplane_port_mtu_bytes" ["port"]
        "MTU of the port in bytes (L3 payload of a frame).";
    lcore_turns: Counter "ferroplane_lcore_turns_total" ["lcore"]
        "Poll loop turns of the lcore.";
    lcore_busy_turns: Counter "ferroplane_lcore_busy_turns_total" ["lcore"]
        "Poll loop turns that received at least one packet.";
    lcore_rx_packets: Counter "ferroplane_lcore_rx_packets_total" ["lcore"]
        "Packets the lcore received from the queues it polls.";
    lcore_tx_packets: Counter "ferroplane_lcore_tx_packets_total" ["lcore"]
        "Packets the lcore handed to transmit queues and that were accepted.";
    lcore_idle_sleeps: Counter "ferroplane_lcore_idle_sleeps_total" ["lcore"]
        "Times the idle policy of the lcore slept.";
    lcore_idle_wakeups: Counter "ferroplane_lcore_idle_wakeups_total" ["lcore"]
        "Idle sleeps of the lcore that a packet ended early (queues that can wake it).";
    lcore_busy_seconds: Counter "ferroplane_lcore_busy_seconds_total" ["lcore"]
        "Time the lcore spent in turns that received packets (TSC cycles / TSC frequency).";
    lcore_seconds: Counter "ferroplane_lcore_seconds_total" ["lcore"]
        "Time since the lcore poll loop started (TSC cycles / TSC frequency).";
    lcore_dropped: Counter "ferroplane_lcore_dropped_packets_total" ["lcore", "reason"]
        "Packets dropped on the lcore, by reason.";
    node_calls: Counter "ferroplane_node_calls_total" ["lcore", "node"]
        "Vectors a graph node processed, per lcore.";
    node_packets: Counter "ferroplane_node_packets_total" ["lcore", "node"]
        "Packets a graph node processed, per lcore.";
    node_seconds: Counter "ferroplane_node_busy_seconds_total" ["lcore", "node"]
        "Time spent in a graph node (TSC cycles / TSC frequency), per lcore.";
    node_events: Counter "ferroplane_node_events_total" ["lcore", "node", "reason"]
        "Drops and other counted events of a graph node, by reason, per lcore.";
    mempool_mbufs: Gauge "ferroplane_mempool_mbufs" ["pool"]
        "Total mbufs in the pool (its capacity).";
    mempool_available: Gauge "ferroplane_mempool_available_mbufs" ["pool"]
        "Free mbufs in the pool (shared ring and lcore caches).";
    mempool_in_use: Gauge "ferroplane_mempool_in_use_mbufs" ["pool"]
        "Mbufs handed out and not yet returned to the pool.";
    mempool_cache_hits: Counter "ferroplane_mempool_cache_hits_total" ["pool"]
        "Allocations served straight from an lcore cache.";
    mempool_cache_refills: Counter "ferroplane_mempool_cache_refills_total" ["pool"]
        "Times an lcore cache refilled from the shared ring.";
    mempool_empty_events: Counter "ferroplane_mempool_empty_events_total" ["pool"]
        "Allocation requests that failed because the pool was empty.";
    uptime: Gauge "ferroplane_uptime_seconds" []
        "Seconds since the data plane started.";
}

/// One family being filled.
struct Family {
    spec: Spec,
    metrics: Vec<Metric>,
}

impl Family {
    fn new(spec: Spec) -> Self {
        Family {
            spec,
            metrics: Vec::new(),
        }
    }

    /// Adds a sample. `values` pair up with the spec's label names in order; passing fewer
    /// values leaves the trailing labels off (used for counts not attributed to a queue).
    /// Non-finite values are skipped: the text format has no spelling for them that every
    /// reader accepts, and a counter must never be NaN.
    fn push(&mut self, values: &[&str], value: f64) {
        debug_assert!(values.len() <= self.spec.labels.len());
        if !value.is_finite() {
            return;
        }
        let labels = self
            .spec
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        let mut metric = Metric::default();
        metric.set_label(labels);
        match self.spec.kind {
            Kind::Counter => {
                let mut c = Counter::default();
                c.set_value(value);
                metric.set_counter(c);
            }
            Kind::Gauge => {
                let mut g = Gauge::default();
                g.set_value(value);
                metric.set_gauge(g);
            }
        }
        self.metrics.push(metric);
    }

    fn finish(self) -> MetricFamily {
        let mut mf = MetricFamily::default();
        mf.set_name(self.spec.name.to_owned());
        mf.set_help(self.spec.help.to_owned());
        mf.set_field_type(match self.spec.kind {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
        });
        mf.set_metric(self.metrics);
        mf
    }
}

/// Adds one series per queue, plus — when the port total is larger than the sum of its queues
/// (a driver that counts something only per port), or the port reports no queues in this
/// direction — one series without the `queue` label holding the unattributed rest, so that
/// `sum by (port)` always equals the port total.
fn per_queue(
    family: &mut Family,
    port: &str,
    queues: &[QueueStats],
    field: fn(&QueueStats) -> u64,
    port_total: u64,
) {
    let mut sum = 0u64;
    for (i, q) in queues.iter().enumerate() {
        let v = field(q);
        sum = sum.saturating_add(v);
        family.push(&[port, &i.to_string()], v as f64);
    }
    let rest = port_total.saturating_sub(sum);
    if queues.is_empty() || rest > 0 {
        family.push(&[port], rest as f64);
    }
}

/// Builds every metric family from one snapshot, in a fixed order (ports in snapshot order,
/// queues by index). Families without samples are left out.
pub fn metric_families(s: &Snapshot) -> Vec<MetricFamily> {
    let mut f = Families::new();

    for (info, st) in &s.ports {
        let port = info.name.as_str();
        f.port_info
            .push(&[port, info.driver, &info.mac.to_string()], 1.0);
        f.port_mtu.push(&[port], f64::from(info.mtu));

        let rx = &st.rx_queues;
        per_queue(&mut f.port_rx_packets, port, rx, |q| q.packets, st.ipackets);
        per_queue(&mut f.port_rx_bytes, port, rx, |q| q.bytes, st.ibytes);
        per_queue(&mut f.port_rx_missed, port, rx, |q| q.missed, st.imissed);
        per_queue(&mut f.port_rx_errors, port, rx, |q| q.errors, st.ierrors);
        per_queue(&mut f.port_rx_nombuf, port, rx, |q| q.nombuf, st.rx_nombuf);

        let tx = &st.tx_queues;
        per_queue(&mut f.port_tx_packets, port, tx, |q| q.packets, st.opackets);
        per_queue(&mut f.port_tx_bytes, port, tx, |q| q.bytes, st.obytes);
        per_queue(&mut f.port_tx_errors, port, tx, |q| q.errors, st.oerrors);
    }

    let hz = s.tsc_hz as f64;
    for l in &s.lcores {
        let id = l.id.to_string();
        let lcore = [id.as_str()];
        f.lcore_turns.push(&lcore, l.turns as f64);
        f.lcore_busy_turns.push(&lcore, l.busy_turns as f64);
        f.lcore_rx_packets.push(&lcore, l.rx_packets as f64);
        f.lcore_tx_packets.push(&lcore, l.tx_packets as f64);
        f.lcore_idle_sleeps.push(&lcore, l.idle_sleeps as f64);
        f.lcore_idle_wakeups.push(&lcore, l.idle_wakeups as f64);
        // Without a known TSC frequency there is no time to report (the push skips NaN/inf).
        if s.tsc_hz > 0 {
            f.lcore_busy_seconds.push(&lcore, l.busy_cycles as f64 / hz);
            f.lcore_seconds.push(&lcore, l.total_cycles as f64 / hz);
        }
        // One series per reason, even if a reason were listed twice.
        let mut drops: Vec<(&str, u64)> = Vec::with_capacity(l.drops.len());
        for &(reason, n) in &l.drops {
            match drops.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, sum)) => *sum = sum.saturating_add(n),
                None => drops.push((reason, n)),
            }
        }
        for (reason, n) in drops {
            f.lcore_dropped.push(&[&id, reason], n as f64);
        }
        for node in &l.nodes {
            let labels = [id.as_str(), node.node.as_str()];
            f.node_calls.push(&labels, node.calls as f64);
            f.node_packets.push(&labels, node.packets as f64);
            if s.tsc_hz > 0 {
                f.node_seconds.push(&labels, node.cycles as f64 / hz);
            }
            for (reason, n) in &node.drops {
                f.node_events.push(&[&id, &node.node, reason], *n as f64);
            }
        }
    }

    for p in &s.pools {
        let pool = [p.name.as_str()];
        f.mempool_mbufs.push(&pool, p.capacity as f64);
        f.mempool_available.push(&pool, p.available as f64);
        f.mempool_in_use.push(&pool, p.in_use as f64);
        f.mempool_cache_hits.push(&pool, p.cache_hits as f64);
        f.mempool_cache_refills.push(&pool, p.cache_refills as f64);
        f.mempool_empty_events.push(&pool, p.empty_events as f64);
    }

    f.uptime.push(&[], s.uptime_secs);

    f.finish()
}

/// A [`prometheus::core::Collector`] that reads a [`StatsSource`] once per scrape.
///
/// Register it with a [`prometheus::Registry`] to merge ferroplane's metrics with others, or use
/// [`render`](super::render) / [`MetricsServer`](super::MetricsServer), which need no registry.
/// Each [`collect`](Collector::collect) takes exactly one snapshot, so all families of a scrape
/// describe the same moment.
pub struct MetricsCollector {
    source: Arc<dyn StatsSource>,
    descs: Vec<Desc>,
}

impl MetricsCollector {
    /// A collector over `source`.
    pub fn new(source: Arc<dyn StatsSource>) -> Self {
        let descs = SPECS
            .iter()
            .map(|s| {
                Desc::new(
                    s.name.to_owned(),
                    s.help.to_owned(),
                    s.labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
                .expect("the static metric specs are valid")
            })
            .collect();
        MetricsCollector { source, descs }
    }
}

impl fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("families", &self.descs.len())
            .finish_non_exhaustive()
    }
}

impl Collector for MetricsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        metric_families(&self.source.snapshot())
    }
}
