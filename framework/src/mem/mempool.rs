//! Fixed-size packet buffer pool with per-lcore caches, in the style of `rte_mempool` +
//! `rte_pktmbuf_pool_create`.
//!
//! Layout of the pool's single arena:
//!
//! ```text
//! [ header 0 | header 1 | ... | header n-1 ][pad to page][ buf 0 | buf 1 | ... | buf n-1 ]
//!   128 B each, 64 B aligned                              `buf_stride` bytes each
//! ```
//!
//! Headers (the [`Mbuf`] metadata) and packet buffers live in separate arrays of the same
//! region: object `i` is header `i` plus buffer `i`. The buffer array is page aligned and has a
//! fixed stride, so it can be registered as an AF_XDP UMEM or as DPDK external memory as is.
//!
//! Free objects sit in a shared [`MpmcRing`] and in per-lcore caches. An lcore allocates from and
//! frees to its own cache without atomics; the cache refills from / flushes to the ring in bulk
//! (`cache_size` at a time, flush above 1.5 × `cache_size`, as DPDK does). Threads without an
//! lcore id use the ring directly.

use std::cell::UnsafeCell;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::arena::{Arena, ArenaError, Backing, HugePolicy};
use super::mbuf::{Mbuf, MbufHdr, HDR_SIZE};
use crate::batch::{Batch, BURST_MAX};
use crate::lcore::{self, MAX_LCORES};
use crate::ring::MpmcRing;

/// Largest per-lcore cache, like `RTE_MEMPOOL_CACHE_MAX_SIZE`.
pub const CACHE_MAX: u32 = 512;

/// Parameters of a pool (what `rte_pktmbuf_pool_create` takes).
#[derive(Debug, Clone)]
pub struct MempoolParams {
    /// Name used in metrics and errors.
    pub name: String,
    /// Number of mbufs.
    pub mbufs: u32,
    /// Bytes of packet data per buffer after the headroom.
    pub data_room: u16,
    /// Bytes reserved in front of the data for prepending headers.
    pub headroom: u16,
    /// Objects kept per lcore (0 disables caching).
    pub cache_size: u32,
    /// Huge page policy for the arena.
    pub huge: HugePolicy,
    /// Optional hugetlbfs mount point to allocate from.
    pub hugetlbfs: Option<PathBuf>,
}

impl MempoolParams {
    /// Parameters with DPDK-like defaults: 2048 B data room, 128 B headroom, cache 256.
    pub fn new(name: &str, mbufs: u32) -> Self {
        MempoolParams {
            name: name.to_string(),
            mbufs,
            data_room: 2048,
            headroom: 128,
            cache_size: 256.min(mbufs * 2 / 3),
            huge: HugePolicy::Auto,
            hugetlbfs: None,
        }
    }
}

/// Errors creating a pool.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// A parameter is out of range.
    #[error("mempool {name}: {what}")]
    Invalid {
        /// Pool name.
        name: String,
        /// What is wrong and what would be valid.
        what: String,
    },
    /// The arena could not be mapped.
    #[error("mempool {name}: {source}")]
    Arena {
        /// Pool name.
        name: String,
        /// Cause.
        source: ArenaError,
    },
}

/// A free object: pointer to its header.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct ObjPtr(pub(crate) NonNull<MbufHdr>);
// SAFETY: an ObjPtr names a free object; ownership of it moves with the value.
unsafe impl Send for ObjPtr {}

/// One lcore's cache. Only the thread holding that lcore id touches `objs`; `len` and the
/// counters are atomics so scrapers can read them, but they have a single writer.
struct LcoreCache {
    len: AtomicU32,
    objs: UnsafeCell<Box<[ObjPtr]>>,
    hits: AtomicU64,
    refills: AtomicU64,
    empty: AtomicU64,
}

/// Adds to a single-writer counter without a locked instruction.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

pub(crate) struct PoolInner {
    name: String,
    n: u32,
    data_base: *mut u8,
    data_region_len: usize,
    buf_stride: usize,
    data_room: u16,
    headroom: u16,
    cache_size: u32,
    flush_thresh: u32,
    store: MpmcRing<ObjPtr>,
    caches: Box<[CachePadded<LcoreCache>]>,
    /// Allocation failures of threads without an lcore id.
    shared_empty: AtomicU64,
    arena: Arena,
}

// SAFETY: caches are per-lcore (exclusive by the lcore registry); everything else is immutable
// after construction or atomic.
unsafe impl Sync for PoolInner {}
// SAFETY: as above.
unsafe impl Send for PoolInner {}

/// Owner of the pool memory: frees it when the last handle goes, unless mbufs are still out.
struct PoolOwner(NonNull<PoolInner>);
// SAFETY: PoolInner is Send + Sync.
unsafe impl Send for PoolOwner {}
// SAFETY: PoolInner is Send + Sync.
unsafe impl Sync for PoolOwner {}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw and is still live.
        let inner = unsafe { self.0.as_ref() };
        let free = inner.available();
        if free == inner.n as usize {
            // Every object is back in the store or a cache, so no Mbuf can reach this memory.
            // SAFETY: last owner, no outstanding mbufs.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        } else {
            eprintln!(
                "warning: mempool {} released with {} mbufs still in use; its memory is kept \
                 (leaked) so they stay valid",
                inner.name,
                inner.n as usize - free
            );
        }
    }
}

/// Counters of one pool, summed over lcores at the time of the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// Pool name.
    pub name: String,
    /// Total mbufs.
    pub capacity: u64,
    /// Free mbufs (in the shared ring or in lcore caches).
    pub available: u64,
    /// Mbufs handed out and not yet returned.
    pub in_use: u64,
    /// Allocations served straight from an lcore cache.
    pub cache_hits: u64,
    /// Times an lcore cache refilled from the shared ring.
    pub cache_refills: u64,
    /// Allocation requests that failed because the pool was empty.
    pub empty_events: u64,
}

/// A handle to a pool. Cheap to clone; all clones share the pool.
#[derive(Clone)]
pub struct Mempool {
    owner: Arc<PoolOwner>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner();
        f.debug_struct("Mempool")
            .field("name", &i.name)
            .field("mbufs", &i.n)
            .field("available", &i.available())
            .finish()
    }
}

impl Mempool {
    /// Creates a pool: maps its arena, formats every header, and fills the free ring.
    pub fn new(p: &MempoolParams) -> Result<Mempool, MempoolError> {
        let invalid = |what: String| MempoolError::Invalid {
            name: p.name.clone(),
            what,
        };
        if p.mbufs == 0 || p.mbufs > (1 << 24) {
            return Err(invalid(format!(
                "mbufs = {} is out of range (1..=16777216)",
                p.mbufs
            )));
        }
        if p.cache_size > CACHE_MAX
            || (p.cache_size > 0 && p.cache_size as u64 * 3 > p.mbufs as u64 * 2)
        {
            return Err(invalid(format!(
                "cache_size = {} is too large: it must be <= {CACHE_MAX} and <= mbufs / 1.5 ({})",
                p.cache_size,
                p.mbufs as u64 * 2 / 3
            )));
        }
        let buf_len = p.headroom as usize + p.data_room as usize;
        if buf_len > u16::MAX as usize || p.data_room == 0 {
            return Err(invalid(format!(
                "headroom + data_room = {buf_len} must be between 1 and 65535"
            )));
        }
        let buf_stride = buf_len.next_multiple_of(64);
        let n = p.mbufs as usize;
        let hdr_bytes = (n * HDR_SIZE).next_multiple_of(super::arena::SMALL_PAGE_SIZE);
        let data_region_len = n * buf_stride;
        let arena = Arena::new(
            hdr_bytes + data_region_len,
            p.huge,
            p.hugetlbfs.as_deref(),
            &p.name,
        )
        .map_err(|source| MempoolError::Arena {
            name: p.name.clone(),
            source,
        })?;
        let hdr_base = arena.as_ptr().cast::<MbufHdr>();
        // SAFETY: the arena holds hdr_bytes + data_region_len bytes.
        let data_base = unsafe { arena.as_ptr().add(hdr_bytes) };
        let store = MpmcRing::new(n.next_power_of_two()).map_err(|e| invalid(e.to_string()))?;
        let flush_thresh = p.cache_size + p.cache_size / 2;
        let cache_slots = if p.cache_size == 0 {
            0
        } else {
            flush_thresh as usize + BURST_MAX
        };
        let caches = (0..MAX_LCORES)
            .map(|_| {
                CachePadded::new(LcoreCache {
                    len: AtomicU32::new(0),
                    objs: UnsafeCell::new(
                        vec![ObjPtr(NonNull::dangling()); cache_slots].into_boxed_slice(),
                    ),
                    hits: AtomicU64::new(0),
                    refills: AtomicU64::new(0),
                    empty: AtomicU64::new(0),
                })
            })
            .collect();
        let inner = Box::new(PoolInner {
            name: p.name.clone(),
            n: p.mbufs,
            data_base,
            data_region_len,
            buf_stride,
            data_room: p.data_room,
            headroom: p.headroom,
            cache_size: p.cache_size,
            flush_thresh,
            store,
            caches,
            shared_empty: AtomicU64::new(0),
            arena,
        });
        let inner_ptr = NonNull::from(Box::leak(inner));
        // SAFETY: just created; nobody else has it yet.
        let inner = unsafe { inner_ptr.as_ref() };
        for i in 0..n {
            // SAFETY: header i and buffer i lie inside the arena; headers are 64-byte aligned
            // because the arena is page aligned and HDR_SIZE is a multiple of 64.
            unsafe {
                let hdr = hdr_base.add(i);
                let buf = data_base.add(i * buf_stride);
                hdr.write(MbufHdr::new(
                    inner_ptr.as_ptr(),
                    buf,
                    buf_len as u16,
                    i as u32,
                ));
                let ok = inner.store.enqueue(ObjPtr(NonNull::new_unchecked(hdr)));
                debug_assert!(ok.is_ok());
            }
        }
        Ok(Mempool {
            owner: Arc::new(PoolOwner(inner_ptr)),
        })
    }

    #[inline]
    fn inner(&self) -> &PoolInner {
        // SAFETY: the owner keeps the inner alive while any handle exists.
        unsafe { self.owner.0.as_ref() }
    }

    /// True when `m`'s header came from this pool (an indirect mbuf's header may come from
    /// another pool than the buffer it refers to).
    pub fn owns(&self, m: &Mbuf) -> bool {
        std::ptr::eq(m.pool_ptr(), self.owner.0.as_ptr())
    }

    /// Pool name.
    pub fn name(&self) -> &str {
        &self.inner().name
    }

    /// Total number of mbufs.
    pub fn capacity(&self) -> usize {
        self.inner().n as usize
    }

    /// Free mbufs right now (shared ring plus all lcore caches; a snapshot).
    pub fn available(&self) -> usize {
        self.inner().available()
    }

    /// Mbufs handed out right now.
    pub fn in_use(&self) -> usize {
        self.capacity() - self.available()
    }

    /// Bytes of data room per mbuf (after the headroom).
    pub fn data_room(&self) -> u16 {
        self.inner().data_room
    }

    /// Headroom each freshly allocated mbuf starts with.
    pub fn headroom(&self) -> u16 {
        self.inner().headroom
    }

    /// Per-lcore cache size.
    pub fn cache_size(&self) -> u32 {
        self.inner().cache_size
    }

    /// What backs the pool's memory.
    pub fn backing(&self) -> &Backing {
        self.inner().arena.backing()
    }

    /// The packet buffer region: base address, length, and per-buffer stride. This is the
    /// region an AF_XDP UMEM or DPDK external memory registration uses.
    pub fn data_region(&self) -> (*mut u8, usize, usize) {
        let i = self.inner();
        (i.data_base, i.data_region_len, i.buf_stride)
    }

    /// Allocates one mbuf, reset to an empty packet with the default headroom. `None` (counted
    /// as an empty event) when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        let mut one = [ObjPtr(NonNull::dangling())];
        if !self.inner().get_bulk(&mut one) {
            return None;
        }
        // SAFETY: the object is free and now exclusively ours.
        Some(unsafe { Mbuf::from_fresh(one[0].0, self.inner().headroom) })
    }

    /// Appends exactly `n` fresh mbufs to `out`, or none (counted as an empty event) when the
    /// pool cannot supply them all or `out` lacks room — like `rte_pktmbuf_alloc_bulk`.
    #[inline]
    pub fn alloc_bulk<const N: usize>(&self, out: &mut Batch<Mbuf, N>, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if n > out.remaining() {
            return false;
        }
        let len = out.len();
        // SAFETY: `Mbuf` is a transparent wrapper over `NonNull<MbufHdr>`, as is `ObjPtr`; the
        // slots len..len+n are free space in `out`.
        let slots = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().add(len).cast::<ObjPtr>(), n)
        };
        let inner = self.inner();
        if !inner.get_bulk(slots) {
            return false;
        }
        let headroom = inner.headroom;
        for o in slots.iter() {
            // SAFETY: each object is free and now ours; reset it in place.
            unsafe { MbufHdr::reset(o.0.as_ptr(), headroom) };
        }
        // SAFETY: the n new slots were just initialised with valid mbufs.
        unsafe { out.set_len(len + n) };
        true
    }

    /// Counters summed over every lcore.
    pub fn stats(&self) -> MempoolStats {
        let i = self.inner();
        let mut s = MempoolStats {
            name: i.name.clone(),
            capacity: i.n as u64,
            empty_events: i.shared_empty.load(Ordering::Relaxed),
            ..Default::default()
        };
        for c in i.caches.iter() {
            s.cache_hits += c.hits.load(Ordering::Relaxed);
            s.cache_refills += c.refills.load(Ordering::Relaxed);
            s.empty_events += c.empty.load(Ordering::Relaxed);
        }
        s.available = i.available() as u64;
        s.in_use = s.capacity - s.available;
        s
    }

    /// Returns the mbufs of `burst` to their pools, batching the common case (single-segment,
    /// unshared mbufs) into bulk puts. Leaves `burst` empty.
    #[inline]
    pub fn free_burst<const N: usize>(burst: &mut Batch<Mbuf, N>) -> u64 {
        free_burst(burst)
    }
}

/// Returns every mbuf of `burst` to its pool (bulk where possible) and leaves `burst` empty.
/// Returns the total packet length freed, which transmit drivers count as bytes sent.
#[inline]
pub fn free_burst<const N: usize>(burst: &mut Batch<Mbuf, N>) -> u64 {
    let len = burst.len();
    if len == 0 {
        return 0;
    }
    let mut bytes = 0u64;
    // Take ownership of all items; the batch is empty afterwards whatever happens.
    // SAFETY: we consume each of the `len` initialised items exactly once below.
    unsafe { burst.set_len(0) };
    let base = burst.as_mut_ptr();
    // The burst's own slots hold the runs of objects to put back: `Mbuf` and `ObjPtr` are both
    // a transparent `NonNull<MbufHdr>`, and a run entry is only written to a slot already read.
    let objs = base.cast::<ObjPtr>();
    let mut run_start = 0usize;
    let mut run_len = 0usize;
    let mut run_pool: *const PoolInner = std::ptr::null();
    for i in 0..len {
        // SAFETY: slot i was initialised and is read once.
        let m = unsafe { std::ptr::read(base.add(i)) };
        bytes += m.pkt_len() as u64;
        match m.into_simple_free() {
            Ok((obj, pool)) => {
                if pool != run_pool {
                    if run_len > 0 {
                        // SAFETY: slots run_start..+run_len hold free objects of `run_pool`.
                        unsafe {
                            (*run_pool)
                                .put_bulk(std::slice::from_raw_parts(objs.add(run_start), run_len))
                        };
                    }
                    run_pool = pool;
                    run_start = i;
                    run_len = 0;
                }
                // SAFETY: run_start + run_len <= i, a slot already read.
                unsafe { objs.add(run_start + run_len).write(ObjPtr(obj)) };
                run_len += 1;
            }
            Err(m) => drop(m),
        }
    }
    if run_len > 0 {
        // SAFETY: slots run_start..+run_len hold free objects of `run_pool`.
        unsafe { (*run_pool).put_bulk(std::slice::from_raw_parts(objs.add(run_start), run_len)) };
    }
    bytes
}

impl PoolInner {
    /// Free objects: the shared ring plus every cache (a snapshot).
    fn available(&self) -> usize {
        let cached: usize = self
            .caches
            .iter()
            .map(|c| c.len.load(Ordering::Acquire) as usize)
            .sum();
        self.store.len() + cached
    }

    /// The cache of the calling lcore, if it has one and caching is on.
    #[inline]
    fn my_cache(&self) -> Option<&LcoreCache> {
        if self.cache_size == 0 {
            return None;
        }
        let id = lcore::current()?;
        Some(&self.caches[id])
    }

    /// Fills `out` with free objects, all or nothing.
    #[inline]
    pub(crate) fn get_bulk(&self, out: &mut [ObjPtr]) -> bool {
        let n = out.len();
        let Some(cache) = self.my_cache() else {
            if self.store.dequeue_slice_bulk(out) {
                return true;
            }
            self.shared_empty.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        // SAFETY: only the thread holding this lcore id touches the cache's objects.
        let objs = unsafe { &mut *cache.objs.get() };
        let mut len = cache.len.load(Ordering::Relaxed) as usize;
        if n > objs.len() {
            // Larger than the cache can ever hold: go to the store directly.
            if self.store.dequeue_slice_bulk(out) {
                return true;
            }
            bump(&cache.empty, 1);
            return false;
        }
        if len < n {
            // Refill: bring the cache up to cache_size plus what is asked for.
            let want = (self.cache_size as usize + n - len).min(objs.len() - len);
            let got = if self.store.dequeue_slice_bulk(&mut objs[len..len + want]) {
                want
            } else {
                // Not enough for a full refill: take just what this request needs.
                let need = n - len;
                if self.store.dequeue_slice_bulk(&mut objs[len..len + need]) {
                    need
                } else {
                    bump(&cache.empty, 1);
                    return false;
                }
            };
            len += got;
            bump(&cache.refills, 1);
        } else {
            bump(&cache.hits, 1);
        }
        // Hand out the most recently freed objects first: they are the warmest in cache.
        out.copy_from_slice(&objs[len - n..len]);
        len -= n;
        cache.len.store(len as u32, Ordering::Release);
        true
    }

    /// Returns free objects, to the calling lcore's cache when it has one.
    ///
    /// The last write of every path is a release store (cache length or ring tail), so a pool
    /// owner that sees every object as free knows no thread is still touching the pool.
    #[inline]
    pub(crate) fn put_bulk(&self, objs_in: &[ObjPtr]) {
        let n = objs_in.len();
        let Some(cache) = self.my_cache() else {
            self.store_put(objs_in);
            return;
        };
        // SAFETY: only the thread holding this lcore id touches the cache's objects.
        let objs = unsafe { &mut *cache.objs.get() };
        let len = cache.len.load(Ordering::Relaxed) as usize;
        if len + n > objs.len() {
            self.store_put(objs_in);
            return;
        }
        objs[len..len + n].copy_from_slice(objs_in);
        let len = len + n;
        if len >= self.flush_thresh as usize {
            let keep = self.cache_size as usize;
            // Shrink first (an undercount is safe for the owner's check), then flush.
            cache.len.store(keep as u32, Ordering::Release);
            self.store_put(&objs[keep..len]);
        } else {
            cache.len.store(len as u32, Ordering::Release);
        }
    }

    /// Puts objects into the shared ring. The ring has room for every object of the pool, so
    /// this only fails transiently, while this thread's view of the consumers' progress is
    /// stale; retry until it catches up. A persistent failure means an object was freed twice.
    #[inline]
    fn store_put(&self, objs: &[ObjPtr]) {
        let mut spins = 0u32;
        while !self.store.enqueue_slice_bulk(objs) {
            spins += 1;
            assert!(
                spins < 10_000_000,
                "mempool {}: free ring overflow (an mbuf was freed twice)",
                self.name
            );
            core::hint::spin_loop();
        }
    }

    /// Size of each buffer (headroom + data room).
    #[inline]
    pub(crate) fn buf_len(&self) -> u16 {
        self.headroom + self.data_room
    }

    /// Address of object `index`'s own buffer.
    #[inline]
    pub(crate) fn own_buf(&self, index: u32) -> *mut u8 {
        // SAFETY: index < n, so the buffer lies inside the data region.
        unsafe { self.data_base.add(index as usize * self.buf_stride) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Burst;

    fn pool(n: u32, cache: u32) -> Mempool {
        let mut p = MempoolParams::new("test", n);
        p.cache_size = cache;
        p.huge = HugePolicy::Off;
        if cfg!(miri) {
            p.data_room = 64;
        }
        Mempool::new(&p).unwrap()
    }

    #[test]
    fn rejects_bad_params() {
        let mut p = MempoolParams::new("bad", 100);
        p.cache_size = 100;
        let e = Mempool::new(&p).unwrap_err().to_string();
        assert!(e.contains("cache_size = 100"), "{e}");
        p.mbufs = 0;
        assert!(Mempool::new(&p).is_err());
    }

    #[test]
    fn exhaustion_returns_none_and_counts() {
        let mp = pool(8, 0);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(mp.alloc().expect("pool has room"));
        }
        assert_eq!(mp.in_use(), 8);
        assert!(mp.alloc().is_none());
        let mut b = Burst::new();
        assert!(!mp.alloc_bulk(&mut b, 1));
        assert_eq!(mp.stats().empty_events, 2);
        held.clear();
        assert_eq!(mp.available(), 8);
        assert!(mp.alloc_bulk(&mut b, 8));
        assert!(!mp.alloc_bulk(&mut b, 1));
        b.clear();
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn lcore_cache_serves_and_flushes() {
        let mp = pool(1024, 64);
        std::thread::spawn(move || {
            let _g = lcore::register_any(40).unwrap();
            let mut b = Burst::new();
            assert!(mp.alloc_bulk(&mut b, 32));
            let s = mp.stats();
            assert_eq!(s.cache_refills, 1);
            assert_eq!(s.in_use, 32);
            free_burst(&mut b);
            assert!(b.is_empty());
            assert!(mp.alloc_bulk(&mut b, 32));
            assert_eq!(mp.stats().cache_hits, 1);
            assert_eq!(mp.in_use(), 32);
            // Free far more than the flush threshold: the cache must spill to the ring.
            let mut big = Vec::new();
            for _ in 0..4 {
                let mut x = Burst::new();
                assert!(mp.alloc_bulk(&mut x, 100));
                big.push(x);
            }
            for mut x in big {
                free_burst(&mut x);
            }
            b.clear();
            assert_eq!(mp.in_use(), 0);
            assert_eq!(mp.available(), 1024);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn many_threads_share_one_pool() {
        let mp = pool(512, 32);
        let rounds = if cfg!(miri) { 20 } else { 20_000 };
        let mut hs = Vec::new();
        for t in 0..4 {
            let mp = mp.clone();
            hs.push(std::thread::spawn(move || {
                // Half the threads are lcores with caches, half use the ring directly.
                let _g = (t % 2 == 0).then(|| lcore::register_any(20).unwrap());
                let mut b = Burst::new();
                for r in 0..rounds {
                    let n = 1 + (r % 40);
                    if mp.alloc_bulk(&mut b, n) {
                        for m in b.iter_mut() {
                            m.append(4)
                                .unwrap()
                                .copy_from_slice(&(t as u32).to_le_bytes());
                        }
                        for m in b.iter() {
                            assert_eq!(m.data(), &(t as u32).to_le_bytes());
                        }
                    }
                    if r % 3 == 0 {
                        b.clear();
                    } else {
                        free_burst(&mut b);
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn layout_is_umem_friendly() {
        let mp = pool(100, 0);
        let (base, len, stride) = mp.data_region();
        assert_eq!(base as usize % 4096, 0);
        assert_eq!(stride % 64, 0);
        assert!(stride >= 2048 + 128 || cfg!(miri));
        assert_eq!(len, 100 * stride);
        let m = mp.alloc().unwrap();
        let off = m.buf_addr() as usize - base as usize;
        assert_eq!(off % stride, 0);
        assert_eq!(m.buf_index(), (off / stride) as u32);
    }
}
