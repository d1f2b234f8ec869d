//! ICMPv4 (RFC 792): echo request/reply, destination unreachable (including fragmentation
//! needed, RFC 1191) and time exceeded.
//!
//! ```text
//!  0      1      2          4                  8
//! | type | code | checksum | rest of header   | data ...
//!                           | ident | seq_no   |  echo: the echoed data
//!                           | unused| next-hop MTU | errors: the original IP header + 8 bytes
//! ```
//!
//! The checksum covers the whole ICMP message, so a view must span exactly the message (the
//! IPv4 payload), not a longer buffer.

use super::checksum;
use super::field::{get_u16, set_u16};
use super::ipv4::Ipv4Packet;
use super::WireError;

/// ICMPv4 message types.
pub mod icmpv4_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// ICMPv4 codes of destination unreachable and time exceeded.
pub mod icmpv4_code {
    /// Destination unreachable: network unreachable.
    pub const NET_UNREACHABLE: u8 = 0;
    /// Destination unreachable: host unreachable.
    pub const HOST_UNREACHABLE: u8 = 1;
    /// Destination unreachable: protocol unreachable.
    pub const PROTOCOL_UNREACHABLE: u8 = 2;
    /// Destination unreachable: port unreachable.
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Destination unreachable: fragmentation needed and DF set (carries the next-hop MTU).
    pub const FRAGMENTATION_NEEDED: u8 = 4;
    /// Destination unreachable: communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 13;
    /// Time exceeded: TTL exceeded in transit.
    pub const TTL_EXCEEDED: u8 = 0;
    /// Time exceeded: fragment reassembly time exceeded.
    pub const REASSEMBLY_TIME_EXCEEDED: u8 = 1;
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Length of the fixed header (type, code, checksum, 4 bytes of rest-of-header).
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// [`WireError::Truncated`] if the buffer is shorter than the 8-byte header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type (see [`icmpv4_type`]).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code (see [`icmpv4_code`]).
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// The 4 rest-of-header bytes as a big-endian value.
    pub fn rest_of_header(&self) -> u32 {
        super::field::get_u32(self.buffer.as_ref(), 4)
    }

    /// Echo identifier (bytes 4..6).
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// Next-hop MTU of a fragmentation-needed message (bytes 6..8; 0 from old routers).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// Everything after the 8-byte header: the echo data, or the quoted original packet.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }

    /// True when the checksum over the whole buffer is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the 4 rest-of-header bytes.
    pub fn set_rest_of_header(&mut self, v: u32) {
        super::field::set_u32(self.buffer.as_mut(), 4, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }

    /// Sets the next-hop MTU (bytes 6..8).
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }

    /// Computes the checksum over the whole buffer and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::internet_checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turns an echo request into an echo reply in place (type 8 → 0) and patches the
    /// checksum incrementally; the identifier, sequence number and data stay as they are.
    pub fn make_echo_reply(&mut self) {
        let old = ((self.msg_type() as u16) << 8) | self.msg_code() as u16;
        let new = ((icmpv4_type::ECHO_REPLY as u16) << 8) | self.msg_code() as u16;
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_msg_type(icmpv4_type::ECHO_REPLY);
        self.set_checksum(c);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The part of an offending IPv4 packet an ICMP error quotes: its header (with options) and
/// the first 8 bytes of its payload (fewer if the payload is shorter).
pub fn quote_original<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> &[u8] {
    let b = packet.as_ref();
    let end = (packet.header_len() + 8)
        .min(packet.total_len() as usize)
        .min(b.len());
    b.get(..end).unwrap_or(b)
}

/// The ICMPv4 messages the stack sends and answers, as plain values. The `data` of an error
/// message is the quoted original packet (see [`quote_original`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// The echoed data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3) with any code except fragmentation needed.
    DstUnreachable {
        /// The code (see [`icmpv4_code`]).
        code: u8,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Destination unreachable, fragmentation needed and DF set (type 3, code 4).
    FragmentationNeeded {
        /// The MTU of the next hop.
        next_hop_mtu: u16,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// The code (see [`icmpv4_code`]).
        code: u8,
        /// The quoted original packet.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a message. Fails with [`WireError::Truncated`] below 8 bytes,
    /// [`WireError::BadQuote`] for an error message whose data does not start with an IPv4
    /// header (at least 20 bytes, version 4), and [`WireError::Unsupported`] for other
    /// types. The checksum is not verified here (see [`Icmpv4Packet::verify_checksum`]); the
    /// code of an echo message is ignored.
    pub fn parse<T>(packet: &'a Icmpv4Packet<T>) -> Result<Icmpv4Repr<'a>, WireError>
    where
        T: AsRef<[u8]>,
    {
        packet.check_len()?;
        let data = packet.payload();
        let quote = || {
            if data.len() >= 20 && data[0] >> 4 == 4 {
                Ok(data)
            } else {
                Err(WireError::BadQuote)
            }
        };
        match (packet.msg_type(), packet.msg_code()) {
            (icmpv4_type::ECHO_REQUEST, _) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (icmpv4_type::ECHO_REPLY, _) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (icmpv4_type::DST_UNREACHABLE, icmpv4_code::FRAGMENTATION_NEEDED) => {
                Ok(Icmpv4Repr::FragmentationNeeded {
                    next_hop_mtu: packet.next_hop_mtu(),
                    data: quote()?,
                })
            }
            (icmpv4_type::DST_UNREACHABLE, code) => Ok(Icmpv4Repr::DstUnreachable {
                code,
                data: quote()?,
            }),
            (icmpv4_type::TIME_EXCEEDED, code) => Ok(Icmpv4Repr::TimeExceeded {
                code,
                data: quote()?,
            }),
            _ => Err(WireError::Unsupported),
        }
    }

    /// The data carried after the 8-byte header.
    pub const fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::FragmentationNeeded { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => data,
        }
    }

    /// Length of the message [`emit`](Self::emit) writes: 8 + data.
    pub const fn buffer_len(&self) -> usize {
        Icmpv4Packet::<&[u8]>::HEADER_LEN + self.data().len()
    }

    /// Writes the message (header, data copied after it) into the first
    /// [`buffer_len`](Self::buffer_len) bytes of the packet's buffer and fills the checksum
    /// over those bytes.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        let (ty, code, rest) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => (
                icmpv4_type::ECHO_REQUEST,
                0,
                ((ident as u32) << 16) | seq_no as u32,
            ),
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => (
                icmpv4_type::ECHO_REPLY,
                0,
                ((ident as u32) << 16) | seq_no as u32,
            ),
            Icmpv4Repr::DstUnreachable { code, .. } => (icmpv4_type::DST_UNREACHABLE, code, 0),
            Icmpv4Repr::FragmentationNeeded { next_hop_mtu, .. } => (
                icmpv4_type::DST_UNREACHABLE,
                icmpv4_code::FRAGMENTATION_NEEDED,
                next_hop_mtu as u32,
            ),
            Icmpv4Repr::TimeExceeded { code, .. } => (icmpv4_type::TIME_EXCEEDED, code, 0),
        };
        let len = self.buffer_len();
        let b = &mut packet.buffer.as_mut()[..len];
        b[0] = ty;
        b[1] = code;
        set_u16(b, 2, 0);
        super::field::set_u32(b, 4, rest);
        b[8..].copy_from_slice(self.data());
        let c = checksum::internet_checksum(b);
        set_u16(b, 2, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::wire::{ip_protocol, Ipv4Repr};

    fn offending() -> Vec<u8> {
        let ip = Ipv4Repr::new(
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 19, 0, 1),
            ip_protocol::UDP,
            100,
        );
        let mut b = vec![0x5au8; ip.buffer_len()];
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        b
    }

    #[test]
    fn quote_is_header_plus_8() {
        let b = offending();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(quote_original(&p), &b[..28]);
        let small = Ipv4Repr::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 17, 3);
        let mut s = [0u8; 40];
        small.emit(&mut Ipv4Packet::new_unchecked(&mut s[..]));
        let p = Ipv4Packet::new_checked(&s[..]).unwrap();
        assert_eq!(quote_original(&p).len(), 23);
    }

    #[test]
    fn round_trip_every_variant() {
        let orig = offending();
        let quote = &orig[..28];
        let reprs = [
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 7,
                data: b"abcdefgh-odd",
            },
            Icmpv4Repr::EchoReply {
                ident: 1,
                seq_no: 0xffff,
                data: &[],
            },
            Icmpv4Repr::DstUnreachable {
                code: icmpv4_code::PORT_UNREACHABLE,
                data: quote,
            },
            Icmpv4Repr::FragmentationNeeded {
                next_hop_mtu: 1400,
                data: quote,
            },
            Icmpv4Repr::TimeExceeded {
                code: icmpv4_code::TTL_EXCEEDED,
                data: quote,
            },
        ];
        for r in reprs {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            assert!(p.verify_checksum(), "{r:?}");
            assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn echo_reply_in_place() {
        let r = Icmpv4Repr::EchoRequest {
            ident: 9,
            seq_no: 1,
            data: &[1, 2, 3, 4, 5],
        };
        let mut buf = vec![0u8; r.buffer_len()];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut p);
        p.make_echo_reply();
        assert!(p.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&p).unwrap(),
            Icmpv4Repr::EchoReply {
                ident: 9,
                seq_no: 1,
                data: &[1, 2, 3, 4, 5]
            }
        );
        p.set_rest_of_header(0x0001_0002);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (1, 2));
        p.set_next_hop_mtu(1500);
        p.set_msg_code(1);
        p.payload_mut()[0] = 9;
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.into_inner()[8], 9);
    }

    #[test]
    fn rejects_with_reason() {
        assert_eq!(
            Icmpv4Packet::new_checked(&[8u8, 0, 0, 0, 0, 0, 0][..]).unwrap_err(),
            WireError::Truncated
        );
        let p = Icmpv4Packet::new_checked(&[13u8, 0, 0, 0, 0, 0, 0, 0][..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(WireError::Unsupported));
        // An error message quoting 19 bytes, or something that is not IPv4.
        let mut b = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&offending()[..19]);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(WireError::BadQuote));
        let mut b = vec![11u8, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0x60; 28]);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(WireError::BadQuote));
    }
}
