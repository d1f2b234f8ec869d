//! The connection state machine (RFC 9293 §3.10) with its timers, buffers, options,
//! retransmission and congestion control.

use std::fmt;
use std::net::SocketAddrV4;
use std::ops::Range;

use super::buffer::{RecvBuffer, SendBuffer};
use super::cc::{Congestion, CongestionAlgorithm, CongestionControl};
use super::config::{TcpConfig, MS, SEC};
use super::isn::IsnGenerator;
use super::rtt::RttEstimator;
use super::sack::{BlockVerdict, Scoreboard, SCOREBOARD_RANGES};
use super::segment::{Payload, TcpHeader, TcpOptions, TcpSegment, Timestamps, Transmit};
use super::seq::Seq;
use crate::mem::Mbuf;
use crate::wire::TcpFlags;

/// Connection states (RFC 9293 §3.3.2). LISTEN is a [`Listener`](super::Listener), not a
/// connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection: never opened, or finished (the terminal event says how).
    Closed,
    /// Our SYN is sent; waiting for the peer's SYN.
    SynSent,
    /// Both SYNs seen; waiting for the ACK of ours.
    SynReceived,
    /// Open in both directions.
    Established,
    /// We closed (FIN queued or sent); waiting for its ACK.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed first, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both FINs acknowledged; waiting 2·MSL for stray segments.
    TimeWait,
}

impl State {
    /// True once both SYNs are acknowledged and the connection has not ended (every state
    /// but CLOSED, SYN-SENT and SYN-RECEIVED).
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::Closed | State::SynSent | State::SynReceived)
    }

    /// The RFC name, e.g. `"FIN-WAIT-1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a connection, for the application. Events coalesce: each kind is pending
/// at most once, and [`Connection::poll_event`] returns them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The handshake completed.
    Connected,
    /// New in-order data can be read.
    Readable,
    /// Send buffer space became free after a [`Connection::send`] could not take everything.
    Writable,
    /// The peer sent FIN: after the buffered data, reads return nothing more.
    PeerClosed,
    /// The peer reset the connection (or refused it). Terminal.
    Reset,
    /// Retransmissions, SYN retries, zero-window probes or keepalive probes went unanswered.
    /// Terminal.
    TimedOut,
    /// The connection ended normally (after TIME-WAIT, the ACK of our FIN in LAST-ACK, or
    /// [`Connection::abort`] / [`Connection::close`] ending it). Terminal.
    Closed,
}

const EV_CONNECTED: u8 = 1 << 0;
const EV_READABLE: u8 = 1 << 1;
const EV_WRITABLE: u8 = 1 << 2;
const EV_PEER_CLOSED: u8 = 1 << 3;
const EV_RESET: u8 = 1 << 4;
const EV_TIMED_OUT: u8 = 1 << 5;
const EV_CLOSED: u8 = 1 << 6;
const EVENT_ORDER: [(u8, Event); 7] = [
    (EV_CONNECTED, Event::Connected),
    (EV_READABLE, Event::Readable),
    (EV_WRITABLE, Event::Writable),
    (EV_PEER_CLOSED, Event::PeerClosed),
    (EV_RESET, Event::Reset),
    (EV_TIMED_OUT, Event::TimedOut),
    (EV_CLOSED, Event::Closed),
];

/// MSS assumed when the peer sends none (RFC 9293 §3.7.1).
pub const DEFAULT_MSS: u16 = 536;
/// The smallest send MSS we accept from a peer (Linux `tcp_min_snd_mss`).
const MIN_SND_MSS: u32 = 48;
/// Bytes per send-buffer chunk: the configured MSS, the most payload a segment can carry (the
/// MSS in use is never larger), so each segment's payload lies in at most two chunks.
fn send_chunk(cfg: &TcpConfig) -> usize {
    (cfg.mss as usize).max(MIN_SND_MSS as usize)
}

/// How long a write that found the send buffer's pool empty waits before `Writable` is offered again.
const STARVED_RETRY: u64 = MS;
/// Bytes the timestamps option takes in every segment (with its two NOPs).
const TS_OPTION_LEN: u32 = 12;
/// TS.Recent is invalid after 24 days without an update (RFC 7323 §5.5).
const PAWS_IDLE: u64 = 24 * 24 * 3600 * SEC;
/// RTO after a retransmitted SYN when there was no RTT sample (RFC 6298 §5.7).
const RTO_AFTER_SYN_LOSS: u64 = 3 * SEC;

/// Per-connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Segments received (handed to [`Connection::on_segment`]).
    pub segments_in: u64,
    /// Segments produced by [`Connection::poll_transmit`].
    pub segments_out: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Payload bytes delivered in order to the receive buffer.
    pub bytes_in: u64,
    /// Of `bytes_in`, those the application read in place, in the received packet, without
    /// a copy into the receive buffer (see [`Connection::on_segment_lending`]).
    pub bytes_in_place: u64,
    /// Data segments (or FINs) sent again.
    pub retransmits: u64,
    /// Fast retransmits (third duplicate ACK, or `IsLost` with SACK): loss recoveries
    /// entered.
    pub fast_retransmits: u64,
    /// Payload bytes sent again (every retransmission mechanism).
    pub bytes_retransmitted: u64,
    /// Loss recoveries run by SACK (RFC 6675) rather than NewReno.
    pub sack_recoveries: u64,
    /// Received SACK blocks rejected as invalid (inverted, or beyond what was sent).
    pub sack_blocks_rejected: u64,
    /// Retransmission timer expiries.
    pub rto_expirations: u64,
    /// Duplicate ACKs received.
    pub dupacks_in: u64,
    /// Segments that arrived out of order and were stored.
    pub ooo_segments: u64,
    /// Out-of-order segments dropped (byte or range limit).
    pub ooo_dropped: u64,
    /// Segments outside the receive window (answered with an ACK).
    pub out_of_window: u64,
    /// Segments rejected by PAWS (RFC 7323).
    pub paws_rejected: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the rate limit.
    pub challenge_acks_suppressed: u64,
    /// Resets received (accepted or not).
    pub rst_in: u64,
    /// Zero-window probes (and persist-timer forced sends).
    pub window_probes: u64,
    /// Keepalive probes sent.
    pub keepalive_probes: u64,
    /// ACKs sent with no data (pure ACKs, window updates, challenge ACKs).
    pub pure_acks_out: u64,
}

#[derive(Debug, Clone, Copy)]
struct RstReply {
    seq: Seq,
    ack: Option<Seq>,
}

/// A TCP connection: a sans-IO state machine.
///
/// Feed it received segments with [`on_segment`](Self::on_segment), application calls
/// ([`send`](Self::send), [`recv`](Self::recv), [`shutdown_write`](Self::shutdown_write),
/// [`close`](Self::close), [`abort`](Self::abort)) and timer expiries with
/// [`on_timer`](Self::on_timer); after each, drain [`poll_transmit`](Self::poll_transmit)
/// until it returns `None`, drain [`poll_event`](Self::poll_event), and arm a timer for
/// [`next_timer`](Self::next_timer). Time is a `u64` of nanoseconds from any fixed origin,
/// passed in by the caller; nothing here reads a clock, allocates after construction, or
/// does I/O.
pub struct Connection {
    cfg: TcpConfig,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    state: State,
    passive: bool,

    // Send sequence space (RFC 9293 §3.3.1). `snd_nxt` is rewound to `snd_una` by a
    // retransmission timeout (go-back-N); `snd_max` is the highest sequence number sent.
    iss: Seq,
    snd_una: Seq,
    snd_nxt: Seq,
    snd_max: Seq,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: Seq,
    snd_wl2: Seq,
    /// End of the last sub-MSS segment sent (Minshall's Nagle variant).
    snd_sml: Seq,
    sbuf: SendBuffer,
    /// Sequence number of the first byte in `sbuf`.
    sbuf_seq: Seq,
    fin_queued: bool,

    // Receive sequence space.
    irs: Seq,
    rcv_nxt: Seq,
    /// Right edge of the window we last advertised.
    rcv_adv: Seq,
    rbuf: RecvBuffer,
    /// A FIN that arrived ahead of a gap.
    ooo_fin: Option<Seq>,
    fin_received: bool,
    app_closed: bool,

    // Negotiated options.
    mss: u32,
    snd_wscale: u8,
    rcv_wscale: u8,
    ws_ok: bool,
    ts_ok: bool,
    sack_ok: bool,
    ts_recent: u32,
    ts_recent_at: u64,
    ts_offset: u32,
    last_ack_sent: Seq,

    // RTT and congestion.
    rtt: RttEstimator,
    /// Without timestamps: one timed segment (end sequence, send time); cleared by any
    /// retransmission (Karn).
    rtt_probe: Option<(Seq, u64)>,
    syn_sends: u32,
    syn_retransmitted: bool,
    /// Created from a SYN cookie: the handshake ACK's TSecr echoes the option bits, not a
    /// clean TSval, so it gives no RTT sample.
    from_cookie: bool,
    cc: Congestion,
    in_recovery: bool,
    /// The recovery point (RFC 6582 `recover`, RFC 6675 `RecoveryPoint`).
    recover: Seq,
    /// SACKed ranges above `snd_una` (RFC 6675), when SACK was negotiated.
    sb: Scoreboard,
    /// End of the data retransmitted in the current SACK recovery (RFC 6675 `HighRxt`).
    high_rxt: Seq,
    /// Whether this SACK recovery made its rescue retransmission (RFC 6675 `RescueRxt`,
    /// which is always the recovery point when set).
    rescued: bool,
    recovery_cwnd: u32,
    dupacks: u32,
    /// Limited transmit (RFC 3042): new segments allowed beyond `cwnd` (0 to 2), one per
    /// duplicate ACK (or, with SACK, per ACK that SACKs new data) outside recovery.
    limited_tx: u32,

    // Timers (absolute deadlines) and their counters.
    rto_at: Option<u64>,
    retries: u32,
    persist_at: Option<u64>,
    persist_backoff: u32,
    probes_unanswered: u32,
    delack_at: Option<u64>,
    keepalive_at: Option<u64>,
    keepalive_probes: u32,
    close_at: Option<u64>,

    // What poll_transmit owes.
    ack_now: bool,
    rtx_pending: bool,
    probe_pending: bool,
    force_send: bool,
    rst_pending: Option<RstReply>,

    // ACK policy.
    quickack: u32,
    rcv_unacked: u32,
    rcv_mss: u32,

    challenge_start: Option<u64>,
    challenge_count: u32,
    last_rx: u64,
    last_tx: u64,

    events: u8,
    want_writable: bool,
    /// When to offer `Writable` again after a write found the send buffer's pool empty.
    starved_at: Option<u64>,
    /// True during [`Connection::on_segment_lending`]: in-order data may be lent.
    lending: bool,
    /// The lent part of the segment being handled, as a range of its payload.
    lent: Option<Range<usize>>,
    stats: ConnectionStats,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("snd_max", &self.snd_max)
            .field("snd_wnd", &self.snd_wnd)
            .field("rcv_nxt", &self.rcv_nxt)
            .field("rcv_wnd", &self.rcv_wnd())
            .field("cwnd", &self.cwnd())
            .field("rto", &self.rtt.rto())
            .finish_non_exhaustive()
    }
}

/// The heap parts of a finished connection (send and receive rings, SACK scoreboard), kept
/// so the next connection is built without allocating: [`Connection::into_spare`] takes them,
/// the `*_with` constructors reuse them when the sizes match the config.
#[derive(Debug)]
pub struct Spare {
    sbuf: SendBuffer,
    rbuf: RecvBuffer,
    sb: Scoreboard,
}

impl Connection {
    /// Ends this connection object and keeps its buffers for the next one.
    pub fn into_spare(self) -> Spare {
        Spare {
            sbuf: self.sbuf,
            rbuf: self.rbuf,
            sb: self.sb,
        }
    }

    fn new_inner(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        now: u64,
        spare: Option<Spare>,
    ) -> Self {
        let iss = isn.isn(local, remote, now);
        let mss = (cfg.mss as u32).min(DEFAULT_MSS as u32);
        let sb_ranges = if cfg.sack { SCOREBOARD_RANGES } else { 1 };
        let (sbuf, rbuf, sb) = match spare {
            Some(s) => (
                s.sbuf.reuse(cfg.send_buffer, send_chunk(cfg)),
                s.rbuf
                    .reuse(cfg.recv_buffer, cfg.max_ooo_ranges, cfg.max_ooo_bytes),
                s.sb.reuse(sb_ranges),
            ),
            None => (
                SendBuffer::new(cfg.send_buffer, send_chunk(cfg)),
                RecvBuffer::new(cfg.recv_buffer, cfg.max_ooo_ranges, cfg.max_ooo_bytes),
                Scoreboard::new(sb_ranges),
            ),
        };
        Connection {
            cfg: *cfg,
            local,
            remote,
            state: State::Closed,
            passive: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            snd_sml: iss,
            sbuf,
            sbuf_seq: iss + 1,
            fin_queued: false,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            rbuf,
            ooo_fin: None,
            fin_received: false,
            app_closed: false,
            mss,
            snd_wscale: 0,
            rcv_wscale: 0,
            ws_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_at: now,
            ts_offset: isn.ts_offset(local, remote),
            last_ack_sent: Seq(0),
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_probe: None,
            syn_sends: 0,
            syn_retransmitted: false,
            from_cookie: false,
            cc: Congestion::new(cfg.congestion, mss, cfg.initial_window_segments * mss),
            in_recovery: false,
            recover: iss,
            sb,
            high_rxt: iss,
            rescued: false,
            recovery_cwnd: 0,
            dupacks: 0,
            limited_tx: 0,
            rto_at: None,
            retries: 0,
            persist_at: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            delack_at: None,
            keepalive_at: None,
            keepalive_probes: 0,
            close_at: None,
            ack_now: false,
            rtx_pending: false,
            probe_pending: false,
            force_send: false,
            rst_pending: None,
            quickack: 0,
            rcv_unacked: 0,
            rcv_mss: DEFAULT_MSS as u32,
            challenge_start: None,
            challenge_count: 0,
            last_rx: now,
            last_tx: now,
            events: 0,
            lending: false,
            lent: None,
            want_writable: false,
            starved_at: None,
            stats: ConnectionStats::default(),
        }
    }

    /// Active open: a connection in SYN-SENT whose SYN [`poll_transmit`](Self::poll_transmit)
    /// returns next. The ISN comes from `isn` (RFC 6528).
    pub fn connect(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        now: u64,
    ) -> Self {
        Self::connect_with(cfg, isn, local, remote, now, None)
    }

    /// [`connect`](Self::connect) reusing the buffers of a finished connection.
    pub fn connect_with(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        now: u64,
        spare: Option<Spare>,
    ) -> Self {
        let mut c = Self::new_inner(cfg, isn, local, remote, now, spare);
        c.state = State::SynSent;
        c
    }

    /// Passive open from a received SYN (what [`Listener`](super::Listener) does): a
    /// connection in SYN-RECEIVED whose SYN-ACK [`poll_transmit`](Self::poll_transmit)
    /// returns next. `None` unless `syn` has SYN set and ACK and RST clear.
    pub fn accept_syn(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpSegment<'_>,
        now: u64,
    ) -> Option<Self> {
        Self::accept_syn_with(cfg, isn, local, remote, syn, now, &mut None)
    }

    /// [`accept_syn`](Self::accept_syn) reusing the buffers in `spare` (taken only when the
    /// segment is a SYN).
    pub fn accept_syn_with(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpSegment<'_>,
        now: u64,
        spare: &mut Option<Spare>,
    ) -> Option<Self> {
        if !syn.has(TcpFlags::SYN) || syn.has(TcpFlags::ACK) || syn.has(TcpFlags::RST) {
            return None;
        }
        let mut c = Self::new_inner(cfg, isn, local, remote, now, spare.take());
        c.state = State::SynReceived;
        c.passive = true;
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.last_ack_sent = c.rcv_nxt;
        c.negotiate(&syn.options, now);
        c.snd_wnd = syn.window as u32;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c.snd_wl2 = c.iss;
        c.stats.segments_in = 1;
        Some(c)
    }

    /// A connection rebuilt from a validated SYN cookie (what [`Listener`](super::Listener)
    /// does with the returning ACK): SYN-RECEIVED with our SYN-ACK (ISN `iss`) already sent
    /// and the peer's ISN `irs`; `opts` are the options recovered from the cookie (MSS,
    /// window scale, SACK-permitted, and timestamps with the ACK's TSval). Feed it the ACK
    /// next with [`on_segment`](Self::on_segment).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_cookie(
        cfg: &TcpConfig,
        isn: &IsnGenerator,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        irs: Seq,
        opts: TcpOptions,
        now: u64,
        spare: &mut Option<Spare>,
    ) -> Option<Self> {
        let syn = TcpSegment {
            header: TcpHeader {
                src_port: remote.port(),
                dst_port: local.port(),
                seq: irs,
                ack: Seq(0),
                flags: TcpFlags::SYN,
                window: 0,
                options: opts,
            },
            payload: &[],
            payload_tail: &[],
        };
        let mut c = Self::accept_syn_with(cfg, isn, local, remote, &syn, now, spare)?;
        c.iss = iss;
        c.snd_una = iss;
        c.snd_nxt = iss + 1;
        c.snd_max = iss + 1;
        c.sbuf_seq = iss + 1;
        c.snd_wl2 = iss;
        c.snd_sml = iss;
        c.recover = iss;
        c.high_rxt = iss;
        c.syn_sends = 1;
        c.from_cookie = true;
        // The window our SYN-ACK offered (never scaled).
        c.rcv_adv = c.rcv_nxt + c.rbuf.free().min(0xffff) as u32;
        c.stats.segments_in = 0;
        c.stats.segments_out = 1;
        Some(c)
    }

    // ----------------------------------------------------------------- accessors

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// True for a connection created by a listener (passive open).
    pub fn is_passive(&self) -> bool {
        self.passive
    }

    /// Counters.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// Our initial sequence number.
    pub fn iss(&self) -> Seq {
        self.iss
    }

    /// The peer's initial sequence number (zero before its SYN).
    pub fn irs(&self) -> Seq {
        self.irs
    }

    /// Payload bytes per full-sized segment we send (MSS after options).
    pub fn mss(&self) -> u32 {
        self.mss
    }

    /// The current retransmission timeout (backoff included), ns.
    pub fn rto(&self) -> u64 {
        self.rtt.rto()
    }

    /// Smoothed RTT, once measured, ns.
    pub fn srtt(&self) -> Option<u64> {
        self.rtt.srtt()
    }

    /// Congestion window in bytes (the inflated window during fast recovery).
    pub fn cwnd(&self) -> u32 {
        if self.in_recovery && !self.sack_ok {
            self.recovery_cwnd
        } else {
            self.cc.cwnd()
        }
    }

    /// The congestion control algorithm in use.
    pub fn congestion_algorithm(&self) -> CongestionAlgorithm {
        self.cc.algorithm()
    }

    /// Slow-start threshold in bytes.
    pub fn ssthresh(&self) -> u32 {
        self.cc.ssthresh()
    }

    /// True during loss recovery (SACK-based, RFC 6675, or NewReno fast recovery).
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// The pipe estimate (RFC 6675 `SetPipe`): bytes presumed in the network. Without SACK
    /// information it is the flight size.
    pub fn pipe(&self) -> u32 {
        self.sb
            .pipe(self.snd_una, self.snd_max, self.high_rxt, self.mss)
    }

    /// Bytes the peer has selectively acknowledged above `SND.UNA`.
    pub fn sacked_bytes(&self) -> u32 {
        self.sb.sacked_bytes()
    }

    /// Ranges in the SACK scoreboard (at most a fixed bound).
    pub fn sack_scoreboard_len(&self) -> usize {
        self.sb.len()
    }

    /// The peer's receive window (scaled), bytes.
    pub fn send_window(&self) -> u32 {
        self.snd_wnd
    }

    /// The receive window we last advertised that is still open, bytes.
    pub fn recv_window(&self) -> u32 {
        self.rcv_wnd()
    }

    /// Window scale shifts in force: (applied to the peer's window, applied to ours).
    pub fn window_scales(&self) -> (u8, u8) {
        (self.snd_wscale, self.rcv_wscale)
    }

    /// True when timestamps were negotiated.
    pub fn timestamps_enabled(&self) -> bool {
        self.ts_ok
    }

    /// True when SACK was negotiated.
    pub fn sack_enabled(&self) -> bool {
        self.sack_ok
    }

    /// Bytes sent and not yet acknowledged (sequence space, SYN and FIN included).
    pub fn bytes_in_flight(&self) -> u32 {
        self.snd_max.since(self.snd_una)
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.sbuf.len()
    }

    /// Free space in the send buffer: what [`send`](Self::send) would accept now.
    pub fn send_capacity(&self) -> usize {
        if self.can_queue() {
            self.sbuf.free()
        } else {
            0
        }
    }

    /// In-order bytes ready for [`recv`](Self::recv).
    pub fn recv_available(&self) -> usize {
        self.rbuf.len()
    }

    /// Out-of-order bytes held in the receive buffer.
    pub fn recv_ooo_bytes(&self) -> usize {
        self.rbuf.ooo_bytes()
    }

    /// True once the peer's FIN was received: after the buffered bytes there is nothing more.
    pub fn is_read_closed(&self) -> bool {
        self.fin_received
    }

    // ----------------------------------------------------------------- application calls

    fn can_queue(&self) -> bool {
        !self.fin_queued
            && matches!(
                self.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            )
    }

    /// Copies as much of `data` as fits into the send buffer and returns the count (0 when
    /// full, or when the connection can no longer send). A short count arms a
    /// [`Event::Writable`] for when space frees up.
    pub fn send(&mut self, data: &[u8], now: u64) -> usize {
        if !self.can_queue() {
            return 0;
        }
        let n = self.sbuf.write(data);
        if n < data.len() {
            self.want_writable = true;
            if self.sbuf.starved() {
                // Room, but every chunk is still referenced by segments on their way: no
                // acknowledgement will free one, so look again shortly.
                self.starved_at = Some(now + STARVED_RETRY);
            }
        }
        self.update_timers(now);
        n
    }

    /// Queues the bytes of `m` without copying them: the mbuf joins the send buffer as is and
    /// its bytes go to the wire by reference. Handed back when it does not fit the free space
    /// ([`send_capacity`](Self::send_capacity)), is a chain, or the connection can no longer
    /// send, or when the buffer already holds as many separate mbufs as it can (then a
    /// [`Event::Writable`] follows when acknowledgements free some).
    pub fn send_mbuf(&mut self, m: Mbuf, now: u64) -> Result<(), Mbuf> {
        if !self.can_queue() {
            return Err(m);
        }
        let r = self.sbuf.give(m);
        if r.is_err() {
            self.want_writable = true;
        }
        self.update_timers(now);
        r
    }

    /// Copies received in-order bytes into `buf`, releases them, and returns the count (0
    /// when none are buffered; see [`is_read_closed`](Self::is_read_closed) for end of
    /// stream). Reading may make a window update due.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let n = self.rbuf.read(buf);
        if n > 0 {
            self.after_read();
        }
        n
    }

    /// Zero-copy read: the buffered in-order bytes as up to two slices of the receive ring.
    /// Release them with [`recv_consume`](Self::recv_consume).
    pub fn recv_peek(&self) -> [&[u8]; 2] {
        self.rbuf.peek()
    }

    /// Releases `n` bytes returned by [`recv_peek`](Self::recv_peek).
    pub fn recv_consume(&mut self, n: usize) {
        let n = n.min(self.rbuf.len());
        if n > 0 {
            self.rbuf.consume(n);
            self.after_read();
        }
    }

    /// Half-close: a FIN follows the queued data; receiving continues (FIN-WAIT-1, or
    /// LAST-ACK from CLOSE-WAIT). Before the handshake completes, the FIN waits for it.
    pub fn shutdown_write(&mut self, now: u64) {
        match self.state {
            State::SynSent | State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
        self.update_timers(now);
    }

    /// Full close: like [`shutdown_write`](Self::shutdown_write), and the application will
    /// not read any more. With unread data in the receive buffer, or if data arrives later,
    /// the connection is reset instead (RFC 9293 §3.6, RFC 2525 §2.17). An orphaned
    /// connection waits at most `fin_wait2_timeout` for the peer's FIN. Closing in SYN-SENT
    /// just ends the connection.
    pub fn close(&mut self, now: u64) {
        self.app_closed = true;
        match self.state {
            State::Closed => {}
            State::SynSent => self.terminate(EV_CLOSED),
            _ if self.rbuf.len() > 0 => self.abort(now),
            _ => {
                self.shutdown_write(now);
                if self.state == State::FinWait2 {
                    self.close_at = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
        }
        self.update_timers(now);
    }

    /// Abort: sends a reset (unless nothing was synchronized yet) and ends the connection
    /// at once with [`Event::Closed`].
    pub fn abort(&mut self, _now: u64) {
        match self.state {
            State::Closed => {}
            State::SynSent | State::TimeWait => self.terminate(EV_CLOSED),
            _ => {
                self.rst_pending = Some(RstReply {
                    seq: self.snd_max,
                    ack: Some(self.rcv_nxt),
                });
                self.terminate(EV_CLOSED);
            }
        }
    }

    /// The next pending event, if any (see [`Event`] for the order).
    pub fn poll_event(&mut self) -> Option<Event> {
        for (bit, ev) in EVENT_ORDER {
            if self.events & bit != 0 {
                self.events &= !bit;
                return Some(ev);
            }
        }
        None
    }

    // ----------------------------------------------------------------- timers

    /// The earliest deadline (ns) at which [`on_timer`](Self::on_timer) has work, if any.
    pub fn next_timer(&self) -> Option<u64> {
        [
            self.rto_at,
            self.persist_at,
            self.delack_at,
            self.keepalive_at,
            self.close_at,
            self.starved_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles every timer due at `now` (calling it early is harmless).
    pub fn on_timer(&mut self, now: u64) {
        if self.starved_at.is_some_and(|t| t <= now) {
            self.starved_at = None;
            if self.want_writable {
                self.want_writable = false;
                self.events |= EV_WRITABLE;
            }
        }
        if self.close_at.is_some_and(|t| t <= now) {
            self.close_at = None;
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.terminate(EV_CLOSED);
                return;
            }
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.on_rto(now);
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            self.on_persist(now);
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            self.on_keepalive(now);
        }
        self.update_timers(now);
    }

    fn on_rto(&mut self, now: u64) {
        let limit = match self.state {
            State::SynSent => self.cfg.syn_retries,
            State::SynReceived => self.cfg.synack_retries,
            State::Closed | State::TimeWait | State::FinWait2 => return,
            _ => self.cfg.retries,
        };
        if self.snd_una == self.snd_max {
            return;
        }
        self.retries += 1;
        if self.retries > limit {
            self.terminate(EV_TIMED_OUT);
            return;
        }
        self.stats.rto_expirations += 1;
        self.rtt.backoff();
        self.rtt_probe = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                self.syn_retransmitted = true;
                self.snd_nxt = self.iss;
            }
            _ => {
                let flight = self.snd_max.since(self.snd_una);
                self.cc.on_rto(flight, now);
                self.in_recovery = false;
                // RFC 6675 §5.1: the SACK information may be stale (reneging); start over.
                self.sb.clear();
                self.high_rxt = self.snd_una;
                self.dupacks = 0;
                self.limited_tx = 0;
                self.recover = self.snd_max;
                self.snd_nxt = self.snd_una;
            }
        }
        self.rto_at = Some(now + self.rtt.rto());
    }

    fn persist_interval(&self) -> u64 {
        let base = self.rtt.rto();
        base.checked_shl(self.persist_backoff)
            .filter(|v| v >> self.persist_backoff == base)
            .unwrap_or(u64::MAX)
            .min(self.cfg.rto_max)
    }

    fn on_persist(&mut self, now: u64) {
        if !self.send_state() || self.unsent() == 0 || self.snd_una != self.snd_max {
            return;
        }
        self.probes_unanswered += 1;
        if self.probes_unanswered > self.cfg.retries {
            self.terminate(EV_TIMED_OUT);
            return;
        }
        self.stats.window_probes += 1;
        if self.snd_wnd > 0 {
            // A window too small for the sender rules: send what fits (RFC 9293 §3.8.6.2.1,
            // the "override timeout").
            self.force_send = true;
        } else {
            self.probe_pending = true;
        }
        self.persist_backoff = (self.persist_backoff + 1).min(32);
        self.persist_at = Some(now + self.persist_interval());
    }

    fn on_keepalive(&mut self, now: u64) {
        let Some(ka) = self.cfg.keepalive else {
            return;
        };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_una != self.snd_max || self.unsent() > 0 {
            // The retransmission or persist timer watches the peer.
            self.keepalive_at = Some(now + ka.idle);
            return;
        }
        if self.keepalive_probes >= ka.count {
            self.rst_pending = Some(RstReply {
                seq: self.snd_max,
                ack: Some(self.rcv_nxt),
            });
            self.terminate(EV_TIMED_OUT);
            return;
        }
        self.keepalive_probes += 1;
        self.stats.keepalive_probes += 1;
        self.probe_pending = true;
        self.keepalive_at = Some(now + ka.interval);
    }

    /// Arms or disarms the persist and keepalive timers after any change.
    fn update_timers(&mut self, now: u64) {
        if self.state == State::Closed {
            self.clear_timers();
            return;
        }
        let unsent = self.unsent();
        if self.send_state()
            && unsent > 0
            && self.snd_una == self.snd_max
            && self.window_blocked(unsent)
        {
            if self.persist_at.is_none() {
                self.persist_at = Some(now + self.persist_interval());
            }
        } else {
            self.persist_at = None;
            self.persist_backoff = 0;
        }
        match self.cfg.keepalive {
            Some(ka) if matches!(self.state, State::Established | State::CloseWait) => {
                if self.keepalive_at.is_none() {
                    self.keepalive_at = Some((self.last_rx + ka.idle).max(now));
                }
            }
            _ => self.keepalive_at = None,
        }
    }

    fn clear_timers(&mut self) {
        self.rto_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.keepalive_at = None;
        self.close_at = None;
    }

    // ----------------------------------------------------------------- helpers

    fn terminate(&mut self, event: u8) {
        self.state = State::Closed;
        self.events |= event;
        self.clear_timers();
        self.ack_now = false;
        self.rtx_pending = false;
        self.probe_pending = false;
        self.force_send = false;
    }

    fn rcv_wnd(&self) -> u32 {
        if self.rcv_adv.gt(self.rcv_nxt) {
            self.rcv_adv.since(self.rcv_nxt)
        } else {
            0
        }
    }

    fn ts_now(&self, now: u64) -> u32 {
        ((now / MS) as u32).wrapping_add(self.ts_offset)
    }

    /// States in which data or a FIN may (still) be sent.
    fn send_state(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// Queued bytes not yet sent (from `snd_nxt`).
    fn unsent(&self) -> usize {
        let off = self.snd_nxt.since(self.sbuf_seq) as usize;
        self.sbuf.len().saturating_sub(off)
    }

    fn fin_seq(&self) -> Seq {
        self.sbuf_seq + self.sbuf.len() as u32
    }

    fn sack_option_len(&self) -> u32 {
        if self.sack_ok && self.rbuf.has_ooo() {
            let n = self
                .rbuf
                .sack_blocks(self.max_sack_blocks())
                .as_slice()
                .len() as u32;
            4 + 8 * n
        } else {
            0
        }
    }

    fn max_sack_blocks(&self) -> usize {
        if self.ts_ok {
            3
        } else {
            4
        }
    }

    /// Payload bytes in a full segment sent now (less while SACK blocks ride along).
    fn max_payload(&self) -> u32 {
        self.mss.saturating_sub(self.sack_option_len()).max(1)
    }

    fn window_blocked(&self, unsent: usize) -> bool {
        let room = self.snd_wnd as usize;
        let want = unsent.min(self.max_payload() as usize);
        room < want && !(room > 0 && room >= (self.max_snd_wnd / 2) as usize)
    }

    fn negotiate(&mut self, opts: &TcpOptions, now: u64) {
        let peer_mss = opts.mss.unwrap_or(DEFAULT_MSS) as u32;
        // Window scaling is on only if both sides offered it (RFC 7323 §2.2).
        match opts.wscale {
            Some(ws) if self.cfg.window_scaling => {
                self.ws_ok = true;
                self.snd_wscale = ws.min(14);
                self.rcv_wscale = self.cfg.wscale();
            }
            _ => {
                self.ws_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok = self.cfg.sack && opts.sack_permitted;
        self.ts_ok = false;
        if let (true, Some(ts)) = (self.cfg.timestamps, opts.timestamps) {
            self.ts_ok = true;
            self.ts_recent = ts.tsval;
            self.ts_recent_at = now;
        }
        let overhead = if self.ts_ok { TS_OPTION_LEN } else { 0 };
        self.mss = peer_mss
            .min(self.cfg.mss as u32)
            .saturating_sub(overhead)
            .max(MIN_SND_MSS);
    }

    fn establish(&mut self, now: u64) {
        // Full-sized segments (their size now known) each take one send-buffer chunk.
        self.sbuf.fit(self.mss as usize);
        self.state = if self.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        self.events |= EV_CONNECTED;
        let iw = if self.syn_retransmitted {
            // RFC 6928 §2 / RFC 5681 §3.1: one segment after a lost SYN or SYN-ACK.
            self.mss
        } else {
            self.cfg.initial_window_segments.saturating_mul(self.mss)
        };
        self.cc = Congestion::new(self.cfg.congestion, self.mss, iw);
        if let Some(srtt) = self.rtt.srtt() {
            self.cc.on_rtt_sample(srtt, now);
        }
        if self.syn_retransmitted {
            self.rtt.set_base_if_unsampled(RTO_AFTER_SYN_LOSS);
        }
        self.recover = self.snd_una;
        self.snd_sml = self.snd_una;
        self.quickack = self.cfg.quickack_segments;
        self.retries = 0;
    }

    fn enter_time_wait(&mut self, now: u64) {
        self.state = State::TimeWait;
        self.clear_timers();
        self.close_at = Some(now + 2 * self.cfg.msl);
        self.ack_now = true;
    }

    fn challenge_ack(&mut self, now: u64) {
        let start = *self.challenge_start.get_or_insert(now);
        if now.saturating_sub(start) >= SEC {
            self.challenge_start = Some(now);
            self.challenge_count = 0;
        }
        if self.challenge_count < self.cfg.challenge_ack_limit {
            self.challenge_count += 1;
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            self.stats.challenge_acks_suppressed += 1;
        }
    }

    fn after_read(&mut self) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        // Linux's rule (`__tcp_cleanup_rbuf`): update the peer when the window we could
        // offer now is at least twice the one it has.
        let cur = self.rcv_wnd();
        let cap = self.rbuf.cap() as u32;
        if cur.saturating_mul(2) <= cap {
            let new = self.sws_window(cur);
            if new > cur && new >= cur.saturating_mul(2) {
                self.ack_now = true;
            }
        }
    }

    /// The receive window by receiver-side silly window avoidance (RFC 9293 §3.8.6.2.2):
    /// move the right edge only when it gains at least min(RCV.BUFF / 2, MSS).
    fn sws_window(&self, cur: u32) -> u32 {
        let free = self.rbuf.free() as u32;
        let thresh = (self.rbuf.cap() as u32 / 2).min(self.cfg.mss as u32);
        if free >= cur.saturating_add(thresh) {
            free
        } else {
            cur
        }
    }

    /// The window field for a segment with ACK, updating the advertised right edge. It never
    /// moves the right edge left (RFC 9293 §3.8.6).
    fn select_window(&mut self) -> u16 {
        let cur = self.rcv_wnd();
        let wnd = self.sws_window(cur);
        let shift = self.rcv_wscale;
        let mut field = (wnd >> shift).min(0xffff);
        if (self.rcv_nxt + (field << shift)).lt(self.rcv_adv) {
            field = cur.div_ceil(1 << shift).min(0xffff);
        }
        let edge = self.rcv_nxt + (field << shift);
        if edge.gt(self.rcv_adv) {
            self.rcv_adv = edge;
        }
        field as u16
    }

    // ----------------------------------------------------------------- output

    /// The next segment to send, or `None` when there is nothing to send now. Drain it in a
    /// loop after every input; each call returns one segment whose payload borrows the send
    /// buffer.
    pub fn poll_transmit(&mut self, now: u64) -> Option<Transmit<'_>> {
        let Some((header, off, len)) = self.next_segment(now) else {
            self.update_timers(now);
            return None;
        };
        self.stats.segments_out += 1;
        self.last_tx = now;
        let (payload, mbufs) = self.sbuf.payload(off, len);
        Some(Transmit {
            src_addr: *self.local.ip(),
            dst_addr: *self.remote.ip(),
            header,
            payload,
            payload_mbufs: mbufs,
        })
    }

    fn next_segment(&mut self, now: u64) -> Option<(TcpHeader, usize, usize)> {
        if let Some(r) = self.rst_pending.take() {
            let mut flags = TcpFlags::RST;
            if r.ack.is_some() {
                flags |= TcpFlags::ACK;
            }
            let h = TcpHeader {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                seq: r.seq,
                ack: r.ack.unwrap_or(Seq(0)),
                flags,
                window: 0,
                options: TcpOptions::default(),
            };
            return Some((h, 0, 0));
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived => {
                if self.snd_nxt == self.iss {
                    let h = self.syn_header(now);
                    if self.syn_sends == 0 && !self.ts_ok_offered() {
                        self.rtt_probe = Some((self.iss + 1, now));
                    }
                    self.syn_sends += 1;
                    self.snd_nxt = self.iss + 1;
                    self.snd_max = self.snd_max.max(self.snd_nxt);
                    if self.rto_at.is_none() {
                        self.rto_at = Some(now + self.rtt.rto());
                    }
                    return Some((h, 0, 0));
                }
                if self.state == State::SynReceived && self.ack_now {
                    return Some((self.pure_ack(now), 0, 0));
                }
                return None;
            }
            _ => {}
        }
        if self.in_recovery && self.sack_ok {
            if let Some(s) = self.sack_next_segment(now) {
                self.probe_pending = false;
                return Some(s);
            }
        } else {
            if self.rtx_pending {
                self.rtx_pending = false;
                if let Some(s) = self.retransmit_at(self.snd_una, self.snd_max, now) {
                    return Some(s);
                }
            }
            if let Some(s) = self.send_data(now, None) {
                // Data draws an ACK from the peer just as a probe would.
                self.probe_pending = false;
                return Some(s);
            }
        }
        if self.probe_pending {
            self.probe_pending = false;
            // Zero-window and keepalive probes: an old sequence number with no data, which
            // any TCP answers with an ACK carrying its current window (as Linux does).
            let h = self.header(self.snd_una - 1, TcpFlags::ACK, now);
            self.stats.pure_acks_out += 1;
            return Some((h, 0, 0));
        }
        if self.ack_now && self.state != State::Closed {
            return Some((self.pure_ack(now), 0, 0));
        }
        None
    }

    /// True when we put timestamps in our SYN (then RTT comes from TSecr, not a probe).
    fn ts_ok_offered(&self) -> bool {
        match self.state {
            State::SynSent => self.cfg.timestamps,
            _ => self.ts_ok,
        }
    }

    fn pure_ack(&mut self, now: u64) -> TcpHeader {
        self.stats.pure_acks_out += 1;
        self.header(self.snd_max, TcpFlags::ACK, now)
    }

    fn syn_header(&mut self, now: u64) -> TcpHeader {
        let tsval = self.ts_now(now);
        let mut options = TcpOptions {
            mss: Some(self.cfg.mss),
            ..Default::default()
        };
        let mut flags = TcpFlags::SYN;
        if self.state == State::SynSent {
            options.wscale = self.cfg.window_scaling.then(|| self.cfg.wscale());
            options.sack_permitted = self.cfg.sack;
            options.timestamps = self
                .cfg
                .timestamps
                .then_some(Timestamps { tsval, tsecr: 0 });
        } else {
            flags |= TcpFlags::ACK;
            options.wscale = self.ws_ok.then_some(self.rcv_wscale);
            options.sack_permitted = self.sack_ok;
            options.timestamps = self.ts_ok.then_some(Timestamps {
                tsval,
                tsecr: self.ts_recent,
            });
        }
        // The window of a SYN is never scaled (RFC 7323 §2.2).
        let window = self.rbuf.free().min(0xffff) as u16;
        if flags.contains(TcpFlags::ACK) {
            self.rcv_adv = self.rcv_nxt + window as u32;
            self.acked_now();
        }
        if self.syn_sends > 0 {
            self.stats.retransmits += 1;
        }
        TcpHeader {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack: if flags.contains(TcpFlags::ACK) {
                self.rcv_nxt
            } else {
                Seq(0)
            },
            flags,
            window,
            options,
        }
    }

    /// A header for a segment with ACK: timestamps, SACK blocks, window; marks the ACK sent.
    fn header(&mut self, seq: Seq, flags: TcpFlags, now: u64) -> TcpHeader {
        let mut options = TcpOptions::default();
        if self.ts_ok {
            options.timestamps = Some(Timestamps {
                tsval: self.ts_now(now),
                tsecr: self.ts_recent,
            });
        }
        if self.sack_ok && self.rbuf.has_ooo() {
            options.sack_blocks = self.rbuf.sack_blocks(self.max_sack_blocks());
        }
        let window = self.select_window();
        self.acked_now();
        TcpHeader {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: self.rcv_nxt,
            flags,
            window,
            options,
        }
    }

    fn acked_now(&mut self) {
        self.ack_now = false;
        self.delack_at = None;
        self.rcv_unacked = 0;
        self.last_ack_sent = self.rcv_nxt;
    }

    /// `NextSeg` and the transmission loop of SACK-based loss recovery (RFC 6675 §4, §5):
    /// the first retransmission goes at once; after it, segments go while
    /// `cwnd − pipe ≥ SMSS`: (1) the first lost hole above `HighRxt`, (2) new data, (3) a
    /// hole not yet deemed lost below the highest SACKed byte, (4) once per recovery, the
    /// rescue retransmission of the last unSACKed segment, so a lost tail does not wait for
    /// the retransmission timeout.
    fn sack_next_segment(&mut self, now: u64) -> Option<(TcpHeader, usize, usize)> {
        if !self.send_state() {
            return None;
        }
        if std::mem::take(&mut self.rtx_pending) {
            // RFC 6675 §5 step (4.3): the segment at HighACK + 1, whatever the pipe.
            let end = self
                .sb
                .next_sacked_after(self.snd_una)
                .unwrap_or(self.snd_max);
            if let Some(s) = self.retransmit_at(self.snd_una, end, now) {
                return Some(s);
            }
        }
        let pipe = self.pipe();
        let cwnd = self.cc.cwnd();
        let room = cwnd.saturating_sub(pipe);
        if room < self.mss {
            return None;
        }
        let from = self.high_rxt.max(self.snd_una);
        let hole = self.sb.next_hole(from, self.snd_una, self.mss);
        if let Some(h) = hole.filter(|h| h.lost) {
            return self.retransmit_at(h.start, h.end, now);
        }
        if let Some(s) = self.send_data(now, Some(room)) {
            return Some(s);
        }
        if let Some(h) = hole {
            return self.retransmit_at(h.start, h.end, now);
        }
        if !self.rescued {
            // Rule 4: RescueRxt = RecoveryPoint; HighRxt does not move.
            let tail = self.snd_max.since(self.snd_una).min(self.max_payload());
            let mut start = self.snd_max - tail;
            if let Some(e) = self.sb.highest_end().filter(|e| e.gt(start)) {
                start = e;
            }
            if start.lt(self.snd_max) {
                self.rescued = true;
                let high_rxt = self.high_rxt;
                let seg = self.retransmit_at(start, self.snd_max, now);
                self.high_rxt = high_rxt;
                return seg;
            }
        }
        None
    }

    /// New data (or, after a timeout, go-back-N retransmission) within the windows. `budget`
    /// replaces the congestion window's room during SACK recovery (`cwnd − pipe`).
    fn send_data(&mut self, now: u64, budget: Option<u32>) -> Option<(TcpHeader, usize, usize)> {
        let force = std::mem::take(&mut self.force_send);
        if !self.send_state() {
            return None;
        }
        if self.snd_nxt.lt(self.snd_max) {
            // Go-back-N after a timeout skips what the peer has SACKed since.
            if let Some(end) = self.sb.sacked_end_at(self.snd_nxt) {
                self.snd_nxt = end.min(self.snd_max);
            }
        }
        let off = self.snd_nxt.since(self.sbuf_seq) as usize;
        if off > self.sbuf.len() {
            return None; // the FIN is sent
        }
        let unsent = self.sbuf.len() - off;
        if unsent == 0 && !self.fin_queued {
            return None;
        }
        let in_flight = self.snd_nxt.since(self.snd_una);
        let retransmission = self.snd_nxt.lt(self.snd_max);
        if !retransmission && in_flight == 0 && self.snd_una == self.snd_max {
            // RFC 5681 §4.1: restart from at most the initial window after an idle RTO.
            if now.saturating_sub(self.last_tx) >= self.rtt.rto() {
                let iw = self.cfg.initial_window_segments.saturating_mul(self.mss);
                self.cc.on_idle_restart(iw);
            }
        }
        let max_seg = self.max_payload() as usize;
        let mut usable = match budget {
            Some(room) => self.snd_wnd.saturating_sub(in_flight).min(room) as usize,
            None => {
                // Limited transmit: only new data, only outside recovery.
                let lt = if self.in_recovery || retransmission {
                    0
                } else {
                    self.limited_tx * self.mss
                };
                self.snd_wnd
                    .min(self.cwnd().saturating_add(lt))
                    .saturating_sub(in_flight) as usize
            }
        };
        if retransmission && in_flight == 0 {
            // The first segment after a timeout goes even into a closed window.
            usable = usable.max(max_seg);
        }
        if force {
            usable = usable.max((self.snd_wnd as usize).min(max_seg));
        }
        // A segment carries at most two send-buffer chunks: cut there (only handed-over
        // chunks smaller than a segment make this bite).
        let span = self.sbuf.span(off);
        let mut len = unsent.min(max_seg).min(usable).min(span);
        if retransmission {
            // Stop at the next SACKed range.
            if let Some(next) = self.sb.next_sacked_after(self.snd_nxt) {
                len = len.min(next.since(self.snd_nxt) as usize);
            }
        }
        let fin = self.fin_queued && off + len == self.sbuf.len();
        if len == 0 && !fin {
            return None;
        }
        // Cut short by chunks while more data waits: as good as a full segment (Nagle).
        let cut = len == span && span < unsent.min(max_seg);
        if len > 0 && !force && !retransmission {
            let full = len == max_seg || cut;
            let all = len == unsent;
            let nagle_ok = self.cfg.nodelay || fin || !self.snd_sml.gt(self.snd_una);
            let big = self.max_snd_wnd > 0 && len >= (self.max_snd_wnd / 2) as usize;
            if !(full || (all && nagle_ok) || big) {
                return None;
            }
        }
        let seq = self.snd_nxt;
        let mut flags = TcpFlags::ACK;
        if off + len == self.sbuf.len() && len > 0 {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let h = self.header(seq, flags, now);
        if retransmission {
            self.stats.retransmits += 1;
            self.stats.bytes_retransmitted += len as u64;
            self.rtt_probe = None;
        } else if !self.ts_ok && self.rtt_probe.is_none() && len > 0 {
            self.rtt_probe = Some((seq + len as u32, now));
        }
        if len < max_seg && len > 0 && !cut {
            self.snd_sml = seq + len as u32;
        }
        self.stats.bytes_out += len as u64;
        self.snd_nxt = seq + len as u32 + fin as u32;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        Some((h, off, len))
    }

    /// Sends again (at most one segment of) the sent data `[seq, end)`, `seq` at or above
    /// `SND.UNA`: the fast retransmit, a NewReno partial ACK's hole, or a SACK hole. A FIN
    /// that was sent goes along when the range reaches it. Advances `HighRxt`.
    fn retransmit_at(&mut self, seq: Seq, end: Seq, now: u64) -> Option<(TcpHeader, usize, usize)> {
        if self.snd_una == self.snd_max || seq.lt(self.snd_una) || !seq.lt(end) {
            return None;
        }
        let end = end.min(self.snd_max);
        if !seq.lt(end) {
            return None;
        }
        let off = seq.since(self.sbuf_seq) as usize;
        let avail = self.sbuf.len().saturating_sub(off);
        let sent = avail.min(end.since(seq) as usize);
        let len = sent
            .min(self.max_payload() as usize)
            .min(self.sbuf.span(off));
        let fin_sent = self.fin_queued && self.snd_max.gt(self.fin_seq());
        let fin = fin_sent && off + len == self.sbuf.len() && (seq + len as u32).lt(end);
        if len == 0 && !fin {
            return None;
        }
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        let h = self.header(seq, flags, now);
        self.stats.retransmits += 1;
        self.stats.bytes_out += len as u64;
        self.stats.bytes_retransmitted += len as u64;
        self.rtt_probe = None;
        let seg_end = seq + len as u32 + fin as u32;
        if self.snd_nxt.lt(seg_end) {
            self.snd_nxt = seg_end;
        }
        if self.high_rxt.lt(seg_end) {
            self.high_rxt = seg_end;
        }
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        Some((h, off, len))
    }

    // ----------------------------------------------------------------- input

    /// Processes one received segment addressed to this connection (the caller has matched
    /// the 4-tuple and verified the checksum).
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, now: u64) {
        self.on_segment_inner(seg, now)
    }

    /// Like [`on_segment`](Self::on_segment), but in-order payload that finds the receive
    /// buffer empty is *lent* rather than copied: it counts as received (window, ACK) while
    /// it stays where it is, and the returned range of the payload (both parts,
    /// [`TcpSegment::payload_parts`]) is what the application may read in place. The caller must then call
    /// [`settle_loan`](Self::settle_loan) before anything else touches this connection;
    /// until then the receive buffer cannot be read through the engine.
    ///
    /// Data is lent only when nothing but readable/writable events is pending (so an
    /// application never sees data before its connect/accept callback).
    pub fn on_segment_lending(&mut self, seg: &TcpSegment<'_>, now: u64) -> Option<Range<usize>> {
        self.lending = true;
        self.on_segment_inner(seg, now);
        self.lending = false;
        self.lent.take()
    }

    /// Ends a loan from [`on_segment_lending`](Self::on_segment_lending): the application
    /// read the first `read` lent bytes, and `rest` (the lent bytes after those) is copied
    /// into the receive buffer.
    pub fn settle_loan(&mut self, read: usize, rest: Payload<'_>) {
        self.rbuf.settle(read, rest);
        self.stats.bytes_in_place += read as u64;
        if read > 0 {
            self.after_read();
        }
        if self.rbuf.len() == 0 {
            self.events &= !EV_READABLE;
        }
    }

    fn on_segment_inner(&mut self, seg: &TcpSegment<'_>, now: u64) {
        self.stats.segments_in += 1;
        match self.state {
            State::Closed => return,
            State::SynSent => self.on_segment_syn_sent(seg, now),
            _ => self.on_segment_other(seg, now),
        }
        self.update_timers(now);
    }

    fn on_segment_syn_sent(&mut self, seg: &TcpSegment<'_>, now: u64) {
        let ack = seg.has(TcpFlags::ACK);
        if ack && (seg.ack.le(self.iss) || seg.ack.gt(self.snd_max)) {
            if !seg.has(TcpFlags::RST) {
                self.rst_pending = Some(RstReply {
                    seq: seg.ack,
                    ack: None,
                });
            }
            return;
        }
        if seg.has(TcpFlags::RST) {
            self.stats.rst_in += 1;
            if ack {
                self.terminate(EV_RESET);
            }
            return;
        }
        if !seg.has(TcpFlags::SYN) {
            return;
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        // The window our SYN offered (never scaled) is the right edge until we send again.
        self.rcv_adv = self.rcv_nxt + self.rbuf.free().min(0xffff) as u32;
        self.last_ack_sent = self.rcv_nxt;
        self.negotiate(&seg.options, now);
        self.snd_wnd = seg.window as u32;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.last_rx = now;
        if ack {
            self.snd_una = seg.ack;
            self.take_rtt_sample(seg, now);
            self.rto_at = None;
            self.establish(now);
            self.ack_now = true;
        } else {
            // Simultaneous open: our SYN goes again, as a SYN-ACK.
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            self.rtt_probe = None;
        }
    }

    fn on_segment_other(&mut self, seg: &TcpSegment<'_>, now: u64) {
        let rst = seg.has(TcpFlags::RST);
        let syn = seg.has(TcpFlags::SYN);
        let fin = seg.has(TcpFlags::FIN);
        let plen = seg.payload_len() as u32;

        // TIME-WAIT: a retransmitted FIN is acknowledged again and restarts 2·MSL.
        if self.state == State::TimeWait
            && fin
            && !rst
            && !syn
            && seg.seq + plen + 1 == self.rcv_nxt
        {
            self.close_at = Some(now + 2 * self.cfg.msl);
            self.ack_now = true;
            return;
        }

        // PAWS (RFC 7323 §5.3), before the sequence check; resets are exempt.
        if self.ts_ok && !rst {
            if let Some(ts) = seg.options.timestamps {
                let old = (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0;
                if old
                    && now.saturating_sub(self.ts_recent_at) < PAWS_IDLE
                    && !self.disordered_ack(seg, ts.tsval)
                {
                    self.stats.paws_rejected += 1;
                    self.ack_now = true;
                    return;
                }
            }
        }

        let wnd = self.rcv_wnd();
        // RST (RFC 5961 §3.2): exact match resets, in-window gets a challenge ACK.
        if rst {
            self.stats.rst_in += 1;
            if seg.seq == self.rcv_nxt {
                self.peer_reset();
            } else if seg.seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd) {
                self.challenge_ack(now);
            }
            return;
        }

        // SYN in a synchronized state (RFC 5961 §4): challenge ACK, whatever its sequence.
        if syn {
            if self.state == State::SynReceived && seg.seq == self.irs {
                if !seg.has(TcpFlags::ACK) {
                    // The peer retransmitted its SYN: our SYN-ACK was lost.
                    self.snd_nxt = self.iss;
                    return;
                }
                if seg.ack == self.iss + 1 {
                    // Simultaneous open: the peer's SYN-ACK acknowledges our SYN. (Its
                    // window, like any SYN's, is not scaled.)
                    self.snd_una = seg.ack;
                    self.snd_wnd = seg.window as u32;
                    self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                    self.snd_wl1 = seg.seq;
                    self.snd_wl2 = seg.ack;
                    self.rto_at = None;
                    self.last_rx = now;
                    self.establish(now);
                    self.ack_now = true;
                    return;
                }
            }
            self.challenge_ack(now);
            return;
        }

        // Sequence acceptability (RFC 9293 §3.10.7.4), with the zero-window allowance for
        // ACKs and a bare FIN at RCV.NXT. Zero-length segments may sit on the right edge.
        let seg_len = plen + fin as u32;
        let acceptable = if seg_len == 0 {
            seg.seq.ge(self.rcv_nxt) && seg.seq.le(self.rcv_nxt + wnd)
        } else if wnd == 0 {
            seg.seq == self.rcv_nxt
        } else {
            let end = seg.seq + (seg_len - 1);
            seg.seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd)
                || end.in_range(self.rcv_nxt, self.rcv_nxt + wnd)
        };
        if !acceptable {
            self.stats.out_of_window += 1;
            self.ack_now = true;
            return;
        }

        // TS.Recent (RFC 7323 §4.3).
        if self.ts_ok {
            if let Some(ts) = seg.options.timestamps {
                if seg.seq.le(self.last_ack_sent)
                    && (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0
                {
                    self.ts_recent = ts.tsval;
                    self.ts_recent_at = now;
                }
            }
        }
        self.last_rx = now;
        self.keepalive_probes = 0;
        self.keepalive_at = None;

        if !seg.has(TcpFlags::ACK) {
            return;
        }
        if self.state == State::SynReceived {
            if seg.ack.gt(self.snd_una) && seg.ack.le(self.snd_max) {
                self.snd_wnd = (seg.window as u32) << self.snd_wscale;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.establish(now);
            } else {
                self.rst_pending = Some(RstReply {
                    seq: seg.ack,
                    ack: None,
                });
                return;
            }
        }
        if !self.process_ack(seg, now) {
            return;
        }

        // Data. URG is not supported: urgent bytes arrive inline as ordinary data.
        let mut seq = seg.seq;
        let mut payload = seg.payload_parts();
        // Where `payload` starts in the segment's payload (after an old prefix is cut).
        let mut at = 0;
        let mut fin = fin;
        if seq.lt(self.rcv_nxt) {
            let d = self.rcv_nxt.since(seq) as usize;
            if d > payload.len() {
                fin = false; // the FIN is old too
            }
            at = d.min(payload.len());
            payload = payload.range(at, usize::MAX);
            seq = self.rcv_nxt;
        }
        let limit = (self.rcv_wnd() as usize).min(self.rbuf.free());
        let off = seq.since(self.rcv_nxt) as usize;
        if off + payload.len() > limit {
            payload = payload.range(0, limit.saturating_sub(off));
            fin = false; // beyond the window
            self.ack_now = true;
        }
        if !payload.is_empty() {
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    if self.app_closed {
                        // Data for an application that closed: reset (RFC 9293 §3.10.4).
                        self.rst_pending = Some(RstReply {
                            seq: self.snd_max,
                            ack: Some(self.rcv_nxt),
                        });
                        self.terminate(EV_CLOSED);
                        return;
                    }
                    self.receive_data(seq, payload, at, now);
                }
                // The peer's FIN came before: nothing more is valid.
                _ => {}
            }
        }
        if fin {
            let at = seq + payload.len() as u32;
            if at == self.rcv_nxt {
                self.receive_fin(now);
            } else if at.gt(self.rcv_nxt) {
                self.ooo_fin = Some(at);
                self.ack_now = true;
            }
        }
    }

    /// Linux's `tcp_disordered_ack`: a duplicate ACK overtaken by a later one carries an
    /// older timestamp but is harmless; PAWS lets it through so it still counts.
    fn disordered_ack(&self, seg: &TcpSegment<'_>, tsval: u32) -> bool {
        let wnd = (seg.window as u32) << self.snd_wscale;
        let may_update_window = seg.ack.gt(self.snd_una)
            || seg.seq.gt(self.snd_wl1)
            || (seg.seq == self.snd_wl1 && (wnd > self.snd_wnd || wnd == 0));
        seg.has(TcpFlags::ACK)
            && seg.payload_len() == 0
            && !seg.has(TcpFlags::FIN)
            && seg.seq == self.rcv_nxt
            && seg.ack == self.snd_una
            && !may_update_window
            && (self.ts_recent.wrapping_sub(tsval) as u64) <= self.rtt.rto() / MS
    }

    fn peer_reset(&mut self) {
        let ev = match self.state {
            State::TimeWait => EV_CLOSED,
            _ => EV_RESET,
        };
        self.terminate(ev);
    }

    fn take_rtt_sample(&mut self, seg: &TcpSegment<'_>, now: u64) {
        if std::mem::take(&mut self.from_cookie) {
            return;
        }
        let mut sample = None;
        if self.ts_ok {
            if let Some(ts) = seg.options.timestamps.filter(|t| t.tsecr != 0) {
                let ms = self.ts_now(now).wrapping_sub(ts.tsecr);
                if (ms as i32) >= 0 && (ms as u64) * MS <= self.cfg.rto_max {
                    sample = Some(ms as u64 * MS);
                }
            }
        } else if let Some((end, at)) = self.rtt_probe {
            if seg.ack.ge(end) {
                sample = Some(now - at);
                self.rtt_probe = None;
            }
        }
        if let Some(r) = sample {
            self.rtt.sample(r);
            self.cc.on_rtt_sample(r, now);
        }
    }

    /// ACK processing (RFC 9293 §3.10.7.4 fifth step, RFC 5961 §5.2, RFC 5681, RFC 6582).
    /// False when the segment must be dropped.
    fn process_ack(&mut self, seg: &TcpSegment<'_>, now: u64) -> bool {
        let ack = seg.ack;
        if ack.gt(self.snd_max) {
            self.challenge_ack(now);
            return false;
        }
        let max_wnd = self.max_snd_wnd.max(self.mss);
        if ack.lt(self.snd_una - max_wnd) {
            self.challenge_ack(now);
            return false;
        }
        self.probes_unanswered = 0;
        let wnd = (seg.window as u32) << self.snd_wscale;
        let mut fin_acked = false;
        let advanced = ack.gt(self.snd_una);
        if advanced {
            let acked = ack.since(self.snd_una);
            let data_acked = if ack.gt(self.sbuf_seq) {
                (ack.since(self.sbuf_seq) as usize).min(self.sbuf.len())
            } else {
                0
            };
            self.sbuf.consume(data_acked);
            self.sbuf_seq += data_acked as u32;
            self.snd_una = ack;
            if self.snd_nxt.lt(ack) {
                self.snd_nxt = ack;
            }
            fin_acked = self.fin_queued && ack.gt(self.sbuf_seq);
            self.take_rtt_sample(seg, now);
            self.retries = 0;
            let mss = self.mss;
            self.sb.advance(ack);
            if self.high_rxt.lt(ack) {
                self.high_rxt = ack;
            }
            if self.in_recovery {
                if ack.ge(self.recover) {
                    // Full ACK: leave recovery (RFC 6582 §3.2 step 3, option 1; RFC 6675
                    // §5 leaves cwnd at ssthresh, which this bounds by the flight too).
                    self.in_recovery = false;
                    let flight = self.snd_max.since(self.snd_una);
                    let ss = self.cc.ssthresh();
                    self.cc.set_cwnd(ss.min(flight.max(mss) + mss));
                } else if self.sack_ok {
                    // Partial ACK in SACK recovery: the scoreboard and pipe drive what goes
                    // next (RFC 6675 §5 step C).
                } else {
                    // Partial ACK: retransmit the next hole and deflate (step 5).
                    self.rtx_pending = true;
                    let mut w = self.recovery_cwnd.saturating_sub(acked);
                    if acked >= mss {
                        w += mss;
                    }
                    self.recovery_cwnd = w.max(mss);
                }
            } else {
                self.cc.on_ack(acked, now);
            }
            self.dupacks = 0;
            self.limited_tx = 0;
            self.rto_at = if self.snd_una == self.snd_max {
                None
            } else {
                Some(now + self.rtt.rto())
            };
            if data_acked > 0 && self.want_writable {
                self.want_writable = false;
                self.events |= EV_WRITABLE;
            }
        }
        let sacked_before = self.sb.sacked_bytes();
        if self.sack_ok {
            self.update_scoreboard(seg);
        }
        if advanced {
            // Handled above.
        } else {
            let dupack = ack == self.snd_una
                && seg.payload_len() == 0
                && !seg.has(TcpFlags::FIN)
                && wnd == self.snd_wnd
                && self.snd_max != self.snd_una;
            // RFC 6675's DupAck: an ACK that SACKs new data, even with a payload or a window
            // change (so piggybacked ACKs of a two-way transfer count too).
            let new_sack = self.sack_ok
                && self.snd_max != self.snd_una
                && self.sb.sacked_bytes() > sacked_before;
            if (dupack || new_sack) && !self.in_recovery {
                self.limited_tx = (self.limited_tx + 1).min(2);
            }
            if dupack {
                self.on_dupack(now);
            }
        }
        // SACK loss detection (RFC 6675 §5): enough SACKed above SND.UNA marks it lost even
        // before three duplicate ACKs (or when window updates keep ACKs from counting).
        if self.sack_ok
            && !self.in_recovery
            && self.snd_una.ge(self.recover)
            && self.snd_una != self.snd_max
            && !self.sb.is_empty()
            && self.sb.is_lost(self.snd_una, self.mss)
            && self.send_state()
        {
            self.enter_recovery(now);
        }
        // Window update, only from a newer segment (RFC 9293 §3.10.7.4).
        if self.snd_wl1.lt(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.le(ack)) {
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
        }
        if fin_acked {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    if self.app_closed {
                        self.close_at = Some(now + self.cfg.fin_wait2_timeout);
                    }
                }
                State::Closing => {
                    self.enter_time_wait(now);
                    return false;
                }
                State::LastAck => {
                    self.terminate(EV_CLOSED);
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    fn on_dupack(&mut self, now: u64) {
        self.dupacks += 1;
        self.stats.dupacks_in += 1;
        if self.in_recovery {
            if !self.sack_ok {
                // Each further duplicate means a segment left the network (RFC 6582
                // step 4). (SACK recovery counts the pipe instead.)
                self.recovery_cwnd = self.recovery_cwnd.saturating_add(self.mss);
            }
        } else if self.dupacks == 3 && self.snd_una.ge(self.recover) {
            self.enter_recovery(now);
        }
    }

    /// Fast retransmit, then loss recovery: RFC 6675 with SACK (`RecoveryPoint = HighData`,
    /// `HighRxt = HighACK`), RFC 6582 NewReno fast recovery without (§3.2 step 2).
    fn enter_recovery(&mut self, now: u64) {
        self.recover = self.snd_max;
        let mut flight = self.snd_max.since(self.snd_una);
        if self.limited_tx > 0 {
            // Segments sent by limited transmit do not count (RFC 5681 §3.2 step 2).
            flight = flight.min(self.cc.cwnd());
        }
        self.cc.on_congestion_event(flight, now);
        self.in_recovery = true;
        self.limited_tx = 0;
        self.recovery_cwnd = self.cc.cwnd() + 3 * self.mss;
        self.high_rxt = self.snd_una;
        self.rescued = false;
        self.rtx_pending = true;
        self.stats.fast_retransmits += 1;
        if self.sack_ok {
            self.stats.sack_recoveries += 1;
        }
    }

    /// Records the segment's SACK blocks (validated against `[SND.UNA, SND.MAX)`).
    fn update_scoreboard(&mut self, seg: &TcpSegment<'_>) {
        for &(l, r) in seg.options.sack_blocks.as_slice() {
            match self.sb.add(Seq(l), Seq(r), self.snd_una, self.snd_max) {
                BlockVerdict::Used | BlockVerdict::Old => {}
                BlockVerdict::Invalid => self.stats.sack_blocks_rejected += 1,
            }
        }
    }

    /// Takes in `payload`, found `at` bytes into the segment's payload.
    fn receive_data(&mut self, seq: Seq, payload: Payload<'_>, at: usize, now: u64) {
        let had_ooo = self.rbuf.has_ooo();
        if self.lending
            && seq == self.rcv_nxt
            && self.rbuf.can_lend()
            && self.events & !(EV_READABLE | EV_WRITABLE) == 0
        {
            self.rbuf.lend(payload.len());
            self.lent = Some(at..at + payload.len());
            let n = payload.len() as u32;
            self.received_in_order(n, n, had_ooo, now);
            return;
        }
        if seq != self.rcv_nxt {
            match self.rbuf.insert_parts(self.rcv_nxt, seq, payload) {
                Ok(_) => self.stats.ooo_segments += 1,
                Err(_) => self.stats.ooo_dropped += 1,
            }
            // An immediate duplicate ACK (with SACK blocks) for out-of-order data (RFC 5681
            // §4.2).
            self.ack_now = true;
            return;
        }
        let adv = match self.rbuf.insert_parts(self.rcv_nxt, seq, payload) {
            Ok(n) => n,
            Err(_) => return,
        };
        self.received_in_order(adv, payload.len() as u32, had_ooo, now);
    }

    /// Bookkeeping for in-order data: `adv` bytes more are readable (more than the
    /// segment's `seg_len` when it filled a gap), then the ACK decision.
    fn received_in_order(&mut self, adv: u32, seg_len: u32, had_ooo: bool, now: u64) {
        self.rcv_nxt += adv;
        self.stats.bytes_in += adv as u64;
        self.events |= EV_READABLE;
        self.rcv_mss = self.rcv_mss.max(seg_len).min(self.cfg.mss as u32);
        if had_ooo || self.quickack > 0 || self.cfg.delayed_ack == 0 {
            self.quickack = self.quickack.saturating_sub(1);
            self.ack_now = true;
        } else {
            self.rcv_unacked += seg_len;
            if self.rcv_unacked >= 2 * self.rcv_mss {
                self.ack_now = true;
            } else if self.delack_at.is_none() {
                self.delack_at = Some(now + self.cfg.delayed_ack);
            }
        }
        if self.ooo_fin == Some(self.rcv_nxt) {
            self.receive_fin(now);
        }
    }

    fn receive_fin(&mut self, now: u64) {
        self.ooo_fin = None;
        if self.fin_received {
            return;
        }
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.events |= EV_PEER_CLOSED;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_queued && self.snd_una.gt(self.fin_seq()) {
                    self.enter_time_wait(now);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }
}
