//! The IPv4 forwarding table: a DIR-24-8 LPM whose results index a next-hop table.
//!
//! Built once at start-up from the ports' addresses (connected subnets, local /32s, subnet
//! broadcasts) and the configured routes; shared read-only by every lcore (`Arc<Fib>`), so a
//! lookup is two memory reads and no lock (Linux's `fib_lookup` without a route cache: the
//! lookup *is* the cache). A route with several gateways is an ECMP group; the packet's flow hash
//! picks the member, so a flow always takes one path.

use std::net::Ipv4Addr;

use crate::lpm::{Lpm4, LpmConfig, LpmError};
use crate::port::MacAddr;

/// What to do with packets matching a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopKind {
    /// Send out of `port`, to `gateway` or (on-link) to the destination itself.
    Forward,
    /// Addressed to this host (one of our addresses, or a broadcast we accept).
    Local,
    /// Discard silently (blackhole route).
    Drop,
    /// Discard and answer with ICMP destination unreachable (network unreachable).
    Reject,
}

/// One next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Kind of route.
    pub kind: HopKind,
    /// Egress port (for `Forward`) or the port owning the address (for `Local`).
    pub port: u16,
    /// Gateway; `None` means on-link: the neighbour is the packet's destination.
    pub gateway: Option<Ipv4Addr>,
}

/// An interface address: address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length of its subnet.
    pub prefix_len: u8,
}

impl IfAddr {
    /// Network mask as a host-order integer.
    pub fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - self.prefix_len as u32)
            .unwrap_or(0)
    }

    /// The subnet's network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// True if `ip` is in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }
}

/// An L3 interface: a port with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Port id.
    pub port: u16,
    /// Port name.
    pub name: String,
    /// Port MAC.
    pub mac: MacAddr,
    /// Port MTU (largest IPv4 packet it sends).
    pub mtu: u16,
    /// Addresses on this port.
    pub addrs: Vec<IfAddr>,
    /// Accept frames for any destination MAC.
    pub promiscuous: bool,
    /// The port accepts partial L4 checksums on transmit
    /// ([`PortInfo::tx_l4_checksum_offload`](crate::port::PortInfo::tx_l4_checksum_offload)):
    /// TCP output leaves them partial; the `tx` node completes partial ones for ports without it.
    pub tx_l4_checksum_offload: bool,
}

#[cfg(test)]
impl Interface {
    /// A test interface: port `port` named `p{port}`, MAC `02:…:port+1`, MTU 1500, one address.
    pub(crate) fn for_test(port: u16, addr: Ipv4Addr, prefix_len: u8, offload: bool) -> Self {
        Interface {
            port,
            name: format!("p{port}"),
            mac: MacAddr::local(port as u8 + 1),
            mtu: 1500,
            addrs: vec![IfAddr { addr, prefix_len }],
            promiscuous: false,
            tx_l4_checksum_offload: offload,
        }
    }
}

impl Interface {
    /// The address to use as source towards `peer` (one whose subnet holds it, else the first).
    pub fn source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addrs
            .iter()
            .find(|a| a.contains(peer))
            .or(self.addrs.first())
            .map(|a| a.addr)
    }

    /// True if `ip` is one of this port's addresses.
    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|a| a.addr == ip)
    }
}

/// A configured route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub prefix: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Kind.
    pub kind: HopKind,
    /// Egress port, when known (required for on-link routes).
    pub port: Option<u16>,
    /// Gateways (several = ECMP).
    pub via: Vec<Ipv4Addr>,
}

/// Why a FIB could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FibError {
    /// The LPM table refused a route.
    #[error("route {prefix}/{len}: {source}")]
    Lpm {
        /// Prefix.
        prefix: Ipv4Addr,
        /// Length.
        len: u8,
        /// Cause.
        source: LpmError,
    },
    /// A gateway is not on any connected subnet.
    #[error("route {prefix}/{len}: gateway {gw} is not in any port's subnet")]
    GatewayUnreachable {
        /// Prefix.
        prefix: Ipv4Addr,
        /// Length.
        len: u8,
        /// Gateway.
        gw: Ipv4Addr,
    },
    /// The LPM table could not be created.
    #[error("cannot create the route table: {0}")]
    Create(LpmError),
}

#[derive(Debug, Clone)]
enum Entry {
    One(NextHop),
    Group { start: u32, len: u32 },
}

/// The forwarding table.
pub struct Fib {
    lpm: Lpm4,
    entries: Vec<Entry>,
    members: Vec<NextHop>,
    interfaces: Vec<Interface>,
    /// Index into `interfaces` by port id (O(1) for the per-packet lookups).
    by_port: Vec<Option<u16>>,
    /// Every local address, host order (for the martian-source check).
    local: Vec<u32>,
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("routes", &self.lpm.rules())
            .field("next_hops", &self.entries.len())
            .finish()
    }
}

impl Fib {
    /// Builds the table: connected subnets and local addresses of `interfaces`, then `routes`
    /// (more specific configured routes override nothing they should not: a configured route for
    /// a connected prefix replaces it).
    pub fn new(interfaces: Vec<Interface>, routes: &[Route]) -> Result<Fib, FibError> {
        let lpm = Lpm4::new(
            "fib",
            LpmConfig {
                max_rules: 1 << 21,
                tbl8_groups: 8192,
            },
        )
        .map_err(FibError::Create)?;
        let max_port = interfaces
            .iter()
            .map(|i| i.port as usize + 1)
            .max()
            .unwrap_or(0);
        let mut by_port = vec![None; max_port];
        for (k, i) in interfaces.iter().enumerate() {
            by_port[i.port as usize] = Some(k as u16);
        }
        let local = interfaces
            .iter()
            .flat_map(|i| i.addrs.iter().map(|a| u32::from(a.addr)))
            .collect();
        let mut fib = Fib {
            lpm,
            entries: Vec::new(),
            members: Vec::new(),
            interfaces,
            by_port,
            local,
        };
        // Limited broadcast is local.
        fib.add(
            Ipv4Addr::BROADCAST,
            32,
            Entry::One(NextHop {
                kind: HopKind::Local,
                port: u16::MAX,
                gateway: None,
            }),
        )?;
        for i in 0..fib.interfaces.len() {
            let ifc = fib.interfaces[i].clone();
            for a in &ifc.addrs {
                let on_link = NextHop {
                    kind: HopKind::Forward,
                    port: ifc.port,
                    gateway: None,
                };
                fib.add(a.network(), a.prefix_len, Entry::One(on_link))?;
                let local = NextHop {
                    kind: HopKind::Local,
                    port: ifc.port,
                    gateway: None,
                };
                fib.add(a.addr, 32, Entry::One(local))?;
                if a.prefix_len < 31 {
                    fib.add(a.broadcast(), 32, Entry::One(local))?;
                }
            }
        }
        for r in routes {
            let entry = match r.kind {
                HopKind::Forward if r.via.is_empty() => Entry::One(NextHop {
                    kind: HopKind::Forward,
                    port: r.port.unwrap_or(0),
                    gateway: None,
                }),
                HopKind::Forward => {
                    let mut hops = Vec::new();
                    for &gw in &r.via {
                        let port = match r.port {
                            Some(p) => p,
                            None => fib.connected_port(gw).ok_or(FibError::GatewayUnreachable {
                                prefix: r.prefix,
                                len: r.prefix_len,
                                gw,
                            })?,
                        };
                        hops.push(NextHop {
                            kind: HopKind::Forward,
                            port,
                            gateway: Some(gw),
                        });
                    }
                    if hops.len() == 1 {
                        Entry::One(hops[0])
                    } else {
                        let start = fib.members.len() as u32;
                        fib.members.extend_from_slice(&hops);
                        Entry::Group {
                            start,
                            len: hops.len() as u32,
                        }
                    }
                }
                kind => Entry::One(NextHop {
                    kind,
                    port: u16::MAX,
                    gateway: None,
                }),
            };
            fib.add(r.prefix, r.prefix_len, entry)?;
        }
        Ok(fib)
    }

    fn add(&mut self, prefix: Ipv4Addr, len: u8, e: Entry) -> Result<(), FibError> {
        let id = self.entries.len() as u32;
        self.entries.push(e);
        self.lpm
            .add(prefix, len, id)
            .map_err(|source| FibError::Lpm {
                prefix,
                len,
                source,
            })
    }

    /// The port whose connected subnet holds `ip`.
    pub fn connected_port(&self, ip: Ipv4Addr) -> Option<u16> {
        self.interfaces
            .iter()
            .find(|i| i.addrs.iter().any(|a| a.contains(ip)))
            .map(|i| i.port)
    }

    /// Looks up `dst`; `flow_hash` picks the member of an ECMP group. Returns the next hop.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr, flow_hash: u32) -> Option<&NextHop> {
        let id = self.lpm.lookup(u32::from(dst))?;
        match &self.entries[id as usize] {
            Entry::One(h) => Some(h),
            Entry::Group { start, len } => {
                Some(&self.members[(*start + flow_hash % *len) as usize])
            }
        }
    }

    /// True if `ip` is one of our interface addresses.
    #[inline]
    pub fn is_local_addr(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.local.contains(&ip)
    }

    /// The interface of port `port`, if it is an L3 interface.
    #[inline]
    pub fn interface(&self, port: u16) -> Option<&Interface> {
        let k = (*self.by_port.get(port as usize)?)?;
        self.interfaces.get(k as usize)
    }

    /// Every interface.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Number of routes in the LPM table (including connected and local ones).
    pub fn routes(&self) -> usize {
        self.lpm.rules()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn ifc(port: u16, addr: &str, len: u8) -> Interface {
        Interface::for_test(port, ip(addr), len, false)
    }

    #[test]
    fn connected_local_broadcast_and_routes() {
        let fib = Fib::new(
            vec![ifc(0, "198.18.0.1", 24), ifc(1, "198.18.1.1", 24)],
            &[
                Route {
                    prefix: ip("198.18.2.0"),
                    prefix_len: 24,
                    kind: HopKind::Forward,
                    port: None,
                    via: vec![ip("198.18.1.2")],
                },
                Route {
                    prefix: ip("198.18.3.0"),
                    prefix_len: 24,
                    kind: HopKind::Forward,
                    port: None,
                    via: vec![ip("198.18.0.2"), ip("198.18.1.2")],
                },
                Route {
                    prefix: ip("198.18.9.0"),
                    prefix_len: 24,
                    kind: HopKind::Reject,
                    port: None,
                    via: vec![],
                },
            ],
        )
        .unwrap();
        let h = fib.lookup(ip("198.18.0.7"), 0).unwrap();
        assert_eq!((h.kind, h.port, h.gateway), (HopKind::Forward, 0, None));
        assert_eq!(
            fib.lookup(ip("198.18.1.1"), 0).unwrap().kind,
            HopKind::Local
        );
        assert_eq!(
            fib.lookup(ip("198.18.1.255"), 0).unwrap().kind,
            HopKind::Local
        );
        assert_eq!(
            fib.lookup(ip("255.255.255.255"), 0).unwrap().kind,
            HopKind::Local
        );
        let h = fib.lookup(ip("198.18.2.9"), 0).unwrap();
        assert_eq!((h.port, h.gateway), (1, Some(ip("198.18.1.2"))));
        let a = fib.lookup(ip("198.18.3.1"), 0).unwrap();
        let b = fib.lookup(ip("198.18.3.1"), 1).unwrap();
        assert_ne!(a.port, b.port, "ECMP members chosen by hash");
        assert_eq!(
            fib.lookup(ip("198.18.9.1"), 0).unwrap().kind,
            HopKind::Reject
        );
        assert!(fib.lookup(ip("10.0.0.1"), 0).is_none());
        assert!(fib.is_local_addr(ip("198.18.0.1")));
        assert!(!fib.is_local_addr(ip("198.18.0.2")));
    }

    #[test]
    fn unreachable_gateway_is_an_error() {
        let e = Fib::new(
            vec![ifc(0, "198.18.0.1", 24)],
            &[Route {
                prefix: ip("198.18.2.0"),
                prefix_len: 24,
                kind: HopKind::Forward,
                port: None,
                via: vec![ip("198.19.0.1")],
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("198.19.0.1"), "{e}");
    }
}
