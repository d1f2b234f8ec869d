//! TCP through the whole stack over ring ports: a ferroplane client (a `TcpApp` doing an
//! active open) against the `tcp-echo` app on another ferroplane stack, bytes compared; and
//! hand-built segments from a test host checked with `etherparse`: handshake and echo, resets
//! for closed ports, malformed segments dropped and counted by reason.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tcp::*;
use common::*;
use etherparse::{SlicedPacket, TransportSlice};
use ferroplane::mem::Mempool;
use ferroplane::port::{Port, RxQueue, TxQueue};
use ferroplane::stack::setup::TcpApps;
use ferroplane::stack::tcp::{CloseReason, TcpApp, TcpControl, TcpSocket};
use ferroplane::wire::checksum;

const ECHO: &str = "name = \"tcp-echo\"\nports = [7, 9007]";

// ---------------------------------------------------------------- hand-built segments

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

/// A TCP segment from host 0 (198.18.0.2) to p0 (198.18.0.1) in an Ethernet frame, built by
/// hand so it can be malformed on purpose.
struct Seg<'a> {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &'a [u8],
    payload: &'a [u8],
    /// Data offset written instead of the right one.
    data_offset: Option<u8>,
    corrupt_checksum: bool,
}

impl Default for Seg<'_> {
    fn default() -> Self {
        Seg {
            sport: 40000,
            dport: 7,
            seq: 1000,
            ack: 0,
            flags: SYN,
            options: &[],
            payload: &[],
            data_offset: None,
            corrupt_checksum: false,
        }
    }
}

fn frame(s: &Seg<'_>) -> Vec<u8> {
    let src = ip("198.18.0.2");
    let dst = ip("198.18.0.1");
    assert_eq!(s.options.len() % 4, 0);
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&s.sport.to_be_bytes());
    tcp.extend_from_slice(&s.dport.to_be_bytes());
    tcp.extend_from_slice(&s.seq.to_be_bytes());
    tcp.extend_from_slice(&s.ack.to_be_bytes());
    let off = s.data_offset.unwrap_or(((20 + s.options.len()) / 4) as u8);
    tcp.push(off << 4);
    tcp.push(s.flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(s.options);
    tcp.extend_from_slice(s.payload);
    let ph = checksum::pseudo_header_v4(src, dst, 6, tcp.len() as u16);
    let mut c = checksum::finish(checksum::combine(ph, checksum::sum(&tcp)));
    if s.corrupt_checksum {
        c ^= 0x0101;
    }
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut iph = vec![0x45, 0];
    iph.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
    iph.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
    iph.extend_from_slice(&src.octets());
    iph.extend_from_slice(&dst.octets());
    let ic = checksum::internet_checksum(&iph);
    iph[10..12].copy_from_slice(&ic.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&P0_MAC.0);
    f.extend_from_slice(&HOST0_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&iph);
    f.extend_from_slice(&tcp);
    f
}

/// What a reply segment says.
#[derive(Debug)]
struct Reply {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    syn: bool,
    ack_flag: bool,
    rst: bool,
    fin: bool,
    payload: Vec<u8>,
}

/// Parses a frame host 0 received (checking both checksums with etherparse's own code).
fn reply(f: &[u8]) -> Reply {
    let s = SlicedPacket::from_ethernet(f).unwrap_or_else(|e| panic!("{e:?}"));
    let Some(etherparse::NetSlice::Ipv4(v4)) = &s.net else {
        panic!("not IPv4: {f:02x?}");
    };
    let h = v4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    assert_eq!(h.source, ip("198.18.0.1").octets());
    assert_eq!(h.destination, ip("198.18.0.2").octets());
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!("not TCP: {f:02x?}");
    };
    let th = t.to_header();
    assert_eq!(
        th.checksum,
        th.calc_checksum_ipv4(&h, t.payload()).unwrap(),
        "TCP checksum"
    );
    Reply {
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        syn: t.syn(),
        ack_flag: t.ack(),
        rst: t.rst(),
        fin: t.fin(),
        payload: t.payload().to_vec(),
    }
}

fn echo_bench() -> Bench {
    Bench::new(&config_text(
        ECHO,
        1500,
        r#"
[[neighbours]]
ip = "198.18.0.2"
mac = "02:00:00:00:00:10"
port = "p0"
"#,
    ))
}

fn tcp_replies(b: &mut Bench) -> Vec<Reply> {
    b.recv(0).iter().map(|f| reply(f)).collect()
}

#[test]
fn handshake_echo_and_close_with_a_hand_built_peer() {
    let mut b = echo_bench();
    // SYN with MSS 1460.
    b.send(
        0,
        &frame(&Seg {
            options: &[2, 4, 0x05, 0xb4],
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    assert_eq!(r.len(), 1, "{r:?}");
    let sa = &r[0];
    assert!(sa.syn && sa.ack_flag && !sa.rst, "{sa:?}");
    assert_eq!((sa.sport, sa.dport, sa.ack), (7, 40000, 1001));
    let iss = sa.seq;
    // ACK + data.
    b.send(
        0,
        &frame(&Seg {
            seq: 1001,
            ack: iss.wrapping_add(1),
            flags: ACK | PSH,
            payload: b"hello, ferroplane",
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    let data: Vec<u8> = r.iter().flat_map(|r| r.payload.clone()).collect();
    assert_eq!(data, b"hello, ferroplane", "{r:?}");
    let last = r.last().unwrap();
    assert_eq!(last.seq, iss.wrapping_add(1));
    assert_eq!(last.ack, 1001 + 17);
    // FIN from the peer: the echo closes too (its FIN acknowledges ours).
    b.send(
        0,
        &frame(&Seg {
            seq: 1018,
            ack: iss.wrapping_add(18),
            flags: ACK | FIN,
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    let fin = r.iter().find(|r| r.fin).unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!(fin.ack, 1019);
    assert_eq!(fin.seq, iss.wrapping_add(18));
    assert_eq!(b.count("tcp-input", "conn_accepted"), 1);
    // Its ACK ends the connection (LAST-ACK → CLOSED).
    b.send(
        0,
        &frame(&Seg {
            seq: 1019,
            ack: iss.wrapping_add(19),
            flags: ACK,
            ..Seg::default()
        }),
    );
    b.turns(4);
    assert_eq!(b.count("tcp-input", "conn_closed"), 1);
}

#[test]
fn closed_ports_get_resets_like_rfc_9293_says() {
    let mut b = echo_bench();
    // SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
    b.send(
        0,
        &frame(&Seg {
            dport: 8,
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].rst && r[0].ack_flag && !r[0].syn);
    assert_eq!(
        (r[0].seq, r[0].ack, r[0].sport, r[0].dport),
        (0, 1001, 8, 40000)
    );
    // An ACK to a closed port: <SEQ=SEG.ACK><CTL=RST>.
    b.send(
        0,
        &frame(&Seg {
            dport: 8,
            flags: ACK,
            ack: 0xdead_beef,
            payload: b"x",
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].rst && !r[0].ack_flag);
    assert_eq!(r[0].seq, 0xdead_beef);
    // A reset is never answered.
    b.send(
        0,
        &frame(&Seg {
            dport: 8,
            flags: RST,
            ..Seg::default()
        }),
    );
    b.turns(4);
    assert!(tcp_replies(&mut b).is_empty());
    assert_eq!(b.count("tcp-input", "no_listener"), 3);
    assert_eq!(b.count("tcp-input", "rst_sent"), 2);
    // The second echo port listens too.
    b.send(
        0,
        &frame(&Seg {
            dport: 9007,
            ..Seg::default()
        }),
    );
    b.turns(4);
    let r = tcp_replies(&mut b);
    assert!(r.len() == 1 && r[0].syn && r[0].ack_flag, "{r:?}");
}

#[test]
fn malformed_segments_are_dropped_and_counted_by_reason() {
    let mut b = echo_bench();
    let cases: [(&str, Seg<'_>); 5] = [
        (
            "bad_checksum",
            Seg {
                corrupt_checksum: true,
                ..Seg::default()
            },
        ),
        (
            "bad_data_offset",
            Seg {
                data_offset: Some(4),
                ..Seg::default()
            },
        ),
        (
            "bad_data_offset",
            Seg {
                data_offset: Some(15),
                ..Seg::default()
            },
        ),
        (
            // An MSS option of length 3 (must be 4).
            "bad_options",
            Seg {
                options: &[2, 3, 5, 0xb4],
                ..Seg::default()
            },
        ),
        (
            // An option whose length runs past the header.
            "bad_options",
            Seg {
                options: &[8, 40, 0, 0],
                ..Seg::default()
            },
        ),
    ];
    for (i, (reason, seg)) in cases.iter().enumerate() {
        let before = b.count("tcp-input", reason);
        b.send(0, &frame(seg));
        b.turns(4);
        let r = tcp_replies(&mut b);
        assert!(r.is_empty(), "case {i} ({reason}) answered: {r:?}");
        assert_eq!(b.count("tcp-input", reason), before + 1, "case {i}");
    }
    // A truncated header (12 bytes of TCP).
    let mut f = frame(&Seg::default());
    f.truncate(14 + 20 + 12);
    f[16..18].copy_from_slice(&32u16.to_be_bytes());
    let ic = {
        f[24..26].fill(0);
        checksum::internet_checksum(&f[14..34])
    };
    f[24..26].copy_from_slice(&ic.to_be_bytes());
    b.send(0, &f);
    b.turns(4);
    assert!(tcp_replies(&mut b).is_empty());
    assert_eq!(b.count("tcp-input", "truncated"), 1);
    // Nothing reached the listener; a good SYN still does.
    assert_eq!(b.count("tcp-input", "conn_accepted"), 0);
    b.send(0, &frame(&Seg::default()));
    b.turns(4);
    let r = tcp_replies(&mut b);
    assert!(r.len() == 1 && r[0].syn && r[0].ack_flag, "{r:?}");
}

// ---------------------------------------------------------------- two stacks

/// A tcp-echo stack and a client stack, joined by a ring pair or by a lossy [`Wire`].
struct Pair {
    /// (Declared first so it is dropped first: the frames it holds go back to the stacks'
    /// pools before those are released.)
    wire: Option<Wire>,
    stacks: Stacks,
}

fn pair(client_app: Box<dyn TcpApp>, echo_app: &str) -> Pair {
    pair_with(tcp_apps(vec![client_app]), echo_app)
}

fn pair_with(tcp: TcpApps, echo_app: &str) -> Pair {
    pair_on(tcp, echo_app, None)
}

/// A lossy wire between the two stacks: frames are dropped, duplicated, reordered and (TCP
/// ones) corrupted with fixed probabilities (percent) from a seeded generator.
struct Wire {
    to_server: Box<dyn TxQueue>,
    from_server: Box<dyn RxQueue>,
    to_client: Box<dyn TxQueue>,
    from_client: Box<dyn RxQueue>,
    pool: Mempool,
    rng: u64,
    loss: u64,
    dup: u64,
    reorder: u64,
    corrupt: u64,
    /// A frame held back per direction (sent after the next one: reordering).
    held: [Option<ferroplane::mem::Mbuf>; 2],
    /// Frames dropped, duplicated, reordered, corrupted.
    pub stats: [u64; 4],
}

/// True for an IPv4 TCP frame.
fn is_tcp(m: &ferroplane::mem::Mbuf) -> bool {
    let d = m.data();
    d.len() > 23 && d[12..14] == [0x08, 0x00] && d[23] == 6
}

impl Wire {
    /// A copy of `m` with the same segment layout (a chained frame stays chained), with the
    /// byte `flip` places before the end inverted when asked (within the TCP header or
    /// payload, so only the TCP checksum can catch it).
    fn copy(&mut self, m: &ferroplane::mem::Mbuf, flip: Option<usize>) -> ferroplane::mem::Mbuf {
        let mut segs: Vec<Vec<u8>> = m.segments().map(|s| s.to_vec()).collect();
        if let Some(back) = flip {
            let last = segs.last_mut().unwrap();
            let i = last.len() - 1 - back.min(last.len() - 1);
            last[i] ^= 0xff;
        }
        let mut head: Option<ferroplane::mem::Mbuf> = None;
        for s in segs {
            let mut c = self.pool.alloc().unwrap();
            c.append(s.len()).unwrap().copy_from_slice(&s);
            match head.as_mut() {
                None => head = Some(c),
                Some(h) => h.chain(c).unwrap(),
            }
        }
        head.unwrap()
    }

    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100
    }

    fn forward(&mut self) {
        for dir in 0..2 {
            let mut b = ferroplane::batch::Burst::new();
            let n = if dir == 0 {
                self.from_server.rx_burst(&mut b, 64)
            } else {
                self.from_client.rx_burst(&mut b, 64)
            };
            if n == 0 {
                continue;
            }
            let mut out = ferroplane::batch::Burst::new();
            let mut frames = Vec::with_capacity(n);
            b.drain_front(n, |m| frames.push(m));
            for m in frames {
                let r = self.roll();
                if r < self.loss {
                    self.stats[0] += 1;
                    continue;
                }
                if r < self.loss + self.dup {
                    self.stats[1] += 1;
                    let _ = out.push(self.copy(&m, None));
                }
                let m = if self.roll() < self.corrupt && is_tcp(&m) {
                    self.stats[3] += 1;
                    let at = self.roll() as usize % 16;
                    self.copy(&m, Some(at))
                } else {
                    m
                };
                if r >= 100 - self.reorder && self.held[dir].is_none() {
                    self.stats[2] += 1;
                    self.held[dir] = Some(m);
                    continue;
                }
                let _ = out.push(m);
                if let Some(h) = self.held[dir].take() {
                    let _ = out.push(h);
                }
            }
            if dir == 0 {
                self.to_client.tx_burst(&mut out);
            } else {
                self.to_server.tx_burst(&mut out);
            }
            // Whatever the ring refused is lost, like a full NIC queue.
            out.clear();
        }
    }
}

impl Pair {
    /// One turn of each stack, with the wire (if any) moving frames in between.
    fn turn(&mut self) {
        self.stacks.server.run_turns(1);
        if let Some(w) = self.wire.as_mut() {
            w.forward();
        }
        self.stacks.client.run_turns(1);
        if let Some(w) = self.wire.as_mut() {
            w.forward();
        }
    }
}

fn pair_on(tcp: TcpApps, echo_app: &str, lossy: Option<(u64, u64, u64, u64)>) -> Pair {
    let (sp, cp, wire) = match lossy {
        None => {
            let (sp, cp) = direct_ports();
            (sp, cp, None)
        }
        Some((loss, dup, reorder, corrupt)) => {
            let ((sp, mut sh), (cp, mut ch)) = wired_ports(1, 1);
            let w = Wire {
                to_server: sh.take_tx_queue(0).unwrap(),
                from_server: sh.take_rx_queue(0).unwrap(),
                to_client: ch.take_tx_queue(0).unwrap(),
                from_client: ch.take_rx_queue(0).unwrap(),
                pool: pool("wire", 4096),
                rng: 0x2545_f491_4f6c_dd1d,
                loss,
                dup,
                reorder,
                corrupt,
                held: [None, None],
                stats: [0; 4],
            };
            (sp, cp, Some(w))
        }
    };
    Pair {
        stacks: Stacks::on(sp, cp, Server::new(echo_app), tcp),
        wire,
    }
}

/// One flow of `n` random bytes to the echo at `echo_app`, run until the echo closed it (or
/// 30 s); returns the flows, the stacks and how long it took.
fn run_echo(echo_app: &str, n: usize) -> (Arc<Mutex<Flows>>, Stacks, Duration) {
    let st = Flows::new([random_bytes(n, 0x1234_5678_9abc_def1)]);
    let mut p = Stacks::new(
        Server::new(echo_app),
        tcp_apps(vec![EchoClient::all(&st, "198.18.0.1:7")]),
    );
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(30);
    let mut turns = 0u64;
    while Instant::now() < deadline && turns < 20_000_000 {
        p.server.run_turns(1);
        p.client.run_turns(1);
        turns += 1;
        if st.lock().unwrap().flows[0].finished() {
            break;
        }
    }
    let took = t0.elapsed();
    // Let the last ACK reach the server.
    for _ in 0..10 {
        p.client.run_turns(1);
        p.server.run_turns(1);
    }
    (st, p, took)
}

#[test]
fn ferroplane_client_and_tcp_echo_round_trip_a_megabyte() {
    let n = 1 << 20;
    let (st, p, took) = run_echo(ECHO, n);
    let st = st.lock().unwrap();
    let f = &st.flows[0];
    assert!(f.connected, "never connected");
    assert_eq!(f.sent, n);
    assert_eq!(
        f.received.len(),
        n,
        "received {} of {n} bytes",
        f.received.len()
    );
    assert!(f.received == f.to_send, "echoed bytes differ");
    assert!(
        f.peer_closed,
        "the echo did not close after the client's FIN"
    );
    // The client closed the socket itself: no on_close, no reset.
    assert_eq!(f.closed, None);
    assert_eq!(count(&p.server_graph, "tcp-input", "conn_accepted"), 1);
    // The server's side ended (LAST-ACK → CLOSED); the client's waits in TIME-WAIT.
    assert_eq!(count(&p.server_graph, "tcp-input", "conn_closed"), 1);
    assert_eq!(count(&p.client_graph, "tcp-input", "conn_closed"), 0);
    assert_eq!(count(&p.client_graph, "tcp-input", "conn_connect"), 1);
    // No segment was dropped as malformed on either side.
    for g in [&p.server_graph, &p.client_graph] {
        for r in [
            "bad_checksum",
            "bad_data_offset",
            "bad_options",
            "truncated",
            "no_listener",
        ] {
            assert_eq!(count(g, "tcp-input", r), 0, "{r}");
        }
    }
    // 1448-byte payloads are copied into their mbufs, not sent by reference.
    for g in [&p.server_graph, &p.client_graph] {
        assert_eq!(count(g, "tcp-input", "tx_by_reference"), 0);
    }
    eprintln!(
        "1 MiB echoed in {took:?} ({:.0} Mbit/s each way)",
        n as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

/// Runs `client` against tcp-echo over ring ports with a 9000-byte MTU (both sides' MSS 8960)
/// until flow 0 of `st` is echoed back whole (30 s at most), checks the bytes, and returns the
/// stacks for their counters.
fn jumbo_echo(st: &Arc<Mutex<Flows>>, client: Box<dyn TcpApp>) -> Stacks {
    let mut tcp = tcp_apps(vec![client]);
    tcp.cfg.mss = 8960;
    let (sp, cp) = jumbo_ports(9000);
    let server = Server {
        data_room: 9216,
        ..Server::new(ECHO)
    };
    let mut p = Stacks::on(sp, cp, server, tcp);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) && !st.lock().unwrap().flows[0].finished() {
        p.turn();
    }
    let st = st.lock().unwrap();
    let f = &st.flows[0];
    let n = f.to_send.len();
    assert_eq!(f.received.len(), n, "received {} of {n}", f.received.len());
    assert!(f.received == f.to_send, "echoed bytes differ");
    p
}

#[test]
fn jumbo_segments_leave_by_reference_and_are_read_in_place_intact() {
    // MTU 9000: the echo's MSS follows the interface (8960), the client asks for the same.
    let n = 8 << 20;
    let st = Flows::new([random_bytes(n, 0x7e57_ab1e_0dd5_eed5)]);
    let p = jumbo_echo(&st, EchoClient::all(&st, "198.18.0.1:7"));
    // Both directions went as header + payload-reference chains (8948-byte payloads with
    // timestamps), and every one verified on arrival.
    for g in [&p.server_graph, &p.client_graph] {
        let by_ref = count(g, "tcp-input", "tx_by_reference");
        assert!(by_ref >= (n / 8948 - 8) as u64, "{by_ref} by reference");
        for r in ["bad_checksum", "truncated", "tx_no_mbuf"] {
            assert_eq!(count(g, "tcp-input", r), 0, "{r}");
        }
    }
}

#[test]
fn mbufs_handed_over_by_the_app_arrive_in_order_with_copied_writes_between() {
    // Zero-copy writes of 100, 700, 1900 and 64 bytes and 1000-byte copies, in turn: the
    // segments are cut where two handed-over mbufs end, small ones do not stall on Nagle.
    let n = 2 << 20;
    let st = Flows::new([random_bytes(n, 0x5eed_0f4a_4d0f_f00d)]);
    let app_pool = pool_room("app", 8192, 2048);
    let mut p = Stacks::new(
        Server::new(ECHO),
        tcp_apps(vec![EchoClient::all_handing_over(
            &st,
            "198.18.0.1:7",
            app_pool.clone(),
        )]),
    );
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) && !st.lock().unwrap().flows[0].finished() {
        p.turn();
    }
    let took = t0.elapsed();
    let st = st.lock().unwrap();
    let f = &st.flows[0];
    assert_eq!(f.received.len(), n, "received {} of {n}", f.received.len());
    assert!(f.received == f.to_send, "echoed bytes differ");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: stalled on small segments?"
    );
    for g in [&p.server_graph, &p.client_graph] {
        assert_eq!(count(g, "tcp-input", "bad_checksum"), 0);
    }
    // Every handed-over mbuf went back to the application's pool once acknowledged.
    for _ in 0..20 {
        p.turn();
    }
    assert_eq!(app_pool.available(), app_pool.capacity());
}

#[test]
fn handed_over_mbufs_at_jumbo_mtu_leave_as_two_references_and_are_read_where_they_lie() {
    // MTU 9000 and the same handovers: a segment carries up to two handed-over mbufs, and
    // 700 + 1900 bytes is enough to go by reference, so it leaves as a header mbuf chained
    // to two clones. The receiver must verify and read such chains where they lie (two
    // pieces), not gather them into one buffer.
    let st = Flows::new([random_bytes(2 << 20, 0x3c4a_14ed_0b1e_c7ed)]);
    let app_pool = pool_room("app", 8192, 2048);
    let client = EchoClient::all_handing_over(&st, "198.18.0.1:7", app_pool.clone());
    let p = jumbo_echo(&st, client);
    let by_ref = count(&p.client_graph, "tcp-input", "tx_by_reference");
    assert!(by_ref > 100, "{by_ref} segments by reference");
    for g in [&p.server_graph, &p.client_graph] {
        for r in ["bad_checksum", "truncated", "rx_gathered"] {
            assert_eq!(count(g, "tcp-input", r), 0, "{r}");
        }
    }
}

#[test]
fn small_buffers_apply_backpressure_and_still_deliver_everything() {
    // 4 KiB socket buffers on the echo: the client's writes are short most of the time.
    let app = "name = \"tcp-echo\"\nports = [7]\nsend_buffer = 4096\nrecv_buffer = 4096\nmax_connections = 8\nmax_time_wait = 8";
    let n = 300_000;
    let (st, _p, _) = run_echo(app, n);
    let f = &st.lock().unwrap().flows[0];
    assert_eq!(f.received.len(), n);
    assert!(f.received == f.to_send);
    assert!(f.peer_closed);
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let st = Flows::new([vec![1, 2, 3]]);
    let mut p = pair(EchoClient::all(&st, "198.18.0.1:8"), ECHO).stacks;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && st.lock().unwrap().flows[0].closed.is_none() {
        p.server.run_turns(1);
        p.client.run_turns(1);
    }
    assert_eq!(st.lock().unwrap().flows[0].closed, Some(CloseReason::Reset));
    assert!(!st.lock().unwrap().flows[0].connected);
    assert_eq!(count(&p.server_graph, "tcp-input", "no_listener"), 1);
    assert_eq!(count(&p.client_graph, "tcp-input", "conn_reset_by_peer"), 1);
}

/// The timer wheel drives the engine: an unacknowledged SYN-ACK (listener timers) and then
/// unacknowledged echoed data (connection timers, via the wheel) are sent again after their
/// retransmission timeouts, with the same sequence numbers.
#[test]
fn retransmissions_come_from_the_timer_wheel() {
    let mut b = echo_bench();
    b.send(0, &frame(&Seg::default()));
    b.turns(4);
    let first = tcp_replies(&mut b);
    assert!(first.len() == 1 && first[0].syn, "{first:?}");
    let iss = first[0].seq;
    // Not acknowledged: the SYN-ACK comes again after the initial RTO (1 s).
    let t0 = Instant::now();
    let mut again = Vec::new();
    while again.is_empty() && t0.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(20));
        b.turns(2);
        again = tcp_replies(&mut b);
    }
    let waited = t0.elapsed();
    assert!(
        again.len() == 1 && again[0].syn && again[0].seq == iss,
        "{again:?}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "too early: {waited:?}"
    );
    // Complete the handshake with data; the echo is not acknowledged.
    b.send(
        0,
        &frame(&Seg {
            seq: 1001,
            ack: iss.wrapping_add(1),
            flags: ACK | PSH,
            payload: b"tick",
            ..Seg::default()
        }),
    );
    b.turns(4);
    let echo = tcp_replies(&mut b);
    let data = echo.iter().find(|r| !r.payload.is_empty()).unwrap();
    assert_eq!(
        (data.payload.as_slice(), data.seq),
        (&b"tick"[..], iss.wrapping_add(1))
    );
    let timers = b.count("tcp-input", "timer_fired");
    let t0 = Instant::now();
    let mut rtx = None;
    while rtx.is_none() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
        b.turns(2);
        rtx = tcp_replies(&mut b)
            .into_iter()
            .find(|r| !r.payload.is_empty());
    }
    let rtx = rtx.expect("the echoed data was never retransmitted");
    assert_eq!(
        (rtx.payload.as_slice(), rtx.seq),
        (&b"tick"[..], iss.wrapping_add(1))
    );
    assert!(b.count("tcp-input", "timer_fired") > timers);
}

/// Opens `total` connections one after the other; each sends one line, closes first (so the
/// client side ends in TIME-WAIT) and waits for the echo and the server's FIN.
struct Repeater {
    total: u32,
    opened: u32,
    done: Arc<Mutex<u32>>,
    busy: bool,
}

impl TcpApp for Repeater {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        assert_eq!(s.write(b"one line\n"), 9);
        s.shutdown();
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 64];
        while s.recv(&mut buf) > 0 {}
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 64];
        while s.recv(&mut buf) > 0 {}
        s.close();
        *self.done.lock().unwrap() += 1;
        self.busy = false;
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        if !self.busy && self.opened < self.total {
            ctl.connect("198.18.0.1:7".parse().unwrap()).unwrap();
            self.opened += 1;
            self.busy = true;
        }
    }
}

#[test]
fn time_wait_is_bounded() {
    let done = Arc::new(Mutex::new(0));
    let tcp = TcpApps {
        apps: vec![Box::new(Repeater {
            total: 6,
            opened: 0,
            done: done.clone(),
            busy: false,
        })],
        params: ferroplane::stack::tcp::LayerParams {
            max_connections: 8,
            max_time_wait: 2,
            ..ferroplane::stack::tcp::LayerParams::default()
        },
        ..TcpApps::default()
    };
    let mut p = pair_with(tcp, ECHO).stacks;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && *done.lock().unwrap() < 6 {
        p.server.run_turns(1);
        p.client.run_turns(1);
    }
    for _ in 0..10 {
        p.server.run_turns(1);
        p.client.run_turns(1);
    }
    assert_eq!(*done.lock().unwrap(), 6);
    // Two stay in TIME-WAIT; the other four were freed on entering it.
    assert_eq!(count(&p.client_graph, "tcp-input", "time_wait_overflow"), 4);
    assert_eq!(count(&p.client_graph, "tcp-input", "conn_closed"), 4);
    assert_eq!(count(&p.client_graph, "tcp-input", "conn_connect"), 6);
    // The server's sides all ended (LAST-ACK → CLOSED).
    assert_eq!(count(&p.server_graph, "tcp-input", "conn_closed"), 6);
}

/// 2 MiB through tcp-echo over a wire that drops 2 %, duplicates 1 % and reorders 5 % of the
/// frames in each direction: the glue's timers and the engine's recovery deliver every byte
/// in order, on both connections' directions.
#[test]
fn echo_survives_loss_duplication_reordering_and_corruption() {
    let n = 2 << 20;
    let st = Flows::new([random_bytes(n, 0x0bad_5eed_0bad_5eed)]);
    let mut p = pair_on(
        tcp_apps(vec![EchoClient::all(&st, "198.18.0.1:7")]),
        ECHO,
        Some((2, 1, 5, 1)),
    );
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        p.turn();
        if st.lock().unwrap().flows[0].finished() {
            break;
        }
    }
    let took = t0.elapsed();
    let f = &st.lock().unwrap().flows[0];
    let w = p.wire.as_ref().unwrap().stats;
    assert!(f.connected, "never connected");
    assert_eq!(
        f.received.len(),
        n,
        "received {} of {n} in {took:?}",
        f.received.len()
    );
    assert!(f.received == f.to_send, "echoed bytes differ");
    assert!(f.peer_closed);
    assert!(
        w[0] > 50 && w[1] > 20 && w[2] > 100 && w[3] > 10,
        "wire did too little: {w:?}"
    );
    assert!(count(&p.stacks.client_graph, "tcp-input", "timer_fired") > 0);
    // Every corrupted frame (chained ones included: the payload checksum is verified in
    // place) was dropped for its checksum, and nothing else was.
    let bad: u64 = [&p.stacks.client_graph, &p.stacks.server_graph]
        .iter()
        .map(|g| count(g, "tcp-input", "bad_checksum"))
        .sum();
    assert_eq!(bad, w[3], "bad checksums vs corrupted frames");
    eprintln!(
        "2 MiB echoed over a lossy wire in {took:?}: dropped {}, duplicated {}, reordered {}, corrupted {}",
        w[0], w[1], w[2], w[3]
    );
}
