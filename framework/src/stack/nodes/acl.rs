//! `acl`: a packet filter placed on one edge of the graph by config (`[[acl]] on = "a -> b"`),
//! like a netfilter hook (Linux: `nf_hook` → `ipt_do_table`) on that path.

use crate::batch::Burst;
use crate::config::{AclAction, AclConfig, AclRule};
use crate::graph::{DropId, InitCtx, Node, NodeCtx};
use crate::mem::Mbuf;
use crate::wire::ip_protocol;

/// A rule compiled for matching: prefixes as (network, mask) in host order, absent fields
/// as match-all values.
#[derive(Debug, Clone, Copy)]
struct Rule {
    src: (u32, u32),
    dst: (u32, u32),
    proto: Option<u8>,
    sport: Option<(u16, u16)>,
    dport: Option<(u16, u16)>,
    action: AclAction,
}

impl Rule {
    fn compile(r: &AclRule) -> Rule {
        let prefix = |c: Option<crate::config::Ipv4Cidr>| {
            c.map_or((0, 0), |c| {
                let mask = c.mask();
                (u32::from(c.addr) & mask, mask)
            })
        };
        Rule {
            src: prefix(r.src),
            dst: prefix(r.dst),
            proto: r.proto,
            sport: r.sport,
            dport: r.dport,
            action: r.action,
        }
    }

    fn needs_ports(&self) -> bool {
        self.sport.is_some() || self.dport.is_some()
    }
}

/// What the packet offers to port matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// Not TCP or UDP, or not the first fragment: port rules never match.
    None,
    /// Source and destination port.
    Some(u16, u16),
    /// A first TCP/UDP fragment whose L4 header is not in the first segment.
    Missing,
}

/// The fields rules look at, read once per packet.
#[derive(Debug, Clone, Copy)]
struct Fields {
    src: u32,
    dst: u32,
    proto: u8,
    ports: Ports,
}

/// Reads the fields of a packet with data at its IPv4 header; `None` if there is no valid
/// IPv4 header in the first segment.
#[inline]
fn fields(m: &Mbuf) -> Option<Fields> {
    let d = m.data();
    if d.len() < 20 || d[0] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(d[0] & 0x0f) * 4;
    if hl < 20 || d.len() < hl {
        return None;
    }
    let proto = d[9];
    let frag_off = u16::from_be_bytes([d[6], d[7]]) & 0x1fff;
    let ports = match proto {
        ip_protocol::TCP | ip_protocol::UDP if frag_off == 0 => {
            let l4 = if proto == ip_protocol::TCP { 20 } else { 8 };
            if d.len() >= hl + l4 {
                Ports::Some(
                    u16::from_be_bytes([d[hl], d[hl + 1]]),
                    u16::from_be_bytes([d[hl + 2], d[hl + 3]]),
                )
            } else {
                Ports::Missing
            }
        }
        _ => Ports::None,
    };
    Some(Fields {
        src: u32::from_be_bytes([d[12], d[13], d[14], d[15]]),
        dst: u32::from_be_bytes([d[16], d[17], d[18], d[19]]),
        proto,
        ports,
    })
}

/// Outcome of matching one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    No,
    Yes,
    /// Every other field matched but the rule needs ports the first segment does not hold.
    Undecidable,
}

#[inline]
fn in_range(v: u16, r: Option<(u16, u16)>) -> bool {
    r.is_none_or(|(lo, hi)| lo <= v && v <= hi)
}

impl Rule {
    #[inline]
    fn matches(&self, f: &Fields) -> Match {
        if f.src & self.src.1 != self.src.0
            || f.dst & self.dst.1 != self.dst.0
            || self.proto.is_some_and(|p| p != f.proto)
        {
            return Match::No;
        }
        if !self.needs_ports() {
            return Match::Yes;
        }
        match f.ports {
            Ports::None => Match::No,
            Ports::Missing => Match::Undecidable,
            Ports::Some(s, d) => {
                if in_range(s, self.sport) && in_range(d, self.dport) {
                    Match::Yes
                } else {
                    Match::No
                }
            }
        }
    }
}

fn action_name(a: AclAction) -> &'static str {
    match a {
        AclAction::Accept => "accept",
        AclAction::Drop => "drop",
        AclAction::Count => "count",
    }
}

/// A first-match packet filter on a graph edge.
///
/// Input: packets with data at the IPv4 header (before or after `ipv4-input`: the header length
/// is read from the packet itself). Next node: the original target of the edge (`cfg.on.1`).
///
/// Rules are tried in order; a rule matches when every field it gives matches: source and
/// destination prefix, protocol, source and destination port ranges. Ports are read only from
/// TCP and UDP packets whose L4 header is in the first segment, and only from the first
/// fragment: a later fragment never matches a rule with ports (it carries no L4 header). A
/// first fragment whose L4 header is not in the first segment (RFC 1858's tiny fragments) is
/// dropped as `malformed` when it reaches a rule with ports whose other fields match, since
/// the rule can be neither applied nor skipped safely.
///
/// Counters (as reasons of this node): `rule_{i}_{action}` counts the packets rule `i` decided
/// (every match, whatever the action: an accepted packet is counted like a counted one, and a
/// dropped one is counted by the drop node under the same name), `default_{action}` those no
/// rule matched, `malformed` packets without a valid IPv4 header.
///
/// Matching is a linear scan over the rules and allocates nothing; that suits tens of rules. A
/// large rule set would want a classifier built at start-up, such as DPDK's `rte_acl`
/// (multi-bit tries over the 5-tuple) or a tuple-space search.
pub struct Acl {
    next: String,
    rules: Vec<Rule>,
    default: AclAction,
    /// Reason names, one per rule, leaked once at construction (reasons are `&'static str`).
    rule_names: Vec<&'static str>,
    rule_ids: Vec<DropId>,
    default_id: DropId,
    malformed: DropId,
}

impl Acl {
    /// A filter from its config section.
    pub fn new(cfg: &AclConfig) -> Self {
        let rule_names = cfg
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name: &'static str =
                    Box::leak(format!("rule_{i}_{}", action_name(r.action)).into_boxed_str());
                name
            })
            .collect();
        Acl {
            next: cfg.on.1.clone(),
            rules: cfg.rules.iter().map(Rule::compile).collect(),
            default: cfg.default,
            rule_names,
            rule_ids: vec![DropId::placeholder(); cfg.rules.len()],
            default_id: DropId::placeholder(),
            malformed: DropId::placeholder(),
        }
    }

    #[inline]
    fn apply(&self, action: AclAction, id: DropId, what: Which, m: Mbuf, ctx: &mut NodeCtx<'_>) {
        match action {
            AclAction::Drop => {
                crate::trace_pkt!(ctx, &m, "{what}: drop");
                ctx.drop(id, m);
            }
            AclAction::Accept | AclAction::Count => {
                ctx.count(id, 1);
                crate::trace_pkt!(
                    ctx,
                    &m,
                    "{what}: {} → {}",
                    action_name(action),
                    ctx.edge_name(0)
                );
                ctx.enqueue(0, m);
            }
        }
    }
}

/// Which part of the ACL decided (for trace lines).
#[derive(Debug, Clone, Copy)]
enum Which {
    Rule(usize),
    Default,
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Which::Rule(i) => write!(f, "rule {i}"),
            Which::Default => f.write_str("default"),
        }
    }
}

impl Node for Acl {
    fn next_nodes(&self) -> Vec<String> {
        vec![self.next.clone()]
    }

    fn init(&mut self, ctx: &mut InitCtx<'_>) {
        for (id, name) in self.rule_ids.iter_mut().zip(&self.rule_names) {
            *id = ctx.drop_reason(name);
        }
        self.default_id = ctx.drop_reason(match self.default {
            AclAction::Accept => "default_accept",
            AclAction::Drop => "default_drop",
            AclAction::Count => "default_count",
        });
        self.malformed = ctx.drop_reason("malformed");
    }

    fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
        let n = pkts.len();
        pkts.drain_front(n, |m| {
            let Some(f) = fields(&m) else {
                crate::trace_pkt!(ctx, &m, "no IPv4 header: drop");
                ctx.drop(self.malformed, m);
                return;
            };
            for (i, rule) in self.rules.iter().enumerate() {
                match rule.matches(&f) {
                    Match::No => {}
                    Match::Yes => {
                        self.apply(rule.action, self.rule_ids[i], Which::Rule(i), m, ctx);
                        return;
                    }
                    Match::Undecidable => {
                        crate::trace_pkt!(
                            ctx,
                            &m,
                            "rule {i}: L4 header not in first segment: drop"
                        );
                        ctx.drop(self.malformed, m);
                        return;
                    }
                }
            }
            self.apply(self.default, self.default_id, Which::Default, m, ctx);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::Ipv4Cidr;
    use crate::graph::{Graph, GraphBuilder, TraceControl};
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::runtime::LcoreIo;

    type Captured = Arc<Mutex<Vec<Mbuf>>>;

    /// Keeps every packet it receives.
    struct Capture(Captured);
    impl Node for Capture {
        fn next_nodes(&self) -> Vec<String> {
            Vec::new()
        }
        fn process(&mut self, pkts: &mut Burst, _ctx: &mut NodeCtx<'_>) {
            let mut v = self.0.lock().unwrap();
            while let Some(m) = pkts.pop() {
                v.push(m);
            }
        }
    }

    /// Forwards everything to `sink` (the node whose edge the ACL is spliced onto).
    struct Source;
    impl Node for Source {
        fn next_nodes(&self) -> Vec<String> {
            vec!["sink".into()]
        }
        fn process(&mut self, pkts: &mut Burst, ctx: &mut NodeCtx<'_>) {
            ctx.enqueue_burst(0, pkts);
        }
    }

    fn pool() -> Mempool {
        let mut p = MempoolParams::new("acl-test", 256);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    fn cidr(s: &str) -> Option<Ipv4Cidr> {
        let (a, l) = s.split_once('/').unwrap();
        Ipv4Cidr::new(a.parse().unwrap(), l.parse().unwrap())
    }

    fn rule(action: AclAction) -> AclRule {
        AclRule {
            src: None,
            dst: None,
            proto: None,
            sport: None,
            dport: None,
            action,
        }
    }

    fn cfg(default: AclAction, rules: Vec<AclRule>) -> AclConfig {
        AclConfig {
            name: "test".into(),
            on: ("source".into(), "sink".into()),
            default,
            rules,
        }
    }

    /// The ACL spliced onto `source -> sink`, as the runtime's graph builder places it.
    struct Rig {
        graph: Graph,
        io: LcoreIo,
        entry: usize,
        sink: Captured,
        mp: Mempool,
    }

    impl Rig {
        fn new(c: &AclConfig) -> Rig {
            let sink: Captured = Arc::default();
            let mut b = GraphBuilder::new();
            b.add("source", Box::new(Source))
                .add("acl-test", Box::new(Acl::new(c)))
                .add("sink", Box::new(Capture(sink.clone())))
                .splice(&c.on.0, &c.on.1, "acl-test");
            let graph = b.build(1, "source", TraceControl::new()).unwrap();
            let entry = graph.node_id("source").unwrap();
            Rig {
                graph,
                io: LcoreIo::new(Vec::new()),
                entry,
                sink,
                mp: pool(),
            }
        }

        /// Sends one packet; true if it came out of the ACL.
        fn passes(&mut self, m: Mbuf) -> bool {
            let mut b = Burst::new();
            b.push(m).ok().unwrap();
            self.graph.dispatch(self.entry, &mut b, &mut self.io);
            let mut v = self.sink.lock().unwrap();
            let out = !v.is_empty();
            v.clear();
            out
        }

        /// The ACL node's counters that are not zero.
        fn counters(&self) -> Vec<(String, u64)> {
            let s = self.graph.monitor().stats();
            let n = s.into_iter().find(|n| n.node == "acl-test").unwrap();
            n.drops.into_iter().filter(|(_, c)| *c > 0).collect()
        }

        fn finish(self) {
            let Rig {
                graph, sink, mp, ..
            } = self;
            drop(graph);
            sink.lock().unwrap().clear();
            assert_eq!(mp.in_use(), 0);
        }
    }

    /// An IPv4 packet with a full TCP (20) or UDP (8) header, or 8 bytes of anything else.
    fn pkt(mp: &Mempool, src: &str, dst: &str, proto: u8, sport: u16, dport: u16) -> Mbuf {
        let l4 = match proto {
            ip_protocol::TCP => 20,
            _ => 8,
        };
        let mut m = mp.alloc().unwrap();
        let b = m.append(20 + l4).unwrap();
        b.fill(0);
        b[0] = 0x45;
        b[2..4].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
        b[8] = 64;
        b[9] = proto;
        b[12..16].copy_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
        b[16..20].copy_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
        b[20..22].copy_from_slice(&sport.to_be_bytes());
        b[22..24].copy_from_slice(&dport.to_be_bytes());
        m
    }

    fn set_frag(m: &mut Mbuf, offset_bytes: u16, mf: bool) {
        let v = (offset_bytes >> 3) | if mf { 0x2000 } else { 0 };
        m.data_mut()[6..8].copy_from_slice(&v.to_be_bytes());
    }

    const A: &str = "198.18.0.1";
    const B: &str = "198.18.1.2";
    const UDP: u8 = ip_protocol::UDP;
    const TCP: u8 = ip_protocol::TCP;
    const ICMP: u8 = ip_protocol::ICMP;

    #[test]
    fn each_field_matches_on_its_own() {
        let rules = vec![
            AclRule {
                src: cidr("198.18.0.0/24"),
                ..rule(AclAction::Drop)
            },
            AclRule {
                dst: cidr("198.18.5.0/24"),
                ..rule(AclAction::Drop)
            },
            AclRule {
                proto: Some(ICMP),
                ..rule(AclAction::Drop)
            },
            AclRule {
                sport: Some((1000, 2000)),
                ..rule(AclAction::Drop)
            },
            AclRule {
                dport: Some((53, 53)),
                ..rule(AclAction::Drop)
            },
        ];
        let mut rig = Rig::new(&cfg(AclAction::Accept, rules));
        let mp = rig.mp.clone();
        // Source prefix: in and just outside.
        assert!(!rig.passes(pkt(&mp, "198.18.0.200", B, UDP, 1, 2)));
        assert!(rig.passes(pkt(&mp, "198.18.2.1", B, UDP, 1, 2)));
        // Destination prefix.
        assert!(!rig.passes(pkt(&mp, B, "198.18.5.9", UDP, 1, 2)));
        assert!(rig.passes(pkt(&mp, B, "198.18.6.9", UDP, 1, 2)));
        // Protocol.
        assert!(!rig.passes(pkt(&mp, B, B, ICMP, 1, 2)));
        // Source port range, both ends inclusive, both protocols.
        assert!(!rig.passes(pkt(&mp, B, B, UDP, 1000, 2)));
        assert!(!rig.passes(pkt(&mp, B, B, TCP, 2000, 2)));
        assert!(rig.passes(pkt(&mp, B, B, TCP, 2001, 2)));
        assert!(rig.passes(pkt(&mp, B, B, UDP, 999, 2)));
        // Destination port.
        assert!(!rig.passes(pkt(&mp, B, B, UDP, 5, 53)));
        assert!(rig.passes(pkt(&mp, B, B, UDP, 5, 54)));
        // Ports are not read from other protocols (bytes 20..24 of this one say 1500/53).
        assert!(rig.passes(pkt(&mp, B, B, 47, 1500, 53)));
        let c = rig.counters();
        for (name, n) in [
            ("rule_0_drop", 1),
            ("rule_1_drop", 1),
            ("rule_2_drop", 1),
            ("rule_3_drop", 2),
            ("rule_4_drop", 1),
            ("default_accept", 6),
        ] {
            assert!(c.contains(&(name.to_string(), n)), "{name}: {c:?}");
        }
        rig.finish();
    }

    #[test]
    fn all_fields_of_a_rule_must_match_and_the_first_match_wins() {
        let rules = vec![
            AclRule {
                src: cidr("198.18.0.0/16"),
                dst: cidr("198.18.1.0/24"),
                proto: Some(TCP),
                dport: Some((80, 80)),
                ..rule(AclAction::Count)
            },
            AclRule {
                src: cidr("198.18.0.0/16"),
                ..rule(AclAction::Drop)
            },
            rule(AclAction::Accept),
        ];
        let mut rig = Rig::new(&cfg(AclAction::Drop, rules));
        let mp = rig.mp.clone();
        assert!(
            rig.passes(pkt(&mp, A, B, TCP, 9, 80)),
            "rule 0 counts and passes"
        );
        assert!(
            !rig.passes(pkt(&mp, A, B, UDP, 9, 80)),
            "protocol differs: rule 1"
        );
        assert!(
            !rig.passes(pkt(&mp, A, B, TCP, 9, 81)),
            "port differs: rule 1"
        );
        assert!(
            !rig.passes(pkt(&mp, A, "198.18.2.1", TCP, 9, 80)),
            "dst differs: rule 1"
        );
        assert!(
            rig.passes(pkt(&mp, "10.0.0.1", B, TCP, 9, 80)),
            "src differs: rule 2"
        );
        let c = rig.counters();
        assert_eq!(
            c,
            vec![
                ("rule_0_count".to_string(), 1),
                ("rule_1_drop".to_string(), 3),
                ("rule_2_accept".to_string(), 1),
            ]
        );
        rig.finish();
    }

    #[test]
    fn default_actions() {
        for (default, passes, name) in [
            (AclAction::Accept, true, "default_accept"),
            (AclAction::Count, true, "default_count"),
            (AclAction::Drop, false, "default_drop"),
        ] {
            let mut rig = Rig::new(&cfg(default, Vec::new()));
            let mp = rig.mp.clone();
            assert_eq!(rig.passes(pkt(&mp, A, B, UDP, 1, 2)), passes);
            assert_eq!(rig.passes(pkt(&mp, A, B, ICMP, 0, 0)), passes);
            assert_eq!(rig.counters(), vec![(name.to_string(), 2)]);
            rig.finish();
        }
    }

    #[test]
    fn a_later_fragment_never_matches_a_port_rule() {
        let rules = vec![
            AclRule {
                proto: Some(UDP),
                dport: Some((53, 53)),
                ..rule(AclAction::Drop)
            },
            AclRule {
                proto: Some(TCP),
                ..rule(AclAction::Drop)
            },
        ];
        let mut rig = Rig::new(&cfg(AclAction::Accept, rules));
        let mp = rig.mp.clone();
        // First fragment (offset 0, MF): ports are there and match.
        let mut m = pkt(&mp, A, B, UDP, 7, 53);
        set_frag(&mut m, 0, true);
        assert!(!rig.passes(m));
        // A later fragment whose payload happens to look like port 53: not matched.
        let mut m = pkt(&mp, A, B, UDP, 7, 53);
        set_frag(&mut m, 1480, true);
        assert!(rig.passes(m));
        // A rule without ports still applies to later fragments.
        let mut m = pkt(&mp, A, B, TCP, 7, 53);
        set_frag(&mut m, 1480, false);
        assert!(!rig.passes(m));
        assert_eq!(
            rig.counters(),
            vec![
                ("rule_0_drop".to_string(), 1),
                ("rule_1_drop".to_string(), 1),
                ("default_accept".to_string(), 1),
            ]
        );
        rig.finish();
    }

    #[test]
    fn malformed_input() {
        let rules = vec![AclRule {
            dport: Some((80, 80)),
            ..rule(AclAction::Drop)
        }];
        let mut rig = Rig::new(&cfg(AclAction::Accept, rules));
        let mp = rig.mp.clone();
        // Too short for an IPv4 header.
        let mut m = mp.alloc().unwrap();
        m.append(19).unwrap().fill(0x45);
        assert!(!rig.passes(m));
        // Not version 4.
        let mut m = pkt(&mp, A, B, UDP, 1, 2);
        m.data_mut()[0] = 0x65;
        assert!(!rig.passes(m));
        // IHL below 5.
        let mut m = pkt(&mp, A, B, UDP, 1, 2);
        m.data_mut()[0] = 0x44;
        assert!(!rig.passes(m));
        // IHL 15 (60 bytes) but only 28 bytes in the segment.
        let mut m = pkt(&mp, A, B, UDP, 1, 2);
        m.data_mut()[0] = 0x4f;
        assert!(!rig.passes(m));
        assert_eq!(rig.counters(), vec![("malformed".to_string(), 4)]);
        // A TCP first fragment with only 8 bytes of its header in the segment meets a port
        // rule: it can be neither matched nor skipped.
        let mut m = pkt(&mp, A, B, TCP, 1, 80);
        m.trim(12);
        assert!(!rig.passes(m));
        assert_eq!(rig.counters(), vec![("malformed".to_string(), 5)]);
        // With options: the L4 header is found after them.
        let mut m = mp.alloc().unwrap();
        let b = m.append(24 + 8).unwrap();
        b.fill(0);
        b[0] = 0x46;
        b[9] = UDP;
        b[20] = 1; // NOP options
        b[21] = 1;
        b[22] = 1;
        b[23] = 1;
        b[26..28].copy_from_slice(&80u16.to_be_bytes());
        assert!(!rig.passes(m));
        assert!(rig.counters().contains(&("rule_0_drop".to_string(), 1)));
        rig.finish();
    }

    #[test]
    fn an_empty_acl_passes_everything_without_touching_it() {
        let mut rig = Rig::new(&cfg(AclAction::Accept, Vec::new()));
        let mp = rig.mp.clone();
        let mut b = Burst::new();
        for i in 0..100u16 {
            b.push(pkt(&mp, A, B, UDP, i, i)).ok().unwrap();
        }
        rig.graph.dispatch(rig.entry, &mut b, &mut rig.io);
        let got = std::mem::take(&mut *rig.sink.lock().unwrap());
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|m| m.pkt_len() == 28));
        drop(got);
        let s = rig.graph.monitor().stats();
        let acl = s.iter().find(|n| n.node == "acl-test").unwrap();
        assert_eq!((acl.calls, acl.packets), (1, 100));
        rig.finish();
    }
}
