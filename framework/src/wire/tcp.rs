//! TCP segments (RFC 9293) and their options (RFC 9293 MSS, RFC 7323 window scale and
//! timestamps, RFC 2018 SACK).
//!
//! ```text
//!  0          2          4                 8                 12
//! | src port | dst port | sequence number | ack number      |
//!  12          13      14       16         18       20
//! | off | rsv | flags | window | checksum | urgent | options ... | payload ...
//! ```
//!
//! The checksum covers an IPv4 pseudo header and the whole segment, so a view must span
//! exactly the segment (the IPv4 payload).

use std::net::Ipv4Addr;
use std::ops::{BitOr, BitOrAssign};

use super::checksum;
use super::field::{get_u16, get_u32, set_u16, set_u32};
use super::ipv4::ip_protocol;
use super::WireError;

/// TCP option kinds.
pub mod tcp_option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size (length 4).
    pub const MSS: u8 = 2;
    /// Window scale (length 3).
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted (length 2).
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks (length 2 + 8 × n, n = 1..=4).
    pub const SACK: u8 = 5;
    /// Timestamps (length 10).
    pub const TIMESTAMP: u8 = 8;
}

/// The eight TCP flag bits of byte 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flags.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// True if every bit of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// Up to four SACK blocks (left edge, right edge), stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [(u32, u32); 4],
    len: u8,
}

impl SackBlocks {
    /// Blocks from a slice; `None` if there are more than four.
    pub fn from_slice(blocks: &[(u32, u32)]) -> Option<SackBlocks> {
        if blocks.len() > 4 {
            return None;
        }
        let mut s = SackBlocks::default();
        s.blocks[..blocks.len()].copy_from_slice(blocks);
        s.len = blocks.len() as u8;
        Some(s)
    }

    /// The blocks.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..self.len as usize]
    }
}

/// One TCP option, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// No operation.
    Nop,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift count (as sent; RFC 7323 caps its use at 14).
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks.
    Sack(SackBlocks),
    /// Timestamps.
    Timestamps {
        /// Timestamp value.
        tsval: u32,
        /// Timestamp echo reply.
        tsecr: u32,
    },
    /// Any other kind, with the bytes after its length byte.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option data.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Encoded length in bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::Nop => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(b) => 2 + 8 * b.as_slice().len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length.
    ///
    /// # Panics
    /// If `buf` is shorter than [`buffer_len`](Self::buffer_len) or an unknown option's data
    /// is longer than 253 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        if len > 1 {
            b[1] = u8::try_from(len).expect("TCP option longer than 255 bytes");
        }
        match *self {
            TcpOption::Nop => b[0] = tcp_option::NOP,
            TcpOption::Mss(v) => {
                b[0] = tcp_option::MSS;
                set_u16(b, 2, v);
            }
            TcpOption::WindowScale(v) => {
                b[0] = tcp_option::WINDOW_SCALE;
                b[2] = v;
            }
            TcpOption::SackPermitted => b[0] = tcp_option::SACK_PERMITTED,
            TcpOption::Sack(blocks) => {
                b[0] = tcp_option::SACK;
                for (i, &(l, r)) in blocks.as_slice().iter().enumerate() {
                    set_u32(b, 2 + 8 * i, l);
                    set_u32(b, 6 + 8 * i, r);
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                b[0] = tcp_option::TIMESTAMP;
                set_u32(b, 2, tsval);
                set_u32(b, 6, tsecr);
            }
            TcpOption::Unknown { kind, data } => {
                b[0] = kind;
                b[2..].copy_from_slice(data);
            }
        }
        len
    }
}

/// A checked walk over TCP options: yields each option, stops at EOL or at the end, and
/// yields one `Err(`[`WireError::BadOption`]`)` (then stops) for a length below 2, past the
/// end, or wrong for a known kind. Every step consumes at least one byte, so the walk always
/// ends.
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptionsIter<'a> {
    /// Walks the given option bytes.
    pub const fn new(options: &'a [u8]) -> Self {
        TcpOptionsIter { rest: options }
    }

    fn fail(&mut self) -> Option<Result<TcpOption<'a>, WireError>> {
        self.rest = &[];
        Some(Err(WireError::BadOption))
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            tcp_option::EOL => {
                self.rest = &[];
                return None;
            }
            tcp_option::NOP => {
                self.rest = after;
                return Some(Ok(TcpOption::Nop));
            }
            _ => {}
        }
        let len = match after.first() {
            Some(&l) => l as usize,
            None => return self.fail(),
        };
        if len < 2 || len > self.rest.len() {
            return self.fail();
        }
        let data = &self.rest[2..len];
        let opt = match (kind, data.len()) {
            (tcp_option::MSS, 2) => TcpOption::Mss(get_u16(data, 0)),
            (tcp_option::WINDOW_SCALE, 1) => TcpOption::WindowScale(data[0]),
            (tcp_option::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (tcp_option::SACK, n) if n > 0 && n <= 32 && n % 8 == 0 => {
                let mut blocks = SackBlocks::default();
                for (i, c) in data.chunks_exact(8).enumerate() {
                    blocks.blocks[i] = (get_u32(c, 0), get_u32(c, 4));
                }
                blocks.len = (n / 8) as u8;
                TcpOption::Sack(blocks)
            }
            (tcp_option::TIMESTAMP, 8) => TcpOption::Timestamps {
                tsval: get_u32(data, 0),
                tsecr: get_u32(data, 4),
            },
            (
                tcp_option::MSS
                | tcp_option::WINDOW_SCALE
                | tcp_option::SACK_PERMITTED
                | tcp_option::SACK
                | tcp_option::TIMESTAMP,
                _,
            ) => return self.fail(),
            _ => TcpOption::Unknown { kind, data },
        };
        self.rest = &self.rest[len..];
        Some(Ok(opt))
    }
}

impl std::iter::FusedIterator for TcpOptionsIter<'_> {}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// Length of a header with 40 bytes of options.
    pub const MAX_HEADER_LEN: usize = 60;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// [`WireError::Truncated`] below 20 bytes; [`WireError::BadDataOffset`] if the data
    /// offset is below 5 or the header it announces is longer than the buffer. Options are
    /// not walked (see [`validate_options`](Self::validate_options)) and the checksum is not
    /// verified.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN || hl > b.len() {
            return Err(WireError::BadDataOffset);
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 8)
    }

    /// Data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[12] >> 4
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        self.data_offset() as usize * 4
    }

    /// The eight flag bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[13])
    }

    /// FIN flag.
    pub fn fin(&self) -> bool {
        self.flags().contains(TcpFlags::FIN)
    }

    /// SYN flag.
    pub fn syn(&self) -> bool {
        self.flags().contains(TcpFlags::SYN)
    }

    /// RST flag.
    pub fn rst(&self) -> bool {
        self.flags().contains(TcpFlags::RST)
    }

    /// PSH flag.
    pub fn psh(&self) -> bool {
        self.flags().contains(TcpFlags::PSH)
    }

    /// ACK flag.
    pub fn ack(&self) -> bool {
        self.flags().contains(TcpFlags::ACK)
    }

    /// URG flag.
    pub fn urg(&self) -> bool {
        self.flags().contains(TcpFlags::URG)
    }

    /// ECE flag.
    pub fn ece(&self) -> bool {
        self.flags().contains(TcpFlags::ECE)
    }

    /// CWR flag.
    pub fn cwr(&self) -> bool {
        self.flags().contains(TcpFlags::CWR)
    }

    /// Window size (unscaled).
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 14)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 16)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 18)
    }

    /// The option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::MIN_HEADER_LEN..self.header_len()]
    }

    /// A checked walk over the options.
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }

    /// Walks the options: [`WireError::BadOption`] if any is malformed.
    pub fn validate_options(&self) -> Result<(), WireError> {
        self.options_iter().try_for_each(|o| o.map(|_| ()))
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment occupies: payload length, plus one for SYN and for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + self.syn() as usize + self.fin() as usize
    }

    /// True when the checksum over the pseudo header and the whole buffer is correct.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, b.len() as u16);
        checksum::verify_sum(checksum::combine(ph, checksum::sum(b)))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 8, v);
    }

    /// Sets the header length in bytes (stored as `len / 4` in the data offset; the
    /// reserved bits are cleared).
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[12] = ((len / 4) as u8) << 4;
    }

    /// Sets the eight flag bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[13] = flags.0;
    }

    /// Sets the window size.
    pub fn set_window_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 14, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 16, v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 18, v);
    }

    /// Computes the checksum over the pseudo header and the whole buffer and stores it.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::TCP, b.len() as u16);
        let c = checksum::finish(checksum::combine(ph, checksum::sum(b)));
        self.set_checksum(c);
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[Self::MIN_HEADER_LEN..hl]
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for TcpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A Linux SYN: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (40 bytes).
    fn linux_syn() -> Vec<u8> {
        let mut b = vec![
            0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0,
            0, 0, 0,
        ];
        b.extend_from_slice(&[
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        b
    }

    #[test]
    fn reads_a_syn() {
        let mut b = linux_syn();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        // Swapping the addresses leaves the pseudo-header sum alone; another address does not.
        assert!(p.verify_checksum(DST, SRC));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(198, 18, 0, 3)));
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x1234_5678, 0));
        assert_eq!((p.data_offset(), p.header_len()), (10, 40));
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh());
        assert!(!p.urg() && !p.ece() && !p.cwr());
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!((p.window_len(), p.urgent_at()), (64240, 0));
        assert_eq!(p.segment_len(), 1);
        let opts: Vec<_> = p.options_iter().map(Result::unwrap).collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 1, tsecr: 0 },
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ]
        );
        assert!(p.validate_options().is_ok());
        assert!(p.payload().is_empty());
    }

    #[test]
    fn options_emit_round_trip() {
        let sack = SackBlocks::from_slice(&[(1, 2), (3, 4), (0xffff_ffff, 0)]).unwrap();
        let opts = [
            TcpOption::Mss(536),
            TcpOption::Nop,
            TcpOption::WindowScale(14),
            TcpOption::SackPermitted,
            TcpOption::Sack(sack),
            TcpOption::Unknown {
                kind: 30,
                data: &[1, 2, 3],
            },
        ];
        let mut buf = [0u8; 48];
        let mut at = 0;
        for o in &opts {
            at += o.emit(&mut buf[at..]);
        }
        let parsed: Vec<_> = TcpOptionsIter::new(&buf[..at])
            .map(Result::unwrap)
            .collect();
        assert_eq!(parsed, opts);
        assert_eq!(SackBlocks::from_slice(&[(0, 0); 5]), None);
        // The zero padding after the options is EOL: the walk stops.
        assert_eq!(TcpOptionsIter::new(&buf).count(), opts.len());
    }

    #[test]
    fn malformed_options_are_errors() {
        let cases: [&[u8]; 12] = [
            &[2],                   // kind without length
            &[2, 0],                // length 0
            &[2, 1],                // length 1
            &[2, 4, 5],             // past the end
            &[2, 3, 5],             // MSS of length 3
            &[3, 2],                // window scale without a shift
            &[4, 3, 0],             // SACK permitted with data
            &[5, 2],                // SACK with no block
            &[5, 6, 0, 0, 0, 0],    // SACK with half a block
            &[8, 6, 0, 0, 0, 0],    // short timestamps
            &[1, 1, 99, 200, 0, 0], // unknown kind, length past the end
            &[
                5, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ], // five SACK blocks
        ];
        for c in cases {
            let mut it = TcpOptionsIter::new(c);
            let all: Vec<_> = it.by_ref().collect();
            assert_eq!(all.last(), Some(&Err(WireError::BadOption)), "{c:?}");
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn rejects_with_reason() {
        let b = linux_syn();
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            TcpPacket::new_checked(&b[..39]).unwrap_err(),
            WireError::BadDataOffset
        );
        let mut c = b.clone();
        c[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&c[..]).unwrap_err(),
            WireError::BadDataOffset
        );
        c[12] = 0x50;
        assert_eq!(TcpPacket::new_checked(&c[..]).unwrap().payload().len(), 20);
    }

    #[test]
    fn setters_and_flags() {
        let mut b = [0u8; 24];
        let mut p = TcpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(3);
        p.set_ack_number(4);
        p.set_header_len(20);
        let mut f = TcpFlags::ACK | TcpFlags::PSH;
        f |= TcpFlags::FIN | TcpFlags::URG | TcpFlags::ECE | TcpFlags::CWR | TcpFlags::RST;
        p.set_flags(f);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.payload_mut().copy_from_slice(b"data");
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        assert!(p.fin() && p.ack() && p.psh() && p.urg() && p.ece() && p.cwr() && p.rst());
        assert!(!p.syn() && !TcpFlags::empty().contains(TcpFlags::SYN));
        assert_eq!(p.segment_len(), 5);
        assert!(p.options_mut().is_empty());
        let p = TcpPacket::new_checked(p.into_inner()).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.seq_number()), (1, 2, 3));
        assert_eq!((p.ack_number(), p.window_len(), p.urgent_at()), (4, 5, 6));
    }
}
