//! The `http` application on a lcore: an [`HttpSession`] per TCP connection, driven by the
//! same-core socket callbacks ([`TcpApp`]). Sessions are recycled through a free list, so
//! after the first `max_connections` connections nothing is allocated.
//!
//! [`HttpSession`]: super::HttpSession

use std::sync::Arc;

use super::conn::{drive, SessionTable};
use super::session::{HttpLimits, HttpStats};
use super::site::{DateLine, Site};
use crate::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

/// The HTTP server of one lcore.
pub struct HttpServer {
    site: Arc<Site>,
    date: DateLine,
    /// Sessions by connection slot.
    sessions: SessionTable,
    stats: HttpStats,
}

impl HttpServer {
    /// A server for `site` with room for `max_connections` sessions (allocated as they are
    /// first needed, then reused).
    pub fn new(site: Arc<Site>, limits: HttpLimits, max_connections: usize) -> HttpServer {
        HttpServer {
            site,
            date: DateLine::now(),
            sessions: SessionTable::new(limits, max_connections),
            stats: HttpStats::default(),
        }
    }

    /// This lcore's counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// Runs the connection's session; closes when the session or the peer is done.
    fn pump(&mut self, s: &mut TcpSocket<'_>) {
        let key = s.id().slot() as usize;
        let Some(idx) = self.sessions.of(key) else {
            return;
        };
        let sess = self.sessions.get_mut(idx);
        if drive(sess, &self.site, &self.date, &mut self.stats, s) {
            s.close();
            self.sessions.close(key);
        }
    }
}

impl TcpApp for HttpServer {
    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        self.stats.counters(out);
    }

    fn on_accept(&mut self, s: &mut TcpSocket<'_>) {
        if self.sessions.open(s.id().slot() as usize).is_none() {
            // More connections than sessions (cannot happen while max_connections bounds
            // the table): refuse rather than queue unbounded state.
            s.abort();
            return;
        }
        self.pump(s);
    }

    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }

    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }

    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }

    fn on_close(&mut self, id: SockId, _reason: CloseReason) {
        self.sessions.close(id.slot() as usize);
    }

    fn poll(&mut self, _ctl: &mut TcpControl<'_>) {
        self.date.refresh();
    }
}
