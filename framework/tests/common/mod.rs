//! A test bench for the L3 stack: the lcore under test owns ports p0 and p1, each joined by an
//! in-process ring to a "host" port the test uses to inject and capture frames, frame by frame.

#![allow(dead_code)]

pub mod counting;
pub mod tcp;

use std::net::Ipv4Addr;
use std::sync::Arc;

use ferroplane::app;
use ferroplane::batch::Burst;
use ferroplane::config;
use ferroplane::graph::{GraphMonitor, NodeStats};
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, PortInfo, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo};

/// MAC of the host behind p0 / p1.
pub const HOST0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
pub const HOST1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
pub const P0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const P1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The config the bench is built from: p0 198.18.0.1/24 (MTU `mtu0`), p1 198.18.1.1/24, a
/// route to 198.18.2.0/24 via 198.18.1.2. `extra` is appended (neighbours, acl, app...).
pub fn config_text(app: &str, mtu0: u16, extra: &str) -> String {
    format!(
        r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
mbufs = 4096
data_room = 9216
cache_size = 64

[[ports]]
name = "p0"
driver = "null"
mac = "02:00:00:00:00:01"
mtu = {mtu0}
ipv4 = ["198.18.0.1/24"]

[[ports]]
name = "p1"
driver = "null"
mac = "02:00:00:00:00:02"
ipv4 = ["198.18.1.1/24"]

[[routes]]
prefix = "198.18.2.0/24"
via = "198.18.1.2"

[[lcores]]
id = 5
rx = ["p0", "p1"]

[app]
{app}

[metrics]
enabled = false

[stack]
icmp_rate = 100000
icmp_burst = 1000

{extra}
"#
    )
}

pub struct Bench {
    pub lcore: Lcore,
    pub pool: Mempool,
    hosts: Vec<(Box<dyn TxQueue>, Box<dyn RxQueue>)>,
    graph: GraphMonitor,
}

impl Bench {
    /// Builds the stack from `text` (a config whose two ports the bench replaces by rings).
    pub fn new(text: &str) -> Bench {
        let cfg = config::parse(text).unwrap_or_else(|e| panic!("config: {e}"));
        let mut p = MempoolParams::new("bench", 4096);
        p.huge = HugePolicy::Off;
        p.cache_size = 64;
        p.data_room = 9216;
        let pool = Mempool::new(&p).unwrap();
        let side = |name: &str, id: u16, mac: MacAddr, mtu: u16| RingSide {
            name: name.into(),
            id,
            rx_queues: 1,
            tx_queues: 1,
            mac,
            mtu,
            tx_l4_checksum_offload: false,
        };
        let mtu0 = cfg.ports[0].mtu;
        let (mut p0, mut h0) = RingPort::pair(
            side("p0", 0, P0_MAC, mtu0),
            side("h0", 2, HOST0_MAC, 9000),
            1024,
        )
        .unwrap();
        let (mut p1, mut h1) = RingPort::pair(
            side("p1", 1, P1_MAC, 1500),
            side("h1", 3, HOST1_MAC, 9000),
            1024,
        )
        .unwrap();
        let infos: Vec<PortInfo> = vec![p0.info().clone(), p1.info().clone()];
        let shared = app::prepare(&cfg, &infos, vec![pool.clone(), pool.clone()]).unwrap();
        let stage = app::make_stage(&cfg, &shared, 5).unwrap();
        let graph = stage.graph_monitor().expect("a graph app");
        let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![
            (0, p0.take_rx_queue(0).unwrap()),
            (1, p1.take_rx_queue(0).unwrap()),
        ];
        let tx: Vec<Option<Box<dyn TxQueue>>> = vec![
            Some(p0.take_tx_queue(0).unwrap()),
            Some(p1.take_tx_queue(0).unwrap()),
        ];
        let lcore = Lcore::new(5, None, rx, LcoreIo::new(tx), stage, 32, IdlePolicy::Busy);
        let hosts = vec![
            (h0.take_tx_queue(0).unwrap(), h0.take_rx_queue(0).unwrap()),
            (h1.take_tx_queue(0).unwrap(), h1.take_rx_queue(0).unwrap()),
        ];
        let mut b = Bench {
            lcore,
            pool,
            hosts,
            graph,
        };
        // Let the stack announce itself (gratuitous ARP), then forget those frames.
        b.turns(2);
        b.recv(0);
        b.recv(1);
        b
    }

    /// Injects one frame as if host `h` sent it.
    pub fn send(&mut self, h: usize, frame: &[u8]) {
        let mut m = self.pool.alloc().unwrap();
        let mut left = frame;
        // Frames longer than one buffer become chains, as a driver would build them.
        let first = left.len().min(self.pool.data_room() as usize);
        m.append(first).unwrap().copy_from_slice(&left[..first]);
        left = &left[first..];
        while !left.is_empty() {
            let n = left.len().min(self.pool.data_room() as usize);
            let mut s = self.pool.alloc().unwrap();
            s.append(n).unwrap().copy_from_slice(&left[..n]);
            m.chain(s).unwrap();
            left = &left[n..];
        }
        let mut b = Burst::new();
        b.push(m).unwrap();
        assert_eq!(self.hosts[h].0.tx_burst(&mut b), 1);
    }

    /// Runs the lcore loop `n` turns.
    pub fn turns(&mut self, n: u64) {
        self.lcore.run_turns(n);
    }

    /// Every frame host `h` received since the last call (chains flattened).
    pub fn recv(&mut self, h: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut b = Burst::new();
        while self.hosts[h].1.rx_burst(&mut b, 256) > 0 {
            for m in b.iter() {
                let mut v = Vec::new();
                for s in m.segments() {
                    v.extend_from_slice(s);
                }
                out.push(v);
            }
            b.clear();
        }
        out
    }

    /// Sends a frame from host `h`, runs a few turns, and returns what both hosts got.
    pub fn exchange(&mut self, h: usize, frame: &[u8]) -> [Vec<Vec<u8>>; 2] {
        self.send(h, frame);
        self.turns(4);
        [self.recv(0), self.recv(1)]
    }

    /// Node counters.
    pub fn stats(&self) -> Vec<NodeStats> {
        self.graph.stats()
    }

    /// The count of `reason` at `node`.
    pub fn count(&self, node: &str, reason: &str) -> u64 {
        self.stats()
            .iter()
            .find(|n| n.node == node)
            .and_then(|n| n.drops.iter().find(|d| d.0 == reason).map(|d| d.1))
            .unwrap_or(0)
    }

    pub fn trace(&self) -> Arc<ferroplane::graph::TraceControl> {
        self.graph.trace().clone()
    }
}
