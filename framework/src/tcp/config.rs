//! Per-connection parameters.

use super::cc::CongestionAlgorithm;

/// One millisecond in nanoseconds (the engine's time unit).
pub const MS: u64 = 1_000_000;
/// One second in nanoseconds.
pub const SEC: u64 = 1_000_000_000;

/// Keepalive parameters (RFC 9293 §3.8.4; Linux `tcp_keepalive_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time (nothing received) before the first probe, ns.
    pub idle: u64,
    /// Time between unanswered probes, ns.
    pub interval: u64,
    /// Unanswered probes after which the connection times out (reset sent).
    pub count: u32,
}

impl Default for Keepalive {
    /// Linux's defaults: 7200 s idle, 75 s interval, 9 probes.
    fn default() -> Self {
        Keepalive {
            idle: 7200 * SEC,
            interval: 75 * SEC,
            count: 9,
        }
    }
}

/// What a [`Listener`](super::Listener) does with a SYN when its backlog is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BacklogFullPolicy {
    /// Drop the SYN and count it; the client retransmits.
    Drop,
    /// Answer with a SYN cookie (RFC 4987 §3.6) and keep no state; a valid returning ACK
    /// creates the connection. Window scaling and SACK survive only when the client uses
    /// timestamps (they are encoded in TSval); otherwise the connection runs without them.
    #[default]
    SynCookies,
}

/// Parameters of a connection. Times are nanoseconds, sizes bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpConfig {
    /// MSS we announce and the most we send per segment (before options): 1460 for a
    /// 1500-byte MTU.
    pub mss: u16,
    /// Send buffer (ring) size.
    pub send_buffer: usize,
    /// Receive buffer (ring) size: the largest window we advertise.
    pub recv_buffer: usize,
    /// Offer window scaling (RFC 7323). The shift is the smallest that lets `recv_buffer` be
    /// advertised.
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018): we then send SACK blocks for out-of-order data.
    pub sack: bool,
    /// Disable Nagle's algorithm (`TCP_NODELAY`).
    pub nodelay: bool,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_window_segments: u32,
    /// Retransmission timeout before any RTT sample (RFC 6298: 1 s).
    pub rto_initial: u64,
    /// Lower bound of the RTO (Linux 200 ms; RFC 6298 says 1 s).
    pub rto_min: u64,
    /// Upper bound of the RTO and of the persist interval (60 s).
    pub rto_max: u64,
    /// SYN retransmissions before giving up (Linux `tcp_syn_retries`: 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before giving up (Linux `tcp_synack_retries`: 5).
    pub synack_retries: u32,
    /// Retransmissions (or unanswered zero-window probes) of data before the connection
    /// times out (Linux `tcp_retries2`: 15).
    pub retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL (default 30 s, like Linux's 60 s
    /// TIME-WAIT).
    pub msl: u64,
    /// How long an orphaned connection (after [`close`](super::Connection::close)) waits in
    /// FIN-WAIT-2 for the peer's FIN (Linux `tcp_fin_timeout`: 60 s).
    pub fin_wait2_timeout: u64,
    /// Delayed ACK timeout (40 ms like Linux's minimum; RFC 9293 caps it at 500 ms).
    pub delayed_ack: u64,
    /// Data segments acknowledged immediately after the handshake (quick-ack mode).
    pub quickack_segments: u32,
    /// Keepalive probes; `None` (the default) disables them.
    pub keepalive: Option<Keepalive>,
    /// Most out-of-order bytes held (they also count against the receive window).
    pub max_ooo_bytes: usize,
    /// Most disjoint out-of-order ranges tracked; data that would start another is dropped.
    pub max_ooo_ranges: usize,
    /// Challenge ACKs (RFC 5961) sent per second at most, per connection.
    pub challenge_ack_limit: u32,
    /// Congestion control.
    pub congestion: CongestionAlgorithm,
    /// What a listener does with SYNs when its backlog is full.
    pub backlog_full: BacklogFullPolicy,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            window_scaling: true,
            timestamps: true,
            sack: true,
            nodelay: false,
            initial_window_segments: 10,
            rto_initial: SEC,
            rto_min: 200 * MS,
            rto_max: 60 * SEC,
            syn_retries: 6,
            synack_retries: 5,
            retries: 15,
            msl: 30 * SEC,
            fin_wait2_timeout: 60 * SEC,
            delayed_ack: 40 * MS,
            quickack_segments: 8,
            keepalive: None,
            max_ooo_bytes: 256 * 1024,
            max_ooo_ranges: 8,
            challenge_ack_limit: 1000,
            congestion: CongestionAlgorithm::NewReno,
            backlog_full: BacklogFullPolicy::SynCookies,
        }
    }
}

impl TcpConfig {
    /// The window scale shift we offer: the smallest that makes `recv_buffer` fit in the
    /// 16-bit window field, at most 14 (RFC 7323 §2.3). Zero without window scaling.
    pub fn wscale(&self) -> u8 {
        if !self.window_scaling {
            return 0;
        }
        let mut s = 0u8;
        while s < 14 && (self.recv_buffer >> s) > 0xffff {
            s += 1;
        }
        s
    }

    /// Checks the values the engine relies on; returns a description of the first problem.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.mss < 88 {
            return Err("mss must be at least 88");
        }
        if self.send_buffer == 0 || self.recv_buffer == 0 {
            return Err("buffers must not be empty");
        }
        if self.send_buffer > 1 << 30 || self.recv_buffer > 1 << 30 {
            return Err("buffers are limited to 1 GiB (the window-scaled maximum)");
        }
        if self.rto_min == 0 || self.rto_min > self.rto_max {
            return Err("need 0 < rto_min <= rto_max");
        }
        if self.initial_window_segments == 0 {
            return Err("initial_window_segments must be at least 1");
        }
        if self.max_ooo_ranges == 0 && self.sack {
            return Err("SACK needs max_ooo_ranges >= 1");
        }
        if let Some(k) = self.keepalive {
            if k.idle == 0 || k.interval == 0 || k.count == 0 {
                return Err("keepalive idle, interval and count must be non-zero");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wscale_fits_the_buffer() {
        let mut c = TcpConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.wscale(), 3); // 256 KiB >> 3 = 32768
        c.recv_buffer = 65535;
        assert_eq!(c.wscale(), 0);
        c.recv_buffer = 1 << 20;
        assert_eq!(c.wscale(), 5);
        c.recv_buffer = 1 << 30;
        assert_eq!(c.wscale(), 14);
        c.window_scaling = false;
        assert_eq!(c.wscale(), 0);
        c.mss = 10;
        assert!(c.validate().is_err());
        let k = Keepalive::default();
        assert_eq!((k.idle, k.interval, k.count), (7200 * SEC, 75 * SEC, 9));
    }
}
