//! Tests on real interfaces: each test makes its own pair of network namespaces joined by a
//! veth pair, opens the port on one end and plays the peer on the other with a raw AF_PACKET
//! socket. They need root; without it they print "skipping: needs root" (or fail when
//! `FERROPLANE_REQUIRE_TOOLS=1`, as CI sets). Every wait is bounded; a guard deletes the
//! namespaces (and with them the veth pair) even when the test fails.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::batch::Burst;
use crate::mem::{HugePolicy, Mbuf, MempoolParams};

/// EtherType of the test frames (IEEE 802 local experimental), so stray kernel traffic is told
/// apart.
const TEST_ETHERTYPE: u16 = 0x88b5;

fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "the af_xdp tests need root but FERROPLANE_REQUIRE_TOOLS=1"
    );
    eprintln!("skipping: needs root");
    false
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces, `a` holding interface `ia` (the port's) and `b` holding its veth peer `ib`.
/// Dropping it deletes both namespaces, which destroys the veth pair.
struct VethPair {
    a: String,
    b: String,
    ia: String,
    ib: String,
}

impl VethPair {
    fn new(queues: u32) -> VethPair {
        static N: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        // Namespaces are named like the shared test harness's (`fp-<pid>-…`), so its stale
        // cleanup and `tests/netns.sh cleanup` remove them if this process is killed.
        let v = VethPair {
            a: format!("fp-{pid}-xsk{n}a"),
            b: format!("fp-{pid}-xsk{n}b"),
            ia: format!("xa{}{n}", pid % 100_000),
            ib: format!("xb{}{n}", pid % 100_000),
        };
        let q = queues.to_string();
        run("ip", &["netns", "add", &v.a]);
        run("ip", &["netns", "add", &v.b]);
        for ns in [&v.a, &v.b] {
            // No IPv6: keeps router solicitations and MLD reports off the link. Written through
            // /proc from a thread inside the namespace (no sysctl binary needed); a kernel
            // without IPv6 has nothing to turn off.
            in_ns(ns, || {
                for key in ["all", "default"] {
                    let _ =
                        std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
                }
            });
        }
        run(
            "ip",
            &[
                "-n",
                &v.a,
                "link",
                "add",
                &v.ia,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &v.ib,
                "netns",
                &v.b,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ],
        );
        run("ip", &["-n", &v.a, "link", "set", &v.ia, "up"]);
        run("ip", &["-n", &v.b, "link", "set", &v.ib, "up"]);
        v
    }

    /// `ip -d link show` of the port's interface.
    fn link_details(&self) -> String {
        run(
            "ip",
            &["-n", &self.a, "-d", "link", "show", "dev", &self.ia],
        )
    }

    /// True when `ip -d link` shows an XDP program (`prog/xdp id N`, `xdpgeneric …`, …).
    fn has_xdp(&self) -> bool {
        self.link_details()
            .split_whitespace()
            .any(|t| t.starts_with("xdp") || t.starts_with("prog/xdp"))
    }

    /// Waits (bounded) until the interface shows no XDP program.
    fn wait_no_xdp(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            if !self.has_xdp() {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`.
fn in_ns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_ns(ns);
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    })
}

/// Moves the calling thread into network namespace `ns`.
fn enter_ns(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("namespace file");
    // SAFETY: setns on a namespace file we hold open; it affects only the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A raw AF_PACKET socket on one interface: the test's peer.
struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Opens it on `iface` (in the calling thread's namespace).
    fn open(iface: &str) -> RawSock {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(iface).unwrap();
        // SAFETY: a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        assert!(ifindex > 0, "no interface {iface}");
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // SAFETY: bind with a valid sockaddr_ll and its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        RawSock { fd }
    }

    fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: sending a live buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        n == frame.len() as isize
    }

    /// Receives incoming test frames (outgoing copies and other EtherTypes are skipped) until
    /// `n` arrived or `within` passed.
    fn recv_test_frames(&self, n: usize, within: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < n && Instant::now() < end {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one live pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            // SAFETY: all-zero is a valid sockaddr_ll.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: receiving into live buffers of the given sizes.
            let r = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut sl,
                )
            };
            if r <= 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = &buf[..r as usize];
            if is_test_frame(f) {
                got.push(f.to_vec());
            }
        }
        got
    }
}

fn is_test_frame(f: &[u8]) -> bool {
    f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == TEST_ETHERTYPE
}

/// A test frame: broadcast destination, our EtherType, sequence number, then a byte pattern.
fn test_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xfe, 0x01]);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    f
}

fn pool(name: &str, mbufs: u32, headroom: u16, data_room: u16, huge: HugePolicy) -> Mempool {
    let mut p = MempoolParams::new(name, mbufs);
    p.headroom = headroom;
    p.data_room = data_room;
    p.cache_size = 0;
    p.huge = huge;
    Mempool::new(&p).unwrap()
}

/// Polls `rx` until `n` test frames arrived or `within` passed; other frames are dropped.
fn rx_test_frames(rx: &mut dyn RxQueue, n: usize, within: Duration) -> Vec<Mbuf> {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut b = Burst::new();
    while got.len() < n && Instant::now() < end {
        if rx.rx_burst(&mut b, 32) == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        b.drain_front(b.len(), |m| {
            if is_test_frame(m.data()) {
                got.push(m);
            }
        });
    }
    got
}

fn open_in(v: &VethPair, cfg: AfXdpConfig) -> Result<AfXdpPort, PortError> {
    in_ns(&v.a, move || AfXdpPort::open(cfg))
}

/// Frames sent by the peer arrive through `rx_burst` byte for byte, in mbufs whose buffers are
/// the ones the kernel wrote (inside the pool's region, data 256 bytes into the buffer).
fn rx_case(mode: XdpMode, headroom: u16, data_room: u16, huge: HugePolicy) {
    let v = VethPair::new(1);
    let mp = pool("afxdp-rx", 4096, headroom, data_room, huge);
    let mut cfg = AfXdpConfig::new("x0", 3, mp.clone(), &v.ia);
    cfg.mode = mode;
    let mut port = open_in(&v, cfg).unwrap();
    let (got_mode, zc) = port.attach_mode();
    assert_eq!(got_mode, mode);
    eprintln!(
        "rx {mode:?} stride {}: attached {got_mode:?}, zero_copy {zc}, backing {:?}",
        mp.data_region().2,
        mp.backing()
    );
    assert!(v.has_xdp(), "program not visible:\n{}", v.link_details());
    let mut rx = port.take_rx_queue(0).unwrap();
    let peer = in_ns(&v.b, || RawSock::open(&v.ib));
    let sizes = [60usize, 64, 100, 511, 1000, 1514];
    let sent: Vec<Vec<u8>> = (0..120)
        .map(|i| test_frame(i, sizes[i as usize % sizes.len()]))
        .collect();
    for f in &sent {
        assert!(peer.send(f));
    }
    let got = rx_test_frames(rx.as_mut(), sent.len(), Duration::from_secs(5));
    assert_eq!(got.len(), sent.len(), "frames lost");
    let (base, len, stride) = mp.data_region();
    for (m, f) in got.iter().zip(&sent) {
        assert_eq!(m.data(), &f[..], "frame differs");
        assert_eq!(m.port(), 3);
        // Zero copy: the data sits in the mbuf's own buffer, inside the pool's region, where
        // the kernel wrote it.
        let off = m.buf_addr() as usize - base as usize;
        assert!(off < len);
        assert_eq!(off / stride, m.buf_index() as usize);
        assert_eq!(
            m.headroom(),
            XDP_PACKET_HEADROOM,
            "data offset in the buffer"
        );
    }
    let s = port.stats();
    assert!(s.ipackets >= sent.len() as u64, "{s:?}");
    drop(got);
    drop(rx);
    drop(port);
    assert!(
        v.wait_no_xdp(Duration::from_secs(2)),
        "{}",
        v.link_details()
    );
    assert_eq!(mp.in_use(), 0, "mbufs leaked");
}

#[test]
fn rx_native_unaligned_chunks() {
    if require_root() {
        rx_case(XdpMode::Native, 128, 2048, HugePolicy::Off);
    }
}

#[test]
fn rx_generic_unaligned_chunks_on_huge_pages() {
    if require_root() {
        rx_case(XdpMode::Generic, 128, 2048, HugePolicy::Auto);
    }
}

#[test]
fn rx_native_aligned_chunks() {
    if require_root() {
        rx_case(XdpMode::Native, 0, 2048, HugePolicy::Off);
    }
}

#[test]
fn rx_generic_aligned_chunks() {
    if require_root() {
        rx_case(XdpMode::Generic, 0, 2048, HugePolicy::Off);
    }
}

/// Checks the rx descriptor format the driver relies on (see the `umem` module): the kernel
/// writes the frame `XDP_PACKET_HEADROOM` bytes into the buffer given in the fill ring; in
/// unaligned mode the descriptor carries the buffer base in the low 48 bits and that offset in
/// the high 16, in aligned mode the plain data address.
#[test]
fn rx_descriptor_addresses_match_the_documented_format() {
    if !require_root() {
        return;
    }
    for (mode, flags) in [
        ("native", bpf::XDP_FLAGS_DRV_MODE),
        ("generic", bpf::XDP_FLAGS_SKB_MODE),
    ] {
        for (headroom, data_room) in [(128u16, 2048u16), (0, 2048)] {
            let v = VethPair::new(1);
            let mp = pool("afxdp-desc", 512, headroom, data_room, HugePolicy::Off);
            let umem = Umem::of(&mp);
            let stride = umem.stride() as u64;
            let counters = PortCounters::new(1, 1);
            let (desc, _link, _rx) = in_ns(&v.a, || {
                let mut nl = Rtnl::open().unwrap();
                let ifindex = nl.link(&v.ia).unwrap().ifindex;
                let map = XskMap::create(1).unwrap();
                let prog = XdpProgram::load(&map).unwrap();
                let p = SocketParams {
                    ifindex,
                    queue_id: 0,
                    ring_size: 64,
                    rx: true,
                    tx: false,
                    bind_flags: libc::XDP_USE_NEED_WAKEUP,
                };
                let mut s = Socket::create(&p, &umem).unwrap();
                map.insert(0, s.shared.raw_fd()).unwrap();
                let link = XdpLink::attach(&prog, ifindex, flags).unwrap();
                let mut rx = s.rx_queue(umem, &mp, 64, 0, counters.rx(0)).unwrap();
                let peer = in_ns(&v.b, || RawSock::open(&v.ib));
                assert!(peer.send(&test_frame(1, 60)));
                (rx.peek_raw(Duration::from_secs(3)), link, rx)
            });
            let d = desc.expect("no frame arrived");
            let (base, offset) = (d.addr & ((1 << 48) - 1), d.addr >> 48);
            eprintln!(
                "{mode}, stride {stride} ({}): rx desc addr {:#x} = base {base:#x} + offset \
                 {offset} << 48, len {}",
                if umem.unaligned() {
                    "unaligned"
                } else {
                    "aligned"
                },
                d.addr,
                d.len
            );
            if umem.unaligned() {
                assert_eq!(base % stride, 0, "low bits are the fill address");
                assert_eq!(offset, XDP_PACKET_HEADROOM as u64);
            } else {
                assert_eq!(offset, 0);
                assert_eq!(base % stride, XDP_PACKET_HEADROOM as u64);
            }
            assert_eq!(d.len, 60);
        }
    }
}

/// Frames given to `tx_burst` reach the peer: mbufs of the port's pool go out in place, a
/// chained mbuf and an mbuf of another pool are copied first. Completed mbufs return to their
/// pools.
#[test]
fn tx_reaches_the_peer() {
    if !require_root() {
        return;
    }
    let v = VethPair::new(1);
    let mp = pool("afxdp-tx", 4096, 128, 2048, HugePolicy::Off);
    let other = pool("afxdp-tx-other", 256, 128, 2048, HugePolicy::Off);
    let mut port = open_in(&v, AfXdpConfig::new("x0", 0, mp.clone(), &v.ia)).unwrap();
    let mut tx = port.take_tx_queue(0).unwrap();
    let peer = in_ns(&v.b, || RawSock::open(&v.ib));
    let baseline = mp.in_use();
    let mut frames = Vec::new();
    let mut b = Burst::new();
    for i in 0..60u32 {
        let f = test_frame(i, 60 + (i as usize * 23) % 1400);
        let m = match i % 10 {
            // From another pool: copied.
            7 => {
                let mut m = other.alloc().unwrap();
                m.append(f.len()).unwrap().copy_from_slice(&f);
                m
            }
            // A two-segment chain: copied.
            8 => {
                let mut m = mp.alloc().unwrap();
                m.append(30).unwrap().copy_from_slice(&f[..30]);
                let mut t = mp.alloc().unwrap();
                t.append(f.len() - 30).unwrap().copy_from_slice(&f[30..]);
                m.chain(t).unwrap();
                m
            }
            // From the port's pool: sent in place.
            _ => {
                let mut m = mp.alloc().unwrap();
                m.append(f.len()).unwrap().copy_from_slice(&f);
                m
            }
        };
        b.push(m).unwrap();
        frames.push(f);
        if b.len() == 16 {
            assert_eq!(tx.tx_burst(&mut b), 16);
        }
    }
    let last = b.len();
    assert_eq!(tx.tx_burst(&mut b), last);
    assert!(b.is_empty());
    let got = peer.recv_test_frames(frames.len(), Duration::from_secs(5));
    assert_eq!(got.len(), frames.len(), "frames lost on the way");
    assert_eq!(got, frames, "frames differ or out of order");
    let s = port.stats();
    assert_eq!(s.opackets, frames.len() as u64);
    assert_eq!(s.obytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    // Completions come back (bounded wait): the sent mbufs return to the pool.
    let end = Instant::now() + Duration::from_secs(3);
    while mp.in_use() > baseline && Instant::now() < end {
        tx.flush();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(mp.in_use(), baseline, "completed mbufs not freed");
    assert_eq!(other.in_use(), 0);
    drop(tx);
    drop(port);
    assert_eq!(mp.in_use(), 0);
}

/// The program is attached while the port lives, refused a second owner (named in the error),
/// and detached after the port is dropped and after failed opens.
#[test]
fn program_is_detached_after_drop_and_failed_open() {
    if !require_root() {
        return;
    }
    let v = VethPair::new(1);
    let mp = pool("afxdp-life", 1024, 128, 2048, HugePolicy::Off);
    let port = open_in(&v, AfXdpConfig::new("x0", 0, mp.clone(), &v.ia)).unwrap();
    assert!(v.has_xdp(), "{}", v.link_details());
    let e = open_in(&v, AfXdpConfig::new("x1", 1, mp.clone(), &v.ia))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already attached") && e.contains(bpf::PROG_NAME) && e.contains("x1"),
        "{e}"
    );
    assert!(
        v.has_xdp(),
        "the failed open must not detach the first port's program"
    );
    drop(port);
    assert!(
        v.wait_no_xdp(Duration::from_secs(2)),
        "{}",
        v.link_details()
    );
    assert_eq!(mp.in_use(), 0);

    // Failed opens: a queue the interface does not have, caught before anything is created...
    let mut cfg = AfXdpConfig::new("x2", 0, mp.clone(), &v.ia);
    cfg.queue_base = 4;
    let e = open_in(&v, cfg).unwrap_err().to_string();
    assert!(
        e.contains("queues 4..5 do not exist") && e.contains(&v.ia),
        "{e}"
    );
    assert!(!v.has_xdp());
    // ...and zero-copy, which veth refuses at bind, after the map and program exist.
    let mut cfg = AfXdpConfig::new("x3", 0, mp.clone(), &v.ia);
    cfg.zero_copy = ZeroCopy::On;
    let e = open_in(&v, cfg).unwrap_err().to_string();
    assert!(e.contains("zero-copy"), "{e}");
    assert!(!v.has_xdp(), "{}", v.link_details());
    assert_eq!(mp.in_use(), 0);
    // The interface is usable again.
    let port = open_in(&v, AfXdpConfig::new("x4", 0, mp.clone(), &v.ia)).unwrap();
    assert!(v.has_xdp());
    drop(port);
    assert!(v.wait_no_xdp(Duration::from_secs(2)));
}

const CHILD_NS: &str = "FP_AFXDP_CHILD_NS";
const CHILD_IF: &str = "FP_AFXDP_CHILD_IF";
const CHILD_READY: &str = "AFXDP_CHILD_READY";

/// Kills the child process on drop (also when the test fails).
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process that holds the port and dies by SIGKILL leaves no program behind: the BPF link
/// is closed with the process's descriptors. The test re-runs this test binary as the child.
#[test]
fn sigkill_detaches_the_program() {
    if let (Ok(ns), Ok(iface)) = (std::env::var(CHILD_NS), std::env::var(CHILD_IF)) {
        // Child side: open the port, say so, and wait to be killed (bounded).
        enter_ns(&ns);
        let mp = pool("afxdp-child", 1024, 128, 2048, HugePolicy::Off);
        let port = AfXdpPort::open(AfXdpConfig::new("child", 0, mp, &iface)).unwrap();
        println!("{CHILD_READY}");
        std::thread::sleep(Duration::from_secs(30));
        drop(port);
        return;
    }
    if !require_root() {
        return;
    }
    let v = VethPair::new(1);
    let exe = std::env::current_exe().unwrap();
    let mut child = ChildGuard(
        Command::new(exe)
            .args([
                "port::af_xdp::tests::sigkill_detaches_the_program",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_NS, &v.a)
            .env(CHILD_IF, &v.ia)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(CHILD_READY) {
                let _ = ready_tx.send(());
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child did not open the port in time");
    assert!(
        v.has_xdp(),
        "child's program not visible:\n{}",
        v.link_details()
    );
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    assert!(
        v.wait_no_xdp(Duration::from_secs(3)),
        "program still attached after SIGKILL:\n{}",
        v.link_details()
    );
}

const CHILD_SCENARIO: &str = "FP_AFXDP_CHILD_SCENARIO";
const CHILD_RESULT: &str = "AFXDP_CHILD_RESULT:";

/// include/uapi/linux/capability.h: `_LINUX_CAPABILITY_VERSION_3` and `CAP_IPC_LOCK`.
const CAP_VERSION_3: u32 = 0x2008_0522;
const CAP_IPC_LOCK: u32 = 14;

/// Changes the calling thread's capabilities: `keep` maps the current (effective, permitted)
/// words of each 32-bit half to the new ones.
fn set_caps(keep: impl Fn(usize, u32) -> u32) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a version-3 header and two data words, as the ABI requires;
    // they act on the calling thread only.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
        for (i, w) in d.iter_mut().enumerate() {
            w.effective = keep(i, w.effective);
            w.permitted = keep(i, w.permitted);
            w.inheritable = 0;
        }
        assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
    }
}

/// Runs one privilege scenario in this child process and prints the outcome.
fn privilege_child(scenario: &str, ns: &str, iface: &str) {
    enter_ns(ns);
    let mp = match scenario {
        "nocaps" => {
            set_caps(|_, _| 0);
            pool("afxdp-nocaps", 1024, 128, 2048, HugePolicy::Off)
        }
        "memlock" => {
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            // SAFETY: setrlimit with a live struct (lowering is always allowed).
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
            set_caps(|i, w| if i == 0 { w & !(1 << CAP_IPC_LOCK) } else { w });
            // 8192 buffers of 2176 bytes: 17 MiB, far above the 1 MiB limit.
            pool("afxdp-memlock", 8192, 128, 2048, HugePolicy::Off)
        }
        _ => unreachable!("unknown scenario {scenario}"),
    };
    match AfXdpPort::open(AfXdpConfig::new("px", 0, mp, iface)) {
        Ok(_) => println!("{CHILD_RESULT} OK"),
        Err(e) => println!("{CHILD_RESULT} {}", e.to_string().replace('\n', " ")),
    }
}

/// Without root the error says so; under a locked-memory limit too small for the UMEM (no
/// CAP_IPC_LOCK) it names the limit and the fixes. Neither leaves a program behind. Each case
/// runs in a child process (this test binary again) that drops capabilities first.
#[test]
fn privilege_errors_are_explained() {
    if let (Ok(sc), Ok(ns), Ok(iface)) = (
        std::env::var(CHILD_SCENARIO),
        std::env::var(CHILD_NS),
        std::env::var(CHILD_IF),
    ) {
        privilege_child(&sc, &ns, &iface);
        return;
    }
    if !require_root() {
        return;
    }
    let v = VethPair::new(1);
    let exe = std::env::current_exe().unwrap();
    let mut results = Vec::new();
    for scenario in ["nocaps", "memlock"] {
        let out = Command::new(&exe)
            .args([
                "port::af_xdp::tests::privilege_errors_are_explained",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SCENARIO, scenario)
            .env(CHILD_NS, &v.a)
            .env(CHILD_IF, &v.ia)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| {
                l.split_once(CHILD_RESULT)
                    .map(|(_, r)| r.trim().to_string())
            })
            .unwrap_or_else(|| {
                panic!(
                    "{scenario}: no result from the child:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        eprintln!("{scenario}: {line}");
        assert!(
            !v.has_xdp(),
            "{scenario} left a program:\n{}",
            v.link_details()
        );
        results.push(line);
    }
    assert!(
        results[0].contains("needs root") && results[0].contains(&v.ia),
        "{}",
        results[0]
    );
    assert!(
        results[1].contains("RLIMIT_MEMLOCK = 1048576")
            && results[1].contains("run as root")
            && results[1].contains("smaller pool"),
        "{}",
        results[1]
    );
}

/// Set-up errors that need no privileges: a missing interface, buffers too small.
#[test]
fn open_errors_name_the_problem_and_the_fix() {
    let mp = pool("afxdp-err", 1024, 128, 2048, HugePolicy::Off);
    let e = AfXdpPort::open(AfXdpConfig::new("p9", 0, mp.clone(), "fpx-missing0"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("p9") && e.contains("fpx-missing0") && e.contains("no such interface"),
        "{e}"
    );
    let small = pool("tiny-bufs", 1024, 128, 1024, HugePolicy::Off);
    let e = AfXdpPort::open(AfXdpConfig::new("p9", 0, small, "lo"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pool tiny-bufs")
            && e.contains("at least 1770")
            && e.contains("data_room >= 1642"),
        "{e}"
    );
    let mut cfg = AfXdpConfig::new("p9", 0, mp.clone(), "lo");
    cfg.ring_size = 1000;
    let e = AfXdpPort::open(cfg).unwrap_err().to_string();
    assert!(e.contains("ring_size = 1000"), "{e}");
    let few = pool("few", 64, 128, 2048, HugePolicy::Off);
    let e = AfXdpPort::open(AfXdpConfig::new("p9", 0, few, "lo"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pool few has 64 mbufs"), "{e}");
    assert_eq!(mp.in_use(), 0);
}

/// An IPv4/UDP frame to 198.18.0.2 (checksums left zero) carrying the test marker, from a
/// source port that varies with `seq` so the peer's transmit hash spreads frames over queues.
fn udp_frame(seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 8];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xfe, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&36u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&(10_000 + seq as u16).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&16u16.to_be_bytes());
    f[42..44].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[44..48].copy_from_slice(&seq.to_be_bytes());
    f
}

fn is_udp_test_frame(f: &[u8]) -> bool {
    f.len() == 50 && f[12..14] == [8, 0] && f[23] == 17 && f[42..44] == TEST_ETHERTYPE.to_be_bytes()
}

/// Two rx queues, each with its own socket and its own UMEM registration of the same pool
/// region: frames spread over both by the peer's flow hash all arrive, and both queues
/// transmit.
#[test]
fn two_queues_share_one_pool() {
    if !require_root() {
        return;
    }
    let v = VethPair::new(2);
    let mp = pool("afxdp-mq", 4096, 128, 2048, HugePolicy::Off);
    let mut cfg = AfXdpConfig::new("x0", 0, mp.clone(), &v.ia);
    cfg.rx_queues = 2;
    cfg.tx_queues = 2;
    cfg.ring_size = 512;
    let mut port = open_in(&v, cfg).unwrap();
    let mut rxs: Vec<_> = (0..2).map(|q| port.take_rx_queue(q).unwrap()).collect();
    let mut txs: Vec<_> = (0..2).map(|q| port.take_tx_queue(q).unwrap()).collect();
    let peer = in_ns(&v.b, || RawSock::open(&v.ib));
    let n = 200usize;
    for i in 0..n {
        assert!(peer.send(&udp_frame(i as u32)));
    }
    let end = Instant::now() + Duration::from_secs(5);
    let mut counts = [0usize; 2];
    let mut b = Burst::new();
    while counts.iter().sum::<usize>() < n && Instant::now() < end {
        for (q, rx) in rxs.iter_mut().enumerate() {
            rx.rx_burst(&mut b, 32);
            b.drain_front(b.len(), |m| {
                counts[q] += is_udp_test_frame(m.data()) as usize
            });
        }
    }
    eprintln!(
        "two queues: {} frames on queue 0, {} on queue 1",
        counts[0], counts[1]
    );
    assert_eq!(counts.iter().sum::<usize>(), n);
    for (q, tx) in txs.iter_mut().enumerate() {
        let mut b = Burst::new();
        for i in 0..10u32 {
            let mut m = mp.alloc().unwrap();
            m.append(80)
                .unwrap()
                .copy_from_slice(&test_frame(1000 * q as u32 + i, 80));
            b.push(m).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 10, "tx queue {q}");
    }
    let got = peer.recv_test_frames(20, Duration::from_secs(5));
    assert_eq!(got.len(), 20);
    let s = port.stats();
    assert_eq!(
        s.tx_queues.iter().map(|q| q.packets).collect::<Vec<_>>(),
        [10, 10]
    );
    assert_eq!(s.ipackets, n as u64);
    drop((rxs, txs, port));
    assert!(v.wait_no_xdp(Duration::from_secs(2)));
    assert_eq!(mp.in_use(), 0);
}

/// More tx than rx queues: the extra tx queue gets a transmit-only socket of its own.
#[test]
fn extra_tx_queue_gets_a_transmit_only_socket() {
    if !require_root() {
        return;
    }
    let v = VethPair::new(2);
    let mp = pool("afxdp-txonly", 1024, 128, 2048, HugePolicy::Off);
    let mut cfg = AfXdpConfig::new("x0", 0, mp.clone(), &v.ia);
    cfg.tx_queues = 2;
    let mut port = open_in(&v, cfg).unwrap();
    assert!(port.take_rx_queue(1).is_err());
    let mut tx1 = port.take_tx_queue(1).unwrap();
    let peer = in_ns(&v.b, || RawSock::open(&v.ib));
    let mut b = Burst::new();
    let frames: Vec<_> = (0..20).map(|i| test_frame(i, 300)).collect();
    for f in &frames {
        let mut m = mp.alloc().unwrap();
        m.append(f.len()).unwrap().copy_from_slice(f);
        b.push(m).unwrap();
    }
    assert_eq!(tx1.tx_burst(&mut b), 20);
    assert_eq!(peer.recv_test_frames(20, Duration::from_secs(5)), frames);
    assert_eq!(port.stats().tx_queues[1].packets, 20);
    drop((tx1, port));
    assert_eq!(mp.in_use(), 0);
}

/// Not an assertion: packets per second received while the peer floods 64-byte frames for two
/// seconds from a raw socket (one core sends, one receives; the machine has two).
#[test]
fn throughput_sanity() {
    if !require_root() {
        return;
    }
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let v = VethPair::new(1);
        let mut p = MempoolParams::new("afxdp-pps", 8192);
        p.cache_size = 256;
        let mp = Mempool::new(&p).unwrap();
        let mut cfg = AfXdpConfig::new("x0", 0, mp.clone(), &v.ia);
        cfg.mode = mode;
        let mut port = open_in(&v, cfg).unwrap();
        let mut rx = port.take_rx_queue(0).unwrap();
        let peer = in_ns(&v.b, || RawSock::open(&v.ib));
        // SAFETY: setsockopt with a live int: skip the qdisc layer to flood faster.
        unsafe {
            let one: libc::c_int = 1;
            libc::setsockopt(
                peer.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                4,
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let dur = Duration::from_secs(2);
        let sender = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let f = test_frame(0, 60);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        if peer.send(&f) {
                            n += 1;
                        }
                    }
                }
                sent.store(n, Ordering::Relaxed);
            })
        };
        // Receive as an lcore does: registered (so the pool's per-lcore cache is used), bursts
        // of 64, freed in bulk.
        let _lcore = crate::lcore::register_any(60).unwrap();
        let mut b = Burst::new();
        let mut got = 0u64;
        let start = Instant::now();
        let (mut calls, mut turns) = (0u64, 0u64);
        while turns & 63 != 0 || start.elapsed() < dur {
            turns += 1;
            let n = rx.rx_burst(&mut b, 64) as u64;
            if n > 0 {
                crate::mem::free_burst(&mut b);
                got += n;
                calls += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        let s = port.stats();
        let (m, zc) = port.attach_mode();
        let k = port.sockets[0].statistics().unwrap();
        eprintln!(
            "af_xdp throughput ({m:?}, zero_copy {zc}): received {:.0} pps ({got} frames in \
             {secs:.2} s); peer sent {:.0} pps; kernel-side misses {} (rx ring full {}, no \
             fill buffer {}, fill ring found empty {} times); {:.1} frames per non-empty rx_burst",
            got as f64 / secs,
            sent.load(Ordering::Relaxed) as f64 / secs,
            s.imissed,
            k.rx_ring_full,
            k.rx_dropped,
            k.rx_fill_ring_empty_descs,
            got as f64 / calls.max(1) as f64
        );
        drop((rx, port));
        assert_eq!(mp.in_use(), 0);
    }
}
