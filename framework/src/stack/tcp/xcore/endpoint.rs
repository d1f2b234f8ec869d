//! The app lcore's side: events in, commands out, reads from delivered mbufs, writes into new
//! ones.

use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::sync::Arc;

use super::{AppLink, ToApp, ToStack, XEvent, XSock, XcoreParams};
use crate::counter::Counter;
use crate::mem::{Mbuf, Mempool};
use crate::stack::tcp::layer::SockId;

/// Counters of one endpoint (single writer: its app lcore; read from anywhere).
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Events taken from the rings.
    pub events: Counter,
    /// Bytes read by the app.
    pub rx_bytes: Counter,
    /// Bytes written by the app (accepted by [`XcoreEndpoint::write`]).
    pub tx_bytes: Counter,
    /// Short writes because the command ring was full.
    pub ring_full: Counter,
    /// Short writes because the pool was empty.
    pub no_mbuf: Counter,
    /// Events for sockets the app closed, or for an older socket of a reused slot (dropped).
    pub stale_events: Counter,
}

/// What the endpoint keeps per (link, slot).
#[derive(Default)]
struct Slot {
    id: Option<SockId>,
    /// The app holds the socket: not closed or aborted by it, not ended.
    open: bool,
    read_closed: bool,
    shut: bool,
    /// Delivered, unread mbufs (the first may be partly read).
    rx: VecDeque<Mbuf>,
    rx_avail: usize,
    /// Read but not yet reported to the bridge.
    consumed_bytes: u32,
    consumed_segs: u32,
    /// Send credit left.
    tx_bytes: u32,
    tx_segs: u32,
    /// The mbuf written bytes are gathered in (its segment credit taken): sent when full or
    /// at the next [`XcoreEndpoint::flush`], so small writes share one mbuf.
    tx_open: Option<Mbuf>,
    /// A write was short for want of credit: report `Writable` when credit returns.
    want_writable: bool,
    /// On the blocked list (a write was short for want of ring room or mbufs).
    blocked: bool,
    /// On the dirty list, with these commands to send.
    dirty: bool,
    send_shutdown: bool,
    send_close: bool,
    send_abort: bool,
}

impl Slot {
    fn clear(&mut self) {
        self.open = false;
        self.read_closed = false;
        self.shut = false;
        self.rx.clear();
        self.rx_avail = 0;
        self.consumed_bytes = 0;
        self.consumed_segs = 0;
        self.want_writable = false;
        self.send_shutdown = false;
        self.send_close = false;
        self.send_abort = false;
    }
}

struct Link {
    ring: AppLink,
    slots: Vec<Slot>,
}

/// The app lcore's end of its links to the stack lcores: poll it for [`XEvent`]s, read and
/// write sockets by [`XSock`], and [`flush`](Self::flush) once per loop turn.
pub struct XcoreEndpoint {
    params: XcoreParams,
    pool: Mempool,
    links: Vec<Link>,
    /// Sockets with commands to send (link, slot).
    dirty: Vec<(u16, u32)>,
    /// Sockets whose write was short for want of ring room or mbufs.
    blocked: VecDeque<(u16, u32)>,
    next_link: usize,
    stats: Arc<EndpointStats>,
}

impl XcoreEndpoint {
    /// An endpoint over `links` (one per stack lcore, in the order [`XSock::link`] counts)
    /// writing into mbufs of `pool`.
    pub fn new(params: XcoreParams, pool: Mempool, links: Vec<AppLink>) -> Self {
        let n = links.len();
        XcoreEndpoint {
            params,
            pool,
            links: links
                .into_iter()
                .map(|ring| Link {
                    ring,
                    slots: (0..params.max_sockets).map(|_| Slot::default()).collect(),
                })
                .collect(),
            dirty: Vec::with_capacity(n * params.max_sockets),
            blocked: VecDeque::with_capacity(n * params.max_sockets),
            next_link: 0,
            stats: Arc::new(EndpointStats::default()),
        }
    }

    /// The counters (shared: read them from any thread).
    pub fn stats(&self) -> Arc<EndpointStats> {
        self.stats.clone()
    }

    /// Number of links (stack lcores).
    pub fn links(&self) -> usize {
        self.links.len()
    }

    fn slot(&self, s: XSock) -> Option<&Slot> {
        let slot = self
            .links
            .get(s.link as usize)?
            .slots
            .get(s.id.slot() as usize)?;
        (slot.id == Some(s.id) && slot.open).then_some(slot)
    }

    fn slot_mut(&mut self, s: XSock) -> Option<&mut Slot> {
        let slot = self
            .links
            .get_mut(s.link as usize)?
            .slots
            .get_mut(s.id.slot() as usize)?;
        (slot.id == Some(s.id) && slot.open).then_some(slot)
    }

    fn mark_dirty(&mut self, s: XSock) {
        let slot = &mut self.links[s.link as usize].slots[s.id.slot() as usize];
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push((s.link, s.id.slot()));
        }
    }

    /// The next event from any stack lcore (links in turn), or `None` when every ring is
    /// empty. Bytes arriving for a socket are queued on it ([`read`](Self::read)); events for
    /// sockets the app closed, and send credit that unblocks nothing, are absorbed.
    pub fn poll_event(&mut self) -> Option<XEvent> {
        let n = self.links.len();
        let mut empty = 0;
        while empty < n {
            let li = self.next_link % n;
            let Some(ev) = self.links[li].ring.events.dequeue() else {
                self.next_link = (li + 1) % n;
                empty += 1;
                continue;
            };
            empty = 0;
            self.stats.events.add(1);
            if let Some(e) = self.apply(li, ev) {
                return Some(e);
            }
        }
        // Every ring is empty: writes that were short for want of room may retry now.
        while let Some((l, s)) = self.blocked.pop_front() {
            let link = &mut self.links[l as usize];
            let slot = &mut link.slots[s as usize];
            slot.blocked = false;
            let (Some(id), true) = (slot.id, slot.open) else {
                continue;
            };
            if link.ring.commands.free_count() == 0 || self.pool.available() == 0 {
                slot.blocked = true;
                self.blocked.push_front((l, s));
                return None;
            }
            return Some(XEvent::Writable {
                sock: XSock { link: l, id },
            });
        }
        None
    }

    fn apply(&mut self, li: usize, ev: ToApp) -> Option<XEvent> {
        let p = self.params;
        let link = li as u16;
        let slots = &mut self.links[li].slots;
        let fresh = |slots: &mut Vec<Slot>, id: SockId| {
            let slot = &mut slots[id.slot() as usize];
            slot.clear();
            slot.tx_open = None;
            slot.id = Some(id);
            slot.open = true;
            slot.tx_bytes = p.tx_window;
            slot.tx_segs = p.tx_segments;
            if slot.rx.capacity() == 0 {
                slot.rx.reserve_exact(p.rx_segments as usize);
            }
        };
        match ev {
            ToApp::Accepted { id, local, remote } => {
                fresh(slots, id);
                return Some(XEvent::Accepted {
                    sock: XSock { link, id },
                    local,
                    remote,
                });
            }
            ToApp::Connected {
                id,
                token,
                local,
                remote,
            } => {
                fresh(slots, id);
                return Some(XEvent::Connected {
                    sock: XSock { link, id },
                    token,
                    local,
                    remote,
                });
            }
            ToApp::ConnectFailed { token, error } => {
                return Some(XEvent::ConnectFailed { token, error });
            }
            _ => {}
        }
        let id = match &ev {
            ToApp::Data { id, .. }
            | ToApp::Credit { id, .. }
            | ToApp::PeerClosed { id }
            | ToApp::Closed { id, .. } => *id,
            _ => return None,
        };
        let sock = XSock { link, id };
        let slot = &mut slots[id.slot() as usize];
        if slot.id != Some(id) || !slot.open {
            // Data of a closed socket goes back to the pool here.
            self.stats.stale_events.add(1);
            return None;
        }
        match ev {
            ToApp::Data { data, .. } => {
                slot.rx_avail += data.data_len();
                slot.rx.push_back(data);
                Some(XEvent::Readable { sock })
            }
            ToApp::Credit { bytes, segs, .. } => {
                slot.tx_bytes += bytes;
                slot.tx_segs += segs;
                if slot.want_writable {
                    slot.want_writable = false;
                    return Some(XEvent::Writable { sock });
                }
                None
            }
            ToApp::PeerClosed { .. } => {
                slot.read_closed = true;
                Some(XEvent::PeerClosed { sock })
            }
            ToApp::Closed { reason, .. } => {
                slot.clear();
                slot.tx_open = None;
                Some(XEvent::Closed { sock, reason })
            }
            _ => None,
        }
    }

    /// Bytes ready to read on `sock` (0 for a handle that is not open).
    pub fn available(&self, sock: XSock) -> usize {
        self.slot(sock).map_or(0, |s| s.rx_avail)
    }

    /// True once the peer closed its side and every byte before its FIN was delivered.
    pub fn is_read_closed(&self, sock: XSock) -> bool {
        self.slot(sock).is_some_and(|s| s.read_closed)
    }

    /// The first delivered bytes of `sock` (one mbuf's worth, no copy); empty if none.
    pub fn peek(&self, sock: XSock) -> &[u8] {
        self.slot(sock)
            .and_then(|s| s.rx.front())
            .map_or(&[], |m| m.data())
    }

    /// Releases `n` bytes seen through [`peek`](Self::peek) (or fewer if fewer are there).
    pub fn consume(&mut self, sock: XSock, mut n: usize) {
        let p = self.params;
        let Some(slot) = self.slot_mut(sock) else {
            return;
        };
        let mut done = 0;
        while n > 0 {
            let Some(m) = slot.rx.front_mut() else { break };
            let k = n.min(m.data_len());
            if k == m.data_len() {
                slot.rx.pop_front();
                slot.consumed_segs += 1;
            } else {
                m.adj(k);
            }
            n -= k;
            done += k;
        }
        slot.rx_avail -= done;
        slot.consumed_bytes += done as u32;
        // A quarter window at a time: a bridge stopped for want of credit has the whole
        // window unread here, so reading it all always reports.
        let due = slot.consumed_bytes >= (p.rx_window / 4).max(1)
            || slot.consumed_segs >= (p.rx_segments / 4).max(1);
        self.stats.rx_bytes.add(done as u64);
        if due {
            self.mark_dirty(sock);
        }
    }

    /// Copies delivered bytes of `sock` into `buf`; returns the count.
    pub fn read(&mut self, sock: XSock, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let d = self.peek(sock);
            if d.is_empty() {
                break;
            }
            let k = d.len().min(buf.len() - done);
            buf[done..done + k].copy_from_slice(&d[..k]);
            self.consume(sock, k);
            done += k;
        }
        done
    }

    /// Send room of `sock` right now (its credit).
    pub fn send_space(&self, sock: XSock) -> usize {
        let Some(s) = self.slot(sock).filter(|s| !s.shut) else {
            return 0;
        };
        if s.tx_segs > 0 {
            return s.tx_bytes as usize;
        }
        // No mbuf credit left: only the gathering mbuf's room.
        s.tx_open
            .as_ref()
            .map_or(0, |m| m.tailroom().min(s.tx_bytes as usize))
    }

    /// Writes as much of `data` as the socket's credit, the command ring and the pool allow
    /// and returns the count; a short count is followed by [`XEvent::Writable`] once there is
    /// room. 0 for a handle that is not open or was shut down. Bytes are gathered into one
    /// mbuf per socket, sent to the stack lcore when it is full or at the next
    /// [`flush`](Self::flush), so several small writes (a response's head and body) cross as
    /// one mbuf and one command.
    pub fn write(&mut self, sock: XSock, data: &[u8]) -> usize {
        let mut done = 0;
        let mut blocked = false;
        let gathering;
        {
            let li = sock.link as usize;
            let Some(link) = self.links.get_mut(li) else {
                return 0;
            };
            let Some(slot) = link.slots.get_mut(sock.id.slot() as usize) else {
                return 0;
            };
            if slot.id != Some(sock.id) || !slot.open || slot.shut {
                return 0;
            }
            while done < data.len() {
                if slot.tx_bytes == 0 {
                    slot.want_writable = true;
                    break;
                }
                if let Some(m) = slot.tx_open.as_mut() {
                    let n = (data.len() - done)
                        .min(slot.tx_bytes as usize)
                        .min(m.tailroom());
                    if n > 0 {
                        let Some(buf) = m.append(n) else { break };
                        buf.copy_from_slice(&data[done..done + n]);
                        slot.tx_bytes -= n as u32;
                        done += n;
                        continue;
                    }
                    // Full: send it before opening the next one.
                    let Some(m) = slot.tx_open.take() else { break };
                    if let Err(cmd) = link.ring.commands.enqueue(ToStack::Write {
                        id: sock.id,
                        data: m,
                    }) {
                        if let ToStack::Write { data, .. } = cmd {
                            slot.tx_open = Some(data);
                        }
                        self.stats.ring_full.add(1);
                        blocked = true;
                        break;
                    }
                    continue;
                }
                if slot.tx_segs == 0 {
                    slot.want_writable = true;
                    break;
                }
                let Some(m) = self.pool.alloc() else {
                    self.stats.no_mbuf.add(1);
                    blocked = true;
                    break;
                };
                slot.tx_segs -= 1;
                slot.tx_open = Some(m);
            }
            if blocked && !slot.blocked {
                slot.blocked = true;
                self.blocked.push_back((sock.link, sock.id.slot()));
            }
            gathering = slot.tx_open.as_ref().is_some_and(|m| m.data_len() > 0);
        }
        if gathering {
            self.mark_dirty(sock);
        }
        self.stats.tx_bytes.add(done as u64);
        done
    }

    /// Half-close: FIN after the written bytes; reading continues. Later writes return 0.
    pub fn shutdown(&mut self, sock: XSock) {
        if let Some(slot) = self.slot_mut(sock) {
            if !slot.shut {
                slot.shut = true;
                slot.send_shutdown = true;
                self.mark_dirty(sock);
            }
        }
    }

    /// Full close: FIN after the written bytes, or a reset if delivered bytes were left
    /// unread (as Linux does, RFC 9293 §3.10.4). The handle is dead after: no more events.
    pub fn close(&mut self, sock: XSock) {
        if let Some(slot) = self.slot_mut(sock) {
            let unread = slot.rx_avail > 0;
            slot.clear();
            if unread {
                slot.send_abort = true;
            } else {
                slot.send_close = true;
            }
            self.mark_dirty(sock);
        }
    }

    /// Abort: reset the connection now, dropping unsent bytes. The handle is dead after.
    pub fn abort(&mut self, sock: XSock) {
        if let Some(slot) = self.slot_mut(sock) {
            slot.clear();
            slot.tx_open = None;
            slot.send_abort = true;
            self.mark_dirty(sock);
        }
    }

    /// Active open towards `remote` from the stack lcore of link `link`; `token` comes back
    /// in [`XEvent::Connected`] or [`XEvent::ConnectFailed`]. `Err(())` when the command
    /// ring is full (try again after the next poll).
    #[allow(clippy::result_unit_err)]
    pub fn connect_via(&mut self, link: usize, remote: SocketAddrV4, token: u64) -> Result<(), ()> {
        let l = self.links.get_mut(link).ok_or(())?;
        l.ring
            .commands
            .enqueue(ToStack::Connect { remote, token })
            .map_err(|_| ())
    }

    /// [`connect_via`](Self::connect_via) the links in turn.
    #[allow(clippy::result_unit_err)]
    pub fn connect(&mut self, remote: SocketAddrV4, token: u64) -> Result<(), ()> {
        let n = self.links.len().max(1);
        let link = self.next_link % n;
        self.next_link = (link + 1) % n;
        self.connect_via(link, remote, token)
    }

    /// Puts a raw command on link `link` (tests of the bridge's checks).
    #[cfg(test)]
    pub(super) fn raw_command(&mut self, link: usize, cmd: ToStack) -> bool {
        self.links[link].ring.commands.enqueue(cmd).is_ok()
    }

    /// Sends what is due: gathered written bytes, read credit and the shutdowns, closes and
    /// aborts asked for. Call once per loop turn; what does not fit the command ring is sent
    /// on the next call.
    pub fn flush(&mut self) {
        let mut i = 0;
        while i < self.dirty.len() {
            let (l, s) = self.dirty[i];
            let link = &mut self.links[l as usize];
            let slot = &mut link.slots[s as usize];
            let Some(id) = slot.id else {
                slot.dirty = false;
                i += 1;
                continue;
            };
            let q = &mut link.ring.commands;
            // Gathered bytes first: they precede a shutdown or close asked for after them.
            if let Some(m) = slot.tx_open.take() {
                if m.data_len() > 0 {
                    if let Err(cmd) = q.enqueue(ToStack::Write { id, data: m }) {
                        if let ToStack::Write { data, .. } = cmd {
                            slot.tx_open = Some(data);
                        }
                        break;
                    }
                } else {
                    slot.tx_open = Some(m);
                }
            }
            if slot.consumed_bytes > 0 || slot.consumed_segs > 0 {
                let cmd = ToStack::Consumed {
                    id,
                    bytes: slot.consumed_bytes,
                    segs: slot.consumed_segs,
                };
                if q.enqueue(cmd).is_err() {
                    break;
                }
                slot.consumed_bytes = 0;
                slot.consumed_segs = 0;
            }
            for (flag, cmd) in [
                (&mut slot.send_shutdown, ToStack::Shutdown { id }),
                (&mut slot.send_close, ToStack::Close { id }),
                (&mut slot.send_abort, ToStack::Abort { id }),
            ] {
                if *flag {
                    if q.enqueue(cmd).is_err() {
                        // Keep the rest of the list (this socket included) for next time.
                        self.dirty.drain(..i);
                        return;
                    }
                    *flag = false;
                }
            }
            slot.dirty = false;
            i += 1;
        }
        self.dirty.drain(..i);
    }
}
