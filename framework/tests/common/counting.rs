//! A counting global allocator for the zero-allocation tests: a test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;`, switches counting on around the
//! steady state it wants to prove allocation-free, and reads [`allocations`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Forwards to the system allocator and counts allocations (and reallocations) made while
/// counting is on for the calling thread or for all threads.
pub struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static WATCH_ALL: AtomicBool = AtomicBool::new(false);

thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

fn watched() -> bool {
    WATCH_ALL.load(Ordering::Relaxed) || WATCH.with(|w| w.get())
}

// SAFETY: forwards every call to the system allocator unchanged; only adds a counter (an
// atomic and a const-initialised thread-local, neither of which allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if watched() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System` through this allocator with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if watched() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Counts (or stops counting) the calling thread's allocations.
pub fn watch_this_thread(on: bool) {
    WATCH.with(|w| w.set(on));
}

/// Counts (or stops counting) the allocations of every thread.
pub fn watch_all_threads(on: bool) {
    WATCH_ALL.store(on, Ordering::Relaxed);
}

/// Allocations counted since the start or the last [`reset`].
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// Sets the count back to 0.
pub fn reset() {
    ALLOCS.store(0, Ordering::Relaxed);
}
