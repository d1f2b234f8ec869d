//! Streams: a validated description of traffic turned into frames, one [`Stream::fill`] per
//! packet.
//!
//! [`Stream::new`] builds the largest frame the stream can send once, as a template
//! (Ethernet [+ 802.1Q] / IPv4 / UDP, TCP SYN or ICMP echo / payload, with valid checksums for
//! the first values of every field). [`Stream::fill`] copies the prefix of the template that
//! the next frame needs into the mbuf and stamps what varies per packet: IPv4 total length,
//! source and destination addresses, ports, the UDP length, the ICMP echo sequence number and
//! the [`Signature`].
//!
//! # Checksums without re-summing the frame
//!
//! At build time each checksum's covered data is split into a constant part and the stamped
//! 16-bit words. The constant part (header words that never change, the protocol of the
//! pseudo header) is summed once, and the payload's sums for every length the stream can emit
//! are kept in a prefix table. Per packet only the stamped words are added to those
//! precomputed sums and folded: the RFC 1624 incremental update `HC' = ~(~HC + ~m + m')`
//! taken from a checksum whose stamped fields were zero, so the work per packet is a dozen
//! additions whatever the frame size. The result is bit-for-bit what recomputing would give.
//! IPv4, UDP (never sent as "no checksum": a computed 0 goes out as 0xffff, RFC 768), TCP and
//! ICMP checksums are all valid.

use std::fmt;
use std::net::Ipv4Addr;

use super::{Signature, WyRand, FCS_LEN, MIN_FRAME_SIZE};
use crate::mem::Mbuf;
use crate::port::MacAddr;
use crate::wire::{
    checksum, ethertype, icmpv4_type, ip_protocol, EthernetFrame, EthernetRepr, Icmpv4Packet,
    Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, UdpPacket, VlanTci,
};

/// The values a header field takes, one per packet.
///
/// Used for IPv4 addresses ([`Range32`], `u32` in host order: `u32::from(Ipv4Addr)`), ports
/// ([`Range16`]) and frame sizes ([`SizeSpec::Range`]). All bounds are inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldRange<T> {
    /// The same value in every packet.
    Fixed(T),
    /// `start`, `start + step`, `start + 2·step`, … while the value stays `<= end`; then back
    /// to `start` (the value after the last one that fits wraps, so `end` itself is only sent
    /// when `end − start` is a multiple of `step`). `step` must be at least 1.
    Seq {
        /// First value.
        start: T,
        /// Largest value.
        end: T,
        /// Increment per packet.
        step: T,
    },
    /// Uniformly random in `start..=end` (a fast PRNG seeded per stream, so runs repeat).
    Random {
        /// Smallest value.
        start: T,
        /// Largest value.
        end: T,
    },
}

/// A range of 16-bit values (ports, frame sizes).
pub type Range16 = FieldRange<u16>;

/// A range of 32-bit values (IPv4 addresses in host byte order).
pub type Range32 = FieldRange<u32>;

impl FieldRange<u32> {
    /// One fixed IPv4 address.
    pub fn ip(addr: Ipv4Addr) -> Range32 {
        FieldRange::Fixed(u32::from(addr))
    }

    /// Every address from `start` to `end` in turn, then again.
    pub fn ip_seq(start: Ipv4Addr, end: Ipv4Addr) -> Range32 {
        FieldRange::Seq {
            start: u32::from(start),
            end: u32::from(end),
            step: 1,
        }
    }

    /// A random address in `start..=end` per packet.
    pub fn ip_random(start: Ipv4Addr, end: Ipv4Addr) -> Range32 {
        FieldRange::Random {
            start: u32::from(start),
            end: u32::from(end),
        }
    }
}

impl<T: Copy + Into<u32>> FieldRange<T> {
    /// The smallest and largest value the range may produce (its bounds).
    pub fn bounds(&self) -> (T, T) {
        match *self {
            FieldRange::Fixed(v) => (v, v),
            FieldRange::Seq { start, end, .. } | FieldRange::Random { start, end } => (start, end),
        }
    }

    /// Checks `start <= end` and `step >= 1`; the error names what is wrong.
    fn check(&self) -> Result<(), String> {
        let (start, end) = self.bounds();
        let (s, e): (u32, u32) = (start.into(), end.into());
        if s > e {
            return Err(format!(
                "start {s} is greater than end {e}; give start <= end"
            ));
        }
        if let FieldRange::Seq { step, .. } = *self {
            if Into::<u32>::into(step) == 0 {
                return Err("step 0 never changes the value; give step >= 1 or use Fixed".into());
            }
        }
        Ok(())
    }
}

/// The transport protocol of a stream and its ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum L4 {
    /// UDP datagrams with a valid checksum.
    Udp {
        /// Source port.
        src_port: Range16,
        /// Destination port.
        dst_port: Range16,
    },
    /// TCP SYN segments (a 20-byte header without options, window 65535, a fixed initial
    /// sequence number), like a SYN flood or a connection-rate test. The signature, when
    /// enabled, is carried as SYN data.
    TcpSyn {
        /// Source port.
        src_port: Range16,
        /// Destination port.
        dst_port: Range16,
    },
    /// ICMP echo requests: identifier = stream id, sequence number = low 16 bits of the
    /// packet's seq. A Linux peer answers them, and the replies carry the signature back.
    IcmpEcho,
}

impl L4 {
    /// The IP protocol number.
    pub fn protocol(&self) -> u8 {
        match self {
            L4::Udp { .. } => ip_protocol::UDP,
            L4::TcpSyn { .. } => ip_protocol::TCP,
            L4::IcmpEcho => ip_protocol::ICMP,
        }
    }

    /// Length of the L4 header the stream writes: 8 (UDP, ICMP) or 20 (TCP).
    pub fn header_len(&self) -> usize {
        match self {
            L4::Udp { .. } | L4::IcmpEcho => 8,
            L4::TcpSyn { .. } => 20,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            L4::Udp { .. } => "UDP",
            L4::TcpSyn { .. } => "TCP SYN",
            L4::IcmpEcho => "ICMP echo",
        }
    }
}

/// The most entries a [`SizeSpec::Imix`] may list.
pub const IMIX_MAX_ENTRIES: usize = 256;

/// IMIX tables longer than this are scaled down to it (see [`SizeSpec::Imix`]).
const IMIX_TABLE_MAX: u64 = 4096;

/// Frame sizes, **including the 4-byte FCS** (RFC 2544, pktgen-dpdk): `Fixed(64)` writes 60
/// bytes into each mbuf.
///
/// Every size must lie in [`min_frame_size`]`..=`[`max_frame_size`] for the stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SizeSpec {
    /// Every frame has this size.
    Fixed(u16),
    /// Sizes from a range: `Seq` walks through the sizes (a size sweep), `Random` picks one
    /// uniformly per packet.
    Range(Range16),
    /// An internet mix: `(frame size, weight)` pairs. The sizes are sent in a fixed shuffled
    /// order that repeats (like RFC 6985's IMIX sequences), so every window of one cycle has
    /// exactly the requested proportions. The cycle is the sum of the weights when that is at
    /// most 4096 (exact proportions); otherwise the weights are scaled to a 4096-entry cycle
    /// (each size keeps at least one slot; proportions within 1/4096). Weights must be > 0;
    /// at most [`IMIX_MAX_ENTRIES`] entries.
    Imix(Vec<(u16, u32)>),
}

impl SizeSpec {
    /// The classic "simple IMIX": 64, 594 and 1518-byte frames in the ratio 7:4:1 (mean
    /// 353.83 bytes).
    pub fn simple_imix() -> SizeSpec {
        SizeSpec::Imix(vec![(64, 7), (594, 4), (1518, 1)])
    }
}

/// What fills the L4 payload after the signature (or from its start without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Payload {
    /// Zero bytes.
    #[default]
    Zeros,
    /// These bytes, repeated (must not be empty).
    Pattern(Vec<u8>),
    /// 0, 1, 2, … 255, 0, 1, … counted from the first payload byte after the signature.
    Incrementing,
}

/// A description of one stream of traffic. See [`Stream::new`] for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamSpec {
    /// Stream id, carried in the signature; the analyzer indexes its per-stream counters by it,
    /// so ids should be small and dense (0, 1, 2, …).
    pub id: u16,
    /// Ethernet source address.
    pub src_mac: MacAddr,
    /// Ethernet destination address.
    pub dst_mac: MacAddr,
    /// An 802.1Q tag with this VLAN id (0..=4095, priority 0), or untagged.
    pub vlan: Option<u16>,
    /// IPv4 source address per packet (host byte order).
    pub src_ip: Range32,
    /// IPv4 destination address per packet (host byte order).
    pub dst_ip: Range32,
    /// IPv4 time to live.
    pub ttl: u8,
    /// Transport protocol and ports.
    pub l4: L4,
    /// Frame sizes (including FCS).
    pub size: SizeSpec,
    /// Payload contents.
    pub payload: Payload,
    /// Embed a [`Signature`] (stream, seq, tx TSC) at the start of the L4 payload for loss and
    /// latency analysis on the receive side.
    pub signature: bool,
}

/// A [`StreamSpec`] that [`Stream::new`] refused: which stream, which field (a path such as
/// `size.imix[2].weight` or `l4.dst_port`), and what is wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream {stream}: {field}: {problem}")]
pub struct StreamError {
    /// The stream id.
    pub stream: u16,
    /// The field, as a path into [`StreamSpec`].
    pub field: String,
    /// What is wrong, with the valid values.
    pub problem: String,
}

/// The smallest frame size (with FCS) a stream can send: the Ethernet minimum of 64 bytes,
/// or more when the headers and the signature need it (14 Ethernet + 4 VLAN + 20 IPv4 +
/// 8 UDP/ICMP or 20 TCP + 18 signature + 4 FCS).
///
/// ```
/// use ferroplane::pktgen::{min_frame_size, FieldRange, L4};
/// let udp = L4::Udp { src_port: FieldRange::Fixed(1), dst_port: FieldRange::Fixed(2) };
/// assert_eq!(min_frame_size(false, &udp, true), 64); // 60 bytes: headers + signature fit
/// assert_eq!(min_frame_size(true, &udp, true), 68); // a VLAN tag adds 4
/// ```
pub fn min_frame_size(vlan: bool, l4: &L4, signature: bool) -> u16 {
    let need = l2_len(vlan)
        + Ipv4Packet::<&[u8]>::MIN_HEADER_LEN
        + l4.header_len()
        + if signature { Signature::LEN } else { 0 }
        + FCS_LEN;
    (need as u16).max(MIN_FRAME_SIZE)
}

/// The largest frame size (with FCS) for an IP MTU: `mtu + 18` (Ethernet header and FCS),
/// `+ 4` with a VLAN tag — 1518 / 1522 for the standard 1500.
pub fn max_frame_size(mtu: u16, vlan: bool) -> u32 {
    mtu as u32 + 14 + FCS_LEN as u32 + if vlan { 4 } else { 0 }
}

fn l2_len(vlan: bool) -> usize {
    if vlan {
        18
    } else {
        14
    }
}

/// Frame sizes a stream produces, in [`SizeSpec`] units (with FCS; each frame writes
/// [`FCS_LEN`] fewer bytes into its mbuf).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameLen {
    /// Smallest frame.
    pub min: u16,
    /// Largest frame (the template's size).
    pub max: u16,
    /// Long-run mean frame size: what [`crate::pktgen::Pacer::new`] takes as `avg_frame_size`.
    pub mean: f64,
}

/// How a field's value is chosen: [`FieldRange`] widened to `u32`, with its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenMode {
    Fixed,
    Seq,
    Random,
}

#[derive(Debug, Clone, Copy)]
struct FieldGen {
    mode: GenMode,
    start: u32,
    end: u32,
    step: u32,
    /// `end − start + 1` (up to 2^32).
    span: u64,
    /// The next value of a `Seq`.
    cur: u32,
}

impl FieldGen {
    /// From a range already [`FieldRange::check`]ed.
    fn new<T: Copy + Into<u32>>(r: &FieldRange<T>) -> FieldGen {
        let (mode, start, end, step) = match *r {
            FieldRange::Fixed(v) => (GenMode::Fixed, v.into(), v.into(), 0),
            FieldRange::Seq { start, end, step } => {
                (GenMode::Seq, start.into(), end.into(), step.into())
            }
            FieldRange::Random { start, end } => (GenMode::Random, start.into(), end.into(), 0),
        };
        FieldGen {
            mode,
            start,
            end,
            step,
            span: end as u64 - start as u64 + 1,
            cur: start,
        }
    }

    #[inline(always)]
    fn next(&mut self, rng: &mut WyRand) -> u32 {
        match self.mode {
            GenMode::Fixed => self.start,
            GenMode::Seq => {
                let v = self.cur;
                self.cur = match v.checked_add(self.step) {
                    Some(n) if n <= self.end => n,
                    _ => self.start,
                };
                v
            }
            GenMode::Random => self.start + rng.below(self.span),
        }
    }

    fn reset(&mut self) {
        self.cur = self.start;
    }

    /// Long-run mean of the values.
    fn mean(&self) -> f64 {
        match self.mode {
            GenMode::Fixed => self.start as f64,
            GenMode::Seq => {
                let n = (self.end - self.start) / self.step; // values after the first
                self.start as f64 + self.step as f64 * n as f64 / 2.0
            }
            GenMode::Random => (self.start as f64 + self.end as f64) / 2.0,
        }
    }

    /// Largest value actually produced.
    fn max(&self) -> u32 {
        match self.mode {
            GenMode::Seq => self.start + (self.end - self.start) / self.step * self.step,
            _ => self.end,
        }
    }
}

/// Frame lengths (bytes written, without FCS) per packet.
#[derive(Debug, Clone)]
enum SizeGen {
    Fixed(usize),
    /// Frame sizes with FCS.
    Field(FieldGen),
    /// Lengths without FCS, in sending order.
    Imix {
        table: Box<[u16]>,
        idx: usize,
    },
}

impl SizeGen {
    #[inline(always)]
    fn next(&mut self, rng: &mut WyRand) -> usize {
        match self {
            SizeGen::Fixed(len) => *len,
            SizeGen::Field(g) => g.next(rng) as usize - FCS_LEN,
            SizeGen::Imix { table, idx } => {
                let len = table[*idx] as usize;
                *idx += 1;
                if *idx == table.len() {
                    *idx = 0;
                }
                len
            }
        }
    }

    /// The cursor, to undo a [`next`](Self::next) whose frame did not fit.
    #[inline(always)]
    fn cursor(&self) -> usize {
        match self {
            SizeGen::Fixed(_) => 0,
            SizeGen::Field(g) => g.cur as usize,
            SizeGen::Imix { idx, .. } => *idx,
        }
    }

    #[inline(always)]
    fn restore(&mut self, c: usize) {
        match self {
            SizeGen::Fixed(_) => {}
            SizeGen::Field(g) => g.cur = c as u32,
            SizeGen::Imix { idx, .. } => *idx = c,
        }
    }

    fn reset(&mut self) {
        self.restore(0);
        if let SizeGen::Field(g) = self {
            g.reset();
        }
    }
}

/// Which stamped fields change from packet to packet, and the checksum terms of the fixed
/// ones (whose bytes the template already holds).
#[derive(Debug, Clone, Copy)]
struct Vary {
    /// Source or destination address.
    ips: bool,
    /// Source or destination port (UDP, TCP).
    ports: bool,
    /// Frame size (IPv4 total length, UDP length).
    size: bool,
    /// Both addresses' 16-bit words summed, when they are fixed.
    addr_sum: u32,
    /// Both ports summed, when they are fixed.
    port_sum: u32,
}

/// Which L4 stamping to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Udp,
    Tcp,
    Icmp,
}

/// The fixed TCP initial sequence number of SYN streams.
const TCP_ISN: u32 = 0x5047_0001;

/// Stream RNG seed for a stream id (any fixed mixing; runs are reproducible).
fn seed_for(id: u16) -> u64 {
    0x7067_656e_0000_0000 ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// A validated stream, ready to [`fill`](Stream::fill) mbufs. Owned by one tx lcore.
///
/// Creation allocates (the template, the payload sum table, an IMIX table); filling does not.
#[derive(Clone)]
pub struct Stream {
    spec: StreamSpec,
    /// The largest frame, without FCS.
    template: Box<[u8]>,
    /// `pay_sum[k]`: folded sum of the first `k` payload bytes of the template (signature
    /// bytes zero), for every payload length.
    pay_sum: Box<[u16]>,
    kind: Kind,
    l2_len: usize,
    ip_off: usize,
    l4_off: usize,
    pay_off: usize,
    /// Sum of the IPv4 header with total length, checksum and addresses zero.
    ip_base: u32,
    /// Sum of the L4 header with the stamped fields and the checksum zero, plus the
    /// protocol of the pseudo header (UDP, TCP).
    l4_base: u32,
    src_ip: FieldGen,
    dst_ip: FieldGen,
    src_port: FieldGen,
    dst_port: FieldGen,
    size: SizeGen,
    rng: WyRand,
    seed: u64,
    lens: FrameLen,
    /// Which stamped fields vary, and the checksum terms of those that do not.
    vary: Vary,
    /// Every frame is the template itself: no field varies (fixed addresses, ports and size,
    /// no signature, not ICMP whose echo sequence number changes), so a fill is one copy.
    constant: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("spec", &self.spec)
            .field("frame_len", &self.lens)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// Validates `spec` for a port with IP MTU `mtu` (1500 for standard Ethernet) and builds
    /// the stream.
    ///
    /// Rules, each reported as a [`StreamError`] naming the field and the valid values:
    /// * every frame size in `min..=max` where `min` = [`min_frame_size`] (64, or the headers
    ///   plus the signature when they need more) and `max` = [`max_frame_size`] (`mtu + 18`,
    ///   `+ 4` with a VLAN); for a range both bounds, for an IMIX every entry;
    /// * ranges (addresses, ports, sizes) with `start <= end`, and `step >= 1` for `Seq`;
    /// * IMIX: 1..=[`IMIX_MAX_ENTRIES`] entries, every weight > 0;
    /// * VLAN id 0..=4095; a payload pattern of at least one byte.
    ///
    /// The largest frame may still exceed an mbuf's data room; [`fill`](Stream::fill) then
    /// returns false for the frames that do not fit.
    pub fn new(spec: StreamSpec, mtu: u16) -> Result<Stream, StreamError> {
        let id = spec.id;
        let err = |field: &str, problem: String| StreamError {
            stream: id,
            field: field.to_string(),
            problem,
        };

        if let Some(v) = spec.vlan {
            if v > 4095 {
                return Err(err(
                    "vlan",
                    format!("VLAN id {v} is out of range; use 0..=4095"),
                ));
            }
        }
        spec.src_ip.check().map_err(|p| err("src_ip", p))?;
        spec.dst_ip.check().map_err(|p| err("dst_ip", p))?;
        let (src_port, dst_port) = match &spec.l4 {
            L4::Udp { src_port, dst_port } | L4::TcpSyn { src_port, dst_port } => {
                src_port.check().map_err(|p| err("l4.src_port", p))?;
                dst_port.check().map_err(|p| err("l4.dst_port", p))?;
                (*src_port, *dst_port)
            }
            L4::IcmpEcho => (FieldRange::Fixed(0), FieldRange::Fixed(0)),
        };
        if let Payload::Pattern(p) = &spec.payload {
            if p.is_empty() {
                return Err(err(
                    "payload",
                    "the pattern is empty; give at least one byte or use Zeros".into(),
                ));
            }
        }

        // Frame sizes.
        let vlan = spec.vlan.is_some();
        let min = min_frame_size(vlan, &spec.l4, spec.signature) as u32;
        let max = max_frame_size(mtu, vlan).min(u16::MAX as u32);
        let what = format!(
            "{}{}{}",
            spec.l4.name(),
            if vlan { " with a VLAN tag" } else { "" },
            if spec.signature {
                " and a signature"
            } else {
                ""
            }
        );
        if min > max {
            return Err(err(
                "size",
                format!(
                    "MTU {mtu} allows frames up to {max} bytes, below the minimum of {min} for \
                     {what}; raise the MTU to at least {}",
                    min - (max - mtu as u32)
                ),
            ));
        }
        let in_bounds = |field: &str, size: u32| -> Result<(), StreamError> {
            if size < min {
                Err(err(
                    field,
                    format!(
                        "frame size {size} is below the minimum of {min} bytes (FCS included) \
                         for {what}; use {min}..={max}"
                    ),
                ))
            } else if size > max {
                Err(err(
                    field,
                    format!(
                        "frame size {size} exceeds the maximum of {max} bytes (FCS included) \
                         for MTU {mtu}{}; use {min}..={max}",
                        if vlan { " with a VLAN tag" } else { "" }
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let mut rng = WyRand::new(seed_for(id));
        let (size, lens) = match &spec.size {
            SizeSpec::Fixed(s) => {
                in_bounds("size", *s as u32)?;
                (
                    SizeGen::Fixed(*s as usize - FCS_LEN),
                    FrameLen {
                        min: *s,
                        max: *s,
                        mean: *s as f64,
                    },
                )
            }
            SizeSpec::Range(r) => {
                r.check().map_err(|p| err("size", p))?;
                let (lo, hi) = r.bounds();
                in_bounds("size", lo as u32)?;
                in_bounds("size", hi as u32)?;
                let g = FieldGen::new(r);
                let lens = FrameLen {
                    min: lo,
                    max: g.max() as u16,
                    mean: g.mean(),
                };
                (SizeGen::Field(g), lens)
            }
            SizeSpec::Imix(entries) => {
                if entries.is_empty() || entries.len() > IMIX_MAX_ENTRIES {
                    return Err(err(
                        "size.imix",
                        format!(
                            "{} entries; give 1..={IMIX_MAX_ENTRIES} (size, weight) pairs",
                            entries.len()
                        ),
                    ));
                }
                for (i, &(s, w)) in entries.iter().enumerate() {
                    in_bounds(&format!("size.imix[{i}].size"), s as u32)?;
                    if w == 0 {
                        return Err(err(
                            &format!("size.imix[{i}].weight"),
                            "weight 0 would never send this size; give a weight >= 1 or drop \
                             the entry"
                                .into(),
                        ));
                    }
                }
                let table = imix_table(entries, &mut rng);
                let sum: u64 = table.iter().map(|&l| l as u64).sum();
                let lens = FrameLen {
                    min: entries.iter().map(|e| e.0).min().unwrap_or(0),
                    max: entries.iter().map(|e| e.0).max().unwrap_or(0),
                    mean: sum as f64 / table.len() as f64 + FCS_LEN as f64,
                };
                (SizeGen::Imix { table, idx: 0 }, lens)
            }
        };

        // Offsets.
        let l2_len = l2_len(vlan);
        let ip_off = l2_len;
        let l4_off = ip_off + 20;
        let l4_hdr = spec.l4.header_len();
        let pay_off = l4_off + l4_hdr;
        let sig_len = if spec.signature { Signature::LEN } else { 0 };
        let frame_max = lens.max as usize - FCS_LEN;
        let pay_max = frame_max - pay_off;

        // Payload (signature bytes zero: they are stamped per packet).
        let mut template = vec![0u8; frame_max].into_boxed_slice();
        {
            let body = &mut template[pay_off + sig_len..];
            match &spec.payload {
                Payload::Zeros => {}
                Payload::Pattern(p) => {
                    for (b, v) in body.iter_mut().zip(p.iter().cycle()) {
                        *b = *v;
                    }
                }
                Payload::Incrementing => {
                    for (i, b) in body.iter_mut().enumerate() {
                        *b = i as u8;
                    }
                }
            }
        }
        let mut pay_sum = vec![0u16; pay_max + 1].into_boxed_slice();
        {
            let payload = &template[pay_off..];
            let mut acc = 0u64;
            for (k, &b) in payload.iter().enumerate() {
                pay_sum[k] = fold(acc);
                acc += if k % 2 == 0 {
                    (b as u64) << 8
                } else {
                    b as u64
                };
            }
            pay_sum[pay_max] = fold(acc);
        }

        // Headers, with the first value of every field and valid checksums.
        let src0 = Ipv4Addr::from(FieldGen::new(&spec.src_ip).start);
        let dst0 = Ipv4Addr::from(FieldGen::new(&spec.dst_ip).start);
        let sport0 = src_port.bounds().0;
        let dport0 = dst_port.bounds().0;
        EthernetRepr {
            src_addr: spec.src_mac,
            dst_addr: spec.dst_mac,
            ethertype: ethertype::IPV4,
            vlan: spec.vlan.map(|v| VlanTci::new(0, false, v)),
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut template[..]));
        let mut ip = Ipv4Repr::new(src0, dst0, spec.l4.protocol(), frame_max - l4_off);
        ip.ttl = spec.ttl;
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut template[ip_off..]));
        let kind = match spec.l4 {
            L4::Udp { .. } => Kind::Udp,
            L4::TcpSyn { .. } => Kind::Tcp,
            L4::IcmpEcho => Kind::Icmp,
        };
        {
            let l4 = &mut template[l4_off..];
            match kind {
                Kind::Udp => {
                    let mut u = UdpPacket::new_unchecked(l4);
                    u.set_src_port(sport0);
                    u.set_dst_port(dport0);
                    u.set_len((frame_max - l4_off) as u16);
                    u.fill_checksum(src0, dst0);
                }
                Kind::Tcp => {
                    let mut t = TcpPacket::new_unchecked(l4);
                    t.set_src_port(sport0);
                    t.set_dst_port(dport0);
                    t.set_seq_number(TCP_ISN);
                    t.set_ack_number(0);
                    t.set_header_len(20);
                    t.set_flags(TcpFlags::SYN);
                    t.set_window_len(65535);
                    t.set_urgent_at(0);
                    t.fill_checksum(src0, dst0);
                }
                Kind::Icmp => {
                    let mut c = Icmpv4Packet::new_unchecked(l4);
                    c.set_msg_type(icmpv4_type::ECHO_REQUEST);
                    c.set_msg_code(0);
                    c.set_echo_ident(id);
                    c.set_echo_seq_no(0);
                    c.fill_checksum();
                }
            }
        }

        // Constant parts of the checksums: the headers with every stamped field zero.
        let mut ip_hdr = [0u8; 20];
        ip_hdr.copy_from_slice(&template[ip_off..l4_off]);
        for at in [2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] {
            ip_hdr[at] = 0;
        }
        let ip_base = checksum::sum(&ip_hdr);
        let mut l4_hdr_bytes = [0u8; 20];
        l4_hdr_bytes[..l4_hdr].copy_from_slice(&template[l4_off..pay_off]);
        let zero: &[usize] = match kind {
            // ports, length, checksum
            Kind::Udp => &[0, 1, 2, 3, 4, 5, 6, 7],
            // ports, checksum
            Kind::Tcp => &[0, 1, 2, 3, 16, 17],
            // checksum, echo sequence number
            Kind::Icmp => &[2, 3, 6, 7],
        };
        for &at in zero {
            l4_hdr_bytes[at] = 0;
        }
        let pseudo_proto = match kind {
            Kind::Icmp => 0,
            _ => spec.l4.protocol() as u32,
        };
        let l4_base = checksum::sum(&l4_hdr_bytes[..l4_hdr]) + pseudo_proto;

        let seed = seed_for(id);
        let all_fixed = [&spec.src_ip, &spec.dst_ip]
            .iter()
            .all(|r| matches!(r, FieldRange::Fixed(_)))
            && matches!(src_port, FieldRange::Fixed(_))
            && matches!(dst_port, FieldRange::Fixed(_))
            && matches!(size, SizeGen::Fixed(_));
        let constant = all_fixed && !spec.signature && kind != Kind::Icmp;
        let fixed = |r: &Range32| matches!(r, FieldRange::Fixed(_));
        let (a0, b0) = (u32::from(src0), u32::from(dst0));
        let vary = Vary {
            ips: !(fixed(&spec.src_ip) && fixed(&spec.dst_ip)),
            ports: !(matches!(src_port, FieldRange::Fixed(_))
                && matches!(dst_port, FieldRange::Fixed(_))),
            size: !matches!(size, SizeGen::Fixed(_)),
            addr_sum: (a0 >> 16) + (a0 & 0xffff) + (b0 >> 16) + (b0 & 0xffff),
            port_sum: match kind {
                Kind::Icmp => 0,
                _ => sport0 as u32 + dport0 as u32,
            },
        };
        Ok(Stream {
            vary,
            constant,
            src_ip: FieldGen::new(&spec.src_ip),
            dst_ip: FieldGen::new(&spec.dst_ip),
            src_port: FieldGen::new(&src_port),
            dst_port: FieldGen::new(&dst_port),
            spec,
            template,
            pay_sum,
            kind,
            l2_len,
            ip_off,
            l4_off,
            pay_off,
            ip_base,
            l4_base,
            size,
            rng: WyRand::new(seed),
            seed,
            lens,
        })
    }

    /// Writes the next frame of the stream into `m` and returns true; false, changing
    /// nothing (not even the stream's state), when the frame does not fit the mbuf's buffer
    /// or the mbuf is chained or shared.
    ///
    /// The frame starts at the mbuf's current data offset and replaces whatever data it held
    /// (a freshly allocated mbuf is empty). `seq` and `tx_tsc` go into the signature (when the
    /// stream has one); `seq`'s low 16 bits are also the ICMP echo sequence number. Fields
    /// with a range advance once per successful call. No allocation, no checksum pass over
    /// the frame.
    #[inline(always)]
    pub fn fill(&mut self, m: &mut Mbuf, seq: u64, tx_tsc: u64) -> bool {
        if self.constant {
            // Nothing varies: no generator state to advance or restore.
            let t = &self.template;
            if m.is_shared() || !m.set_len(t.len()) {
                return false;
            }
            copy_frame(m.data_mut(), t);
            return true;
        }
        let (rng, cursor) = (self.rng, self.size.cursor());
        let len = self.size.next(&mut self.rng);
        if m.is_shared() || !m.set_len(len) {
            self.rng = rng;
            self.size.restore(cursor);
            return false;
        }
        self.stamp(m.data_mut(), seq, tx_tsc);
        true
    }

    /// Like [`fill`](Stream::fill) for a plain buffer (a pcap writer, a test): writes the next
    /// frame at the start of `buf` and returns its length (without FCS), or `None`, changing
    /// nothing, when `buf` is too short.
    #[inline]
    pub fn write_frame(&mut self, buf: &mut [u8], seq: u64, tx_tsc: u64) -> Option<usize> {
        let (rng, cursor) = (self.rng, self.size.cursor());
        let len = self.size.next(&mut self.rng);
        match buf.get_mut(..len) {
            Some(frame) => {
                self.stamp(frame, seq, tx_tsc);
                Some(len)
            }
            None => {
                self.rng = rng;
                self.size.restore(cursor);
                None
            }
        }
    }

    /// Copies the template's first `frame.len()` bytes into `frame` and stamps the fields.
    #[inline(always)]
    fn stamp(&mut self, frame: &mut [u8], seq: u64, tx_tsc: u64) {
        let len = frame.len();
        copy_frame(frame, &self.template[..len]);
        if self.constant {
            // The template was built with the only values of every field and its checksums.
            return;
        }

        // Only the fields that vary are written: the template already holds the fixed ones.
        let ip_total = (len - self.l2_len) as u32;
        let ip: &mut [u8; 20] = (&mut frame[self.ip_off..self.l4_off])
            .try_into()
            .expect("the IPv4 header is 20 bytes");
        let addr_sum = if self.vary.ips {
            let src = self.src_ip.next(&mut self.rng);
            let dst = self.dst_ip.next(&mut self.rng);
            ip[12..16].copy_from_slice(&src.to_be_bytes());
            ip[16..20].copy_from_slice(&dst.to_be_bytes());
            (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff)
        } else {
            self.vary.addr_sum
        };
        if self.vary.size {
            put16(ip, 2, ip_total as u16);
        }
        put16(ip, 10, finish32(self.ip_base + ip_total + addr_sum));

        let l4_len = ip_total - 20;
        let pay_len = len - self.pay_off;
        let mut sum = self.l4_base + self.pay_sum[pay_len] as u32 + addr_sum;
        if self.spec.signature {
            let sig = Signature {
                stream: self.spec.id,
                seq,
                tx_tsc,
            };
            sig.write(&mut frame[self.pay_off..]);
            sum += sig.word_sum();
        }
        let l4 = &mut frame[self.l4_off..self.pay_off];
        let port_sum = if self.vary.ports {
            let sp = self.src_port.next(&mut self.rng);
            let dp = self.dst_port.next(&mut self.rng);
            put16(l4, 0, sp as u16);
            put16(l4, 2, dp as u16);
            sp + dp
        } else {
            self.vary.port_sum
        };
        match self.kind {
            Kind::Udp => {
                let l4: &mut [u8; 8] = l4.try_into().expect("the UDP header is 8 bytes");
                if self.vary.size {
                    put16(l4, 4, l4_len as u16);
                }
                // Pseudo header (addresses, length) + header (ports, length).
                sum += 2 * l4_len + port_sum;
                let c = finish32(sum);
                put16(l4, 6, if c == 0 { 0xffff } else { c });
            }
            Kind::Tcp => {
                sum += l4_len + port_sum;
                put16(l4, 16, finish32(sum));
            }
            Kind::Icmp => {
                // No pseudo header: take the addresses back out.
                sum -= addr_sum;
                let l4: &mut [u8; 8] = l4.try_into().expect("the ICMP header is 8 bytes");
                let es = seq as u16;
                put16(l4, 6, es);
                sum += es as u32;
                put16(l4, 2, finish32(sum));
            }
        }
    }

    /// The spec the stream was built from.
    pub fn spec(&self) -> &StreamSpec {
        &self.spec
    }

    /// The stream id.
    pub fn id(&self) -> u16 {
        self.spec.id
    }

    /// Frame sizes the stream produces (with FCS): min, max and long-run mean.
    pub fn frame_len(&self) -> FrameLen {
        self.lens
    }

    /// True when every frame of the stream is the same (no field varies, no signature, not
    /// ICMP echo): [`fill`](Stream::fill) then only copies the template.
    pub fn is_constant(&self) -> bool {
        self.constant
    }

    /// The template: the largest frame (without FCS) with the first value of every field and
    /// valid checksums (signature bytes zero).
    pub fn template(&self) -> &[u8] {
        &self.template
    }

    /// Offset of the L4 payload (where the signature goes) in every frame.
    pub fn payload_offset(&self) -> usize {
        self.pay_off
    }

    /// Reseeds the random fields (for example one seed per tx queue sending copies of a
    /// stream). The default seed is derived from the stream id, so runs are reproducible.
    /// The order of an IMIX cycle is fixed at creation and does not change.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = WyRand::new(seed);
    }

    /// Restarts every field at its first value and the random generator at its seed: the
    /// frames that follow repeat those after creation (or the last [`reseed`](Self::reseed)).
    pub fn reset(&mut self) {
        self.rng = WyRand::new(self.seed);
        self.src_ip.reset();
        self.dst_ip.reset();
        self.src_port.reset();
        self.dst_port.reset();
        self.size.reset();
    }
}

/// The IMIX cycle (lengths without FCS), shuffled.
fn imix_table(entries: &[(u16, u32)], rng: &mut WyRand) -> Box<[u16]> {
    let total: u64 = entries.iter().map(|e| e.1 as u64).sum();
    let counts: Vec<u64> = if total <= IMIX_TABLE_MAX {
        entries.iter().map(|e| e.1 as u64).collect()
    } else {
        // Largest remainder apportionment of IMIX_TABLE_MAX slots, at least one each.
        let mut counts: Vec<u64> = entries
            .iter()
            .map(|e| (e.1 as u64 * IMIX_TABLE_MAX / total).max(1))
            .collect();
        let used: u64 = counts.iter().sum();
        if used < IMIX_TABLE_MAX {
            let mut order: Vec<usize> = (0..entries.len()).collect();
            let rem = |i: usize| (entries[i].1 as u64 * IMIX_TABLE_MAX) % total;
            order.sort_by_key(|&i| std::cmp::Reverse(rem(i)));
            for &i in order.iter().take((IMIX_TABLE_MAX - used) as usize) {
                counts[i] += 1;
            }
        }
        counts
    };
    let mut table: Vec<u16> = Vec::new();
    for (e, &n) in entries.iter().zip(&counts) {
        table.extend(std::iter::repeat_n(e.0 - FCS_LEN as u16, n as usize));
    }
    // Fisher–Yates.
    for i in (1..table.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        table.swap(i, j);
    }
    table.into_boxed_slice()
}

/// `dst.copy_from_slice(src)` for frame-sized copies: up to 128 bytes as two overlapping
/// fixed-size moves (a few vector loads and stores inline instead of a `memcpy` call), longer
/// ones through `copy_from_slice`. Panics if the lengths differ, like `copy_from_slice`.
#[inline(always)]
fn copy_frame(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n, "copy_frame: length mismatch");
    #[inline(always)]
    fn two<const W: usize>(dst: &mut [u8], src: &[u8], n: usize) {
        dst[..W].copy_from_slice(&src[..W]);
        dst[n - W..].copy_from_slice(&src[n - W..]);
    }
    match n {
        16..=32 => two::<16>(dst, src, n),
        33..=64 => two::<32>(dst, src, n),
        65..=128 => two::<64>(dst, src, n),
        _ => dst.copy_from_slice(src),
    }
}

/// `checksum::finish` for a 32-bit sum: two end-around folds are enough (the first leaves at
/// most 0x1fffe, the second at most 0xffff), then the complement.
#[inline(always)]
fn finish32(sum: u32) -> u16 {
    let x = (sum & 0xffff) + (sum >> 16);
    let x = (x & 0xffff) + (x >> 16);
    !(x as u16)
}

/// Folds a sum to 16 bits with end-around carries.
fn fold(mut x: u64) -> u16 {
    while x > 0xffff {
        x = (x & 0xffff) + (x >> 16);
    }
    x as u16
}

#[inline(always)]
fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod finish_tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn finish32_equals_the_wire_finish(x in any::<u32>()) {
            prop_assert_eq!(super::finish32(x), super::checksum::finish(x));
        }
    }

    #[test]
    fn finish32_edges() {
        for x in [0, 0xffff, 0x1_0000, 0x1_fffe, 0xffff_ffff, 0xfffe_0001] {
            assert_eq!(super::finish32(x), super::checksum::finish(x), "{x:#x}");
        }
    }
}
