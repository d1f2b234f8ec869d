//! Packet memory: arenas on huge pages, mempools with per-lcore caches, and mbufs.

mod arena;
mod mbuf;
mod mempool;

pub use arena::{Arena, ArenaError, Backing, HugePolicy, HUGE_PAGE_SIZE, SMALL_PAGE_SIZE};
pub use mbuf::{ol, Mbuf, Segments, NO_PORT, SCRATCH_LEN};
pub use mempool::{free_burst, Mempool, MempoolError, MempoolParams, MempoolStats, CACHE_MAX};
