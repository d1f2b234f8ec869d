//! `eth-input`: the first node of the stack (Linux: `netif_receive_skb` → `packet_type`
//! dispatch). Filters by destination MAC, reads an optional 802.1Q tag, initialises the packet
//! metadata, strips the Ethernet header and dispatches on the EtherType.

use std::sync::Arc;

use super::names;
use crate::batch::Burst;
use crate::graph::{meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::port::MacAddr;
use crate::stack::StackEnv;
use crate::wire::ethertype;

const TO_IPV4: usize = 0;
const TO_ARP: usize = 1;

/// The Ethernet input node.
pub struct EthInput {
    /// MAC per port id (broadcast for ports that are not L3 interfaces: never matched).
    macs: Vec<MacAddr>,
    promiscuous: Vec<bool>,
    runt: DropId,
    not_for_us: DropId,
    unknown_type: DropId,
    vlan: DropId,
}

impl EthInput {
    /// A node for the interfaces of `env`.
    pub fn new(env: &Arc<StackEnv>) -> Self {
        let n = env.pools.len();
        let mut macs = vec![MacAddr::BROADCAST; n];
        let mut promiscuous = vec![false; n];
        for i in env.fib.interfaces() {
            if let Some(m) = macs.get_mut(i.port as usize) {
                *m = i.mac;
                promiscuous[i.port as usize] = i.promiscuous;
            }
        }
        EthInput {
            macs,
            promiscuous,
            runt: DropId::placeholder(),
            not_for_us: DropId::placeholder(),
            unknown_type: DropId::placeholder(),
            vlan: DropId::placeholder(),
        }
    }
}

impl Node for EthInput {
    fn next_nodes(&self) -> Vec<String> {
        vec![names::IPV4_INPUT.into(), names::ARP.into()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        self.runt = ctx.drop_reason("runt");
        self.not_for_us = ctx.drop_reason("not_for_us");
        self.unknown_type = ctx.drop_reason("unknown_ethertype");
        self.vlan = ctx.drop_reason("vlan_not_configured");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        let mut i = 0;
        pkts.drain_front(n, |mut m| {
            i += 1;
            let d = m.data();
            if d.len() < 14 {
                ctx.drop(self.runt, m);
                return;
            }
            let port = m.port();
            let dst = MacAddr([d[0], d[1], d[2], d[3], d[4], d[5]]);
            let ours = self.macs.get(port as usize).is_some_and(|mac| *mac == dst);
            let group = dst.is_multicast();
            if !ours
                && !group
                && !self
                    .promiscuous
                    .get(port as usize)
                    .copied()
                    .unwrap_or(false)
            {
                crate::trace_pkt!(ctx, &m, "dst {dst} is not ours → drop");
                ctx.drop(self.not_for_us, m);
                return;
            }
            let mut etype = u16::from_be_bytes([d[12], d[13]]);
            let mut l2 = 14;
            let mut vid = 0;
            if ethertype::is_vlan(etype) {
                if d.len() < 18 {
                    ctx.drop(self.runt, m);
                    return;
                }
                vid = u16::from_be_bytes([d[14], d[15]]) & 0x0fff;
                etype = u16::from_be_bytes([d[16], d[17]]);
                l2 = 18;
                // Priority-tagged frames (VID 0) are plain frames; VLAN sub-interfaces are not
                // configured, so any other VID is not for us.
                if vid != 0 || ethertype::is_vlan(etype) {
                    ctx.drop(self.vlan, m);
                    return;
                }
            }
            let trace_id = crate::graph::meta(&m).trace_id;
            *meta_mut(&mut m) = PktMeta {
                rx_port: port,
                tx_port: u16::MAX,
                l2_len: l2 as u8,
                vlan: vid,
                flags: if group { PktMeta::F_L2_MULTICAST } else { 0 },
                trace_id,
                ..PktMeta::default()
            };
            m.adj(l2);
            match etype {
                ethertype::IPV4 => {
                    crate::trace_pkt!(ctx, &m, "type 0x0800 → {}", names::IPV4_INPUT);
                    ctx.enqueue(TO_IPV4, m);
                }
                ethertype::ARP => {
                    crate::trace_pkt!(ctx, &m, "type 0x0806 → {}", names::ARP);
                    ctx.enqueue(TO_ARP, m);
                }
                other => {
                    crate::trace_pkt!(ctx, &m, "type 0x{other:04x} unknown → drop");
                    ctx.drop(self.unknown_type, m);
                }
            }
        });
    }
}
