//! Running the `ferroplane` binary in a namespace for interop tests: start with a config,
//! check it is alive, stop it with SIGTERM and check it exits 0; plus the small helpers every
//! interop test file needs.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use super::netns::{require_root, require_tool, wait_for, Netns};

/// The bound on one peer command.
pub const T: Duration = Duration::from_secs(10);

/// The `ferroplane` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferroplane")
}

/// A command's stdout and stderr, for assertion messages.
pub fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Root and every tool present (else the test is skipped, or fails under
/// `FERROPLANE_REQUIRE_TOOLS=1`).
pub fn tools(names: &[&str]) -> bool {
    require_root() && names.iter().all(|t| require_tool(t))
}

/// Deterministic pseudo-random bytes (xorshift64) for payloads that must come back intact.
pub fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// A running ferroplane process; stopped with SIGTERM (and checked to exit 0) on `stop`, killed
/// on drop.
pub struct Ferroplane {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ferroplane {
    /// Writes `config` and starts `ferroplane run` in `ns`.
    pub fn start(ns: &Netns, config: &str) -> Ferroplane {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ferroplane.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = dir.path().join("ferroplane.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = ns
            .exec(&[bin(), "run", cfg.to_str().unwrap(), "--quiet"])
            .stdin(std::process::Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        Ferroplane {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// The process id (of `ip netns exec`, which execs ferroplane).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Fails the test with the log if the process died.
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("ferroplane exited early ({status}):\n{}", self.log());
            }
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns the log.
    pub fn stop(mut self) -> String {
        let mut c = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child (the `ip netns exec` wrapper execs ferroplane).
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = c.kill();
                panic!("ferroplane did not stop within 10 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log();
        assert!(status.success(), "ferroplane exit {status}:\n{log}");
        log
    }
}

impl Drop for Ferroplane {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The config of a ferroplane with `ports` (TOML `[[ports]]` tables) running `app`.
pub fn config(ports: &str, rx: &str, app: &str) -> String {
    format!(
        r#"
[[memory.pools]]
name = "pool"
mbufs = 8192
data_room = 2048
headroom = 256
cache_size = 128

{ports}

[[lcores]]
id = 1
rx = [{rx}]

[app]
{app}

[metrics]
enabled = false

[run]
idle = "adaptive"
"#
    )
}

/// Turns off transmit checksum offload on a Linux peer's veth end. A kernel talking over veth
/// leaves TCP/UDP checksums partial (the "NIC" would finish them); AF_XDP hands frames to user
/// space with no way to say so (AF_PACKET does, and its driver completes them), so for AF_XDP
/// ports the peers must send finished checksums, as they do over a real wire.
pub fn full_checksums(ns: &Netns, dev: &str) {
    let o = ns.run(&["ethtool", "-K", dev, "tx", "off"], T).unwrap();
    assert!(o.status.success(), "ethtool: {}", out(&o));
}

/// Waits until `ping` from `ns` to `dst` succeeds (the data plane is up and ARP resolved).
pub fn wait_reachable(ns: &Netns, dst: &str, fp: &mut Ferroplane) {
    let ok = wait_for(Duration::from_secs(15), || {
        fp.assert_running();
        ns.run(&["ping", "-c", "1", "-W", "1", dst], T)
            .is_ok_and(|o| o.status.success())
    });
    assert!(ok, "{dst} never answered ping:\n{}", fp.log());
}

/// Runs `wrk` for 3 s against http://198.18.0.1/ from `peer` with `threads` threads and
/// `conns` connections, asserts it saw no socket errors, no non-2xx answers and more than 100
/// requests, and returns the request count and wrk's report.
pub fn wrk_clean(peer: &Netns, threads: u32, conns: u32) -> (u64, String) {
    let (t, c) = (format!("-t{threads}"), format!("-c{conns}"));
    let o = peer
        .run(
            &[
                "wrk",
                &t,
                &c,
                "-d3s",
                "--timeout",
                "2s",
                "http://198.18.0.1/",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    let w = out(&o);
    assert!(o.status.success(), "wrk: {w}");
    assert!(!w.contains("Socket errors"), "wrk saw socket errors:\n{w}");
    assert!(!w.contains("Non-2xx"), "wrk saw errors:\n{w}");
    let reqs: u64 = w
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(reqs > 100, "wrk made only {reqs} requests:\n{w}");
    (reqs, w)
}
