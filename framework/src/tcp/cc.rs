//! Congestion control behind a small trait: NewReno (RFC 5681, RFC 6582) and CUBIC
//! (RFC 9438).
//!
//! The split follows Linux's `tcp_congestion_ops`: a [`CongestionControl`] owns `cwnd` and
//! `ssthresh` and decides how they grow on ACKs and shrink on loss. Loss *recovery* — which
//! segment to retransmit, when recovery ends, the temporary window during fast recovery — is
//! the connection's job (RFC 6675 SACK recovery, or NewReno recovery without SACK), so the
//! controllers do not depend on it.

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
    /// CUBIC (RFC 9438): a cubic window growth function of the time since the last loss,
    /// multiplicative decrease by 0.7, with a Reno-friendly region.
    Cubic,
}

impl CongestionAlgorithm {
    /// The configuration name: `"newreno"` or `"cubic"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "newreno",
            CongestionAlgorithm::Cubic => "cubic",
        }
    }
}

impl std::fmt::Display for CongestionAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CongestionAlgorithm {
    type Err = &'static str;

    /// Parses `"newreno"` / `"reno"` or `"cubic"` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("newreno") || s.eq_ignore_ascii_case("reno") {
            Ok(CongestionAlgorithm::NewReno)
        } else if s.eq_ignore_ascii_case("cubic") {
            Ok(CongestionAlgorithm::Cubic)
        } else {
            Err("unknown congestion control (expected \"newreno\" or \"cubic\")")
        }
    }
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

/// CUBIC's multiplicative decrease factor β (RFC 9438 §4.6).
pub const CUBIC_BETA: f64 = 0.7;
/// CUBIC's aggressiveness constant C, in segments per second cubed (RFC 9438 §5.1).
pub const CUBIC_C: f64 = 0.4;

/// CUBIC (RFC 9438). Windows are kept internally as fractional segments so that the small
/// per-ACK increments of congestion avoidance are not lost to rounding.
///
/// * Slow start as NewReno (RFC 5681 with L = 2·SMSS byte counting); no HyStart.
/// * Congestion avoidance: at time `t` (seconds since the current congestion-avoidance epoch
///   began) the target is `W_cubic(t + RTT)`, with `W_cubic(t) = C·(t − K)³ + W_max` and
///   `K = ∛((W_max − cwnd_epoch)/C)`, clamped to `[cwnd, 1.5·cwnd]`; each acknowledged
///   segment adds `(target − cwnd)/cwnd` (§4.2, §4.4, §4.5).
/// * Reno-friendly region (§4.3): an estimate `W_est` grows by `α·acked/cwnd` segments,
///   `α = 3(1 − β)/(1 + β)` until `W_est` reaches the window before the last reduction, then
///   1; while `W_cubic(t) < W_est`, `cwnd = W_est`.
/// * On loss (§4.6, §4.7): `ssthresh = max(flight·β, 2·SMSS)`, `cwnd = ssthresh`; `W_max`
///   is the window at the loss, lowered to `cwnd·(1 + β)/2` when it is below the previous
///   `W_max` (fast convergence).
/// * On a retransmission timeout (§4.8): `ssthresh` as on loss, `cwnd = 1·SMSS`, and the
///   next congestion-avoidance epoch starts with `K = 0` and `W_max = cwnd_epoch`.
/// * The epoch restarts after idle (`on_idle_restart`), so idle time does not count as growth
///   time (§5.8).
#[derive(Debug, Clone)]
pub struct Cubic {
    mss: u32,
    /// Congestion window in bytes (fractional).
    cwnd: f64,
    ssthresh: u32,
    /// Window before the last reduction, segments.
    w_max: f64,
    /// `cwnd` just before the last reduction, segments (`cwnd_prior`).
    cwnd_prior: f64,
    /// Start of the current congestion-avoidance epoch, ns.
    epoch_start: Option<u64>,
    /// `K` of the current epoch, seconds.
    k: f64,
    /// The Reno-friendly estimate, segments.
    w_est: f64,
    /// Smoothed RTT from the samples the connection reports, ns (0 before any).
    srtt: u64,
    /// The next epoch follows a timeout: `K = 0`, `W_max = cwnd_epoch` (RFC 9438 §4.8).
    after_rto: bool,
}

impl Cubic {
    /// Largest window the controller will grow to.
    pub const MAX_CWND: u32 = 1 << 30;

    /// `cwnd = initial` bytes, `ssthresh` arbitrarily high.
    pub fn new(mss: u32, initial: u32) -> Self {
        Cubic {
            mss: mss.max(1),
            cwnd: initial as f64,
            ssthresh: u32::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch_start: None,
            k: 0.0,
            w_est: 0.0,
            srtt: 0,
            after_rto: false,
        }
    }

    /// `W_max` of the current epoch, segments.
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// `K` of the current epoch, seconds (meaningful once congestion avoidance started).
    pub fn k(&self) -> f64 {
        self.k
    }

    /// The Reno-friendly estimate `W_est`, segments.
    pub fn w_est(&self) -> f64 {
        self.w_est
    }

    /// `W_cubic(t)` of the current epoch in segments, `t` seconds after its start.
    pub fn w_cubic(&self, t: f64) -> f64 {
        let d = t - self.k;
        CUBIC_C * d * d * d + self.w_max
    }

    fn segs(&self) -> f64 {
        self.cwnd / self.mss as f64
    }

    fn reduce(&mut self, flight: u32) {
        let cwnd = self.segs();
        self.cwnd_prior = cwnd;
        // Fast convergence (§4.7): release bandwidth to newer flows.
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + CUBIC_BETA) / 2.0
        } else {
            cwnd
        };
        // β = 0.7 in integer arithmetic (no rounding surprises).
        let ss = (flight as u64 * 7 / 10) as u32;
        self.ssthresh = ss.max(2 * self.mss);
        self.epoch_start = None;
    }

    fn start_epoch(&mut self, now: u64) {
        let cwnd = self.segs();
        self.epoch_start = Some(now);
        if self.after_rto || self.w_max <= cwnd {
            // After a timeout (§4.8), or at or above the old maximum: grow from here.
            self.after_rto = false;
            self.w_max = cwnd;
            self.k = 0.0;
        } else {
            self.k = ((self.w_max - cwnd) / CUBIC_C).cbrt();
        }
        self.w_est = cwnd;
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> u32 {
        (self.cwnd as u32).clamp(self.mss, Self::MAX_CWND)
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, now: u64) {
        let mss = self.mss as f64;
        if (self.cwnd as u32) < self.ssthresh {
            // Slow start with L = 2·SMSS (RFC 3465), up to ssthresh at most by one ACK.
            self.cwnd += acked.min(2 * self.mss) as f64;
            if self.cwnd >= self.ssthresh as f64 {
                self.cwnd = self.cwnd.min(self.ssthresh as f64);
            }
            self.cwnd = self.cwnd.min(Self::MAX_CWND as f64);
            return;
        }
        if self.epoch_start.is_none() {
            self.start_epoch(now);
        }
        let start = self.epoch_start.unwrap_or(now);
        let cwnd = self.segs();
        let acked_segs = acked as f64 / mss;
        let t = now.saturating_sub(start) as f64 / 1e9;
        let rtt = self.srtt as f64 / 1e9;
        // Reno-friendly estimate (§4.3).
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA)
        };
        self.w_est += alpha * acked_segs / cwnd;
        let new = if self.w_cubic(t) < self.w_est {
            self.w_est.max(cwnd)
        } else {
            let target = self.w_cubic(t + rtt).clamp(cwnd, 1.5 * cwnd);
            cwnd + (target - cwnd) / cwnd * acked_segs
        };
        self.cwnd = (new * mss).min(Self::MAX_CWND as f64);
    }

    fn on_rtt_sample(&mut self, rtt: u64, _now: u64) {
        self.srtt = if self.srtt == 0 {
            rtt
        } else {
            (7 * self.srtt + rtt) / 8
        };
    }

    fn on_congestion_event(&mut self, flight: u32, _now: u64) {
        self.reduce(flight);
        self.cwnd = self.ssthresh as f64;
    }

    fn on_rto(&mut self, flight: u32, _now: u64) {
        self.reduce(flight);
        self.cwnd = self.mss as f64;
        self.after_rto = true;
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.clamp(self.mss, Self::MAX_CWND) as f64;
    }

    fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
    }

    fn on_idle_restart(&mut self, restart_window: u32) {
        if self.cwnd() > restart_window {
            self.set_cwnd(restart_window);
        }
        self.epoch_start = None;
    }
}

/// The controller of a connection: an enum rather than a boxed trait object, so there is no
/// allocation and no indirect call per ACK. New algorithms add a variant.
#[derive(Debug, Clone)]
pub enum Congestion {
    /// NewReno.
    NewReno(NewReno),
    /// CUBIC.
    Cubic(Cubic),
}

impl Congestion {
    /// A controller of the given kind.
    pub fn new(algo: CongestionAlgorithm, mss: u32, initial: u32) -> Self {
        match algo {
            CongestionAlgorithm::NewReno => Congestion::NewReno(NewReno::new(mss, initial)),
            CongestionAlgorithm::Cubic => Congestion::Cubic(Cubic::new(mss, initial)),
        }
    }

    /// Which algorithm this is.
    pub fn algorithm(&self) -> CongestionAlgorithm {
        match self {
            Congestion::NewReno(_) => CongestionAlgorithm::NewReno,
            Congestion::Cubic(_) => CongestionAlgorithm::Cubic,
        }
    }

    fn inner(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Cubic(c) => c,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Cubic(c) => c,
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
    fn on_idle_restart(&mut self, restart_window: u32) {
        self.inner_mut().on_idle_restart(restart_window)
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

#[cfg(test)]
mod cubic_tests {
    use super::*;

    const MSS: u32 = 1000;

    /// Drives a controller in congestion avoidance from `from` to `until` (ns): each round
    /// trip acknowledges the window segment by segment, the ACKs spread evenly over the
    /// round. Returns (time, cwnd in segments) at the start of every round.
    fn drive(c: &mut Cubic, rtt: u64, from: u64, until: u64) -> Vec<(u64, f64)> {
        let mut t = from;
        let mut out = Vec::new();
        while t < until {
            out.push((t, c.cwnd / MSS as f64));
            let n = (c.cwnd() / MSS).max(1) as u64;
            for i in 0..n {
                c.on_ack(MSS, t + i * rtt / n);
            }
            t += rtt;
        }
        out
    }

    /// A controller in congestion avoidance at `w` segments that just saw a loss.
    fn after_loss(w: u32, rtt: u64) -> Cubic {
        let mut c = Cubic::new(MSS, w * MSS);
        c.on_rtt_sample(rtt, 0);
        c.on_congestion_event(w * MSS, 0);
        c
    }

    #[test]
    fn names_parse() {
        assert_eq!("cubic".parse(), Ok(CongestionAlgorithm::Cubic));
        assert_eq!("NewReno".parse(), Ok(CongestionAlgorithm::NewReno));
        assert!("bbr".parse::<CongestionAlgorithm>().is_err());
        assert_eq!(CongestionAlgorithm::Cubic.to_string(), "cubic");
        let c = Congestion::new(CongestionAlgorithm::Cubic, MSS, 10 * MSS);
        assert_eq!(c.algorithm(), CongestionAlgorithm::Cubic);
        assert_eq!((c.cwnd(), c.ssthresh()), (10 * MSS, u32::MAX));
    }

    #[test]
    fn growth_after_loss_follows_w_cubic() {
        let rtt = 100 * 1_000_000;
        // W_max = 1000 segments at RTT 100 ms: the Reno estimate (+0.53 segment per round
        // trip) stays far below the cubic curve for the whole run.
        let mut c = after_loss(1000, rtt);
        // Multiplicative decrease by β = 0.7.
        assert_eq!((c.cwnd(), c.ssthresh()), (700 * MSS, 700 * MSS));
        assert!(!c.in_slow_start());
        let rounds = drive(&mut c, rtt, 0, 14_000_000_000);
        // K = ∛((W_max − cwnd_epoch)/C) = ∛(300/0.4) ≈ 9.086 s.
        assert_eq!(c.w_max(), 1000.0);
        assert!((c.k() - 750f64.cbrt()).abs() < 1e-9, "{}", c.k());
        let mut worst: f64 = 0.0;
        for &(t, w) in &rounds[1..] {
            let want = c.w_cubic(t as f64 / 1e9);
            let err = (w - want).abs() / want;
            worst = worst.max(err);
            assert!(err < 0.01, "t={t} cwnd={w} W_cubic={want}");
        }
        // The cubic curve dominated the Reno estimate at this RTT.
        assert!(c.w_est() < 800.0, "{}", c.w_est());
        // Concave up to the plateau at W_max around K, convex beyond.
        let at = |secs: f64| {
            rounds
                .iter()
                .find(|r| r.0 as f64 / 1e9 >= secs)
                .expect("round")
                .1
        };
        assert!(at(1.0) > 780.0 && at(1.0) < 800.0, "{}", at(1.0));
        assert!((at(9.1) - 1000.0).abs() < 2.0, "{}", at(9.1));
        assert!(at(13.9) > 1040.0, "{}", at(13.9));
        eprintln!("worst relative error {worst:.4}");
    }

    #[test]
    fn reno_friendly_region_dominates_at_small_rtt() {
        // RTT 1 ms, W_max 20 segments: the cubic curve barely moves in 200 ms while Reno
        // would add one segment per round trip.
        let rtt = 1_000_000;
        let mut c = after_loss(20, rtt);
        assert_eq!(c.cwnd(), 14 * MSS);
        let rounds = drive(&mut c, rtt, 0, 200 * rtt);
        // The same Reno estimate computed independently: α = 3(1−β)/(1+β) per round trip
        // until the window before the loss (20), then 1.
        let alpha = 3.0 * 0.3 / 1.7;
        let mut reno = 14.0f64;
        for &(t, w) in &rounds {
            let cubic = c.w_cubic(t as f64 / 1e9);
            assert!(
                (w - reno).abs() <= 1.0 + 0.02 * reno,
                "t={t} cwnd={w} reno={reno}"
            );
            if t > 20 * rtt {
                assert!(w > cubic + 5.0, "t={t} cwnd={w} W_cubic={cubic}");
            }
            reno += if reno >= 20.0 { 1.0 } else { alpha };
        }
        let last = rounds.last().expect("rounds").1;
        assert!(last > 190.0 && last < 215.0, "{last}");
    }

    #[test]
    fn fast_convergence_and_timeout() {
        let rtt = 100 * 1_000_000;
        let mut c = after_loss(100, rtt);
        drive(&mut c, rtt, 0, 1_000_000_000);
        let w = c.cwnd / MSS as f64;
        assert!(w < 100.0);
        // A second loss below W_max: W_max = cwnd·(1 + β)/2 (fast convergence).
        let flight = c.cwnd();
        c.on_congestion_event(flight, 2_000_000_000);
        assert!((c.w_max() - w * 0.85).abs() < 1e-6, "{} {w}", c.w_max());
        assert_eq!(c.ssthresh(), (flight as f64 * 0.7) as u32);
        assert_eq!(c.cwnd(), c.ssthresh());
        // Timeout: ssthresh = 0.7·flight, cwnd = 1 MSS, epoch reset.
        c.on_rto(80 * MSS, 3_000_000_000);
        assert_eq!((c.cwnd(), c.ssthresh()), (MSS, 56 * MSS));
        assert!(c.in_slow_start());
        // Slow start up to ssthresh, then the first epoch after the timeout has K = 0 and
        // W_max = cwnd_epoch.
        let mut t = 3_000_000_000u64;
        while c.in_slow_start() {
            c.on_ack(MSS, t);
            t += rtt / 10;
        }
        assert_eq!(c.cwnd(), 56 * MSS);
        c.on_ack(MSS, t);
        assert_eq!((c.k(), c.w_max()), (0.0, 56.0));
        let rounds = drive(&mut c, rtt, t, t + 3_000_000_000);
        for &(at, w) in &rounds[1..] {
            let cubic = c.w_cubic((at - t) as f64 / 1e9);
            assert!(w >= cubic * 0.98, "cwnd {w} below W_cubic {cubic}");
        }
        // Idle restart: the window drops to the restart window and a new epoch begins.
        c.on_idle_restart(10 * MSS);
        assert_eq!(c.cwnd(), 10 * MSS);
        assert_eq!(c.epoch_start, None);
        // Windows stay bounded whatever the input.
        let mut d = Cubic::new(MSS, 10 * MSS);
        d.on_congestion_event(0, 0);
        assert_eq!(d.cwnd(), 2 * MSS);
        for i in 0..10_000u64 {
            d.on_ack(u32::MAX, i * 1_000_000_000);
        }
        assert!(d.cwnd() <= Cubic::MAX_CWND);
    }
}
