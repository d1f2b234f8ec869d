//! Cross-format tests: an oracle against `etherparse` in both directions, frames captured from
//! a Linux kernel, and arbitrary bytes through every checked view.

use std::net::Ipv4Addr;

use etherparse as ep;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// Ethernet addresses and 0..=2 VLAN tags (pcp, dei, vid).
#[derive(Debug, Clone)]
struct L2 {
    src: [u8; 6],
    dst: [u8; 6],
    tags: Vec<(u8, bool, u16)>,
}

fn l2(max_tags: usize) -> impl Strategy<Value = L2> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        vec((0u8..8, any::<bool>(), 0u16..4096), 0..=max_tags),
    )
        .prop_map(|(src, dst, tags)| L2 { src, dst, tags })
}

/// IPv4 header fields; `options` are (kind, data) pairs, kind 1 meaning NOP.
#[derive(Debug, Clone)]
struct L3 {
    dscp: u8,
    ecn: u8,
    ident: u16,
    df: bool,
    mf: bool,
    frag_units: u16,
    ttl: u8,
    src: [u8; 4],
    dst: [u8; 4],
    options: Vec<(u8, Vec<u8>)>,
}

impl L3 {
    /// The option bytes, padded with EOL (zero) to a multiple of 4.
    fn option_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for (kind, data) in &self.options {
            b.push(*kind);
            if *kind != ipv4_option::NOP {
                b.push(2 + data.len() as u8);
                b.extend_from_slice(data);
            }
        }
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }
}

fn l3(fragments: bool) -> impl Strategy<Value = L3> {
    let opt = prop_oneof![
        Just((ipv4_option::NOP, Vec::new())),
        (2u8..=255, vec(any::<u8>(), 0..=6)),
    ];
    (
        (0u8..64, 0u8..4, any::<u16>(), any::<bool>()),
        (any::<bool>(), 0u16..8192, any::<u8>()),
        (any::<[u8; 4]>(), any::<[u8; 4]>()),
        vec(opt, 0..=4),
    )
        .prop_map(
            move |((dscp, ecn, ident, df), (mf, frag, ttl), (src, dst), options)| L3 {
                dscp,
                ecn,
                ident,
                df,
                mf: mf && fragments,
                frag_units: if fragments { frag } else { 0 },
                ttl,
                src,
                dst,
                options,
            },
        )
}

/// The transport part.
#[derive(Debug, Clone)]
enum L4 {
    Udp {
        src: u16,
        dst: u16,
    },
    Tcp {
        src: u16,
        dst: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        urgent: u16,
        options: Vec<ep::TcpOptionElement>,
    },
    Echo {
        request: bool,
        ident: u16,
        seq: u16,
    },
    Unreachable {
        code: u8,
        mtu: u16,
    },
    TimeExceeded {
        code: u8,
    },
}

impl L4 {
    fn is_icmp_error(&self) -> bool {
        matches!(self, L4::Unreachable { .. } | L4::TimeExceeded { .. })
    }
}

fn tcp_option() -> impl Strategy<Value = ep::TcpOptionElement> {
    use ep::TcpOptionElement as E;
    let block = (any::<u32>(), any::<u32>());
    prop_oneof![
        Just(E::Noop),
        any::<u16>().prop_map(E::MaximumSegmentSize),
        any::<u8>().prop_map(E::WindowScale),
        Just(E::SelectiveAcknowledgementPermitted),
        (block, vec(block, 0..=3)).prop_map(|(first, rest)| {
            let mut more = [None; 3];
            for (i, b) in rest.into_iter().enumerate() {
                more[i] = Some(b);
            }
            E::SelectiveAcknowledgement(first, more)
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| E::Timestamp(a, b)),
    ]
}

fn ep_option_len(o: &ep::TcpOptionElement) -> usize {
    use ep::TcpOptionElement as E;
    match o {
        E::Noop => 1,
        E::MaximumSegmentSize(_) => 4,
        E::WindowScale(_) => 3,
        E::SelectiveAcknowledgementPermitted => 2,
        E::SelectiveAcknowledgement(_, more) => 10 + 8 * more.iter().flatten().count(),
        E::Timestamp(..) => 10,
    }
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4::Udp { src, dst }),
        (
            (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
            (any::<u8>(), any::<u16>(), any::<u16>()),
            vec(tcp_option(), 0..=5),
        )
            .prop_map(
                |((src, dst, seq, ack), (flags, window, urgent), mut options)| {
                    // Keep what fits the 40 bytes of option space.
                    while options.iter().map(ep_option_len).sum::<usize>() > 40 {
                        options.pop();
                    }
                    L4::Tcp {
                        src,
                        dst,
                        seq,
                        ack,
                        flags,
                        window,
                        urgent,
                        options,
                    }
                }
            ),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(request, ident, seq)| {
            L4::Echo {
                request,
                ident,
                seq,
            }
        }),
        (0u8..16, any::<u16>()).prop_map(|(code, mtu)| L4::Unreachable { code, mtu }),
        (0u8..2).prop_map(|code| L4::TimeExceeded { code }),
    ]
}

/// Which checksum to break after building: none, the IPv4 header's, or the transport's.
#[derive(Debug, Clone, Copy)]
enum Corrupt {
    None,
    Ip(u16),
    L4(u16),
}

fn corrupt() -> impl Strategy<Value = Corrupt> {
    prop_oneof![
        2 => Just(Corrupt::None),
        1 => (1u16..).prop_map(Corrupt::Ip),
        1 => (1u16..).prop_map(Corrupt::L4),
    ]
}

// ---------------------------------------------------------------------------------------
// etherparse helpers
// ---------------------------------------------------------------------------------------

fn ep_tcp_flags(h: &ep::TcpHeader) -> u8 {
    (h.fin as u8)
        | (h.syn as u8) << 1
        | (h.rst as u8) << 2
        | (h.psh as u8) << 3
        | (h.ack as u8) << 4
        | (h.urg as u8) << 5
        | (h.ece as u8) << 6
        | (h.cwr as u8) << 7
}

fn ours_to_ep(o: TcpOption<'_>) -> ep::TcpOptionElement {
    use ep::TcpOptionElement as E;
    match o {
        TcpOption::Nop => E::Noop,
        TcpOption::Mss(v) => E::MaximumSegmentSize(v),
        TcpOption::WindowScale(v) => E::WindowScale(v),
        TcpOption::SackPermitted => E::SelectiveAcknowledgementPermitted,
        TcpOption::Sack(b) => {
            let s = b.as_slice();
            let mut more = [None; 3];
            for (i, x) in s[1..].iter().enumerate() {
                more[i] = Some(*x);
            }
            E::SelectiveAcknowledgement(s[0], more)
        }
        TcpOption::Timestamps { tsval, tsecr } => E::Timestamp(tsval, tsecr),
        TcpOption::Unknown { kind, .. } => panic!("unexpected unknown TCP option {kind}"),
    }
}

fn ep_to_ours(o: &ep::TcpOptionElement) -> TcpOption<'static> {
    use ep::TcpOptionElement as E;
    match *o {
        E::Noop => TcpOption::Nop,
        E::MaximumSegmentSize(v) => TcpOption::Mss(v),
        E::WindowScale(v) => TcpOption::WindowScale(v),
        E::SelectiveAcknowledgementPermitted => TcpOption::SackPermitted,
        E::SelectiveAcknowledgement(first, more) => {
            let mut blocks = vec![first];
            blocks.extend(more.iter().flatten());
            TcpOption::Sack(SackBlocks::from_slice(&blocks).unwrap())
        }
        E::Timestamp(a, b) => TcpOption::Timestamps { tsval: a, tsecr: b },
    }
}

/// Checksum validity as etherparse sees it, from the IPv4 packet bytes: (IPv4 header, L4).
fn ep_checksums_ok(ip: &[u8]) -> (bool, bool) {
    let (h, _) = ep::Ipv4Header::from_slice(ip).expect("etherparse reads the IPv4 header");
    let ip_ok = h.calc_header_checksum() == h.header_checksum;
    let l4 = &ip[h.header_len()..h.total_len as usize];
    let l4_ok = match h.protocol {
        ep::IpNumber::UDP => {
            let (u, rest) = ep::UdpHeader::from_slice(l4).unwrap();
            let payload = &rest[..u.length as usize - 8];
            u.checksum == 0
                || u.calc_checksum_ipv4_raw(h.source, h.destination, payload)
                    .unwrap()
                    == u.checksum
        }
        ep::IpNumber::TCP => {
            let (t, payload) = ep::TcpHeader::from_slice(l4).unwrap();
            t.calc_checksum_ipv4_raw(h.source, h.destination, payload)
                .unwrap()
                == t.checksum
        }
        ep::IpNumber::ICMP => {
            let (i, payload) = ep::Icmpv4Header::from_slice(l4).unwrap();
            ep::Icmpv4Header::with_checksum(i.icmp_type.clone(), payload).checksum == i.checksum
        }
        p => panic!("unexpected protocol {p:?}"),
    };
    (ip_ok, l4_ok)
}

/// Builds a frame with etherparse's `PacketBuilder`.
fn ep_build(l2: &L2, l3: &L3, l4: &L4, payload: &[u8]) -> Vec<u8> {
    let mut ip = ep::Ipv4Header::new(0, l3.ttl, ep::IpNumber::UDP, l3.src, l3.dst).unwrap();
    ip.dscp = ep::IpDscp::try_new(l3.dscp).unwrap();
    ip.ecn = ep::IpEcn::try_new(l3.ecn).unwrap();
    ip.identification = l3.ident;
    ip.dont_fragment = l3.df;
    ip.more_fragments = l3.mf;
    ip.fragment_offset = ep::IpFragOffset::try_new(l3.frag_units).unwrap();
    ip.options = ep::Ipv4Options::try_from(&l3.option_bytes()[..]).unwrap();
    let iph = ep::IpHeaders::Ipv4(ip, Default::default());

    let tag = |&(pcp, dei, vid): &(u8, bool, u16)| ep::SingleVlanHeader {
        pcp: ep::VlanPcp::try_new(pcp).unwrap(),
        drop_eligible_indicator: dei,
        vlan_id: ep::VlanId::try_new(vid).unwrap(),
        ether_type: ep::EtherType(0),
    };
    let eth = ep::PacketBuilder::ethernet2(l2.src, l2.dst);
    let step = match l2.tags.as_slice() {
        [] => eth.ip(iph),
        [t] => eth.vlan(ep::VlanHeader::Single(tag(t))).ip(iph),
        [o, i] => eth
            .vlan(ep::VlanHeader::Double(ep::DoubleVlanHeader {
                outer: tag(o),
                inner: tag(i),
            }))
            .ip(iph),
        _ => unreachable!(),
    };
    let mut out = Vec::new();
    match l4 {
        L4::Udp { src, dst } => step.udp(*src, *dst).write(&mut out, payload).unwrap(),
        L4::Tcp {
            src,
            dst,
            seq,
            ack,
            flags,
            window,
            urgent,
            options,
        } => {
            let mut t = ep::TcpHeader::new(*src, *dst, *seq, *window);
            t.acknowledgment_number = *ack;
            t.urgent_pointer = *urgent;
            let f = TcpFlags(*flags);
            t.fin = f.contains(TcpFlags::FIN);
            t.syn = f.contains(TcpFlags::SYN);
            t.rst = f.contains(TcpFlags::RST);
            t.psh = f.contains(TcpFlags::PSH);
            t.ack = f.contains(TcpFlags::ACK);
            t.urg = f.contains(TcpFlags::URG);
            t.ece = f.contains(TcpFlags::ECE);
            t.cwr = f.contains(TcpFlags::CWR);
            t.set_options(options).unwrap();
            step.tcp_header(t).write(&mut out, payload).unwrap()
        }
        L4::Echo {
            request,
            ident,
            seq,
        } => {
            let s = if *request {
                step.icmpv4_echo_request(*ident, *seq)
            } else {
                step.icmpv4_echo_reply(*ident, *seq)
            };
            s.write(&mut out, payload).unwrap()
        }
        L4::Unreachable { code, mtu } => {
            let h = ep::icmpv4::DestUnreachableHeader::from_values(*code, *mtu).unwrap();
            step.icmpv4(ep::Icmpv4Type::DestinationUnreachable(h))
                .write(&mut out, payload)
                .unwrap()
        }
        L4::TimeExceeded { code } => {
            let c = ep::icmpv4::TimeExceededCode::from_u8(*code).unwrap();
            step.icmpv4(ep::Icmpv4Type::TimeExceeded(c))
                .write(&mut out, payload)
                .unwrap()
        }
    }
    out
}

/// The payload for a transport: random bytes, or for an ICMP error a quote that starts like
/// an IPv4 header.
fn fit_payload(l4: &L4, mut payload: Vec<u8>) -> Vec<u8> {
    if l4.is_icmp_error() {
        payload.resize(payload.len().max(28), 0);
        payload[0] = 0x45;
    }
    payload
}

fn addr(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

// ---------------------------------------------------------------------------------------
// Oracle: etherparse builds, we parse
// ---------------------------------------------------------------------------------------

fn check_ours_against_built(
    l2: &L2,
    l3: &L3,
    l4: &L4,
    payload: &[u8],
    corrupt: Corrupt,
) -> Result<(), TestCaseError> {
    let mut bytes = ep_build(l2, l3, l4, payload);
    let l3_at = 14 + 4 * l2.tags.len();
    let l4_at = l3_at + 20 + l3.option_bytes().len();
    match corrupt {
        Corrupt::None => {}
        Corrupt::Ip(x) => {
            let c = u16::from_be_bytes([bytes[l3_at + 10], bytes[l3_at + 11]]) ^ x;
            bytes[l3_at + 10..l3_at + 12].copy_from_slice(&c.to_be_bytes());
        }
        Corrupt::L4(x) => {
            let at = l4_at
                + match l4 {
                    L4::Udp { .. } => 6,
                    L4::Tcp { .. } => 16,
                    _ => 2,
                };
            let c = u16::from_be_bytes([bytes[at], bytes[at + 1]]) ^ x;
            bytes[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
    }

    // Ethernet and VLAN tags.
    let eth =
        EthernetFrame::new_checked(&bytes[..]).map_err(|e| TestCaseError::fail(e.as_str()))?;
    prop_assert_eq!(eth.src_addr(), MacAddr(l2.src));
    prop_assert_eq!(eth.dst_addr(), MacAddr(l2.dst));
    prop_assert_eq!(eth.vlan_count(), l2.tags.len());
    prop_assert_eq!(eth.l3_offset(), l3_at);
    prop_assert_eq!(eth.inner_ethertype(), ethertype::IPV4);
    let want_tags: Vec<_> = l2
        .tags
        .iter()
        .map(|&(p, d, v)| VlanTci::new(p, d, v))
        .collect();
    let got_tags: Vec<_> = [eth.vlan_tag(), eth.inner_vlan_tag()]
        .into_iter()
        .flatten()
        .map(|t| t.tci)
        .collect();
    prop_assert_eq!(got_tags, want_tags);
    match l2.tags.len() {
        0 => prop_assert_eq!(eth.ethertype(), ethertype::IPV4),
        1 => prop_assert_eq!(eth.ethertype(), ethertype::VLAN),
        _ => {
            prop_assert_eq!(eth.ethertype(), ethertype::QINQ);
            prop_assert_eq!(eth.inner_vlan_tag().unwrap().tpid, ethertype::VLAN);
        }
    }
    let (ep_eth, _) = ep::Ethernet2Header::from_slice(&bytes).unwrap();
    prop_assert_eq!(ep_eth.ether_type.0, eth.ethertype());

    // IPv4.
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| TestCaseError::fail(e.as_str()))?;
    let (ep_ip, _) = ep::Ipv4Header::from_slice(eth.payload()).unwrap();
    prop_assert_eq!(ip.version(), 4);
    prop_assert_eq!(ip.header_len(), ep_ip.header_len());
    prop_assert_eq!(ip.ihl(), ep_ip.ihl());
    prop_assert_eq!(ip.dscp(), l3.dscp);
    prop_assert_eq!(ip.ecn(), l3.ecn);
    prop_assert_eq!(ip.total_len(), ep_ip.total_len);
    prop_assert_eq!(ip.total_len() as usize, eth.payload().len());
    prop_assert_eq!(ip.ident(), l3.ident);
    prop_assert_eq!(ip.dont_fragment(), l3.df);
    prop_assert_eq!(ip.more_fragments(), l3.mf);
    prop_assert_eq!(ip.fragment_offset(), l3.frag_units * 8);
    prop_assert_eq!(ip.is_fragment(), ep_ip.is_fragmenting_payload());
    prop_assert_eq!(ip.ttl(), l3.ttl);
    prop_assert_eq!(ip.protocol(), ep_ip.protocol.0);
    prop_assert_eq!(ip.checksum(), ep_ip.header_checksum);
    prop_assert_eq!(ip.src_addr(), addr(l3.src));
    prop_assert_eq!(ip.dst_addr(), addr(l3.dst));
    prop_assert_eq!(ip.options(), ep_ip.options.as_slice());
    let opts: Vec<_> = ip
        .options_iter()
        .map(|o| o.map(|o| (o.kind, o.data.to_vec())))
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.as_str()))?;
    prop_assert_eq!(&opts, &l3.options);
    let (ep_ip_ok, ep_l4_ok) = ep_checksums_ok(eth.payload());
    prop_assert_eq!(ip.verify_checksum(), ep_ip_ok);
    prop_assert_eq!(ep_ip_ok, !matches!(corrupt, Corrupt::Ip(_)));
    let repr = Ipv4Repr::parse(&ip).unwrap();
    prop_assert_eq!(repr.payload_len, ip.payload().len());
    prop_assert_eq!(repr.fragment_offset, l3.frag_units * 8);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());

    // Transport.
    let l4_bytes = ip.payload();
    prop_assert_eq!(l4_bytes, &bytes[l4_at..]);
    match l4 {
        L4::Udp { src: sp, dst: dp } => {
            let u =
                UdpPacket::new_checked(l4_bytes).map_err(|e| TestCaseError::fail(e.as_str()))?;
            prop_assert_eq!((u.src_port(), u.dst_port()), (*sp, *dp));
            prop_assert_eq!(u.len() as usize, 8 + payload.len());
            prop_assert_eq!(u.payload(), payload);
            prop_assert_eq!(u.verify_checksum(src, dst), ep_l4_ok);
            let r = UdpRepr::parse(&u).unwrap();
            prop_assert_eq!(r.payload_len, payload.len());
        }
        L4::Tcp {
            src: sp,
            dst: dp,
            seq,
            ack,
            flags,
            window,
            urgent,
            options,
        } => {
            let t =
                TcpPacket::new_checked(l4_bytes).map_err(|e| TestCaseError::fail(e.as_str()))?;
            let (ep_t, _) = ep::TcpHeader::from_slice(l4_bytes).unwrap();
            prop_assert_eq!((t.src_port(), t.dst_port()), (*sp, *dp));
            prop_assert_eq!((t.seq_number(), t.ack_number()), (*seq, *ack));
            prop_assert_eq!(t.flags(), TcpFlags(*flags));
            prop_assert_eq!(t.flags().0, ep_tcp_flags(&ep_t));
            prop_assert_eq!((t.window_len(), t.urgent_at()), (*window, *urgent));
            prop_assert_eq!(t.data_offset(), ep_t.data_offset());
            prop_assert_eq!(t.options(), ep_t.options.as_slice());
            prop_assert_eq!(t.checksum(), ep_t.checksum);
            let ours: Vec<_> = t
                .options_iter()
                .map(|o| o.map(ours_to_ep))
                .collect::<Result<_, _>>()
                .map_err(|e| TestCaseError::fail(e.as_str()))?;
            let theirs: Vec<_> = ep_t.options_iterator().map(Result::unwrap).collect();
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(&ours, options);
            prop_assert_eq!(t.payload(), payload);
            prop_assert_eq!(t.verify_checksum(src, dst), ep_l4_ok);
        }
        _ => {
            let i =
                Icmpv4Packet::new_checked(l4_bytes).map_err(|e| TestCaseError::fail(e.as_str()))?;
            let ep_i = ep::Icmpv4Slice::from_slice(l4_bytes).unwrap();
            prop_assert_eq!(i.msg_type(), ep_i.type_u8());
            prop_assert_eq!(i.msg_code(), ep_i.code_u8());
            prop_assert_eq!(i.checksum(), ep_i.checksum());
            prop_assert_eq!(i.payload(), ep_i.payload());
            prop_assert_eq!(i.payload(), payload);
            prop_assert_eq!(i.verify_checksum(), ep_l4_ok);
            let want = match *l4 {
                L4::Echo {
                    request: true,
                    ident,
                    seq,
                } => Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no: seq,
                    data: payload,
                },
                L4::Echo {
                    request: false,
                    ident,
                    seq,
                } => Icmpv4Repr::EchoReply {
                    ident,
                    seq_no: seq,
                    data: payload,
                },
                L4::Unreachable { code: 4, mtu } => Icmpv4Repr::FragmentationNeeded {
                    next_hop_mtu: mtu,
                    data: payload,
                },
                L4::Unreachable { code, .. } => Icmpv4Repr::DstUnreachable {
                    code,
                    data: payload,
                },
                L4::TimeExceeded { code } => Icmpv4Repr::TimeExceeded {
                    code,
                    data: payload,
                },
                _ => unreachable!(),
            };
            prop_assert_eq!(Icmpv4Repr::parse(&i).unwrap(), want);
        }
    }
    // A broken transport checksum is caught, except that a UDP checksum may turn into 0,
    // which means "none".
    let l4_corrupted = matches!(corrupt, Corrupt::L4(_));
    if !l4_corrupted || !matches!(l4, L4::Udp { .. }) {
        prop_assert_eq!(ep_l4_ok, !l4_corrupted);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Oracle: we build, etherparse parses
// ---------------------------------------------------------------------------------------

fn check_etherparse_against_ours(
    l2: &L2,
    l3: &L3,
    l4: &L4,
    payload: &[u8],
) -> Result<(), TestCaseError> {
    let tcp_opts: Vec<u8> = match l4 {
        L4::Tcp { options, .. } => {
            let mut b = vec![0u8; 40];
            let mut at = 0;
            for o in options {
                at += ep_to_ours(o).emit(&mut b[at..]);
            }
            b.truncate(at.div_ceil(4) * 4); // EOL padding
            b
        }
        _ => Vec::new(),
    };
    let l4_header_len = match l4 {
        L4::Udp { .. } => 8,
        L4::Tcp { .. } => 20 + tcp_opts.len(),
        _ => 8,
    };
    let protocol = match l4 {
        L4::Udp { .. } => ip_protocol::UDP,
        L4::Tcp { .. } => ip_protocol::TCP,
        _ => ip_protocol::ICMP,
    };
    let eth = EthernetRepr {
        src_addr: MacAddr(l2.src),
        dst_addr: MacAddr(l2.dst),
        ethertype: ethertype::IPV4,
        vlan: l2.tags.first().map(|&(p, d, v)| VlanTci::new(p, d, v)),
    };
    let ip = Ipv4Repr {
        src_addr: addr(l3.src),
        dst_addr: addr(l3.dst),
        protocol,
        payload_len: l4_header_len + payload.len(),
        ttl: l3.ttl,
        dscp: l3.dscp,
        ecn: l3.ecn,
        ident: l3.ident,
        dont_fragment: l3.df,
        more_fragments: false,
        fragment_offset: 0,
    };
    let mut buf = vec![0u8; eth.header_len() + ip.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut ipp = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut ipp);
    let (src, dst) = (ip.src_addr, ip.dst_addr);
    let seg = ipp.payload_mut();
    match l4 {
        L4::Udp { src: sp, dst: dp } => {
            seg[8..].copy_from_slice(payload);
            let r = UdpRepr {
                src_port: *sp,
                dst_port: *dp,
                payload_len: payload.len(),
            };
            r.emit(&mut UdpPacket::new_unchecked(seg), src, dst);
        }
        L4::Tcp {
            src: sp,
            dst: dp,
            seq,
            ack,
            flags,
            window,
            urgent,
            ..
        } => {
            let mut t = TcpPacket::new_unchecked(seg);
            t.set_src_port(*sp);
            t.set_dst_port(*dp);
            t.set_seq_number(*seq);
            t.set_ack_number(*ack);
            t.set_header_len(l4_header_len);
            t.set_flags(TcpFlags(*flags));
            t.set_window_len(*window);
            t.set_urgent_at(*urgent);
            t.options_mut().copy_from_slice(&tcp_opts);
            t.payload_mut().copy_from_slice(payload);
            t.fill_checksum(src, dst);
        }
        _ => {
            let r = match *l4 {
                L4::Echo {
                    request: true,
                    ident,
                    seq,
                } => Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no: seq,
                    data: payload,
                },
                L4::Echo { ident, seq, .. } => Icmpv4Repr::EchoReply {
                    ident,
                    seq_no: seq,
                    data: payload,
                },
                L4::Unreachable { code: 4, mtu } => Icmpv4Repr::FragmentationNeeded {
                    next_hop_mtu: mtu,
                    data: payload,
                },
                L4::Unreachable { code, .. } => Icmpv4Repr::DstUnreachable {
                    code,
                    data: payload,
                },
                L4::TimeExceeded { code } => Icmpv4Repr::TimeExceeded {
                    code,
                    data: payload,
                },
                _ => unreachable!(),
            };
            r.emit(&mut Icmpv4Packet::new_unchecked(seg));
        }
    }

    let h = ep::PacketHeaders::from_ethernet_slice(&buf)
        .map_err(|e| TestCaseError::fail(format!("etherparse rejects our frame: {e:?}")))?;
    match &h.link {
        Some(ep::LinkHeader::Ethernet2(e)) => {
            prop_assert_eq!(e.source, l2.src);
            prop_assert_eq!(e.destination, l2.dst);
        }
        other => return Err(TestCaseError::fail(format!("link {other:?}"))),
    }
    match (h.vlan(), l2.tags.first()) {
        (None, None) => {}
        (Some(ep::VlanHeader::Single(v)), Some(&(p, d, id))) => {
            prop_assert_eq!(v.pcp.value(), p);
            prop_assert_eq!(v.drop_eligible_indicator, d);
            prop_assert_eq!(v.vlan_id.value(), id);
            prop_assert_eq!(v.ether_type, ep::EtherType::IPV4);
        }
        other => return Err(TestCaseError::fail(format!("vlan {other:?}"))),
    }
    let ep_ip = match &h.net {
        Some(ep::NetHeaders::Ipv4(ip, _)) => ip.clone(),
        other => return Err(TestCaseError::fail(format!("net {other:?}"))),
    };
    prop_assert_eq!(ep_ip.dscp.value(), l3.dscp);
    prop_assert_eq!(ep_ip.ecn.value(), l3.ecn);
    prop_assert_eq!(ep_ip.identification, l3.ident);
    prop_assert_eq!(ep_ip.dont_fragment, l3.df);
    prop_assert!(!ep_ip.more_fragments);
    prop_assert_eq!(ep_ip.fragment_offset.value(), 0);
    prop_assert_eq!(ep_ip.time_to_live, l3.ttl);
    prop_assert_eq!(ep_ip.protocol.0, protocol);
    prop_assert_eq!(ep_ip.source, l3.src);
    prop_assert_eq!(ep_ip.destination, l3.dst);
    prop_assert_eq!(ep_ip.total_len as usize, ip.buffer_len());
    prop_assert_eq!(ep_ip.calc_header_checksum(), ep_ip.header_checksum);
    prop_assert_eq!(h.payload.slice(), payload);
    match (&h.transport, l4) {
        (Some(ep::TransportHeader::Udp(u)), L4::Udp { src: sp, dst: dp }) => {
            prop_assert_eq!((u.source_port, u.destination_port), (*sp, *dp));
            prop_assert_eq!(u.length as usize, 8 + payload.len());
            prop_assert_ne!(u.checksum, 0);
            prop_assert_eq!(u.calc_checksum_ipv4(&ep_ip, payload).unwrap(), u.checksum);
        }
        (
            Some(ep::TransportHeader::Tcp(t)),
            L4::Tcp {
                src: sp,
                dst: dp,
                seq,
                ack,
                flags,
                window,
                urgent,
                options,
            },
        ) => {
            prop_assert_eq!((t.source_port, t.destination_port), (*sp, *dp));
            prop_assert_eq!((t.sequence_number, t.acknowledgment_number), (*seq, *ack));
            prop_assert_eq!(ep_tcp_flags(t), *flags);
            prop_assert_eq!((t.window_size, t.urgent_pointer), (*window, *urgent));
            let theirs: Vec<_> = t.options_iterator().map(Result::unwrap).collect();
            prop_assert_eq!(&theirs, options);
            prop_assert_eq!(t.calc_checksum_ipv4(&ep_ip, payload).unwrap(), t.checksum);
        }
        (Some(ep::TransportHeader::Icmpv4(i)), _) => {
            let want = ep::Icmpv4Header::with_checksum(i.icmp_type.clone(), payload);
            prop_assert_eq!(want.checksum, i.checksum);
            match (&i.icmp_type, l4) {
                (
                    ep::Icmpv4Type::EchoRequest(e),
                    L4::Echo {
                        request: true,
                        ident,
                        seq,
                    },
                )
                | (
                    ep::Icmpv4Type::EchoReply(e),
                    L4::Echo {
                        request: false,
                        ident,
                        seq,
                    },
                ) => {
                    prop_assert_eq!((e.id, e.seq), (*ident, *seq));
                }
                (ep::Icmpv4Type::DestinationUnreachable(d), L4::Unreachable { code, mtu }) => {
                    prop_assert_eq!(d.code_u8(), *code);
                    if let ep::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu } =
                        d
                    {
                        prop_assert_eq!(next_hop_mtu, mtu);
                    }
                }
                (ep::Icmpv4Type::TimeExceeded(c), L4::TimeExceeded { code }) => {
                    prop_assert_eq!(c.code_u8(), *code);
                }
                other => return Err(TestCaseError::fail(format!("icmp {other:?}"))),
            }
        }
        other => return Err(TestCaseError::fail(format!("transport {other:?}"))),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn oracle_etherparse_builds_we_parse(
        l2 in l2(2),
        l3 in l3(true),
        l4 in l4(),
        payload in vec(any::<u8>(), 0..300),
        corrupt in corrupt(),
    ) {
        let payload = fit_payload(&l4, payload);
        check_ours_against_built(&l2, &l3, &l4, &payload, corrupt)?;
    }

    #[test]
    fn oracle_we_build_etherparse_parses(
        l2 in l2(1),
        l3 in l3(false),
        l4 in l4(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let payload = fit_payload(&l4, payload);
        check_etherparse_against_ours(&l2, &l3, &l4, &payload)?;
    }

    #[test]
    fn oracle_arp_both_ways(
        request in any::<bool>(),
        sha in any::<[u8; 6]>(),
        spa in any::<[u8; 4]>(),
        tha in any::<[u8; 6]>(),
        tpa in any::<[u8; 4]>(),
    ) {
        let op = if request { ep::ArpOperation::REQUEST } else { ep::ArpOperation::REPLY };
        let theirs = ep::ArpPacket::new(
            ep::ArpHardwareId::ETHERNET, ep::EtherType::IPV4, op, &sha, &spa, &tha, &tpa,
        ).unwrap();
        let bytes = theirs.to_bytes();
        let p = ArpPacket::new_checked(&bytes[..]).unwrap();
        let r = ArpRepr::parse(&p).unwrap();
        prop_assert_eq!(r.operation.to_u16(), op.0);
        prop_assert_eq!(r.sender_hardware_addr, MacAddr(sha));
        prop_assert_eq!(r.sender_protocol_addr, addr(spa));
        prop_assert_eq!(r.target_hardware_addr, MacAddr(tha));
        prop_assert_eq!(r.target_protocol_addr, addr(tpa));
        let mut ours = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut ours[..]));
        prop_assert_eq!(&ours[..], &bytes[..]);
        let back = ep::ArpPacketSlice::from_slice(&ours).unwrap().to_packet();
        prop_assert_eq!(back, theirs);
    }
}

// ---------------------------------------------------------------------------------------
// Frames captured from a Linux kernel
// ---------------------------------------------------------------------------------------
//
// Captured with `tcpdump -w` on one end of a veth pair between two throwaway network
// namespaces (198.18.0.1, MAC 02:00:00:00:00:01 <-> 198.18.0.2, MAC 02:00:00:00:00:02; TX
// checksum offload off so the kernel writes complete UDP checksums) while running
// `ping -c1 198.18.0.2` and sending "hello ferroplane" from 198.18.0.1:40000 to
// 198.18.0.2:9999 (closed, so the kernel answered port unreachable).

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const LINUX_ECHO_REQUEST: &str = concat!(
    "020000000002020000000001080045000054e31040004001cb70c6120001c6120002",
    "0800fe1a28b300011d49086b00000000e9a9030000000000",
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
);
const LINUX_ECHO_REPLY: &str = concat!(
    "020000000001020000000002080045000054e5cf0000400108b2c6120002c6120001",
    "0000061b28b300011d49086b00000000e9a9030000000000",
    "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
);
const LINUX_UDP: &str = concat!(
    "02000000000202000000000108004500002c123e400040119c5bc6120001c6120002",
    "9c40270f0018494568656c6c6f20666572726f706c616e65",
);
const LINUX_PORT_UNREACHABLE: &str = concat!(
    "020000000001020000000002080045c00048e5df0000400107eec6120002c6120001",
    "0303894e00000000",
    "4500002c123e400040119c5bc6120001c61200029c40270f0018494568656c6c6f20666572726f706c616e65",
);

#[test]
fn linux_ping_request_and_reply() {
    for (hexstr, request, ident) in [
        (LINUX_ECHO_REQUEST, true, 0xe310),
        (LINUX_ECHO_REPLY, false, 0xe5cf),
    ] {
        let bytes = hex(hexstr);
        let eth = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(eth.ethertype(), ethertype::IPV4);
        let (me, peer) = (MacAddr::local(1), MacAddr::local(2));
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        if request {
            assert_eq!((eth.src_addr(), eth.dst_addr()), (me, peer));
        } else {
            assert_eq!((eth.src_addr(), eth.dst_addr()), (peer, me));
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.ident(), ip.ttl(), ip.protocol()),
            (ident, 64, ip_protocol::ICMP)
        );
        assert_eq!(ip.dont_fragment(), request); // Linux replies without DF
        assert_eq!(ip.total_len(), 84);
        let want = if request { (a, b) } else { (b, a) };
        assert_eq!((ip.src_addr(), ip.dst_addr()), want);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        let data = match Icmpv4Repr::parse(&icmp).unwrap() {
            Icmpv4Repr::EchoRequest {
                ident: 0x28b3,
                seq_no: 1,
                data,
            } if request => data,
            Icmpv4Repr::EchoReply {
                ident: 0x28b3,
                seq_no: 1,
                data,
            } if !request => data,
            other => panic!("unexpected {other:?}"),
        };
        // iputils ping: 16 bytes of timeval, then 0x10, 0x11, ... up to 56 bytes.
        assert_eq!(data.len(), 56);
        assert!(data[16..].iter().zip(0x10u8..).all(|(&a, b)| a == b));
        // Our in-place reply equals the kernel's ICMP reply.
        if request {
            let mut mine = ip.payload().to_vec();
            Icmpv4Packet::new_unchecked(&mut mine[..]).make_echo_reply();
            let theirs = hex(LINUX_ECHO_REPLY);
            assert_eq!(&mine[..], &theirs[34..]);
        }
        // And etherparse agrees.
        let (ep_ip_ok, ep_icmp_ok) = ep_checksums_ok(eth.payload());
        assert!(ep_ip_ok && ep_icmp_ok);
    }
}

#[test]
fn linux_udp_datagram() {
    let bytes = hex(LINUX_UDP);
    let eth = EthernetFrame::new_checked(&bytes[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.protocol(), ip_protocol::UDP);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(
        (udp.src_port(), udp.dst_port(), udp.len()),
        (40000, 9999, 24)
    );
    assert_eq!(udp.checksum(), 0x4945);
    assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
    assert!(!udp.verify_checksum(ip.src_addr(), Ipv4Addr::new(198, 18, 0, 3)));
    assert_eq!(udp.payload(), b"hello ferroplane");
    // Recomputing gives the kernel's value.
    let mut copy = ip.payload().to_vec();
    let mut u = UdpPacket::new_checked(&mut copy[..]).unwrap();
    u.fill_checksum(ip.src_addr(), ip.dst_addr());
    assert_eq!(u.checksum(), 0x4945);
}

#[test]
fn linux_port_unreachable_quotes_the_datagram() {
    let bytes = hex(LINUX_PORT_UNREACHABLE);
    let eth = EthernetFrame::new_checked(&bytes[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.dscp(), ip.ecn()), (48, 0)); // TOS 0xc0: network control
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    let data = match Icmpv4Repr::parse(&icmp).unwrap() {
        Icmpv4Repr::DstUnreachable {
            code: icmpv4_code::PORT_UNREACHABLE,
            data,
        } => data,
        other => panic!("unexpected {other:?}"),
    };
    // Linux quotes the whole (short) datagram.
    let udp_frame = hex(LINUX_UDP);
    assert_eq!(data, &udp_frame[14..]);
    // Building the same message with our repr gives the kernel's bytes.
    let orig = Ipv4Packet::new_checked(&udp_frame[14..]).unwrap();
    assert_eq!(quote_original(&orig), &udp_frame[14..14 + 28]);
    let r = Icmpv4Repr::DstUnreachable {
        code: icmpv4_code::PORT_UNREACHABLE,
        data: orig.as_ref(),
    };
    let mut mine = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv4Packet::new_unchecked(&mut mine[..]));
    assert_eq!(&mine[..], ip.payload());
    let mut hdr = Ipv4Repr::parse(&ip).unwrap();
    hdr.payload_len = r.buffer_len();
    let mut h = [0u8; 20];
    hdr.emit(&mut Ipv4Packet::new_unchecked(&mut h[..]));
    assert_eq!(&h[..], ip.header());
}

// ---------------------------------------------------------------------------------------
// No panics on any input
// ---------------------------------------------------------------------------------------

/// Runs every checked constructor, getter, iterator and parser over `b`; returns nothing, it
/// only must not panic (or loop forever).
fn exercise_all(b: &[u8]) {
    let a = Ipv4Addr::new(198, 18, 0, 1);
    let z = Ipv4Addr::new(198, 18, 0, 2);
    // Reprs re-check on their own, even over unchecked views.
    let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(b));
    let _ = ArpRepr::parse(&ArpPacket::new_unchecked(b));
    let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b));
    let _ = UdpRepr::parse(&UdpPacket::new_unchecked(b));
    if b.len() >= 8 {
        let _ = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(b));
    }
    let _ = Ipv4OptionsIter::new(b).count();
    let _ = TcpOptionsIter::new(b).count();

    if let Ok(f) = EthernetFrame::new_checked(b) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.vlan_count());
        let _ = (f.vlan_tag(), f.inner_vlan_tag(), f.inner_ethertype());
        let _ = (f.l3_offset(), f.payload().len(), EthernetRepr::parse(&f));
        exercise_l3(f.payload(), a, z);
    }
    exercise_l3(b, a, z);
    exercise_l4(b, a, z);
}

fn exercise_l3(b: &[u8], a: Ipv4Addr, z: Ipv4Addr) {
    if let Ok(p) = ArpPacket::new_checked(b) {
        let _ = (
            p.hardware_type(),
            p.protocol_type(),
            p.hardware_len(),
            p.protocol_len(),
        );
        let _ = (
            p.operation(),
            p.sender_hardware_addr(),
            p.sender_protocol_addr(),
        );
        let _ = (
            p.target_hardware_addr(),
            p.target_protocol_addr(),
            p.payload(),
        );
        let _ = ArpRepr::parse(&p);
    }
    if let Ok(p) = Ipv4Packet::new_checked(b) {
        let _ = (
            p.version(),
            p.ihl(),
            p.header_len(),
            p.dscp(),
            p.ecn(),
            p.total_len(),
        );
        let _ = (
            p.ident(),
            p.dont_fragment(),
            p.more_fragments(),
            p.reserved_flag(),
        );
        let _ = (p.fragment_offset(), p.is_fragment(), p.ttl(), p.protocol());
        let _ = (
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
            p.header(),
            p.options(),
        );
        let _ = (
            p.options_iter().count(),
            p.validate_options(),
            p.verify_checksum(),
        );
        let _ = (p.payload(), Ipv4Repr::parse(&p));
        let (s, d) = (p.src_addr(), p.dst_addr());
        exercise_l4(p.payload(), s, d);
    }
    let _ = (a, z);
}

fn exercise_l4(b: &[u8], a: Ipv4Addr, z: Ipv4Addr) {
    if let Ok(p) = Icmpv4Packet::new_checked(b) {
        let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.rest_of_header());
        let _ = (
            p.echo_ident(),
            p.echo_seq_no(),
            p.next_hop_mtu(),
            p.payload(),
        );
        let _ = (p.verify_checksum(), Icmpv4Repr::parse(&p));
    }
    if let Ok(p) = UdpPacket::new_checked(b) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.len(),
            p.checksum(),
            p.has_checksum(),
        );
        let _ = (p.payload(), p.verify_checksum(a, z), UdpRepr::parse(&p));
    }
    if let Ok(p) = TcpPacket::new_checked(b) {
        let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number());
        let _ = (
            p.data_offset(),
            p.header_len(),
            p.flags(),
            p.fin(),
            p.syn(),
            p.rst(),
        );
        let _ = (p.psh(), p.ack(), p.urg(), p.ece(), p.cwr(), p.window_len());
        let _ = (
            p.checksum(),
            p.urgent_at(),
            p.options(),
            p.payload(),
            p.segment_len(),
        );
        let _ = (
            p.options_iter().count(),
            p.validate_options(),
            p.verify_checksum(a, z),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..128)) {
        exercise_all(&b);
    }

    /// Mutations of real frames reach deeper than random bytes (valid lengths, versions).
    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..4,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = hex([LINUX_ECHO_REQUEST, LINUX_ECHO_REPLY, LINUX_UDP, LINUX_PORT_UNREACHABLE][which]);
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        let len = cut.index(b.len() + 1);
        exercise_all(&b[..len]);
        exercise_all(&b[14..len.max(14)]);
    }

    #[test]
    fn mutated_options_never_panic(opts in vec(any::<u8>(), 0..=40)) {
        // Valid headers with arbitrary option bytes.
        let mut ip = vec![0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let n = opts.len() / 4 * 4;
        ip[0] = 0x40 | (5 + n / 4) as u8;
        ip[3] = (20 + n) as u8;
        ip.extend_from_slice(&opts[..n]);
        exercise_all(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[12] = ((5 + n / 4) as u8) << 4;
        tcp.extend_from_slice(&opts[..n]);
        exercise_all(&tcp);
        let ipp = Ipv4Packet::new_checked(&ip[..]).unwrap();
        let tp = TcpPacket::new_checked(&tcp[..]).unwrap();
        // The walk consumes at least one byte per item.
        prop_assert!(ipp.options_iter().count() <= n);
        prop_assert!(tp.options_iter().count() <= n);
    }
}

#[test]
fn error_names_cover_the_brief() {
    for name in [
        "truncated",
        "bad_version",
        "bad_ihl",
        "bad_total_length",
        "bad_checksum",
        "bad_data_offset",
        "bad_option",
        "bad_length",
    ] {
        assert!(WireError::ALL.iter().any(|e| e.as_str() == name), "{name}");
    }
}
