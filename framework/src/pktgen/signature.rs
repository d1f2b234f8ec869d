//! The rx signature: who sent a frame, which one it was and when.
//!
//! ```text
//!  0        2        4                         10                                18
//! | magic  | stream | seq (48 bits)           | tx TSC (64 bits)                |
//! ```
//!
//! All fields are big-endian and sit at the very start of the L4 payload (after the 8-byte
//! UDP or ICMP header, or after the TCP header and its options), so a receiver finds them
//! with a plain header walk. The layout is 18 bytes so that a 64-byte UDP or ICMP frame can
//! carry it (60 bytes without FCS − 14 Ethernet − 20 IPv4 − 8 UDP = 18), which RFC 2544
//! latency tests at the smallest frame size need. To fit, the magic is 16 bits (a foreign
//! frame must also carry a known stream id to be counted, see [`crate::pktgen::Analyzer`]) and
//! the sequence number 48 bits (2.8 × 10^14 packets: 22 days at 148.8 Mpps).

use crate::wire::{
    ethertype, icmpv4_type, ip_protocol, EthernetFrame, Icmpv4Packet, Ipv4Packet, TcpPacket,
    UdpPacket,
};

/// A signature carried in the payload of a generated frame.
///
/// ```
/// use ferroplane::pktgen::Signature;
///
/// let sig = Signature { stream: 3, seq: 41, tx_tsc: 123_456_789 };
/// let mut payload = [0u8; 32];
/// sig.write(&mut payload);
/// assert_eq!(Signature::read(&payload), Some(sig));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Signature {
    /// The id of the stream that sent the frame ([`crate::pktgen::StreamSpec::id`]).
    pub stream: u16,
    /// The sequence number of the frame within its stream. Only the low 48 bits travel (see
    /// [`Signature::SEQ_MASK`]).
    pub seq: u64,
    /// The TSC when the frame was built, for one-way latency on the same host clock.
    pub tx_tsc: u64,
}

impl Signature {
    /// Bytes a signature takes at the start of the L4 payload.
    pub const LEN: usize = 18;
    /// The first two bytes of every signature.
    pub const MAGIC: u16 = 0xf5a7;
    /// The bits of [`seq`](Signature::seq) that are carried; higher bits are dropped by
    /// [`write`](Signature::write).
    pub const SEQ_MASK: u64 = (1 << 48) - 1;

    /// Writes the signature into the first [`LEN`](Signature::LEN) bytes of `payload`.
    ///
    /// # Panics
    /// If `payload` is shorter than [`Signature::LEN`] (a programming error: streams size
    /// their frames so that it always fits).
    #[inline]
    pub fn write(&self, payload: &mut [u8]) {
        let b: &mut [u8; Self::LEN] = (&mut payload[..Self::LEN])
            .try_into()
            .expect("a slice of LEN bytes");
        b[0..2].copy_from_slice(&Self::MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&self.stream.to_be_bytes());
        b[4..10].copy_from_slice(&(self.seq & Self::SEQ_MASK).to_be_bytes()[2..]);
        b[10..18].copy_from_slice(&self.tx_tsc.to_be_bytes());
    }

    /// Reads a signature from the start of an L4 payload: `None` when the payload is shorter
    /// than [`LEN`](Signature::LEN) or does not start with [`MAGIC`](Signature::MAGIC).
    #[inline]
    pub fn read(payload: &[u8]) -> Option<Signature> {
        let b: &[u8; Self::LEN] = payload.get(..Self::LEN)?.try_into().ok()?;
        if u16::from_be_bytes([b[0], b[1]]) != Self::MAGIC {
            return None;
        }
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&b[4..10]);
        let mut tsc = [0u8; 8];
        tsc.copy_from_slice(&b[10..18]);
        Some(Signature {
            stream: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes(seq),
            tx_tsc: u64::from_be_bytes(tsc),
        })
    }

    /// Finds the signature of a received Ethernet frame (without FCS): parses Ethernet (up to
    /// two VLAN tags), IPv4 (the payload ends at the total length, so Ethernet padding is
    /// ignored) and UDP, TCP or ICMP echo request/reply, then [`read`](Signature::read)s the
    /// start of the L4 payload.
    ///
    /// `None` for anything else: other EtherTypes or protocols, IP fragments, any header or
    /// length field that does not fit the buffer (a frame truncated anywhere before the end of
    /// its signature, or whose IP total length claims more than it carries), a missing magic.
    /// No input makes it panic. Checksums are not verified (a corrupted frame still counts,
    /// as with pktgen-dpdk and TRex; the port's error counters show corruption).
    #[inline]
    pub fn find(frame: &[u8]) -> Option<Signature> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.inner_ethertype() != ethertype::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.is_fragment() {
            return None;
        }
        let l4 = ip.payload();
        match ip.protocol() {
            ip_protocol::UDP => Signature::read(UdpPacket::new_checked(l4).ok()?.payload()),
            ip_protocol::TCP => Signature::read(TcpPacket::new_checked(l4).ok()?.payload()),
            ip_protocol::ICMP => {
                let icmp = Icmpv4Packet::new_checked(l4).ok()?;
                match icmp.msg_type() {
                    icmpv4_type::ECHO_REQUEST | icmpv4_type::ECHO_REPLY => {
                        Signature::read(icmp.payload())
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The one's-complement sum of the written signature as big-endian 16-bit words
    /// (unfolded; at most 9 × 0xffff), for checksum updates.
    #[inline(always)]
    pub(crate) fn word_sum(&self) -> u32 {
        let s = self.seq & Self::SEQ_MASK;
        let t = self.tx_tsc;
        Self::MAGIC as u32
            + self.stream as u32
            + ((s >> 32) & 0xffff) as u32
            + ((s >> 16) & 0xffff) as u32
            + (s & 0xffff) as u32
            + (t >> 48) as u32
            + ((t >> 32) & 0xffff) as u32
            + ((t >> 16) & 0xffff) as u32
            + (t & 0xffff) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use proptest::prelude::*;

    #[test]
    fn layout_is_fixed() {
        let sig = Signature {
            stream: 0x0102,
            seq: 0x0304_0506_0708,
            tx_tsc: 0x090a_0b0c_0d0e_0f10,
        };
        let mut b = [0u8; Signature::LEN];
        sig.write(&mut b);
        assert_eq!(
            b,
            [
                0xf5, 0xa7, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                0x0d, 0x0e, 0x0f, 0x10
            ]
        );
        assert_eq!(checksum::sum(&b), checksum::combine(sig.word_sum(), 0));
    }

    #[test]
    fn seq_keeps_48_bits() {
        let sig = Signature {
            stream: 1,
            seq: u64::MAX,
            tx_tsc: u64::MAX,
        };
        let mut b = [0u8; 20];
        sig.write(&mut b);
        let back = Signature::read(&b).unwrap();
        assert_eq!(back.seq, Signature::SEQ_MASK);
        assert_eq!(back.tx_tsc, u64::MAX);
        assert_eq!(checksum::sum(&b), checksum::combine(sig.word_sum(), 0));
    }

    #[test]
    fn read_rejects_short_and_wrong_magic() {
        let mut b = [0u8; Signature::LEN];
        Signature::default().write(&mut b);
        assert!(Signature::read(&b).is_some());
        assert!(Signature::read(&b[..Signature::LEN - 1]).is_none());
        b[0] ^= 1;
        assert!(Signature::read(&b).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(stream: u16, seq in 0..=Signature::SEQ_MASK, tx_tsc: u64, extra in 0usize..16) {
            let sig = Signature { stream, seq, tx_tsc };
            let mut b = vec![0xeeu8; Signature::LEN + extra];
            sig.write(&mut b);
            prop_assert_eq!(Signature::read(&b), Some(sig));
            prop_assert_eq!(
                checksum::sum(&b[..Signature::LEN]),
                checksum::combine(sig.word_sum(), 0)
            );
        }

        #[test]
        fn find_never_panics_on_garbage(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Signature::find(&frame);
        }
    }
}
