//! Random and mutated frames thrown at the whole stack graph: nothing panics, every frame is
//! accounted for by `eth-input`, and no mbuf leaks beyond what reassembly may legitimately hold.

mod common;

use common::*;
use proptest::prelude::*;

/// Valid frames of every kind the stack handles, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut udp = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST0_MAC.0, P0_MAC.0)
        .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
        .udp(1000, 7)
        .write(&mut udp, &[7u8; 40])
        .unwrap();
    let mut fwd = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST0_MAC.0, P0_MAC.0)
        .ipv4([198, 18, 0, 2], [198, 18, 2, 9], 2)
        .udp(1000, 9)
        .write(&mut fwd, &[1u8; 100])
        .unwrap();
    let mut ping = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST0_MAC.0, P0_MAC.0)
        .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, &[2u8; 56])
        .unwrap();
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&HOST0_MAC.0);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&HOST0_MAC.0);
    arp.extend_from_slice(&[198, 18, 0, 2, 0, 0, 0, 0, 0, 0, 198, 18, 0, 1]);
    // A first fragment (MF set) so reassembly is exercised too.
    let mut frag = udp.clone();
    frag[14 + 6] |= 0x20;
    vec![udp, fwd, ping, arp, frag]
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop::option::of(0usize..200),
    )
        .prop_map(move |(i, flips, cut)| {
            let mut f = seeds[i].clone();
            for (at, v) in flips {
                let k = at.index(f.len());
                f[k] = v;
            }
            if let Some(c) = cut {
                f.truncate(c.min(f.len()));
            }
            f
        })
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        mutated(),
        mutated(),
        mutated(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic_or_leak(frames in prop::collection::vec(frame(), 1..48)) {
        let mut b = Bench::new(&config_text(
            "name = \"udp-echo\"\nport = 7",
            1500,
            "[[neighbours]]\nip = \"198.18.0.2\"\nmac = \"02:00:00:00:00:10\"\nport = \"p0\"\n\
             [[neighbours]]\nip = \"198.18.1.2\"\nmac = \"02:00:00:00:00:11\"\nport = \"p1\"\n",
        ));
        let base = b.stats().iter().find(|n| n.node == "eth-input").map_or(0, |n| n.packets);
        for f in &frames {
            if f.is_empty() {
                continue;
            }
            b.send(0, f);
        }
        b.turns(8);
        b.recv(0);
        b.recv(1);
        let sent = frames.iter().filter(|f| !f.is_empty()).count() as u64;
        let seen = b.stats().iter().find(|n| n.node == "eth-input").map_or(0, |n| n.packets);
        prop_assert_eq!(seen - base, sent);
        // Only fragments waiting for the rest of their datagram may still hold mbufs.
        prop_assert!(b.pool.in_use() <= frames.len());
    }
}
