//! Cross-reference checks (pools, ring peers, pairs, queue ownership, tx queue assignment) and
//! assembly of the final [`Config`]. Each check runs only when the data it needs read cleanly.
//! The checks of the L2/L3 stack (subnets, routes, neighbours, ACLs, trace, the IPv4
//! applications) are in the child module `net`.

mod net;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::reader::{name_hint, At, Diag, Got, Table};
use super::sections::net::{read_acls, read_neighbours, read_routes, read_stack, read_trace};
use super::sections::{
    read_app, read_lcores, read_memory, read_metrics, read_ports, read_run, RawApp, RawDriver,
    RawL2fwd, RawLcore, RawMemory, RawPort,
};
use super::{
    AppConfig, Config, ConfigErrors, DriverConfig, FwdMode, HttpConfig, L2fwdConfig, LcoreConfig,
    MemoryConfig, PoolConfig, PortConfig, QueueRef,
};

/// Bytes an `af_xdp` port leaves free at the start of each buffer (`XDP_PACKET_HEADROOM`): the
/// frame is received from this offset of the mbuf's buffer (headroom + data_room bytes).
const XDP_HEADROOM: u32 = 256;

/// What validation needs from the machine; tests substitute their own.
#[derive(Debug, Clone)]
pub(super) struct Env {
    /// Directory relative pcap paths are checked against (`None`: the working directory).
    pub(super) base_dir: Option<PathBuf>,
    /// Number of CPUs online (`lcores[].cpu` must be below it).
    pub(super) cpus: usize,
    /// Directory with one entry per network interface of the machine (`/sys/class/net`) that
    /// `af_packet` and `af_xdp` interfaces must exist in; `None`: not checked.
    pub(super) net_dir: Option<PathBuf>,
}

impl Env {
    pub(super) fn from_system() -> Self {
        Env {
            base_dir: None,
            cpus: online_cpus(),
            net_dir: Some(PathBuf::from("/sys/class/net")),
        }
    }

    /// False if the interface is known not to exist (the name is a valid interface name, so it
    /// is a single path component other than `.` and `..`).
    pub(super) fn iface_exists(&self, iface: &str) -> bool {
        self.net_dir
            .as_ref()
            .is_none_or(|dir| dir.join(iface).exists())
    }

    /// Where a path from the file is looked up.
    pub(super) fn resolve(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// The directory relative paths are taken from, for hints.
    pub(super) fn base_display(&self) -> String {
        match &self.base_dir {
            Some(b) => b.display().to_string(),
            None => std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| ".".to_string()),
        }
    }
}

/// Number of CPUs online.
fn online_cpus() -> usize {
    // SAFETY: sysconf only reads a system value; it has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Parses and validates `text`.
pub(super) fn parse_with(text: &str, env: &Env) -> Result<Config, ConfigErrors> {
    let mut d = Diag::new(text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The tree of a broken file is a guess: report the syntax errors only (the first one
        // per line; later ones are often consequences of an earlier one).
        let mut syntax: Vec<_> = syntax
            .iter()
            .map(|e| (e.span(), e.message().to_string()))
            .collect();
        syntax.sort_by_key(|(span, _)| span.as_ref().map_or(0, |s| s.start));
        let mut seen_lines = BTreeSet::new();
        for (span, message) in syntax {
            let line = d.line(&span.clone().map(|s| s.start..s.start + 1));
            if seen_lines.insert(line) && seen_lines.len() <= 10 {
                d.error(
                    "",
                    &span.map(|s| s.start..s.start + 1),
                    format!("invalid TOML: {message}"),
                    "fix the TOML syntax here; the configuration itself is checked once the file parses",
                );
            }
        }
        return Err(ConfigErrors(d.into_errors()));
    }
    let doc = doc.into_inner();
    let mut root = Table::root(&doc);
    let memory = read_memory(&mut d, &mut root);
    let ports = read_ports(&mut d, &mut root, env);
    let lcores = read_lcores(&mut d, &mut root, env);
    let app = read_app(&mut d, &mut root);
    let routes = read_routes(&mut d, &mut root);
    let neighbours = read_neighbours(&mut d, &mut root);
    let acls = read_acls(&mut d, &mut root);
    let stack = read_stack(&mut d, &mut root);
    let trace = read_trace(&mut d, &mut root);
    let metrics = read_metrics(&mut d, &mut root);
    let run = read_run(&mut d, &mut root);

    let (ports, ports_complete) = match ports {
        Some((ports, complete)) => {
            if ports.is_empty() && complete {
                d.error(
                    "ports",
                    &root.value_span("ports"),
                    "at least one port is required",
                    "add a [[ports]] table, like name = \"p0\" and driver = \"null\"",
                );
            }
            (ports, complete)
        }
        None => {
            d.error(
                "ports",
                &None,
                "at least one port is required, but there is no [[ports]] table",
                "add a [[ports]] table, like name = \"p0\" and driver = \"null\"",
            );
            (Vec::new(), false)
        }
    };
    let (lcores, lcores_complete) = match lcores {
        Some((lcores, complete)) => {
            if lcores.is_empty() && complete {
                d.error(
                    "lcores",
                    &root.value_span("lcores"),
                    "at least one lcore is required",
                    "add a [[lcores]] table, like id = 1 and rx = [\"p0:0\"]",
                );
            }
            (lcores, complete)
        }
        None => {
            d.error(
                "lcores",
                &None,
                "at least one lcore is required, but there is no [[lcores]] table",
                "add a [[lcores]] table, like id = 1 and rx = [\"p0:0\"]",
            );
            (Vec::new(), false)
        }
    };
    root.finish(&mut d);

    let mut x = Cross {
        d,
        memory,
        ports,
        ports_complete,
        lcores,
        lcores_complete,
        port_index: HashMap::new(),
        port_pool: Vec::new(),
    };
    x.check_pools();
    x.check_ports();
    x.check_ifaces(env);
    x.check_rings();
    x.check_subnets();
    let routes = x.check_routes(routes);
    let neighbours = x.check_neighbours(neighbours, stack.as_ref());
    let acls = x.check_acls(acls);
    let trace = trace.and_then(|t| x.check_trace(t));
    let app = app.and_then(|a| x.check_app(a, env));
    let tx = x.check_lcores(app.as_ref().and_then(|a| a.tx.as_ref()));

    if x.d.count() > 0 {
        return Err(ConfigErrors(x.d.into_errors()));
    }
    let built = (|| {
        Some(Config {
            memory: x.build_memory()?,
            ports: x.build_ports()?,
            lcores: x.build_lcores(tx?)?,
            app: app?.config?,
            routes: routes?,
            neighbours: neighbours?,
            acls: acls?,
            stack: stack?,
            trace: trace?,
            metrics: metrics?,
            run: run?,
        })
    })();
    built.ok_or_else(|| {
        // Every path to `None` above records an error first; this is a safety net, not a panic.
        ConfigErrors(vec![super::ConfigError {
            path: String::new(),
            line: None,
            message: "internal error: the configuration was rejected without a reported reason"
                .to_string(),
            hint: "please report this with the configuration file".to_string(),
        }])
    })
}

/// The resolved application: its config (if complete) and which ports each lcore sends on.
struct App {
    config: Option<AppConfig>,
    tx: Option<TxNeeds>,
}

/// Which ports an lcore needs a tx queue on.
enum TxNeeds {
    /// `dest[i]` = index of the port that frames received on port `i` leave from (l2fwd): an
    /// lcore sends on the partners of the ports it polls.
    Pairs(Vec<usize>),
    /// The named application may send on every port (routing, ARP, ICMP), so an lcore that
    /// polls any rx queue needs a tx queue on every port.
    EveryPort(&'static str),
    /// The application sends only on the queues listed in the lcores' explicit `tx` lists
    /// (pktgen): nothing is assigned automatically.
    Explicit,
}

/// State of the cross-reference checks.
struct Cross {
    d: Diag,
    memory: RawMemory,
    ports: Vec<RawPort>,
    ports_complete: bool,
    lcores: Vec<RawLcore>,
    lcores_complete: bool,
    /// Port name → index (first definition).
    port_index: HashMap<String, usize>,
    /// Index of each port's pool in `memory.pools`, where known.
    port_pool: Vec<Option<usize>>,
}

impl Cross {
    /// True when every port read cleanly enough that an unknown name is really unknown.
    fn port_names_complete(&self) -> bool {
        self.ports_complete && self.ports.iter().all(|p| p.name.is_some())
    }

    /// True when, in addition, no name is defined twice.
    fn port_names_unique(&self) -> bool {
        self.port_names_complete() && self.port_index.len() == self.ports.len()
    }

    fn port_names(&self) -> Vec<&str> {
        self.ports
            .iter()
            .filter_map(|p| p.name.as_ref().map(|n| n.v.as_str()))
            .collect()
    }

    fn port_label(&self, i: usize) -> String {
        self.ports[i]
            .name
            .as_ref()
            .map_or_else(|| self.ports[i].path.clone(), |n| format!("`{}`", n.v))
    }

    fn lcore_label(&self, k: usize) -> String {
        match &self.lcores[k].id {
            Some(id) => format!("lcore {}", id.v),
            None => self.lcores[k].path.clone(),
        }
    }

    /// Resolves a port name, reporting unknown names (when that is meaningful).
    fn resolve_port(
        &mut self,
        name: &str,
        path: &str,
        span: &super::reader::Span,
    ) -> Option<usize> {
        if let Some(&i) = self.port_index.get(name) {
            return Some(i);
        }
        if self.port_names_complete() {
            let hint = name_hint("ports", name, &self.port_names());
            self.d
                .error(path, span, format!("unknown port `{name}`"), hint);
        }
        None
    }

    fn check_pools(&mut self) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for pool in &self.memory.pools {
            let Some(name) = &pool.name else { continue };
            if let Some(first) = seen.get(name.v.as_str()) {
                self.d.error(
                    &name.path,
                    &name.span,
                    format!("duplicate pool name `{}` (already used by {first})", name.v),
                    "pool names must be unique: rename one of them",
                );
            } else {
                seen.insert(&name.v, &pool.path);
            }
        }
    }

    fn check_ports(&mut self) {
        // Names.
        for (i, port) in self.ports.iter().enumerate() {
            let Some(name) = &port.name else { continue };
            if let Some(&first) = self.port_index.get(&name.v) {
                self.d.error(
                    &name.path,
                    &name.span,
                    format!(
                        "duplicate port name `{}` (already used by {})",
                        name.v, self.ports[first].path
                    ),
                    "port names must be unique: rename one of them",
                );
            } else {
                self.port_index.insert(name.v.clone(), i);
            }
        }
        // Pools.
        let pool_names: Vec<&str> = self
            .memory
            .pools
            .iter()
            .filter_map(|p| p.name.as_ref().map(|n| n.v.as_str()))
            .collect();
        let pools_known =
            self.memory.pools_complete && self.memory.pools.iter().all(|p| p.name.is_some());
        let mut port_pool = Vec::with_capacity(self.ports.len());
        for port in &self.ports {
            let idx = match &port.pool {
                Got::Bad => None,
                Got::Absent => {
                    (self.memory.pools_complete && !self.memory.pools.is_empty()).then_some(0)
                }
                Got::Ok(p) => {
                    let found = self
                        .memory
                        .pools
                        .iter()
                        .position(|q| q.name.as_ref().is_some_and(|n| n.v == p.v));
                    if found.is_none() && pools_known {
                        self.d.error(
                            &p.path,
                            &p.span,
                            format!("unknown pool `{}`", p.v),
                            name_hint("pools", &p.v, &pool_names),
                        );
                    }
                    found
                }
            };
            port_pool.push(idx);
        }
        // Frame sizes against the pool's data room.
        for (port, &pool) in self.ports.iter().zip(&port_pool) {
            let Some(pool) = pool.map(|k| &self.memory.pools[k]) else {
                continue;
            };
            let Some(room) = &pool.data_room else {
                continue;
            };
            let pool_name = pool
                .name
                .as_ref()
                .map_or_else(|| pool.path.clone(), |n| format!("`{}`", n.v));
            if let Some(mtu) = &port.mtu {
                let frame = u32::from(mtu.v) + 18;
                // af_xdp receives into the buffer (headroom + data_room) from its offset 256.
                let xdp_buffer = match (&port.driver, pool.headroom) {
                    (Some(RawDriver::AfXdp { .. }), Some(h)) => {
                        Some((h, u32::from(h) + u32::from(room.v)))
                    }
                    _ => None,
                };
                if let Some((headroom, buffer)) =
                    xdp_buffer.filter(|&(_, buffer)| buffer < XDP_HEADROOM + frame)
                {
                    let (path, span) = match &port.pool {
                        Got::Ok(p) => (p.path.clone(), p.span.clone()),
                        _ => (format!("{}.pool", port.path), port.span.clone()),
                    };
                    let need = XDP_HEADROOM + frame;
                    let need_room = (need - u32::from(headroom)).max(frame);
                    let max_mtu = (buffer - XDP_HEADROOM)
                        .min(u32::from(room.v))
                        .saturating_sub(18);
                    self.d.error(
                        path,
                        &span,
                        format!(
                            "pool {pool_name} is too small for af_xdp: {frame}-byte frames (mtu {} + 18) after the {XDP_HEADROOM}-byte XDP headroom need headroom + data_room >= {need}, but it has headroom = {headroom} + data_room = {} = {buffer}",
                            mtu.v, room.v
                        ),
                        if max_mtu >= 68 {
                            format!(
                                "raise {}.data_room to at least {need_room}, or lower mtu to at most {max_mtu}",
                                pool.path
                            )
                        } else {
                            format!("raise {}.data_room to at least {need_room}", pool.path)
                        },
                    );
                } else if frame > u32::from(room.v) {
                    self.d.error(
                        &mtu.path,
                        &mtu.span,
                        format!(
                            "mtu {} needs {frame}-byte frames, but pool {pool_name} has data_room = {}",
                            mtu.v, room.v
                        ),
                        format!(
                            "lower mtu to at most {} or raise {}.data_room to at least {frame}",
                            u32::from(room.v).saturating_sub(18),
                            pool.path
                        ),
                    );
                }
            }
            if let Some(RawDriver::Null {
                size: Some(size), ..
            }) = &port.driver
            {
                if size.v > room.v {
                    self.d.error(
                        &size.path,
                        &size.span,
                        format!(
                            "frame size {} does not fit in pool {pool_name} mbufs (data_room = {})",
                            size.v, room.v
                        ),
                        format!(
                            "lower size to at most {} or raise {}.data_room to at least {}",
                            room.v, pool.path, size.v
                        ),
                    );
                }
            }
        }
        self.port_pool = port_pool;
    }

    /// Interfaces of `af_packet`, `af_xdp` and `tap` ports: they exist (except tap, which
    /// creates its own) and no two ports share one.
    fn check_ifaces(&mut self, env: &Env) {
        let mut owner: HashMap<&str, usize> = HashMap::new();
        for (i, port) in self.ports.iter().enumerate() {
            let Some(driver) = &port.driver else { continue };
            let Some(iface) = driver.iface() else {
                continue;
            };
            if driver.needs_existing_iface() && !env.iface_exists(&iface.v) {
                self.d.error(
                    &iface.path,
                    &iface.span,
                    format!("interface `{}` does not exist on this machine", iface.v),
                    "check `ip link`, or create it (e.g. a veth pair: ip link add A type veth peer name B)",
                );
            }
            match owner.get(iface.v.as_str()) {
                Some(&first) => self.d.error(
                    &iface.path,
                    &iface.span,
                    format!(
                        "interface `{}` is used by both port {} ({}) and port {}",
                        iface.v,
                        self.port_label(first),
                        self.ports[first].path,
                        self.port_label(i)
                    ),
                    "a port owns its interface: give each port its own `iface` (one port can have several queues)",
                ),
                None => {
                    owner.insert(&iface.v, i);
                }
            }
        }
    }

    fn check_rings(&mut self) {
        let ring_names: Vec<&str> = self
            .ports
            .iter()
            .filter(|p| matches!(p.driver, Some(RawDriver::Ring { .. })))
            .filter_map(|p| p.name.as_ref().map(|n| n.v.as_str()))
            .collect();
        let mut errors = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            let Some(RawDriver::Ring {
                peer: Some(peer), ..
            }) = &port.driver
            else {
                continue;
            };
            let Some(my_name) = &port.name else { continue };
            let Some(&j) = self.port_index.get(&peer.v) else {
                if self.port_names_complete() {
                    errors.push((
                        peer.clone().map_unit(),
                        format!("unknown peer port `{}`", peer.v),
                        name_hint("ring ports", &peer.v, &ring_names),
                    ));
                }
                continue;
            };
            let other = &self.ports[j];
            match &other.driver {
                None => continue,
                Some(RawDriver::Ring { peer: back, .. }) => {
                    let Some(back) = back else { continue };
                    if back.v != my_name.v {
                        errors.push((
                            peer.clone().map_unit(),
                            format!(
                                "ring port `{}` is peered with `{}`, not with `{}`",
                                peer.v, back.v, my_name.v
                            ),
                            format!(
                                "ring peers name each other: set {}.peer = \"{}\" or choose another peer",
                                other.path, my_name.v
                            ),
                        ));
                        continue;
                    }
                }
                Some(drv) => {
                    errors.push((
                        peer.clone().map_unit(),
                        format!(
                            "peer `{}` is a \"{}\" port, not a ring port",
                            peer.v,
                            drv.kind()
                        ),
                        if ring_names.len() > 1 {
                            format!(
                                "set {}.driver = \"ring\" or choose another ring port: {}",
                                other.path,
                                ring_names.join(", ")
                            )
                        } else {
                            format!(
                                "set {}.driver = \"ring\", or peer = \"{}\" for a loopback ring",
                                other.path, my_name.v
                            )
                        },
                    ));
                    continue;
                }
            }
            // Mutual peers: check queue counts once per pair.
            if j < i {
                continue;
            }
            if let (
                Some(RawDriver::Ring {
                    depth: Some(my_depth),
                    ..
                }),
                Some(RawDriver::Ring {
                    depth: Some(peer_depth),
                    ..
                }),
            ) = (&port.driver, &other.driver)
            {
                if my_depth.v != peer_depth.v {
                    errors.push((
                        peer_depth.clone().map_unit(),
                        format!(
                            "ring port `{}` has depth = {} but its peer `{}` has depth = {}",
                            peer.v, peer_depth.v, my_name.v, my_depth.v
                        ),
                        "both ends of a ring link share the same rings: give them the same depth"
                            .to_string(),
                    ));
                }
            }
            let (Some(my_tx), Some(my_rx)) = (&port.tx_queues, &port.rx_queues) else {
                continue;
            };
            let (Some(peer_tx), Some(peer_rx)) = (&other.tx_queues, &other.rx_queues) else {
                continue;
            };
            if my_tx.v != peer_rx.v {
                errors.push((
                    my_tx.clone().map_unit(),
                    format!(
                        "ring port `{}` has tx_queues = {} but its peer `{}` has rx_queues = {}",
                        my_name.v, my_tx.v, peer.v, peer_rx.v
                    ),
                    format!(
                        "tx queue q of `{}` feeds rx queue q of `{}`: give both the same count",
                        my_name.v, peer.v
                    ),
                ));
            }
            if i != j && my_rx.v != peer_tx.v {
                errors.push((
                    my_rx.clone().map_unit(),
                    format!(
                        "ring port `{}` has rx_queues = {} but its peer `{}` has tx_queues = {}",
                        my_name.v, my_rx.v, peer.v, peer_tx.v
                    ),
                    format!(
                        "tx queue q of `{}` feeds rx queue q of `{}`: give both the same count",
                        peer.v, my_name.v
                    ),
                ));
            }
        }
        for (at, message, hint) in errors {
            self.d.error(at.path, &at.span, message, hint);
        }
    }

    fn check_app(&mut self, raw: RawApp, env: &Env) -> Option<App> {
        match raw {
            RawApp::Pktgen(p) => Some(self.check_pktgen(p, env)),
            RawApp::L2fwd(l2) => Some(self.check_l2fwd(l2)),
            RawApp::L3fwd => Some(self.check_l3fwd()),
            RawApp::UdpEcho { port, address } => Some(self.check_udp_echo(port, address)),
            RawApp::TcpEcho(raw) => Some(self.check_tcp_echo(raw)),
            RawApp::Http(tcp, http) => Some(self.check_tcp_server(tcp, "http", |tcp| {
                Some(AppConfig::Http(HttpConfig {
                    tcp,
                    routes: http.routes?,
                    server: http.server?,
                    max_request_head: http.max_request_head?,
                }))
            })),
        }
    }

    fn check_l2fwd(&mut self, raw: RawL2fwd) -> App {
        let n = self.ports.len();
        let names_ok = self.port_names_unique();
        // Pairs → dest.
        let mut dest: Option<Vec<usize>> = None;
        let mut pairs_out: Option<Vec<(String, String)>> = None;
        match &raw.pairs {
            Got::Bad => {}
            Got::Absent => {
                if names_ok {
                    let mut dst = vec![0; n];
                    let mut pairs = Vec::new();
                    for a in (0..n).step_by(2) {
                        let b = if a + 1 < n { a + 1 } else { a };
                        dst[a] = b;
                        dst[b] = a;
                        pairs.push((self.port_name(a), self.port_name(b)));
                    }
                    dest = Some(dst);
                    pairs_out = Some(pairs);
                }
            }
            Got::Ok(pairs) => {
                let mut dst: Vec<Option<usize>> = vec![None; n];
                let mut where_paired: Vec<Option<String>> = vec![None; n];
                let mut ok = true;
                for (a, b) in &pairs.v {
                    let ia = self.resolve_port(&a.v, &a.path, &a.span);
                    let ib = self.resolve_port(&b.v, &b.path, &b.span);
                    let (Some(ia), Some(ib)) = (ia, ib) else {
                        ok = false;
                        continue;
                    };
                    let pair_path = a.path.rsplit_once('[').map_or("", |(p, _)| p).to_string();
                    let members: &[(usize, &At<String>)] = if ia == ib {
                        &[(ia, a)]
                    } else {
                        &[(ia, a), (ib, b)]
                    };
                    let mut clash = false;
                    for &(i, at) in members {
                        if let Some(prev) = &where_paired[i] {
                            self.d.error(
                                &at.path,
                                &at.span,
                                format!("port `{}` is already in pair {prev}", at.v),
                                "each port belongs to at most one pair (a port can pair with itself, like [\"p2\", \"p2\"])",
                            );
                            clash = true;
                        }
                    }
                    if clash {
                        ok = false;
                        continue;
                    }
                    where_paired[ia] = Some(pair_path.clone());
                    where_paired[ib] = Some(pair_path);
                    dst[ia] = Some(ib);
                    dst[ib] = Some(ia);
                }
                if ok && names_ok {
                    for (i, d) in dst.iter().enumerate() {
                        if d.is_none() {
                            let name = self.port_name(i);
                            self.d.error(
                                &raw.pairs_at.path,
                                &raw.pairs_at.span,
                                format!("port `{name}` is not in any pair, so its frames have nowhere to go"),
                                format!(
                                    "add [\"{name}\", \"OTHER\"] to app.pairs, or [\"{name}\", \"{name}\"] to send its frames back out"
                                ),
                            );
                            ok = false;
                        }
                    }
                    if ok {
                        dest = dst.into_iter().collect();
                        pairs_out = Some(
                            pairs
                                .v
                                .iter()
                                .map(|(a, b)| (a.v.clone(), b.v.clone()))
                                .collect(),
                        );
                    }
                }
            }
        }
        // Peer MACs.
        let mut peer_macs_out = None;
        if let Some(pm) = &raw.peer_macs {
            let mut given: HashMap<usize, [u8; 6]> = HashMap::new();
            let mut ok = true;
            for (name, mac) in pm {
                match self.resolve_port(&name.v, &name.path, &name.span) {
                    Some(i) => {
                        given.insert(i, *mac);
                    }
                    None => ok = false,
                }
            }
            if ok && names_ok {
                peer_macs_out = Some(if raw.mode == Some(FwdMode::Mac) {
                    (0..n)
                        .map(|i| {
                            let mac = given.get(&i).copied().unwrap_or_else(|| {
                                let [hi, lo] = 0x10u16.wrapping_add(i as u16).to_be_bytes();
                                [0x02, 0, 0, 0, hi, lo]
                            });
                            (self.port_name(i), mac)
                        })
                        .collect()
                } else {
                    Vec::new()
                });
            }
        }
        let config = (|| {
            Some(AppConfig::L2fwd(L2fwdConfig {
                mode: raw.mode?,
                pairs: pairs_out?,
                peer_macs: peer_macs_out?,
            }))
        })();
        App {
            config,
            tx: dest.map(TxNeeds::Pairs),
        }
    }

    /// Every RFC 2544 frame size must suit every stream (the trials stamp the signature) and
    /// the ports' MTU; a replay cannot be searched. True if all is well.
    fn check_rfc2544_sizes(
        &mut self,
        cfg: &super::PktgenConfig,
        rc: &super::Rfc2544Config,
        raw: &super::sections::pktgen::RawPktgen,
        mtu: Option<u16>,
    ) -> bool {
        let Some(table_at) = raw.rfc_sizes_at.first() else {
            return true;
        };
        if cfg.replay.is_some() {
            self.d.error(
                table_at.path.replace(".sizes", "").replace("[0]", ""),
                &table_at.span,
                "an RFC 2544 search sends streams, not a replayed pcap file",
                "remove [app.rfc2544], or replace `replay` with [[app.streams]]",
            );
            return false;
        }
        let Some(mtu) = mtu else {
            return true;
        };
        let mut ok = true;
        for (i, &size) in rc.sizes.iter().enumerate() {
            let at = raw.rfc_sizes_at.get(i).unwrap_or(table_at);
            for s in &cfg.streams {
                let mut s = s.clone();
                s.size = crate::pktgen::SizeSpec::Fixed(size);
                let spec = crate::app::pktgen::stream_spec(&s, 0, [0; 6], true);
                if let Err(e) = crate::pktgen::Stream::new(spec, mtu) {
                    self.d.error(
                        &at.path,
                        &at.span,
                        format!("RFC 2544 frame size {size}: {}", e.problem),
                        format!(
                            "every size must fit every stream with its signature and the ports' \
                             MTU ({mtu}); drop or change this size"
                        ),
                    );
                    ok = false;
                    break;
                }
            }
        }
        ok
    }

    fn check_pktgen(&mut self, raw: super::sections::pktgen::RawPktgen, env: &Env) -> App {
        let mut ok = true;
        // Something to send on.
        if self.lcores_complete
            && !self.lcores.is_empty()
            && self.lcores.iter().all(|l| l.tx_ok)
            && !self
                .lcores
                .iter()
                .any(|l| l.tx.as_ref().is_some_and(|t| !t.is_empty()))
        {
            let q = self
                .ports
                .iter()
                .find(|p| p.tx_queues.as_ref().is_some_and(|t| t.v > 0))
                .and_then(|p| p.name.as_ref())
                .map_or("p0".to_string(), |n| n.v.clone());
            self.d.error(
                &self.lcores[0].tx_at.path,
                &self.lcores[0].tx_at.span,
                "pktgen sends on the tx queues listed in the lcores' `tx`, and no lcore lists any",
                format!(
                    "add tx = [\"{q}:0\"] to {} (each queue sends the streams at `rate`)",
                    self.lcores[0].path
                ),
            );
            ok = false;
        }
        if let Some(cfg) = &raw.config {
            // Every stream must fit the smallest MTU of the ports that can send.
            let mtu = self
                .ports
                .iter()
                .filter(|p| p.tx_queues.as_ref().is_none_or(|t| t.v > 0))
                .filter_map(|p| p.mtu.as_ref().map(|m| m.v))
                .min();
            if let Some(mtu) = mtu {
                for (i, s) in cfg.streams.iter().enumerate() {
                    let spec = crate::app::pktgen::stream_spec(s, 0, [0; 6], cfg.latency);
                    if let Err(e) = crate::pktgen::Stream::new(spec, mtu) {
                        let at = &raw.size_at[i];
                        let path = if e.field.starts_with("size") {
                            at.path.clone()
                        } else {
                            at.path.replace(
                                ".size",
                                &format!(".{}", e.field.trim_start_matches("l4.")),
                            )
                        };
                        self.d.error(
                            &path,
                            &at.span,
                            e.problem.clone(),
                            format!(
                                "frame sizes include the 4-byte FCS and must fit the ports' MTU ({mtu}); sizes: {}",
                                crate::pktgen::parse::SIZE_FORMS
                            ),
                        );
                        ok = false;
                    }
                }
            }
            if let Some(rc) = &cfg.rfc2544 {
                ok &= self.check_rfc2544_sizes(cfg, rc, &raw, mtu);
            }
            if let (Some(r), Some(at)) = (&cfg.replay, &raw.replay_at) {
                let path = env.resolve(&r.file);
                if let Err(e) = crate::app::pktgen::load_pcap(&path) {
                    self.d.error(
                        &at.path,
                        &at.span,
                        format!("cannot use pcap file {}: {e}", r.file.display()),
                        "give a readable pcap file (Ethernet link type)",
                    );
                    ok = false;
                }
            }
        } else {
            ok = false;
        }
        let _ = &raw.app_at;
        App {
            config: if ok {
                raw.config.map(AppConfig::Pktgen)
            } else {
                None
            },
            tx: Some(TxNeeds::Explicit),
        }
    }

    fn port_name(&self, i: usize) -> String {
        self.ports[i]
            .name
            .as_ref()
            .map_or_else(String::new, |n| n.v.clone())
    }

    /// Checks lcore ids and queue ownership; returns the resolved tx list of each lcore.
    fn check_lcores(&mut self, tx_needs: Option<&TxNeeds>) -> Option<Vec<Vec<QueueRef>>> {
        // Ids.
        let mut ids: HashMap<u32, usize> = HashMap::new();
        for (k, lc) in self.lcores.iter().enumerate() {
            let Some(id) = &lc.id else { continue };
            if let Some(&first) = ids.get(&id.v) {
                let free = (0..64).find(|i| {
                    !self
                        .lcores
                        .iter()
                        .any(|l| l.id.as_ref().is_some_and(|x| x.v == *i))
                });
                self.d.error(
                    &id.path,
                    &id.span,
                    format!(
                        "duplicate lcore id {} (already used by {})",
                        id.v, self.lcores[first].path
                    ),
                    match free {
                        Some(f) => {
                            format!("lcore ids must be unique: use a free id, like id = {f}")
                        }
                        None => "lcore ids must be unique".to_string(),
                    },
                );
            } else {
                ids.insert(id.v, k);
            }
        }

        // Rx queues: resolve, and find queues polled twice.
        let mut rx_res: Vec<Vec<(usize, u16)>> = Vec::new();
        let mut all_rx_resolved = self.lcores_complete && !self.lcores.is_empty();
        let mut pollers: HashMap<(usize, u16), (usize, String)> = HashMap::new();
        for k in 0..self.lcores.len() {
            let refs = self.lcores[k].rx.clone();
            all_rx_resolved &= self.lcores[k].rx_ok;
            let mut res = Vec::new();
            for r in &refs {
                match self.resolve_queue(r, true) {
                    Some(q) => {
                        if let Some((other, other_path)) = pollers.get(&q) {
                            let (msg, hint) = if *other == k {
                                (
                                    format!(
                                        "rx queue {} is listed twice in this lcore's rx list",
                                        r.v
                                    ),
                                    "remove the duplicate".to_string(),
                                )
                            } else {
                                (
                                    format!(
                                        "rx queue {} is polled by both {} ({other_path}) and {}",
                                        r.v,
                                        self.lcore_label(*other),
                                        self.lcore_label(k)
                                    ),
                                    format!(
                                        "each rx queue is polled by exactly one lcore: remove \"{}\" from one of the two rx lists",
                                        r.v
                                    ),
                                )
                            };
                            self.d.error(&r.path, &r.span, msg, hint);
                        } else {
                            pollers.insert(q, (k, r.path.clone()));
                            res.push(q);
                        }
                    }
                    None => all_rx_resolved = false,
                }
            }
            rx_res.push(res);
        }

        // Every rx queue polled by some lcore (pktgen may leave the queues of tx-only ports
        // alone: like testpmd's txonly mode, it does not have to receive).
        if self.lcores_complete
            && !self.lcores.is_empty()
            && self.lcores.iter().all(|l| l.rx_ok)
            && !matches!(tx_needs, Some(TxNeeds::Explicit))
        {
            for i in 0..self.ports.len() {
                let (Some(name), Some(rxq)) = (&self.ports[i].name, &self.ports[i].rx_queues)
                else {
                    continue;
                };
                if self.port_index.get(&name.v) != Some(&i) {
                    continue; // duplicate name, already reported
                }
                for q in 0..rxq.v {
                    if !pollers.contains_key(&(i, q)) {
                        self.d.error(
                            &rxq.path,
                            &rxq.span,
                            format!("rx queue {}:{q} is not polled by any lcore", name.v),
                            format!(
                                "add \"{}:{q}\" to an lcore's rx list or lower rx_queues",
                                name.v
                            ),
                        );
                    }
                }
            }
        }

        // Explicit tx lists: resolve and find queues used twice.
        let mut used: HashMap<(usize, u16), (usize, String)> = HashMap::new();
        let mut tx_res: Vec<Option<Vec<(usize, u16)>>> = Vec::new();
        let mut tx_all_resolved: Vec<bool> = Vec::new();
        for k in 0..self.lcores.len() {
            let Some(refs) = self.lcores[k].tx.clone() else {
                tx_res.push(None);
                tx_all_resolved.push(true);
                continue;
            };
            let mut all = self.lcores[k].tx_ok;
            let mut res = Vec::new();
            for r in &refs {
                let Some(q) = self.resolve_queue(r, false) else {
                    all = false;
                    continue;
                };
                if let Some((other, other_path)) = used.get(&q) {
                    let msg = if *other == k {
                        format!("tx queue {} is listed twice in this lcore's tx list", r.v)
                    } else {
                        format!(
                            "tx queue {} is used by both {} ({other_path}) and {}",
                            r.v,
                            self.lcore_label(*other),
                            self.lcore_label(k)
                        )
                    };
                    self.d.error(
                        &r.path,
                        &r.span,
                        msg,
                        "a tx queue belongs to one lcore: use another queue of the port (or raise its tx_queues)",
                    );
                    all = false;
                } else {
                    used.insert(q, (k, r.path.clone()));
                    res.push(q);
                }
            }
            tx_res.push(Some(res));
            tx_all_resolved.push(all);
        }

        // Which ports each lcore sends to.
        let tx_needs = tx_needs?;
        if !all_rx_resolved {
            return None;
        }
        let needs: Vec<BTreeSet<usize>> = rx_res
            .iter()
            .map(|qs| match tx_needs {
                TxNeeds::Pairs(dest) => qs.iter().map(|&(p, _)| dest[p]).collect(),
                TxNeeds::EveryPort(_) if qs.is_empty() => BTreeSet::new(),
                TxNeeds::EveryPort(_) => (0..self.ports.len()).collect(),
                TxNeeds::Explicit => BTreeSet::new(),
            })
            .collect();

        // Explicit lists must cover those ports.
        for k in 0..self.lcores.len() {
            let Some(res) = &tx_res[k] else { continue };
            if !tx_all_resolved[k] {
                continue;
            }
            for &p in &needs[k] {
                if !res.iter().any(|&(q_port, _)| q_port == p) {
                    let name = self.port_name(p);
                    let free = self.ports[p]
                        .tx_queues
                        .as_ref()
                        .and_then(|t| (0..t.v).find(|q| !used.contains_key(&(p, *q))));
                    let at = &self.lcores[k].tx_at;
                    let message = match tx_needs {
                        TxNeeds::Pairs(_) => format!(
                            "{} forwards frames to port `{name}` but its tx list has no queue on `{name}`",
                            self.lcore_label(k)
                        ),
                        TxNeeds::EveryPort(app) => format!(
                            "{} polls rx queues, so with app `{app}` it may send on every port, but its tx list has no queue on `{name}`",
                            self.lcore_label(k)
                        ),
                        TxNeeds::Explicit => format!(
                            "{} has no tx queue on `{name}`",
                            self.lcore_label(k)
                        ),
                    };
                    self.d.error(
                        &at.path,
                        &at.span,
                        message,
                        match free {
                            Some(q) => format!(
                                "add \"{name}:{q}\" to {}.tx, or remove `tx` to assign queues automatically",
                                self.lcores[k].path
                            ),
                            None => format!(
                                "raise {}.tx_queues and add the new queue to {}.tx, or remove `tx` to assign queues automatically",
                                self.ports[p].path, self.lcores[k].path
                            ),
                        },
                    );
                }
            }
        }

        // Automatic assignment: lowest free queue of each port, lcores in order.
        let mut demand: HashMap<usize, usize> = HashMap::new();
        for &(p, _) in used.keys() {
            *demand.entry(p).or_default() += 1;
        }
        for k in 0..self.lcores.len() {
            if tx_res[k].is_none() {
                for &p in &needs[k] {
                    *demand.entry(p).or_default() += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(self.lcores.len());
        for k in 0..self.lcores.len() {
            let list = match &tx_res[k] {
                Some(res) => res.clone(),
                None => {
                    let mut list = Vec::new();
                    for &p in &needs[k] {
                        let Some(txq) = self.ports[p].tx_queues.as_ref().map(|t| t.v) else {
                            continue;
                        };
                        match (0..txq).find(|q| !used.contains_key(&(p, *q))) {
                            Some(q) => {
                                used.insert((p, q), (k, self.lcores[k].path.clone()));
                                list.push((p, q));
                            }
                            None => {
                                let mut owners: Vec<String> = (0..txq)
                                    .filter_map(|q| used.get(&(p, q)))
                                    .map(|(o, _)| self.lcore_label(*o))
                                    .collect();
                                owners.dedup();
                                self.d.error(
                                    &self.lcores[k].path,
                                    &self.lcores[k].span,
                                    format!(
                                        "no free tx queue on port {} for {}: its {txq} tx queue{} already used by {}",
                                        self.port_label(p),
                                        self.lcore_label(k),
                                        if txq == 1 { " is" } else { "s are" },
                                        owners.join(", ")
                                    ),
                                    match tx_needs {
                                        TxNeeds::Pairs(_) => format!(
                                            "raise {}.tx_queues to {} or list {}.tx",
                                            self.ports[p].path,
                                            demand.get(&p).copied().unwrap_or(txq as usize + 1),
                                            self.lcores[k].path
                                        ),
                                        TxNeeds::EveryPort(app) => format!(
                                            "raise {}.tx_queues to {}: with app `{app}` every lcore that polls rx queues needs its own tx queue on every port",
                                            self.ports[p].path,
                                            demand.get(&p).copied().unwrap_or(txq as usize + 1),
                                        ),
                                        TxNeeds::Explicit => format!(
                                            "list {}.tx explicitly",
                                            self.lcores[k].path
                                        ),
                                    },
                                );
                            }
                        }
                    }
                    list
                }
            };
            out.push(
                list.into_iter()
                    .map(|(p, queue)| QueueRef {
                        port: self.port_name(p),
                        queue,
                    })
                    .collect(),
            );
        }
        Some(out)
    }

    /// Resolves a queue reference against the ports (rx or tx side).
    fn resolve_queue(&mut self, r: &At<QueueRef>, rx: bool) -> Option<(usize, u16)> {
        let p = self.resolve_port(&r.v.port, &r.path, &r.span)?;
        let (count, key) = if rx {
            (self.ports[p].rx_queues.as_ref(), "rx_queues")
        } else {
            (self.ports[p].tx_queues.as_ref(), "tx_queues")
        };
        let count = count?.v;
        if r.v.queue >= count {
            let dir = if rx { "rx" } else { "tx" };
            let valid = if count == 1 {
                format!("only queue 0 (\"{}\")", r.v.port)
            } else {
                format!("queues 0 to {}", count - 1)
            };
            self.d.error(
                &r.path,
                &r.span,
                format!("port `{}` has no {dir} queue {}", r.v.port, r.v.queue),
                format!(
                    "`{}` has {key} = {count}: use {valid}, or raise {}.{key}",
                    r.v.port, self.ports[p].path
                ),
            );
            return None;
        }
        Some((p, r.v.queue))
    }

    fn build_memory(&self) -> Option<MemoryConfig> {
        let pools = self
            .memory
            .pools
            .iter()
            .map(|p| {
                Some(PoolConfig {
                    name: p.name.as_ref()?.v.clone(),
                    mbufs: p.mbufs?,
                    data_room: p.data_room.as_ref()?.v,
                    headroom: p.headroom?,
                    cache_size: p.cache_size?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(MemoryConfig {
            huge_pages: self.memory.huge_pages?,
            hugetlbfs: self.memory.hugetlbfs.clone()?,
            pools,
        })
    }

    fn build_ports(&self) -> Option<Vec<PortConfig>> {
        self.ports
            .iter()
            .zip(&self.port_pool)
            .map(|(p, pool)| {
                let driver = match p.driver.as_ref()? {
                    RawDriver::Null { size, template } => DriverConfig::Null {
                        size: size.as_ref()?.v,
                        template: template.clone()?,
                    },
                    RawDriver::Ring {
                        peer,
                        depth,
                        checksum_offload,
                    } => DriverConfig::Ring {
                        peer: peer.as_ref()?.v.clone(),
                        depth: depth.as_ref()?.v,
                        checksum_offload: (*checksum_offload)?,
                    },
                    RawDriver::Pcap { rx, tx, repeat } => DriverConfig::Pcap {
                        rx: rx.clone()?,
                        tx: tx.clone()?,
                        repeat: (*repeat)?,
                    },
                    RawDriver::AfPacket {
                        iface,
                        qdisc_bypass,
                        block_size,
                        blocks,
                        tx_frames,
                    } => DriverConfig::AfPacket {
                        iface: iface.as_ref()?.v.clone(),
                        qdisc_bypass: (*qdisc_bypass)?,
                        block_size: (*block_size)?,
                        blocks: (*blocks)?,
                        tx_frames: (*tx_frames)?,
                    },
                    RawDriver::AfXdp {
                        iface,
                        queue,
                        mode,
                        zero_copy,
                        ring_size,
                    } => DriverConfig::AfXdp {
                        iface: iface.as_ref()?.v.clone(),
                        queue: (*queue)?,
                        mode: (*mode)?,
                        zero_copy: (*zero_copy)?,
                        ring_size: (*ring_size)?,
                    },
                    RawDriver::Tap { iface, up } => DriverConfig::Tap {
                        iface: iface.as_ref()?.v.clone(),
                        up: (*up)?,
                    },
                };
                Some(PortConfig {
                    name: p.name.as_ref()?.v.clone(),
                    pool: self.memory.pools.get((*pool)?)?.name.as_ref()?.v.clone(),
                    rx_queues: p.rx_queues.as_ref()?.v,
                    tx_queues: p.tx_queues.as_ref()?.v,
                    mtu: p.mtu.as_ref()?.v,
                    mac: p.mac?,
                    ipv4: p.ipv4_ok.then(|| p.ipv4.iter().map(|a| a.v).collect())?,
                    promiscuous: p.promiscuous?,
                    impair: p.impair?,
                    driver,
                })
            })
            .collect()
    }

    fn build_lcores(&self, tx: Vec<Vec<QueueRef>>) -> Option<Vec<LcoreConfig>> {
        self.lcores
            .iter()
            .zip(tx)
            .map(|(l, tx)| {
                Some(LcoreConfig {
                    id: l.id.as_ref()?.v,
                    cpu: l.cpu?,
                    rx: l.rx.iter().map(|r| r.v.clone()).collect(),
                    tx,
                })
            })
            .collect()
    }
}

impl<T> At<T> {
    /// The location without the value.
    fn map_unit(self) -> At<()> {
        At {
            v: (),
            path: self.path,
            span: self.span,
        }
    }
}
