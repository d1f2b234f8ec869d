//! IPv4 fragmentation (RFC 791 §3.2; Linux: `ip_fragment` / `ip_do_fragment`).

use crate::graph::{meta, meta_mut};
use crate::mem::{Mbuf, Mempool};
use crate::wire::Ipv4Packet;

/// Why a packet could not be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragError {
    /// The MTU cannot carry the header plus 8 bytes of payload.
    #[error("mtu too small for the header")]
    MtuTooSmall,
    /// A fragment does not fit in one buffer of the pool.
    #[error("fragment larger than the pool's data room")]
    TooBig,
    /// The pool ran out part-way; the fragments already produced were handed out.
    #[error("mempool empty")]
    NoBuffers,
    /// The packet is not a well-formed IPv4 packet.
    #[error("malformed packet")]
    Malformed,
}

/// The header of a non-first fragment: the fixed part plus only the options marked "copied".
fn copied_header(hdr: &[u8], out: &mut [u8; 60]) -> usize {
    out[..20].copy_from_slice(&hdr[..20]);
    let mut len = 20;
    let mut i = 20;
    while i < hdr.len() {
        let kind = hdr[i];
        if kind == 0 {
            break;
        }
        if kind == 1 {
            i += 1;
            continue;
        }
        let olen = hdr.get(i + 1).copied().unwrap_or(0) as usize;
        if olen < 2 || i + olen > hdr.len() {
            break;
        }
        if kind & 0x80 != 0 {
            out[len..len + olen].copy_from_slice(&hdr[i..i + olen]);
            len += olen;
        }
        i += olen;
    }
    // Pad to a multiple of 4 with end-of-options.
    while len % 4 != 0 {
        out[len] = 0;
        len += 1;
    }
    len
}

/// Number of fragments `fragment` will make of a packet of `total` bytes with a header of
/// `hl` bytes for `mtu` (a bound: later headers may be shorter).
pub fn fragment_count(total: usize, hl: usize, mtu: usize) -> usize {
    let per = (mtu.saturating_sub(hl)) & !7;
    if per == 0 {
        return usize::MAX;
    }
    (total - hl).div_ceil(per)
}

/// Splits `m` (data at its IPv4 header, possibly a chain; DF clear) into fragments of at most
/// `mtu` bytes, each a new mbuf from `pool`, handed to `out` in order. Metadata (ports,
/// neighbour, trace) is copied to every fragment. `m` itself is left to the caller to free.
pub fn fragment(
    m: &Mbuf,
    mtu: usize,
    pool: &Mempool,
    out: &mut dyn FnMut(Mbuf),
) -> Result<usize, FragError> {
    let d = m.data();
    if d.len() < 20 {
        return Err(FragError::Malformed);
    }
    let p = Ipv4Packet::new_unchecked(d);
    let hl = p.header_len();
    let total = (p.total_len() as usize).min(m.pkt_len());
    if hl < 20 || d.len() < hl || total < hl {
        return Err(FragError::Malformed);
    }
    if mtu < hl + 8 {
        return Err(FragError::MtuTooSmall);
    }
    if mtu > pool.data_room() as usize {
        return Err(FragError::TooBig);
    }
    let first_hdr = &d[..hl];
    let mut later = [0u8; 60];
    let later_len = copied_header(first_hdr, &mut later);
    let orig_off = p.fragment_offset() as usize; // in bytes
    let orig_mf = p.more_fragments();
    let md = *meta(m);
    let mut off = 0usize; // payload bytes already emitted
    let payload = total - hl;
    let mut count = 0;
    while off < payload {
        let hdr: &[u8] = if off == 0 {
            first_hdr
        } else {
            &later[..later_len]
        };
        let max = (mtu - hdr.len()) & !7;
        let len = max.min(payload - off);
        let last = off + len == payload;
        let mut f = pool.alloc().ok_or(FragError::NoBuffers)?;
        let buf = f.append(hdr.len() + len).ok_or(FragError::TooBig)?;
        buf[..hdr.len()].copy_from_slice(hdr);
        if !m.read_at(hl + off, &mut buf[hdr.len()..]) {
            return Err(FragError::Malformed);
        }
        let mut fp = Ipv4Packet::new_unchecked(&mut buf[..]);
        fp.set_header_len(hdr.len());
        fp.set_total_len((hdr.len() + len) as u16);
        fp.set_fragment_offset((orig_off + off) as u16);
        fp.set_more_fragments(!last || orig_mf);
        fp.fill_checksum();
        f.set_port(m.port());
        let mut fmd = md;
        fmd.l3_len = hdr.len() as u8;
        *meta_mut(&mut f) = fmd;
        if m.is_traced() {
            f.set_traced(true);
        }
        out(f);
        count += 1;
        off += len;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};
    use crate::wire::checksum;

    fn pool() -> Mempool {
        let mut p = MempoolParams::new("frag", 64);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = 4096;
        Mempool::new(&p).unwrap()
    }

    /// A 20-byte-header packet with `payload` bytes 0, 1, 2, …
    fn packet(mp: &Mempool, payload: usize, options: &[u8]) -> Mbuf {
        let hl = 20 + options.len();
        let mut m = mp.alloc().unwrap();
        let b = m.append(hl + payload).unwrap();
        b[0] = 0x40 | (hl / 4) as u8;
        b[2..4].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
        b[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        b[8] = 64;
        b[9] = 17;
        b[12..16].copy_from_slice(&[198, 18, 0, 1]);
        b[16..20].copy_from_slice(&[198, 18, 1, 2]);
        b[20..hl].copy_from_slice(options);
        for (i, x) in b[hl..].iter_mut().enumerate() {
            *x = i as u8;
        }
        let c = checksum::internet_checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        m
    }

    #[test]
    fn fragments_cover_the_payload_with_correct_headers() {
        let mp = pool();
        // One copied option (type 0x83, len 7 + NOP pad) and one not copied (RR 0x07 len 3).
        let opts = [0x83, 7, 4, 1, 2, 3, 4, 0x07, 3, 4, 0, 0];
        let m = packet(&mp, 3000, &opts);
        let mut frags = Vec::new();
        let n = fragment(&m, 1500, &mp, &mut |f| frags.push(f)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(fragment_count(3032, 32, 1500), 3);
        let mut payload = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let p = Ipv4Packet::new_checked(f.data()).unwrap();
            assert!(p.verify_checksum());
            assert!(f.pkt_len() <= 1500);
            assert_eq!(p.ident(), 0x1234);
            assert_eq!(p.more_fragments(), i < 2);
            assert_eq!(p.fragment_offset() as usize, payload.len());
            if i == 0 {
                assert_eq!(p.header_len(), 32, "first fragment keeps every option");
            } else {
                assert_eq!(
                    p.header_len(),
                    28,
                    "later fragments keep copied options only"
                );
                assert_eq!(&p.options()[..7], &opts[..7]);
            }
            payload.extend_from_slice(p.payload());
        }
        assert_eq!(payload, (0..3000).map(|i| i as u8).collect::<Vec<_>>());
    }

    #[test]
    fn tiny_mtu_and_empty_pool_are_errors() {
        let mp = pool();
        let m = packet(&mp, 100, &[]);
        assert_eq!(
            fragment(&m, 27, &mp, &mut |_| {}),
            Err(FragError::MtuTooSmall)
        );
        let mut held = Vec::new();
        while let Some(x) = mp.alloc() {
            held.push(x);
        }
        assert_eq!(
            fragment(&m, 68, &mp, &mut |_| {}),
            Err(FragError::NoBuffers)
        );
    }
}
