//! Readers for the L2/L3 stack's sections (`[[routes]]`, `[[neighbours]]`, `[[acl]]`, `[stack]`,
//! `[trace]`) and for the IPv4 value formats (addresses, prefixes, protocols, port ranges, graph
//! edges). Like the other section readers they check what one table can tell; whether a gateway
//! is reachable, a neighbour is on its port's subnet or a name is unique is checked in
//! `validate/net.rs`.

use std::net::Ipv4Addr;
use std::time::Duration;

use toml::de::DeValue;

use super::{name, power_of_two, read_duration, table_array, unicast_mac};
use crate::config::reader::{describe, int, string, suggest, At, Diag, Got, Span, Table, Val};
use crate::config::{AclAction, AclRule, Ipv4Cidr, RouteAction, StackConfig};

/// Hint for host addresses.
const ADDR_HINT: &str = "write four numbers from 0 to 255 separated by dots, like \"198.18.0.2\"";

/// Hint for interface addresses.
const IFADDR_HINT: &str =
    "write the port's address with its subnet's prefix length, like \"198.18.0.1/24\"";

/// Hint for prefixes.
const PREFIX_HINT: &str =
    "write a network address and prefix length, like \"198.18.2.0/24\" (\"0.0.0.0/0\" matches everything; a bare address means /32)";

/// Parses `"a.b.c.d"` (no leading zeros, like `std`).
pub(in crate::config) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("invalid IPv4 address \"{s}\""))
}

/// Parses `"a.b.c.d/n"`; without `/n` the address is a `/32` if `bare_ok`, an error otherwise.
pub(in crate::config) fn parse_cidr(s: &str, bare_ok: bool) -> Result<Ipv4Cidr, String> {
    let Some((a, len)) = s.split_once('/') else {
        let addr = parse_ipv4(s)?;
        if bare_ok {
            return Ok(Ipv4Cidr {
                addr,
                prefix_len: 32,
            });
        }
        return Err(format!("\"{s}\" has no prefix length"));
    };
    let addr = a
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("invalid IPv4 address \"{a}\" in \"{s}\""))?;
    match len.parse::<u8>() {
        Ok(n) if n <= 32 && len.bytes().all(|b| b.is_ascii_digit()) => Ok(Ipv4Cidr {
            addr,
            prefix_len: n,
        }),
        _ => Err(format!(
            "invalid prefix length \"{len}\" in \"{s}\": must be 0 to 32"
        )),
    }
}

/// Why `ip` cannot be a host's (unicast) address, if it cannot.
pub(in crate::config) fn host_problem(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.octets()[0] == 0 {
        Some("in 0.0.0.0/8 (\"this network\"), which is not a host address")
    } else if ip.is_loopback() {
        Some("a loopback address (127.0.0.0/8)")
    } else if ip.is_multicast() {
        Some("a multicast address (224.0.0.0/4)")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else {
        None
    }
}

/// Why `ip` cannot be a host on `subnet`: the subnet's network or broadcast address (only for
/// prefixes up to /30; /31 and /32 have no such addresses).
pub(in crate::config) fn subnet_problem(ip: Ipv4Addr, subnet: &Ipv4Cidr) -> Option<String> {
    if subnet.prefix_len > 30 {
        return None;
    }
    let what = if ip == subnet.network() {
        "network"
    } else if ip == subnet.broadcast() {
        "broadcast"
    } else {
        return None;
    };
    Some(format!("{ip} is the {what} address of {}", subnet.trunc()))
}

/// Hint naming the host addresses of `subnet`.
pub(in crate::config) fn hosts_hint(subnet: &Ipv4Cidr) -> String {
    let first = Ipv4Addr::from(u32::from(subnet.network()) + 1);
    let last = Ipv4Addr::from(u32::from(subnet.broadcast()) - 1);
    format!("the hosts of {} are {first} to {last}", subnet.trunc())
}

/// Reads a host (unicast) address: gateways, neighbours, the udp-echo address.
pub(in crate::config) fn host_address(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<Ipv4Addr> {
    let s = string(d, v, path, ADDR_HINT)?;
    let ip = match parse_ipv4(s) {
        Ok(ip) => ip,
        Err(msg) => {
            d.error(path, &Some(v.span()), msg, ADDR_HINT);
            return None;
        }
    };
    if let Some(what) = host_problem(ip) {
        d.error(
            path,
            &Some(v.span()),
            format!("{ip} is {what}"),
            "use a unicast host address, like \"198.18.0.2\"",
        );
        return None;
    }
    Some(ip)
}

/// Reads an interface address: `"198.18.0.1/24"`, host bits set, prefix 1..=32.
fn interface_address(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<Ipv4Cidr> {
    let span = Some(v.span());
    let s = string(d, v, path, IFADDR_HINT)?;
    let c = match parse_cidr(s, false) {
        Ok(c) => c,
        Err(msg) => {
            d.error(path, &span, msg, IFADDR_HINT);
            return None;
        }
    };
    if c.prefix_len == 0 {
        d.error(
            path,
            &span,
            format!(
                "\"{s}\" has prefix length 0, which would put every address on this port's link"
            ),
            "use the subnet's prefix length, 1 to 32, like \"198.18.0.1/24\"",
        );
        return None;
    }
    if let Some(what) = host_problem(c.addr) {
        d.error(
            path,
            &span,
            format!("{} is {what}", c.addr),
            "a port's address is a unicast host address, like \"198.18.0.1/24\"",
        );
        return None;
    }
    if let Some(msg) = subnet_problem(c.addr, &c) {
        d.error(
            path,
            &span,
            msg,
            format!("use a host address: {}", hosts_hint(&c)),
        );
        return None;
    }
    Some(c)
}

/// Reads `ports[].ipv4`: a list of interface addresses (or a single one), each at most once.
/// Returns the valid ones and whether all were valid; `None` if it is not a list at all.
pub(in crate::config) fn interface_addresses(
    d: &mut Diag,
    v: &Val<'_>,
    path: &str,
) -> Option<(Vec<At<Ipv4Cidr>>, bool)> {
    let items: Vec<(String, &Val<'_>)> = match v.get_ref() {
        DeValue::String(_) => vec![(path.to_string(), v)],
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{path}[{i}]"), item))
            .collect(),
        other => {
            d.error(
                path,
                &Some(v.span()),
                format!("expected a list of addresses, got {}", describe(other)),
                "write ipv4 = [\"198.18.0.1/24\"] (address and prefix length; several for several subnets)",
            );
            return None;
        }
    };
    let mut out: Vec<At<Ipv4Cidr>> = Vec::new();
    let mut ok = true;
    for (ipath, item) in items {
        let Some(c) = interface_address(d, item, &ipath) else {
            ok = false;
            continue;
        };
        if let Some(first) = out.iter().find(|o| o.v.addr == c.addr) {
            d.error(
                &ipath,
                &Some(item.span()),
                format!(
                    "address {} is listed twice (already {} as {})",
                    c.addr, first.path, first.v
                ),
                "remove the duplicate",
            );
            ok = false;
            continue;
        }
        out.push(At {
            v: c,
            path: ipath,
            span: Some(item.span()),
        });
    }
    Some((out, ok))
}

/// Reads a prefix (route destination, ACL match): host bits must be zero.
fn prefix(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<Ipv4Cidr> {
    let span = Some(v.span());
    let s = string(d, v, path, PREFIX_HINT)?;
    let c = match parse_cidr(s, true) {
        Ok(c) => c,
        Err(msg) => {
            d.error(path, &span, msg, PREFIX_HINT);
            return None;
        }
    };
    if c.addr != c.network() {
        d.error(
            path,
            &span,
            format!("prefix {c} has host bits set"),
            format!(
                "did you mean \"{}\"? (the network of {c}; the single host {} is \"{}/32\")",
                c.trunc(),
                c.addr,
                c.addr
            ),
        );
        return None;
    }
    Some(c)
}

/// Reads an IP protocol: `"tcp"`, `"udp"`, `"icmp"` or a number 0..=255.
fn protocol(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<u8> {
    const HINT: &str = "\"tcp\", \"udp\", \"icmp\" or a protocol number from 0 to 255";
    const NAMES: &[(&str, u8)] = &[("icmp", 1), ("tcp", 6), ("udp", 17)];
    match v.get_ref() {
        DeValue::Integer(_) => int(d, v, path, 0, 255, HINT).map(|n| n as u8),
        DeValue::String(s) => {
            if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == s.as_ref()) {
                return Some(*n);
            }
            let hint = match suggest(s, NAMES.iter().map(|(name, _)| *name)) {
                Some(best) => format!("did you mean \"{best}\"? ({HINT})"),
                None => HINT.to_string(),
            };
            d.error(
                path,
                &Some(v.span()),
                format!("unknown protocol \"{s}\""),
                hint,
            );
            None
        }
        other => {
            d.error(
                path,
                &Some(v.span()),
                format!("expected a protocol, got {}", describe(other)),
                HINT,
            );
            None
        }
    }
}

/// A protocol as written in messages.
fn proto_name(p: u8) -> String {
    match p {
        1 => "\"icmp\"".to_string(),
        6 => "\"tcp\"".to_string(),
        17 => "\"udp\"".to_string(),
        n => n.to_string(),
    }
}

/// Reads a port or an inclusive port range: `53`, `"53"`, `"1000-2000"`.
fn port_range(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<(u16, u16)> {
    const HINT: &str =
        "a port or an inclusive range of ports from 0 to 65535, like 53, \"53\" or \"1000-2000\"";
    let span = Some(v.span());
    let s = match v.get_ref() {
        DeValue::Integer(_) => {
            return int(d, v, path, 0, 65535, HINT).map(|n| (n as u16, n as u16));
        }
        DeValue::String(s) => s.as_ref(),
        other => {
            d.error(
                path,
                &span,
                format!("expected a port range, got {}", describe(other)),
                HINT,
            );
            return None;
        }
    };
    let num = |p: &str| {
        let p = p.trim();
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u16>().ok())
            .flatten()
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (num(a), num(b)),
        None => (num(s), num(s)),
    };
    let (Some(lo), Some(hi)) = (lo, hi) else {
        d.error(path, &span, format!("invalid port range \"{s}\""), HINT);
        return None;
    };
    if lo > hi {
        d.error(
            path,
            &span,
            format!("port range \"{s}\" is backwards: {lo} is above {hi}"),
            format!("write the lower port first: \"{hi}-{lo}\""),
        );
        return None;
    }
    Some((lo, hi))
}

/// Reads a graph edge: `"ipv4-input -> ipv4-lookup"`.
fn edge(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<(String, String)> {
    const HINT: &str =
        "a graph edge \"FROM -> TO\" between two node names of lowercase letters, digits and '-', like \"ipv4-input -> ipv4-lookup\"";
    let span = Some(v.span());
    let s = string(d, v, path, HINT)?;
    let Some((a, b)) = s.split_once("->") else {
        d.error(
            path,
            &span,
            format!("invalid edge \"{s}\": expected \"FROM -> TO\""),
            HINT,
        );
        return None;
    };
    let (a, b) = (a.trim(), b.trim());
    for node in [a, b] {
        let valid = (1..=64).contains(&node.len())
            && node
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !valid {
            d.error(
                path,
                &span,
                format!("invalid node name \"{node}\" in edge \"{s}\""),
                HINT,
            );
            return None;
        }
    }
    if a == b {
        d.error(
            path,
            &span,
            format!("edge \"{s}\" leads from node `{a}` to itself"),
            "an ACL sits between two different nodes, like \"ipv4-input -> ipv4-lookup\"",
        );
        return None;
    }
    Some((a.to_string(), b.to_string()))
}

/// A name reference (checked later against the defined ports).
fn port_ref(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<String> {
    string(d, v, path, "the name of a port, like port = \"p0\"").map(str::to_string)
}

/// One `[[routes]]` table.
#[derive(Debug)]
pub(in crate::config) struct RawRoute {
    pub(in crate::config) path: String,
    pub(in crate::config) prefix: Option<At<Ipv4Cidr>>,
    /// Gateways (empty when absent); `None` if invalid.
    pub(in crate::config) via: Option<Vec<At<Ipv4Addr>>>,
    pub(in crate::config) port: Got<String>,
    pub(in crate::config) action: Option<RouteAction>,
}

/// Reads `[[routes]]`: the routes and whether every entry was a table.
pub(in crate::config) fn read_routes(
    d: &mut Diag,
    root: &mut Table<'_, '_>,
) -> (Vec<RawRoute>, bool) {
    const HINT: &str =
        "declare each route as a [[routes]] table, like prefix = \"198.18.2.0/24\" and via = \"198.18.1.2\"";
    let Some((tables, complete)) = table_array(d, root, "routes", HINT) else {
        return (Vec::new(), true);
    };
    let routes = tables.into_iter().map(|(_, t)| read_route(d, t)).collect();
    (routes, complete)
}

fn read_route(d: &mut Diag, mut t: Table<'_, '_>) -> RawRoute {
    let prefix = t.with(d, "prefix", prefix);
    let prefix = t.required(
        d,
        "prefix",
        prefix,
        "give the destination, like prefix = \"198.18.2.0/24\" (\"0.0.0.0/0\" for the default route)",
    );
    let action = t
        .choice(d, "action", &["forward", "drop", "reject"])
        .or(t.dflt("action", "forward"))
        .map(|a| match a.v {
            "drop" => RouteAction::Drop,
            "reject" => RouteAction::Reject,
            _ => RouteAction::Forward,
        });
    let via = t.with(d, "via", gateways);
    let port = t.with(d, "port", port_ref);
    match action {
        Some(RouteAction::Forward) => {
            let no_via = match &via {
                Got::Absent => true,
                Got::Ok(v) => v.v.is_empty(),
                Got::Bad => false,
            };
            if no_via && port.is_absent() {
                d.error(
                    t.child("via"),
                    &t.value_span("via").or_else(|| t.span.clone()),
                    "a forward route needs `via` (the next router) or `port` (the destination is on that port's link)",
                    "add via = \"198.18.1.2\" (a gateway on a port's subnet) or port = \"p1\", or set action = \"drop\" or \"reject\"",
                );
            }
        }
        Some(other) => {
            let what = if other == RouteAction::Drop {
                "drop"
            } else {
                "reject"
            };
            for key in ["via", "port"] {
                if t.has(key) {
                    d.error(
                        t.child(key),
                        &t.key_span(key),
                        format!("`{key}` is only used with action = \"forward\""),
                        format!(
                            "a \"{what}\" route sends nothing anywhere: remove `{key}`, or set action = \"forward\""
                        ),
                    );
                }
            }
        }
        None => {}
    }
    let path = t.path.clone();
    t.finish(d);
    RawRoute {
        path,
        prefix,
        via: match via {
            Got::Absent => Some(Vec::new()),
            Got::Bad => None,
            Got::Ok(v) => Some(v.v),
        },
        port,
        action,
    }
}

/// Reads `via`: one gateway or a list of them (equal-cost multipath), each at most once.
fn gateways(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<Vec<At<Ipv4Addr>>> {
    let items: Vec<(String, &Val<'_>)> = match v.get_ref() {
        DeValue::String(_) => vec![(path.to_string(), v)],
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{path}[{i}]"), item))
            .collect(),
        other => {
            d.error(
                path,
                &Some(v.span()),
                format!("expected a gateway address or a list of them, got {}", describe(other)),
                "write via = \"198.18.1.2\", or via = [\"198.18.1.2\", \"198.18.1.3\"] to spread traffic over several gateways",
            );
            return None;
        }
    };
    let mut out: Vec<At<Ipv4Addr>> = Vec::new();
    let mut ok = true;
    for (gpath, item) in items {
        let Some(ip) = host_address(d, item, &gpath) else {
            ok = false;
            continue;
        };
        if let Some(first) = out.iter().find(|o| o.v == ip) {
            d.error(
                &gpath,
                &Some(item.span()),
                format!("gateway {ip} is listed twice (already {})", first.path),
                "remove the duplicate",
            );
            ok = false;
            continue;
        }
        out.push(At {
            v: ip,
            path: gpath,
            span: Some(item.span()),
        });
    }
    ok.then_some(out)
}

/// One `[[neighbours]]` table.
#[derive(Debug)]
pub(in crate::config) struct RawNeighbour {
    pub(in crate::config) path: String,
    pub(in crate::config) span: Span,
    pub(in crate::config) ip: Option<At<Ipv4Addr>>,
    pub(in crate::config) mac: Option<[u8; 6]>,
    pub(in crate::config) port: Option<At<String>>,
}

/// Reads `[[neighbours]]`: the entries and whether every entry was a table.
pub(in crate::config) fn read_neighbours(
    d: &mut Diag,
    root: &mut Table<'_, '_>,
) -> (Vec<RawNeighbour>, bool) {
    const HINT: &str =
        "declare each static neighbour as a [[neighbours]] table with ip, mac and port";
    let Some((tables, complete)) = table_array(d, root, "neighbours", HINT) else {
        return (Vec::new(), true);
    };
    let mut out = Vec::new();
    for (_, mut t) in tables {
        let ip = t.with(d, "ip", host_address);
        let ip = t.required(
            d,
            "ip",
            ip,
            "give the neighbour's address, like ip = \"198.18.0.2\"",
        );
        let mac = t.with(d, "mac", |d, v, p| unicast_mac(d, v, p, "neighbour"));
        let mac = t.required(
            d,
            "mac",
            mac,
            "give the neighbour's MAC address, like mac = \"02:00:00:00:00:10\"",
        );
        let port = t.with(d, "port", port_ref);
        let port = t.required(
            d,
            "port",
            port,
            "name the port the neighbour is reached through, like port = \"p0\"",
        );
        let (path, span) = (t.path.clone(), t.span.clone());
        t.finish(d);
        out.push(RawNeighbour {
            path,
            span,
            ip,
            mac: mac.map(|m| m.v),
            port,
        });
    }
    (out, complete)
}

/// One `[[acl]]` table.
#[derive(Debug)]
pub(in crate::config) struct RawAcl {
    pub(in crate::config) name: Option<At<String>>,
    pub(in crate::config) on: Option<At<(String, String)>>,
    pub(in crate::config) default: Option<AclAction>,
    /// `None` if any rule is invalid.
    pub(in crate::config) rules: Option<Vec<AclRule>>,
}

/// Reads `[[acl]]`: the ACLs and whether every entry was a table.
pub(in crate::config) fn read_acls(d: &mut Diag, root: &mut Table<'_, '_>) -> (Vec<RawAcl>, bool) {
    const HINT: &str =
        "declare each ACL as an [[acl]] table with name, on (a graph edge) and rules";
    let Some((tables, complete)) = table_array(d, root, "acl", HINT) else {
        return (Vec::new(), true);
    };
    let acls = tables.into_iter().map(|(_, t)| read_acl(d, t)).collect();
    (acls, complete)
}

const ACL_ACTIONS: &[&str] = &["accept", "drop", "count"];

fn acl_action(a: &str) -> AclAction {
    match a {
        "drop" => AclAction::Drop,
        "count" => AclAction::Count,
        _ => AclAction::Accept,
    }
}

fn read_acl(d: &mut Diag, mut t: Table<'_, '_>) -> RawAcl {
    const RULES_HINT: &str =
        "a list of rules, like rules = [{ proto = \"udp\", dport = \"9\", action = \"drop\" }], or [[acl.rules]] tables";
    let name = t.with(d, "name", name);
    let name = t.required(
        d,
        "name",
        name,
        "give the ACL a unique name (used in its counters), like name = \"edge-filter\"",
    );
    let on = t.with(d, "on", edge);
    let on = t.required(
        d,
        "on",
        on,
        "place the ACL on a graph edge, like on = \"ipv4-input -> ipv4-lookup\"",
    );
    let default = t
        .choice(d, "default", ACL_ACTIONS)
        .or(t.dflt("default", "accept"))
        .map(|a| acl_action(a.v));
    let rules = match table_array(d, &mut t, "rules", RULES_HINT) {
        None => Some(Vec::new()),
        Some((tables, complete)) => {
            let rules: Vec<Option<AclRule>> =
                tables.into_iter().map(|(_, r)| read_rule(d, r)).collect();
            let rules: Option<Vec<AclRule>> = rules.into_iter().collect();
            rules.filter(|_| complete)
        }
    };
    t.finish(d);
    RawAcl {
        name,
        on,
        default,
        rules,
    }
}

fn read_rule(d: &mut Diag, mut t: Table<'_, '_>) -> Option<AclRule> {
    let src = t.with(d, "src", prefix);
    let dst = t.with(d, "dst", prefix);
    let proto = t.with(d, "proto", protocol);
    let sport = t.with(d, "sport", port_range);
    let dport = t.with(d, "dport", port_range);
    let action = t.choice(d, "action", ACL_ACTIONS);
    let action = t.required(
        d,
        "action",
        action,
        "say what a matching packet gets: action = \"accept\", \"drop\" or \"count\"",
    );
    let mut ports_ok = true;
    for (key, got) in [("sport", &sport), ("dport", &dport)] {
        let Got::Ok(range) = got else { continue };
        let problem = match &proto {
            Got::Bad => continue,
            Got::Absent => format!("`{key}` needs proto = \"tcp\" or \"udp\""),
            Got::Ok(p) if p.v != 6 && p.v != 17 => format!(
                "`{key}` only applies to TCP and UDP, but this rule has proto = {}",
                proto_name(p.v)
            ),
            Got::Ok(_) => continue,
        };
        d.error(
            &range.path,
            &t.key_span(key),
            problem,
            format!("set proto = \"udp\" or \"tcp\" in this rule, or remove `{key}`"),
        );
        ports_ok = false;
    }
    t.finish(d);
    let bad = src.is_bad() || dst.is_bad() || proto.is_bad() || sport.is_bad() || dport.is_bad();
    if bad || !ports_ok {
        return None;
    }
    Some(AclRule {
        src: src.optional()?,
        dst: dst.optional()?,
        proto: proto.optional()?,
        sport: sport.optional()?,
        dport: dport.optional()?,
        action: acl_action(action?.v),
    })
}

/// Reads `[stack]`; `None` if invalid.
pub(in crate::config) fn read_stack(d: &mut Diag, root: &mut Table<'_, '_>) -> Option<StackConfig> {
    let dflt = StackConfig::default();
    let Some((v, path)) = root.raw("stack") else {
        return Some(dflt);
    };
    let mut t = Table::of(d, v, path, "write [stack] as a table")?;
    let arp_timeout = duration_in(
        d,
        &mut t,
        "arp_timeout",
        (Duration::from_secs(1), Duration::from_secs(3600)),
        dflt.arp_timeout,
        "how long a resolved neighbour stays fresh, \"1s\" to \"1h\", like \"60s\"",
    );
    let arp_retries = t
        .int(
            d,
            "arp_retries",
            1u32,
            10,
            "ARP requests before a neighbour is unreachable, 1 to 10",
        )
        .or(t.dflt("arp_retries", dflt.arp_retries));
    let arp_hold = t
        .int(
            d,
            "arp_hold",
            0u16,
            64,
            "packets held per unresolved neighbour, 0 (drop them) to 64",
        )
        .or(t.dflt("arp_hold", dflt.arp_hold));
    const NEIGH_HINT: &str = "a power of two from 16 to 1048576, like neighbours_max = 4096";
    let neighbours_max = t.int(d, "neighbours_max", 16u32, 1 << 20, NEIGH_HINT);
    let neighbours_max = power_of_two(d, neighbours_max, "neighbours_max")
        .or(t.dflt("neighbours_max", dflt.neighbours_max));
    let reassembly_timeout = duration_in(
        d,
        &mut t,
        "reassembly_timeout",
        (Duration::from_secs(1), Duration::from_secs(120)),
        dflt.reassembly_timeout,
        "how long an incomplete datagram is kept, \"1s\" to \"120s\", like \"30s\"",
    );
    let reassembly_max = t
        .int(
            d,
            "reassembly_max",
            1u32,
            65536,
            "datagrams in reassembly at once per lcore, 1 to 65536",
        )
        .or(t.dflt("reassembly_max", dflt.reassembly_max));
    let reassembly_max_frags = t
        .int(
            d,
            "reassembly_max_frags",
            2u16,
            1024,
            "fragments per datagram, 2 to 1024",
        )
        .or(t.dflt("reassembly_max_frags", dflt.reassembly_max_frags));
    let icmp_rate = t
        .int(
            d,
            "icmp_rate",
            0u32,
            1_000_000,
            "ICMP errors per second per lcore, 0 (send none) to 1000000",
        )
        .or(t.dflt("icmp_rate", dflt.icmp_rate));
    let icmp_burst = t
        .int(
            d,
            "icmp_burst",
            1u32,
            10_000,
            "ICMP errors sent back to back at most, 1 to 10000",
        )
        .or(t.dflt("icmp_burst", dflt.icmp_burst));
    let ttl = t
        .int(
            d,
            "ttl",
            1u8,
            255,
            "TTL of packets this host sends, 1 to 255",
        )
        .or(t.dflt("ttl", dflt.ttl));
    const HANDOFF_HINT: &str =
        "slots per ring between two TCP lcores, a power of two from 64 to 65536, like handoff_ring = 1024";
    let handoff_ring = t.int(d, "handoff_ring", 64u32, 65536, HANDOFF_HINT);
    let handoff_ring =
        power_of_two(d, handoff_ring, "handoff_ring").or(t.dflt("handoff_ring", dflt.handoff_ring));
    t.finish(d);
    Some(StackConfig {
        arp_timeout: arp_timeout?,
        arp_retries: arp_retries?.v,
        arp_hold: arp_hold?.v,
        neighbours_max: neighbours_max?.v,
        reassembly_timeout: reassembly_timeout?,
        reassembly_max: reassembly_max?.v,
        reassembly_max_frags: reassembly_max_frags?.v,
        icmp_rate: icmp_rate?.v,
        icmp_burst: icmp_burst?.v,
        ttl: ttl?.v,
        handoff_ring: handoff_ring?.v,
    })
}

/// Reads a duration within `range` (inclusive), defaulting to `dflt`; `None` if invalid.
fn duration_in(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    key: &'static str,
    range: (Duration, Duration),
    dflt: Duration,
    hint: &str,
) -> Option<Duration> {
    let (lo, hi) = range;
    t.with(d, key, read_duration)
        .and_then(|x| {
            if x.v < lo || x.v > hi {
                d.error(
                    &x.path,
                    &x.span,
                    format!(
                        "{key} must be between {} and {}, got {}",
                        human(&lo),
                        human(&hi),
                        human(&x.v)
                    ),
                    hint,
                );
                None
            } else {
                Some(x)
            }
        })
        .or(t.dflt(key, dflt))
        .map(|x| x.v)
}

/// A duration in its largest whole unit, for messages: `"1h"`, `"90s"`, `"500ms"`.
fn human(d: &Duration) -> String {
    let ms = d.as_millis();
    for (unit, n) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= n && ms % n == 0 {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// `[trace]`.
#[derive(Debug)]
pub(in crate::config) struct RawTrace {
    /// `None` if invalid.
    pub(in crate::config) packets: Option<u32>,
    /// Absent: every port.
    pub(in crate::config) port: Option<At<String>>,
}

/// Reads `[trace]`: `Some(None)` if absent, `None` if invalid.
pub(in crate::config) fn read_trace(
    d: &mut Diag,
    root: &mut Table<'_, '_>,
) -> Option<Option<RawTrace>> {
    let Some((v, path)) = root.raw("trace") else {
        return Some(None);
    };
    let mut t = Table::of(d, v, path, "write [trace] as a table, like packets = 20")?;
    let packets = t.int(
        d,
        "packets",
        1u32,
        10_000,
        "how many packets to trace from the start, 1 to 10000",
    );
    let packets = t.required(
        d,
        "packets",
        packets,
        "say how many packets to trace from the start, like packets = 20",
    );
    let port = t.with(d, "port", port_ref).optional_at();
    t.finish(d);
    Some(Some(RawTrace {
        packets: packets.map(|p| p.v),
        port: port?,
    }))
}
