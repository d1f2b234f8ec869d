//! Receive-side analysis: per-stream counters, loss, duplicates, reordering and one-way
//! latency from the [`Signature`] of each received frame.
//!
//! Each rx queue owns one [`Analyzer`] (no sharing, no locks) and calls
//! [`record`](Analyzer::record) per frame. Reports come from [`RxStats`] snapshots, which
//! [`merge`](RxStats::merge) across queues and [`finalize`](RxStats::finalize) with the tx
//! counts.
//!
//! # Sequence tracking
//!
//! Per stream the analyzer keeps the highest sequence number seen and a bitmap of which of
//! the `window` (default [`DEFAULT_WINDOW`] = 4096) sequence numbers up to it have arrived.
//! A frame with
//! * a new highest seq is in order (a jump over missing seqs leaves them unset: they may
//!   still arrive late);
//! * a seq already set in the window is a **duplicate** (not counted as unique, no latency
//!   sample);
//! * an unset seq below the highest, inside the window, is **reordered** (a late arrival; it
//!   is unique, so it is not lost);
//! * a seq more than `window` below the highest is counted as **reordered** and unique: its
//!   bit is gone, so a duplicate that old cannot be told apart (each such duplicate lowers
//!   `lost` by one). Make the window larger than the reordering depth of the path under test.
//!
//! **Lost** = expected − unique, where expected is the tx count given to
//! [`RxStats::finalize`] or, before that, highest seq + 1 (so packets lost after the last
//! received one only count once the tx count is known). Streams are expected to number their
//! packets 0, 1, 2, … (gaps from frames the sender never sent are harmless once the tx count
//! is given).
//!
//! When RSS spreads one stream over several queues, each queue sees a subsequence: per-queue
//! reordering and duplicates remain meaningful and add up, and unique counts add up, which is
//! why loss is computed after [`merge`](RxStats::merge) rather than per queue.
//!
//! # Latency
//!
//! `rx_tsc − tx_tsc` converted to nanoseconds with the TSC rate (a fixed-point multiply, no
//! division), recorded in an [`hdrhistogram::Histogram`] with fixed bounds (default 1 ns to
//! 10 s, 3 significant digits: about 200 KiB per stream per analyzer) and auto-resize off, so
//! recording never allocates; values above the bound are clamped to it. A frame received
//! "before" it was sent (clocks of different hosts or unsynchronised TSCs) is counted in
//! [`StreamRx::negative_latency`] and not recorded.

use hdrhistogram::Histogram;

use super::Signature;

/// Default depth of the duplicate-detection window, in sequence numbers.
pub const DEFAULT_WINDOW: u32 = 4096;
/// Default highest latency the histograms track (10 s), in nanoseconds.
pub const DEFAULT_LATENCY_MAX_NS: u64 = 10_000_000_000;
/// Default precision of the latency histograms: 3 significant digits (0.1 %).
pub const DEFAULT_LATENCY_SIGFIG: u8 = 3;

/// How an [`Analyzer`] is sized. Everything is allocated by [`Analyzer::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzerConfig {
    /// Number of streams: ids `0..streams` are tracked; frames of other ids count in
    /// [`RxStats::unknown_stream`].
    pub streams: usize,
    /// TSC ticks per second ([`crate::runtime::tsc::tsc_hz`]).
    pub tsc_hz: u64,
    /// Depth of the duplicate-detection window in sequence numbers: a power of two in
    /// `64..=1 << 24`.
    pub window: u32,
    /// Highest latency tracked, in nanoseconds (at least 2); higher values are clamped.
    pub latency_max_ns: u64,
    /// Significant digits of the latency histograms (0..=5).
    pub latency_sigfig: u8,
}

impl AnalyzerConfig {
    /// A configuration with the default window and histogram bounds.
    pub fn new(streams: usize, tsc_hz: u64) -> AnalyzerConfig {
        AnalyzerConfig {
            streams,
            tsc_hz,
            window: DEFAULT_WINDOW,
            latency_max_ns: DEFAULT_LATENCY_MAX_NS,
            latency_sigfig: DEFAULT_LATENCY_SIGFIG,
        }
    }
}

/// Errors from creating an analyzer or merging statistics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzerError {
    /// A configuration field is out of range.
    #[error("analyzer: {field}: {problem}")]
    Config {
        /// The [`AnalyzerConfig`] field.
        field: &'static str,
        /// What is wrong and what would be valid.
        problem: String,
    },
    /// Two statistics could not be merged (latency histograms of different bounds).
    #[error("cannot merge rx statistics: {0}")]
    Merge(String),
}

/// Receive statistics of one stream: counters, sequence results and the latency histogram.
#[derive(Debug, Clone)]
pub struct StreamRx {
    /// Frames received with this stream's signature (duplicates included).
    pub packets: u64,
    /// Bytes of those frames as received (without FCS).
    pub bytes: u64,
    /// Frames whose sequence number had already been received (within the window).
    pub duplicates: u64,
    /// Late arrivals: unique frames whose seq was below the highest already seen.
    pub reordered: u64,
    /// Frames whose rx TSC was below their tx TSC (not in the histogram).
    pub negative_latency: u64,
    /// Highest sequence number received.
    pub highest_seq: Option<u64>,
    /// The tx count, once given to [`RxStats::finalize`].
    pub tx_sent: Option<u64>,
    /// TSC of the first frame received.
    pub first_rx_tsc: Option<u64>,
    /// TSC of the last frame received.
    pub last_rx_tsc: Option<u64>,
    /// One-way latency of unique frames, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl StreamRx {
    fn new(cfg: &AnalyzerConfig) -> Result<StreamRx, AnalyzerError> {
        let mut latency = Histogram::new_with_bounds(1, cfg.latency_max_ns, cfg.latency_sigfig)
            .map_err(|e| AnalyzerError::Config {
                field: "latency_max_ns",
                problem: format!("the latency histogram cannot be built ({e:?})"),
            })?;
        latency.auto(false);
        Ok(StreamRx {
            packets: 0,
            bytes: 0,
            duplicates: 0,
            reordered: 0,
            negative_latency: 0,
            highest_seq: None,
            tx_sent: None,
            first_rx_tsc: None,
            last_rx_tsc: None,
            latency,
        })
    }

    /// Frames counted once each: `packets − duplicates`.
    pub fn unique(&self) -> u64 {
        self.packets - self.duplicates
    }

    /// Frames that should have arrived: the tx count when known, else highest seq + 1.
    pub fn expected(&self) -> u64 {
        self.tx_sent
            .unwrap_or_else(|| self.highest_seq.map_or(0, |h| h + 1))
    }

    /// Frames that never arrived: `expected − unique` (0 if more arrived than expected).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique())
    }

    /// Min, percentiles, max and mean of the latency, or `None` before any sample.
    pub fn latency_summary(&self) -> Option<LatencySummary> {
        LatencySummary::of(&self.latency)
    }

    /// Adds `other`'s counters and histogram to these (another rx queue's view of the same
    /// stream). Highest seq and last rx time take the maximum, first rx time the minimum, and
    /// the tx count the larger of the two known ones.
    pub fn merge(&mut self, other: &StreamRx) -> Result<(), AnalyzerError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| AnalyzerError::Merge(format!("latency histograms: {e:?}")))?;
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.negative_latency += other.negative_latency;
        self.highest_seq = self.highest_seq.max(other.highest_seq);
        self.tx_sent = self.tx_sent.max(other.tx_sent);
        self.last_rx_tsc = self.last_rx_tsc.max(other.last_rx_tsc);
        self.first_rx_tsc = match (self.first_rx_tsc, other.first_rx_tsc) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    /// Copies `other` into `self`, reusing the histogram's storage when both have the same
    /// bounds (no allocation then).
    fn copy_from(&mut self, other: &StreamRx) {
        let same = self.latency.low() == other.latency.low()
            && self.latency.high() == other.latency.high()
            && self.latency.sigfig() == other.latency.sigfig();
        if same {
            self.latency.reset();
            if self.latency.add(&other.latency).is_ok() {
                self.packets = other.packets;
                self.bytes = other.bytes;
                self.duplicates = other.duplicates;
                self.reordered = other.reordered;
                self.negative_latency = other.negative_latency;
                self.highest_seq = other.highest_seq;
                self.tx_sent = other.tx_sent;
                self.first_rx_tsc = other.first_rx_tsc;
                self.last_rx_tsc = other.last_rx_tsc;
                return;
            }
        }
        *self = other.clone();
    }

    fn reset(&mut self) {
        self.packets = 0;
        self.bytes = 0;
        self.duplicates = 0;
        self.reordered = 0;
        self.negative_latency = 0;
        self.highest_seq = None;
        self.tx_sent = None;
        self.first_rx_tsc = None;
        self.last_rx_tsc = None;
        self.latency.reset();
    }
}

/// A latency distribution in nanoseconds, read from a histogram (values are exact to its
/// significant digits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Smallest latency.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest latency.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl LatencySummary {
    /// The summary of a histogram of nanoseconds, or `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        if h.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: h.len(),
            min_ns: h.min(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        })
    }
}

/// A snapshot of an [`Analyzer`]'s statistics: what reporting works on.
#[derive(Debug, Clone)]
pub struct RxStats {
    /// Per-stream statistics, indexed by stream id.
    pub streams: Vec<StreamRx>,
    /// Frames without a signature (other traffic, or frames truncated before their signature).
    pub no_signature: u64,
    /// Frames whose signature names a stream id the analyzer does not track.
    pub unknown_stream: u64,
}

impl RxStats {
    /// The statistics of stream `id`.
    pub fn stream(&self, id: u16) -> Option<&StreamRx> {
        self.streams.get(id as usize)
    }

    /// Adds another queue's statistics (see [`StreamRx::merge`]). Streams that only `other`
    /// has are copied. Fails only when latency histograms have incompatible bounds; streams
    /// before the failing one are then already merged.
    pub fn merge(&mut self, other: &RxStats) -> Result<(), AnalyzerError> {
        for (i, o) in other.streams.iter().enumerate() {
            match self.streams.get_mut(i) {
                Some(s) => s.merge(o)?,
                None => self.streams.push(o.clone()),
            }
        }
        self.no_signature += other.no_signature;
        self.unknown_stream += other.unknown_stream;
        Ok(())
    }

    /// Records how many frames each stream sent (`tx_sent[id]`), so that
    /// [`StreamRx::lost`] counts against it; streams beyond `tx_sent` keep highest seq + 1.
    pub fn finalize(&mut self, tx_sent: &[u64]) {
        for (s, &n) in self.streams.iter_mut().zip(tx_sent) {
            s.tx_sent = Some(n);
        }
    }
}

/// Which sequence numbers below the highest have arrived, as a ring of bits.
#[derive(Debug, Clone)]
struct SeqWindow {
    bits: Box<[u64]>,
}

impl SeqWindow {
    fn new(window: u32) -> SeqWindow {
        SeqWindow {
            bits: vec![0u64; window as usize / 64].into_boxed_slice(),
        }
    }

    #[inline(always)]
    fn mask(&self) -> u64 {
        (self.bits.len() * 64 - 1) as u64
    }

    #[inline(always)]
    fn len(&self) -> u64 {
        (self.bits.len() * 64) as u64
    }

    /// Sets the bit of `seq` and returns whether it was set.
    #[inline(always)]
    fn test_and_set(&mut self, seq: u64) -> bool {
        let pos = (seq & self.mask()) as usize;
        let (w, b) = (pos / 64, pos % 64);
        let was = self.bits[w] >> b & 1 == 1;
        self.bits[w] |= 1 << b;
        was
    }

    /// Clears the bits of `n` consecutive seqs from `from` (`n < len`), a word at a time.
    #[inline]
    fn clear(&mut self, mut from: u64, mut n: u64) {
        while n > 0 {
            let pos = (from & self.mask()) as usize;
            let (w, b) = (pos / 64, pos % 64);
            let take = (64 - b as u64).min(n);
            let m = if take == 64 {
                !0
            } else {
                ((1u64 << take) - 1) << b
            };
            self.bits[w] &= !m;
            from += take;
            n -= take;
        }
    }

    /// Moves the highest seq from `old` to `new` (> old): seqs in between are not received.
    #[inline]
    fn advance(&mut self, old: u64, new: u64) {
        let gap = new - old;
        if gap >= self.len() {
            self.bits.fill(0);
        } else {
            self.clear(old + 1, gap);
        }
        self.test_and_set(new);
    }

    fn reset(&mut self) {
        self.bits.fill(0);
    }
}

/// The receive-side analyzer of one rx queue. Creation allocates everything; recording
/// never allocates.
#[derive(Debug, Clone)]
pub struct Analyzer {
    streams: Vec<StreamRx>,
    windows: Vec<SeqWindow>,
    no_signature: u64,
    unknown_stream: u64,
    /// Nanoseconds per TSC tick, fixed point with 32 fractional bits (rounded).
    ns_per_tick: u128,
    config: AnalyzerConfig,
}

impl Analyzer {
    /// An analyzer for `config.streams` streams. Errors name the out-of-range field.
    pub fn new(config: &AnalyzerConfig) -> Result<Analyzer, AnalyzerError> {
        let bad = |field: &'static str, problem: String| AnalyzerError::Config { field, problem };
        if config.streams == 0 || config.streams > 1 << 16 {
            return Err(bad(
                "streams",
                format!("{} streams; use 1..=65536", config.streams),
            ));
        }
        if config.tsc_hz == 0 {
            return Err(bad("tsc_hz", "0 Hz; give the TSC rate (tsc_hz())".into()));
        }
        if !config.window.is_power_of_two() || !(64..=1 << 24).contains(&config.window) {
            return Err(bad(
                "window",
                format!("{} is not a power of two in 64..=16777216", config.window),
            ));
        }
        if config.latency_max_ns < 2 {
            return Err(bad(
                "latency_max_ns",
                format!("{} ns; use at least 2", config.latency_max_ns),
            ));
        }
        if config.latency_sigfig > 5 {
            return Err(bad(
                "latency_sigfig",
                format!("{} digits; use 0..=5", config.latency_sigfig),
            ));
        }
        let proto = StreamRx::new(config)?;
        Ok(Analyzer {
            streams: vec![proto; config.streams],
            windows: vec![SeqWindow::new(config.window); config.streams],
            no_signature: 0,
            unknown_stream: 0,
            ns_per_tick: ((1_000_000_000u128 << 32) + config.tsc_hz as u128 / 2)
                / config.tsc_hz as u128,
            config: config.clone(),
        })
    }

    /// The configuration the analyzer was built with.
    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// Analyzes one received frame (without FCS) that arrived at `rx_tsc`: finds its
    /// [`Signature`] and records it ([`record_signature`](Self::record_signature)); frames
    /// without one count in [`RxStats::no_signature`]. Returns the signature found.
    #[inline]
    pub fn record(&mut self, frame: &[u8], rx_tsc: u64) -> Option<Signature> {
        match Signature::find(frame) {
            Some(sig) => {
                self.record_signature(&sig, frame.len(), rx_tsc);
                Some(sig)
            }
            None => {
                self.no_signature += 1;
                None
            }
        }
    }

    /// Records a frame of `frame_len` bytes whose signature was already parsed.
    #[inline]
    pub fn record_signature(&mut self, sig: &Signature, frame_len: usize, rx_tsc: u64) {
        let i = sig.stream as usize;
        let (Some(rx), Some(win)) = (self.streams.get_mut(i), self.windows.get_mut(i)) else {
            self.unknown_stream += 1;
            return;
        };
        rx.packets += 1;
        rx.bytes += frame_len as u64;
        if rx.first_rx_tsc.is_none() {
            rx.first_rx_tsc = Some(rx_tsc);
        }
        rx.last_rx_tsc = Some(rx.last_rx_tsc.map_or(rx_tsc, |t| t.max(rx_tsc)));
        let s = sig.seq;
        match rx.highest_seq {
            None => {
                win.test_and_set(s);
                rx.highest_seq = Some(s);
            }
            Some(h) if s > h => {
                win.advance(h, s);
                rx.highest_seq = Some(s);
            }
            Some(h) => {
                // Inside the window the bit tells; older seqs are taken as late (see the
                // module docs).
                if h - s < win.len() && win.test_and_set(s) {
                    rx.duplicates += 1;
                    return;
                }
                rx.reordered += 1;
            }
        }
        match rx_tsc.checked_sub(sig.tx_tsc) {
            Some(ticks) => {
                let ns = (ticks as u128 * self.ns_per_tick + (1 << 31)) >> 32;
                rx.latency
                    .saturating_record(ns.min(u64::MAX as u128) as u64);
            }
            None => rx.negative_latency += 1,
        }
    }

    /// The live per-stream statistics, indexed by stream id.
    pub fn streams(&self) -> &[StreamRx] {
        &self.streams
    }

    /// The live statistics of stream `id`.
    pub fn stream(&self, id: u16) -> Option<&StreamRx> {
        self.streams.get(id as usize)
    }

    /// Frames without a signature so far.
    pub fn no_signature(&self) -> u64 {
        self.no_signature
    }

    /// Frames with an untracked stream id so far.
    pub fn unknown_stream(&self) -> u64 {
        self.unknown_stream
    }

    /// A copy of the statistics (allocates the histograms; see
    /// [`snapshot_into`](Self::snapshot_into) to reuse them).
    pub fn snapshot(&self) -> RxStats {
        RxStats {
            streams: self.streams.clone(),
            no_signature: self.no_signature,
            unknown_stream: self.unknown_stream,
        }
    }

    /// Copies the statistics into `out`, reusing its storage: no allocation when `out` came
    /// from a snapshot of an analyzer with the same configuration.
    pub fn snapshot_into(&self, out: &mut RxStats) {
        out.streams.truncate(self.streams.len());
        for (i, s) in self.streams.iter().enumerate() {
            match out.streams.get_mut(i) {
                Some(o) => o.copy_from(s),
                None => out.streams.push(s.clone()),
            }
        }
        out.no_signature = self.no_signature;
        out.unknown_stream = self.unknown_stream;
    }

    /// Forgets everything recorded (for the next trial of a test), keeping the storage.
    pub fn reset(&mut self) {
        for s in &mut self.streams {
            s.reset();
        }
        for w in &mut self.windows {
            w.reset();
        }
        self.no_signature = 0;
        self.unknown_stream = 0;
    }
}
