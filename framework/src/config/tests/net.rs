//! Tests of the L2/L3 stack's configuration: addresses, routes, neighbours, ACLs, `[stack]`,
//! `[trace]` and the IPv4 applications.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;

/// Two null ports with addresses, one lcore polling both, l3fwd: valid. Tests append or
/// substitute.
const L3: &str = r#"
[[memory.pools]]
name = "default"

[[ports]]
name = "p0"
driver = "null"
ipv4 = ["198.18.0.1/24"]

[[ports]]
name = "p1"
driver = "null"
ipv4 = ["198.18.1.1/24"]

[[lcores]]
id = 1
rx = ["p0", "p1"]

[app]
name = "l3fwd"
"#;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Ipv4Cidr {
    let (a, n) = s.split_once('/').unwrap();
    Ipv4Cidr::new(ip(a), n.parse().unwrap()).unwrap()
}

/// `L3` with p0's `ipv4` line replaced.
fn with_p0_ipv4(value: &str) -> String {
    L3.replacen("ipv4 = [\"198.18.0.1/24\"]", &format!("ipv4 = {value}"), 1)
}

// ---------------------------------------------------------------------------------------------
// Types and defaults
// ---------------------------------------------------------------------------------------------

#[test]
fn ipv4_cidr_helpers() {
    let c = cidr("198.18.0.77/24");
    assert_eq!(c.to_string(), "198.18.0.77/24");
    assert_eq!(c.mask(), 0xffff_ff00);
    assert_eq!(c.network(), ip("198.18.0.0"));
    assert_eq!(c.broadcast(), ip("198.18.0.255"));
    assert_eq!(c.trunc(), cidr("198.18.0.0/24"));
    assert!(c.contains(ip("198.18.0.1")) && c.contains(ip("198.18.0.255")));
    assert!(!c.contains(ip("198.18.1.0")));
    let all = cidr("0.0.0.0/0");
    assert_eq!(all.mask(), 0);
    assert_eq!(all.broadcast(), ip("255.255.255.255"));
    assert!(all.contains(ip("10.1.2.3")));
    let host = cidr("10.0.0.1/32");
    assert_eq!(
        (host.network(), host.broadcast()),
        (ip("10.0.0.1"), ip("10.0.0.1"))
    );
    assert!(!host.contains(ip("10.0.0.2")));
    assert!(cidr("10.0.0.0/8").overlaps(&cidr("10.1.0.0/16")));
    assert!(cidr("10.1.0.0/16").overlaps(&cidr("10.0.0.0/8")));
    assert!(!cidr("10.0.0.0/24").overlaps(&cidr("10.0.1.0/24")));
    assert_eq!(Ipv4Cidr::new(ip("1.2.3.4"), 33), None);
    assert_eq!(
        AppConfig::UdpEcho(UdpEchoConfig {
            port: 7,
            address: None
        })
        .name(),
        "udp-echo"
    );
}

#[test]
fn stack_defaults_and_new_port_fields() {
    let c = ok(BASE);
    assert_eq!(
        c.stack,
        StackConfig {
            arp_timeout: Duration::from_secs(60),
            arp_retries: 3,
            arp_hold: 4,
            neighbours_max: 4096,
            reassembly_timeout: Duration::from_secs(30),
            reassembly_max: 1024,
            reassembly_max_frags: 64,
            icmp_rate: 1000,
            icmp_burst: 50,
            ttl: 64,
            handoff_ring: 1024,
        }
    );
    assert_eq!(c.stack, StackConfig::default());
    assert_eq!(
        (c.routes.len(), c.neighbours.len(), c.acls.len()),
        (0, 0, 0)
    );
    assert_eq!(c.trace, None);
    assert!(c.ports.iter().all(|p| p.ipv4.is_empty() && !p.promiscuous));
    // An empty [stack] table is all defaults too; every field can be set.
    assert_eq!(
        ok(&format!("{BASE}[stack]\n")).stack,
        StackConfig::default()
    );
    let c = ok(&format!(
        "{BASE}[stack]\narp_timeout = \"1h\"\narp_retries = 10\narp_hold = 0\nneighbours_max = 16\nreassembly_timeout = 1\nreassembly_max = 65536\nreassembly_max_frags = 2\nicmp_rate = 0\nicmp_burst = 10000\nttl = 255\nhandoff_ring = 65536\n"
    ));
    assert_eq!(
        c.stack,
        StackConfig {
            arp_timeout: Duration::from_secs(3600),
            arp_retries: 10,
            arp_hold: 0,
            neighbours_max: 16,
            reassembly_timeout: Duration::from_secs(1),
            reassembly_max: 65536,
            reassembly_max_frags: 2,
            icmp_rate: 0,
            icmp_burst: 10000,
            ttl: 255,
            handoff_ring: 65536,
        }
    );
    let c = ok(&L3.replace(
        "ipv4 = [\"198.18.1.1/24\"]",
        "ipv4 = [\"198.18.1.1/24\", \"10.1.0.1/31\", \"10.2.0.7/32\"]\npromiscuous = true",
    ));
    assert_eq!(c.ports[0].ipv4, vec![cidr("198.18.0.1/24")]);
    assert_eq!(
        c.ports[1].ipv4,
        vec![
            cidr("198.18.1.1/24"),
            cidr("10.1.0.1/31"),
            cidr("10.2.0.7/32")
        ]
    );
    assert!(!c.ports[0].promiscuous && c.ports[1].promiscuous);
    // A single address may be written without the list.
    let c = ok(&with_p0_ipv4("\"198.18.0.1/24\""));
    assert_eq!(c.ports[0].ipv4, vec![cidr("198.18.0.1/24")]);
    let e = errs(&BASE.replace("name = \"p0\"", "name = \"p0\"\npromiscuous = \"yes\""));
    assert_eq!(
        at(&e, "ports[0].promiscuous").message,
        "expected a boolean, got string \"yes\""
    );
}

#[test]
fn stack_values_out_of_range() {
    let text = format!(
        "{BASE}[stack]\narp_timeout = \"2h\"\narp_retries = 0\narp_hold = 65\nneighbours_max = 1000\nreassembly_timeout = \"500ms\"\nreassembly_max = 0\nreassembly_max_frags = 1\nicmp_rate = 1000001\nicmp_burst = 0\nttl = 0\nhandoff_ring = 100\narp_timout = 5\n"
    );
    let e = errs(&text);
    let t = at(&e, "stack.arp_timeout");
    assert_eq!(t.message, "arp_timeout must be between 1s and 1h, got 2h");
    assert_eq!(t.line, Some(line_of(&text, "arp_timeout = \"2h\"")));
    assert_eq!(
        at(&e, "stack.arp_retries").message,
        "must be between 1 and 10, got 0"
    );
    assert_eq!(
        at(&e, "stack.arp_hold").message,
        "must be between 0 and 64, got 65"
    );
    let n = at(&e, "stack.neighbours_max");
    assert_eq!(n.message, "neighbours_max must be a power of two, got 1000");
    assert_eq!(n.hint, "use 512 or 1024");
    let h = at(&e, "stack.handoff_ring");
    assert_eq!(h.message, "handoff_ring must be a power of two, got 100");
    assert_eq!(h.hint, "use 64 or 128");
    let small = errs(&format!("{BASE}[stack]\nhandoff_ring = 32\n"));
    let h = at(&small, "stack.handoff_ring");
    assert_eq!(h.message, "must be between 64 and 65536, got 32");
    assert!(h.hint.contains("power of two"), "{}", h.hint);
    assert_eq!(
        at(&e, "stack.reassembly_timeout").message,
        "reassembly_timeout must be between 1s and 2m, got 500ms"
    );
    assert_eq!(
        at(&e, "stack.reassembly_max").message,
        "must be between 1 and 65536, got 0"
    );
    assert_eq!(
        at(&e, "stack.reassembly_max_frags").message,
        "must be between 2 and 1024, got 1"
    );
    assert_eq!(
        at(&e, "stack.icmp_rate").message,
        "must be between 0 and 1000000, got 1000001"
    );
    assert_eq!(
        at(&e, "stack.icmp_burst").message,
        "must be between 1 and 10000, got 0"
    );
    assert_eq!(
        at(&e, "stack.ttl").message,
        "must be between 1 and 255, got 0"
    );
    assert!(at(&e, "stack.arp_timout")
        .hint
        .starts_with("did you mean `arp_timeout`?"));
    assert_eq!(e.len(), 12, "{}", ConfigErrors(e.clone()));
}

// ---------------------------------------------------------------------------------------------
// Interface addresses and subnets
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_interface_addresses_are_rejected() {
    for (value, path, message, hint_part) in [
        (
            "[\"198.18.0.1\"]",
            "ports[0].ipv4[0]",
            "\"198.18.0.1\" has no prefix length",
            "like \"198.18.0.1/24\"",
        ),
        (
            "[\"198.18.0.1/33\"]",
            "ports[0].ipv4[0]",
            "invalid prefix length \"33\" in \"198.18.0.1/33\": must be 0 to 32",
            "prefix length",
        ),
        (
            "[\"198.18.0.1/+8\"]",
            "ports[0].ipv4[0]",
            "invalid prefix length \"+8\" in \"198.18.0.1/+8\": must be 0 to 32",
            "prefix length",
        ),
        (
            "[\"198.18.0.256/24\"]",
            "ports[0].ipv4[0]",
            "invalid IPv4 address \"198.18.0.256\" in \"198.18.0.256/24\"",
            "like \"198.18.0.1/24\"",
        ),
        (
            "[\"198.18.0.1/0\"]",
            "ports[0].ipv4[0]",
            "\"198.18.0.1/0\" has prefix length 0, which would put every address on this port's link",
            "1 to 32",
        ),
        (
            "[\"0.0.0.0/24\"]",
            "ports[0].ipv4[0]",
            "0.0.0.0 is the unspecified address",
            "unicast host address",
        ),
        (
            "[\"127.0.0.1/8\"]",
            "ports[0].ipv4[0]",
            "127.0.0.1 is a loopback address (127.0.0.0/8)",
            "unicast host address",
        ),
        (
            "[\"224.0.0.5/24\"]",
            "ports[0].ipv4[0]",
            "224.0.0.5 is a multicast address (224.0.0.0/4)",
            "unicast host address",
        ),
        (
            "[\"255.255.255.255/32\"]",
            "ports[0].ipv4[0]",
            "255.255.255.255 is the broadcast address",
            "unicast host address",
        ),
        (
            "[\"198.18.0.255/24\"]",
            "ports[0].ipv4[0]",
            "198.18.0.255 is the broadcast address of 198.18.0.0/24",
            "use a host address: the hosts of 198.18.0.0/24 are 198.18.0.1 to 198.18.0.254",
        ),
        (
            "[\"198.18.0.0/24\"]",
            "ports[0].ipv4[0]",
            "198.18.0.0 is the network address of 198.18.0.0/24",
            "198.18.0.1 to 198.18.0.254",
        ),
        (
            "[\"198.18.0.1/24\", \"198.18.0.1/25\"]",
            "ports[0].ipv4[1]",
            "address 198.18.0.1 is listed twice (already ports[0].ipv4[0] as 198.18.0.1/24)",
            "remove the duplicate",
        ),
        (
            "24",
            "ports[0].ipv4",
            "expected a list of addresses, got integer 24",
            "ipv4 = [\"198.18.0.1/24\"]",
        ),
    ] {
        let text = with_p0_ipv4(value);
        let e = errs(&text);
        let err = at(&e, path);
        assert_eq!(err.message, message, "for {value}");
        assert!(err.hint.contains(hint_part), "for {value}: {}", err.hint);
        assert_eq!(err.line, Some(line_of(&text, "ipv4 = ")), "for {value}");
    }
    // /31 and /32 have no network or broadcast address: every address is a host.
    let c = ok(&with_p0_ipv4("[\"198.18.0.0/31\", \"10.9.9.255/32\"]"));
    assert_eq!(c.ports[0].ipv4.len(), 2);
}

#[test]
fn overlapping_subnets_name_both_ports() {
    let text = L3.replace(
        "ipv4 = [\"198.18.1.1/24\"]",
        "ipv4 = [\"10.0.0.1/8\", \"198.18.0.77/16\"]",
    );
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let o = at(&e, "ports[1].ipv4[1]");
    assert_eq!(
        o.message,
        "subnet 198.18.0.0/16 of port `p1` (198.18.0.77/16) overlaps subnet 198.18.0.0/24 of port `p0` (198.18.0.1/24 at ports[0].ipv4[0])"
    );
    assert!(o.hint.contains("disjoint subnets"), "{}", o.hint);
    assert_eq!(o.line, Some(line_of(&text, "10.0.0.1/8")));
    // A bad address on a port does not hide an overlap of its good ones.
    let e = errs(&text.replace("10.0.0.1/8", "10.0.0.300/8"));
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    assert!(at(&e, "ports[1].ipv4[1]").message.contains("overlaps"));
    // Overlapping subnets on one port are secondary addresses: allowed. And the check also
    // applies to l2fwd (a subnet belongs to one port whatever the app).
    ok(&with_p0_ipv4("[\"198.18.0.1/24\", \"198.18.0.2/25\"]"));
    let e = errs(&format!(
        "{}[app]\nname = \"l2fwd\"\n",
        BASE.replace(
            "driver = \"null\"",
            "driver = \"null\"\nipv4 = [\"10.0.0.1/24\"]"
        )
        .replacen("10.0.0.1/24", "10.0.0.2/24", 1)
    ));
    assert!(at(&e, "ports[1].ipv4[0]")
        .message
        .contains("overlaps subnet 10.0.0.0/24"));
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

#[test]
fn routes_parse_with_defaults_ecmp_and_actions() {
    let text = format!(
        r#"{L3}
[[routes]]
prefix = "0.0.0.0/0"
via = "198.18.1.2"

[[routes]]
prefix = "10.0.0.0/8"
via = ["198.18.0.2", "198.18.1.3"]

[[routes]]
prefix = "172.16.0.0/12"
port = "p1"

[[routes]]
prefix = "192.0.2.0/24"
via = "198.18.1.9"
port = "p1"

[[routes]]
prefix = "203.0.113.0/24"
action = "drop"

[[routes]]
prefix = "198.51.100.7"
action = "reject"

[[routes]]
prefix = "100.64.0.0/10"
via = []
port = "p0"
"#
    );
    let c = ok(&text);
    let r = |prefix: &str, via: &[&str], port: Option<&str>, action| RouteConfig {
        prefix: cidr(prefix),
        via: via.iter().map(|v| ip(v)).collect(),
        port: port.map(str::to_string),
        action,
    };
    assert_eq!(
        c.routes,
        vec![
            r("0.0.0.0/0", &["198.18.1.2"], None, RouteAction::Forward),
            r(
                "10.0.0.0/8",
                &["198.18.0.2", "198.18.1.3"],
                None,
                RouteAction::Forward
            ),
            r("172.16.0.0/12", &[], Some("p1"), RouteAction::Forward),
            r(
                "192.0.2.0/24",
                &["198.18.1.9"],
                Some("p1"),
                RouteAction::Forward
            ),
            r("203.0.113.0/24", &[], None, RouteAction::Drop),
            r("198.51.100.7/32", &[], None, RouteAction::Reject),
            r("100.64.0.0/10", &[], Some("p0"), RouteAction::Forward),
        ]
    );
    // Routes are allowed (and checked) with l2fwd too.
    let c = ok(&format!(
        "{}[[routes]]\nprefix = \"10.0.0.0/8\"\nport = \"p1\"\n",
        BASE
    ));
    assert_eq!(c.routes.len(), 1);
}

#[test]
fn route_prefix_with_host_bits_suggests_the_network() {
    let text = format!("{L3}[[routes]]\nprefix = \"198.18.2.1/24\"\nvia = \"198.18.1.2\"\n");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let p = at(&e, "routes[0].prefix");
    assert_eq!(p.message, "prefix 198.18.2.1/24 has host bits set");
    assert_eq!(
        p.hint,
        "did you mean \"198.18.2.0/24\"? (the network of 198.18.2.1/24; the single host 198.18.2.1 is \"198.18.2.1/32\")"
    );
    assert_eq!(p.line, Some(line_of(&text, "prefix = ")));
    for (value, message) in [
        (
            "\"198.18.2.0/40\"",
            "invalid prefix length \"40\" in \"198.18.2.0/40\": must be 0 to 32",
        ),
        (
            "\"198.18.2/24\"",
            "invalid IPv4 address \"198.18.2\" in \"198.18.2/24\"",
        ),
        ("\"default\"", "invalid IPv4 address \"default\""),
        ("24", "expected a string, got integer 24"),
    ] {
        let e = errs(&format!(
            "{L3}[[routes]]\nprefix = {value}\nport = \"p0\"\n"
        ));
        assert_eq!(at(&e, "routes[0].prefix").message, message, "for {value}");
    }
    let e = errs(&format!("{L3}[[routes]]\nvia = \"198.18.1.2\"\n"));
    assert_eq!(
        at(&e, "routes[0].prefix").message,
        "missing required field `prefix`"
    );
}

#[test]
fn unreachable_gateways_are_reported() {
    let route = |body: &str| format!("{L3}[[routes]]\nprefix = \"10.0.0.0/8\"\n{body}\n");
    // On no connected subnet.
    let text = route("via = [\"198.18.1.2\", \"192.0.2.1\"]");
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let g = at(&e, "routes[0].via[1]");
    assert_eq!(
        g.message,
        "gateway 192.0.2.1 is not on a subnet of any port"
    );
    assert!(
        g.hint
            .contains("connected subnets: 198.18.0.0/24 (p0), 198.18.1.0/24 (p1)"),
        "{}",
        g.hint
    );
    assert_eq!(g.line, Some(line_of(&text, "via = ")));
    // On another port's subnet than the one named.
    let e = errs(&route("via = \"198.18.1.2\"\nport = \"p0\""));
    let g = at(&e, "routes[0].via");
    assert_eq!(
        g.message,
        "gateway 198.18.1.2 is not on a subnet of port `p0` (198.18.0.0/24)"
    );
    assert_eq!(
        g.hint,
        "198.18.1.2 is on subnet 198.18.1.0/24 of port `p1`: set port = \"p1\", or remove `port`"
    );
    // Our own address, the subnet's broadcast address, a multicast address, a duplicate.
    let e = errs(&route("via = \"198.18.1.1\""));
    assert_eq!(
        at(&e, "routes[0].via").message,
        "gateway 198.18.1.1 is the address of port `p1` itself (ports[1].ipv4[0])"
    );
    let e = errs(&route("via = \"198.18.1.255\""));
    assert_eq!(
        at(&e, "routes[0].via").message,
        "gateway 198.18.1.255 is the broadcast address of 198.18.1.0/24"
    );
    let e = errs(&route("via = \"224.0.0.1\""));
    assert_eq!(
        at(&e, "routes[0].via").message,
        "224.0.0.1 is a multicast address (224.0.0.0/4)"
    );
    let e = errs(&route("via = [\"198.18.1.2\", \"198.18.1.2\"]"));
    assert_eq!(
        at(&e, "routes[0].via[1]").message,
        "gateway 198.18.1.2 is listed twice (already routes[0].via[0])"
    );
    let e = errs(&route("via = 3"));
    assert!(at(&e, "routes[0].via")
        .message
        .starts_with("expected a gateway address or a list of them"));
    // No addresses at all (l2fwd allows that): the hint says so.
    let e = errs(&format!(
        "{BASE}[[routes]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.0.2.1\"\n"
    ));
    assert!(at(&e, "routes[0].via")
        .hint
        .contains("no port has an ipv4 address"));
    // An unknown port.
    let e = errs(&route("port = \"p7\""));
    assert_eq!(at(&e, "routes[0].port").message, "unknown port `p7`");
}

#[test]
fn duplicate_and_connected_routes_are_reported() {
    let text = format!(
        "{L3}[[routes]]\nprefix = \"10.0.0.0/8\"\nvia = \"198.18.1.2\"\n[[routes]]\nprefix = \"10.0.0.0/8\"\naction = \"drop\"\n[[routes]]\nprefix = \"198.18.1.0/24\"\nport = \"p1\"\n"
    );
    let e = errs(&text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let d = at(&e, "routes[1].prefix");
    assert_eq!(
        d.message,
        "duplicate route for 10.0.0.0/8 (already routes[0])"
    );
    assert!(d.hint.contains("equal-cost multipath"), "{}", d.hint);
    let c = at(&e, "routes[2].prefix");
    assert_eq!(
        c.message,
        "198.18.1.0/24 is the connected subnet of port `p1` (ports[1].ipv4[0] = 198.18.1.1/24)"
    );
    assert!(c.hint.contains("remove this route"), "{}", c.hint);
}

#[test]
fn route_action_rules() {
    let route = |body: &str| format!("{L3}[[routes]]\nprefix = \"10.0.0.0/8\"\n{body}\n");
    let text = route("");
    let e = errs(&text);
    let f = at(&e, "routes[0].via");
    assert_eq!(
        f.message,
        "a forward route needs `via` (the next router) or `port` (the destination is on that port's link)"
    );
    assert!(f.hint.contains("action = \"drop\""), "{}", f.hint);
    assert_eq!(f.line, Some(line_of(&text, "[[routes]]")));
    let e = errs(&route("via = []"));
    assert!(at(&e, "routes[0].via")
        .message
        .starts_with("a forward route needs"));
    let e = errs(&route(
        "action = \"drop\"\nvia = \"198.18.1.2\"\nport = \"p1\"",
    ));
    let v = at(&e, "routes[0].via");
    assert_eq!(v.message, "`via` is only used with action = \"forward\"");
    assert_eq!(
        v.hint,
        "a \"drop\" route sends nothing anywhere: remove `via`, or set action = \"forward\""
    );
    assert_eq!(
        at(&e, "routes[0].port").message,
        "`port` is only used with action = \"forward\""
    );
    let e = errs(&route("action = \"rejcet\""));
    assert!(at(&e, "routes[0].action")
        .hint
        .starts_with("did you mean \"reject\"?"));
    let e = errs(&route("port = \"p0\"\ngateway = \"198.18.0.2\""));
    assert!(at(&e, "routes[0].gateway")
        .hint
        .contains("valid fields here: `action`, `port`, `prefix`, `via`"));
}

// ---------------------------------------------------------------------------------------------
// Neighbours
// ---------------------------------------------------------------------------------------------

#[test]
fn neighbours_must_be_on_their_port_subnet() {
    let neigh = |ip: &str, mac: &str, port: &str| {
        format!("[[neighbours]]\nip = \"{ip}\"\nmac = \"{mac}\"\nport = \"{port}\"\n")
    };
    let text = format!(
        "{L3}{}{}",
        neigh("198.18.0.2", "02:00:00:00:00:10", "p0"),
        neigh("198.18.1.2", "02:00:00:00:00:11", "p1")
    );
    let c = ok(&text);
    assert_eq!(
        c.neighbours,
        vec![
            NeighbourConfig {
                ip: ip("198.18.0.2"),
                mac: [2, 0, 0, 0, 0, 0x10],
                port: "p0".into()
            },
            NeighbourConfig {
                ip: ip("198.18.1.2"),
                mac: [2, 0, 0, 0, 0, 0x11],
                port: "p1".into()
            },
        ]
    );
    // On the other port's subnet: suggest that port.
    let text = format!("{L3}{}", neigh("198.18.1.2", "02:00:00:00:00:11", "p0"));
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let n = at(&e, "neighbours[0].ip");
    assert_eq!(
        n.message,
        "198.18.1.2 is not on a subnet of port `p0` (198.18.0.0/24)"
    );
    assert_eq!(
        n.hint,
        "198.18.1.2 is on subnet 198.18.1.0/24 of port `p1`: did you mean port = \"p1\"?"
    );
    assert_eq!(n.line, Some(line_of(&text, "ip = ")));
    // On no subnet at all.
    let e = errs(&format!(
        "{L3}{}",
        neigh("10.0.0.2", "02:00:00:00:00:11", "p0")
    ));
    assert!(at(&e, "neighbours[0].ip")
        .hint
        .contains("add an address on the neighbour's subnet to ports[0].ipv4"));
    // A port without addresses.
    let e = errs(&format!(
        "{BASE}{}",
        neigh("10.0.0.2", "02:00:00:00:00:11", "p0")
    ));
    assert_eq!(
        at(&e, "neighbours[0].ip").message,
        "10.0.0.2 is not on a subnet of port `p0` (it has no ipv4 address)"
    );
    // Our own address; the subnet's broadcast address.
    let e = errs(&format!(
        "{L3}{}",
        neigh("198.18.0.1", "02:00:00:00:00:11", "p0")
    ));
    assert_eq!(
        at(&e, "neighbours[0].ip").message,
        "198.18.0.1 is the address of port `p0` itself (ports[0].ipv4[0])"
    );
    let e = errs(&format!(
        "{L3}{}",
        neigh("198.18.0.255", "02:00:00:00:00:11", "p0")
    ));
    assert_eq!(
        at(&e, "neighbours[0].ip").message,
        "198.18.0.255 is the broadcast address of 198.18.0.0/24"
    );
}

#[test]
fn neighbour_entries_are_checked() {
    let neigh = |ip: &str, mac: &str, port: &str| {
        format!("[[neighbours]]\nip = \"{ip}\"\nmac = \"{mac}\"\nport = \"{port}\"\n")
    };
    let text = format!(
        "{L3}{}{}{}[[neighbours]]\nmac = \"02:00:00:00:00:12\"\n",
        neigh("198.18.0.2", "02:00:00:00:00:10", "p0"),
        neigh("198.18.0.2", "02:00:00:00:00:13", "p0"),
        neigh("198.18.0.3", "01:00:5e:00:00:01", "px"),
    );
    let e = errs(&text);
    let d = at(&e, "neighbours[1].ip");
    assert_eq!(
        d.message,
        "duplicate neighbour 198.18.0.2 on port `p0` (already neighbours[0])"
    );
    let m = at(&e, "neighbours[2].mac");
    assert_eq!(
        m.message,
        "neighbour MAC 01:00:5e:00:00:01 is a multicast address"
    );
    assert!(
        m.hint.starts_with("a neighbour needs a unicast address"),
        "{}",
        m.hint
    );
    assert_eq!(at(&e, "neighbours[2].port").message, "unknown port `px`");
    assert_eq!(
        at(&e, "neighbours[3].ip").message,
        "missing required field `ip`"
    );
    assert_eq!(
        at(&e, "neighbours[3].port").message,
        "missing required field `port`"
    );
    assert_eq!(e.len(), 5, "{}", ConfigErrors(e.clone()));
    // More static entries than the table holds.
    let many: String = (2..=18)
        .map(|i| neigh(&format!("198.18.0.{i}"), "02:00:00:00:00:10", "p0"))
        .collect();
    let e = errs(&format!("{L3}{many}[stack]\nneighbours_max = 16\n"));
    let n = at(&e, "neighbours[16]");
    assert_eq!(
        n.message,
        "17 static neighbours do not fit in the neighbour table (stack.neighbours_max = 16)"
    );
    assert_eq!(n.hint, "raise stack.neighbours_max to 32");
}

// ---------------------------------------------------------------------------------------------
// ACLs
// ---------------------------------------------------------------------------------------------

#[test]
fn acls_parse_in_both_table_forms() {
    let inline = format!(
        r#"{L3}
[[acl]]
name = "f"
on = "ipv4-input->ipv4-lookup"
default = "drop"
rules = [
    {{ src = "10.0.0.0/8", dst = "198.18.2.0/24", proto = "udp", sport = 53, dport = "1000-2000", action = "accept" }},
    {{ proto = 47, action = "count" }},
    {{ dst = "192.0.2.1", action = "drop" }},
]
"#
    );
    let tables = format!(
        r#"{L3}
[[acl]]
name = "f"
on = "ipv4-input -> ipv4-lookup"
default = "drop"

[[acl.rules]]
src = "10.0.0.0/8"
dst = "198.18.2.0/24"
proto = "udp"
sport = "53"
dport = "1000 - 2000"
action = "accept"

[[acl.rules]]
proto = 47
action = "count"

[[acl.rules]]
dst = "192.0.2.1/32"
action = "drop"
"#
    );
    let a = ok(&inline);
    assert_eq!(a.acls, ok(&tables).acls);
    assert_eq!(
        a.acls,
        vec![AclConfig {
            name: "f".into(),
            on: ("ipv4-input".into(), "ipv4-lookup".into()),
            default: AclAction::Drop,
            rules: vec![
                AclRule {
                    src: Some(cidr("10.0.0.0/8")),
                    dst: Some(cidr("198.18.2.0/24")),
                    proto: Some(17),
                    sport: Some((53, 53)),
                    dport: Some((1000, 2000)),
                    action: AclAction::Accept,
                },
                AclRule {
                    src: None,
                    dst: None,
                    proto: Some(47),
                    sport: None,
                    dport: None,
                    action: AclAction::Count,
                },
                AclRule {
                    src: None,
                    dst: Some(cidr("192.0.2.1/32")),
                    proto: None,
                    sport: None,
                    dport: None,
                    action: AclAction::Drop,
                },
            ],
        }]
    );
    // `default` defaults to accept; no rules is allowed.
    let c = ok(&format!("{L3}[[acl]]\nname = \"n\"\non = \"a -> b\"\n"));
    assert_eq!(c.acls[0].default, AclAction::Accept);
    assert!(c.acls[0].rules.is_empty());
}

#[test]
fn acl_port_ranges_and_protocols_are_checked() {
    let rule = |r: &str| {
        errs(&format!(
            "{L3}[[acl]]\nname = \"f\"\non = \"a -> b\"\nrules = [{{ {r} }}]\n"
        ))
    };
    let e = rule("proto = \"udp\", dport = \"2000-1000\", action = \"drop\"");
    let r = at(&e, "acl[0].rules[0].dport");
    assert_eq!(
        r.message,
        "port range \"2000-1000\" is backwards: 2000 is above 1000"
    );
    assert_eq!(r.hint, "write the lower port first: \"1000-2000\"");
    for bad in ["\"80-\"", "\"http\"", "\"70000\"", "\"1-2-3\""] {
        let e = rule(&format!(
            "proto = \"tcp\", sport = {bad}, action = \"drop\""
        ));
        let r = at(&e, "acl[0].rules[0].sport");
        assert_eq!(r.message, format!("invalid port range {bad}"), "for {bad}");
        assert!(r.hint.contains("\"1000-2000\""), "{}", r.hint);
    }
    let e = rule("proto = \"tcp\", sport = 65536, action = \"drop\"");
    assert_eq!(
        at(&e, "acl[0].rules[0].sport").message,
        "must be between 0 and 65535, got 65536"
    );
    // Ports need TCP or UDP.
    let e = rule("dport = \"9\", action = \"drop\"");
    let p = at(&e, "acl[0].rules[0].dport");
    assert_eq!(p.message, "`dport` needs proto = \"tcp\" or \"udp\"");
    assert_eq!(
        p.hint,
        "set proto = \"udp\" or \"tcp\" in this rule, or remove `dport`"
    );
    let e = rule("proto = \"icmp\", sport = 1, dport = 2, action = \"drop\"");
    assert_eq!(
        at(&e, "acl[0].rules[0].sport").message,
        "`sport` only applies to TCP and UDP, but this rule has proto = \"icmp\""
    );
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let e = rule("proto = 132, dport = 2, action = \"drop\"");
    assert!(at(&e, "acl[0].rules[0].dport")
        .message
        .ends_with("this rule has proto = 132"));
    // Protocols, prefixes, actions.
    let e = rule("proto = \"udpp\", action = \"drop\"");
    let p = at(&e, "acl[0].rules[0].proto");
    assert_eq!(p.message, "unknown protocol \"udpp\"");
    assert!(p.hint.starts_with("did you mean \"udp\"?"), "{}", p.hint);
    let e = rule("proto = 256, action = \"drop\"");
    assert_eq!(
        at(&e, "acl[0].rules[0].proto").message,
        "must be between 0 and 255, got 256"
    );
    let e = rule("dst = \"10.1.2.3/8\", action = \"drop\"");
    assert_eq!(
        at(&e, "acl[0].rules[0].dst").message,
        "prefix 10.1.2.3/8 has host bits set"
    );
    let e = rule("proto = \"udp\"");
    assert_eq!(
        at(&e, "acl[0].rules[0].action").message,
        "missing required field `action`"
    );
    let e = rule("action = \"reject\", port = 5");
    assert!(at(&e, "acl[0].rules[0].action")
        .hint
        .contains("\"accept\", \"drop\", \"count\""));
    assert!(at(&e, "acl[0].rules[0].port").hint.contains("`dport`"));
}

#[test]
fn acl_edges_and_names_are_checked() {
    let acl = |name: &str, on: &str| format!("[[acl]]\nname = \"{name}\"\non = {on}\n");
    for (on, message) in [
        (
            "\"ipv4-input\"",
            "invalid edge \"ipv4-input\": expected \"FROM -> TO\"",
        ),
        (
            "\"IPv4-input -> ipv4-lookup\"",
            "invalid node name \"IPv4-input\" in edge \"IPv4-input -> ipv4-lookup\"",
        ),
        (
            "\"ipv4-input -> \"",
            "invalid node name \"\" in edge \"ipv4-input -> \"",
        ),
        (
            "\"a -> b -> c\"",
            "invalid node name \"b -> c\" in edge \"a -> b -> c\"",
        ),
        (
            "\"ipv4_input -> x\"",
            "invalid node name \"ipv4_input\" in edge \"ipv4_input -> x\"",
        ),
        (
            "\"x -> x\"",
            "edge \"x -> x\" leads from node `x` to itself",
        ),
        ("[\"a\", \"b\"]", "expected a string, got an array"),
    ] {
        let text = format!("{L3}{}", acl("f", on));
        let e = errs(&text);
        let o = at(&e, "acl[0].on");
        assert_eq!(o.message, message, "for {on}");
        assert!(
            o.hint.contains("\"ipv4-input -> ipv4-lookup\""),
            "{}",
            o.hint
        );
        assert_eq!(o.line, Some(line_of(&text, "on = ")));
    }
    let text = format!(
        "{L3}{}{}{}[[acl]]\n",
        acl("f", "\"a -> b\""),
        acl("f", "\"b -> c\""),
        acl("g", "\"a->b\"")
    );
    let e = errs(&text);
    assert_eq!(
        at(&e, "acl[1].name").message,
        "duplicate ACL name `f` (already used by acl[0].name)"
    );
    let d = at(&e, "acl[2].on");
    assert_eq!(d.message, "edge \"a -> b\" already has an ACL (acl[0].on)");
    assert!(d.hint.contains("merge"), "{}", d.hint);
    assert_eq!(
        at(&e, "acl[3].name").message,
        "missing required field `name`"
    );
    assert_eq!(at(&e, "acl[3].on").message, "missing required field `on`");
    assert_eq!(e.len(), 4, "{}", ConfigErrors(e.clone()));
    let e = errs(&format!("{L3}[acl]\nname = \"f\"\n"));
    assert!(at(&e, "acl")
        .message
        .starts_with("expected an array of tables"));
}

// ---------------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------------

#[test]
fn ipv4_apps_need_an_address() {
    let text = BASE.to_string() + "[app]\nname = \"l3fwd\"\n";
    let e = errs(&text);
    assert_eq!(e.len(), 1, "{}", ConfigErrors(e.clone()));
    let p = at(&e, "ports");
    assert_eq!(
        p.message,
        "app `l3fwd` needs at least one port with an IPv4 address, but no port has `ipv4`"
    );
    assert_eq!(
        p.hint,
        "add the port's address and subnet, like ipv4 = [\"198.18.0.1/24\"], to ports[0] and the other ports it sends through"
    );
    assert_eq!(p.line, Some(line_of(&text, "[[ports]]")));
    let e = errs(&(BASE.to_string() + "[app]\nname = \"udp-echo\"\n"));
    assert!(at(&e, "ports").message.starts_with("app `udp-echo` needs"));
    // One port with an address is enough.
    let c = ok(&L3.replace("ipv4 = [\"198.18.1.1/24\"]\n", ""));
    assert_eq!(c.app, AppConfig::L3fwd(L3fwdConfig {}));
    // l2fwd does not need addresses (and ignores them).
    ok(BASE);
}

#[test]
fn app_fields_are_checked_per_application() {
    let app = |body: &str| {
        format!(
            "{}[app]\n{body}\n",
            L3.replace("[app]\nname = \"l3fwd\"\n", "")
        )
    };
    let e = errs(&app("name = \"l3fwd\"\nmode = \"io\"\nfrobnicate = 1"));
    let m = at(&e, "app.mode");
    assert_eq!(m.message, "`mode` is only valid for app \"l2fwd\"");
    assert_eq!(
        m.hint,
        "this [app] has name = \"l3fwd\"; remove `mode` or change the application"
    );
    let f = at(&e, "app.frobnicate");
    assert_eq!(f.message, "unknown field `frobnicate`");
    assert!(f.hint.starts_with("valid fields here: "), "{}", f.hint);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let e = errs(&app("name = \"l2fwd\"\nport = 7"));
    assert_eq!(
        at(&e, "app.port").message,
        "`port` is only valid for app \"udp-echo\""
    );
    let e = errs(&app("name = \"udp-echo\"\nprot = 7"));
    assert!(at(&e, "app.prot").hint.starts_with("did you mean `port`?"));

    // udp-echo.
    let c = ok(&app("name = \"udp-echo\""));
    assert_eq!(
        c.app,
        AppConfig::UdpEcho(UdpEchoConfig {
            port: 7,
            address: None
        })
    );
    let c = ok(&app(
        "name = \"udp-echo\"\nport = 9000\naddress = \"198.18.1.1\"",
    ));
    assert_eq!(
        c.app,
        AppConfig::UdpEcho(UdpEchoConfig {
            port: 9000,
            address: Some(ip("198.18.1.1"))
        })
    );
    let e = errs(&app(
        "name = \"udp-echo\"\nport = 0\naddress = \"198.18.1.2\"",
    ));
    assert_eq!(
        at(&e, "app.port").message,
        "must be between 1 and 65535, got 0"
    );
    let a = at(&e, "app.address");
    assert_eq!(a.message, "198.18.1.2 is not an address of any port");
    assert_eq!(
        a.hint,
        "use one of the ports' addresses: 198.18.0.1 (p0), 198.18.1.1 (p1); or remove `address` to answer on all of them"
    );
    let e = errs(&app("name = \"udp-echo\"\naddress = \"198.18.1.1/24\""));
    assert_eq!(
        at(&e, "app.address").message,
        "invalid IPv4 address \"198.18.1.1/24\""
    );
}

// ---------------------------------------------------------------------------------------------
// Tx queues: an IPv4 app may send on every port
// ---------------------------------------------------------------------------------------------

#[test]
fn l3fwd_gives_every_polling_lcore_a_tx_queue_on_every_port() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
ipv4 = ["198.18.0.1/24"]
rx_queues = 2
tx_queues = 2
[[ports]]
name = "p1"
driver = "null"
ipv4 = ["198.18.1.1/24"]
tx_queues = 2
[[ports]]
name = "p2"
driver = "null"
tx_queues = 2
[[lcores]]
id = 1
rx = ["p0:0"]
[[lcores]]
id = 2
rx = ["p0:1", "p1", "p2"]
[[lcores]]
id = 3
[app]
name = "l3fwd"
"#;
    let c = ok(text);
    // lcore 1 polls p0 only, yet may route to p1 and p2: a queue on each port. lcore 3 polls
    // nothing and gets nothing.
    assert_eq!(c.lcores[0].tx, vec![qr("p0", 0), qr("p1", 0), qr("p2", 0)]);
    assert_eq!(c.lcores[1].tx, vec![qr("p0", 1), qr("p1", 1), qr("p2", 1)]);
    assert_eq!(c.lcores[2].tx, vec![]);
    // The same layout with l2fwd gives lcore 1 only p0's partner.
    let c = ok(&text.replace(
        "name = \"l3fwd\"",
        "name = \"l2fwd\"\npairs = [[\"p0\", \"p1\"], [\"p2\", \"p2\"]]",
    ));
    assert_eq!(c.lcores[0].tx, vec![qr("p1", 0)]);

    // Explicit lists must cover every port.
    let e = errs(&text.replace("id = 1\n", "id = 1\ntx = [\"p0:1\", \"p1:1\"]\n"));
    let m = at(&e, "lcores[0].tx");
    assert_eq!(
        m.message,
        "lcore 1 polls rx queues, so with app `l3fwd` it may send on every port, but its tx list has no queue on `p2`"
    );
    assert_eq!(
        m.hint,
        "add \"p2:0\" to lcores[0].tx, or remove `tx` to assign queues automatically"
    );
}

#[test]
fn l3fwd_tx_queue_exhaustion_says_how_many_are_needed() {
    let text = r#"
[[memory.pools]]
name = "default"
[[ports]]
name = "p0"
driver = "null"
ipv4 = ["198.18.0.1/24"]
rx_queues = 3
tx_queues = 3
[[ports]]
name = "p1"
driver = "null"
ipv4 = ["198.18.1.1/24"]
[[lcores]]
id = 1
rx = ["p0:0", "p1"]
[[lcores]]
id = 2
rx = ["p0:1"]
[[lcores]]
id = 3
rx = ["p0:2"]
[app]
name = "udp-echo"
"#;
    let e = errs(text);
    assert_eq!(e.len(), 2, "{}", ConfigErrors(e.clone()));
    let x = at(&e, "lcores[1]");
    assert_eq!(
        x.message,
        "no free tx queue on port `p1` for lcore 2: its 1 tx queue is already used by lcore 1"
    );
    assert_eq!(
        x.hint,
        "raise ports[1].tx_queues to 3: with app `udp-echo` every lcore that polls rx queues needs its own tx queue on every port"
    );
    assert_eq!(x.line, Some(line_of(text, "id = 2") - 1));
    assert!(at(&e, "lcores[2]").message.contains("for lcore 3"));
    let c = ok(&text.replace(
        "ipv4 = [\"198.18.1.1/24\"]",
        "ipv4 = [\"198.18.1.1/24\"]\ntx_queues = 3",
    ));
    assert_eq!(c.lcores[2].tx, vec![qr("p0", 2), qr("p1", 2)]);
}

// ---------------------------------------------------------------------------------------------
// Trace; samples; round trip
// ---------------------------------------------------------------------------------------------

#[test]
fn trace_section() {
    let c = ok(&format!("{L3}[trace]\npackets = 20\nport = \"p1\"\n"));
    assert_eq!(
        c.trace,
        Some(TraceConfig {
            packets: 20,
            port: Some("p1".into())
        })
    );
    let c = ok(&format!("{L3}[trace]\npackets = 1\n"));
    assert_eq!(
        c.trace,
        Some(TraceConfig {
            packets: 1,
            port: None
        })
    );
    let e = errs(&format!("{L3}[trace]\npackets = 10001\nport = \"p2\"\n"));
    assert_eq!(
        at(&e, "trace.packets").message,
        "must be between 1 and 10000, got 10001"
    );
    let p = at(&e, "trace.port");
    assert_eq!(p.message, "unknown port `p2`");
    assert_eq!(p.hint, "did you mean `p0`? (ports defined: p0, p1)");
    let e = errs(&format!("{L3}[trace]\nport = \"p0\"\n"));
    assert_eq!(
        at(&e, "trace.packets").message,
        "missing required field `packets`"
    );
}

/// The l3fwd sample's templates are routable frames: to the port's MAC, IPv4 with a correct
/// header checksum, TTL 64, from a static neighbour to a host on the other port's subnet.
#[test]
fn l3fwd_sample_templates_are_valid_ipv4_udp_frames() {
    for name in ["l3fwd.toml", "acl-example.toml"] {
        let c = ok(&sample(name));
        assert_eq!(c.app, AppConfig::L3fwd(L3fwdConfig {}), "{name}");
        for (i, port) in c.ports.iter().enumerate() {
            let DriverConfig::Null {
                size,
                template: Some(t),
            } = &port.driver
            else {
                panic!("{name}: port {i} is not a null port with a template");
            };
            assert_eq!((*size, t.len()), (64, 42), "{name}");
            assert_eq!(
                Some(&t[0..6]),
                port.mac.as_ref().map(|m| &m[..]),
                "{name}: frame is addressed to the port"
            );
            assert_eq!(t[12..14], [0x08, 0x00], "{name}: IPv4");
            let ip4 = &t[14..34];
            let sum = ip4
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum::<u32>();
            let folded = (sum & 0xffff) + (sum >> 16);
            assert_eq!(folded, 0xffff, "{name}: IPv4 header checksum");
            assert_eq!(ip4[0], 0x45);
            assert_eq!(u16::from_be_bytes([ip4[2], ip4[3]]), size - 14);
            assert_eq!((ip4[8], ip4[9]), (64, 17), "{name}: TTL 64, UDP");
            let src = Ipv4Addr::from(<[u8; 4]>::try_from(&ip4[12..16]).unwrap());
            let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&ip4[16..20]).unwrap());
            // The sender is a static neighbour on this port, with the frame's source MAC.
            assert!(
                c.neighbours
                    .iter()
                    .any(|n| n.ip == src && n.port == port.name && n.mac[..] == t[6..12]),
                "{name}: {src} is a neighbour of {}",
                port.name
            );
            // The destination is a neighbour on the other port.
            let other = &c.ports[1 - i];
            assert!(other.ipv4.iter().any(|a| a.contains(dst)), "{name}");
            assert!(c
                .neighbours
                .iter()
                .any(|n| n.ip == dst && n.port == other.name));
            let udp = &t[34..42];
            assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), size - 34);
        }
    }
    let c = ok(&sample("acl-example.toml"));
    assert_eq!(c.acls[0].on, ("ipv4-input".into(), "ipv4-lookup".into()));
    assert_eq!(c.acls[0].rules[0].dport, Some((9, 9)));
    assert_eq!(c.acls[0].rules[1].proto, Some(1));
    let c = ok(&sample("udp-echo.toml"));
    assert_eq!(
        c.app,
        AppConfig::UdpEcho(UdpEchoConfig {
            port: 7,
            address: None
        })
    );
}

#[test]
fn every_new_field_round_trips() {
    let text = format!(
        r#"{}
[[routes]]
prefix = "0.0.0.0/0"
via = ["198.18.1.2", "198.18.1.3"]
port = "p1"

[[routes]]
prefix = "10.0.0.0/8"
action = "reject"

[[routes]]
prefix = "172.16.0.0/12"
port = "p0"

[[neighbours]]
ip = "198.18.1.2"
mac = "02:00:00:00:00:aa"
port = "p1"

[[acl]]
name = "a"
on = "eth-input -> ipv4-input"
default = "count"
rules = [
    {{ src = "10.0.0.0/8", proto = "tcp", sport = "1-1023", dport = 80, action = "accept" }},
    {{ proto = 0, action = "drop" }},
    {{ action = "drop" }},
]

[[acl]]
name = "b"
on = "ipv4-input -> ipv4-lookup"

[stack]
arp_timeout = "1500ms"
neighbours_max = 1024
icmp_rate = 0
ttl = 128

[trace]
packets = 5
port = "p0"

[app]
name = "udp-echo"
port = 5353
address = "198.18.0.1"
"#,
        L3.replace("[app]\nname = \"l3fwd\"\n", "").replace(
            "ipv4 = [\"198.18.0.1/24\"]",
            "ipv4 = [\"198.18.0.1/24\", \"192.0.2.1/32\"]\npromiscuous = true"
        )
    );
    let c = ok(&text);
    assert_eq!(c.stack.arp_timeout, Duration::from_millis(1500));
    for printed in [
        toml::to_string(&c).expect("serializes"),
        toml::to_string_pretty(&c).expect("serializes"),
    ] {
        let again = parse_with(&printed, &env())
            .unwrap_or_else(|e| panic!("printed config does not parse:\n{printed}\n{e}"));
        assert_eq!(c, again, "round trip changed the config:\n{printed}");
        for needle in [
            "ipv4 = [\"198.18.0.1/24\", \"192.0.2.1/32\"]",
            "promiscuous = true",
            "via = [\"198.18.1.2\", \"198.18.1.3\"]",
            "action = \"reject\"",
            "mac = \"02:00:00:00:00:aa\"",
            "on = \"eth-input -> ipv4-input\"",
            "sport = \"1-1023\"",
            "dport = \"80\"",
            "proto = \"tcp\"",
            "proto = 0",
            "arp_timeout = \"1500ms\"",
            "name = \"udp-echo\"",
            "address = \"198.18.0.1\"",
        ] {
            // Ignore the layout: to_string_pretty spreads arrays over lines.
            let compact: String = printed
                .split_whitespace()
                .collect::<String>()
                .replace(",]", "]");
            let want: String = needle.split_whitespace().collect();
            assert!(compact.contains(&want), "`{needle}` not in:\n{printed}");
        }
    }
    // An l3fwd app prints as just its name.
    let printed = toml::to_string(&ok(L3)).unwrap();
    assert!(printed.contains("[app]\nname = \"l3fwd\"\n"), "{printed}");
}

#[test]
fn tcp_echo_fields_are_read_and_checked() {
    let app = |body: &str| {
        format!(
            "{}[app]\n{body}\n",
            L3.replace("[app]\nname = \"l3fwd\"\n", "")
        )
    };
    // Defaults.
    let c = ok(&app("name = \"tcp-echo\""));
    assert_eq!(
        c.app,
        AppConfig::TcpEcho(crate::config::TcpEchoConfig {
            ports: vec![7],
            address: None,
            send_buffer: 262144,
            recv_buffer: 262144,
            congestion: crate::config::TcpCongestion::Newreno,
            nodelay: false,
            max_connections: 4096,
            max_time_wait: 1024,
            backlog: 128,
            app_lcores: Vec::new(),
        })
    );
    // Every field.
    let c = ok(&app(
        "name = \"tcp-echo\"\nports = [7, 8007]\naddress = \"198.18.1.1\"\nsend_buffer = 65536\nrecv_buffer = 1048576\ncongestion = \"cubic\"\nnodelay = true\nmax_connections = 100\nmax_time_wait = 10\nbacklog = 5",
    ));
    let AppConfig::TcpEcho(t) = &c.app else {
        panic!("{:?}", c.app)
    };
    assert_eq!(t.ports, vec![7, 8007]);
    assert_eq!(t.address, Some(ip("198.18.1.1")));
    assert_eq!((t.send_buffer, t.recv_buffer), (65536, 1048576));
    assert!(t.nodelay);
    assert_eq!(
        (t.max_connections, t.max_time_wait, t.backlog),
        (100, 10, 5)
    );
    // Errors carry the path and a hint.
    let e = errs(&app(
        "name = \"tcp-echo\"\nports = [7, 0]\nsend_buffer = 10\ncongestion = \"vegas\"\nmax_connections = 4\nmax_time_wait = 5",
    ));
    let p = at(&e, "app.ports[1]");
    assert_eq!(p.message, "must be between 1 and 65535, got 0");
    assert!(p.hint.contains("TCP ports to listen on"), "{}", p.hint);
    assert_eq!(
        at(&e, "app.send_buffer").message,
        "must be between 1024 and 1073741824, got 10"
    );
    assert!(at(&e, "app.congestion").message.contains("vegas"));
    let tw = at(&e, "app.max_time_wait");
    assert_eq!(tw.message, "max_time_wait 5 is above max_connections 4");
    assert!(tw.hint.contains("raise max_connections"));
    let e = errs(&app("name = \"tcp-echo\"\nports = [7, 9, 7]"));
    let d = at(&e, "app.ports[2]");
    assert_eq!(d.message, "port 7 is listed twice (also at app.ports[0])");
    assert_eq!(d.hint, "list each port once");
    let e = errs(&app("name = \"tcp-echo\"\nports = []"));
    assert_eq!(at(&e, "app.ports").message, "`ports` is empty");
    let e = errs(&app("name = \"tcp-echo\"\naddress = \"198.18.1.2\""));
    assert!(at(&e, "app.address")
        .hint
        .ends_with("or remove `address` to listen on all of them"));
    // udp-echo's `port` is not a tcp-echo field.
    let e = errs(&app("name = \"tcp-echo\"\nport = 7"));
    assert_eq!(
        at(&e, "app.port").message,
        "`port` is only valid for app \"udp-echo\""
    );
}

#[test]
fn app_lcores_must_be_declared_queueless_lcores() {
    let with = |lcores: &str, app: &str| {
        L3.replace("[app]\nname = \"l3fwd\"\n", "")
            .replace("[[lcores]]\nid = 1\nrx = [\"p0\", \"p1\"]\n", lcores)
            + "[app]\n"
            + app
            + "\n"
    };
    let stack = "[[lcores]]\nid = 1\nrx = [\"p0\", \"p1\"]\n";
    let c = ok(&with(
        &format!("{stack}[[lcores]]\nid = 2\n[[lcores]]\nid = 3\n"),
        "name = \"tcp-echo\"\napp_lcores = [2, 3]",
    ));
    let AppConfig::TcpEcho(t) = &c.app else {
        panic!("{:?}", c.app)
    };
    assert_eq!(t.app_lcores, vec![2, 3]);
    // The app lcores get no tx queues; the printed config round-trips.
    assert!(c.lcores[1].tx.is_empty() && c.lcores[2].tx.is_empty());
    let printed = toml::to_string(&c).unwrap();
    assert!(printed.contains("app_lcores = [2, 3]"), "{printed}");
    assert_eq!(ok(&printed), c);
    // Undeclared, listed twice, with queues.
    let e = errs(&with(
        &format!("{stack}[[lcores]]\nid = 2\n"),
        "name = \"tcp-echo\"\napp_lcores = [5, 2, 2]",
    ));
    let u = at(&e, "app.app_lcores[0]");
    assert_eq!(u.message, "lcore 5 is not declared in [[lcores]]");
    assert!(u.hint.contains("id = 5"), "{}", u.hint);
    assert_eq!(
        at(&e, "app.app_lcores[2]").message,
        "lcore 2 is listed twice (also at app.app_lcores[1])"
    );
    let e = errs(&with(stack, "name = \"tcp-echo\"\napp_lcores = [1]"));
    let q = at(&e, "app.app_lcores[0]");
    assert!(
        q.message.contains("gives it rx or tx queues"),
        "{}",
        q.message
    );
    assert!(q.hint.contains("polls no queues"), "{}", q.hint);
    let e = errs(&with(stack, "name = \"tcp-echo\"\napp_lcores = [64]"));
    assert!(at(&e, "app.app_lcores[0]").hint.contains("0 to 63"));
    // http too, with the same checks.
    let route = "\n[[app.routes]]\npath = \"/\"\nbody = \"hi\"";
    let c = ok(&with(
        &format!("{stack}[[lcores]]\nid = 2\n"),
        &format!("name = \"http\"\napp_lcores = [2]{route}"),
    ));
    let AppConfig::Http(h) = &c.app else {
        panic!("{:?}", c.app)
    };
    assert_eq!(h.tcp.app_lcores, vec![2]);
    assert!(c.lcores[1].tx.is_empty());
    let printed = toml::to_string(&c).unwrap();
    assert!(printed.contains("app_lcores = [2]"), "{printed}");
    assert_eq!(ok(&printed), c);
    let e = errs(&with(
        &format!("{stack}[[lcores]]\nid = 2\n"),
        &format!("name = \"http\"\napp_lcores = [5, 2, 2, 1]{route}"),
    ));
    assert_eq!(
        at(&e, "app.app_lcores[0]").message,
        "lcore 5 is not declared in [[lcores]]"
    );
    assert_eq!(
        at(&e, "app.app_lcores[2]").message,
        "lcore 2 is listed twice (also at app.app_lcores[1])"
    );
    let q = at(&e, "app.app_lcores[3]");
    assert!(
        q.message.contains("runs the http application") && q.message.contains("rx or tx queues"),
        "{}",
        q.message
    );
    // Only tcp-echo and http run on app lcores: one error naming both.
    let e = errs(&with(stack, "name = \"l3fwd\"\napp_lcores = [2]"));
    assert_eq!(
        at(&e, "app.app_lcores").message,
        "`app_lcores` is only valid for app \"tcp-echo\" or \"http\""
    );
    assert_eq!(e.iter().filter(|d| d.path == "app.app_lcores").count(), 1);
}
