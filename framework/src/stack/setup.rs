//! From a validated config to a running stack: the shared [`StackEnv`] (built once) and one
//! graph per lcore (built on each).

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, OnceLock};

use super::nodes::{self, names, UdpApp, UdpBinding};
use super::tcp::{Handoff, LayerParams, TcpApp, TcpLayer};
use super::{Fib, FibError, HopKind, IfAddr, Interface, NeighTable, Route, StackEnv, StackParams};
use crate::config::{AclConfig, Config, RouteAction};
use crate::graph::{Graph, GraphBuilder, GraphError, TraceControl};
use crate::mem::Mempool;
use crate::port::{MacAddr, PortInfo};
use crate::tcp::{IsnGenerator, TcpConfig};

/// Converts `[stack]` to node parameters.
pub fn params_from_config(cfg: &Config) -> StackParams {
    let s = &cfg.stack;
    StackParams {
        arp_timeout_ns: s.arp_timeout.as_nanos() as u64,
        arp_retries: s.arp_retries,
        arp_hold: s.arp_hold,
        arp_retry_ns: 1_000_000_000,
        reassembly_timeout_ns: s.reassembly_timeout.as_nanos() as u64,
        reassembly_max: s.reassembly_max,
        reassembly_max_frags: s.reassembly_max_frags,
        icmp_rate: s.icmp_rate,
        icmp_burst: s.icmp_burst,
        ttl: s.ttl,
    }
}

/// Builds the shared stack state: interfaces from the ports' addresses, the FIB from connected
/// subnets and `[[routes]]`, the neighbour table with the static `[[neighbours]]`.
/// `pools[i]` is the pool of port `i` (used to build ARP, ICMP and fragments for that port).
pub fn env_from_config(
    cfg: &Config,
    ports: &[PortInfo],
    pools: Vec<Mempool>,
) -> Result<Arc<StackEnv>, FibError> {
    let ids: HashMap<&str, u16> = ports.iter().map(|p| (p.name.as_str(), p.id)).collect();
    let interfaces: Vec<Interface> = cfg
        .ports
        .iter()
        .zip(ports)
        .filter(|(pc, _)| !pc.ipv4.is_empty())
        .map(|(pc, info)| Interface {
            port: info.id,
            name: info.name.clone(),
            mac: info.mac,
            mtu: info.mtu,
            addrs: pc
                .ipv4
                .iter()
                .map(|c| IfAddr {
                    addr: c.addr,
                    prefix_len: c.prefix_len,
                })
                .collect(),
            promiscuous: pc.promiscuous,
            tx_l4_checksum_offload: info.tx_l4_checksum_offload,
        })
        .collect();
    let routes: Vec<Route> = cfg
        .routes
        .iter()
        .map(|r| Route {
            prefix: r.prefix.addr,
            prefix_len: r.prefix.prefix_len,
            kind: match r.action {
                RouteAction::Forward => HopKind::Forward,
                RouteAction::Drop => HopKind::Drop,
                RouteAction::Reject => HopKind::Reject,
            },
            port: r.port.as_deref().and_then(|p| ids.get(p).copied()),
            via: r.via.clone(),
        })
        .collect();
    let fib = Fib::new(interfaces, &routes)?;
    let params = params_from_config(cfg);
    let neigh = NeighTable::new(cfg.stack.neighbours_max as usize, params.arp_timeout_ns);
    for n in &cfg.neighbours {
        if let Some(&port) = ids.get(n.port.as_str()) {
            neigh.add_static(port, n.ip, MacAddr(n.mac));
        }
    }
    Ok(StackEnv::new(fib, neigh, pools, params))
}

/// The UDP side of an application: which ports are bound to which app nodes.
#[derive(Default)]
pub struct UdpApps {
    /// Socket bindings (port, optional address, node name).
    pub bindings: Vec<UdpBinding>,
    /// App nodes to add, by name.
    pub apps: Vec<(String, Box<dyn UdpApp>)>,
}

/// The TCP side of an application: the engine config of its connections, the lcore's table
/// limits, its apps, and which local addresses they listen on.
pub struct TcpApps {
    /// Parameters of every connection (MSS, buffers, congestion control...).
    pub cfg: TcpConfig,
    /// Table limits, backlog, ephemeral ports.
    pub params: LayerParams,
    /// The applications (callbacks run on this lcore).
    pub apps: Vec<Box<dyn TcpApp>>,
    /// Listening addresses (0.0.0.0: all of ours) and the index of the app in `apps`.
    pub listen: Vec<(SocketAddrV4, usize)>,
    /// This lcore's end of the flow steering between several TCP lcores ([`super::tcp::mesh`]):
    /// adds the `tcp-handoff` node and steers active opens ([`LayerParams::rss`]). None with a
    /// single TCP lcore.
    pub handoff: Option<Handoff>,
}

impl Default for TcpApps {
    /// No applications: the layer only answers resets (and has room for a few connections).
    fn default() -> Self {
        TcpApps {
            cfg: TcpConfig::default(),
            params: LayerParams {
                max_connections: 16,
                max_time_wait: 16,
                backlog: 4,
                ..LayerParams::default()
            },
            apps: Vec::new(),
            listen: Vec::new(),
            handoff: None,
        }
    }
}

/// A random 64-bit value from the standard library's per-process hasher keys (start-up only).
fn random_u64(salt: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u64(crate::runtime::tsc::monotonic_ns());
    h.finish()
}

/// The secret of RFC 6528 ISNs, one per process so every lcore computes the same values.
fn isn_key() -> [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&random_u64(1).to_le_bytes());
        k[8..].copy_from_slice(&random_u64(2).to_le_bytes());
        k
    })
}

/// The largest MSS every interface and pool of `env` can carry: interface MTU − 40, and 100
/// bytes (IPv4, TCP header, options) below the smallest pool's data room.
pub fn mss_limit(env: &StackEnv) -> u16 {
    let mtu = env
        .fib
        .interfaces()
        .iter()
        .map(|i| i.mtu as usize)
        .min()
        .unwrap_or(1500);
    let room = env
        .pools
        .iter()
        .map(|p| p.data_room() as usize)
        .min()
        .unwrap_or(2048);
    mtu.saturating_sub(40)
        .min(room.saturating_sub(100))
        .clamp(88, u16::MAX as usize) as u16
}

/// Builds one lcore's TCP layer from `tcp` (MSS clamped to [`mss_limit`]; with a handoff,
/// active opens steered to this lcore).
pub fn build_tcp_layer(env: &Arc<StackEnv>, lcore: u32, tcp: TcpApps) -> TcpLayer {
    let mut cfg = tcp.cfg;
    cfg.mss = cfg.mss.min(mss_limit(env));
    let mut params = tcp.params;
    if let Some(h) = &tcp.handoff {
        params.rss = Some(h.steer());
    }
    let mut layer = TcpLayer::new(
        cfg,
        params,
        IsnGenerator::new(isn_key()),
        nodes::tcp::source_from_env(env),
        random_u64(0x100 + lcore as u64),
        crate::runtime::tsc::monotonic_ns(),
    );
    let ids: Vec<_> = tcp.apps.into_iter().map(|a| layer.add_app(a)).collect();
    for (addr, app) in tcp.listen {
        if let Some(&id) = ids.get(app) {
            // Duplicates were rejected by config validation; a second one is ignored.
            let _ = layer.listen(addr, id);
        }
    }
    layer
}

/// Builds one lcore's stack graph: every stack node, the application's UDP nodes, and the ACLs
/// spliced onto their edges. The entry is `eth-input`. TCP answers resets only (see
/// [`build_graph_with_tcp`]).
pub fn build_graph(
    env: &Arc<StackEnv>,
    lcore: u32,
    udp: UdpApps,
    acls: &[AclConfig],
    trace: Arc<TraceControl>,
) -> Result<Graph, GraphError> {
    build_graph_with_tcp(env, lcore, udp, TcpApps::default(), acls, trace)
}

/// [`build_graph`] with TCP applications in the `tcp-input` node (and, with
/// [`TcpApps::handoff`], the `tcp-handoff` node in front of it).
pub fn build_graph_with_tcp(
    env: &Arc<StackEnv>,
    lcore: u32,
    udp: UdpApps,
    mut tcp: TcpApps,
    acls: &[AclConfig],
    trace: Arc<TraceControl>,
) -> Result<Graph, GraphError> {
    let handoff = tcp.handoff.take();
    if let Some(h) = &handoff {
        tcp.params.rss = Some(h.steer());
    }
    let layer = build_tcp_layer(env, lcore, tcp);
    let mut b = GraphBuilder::new();
    b.add(names::ETH_INPUT, Box::new(nodes::EthInput::new(env)))
        .add(names::ARP, Box::new(nodes::Arp::new(env)))
        .add(names::IPV4_INPUT, Box::new(nodes::Ipv4Input::new(env)))
        .add(names::IPV4_LOOKUP, Box::new(nodes::Ipv4Lookup::new(env)))
        .add(names::IPV4_FORWARD, Box::new(nodes::Ipv4Forward::new()))
        .add(names::IPV4_LOCAL, Box::new(nodes::Ipv4Local::new()))
        .add(
            names::IPV4_REASSEMBLY,
            Box::new(nodes::Ipv4Reassembly::new(env)),
        )
        .add(names::IPV4_OUTPUT, Box::new(nodes::Ipv4Output::new(env)))
        .add(names::IPV4_REWRITE, Box::new(nodes::Ipv4Rewrite::new(env)))
        .add(names::TX, Box::new(nodes::Tx::new(env)))
        .add(names::ICMP_INPUT, Box::new(nodes::IcmpInput::new(env)))
        .add(names::ICMP_ERROR, Box::new(nodes::IcmpError::new(env)))
        .add(
            names::UDP_INPUT,
            Box::new(nodes::UdpInput::new(env, udp.bindings)),
        )
        .add(names::UDP_OUTPUT, Box::new(nodes::UdpOutput::new(env)))
        .add(names::TCP_INPUT, Box::new(nodes::TcpInput::new(env, layer)));
    for (name, app) in udp.apps {
        b.add(&name, Box::new(nodes::UdpAppNode::new(env, app)));
    }
    // The node feeding tcp-input: ipv4-local, or the last ACL spliced onto that edge.
    let mut tcp_feeder = names::IPV4_LOCAL.to_string();
    for acl in acls {
        let name = format!("acl-{}", acl.name);
        b.add(&name, Box::new(nodes::Acl::new(acl)));
        b.splice(&acl.on.0, &acl.on.1, &name);
        if acl.on.1 == names::TCP_INPUT && acl.on.0 == tcp_feeder {
            tcp_feeder = name;
        }
    }
    if let Some(h) = handoff {
        b.add(names::TCP_HANDOFF, Box::new(nodes::TcpHandoff::new(h)));
        b.splice(&tcp_feeder, names::TCP_INPUT, names::TCP_HANDOFF);
    }
    b.build(lcore, names::ETH_INPUT, trace)
}
