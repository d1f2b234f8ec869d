//! Node names of the stack, as used in edges, config (`[[acl]] on = "a -> b"`), counters and
//! traces.

/// Ethernet input: MAC filter, VLAN, EtherType dispatch.
pub const ETH_INPUT: &str = "eth-input";
/// ARP: answers, learns, resolves.
pub const ARP: &str = "arp";
/// IPv4 validation.
pub const IPV4_INPUT: &str = "ipv4-input";
/// Route lookup.
pub const IPV4_LOOKUP: &str = "ipv4-lookup";
/// TTL for forwarded packets.
pub const IPV4_FORWARD: &str = "ipv4-forward";
/// Local delivery.
pub const IPV4_LOCAL: &str = "ipv4-local";
/// Fragment reassembly.
pub const IPV4_REASSEMBLY: &str = "ipv4-reassembly";
/// MTU check and fragmentation.
pub const IPV4_OUTPUT: &str = "ipv4-output";
/// Ethernet header from the neighbour table.
pub const IPV4_REWRITE: &str = "ipv4-rewrite";
/// Transmit.
pub const TX: &str = "tx";
/// ICMP input (echo).
pub const ICMP_INPUT: &str = "icmp-input";
/// ICMP error generation.
pub const ICMP_ERROR: &str = "icmp-error";
/// UDP input and socket dispatch.
pub const UDP_INPUT: &str = "udp-input";
/// UDP output (headers for datagrams apps send).
pub const UDP_OUTPUT: &str = "udp-output";
/// TCP input, connection table and output (segments to `ipv4-lookup`).
pub const TCP_INPUT: &str = "tcp-input";
/// Flow steering between TCP lcores (only when several lcores run TCP).
pub const TCP_HANDOFF: &str = "tcp-handoff";
