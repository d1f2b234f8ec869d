//! The stack lcore's side: a [`TcpApp`] that forwards its sockets' events and bytes to app
//! lcores and carries out their commands.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{BridgeLink, ConnectError, ToApp, ToStack, XcoreParams};
use crate::counter::Counter;
use crate::mem::{Mbuf, Mempool};
use crate::stack::tcp::layer::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

/// Counters of one bridge (single writer: its stack lcore; read from anywhere).
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Connections handed to app lcores (accepted or connected).
    pub sockets: Counter,
    /// Connections refused (reset) because the app lcore's outbox was full.
    pub accept_refused: Counter,
    /// Mbufs of received bytes sent to app lcores.
    pub rx_segments: Counter,
    /// Received bytes sent to app lcores.
    pub rx_bytes: Counter,
    /// Written bytes taken into TCP send buffers.
    pub tx_bytes: Counter,
    /// Times data stayed in a receive buffer because an event ring was full (retried).
    pub ring_full: Counter,
    /// Times data stayed in a receive buffer because the pool was empty (retried).
    pub no_mbuf: Counter,
    /// Control events that waited in an outbox because an event ring was full.
    pub outboxed: Counter,
    /// Commands for sockets that no longer exist (a stale handle, or a race with the end).
    pub stale_commands: Counter,
    /// Writes after the app shut the socket down (dropped).
    pub write_after_shutdown: Counter,
    /// Received bytes lost when a socket ended while the pool was empty.
    pub rx_lost: Counter,
}

/// Per-link state: the rings and the outbox of events that found the ring full.
struct Link {
    ring: BridgeLink,
    outbox: VecDeque<ToApp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Closing {
    #[default]
    No,
    Shutdown,
    Close,
}

/// What the bridge keeps per connection slot.
#[derive(Default)]
struct Slot {
    /// The socket this state is for (`None`: free).
    id: Option<SockId>,
    link: u16,
    token: u64,
    /// An active open not yet connected (its failure is a `ConnectFailed`).
    connecting: bool,
    /// Bytes and mbufs delivered to the app and not reported read.
    rx_bytes: u32,
    rx_segs: u32,
    /// The peer's FIN arrived; `PeerClosed` is sent once the receive buffer is drained.
    peer_closed: bool,
    /// The app asked to shut down or close; done once `pending` is written.
    closing: Closing,
    shut: bool,
    /// On the retry list.
    retry: bool,
    /// Written mbufs that did not fit the send buffer yet (the first may be partly written).
    pending: VecDeque<Mbuf>,
    /// Send credit not yet reported to the app.
    credit_bytes: u32,
    credit_segs: u32,
}

impl Slot {
    fn reset(&mut self) {
        self.id = None;
        self.connecting = false;
        self.rx_bytes = 0;
        self.rx_segs = 0;
        self.peer_closed = false;
        self.closing = Closing::No;
        self.shut = false;
        self.pending.clear();
        self.credit_bytes = 0;
        self.credit_segs = 0;
        // `retry` stays: the retry list still names the slot and clears it.
    }
}

/// The bridge of one stack lcore: runs as a [`TcpApp`] in the lcore's TCP layer (listen with
/// its app id) and serves every app lcore through one [`BridgeLink`] each. Accepted
/// connections go to the links in turn; active opens belong to the link that asked.
pub struct XcoreBridge {
    params: XcoreParams,
    pool: Mempool,
    /// Payload bytes per mbuf.
    seg: usize,
    links: Vec<Link>,
    slots: Vec<Slot>,
    /// Slots whose received data waits for ring or pool room.
    retry: Vec<u32>,
    next_link: usize,
    stats: Arc<BridgeStats>,
}

impl XcoreBridge {
    /// A bridge over `links` (one per app lcore) copying received bytes into mbufs of `pool`.
    pub fn new(params: XcoreParams, pool: Mempool, links: Vec<BridgeLink>) -> Self {
        let seg = (pool.data_room() as usize).max(1);
        XcoreBridge {
            params,
            pool,
            seg,
            links: links
                .into_iter()
                .map(|ring| Link {
                    ring,
                    outbox: VecDeque::with_capacity(params.outbox_limit + 64),
                })
                .collect(),
            slots: (0..params.max_sockets).map(|_| Slot::default()).collect(),
            retry: Vec::with_capacity(params.max_sockets),
            next_link: 0,
            stats: Arc::new(BridgeStats::default()),
        }
    }

    /// The counters (shared: read them from any thread).
    pub fn stats(&self) -> Arc<BridgeStats> {
        self.stats.clone()
    }

    /// The slot of `id` if it is the socket the bridge tracks there.
    fn slot_of(&self, id: SockId) -> Option<usize> {
        let s = id.slot() as usize;
        (self.slots.get(s)?.id == Some(id)).then_some(s)
    }

    /// Sends a control event: straight into the ring unless events already wait.
    fn emit(&mut self, link: usize, ev: ToApp) {
        let l = &mut self.links[link];
        let ev = if l.outbox.is_empty() {
            match l.ring.events.enqueue(ev) {
                Ok(()) => return,
                Err(ev) => ev,
            }
        } else {
            ev
        };
        self.stats.outboxed.add(1);
        l.outbox.push_back(ev);
    }

    fn mark_retry(&mut self, s: usize) {
        if !self.slots[s].retry {
            self.slots[s].retry = true;
            self.retry.push(s as u32);
        }
    }

    /// Moves received bytes to the app while credit, ring and pool allow; `force` (the socket
    /// is ending) ignores credit and queues in the outbox when the ring is full.
    fn forward(&mut self, s: usize, sock: &mut TcpSocket<'_>, force: bool) {
        let id = sock.id();
        let link = self.slots[s].link as usize;
        loop {
            let slot = &self.slots[s];
            let credit = if force {
                usize::MAX
            } else if slot.rx_segs >= self.params.rx_segments {
                0
            } else {
                self.params.rx_window.saturating_sub(slot.rx_bytes) as usize
            };
            let avail = sock.available();
            if avail == 0 || credit == 0 {
                break;
            }
            if !force && !self.links[link].outbox.is_empty() {
                self.stats.ring_full.add(1);
                self.mark_retry(s);
                return;
            }
            let n = avail.min(credit).min(self.seg);
            let Some(mut m) = self.pool.alloc() else {
                if force {
                    self.stats.rx_lost.add(avail as u64);
                    sock.consume(avail);
                    break;
                }
                self.stats.no_mbuf.add(1);
                self.mark_retry(s);
                return;
            };
            let Some(buf) = m.append(n) else {
                // Pool buffers smaller than their data room advertises: cannot happen.
                return;
            };
            let [a, b] = sock.peek();
            let k = a.len().min(n);
            buf[..k].copy_from_slice(&a[..k]);
            buf[k..].copy_from_slice(&b[..n - k]);
            let ev = ToApp::Data { id, data: m };
            if force {
                self.emit(link, ev);
            } else if self.links[link].ring.events.enqueue(ev).is_err() {
                // The mbuf goes back to the pool; the bytes stay in the receive buffer.
                self.stats.ring_full.add(1);
                self.mark_retry(s);
                return;
            }
            sock.consume(n);
            self.stats.rx_segments.add(1);
            self.stats.rx_bytes.add(n as u64);
            let slot = &mut self.slots[s];
            slot.rx_bytes = slot.rx_bytes.saturating_add(n as u32);
            slot.rx_segs += 1;
        }
        if sock.available() == 0 && self.slots[s].peer_closed {
            self.slots[s].peer_closed = false;
            self.emit(link, ToApp::PeerClosed { id });
        }
    }

    /// Writes pending mbufs into the send buffer, reports credit, and finishes a shutdown or
    /// close the app asked for once nothing is pending.
    fn drain_pending(&mut self, s: usize, sock: &mut TcpSocket<'_>) {
        let slot = &mut self.slots[s];
        while let Some(m) = slot.pending.front_mut() {
            let len = m.data_len();
            let w = sock.write(m.data());
            slot.credit_bytes += w as u32;
            self.stats.tx_bytes.add(w as u64);
            if w < len {
                m.adj(w);
                break;
            }
            slot.pending.pop_front();
            slot.credit_segs += 1;
        }
        let p = &self.params;
        // A quarter window at a time: an app blocked on a short write has its whole window
        // outstanding, so its credit always comes back.
        let report = slot.credit_bytes >= (p.tx_window / 4).max(1)
            || slot.credit_segs >= (p.tx_segments / 4).max(1);
        let id = sock.id();
        if report {
            let (bytes, segs) = (slot.credit_bytes, slot.credit_segs);
            slot.credit_bytes = 0;
            slot.credit_segs = 0;
            let link = slot.link as usize;
            self.emit(link, ToApp::Credit { id, bytes, segs });
        }
        let slot = &mut self.slots[s];
        if slot.pending.is_empty() {
            match slot.closing {
                Closing::No => {}
                Closing::Shutdown => {
                    slot.closing = Closing::No;
                    slot.shut = true;
                    sock.shutdown();
                }
                Closing::Close => {
                    slot.reset();
                    sock.close();
                }
            }
        }
    }

    fn command(&mut self, link: usize, cmd: ToStack, ctl: &mut TcpControl<'_>) {
        let id = match &cmd {
            ToStack::Connect { remote, token } => {
                match ctl.connect(*remote) {
                    Ok(id) => {
                        let slot = &mut self.slots[id.slot() as usize];
                        slot.reset();
                        slot.id = Some(id);
                        slot.link = link as u16;
                        slot.token = *token;
                        slot.connecting = true;
                        if slot.pending.capacity() == 0 {
                            slot.pending.reserve_exact(self.params.tx_segments as usize);
                        }
                    }
                    Err(e) => self.emit(
                        link,
                        ToApp::ConnectFailed {
                            token: *token,
                            error: ConnectError::Local(e),
                        },
                    ),
                }
                return;
            }
            ToStack::Write { id, .. }
            | ToStack::Consumed { id, .. }
            | ToStack::Shutdown { id }
            | ToStack::Close { id }
            | ToStack::Abort { id } => *id,
        };
        let Some(s) = self
            .slot_of(id)
            .filter(|&s| self.slots[s].link as usize == link)
        else {
            self.stats.stale_commands.add(1);
            return;
        };
        let Some(mut sock) = ctl.socket(id) else {
            self.stats.stale_commands.add(1);
            return;
        };
        match cmd {
            ToStack::Write { data, .. } => {
                let slot = &mut self.slots[s];
                if slot.shut || slot.closing != Closing::No {
                    self.stats.write_after_shutdown.add(1);
                    return;
                }
                slot.pending.push_back(data);
                self.drain_pending(s, &mut sock);
            }
            ToStack::Consumed { bytes, segs, .. } => {
                let slot = &mut self.slots[s];
                slot.rx_bytes = slot.rx_bytes.saturating_sub(bytes);
                slot.rx_segs = slot.rx_segs.saturating_sub(segs);
                self.forward(s, &mut sock, false);
            }
            ToStack::Shutdown { .. } => {
                if self.slots[s].closing == Closing::No && !self.slots[s].shut {
                    self.slots[s].closing = Closing::Shutdown;
                    self.drain_pending(s, &mut sock);
                }
            }
            ToStack::Close { .. } => {
                self.slots[s].closing = Closing::Close;
                self.drain_pending(s, &mut sock);
            }
            ToStack::Abort { .. } => {
                self.slots[s].reset();
                sock.abort();
            }
            ToStack::Connect { .. } => {}
        }
    }
}

impl TcpApp for XcoreBridge {
    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        let st = &self.stats;
        out("xcore_sockets", st.sockets.get());
        out("xcore_accept_refused", st.accept_refused.get());
        out("xcore_rx_bytes", st.rx_bytes.get());
        out("xcore_tx_bytes", st.tx_bytes.get());
        out("xcore_ring_full", st.ring_full.get());
        out("xcore_no_mbuf", st.no_mbuf.get());
        out("xcore_outboxed", st.outboxed.get());
        out("xcore_stale_commands", st.stale_commands.get());
        out("xcore_write_after_shutdown", st.write_after_shutdown.get());
        out("xcore_rx_lost", st.rx_lost.get());
    }

    fn on_accept(&mut self, sock: &mut TcpSocket<'_>) {
        let n = self.links.len();
        if n == 0 {
            sock.abort();
            return;
        }
        let link = self.next_link % n;
        self.next_link = (self.next_link + 1) % n;
        if self.links[link].outbox.len() >= self.params.outbox_limit {
            self.stats.accept_refused.add(1);
            sock.abort();
            return;
        }
        let id = sock.id();
        let s = id.slot() as usize;
        let slot = &mut self.slots[s];
        slot.reset();
        slot.id = Some(id);
        slot.link = link as u16;
        if slot.pending.capacity() == 0 {
            slot.pending.reserve_exact(self.params.tx_segments as usize);
        }
        self.stats.sockets.add(1);
        self.emit(
            link,
            ToApp::Accepted {
                id,
                local: sock.local(),
                remote: sock.remote(),
            },
        );
    }

    fn on_connected(&mut self, sock: &mut TcpSocket<'_>) {
        let id = sock.id();
        let Some(s) = self.slot_of(id) else { return };
        let slot = &mut self.slots[s];
        slot.connecting = false;
        let (link, token) = (slot.link as usize, slot.token);
        self.stats.sockets.add(1);
        self.emit(
            link,
            ToApp::Connected {
                id,
                token,
                local: sock.local(),
                remote: sock.remote(),
            },
        );
    }

    fn on_data(&mut self, sock: &mut TcpSocket<'_>) {
        if let Some(s) = self.slot_of(sock.id()) {
            if self.slots[s].closing != Closing::Close {
                self.forward(s, sock, false);
            }
        }
    }

    fn on_writable(&mut self, sock: &mut TcpSocket<'_>) {
        if let Some(s) = self.slot_of(sock.id()) {
            self.drain_pending(s, sock);
        }
    }

    fn on_peer_closed(&mut self, sock: &mut TcpSocket<'_>) {
        if let Some(s) = self.slot_of(sock.id()) {
            self.slots[s].peer_closed = true;
            self.forward(s, sock, false);
        }
    }

    fn on_ending(&mut self, sock: &mut TcpSocket<'_>, reason: CloseReason) {
        // Both sides closed: what the app has not got yet would vanish with the socket.
        if reason == CloseReason::Closed {
            if let Some(s) = self.slot_of(sock.id()) {
                if !self.slots[s].connecting {
                    self.forward(s, sock, true);
                }
            }
        }
    }

    fn on_close(&mut self, id: SockId, reason: CloseReason) {
        let Some(s) = self.slot_of(id) else { return };
        let slot = &mut self.slots[s];
        let (link, token, connecting) = (slot.link as usize, slot.token, slot.connecting);
        slot.reset();
        let ev = if connecting {
            let error = match reason {
                CloseReason::TimedOut => ConnectError::TimedOut,
                _ => ConnectError::Refused,
            };
            ToApp::ConnectFailed { token, error }
        } else {
            ToApp::Closed { id, reason }
        };
        self.emit(link, ev);
    }

    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        // Events that waited, in order.
        for l in &mut self.links {
            while let Some(ev) = l.outbox.pop_front() {
                if let Err(ev) = l.ring.events.enqueue(ev) {
                    l.outbox.push_front(ev);
                    break;
                }
            }
        }
        // Commands: at most one ring's worth per link per turn.
        for link in 0..self.links.len() {
            for _ in 0..self.params.ring_size {
                let Some(cmd) = self.links[link].ring.commands.dequeue() else {
                    break;
                };
                self.command(link, cmd, ctl);
            }
        }
        // Receive data that found the ring full or the pool empty.
        let n = self.retry.len();
        for i in 0..n {
            let s = self.retry[i] as usize;
            self.slots[s].retry = false;
            let Some(id) = self.slots[s].id else {
                continue;
            };
            if let Some(mut sock) = ctl.socket(id) {
                self.forward(s, &mut sock, false);
            }
        }
        // Retries marked during this pass stay for the next poll.
        self.retry.drain(..n);
    }
}
