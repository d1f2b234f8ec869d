//! Interop with the Linux kernel as the reference peer, over veth pairs in network namespaces
//! (198.18.0.0/15 only). The `ferroplane` binary runs in its own namespace on real ports
//! (af_xdp, af_packet, tap); Linux hosts in other namespaces ping it, send it UDP, and route
//! through it. Every wait is bounded; namespaces and links are removed even when a test fails.
//!
//! Needs root and `ping`, `socat`, `tshark`, `iperf3` (`.ci/run` installs them). Without them
//! each test prints why it is skipped, unless `FERROPLANE_REQUIRE_TOOLS=1` (then it fails).

mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use support::ferroplane::{bin, config, full_checksums, out, tools, wait_reachable, Ferroplane, T};
use support::netns::{find_tool, wait_for, End, Netns, VethPair};

/// No `xdp` left on any link of `ns`.
fn assert_no_xdp(ns: &Netns) {
    let links = ns.ip(&["-d", "link", "show"]).unwrap();
    assert!(
        !links.contains("xdp"),
        "an XDP program is still attached:\n{links}"
    );
}

/// Starts a capture on `dev` in `ns` into `file`; returns the capture process.
fn capture(ns: &Netns, dev: &str, file: &Path) -> Child {
    let c = ns
        .exec(&[
            "tcpdump",
            "-i",
            dev,
            "-U",
            "-n",
            "-w",
            file.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // tcpdump needs a moment before it captures.
    std::thread::sleep(Duration::from_millis(500));
    c
}

fn stop_capture(mut c: Child) {
    // SAFETY: kill(2) on our own child; SIGINT makes tcpdump flush and exit.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    let _ = wait_for(Duration::from_secs(5), || {
        c.try_wait().ok().flatten().is_some()
    });
    let _ = c.kill();
    let _ = c.wait();
}

/// Runs tshark over a capture with checksum validation on; returns (frames, problem lines).
fn tshark_problems(file: &Path) -> (usize, Vec<String>) {
    let f = file.to_str().unwrap();
    let all = std::process::Command::new(find_tool("tshark").unwrap())
        .args(["-n", "-r", f])
        .output()
        .unwrap();
    let frames = String::from_utf8_lossy(&all.stdout).lines().count();
    let bad = std::process::Command::new(find_tool("tshark").unwrap())
        .args([
            "-n",
            "-r",
            f,
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "_ws.malformed || _ws.expert.severity >= \"error\" || ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\"",
        ])
        .output()
        .unwrap();
    let problems = String::from_utf8_lossy(&bad.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (frames, problems)
}

/// Sends `data` to ferroplane's UDP echo with socat and returns what came back.
fn socat_echo(ns: &Netns, dst: &str, data: &[u8]) -> Vec<u8> {
    let mut c = ns
        .exec(&["socat", "-T", "2", "-", &format!("UDP:{dst}:7")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(data).unwrap();
        // Keep stdin open until the reply had time to come back: socat exits on EOF + -T.
        std::thread::sleep(Duration::from_millis(300));
    }
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        if c.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let o = c.wait_with_output().unwrap();
    o.stdout
}

/// A Linux host pings ferroplane on an af_xdp port (ARP both ways, echo replies, a 3000-byte
/// ping that is fragmented both ways), sends it UDP datagrams of several sizes through socat and
/// gets them back byte-identical, and tshark finds no malformed frame or bad checksum in the
/// capture. Afterwards no XDP program is left attached.
#[test]
fn linux_pings_and_udp_echoes_ferroplane_on_af_xdp() {
    if !tools(&["ping", "socat", "tshark", "tcpdump", "ethtool"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let link = VethPair::new("fpdut0", Some(&dut), "fppeer0", Some(&peer)).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    full_checksums(&peer, "fppeer0");
    let ports = r#"
[[ports]]
name = "p0"
driver = "af_xdp"
iface = "fpdut0"
ipv4 = ["198.18.0.1/24"]
"#;
    let mut fp = Ferroplane::start(
        &dut,
        &config(ports, "\"p0\"", "name = \"udp-echo\"\nport = 7"),
    );
    let cap_dir = tempfile::tempdir().unwrap();
    let cap = cap_dir.path().join("peer.pcap");
    let tcpdump = capture(&peer, "fppeer0", &cap);

    wait_reachable(&peer, "198.18.0.1", &mut fp);
    let o = peer
        .run(
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.0.1"],
            T,
        )
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("3 received"), "{}", out(&o));
    // Linux resolved us (our reply came to its MAC, so we resolved it too).
    let neigh = peer.ip(&["neigh", "show", "198.18.0.1"]).unwrap();
    let our_mac = link.mac(End::A).unwrap();
    assert!(neigh.contains(&our_mac), "{neigh} vs {our_mac}");
    // 3000 bytes: fragmented by Linux, reassembled by us, our reply fragmented again.
    let o = peer
        .run(
            &[
                "ping",
                "-c",
                "2",
                "-i",
                "0.3",
                "-W",
                "2",
                "-s",
                "3000",
                "198.18.0.1",
            ],
            T,
        )
        .unwrap();
    assert!(out(&o).contains("2 received"), "{}\n{}", out(&o), fp.log());
    assert!(
        out(&o).contains("3008 bytes from 198.18.0.1"),
        "{}",
        out(&o)
    );

    for size in [1usize, 64, 512, 1472, 3000, 8000] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + size) as u8).collect();
        let back = socat_echo(&peer, "198.18.0.1", &data);
        assert_eq!(
            back.len(),
            size,
            "size {size}: got {} bytes back\n{}",
            back.len(),
            fp.log()
        );
        assert!(back == data, "size {size}: bytes differ");
    }
    stop_capture(tcpdump);
    let log = fp.stop();
    let (frames, problems) = tshark_problems(&cap);
    assert!(frames >= 20, "only {frames} frames captured");
    assert!(
        problems.is_empty(),
        "tshark found problems:\n{}",
        problems.join("\n")
    );
    assert_no_xdp(&dut);
    assert!(log.contains("lcore 1"), "final report printed:\n{log}");
}

/// Runs l3fwd between two Linux hosts on `driver` ports: ns A ↔ ferroplane ↔ ns B.
fn l3fwd_between_two_linux_hosts(driver: &str) {
    if !tools(&["ping", "iperf3", "ethtool"]) {
        return;
    }
    let dut = Netns::new("dut").unwrap();
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    let la = VethPair::new("fpdutA", Some(&dut), "fpa", Some(&a)).unwrap();
    let lb = VethPair::new("fpdutB", Some(&dut), "fpb", Some(&b)).unwrap();
    la.addr(End::B, "198.18.0.2/24").unwrap();
    lb.addr(End::B, "198.18.1.2/24").unwrap();
    a.ip(&["route", "add", "198.18.1.0/24", "via", "198.18.0.1"])
        .unwrap();
    b.ip(&["route", "add", "198.18.0.0/24", "via", "198.18.1.1"])
        .unwrap();
    if driver == "af_xdp" {
        full_checksums(&a, "fpa");
        full_checksums(&b, "fpb");
    }
    let ports = format!(
        r#"
[[ports]]
name = "p0"
driver = "{driver}"
iface = "fpdutA"
ipv4 = ["198.18.0.1/24"]

[[ports]]
name = "p1"
driver = "{driver}"
iface = "fpdutB"
ipv4 = ["198.18.1.1/24"]
"#
    );
    let mut fp = Ferroplane::start(&dut, &config(&ports, "\"p0\", \"p1\"", "name = \"l3fwd\""));
    wait_reachable(&a, "198.18.1.2", &mut fp);

    // Routed: B's reply (TTL 64) is one hop away from A.
    let o = a
        .run(
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.1.2"],
            T,
        )
        .unwrap();
    assert!(out(&o).contains("3 received"), "{}", out(&o));
    assert!(out(&o).contains("ttl=63"), "{}", out(&o));
    // Traceroute-style: TTL 1 expires at ferroplane, which says so from 198.18.0.1.
    let o = a
        .run(&["ping", "-c", "1", "-t", "1", "-W", "1", "198.18.1.2"], T)
        .unwrap();
    let text = out(&o);
    assert!(
        text.contains("From 198.18.0.1") && text.contains("Time to live exceeded"),
        "{text}"
    );
    // TTL 2 is enough.
    let o = a
        .run(&["ping", "-c", "1", "-t", "2", "-W", "1", "198.18.1.2"], T)
        .unwrap();
    assert!(out(&o).contains("1 received"), "{}", out(&o));

    // iperf3 UDP at a fixed rate through the router; loss is measured by iperf3.
    let mut server = b
        .exec(&["iperf3", "-s", "-1", "-B", "198.18.1.2"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let o = a
        .run(
            &[
                "iperf3",
                "-c",
                "198.18.1.2",
                "-u",
                "-b",
                "20M",
                "-t",
                "3",
                "-l",
                "1200",
                "-J",
                "--connect-timeout",
                "3000",
            ],
            Duration::from_secs(20),
        )
        .map_err(|e| e.to_string());
    let o = match o {
        Ok(o) => o,
        Err(e) => {
            let neigh =
                a.ip(&["neigh"]).unwrap_or_default() + &b.ip(&["neigh"]).unwrap_or_default();
            let links = dut.ip(&["-s", "-d", "link", "show"]).unwrap_or_default()
                + &a.ip(&["-s", "-d", "link", "show"]).unwrap_or_default();
            let ss = a
                .run(&["ss", "-tanip"], T)
                .map(|o| out(&o))
                .unwrap_or_default()
                + &a.run(&["ip", "route", "get", "198.18.1.2"], T)
                    .map(|o| out(&o))
                    .unwrap_or_default()
                + &a.run(
                    &[
                        "nstat",
                        "-az",
                        "TcpActiveOpens",
                        "TcpOutSegs",
                        "TcpRetransSegs",
                        "IpOutRequests",
                        "IpOutNoRoutes",
                        "TcpExtTCPTimeouts",
                    ],
                    T,
                )
                .map(|o| out(&o))
                .unwrap_or_default();
            panic!(
                "{e}\nneighbours:\n{neigh}\nlinks:\n{links}\nss:\n{ss}\nferroplane:\n{}",
                fp.stop()
            )
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    let report = String::from_utf8_lossy(&o.stdout);
    let Some(lost_percent) = json_number(&report, "lost_percent") else {
        let diag = a
            .run(
                &[
                    "nstat",
                    "-az",
                    "TcpActiveOpens",
                    "TcpOutSegs",
                    "TcpRetransSegs",
                    "IpOutRequests",
                    "IpOutNoRoutes",
                ],
                T,
            )
            .map(|o| out(&o))
            .unwrap_or_default()
            + &a.ip(&["-s", "link", "show", "dev", "fpa"])
                .unwrap_or_default()
            + &b.run(
                &[
                    "nstat",
                    "-az",
                    "TcpPassiveOpens",
                    "TcpInSegs",
                    "IpInReceives",
                    "TcpInErrs",
                    "TcpInCsumErrors",
                ],
                T,
            )
            .map(|o| out(&o))
            .unwrap_or_default();
        panic!("no iperf3 result:\n{}\n{diag}\n{}", out(&o), fp.stop());
    };
    let packets = json_number(&report, "packets").unwrap_or(0.0);
    eprintln!("iperf3 over ferroplane {driver}: {packets} datagrams, {lost_percent:.2} % lost");
    assert!(packets > 5_000.0, "{report}");
    assert!(lost_percent < 5.0, "loss {lost_percent} %\n{report}");
    let log = fp.stop();
    assert!(
        log.contains("ipv4-forward"),
        "runtime table in the report:\n{log}"
    );
    assert_no_xdp(&dut);
}

/// The last `"key": number` in a JSON text (iperf3's summary comes last).
fn json_number(json: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let i = json.rfind(&pat)? + pat.len();
    let rest = json[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn l3fwd_routes_between_linux_hosts_on_af_packet() {
    l3fwd_between_two_linux_hosts("af_packet");
}

#[test]
fn l3fwd_routes_between_linux_hosts_on_af_xdp() {
    l3fwd_between_two_linux_hosts("af_xdp");
}

/// The kernel pings ferroplane through a tap device ferroplane creates.
#[test]
fn linux_pings_ferroplane_through_a_tap() {
    if !tools(&["ping"]) {
        return;
    }
    let ns = Netns::new("tap").unwrap();
    let ports = r#"
[[ports]]
name = "t0"
driver = "tap"
iface = "fptap0"
ipv4 = ["198.18.10.2/24"]
"#;
    let mut fp = Ferroplane::start(
        &ns,
        &config(ports, "\"t0\"", "name = \"udp-echo\"\nport = 7"),
    );
    let up = wait_for(Duration::from_secs(10), || {
        fp.assert_running();
        ns.ip(&["link", "show", "dev", "fptap0"]).is_ok()
    });
    assert!(up, "tap never appeared:\n{}", fp.log());
    ns.ip(&["addr", "add", "198.18.10.1/24", "dev", "fptap0"])
        .unwrap();
    wait_reachable(&ns, "198.18.10.2", &mut fp);
    let o = ns
        .run(
            &["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.10.2"],
            T,
        )
        .unwrap();
    assert!(out(&o).contains("3 received"), "{}", out(&o));
    fp.stop();
}

/// Start-up errors are clear and leave nothing attached: a missing interface, and an
/// interface that already has an XDP program (ours, from a second instance).
#[test]
fn bad_ports_fail_clearly_and_leave_no_xdp() {
    if !tools(&[]) {
        return;
    }
    let dut = Netns::new("bad").unwrap();
    let _link = VethPair::new("fpbad0", Some(&dut), "fpbad1", Some(&dut)).unwrap();
    let cfg_for = |iface: &str| {
        config(
            &format!(
                "[[ports]]\nname = \"p0\"\ndriver = \"af_xdp\"\niface = \"{iface}\"\nipv4 = [\"198.18.5.1/24\"]\n"
            ),
            "\"p0\"",
            "name = \"l3fwd\"",
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    std::fs::write(&missing, cfg_for("fpnosuch0")).unwrap();
    let o = dut
        .run(&[bin(), "validate", missing.to_str().unwrap()], T)
        .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("fpnosuch0"), "{}", out(&o));

    // The first instance holds the interface; a second one must refuse, not steal it.
    let mut first = Ferroplane::start(&dut, &cfg_for("fpbad0"));
    assert!(wait_for(Duration::from_secs(10), || dut
        .ip(&["-d", "link", "show", "dev", "fpbad0"])
        .is_ok_and(|s| s.contains("xdp"))));
    first.assert_running();
    let second = dir.path().join("second.toml");
    std::fs::write(&second, cfg_for("fpbad0")).unwrap();
    let o = dut
        .run(
            &[bin(), "run", second.to_str().unwrap()],
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(
        !o.status.success(),
        "second instance must fail:\n{}",
        out(&o)
    );
    assert!(out(&o).contains("fpbad0"), "{}", out(&o));
    first.stop();
    assert_no_xdp(&dut);
}
