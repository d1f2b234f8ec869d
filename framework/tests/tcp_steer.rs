//! TCP on several lcores with software flow steering (`tcp-handoff`): a `tcp-echo` server with
//! two TCP lcores on a two-queue ring port, behind a wire that puts either the handshake or the
//! rest of each flow on the queue of the lcore that does *not* own it (so every flow reaches
//! both lcores), still echoes many connections byte for byte, and the connections are spread
//! over both lcores. Clients run on one or two lcores (active opens from a steered stack: their
//! replies, misrouted too, must come home).

mod common;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::counting::{self, Counting};
use common::tcp::*;
use ferroplane::batch::Burst;
use ferroplane::graph::GraphMonitor;
use ferroplane::mem::ol;
use ferroplane::port::{MacAddr, RxQueue, TxQueue};
use ferroplane::runtime::Lcore;
use ferroplane::stack::setup::TcpApps;
use ferroplane::stack::tcp::rss::{hash_v4_l4, queue_for, SYMMETRIC_KEY};
use ferroplane::stack::tcp::{mesh, CloseReason};

/// Counts heap allocations made on a thread while it watches (the server lcores' turns).
#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------- set-up

/// A one-port stack config: `lcores` lcores, lcore `i + 1` polling queue `i`, `peer` a
/// neighbour at `peer_mac`.
fn config_text(
    addr: &str,
    mac: MacAddr,
    lcores: u16,
    peer: &str,
    peer_mac: MacAddr,
    app: &str,
) -> String {
    let mut more = format!(
        "rx_queues = {lcores}\ntx_queues = {lcores}\n[[neighbours]]\nip = \"{peer}\"\nmac = \"{}\"\nport = \"p0\"\n",
        mac_text(peer_mac)
    );
    for q in 0..lcores {
        more.push_str(&format!("[[lcores]]\nid = {}\nrx = [\"p0:{q}\"]\n", q + 1));
    }
    one_port_config(addr, mac, app, &more)
}

/// Which RSS hash the wire hands the stacks with TCP frames, as a NIC would.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// None (the stacks hash themselves).
    None,
    /// The real symmetric Toeplitz hash, on every other frame.
    Real,
    /// This value on every frame (a hash the stacks must trust rather than recompute).
    Forged(u32),
}

/// Moves frames between the two stacks, mostly on the queue of the lcore that does not own
/// their flow (when the receiving side has two queues), and may mark frames with an RSS hash
/// (`RX_RSS_SYM_TOEPLITZ`, see [`Mark`]).
struct Wire {
    /// Server side: queues to send to it and receive from it.
    to_server: Vec<Box<dyn TxQueue>>,
    from_server: Vec<Box<dyn RxQueue>>,
    to_client: Vec<Box<dyn TxQueue>>,
    from_client: Vec<Box<dyn RxQueue>>,
    mark: Mark,
    marked: u64,
    frames: u64,
}

/// The symmetric hash of a TCP/IPv4 frame, if it is one, and whether it carries SYN.
fn frame_hash(f: &[u8]) -> Option<(u32, bool)> {
    if f.len() < 14 + 20 + 20 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
        return None;
    }
    let ip = &f[14..];
    let hl = ((ip[0] & 0xf) as usize) * 4;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let sport = u16::from_be_bytes([ip[hl], ip[hl + 1]]);
    let dport = u16::from_be_bytes([ip[hl + 2], ip[hl + 3]]);
    let syn = ip[hl + 13] & 0x02 != 0;
    Some((hash_v4_l4(&SYMMETRIC_KEY, src, dst, sport, dport), syn))
}

impl Wire {
    fn carry(
        from: &mut [Box<dyn RxQueue>],
        to: &mut [Box<dyn TxQueue>],
        mark: Mark,
        marked: &mut u64,
        frames: &mut u64,
    ) {
        let queues = to.len() as u16;
        let mut out: Vec<Burst> = (0..to.len()).map(|_| Burst::new()).collect();
        for q in from.iter_mut() {
            let mut b = Burst::new();
            let n = q.rx_burst(&mut b, 64);
            b.drain_front(n, |mut m| {
                let hs = frame_hash(m.data());
                let h = hs.map(|(h, _)| h);
                *frames += 1;
                let q = match hs {
                    // On purpose, one of the handshake and the rest of the flow arrives on
                    // the wrong queue (which one depends on the flow): a flow's frames reach
                    // both lcores, in order.
                    Some((h, syn)) if queues > 1 => {
                        let wrong = (syn ^ (h & 0x100 != 0)) as u16;
                        (queue_for(h, queues) + wrong) % queues
                    }
                    _ => 0,
                };
                let given = match (mark, h) {
                    (Mark::Real, Some(h)) if *frames % 2 == 0 => Some(h),
                    (Mark::Forged(f), Some(_)) => Some(f),
                    _ => None,
                };
                if let Some(g) = given {
                    m.set_rss_hash(g);
                    m.set_ol_flags(m.ol_flags() | ol::RX_RSS_SYM_TOEPLITZ);
                    *marked += 1;
                }
                let _ = out[q as usize].push(m);
            });
        }
        for (q, b) in out.iter_mut().enumerate() {
            to[q].tx_burst(b);
            // Whatever the ring refused is lost, like a full NIC queue.
            b.clear();
        }
    }

    fn forward(&mut self) {
        Self::carry(
            &mut self.from_client,
            &mut self.to_server,
            self.mark,
            &mut self.marked,
            &mut self.frames,
        );
        Self::carry(
            &mut self.from_server,
            &mut self.to_client,
            self.mark,
            &mut self.marked,
            &mut self.frames,
        );
    }
}

struct Setup {
    servers: Vec<Lcore>,
    clients: Vec<Lcore>,
    server_graphs: Vec<GraphMonitor>,
    client_graphs: Vec<GraphMonitor>,
    wire: Wire,
    st: Arc<Mutex<Flows>>,
}

fn setup(server_lcores: u16, client_lcores: u16, flows: usize, mark: Mark) -> Setup {
    setup_sized(server_lcores, client_lcores, flows, mark, |i| {
        2000 + (i * 997) % 30000
    })
}

/// [`setup`] with flow `i` sending `size(i)` bytes.
fn setup_sized(
    server_lcores: u16,
    client_lcores: u16,
    flows: usize,
    mark: Mark,
    size: fn(usize) -> usize,
) -> Setup {
    let ((mut sp, mut h0), (mut cp, mut h1)) = wired_ports(server_lcores, client_lcores);
    let (from_server, to_server) = take_queues(&mut h0, server_lcores);
    let (from_client, to_client) = take_queues(&mut h1, client_lcores);

    // Server: tcp-echo from the config, one stage per lcore.
    let text = config_text(
        SERVER_IP,
        SERVER_MAC,
        server_lcores,
        CLIENT_IP,
        CLIENT_MAC,
        "name = \"tcp-echo\"\nports = [7]\nmax_connections = 512",
    );
    let (scfg, sshared) = prepare(&text, &sp, pool("srv", 8192));
    let (servers, server_graphs): (Vec<_>, Vec<_>) = (0..server_lcores)
        .map(|q| server_lcore(&scfg, &sshared, q as u32 + 1, &mut sp, q))
        .unzip();

    // Client: hand-built TCP apps on an l3fwd stack, steered by its own handoff mesh.
    let text = config_text(
        CLIENT_IP,
        CLIENT_MAC,
        client_lcores,
        SERVER_IP,
        SERVER_MAC,
        "name = \"l3fwd\"",
    );
    let (_, cshared) = prepare(&text, &cp, pool("cli", 8192));
    let st = Flows::new((0..flows).map(|i| random_bytes(size(i), 0x9e37_79b9 + i as u64)));
    let mut handoffs: Vec<_> = if client_lcores > 1 {
        mesh(client_lcores as usize, 1024)
            .unwrap()
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let (clients, client_graphs): (Vec<_>, Vec<_>) = (0..client_lcores)
        .map(|q| {
            let mine: Vec<usize> = (0..flows)
                .filter(|i| i % client_lcores as usize == q as usize)
                .collect();
            let client = EchoClient::new(&st, q as usize, "198.18.0.1:7", mine, usize::MAX);
            let mut tcp = TcpApps {
                apps: vec![Box::new(client)],
                handoff: handoffs[q as usize].take(),
                ..TcpApps::default()
            };
            tcp.params.max_connections = 512;
            tcp.params.max_time_wait = 512;
            client_lcore(&cshared, q as u32 + 1, &mut cp, q, tcp)
        })
        .collect();
    Setup {
        servers,
        clients,
        server_graphs,
        client_graphs,
        wire: Wire {
            to_server,
            from_server,
            to_client,
            from_client,
            mark,
            marked: 0,
            frames: 0,
        },
        st,
    }
}

/// Runs every lcore and the wire until the server has closed every flow after echoing it (or
/// 60 s); the client's side then waits in TIME-WAIT.
fn run(s: &mut Setup) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        for l in s.servers.iter_mut() {
            l.run_turns(1);
        }
        s.wire.forward();
        for l in s.clients.iter_mut() {
            l.run_turns(1);
        }
        s.wire.forward();
        let st = s.st.lock().unwrap();
        if st.flows.iter().all(|f| f.peer_closed) {
            break;
        }
    }
    for _ in 0..20 {
        for l in s.clients.iter_mut().chain(s.servers.iter_mut()) {
            l.run_turns(1);
        }
        s.wire.forward();
    }
}

/// Checks every flow came back byte for byte and was closed by the server (not reset); returns the per-lcore
/// accepted connections of the server.
fn check(s: &Setup, flows: usize) -> Vec<u64> {
    let st = s.st.lock().unwrap();
    assert_eq!(st.connect_errors, 0);
    assert_eq!(st.by_id.len(), flows, "every flow was opened");
    for (i, f) in st.flows.iter().enumerate() {
        assert!(
            matches!(f.closed, None | Some(CloseReason::Closed)),
            "flow {i}: {:?}",
            f.closed
        );
        assert!(f.peer_closed, "flow {i}");
        assert_eq!(f.received.len(), f.to_send.len(), "flow {i} length");
        assert!(f.received == f.to_send, "flow {i}: echoed bytes differ");
    }
    s.server_graphs
        .iter()
        .map(|g| count(g, "tcp-input", "conn_accepted"))
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn two_server_lcores_echo_flows_that_arrive_on_the_wrong_queue() {
    let flows = 48;
    let mut s = setup(2, 1, flows, Mark::None);
    run(&mut s);
    let accepted = check(&s, flows);
    eprintln!("accepted per server lcore: {accepted:?}");
    assert_eq!(accepted.iter().sum::<u64>(), flows as u64);
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
    for (i, g) in s.server_graphs.iter().enumerate() {
        let handed = count(g, "tcp-handoff", "handed_off");
        let received = count(g, "tcp-handoff", "received");
        eprintln!("server lcore {i}: handed_off {handed} received {received}");
        // Part of every flow arrived on the other lcore's queue.
        assert!(handed > 0 && received > 0, "lcore {i}");
        assert_eq!(count(g, "tcp-handoff", "handoff_full"), 0);
        assert_eq!(count(g, "tcp-input", "no_listener"), 0, "lcore {i}");
    }
    // What one lcore handed off, the other received.
    let h: Vec<u64> = s
        .server_graphs
        .iter()
        .map(|g| count(g, "tcp-handoff", "handed_off"))
        .collect();
    let r: Vec<u64> = s
        .server_graphs
        .iter()
        .map(|g| count(g, "tcp-handoff", "received"))
        .collect();
    assert_eq!((h[0], h[1]), (r[1], r[0]));
    // A single-lcore stack has no handoff node.
    assert!(!has_node(&s.client_graphs[0], "tcp-handoff"));
}

#[test]
fn active_opens_from_a_two_lcore_stack_come_home() {
    let flows = 40;
    let mut s = setup(2, 2, flows, Mark::Real);
    run(&mut s);
    let accepted = check(&s, flows);
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
    assert!(s.wire.marked > 0);
    for (i, g) in s.client_graphs.iter().enumerate() {
        // Each client lcore opened its share, on ports whose replies map back to it: the
        // handoff brought the (misrouted) replies there, and nothing met a closed port.
        assert_eq!(
            count(g, "tcp-input", "conn_connect"),
            (flows / 2) as u64,
            "client lcore {i}"
        );
        assert!(count(g, "tcp-handoff", "received") > 0, "client lcore {i}");
        assert_eq!(count(g, "tcp-input", "no_listener"), 0, "client lcore {i}");
    }
}

#[test]
fn a_hash_the_port_gives_is_used_instead_of_hashing_again() {
    let flows = 16;
    // Hash 0 selects lcore 0 for every flow, whatever its 4-tuple hashes to.
    let mut s = setup(2, 1, flows, Mark::Forged(0));
    run(&mut s);
    let accepted = check(&s, flows);
    assert_eq!(accepted, vec![flows as u64, 0]);
    assert!(s.wire.marked > 0);
    assert!(count(&s.server_graphs[1], "tcp-handoff", "handed_off") > 0);
    assert_eq!(count(&s.server_graphs[0], "tcp-handoff", "handed_off"), 0);
}

#[test]
fn the_handoff_path_allocates_nothing_once_connections_are_up() {
    let flows = 8;
    let mut s = setup_sized(2, 1, flows, Mark::None, |_| 1_000_000);
    let accepted = |s: &Setup| -> u64 {
        s.server_graphs
            .iter()
            .map(|g| count(g, "tcp-input", "conn_accepted"))
            .sum()
    };
    let handed = |s: &Setup| -> u64 {
        s.server_graphs
            .iter()
            .map(|g| count(g, "tcp-handoff", "handed_off"))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut watched_turns, mut before) = (0u64, None);
    let mut allocs = 0;
    while Instant::now() < deadline {
        // Watch the server lcores once every connection is accepted (accepting allocates the
        // connection's rings); the client's test app allocates, so it runs unwatched.
        let watch = before.is_some();
        for l in s.servers.iter_mut() {
            let a0 = counting::allocations();
            counting::watch_this_thread(watch);
            l.run_turns(1);
            counting::watch_this_thread(false);
            allocs += counting::allocations() - a0;
        }
        watched_turns += watch as u64;
        s.wire.forward();
        for l in s.clients.iter_mut() {
            l.run_turns(1);
        }
        s.wire.forward();
        if before.is_none() && accepted(&s) == flows as u64 {
            before = Some(handed(&s));
            allocs = 0;
        }
        if s.st.lock().unwrap().flows.iter().all(|f| f.peer_closed) {
            break;
        }
    }
    check(&s, flows);
    let during = handed(&s) - before.expect("every connection accepted");
    eprintln!("watched {watched_turns} turns, {during} segments handed off, {allocs} allocations");
    assert!(
        during > 1000,
        "only {during} segments handed off while watched"
    );
    assert_eq!(allocs, 0, "the server lcores allocated while watched");
}
