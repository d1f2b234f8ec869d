//! Logical core identity: which lcore the current thread is.
//!
//! Like DPDK's `rte_lcore_id()`, each polling thread registers a small integer id. Per-lcore
//! state that must not be shared (mempool caches, per-core counters) is indexed by this id, and
//! the registry guarantees that no two live threads hold the same id, which is what makes that
//! state safe to use without locks. Threads without an id (the main thread, tests, a metrics
//! scraper) still work; they simply bypass per-lcore caches.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Number of lcore ids (0..MAX_LCORES).
pub const MAX_LCORES: usize = 64;

const NONE: u32 = u32::MAX;

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(NONE) };
}

static TAKEN: [AtomicBool; MAX_LCORES] = [const { AtomicBool::new(false) }; MAX_LCORES];

/// The lcore id of the calling thread, if it registered one.
#[inline]
pub fn current() -> Option<usize> {
    let id = CURRENT.with(|c| c.get());
    if id == NONE {
        None
    } else {
        Some(id as usize)
    }
}

/// Why an lcore id could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LcoreError {
    /// The id is not below [`MAX_LCORES`].
    #[error("lcore id {0} is out of range (valid: 0..{MAX_LCORES})")]
    OutOfRange(usize),
    /// Another live thread holds the id.
    #[error("lcore id {0} is already in use by another thread")]
    InUse(usize),
    /// This thread already has an id.
    #[error("this thread is already lcore {0}")]
    AlreadyRegistered(usize),
}

/// Proof that the current thread holds an lcore id; dropping it releases the id.
///
/// Not `Send`: the id belongs to the thread that registered it.
#[derive(Debug)]
pub struct LcoreGuard {
    id: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl LcoreGuard {
    /// The id held.
    pub fn id(&self) -> usize {
        self.id
    }
}

/// Registers the calling thread as lcore `id`.
pub fn register(id: usize) -> Result<LcoreGuard, LcoreError> {
    if id >= MAX_LCORES {
        return Err(LcoreError::OutOfRange(id));
    }
    if let Some(cur) = current() {
        return Err(LcoreError::AlreadyRegistered(cur));
    }
    // Acquire pairs with the release in `Drop`, so state left by the previous holder of this id
    // (its mempool cache contents) is visible to us.
    if TAKEN[id]
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(LcoreError::InUse(id));
    }
    CURRENT.with(|c| c.set(id as u32));
    Ok(LcoreGuard {
        id,
        _not_send: std::marker::PhantomData,
    })
}

/// Registers the calling thread with the first free id at or above `from`.
pub fn register_any(from: usize) -> Result<LcoreGuard, LcoreError> {
    for id in from..MAX_LCORES {
        match register(id) {
            Ok(g) => return Ok(g),
            Err(LcoreError::InUse(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LcoreError::InUse(MAX_LCORES - 1))
}

impl Drop for LcoreGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(NONE));
        TAKEN[self.id].store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_exclusive_and_released() {
        // Use a high id unlikely to clash with other tests running in parallel.
        let g = register(61).unwrap();
        assert_eq!(current(), Some(61));
        assert_eq!(register(62).unwrap_err(), LcoreError::AlreadyRegistered(61));
        std::thread::spawn(|| assert_eq!(register(61).unwrap_err(), LcoreError::InUse(61)))
            .join()
            .unwrap();
        drop(g);
        assert_eq!(current(), None);
        std::thread::spawn(|| assert!(register(61).is_ok()))
            .join()
            .unwrap();
        assert_eq!(register(64).unwrap_err(), LcoreError::OutOfRange(64));
    }
}
