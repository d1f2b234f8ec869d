//! Turning a validated [`Config`] into pools, ports and lcores.

use std::collections::HashMap;

use super::idle::IdlePolicy;
use super::io::LcoreIo;
use super::lcore::Lcore;
use super::Runtime;
use crate::app;
use crate::config::{self, Config, DriverConfig, HugePages};
use crate::mem::{HugePolicy, Mempool, MempoolError, MempoolParams};
use crate::port::af_packet::{AfPacketConfig, AfPacketPort};
use crate::port::af_xdp::{AfXdpConfig, AfXdpPort, XdpMode, ZeroCopy};
use crate::port::null::{NullConfig, NullPort};
use crate::port::pcap::{PcapConfig, PcapPort};
use crate::port::ring::{RingPort, RingSide};
use crate::port::tap::{TapConfig, TapPort};
use crate::port::{MacAddr, Port, PortError, TxQueue};

/// Why a runtime could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A pool could not be created.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// A port could not be opened or a queue taken.
    #[error(transparent)]
    Port(#[from] PortError),
    /// An lcore thread failed.
    #[error("lcore: {0}")]
    Thread(String),
    /// The stack (routes, graph) could not be set up.
    #[error("stack: {0}")]
    Stack(String),
}

fn huge_policy(h: HugePages) -> HugePolicy {
    match h {
        HugePages::Auto => HugePolicy::Auto,
        HugePages::Required => HugePolicy::Required,
        HugePages::Off => HugePolicy::Off,
    }
}

/// Converts the config's idle policy.
pub(crate) fn idle_policy(p: &config::IdlePolicy) -> IdlePolicy {
    match *p {
        config::IdlePolicy::Busy => IdlePolicy::Busy,
        config::IdlePolicy::Adaptive {
            spin_turns,
            max_sleep_us,
        } => IdlePolicy::Adaptive {
            spin_turns,
            max_sleep_us,
        },
    }
}

pub(super) fn build(cfg: &Config) -> Result<Runtime, RuntimeError> {
    let mut pools = HashMap::new();
    let mut pool_list = Vec::new();
    for p in &cfg.memory.pools {
        let mp = Mempool::new(&MempoolParams {
            name: p.name.clone(),
            mbufs: p.mbufs,
            data_room: p.data_room,
            headroom: p.headroom,
            cache_size: p.cache_size,
            huge: huge_policy(cfg.memory.huge_pages),
            hugetlbfs: cfg.memory.hugetlbfs.clone(),
        })?;
        pools.insert(p.name.clone(), mp.clone());
        pool_list.push(mp);
    }

    let ids: HashMap<&str, u16> = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i as u16))
        .collect();
    let mut ports: Vec<Option<Box<dyn Port>>> = (0..cfg.ports.len()).map(|_| None).collect();
    for (i, p) in cfg.ports.iter().enumerate() {
        if ports[i].is_some() {
            continue; // second half of a ring pair, built with the first
        }
        let id = i as u16;
        let pool = pools[&p.pool].clone();
        let mac = MacAddr(p.mac.unwrap_or_default());
        match &p.driver {
            DriverConfig::Null { size, template } => {
                ports[i] = Some(Box::new(NullPort::new(NullConfig {
                    name: p.name.clone(),
                    id,
                    pool,
                    size: *size,
                    template: template.clone(),
                    rx_queues: p.rx_queues,
                    tx_queues: p.tx_queues,
                    mac,
                    mtu: p.mtu,
                })?));
            }
            DriverConfig::Ring { peer, depth, .. } => {
                let side = |pc: &config::PortConfig, id: u16| RingSide {
                    name: pc.name.clone(),
                    id,
                    rx_queues: pc.rx_queues,
                    tx_queues: pc.tx_queues,
                    mac: MacAddr(pc.mac.unwrap_or_default()),
                    mtu: pc.mtu,
                    tx_l4_checksum_offload: matches!(
                        pc.driver,
                        DriverConfig::Ring {
                            checksum_offload: true,
                            ..
                        }
                    ),
                };
                if *peer == p.name {
                    ports[i] = Some(Box::new(RingPort::loopback(side(p, id), *depth as usize)?));
                } else {
                    let j = ids[peer.as_str()] as usize;
                    let (a, b) = RingPort::pair(
                        side(p, id),
                        side(&cfg.ports[j], j as u16),
                        *depth as usize,
                    )?;
                    ports[i] = Some(Box::new(a));
                    ports[j] = Some(Box::new(b));
                }
            }
            DriverConfig::Pcap { rx, tx, repeat } => {
                ports[i] = Some(Box::new(PcapPort::open(PcapConfig {
                    name: p.name.clone(),
                    id,
                    pool,
                    rx: rx.clone(),
                    tx: tx.clone(),
                    repeat: *repeat,
                    mac,
                    mtu: p.mtu,
                })?));
            }
            DriverConfig::AfPacket {
                iface,
                qdisc_bypass,
                block_size,
                blocks,
                tx_frames,
            } => {
                let mut ac = AfPacketConfig::new(&p.name, id, pool, iface);
                ac.rx_queues = p.rx_queues;
                ac.tx_queues = p.tx_queues;
                ac.mtu = p.mtu;
                ac.mac = p.mac.map(MacAddr);
                ac.qdisc_bypass = *qdisc_bypass;
                ac.block_size = *block_size;
                ac.blocks = *blocks;
                ac.tx_frames = *tx_frames;
                ac.promiscuous = p.promiscuous;
                ports[i] = Some(Box::new(AfPacketPort::open(ac)?));
            }
            DriverConfig::AfXdp {
                iface,
                queue,
                mode,
                zero_copy,
                ring_size,
            } => {
                let mut xc = AfXdpConfig::new(&p.name, id, pool, iface);
                xc.queue_base = *queue;
                xc.rx_queues = p.rx_queues;
                xc.tx_queues = p.tx_queues;
                xc.mtu = p.mtu;
                xc.mac = p.mac.map(MacAddr);
                xc.mode = match mode {
                    config::XdpMode::Auto => XdpMode::Auto,
                    config::XdpMode::Native => XdpMode::Native,
                    config::XdpMode::Generic => XdpMode::Generic,
                };
                xc.zero_copy = match zero_copy {
                    config::ZeroCopy::Auto => ZeroCopy::Auto,
                    config::ZeroCopy::On => ZeroCopy::On,
                    config::ZeroCopy::Off => ZeroCopy::Off,
                };
                xc.ring_size = *ring_size;
                ports[i] = Some(Box::new(AfXdpPort::open(xc)?));
            }
            DriverConfig::Tap { iface, up } => {
                let mut tc = TapConfig::new(&p.name, id, pool, iface);
                tc.mtu = p.mtu;
                tc.up = *up;
                // Like a VM's NIC behind a tap: our side gets its own address, distinct from
                // the kernel side's, unless the config sets one.
                let [hi, lo] = id.to_be_bytes();
                tc.mac = Some(
                    p.mac
                        .map_or(MacAddr([0x02, 0x66, 0x70, 0x00, hi, lo]), MacAddr),
                );
                ports[i] = Some(Box::new(TapPort::open(tc)?));
            }
        }
    }
    let mut ports: Vec<Box<dyn Port>> = ports
        .into_iter()
        .map(|p| p.expect("every port was built"))
        .collect();

    let infos: Vec<_> = ports.iter().map(|p| p.info().clone()).collect();
    let port_pools: Vec<Mempool> = cfg.ports.iter().map(|p| pools[&p.pool].clone()).collect();
    let shared = app::prepare(cfg, &infos, port_pools)?;
    let mut lcores = Vec::new();
    for lc in &cfg.lcores {
        let mut rx = Vec::new();
        for q in &lc.rx {
            let pid = ids[q.port.as_str()];
            rx.push((pid, ports[pid as usize].take_rx_queue(q.queue)?));
        }
        let mut tx: Vec<Option<Box<dyn TxQueue>>> = (0..ports.len()).map(|_| None).collect();
        for q in &lc.tx {
            let pid = ids[q.port.as_str()];
            let mut queue = ports[pid as usize].take_tx_queue(q.queue)?;
            if let Some(imp) = &cfg.ports[pid as usize].impair {
                let wrapped = crate::port::impair::ImpairTx::new(
                    queue,
                    crate::port::impair::Impairment {
                        drop_every: imp.drop_every,
                        dup_every: imp.dup_every,
                        swap_every: imp.swap_every,
                        max_pps: imp.max_pps.map(|r| r as f64),
                    },
                    pools[&cfg.ports[pid as usize].pool].clone(),
                );
                if let Some(pg) = shared.pktgen() {
                    pg.add_impair(pid, q.queue, wrapped.counters());
                }
                queue = Box::new(wrapped);
            }
            tx[pid as usize] = Some(queue);
        }
        let stage = app::make_stage(cfg, &shared, lc.id)?;
        lcores.push(Lcore::new(
            lc.id,
            lc.cpu,
            rx,
            LcoreIo::new(tx),
            stage,
            cfg.run.burst as usize,
            idle_policy(&cfg.run.idle),
        ));
    }
    Ok(Runtime {
        pools: pool_list,
        ports,
        lcores,
        trace: Some(shared.trace().clone()),
        pktgen: shared.pktgen().cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Runtime;

    #[test]
    fn a_ring_side_offers_checksum_offload_only_when_configured() {
        let text = r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "default"
mbufs = 512
[[ports]]
name = "r0"
driver = "ring"
peer = "r1"
checksum_offload = true
[[ports]]
name = "r1"
driver = "ring"
peer = "r0"
[[lcores]]
id = 1
rx = ["r0:0", "r1:0"]
[app]
name = "l2fwd"
mode = "io"
pairs = [["r0", "r1"]]
[metrics]
enabled = false
"#;
        let cfg = crate::config::parse(text).unwrap();
        let rt = Runtime::from_config(&cfg).unwrap();
        let offload: Vec<_> = rt
            .ports
            .iter()
            .map(|p| (p.info().name.clone(), p.info().tx_l4_checksum_offload))
            .collect();
        assert_eq!(offload, [("r0".into(), true), ("r1".into(), false)]);
    }
}
