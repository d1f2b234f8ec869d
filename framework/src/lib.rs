//! ferroplane: a framework for kernel-bypass style packet processing.
//!
//! Dedicated cores ("lcores") run run-to-completion poll loops that pull bursts of packets from
//! port queues into mempool-backed [`mem::Mbuf`]s, hand them to a pipeline stage, and push them
//! back out in bursts. See `docs/ARCHITECTURE.md` for the map of modules.

#![warn(missing_docs)]

pub mod app;
pub mod batch;
pub mod config;
pub mod counter;
pub mod graph;
pub mod lcore;
pub mod lpm;
pub mod mem;
pub mod metrics;
pub mod pktgen;
pub mod port;
pub mod ring;
pub mod runtime;
pub mod stack;
pub mod stats;
pub mod tcp;
pub mod wire;

pub use batch::{Batch, Burst, BURST_MAX};
pub use mem::{Mbuf, Mempool};
