//! Single-mbuf operations on the data-path configuration (lcore thread, 256-object cache):
//!
//! * `alloc_drop`: `Mempool::alloc` + drop (one get and one put through the lcore cache);
//! * `alloc_append64_prepend14_drop`: the same plus writing a 64-byte payload and prepending a
//!   14-byte Ethernet header, i.e. building a small packet;
//! * `clone_into_drop`: `Mbuf::clone_into` of a 64-byte packet (a header from the pool plus a
//!   refcount increment) and dropping the clone (refcount decrement, header back to the pool);
//! * `chain3_alloc_free`: allocating three mbufs, chaining them into one packet and dropping
//!   the chain (three segment frees).
//!
//! Throughput is one operation (one packet) per iteration.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferroplane::{lcore, Mbuf, Mempool};
use ferroplane_bench::{
    backing_label, bench_pool, BENCH_LCORE, MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME,
};

fn alloc(pool: &Mempool) -> Mbuf {
    match pool.alloc() {
        Some(m) => m,
        None => panic!("pool {} ran dry: the benchmark leaks mbufs", pool.name()),
    }
}

fn mbuf(c: &mut Criterion) {
    let pool = bench_pool("bench-mbuf", 256);
    eprintln!("mbuf: pool backed by {}", backing_label(&pool));
    let _lcore = lcore::register(BENCH_LCORE).expect("benchmark thread takes an lcore id");

    // The packet that `clone_into_drop` clones: 64 bytes of payload.
    let mut original = alloc(&pool);
    original
        .append(64)
        .expect("a fresh mbuf has tailroom")
        .fill(0xab);

    let mut g = c.benchmark_group("mbuf");
    g.throughput(Throughput::Elements(1));

    g.bench_function("alloc_drop", |b| {
        b.iter(|| {
            let m = alloc(&pool);
            black_box(&m);
            drop(m);
        })
    });

    g.bench_function("alloc_append64_prepend14_drop", |b| {
        b.iter(|| {
            let mut m = alloc(&pool);
            m.append(64).expect("tailroom").fill(0x5a);
            m.prepend(14).expect("headroom").fill(0xee);
            black_box(&m);
            drop(m);
        })
    });

    g.bench_function("clone_into_drop", |b| {
        b.iter(|| {
            let c = original.clone_into(&pool).expect("pool has room");
            black_box(&c);
            drop(c);
        })
    });

    g.bench_function("chain3_alloc_free", |b| {
        b.iter(|| {
            let mut head = alloc(&pool);
            head.chain(alloc(&pool)).expect("short chain");
            head.chain(alloc(&pool)).expect("short chain");
            black_box(&head);
            drop(head);
        })
    });
    g.finish();

    assert_eq!(original.refcnt(), 1, "every clone was dropped");
    drop(original);
    assert_eq!(pool.in_use(), 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE);
    targets = mbuf
}
criterion_main!(benches);
