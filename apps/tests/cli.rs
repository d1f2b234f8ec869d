//! End-to-end tests of the `ferroplane` binary: validation, runs, shutdown, pcap in/out, metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// Runs with a hard time limit so a hung run fails the test instead of hanging CI.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
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

/// A config derived from the demo, with `edit` applied to its text.
fn demo_config(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/default.toml")).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, edit(text)).unwrap();
    p
}

#[test]
fn every_shipped_config_validates() {
    for entry in std::fs::read_dir(root().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let o = run_bounded(
                {
                    let mut c = bin();
                    c.arg("validate").arg(&path);
                    c
                },
                Duration::from_secs(10),
            );
            // Samples for real interfaces (af_xdp, af_packet) name interfaces that only exist
            // once the demo topology is set up (`tests/netns.sh setup-l3`); apart from that they
            // must be valid.
            let err = text(&o.stderr);
            let only_missing_ifaces = err
                .lines()
                .filter(|l| l.starts_with("error:"))
                .all(|l| l.ends_with("does not exist on this machine"));
            assert!(
                o.status.success() || only_missing_ifaces,
                "{}: {err}",
                path.display()
            );
            if o.status.success() {
                assert!(text(&o.stdout).contains("valid"));
            }
        }
    }
}

#[test]
fn validate_reports_every_error_with_path_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let bad = demo_config(dir.path(), "bad.toml", |t| {
        t.replace("mbufs = 8192", "mbufs = 8192\nmbuf = 3")
            .replace("rx_queues = 1 ", "rx_queues = 0 ")
            .replace("rx = [\"p0:0\", \"p1:0\"]", "rx = [\"p0:0\", \"p9:0\"]")
            .replace("mode = \"macswap\"", "mode = \"swap\"")
    });
    let o = run_bounded(
        {
            let mut c = bin();
            c.arg("validate").arg(&bad);
            c
        },
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for path in [
        "memory.pools[0].mbuf",
        "ports[0].rx_queues",
        "lcores[0].rx[1]",
        "app.mode",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    assert!(err.contains("hint:"), "{err}");
    assert!(err.contains("did you mean `mbufs`"), "{err}");
}

#[test]
fn bad_cli_arguments_are_rejected_clearly() {
    let o = run_bounded(
        {
            let mut c = bin();
            c.args(["run", "--duration", "5x"]);
            c
        },
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("unit"), "{}", text(&o.stderr));
    let o = run_bounded(
        {
            let mut c = bin();
            c.args(["run", "/nonexistent/x.toml"]);
            c
        },
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/x.toml"));
}

#[test]
fn demo_runs_forwards_and_exits_zero() {
    let o = run_bounded(
        {
            let mut c = bin();
            c.args(["run", "--duration", "1s"]);
            c
        },
        Duration::from_secs(30),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("duration reached"), "{out}");
    let lcore = out.lines().find(|l| l.starts_with("lcore 1")).unwrap();
    // "lcore 1: rx N pkts ..." with N > 0 and no drops.
    let rx: u64 = lcore.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(rx > 1_000_000, "{lcore}");
    assert!(lcore.ends_with("drops: none"), "{lcore}");
    assert!(
        out.contains("0 in use"),
        "every mbuf back in the pool: {out}"
    );
}

#[test]
fn sigint_stops_cleanly_with_final_stats() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path(), "forever.toml", |t| {
        t.replace("duration = \"5s\"", "")
            .replace("idle = \"busy\"", "idle = \"adaptive\"")
    });
    let json = dir.path().join("final.json");
    let child = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "slow shutdown");
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("(signal)"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .expect("final stats are valid JSON");
    let rx = v["lcores"][0]["rx_packets"].as_u64().unwrap();
    let tx = v["lcores"][0]["tx_packets"].as_u64().unwrap();
    assert!(rx > 0 && rx == tx, "rx {rx} tx {tx}");
    assert_eq!(v["pools"][0]["in_use"].as_u64(), Some(0));
}

/// Reads all frames of a classic pcap file with an independent reader.
fn frames(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

#[test]
fn pcap_in_pcap_out_is_byte_identical_and_stops_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let out_pcap = dir.path().join("out.pcap");
    let cfg = dir.path().join("pcap.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[memory.pools]]
name = "pool"
mbufs = 1024
cache_size = 64

[[ports]]
name = "f0"
driver = "pcap"
rx = "{}"
tx = "{}"

[[lcores]]
id = 2
rx = ["f0"]

[app]
name = "l2fwd"
mode = "io"

[metrics]
enabled = false
"#,
            root().join("configs/sample.pcap").display(),
            out_pcap.display()
        ),
    )
    .unwrap();
    let o = run_bounded(
        {
            let mut c = bin();
            c.arg("run").arg(&cfg).arg("--quiet");
            c
        },
        Duration::from_secs(20),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("all input read"), "{out}");
    let want = frames(&root().join("configs/sample.pcap"));
    assert!(!want.is_empty());
    assert_eq!(frames(&out_pcap), want);
}

#[test]
fn broken_pcap_input_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.pcap");
    let good = std::fs::read(root().join("configs/sample.pcap")).unwrap();
    std::fs::write(&bad, &good[..good.len() - 7]).unwrap();
    let cfg = dir.path().join("bad-pcap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[memory.pools]]\nname = \"p\"\n[[ports]]\nname = \"f0\"\ndriver = \"pcap\"\nrx = \
             \"{}\"\n[[lcores]]\nid = 2\nrx = [\"f0\"]\n[metrics]\nenabled = false\n",
            bad.display()
        ),
    )
    .unwrap();
    let o = run_bounded(
        {
            let mut c = bin();
            c.arg("run").arg(&cfg);
            c
        },
        Duration::from_secs(20),
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("broken.pcap") && err.contains("truncated"),
        "{err}"
    );
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn live_metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo_config(dir.path(), "metrics.toml", |t| {
        t.replace("duration = \"5s\"", "duration = \"20s\"")
            .replace("idle = \"busy\"", "idle = \"adaptive\"")
    });
    let mut child = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address is printed on stderr as "metrics: http://ADDR/metrics".
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let start = Instant::now();
    let addr = loop {
        let mut buf = [0u8; 512];
        let n = stderr.read(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(i) = seen.find("metrics: http://") {
            let rest = &seen[i + 16..];
            if let Some(j) = rest.find("/metrics") {
                break rest[..j].to_string();
            }
        }
        assert!(n > 0 && start.elapsed() < Duration::from_secs(10), "{seen}");
    };
    std::thread::sleep(Duration::from_millis(500));
    let resp = http_get(&addr, "/metrics");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let rx_line = body
        .lines()
        .find(|l| l.starts_with("ferroplane_port_rx_packets_total{port=\"p0\",queue=\"0\"}"))
        .unwrap_or_else(|| panic!("no p0 rx series in:\n{body}"));
    let rx: f64 = rx_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(rx > 0.0, "{rx_line}");
    assert!(body.contains("ferroplane_mempool_in_use_mbufs{pool=\"default\"}"));
    assert!(body.contains("ferroplane_lcore_turns_total{lcore=\"1\"}"));

    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "promtool not installed but FERROPLANE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipping promtool check: promtool not installed (apt-get install prometheus)");
        return;
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = promtool.wait_with_output().unwrap();
    let problems = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success() && problems.trim().is_empty(),
        "promtool: {problems}"
    );
}
