//! Proves the l2fwd data path does not touch the heap once warmed up: a counting global
//! allocator watches the lcore loop forward more than a million packets.

mod common;

use common::counting::{self, Counting};

use ferroplane::app::l2fwd::{L2fwd, Mode, Route};
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::null::{NullConfig, NullPort};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo};

/// The tests of this file run one at a time: the all-threads counter must not see another
/// test's set-up.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[global_allocator]
static GLOBAL: Counting = Counting;

fn pool() -> Mempool {
    let mut p = MempoolParams::new("zero-alloc", 4096);
    p.huge = HugePolicy::Auto;
    p.cache_size = 256;
    Mempool::new(&p).unwrap()
}

fn null_port(pool: &Mempool, name: &str, id: u16) -> NullPort {
    NullPort::new(NullConfig {
        name: name.into(),
        id,
        pool: pool.clone(),
        size: 64,
        template: Some(vec![0xff; 14]),
        rx_queues: 1,
        tx_queues: 1,
        mac: MacAddr::local(id as u8 + 1),
        mtu: 1500,
    })
    .unwrap()
}

fn route(dst: u16) -> Option<Route> {
    Some(Route {
        dst_port: dst,
        src_mac: MacAddr::local(dst as u8 + 1),
        dst_mac: MacAddr::local(0x20 + dst as u8),
    })
}

/// Runs `lc` for a warm-up, then counts allocations while it forwards >= 1M packets.
fn allocations_in_steady_state(lc: &mut Lcore) -> (u64, u64) {
    lc.run_turns(2_000);
    counting::reset();
    counting::watch_this_thread(true);
    let mut pkts = 0;
    while pkts < 1_000_000 {
        pkts += lc.run_turns(1_000);
    }
    counting::watch_this_thread(false);
    (counting::allocations(), pkts)
}

#[test]
fn l2fwd_steady_state_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _g = ferroplane::lcore::register(3).unwrap();
    let mp = pool();
    for mode in [Mode::Io, Mode::MacSwap, Mode::Mac] {
        let mut p0 = null_port(&mp, "p0", 0);
        let mut p1 = null_port(&mp, "p1", 1);
        let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![
            (0, p0.take_rx_queue(0).unwrap()),
            (1, p1.take_rx_queue(0).unwrap()),
        ];
        let tx: Vec<Option<Box<dyn TxQueue>>> = vec![
            Some(p0.take_tx_queue(0).unwrap()),
            Some(p1.take_tx_queue(0).unwrap()),
        ];
        let stage = Box::new(L2fwd::new(mode, vec![route(1), route(0)]));
        let mut lc = Lcore::new(3, None, rx, LcoreIo::new(tx), stage, 32, IdlePolicy::Busy);
        let (allocs, pkts) = allocations_in_steady_state(&mut lc);
        assert!(pkts >= 1_000_000);
        assert_eq!(
            allocs, 0,
            "{mode:?}: {allocs} heap allocations over {pkts} packets"
        );
        // Every packet went out the other port; nothing leaked from the pool.
        assert_eq!(p0.stats().ipackets, p1.stats().opackets);
        assert_eq!(p1.stats().ipackets, p0.stats().opackets);
        drop(lc);
        assert_eq!(mp.in_use(), 0);
    }
}

/// The same over ring ports, where packets cross an SPSC ring between two stages.
#[test]
fn ring_chain_steady_state_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _g = ferroplane::lcore::register(4).unwrap();
    let mp = pool();
    let side = |name: &str, id| RingSide {
        name: name.into(),
        id,
        rx_queues: 1,
        tx_queues: 1,
        mac: MacAddr::local(id as u8 + 1),
        mtu: 1500,
        tx_l4_checksum_offload: false,
    };
    // null p0 -> l2fwd -> ring r1 -> (peer r2) -> l2fwd -> null p0 tx
    let mut p0 = null_port(&mp, "p0", 0);
    let (mut r1, mut r2) = RingPort::pair(side("r1", 1), side("r2", 2), 1024).unwrap();
    let rx: Vec<(u16, Box<dyn RxQueue>)> = vec![
        (0, p0.take_rx_queue(0).unwrap()),
        (2, r2.take_rx_queue(0).unwrap()),
    ];
    let tx: Vec<Option<Box<dyn TxQueue>>> = vec![
        Some(p0.take_tx_queue(0).unwrap()),
        Some(r1.take_tx_queue(0).unwrap()),
        None,
    ];
    let stage = Box::new(L2fwd::new(Mode::MacSwap, vec![route(1), None, route(0)]));
    let mut lc = Lcore::new(4, None, rx, LcoreIo::new(tx), stage, 32, IdlePolicy::Busy);
    let (allocs, pkts) = allocations_in_steady_state(&mut lc);
    assert_eq!(allocs, 0, "{allocs} heap allocations over {pkts} packets");
    assert!(r2.stats().ipackets > 400_000);
}

/// The l3fwd graph (eth-input → ipv4-input → lookup → forward → output → rewrite → tx) built
/// from `configs/l3fwd.toml` and run by the real runtime on its own lcore thread: no heap
/// allocation on any thread while it routes more than a million packets.
#[test]
fn l3fwd_steady_state_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/l3fwd.toml"
    ))
    .unwrap()
    .replace("enabled = true", "enabled = false")
    .replace("idle = \"busy\"", "idle = \"adaptive\"");
    let cfg = ferroplane::config::parse(&text).unwrap();
    let running = ferroplane::runtime::Runtime::from_config(&cfg)
        .unwrap()
        .start()
        .unwrap();
    // Warm up: caches filled, gratuitous ARP sent, every code path taken once.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = running.snapshot();
    counting::reset();
    counting::watch_all_threads(true);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    counting::watch_all_threads(false);
    let allocs = counting::allocations();
    let after = running.snapshot();
    let fin = running.join().unwrap();
    let routed = after.lcores[0].tx_packets - before.lcores[0].tx_packets;
    assert!(
        routed >= 1_000_000,
        "only {routed} packets routed in the window"
    );
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while routing {routed} packets"
    );
    // They really were routed, not dropped: the forward node saw them all and nothing dropped.
    let nodes = &fin.lcores[0].nodes;
    let fwd = nodes.iter().find(|n| n.node == "ipv4-forward").unwrap();
    assert!(fwd.packets >= routed);
    let drops: u64 = nodes
        .iter()
        .map(|n| n.drops.iter().map(|d| d.1).sum::<u64>())
        .sum();
    assert_eq!(drops, 0, "{nodes:?}");
}
