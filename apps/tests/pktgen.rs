//! End-to-end tests of `ferroplane pktgen`: quick flags over a ring loopback with exact
//! counts in the JSON, config files, and clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferroplane"));
    c.current_dir(root());
    c
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Runs with a hard time limit so a hung run fails the test instead of hanging.
fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "timed out after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                text(&o.stdout),
                text(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn quick_flags_over_a_ring_loopback_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = run(
        &[
            "pktgen",
            "--port",
            "ring",
            "--rate",
            "200kpps",
            "--count",
            "20000",
            "--size",
            "64:7,576:4,1500:1",
            "--dst-ip",
            "random:198.19.0.1-198.19.0.200",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("== pktgen summary"), "{stdout}");
    // Not a terminal: plain lines, no escape sequences.
    assert!(!stdout.contains('\x1b'), "{stdout}");
    let v = json(&out);
    assert_eq!(v["totals"]["tx"], 20000, "{v:#}");
    assert_eq!(v["totals"]["rx_with_signature"], 20000, "{v:#}");
    assert_eq!(v["totals"]["lost"], 0);
    assert_eq!(v["totals"]["duplicates"], 0);
    assert_eq!(v["totals"]["reordered"], 0);
    assert_eq!(v["streams"][0]["tx"], 20000);
    let lat = &v["streams"][0]["latency"];
    assert_eq!(lat["count"], 20000);
    let (min, p50, p99, max) = (
        lat["min_ns"].as_u64().unwrap(),
        lat["p50_ns"].as_u64().unwrap(),
        lat["p99_ns"].as_u64().unwrap(),
        lat["max_ns"].as_u64().unwrap(),
    );
    assert!(0 < min && min <= p50 && p50 <= p99 && p99 <= max, "{lat}");
    let ports = v["ports"].as_array().unwrap();
    assert_eq!(ports[0]["name"], "r0");
    assert_eq!(ports[0]["tx_packets"], 20000);
    assert_eq!(ports[1]["rx_packets"], 20000);
    // IMIX 7:4:1 of 64/576/1500 (60/572/1496 bytes in the mbuf): exact over whole cycles.
    let bytes = ports[1]["rx_bytes"].as_u64().unwrap();
    let cycles = 20000 / 12;
    let rest = bytes - cycles * (7 * 60 + 4 * 572 + 1496);
    assert!(rest <= 8 * 1496, "{bytes}");
}

#[test]
fn shipped_pktgen_configs_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.json");
    let o = run(
        &[
            "pktgen",
            "--config",
            "configs/pktgen-null.toml",
            "--duration",
            "300ms",
            "--quiet",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json(&out);
    assert!(v["totals"]["tx"].as_u64().unwrap() > 1000, "{v:#}");
    let o = run(
        &[
            "pktgen",
            "--config",
            "configs/pktgen-ring.toml",
            "--rate",
            "100kpps",
            "--count",
            "5000",
            "--quiet",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json(&out);
    assert_eq!(v["totals"]["tx"], 5000, "{v:#}");
    assert_eq!(v["totals"]["lost"], 0, "{v:#}");
    // Two streams round-robin.
    assert_eq!(v["streams"][0]["tx"], 2500);
    assert_eq!(v["streams"][1]["rx"], 2500);
}

#[test]
fn bad_input_gives_clear_errors() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--rate", "0pps"], &["--rate", "greater than 0", "1Mpps"]),
        (&["--rate", "fast"], &["--rate", "invalid rate", "line:10G"]),
        (&["--size", "40"], &["--size", "below the minimum", "64"]),
        (&["--size", "9000"], &["--size", "MTU", "1518"]),
        (&["--size", "64:0"], &["--size", "weight"]),
        (&["--dst-ip", "198.19.0.300"], &["--dst-ip", "invalid IPv4"]),
        (
            &["--port", "bogus"],
            &["--port", "unknown driver", "af_xdp:IFACE"],
        ),
        (&["--port", "af_packet"], &["--port", "needs an interface"]),
        (&["--proto", "sctp"], &["--proto", "udp"]),
    ];
    for (args, want) in cases {
        let mut all = vec!["pktgen", "--count", "1", "--quiet"];
        if !args.contains(&"--port") {
            all.extend(["--port", "null"]);
        }
        all.extend_from_slice(args);
        let o = run(&all, Duration::from_secs(20));
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for w in *want {
            assert!(err.contains(w), "{args:?}: `{w}` not in:\n{err}");
        }
    }
    // An unreadable replay file in a config.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("replay.toml");
    let text_cfg = std::fs::read_to_string(root().join("configs/pktgen-null.toml"))
        .unwrap()
        .split("[[app.streams]]")
        .next()
        .unwrap()
        .to_string()
        + "replay = { file = \"/nonexistent/in.pcap\" }\n";
    std::fs::write(&cfg, text_cfg).unwrap();
    let o = run(
        &["pktgen", "--config", cfg.to_str().unwrap()],
        Duration::from_secs(20),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("app.replay.file") && err.contains("cannot use pcap file"),
        "{err}"
    );
}
