//! The sans-IO TCP engine alone: two [`Connection`]s in one thread, joined by nothing but
//! wire bytes in memory. Every segment is emitted with its checksum ([`Transmit::emit`]),
//! checksum-verified and parsed ([`TcpSegment::parse`]) and handed to the other side, as the
//! glue does; no link delay, no loss. Time is virtual and advances 1 µs per loop turn, so
//! delayed-ACK timers fire as they would.
//!
//! Group `tcp_engine` (one iteration = a bulk transfer of [`TRANSFER`] bytes from A to B
//! over an established connection, 1460-byte MSS with timestamps and SACK, 256 KiB
//! buffers, the receiver reading everything as it arrives; throughput in bytes):
//!
//! * `bulk_newreno`, `bulk_cubic`: the two congestion controllers.
//!
//! Before measuring, the binary counts heap allocations (a counting global allocator)
//! during a steady-state transfer and prints them per segment; it panics if there are any,
//! since the engine must not allocate per segment.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferroplane::tcp::{
    CongestionAlgorithm, Connection, IsnGenerator, Listener, TcpConfig, TcpSegment, MS,
};
use ferroplane::wire::TcpPacket;
use ferroplane_bench::{MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME};

/// Counts every allocation (and reallocation) made through the global allocator.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes moved per iteration.
const TRANSFER: usize = 8 << 20;

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Two established connections and the buffers the loop uses.
struct Pair {
    a: Connection,
    b: Connection,
    now: u64,
    wire: Vec<u8>,
    sink: Vec<u8>,
    data: Vec<u8>,
    segments: u64,
}

/// Moves every segment `from` wants to send into `to`; returns how many.
fn pump(from: &mut Connection, to: &mut Connection, wire: &mut [u8], now: u64) -> u64 {
    let mut n = 0;
    while let Some(t) = from.poll_transmit(now) {
        let len = t.emit(wire);
        let (src, dst) = (t.src_addr, t.dst_addr);
        let bytes = &wire[..len];
        let ok = TcpPacket::new_checked(bytes)
            .map(|p| p.verify_checksum(src, dst))
            .unwrap_or(false);
        assert!(ok, "checksum");
        let seg = TcpSegment::parse(bytes).expect("parses");
        to.on_segment(&seg, now);
        n += 1;
    }
    n
}

impl Pair {
    fn new(algo: CongestionAlgorithm) -> Pair {
        let cfg = TcpConfig {
            congestion: algo,
            ..TcpConfig::default()
        };
        let isn = IsnGenerator::new(*b"bench-tcp-engine");
        let la = SocketAddrV4::new(A, 40000);
        let lb = SocketAddrV4::new(B, 80);
        let mut a = Connection::connect(&cfg, &isn, la, lb, 0);
        let mut l = Listener::new(&cfg, isn.clone(), lb, 4);
        let mut wire = vec![0u8; 2048];
        let mut now = 0;
        let b = loop {
            while let Some(t) = a.poll_transmit(now) {
                let len = t.emit(&mut wire);
                let seg = TcpSegment::parse(&wire[..len]).expect("parses");
                l.on_segment(A, B, &seg, now);
            }
            if let Some(b) = l.accept() {
                break b;
            }
            while let Some(t) = l.poll_transmit(now) {
                let len = t.emit(&mut wire);
                let seg = TcpSegment::parse(&wire[..len]).expect("parses");
                a.on_segment(&seg, now);
            }
            now += MS;
            assert!(now < 10_000 * MS, "handshake");
        };
        Pair {
            a,
            b,
            now,
            wire,
            sink: vec![0u8; 64 * 1024],
            data: (0..64 * 1024).map(|i| (i * 7) as u8).collect(),
            segments: 0,
        }
    }

    /// Sends `total` bytes A → B; returns once B has read them all.
    fn transfer(&mut self, total: usize) {
        let (mut sent, mut got) = (0usize, 0usize);
        while got < total {
            let now = self.now;
            if sent < total {
                let n = (total - sent).min(self.data.len());
                sent += self.a.send(&self.data[..n], now);
            }
            self.segments += pump(&mut self.a, &mut self.b, &mut self.wire, now);
            loop {
                let n = self.b.recv(&mut self.sink);
                if n == 0 {
                    break;
                }
                got += n;
            }
            self.segments += pump(&mut self.b, &mut self.a, &mut self.wire, now);
            for c in [&mut self.a, &mut self.b] {
                if c.next_timer().is_some_and(|t| t <= now) {
                    c.on_timer(now);
                }
            }
            self.now += 1_000;
        }
        black_box(&self.sink);
    }
}

fn allocation_check() {
    let mut p = Pair::new(CongestionAlgorithm::Cubic);
    p.transfer(4 << 20); // warm up: windows open, rings touched
    let (allocs0, segs0) = (ALLOCS.load(Ordering::Relaxed), p.segments);
    p.transfer(16 << 20);
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;
    let segs = p.segments - segs0;
    println!("tcp_engine: {allocs} heap allocations over {segs} segments in steady state");
    assert_eq!(allocs, 0, "the engine allocated on the data path");
}

fn bench(c: &mut Criterion) {
    allocation_check();
    let mut g = c.benchmark_group("tcp_engine");
    g.measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE)
        .throughput(Throughput::Bytes(TRANSFER as u64));
    for (name, algo) in [
        ("bulk_newreno", CongestionAlgorithm::NewReno),
        ("bulk_cubic", CongestionAlgorithm::Cubic),
    ] {
        let mut p = Pair::new(algo);
        p.transfer(1 << 20);
        g.bench_function(name, |b| b.iter(|| p.transfer(TRANSFER)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
