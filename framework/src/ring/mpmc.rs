//! Multi-producer multi-consumer ring in the style of DPDK's `rte_ring`.
//!
//! Producers reserve a range of slots by moving `prod_head` with a compare-and-swap, write their
//! items, then wait until every earlier reservation has been published before moving
//! `prod_tail` past their own range. Consumers do the same on the `cons_*` pair. Like
//! `rte_ring`, this is non-blocking but not strictly lock-free: a thread preempted between
//! reserving and publishing delays later threads of the same side. Keep the threads of one
//! side on dedicated cores (as lcores are) and it never matters.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use super::{alloc_slots, check_capacity, BadCapacity};
use crate::batch::Batch;

/// A bounded MPMC ring shared by reference (`&self` operations).
pub struct MpmcRing<T> {
    prod_head: CachePadded<AtomicUsize>,
    prod_tail: CachePadded<AtomicUsize>,
    cons_head: CachePadded<AtomicUsize>,
    cons_tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is written only by the producer that reserved it and read only by the consumer
// that reserved it; tails are published with release and read with acquire.
unsafe impl<T: Send> Sync for MpmcRing<T> {}
// SAFETY: the ring owns items of type T, which may move between threads.
unsafe impl<T: Send> Send for MpmcRing<T> {}

/// Whether a reservation takes what it can (burst) or everything or nothing (bulk).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Burst,
    Bulk,
}

impl<T: Send> MpmcRing<T> {
    /// Creates a ring holding up to `capacity` items (a power of two).
    pub fn new(capacity: usize) -> Result<Self, BadCapacity> {
        let capacity = check_capacity(capacity)?;
        Ok(MpmcRing {
            prod_head: CachePadded::new(AtomicUsize::new(0)),
            prod_tail: CachePadded::new(AtomicUsize::new(0)),
            cons_head: CachePadded::new(AtomicUsize::new(0)),
            cons_tail: CachePadded::new(AtomicUsize::new(0)),
            mask: capacity - 1,
            slots: alloc_slots(capacity),
        })
    }

    /// Total slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Items published and not yet reserved by a consumer (a snapshot).
    #[inline]
    pub fn len(&self) -> usize {
        let tail = self.prod_tail.load(Ordering::Acquire);
        let head = self.cons_head.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    /// True when the snapshot shows no items.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn slot(&self, pos: usize) -> *mut MaybeUninit<T> {
        self.slots[pos & self.mask].get()
    }

    /// Reserves up to `n` free slots; returns (start position, count).
    #[inline]
    fn reserve_prod(&self, n: usize, mode: Mode) -> (usize, usize) {
        let cap = self.capacity();
        let mut head = self.prod_head.load(Ordering::Relaxed);
        loop {
            let cons_tail = self.cons_tail.load(Ordering::Acquire);
            let used = head.wrapping_sub(cons_tail);
            if used > cap {
                // `head` went stale while consumers moved past it: look again.
                head = self.prod_head.load(Ordering::Relaxed);
                continue;
            }
            let free = cap - used;
            let take = match mode {
                Mode::Bulk if free < n => return (head, 0),
                _ => n.min(free),
            };
            if take == 0 {
                return (head, 0);
            }
            match self.prod_head.compare_exchange_weak(
                head,
                head.wrapping_add(take),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (head, take),
                Err(now) => head = now,
            }
        }
    }

    /// Publishes a producer range once every earlier range is published.
    ///
    /// The wait uses an acquire load: our release store then carries the earlier producers'
    /// writes too, so a consumer that sees our tail sees their slots.
    #[inline]
    fn publish_prod(&self, start: usize, n: usize) {
        while self.prod_tail.load(Ordering::Acquire) != start {
            core::hint::spin_loop();
            #[cfg(miri)]
            std::thread::yield_now();
        }
        self.prod_tail
            .store(start.wrapping_add(n), Ordering::Release);
    }

    /// Reserves up to `n` published items; returns (start position, count).
    #[inline]
    fn reserve_cons(&self, n: usize, mode: Mode) -> (usize, usize) {
        let mut head = self.cons_head.load(Ordering::Relaxed);
        loop {
            let prod_tail = self.prod_tail.load(Ordering::Acquire);
            let avail = prod_tail.wrapping_sub(head);
            if avail > self.capacity() {
                // Our view of `prod_tail` is older than the `head` we read (nothing orders the
                // two loads): read both again rather than reserve unpublished slots.
                core::hint::spin_loop();
                head = self.cons_head.load(Ordering::Relaxed);
                continue;
            }
            let take = match mode {
                Mode::Bulk if avail < n => return (head, 0),
                _ => n.min(avail),
            };
            if take == 0 {
                return (head, 0);
            }
            match self.cons_head.compare_exchange_weak(
                head,
                head.wrapping_add(take),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (head, take),
                Err(now) => head = now,
            }
        }
    }

    /// Releases a consumer range once every earlier range is released (acquire wait, as in
    /// [`Self::publish_prod`], so producers that see our tail know all earlier reads are done).
    #[inline]
    fn publish_cons(&self, start: usize, n: usize) {
        while self.cons_tail.load(Ordering::Acquire) != start {
            core::hint::spin_loop();
            #[cfg(miri)]
            std::thread::yield_now();
        }
        self.cons_tail
            .store(start.wrapping_add(n), Ordering::Release);
    }

    /// Enqueues one item, or gives it back when the ring is full.
    #[inline]
    pub fn enqueue(&self, item: T) -> Result<(), T> {
        let (start, n) = self.reserve_prod(1, Mode::Bulk);
        if n == 0 {
            return Err(item);
        }
        // SAFETY: the reserved slot is free and exclusively ours until published.
        unsafe { (*self.slot(start)).write(item) };
        self.publish_prod(start, 1);
        Ok(())
    }

    /// Dequeues one item.
    #[inline]
    pub fn dequeue(&self) -> Option<T> {
        let (start, n) = self.reserve_cons(1, Mode::Bulk);
        if n == 0 {
            return None;
        }
        // SAFETY: the reserved slot holds a published item that only we read.
        let item = unsafe { (*self.slot(start)).assume_init_read() };
        self.publish_cons(start, 1);
        Some(item)
    }

    fn enqueue_batch<const N: usize>(&self, src: &mut Batch<T, N>, mode: Mode) -> usize {
        let (start, n) = self.reserve_prod(src.len(), mode);
        if n == 0 {
            return 0;
        }
        // SAFETY: slots start..start+n are reserved for us and free; the first n items of
        // `src` move into them and are then forgotten by `src`.
        unsafe {
            super::copy_into_ring(
                super::slot_base(&self.slots),
                self.mask,
                start,
                src.as_mut_ptr(),
                n,
            );
            src.forget_front(n);
        }
        self.publish_prod(start, n);
        n
    }

    /// Moves as many items as fit from the front of `src`; returns the count.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, src: &mut Batch<T, N>) -> usize {
        self.enqueue_batch(src, Mode::Burst)
    }

    /// Moves all items of `src`, or none.
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&self, src: &mut Batch<T, N>) -> bool {
        let want = src.len();
        self.enqueue_batch(src, Mode::Bulk) == want
    }

    fn dequeue_batch<const N: usize>(&self, dst: &mut Batch<T, N>, n: usize, mode: Mode) -> usize {
        let want = n.min(dst.remaining());
        if mode == Mode::Bulk && want < n {
            return 0;
        }
        let (start, n) = self.reserve_cons(want, mode);
        let len = dst.len();
        // SAFETY: slots start..start+n are reserved for us and hold published items, read once;
        // `dst` has room for `want >= n` more.
        unsafe {
            super::copy_out_of_ring(
                super::slot_base(&self.slots),
                self.mask,
                start,
                dst.as_mut_ptr().add(len),
                n,
            );
            dst.set_len(len + n);
        }
        if n > 0 {
            self.publish_cons(start, n);
        }
        n
    }

    /// Appends up to `max` items to `dst` (bounded by its free space); returns how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&self, dst: &mut Batch<T, N>, max: usize) -> usize {
        self.dequeue_batch(dst, max, Mode::Burst)
    }

    /// Appends exactly `n` items to `dst`, or nothing.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&self, dst: &mut Batch<T, N>, n: usize) -> bool {
        self.dequeue_batch(dst, n, Mode::Bulk) == n
    }

    fn enqueue_copy(&self, src: &[T], mode: Mode) -> usize
    where
        T: Copy,
    {
        let (start, n) = self.reserve_prod(src.len(), mode);
        // SAFETY: slots start..start+n are reserved for us and free; `T: Copy`.
        unsafe {
            super::copy_into_ring(
                super::slot_base(&self.slots),
                self.mask,
                start,
                src.as_ptr(),
                n,
            )
        };
        if n > 0 {
            self.publish_prod(start, n);
        }
        n
    }

    /// Copies as many items of `src` as fit; returns the count.
    #[inline]
    pub fn enqueue_slice(&self, src: &[T]) -> usize
    where
        T: Copy,
    {
        self.enqueue_copy(src, Mode::Burst)
    }

    /// Copies all of `src`, or nothing.
    #[inline]
    pub fn enqueue_slice_bulk(&self, src: &[T]) -> bool
    where
        T: Copy,
    {
        self.enqueue_copy(src, Mode::Bulk) == src.len()
    }

    fn dequeue_copy(&self, dst: &mut [T], mode: Mode) -> usize
    where
        T: Copy,
    {
        let (start, n) = self.reserve_cons(dst.len(), mode);
        // SAFETY: slots start..start+n are reserved for us and hold published items; `T: Copy`
        // and `dst` has room for n.
        unsafe {
            super::copy_out_of_ring(
                super::slot_base(&self.slots),
                self.mask,
                start,
                dst.as_mut_ptr(),
                n,
            )
        };
        if n > 0 {
            self.publish_cons(start, n);
        }
        n
    }

    /// Copies up to `dst.len()` items into the front of `dst`; returns how many.
    #[inline]
    pub fn dequeue_slice(&self, dst: &mut [T]) -> usize
    where
        T: Copy,
    {
        self.dequeue_copy(dst, Mode::Burst)
    }

    /// Fills all of `dst`, or nothing.
    #[inline]
    pub fn dequeue_slice_bulk(&self, dst: &mut [T]) -> bool
    where
        T: Copy,
    {
        self.dequeue_copy(dst, Mode::Bulk) == dst.len()
    }
}

impl<T> Drop for MpmcRing<T> {
    fn drop(&mut self) {
        let mut pos = *self.cons_tail.get_mut();
        let end = *self.prod_tail.get_mut();
        while pos != end {
            // SAFETY: exclusive access; slots cons_tail..prod_tail hold undequeued items.
            unsafe { (*self.slots[pos & self.mask].get()).assume_init_drop() };
            pos = pos.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    #[test]
    fn fifo_and_full() {
        let r = MpmcRing::new(4).unwrap();
        for i in 0..4 {
            r.enqueue(i).unwrap();
        }
        assert_eq!(r.enqueue(7), Err(7));
        assert_eq!(r.len(), 4);
        assert_eq!(r.dequeue(), Some(0));
        r.enqueue(4).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| r.dequeue()).collect();
        assert_eq!(got, [1, 2, 3, 4]);
        assert!(r.is_empty());
    }

    #[test]
    fn bulk_all_or_nothing_burst_partial() {
        let r = MpmcRing::new(8).unwrap();
        assert!(r.enqueue_slice_bulk(&[1u32; 6]));
        assert!(!r.enqueue_slice_bulk(&[2u32; 3]));
        assert_eq!(r.enqueue_slice(&[3u32; 3]), 2);
        let mut out = [0u32; 10];
        assert!(!r.dequeue_slice_bulk(&mut out[..9]));
        assert_eq!(r.dequeue_slice(&mut out), 8);
        assert_eq!(&out[..8], &[1, 1, 1, 1, 1, 1, 3, 3]);

        let mut src: Batch<String, 8> = Batch::new();
        for i in 0..8 {
            src.push(i.to_string()).unwrap();
        }
        let r2 = MpmcRing::new(4).unwrap();
        assert!(!r2.enqueue_bulk(&mut src));
        assert_eq!(r2.enqueue_burst(&mut src), 4);
        assert_eq!(src.len(), 4);
        let mut dst: Batch<String, 8> = Batch::new();
        assert!(!r2.dequeue_bulk(&mut dst, 5));
        assert!(r2.dequeue_bulk(&mut dst, 4));
        assert_eq!(dst.as_slice(), ["0", "1", "2", "3"]);
    }

    #[test]
    fn drops_leftovers() {
        let item = Arc::new(());
        {
            let r = MpmcRing::new(8).unwrap();
            for _ in 0..5 {
                r.enqueue(item.clone()).unwrap();
            }
            drop(r.dequeue());
        }
        assert_eq!(Arc::strong_count(&item), 1);
    }

    /// Several producers and consumers move distinct values; every value arrives exactly once
    /// and each producer's values arrive in the order a single consumer saw them.
    #[test]
    fn stress_many_producers_many_consumers() {
        let producers = 3u64;
        let consumers = 3;
        let per: u64 = if cfg!(miri) { 200 } else { 300_000 };
        let ring = Arc::new(MpmcRing::<u64>::new(64).unwrap());
        let done = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for p in 0..producers {
            let ring = ring.clone();
            handles.push(std::thread::spawn(move || {
                let mut i = 0;
                while i < per {
                    let vals: Vec<u64> = (i..(i + 8).min(per)).map(|v| (p << 32) | v).collect();
                    let n = ring.enqueue_slice(&vals);
                    i += n as u64;
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        let mut cons = Vec::new();
        for _ in 0..consumers {
            let ring = ring.clone();
            let done = done.clone();
            cons.push(std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut last = vec![None::<u64>; producers as usize];
                let mut buf = [0u64; 16];
                while done.load(Ordering::Relaxed) < producers * per {
                    let n = ring.dequeue_slice(&mut buf);
                    if n == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    done.fetch_add(n as u64, Ordering::Relaxed);
                    for &v in &buf[..n] {
                        let p = (v >> 32) as usize;
                        let s = v & 0xffff_ffff;
                        if let Some(prev) = last[p] {
                            assert!(s > prev, "per-producer order broken for one consumer");
                        }
                        last[p] = Some(s);
                        seen.push(v);
                    }
                }
                seen
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let mut all = HashSet::new();
        for c in cons {
            for v in c.join().unwrap() {
                assert!(all.insert(v), "value {v:#x} delivered twice");
            }
        }
        assert_eq!(all.len() as u64, producers * per);
        assert!(ring.is_empty());
    }
}
