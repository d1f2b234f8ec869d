//! The four XSK rings, mapped from the socket: fill and completion (UMEM addresses, `u64`),
//! rx and tx (descriptors, [`libc::xdp_desc`]).
//!
//! Each ring is single-producer/single-consumer with the kernel on the other side. Layout, from
//! `XDP_MMAP_OFFSETS`: a `u32` producer index, a `u32` consumer index, a `u32` flags word, and a
//! power-of-two array of entries. Indices run freely and wrap at 2³²; an entry's slot is
//! `index & (size - 1)`.
//!
//! The protocol is the kernel's (`net/xdp/xsk_queue.h`): we read the other side's index with an
//! **acquire** load (so its entries are visible before we read them, or its consumption is
//! complete before we overwrite them) and publish our own with a **release** store (so our
//! entries, or our reads, happen before the kernel sees the new index). Like libxdp we cache
//! both indices and touch the shared ones only when the cached view runs short.

use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// `XDP_RING_NEED_WAKEUP` in a ring's flags word.
const NEED_WAKEUP: u32 = libc::XDP_RING_NEED_WAKEUP;

/// One mapped ring.
pub(crate) struct Ring<T: Copy> {
    map: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    size: u32,
    /// Our view of the producer index (ours when we produce, the kernel's when we consume).
    cached_prod: u32,
    /// Our view of the consumer index. When we produce it is kept `size` ahead (libxdp's trick),
    /// so `cached_cons - cached_prod` is the free room directly.
    cached_cons: u32,
    _t: PhantomData<T>,
}

// SAFETY: the ring is a private mapping of kernel memory; the kernel side is synchronised by the
// acquire/release protocol above and the user side is mutated only through `&mut self`. Moving
// the handle to another thread (the lcore that owns the queue) is therefore fine.
unsafe impl<T: Copy + Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Maps the ring at page offset `pgoff` of socket `fd`, laid out as `off` says, with `size`
    /// entries. `producer_side` says whether user space produces into it (fill, tx) or consumes
    /// from it (rx, completion).
    pub(crate) fn map(
        fd: RawFd,
        pgoff: u64,
        off: &libc::xdp_ring_offset,
        size: u32,
        producer_side: bool,
    ) -> io::Result<Ring<T>> {
        debug_assert!(size.is_power_of_two());
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a shared mapping of the ring the kernel created for this socket; no address
        // hint, so it cannot overlap existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = p.cast::<u8>();
        // SAFETY: the kernel guarantees these offsets lie inside the ring it mapped, u32 fields
        // 4-byte aligned and descriptors naturally aligned; mmap never returns null here.
        let mut r = unsafe {
            Ring {
                map: NonNull::new_unchecked(base),
                map_len,
                producer: NonNull::new_unchecked(base.add(off.producer as usize).cast()),
                consumer: NonNull::new_unchecked(base.add(off.consumer as usize).cast()),
                flags: NonNull::new_unchecked(base.add(off.flags as usize).cast()),
                descs: NonNull::new_unchecked(base.add(off.desc as usize).cast()),
                mask: size - 1,
                size,
                cached_prod: 0,
                cached_cons: 0,
                _t: PhantomData,
            }
        };
        if producer_side {
            r.cached_prod = r.producer().load(Ordering::Relaxed);
            r.cached_cons = r.consumer().load(Ordering::Acquire).wrapping_add(size);
        } else {
            r.cached_cons = r.consumer().load(Ordering::Relaxed);
            r.cached_prod = r.producer().load(Ordering::Acquire);
        }
        Ok(r)
    }

    #[inline]
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into our live mapping; the kernel accesses it atomically too.
        unsafe { self.producer.as_ref() }
    }

    #[inline]
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.consumer.as_ref() }
    }

    /// Number of entries.
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// True when the kernel asks to be woken up (`XDP_RING_NEED_WAKEUP`).
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into our live mapping; the kernel updates it atomically.
        unsafe { self.flags.as_ref() }.load(Ordering::Acquire) & NEED_WAKEUP != 0
    }

    #[inline]
    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: `index & mask` < size, inside the descriptor array of the mapping.
        unsafe { self.descs.as_ptr().add((index & self.mask) as usize) }
    }

    // ---- producer side (fill, tx) ----

    /// Free entries, up to `want`: refreshes the kernel's consumer index only when the cached
    /// view has fewer than `want`.
    #[inline]
    pub(crate) fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return want;
        }
        self.cached_cons = self
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod).min(want)
    }

    /// Writes entry `i` of the batch being produced (`i` < what `prod_free` granted).
    #[inline]
    pub(crate) fn prod_write(&mut self, i: u32, v: T) {
        // SAFETY: the slot is free: `prod_free` saw the kernel consume past it, and the acquire
        // load ordered its reads before our write.
        unsafe { self.slot(self.cached_prod.wrapping_add(i)).write(v) };
    }

    /// Publishes `n` written entries.
    #[inline]
    pub(crate) fn prod_submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.producer().store(self.cached_prod, Ordering::Release);
    }

    /// Entries produced that the kernel has not consumed yet.
    #[inline]
    pub(crate) fn prod_pending(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.consumer().load(Ordering::Acquire))
    }

    // ---- consumer side (rx, completion) ----

    /// Entries ready to read, up to `want`: refreshes the kernel's producer index only when the
    /// cached view has fewer than `want`.
    #[inline]
    pub(crate) fn cons_peek(&mut self, want: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= want {
            return want;
        }
        self.cached_prod = self.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons).min(want)
    }

    /// Reads entry `i` of the batch being consumed (`i` < what `cons_peek` granted).
    #[inline]
    pub(crate) fn cons_read(&self, i: u32) -> T {
        // SAFETY: the entry was published by the kernel (acquire load of its producer index in
        // `cons_peek`) and not yet released back to it.
        unsafe { self.slot(self.cached_cons.wrapping_add(i)).read() }
    }

    /// Gives `n` read entries back to the kernel.
    #[inline]
    pub(crate) fn cons_release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.consumer().store(self.cached_cons, Ordering::Release);
    }
}

impl<T: Copy> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range mapped in `map`; no reference into it survives
        // (all accessors borrow `self`).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}
