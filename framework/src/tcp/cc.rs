//! Congestion control behind a small trait, and NewReno (RFC 5681, RFC 6582).
//!
//! The split follows Linux's `tcp_congestion_ops`: a [`CongestionControl`] owns `cwnd` and
//! `ssthresh` and decides how they grow on ACKs and shrink on loss. Loss *recovery* — which
//! segment to retransmit, when recovery ends, the temporary window during fast recovery — is
//! the connection's job (NewReno recovery in this slice; RFC 6675 SACK recovery can replace
//! it without touching the controllers). CUBIC (RFC 9438) would be a second implementation
//! and a second variant of [`Congestion`].

/// What a congestion controller decides. All sizes are bytes; `now` is nanoseconds.
pub trait CongestionControl {
    /// The congestion window.
    fn cwnd(&self) -> u32;
    /// The slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// True while `cwnd < ssthresh`.
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
    /// `acked` bytes of new data were cumulatively acknowledged outside loss recovery.
    fn on_ack(&mut self, acked: u32, now: u64);
    /// A round-trip time sample (ns); delay-based or RTT-aware controllers use it.
    fn on_rtt_sample(&mut self, _rtt: u64, _now: u64) {}
    /// Loss detected by duplicate ACKs (entering fast recovery): lower `ssthresh` from the
    /// `flight` size and set `cwnd` to it.
    fn on_congestion_event(&mut self, flight: u32, now: u64);
    /// A retransmission timeout: lower `ssthresh` and collapse `cwnd` to one segment.
    fn on_rto(&mut self, flight: u32, now: u64);
    /// Sets `cwnd` (recovery algorithms use this when recovery ends).
    fn set_cwnd(&mut self, cwnd: u32);
    /// The sender MSS changed (after the handshake).
    fn set_mss(&mut self, mss: u32);
    /// Restart after idle (RFC 5681 §4.1): `cwnd = min(cwnd, restart window)`.
    fn on_idle_restart(&mut self, restart_window: u32) {
        if self.cwnd() > restart_window {
            self.set_cwnd(restart_window);
        }
    }
}

/// Which congestion control a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CongestionAlgorithm {
    /// NewReno: slow start, congestion avoidance, halving on loss.
    #[default]
    NewReno,
}

/// NewReno window arithmetic (RFC 5681 with appropriate byte counting, RFC 3465).
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since the last congestion-avoidance increase.
    acc: u32,
}

impl NewReno {
    /// Largest window the controller will grow to.
    pub const MAX_CWND: u32 = 1 << 30;

    /// `cwnd = initial`, `ssthresh` = "arbitrarily high" (RFC 5681 §3.1).
    pub fn new(mss: u32, initial: u32) -> Self {
        NewReno {
            mss,
            cwnd: initial,
            ssthresh: u32::MAX,
            acc: 0,
        }
    }

    fn halve(&self, flight: u32) -> u32 {
        (flight / 2).max(2 * self.mss)
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, _now: u64) {
        if self.cwnd < self.ssthresh {
            // Slow start with L = 2·SMSS (RFC 3465).
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * self.mss));
        } else {
            // Congestion avoidance: one SMSS per cwnd of acknowledged bytes.
            self.acc = self.acc.saturating_add(acked);
            if self.acc >= self.cwnd {
                self.acc -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        self.cwnd = self.cwnd.min(Self::MAX_CWND);
    }

    fn on_congestion_event(&mut self, flight: u32, _now: u64) {
        self.ssthresh = self.halve(flight);
        self.cwnd = self.ssthresh;
        self.acc = 0;
    }

    fn on_rto(&mut self, flight: u32, _now: u64) {
        self.ssthresh = self.halve(flight);
        self.cwnd = self.mss;
        self.acc = 0;
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.clamp(self.mss, Self::MAX_CWND);
    }

    fn set_mss(&mut self, mss: u32) {
        self.mss = mss;
    }
}

/// The controller of a connection: an enum rather than a boxed trait object, so there is no
/// allocation and no indirect call per ACK. New algorithms add a variant.
#[derive(Debug, Clone)]
pub enum Congestion {
    /// NewReno.
    NewReno(NewReno),
}

impl Congestion {
    /// A controller of the given kind.
    pub fn new(algo: CongestionAlgorithm, mss: u32, initial: u32) -> Self {
        match algo {
            CongestionAlgorithm::NewReno => Congestion::NewReno(NewReno::new(mss, initial)),
        }
    }

    fn inner(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
        }
    }
}

impl CongestionControl for Congestion {
    fn cwnd(&self) -> u32 {
        self.inner().cwnd()
    }
    fn ssthresh(&self) -> u32 {
        self.inner().ssthresh()
    }
    fn on_ack(&mut self, acked: u32, now: u64) {
        self.inner_mut().on_ack(acked, now)
    }
    fn on_rtt_sample(&mut self, rtt: u64, now: u64) {
        self.inner_mut().on_rtt_sample(rtt, now)
    }
    fn on_congestion_event(&mut self, flight: u32, now: u64) {
        self.inner_mut().on_congestion_event(flight, now)
    }
    fn on_rto(&mut self, flight: u32, now: u64) {
        self.inner_mut().on_rto(flight, now)
    }
    fn set_cwnd(&mut self, cwnd: u32) {
        self.inner_mut().set_cwnd(cwnd)
    }
    fn set_mss(&mut self, mss: u32) {
        self.inner_mut().set_mss(mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newreno_windows() {
        let mss = 1000;
        let mut c = Congestion::new(CongestionAlgorithm::NewReno, mss, 10 * mss);
        assert!(c.in_slow_start());
        // Slow start: +min(acked, 2 MSS) per ACK.
        c.on_ack(mss, 0);
        assert_eq!(c.cwnd(), 11 * mss);
        c.on_ack(5 * mss, 0);
        assert_eq!(c.cwnd(), 13 * mss);
        // Loss: ssthresh = flight / 2, cwnd = ssthresh.
        c.on_congestion_event(20 * mss, 0);
        assert_eq!((c.ssthresh(), c.cwnd()), (10 * mss, 10 * mss));
        assert!(!c.in_slow_start());
        // Congestion avoidance: one MSS per window of ACKed bytes.
        for _ in 0..9 {
            c.on_ack(mss, 0);
        }
        assert_eq!(c.cwnd(), 10 * mss);
        c.on_ack(mss, 0);
        assert_eq!(c.cwnd(), 11 * mss);
        // Timeout: one segment; ssthresh never below 2 MSS.
        c.on_rto(mss, 0);
        assert_eq!((c.ssthresh(), c.cwnd()), (2 * mss, mss));
        c.set_cwnd(0);
        assert_eq!(c.cwnd(), mss);
        c.set_cwnd(50 * mss);
        c.on_idle_restart(10 * mss);
        assert_eq!(c.cwnd(), 10 * mss);
        c.set_mss(500);
        c.on_rto(10_000, 0);
        assert_eq!(c.cwnd(), 500);
    }
}
