//! The L2/L3 stack: forwarding table, neighbour table, and the graph nodes that replace the
//! Linux receive and send paths (see `../shared/DESIGN.md` for the function-to-node map).

pub mod env;
pub mod fib;
pub mod frag;
pub mod neigh;
pub mod nodes;
pub mod offload;
pub mod setup;
pub mod tcp;

pub use env::{StackEnv, StackParams};
pub use fib::{Fib, FibError, HopKind, IfAddr, Interface, NextHop, Route};
pub use neigh::{NeighId, NeighState, NeighTable};
