//! The `http` application against Linux clients: `curl` fetches pages (a 10 MB file compared
//! byte for byte), malformed and pipelined requests over a raw TCP connection (`socat`), and a
//! bounded `wrk` run that must finish without socket errors or non-2xx answers. ferroplane
//! runs in its own namespace on an af_packet or af_xdp port; the clients are the Linux kernel
//! in a peer namespace (198.18.0.0/15 only). Every wait is bounded.
//!
//! The same checks run with the HTTP sessions on an app lcore (`app_lcores`).
//!
//! Needs root and `ping`, `curl`, `socat`, `wrk`, `ethtool` (`.ci/run` installs them).

mod support;

use std::time::Duration;

use support::ferroplane::{
    config, full_checksums, out, random_bytes, tools, wait_reachable, wrk_clean, Ferroplane, T,
};
use support::netns::{wait_for, End, Netns, VethPair};

/// Sends `request` on one TCP connection from `ns` and returns everything the server sent
/// until it closed (or 5 s passed).
fn raw_exchange(ns: &Netns, request: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req");
    std::fs::write(&req, request).unwrap();
    let cmd = format!("socat -t 5 -T 5 - TCP:198.18.0.1:80 < {}", req.display());
    let o = ns.run(&["sh", "-c", &cmd], T).unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The checks below against ferroplane's `http` on a `driver` port; with `app_lcore`, the
/// sessions run on app lcore 2 (`app_lcores = [2]`) behind the stack lcore's xcore bridge.
fn http_against_linux(driver: &str, app_lcore: bool) {
    if !tools(&["ping", "curl", "socat", "wrk", "ethtool"]) {
        return;
    }
    let (dut_if, peer_if) = if app_lcore {
        ("fphxdut0", "fphxpeer0")
    } else {
        ("fpdut0", "fppeer0")
    };
    let dut = Netns::new("dut").unwrap();
    let peer = Netns::new("peer").unwrap();
    let link = VethPair::new(dut_if, Some(&dut), peer_if, Some(&peer)).unwrap();
    link.addr(End::B, "198.18.0.2/24").unwrap();
    full_checksums(&peer, peer_if);

    let dir = tempfile::tempdir().unwrap();
    let big = random_bytes(10_000_000, 0x5eed_1234_abcd_0001);
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let ports = format!(
        "[[ports]]\nname = \"p0\"\ndriver = \"{driver}\"\niface = \"{dut_if}\"\nipv4 = [\"198.18.0.1/24\"]\n"
    );
    let app = format!(
        r#"name = "http"
ports = [80]
max_connections = 256
{}

[[app.routes]]
path = "/"
body = "hello from ferroplane\n"
content_type = "text/plain"

[[app.routes]]
path = "/big.bin"
file = "{}"
content_type = "application/octet-stream"
"#,
        if app_lcore { "app_lcores = [2]" } else { "" },
        big_path.display()
    );
    let mut cfg = config(&ports, "\"p0\"", &app);
    if app_lcore {
        cfg = cfg.replace("[app]\n", "[[lcores]]\nid = 2\n\n[app]\n");
    }
    let mut fp = Ferroplane::start(&dut, &cfg);
    wait_reachable(&peer, "198.18.0.1", &mut fp);

    // A small page, with the exact headers.
    let o = peer
        .run(&["curl", "-s", "-i", "-m", "5", "http://198.18.0.1/"], T)
        .unwrap();
    let page = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "curl: {}", out(&o));
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("\r\nContent-Length: 22\r\n"), "{page}");
    assert!(page.ends_with("\r\n\r\nhello from ferroplane\n"), "{page}");

    // 10 MB, compared byte for byte (curl writes it into our temporary directory).
    let got = dir.path().join("got.bin");
    let o = peer
        .run(
            &[
                "curl",
                "-s",
                "-m",
                "60",
                "-o",
                got.to_str().unwrap(),
                "-w",
                "%{http_code} %{size_download}",
                "http://198.18.0.1/big.bin",
            ],
            Duration::from_secs(70),
        )
        .unwrap();
    assert!(o.status.success(), "curl big: {}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200 10000000");
    let fetched = std::fs::read(&got).unwrap();
    assert!(fetched == big, "the 10 MB file differs");

    // 404 for an unknown path; HEAD has the length but no body.
    let o = peer
        .run(
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-m",
                "5",
                "http://198.18.0.1/nope",
            ],
            T,
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404", "{}", out(&o));
    let o = peer
        .run(
            &["curl", "-s", "-I", "-m", "5", "http://198.18.0.1/big.bin"],
            T,
        )
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Content-Length: 10000000"),
        "{}",
        out(&o)
    );

    // Pipelining: three requests in one write, three answers in order on one connection,
    // the last one closing it.
    let r = raw_exchange(
        &peer,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let statuses: Vec<&str> = r
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &r[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "404", "200"], "{r}");
    assert!(r.ends_with("hello from ferroplane\n"), "{r}");

    // Malformed requests: 400 and the connection is closed by the server.
    let r = raw_exchange(&peer, b"\x16\x03\x01 not http\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r:?}");
    assert!(r.contains("Connection: close\r\n"), "{r}");
    let r = raw_exchange(&peer, b"GET / HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "no Host: {r:?}");

    // wrk, bounded: keep-alive load on 16 connections for 3 s.
    let (reqs, w) = wrk_clean(&peer, 1, 16);
    eprintln!("{driver}: wrk -c16 3 s: {reqs} requests\n{w}");

    // Still serving after all that.
    let ok = wait_for(Duration::from_secs(5), || {
        peer.run(&["curl", "-s", "-m", "2", "http://198.18.0.1/"], T)
            .is_ok_and(|o| o.stdout == b"hello from ferroplane\n")
    });
    assert!(ok, "not serving after the load:\n{}", fp.log());
    // The server's own counters are in the final report (and on /metrics) as tcp-input events,
    // or events of the app lcore's xcore-app node: exactly the two malformed requests, the 404s
    // and 400s above, and at least wrk's requests.
    let log = fp.stop();
    if app_lcore {
        assert!(log.contains("xcore-app"), "no app lcore node:\n{log}");
    }
    let counter = |name: &str| -> u64 {
        let key = format!("{name}=");
        log.split_whitespace()
            .find_map(|w| w.strip_prefix(key.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the report:\n{log}"))
    };
    assert_eq!(counter("http_malformed"), 2, "{log}");
    assert_eq!(counter("http_4xx"), 4, "404 x2, 400 x2:\n{log}");
    assert!(counter("http_requests") >= reqs + 8, "{log}");
    assert!(counter("http_2xx") >= reqs, "{log}");
    assert!(counter("http_bytes_out") > 10_000_000, "{log}");
}

#[test]
fn http_serves_linux_clients_on_af_packet() {
    http_against_linux("af_packet", false);
}

#[test]
fn http_serves_linux_clients_on_af_xdp() {
    http_against_linux("af_xdp", false);
}

#[test]
fn http_on_an_app_lcore_serves_linux_clients_on_af_packet() {
    http_against_linux("af_packet", true);
}
