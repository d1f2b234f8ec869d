//! Transmit checksum offload, software side (Linux: `skb_checksum_help` in `dev_queue_xmit`).
//!
//! A locally built TCP segment may leave its checksum partial: the mbuf is flagged
//! [`ol::TX_L4_CKSUM`] and the checksum field holds the folded pseudo-header sum (DPDK's
//! convention). A port whose [`PortInfo::tx_l4_checksum_offload`](crate::port::PortInfo) is set
//! takes it like that; for every other port — and before fragmentation, which would scatter
//! the bytes the sum covers — [`complete_l4_checksum`] finishes it here: the sum of the L4
//! bytes as they are (pseudo-header sum included through the field) is the sum the checksum
//! covers, so its complement is the checksum. Nothing is allocated; the segment is read once.

use crate::mem::{ol, Mbuf};
use crate::stack::nodes::icmp::chain_sum_range;
use crate::wire::{checksum, ethertype, ip_protocol};

/// Offset of the checksum field in the L4 header of `protocol`, for the protocols whose
/// checksum can be left partial.
fn checksum_field(protocol: u8) -> Option<usize> {
    match protocol {
        ip_protocol::TCP => Some(16),
        ip_protocol::UDP => Some(6),
        _ => None,
    }
}

/// Completes the partial L4 checksum of the IPv4 packet that starts `l3` bytes into `m` (the
/// packet may be chained; its IPv4, TCP or UDP header must be in the first segment) and clears
/// [`ol::TX_L4_CKSUM`]. False, with `m` unchanged, when the packet is not IPv4 carrying TCP or
/// UDP, is shorter than its headers say, or its buffer is shared (read-only).
pub fn complete_l4_checksum(m: &mut Mbuf, l3: usize) -> bool {
    let (l4, end, field, udp) = {
        let d = m.data();
        if d.len() < l3 + 20 || d[l3] >> 4 != 4 {
            return false;
        }
        let ihl = (d[l3] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]) as usize;
        let protocol = d[l3 + 9];
        let Some(at) = checksum_field(protocol) else {
            return false;
        };
        let (l4, end) = (l3 + ihl, l3 + total);
        if ihl < 20 || end > m.pkt_len() || l4 + at + 2 > end.min(d.len()) {
            return false;
        }
        (l4, end, l4 + at, protocol == ip_protocol::UDP)
    };
    let mut c = checksum::finish(chain_sum_range(m, l4, end));
    if udp && c == 0 {
        // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
        c = 0xffff;
    }
    let Some(d) = m.try_data_mut() else {
        return false;
    };
    d[field..field + 2].copy_from_slice(&c.to_be_bytes());
    m.set_ol_flags(m.ol_flags() & !ol::TX_L4_CKSUM);
    true
}

/// [`complete_l4_checksum`] for an Ethernet frame (untagged or with one VLAN tag, as the
/// `tx` node sees it).
pub fn complete_l4_checksum_frame(m: &mut Mbuf) -> bool {
    let d = m.data();
    if d.len() < 14 {
        return false;
    }
    let l3 = match u16::from_be_bytes([d[12], d[13]]) {
        ethertype::IPV4 => 14,
        ethertype::VLAN
            if d.len() >= 18 && u16::from_be_bytes([d[16], d[17]]) == ethertype::IPV4 =>
        {
            18
        }
        _ => return false,
    };
    complete_l4_checksum(m, l3)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn pool() -> Mempool {
        let mut p = MempoolParams::new("offload-test", 64);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    /// An IPv4 packet of `protocol` with an L4 part of `l4_len` pseudo-random bytes whose
    /// checksum field holds the pseudo-header sum; and the checksum it should get.
    fn partial_packet(protocol: u8, l4_len: usize, seed: u8) -> (Vec<u8>, u16) {
        let mut v = vec![0u8; 20 + l4_len];
        v[0] = 0x45;
        v[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        v[9] = protocol;
        v[12..16].copy_from_slice(&SRC.octets());
        v[16..20].copy_from_slice(&DST.octets());
        for (i, b) in v[20..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(seed);
        }
        let at = 20 + checksum_field(protocol).unwrap();
        v[at..at + 2].fill(0);
        let ph = checksum::pseudo_header_v4(SRC, DST, protocol, l4_len as u16);
        let mut want = checksum::finish(checksum::combine(ph, checksum::sum(&v[20..])));
        if protocol == ip_protocol::UDP && want == 0 {
            want = 0xffff;
        }
        v[at..at + 2].copy_from_slice(&(ph as u16).to_be_bytes());
        (v, want)
    }

    /// `bytes` after `l2` zero bytes, split into two segments at `split` when given.
    fn mbuf(mp: &Mempool, l2: usize, bytes: &[u8], split: Option<usize>) -> Mbuf {
        let mut all = vec![0u8; l2];
        all.extend_from_slice(bytes);
        let at = split.unwrap_or(all.len());
        let mut m = mp.alloc().unwrap();
        m.append(at).unwrap().copy_from_slice(&all[..at]);
        if at < all.len() {
            let mut t = mp.alloc().unwrap();
            t.append(all.len() - at)
                .unwrap()
                .copy_from_slice(&all[at..]);
            m.chain(t).unwrap();
        }
        m.set_ol_flags(ol::TX_L4_CKSUM | ol::RX_RSS_HASH);
        m
    }

    fn field(m: &Mbuf, at: usize) -> u16 {
        let mut b = [0u8; 2];
        assert!(m.read_at(at, &mut b));
        u16::from_be_bytes(b)
    }

    #[test]
    fn completes_tcp_and_udp_whole_and_chained() {
        let mp = pool();
        for protocol in [ip_protocol::TCP, ip_protocol::UDP] {
            let at = 20 + checksum_field(protocol).unwrap();
            for l4_len in [20usize, 21, 64, 333, 1480] {
                let (v, want) = partial_packet(protocol, l4_len, l4_len as u8);
                // Whole, and split at even and odd offsets past the header.
                for split in [None, Some(at + 2), Some(at + 3), Some(v.len() - 1)] {
                    if split.is_some_and(|s| s >= v.len()) {
                        continue;
                    }
                    let mut m = mbuf(&mp, 0, &v, split);
                    assert!(
                        complete_l4_checksum(&mut m, 0),
                        "{protocol} {l4_len} {split:?}"
                    );
                    assert_eq!(field(&m, at), want, "{protocol} {l4_len} {split:?}");
                    assert_eq!(m.ol_flags(), ol::RX_RSS_HASH, "only TX_L4_CKSUM cleared");
                    // An independent check: the completed packet verifies.
                    let mut bytes = vec![0u8; v.len()];
                    assert!(m.read_at(0, &mut bytes));
                    let ph = checksum::pseudo_header_v4(SRC, DST, protocol, l4_len as u16);
                    assert!(checksum::verify_sum(checksum::combine(
                        ph,
                        checksum::sum(&bytes[20..])
                    )));
                }
            }
        }
    }

    #[test]
    fn frames_with_and_without_a_vlan_tag() {
        let mp = pool();
        let (v, want) = partial_packet(ip_protocol::TCP, 100, 3);
        let mut m = mbuf(&mp, 14, &v, None);
        m.data_mut()[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        assert!(complete_l4_checksum_frame(&mut m));
        assert_eq!(field(&m, 14 + 36), want);

        let mut m = mbuf(&mp, 18, &v, None);
        m.data_mut()[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        m.data_mut()[16..18].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        assert!(complete_l4_checksum_frame(&mut m));
        assert_eq!(field(&m, 18 + 36), want);
    }

    #[test]
    fn refuses_what_it_cannot_complete() {
        let mp = pool();
        let (v, _) = partial_packet(ip_protocol::TCP, 40, 1);
        // Not IPv4 in the frame.
        let mut m = mbuf(&mp, 14, &v, None);
        m.data_mut()[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert!(!complete_l4_checksum_frame(&mut m));
        assert_ne!(m.ol_flags() & ol::TX_L4_CKSUM, 0);
        // ICMP has no partial checksum here.
        let mut icmp = v.clone();
        icmp[9] = 1;
        assert!(!complete_l4_checksum(&mut mbuf(&mp, 0, &icmp, None), 0));
        // Total length beyond the packet.
        let mut long = v.clone();
        long[2..4].copy_from_slice(&200u16.to_be_bytes());
        assert!(!complete_l4_checksum(&mut mbuf(&mp, 0, &long, None), 0));
        // Checksum field outside the first segment.
        assert!(!complete_l4_checksum(&mut mbuf(&mp, 0, &v, Some(30)), 0));
    }
}
