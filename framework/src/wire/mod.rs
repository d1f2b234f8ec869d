//! Zero-copy wire formats: typed views over packet bytes.
//!
//! Each format is a view `Packet<T: AsRef<[u8]>>` over a buffer (a slice of an mbuf, a
//! `Vec`, an array), in the style of smoltcp:
//!
//! * `new_unchecked(buf)` wraps without looking; `new_checked(buf)` first validates every
//!   length the getters rely on and rejects truncated or inconsistent headers with a precise
//!   [`WireError`] (whose [`as_str`](WireError::as_str) is a drop-reason name);
//! * getters read fields in place (`T: AsRef<[u8]>`), setters write them in place
//!   (`T: AsMut<[u8]>`), `payload()` / `payload_mut()` borrow what follows the header,
//!   `into_inner()` gives the buffer back;
//! * checksums are verified by separate methods (`verify_checksum`), so a node can count a
//!   bad checksum apart from a malformed header;
//! * small `Repr` structs ([`EthernetRepr`], [`ArpRepr`], [`Ipv4Repr`], [`Icmpv4Repr`],
//!   [`UdpRepr`]) `parse` a view into plain values and `emit` them into a buffer, filling
//!   lengths and checksums.
//!
//! Nothing here allocates or copies packet data, and no input bytes can make a checked view
//! panic. The Internet checksum (RFC 1071, 8 bytes per step) and its RFC 1624 incremental
//! update live in [`checksum`].
//!
//! | format | view | repr |
//! |---|---|---|
//! | Ethernet II, 802.1Q, QinQ | [`EthernetFrame`] | [`EthernetRepr`] |
//! | ARP (Ethernet/IPv4) | [`ArpPacket`] | [`ArpRepr`] |
//! | IPv4 (with options) | [`Ipv4Packet`] | [`Ipv4Repr`] |
//! | ICMPv4 | [`Icmpv4Packet`] | [`Icmpv4Repr`] |
//! | UDP | [`UdpPacket`] | [`UdpRepr`] |
//! | TCP (with options) | [`TcpPacket`] | — |

mod arp;
pub mod checksum;
mod error;
mod ethernet;
mod icmpv4;
mod ipv4;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

pub use crate::port::MacAddr;
pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::WireError;
pub use ethernet::{ethertype, EthernetFrame, EthernetRepr, VlanTag, VlanTci};
pub use icmpv4::{icmpv4_code, icmpv4_type, quote_original, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{ip_protocol, ipv4_option, Ipv4Option, Ipv4OptionsIter, Ipv4Packet, Ipv4Repr};
pub use tcp::{tcp_option, SackBlocks, TcpFlags, TcpOption, TcpOptionsIter, TcpPacket};
pub use udp::{UdpPacket, UdpRepr};

/// Big-endian field access shared by the formats. Callers guarantee the bounds.
mod field {
    #[inline(always)]
    pub(super) fn get_u16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    #[inline(always)]
    pub(super) fn set_u16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    #[inline(always)]
    pub(super) fn get_u32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[inline(always)]
    pub(super) fn set_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[inline(always)]
    pub(super) fn get_ipv4(b: &[u8], at: usize) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
    }

    #[inline(always)]
    pub(super) fn set_ipv4(b: &mut [u8], at: usize, a: std::net::Ipv4Addr) {
        b[at..at + 4].copy_from_slice(&a.octets());
    }
}
