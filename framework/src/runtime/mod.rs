//! The runtime: builds pools, ports and lcores from a [`Config`], runs one pinned thread per
//! lcore, and stops them cleanly.
//!
//! Each lcore owns the rx and tx queues the config gives it and runs the loop in [`lcore`]. The
//! main thread only reads counters (stats line, metrics) and waits for a stop request.

mod build;
pub mod idle;
mod io;
pub mod lcore;
pub mod tsc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

pub use build::RuntimeError;
pub use idle::{IdlePolicy, Idler};
pub use io::{
    DropCounters, DropReason, LcoreIo, DROP_NO_TX_QUEUE, DROP_TX_FULL, DROP_UNHANDLED,
    MAX_DROP_REASONS,
};
pub use lcore::{Lcore, LcoreCounters, LcoreMonitor, Stage};

use crate::config::Config;
use crate::graph::TraceControl;
use crate::mem::Mempool;
use crate::port::Port;
use crate::stats::{Snapshot, StatsSource};

/// A data plane built from a config, not yet running.
pub struct Runtime {
    pools: Vec<Mempool>,
    ports: Vec<Box<dyn Port>>,
    lcores: Vec<Lcore>,
    trace: Option<Arc<TraceControl>>,
    pktgen: Option<Arc<crate::app::pktgen::PktgenShared>>,
}

impl Runtime {
    /// Creates pools and ports, takes each lcore's queues and builds its stage.
    pub fn from_config(cfg: &Config) -> Result<Runtime, RuntimeError> {
        build::build(cfg)
    }

    /// Assembles a runtime from parts built by hand (tests, embedding).
    pub fn from_parts(pools: Vec<Mempool>, ports: Vec<Box<dyn Port>>, lcores: Vec<Lcore>) -> Self {
        Runtime {
            pools,
            ports,
            lcores,
            trace: None,
            pktgen: None,
        }
    }

    /// The generator's shared state when the app is `pktgen`.
    pub fn pktgen(&self) -> Option<&Arc<crate::app::pktgen::PktgenShared>> {
        self.pktgen.as_ref()
    }

    /// Takes the lcores out (tests that drive them on the calling thread); the pools and ports
    /// stay owned by the runtime.
    pub fn take_lcores(&mut self) -> Vec<Lcore> {
        std::mem::take(&mut self.lcores)
    }

    /// Starts one thread per lcore. Each registers its lcore id (for mempool caches), pins
    /// itself to its CPU if one is configured, and polls until [`Running::stop`].
    pub fn start(self) -> Result<Running, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let monitors: Vec<LcoreMonitor> = self.lcores.iter().map(|l| l.monitor()).collect();
        let ports: Vec<Arc<dyn Port>> = self.ports.into_iter().map(Arc::from).collect();
        let mut threads = Vec::new();
        for mut lc in self.lcores {
            let stop = stop.clone();
            let id = lc.id();
            let cpu = lc.monitor().cpu;
            let h = std::thread::Builder::new()
                .name(format!("lcore-{id}"))
                .spawn(move || -> Result<(), String> {
                    let _guard = crate::lcore::register(id as usize).map_err(|e| e.to_string())?;
                    if let Some(cpu) = cpu {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                            eprintln!("warning: lcore {id}: could not pin to cpu {cpu}");
                        }
                    }
                    idle::set_fine_timer_slack();
                    lc.run(&stop);
                    Ok(())
                })
                .map_err(|e| RuntimeError::Thread(e.to_string()))?;
            threads.push(h);
        }
        Ok(Running {
            stop,
            threads,
            shared: Arc::new(Shared {
                started: Instant::now(),
                ports,
                lcores: monitors,
                pools: self.pools,
                trace: self.trace.clone(),
            }),
            trace: self.trace,
            pktgen: self.pktgen,
        })
    }
}

struct Shared {
    started: Instant,
    ports: Vec<Arc<dyn Port>>,
    lcores: Vec<LcoreMonitor>,
    pools: Vec<Mempool>,
    trace: Option<Arc<TraceControl>>,
}

impl StatsSource for Shared {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            uptime_secs: self.started.elapsed().as_secs_f64(),
            tsc_hz: tsc::tsc_hz(),
            ports: self
                .ports
                .iter()
                .map(|p| (p.info().clone(), p.stats()))
                .collect(),
            lcores: self.lcores.iter().map(|l| l.stats()).collect(),
            pools: self.pools.iter().map(|p| p.stats()).collect(),
        }
    }

    fn trace(&self) -> Option<Arc<TraceControl>> {
        self.trace.clone()
    }
}

/// A running data plane.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), String>>>,
    shared: Arc<Shared>,
    trace: Option<Arc<TraceControl>>,
    pktgen: Option<Arc<crate::app::pktgen::PktgenShared>>,
}

impl Running {
    /// The flag that stops every lcore when set (share it with signal handlers).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Asks every lcore to finish its turn, flush and exit.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once a stop was requested.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// True if an lcore thread has exited (normally only after a stop).
    pub fn any_lcore_exited(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }

    /// True when every port that is polled for receive will never receive again (all finite
    /// sources such as non-looping pcap files are exhausted).
    pub fn all_rx_finished(&self) -> bool {
        let mut any = false;
        for p in &self.shared.ports {
            if p.info().rx_queues > 0 {
                if !p.rx_finished() {
                    return false;
                }
                any = true;
            }
        }
        any
    }

    /// The generator's shared state when the app is `pktgen`.
    pub fn pktgen(&self) -> Option<&Arc<crate::app::pktgen::PktgenShared>> {
        self.pktgen.as_ref()
    }

    /// The packet trace control of graph apps (arm it, read the trace).
    pub fn trace(&self) -> Option<&Arc<TraceControl>> {
        self.trace.as_ref()
    }

    /// A stats source for the stats line and the metrics endpoint.
    pub fn stats_source(&self) -> Arc<dyn StatsSource> {
        self.shared.clone()
    }

    /// Reads every counter now.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// Stops (if not already) and waits for every lcore; returns the final snapshot.
    pub fn join(self) -> Result<Snapshot, RuntimeError> {
        self.stop();
        let mut errors = Vec::new();
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push("an lcore thread panicked".to_string()),
            }
        }
        let snap = self.shared.snapshot();
        if errors.is_empty() {
            Ok(snap)
        } else {
            Err(RuntimeError::Thread(errors.join("; ")))
        }
    }
}
