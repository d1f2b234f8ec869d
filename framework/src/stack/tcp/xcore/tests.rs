//! Two TCP layers joined by an in-memory wire, each with a bridge, driven with their
//! endpoints from one thread.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use super::*;
use crate::mem::{HugePolicy, Mempool, MempoolParams};
use crate::stack::tcp::layer::{CloseReason, LayerParams, SourceFn, TcpLayer, WireLog};
use crate::tcp::{IsnGenerator, TcpConfig, TcpSegment};

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn pool(n: u32) -> Mempool {
    let mut p = MempoolParams::new("xcore-test", n);
    p.huge = HugePolicy::Off;
    p.cache_size = 0;
    Mempool::new(&p).unwrap()
}

fn layer(addr: Ipv4Addr, buf: usize, max: usize) -> TcpLayer {
    let src: SourceFn = Arc::new(move |_| Some((addr, 0)));
    TcpLayer::new(
        TcpConfig {
            send_buffer: buf,
            recv_buffer: buf,
            max_ooo_bytes: buf,
            ..TcpConfig::default()
        },
        LayerParams {
            max_connections: max,
            max_time_wait: 0,
            ..LayerParams::default()
        },
        IsnGenerator::new([3; 16]),
        src,
        u64::from(addr.octets()[3]),
        0,
    )
}

/// Host A listens on :7 through a bridge (server endpoint `sa`); host B opens connections
/// through another bridge (client endpoint `eb`).
struct Net {
    a: TcpLayer,
    b: TcpLayer,
    ea: XcoreEndpoint,
    eb: XcoreEndpoint,
    sa: Arc<BridgeStats>,
    sb: Arc<BridgeStats>,
    now: u64,
}

fn net(p: XcoreParams, tcp_buf: usize, pool: &Mempool) -> Net {
    let mut a = layer(A, tcp_buf, p.max_sockets);
    let mut b = layer(B, tcp_buf, p.max_sockets);
    let (la, ra) = link(p.ring_size).unwrap();
    let (lb, rb) = link(p.ring_size).unwrap();
    let bridge_a = XcoreBridge::new(p, pool.clone(), vec![la]);
    let sa = bridge_a.stats();
    let app = a.add_app(Box::new(bridge_a));
    a.listen(SocketAddrV4::new(A, 7), app).unwrap();
    let bridge_b = XcoreBridge::new(p, pool.clone(), vec![lb]);
    let sb = bridge_b.stats();
    b.add_app(Box::new(bridge_b));
    Net {
        a,
        b,
        ea: XcoreEndpoint::new(p, pool.clone(), vec![ra]),
        eb: XcoreEndpoint::new(p, pool.clone(), vec![rb]),
        sa,
        sb,
        now: 1,
    }
}

impl Net {
    /// One turn of both stacks (1 ms of virtual time), segments delivered until quiet.
    fn step(&mut self) {
        self.now += 1_000_000;
        let mut w = WireLog::default();
        self.a.poll(self.now, &mut w);
        self.b.poll(self.now, &mut w);
        while !w.0.is_empty() {
            let mut next = WireLog::default();
            for (src, dst, bytes) in w.0.drain(..) {
                let seg = TcpSegment::parse(&bytes).unwrap();
                let l = if dst == A { &mut self.a } else { &mut self.b };
                l.input(src, dst, &seg, 0, self.now, &mut next);
            }
            w = next;
        }
    }
}

fn params(ring: usize, window: u32, segs: u32, max: usize) -> XcoreParams {
    XcoreParams {
        ring_size: ring,
        rx_window: window,
        rx_segments: segs,
        tx_window: window,
        tx_segments: segs,
        max_sockets: max,
        outbox_limit: 64,
    }
}

fn random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 32) as u8
        })
        .collect()
}

/// Drains events of an endpoint into a list.
fn events(ep: &mut XcoreEndpoint) -> Vec<XEvent> {
    let mut v = Vec::new();
    while let Some(e) = ep.poll_event() {
        v.push(e);
    }
    ep.flush();
    v
}

fn connect(n: &mut Net, token: u64) -> (XSock, XSock) {
    n.eb.connect("198.18.0.1:7".parse().unwrap(), token)
        .unwrap();
    let (mut c, mut s) = (None, None);
    for _ in 0..10 {
        n.step();
        for e in events(&mut n.eb) {
            if let XEvent::Connected { sock, token: t, .. } = e {
                assert_eq!(t, token);
                c = Some(sock);
            }
        }
        for e in events(&mut n.ea) {
            if let XEvent::Accepted { sock, remote, .. } = e {
                assert_eq!(*remote.ip(), B);
                s = Some(sock);
            }
        }
        if let (Some(c), Some(s)) = (c, s) {
            return (c, s);
        }
    }
    panic!("no connection");
}

#[test]
fn echo_through_two_bridges_is_byte_exact_and_ordered() {
    let pool = pool(4096);
    let mut n = net(params(64, 8192, 16, 8), 16384, &pool);
    let (c, s) = connect(&mut n, 42);
    let data = random(300_000, 7);
    let (mut sent, mut got) = (0, Vec::new());
    let mut echo = XcoreEcho::new(4096);
    let mut seen_peer_closed = false;
    let mut shut = false;
    let mut server_events = Vec::new();
    for _ in 0..20_000 {
        sent += n.eb.write(c, &data[sent..]);
        if sent == data.len() && !shut {
            n.eb.shutdown(c);
            shut = true;
        }
        n.eb.flush();
        n.step();
        while let Some(e) = n.ea.poll_event() {
            server_events.push(e);
            echo.on_event(&mut n.ea, e);
        }
        n.ea.flush();
        n.step();
        // One event at a time: a Closed drops what is unread.
        while let Some(e) = n.eb.poll_event() {
            match e {
                XEvent::Readable { sock } => {
                    assert_eq!(sock, c);
                    let mut buf = [0u8; 3000];
                    loop {
                        let k = n.eb.read(c, &mut buf);
                        if k == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..k]);
                    }
                }
                XEvent::PeerClosed { sock } => {
                    assert_eq!(sock, c);
                    assert_eq!(n.eb.available(c), 0, "PeerClosed after every byte");
                    seen_peer_closed = true;
                }
                _ => {}
            }
        }
        n.eb.flush();
        if seen_peer_closed {
            break;
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    assert!(seen_peer_closed);
    // Server: data, then the FIN; the echo closed itself so no Closed event.
    let pc = server_events
        .iter()
        .position(|e| matches!(e, XEvent::PeerClosed { .. }))
        .expect("server saw the FIN");
    assert!(server_events[..pc]
        .iter()
        .any(|e| matches!(e, XEvent::Readable { sock } if *sock == s)));
    assert!(!server_events
        .iter()
        .any(|e| matches!(e, XEvent::Closed { .. })));
    assert_eq!(echo.bytes, data.len() as u64);
    // Every mbuf went back to the pool.
    n.eb.close(c);
    n.eb.flush();
    for _ in 0..5 {
        n.step();
    }
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn a_stale_handle_finds_nothing_after_its_slot_is_reused() {
    let pool = pool(1024);
    // One connection slot per stack, no TIME-WAIT: the second connection takes slot 0 again.
    let mut n = net(params(64, 8192, 16, 1), 8192, &pool);
    let (c1, s1) = connect(&mut n, 1);
    n.eb.close(c1);
    n.eb.flush();
    let mut closed = false;
    for _ in 0..10 {
        n.step();
        for e in events(&mut n.ea) {
            if let XEvent::PeerClosed { sock } = e {
                assert_eq!(sock, s1);
                n.ea.close(s1);
                closed = true;
            }
        }
    }
    assert!(closed);
    assert_eq!(n.a.connections(), 0);
    let (c2, s2) = connect(&mut n, 2);
    assert_eq!((s1.slot(), c1.slot()), (s2.slot(), c2.slot()));
    assert_ne!(s1, s2);
    // The old handle is dead on the endpoint...
    assert_eq!(n.ea.write(s1, b"stale"), 0);
    assert_eq!(n.ea.send_space(s1), 0);
    n.ea.abort(s1);
    n.ea.flush();
    // ...and on the bridge: a command carrying the old id (sent raw) is counted, not applied.
    let m = {
        let mut m = pool.alloc().unwrap();
        m.append(5).unwrap().copy_from_slice(b"stale");
        m
    };
    assert!(n.ea.raw_command(
        0,
        ToStack::Write {
            id: s1.id(),
            data: m
        }
    ));
    assert!(n.ea.raw_command(0, ToStack::Abort { id: s1.id() }));
    n.step();
    assert_eq!(n.sa.stale_commands.get(), 2);
    // The new connection still works.
    assert_eq!(n.ea.write(s2, b"fresh"), 5);
    n.ea.flush();
    n.step();
    n.step();
    let ev = events(&mut n.eb);
    assert!(ev.contains(&XEvent::Readable { sock: c2 }), "{ev:?}");
    let mut buf = [0u8; 16];
    assert_eq!(n.eb.read(c2, &mut buf), 5);
    assert_eq!(&buf[..5], b"fresh");
}

#[test]
fn an_app_that_does_not_read_closes_the_tcp_window() {
    let pool = pool(1024);
    let tcp_buf = 4096;
    let mut n = net(params(64, 1024, 4, 4), tcp_buf, &pool);
    let (c, s) = connect(&mut n, 1);
    let data = random(64 * 1024, 3);
    let mut sent = 0;
    let mut short = false;
    for _ in 0..200 {
        let w = n.eb.write(c, &data[sent..]);
        sent += w;
        short |= w < data.len() - sent + w;
        n.eb.flush();
        n.step();
        events(&mut n.ea); // events only: nothing read
        events(&mut n.eb);
        n.step();
    }
    // The server app holds one window, the server's TCP receive buffer is full (window 0),
    // the client's send buffer and cross-core window are full: the writer is blocked.
    assert_eq!(n.ea.available(s), 1024);
    assert_eq!(n.sa.rx_bytes.get(), 1024);
    let conn = n.a.connection(s.id()).unwrap();
    assert!(conn.recv_window() < 1460, "window {}", conn.recv_window());
    assert!(conn.recv_available() as u32 + conn.recv_window() + 1460 >= tcp_buf as u32);
    assert!(n.b.connection(c.id()).unwrap().send_queued() > 0);
    assert!(short);
    assert_eq!(n.eb.send_space(c), 0);
    assert!(sent < data.len());
    let blocked_at = sent;
    // Now read: everything arrives, in order, and the writer is unblocked by Writable.
    let mut got = Vec::new();
    let mut writable = 0;
    for _ in 0..5000 {
        let mut buf = [0u8; 700];
        loop {
            let k = n.ea.read(s, &mut buf);
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        n.ea.flush();
        n.step();
        for e in events(&mut n.eb) {
            if e == (XEvent::Writable { sock: c }) {
                writable += 1;
            }
        }
        sent += n.eb.write(c, &data[sent..]);
        n.eb.flush();
        n.step();
        events(&mut n.ea);
        if got.len() == data.len() {
            break;
        }
    }
    assert!(writable > 0);
    assert!(sent > blocked_at);
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

#[test]
fn a_full_event_ring_or_an_empty_pool_loses_nothing() {
    let pool = pool(512);
    // Two-slot rings and several sockets: events wait in the outbox, data in TCP buffers.
    let mut n = net(params(2, 4096, 8, 8), 8192, &pool);
    let mut pairs = Vec::new();
    for t in 0..4 {
        pairs.push(connect(&mut n, t));
    }
    let data = random(20_000, 11);
    let mut sent = [0usize; 4];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut hog: Vec<Mbuf> = Vec::new();
    for round in 0..4000 {
        // Phase 1 (rounds 0..50): the server app does not read; 2: it reads, but the pool is
        // empty; 3: the pool is back.
        if round == 100 {
            hog.clear();
        }
        for (i, (c, _)) in pairs.iter().enumerate() {
            sent[i] += n.eb.write(*c, &data[sent[i]..]);
        }
        n.eb.flush();
        if (50..100).contains(&round) {
            // Whatever the reads gave back is taken again before the stacks run.
            while let Some(m) = pool.alloc() {
                hog.push(m);
            }
        }
        n.step();
        // Phase 1: two events per turn at most, the event ring stays full; then all.
        let budget = if round < 50 { 2 } else { usize::MAX };
        for _ in 0..budget {
            if n.ea.poll_event().is_none() {
                break;
            }
        }
        if round >= 50 {
            for (i, (_, s)) in pairs.iter().enumerate() {
                let mut buf = [0u8; 4096];
                let k = n.ea.read(*s, &mut buf);
                got[i].extend_from_slice(&buf[..k]);
            }
        }
        n.ea.flush();
        events(&mut n.eb);
        if got.iter().all(|g| g.len() == data.len()) {
            break;
        }
    }
    for g in &got {
        assert_eq!(g.len(), data.len());
        assert!(*g == data);
    }
    assert!(n.sa.ring_full.get() > 0, "the ring never filled");
    assert!(n.sa.no_mbuf.get() > 0, "the pool never ran dry");
    assert_eq!(n.sa.rx_lost.get(), 0);
    assert_eq!(n.sb.rx_lost.get(), 0);
}

#[test]
fn abort_close_refused_and_reset_paths() {
    let pool = pool(1024);
    let mut n = net(params(64, 8192, 16, 8), 8192, &pool);
    // Connect to a closed port: refused.
    n.eb.connect("198.18.0.1:9".parse().unwrap(), 77).unwrap();
    for _ in 0..3 {
        n.step();
    }
    assert_eq!(
        events(&mut n.eb),
        vec![XEvent::ConnectFailed {
            token: 77,
            error: ConnectError::Refused
        }]
    );
    // The server app aborts: the client sees a reset.
    let (c, s) = connect(&mut n, 1);
    n.ea.abort(s);
    n.ea.flush();
    n.step();
    n.step();
    assert_eq!(
        events(&mut n.eb),
        vec![XEvent::Closed {
            sock: c,
            reason: CloseReason::Reset
        }]
    );
    assert_eq!(n.eb.write(c, b"x"), 0);
    // The server closes with bytes it never read: a reset too (RFC 9293 §3.10.4).
    let (c, s) = connect(&mut n, 2);
    n.eb.write(c, b"unread");
    n.eb.flush();
    n.step();
    n.step();
    assert!(events(&mut n.ea).contains(&XEvent::Readable { sock: s }));
    n.ea.close(s);
    n.ea.flush();
    n.step();
    n.step();
    assert!(events(&mut n.eb).contains(&XEvent::Closed {
        sock: c,
        reason: CloseReason::Reset
    }));
    // Orderly: the client half-closes, the server reads, answers and closes; the client
    // gets the bytes, then PeerClosed, then (after its own shutdown reached TIME-WAIT) Closed.
    let (c, s) = connect(&mut n, 3);
    n.eb.write(c, b"ping");
    n.eb.shutdown(c);
    assert_eq!(n.eb.write(c, b"more"), 0, "no writes after shutdown");
    n.eb.flush();
    n.step();
    n.step();
    let ev = events(&mut n.ea);
    assert_eq!(
        ev,
        vec![XEvent::Readable { sock: s }, XEvent::PeerClosed { sock: s }]
    );
    let mut buf = [0u8; 8];
    assert_eq!(n.ea.read(s, &mut buf), 4);
    assert!(n.ea.is_read_closed(s));
    assert_eq!(n.ea.write(s, b"pong"), 4);
    n.ea.close(s);
    n.ea.flush();
    for _ in 0..3 {
        n.step();
    }
    let ev = events(&mut n.eb);
    assert_eq!(
        ev,
        vec![
            XEvent::Readable { sock: c },
            XEvent::PeerClosed { sock: c },
            XEvent::Closed {
                sock: c,
                reason: CloseReason::Closed
            }
        ]
    );
    // Closed is final: the unread "pong" went with it.
    assert_eq!(n.eb.available(c), 0);
    for _ in 0..3 {
        n.step();
    }
    assert_eq!(n.a.connections(), 0);
}

#[test]
fn accepted_connections_go_to_the_app_lcores_in_turn() {
    let pool = pool(1024);
    let p = params(64, 8192, 16, 8);
    let mut a = layer(A, 8192, 8);
    let mut b = layer(B, 8192, 8);
    let (l1, r1) = link(64).unwrap();
    let (l2, r2) = link(64).unwrap();
    let (lb, rb) = link(64).unwrap();
    let app = a.add_app(Box::new(XcoreBridge::new(p, pool.clone(), vec![l1, l2])));
    a.listen(SocketAddrV4::new(A, 7), app).unwrap();
    b.add_app(Box::new(XcoreBridge::new(p, pool.clone(), vec![lb])));
    let mut apps = [
        XcoreEndpoint::new(p, pool.clone(), vec![r1]),
        XcoreEndpoint::new(p, pool.clone(), vec![r2]),
    ];
    let mut n = Net {
        a,
        b,
        ea: XcoreEndpoint::new(p, pool.clone(), Vec::new()),
        eb: XcoreEndpoint::new(p, pool.clone(), vec![rb]),
        sa: Arc::new(BridgeStats::default()),
        sb: Arc::new(BridgeStats::default()),
        now: 1,
    };
    for t in 0..4 {
        n.eb.connect("198.18.0.1:7".parse().unwrap(), t).unwrap();
    }
    let mut accepted = [Vec::new(), Vec::new()];
    let mut clients = Vec::new();
    for _ in 0..5 {
        n.step();
        for (i, ep) in apps.iter_mut().enumerate() {
            for e in events(ep) {
                if let XEvent::Accepted { sock, .. } = e {
                    accepted[i].push(sock);
                }
            }
        }
        for e in events(&mut n.eb) {
            if let XEvent::Connected { sock, token, .. } = e {
                clients.push((token, sock));
            }
        }
    }
    assert_eq!((accepted[0].len(), accepted[1].len()), (2, 2));
    // Each app lcore answers on its own sockets; every client gets its own answer.
    for (i, ep) in apps.iter_mut().enumerate() {
        for s in &accepted[i] {
            let msg = format!("from app {i} slot {}", s.slot());
            assert_eq!(ep.write(*s, msg.as_bytes()), msg.len());
        }
        ep.flush();
    }
    n.step();
    n.step();
    let mut answers = Vec::new();
    while let Some(e) = n.eb.poll_event() {
        if let XEvent::Readable { sock } = e {
            let mut buf = [0u8; 64];
            let k = n.eb.read(sock, &mut buf);
            answers.push(String::from_utf8(buf[..k].to_vec()).unwrap());
        }
    }
    answers.sort();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.starts_with("from app 0"))
            .count(),
        2
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.starts_with("from app 1"))
            .count(),
        2
    );
}

#[test]
fn small_writes_gather_into_one_mbuf_until_full_or_flushed() {
    let p = params(64, 64 << 10, 64, 8);
    let pool = pool(256);
    let mut n = net(p, 64 << 10, &pool);
    let (c, s) = connect(&mut n, 1);
    let room = pool.data_room() as usize;
    // 100 writes of 10 bytes: one mbuf, sent at the flush.
    let data = random(3 * room, 7);
    let before = pool.available();
    for k in 0..100 {
        assert_eq!(n.eb.write(c, &data[k * 10..k * 10 + 10]), 10);
    }
    assert_eq!(before - pool.available(), 1, "one gathering mbuf");
    // Then more than two mbufs' worth: the full ones go at once, the rest at the flush.
    assert_eq!(n.eb.write(c, &data[1000..]), data.len() - 1000);
    assert_eq!(before - pool.available(), 3);
    n.eb.flush();
    let mut got = Vec::new();
    for _ in 0..20 {
        n.step();
        events(&mut n.ea);
        let mut buf = vec![0u8; 4096];
        let k = n.ea.read(s, &mut buf);
        got.extend_from_slice(&buf[..k]);
        n.ea.flush();
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    // Written, then shut down in the same turn: the bytes go before the FIN.
    n.eb.write(c, b"last");
    n.eb.shutdown(c);
    n.eb.flush();
    n.step();
    n.step();
    assert_eq!(
        events(&mut n.ea),
        vec![XEvent::Readable { sock: s }, XEvent::PeerClosed { sock: s }]
    );
    let mut buf = [0u8; 8];
    assert_eq!(n.ea.read(s, &mut buf), 4);
    assert_eq!(&buf[..4], b"last");
}
