//! Rings: ferroplane's SPSC and MPMC rings against `crossbeam_queue::ArrayQueue`, with `u64`
//! items and a capacity of [`RING_CAPACITY`].
//!
//! Group `ring_1t` (one thread, one iteration = a round trip of one burst of [`BURST`] items:
//! enqueue 32, then dequeue 32; throughput in items):
//!
//! * `spsc_slice`, `mpmc_slice`: `enqueue_slice` / `dequeue_slice` (copying `Copy` items);
//! * `spsc_batch`, `mpmc_batch`: `enqueue_burst` / `dequeue_burst` with a `Batch<u64, 32>`
//!   (the API the data path uses for mbufs);
//! * `spsc_item`, `mpmc_item`: 32 × `enqueue` then 32 × `dequeue` (per-item calls);
//! * `crossbeam_arrayqueue_item`: 32 × `push` then 32 × `pop` (`ArrayQueue` has no burst API).
//!
//! Group `ring_2t` (two threads: a producer thread and the consumer on the benchmark thread;
//! one iteration = one burst of 32 items crossing the ring; each sample moves exactly
//! `iters × 32` items and is timed on the consumer from the start barrier to the last item):
//!
//! * `spsc_slice`: ours, bursts of up to 32 with `enqueue_slice` / `dequeue_slice`;
//! * `mpmc_slice`: ours, the MPMC ring used as 1 producer / 1 consumer, same calls;
//! * `crossbeam_arrayqueue`: `push` / `pop` one item at a time.
//!
//! Both threads are scoped (joined before the sample ends), move a fixed number of items, and
//! give up with a panic if the other side makes no progress for `STALL_LIMIT`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use ferroplane::ring::{spsc, Consumer, MpmcRing, Producer};
use ferroplane::Batch;
use ferroplane_bench::{Spin, BURST, MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME};

/// Slots in every ring under test.
const RING_CAPACITY: usize = 1024;

/// `[0, 1, ..., BURST - 1]`: the payload of the single-thread round trips.
fn burst_items() -> [u64; BURST] {
    std::array::from_fn(|i| i as u64)
}

fn ring_single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_1t");
    g.throughput(Throughput::Elements(BURST as u64));

    let src = burst_items();
    let mut dst = [0u64; BURST];

    let (mut p, mut q) = spsc::<u64>(RING_CAPACITY).expect("power of two");
    g.bench_function("spsc_slice", |b| {
        b.iter(|| {
            assert_eq!(p.enqueue_slice(black_box(&src)), BURST);
            assert_eq!(q.dequeue_slice(&mut dst), BURST);
            black_box(&dst);
        })
    });

    let mut batch: Batch<u64, BURST> = Batch::new();
    for x in src {
        batch.push(x).expect("batch has room");
    }
    g.bench_function("spsc_batch", |b| {
        b.iter(|| {
            assert_eq!(p.enqueue_burst(black_box(&mut batch)), BURST);
            assert_eq!(q.dequeue_burst(&mut batch, BURST), BURST);
            black_box(&batch);
        })
    });

    g.bench_function("spsc_item", |b| {
        b.iter(|| {
            for &x in black_box(&src) {
                assert!(p.enqueue(x).is_ok());
            }
            for d in dst.iter_mut() {
                *d = q.dequeue().expect("item enqueued above");
            }
            black_box(&dst);
        })
    });
    drop((p, q));

    let ring = MpmcRing::<u64>::new(RING_CAPACITY).expect("power of two");
    g.bench_function("mpmc_slice", |b| {
        b.iter(|| {
            assert_eq!(ring.enqueue_slice(black_box(&src)), BURST);
            assert_eq!(ring.dequeue_slice(&mut dst), BURST);
            black_box(&dst);
        })
    });

    g.bench_function("mpmc_batch", |b| {
        b.iter(|| {
            assert_eq!(ring.enqueue_burst(black_box(&mut batch)), BURST);
            assert_eq!(ring.dequeue_burst(&mut batch, BURST), BURST);
            black_box(&batch);
        })
    });

    g.bench_function("mpmc_item", |b| {
        b.iter(|| {
            for &x in black_box(&src) {
                assert!(ring.enqueue(x).is_ok());
            }
            for d in dst.iter_mut() {
                *d = ring.dequeue().expect("item enqueued above");
            }
            black_box(&dst);
        })
    });

    let aq = ArrayQueue::<u64>::new(RING_CAPACITY);
    g.bench_function("crossbeam_arrayqueue_item", |b| {
        b.iter(|| {
            for &x in black_box(&src) {
                assert!(aq.push(x).is_ok());
            }
            for d in dst.iter_mut() {
                *d = aq.pop().expect("item pushed above");
            }
            black_box(&dst);
        })
    });
    g.finish();
}

/// Runs `producer` on a scoped thread and `consumer` on this one, both released by one
/// barrier; returns the consumer's elapsed time. The producer is joined before returning.
fn timed_pair(producer: impl FnOnce() + Send, consumer: impl FnOnce()) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            start.wait();
            producer();
        });
        start.wait();
        let t0 = Instant::now();
        consumer();
        let elapsed = t0.elapsed();
        if h.join().is_err() {
            panic!("producer thread panicked");
        }
        elapsed
    })
}

/// Sum of `0..n`, what the consumer must have seen.
fn expected_sum(n: u64) -> u64 {
    n.wrapping_mul(n.wrapping_sub(1)) / 2
}

/// Pushes `0..total` in bursts of up to [`BURST`] through `enqueue` (which returns how many of
/// the offered items it took).
fn produce_bursts(total: u64, mut enqueue: impl FnMut(&[u64]) -> usize) {
    let mut spin = Spin::new();
    let mut buf = [0u64; BURST];
    let mut next = 0u64;
    while next < total {
        let n = (total - next).min(BURST as u64) as usize;
        for (i, x) in buf[..n].iter_mut().enumerate() {
            *x = next + i as u64;
        }
        let mut off = 0;
        while off < n {
            let k = enqueue(&buf[off..n]);
            if k == 0 {
                spin.idle("ring_2t producer");
            } else {
                spin.progress();
                off += k;
            }
        }
        next += n as u64;
    }
}

/// Takes `total` items in bursts of up to [`BURST`] through `dequeue` (which fills the front of
/// the buffer and returns the count) and checks their sum.
fn consume_bursts(total: u64, mut dequeue: impl FnMut(&mut [u64]) -> usize) {
    let mut spin = Spin::new();
    let mut buf = [0u64; BURST];
    let mut got = 0u64;
    let mut sum = 0u64;
    while got < total {
        let want = (total - got).min(BURST as u64) as usize;
        let k = dequeue(&mut buf[..want]);
        if k == 0 {
            spin.idle("ring_2t consumer");
            continue;
        }
        spin.progress();
        sum = buf[..k].iter().fold(sum, |a, &x| a.wrapping_add(x));
        got += k as u64;
    }
    assert_eq!(sum, expected_sum(total), "items lost or duplicated");
}

fn spsc_pair(p: &mut Producer<u64>, q: &mut Consumer<u64>, total: u64) -> Duration {
    timed_pair(
        || produce_bursts(total, |s| p.enqueue_slice(s)),
        || consume_bursts(total, |d| q.dequeue_slice(d)),
    )
}

fn mpmc_pair(ring: &MpmcRing<u64>, total: u64) -> Duration {
    timed_pair(
        || produce_bursts(total, |s| ring.enqueue_slice(s)),
        || consume_bursts(total, |d| ring.dequeue_slice(d)),
    )
}

fn arrayqueue_pair(q: &ArrayQueue<u64>, total: u64) -> Duration {
    timed_pair(
        || {
            let mut spin = Spin::new();
            for i in 0..total {
                let mut v = i;
                while let Err(back) = q.push(v) {
                    v = back;
                    spin.idle("ring_2t producer");
                }
                spin.progress();
            }
        },
        || {
            let mut spin = Spin::new();
            let mut got = 0u64;
            let mut sum = 0u64;
            while got < total {
                match q.pop() {
                    Some(x) => {
                        spin.progress();
                        sum = sum.wrapping_add(x);
                        got += 1;
                    }
                    None => spin.idle("ring_2t consumer"),
                }
            }
            assert_eq!(sum, expected_sum(total), "items lost or duplicated");
        },
    )
}

fn ring_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_2t");
    g.throughput(Throughput::Elements(BURST as u64));
    let items = |iters: u64| iters * BURST as u64;

    let (mut p, mut q) = spsc::<u64>(RING_CAPACITY).expect("power of two");
    g.bench_function("spsc_slice", |b| {
        b.iter_custom(|iters| spsc_pair(&mut p, &mut q, items(iters)))
    });
    assert!(q.is_empty());

    let ring = MpmcRing::<u64>::new(RING_CAPACITY).expect("power of two");
    g.bench_function("mpmc_slice", |b| {
        b.iter_custom(|iters| mpmc_pair(&ring, items(iters)))
    });
    assert!(ring.is_empty());

    let aq = ArrayQueue::<u64>::new(RING_CAPACITY);
    g.bench_function("crossbeam_arrayqueue", |b| {
        b.iter_custom(|iters| arrayqueue_pair(&aq, items(iters)))
    });
    assert!(aq.is_empty());
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE);
    targets = ring_single_thread, ring_two_threads
}
criterion_main!(benches);
