//! TCP interop with the Linux kernel as the reference peer, over veth pairs in network
//! namespaces (198.18.0.0/15 only): Linux clients (`socat`) talk to the `tcp-echo` app of the
//! `ferroplane` binary on af_packet and af_xdp ports, and a ferroplane stack (in this process,
//! on a thread moved into the namespace) opens a connection to a Linux `socat` listener.
//! Every wait is bounded; namespaces and links are removed even when a test fails.
//!
//! Needs root and `socat`, `ping`, `ethtool` (`.ci/run` installs them). Without them each test
//! prints why it is skipped, unless `FERROPLANE_REQUIRE_TOOLS=1` (then it fails).

mod support;

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::ferroplane::{out, random_bytes, tools, Ferroplane, T};
use support::netns::{wait_for, End, Netns, VethPair};

/// The config of a ferroplane with `ports` running `app` on one lcore polling `p0`.
fn config(ports: &str, app: &str) -> String {
    support::ferroplane::config(ports, "\"p0\"", app)
}

/// Sends `data` through `socat` from `ns` to `dst` (TCP) and returns what came back before
/// the server closed. Bounded by `limit`.
fn socat_tcp(ns: &Netns, dst: &str, data: &[u8], limit: Duration) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    let errf = dir.path().join("err");
    std::fs::write(&input, data).unwrap();
    // -t: after our EOF, wait this long for the echo to finish and close.
    let mut c = ns
        .exec(&["socat", "-t", "20", "-T", "20", "-", &format!("TCP:{dst}")])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::fs::File::create(&errf).unwrap())
        .spawn()
        .unwrap();
    let done = wait_for(limit, || c.try_wait().ok().flatten().is_some());
    if !done {
        let _ = c.kill();
    }
    let _ = c.wait();
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    (std::fs::read(&output).unwrap(), err)
}

/// Waits until the Linux peer can reach ferroplane (ping: the data plane is up, ARP done).
fn wait_reachable(ns: &Netns, dst: &str, fp: &mut Ferroplane) {
    let ok = wait_for(Duration::from_secs(15), || {
        fp.assert_running();
        ns.run(&["ping", "-c", "1", "-W", "1", dst], T)
            .is_ok_and(|o| o.status.success())
    });
    assert!(ok, "{dst} never answered ping:\n{}", fp.log());
}

/// Linux `socat` sends 1 MiB of random bytes to `tcp-echo` on a `driver` port and gets the
/// same bytes back; a second connection works after the first; a connection to a closed port
/// is refused (RST).
fn linux_socat_echo(driver: &str) {
    if !tools(&["socat", "ping", "ethtool"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let link = VethPair::new("fptdut0", Some(&dut), "fptpeer0", Some(&peer)).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    if driver == "af_xdp" {
        // AF_XDP gets frames with no "checksum partial" mark: the peer must finish them.
        let o = peer
            .run(&["ethtool", "-K", "fptpeer0", "tx", "off"], T)
            .unwrap();
        assert!(o.status.success(), "ethtool: {}", out(&o));
    }
    let ports = format!(
        r#"
[[ports]]
name = "p0"
driver = "{driver}"
iface = "fptdut0"
ipv4 = ["198.18.0.1/24"]
"#
    );
    let mut fp = Ferroplane::start(
        &dut,
        &config(&ports, "name = \"tcp-echo\"\nports = [7, 9007]"),
    );
    wait_reachable(&peer, "198.18.0.1", &mut fp);

    echo_a_mebibyte(&peer, &fp, 0x5eed_0001, driver);
    // The other port, a small exchange.
    let small = b"ferroplane says hello over TCP\n".repeat(10);
    let (back, err) = socat_tcp(&peer, "198.18.0.1:9007", &small, Duration::from_secs(20));
    assert!(back == small, "port 9007: {} bytes back; {err}", back.len());
    // A closed port: connection refused.
    let o = peer
        .run(&["socat", "-T", "3", "-", "TCP:198.18.0.1:8"], T)
        .unwrap();
    assert!(!o.status.success());
    assert!(
        out(&o).contains("Connection refused"),
        "expected a reset: {}",
        out(&o)
    );
    fp.assert_running();
    let log = fp.stop();
    assert!(log.contains("tcp-input"), "final report:\n{log}");
}

/// Sends 1 MiB of random bytes (from `seed`) to the echo on 198.18.0.1:7 with socat in `peer`
/// and checks every byte comes back; prints the rate under `label`.
fn echo_a_mebibyte(peer: &Netns, fp: &Ferroplane, seed: u64, label: &str) {
    let data = random_bytes(1 << 20, seed);
    let t0 = Instant::now();
    let (back, err) = socat_tcp(peer, "198.18.0.1:7", &data, Duration::from_secs(60));
    let took = t0.elapsed();
    assert_eq!(
        back.len(),
        data.len(),
        "got {} of {} bytes back; socat: {err}\n{}",
        back.len(),
        data.len(),
        fp.log()
    );
    assert!(back == data, "echoed bytes differ");
    eprintln!(
        "{label}: 1 MiB echoed through Linux socat in {took:?} ({:.1} Mbit/s each way)",
        data.len() as f64 * 8.0 / took.as_secs_f64() / 1e6
    );
}

#[test]
fn linux_socat_echoes_a_megabyte_through_tcp_echo_on_af_packet() {
    linux_socat_echo("af_packet");
}

#[test]
fn linux_socat_echoes_a_megabyte_through_tcp_echo_on_af_xdp() {
    linux_socat_echo("af_xdp");
}

/// Linux `socat` clients send random bytes to `tcp-echo` whose echo logic runs on an app
/// lcore (`app_lcores = [2]`, reached through the xcore rings), on an af_packet port, and get
/// the same bytes back: one 1 MiB stream, then four 256 KiB streams at once.
#[test]
fn linux_socat_echoes_through_tcp_echo_on_an_app_lcore() {
    if !tools(&["socat", "ping"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let link = VethPair::new("fptxdut0", Some(&dut), "fptxpeer0", Some(&peer)).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    let ports = r#"
[[ports]]
name = "p0"
driver = "af_packet"
iface = "fptxdut0"
ipv4 = ["198.18.0.1/24"]
"#;
    let cfg = config(ports, "name = \"tcp-echo\"\nports = [7]\napp_lcores = [2]")
        .replace("[app]\n", "[[lcores]]\nid = 2\n\n[app]\n");
    let mut fp = Ferroplane::start(&dut, &cfg);
    wait_reachable(&peer, "198.18.0.1", &mut fp);

    echo_a_mebibyte(&peer, &fp, 0x5eed_0a99, "app lcore");
    // Four connections at once (the bridge interleaves their events on one ring pair).
    let streams: Vec<Vec<u8>> = (0..4)
        .map(|i| random_bytes(256 << 10, 0x5eed_0b00 + i))
        .collect();
    let results: Vec<(Vec<u8>, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = streams
            .iter()
            .map(|d| {
                let peer = &peer;
                sc.spawn(move || socat_tcp(peer, "198.18.0.1:7", d, Duration::from_secs(60)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, ((back, err), d)) in results.iter().zip(&streams).enumerate() {
        assert!(
            back == d,
            "stream {i}: {} of {} bytes back, differ: {}; socat: {err}",
            back.len(),
            d.len(),
            back.len() == d.len()
        );
    }
    fp.assert_running();
    let log = fp.stop();
    assert!(log.contains("lcore 2"), "final report:\n{log}");
}

// ---------------------------------------------------------------- active open

use ferroplane::graph::GraphStage;
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::af_packet::{AfPacketConfig, AfPacketPort};
use ferroplane::port::{Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo};
use ferroplane::stack::setup::{build_graph_with_tcp, TcpApps, UdpApps};
use ferroplane::stack::tcp::{CloseReason, TcpApp, TcpControl, TcpSocket};

#[derive(Default)]
struct ClientState {
    to_send: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    started: bool,
    connected: bool,
    shut: bool,
    peer_closed: bool,
    closed: Option<CloseReason>,
    connect_error: Option<String>,
}

/// Connects to a Linux echo, streams its data, half-closes, reads the echo until FIN.
struct Client(Arc<Mutex<ClientState>>, std::net::SocketAddrV4);

impl Client {
    fn push(st: &mut ClientState, s: &mut TcpSocket<'_>) {
        while st.sent < st.to_send.len() {
            let n = s.write(&st.to_send[st.sent..]);
            if n == 0 {
                break;
            }
            st.sent += n;
        }
        if st.sent == st.to_send.len() && !st.shut {
            st.shut = true;
            s.shutdown();
        }
    }
    fn read(st: &mut ClientState, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 8192];
        loop {
            let n = s.recv(&mut buf);
            if n == 0 {
                break;
            }
            st.received.extend_from_slice(&buf[..n]);
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
        Self::read(&mut self.0.lock().unwrap(), s);
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        Self::push(&mut self.0.lock().unwrap(), s);
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.0.lock().unwrap();
        Self::read(&mut st, s);
        st.peer_closed = true;
        s.close();
    }
    fn on_close(&mut self, _id: ferroplane::stack::tcp::SockId, reason: CloseReason) {
        self.0.lock().unwrap().closed = Some(reason);
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        let mut st = self.0.lock().unwrap();
        if !st.started {
            st.started = true;
            if let Err(e) = ctl.connect(self.1) {
                st.connect_error = Some(e.to_string());
            }
        }
    }
}

/// Moves the calling thread into namespace `name` (network namespaces are per thread).
fn enter_netns(name: &str) {
    let path = std::ffi::CString::new(format!("/var/run/netns/{name}")).unwrap();
    // SAFETY: plain open/setns/close on a path we own; CLONE_NEWNET affects this thread only.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        assert!(fd >= 0, "open {name}: {}", std::io::Error::last_os_error());
        let r = libc::setns(fd, libc::CLONE_NEWNET);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(r, 0, "setns {name}: {e}");
    }
}

/// A ferroplane stack (in this process, on a thread inside the dut namespace, af_packet port)
/// opens a TCP connection to a Linux `socat` echo listener, sends 1 MiB, half-closes, and
/// reads back the same bytes until Linux closes.
#[test]
fn ferroplane_connects_to_a_linux_socat_listener() {
    if !tools(&["socat", "ping"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let _link = VethPair::new("fptcdut0", Some(&dut), "fptcpeer0", Some(&peer)).unwrap();
    _link.addr(End::B, "198.18.0.2/24").unwrap();
    let mut listener = peer
        .exec(&[
            "socat",
            "-T",
            "30",
            "TCP-LISTEN:5000,reuseaddr,bind=198.18.0.2",
            "PIPE",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // socat needs a moment before it listens.
    let listening = wait_for(Duration::from_secs(5), || {
        peer.run(&["ss", "-Htln", "sport", "=", ":5000"], T)
            .is_ok_and(|o| !o.stdout.is_empty())
    });
    let st = Arc::new(Mutex::new(ClientState {
        to_send: random_bytes(1 << 20, 0xc11e_0002),
        ..ClientState::default()
    }));
    let st2 = st.clone();
    let ns_name = dut.name().to_string();
    let worker = std::thread::spawn(move || {
        enter_netns(&ns_name);
        let mut p = MempoolParams::new("tcpc", 8192);
        p.huge = HugePolicy::Off;
        p.cache_size = 128;
        let pool = Mempool::new(&p).unwrap();
        let mut port =
            AfPacketPort::open(AfPacketConfig::new("p0", 0, pool.clone(), "fptcdut0")).unwrap();
        let cfg = ferroplane::config::parse(
            r#"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
ipv4 = ["198.18.0.1/24"]
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
        let shared =
            ferroplane::app::prepare(&cfg, &[port.info().clone()], vec![pool.clone()]).unwrap();
        let env = shared.stack().unwrap().clone();
        let tcp = TcpApps {
            apps: vec![Box::new(Client(
                st2.clone(),
                "198.18.0.2:5000".parse().unwrap(),
            ))],
            ..TcpApps::default()
        };
        let graph = build_graph_with_tcp(
            &env,
            3,
            UdpApps::default(),
            tcp,
            &[],
            shared.trace().clone(),
        )
        .unwrap();
        let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![(0, port.take_rx_queue(0).unwrap())];
        let tx: Vec<Option<Box<dyn TxQueue>>> = vec![Some(port.take_tx_queue(0).unwrap())];
        let mut lcore = Lcore::new(
            3,
            None,
            rx,
            LcoreIo::new(tx),
            Box::new(GraphStage::new(graph)),
            32,
            IdlePolicy::Busy,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            lcore.run_turns(64);
            {
                let s = st2.lock().unwrap();
                if s.peer_closed || s.closed.is_some() || s.connect_error.is_some() {
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        // Send the last ACK.
        lcore.run_turns(64);
        drop(lcore);
        drop(port);
    });
    let joined = worker.join();
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(listening, "socat never listened");
    assert!(joined.is_ok(), "the ferroplane thread panicked");
    let st = st.lock().unwrap();
    assert_eq!(st.connect_error, None);
    assert!(st.connected, "never connected (closed: {:?})", st.closed);
    assert_eq!(st.sent, st.to_send.len());
    assert_eq!(
        st.received.len(),
        st.to_send.len(),
        "got {} bytes back",
        st.received.len()
    );
    assert!(st.received == st.to_send, "bytes differ");
    assert!(st.peer_closed, "Linux did not close after our FIN");
}

// ---------------------------------------------------------------- SYN flood

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An interactive `socat` TCP client: lines written to it come back through the echo.
struct Session {
    child: Child,
    got: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn open(ns: &Netns, dst: &str) -> Session {
        let mut child = ns
            .exec(&["socat", "-T", "60", "-", &format!("TCP:{dst}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                g.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Session { child, got }
    }

    /// Writes `line` and waits (bounded) until the echo returned everything sent so far.
    fn round_trip(&mut self, line: &[u8], sent_total: &mut Vec<u8>, limit: Duration) -> bool {
        use std::io::Write;
        sent_total.extend_from_slice(line);
        let stdin = self.child.stdin.as_mut().unwrap();
        if stdin.write_all(line).is_err() || stdin.flush().is_err() {
            return false;
        }
        wait_for(limit, || *self.got.lock().unwrap() == *sent_total)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hping3 --flood -S` from the Linux peer against the echo port for a bounded time: an
/// established connection keeps echoing during and after the flood, a new connection works
/// afterwards, ferroplane's memory stays bounded, and the listener answered with SYN cookies
/// (or counted its drops) instead of growing.
#[test]
fn syn_flood_does_not_break_established_connections() {
    if !tools(&["socat", "ping", "hping3", "timeout"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let link = VethPair::new("fptfdut0", Some(&dut), "fptfpeer0", Some(&peer)).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    let ports = r#"
[[ports]]
name = "p0"
driver = "af_packet"
iface = "fptfdut0"
ipv4 = ["198.18.0.1/24"]
"#;
    let mut fp = Ferroplane::start(
        &dut,
        &config(
            ports,
            "name = \"tcp-echo\"\nports = [7]\nbacklog = 16\nmax_connections = 256\nmax_time_wait = 64",
        ),
    );
    wait_reachable(&peer, "198.18.0.1", &mut fp);
    let pid = fp.pid();
    let mut s = Session::open(&peer, "198.18.0.1:7");
    let mut sent = Vec::new();
    assert!(
        s.round_trip(b"before the flood\n", &mut sent, Duration::from_secs(10)),
        "no echo before the flood:\n{}",
        fp.log()
    );
    let rss_before = rss_kib(pid);
    // The flood: bounded by coreutils timeout (and by the wait below).
    let mut flood = peer
        .exec(&[
            "timeout",
            "4",
            "hping3",
            "--flood",
            "-S",
            "-p",
            "7",
            "-q",
            "198.18.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let during = s.round_trip(b"during the flood\n", &mut sent, Duration::from_secs(10));
    let finished = wait_for(Duration::from_secs(15), || {
        flood.try_wait().ok().flatten().is_some()
    });
    if !finished {
        let _ = flood.kill();
    }
    let _ = flood.wait();
    fp.assert_running();
    let rss_after = rss_kib(pid);
    assert!(
        during,
        "the established connection stalled during the flood"
    );
    assert!(
        s.round_trip(b"after the flood\n", &mut sent, Duration::from_secs(10)),
        "no echo after the flood"
    );
    let (back, err) = socat_tcp(&peer, "198.18.0.1:7", b"a new connection\n", T);
    assert_eq!(back, b"a new connection\n", "socat: {err}");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(s);
    let log = fp.stop();
    eprintln!("rss {rss_before} KiB -> {rss_after} KiB");
    // The flood reached the stack: thousands of segments went through tcp-input.
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("tcp-input"))
        .unwrap_or_else(|| panic!("no tcp-input in the final report:\n{log}"));
    let packets: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eprintln!("{line}");
    assert!(
        packets > 5000,
        "only {packets} segments reached tcp-input:\n{log}"
    );
}
