use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn a(s: &str) -> u32 {
    u32::from(ip(s))
}

fn small(tbl8_groups: u32) -> Lpm4 {
    Lpm4::new(
        "test",
        LpmConfig {
            max_rules: 1 << 20,
            tbl8_groups,
        },
    )
    .unwrap()
}

#[test]
fn is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Lpm4>();
}

#[test]
fn empty_table_misses() {
    let lpm = small(4);
    assert_eq!(lpm.lookup(0), None);
    assert_eq!(lpm.lookup(u32::MAX), None);
    assert_eq!(lpm.rules(), 0);
    assert_eq!(lpm.tbl8_groups_used(), 0);
    assert!(lpm.memory_bytes() >= (64 << 20) + 4 * 1024);
}

#[test]
fn default_route() {
    let mut lpm = small(4);
    lpm.add(ip("1.2.3.4"), 0, 9).unwrap(); // host bits ignored
    for x in [0, a("10.0.0.1"), a("255.255.255.255"), a("198.18.0.1")] {
        assert_eq!(lpm.lookup(x), Some(9));
    }
    lpm.add(ip("10.0.0.0"), 8, 1).unwrap();
    assert_eq!(lpm.lookup(a("10.1.1.1")), Some(1));
    assert_eq!(lpm.lookup(a("11.1.1.1")), Some(9));
    lpm.delete(ip("0.0.0.0"), 0).unwrap();
    assert_eq!(lpm.lookup(a("11.1.1.1")), None);
    assert_eq!(lpm.lookup(a("10.1.1.1")), Some(1));
    assert_eq!(lpm.rules(), 1);
}

#[test]
fn nesting_8_16_24_25_32() {
    let mut lpm = small(4);
    lpm.add(ip("10.0.0.0"), 8, 8).unwrap();
    lpm.add(ip("10.1.0.0"), 16, 16).unwrap();
    lpm.add(ip("10.1.2.0"), 24, 24).unwrap();
    lpm.add(ip("10.1.2.128"), 25, 25).unwrap();
    lpm.add(ip("10.1.2.200"), 32, 32).unwrap();
    assert_eq!(lpm.rules(), 5);
    assert_eq!(lpm.tbl8_groups_used(), 1);
    let cases = [
        ("9.255.255.255", None),
        ("10.0.0.1", Some(8)),
        ("10.255.255.255", Some(8)),
        ("10.1.0.0", Some(16)),
        ("10.1.255.255", Some(16)),
        ("10.1.2.0", Some(24)),
        ("10.1.2.127", Some(24)),
        ("10.1.2.128", Some(25)),
        ("10.1.2.199", Some(25)),
        ("10.1.2.200", Some(32)),
        ("10.1.2.201", Some(25)),
        ("10.1.2.255", Some(25)),
        ("10.1.3.0", Some(16)),
        ("11.0.0.0", None),
    ];
    for (x, want) in cases {
        assert_eq!(lpm.lookup(a(x)), want, "{x}");
    }
}

#[test]
fn overlapping_adds_in_both_orders_agree() {
    let rules = [
        ("10.0.0.0", 8, 1),
        ("10.1.0.0", 16, 2),
        ("10.1.2.0", 24, 3),
        ("10.1.2.64", 26, 4),
        ("10.1.2.96", 27, 5),
        ("10.1.2.100", 32, 6),
        ("10.1.0.0", 20, 7),
        ("0.0.0.0", 0, 8),
    ];
    let probes: Vec<u32> = (0..=255)
        .map(|h| a("10.1.2.0") | h)
        .chain([a("10.1.3.1"), a("10.1.16.1"), a("10.2.0.0"), a("12.0.0.0")])
        .collect();
    let mut fwd = small(4);
    for (p, d, nh) in rules {
        fwd.add(ip(p), d, nh).unwrap();
    }
    let mut rev = small(4);
    for (p, d, nh) in rules.iter().rev() {
        rev.add(ip(p), *d, *nh).unwrap();
    }
    for &x in &probes {
        assert_eq!(fwd.lookup(x), rev.lookup(x), "{}", Ipv4Addr::from(x));
    }
    assert_eq!(fwd.lookup(a("10.1.2.100")), Some(6));
    assert_eq!(fwd.lookup(a("10.1.2.101")), Some(5));
    assert_eq!(fwd.lookup(a("10.1.2.65")), Some(4));
    assert_eq!(fwd.lookup(a("10.1.2.1")), Some(3));
    assert_eq!(fwd.lookup(a("10.1.3.1")), Some(7));
    assert_eq!(fwd.lookup(a("10.1.16.1")), Some(2));
    assert_eq!(fwd.lookup(a("10.2.0.0")), Some(1));
    assert_eq!(fwd.lookup(a("12.0.0.0")), Some(8));
}

#[test]
fn adding_an_existing_prefix_replaces_its_next_hop() {
    let mut lpm = small(4);
    lpm.add(ip("10.1.0.0"), 16, 1).unwrap();
    lpm.add(ip("10.1.2.0"), 24, 2).unwrap();
    lpm.add(ip("10.1.2.0"), 28, 3).unwrap();
    lpm.add(ip("10.1.99.99"), 16, 11).unwrap();
    lpm.add(ip("10.1.2.0"), 28, 13).unwrap();
    assert_eq!(lpm.rules(), 3);
    assert_eq!(lpm.lookup(a("10.1.0.1")), Some(11));
    assert_eq!(lpm.lookup(a("10.1.2.1")), Some(13));
    assert_eq!(lpm.lookup(a("10.1.2.17")), Some(2));
    assert_eq!(lpm.tbl8_groups_used(), 1);
}

#[test]
fn delete_restores_less_specific_routes() {
    let mut lpm = small(4);
    lpm.add(ip("10.0.0.0"), 8, 8).unwrap();
    lpm.add(ip("10.1.0.0"), 16, 16).unwrap();
    lpm.add(ip("10.1.2.0"), 24, 24).unwrap();
    lpm.delete(ip("10.1.2.0"), 24).unwrap();
    assert_eq!(lpm.lookup(a("10.1.2.3")), Some(16));
    lpm.delete(ip("10.1.0.0"), 16).unwrap();
    assert_eq!(lpm.lookup(a("10.1.2.3")), Some(8));
    lpm.delete(ip("10.0.0.0"), 8).unwrap();
    assert_eq!(lpm.lookup(a("10.1.2.3")), None);
    assert_eq!(lpm.rules(), 0);
}

#[test]
fn deleting_a_24_keeps_the_28s_under_it() {
    let mut lpm = small(4);
    lpm.add(ip("10.1.0.0"), 16, 16).unwrap();
    lpm.add(ip("10.1.2.0"), 24, 24).unwrap();
    lpm.add(ip("10.1.2.16"), 28, 28).unwrap();
    lpm.add(ip("10.1.2.224"), 28, 29).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 1);
    lpm.delete(ip("10.1.2.0"), 24).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 1);
    assert_eq!(lpm.lookup(a("10.1.2.1")), Some(16));
    assert_eq!(lpm.lookup(a("10.1.2.17")), Some(28));
    assert_eq!(lpm.lookup(a("10.1.2.230")), Some(29));
    assert_eq!(lpm.lookup(a("10.1.2.100")), Some(16));
    // The /28s now fall back to the /16 when deleted, and the group is recycled.
    lpm.delete(ip("10.1.2.16"), 28).unwrap();
    assert_eq!(lpm.lookup(a("10.1.2.17")), Some(16));
    assert_eq!(lpm.tbl8_groups_used(), 1);
    lpm.delete(ip("10.1.2.224"), 28).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 0);
    assert_eq!(lpm.lookup(a("10.1.2.230")), Some(16));
    assert_eq!(lpm.tbl24()[(a("10.1.2.0") >> 8) as usize], leaf(16, 16));
}

#[test]
fn deleting_the_last_long_route_recycles_the_group() {
    let mut lpm = small(2);
    lpm.add(ip("10.1.2.0"), 24, 24).unwrap();
    lpm.add(ip("10.1.2.0"), 25, 25).unwrap();
    lpm.add(ip("10.1.2.128"), 26, 26).unwrap();
    lpm.add(ip("20.0.0.1"), 32, 32).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 2);
    lpm.delete(ip("10.1.2.0"), 25).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 2);
    lpm.delete(ip("10.1.2.128"), 26).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 1);
    assert_eq!(lpm.lookup(a("10.1.2.130")), Some(24));
    assert_eq!(lpm.tbl24()[(a("10.1.2.0") >> 8) as usize], leaf(24, 24));
    // A host route in an otherwise empty /24: the group empties back to "no route".
    lpm.delete(ip("20.0.0.1"), 32).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 0);
    assert_eq!(lpm.lookup(a("20.0.0.1")), None);
    assert_eq!(lpm.tbl24()[(a("20.0.0.1") >> 8) as usize], 0);
    // Recycled groups are reused, freshly filled.
    lpm.add(ip("30.0.0.0"), 25, 1).unwrap();
    lpm.add(ip("40.0.0.0"), 25, 2).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 2);
    assert_eq!(lpm.lookup(a("30.0.0.200")), None);
    assert_eq!(lpm.lookup(a("40.0.0.1")), Some(2));
    assert_eq!(lpm.lookup(a("40.0.0.129")), None);
}

#[test]
fn two_25s_with_one_next_hop_do_not_recycle_early() {
    // All 256 entries are equal (depth 25, same next hop) but they are not a /24 rule.
    let mut lpm = small(2);
    lpm.add(ip("10.0.0.0"), 16, 1).unwrap();
    lpm.add(ip("10.0.0.0"), 25, 7).unwrap();
    lpm.add(ip("10.0.0.128"), 25, 7).unwrap();
    lpm.add(ip("10.0.0.64"), 26, 7).unwrap();
    lpm.delete(ip("10.0.0.64"), 26).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 1);
    lpm.delete(ip("10.0.0.0"), 25).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 1);
    assert_eq!(lpm.lookup(a("10.0.0.1")), Some(1));
    assert_eq!(lpm.lookup(a("10.0.0.129")), Some(7));
    lpm.delete(ip("10.0.0.128"), 25).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 0);
    assert_eq!(lpm.lookup(a("10.0.0.129")), Some(1));
}

#[test]
fn delete_errors() {
    let mut lpm = small(2);
    lpm.add(ip("10.1.0.0"), 16, 1).unwrap();
    assert_eq!(lpm.delete(ip("10.1.0.0"), 17), Err(LpmError::NotFound));
    assert_eq!(lpm.delete(ip("10.2.0.0"), 16), Err(LpmError::NotFound));
    assert_eq!(lpm.delete(ip("10.1.0.0"), 33), Err(LpmError::BadDepth(33)));
    // Host bits are masked for delete too.
    lpm.delete(ip("10.1.7.7"), 16).unwrap();
    assert_eq!(lpm.delete(ip("10.1.0.0"), 16), Err(LpmError::NotFound));
    assert_eq!(lpm.rules(), 0);
}

#[test]
fn add_errors_say_what_is_valid() {
    let mut lpm = small(2);
    let e = lpm.add(ip("10.0.0.0"), 33, 1).unwrap_err();
    assert_eq!(e, LpmError::BadDepth(33));
    assert!(e.to_string().contains("0..=32"), "{e}");
    let e = lpm.add(ip("10.0.0.0"), 8, 1 << 24).unwrap_err();
    assert_eq!(e, LpmError::NextHopTooLarge(1 << 24));
    assert!(e.to_string().contains("16777215"), "{e}");
    lpm.add(ip("10.0.0.0"), 8, LPM_MAX_NEXT_HOP).unwrap();
    assert_eq!(lpm.lookup(a("10.0.0.0")), Some(LPM_MAX_NEXT_HOP));
    assert_eq!(lpm.rules(), 1);
    let e = Lpm4::new(
        "too-big",
        LpmConfig {
            max_rules: 1,
            tbl8_groups: LPM_MAX_TBL8_GROUPS + 1,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("tbl8_groups"), "{e}");
}

#[test]
fn max_rules_is_enforced_but_replacing_is_allowed() {
    let mut lpm = Lpm4::new(
        "max",
        LpmConfig {
            max_rules: 2,
            tbl8_groups: 1,
        },
    )
    .unwrap();
    lpm.add(ip("10.0.0.0"), 8, 1).unwrap();
    lpm.add(ip("11.0.0.0"), 8, 2).unwrap();
    assert_eq!(lpm.add(ip("12.0.0.0"), 8, 3), Err(LpmError::TooManyRules));
    assert_eq!(lpm.lookup(a("12.0.0.1")), None);
    lpm.add(ip("11.0.0.0"), 8, 4).unwrap();
    assert_eq!(lpm.lookup(a("11.0.0.1")), Some(4));
    lpm.delete(ip("10.0.0.0"), 8).unwrap();
    lpm.add(ip("12.0.0.0"), 8, 3).unwrap();
    assert_eq!(lpm.rules(), 2);
}

#[test]
fn tbl8_exhaustion_fails_cleanly() {
    let mut lpm = small(2);
    lpm.add(ip("10.0.0.0"), 8, 8).unwrap();
    lpm.add(ip("10.0.1.0"), 25, 1).unwrap();
    lpm.add(ip("10.0.2.0"), 25, 2).unwrap();
    assert_eq!(lpm.tbl8_groups_used(), 2);
    assert_eq!(lpm.add(ip("10.0.3.0"), 25, 3), Err(LpmError::Tbl8Exhausted));
    assert!(lpm
        .add(ip("10.0.3.0"), 25, 3)
        .unwrap_err()
        .to_string()
        .contains("tbl8_groups"));
    assert_eq!(lpm.rules(), 3);
    assert_eq!(lpm.tbl8_groups_used(), 2);
    assert_eq!(lpm.lookup(a("10.0.3.1")), Some(8));
    assert_eq!(lpm.lookup(a("10.0.1.1")), Some(1));
    assert_eq!(lpm.lookup(a("10.0.2.200")), Some(8));
    // The failed rule was not recorded.
    assert_eq!(lpm.delete(ip("10.0.3.0"), 25), Err(LpmError::NotFound));
    // Long prefixes in a /24 that already has a group still fit; short ones always do.
    lpm.add(ip("10.0.1.128"), 26, 4).unwrap();
    lpm.add(ip("10.0.3.0"), 24, 5).unwrap();
    assert_eq!(lpm.lookup(a("10.0.1.130")), Some(4));
    assert_eq!(lpm.lookup(a("10.0.3.1")), Some(5));
    // Freeing a group makes room again.
    lpm.delete(ip("10.0.2.0"), 25).unwrap();
    lpm.add(ip("10.0.3.0"), 25, 3).unwrap();
    assert_eq!(lpm.lookup(a("10.0.3.1")), Some(3));
    assert_eq!(lpm.lookup(a("10.0.3.129")), Some(5));
    assert_eq!(lpm.lookup(a("10.0.2.1")), Some(8));
}

#[test]
fn zero_tbl8_groups_allows_only_short_prefixes() {
    let mut lpm = small(0);
    lpm.add(ip("10.0.0.0"), 24, 1).unwrap();
    assert_eq!(lpm.add(ip("10.0.0.0"), 32, 2), Err(LpmError::Tbl8Exhausted));
    assert_eq!(lpm.lookup(a("10.0.0.0")), Some(1));
}

#[test]
fn bulk_lookup_writes_miss_and_counts_hits() {
    let mut lpm = small(2);
    lpm.add(ip("10.0.0.0"), 8, 1).unwrap();
    lpm.add(ip("10.0.0.128"), 25, 2).unwrap();
    let addrs: Vec<u32> = (0..100u32)
        .map(|i| match i % 4 {
            0 => a("10.0.0.200"),
            1 => a("10.0.0.1"),
            2 => a("10.9.9.9"),
            _ => a("11.0.0.1"),
        })
        .collect();
    let mut out = vec![0; 103];
    assert_eq!(lpm.lookup_bulk(&addrs, &mut out), 75);
    for (i, &o) in out[..100].iter().enumerate() {
        assert_eq!(o, lpm.lookup(addrs[i]).unwrap_or(LPM_MISS));
    }
    assert_eq!(&out[100..], &[0, 0, 0]);
    assert_eq!(lpm.lookup_bulk(&[], &mut []), 0);
}

#[test]
#[should_panic(expected = "out has")]
fn bulk_lookup_needs_room() {
    let lpm = small(0);
    lpm.lookup_bulk(&[1, 2], &mut [0]);
}

/// The reference: rules in a vector, longest match by linear scan.
#[derive(Default)]
struct Naive(Vec<(u32, u8, u32)>);

impl Naive {
    fn add(&mut self, ip: u32, depth: u8, nh: u32) {
        let ip = ip & mask(depth);
        match self.0.iter_mut().find(|r| r.0 == ip && r.1 == depth) {
            Some(r) => r.2 = nh,
            None => self.0.push((ip, depth, nh)),
        }
    }

    fn delete(&mut self, ip: u32, depth: u8) -> bool {
        let ip = ip & mask(depth);
        let n = self.0.len();
        self.0.retain(|r| !(r.0 == ip && r.1 == depth));
        self.0.len() != n
    }

    fn lookup(&self, addr: u32) -> Option<u32> {
        self.0
            .iter()
            .filter(|r| addr & mask(r.1) == r.0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u32, u8, u32),
    /// Delete the n-th (modulo) current rule, or a random one when there are none.
    DeleteExisting(usize),
    Delete(u32, u8),
}

/// Addresses clustered in a few /20s and one /24 so prefixes nest, overlap and fill tbl8
/// groups, plus some anywhere.
fn address() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => (0..256u32).prop_map(|low| 0xc612_ff00 | low),
        3 => (0..4u32, 0..(1u32 << 12)).prop_map(|(c, low)| 0xc612_0000 + (c << 20) + low),
        1 => any::<u32>(),
    ]
}

fn depth() -> impl Strategy<Value = u8> {
    prop_oneof![
        1 => 0..8u8,
        4 => 8..=24u8,
        5 => 25..=32u8,
    ]
}

/// Mostly a few small next hops, so that neighbouring rules often carry the same one (a table
/// must not merge them), sometimes any.
fn next_hop() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => 0..4u32,
        1 => 0..=LPM_MAX_NEXT_HOP,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (address(), depth(), next_hop()).prop_map(|(a, d, n)| Op::Add(a, d, n)),
        3 => any::<usize>().prop_map(Op::DeleteExisting),
        1 => (address(), depth()).prop_map(|(a, d)| Op::Delete(a, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_naive_reference(
        ops in prop::collection::vec(op(), 1..200),
        random in prop::collection::vec(address(), 0..200),
        hosts in prop::collection::vec(any::<u32>(), 1..8),
    ) {
        const GROUPS: u32 = 24;
        let mut lpm = small(GROUPS);
        let mut naive = Naive::default();
        for op in ops {
            match op {
                Op::Add(a, d, nh) => match lpm.add(Ipv4Addr::from(a), d, nh) {
                    Ok(()) => naive.add(a, d, nh),
                    Err(LpmError::Tbl8Exhausted) => {
                        prop_assert!(d > 24);
                        prop_assert_eq!(lpm.tbl8_groups_used(), GROUPS as usize);
                    }
                    Err(e) => prop_assert!(false, "add failed: {e}"),
                },
                Op::DeleteExisting(n) if !naive.0.is_empty() => {
                    let (a, d, _) = naive.0[n % naive.0.len()];
                    prop_assert!(naive.delete(a, d));
                    prop_assert_eq!(lpm.delete(Ipv4Addr::from(a), d), Ok(()));
                }
                Op::DeleteExisting(_) => {}
                Op::Delete(a, d) => {
                    let want = if naive.delete(a, d) { Ok(()) } else { Err(LpmError::NotFound) };
                    prop_assert_eq!(lpm.delete(Ipv4Addr::from(a), d), want);
                }
            }
            prop_assert_eq!(lpm.rules(), naive.0.len());
        }
        // Every group in use must hold a prefix longer than /24 (recycling is complete).
        let long_24s: HashSet<u32> = naive.0.iter().filter(|r| r.1 > 24).map(|r| r.0 >> 8).collect();
        prop_assert_eq!(lpm.tbl8_groups_used(), long_24s.len());

        let mut probes = random;
        for &(p, d, _) in &naive.0 {
            let m = mask(d);
            probes.push(p);
            probes.push(p | !m);
            probes.extend(hosts.iter().map(|h| p | (h & !m)));
            probes.push(p.wrapping_sub(1));
            probes.push((p | !m).wrapping_add(1));
        }
        for &x in &probes {
            prop_assert_eq!(lpm.lookup(x), naive.lookup(x), "address {}", Ipv4Addr::from(x));
        }
        let mut out = vec![0; probes.len()];
        let hits = lpm.lookup_bulk(&probes, &mut out);
        let single: Vec<u32> = probes.iter().map(|&x| lpm.lookup(x).unwrap_or(LPM_MISS)).collect();
        prop_assert_eq!(&out, &single);
        prop_assert_eq!(hits, single.iter().filter(|&&o| o != LPM_MISS).count());
    }
}

/// SplitMix64: a fixed-seed generator for the scale test (the bench has the same one).
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

/// A prefix length drawn roughly like a full Internet table: half /24s, most of the rest
/// /16–/23, 0.5 % shorter (mostly /12–/15, 0.01 % /8–/11), 3 % longer than /24.
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

/// `n` distinct random routes `(masked prefix, depth, next hop)`, deterministic in `seed`.
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

/// 1M (or `FERROPLANE_LPM_SCALE` routes) realistic routes, then 100k lookups checked against
/// per-depth hash maps probed from /32 down to /0.
#[test]
fn scale_one_million_routes() {
    let n: usize = std::env::var("FERROPLANE_LPM_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t0 = std::time::Instant::now();
    let routes = random_routes(0x5eed_1bf0, n);
    let mut lpm = Lpm4::new(
        "scale",
        LpmConfig {
            max_rules: n as u32,
            tbl8_groups: 49_152,
        },
    )
    .unwrap();
    let mut by_depth: Vec<HashMap<u32, u32>> = vec![HashMap::new(); 33];
    for &(p, d, nh) in &routes {
        lpm.add(Ipv4Addr::from(p), d, nh).unwrap();
        by_depth[usize::from(d)].insert(p, nh);
    }
    let t_add = t0.elapsed();
    assert_eq!(lpm.rules(), n);
    let long_24s: HashSet<u32> = routes
        .iter()
        .filter(|r| r.1 > 24)
        .map(|r| r.0 >> 8)
        .collect();
    assert_eq!(lpm.tbl8_groups_used(), long_24s.len());

    let reference = |x: u32| {
        (0..=32u8)
            .rev()
            .find_map(|d| by_depth[usize::from(d)].get(&(x & mask(d))).copied())
    };
    let mut rng = SplitMix64(42);
    let probes: Vec<u32> = (0..100_000)
        .map(|i| {
            let r = rng.next();
            if i % 2 == 0 {
                r as u32
            } else {
                let (p, d, _) = routes[(r >> 32) as usize % routes.len()];
                p | (r as u32 & !mask(d))
            }
        })
        .collect();
    let mut hits = 0;
    for &x in &probes {
        let got = lpm.lookup(x);
        assert_eq!(got, reference(x), "address {}", Ipv4Addr::from(x));
        hits += usize::from(got.is_some());
    }
    let mut out = vec![0; probes.len()];
    assert_eq!(lpm.lookup_bulk(&probes, &mut out), hits);
    eprintln!(
        "lpm scale: {n} routes added in {t_add:?}, {} tbl8 groups, {} MiB, total {:?}",
        lpm.tbl8_groups_used(),
        lpm.memory_bytes() >> 20,
        t0.elapsed()
    );
}
