//! Proves the TCP echo and HTTP data paths do not touch the heap once warmed up: a counting
//! global allocator watches a ferroplane client stream data through the `tcp-echo` app (or
//! pipeline requests to the `http` app, or open a new connection per request) of a second
//! ferroplane stack (two lcores driven from this thread, joined by a ring pair) and check every
//! byte that comes back.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::counting::{self, Counting};
use common::tcp::{count, direct_ports, direct_ports_offload, tcp_apps, Server, Stacks};
use ferroplane::graph::GraphMonitor;
use ferroplane::port::ring::RingPort;
use ferroplane::runtime::IdlePolicy;
use ferroplane::stack::tcp::{SockId, TcpApp, TcpControl, TcpSocket};

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

/// A server stack running `app` and a client stack running `client`, joined by a ring pair.
fn two_stacks(app: &str, client: Box<dyn TcpApp>) -> Stacks {
    Stacks::new(Server::new(app), tcp_apps(vec![client]))
}

/// Turns every lcore of `stacks` until `done` (or `max` turns), with this thread's heap
/// allocations counted if `counted`: returns the turns, the time and the allocations.
fn run_until(
    stacks: &mut Stacks,
    max: u64,
    counted: bool,
    mut done: impl FnMut() -> bool,
) -> (u64, Duration, u64) {
    counting::reset();
    counting::watch_this_thread(counted);
    let t0 = Instant::now();
    let mut turns = 0u64;
    while !done() && turns < max {
        stacks.turn();
        turns += 1;
    }
    counting::watch_this_thread(false);
    (turns, t0.elapsed(), counting::allocations())
}

/// Streams through tcp-echo on `server` (warm-up: 4 MiB within `warm_max` turns), then
/// checks 32 MiB more (within `steady_max` turns) are echoed byte-exact on the same connection
/// without a heap allocation; returns the server's graph.
fn echo_allocates_nothing(
    server: Server<'_>,
    warm_max: u64,
    steady_max: u64,
    how: &str,
) -> GraphMonitor {
    echo_on_ports_allocates_nothing(direct_ports(), server, warm_max, steady_max, how)
}

/// [`echo_allocates_nothing`] with the stacks on `ports`.
fn echo_on_ports_allocates_nothing(
    (sp, cp): (RingPort, RingPort),
    server: Server<'_>,
    warm_max: u64,
    steady_max: u64,
    how: &str,
) -> GraphMonitor {
    let st = Arc::new(Mutex::new(Stream::default()));
    let mut stacks = Stacks::on(sp, cp, server, tcp_apps(vec![Box::new(Client(st.clone()))]));
    let sgraph = stacks.server_graph.clone();
    // Warm up: connect and stream a few MB (pool caches, rings, ARP, per-socket queues settled).
    run_until(&mut stacks, warm_max, false, || {
        st.lock().unwrap().received >= 4 << 20
    });
    let before = st.lock().unwrap().received;
    assert!(before >= 4 << 20, "warm-up moved only {before} bytes");
    let segs_before = count(&sgraph, "tcp-input", "conn_accepted");
    // Steady state: at least 32 MiB more, echoed and checked, with allocations counted.
    let (turns, took, allocs) = run_until(&mut stacks, steady_max, true, || {
        st.lock().unwrap().received >= before + (32 << 20)
    });
    let s = st.lock().unwrap();
    let moved = s.received - before;
    assert!(moved >= 32 << 20, "steady state moved only {moved} bytes");
    assert_eq!(s.mismatches, 0, "echoed bytes differ");
    assert!(!s.closed);
    assert_eq!(count(&sgraph, "tcp-input", "conn_accepted"), segs_before);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while echoing {moved} bytes{how}"
    );
    eprintln!(
        "{moved} bytes echoed{how} in {turns} turns, {took:?} ({:.0} Mbit/s), 0 allocations",
        moved as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
    sgraph
}

#[test]
fn tcp_echo_steady_state_allocates_nothing() {
    echo_allocates_nothing(
        Server::new("name = \"tcp-echo\"\nports = [7]\nsend_buffer = 65536\nrecv_buffer = 65536"),
        200_000,
        2_000_000,
        "",
    );
}

#[test]
fn tcp_echo_with_checksum_offload_allocates_nothing() {
    // Partial checksums on both ring sides: tcp-input and the tx node take other paths.
    let sgraph = echo_on_ports_allocates_nothing(
        direct_ports_offload(true),
        Server::new("name = \"tcp-echo\"\nports = [7]\nsend_buffer = 65536\nrecv_buffer = 65536"),
        200_000,
        2_000_000,
        " with checksum offload",
    );
    assert_eq!(count(&sgraph, "tx", "l4_checksum_completed"), 0);
    assert_eq!(count(&sgraph, "tcp-input", "bad_checksum"), 0);
}

#[test]
fn cross_core_tcp_echo_steady_state_allocates_nothing() {
    // The server's echo runs on an app lcore (`app_lcores = [2]`), turned here too: 32 MiB
    // through the bridge and the app lcore.
    let sgraph = echo_allocates_nothing(
        Server {
            app_lcore: Some(IdlePolicy::Busy),
            ..Server::new("name = \"tcp-echo\"\nports = [7]\nsend_buffer = 65536\nrecv_buffer = 65536\napp_lcores = [2]")
        },
        400_000,
        4_000_000,
        " across lcores",
    );
    assert_eq!(count(&sgraph, "tcp-input", "conn_accepted"), 1);
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

/// Pipelines keep-alive requests to `http` (its sessions on app lcore 2 if `cross_core`;
/// warm-up: 5 000 responses within `warm_max` turns), then checks 50 000 more are answered
/// (within `steady_max` turns), byte-exact, without a heap allocation; returns the server's
/// graph.
fn http_keep_alive_allocates_nothing(
    cross_core: bool,
    warm_max: u64,
    steady_max: u64,
    how: &str,
) -> GraphMonitor {
    let st = Arc::new(Mutex::new(Http::default()));
    let app = format!(
        "name = \"http\"\nports = [80]\nmax_connections = 64\n{}[[app.routes]]\npath = \"/\"\nbody = \"{}\"",
        if cross_core { "app_lcores = [2]\n" } else { "" },
        BODY.trim_end().to_string() + "\\n"
    );
    let server = Server {
        app_lcore: cross_core.then_some(IdlePolicy::Busy),
        ..Server::new(&app)
    };
    let mut stacks = Stacks::new(server, tcp_apps(vec![Box::new(HttpClient(st.clone()))]));
    let sgraph = stacks.server_graph.clone();
    let responses = |st: &Http| st.received / st.template.len().max(1) as u64;
    // Warm up: connect, record the template, a few thousand requests.
    run_until(&mut stacks, warm_max, false, || {
        responses(&st.lock().unwrap()) >= 5_000
    });
    let before = responses(&st.lock().unwrap());
    assert!(
        before >= 5_000,
        "warm-up answered only {before} requests{how}"
    );
    let template = String::from_utf8_lossy(&st.lock().unwrap().template).into_owned();
    assert!(template.starts_with("HTTP/1.1 200 OK\r\n"), "{template}");
    assert!(
        template.contains("\r\nConnection: keep-alive\r\n"),
        "{template}"
    );
    // Steady state: 50 000 more requests answered and checked, allocations counted.
    let (turns, took, allocs) = run_until(&mut stacks, steady_max, true, || {
        responses(&st.lock().unwrap()) >= before + 50_000
    });
    let s = st.lock().unwrap();
    let answered = responses(&s) - before;
    assert!(
        answered >= 50_000,
        "steady state answered only {answered} requests{how}"
    );
    assert_eq!(s.mismatches, 0, "a response differs from the first one");
    assert!(!s.closed);
    assert_eq!(count(&sgraph, "tcp-input", "conn_accepted"), 1);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while answering {answered} requests{how}"
    );
    eprintln!(
        "{answered} requests answered{how} in {turns} turns, {took:?} ({:.0} req/s), 0 allocations",
        answered as f64 / took.as_secs_f64()
    );
    sgraph
}

#[test]
fn http_keep_alive_steady_state_allocates_nothing() {
    http_keep_alive_allocates_nothing(false, 500_000, 5_000_000, "");
}

#[test]
fn cross_core_http_keep_alive_steady_state_allocates_nothing() {
    // The sessions run on an app lcore (`app_lcores = [2]`), turned here too: requests and
    // responses through the bridge, the rings and the endpoint.
    let sgraph = http_keep_alive_allocates_nothing(true, 1_000_000, 10_000_000, " across lcores");
    assert_eq!(count(&sgraph, "tcp-input", "xcore_sockets"), 1);
}

/// What the connection-churning HTTP client saw.
#[derive(Default)]
struct Churn {
    /// Connections opened.
    opened: u64,
    /// Connections that got a whole `200` response with the body and then the server's FIN.
    completed: u64,
    /// Responses that were not the expected page.
    bad: u64,
    /// Connections that ended otherwise (reset, timeout, refused).
    failed: u64,
}

/// Keeps `CHURN_FLOWS` connections busy, each with one `Connection: close` request: reads
/// the response to the server's FIN, closes, and opens the next one (fixed buffers only).
struct ChurnClient(Arc<Mutex<Churn>>);

const CHURN_FLOWS: u64 = 4;
const CLOSE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

impl TcpApp for ChurnClient {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        s.write(CLOSE_REQUEST);
    }
    fn on_data(&mut self, _s: &mut TcpSocket<'_>) {
        // The whole response is read once the server has closed (it fits the buffer).
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        let ok = {
            let [a, b] = s.peek();
            let n = a.len() + b.len();
            b.is_empty()
                && a.starts_with(b"HTTP/1.1 200 OK\r\n")
                && a.ends_with(BODY.as_bytes())
                && n > BODY.len()
        };
        let n = s.available();
        s.consume(n);
        if ok {
            st.completed += 1;
        } else {
            st.bad += 1;
        }
        s.close();
    }
    fn on_close(&mut self, _id: SockId, _r: ferroplane::stack::tcp::CloseReason) {
        // Only sockets the client did not close itself end up here.
        self.0.lock().unwrap().failed += 1;
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        let mut st = self.0.lock().unwrap();
        let done = st.completed + st.bad + st.failed;
        while st.opened < done + CHURN_FLOWS {
            if ctl.connect("198.18.0.1:80".parse().unwrap()).is_err() {
                break;
            }
            st.opened += 1;
        }
    }
}

#[test]
fn http_connection_per_request_steady_state_allocates_nothing() {
    let st = Arc::new(Mutex::new(Churn::default()));
    let app = format!(
        "name = \"http\"\nports = [80]\nmax_connections = 256\n[[app.routes]]\npath = \"/\"\nbody = \"{}\"",
        BODY.trim_end().to_string() + "\\n"
    );
    let mut stacks = two_stacks(&app, Box::new(ChurnClient(st.clone())));
    let sgraph = stacks.server_graph.clone();
    // Warm up: enough connections that every table slot, session and buffer set has been
    // used (and TIME-WAIT is at its bound) before counting starts.
    run_until(&mut stacks, 2_000_000, false, || {
        st.lock().unwrap().completed >= 2_000
    });
    let before = st.lock().unwrap().completed;
    assert!(
        before >= 2_000,
        "warm-up completed only {before} connections"
    );
    let (turns, took, allocs) = run_until(&mut stacks, 5_000_000, true, || {
        st.lock().unwrap().completed >= before + 5_000
    });
    let s = st.lock().unwrap();
    let done = s.completed - before;
    assert!(
        done >= 5_000,
        "steady state completed only {done} connections"
    );
    assert_eq!(
        (s.bad, s.failed),
        (0, 0),
        "bad responses / failed connections"
    );
    assert!(count(&sgraph, "tcp-input", "conn_accepted") >= before + 5_000);
    // The server closes first, so TIME-WAIT fills its 256-slot table: new connections take
    // the slots of old TIME-WAIT ones instead of being refused.
    assert!(count(&sgraph, "tcp-input", "time_wait_reclaimed") > 0);
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations over {done} connections (one request each)"
    );
    eprintln!(
        "{done} connections (one request each) in {turns} turns, {took:?} ({:.0} conn/s), 0 allocations",
        done as f64 / took.as_secs_f64()
    );
}
