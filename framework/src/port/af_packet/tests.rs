//! End-to-end tests: real sockets on a veth pair inside a network namespace made for each
//! test (`fp-afp-<pid>-<n>`, both ends `fpa` and `fpb` inside it, IPv6 off so the kernel adds
//! no frames of its own). The test body runs on a thread that joined the namespace; a guard
//! deletes the namespace, and with it the pair, even when the test fails. Every wait is
//! bounded in time.
//!
//! They need root and iproute2. Without them they print "skipping: …" and pass, unless
//! `FERROPLANE_REQUIRE_TOOLS=1` is set (as in CI), in which case they fail.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::batch::Burst;
use crate::mem::{HugePolicy, Mbuf, MempoolParams};
use crate::wire::checksum;

const A: &str = "fpa";
const B: &str = "fpb";
/// Marks the frames the tests send (anything else on the wire is ignored).
const MAGIC: [u8; 4] = *b"FPAF";
/// Longest any wait for frames may take.
const WAIT: Duration = Duration::from_secs(2);

fn require_tools() -> bool {
    std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// True when the privileged tests can run; otherwise says why (and fails under
/// `FERROPLANE_REQUIRE_TOOLS=1`).
fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !require_tools(),
            "the af_packet tests need root (veth pairs, network namespaces, CAP_NET_RAW) but \
             FERROPLANE_REQUIRE_TOOLS=1: run them as root"
        );
        eprintln!("skipping: needs root");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        assert!(
            !require_tools(),
            "iproute2 (`ip`) is not installed but FERROPLANE_REQUIRE_TOOLS=1 (apt-get install \
             iproute2)"
        );
        eprintln!("skipping: needs iproute2 (`ip`)");
        return false;
    }
    true
}

static NS_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A network namespace holding the veth pair `fpa` <-> `fpb`; deleted on drop.
struct Veth {
    ns: String,
}

impl Veth {
    fn new() -> Veth {
        let ns = format!(
            "fp-afp-{}-{}",
            std::process::id(),
            NS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &ns]);
        // The guard exists from here on: a failure below still removes the namespace.
        let v = Veth { ns };
        v.enter(|| {
            for c in ["all", "default"] {
                // Absent when the kernel has no IPv6, which is just as quiet.
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{c}/disable_ipv6"), "1");
            }
        });
        v.ip(&["link", "add", A, "type", "veth", "peer", "name", B]);
        v.ip(&["link", "set", A, "up"]);
        v.ip(&["link", "set", B, "up"]);
        v
    }

    /// Runs `ip -n <ns> args…`, failing the test if it fails.
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        run_ip(&all);
    }

    /// The promiscuity count of `iface` (promiscuous-mode users; `ip -d link` shows it,
    /// the IFF_PROMISC flag of SIOCGIFFLAGS does not count packet socket memberships).
    fn promiscuity(&self, iface: &str) -> u32 {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-d", "link", "show", "dev", iface])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        words
            .find(|w| *w == "promiscuity")
            .and_then(|_| words.next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no promiscuity in `ip -d link`: {text}"))
    }

    /// Runs `f` on a thread inside the namespace and returns its result (or its panic).
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns);
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: setns on this thread only, with a namespace file descriptor.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {path}: {}", io::Error::last_os_error());
                f()
            });
            match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting the namespace destroys both veth ends in it.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn run_ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pool(n: u32) -> Mempool {
    let mut p = MempoolParams::new("afp-test", n);
    p.huge = HugePolicy::Off;
    p.cache_size = 0;
    Mempool::new(&p).unwrap()
}

fn cfg(name: &str, id: u16, pool: &Mempool, iface: &str) -> AfPacketConfig {
    let mut c = AfPacketConfig::new(name, id, pool.clone(), iface);
    // A quarter of the default ring (4 MiB): the tests run in parallel.
    c.block_size = 256 << 10;
    c.blocks = 16;
    c
}

fn open(c: AfPacketConfig) -> AfPacketPort {
    let what = format!("{} on {}", c.name, c.iface);
    let p = AfPacketPort::open(c).unwrap_or_else(|e| panic!("{what}: {e}"));
    let t = Instant::now();
    while !p.link().up {
        assert!(t.elapsed() < WAIT, "{what}: link not up after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    p
}

fn eth(dst: MacAddr, src: MacAddr, ethertype: u16, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..6].copy_from_slice(&dst.0);
    v[6..12].copy_from_slice(&src.0);
    v[12..14].copy_from_slice(&ethertype.to_be_bytes());
    v
}

/// A marked frame of `len` bytes (EtherType 0x88b5), optionally 802.1Q tagged.
fn test_frame(dst: MacAddr, src: MacAddr, seq: u32, len: usize, vlan: Option<u16>) -> Vec<u8> {
    let (mut v, body) = match vlan {
        None => (eth(dst, src, 0x88b5, len), 14),
        Some(tci) => {
            let mut v = eth(dst, src, 0x8100, len);
            v[14..16].copy_from_slice(&tci.to_be_bytes());
            v[16..18].copy_from_slice(&0x88b5u16.to_be_bytes());
            (v, 18)
        }
    };
    v[body..body + 4].copy_from_slice(&MAGIC);
    v[body + 4..body + 8].copy_from_slice(&seq.to_be_bytes());
    for (k, b) in v[body + 8..].iter_mut().enumerate() {
        *b = (seq as usize * 7 + k) as u8;
    }
    v
}

/// A marked IPv4/UDP frame whose addresses and ports depend on `seq` (one flow per frame).
fn flow_frame(dst: MacAddr, src: MacAddr, seq: u32) -> Vec<u8> {
    let mut v = eth(dst, src, 0x0800, 64);
    let [_, _, hi, lo] = seq.to_be_bytes();
    let ip = &mut v[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, hi, lo]);
    ip[16..20].copy_from_slice(&[198, 19, lo, hi]);
    let c = checksum::internet_checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    v[34..36].copy_from_slice(&(1024 + seq as u16).to_be_bytes());
    v[36..38].copy_from_slice(&(7000 + (seq as u16 % 100)).to_be_bytes());
    v[38..40].copy_from_slice(&30u16.to_be_bytes());
    v[42..46].copy_from_slice(&MAGIC);
    v[46..50].copy_from_slice(&seq.to_be_bytes());
    v
}

/// The sequence number of a frame the tests sent, `None` for anything else.
fn seq_of(f: &[u8]) -> Option<u32> {
    let at = match f.get(12..14)? {
        [0x88, 0xb5] => 14,
        [0x81, 0x00] if f.get(16..18)? == [0x88, 0xb5] => 18,
        [0x08, 0x00] => 42,
        _ => return None,
    };
    if f.get(at..at + 4)? != MAGIC {
        return None;
    }
    Some(u32::from_be_bytes(f.get(at + 4..at + 8)?.try_into().ok()?))
}

fn mbuf_of(pool: &Mempool, bytes: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool exhausted");
    m.append(bytes.len())
        .expect("frame larger than the data room")
        .copy_from_slice(bytes);
    m
}

fn bytes_of(m: &Mbuf) -> Vec<u8> {
    m.segments().flatten().copied().collect()
}

/// Receives once; keeps the marked frames.
fn drain(rx: &mut dyn RxQueue, got: &mut Vec<Vec<u8>>) -> usize {
    let mut b = Burst::new();
    let n = rx.rx_burst(&mut b, 256);
    got.extend(b.iter().map(bytes_of).filter(|f| seq_of(f).is_some()));
    n
}

/// Receives until `want` marked frames arrived (or the time is up), then a little longer to
/// catch any extra (duplicate) frame.
fn recv_until(rx: &mut dyn RxQueue, got: &mut Vec<Vec<u8>>, want: usize) {
    let t = Instant::now();
    while got.len() < want && t.elapsed() < WAIT {
        if drain(rx, got) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(20) {
        drain(rx, got);
    }
}

/// Sends `frames` in bursts of `burst`, calling `poll` after each burst; the frames a full
/// ring refuses are retried. Bounded in time.
fn send_all(
    tx: &mut dyn TxQueue,
    pool: &Mempool,
    frames: &[Vec<u8>],
    burst: usize,
    mut poll: impl FnMut(),
) {
    let t = Instant::now();
    let mut next = 0;
    let mut b = Burst::new();
    while next < frames.len() || !b.is_empty() {
        while b.len() < burst && next < frames.len() {
            b.push(mbuf_of(pool, &frames[next])).unwrap();
            next += 1;
        }
        tx.tx_burst(&mut b);
        poll();
        assert!(
            t.elapsed() < WAIT,
            "tx stuck: {} frames not taken after {WAIT:?}",
            frames.len() - next + b.len()
        );
    }
}

/// Checks that `got` holds exactly the frames of `sent`, byte for byte, each once.
fn assert_exactly_once(sent: &[Vec<u8>], got: &[Vec<u8>]) {
    let mut by_seq: BTreeMap<u32, &Vec<u8>> = BTreeMap::new();
    for f in got {
        let s = seq_of(f).unwrap();
        assert!(by_seq.insert(s, f).is_none(), "frame {s} received twice");
    }
    assert_eq!(
        by_seq.len(),
        sent.len(),
        "received {} of {} frames",
        by_seq.len(),
        sent.len()
    );
    for f in sent {
        let s = seq_of(f).unwrap();
        let g = by_seq.get(&s).unwrap_or_else(|| panic!("frame {s} lost"));
        assert!(
            g.as_slice() == f.as_slice(),
            "frame {s} differs: sent {} bytes, received {}",
            f.len(),
            g.len()
        );
    }
}

#[test]
fn frames_cross_the_pair_byte_identical() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(4096);
        let mut pa = open(cfg("a", 0, &mp, A));
        let mut pb = open(cfg("b", 1, &mp, B));
        let (ma, mb) = (pa.info().mac, pb.info().mac);
        assert_ne!(ma, mb, "each port reports its interface's MAC");
        assert_eq!(pa.info().mtu, 1500, "mtu 0 follows the interface");
        assert_eq!(pa.info().driver, "af_packet");
        let link = pa.link();
        assert!(link.up && link.full_duplex);
        let mut tx = pa.take_tx_queue(0).unwrap();
        let mut rx = pb.take_rx_queue(0).unwrap();

        // Every size from 60 to 1514, and 802.1Q tagged frames (the kernel strips the tag
        // on receive; the driver must put it back), up to MTU + 18.
        let mut sent: Vec<Vec<u8>> = (60..=1514)
            .enumerate()
            .map(|(i, len)| test_frame(mb, ma, i as u32, len, None))
            .collect();
        let n = sent.len() as u32;
        sent.push(test_frame(mb, ma, n, 64, Some(0x0064)));
        sent.push(test_frame(mb, ma, n + 1, 1518, Some(0xe123)));
        let mut got = Vec::new();
        send_all(tx.as_mut(), &mp, &sent, 32, || {
            drain(rx.as_mut(), &mut got);
        });
        recv_until(rx.as_mut(), &mut got, sent.len());
        assert_exactly_once(&sent, &got);

        // A burst of 500, handed over back to back before anything is received.
        let base = sent.len() as u32;
        let burst: Vec<Vec<u8>> = (0..500u32)
            .map(|k| test_frame(mb, ma, base + k, 60 + (k as usize * 37) % 1455, None))
            .collect();
        let mut b = Burst::new();
        for chunk in burst.chunks(250) {
            for f in chunk {
                b.push(mbuf_of(&mp, f)).unwrap();
            }
            assert_eq!(
                tx.tx_burst(&mut b),
                chunk.len(),
                "the tx ring has room for 500"
            );
        }
        let mut got500 = Vec::new();
        recv_until(rx.as_mut(), &mut got500, burst.len());
        assert_exactly_once(&burst, &got500);

        let total = (sent.len() + burst.len()) as u64;
        let bytes: u64 = sent.iter().chain(&burst).map(|f| f.len() as u64).sum();
        let sa = pa.stats();
        let sb = pb.stats();
        assert_eq!((sa.opackets, sa.obytes, sa.oerrors), (total, bytes, 0));
        assert_eq!(
            (sb.ipackets, sb.ibytes),
            (total, bytes),
            "nothing but our frames"
        );
        assert_eq!((sb.ierrors, sb.imissed, sb.rx_nombuf), (0, 0, 0));
        assert_eq!(pa.xstats().tx_kick_errors, vec![0]);
        drop((tx, rx));
        assert_eq!(mp.in_use(), 0);
    });
}

#[test]
fn fanout_spreads_flows_and_delivers_each_frame_once() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(4096);
        let mut pa = open(cfg("a", 0, &mp, A));
        let mut c = cfg("b", 1, &mp, B);
        c.rx_queues = 2;
        c.tx_queues = 0;
        let mut pb = open(c);
        assert!(pb.fanout_group().is_some());
        let (ma, mb) = (pa.info().mac, pb.info().mac);
        let mut tx = pa.take_tx_queue(0).unwrap();
        let mut rx0 = pb.take_rx_queue(0).unwrap();
        let mut rx1 = pb.take_rx_queue(1).unwrap();

        let sent: Vec<Vec<u8>> = (0..2000).map(|s| flow_frame(mb, ma, s)).collect();
        let (mut g0, mut g1) = (Vec::new(), Vec::new());
        send_all(tx.as_mut(), &mp, &sent, 64, || {
            drain(rx0.as_mut(), &mut g0);
            drain(rx1.as_mut(), &mut g1);
        });
        let t = Instant::now();
        while g0.len() + g1.len() < sent.len() && t.elapsed() < WAIT {
            if drain(rx0.as_mut(), &mut g0) + drain(rx1.as_mut(), &mut g1) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        recv_until(rx0.as_mut(), &mut g0, 0);
        recv_until(rx1.as_mut(), &mut g1, 0);
        eprintln!("fanout: queue 0 got {}, queue 1 got {}", g0.len(), g1.len());
        assert!(
            !g0.is_empty() && !g1.is_empty(),
            "flows not spread: {} / {}",
            g0.len(),
            g1.len()
        );
        let all: Vec<Vec<u8>> = g0.into_iter().chain(g1).collect();
        assert_exactly_once(&sent, &all);
        let s = pb.stats();
        assert_eq!(s.rx_queues.len(), 2);
        assert_eq!(s.ipackets, sent.len() as u64);
    });
}

#[test]
fn full_tx_ring_leaves_the_rest_in_the_burst() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(1024);
        let mut c = cfg("a", 0, &mp, A);
        c.tx_frames = 8;
        let mut pa = open(c);
        let mut pb = open(cfg("b", 1, &mp, B));
        let (ma, mb) = (pa.info().mac, pb.info().mac);
        let mut tx = pa.take_tx_queue(0).unwrap();
        let mut rx = pb.take_rx_queue(0).unwrap();

        let sent: Vec<Vec<u8>> = (0..40).map(|s| test_frame(mb, ma, s, 100, None)).collect();
        let mut b = Burst::new();
        // An oversize frame first: refused (counted, freed) but taken.
        b.push(mbuf_of(&mp, &test_frame(mb, ma, 999, 1515, None)))
            .unwrap();
        for f in &sent {
            b.push(mbuf_of(&mp, f)).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 9, "1 refused + 8 ring frames");
        assert_eq!(b.len(), 32);
        assert_eq!(
            seq_of(&bytes_of(&b[0])),
            Some(8),
            "leftovers keep their order"
        );
        let s = pa.stats();
        assert_eq!((s.opackets, s.oerrors), (8, 1));
        assert_eq!(mp.in_use(), 32);

        // The caller retries the rest; everything arrives once.
        let mut got = Vec::new();
        let t = Instant::now();
        while !b.is_empty() {
            tx.tx_burst(&mut b);
            drain(rx.as_mut(), &mut got);
            assert!(t.elapsed() < WAIT, "the tx ring never drained");
        }
        recv_until(rx.as_mut(), &mut got, sent.len());
        assert_exactly_once(&sent, &got);
        assert_eq!(pa.stats().opackets, 40);
        drop((tx, rx));
        assert_eq!(mp.in_use(), 0);
    });
}

#[test]
fn missing_interface_is_named() {
    let mp = pool(16);
    let check = |e: PortError| {
        let m = e.to_string();
        assert!(
            m.contains("port p9")
                && m.contains("interface `veth9` does not exist (check `ip link`)"),
            "{m}"
        );
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && can_run() {
        // In a fresh namespace `veth9` surely does not exist.
        // (Unprivileged, the host namespace is used: the lookup needs no privilege.)
        let v = Veth::new();
        v.enter(|| {
            check(
                AfPacketPort::open(cfg("p9", 0, &mp, "veth9"))
                    .err()
                    .unwrap(),
            )
        });
    } else {
        check(
            AfPacketPort::open(cfg("p9", 0, &mp, "veth9"))
                .err()
                .unwrap(),
        );
    }
}

#[test]
fn bad_settings_are_refused_before_any_socket() {
    let mp = pool(16);
    let err = |f: &dyn Fn(&mut AfPacketConfig)| {
        let mut c = cfg("p", 0, &mp, "lo");
        f(&mut c);
        AfPacketPort::open(c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(err(&|c| c.block_size = 5000).contains("multiple of the page size"));
    assert!(err(&|c| c.blocks = 0).contains("at least 1 block"));
    assert!(err(&|c| c.rx_queues = 300).contains("rx_queues = 300"));
    assert!(err(&|c| c.tx_frames = 0).contains("tx_frames = 0"));
    assert!(err(&|c| c.iface = "a-name-that-is-too-long".into()).contains("not valid"));
    assert!(err(&|c| {
        c.block_size = 1 << 20;
        c.blocks = 1 << 14
    })
    .contains("more than"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Without CAP_NET_RAW the error says so.
        let m = err(&|_| {});
        assert!(m.contains("CAP_NET_RAW"), "{m}");
    }
}

#[test]
fn mtu_and_block_size_are_checked_against_the_interface() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(16);
        let mut c = cfg("a", 0, &mp, A);
        c.mtu = 9000;
        let m = AfPacketPort::open(c).err().unwrap().to_string();
        assert!(m.contains("larger than the interface's MTU 1500"), "{m}");
        let mut c = cfg("a", 0, &mp, A);
        c.block_size = 4096;
        c.mtu = 4000;
        v.ip(&["link", "set", A, "mtu", "4000"]);
        let m = AfPacketPort::open(c).err().unwrap().to_string();
        assert!(m.contains("cannot hold a frame of MTU 4000"), "{m}");
        let mut c = cfg("a", 0, &mp, A);
        c.mtu = 1400;
        c.mac = Some(MacAddr::local(9));
        c.promiscuous = true;
        let p = AfPacketPort::open(c).unwrap();
        assert_eq!((p.info().mtu, p.info().mac), (1400, MacAddr::local(9)));
        assert_eq!(v.promiscuity(A), 1, "promiscuous while open");
        drop(p);
        // A process forked by a concurrent test may hold the socket for a moment (until its
        // exec closes it): allow a short delay.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while v.promiscuity(A) != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(v.promiscuity(A), 0, "promiscuous ends with the port");
        let p = open(cfg("a", 0, &mp, A));
        assert_eq!(p.info().mtu, 4000);
        drop(p);

        // A down interface: one rx queue opens (and reports the link down); a fanout group
        // cannot be joined, and the error says what to do.
        v.ip(&["link", "set", A, "down"]);
        let p = AfPacketPort::open(cfg("a", 0, &mp, A)).unwrap();
        assert!(!p.link().up);
        let mut c = cfg("a", 0, &mp, A);
        c.rx_queues = 2;
        let m = AfPacketPort::open(c).err().unwrap().to_string();
        assert!(
            m.contains("is down") && m.contains("ip link set fpa up"),
            "{m}"
        );
    });
}

/// A plain packet socket on `iface` without `PACKET_IGNORE_OUTGOING`: it sees frames leaving
/// the interface too. Returns how many marked frames it holds.
fn tap_count(fd: &OwnedFd) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: `buf` is writable for its length.
        let r = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if r <= 0 {
            return n;
        }
        if seq_of(&buf[..r as usize]).is_some() {
            n += 1;
        }
    }
}

fn plain_tap(iface: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    sys::bind_ll(
        fd.as_fd(),
        sys::if_index(iface).unwrap(),
        libc::ETH_P_ALL as u16,
    )
    .unwrap();
    fd
}

#[test]
fn a_port_does_not_receive_what_it_sends() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(1024);
        for rx_queues in [1, 2] {
            // Through the qdisc, so the frames pass the packet taps of the sending side.
            let mut c = cfg("a", 0, &mp, A);
            c.qdisc_bypass = false;
            c.rx_queues = rx_queues;
            let mut pa = open(c);
            let mut pb = open(cfg("b", 1, &mp, B));
            let (ma, mb) = (pa.info().mac, pb.info().mac);
            let tap = plain_tap(A);
            let mut tx = pa.take_tx_queue(0).unwrap();
            let mut own: Vec<Box<dyn RxQueue>> = (0..rx_queues)
                .map(|q| pa.take_rx_queue(q).unwrap())
                .collect();
            let mut rx = pb.take_rx_queue(0).unwrap();

            let sent: Vec<Vec<u8>> = (0..50).map(|s| flow_frame(mb, ma, s)).collect();
            let mut echoed = Vec::new();
            send_all(tx.as_mut(), &mp, &sent, 16, || {
                for q in own.iter_mut() {
                    drain(q.as_mut(), &mut echoed);
                }
            });
            let mut got = Vec::new();
            recv_until(rx.as_mut(), &mut got, sent.len());
            assert_exactly_once(&sent, &got);
            // Give the sender's own queues the same chance (well past a block timeout).
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(50) {
                for q in own.iter_mut() {
                    drain(q.as_mut(), &mut echoed);
                }
            }
            assert!(
                echoed.is_empty(),
                "rx_queues = {rx_queues}: the port received {} of its own frames",
                echoed.len()
            );
            let seen = tap_count(&tap);
            assert!(
                seen >= sent.len(),
                "control: a plain tap on {A} saw only {seen} outgoing frames"
            );
        }
    });
}

#[test]
fn kernel_sent_udp_arrives_with_complete_checksums() {
    if !can_run() {
        return;
    }
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(1024);
        let mut pb = open(cfg("b", 1, &mp, B));
        let mb = pb.info().mac;
        // The kernel sends from fpa to a neighbour "behind" fpb with checksum offload (veth
        // advertises it), so the frames reach the port with only the pseudo-header sum.
        v.ip(&["addr", "add", "198.18.0.1/24", "dev", A]);
        let mac = mb.to_string();
        v.ip(&["neigh", "add", "198.18.0.2", "lladdr", &mac, "dev", A]);
        let mut rx = pb.take_rx_queue(0).unwrap();
        let sock = std::net::UdpSocket::bind("198.18.0.1:0").unwrap();
        let sizes = [1usize, 18, 100, 1000, 1472];
        for n in sizes {
            let payload: Vec<u8> = (0..n).map(|i| (i * 13) as u8).collect();
            sock.send_to(&payload, "198.18.0.2:9").unwrap();
        }
        let mut got: Vec<Vec<u8>> = Vec::new();
        let t = Instant::now();
        while got.len() < sizes.len() && t.elapsed() < WAIT {
            let mut b = Burst::new();
            if rx.rx_burst(&mut b, 64) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            got.extend(
                b.iter()
                    .map(bytes_of)
                    .filter(|f| f.len() >= 42 && f[12..14] == [8, 0] && f[23] == 17),
            );
        }
        assert_eq!(got.len(), sizes.len(), "UDP datagrams received");
        for f in &got {
            let udp = &f[34..];
            let len = u16::from_be_bytes([udp[4], udp[5]]);
            let pseudo =
                checksum::pseudo_header_v4([198, 18, 0, 1].into(), [198, 18, 0, 2].into(), 17, len);
            let s = checksum::combine(pseudo, checksum::sum(&udp[..len as usize]));
            assert!(
                checksum::verify_sum(s),
                "bad UDP checksum on a {len}-byte datagram"
            );
        }
        let x = pb.xstats();
        assert_eq!(
            x.rx_csum_completed,
            vec![sizes.len() as u64],
            "veth offloads the checksum: the driver completed each one"
        );
    });
}

#[test]
fn throughput_sanity() {
    if !can_run() {
        return;
    }
    const FRAMES: u32 = 200_000;
    const BURST: usize = 64;
    let v = Veth::new();
    v.enter(|| {
        let mp = pool(8192);
        let mut pa = open(AfPacketConfig::new("a", 0, mp.clone(), A));
        let mut pb = open(AfPacketConfig::new("b", 1, mp.clone(), B));
        let (ma, mb) = (pa.info().mac, pb.info().mac);
        let mut tx = pa.take_tx_queue(0).unwrap();
        let mut rx = pb.take_rx_queue(0).unwrap();
        let template = test_frame(mb, ma, 0, 64, None);
        let tx_done = std::sync::atomic::AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(20);

        let ((sent, sent_in, stall), (received, rx_in)) = std::thread::scope(|s| {
            let rx_thread = s.spawn(|| {
                let mut b = Burst::new();
                let mut n = 0u64;
                let mut first = None;
                let mut last = Instant::now();
                let mut idle = 0u32;
                while n < FRAMES as u64 {
                    let k = rx.rx_burst(&mut b, 256);
                    if k > 0 {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        last = now;
                        n += k as u64;
                        idle = 0;
                        b.clear();
                        continue;
                    }
                    // Look at the clock only now and then: polling is what is measured.
                    idle += 1;
                    if idle % 1024 == 0 {
                        let now = Instant::now();
                        let quiet = now - last > Duration::from_millis(200);
                        if now > deadline || (tx_done.load(Ordering::Acquire) && quiet) {
                            break; // the rest was lost
                        }
                    }
                    if idle % 64 == 0 {
                        // Leave the CPU to ksoftirqd, which does the kernel's side of the
                        // veth, when the cores are shared.
                        std::thread::yield_now();
                    }
                }
                (n, first.map_or(Duration::ZERO, |f| last - f))
            });
            let t = Instant::now();
            let mut b = Burst::new();
            let mut queued = 0u32;
            let mut progress = t;
            let mut stall = Duration::ZERO;
            while queued < FRAMES && Instant::now() < deadline {
                let want = BURST.min((FRAMES - queued) as usize) - b.len();
                if want > 0 && mp.alloc_bulk(&mut b, want) {
                    let start = b.len() - want;
                    for (k, m) in b.as_mut_slice()[start..].iter_mut().enumerate() {
                        let d = m.append(template.len()).unwrap();
                        d.copy_from_slice(&template);
                        d[18..22].copy_from_slice(&(queued + k as u32).to_be_bytes());
                    }
                }
                let n = tx.tx_burst(&mut b) as u32;
                if n == 0 {
                    std::thread::yield_now(); // ring full: let the kernel catch up
                } else {
                    let now = Instant::now();
                    stall = stall.max(now - progress);
                    progress = now;
                    queued += n;
                }
            }
            b.clear();
            tx.flush();
            let sent_in = t.elapsed();
            tx_done.store(true, Ordering::Release);
            ((queued, sent_in, stall), rx_thread.join().unwrap())
        });
        let x = pb.xstats();
        eprintln!(
            "af_packet veth throughput: sent {sent} x 64 B in bursts of {BURST} in {:.3} s = \
             {:.0} pps (longest tx stall {:.1} ms, {} failed kicks); received {received} \
             ({:.2}%) at {:.0} pps; kernel rx drops {}, ring freezes {}",
            sent_in.as_secs_f64(),
            sent as f64 / sent_in.as_secs_f64(),
            stall.as_secs_f64() * 1e3,
            pa.xstats().tx_kick_errors[0],
            100.0 * received as f64 / FRAMES as f64,
            received as f64 / rx_in.as_secs_f64().max(1e-9),
            x.rx_kernel_drops[0],
            x.rx_ring_freezes[0]
        );
        assert!(received > 0, "nothing received");
        assert_eq!(
            pb.stats().imissed,
            x.rx_kernel_drops[0],
            "kernel drops are reported as imissed"
        );
    });
}
