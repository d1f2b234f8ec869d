//! The time-stamp counter: a cheap cycle clock for per-turn and per-packet costs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads the cycle counter (`rdtsc` on x86-64; a nanosecond clock elsewhere).
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: rdtsc has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Nanoseconds since the first call in this process: one clock for every lcore, so timestamps
/// stored in shared tables (neighbour ages, rate limits) compare across cores.
#[inline]
pub fn monotonic_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Counter ticks per second, measured once against the monotonic clock (about 20 ms).
pub fn tsc_hz() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        let t0 = Instant::now();
        let c0 = rdtsc();
        std::thread::sleep(Duration::from_millis(20));
        let c1 = rdtsc();
        let dt = t0.elapsed().as_secs_f64();
        ((c1.wrapping_sub(c0)) as f64 / dt).max(1.0) as u64
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counter_advances_at_a_plausible_rate() {
        let hz = super::tsc_hz();
        // Anything from 100 MHz to 10 GHz is a believable counter.
        assert!((100_000_000..10_000_000_000).contains(&hz), "{hz}");
        let a = super::rdtsc();
        let b = super::rdtsc();
        assert!(b >= a);
    }
}
