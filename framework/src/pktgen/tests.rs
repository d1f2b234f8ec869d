//! Tests of the pktgen module: frames checked by our wire views and by etherparse, field
//! ranges, IMIX proportions, validation, signatures on real frames, the analyzer's sequence
//! and latency accounting, and the pacer on simulated time.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse as ep;
use proptest::prelude::*;

use super::*;
use crate::mem::{HugePolicy, Mbuf, Mempool, MempoolParams};
use crate::port::MacAddr;
use crate::wire::{
    checksum, EthernetFrame, Icmpv4Packet, Ipv4Packet, TcpPacket, UdpPacket, WireError,
};

const BASE: u32 = 0xc612_0000; // 198.18.0.0
const DST: u32 = 0xc613_0000; // 198.19.0.0

fn pool(data_room: u16) -> Mempool {
    let mut p = MempoolParams::new("pktgen-test", 256);
    p.huge = HugePolicy::Off;
    p.data_room = data_room;
    p.cache_size = 0;
    Mempool::new(&p).unwrap()
}

fn udp(src: Range16, dst: Range16) -> L4 {
    L4::Udp {
        src_port: src,
        dst_port: dst,
    }
}

fn spec(l4: L4, vlan: Option<u16>, size: SizeSpec) -> StreamSpec {
    StreamSpec {
        id: 7,
        src_mac: MacAddr::local(1),
        dst_mac: MacAddr::local(2),
        vlan,
        src_ip: FieldRange::Random {
            start: BASE + 1,
            end: BASE + 200,
        },
        dst_ip: FieldRange::Seq {
            start: DST,
            end: DST + 1000,
            step: 3,
        },
        ttl: 33,
        l4,
        size,
        payload: Payload::Incrementing,
        signature: true,
    }
}

/// Fills one mbuf and returns a copy of its bytes.
fn fill_one(s: &mut Stream, pool: &Mempool, seq: u64, tsc: u64) -> Vec<u8> {
    let mut m = pool.alloc().unwrap();
    assert!(s.fill(&mut m, seq, tsc), "fill refused");
    m.data().to_vec()
}

fn in_range(r: &Range16, v: u16) -> bool {
    let (a, b) = r.bounds();
    (a..=b).contains(&v)
}

/// Checks everything about one generated frame, with etherparse and with our views.
fn check_frame(frame: &[u8], spec: &StreamSpec, seq: u64, tsc: u64) {
    let size = frame.len() + FCS_LEN;
    let allowed: Vec<u16> = match &spec.size {
        SizeSpec::Fixed(s) => vec![*s],
        SizeSpec::Range(r) => {
            let (a, b) = r.bounds();
            (a..=b).collect()
        }
        SizeSpec::Imix(e) => e.iter().map(|e| e.0).collect(),
    };
    assert!(allowed.contains(&(size as u16)), "size {size}");

    // etherparse.
    let h = ep::PacketHeaders::from_ethernet_slice(frame)
        .unwrap_or_else(|e| panic!("etherparse rejects our frame: {e:?}"));
    match &h.link {
        Some(ep::LinkHeader::Ethernet2(e)) => {
            assert_eq!(e.source, spec.src_mac.0);
            assert_eq!(e.destination, spec.dst_mac.0);
        }
        other => panic!("link {other:?}"),
    }
    match (h.vlan(), spec.vlan) {
        (None, None) => {}
        (Some(ep::VlanHeader::Single(v)), Some(id)) => {
            assert_eq!(v.vlan_id.value(), id);
            assert_eq!(v.ether_type, ep::EtherType::IPV4);
        }
        other => panic!("vlan {other:?}"),
    }
    let ip = match &h.net {
        Some(ep::NetHeaders::Ipv4(ip, _)) => ip.clone(),
        other => panic!("net {other:?}"),
    };
    assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
    assert_eq!(ip.time_to_live, spec.ttl);
    assert!(ip.dont_fragment);
    let l2 = if spec.vlan.is_some() { 18 } else { 14 };
    assert_eq!(ip.total_len as usize, frame.len() - l2);
    let src = u32::from_be_bytes(ip.source);
    let dst = u32::from_be_bytes(ip.destination);
    let (a, b) = spec.src_ip.bounds();
    assert!((a..=b).contains(&src));
    let (a, b) = spec.dst_ip.bounds();
    assert!((a..=b).contains(&dst));
    let payload = h.payload.slice();
    match (&h.transport, &spec.l4) {
        (Some(ep::TransportHeader::Udp(u)), L4::Udp { src_port, dst_port }) => {
            assert!(in_range(src_port, u.source_port));
            assert!(in_range(dst_port, u.destination_port));
            assert_eq!(u.length as usize, 8 + payload.len());
            assert_ne!(u.checksum, 0);
            assert_eq!(u.calc_checksum_ipv4(&ip, payload).unwrap(), u.checksum);
        }
        (Some(ep::TransportHeader::Tcp(t)), L4::TcpSyn { src_port, dst_port }) => {
            assert!(in_range(src_port, t.source_port));
            assert!(in_range(dst_port, t.destination_port));
            assert!(t.syn && !t.ack && !t.rst && !t.fin);
            assert_eq!(t.calc_checksum_ipv4(&ip, payload).unwrap(), t.checksum);
        }
        (Some(ep::TransportHeader::Icmpv4(i)), L4::IcmpEcho) => {
            match &i.icmp_type {
                ep::Icmpv4Type::EchoRequest(e) => {
                    assert_eq!(e.id, spec.id);
                    assert_eq!(e.seq, seq as u16);
                }
                other => panic!("icmp {other:?}"),
            }
            let want = ep::Icmpv4Header::with_checksum(i.icmp_type.clone(), payload);
            assert_eq!(want.checksum, i.checksum);
        }
        other => panic!("transport {other:?}"),
    }

    // Our views.
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let v4 = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(v4.verify_checksum());
    let (s, d) = (v4.src_addr(), v4.dst_addr());
    let l4 = v4.payload();
    let range = match spec.l4 {
        L4::Udp { .. } => {
            let u = UdpPacket::new_checked(l4).unwrap();
            assert!(u.has_checksum() && u.verify_checksum(s, d));
            8..u.len() as usize
        }
        L4::TcpSyn { .. } => {
            let t = TcpPacket::new_checked(l4).unwrap();
            assert!(t.verify_checksum(s, d));
            t.header_len()..l4.len()
        }
        L4::IcmpEcho => {
            let c = Icmpv4Packet::new_checked(l4).unwrap();
            assert!(c.verify_checksum());
            8..l4.len()
        }
    };
    let body = &l4[range];
    assert_eq!(body, payload);

    // Signature and payload contents.
    let after = if spec.signature {
        let sig = Signature::find(frame).expect("signature");
        assert_eq!(
            sig,
            Signature {
                stream: spec.id,
                seq,
                tx_tsc: tsc
            }
        );
        &body[Signature::LEN..]
    } else {
        assert_eq!(Signature::find(frame), None);
        body
    };
    for (i, &b) in after.iter().enumerate() {
        let want = match &spec.payload {
            Payload::Zeros => 0,
            Payload::Pattern(p) => p[i % p.len()],
            Payload::Incrementing => i as u8,
        };
        assert_eq!(b, want, "payload byte {i}");
    }
}

fn l4_variants() -> Vec<L4> {
    vec![
        udp(
            FieldRange::Random {
                start: 1000,
                end: 1100,
            },
            FieldRange::Seq {
                start: 5000,
                end: 5010,
                step: 1,
            },
        ),
        L4::TcpSyn {
            src_port: FieldRange::Seq {
                start: 40000,
                end: 65535,
                step: 7,
            },
            dst_port: FieldRange::Fixed(80),
        },
        L4::IcmpEcho,
    ]
}

#[test]
fn every_variant_parses_with_valid_checksums() {
    let pool = pool(2048);
    let payloads = [
        Payload::Zeros,
        Payload::Pattern(vec![0xde, 0xad, 0xbe]),
        Payload::Incrementing,
    ];
    let mut checked = 0;
    for l4 in l4_variants() {
        for vlan in [None, Some(100)] {
            for signature in [true, false] {
                let min = min_frame_size(vlan.is_some(), &l4, signature);
                let max = max_frame_size(1500, vlan.is_some()) as u16;
                let sizes = [
                    SizeSpec::Fixed(min),
                    SizeSpec::Fixed(max),
                    SizeSpec::Fixed(min + 1), // odd length
                    SizeSpec::Range(FieldRange::Random {
                        start: min,
                        end: max,
                    }),
                    SizeSpec::Range(FieldRange::Seq {
                        start: min,
                        end: min + 40,
                        step: 1,
                    }),
                    SizeSpec::Imix(vec![(min, 7), (594, 4), (max, 1)]),
                ];
                for (k, size) in sizes.into_iter().enumerate() {
                    let mut sp = spec(l4.clone(), vlan, size);
                    sp.signature = signature;
                    sp.payload = payloads[k % payloads.len()].clone();
                    let mut s = Stream::new(sp.clone(), 1500).unwrap();
                    for seq in 0..60u64 {
                        let tsc = 0x0123_4567_89ab_0000 + seq * 977;
                        let f = fill_one(&mut s, &pool, seq, tsc);
                        check_frame(&f, &sp, seq, tsc);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 2 * 6 * 60);
}

/// A range that holds one value but is not `Fixed`: it goes through the per-packet stamping.
fn one_value<T: Copy + From<u8>>(v: T) -> FieldRange<T> {
    FieldRange::Seq {
        start: v,
        end: v,
        step: T::from(1),
    }
}

#[test]
fn constant_streams_copy_the_template_and_match_the_stamped_frames() {
    let pool = pool(2048);
    let fixed_l4 = [
        udp(FieldRange::Fixed(1024), FieldRange::Fixed(9)),
        L4::TcpSyn {
            src_port: FieldRange::Fixed(40000),
            dst_port: FieldRange::Fixed(80),
        },
        L4::IcmpEcho,
    ];
    let mut compared = 0;
    for l4 in fixed_l4 {
        for vlan in [None, Some(7)] {
            let min = min_frame_size(vlan.is_some(), &l4, false);
            let max = max_frame_size(1500, vlan.is_some()) as u16;
            for size in [min, min + 1, 97, 133, 300, max] {
                let mut sp = spec(l4.clone(), vlan, SizeSpec::Fixed(size));
                sp.signature = false;
                sp.src_ip = FieldRange::Fixed(BASE + 9);
                sp.dst_ip = FieldRange::Fixed(DST + 3);
                let mut fast = Stream::new(sp.clone(), 1500).unwrap();
                // ICMP echo carries the sequence number: never constant.
                assert_eq!(fast.is_constant(), !matches!(l4, L4::IcmpEcho), "{sp:?}");
                // The same values as one-value ranges take the stamping path.
                let mut slow_sp = sp.clone();
                slow_sp.src_ip = one_value(BASE + 9);
                slow_sp.dst_ip = one_value(DST + 3);
                if let L4::Udp { src_port, dst_port } | L4::TcpSyn { src_port, dst_port } =
                    &mut slow_sp.l4
                {
                    *src_port = one_value(src_port.bounds().0);
                    *dst_port = one_value(dst_port.bounds().0);
                }
                slow_sp.size = SizeSpec::Range(one_value(size));
                let mut slow = Stream::new(slow_sp, 1500).unwrap();
                assert!(!slow.is_constant());
                for seq in 0..4u64 {
                    let f = fill_one(&mut fast, &pool, seq, 0);
                    check_frame(&f, &sp, seq, 0);
                    assert_eq!(f.len() + FCS_LEN, size as usize);
                    assert_eq!(f, fill_one(&mut slow, &pool, seq, 0), "{sp:?} seq {seq}");
                    let mut buf = vec![0u8; 2000];
                    let n = fast.write_frame(&mut buf, seq, 0).unwrap();
                    assert_eq!(&buf[..n], &f[..]);
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 3 * 2 * 6 * 4);
}

#[test]
fn any_mix_of_fixed_and_varying_fields_stamps_valid_frames() {
    // Fixed fields are not rewritten per packet: every combination must still give the
    // right values and checksums.
    let pool = pool(2048);
    let mut checked = 0;
    for l4_kind in 0..3 {
        for mask in 0u8..16 {
            let (vary_ips, vary_ports, vary_size, signature) =
                (mask & 1 != 0, mask & 2 != 0, mask & 4 != 0, mask & 8 != 0);
            let port = |vary: bool, base: u16| {
                if vary {
                    FieldRange::Seq {
                        start: base,
                        end: base + 7,
                        step: 3,
                    }
                } else {
                    FieldRange::Fixed(base)
                }
            };
            let l4 = match l4_kind {
                0 => udp(port(vary_ports, 1000), port(vary_ports, 53)),
                1 => L4::TcpSyn {
                    src_port: port(vary_ports, 40000),
                    dst_port: port(vary_ports, 80),
                },
                _ => L4::IcmpEcho,
            };
            let min = min_frame_size(false, &l4, signature);
            let size = if vary_size {
                SizeSpec::Range(FieldRange::Random {
                    start: min,
                    end: min + 61,
                })
            } else {
                SizeSpec::Fixed(min + 3)
            };
            let mut sp = spec(l4, None, size);
            sp.signature = signature;
            if !vary_ips {
                sp.src_ip = FieldRange::Fixed(BASE + 77);
                sp.dst_ip = FieldRange::Fixed(DST + 5);
            }
            let mut s = Stream::new(sp.clone(), 1500).unwrap();
            let mut seen = BTreeSet::new();
            for seq in 0..24u64 {
                let tsc = 0x0abc_0000 + seq * 31;
                let f = fill_one(&mut s, &pool, seq, tsc);
                check_frame(&f, &sp, seq, tsc);
                seen.insert(f);
                checked += 1;
            }
            // Frames differ exactly when something varies (ICMP has no ports; its echo
            // sequence number always varies).
            let varies = vary_ips || vary_ports || vary_size || signature || l4_kind == 2;
            assert_eq!(seen.len() > 1, varies, "{sp:?}");
            assert_eq!(s.is_constant(), !varies, "{sp:?}");
        }
    }
    assert_eq!(checked, 3 * 16 * 24);
}

#[test]
fn template_is_a_valid_frame() {
    for l4 in l4_variants() {
        let s = Stream::new(spec(l4, Some(5), SizeSpec::Fixed(300)), 1500).unwrap();
        assert_eq!(s.template().len(), 296);
        let t = s.template();
        let eth = EthernetFrame::new_checked(t).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(u32::from(ip.src_addr()), BASE + 1);
        assert_eq!(u32::from(ip.dst_addr()), DST);
        assert_eq!(s.payload_offset(), 18 + 20 + s.spec().l4.header_len());
    }
}

#[test]
fn jumbo_frames_through_write_frame() {
    let mut sp = spec(
        udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
        None,
        SizeSpec::Range(FieldRange::Random {
            start: 64,
            end: 9018,
        }),
    );
    sp.payload = Payload::Pattern((0..=255).rev().collect());
    let mut s = Stream::new(sp.clone(), 9000).unwrap();
    assert_eq!(s.frame_len().max, 9018);
    let mut buf = vec![0u8; 9014];
    for seq in 0..200 {
        let n = s.write_frame(&mut buf, seq, seq * 3).unwrap();
        check_frame(&buf[..n], &sp, seq, seq * 3);
    }
    // Too short a buffer: None and the stream does not advance.
    let mut small = [0u8; 50];
    let mut t = s.clone();
    assert_eq!(s.write_frame(&mut small, 0, 0), None);
    let (a, b) = (
        s.write_frame(&mut buf, 1, 1).unwrap(),
        t.write_frame(&mut buf.clone(), 1, 1).unwrap(),
    );
    assert_eq!(a, b);
}

#[test]
fn sizes_are_exact() {
    let pool = pool(2048);
    let u = || udp(FieldRange::Fixed(9), FieldRange::Fixed(9));
    for (vlan, size, len) in [
        (None, 64, 60),
        (None, 1518, 1514),
        (Some(1), 68, 64),
        (Some(1), 1522, 1518),
    ] {
        let mut s = Stream::new(spec(u(), vlan, SizeSpec::Fixed(size)), 1500).unwrap();
        for seq in 0..3 {
            assert_eq!(fill_one(&mut s, &pool, seq, 0).len(), len);
        }
    }
    let mut s = Stream::new(
        spec(
            u(),
            None,
            SizeSpec::Range(FieldRange::Seq {
                start: 64,
                end: 70,
                step: 2,
            }),
        ),
        1500,
    )
    .unwrap();
    let lens: Vec<usize> = (0..9)
        .map(|q| fill_one(&mut s, &pool, q, 0).len())
        .collect();
    assert_eq!(lens, [60, 62, 64, 66, 60, 62, 64, 66, 60]);
    assert_eq!(
        s.frame_len(),
        FrameLen {
            min: 64,
            max: 70,
            mean: 67.0
        }
    );
}

#[test]
fn seq_ranges_wrap() {
    let mut sp = spec(
        udp(
            FieldRange::Seq {
                start: 65530,
                end: 65535,
                step: 4,
            },
            FieldRange::Seq {
                start: 10,
                end: 14,
                step: 3,
            },
        ),
        None,
        SizeSpec::Fixed(64),
    );
    sp.src_ip = FieldRange::Seq {
        start: u32::MAX - 1,
        end: u32::MAX,
        step: 1,
    };
    sp.dst_ip = FieldRange::Seq {
        start: DST,
        end: DST + 4,
        step: 2,
    };
    let mut s = Stream::new(sp, 1500).unwrap();
    let mut buf = [0u8; 60];
    let mut got = vec![];
    for seq in 0..7 {
        s.write_frame(&mut buf, seq, 0).unwrap();
        let ip = Ipv4Packet::new_checked(&buf[14..]).unwrap();
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        got.push((
            u32::from(ip.src_addr()),
            u32::from(ip.dst_addr()),
            u.src_port(),
            u.dst_port(),
        ));
    }
    let m = u32::MAX;
    assert_eq!(
        got,
        [
            (m - 1, DST, 65530, 10),
            (m, DST + 2, 65534, 13),
            (m - 1, DST + 4, 65530, 10),
            (m, DST, 65534, 13),
            (m - 1, DST + 2, 65530, 10),
            (m, DST + 4, 65534, 13),
            (m - 1, DST, 65530, 10),
        ]
    );
}

#[test]
fn random_ranges_stay_in_range_and_are_uniform() {
    let mut sp = spec(
        udp(
            FieldRange::Random {
                start: 0,
                end: u16::MAX,
            },
            FieldRange::Fixed(1),
        ),
        None,
        SizeSpec::Range(FieldRange::Random { start: 64, end: 73 }),
    );
    sp.src_ip = FieldRange::ip_random(Ipv4Addr::new(198, 18, 0, 0), Ipv4Addr::new(198, 18, 0, 9));
    sp.dst_ip = FieldRange::Random {
        start: 0,
        end: u32::MAX,
    };
    let mut s = Stream::new(sp, 1500).unwrap();
    let n = 100_000;
    let mut ips: HashMap<u32, u32> = HashMap::new();
    let mut sizes: HashMap<usize, u32> = HashMap::new();
    let (mut port_sum, mut port_min, mut port_max) = (0u64, u16::MAX, 0u16);
    let mut high_dst = 0u32;
    let mut buf = [0u8; 100];
    for seq in 0..n {
        let len = s.write_frame(&mut buf, seq, 0).unwrap();
        *sizes.entry(len + FCS_LEN).or_default() += 1;
        let ip = Ipv4Packet::new_checked(&buf[14..len]).unwrap();
        *ips.entry(u32::from(ip.src_addr())).or_default() += 1;
        high_dst += (u32::from(ip.dst_addr()) >= 1 << 31) as u32;
        let p = UdpPacket::new_checked(ip.payload()).unwrap().src_port();
        port_sum += p as u64;
        port_min = port_min.min(p);
        port_max = port_max.max(p);
    }
    fn uniform<K>(counts: &HashMap<K, u32>, buckets: usize, n: u64) {
        assert_eq!(counts.len(), buckets);
        let want = n as f64 / buckets as f64;
        for &c in counts.values() {
            assert!((c as f64 - want).abs() < want * 0.05, "{c} vs {want}");
        }
    }
    uniform(&ips, 10, n);
    assert!(ips.keys().all(|&a| (BASE..=BASE + 9).contains(&a)));
    uniform(&sizes, 10, n);
    assert!(sizes.keys().all(|&l| (64..=73).contains(&l)));
    let mean = port_sum as f64 / n as f64;
    assert!((mean - 32767.5).abs() < 400.0, "{mean}");
    assert!(port_min < 100 && port_max > 65435);
    // The full 32-bit range reaches both halves evenly.
    assert!((high_dst as f64 - n as f64 / 2.0).abs() < n as f64 * 0.01);
}

#[test]
fn imix_proportions_hold() {
    let pool = pool(2048);
    let mut s = Stream::new(
        spec(
            udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
            None,
            SizeSpec::simple_imix(),
        ),
        1500,
    )
    .unwrap();
    let fl = s.frame_len();
    assert_eq!((fl.min, fl.max), (64, 1518));
    assert!((fl.mean - (7.0 * 64.0 + 4.0 * 594.0 + 1518.0) / 12.0).abs() < 1e-9);
    let n = 100_000;
    let mut counts: HashMap<usize, u64> = HashMap::new();
    let mut first12 = vec![];
    for seq in 0..n {
        let len = fill_one(&mut s, &pool, seq, 0).len() + FCS_LEN;
        *counts.entry(len).or_default() += 1;
        if seq < 12 {
            first12.push(len);
        }
    }
    for (size, w) in [(64usize, 7.0), (594, 4.0), (1518, 1.0)] {
        let share = counts[&size] as f64 / n as f64;
        let want = w / 12.0;
        assert!(
            (share - want).abs() < want * 0.02,
            "{size}: {share} vs {want}"
        );
    }
    // One cycle of 12 holds exactly 7/4/1 (and is shuffled, not sorted).
    first12.sort_unstable();
    assert_eq!(
        first12,
        [64, 64, 64, 64, 64, 64, 64, 594, 594, 594, 594, 1518]
    );

    // Weights summing past the 4096-slot cycle are scaled; a tiny weight keeps a slot.
    let mut s = Stream::new(
        spec(
            udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
            None,
            SizeSpec::Imix(vec![(64, 3_000_000), (128, 1_000_000), (256, 1)]),
        ),
        1500,
    )
    .unwrap();
    let mut counts: HashMap<usize, u64> = HashMap::new();
    let mut buf = [0u8; 300];
    for seq in 0..4096 * 10 {
        let len = s.write_frame(&mut buf, seq, 0).unwrap() + FCS_LEN;
        *counts.entry(len).or_default() += 1;
    }
    assert_eq!(counts[&256], 10);
    let share64 = counts[&64] as f64 / (4096.0 * 10.0);
    assert!((share64 - 0.75).abs() < 1.0 / 4096.0 + 1e-9, "{share64}");
}

fn err_of(sp: StreamSpec, mtu: u16) -> StreamError {
    Stream::new(sp, mtu).unwrap_err()
}

#[test]
fn validation_names_field_and_valid_values() {
    let u = || udp(FieldRange::Fixed(1), FieldRange::Fixed(2));
    let tcp = L4::TcpSyn {
        src_port: FieldRange::Fixed(1),
        dst_port: FieldRange::Fixed(2),
    };

    // A 64-byte frame has room for UDP + signature, not with a VLAN tag too.
    assert!(Stream::new(spec(u(), None, SizeSpec::Fixed(64)), 1500).is_ok());
    let e = err_of(spec(u(), Some(3), SizeSpec::Fixed(64)), 1500);
    assert_eq!(e.field, "size");
    let msg = e.to_string();
    assert!(
        msg.contains("minimum of 68") && msg.contains("68..=1522"),
        "{msg}"
    );
    assert!(msg.starts_with("stream 7: size: "), "{msg}");

    // TCP SYN with a signature needs 76 bytes.
    let e = err_of(spec(tcp.clone(), None, SizeSpec::Fixed(64)), 1500);
    assert!(e.problem.contains("minimum of 76"), "{e}");
    let mut no_sig = spec(tcp, None, SizeSpec::Fixed(64));
    no_sig.signature = false;
    assert!(Stream::new(no_sig, 1500).is_ok());

    let e = err_of(spec(u(), None, SizeSpec::Fixed(1519)), 1500);
    assert!(
        e.problem.contains("maximum of 1518") && e.problem.contains("MTU 1500"),
        "{e}"
    );
    let e = err_of(spec(u(), None, SizeSpec::Fixed(63)), 9000);
    assert!(e.problem.contains("64..=9018"), "{e}");

    let e = err_of(
        spec(
            u(),
            None,
            SizeSpec::Range(FieldRange::Random {
                start: 100,
                end: 90,
            }),
        ),
        1500,
    );
    assert_eq!(e.field, "size");
    assert!(
        e.problem.contains("start 100 is greater than end 90"),
        "{e}"
    );

    let e = err_of(
        spec(u(), None, SizeSpec::Imix(vec![(64, 1), (128, 0)])),
        1500,
    );
    assert_eq!(e.field, "size.imix[1].weight");
    let e = err_of(
        spec(u(), None, SizeSpec::Imix(vec![(64, 1), (2000, 1)])),
        1500,
    );
    assert_eq!(e.field, "size.imix[1].size");
    let e = err_of(spec(u(), None, SizeSpec::Imix(vec![])), 1500);
    assert_eq!(e.field, "size.imix");

    let mut sp = spec(u(), None, SizeSpec::Fixed(64));
    sp.src_ip = FieldRange::Seq {
        start: 1,
        end: 2,
        step: 0,
    };
    let e = err_of(sp, 1500);
    assert_eq!(e.field, "src_ip");
    assert!(e.problem.contains("step >= 1"), "{e}");

    let e = err_of(
        spec(
            udp(
                FieldRange::Fixed(1),
                FieldRange::Random { start: 9, end: 8 },
            ),
            None,
            SizeSpec::Fixed(64),
        ),
        1500,
    );
    assert_eq!(e.field, "l4.dst_port");

    let e = err_of(spec(u(), Some(4096), SizeSpec::Fixed(68)), 1500);
    assert_eq!(e.field, "vlan");
    assert!(e.problem.contains("0..=4095"));

    let mut sp = spec(u(), None, SizeSpec::Fixed(64));
    sp.payload = Payload::Pattern(vec![]);
    assert_eq!(err_of(sp, 1500).field, "payload");

    let e = err_of(spec(u(), None, SizeSpec::Fixed(64)), 40);
    assert!(e.problem.contains("raise the MTU to at least 46"), "{e}");
}

#[test]
fn fill_refuses_what_does_not_fit_without_advancing() {
    let small = pool(128);
    let mut s = Stream::new(
        spec(
            udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
            None,
            SizeSpec::Range(FieldRange::Seq {
                start: 100,
                end: 200,
                step: 50,
            }),
        ),
        1500,
    )
    .unwrap();
    let mut reference = s.clone();
    let mut m = small.alloc().unwrap();
    assert!(s.fill(&mut m, 0, 0)); // 100
    assert_eq!(m.data_len(), 96);
    let mut m = small.alloc().unwrap();
    assert!(!s.fill(&mut m, 1, 0)); // 150 > 128-byte data room
    assert!(!s.fill(&mut m, 1, 0));
    assert_eq!(m.data_len(), 0);
    // The refused size is still next.
    let mut a = [0u8; 300];
    let mut b = [0u8; 300];
    reference.write_frame(&mut b, 0, 0).unwrap();
    let la = s.write_frame(&mut a, 1, 0).unwrap();
    let lb = reference.write_frame(&mut b, 1, 0).unwrap();
    assert_eq!((la, &a[..la]), (lb, &b[..lb]));
    assert_eq!(la, 146);

    // A shared mbuf is never written.
    let p = pool(2048);
    let mut orig = p.alloc().unwrap();
    orig.append(10).unwrap().fill(0xaa);
    let mut clone: Mbuf = orig.clone_into(&p).unwrap();
    assert!(!s.fill(&mut clone, 0, 0));
    assert!(!s.fill(&mut orig, 0, 0));
    assert_eq!(orig.data(), &[0xaa; 10]);
}

#[test]
fn reset_and_reseed_repeat_or_change_the_sequence() {
    let sp = spec(
        udp(
            FieldRange::Random {
                start: 0,
                end: 65535,
            },
            FieldRange::Fixed(2),
        ),
        None,
        SizeSpec::simple_imix(),
    );
    let mut s = Stream::new(sp.clone(), 1500).unwrap();
    let run = |s: &mut Stream| -> Vec<Vec<u8>> {
        let mut buf = [0u8; 1514];
        (0..50)
            .map(|q| {
                let n = s.write_frame(&mut buf, q, q).unwrap();
                buf[..n].to_vec()
            })
            .collect()
    };
    let first = run(&mut s);
    s.reset();
    assert_eq!(run(&mut s), first);
    // The same spec gives the same frames; another seed other ones.
    assert_eq!(run(&mut Stream::new(sp.clone(), 1500).unwrap()), first);
    let mut other = Stream::new(sp, 1500).unwrap();
    other.reseed(42);
    assert_ne!(run(&mut other), first);
}

/// Inserts a QinQ S-tag in front of a frame's (untagged) EtherType.
fn add_qinq(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x05, 0x81, 0x00, 0x00, 0x06]);
    f.extend_from_slice(&frame[12..]);
    f
}

#[test]
fn find_on_real_frames() {
    let pool = pool(2048);
    for l4 in l4_variants() {
        let mut s = Stream::new(spec(l4.clone(), None, SizeSpec::Fixed(128)), 1500).unwrap();
        let f = fill_one(&mut s, &pool, 99, 12345);
        let want = Signature {
            stream: 7,
            seq: 99,
            tx_tsc: 12345,
        };
        assert_eq!(Signature::find(&f), Some(want));
        // Ethernet padding after the IP packet is ignored.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(Signature::find(&padded), Some(want));
        // QinQ.
        assert_eq!(Signature::find(&add_qinq(&f)), Some(want));
        // Any truncation: the IP total length no longer fits, so None.
        for cut in 0..f.len() {
            assert_eq!(Signature::find(&f[..cut]), None, "{l4:?} cut at {cut}");
        }
        // A fragment is not analysed.
        let mut frag = f.clone();
        frag[14 + 6] |= 0x20;
        assert_eq!(Signature::find(&frag), None);
        // Neither is another protocol or EtherType.
        let mut other = f.clone();
        other[14 + 9] = 47;
        assert_eq!(Signature::find(&other), None);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(Signature::find(&arp), None);
    }
    // An echo reply (from a Linux peer) carries the signature back.
    let mut s = Stream::new(spec(L4::IcmpEcho, None, SizeSpec::Fixed(100)), 1500).unwrap();
    let mut f = fill_one(&mut s, &pool, 5, 6);
    let mut icmp = Icmpv4Packet::new_unchecked(&mut f[34..]);
    icmp.make_echo_reply();
    assert!(icmp.verify_checksum());
    assert_eq!(Signature::find(&f).map(|s| s.seq), Some(5));
    // Other ICMP types are not.
    f[34] = 3;
    assert_eq!(Signature::find(&f), None);
    // A frame whose IP header claims more than the frame holds.
    let mut s = Stream::new(
        spec(
            udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
            None,
            SizeSpec::Fixed(64),
        ),
        1500,
    )
    .unwrap();
    let mut f = fill_one(&mut s, &pool, 1, 1);
    assert!(Signature::find(&f).is_some());
    f[16..18].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        Ipv4Packet::new_checked(&f[14..]).err(),
        Some(WireError::BadTotalLength)
    );
    assert_eq!(Signature::find(&f), None);
    // An IP packet cut (by its own total length) inside the UDP datagram.
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    assert_eq!(Signature::find(&f), None);
}

proptest! {
    #[test]
    fn find_survives_mutations(
        l4 in 0usize..3,
        seq in 0u64..1 << 48,
        tsc: u64,
        cut in 0usize..200,
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 0..4),
    ) {
        let mut s = Stream::new(spec(l4_variants()[l4].clone(), None, SizeSpec::Fixed(150)), 1500).unwrap();
        let mut buf = [0u8; 146];
        let n = s.write_frame(&mut buf, seq, tsc).unwrap();
        let whole = Signature::find(&buf[..n]);
        prop_assert_eq!(whole, Some(Signature { stream: 7, seq, tx_tsc: tsc }));
        let cut = cut.min(n);
        let found = Signature::find(&buf[..cut]);
        prop_assert!(found.is_none() || cut == n);
        for (at, v) in flips {
            if at < n {
                buf[at] = v;
            }
        }
        let _ = Signature::find(&buf[..n]);
        let _ = Signature::find(&buf[..cut]);
    }
}

// ---------------------------------------------------------------------------------------------
// Analyzer

const HZ: u64 = 1_000_000_000; // 1 tick = 1 ns

fn analyzer(streams: usize) -> Analyzer {
    Analyzer::new(&AnalyzerConfig::new(streams, HZ)).unwrap()
}

fn sig(stream: u16, seq: u64, tx_tsc: u64) -> Signature {
    Signature {
        stream,
        seq,
        tx_tsc,
    }
}

/// Records a seq with a latency of `lat` ticks and a 60-byte frame.
fn rec(a: &mut Analyzer, stream: u16, seq: u64, lat: u64) {
    a.record_signature(
        &sig(stream, seq, 1_000_000 + seq),
        60,
        1_000_000 + seq + lat,
    );
}

#[test]
fn in_order_stream() {
    let mut a = analyzer(2);
    for q in 0..1000 {
        rec(&mut a, 1, q, 500);
    }
    let st = a.stream(1).unwrap();
    assert_eq!(
        (st.packets, st.bytes, st.unique(), st.lost()),
        (1000, 60_000, 1000, 0)
    );
    assert_eq!(
        (st.duplicates, st.reordered, st.highest_seq),
        (0, 0, Some(999))
    );
    assert_eq!(st.first_rx_tsc, Some(1_000_500));
    assert_eq!(st.last_rx_tsc, Some(1_000_000 + 999 + 500));
    let l = st.latency_summary().unwrap();
    assert_eq!((l.count, l.min_ns, l.max_ns), (1000, 500, 500));
    assert_eq!(a.stream(0).unwrap().packets, 0);
    assert!(a.stream(0).unwrap().latency_summary().is_none());
}

#[test]
fn loss_counts_gaps_and_the_tail_once_tx_is_known() {
    let mut a = analyzer(1);
    for q in (0..995).filter(|q| !(10..20).contains(q)) {
        rec(&mut a, 0, q, 1);
    }
    let mut stats = a.snapshot();
    assert_eq!(stats.streams[0].lost(), 10);
    assert_eq!(stats.streams[0].expected(), 995);
    stats.finalize(&[1000]);
    assert_eq!(stats.streams[0].lost(), 15);
    assert_eq!(stats.streams[0].tx_sent, Some(1000));
}

#[test]
fn duplicates_are_counted_once() {
    let mut a = analyzer(1);
    for q in 0..100 {
        rec(&mut a, 0, q, 10);
        if q % 10 == 0 {
            rec(&mut a, 0, q, 10_000); // an immediate copy (s == highest)
        }
    }
    rec(&mut a, 0, 50, 10_000); // an older copy, inside the window
    let st = a.stream(0).unwrap();
    assert_eq!((st.packets, st.duplicates, st.unique()), (111, 11, 100));
    assert_eq!((st.lost(), st.reordered), (0, 0));
    // Copies add no latency samples.
    assert_eq!(st.latency.len(), 100);
    assert_eq!(st.latency_summary().unwrap().max_ns, 10);
}

#[test]
fn reordering_is_late_arrival() {
    let mut a = analyzer(1);
    // Pairs swapped: 1 0 3 2 5 4 ...
    for q in 0..100u64 {
        rec(&mut a, 0, q ^ 1, 5);
    }
    let st = a.stream(0).unwrap();
    assert_eq!((st.reordered, st.duplicates, st.lost()), (50, 0, 0));
    // A late packet that arrives after a loss gap is still not lost.
    let mut a = analyzer(1);
    for q in [0, 1, 5, 6, 2, 3, 4, 7] {
        rec(&mut a, 0, q, 5);
    }
    let st = a.stream(0).unwrap();
    assert_eq!((st.reordered, st.lost(), st.unique()), (3, 0, 8));
}

#[test]
fn window_overflow_and_big_jumps() {
    let mut cfg = AnalyzerConfig::new(1, HZ);
    cfg.window = 64;
    let mut a = Analyzer::new(&cfg).unwrap();
    for q in 0..1000 {
        rec(&mut a, 0, q, 1);
    }
    rec(&mut a, 0, 999 - 63, 1); // inside the window: a duplicate
    assert_eq!(a.stream(0).unwrap().duplicates, 1);
    rec(&mut a, 0, 999 - 64, 1); // beyond it: taken as late (documented)
    rec(&mut a, 0, 10, 1);
    let st = a.stream(0).unwrap();
    assert_eq!((st.duplicates, st.reordered), (1, 2));
    // A jump of more than the window clears it: an earlier seq just below the new highest
    // is late, not a duplicate, and the old bits are gone.
    rec(&mut a, 0, 100_000, 1);
    rec(&mut a, 0, 99_990, 1);
    let same_bit = (100_000 - 63..100_000)
        .find(|s| s % 64 == 999 % 64)
        .unwrap();
    rec(&mut a, 0, same_bit, 1); // the bit 999 had set, cleared by the jump
    let st = a.stream(0).unwrap();
    assert_eq!((st.duplicates, st.reordered), (1, 4));
    assert_eq!(st.highest_seq, Some(100_000));
}

/// A reference model of the sequence classification: a full set of received seqs.
fn model(seqs: &[u64], window: u64) -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let mut highest: Option<u64> = None;
    let (mut dup, mut late) = (0, 0);
    for &s in seqs {
        match highest {
            Some(h) if s <= h => {
                if h - s < window && seen.contains(&s) {
                    dup += 1;
                } else {
                    late += 1;
                    seen.insert(s);
                }
            }
            _ => {
                highest = Some(s);
                seen.insert(s);
            }
        }
    }
    (dup, late)
}

proptest! {
    #[test]
    fn window_matches_a_set_model(seqs in proptest::collection::vec(0u64..400, 1..600)) {
        let mut cfg = AnalyzerConfig::new(1, HZ);
        cfg.window = 64;
        let mut a = Analyzer::new(&cfg).unwrap();
        for &s in &seqs {
            rec(&mut a, 0, s, 1);
        }
        let st = a.stream(0).unwrap();
        prop_assert_eq!((st.duplicates, st.reordered), model(&seqs, 64));
        prop_assert_eq!(st.packets, seqs.len() as u64);
    }
}

#[test]
fn merge_of_queues_splitting_a_stream() {
    // RSS sends even seqs to queue 0, odd ones to queue 1; 10 odd ones are lost.
    let (mut q0, mut q1) = (analyzer(2), analyzer(2));
    for q in 0..1000u64 {
        if q % 2 == 0 {
            rec(&mut q0, 0, q, 100);
        } else if !(500..520).contains(&q) {
            rec(&mut q1, 0, q, 300);
        }
    }
    rec(&mut q1, 1, 0, 7);
    assert!(q0.record(&[0u8; 60], 0).is_none());
    let mut total = q0.snapshot();
    total.merge(&q1.snapshot()).unwrap();
    let st = &total.streams[0];
    assert_eq!((st.packets, st.unique(), st.lost()), (990, 990, 10));
    assert_eq!((st.reordered, st.duplicates), (0, 0));
    assert_eq!(st.highest_seq, Some(999));
    assert_eq!(st.latency.len(), 990);
    let l = st.latency_summary().unwrap();
    assert_eq!((l.min_ns, l.max_ns, l.p50_ns), (100, 300, 100));
    assert_eq!(total.streams[1].packets, 1);
    assert_eq!(total.no_signature, 1);
    // Per queue, each half looks lossy; merged it is not.
    assert!(q0.stream(0).unwrap().lost() > 0);

    // Histograms of other bounds cannot be merged.
    let mut cfg = AnalyzerConfig::new(2, HZ);
    cfg.latency_max_ns = 1000;
    let mut small = Analyzer::new(&cfg).unwrap();
    rec(&mut small, 0, 0, 1);
    let mut big = q0.snapshot();
    assert!(big.merge(&small.snapshot()).is_ok()); // small values fit
    let mut slow = analyzer(2);
    rec(&mut slow, 0, 0, 5_000_000);
    let mut tiny = small.snapshot();
    assert!(matches!(
        tiny.merge(&slow.snapshot()),
        Err(AnalyzerError::Merge(_))
    ));

    // More streams on the other side are copied over.
    let mut one = analyzer(1).snapshot();
    one.merge(&total).unwrap();
    assert_eq!(one.streams.len(), 2);
}

#[test]
fn latency_percentiles_of_a_known_distribution() {
    // 2.5 GHz TSC: 2500 ticks per µs.
    let mut a = Analyzer::new(&AnalyzerConfig::new(1, 2_500_000_000)).unwrap();
    // Latencies 1 µs ..= 10 ms, one of each microsecond, sent in order.
    let n = 10_000u64;
    for i in 0..n {
        let lat_ticks = (i + 1) * 2500;
        let tx = 5_000_000 + i * 10;
        a.record_signature(&sig(0, i, tx), 60, tx + lat_ticks);
    }
    let l = a.stream(0).unwrap().latency_summary().unwrap();
    let close = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.001 + 1.0;
    assert_eq!(l.count, n);
    assert!(close(l.min_ns, 1_000.0), "{l:?}");
    assert!(close(l.p50_ns, 5_000_000.0), "{l:?}");
    assert!(close(l.p90_ns, 9_000_000.0), "{l:?}");
    assert!(close(l.p99_ns, 9_900_000.0), "{l:?}");
    assert!(close(l.p999_ns, 9_990_000.0), "{l:?}");
    assert!(close(l.max_ns, 10_000_000.0), "{l:?}");
    assert!(
        (l.mean_ns - 5_000_500.0).abs() < 5_000_500.0 * 0.001,
        "{l:?}"
    );
}

#[test]
fn odd_inputs_are_counted_not_recorded() {
    let mut a = analyzer(1);
    // Received "before" it was sent.
    a.record_signature(&sig(0, 0, 1000), 60, 999);
    // An unknown stream id.
    a.record_signature(&sig(3, 0, 0), 60, 1);
    // A latency above the histogram's range is clamped, not grown.
    let distinct = a.stream(0).unwrap().latency.distinct_values();
    a.record_signature(&sig(0, 1, 0), 60, 1_000 * HZ);
    let st = a.stream(0).unwrap();
    assert_eq!((st.negative_latency, st.latency.len()), (1, 1));
    assert!(!st.latency.is_auto_resize());
    assert_eq!(st.latency.distinct_values(), distinct);
    assert!(st.latency.max() >= DEFAULT_LATENCY_MAX_NS);
    assert_eq!(a.unknown_stream(), 1);
    assert_eq!(a.snapshot().unknown_stream, 1);
}

#[test]
fn record_parses_frames_end_to_end() {
    let pool = pool(2048);
    let mut streams: Vec<Stream> = (0..2u16)
        .map(|id| {
            let mut sp = spec(
                l4_variants()[id as usize].clone(),
                None,
                SizeSpec::Fixed(128),
            );
            sp.id = id;
            Stream::new(sp, 1500).unwrap()
        })
        .collect();
    let mut a = analyzer(2);
    for q in 0..100 {
        for s in streams.iter_mut() {
            let mut m = pool.alloc().unwrap();
            assert!(s.fill(&mut m, q, 1000 * q));
            assert!(a.record(m.data(), 1000 * q + 777).is_some());
        }
    }
    for id in 0..2 {
        let st = a.stream(id).unwrap();
        assert_eq!((st.packets, st.bytes, st.lost()), (100, 12_400, 0));
        assert_eq!(st.latency_summary().unwrap().p50_ns, 777);
    }
}

#[test]
fn snapshot_into_and_reset_reuse_storage() {
    let mut a = analyzer(3);
    for q in 0..50 {
        rec(&mut a, 2, q, q + 1);
    }
    let mut out = a.snapshot();
    for q in 50..100 {
        rec(&mut a, 2, q, q + 1);
    }
    a.snapshot_into(&mut out);
    let st = &out.streams[2];
    assert_eq!((st.packets, st.latency.len()), (100, 100));
    assert_eq!(st.latency_summary().unwrap().max_ns, 100);
    a.reset();
    assert_eq!(a.stream(2).unwrap().packets, 0);
    assert_eq!(a.stream(2).unwrap().highest_seq, None);
    // After a reset, seq 0 is new again, not a duplicate.
    rec(&mut a, 2, 0, 1);
    assert_eq!(a.stream(2).unwrap().duplicates, 0);
    a.snapshot_into(&mut out);
    assert_eq!(out.streams[2].latency.len(), 1);
    // A smaller analyzer shrinks the snapshot.
    analyzer(1).snapshot_into(&mut out);
    assert_eq!(out.streams.len(), 1);
}

#[test]
fn analyzer_config_is_checked() {
    let bad = |f: fn(&mut AnalyzerConfig)| {
        let mut c = AnalyzerConfig::new(4, HZ);
        f(&mut c);
        match Analyzer::new(&c) {
            Err(AnalyzerError::Config { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(bad(|c| c.streams = 0), "streams");
    assert_eq!(bad(|c| c.tsc_hz = 0), "tsc_hz");
    assert_eq!(bad(|c| c.window = 1000), "window");
    assert_eq!(bad(|c| c.window = 32), "window");
    assert_eq!(bad(|c| c.latency_max_ns = 1), "latency_max_ns");
    assert_eq!(bad(|c| c.latency_sigfig = 6), "latency_sigfig");
}

// ---------------------------------------------------------------------------------------------
// Pacer

const TSC: u64 = 2_500_000_000;

/// Runs a pacer on simulated time for `secs` seconds with pseudo-random turn lengths of up to
/// `max_turn` ticks, sending everything it allows; returns (packets, largest allowance).
fn simulate(p: &mut Pacer, secs: u64, max_turn: u64) -> (u64, usize) {
    let mut rng = super::WyRand::new(1);
    let (mut now, mut sent, mut largest) = (1_000_000u64, 0u64, 0usize);
    let end = now + secs * TSC;
    while now < end {
        let n = p.allowance(now);
        largest = largest.max(n);
        p.sent(n);
        sent += n as u64;
        now += 1 + rng.below(max_turn) as u64;
    }
    (sent, largest)
}

fn assert_rate(got: u64, want: f64) {
    assert!(
        (got as f64 - want).abs() <= want * 0.001,
        "{got} packets, want {want}"
    );
}

#[test]
fn pps_long_run_rate_is_exact() {
    for pps in [1.0e3, 1.234_567e6, 14.88e6] {
        let mut p = Pacer::new(Rate::Pps(pps), 64.0, 32, TSC).unwrap();
        let (sent, largest) = simulate(&mut p, 2, 2_000);
        assert_rate(sent, 2.0 * pps);
        assert!(largest <= 32);
        assert_eq!(p.skipped(), 0);
    }
}

#[test]
fn bit_rates_with_and_without_l1_overhead() {
    let secs = 2;
    let cases = [
        (
            Rate::Bps {
                bits_per_sec: 1e9,
                l1_overhead: false,
            },
            64.0,
            1e9 / 512.0,
        ),
        (
            Rate::Bps {
                bits_per_sec: 1e9,
                l1_overhead: true,
            },
            64.0,
            1e9 / 672.0,
        ),
        (
            Rate::Bps {
                bits_per_sec: 5e9,
                l1_overhead: true,
            },
            353.833,
            5e9 / (373.833 * 8.0),
        ),
        (Rate::LineRate { link_bps: 10e9 }, 64.0, 14_880_952.38),
        (Rate::LineRate { link_bps: 10e9 }, 1518.0, 812_743.8),
    ];
    for (rate, size, pps) in cases {
        let mut p = Pacer::new(rate, size, 64, TSC).unwrap();
        assert!((p.pps().unwrap() - pps).abs() < pps * 1e-6, "{rate}");
        let (sent, _) = simulate(&mut p, secs, 3_000);
        assert_rate(sent, pps * secs as f64);
    }
}

#[test]
fn stalls_are_caught_up_by_at_most_one_burst() {
    let mut p = Pacer::new(Rate::Pps(1e6), 64.0, 16, TSC).unwrap(); // 2500 ticks apart
    let t0 = 10_000_000u64;
    assert_eq!(p.allowance(t0), 1);
    p.sent(1);
    assert_eq!(p.allowance(t0 + 2499), 0);
    assert_eq!(p.allowance(t0 + 2500), 1);
    assert_eq!(p.allowance(t0 + 2500 * 5), 5); // not sent yet: still owed
    p.sent(5);
    assert_eq!(p.next_due_tsc(), Some(t0 + 6 * 2500));
    // A 1 ms stall owes 1000 packets: one burst is allowed, the rest forgiven.
    let t1 = t0 + 6 * 2500 + 2_500_000;
    assert_eq!(p.allowance(t1), 16);
    assert_eq!(p.skipped(), 1001 - 16);
    p.sent(16);
    // Back on schedule: the next packet is one interval later.
    assert_eq!(p.allowance(t1), 0);
    assert_eq!(p.allowance(t1 + 2499), 0);
    assert_eq!(p.allowance(t1 + 2500), 1);
    // A tx queue that takes only part of an allowance leaves the rest due.
    assert_eq!(p.allowance(t1 + 2500 * 4), 4);
    p.sent(1);
    assert_eq!(p.allowance(t1 + 2500 * 4), 3);
    // Bursts stay bounded however late the call.
    assert_eq!(p.allowance(u64::MAX / 2), 16);
    p.reset();
    assert_eq!(p.skipped(), 0);
    assert_eq!(p.next_due_tsc(), None);
    assert_eq!(p.allowance(5), 1);
}

#[test]
fn slow_sender_loses_rate_but_never_bursts_more() {
    // The sender needs 100 µs per turn but the rate wants 1 Mpps with bursts of 32: it sends
    // 32 per turn (320 kpps) and the rest is counted as skipped.
    let mut p = Pacer::new(Rate::Pps(1e6), 64.0, 32, TSC).unwrap();
    let mut now = 0;
    let mut sent = 0;
    for _ in 0..10_000 {
        let n = p.allowance(now);
        assert!(n <= 32);
        p.sent(n);
        sent += n as u64;
        now += 250_000;
    }
    assert_eq!(sent, 1 + 9_999 * 32);
    assert!(p.skipped() > 600_000);
}

#[test]
fn unlimited_always_allows_a_burst() {
    let mut p = Pacer::new(Rate::Unlimited, 0.0, 32, TSC).unwrap();
    for now in [0, 1, 1, 0, u64::MAX] {
        assert_eq!(p.allowance(now), 32);
        p.sent(32);
    }
    assert_eq!(p.pps(), None);
    assert_eq!(p.next_due_tsc(), None);
}

#[test]
fn pacer_rejects_bad_parameters() {
    let field = |r: Rate, size: f64, burst: usize, hz: u64| {
        Pacer::new(r, size, burst, hz).unwrap_err().field
    };
    for r in [
        Rate::Pps(0.0),
        Rate::Pps(-1.0),
        Rate::Pps(f64::NAN),
        Rate::Pps(f64::INFINITY),
        Rate::Bps {
            bits_per_sec: 0.0,
            l1_overhead: true,
        },
        Rate::LineRate {
            link_bps: f64::NEG_INFINITY,
        },
        Rate::Pps(1e-12), // one packet per 2.5e21 ticks
    ] {
        assert_eq!(field(r, 64.0, 32, TSC), "rate", "{r}");
    }
    assert_eq!(
        field(Rate::LineRate { link_bps: 1e9 }, 0.0, 32, TSC),
        "avg_frame_size"
    );
    assert_eq!(field(Rate::Pps(1.0), 64.0, 0, TSC), "burst");
    assert_eq!(field(Rate::Pps(1.0), 64.0, 1, 0), "tsc_hz");
    // The frame size does not matter for a packet rate.
    assert!(Pacer::new(Rate::Pps(1.0), 0.0, 1, TSC).is_ok());
    let msg = Pacer::new(Rate::Pps(0.0), 64.0, 1, TSC)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("pacer: rate: 0 pps"), "{msg}");
    // set_rate keeps the pacer unchanged on error.
    let mut p = Pacer::new(Rate::Pps(10.0), 64.0, 1, TSC).unwrap();
    assert!(p.set_rate(Rate::Pps(-3.0), 64.0).is_err());
    assert_eq!(p.rate(), Rate::Pps(10.0));
    assert_eq!(p.interval_ticks(), TSC as f64 / 10.0);
}

#[test]
fn limits_cap_count_and_duration() {
    let mut l = Limits {
        duration: Some(Duration::from_millis(1500)),
        count: Some(100),
    }
    .start(1000, TSC);
    assert_eq!(l.end_tsc(), Some(1000 + TSC * 3 / 2));
    assert_eq!(l.cap(32), 32);
    l.sent(90);
    assert_eq!((l.cap(32), l.remaining()), (10, Some(10)));
    assert!(!l.is_done(1000));
    assert!(l.is_done(1000 + TSC * 3 / 2));
    l.sent(10);
    assert!(l.is_done(1000));
    assert_eq!((l.cap(32), l.total_sent()), (0, 100));
    let free = Limits::UNLIMITED.start(0, TSC);
    assert_eq!(
        (free.cap(256), free.remaining(), free.end_tsc()),
        (256, None, None)
    );
    assert!(!free.is_done(u64::MAX));
}

#[test]
fn checksum_helper_agrees_with_wire() {
    // The stamped checksum equals a from-scratch computation for odd and even payloads.
    let mut s = Stream::new(
        spec(
            udp(FieldRange::Fixed(1), FieldRange::Fixed(2)),
            None,
            SizeSpec::Range(FieldRange::Seq {
                start: 64,
                end: 200,
                step: 1,
            }),
        ),
        1500,
    )
    .unwrap();
    let mut buf = [0u8; 200];
    for q in 0..137 {
        let n = s.write_frame(&mut buf, q, q).unwrap();
        let l4 = &mut buf[34..n];
        let stamped = u16::from_be_bytes([l4[6], l4[7]]);
        l4[6] = 0;
        l4[7] = 0;
        let ip = Ipv4Packet::new_checked(&buf[14..n]).unwrap();
        let ph = checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), 17, (n - 34) as u16);
        let full = checksum::finish(checksum::combine(ph, checksum::sum(&buf[34..n])));
        assert_eq!(stamped, if full == 0 { 0xffff } else { full });
    }
}
