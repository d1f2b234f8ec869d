//! Initial sequence numbers (RFC 6528) and per-connection timestamp offsets.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)` where `M` is a clock
//! ticking every 4 µs (so it wraps about every 4.77 hours, as RFC 9293 §3.4.1 asks) and `F` is
//! SipHash-2-4 keyed with a 128-bit secret. SipHash is implemented here (a few dozen lines)
//! rather than taken from std's `DefaultHasher`, whose algorithm is not specified and may change
//! between Rust releases; the implementation is checked against the reference test vectors.
//!
//! The same hash gives each connection a timestamp offset (its upper 32 bits), so TSval does
//! not reveal the host's uptime and differs per 4-tuple, as Linux does.

use std::net::SocketAddrV4;

use super::seq::Seq;

/// SipHash-2-4 of `data` under a 128-bit `key` (the reference algorithm by Aumasson and
/// Bernstein; key bytes are read little-endian as in the reference code).
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13);
        v[1] ^= v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16);
        v[3] ^= v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21);
        v[3] ^= v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17);
        v[1] ^= v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in chunks.by_ref() {
        let m = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    let m = u64::from_le_bytes(last) | ((data.len() as u64 & 0xff) << 56);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Generates RFC 6528 initial sequence numbers and timestamp offsets from a secret key.
///
/// The key should come from a good random source at start-up and be shared by every core, so
/// any core computes the same values for a 4-tuple (needed later for SYN cookies).
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl std::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("IsnGenerator { .. }")
    }
}

impl IsnGenerator {
    /// Nanoseconds per tick of the ISN clock `M` (4 µs, RFC 9293 §3.4.1).
    pub const TICK_NS: u64 = 4_000;

    /// A generator with the given secret key.
    pub const fn new(key: [u8; 16]) -> Self {
        IsnGenerator { key }
    }

    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u64 {
        let mut m = [0u8; 12];
        m[..4].copy_from_slice(&local.ip().octets());
        m[4..6].copy_from_slice(&local.port().to_be_bytes());
        m[6..10].copy_from_slice(&remote.ip().octets());
        m[10..].copy_from_slice(&remote.port().to_be_bytes());
        siphash24(&self.key, &m)
    }

    /// The ISN for a connection from `local` to `remote` at time `now_ns`:
    /// `(now_ns / 4 µs) + F(4-tuple, key)`, modulo 2^32.
    pub fn isn(&self, local: SocketAddrV4, remote: SocketAddrV4, now_ns: u64) -> Seq {
        let m = (now_ns / Self::TICK_NS) as u32;
        Seq(m.wrapping_add(self.hash(local, remote) as u32))
    }

    /// The keyed hash of a SYN cookie (RFC 4987 §3.6): of the 4-tuple, the client's ISN,
    /// the coarse cookie `counter` and the encoded MSS index, under the same secret (with a
    /// domain-separation byte, so it is unrelated to the ISN hash).
    pub fn cookie_hash(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: Seq,
        counter: u32,
        mss_index: u8,
    ) -> u32 {
        let mut m = [0u8; 22];
        m[..4].copy_from_slice(&local.ip().octets());
        m[4..6].copy_from_slice(&local.port().to_be_bytes());
        m[6..10].copy_from_slice(&remote.ip().octets());
        m[10..12].copy_from_slice(&remote.port().to_be_bytes());
        m[12..16].copy_from_slice(&client_isn.0.to_be_bytes());
        m[16..20].copy_from_slice(&counter.to_be_bytes());
        m[20] = mss_index;
        m[21] = 0xc0; // domain separation: SYN cookie
        siphash24(&self.key, &m) as u32
    }

    /// The offset added to this connection's timestamp clock (TSval), from the upper half of
    /// the same keyed hash.
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        (self.hash(local, remote) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_reference_vectors() {
        // From the SipHash paper / reference implementation (key 00..0f, message 00..len-1).
        let msg: Vec<u8> = (0..64).collect();
        assert_eq!(siphash24(&key(), &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(&key(), &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(&key(), &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&key(), &msg[..8]), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn isn_depends_on_tuple_key_and_clock() {
        let g = IsnGenerator::new(key());
        let a = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
        let i0 = g.isn(a, b, 0);
        // The clock advances one per 4 µs.
        assert_eq!(g.isn(a, b, 4_000), i0 + 1);
        assert_eq!(g.isn(a, b, 3_999), i0);
        assert_eq!(g.isn(a, b, 4_000_000), i0 + 1000);
        // Another tuple, direction or key gives an unrelated value.
        assert_ne!(g.isn(b, a, 0), i0);
        let b2 = SocketAddrV4::new(*b.ip(), 81);
        assert_ne!(g.isn(a, b2, 0), i0);
        let mut k = key();
        k[0] ^= 1;
        assert_ne!(IsnGenerator::new(k).isn(a, b, 0), i0);
        assert_ne!(g.ts_offset(a, b), g.ts_offset(b, a));
        assert_eq!(format!("{g:?}"), "IsnGenerator { .. }");
    }
}
