//! Round-trip time estimation and the retransmission timeout (RFC 6298).

/// SRTT/RTTVAR estimator with exponential backoff.
///
/// `RTO = max(rto_min, SRTT + max(G, 4·RTTVAR))`, capped at `rto_max`, where G is the clock
/// granularity (1 ms, the resolution of RFC 7323 timestamps). Backoff doubles the timeout per
/// expiry and is cleared only by a valid new sample (Karn's algorithm, RFC 6298 §5).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
    base: u64,
    backoff: u32,
    min: u64,
    max: u64,
}

/// Clock granularity G.
const GRANULARITY: u64 = 1_000_000;

impl RttEstimator {
    /// A fresh estimator: RTO = `initial` until the first sample.
    pub fn new(initial: u64, min: u64, max: u64) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: 0,
            base: initial.clamp(min, max),
            backoff: 0,
            min,
            max,
        }
    }

    /// Feeds one RTT measurement (ns) and clears the backoff.
    pub fn sample(&mut self, r: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'
                self.rttvar = (3 * self.rttvar + srtt.abs_diff(r)) / 4;
                self.srtt = Some((7 * srtt + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.base = (srtt + GRANULARITY.max(4 * self.rttvar)).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// Smoothed RTT, once there was a sample.
    pub fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// RTT variation.
    pub fn rttvar(&self) -> u64 {
        self.rttvar
    }

    /// The current timeout, backoff included: `min(base << backoff, rto_max)`.
    pub fn rto(&self) -> u64 {
        self.base
            .checked_shl(self.backoff)
            .filter(|v| v >> self.backoff == self.base)
            .unwrap_or(u64::MAX)
            .min(self.max)
    }

    /// Doubles the timeout (after an expiry).
    pub fn backoff(&mut self) {
        self.backoff = (self.backoff + 1).min(32);
    }

    /// Number of doublings in force.
    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// Replaces the base timeout when there is no sample yet (RFC 6298 §5.7: 3 s once data
    /// transfer starts after a retransmitted SYN).
    pub fn set_base_if_unsampled(&mut self, rto: u64) {
        if self.srtt.is_none() {
            self.base = rto.clamp(self.min, self.max);
            self.backoff = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn rfc6298_estimates() {
        let mut r = RttEstimator::new(1000 * MS, 200 * MS, 60_000 * MS);
        assert_eq!(r.rto(), 1000 * MS);
        r.backoff();
        assert_eq!(r.rto(), 2000 * MS);
        r.sample(100 * MS);
        // First sample: SRTT = R, RTTVAR = R/2, RTO = R + 4 R/2 = 300 ms; backoff cleared.
        assert_eq!(
            (r.srtt(), r.rttvar(), r.rto()),
            (Some(100 * MS), 50 * MS, 300 * MS)
        );
        r.sample(200 * MS);
        // RTTVAR = 3/4·50 + 1/4·100 = 62.5; SRTT = 7/8·100 + 1/8·200 = 112.5
        assert_eq!(r.srtt(), Some(112_500_000));
        assert_eq!(r.rttvar(), 62_500_000);
        assert_eq!(r.rto(), 362_500_000);
        // Small RTTs hit the floor.
        for _ in 0..50 {
            r.sample(MS);
        }
        assert_eq!(r.rto(), 200 * MS);
        // Backoff doubles up to the cap.
        for i in 1..=8 {
            r.backoff();
            assert_eq!(r.rto(), ((200 * MS) << i).min(60_000 * MS));
        }
        assert_eq!(r.backoff_count(), 8);
        for _ in 0..100 {
            r.backoff();
        }
        assert_eq!(r.rto(), 60_000 * MS);
        r.set_base_if_unsampled(3000 * MS); // ignored: there are samples
        assert_eq!(r.backoff_count(), 32);
        let mut f = RttEstimator::new(1000 * MS, 200 * MS, 60_000 * MS);
        f.set_base_if_unsampled(3000 * MS);
        assert_eq!(f.rto(), 3000 * MS);
    }
}
