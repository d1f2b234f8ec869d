//! Tests of the network-namespace harness (`support/netns.rs`) and of `tests/netns.sh`: what
//! they create exists, works, and is gone afterwards, even when a test panics.
//!
//! They need root; without it they print "skipping: needs root" and pass, unless
//! `FERROPLANE_REQUIRE_TOOLS=1` (as in CI) makes that a failure.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::netns::{self, End, Netns, VethPair};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn namespaces_and_veths_are_created_and_removed() {
    if !netns::require_root() {
        return;
    }
    let ns1 = Netns::new("life").unwrap();
    let ns2 = Netns::new("life").unwrap();
    let (n1, n2) = (ns1.name().to_string(), ns2.name().to_string());
    assert_ne!(n1, n2);
    assert!(
        n1.starts_with(&format!("fp-{}-", std::process::id())),
        "{n1}"
    );
    assert!(netns::netns_exists(&n1) && netns::netns_exists(&n2));
    assert!(ns1
        .ip(&["link", "show", "dev", "lo"])
        .unwrap()
        .contains("UP"));

    let between = VethPair::between(Some(&ns1), Some(&ns2)).unwrap();
    assert!(netns::link_exists(Some(&n1), &between.a));
    assert!(netns::link_exists(Some(&n2), &between.b));
    assert!(!netns::link_exists(None, &between.a));
    let shown = between
        .ip(End::A, &["link", "show", "dev", &between.a])
        .unwrap();
    assert!(
        shown.contains("state UP") || shown.contains(",UP"),
        "{shown}"
    );
    assert_eq!(between.mac(End::B).unwrap().len(), 17);

    // One end left in the root namespace, isolated from the host's routing.
    let rooted = VethPair::new(&netns::ifname("r"), None, &netns::ifname("s"), Some(&ns1)).unwrap();
    assert!(netns::link_exists(None, &rooted.a));
    let sysctl = |k: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/{k}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(sysctl(&format!("ipv4/conf/{}/forwarding", rooted.a)), "0");
    assert_eq!(sysctl(&format!("ipv6/conf/{}/disable_ipv6", rooted.a)), "1");

    let (ra, rb) = (rooted.a.clone(), rooted.b.clone());
    drop(rooted);
    assert!(!netns::link_exists(None, &ra), "root end deleted");
    assert!(!netns::link_exists(Some(&n1), &rb), "and its peer with it");
    let (ba, bb) = (between.a.clone(), between.b.clone());
    drop(between);
    assert!(!netns::link_exists(Some(&n1), &ba));
    assert!(!netns::link_exists(Some(&n2), &bb));

    // A root-namespace end whose peer's namespace goes first disappears with it.
    let orphan = VethPair::new(&netns::ifname("o"), None, &netns::ifname("p"), Some(&ns2)).unwrap();
    let oa = orphan.a.clone();
    drop(ns2);
    assert!(!netns::netns_exists(&n2));
    assert!(netns::wait_for(5 * SECOND, || !netns::link_exists(
        None, &oa
    )));
    drop(orphan); // nothing left to delete: no error, no noise
    drop(ns1);
    assert!(!netns::netns_exists(&n1));
}

#[test]
fn ping_between_two_namespaces() {
    if !netns::require_root() || !netns::require_tool("ping") {
        return;
    }
    let a = Netns::new("pinga").unwrap();
    let b = Netns::new("pingb").unwrap();
    let link = VethPair::between(Some(&a), Some(&b)).unwrap();
    link.addr(End::A, "198.18.20.1/24").unwrap();
    link.addr(End::B, "198.18.20.2/24").unwrap();
    let out = a
        .run(&["ping", "-c", "1", "-W", "1", "198.18.20.2"], 10 * SECOND)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 received"), "{text}");
    // Nobody has .3: the ping fails, and run reports that as a status, not an error.
    let out = a
        .run(&["ping", "-c", "1", "-W", "1", "198.18.20.3"], 10 * SECOND)
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn run_enforces_its_timeout_and_captures_output() {
    if !netns::require_root() {
        return;
    }
    let ns = Netns::new("timeout").unwrap();
    let start = Instant::now();
    let err = ns
        .run(&["sleep", "5"], Duration::from_millis(200))
        .unwrap_err();
    assert!(start.elapsed() < 2 * SECOND, "{:?}", start.elapsed());
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    let msg = err.to_string();
    assert!(
        msg.contains("sleep 5") && msg.contains("timed out"),
        "{msg}"
    );
    assert!(netns::wait_for(2 * SECOND, || ns.pids().is_empty()));

    let out = ns
        .run(&["sh", "-c", "echo out; echo err >&2; exit 3"], 10 * SECOND)
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");

    // A background process holding the output pipe does not stretch run past its limit.
    let start = Instant::now();
    let out = ns
        .run(
            &["sh", "-c", "sleep 5 & echo started"],
            Duration::from_millis(500),
        )
        .unwrap();
    assert!(start.elapsed() < 2 * SECOND, "{:?}", start.elapsed());
    assert_eq!(out.stdout, b"started\n");
}

#[test]
fn drop_kills_processes_still_running() {
    if !netns::require_root() {
        return;
    }
    let ns = Netns::new("spawn").unwrap();
    let mut child = ns.spawn(&["sleep", "30"]).unwrap();
    assert!(netns::wait_for(5 * SECOND, || ns.pids().len() == 1));
    let name = ns.name().to_string();
    drop(ns);
    assert!(!netns::netns_exists(&name));
    assert!(
        netns::wait_for(5 * SECOND, || child.try_wait().unwrap().is_some()),
        "the process was killed"
    );
}

#[test]
fn a_panicking_test_body_still_cleans_up() {
    if !netns::require_root() {
        return;
    }
    let mut made = (String::new(), String::new());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let ns = Netns::new("panic").unwrap();
        let link =
            VethPair::new(&netns::ifname("x"), None, &netns::ifname("y"), Some(&ns)).unwrap();
        made = (ns.name().to_string(), link.a.clone());
        assert!(netns::netns_exists(&made.0) && netns::link_exists(None, &made.1));
        panic!("the test body fails");
    }));
    assert!(result.is_err());
    assert!(!netns::netns_exists(&made.0), "namespace {} left", made.0);
    assert!(!netns::link_exists(None, &made.1), "link {} left", made.1);
}

#[test]
fn leftovers_of_dead_processes_are_removed() {
    if !netns::require_root() {
        return;
    }
    // Ours, alive, and made first: this process's own once-only stale sweep is over before
    // the stale objects below exist, so only the explicit call removes them.
    let live = Netns::new("live").unwrap();
    let live_link = VethPair::between(None, None).unwrap();
    // A pid that existed and is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    if Path::new(&format!("/proc/{pid}")).exists() {
        eprintln!("note: pid {pid} was reused at once; not testing the stale cleanup");
        return;
    }
    let stale_ns = format!("fp-{pid}-0-stale");
    netns::ip(&["netns", "add", &stale_ns]).unwrap();
    let stale_a = netns::ifname_for(pid, "sa");
    let stale_b = netns::ifname_for(pid, "sb");
    netns::ip(&[
        "link", "add", &stale_a, "type", "veth", "peer", "name", &stale_b,
    ])
    .unwrap();

    let removed = netns::remove_stale().unwrap();
    assert!(removed.contains(&stale_ns), "{removed:?}");
    assert!(
        removed.contains(&stale_a) && removed.contains(&stale_b),
        "{removed:?}"
    );
    assert!(!netns::netns_exists(&stale_ns));
    assert!(!netns::link_exists(None, &stale_a));
    assert!(netns::netns_exists(live.name()));
    assert!(netns::link_exists(None, &live_link.a));
}

#[test]
fn addresses_outside_the_benchmark_range_are_refused() {
    for ok in [
        "198.18.0.1/24",
        "198.19.255.254/16",
        "198.18.0.0/15",
        "198.18.7.7/32",
    ] {
        netns::assert_test_cidr(ok);
    }
    for bad in [
        "10.0.0.1/24",
        "192.168.1.1/24",
        "198.20.0.1/24",
        "198.17.255.1/24",
        "198.18.0.1/8",
        "198.18.0.1",
        "fe80::1/64",
    ] {
        let r = catch_unwind(|| netns::assert_test_cidr(bad));
        assert!(r.is_err(), "{bad} was accepted");
    }
}

#[test]
fn interface_names_are_unique_and_short() {
    let names: std::collections::HashSet<String> = (0..2000)
        .map(|i| netns::ifname(&format!("tag{i}")))
        .collect();
    assert_eq!(names.len(), 2000);
    assert!(names
        .iter()
        .all(|n| n.len() <= netns::IFNAME_MAX && n.starts_with("fpv")));
    assert!(VethPair::new("this-name-is-too-long", None, "b", None).is_err());
}

#[test]
fn skip_policy_follows_the_environment() {
    // A tool that cannot exist: skipped (false) normally, a panic when tools are required.
    let required = std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() == Ok("1");
    let r = catch_unwind(|| netns::require_tool("fp-no-such-tool"));
    if required {
        assert!(r.is_err());
    } else {
        assert_eq!(r.ok(), Some(false));
    }
    assert_eq!(netns::debian_package("ping"), "iputils-ping");
}

#[test]
fn netns_script_sets_up_and_tears_down_the_l3_demo() {
    if !netns::require_root() || !netns::require_tool("bash") {
        return;
    }
    if netns::netns_exists("fp-a") || netns::link_exists(None, "fpa0") {
        eprintln!("note: the l3 demo is set up on this machine; not touching it");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/netns.sh");
    let run = |arg: &str| {
        let mut c = Command::new("bash");
        c.arg(&script).arg(arg);
        netns::run_bounded(c, 30 * SECOND).unwrap()
    };
    let out = run("setup-l3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = catch_unwind(|| {
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (ns, root, addr, gw) in [
            ("fp-a", "fpa0", "198.18.0.2/24", "198.18.0.1"),
            ("fp-b", "fpb0", "198.18.1.2/24", "198.18.1.1"),
        ] {
            assert!(netns::link_exists(None, root), "{root}");
            let addrs = netns::ip(&["-n", ns, "-br", "addr"]).unwrap();
            assert!(addrs.contains(addr), "{addrs}");
            let routes = netns::ip(&["-n", ns, "route"]).unwrap();
            assert!(routes.contains(&format!("default via {gw}")), "{routes}");
            let root_addrs = netns::ip(&["-br", "-4", "addr", "show", "dev", root]).unwrap();
            assert!(!root_addrs.contains("198."), "{root_addrs}");
        }
        // Both peers reach their own side of the link.
        let out = Command::new("ip")
            .args(["netns", "exec", "fp-a", "ip", "route", "get", "198.18.1.2"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("via 198.18.0.1"));
    });
    let down = run("teardown-l3");
    assert!(down.status.success());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(!netns::netns_exists("fp-a") && !netns::netns_exists("fp-b"));
    assert!(!netns::link_exists(None, "fpa0") && !netns::link_exists(None, "fpb0"));
}
