//! The graph engine: builds a per-lcore graph from named nodes and runs vectors through it.
//!
//! Each node has an input vector. A dispatch puts the received burst into the entry node's
//! input, then runs nodes in topological order (a node runs only when its input holds packets)
//! until every input is empty. A node hands each packet to one of its edges; the engine thus
//! batches packets per next node, as VPP does. Per node it counts calls, packets and TSC cycles;
//! every drop goes to the built-in `drop` node, which counts it under its (node, reason).

use std::collections::HashMap;
use std::sync::Arc;

use super::meta::{meta, meta_mut};
use super::node::{DropId, InitCtx, Node, NodeCtx};
use super::trace::{TraceBuf, TraceControl};
use crate::batch::Burst;
use crate::counter::Counter;
use crate::mem::free_burst;
use crate::runtime::tsc::rdtsc;
use crate::runtime::{LcoreIo, Stage};

/// Index of a node in its graph.
pub type NodeId = usize;

/// Capacity of a node's input vector (one burst).
pub const PENDING_CAP: usize = crate::batch::BURST_MAX;

/// A node's input vector. Boxed, so that handing a node its input is a pointer swap rather than
/// a copy of the packet handles.
pub(crate) type Pending = Box<Burst>;

/// The drop node is always node 0.
pub(crate) const DROP_NODE: NodeId = 0;

/// Name of the built-in drop node.
pub const DROP_NODE_NAME: &str = "drop";

/// Passes over the graph per dispatch before packets still queued are dropped (guards against
/// a misconfigured cycle).
const MAX_PASSES: usize = 16;

/// Errors building a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share a name.
    #[error("node `{0}` is defined twice")]
    Duplicate(String),
    /// A node names a next node that does not exist.
    #[error("node `{node}` sends to `{next}`, which is not in the graph (nodes: {known})")]
    UnknownNext {
        /// The node.
        node: String,
        /// The missing next node.
        next: String,
        /// The nodes that exist.
        known: String,
    },
    /// The entry node does not exist.
    #[error("entry node `{0}` is not in the graph")]
    UnknownEntry(String),
    /// A splice names an edge that does not exist.
    #[error("cannot place `{via}` on edge {from} -> {to}: no such edge")]
    NoSuchEdge {
        /// Source node.
        from: String,
        /// Target node.
        to: String,
        /// Node to insert.
        via: String,
    },
}

/// Counters of one node on one lcore (single writer).
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Times the node ran on a vector.
    pub calls: Counter,
    /// Packets it was given.
    pub packets: Counter,
    /// TSC cycles spent in it.
    pub cycles: Counter,
}

/// Per-node figures of one lcore's graph, read by stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStats {
    /// Node name.
    pub node: String,
    /// Vectors processed.
    pub calls: u64,
    /// Packets processed.
    pub packets: u64,
    /// TSC cycles spent.
    pub cycles: u64,
    /// Drops by reason caused by this node.
    pub drops: Vec<(String, u64)>,
}

/// Read side of a graph's counters, kept by the runtime.
#[derive(Clone)]
pub struct GraphMonitor {
    names: Arc<[&'static str]>,
    nodes: Arc<[NodeCounters]>,
    reasons: Arc<[(&'static str, &'static str)]>,
    drops: Arc<[Counter]>,
    /// Packets dropped because a node's input vector was full.
    overflow: Arc<Counter>,
    trace: Arc<TraceControl>,
}

impl std::fmt::Debug for GraphMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMonitor")
            .field("nodes", &self.names)
            .finish()
    }
}

impl GraphMonitor {
    /// Reads every node's counters.
    pub fn stats(&self) -> Vec<NodeStats> {
        let mut out: Vec<NodeStats> = self
            .names
            .iter()
            .zip(self.nodes.iter())
            .map(|(n, c)| NodeStats {
                node: n.to_string(),
                calls: c.calls.get(),
                packets: c.packets.get(),
                cycles: c.cycles.get(),
                drops: Vec::new(),
            })
            .collect();
        for ((node, reason), c) in self.reasons.iter().zip(self.drops.iter()) {
            if let Some(s) = out.iter_mut().find(|s| s.node == *node) {
                s.drops.push((reason.to_string(), c.get()));
            }
        }
        if let Some(d) = out.iter_mut().find(|s| s.node == DROP_NODE_NAME) {
            d.drops
                .push(("graph_queue_full".to_string(), self.overflow.get()));
        }
        out
    }

    /// The trace control shared by this graph.
    pub fn trace(&self) -> &Arc<TraceControl> {
        &self.trace
    }

    /// The monitor of a stage that runs no graph but reports like one: a single node `node`
    /// with these event counters (an app lcore's application). Its stage (in this crate)
    /// writes them, so they reach the runtime report and `/metrics` the same way as a graph
    /// node's counters.
    pub fn single_node(node: &'static str, events: &[&'static str]) -> GraphMonitor {
        GraphMonitor {
            names: vec![node].into(),
            nodes: vec![NodeCounters::default()].into(),
            reasons: events.iter().map(|e| (node, *e)).collect(),
            drops: events.iter().map(|_| Counter::default()).collect(),
            overflow: Arc::new(Counter::default()),
            trace: TraceControl::new(),
        }
    }

    /// The counters of node `i` (single writer: the lcore running it).
    pub(crate) fn node_counters(&self, i: usize) -> Option<&NodeCounters> {
        self.nodes.get(i)
    }

    /// Event counter `i`, in the order the events were registered (single writer: the lcore
    /// running the graph).
    pub(crate) fn event(&self, i: usize) -> Option<&Counter> {
        self.drops.get(i)
    }
}

/// Collects nodes, then wires them into a [`Graph`].
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<(String, Box<dyn Node>)>,
    splices: Vec<(String, String, String)>,
}

impl GraphBuilder {
    /// An empty builder (the `drop` node is always added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node under `name`.
    pub fn add(&mut self, name: &str, node: Box<dyn Node>) -> &mut Self {
        self.nodes.push((name.to_string(), node));
        self
    }

    /// Places node `via` (added separately) on the edge `from -> to`: `from` then sends to `via`
    /// instead of `to`, like a netfilter hook on that path. `via` must itself send on to `to`.
    pub fn splice(&mut self, from: &str, to: &str, via: &str) -> &mut Self {
        self.splices
            .push((from.to_string(), to.to_string(), via.to_string()));
        self
    }

    /// Names of the nodes added so far.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|(n, _)| n.as_str())
    }

    /// Resolves edges, orders the nodes and runs each node's `init`.
    pub fn build(
        self,
        lcore: u32,
        entry: &str,
        trace: Arc<TraceControl>,
    ) -> Result<Graph, GraphError> {
        // Names live as long as the program: graphs are built once at start-up.
        let mut names: Vec<&'static str> = vec![DROP_NODE_NAME];
        let mut nodes: Vec<Option<Box<dyn Node>>> = vec![None];
        let mut index: HashMap<String, NodeId> = HashMap::new();
        index.insert(DROP_NODE_NAME.to_string(), DROP_NODE);
        for (name, node) in self.nodes {
            if index.contains_key(&name) {
                return Err(GraphError::Duplicate(name));
            }
            index.insert(name.clone(), names.len());
            names.push(Box::leak(name.into_boxed_str()));
            nodes.push(Some(node));
        }
        let known = || {
            let mut k: Vec<&str> = names.to_vec();
            k.sort_unstable();
            k.join(", ")
        };
        let mut edges: Vec<Vec<NodeId>> = vec![Vec::new(); names.len()];
        let mut edge_names: Vec<Vec<&'static str>> = vec![Vec::new(); names.len()];
        for id in 1..names.len() {
            let node = nodes[id].as_ref().expect("real node");
            for next in node.next_nodes() {
                let Some(&t) = index.get(&next) else {
                    return Err(GraphError::UnknownNext {
                        node: names[id].to_string(),
                        next,
                        known: known(),
                    });
                };
                edges[id].push(t);
                edge_names[id].push(names[t]);
            }
        }
        for (from, to, via) in &self.splices {
            let (Some(&f), Some(&t), Some(&v)) = (index.get(from), index.get(to), index.get(via))
            else {
                return Err(GraphError::NoSuchEdge {
                    from: from.clone(),
                    to: to.clone(),
                    via: via.clone(),
                });
            };
            let mut found = false;
            for (e, n) in edges[f].iter_mut().zip(edge_names[f].iter_mut()) {
                if *e == t {
                    *e = v;
                    *n = names[v];
                    found = true;
                }
            }
            if !found {
                return Err(GraphError::NoSuchEdge {
                    from: from.clone(),
                    to: to.clone(),
                    via: via.clone(),
                });
            }
        }
        let entry_id = *index
            .get(entry)
            .ok_or_else(|| GraphError::UnknownEntry(entry.to_string()))?;
        let order = topo_order(&edges, entry_id);

        let mut reasons: Vec<(&'static str, &'static str)> = Vec::new();
        let mut unhandled = Vec::with_capacity(names.len());
        for id in 0..names.len() {
            let mut ctx = InitCtx {
                node_name: names[id],
                reasons: &mut reasons,
                lcore,
            };
            unhandled.push(ctx.drop_reason("unhandled"));
            if let Some(n) = nodes[id].as_mut() {
                n.init(&mut ctx);
            }
        }
        let n = names.len();
        let monitor = GraphMonitor {
            names: names.clone().into(),
            nodes: (0..n).map(|_| NodeCounters::default()).collect(),
            drops: (0..reasons.len()).map(|_| Counter::default()).collect(),
            reasons: reasons.clone().into(),
            overflow: Arc::new(Counter::default()),
            trace: trace.clone(),
        };
        Ok(Graph {
            names,
            nodes,
            edges,
            edge_names,
            pending: (0..n).map(|_| Box::new(Burst::new())).collect(),
            order,
            unhandled,
            monitor,
            trace: TraceBuf::new(lcore, trace),
            scratch: Box::new(Burst::new()),
            overflow: 0,
            entry: entry_id,
        })
    }
}

/// Reverse post-order DFS from `entry`, then from every other node; back edges are ignored, so
/// cycles still get an order (and the pass loop handles packets sent backwards). The drop node
/// runs last.
fn topo_order(edges: &[Vec<NodeId>], entry: NodeId) -> Vec<NodeId> {
    fn visit(v: NodeId, edges: &[Vec<NodeId>], state: &mut [u8], post: &mut Vec<NodeId>) {
        state[v] = 1;
        for &w in &edges[v] {
            if state[w] == 0 {
                visit(w, edges, state, post);
            }
        }
        state[v] = 2;
        post.push(v);
    }
    let mut state = vec![0u8; edges.len()];
    state[DROP_NODE] = 2;
    let mut post = Vec::new();
    visit(entry, edges, &mut state, &mut post);
    for v in 1..edges.len() {
        if state[v] == 0 {
            visit(v, edges, &mut state, &mut post);
        }
    }
    post.reverse();
    post.push(DROP_NODE);
    post
}

/// One lcore's instance of the graph.
pub struct Graph {
    names: Vec<&'static str>,
    nodes: Vec<Option<Box<dyn Node>>>,
    edges: Vec<Vec<NodeId>>,
    edge_names: Vec<Vec<&'static str>>,
    pending: Vec<Pending>,
    order: Vec<NodeId>,
    unhandled: Vec<DropId>,
    monitor: GraphMonitor,
    trace: TraceBuf,
    scratch: Pending,
    overflow: u64,
    entry: NodeId,
}

impl Graph {
    /// A handle for reading this graph's counters.
    pub fn monitor(&self) -> GraphMonitor {
        self.monitor.clone()
    }

    /// The id of a node by name.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.names.iter().position(|n| *n == name)
    }

    /// Node names in id order.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The order nodes run in.
    pub fn order(&self) -> Vec<&'static str> {
        self.order.iter().map(|&i| self.names[i]).collect()
    }

    /// Marks packets for tracing if a trace is armed (called by the entry before dispatch).
    #[inline]
    pub fn mark_traced(&mut self, rx_port: u16, pkts: &mut Burst) {
        let ctl = self.trace.control().clone();
        if !ctl.armed() {
            return;
        }
        for m in pkts.iter_mut() {
            if let Some(id) = ctl.claim(rx_port) {
                m.set_traced(true);
                meta_mut(m).trace_id = id;
                let len = m.pkt_len();
                self.trace.record(
                    id,
                    "rx",
                    format_args!("port {rx_port} len {len} → {}", self.names[self.entry]),
                );
            }
        }
    }

    /// Runs `pkts` through the graph from `entry` until every node's input is empty.
    pub fn dispatch(&mut self, entry: NodeId, pkts: &mut Burst, io: &mut LcoreIo) {
        self.pending[entry].append_from(pkts);
        if !pkts.is_empty() {
            self.overflow += pkts.len() as u64;
            free_burst(pkts);
        }
        self.run_pending(io);
    }

    /// Calls every node's `poll` (timers), then runs whatever they produced. Flushes trace
    /// lines to the collector.
    pub fn poll(&mut self, io: &mut LcoreIo) {
        let now_ns = crate::runtime::tsc::monotonic_ns();
        for id in 1..self.nodes.len() {
            let Graph {
                names,
                nodes,
                edges,
                edge_names,
                pending,
                trace,
                overflow,
                monitor,
                ..
            } = self;
            let Some(node) = nodes[id].as_mut() else {
                continue;
            };
            let mut ctx = NodeCtx {
                node_name: names[id],
                edges: &edges[id],
                edge_names: &edge_names[id],
                pending,
                io,
                trace,
                now_ns,
                overflow,
                reasons: &monitor.reasons,
                counts: &monitor.drops,
            };
            node.poll(&mut ctx);
        }
        self.run_pending(io);
        self.trace.flush();
        if self.overflow > 0 {
            self.monitor.overflow.add(self.overflow);
            self.overflow = 0;
        }
    }

    fn run_pending(&mut self, io: &mut LcoreIo) {
        let now_ns = crate::runtime::tsc::monotonic_ns();
        for _ in 0..MAX_PASSES {
            let mut ran = false;
            for i in 0..self.order.len() {
                let id = self.order[i];
                if !self.pending[id].is_empty() {
                    ran = true;
                    self.run_node(id, io, now_ns);
                }
            }
            if !ran {
                return;
            }
        }
        // Still queued after MAX_PASSES: a cycle keeps feeding itself. Drop and count.
        for id in 0..self.pending.len() {
            let q = &mut self.pending[id];
            if !q.is_empty() {
                self.overflow += q.len() as u64;
                while let Some(m) = q.pop() {
                    drop(m);
                }
            }
        }
    }

    fn run_node(&mut self, id: NodeId, io: &mut LcoreIo, now_ns: u64) {
        let Graph {
            names,
            nodes,
            edges,
            edge_names,
            pending,
            unhandled,
            monitor,
            trace,
            scratch,
            overflow,
            ..
        } = self;
        // The scratch vector is empty between calls: swap it with the node's input.
        debug_assert!(scratch.is_empty());
        std::mem::swap(scratch, &mut pending[id]);
        let n = scratch.len() as u64;
        let t0 = rdtsc();
        if id == DROP_NODE {
            for m in scratch.iter() {
                let r = meta(m).drop_reason as usize;
                if let Some(c) = monitor.drops.get(r) {
                    c.add(1);
                }
                if m.is_traced() {
                    let (node, reason) = monitor.reasons.get(r).copied().unwrap_or(("?", "?"));
                    trace.record(
                        meta(m).trace_id,
                        DROP_NODE_NAME,
                        format_args!("freed: {node}/{reason}"),
                    );
                }
            }
            free_burst(&mut **scratch);
        } else {
            let node = nodes[id].as_mut().expect("real node");
            let mut ctx = NodeCtx {
                node_name: names[id],
                edges: &edges[id],
                edge_names: &edge_names[id],
                pending,
                io,
                trace,
                now_ns,
                overflow,
                reasons: &monitor.reasons,
                counts: &monitor.drops,
            };
            node.process(scratch, &mut ctx);
            if !scratch.is_empty() {
                let reason = unhandled[id];
                while let Some(m) = scratch.pop() {
                    ctx.drop(reason, m);
                }
            }
        }
        let c = &monitor.nodes[id];
        c.calls.add(1);
        c.packets.add(n);
        c.cycles.add(rdtsc().wrapping_sub(t0));
    }
}

/// A [`Stage`] that feeds every received burst into a graph's entry node.
pub struct GraphStage {
    graph: Graph,
}

impl GraphStage {
    /// Wraps a built graph.
    pub fn new(graph: Graph) -> Self {
        GraphStage { graph }
    }

    /// The graph inside.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}

impl Stage for GraphStage {
    #[inline]
    fn process(&mut self, rx_port: u16, pkts: &mut Burst, io: &mut LcoreIo) {
        self.graph.mark_traced(rx_port, pkts);
        let entry = self.graph.entry;
        self.graph.dispatch(entry, pkts, io);
    }

    fn poll(&mut self, io: &mut LcoreIo) {
        self.graph.poll(io);
    }

    fn graph_monitor(&self) -> Option<GraphMonitor> {
        Some(self.graph.monitor())
    }
}
