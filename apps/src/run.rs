//! `ferroplane run`: start the data plane, print a stats line per interval, stop cleanly.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferroplane::config::Config;
use ferroplane::metrics::MetricsServer;
use ferroplane::runtime::Runtime;

use crate::report;

/// Options from the command line.
pub struct Options {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Write final stats as JSON here.
    pub json: Option<PathBuf>,
    /// No per-interval stats line.
    pub quiet: bool,
    /// Trace this many packets (graph apps).
    pub trace: Option<u32>,
    /// Write the trace as Mermaid here.
    pub trace_mermaid: Option<PathBuf>,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    Signal,
    Duration,
    InputDone,
    LcoreExited,
}

pub fn run(cfg: &Config, opts: &Options) -> Result<(), String> {
    let rt = Runtime::from_config(cfg).map_err(|e| e.to_string())?;
    let running = rt.start().map_err(|e| e.to_string())?;
    let stop = running.stop_flag();
    let trace = running.trace().cloned();
    if let Some(n) = opts.trace {
        match &trace {
            Some(t) => t.arm(n, None),
            None => eprintln!("note: --trace needs a graph app (l3fwd, udp-echo); ignored"),
        }
    }
    // First SIGINT/SIGTERM: stop cleanly. A second one while stopping: exit at once.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let metrics = if cfg.metrics.enabled {
        let server =
            MetricsServer::start(cfg.metrics.listen, running.stats_source()).map_err(|e| {
                running.stop();
                format!(
                    "metrics.listen = \"{}\": cannot listen: {e} (choose another address or set \
                     metrics.enabled = false)",
                    cfg.metrics.listen
                )
            })?;
        eprintln!("metrics: http://{}/metrics", server.local_addr());
        Some(server)
    } else {
        None
    };
    eprintln!(
        "running {} lcore(s) on {} port(s){}; Ctrl-C to stop",
        cfg.lcores.len(),
        cfg.ports.len(),
        opts.duration
            .map(|d| format!(" for {}", report::fmt_duration(d)))
            .unwrap_or_default()
    );

    let start = Instant::now();
    let mut last = running.snapshot();
    let mut last_at = Instant::now();
    let cause = loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) {
            break StopCause::Signal;
        }
        if opts.duration.is_some_and(|d| start.elapsed() >= d) {
            break StopCause::Duration;
        }
        if running.all_rx_finished() {
            // Give the lcores a moment to push out what they already received.
            std::thread::sleep(Duration::from_millis(50));
            break StopCause::InputDone;
        }
        if running.any_lcore_exited() {
            break StopCause::LcoreExited;
        }
        if last_at.elapsed() >= cfg.run.stats_interval {
            let now = running.snapshot();
            if !opts.quiet {
                println!("{}", report::stats_line(&last, &now));
            }
            last = now;
            last_at = Instant::now();
        }
    };
    let elapsed = start.elapsed();
    running.stop();
    let fin = running.join().map_err(|e| e.to_string())?;
    drop(metrics);
    let why = match cause {
        StopCause::Signal => "signal",
        StopCause::Duration => "duration reached",
        StopCause::InputDone => "all input read",
        StopCause::LcoreExited => "an lcore exited",
    };
    println!("{}", report::final_report(&fin, elapsed, why));
    let runtime = ferroplane::stats::render_runtime(&fin);
    if !runtime.is_empty() {
        println!("{runtime}");
    }
    if let Some(t) = &trace {
        if opts.trace.is_some() || cfg.trace.is_some() {
            let text = t.to_text();
            println!(
                "== packet trace ==\n{}",
                if text.is_empty() {
                    "(no packets traced)\n"
                } else {
                    &text
                }
            );
            if let Some(path) = &opts.trace_mermaid {
                std::fs::write(path, t.to_mermaid())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, report::json(&fin, elapsed))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if cause == StopCause::LcoreExited {
        return Err("an lcore stopped unexpectedly".into());
    }
    Ok(())
}
