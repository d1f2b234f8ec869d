//! The Internet checksum (RFC 1071): the textbook loop vs `ferroplane::wire::checksum`.
//!
//! One group, `checksum`, throughput in bytes, on buffers of 64 (minimum frame), 576 (the
//! classic IPv4 minimum reassembly size), 1500 (Ethernet MTU) and 9000 (jumbo) bytes:
//!
//! * `naive/N`: 16 bits at a time into a `u32`, folded at the end (RFC 1071 §4.1's C loop);
//! * `ours/N`: [`internet_checksum`]: 8 bytes at a time into `u64` accumulators with
//!   end-around carry, folded once.
//!
//! Both return the same value (checked before measuring). Each buffer starts one byte into
//! its allocation, so neither loop gets an aligned start for free.
//!
//! A second group, `copy_checksum`, times what TCP output does with a segment's payload (copy
//! from the send ring into the mbuf, then checksum it) on 64, 576, 1460 (MSS at MTU 1500),
//! 9000 and 65000 bytes:
//!
//! * `memcpy+sum/N`: `copy_from_slice`, then [`sum`] over the copy (what `Transmit::emit` did);
//! * `fused/N`: [`copy_and_sum`], both in one pass.
//!
//! Source one byte and destination two bytes into their allocations (the payload of a TCP
//! segment with options sits at an offset ≡ 2 mod 8 in its mbuf).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferroplane::wire::checksum::{copy_and_sum, internet_checksum, sum};
use ferroplane_bench::{MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME};

/// Buffer sizes measured.
const SIZES: [usize; 4] = [64, 576, 1500, 9000];

/// Payload sizes of the copy group.
const COPY_SIZES: [usize; 5] = [64, 576, 1460, 9000, 65000];

/// The textbook loop: 16-bit big-endian words summed into a `u32`, carries folded at the end.
fn naive_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    if let [last] = words.remainder() {
        sum += (*last as u32) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `n` deterministic pseudo-random bytes (xorshift64 from `seed`).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

fn checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    let storage = random_bytes(9000 + 1, 0x2545_f491_4f6c_dd1d);
    for n in SIZES {
        let data = &storage[1..1 + n];
        assert_eq!(naive_checksum(data), internet_checksum(data));
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("naive", n), data, |b, d| {
            b.iter(|| naive_checksum(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("ours", n), data, |b, d| {
            b.iter(|| internet_checksum(black_box(d)))
        });
    }
    g.finish();
}

fn copy_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("copy_checksum");
    let max = COPY_SIZES[COPY_SIZES.len() - 1];
    let src = random_bytes(max + 1, 0x9e37_79b9_7f4a_7c15);
    let mut dst = vec![0u8; max + 2];
    for n in COPY_SIZES {
        let s = &src[1..1 + n];
        assert_eq!(copy_and_sum(&mut dst[2..2 + n], s), sum(s));
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("memcpy+sum", n), |b| {
            b.iter(|| {
                let d = &mut dst[2..2 + n];
                d.copy_from_slice(black_box(s));
                sum(black_box(d))
            })
        });
        g.bench_function(BenchmarkId::new("fused", n), |b| {
            b.iter(|| copy_and_sum(black_box(&mut dst[2..2 + n]), black_box(s)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(MEASUREMENT_TIME)
        .warm_up_time(WARM_UP_TIME)
        .sample_size(SAMPLE_SIZE);
    targets = checksum, copy_checksum
}
criterion_main!(benches);
