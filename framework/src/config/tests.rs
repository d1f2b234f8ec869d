use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::validate::{parse_with, Env};
use super::*;

/// The drivers on Linux interfaces (`af_packet`, `af_xdp`, `tap`).
mod drivers;
/// The http application.
mod http;
/// The L2/L3 stack's sections.
mod net;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fixed machine: 4 CPUs, relative paths from the workspace root, and the check that
/// `af_packet`/`af_xdp` interfaces exist disabled (`tests/drivers.rs` turns it on).
fn env() -> Env {
    Env {
        base_dir: Some(root()),
        cpus: 4,
        net_dir: None,
    }
}

fn ok(text: &str) -> Config {
    parse_with(text, &env()).unwrap_or_else(|e| panic!("expected a valid config, got:\n{e}"))
}

fn errs(text: &str) -> Vec<ConfigError> {
    match parse_with(text, &env()) {
        Ok(c) => panic!("expected errors, got a valid config: {c:?}"),
        Err(e) => {
            assert!(!e.is_empty());
            e.0
        }
    }
}

/// The only error at `path`.
fn at<'a>(errors: &'a [ConfigError], path: &str) -> &'a ConfigError {
    let hits: Vec<_> = errors.iter().filter(|e| e.path == path).collect();
    assert!(
        hits.len() == 1,
        "expected one error at `{path}`, got {}:\n{}",
        hits.len(),
        ConfigErrors(errors.to_vec())
    );
    hits[0]
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in text"))
        + 1
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(root().join("configs").join(name)).unwrap()
}

const SAMPLES: &[&str] = &[
    "default.toml",
    "l2fwd-null.toml",
    "l2fwd-ring.toml",
    "l2fwd-pcap.toml",
    "l3fwd.toml",
    "udp-echo.toml",
    "tcp-echo.toml",
    "tcp-echo-xcore.toml",
    "http.toml",
    "http-2lcores.toml",
    "http-xcore.toml",
    "acl-example.toml",
    "pktgen-null.toml",
    "pktgen-ring.toml",
    // Their interfaces do not exist on an arbitrary machine: `env()` does not check
    // interfaces (`tests/drivers.rs` checks these samples against the machine).
    "l3fwd-af_xdp.toml",
    "l3fwd-af_packet.toml",
    "udp-echo-tap.toml",
];

/// Two null ports, one pool, one lcore polling both: valid. Tests append or substitute.
const BASE: &str = r#"
[[memory.pools]]
name = "default"

[[ports]]
name = "p0"
driver = "null"

[[ports]]
name = "p1"
driver = "null"

[[lcores]]
id = 1
rx = ["p0", "p1"]
"#;

fn qr(port: &str, queue: u16) -> QueueRef {
    QueueRef {
        port: port.to_string(),
        queue,
    }
}

// ---------------------------------------------------------------------------------------------
// Samples, defaults, public API
// ---------------------------------------------------------------------------------------------

#[test]
fn all_sample_configs_parse() {
    for name in SAMPLES {
        if let Err(e) = parse_with(&sample(name), &env()) {
            panic!("configs/{name} has errors:\n{e}");
        }
    }
    // Every shipped config is in the list (a new file cannot be forgotten).
    for entry in std::fs::read_dir(root().join("configs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            assert!(
                SAMPLES.contains(&name.as_str()),
                "add configs/{name} to SAMPLES"
            );
        }
    }
}

#[test]
fn default_config_matches_the_demo() {
    let c = default_config();
    assert_eq!(c, parse(DEFAULT_CONFIG).unwrap());
    assert_eq!(c.memory.huge_pages, HugePages::Auto);
    assert_eq!(
        c.memory.pools,
        vec![PoolConfig {
            name: "default".into(),
            mbufs: 8192,
            data_room: 2048,
            headroom: 128,
            cache_size: 256,
        }]
    );
    assert_eq!(c.ports.len(), 2);
    for (i, p) in c.ports.iter().enumerate() {
        assert_eq!(p.name, format!("p{i}"));
        assert_eq!(p.pool, "default");
        assert_eq!((p.rx_queues, p.tx_queues, p.mtu), (1, 1, 1500));
        assert_eq!(p.mac, Some([2, 0, 0, 0, 0, i as u8 + 1]));
        assert_eq!(
            p.driver,
            DriverConfig::Null {
                size: 64,
                template: None
            }
        );
    }
    assert_eq!(
        c.lcores,
        vec![LcoreConfig {
            id: 1,
            cpu: None,
            rx: vec![qr("p0", 0), qr("p1", 0)],
            tx: vec![qr("p0", 0), qr("p1", 0)],
        }]
    );
    assert_eq!(
        c.app,
        AppConfig::L2fwd(L2fwdConfig {
            mode: FwdMode::Macswap,
            pairs: vec![("p0".into(), "p1".into())],
            peer_macs: vec![],
        })
    );
    assert_eq!(
        c.metrics,
        MetricsConfig {
            enabled: true,
            listen: "127.0.0.1:0".parse().unwrap()
        }
    );
    assert_eq!(c.run.idle, IdlePolicy::Busy);
    assert_eq!(c.run.duration, Some(Duration::from_secs(5)));
    assert_eq!(c.run.stats_interval, Duration::from_secs(1));
    assert_eq!(c.run.burst, 32);
}

#[test]
fn defaults_fill_every_optional_field() {
    let c = ok(BASE);
    let p = &c.ports[1];
    assert_eq!(
        (p.rx_queues, p.tx_queues, p.mtu, p.mac),
        (1, 1, 1500, Some([2, 0, 0, 0, 0, 2]))
    );
    assert_eq!(c.memory.pools[0].mbufs, 8192);
    assert_eq!(c.memory.hugetlbfs, None);
    assert_eq!(c.metrics.listen, SocketAddr::from(([127, 0, 0, 1], 9100)));
    assert!(c.metrics.enabled);
    assert_eq!(
        c.run,
        RunConfig {
            idle: IdlePolicy::Adaptive {
                spin_turns: 64,
                max_sleep_us: 100
            },
            duration: None,
            stats_interval: Duration::from_secs(1),
            burst: 32,
        }
    );
    let AppConfig::L2fwd(app) = &c.app else {
        panic!("expected l2fwd, got {:?}", c.app)
    };
    assert_eq!(app.mode, FwdMode::Macswap);
    assert_eq!(app.pairs, vec![("p0".into(), "p1".into())]);
}

#[test]
fn effective_config_serializes_and_parses_back_identically() {
    let mac_mode = format!(
        "{BASE}\n[app]\nname = \"l2fwd\"\nmode = \"mac\"\npeer_macs = {{ p1 = \"02:00:00:00:00:aa\" }}\n"
    );
    let mut texts: Vec<String> = SAMPLES.iter().map(|s| sample(s)).collect();
    texts.push(mac_mode);
    for text in texts {
        let c = ok(&text);
        let printed = toml::to_string(&c).expect("serializes");
        let again = parse_with(&printed, &env())
            .unwrap_or_else(|e| panic!("printed config does not parse:\n{printed}\n{e}"));
        assert_eq!(c, again, "round trip changed the config:\n{printed}");
        assert!(
            printed.contains("rx = [\"") || printed.contains("tx = [\""),
            "queue refs print as strings:\n{printed}"
        );
    }
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() {
    let c = load(&root().join("configs/l2fwd-null.toml")).unwrap();
    assert_eq!(c.lcores.len(), 2);
    let missing = root().join("configs/does-not-exist.toml");
    let e = load(&missing).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e.0[0].path, "");
    assert_eq!(e.0[0].line, None);
    assert!(
        e.0[0].message.contains("does-not-exist.toml"),
        "{}",
        e.0[0].message
    );
    assert!(
        e.0[0].message.contains("No such file"),
        "{}",
        e.0[0].message
    );
}

#[test]
fn display_shows_path_line_message_and_hint() {
    let text = BASE.replace("name = \"p1\"", "name = \"p1\"\nrx_queues = 0");
    let e = errs(&text);
    let line = line_of(&text, "rx_queues = 0");
    assert_eq!(
        at(&e, "ports[1].rx_queues").to_string(),
        format!(
            "error: ports[1].rx_queues (line {line}): must be between 1 and 64, got 0\n  hint: a number of queues, 1 to 64"
        )
    );
    let all = ConfigErrors(e.clone()).to_string();
    assert_eq!(all.matches("error: ").count(), e.len());
    let file_level = ConfigError {
        path: String::new(),
        line: None,
        message: "m".into(),
        hint: String::new(),
    };
    assert_eq!(file_level.to_string(), "error: m");
}

// ---------------------------------------------------------------------------------------------
// One test per class of error
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_field_suggests_the_closest_name() {
    let text = BASE.replace("name = \"p1\"", "name = \"p1\"\nrx_queue = 2")
        + "\n[metric]\nenabled = true\n";
    let e = errs(&text);
    let f = at(&e, "ports[1].rx_queue");
    assert_eq!(f.message, "unknown field `rx_queue`");
    assert!(
        f.hint.starts_with("did you mean `rx_queues`?"),
        "{}",
        f.hint
    );
    assert_eq!(f.line, Some(line_of(&text, "rx_queue = 2")));
    let s = at(&e, "metric");
    assert_eq!(s.message, "unknown section `metric`");
    assert!(s.hint.starts_with("did you mean `metrics`?"), "{}", s.hint);
    // No suggestion for something far from every field: list them instead.
    let e = errs(&BASE.replace("id = 1", "id = 1\nfrobnicate = 1"));
    let f = at(&e, "lcores[0].frobnicate");
    assert!(f.hint.starts_with("valid fields here:"), "{}", f.hint);
    assert!(
        f.hint.contains("`rx`") && f.hint.contains("`cpu`"),
        "{}",
        f.hint
    );
}

#[test]
fn wrong_types_are_reported() {
    let text = BASE
        .replace("name = \"p0\"", "name = \"p0\"\nmtu = \"1500\"")
        .replace("rx = [\"p0\", \"p1\"]", "rx = \"p0\"")
        + "[metrics]\nenabled = \"yes\"\n";
    let e = errs(&text);
    assert_eq!(
        at(&e, "ports[0].mtu").message,
        "expected an integer, got string \"1500\""
    );
    assert_eq!(
        at(&e, "lcores[0].rx").message,
        "expected an array, got string \"p0\""
    );
    assert_eq!(
        at(&e, "metrics.enabled").message,
        "expected a boolean, got string \"yes\""
    );
    // `[ports]` instead of `[[ports]]`.
    let e = errs("[[memory.pools]]\nname = \"d\"\n[ports]\nname = \"p0\"\n[[lcores]]\nid = 0\n");
    let p = at(&e, "ports");
    assert!(
        p.message.starts_with("expected an array of tables"),
        "{}",
        p.message
    );
    assert!(p.hint.contains("[[ports]]"), "{}", p.hint);
}

#[test]
fn out_of_range_values_are_reported() {
    let text = r#"
[[memory.pools]]
name = "default"
mbufs = 100
headroom = 2048

[[ports]]
name = "p0"
driver = "ring"
peer = "p0"
tx_queues = 65
depth = 1000

[[lcores]]
id = 64
cpu = 4
rx = ["p0"]

[run]
burst = 512
idle_max_sleep_us = 0
"#;
    let e = errs(text);
    // cache_size defaults to 256, too big for 100 mbufs (rte_mempool's 1.5 x rule).
    let c = at(&e, "memory.pools[0].cache_size");
    assert!(
        c.message.contains("too large for a pool of 100 mbufs"),
        "{}",
        c.message
    );
    assert_eq!(
        c.hint,
        "lower cache_size to at most 66 or raise mbufs to at least 384"
    );
    assert_eq!(
        at(&e, "memory.pools[0].headroom").message,
        "must be between 0 and 1024, got 2048"
    );
    assert_eq!(
        at(&e, "ports[0].tx_queues").message,
        "must be between 1 and 64, got 65"
    );
    assert_eq!(
        at(&e, "ports[0].depth").message,
        "depth must be a power of two, got 1000"
    );
    assert_eq!(at(&e, "ports[0].depth").hint, "use 512 or 1024");
    assert_eq!(
        at(&e, "lcores[0].id").message,
        "must be between 0 and 63, got 64"
    );
    let cpu = at(&e, "lcores[0].cpu");
    assert_eq!(cpu.message, "must be between 0 and 3, got 4");
    assert!(
        cpu.hint.contains("4 CPUs online: use 0 to 3"),
        "{}",
        cpu.hint
    );
    assert_eq!(
        at(&e, "run.burst").message,
        "must be between 1 and 256, got 512"
    );
    assert_eq!(
        at(&e, "run.idle_max_sleep_us").message,
        "must be between 1 and 100000, got 0"
    );
    // An integer too large for any type.
    let e = errs(&BASE.replace(
        "name = \"p0\"",
        "name = \"p0\"\nmtu = 99999999999999999999999",
    ));
    assert!(at(&e, "ports[0].mtu")
        .message
        .starts_with("must be between 68 and 9600"));
}

#[test]
fn missing_required_fields_point_at_their_table() {
    let text = r#"
[[memory.pools]]
mbufs = 1024

[[ports]]
name = "p0"

[[lcores]]
rx = ["p0"]

[app]
mode = "io"
"#;
    let e = errs(text);
    let pool = at(&e, "memory.pools[0].name");
    assert_eq!(pool.message, "missing required field `name`");
    assert_eq!(pool.line, Some(line_of(text, "[[memory.pools]]")));
    let drv = at(&e, "ports[0].driver");
    assert_eq!(drv.message, "missing required field `driver`");
    assert_eq!(drv.line, Some(line_of(text, "[[ports]]")));
    assert!(
        drv.hint
            .contains("\"null\", \"ring\", \"pcap\", \"af_packet\", \"af_xdp\", \"tap\""),
        "{}",
        drv.hint
    );
    assert_eq!(
        at(&e, "lcores[0].id").line,
        Some(line_of(text, "[[lcores]]"))
    );
    assert_eq!(at(&e, "app.name").message, "missing required field `name`");

    // Whole sections.
    let e = errs("");
    assert_eq!(at(&e, "ports").line, None);
    assert!(at(&e, "ports").message.contains("at least one port"));
    assert!(at(&e, "lcores").message.contains("at least one lcore"));
    assert!(at(&e, "memory.pools")
        .message
        .contains("at least one mbuf pool"));
    let e = errs("ports = []\nlcores = []\n[memory]\npools = []\n");
    assert_eq!(at(&e, "ports").line, Some(1));
    assert_eq!(at(&e, "lcores").line, Some(2));
    assert_eq!(at(&e, "memory.pools").line, Some(4));
}

#[test]
fn bad_references_list_the_valid_names() {
    let text = BASE
        .replace("driver = \"null\"\n\n[[ports]]", "driver = \"null\"\npool = \"defualt\"\n\n[[ports]]")
        .replace("rx = [\"p0\", \"p1\"]", "rx = [\"p0\", \"p1\", \"p9:0\"]")
        + "[app]\nname = \"l2fwd\"\nmode = \"mac\"\npairs = [[\"p0\", \"p1\"]]\npeer_macs = { px = \"02:00:00:00:00:01\" }\n";
    let e = errs(&text);
    let pool = at(&e, "ports[0].pool");
    assert_eq!(pool.message, "unknown pool `defualt`");
    assert_eq!(
        pool.hint,
        "did you mean `default`? (pools defined: default)"
    );
    let port = at(&e, "lcores[0].rx[2]");
    assert_eq!(port.message, "unknown port `p9`");
    assert_eq!(port.hint, "did you mean `p0`? (ports defined: p0, p1)");
    let pm = at(&e, "app.peer_macs.px");
    assert_eq!(pm.message, "unknown port `px`");
    assert!(pm.hint.contains("ports defined: p0, p1"), "{}", pm.hint);

    let e = errs(&(BASE.to_string() + "[app]\nname = \"l2fwd\"\npairs = [[\"p0\", \"q1\"]]\n"));
    assert_eq!(at(&e, "app.pairs[0][1]").message, "unknown port `q1`");

    // Enumerated values get suggestions too.
    let e = errs(&BASE.replace(
        "[[memory.pools]]",
        "[memory]\nhuge_pages = \"requried\"\n[[memory.pools]]",
    ));
    let hp = at(&e, "memory.huge_pages");
    assert_eq!(hp.message, "unknown value \"requried\"");
    assert!(
        hp.hint.starts_with("did you mean \"required\"?"),
        "{}",
        hp.hint
    );
    let e = errs(&(BASE.to_string() + "[app]\nname = \"l2fw\"\n"));
    let app = at(&e, "app.name");
    assert_eq!(app.message, "unknown value \"l2fw\"");
    assert_eq!(
        app.hint,
        "did you mean \"l2fwd\"? (expected one of \"l2fwd\", \"l3fwd\", \"udp-echo\", \"pktgen\", \"tcp-echo\", \"http\")"
    );
}

#[test]
fn duplicate_names_and_ids_are_reported() {
    let text = r#"
[[memory.pools]]
name = "default"
[[memory.pools]]
name = "default"

[[ports]]
name = "p0"
driver = "null"
[[ports]]
name = "p0"
driver = "null"

[[lcores]]
id = 1
rx = ["p0"]
[[lcores]]
id = 1
"#;
    let e = errs(text);
    assert_eq!(
        at(&e, "memory.pools[1].name").message,
        "duplicate pool name `default` (already used by memory.pools[0])"
    );
    let p = at(&e, "ports[1].name");
    assert_eq!(
        p.message,
        "duplicate port name `p0` (already used by ports[0])"
    );
    assert_eq!(p.line, Some(11));
    let l = at(&e, "lcores[1].id");
    assert_eq!(
        l.message,
        "duplicate lcore id 1 (already used by lcores[0])"
    );
    assert_eq!(
        l.hint,
        "lcore ids must be unique: use a free id, like id = 0"
    );
}

#[test]
fn invalid_names_are_rejected() {
    let e = errs(&BASE.replace("name = \"p1\"", "name = \"p 1\""));
    let n = at(&e, "ports[1].name");
    assert_eq!(n.message, "invalid name \"p 1\"");
    assert!(n.hint.contains("letters, digits, '_' and '-'"));
    let long = "x".repeat(33);
    let e = errs(&BASE.replace("name = \"p1\"", &format!("name = \"{long}\"")));
    assert!(at(&e, "ports[1].name").message.starts_with("invalid name"));
}

#[test]
fn rx_queue_polled_twice_names_both_lcores() {
    let text = BASE.replace(
        "rx = [\"p0\", \"p1\"]",
        "rx = [\"p0\", \"p1\"]\n\n[[lcores]]\nid = 2\nrx = [\"p1:0\"]",
    );
    let e = errs(&text);
    let d = at(&e, "lcores[1].rx[0]");
    assert_eq!(
        d.message,
        "rx queue p1:0 is polled by both lcore 1 (lcores[0].rx[1]) and lcore 2"
    );
    assert!(
        d.hint
            .contains("remove \"p1:0\" from one of the two rx lists"),
        "{}",
        d.hint
    );
    assert_eq!(d.line, Some(line_of(&text, "rx = [\"p1:0\"]")));
    // Within one lcore.
    let e = errs(&BASE.replace("rx = [\"p0\", \"p1\"]", "rx = [\"p0\", \"p1\", \"p0:0\"]"));
    assert_eq!(
        at(&e, "lcores[0].rx[2]").message,
        "rx queue p0:0 is listed twice in this lcore's rx list"
    );
}

#[test]
fn rx_queue_polled_by_nobody_is_reported_at_the_port() {
    let text = BASE.replace(
        "name = \"p1\"",
        "name = \"p1\"\nrx_queues = 3\ntx_queues = 2",
    );
    let e = errs(&text);
    let hits: Vec<_> = e
        .iter()
        .filter(|e| e.path == "ports[1].rx_queues")
        .collect();
    assert_eq!(hits.len(), 2, "{}", ConfigErrors(e.clone()));
    assert_eq!(hits[0].message, "rx queue p1:1 is not polled by any lcore");
    assert_eq!(
        hits[0].hint,
        "add \"p1:1\" to an lcore's rx list or lower rx_queues"
    );
    assert_eq!(hits[1].message, "rx queue p1:2 is not polled by any lcore");
    assert_eq!(hits[0].line, Some(line_of(&text, "rx_queues = 3")));
    // Polling a queue that does not exist.
    let e = errs(&BASE.replace("rx = [\"p0\", \"p1\"]", "rx = [\"p0\", \"p1\", \"p1:1\"]"));
    let q = at(&e, "lcores[0].rx[2]");
    assert_eq!(q.message, "port `p1` has no rx queue 1");
    assert_eq!(
        q.hint,
        "`p1` has rx_queues = 1: use only queue 0 (\"p1\"), or raise ports[1].rx_queues"
    );
}

#[test]
fn queue_references_accept_three_forms() {
    let text = BASE
        .replace(
            "name = \"p0\"",
            "name = \"p0\"\nrx_queues = 3\ntx_queues = 2",
        )
        .replace(
            "rx = [\"p0\", \"p1\"]",
            "rx = [\"p0\", \"p0:1\", { port = \"p0\", queue = 2 }, { port = \"p1\" }]",
        );
    let c = ok(&text);
    assert_eq!(
        c.lcores[0].rx,
        vec![qr("p0", 0), qr("p0", 1), qr("p0", 2), qr("p1", 0)]
    );
    let e = errs(&BASE.replace(
        "rx = [\"p0\", \"p1\"]",
        "rx = [\"p0:x\", \"p1\", { port = \"p0\", qeue = 1 }, 5]",
    ));
    assert!(at(&e, "lcores[0].rx[0]")
        .message
        .contains("\"x\" is not a queue number"));
    assert!(at(&e, "lcores[0].rx[2].qeue")
        .hint
        .starts_with("did you mean `queue`?"));
    assert_eq!(
        at(&e, "lcores[0].rx[3]").message,
        "expected a queue reference, got integer 5"
    );
}

#[test]
fn auto_tx_assignment_takes_the_lowest_free_queue_per_destination() {
    // l2fwd-null: two lcores, two queues per port, p0 <-> p1.
    let c = ok(&sample("l2fwd-null.toml"));
    assert_eq!(c.lcores[0].tx, vec![qr("p0", 0), qr("p1", 0)]);
    assert_eq!(c.lcores[1].tx, vec![qr("p0", 1), qr("p1", 1)]);

    // Only the ports an lcore forwards to get a queue: lcore 1 polls p0 only (→ p1),
    // lcore 2 polls p1 only (→ p0).
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
[[ports]]
name = "p1"
driver = "null"
[[ports]]
name = "p2"
driver = "null"
tx_queues = 3
[[lcores]]
id = 5
rx = ["p0"]
[[lcores]]
id = 6
rx = ["p1"]
[[lcores]]
id = 7
rx = ["p2"]
"#;
    let c = ok(text);
    assert_eq!(c.lcores[0].tx, vec![qr("p1", 0)]);
    assert_eq!(c.lcores[1].tx, vec![qr("p0", 0)]);
    // p2 (odd last port) pairs with itself.
    assert_eq!(c.lcores[2].tx, vec![qr("p2", 0)]);
    let AppConfig::L2fwd(app) = &c.app else {
        panic!("expected l2fwd, got {:?}", c.app)
    };
    assert_eq!(
        app.pairs,
        vec![("p0".into(), "p1".into()), ("p2".into(), "p2".into())]
    );
}

#[test]
fn explicit_tx_queues_are_reserved_before_auto_assignment() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
rx_queues = 2
tx_queues = 2
[[lcores]]
id = 1
rx = ["p0:0"]
[[lcores]]
id = 2
rx = ["p0:1"]
tx = ["p0:0"]
[app]
name = "l2fwd"
pairs = [["p0", "p0"]]
"#;
    let c = ok(text);
    assert_eq!(c.lcores[0].tx, vec![qr("p0", 1)]);
    assert_eq!(c.lcores[1].tx, vec![qr("p0", 0)]);
}

#[test]
fn explicit_tx_lists_are_checked() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
rx_queues = 2
tx_queues = 2
[[ports]]
name = "p1"
driver = "null"
rx_queues = 2
tx_queues = 2
[[lcores]]
id = 1
rx = ["p0:0", "p1:0"]
tx = ["p1:0"]
[[lcores]]
id = 2
rx = ["p0:1", "p1:1"]
tx = ["p1:0", "p0:1", "p0:7"]
"#;
    let e = errs(text);
    // lcore 1 receives on p1, so it forwards to p0, but lists no p0 queue.
    let missing = at(&e, "lcores[0].tx");
    assert_eq!(
        missing.message,
        "lcore 1 forwards frames to port `p0` but its tx list has no queue on `p0`"
    );
    assert_eq!(
        missing.hint,
        "add \"p0:0\" to lcores[0].tx, or remove `tx` to assign queues automatically"
    );
    assert_eq!(missing.line, Some(line_of(text, "tx = [\"p1:0\"]")));
    let twice = at(&e, "lcores[1].tx[0]");
    assert_eq!(
        twice.message,
        "tx queue p1:0 is used by both lcore 1 (lcores[0].tx[0]) and lcore 2"
    );
    assert_eq!(
        at(&e, "lcores[1].tx[2]").message,
        "port `p0` has no tx queue 7"
    );
}

#[test]
fn tx_queue_exhaustion_suggests_how_many_queues_are_needed() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
rx_queues = 3
tx_queues = 3
[[ports]]
name = "p1"
driver = "null"
tx_queues = 1
[[lcores]]
id = 1
rx = ["p0:0", "p1"]
[[lcores]]
id = 2
rx = ["p0:1"]
[[lcores]]
id = 3
rx = ["p0:2"]
"#;
    let e = errs(text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let ex = at(&e, "lcores[1]");
    assert_eq!(
        ex.message,
        "no free tx queue on port `p1` for lcore 2: its 1 tx queue is already used by lcore 1"
    );
    assert_eq!(
        ex.hint,
        "raise ports[1].tx_queues to 3 or list lcores[1].tx"
    );
    assert_eq!(ex.line, Some(line_of(text, "id = 2") - 1));
    assert!(at(&e, "lcores[2]").message.contains("for lcore 3"));
}

#[test]
fn ring_peers_must_name_each_other_and_match_queue_counts() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "a"
driver = "ring"
peer = "b"
[[ports]]
name = "b"
driver = "ring"
peer = "c"
[[ports]]
name = "c"
driver = "ring"
peer = "b"
tx_queues = 2
[[ports]]
name = "n"
driver = "null"
[[ports]]
name = "d"
driver = "ring"
peer = "n"
[[ports]]
name = "e"
driver = "ring"
peer = "zz"
[[lcores]]
id = 1
rx = ["a", "b", "c", "n", "d", "e"]
"#;
    let e = errs(text);
    let a = at(&e, "ports[0].peer");
    assert_eq!(a.message, "ring port `b` is peered with `c`, not with `a`");
    assert!(a.hint.contains("set ports[1].peer = \"a\""), "{}", a.hint);
    let bc = at(&e, "ports[1].rx_queues");
    assert_eq!(
        bc.message,
        "ring port `b` has rx_queues = 1 but its peer `c` has tx_queues = 2"
    );
    let d = at(&e, "ports[4].peer");
    assert_eq!(d.message, "peer `n` is a \"null\" port, not a ring port");
    let z = at(&e, "ports[5].peer");
    assert_eq!(z.message, "unknown peer port `zz`");
    assert!(
        z.hint.contains("ring ports defined: a, b, c, d, e"),
        "{}",
        z.hint
    );

    // Both ends share the rings, so their depths must agree.
    let pair = "[[memory.pools]]\nname = \"m\"\n[[ports]]\nname = \"a\"\ndriver = \"ring\"\npeer = \"b\"\n[[ports]]\nname = \"b\"\ndriver = \"ring\"\npeer = \"a\"\ndepth = 512\n[[lcores]]\nid = 0\nrx = [\"a\", \"b\"]\n";
    let e = errs(pair);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let dep = at(&e, "ports[1].depth");
    assert_eq!(
        dep.message,
        "ring port `b` has depth = 512 but its peer `a` has depth = 1024"
    );
    assert_eq!(dep.line, Some(line_of(pair, "depth = 512")));
    assert_eq!(
        ok(&pair.replace("depth = 512", "depth = 1024")).ports.len(),
        2
    );

    // A ring port may be its own peer (loopback), with equal rx and tx queue counts.
    let looped = "[[memory.pools]]\nname = \"m\"\n[[ports]]\nname = \"lo\"\ndriver = \"ring\"\npeer = \"lo\"\n[[lcores]]\nid = 0\nrx = [\"lo\"]\n";
    let c = ok(looped);
    assert_eq!(
        c.ports[0].driver,
        DriverConfig::Ring {
            peer: "lo".into(),
            depth: 1024,
            checksum_offload: false,
        }
    );
    // Transmit checksum offload is a ring side's choice, off by default; only a boolean.
    let c = ok(&looped.replace("peer = \"lo\"", "peer = \"lo\"\nchecksum_offload = true"));
    assert!(matches!(
        c.ports[0].driver,
        DriverConfig::Ring {
            checksum_offload: true,
            ..
        }
    ));
    let e = errs(&looped.replace("peer = \"lo\"", "peer = \"lo\"\nchecksum_offload = \"yes\""));
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let bad = at(&e, "ports[0].checksum_offload");
    assert!(bad.hint.contains("true"), "{bad:?}");
    let e = errs(&looped.replace("peer = \"lo\"", "peer = \"lo\"\ntx_queues = 2"));
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    assert!(at(&e, "ports[0].tx_queues")
        .message
        .contains("tx_queues = 2 but its peer `lo` has rx_queues = 1"));
}

#[test]
fn pcap_ports_need_a_readable_rx_file() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "cap"
driver = "pcap"
rx = "/nonexistent/in.pcap"
[[lcores]]
id = 1
rx = ["cap"]
"#;
    let e = errs(text);
    let f = at(&e, "ports[0].rx");
    assert!(
        f.message
            .starts_with("cannot read rx file \"/nonexistent/in.pcap\""),
        "{}",
        f.message
    );
    assert!(f.hint.contains("`/nonexistent/in.pcap`"), "{}", f.hint);
    assert_eq!(f.line, Some(line_of(text, "rx = \"/nonexistent")));

    // Relative paths are kept as written (and looked up from the working directory).
    let c = ok(&text.replace("/nonexistent/in.pcap", "configs/sample.pcap"));
    assert_eq!(
        c.ports[0].driver,
        DriverConfig::Pcap {
            rx: Some("configs/sample.pcap".into()),
            tx: None,
            repeat: false
        }
    );
    // A directory is not a pcap file.
    let e = errs(&text.replace("/nonexistent/in.pcap", "configs"));
    assert!(at(&e, "ports[0].rx").message.ends_with("is a directory"));
}

#[test]
fn pcap_port_rules() {
    let base = "[[memory.pools]]\nname = \"d\"\n[[ports]]\nname = \"cap\"\ndriver = \"pcap\"\n";
    let lcore = "[[lcores]]\nid = 1\nrx = [\"cap\"]\n";
    // tx only is fine.
    let c = ok(&format!("{base}tx = \"/tmp/out.pcap\"\n{lcore}"));
    assert_eq!(
        c.ports[0].driver,
        DriverConfig::Pcap {
            rx: None,
            tx: Some("/tmp/out.pcap".into()),
            repeat: false
        }
    );
    // Neither rx nor tx, loop without rx, two queues.
    let e = errs(&format!("{base}rx_queues = 2\n{lcore}"));
    assert_eq!(
        at(&e, "ports[0].rx").message,
        "a pcap port needs `rx`, `tx` or both"
    );
    assert_eq!(
        at(&e, "ports[0].rx_queues").message,
        "pcap ports have exactly one queue each way, got rx_queues = 2"
    );
    let e = errs(&format!("{base}tx = \"/tmp/o.pcap\"\nloop = true\n{lcore}"));
    assert_eq!(
        at(&e, "ports[0].loop").message,
        "`loop` needs an `rx` file to replay"
    );
    // Keys of other drivers.
    let e = errs(&format!(
        "{base}tx = \"/tmp/o.pcap\"\nsize = 64\npeer = \"x\"\n{lcore}"
    ));
    let s = at(&e, "ports[0].size");
    assert_eq!(s.message, "`size` is only valid for driver \"null\"");
    assert_eq!(
        s.hint,
        "this port has driver = \"pcap\"; remove `size` or change the driver"
    );
    assert_eq!(
        at(&e, "ports[0].peer").message,
        "`peer` is only valid for driver \"ring\""
    );
}

#[test]
fn bad_macs_are_rejected() {
    let e = errs(&BASE.replace("name = \"p0\"", "name = \"p0\"\nmac = \"02:00:00:00:00\""));
    let m = at(&e, "ports[0].mac");
    assert_eq!(
        m.message,
        "invalid MAC address \"02:00:00:00:00\": expected 6 bytes"
    );
    assert!(m.hint.contains("\"02:00:00:00:00:01\""));
    let e = errs(&BASE.replace(
        "name = \"p0\"",
        "name = \"p0\"\nmac = \"02:00:00:00:00:zz\"",
    ));
    assert!(at(&e, "ports[0].mac")
        .message
        .contains("\"zz\" is not a two-digit hex byte"));
    let e = errs(&BASE.replace(
        "name = \"p0\"",
        "name = \"p0\"\nmac = \"01:00:5e:00:00:01\"",
    ));
    assert_eq!(
        at(&e, "ports[0].mac").message,
        "port MAC 01:00:5e:00:00:01 is a multicast address"
    );
    let e = errs(&BASE.replace(
        "name = \"p0\"",
        "name = \"p0\"\nmac = \"ff:ff:ff:ff:ff:ff\"",
    ));
    assert!(at(&e, "ports[0].mac")
        .message
        .ends_with("is the broadcast address"));
    let c = ok(&BASE.replace(
        "name = \"p0\"",
        "name = \"p0\"\nmac = \"0A:1b:2C:3d:4E:5f\"",
    ));
    assert_eq!(c.ports[0].mac, Some([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]));
    let e = errs(
        &(BASE.to_string()
            + "[app]\nname = \"l2fwd\"\nmode = \"mac\"\npeer_macs = { p1 = \"02-00-00-00-00-01\" }\n"),
    );
    assert!(at(&e, "app.peer_macs.p1")
        .message
        .starts_with("invalid MAC address"));
}

#[test]
fn bad_durations_are_rejected() {
    let run = |body: &str| format!("{BASE}[run]\n{body}\n");
    for (body, path, msg) in [
        (
            "duration = \"5 sec\"",
            "run.duration",
            "invalid duration \"5 sec\": unknown unit \"sec\"",
        ),
        (
            "duration = \"5\"",
            "run.duration",
            "duration \"5\" has no unit",
        ),
        ("duration = \"s\"", "run.duration", "invalid duration \"s\""),
        (
            "duration = \"0s\"",
            "run.duration",
            "duration must be greater than zero",
        ),
        (
            "duration = -1",
            "run.duration",
            "must be between 0 and 4294967295, got -1",
        ),
        (
            "duration = 1.5",
            "run.duration",
            "expected a duration, got float 1.5",
        ),
        (
            "stats_interval = \"50ms\"",
            "run.stats_interval",
            "stats_interval must be at least 100ms, got 50ms",
        ),
    ] {
        let e = errs(&run(body));
        assert_eq!(at(&e, path).message, msg, "for {body}");
    }
    for (body, want) in [
        ("duration = \"500ms\"", Duration::from_millis(500)),
        ("duration = \"2m\"", Duration::from_secs(120)),
        ("duration = \"1h\"", Duration::from_secs(3600)),
        ("duration = 7", Duration::from_secs(7)),
    ] {
        assert_eq!(ok(&run(body)).run.duration, Some(want), "for {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Further field rules
// ---------------------------------------------------------------------------------------------

#[test]
fn frames_must_fit_the_pool_data_room() {
    let text = BASE
        .replace("name = \"default\"", "name = \"default\"\ndata_room = 1024")
        .replace(
            "name = \"p1\"\ndriver = \"null\"",
            "name = \"p1\"\ndriver = \"null\"\nmtu = 1000\nsize = 2000",
        );
    let e = errs(&text);
    // p0 has the default mtu 1500.
    let m = at(&e, "ports[0].mtu");
    assert_eq!(
        m.message,
        "mtu 1500 needs 1518-byte frames, but pool `default` has data_room = 1024"
    );
    assert_eq!(
        m.hint,
        "lower mtu to at most 1006 or raise memory.pools[0].data_room to at least 1518"
    );
    assert_eq!(m.line, Some(line_of(&text, "[[ports]]")));
    let s = at(&e, "ports[1].size");
    assert_eq!(
        s.message,
        "frame size 2000 does not fit in pool `default` mbufs (data_room = 1024)"
    );
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
}

#[test]
fn null_templates_are_hex_with_optional_separators() {
    let text = BASE.replace(
        "name = \"p0\"\ndriver = \"null\"",
        "name = \"p0\"\ndriver = \"null\"\nsize = 16\ntemplate = \"\"\"ff:ff:ff:ff:ff:ff 02 00 00 00 00 01\n\t08 00\"\"\"",
    );
    let c = ok(&text);
    assert_eq!(
        c.ports[0].driver,
        DriverConfig::Null {
            size: 16,
            template: Some(vec![
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 0
            ])
        }
    );
    let bad = |t: &str| {
        errs(&BASE.replace(
            "name = \"p0\"\ndriver = \"null\"",
            &format!("name = \"p0\"\ndriver = \"null\"\nsize = 14\ntemplate = \"{t}\""),
        ))
    };
    assert_eq!(
        at(&bad("abc"), "ports[0].template").message,
        "odd number of hex digits (3): every byte needs two"
    );
    assert_eq!(
        at(&bad("00xx"), "ports[0].template").message,
        "invalid hex digit 'x' at character 3"
    );
    let long = at(&bad(&"00".repeat(15)), "ports[0].template").clone();
    assert_eq!(
        long.message,
        "template is 15 bytes, longer than the frame size 14"
    );
    let e = errs(&BASE.replace(
        "name = \"p0\"\ndriver = \"null\"",
        "name = \"p0\"\ndriver = \"null\"\nsize = 13",
    ));
    assert!(at(&e, "ports[0].size")
        .message
        .contains("between 14 and 65535"));
}

#[test]
fn pairs_are_checked() {
    let three = BASE.replace(
        "rx = [\"p0\", \"p1\"]",
        "rx = [\"p0\", \"p1\", \"p2\"]\n[[ports]]\nname = \"p2\"\ndriver = \"null\"",
    );
    let app = |pairs: &str| format!("{three}\n[app]\nname = \"l2fwd\"\npairs = {pairs}\n");
    let e = errs(&app("[[\"p0\", \"p1\"], [\"p1\", \"p2\"]]"));
    assert_eq!(
        at(&e, "app.pairs[1][0]").message,
        "port `p1` is already in pair app.pairs[0]"
    );
    let e = errs(&app("[[\"p0\", \"p1\"]]"));
    let u = at(&e, "app.pairs");
    assert_eq!(
        u.message,
        "port `p2` is not in any pair, so its frames have nowhere to go"
    );
    assert!(u.hint.contains("[\"p2\", \"p2\"]"), "{}", u.hint);
    let e = errs(&app("[[\"p0\"], \"p1\"]"));
    assert_eq!(
        at(&e, "app.pairs[0]").message,
        "a pair has exactly two ports, got 1"
    );
    assert_eq!(
        at(&e, "app.pairs[1]").message,
        "expected a pair of port names, got string \"p1\""
    );
    let c = ok(&app("[[\"p2\", \"p0\"], [\"p1\", \"p1\"]]"));
    // p0 → p2 and p2 → p0: the lcore (polling all three) needs queues on all three ports.
    assert_eq!(c.lcores[0].tx, vec![qr("p0", 0), qr("p1", 0), qr("p2", 0)]);
}

#[test]
fn mac_mode_fills_peer_macs_for_every_port() {
    let text = BASE.to_string()
        + "[app]\nname = \"l2fwd\"\nmode = \"mac\"\npeer_macs = { p1 = \"02:00:00:00:00:aa\" }\n";
    let AppConfig::L2fwd(app) = ok(&text).app else {
        panic!("expected l2fwd")
    };
    assert_eq!(app.mode, FwdMode::Mac);
    assert_eq!(
        app.peer_macs,
        vec![
            ("p0".into(), [2, 0, 0, 0, 0, 0x10]),
            ("p1".into(), [2, 0, 0, 0, 0, 0xaa])
        ]
    );
    let e = errs(&text.replace("mode = \"mac\"", "mode = \"macswap\""));
    assert_eq!(
        at(&e, "app.peer_macs").message,
        "`peer_macs` is only used with mode = \"mac\""
    );
    let e = errs(&text.replace("mode = \"mac\"", "mode = \"macswp\""));
    assert!(at(&e, "app.mode")
        .hint
        .starts_with("did you mean \"macswap\"?"));
}

#[test]
fn run_and_metrics_options() {
    let e = errs(&format!(
        "{BASE}[run]\nidle = \"busy\"\nidle_spin_turns = 10\n"
    ));
    assert_eq!(
        at(&e, "run.idle_spin_turns").message,
        "`idle_spin_turns` is only valid with idle = \"adaptive\""
    );
    let c = ok(&format!(
        "{BASE}[run]\nidle_spin_turns = 10\nidle_max_sleep_us = 50\nburst = 64\n"
    ));
    assert_eq!(
        c.run.idle,
        IdlePolicy::Adaptive {
            spin_turns: 10,
            max_sleep_us: 50
        }
    );
    assert_eq!(c.run.burst, 64);
    let e = errs(&format!("{BASE}[metrics]\nlisten = \"localhost:9100\"\n"));
    assert_eq!(
        at(&e, "metrics.listen").message,
        "invalid listen address \"localhost:9100\""
    );
    let c = ok(&format!(
        "{BASE}[metrics]\nenabled = false\nlisten = \"[::1]:9200\"\n"
    ));
    assert!(!c.metrics.enabled);
    assert_eq!(
        c.metrics.listen,
        "[::1]:9200".parse::<SocketAddr>().unwrap()
    );
    let c = ok(&BASE.replace(
        "[[memory.pools]]",
        "[memory]\nhuge_pages = \"off\"\nhugetlbfs = \"/dev/hugepages\"\n[[memory.pools]]",
    ));
    assert_eq!(c.memory.huge_pages, HugePages::Off);
    assert_eq!(c.memory.hugetlbfs, Some(PathBuf::from("/dev/hugepages")));
}

#[test]
fn lcore_cpu_pinning() {
    let c = ok(&BASE.replace("id = 1", "id = 1\ncpu = 3"));
    assert_eq!(c.lcores[0].cpu, Some(3));
    // With the real machine's CPU count, a huge cpu number is out of range.
    let e = parse(&BASE.replace("id = 1", "id = 1\ncpu = 100000")).unwrap_err();
    assert!(e.0[0].hint.contains("CPUs online"), "{}", e.0[0].hint);
}

// ---------------------------------------------------------------------------------------------
// Several errors at once; syntax errors; robustness
// ---------------------------------------------------------------------------------------------

#[test]
fn one_bad_file_reports_every_error_with_paths_and_lines() {
    let text = r#"[memory]
huge_pages = "sometimes"

[[memory.pools]]
name = "default"
cache_size = 600

[[ports]]
name = "p0"
driver = "null"
rx_queues = 0

[[ports]]
name = "p1"
driver = "nul"
mtu = 50

[[lcores]]
id = 1
rx = ["p0", "p1", "p7:0"]
tpyo = 3

[run]
duration = "forever"
"#;
    let e = errs(text);
    let got: Vec<(&str, Option<usize>)> = e.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        vec![
            ("memory.huge_pages", Some(2)),
            ("memory.pools[0].cache_size", Some(6)),
            ("ports[0].rx_queues", Some(11)),
            ("ports[1].driver", Some(15)),
            ("ports[1].mtu", Some(16)),
            ("lcores[0].rx[2]", Some(20)),
            ("lcores[0].tpyo", Some(21)),
            ("run.duration", Some(24)),
        ],
        "{}",
        ConfigErrors(e.clone())
    );
    assert!(
        e[3].hint.starts_with("did you mean \"null\"?"),
        "{}",
        e[3].hint
    );
    assert_eq!(e[6].hint, "valid fields here: `cpu`, `id`, `rx`, `tx`");
    // Every error has a message and a hint.
    assert!(e
        .iter()
        .all(|e| !e.message.is_empty() && !e.hint.is_empty()));
}

#[test]
fn toml_syntax_errors_are_reported_with_lines() {
    let text = "[[memory.pools]]\nname = \"default\"\nmbufs = 8192 1\n[[ports]]\nname = p0\n";
    let e = errs(text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    assert_eq!(e[0].path, "");
    assert_eq!(e[0].line, Some(3));
    assert!(
        e[0].message.starts_with("invalid TOML:"),
        "{}",
        e[0].message
    );
    assert_eq!(e[1].line, Some(5));
    let e = errs("a = 1\na = 2\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("duplicate key"), "{}", e[0].message);
}

/// Small deterministic generator for the garbling test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Parses `text`, asserting no panic and sane errors; returns whether validation (not just
/// the TOML parser) reported something.
fn check_no_panic(text: &str) -> bool {
    let result = std::panic::catch_unwind(|| parse_with(text, &env()));
    let Ok(result) = result else {
        panic!("parse panicked on input:\n{text}");
    };
    let mut semantic = false;
    if let Err(e) = result {
        semantic = e.0.iter().any(|e| !e.path.is_empty());
        let lines = text.lines().count().max(1) + 1;
        for err in &e.0 {
            assert!(!err.message.is_empty(), "empty message for input:\n{text}");
            if let Some(l) = err.line {
                assert!(
                    l >= 1 && l <= lines,
                    "line {l} out of range for input:\n{text}"
                );
            }
        }
    }
    semantic
}

#[test]
fn truncated_and_garbled_configs_never_panic() {
    const TOKENS: &[&str] = &[
        "",
        "0",
        "-1",
        "70000",
        "99999999999999999999",
        "\"\"",
        "\"p0\"",
        "\"p9:99\"",
        "[]",
        "{}",
        "[[\"p0\"]]",
        "true",
        "1.5",
        "1979-05-27",
        "\"ff\"",
        "{ port = 1 }",
        "\"x:y:z\"",
        "[1, \"a\"]",
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut semantic = 0;
    for name in SAMPLES {
        let text = sample(name);
        // Every truncation point (on char boundaries).
        for (i, _) in text.char_indices().step_by(3) {
            semantic += usize::from(check_no_panic(&text[..i]));
        }
        let lines: Vec<&str> = text.lines().collect();
        for _ in 0..400 {
            let mut ls: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            for _ in 0..1 + rng.below(3) {
                let k = rng.below(ls.len());
                match rng.below(5) {
                    // Drop a line.
                    0 => {
                        ls.remove(k);
                    }
                    // Duplicate a line somewhere else.
                    1 => {
                        let l = ls[k].clone();
                        let to = rng.below(ls.len());
                        ls.insert(to, l);
                    }
                    // Replace a value with a token of another type.
                    2 | 3 => {
                        if let Some((key, _)) = ls[k].split_once('=') {
                            ls[k] = format!("{key}= {}", TOKENS[rng.below(TOKENS.len())]);
                        }
                    }
                    // Flip a byte to some ASCII character.
                    _ => {
                        let mut bytes = ls[k].clone().into_bytes();
                        if !bytes.is_empty() {
                            let at = rng.below(bytes.len());
                            bytes[at] = b" \"'[]{}=,.:#0aZ\n"[rng.below(16)];
                        }
                        ls[k] = String::from_utf8_lossy(&bytes).into_owned();
                    }
                }
                if ls.is_empty() {
                    break;
                }
            }
            semantic += usize::from(check_no_panic(&ls.join("\n")));
        }
    }
    // The garbling must reach the validator, not only the TOML parser.
    assert!(
        semantic > 500,
        "only {semantic} inputs produced validation errors"
    );
}

#[test]
fn edit_distance_and_suggestions() {
    use super::reader::{edit_distance, suggest};
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("rx_queue", "rx_queues"), 1);
    assert_eq!(
        suggest("tx_queus", ["rx_queues", "tx_queues"]),
        Some("tx_queues")
    );
    assert_eq!(suggest("MTU", ["mtu", "mac"]), Some("mtu"));
    assert_eq!(suggest("zzzzzz", ["mtu", "mac"]), None);
}

// ---------------------------------------------------------------------------------------------
// pktgen
// ---------------------------------------------------------------------------------------------

#[test]
fn pktgen_config_round_trips_and_reports_bad_fields() {
    let c = ok(&sample("pktgen-ring.toml"));
    let AppConfig::Pktgen(p) = &c.app else {
        panic!("not pktgen: {:?}", c.app)
    };
    assert_eq!(p.rate, crate::pktgen::Rate::Pps(1e6));
    assert_eq!(p.streams.len(), 2);
    assert_eq!(p.streams[1].vlan, Some(100));
    assert_eq!(
        p.streams[0].size,
        crate::pktgen::SizeSpec::Imix(vec![(64, 7), (576, 4), (1500, 1)])
    );
    let printed = toml::to_string(&c).unwrap();
    assert_eq!(ok(&printed), c, "{printed}");

    let base = sample("pktgen-ring.toml");
    let e = errs(
        &base
            .replace("rate = \"1Mpps\"", "rate = \"0pps\"")
            .replace("burst = 32", "burst = 0"),
    );
    assert!(at(&e, "app.rate").message.contains("greater than 0"));
    assert!(at(&e, "app.burst").hint.contains("1 to"));
    let e = errs(&base.replace("size = \"random:80-512\"", "size = 2000"));
    assert!(at(&e, "app.streams[1].size")
        .message
        .contains("exceeds the maximum"));
    let e = errs(&base.replace("size = \"random:80-512\"", "ttl = 0\nspeed = 3"));
    assert!(at(&e, "app.streams[1].ttl").hint.contains("1 to 255"));
    assert!(at(&e, "app.streams[1].speed")
        .message
        .contains("unknown field"));
    let e = errs(&base.replace("proto = \"tcp-syn\"", "proto = \"tcp\""));
    assert!(at(&e, "app.streams[1].proto").hint.contains("tcp-syn"));
    // Nothing to send on.
    let e = errs(&base.replace("tx = [\"r0:0\"]\n", ""));
    assert!(at(&e, "lcores[0].tx")
        .message
        .contains("no lcore lists any"));
    // Keys of another app.
    let e = errs(&base.replace("burst = 32", "burst = 32\nmode = \"io\""));
    assert!(at(&e, "app.mode")
        .message
        .contains("only valid for app \"l2fwd\""));
}

#[test]
fn pktgen_rfc2544_table_is_read_validated_and_round_trips() {
    let with = |base: &str, table: &str| {
        base.replace("[metrics]", &format!("[app.rfc2544]\n{table}\n[metrics]"))
    };
    let rfc = |c: &Config| match &c.app {
        AppConfig::Pktgen(p) => p.rfc2544.clone(),
        other => panic!("not pktgen: {other:?}"),
    };
    let ring = sample("pktgen-ring.toml");
    let null = sample("pktgen-null.toml");
    // Absent: no search.
    assert_eq!(rfc(&ok(&ring)), None);
    // Every key.
    let c = ok(&with(
        &ring,
        "sizes = [128, 512, 1518]\nmax_pps = 2.5e6\ntrial = \"500ms\"\nresolution = 0.05\n\
         loss_ratio = 0.001\nmax_trials = 12",
    ));
    let r = rfc(&c).expect("rfc2544 read");
    assert_eq!(r.sizes, vec![128, 512, 1518]);
    assert_eq!(r.max_pps, 2.5e6);
    assert_eq!(r.trial, Duration::from_millis(500));
    assert_eq!(
        (r.resolution, r.loss_ratio, r.max_trials),
        (0.05, 0.001, 12)
    );
    let printed = toml::to_string(&c).unwrap();
    assert_eq!(ok(&printed), c, "{printed}");
    // Defaults; an integer max_pps is a number too.
    let r = rfc(&ok(&with(&null, "max_pps = 300000"))).unwrap();
    assert_eq!(r.sizes, Rfc2544Config::DEFAULT_SIZES.to_vec());
    assert_eq!(r.max_pps, 300000.0);
    assert_eq!(r.trial, Duration::from_secs(1));
    assert_eq!((r.resolution, r.loss_ratio, r.max_trials), (0.01, 0.0, 30));

    // Bad values, each reported at its key with the valid values.
    let e = errs(&with(&ring, "sizes = []"));
    assert!(at(&e, "app.rfc2544.sizes").message.contains("empty"));
    let e = errs(&with(&ring, "sizes = [128, 32, 128]"));
    assert!(at(&e, "app.rfc2544.sizes[1]").hint.contains("64 to 65535"));
    assert!(at(&e, "app.rfc2544.sizes[2]")
        .message
        .contains("listed twice"));
    let e = errs(&with(
        &ring,
        "sizes = [128]\nresolution = 1.5\nloss_ratio = \"none\"\nmax_pps = 0\nmax_trials = 0",
    ));
    let res = at(&e, "app.rfc2544.resolution");
    assert!(res.message.contains("out of range") && res.message.contains("(0, 1)"));
    assert!(at(&e, "app.rfc2544.loss_ratio")
        .message
        .contains("expected a number"));
    assert!(at(&e, "app.rfc2544.max_pps").hint.contains("> 0"));
    assert!(at(&e, "app.rfc2544.max_trials").hint.contains("1 to 1000"));
    let e = errs(&with(&ring, "sizes = [128]\ntrials = 3"));
    let unknown = at(&e, "app.rfc2544.trials");
    assert!(
        unknown.hint.contains("did you mean `trial`?") && unknown.hint.contains("`max_trials`"),
        "{unknown:?}"
    );
    let e = errs(&with(&ring, "sizes = [128]\ntrial = \"soon\""));
    assert!(at(&e, "app.rfc2544.trial").hint.contains("\"5s\""));
    // Sizes the streams cannot send: the VLAN TCP stream with its signature needs 80 bytes,
    // and 2000 exceeds the ring's MTU.
    let e = errs(&with(&ring, "sizes = [128, 64, 2000]"));
    let small = at(&e, "app.rfc2544.sizes[1]");
    assert!(
        small.message.contains("RFC 2544 frame size 64") && small.message.contains("minimum of 80"),
        "{small:?}"
    );
    assert!(at(&e, "app.rfc2544.sizes[2]")
        .message
        .contains("exceeds the maximum"));
    // Defaulted sizes are checked too, reported at the table.
    let e = errs(&with(&ring, "max_pps = 1000"));
    assert!(at(&e, "app.rfc2544.sizes")
        .message
        .contains("frame size 64"));
    // Not with a replay.
    let replay = null.split("[[app.streams]]").next().unwrap().to_string()
        + "replay = { file = \"in.pcap\" }\n[app.rfc2544]\nsizes = [64]\n";
    let e = errs(&replay);
    assert!(e
        .iter()
        .any(|e| e.path == "app.rfc2544" && e.message.contains("not a replayed pcap file")));
}
