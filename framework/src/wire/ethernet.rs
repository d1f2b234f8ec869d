//! Ethernet II frames, with 802.1Q VLAN tags and 802.1ad (QinQ) double tags.
//!
//! ```text
//!  0      6      12     14
//! | dst  | src  | type | payload ...                       untagged, L3 at 14
//! | dst  | src  | 8100 | TCI | type | payload ...          802.1Q, L3 at 18
//! | dst  | src  | 88a8 | TCI | 8100 | TCI | type | ...     802.1ad QinQ, L3 at 22
//! ```

use super::field::{get_u16, set_u16};
use super::{MacAddr, WireError};

/// EtherType values (the 16-bit field after the source address or after a VLAN tag).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (S-tag), the outer tag of QinQ.
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;

    /// True for the EtherTypes that announce a VLAN tag (0x8100 and 0x88a8).
    pub const fn is_vlan(t: u16) -> bool {
        t == VLAN || t == QINQ
    }
}

/// The 16-bit Tag Control Information of a VLAN tag: priority (PCP, 3 bits), drop eligible
/// (DEI, 1 bit) and VLAN id (VID, 12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTci(pub u16);

impl VlanTci {
    /// Builds a TCI; `pcp` is masked to 3 bits and `vid` to 12 bits.
    pub const fn new(pcp: u8, dei: bool, vid: u16) -> VlanTci {
        VlanTci((((pcp & 7) as u16) << 13) | ((dei as u16) << 12) | (vid & 0x0fff))
    }

    /// Priority code point (0..=7).
    pub const fn pcp(self) -> u8 {
        (self.0 >> 13) as u8
    }

    /// Drop eligible indicator.
    pub const fn dei(self) -> bool {
        self.0 & 0x1000 != 0
    }

    /// VLAN identifier (0..=4095).
    pub const fn vid(self) -> u16 {
        self.0 & 0x0fff
    }
}

/// One VLAN tag as it appears on the wire: the TPID that announced it and its TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The EtherType that introduced the tag ([`ethertype::VLAN`] or [`ethertype::QINQ`]).
    pub tpid: u16,
    /// The tag control information.
    pub tci: VlanTci,
}

/// A read/write view of an Ethernet II frame.
///
/// [`EthernetFrame::new_checked`] makes sure the whole tag stack (up to two tags) is in the
/// buffer, so [`l3_offset`](EthernetFrame::l3_offset),
/// [`inner_ethertype`](EthernetFrame::inner_ethertype) and the tag getters never index past
/// the end. A third tag is not parsed: its TPID is then reported as the inner EtherType.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the untagged header.
    pub const HEADER_LEN: usize = 14;
    /// Length of one VLAN tag.
    pub const TAG_LEN: usize = 4;
    /// The largest header this view parses (two tags).
    pub const MAX_HEADER_LEN: usize = 22;

    /// Wraps a buffer without checking it; getters may panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the header and every VLAN tag it announces (up to two) fit the buffer:
    /// [`WireError::Truncated`] otherwise.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b.len() < self.header_len_unchecked() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The header length (offset of the L3 packet) without bounds checks beyond the
    /// EtherType fields actually present.
    fn header_len_unchecked(&self) -> usize {
        let b = self.buffer.as_ref();
        if b.len() < Self::HEADER_LEN || !ethertype::is_vlan(get_u16(b, 12)) {
            return Self::HEADER_LEN;
        }
        // One tag; a second one if the first tag's EtherType is a VLAN TPID too.
        if b.len() < 18 || !ethertype::is_vlan(get_u16(b, 16)) {
            return 18;
        }
        Self::MAX_HEADER_LEN
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), 0)
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), 6)
    }

    /// The EtherType field at offset 12 (the outer TPID for a tagged frame).
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 12)
    }

    /// Number of VLAN tags parsed (0, 1 or 2).
    pub fn vlan_count(&self) -> usize {
        (self.l3_offset() - Self::HEADER_LEN) / Self::TAG_LEN
    }

    /// The outer VLAN tag (the only one of an 802.1Q frame, the S-tag of a QinQ frame).
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        if self.vlan_count() >= 1 {
            let b = self.buffer.as_ref();
            Some(VlanTag {
                tpid: get_u16(b, 12),
                tci: VlanTci(get_u16(b, 14)),
            })
        } else {
            None
        }
    }

    /// The inner VLAN tag of a double-tagged frame (the C-tag of QinQ).
    pub fn inner_vlan_tag(&self) -> Option<VlanTag> {
        if self.vlan_count() == 2 {
            let b = self.buffer.as_ref();
            Some(VlanTag {
                tpid: get_u16(b, 16),
                tci: VlanTci(get_u16(b, 18)),
            })
        } else {
            None
        }
    }

    /// The EtherType of the L3 payload, after all parsed VLAN tags.
    pub fn inner_ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), self.l3_offset() - 2)
    }

    /// Offset of the L3 packet: 14, 18 (one tag) or 22 (two tags). Also the header length.
    pub fn l3_offset(&self) -> usize {
        self.header_len_unchecked()
    }

    /// The L3 packet: everything after the header and tags (including any Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.l3_offset()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[0..6].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[6..12].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType field at offset 12.
    pub fn set_ethertype(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), 12, value);
    }

    /// Sets the TCI of the outer VLAN tag; does nothing on an untagged frame.
    pub fn set_vlan_tci(&mut self, tci: VlanTci) {
        if self.vlan_count() >= 1 {
            set_u16(self.buffer.as_mut(), 14, tci.0);
        }
    }

    /// Sets the EtherType of the L3 payload (after all parsed tags).
    pub fn set_inner_ethertype(&mut self, value: u16) {
        let at = self.l3_offset() - 2;
        set_u16(self.buffer.as_mut(), at, value);
    }

    /// Swaps source and destination addresses in place (l2fwd's "macswap").
    pub fn swap_addrs(&mut self) {
        let b = self.buffer.as_mut();
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&b[0..6]);
        b.copy_within(6..12, 0);
        b[6..12].copy_from_slice(&dst);
    }

    /// The L3 packet, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.l3_offset();
        &mut self.buffer.as_mut()[at..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for EthernetFrame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

pub(super) fn mac_at(b: &[u8], at: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    MacAddr(m)
}

/// The header of an untagged or single-tagged Ethernet II frame, for building frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source MAC address.
    pub src_addr: MacAddr,
    /// Destination MAC address.
    pub dst_addr: MacAddr,
    /// EtherType of the payload.
    pub ethertype: u16,
    /// An 802.1Q tag (TPID 0x8100), if any.
    pub vlan: Option<VlanTci>,
}

impl EthernetRepr {
    /// Reads the header of a frame. A double-tagged frame is [`WireError::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, WireError> {
        frame.check_len()?;
        if frame.vlan_count() > 1 {
            return Err(WireError::Unsupported);
        }
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.inner_ethertype(),
            vlan: frame.vlan_tag().map(|t| t.tci),
        })
    }

    /// Header length: 14, or 18 with a VLAN tag.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            18
        } else {
            14
        }
    }

    /// Writes the header into the start of `frame`'s buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`header_len`](Self::header_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        let b = frame.buffer.as_mut();
        b[0..6].copy_from_slice(&self.dst_addr.0);
        b[6..12].copy_from_slice(&self.src_addr.0);
        match self.vlan {
            Some(tci) => {
                set_u16(b, 12, ethertype::VLAN);
                set_u16(b, 14, tci.0);
                set_u16(b, 16, self.ethertype);
            }
            None => set_u16(b, 12, self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 18] = [
        0x02, 0, 0, 0, 0, 2, // dst
        0x02, 0, 0, 0, 0, 1, // src
        0x08, 0x00, // IPv4
        0x45, 0, 0, 20,
    ];

    #[test]
    fn untagged_fields() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr::local(2));
        assert_eq!(f.src_addr(), MacAddr::local(1));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.inner_ethertype(), ethertype::IPV4);
        assert_eq!(f.l3_offset(), 14);
        assert_eq!(f.vlan_count(), 0);
        assert_eq!(f.vlan_tag(), None);
        assert_eq!(f.inner_vlan_tag(), None);
        assert_eq!(f.payload(), &[0x45, 0, 0, 20]);
    }

    #[test]
    fn single_and_double_tags() {
        let mut b = vec![0xffu8; 12];
        b.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64, 0x08, 0x06, 0xaa]);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        let tag = f.vlan_tag().unwrap();
        assert_eq!(tag.tpid, ethertype::VLAN);
        assert_eq!(tag.tci.pcp(), 5);
        assert!(!tag.tci.dei());
        assert_eq!(tag.tci.vid(), 100);
        assert_eq!(f.inner_ethertype(), ethertype::ARP);
        assert_eq!(f.l3_offset(), 18);
        assert_eq!(f.payload(), &[0xaa]);

        let mut q = vec![0u8; 12];
        q.extend_from_slice(&[0x88, 0xa8, 0x30, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x86, 0xdd]);
        let f = EthernetFrame::new_checked(&q[..]).unwrap();
        assert_eq!(f.vlan_count(), 2);
        let outer = f.vlan_tag().unwrap();
        let inner = f.inner_vlan_tag().unwrap();
        assert_eq!(
            (outer.tpid, outer.tci.pcp(), outer.tci.dei()),
            (0x88a8, 1, true)
        );
        assert_eq!(outer.tci.vid(), 10);
        assert_eq!((inner.tpid, inner.tci.vid()), (0x8100, 20));
        assert_eq!(f.inner_ethertype(), ethertype::IPV6);
        assert_eq!(f.l3_offset(), 22);
        assert!(f.payload().is_empty());
        assert_eq!(EthernetRepr::parse(&f), Err(WireError::Unsupported));
    }

    #[test]
    fn truncated_cases() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            WireError::Truncated
        );
        assert!(EthernetFrame::new_checked(&UNTAGGED[..14]).is_ok());
        // A VLAN TPID with no room for the tag.
        let mut b = [0u8; 17];
        b[12] = 0x81;
        assert_eq!(
            EthernetFrame::new_checked(&b[..16]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            EthernetFrame::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        // QinQ with a truncated inner tag.
        let mut q = [0u8; 21];
        q[12..14].copy_from_slice(&[0x88, 0xa8]);
        q[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&q[..]).unwrap_err(),
            WireError::Truncated
        );
        let mut q22 = [0u8; 22];
        q22[..21].copy_from_slice(&q);
        assert!(EthernetFrame::new_checked(&q22[..]).is_ok());
    }

    #[test]
    fn repr_round_trip_and_setters() {
        for vlan in [None, Some(VlanTci::new(7, true, 4095))] {
            let repr = EthernetRepr {
                src_addr: MacAddr::local(9),
                dst_addr: MacAddr::BROADCAST,
                ethertype: ethertype::ARP,
                vlan,
            };
            let mut buf = vec![0u8; repr.header_len() + 4];
            let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
            repr.emit(&mut f);
            let f = EthernetFrame::new_checked(&buf[..]).unwrap();
            assert_eq!(EthernetRepr::parse(&f).unwrap(), repr);
            assert_eq!(f.payload().len(), 4);
        }
        let mut buf = UNTAGGED;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.swap_addrs();
        assert_eq!(f.dst_addr(), MacAddr::local(1));
        assert_eq!(f.src_addr(), MacAddr::local(2));
        f.set_inner_ethertype(ethertype::IPV6);
        f.set_vlan_tci(VlanTci(1)); // untagged: no effect
        f.payload_mut()[0] = 0x60;
        assert_eq!(f.ethertype(), ethertype::IPV6);
        assert_eq!(f.into_inner()[14], 0x60);
        let t = VlanTci::new(0xff, false, 0xffff);
        assert_eq!((t.pcp(), t.dei(), t.vid()), (7, false, 4095));
    }
}
