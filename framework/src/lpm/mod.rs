//! IPv4 longest-prefix match: a DIR-24-8 table like DPDK's `rte_lpm`.
//!
//! # Layout
//!
//! * `tbl24`: 2^24 entries (64 MiB), indexed by the top 24 bits of the address. An entry either
//!   holds the answer for the whole /24 (a next hop and the depth of the rule it came from) or
//!   is *extended*: it names a tbl8 group.
//! * `tbl8`: groups of 256 entries, one group per /24 that holds a prefix longer than /24,
//!   indexed by the last byte of the address. The number of groups is fixed at creation
//!   ([`LpmConfig::tbl8_groups`]); free groups sit on a free list, and a group goes back to it
//!   as soon as its /24 no longer holds any prefix longer than /24 (DPDK's tbl8 recycle).
//! * a rule table (one hash map per depth 0..=32, masked prefix → next hop), only read by
//!   updates: [`Lpm4::delete`] refills the range of the deleted rule from the next less specific
//!   rule, exactly as DPDK does.
//!
//! Every table entry is one `u32`: bit 31 valid, bit 30 extended, bits 24..=29 the depth of the
//! rule, bits 0..=23 the next hop (or, when extended, the tbl8 group index). A lookup is one
//! tbl24 load and, for addresses under a longer-than-/24 prefix, one tbl8 load.
//!
//! Both tables live in [`Arena`]s, on 2 MiB huge pages when available: with 64 MiB of tbl24 and
//! random destination addresses, TLB misses dominate the lookup cost on 4 KiB pages.
//!
//! # Sharing between lcores
//!
//! Lookups take `&self` and [`Lpm4`] is `Send + Sync`: build the table at start, wrap it in an
//! `Arc<Lpm4>` and give each lcore a clone; the data path only reads it. Updates take
//! `&mut self`, so they are only possible while nobody else holds the table. Live updates under
//! traffic (RCU-style, with tbl8 groups reclaimed after a grace period) are out of scope for now.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use ferroplane::lpm::{Lpm4, LpmConfig, LPM_MISS};
//!
//! let mut lpm = Lpm4::new("doc", LpmConfig::default()).unwrap();
//! lpm.add(Ipv4Addr::new(198, 18, 0, 0), 15, 1).unwrap();
//! lpm.add(Ipv4Addr::new(198, 18, 1, 128), 25, 2).unwrap();
//! assert_eq!(lpm.lookup(u32::from(Ipv4Addr::new(198, 18, 1, 1))), Some(1));
//! assert_eq!(lpm.lookup(u32::from(Ipv4Addr::new(198, 18, 1, 200))), Some(2));
//! assert_eq!(lpm.lookup(u32::from(Ipv4Addr::new(10, 0, 0, 1))), None);
//!
//! let addrs = [0xc612_0101, 0x0a00_0001];
//! let mut out = [0; 2];
//! assert_eq!(lpm.lookup_bulk(&addrs, &mut out), 1);
//! assert_eq!(out, [1, LPM_MISS]);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;

use crate::mem::{Arena, HugePolicy};

#[cfg(test)]
mod tests;

/// What [`Lpm4::lookup_bulk`] writes for an address that matches no rule.
pub const LPM_MISS: u32 = u32::MAX;

/// The largest next hop a rule can carry (next hops are 24-bit).
pub const LPM_MAX_NEXT_HOP: u32 = VALUE_MASK;

/// The largest number of tbl8 groups a table can have (group indices are 24-bit).
pub const LPM_MAX_TBL8_GROUPS: u32 = 1 << 24;

/// The largest prefix length.
pub const LPM_MAX_DEPTH: u8 = 32;

const TBL24_ENTRIES: usize = 1 << 24;
const TBL8_GROUP_ENTRIES: usize = 256;

const VALID: u32 = 1 << 31;
const EXT: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const DEPTH_MASK: u32 = 0x3f << DEPTH_SHIFT;
const VALUE_MASK: u32 = (1 << 24) - 1;

/// A valid, non-extended entry for a rule of `depth` with `next_hop`.
#[inline]
fn leaf(depth: u8, next_hop: u32) -> u32 {
    VALID | (u32::from(depth) << DEPTH_SHIFT) | next_hop
}

#[inline]
fn depth_of(entry: u32) -> u8 {
    ((entry & DEPTH_MASK) >> DEPTH_SHIFT) as u8
}

/// The network mask of a prefix length (`0` for the default route).
#[inline]
fn mask(depth: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(depth)).unwrap_or(0)
}

/// Whether a rule of `depth` may overwrite `entry` (which is not extended): the entry is empty,
/// or comes from a rule at most as specific.
#[inline]
fn overwritable(entry: u32, depth: u8) -> bool {
    entry & VALID == 0 || depth_of(entry) <= depth
}

/// Whether `entry` was written by the rule of `depth` covering it.
#[inline]
fn owned_by(entry: u32, depth: u8) -> bool {
    entry & VALID != 0 && depth_of(entry) == depth
}

/// Sizes of an [`Lpm4`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpmConfig {
    /// The most rules (distinct prefix/depth pairs) the table accepts; rules are stored in hash
    /// maps that grow as they are added, so this is a cap, not a reservation. Default
    /// 1,048,576 (a full Internet routing table is about a million IPv4 prefixes).
    pub max_rules: u32,
    /// tbl8 groups (1 KiB each, reserved at creation): one is used per /24 that holds at least
    /// one prefix longer than /24. At most [`LPM_MAX_TBL8_GROUPS`]. Default 8192 (8 MiB); a
    /// full Internet table needs very few, a table of host routes needs one per /24 touched.
    pub tbl8_groups: u32,
}

impl Default for LpmConfig {
    fn default() -> Self {
        LpmConfig {
            max_rules: 1 << 20,
            tbl8_groups: 8192,
        }
    }
}

/// Errors of [`Lpm4`] operations. A failed operation leaves the table as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The prefix length is above 32.
    #[error("bad prefix length /{0}: valid prefix lengths are 0..=32 (0 is the default route)")]
    BadDepth(u8),
    /// The next hop does not fit in 24 bits.
    #[error("next hop {0} is too large: valid next hops are 0..=16777215 (24 bits)")]
    NextHopTooLarge(u32),
    /// The table already holds [`LpmConfig::max_rules`] rules.
    #[error(
        "too many rules: the table already holds LpmConfig::max_rules rules; delete some or \
         create the table with a larger max_rules"
    )]
    TooManyRules,
    /// Every tbl8 group is in use, so no new /24 can get a prefix longer than /24.
    #[error(
        "all tbl8 groups are in use (each /24 holding a prefix longer than /24 needs one); \
         create the table with a larger LpmConfig::tbl8_groups"
    )]
    Tbl8Exhausted,
    /// [`Lpm4::delete`] of a prefix/length pair that is not in the table.
    #[error("no rule with this prefix and prefix length")]
    NotFound,
    /// The table memory could not be had (or the configuration asks for an impossible size).
    #[error("cannot allocate the LPM table: {0}")]
    Arena(String),
}

/// A cheap hasher for masked prefixes (the murmur3 64-bit finaliser). Prefixes have many zero
/// low bits, so a plain multiplicative hash would collide; the finaliser mixes every bit.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

type RuleMap = HashMap<u32, u32, BuildHasherDefault<PrefixHasher>>;

/// An IPv4 longest-prefix-match table (DIR-24-8); see the [module documentation](self).
///
/// `Send + Sync`: share it read-only between lcores as an `Arc<Lpm4>` built at start. Updates
/// need `&mut self`; live updates under traffic (RCU) are not supported yet.
pub struct Lpm4 {
    name: String,
    /// 2^24 `u32` entries.
    tbl24: Arena,
    /// `tbl8_groups × 256` `u32` entries.
    tbl8: Arena,
    tbl8_groups: u32,
    /// Free tbl8 group indices; allocated with room for all groups, so it never reallocates.
    free_groups: Vec<u32>,
    /// `rules[depth]`: masked prefix → next hop.
    rules: [RuleMap; 33],
    n_rules: usize,
    max_rules: u32,
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4")
            .field("name", &self.name)
            .field("rules", &self.n_rules)
            .field("max_rules", &self.max_rules)
            .field("tbl8_groups_used", &self.tbl8_groups_used())
            .field("tbl8_groups", &self.tbl8_groups)
            .field("tbl24_backing", self.tbl24.backing())
            .finish()
    }
}

impl Lpm4 {
    /// Creates an empty table: maps 64 MiB for tbl24 and `cfg.tbl8_groups` KiB for tbl8, on huge
    /// pages when available (falling back to ordinary pages with one warning per process).
    /// `name` labels the memory.
    ///
    /// Fails with [`LpmError::Arena`] when the memory cannot be mapped or when
    /// `cfg.tbl8_groups` is above [`LPM_MAX_TBL8_GROUPS`].
    pub fn new(name: &str, cfg: LpmConfig) -> Result<Self, LpmError> {
        if cfg.tbl8_groups > LPM_MAX_TBL8_GROUPS {
            return Err(LpmError::Arena(format!(
                "tbl8_groups = {} is too large: valid values are 0..={LPM_MAX_TBL8_GROUPS} \
                 (group indices are 24-bit)",
                cfg.tbl8_groups
            )));
        }
        let map = |bytes: usize, what: &str| {
            Arena::new(bytes, HugePolicy::Auto, None, &format!("lpm-{name}-{what}"))
                .map_err(|e| LpmError::Arena(format!("{what} of {bytes} bytes: {e}")))
        };
        // The arenas come zeroed from mmap: every entry starts invalid.
        let tbl24 = map(TBL24_ENTRIES * 4, "tbl24")?;
        let tbl8 = map(cfg.tbl8_groups as usize * TBL8_GROUP_ENTRIES * 4, "tbl8")?;
        Ok(Lpm4 {
            name: name.to_string(),
            tbl24,
            tbl8,
            tbl8_groups: cfg.tbl8_groups,
            free_groups: (0..cfg.tbl8_groups).rev().collect(),
            rules: std::array::from_fn(|_| RuleMap::default()),
            n_rules: 0,
            max_rules: cfg.max_rules,
        })
    }

    #[inline(always)]
    fn tbl24(&self) -> &[u32] {
        // SAFETY: the arena is at least 2^24 × 4 bytes, page aligned (so aligned for u32),
        // initialised (zeroed by mmap, then only written as u32), and lives as long as `self`.
        // Writes go only through `tables_mut(&mut self)`, so this shared borrow cannot alias one.
        unsafe { std::slice::from_raw_parts(self.tbl24.as_ptr().cast::<u32>(), TBL24_ENTRIES) }
    }

    #[inline(always)]
    fn tbl8(&self) -> &[u32] {
        // SAFETY: as for `tbl24`, with `tbl8_groups × 256` entries, which the arena holds.
        unsafe {
            std::slice::from_raw_parts(
                self.tbl8.as_ptr().cast::<u32>(),
                self.tbl8_groups as usize * TBL8_GROUP_ENTRIES,
            )
        }
    }

    /// Both tables, writable.
    fn tables_mut(&mut self) -> (&mut [u32], &mut [u32]) {
        let n8 = self.tbl8_groups as usize * TBL8_GROUP_ENTRIES;
        // SAFETY: as in `tbl24`/`tbl8`; the two arenas are distinct mappings, so the slices do
        // not overlap, and `&mut self` guarantees no other borrow of either exists.
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.tbl24.as_ptr().cast::<u32>(), TBL24_ENTRIES),
                std::slice::from_raw_parts_mut(self.tbl8.as_ptr().cast::<u32>(), n8),
            )
        }
    }

    /// The final (non-extended) entry for `addr`.
    #[inline(always)]
    fn resolve(&self, addr: u32) -> u32 {
        let e = self.tbl24()[(addr >> 8) as usize];
        if e & EXT == 0 {
            return e;
        }
        let i = (((e & VALUE_MASK) as usize) << 8) | (addr & 0xff) as usize;
        self.tbl8()[i]
    }

    /// The next hop of the longest prefix matching `addr` (host byte order:
    /// `u32::from(Ipv4Addr)`), or `None`.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let e = self.resolve(addr);
        if e & VALID != 0 {
            Some(e & VALUE_MASK)
        } else {
            None
        }
    }

    /// Looks up every address of `addrs` (host byte order) and writes its next hop, or
    /// [`LPM_MISS`], to the same position of `out`. Returns how many addresses matched.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than `addrs`.
    pub fn lookup_bulk(&self, addrs: &[u32], out: &mut [u32]) -> usize {
        assert!(
            out.len() >= addrs.len(),
            "lookup_bulk: out has {} slots for {} addresses",
            out.len(),
            addrs.len()
        );
        // A plain loop: the iterations are independent, so an out-of-order core already keeps
        // many tbl24 misses in flight. Measured against it (bench/benches/lpm.rs, 1M routes,
        // bursts of 32): software prefetch 8 ahead, a two-pass gather of 8 tbl24 entries, and a
        // branchless tbl8 select were all within noise or slower.
        let out = &mut out[..addrs.len()];
        let mut hits = 0;
        for (o, &a) in out.iter_mut().zip(addrs) {
            let e = self.resolve(a);
            let valid = e & VALID != 0;
            *o = if valid { e & VALUE_MASK } else { LPM_MISS };
            hits += usize::from(valid);
        }
        hits
    }

    /// Adds the rule `prefix/depth → next_hop` (`depth` 0 is the default route); host bits of
    /// `prefix` beyond `depth` are ignored. Adding a prefix/depth pair that is already present
    /// replaces its next hop.
    ///
    /// Errors: [`LpmError::BadDepth`] (depth > 32), [`LpmError::NextHopTooLarge`]
    /// (≥ 2^24), [`LpmError::TooManyRules`], [`LpmError::Tbl8Exhausted`] (a prefix longer than
    /// /24 in a /24 that has no tbl8 group yet, with none free). On error nothing changes.
    pub fn add(&mut self, prefix: Ipv4Addr, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        if depth > LPM_MAX_DEPTH {
            return Err(LpmError::BadDepth(depth));
        }
        if next_hop > LPM_MAX_NEXT_HOP {
            return Err(LpmError::NextHopTooLarge(next_hop));
        }
        let ip = u32::from(prefix) & mask(depth);
        let exists = self.rules[usize::from(depth)].contains_key(&ip);
        if !exists && self.n_rules >= self.max_rules as usize {
            return Err(LpmError::TooManyRules);
        }
        if depth <= 24 {
            self.add_short(ip, depth, next_hop);
        } else {
            self.add_long(ip, depth, next_hop)?;
        }
        self.rules[usize::from(depth)].insert(ip, next_hop);
        if !exists {
            self.n_rules += 1;
        }
        Ok(())
    }

    /// Writes a rule of depth ≤ 24 over its tbl24 range, and over the tbl8 groups inside it,
    /// wherever no more specific rule is in place.
    fn add_short(&mut self, ip: u32, depth: u8, next_hop: u32) {
        let new = leaf(depth, next_hop);
        let start = (ip >> 8) as usize;
        let count = 1usize << (24 - depth);
        let (tbl24, tbl8) = self.tables_mut();
        for e in &mut tbl24[start..start + count] {
            if *e & EXT == 0 {
                if overwritable(*e, depth) {
                    *e = new;
                }
            } else {
                let g = (*e & VALUE_MASK) as usize * TBL8_GROUP_ENTRIES;
                for t in &mut tbl8[g..g + TBL8_GROUP_ENTRIES] {
                    if overwritable(*t, depth) {
                        *t = new;
                    }
                }
            }
        }
    }

    /// Writes a rule of depth > 24 into the tbl8 group of its /24, creating the group (a copy of
    /// the tbl24 entry in all 256 slots) if there is none.
    fn add_long(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        let i = (ip >> 8) as usize;
        let e = self.tbl24()[i];
        let (group, fresh) = if e & EXT != 0 {
            (e & VALUE_MASK, false)
        } else {
            (self.free_groups.pop().ok_or(LpmError::Tbl8Exhausted)?, true)
        };
        let new = leaf(depth, next_hop);
        let lo = (ip & 0xff) as usize;
        let count = 1usize << (32 - depth);
        let (tbl24, tbl8) = self.tables_mut();
        let g = &mut tbl8[group as usize * TBL8_GROUP_ENTRIES..][..TBL8_GROUP_ENTRIES];
        if fresh {
            // `e` is the /24's entry: a rule of depth ≤ 24, or empty (0).
            g.fill(e);
        }
        for t in &mut g[lo..lo + count] {
            if overwritable(*t, depth) {
                *t = new;
            }
        }
        if fresh {
            // Group filled first, pointer last: the order a concurrent reader would need.
            tbl24[i] = VALID | EXT | group;
        }
        Ok(())
    }

    /// Deletes the rule `prefix/depth` (host bits of `prefix` are ignored). Addresses it covered
    /// fall back to the next less specific rule, or to no match.
    ///
    /// Errors: [`LpmError::BadDepth`], [`LpmError::NotFound`].
    pub fn delete(&mut self, prefix: Ipv4Addr, depth: u8) -> Result<(), LpmError> {
        if depth > LPM_MAX_DEPTH {
            return Err(LpmError::BadDepth(depth));
        }
        let ip = u32::from(prefix) & mask(depth);
        if self.rules[usize::from(depth)].remove(&ip).is_none() {
            return Err(LpmError::NotFound);
        }
        self.n_rules -= 1;
        let replacement = self.less_specific(ip, depth);
        if depth <= 24 {
            self.delete_short(ip, depth, replacement);
        } else {
            self.delete_long(ip, depth, replacement);
        }
        Ok(())
    }

    /// The entry of the longest rule shorter than `depth` that covers `ip`, or 0 (empty).
    fn less_specific(&self, ip: u32, depth: u8) -> u32 {
        (0..depth)
            .rev()
            .find_map(|d| {
                self.rules[usize::from(d)]
                    .get(&(ip & mask(d)))
                    .map(|&nh| leaf(d, nh))
            })
            .unwrap_or(0)
    }

    fn delete_short(&mut self, ip: u32, depth: u8, replacement: u32) {
        let start = (ip >> 8) as usize;
        let count = 1usize << (24 - depth);
        let (tbl24, tbl8) = self.tables_mut();
        for e in &mut tbl24[start..start + count] {
            if *e & EXT == 0 {
                if owned_by(*e, depth) {
                    *e = replacement;
                }
            } else {
                // The group stays: it exists because a rule longer than /24 is still in it.
                let g = (*e & VALUE_MASK) as usize * TBL8_GROUP_ENTRIES;
                for t in &mut tbl8[g..g + TBL8_GROUP_ENTRIES] {
                    if owned_by(*t, depth) {
                        *t = replacement;
                    }
                }
            }
        }
    }

    fn delete_long(&mut self, ip: u32, depth: u8, replacement: u32) {
        let i = (ip >> 8) as usize;
        let e = self.tbl24()[i];
        debug_assert!(e & EXT != 0, "a rule longer than /24 without a tbl8 group");
        let group = e & VALUE_MASK;
        let lo = (ip & 0xff) as usize;
        let count = 1usize << (32 - depth);
        let (tbl24, tbl8) = self.tables_mut();
        let g = &mut tbl8[group as usize * TBL8_GROUP_ENTRIES..][..TBL8_GROUP_ENTRIES];
        for t in &mut g[lo..lo + count] {
            if owned_by(*t, depth) {
                *t = replacement;
            }
        }
        // Recycle: when no entry comes from a rule longer than /24 any more, all 256 entries
        // hold the same /24-or-shorter rule (or nothing), which fits back into tbl24.
        let first = g[0];
        if (first & VALID == 0 || depth_of(first) <= 24) && g.iter().all(|&t| t == first) {
            tbl24[i] = first;
            self.free_groups.push(group);
        }
    }

    /// Number of rules in the table.
    pub fn rules(&self) -> usize {
        self.n_rules
    }

    /// Number of tbl8 groups in use (out of [`LpmConfig::tbl8_groups`]).
    pub fn tbl8_groups_used(&self) -> usize {
        (self.tbl8_groups as usize) - self.free_groups.len()
    }

    /// Bytes held by the table: both mapped tables (tbl24 is 64 MiB; tbl8 is 1 KiB per
    /// configured group, rounded up to the page size) plus an estimate of the rule maps and the
    /// free list on the heap.
    pub fn memory_bytes(&self) -> usize {
        // hashbrown: one (u32, u32) slot and one control byte per bucket, ~8/7 buckets per
        // usable slot.
        let rules: usize = self
            .rules
            .iter()
            .map(|m| m.capacity() * 8 / 7 * (std::mem::size_of::<(u32, u32)>() + 1))
            .sum();
        self.tbl24.len()
            + self.tbl8.len()
            + rules
            + self.free_groups.capacity() * std::mem::size_of::<u32>()
            + std::mem::size_of::<Self>()
    }
}
