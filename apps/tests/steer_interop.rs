//! `http` on two lcores against Linux clients: the server's port has two rx queues (af_packet
//! with a `PACKET_FANOUT_HASH` group, or af_xdp with one XSK per queue of a two-queue veth), so
//! the kernel spreads flows over the lcores by its own hash, not ferroplane's; `tcp-handoff`
//! must bring every segment to the lcore owning its flow. Many `curl` processes (one
//! connection each) and a bounded `wrk` run must all succeed, both lcores must accept
//! connections, and segments must have been handed off (read from the Prometheus endpoint).
//! ferroplane runs in its own namespace; the clients are the Linux kernel in a peer namespace
//! (198.18.0.0/15 only). Every wait is bounded.
//!
//! Needs root and `ping`, `curl`, `wrk`, `ethtool`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::ferroplane::{full_checksums, out, tools, wait_reachable, wrk_clean, Ferroplane, T};
use support::netns::{End, Netns, VethPair};

const METRICS: &str = "127.0.0.1:9100";

fn config(driver: &str, iface: &str) -> String {
    format!(
        r#"
[[memory.pools]]
name = "pool"
mbufs = 16384
data_room = 2048
headroom = 256
cache_size = 128

[[ports]]
name = "p0"
driver = "{driver}"
iface = "{iface}"
ipv4 = ["198.18.0.1/24"]
rx_queues = 2
tx_queues = 2

[[lcores]]
id = 1
rx = ["p0:0"]

[[lcores]]
id = 2
rx = ["p0:1"]

[app]
name = "http"
ports = [80]
max_connections = 1024

[[app.routes]]
path = "/"
body = "hello from two lcores\n"
content_type = "text/plain"

[metrics]
enabled = true
listen = "{METRICS}"

[run]
idle = "adaptive"
"#
    )
}

/// `ferroplane_node_events_total` of `node`/`reason`, per lcore id, scraped in `ns`.
fn events(ns: &Netns, node: &str, reason: &str) -> HashMap<String, u64> {
    let o = ns
        .run(
            &[
                "curl",
                "-s",
                "-m",
                "2",
                &format!("http://{METRICS}/metrics"),
            ],
            T,
        )
        .unwrap();
    assert!(o.status.success(), "metrics: {}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut per = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ferroplane_node_events_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if label("node").as_deref() == Some(node) && label("reason").as_deref() == Some(reason) {
            let lcore = label("lcore").unwrap_or_default();
            per.insert(lcore, value.trim().parse::<f64>().unwrap_or(0.0) as u64);
        }
    }
    per
}

fn http_on_two_lcores(driver: &str) {
    if !tools(&["ping", "curl", "wrk", "ethtool"]) {
        return;
    }
    let dut = Netns::new("steerdut").unwrap();
    let peer = Netns::new("steerpeer").unwrap();
    let link = VethPair::with_queues("fpsdut0", Some(&dut), "fpspeer0", Some(&peer), 2).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    full_checksums(&peer, "fpspeer0");

    let mut fp = Ferroplane::start(&dut, &config(driver, "fpsdut0"));
    wait_reachable(&peer, "198.18.0.1", &mut fp);

    // 120 curl processes in a row: one connection each, from 120 ephemeral ports.
    let n = 120;
    let script = format!(
        "ok=0; for i in $(seq 1 {n}); do r=$(curl -s -m 3 http://198.18.0.1/) && [ \"$r\" = \"hello from two lcores\" ] && ok=$((ok+1)); done; echo $ok"
    );
    let o = peer
        .run(&["sh", "-c", &script], Duration::from_secs(120))
        .unwrap();
    let ok: u32 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(ok, n, "curl answers: {}\n{}", out(&o), fp.log());

    // wrk, bounded: 32 keep-alive connections on 2 threads for 3 s.
    let (reqs, _) = wrk_clean(&peer, 2, 32);

    let accepted = events(&dut, "tcp-input", "conn_accepted");
    let handed = events(&dut, "tcp-handoff", "handed_off");
    let received = events(&dut, "tcp-handoff", "received");
    let full = events(&dut, "tcp-handoff", "handoff_full");
    eprintln!(
        "{driver}: {n} curls, wrk -t2 -c32 3 s: {reqs} requests; accepted per lcore {accepted:?}, handed_off {handed:?}, received {received:?}, handoff_full {full:?}"
    );
    for lcore in ["1", "2"] {
        assert!(
            accepted.get(lcore).copied().unwrap_or(0) > 0,
            "lcore {lcore} accepted no connection: {accepted:?}"
        );
    }
    let total: u64 = accepted.values().sum();
    assert!(total >= n as u64 + 32, "{accepted:?}");
    // The kernel's spreading is not ours: some segments must have changed lcore, and what
    // one lcore handed off the other received.
    assert!(handed.values().sum::<u64>() > 0, "{handed:?}");
    assert_eq!(handed.get("1"), received.get("2"));
    assert_eq!(handed.get("2"), received.get("1"));
    assert_eq!(full.values().sum::<u64>(), 0, "{full:?}");
    fp.stop();
}

#[test]
fn http_on_two_lcores_serves_linux_on_af_packet_fanout() {
    http_on_two_lcores("af_packet");
}

#[test]
fn http_on_two_lcores_serves_linux_on_af_xdp_two_queues() {
    http_on_two_lcores("af_xdp");
}
