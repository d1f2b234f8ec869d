//! The packet generator's core: streams of synthetic frames, an rx signature, loss and latency
//! analysis, and TSC pacing — the engine of a pktgen-dpdk / TRex / MoonGen style tool.
//!
//! The app built on top (CLI, config, RFC 2544 search, pcap replay) only glues these together;
//! everything here is single-threaded, allocation-free on the per-packet path, and driven by
//! explicit timestamps so tests can run it on virtual time.
//!
//! The items live in four submodules (whose pages explain the design: checksum stamping,
//! signature layout, sequence tracking, the pacing model) and are re-exported here.
//!
//! | piece | what it does |
//! |---|---|
//! | [`StreamSpec`] → [`Stream`] | validates a description of traffic, builds the largest frame once as a template; [`Stream::fill`] copies it into an mbuf and stamps the varying fields (addresses, ports, lengths, signature) with O(1) checksum updates |
//! | [`Signature`] | 18 bytes at the start of the L4 payload: magic, stream id, sequence number, tx TSC; [`Signature::find`] parses a received frame without ever panicking |
//! | [`Analyzer`] → [`RxStats`] / [`StreamRx`] | per rx queue: packets, bytes, loss, duplicates, reordering and an HDR histogram of one-way latency per stream; snapshots of several queues [`merge`](RxStats::merge) |
//! | [`Pacer`], [`Rate`], [`Limits`] | how many packets may leave now so the long-run rate is exact; when to stop |
//!
//! # Units and conventions
//!
//! * **Frame size** means the Ethernet frame *including* its 4-byte FCS, as in RFC 2544 and
//!   pktgen-dpdk: a 64-byte frame writes [`FCS_LEN`] fewer, 60 bytes, into the mbuf (the NIC
//!   appends the FCS). [`SizeSpec`], [`FrameLen`], and the `avg_frame_size` of [`Pacer::new`]
//!   use this unit. [`StreamRx::bytes`] counts bytes as received (without FCS).
//! * **Rates**: [`Rate::Bps`] counts frame bits including the FCS, plus [`L1_OVERHEAD`]
//!   (preamble, SFD, inter-frame gap: 20 bytes) per frame when `l1_overhead` is set;
//!   [`Rate::LineRate`] always includes it, so 10 Gbit/s at 64 bytes is 14.88 Mpps.
//! * **Time** is the TSC ([`crate::runtime::tsc::rdtsc`]) and its rate
//!   ([`crate::runtime::tsc::tsc_hz`]); latencies are reported in nanoseconds. Tx and rx must
//!   read the same host clock (an invariant TSC is synchronised across cores).
//! * **Sequence numbers** are per stream, start at 0 and go up by one per packet sent; the
//!   caller passes them to [`Stream::fill`]. One stream id should be sent by one tx queue (give
//!   each queue its own [`StreamSpec::id`]), otherwise the receiver sees duplicates.
//!
//! # A tx loop
//!
//! ```
//! use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
//! use ferroplane::pktgen::{FieldRange, Limits, Pacer, Payload, Rate, SizeSpec, Stream, StreamSpec, L4};
//! use ferroplane::port::MacAddr;
//! use ferroplane::Burst;
//!
//! let mut params = MempoolParams::new("pktgen-doc", 1024);
//! params.huge = HugePolicy::Off;
//! let pool = Mempool::new(&params).unwrap();
//!
//! let spec = StreamSpec {
//!     id: 0,
//!     src_mac: MacAddr::local(1),
//!     dst_mac: MacAddr::local(2),
//!     vlan: None,
//!     src_ip: FieldRange::Fixed(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 1))),
//!     // 198.19.0.0 .. 198.19.0.255, random per packet
//!     dst_ip: FieldRange::Random { start: 0xc613_0000, end: 0xc613_00ff },
//!     ttl: 64,
//!     l4: L4::Udp { src_port: FieldRange::Fixed(1024), dst_port: FieldRange::Fixed(1024) },
//!     size: SizeSpec::Fixed(64),
//!     payload: Payload::Zeros,
//!     signature: true,
//! };
//! let mut stream = Stream::new(spec, 1500).unwrap();
//! let hz = 1_000_000_000; // a simulated 1 GHz TSC
//! let mut pacer = Pacer::new(Rate::Pps(1e6), stream.frame_len().mean, 32, hz).unwrap();
//! let mut limits = Limits { duration: None, count: Some(100) }.start(0, hz);
//! let (mut seq, mut now) = (0u64, 0u64);
//! let mut burst = Burst::new();
//! while !limits.is_done(now) {
//!     let n = limits.cap(pacer.allowance(now));
//!     if n > 0 && pool.alloc_bulk(&mut burst, n) {
//!         for m in burst.iter_mut() {
//!             assert!(stream.fill(m, seq, now));
//!             seq += 1;
//!         }
//!         // A real loop calls tx_burst here and keeps refused packets (with their seq)
//!         // for the next turn; this one "sends" everything.
//!         let sent = burst.len();
//!         burst.clear();
//!         pacer.sent(sent);
//!         limits.sent(sent);
//!     }
//!     now += 1_000; // 1 µs per turn
//! }
//! assert_eq!(seq, 100);
//! ```
//!
//! # An rx loop
//!
//! Each rx queue owns an [`Analyzer`] and calls [`Analyzer::record`] with each received frame
//! and its rx TSC. For a report, take [`Analyzer::snapshot`]s (or
//! [`snapshot_into`](Analyzer::snapshot_into) a reused [`RxStats`] to avoid allocating),
//! [`merge`](RxStats::merge) them, and [`finalize`](RxStats::finalize) with the tx counts when
//! the run is over so that packets lost after the last received one count too.

pub mod analyzer;
pub mod pacer;
pub mod parse;
pub mod rfc2544;
pub mod signature;
pub mod stream;

#[cfg(test)]
mod tests;

pub use analyzer::{
    Analyzer, AnalyzerConfig, AnalyzerError, LatencySummary, RxStats, StreamRx,
    DEFAULT_LATENCY_MAX_NS, DEFAULT_LATENCY_SIGFIG, DEFAULT_WINDOW,
};
pub use pacer::{LimitTracker, Limits, Pacer, PacerError, Rate};
pub use signature::Signature;
pub use stream::{
    max_frame_size, min_frame_size, FieldRange, FrameLen, Payload, Range16, Range32, SizeSpec,
    Stream, StreamError, StreamSpec, IMIX_MAX_ENTRIES, L4,
};

/// Bytes of the Ethernet frame check sequence: part of every frame size in this module, never
/// written into an mbuf (the NIC appends it).
pub const FCS_LEN: usize = 4;

/// Per-frame layer-1 overhead on Ethernet: 7 bytes preamble, 1 byte start-of-frame delimiter
/// and a 12-byte inter-frame gap.
pub const L1_OVERHEAD: usize = 20;

/// The smallest Ethernet frame, FCS included.
pub const MIN_FRAME_SIZE: u16 = 64;

/// wyrand: a 64-bit PRNG (one multiply per value) that passes BigCrush and PractRand; plenty
/// for picking addresses, ports and sizes, and much cheaper than a cryptographic generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WyRand(u64);

impl WyRand {
    /// A generator seeded with `seed` (any value, 0 included).
    pub(crate) const fn new(seed: u64) -> WyRand {
        WyRand(seed)
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    }

    /// A value in `0..span` (`span` in `1..=2^32`) by Lemire's multiply-shift: no division;
    /// the bias is below `span / 2^32` (one part in 65536 for a full 16-bit range).
    #[inline(always)]
    pub(crate) fn below(&mut self, span: u64) -> u32 {
        let r = self.next_u64() >> 32;
        ((r * span) >> 32) as u32
    }
}
