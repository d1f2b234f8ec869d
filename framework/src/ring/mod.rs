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
