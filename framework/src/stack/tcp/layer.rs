//! The per-lcore TCP layer: connection table, listeners, timer wheel, and the same-core socket
//! API ([`TcpApp`] callbacks, [`TcpSocket`], [`TcpControl`]).
//!
//! It is as sans-IO as the engine under it: segments come in through
//! [`TcpLayer::input`], time through [`TcpLayer::poll`], and every segment to send goes to a
//! [`SegmentSink`] (the `tcp-input` node's sink builds the mbufs). Tests drive it directly.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use super::table::{FlowIndex, FlowKey};
use super::wheel::TimerWheel;
use crate::mem::Mbuf;
use crate::tcp::{
    reset_for, Connection, Event, IsnGenerator, Listener, Payload, Spare, State, TcpConfig,
    TcpSegment, Transmit,
};
use crate::wire::TcpFlags;

/// Where the layer sends segments.
pub trait SegmentSink {
    /// How many more segments it takes now (0: stop; the layer resumes on the next poll).
    fn room(&self) -> usize;
    /// Sends one segment; `port_hint` is the port the flow was last seen on (pool choice).
    fn send(&mut self, t: &Transmit<'_>, port_hint: u16);
}

/// Limits of one lcore's TCP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerParams {
    /// Connections (every state, TIME-WAIT included) this lcore holds at most.
    pub max_connections: usize,
    /// Connections in TIME-WAIT at most; beyond, a connection entering TIME-WAIT is freed
    /// at once (like Linux's `tcp_max_tw_buckets`).
    pub max_time_wait: usize,
    /// Pending (handshaking or not yet accepted) connections per listener.
    pub backlog: usize,
    /// Ephemeral ports for active opens, inclusive.
    pub ephemeral: (u16, u16),
    /// RSS steering of this lcore: when set, active opens only use ephemeral ports whose
    /// replies hash to this lcore's queue.
    pub rss: Option<super::rss::RssSteer>,
}

impl Default for LayerParams {
    fn default() -> Self {
        LayerParams {
            max_connections: 4096,
            max_time_wait: 1024,
            backlog: 128,
            ephemeral: (32768, 60999),
            rss: None,
        }
    }
}

/// Counters of one lcore's TCP layer (single writer; the node exports them as node events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Segments handed to connections.
    pub segments_to_conns: u64,
    /// Segments handed to listeners.
    pub segments_to_listeners: u64,
    /// Connections accepted from listeners into the table.
    pub accepted: u64,
    /// Active opens started.
    pub connects: u64,
    /// Active opens refused locally (no ephemeral port, table full, no route).
    pub connect_failed: u64,
    /// Connections that ended (slot freed).
    pub closed: u64,
    /// Connections reset by the peer.
    pub resets_in: u64,
    /// Connections that timed out.
    pub timeouts: u64,
    /// Resets sent for segments to closed ports.
    pub rst_sent: u64,
    /// SYNs dropped because the connection table was full.
    pub syn_table_full: u64,
    /// Handshakes completed while the table was full (the connection is reset).
    pub accept_table_full: u64,
    /// Connections freed on entering TIME-WAIT because `max_time_wait` were already there.
    pub time_wait_overflow: u64,
    /// TIME-WAIT connections freed early to make room for a new one (the table was full).
    pub time_wait_reclaimed: u64,
    /// Timer expiries handled.
    pub timers: u64,
    /// Times output stopped because the sink was full (resumed on the next poll).
    pub tx_deferred: u64,
}

/// Identifies a socket: a slot number and a generation (a handle outlives its connection
/// harmlessly: it then finds nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockId {
    slot: u32,
    gen: u32,
}

impl SockId {
    /// The slot number (stable for the life of the connection, reused after).
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// Index of an application in a [`TcpLayer`].
pub type AppId = u16;

/// How a socket ended, for [`TcpApp::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides closed (the connection reached TIME-WAIT or CLOSED normally).
    Closed,
    /// The peer reset it (or refused the connection).
    Reset,
    /// Retransmissions or probes went unanswered.
    TimedOut,
}

/// Why a [`TcpControl::connect`] or [`TcpLayer::listen`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TcpError {
    /// The connection table is full.
    #[error("connection table full")]
    TableFull,
    /// Every ephemeral port towards that peer is taken.
    #[error("no free ephemeral port")]
    NoPort,
    /// No local address to reach the peer from.
    #[error("no route to the peer")]
    NoRoute,
    /// Something already listens on that port and address.
    #[error("address in use")]
    AddrInUse,
}

/// A same-core TCP application: callbacks run on the lcore that owns the connection, in the
/// middle of the graph dispatch, so they must not block.
///
/// Data arrives in the connection's receive buffer: read it with [`TcpSocket::recv`] (copy)
/// or [`TcpSocket::peek`] + [`TcpSocket::consume`] (slices of the ring, no copy). Writes copy
/// into the send buffer and return how much fit; when a write was short,
/// [`on_writable`](Self::on_writable) follows once room frees up.
pub trait TcpApp: Send {
    /// A connection from a listener completed its handshake.
    fn on_accept(&mut self, _s: &mut TcpSocket<'_>) {}
    /// An active open ([`TcpControl::connect`]) completed its handshake.
    fn on_connected(&mut self, _s: &mut TcpSocket<'_>) {}
    /// New in-order data is in the receive buffer.
    fn on_data(&mut self, s: &mut TcpSocket<'_>);
    /// Send buffer room freed up after a short write.
    fn on_writable(&mut self, _s: &mut TcpSocket<'_>) {}
    /// The peer closed its side (FIN): after the buffered data nothing more comes.
    fn on_peer_closed(&mut self, _s: &mut TcpSocket<'_>) {}
    /// The socket is ending (reset, timed out, or closed on both sides) and
    /// [`on_close`](Self::on_close) follows at once; its receive buffer can still be read here
    /// (a cross-core bridge moves the last bytes out). Not called for sockets the application
    /// closed or aborted itself.
    fn on_ending(&mut self, _s: &mut TcpSocket<'_>, _reason: CloseReason) {}
    /// The socket ended. Not called for sockets the application closed or aborted itself.
    fn on_close(&mut self, _id: SockId, _reason: CloseReason) {}
    /// Called once per loop turn: open connections, write to sockets by id.
    fn poll(&mut self, _ctl: &mut TcpControl<'_>) {}
    /// The application's own counters, as `(name, running total)` pairs: the TCP node
    /// exports them as its events next to the layer's (for example `http_requests`). The
    /// names and their order must not change between calls.
    fn counters(&self, _out: &mut dyn FnMut(&'static str, u64)) {}
}

/// Bookkeeping of one connection slot besides the engine's state.
#[derive(Debug, Default)]
struct SlotMeta {
    gen: u32,
    key: FlowKey,
    app: AppId,
    user: u64,
    /// The application knows this socket (accepted, or it called connect).
    attached: bool,
    /// Counted in the TIME-WAIT total.
    in_time_wait: bool,
    /// Port the flow arrived on or leaves through (pool choice for output).
    port_hint: u16,
    /// On the dirty list (output or events to handle on the next poll).
    dirty: bool,
    /// On the deferred list (segments taken by [`TcpLayer::input_deferred`], not pumped yet).
    deferred: bool,
}

/// A connection as the application sees it during a callback or through
/// [`TcpControl::socket`].
pub struct TcpSocket<'a> {
    conn: &'a mut Connection,
    meta: &'a mut SlotMeta,
    id: SockId,
    now: u64,
    /// During `on_data` for a segment that found the receive buffer empty: its payload,
    /// read in place (in the received packet buffer) instead of from the receive ring.
    loan: Option<Loan<'a>>,
}

/// Received bytes the application reads where they arrived, and how many it has read.
struct Loan<'a> {
    data: Payload<'a>,
    read: usize,
}

impl<'a> Loan<'a> {
    /// The bytes not read yet.
    fn unread(&self) -> Payload<'a> {
        self.data.range(self.read, usize::MAX)
    }
}

impl TcpSocket<'_> {
    /// The socket's handle.
    pub fn id(&self) -> SockId {
        self.id
    }
    /// Our address and port.
    pub fn local(&self) -> SocketAddrV4 {
        self.conn.local()
    }
    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddrV4 {
        self.conn.remote()
    }
    /// The engine state.
    pub fn state(&self) -> State {
        self.conn.state()
    }
    /// A word the application may keep per socket (0 when the socket is new).
    pub fn user(&self) -> u64 {
        self.meta.user
    }
    /// Sets the application's word.
    pub fn set_user(&mut self, v: u64) {
        self.meta.user = v;
    }
    /// Bytes ready to read.
    pub fn available(&self) -> usize {
        match &self.loan {
            Some(l) => l.data.len() - l.read,
            None => self.conn.recv_available(),
        }
    }
    /// True once the peer's FIN arrived (after the buffered bytes there is nothing more).
    pub fn is_read_closed(&self) -> bool {
        self.conn.is_read_closed()
    }
    /// Copies received bytes into `buf`; returns the count.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        match &mut self.loan {
            Some(l) => {
                let n = buf.len().min(l.data.len() - l.read);
                l.unread().range(0, n).copy_to(&mut buf[..n]);
                l.read += n;
                n
            }
            None => self.conn.recv(buf),
        }
    }
    /// The received bytes as up to two slices, without copying: of the receive ring, or,
    /// when a segment arrived in order to an empty receive buffer, of the received packet
    /// itself (the rest of it moves to the ring only if not consumed during this `on_data`).
    pub fn peek(&self) -> [&[u8]; 2] {
        match &self.loan {
            Some(l) => l.unread().0,
            None => self.conn.recv_peek(),
        }
    }
    /// Releases `n` bytes seen through [`peek`](Self::peek).
    pub fn consume(&mut self, n: usize) {
        match &mut self.loan {
            Some(l) => l.read += n.min(l.data.len() - l.read),
            None => self.conn.recv_consume(n),
        }
    }
    /// Free room in the send buffer.
    pub fn send_space(&self) -> usize {
        self.conn.send_capacity()
    }
    /// Copies as much of `data` as fits into the send buffer and returns the count
    /// (backpressure: a short count means full; [`TcpApp::on_writable`] follows).
    pub fn write(&mut self, data: &[u8]) -> usize {
        self.conn.send(data, self.now)
    }
    /// Hands `m` over to be sent without copying (zero-copy write): the mbuf joins the send
    /// buffer and its bytes leave by reference, e.g. a clone of a file's bytes kept in mbufs.
    /// Handed back when it does not fit [`send_space`](Self::send_space), is a chain, or the
    /// buffer holds as many separate mbufs as it can; [`TcpApp::on_writable`] follows.
    pub fn write_mbuf(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.conn.send_mbuf(m, self.now)
    }
    /// Bytes written but not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.conn.send_queued()
    }
    /// Half-close: FIN after the queued data; reading continues.
    pub fn shutdown(&mut self) {
        self.conn.shutdown_write(self.now)
    }
    /// Full close: FIN after the queued data (a reset if unread data remains). The socket
    /// gets no more callbacks.
    pub fn close(&mut self) {
        self.settle_loan();
        self.meta.attached = false;
        self.conn.close(self.now)
    }
    /// Abort: reset the connection now. The socket gets no more callbacks.
    pub fn abort(&mut self) {
        self.settle_loan();
        self.meta.attached = false;
        self.conn.abort(self.now)
    }
    /// The engine's connection, for counters and state the wrapper does not expose. (While
    /// `on_data` reads a segment in place, its bytes count as buffered there.)
    pub fn connection(&self) -> &Connection {
        self.conn
    }
    /// Ends a loan of in-place bytes: the unread rest moves to the receive ring, and reads
    /// go to the ring from now on.
    fn settle_loan(&mut self) {
        if let Some(l) = self.loan.take() {
            self.conn.settle_loan(l.read, l.unread());
        }
    }
}

struct ListenerEntry {
    listener: Listener,
    app: AppId,
    port_hint: u16,
}

/// Picks the local address (and port to send through) towards a peer.
pub type SourceFn = Arc<dyn Fn(Ipv4Addr) -> Option<(Ipv4Addr, u16)> + Send + Sync>;

/// Everything but the applications (so callbacks can borrow both).
struct Core {
    cfg: TcpConfig,
    params: LayerParams,
    isn: IsnGenerator,
    source: SourceFn,
    conns: Vec<Option<Connection>>,
    metas: Vec<SlotMeta>,
    free: Vec<u32>,
    /// Buffers of ended connections, reused by the next ones (at most one per slot).
    spares: Vec<Spare>,
    index: FlowIndex,
    wheel: TimerWheel,
    fired: Vec<u32>,
    dirty: Vec<u32>,
    deferred: Vec<u32>,
    listeners: Vec<ListenerEntry>,
    time_wait: usize,
    /// Where the next search for a TIME-WAIT slot to reclaim starts.
    reclaim_at: usize,
    next_ephemeral: u16,
    stats: LayerStats,
}

/// One lcore's TCP: a fixed-capacity connection table keyed by 4-tuple, listeners by local
/// port, a timer wheel, and the applications whose callbacks it runs.
pub struct TcpLayer {
    core: Core,
    apps: Vec<Box<dyn TcpApp>>,
}

/// What happened to a segment given to [`TcpLayer::input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOutcome {
    /// An existing connection took it.
    Connection,
    /// A listener took it (SYN, or a segment of a handshaking connection).
    Listener,
    /// No connection or listener: answered with a reset (none for a reset).
    NoListener,
    /// A SYN for a listener while the table is full: dropped.
    TableFull,
}

/// Wheel geometry: 2^20 ns (≈1 ms) ticks, 4096 buckets (≈4.3 s per turn).
const TICK_SHIFT: u32 = 20;
const WHEEL_BUCKETS: usize = 4096;
/// Event/callback rounds per connection per pump (a callback can cause new events).
const PUMP_ROUNDS: usize = 8;

impl TcpLayer {
    /// A layer whose connections use `cfg`, limited by `params`; `source` picks our address
    /// towards a peer for active opens; `now` starts the timer wheel.
    pub fn new(
        cfg: TcpConfig,
        params: LayerParams,
        isn: IsnGenerator,
        source: SourceFn,
        seed: u64,
        now: u64,
    ) -> Self {
        let cap = params.max_connections.max(1);
        TcpLayer {
            core: Core {
                cfg,
                params,
                isn,
                source,
                conns: (0..cap).map(|_| None).collect(),
                metas: (0..cap).map(|_| SlotMeta::default()).collect(),
                free: (0..cap as u32).rev().collect(),
                spares: Vec::with_capacity(cap),
                index: FlowIndex::new(cap, seed),
                wheel: TimerWheel::new(cap, WHEEL_BUCKETS, TICK_SHIFT, now),
                fired: Vec::with_capacity(cap),
                dirty: Vec::with_capacity(cap),
                deferred: Vec::with_capacity(cap),
                listeners: Vec::new(),
                time_wait: 0,
                reclaim_at: 0,
                next_ephemeral: params.ephemeral.0,
                stats: LayerStats::default(),
            },
            apps: Vec::new(),
        }
    }

    /// Adds an application; its id is what [`listen`](Self::listen) takes.
    pub fn add_app(&mut self, app: Box<dyn TcpApp>) -> AppId {
        self.apps.push(app);
        (self.apps.len() - 1) as AppId
    }

    /// Listens on `local` (address 0.0.0.0: every local address) for application `app`.
    pub fn listen(&mut self, local: SocketAddrV4, app: AppId) -> Result<(), TcpError> {
        let c = &mut self.core;
        if c.listeners.iter().any(|l| {
            let a = l.listener.local();
            a.port() == local.port()
                && (a.ip() == local.ip() || a.ip().is_unspecified() || local.ip().is_unspecified())
        }) {
            return Err(TcpError::AddrInUse);
        }
        c.listeners.push(ListenerEntry {
            listener: Listener::new(&c.cfg, c.isn.clone(), local, c.params.backlog),
            app,
            port_hint: 0,
        });
        // Address-specific listeners first, so they win over wildcards.
        c.listeners.sort_by_key(|l| {
            (
                l.listener.local().port(),
                l.listener.local().ip().is_unspecified(),
            )
        });
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> &LayerStats {
        &self.core.stats
    }

    /// Every application's [`TcpApp::counters`], in application order.
    pub fn app_counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        for app in &self.apps {
            app.counters(out);
        }
    }

    /// Buffer sets of ended connections waiting to be reused (not counting the listeners').
    pub fn spare_buffers(&self) -> usize {
        self.core.spares.len()
    }

    /// Connections in the table (every state).
    pub fn connections(&self) -> usize {
        self.core.index.len()
    }

    /// Connections in TIME-WAIT.
    pub fn time_wait(&self) -> usize {
        self.core.time_wait
    }

    /// The engine connection of `id`, if it still exists.
    pub fn connection(&self, id: SockId) -> Option<&Connection> {
        let m = self.core.metas.get(id.slot as usize)?;
        if m.gen != id.gen {
            return None;
        }
        self.core.conns[id.slot as usize].as_ref()
    }

    /// The listeners' engine state (counters, pending counts), in table order.
    pub fn listeners(&self) -> impl Iterator<Item = &Listener> {
        self.core.listeners.iter().map(|l| &l.listener)
    }

    /// Handles a checksummed, parsed segment from `src` to `dst` that arrived on port
    /// `rx_port`.
    pub fn input(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpSegment<'_>,
        rx_port: u16,
        now: u64,
        sink: &mut dyn SegmentSink,
    ) -> InputOutcome {
        self.input_inner(src, dst, seg, rx_port, now, sink, false)
    }

    /// Like [`input`](Self::input), but a segment for an established table entry only
    /// updates the engine: events, callbacks and output wait for
    /// [`flush_deferred`](Self::flush_deferred), which the caller must run before the end of
    /// the burst. A burst of segments of one connection then costs one pump: one
    /// `on_data`/`on_writable` round and one ACK covering all of them (like Linux's GRO
    /// turning a NAPI burst into one segment, one ACK), and the sender's output for all the
    /// ACKs of the burst is built in one go. Listener segments are handled at once.
    pub fn input_deferred(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpSegment<'_>,
        rx_port: u16,
        now: u64,
        sink: &mut dyn SegmentSink,
    ) -> InputOutcome {
        self.input_inner(src, dst, seg, rx_port, now, sink, true)
    }

    /// Pumps every connection that [`input_deferred`](Self::input_deferred) left pending:
    /// callbacks, output, timer re-arm. Output the sink refuses resumes on the next poll.
    pub fn flush_deferred(&mut self, now: u64, sink: &mut dyn SegmentSink) {
        let c = &mut self.core;
        for i in 0..c.deferred.len() {
            let slot = c.deferred[i];
            c.metas[slot as usize].deferred = false;
            pump(c, &mut self.apps, slot, now, sink);
        }
        c.deferred.clear();
    }

    #[allow(clippy::too_many_arguments)]
    fn input_inner(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpSegment<'_>,
        rx_port: u16,
        now: u64,
        sink: &mut dyn SegmentSink,
        defer: bool,
    ) -> InputOutcome {
        let c = &mut self.core;
        let key = FlowKey {
            local_ip: u32::from(dst),
            remote_ip: u32::from(src),
            local_port: seg.dst_port,
            remote_port: seg.src_port,
        };
        let metas = &c.metas;
        if let Some(slot) = c.index.get(&key, |s| metas[s as usize].key) {
            c.stats.segments_to_conns += 1;
            c.metas[slot as usize].port_hint = rx_port;
            if let Some(conn) = c.conns[slot as usize].as_mut() {
                let meta = &mut c.metas[slot as usize];
                if meta.attached {
                    if let Some(r) = conn.on_segment_lending(seg, now) {
                        let data = seg.payload_parts().range(r.start, r.end);
                        read_in_place(&mut self.apps, conn, meta, slot, data, now);
                    }
                } else {
                    conn.on_segment(seg, now);
                }
            }
            if defer {
                let m = &mut c.metas[slot as usize];
                if !m.deferred {
                    m.deferred = true;
                    c.deferred.push(slot);
                }
            } else {
                pump(c, &mut self.apps, slot, now, sink);
            }
            return InputOutcome::Connection;
        }
        let Some(li) = c.find_listener(dst, seg.dst_port) else {
            if let Some(h) = reset_for(seg) {
                if sink.room() > 0 {
                    c.stats.rst_sent += 1;
                    let t = Transmit {
                        src_addr: dst,
                        dst_addr: src,
                        header: h,
                        payload: Default::default(),
                        payload_mbufs: Default::default(),
                    };
                    sink.send(&t, rx_port);
                }
            }
            return InputOutcome::NoListener;
        };
        let is_syn = seg.has(TcpFlags::SYN) && !seg.has(TcpFlags::ACK);
        if is_syn && c.free.is_empty() && !c.reclaim_time_wait() {
            c.stats.syn_table_full += 1;
            return InputOutcome::TableFull;
        }
        c.stats.segments_to_listeners += 1;
        {
            let l = &mut c.listeners[li];
            l.port_hint = rx_port;
            if seg.has(TcpFlags::SYN) && l.listener.spares_len() == 0 {
                if let Some(spare) = c.spares.pop() {
                    // Full listeners give it back; it then waits in the layer's list.
                    if let Some(back) = l.listener.add_spare(spare) {
                        c.spares.push(back);
                    }
                }
            }
            l.listener.on_segment(src, dst, seg, now);
        }
        accept_all(c, &mut self.apps, li, now, sink);
        drain_listener(c, li, now, sink);
        InputOutcome::Listener
    }

    /// Once per loop turn: fires due timers, runs the applications' `poll`, and resumes
    /// output that the sink refused earlier.
    pub fn poll(&mut self, now: u64, sink: &mut dyn SegmentSink) {
        let c = &mut self.core;
        c.fired.clear();
        c.wheel.advance(now, &mut c.fired);
        for i in 0..c.fired.len() {
            let slot = c.fired[i];
            c.stats.timers += 1;
            if let Some(conn) = c.conns[slot as usize].as_mut() {
                conn.on_timer(now);
            }
            pump(c, &mut self.apps, slot, now, sink);
        }
        for li in 0..c.listeners.len() {
            let l = &mut c.listeners[li].listener;
            if l.next_timer().is_some_and(|t| t <= now) {
                l.on_timer(now);
                drain_listener(c, li, now, sink);
            }
        }
        for a in 0..self.apps.len() {
            let mut ctl = TcpControl {
                core: &mut *c,
                app: a as AppId,
                now,
            };
            self.apps[a].poll(&mut ctl);
        }
        // Sockets touched by the apps and output left over from a full sink.
        let mut i = 0;
        while i < c.dirty.len() {
            if sink.room() == 0 {
                break;
            }
            let slot = c.dirty[i];
            c.metas[slot as usize].dirty = false;
            i += 1;
            pump(c, &mut self.apps, slot, now, sink);
        }
        c.dirty.drain(..i);
    }

    /// Active open from application `app` (see [`TcpControl::connect`]), outside a poll.
    pub fn connect(
        &mut self,
        app: AppId,
        remote: SocketAddrV4,
        now: u64,
    ) -> Result<SockId, TcpError> {
        let mut ctl = TcpControl {
            core: &mut self.core,
            app,
            now,
        };
        ctl.connect(remote)
    }
}

impl Core {
    fn find_listener(&self, dst: Ipv4Addr, port: u16) -> Option<usize> {
        let start = self
            .listeners
            .partition_point(|l| l.listener.local().port() < port);
        self.listeners[start..]
            .iter()
            .take_while(|l| l.listener.local().port() == port)
            .position(|l| {
                let a = *l.listener.local().ip();
                a.is_unspecified() || a == dst
            })
            .map(|i| start + i)
    }

    fn mark_dirty(&mut self, slot: u32) {
        let m = &mut self.metas[slot as usize];
        if !m.dirty {
            m.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Puts `conn` in a free slot; the connection comes back when the table is full (moved,
    /// not copied, in the common case: the caller checked for a free slot).
    #[allow(clippy::result_large_err)]
    fn insert(
        &mut self,
        conn: Connection,
        app: AppId,
        port_hint: u16,
    ) -> Result<SockId, Connection> {
        if self.free.is_empty() {
            self.reclaim_time_wait();
        }
        let Some(slot) = self.free.pop() else {
            return Err(conn);
        };
        let key = FlowKey::new(conn.local(), conn.remote());
        let m = &mut self.metas[slot as usize];
        m.gen = m.gen.wrapping_add(1);
        m.key = key;
        m.app = app;
        m.user = 0;
        m.attached = false;
        m.in_time_wait = false;
        m.port_hint = port_hint;
        m.dirty = false;
        m.deferred = false;
        let id = SockId { slot, gen: m.gen };
        self.conns[slot as usize] = Some(conn);
        self.index.insert(&key, slot);
        Ok(id)
    }

    /// With the table full, frees one connection in TIME-WAIT (the next one found from a
    /// rotating position) so a new connection can take its slot: TIME-WAIT only guards
    /// against old duplicates of its 4-tuple, it must not lock new peers out for 2 MSL.
    /// Returns whether a slot was freed.
    fn reclaim_time_wait(&mut self) -> bool {
        if self.time_wait == 0 {
            return false;
        }
        let n = self.metas.len();
        for k in 0..n {
            let s = (self.reclaim_at + k) % n;
            if self.metas[s].in_time_wait && !self.metas[s].dirty && !self.metas[s].deferred {
                self.reclaim_at = (s + 1) % n;
                self.stats.time_wait_reclaimed += 1;
                self.release(s as u32);
                return true;
            }
        }
        false
    }

    fn release(&mut self, slot: u32) {
        let s = slot as usize;
        let key = self.metas[s].key;
        self.index.remove(&key, slot);
        self.wheel.set(slot, None);
        if self.metas[s].in_time_wait {
            self.time_wait -= 1;
        }
        self.metas[s].in_time_wait = false;
        self.metas[s].attached = false;
        self.metas[s].gen = self.metas[s].gen.wrapping_add(1);
        // The slot (index entry, timer links, bookkeeping) and the engine's buffers are both
        // recycled: the next accept or connect reuses the rings instead of allocating.
        if let Some(conn) = self.conns[s].take() {
            if self.spares.len() < self.spares.capacity() {
                self.spares.push(conn.into_spare());
            }
        }
        self.free.push(slot);
        self.stats.closed += 1;
    }

    fn pick_port(&mut self, local: Ipv4Addr, remote: SocketAddrV4) -> Option<u16> {
        let (lo, hi) = self.params.ephemeral;
        let span = (hi - lo) as u32 + 1;
        for _ in 0..span {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p >= hi { lo } else { p + 1 };
            let key = FlowKey::new(SocketAddrV4::new(local, p), remote);
            let metas = &self.metas;
            let steered = self
                .params
                .rss
                .is_none_or(|r| r.is_mine(*remote.ip(), remote.port(), local, p));
            if steered
                && self.index.get(&key, |s| metas[s as usize].key).is_none()
                && self.find_listener(local, p).is_none()
            {
                return Some(p);
            }
        }
        None
    }
}

/// Moves every completed handshake of listener `li` into the table.
fn accept_all(
    c: &mut Core,
    apps: &mut [Box<dyn TcpApp>],
    li: usize,
    now: u64,
    sink: &mut dyn SegmentSink,
) {
    while let Some(conn) = c.listeners[li].listener.accept() {
        let (app, hint) = (c.listeners[li].app, c.listeners[li].port_hint);
        match c.insert(conn, app, hint) {
            Ok(id) => {
                c.stats.accepted += 1;
                pump(c, apps, id.slot, now, sink);
            }
            Err(mut conn) => {
                c.stats.accept_table_full += 1;
                conn.abort(now);
                while sink.room() > 0 {
                    let Some(t) = conn.poll_transmit(now) else {
                        break;
                    };
                    sink.send(&t, hint);
                }
            }
        }
    }
}

fn drain_listener(c: &mut Core, li: usize, now: u64, sink: &mut dyn SegmentSink) {
    let l = &mut c.listeners[li];
    while sink.room() > 0 {
        let Some(t) = l.listener.poll_transmit(now) else {
            return;
        };
        sink.send(&t, l.port_hint);
    }
}

/// After anything happened to the connection in `slot`: hand its events to the application,
/// send what it has to send, re-arm its timer, and free the slot once it is closed.
fn pump(
    c: &mut Core,
    apps: &mut [Box<dyn TcpApp>],
    slot: u32,
    now: u64,
    sink: &mut dyn SegmentSink,
) {
    let s = slot as usize;
    let Some(conn) = c.conns[s].as_mut() else {
        return;
    };
    let meta = &mut c.metas[s];
    let id = SockId {
        slot,
        gen: meta.gen,
    };
    let mut ended = None;
    'rounds: for _ in 0..PUMP_ROUNDS {
        let mut any = false;
        while let Some(ev) = conn.poll_event() {
            any = true;
            let app = &mut apps[meta.app as usize];
            let reason = match ev {
                Event::Reset => Some(CloseReason::Reset),
                Event::TimedOut => Some(CloseReason::TimedOut),
                Event::Closed => Some(CloseReason::Closed),
                _ => None,
            };
            if let Some(r) = reason {
                match r {
                    CloseReason::Reset => c.stats.resets_in += 1,
                    CloseReason::TimedOut => c.stats.timeouts += 1,
                    CloseReason::Closed => {}
                }
                ended = Some(r);
                break 'rounds;
            }
            let passive = conn.is_passive();
            if ev == Event::Connected {
                if passive {
                    meta.attached = true;
                } else if !meta.attached {
                    continue;
                }
            }
            if !meta.attached {
                continue;
            }
            let mut sock = TcpSocket {
                conn: &mut *conn,
                meta: &mut *meta,
                id,
                now,
                loan: None,
            };
            match ev {
                Event::Connected if passive => app.on_accept(&mut sock),
                Event::Connected => app.on_connected(&mut sock),
                Event::Readable => app.on_data(&mut sock),
                Event::Writable => app.on_writable(&mut sock),
                Event::PeerClosed => app.on_peer_closed(&mut sock),
                _ => {}
            }
        }
        if !any {
            break;
        }
    }
    // Output.
    loop {
        if sink.room() == 0 {
            c.stats.tx_deferred += 1;
            if !meta.dirty {
                meta.dirty = true;
                c.dirty.push(slot);
            }
            break;
        }
        let Some(t) = conn.poll_transmit(now) else {
            break;
        };
        sink.send(&t, meta.port_hint);
    }
    let state = conn.state();
    if let Some(r) = ended.filter(|_| meta.attached) {
        end_socket(apps, conn, meta, id, now, r);
    }
    if state == State::TimeWait && !meta.in_time_wait {
        if meta.attached {
            end_socket(apps, conn, meta, id, now, CloseReason::Closed);
        }
        if c.time_wait >= c.params.max_time_wait {
            // Freed once its last segments are out (counted then, once).
            if !meta.dirty {
                c.stats.time_wait_overflow += 1;
                c.release(slot);
            }
            return;
        }
        meta.in_time_wait = true;
        c.time_wait += 1;
    }
    if state == State::Closed {
        if !meta.dirty {
            if ended.is_none() && meta.attached {
                end_socket(apps, conn, meta, id, now, CloseReason::Closed);
            }
            c.release(slot);
        }
        return;
    }
    let next = conn.next_timer();
    c.wheel.set(slot, next);
}

/// Runs `on_data` over `data`, in-order bytes the connection lent instead of copying into
/// its receive ring (see [`Connection::on_segment_lending`]), then settles the loan: what
/// the application did not consume is copied into the ring and read later as usual.
fn read_in_place(
    apps: &mut [Box<dyn TcpApp>],
    conn: &mut Connection,
    meta: &mut SlotMeta,
    slot: u32,
    data: Payload<'_>,
    now: u64,
) {
    // (A close or abort inside `on_data` settles the loan first.)
    let id = SockId {
        slot,
        gen: meta.gen,
    };
    let app = meta.app as usize;
    let mut sock = TcpSocket {
        conn,
        meta,
        id,
        now,
        loan: Some(Loan { data, read: 0 }),
    };
    apps[app].on_data(&mut sock);
    sock.settle_loan();
}

/// Tells the application its socket ends: [`TcpApp::on_ending`] with the socket, then
/// [`TcpApp::on_close`]; the socket is detached after.
fn end_socket(
    apps: &mut [Box<dyn TcpApp>],
    conn: &mut Connection,
    meta: &mut SlotMeta,
    id: SockId,
    now: u64,
    reason: CloseReason,
) {
    let app = meta.app as usize;
    let mut sock = TcpSocket {
        conn,
        meta: &mut *meta,
        id,
        now,
        loan: None,
    };
    apps[app].on_ending(&mut sock, reason);
    meta.attached = false;
    apps[app].on_close(id, reason);
}

/// What an application can do from [`TcpApp::poll`]: open connections and reach its sockets
/// by id.
pub struct TcpControl<'a> {
    core: &'a mut Core,
    app: AppId,
    now: u64,
}

impl TcpControl<'_> {
    /// The time of this poll (ns).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Active open towards `remote` from an ephemeral port of our address on the route to
    /// it. The handshake completes later with [`TcpApp::on_connected`] (or
    /// [`TcpApp::on_close`] on failure).
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<SockId, TcpError> {
        let c = &mut *self.core;
        let fail = |c: &mut Core, e| {
            c.stats.connect_failed += 1;
            Err(e)
        };
        if c.free.is_empty() {
            return fail(c, TcpError::TableFull);
        }
        let Some((local_ip, port_hint)) = (c.source)(*remote.ip()) else {
            return fail(c, TcpError::NoRoute);
        };
        let Some(lport) = c.pick_port(local_ip, remote) else {
            return fail(c, TcpError::NoPort);
        };
        let local = SocketAddrV4::new(local_ip, lport);
        let spare = c.spares.pop();
        let conn = Connection::connect_with(&c.cfg, &c.isn, local, remote, self.now, spare);
        let Ok(id) = c.insert(conn, self.app, port_hint) else {
            return fail(c, TcpError::TableFull);
        };
        c.metas[id.slot as usize].attached = true;
        c.stats.connects += 1;
        c.mark_dirty(id.slot);
        Ok(id)
    }

    /// The socket `id` if it still exists and belongs to this application. Whatever is done
    /// through it is sent at the end of this poll.
    pub fn socket(&mut self, id: SockId) -> Option<TcpSocket<'_>> {
        let c = &mut *self.core;
        let s = id.slot as usize;
        let m = c.metas.get(s)?;
        if m.gen != id.gen || m.app != self.app || !m.attached {
            return None;
        }
        c.conns[s].as_ref()?;
        c.mark_dirty(id.slot);
        Some(TcpSocket {
            conn: c.conns[s].as_mut()?,
            meta: &mut c.metas[s],
            id,
            now: self.now,
            loan: None,
        })
    }
}

/// Segments a layer sent, as wire bytes (checksummed), with their addresses: tests join
/// layers through it.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct WireLog(pub(crate) Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>);

#[cfg(test)]
impl SegmentSink for WireLog {
    fn room(&self) -> usize {
        usize::MAX
    }
    fn send(&mut self, t: &Transmit<'_>, _port_hint: u16) {
        let mut b = vec![0; t.buffer_len()];
        t.emit(&mut b);
        self.0.push((t.src_addr, t.dst_addr, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::tcp::rss::{RssSteer, SYMMETRIC_KEY};
    use crate::tcp::TcpSegment;
    use std::sync::Mutex;

    struct Null;
    impl TcpApp for Null {
        fn on_data(&mut self, _s: &mut TcpSocket<'_>) {}
    }

    struct Count(usize);
    impl SegmentSink for Count {
        fn room(&self) -> usize {
            usize::MAX
        }
        fn send(&mut self, _t: &Transmit<'_>, _port_hint: u16) {
            self.0 += 1;
        }
    }

    fn layer(params: LayerParams) -> TcpLayer {
        let src: SourceFn = Arc::new(|_| Some((Ipv4Addr::new(198, 18, 0, 1), 0)));
        TcpLayer::new(
            TcpConfig::default(),
            params,
            IsnGenerator::new([7; 16]),
            src,
            42,
            0,
        )
    }

    #[test]
    fn active_opens_pick_steered_unique_ports_until_the_table_is_full() {
        let rss = RssSteer {
            key: SYMMETRIC_KEY,
            queues: 4,
            queue: 1,
        };
        let mut l = layer(LayerParams {
            max_connections: 40,
            rss: Some(rss),
            ..LayerParams::default()
        });
        let app = l.add_app(Box::new(Null));
        let remote: SocketAddrV4 = "198.18.0.2:80".parse().unwrap();
        let mut ports = Vec::new();
        for _ in 0..40 {
            let id = l.connect(app, remote, 0).unwrap();
            let c = l.connection(id).unwrap();
            assert_eq!(*c.local().ip(), Ipv4Addr::new(198, 18, 0, 1));
            let p = c.local().port();
            assert!(
                rss.is_mine(*remote.ip(), 80, *c.local().ip(), p),
                "port {p}"
            );
            assert!(!ports.contains(&p));
            ports.push(p);
        }
        assert_eq!(l.connect(app, remote, 0), Err(TcpError::TableFull));
        assert_eq!(l.connections(), 40);
        // The SYNs go out on the next poll.
        let mut sink = Count(0);
        l.poll(1, &mut sink);
        assert_eq!(sink.0, 40);
        assert_eq!(l.stats().connects, 40);
        assert_eq!(l.stats().connect_failed, 1);
    }

    #[test]
    fn ended_connections_leave_their_buffers_to_the_next_ones() {
        let mut l = layer(LayerParams {
            max_connections: 8,
            ..LayerParams::default()
        });
        let app = l.add_app(Box::new(Null));
        let remote: SocketAddrV4 = "198.18.0.2:80".parse().unwrap();
        for _ in 0..4 {
            l.connect(app, remote, 0).unwrap();
        }
        assert_eq!(l.spare_buffers(), 0);
        // Nobody answers: the SYN retries run out and the four connections fail.
        let mut sink = Count(0);
        let mut now = 0;
        while l.connections() > 0 && now < 600 * crate::tcp::SEC {
            now += crate::tcp::SEC / 10;
            l.poll(now, &mut sink);
        }
        assert_eq!(l.connections(), 0);
        assert_eq!((l.stats().closed, l.stats().timeouts), (4, 4));
        assert_eq!(l.spare_buffers(), 4);
        // The next connections take them (and work: their SYNs go out).
        let before = sink.0;
        for _ in 0..3 {
            l.connect(app, remote, now).unwrap();
        }
        assert_eq!(l.spare_buffers(), 1);
        l.poll(now + 1, &mut sink);
        assert_eq!(sink.0 - before, 3);
    }

    #[test]
    fn ephemeral_ports_run_out_cleanly() {
        let mut l = layer(LayerParams {
            ephemeral: (50000, 50003),
            ..LayerParams::default()
        });
        let app = l.add_app(Box::new(Null));
        let remote: SocketAddrV4 = "198.18.0.2:80".parse().unwrap();
        for _ in 0..4 {
            l.connect(app, remote, 0).unwrap();
        }
        assert_eq!(l.connect(app, remote, 0), Err(TcpError::NoPort));
        // Another peer can reuse the same local ports.
        let other: SocketAddrV4 = "198.18.0.3:80".parse().unwrap();
        assert!(l.connect(app, other, 0).is_ok());
    }

    /// Writes `stream` on connect and as space frees up.
    struct Writer {
        stream: Arc<Vec<u8>>,
        at: usize,
    }
    impl TcpApp for Writer {
        fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
            self.on_writable(s);
        }
        fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
            self.at += s.write(&self.stream[self.at..]);
        }
        fn on_data(&mut self, _s: &mut TcpSocket<'_>) {}
    }

    /// Reads a varying part of what `on_data` offers: nothing, a few bytes through
    /// `peek`/`consume`, some through `recv`, or everything.
    struct Nibbler {
        got: Arc<Mutex<Vec<u8>>>,
        calls: usize,
        in_place: Arc<Mutex<u64>>,
        id: Option<SockId>,
    }
    impl TcpApp for Nibbler {
        fn on_accept(&mut self, s: &mut TcpSocket<'_>) {
            self.id = Some(s.id());
        }
        /// What `on_data` left gets read here, so the stream never waits on the window.
        fn poll(&mut self, ctl: &mut TcpControl<'_>) {
            if let Some(mut s) = self.id.and_then(|id| ctl.socket(id)) {
                let mut buf = vec![0; 4096];
                let n = s.recv(&mut buf);
                self.got.lock().unwrap().extend_from_slice(&buf[..n]);
                *self.in_place.lock().unwrap() = s.connection().stats().bytes_in_place;
            }
        }
        fn on_data(&mut self, s: &mut TcpSocket<'_>) {
            self.calls += 1;
            let mut got = self.got.lock().unwrap();
            // A scrambled choice, so calls on lent data get every behaviour.
            // (Reading nothing is only done while little is buffered: data left unread gets no
            // new call until more arrives, and a full buffer would stop that.)
            match (self.calls.wrapping_mul(0x9e37_79b9) >> 11) % 4 {
                0 if s.available() < 4096 => {}
                1 => {
                    let [a, b] = s.peek();
                    let n = (a.len() + b.len()).min(777);
                    let take = [a, b].concat();
                    got.extend_from_slice(&take[..n]);
                    s.consume(n);
                }
                2 => {
                    let mut buf = vec![0; 1000];
                    let n = s.recv(&mut buf);
                    got.extend_from_slice(&buf[..n]);
                }
                _ => {
                    let n = s.available();
                    let [a, b] = s.peek();
                    assert_eq!(a.len() + b.len(), n);
                    got.extend_from_slice(a);
                    got.extend_from_slice(b);
                    s.consume(n);
                }
            }
            *self.in_place.lock().unwrap() = s.connection().stats().bytes_in_place;
        }
    }

    #[test]
    fn data_read_in_place_or_left_for_later_arrives_whole_and_in_order() {
        let stream: Arc<Vec<u8>> =
            Arc::new((0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect());
        let got = Arc::new(Mutex::new(Vec::new()));
        let in_place = Arc::new(Mutex::new(0));
        let a_ip = Ipv4Addr::new(198, 18, 0, 2);
        let b_ip = Ipv4Addr::new(198, 18, 0, 1);
        let mut a = TcpLayer::new(
            TcpConfig::default(),
            LayerParams::default(),
            IsnGenerator::new([1; 16]),
            Arc::new(move |_| Some((a_ip, 0))),
            1,
            0,
        );
        let mut b = layer(LayerParams::default());
        let wa = a.add_app(Box::new(Writer {
            stream: stream.clone(),
            at: 0,
        }));
        let nb = b.add_app(Box::new(Nibbler {
            got: got.clone(),
            calls: 0,
            in_place: in_place.clone(),
            id: None,
        }));
        b.listen(SocketAddrV4::new(b_ip, 80), nb).unwrap();
        a.connect(wa, SocketAddrV4::new(b_ip, 80), 0).unwrap();
        let (mut to_b, mut to_a) = (WireLog::default(), WireLog::default());
        let mut now = 1;
        for _ in 0..100_000 {
            if got.lock().unwrap().len() >= stream.len() {
                break;
            }
            now += 20_000;
            a.poll(now, &mut to_b);
            b.poll(now, &mut to_a);
            // Deliver in bursts, as an rx burst would (deferred input, one flush).
            for (src, dst, bytes) in std::mem::take(&mut to_b.0) {
                let seg = TcpSegment::parse(&bytes).unwrap();
                b.input_deferred(src, dst, &seg, 0, now, &mut to_a);
            }
            b.flush_deferred(now, &mut to_a);
            for (src, dst, bytes) in std::mem::take(&mut to_a.0) {
                let seg = TcpSegment::parse(&bytes).unwrap();
                a.input(src, dst, &seg, 0, now, &mut to_b);
            }
        }
        let got = got.lock().unwrap();
        assert_eq!(got.len(), stream.len());
        assert!(*got == **stream, "bytes differ");
        let in_place = *in_place.lock().unwrap();
        // Both paths ran: some bytes were read in the arriving segments, others from the
        // ring after the application left them.
        assert!(in_place > 2_000, "{in_place} bytes read in place");
        assert!(in_place < stream.len() as u64 - 10_000, "{in_place}");
    }
}
