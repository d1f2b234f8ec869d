//! `l2fwd`: forward every frame received on a port to its paired port, like DPDK's l2fwd
//! example and testpmd's forwarding modes.
//!
//! * `io` — frames are not touched at all;
//! * `macswap` — source and destination MAC are swapped (the frame goes back where it came
//!   from, at L2);
//! * `mac` — the source MAC becomes the egress port's MAC and the destination MAC the
//!   configured peer MAC of the egress port.
//!
//! Frames shorter than an Ethernet header are dropped as `runt` in the MAC-rewriting modes.

use crate::batch::Burst;
use crate::port::MacAddr;
use crate::runtime::{DropReason, LcoreIo, Stage};

/// Forwarding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward unchanged.
    Io,
    /// Swap source and destination MAC.
    MacSwap,
    /// Rewrite source (egress port MAC) and destination (peer MAC).
    Mac,
}

/// Egress decision for frames received on one port.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Port to send on.
    pub dst_port: u16,
    /// Source MAC written in `mac` mode (the egress port's address).
    pub src_mac: MacAddr,
    /// Destination MAC written in `mac` mode (the peer behind the egress port).
    pub dst_mac: MacAddr,
}

/// The l2fwd stage of one lcore.
pub struct L2fwd {
    mode: Mode,
    /// Indexed by receiving port id; `None` for ports that are not forwarded.
    routes: Vec<Option<Route>>,
    runt: DropReason,
    shared: DropReason,
    no_route: DropReason,
}

const ETH_HDR: usize = 14;

impl L2fwd {
    /// A stage with the given mode and per-rx-port routes.
    pub fn new(mode: Mode, routes: Vec<Option<Route>>) -> Self {
        L2fwd {
            mode,
            routes,
            runt: DropReason::placeholder(),
            shared: DropReason::placeholder(),
            no_route: DropReason::placeholder(),
        }
    }
}

/// Swaps destination and source MAC (bytes 0..6 and 6..12) with two loads and two stores.
#[inline(always)]
fn swap_macs(d: &mut [u8]) {
    const M48: u64 = (1 << 48) - 1;
    let (head, _) = d.split_at_mut(12);
    let (lo, hi) = head.split_at_mut(8);
    let a = u64::from_le_bytes(lo.try_into().expect("8 bytes"));
    let b = u32::from_le_bytes(hi.try_into().expect("4 bytes")) as u64;
    let dst = a & M48;
    let src = (a >> 48) | (b << 16);
    lo.copy_from_slice(&(src | (dst << 48)).to_le_bytes());
    hi.copy_from_slice(&((dst >> 16) as u32).to_le_bytes());
}

impl Stage for L2fwd {
    fn init(&mut self, io: &mut LcoreIo) {
        self.runt = io.drop_reason("runt");
        self.shared = io.drop_reason("shared_buffer");
        self.no_route = io.drop_reason("no_route");
    }

    #[inline]
    fn process(&mut self, rx_port: u16, pkts: &mut Burst, io: &mut LcoreIo) {
        let Some(Some(route)) = self.routes.get(rx_port as usize).copied() else {
            io.drop_burst(self.no_route, pkts);
            return;
        };
        match self.mode {
            Mode::Io => {}
            Mode::MacSwap | Mode::Mac => {
                let mut bad = false;
                for m in pkts.iter_mut() {
                    match m.try_data_mut() {
                        Some(d) if d.len() >= ETH_HDR => {
                            if self.mode == Mode::MacSwap {
                                swap_macs(d);
                            } else {
                                d[0..6].copy_from_slice(&route.dst_mac.0);
                                d[6..12].copy_from_slice(&route.src_mac.0);
                            }
                        }
                        _ => bad = true,
                    }
                }
                if bad {
                    let (runt, shared) = (self.runt, self.shared);
                    let mut n_runt = 0;
                    let mut n_shared = 0;
                    pkts.retain_or(
                        |m| m.data_len() >= ETH_HDR && !m.is_shared(),
                        |m| {
                            if m.is_shared() {
                                n_shared += 1;
                            } else {
                                n_runt += 1;
                            }
                        },
                    );
                    io.count_drops(runt, n_runt);
                    io.count_drops(shared, n_shared);
                }
            }
        }
        io.send_burst(route.dst_port, pkts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::port::ring::{RingPort, RingSide};
    use crate::port::Port;

    fn pool() -> Mempool {
        let mut p = MempoolParams::new("l2fwd-test", 256);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    /// Builds a ring pair, sends `frames` through l2fwd from port 0 to port 1 and returns what
    /// comes out of port 1's peer side, plus the io context for drop checks.
    fn run(mode: Mode, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<(&'static str, u64)>) {
        let mp = pool();
        let side = |name: &str, id| RingSide::for_test(name, id, 1, false);
        let (mut out_port, mut peer) = RingPort::pair(side("p1", 1), side("peer", 2), 64).unwrap();
        let mut tx = vec![None, Some(out_port.take_tx_queue(0).unwrap())];
        tx.truncate(2);
        let mut io = LcoreIo::new(tx);
        let route = Route {
            dst_port: 1,
            src_mac: MacAddr::local(0x11),
            dst_mac: MacAddr([0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]),
        };
        let mut st = L2fwd::new(mode, vec![Some(route), None]);
        st.init(&mut io);
        let mut burst = Burst::new();
        for f in frames {
            let mut m = mp.alloc().unwrap();
            m.append(f.len()).unwrap().copy_from_slice(f);
            burst.push(m).unwrap();
        }
        st.process(0, &mut burst, &mut io);
        assert!(burst.is_empty());
        // Frames from a port with no route are dropped and counted.
        let mut stray = Burst::new();
        stray.push(mp.alloc().unwrap()).unwrap();
        st.process(1, &mut stray, &mut io);
        let mut rxq = peer.take_rx_queue(0).unwrap();
        let mut got = Burst::new();
        rxq.rx_burst(&mut got, 64);
        let out = got.iter().map(|m| m.data().to_vec()).collect();
        let drops = io.drop_counters().snapshot();
        (out, drops)
    }

    fn frame(dst: u8, src: u8, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].fill(dst);
        f[6..12].fill(src);
        f[12] = 0x08;
        for (i, b) in f.iter_mut().enumerate().skip(14) {
            *b = i as u8;
        }
        f
    }

    fn drop_count(drops: &[(&str, u64)], reason: &str) -> u64 {
        drops.iter().find(|(n, _)| *n == reason).map_or(0, |d| d.1)
    }

    #[test]
    fn io_mode_forwards_bytes_untouched() {
        let frames = vec![frame(1, 2, 60), frame(3, 4, 1514), vec![9; 5]];
        let (out, drops) = run(Mode::Io, &frames);
        assert_eq!(out, frames);
        assert_eq!(drop_count(&drops, "no_route"), 1);
    }

    #[test]
    fn macswap_swaps_and_drops_runts() {
        let frames = vec![frame(1, 2, 60), vec![7; 13], frame(5, 6, 64)];
        let (out, drops) = run(Mode::MacSwap, &frames);
        assert_eq!(out, vec![frame(2, 1, 60), frame(6, 5, 64)]);
        assert_eq!(drop_count(&drops, "runt"), 1);
    }

    #[test]
    fn mac_mode_rewrites_both_addresses() {
        let (out, _) = run(Mode::Mac, &[frame(1, 2, 60)]);
        let mut want = frame(1, 2, 60);
        want[..6].copy_from_slice(&[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        want[6..12].copy_from_slice(&MacAddr::local(0x11).0);
        assert_eq!(out, vec![want]);
    }
}
