//! The packet generator's per-packet costs (`ferroplane::pktgen`), ns per packet:
//!
//! * `fill/udp64_random_ips`: `Stream::fill` of a 64-byte UDP frame with a signature, random
//!   source and destination addresses and a random source port, into the same mbuf each time
//!   (the template copy, the field generators and the checksum stamping; no pool traffic);
//! * `fill/udp1518_random_ips`: the same at 1518 bytes (the copy grows, the stamping does not);
//! * `fill/imix_random_ips`: the simple IMIX (7:4:1 of 64/594/1518);
//! * `fill_burst/udp64_alloc_fill_free`: a burst of 32 taken from the pool (lcore cache),
//!   filled and freed: what a tx loop pays per packet before `tx_burst`;
//! * `rx/find`: `Signature::find` on a 64-byte UDP frame;
//! * `rx/record`: `Analyzer::record` of that frame with a new seq each time (in order; the
//!   header walk, the sequence window and a latency sample in the HDR histogram).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferroplane::mem::free_burst;
use ferroplane::pktgen::{
    Analyzer, AnalyzerConfig, FieldRange, Payload, Signature, SizeSpec, Stream, StreamSpec, L4,
};
use ferroplane::port::MacAddr;
use ferroplane::{lcore, Burst};
use ferroplane_bench::{
    backing_label, bench_pool, BENCH_LCORE, BURST, MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME,
};

/// A UDP stream with random addresses in two /16s and a random source port.
fn stream(size: SizeSpec) -> Stream {
    let spec = StreamSpec {
        id: 0,
        src_mac: MacAddr::local(1),
        dst_mac: MacAddr::local(2),
        vlan: None,
        src_ip: FieldRange::ip_random(
            Ipv4Addr::new(198, 18, 0, 0),
            Ipv4Addr::new(198, 18, 255, 255),
        ),
        dst_ip: FieldRange::ip_random(
            Ipv4Addr::new(198, 19, 0, 0),
            Ipv4Addr::new(198, 19, 255, 255),
        ),
        ttl: 64,
        l4: L4::Udp {
            src_port: FieldRange::Random {
                start: 1024,
                end: 65535,
            },
            dst_port: FieldRange::Fixed(9),
        },
        size,
        payload: Payload::Zeros,
        signature: true,
    };
    Stream::new(spec, 1500).expect("a valid benchmark stream")
}

fn pktgen(c: &mut Criterion) {
    let pool = bench_pool("bench-pktgen", 256);
    eprintln!("pktgen: pool backed by {}", backing_label(&pool));
    let _lcore = lcore::register(BENCH_LCORE).expect("benchmark thread takes an lcore id");

    let mut g = c.benchmark_group("pktgen");
    g.throughput(Throughput::Elements(1));
    for (name, size) in [
        ("fill/udp64_random_ips", SizeSpec::Fixed(64)),
        ("fill/udp1518_random_ips", SizeSpec::Fixed(1518)),
        ("fill/imix_random_ips", SizeSpec::simple_imix()),
    ] {
        let mut s = stream(size);
        let mut m = pool.alloc().expect("pool has room");
        let mut seq = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                seq += 1;
                assert!(s.fill(black_box(&mut m), seq, seq));
            })
        });
        assert_eq!(Signature::find(m.data()).map(|s| s.seq), Some(seq));
    }

    let mut s = stream(SizeSpec::Fixed(64));
    let mut burst = Burst::new();
    let mut seq = 0u64;
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_function("fill_burst/udp64_alloc_fill_free", |b| {
        b.iter(|| {
            assert!(pool.alloc_bulk(&mut burst, BURST), "pool ran dry");
            for m in burst.iter_mut() {
                seq += 1;
                s.fill(m, seq, seq);
            }
            black_box(&burst);
            free_burst(&mut burst);
        })
    });

    // Receive side: one 64-byte frame whose seq is rewritten in place before each record.
    let mut frame = [0u8; 60];
    let mut s = stream(SizeSpec::Fixed(64));
    s.write_frame(&mut frame, 0, 1_000).expect("60 bytes fit");
    let seq_at = s.payload_offset() + 4;
    g.throughput(Throughput::Elements(1));
    g.bench_function("rx/find", |b| {
        b.iter(|| black_box(Signature::find(black_box(&frame))))
    });
    let mut a = Analyzer::new(&AnalyzerConfig::new(4, 2_500_000_000)).expect("valid analyzer");
    let mut seq = 0u64;
    g.bench_function("rx/record", |b| {
        b.iter(|| {
            frame[seq_at..seq_at + 6].copy_from_slice(&seq.to_be_bytes()[2..]);
            // Latencies spread over 1024 ticks so the histogram index varies.
            black_box(a.record(black_box(&frame), 1_000 + 2_000 + (seq & 1023)));
            seq += 1;
        })
    });
    g.finish();

    let st = a.stream(0).expect("stream 0");
    assert_eq!((st.duplicates, st.reordered, st.lost()), (0, 0, 0));
    assert_eq!(st.packets, seq);
    drop(burst);
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE);
    targets = pktgen
}
criterion_main!(benches);
