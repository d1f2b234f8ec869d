//! Mempool bulk get/put of one burst: per-lcore cache vs shared ring vs unregistered thread.
//!
//! Each iteration allocates [`BURST`] mbufs with `Mempool::alloc_bulk` and returns them with
//! `free_burst`; throughput is in mbufs. All three variants run in one group so they are
//! measured side by side:
//!
//! * `lcore_cache256`: the thread is lcore [`BENCH_LCORE`], the pool has a 256-object cache, so
//!   the steady state never touches the shared ring (the data-path case);
//! * `lcore_nocache`: same thread, pool with `cache_size = 0`: every get/put is a CAS on the
//!   shared MPMC ring;
//! * `no_lcore_cache256`: the cached pool again, but the thread has dropped its lcore id, so it
//!   falls back to the shared ring (what the main thread or a control thread gets).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferroplane::mem::free_burst;
use ferroplane::{lcore, Burst, Mempool};
use ferroplane_bench::{
    backing_label, bench_pool, BENCH_LCORE, BURST, MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME,
};

fn get_put(pool: &Mempool, burst: &mut Burst) {
    if !pool.alloc_bulk(burst, BURST) {
        panic!("pool {} ran dry: the benchmark leaks mbufs", pool.name());
    }
    black_box(&mut *burst);
    free_burst(burst);
}

fn mempool(c: &mut Criterion) {
    let cached = bench_pool("bench-cache256", 256);
    let uncached = bench_pool("bench-nocache", 0);
    eprintln!(
        "mempool: {} mbufs per pool, backed by {}",
        cached.capacity(),
        backing_label(&cached)
    );
    let mut burst = Burst::new();

    let mut g = c.benchmark_group("mempool");
    g.throughput(Throughput::Elements(BURST as u64));

    let guard = lcore::register(BENCH_LCORE).expect("benchmark thread takes an lcore id");
    g.bench_function("lcore_cache256", |b| {
        b.iter(|| get_put(&cached, &mut burst))
    });
    g.bench_function("lcore_nocache", |b| {
        b.iter(|| get_put(&uncached, &mut burst))
    });
    // Leave the lcore: from here on this thread has no id and takes the shared-ring path. The
    // objects parked in the lcore's cache stay there (and still count as available).
    drop(guard);
    assert_eq!(lcore::current(), None);
    g.bench_function("no_lcore_cache256", |b| {
        b.iter(|| get_put(&cached, &mut burst))
    });
    g.finish();

    let s = cached.stats();
    eprintln!(
        "mempool: cached pool: {} cache hits, {} refills, {} empty events",
        s.cache_hits, s.cache_refills, s.empty_events
    );
    assert_eq!(cached.in_use(), 0);
    assert_eq!(uncached.in_use(), 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE);
    targets = mempool
}
criterion_main!(benches);
