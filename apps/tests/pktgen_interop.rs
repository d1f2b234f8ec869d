//! Interop: `ferroplane pktgen` on an af_packet or af_xdp port sends N frames over a veth pair
//! to a Linux peer in a namespace; tcpdump captures them there and tshark decodes them as valid
//! UDP/IPv4 (checksums verified) with exactly the expected count. The af_xdp run happens in a
//! namespace of its own, and afterwards no XDP program is left attached to its link.

#[allow(dead_code)]
mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::netns::{find_tool, ifname, require_root, require_tool, run_bounded, Netns, VethPair};

const N: usize = 1000;

/// The pktgen arguments of a run of `N` 128-byte UDP frames 198.18.7.1 → 198.18.7.2:9 on
/// `port` (a `--port` spec).
fn pktgen_args(port: &str) -> Vec<String> {
    [
        "pktgen",
        "--port",
        port,
        "--count",
        &N.to_string(),
        "--rate",
        "20kpps",
        "--src-ip",
        "198.18.7.1",
        "--dst-ip",
        "198.18.7.2",
        "--dst-port",
        "9",
        "--size",
        "128",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Captures `N` UDP frames on `veth.b` (in `peer`) while `send` runs the generator, then has
/// tshark count the frames that decode as the expected, valid UDP/IPv4; asserts there are N.
fn capture_and_check(peer: &Netns, dev: &str, send: impl FnOnce() -> Output) {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("peer.pcap");
    let tcpdump = find_tool("tcpdump").unwrap();
    let mut dump = peer
        .spawn(&[
            tcpdump.to_str().unwrap(),
            "-i",
            dev,
            "-U",
            "-n",
            "-w",
            cap.to_str().unwrap(),
            "-c",
            &N.to_string(),
            "udp",
        ])
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let o = send();
    if !o.status.success() {
        let _ = dump.kill();
        let _ = dump.wait();
        panic!(
            "pktgen failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
    }
    let t = Instant::now();
    while dump.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = dump.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = dump.wait();
    let tshark = find_tool("tshark").unwrap();
    let o = Command::new(tshark)
        .args([
            "-r",
            cap.to_str().unwrap(),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "ip.src == 198.18.7.1 && ip.dst == 198.18.7.2 && udp.dstport == 9 \
             && ip.checksum.status == \"Good\" && udp.checksum.status == \"Good\" \
             && frame.len == 124 && !_ws.malformed",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let valid = out.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        valid,
        N,
        "tshark decoded {valid} valid frames of {N}; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn pktgen_af_packet_frames_decode_as_valid_udp_in_a_linux_peer() {
    if !require_root() || !require_tool("tcpdump") || !require_tool("tshark") {
        return;
    }
    let ns = Netns::new("pgpeer").unwrap();
    let veth = VethPair::new(&ifname("pga"), None, &ifname("pgb"), Some(&ns)).unwrap();
    capture_and_check(&ns, &veth.b, || {
        Command::new(env!("CARGO_BIN_EXE_ferroplane"))
            .args(pktgen_args(&format!("af_packet:{}", veth.a)))
            .output()
            .unwrap()
    });
}

#[test]
fn pktgen_af_xdp_frames_decode_as_valid_udp_in_a_linux_peer() {
    if !require_root() || !require_tool("tcpdump") || !require_tool("tshark") {
        return;
    }
    let gen = Netns::new("pgxgen").unwrap();
    let peer = Netns::new("pgxpeer").unwrap();
    let veth = VethPair::new("pgx0", Some(&gen), "pgx1", Some(&peer)).unwrap();
    capture_and_check(&peer, &veth.b, || {
        let mut cmd = gen.exec(&[env!("CARGO_BIN_EXE_ferroplane")]);
        cmd.args(pktgen_args(&format!("af_xdp:{}", veth.a)));
        run_bounded(cmd, Duration::from_secs(60)).unwrap()
    });
    // The port detached its XDP program and closed its socket on the way out.
    let links = gen.ip(&["-d", "link", "show", "dev", &veth.a]).unwrap();
    assert!(
        !links.contains("xdp"),
        "an XDP program is still attached:\n{links}"
    );
    assert!(gen.pids().is_empty(), "processes left in {}", gen.name());
}
