//! One lcore: the run-to-completion poll loop over the queues it owns.
//!
//! ```text
//! loop {
//!     for each rx queue:  n = rx_burst(queue, burst); stage.process(port, burst, io)
//!     stage.poll(io)            // timers, app work
//!     io.flush()                // buffered packets out with tx_burst
//!     idle policy               // spin, or back off to short sleeps when nothing arrives
//! }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::idle::{IdlePolicy, Idler};
use super::io::{DropCounters, LcoreIo, DROP_UNHANDLED};
use super::tsc::rdtsc;
use crate::batch::Burst;
use crate::counter::Counter;
use crate::graph::GraphMonitor;
use crate::port::RxQueue;
use crate::stats::LcoreStats;

/// The packet-processing logic an lcore runs: one instance per lcore, never shared.
pub trait Stage: Send {
    /// Called once on the lcore's thread before the first turn (register drop reasons here).
    fn init(&mut self, _io: &mut LcoreIo) {}

    /// Handles a burst received on port `rx_port`. The stage takes what it wants out of `pkts`
    /// (sending or dropping); anything left is dropped and counted as `unhandled`.
    fn process(&mut self, rx_port: u16, pkts: &mut Burst, io: &mut LcoreIo);

    /// Called once per turn after the receive queues (timers, application work).
    fn poll(&mut self, _io: &mut LcoreIo) {}

    /// Called once on the lcore's thread after the last turn, before the final flush (publish
    /// final results, hand back buffered packets).
    fn finish(&mut self, _io: &mut LcoreIo) {}

    /// Work done since the last call besides received and sent packets (events or commands
    /// moved through rings), so the idle policy does not back off while it happens.
    fn take_work(&mut self) -> usize {
        0
    }

    /// Per-node counters, for stages that run a packet graph.
    fn graph_monitor(&self) -> Option<GraphMonitor> {
        None
    }
}

/// Loop counters of one lcore (single writer: the lcore).
#[derive(Debug, Default)]
pub struct LcoreCounters {
    /// Loop turns.
    pub turns: Counter,
    /// Turns that received packets.
    pub busy_turns: Counter,
    /// Packets received.
    pub rx_packets: Counter,
    /// Packets accepted by transmit queues.
    pub tx_packets: Counter,
    /// Idle sleeps.
    pub idle_sleeps: Counter,
    /// Idle sleeps that a packet ended early (see [`RxQueue::wake_fd`]).
    pub idle_wakeups: Counter,
    /// Cycles in busy turns.
    pub busy_cycles: Counter,
    /// Cycles since the loop started.
    pub total_cycles: Counter,
}

/// Read side of an lcore's counters, kept by the runtime for stats.
#[derive(Debug, Clone)]
pub struct LcoreMonitor {
    /// Lcore id.
    pub id: u32,
    /// Pinned CPU.
    pub cpu: Option<usize>,
    /// Loop counters.
    pub counters: Arc<LcoreCounters>,
    /// Drops by reason.
    pub drops: Arc<DropCounters>,
    /// Node counters when the stage is a graph.
    pub graph: Option<GraphMonitor>,
}

impl LcoreMonitor {
    /// Reads the counters now.
    pub fn stats(&self) -> LcoreStats {
        let c = &self.counters;
        LcoreStats {
            id: self.id,
            cpu: self.cpu,
            turns: c.turns.get(),
            busy_turns: c.busy_turns.get(),
            rx_packets: c.rx_packets.get(),
            tx_packets: c.tx_packets.get(),
            idle_sleeps: c.idle_sleeps.get(),
            idle_wakeups: c.idle_wakeups.get(),
            busy_cycles: c.busy_cycles.get(),
            total_cycles: c.total_cycles.get(),
            drops: self.drops.snapshot(),
            nodes: self.graph.as_ref().map(|g| g.stats()).unwrap_or_default(),
        }
    }
}

/// An lcore ready to run: its queues, its stage, its io context.
pub struct Lcore {
    id: u32,
    cpu: Option<usize>,
    rx: Vec<(u16, Box<dyn RxQueue>)>,
    io: LcoreIo,
    stage: Box<dyn Stage>,
    burst_size: usize,
    idle: Idler,
    counters: Arc<LcoreCounters>,
    burst: Burst,
    initialised: bool,
    last_tsc: u64,
    last_busy: bool,
    /// The rx queues' wake descriptors, when every queue has one ([`RxQueue::wake_fd`]):
    /// idle sleeps then end at the first packet.
    wake: Vec<libc::pollfd>,
}

impl Lcore {
    /// Assembles an lcore. `rx` lists (port id, queue) pairs it polls in order.
    pub fn new(
        id: u32,
        cpu: Option<usize>,
        rx: Vec<(u16, Box<dyn RxQueue>)>,
        io: LcoreIo,
        stage: Box<dyn Stage>,
        burst_size: usize,
        idle: IdlePolicy,
    ) -> Self {
        Lcore {
            id,
            cpu,
            rx,
            io,
            stage,
            burst_size: burst_size.clamp(1, crate::BURST_MAX),
            idle: Idler::new(idle),
            counters: Arc::new(LcoreCounters::default()),
            burst: Burst::new(),
            initialised: false,
            last_tsc: 0,
            last_busy: false,
            wake: Vec::new(),
        }
    }

    /// Lcore id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// A handle for reading this lcore's counters from another thread.
    pub fn monitor(&self) -> LcoreMonitor {
        LcoreMonitor {
            id: self.id,
            cpu: self.cpu,
            counters: self.counters.clone(),
            drops: self.io.drop_counters(),
            graph: self.stage.graph_monitor(),
        }
    }

    fn ensure_init(&mut self) {
        if !self.initialised {
            let fds: Option<Vec<_>> = self.rx.iter().map(|(_, q)| q.wake_fd()).collect();
            self.wake = fds
                .unwrap_or_default()
                .into_iter()
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            self.stage.init(&mut self.io);
            self.initialised = true;
            self.last_tsc = rdtsc();
        }
    }

    /// One turn of the loop; returns the packets received.
    #[inline]
    pub fn turn(&mut self) -> usize {
        let now = rdtsc();
        let dt = now.wrapping_sub(self.last_tsc);
        self.last_tsc = now;
        let c = &*self.counters;
        c.total_cycles.add(dt);
        if self.last_busy {
            c.busy_cycles.add(dt);
        }
        let mut got = 0;
        for (port, q) in self.rx.iter_mut() {
            let n = q.rx_burst(&mut self.burst, self.burst_size);
            if n == 0 {
                continue;
            }
            got += n;
            self.stage.process(*port, &mut self.burst, &mut self.io);
            if !self.burst.is_empty() {
                self.io.drop_burst(DROP_UNHANDLED, &mut self.burst);
            }
        }
        self.stage.poll(&mut self.io);
        self.io.flush();
        c.turns.add(1);
        if got > 0 {
            c.busy_turns.add(1);
            c.rx_packets.add(got as u64);
        }
        c.tx_packets.set(self.io.tx_packets());
        self.last_busy = got > 0;
        got
    }

    /// Runs `turns` turns on the calling thread without idling (tests and benchmarks).
    pub fn run_turns(&mut self, turns: u64) -> u64 {
        self.ensure_init();
        let mut pkts = 0;
        for _ in 0..turns {
            pkts += self.turn() as u64;
        }
        pkts
    }

    /// Runs until `stop` becomes true, applying the idle policy; flushes everything on exit.
    pub fn run(&mut self, stop: &AtomicBool) {
        self.ensure_init();
        while !stop.load(Ordering::Relaxed) {
            let tx_before = self.io.tx_packets();
            let got = self.turn();
            if got == 0 {
                // Nothing arrived: a good moment for drivers to push out what they still
                // buffer (a file writer, a kick that failed earlier).
                self.io.flush_drivers();
            }
            // A turn that transmitted (a generator, timers) is busy too: no back-off then.
            let work = got + (self.io.tx_packets() - tx_before) as usize + self.stage.take_work();
            let (idle, wake, counters) = (&mut self.idle, &mut self.wake, &*self.counters);
            let slept = idle.after_turn_with(work, |d| {
                if wait_for_packets(wake, d) {
                    counters.idle_wakeups.add(1);
                }
            });
            if slept {
                counters.idle_sleeps.add(1);
            }
        }
        self.finish();
    }

    /// Ends the run: lets the stage finish ([`Stage::finish`]) and flushes every queue. Called
    /// by [`Lcore::run`]; tests that drive [`Lcore::run_turns`] call it themselves.
    pub fn finish(&mut self) {
        self.ensure_init();
        self.stage.finish(&mut self.io);
        self.io.flush_drivers();
        self.counters.tx_packets.set(self.io.tx_packets());
    }
}

/// Sleeps up to `d`, or until one of `fds` polls readable when there are any; true when a
/// packet ended the sleep early. No allocation: one `ppoll` (or `nanosleep`) call.
fn wait_for_packets(fds: &mut [libc::pollfd], d: std::time::Duration) -> bool {
    if fds.is_empty() {
        std::thread::sleep(d);
        return false;
    }
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs and
    // `ts` outlives the call; a null signal mask leaves the mask alone.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    n > 0
}
