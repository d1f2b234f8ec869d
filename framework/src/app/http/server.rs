//! The `http` application on a lcore: an [`HttpSession`] per TCP connection, driven by the
//! same-core socket callbacks ([`TcpApp`]). Sessions are recycled through a free list, so
//! after the first `max_connections` connections nothing is allocated.

use std::sync::Arc;

use super::session::{Flush, HttpLimits, HttpSession, HttpStats};
use super::site::{DateLine, Site};
use crate::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

/// Rounds of feed-and-write per callback (bounds the work of one callback).
const ROUNDS: usize = 64;

/// The HTTP server of one lcore.
pub struct HttpServer {
    site: Arc<Site>,
    limits: HttpLimits,
    date: DateLine,
    sessions: Vec<HttpSession>,
    free: Vec<u32>,
    /// Session (+1) of each connection slot; 0 for none.
    by_slot: Vec<u32>,
    stats: HttpStats,
}

impl HttpServer {
    /// A server for `site` with room for `max_connections` sessions (allocated as they are
    /// first needed, then reused).
    pub fn new(site: Arc<Site>, limits: HttpLimits, max_connections: usize) -> HttpServer {
        HttpServer {
            site,
            limits,
            date: DateLine::now(),
            sessions: Vec::with_capacity(max_connections),
            free: Vec::with_capacity(max_connections),
            by_slot: vec![0; max_connections],
            stats: HttpStats::default(),
        }
    }

    /// This lcore's counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    fn session_of(&self, s: &TcpSocket<'_>) -> Option<usize> {
        let u = s.user();
        (u != 0).then(|| (u - 1) as usize)
    }

    fn release(&mut self, slot: u32, idx: usize) {
        if let Some(b) = self.by_slot.get_mut(slot as usize) {
            *b = 0;
        }
        self.free.push(idx as u32);
    }

    /// Feeds received bytes to the session and writes its responses, until the socket blocks
    /// or nothing is left; closes when the session or the peer is done.
    fn pump(&mut self, s: &mut TcpSocket<'_>) {
        let Some(idx) = self.session_of(s) else {
            return;
        };
        let HttpServer {
            site,
            date,
            sessions,
            stats,
            ..
        } = self;
        let sess = &mut sessions[idx];
        let mut close = false;
        for _ in 0..ROUNDS {
            let mut fed_all = true;
            loop {
                let took = {
                    let [a, _] = s.peek();
                    if a.is_empty() {
                        break;
                    }
                    let took = sess.receive(site, a, stats);
                    fed_all = took == a.len();
                    took
                };
                s.consume(took);
                if !fed_all {
                    break;
                }
            }
            match sess.write(site, date, stats, |b| s.write(b)) {
                Flush::Blocked => break,
                Flush::Close => {
                    close = true;
                    break;
                }
                Flush::Idle if fed_all => break,
                Flush::Idle => {}
            }
        }
        let peer_done = s.is_read_closed() && s.available() == 0 && sess.queued() == 0;
        if close || peer_done {
            // Discard what the client pipelined after a closing response, so the close is a
            // FIN after the response and not a reset.
            loop {
                let n = s.peek()[0].len();
                if n == 0 {
                    break;
                }
                s.consume(n);
            }
            s.close();
            self.release(s.id().slot(), idx);
        }
    }
}

impl TcpApp for HttpServer {
    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        let st = &self.stats;
        out("http_requests", st.requests);
        out("http_2xx", st.status_2xx);
        out("http_4xx", st.status_4xx);
        out("http_5xx", st.status_5xx);
        out("http_malformed", st.malformed);
        out("http_bytes_out", st.bytes_out);
    }

    fn on_accept(&mut self, s: &mut TcpSocket<'_>) {
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None if self.sessions.len() < self.by_slot.len() => {
                self.sessions.push(HttpSession::new(self.limits));
                self.sessions.len() - 1
            }
            None => {
                // More connections than sessions (cannot happen while max_connections bounds
                // the table): refuse rather than queue unbounded state.
                s.abort();
                return;
            }
        };
        self.sessions[idx].reset();
        if let Some(b) = self.by_slot.get_mut(s.id().slot() as usize) {
            *b = idx as u32 + 1;
        }
        s.set_user(idx as u64 + 1);
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
        let slot = id.slot() as usize;
        if let Some(&b) = self.by_slot.get(slot) {
            if b != 0 {
                self.release(id.slot(), b as usize - 1);
            }
        }
    }

    fn poll(&mut self, _ctl: &mut TcpControl<'_>) {
        self.date.refresh();
    }
}
