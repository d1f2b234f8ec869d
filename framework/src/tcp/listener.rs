//! The LISTEN state: turning SYNs into connections, with a bounded backlog.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::config::{BacklogFullPolicy, TcpConfig};
use super::conn::{Connection, State};
use super::isn::IsnGenerator;
use super::segment::{reset_for, TcpHeader, TcpSegment, Transmit};
use crate::wire::TcpFlags;

/// Listener counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// SYNs that created a connection.
    pub syns_accepted: u64,
    /// SYNs dropped because the backlog was full.
    pub syns_dropped_backlog_full: u64,
    /// Connections handed to the application by [`Listener::accept`].
    pub accepted: u64,
    /// Pending connections that ended before being accepted (reset, timed out).
    pub pending_failed: u64,
    /// Resets sent for stray segments (an ACK with no pending connection).
    pub resets_sent: u64,
    /// Replies dropped because the reply queue was full.
    pub replies_dropped: u64,
    /// Segments ignored (a RST, or neither SYN nor ACK).
    pub ignored: u64,
}

/// Most queued replies (resets) a listener holds before dropping more.
const REPLY_QUEUE: usize = 16;

/// A passive open: receives segments for a local port that match no connection, creates
/// connections from SYNs, and holds them — in SYN-RECEIVED, then ESTABLISHED until
/// [`accept`](Self::accept)ed — up to `backlog` at a time (Linux keeps two queues, the SYN
/// queue and the accept queue; here one bound covers both).
///
/// The glue routes a segment to the listener of its destination port when no connection
/// has its 4-tuple; segments for pending connections go through the listener too
/// ([`on_segment`](Self::on_segment) finds them), so a connection is in exactly one place.
/// Drive it like a connection: [`poll_transmit`](Self::poll_transmit),
/// [`next_timer`](Self::next_timer), [`on_timer`](Self::on_timer).
#[derive(Debug)]
pub struct Listener {
    cfg: TcpConfig,
    isn: IsnGenerator,
    local: SocketAddrV4,
    backlog: usize,
    pending: Vec<Connection>,
    replies: Vec<(Ipv4Addr, Ipv4Addr, TcpHeader)>,
    stats: ListenerStats,
}

impl Listener {
    /// Listens on `local` (its address may be 0.0.0.0: each connection then takes the
    /// destination address of its SYN) with room for `backlog` pending connections.
    pub fn new(cfg: &TcpConfig, isn: IsnGenerator, local: SocketAddrV4, backlog: usize) -> Self {
        Listener {
            cfg: *cfg,
            isn,
            local,
            backlog,
            pending: Vec::with_capacity(backlog),
            replies: Vec::with_capacity(REPLY_QUEUE),
            stats: ListenerStats::default(),
        }
    }

    /// The local address and port.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// Counters.
    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Connections held (handshaking or waiting for [`accept`](Self::accept)).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The backlog bound.
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// Handles a segment from `src` to `dst` for the listening port.
    pub fn on_segment(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpSegment<'_>, now: u64) {
        let remote = SocketAddrV4::new(src, seg.src_port);
        if let Some(c) = self
            .pending
            .iter_mut()
            .find(|c| c.remote() == remote && *c.local().ip() == dst)
        {
            c.on_segment(seg, now);
            self.reap();
            return;
        }
        if seg.has(TcpFlags::RST) {
            self.stats.ignored += 1;
            return;
        }
        if seg.has(TcpFlags::ACK) {
            // No connection for this ACK: answer with a reset (RFC 9293 §3.10.7.2).
            // SYN cookies will validate such an ACK here first.
            self.reply(src, dst, seg);
            return;
        }
        if !seg.has(TcpFlags::SYN) {
            self.stats.ignored += 1;
            return;
        }
        if self.pending.len() >= self.backlog {
            self.backlog_full(src, dst, seg, now);
            return;
        }
        let local = SocketAddrV4::new(dst, self.local.port());
        if let Some(c) = Connection::accept_syn(&self.cfg, &self.isn, local, remote, seg, now) {
            self.stats.syns_accepted += 1;
            self.pending.push(c);
        }
    }

    /// The backlog-full hook. The only policy now is to drop (the peer retransmits its SYN);
    /// SYN cookies (RFC 4987 §3.6) will answer statelessly here instead.
    fn backlog_full(&mut self, _src: Ipv4Addr, _dst: Ipv4Addr, _seg: &TcpSegment<'_>, _now: u64) {
        match self.cfg.backlog_full {
            BacklogFullPolicy::Drop => self.stats.syns_dropped_backlog_full += 1,
        }
    }

    fn reply(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpSegment<'_>) {
        let Some(h) = reset_for(seg) else {
            return;
        };
        if self.replies.len() < REPLY_QUEUE {
            self.replies.push((dst, src, h));
            self.stats.resets_sent += 1;
        } else {
            self.stats.replies_dropped += 1;
        }
    }

    fn reap(&mut self) {
        let before = self.pending.len();
        self.pending.retain(|c| c.state() != State::Closed);
        self.stats.pending_failed += (before - self.pending.len()) as u64;
    }

    /// Takes the oldest connection whose handshake completed, if any. Its events
    /// ([`Event::Connected`](super::Event::Connected) first) are still pending on it.
    pub fn accept(&mut self) -> Option<Connection> {
        let i = self
            .pending
            .iter()
            .position(|c| c.state().is_synchronized())?;
        self.stats.accepted += 1;
        Some(self.pending.remove(i))
    }

    /// The next segment to send: queued resets first, then the pending connections'.
    pub fn poll_transmit(&mut self, now: u64) -> Option<Transmit<'_>> {
        if !self.replies.is_empty() {
            let (src_addr, dst_addr, header) = self.replies.remove(0);
            return Some(Transmit {
                src_addr,
                dst_addr,
                header,
                payload: [&[], &[]],
            });
        }
        for c in self.pending.iter_mut() {
            if let Some(t) = c.poll_transmit(now) {
                return Some(t);
            }
        }
        None
    }

    /// The earliest timer of the pending connections.
    pub fn next_timer(&self) -> Option<u64> {
        self.pending.iter().filter_map(Connection::next_timer).min()
    }

    /// Runs the pending connections' due timers and drops those that failed (SYN-ACK
    /// retries exhausted).
    pub fn on_timer(&mut self, now: u64) {
        for c in self.pending.iter_mut() {
            if c.next_timer().is_some_and(|t| t <= now) {
                c.on_timer(now);
            }
        }
        self.reap();
    }
}
