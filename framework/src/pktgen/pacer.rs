//! Pacing on the TSC: how many packets may leave now, and when a run is over.
//!
//! A [`Pacer`] keeps a *virtual departure time*: the TSC at which the next packet is due, in
//! fixed point (32 fractional bits of a tick, so there is no drift however long the run).
//! [`allowance`](Pacer::allowance) returns how many packets are due at `now` (at most one
//! burst); [`sent`](Pacer::sent) moves the virtual time forward by one packet interval per
//! packet actually sent, so packets a full tx queue refused stay due and the long-run rate is
//! exact.
//!
//! **Catch-up cap**: the virtual time may fall behind `now` by at most one burst. After a
//! stall (a preempted core, a slow turn) the pacer owes at most `burst` packets, which the next
//! call allows at once; anything older is forgiven and counted in
//! [`skipped`](Pacer::skipped). The rate after a stall is therefore never above the target
//! for longer than one burst, and a sender that cannot keep up simply sends as fast as it
//! can (with `skipped` growing).

use std::fmt;
use std::time::Duration;

use super::L1_OVERHEAD;

/// A transmit rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Packets per second.
    Pps(f64),
    /// Bits per second of frames including their FCS; with `l1_overhead`, also the 20 bytes of
    /// preamble, SFD and inter-frame gap per frame ([`L1_OVERHEAD`]), as a
    /// link counts them.
    Bps {
        /// Bits per second.
        bits_per_sec: f64,
        /// Count the per-frame layer-1 overhead.
        l1_overhead: bool,
    },
    /// A share of a link's capacity, layer-1 overhead included: `LineRate { link_bps: 10e9 }`
    /// is 14 880 952 pps of 64-byte frames.
    LineRate {
        /// The link speed in bits per second (or a fraction of it).
        link_bps: f64,
    },
    /// As fast as possible: every call allows a full burst.
    Unlimited,
}

impl Rate {
    /// Packets per second for frames of `avg_frame_size` bytes (FCS included), or `None` for
    /// [`Rate::Unlimited`].
    pub fn pps(&self, avg_frame_size: f64) -> Option<f64> {
        let l1 = L1_OVERHEAD as f64;
        match *self {
            Rate::Pps(p) => Some(p),
            Rate::Bps {
                bits_per_sec,
                l1_overhead,
            } => {
                let bytes = avg_frame_size + if l1_overhead { l1 } else { 0.0 };
                Some(bits_per_sec / (bytes * 8.0))
            }
            Rate::LineRate { link_bps } => Some(link_bps / ((avg_frame_size + l1) * 8.0)),
            Rate::Unlimited => None,
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Pps(p) => write!(f, "{p} pps"),
            Rate::Bps {
                bits_per_sec,
                l1_overhead,
            } => write!(
                f,
                "{bits_per_sec} bit/s{}",
                if l1_overhead {
                    " (with L1 overhead)"
                } else {
                    ""
                }
            ),
            Rate::LineRate { link_bps } => write!(f, "line rate of {link_bps} bit/s"),
            Rate::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A [`Pacer`] parameter out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pacer: {field}: {problem}")]
pub struct PacerError {
    /// The parameter (`rate`, `avg_frame_size`, `burst`, `tsc_hz`).
    pub field: &'static str,
    /// What is wrong and what would be valid.
    pub problem: String,
}

/// Fractional bits of the fixed-point virtual time.
const FRAC: u32 = 32;

/// Paces one tx queue on the TSC. See the [module docs](self) for the model.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: Rate,
    pps: Option<f64>,
    /// Ticks per packet << FRAC; 0 when unlimited.
    interval: u128,
    /// Virtual departure time of the next packet, ticks << FRAC.
    next: u128,
    started: bool,
    burst: usize,
    /// `interval * catch_up`: how far `next` may lag behind now.
    cap_span: u128,
    /// Packets the virtual time may lag behind (default `burst − 1`).
    catch_up: u128,
    tsc_hz: u64,
    skipped: u64,
}

impl Pacer {
    /// A pacer for `rate`, frames of `avg_frame_size` bytes on average (FCS included, as
    /// [`crate::pktgen::FrameLen::mean`]; only used by the bit rates), allowing at most `burst`
    /// packets per call, on a TSC of `tsc_hz`.
    ///
    /// Errors: a rate or frame size that is not finite and > 0, a rate so low that one packet
    /// interval exceeds 2^64 ticks, `burst` 0, `tsc_hz` 0.
    pub fn new(
        rate: Rate,
        avg_frame_size: f64,
        burst: usize,
        tsc_hz: u64,
    ) -> Result<Pacer, PacerError> {
        let bad = |field: &'static str, problem: String| PacerError { field, problem };
        if burst == 0 {
            return Err(bad("burst", "0 packets; give at least 1".into()));
        }
        if tsc_hz == 0 {
            return Err(bad("tsc_hz", "0 Hz; give the TSC rate (tsc_hz())".into()));
        }
        let mut p = Pacer {
            rate,
            pps: None,
            interval: 0,
            next: 0,
            started: false,
            burst,
            cap_span: 0,
            catch_up: burst as u128 - 1,
            tsc_hz,
            skipped: 0,
        };
        p.set_rate(rate, avg_frame_size)?;
        Ok(p)
    }

    /// Changes the rate (and mean frame size) keeping the virtual time: the next packet is due
    /// when it was, the ones after it at the new interval. Fails like [`Pacer::new`], leaving
    /// the pacer unchanged.
    pub fn set_rate(&mut self, rate: Rate, avg_frame_size: f64) -> Result<(), PacerError> {
        let bad = |field: &'static str, problem: String| PacerError { field, problem };
        let value = match rate {
            Rate::Pps(v) => v,
            Rate::Bps { bits_per_sec, .. } => bits_per_sec,
            Rate::LineRate { link_bps } => link_bps,
            Rate::Unlimited => 1.0,
        };
        if !(value.is_finite() && value > 0.0) {
            return Err(bad(
                "rate",
                format!("{rate} is not a finite rate above 0; give a positive rate or Unlimited"),
            ));
        }
        if matches!(rate, Rate::Bps { .. } | Rate::LineRate { .. })
            && !(avg_frame_size.is_finite() && avg_frame_size > 0.0)
        {
            return Err(bad(
                "avg_frame_size",
                format!("{avg_frame_size} bytes; a bit rate needs the mean frame size (> 0)"),
            ));
        }
        let pps = rate.pps(avg_frame_size);
        let interval = match pps {
            None => 0,
            Some(pps) => {
                let ticks = self.tsc_hz as f64 / pps;
                if !ticks.is_finite() || ticks >= 2f64.powi(64) {
                    return Err(bad(
                        "rate",
                        format!(
                            "{rate} ({pps} pps) is too slow: one packet would take more than \
                             2^64 TSC ticks"
                        ),
                    ));
                }
                // At least 1/2^32 tick: a rate beyond that is as good as unlimited anyway.
                ((ticks * (1u64 << FRAC) as f64).round() as u128).max(1)
            }
        };
        self.rate = rate;
        self.pps = pps;
        self.interval = interval;
        self.cap_span = interval * self.catch_up;
        Ok(())
    }

    /// Lets the virtual time lag behind by up to `packets` packets (at least `burst − 1`, the
    /// default) before the debt is forgiven: after a stall shorter than that, the pacer keeps
    /// allowing full bursts until the long-run rate is back on target. A generator on a shared
    /// machine uses a few milliseconds' worth so that preemption does not lower its rate; the
    /// price is that it sends at full speed for that long after a stall.
    pub fn set_catch_up(&mut self, packets: u64) {
        self.catch_up = (packets as u128).max(self.burst as u128 - 1);
        self.cap_span = self.interval * self.catch_up;
    }

    /// How many packets may be sent at `now_tsc`: 0 ..= `burst` (always `burst` when
    /// unlimited). The first call starts the clock with one packet due. Applies the catch-up
    /// cap (see the [module docs](self)). Call [`sent`](Self::sent) with what actually left.
    #[inline]
    pub fn allowance(&mut self, now_tsc: u64) -> usize {
        if self.interval == 0 {
            return self.burst;
        }
        let now = (now_tsc as u128) << FRAC;
        if !self.started {
            self.next = now;
            self.started = true;
        }
        if now < self.next {
            return 0;
        }
        let behind = now - self.next;
        if behind > self.cap_span {
            let owed = behind / self.interval + 1;
            self.skipped = self
                .skipped
                .saturating_add((owed - (self.catch_up + 1)).min(u64::MAX as u128) as u64);
            self.next = now - self.cap_span;
            return self.burst;
        }
        // behind / interval < burst: a 64-bit division whenever the operands allow.
        let q = match (u64::try_from(behind), u64::try_from(self.interval)) {
            (Ok(b), Ok(i)) => (b / i) as usize,
            _ => (behind / self.interval).min(self.burst as u128) as usize,
        };
        (q + 1).min(self.burst)
    }

    /// Records that `n` packets were sent: the virtual time moves `n` intervals forward.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.next = self
            .next
            .saturating_add(self.interval.saturating_mul(n as u128));
    }

    /// Restarts the clock: the next [`allowance`](Self::allowance) starts afresh, and
    /// [`skipped`](Self::skipped) is zeroed.
    pub fn reset(&mut self) {
        self.started = false;
        self.next = 0;
        self.skipped = 0;
    }

    /// The TSC at which the next packet is due (`None` before the first
    /// [`allowance`](Self::allowance) and when unlimited): a loop may idle until then.
    pub fn next_due_tsc(&self) -> Option<u64> {
        if self.interval == 0 || !self.started {
            return None;
        }
        Some((self.next >> FRAC).min(u64::MAX as u128) as u64)
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The packet rate the pacer holds, or `None` when unlimited.
    pub fn pps(&self) -> Option<f64> {
        self.pps
    }

    /// TSC ticks between two packets (0 when unlimited).
    pub fn interval_ticks(&self) -> f64 {
        self.interval as f64 / (1u64 << FRAC) as f64
    }

    /// The most packets one call allows.
    pub fn burst(&self) -> usize {
        self.burst
    }

    /// Packets forgiven by the catch-up cap since creation or [`reset`](Self::reset): how far
    /// the sender fell short of the rate.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// When a run stops: after a duration, after a number of packets, whichever comes first
/// (`None` = no limit of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many packets.
    pub count: Option<u64>,
}

impl Limits {
    /// No limit: run until stopped from outside.
    pub const UNLIMITED: Limits = Limits {
        duration: None,
        count: None,
    };

    /// Starts tracking a run that begins at `start_tsc` on a TSC of `tsc_hz`.
    pub fn start(&self, start_tsc: u64, tsc_hz: u64) -> LimitTracker {
        let end_tsc = self.duration.map(|d| {
            let ticks = d.as_secs() as u128 * tsc_hz as u128
                + d.subsec_nanos() as u128 * tsc_hz as u128 / 1_000_000_000;
            (start_tsc as u128 + ticks).min(u64::MAX as u128) as u64
        });
        LimitTracker {
            end_tsc,
            count: self.count,
            sent: 0,
        }
    }
}

/// A running [`Limits`]: counts what was sent and says when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitTracker {
    end_tsc: Option<u64>,
    count: Option<u64>,
    sent: u64,
}

impl LimitTracker {
    /// `n` reduced to the packets the count limit still allows.
    #[inline]
    pub fn cap(&self, n: usize) -> usize {
        match self.count {
            Some(c) => (c.saturating_sub(self.sent)).min(n as u64) as usize,
            None => n,
        }
    }

    /// Records `n` packets sent.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// True once the count is reached or `now_tsc` is at or past the end of the duration.
    #[inline]
    pub fn is_done(&self, now_tsc: u64) -> bool {
        self.count.is_some_and(|c| self.sent >= c) || self.end_tsc.is_some_and(|e| now_tsc >= e)
    }

    /// Packets recorded as sent.
    pub fn total_sent(&self) -> u64 {
        self.sent
    }

    /// Packets the count limit still allows (`None` without one).
    pub fn remaining(&self) -> Option<u64> {
        self.count.map(|c| c.saturating_sub(self.sent))
    }

    /// The TSC at which the duration ends (`None` without one).
    pub fn end_tsc(&self) -> Option<u64> {
        self.end_tsc
    }
}
