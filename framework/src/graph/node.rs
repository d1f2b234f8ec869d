//! The node interface: a function over a vector of packets that picks a next node for each.

use std::fmt;

use super::engine::{NodeId, Pending, DROP_NODE};
use super::meta::meta_mut;
use super::trace::TraceBuf;
use crate::batch::Burst;
use crate::mem::Mbuf;
use crate::runtime::LcoreIo;

/// A graph node. One instance per lcore; never shared, so no locks.
pub trait Node: Send {
    /// Names of the nodes this one sends to; `ctx.enqueue(i, m)` sends to the `i`-th. Asked
    /// once when the graph is built.
    fn next_nodes(&self) -> Vec<String>;

    /// Called once on the lcore before the first packet: register drop reasons here.
    fn init(&mut self, _ctx: &mut InitCtx<'_>) {}

    /// Handles a vector. Every packet must leave `pkts` through `ctx.enqueue` or `ctx.drop`;
    /// anything left is dropped as `unhandled`.
    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>);

    /// Called once per loop turn (timers: ARP aging, reassembly timeouts, ...). May send
    /// packets like `process`.
    fn poll(&mut self, _ctx: &mut NodeCtx<'_>) {}
}

/// Identifies a drop reason in a graph (index into its reason table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropId(pub(crate) u16);

impl DropId {
    /// A stand-in until `init` registers the node's reasons (counts under the drop node's
    /// `unhandled`).
    pub const fn placeholder() -> Self {
        DropId(0)
    }
}

/// What a node can do during `init`.
pub struct InitCtx<'a> {
    pub(crate) node_name: &'static str,
    pub(crate) reasons: &'a mut Vec<(&'static str, &'static str)>,
    pub(crate) lcore: u32,
}

impl InitCtx<'_> {
    /// Registers a drop reason of this node (e.g. `"bad_checksum"`); counted per node and
    /// reason by the drop node.
    pub fn drop_reason(&mut self, reason: &'static str) -> DropId {
        let key = (self.node_name, reason);
        if let Some(i) = self.reasons.iter().position(|r| *r == key) {
            return DropId(i as u16);
        }
        self.reasons.push(key);
        DropId((self.reasons.len() - 1) as u16)
    }

    /// The lcore this graph instance runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }
}

/// What a node can do while it runs.
pub struct NodeCtx<'a> {
    pub(crate) node_name: &'static str,
    pub(crate) edges: &'a [NodeId],
    pub(crate) edge_names: &'a [&'static str],
    pub(crate) pending: &'a mut [Pending],
    pub(crate) io: &'a mut LcoreIo,
    pub(crate) trace: &'a mut TraceBuf,
    pub(crate) now_ns: u64,
    pub(crate) overflow: &'a mut u64,
    pub(crate) reasons: &'a [(&'static str, &'static str)],
    pub(crate) counts: &'a [crate::counter::Counter],
}

impl<'a> NodeCtx<'a> {
    /// Sends a packet along edge `edge` (an index into [`Node::next_nodes`]). If the next node's
    /// input vector is full the packet is dropped and counted as `graph_queue_full`.
    #[inline(always)]
    pub fn enqueue(&mut self, edge: usize, m: Mbuf) {
        let target = self.edges[edge];
        if let Err(m) = self.pending[target].push(m) {
            *self.overflow += 1;
            drop(m);
        }
    }

    /// Sends every packet of `pkts` along `edge`, leaving `pkts` empty.
    #[inline]
    pub fn enqueue_burst(&mut self, edge: usize, pkts: &mut Burst) {
        let target = self.edges[edge];
        let q = &mut self.pending[target];
        q.append_from(pkts);
        if !pkts.is_empty() {
            *self.overflow += pkts.len() as u64;
            crate::mem::free_burst(pkts);
        }
    }

    /// Free room in the input vector behind `edge` (for nodes that multiply packets).
    #[inline]
    pub fn room(&self, edge: usize) -> usize {
        self.pending[self.edges[edge]].remaining()
    }

    /// Sends a packet to the drop node, counted under `reason`.
    #[inline]
    pub fn drop(&mut self, reason: DropId, mut m: Mbuf) {
        if m.is_traced() {
            let id = super::meta::meta(&m).trace_id;
            let why = self.reasons.get(reason.0 as usize).map_or("?", |r| r.1);
            self.trace
                .record(id, self.node_name, format_args!("drop ({why}) → drop"));
        }
        meta_mut(&mut m).drop_reason = reason.0;
        if let Err(m) = self.pending[DROP_NODE].push(m) {
            *self.overflow += 1;
            drop(m);
        }
    }

    /// Counts `n` events under `reason` without dropping anything (e.g. "no_route" for a packet
    /// that goes on to `icmp-error`).
    #[inline]
    pub fn count(&mut self, reason: DropId, n: u64) {
        if let Some(c) = self.counts.get(reason.0 as usize) {
            c.add(n);
        }
    }

    /// Records a trace line for `m` if it is traced (cheap no-op otherwise).
    #[inline]
    pub fn trace(&mut self, m: &Mbuf, args: fmt::Arguments<'_>) {
        if m.is_traced() {
            let id = super::meta::meta(m).trace_id;
            self.trace.record(id, self.node_name, args);
        }
    }

    /// Name of the node behind `edge` (for trace lines).
    #[inline]
    pub fn edge_name(&self, edge: usize) -> &'static str {
        self.edge_names[edge]
    }

    /// The lcore's transmit side (used by the `tx` node and by nodes that reply directly).
    #[inline]
    pub fn io(&mut self) -> &mut LcoreIo {
        self.io
    }

    /// Monotonic time of this dispatch in nanoseconds (one clock read per dispatch).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }
}
