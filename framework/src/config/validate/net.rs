//! Cross-reference checks of the L2/L3 stack: subnets of different ports must not overlap;
//! route gateways and static neighbours must sit on a connected subnet (of the right port);
//! prefixes, neighbours and ACL names must be unique; the IPv4 applications need addresses.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{App, Cross, TxNeeds};
use crate::config::reader::{At, Got};
use crate::config::sections::net::{
    hosts_hint, subnet_problem, RawAcl, RawNeighbour, RawRoute, RawTrace,
};
use crate::config::{
    AclConfig, AppConfig, Ipv4Cidr, L3fwdConfig, NeighbourConfig, RouteConfig, StackConfig,
    TcpEchoConfig, TraceConfig, UdpEchoConfig,
};

/// A port's address: (port index, the address as read).
type Subnet = (usize, At<Ipv4Cidr>);

impl Cross {
    /// Every address of every port, if all of them are known (every port read and every
    /// `ipv4` valid): without that, "not on any subnet" could be a consequence of another error.
    fn subnets(&self) -> Option<Vec<Subnet>> {
        if !self.ports_complete {
            return None;
        }
        let mut out = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            if !p.ipv4_ok {
                return None;
            }
            for a in &p.ipv4 {
                out.push((i, a.clone()));
            }
        }
        Some(out)
    }

    /// `198.18.0.0/24 (p0), 198.18.1.0/24 (p1)`, or a note that there are none.
    fn connected_list(&self, subnets: &[Subnet]) -> String {
        if subnets.is_empty() {
            return "no port has an ipv4 address".to_string();
        }
        let list: Vec<String> = subnets
            .iter()
            .map(|(i, s)| format!("{} ({})", s.v.trunc(), self.port_name(*i)))
            .collect();
        format!("connected subnets: {}", list.join(", "))
    }

    /// Subnets of different ports must not overlap: a destination is reached through one port.
    pub(super) fn check_subnets(&mut self) {
        let mut all: Vec<Subnet> = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            for a in &p.ipv4 {
                all.push((i, a.clone()));
            }
        }
        for (k, (j, b)) in all.iter().enumerate() {
            let Some((i, a)) = all[..k].iter().find(|(i, a)| i != j && a.v.overlaps(&b.v)) else {
                continue;
            };
            self.d.error(
                &b.path,
                &b.span,
                format!(
                    "subnet {} of port {} ({}) overlaps subnet {} of port {} ({} at {})",
                    b.v.trunc(),
                    self.port_label(*j),
                    b.v,
                    a.v.trunc(),
                    self.port_label(*i),
                    a.v,
                    a.path
                ),
                "a subnet is reached through one port: give the ports addresses in disjoint subnets (or longer prefixes that do not overlap)",
            );
        }
    }

    /// Checks `[[routes]]`; returns them if every one is valid.
    pub(super) fn check_routes(
        &mut self,
        (routes, complete): (Vec<RawRoute>, bool),
    ) -> Option<Vec<RouteConfig>> {
        let subnets = self.subnets();
        let mut seen: HashMap<Ipv4Cidr, String> = HashMap::new();
        let mut out = Vec::new();
        let mut all_ok = complete;
        for r in &routes {
            let mut ok = true;
            if let Some(p) = &r.prefix {
                if let Some(first) = seen.get(&p.v) {
                    self.d.error(
                        &p.path,
                        &p.span,
                        format!("duplicate route for {} (already {first})", p.v),
                        "one route per prefix: list several gateways in one route's `via` for equal-cost multipath, or remove one of the routes",
                    );
                    ok = false;
                } else {
                    seen.insert(p.v, r.path.clone());
                }
                let connected = subnets.iter().flatten().find(|(_, s)| s.v.trunc() == p.v);
                if let Some((i, s)) = connected {
                    self.d.error(
                        &p.path,
                        &p.span,
                        format!(
                            "{} is the connected subnet of port {} ({} = {})",
                            p.v,
                            self.port_label(*i),
                            s.path,
                            s.v
                        ),
                        "a port's subnets are routed through it automatically: remove this route",
                    );
                    ok = false;
                }
            }
            let port = match &r.port {
                Got::Absent => Some(None),
                Got::Bad => None,
                Got::Ok(p) => self.resolve_port(&p.v, &p.path, &p.span).map(Some),
            };
            if let (Some(via), Some(subnets), Some(port)) = (&r.via, &subnets, port) {
                for gw in via {
                    ok &= self.check_gateway(gw, subnets, port);
                }
            }
            let route = (|| {
                Some(RouteConfig {
                    prefix: r.prefix.as_ref()?.v,
                    via: r.via.as_ref()?.iter().map(|g| g.v).collect(),
                    port: port?.map(|i| self.port_name(i)),
                    action: r.action?,
                })
            })();
            match route.filter(|_| ok) {
                Some(route) => out.push(route),
                None => all_ok = false,
            }
        }
        all_ok.then_some(out)
    }

    /// A gateway must be another host on a connected subnet (of `port`, when given).
    fn check_gateway(
        &mut self,
        gw: &At<Ipv4Addr>,
        subnets: &[Subnet],
        port: Option<usize>,
    ) -> bool {
        if let Some((i, s)) = subnets.iter().find(|(_, s)| s.v.addr == gw.v) {
            self.d.error(
                &gw.path,
                &gw.span,
                format!(
                    "gateway {} is the address of port {} itself ({})",
                    gw.v,
                    self.port_label(*i),
                    s.path
                ),
                "the gateway is the next router on that subnet, another host",
            );
            return false;
        }
        let on = subnets.iter().find(|(_, s)| s.v.contains(gw.v));
        match (on, port) {
            (None, _) => {
                self.d.error(
                    &gw.path,
                    &gw.span,
                    format!("gateway {} is not on a subnet of any port", gw.v),
                    format!(
                        "a gateway must be directly reachable: use one on a connected subnet, or add an address on its subnet to the ipv4 list of the port that reaches it ({})",
                        self.connected_list(subnets)
                    ),
                );
                false
            }
            (Some((i, s)), Some(p)) if *i != p => {
                let mine: Vec<String> = subnets
                    .iter()
                    .filter(|(k, _)| *k == p)
                    .map(|(_, s)| s.v.trunc().to_string())
                    .collect();
                self.d.error(
                    &gw.path,
                    &gw.span,
                    format!(
                        "gateway {} is not on a subnet of port {} ({})",
                        gw.v,
                        self.port_label(p),
                        if mine.is_empty() {
                            "it has no ipv4 address".to_string()
                        } else {
                            mine.join(", ")
                        }
                    ),
                    format!(
                        "{} is on subnet {} of port {}: set port = \"{}\", or remove `port`",
                        gw.v,
                        s.v.trunc(),
                        self.port_label(*i),
                        self.port_name(*i)
                    ),
                );
                false
            }
            (Some((_, s)), _) => match subnet_problem(gw.v, &s.v) {
                Some(msg) => {
                    self.d.error(
                        &gw.path,
                        &gw.span,
                        format!("gateway {msg}"),
                        format!("a gateway is a host: {}", hosts_hint(&s.v)),
                    );
                    false
                }
                None => true,
            },
        }
    }

    /// Checks `[[neighbours]]`; returns them if every one is valid.
    pub(super) fn check_neighbours(
        &mut self,
        (neighbours, complete): (Vec<RawNeighbour>, bool),
        stack: Option<&StackConfig>,
    ) -> Option<Vec<NeighbourConfig>> {
        let subnets = self.subnets();
        let mut seen: HashMap<(usize, Ipv4Addr), String> = HashMap::new();
        let mut out = Vec::new();
        let mut all_ok = complete;
        for n in &neighbours {
            let port = n
                .port
                .as_ref()
                .and_then(|p| self.resolve_port(&p.v, &p.path, &p.span));
            let mut ok = true;
            if let (Some(ip), Some(p)) = (&n.ip, port) {
                if let Some(first) = seen.get(&(p, ip.v)) {
                    self.d.error(
                        &ip.path,
                        &ip.span,
                        format!(
                            "duplicate neighbour {} on port {} (already {first})",
                            ip.v,
                            self.port_label(p)
                        ),
                        "one static entry per address and port: remove one of them",
                    );
                    ok = false;
                } else {
                    seen.insert((p, ip.v), n.path.clone());
                }
                if let Some(subnets) = &subnets {
                    ok &= self.check_neighbour_ip(ip, p, subnets);
                }
            }
            let entry = (|| {
                Some(NeighbourConfig {
                    ip: n.ip.as_ref()?.v,
                    mac: n.mac?,
                    port: self.port_name(port?),
                })
            })();
            match entry.filter(|_| ok) {
                Some(e) => out.push(e),
                None => all_ok = false,
            }
        }
        if let Some(stack) = stack {
            let max = stack.neighbours_max as usize;
            if let Some(n) = neighbours.get(max) {
                self.d.error(
                    &n.path,
                    &n.span,
                    format!(
                        "{} static neighbours do not fit in the neighbour table (stack.neighbours_max = {max})",
                        neighbours.len()
                    ),
                    format!(
                        "raise stack.neighbours_max to {}",
                        neighbours.len().next_power_of_two()
                    ),
                );
                all_ok = false;
            }
        }
        all_ok.then_some(out)
    }

    /// A static neighbour is another host on one of its port's subnets.
    fn check_neighbour_ip(&mut self, ip: &At<Ipv4Addr>, port: usize, subnets: &[Subnet]) -> bool {
        if let Some((i, s)) = subnets.iter().find(|(_, s)| s.v.addr == ip.v) {
            self.d.error(
                &ip.path,
                &ip.span,
                format!(
                    "{} is the address of port {} itself ({})",
                    ip.v,
                    self.port_label(*i),
                    s.path
                ),
                "a neighbour is another host on the port's link",
            );
            return false;
        }
        if let Some((_, s)) = subnets
            .iter()
            .find(|(k, s)| *k == port && s.v.contains(ip.v))
        {
            return match subnet_problem(ip.v, &s.v) {
                Some(msg) => {
                    self.d.error(
                        &ip.path,
                        &ip.span,
                        msg,
                        format!("a neighbour is a host: {}", hosts_hint(&s.v)),
                    );
                    false
                }
                None => true,
            };
        }
        let mine: Vec<String> = subnets
            .iter()
            .filter(|(k, _)| *k == port)
            .map(|(_, s)| s.v.trunc().to_string())
            .collect();
        let elsewhere = subnets.iter().find(|(_, s)| s.v.contains(ip.v));
        let hint = match elsewhere {
            Some((i, s)) => format!(
                "{} is on subnet {} of port {}: did you mean port = \"{}\"?",
                ip.v,
                s.v.trunc(),
                self.port_label(*i),
                self.port_name(*i)
            ),
            None => format!(
                "a static neighbour is on its port's link: use an address in one of the port's subnets, or add an address on the neighbour's subnet to {}.ipv4",
                self.ports[port].path
            ),
        };
        self.d.error(
            &ip.path,
            &ip.span,
            format!(
                "{} is not on a subnet of port {} ({})",
                ip.v,
                self.port_label(port),
                if mine.is_empty() {
                    "it has no ipv4 address".to_string()
                } else {
                    mine.join(", ")
                }
            ),
            hint,
        );
        false
    }

    /// Checks `[[acl]]`: unique names, at most one ACL per edge.
    pub(super) fn check_acls(
        &mut self,
        (acls, complete): (Vec<RawAcl>, bool),
    ) -> Option<Vec<AclConfig>> {
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut edges: HashMap<&(String, String), &str> = HashMap::new();
        for a in &acls {
            if let Some(name) = &a.name {
                if let Some(first) = names.get(name.v.as_str()) {
                    self.d.error(
                        &name.path,
                        &name.span,
                        format!("duplicate ACL name `{}` (already used by {first})", name.v),
                        "ACL names must be unique: rename one of them",
                    );
                } else {
                    names.insert(&name.v, &name.path);
                }
            }
            if let Some(on) = &a.on {
                if let Some(first) = edges.get(&on.v) {
                    self.d.error(
                        &on.path,
                        &on.span,
                        format!(
                            "edge \"{} -> {}\" already has an ACL ({first})",
                            on.v.0, on.v.1
                        ),
                        "one ACL per edge: merge the two rule lists into one [[acl]] (rules are tried in order)",
                    );
                } else {
                    edges.insert(&on.v, &on.path);
                }
            }
        }
        if !complete {
            return None;
        }
        acls.into_iter()
            .map(|a| {
                Some(AclConfig {
                    name: a.name?.v,
                    on: a.on?.v,
                    default: a.default?,
                    rules: a.rules?,
                })
            })
            .collect()
    }

    /// Checks `[trace]`'s port filter.
    pub(super) fn check_trace(&mut self, raw: Option<RawTrace>) -> Option<Option<TraceConfig>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        let port = match &raw.port {
            None => None,
            Some(p) => Some(self.resolve_port(&p.v, &p.path, &p.span)?),
        };
        Some(Some(TraceConfig {
            packets: raw.packets?,
            port: port.map(|i| self.port_name(i)),
        }))
    }

    /// IPv4 applications need at least one port with an address.
    fn require_addresses(&mut self, app: &str) {
        let Some(subnets) = self.subnets() else {
            return;
        };
        if !subnets.is_empty() || self.ports.is_empty() {
            return;
        }
        let (path, span) = ("ports".to_string(), self.ports[0].span.clone());
        self.d.error(
            path,
            &span,
            format!("app `{app}` needs at least one port with an IPv4 address, but no port has `ipv4`"),
            format!(
                "add the port's address and subnet, like ipv4 = [\"198.18.0.1/24\"], to {} and the other ports it sends through",
                self.ports[0].path
            ),
        );
    }

    /// The tx needs of an application that may send on every port.
    fn every_port(&self, app: &'static str) -> Option<TxNeeds> {
        self.port_names_unique().then_some(TxNeeds::EveryPort(app))
    }

    pub(super) fn check_l3fwd(&mut self) -> App {
        self.require_addresses("l3fwd");
        App {
            config: Some(AppConfig::L3fwd(L3fwdConfig {})),
            tx: self.every_port("l3fwd"),
        }
    }

    pub(super) fn check_tcp_echo(&mut self, raw: super::super::sections::RawTcpEcho) -> App {
        self.check_tcp_server(raw, "tcp-echo", |tcp| Some(AppConfig::TcpEcho(tcp)))
    }

    /// Checks the TCP server options shared by `tcp-echo` and `http`; `wrap` turns valid
    /// options into the application's config (`None` if its own options were invalid).
    pub(super) fn check_tcp_server(
        &mut self,
        raw: super::super::sections::RawTcpEcho,
        app: &'static str,
        wrap: impl FnOnce(TcpEchoConfig) -> Option<AppConfig>,
    ) -> App {
        self.require_addresses(app);
        let mut ok = true;
        if let (Some(Some(a)), Some(subnets)) = (&raw.address, self.subnets()) {
            if !subnets.is_empty() && !subnets.iter().any(|(_, s)| s.v.addr == a.v) {
                let list: Vec<String> = subnets
                    .iter()
                    .map(|(i, s)| format!("{} ({})", s.v.addr, self.port_name(*i)))
                    .collect();
                self.d.error(
                    &a.path,
                    &a.span,
                    format!("{} is not an address of any port", a.v),
                    format!(
                        "use one of the ports' addresses: {}; or remove `address` to listen on all of them",
                        list.join(", ")
                    ),
                );
                ok = false;
            }
        }
        if let Some(ports) = &raw.ports {
            for (i, p) in ports.iter().enumerate() {
                if let Some(first) = ports[..i].iter().find(|q| q.v == p.v) {
                    self.d.error(
                        &p.path,
                        &p.span,
                        format!("port {} is listed twice (also at {})", p.v, first.path),
                        "list each port once",
                    );
                    ok = false;
                }
            }
        }
        if let (Some(mc), Some(tw)) = (raw.max_connections, &raw.max_time_wait) {
            if tw.v > mc {
                self.d.error(
                    &tw.path,
                    &tw.span,
                    format!("max_time_wait {} is above max_connections {mc}", tw.v),
                    "TIME-WAIT connections live in the connection table: lower max_time_wait or raise max_connections",
                );
                ok = false;
            }
        }
        let app_lcores = self.check_app_lcores(raw.app_lcores, app);
        let config = (|| {
            Some(TcpEchoConfig {
                ports: raw.ports?.into_iter().map(|p| p.v).collect(),
                address: raw.address?.map(|a| a.v),
                send_buffer: raw.send_buffer?,
                recv_buffer: raw.recv_buffer?,
                congestion: raw.congestion?,
                nodelay: raw.nodelay?,
                max_connections: raw.max_connections?,
                max_time_wait: raw.max_time_wait?.v,
                backlog: raw.backlog?,
                app_lcores: app_lcores?,
            })
        })()
        .filter(|_| ok)
        .and_then(wrap);
        App {
            config,
            tx: self.every_port(app),
        }
    }

    /// Checks `app_lcores`: declared lcores, each once, polling no queues.
    fn check_app_lcores(&mut self, raw: Option<Vec<At<u32>>>, app: &str) -> Option<Vec<u32>> {
        let raw = raw?;
        let mut ok = true;
        for (i, a) in raw.iter().enumerate() {
            if let Some(first) = raw[..i].iter().find(|b| b.v == a.v) {
                self.d.error(
                    &a.path,
                    &a.span,
                    format!("lcore {} is listed twice (also at {})", a.v, first.path),
                    "list each app lcore once",
                );
                ok = false;
                continue;
            }
            let found = self
                .lcores
                .iter()
                .position(|l| l.id.as_ref().is_some_and(|id| id.v == a.v));
            let Some(k) = found else {
                if self.lcores_complete {
                    self.d.error(
                        &a.path,
                        &a.span,
                        format!("lcore {} is not declared in [[lcores]]", a.v),
                        format!(
                            "add a [[lcores]] table with id = {} (and cpu = N to pin it) and no rx or tx queues",
                            a.v
                        ),
                    );
                }
                ok = false;
                continue;
            };
            let lc = &self.lcores[k];
            if !lc.rx.is_empty() || lc.tx.as_ref().is_some_and(|t| !t.is_empty()) {
                let path = lc.path.clone();
                self.d.error(
                    &a.path,
                    &a.span,
                    format!(
                        "lcore {} runs the {app} application (app_lcores), but {path} gives it rx or tx queues",
                        a.v
                    ),
                    "an app lcore polls no queues: remove its `rx` and `tx`, and give the queues to the other (stack) lcores",
                );
                ok = false;
            }
        }
        ok.then(|| raw.iter().map(|a| a.v).collect())
    }

    pub(super) fn check_udp_echo(
        &mut self,
        port: Option<u16>,
        address: Option<Option<At<Ipv4Addr>>>,
    ) -> App {
        self.require_addresses("udp-echo");
        let mut address_ok = true;
        if let (Some(Some(a)), Some(subnets)) = (&address, self.subnets()) {
            if !subnets.is_empty() && !subnets.iter().any(|(_, s)| s.v.addr == a.v) {
                let list: Vec<String> = subnets
                    .iter()
                    .map(|(i, s)| format!("{} ({})", s.v.addr, self.port_name(*i)))
                    .collect();
                self.d.error(
                    &a.path,
                    &a.span,
                    format!("{} is not an address of any port", a.v),
                    format!(
                        "use one of the ports' addresses: {}; or remove `address` to answer on all of them",
                        list.join(", ")
                    ),
                );
                address_ok = false;
            }
        }
        let config = (|| {
            Some(AppConfig::UdpEcho(UdpEchoConfig {
                port: port?,
                address: address?.map(|a| a.v),
            }))
        })();
        App {
            config: config.filter(|_| address_ok),
            tx: self.every_port("udp-echo"),
        }
    }
}
