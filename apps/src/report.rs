//! Human and machine readable statistics output.

use std::fmt::Write;
use std::time::Duration;

use ferroplane::stats::Snapshot;

/// "5s", "1.5s", "250ms".
pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn mpps(pkts: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        pkts as f64 / secs / 1e6
    }
}

fn total_drops(s: &Snapshot) -> u64 {
    s.lcores
        .iter()
        .flat_map(|l| l.drops.iter().map(|d| d.1))
        .sum()
}

/// One line of rates over the interval between two snapshots.
pub fn stats_line(prev: &Snapshot, now: &Snapshot) -> String {
    let dt = now.uptime_secs - prev.uptime_secs;
    let mut line = format!("[{:7.1}s]", now.uptime_secs);
    for (l, p) in now.lcores.iter().zip(&prev.lcores) {
        let busy = if l.total_cycles > p.total_cycles {
            100.0 * (l.busy_cycles - p.busy_cycles) as f64
                / (l.total_cycles - p.total_cycles) as f64
        } else {
            0.0
        };
        let _ = write!(
            line,
            " lcore {}: rx {:.2} tx {:.2} Mpps busy {:3.0}% |",
            l.id,
            mpps(l.rx_packets - p.rx_packets, dt),
            mpps(l.tx_packets - p.tx_packets, dt),
            busy
        );
    }
    for ((info, s), (_, ps)) in now.ports.iter().zip(&prev.ports) {
        let _ = write!(
            line,
            " {}: rx {:.2} tx {:.2}",
            info.name,
            mpps(s.ipackets - ps.ipackets, dt),
            mpps(s.opackets - ps.opackets, dt)
        );
    }
    let _ = write!(line, " | drops {}", total_drops(now) - total_drops(prev));
    line
}

/// The report printed when the data plane stops.
pub fn final_report(s: &Snapshot, elapsed: Duration, why: &str) -> String {
    let secs = elapsed.as_secs_f64();
    let mut out = format!("== ferroplane stopped after {secs:.2} s ({why}) ==\n");
    for (info, p) in &s.ports {
        let _ = writeln!(
            out,
            "port {} ({}, {}): rx {} pkts {} B, tx {} pkts {} B, missed {}, rx errors {}, tx \
             errors {}, rx_nombuf {}",
            info.name,
            info.driver,
            info.mac,
            p.ipackets,
            p.ibytes,
            p.opackets,
            p.obytes,
            p.imissed,
            p.ierrors,
            p.oerrors,
            p.rx_nombuf
        );
    }
    for l in &s.lcores {
        let cpp = if l.rx_packets > 0 {
            format!("{:.1}", l.busy_cycles as f64 / l.rx_packets as f64)
        } else {
            "-".into()
        };
        let drops: Vec<String> = l
            .drops
            .iter()
            .filter(|d| d.1 > 0)
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        let _ = writeln!(
            out,
            "lcore {}{}: rx {} pkts ({:.2} Mpps), tx {} pkts ({:.2} Mpps), {} cycles/pkt, idle \
             sleeps {} ({} woken by a packet), drops: {}",
            l.id,
            l.cpu.map(|c| format!(" (cpu {c})")).unwrap_or_default(),
            l.rx_packets,
            mpps(l.rx_packets, secs),
            l.tx_packets,
            mpps(l.tx_packets, secs),
            cpp,
            l.idle_sleeps,
            l.idle_wakeups,
            if drops.is_empty() {
                "none".into()
            } else {
                drops.join(" ")
            }
        );
    }
    for p in &s.pools {
        let _ = writeln!(
            out,
            "pool {}: {} mbufs, {} in use, cache hits {}, refills {}, empty events {}",
            p.name, p.capacity, p.in_use, p.cache_hits, p.cache_refills, p.empty_events
        );
    }
    out.pop();
    out
}

/// The final statistics as JSON, for scripts.
pub fn json(s: &Snapshot, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let ports: Vec<_> = s
        .ports
        .iter()
        .map(|(i, p)| {
            serde_json::json!({
                "name": i.name, "driver": i.driver, "mac": i.mac.to_string(),
                "ipackets": p.ipackets, "opackets": p.opackets, "ibytes": p.ibytes,
                "obytes": p.obytes, "imissed": p.imissed, "ierrors": p.ierrors,
                "oerrors": p.oerrors, "rx_nombuf": p.rx_nombuf,
                "rx_mpps": mpps(p.ipackets, secs), "tx_mpps": mpps(p.opackets, secs),
            })
        })
        .collect();
    let lcores: Vec<_> = s
        .lcores
        .iter()
        .map(|l| {
            let drops: serde_json::Map<String, serde_json::Value> = l
                .drops
                .iter()
                .map(|(r, n)| (r.to_string(), (*n).into()))
                .collect();
            serde_json::json!({
                "id": l.id, "cpu": l.cpu, "turns": l.turns, "busy_turns": l.busy_turns,
                "rx_packets": l.rx_packets, "tx_packets": l.tx_packets,
                "rx_mpps": mpps(l.rx_packets, secs), "tx_mpps": mpps(l.tx_packets, secs),
                "cycles_per_packet": if l.rx_packets > 0 {
                    l.busy_cycles as f64 / l.rx_packets as f64 } else { 0.0 },
                "idle_sleeps": l.idle_sleeps, "idle_wakeups": l.idle_wakeups, "drops": drops,
            })
        })
        .collect();
    let pools: Vec<_> = s
        .pools
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name, "capacity": p.capacity, "in_use": p.in_use,
                "cache_hits": p.cache_hits, "cache_refills": p.cache_refills,
                "empty_events": p.empty_events,
            })
        })
        .collect();
    let v = serde_json::json!({
        "elapsed_secs": secs, "tsc_hz": s.tsc_hz,
        "ports": ports, "lcores": lcores, "pools": pools,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
