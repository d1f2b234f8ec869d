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

/// The generators these tests start poll busily; side by side on a 2-CPU machine they starve
/// each other and the timing checks (rate within 1 %) fail for reasons that are not pktgen's,
/// so the tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn quick_flags_over_a_ring_loopback_count_exactly() {
    let _turn = serial();
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
    let _turn = serial();
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
    let _turn = serial();
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

/// A ring loopback whose r0 side impairs what it sends.
fn impaired_ring(dir: &Path, impair: &str, app: &str) -> PathBuf {
    let text = format!(
        r#"[[memory.pools]]
name = "default"
mbufs = 16384

[[ports]]
name = "r0"
driver = "ring"
peer = "r1"
depth = 8192
impair = {{ {impair} }}

[[ports]]
name = "r1"
driver = "ring"
peer = "r0"
depth = 8192

[[lcores]]
id = 1
rx = ["r1:0"]
tx = ["r0:0"]

[app]
name = "pktgen"
{app}

[[app.streams]]
size = 64

[metrics]
enabled = false
"#
    );
    let p = dir.join("impair.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn loss_duplicates_and_reordering_are_counted_exactly() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = impaired_ring(
        dir.path(),
        "drop_every = 97, dup_every = 89, swap_every = 83",
        "rate = \"200kpps\"\ncount = 5000",
    );
    let out = dir.path().join("i.json");
    let o = run(
        &[
            "pktgen",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json(&out);
    let s = &v["streams"][0];
    assert_eq!(s["tx"], 5000, "{v:#}");
    // 5000/97 = 51 dropped; 5000/89 = 56 copies; 5000/83 = 60 held behind their successor.
    // No frame number is a multiple of two of the intervals below 5000.
    assert_eq!(s["lost"], 51, "{v:#}");
    assert_eq!(s["duplicates"], 56, "{v:#}");
    assert_eq!(s["reordered"], 60, "{v:#}");
    assert_eq!(s["rx"], 5000 - 51 + 56, "{v:#}");
    assert_eq!(v["ports"][1]["rx_packets"], 5000 - 51 + 56);
    // The wrapper's own counters agree, in the JSON and in the summary; r1 is not impaired.
    assert_eq!(
        v["ports"][0]["impair"],
        serde_json::json!({
            "offered": 5000, "dropped": 51, "rate_dropped": 0, "duplicated": 56,
            "reordered": 60, "refused": 0,
        }),
        "{v:#}"
    );
    assert!(v["ports"][1]["impair"].is_null(), "{v:#}");
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains(
            "impair r0: offered 5000, dropped 51, rate-dropped 0, duplicated 56, reordered 60, \
             refused 0"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("impair r1"), "{stdout}");
}

#[test]
fn rate_is_accurate_against_the_tsc() {
    let _turn = serial();
    // 100 kpps for 2 s over a ring loopback: the generator must send 200 000 ± 1 %; the
    // receive side's first-to-last spread (TSC) must match the rate within 1 % too.
    let dir = tempfile::tempdir().unwrap();
    let cfg = impaired_ring(dir.path(), "", "rate = \"100kpps\"\nduration = \"2s\"");
    let out = dir.path().join("r.json");
    let o = run(
        &[
            "pktgen",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json(&out);
    let tx = v["totals"]["tx"].as_u64().unwrap();
    assert!(
        (198_000..=202_000).contains(&tx),
        "sent {tx}, want 200000 ± 1%: {v:#}"
    );
    assert_eq!(v["totals"]["lost"], 0, "{v:#}");
    let rx_rate = v["streams"][0]["rx_rate_pps"].as_f64().unwrap();
    assert!(
        (99_000.0..=101_000.0).contains(&rx_rate),
        "rx rate {rx_rate} pps (TSC), want 100000 ± 1%"
    );
}

#[test]
fn rfc2544_converges_below_the_rate_limit() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = impaired_ring(dir.path(), "max_pps = 5000", "rate = \"max\"");
    let out = dir.path().join("t.json");
    let o = run(
        &[
            "pktgen",
            "--config",
            cfg.to_str().unwrap(),
            "--rfc2544",
            "64,256",
            "--rfc2544-max-pps",
            "10000",
            "--rfc2544-trial",
            "500ms",
            "--rfc2544-resolution",
            "0.02",
            "--drain",
            "50ms",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("RFC 2544 throughput"), "{stdout}");
    let v = json(&out);
    for r in v["rfc2544"]["results"].as_array().unwrap() {
        let pps = r["throughput_pps"].as_f64().unwrap();
        assert!(r["converged"].as_bool().unwrap(), "{r:#}");
        // The bucket holds 64 frames: a 500 ms trial above 5 128 pps must lose some; the
        // search resolution is 200 pps, and stalls of a loaded machine may cost a step.
        assert!((4_400.0..=5_200.0).contains(&pps), "{pps}: {r:#}");
        let trials = r["trials"].as_array().unwrap();
        assert!(trials.iter().any(|t| !t["pass"].as_bool().unwrap()));
    }
}

#[test]
fn rfc2544_settings_come_from_the_config_and_flags_override_them() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = impaired_ring(
        dir.path(),
        "max_pps = 5000",
        "rate = \"max\"\nrfc2544 = { sizes = [64, 128], max_pps = 10000, trial = \"2s\", \
         resolution = 0.04, max_trials = 20 }",
    );
    let out = dir.path().join("t.json");
    // No --rfc2544: the table alone starts the search; the trial comes from the flag.
    let o = run(
        &[
            "pktgen",
            "--config",
            cfg.to_str().unwrap(),
            "--rfc2544-trial",
            "300ms",
            "--drain",
            "50ms",
            "--quiet",
            "--json",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json(&out);
    let r = &v["rfc2544"];
    assert_eq!(r["max_pps"], 10000.0, "{v:#}");
    assert_eq!(r["trial_s"], 0.3, "{v:#}");
    assert_eq!(r["resolution"], 0.04, "{v:#}");
    let results = r["results"].as_array().unwrap();
    let sizes: Vec<u64> = results
        .iter()
        .map(|x| x["frame_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![64, 128]);
    for x in results {
        let pps = x["throughput_pps"].as_f64().unwrap();
        assert!(x["converged"].as_bool().unwrap(), "{x:#}");
        // Bucket limit 5 000 pps (+ 64 frames per trial); resolution 400 pps; a stall of the
        // loaded machine may cost a step.
        assert!((4_000.0..=5_300.0).contains(&pps), "{pps}: {x:#}");
        assert!(x["trials"].as_array().unwrap().len() <= 20);
    }
    // A bad value in the table is a config error naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("resolution = 0.04", "resolution = 2"),
    )
    .unwrap();
    let o = run(
        &["pktgen", "--config", bad.to_str().unwrap(), "--quiet"],
        Duration::from_secs(20),
    );
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("app.rfc2544.resolution") && err.contains("(0, 1)"),
        "{err}"
    );
}

fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

#[test]
fn pcap_replay_writes_the_same_frames() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let input = root().join("configs/sample.pcap");
    for (timing, loops) in [("fast", 1u32), ("x4", 2)] {
        let cfg = dir.path().join("replay.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"[[memory.pools]]
name = "default"

[[ports]]
name = "p0"
driver = "pcap"
tx = {out:?}

[[lcores]]
id = 1
rx = []
tx = ["p0:0"]

[app]
name = "pktgen"
latency = false
replay = {{ file = {input:?}, timing = "{timing}", loops = {loops} }}

[metrics]
enabled = false
"#
            ),
        )
        .unwrap();
        let o = run(
            &["pktgen", "--config", cfg.to_str().unwrap(), "--quiet"],
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "{timing}: {}", text(&o.stderr));
        let want = pcap_frames(&input);
        assert!(!want.is_empty());
        let got = pcap_frames(&out);
        let want: Vec<Vec<u8>> = (0..loops).flat_map(|_| want.clone()).collect();
        assert_eq!(got, want, "{timing}: replayed frames differ from the input");
    }
}
