//! Bounded lockless rings, the only way packets and events cross between lcores.
//!
//! * [`spsc`] — single producer, single consumer: the data path between two cores. Each side
//!   keeps a private copy of the other side's index and only reloads it when the ring looks
//!   full (or empty), so a burst costs one acquire load and one release store per side.
//! * [`MpmcRing`] — multi-producer, multi-consumer, in the style of DPDK's `rte_ring`: a
//!   compare-and-swap reserves a range of slots, the items are copied, then the tail is
//!   published in order. Used for fan-in, control messages and the mempool's shared store.
//!
//! Both have power-of-two capacities, cache-line padded indices, and burst (as many as fit)
//! and bulk (all or nothing) operations. Neither blocks: a full ring refuses items and the
//! caller counts the drop.

mod mpmc;
mod spsc;

pub use mpmc::MpmcRing;
pub use spsc::{spsc, Consumer, Producer};

/// Error for a ring capacity that is zero, not a power of two, or too large.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ring capacity {0} is invalid: it must be a power of two between 1 and 2^31")]
pub struct BadCapacity(pub usize);

pub(crate) fn check_capacity(capacity: usize) -> Result<usize, BadCapacity> {
    if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 31) {
        Err(BadCapacity(capacity))
    } else {
        Ok(capacity)
    }
}

pub(crate) fn alloc_slots<T>(
    capacity: usize,
) -> Box<[core::cell::UnsafeCell<core::mem::MaybeUninit<T>>]> {
    (0..capacity)
        .map(|_| core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()))
        .collect()
}

/// Base pointer of a ring's slot array, valid for writes to any slot (the slots are
/// `UnsafeCell`s, so writing through a pointer derived from a shared borrow is allowed).
#[inline]
pub(crate) fn slot_base<T>(slots: &[core::cell::UnsafeCell<core::mem::MaybeUninit<T>>]) -> *mut T {
    core::cell::UnsafeCell::raw_get(slots.as_ptr()).cast::<T>()
}

/// Copies `n` items from `src` into the ring slots starting at position `pos`, wrapping.
///
/// # Safety
/// The `n` slots from `pos` must be reserved by the caller and free; `src` must hold `n`
/// initialised items whose ownership moves into the ring.
#[inline]
pub(crate) unsafe fn copy_into_ring<T>(
    base: *mut T,
    mask: usize,
    pos: usize,
    src: *const T,
    n: usize,
) {
    let i = pos & mask;
    let first = n.min(mask + 1 - i);
    core::ptr::copy_nonoverlapping(src, base.add(i), first);
    core::ptr::copy_nonoverlapping(src.add(first), base, n - first);
}

/// Copies `n` items out of the ring slots starting at position `pos`, wrapping.
///
/// # Safety
/// The `n` slots from `pos` must be reserved by the caller and hold published items, whose
/// ownership moves to `dst` (which must have room for `n`).
#[inline]
pub(crate) unsafe fn copy_out_of_ring<T>(
    base: *const T,
    mask: usize,
    pos: usize,
    dst: *mut T,
    n: usize,
) {
    let i = pos & mask;
    let first = n.min(mask + 1 - i);
    core::ptr::copy_nonoverlapping(base.add(i), dst, first);
    core::ptr::copy_nonoverlapping(base, dst.add(first), n - first);
}
