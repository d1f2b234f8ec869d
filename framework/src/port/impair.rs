//! An impairment wrapper for any port's transmit queue (`impair = { … }` on a port): it drops,
//! duplicates and swaps frames at fixed intervals and drops what exceeds a packet rate, so tests
//! know exactly what a receiver must see (loss, duplicates, reordering, a throughput ceiling
//! for RFC 2544 searches) — a deterministic stand-in for a lossy link or a slow device.
//!
//! Frames are numbered 1, 2, 3, … in the order they are offered. With `drop_every = D`, frames
//! D, 2D, … are dropped; with `dup_every = U`, frames U, 2U, … are sent twice; with
//! `swap_every = S`, frames S, 2S, … are held back and sent right after the next frame that
//! goes out (a frame held at the very end stays held and counts as lost). With `max_pps = R`,
//! a token bucket on the TSC (R tokens per second, R/200 deep (5 ms), at least 64) drops frames
//! that find it empty. Rules apply in that order: the rate limit first, then drop, then swap,
//! then duplicate.
//!
//! Duplicates are copies into fresh mbufs from the port's pool (no heap allocation). Frames
//! the wrapped queue refuses are dropped and counted (the caller was already told they went).

use std::sync::Arc;

use super::TxQueue;
use crate::batch::Burst;
use crate::counter::Counter;
use crate::mem::{free_burst, Mbuf, Mempool};
use crate::runtime::tsc::{rdtsc, tsc_hz};

/// What to impair. `None` (or 0 for the intervals) disables a rule.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Drop every Nth frame.
    pub drop_every: Option<u64>,
    /// Send every Nth frame twice.
    pub dup_every: Option<u64>,
    /// Hold every Nth frame back behind the next one.
    pub swap_every: Option<u64>,
    /// Drop frames above this many per second.
    pub max_pps: Option<f64>,
}

/// What an impaired queue did (shared with whoever reports it).
#[derive(Debug, Default)]
pub struct ImpairCounters {
    /// Frames offered.
    pub offered: Counter,
    /// Dropped by `drop_every`.
    pub dropped: Counter,
    /// Dropped by the rate limit.
    pub rate_dropped: Counter,
    /// Extra copies sent.
    pub duplicated: Counter,
    /// Frames held back behind the next one.
    pub swapped: Counter,
    /// Refused by the wrapped queue (or no mbuf for a copy).
    pub refused: Counter,
}

/// A transmit queue wrapped with an [`Impairment`].
pub struct ImpairTx {
    inner: Box<dyn TxQueue>,
    imp: Impairment,
    pool: Mempool,
    n: u64,
    held: Option<Mbuf>,
    out: Burst,
    tokens: f64,
    depth: f64,
    last_tsc: u64,
    ticks_per_token: f64,
    counters: Arc<ImpairCounters>,
}

impl ImpairTx {
    /// Wraps `inner`; duplicates are copied into mbufs from `pool`.
    pub fn new(inner: Box<dyn TxQueue>, imp: Impairment, pool: Mempool) -> ImpairTx {
        let depth = imp.max_pps.map_or(0.0, |r| (r / 200.0).max(64.0));
        ImpairTx {
            inner,
            imp,
            pool,
            n: 0,
            held: None,
            out: Burst::new(),
            tokens: depth,
            depth,
            last_tsc: 0,
            ticks_per_token: imp.max_pps.map_or(0.0, |r| tsc_hz() as f64 / r),
            counters: Arc::new(ImpairCounters::default()),
        }
    }

    /// The counters of this queue.
    pub fn counters(&self) -> Arc<ImpairCounters> {
        self.counters.clone()
    }

    #[inline]
    fn hits(every: Option<u64>, n: u64) -> bool {
        matches!(every, Some(e) if e > 0 && n % e == 0)
    }

    #[inline]
    fn emit(&mut self, m: Mbuf) {
        if let Err(m) = self.out.push(m) {
            self.counters.refused.add(1);
            drop(m);
        }
        if let Some(h) = self.held.take() {
            if let Err(h) = self.out.push(h) {
                self.counters.refused.add(1);
                drop(h);
            }
        }
    }

    fn one(&mut self, m: Mbuf, now: u64) {
        self.n += 1;
        let n = self.n;
        self.counters.offered.add(1);
        if self.imp.max_pps.is_some() {
            if self.last_tsc != 0 {
                let dt = now.wrapping_sub(self.last_tsc) as f64;
                self.tokens = (self.tokens + dt / self.ticks_per_token).min(self.depth);
            }
            self.last_tsc = now;
            if self.tokens < 1.0 {
                self.counters.rate_dropped.add(1);
                return;
            }
            self.tokens -= 1.0;
        }
        if Self::hits(self.imp.drop_every, n) {
            self.counters.dropped.add(1);
            return;
        }
        if Self::hits(self.imp.swap_every, n) && self.held.is_none() {
            self.counters.swapped.add(1);
            self.held = Some(m);
            return;
        }
        let copy = if Self::hits(self.imp.dup_every, n) {
            let c = self.pool.alloc().and_then(|mut c| {
                let d = m.data();
                c.append(d.len())?.copy_from_slice(d);
                Some(c)
            });
            if c.is_none() {
                self.counters.refused.add(1);
            }
            c
        } else {
            None
        };
        self.emit(m);
        if let Some(c) = copy {
            self.counters.duplicated.add(1);
            self.emit(c);
        }
    }
}

impl TxQueue for ImpairTx {
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let taken = pkts.len();
        let now = rdtsc();
        let mut tmp = Burst::new();
        tmp.append_from(pkts);
        let n = tmp.len();
        tmp.drain_front(n, |m| self.one(m, now));
        if !self.out.is_empty() {
            self.inner.tx_burst(&mut self.out);
            if !self.out.is_empty() {
                self.counters.refused.add(self.out.len() as u64);
                free_burst(&mut self.out);
            }
        }
        taken
    }

    fn flush(&mut self) {
        self.inner.flush();
    }
}
