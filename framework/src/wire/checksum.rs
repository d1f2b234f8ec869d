//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum is the one's-complement of the one's-complement sum of the data taken as
//! big-endian 16-bit words (an odd last byte is padded with a zero byte). This module computes
//! the sum eight bytes at a time: each 8-byte chunk is loaded in native byte order and added
//! into a `u64` with the carry wrapped back in ("end-around carry"), over four independent
//! accumulators (64 bytes per loop turn) so consecutive additions do not wait for each
//! other's carries. The 64-bit total is
//! folded to 16 bits at the end, and — because the one's-complement sum is byte-order
//! independent (RFC 1071 §2(B)) — a single byte swap on little-endian machines turns the
//! native-order result into the network-order one. Portable Rust, no intrinsics, no `unsafe`.
//!
//! Partial sums are `u32` values that can be [`combine`]d, so a checksum can be computed over
//! pieces (a pseudo header from [`pseudo_header_v4`], then the segment; or the segments of an
//! mbuf chain with [`combine_at`]) and finished with [`finish`]. A buffer that contains its own
//! correct checksum sums to `0xffff` ([`verify`]).
//!
//! [`update_u16`] and [`update_u32`] patch a checksum after one field changed (TTL decrement,
//! NAT address or port rewrite) without touching the rest of the packet, using RFC 1624's
//! equation 3, `HC' = ~(~HC + ~m + m')`.

use std::net::Ipv4Addr;

/// One's-complement addition of two 64-bit values (the carry out is added back in).
#[inline(always)]
fn add64(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    // No overflow here: when `carry` is set, `s <= u64::MAX - 1`.
    s + carry as u64
}

/// Folds a 64-bit one's-complement accumulator to 16 bits (same byte order as its lanes).
#[inline(always)]
fn fold64(x: u64) -> u16 {
    let (s, c) = (x as u32).overflowing_add((x >> 32) as u32);
    fold32(s as u64 + c as u64)
}

/// Folds a value of at most 48 bits to 16 bits with end-around carries.
#[inline(always)]
fn fold32(x: u64) -> u16 {
    let x = (x & 0xffff) + (x >> 16); // <= 0xffff + 0xffff_ffff
    let x = (x & 0xffff) + (x >> 16); // <= 0xffff + 0x1_0000
    let x = (x & 0xffff) + (x >> 16); // <= 0xffff
    x as u16
}

/// Loads 8 bytes at `at` in native byte order.
#[inline(always)]
fn load(chunk: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&chunk[at..at + 8]);
    u64::from_ne_bytes(b)
}

/// The one's-complement sum of `data` in native byte order, folded to 16 bits.
#[inline]
fn native_sum(data: &[u8]) -> u16 {
    let mut a0 = 0u64;
    let mut a1 = 0u64;
    let mut a2 = 0u64;
    let mut a3 = 0u64;
    let mut big = data.chunks_exact(64);
    for c in &mut big {
        a0 = add64(a0, load(c, 0));
        a1 = add64(a1, load(c, 8));
        a2 = add64(a2, load(c, 16));
        a3 = add64(a3, load(c, 24));
        a0 = add64(a0, load(c, 32));
        a1 = add64(a1, load(c, 40));
        a2 = add64(a2, load(c, 48));
        a3 = add64(a3, load(c, 56));
    }
    a0 = add64(a0, a2);
    a1 = add64(a1, a3);
    let mut chunks = big.remainder().chunks_exact(32);
    for c in &mut chunks {
        a0 = add64(a0, load(c, 0));
        a1 = add64(a1, load(c, 8));
        a0 = add64(a0, load(c, 16));
        a1 = add64(a1, load(c, 24));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(8);
    for c in &mut words {
        a0 = add64(a0, load(c, 0));
    }
    let tail = words.remainder();
    // The tail starts at a multiple of 8, so each byte keeps its position within its 16-bit
    // word; the lanes of a one's-complement sum may be added in any order, so the pieces are
    // added at lane 0 (no copy into a padded block: that costs a call for short headers).
    let mut i = 0;
    if tail.len() >= 4 {
        a1 = add64(
            a1,
            u32::from_ne_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64,
        );
        i = 4;
    }
    if tail.len() - i >= 2 {
        a1 = add64(a1, u16::from_ne_bytes([tail[i], tail[i + 1]]) as u64);
        i += 2;
    }
    if tail.len() > i {
        // An odd last byte is padded with a zero byte (RFC 1071).
        a1 = add64(a1, u16::from_ne_bytes([tail[i], 0]) as u64);
    }
    fold64(add64(a0, a1))
}

/// The one's-complement sum of `data` as big-endian 16-bit words (odd tail padded with a zero
/// byte), folded to 16 bits: a partial sum in `0..=0xffff` to [`combine`] and [`finish`].
///
/// The sum of data that is not all zero is never 0 (end-around carry keeps it in
/// `1..=0xffff`).
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    // The native-order sum is the byte-swapped network-order sum on little-endian machines.
    u16::from_be(native_sum(data)) as u32
}

/// One's-complement sum of two partial sums (any `u32` values; the result is folded to
/// `0..=0xffff`). The data behind `b` must start at an even offset from the data behind `a`
/// (otherwise use [`combine_at`]).
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    fold32(a as u64 + b as u64) as u32
}

/// Like [`combine`], for a partial sum `b` of data that starts `offset` bytes after the data
/// of `a` (for example the second segment of an mbuf chain). An odd offset shifts every byte
/// of `b` to the other half of its 16-bit word, which for a one's-complement sum is a byte
/// swap of the folded sum.
#[inline]
pub fn combine_at(a: u32, b: u32, offset: usize) -> u32 {
    let b = fold32(b as u64);
    let b = if offset % 2 == 1 { b.swap_bytes() } else { b };
    combine(a, b as u32)
}

/// The checksum field value for a partial sum: its folded one's complement.
#[inline]
pub fn finish(sum: u32) -> u16 {
    !fold32(sum as u64)
}

/// The Internet checksum of `data` (RFC 1071): the value to store in a checksum field that
/// was zero while `data` was summed.
#[inline]
pub fn internet_checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// True when a partial sum over data that includes its checksum field verifies, i.e. folds
/// to `0xffff`.
#[inline]
pub fn verify_sum(sum: u32) -> bool {
    fold32(sum as u64) == 0xffff
}

/// [`verify`] for exactly 20 bytes (an IPv4 header without options), unrolled: the common case
/// on the forwarding path.
#[inline]
pub fn verify_header20(h: &[u8]) -> bool {
    let h: &[u8; 20] = match h.try_into() {
        Ok(a) => a,
        Err(_) => return verify(h),
    };
    let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
    let s = w(0) + w(4) + w(8) + w(12) + w(16);
    fold64(s) == 0xffff
}

/// True when `data`, which contains its own checksum field, has a correct Internet checksum.
#[inline]
pub fn verify(data: &[u8]) -> bool {
    verify_sum(sum(data))
}

/// The partial sum of the IPv4 pseudo header used by UDP and TCP: source and destination
/// addresses, zero byte, protocol, and the transport `length` (header plus payload).
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = u32::from(src) as u64;
    let d = u32::from(dst) as u64;
    let x = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + protocol as u64 + length as u64;
    fold32(x) as u32
}

/// RFC 1624 incremental update: the new checksum after one 16-bit word of the covered data
/// changed from `old_word` to `new_word` (big-endian values, as on the wire).
///
/// Equals recomputing the checksum from scratch, except for data that becomes all zeros
/// (where recomputation gives `0xffff` and the update gives `0`), which no IP, UDP, TCP or
/// ICMP header can be.
#[inline]
pub fn update_u16(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let s = (!old_checksum) as u64 + (!old_word) as u64 + new_word as u64;
    !fold32(s)
}

/// RFC 1624 incremental update for a 32-bit field at an even offset (an IPv4 address, a TCP
/// sequence number, or two adjacent 16-bit fields such as TTL+protocol or both ports).
#[inline]
pub fn update_u32(old_checksum: u16, old_value: u32, new_value: u32) -> u16 {
    let old = old_value as u64;
    let new = new_value as u64;
    let s = (!old_checksum) as u64
        + (!(old >> 16) & 0xffff)
        + (!old & 0xffff)
        + (new >> 16)
        + (new & 0xffff);
    !fold32(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook algorithm: 16 bits at a time into a `u32`, folded at the end.
    pub(crate) fn naive_checksum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u16::from_be_bytes([data[i], data[i + 1]]) as u32;
            // Fold as we go so a long buffer cannot overflow the u32.
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        if i < data.len() {
            s += (data[i] as u32) << 8;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// A deterministic xorshift generator for the exhaustive length sweep.
    fn xorshift(state: &mut u64) -> u8 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 24) as u8
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (before complementing).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
        // The same in two pieces, and byte-swapped pieces at an odd offset.
        assert_eq!(combine(sum(&data[..4]), sum(&data[4..])), 0xddf2);
        assert_eq!(combine_at(sum(&data[..3]), sum(&data[3..]), 3), 0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // The classic example header (checksum field b861 included).
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&hdr));
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(internet_checksum(&zeroed), 0xb861);
    }

    #[test]
    fn empty_and_edge_values() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(internet_checksum(&[]), 0xffff);
        assert_eq!(internet_checksum(&[0xff]), !0xff00);
        assert_eq!(sum(&[0xff; 64]), 0xffff);
        assert_eq!(internet_checksum(&[0xff; 64]), 0);
        assert!(verify(&[0xff, 0xff]));
        assert!(!verify(&[0, 0]));
    }

    #[test]
    fn every_length_and_alignment_matches_naive() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut storage = vec![0u8; 2000 + 8];
        for len in 0..=2000usize {
            for b in storage.iter_mut() {
                *b = xorshift(&mut state);
            }
            let align = len % 8;
            let data = &storage[align..align + len];
            assert_eq!(internet_checksum(data), naive_checksum(data), "len {len}");
        }
        // Saturated data stresses the carries.
        for len in 0..=300usize {
            let data = vec![0xffu8; len];
            assert_eq!(
                internet_checksum(&data),
                naive_checksum(&data),
                "0xff len {len}"
            );
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 19, 255, 254);
        let mut ph = [0u8; 12];
        ph[0..4].copy_from_slice(&src.octets());
        ph[4..8].copy_from_slice(&dst.octets());
        ph[9] = 17;
        ph[10..12].copy_from_slice(&1234u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(src, dst, 17, 1234), sum(&ph));
    }

    fn set16(d: &mut [u8], at: usize, v: u16) {
        d[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    fn get16(d: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([d[at], d[at + 1]])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_data_random_alignment(
            data in proptest::collection::vec(any::<u8>(), 0..=2000),
            align in 0usize..8,
        ) {
            let mut buf = vec![0u8; align];
            buf.extend_from_slice(&data);
            let d = &buf[align..];
            prop_assert_eq!(internet_checksum(d), naive_checksum(d));
            prop_assert_eq!(finish(sum(d)), naive_checksum(d));
        }

        #[test]
        fn split_sums_combine(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cut in any::<prop::sample::Index>(),
        ) {
            let at = cut.index(data.len() + 1);
            let whole = sum(&data);
            let parts = combine_at(sum(&data[..at]), sum(&data[at..]), at);
            prop_assert_eq!(finish(whole), finish(parts));
        }

        #[test]
        fn update_u16_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..200),
            word in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            // Even-length data, checksum field in the first word.
            let len = data.len() & !1;
            data.truncate(len);
            set16(&mut data, 0, 0);
            let c = internet_checksum(&data);
            set16(&mut data, 0, c);
            prop_assert!(verify(&data));
            let at = 2 + 2 * word.index((len - 2) / 2);
            let old = get16(&data, at);
            set16(&mut data, at, new);
            let updated = update_u16(c, old, new);
            set16(&mut data, 0, 0);
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(updated, internet_checksum(&data));
            }
        }

        #[test]
        fn update_u32_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 8..200),
            word in any::<prop::sample::Index>(),
            new in any::<u32>(),
        ) {
            let len = data.len() & !1;
            data.truncate(len);
            set16(&mut data, 0, 0);
            let c = internet_checksum(&data);
            let at = 2 + 2 * word.index((len - 4) / 2);
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            data[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let updated = update_u32(c, old, new);
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(updated, internet_checksum(&data));
            }
        }
    }
}
