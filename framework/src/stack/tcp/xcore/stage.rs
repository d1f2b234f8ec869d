//! Running an application on an app lcore: the [`XcoreApp`] trait, the [`Stage`] that polls
//! an endpoint for it, and the echo service as an app-lcore application.

use std::sync::Arc;

use super::{EndpointStats, XEvent, XSock, XcoreEndpoint};
use crate::graph::GraphMonitor;
use crate::runtime::tsc::rdtsc;
use crate::runtime::{LcoreIo, Stage};

/// The node name an app lcore's counters are reported under (calls: turns that handled
/// events, packets: events, events: the endpoint's and the application's counters).
pub const XCORE_APP_NODE: &str = "xcore-app";

/// The endpoint counters of an app lcore, as events of [`XCORE_APP_NODE`].
const ENDPOINT_EVENTS: [&str; 6] = [
    "ep_events",
    "ep_rx_bytes",
    "ep_tx_bytes",
    "ep_ring_full",
    "ep_no_mbuf",
    "ep_stale_events",
];

/// An application on an app lcore: it gets every event of its sockets and works through the
/// endpoint. Runs on its own thread, so it may take its time (not block forever, though: the
/// loop also returns read credit and closes).
pub trait XcoreApp: Send {
    /// One event from a stack lcore.
    fn on_event(&mut self, ep: &mut XcoreEndpoint, ev: XEvent);
    /// Called once per loop turn before the events (open connections, timers).
    fn poll(&mut self, _ep: &mut XcoreEndpoint) {}
    /// The application's own counters, cumulative, always the same names in the same order
    /// (like [`TcpApp::counters`](crate::stack::tcp::TcpApp::counters)); the stage reports
    /// them as events of its [`XCORE_APP_NODE`] node.
    fn counters(&self, _out: &mut dyn FnMut(&'static str, u64)) {}
}

/// The [`Stage`] of an app lcore: no queues, only the endpoint and the application. Its
/// counters are a one-node [`GraphMonitor`] ([`XCORE_APP_NODE`]).
pub struct XcoreStage {
    ep: XcoreEndpoint,
    app: Box<dyn XcoreApp>,
    /// Most events handled per turn (then the turn ends, commands are flushed).
    budget: usize,
    work: usize,
    monitor: GraphMonitor,
    ep_stats: Arc<EndpointStats>,
}

impl XcoreStage {
    /// A stage running `app` over `ep`.
    pub fn new(ep: XcoreEndpoint, app: Box<dyn XcoreApp>) -> Self {
        let mut events: Vec<&'static str> = ENDPOINT_EVENTS.to_vec();
        app.counters(&mut |name, _| events.push(name));
        XcoreStage {
            ep_stats: ep.stats(),
            ep,
            app,
            budget: 1024,
            work: 0,
            monitor: GraphMonitor::single_node(XCORE_APP_NODE, &events),
        }
    }

    /// The endpoint (counters, tests).
    pub fn endpoint(&self) -> &XcoreEndpoint {
        &self.ep
    }

    /// One turn: the app's poll, up to a budget of events, then the commands out. Returns
    /// the events handled.
    pub fn turn(&mut self) -> usize {
        let t0 = rdtsc();
        self.app.poll(&mut self.ep);
        let mut n = 0;
        while n < self.budget {
            let Some(ev) = self.ep.poll_event() else {
                break;
            };
            self.app.on_event(&mut self.ep, ev);
            n += 1;
        }
        self.ep.flush();
        if n > 0 {
            if let Some(c) = self.monitor.node_counters(0) {
                c.calls.add(1);
                c.packets.add(n as u64);
                c.cycles.add(rdtsc().wrapping_sub(t0));
            }
            self.export();
        }
        n
    }

    /// Publishes the endpoint's and the application's counters (cumulative values).
    fn export(&self) {
        let st = &self.ep_stats;
        let ep = [
            st.events.get(),
            st.rx_bytes.get(),
            st.tx_bytes.get(),
            st.ring_full.get(),
            st.no_mbuf.get(),
            st.stale_events.get(),
        ];
        for (i, v) in ep.into_iter().enumerate() {
            if let Some(c) = self.monitor.event(i) {
                c.set(v);
            }
        }
        let mut i = ep.len();
        let monitor = &self.monitor;
        self.app.counters(&mut |_, v| {
            if let Some(c) = monitor.event(i) {
                c.set(v);
            }
            i += 1;
        });
    }
}

impl Stage for XcoreStage {
    fn process(&mut self, _rx_port: u16, _pkts: &mut crate::batch::Burst, _io: &mut LcoreIo) {}

    fn poll(&mut self, _io: &mut LcoreIo) {
        self.work += self.turn();
    }

    fn finish(&mut self, _io: &mut LcoreIo) {
        self.export();
    }

    fn take_work(&mut self) -> usize {
        std::mem::take(&mut self.work)
    }

    fn graph_monitor(&self) -> Option<GraphMonitor> {
        Some(self.monitor.clone())
    }
}

/// The echo service on an app lcore: every byte read goes back on the same socket. With the
/// send side full it stops reading (so the receive window closes) until `Writable`; after
/// the peer's FIN it closes once everything is echoed.
pub struct XcoreEcho {
    scratch: Box<[u8]>,
    /// Bytes echoed.
    pub bytes: u64,
}

impl XcoreEcho {
    /// An echo copying through a `scratch`-byte buffer (allocated once, here).
    pub fn new(scratch: usize) -> Self {
        XcoreEcho {
            scratch: vec![0; scratch.max(1)].into_boxed_slice(),
            bytes: 0,
        }
    }

    fn pump(&mut self, ep: &mut XcoreEndpoint, sock: XSock) {
        loop {
            let d = ep.peek(sock);
            if d.is_empty() {
                break;
            }
            let n = d.len().min(self.scratch.len());
            self.scratch[..n].copy_from_slice(&d[..n]);
            let w = ep.write(sock, &self.scratch[..n]);
            ep.consume(sock, w);
            self.bytes += w as u64;
            if w < n {
                return; // Writable continues
            }
        }
        if ep.is_read_closed(sock) {
            ep.close(sock);
        }
    }
}

impl Default for XcoreEcho {
    fn default() -> Self {
        Self::new(16 * 1024)
    }
}

impl XcoreApp for XcoreEcho {
    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("echo_bytes", self.bytes);
    }

    fn on_event(&mut self, ep: &mut XcoreEndpoint, ev: XEvent) {
        match ev {
            XEvent::Readable { sock } | XEvent::Writable { sock } | XEvent::PeerClosed { sock } => {
                self.pump(ep, sock)
            }
            _ => {}
        }
    }
}
