//! What the two HTTP servers share: the per-connection step ([`drive`]) over any
//! [`ByteStream`] (a same-core [`TcpSocket`] or an app lcore's endpoint socket), and the
//! [`SessionTable`] of recycled sessions keyed by connection slot.

use super::session::{Flush, HttpLimits, HttpSession, HttpStats};
use super::site::{DateLine, Site};
use crate::stack::tcp::xcore::{XSock, XcoreEndpoint};
use crate::stack::tcp::TcpSocket;

/// Rounds of feed-and-write per call of [`drive`] (bounds the work of one event).
const ROUNDS: usize = 64;

/// A connection's bytes as an HTTP session sees them.
pub(super) trait ByteStream {
    /// The first received bytes not consumed yet (possibly fewer than
    /// [`available`](Self::available)); empty when nothing is there.
    fn peek(&self) -> &[u8];
    /// Releases `n` bytes seen through [`peek`](Self::peek).
    fn consume(&mut self, n: usize);
    /// Writes what fits of `data`; returns the count (short: full, more room is announced).
    fn write(&mut self, data: &[u8]) -> usize;
    /// Received bytes not consumed yet.
    fn available(&self) -> usize;
    /// The peer closed its side and every byte before its FIN has been received.
    fn is_read_closed(&self) -> bool;
}

impl ByteStream for TcpSocket<'_> {
    fn peek(&self) -> &[u8] {
        TcpSocket::peek(self)[0]
    }
    fn consume(&mut self, n: usize) {
        TcpSocket::consume(self, n)
    }
    fn write(&mut self, data: &[u8]) -> usize {
        TcpSocket::write(self, data)
    }
    fn available(&self) -> usize {
        TcpSocket::available(self)
    }
    fn is_read_closed(&self) -> bool {
        TcpSocket::is_read_closed(self)
    }
}

/// One socket of an app lcore's endpoint, as a [`ByteStream`].
pub(super) struct EndpointStream<'a> {
    pub(super) ep: &'a mut XcoreEndpoint,
    pub(super) sock: XSock,
}

impl ByteStream for EndpointStream<'_> {
    fn peek(&self) -> &[u8] {
        self.ep.peek(self.sock)
    }
    fn consume(&mut self, n: usize) {
        self.ep.consume(self.sock, n)
    }
    fn write(&mut self, data: &[u8]) -> usize {
        self.ep.write(self.sock, data)
    }
    fn available(&self) -> usize {
        self.ep.available(self.sock)
    }
    fn is_read_closed(&self) -> bool {
        self.ep.is_read_closed(self.sock)
    }
}

/// Feeds received bytes to the session and writes its responses until the stream blocks or
/// nothing is left. Returns true when the connection should be closed now (the session
/// wrote a closing response, or the peer is done and every response is out); the input
/// left is then discarded, so the close is a FIN after the response and not a reset.
pub(super) fn drive(
    sess: &mut HttpSession,
    site: &Site,
    date: &DateLine,
    stats: &mut HttpStats,
    s: &mut impl ByteStream,
) -> bool {
    let mut close = false;
    for _ in 0..ROUNDS {
        let mut fed_all = true;
        loop {
            let took = {
                let a = s.peek();
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
        loop {
            let n = s.peek().len();
            if n == 0 {
                break;
            }
            s.consume(n);
        }
        return true;
    }
    false
}

/// Sessions recycled through a free list, found by a dense connection key (the stack's
/// slot, or link and slot on an app lcore). Sessions are allocated as first needed, at most
/// one per key; after that nothing is allocated.
pub(super) struct SessionTable {
    limits: HttpLimits,
    sessions: Vec<HttpSession>,
    free: Vec<u32>,
    /// Session (+1) of each key; 0 for none.
    by_key: Vec<u32>,
}

impl SessionTable {
    /// A table for keys below `keys`.
    pub(super) fn new(limits: HttpLimits, keys: usize) -> SessionTable {
        SessionTable {
            limits,
            sessions: Vec::with_capacity(keys),
            free: Vec::with_capacity(keys),
            by_key: vec![0; keys],
        }
    }

    /// A fresh session for `key` (replacing one it still had); `None` if `key` is out of
    /// range.
    pub(super) fn open(&mut self, key: usize) -> Option<usize> {
        if key >= self.by_key.len() {
            return None;
        }
        self.close(key);
        let idx = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.sessions.push(HttpSession::new(self.limits));
                self.sessions.len() - 1
            }
        };
        self.sessions[idx].reset();
        self.by_key[key] = idx as u32 + 1;
        Some(idx)
    }

    /// The session of `key`, if it has one.
    pub(super) fn of(&self, key: usize) -> Option<usize> {
        match self.by_key.get(key) {
            Some(&b) if b != 0 => Some(b as usize - 1),
            _ => None,
        }
    }

    /// Session `idx`.
    pub(super) fn get_mut(&mut self, idx: usize) -> &mut HttpSession {
        &mut self.sessions[idx]
    }

    /// Frees the session of `key` (nothing if it has none).
    pub(super) fn close(&mut self, key: usize) {
        if let Some(idx) = self.of(key) {
            self.by_key[key] = 0;
            self.free.push(idx as u32);
        }
    }
}
