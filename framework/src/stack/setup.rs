//! From a validated config to a running stack: the shared [`StackEnv`] (built once) and one
//! graph per lcore (built on each).

use std::collections::HashMap;
use std::sync::Arc;

use super::nodes::{self, names, UdpApp, UdpBinding};
use super::{Fib, FibError, HopKind, IfAddr, Interface, NeighTable, Route, StackEnv, StackParams};
use crate::config::{AclConfig, Config, RouteAction};
use crate::graph::{Graph, GraphBuilder, GraphError, TraceControl};
use crate::mem::Mempool;
use crate::port::{MacAddr, PortInfo};

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

/// Builds one lcore's stack graph: every stack node, the application's UDP nodes, and the ACLs
/// spliced onto their edges. The entry is `eth-input`.
pub fn build_graph(
    env: &Arc<StackEnv>,
    lcore: u32,
    udp: UdpApps,
    acls: &[AclConfig],
    trace: Arc<TraceControl>,
) -> Result<Graph, GraphError> {
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
        .add(names::TX, Box::new(nodes::Tx))
        .add(names::ICMP_INPUT, Box::new(nodes::IcmpInput::new(env)))
        .add(names::ICMP_ERROR, Box::new(nodes::IcmpError::new(env)))
        .add(
            names::UDP_INPUT,
            Box::new(nodes::UdpInput::new(env, udp.bindings)),
        )
        .add(names::UDP_OUTPUT, Box::new(nodes::UdpOutput::new(env)));
    for (name, app) in udp.apps {
        b.add(&name, Box::new(nodes::UdpAppNode::new(env, app)));
    }
    for acl in acls {
        let name = format!("acl-{}", acl.name);
        b.add(&name, Box::new(nodes::Acl::new(acl)));
        b.splice(&acl.on.0, &acl.on.1, &name);
    }
    b.build(lcore, names::ETH_INPUT, trace)
}
