//! Applications: the [`Stage`] implementations that lcores run, chosen by `[app]` in the
//! config.

pub mod l2fwd;

use crate::config::{AppConfig, FwdMode};
use crate::port::{MacAddr, PortInfo};
use crate::runtime::Stage;

/// Builds one lcore's stage for the configured application.
pub fn make_stage(app: &AppConfig, ports: &[PortInfo]) -> Box<dyn Stage> {
    match app {
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
            Box::new(l2fwd::L2fwd::new(mode, routes))
        }
    }
}
