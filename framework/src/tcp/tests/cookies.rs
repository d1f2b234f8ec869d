//! SYN cookies (RFC 4987 §3.6): a SYN flood against a small backlog, forged and stale
//! cookies, and the options that survive the round trip.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::tcp::sim::{LinkConfig, Sim, XorShift, ADDR_A, ADDR_B};
use crate::tcp::{BacklogFullPolicy, Listener, COOKIE_PERIOD, SEC};

fn syn(src_port: u16, seq: Seq, opts: TcpOptions) -> TcpSegment<'static> {
    TcpSegment {
        header: TcpHeader {
            src_port,
            dst_port: PORT_B,
            seq,
            ack: Seq(0),
            flags: TcpFlags::SYN,
            window: 65535,
            options: opts,
        },
        payload: &[],
        payload_tail: &[],
    }
}

fn full_opts(tsval: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(1400),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some(Timestamps { tsval, tsecr: 0 }),
        ..Default::default()
    }
}

#[test]
fn syn_flood_keeps_the_listener_bounded_and_a_client_still_connects() {
    let cfg = TcpConfig::default();
    assert_eq!(cfg.backlog_full, BacklogFullPolicy::SynCookies);
    const BACKLOG: usize = 8;
    let mut sim = Sim::symmetric(61, LinkConfig::default());
    sim.hosts[1].listener = Some(Listener::new(&cfg, isn(), addr_b(), BACKLOG));
    // The flood's source addresses do not exist: nobody answers the SYN-ACKs.
    sim.hosts[0].stray_resets = false;
    let mut rng = XorShift::new(62);
    let mut flood = 0u64;
    let (up, down) = (pattern(200_000, 1), pattern(100_000, 2));
    let (mut up_sent, mut down_sent) = (0, 0);
    let (mut up_got, mut down_got) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 65536];
    let mut max_pending = 0;
    // 3 s of flood, 3 SYNs per millisecond from random sources; the client connects at
    // 100 ms and moves data both ways meanwhile.
    for ms in 1..=3000u64 {
        sim.run_to(ms * MS);
        let now = sim.now;
        if ms == 100 {
            let c = Connection::connect(&cfg, &isn(), addr_a(), addr_b(), now);
            sim.hosts[0].conns.push(c);
        }
        let l = sim.hosts[1].listener.as_mut().expect("listener");
        for _ in 0..3 {
            let r = rng.next_u64();
            let src = Ipv4Addr::from((r >> 32) as u32 | 0x0a00_0000);
            let opts = if r & 1 == 0 {
                full_opts(r as u32)
            } else {
                plain_peer()
            };
            l.on_segment(
                src,
                ADDR_B,
                &syn((r >> 8) as u16 | 1024, Seq(r as u32), opts),
                now,
            );
            flood += 1;
        }
        max_pending = max_pending.max(l.pending_len());
        assert!(l.pending_len() <= BACKLOG);
        if sim.hosts[0].conns.is_empty() || sim.hosts[1].conns.is_empty() {
            continue;
        }
        let a = sim.a();
        up_sent += a.send(&up[up_sent..], now);
        loop {
            let n = a.recv(&mut buf);
            if n == 0 {
                break;
            }
            down_got.extend_from_slice(&buf[..n]);
        }
        let b = sim.b();
        down_sent += b.send(&down[down_sent..], now);
        loop {
            let n = b.recv(&mut buf);
            if n == 0 {
                break;
            }
            up_got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(flood, 9000);
    assert_eq!(max_pending, BACKLOG);
    let l = *sim.hosts[1].listener.as_ref().expect("listener").stats();
    // The client got in by cookie, evicting one half-open flood entry.
    assert_eq!(l.syn_cookies_accepted, 1, "{l:?}");
    assert_eq!(l.pending_evicted, 1);
    assert!(l.syn_cookies_sent > 8000, "{l:?}");
    // Eight flood SYNs filled the backlog at first; when the client's connection was
    // accepted, its slot went to one more.
    assert_eq!(l.syns_accepted, BACKLOG as u64 + 1);
    assert_eq!(sim.hosts[1].conns.len(), 1);
    let b = sim.b();
    assert_eq!(b.state(), State::Established);
    assert!(b.sack_enabled() && b.timestamps_enabled());
    assert_eq!(b.window_scales(), (3, 3));
    assert_eq!(up_got.len(), up.len());
    assert_eq!(digest(&up_got), digest(&up));
    assert_eq!(down_got.len(), down.len());
    assert_eq!(digest(&down_got), digest(&down));
    eprintln!("flood: {l:?}");
}

/// A listener with backlog 1, already holding one half-open connection.
fn full_listener(cfg: &TcpConfig) -> Listener {
    let mut l = Listener::new(cfg, isn(), addr_b(), 1);
    l.on_segment(
        Ipv4Addr::new(10, 9, 9, 9),
        ADDR_B,
        &syn(999, Seq(5), plain_peer()),
        0,
    );
    assert_eq!(l.pending_len(), 1);
    while l.poll_transmit(0).is_some() {}
    l
}

/// Sends a SYN from `port` to a full listener and returns the cookie SYN-ACK.
fn cookie_synack(l: &mut Listener, port: u16, seq: Seq, opts: TcpOptions, now: u64) -> TcpHeader {
    let sent = l.stats().syn_cookies_sent;
    l.on_segment(ADDR_A, ADDR_B, &syn(port, seq, opts), now);
    assert_eq!(l.stats().syn_cookies_sent, sent + 1);
    assert_eq!(l.pending_len(), 1, "no state for a cookie");
    let h = l.poll_transmit(now).expect("SYN-ACK").header;
    assert_eq!(h.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(h.ack, seq + 1);
    assert!(l.poll_transmit(now).is_none());
    h
}

fn ack_for(port: u16, seq: Seq, synack: &TcpHeader, payload: &'static [u8]) -> TcpSegment<'static> {
    TcpSegment {
        header: TcpHeader {
            src_port: port,
            dst_port: PORT_B,
            seq: seq + 1,
            ack: synack.seq + 1,
            flags: TcpFlags::ACK,
            window: 1000,
            options: TcpOptions {
                timestamps: synack.options.timestamps.map(|t| Timestamps {
                    tsval: 777,
                    tsecr: t.tsval,
                }),
                ..Default::default()
            },
        },
        payload,
        payload_tail: &[],
    }
}

#[test]
fn forged_and_stale_cookie_acks_are_rejected() {
    let cfg = TcpConfig::default();
    let t0 = 1000 * SEC;
    let mut l = full_listener(&cfg);
    let cseq = Seq(4242);
    let sa = cookie_synack(&mut l, 5000, cseq, full_opts(1), t0);
    // Forged: a wrong acknowledgment number, or the right one from another port or with
    // another sequence number. Each is rejected, counted and reset.
    let mut rng = XorShift::new(9);
    let mut forged = Vec::new();
    let mut a = ack_for(5000, cseq, &sa, &[]);
    a.header.ack = sa.seq + 2;
    forged.push(a);
    let mut a = ack_for(5001, cseq, &sa, &[]);
    a.header.src_port = 5001;
    forged.push(a);
    forged.push(ack_for(5000, cseq + 1, &sa, &[]));
    for _ in 0..100 {
        let mut a = ack_for(5000, cseq, &sa, &[]);
        a.header.ack = Seq(rng.next_u64() as u32);
        forged.push(a);
    }
    for (i, a) in forged.iter().enumerate() {
        l.on_segment(ADDR_A, ADDR_B, a, t0 + MS);
        assert_eq!(l.stats().syn_cookies_rejected, i as u64 + 1);
        let t = l.poll_transmit(t0 + MS).expect("reset");
        assert!(t.header.flags.contains(TcpFlags::RST));
    }
    assert_eq!(l.pending_len(), 1);
    assert_eq!(l.stats().syn_cookies_accepted, 0);
    // Malformed option bits in TSecr (bit 5 is never set by us).
    let mut a = ack_for(5000, cseq, &sa, &[]);
    if let Some(ts) = a.header.options.timestamps.as_mut() {
        ts.tsecr |= 1 << 5;
    }
    l.on_segment(ADDR_A, ADDR_B, &a, t0 + MS);
    assert_eq!(l.stats().syn_cookies_rejected, 104);
    while l.poll_transmit(t0).is_some() {}

    // The genuine ACK one period later (previous counter) is accepted ...
    let mut l2 = full_listener(&cfg);
    let sa2 = cookie_synack(&mut l2, 5000, cseq, full_opts(1), t0);
    assert_eq!(sa2.seq, sa.seq, "cookies are stateless and deterministic");
    l2.on_segment(
        ADDR_A,
        ADDR_B,
        &ack_for(5000, cseq, &sa, &[]),
        t0 + COOKIE_PERIOD,
    );
    assert_eq!(l2.stats().syn_cookies_accepted, 1);
    assert_eq!(l2.stats().pending_evicted, 1);
    let c = l2.accept().expect("connection");
    assert_eq!(c.remote(), SocketAddrV4::new(ADDR_A, 5000));
    assert_eq!(
        (c.state(), c.iss(), c.irs()),
        (State::Established, sa.seq, cseq)
    );

    // ... two periods later it is stale (a fresh SYN keeps cookie checking on).
    let t2 = t0 + 2 * COOKIE_PERIOD;
    cookie_synack(&mut l, 6000, Seq(1), plain_peer(), t2 - SEC);
    l.on_segment(ADDR_A, ADDR_B, &ack_for(5000, cseq, &sa, &[]), t2);
    assert_eq!(l.stats().syn_cookies_rejected, 105);
    assert_eq!(l.stats().syn_cookies_accepted, 0);
    // Long after the last cookie, stray ACKs are plain resets, not cookie failures.
    l.on_segment(
        ADDR_A,
        ADDR_B,
        &ack_for(5000, cseq, &sa, &[]),
        t2 + 10 * COOKIE_PERIOD,
    );
    assert_eq!(l.stats().syn_cookies_rejected, 105);
    assert!(l.stats().resets_sent >= 105);
}

#[test]
fn options_round_trip_through_the_cookie() {
    let cfg = TcpConfig::default();
    let now = 5 * SEC;
    // With timestamps: MSS, window scale and SACK-permitted come back.
    let mut l = full_listener(&cfg);
    let sa = cookie_synack(&mut l, 7000, Seq(100), full_opts(55), now);
    assert_eq!(sa.options.mss, Some(1460));
    assert_eq!(sa.options.wscale, Some(cfg.wscale()));
    assert!(sa.options.sack_permitted);
    let ts = sa.options.timestamps.expect("timestamps");
    assert_eq!((ts.tsval & 0x3f, ts.tsecr), (7 | 16, 55));
    // The returning ACK carries data, delivered at once.
    l.on_segment(
        ADDR_A,
        ADDR_B,
        &ack_for(7000, Seq(100), &sa, b"hello"),
        now + 20 * MS,
    );
    let mut c = l.accept().expect("connection");
    assert_eq!(c.window_scales(), (7, cfg.wscale()));
    assert!(c.sack_enabled() && c.timestamps_enabled());
    assert_eq!(c.mss(), 1400 - 12);
    assert_eq!(c.send_window(), 1000 << 7);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), 5);
    assert_eq!(&buf[..5], b"hello");
    // The handshake ACK's TSecr gave no RTT sample (it carries option bits).
    assert_eq!(c.srtt(), None);
    assert_eq!(c.send(b"world", now + 21 * MS), 5);
    let out = drain(&mut c, now + 21 * MS);
    assert!(out
        .iter()
        .any(|o| o.payload == b"world" && o.header.seq == sa.seq + 1));

    // Without timestamps, window scaling and SACK are lost; the MSS survives, rounded down
    // to the table.
    let mut l = full_listener(&cfg);
    let opts = TcpOptions {
        mss: Some(1420),
        wscale: Some(7),
        sack_permitted: true,
        ..Default::default()
    };
    let sa = cookie_synack(&mut l, 7001, Seq(200), opts, now);
    assert_eq!(sa.options.wscale, None);
    assert!(!sa.options.sack_permitted && sa.options.timestamps.is_none());
    l.on_segment(ADDR_A, ADDR_B, &ack_for(7001, Seq(200), &sa, &[]), now + MS);
    let c = l.accept().expect("connection");
    assert_eq!(c.window_scales(), (0, 0));
    assert!(!c.sack_enabled() && !c.timestamps_enabled());
    assert_eq!(c.mss(), 1400);
    assert_eq!(c.send_window(), 1000);

    // A small MSS maps to the smallest entry; the Drop policy sends no cookie.
    let mut l = full_listener(&cfg);
    let sa = cookie_synack(&mut l, 7002, Seq(300), plain_peer_mss(536), now);
    l.on_segment(ADDR_A, ADDR_B, &ack_for(7002, Seq(300), &sa, &[]), now + MS);
    assert_eq!(l.accept().expect("connection").mss(), 536);
    let drop_cfg = TcpConfig {
        backlog_full: BacklogFullPolicy::Drop,
        ..cfg
    };
    let mut l = full_listener(&drop_cfg);
    l.on_segment(ADDR_A, ADDR_B, &syn(7003, Seq(1), plain_peer()), now);
    assert!(l.poll_transmit(now).is_none());
    assert_eq!(l.stats().syns_dropped_backlog_full, 1);
}

fn plain_peer_mss(mss: u16) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        ..Default::default()
    }
}

#[test]
fn random_segments_to_a_cookie_listener_keep_it_bounded() {
    let cfg = TcpConfig::default();
    let mut l = Listener::new(&cfg, isn(), addr_b(), 4);
    let mut rng = XorShift::new(5);
    let flag_set = [
        TcpFlags::SYN,
        TcpFlags::ACK,
        TcpFlags::SYN | TcpFlags::ACK,
        TcpFlags::RST,
        TcpFlags::ACK | TcpFlags::FIN,
        TcpFlags::ACK | TcpFlags::PSH,
    ];
    let mut now = 0;
    for i in 0..50_000u64 {
        now += rng.below(2 * MS);
        let r = rng.next_u64();
        let src = Ipv4Addr::new(10, 0, (r >> 40) as u8 & 3, (r >> 48) as u8);
        let opts = TcpOptions {
            mss: rng.chance(0.8).then_some((r >> 16) as u16),
            wscale: rng.chance(0.5).then_some((r >> 8) as u8),
            sack_permitted: r & 1 == 0,
            timestamps: rng.chance(0.5).then_some(Timestamps {
                tsval: r as u32,
                tsecr: (r >> 32) as u32,
            }),
            ..Default::default()
        };
        let seg = TcpSegment {
            header: TcpHeader {
                src_port: 1024 + (r >> 56) as u16,
                dst_port: PORT_B,
                seq: Seq(rng.next_u64() as u32),
                ack: Seq(rng.next_u64() as u32),
                flags: flag_set[rng.below(flag_set.len() as u64) as usize],
                window: r as u16,
                options: opts,
            },
            payload: if i % 7 == 0 { b"data" } else { &[] },
            payload_tail: &[],
        };
        l.on_segment(src, ADDR_B, &seg, now);
        assert!(l.pending_len() <= 4);
        let mut replies = 0;
        while l.poll_transmit(now).is_some() {
            replies += 1;
            assert!(replies <= 64);
        }
        if l.next_timer().is_some_and(|t| t <= now) {
            l.on_timer(now);
        }
        if i % 1000 == 0 {
            while l.accept().is_some() {}
        }
    }
    let s = l.stats();
    assert!(
        s.syn_cookies_sent > 1000 && s.syn_cookies_rejected > 1000,
        "{s:?}"
    );
}
