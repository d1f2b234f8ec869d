//! The `http` application on an app lcore (`app_lcores`): the same [`HttpSession`]s as
//! [`HttpServer`](super::HttpServer), driven by the events of an [`XcoreEndpoint`] instead
//! of same-core socket callbacks. The connections stay on the stack lcores; requests and
//! responses cross in mbufs through the endpoint's rings and credits, so a response larger
//! than the send credit is written as credit returns ([`XEvent::Writable`]), and a client
//! that pipelines more than the session queues waits in the receive window.
//!
//! [`HttpSession`]: super::HttpSession

use std::sync::Arc;

use super::conn::{drive, EndpointStream, SessionTable};
use super::session::{HttpLimits, HttpStats};
use super::site::{DateLine, Site};
use crate::stack::tcp::xcore::{XEvent, XSock, XcoreApp, XcoreEndpoint};

/// The HTTP server of one app lcore, over every stack lcore it is linked to.
pub struct XcoreHttp {
    site: Arc<Site>,
    date: DateLine,
    /// Sockets per link (the stack's `max_connections`): keys are `link * per_link + slot`.
    per_link: usize,
    sessions: SessionTable,
    stats: HttpStats,
}

impl XcoreHttp {
    /// A server for `site` over `links` stack lcores of `max_sockets` connections each
    /// (sessions are allocated as first needed, then reused).
    pub fn new(site: Arc<Site>, limits: HttpLimits, links: usize, max_sockets: usize) -> Self {
        let per_link = max_sockets.max(1);
        XcoreHttp {
            site,
            date: DateLine::now(),
            per_link,
            sessions: SessionTable::new(limits, links.max(1) * per_link),
            stats: HttpStats::default(),
        }
    }

    /// This app lcore's counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    fn key(&self, sock: XSock) -> usize {
        sock.link() * self.per_link + sock.slot()
    }

    /// Runs the socket's session; closes when the session or the peer is done.
    fn pump(&mut self, ep: &mut XcoreEndpoint, sock: XSock) {
        let key = self.key(sock);
        let Some(idx) = self.sessions.of(key) else {
            return;
        };
        let sess = self.sessions.get_mut(idx);
        let mut stream = EndpointStream { ep: &mut *ep, sock };
        if drive(sess, &self.site, &self.date, &mut self.stats, &mut stream) {
            ep.close(sock);
            self.sessions.close(key);
        }
    }
}

impl XcoreApp for XcoreHttp {
    fn on_event(&mut self, ep: &mut XcoreEndpoint, ev: XEvent) {
        match ev {
            XEvent::Accepted { sock, .. } => {
                if self.sessions.open(self.key(sock)).is_none() {
                    // A slot beyond the table (the stack has more sockets than it said).
                    ep.abort(sock);
                    return;
                }
                self.pump(ep, sock);
            }
            XEvent::Readable { sock } | XEvent::Writable { sock } | XEvent::PeerClosed { sock } => {
                self.pump(ep, sock)
            }
            XEvent::Closed { sock, .. } => self.sessions.close(self.key(sock)),
            // A server opens no connections.
            XEvent::Connected { sock, .. } => ep.abort(sock),
            XEvent::ConnectFailed { .. } => {}
        }
    }

    fn poll(&mut self, _ep: &mut XcoreEndpoint) {
        self.date.refresh();
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        self.stats.counters(out);
    }
}
