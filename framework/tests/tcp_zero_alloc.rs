//! Proves the TCP echo and HTTP data paths do not touch the heap once the connection is up: a
//! counting global allocator watches a ferroplane client stream data through the `tcp-echo`
//! app (or pipeline requests to the `http` app) of a second ferroplane stack (two lcores driven
//! from this thread, joined by a ring pair) and check every byte that comes back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferroplane::app;
use ferroplane::config;
use ferroplane::graph::{GraphMonitor, GraphStage};
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo};
use ferroplane::stack::setup::{build_graph_with_tcp, TcpApps, UdpApps};
use ferroplane::stack::tcp::{SockId, TcpApp, TcpControl, TcpSocket};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if WATCH.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if WATCH.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Byte `i` of the endless stream the client sends.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8 ^ (i >> 12) as u8
}

#[derive(Default)]
struct Stream {
    id: Option<SockId>,
    started: bool,
    connected: bool,
    sent: u64,
    received: u64,
    mismatches: u64,
    closed: bool,
}

/// Sends the pattern forever (as much as fits each turn) and checks what comes back, with
/// fixed buffers only.
struct Client(Arc<Mutex<Stream>>);

impl Client {
    fn push(st: &mut Stream, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.send_space().min(buf.len());
            if n == 0 {
                // A short write arms on_writable.
                let b = [pattern(st.sent)];
                st.sent += s.write(&b) as u64;
                return;
            }
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(st.sent + k as u64);
            }
            let w = s.write(&buf[..n]);
            st.sent += w as u64;
            if w < n {
                return;
            }
        }
    }
}

impl TcpApp for Client {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        st.connected = true;
        Self::push(&mut st, s);
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        loop {
            let n = {
                let [a, b] = s.peek();
                for (k, &x) in a.iter().chain(b.iter()).enumerate() {
                    if x != pattern(st.received + k as u64) {
                        st.mismatches += 1;
                    }
                }
                a.len() + b.len()
            };
            if n == 0 {
                break;
            }
            s.consume(n);
            st.received += n as u64;
        }
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        Self::push(&mut self.0.lock().unwrap(), s);
    }
    fn on_close(&mut self, _id: SockId, _r: ferroplane::stack::tcp::CloseReason) {
        self.0.lock().unwrap().closed = true;
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        let mut st = self.0.lock().unwrap();
        if !st.started {
            st.started = true;
            st.id = ctl.connect("198.18.0.1:7".parse().unwrap()).ok();
        } else if let Some(id) = st.id {
            if let Some(mut s) = ctl.socket(id) {
                Self::push(&mut st, &mut s);
            }
        }
    }
}

fn pool(name: &str) -> Mempool {
    let mut p = MempoolParams::new(name, 4096);
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

fn cfg(addr: &str, mac: &str, app: &str) -> config::Config {
    cfg_with(addr, mac, app, "")
}

/// [`cfg`] with more `[[lcores]]` tables (`more`).
fn cfg_with(addr: &str, mac: &str, app: &str, more: &str) -> config::Config {
    config::parse(&format!(
        r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
mac = "{mac}"
ipv4 = ["{addr}/24"]
[[lcores]]
id = 1
rx = ["p0"]
{more}
[app]
{app}
[metrics]
enabled = false
"#
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn count(g: &GraphMonitor, reason: &str) -> u64 {
    g.stats()
        .iter()
        .find(|n| n.node == "tcp-input")
        .and_then(|n| n.drops.iter().find(|d| d.0 == reason).map(|d| d.1))
        .unwrap_or(0)
}

/// A server lcore running `app` and a client lcore running `client`, joined by a ring pair.
fn two_stacks(app: &str, client: Box<dyn TcpApp>) -> (Lcore, Lcore, GraphMonitor) {
    let (mut sp, mut cp) = RingPort::pair(
        side(MacAddr([2, 0, 0, 0, 0, 1])),
        side(MacAddr([2, 0, 0, 0, 0, 0x20])),
        1024,
    )
    .unwrap();
    let scfg = cfg("198.18.0.1", "02:00:00:00:00:01", app);
    let sshared = app::prepare(&scfg, &[sp.info().clone()], vec![pool("srv")]).unwrap();
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
    let ccfg = cfg("198.18.0.2", "02:00:00:00:00:20", "name = \"l3fwd\"");
    let cshared = app::prepare(&ccfg, &[cp.info().clone()], vec![pool("cli")]).unwrap();
    let tcp = TcpApps {
        apps: vec![client],
        ..TcpApps::default()
    };
    let graph = build_graph_with_tcp(
        cshared.stack().unwrap(),
        2,
        UdpApps::default(),
        tcp,
        &[],
        cshared.trace().clone(),
    )
    .unwrap();
    let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![(0, cp.take_rx_queue(0).unwrap())];
    let tx: Vec<Option<Box<dyn TxQueue>>> = vec![Some(cp.take_tx_queue(0).unwrap())];
    let client = Lcore::new(
        2,
        None,
        rx,
        LcoreIo::new(tx),
        Box::new(GraphStage::new(graph)),
        32,
        IdlePolicy::Busy,
    );
    (server, client, sgraph)
}

#[test]
fn tcp_echo_steady_state_allocates_nothing() {
    let st = Arc::new(Mutex::new(Stream::default()));
    let (mut server, mut client, sgraph) = two_stacks(
        "name = \"tcp-echo\"\nports = [7]\nsend_buffer = 65536\nrecv_buffer = 65536",
        Box::new(Client(st.clone())),
    );
    // Warm up: connect and stream a few MB (pool caches, rings, ARP all settled).
    let mut turns = 0;
    while st.lock().unwrap().received < 4 << 20 && turns < 200_000 {
        server.run_turns(1);
        client.run_turns(1);
        turns += 1;
    }
    let before = st.lock().unwrap().received;
    assert!(before >= 4 << 20, "warm-up moved only {before} bytes");
    let segs_before = count(&sgraph, "conn_accepted");
    // Steady state: at least 32 MiB more, echoed and checked, with allocations counted.
    ALLOCS.store(0, Ordering::Relaxed);
    WATCH.with(|w| w.set(true));
    let t0 = std::time::Instant::now();
    let mut turns = 0u64;
    while st.lock().unwrap().received < before + (32 << 20) && turns < 2_000_000 {
        server.run_turns(1);
        client.run_turns(1);
        turns += 1;
    }
    WATCH.with(|w| w.set(false));
    let took = t0.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let s = st.lock().unwrap();
    let moved = s.received - before;
    assert!(moved >= 32 << 20, "steady state moved only {moved} bytes");
    assert_eq!(s.mismatches, 0, "echoed bytes differ");
    assert!(!s.closed);
    assert_eq!(count(&sgraph, "conn_accepted"), segs_before);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while echoing {moved} bytes"
    );
    eprintln!(
        "{moved} bytes echoed in {turns} turns, {took:?} ({:.0} Mbit/s), 0 allocations",
        moved as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

/// Like [`two_stacks`], but the server's echo runs on an app lcore (`app_lcores = [2]`):
/// returns the server's stack lcore, its app lcore, the client lcore.
fn xcore_stacks(app: &str, client: Box<dyn TcpApp>) -> (Lcore, Lcore, Lcore, GraphMonitor) {
    let (mut sp, mut cp) = RingPort::pair(
        side(MacAddr([2, 0, 0, 0, 0, 1])),
        side(MacAddr([2, 0, 0, 0, 0, 0x20])),
        1024,
    )
    .unwrap();
    let scfg = cfg_with("198.18.0.1", "02:00:00:00:00:01", app, "[[lcores]]\nid = 2");
    let sshared = app::prepare(&scfg, &[sp.info().clone()], vec![pool("srv")]).unwrap();
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
    let app_lcore = Lcore::new(
        2,
        None,
        Vec::new(),
        LcoreIo::new(vec![None]),
        app::make_stage(&scfg, &sshared, 2).unwrap(),
        32,
        IdlePolicy::Busy,
    );
    let ccfg = cfg("198.18.0.2", "02:00:00:00:00:20", "name = \"l3fwd\"");
    let cshared = app::prepare(&ccfg, &[cp.info().clone()], vec![pool("cli")]).unwrap();
    let tcp = TcpApps {
        apps: vec![client],
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
    let client = Lcore::new(
        3,
        None,
        vec![(0, cp.take_rx_queue(0).unwrap())],
        LcoreIo::new(vec![Some(cp.take_tx_queue(0).unwrap())]),
        Box::new(GraphStage::new(graph)),
        32,
        IdlePolicy::Busy,
    );
    (server, app_lcore, client, sgraph)
}

#[test]
fn cross_core_tcp_echo_steady_state_allocates_nothing() {
    let st = Arc::new(Mutex::new(Stream::default()));
    let (mut server, mut app_lcore, mut client, sgraph) = xcore_stacks(
        "name = \"tcp-echo\"\nports = [7]\nsend_buffer = 65536\nrecv_buffer = 65536\napp_lcores = [2]",
        Box::new(Client(st.clone())),
    );
    let mut turn = || {
        server.run_turns(1);
        app_lcore.run_turns(1);
        client.run_turns(1);
    };
    // Warm up: connect and stream a few MB (per-socket queues, pool caches, rings settled).
    let mut turns = 0;
    while st.lock().unwrap().received < 4 << 20 && turns < 400_000 {
        turn();
        turns += 1;
    }
    let before = st.lock().unwrap().received;
    assert!(before >= 4 << 20, "warm-up moved only {before} bytes");
    // Steady state: 32 MiB more through the bridge and the app lcore, allocations counted.
    ALLOCS.store(0, Ordering::Relaxed);
    WATCH.with(|w| w.set(true));
    let t0 = std::time::Instant::now();
    let mut turns = 0u64;
    while st.lock().unwrap().received < before + (32 << 20) && turns < 4_000_000 {
        turn();
        turns += 1;
    }
    WATCH.with(|w| w.set(false));
    let took = t0.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let s = st.lock().unwrap();
    let moved = s.received - before;
    assert!(moved >= 32 << 20, "steady state moved only {moved} bytes");
    assert_eq!(s.mismatches, 0, "echoed bytes differ");
    assert!(!s.closed);
    assert_eq!(count(&sgraph, "conn_accepted"), 1);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while echoing {moved} bytes across lcores"
    );
    eprintln!(
        "cross-core: {moved} bytes echoed in {turns} turns, {took:?} ({:.0} Mbit/s), 0 allocations",
        moved as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

/// What the HTTP client saw.
#[derive(Default)]
struct Http {
    id: Option<SockId>,
    started: bool,
    requests: u64,
    /// Bytes of responses received.
    received: u64,
    /// The first response, recorded during the warm-up (the template every later one must
    /// match, except for the clock in the `Date` header).
    template: Vec<u8>,
    date_at: usize,
    mismatches: u64,
    closed: bool,
}

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
const BODY: &str = "zero allocations per request\n";

/// Keeps up to 8 pipelined GETs outstanding on one keep-alive connection and checks every
/// response byte against the template (fixed buffers only once the template is recorded).
struct HttpClient(Arc<Mutex<Http>>);

impl HttpClient {
    fn push(st: &mut Http, s: &mut TcpSocket<'_>) {
        let len = st.template.len().max(1) as u64;
        while st.requests < st.received / len + 8 && s.send_space() >= REQUEST.len() {
            s.write(REQUEST);
            st.requests += 1;
        }
    }
}

impl TcpApp for HttpClient {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        // One request until the template is known.
        s.write(REQUEST);
        st.requests = 1;
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        if st.template.is_empty() {
            let [a, _] = s.peek();
            let text = String::from_utf8_lossy(a).into_owned();
            if !text.ends_with(BODY) {
                return; // wait for the whole first response
            }
            st.template = a.to_vec();
            st.date_at = text.find("Date: ").expect("a Date header") + 6;
            st.received = a.len() as u64;
            let n = a.len();
            s.consume(n);
            Self::push(&mut st, s);
            return;
        }
        loop {
            let n = {
                let [a, b] = s.peek();
                let len = st.template.len() as u64;
                for (k, &x) in a.iter().chain(b.iter()).enumerate() {
                    let at = ((st.received + k as u64) % len) as usize;
                    let in_date = at >= st.date_at && at < st.date_at + 29;
                    if !in_date && x != st.template[at] {
                        st.mismatches += 1;
                    }
                }
                a.len() + b.len()
            };
            if n == 0 {
                break;
            }
            s.consume(n);
            st.received += n as u64;
        }
        Self::push(&mut st, s);
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        Self::push(&mut self.0.lock().unwrap(), s);
    }
    fn on_close(&mut self, _id: SockId, _r: ferroplane::stack::tcp::CloseReason) {
        self.0.lock().unwrap().closed = true;
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        let mut st = self.0.lock().unwrap();
        if !st.started {
            st.started = true;
            st.id = ctl.connect("198.18.0.1:80".parse().unwrap()).ok();
        }
    }
}

#[test]
fn http_keep_alive_steady_state_allocates_nothing() {
    let st = Arc::new(Mutex::new(Http::default()));
    let app = format!(
        "name = \"http\"\nports = [80]\nmax_connections = 64\n[[app.routes]]\npath = \"/\"\nbody = \"{}\"",
        BODY.trim_end().to_string() + "\\n"
    );
    let (mut server, mut client, sgraph) = two_stacks(&app, Box::new(HttpClient(st.clone())));
    let responses = |st: &Http| st.received / st.template.len().max(1) as u64;
    // Warm up: connect, record the template, a few thousand requests.
    let mut turns = 0;
    while responses(&st.lock().unwrap()) < 5_000 && turns < 500_000 {
        server.run_turns(1);
        client.run_turns(1);
        turns += 1;
    }
    let before = responses(&st.lock().unwrap());
    assert!(before >= 5_000, "warm-up answered only {before} requests");
    let template = String::from_utf8_lossy(&st.lock().unwrap().template).into_owned();
    assert!(template.starts_with("HTTP/1.1 200 OK\r\n"), "{template}");
    assert!(
        template.contains("\r\nConnection: keep-alive\r\n"),
        "{template}"
    );
    // Steady state: 50 000 more requests answered and checked, allocations counted.
    ALLOCS.store(0, Ordering::Relaxed);
    WATCH.with(|w| w.set(true));
    let t0 = std::time::Instant::now();
    let mut turns = 0u64;
    while responses(&st.lock().unwrap()) < before + 50_000 && turns < 5_000_000 {
        server.run_turns(1);
        client.run_turns(1);
        turns += 1;
    }
    WATCH.with(|w| w.set(false));
    let took = t0.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let s = st.lock().unwrap();
    let answered = responses(&s) - before;
    assert!(
        answered >= 50_000,
        "steady state answered only {answered} requests"
    );
    assert_eq!(s.mismatches, 0, "a response differs from the first one");
    assert!(!s.closed);
    assert_eq!(count(&sgraph, "conn_accepted"), 1);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while answering {answered} requests"
    );
    eprintln!(
        "{answered} requests answered in {turns} turns, {took:?} ({:.0} req/s), 0 allocations",
        answered as f64 / took.as_secs_f64()
    );
}
