//! The vector packet graph, in the style of FD.io VPP.
//!
//! Nodes are functions over vectors of packets that choose a next node for each packet; the
//! engine batches packets per next node and runs nodes in topological order until the vector is
//! consumed. Every node counts calls, packets, cycles and drops by reason; chosen packets can be
//! traced node by node.

/// Records a trace line for a packet only if it is traced; the format arguments are not even
/// evaluated otherwise (unlike a plain `ctx.trace(m, format_args!(..))` call, whose arguments
/// are computed for every packet).
#[macro_export]
macro_rules! trace_pkt {
    ($ctx:expr, $m:expr, $($arg:tt)*) => {
        if $m.is_traced() {
            $ctx.trace($m, format_args!($($arg)*));
        }
    };
}

mod engine;
pub mod meta;
mod node;
pub mod trace;

pub use engine::{
    Graph, GraphBuilder, GraphError, GraphMonitor, GraphStage, NodeCounters, NodeId, NodeStats,
    DROP_NODE_NAME, PENDING_CAP,
};
pub use meta::{meta, meta_mut, PktMeta};
pub use node::{DropId, InitCtx, Node, NodeCtx};
pub use trace::{TraceControl, TraceRecord};

#[cfg(test)]
mod tests;
