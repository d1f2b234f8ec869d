//! Engine tests with small hand-written nodes.

use std::sync::Arc;

use super::*;
use crate::batch::Burst;
use crate::mem::{HugePolicy, Mempool, MempoolParams};
use crate::port::ring::{RingPort, RingSide};
use crate::port::{MacAddr, Port, RxQueue, TxQueue};
use crate::runtime::{LcoreIo, Stage};

/// Sends even-length packets to edge 0, odd-length ones to edge 1.
struct Classify;
impl Node for Classify {
    fn next_nodes(&self) -> Vec<String> {
        vec!["even".into(), "odd".into()]
    }
    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        while let Some(m) = pkts.pop() {
            let e = m.data_len() % 2;
            ctx.trace(
                &m,
                format_args!("len {} → {}", m.data_len(), ctx.edge_name(e)),
            );
            ctx.enqueue(e, m);
        }
    }
}

/// Forwards everything to one named next node.
struct Pass(&'static str);
impl Node for Pass {
    fn next_nodes(&self) -> Vec<String> {
        vec![self.0.into()]
    }
    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        for m in pkts.iter() {
            ctx.trace(m, format_args!("pass → {}", self.0));
        }
        ctx.enqueue_burst(0, pkts);
    }
}

/// Drops everything with one reason.
struct Reject(Option<DropId>);
impl Node for Reject {
    fn next_nodes(&self) -> Vec<String> {
        vec![]
    }
    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.0 = Some(ctx.drop_reason("odd_length"));
    }
    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let r = self.0.unwrap();
        while let Some(m) = pkts.pop() {
            ctx.drop(r, m);
        }
    }
}

/// Sends to port 0 through the lcore io.
struct Out;
impl Node for Out {
    fn next_nodes(&self) -> Vec<String> {
        vec![]
    }
    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        for m in pkts.iter() {
            ctx.trace(m, format_args!("tx port 0"));
        }
        ctx.io().send_burst(0, pkts);
    }
}

/// Leaves its input untouched (to test "unhandled").
struct Lazy;
impl Node for Lazy {
    fn next_nodes(&self) -> Vec<String> {
        vec![]
    }
    fn process(&mut self, _pkts: &mut Burst, _ctx: &mut NodeCtx<'_>) {}
}

fn pool() -> Mempool {
    let mut p = MempoolParams::new("graph-test", 512);
    p.huge = HugePolicy::Off;
    p.cache_size = 0;
    Mempool::new(&p).unwrap()
}

fn ring_io() -> (LcoreIo, Box<dyn RxQueue>) {
    let side = |n: &str, id| RingSide {
        name: n.into(),
        id,
        rx_queues: 1,
        tx_queues: 1,
        mac: MacAddr::local(1),
        mtu: 1500,
        tx_l4_checksum_offload: false,
    };
    let (mut a, mut b) = RingPort::pair(side("a", 0), side("b", 1), 256).unwrap();
    let tx: Vec<Option<Box<dyn TxQueue>>> = vec![Some(a.take_tx_queue(0).unwrap())];
    (LcoreIo::new(tx), b.take_rx_queue(0).unwrap())
}

fn build(trace: Arc<TraceControl>) -> Graph {
    let mut b = GraphBuilder::new();
    b.add("classify", Box::new(Classify))
        .add("even", Box::new(Pass("out")))
        .add("odd", Box::new(Reject(None)))
        .add("out", Box::new(Out));
    b.build(1, "classify", trace).unwrap()
}

fn burst(mp: &Mempool, lens: &[usize]) -> Burst {
    let mut b = Burst::new();
    for &l in lens {
        let mut m = mp.alloc().unwrap();
        m.append(l).unwrap().fill(l as u8);
        b.push(m).unwrap();
    }
    b
}

fn stats_of<'a>(s: &'a [NodeStats], node: &str) -> &'a NodeStats {
    s.iter().find(|n| n.node == node).unwrap()
}

#[test]
fn packets_are_batched_per_next_node_and_counted() {
    let mp = pool();
    let (mut io, mut rx) = ring_io();
    let mut g = build(TraceControl::new());
    assert_eq!(g.order(), ["classify", "odd", "even", "out", "drop"]);
    let mut pkts = burst(&mp, &[60, 61, 62, 63, 64]);
    let entry = g.node_id("classify").unwrap();
    g.dispatch(entry, &mut pkts, &mut io);
    io.flush();
    let mut got = Burst::new();
    assert_eq!(rx.rx_burst(&mut got, 32), 3);
    let mut lens: Vec<usize> = got.iter().map(|m| m.data_len()).collect();
    lens.sort();
    assert_eq!(lens, [60, 62, 64]);
    g.poll(&mut io);
    let s = g.monitor().stats();
    // One call per node per dispatch: the engine batched each node's packets.
    assert_eq!(
        (
            stats_of(&s, "classify").calls,
            stats_of(&s, "classify").packets
        ),
        (1, 5)
    );
    assert_eq!(
        (stats_of(&s, "even").calls, stats_of(&s, "even").packets),
        (1, 3)
    );
    assert_eq!(
        (stats_of(&s, "odd").calls, stats_of(&s, "odd").packets),
        (1, 2)
    );
    assert_eq!(stats_of(&s, "drop").packets, 2);
    let odd = stats_of(&s, "odd");
    assert!(odd.drops.contains(&("odd_length".to_string(), 2)));
    drop(got);
    assert_eq!(mp.in_use(), 0);
}

#[test]
fn leftovers_are_dropped_as_unhandled() {
    let mp = pool();
    let (mut io, _rx) = ring_io();
    let mut b = GraphBuilder::new();
    b.add("lazy", Box::new(Lazy));
    let mut g = b.build(1, "lazy", TraceControl::new()).unwrap();
    let mut pkts = burst(&mp, &[10, 11]);
    g.dispatch(g.node_id("lazy").unwrap(), &mut pkts, &mut io);
    let s = g.monitor().stats();
    assert!(stats_of(&s, "lazy")
        .drops
        .contains(&("unhandled".to_string(), 2)));
    assert_eq!(mp.in_use(), 0);
}

#[test]
fn trace_follows_packets_node_by_node() {
    let mp = pool();
    let (mut io, _rx) = ring_io();
    let ctl = TraceControl::new();
    let mut stage = GraphStage::new(build(ctl.clone()));
    ctl.arm(2, None);
    let mut pkts = burst(&mp, &[60, 61, 62]);
    stage.process(0, &mut pkts, &mut io);
    stage.poll(&mut io);
    let text = ctl.to_text();
    assert_eq!(
        text,
        "Packet 1 (lcore 1):\n  rx: port 0 len 60 → classify\n  classify: len 60 → even\n  \
         even: pass → out\n  out: tx port 0\nPacket 2 (lcore 1):\n  rx: port 0 len 61 → \
         classify\n  classify: len 61 → odd\n  odd: drop (odd_length) → drop\n  drop: freed: \
         odd/odd_length\n"
    );
    assert!(ctl
        .to_mermaid()
        .contains("classify->>even: pkt 1: len 60 → even"));
    drop(stage);
    io.flush();
}

#[test]
fn splice_inserts_a_node_on_an_edge() {
    let mp = pool();
    let (mut io, _rx) = ring_io();
    let mut b = GraphBuilder::new();
    b.add("classify", Box::new(Classify))
        .add("even", Box::new(Pass("out")))
        .add("odd", Box::new(Pass("out")))
        .add("filter", Box::new(Reject(None)))
        .add("out", Box::new(Out))
        .splice("classify", "odd", "filter");
    let mut g = b.build(1, "classify", TraceControl::new()).unwrap();
    let mut pkts = burst(&mp, &[3, 4, 5]);
    g.dispatch(g.node_id("classify").unwrap(), &mut pkts, &mut io);
    let s = g.monitor().stats();
    assert_eq!(stats_of(&s, "filter").packets, 2);
    assert_eq!(stats_of(&s, "odd").packets, 0);
    assert_eq!(stats_of(&s, "even").packets, 1);
}

#[test]
fn build_errors_name_the_problem() {
    let mut b = GraphBuilder::new();
    b.add("classify", Box::new(Classify))
        .add("even", Box::new(Lazy));
    let e = b.build(1, "classify", TraceControl::new()).err().unwrap();
    assert!(
        matches!(&e, GraphError::UnknownNext { node, next, .. } if node == "classify" && next == "odd")
    );
    assert!(e.to_string().contains("nodes: classify, drop, even"), "{e}");

    let mut b = GraphBuilder::new();
    b.add("x", Box::new(Lazy)).add("x", Box::new(Lazy));
    assert_eq!(
        b.build(1, "x", TraceControl::new()).err(),
        Some(GraphError::Duplicate("x".into()))
    );
    let mut b = GraphBuilder::new();
    b.add("x", Box::new(Lazy)).splice("x", "y", "x");
    assert!(matches!(
        b.build(1, "x", TraceControl::new()).err(),
        Some(GraphError::NoSuchEdge { .. })
    ));
}

/// Two nodes feeding each other forever are cut off after a bounded number of passes.
#[test]
fn a_cycle_cannot_spin_forever() {
    let mp = pool();
    let (mut io, _rx) = ring_io();
    let mut b = GraphBuilder::new();
    b.add("ping", Box::new(Pass("pong")))
        .add("pong", Box::new(Pass("ping")));
    let mut g = b.build(1, "ping", TraceControl::new()).unwrap();
    let mut pkts = burst(&mp, &[1, 2, 3]);
    g.dispatch(g.node_id("ping").unwrap(), &mut pkts, &mut io);
    g.poll(&mut io);
    assert_eq!(mp.in_use(), 0);
    let s = g.monitor().stats();
    assert!(stats_of(&s, "drop")
        .drops
        .contains(&("graph_queue_full".to_string(), 3)));
}
