//! Interop: `ferroplane pktgen` on an af_packet port sends N frames over a veth pair to a
//! Linux peer in a namespace; tcpdump captures them there and tshark decodes them as valid
//! UDP/IPv4 (checksums verified) with exactly the expected count.

#[allow(dead_code)]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::netns::{find_tool, ifname, require_root, require_tool, Netns, VethPair};

const N: usize = 1000;

#[test]
fn pktgen_af_packet_frames_decode_as_valid_udp_in_a_linux_peer() {
    if !require_root() || !require_tool("tcpdump") || !require_tool("tshark") {
        return;
    }
    let ns = Netns::new("pgpeer").unwrap();
    let veth = VethPair::new(&ifname("pga"), None, &ifname("pgb"), Some(&ns)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("peer.pcap");
    let tcpdump = find_tool("tcpdump").unwrap();
    let mut dump = ns
        .spawn(&[
            tcpdump.to_str().unwrap(),
            "-i",
            &veth.b,
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
    let o = Command::new(env!("CARGO_BIN_EXE_ferroplane"))
        .args([
            "pktgen",
            "--port",
            &format!("af_packet:{}", veth.a),
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
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
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
