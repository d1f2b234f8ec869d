//! The LISTEN state: turning SYNs into connections, with a bounded backlog.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::config::{BacklogFullPolicy, TcpConfig};
use super::conn::{Connection, Spare, State, DEFAULT_MSS};
use super::cookie::{self, COOKIE_PERIOD};
use super::isn::IsnGenerator;
use super::segment::{reset_for, TcpHeader, TcpOptions, TcpSegment, Timestamps, Transmit};
use crate::wire::TcpFlags;

/// Listener counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// SYNs that created a connection.
    pub syns_accepted: u64,
    /// SYNs dropped because the backlog was full (policy `Drop`), and valid cookie ACKs
    /// dropped because the backlog was full of accepted-but-unclaimed connections.
    pub syns_dropped_backlog_full: u64,
    /// SYN-ACKs sent with a SYN cookie (backlog full, policy `SynCookies`).
    pub syn_cookies_sent: u64,
    /// Connections created from a valid cookie ACK.
    pub syn_cookies_accepted: u64,
    /// ACKs that failed cookie validation (forged, stale, malformed option bits) while
    /// cookies were in use; each is answered with a reset.
    pub syn_cookies_rejected: u64,
    /// Half-open (SYN-RECEIVED) connections dropped to make room for a cookie connection.
    pub pending_evicted: u64,
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
    /// Buffers of ended connections, for the next SYNs (at most `backlog`).
    spares: Vec<Spare>,
    replies: Vec<(Ipv4Addr, Ipv4Addr, TcpHeader)>,
    /// When the last cookie was sent: cookie ACKs are checked only for two periods after.
    last_cookie_at: Option<u64>,
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
            spares: Vec::with_capacity(backlog),
            replies: Vec::with_capacity(REPLY_QUEUE),
            last_cookie_at: None,
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

    /// Spare buffers held for the next SYNs.
    pub fn spares_len(&self) -> usize {
        self.spares.len()
    }

    /// Keeps `spare` for a future SYN; gives it back when `backlog` spares are held already.
    pub fn add_spare(&mut self, spare: Spare) -> Option<Spare> {
        if self.spares.len() >= self.backlog {
            return Some(spare);
        }
        self.spares.push(spare);
        None
    }

    /// Keeps the buffers of a connection that ended while pending.
    fn recycle(&mut self, c: Connection) {
        if self.spares.len() < self.backlog {
            self.spares.push(c.into_spare());
        }
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
            if !seg.has(TcpFlags::SYN) && self.cookies_recent(now) {
                if self.cookie_ack(src, dst, seg, now) {
                    return;
                }
                self.stats.syn_cookies_rejected += 1;
            }
            // No connection for this ACK: answer with a reset (RFC 9293 §3.10.7.2).
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
        let mut spare = self.spares.pop();
        let c =
            Connection::accept_syn_with(&self.cfg, &self.isn, local, remote, seg, now, &mut spare);
        if let Some(c) = c {
            self.stats.syns_accepted += 1;
            self.pending.push(c);
        }
        if let Some(s) = spare {
            self.spares.push(s);
        }
    }

    /// A SYN found the backlog full: drop it (the peer retransmits), or answer with a SYN
    /// cookie without keeping any state.
    fn backlog_full(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpSegment<'_>, now: u64) {
        match self.cfg.backlog_full {
            BacklogFullPolicy::Drop => self.stats.syns_dropped_backlog_full += 1,
            BacklogFullPolicy::SynCookies => self.send_cookie(src, dst, seg, now),
        }
    }

    fn cookies_recent(&self, now: u64) -> bool {
        self.cfg.backlog_full == BacklogFullPolicy::SynCookies
            && self
                .last_cookie_at
                .is_some_and(|t| now.saturating_sub(t) < 2 * COOKIE_PERIOD)
    }

    /// The stateless SYN-ACK (RFC 4987 §3.6): the ISN is the cookie; with timestamps the
    /// client's window scale and SACK-permitted ride in TSval; without, only MSS is offered.
    fn send_cookie(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpSegment<'_>, now: u64) {
        let local = SocketAddrV4::new(dst, self.local.port());
        let remote = SocketAddrV4::new(src, seg.src_port);
        let peer_mss = seg.options.mss.unwrap_or(DEFAULT_MSS);
        let iss = cookie::make_isn(
            &self.isn,
            local,
            remote,
            seg.seq,
            cookie::mss_index(peer_mss),
            now,
        );
        let mut options = TcpOptions {
            mss: Some(self.cfg.mss),
            ..Default::default()
        };
        if let (true, Some(ts)) = (self.cfg.timestamps, seg.options.timestamps) {
            let peer_ws = seg.options.wscale.filter(|_| self.cfg.window_scaling);
            let sack = self.cfg.sack && seg.options.sack_permitted;
            let clock = cookie::ts_now(&self.isn, local, remote, now);
            options.timestamps = Some(Timestamps {
                tsval: cookie::encode_tsval(clock, peer_ws, sack),
                tsecr: ts.tsval,
            });
            options.wscale = peer_ws.map(|_| self.cfg.wscale());
            options.sack_permitted = sack;
        }
        let header = TcpHeader {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: iss,
            ack: seg.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // A SYN's window is never scaled; the connection's receive ring will be empty.
            window: self.cfg.recv_buffer.min(0xffff) as u16,
            options,
        };
        self.last_cookie_at = Some(now);
        if self.replies.len() < REPLY_QUEUE {
            self.replies.push((dst, src, header));
            self.stats.syn_cookies_sent += 1;
        } else {
            self.stats.replies_dropped += 1;
        }
    }

    /// Validates an ACK as the third segment of a cookie handshake and, when genuine,
    /// creates the connection from it. False when it is not a valid cookie.
    fn cookie_ack(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpSegment<'_>, now: u64) -> bool {
        let local = SocketAddrV4::new(dst, self.local.port());
        let remote = SocketAddrV4::new(src, seg.src_port);
        let iss = seg.ack - 1;
        let irs = seg.seq - 1;
        let Some(mss) = cookie::check_isn(&self.isn, local, remote, irs, iss, now) else {
            return false;
        };
        let mut opts = TcpOptions {
            mss: Some(mss),
            ..Default::default()
        };
        if let (true, Some(ts)) = (self.cfg.timestamps, seg.options.timestamps) {
            let Some((wscale, sack)) = cookie::decode_tsecr(ts.tsecr) else {
                return false;
            };
            if (wscale.is_some() && !self.cfg.window_scaling) || (sack && !self.cfg.sack) {
                return false;
            }
            opts.wscale = wscale;
            opts.sack_permitted = sack;
            opts.timestamps = Some(Timestamps {
                tsval: ts.tsval,
                tsecr: 0,
            });
        }
        let mut spare = self.spares.pop();
        let c = Connection::from_cookie(
            &self.cfg, &self.isn, local, remote, iss, irs, opts, now, &mut spare,
        );
        if let Some(s) = spare {
            self.spares.push(s);
        }
        let Some(mut c) = c else {
            return false;
        };
        c.on_segment(seg, now);
        if !c.state().is_synchronized() {
            self.recycle(c);
            return false;
        }
        if self.pending.len() >= self.backlog {
            // Make room by dropping the oldest half-open connection: under a flood those
            // are the attacker's (a genuine client whose entry goes gets a reset for its
            // ACK, as its ISN is no cookie).
            match self
                .pending
                .iter()
                .position(|p| p.state() == State::SynReceived)
            {
                Some(i) => {
                    let old = self.pending.remove(i);
                    self.recycle(old);
                    self.stats.pending_evicted += 1;
                }
                None => {
                    // Only established connections waiting for accept: the client will
                    // retransmit (its data, or nothing: then it times out).
                    self.stats.syns_dropped_backlog_full += 1;
                    return true;
                }
            }
        }
        self.stats.syn_cookies_accepted += 1;
        self.pending.push(c);
        true
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
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].state() == State::Closed {
                let c = self.pending.remove(i);
                self.recycle(c);
                self.stats.pending_failed += 1;
            } else {
                i += 1;
            }
        }
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
                payload: Default::default(),
                payload_mbufs: Default::default(),
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
