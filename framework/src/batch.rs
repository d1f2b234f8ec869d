//! Fixed-capacity, inline vectors used to move bursts of packets without touching the heap.
//!
//! A [`Batch`] is what DPDK passes around as `struct rte_mbuf *pkts[N]` plus a count: an array
//! that lives on the stack (or inside a queue object), filled by `rx_burst`, consumed by
//! `tx_burst`. Unlike a `Vec` it can never reallocate, so the data path cannot allocate by
//! accident when a burst is bigger than expected: pushes past the capacity are refused.

use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;

use crate::mem::Mbuf;

/// The largest burst any port or ring call moves at once.
pub const BURST_MAX: usize = 256;

/// A burst of packets: the unit that `rx_burst`, `tx_burst` and pipeline stages exchange.
pub type Burst = Batch<Mbuf, BURST_MAX>;

/// A vector with inline storage for at most `N` items.
///
/// Items are kept in order; [`Batch::drain_front`] removes a prefix in one move, which is what
/// a port does after sending the first `n` packets of a burst.
pub struct Batch<T, const N: usize> {
    len: usize,
    items: [MaybeUninit<T>; N],
}

impl<T, const N: usize> Batch<T, N> {
    /// An empty batch.
    #[inline]
    pub const fn new() -> Self {
        Batch {
            len: 0,
            // An array of `MaybeUninit` needs no initialisation.
            items: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// How many items the batch can hold.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of items held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no items are held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more items fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// Free slots left.
    #[inline]
    pub fn remaining(&self) -> usize {
        N - self.len
    }

    /// Appends an item, or gives it back when the batch is full.
    #[inline(always)]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == N {
            return Err(item);
        }
        self.items[self.len].write(item);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live range, so it is read
        // exactly once.
        Some(unsafe { self.items[self.len].assume_init_read() })
    }

    /// The live items as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }

    /// The live items as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the first `len` slots are initialised and borrowed mutably through `self`.
        unsafe { core::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<T>(), self.len) }
    }

    /// Iterates over the items.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the items.
    #[inline]
    pub fn iter_mut(&mut self) -> core::slice::IterMut<'_, T> {
        self.as_mut_slice().iter_mut()
    }

    /// Drops every item (for packets: returns them to their pools).
    #[inline]
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Drops the items from index `len` on.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let old = self.len;
        // Shorten first so a panicking destructor cannot cause a double drop.
        self.len = len;
        // SAFETY: slots `len..old` were initialised and are no longer part of the live range.
        unsafe {
            let tail = ptr::slice_from_raw_parts_mut(
                self.items.as_mut_ptr().add(len).cast::<T>(),
                old - len,
            );
            ptr::drop_in_place(tail);
        }
    }

    /// Removes the first `n` items (clamped to `len`) and hands each to `f`, in order; the
    /// remaining items move to the front.
    pub fn drain_front(&mut self, n: usize, mut f: impl FnMut(T)) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        let old = self.len;
        // Items 0..n are moved out one by one. If `f` panics, the not-yet-moved items of the
        // prefix leak rather than being dropped twice: set len to 0 for the duration.
        self.len = 0;
        let base = self.items.as_mut_ptr().cast::<T>();
        for i in 0..n {
            // SAFETY: slot i < old was initialised; it is read exactly once.
            let item = unsafe { ptr::read(base.add(i)) };
            f(item);
        }
        if old > n {
            // SAFETY: slots n..old are initialised; `ptr::copy` handles the overlap.
            unsafe { ptr::copy(base.add(n), base, old - n) };
        }
        self.len = old - n;
    }

    /// Removes the first `n` items and drops them (returns packets to their pools).
    #[inline]
    pub fn discard_front(&mut self, n: usize) {
        self.drain_front(n, drop);
    }

    /// Keeps only the items for which `keep` returns true, preserving order; the others are
    /// handed to `reject` (for packets: counted and dropped, or sent elsewhere).
    pub fn retain_or(&mut self, mut keep: impl FnMut(&mut T) -> bool, mut reject: impl FnMut(T)) {
        let old = self.len;
        self.len = 0;
        let base = self.items.as_mut_ptr().cast::<T>();
        let mut w = 0;
        for r in 0..old {
            // SAFETY: slot r is initialised and read once; kept items are written back to slot
            // w <= r, which was already vacated.
            unsafe {
                let mut item = ptr::read(base.add(r));
                if keep(&mut item) {
                    ptr::write(base.add(w), item);
                    w += 1;
                    // Slots 0..w are initialised again: expose them so a panic in a later
                    // callback still drops them.
                    self.len = w;
                } else {
                    reject(item);
                }
            }
        }
        self.len = w;
    }

    /// Moves as many items as fit from the front of `src` to the end of `self`; returns the count.
    pub fn append_from<const M: usize>(&mut self, src: &mut Batch<T, M>) -> usize {
        let n = self.remaining().min(src.len);
        if n == 0 {
            return 0;
        }
        // SAFETY: src slots 0..n are initialised and dst slots len..len+n are free; after the
        // copy the moved items are removed from `src` by shifting its tail down.
        unsafe {
            let s = src.items.as_mut_ptr().cast::<T>();
            let d = self.items.as_mut_ptr().cast::<T>().add(self.len);
            ptr::copy_nonoverlapping(s, d, n);
            if src.len > n {
                ptr::copy(s.add(n), s, src.len - n);
            }
        }
        src.len -= n;
        self.len += n;
        n
    }

    /// Forgets the first `n` items (their ownership was moved out by a raw copy) and moves the
    /// rest to the front.
    ///
    /// # Safety
    /// `n <= len`, and the caller must already have taken ownership of the first `n` items.
    #[inline]
    pub unsafe fn forget_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let base = self.items.as_mut_ptr().cast::<T>();
        if self.len > n {
            ptr::copy(base.add(n), base, self.len - n);
        }
        self.len -= n;
    }

    /// Raw pointer to the first slot, for drivers that fill slots directly.
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.items.as_mut_ptr().cast::<T>()
    }

    /// Sets the number of live items.
    ///
    /// # Safety
    /// `len <= N`, and the first `len` slots must be initialised; any item beyond `len` that was
    /// live before is forgotten, not dropped.
    #[inline]
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= N);
        self.len = len;
    }
}

impl<T, const N: usize> Default for Batch<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Batch<T, N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Batch<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T, const N: usize> core::ops::Index<usize> for Batch<T, N> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.as_slice()[i]
    }
}

impl<T, const N: usize> core::ops::IndexMut<usize> for Batch<T, N> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.as_mut_slice()[i]
    }
}

// SAFETY: a Batch owns its items like a Vec does.
unsafe impl<T: Send, const N: usize> Send for Batch<T, N> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn push_pop_and_capacity() {
        let mut b: Batch<u32, 4> = Batch::new();
        for i in 0..4 {
            assert!(b.push(i).is_ok());
        }
        assert_eq!(b.push(9), Err(9));
        assert!(b.is_full());
        assert_eq!(b.as_slice(), &[0, 1, 2, 3]);
        assert_eq!(b.pop(), Some(3));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn drain_front_keeps_order_of_rest() {
        let mut b: Batch<String, 8> = Batch::new();
        for i in 0..6 {
            b.push(i.to_string()).unwrap();
        }
        let mut got = Vec::new();
        b.drain_front(4, |s| got.push(s));
        assert_eq!(got, ["0", "1", "2", "3"]);
        assert_eq!(b.as_slice(), ["4", "5"]);
        b.drain_front(10, drop);
        assert!(b.is_empty());
    }

    #[test]
    fn drops_every_item_exactly_once() {
        let tracker = Rc::new(());
        {
            let mut b: Batch<Rc<()>, 16> = Batch::new();
            for _ in 0..10 {
                b.push(tracker.clone()).unwrap();
            }
            assert_eq!(Rc::strong_count(&tracker), 11);
            b.discard_front(3);
            assert_eq!(Rc::strong_count(&tracker), 8);
            b.truncate(5);
            assert_eq!(Rc::strong_count(&tracker), 6);
            let mut rejected = 0;
            let mut k = 0;
            b.retain_or(
                |_| {
                    k += 1;
                    k % 2 == 0
                },
                |_| rejected += 1,
            );
            assert_eq!(rejected, 3);
            assert_eq!(b.len(), 2);
            assert_eq!(Rc::strong_count(&tracker), 3);
        }
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn append_from_moves_prefix() {
        let mut a: Batch<u8, 4> = Batch::new();
        let mut b: Batch<u8, 8> = Batch::new();
        a.push(1).unwrap();
        for i in 10..16 {
            b.push(i).unwrap();
        }
        assert_eq!(a.append_from(&mut b), 3);
        assert_eq!(a.as_slice(), &[1, 10, 11, 12]);
        assert_eq!(b.as_slice(), &[13, 14, 15]);
    }
}
