//! ARP for Ethernet and IPv4 (RFC 826).
//!
//! ```text
//!  0       2       4    5    6       8        14       18       24       28
//! | htype | ptype |hlen|plen| oper  |  sha   |  spa   |  tha   |  tpa   |
//! |   1   | 0800  | 6  | 4  | 1 / 2 |
//! ```
//!
//! Only the Ethernet/IPv4 flavour exists on the data path; anything else is rejected by
//! [`ArpPacket::new_checked`] with the field that is wrong.

use std::net::Ipv4Addr;

use super::ethernet::{ethertype, mac_at};
use super::field::{get_ipv4, get_u16, set_ipv4, set_u16};
use super::{MacAddr, WireError};

/// ARP operation codes this stack handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Who has `target_protocol_addr`? (1)
    Request,
    /// `sender_protocol_addr` is at `sender_hardware_addr` (2).
    Reply,
}

impl ArpOperation {
    /// The wire value.
    pub const fn to_u16(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }

    /// The operation for a wire value, if it is request or reply.
    pub const fn from_u16(v: u16) -> Option<ArpOperation> {
        match v {
            1 => Some(ArpOperation::Request),
            2 => Some(ArpOperation::Reply),
            _ => None,
        }
    }
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet (the buffer may be longer: Ethernet padding).
    pub const LEN: usize = 28;
    /// Hardware type Ethernet.
    pub const HTYPE_ETHERNET: u16 = 1;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after [`check`](Self::check).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// Validates the fixed part: at least 8 bytes ([`WireError::Truncated`]), hardware type 1
    /// ([`WireError::BadHardwareType`]), protocol type 0x0800
    /// ([`WireError::BadProtocolType`]), address lengths 6 and 4
    /// ([`WireError::BadAddressLength`]), then 28 bytes in all ([`WireError::Truncated`]).
    /// The operation is not checked here ([`ArpRepr::parse`] does).
    pub fn check(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < 8 {
            return Err(WireError::Truncated);
        }
        if get_u16(b, 0) != Self::HTYPE_ETHERNET {
            return Err(WireError::BadHardwareType);
        }
        if get_u16(b, 2) != ethertype::IPV4 {
            return Err(WireError::BadProtocolType);
        }
        if b[4] != 6 || b[5] != 4 {
            return Err(WireError::BadAddressLength);
        }
        if b.len() < Self::LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }

    /// Hardware address length (6).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    /// Protocol address length (4).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[5]
    }

    /// The raw operation field (see [`ArpOperation::from_u16`]).
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), 8)
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), 14)
    }

    /// Target hardware address (zero in a request).
    pub fn target_hardware_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), 18)
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), 24)
    }

    /// Bytes after the 28-byte packet (Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[4] = v;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[5] = v;
    }

    /// Sets the operation field.
    pub fn set_operation(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[8..14].copy_from_slice(&a.0);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_protocol_addr(&mut self, a: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), 14, a);
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[18..24].copy_from_slice(&a.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        set_ipv4(self.buffer.as_mut(), 24, a);
    }

    /// Bytes after the 28-byte packet, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::LEN..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for ArpPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet/IPv4 ARP request or reply as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_hardware_addr: MacAddr,
    /// Sender protocol address.
    pub sender_protocol_addr: Ipv4Addr,
    /// Target hardware address.
    pub target_hardware_addr: MacAddr,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a packet; fails like [`ArpPacket::check`], or with [`WireError::BadOperation`]
    /// for an operation other than request or reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr, WireError> {
        packet.check()?;
        let operation =
            ArpOperation::from_u16(packet.operation()).ok_or(WireError::BadOperation)?;
        Ok(ArpRepr {
            operation,
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 28.
    pub const fn buffer_len(&self) -> usize {
        ArpPacket::<&[u8]>::LEN
    }

    /// Writes all 28 bytes, including the fixed Ethernet/IPv4 type and length fields.
    ///
    /// # Panics
    /// If the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(ArpPacket::<T>::HTYPE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation.to_u16());
        packet.set_sender_hardware_addr(self.sender_hardware_addr);
        packet.set_sender_protocol_addr(self.sender_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as Linux `arping -I veth0 198.18.0.2` sends it (after the Ethernet header),
    /// with the 18 bytes of Ethernet padding.
    const REQUEST: [u8; 46] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, lens, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 198, 18, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 18, 0, 2, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.payload().len(), 18);
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(r.operation, ArpOperation::Request);
        assert_eq!(r.sender_hardware_addr, MacAddr::local(1));
        assert_eq!(r.sender_protocol_addr, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(r.target_hardware_addr, MacAddr::default());
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(198, 18, 0, 2));
    }

    #[test]
    fn emit_round_trip() {
        let r = ArpRepr {
            operation: ArpOperation::Reply,
            sender_hardware_addr: MacAddr::local(2),
            sender_protocol_addr: Ipv4Addr::new(198, 18, 0, 2),
            target_hardware_addr: MacAddr::local(1),
            target_protocol_addr: Ipv4Addr::new(198, 18, 0, 1),
        };
        let mut buf = [0xeeu8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p).unwrap(), r);
        assert_eq!(p.operation(), 2);
        assert_eq!(r.buffer_len(), 28);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn rejects_with_reason() {
        let check = |mutate: &dyn Fn(&mut [u8; 46]), len: usize| {
            let mut b = REQUEST;
            mutate(&mut b);
            ArpPacket::new_checked(&b[..len]).err()
        };
        assert_eq!(check(&|_| {}, 7), Some(WireError::Truncated));
        assert_eq!(check(&|_| {}, 27), Some(WireError::Truncated));
        assert_eq!(check(&|_| {}, 28), None);
        assert_eq!(check(&|b| b[1] = 6, 46), Some(WireError::BadHardwareType));
        assert_eq!(
            check(&|b| b[2] = 0x86, 46),
            Some(WireError::BadProtocolType)
        );
        assert_eq!(check(&|b| b[4] = 8, 46), Some(WireError::BadAddressLength));
        assert_eq!(check(&|b| b[5] = 16, 46), Some(WireError::BadAddressLength));
        // Type errors win over length: a 10-byte IEEE 802 packet is a bad hardware type.
        assert_eq!(check(&|b| b[1] = 6, 10), Some(WireError::BadHardwareType));
        let mut b = REQUEST;
        b[7] = 3; // RARP request
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(WireError::BadOperation));
        assert_eq!(ArpOperation::from_u16(0), None);
    }
}
