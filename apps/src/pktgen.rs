//! `ferroplane pktgen`: run the traffic generator from a config file or quick flags, show a live
//! screen (plain lines when stdout is not a terminal), print a summary, write JSON; or run an
//! RFC 2544 throughput search.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferroplane::app::pktgen::ImpairTotals;
use ferroplane::config::{self, AppConfig, Config, PktgenConfig, Rfc2544Config};
use ferroplane::pktgen::rfc2544::{self, Rfc2544Params, TrialOutcome};
use ferroplane::pktgen::{LatencySummary, Rate, RxStats, StreamRx, FCS_LEN};
use ferroplane::runtime::Runtime;
use ferroplane::stats::Snapshot;
use serde_json::{json, Value};

/// Command-line options of `ferroplane pktgen`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PktgenArgs {
    /// Config file with `[app] name = "pktgen"` (the quick flags below then override its
    /// rate, size, duration, count and burst).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port to send on, when no config is given: "null", "ring" (a loopback ring pair:
    /// send on r0, receive on r1), "pcap:OUT.pcap", "af_packet:IFACE" or "af_xdp:IFACE".
    #[arg(long, value_name = "DRIVER-SPEC")]
    pub port: Option<String>,
    /// Rate per port: "1Mpps", "250kpps", "10Gbit/s", "line:10G" or "max".
    #[arg(long)]
    pub rate: Option<String>,
    /// Count the 20-byte layer-1 overhead in bit rates.
    #[arg(long)]
    pub l1_overhead: bool,
    /// Frame size with FCS: 64, "64-1518", "random:64-1518", "imix", "64:7,576:4,1500:1".
    #[arg(long)]
    pub size: Option<String>,
    /// How long to send ("5s", "500ms").
    #[arg(long)]
    pub duration: Option<String>,
    /// Packets to send per port.
    #[arg(long)]
    pub count: Option<u64>,
    /// Packets per tx burst.
    #[arg(long)]
    pub burst: Option<u16>,
    /// Protocol: udp, tcp-syn, icmp-echo.
    #[arg(long, default_value = "udp")]
    pub proto: String,
    /// Source IPv4 (address, "a-b" range or "random:a-b").
    #[arg(long, default_value = "198.18.0.1")]
    pub src_ip: String,
    /// Destination IPv4.
    #[arg(long, default_value = "198.19.0.1")]
    pub dst_ip: String,
    /// Source port (number, "a-b" or "random:a-b").
    #[arg(long, default_value = "1024")]
    pub src_port: String,
    /// Destination port.
    #[arg(long, default_value = "1024")]
    pub dst_port: String,
    /// Destination MAC (default broadcast).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// 802.1Q VLAN id.
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Payload: zeros, inc, 0xHEX.
    #[arg(long)]
    pub payload: Option<String>,
    /// Do not stamp the rx signature (no loss/latency analysis).
    #[arg(long)]
    pub no_latency: bool,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live screen.
    #[arg(long)]
    pub quiet: bool,
    /// How long to keep receiving after the last packet was sent.
    #[arg(long, default_value = "200ms")]
    pub drain: String,
    /// Run an RFC 2544 throughput search instead of one run: comma-separated frame sizes,
    /// like "64,128,512,1518" (a config's `[app.rfc2544]` also starts one).
    #[arg(long, value_name = "SIZES")]
    pub rfc2544: Option<String>,
    /// RFC 2544: highest rate tried, in pps [default: `[app.rfc2544] max_pps`, else 1000000].
    #[arg(long)]
    pub rfc2544_max_pps: Option<f64>,
    /// RFC 2544: trial duration [default: `[app.rfc2544] trial`, else 1s].
    #[arg(long)]
    pub rfc2544_trial: Option<String>,
    /// RFC 2544: stop when the search interval is below this fraction of the max rate
    /// [default: `[app.rfc2544] resolution`, else 0.01].
    #[arg(long)]
    pub rfc2544_resolution: Option<f64>,
    /// RFC 2544: accepted loss ratio, 0 = zero loss [default: `[app.rfc2544] loss_ratio`,
    /// else 0].
    #[arg(long)]
    pub rfc2544_loss: Option<f64>,
}

fn dur(s: &str, what: &str) -> Result<Duration, String> {
    crate::parse_duration(s).map_err(|e| format!("--{what}: {e}"))
}

/// The quick-flag config as TOML text (validated by the normal config reader).
fn quick_config(a: &PktgenArgs) -> Result<String, String> {
    let spec = a.port.as_deref().unwrap_or("null");
    let (driver, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let need_arg = |what: &str| -> Result<(), String> {
        if arg.is_empty() {
            Err(format!(
                "--port {spec}: {driver} needs {what}, like --port {driver}:{}",
                if what == "a file" {
                    "out.pcap"
                } else {
                    "veth0"
                }
            ))
        } else {
            Ok(())
        }
    };
    let mut t = String::from("[[memory.pools]]\nname = \"default\"\nmbufs = 16384\n\n");
    let lcore = match driver {
        "null" => {
            t += "[[ports]]\nname = \"p0\"\ndriver = \"null\"\n\n";
            "[[lcores]]\nid = 1\nrx = []\ntx = [\"p0:0\"]\n"
        }
        "ring" => {
            t += "[[ports]]\nname = \"r0\"\ndriver = \"ring\"\npeer = \"r1\"\ndepth = 4096\n\n";
            t += "[[ports]]\nname = \"r1\"\ndriver = \"ring\"\npeer = \"r0\"\ndepth = 4096\n\n";
            "[[lcores]]\nid = 1\nrx = [\"r1:0\"]\ntx = [\"r0:0\"]\n"
        }
        "pcap" => {
            need_arg("a file")?;
            let _ = writeln!(
                t,
                "[[ports]]\nname = \"p0\"\ndriver = \"pcap\"\ntx = {}\n",
                toml_str(arg)
            );
            "[[lcores]]\nid = 1\nrx = []\ntx = [\"p0:0\"]\n"
        }
        "af_packet" | "af_xdp" => {
            need_arg("an interface")?;
            let _ = writeln!(
                t,
                "[[ports]]\nname = \"p0\"\ndriver = \"{driver}\"\niface = {}\n",
                toml_str(arg)
            );
            "[[lcores]]\nid = 1\nrx = [\"p0:0\"]\ntx = [\"p0:0\"]\n"
        }
        other => {
            return Err(format!(
                "--port {spec}: unknown driver \"{other}\"; use null, ring, pcap:FILE, af_packet:IFACE or af_xdp:IFACE"
            ))
        }
    };
    t += lcore;
    t += "\n[app]\nname = \"pktgen\"\n";
    let _ = writeln!(t, "rate = {}", toml_str(a.rate.as_deref().unwrap_or("max")));
    let _ = writeln!(t, "latency = {}", !a.no_latency);
    if a.count.is_none() && a.duration.is_none() {
        t += "duration = \"5s\"\n";
    }
    t += "\n[[app.streams]]\n";
    let _ = writeln!(t, "proto = {}", toml_str(&a.proto));
    let _ = writeln!(t, "src_ip = {}", toml_str(&a.src_ip));
    let _ = writeln!(t, "dst_ip = {}", toml_str(&a.dst_ip));
    let _ = writeln!(t, "src_port = {}", toml_str(&a.src_port));
    let _ = writeln!(t, "dst_port = {}", toml_str(&a.dst_port));
    if let Some(m) = &a.dst_mac {
        let _ = writeln!(t, "dst_mac = {}", toml_str(m));
    }
    if let Some(v) = a.vlan {
        let _ = writeln!(t, "vlan = {v}");
    }
    if let Some(p) = &a.payload {
        let _ = writeln!(t, "payload = {}", toml_str(p));
    }
    let _ = writeln!(t, "size = {}", toml_str(a.size.as_deref().unwrap_or("64")));
    t += "\n[metrics]\nenabled = false\n";
    Ok(t)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Applies the override flags to a loaded config.
fn apply_overrides(cfg: &mut Config, a: &PktgenArgs) -> Result<(), String> {
    let AppConfig::Pktgen(p) = &mut cfg.app else {
        return Err(format!(
            "the config's [app] is \"{}\"; `ferroplane pktgen` needs name = \"pktgen\"",
            cfg.app.name()
        ));
    };
    if let Some(r) = &a.rate {
        p.rate = ferroplane::pktgen::parse::parse_rate(r).map_err(|e| format!("--rate: {e}"))?;
    }
    if a.l1_overhead {
        p.l1_overhead = true;
    }
    if let Rate::Bps { l1_overhead, .. } = &mut p.rate {
        *l1_overhead = p.l1_overhead;
    }
    if let Some(d) = &a.duration {
        p.duration = Some(dur(d, "duration")?);
    }
    if let Some(c) = a.count {
        if c == 0 {
            return Err("--count: must be at least 1".into());
        }
        p.count = Some(c);
    }
    if let Some(b) = a.burst {
        if b == 0 || b as usize > ferroplane::BURST_MAX {
            return Err(format!(
                "--burst: {b} is out of range; use 1..={}",
                ferroplane::BURST_MAX
            ));
        }
        p.burst = b;
    }
    if let Some(s) = &a.size {
        let size = ferroplane::pktgen::parse::parse_size(s).map_err(|e| format!("--size: {e}"))?;
        for st in &mut p.streams {
            st.size = size.clone();
        }
    }
    Ok(())
}

/// Loads the config for `pktgen`: the file with overrides, or the quick flags.
pub fn load(a: &PktgenArgs) -> Result<Config, String> {
    let mut cfg = match &a.config {
        Some(f) => {
            config::load(f).map_err(|e| format!("{}: {} error(s)\n{e}", f.display(), e.len()))?
        }
        None => {
            let text = quick_config(a)?;
            config::parse(&text).map_err(|e| {
                // Map the generated file's paths back to the flags that produced them.
                let mut out = String::from("invalid pktgen options:\n");
                for err in e.iter() {
                    let flag = match err.path.rsplit('.').next().unwrap_or("") {
                        "rate" => "--rate",
                        "size" => "--size",
                        "src_ip" => "--src-ip",
                        "dst_ip" => "--dst-ip",
                        "src_port" => "--src-port",
                        "dst_port" => "--dst-port",
                        "dst_mac" => "--dst-mac",
                        "vlan" => "--vlan",
                        "payload" => "--payload",
                        "proto" => "--proto",
                        "iface" | "tx" => "--port",
                        _ => "",
                    };
                    let _ = writeln!(
                        out,
                        "error: {}: {}\n  hint: {}",
                        if flag.is_empty() { &err.path } else { flag },
                        err.message,
                        err.hint
                    );
                }
                out.trim_end().to_string()
            })?
        }
    };
    if a.config.is_some() {
        apply_overrides(&mut cfg, a)?;
    } else {
        let mut b = a.clone();
        b.rate = None;
        b.size = None;
        apply_overrides(&mut cfg, &b)?;
    }
    // Re-check the streams against the MTU after the overrides.
    let text = toml::to_string(&cfg).map_err(|e| e.to_string())?;
    let base = a
        .config
        .as_ref()
        .and_then(|f| f.parent().map(|p| p.to_path_buf()));
    let _ = base;
    config::parse(&text).map_err(|e| format!("invalid pktgen options:\n{e}"))?;
    Ok(cfg)
}

/// Results of one run.
pub struct RunResult {
    /// Wall time from start to stop.
    pub elapsed: Duration,
    /// Wall time from start until every tx queue had finished (= `elapsed` without limits).
    pub tx_elapsed: Duration,
    /// Final counters.
    pub fin: Snapshot,
    /// Frames sent per stream id.
    pub tx_sent: Vec<u64>,
    /// Every rx queue merged, finalised with `tx_sent`.
    pub rx_all: Option<RxStats>,
    /// Per port id: that port's rx results.
    pub rx_ports: Vec<Option<RxStats>>,
    /// Stream id → (tx port name, queue).
    pub stream_port: Vec<(String, u16)>,
    /// The app config.
    pub app: PktgenConfig,
    /// Per port id: what its `impair` wrapper did (`None`: not impaired).
    pub impair: Vec<Option<ImpairTotals>>,
}

impl RunResult {
    /// Frames sent, lost, duplicated, reordered (summed over streams; 0 without latency).
    pub fn totals(&self) -> (u64, u64, u64, u64, u64) {
        let tx: u64 = self.tx_sent.iter().sum();
        let Some(rx) = &self.rx_all else {
            return (tx, 0, 0, 0, 0);
        };
        let mut t = (tx, 0, 0, 0, 0);
        for s in &rx.streams {
            t.1 += s.packets;
            t.2 += s.lost();
            t.3 += s.duplicates;
            t.4 += s.reordered;
        }
        t
    }
}

fn merged_latency(rx: &RxStats) -> Option<LatencySummary> {
    let mut it = rx.streams.iter();
    let first: &StreamRx = it.next()?;
    let mut h = first.latency.clone();
    for s in it {
        let _ = h.add(&s.latency);
    }
    LatencySummary::of(&h)
}

/// Runs the generator once. `live`: print a screen or line per second.
pub fn run_once(cfg: &Config, live: bool, drain: Duration) -> Result<RunResult, String> {
    let AppConfig::Pktgen(app) = &cfg.app else {
        return Err("not a pktgen config".into());
    };
    let rt = Runtime::from_config(cfg).map_err(|e| e.to_string())?;
    let running = rt.start().map_err(|e| e.to_string())?;
    let shared = running
        .pktgen()
        .cloned()
        .ok_or("the runtime has no pktgen state")?;
    let stop = running.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()));
    }
    let tty = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut last = running.snapshot();
    let mut last_at = Instant::now();
    let mut done_at: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        if stop.load(Ordering::Relaxed) || running.any_lcore_exited() {
            break;
        }
        if shared.all_tx_done() {
            let t = *done_at.get_or_insert_with(Instant::now);
            if t.elapsed() >= drain {
                break;
            }
        }
        if live && last_at.elapsed() >= Duration::from_secs(1) {
            let now = running.snapshot();
            let screen = live_screen(&last, &now, &shared, tty);
            if tty {
                print!("\x1b[H\x1b[2J{screen}");
            } else {
                print!("{screen}");
            }
            last = now;
            last_at = Instant::now();
        }
    }
    let elapsed = start.elapsed();
    let tx_elapsed = done_at.map_or(elapsed, |t| t.duration_since(start));
    running.stop();
    let fin = running.join().map_err(|e| e.to_string())?;
    let tx_sent = shared.tx_sent();
    let mut rx_all: Option<RxStats> = None;
    for slot in shared.rx_slots() {
        match &mut rx_all {
            None => rx_all = Some(slot.stats.clone()),
            Some(r) => r.merge(&slot.stats).map_err(|e| e.to_string())?,
        }
    }
    if let Some(r) = &mut rx_all {
        r.finalize(&tx_sent);
    }
    let rx_ports = (0..fin.ports.len() as u16)
        .map(|p| shared.rx_of_port(p))
        .collect();
    let impair = (0..fin.ports.len() as u16)
        .map(|p| shared.impair_of_port(p))
        .collect();
    let mut stream_port = Vec::new();
    for q in &shared.tx_queues {
        for _ in 0..shared.streams_per_queue {
            stream_port.push((q.port_name.clone(), q.queue));
        }
    }
    Ok(RunResult {
        elapsed,
        tx_elapsed,
        fin,
        tx_sent,
        rx_all,
        rx_ports,
        stream_port,
        app: app.clone(),
        impair,
    })
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.3}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn port_drops(s: &ferroplane::port::PortStats) -> u64 {
    s.imissed + s.ierrors + s.oerrors + s.rx_nombuf
}

/// Bits of `bytes` bytes in `pkts` frames, FCS included (the pktgen unit).
fn frame_bits(bytes: u64, pkts: u64) -> f64 {
    (bytes + pkts * FCS_LEN as u64) as f64 * 8.0
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1}us", ns as f64 / 1e3)
    } else {
        format!("{ns}ns")
    }
}

fn live_screen(
    prev: &Snapshot,
    now: &Snapshot,
    shared: &ferroplane::app::pktgen::PktgenShared,
    tty: bool,
) -> String {
    let dt = (now.uptime_secs - prev.uptime_secs).max(1e-9);
    let mut out = String::new();
    if tty {
        let _ = writeln!(
            out,
            "ferroplane pktgen  {:.1}s   (Ctrl-C to stop)\n{:<8} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}",
            now.uptime_secs, "port", "tx pps", "tx bit/s", "rx pps", "rx bit/s", "drops", "lat p99"
        );
    }
    let mut impair_lines = Vec::new();
    for ((info, s), (_, ps)) in now.ports.iter().zip(&prev.ports) {
        let tx = s.opackets - ps.opackets;
        let rx = s.ipackets - ps.ipackets;
        let txb = frame_bits(s.obytes - ps.obytes, tx) / dt;
        let rxb = frame_bits(s.ibytes - ps.ibytes, rx) / dt;
        let drops = port_drops(s) - port_drops(ps);
        if let Some(t) = shared.impair_of_port(info.id) {
            impair_lines.push(impair_line(&info.name, &t));
        }
        let p99 = shared
            .rx_of_port(info.id)
            .and_then(|r| merged_latency(&r))
            .map_or("-".to_string(), |l| fmt_ns(l.p99_ns));
        if tty {
            let _ = writeln!(
                out,
                "{:<8} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}",
                info.name,
                si(tx as f64 / dt),
                si(txb),
                si(rx as f64 / dt),
                si(rxb),
                drops,
                p99
            );
        } else {
            let _ = writeln!(
                out,
                "[{:6.1}s] {}: tx {} pps {} bit/s, rx {} pps {} bit/s, drops {}, latency p99 {}",
                now.uptime_secs,
                info.name,
                si(tx as f64 / dt),
                si(txb),
                si(rx as f64 / dt),
                si(rxb),
                drops,
                p99
            );
        }
    }
    for l in impair_lines {
        if tty {
            let _ = writeln!(out, "{l}");
        } else {
            let _ = writeln!(out, "[{:6.1}s] {l}", now.uptime_secs);
        }
    }
    out
}

fn latency_json(l: Option<LatencySummary>) -> Value {
    match l {
        None => Value::Null,
        Some(l) => json!({
            "count": l.count, "min_ns": l.min_ns, "p50_ns": l.p50_ns, "p90_ns": l.p90_ns,
            "p99_ns": l.p99_ns, "p999_ns": l.p999_ns, "max_ns": l.max_ns, "mean_ns": l.mean_ns,
        }),
    }
}

/// Receive rate of a stream from its first and last rx TSC.
fn rx_rate(s: &StreamRx, hz: u64) -> Option<f64> {
    let (a, b) = (s.first_rx_tsc?, s.last_rx_tsc?);
    (b > a && s.packets > 1).then(|| (s.packets - 1) as f64 * hz as f64 / (b - a) as f64)
}

fn impair_json(t: Option<ImpairTotals>) -> Value {
    match t {
        None => Value::Null,
        Some(t) => json!({
            "offered": t.offered, "dropped": t.dropped, "rate_dropped": t.rate_dropped,
            "duplicated": t.duplicated, "reordered": t.reordered, "refused": t.refused,
        }),
    }
}

/// One line of what a port's impairment did.
fn impair_line(name: &str, t: &ImpairTotals) -> String {
    format!(
        "impair {name}: offered {}, dropped {}, rate-dropped {}, duplicated {}, reordered {}, refused {}",
        t.offered, t.dropped, t.rate_dropped, t.duplicated, t.reordered, t.refused
    )
}

/// Every figure of a run as JSON.
pub fn result_json(r: &RunResult) -> Value {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let ports: Vec<Value> = r
        .fin
        .ports
        .iter()
        .map(|(info, s)| {
            json!({
                "name": info.name,
                "tx_packets": s.opackets, "tx_bytes": s.obytes,
                "rx_packets": s.ipackets, "rx_bytes": s.ibytes,
                "tx_pps": s.opackets as f64 / secs,
                "tx_bps": frame_bits(s.obytes, s.opackets) / secs,
                "rx_pps": s.ipackets as f64 / secs,
                "rx_bps": frame_bits(s.ibytes, s.ipackets) / secs,
                "drops": port_drops(s),
                "rx_missed": s.imissed, "rx_errors": s.ierrors, "tx_errors": s.oerrors,
                "rx_nombuf": s.rx_nombuf,
                "latency": r.rx_ports.get(info.id as usize).cloned().flatten()
                    .and_then(|x| merged_latency(&x)).map_or(Value::Null, |l| latency_json(Some(l))),
                "impair": impair_json(r.impair.get(info.id as usize).copied().flatten()),
            })
        })
        .collect();
    let streams: Vec<Value> = r
        .tx_sent
        .iter()
        .enumerate()
        .map(|(id, &tx)| {
            let rx = r.rx_all.as_ref().and_then(|a| a.streams.get(id));
            let (port, queue) = r.stream_port.get(id).cloned().unwrap_or_default();
            json!({
                "id": id, "tx_port": port, "tx_queue": queue, "tx": tx,
                "rx": rx.map_or(0, |s| s.packets),
                "rx_bytes": rx.map_or(0, |s| s.bytes),
                "lost": rx.map_or(tx, |s| s.lost()),
                "duplicates": rx.map_or(0, |s| s.duplicates),
                "reordered": rx.map_or(0, |s| s.reordered),
                "negative_latency": rx.map_or(0, |s| s.negative_latency),
                "latency": latency_json(rx.and_then(|s| s.latency_summary())),
                "rx_rate_pps": rx.and_then(|s| rx_rate(s, r.fin.tsc_hz)),
            })
        })
        .collect();
    let (tx, rx, lost, dup, reo) = r.totals();
    let drops: Vec<Value> = r
        .fin
        .lcores
        .iter()
        .flat_map(|l| {
            l.drops
                .iter()
                .filter(|d| d.1 > 0)
                .map(move |d| json!({"lcore": l.id, "reason": d.0, "count": d.1}))
        })
        .collect();
    let tx_secs = r.tx_elapsed.as_secs_f64().max(1e-9);
    json!({
        "elapsed_s": secs,
        "tx_elapsed_s": tx_secs,
        "rate": ferroplane::pktgen::parse::fmt_rate(&r.app.rate),
        "l1_overhead": r.app.l1_overhead,
        "latency_enabled": r.app.latency,
        "totals": {
            "tx": tx, "rx_with_signature": rx, "lost": lost, "duplicates": dup, "reordered": reo,
            "no_signature": r.rx_all.as_ref().map_or(0, |a| a.no_signature),
            "unknown_stream": r.rx_all.as_ref().map_or(0, |a| a.unknown_stream),
            "tx_pps": tx as f64 / tx_secs,
        },
        "ports": ports,
        "streams": streams,
        "lcore_drops": drops,
        "latency": r.rx_all.as_ref().and_then(merged_latency).map_or(Value::Null, |l| latency_json(Some(l))),
    })
}

/// The final summary.
pub fn summary(r: &RunResult) -> String {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let mut out = format!("== pktgen summary ({:.2}s) ==\n", secs);
    for (info, s) in &r.fin.ports {
        let _ = writeln!(
            out,
            "{:<8} tx {:>12} pkts {:>10} pps {:>12} bit/s | rx {:>12} pkts {:>10} pps | drops {}",
            info.name,
            s.opackets,
            si(s.opackets as f64 / secs),
            si(frame_bits(s.obytes, s.opackets) / secs),
            s.ipackets,
            si(s.ipackets as f64 / secs),
            port_drops(s)
        );
    }
    for (info, _) in &r.fin.ports {
        if let Some(t) = r.impair.get(info.id as usize).copied().flatten() {
            let _ = writeln!(out, "{}", impair_line(&info.name, &t));
        }
    }
    let (tx, rx, lost, dup, reo) = r.totals();
    let _ = writeln!(
        out,
        "streams: sent {tx} in {:.3}s = {} pps",
        r.tx_elapsed.as_secs_f64(),
        si(tx as f64 / r.tx_elapsed.as_secs_f64().max(1e-9))
    );
    if let Some(all) = &r.rx_all {
        let _ = writeln!(
            out,
            "received with signature {rx}, lost {lost}, duplicates {dup}, reordered {reo}, without signature {}",
            all.no_signature
        );
        for (id, s) in all.streams.iter().enumerate() {
            if s.packets == 0 && r.tx_sent.get(id).copied().unwrap_or(0) == 0 {
                continue;
            }
            let lat = s.latency_summary().map_or("-".to_string(), |l| {
                format!(
                    "min {} p50 {} p90 {} p99 {} p99.9 {} max {}",
                    fmt_ns(l.min_ns),
                    fmt_ns(l.p50_ns),
                    fmt_ns(l.p90_ns),
                    fmt_ns(l.p99_ns),
                    fmt_ns(l.p999_ns),
                    fmt_ns(l.max_ns)
                )
            });
            let _ = writeln!(
                out,
                "  stream {id:>3}: tx {} rx {} lost {} dup {} reord {} | latency {lat}",
                r.tx_sent.get(id).copied().unwrap_or(0),
                s.packets,
                s.lost(),
                s.duplicates,
                s.reordered
            );
        }
    }
    for l in &r.fin.lcores {
        for (reason, n) in &l.drops {
            if *n > 0 {
                let _ = writeln!(out, "lcore {} dropped {n} ({reason})", l.id);
            }
        }
    }
    out
}

/// `ferroplane pktgen`.
pub fn main(a: &PktgenArgs) -> Result<(), String> {
    let cfg = load(a)?;
    let drain = dur(&a.drain, "drain")?;
    let from_file = match &cfg.app {
        AppConfig::Pktgen(p) => p.rfc2544.clone(),
        _ => None,
    };
    if a.rfc2544.is_some() || from_file.is_some() {
        let (sizes, params) = rfc2544_params(a, from_file.as_ref())?;
        return rfc(a, &cfg, &sizes, &params, drain);
    }
    let r = run_once(&cfg, !a.quiet, drain)?;
    print!("{}", summary(&r));
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&result_json(&r)).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The RFC 2544 sizes and parameters: each flag given overrides the config's
/// `[app.rfc2544]`, which overrides the defaults.
pub fn rfc2544_params(
    a: &PktgenArgs,
    file: Option<&Rfc2544Config>,
) -> Result<(Vec<u16>, Rfc2544Params), String> {
    let sizes = match &a.rfc2544 {
        Some(list) => {
            let mut out = Vec::new();
            for s in list.split(',') {
                out.push(s.trim().parse::<u16>().map_err(|_| {
                    format!("--rfc2544: invalid frame size \"{s}\"; give sizes like 64,128,1518")
                })?);
            }
            out
        }
        None => file.map_or_else(
            || Rfc2544Config::DEFAULT_SIZES.to_vec(),
            |f| f.sizes.clone(),
        ),
    };
    let params = Rfc2544Params {
        max_pps: a.rfc2544_max_pps.unwrap_or(file.map_or(1e6, |f| f.max_pps)),
        trial: match &a.rfc2544_trial {
            Some(t) => dur(t, "rfc2544-trial")?,
            None => file.map_or(Duration::from_secs(1), |f| f.trial),
        },
        resolution: a
            .rfc2544_resolution
            .unwrap_or(file.map_or(0.01, |f| f.resolution)),
        loss_ratio: a.rfc2544_loss.unwrap_or(file.map_or(0.0, |f| f.loss_ratio)),
        max_trials: file.map_or(30, |f| f.max_trials),
    };
    params.check()?;
    Ok((sizes, params))
}

fn rfc(
    a: &PktgenArgs,
    cfg: &Config,
    list: &[u16],
    params: &Rfc2544Params,
    drain: Duration,
) -> Result<(), String> {
    let params = params.clone();
    let mut results = Vec::new();
    for &size in list {
        let mut trial_cfg = cfg.clone();
        let AppConfig::Pktgen(p) = &mut trial_cfg.app else {
            unreachable!("load() checked the app")
        };
        p.latency = true;
        p.rfc2544 = None;
        p.catch_up = Duration::ZERO;
        p.count = None;
        p.duration = Some(params.trial);
        for s in &mut p.streams {
            s.size = ferroplane::pktgen::SizeSpec::Fixed(size);
        }
        // Size problems show before any trial.
        config::parse(&toml::to_string(&trial_cfg).map_err(|e| e.to_string())?)
            .map_err(|e| format!("--rfc2544 size {size}:\n{e}"))?;
        let mut offered = Vec::new();
        let res = rfc2544::search(&params, |pps| {
            let mut c = trial_cfg.clone();
            if let AppConfig::Pktgen(p) = &mut c.app {
                p.rate = Rate::Pps(pps);
            }
            let r = run_once(&c, false, drain)?;
            let (tx, rx, lost, _, _) = r.totals();
            let _ = rx;
            if !a.quiet {
                println!(
                    "  size {size}: trial {pps:.0} pps: sent {tx}, lost {lost} ({:.4}%)",
                    if tx > 0 {
                        100.0 * lost as f64 / tx as f64
                    } else {
                        0.0
                    }
                );
            }
            offered.push((pps, tx as f64 / params.trial.as_secs_f64()));
            Ok::<_, String>(TrialOutcome { sent: tx, lost })
        })?;
        results.push((size, res, offered));
    }
    println!("== RFC 2544 throughput ==");
    println!(
        "{:>6} {:>14} {:>14} {:>8}",
        "size", "pps", "bit/s (L1)", "trials"
    );
    for (size, r, _) in &results {
        println!(
            "{:>6} {:>14.0} {:>14} {:>8}",
            size,
            r.throughput_pps,
            si(r.throughput_pps * (*size as f64 + 20.0) * 8.0),
            r.trials.len()
        );
    }
    if let Some(path) = &a.json {
        let v: Vec<Value> = results
            .iter()
            .map(|(size, r, offered)| {
                json!({
                    "frame_size": size,
                    "throughput_pps": r.throughput_pps,
                    "throughput_bps_l1": r.throughput_pps * (*size as f64 + 20.0) * 8.0,
                    "converged": r.converged,
                    "trials": r.trials.iter().zip(offered).map(|(t, o)| json!({
                        "pps": t.pps, "offered_pps": o.1, "sent": t.outcome.sent,
                        "lost": t.outcome.lost, "pass": t.pass,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = json!({
            "rfc2544": {
                "max_pps": params.max_pps, "trial_s": params.trial.as_secs_f64(),
                "resolution": params.resolution, "loss_ratio": params.loss_ratio,
                "results": v,
            }
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
