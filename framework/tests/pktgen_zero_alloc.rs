//! Proves the pktgen steady state (tx: pacing, stamping, bulk mbuf allocation, tx bursts; rx:
//! signature parsing, loss/reorder tracking, latency histograms, periodic publishing) does not
//! touch the heap: a counting allocator watches one lcore send and receive through a ring
//! loopback.

mod common;

use common::counting::{self, Counting};

use std::time::{Duration, Instant};

use ferroplane::runtime::Runtime;

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONFIG: &str = r#"
[memory]
huge_pages = "off"

[[memory.pools]]
name = "default"
mbufs = 8192

[[ports]]
name = "r0"
driver = "ring"
peer = "r1"
depth = 4096

[[ports]]
name = "r1"
driver = "ring"
peer = "r0"
depth = 4096

[[lcores]]
id = 1
rx = ["r1:0"]
tx = ["r0:0"]

[app]
name = "pktgen"
rate = "500kpps"
count = 250000

[[app.streams]]
dst_ip = "random:198.19.0.1-198.19.0.254"
dst_port = "1024-2047"
size = "64:7,576:4,1500:1"
payload = "inc"

[[app.streams]]
proto = "tcp-syn"
vlan = 7
size = "random:80-256"

[metrics]
enabled = false
"#;

#[test]
fn pktgen_tx_and_rx_steady_state_does_not_allocate() {
    let cfg = ferroplane::config::parse(CONFIG).unwrap();
    let mut rt = Runtime::from_config(&cfg).unwrap();
    let shared = rt.pktgen().cloned().unwrap();
    let mut lcores = rt.take_lcores();
    let lc = &mut lcores[0];
    // Warm up past the first publication of the rx results (which sizes the shared slots).
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        lc.run_turns(64);
    }
    let sent_before: u64 = shared.tx_sent().iter().sum();
    counting::watch_this_thread(true);
    let t = Instant::now();
    let mut turns = 0u64;
    while t.elapsed() < Duration::from_millis(500) {
        lc.run_turns(64);
        turns += 64;
    }
    counting::watch_this_thread(false);
    let allocs = counting::allocations();
    // Let the generator reach its count (~0.5 s at the configured rate) and the receive side
    // take the last bursts off the ring before the results are published.
    let t = Instant::now();
    while !shared.all_tx_done() && t.elapsed() < Duration::from_secs(20) {
        lc.run_turns(64);
    }
    assert!(
        shared.all_tx_done(),
        "the generator did not reach its count"
    );
    lc.run_turns(256);
    lc.finish();
    let sent: u64 = shared.tx_sent().iter().sum::<u64>() - sent_before;
    assert!(sent > 10_000, "only {sent} packets sent in {turns} turns");
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while sending {sent} packets"
    );
    // What was received matches what was sent (the results were published on finish).
    let rx = shared.rx_of_port(1).unwrap();
    let got: u64 = rx.streams.iter().map(|s| s.packets).sum();
    let total: u64 = shared.tx_sent().iter().sum();
    assert_eq!(total, 250_000);
    assert_eq!(got, total);
    assert!(rx
        .streams
        .iter()
        .all(|s| s.duplicates == 0 && s.reordered == 0));
}
