//! TCP through an impaired path, the issue's `tc netem loss 5% reorder 25% duplicate 1%
//! corrupt 1% delay 10ms`. This kernel has no sch_netem, so a user-space relay
//! (`support/impair_relay.rs`) in a "wire" namespace applies the same impairments between two
//! veth pairs:
//!
//! ```text
//! peer ns (Linux socat, 198.18.0.2) —veth— wire ns (relay) —veth— dut ns (ferroplane
//! tcp-echo on af_packet, 198.18.0.1)
//! ```
//!
//! Linux sends 100 MB to the echo and reads the echo back at the same time: 100 MB each way,
//! Linux→ferroplane and ferroplane→Linux, through the impairments in both directions.
//!
//! Needs root and `socat`, `ping`, `ethtool` (`.ci/run` installs them).

mod support;

use std::time::{Duration, Instant};

use support::ferroplane::{out, random_bytes, tools, wait_reachable, Ferroplane, T};
use support::impair_relay::{ImpairRelay, Impairments};
use support::netns::{wait_for, End, Netns, VethPair};

/// Bytes sent each way (`FERROPLANE_NETEM_BYTES` overrides it, for measurements).
fn size() -> usize {
    std::env::var("FERROPLANE_NETEM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000_000)
}

/// The bound on the whole transfer. Measured on a shared 2-vCPU machine: 100 MB each way in
/// 489 s (1.64 Mbit/s each way; loss-bound, not CPU-bound: the relay and ferroplane idle
/// most of the time). About 1.8 times that.
const LIMIT: Duration = Duration::from_secs(15 * 60);

/// `ethtool -K dev …` in `ns`: no segmentation or receive coalescing (the relay must see
/// frames no larger than the MTU) and finished transmit checksums (a frame the relay forwards
/// leaves the kernel's "checksum partial" mark behind).
fn plain_frames(ns: &Netns, dev: &str) {
    let o = ns
        .run(
            &[
                "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off",
            ],
            T,
        )
        .unwrap();
    assert!(o.status.success(), "ethtool {dev}: {}", out(&o));
}

#[test]
fn hundred_megabytes_each_way_through_netem_like_impairments() {
    if !tools(&["socat", "ping", "ethtool"]) {
        return;
    }
    let peer = Netns::new("peer").unwrap();
    let wire = Netns::new("wire").unwrap();
    let dut = Netns::new("dut").unwrap();
    let left = VethPair::new("fpnpeer0", Some(&peer), "fpnwp0", Some(&wire)).unwrap();
    let _right = VethPair::new("fpnwd0", Some(&wire), "fpndut0", Some(&dut)).unwrap();
    left.addr(End::A, "198.18.0.2/24").unwrap();
    plain_frames(&peer, "fpnpeer0");
    plain_frames(&wire, "fpnwp0");
    plain_frames(&wire, "fpnwd0");
    plain_frames(&dut, "fpndut0");

    let relay = ImpairRelay::start(wire.name(), "fpnwp0", "fpnwd0", Impairments::issue()).unwrap();
    let ports = r#"
[[ports]]
name = "p0"
driver = "af_packet"
iface = "fpndut0"
ipv4 = ["198.18.0.1/24"]
"#;
    let mut fp = Ferroplane::start(
        &dut,
        &support::ferroplane::config(ports, "\"p0\"", "name = \"tcp-echo\"\nports = [7]"),
    );
    wait_reachable(&peer, "198.18.0.1", &mut fp);

    let dir = tempfile::tempdir().unwrap();
    let (input, output, errf) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    let data = random_bytes(size(), 0x6e65_7465_6d00_0002);
    std::fs::write(&input, &data).unwrap();
    let t0 = Instant::now();
    // -t: after our EOF, how long to wait for the rest of the echo and the server's FIN;
    // -T: give up after this long without any data either way.
    let mut c = peer
        .exec(&["socat", "-t", "120", "-T", "120", "-", "TCP:198.18.0.1:7"])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::fs::File::create(&errf).unwrap())
        .spawn()
        .unwrap();
    let mut last_report = Instant::now();
    let done = wait_for(LIMIT, || {
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            let got = std::fs::metadata(&output).map_or(0, |m| m.len());
            eprintln!(
                "{:?}: {got} bytes back; relay: {}",
                t0.elapsed(),
                relay.counters().summary()
            );
        }
        c.try_wait().ok().flatten().is_some()
    });
    let took = t0.elapsed();
    if !done {
        let _ = c.kill();
    }
    let status = c.wait().unwrap();
    let counters = relay.stop().expect("relay");
    let err = std::fs::read_to_string(&errf).unwrap_or_default();
    let back = std::fs::read(&output).unwrap();
    eprintln!(
        "{} bytes each way through the impaired path: {} bytes back in {took:?} ({:.2} Mbit/s \
         each way); socat {status}; relay: {}",
        data.len(),
        back.len(),
        back.len() as f64 * 8.0 / took.as_secs_f64() / 1e6,
        counters.summary()
    );
    fp.assert_running();
    assert!(done, "not finished within {LIMIT:?}; socat: {err}");
    assert_eq!(
        back.len(),
        data.len(),
        "socat {status}: {err}\n{}",
        fp.log()
    );
    if back != data {
        let at = back.iter().zip(&data).position(|(a, b)| a != b).unwrap();
        panic!("the echo differs from what was sent, first at byte {at}");
    }
    assert!(status.success(), "socat {status}: {err}");
    // The relay impaired the path in every way it was asked to.
    let g = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for (what, n) in [
        ("dropped", g(&counters.dropped)),
        ("corrupted", g(&counters.corrupted)),
        ("duplicated", g(&counters.duplicated)),
        ("reordered", g(&counters.reordered)),
    ] {
        assert!(
            n > 0,
            "the relay never {what} a frame: {}",
            counters.summary()
        );
    }
    let log = fp.stop();
    eprintln!("ferroplane final report:\n{log}");
}
