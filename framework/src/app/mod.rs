//! Applications: the [`Stage`] implementations that lcores run, chosen by `[app]` in the
//! config. `l2fwd` is a plain stage; `l3fwd`, `udp-echo`, `tcp-echo` and `http` run the L2/L3
//! stack graph (TCP apps inside its `tcp-input` node). With `app_lcores`, `tcp-echo` and
//! `http` run their application on app lcores ([`xcore::XcoreStage`]) behind the stack
//! lcores' bridges.

pub mod http;
pub mod l2fwd;
pub mod pktgen;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{AppConfig, Config, FwdMode, HttpConfig, TcpEchoConfig};
use crate::graph::{GraphStage, TraceControl};
use crate::mem::Mempool;
use crate::port::{MacAddr, PortInfo};
use crate::runtime::{RuntimeError, Stage};
use crate::stack::nodes::{UdpBinding, UdpEcho};
use crate::stack::setup::{build_graph_with_tcp, env_from_config, TcpApps, UdpApps};
use crate::stack::tcp::xcore::{self, AppLink, BridgeLink, XcoreParams};
use crate::stack::tcp::{handoff, Handoff, LayerParams, TcpEcho};
use crate::stack::StackEnv;
use crate::tcp::{CongestionAlgorithm, TcpConfig};

/// What every lcore's stage is built from: built once per data plane.
pub struct AppShared {
    ports: Vec<PortInfo>,
    stack: Option<Arc<StackEnv>>,
    trace: Arc<TraceControl>,
    pktgen: Option<Arc<pktgen::PktgenShared>>,
    pools: Vec<Mempool>,
    http: Option<Arc<http::Site>>,
    /// Per TCP lcore (in [`tcp_lcores`] order), its end of the flow steering mesh; taken by
    /// [`make_stage`]. Empty with fewer than two TCP lcores.
    handoff: Mutex<Vec<Option<Handoff>>>,
    xcore: Option<XcoreWiring>,
}

/// The rings between stack lcores and app lcores (`app_lcores`), handed out as each lcore's
/// stage is built.
struct XcoreWiring {
    params: XcoreParams,
    pool: Mempool,
    /// Stack lcore id → its ends of the links, one per app lcore.
    bridges: Mutex<HashMap<u32, Vec<BridgeLink>>>,
    /// App lcore id → its ends of the links, one per stack lcore.
    endpoints: Mutex<HashMap<u32, Vec<AppLink>>>,
}

/// The TCP server options of the apps that have them (`tcp-echo`, `http`).
fn tcp_server(cfg: &Config) -> Option<&TcpEchoConfig> {
    match &cfg.app {
        AppConfig::TcpEcho(e) => Some(e),
        AppConfig::Http(h) => Some(&h.tcp),
        _ => None,
    }
}

/// One link per (stack lcore, app lcore) of a `tcp-echo` or `http` with `app_lcores`.
fn xcore_wiring(
    cfg: &Config,
    stack: Option<&Arc<StackEnv>>,
) -> Result<Option<XcoreWiring>, RuntimeError> {
    let (Some(e), Some(env)) = (tcp_server(cfg), stack) else {
        return Ok(None);
    };
    if e.app_lcores.is_empty() {
        return Ok(None);
    }
    let pool = env.pool(0).clone();
    let params = XcoreParams::for_buffers(
        e.send_buffer as usize,
        e.recv_buffer as usize,
        pool.data_room() as usize,
        e.max_connections as usize,
    );
    let mut bridges: HashMap<u32, Vec<BridgeLink>> = HashMap::new();
    let mut endpoints: HashMap<u32, Vec<AppLink>> = HashMap::new();
    for s in tcp_lcores(cfg) {
        for &a in &e.app_lcores {
            let (b, ep) = xcore::link(params.ring_size)
                .map_err(|err| RuntimeError::Stack(format!("xcore rings: {err}")))?;
            bridges.entry(s).or_default().push(b);
            endpoints.entry(a).or_default().push(ep);
        }
    }
    Ok(Some(XcoreWiring {
        params,
        pool,
        bridges: Mutex::new(bridges),
        endpoints: Mutex::new(endpoints),
    }))
}

impl AppShared {
    /// The packet trace control (armed by `[trace]` or at run time).
    pub fn trace(&self) -> &Arc<TraceControl> {
        &self.trace
    }

    /// The generator's shared state (counters, rx results), for the `pktgen` app.
    pub fn pktgen(&self) -> Option<&Arc<pktgen::PktgenShared>> {
        self.pktgen.as_ref()
    }

    /// The shared stack state, for apps that run the L3 stack.
    pub fn stack(&self) -> Option<&Arc<StackEnv>> {
        self.stack.as_ref()
    }
}

/// Prepares the shared state: for stack apps, the FIB, the neighbour table and the pools each
/// port generates packets from. `pools[i]` is port `i`'s pool.
pub fn prepare(
    cfg: &Config,
    ports: &[PortInfo],
    pools: Vec<Mempool>,
) -> Result<AppShared, RuntimeError> {
    let pktgen = pktgen::prepare(cfg, ports)?;
    let kept_pools = if pktgen.is_some() {
        pools.clone()
    } else {
        Vec::new()
    };
    let stack = match cfg.app {
        AppConfig::L2fwd(_) | AppConfig::Pktgen(_) => None,
        AppConfig::L3fwd(_)
        | AppConfig::UdpEcho(_)
        | AppConfig::TcpEcho(_)
        | AppConfig::Http(_) => Some(
            env_from_config(cfg, ports, pools).map_err(|e| RuntimeError::Stack(e.to_string()))?,
        ),
    };
    let xcore = xcore_wiring(cfg, stack.as_ref())?;
    let trace = TraceControl::new();
    if let Some(t) = &cfg.trace {
        let port = t
            .port
            .as_deref()
            .and_then(|n| ports.iter().find(|p| p.name == n))
            .map(|p| p.id);
        trace.arm(t.packets, port);
    }
    let tcp = tcp_lcores(cfg);
    let handoff = if tcp.len() > 1 {
        handoff::mesh(tcp.len(), cfg.stack.handoff_ring as usize)
            .map_err(|e| {
                RuntimeError::Stack(format!("tcp handoff between {} lcores: {e}", tcp.len()))
            })?
            .into_iter()
            .map(Some)
            .collect()
    } else {
        Vec::new()
    };
    Ok(AppShared {
        handoff: Mutex::new(handoff),
        ports: ports.to_vec(),
        stack,
        trace,
        pktgen,
        pools: kept_pools,
        http: match &cfg.app {
            AppConfig::Http(h) => Some(Arc::new(
                http::load_site(h).map_err(|e| RuntimeError::Stack(format!("http: {e}")))?,
            )),
            _ => None,
        },
        xcore,
    })
}

/// Builds lcore `lcore`'s stage for the configured application.
pub fn make_stage(
    cfg: &Config,
    shared: &AppShared,
    lcore: u32,
) -> Result<Box<dyn Stage>, RuntimeError> {
    let ports = &shared.ports;
    match &cfg.app {
        AppConfig::L2fwd(c) => {
            let mode = match c.mode {
                FwdMode::Io => l2fwd::Mode::Io,
                FwdMode::Macswap => l2fwd::Mode::MacSwap,
                FwdMode::Mac => l2fwd::Mode::Mac,
            };
            let by_name = |n: &str| ports.iter().find(|p| p.name == n);
            let peer_mac = |n: &str| {
                c.peer_macs
                    .iter()
                    .find(|(p, _)| p == n)
                    .map(|(_, m)| MacAddr(*m))
                    .unwrap_or_default()
            };
            let mut routes = vec![None; ports.len()];
            for (a, b) in &c.pairs {
                let (Some(pa), Some(pb)) = (by_name(a), by_name(b)) else {
                    continue; // validation guarantees both exist
                };
                for (from, to) in [(pa, pb), (pb, pa)] {
                    routes[from.id as usize] = Some(l2fwd::Route {
                        dst_port: to.id,
                        src_mac: to.mac,
                        dst_mac: peer_mac(&to.name),
                    });
                }
            }
            Ok(Box::new(l2fwd::L2fwd::new(mode, routes)))
        }
        AppConfig::Pktgen(_) => {
            let shared_pg = shared
                .pktgen
                .clone()
                .expect("prepare() builds the pktgen state for pktgen");
            let lc =
                cfg.lcores.iter().find(|l| l.id == lcore).ok_or_else(|| {
                    RuntimeError::Stack(format!("no lcore {lcore} in the config"))
                })?;
            Ok(Box::new(pktgen::Pktgen::new(
                shared_pg,
                lc,
                ports,
                &shared.pools,
            )?))
        }
        AppConfig::L3fwd(_)
        | AppConfig::UdpEcho(_)
        | AppConfig::TcpEcho(_)
        | AppConfig::Http(_) => {
            let env = shared
                .stack
                .as_ref()
                .expect("prepare() builds the stack for stack apps");
            let udp = match &cfg.app {
                AppConfig::UdpEcho(e) => UdpApps {
                    bindings: vec![UdpBinding {
                        port: e.port,
                        addr: e.address,
                        node: "udp-echo".into(),
                    }],
                    apps: vec![("udp-echo".into(), Box::new(UdpEcho))],
                },
                _ => UdpApps::default(),
            };
            if let Some(x) = &shared.xcore {
                let links = x.endpoints.lock().map(|mut m| m.remove(&lcore));
                if let Ok(Some(links)) = links {
                    // An app lcore: the application over its links to the stack lcores.
                    let ep = xcore::XcoreEndpoint::new(x.params, x.pool.clone(), links);
                    let app: Box<dyn xcore::XcoreApp> = match &cfg.app {
                        AppConfig::Http(h) => Box::new(http::XcoreHttp::new(
                            http_site(shared),
                            http_limits(h),
                            ep.links(),
                            x.params.max_sockets,
                        )),
                        _ => Box::new(xcore::XcoreEcho::default()),
                    };
                    return Ok(Box::new(xcore::XcoreStage::new(ep, app)));
                }
            }
            let tcp = match (&cfg.app, &shared.xcore) {
                // A stack lcore of an app running on app lcores: the bridge is its TCP app.
                (AppConfig::TcpEcho(_) | AppConfig::Http(_), Some(x)) => {
                    let links = x
                        .bridges
                        .lock()
                        .ok()
                        .and_then(|mut m| m.remove(&lcore))
                        .unwrap_or_default();
                    let e = tcp_server(cfg).expect("tcp-echo and http have TCP options");
                    let mut apps = tcp_echo_apps(e);
                    apps.apps = vec![Box::new(xcore::XcoreBridge::new(
                        x.params,
                        x.pool.clone(),
                        links,
                    ))];
                    apps
                }
                (AppConfig::TcpEcho(e), None) => tcp_echo_apps(e),
                (AppConfig::Http(h), None) => {
                    let mut apps = tcp_echo_apps(&h.tcp);
                    apps.apps = vec![Box::new(http::HttpServer::new(
                        http_site(shared),
                        http_limits(h),
                        h.tcp.max_connections as usize,
                    ))];
                    apps
                }
                _ => TcpApps::default(),
            };
            let mut tcp = tcp;
            if let Some(i) = tcp_lcores(cfg).iter().position(|&l| l == lcore) {
                let mut mesh = shared.handoff.lock().unwrap_or_else(|e| e.into_inner());
                tcp.handoff = mesh.get_mut(i).and_then(Option::take);
            }
            let graph = build_graph_with_tcp(env, lcore, udp, tcp, &cfg.acls, shared.trace.clone())
                .map_err(|e| RuntimeError::Stack(e.to_string()))?;
            Ok(Box::new(GraphStage::new(graph)))
        }
    }
}

/// The lcores that run TCP applications (connections and listeners), in config order: every
/// lcore of `tcp-echo` and `http` but their `app_lcores`, none otherwise (other stack apps
/// only answer resets, which needs no per-flow state). With two or more, flows are steered
/// between them by `tcp-handoff`.
pub fn tcp_lcores(cfg: &Config) -> Vec<u32> {
    match tcp_server(cfg) {
        // App lcores (`app_lcores`) run the application, not the stack.
        Some(e) => cfg
            .lcores
            .iter()
            .map(|l| l.id)
            .filter(|id| !e.app_lcores.contains(id))
            .collect(),
        None => Vec::new(),
    }
}

/// The site `prepare()` loaded for `http`.
fn http_site(shared: &AppShared) -> Arc<http::Site> {
    shared
        .http
        .clone()
        .expect("prepare() loads the site for http")
}

/// The per-connection limits of an `http` config.
fn http_limits(h: &HttpConfig) -> http::HttpLimits {
    http::HttpLimits {
        max_head: h.max_request_head as usize,
        ..http::HttpLimits::default()
    }
}

/// The TCP side of `tcp-echo`: one echo app listening on every configured port.
pub fn tcp_echo_apps(e: &TcpEchoConfig) -> TcpApps {
    let cfg = TcpConfig {
        send_buffer: e.send_buffer as usize,
        recv_buffer: e.recv_buffer as usize,
        max_ooo_bytes: e.recv_buffer as usize,
        // As large as the interfaces and pools allow (MTU − 40; `build_tcp_layer` clamps it),
        // as Linux derives the MSS from the route's MTU.
        mss: u16::MAX,
        nodelay: e.nodelay,
        congestion: match e.congestion {
            crate::config::TcpCongestion::Newreno => CongestionAlgorithm::NewReno,
            crate::config::TcpCongestion::Cubic => CongestionAlgorithm::Cubic,
        },
        ..TcpConfig::default()
    };
    let addr = e.address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    TcpApps {
        cfg,
        params: LayerParams {
            max_connections: e.max_connections as usize,
            max_time_wait: e.max_time_wait as usize,
            backlog: e.backlog as usize,
            ..LayerParams::default()
        },
        apps: vec![Box::new(TcpEcho::default())],
        listen: e
            .ports
            .iter()
            .map(|&p| (std::net::SocketAddrV4::new(addr, p), 0))
            .collect(),
        handoff: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};
    use crate::port::MacAddr;

    #[test]
    fn app_lcores_get_one_link_per_stack_lcore_and_back() {
        for app in [
            "name = \"tcp-echo\"\napp_lcores = [2, 4]",
            "name = \"http\"\napp_lcores = [2, 4]\n[[app.routes]]\npath = \"/\"\nbody = \"hi\"",
        ] {
            links_for(app);
        }
    }

    fn links_for(app: &str) {
        let cfg = crate::config::parse(&format!(
            r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
tx_queues = 2
ipv4 = ["198.18.0.1/24"]
[[ports]]
name = "p1"
driver = "null"
tx_queues = 2
ipv4 = ["198.18.1.1/24"]
[[lcores]]
id = 1
rx = ["p0"]
[[lcores]]
id = 2
[[lcores]]
id = 3
rx = ["p1"]
[[lcores]]
id = 4
[metrics]
enabled = false
[app]
{app}
"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tcp_lcores(&cfg), vec![1, 3], "{app}");
        let mut p = MempoolParams::new("t", 1024);
        p.huge = HugePolicy::Off;
        let pool = Mempool::new(&p).unwrap();
        let ports: Vec<PortInfo> = (0..2)
            .map(|i| PortInfo {
                name: format!("p{i}"),
                id: i,
                driver: "null",
                rx_queues: 1,
                tx_queues: 2,
                tx_l4_checksum_offload: false,
                mac: MacAddr([2, 0, 0, 0, 0, i as u8 + 1]),
                mtu: 1500,
            })
            .collect();
        let shared = prepare(&cfg, &ports, vec![pool.clone(), pool]).unwrap();
        {
            let x = shared.xcore.as_ref().expect("app_lcores set up rings");
            let b = x.bridges.lock().unwrap();
            let e = x.endpoints.lock().unwrap();
            let mut bk: Vec<_> = b.iter().map(|(k, v)| (*k, v.len())).collect();
            let mut ek: Vec<_> = e.iter().map(|(k, v)| (*k, v.len())).collect();
            bk.sort();
            ek.sort();
            assert_eq!(bk, vec![(1, 2), (3, 2)]);
            assert_eq!(ek, vec![(2, 2), (4, 2)]);
        }
        // Stack lcores run the graph (with the bridge), app lcores the endpoint and the
        // application, reported as one `xcore-app` node.
        for (lcore, graph) in [(1, true), (2, false), (3, true), (4, false)] {
            let stage = make_stage(&cfg, &shared, lcore).unwrap();
            let nodes: Vec<String> = stage
                .graph_monitor()
                .expect("every stack app stage has counters")
                .stats()
                .into_iter()
                .map(|n| n.node)
                .collect();
            assert_eq!(nodes.iter().any(|n| n == "tcp-input"), graph, "{lcore}");
            assert_eq!(
                nodes == [xcore::XCORE_APP_NODE],
                !graph,
                "lcore {lcore}: {nodes:?}"
            );
        }
        let x = shared.xcore.as_ref().unwrap();
        assert!(x.bridges.lock().unwrap().is_empty());
        assert!(x.endpoints.lock().unwrap().is_empty());
    }
}
