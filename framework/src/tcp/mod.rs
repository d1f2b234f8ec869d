//! A sans-IO TCP engine (RFC 9293 and friends), in the style of quinn-proto.
//!
//! Nothing in this module does I/O, reads a clock, spawns a thread or touches a socket. A
//! [`Connection`] is a state machine driven by
//!
//! * received segments: [`Connection::on_segment`]`(&TcpSegment, now)`,
//! * application calls: [`send`](Connection::send), [`recv`](Connection::recv) (or the
//!   zero-copy [`recv_peek`](Connection::recv_peek) / [`recv_consume`](Connection::recv_consume)),
//!   [`shutdown_write`](Connection::shutdown_write), [`close`](Connection::close),
//!   [`abort`](Connection::abort),
//! * timer expiries: [`on_timer`](Connection::on_timer)`(now)`,
//!
//! and polled for output: [`poll_transmit`](Connection::poll_transmit) (segments to send,
//! whose payload borrows the send ring), [`poll_event`](Connection::poll_event)
//! ([`Event`]s for the application) and [`next_timer`](Connection::next_timer) (one deadline).
//! Time is a `u64` of nanoseconds supplied by the caller, so tests run in virtual time (see
//! the simulated link in `sim.rs`, compiled for tests only). A [`Listener`] is the LISTEN
//! state: it turns SYNs into connections and holds them in a bounded backlog until accepted.
//!
//! The engine works on parsed segments ([`TcpSegment`], [`Transmit`]); the glue converts from
//! and to wire bytes with [`TcpSegment::parse`] and [`Transmit::emit`] (both through
//! [`crate::wire::TcpPacket`]), verifies checksums, and demultiplexes by 4-tuple.
//!
//! # What is implemented
//!
//! * All RFC 9293 states, simultaneous open and close, half-close; TIME-WAIT of 2·MSL.
//! * ISNs per RFC 6528 (SipHash-2-4 of the 4-tuple under a secret key, plus a 4 µs clock):
//!   [`IsnGenerator`].
//! * The segment acceptability test of RFC 9293 §3.10.7.4; RFC 5961 protections: a RST must
//!   match `RCV.NXT` exactly (in-window → challenge ACK), a SYN in a synchronized state
//!   draws a challenge ACK, ACKs outside `[SND.UNA − MAX.SND.WND, SND.NXT]` are dropped
//!   with a challenge ACK; challenge ACKs are rate limited per connection.
//! * MSS (536 when absent), window scaling and timestamps (RFC 7323: PAWS, RTT from TSecr),
//!   SACK-permitted and SACK block generation (RFC 2018; 3 blocks with timestamps, 4
//!   without, the most recent first).
//! * SYN cookies (RFC 4987 §3.6), the default [`BacklogFullPolicy`]: with its backlog full a
//!   listener answers SYNs statelessly — the ISN carries 5 bits of a 64 s counter, a 3-bit
//!   MSS index ([`MSS_TABLE`]) and 24 bits of SipHash over the 4-tuple, the client's ISN,
//!   the counter and the index; with timestamps, the client's window scale and
//!   SACK-permitted ride in the low 6 bits of TSval (as Linux), without them they are lost.
//!   A returning ACK is checked (current and previous counter) for two periods after the
//!   last cookie; a valid one creates the connection (evicting the oldest half-open one if
//!   the backlog is still full), a forged or stale one is counted and reset.
//! * Fixed send and receive rings allocated with the connection; out-of-order data is stored
//!   in the receive ring itself, tracked by a bounded list of ranges, bounded in bytes.
//! * RTO per RFC 6298 (min 200 ms by default, max 60 s, Karn's rule, backoff), fast
//!   retransmit on the third duplicate ACK, over a [`CongestionControl`] trait; initial
//!   window 10 segments (RFC 6928). Limited transmit (RFC 3042): the first two duplicate
//!   ACKs (with SACK, ACKs that SACK new data, payload or not) each release one new segment
//!   beyond cwnd, not counted in the flight that sets ssthresh, so a loss in a small window
//!   still gets its three duplicates instead of a timeout.
//! * SACK-based loss recovery (RFC 6675) when SACK was negotiated: a scoreboard of SACKed
//!   ranges with a fixed capacity (32 ranges, allocated with the connection; received
//!   blocks are validated against `[SND.UNA, SND.MAX]` and invalid ones counted),
//!   `IsLost` (DupThresh 3: more than 2·SMSS bytes or 3 ranges SACKed above), recovery
//!   entered on the third duplicate ACK or as soon as `IsLost(SND.UNA)`, the pipe
//!   estimate, `NextSeg` rules 1–4 (lost holes, new data, other holes, one rescue
//!   retransmission of the tail per recovery) sent while `cwnd − pipe ≥ SMSS`, the
//!   recovery point, and only holes retransmitted. A timeout clears the scoreboard (§5.1);
//!   go-back-N after it skips ranges SACKed since. Without SACK, NewReno fast recovery
//!   (RFC 6582). No RACK, and no D-SACK or undo of spurious reductions.
//! * Congestion control chosen per connection (or listener) by
//!   [`TcpConfig::congestion`]: NewReno, or [`Cubic`] (RFC 9438: β = 0.7, C = 0.4, the
//!   Reno-friendly region, fast convergence, `K = 0` epoch after a timeout, epoch restart
//!   after idle; no HyStart). [`CongestionAlgorithm`] parses from `"newreno"` / `"cubic"`.
//! * Delayed ACKs (every second full segment or 40 ms; quick-ack after the handshake, for
//!   out-of-order data and gap fills), Nagle (Minshall's variant, as Linux) with `nodelay`,
//!   sender and receiver silly-window avoidance, zero-window probes on a persist timer,
//!   keepalive.
//!
//! # Deliberate choices
//!
//! * Zero-window and keepalive probes are zero-length segments with `SEQ = SND.UNA − 1`, as
//!   Linux sends them: any TCP answers with an ACK carrying its window, and no sequence
//!   space is consumed.
//! * A segment without timestamps on a connection that negotiated them is accepted (Linux
//!   does; RFC 7323 says SHOULD drop).
//! * A bare FIN at `RCV.NXT` is accepted even into a zero window, and a sender sends its FIN
//!   without waiting for window, as Linux does.
//! * Payload on SYN or SYN-ACK segments is ignored (the peer retransmits it); URG is not
//!   supported (urgent bytes are ordinary data).
//! * The challenge-ACK limit is per connection (a global one belongs to the glue).
//! * One backlog bound covers half-open and unaccepted connections, so a connection built
//!   from a cookie takes the slot of the oldest half-open one; when every slot holds an
//!   established connection the application has not accepted, the cookie ACK is dropped
//!   (counted) and the client's retransmissions retry.

mod buffer;
mod cc;
mod config;
mod conn;
mod cookie;
mod isn;
mod listener;
mod rtt;
mod sack;
mod segment;
mod seq;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use cc::{
    Congestion, CongestionAlgorithm, CongestionControl, Cubic, NewReno, CUBIC_BETA, CUBIC_C,
};
pub use config::{BacklogFullPolicy, Keepalive, TcpConfig, MS, SEC};
pub use conn::{Connection, ConnectionStats, Event, Spare, State, DEFAULT_MSS};
pub use cookie::{COOKIE_PERIOD, MSS_TABLE};
pub use isn::{siphash24, IsnGenerator};
pub use listener::{Listener, ListenerStats};
pub use rtt::RttEstimator;
pub use segment::{
    reset_for, Payload, PayloadMbufs, TcpHeader, TcpOptions, TcpSegment, Timestamps, Transmit,
};
pub use seq::Seq;
