//! Opening connections: the three-way handshake field by field, simultaneous open, option
//! negotiation, refused connections and the listener backlog.

use super::*;
use crate::tcp::sim::{LinkConfig, Sim, ADDR_A, ADDR_B};
use crate::tcp::{Listener, SEC};
use std::net::SocketAddrV4;

/// Serialization time of a segment of `len` TCP bytes (+ 20 bytes of IPv4) at 100 Mbit/s.
fn tx_time(len: usize) -> u64 {
    (len as u64 + 20) * 8 * 1_000_000_000 / 100_000_000
}

#[test]
fn three_way_handshake_fields() {
    let cfg = TcpConfig::default();
    let mut sim = Sim::symmetric(1, LinkConfig::default());
    sim.open(&cfg, &cfg, 16);
    assert!(sim.run_until(SEC, |s| s.hosts[1].conns.len() == 1
        && s.hosts[0].saw(Event::Connected)
        && s.hosts[1].saw(Event::Connected)));
    sim.run_to(SEC);
    let t: Vec<_> = sim.trace.clone();
    assert_eq!(t.len(), 3, "{t:#?}");
    let (syn, synack, ack) = (&t[0], &t[1], &t[2]);
    let g = isn();
    let (ts_a, ts_b) = (
        g.ts_offset(addr_a(), addr_b()),
        g.ts_offset(addr_b(), addr_a()),
    );

    // SYN: our ISN (RFC 6528 at t = 0), MSS 1460, SACK-permitted, TS, WS 3 (256 KiB buffer),
    // the unscaled window capped at 65535.
    assert_eq!((syn.from, syn.time), (0, 0));
    let h = syn.header;
    assert_eq!((h.src_port, h.dst_port), (PORT_A, PORT_B));
    assert_eq!(h.seq, g.isn(addr_a(), addr_b(), 0));
    assert_eq!(h.flags, TcpFlags::SYN);
    assert_eq!(h.window, 65535);
    assert_eq!(
        h.options,
        TcpOptions {
            mss: Some(1460),
            wscale: Some(3),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: ts_a,
                tsecr: 0
            }),
            ..Default::default()
        }
    );
    assert_eq!(h.header_len(), 40);

    // SYN-ACK: sent when the SYN arrives (10 ms + 60 bytes at 100 Mbit/s); the server's ISN
    // at that instant; echoes TSval.
    let t1 = 10 * MS + tx_time(40);
    assert_eq!((synack.from, synack.time), (1, t1));
    let h2 = synack.header;
    assert_eq!((h2.src_port, h2.dst_port), (PORT_B, PORT_A));
    assert_eq!(h2.seq, g.isn(addr_b(), addr_a(), t1));
    assert_eq!(h2.ack, h.seq + 1);
    assert_eq!(h2.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(h2.window, 65535);
    assert_eq!(
        h2.options,
        TcpOptions {
            mss: Some(1460),
            wscale: Some(3),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: ts_b.wrapping_add(10),
                tsecr: ts_a
            }),
            ..Default::default()
        }
    );

    // ACK: scaled window (262144 >> 3), only the timestamps option.
    let t2 = t1 + 10 * MS + tx_time(40);
    assert_eq!((ack.from, ack.time), (0, t2));
    let h3 = ack.header;
    assert_eq!((h3.seq, h3.ack), (h.seq + 1, h2.seq + 1));
    assert_eq!(h3.flags, TcpFlags::ACK);
    assert_eq!(h3.window, 32768);
    assert_eq!(
        h3.options,
        TcpOptions {
            timestamps: Some(Timestamps {
                tsval: ts_a.wrapping_add(20),
                tsecr: ts_b.wrapping_add(10)
            }),
            ..Default::default()
        }
    );

    // Both sides negotiated the same: MSS 1460 - 12 bytes of timestamps.
    for c in [&sim.hosts[0].conns[0], &sim.hosts[1].conns[0]] {
        assert_eq!(c.state(), State::Established);
        assert_eq!(c.mss(), 1448);
        assert_eq!(c.window_scales(), (3, 3));
        assert!(c.timestamps_enabled() && c.sack_enabled());
    }
    // The SYN-ACK's window is never scaled: A knows 65535 until B sends again; B already
    // applies A's shift to the final ACK's window.
    assert_eq!(sim.a().send_window(), 65535);
    assert_eq!(sim.b().send_window(), 262_144);
    // The client measured the handshake RTT from TSecr: 20 ms, so RTO = 200 ms (the floor).
    assert_eq!(sim.a().srtt(), Some(20 * MS));
    assert_eq!(sim.a().rto(), 200 * MS);
    assert!(sim.b().is_passive() && !sim.a().is_passive());
}

#[test]
fn options_need_both_sides() {
    // The client offers nothing optional; the server must not use scaling, SACK or TS, and
    // without an MSS option the server assumes 536.
    let client = TcpConfig {
        window_scaling: false,
        timestamps: false,
        sack: false,
        ..TcpConfig::default()
    };
    let mut a = Connection::connect(&client, &isn(), addr_a(), addr_b(), 0);
    let syn = drain(&mut a, 0).remove(0);
    assert_eq!(
        syn.header.options,
        TcpOptions {
            mss: Some(1460),
            ..Default::default()
        }
    );
    let mut h = syn.header;
    h.options.mss = None;
    let seg = TcpSegment {
        header: h,
        payload: &[],
        payload_tail: &[],
    };
    let mut b =
        Connection::accept_syn(&TcpConfig::default(), &isn(), addr_b(), addr_a(), &seg, 0).unwrap();
    let synack = drain(&mut b, 0).remove(0);
    assert_eq!(
        synack.header.options,
        TcpOptions {
            mss: Some(1460),
            ..Default::default()
        }
    );
    assert_eq!(b.mss(), 536);
    assert_eq!(b.window_scales(), (0, 0));
    assert!(!b.timestamps_enabled() && !b.sack_enabled());
    // A SYN with ACK set is not a passive open.
    let mut bad = seg;
    bad.header.flags |= TcpFlags::ACK;
    assert!(Connection::accept_syn(&client, &isn(), addr_b(), addr_a(), &bad, 0).is_none());
}

#[test]
fn simultaneous_open() {
    let cfg = TcpConfig::default();
    let mut sim = Sim::symmetric(2, LinkConfig::default());
    sim.hosts[0]
        .conns
        .push(Connection::connect(&cfg, &isn(), addr_a(), addr_b(), 0));
    sim.hosts[1]
        .conns
        .push(Connection::connect(&cfg, &isn(), addr_b(), addr_a(), 0));
    sim.run_to(100 * MS);
    assert_eq!(sim.a().state(), State::Established);
    assert_eq!(sim.b().state(), State::Established);
    assert!(sim.hosts[0].saw(Event::Connected) && sim.hosts[1].saw(Event::Connected));
    // Each side: SYN, then its SYN again as a SYN-ACK, then an ACK; no reset.
    for from in 0..2 {
        let s: Vec<_> = sim.sent_by(from).collect();
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(s[0].header.flags, TcpFlags::SYN);
        assert_eq!(s[1].header.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(s[1].header.seq, s[0].header.seq);
        assert_eq!(s[2].header.flags, TcpFlags::ACK);
        assert_eq!(s[2].header.seq, s[0].header.seq + 1);
    }
    let (ia, ib) = (sim.a().iss(), sim.b().iss());
    assert_eq!((sim.a().irs(), sim.b().irs()), (ib, ia));
    // Data flows both ways afterwards.
    let now = sim.now;
    sim.a().send(b"from a", now);
    sim.b().send(b"from b", now);
    sim.run_to(200 * MS);
    let mut buf = [0u8; 16];
    let n = sim.b().recv(&mut buf);
    assert_eq!(&buf[..n], b"from a");
    let n = sim.a().recv(&mut buf);
    assert_eq!(&buf[..n], b"from b");
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let cfg = TcpConfig::default();
    let mut sim = Sim::symmetric(3, LinkConfig::default());
    sim.hosts[0]
        .conns
        .push(Connection::connect(&cfg, &isn(), addr_a(), addr_b(), 0));
    sim.run_to(SEC);
    // The RST|ACK from the closed port (RFC 9293 §3.10.7.1) resets the SYN-SENT connection.
    let iss = sim.a().iss();
    let rst: Vec<_> = sim.sent_by(1).collect();
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0].header.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst[0].header.ack, iss + 1);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(sim.hosts[0].events.last().map(|e| e.2), Some(Event::Reset));
    assert_eq!(sim.a().next_timer(), None);
}

#[test]
fn syn_sent_rejects_a_bad_ack_with_a_reset() {
    let mut a = Connection::connect(&TcpConfig::default(), &isn(), addr_a(), addr_b(), 0);
    let syn = drain(&mut a, 0).remove(0);
    let p = Peer {
        seq: Seq(1234),
        ack: syn.header.seq + 5, // acknowledges something never sent
        window: 1000,
        tsval: None,
        tsecr: 0,
    };
    a.on_segment(&p.seg(TcpFlags::SYN | TcpFlags::ACK, &[]), MS);
    assert_eq!(a.state(), State::SynSent);
    let out = drain(&mut a, MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.flags, TcpFlags::RST);
    assert_eq!(out[0].header.seq, syn.header.seq + 5);
    // A RST without an acceptable ACK is ignored in SYN-SENT.
    a.on_segment(&p.seg(TcpFlags::RST, &[]), MS);
    assert_eq!(a.state(), State::SynSent);
}

#[test]
fn listener_backlog_full_drops_syns() {
    let cfg = TcpConfig {
        backlog_full: crate::tcp::BacklogFullPolicy::Drop,
        ..TcpConfig::default()
    };
    let mut sim = Sim::symmetric(4, LinkConfig::default());
    sim.hosts[1].listener = Some(Listener::new(&cfg, isn(), addr_b(), 2));
    sim.hosts[1].auto_accept = false;
    for port in [1001, 1002, 1003] {
        let local = SocketAddrV4::new(ADDR_A, port);
        let c = Connection::connect(&cfg, &isn(), local, addr_b(), 0);
        sim.hosts[0].conns.push(c);
    }
    sim.run_to(500 * MS);
    {
        let l = sim.hosts[1].listener.as_ref().unwrap();
        assert_eq!(l.pending_len(), 2);
        assert_eq!(l.stats().syns_accepted, 2);
        assert_eq!(l.stats().syns_dropped_backlog_full, 1);
    }
    let states: Vec<_> = sim.hosts[0].conns.iter().map(|c| c.state()).collect();
    assert_eq!(
        states,
        [State::Established, State::Established, State::SynSent]
    );
    // The third client retransmits at 1 s: still full, dropped again.
    sim.run_to(2 * SEC);
    let l = sim.hosts[1].listener.as_mut().unwrap();
    assert_eq!(l.stats().syns_dropped_backlog_full, 2);
    // The application accepts one; the retransmission at 3 s gets in.
    let c = l.accept().unwrap();
    assert_eq!(c.remote(), SocketAddrV4::new(ADDR_A, 1001));
    assert_eq!(l.pending_len(), 1);
    sim.run_to(4 * SEC);
    assert_eq!(sim.hosts[0].conns[2].state(), State::Established);
    let l = sim.hosts[1].listener.as_mut().unwrap();
    assert_eq!(l.stats().syns_accepted, 3);
    assert_eq!(l.stats().syns_dropped_backlog_full, 2);
    assert!(l.accept().is_some() && l.accept().is_some() && l.accept().is_none());
    assert_eq!(l.stats().accepted, 3);
    let syns = sim
        .sent_by(0)
        .filter(|r| r.header.src_port == 1003 && r.has(TcpFlags::SYN))
        .map(|r| r.time)
        .collect::<Vec<_>>();
    assert_eq!(syns, [0, SEC, 3 * SEC]);
    let _ = ADDR_B;
}

#[test]
fn listener_resets_stray_acks_and_answers_duplicate_syns() {
    let cfg = TcpConfig::default();
    let mut l = Listener::new(&cfg, isn(), addr_b(), 4);
    let p = Peer {
        seq: Seq(100),
        ack: Seq(5555),
        window: 1000,
        tsval: None,
        tsecr: 0,
    };
    let mut stray = p.seg(TcpFlags::ACK, b"x");
    stray.header.src_port = PORT_A;
    stray.header.dst_port = PORT_B;
    l.on_segment(ADDR_A, ADDR_B, &stray, 0);
    let t = l.poll_transmit(0).unwrap();
    assert_eq!((t.src_addr, t.dst_addr), (ADDR_B, ADDR_A));
    assert_eq!((t.header.flags, t.header.seq), (TcpFlags::RST, Seq(5555)));
    assert!(l.poll_transmit(0).is_none());
    // A RST is ignored; a SYN creates a pending connection whose SYN-ACK goes out, and the
    // same SYN again makes it resend the SYN-ACK.
    let mut rst = stray;
    rst.header.flags = TcpFlags::RST;
    l.on_segment(ADDR_A, ADDR_B, &rst, 0);
    assert!(l.poll_transmit(0).is_none());
    let mut syn = stray;
    syn.header.flags = TcpFlags::SYN;
    syn.payload = &[];
    l.on_segment(ADDR_A, ADDR_B, &syn, 0);
    let s1 = l.poll_transmit(0).unwrap().header;
    assert_eq!(s1.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(s1.ack, Seq(101));
    assert!(l.poll_transmit(0).is_none());
    l.on_segment(ADDR_A, ADDR_B, &syn, 5 * MS);
    let s2 = l.poll_transmit(5 * MS).unwrap().header;
    assert_eq!((s2.flags, s2.seq), (s1.flags, s1.seq));
    assert_eq!(l.pending_len(), 1);
    assert!(l.accept().is_none()); // not established yet
                                   // SYN-ACK retries (five, doubling from 1 s), then the pending connection is dropped.
    let mut times = Vec::new();
    let mut now = 5 * MS;
    while let Some(t) = l.next_timer() {
        now = t;
        l.on_timer(now);
        while let Some(t) = l.poll_transmit(now) {
            assert!(t.header.has(TcpFlags::SYN));
            times.push(now);
        }
    }
    // (The resend for the duplicate SYN did not restart the timer armed at 0.)
    assert_eq!(times, [1, 3, 7, 15, 31].map(|s| s * SEC).to_vec());
    assert_eq!(now, 63 * SEC);
    assert_eq!(l.pending_len(), 0);
    assert_eq!(l.stats().pending_failed, 1);
}
