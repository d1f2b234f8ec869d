//! Parsed TCP segments: what the state machine consumes ([`TcpSegment`]) and produces
//! ([`Transmit`]), with conversions from and to wire bytes through [`crate::wire::TcpPacket`].

use std::net::Ipv4Addr;
use std::ops::Deref;

use super::seq::Seq;
use crate::mem::Mbuf;
use crate::wire::{
    checksum, ip_protocol, SackBlocks, TcpFlags, TcpOption, TcpOptionsIter, TcpPacket, WireError,
};

/// RFC 7323 timestamps option values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    /// Timestamp value: the sender's clock.
    pub tsval: u32,
    /// Timestamp echo reply: the most recent TSval the sender received (`TS.Recent`).
    pub tsecr: u32,
}

/// The TCP options the engine understands, decoded. Unknown options are skipped on parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (SYN only).
    pub mss: Option<u16>,
    /// Window scale shift as sent (SYN only; values above 14 are treated as 14).
    pub wscale: Option<u8>,
    /// SACK permitted (SYN only).
    pub sack_permitted: bool,
    /// Timestamps.
    pub timestamps: Option<Timestamps>,
    /// SACK blocks (empty when absent).
    pub sack_blocks: SackBlocks,
}

impl TcpOptions {
    /// Reads options from their wire bytes; [`WireError::BadOption`] if one is malformed.
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, WireError> {
        let mut o = TcpOptions::default();
        for opt in TcpOptionsIter::new(bytes) {
            match opt? {
                TcpOption::Mss(v) => o.mss = Some(v),
                TcpOption::WindowScale(v) => o.wscale = Some(v),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Sack(b) => o.sack_blocks = b,
                TcpOption::Timestamps { tsval, tsecr } => {
                    o.timestamps = Some(Timestamps { tsval, tsecr })
                }
                TcpOption::Nop | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(o)
    }

    /// Encoded length, padded to a multiple of 4 (at most 40 when the engine built them).
    pub fn buffer_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12; // [SACK-permitted | NOP NOP] + TS
        } else if self.sack_permitted {
            n += 4; // NOP NOP SACK-permitted
        }
        if self.wscale.is_some() {
            n += 4; // NOP WS
        }
        let blocks = self.sack_blocks.as_slice().len();
        if blocks > 0 {
            n += 4 + 8 * blocks; // NOP NOP SACK
        }
        n
    }

    /// Writes the options in Linux's layout (MSS, SACK-permitted + timestamps, NOP + window
    /// scale, NOP NOP + SACK) and returns [`buffer_len`](Self::buffer_len) bytes written.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut at = 0;
        let mut put = |o: TcpOption<'_>, buf: &mut [u8]| at += o.emit(&mut buf[at..]);
        if let Some(m) = self.mss {
            put(TcpOption::Mss(m), buf);
        }
        match (self.timestamps, self.sack_permitted) {
            (Some(ts), sack) => {
                if sack {
                    put(TcpOption::SackPermitted, buf);
                } else {
                    put(TcpOption::Nop, buf);
                    put(TcpOption::Nop, buf);
                }
                put(
                    TcpOption::Timestamps {
                        tsval: ts.tsval,
                        tsecr: ts.tsecr,
                    },
                    buf,
                );
            }
            (None, true) => {
                put(TcpOption::Nop, buf);
                put(TcpOption::Nop, buf);
                put(TcpOption::SackPermitted, buf);
            }
            (None, false) => {}
        }
        if let Some(ws) = self.wscale {
            put(TcpOption::Nop, buf);
            put(TcpOption::WindowScale(ws), buf);
        }
        if !self.sack_blocks.as_slice().is_empty() {
            put(TcpOption::Nop, buf);
            put(TcpOption::Nop, buf);
            put(TcpOption::Sack(self.sack_blocks), buf);
        }
        at
    }
}

/// The header fields of a segment, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (meaningful with [`TcpFlags::ACK`]).
    pub ack: Seq,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field as on the wire (not scaled).
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
}

impl TcpHeader {
    /// True if every flag of `f` is set.
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.contains(f)
    }

    /// Header length with options: `20 + options`.
    pub fn header_len(&self) -> usize {
        20 + self.options.buffer_len()
    }

    /// Writes the header and options at the start of `buf` (checksum and urgent pointer zero)
    /// and returns the header length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`header_len`](Self::header_len).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let hl = self.header_len();
        let mut p = TcpPacket::new_unchecked(&mut buf[..hl]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq.0);
        p.set_ack_number(if self.has(TcpFlags::ACK) {
            self.ack.0
        } else {
            0
        });
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_checksum(0);
        p.set_urgent_at(0);
        self.options.emit(p.options_mut());
        hl
    }
}

/// A received segment: header fields and a borrowed payload.
///
/// Dereferences to its [`TcpHeader`], so `seg.seq` works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Header fields.
    pub header: TcpHeader,
    /// Payload bytes (the first part, when the payload lies in two buffers).
    pub payload: &'a [u8],
    /// The rest of the payload when it lies in two buffers (a packet chained from a header
    /// mbuf and two payload mbufs); empty otherwise.
    pub payload_tail: &'a [u8],
}

impl Deref for TcpSegment<'_> {
    type Target = TcpHeader;
    fn deref(&self) -> &TcpHeader {
        &self.header
    }
}

impl<'a> TcpSegment<'a> {
    /// Parses the bytes of a whole TCP segment (the IPv4 payload). Fails like
    /// [`TcpPacket::check`] or with [`WireError::BadOption`]; the checksum is not verified
    /// (use [`TcpPacket::verify_checksum`] first).
    pub fn parse(bytes: &'a [u8]) -> Result<TcpSegment<'a>, WireError> {
        let p = TcpPacket::new_checked(bytes)?;
        let options = TcpOptions::parse(p.options())?;
        let header = TcpHeader {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: Seq(p.seq_number()),
            ack: Seq(p.ack_number()),
            flags: p.flags(),
            window: p.window_len(),
            options,
        };
        Ok(TcpSegment {
            header,
            payload: &bytes[p.header_len()..],
            payload_tail: &[],
        })
    }

    /// The whole payload, in its one or two parts.
    pub fn payload_parts(&self) -> Payload<'a> {
        Payload([self.payload, self.payload_tail])
    }

    /// Payload length (both parts).
    pub fn payload_len(&self) -> usize {
        self.payload.len() + self.payload_tail.len()
    }

    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    pub fn seg_len(&self) -> u32 {
        self.payload_len() as u32 + self.has(TcpFlags::SYN) as u32 + self.has(TcpFlags::FIN) as u32
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        self.header.header_len() + self.payload_len()
    }

    /// Writes the whole segment into `buf` with its checksum over the IPv4 pseudo header of
    /// `src` → `dst`, and returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> usize {
        let hl = self.header.emit(buf);
        let len = hl + self.payload_len();
        self.payload_parts().copy_to(&mut buf[hl..len]);
        TcpPacket::new_unchecked(&mut buf[..len]).fill_checksum(src, dst);
        len
    }
}

/// Payload bytes where they lie: one slice, or two when they span two buffers. The bytes are
/// the first slice followed by the second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Payload<'a>(pub [&'a [u8]; 2]);

impl<'a> Payload<'a> {
    /// Byte count of both parts.
    pub fn len(&self) -> usize {
        self.0[0].len() + self.0[1].len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes `[from, to)` (clamped to the length).
    pub fn range(&self, from: usize, to: usize) -> Payload<'a> {
        let [a, b] = self.0;
        let to = to.min(self.len());
        let from = from.min(to);
        let cut = |s: &'a [u8], base: usize| {
            let (lo, hi) = (from.saturating_sub(base), to.saturating_sub(base));
            &s[lo.min(s.len())..hi.min(s.len())]
        };
        Payload([cut(a, 0), cut(b, a.len())])
    }

    /// The one's-complement sum of the bytes (as one run, whatever the parts' lengths), for
    /// data starting at an even offset of what it is combined with.
    pub fn sum(&self) -> u32 {
        match self.0 {
            [a, []] => checksum::sum(a),
            [a, b] => checksum::combine_at(checksum::sum(a), checksum::sum(b), a.len()),
        }
    }

    /// Copies all bytes into `dst`, which must be exactly [`len`](Self::len) long.
    pub fn copy_to(&self, dst: &mut [u8]) {
        let [a, b] = self.0;
        dst[..a.len()].copy_from_slice(a);
        dst[a.len()..].copy_from_slice(b);
    }
}

/// A segment the engine wants sent: addresses, header fields, and the payload as up to two
/// slices of the send buffer (two when it spans two chunks). The glue copies it into an mbuf
/// ([`emit`](Self::emit) does header, payload and checksum in one go), or, for a large
/// payload, chains references to the chunks that hold it ([`payload_mbufs`](Self::payload_mbufs)).
///
/// Dereferences to its [`TcpHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Source IPv4 address (ours).
    pub src_addr: Ipv4Addr,
    /// Destination IPv4 address (the peer's).
    pub dst_addr: Ipv4Addr,
    /// Header fields.
    pub header: TcpHeader,
    /// The payload, in one or two parts.
    pub payload: Payload<'a>,
    /// The mbufs the payload slices lie in, when they do.
    pub payload_mbufs: PayloadMbufs<'a>,
}

/// For each payload slice of a [`Transmit`], the mbuf whose data holds it and the slice's
/// offset in that data, so the payload can leave by reference
/// ([`Mbuf::clone_range`](crate::mem::Mbuf::clone_range)) instead of by copy. Empty when the
/// payload is not in mbufs.
#[derive(Clone, Copy, Default)]
pub struct PayloadMbufs<'a>(pub [Option<(&'a Mbuf, usize)>; 2]);

impl PartialEq for PayloadMbufs<'_> {
    /// The same mbufs (by identity) at the same offsets.
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .all(|(a, b)| match (a, b) {
                (None, None) => true,
                (Some((m, o)), Some((n, p))) => std::ptr::eq(*m, *n) && o == p,
                _ => false,
            })
    }
}

impl Eq for PayloadMbufs<'_> {}

impl std::fmt::Debug for PayloadMbufs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let offs = self.0.map(|p| p.map(|(_, o)| o));
        f.debug_tuple("PayloadMbufs").field(&offs).finish()
    }
}

impl Deref for Transmit<'_> {
    type Target = TcpHeader;
    fn deref(&self) -> &TcpHeader {
        &self.header
    }
}

impl Transmit<'_> {
    /// Payload length in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    /// Header plus payload length.
    pub fn buffer_len(&self) -> usize {
        self.header.header_len() + self.payload_len()
    }

    /// Sequence space the segment occupies.
    pub fn seg_len(&self) -> u32 {
        self.payload_len() as u32 + self.has(TcpFlags::SYN) as u32 + self.has(TcpFlags::FIN) as u32
    }

    /// Copies the payload into the start of `dst` and returns its length.
    ///
    /// # Panics
    /// If `dst` is shorter than [`payload_len`](Self::payload_len).
    pub fn copy_payload(&self, dst: &mut [u8]) -> usize {
        let n = self.payload.len();
        self.payload.copy_to(&mut dst[..n]);
        n
    }

    /// Writes the whole segment (header, options, payload, checksum over the pseudo header)
    /// into `buf` and returns its length.
    ///
    /// The payload is summed while it is copied ([`checksum::copy_and_sum`]), so it is read
    /// once; the second slice's sum is byte-swapped when it lands at an odd offset.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let hl = self.header.emit(buf);
        let [a, b] = self.payload.0;
        let len = hl + a.len() + b.len();
        let (head, rest) = buf[..len].split_at_mut(hl);
        let (da, db) = rest.split_at_mut(a.len());
        let payload = checksum::combine_at(
            checksum::copy_and_sum(da, a),
            checksum::copy_and_sum(db, b),
            a.len(),
        );
        // The header is a whole number of 32-bit words: the payload starts at an even offset.
        let ph =
            checksum::pseudo_header_v4(self.src_addr, self.dst_addr, ip_protocol::TCP, len as u16);
        let total = checksum::combine(ph, checksum::combine(checksum::sum(head), payload));
        TcpPacket::new_unchecked(&mut buf[..len]).set_checksum(checksum::finish(total));
        len
    }

    /// Writes only the header and options, for a payload that goes to the wire by reference,
    /// and returns the header length. The checksum covers the payload where it lies (it is
    /// summed, not copied) or, when `partial`, is left for the port as in
    /// [`emit_partial`](Self::emit_partial).
    ///
    /// # Panics
    /// If `buf` is shorter than the header.
    pub fn emit_header(&self, buf: &mut [u8], partial: bool) -> usize {
        let hl = self.header.emit(buf);
        let [a, b] = self.payload.0;
        let len = hl + a.len() + b.len();
        let ph =
            checksum::pseudo_header_v4(self.src_addr, self.dst_addr, ip_protocol::TCP, len as u16);
        let csum = if partial {
            ph as u16
        } else {
            // The header is a whole number of 32-bit words: the payload starts at an even
            // offset.
            let payload = self.payload.sum();
            checksum::finish(checksum::combine(
                ph,
                checksum::combine(checksum::sum(&buf[..hl]), payload),
            ))
        };
        TcpPacket::new_unchecked(&mut buf[..hl]).set_checksum(csum);
        hl
    }

    /// Like [`emit`](Self::emit), but leaves the checksum for the port to complete (transmit
    /// checksum offload, DPDK's convention for `TX_L4_CKSUM`): the checksum field holds the
    /// folded pseudo-header sum, not complemented, and the payload is copied without being
    /// summed. Summing the segment as written then complementing gives the real checksum.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit_partial(&self, buf: &mut [u8]) -> usize {
        let hl = self.header.emit(buf);
        let len = hl + self.copy_payload(&mut buf[hl..]);
        let ph =
            checksum::pseudo_header_v4(self.src_addr, self.dst_addr, ip_protocol::TCP, len as u16);
        TcpPacket::new_unchecked(&mut buf[..len]).set_checksum(ph as u16);
        len
    }
}

/// The reset to send in reply to `seg` when no connection (and no listener) takes it
/// (RFC 9293 §3.10.7.1): `<SEQ=SEG.ACK><CTL=RST>` if it had an ACK, otherwise
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. `None` for a segment that is itself a reset.
pub fn reset_for(seg: &TcpSegment<'_>) -> Option<TcpHeader> {
    if seg.has(TcpFlags::RST) {
        return None;
    }
    let (seq, ack, flags) = if seg.has(TcpFlags::ACK) {
        (seg.ack, Seq(0), TcpFlags::RST)
    } else {
        (
            Seq(0),
            seg.seq + seg.seg_len(),
            TcpFlags::RST | TcpFlags::ACK,
        )
    };
    Some(TcpHeader {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq,
        ack,
        flags,
        window: 0,
        options: TcpOptions::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_ranges_cut_across_both_parts() {
        let p = Payload([b"abcd", b"efg"]);
        assert_eq!(p.len(), 7);
        let cat = |p: Payload<'_>| [p.0[0], p.0[1]].concat();
        for from in 0..=8 {
            for to in from..=9 {
                let r = p.range(from, to);
                let want = &b"abcdefg"[from.min(7)..to.min(7)];
                assert_eq!(cat(r), want, "{from}..{to}");
                let mut buf = vec![0; r.len()];
                r.copy_to(&mut buf);
                assert_eq!(buf, want);
            }
        }
        assert_eq!(p.range(5, 6).0, [&b""[..], b"f"]);
        assert!(p.range(3, 3).is_empty());
    }

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn header(options: TcpOptions, flags: TcpFlags) -> TcpHeader {
        TcpHeader {
            src_port: 40000,
            dst_port: 80,
            seq: Seq(0xfff0_0000),
            ack: Seq(77),
            flags,
            window: 512,
            options,
        }
    }

    #[test]
    fn option_layouts_round_trip() {
        let ts = Some(Timestamps { tsval: 5, tsecr: 6 });
        let sack = SackBlocks::from_slice(&[(10, 20), (30, 40), (50, 60)]).unwrap();
        let cases = [
            (
                TcpOptions {
                    mss: Some(1460),
                    wscale: Some(7),
                    sack_permitted: true,
                    timestamps: ts,
                    ..Default::default()
                },
                20,
            ),
            (
                TcpOptions {
                    mss: Some(1460),
                    wscale: Some(7),
                    timestamps: ts,
                    ..Default::default()
                },
                20,
            ),
            (
                TcpOptions {
                    mss: Some(536),
                    sack_permitted: true,
                    ..Default::default()
                },
                8,
            ),
            (
                TcpOptions {
                    timestamps: ts,
                    sack_blocks: sack,
                    ..Default::default()
                },
                40,
            ),
            (TcpOptions::default(), 0),
        ];
        for (opts, len) in cases {
            assert_eq!(opts.buffer_len(), len, "{opts:?}");
            let mut buf = [0u8; 40];
            assert_eq!(opts.emit(&mut buf), len);
            assert_eq!(TcpOptions::parse(&buf[..len]).unwrap(), opts);
        }
        // Linux's SYN layout: MSS, SACK-permitted, TS, NOP, WS.
        let mut buf = [0u8; 20];
        cases[0].0.emit(&mut buf);
        assert_eq!(&buf[..8], &[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
        assert_eq!(&buf[16..], &[1, 3, 3, 7]);
        assert_eq!(TcpOptions::parse(&[2, 3, 0]), Err(WireError::BadOption));
    }

    #[test]
    fn segment_round_trip_with_checksum() {
        let opts = TcpOptions {
            timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
            ..Default::default()
        };
        let h = header(opts, TcpFlags::ACK | TcpFlags::PSH);
        let seg = TcpSegment {
            header: h,
            payload: b"hello",
            payload_tail: &[],
        };
        let mut buf = [0u8; 100];
        let n = seg.emit(&mut buf, A, B);
        assert_eq!(n, 32 + 5);
        assert!(TcpPacket::new_checked(&buf[..n])
            .unwrap()
            .verify_checksum(A, B));
        let back = TcpSegment::parse(&buf[..n]).unwrap();
        assert_eq!(back, seg);
        assert_eq!(back.seg_len(), 5);
        // A Transmit with a split payload emits the same bytes.
        let t = Transmit {
            src_addr: A,
            dst_addr: B,
            header: h,
            payload: Payload([b"hel", b"lo"]),
            payload_mbufs: Default::default(),
        };
        let mut buf2 = [0u8; 100];
        assert_eq!(t.emit(&mut buf2), n);
        assert_eq!(buf[..n], buf2[..n]);
        assert_eq!((t.payload_len(), t.buffer_len(), t.seg_len()), (5, n, 5));
        // The ack field is zero on the wire without the ACK flag.
        let syn = TcpSegment {
            header: header(TcpOptions::default(), TcpFlags::SYN),
            payload: &[],
            payload_tail: &[],
        };
        let n = syn.emit(&mut buf, A, B);
        assert_eq!(TcpSegment::parse(&buf[..n]).unwrap().ack, Seq(0));
        assert_eq!(TcpSegment::parse(&buf[..10]), Err(WireError::Truncated));
    }

    /// Where [`split_ack`] cuts a 1461-byte payload: first slices of odd and even lengths.
    const CUTS: [usize; 6] = [0, 1, 2, 731, 1460, 1461];

    /// An ACK with timestamps carrying `data` as two slices, cut at `cut`.
    fn split_ack(data: &[u8], cut: usize) -> Transmit<'_> {
        let options = TcpOptions {
            timestamps: Some(Timestamps { tsval: 9, tsecr: 8 }),
            ..Default::default()
        };
        Transmit {
            src_addr: A,
            dst_addr: B,
            header: header(options, TcpFlags::ACK),
            payload: Payload([&data[..cut], &data[cut..]]),
            payload_mbufs: Default::default(),
        }
    }

    #[test]
    fn partial_emit_completes_to_the_full_checksum() {
        let data: Vec<u8> = (0..1461u32).map(|i| (i * 7 + 3) as u8).collect();
        for cut in CUTS {
            let t = split_ack(&data, cut);
            let (mut full, mut partial) = ([0u8; 1600], [0u8; 1600]);
            let n = t.emit(&mut full);
            assert_eq!(t.emit_partial(&mut partial), n);
            let ph = checksum::pseudo_header_v4(A, B, ip_protocol::TCP, n as u16);
            assert_eq!(u16::from_be_bytes([partial[16], partial[17]]), ph as u16);
            assert_eq!(full[..16], partial[..16]);
            assert_eq!(full[18..n], partial[18..n]);
            // Completing: the sum of the bytes as written, complemented.
            let done = checksum::finish(checksum::sum(&partial[..n]));
            assert_eq!(done.to_be_bytes(), [full[16], full[17]], "cut {cut}");
        }
    }

    #[test]
    fn header_only_emits_match_the_whole_segment() {
        let data: Vec<u8> = (0..1461u32).map(|i| (i * 5 + 1) as u8).collect();
        for cut in CUTS {
            let t = split_ack(&data, cut);
            let (mut full, mut partial) = ([0u8; 1600], [0u8; 1600]);
            let n = t.emit(&mut full);
            t.emit_partial(&mut partial);
            let (mut h, mut hp) = ([0u8; 60], [0u8; 60]);
            let hl = t.emit_header(&mut h, false);
            assert_eq!(t.emit_header(&mut hp, true), hl);
            assert_eq!(hl + data.len(), n);
            assert_eq!(h[..hl], full[..hl], "cut {cut}");
            assert_eq!(hp[..hl], partial[..hl], "cut {cut}");
        }
    }

    #[test]
    fn resets_for_stray_segments() {
        let with_ack = TcpSegment {
            header: header(TcpOptions::default(), TcpFlags::ACK),
            payload: b"xyz",
            payload_tail: &[],
        };
        let r = reset_for(&with_ack).unwrap();
        assert_eq!((r.src_port, r.dst_port), (80, 40000));
        assert_eq!((r.seq, r.flags), (Seq(77), TcpFlags::RST));
        let syn = TcpSegment {
            header: header(TcpOptions::default(), TcpFlags::SYN | TcpFlags::FIN),
            payload: b"xyz",
            payload_tail: &[],
        };
        let r = reset_for(&syn).unwrap();
        assert_eq!((r.seq, r.ack), (Seq(0), Seq(0xfff0_0000) + 5));
        assert_eq!(r.flags, TcpFlags::RST | TcpFlags::ACK);
        let rst = TcpSegment {
            header: header(TcpOptions::default(), TcpFlags::RST),
            payload: &[],
            payload_tail: &[],
        };
        assert_eq!(reset_for(&rst), None);
    }
}
