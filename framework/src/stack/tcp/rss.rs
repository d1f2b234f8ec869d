//! Software RSS: the Toeplitz hash NICs use to spread flows over receive queues (Microsoft
//! RSS specification), so software ports and active opens can steer a flow to the lcore that
//! owns it. With [`SYMMETRIC_KEY`] a flow and its reverse hash alike (Woo & Park, "Scalable
//! TCP Session Monitoring with Symmetric Receive-side Scaling"), so both directions of a
//! connection land on one queue.

use std::net::Ipv4Addr;

/// The default key of the Microsoft RSS specification (also many NICs' and DPDK's default).
pub const MS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// A key whose 16-bit halves repeat (`0x6d5a`): swapping source and destination (addresses
/// and ports) leaves the hash unchanged.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = 0x6d;
        k[i + 1] = 0x5a;
        i += 2;
    }
    k
};

/// The Toeplitz hash of `data` under `key` (`key` must be at least `data.len() + 4` bytes).
pub fn toeplitz(key: &[u8], data: &[u8]) -> u32 {
    debug_assert!(key.len() >= data.len() + 4);
    let mut hash = 0u32;
    // The 32-bit window of the key that lines up with the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in data.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | ((next >> (7 - bit)) & 1) as u32;
        }
    }
    hash
}

/// The RSS hash of a TCP/UDP over IPv4 packet from `src:sport` to `dst:dport` (input: source
/// address, destination address, source port, destination port, network order).
pub fn hash_v4_l4(key: &[u8], src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> u32 {
    let mut d = [0u8; 12];
    d[..4].copy_from_slice(&src.octets());
    d[4..8].copy_from_slice(&dst.octets());
    d[8..10].copy_from_slice(&sport.to_be_bytes());
    d[10..].copy_from_slice(&dport.to_be_bytes());
    toeplitz(key, &d)
}

/// Which queue of `queues` a hash selects, like a NIC's default redirection table (128
/// entries filled round-robin: entry `h & 127` holds queue `(h & 127) % queues`).
pub fn queue_for(hash: u32, queues: u16) -> u16 {
    ((hash & 127) % queues.max(1) as u32) as u16
}

/// Where the flows of an lcore come from: with this, an active open picks an ephemeral port
/// whose replies hash to the lcore's own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssSteer {
    /// The RSS key the port (or software steering) uses.
    pub key: [u8; 40],
    /// Receive queues the flows are spread over.
    pub queues: u16,
    /// The queue this lcore polls.
    pub queue: u16,
}

impl RssSteer {
    /// True if packets from `remote:rport` to `local:lport` arrive on this lcore's queue.
    pub fn is_mine(&self, remote: Ipv4Addr, rport: u16, local: Ipv4Addr, lport: u16) -> bool {
        queue_for(
            hash_v4_l4(&self.key, remote, local, rport, lport),
            self.queues,
        ) == self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// The verification suite of the Microsoft RSS specification (IPv4, with TCP ports).
    #[test]
    fn microsoft_verification_vectors() {
        let cases = [
            ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x51cc_c178u32),
            ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626_b0ea),
            ("24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b_394a),
            ("38.27.205.30", 48228, "209.142.163.6", 2217, 0xafc7_327f),
            ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x10e8_28a2),
        ];
        for (src, sp, dst, dp, want) in cases {
            assert_eq!(
                hash_v4_l4(&MS_KEY, ip(src), ip(dst), sp, dp),
                want,
                "{src}:{sp} -> {dst}:{dp}"
            );
        }
        // Addresses only (the 8-byte input).
        let mut d = [0u8; 8];
        d[..4].copy_from_slice(&ip("66.9.149.187").octets());
        d[4..].copy_from_slice(&ip("161.142.100.80").octets());
        assert_eq!(toeplitz(&MS_KEY, &d), 0x323e_8fc2);
    }

    #[test]
    fn the_symmetric_key_hashes_both_directions_alike_and_still_spreads() {
        let mut queues = [0u32; 4];
        let mut asym = 0;
        for i in 0..2000u32 {
            let a = Ipv4Addr::from(0xc612_0000 | (i * 7919) & 0xffff);
            let b = Ipv4Addr::from(0xc613_0000 | (i * 104_729) & 0xffff);
            let (pa, pb) = (1024 + (i * 31 % 60000) as u16, 80 + (i % 7) as u16);
            let h = hash_v4_l4(&SYMMETRIC_KEY, a, b, pa, pb);
            assert_eq!(h, hash_v4_l4(&SYMMETRIC_KEY, b, a, pb, pa), "flow {i}");
            queues[queue_for(h, 4) as usize] += 1;
            if hash_v4_l4(&MS_KEY, a, b, pa, pb) != hash_v4_l4(&MS_KEY, b, a, pb, pa) {
                asym += 1;
            }
        }
        // The default key is not symmetric, so the property above is the key's doing.
        assert!(asym > 1900, "{asym}");
        for (q, n) in queues.iter().enumerate() {
            assert!((350..650).contains(n), "queue {q} got {n} of 2000 flows");
        }
    }

    #[test]
    fn steering_tells_which_ports_come_back_to_this_queue() {
        let s = RssSteer {
            key: SYMMETRIC_KEY,
            queues: 4,
            queue: 2,
        };
        let (local, remote) = (ip("198.18.0.1"), ip("198.18.0.2"));
        let mine: Vec<u16> = (40000..40400)
            .filter(|&p| s.is_mine(remote, 80, local, p))
            .collect();
        assert!((60..140).contains(&mine.len()), "{}", mine.len());
        for p in mine {
            let h = hash_v4_l4(&SYMMETRIC_KEY, local, remote, p, 80);
            assert_eq!(queue_for(h, 4), 2, "outgoing direction of port {p}");
        }
    }
}
