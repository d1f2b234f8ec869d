//! IPv4 headers (RFC 791), with options.
//!
//! ```text
//!  0        4        8              16    19                 31
//! | ver=4  |  IHL   | DSCP     |ECN | total length             |
//! | identification           |0|DF|MF| fragment offset (×8)   |
//! | TTL             | protocol        | header checksum        |
//! | source address                                             |
//! | destination address                                        |
//! | options (IHL*4 - 20 bytes) ...                             |
//! ```

use std::net::Ipv4Addr;

use super::checksum;
use super::field::{get_ipv4, get_u16, set_ipv4, set_u16};
use super::WireError;

/// IP protocol numbers (the IPv4 `protocol` field).
pub mod ip_protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// IPv4 option types (the whole type byte: copied flag, class and number).
pub mod ipv4_option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding between options).
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RECORD_ROUTE: u8 = 7;
    /// Timestamp.
    pub const TIMESTAMP: u8 = 68;
    /// Loose source and record route.
    pub const LSRR: u8 = 131;
    /// Strict source and record route.
    pub const SSRR: u8 = 137;
    /// Router alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// One IPv4 option: its type byte and the bytes after the length byte. A NOP has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// The option type byte (see [`ipv4_option`]).
    pub kind: u8,
    /// The option's data (without the type and length bytes).
    pub data: &'a [u8],
}

impl Ipv4Option<'_> {
    /// The "copied" flag: the option must be copied into every fragment.
    pub const fn copied(&self) -> bool {
        self.kind & 0x80 != 0
    }
}

/// A checked walk over IPv4 options: yields each option, stops at EOL or at the end, and
/// yields one `Err(`[`WireError::BadOption`]`)` (then stops) for a length below 2 or past
/// the end of the options.
#[derive(Debug, Clone)]
pub struct Ipv4OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Ipv4OptionsIter<'a> {
    /// Walks the given option bytes.
    pub const fn new(options: &'a [u8]) -> Self {
        Ipv4OptionsIter { rest: options }
    }
}

impl<'a> Iterator for Ipv4OptionsIter<'a> {
    type Item = Result<Ipv4Option<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            ipv4_option::EOL => {
                self.rest = &[];
                None
            }
            ipv4_option::NOP => {
                self.rest = after;
                Some(Ok(Ipv4Option { kind, data: &[] }))
            }
            _ => {
                let len = match after.first() {
                    Some(&l) => l as usize,
                    None => 0,
                };
                if len < 2 || len > self.rest.len() {
                    self.rest = &[];
                    return Some(Err(WireError::BadOption));
                }
                let data = &self.rest[2..len];
                self.rest = &self.rest[len..];
                Some(Ok(Ipv4Option { kind, data }))
            }
        }
    }
}

impl std::iter::FusedIterator for Ipv4OptionsIter<'_> {}

/// A read/write view of an IPv4 packet.
///
/// [`Ipv4Packet::new_checked`] guarantees that the header (with options) is in the buffer and
/// that the total length is consistent, so [`payload`](Ipv4Packet::payload) (which ends at the
/// total length, dropping Ethernet padding) cannot index past the end. The header checksum is
/// checked separately with [`verify_checksum`](Ipv4Packet::verify_checksum).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// Length of a header with 40 bytes of options (IHL 15).
    pub const MAX_HEADER_LEN: usize = 60;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validates, in this order: at least 20 bytes ([`WireError::Truncated`]), version 4
    /// ([`WireError::BadVersion`]), IHL at least 5 ([`WireError::BadIhl`]), the whole header
    /// in the buffer ([`WireError::Truncated`]), and a total length that covers the header
    /// and fits the buffer ([`WireError::BadTotalLength`]). Options are not walked (see
    /// [`validate_options`](Self::validate_options)) and the checksum is not verified.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN {
            return Err(WireError::BadIhl);
        }
        if b.len() < hl {
            return Err(WireError::Truncated);
        }
        let total = self.total_len() as usize;
        if total < hl || total > b.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Internet header length in 32-bit words (5..=15).
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[0] & 0x0f
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        self.ihl() as usize * 4
    }

    /// Differentiated services code point (6 bits).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[1] >> 2
    }

    /// Explicit congestion notification (2 bits).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[1] & 0x03
    }

    /// Total length of the packet (header and payload).
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Don't fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.buffer.as_ref()[6] & 0x40 != 0
    }

    /// More fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.buffer.as_ref()[6] & 0x20 != 0
    }

    /// The reserved (evil) bit.
    pub fn reserved_flag(&self) -> bool {
        self.buffer.as_ref()[6] & 0x80 != 0
    }

    /// Fragment offset in bytes (the 13-bit field × 8).
    pub fn fragment_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), 6) & 0x1fff) << 3
    }

    /// True for a fragment: more fragments set or a non-zero offset.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), 6) & 0x3fff != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }

    /// Protocol of the payload (see [`ip_protocol`]).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), 12)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), 16)
    }

    /// The header bytes (with options).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The option bytes (empty for IHL 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::MIN_HEADER_LEN..self.header_len()]
    }

    /// A checked walk over the options.
    pub fn options_iter(&self) -> Ipv4OptionsIter<'_> {
        Ipv4OptionsIter::new(self.options())
    }

    /// Walks the options: [`WireError::BadOption`] if any is malformed.
    pub fn validate_options(&self) -> Result<(), WireError> {
        self.options_iter().try_for_each(|o| o.map(|_| ()))
    }

    /// True when the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        let h = self.header();
        if h.len() == Self::MIN_HEADER_LEN {
            return checksum::verify_header20(h);
        }
        checksum::verify(h)
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version field.
    pub fn set_version(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes (stored as `len / 4`, 4 bits).
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[1] = (b[1] & 0x03) | (v << 2);
    }

    /// Sets the ECN (2 bits).
    pub fn set_ecn(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[1] = (b[1] & 0xfc) | (v & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets or clears don't fragment.
    pub fn set_dont_fragment(&mut self, on: bool) {
        let b = self.buffer.as_mut();
        b[6] = if on { b[6] | 0x40 } else { b[6] & !0x40 };
    }

    /// Sets or clears more fragments.
    pub fn set_more_fragments(&mut self, on: bool) {
        let b = self.buffer.as_mut();
        b[6] = if on { b[6] | 0x20 } else { b[6] & !0x20 };
    }

    /// Sets the fragment offset in bytes (stored as `offset / 8`, 13 bits; flags kept).
    pub fn set_fragment_offset(&mut self, offset: u16) {
        let b = self.buffer.as_mut();
        let flags = get_u16(b, 6) & 0xe000;
        set_u16(b, 6, flags | ((offset >> 3) & 0x1fff));
    }

    /// Sets the TTL (checksum untouched; see [`decrement_ttl`](Self::decrement_ttl)).
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[9] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 10, v);
    }

    /// Sets the source address (checksum untouched).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), 12, a);
    }

    /// Sets the destination address (checksum untouched).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), 16, a);
    }

    /// Computes the header checksum and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet_checksum(self.header());
        self.set_checksum(c);
    }

    /// Decrements the TTL by one and patches the checksum incrementally (RFC 1624), as a
    /// router does; returns the new TTL. A TTL of 0 is left alone (the caller drops the
    /// packet before this point).
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        let proto = self.protocol() as u16;
        let old = ((ttl as u16) << 8) | proto;
        let new = (((ttl - 1) as u16) << 8) | proto;
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        ttl - 1
    }

    /// Rewrites the source address and patches the checksum incrementally (source NAT).
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) {
        let c = checksum::update_u32(self.checksum(), self.src_addr().into(), a.into());
        self.set_src_addr(a);
        self.set_checksum(c);
    }

    /// Rewrites the destination address and patches the checksum incrementally
    /// (destination NAT).
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) {
        let c = checksum::update_u32(self.checksum(), self.dst_addr().into(), a.into());
        self.set_dst_addr(a);
        self.set_checksum(c);
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[Self::MIN_HEADER_LEN..hl]
    }

    /// The payload (header end to total length), mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..total]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4 header without options, as plain values.
///
/// [`parse`](Ipv4Repr::parse) ignores options (the payload still starts after them) and does
/// not verify the checksum; [`emit`](Ipv4Repr::emit) writes a 20-byte header and fills the
/// checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload (see [`ip_protocol`]).
    pub protocol: u8,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_fragment: bool,
    /// More fragments.
    pub more_fragments: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub fragment_offset: u16,
}

impl Ipv4Repr {
    /// A header for an unfragmented packet with TTL 64, DF set, DSCP/ECN and ident zero.
    pub const fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: u8,
        payload_len: usize,
    ) -> Self {
        Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
        }
    }

    /// Reads a header; fails like [`Ipv4Packet::check`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, WireError> {
        packet.check()?;
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() as usize - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_fragment: packet.dont_fragment(),
            more_fragments: packet.more_fragments(),
            fragment_offset: packet.fragment_offset(),
        })
    }

    /// Header length [`emit`](Self::emit) writes: 20.
    pub const fn header_len(&self) -> usize {
        20
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        20 + self.payload_len
    }

    /// Writes the 20-byte header (IHL 5, total length `20 + payload_len`) and fills its
    /// checksum. The payload bytes are not touched.
    ///
    /// # Panics
    /// If the buffer is shorter than 20 bytes or `payload_len` exceeds 65515.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        let total = u16::try_from(self.buffer_len()).expect("IPv4 payload longer than 65515");
        let b = packet.buffer.as_mut();
        b[0] = 0x45;
        b[1] = (self.dscp << 2) | (self.ecn & 0x03);
        set_u16(b, 2, total);
        set_u16(b, 4, self.ident);
        let flags = ((self.dont_fragment as u16) << 14) | ((self.more_fragments as u16) << 13);
        set_u16(b, 6, flags | ((self.fragment_offset >> 3) & 0x1fff));
        b[8] = self.ttl;
        b[9] = self.protocol;
        set_u16(b, 10, 0);
        set_ipv4(b, 12, self.src_addr);
        set_ipv4(b, 16, self.dst_addr);
        let c = checksum::internet_checksum(&b[..20]);
        set_u16(b, 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of a Linux `ping 127.0.0.1` echo request (checksum f570).
    const PING: [u8; 20] = [
        0x45, 0x00, 0x00, 0x54, 0x47, 0x36, 0x40, 0x00, 0x40, 0x01, 0xf5, 0x70, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01,
    ];

    fn packet(extra: usize) -> Vec<u8> {
        let mut v = PING.to_vec();
        v.resize(84 + extra, 0xab);
        v
    }

    #[test]
    fn reads_fields() {
        let b = packet(6); // 6 bytes of trailing padding beyond the total length
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.ihl(), p.header_len()), (4, 5, 20));
        assert_eq!((p.dscp(), p.ecn(), p.total_len()), (0, 0, 84));
        assert_eq!(p.ident(), 0x4736);
        assert!(p.dont_fragment() && !p.more_fragments() && !p.reserved_flag());
        assert_eq!((p.fragment_offset(), p.is_fragment()), (0, false));
        assert_eq!(
            (p.ttl(), p.protocol(), p.checksum()),
            (64, ip_protocol::ICMP, 0xf570)
        );
        assert_eq!(p.src_addr(), Ipv4Addr::LOCALHOST);
        assert_eq!(p.dst_addr(), Ipv4Addr::LOCALHOST);
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 64);
        assert!(p.options().is_empty());
        assert_eq!(p.options_iter().count(), 0);
    }

    #[test]
    fn rejects_with_reason() {
        let check = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = packet(0);
            f(&mut b);
            Ipv4Packet::new_checked(&b[..]).err()
        };
        assert_eq!(check(&|_| {}), None);
        assert_eq!(check(&|b| b.truncate(19)), Some(WireError::Truncated));
        assert_eq!(check(&|b| b[0] = 0x65), Some(WireError::BadVersion));
        assert_eq!(check(&|b| b[0] = 0x44), Some(WireError::BadIhl));
        assert_eq!(check(&|b| b[0] = 0x40), Some(WireError::BadIhl));
        // IHL 15 (60 bytes) in a 40-byte buffer.
        assert_eq!(
            check(&|b| {
                b[0] = 0x4f;
                b.truncate(40)
            }),
            Some(WireError::Truncated)
        );
        // Total length shorter than the header, longer than the buffer.
        assert_eq!(check(&|b| b[3] = 19), Some(WireError::BadTotalLength));
        assert_eq!(check(&|b| b[3] = 85), Some(WireError::BadTotalLength));
        assert_eq!(
            check(&|b| {
                b[0] = 0x46;
                b[3] = 22
            }),
            Some(WireError::BadTotalLength)
        );
        // A bad checksum is not a header error.
        let mut b = packet(0);
        b[11] ^= 1;
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.verify_checksum());
    }

    #[test]
    fn options_walk() {
        // IHL 8: NOP, router alert (4 bytes), record route with room for one address (7),
        // EOL.
        let mut b = vec![
            0x48, 0, 0, 32, 0, 0, 0, 0, 1, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        b.extend_from_slice(&[1, 148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.options().len(), 12);
        let opts: Vec<_> = p.options_iter().collect();
        assert_eq!(
            opts,
            vec![
                Ok(Ipv4Option { kind: 1, data: &[] }),
                Ok(Ipv4Option {
                    kind: ipv4_option::ROUTER_ALERT,
                    data: &[0, 0]
                }),
                Ok(Ipv4Option {
                    kind: ipv4_option::RECORD_ROUTE,
                    data: &[4, 0, 0, 0, 0]
                }),
            ]
        );
        assert!(opts[1].unwrap().copied());
        assert!(p.validate_options().is_ok());
        assert!(p.payload().is_empty());
        // Length 1, length 0, length past the end, and a type with no length byte.
        for bad in [&[7u8, 1][..], &[7, 0], &[1, 7, 9, 0], &[1, 1, 1, 68]] {
            let mut it = Ipv4OptionsIter::new(bad);
            let r: Vec<_> = it.by_ref().collect();
            assert_eq!(r.last(), Some(&Err(WireError::BadOption)), "{bad:?}");
            assert_eq!(it.next(), None);
        }
        assert_eq!(Ipv4OptionsIter::new(&[0, 7, 0]).count(), 0);
    }

    #[test]
    fn repr_round_trip_and_mutation() {
        let repr = Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 19, 0, 9),
            protocol: ip_protocol::UDP,
            payload_len: 12,
            ttl: 1,
            dscp: 46,
            ecn: 2,
            ident: 0xbeef,
            dont_fragment: false,
            more_fragments: true,
            fragment_offset: 1480,
        };
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.is_fragment());
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 0);
        p.rewrite_src_addr(Ipv4Addr::new(203, 0, 113, 7));
        p.rewrite_dst_addr(Ipv4Addr::new(10, 255, 0, 1));
        assert!(p.verify_checksum());
        p.set_fragment_offset(8);
        p.set_more_fragments(false);
        p.set_dont_fragment(true);
        p.set_dscp(1);
        p.set_ecn(3);
        p.set_ident(7);
        p.set_protocol(ip_protocol::TCP);
        p.set_total_len(30);
        p.set_version(4);
        p.set_header_len(20);
        p.payload_mut().fill(0x11);
        p.fill_checksum();
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(
            (r.fragment_offset, r.more_fragments, r.dont_fragment),
            (8, false, true)
        );
        assert_eq!(
            (r.dscp, r.ecn, r.ident, r.protocol, r.payload_len),
            (1, 3, 7, 6, 10)
        );
        assert_eq!(p.into_inner()[20..30], [0x11; 10]);
        let n = Ipv4Repr::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 1, 0);
        assert_eq!((n.ttl, n.dont_fragment, n.header_len()), (64, true, 20));
    }

    #[test]
    fn decrement_ttl_matches_recompute_for_all_ttls() {
        for ttl in 1..=255u8 {
            let mut b = packet(0);
            b[8] = ttl;
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.fill_checksum();
            p.decrement_ttl();
            let c = p.checksum();
            p.fill_checksum();
            assert_eq!(c, p.checksum(), "ttl {ttl}");
        }
    }
}
