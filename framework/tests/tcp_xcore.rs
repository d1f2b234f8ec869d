//! Cross-core TCP through the whole stack: a ferroplane client stack opens many connections
//! to `tcp-echo` whose echo logic runs on an app lcore (`app_lcores`), on its own thread,
//! behind the stack lcore's xcore bridge; every connection streams random bytes and checks
//! that exactly the same bytes come back before the server closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroplane::app;
use ferroplane::config;
use ferroplane::graph::{GraphMonitor, GraphStage};
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo};
use ferroplane::stack::setup::{build_graph_with_tcp, TcpApps, UdpApps};
use ferroplane::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as u8
        })
        .collect()
}

#[derive(Default)]
struct Conn {
    data: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    shut: bool,
    peer_closed: bool,
}

#[derive(Default)]
struct Clients {
    /// Connections still to open, with their payload.
    to_open: Vec<Vec<u8>>,
    conns: HashMap<SockId, Conn>,
    done: Vec<Conn>,
    resets: usize,
}

/// Opens the connections, streams each payload, half-closes, reads the echo to the FIN.
struct Client(Arc<Mutex<Clients>>);

impl Client {
    fn push(c: &mut Conn, s: &mut TcpSocket<'_>) {
        while c.sent < c.data.len() {
            let n = s.write(&c.data[c.sent..]);
            if n == 0 {
                break;
            }
            c.sent += n;
        }
        if c.sent == c.data.len() && !c.shut {
            c.shut = true;
            s.shutdown();
        }
    }
    fn read(c: &mut Conn, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.recv(&mut buf);
            if n == 0 {
                break;
            }
            c.received.extend_from_slice(&buf[..n]);
        }
    }
}

impl TcpApp for Client {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        if let Some(c) = st.conns.get_mut(&s.id()) {
            Self::push(c, s);
        }
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        if let Some(c) = st.conns.get_mut(&s.id()) {
            Self::read(c, s);
        }
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        if let Some(c) = st.conns.get_mut(&s.id()) {
            Self::push(c, s);
        }
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        if let Some(mut c) = st.conns.remove(&s.id()) {
            Self::read(&mut c, s);
            c.peer_closed = true;
            st.done.push(c);
        }
        s.close();
    }
    fn on_close(&mut self, id: SockId, reason: CloseReason) {
        let mut st = self.0.lock().unwrap();
        if let Some(c) = st.conns.remove(&id) {
            st.resets += usize::from(reason != CloseReason::Closed);
            st.done.push(c);
        }
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        let mut st = self.0.lock().unwrap();
        // At most 8 connections open at a time.
        while st.conns.len() < 8 {
            let Some(data) = st.to_open.pop() else { break };
            let id = ctl
                .connect("198.18.0.1:7".parse().unwrap())
                .expect("connect");
            st.conns.insert(
                id,
                Conn {
                    data,
                    ..Conn::default()
                },
            );
        }
    }
}

fn pool(name: &str, n: u32) -> Mempool {
    let mut p = MempoolParams::new(name, n);
    p.huge = HugePolicy::Off;
    p.cache_size = 64;
    Mempool::new(&p).unwrap()
}

fn side(mac: MacAddr) -> RingSide {
    RingSide {
        name: "p0".into(),
        id: 0,
        rx_queues: 1,
        tx_queues: 1,
        mac,
        mtu: 1500,
    }
}

fn count(g: &GraphMonitor, reason: &str) -> u64 {
    g.stats()
        .iter()
        .find(|n| n.node == "tcp-input")
        .and_then(|n| n.drops.iter().find(|d| d.0 == reason).map(|d| d.1))
        .unwrap_or(0)
}

/// The server's stack lcore, its app lcore, the client's lcore, and the server's graph.
pub fn xcore_stacks(app: &str, client: Box<dyn TcpApp>) -> (Lcore, Lcore, Lcore, GraphMonitor) {
    let (mut sp, mut cp) = RingPort::pair(
        side(MacAddr([2, 0, 0, 0, 0, 1])),
        side(MacAddr([2, 0, 0, 0, 0, 0x20])),
        1024,
    )
    .unwrap();
    let scfg = config::parse(&format!(
        r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
mac = "02:00:00:00:00:01"
ipv4 = ["198.18.0.1/24"]
[[lcores]]
id = 1
rx = ["p0"]
[[lcores]]
id = 2
[app]
{app}
[metrics]
enabled = false
"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let sshared = app::prepare(&scfg, &[sp.info().clone()], vec![pool("srv", 8192)]).unwrap();
    let sstage = app::make_stage(&scfg, &sshared, 1).unwrap();
    let sgraph = sstage.graph_monitor().unwrap();
    let server = Lcore::new(
        1,
        None,
        vec![(0, sp.take_rx_queue(0).unwrap())],
        LcoreIo::new(vec![Some(sp.take_tx_queue(0).unwrap())]),
        sstage,
        32,
        IdlePolicy::Busy,
    );
    let astage = app::make_stage(&scfg, &sshared, 2).unwrap();
    assert!(
        astage.graph_monitor().is_none(),
        "lcore 2 runs the app, not a graph"
    );
    let app_lcore = Lcore::new(
        2,
        None,
        Vec::new(),
        LcoreIo::new(vec![None]),
        astage,
        32,
        IdlePolicy::Adaptive {
            spin_turns: 64,
            max_sleep_us: 50,
        },
    );
    let ccfg = config::parse(
        r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
mac = "02:00:00:00:00:20"
ipv4 = ["198.18.0.2/24"]
[[lcores]]
id = 3
rx = ["p0"]
[app]
name = "l3fwd"
[metrics]
enabled = false
"#,
    )
    .unwrap();
    let cshared = app::prepare(&ccfg, &[cp.info().clone()], vec![pool("cli", 8192)]).unwrap();
    let tcp = TcpApps {
        apps: vec![client],
        params: ferroplane::stack::tcp::LayerParams {
            max_connections: 64,
            max_time_wait: 64,
            ..Default::default()
        },
        ..TcpApps::default()
    };
    let graph = build_graph_with_tcp(
        cshared.stack().unwrap(),
        3,
        UdpApps::default(),
        tcp,
        &[],
        cshared.trace().clone(),
    )
    .unwrap();
    let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![(0, cp.take_rx_queue(0).unwrap())];
    let tx: Vec<Option<Box<dyn TxQueue>>> = vec![Some(cp.take_tx_queue(0).unwrap())];
    let client = Lcore::new(
        3,
        None,
        rx,
        LcoreIo::new(tx),
        Box::new(GraphStage::new(graph)),
        32,
        IdlePolicy::Busy,
    );
    (server, app_lcore, client, sgraph)
}

#[test]
fn echo_on_an_app_lcore_thread_returns_megabytes_byte_exact_over_many_connections() {
    let conns = 24;
    let payloads: Vec<Vec<u8>> = (0..conns)
        .map(|i| random_bytes(128 * 1024 + i * 7919, 0x9e37_79b9 + i as u64))
        .collect();
    let total: usize = payloads.iter().map(|p| p.len()).sum();
    let st = Arc::new(Mutex::new(Clients {
        to_open: payloads.clone(),
        ..Clients::default()
    }));
    // Small buffers: the cross-core windows and TCP windows fill and drain all the time.
    let (mut server, mut app_lcore, mut client, sgraph) = xcore_stacks(
        "name = \"tcp-echo\"\nports = [7]\napp_lcores = [2]\nsend_buffer = 16384\nrecv_buffer = 16384",
        Box::new(Client(st.clone())),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let app_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _g = ferroplane::lcore::register(2).unwrap();
            app_lcore.run(&stop);
        })
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    while Instant::now() < deadline {
        server.run_turns(1);
        client.run_turns(1);
        let s = st.lock().unwrap();
        if s.done.len() == conns {
            break;
        }
    }
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    app_thread.join().unwrap();
    let s = st.lock().unwrap();
    assert_eq!(s.done.len(), conns, "{} connections finished", s.done.len());
    assert_eq!(s.resets, 0);
    let mut echoed = 0;
    for c in &s.done {
        assert!(c.peer_closed, "a connection ended without the echo's FIN");
        assert_eq!(c.received.len(), c.data.len());
        assert!(c.received == c.data, "echoed bytes differ");
        echoed += c.received.len();
    }
    assert_eq!(echoed, total);
    assert!(payloads.iter().all(|p| s.done.iter().any(|c| c.data == *p)));
    assert_eq!(count(&sgraph, "conn_accepted"), conns as u64);
    for r in ["bad_checksum", "no_listener", "table_full", "xcore_rx_lost"] {
        assert_eq!(count(&sgraph, r), 0, "{r}");
    }
    // The bridge's counters are tcp-input events: every byte crossed it both ways.
    assert_eq!(count(&sgraph, "xcore_sockets"), conns as u64);
    assert_eq!(count(&sgraph, "xcore_rx_bytes"), total as u64);
    assert_eq!(count(&sgraph, "xcore_tx_bytes"), total as u64);
    eprintln!(
        "{conns} connections, {total} bytes echoed through an app lcore thread in {took:?} ({:.0} Mbit/s each way)",
        total as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}
