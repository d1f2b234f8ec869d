//! Tests of the rendering (fixed snapshots), the HTTP endpoint (raw sockets) and of the output
//! against Prometheus' own checker, `promtool check metrics`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Encoder, Registry, TextEncoder};

use super::collector::SPECS;
use super::server::{Limits, MAX_HEAD};
use super::*;
use crate::mem::MempoolStats;
use crate::port::{MacAddr, PortInfo, PortStats, QueueStats};
use crate::stats::{LcoreStats, Snapshot, StatsSource};

/// Returns a fixed snapshot and counts how often it was asked.
struct FakeSource {
    snapshot: Snapshot,
    calls: AtomicU64,
}

impl FakeSource {
    fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(FakeSource {
            snapshot,
            calls: AtomicU64::new(0),
        })
    }
}

impl StatsSource for FakeSource {
    fn snapshot(&self) -> Snapshot {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.snapshot.clone()
    }
}

fn queue(packets: u64, bytes: u64, errors: u64, missed: u64, nombuf: u64) -> QueueStats {
    QueueStats {
        packets,
        bytes,
        errors,
        missed,
        nombuf,
    }
}

/// Port totals summed from the queues, like `PortCounters::stats`.
fn port(
    name: &str,
    id: u16,
    driver: &'static str,
    rx: Vec<QueueStats>,
    tx: Vec<QueueStats>,
) -> (PortInfo, PortStats) {
    let info = PortInfo {
        name: name.to_owned(),
        id,
        driver,
        mac: MacAddr::local(id as u8 + 1),
        mtu: 1500,
        rx_queues: rx.len() as u16,
        tx_queues: tx.len() as u16,
        tx_l4_checksum_offload: false,
    };
    let stats = PortStats {
        ipackets: rx.iter().map(|q| q.packets).sum(),
        ibytes: rx.iter().map(|q| q.bytes).sum(),
        imissed: rx.iter().map(|q| q.missed).sum(),
        ierrors: rx.iter().map(|q| q.errors).sum(),
        rx_nombuf: rx.iter().map(|q| q.nombuf).sum(),
        opackets: tx.iter().map(|q| q.packets).sum(),
        obytes: tx.iter().map(|q| q.bytes).sum(),
        oerrors: tx.iter().map(|q| q.errors).sum(),
        rx_queues: rx,
        tx_queues: tx,
    };
    (info, stats)
}

/// 2 ports × 2 queues, 2 lcores with drop reasons, 1 pool.
fn fixture() -> Snapshot {
    Snapshot {
        uptime_secs: 12.5,
        tsc_hz: 2_000_000_000,
        ports: vec![
            port(
                "p0",
                0,
                "null",
                vec![queue(10, 640, 1, 2, 3), queue(20, 1280, 0, 0, 0)],
                vec![queue(30, 1920, 4, 0, 0), queue(0, 0, 0, 0, 0)],
            ),
            port(
                "p1",
                1,
                "ring",
                vec![queue(5, 320, 0, 0, 0), queue(42, 2688, 0, 7, 0)],
                vec![queue(1, 64, 0, 0, 0), queue(2, 128, 0, 0, 0)],
            ),
        ],
        lcores: vec![
            LcoreStats {
                id: 1,
                cpu: Some(2),
                turns: 1000,
                busy_turns: 250,
                rx_packets: 77,
                tx_packets: 33,
                idle_sleeps: 9,
                idle_wakeups: 2,
                busy_cycles: 1_000_000_000,
                total_cycles: 4_000_000_000,
                drops: vec![("tx_full", 7), ("no_tx_queue", 0), ("runt", 2)],
                nodes: vec![crate::graph::NodeStats {
                    node: "eth-input".into(),
                    calls: 10,
                    packets: 320,
                    cycles: 1_000_000_000,
                    drops: vec![("runt".into(), 2), ("not_for_us".into(), 0)],
                }],
            },
            LcoreStats {
                id: 2,
                cpu: None,
                turns: 500,
                busy_turns: 0,
                rx_packets: 0,
                tx_packets: 0,
                idle_sleeps: 400,
                idle_wakeups: 0,
                busy_cycles: 0,
                total_cycles: 3_000_000_000,
                drops: vec![("tx_full", 0), ("no_route", 3)],
                nodes: vec![],
            },
        ],
        pools: vec![MempoolStats {
            name: "pool0".to_owned(),
            capacity: 8191,
            available: 8000,
            in_use: 191,
            cache_hits: 123456,
            cache_refills: 789,
            empty_events: 1,
        }],
    }
}

/// The fixture with names that need escaping or are otherwise unusual.
fn odd_fixture() -> Snapshot {
    let mut s = fixture();
    s.ports[0].0.name = "we\"ird\\name\nx".to_owned();
    s.ports[1].0.name = "ünïcødé port {p1}=,".to_owned();
    s.lcores[0].drops.push(("quote\"d", 1));
    s.pools[0].name = String::new();
    s
}

fn lines(text: &str) -> HashSet<&str> {
    text.lines().collect()
}

/// Samples of the per-queue port counters that carry no `queue` label.
fn port_series_without_queue(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            l.starts_with("ferroplane_port_") && l.contains("_total{") && !l.contains(",queue=\"")
        })
        .collect()
}

#[test]
fn metrics_render_exact_samples() {
    let src = FakeSource::new(fixture());
    let text = render(&*src);
    assert_eq!(
        src.calls.load(Ordering::SeqCst),
        1,
        "one snapshot per render"
    );
    let got = lines(&text);
    let expected = [
        r#"ferroplane_port_rx_packets_total{port="p0",queue="0"} 10"#,
        r#"ferroplane_port_rx_packets_total{port="p0",queue="1"} 20"#,
        r#"ferroplane_port_rx_packets_total{port="p1",queue="0"} 5"#,
        r#"ferroplane_port_rx_packets_total{port="p1",queue="1"} 42"#,
        r#"ferroplane_port_rx_bytes_total{port="p1",queue="1"} 2688"#,
        r#"ferroplane_port_rx_missed_total{port="p0",queue="0"} 2"#,
        r#"ferroplane_port_rx_missed_total{port="p1",queue="1"} 7"#,
        r#"ferroplane_port_rx_errors_total{port="p0",queue="0"} 1"#,
        r#"ferroplane_port_rx_nombuf_total{port="p0",queue="0"} 3"#,
        r#"ferroplane_port_rx_nombuf_total{port="p0",queue="1"} 0"#,
        r#"ferroplane_port_tx_packets_total{port="p0",queue="0"} 30"#,
        r#"ferroplane_port_tx_packets_total{port="p0",queue="1"} 0"#,
        r#"ferroplane_port_tx_packets_total{port="p1",queue="1"} 2"#,
        r#"ferroplane_port_tx_bytes_total{port="p0",queue="0"} 1920"#,
        r#"ferroplane_port_tx_errors_total{port="p0",queue="0"} 4"#,
        r#"ferroplane_port_info{port="p0",driver="null",mac="02:00:00:00:00:01"} 1"#,
        r#"ferroplane_port_info{port="p1",driver="ring",mac="02:00:00:00:00:02"} 1"#,
        r#"ferroplane_port_mtu_bytes{port="p1"} 1500"#,
        r#"ferroplane_lcore_turns_total{lcore="1"} 1000"#,
        r#"ferroplane_lcore_busy_turns_total{lcore="1"} 250"#,
        r#"ferroplane_lcore_rx_packets_total{lcore="1"} 77"#,
        r#"ferroplane_lcore_tx_packets_total{lcore="1"} 33"#,
        r#"ferroplane_lcore_idle_sleeps_total{lcore="2"} 400"#,
        r#"ferroplane_lcore_busy_seconds_total{lcore="1"} 0.5"#,
        r#"ferroplane_lcore_busy_seconds_total{lcore="2"} 0"#,
        r#"ferroplane_lcore_seconds_total{lcore="1"} 2"#,
        r#"ferroplane_lcore_seconds_total{lcore="2"} 1.5"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="1",reason="tx_full"} 7"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="1",reason="no_tx_queue"} 0"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="1",reason="runt"} 2"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="2",reason="tx_full"} 0"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="2",reason="no_route"} 3"#,
        r#"ferroplane_node_calls_total{lcore="1",node="eth-input"} 10"#,
        r#"ferroplane_node_packets_total{lcore="1",node="eth-input"} 320"#,
        r#"ferroplane_node_busy_seconds_total{lcore="1",node="eth-input"} 0.5"#,
        r#"ferroplane_node_events_total{lcore="1",node="eth-input",reason="runt"} 2"#,
        r#"ferroplane_mempool_mbufs{pool="pool0"} 8191"#,
        r#"ferroplane_mempool_available_mbufs{pool="pool0"} 8000"#,
        r#"ferroplane_mempool_in_use_mbufs{pool="pool0"} 191"#,
        r#"ferroplane_mempool_cache_hits_total{pool="pool0"} 123456"#,
        r#"ferroplane_mempool_cache_refills_total{pool="pool0"} 789"#,
        r#"ferroplane_mempool_empty_events_total{pool="pool0"} 1"#,
        "ferroplane_uptime_seconds 12.5",
        "# TYPE ferroplane_port_rx_packets_total counter",
        "# TYPE ferroplane_port_info gauge",
        "# TYPE ferroplane_lcore_busy_seconds_total counter",
        "# TYPE ferroplane_mempool_mbufs gauge",
        "# TYPE ferroplane_uptime_seconds gauge",
    ];
    for line in expected {
        assert!(got.contains(line), "missing line {line:?} in:\n{text}");
    }
    // No per-port remainder series when the totals are the sums of the queues.
    assert_eq!(port_series_without_queue(&text), Vec::<&str>::new());
    // Every sample of 2 ports x 2 queues: 8 port counter families x 4 series.
    let port_counter_samples = text
        .lines()
        .filter(|l| l.starts_with("ferroplane_port_") && l.contains(",queue=\""))
        .count();
    assert_eq!(port_counter_samples, 8 * 4);
}

#[test]
fn metrics_families_appear_once_with_help() {
    let text = render_snapshot(&fixture());
    let mut seen_type = Vec::new();
    let mut seen_help = Vec::new();
    let mut current: Option<&str> = None;
    let mut finished = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(!help.trim().is_empty(), "empty HELP for {name}");
            seen_help.push(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            if let Some(prev) = current.replace(name) {
                finished.insert(prev);
            }
            seen_type.push(name);
        } else {
            // A sample: it belongs to the family whose TYPE came last, and that family's
            // samples are contiguous.
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(Some(name), current, "sample outside its family: {line}");
            assert!(!finished.contains(name), "family {name} split: {line}");
        }
    }
    let unique: HashSet<_> = seen_type.iter().collect();
    assert_eq!(unique.len(), seen_type.len(), "a family appears twice");
    assert_eq!(seen_help, seen_type, "every family has HELP before TYPE");
    // With a known TSC frequency and every kind of object present, every family is emitted,
    // in the declared order.
    let declared: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    assert_eq!(seen_type, declared);
    assert_eq!(declared.len(), 30);
}

#[test]
fn metrics_names_follow_conventions() {
    for spec in SPECS {
        let n = spec.name;
        assert!(n.starts_with("ferroplane_"), "{n}");
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{n} is not snake_case"
        );
        assert!(!spec.help.is_empty());
        assert!(spec.help.ends_with('.'), "{n}: help should be a sentence");
        for l in spec.labels {
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
        }
    }
}

#[test]
fn metrics_label_values_are_escaped() {
    let text = render_snapshot(&odd_fixture());
    let got = lines(&text);
    for line in [
        r#"ferroplane_port_rx_packets_total{port="we\"ird\\name\nx",queue="0"} 10"#,
        r#"ferroplane_port_rx_packets_total{port="ünïcødé port {p1}=,",queue="1"} 42"#,
        r#"ferroplane_lcore_dropped_packets_total{lcore="1",reason="quote\"d"} 1"#,
        r#"ferroplane_mempool_mbufs{pool=""} 8191"#,
    ] {
        assert!(got.contains(line), "missing line {line:?} in:\n{text}");
    }
    // A raw newline from a label would split a sample line in two.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("ferroplane_"), "broken line {line:?}");
    }
}

#[test]
fn metrics_port_totals_not_in_queues_get_a_series_without_queue() {
    let mut s = fixture();
    // A driver that counts misses and errors only per port.
    s.ports[0].1.imissed += 5;
    s.ports[0].1.oerrors += 6;
    // A port without queues at all.
    let (mut info, mut stats) = port("p2", 2, "pcap", vec![], vec![]);
    stats.ipackets = 9;
    info.mtu = 9000;
    s.ports.push((info, stats));
    let text = render_snapshot(&s);
    let got = lines(&text);
    for line in [
        r#"ferroplane_port_rx_missed_total{port="p0",queue="0"} 2"#,
        r#"ferroplane_port_rx_missed_total{port="p0"} 5"#,
        r#"ferroplane_port_tx_errors_total{port="p0"} 6"#,
        r#"ferroplane_port_rx_packets_total{port="p2"} 9"#,
        r#"ferroplane_port_tx_packets_total{port="p2"} 0"#,
        r#"ferroplane_port_mtu_bytes{port="p2"} 9000"#,
    ] {
        assert!(got.contains(line), "missing line {line:?} in:\n{text}");
    }
    // Only where the totals exceed the queues (or there are no queues).
    let mut rest = port_series_without_queue(&text);
    rest.sort_unstable();
    let mut expected = vec![
        r#"ferroplane_port_rx_missed_total{port="p0"} 5"#.to_owned(),
        r#"ferroplane_port_tx_errors_total{port="p0"} 6"#.to_owned(),
    ];
    for family in SPECS.iter().filter(|f| f.labels == ["port", "queue"]) {
        let value = if family.name == "ferroplane_port_rx_packets_total" {
            9
        } else {
            0
        };
        expected.push(format!("{}{{port=\"p2\"}} {value}", family.name));
    }
    expected.sort_unstable();
    assert_eq!(rest, expected);
}

#[test]
fn metrics_edge_cases() {
    // Nothing running yet: only the uptime, and no lcore time without a TSC frequency.
    let empty = render_snapshot(&Snapshot::default());
    assert_eq!(
        empty,
        "# HELP ferroplane_uptime_seconds Seconds since the data plane started.\n\
         # TYPE ferroplane_uptime_seconds gauge\n\
         ferroplane_uptime_seconds 0\n"
    );

    let mut s = fixture();
    s.tsc_hz = 0;
    s.uptime_secs = f64::NAN;
    s.lcores[0].drops = vec![("tx_full", 1), ("tx_full", 2)];
    s.ports[0].1.rx_queues[0].packets = u64::MAX;
    let text = render_snapshot(&s);
    assert!(
        !text.contains("seconds_total"),
        "no lcore time without tsc_hz"
    );
    assert!(
        !text.contains("ferroplane_uptime_seconds"),
        "NaN is not exported"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().unwrap().is_finite(), "{line}");
    }
    let drops: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ferroplane_lcore_dropped_packets_total{lcore=\"1\""))
        .collect();
    assert_eq!(
        drops,
        [r#"ferroplane_lcore_dropped_packets_total{lcore="1",reason="tx_full"} 3"#]
    );
    assert!(text
        .contains(r#"ferroplane_port_rx_packets_total{port="p0",queue="0"} 18446744073709552000"#));
}

#[test]
fn metrics_collector_in_a_registry() {
    let src = FakeSource::new(fixture());
    let registry = Registry::new();
    registry
        .register(Box::new(MetricsCollector::new(src.clone())))
        .unwrap();
    // A second registration of the same families is refused.
    assert!(registry
        .register(Box::new(MetricsCollector::new(src.clone())))
        .is_err());

    let families = registry.gather();
    assert_eq!(
        src.calls.load(Ordering::SeqCst),
        1,
        "one snapshot per scrape"
    );
    assert_eq!(families.len(), SPECS.len());
    let mut buf = Vec::new();
    TextEncoder::new().encode(&families, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    // The registry sorts, but the samples are the same ones.
    let direct = render_snapshot(&fixture());
    let mut a: Vec<&str> = text.lines().collect();
    let mut b: Vec<&str> = direct.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is and reads the whole reply (the server closes the connection).
fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8(raw.to_vec()).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("reply has a head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status_line,
        headers,
        body: body.to_owned(),
    };
    if let Some(len) = reply.header("Content-Length") {
        if !reply.status_line.is_empty() {
            let _: usize = len.parse().expect("numeric Content-Length");
        }
    }
    reply
}

fn test_limits() -> Limits {
    Limits {
        read_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_secs(2),
        drain_timeout: Duration::from_millis(100),
    }
}

#[test]
fn metrics_http_serves_metrics_index_and_errors() {
    let src = FakeSource::new(fixture());
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src.clone()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let r = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("Content-Type"), Some(CONTENT_TYPE));
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.body, render_snapshot(&fixture()));
    assert!(r
        .body
        .contains("ferroplane_port_rx_packets_total{port=\"p1\",queue=\"1\"} 42\n"));

    // Query strings, absolute-form targets and bare-LF line ends are fine.
    let r = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\n\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    let r = exchange(addr, b"GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");

    // HEAD: the headers of GET, no body.
    let r = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.body, "");
    let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
    assert_eq!(len, render_snapshot(&fixture()).len());

    let r = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("href=\"/metrics\""));

    for path in ["/nope", "/metrics/", "/metricsx", "//metrics"] {
        let r = exchange(addr, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found", "{path}");
        assert_eq!(
            r.header("Content-Length"),
            Some(r.body.len().to_string().as_str())
        );
    }

    for method in ["POST", "PUT", "DELETE", "get"] {
        let r = exchange(
            addr,
            format!("{method} /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
        );
        assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed", "{method}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    }

    let before = src.calls.load(Ordering::SeqCst);
    server.stop();
    // GET /metrics x4 (3 GET + 1 HEAD); nothing else rendered.
    assert_eq!(before, 4);
}

#[test]
fn metrics_http_survives_garbage_and_slow_clients() {
    let src = FakeSource::new(fixture());
    let server =
        MetricsServer::start_with("127.0.0.1:0".parse().unwrap(), src.clone(), test_limits())
            .unwrap();
    let addr = server.local_addr();

    for garbage in [
        &b"\x00\xff\xfe garbage \x80\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/1.1 x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"\r\n\r\n",
        b"GET /m\xc3\x28 HTTP/1.1\r\n\r\n",
    ] {
        let r = exchange(addr, garbage);
        assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request", "{garbage:?}");
    }

    // Too long a head: 431, and the connection is closed cleanly enough to read the answer.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    big.resize(MAX_HEAD + 100, b'a');
    let r = exchange(addr, &big);
    assert_eq!(
        r.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // A client that connects and hangs up at once, or sends half a request and hangs up.
    drop(TcpStream::connect(addr).unwrap());
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metr").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    let mut raw = Vec::new();
    half.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_reply(&raw).status_line, "HTTP/1.1 400 Bad Request");

    // A silent client gets 408 after the read budget, and a trickling one cannot stretch it.
    let t0 = Instant::now();
    let r = exchange(addr, b"");
    assert_eq!(r.status_line, "HTTP/1.1 408 Request Timeout");
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for b in b"GET /metrics HTTP/1.1\r\n" {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut raw = Vec::new();
    let _ = slow.read_to_end(&mut raw);
    assert_eq!(
        parse_reply(&raw).status_line,
        "HTTP/1.1 408 Request Timeout"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));

    // Still serving.
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(src.calls.load(Ordering::SeqCst), 1);
    server.stop();
}

#[test]
fn metrics_http_stop_is_prompt() {
    let src = FakeSource::new(fixture());
    // Idle server: stop wakes the blocked accept.
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src.clone()).unwrap();
    let addr = server.local_addr();
    let t0 = Instant::now();
    server.stop();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(TcpStream::connect(addr).is_err(), "listener closed");

    // A client holding a connection open (default 2 s budget) does not delay stop, nor drop.
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src.clone()).unwrap();
    let mut idle = TcpStream::connect(server.local_addr()).unwrap();
    idle.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    drop(server);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn metrics_http_survives_a_panicking_source() {
    struct Panics;
    impl StatsSource for Panics {
        fn snapshot(&self) -> Snapshot {
            panic!("stats source failed (expected by the test)");
        }
    }
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::new(Panics)).unwrap();
    let addr = server.local_addr();
    for _ in 0..2 {
        let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 500 Internal Server Error");
    }
    let r = exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    server.stop();
}

#[test]
fn metrics_bind_error_is_reported() {
    let src = FakeSource::new(fixture());
    let first = MetricsServer::start("127.0.0.1:0".parse().unwrap(), src.clone()).unwrap();
    let taken = first.local_addr();
    assert!(MetricsServer::start(taken, src).is_err());
}

// ---------------------------------------------------------------------------------------------
// promtool

/// Runs `promtool check metrics < file` on `text`. `None` when promtool is not installed (and
/// not required).
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.prom");
    std::fs::write(&path, text).unwrap();
    let stdin = std::fs::File::open(&path).unwrap();
    let out = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::from(stdin))
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!("promtool not installed but FERROPLANE_REQUIRE_TOOLS=1 (apt-get install prometheus)");
            }
            eprintln!("skipping: promtool not installed (apt-get install prometheus)");
            return None;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), output))
}

#[test]
fn metrics_promtool_check_metrics() {
    for (what, snapshot) in [
        ("fixture", fixture()),
        ("odd names", odd_fixture()),
        ("empty", Snapshot::default()),
    ] {
        let text = render_snapshot(&snapshot);
        let Some((ok, output)) = promtool_check(&text) else {
            return;
        };
        // promtool exits 0 on lint warnings too: any output at all is a failure.
        assert!(
            ok && output.trim().is_empty(),
            "promtool check metrics ({what}) reported problems:\n{output}\non:\n{text}"
        );
    }
    // And it does catch problems (the check is not vacuous).
    if let Some((ok, output)) = promtool_check("# TYPE foo_seconds counter\nfoo_seconds 1\n") {
        assert!(!ok || !output.trim().is_empty(), "promtool flagged nothing");
    }
}
