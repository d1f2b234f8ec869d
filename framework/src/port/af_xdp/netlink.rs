//! A minimal rtnetlink client: one `RTM_GETLINK` request by interface name, answered with what
//! the driver needs to know about the interface (index, MAC, MTU, queue counts, up/down, and
//! which XDP program is already attached, if any).
//!
//! The socket is opened once, at `open`, and kept: a netlink socket answers for the network
//! namespace it was created in, so later queries (link state from a stats thread) still ask about
//! the namespace the port was opened in.
//!
//! Message layouts and constants come from include/uapi/linux/netlink.h, rtnetlink.h and
//! if_link.h; the few that the `libc` crate lacks are defined here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// include/uapi/linux/if_link.h: enum IFLA_*.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_XDP: u16 = 43;
// include/uapi/linux/if_link.h: enum IFLA_XDP_* (nested in IFLA_XDP).
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
// include/uapi/linux/if_link.h: XDP_ATTACHED_*.
const XDP_ATTACHED_DRV: u8 = 1;
const XDP_ATTACHED_SKB: u8 = 2;
const XDP_ATTACHED_HW: u8 = 3;
// include/uapi/linux/netlink.h: the attribute type mask (drops NLA_F_NESTED / NET_BYTEORDER).
const NLA_TYPE_MASK: u16 = 0x3fff;
// include/uapi/linux/if.h: IFF_UP and IFF_LOWER_UP.
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;

/// An XDP program found attached to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachedXdp {
    /// Kernel program id.
    pub(crate) id: u32,
    /// "native", "generic", "offload" or "multi".
    pub(crate) mode: &'static str,
}

/// What `RTM_GETLINK` says about an interface.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkInfo {
    pub(crate) ifindex: u32,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) mtu: u32,
    pub(crate) rx_queues: u32,
    pub(crate) tx_queues: u32,
    pub(crate) up: bool,
    pub(crate) lower_up: bool,
    pub(crate) xdp: Option<AttachedXdp>,
}

/// A `NETLINK_ROUTE` socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub(crate) struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Rtnl {
    /// Opens the socket (in the calling thread's network namespace).
    pub(crate) fn open() -> io::Result<Rtnl> {
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a valid timeval and its size. A receive timeout keeps a lost
        // answer from blocking forever.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Asks for interface `name`. `ErrorKind::NotFound` (ENODEV) when there is none.
    pub(crate) fn link(&mut self, name: &str) -> io::Result<LinkInfo> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let attr_len = 4 + name.len() + 1;
        let total = NLMSG_HDR + IFINFOMSG + align4(attr_len);
        let mut req = vec![0u8; total];
        req[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        // ifinfomsg: family AF_UNSPEC, index 0 (look up by name): all zero.
        let a = NLMSG_HDR + IFINFOMSG;
        req[a..a + 2].copy_from_slice(&(attr_len as u16).to_ne_bytes());
        req[a + 2..a + 4].copy_from_slice(&IFLA_IFNAME.to_ne_bytes());
        req[a + 4..a + 4 + name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: sending `req`, a live buffer of `req.len()` bytes, to the kernel (the default
        // destination of a netlink socket).
        let n = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into `buf`, a live buffer of `buf.len()` bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            let mut off = 0;
            while off + NLMSG_HDR <= n {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
                if len < NLMSG_HDR || off + len > n {
                    return Err(io::Error::other("malformed netlink answer"));
                }
                let body = &buf[off + NLMSG_HDR..off + len];
                off += align4(len);
                if mseq != seq {
                    continue; // an answer to an earlier, timed-out request
                }
                if ty == libc::NLMSG_ERROR as u16 {
                    let code = i32::from_ne_bytes(
                        body.get(0..4)
                            .ok_or_else(|| io::Error::other("short netlink error"))?
                            .try_into()
                            .unwrap(),
                    );
                    return Err(io::Error::from_raw_os_error(if code < 0 {
                        -code
                    } else {
                        libc::EIO
                    }));
                }
                if ty == libc::RTM_NEWLINK {
                    return parse_link(body);
                }
            }
        }
    }
}

fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((ty, payload))
    })
}

fn u32_of(p: &[u8]) -> u32 {
    p.get(0..4)
        .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
        .unwrap_or(0)
}

fn parse_link(body: &[u8]) -> io::Result<LinkInfo> {
    if body.len() < IFINFOMSG {
        return Err(io::Error::other("short RTM_NEWLINK"));
    }
    let mut li = LinkInfo {
        ifindex: i32::from_ne_bytes(body[4..8].try_into().unwrap()) as u32,
        ..Default::default()
    };
    let flags = u32::from_ne_bytes(body[8..12].try_into().unwrap());
    li.up = flags & IFF_UP != 0;
    li.lower_up = flags & IFF_LOWER_UP != 0;
    for (ty, p) in attrs(&body[IFINFOMSG..]) {
        match ty {
            IFLA_ADDRESS if p.len() == 6 => li.mac = Some(p.try_into().unwrap()),
            IFLA_MTU => li.mtu = u32_of(p),
            IFLA_NUM_RX_QUEUES => li.rx_queues = u32_of(p),
            IFLA_NUM_TX_QUEUES => li.tx_queues = u32_of(p),
            IFLA_XDP => li.xdp = parse_xdp(p),
            _ => {}
        }
    }
    Ok(li)
}

fn parse_xdp(nested: &[u8]) -> Option<AttachedXdp> {
    let mut attached = 0u8;
    let (mut id, mut drv, mut skb) = (0, 0, 0);
    for (ty, p) in attrs(nested) {
        match ty {
            IFLA_XDP_ATTACHED => attached = p.first().copied().unwrap_or(0),
            IFLA_XDP_PROG_ID => id = u32_of(p),
            IFLA_XDP_DRV_PROG_ID => drv = u32_of(p),
            IFLA_XDP_SKB_PROG_ID => skb = u32_of(p),
            _ => {}
        }
    }
    let (mode, id) = match attached {
        0 => return None,
        XDP_ATTACHED_DRV => ("native", id),
        XDP_ATTACHED_SKB => ("generic", id),
        XDP_ATTACHED_HW => ("offload", id),
        _ => ("multi", if drv != 0 { drv } else { skb }),
    };
    Some(AttachedXdp { id, mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_missing_names_are_not_found() {
        let mut nl = match Rtnl::open() {
            Ok(nl) => nl,
            Err(e) => {
                eprintln!("skipping: no netlink socket: {e}");
                return;
            }
        };
        let lo = nl.link("lo").unwrap();
        assert!(lo.ifindex > 0);
        assert_eq!(lo.mtu, 65536);
        assert!(lo.rx_queues >= 1);
        let e = nl.link("fp-no-such-if0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        // The socket stays usable after an error answer.
        assert_eq!(nl.link("lo").unwrap().ifindex, lo.ifindex);
    }
}
