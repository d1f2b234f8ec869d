//! RFC 2544 §26.1 throughput: the highest rate at which the device under test forwards every
//! frame (or loses at most a configured ratio), found by binary search over trials of a fixed
//! duration. The search is independent of how a trial runs: [`search`] takes a closure that
//! sends at a rate and reports what was sent and lost, so it is tested on a model and driven by
//! real runs from the CLI.

use std::time::Duration;

/// Parameters of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Rfc2544Params {
    /// Highest rate tried (the first trial), packets per second.
    pub max_pps: f64,
    /// Duration of each trial.
    pub trial: Duration,
    /// Stop when the interval between the best passing and the lowest failing rate is below
    /// this fraction of `max_pps` (e.g. 0.01).
    pub resolution: f64,
    /// Accepted loss ratio: a trial passes when `lost <= loss_ratio × sent` (0: zero loss).
    pub loss_ratio: f64,
    /// Most trials per search.
    pub max_trials: u32,
}

impl Rfc2544Params {
    /// Checks the ranges; the error names the parameter and its valid values.
    pub fn check(&self) -> Result<(), String> {
        if !(self.max_pps.is_finite() && self.max_pps > 0.0) {
            return Err(format!(
                "rfc2544 max_pps {} must be a rate > 0 pps",
                self.max_pps
            ));
        }
        if self.trial.is_zero() {
            return Err("rfc2544 trial duration must be > 0, like 1s".into());
        }
        if !(self.resolution > 0.0 && self.resolution < 1.0) {
            return Err(format!(
                "rfc2544 resolution {} must be between 0 and 1 (exclusive), like 0.01",
                self.resolution
            ));
        }
        if !(0.0..1.0).contains(&self.loss_ratio) {
            return Err(format!(
                "rfc2544 loss ratio {} must be in 0..1, like 0 or 0.001",
                self.loss_ratio
            ));
        }
        if self.max_trials == 0 {
            return Err("rfc2544 max_trials must be at least 1".into());
        }
        Ok(())
    }
}

/// What one trial measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrialOutcome {
    /// Frames sent.
    pub sent: u64,
    /// Frames that did not arrive.
    pub lost: u64,
}

/// One trial of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trial {
    /// Rate tried.
    pub pps: f64,
    /// What it measured.
    pub outcome: TrialOutcome,
    /// Whether the loss was acceptable.
    pub pass: bool,
}

/// The result of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// The highest passing rate (0 if none passed).
    pub throughput_pps: f64,
    /// Every trial in order.
    pub trials: Vec<Trial>,
    /// True if the resolution was reached (or the maximum rate passed) within `max_trials`.
    pub converged: bool,
}

/// Binary search for the throughput. `trial(pps)` runs one trial; its error aborts the search.
/// A trial that sent nothing fails (nothing was shown to pass).
pub fn search<E>(
    p: &Rfc2544Params,
    mut trial: impl FnMut(f64) -> Result<TrialOutcome, E>,
) -> Result<SearchResult, E> {
    let mut trials = Vec::new();
    let (mut lo, mut hi) = (0.0f64, p.max_pps);
    let mut rate = p.max_pps;
    let step = p.resolution * p.max_pps;
    let mut converged = false;
    while (trials.len() as u32) < p.max_trials {
        let outcome = trial(rate)?;
        let pass = outcome.sent > 0 && (outcome.lost as f64) <= p.loss_ratio * outcome.sent as f64;
        trials.push(Trial {
            pps: rate,
            outcome,
            pass,
        });
        if pass {
            lo = rate;
            if rate >= p.max_pps {
                converged = true;
                break;
            }
        } else {
            hi = rate;
        }
        if hi - lo <= step {
            converged = true;
            break;
        }
        rate = (lo + hi) / 2.0;
    }
    Ok(SearchResult {
        throughput_pps: lo,
        trials,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Rfc2544Params {
        Rfc2544Params {
            max_pps: 1e6,
            trial: Duration::from_secs(1),
            resolution: 0.01,
            loss_ratio: 0.0,
            max_trials: 30,
        }
    }

    /// A device that forwards up to `cap` pps and drops the excess.
    fn device(cap: f64) -> impl FnMut(f64) -> Result<TrialOutcome, ()> {
        move |pps| {
            let sent = pps as u64;
            Ok(TrialOutcome {
                sent,
                lost: sent.saturating_sub(cap as u64),
            })
        }
    }

    #[test]
    fn converges_within_resolution_of_the_capacity() {
        for cap in [1.0, 37_000.0, 412_345.0, 999_000.0] {
            let r = search(&params(), device(cap)).unwrap();
            assert!(r.converged);
            assert!(r.throughput_pps <= cap, "{cap}: {r:?}");
            assert!(cap - r.throughput_pps <= 0.01 * 1e6, "{cap}: {r:?}");
            assert!(r.trials.len() <= 8, "binary search: {}", r.trials.len());
        }
        let r = search(&params(), device(2e6)).unwrap();
        assert_eq!(r.throughput_pps, 1e6);
        assert_eq!(r.trials.len(), 1);
    }

    #[test]
    fn loss_ratio_and_errors() {
        let mut p = params();
        p.loss_ratio = 0.1;
        // Loses 5% at every rate: passes at max with a 10% allowance.
        let r = search(&p, |pps| {
            Ok::<_, ()>(TrialOutcome {
                sent: pps as u64,
                lost: (pps * 0.05) as u64,
            })
        })
        .unwrap();
        assert_eq!(r.throughput_pps, 1e6);
        assert!(search(&params(), |_| Err::<TrialOutcome, _>("boom")).is_err());
        let mut bad = params();
        bad.resolution = 0.0;
        assert!(bad.check().unwrap_err().contains("resolution"));
    }
}
