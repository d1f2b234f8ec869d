//! The `http` application on an app lcore (`app_lcores`), through the whole stack: a
//! ferroplane client stack talks HTTP/1.1 to a server stack whose sessions run on an app
//! lcore thread behind the stack lcore's xcore bridge. Keep-alive request after request,
//! pipelined bursts, a malformed request (400), an unknown path (404), a POST (405), and a
//! body of several megabytes; every response is parsed and checked (status line,
//! `Content-Length`, `Connection`, body byte for byte), and the server's http_* counters,
//! reported by the app lcore, must equal what the client saw.

mod common;

use std::sync::{Arc, Mutex};

use common::tcp::{count, many_conns_client, random_bytes, Server, Stacks};
use ferroplane::stack::tcp::xcore::XCORE_APP_NODE;
use ferroplane::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

const HELLO: &str = "hello from the app lcore\n";

/// A request and the response it must get.
#[derive(Clone)]
struct Exchange {
    request: Vec<u8>,
    status: &'static str,
    /// The exact body, when it is one of ours (`None`: a built-in error page).
    body: Option<Arc<Vec<u8>>>,
    /// The response closes the connection.
    close: bool,
    /// A protocol error (counted as malformed).
    malformed: bool,
}

/// A parsed response.
#[derive(Debug)]
struct Response {
    head: String,
    body: Vec<u8>,
}

/// One connection: batches of exchanges, each batch written at once (pipelined) after every
/// response of the previous batch arrived.
#[derive(Default)]
struct Conn {
    batches: Vec<Vec<Exchange>>,
    /// Batches started.
    next: usize,
    /// Request bytes of the started batches not written yet.
    out: Vec<u8>,
    received: Vec<u8>,
    parsed: usize,
    responses: Vec<Response>,
    shut: bool,
    peer_closed: bool,
    /// Set when the stack ended the connection without the client closing it (a reset).
    closed: Option<CloseReason>,
    /// Response bytes received in total.
    bytes_in: u64,
}

impl Conn {
    fn expected(&self) -> impl Iterator<Item = &Exchange> {
        self.batches.iter().flatten()
    }

    fn total(&self) -> usize {
        self.batches.iter().map(|b| b.len()).sum()
    }

    fn started(&self) -> usize {
        self.batches[..self.next].iter().map(|b| b.len()).sum()
    }

    /// Parses every complete response received.
    fn parse(&mut self) {
        loop {
            let rest = &self.received[self.parsed..];
            let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&rest[..end + 4]).into_owned();
            let len: usize = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
            if rest.len() < end + 4 + len {
                return;
            }
            let body = rest[end + 4..end + 4 + len].to_vec();
            self.parsed += end + 4 + len;
            self.responses.push(Response { head, body });
        }
    }

    /// Drops parsed bytes now and then, so a big body is not kept twice.
    fn compact(&mut self) {
        if self.parsed > 1 << 20 {
            self.received.drain(..self.parsed);
            self.parsed = 0;
        }
    }

    /// Starts the next batch once the previous one is answered; half-closes after the last.
    fn advance(&mut self, s: &mut TcpSocket<'_>) {
        if self.responses.len() >= self.started() && self.out.is_empty() {
            if self.next < self.batches.len() {
                for e in &self.batches[self.next] {
                    self.out.extend_from_slice(&e.request);
                }
                self.next += 1;
            } else if !self.shut && !self.peer_closed {
                self.shut = true;
                s.shutdown();
            }
        }
        while !self.out.is_empty() {
            let n = s.write(&self.out);
            if n == 0 {
                break;
            }
            self.out.drain(..n);
        }
    }

    fn read(&mut self, s: &mut TcpSocket<'_>) {
        loop {
            let n = {
                let [a, b] = s.peek();
                self.received.extend_from_slice(a);
                self.received.extend_from_slice(b);
                a.len() + b.len()
            };
            if n == 0 {
                break;
            }
            s.consume(n);
            self.bytes_in += n as u64;
        }
        // Bodies are checked as they complete, then dropped (a big one is several MB).
        self.parse();
        self.compact();
    }

    fn finished(&self) -> bool {
        self.peer_closed || self.closed.is_some()
    }
}

/// The client: opens every connection at once and plays its batches.
struct Client {
    conns: Arc<Mutex<Vec<Conn>>>,
    ids: Vec<Option<SockId>>,
    started: bool,
    first_up: bool,
}

impl Client {
    fn conn<'a>(&self, conns: &'a mut [Conn], id: SockId) -> Option<&'a mut Conn> {
        let i = self.ids.iter().position(|x| *x == Some(id))?;
        conns.get_mut(i)
    }
}

impl TcpApp for Client {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        self.first_up = true;
        let mut conns = self.conns.lock().unwrap();
        if let Some(c) = self.conn(&mut conns, s.id()) {
            c.advance(s);
        }
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut conns = self.conns.lock().unwrap();
        if let Some(c) = self.conn(&mut conns, s.id()) {
            c.read(s);
            c.advance(s);
        }
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        let mut conns = self.conns.lock().unwrap();
        if let Some(c) = self.conn(&mut conns, s.id()) {
            c.advance(s);
        }
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let mut conns = self.conns.lock().unwrap();
        if let Some(c) = self.conn(&mut conns, s.id()) {
            c.read(s);
            c.peer_closed = true;
        }
        s.close();
    }
    fn on_close(&mut self, id: SockId, reason: CloseReason) {
        let mut conns = self.conns.lock().unwrap();
        if let Some(c) = self.conn(&mut conns, id) {
            c.closed = Some(reason);
        }
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        // One connection first (it resolves the server's address), the rest once it is up:
        // SYNs beyond the ARP hold queue would wait for a retransmission.
        let server = "198.18.0.1:80".parse().unwrap();
        if !self.started {
            self.started = true;
            self.ids[0] = Some(ctl.connect(server).unwrap());
        } else if self.first_up && self.ids.iter().any(|i| i.is_none()) {
            for id in self.ids.iter_mut().filter(|i| i.is_none()) {
                *id = Some(ctl.connect(server).unwrap());
            }
        }
    }
}

fn get(path: &str, close: bool) -> Vec<u8> {
    let c = if close { "Connection: close\r\n" } else { "" };
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: xcore-test\r\n{c}\r\n").into_bytes()
}

/// The routes of the server and the requests of the test.
struct Site {
    hello: Arc<Vec<u8>>,
    page: Arc<Vec<u8>>,
    big: Arc<Vec<u8>>,
}

impl Site {
    fn ok(&self, path: &str, close: bool) -> Exchange {
        let body = match path.split('?').next().unwrap() {
            "/" => self.hello.clone(),
            "/page" => self.page.clone(),
            "/big" => self.big.clone(),
            p => panic!("no route {p}"),
        };
        Exchange {
            request: get(path, close),
            status: "200 OK",
            body: Some(body),
            close,
            malformed: false,
        }
    }

    fn not_found(path: &str) -> Exchange {
        Exchange {
            request: get(path, false),
            status: "404 Not Found",
            body: None,
            close: false,
            malformed: false,
        }
    }

    /// Request `i` of a mixed sequence: the small page, a 3 KB page (two mbufs), a query
    /// string, an unknown path.
    fn mixed(&self, i: usize) -> Exchange {
        match i % 4 {
            0 => self.ok("/", false),
            1 => self.ok("/page", false),
            2 => self.ok("/?q=1", false),
            _ => Site::not_found("/nope"),
        }
    }
}

/// Checks every response of `c` against its exchanges; returns (2xx, 4xx, malformed).
fn check(i: usize, c: &Conn) -> (u64, u64, u64) {
    let expected: Vec<&Exchange> = c.expected().collect();
    assert_eq!(
        c.responses.len(),
        expected.len(),
        "conn {i}: responses (the last: {:?})",
        c.responses.last().map(|r| &r.head)
    );
    assert_eq!(
        c.parsed,
        c.received.len(),
        "conn {i}: bytes after the last response"
    );
    let (mut ok, mut client_err, mut malformed) = (0, 0, 0);
    for (k, (r, e)) in c.responses.iter().zip(&expected).enumerate() {
        let what = format!("conn {i} response {k}: {:?}", r.head);
        assert!(
            r.head.starts_with(&format!("HTTP/1.1 {}\r\n", e.status)),
            "{what}"
        );
        let length = format!("\r\nContent-Length: {}\r\n", r.body.len());
        assert!(r.head.contains(&length), "{what}");
        let conn = if e.close { "close" } else { "keep-alive" };
        assert!(
            r.head.contains(&format!("\r\nConnection: {conn}\r\n")),
            "{what}"
        );
        assert!(r.head.contains("\r\nServer: ferroplane\r\n"), "{what}");
        if let Some(body) = &e.body {
            assert_eq!(r.body.len(), body.len(), "{what}");
            assert!(r.body == **body, "{what}: the body differs");
        }
        match &e.status[..1] {
            "2" => ok += 1,
            "4" => client_err += 1,
            s => panic!("unexpected status class {s}"),
        }
        malformed += u64::from(e.malformed);
    }
    (ok, client_err, malformed)
}

/// The server's routes and the requests the tests make.
fn site() -> (Site, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let big = random_bytes(4_500_000, 0x5eed_0bad_cafe_0001);
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let page: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let app = format!(
        "name = \"http\"\nports = [80]\napp_lcores = [2]\nsend_buffer = 65536\nrecv_buffer = 16384\nmax_connections = 64\n\
         [[app.routes]]\npath = \"/\"\nbody = \"{}\\n\"\n\
         [[app.routes]]\npath = \"/page\"\nbody = \"{}\"\n\
         [[app.routes]]\npath = \"/big\"\nfile = \"{}\"\ncontent_type = \"application/octet-stream\"\n",
        HELLO.trim_end(),
        String::from_utf8(page.clone()).unwrap(),
        big_path.display()
    );
    let site = Site {
        hello: Arc::new(HELLO.as_bytes().to_vec()),
        page: Arc::new(page),
        big: Arc::new(big),
    };
    (site, dir, app)
}

/// One connection per element of `conns`.
fn conns_of(batches: Vec<Vec<Vec<Exchange>>>) -> Vec<Conn> {
    batches
        .into_iter()
        .map(|batches| Conn {
            batches,
            ..Conn::default()
        })
        .collect()
}

/// Keep-alive connections of `n` requests one at a time, and `pipelined` connections of 300
/// requests in one go (more than a session queues, so parsing pauses and the rest waits in
/// the cross-core window); the second pipelined one ends with `Connection: close`.
fn keep_alive_and_pipelined(site: &Site, keep_alive: usize, n: usize) -> Vec<Vec<Vec<Exchange>>> {
    let mut out: Vec<Vec<Vec<Exchange>>> = (0..keep_alive)
        .map(|c| (0..n).map(|i| vec![site.mixed(i + c)]).collect())
        .collect();
    for c in 0..2 {
        let mut b: Vec<Exchange> = (0..300).map(|i| site.mixed(i + c)).collect();
        if c == 1 {
            b.push(site.ok("/", true));
        }
        out.push(vec![b]);
    }
    out
}

/// Protocol errors and other methods: a malformed request after a good one (200, then 400
/// and the server closes), HTTP/1.1 without `Host` (400), a POST with a body (405, its
/// body skipped, the next request answered).
fn bad_requests(site: &Site) -> Vec<Vec<Vec<Exchange>>> {
    let mut garbage = get("/", false);
    garbage.extend_from_slice(b"\x16\x03\x01 not http\r\n\r\n");
    let bad = |request: Vec<u8>| Exchange {
        request,
        status: "400 Bad Request",
        body: None,
        close: true,
        malformed: true,
    };
    vec![
        vec![vec![
            Exchange {
                request: garbage,
                ..site.ok("/", false)
            },
            bad(Vec::new()),
        ]],
        vec![vec![bad(b"GET / HTTP/1.1\r\n\r\n".to_vec())]],
        vec![vec![
            Exchange {
                request: b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
                status: "405 Method Not Allowed",
                body: None,
                close: false,
                malformed: false,
            },
            site.ok("/page", false),
        ]],
    ]
}

/// The large body alone, then pipelined between two small responses: it crosses the send
/// credit (64 KiB) many times over.
fn big_body(site: &Site) -> Vec<Vec<Exchange>> {
    vec![
        vec![site.ok("/big", false)],
        vec![
            site.ok("/", false),
            site.ok("/big", false),
            site.ok("/", false),
        ],
    ]
}

/// What a run left: the connections as the client saw them, the server's counters.
struct Outcome {
    conns: Vec<Conn>,
    /// Responses of all connections by class: (2xx, 4xx, malformed requests), and bytes.
    ok: u64,
    client_err: u64,
    malformed: u64,
    bytes: u64,
    requests: u64,
    server: ferroplane::graph::GraphMonitor,
    app: ferroplane::graph::GraphMonitor,
}

/// Runs `conns` against the `app` server (sessions on app lcore 2, on its own thread) until
/// every connection ended (60 s at most), and checks each one: the server's FIN, no reset,
/// every response as expected.
fn serve(app: &str, conns: Vec<Conn>) -> Outcome {
    // The app lcore registers as lcore 2, which one thread of the process may be at a time:
    // the tests of this file take turns.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = conns.len();
    let requests: usize = conns.iter().map(|c| c.total()).sum();
    let conns = Arc::new(Mutex::new(conns));
    let client = Client {
        conns: conns.clone(),
        ids: vec![None; n],
        started: false,
        first_up: false,
    };
    let mut p = Stacks::new(
        Server::on_app_lcore(app),
        many_conns_client(Box::new(client)),
    );
    let took = p.run_with_app_thread(|| conns.lock().unwrap().iter().all(|c| c.finished()));
    let Stacks {
        server_graph,
        app_graph,
        ..
    } = p;

    let conns = std::mem::take(&mut *conns.lock().unwrap());
    let (mut ok, mut client_err, mut malformed, mut bytes) = (0, 0, 0, 0);
    for (i, c) in conns.iter().enumerate() {
        assert!(
            c.peer_closed,
            "conn {i} did not end with the server's FIN (closed: {:?}, {} of {} responses)",
            c.closed,
            c.responses.len(),
            c.total()
        );
        assert_eq!(c.closed, None, "conn {i} was reset");
        let (o, e, m) = check(i, c);
        ok += o;
        client_err += e;
        malformed += m;
        bytes += c.bytes_in;
    }
    assert_eq!(ok + client_err, requests as u64);
    // Every connection accepted once, nothing lost or reset on the way.
    assert_eq!(count(&server_graph, "tcp-input", "conn_accepted"), n as u64);
    for r in ["bad_checksum", "no_listener", "table_full", "xcore_rx_lost"] {
        assert_eq!(count(&server_graph, "tcp-input", r), 0, "{r}");
    }
    eprintln!(
        "{n} connections, {requests} requests, {bytes} response bytes through an app lcore in {took:?}"
    );
    Outcome {
        conns,
        ok,
        client_err,
        malformed,
        bytes,
        requests: requests as u64,
        server: server_graph,
        app: app_graph.expect("the app lcore's counters"),
    }
}

#[test]
fn keep_alive_pipelined_and_bad_requests_on_an_app_lcore_get_exact_responses_in_order() {
    let (site, _dir, app) = site();
    let mut batches = keep_alive_and_pipelined(&site, 6, 40);
    batches.extend(bad_requests(&site));
    let out = serve(&app, conns_of(batches));
    // 6 x 40 + 300 + 301 + 2 + 1 + 2 responses, each checked by `serve`.
    assert_eq!(out.requests, 240 + 601 + 5);
    assert_eq!(out.malformed, 2);
    let pipelined = &out.conns[6];
    assert_eq!(pipelined.responses.len(), 300);
}

#[test]
fn a_body_of_megabytes_from_an_app_lcore_arrives_complete() {
    let (site, _dir, app) = site();
    // Two connections at once, each fetching the 4.5 MB file twice.
    let out = serve(&app, conns_of(vec![big_body(&site), big_body(&site)]));
    assert_eq!(out.ok, 8);
    assert!(out.bytes > 4 * 4_500_000, "{} bytes", out.bytes);
    // Every byte went through the endpoint's send credit (64 KiB, so it came back
    // hundreds of times).
    assert_eq!(count(&out.app, XCORE_APP_NODE, "ep_tx_bytes"), out.bytes);
}

#[test]
fn http_counters_of_an_app_lcore_equal_what_the_client_saw() {
    let (site, _dir, app) = site();
    let mut batches = keep_alive_and_pipelined(&site, 3, 20);
    batches.extend(bad_requests(&site));
    batches.push(big_body(&site));
    let out = serve(&app, conns_of(batches));
    // The HTTP counters come from the app lcore (node `xcore-app`) and match the client.
    let c = |name: &str| count(&out.app, XCORE_APP_NODE, name);
    assert_eq!(c("http_requests"), out.requests);
    assert_eq!(c("http_2xx"), out.ok);
    assert_eq!(c("http_4xx"), out.client_err);
    assert_eq!(c("http_5xx"), 0);
    assert_eq!(c("http_malformed"), out.malformed);
    assert_eq!(out.malformed, 2);
    assert_eq!(c("http_bytes_out"), out.bytes);
    assert!(out.bytes > 9_000_000);
    // Every response byte crossed the endpoint and the bridge; the stack lcore ran no
    // sessions.
    assert_eq!(c("ep_tx_bytes"), out.bytes);
    assert_eq!(count(&out.server, "tcp-input", "xcore_tx_bytes"), out.bytes);
    assert_eq!(count(&out.server, "tcp-input", "http_requests"), 0);
}
