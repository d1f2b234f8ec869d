//! The stack's graph nodes. Each file holds one node or a few tightly related ones; `names`
//! lists every node name.

pub mod acl;
pub mod arp;
pub mod eth_input;
pub mod icmp;
pub mod ipv4_input;
pub mod ipv4_output;
pub mod ipv4_route;
pub mod names;
pub mod reassembly;
pub mod tcp;
pub mod tcp_handoff;
pub mod udp;

pub use acl::Acl;
pub use arp::Arp;
pub use eth_input::EthInput;
pub use icmp::{IcmpError, IcmpInput};
pub use ipv4_input::Ipv4Input;
pub use ipv4_output::{Ipv4Output, Ipv4Rewrite, Tx};
pub use ipv4_route::{Ipv4Forward, Ipv4Local, Ipv4Lookup};
pub use reassembly::Ipv4Reassembly;
pub use tcp::TcpInput;
pub use tcp_handoff::TcpHandoff;
pub use udp::{Datagram, UdpApp, UdpAppNode, UdpBinding, UdpEcho, UdpInput, UdpOut, UdpOutput};
