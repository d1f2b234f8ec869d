//! `arp`: answers ARP requests for our addresses, learns neighbours, and resolves next hops for
//! packets `ipv4-rewrite` could not send (Linux: `arp_rcv` / `arp_process`, `neigh_resolve_output`
//! with the `unres_qlen` queue, `neigh_timer_handler`).
//!
//! Two kinds of input arrive: ARP frames from `eth-input` (data at the ARP header), and IPv4
//! packets flagged `F_NEEDS_ARP` (data at the IP header). The latter are held, a bounded number
//! per neighbour, while requests go out (rate-limited across lcores by the shared table); when
//! the neighbour answers they go back to `ipv4-rewrite`, and after `arp_retries` unanswered
//! requests they are dropped as `neighbour_unreachable` (forwarded ones with an ICMP host
//! unreachable). Maintenance (retries, refreshing stale entries in use, the gratuitous ARP at
//! start) runs in `poll` at most every 10 ms.

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::ipv4_route::set_icmp_error;
use super::names;
use crate::batch::Burst;
use crate::graph::{meta, meta_mut, DropId, InitCtx, Node, NodeCtx, PktMeta};
use crate::mem::Mbuf;
use crate::port::MacAddr;
use crate::stack::{NeighId, NeighState, StackEnv};
use crate::wire::{ethertype, icmpv4_code, icmpv4_type, ArpOperation, ArpPacket, WireError};

const TO_REWRITE: usize = 0;
const TO_ICMP_ERROR: usize = 1;
const TO_TX: usize = 2;

const MAINTENANCE_NS: u64 = 10_000_000;
/// Neighbour slots examined for refresh per maintenance run.
const SCAN_CHUNK: usize = 256;
/// Frame length of an ARP packet on Ethernet (padded to the 60-byte minimum).
const ARP_FRAME: usize = 60;

struct Held {
    id: NeighId,
    m: Mbuf,
}

/// The ARP node.
pub struct Arp {
    env: Arc<StackEnv>,
    held: Vec<Held>,
    /// Spare vector for [`Arp::sweep_held`] (as much room as `held`).
    sweep: Vec<Held>,
    hold_count: Vec<u8>,
    hold_limit: usize,
    last_maintenance: u64,
    /// [`NeighTable::resolutions`] when the held packets were last looked at.
    seen_resolutions: u64,
    scan_pos: usize,
    wire: [DropId; WireError::ALL.len()],
    not_for_us: DropId,
    replies: DropId,
    requests_answered: DropId,
    hold_full: DropId,
    table_full: DropId,
    unreachable: DropId,
    no_interface: DropId,
    alloc_failed: DropId,
    requests_sent: DropId,
}

impl Arp {
    /// A node for `env` (one per lcore).
    pub fn new(env: &Arc<StackEnv>) -> Self {
        let slots = env.neigh.capacity();
        let hold = env.params.arp_hold as usize;
        Arp {
            env: env.clone(),
            held: Vec::with_capacity((slots * hold).min(4096)),
            sweep: Vec::with_capacity((slots * hold).min(4096)),
            hold_count: vec![0; slots],
            hold_limit: (slots * hold).min(4096),
            last_maintenance: 0,
            seen_resolutions: 0,
            scan_pos: 0,
            wire: [DropId::placeholder(); WireError::ALL.len()],
            not_for_us: DropId::placeholder(),
            replies: DropId::placeholder(),
            requests_answered: DropId::placeholder(),
            hold_full: DropId::placeholder(),
            table_full: DropId::placeholder(),
            unreachable: DropId::placeholder(),
            no_interface: DropId::placeholder(),
            alloc_failed: DropId::placeholder(),
            requests_sent: DropId::placeholder(),
        }
    }

    /// Builds an ARP frame (`op`, from our `mac`/`ip` on `port`) to `eth_dst`, asking about or
    /// answering `target_ip`/`target_mac`.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        port: u16,
        op: ArpOperation,
        eth_dst: MacAddr,
        mac: MacAddr,
        ip: Ipv4Addr,
        target_mac: MacAddr,
        target_ip: Ipv4Addr,
    ) -> Option<Mbuf> {
        let mut m = self.env.pool(port).alloc()?;
        let b = m.append(ARP_FRAME)?;
        b.fill(0);
        b[0..6].copy_from_slice(&eth_dst.0);
        b[6..12].copy_from_slice(&mac.0);
        b[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        let mut a = ArpPacket::new_unchecked(&mut b[14..42]);
        a.set_hardware_type(1);
        a.set_protocol_type(ethertype::IPV4);
        a.set_hardware_len(6);
        a.set_protocol_len(4);
        a.set_operation(op.to_u16());
        a.set_sender_hardware_addr(mac);
        a.set_sender_protocol_addr(ip);
        a.set_target_hardware_addr(target_mac);
        a.set_target_protocol_addr(target_ip);
        m.set_port(port);
        *meta_mut(&mut m) = PktMeta {
            rx_port: port,
            tx_port: port,
            flags: PktMeta::F_LOCAL_ORIGIN,
            ..PktMeta::default()
        };
        Some(m)
    }

    /// Sends a broadcast request for `ip` on `port`.
    fn request(&self, ctx: &mut NodeCtx<'_>, port: u16, ip: Ipv4Addr) {
        let Some(ifc) = self.env.interface(port) else {
            return;
        };
        let Some(src) = ifc.source_for(ip) else {
            return;
        };
        match self.build(
            port,
            ArpOperation::Request,
            MacAddr::BROADCAST,
            ifc.mac,
            src,
            MacAddr([0; 6]),
            ip,
        ) {
            Some(req) => {
                ctx.count(self.requests_sent, 1);
                ctx.enqueue(TO_TX, req);
            }
            None => ctx.count(self.alloc_failed, 1),
        }
    }

    fn hold(&mut self, mut m: Mbuf, ctx: &mut NodeCtx<'_>) {
        let md = *meta(&m);
        let ip = Ipv4Addr::from(md.addr);
        let neigh = &self.env.neigh;
        let Some(id) = neigh.find_or_insert(md.tx_port, ip) else {
            ctx.drop(self.table_full, m);
            return;
        };
        if !matches!(neigh.state(id, ctx.now_ns()), NeighState::Incomplete) {
            // Resolved meanwhile (by another lcore): straight back to rewrite.
            meta_mut(&mut m).flags &= !PktMeta::F_NEEDS_ARP;
            ctx.enqueue(TO_REWRITE, m);
            return;
        }
        let count = &mut self.hold_count[id.0 as usize];
        if *count as usize >= self.env.params.arp_hold as usize
            || self.held.len() >= self.hold_limit
        {
            crate::trace_pkt!(ctx, &m, "hold queue for {ip} full → drop");
            ctx.drop(self.hold_full, m);
            return;
        }
        *count += 1;
        crate::trace_pkt!(ctx, &m, "holding for {ip} on port {}", md.tx_port);
        self.held.push(Held { id, m });
        if neigh.claim_request(id, ctx.now_ns(), self.env.params.arp_retry_ns) {
            self.request(ctx, md.tx_port, ip);
        }
    }

    fn input(&mut self, mut m: Mbuf, ctx: &mut NodeCtx<'_>) {
        let port = meta(&m).rx_port;
        let a = match ArpPacket::new_checked(m.data()) {
            Ok(a) => a,
            Err(e) => {
                let i = WireError::ALL.iter().position(|x| *x == e).unwrap_or(0);
                ctx.drop(self.wire[i], m);
                return;
            }
        };
        let Some(op) = ArpOperation::from_u16(a.operation()) else {
            let i = WireError::ALL
                .iter()
                .position(|x| *x == WireError::BadOperation)
                .unwrap_or(0);
            ctx.drop(self.wire[i], m);
            return;
        };
        let (smac, sip, tip) = (
            a.sender_hardware_addr(),
            a.sender_protocol_addr(),
            a.target_protocol_addr(),
        );
        let Some(ifc) = self.env.interface(port) else {
            ctx.drop(self.no_interface, m);
            return;
        };
        let now = ctx.now_ns();
        let neigh = &self.env.neigh;
        let sender_ok = !sip.is_unspecified() && ifc.addrs.iter().any(|x| x.contains(sip));
        let for_us = ifc.owns(tip);
        if op == ArpOperation::Request && for_us {
            if sender_ok {
                // A host asking for us will talk to us: learn it (Linux does the same).
                neigh.confirm(port, sip, smac, now);
            }
            let (mac, l2) = (ifc.mac, meta(&m).l2_len as usize);
            if m.is_shared() || m.headroom() < l2 {
                ctx.drop(self.no_interface, m);
                return;
            }
            {
                let mut r = ArpPacket::new_unchecked(m.data_mut());
                r.set_operation(ArpOperation::Reply.to_u16());
                r.set_target_hardware_addr(smac);
                r.set_target_protocol_addr(sip);
                r.set_sender_hardware_addr(mac);
                r.set_sender_protocol_addr(tip);
            }
            let h = m.prepend(14).expect("headroom checked");
            h[0..6].copy_from_slice(&smac.0);
            h[6..12].copy_from_slice(&mac.0);
            h[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
            let md = meta_mut(&mut m);
            md.tx_port = port;
            md.flags |= PktMeta::F_LOCAL_ORIGIN;
            ctx.count(self.requests_answered, 1);
            crate::trace_pkt!(
                ctx,
                &m,
                "who-has {tip} from {sip}: reply {mac} → tx port {port}"
            );
            ctx.enqueue(TO_TX, m);
            return;
        }
        if sender_ok {
            // Replies (and gratuitous ARP) update neighbours we already know or asked for.
            neigh.refresh_if_known(port, sip, smac, now);
        }
        if op == ArpOperation::Reply {
            crate::trace_pkt!(ctx, &m, "{sip} is-at {smac}: learned");
            ctx.drop(self.replies, m);
        } else {
            crate::trace_pkt!(ctx, &m, "who-has {tip}: not ours");
            ctx.drop(self.not_for_us, m);
        }
    }

    /// Held packets: releases those whose neighbour is resolved; with `retry`, also asks
    /// again for the unresolved and gives up on the silent (ICMP host unreachable). Goes in
    /// arrival order, so one neighbour's packets leave in the order they came.
    fn sweep_held(&mut self, ctx: &mut NodeCtx<'_>, now: u64, retry: bool) {
        let env = self.env.clone();
        let params = env.params;
        // The held packets move to `work`; those that stay go back into `held` (both vectors
        // have room for the hold limit: no allocation).
        let mut work = std::mem::take(&mut self.sweep);
        std::mem::swap(&mut self.held, &mut work);
        for mut h in work.drain(..) {
            let id = h.id;
            match env.neigh.state(id, now) {
                NeighState::Reachable(_) | NeighState::Stale(_) => {
                    meta_mut(&mut h.m).flags &= !PktMeta::F_NEEDS_ARP;
                    crate::trace_pkt!(ctx, &h.m, "neighbour resolved → {}", names::IPV4_REWRITE);
                    ctx.enqueue(TO_REWRITE, h.m);
                }
                NeighState::Incomplete if retry && env.neigh.probes(id) > params.arp_retries => {
                    ctx.count(self.unreachable, 1);
                    if meta(&h.m).flags & PktMeta::F_LOCAL_ORIGIN == 0 {
                        set_icmp_error(
                            &mut h.m,
                            icmpv4_type::DST_UNREACHABLE,
                            icmpv4_code::HOST_UNREACHABLE,
                            0,
                        );
                        ctx.enqueue(TO_ICMP_ERROR, h.m);
                    } else {
                        drop(h.m);
                    }
                }
                NeighState::Incomplete => {
                    if retry && env.neigh.claim_request(id, now, params.arp_retry_ns) {
                        if let Some((port, ip)) = env.neigh.key_of(id) {
                            self.request(ctx, port, ip);
                        }
                    }
                    self.held.push(h);
                    continue;
                }
            }
            let c = &mut self.hold_count[id.0 as usize];
            *c = c.saturating_sub(1);
        }
        self.sweep = work;
    }

    fn maintenance(&mut self, ctx: &mut NodeCtx<'_>) {
        let now = ctx.now_ns();
        let env = self.env.clone();
        // Gratuitous ARP, once per port, by whichever lcore gets here first.
        for ifc in env.fib.interfaces() {
            let flag = &env.garp_sent[ifc.port as usize];
            if flag.load(Ordering::Relaxed) || !ctx.io().has_tx(ifc.port) {
                continue;
            }
            if flag
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for a in &ifc.addrs {
                    if let Some(g) = self.build(
                        ifc.port,
                        ArpOperation::Request,
                        MacAddr::BROADCAST,
                        ifc.mac,
                        a.addr,
                        MacAddr([0; 6]),
                        a.addr,
                    ) {
                        ctx.enqueue(TO_TX, g);
                    }
                }
            }
        }
        self.sweep_held(ctx, now, true);
        let params = env.params;
        // Stale entries still in use get a refresh request; ones that stopped answering are
        // forgotten.
        let mut refresh: [(u16, Ipv4Addr); 16] = [(0, Ipv4Addr::UNSPECIFIED); 16];
        let mut nr = 0;
        self.scan_pos = env
            .neigh
            .scan_stale(self.scan_pos, SCAN_CHUNK, now, |id, port, ip| {
                if env.neigh.probes(id) > params.arp_retries {
                    env.neigh.invalidate(id);
                } else if nr < refresh.len()
                    && env.neigh.claim_request(id, now, params.arp_retry_ns)
                {
                    refresh[nr] = (port, ip);
                    nr += 1;
                }
            });
        for &(port, ip) in &refresh[..nr] {
            self.request(ctx, port, ip);
        }
    }
}

impl Node for Arp {
    fn next_nodes(&self) -> Vec<String> {
        vec![
            names::IPV4_REWRITE.into(),
            names::ICMP_ERROR.into(),
            names::TX.into(),
        ]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        for (i, e) in WireError::ALL.iter().enumerate() {
            self.wire[i] = ctx.drop_reason(e.as_str());
        }
        self.not_for_us = ctx.drop_reason("request_not_for_us");
        self.replies = ctx.drop_reason("reply_consumed");
        self.requests_answered = ctx.drop_reason("requests_answered");
        self.hold_full = ctx.drop_reason("hold_queue_full");
        self.table_full = ctx.drop_reason("neighbour_table_full");
        self.unreachable = ctx.drop_reason("neighbour_unreachable");
        self.no_interface = ctx.drop_reason("no_interface");
        self.alloc_failed = ctx.drop_reason("alloc_failed");
        self.requests_sent = ctx.drop_reason("requests_sent");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        // In order: packets held for one neighbour leave in the order they came.
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            if meta(&m).flags & PktMeta::F_NEEDS_ARP != 0 {
                self.hold(m, ctx);
            } else {
                self.input(m, ctx);
            }
        });
    }

    fn poll(&mut self, ctx: &mut NodeCtx<'_>) {
        let now = ctx.now_ns();
        // A neighbour got resolved (a reply here or on another lcore): its packets leave now,
        // not at the next maintenance run (Linux sends a neighbour's queue on the update too).
        let resolutions = self.env.neigh.resolutions();
        if resolutions != self.seen_resolutions {
            self.seen_resolutions = resolutions;
            if !self.held.is_empty() {
                self.sweep_held(ctx, now, false);
            }
        }
        if now.saturating_sub(self.last_maintenance) < MAINTENANCE_NS && self.last_maintenance != 0
        {
            return;
        }
        self.last_maintenance = now.max(1);
        self.maintenance(ctx);
    }
}
