//! Running an application on an app lcore: the [`XcoreApp`] trait, the [`Stage`] that polls
//! an endpoint for it, and the echo service as an app-lcore application.

use super::{XEvent, XSock, XcoreEndpoint};
use crate::runtime::{LcoreIo, Stage};

/// An application on an app lcore: it gets every event of its sockets and works through the
/// endpoint. Runs on its own thread, so it may take its time (not block forever, though: the
/// loop also returns read credit and closes).
pub trait XcoreApp: Send {
    /// One event from a stack lcore.
    fn on_event(&mut self, ep: &mut XcoreEndpoint, ev: XEvent);
    /// Called once per loop turn before the events (open connections, timers).
    fn poll(&mut self, _ep: &mut XcoreEndpoint) {}
}

/// The [`Stage`] of an app lcore: no queues, only the endpoint and the application.
pub struct XcoreStage {
    ep: XcoreEndpoint,
    app: Box<dyn XcoreApp>,
    /// Most events handled per turn (then the turn ends, commands are flushed).
    budget: usize,
    work: usize,
}

impl XcoreStage {
    /// A stage running `app` over `ep`.
    pub fn new(ep: XcoreEndpoint, app: Box<dyn XcoreApp>) -> Self {
        XcoreStage {
            ep,
            app,
            budget: 1024,
            work: 0,
        }
    }

    /// The endpoint (counters, tests).
    pub fn endpoint(&self) -> &XcoreEndpoint {
        &self.ep
    }

    /// One turn: the app's poll, up to a budget of events, then the commands out. Returns
    /// the events handled.
    pub fn turn(&mut self) -> usize {
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
        n
    }
}

impl Stage for XcoreStage {
    fn process(&mut self, _rx_port: u16, _pkts: &mut crate::batch::Burst, _io: &mut LcoreIo) {}

    fn poll(&mut self, _io: &mut LcoreIo) {
        self.work += self.turn();
    }

    fn take_work(&mut self) -> usize {
        std::mem::take(&mut self.work)
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
    fn on_event(&mut self, ep: &mut XcoreEndpoint, ev: XEvent) {
        match ev {
            XEvent::Readable { sock } | XEvent::Writable { sock } | XEvent::PeerClosed { sock } => {
                self.pump(ep, sock)
            }
            _ => {}
        }
    }
}
