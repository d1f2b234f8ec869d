//! The L2/L3 stack between two ring ports, frame by frame, checked against what a Linux router
//! would send: ARP replies, ARP resolution with held packets, ICMP echo replies, forwarding with
//! TTL − 1 and a correct checksum, ICMP errors (time exceeded, net unreachable, fragmentation
//! needed), fragmentation, and counted drops of malformed input. Frames are built and checked
//! with `etherparse` (an independent implementation) rather than with our own wire code.

mod common;

use common::*;
use etherparse::{
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice,
};

fn mac(m: ferroplane::port::MacAddr) -> [u8; 6] {
    m.0
}

/// An ARP frame (60 bytes, padded like a real NIC would).
fn arp(op: u16, eth_dst: [u8; 6], sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip(spa).octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ip(tpa).octets());
    f.resize(60, 0);
    f
}

struct Ip4 {
    src: &'static str,
    dst: &'static str,
    ttl: u8,
    df: bool,
}

fn header(h: &Ip4, proto: IpNumber, payload_len: usize) -> IpHeaders {
    let mut hdr = Ipv4Header::new(
        payload_len as u16,
        h.ttl,
        proto,
        ip(h.src).octets(),
        ip(h.dst).octets(),
    )
    .unwrap();
    hdr.dont_fragment = h.df;
    hdr.identification = 0x4242;
    IpHeaders::Ipv4(hdr, Ipv4Extensions::default())
}

fn udp_frame(eth_src: [u8; 6], eth_dst: [u8; 6], h: Ip4, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(header(&h, IpNumber::UDP, 8 + payload.len()))
        .udp(40000, 9);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).unwrap();
    v
}

fn ping(eth_src: [u8; 6], eth_dst: [u8; 6], h: Ip4, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ip(header(&h, IpNumber::ICMP, 8 + payload.len()))
        .icmpv4_echo_request(0x77, seq);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Parses an Ethernet/IPv4 frame and checks the IPv4 header checksum.
fn parse(f: &[u8]) -> (Ipv4Header, SlicedPacket<'_>) {
    let s = SlicedPacket::from_ethernet(f).unwrap_or_else(|e| panic!("{e:?}: {f:02x?}"));
    let hdr = match &s.net {
        Some(etherparse::NetSlice::Ipv4(v4)) => v4.header().to_header(),
        other => panic!("not IPv4: {other:?}"),
    };
    assert_eq!(
        hdr.header_checksum,
        hdr.calc_header_checksum(),
        "IPv4 checksum"
    );
    (hdr, s)
}

/// A bench where host 0 (198.18.0.2) and host 1 (198.18.1.2) are already known neighbours.
fn resolved_bench(app: &str, mtu0: u16) -> Bench {
    Bench::new(&config_text(
        app,
        mtu0,
        r#"
[[neighbours]]
ip = "198.18.0.2"
mac = "02:00:00:00:00:10"
port = "p0"
[[neighbours]]
ip = "198.18.1.2"
mac = "02:00:00:00:00:11"
port = "p1"
"#,
    ))
}

const L3FWD: &str = "name = \"l3fwd\"";

#[test]
fn answers_arp_requests_like_linux() {
    let mut b = Bench::new(&config_text(L3FWD, 1500, ""));
    let req = arp(
        1,
        [0xff; 6],
        mac(HOST0_MAC),
        "198.18.0.2",
        [0; 6],
        "198.18.0.1",
    );
    let [h0, h1] = b.exchange(0, &req);
    assert!(h1.is_empty());
    assert_eq!(h0.len(), 1, "one reply");
    let want = arp(
        2,
        mac(HOST0_MAC),
        mac(P0_MAC),
        "198.18.0.1",
        mac(HOST0_MAC),
        "198.18.0.2",
    );
    let mut want_eth = want.clone();
    want_eth[6..12].copy_from_slice(&mac(P0_MAC));
    assert_eq!(h0[0], want_eth);
    // A request for an address that is not ours gets no answer.
    let other = arp(
        1,
        [0xff; 6],
        mac(HOST0_MAC),
        "198.18.0.2",
        [0; 6],
        "198.18.0.9",
    );
    let [h0, _] = b.exchange(0, &other);
    assert!(h0.is_empty());
    assert_eq!(b.count("arp", "request_not_for_us"), 1);
}

#[test]
fn echo_reply_after_resolving_the_sender_by_arp() {
    let mut b = Bench::new(&config_text(L3FWD, 1500, ""));
    let req = ping(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.0.1",
            ttl: 64,
            df: false,
        },
        1,
        b"hello ferroplane",
    );
    // The reply needs the sender's MAC: the stack asks first and holds the reply.
    let [h0, _] = b.exchange(0, &req);
    assert_eq!(h0.len(), 1);
    let who_has = arp(
        1,
        [0xff; 6],
        mac(P0_MAC),
        "198.18.0.1",
        [0; 6],
        "198.18.0.2",
    );
    let mut who_has_eth = who_has.clone();
    who_has_eth[6..12].copy_from_slice(&mac(P0_MAC));
    assert_eq!(h0[0], who_has_eth);
    // Answer it; the held reply goes out.
    let answer = arp(
        2,
        mac(P0_MAC),
        mac(HOST0_MAC),
        "198.18.0.2",
        mac(P0_MAC),
        "198.18.0.1",
    );
    b.send(0, &answer);
    // The reply releases the held packet at once (no wait for the 10 ms maintenance run).
    b.turns(2);
    let h0 = b.recv(0);
    assert_eq!(h0.len(), 1, "the echo reply");
    assert_eq!(&h0[0][0..6], &mac(HOST0_MAC));
    assert_eq!(&h0[0][6..12], &mac(P0_MAC));
    let (hdr, s) = parse(&h0[0]);
    assert_eq!(hdr.source, ip("198.18.0.1").octets());
    assert_eq!(hdr.destination, ip("198.18.0.2").octets());
    match s.transport {
        Some(TransportSlice::Icmpv4(icmp)) => {
            assert_eq!(
                icmp.icmp_type(),
                etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 0x77, seq: 1 })
            );
            assert_eq!(icmp.payload(), b"hello ferroplane");
            assert_eq!(
                icmp.checksum(),
                icmp.icmp_type().calc_checksum(icmp.payload())
            );
        }
        other => panic!("{other:?}"),
    }
    // Later pings are answered at once: the neighbour is known.
    let [h0, _] = b.exchange(0, &req);
    assert_eq!(h0.len(), 1);
    assert_eq!(b.count("icmp-input", "echo_replies_sent"), 2);
}

#[test]
fn forwards_with_ttl_minus_one_and_a_correct_checksum() {
    let mut b = resolved_bench(L3FWD, 1500);
    let payload: Vec<u8> = (0..200).map(|i| i as u8).collect();
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.2.9",
            ttl: 17,
            df: false,
        },
        &payload,
    );
    let [h0, h1] = b.exchange(0, &f);
    assert!(h0.is_empty());
    assert_eq!(h1.len(), 1);
    let out = &h1[0];
    assert_eq!(&out[0..6], &mac(HOST1_MAC), "to the gateway's MAC");
    assert_eq!(&out[6..12], &mac(P1_MAC), "from the egress port's MAC");
    let (hdr, s) = parse(out);
    assert_eq!(hdr.time_to_live, 16);
    assert_eq!(hdr.destination, ip("198.18.2.9").octets());
    // Everything but TTL and checksum is unchanged.
    assert_eq!(out[14 + 20..], f[14 + 20..]);
    match s.transport {
        Some(TransportSlice::Udp(u)) => assert_eq!(u.payload(), &payload[..]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn forwarding_resolves_the_gateway_and_holds_packets_meanwhile() {
    let mut b = Bench::new(&config_text(L3FWD, 1500, ""));
    let f = |payload: &[u8]| {
        udp_frame(
            mac(HOST0_MAC),
            mac(P0_MAC),
            Ip4 {
                src: "198.18.0.2",
                dst: "198.18.2.9",
                ttl: 64,
                df: false,
            },
            payload,
        )
    };
    for i in 0..3u8 {
        b.send(0, &f(&[b'a' + i]));
    }
    b.turns(4);
    let h1 = b.recv(1);
    assert_eq!(h1.len(), 1, "one request for three held packets: {h1:02x?}");
    assert_eq!(&h1[0][12..14], &[0x08, 0x06]);
    assert_eq!(&h1[0][38..42], &ip("198.18.1.2").octets());
    let answer = arp(
        2,
        mac(P1_MAC),
        mac(HOST1_MAC),
        "198.18.1.2",
        mac(P1_MAC),
        "198.18.1.1",
    );
    b.send(1, &answer);
    // Released as soon as the reply is in (no wait for the 10 ms maintenance run).
    b.turns(2);
    let h1 = b.recv(1);
    assert_eq!(h1.len(), 3, "all held packets released");
    for (i, out) in h1.iter().enumerate() {
        assert_eq!(&out[0..6], &mac(HOST1_MAC));
        let (hdr, s) = parse(out);
        assert_eq!(hdr.time_to_live, 63);
        match s.transport {
            Some(TransportSlice::Udp(u)) => {
                assert_eq!(u.payload(), &[b'a' + i as u8], "in arrival order")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn ttl_expiry_gets_icmp_time_exceeded() {
    let mut b = resolved_bench(L3FWD, 1500);
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.2.9",
            ttl: 1,
            df: false,
        },
        b"traceroute probe",
    );
    let [h0, h1] = b.exchange(0, &f);
    assert!(h1.is_empty(), "not forwarded");
    assert_eq!(h0.len(), 1);
    let (hdr, s) = parse(&h0[0]);
    assert_eq!(
        hdr.source,
        ip("198.18.0.1").octets(),
        "from the receiving interface"
    );
    assert_eq!(hdr.destination, ip("198.18.0.2").octets());
    match s.transport {
        Some(TransportSlice::Icmpv4(icmp)) => {
            assert_eq!(
                icmp.icmp_type(),
                etherparse::Icmpv4Type::TimeExceeded(
                    etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit
                )
            );
            assert_eq!(
                icmp.checksum(),
                icmp.icmp_type().calc_checksum(icmp.payload())
            );
            // The quote is the original IP header and the first 8 payload bytes... and more:
            // Linux quotes as much as fits in 576 bytes, so do we.
            assert_eq!(icmp.payload(), &f[14..]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.count("ipv4-forward", "ttl_expired"), 1);
}

#[test]
fn no_route_gets_net_unreachable_and_is_counted() {
    let mut b = resolved_bench(L3FWD, 1500);
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "203.0.113.7",
            ttl: 64,
            df: false,
        },
        b"?",
    );
    let [h0, h1] = b.exchange(0, &f);
    assert!(h1.is_empty());
    assert_eq!(h0.len(), 1);
    let (_, s) = parse(&h0[0]);
    match s.transport {
        Some(TransportSlice::Icmpv4(icmp)) => assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Network
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.count("ipv4-lookup", "no_route"), 1);
}

#[test]
fn big_packets_are_fragmented_or_refused_with_df() {
    let mut b = resolved_bench(L3FWD, 1500);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    // DF set: ICMP fragmentation needed with the next-hop MTU.
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.1.2",
            ttl: 64,
            df: true,
        },
        &payload,
    );
    let [h0, h1] = b.exchange(0, &f);
    assert!(h1.is_empty());
    assert_eq!(h0.len(), 1);
    let (_, s) = parse(&h0[0]);
    match s.transport {
        Some(TransportSlice::Icmpv4(icmp)) => assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1500
                }
            )
        ),
        other => panic!("{other:?}"),
    }
    // DF clear: fragments that reassemble to the original datagram.
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.1.2",
            ttl: 64,
            df: false,
        },
        &payload,
    );
    let [_, h1] = b.exchange(0, &f);
    assert_eq!(h1.len(), 3);
    let mut data = vec![0u8; 3008];
    let mut seen = 0;
    for (i, fr) in h1.iter().enumerate() {
        assert!(fr.len() - 14 <= 1500);
        let (hdr, _) = parse(fr);
        assert_eq!(hdr.identification, 0x4242);
        assert_eq!(hdr.more_fragments, i < 2);
        assert_eq!(hdr.time_to_live, 63);
        let off = hdr.fragment_offset.byte_offset() as usize;
        let body = &fr[14 + 20..];
        data[off..off + body.len()].copy_from_slice(body);
        seen += body.len();
    }
    assert_eq!(seen, 3008);
    assert_eq!(&data[..], &f[14 + 20..]);
}

#[test]
fn malformed_input_is_dropped_and_counted_by_reason() {
    let mut b = resolved_bench(L3FWD, 1500);
    let good = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.1.2",
            ttl: 64,
            df: false,
        },
        b"payload",
    );
    let mut bad_sum = good.clone();
    bad_sum[14 + 10] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    let mut bad_len = good.clone();
    bad_len[14 + 2] = 0xff;
    let mut martian = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "127.0.0.1",
            dst: "198.18.1.2",
            ttl: 64,
            df: false,
        },
        b"x",
    );
    let not_ours = {
        let mut f = good.clone();
        f[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
        f
    };
    let runt = vec![0u8; 10];
    let mut unknown_type = good.clone();
    unknown_type[12..14].copy_from_slice(&[0x86, 0xdd]);
    let truncated = good[..14 + 12].to_vec();
    martian.truncate(martian.len());
    let martian_dst = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "127.0.0.1",
            ttl: 64,
            df: false,
        },
        b"x",
    );
    let multicast = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "224.0.0.5",
            ttl: 64,
            df: false,
        },
        b"x",
    );
    // An IPv4 header with one option whose length byte is 0 (a TLV walk would never end).
    let bad_option = {
        let mut f = good[..14].to_vec();
        let mut ip = good[14..14 + 20].to_vec();
        ip[0] = 0x46;
        let tl = u16::from_be_bytes([ip[2], ip[3]]) + 4;
        ip[2..4].copy_from_slice(&tl.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        ip.extend_from_slice(&[0x44, 0, 0, 0]);
        let c = ferroplane::wire::checksum::internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&good[14 + 20..]);
        f
    };
    // A frame tagged for VLAN 5, which no interface is configured for.
    let vlan = {
        let mut f = good[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        f.extend_from_slice(&good[12..]);
        f
    };
    let mut arp_htype = arp(
        1,
        [0xff; 6],
        mac(HOST0_MAC),
        "198.18.0.2",
        [0; 6],
        "198.18.0.1",
    );
    arp_htype[15] = 6;
    let mut arp_plen = arp(
        1,
        [0xff; 6],
        mac(HOST0_MAC),
        "198.18.0.2",
        [0; 6],
        "198.18.0.1",
    );
    arp_plen[19] = 6;
    let mut arp_op = arp(
        1,
        [0xff; 6],
        mac(HOST0_MAC),
        "198.18.0.2",
        [0; 6],
        "198.18.0.1",
    );
    arp_op[21] = 9;
    for f in [
        &bad_sum,
        &bad_version,
        &bad_ihl,
        &bad_len,
        &martian,
        &not_ours,
        &runt,
        &unknown_type,
        &truncated,
        &martian_dst,
        &multicast,
        &bad_option,
        &vlan,
        &arp_htype,
        &arp_plen,
        &arp_op,
    ] {
        b.send(0, f);
    }
    b.turns(4);
    assert!(b.recv(1).is_empty(), "nothing malformed is forwarded");
    assert!(b.recv(0).is_empty(), "and nothing is answered");
    for (node, reason) in [
        ("ipv4-input", "bad_checksum"),
        ("ipv4-input", "bad_version"),
        ("ipv4-input", "bad_ihl"),
        ("ipv4-input", "bad_total_length"),
        ("ipv4-input", "martian_source"),
        ("ipv4-input", "truncated"),
        ("eth-input", "not_for_us"),
        ("eth-input", "runt"),
        ("eth-input", "unknown_ethertype"),
        ("eth-input", "vlan_not_configured"),
        ("ipv4-input", "martian_destination"),
        ("ipv4-input", "multicast_not_supported"),
        ("ipv4-input", "bad_option"),
        ("arp", "bad_hardware_type"),
        ("arp", "bad_address_length"),
        ("arp", "bad_operation"),
    ] {
        assert_eq!(b.count(node, reason), 1, "{node}/{reason}");
    }
    assert_eq!(
        b.pool.in_use(),
        0,
        "every dropped mbuf went back to the pool"
    );
}

#[test]
fn trace_shows_the_path_of_a_forwarded_packet() {
    let mut b = resolved_bench(L3FWD, 1500);
    let trace = b.trace();
    trace.arm(1, None);
    let f = udp_frame(
        mac(HOST0_MAC),
        mac(P0_MAC),
        Ip4 {
            src: "198.18.0.2",
            dst: "198.18.2.9",
            ttl: 9,
            df: false,
        },
        b"t",
    );
    b.exchange(0, &f);
    let text = trace.to_text();
    let nodes: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.trim().split(':').next().unwrap())
        .collect();
    assert_eq!(
        nodes,
        [
            "rx",
            "eth-input",
            "ipv4-input",
            "ipv4-lookup",
            "ipv4-forward",
            "ipv4-output",
            "ipv4-rewrite",
            "tx"
        ],
        "{text}"
    );
    assert!(
        text.contains("ipv4-lookup: 198.18.2.9 via 198.18.1.2 port 1 → ipv4-forward"),
        "{text}"
    );
    assert!(text.contains("ttl 9 → 8"), "{text}");
    assert!(trace.to_mermaid().contains("ipv4_lookup->>ipv4_forward"));
}

/// Splits an Ethernet/IPv4 frame into IPv4 fragments of at most `mtu` bytes (by hand, as a
/// sending host would), keeping the Ethernet header on each.
fn fragment_frame(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let (eth, ipp) = frame.split_at(14);
    let hl = ((ipp[0] & 0x0f) as usize) * 4;
    let (hdr, payload) = ipp.split_at(hl);
    let per = (mtu - hl) & !7;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let len = per.min(payload.len() - off);
        let more = off + len < payload.len();
        let mut h = Ipv4Header::from_slice(hdr).unwrap().0;
        h.total_len = (hl + len) as u16;
        h.more_fragments = more;
        h.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = eth.to_vec();
        h.write(&mut f).unwrap();
        f.extend_from_slice(&payload[off..off + len]);
        out.push(f);
        off += len;
    }
    out
}

/// Reassembles fragments (Ethernet frames) by offset; returns the IPv4 payload.
fn reassemble(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<(usize, Vec<u8>, bool)> = frames
        .iter()
        .map(|f| {
            let (h, _) = parse(f);
            (
                h.fragment_offset.byte_offset() as usize,
                f[14 + h.header_len()..14 + h.total_len as usize].to_vec(),
                h.more_fragments,
            )
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (off, body, _) in &parts {
        assert_eq!(*off, data.len(), "no gap or overlap");
        data.extend_from_slice(body);
    }
    assert!(!parts.last().unwrap().2, "last fragment has MF clear");
    data
}

#[test]
fn udp_echo_of_a_fragmented_datagram_is_reassembled_answered_and_fragmented() {
    let mut b = resolved_bench("name = \"udp-echo\"\nport = 7", 1500);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 13 + 1) as u8).collect();
    let b_ = PacketBuilder::ethernet2(mac(HOST0_MAC), mac(P0_MAC))
        .ip(header(
            &Ip4 {
                src: "198.18.0.2",
                dst: "198.18.0.1",
                ttl: 64,
                df: false,
            },
            IpNumber::UDP,
            8 + payload.len(),
        ))
        .udp(5555, 7);
    let mut whole = Vec::new();
    b_.write(&mut whole, &payload).unwrap();
    // Send the fragments out of order.
    let mut frags = fragment_frame(&whole, 1500);
    assert_eq!(frags.len(), 3);
    frags.swap(0, 2);
    for f in &frags {
        b.send(0, f);
    }
    b.turns(6);
    let h0 = b.recv(0);
    assert_eq!(h0.len(), 3, "the 3008-byte reply leaves in 3 fragments");
    let reply = reassemble(&h0);
    let (hdr, _) = parse(&h0[0]);
    assert_eq!(hdr.source, ip("198.18.0.1").octets());
    assert_eq!(hdr.destination, ip("198.18.0.2").octets());
    let udp = etherparse::UdpHeader::from_slice(&reply).unwrap().0;
    assert_eq!((udp.source_port, udp.destination_port), (7, 5555));
    assert_eq!(&reply[8..], &payload[..]);
    assert_eq!(
        udp.checksum,
        udp.calc_checksum_ipv4_raw(hdr.source, hdr.destination, &reply[8..])
            .unwrap(),
        "UDP checksum over the whole reassembled datagram"
    );
    assert_eq!(b.count("ipv4-reassembly", "datagrams_reassembled"), 1);
    // A closed port gets ICMP port unreachable.
    let mut closed = Vec::new();
    PacketBuilder::ethernet2(mac(HOST0_MAC), mac(P0_MAC))
        .ip(header(
            &Ip4 {
                src: "198.18.0.2",
                dst: "198.18.0.1",
                ttl: 64,
                df: false,
            },
            IpNumber::UDP,
            8 + 4,
        ))
        .udp(5555, 9)
        .write(&mut closed, b"ping")
        .unwrap();
    let [h0, _] = b.exchange(0, &closed);
    assert_eq!(h0.len(), 1);
    match parse(&h0[0]).1.transport {
        Some(TransportSlice::Icmpv4(icmp)) => assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.pool.in_use(), 0);
}
