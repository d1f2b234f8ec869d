//! UDP datagrams (RFC 768) over IPv4.
//!
//! ```text
//!  0          2          4        6          8
//! | src port | dst port | length | checksum | payload ...
//! ```
//!
//! The checksum covers an IPv4 pseudo header, the UDP header and the payload. Over IPv4 a
//! zero checksum means "not computed"; a computed checksum of zero is sent as `0xffff`.

use std::net::Ipv4Addr;

use super::checksum;
use super::field::{get_u16, set_u16};
use super::ipv4::ip_protocol;
use super::WireError;

/// A read/write view of a UDP datagram. The buffer is the IPv4 payload; it may be longer
/// than the UDP length (the excess is ignored).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// [`WireError::Truncated`] below 8 bytes; [`WireError::BadLength`] if the length field
    /// is below 8 or longer than the buffer. The checksum is not verified.
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = self.len() as usize;
        if len < Self::HEADER_LEN || len > b.len() {
            return Err(WireError::BadLength);
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

    /// Length field: header plus payload.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }

    /// Checksum field (0: none).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// True unless the checksum field is 0 ("no checksum").
    pub fn has_checksum(&self) -> bool {
        self.checksum() != 0
    }

    /// The payload: from the header to the UDP length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..self.len() as usize]
    }

    /// True when the checksum is absent (0) or correct for this pseudo header.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if !self.has_checksum() {
            return true;
        }
        let len = self.len();
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, len);
        let s = checksum::sum(&self.buffer.as_ref()[..len as usize]);
        checksum::verify_sum(checksum::combine(ph, s))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }

    /// Computes the checksum over the pseudo header and the first `len()` bytes and stores
    /// it (a computed 0 is stored as `0xffff`).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let ph = checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, len);
        let s = checksum::sum(&self.buffer.as_ref()[..len as usize]);
        let c = match checksum::finish(checksum::combine(ph, s)) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }

    /// The payload (header to UDP length), mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.len() as usize;
        &mut self.buffer.as_mut()[Self::HEADER_LEN..len]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UdpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A UDP header as plain values. The payload itself stays in the buffer: an application
/// writes it in place after the header, then [`emit`](UdpRepr::emit) writes the header and
/// the checksum over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Reads a header; fails like [`UdpPacket::check`]. The checksum is not verified (see
    /// [`UdpPacket::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<UdpRepr, WireError> {
        packet.check()?;
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.len() as usize - UdpPacket::<T>::HEADER_LEN,
        })
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        8 + self.payload_len
    }

    /// Writes the header (length `8 + payload_len`) and fills the checksum over the pseudo
    /// header, the header and the `payload_len` bytes already after it.
    ///
    /// # Panics
    /// If the buffer is shorter than [`buffer_len`](Self::buffer_len) or that exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) {
        let len = u16::try_from(self.buffer_len()).expect("UDP datagram longer than 65535");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.fill_checksum(src_addr, dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn round_trip_and_checksum() {
        let repr = UdpRepr {
            src_port: 40000,
            dst_port: 53,
            payload_len: 5,
        };
        let mut buf = vec![0u8; repr.buffer_len() + 3]; // 3 bytes past the datagram
        buf[8..13].copy_from_slice(b"hello");
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(198, 18, 0, 3)));
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p).unwrap(), repr);
        assert_eq!(p.payload(), b"hello");
        assert!(p.has_checksum());
    }

    #[test]
    fn zero_checksum_means_none_and_computed_zero_is_ffff() {
        let mut buf = [0u8; 8];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_len(8);
        assert!(p.verify_checksum(SRC, DST));
        // Find ports whose checksum computes to zero: then 0xffff goes on the wire.
        let mut found = false;
        for port in 0..=u16::MAX {
            p.set_src_port(port);
            p.fill_checksum(SRC, DST);
            if p.checksum() == 0xffff {
                assert!(p.verify_checksum(SRC, DST));
                found = true;
                break;
            }
        }
        assert!(found);
        p.payload_mut(); // empty, in bounds
    }

    #[test]
    fn rejects_with_reason() {
        let mk = |len: u16, buf_len: usize| {
            let mut b = vec![0u8; buf_len.max(8)];
            b[4..6].copy_from_slice(&len.to_be_bytes());
            b.truncate(buf_len);
            UdpPacket::new_checked(b).err()
        };
        assert_eq!(mk(8, 7), Some(WireError::Truncated));
        assert_eq!(mk(7, 8), Some(WireError::BadLength));
        assert_eq!(mk(0, 8), Some(WireError::BadLength));
        assert_eq!(mk(9, 8), Some(WireError::BadLength));
        assert_eq!(mk(8, 8), None);
        assert_eq!(mk(20, 30), None);
    }
}
