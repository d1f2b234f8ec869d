//! IPv4 longest-prefix match: ferroplane's DIR-24-8 [`Lpm4`] against the `prefix-trie` crate's
//! `PrefixMap` (a compressed binary trie), both loaded with the same 1,000,000 random routes
//! (shaped like a full Internet table: about half /24s, most of the rest /16–/23, ~3 % longer
//! than /24; the generator is the one of the `lpm` scale unit test).
//!
//! Group `lpm` (one iteration = [`BURST`] lookups; throughput in lookups):
//!
//! * `lookup/{random,inside}`: 32 × [`Lpm4::lookup`];
//! * `lookup_bulk/{random,inside}`: one [`Lpm4::lookup_bulk`] of 32 addresses;
//! * `prefix_trie/{random,inside}`: 32 × `PrefixMap::get_lpm` of a /32.
//!
//! `random` addresses are uniform over the whole space; `inside` addresses are random hosts of
//! random routes (each one matches; ~3 % go through a tbl8 group). Each iteration takes the next
//! 32 of [`ADDRS`] addresses, so the working set is the table, not a few cache lines.

use std::collections::HashSet;
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferroplane::lpm::{Lpm4, LpmConfig, LPM_MAX_NEXT_HOP};
use ferroplane_bench::{BURST, MEASUREMENT_TIME, SAMPLE_SIZE, WARM_UP_TIME};
use prefix_trie::PrefixMap;

/// Routes in every table.
const ROUTES: usize = 1_000_000;

/// Addresses per probe set (a power of two; 256 KiB, cycled through in bursts).
const ADDRS: usize = 1 << 16;

/// SplitMix64, as in the unit tests.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn mask(depth: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(depth)).unwrap_or(0)
}

/// Same distribution as `route_depth` in `framework/src/lpm/tests.rs`: half /24s, most of
/// the rest /16–/23, 0.5 % shorter (mostly /12–/15), 3 % longer than /24.
fn route_depth(r: u64) -> u8 {
    let pick = (r / 10_000) as u8; // a second, independent draw
    match r % 10_000 {
        0 => 8 + pick % 4,           // 0.01 % /8–/11
        1..=49 => 12 + pick % 4,     // 0.49 % /12–/15
        50..=599 => 16 + pick % 4,   // 5.5 %  /16–/19
        600..=1999 => 20 + pick % 2, // 14 %   /20–/21
        2000..=3399 => 22,           // 14 %
        3400..=4699 => 23,           // 13 %
        4700..=9699 => 24,           // 50 %
        _ => 25 + pick % 8,          // 3 %    /25–/32
    }
}

/// `n` distinct random routes `(masked prefix, depth, next hop)`, as in the unit tests.
fn random_routes(seed: u64, n: usize) -> Vec<(u32, u8, u32)> {
    let mut rng = SplitMix64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rng.next();
        let d = route_depth(r >> 32);
        let p = (r as u32) & mask(d);
        if seen.insert((p, d)) {
            out.push((p, d, out.len() as u32 & LPM_MAX_NEXT_HOP));
        }
    }
    out
}

fn lpm(c: &mut Criterion) {
    let routes = random_routes(0x5eed_1bf0, ROUTES);
    let mut table = Lpm4::new(
        "bench",
        LpmConfig {
            max_rules: ROUTES as u32,
            tbl8_groups: 49_152,
        },
    )
    .expect("lpm table");
    let mut trie: PrefixMap<(u32, u8), u32> = PrefixMap::new();
    for &(p, d, nh) in &routes {
        table.add(Ipv4Addr::from(p), d, nh).expect("route fits");
        trie.insert((p, d), nh);
    }
    eprintln!(
        "lpm: {} routes, {} tbl8 groups, {} MiB ({:?})",
        table.rules(),
        table.tbl8_groups_used(),
        table.memory_bytes() >> 20,
        table
    );

    let mut rng = SplitMix64(7);
    let random: Vec<u32> = (0..ADDRS).map(|_| rng.next() as u32).collect();
    let inside: Vec<u32> = (0..ADDRS)
        .map(|_| {
            let r = rng.next();
            let (p, d, _) = routes[(r >> 32) as usize % routes.len()];
            p | (r as u32 & !mask(d))
        })
        .collect();
    for &x in random.iter().chain(&inside).step_by(97) {
        let want = trie.get_lpm(&(x, 32)).map(|(_, &nh)| nh);
        assert_eq!(
            table.lookup(x),
            want,
            "tables disagree on {}",
            Ipv4Addr::from(x)
        );
    }

    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(BURST as u64));
    for (set, addrs) in [("random", &random), ("inside", &inside)] {
        let hits = addrs.iter().filter(|&&x| table.lookup(x).is_some()).count();
        eprintln!(
            "lpm: {set}: {:.1} % of addresses match",
            hits as f64 * 100.0 / ADDRS as f64
        );
        let bursts: Vec<&[u32]> = addrs.chunks_exact(BURST).collect();

        let mut i = 0;
        g.bench_function(BenchmarkId::new("lookup", set), |b| {
            b.iter(|| {
                let burst = bursts[i];
                i = (i + 1) % bursts.len();
                let mut acc = 0u32;
                for &x in burst {
                    acc = acc.wrapping_add(table.lookup(black_box(x)).unwrap_or(0));
                }
                black_box(acc)
            })
        });

        let mut out = [0u32; BURST];
        let mut i = 0;
        g.bench_function(BenchmarkId::new("lookup_bulk", set), |b| {
            b.iter(|| {
                let burst = bursts[i];
                i = (i + 1) % bursts.len();
                black_box(table.lookup_bulk(black_box(burst), &mut out));
                black_box(&out);
            })
        });

        let mut i = 0;
        g.bench_function(BenchmarkId::new("prefix_trie", set), |b| {
            b.iter(|| {
                let burst = bursts[i];
                i = (i + 1) % bursts.len();
                let mut acc = 0u32;
                for &x in burst {
                    let nh = trie.get_lpm(&(black_box(x), 32)).map(|(_, &nh)| nh);
                    acc = acc.wrapping_add(nh.unwrap_or(0));
                }
                black_box(acc)
            })
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
    targets = lpm
}
criterion_main!(benches);
