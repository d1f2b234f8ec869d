//! The ferroplane side of `bench/tcp-bulk.sh`: two ferroplane stacks (client and server, each
//! with its own pool, config and graph) joined by a `ring` port pair, both lcores driven from
//! this one thread turn by turn. The client streams `--bytes N` over one TCP connection to a
//! sink app on the server that reads without copying (`peek`/`consume`); prints Gbit/s of
//! payload in the format of `tcp-bulk-smoltcp`.
//!
//! Every delivered byte is compared with the stream the client wrote (a fixed pseudo-random
//! pattern, compared slice by slice with `memcmp`), and the byte count must be exactly N, so a
//! wrong or short delivery fails the run instead of producing a number.
//!
//! `--mtu` sets the MTU of both ring ports (pools get a data room that fits it, and the MSS is
//! MTU − 40): 1500 is the figure to hold against smoltcp on a 1500-byte Ethernet device, the
//! largest (65000) the one to hold against smoltcp's 65535-byte loopback device.
//!
//! `--csum-offload` gives both ring sides transmit checksum offload
//! ([`RingSide::tx_l4_checksum_offload`]): TCP segments cross with partial checksums and arrive
//! flagged good, like Linux veth or loopback passing `CHECKSUM_PARTIAL` — neither side sums
//! the payload. It is the setting to hold against smoltcp's `loopback` device, which skips
//! checksums; without it both sides compute and verify every checksum in software.
//!
//! `--handover` makes the client hand its bytes over as mbufs (clones of the pattern kept in
//! two mbufs, through `TcpSocket::write_mbuf`) instead of copying them into the send buffer.
//!
//! Usage: `tcp-bulk-ferroplane [--bytes N] [--mtu M] [--buffer BYTES] [--burst B]
//! [--csum-offload] [--handover] [--stats]` (`--burst`: rx burst size of both lcores, 32 by default;
//! `--stats`: per-node counters of both graphs on stderr)

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferroplane::app;
use ferroplane::config;
use ferroplane::graph::{GraphMonitor, GraphStage};
use ferroplane::mem::{HugePolicy, Mbuf, Mempool, MempoolParams};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo, Stage};
use ferroplane::stack::setup::{build_graph_with_tcp, TcpApps, UdpApps};
use ferroplane::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};
use ferroplane::tcp::TcpConfig;

/// Length of the pattern the stream repeats (odd, so segment boundaries drift across it).
const PATTERN_LEN: usize = 65536 + 4093;
const PORT: u16 = 5001;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The stream: byte `i` is `pattern[i % PATTERN_LEN]` (xorshift bytes).
fn pattern() -> Arc<[u8]> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..PATTERN_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The pattern in mbufs, for zero-copy writes: two halves (an mbuf holds at most 64 KiB) and
/// the pool their clones' headers come from.
struct Handover {
    halves: [Mbuf; 2],
    clones: Mempool,
    /// The halves' pool (dropped after them).
    _store: Mempool,
}

impl Handover {
    fn new(pat: &[u8]) -> Result<Handover, String> {
        let half = PATTERN_LEN.div_ceil(2);
        let mut p = MempoolParams::new("pattern", 2);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = half as u16;
        let store = Mempool::new(&p).map_err(|e| e.to_string())?;
        let piece = |r: std::ops::Range<usize>| -> Result<Mbuf, String> {
            let mut m = store.alloc().ok_or("pattern pool")?;
            m.append(r.len())
                .ok_or("pattern mbuf")?
                .copy_from_slice(&pat[r]);
            Ok(m)
        };
        let halves = [piece(0..half)?, piece(half..PATTERN_LEN)?];
        let mut c = MempoolParams::new("clones", 4096);
        c.huge = HugePolicy::Off;
        Ok(Handover {
            halves,
            clones: Mempool::new(&c).map_err(|e| e.to_string())?,
            _store: store,
        })
    }
}

/// Writes the stream until `total` bytes are in the send buffer: copied from the pattern, or
/// (`--handover`) handed over as clones of the pattern's mbufs, which copies nothing.
struct Client {
    pat: Arc<[u8]>,
    handover: Option<Handover>,
    total: u64,
    sent: u64,
    id: Option<SockId>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Client {
    fn push(&mut self, s: &mut TcpSocket<'_>) {
        if let Some(h) = &self.handover {
            let half = PATTERN_LEN.div_ceil(2);
            while self.sent < self.total {
                let off = (self.sent % PATTERN_LEN as u64) as usize;
                let (i, o) = (off / half, off % half);
                let piece = &h.halves[i];
                let n = ((self.total - self.sent) as usize)
                    .min(piece.data_len() - o)
                    .min(s.send_space());
                if n == 0 {
                    return; // full: on_writable follows
                }
                let Some(m) = piece.clone_range(&h.clones, o, n) else {
                    return; // no clone header free: the next on_writable retries
                };
                if s.write_mbuf(m).is_err() {
                    return;
                }
                self.sent += n as u64;
            }
            return;
        }
        while self.sent < self.total {
            let off = (self.sent % PATTERN_LEN as u64) as usize;
            let want = ((self.total - self.sent) as usize).min(PATTERN_LEN - off);
            let w = s.write(&self.pat[off..off + want]);
            self.sent += w as u64;
            if w < want {
                // Short write: on_writable follows.
                return;
            }
        }
    }
}

impl TcpApp for Client {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        self.push(s);
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let n = s.available();
        s.consume(n);
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        self.push(s);
    }
    fn on_close(&mut self, _id: SockId, r: CloseReason) {
        *self.failed.lock().unwrap() = Some(format!("client connection ended: {r:?}"));
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        if self.id.is_none() {
            match ctl.connect(SocketAddrV4::new(SERVER_IP, PORT)) {
                Ok(id) => self.id = Some(id),
                Err(e) => *self.failed.lock().unwrap() = Some(format!("connect: {e}")),
            }
        }
    }
}

/// Consumes what arrives without copying, comparing it with the stream.
struct Sink {
    pat: Arc<[u8]>,
    received: Arc<AtomicU64>,
    /// Of those, bytes read in place in the received packets (the rest came from the ring).
    in_place: Arc<AtomicU64>,
    bad: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Sink {
    /// Compares `data`, found at stream offset `at`, with the pattern.
    fn check(&self, mut at: u64, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let off = (at % PATTERN_LEN as u64) as usize;
            let n = data.len().min(PATTERN_LEN - off);
            if data[..n] != self.pat[off..off + n] {
                return false;
            }
            data = &data[n..];
            at += n as u64;
        }
        true
    }
}

impl TcpApp for Sink {
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let at = self.received.load(Ordering::Relaxed);
        let n = {
            let [a, b] = s.peek();
            if !self.check(at, a) || !self.check(at + a.len() as u64, b) {
                self.bad.store(true, Ordering::Relaxed);
            }
            a.len() + b.len()
        };
        s.consume(n);
        self.received.store(at + n as u64, Ordering::Relaxed);
        self.in_place
            .store(s.connection().stats().bytes_in_place, Ordering::Relaxed);
    }
    fn on_close(&mut self, _id: SockId, r: CloseReason) {
        *self.failed.lock().unwrap() = Some(format!("server connection ended: {r:?}"));
    }
}

fn pool(name: &str, mtu: u16) -> Result<Mempool, String> {
    let mut p = MempoolParams::new(name, 8192);
    p.huge = HugePolicy::Off;
    p.cache_size = 256;
    // Frame + Ethernet header + the 100 bytes setup::mss_limit keeps for headers, rounded.
    p.data_room = (mtu as usize + 128)
        .max(2048)
        .next_multiple_of(64)
        .min(65535 - 128) as u16;
    Mempool::new(&p).map_err(|e| e.to_string())
}

fn side(mac: MacAddr, mtu: u16, offload: bool) -> RingSide {
    RingSide {
        name: "p0".into(),
        id: 0,
        rx_queues: 1,
        tx_queues: 1,
        mac,
        mtu,
        tx_l4_checksum_offload: offload,
    }
}

fn cfg(addr: &str, mac: &str) -> Result<config::Config, String> {
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
[app]
name = "l3fwd"
[metrics]
enabled = false
"#
    ))
    .map_err(|e| e.to_string())
}

/// One stack on a ring port: its lcore, built around `tcp`.
fn stack(
    lcore: u32,
    mut port: RingPort,
    addr: &str,
    mac: &str,
    mtu: u16,
    burst: usize,
    tcp: TcpApps,
) -> Result<(Lcore, GraphMonitor), String> {
    let c = cfg(addr, mac)?;
    let shared = app::prepare(&c, &[port.info().clone()], vec![pool(mac, mtu)?])
        .map_err(|e| e.to_string())?;
    let env = shared.stack().ok_or("no stack")?;
    let graph = build_graph_with_tcp(
        env,
        lcore,
        UdpApps::default(),
        tcp,
        &[],
        shared.trace().clone(),
    )
    .map_err(|e| e.to_string())?;
    let rx: Vec<(u16, Box<dyn RxQueue>)> =
        vec![(0, port.take_rx_queue(0).map_err(|e| e.to_string())?)];
    let tx: Vec<Option<Box<dyn TxQueue>>> =
        vec![Some(port.take_tx_queue(0).map_err(|e| e.to_string())?)];
    let stage = GraphStage::new(graph);
    let mon = stage.graph_monitor().ok_or("no graph")?;
    Ok((
        Lcore::new(
            lcore,
            None,
            rx,
            LcoreIo::new(tx),
            Box::new(stage),
            burst,
            IdlePolicy::Busy,
        ),
        mon,
    ))
}

struct Outcome {
    gbps: f64,
    turns: u64,
}

/// Prints per-node vectors, packets, packets per vector and events of one stack to stderr.
fn print_stats(who: &str, mon: &GraphMonitor) {
    for n in mon.stats() {
        if n.calls == 0 && n.drops.is_empty() {
            continue;
        }
        let per = n.packets as f64 / n.calls.max(1) as f64;
        eprintln!(
            "{who} {:<14} calls={:<9} packets={:<9} per_call={per:<6.1} {:?}",
            n.node, n.calls, n.packets, n.drops
        );
    }
}

/// What `main` parsed.
struct Args {
    total: u64,
    mtu: u16,
    buffer: usize,
    burst: usize,
    offload: bool,
    handover: bool,
    stats: bool,
}

fn run(a: &Args) -> Result<Outcome, String> {
    let Args {
        total,
        mtu,
        buffer,
        burst,
        offload,
        handover,
        stats,
    } = *a;
    let (sp, cp) = RingPort::pair(
        side(MacAddr([2, 0, 0, 0, 0, 1]), mtu, offload),
        side(MacAddr([2, 0, 0, 0, 0, 2]), mtu, offload),
        1024,
    )
    .map_err(|e| e.to_string())?;
    let pat = pattern();
    let received = Arc::new(AtomicU64::new(0));
    let in_place = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(Mutex::new(None));
    let tcfg = TcpConfig {
        mss: mtu - 40,
        send_buffer: buffer,
        recv_buffer: buffer,
        max_ooo_bytes: buffer,
        ..TcpConfig::default()
    };
    let server_tcp = TcpApps {
        cfg: tcfg,
        apps: vec![Box::new(Sink {
            pat: pat.clone(),
            received: received.clone(),
            in_place: in_place.clone(),
            bad: bad.clone(),
            failed: failed.clone(),
        })],
        listen: vec![(SocketAddrV4::new(SERVER_IP, PORT), 0)],
        ..TcpApps::default()
    };
    let client_tcp = TcpApps {
        cfg: tcfg,
        apps: vec![Box::new(Client {
            pat: pat.clone(),
            handover: if handover {
                Some(Handover::new(&pat)?)
            } else {
                None
            },
            total,
            sent: 0,
            id: None,
            failed: failed.clone(),
        })],
        ..TcpApps::default()
    };
    let (mut server, smon) = stack(
        1,
        sp,
        "198.18.0.1",
        "02:00:00:00:00:01",
        mtu,
        burst,
        server_tcp,
    )?;
    let (mut client, cmon) = stack(
        2,
        cp,
        "198.18.0.2",
        "02:00:00:00:00:02",
        mtu,
        burst,
        client_tcp,
    )?;

    let start = Instant::now();
    let mut turns = 0u64;
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= total {
            break;
        }
        if bad.load(Ordering::Relaxed) {
            return Err(format!(
                "delivered bytes differ from the stream near offset {got}"
            ));
        }
        if let Some(e) = failed.lock().unwrap().take() {
            return Err(e);
        }
        turns += 1;
        if turns & 0xffff == 0 && start.elapsed().as_secs() > 300 {
            return Err(format!("stalled at {got} of {total} bytes"));
        }
        client.run_turns(1);
        server.run_turns(1);
    }
    let secs = start.elapsed().as_secs_f64();
    // Let the last segments and ACKs in the rings be processed, so no segment still refers
    // to a send buffer when the stacks are dropped.
    for _ in 0..64 {
        client.run_turns(1);
        server.run_turns(1);
    }
    if stats {
        print_stats("client", &cmon);
        print_stats("server", &smon);
        eprintln!(
            "server read {} of {} bytes in place (in the received mbufs)",
            in_place.load(Ordering::Relaxed),
            received.load(Ordering::Relaxed)
        );
    }
    let got = received.load(Ordering::Relaxed);
    if bad.load(Ordering::Relaxed) {
        return Err("delivered bytes differ from the stream".into());
    }
    if got != total {
        return Err(format!("delivered {got} bytes, expected {total}"));
    }
    Ok(Outcome {
        gbps: got as f64 * 8.0 / secs / 1e9,
        turns,
    })
}

fn main() -> ExitCode {
    let mut args = Args {
        total: 1 << 30,
        mtu: 1500,
        buffer: 256 * 1024,
        burst: 32,
        offload: false,
        handover: false,
        stats: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        let flag = match a.as_str() {
            "--stats" => Some(&mut args.stats),
            "--csum-offload" => Some(&mut args.offload),
            "--handover" => Some(&mut args.handover),
            _ => None,
        };
        if let Some(f) = flag {
            *f = true;
            continue;
        }
        let v = argv.next();
        let bad = |what: &str| {
            eprintln!("tcp-bulk-ferroplane: {what}");
            ExitCode::from(2)
        };
        match (a.as_str(), v) {
            ("--bytes", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => args.total = n,
                _ => return bad("--bytes takes a positive integer"),
            },
            ("--mtu", Some(v)) => match v.parse() {
                Ok(n) if (576..=65000).contains(&n) => args.mtu = n,
                _ => return bad("--mtu takes 576 ..= 65000"),
            },
            ("--buffer", Some(v)) => match v.parse() {
                Ok(n) if n >= 4096 => args.buffer = n,
                _ => return bad("--buffer takes a byte count of at least 4096"),
            },
            ("--burst", Some(v)) => match v.parse() {
                Ok(n) if (1..=ferroplane::batch::BURST_MAX).contains(&n) => args.burst = n,
                _ => return bad("--burst takes 1 ..= 256"),
            },
            _ => {
                return bad(&format!(
                "unknown argument {a:?} (use --bytes, --mtu, --buffer, --burst, --csum-offload, \
                     --handover, --stats)"
            ))
            }
        }
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    match run(&args) {
        Ok(o) => {
            println!(
                "ferroplane mtu={} bytes={} buffer={} burst={} csum_offload={} handover={} gbit_s={:.3} turns={} verified=yes",
                args.mtu,
                args.total,
                args.buffer,
                args.burst,
                yes_no(args.offload),
                yes_no(args.handover),
                o.gbps,
                o.turns
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp-bulk-ferroplane: {e}");
            ExitCode::FAILURE
        }
    }
}
