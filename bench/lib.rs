//! Shared helpers for ferroplane's criterion micro-benchmarks (`bench/benches/`).
//!
//! The benchmarks themselves live in `benches/*.rs`; this library holds what they share: the
//! burst size, the measurement settings (kept modest because the benchmark machine is small and
//! shared), pool construction, and a bounded spin-wait for the two-thread ring benchmarks.
//! Criterion is a dev-dependency, so nothing here names its types.

#![warn(missing_docs)]

use std::time::{Duration, Instant};

use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};

/// Items moved per burst in every burst benchmark (a typical `rx_burst` size).
pub const BURST: usize = 32;

/// The lcore id benchmark threads register as when they want a mempool cache.
pub const BENCH_LCORE: usize = 7;

/// Criterion measurement time per benchmark.
pub const MEASUREMENT_TIME: Duration = Duration::from_secs(3);

/// Criterion warm-up time per benchmark.
pub const WARM_UP_TIME: Duration = Duration::from_secs(1);

/// Criterion samples per benchmark.
pub const SAMPLE_SIZE: usize = 30;

/// Mbufs in every benchmark pool: large enough for a 256-object cache (it must be at most 2/3
/// of the pool) and for a refill plus a burst, small enough to stay in L2/L3 for the headers.
pub const POOL_MBUFS: u32 = 4096;

/// Creates a benchmark pool of [`POOL_MBUFS`] mbufs with the default data room and headroom,
/// the given per-lcore `cache_size` (0 turns caching off), and [`HugePolicy::Auto`] (huge
/// pages when the machine has some, ordinary pages with one warning otherwise).
///
/// # Panics
/// If the pool cannot be created: a benchmark cannot do anything useful without it.
pub fn bench_pool(name: &str, cache_size: u32) -> Mempool {
    let mut p = MempoolParams::new(name, POOL_MBUFS);
    p.cache_size = cache_size;
    p.huge = HugePolicy::Auto;
    Mempool::new(&p).unwrap_or_else(|e| panic!("cannot create benchmark pool: {e}"))
}

/// A short description of what backs a pool ("huge pages" or "4 KiB pages"), for the log.
pub fn backing_label(pool: &Mempool) -> &'static str {
    if pool.backing().is_huge() {
        "huge pages"
    } else {
        "4 KiB pages"
    }
}

/// How long a two-thread benchmark may wait for the other side before it gives up (panics)
/// instead of hanging the run.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Spin-wait state for one side of a two-thread benchmark: spins with a pause hint, yields the
/// CPU after a run of failed polls (the benchmark machine has only two cores, shared with the
/// criterion thread and other work, so pure spinning can starve the other side), and panics if
/// nothing has progressed for [`STALL_LIMIT`], so a broken ring cannot hang the run.
#[derive(Debug)]
pub struct Spin {
    idle_polls: u32,
    since: Option<Instant>,
}

/// Failed polls in a row after which [`Spin::idle`] starts yielding the CPU.
pub const SPINS_BEFORE_YIELD: u32 = 64;

impl Spin {
    /// A fresh waiter.
    pub const fn new() -> Self {
        Spin {
            idle_polls: 0,
            since: None,
        }
    }

    /// Records a poll that made progress (resets the stall clock).
    #[inline]
    pub fn progress(&mut self) {
        self.idle_polls = 0;
        self.since = None;
    }

    /// Records a poll that made no progress and waits a little. `what` names the side, for the
    /// panic message.
    ///
    /// # Panics
    /// If no progress has been recorded for [`STALL_LIMIT`].
    #[inline]
    pub fn idle(&mut self, what: &str) {
        self.idle_polls += 1;
        if self.idle_polls < SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
            return;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > STALL_LIMIT {
            panic!("{what}: no progress for {STALL_LIMIT:?}; the other side is stuck or gone");
        }
        std::thread::yield_now();
    }
}

impl Default for Spin {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroplane::Burst;

    #[test]
    fn bench_pool_serves_a_burst() {
        let pool = bench_pool("bench-test", 0);
        assert_eq!(pool.capacity(), POOL_MBUFS as usize);
        let mut b = Burst::new();
        assert!(pool.alloc_bulk(&mut b, BURST));
        ferroplane::mem::free_burst(&mut b);
        assert_eq!(pool.in_use(), 0);
        assert!(!backing_label(&pool).is_empty());
    }

    #[test]
    fn spin_resets_on_progress() {
        let mut s = Spin::new();
        for _ in 0..(SPINS_BEFORE_YIELD * 2) {
            s.idle("test");
        }
        assert!(s.since.is_some());
        s.progress();
        assert_eq!(s.idle_polls, 0);
        assert!(s.since.is_none());
    }
}
