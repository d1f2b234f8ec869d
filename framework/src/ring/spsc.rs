//! Single-producer single-consumer ring.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::{alloc_slots, check_capacity, BadCapacity};
use crate::batch::Batch;

struct Shared<T> {
    /// Next slot the consumer reads (free-running, wraps).
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes (free-running, wraps).
    tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: slots are handed from exactly one producer to exactly one consumer; the release store
// of `tail` (resp. `head`) publishes a slot's contents (resp. its vacancy) to the other side.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: the shared state owns items of type T, which may move between threads.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    #[inline]
    fn slot(&self, pos: usize) -> *mut MaybeUninit<T> {
        self.slots[pos & self.mask].get()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let head = *self.head.get_mut();
        let tail = *self.tail.get_mut();
        let mut pos = head;
        while pos != tail {
            // SAFETY: slots head..tail hold items enqueued and never dequeued; we own them now.
            unsafe { (*self.slot(pos)).assume_init_drop() };
            pos = pos.wrapping_add(1);
        }
    }
}

/// The sending half of an SPSC ring. Owned by one thread at a time.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    cached_head: usize,
}

/// The receiving half of an SPSC ring. Owned by one thread at a time.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    cached_tail: usize,
}

/// Creates an SPSC ring holding up to `capacity` items (a power of two).
pub fn spsc<T: Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), BadCapacity> {
    let capacity = check_capacity(capacity)?;
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        mask: capacity - 1,
        slots: alloc_slots(capacity),
    });
    Ok((
        Producer {
            shared: shared.clone(),
            tail: 0,
            cached_head: 0,
        },
        Consumer {
            shared,
            head: 0,
            cached_tail: 0,
        },
    ))
}

impl<T: Send> Producer<T> {
    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Free slots, reloading the consumer's index if the cached one says fewer than `want`.
    #[inline]
    fn free(&mut self, want: usize) -> usize {
        let cap = self.shared.mask + 1;
        let mut free = cap - self.tail.wrapping_sub(self.cached_head);
        if free < want {
            self.cached_head = self.shared.head.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.cached_head);
        }
        free
    }

    /// Number of free slots right now.
    pub fn free_count(&mut self) -> usize {
        self.free(usize::MAX)
    }

    /// Enqueues one item, or gives it back when the ring is full.
    #[inline]
    pub fn enqueue(&mut self, item: T) -> Result<(), T> {
        if self.free(1) == 0 {
            return Err(item);
        }
        // SAFETY: slot `tail` is free (the consumer has released it) and only we write it.
        unsafe { (*self.shared.slot(self.tail)).write(item) };
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Moves as many items as fit from the front of `src` into the ring; the rest stay in
    /// `src` in order. Returns the number moved.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&mut self, src: &mut Batch<T, N>) -> usize {
        let n = self.free(src.len()).min(src.len());
        self.push_n(src, n)
    }

    /// Moves all items of `src` into the ring, or none if they do not all fit.
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&mut self, src: &mut Batch<T, N>) -> bool {
        let n = src.len();
        if self.free(n) < n {
            return false;
        }
        self.push_n(src, n);
        true
    }

    #[inline]
    fn push_n<const N: usize>(&mut self, src: &mut Batch<T, N>, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let shared = &*self.shared;
        // SAFETY: the n slots from `tail` are free (checked by the caller) and only we write
        // them; the first n items of `src` move into them and are then forgotten by `src`.
        unsafe {
            super::copy_into_ring(
                super::slot_base(&shared.slots),
                shared.mask,
                self.tail,
                src.as_mut_ptr(),
                n,
            );
            src.forget_front(n);
        }
        self.tail = self.tail.wrapping_add(n);
        shared.tail.store(self.tail, Ordering::Release);
        n
    }

    /// Copies as many items of `src` as fit; returns how many were enqueued.
    #[inline]
    pub fn enqueue_slice(&mut self, src: &[T]) -> usize
    where
        T: Copy,
    {
        let n = self.free(src.len()).min(src.len());
        self.copy_in(&src[..n]);
        n
    }

    /// Copies all of `src` into the ring, or nothing if it does not all fit.
    #[inline]
    pub fn enqueue_slice_bulk(&mut self, src: &[T]) -> bool
    where
        T: Copy,
    {
        if self.free(src.len()) < src.len() {
            return false;
        }
        self.copy_in(src);
        true
    }

    #[inline]
    fn copy_in(&mut self, src: &[T])
    where
        T: Copy,
    {
        if src.is_empty() {
            return;
        }
        let shared = &*self.shared;
        // SAFETY: these slots are free (checked by the caller) and only we write them.
        unsafe {
            super::copy_into_ring(
                super::slot_base(&shared.slots),
                shared.mask,
                self.tail,
                src.as_ptr(),
                src.len(),
            )
        };
        self.tail = self.tail.wrapping_add(src.len());
        self.shared.tail.store(self.tail, Ordering::Release);
    }
}

impl<T: Send> Consumer<T> {
    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Items available, reloading the producer's index if the cached one says fewer than `want`.
    #[inline]
    fn avail(&mut self, want: usize) -> usize {
        let mut avail = self.cached_tail.wrapping_sub(self.head);
        if avail < want {
            self.cached_tail = self.shared.tail.load(Ordering::Acquire);
            avail = self.cached_tail.wrapping_sub(self.head);
        }
        avail
    }

    /// Number of items waiting right now.
    pub fn len(&mut self) -> usize {
        self.avail(usize::MAX)
    }

    /// True when nothing is waiting.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Dequeues one item.
    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        if self.avail(1) == 0 {
            return None;
        }
        // SAFETY: slot `head` was published by the producer's release store and only we read it.
        let item = unsafe { (*self.shared.slot(self.head)).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Some(item)
    }

    /// Appends up to `max` items to `dst` (bounded by its free space); returns how many.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, dst: &mut Batch<T, N>, max: usize) -> usize {
        let want = max.min(dst.remaining());
        let n = self.avail(want).min(want);
        self.pop_n(dst, n);
        n
    }

    /// Appends exactly `n` items to `dst`, or nothing if fewer are waiting or `dst` lacks room.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&mut self, dst: &mut Batch<T, N>, n: usize) -> bool {
        if n > dst.remaining() || self.avail(n) < n {
            return false;
        }
        self.pop_n(dst, n);
        true
    }

    #[inline]
    fn pop_n<const N: usize>(&mut self, dst: &mut Batch<T, N>, n: usize) {
        if n == 0 {
            return;
        }
        let shared = &*self.shared;
        let len = dst.len();
        // SAFETY: slots head..head+n were published by the producer and are read once; `dst`
        // has room for n more (checked by the caller), which become initialised.
        unsafe {
            super::copy_out_of_ring(
                super::slot_base(&shared.slots),
                shared.mask,
                self.head,
                dst.as_mut_ptr().add(len),
                n,
            );
            dst.set_len(len + n);
        }
        self.head = self.head.wrapping_add(n);
        shared.head.store(self.head, Ordering::Release);
    }

    /// Copies up to `dst.len()` items into the front of `dst`; returns how many.
    #[inline]
    pub fn dequeue_slice(&mut self, dst: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = self.avail(dst.len()).min(dst.len());
        self.copy_out(&mut dst[..n]);
        n
    }

    /// Fills all of `dst`, or nothing if fewer items are waiting.
    #[inline]
    pub fn dequeue_slice_bulk(&mut self, dst: &mut [T]) -> bool
    where
        T: Copy,
    {
        if self.avail(dst.len()) < dst.len() {
            return false;
        }
        self.copy_out(dst);
        true
    }

    #[inline]
    fn copy_out(&mut self, dst: &mut [T])
    where
        T: Copy,
    {
        if dst.is_empty() {
            return;
        }
        let shared = &*self.shared;
        // SAFETY: these slots were published by the producer; `T: Copy` so reading leaves
        // nothing to drop.
        unsafe {
            super::copy_out_of_ring(
                super::slot_base(&shared.slots),
                shared.mask,
                self.head,
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        self.head = self.head.wrapping_add(dst.len());
        self.shared.head.store(self.head, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn rejects_bad_capacity() {
        assert!(spsc::<u8>(0).is_err());
        assert!(spsc::<u8>(12).is_err());
        assert!(spsc::<u8>(16).is_ok());
    }

    #[test]
    fn single_items_and_full_ring() {
        let (mut p, mut c) = spsc::<u32>(4).unwrap();
        for i in 0..4 {
            p.enqueue(i).unwrap();
        }
        assert_eq!(p.enqueue(99), Err(99));
        assert_eq!(c.len(), 4);
        assert_eq!(c.dequeue(), Some(0));
        p.enqueue(4).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| c.dequeue()).collect();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(c.dequeue(), None);
    }

    #[test]
    fn burst_moves_what_fits_and_bulk_is_all_or_nothing() {
        let (mut p, mut c) = spsc::<u32>(8).unwrap();
        let mut src: Batch<u32, 16> = Batch::new();
        for i in 0..12 {
            src.push(i).unwrap();
        }
        assert_eq!(p.enqueue_burst(&mut src), 8);
        assert_eq!(src.as_slice(), &[8, 9, 10, 11]);
        assert!(!p.enqueue_bulk(&mut src));
        assert_eq!(src.len(), 4);
        let mut dst: Batch<u32, 16> = Batch::new();
        assert!(!c.dequeue_bulk(&mut dst, 9));
        assert_eq!(c.dequeue_burst(&mut dst, 5), 5);
        assert!(p.enqueue_bulk(&mut src));
        assert!(src.is_empty());
        assert_eq!(c.dequeue_burst(&mut dst, 100), 7);
        assert_eq!(dst.as_slice(), &(0..12).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn slices_wrap_around() {
        let (mut p, mut c) = spsc::<u64>(8).unwrap();
        let mut out = [0u64; 8];
        for round in 0..20u64 {
            let src: Vec<u64> = (0..5).map(|i| round * 10 + i).collect();
            assert!(p.enqueue_slice_bulk(&src));
            assert_eq!(c.dequeue_slice(&mut out[..3]), 3);
            assert!(c.dequeue_slice_bulk(&mut out[3..5]));
            assert_eq!(&out[..5], &src[..]);
        }
        assert_eq!(p.enqueue_slice(&[1; 10]), 8);
        assert!(!c.dequeue_slice_bulk(&mut [0; 9]));
    }

    #[test]
    fn leftover_items_are_dropped_with_the_ring() {
        let tracker = Rc::new(());
        struct SendRc(#[allow(dead_code)] Rc<()>);
        // SAFETY: the test keeps both halves on one thread.
        unsafe impl Send for SendRc {}
        {
            let (mut p, mut c) = spsc::<SendRc>(8).unwrap();
            for _ in 0..5 {
                assert!(p.enqueue(SendRc(tracker.clone())).is_ok());
            }
            drop(c.dequeue());
            assert_eq!(Rc::strong_count(&tracker), 5);
            drop(p);
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn two_threads_transfer_in_order() {
        let total: u64 = if cfg!(miri) { 2_000 } else { 2_000_000 };
        let (mut p, mut c) = spsc::<u64>(256).unwrap();
        let producer = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut batch: Batch<u64, 32> = Batch::new();
            while next < total {
                while !batch.is_full() && next < total {
                    batch.push(next).unwrap();
                    next += 1;
                }
                if p.enqueue_burst(&mut batch) == 0 {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
            }
            while !batch.is_empty() {
                if p.enqueue_burst(&mut batch) == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0u64;
        let mut dst: Batch<u64, 64> = Batch::new();
        while expect < total {
            if c.dequeue_burst(&mut dst, 64) == 0 {
                std::thread::yield_now();
            }
            for v in dst.iter() {
                assert_eq!(*v, expect);
                expect += 1;
            }
            dst.clear();
        }
        producer.join().unwrap();
        assert_eq!(c.dequeue(), None);
    }
}
