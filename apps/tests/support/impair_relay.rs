//! A user-space stand-in for `tc netem` (this kernel has no sch_netem): an L2 relay between
//! two interfaces of one network namespace, on a thread of the test process. Each IPv4 frame
//! read on one side is sent out of the other with netem's impairments: loss, corruption (one
//! bit flipped inside the IP payload, so the transport checksum catches it), duplication, and
//! a fixed delay except for a "reorder" share sent at once (netem's `delay D reorder P`).
//! Other frames (ARP) pass unimpaired, with the same delay. The random choices come from a
//! seeded generator; every impairment is counted; the delay queue is bounded; the thread
//! stops on a flag and is joined (also on drop).

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The impairments, as probabilities in `0.0..=1.0` and a delay.
#[derive(Debug, Clone)]
pub struct Impairments {
    /// Frames dropped.
    pub loss: f64,
    /// Frames with one bit flipped in the IP payload.
    pub corrupt: f64,
    /// Frames sent twice.
    pub duplicate: f64,
    /// Frames sent at once instead of after `delay`.
    pub reorder: f64,
    /// The delay of every other frame.
    pub delay: Duration,
    /// Seed of the random choices.
    pub seed: u64,
    /// Most frames waiting in the delay queue; more are dropped (counted in `queue_full`).
    pub queue_limit: usize,
}

impl Impairments {
    /// The issue's netem line: `loss 5% reorder 25% duplicate 1% corrupt 1% delay 10ms`.
    pub fn issue() -> Impairments {
        Impairments {
            loss: 0.05,
            corrupt: 0.01,
            duplicate: 0.01,
            reorder: 0.25,
            delay: Duration::from_millis(10),
            seed: 0x6e65_7465_6d00_0001,
            queue_limit: 16384,
        }
    }
}

/// What the relay did, counted as it goes (readable while it runs).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames read, per direction (a→b, b→a).
    pub received: [AtomicU64; 2],
    /// Frames sent, per direction.
    pub sent: [AtomicU64; 2],
    /// IPv4 frames dropped on purpose.
    pub dropped: AtomicU64,
    /// IPv4 frames corrupted.
    pub corrupted: AtomicU64,
    /// IPv4 frames duplicated.
    pub duplicated: AtomicU64,
    /// IPv4 frames sent without the delay.
    pub reordered: AtomicU64,
    /// Frames that are not IPv4 (passed unimpaired).
    pub non_ipv4: AtomicU64,
    /// Frames dropped because the delay queue was full.
    pub queue_full: AtomicU64,
    /// Sends the kernel refused (e.g. a full backlog on the other side).
    pub send_errors: AtomicU64,
    /// Frames the kernel dropped before the relay read them (PACKET_STATISTICS).
    pub socket_drops: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// One line with every counter.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed);
        format!(
            "received a->b {} b->a {}, sent a->b {} b->a {}, dropped {}, corrupted {}, \
             duplicated {}, reordered {}, non-IPv4 {}, queue full {}, send errors {}, \
             socket drops {}",
            g(&self.received[0]),
            g(&self.received[1]),
            g(&self.sent[0]),
            g(&self.sent[1]),
            g(&self.dropped),
            g(&self.corrupted),
            g(&self.duplicated),
            g(&self.reordered),
            g(&self.non_ipv4),
            g(&self.queue_full),
            g(&self.send_errors),
            g(&self.socket_drops),
        )
    }
}

/// A running relay. [`ImpairRelay::stop`] (or drop) stops and joins its thread.
pub struct ImpairRelay {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl ImpairRelay {
    /// Starts relaying between interfaces `a` and `b` of namespace `netns` (a name under
    /// /var/run/netns). Returns once both sockets are open.
    pub fn start(netns: &str, a: &str, b: &str, imp: Impairments) -> io::Result<ImpairRelay> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (ns, a, b) = (netns.to_string(), a.to_string(), b.to_string());
        let (stop2, counters2) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("impair-relay".into())
            .spawn(move || {
                let socks = enter_netns(&ns).and_then(|()| Ok([open(&a)?, open(&b)?]));
                let socks = match socks {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let msg = format!("relay {a}<->{b} in {ns}: {e}");
                        let _ = ready_tx.send(Err(e));
                        return Err(msg);
                    }
                };
                run(&socks, &imp, &stop2, &counters2).map_err(|e| e.to_string())
            })?;
        let mut relay = ImpairRelay {
            stop,
            counters,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(relay),
            Ok(Err(e)) => {
                let _ = relay.join();
                Err(e)
            }
            Err(_) => {
                let _ = relay.join();
                Err(io::Error::other("the relay thread did not start"))
            }
        }
    }

    /// The live counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops the thread and returns its counters; an error if the relay loop failed.
    pub fn stop(mut self) -> Result<Arc<Counters>, String> {
        self.join()?;
        Ok(self.counters.clone())
    }

    fn join(&mut self) -> Result<(), String> {
        self.stop.store(true, Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| "the relay thread panicked".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for ImpairRelay {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            eprintln!("warning: impair relay: {e}");
        }
    }
}

/// Moves the calling thread into network namespace `name` (namespaces are per thread).
fn enter_netns(name: &str) -> io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: setns on a namespace file we hold open; CLONE_NEWNET moves only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking AF_PACKET raw socket bound to interface `ifname`, all protocols.
fn open(ifname: &str) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(ifname).map_err(io::Error::other)?;
    // SAFETY: if_nametoindex reads a NUL-terminated string we own.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::other(format!("no interface {ifname}")));
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto as i32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let rcvbuf: libc::c_int = 8 << 20;
    // SAFETY: setsockopt with a pointer to a c_int and its size; failure only leaves the
    // default buffer size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind with a sockaddr_ll we own and its exact size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Frames the kernel dropped on `fd` since the last call.
fn socket_drops(fd: &OwnedFd) -> u64 {
    #[repr(C)]
    #[derive(Default)]
    struct TpacketStats {
        packets: u32,
        drops: u32,
    }
    let mut st = TpacketStats::default();
    let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `st`, which we own.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut TpacketStats).cast(),
            &mut len,
        )
    };
    if r == 0 {
        u64::from(st.drops)
    } else {
        0
    }
}

/// A splitmix64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A frame waiting in the delay queue, ordered by due time then arrival.
struct Pending {
    due: Instant,
    seq: u64,
    out: usize,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

const ETH_HLEN: usize = 14;
/// Frames read from one socket per wake-up, so the other side and the queue get their turn.
const BURST: usize = 256;

/// The byte range of the IPv4 payload in `frame`, if it is a well-formed IPv4 frame.
fn ipv4_payload(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    if frame.len() < ETH_HLEN + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    (ip[0] >> 4 == 4 && ihl >= 20 && total > ihl && ETH_HLEN + total <= frame.len())
        .then(|| ETH_HLEN + ihl..ETH_HLEN + total)
}

fn run(socks: &[OwnedFd; 2], imp: &Impairments, stop: &AtomicBool, c: &Counters) -> io::Result<()> {
    let mut rng = Rng(imp.seed);
    let mut queue: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 65536];
    let mut last_stats = Instant::now();
    while !stop.load(Relaxed) {
        // Sleep until a socket is readable or the head of the queue is due (at most 5 ms, so
        // the stop flag is seen).
        let now = Instant::now();
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(5), |Reverse(p)| {
                p.due.saturating_duration_since(now)
            })
            .min(Duration::from_millis(5));
        let mut fds = [
            libc::pollfd {
                fd: socks[0].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: socks[1].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up so a sub-millisecond wait does not become a busy loop of zero timeouts.
        let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: poll on two pollfds we own, with their count.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for side in 0..2 {
            if fds[side].revents & libc::POLLIN == 0 {
                continue;
            }
            for _ in 0..BURST {
                // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut flen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: recvfrom writes at most buf.len() bytes into buf and at most flen
                // bytes into `from`, both ours.
                let n = unsafe {
                    libc::recvfrom(
                        socks[side].as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut flen,
                    )
                };
                if n < 0 {
                    break;
                }
                if from.sll_pkttype == libc::PACKET_OUTGOING {
                    continue; // our own sends, seen again on the way out
                }
                let n = (n as usize).min(buf.len());
                Counters::add(&c.received[side], 1);
                let now = Instant::now();
                let mut push = |frame: Vec<u8>, due: Instant, q: &mut BinaryHeap<_>| {
                    if q.len() >= imp.queue_limit {
                        Counters::add(&c.queue_full, 1);
                        return;
                    }
                    seq += 1;
                    q.push(Reverse(Pending {
                        due,
                        seq,
                        out: 1 - side,
                        frame,
                    }));
                };
                let frame = &buf[..n];
                let Some(payload) = ipv4_payload(frame) else {
                    Counters::add(&c.non_ipv4, 1);
                    push(frame.to_vec(), now + imp.delay, &mut queue);
                    continue;
                };
                if rng.chance(imp.loss) {
                    Counters::add(&c.dropped, 1);
                    continue;
                }
                let copies = if rng.chance(imp.duplicate) {
                    Counters::add(&c.duplicated, 1);
                    2
                } else {
                    1
                };
                for copy in 0..copies {
                    let mut f = frame.to_vec();
                    if copy == 0 && rng.chance(imp.corrupt) {
                        Counters::add(&c.corrupted, 1);
                        let at = payload.start + rng.below(payload.len());
                        f[at] ^= 1 << rng.below(8);
                    }
                    let due = if rng.chance(imp.reorder) {
                        Counters::add(&c.reordered, 1);
                        now
                    } else {
                        now + imp.delay
                    };
                    push(f, due, &mut queue);
                }
            }
        }
        // Send everything due.
        let now = Instant::now();
        while queue.peek().is_some_and(|Reverse(p)| p.due <= now) {
            let Reverse(p) = queue.pop().unwrap();
            // SAFETY: send of a buffer we own on a bound packet socket (it goes out of the
            // interface the socket is bound to).
            let r = unsafe {
                libc::send(
                    socks[p.out].as_raw_fd(),
                    p.frame.as_ptr().cast(),
                    p.frame.len(),
                    0,
                )
            };
            if r < 0 {
                Counters::add(&c.send_errors, 1);
            } else {
                Counters::add(&c.sent[1 - p.out], 1);
            }
        }
        if last_stats.elapsed() > Duration::from_millis(500) {
            last_stats = Instant::now();
            Counters::add(
                &c.socket_drops,
                socket_drops(&socks[0]) + socket_drops(&socks[1]),
            );
        }
    }
    Counters::add(
        &c.socket_drops,
        socket_drops(&socks[0]) + socket_drops(&socks[1]),
    );
    Ok(())
}
