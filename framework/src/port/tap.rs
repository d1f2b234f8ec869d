//! The `tap` port, like DPDK's `net_tap`: frames move through a Linux TAP interface.
//!
//! [`TapPort::open`] opens `/dev/net/tun` (non-blocking) and attaches it with `TUNSETIFF`
//! (`IFF_TAP | IFF_NO_PI`) to the interface named in the config, creating it if it does not
//! exist. It then sets the MTU (`SIOCSIFMTU`, skipped when already right), brings the link up
//! (`SIOCSIFFLAGS`, skipped when already up) and reads the interface's MAC (`SIOCGIFHWADDR`).
//! Frames written by the port are *received* by the kernel on that interface; frames the kernel
//! *sends* out of it are read by the port. The kernel side is therefore the peer on the other
//! end of the wire: give it an address (`ip addr add 198.18.10.1/24 dev fp-tap0`) and it
//! answers ARP and ping, or route traffic through it.
//!
//! **MAC.** The kernel interface keeps its own MAC. The port's MAC ([`PortInfo::mac`], the one
//! the stack puts in the frames it sends) is [`TapConfig::mac`] or, when that is `None`, the
//! interface's own MAC. Both work — a tap filters nothing on the port side, and the kernel
//! accepts frames addressed to its own MAC — but a distinct MAC keeps captures readable.
//!
//! **Cost per frame.** A TAP has no batched interface: no ring shared with the kernel, no
//! `recvmmsg` on a character device. Receive is one `read()` per frame and transmit one
//! `write()` per frame, which is inherent to the device, not a shortcut of this driver; use
//! `af_packet` or `af_xdp` where the rate matters. `rx_burst` reads until the kernel queue is
//! empty (`EAGAIN`) or the burst is full, so an empty queue costs exactly one system call and no
//! mempool operation: the rx queue keeps the mbuf(s) for the next frame armed between calls.
//!
//! **Chains.** Receive buffers are sized for `mtu` + 18 bytes (Ethernet header and one VLAN
//! tag) plus one spare byte. When that exceeds the pool's `data_room`, each read is a `readv()`
//! over several mbufs and the frame arrives as a chain of segments; `open` refuses a
//! configuration needing more than [`MAX_RX_SEGS`] segments. A read that fills the buffers was
//! cut by the kernel (the MTU was raised behind the port's back): that frame is dropped and
//! counted in `ierrors`. On transmit, chains are written
//! with one `writev()` (or, past [`MAX_TX_IOV`] segments, copied into a buffer allocated at
//! `open` and written with one `write()`).
//!
//! **Errors.** On transmit, `EAGAIN` leaves the rest of the burst to the caller; any other
//! error (a runt frame, a link that is down — the kernel refuses those writes with `EIO` — or a
//! deleted interface) drops that frame and counts it in `oerrors`. On
//! receive, errors other than `EAGAIN`/`EINTR` end the burst and count in `ierrors`.
//!
//! **Lifetime.** The port, its rx queue and its tx queue share the file descriptor; it is closed
//! when the last of them is dropped. A tap created by `open` is not made persistent, so it
//! disappears with that last descriptor; an existing (persistent) tap the port attached to stays.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, QueueSlots, RxQueue, TxQueue,
};
use crate::batch::Burst;
use crate::mem::{Mbuf, Mempool};
use crate::port::counters::QueueCounterRef;

/// The TUN/TAP clone device.
pub const TUN_PATH: &str = "/dev/net/tun";

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// Bytes a received frame may carry beyond the MTU: the Ethernet header and one VLAN tag.
pub const FRAME_OVERHEAD: usize = 18;

/// Most mbufs one received frame may be spread over (MTU + [`FRAME_OVERHEAD`] divided by the
/// pool's `data_room`, rounded up).
pub const MAX_RX_SEGS: usize = 64;

/// Most segments of a chain written with one `writev()`; longer chains are copied first.
pub const MAX_TX_IOV: usize = 64;

/// Smallest MTU Linux accepts on a tap (`ETH_MIN_MTU`).
const MIN_MTU: u16 = 68;

/// Size of the transmit copy buffer: the largest frame a tap takes.
const TX_COPY_BYTES: usize = u16::MAX as usize + FRAME_OVERHEAD;

/// Link speed reported while the link is up (what DPDK's `net_tap` reports).
const TAP_SPEED_MBPS: u32 = 10_000;

/// Settings of a tap port.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// Port name (metrics labels, errors).
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// Pool that received frames are stored in.
    pub pool: Mempool,
    /// Interface name (at most 15 bytes): created if it does not exist, attached to otherwise.
    /// A `%d` in the name lets the kernel pick a free number ([`TapPort::iface`] tells which).
    pub iface: String,
    /// MTU set on the interface (68..=65535).
    pub mtu: u16,
    /// The port's MAC address; `None` uses the interface's own MAC.
    pub mac: Option<MacAddr>,
    /// Bring the link up (the usual choice); `false` leaves its state as found. A tap that is
    /// down delivers nothing to the port.
    pub up: bool,
}

impl TapConfig {
    /// Settings with the defaults: MTU 1500, the interface's own MAC, link brought up.
    pub fn new(name: &str, id: u16, pool: Mempool, iface: &str) -> TapConfig {
        TapConfig {
            name: name.to_string(),
            id,
            pool,
            iface: iface.to_string(),
            mtu: 1500,
            mac: None,
            up: true,
        }
    }
}

/// A tap port: one rx queue and one tx queue on a Linux TAP interface.
pub struct TapPort {
    info: PortInfo,
    counters: PortCounters,
    rx: QueueSlots<TapRx>,
    tx: QueueSlots<TapTx>,
    iface: String,
    created: bool,
    iface_mac: MacAddr,
    /// An `AF_INET` datagram socket for interface ioctls (in the namespace of `open`).
    ctl: OwnedFd,
    /// Keeps the tap attached while the port lives, even with its queues dropped.
    _tap: Arc<OwnedFd>,
}

fn driver_err(port: &str, message: String) -> PortError {
    PortError::Driver {
        port: port.to_string(),
        message,
    }
}

impl TapPort {
    /// Opens (creating if needed) the tap interface, sets its MTU, brings it up if asked, and
    /// reads its MAC. Must run in the network namespace the interface belongs in; the port can
    /// then be used from any thread.
    ///
    /// Fails with [`PortError::Driver`], naming the interface and the fix, when the name is
    /// invalid or longer than [`IFNAME_MAX`], the MTU is out of range, the pool's buffers need
    /// more than [`MAX_RX_SEGS`] segments per frame, `/dev/net/tun` is missing or not
    /// accessible, the process lacks `CAP_NET_ADMIN`, the name belongs to an interface that is
    /// not a single-queue tap, or the tap is already in use by another process.
    pub fn open(cfg: TapConfig) -> Result<TapPort, PortError> {
        Self::open_at(cfg, Path::new(TUN_PATH))
    }

    fn open_at(cfg: TapConfig, tun: &Path) -> Result<TapPort, PortError> {
        let err = |m: String| driver_err(&cfg.name, m);
        let want = cfg.iface.as_str();
        check_ifname(want).map_err(|m| err(format!("tap interface name {want:?} {m}")))?;
        if cfg.mtu < MIN_MTU {
            return Err(err(format!(
                "tap {want}: mtu {} is too small; Linux accepts {MIN_MTU}..=65535",
                cfg.mtu
            )));
        }
        if let Some(m) = cfg.mac {
            if m.is_multicast() || m == MacAddr::default() {
                return Err(err(format!(
                    "tap {want}: mac {m} is not a unicast address; use e.g. 02:00:00:00:00:01 \
                     (locally administered) or leave it unset to use the tap's own"
                )));
            }
        }
        let room = cfg.pool.data_room() as usize;
        let max_frame = cfg.mtu as usize + FRAME_OVERHEAD;
        // One spare byte tells a frame that filled the buffers from one the kernel cut.
        let segs = (max_frame + 1).div_ceil(room);
        if segs > MAX_RX_SEGS {
            return Err(err(format!(
                "tap {want}: frames of mtu {} + {FRAME_OVERHEAD} bytes need {segs} mbufs of \
                 pool {} (data_room {room}), more than the {MAX_RX_SEGS} allowed: raise the \
                 pool's data_room or lower the mtu",
                cfg.mtu,
                cfg.pool.name()
            )));
        }
        if segs > cfg.pool.capacity() {
            return Err(err(format!(
                "tap {want}: one frame needs {segs} mbufs but pool {} has only {}",
                cfg.pool.name(),
                cfg.pool.capacity()
            )));
        }

        let ctl = control_socket()
            .map_err(|e| err(format!("tap {want}: cannot open a control socket: {e}")))?;
        let existed = !want.contains('%') && get_flags(&ctl, want).is_ok();

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(tun)
            .map_err(|e| err(tun_open_error(tun, want, &e)))?;
        let tap: OwnedFd = file.into();
        let iface = set_iff(&tap, want).map_err(|e| err(set_iff_error(want, existed, &e)))?;

        let mtu = get_mtu(&ctl, &iface)
            .map_err(|e| err(format!("tap {iface}: cannot read the mtu: {e}")))?;
        if mtu != cfg.mtu as i32 {
            set_mtu(&ctl, &iface, cfg.mtu as i32).map_err(|e| {
                err(format!(
                    "tap {iface}: cannot set mtu {}: {e}{}",
                    cfg.mtu,
                    perm_hint(&e, &iface)
                ))
            })?;
        }
        if cfg.up {
            let flags = get_flags(&ctl, &iface)
                .map_err(|e| err(format!("tap {iface}: cannot read the link flags: {e}")))?;
            if flags & libc::IFF_UP == 0 {
                set_flags(&ctl, &iface, flags | libc::IFF_UP).map_err(|e| {
                    err(format!(
                        "tap {iface}: cannot bring the link up: {e}{}",
                        perm_hint(&e, &iface)
                    ))
                })?;
            }
        }
        let iface_mac = get_hwaddr(&ctl, &iface)
            .map_err(|e| err(format!("tap {iface}: cannot read the MAC address: {e}")))?;

        let tap = Arc::new(tap);
        let counters = PortCounters::new(1, 1);
        let rx = TapRx {
            armed: Mutex::new(Vec::with_capacity(segs)),
            fd: tap.clone(),
            pool: cfg.pool.clone(),
            port: cfg.id,
            room,
            segs,
            counters: counters.rx(0),
        };
        let tx = TapTx {
            fd: tap.clone(),
            copy: vec![0u8; TX_COPY_BYTES].into_boxed_slice(),
            counters: counters.tx(0),
        };
        Ok(TapPort {
            info: PortInfo {
                name: cfg.name.clone(),
                id: cfg.id,
                driver: "tap",
                mac: cfg.mac.unwrap_or(iface_mac),
                mtu: cfg.mtu,
                rx_queues: 1,
                tx_queues: 1,
                tx_l4_checksum_offload: false,
            },
            counters,
            rx: QueueSlots::new(&cfg.name, "rx", vec![rx]),
            tx: QueueSlots::new(&cfg.name, "tx", vec![tx]),
            iface,
            created: !existed,
            iface_mac,
            ctl,
            _tap: tap,
        })
    }

    /// The interface's name as the kernel knows it (a `%d` template resolved).
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// True when `open` created the interface (it disappears when the port and its queues are
    /// dropped); false when it attached to an existing one.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The kernel interface's own MAC (the peer's address, as the port sees it). Equal to
    /// [`PortInfo::mac`] unless [`TapConfig::mac`] was set.
    pub fn iface_mac(&self) -> MacAddr {
        self.iface_mac
    }
}

impl Port for TapPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    /// Up when the interface is administratively up and running (it has a carrier as long as
    /// the port holds it). Down if the interface was deleted or moved away.
    fn link(&self) -> LinkStatus {
        let both = libc::IFF_UP | libc::IFF_RUNNING;
        let up = get_flags(&self.ctl, &self.iface).is_ok_and(|f| f & both == both);
        LinkStatus {
            up,
            speed_mbps: if up { TAP_SPEED_MBPS } else { 0 },
            full_duplex: true,
        }
    }

    fn counters(&self) -> &PortCounters {
        &self.counters
    }

    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError> {
        Ok(Box::new(self.rx.take(q)?))
    }

    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(self.tx.take(q)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Receive.

struct TapRx {
    /// Mbufs armed for the next frame: the head first, then spare segments. Declared before
    /// `pool` so they go back to it first on drop. Capacity `segs`, never exceeded. The mutex
    /// is never locked (only `get_mut` is used): it makes the queue `Sync` while it waits in
    /// the port, as `Port` requires.
    armed: Mutex<Vec<Mbuf>>,
    fd: Arc<OwnedFd>,
    pool: Mempool,
    port: u16,
    /// Data room of one mbuf.
    room: usize,
    /// Mbufs armed per read.
    segs: usize,
    counters: QueueCounterRef,
}

impl TapRx {
    /// Fills `armed` up to `segs` mbufs; false if the pool ran out.
    #[inline]
    fn arm(armed: &mut Vec<Mbuf>, pool: &Mempool, segs: usize) -> bool {
        while armed.len() < segs {
            match pool.alloc() {
                Some(m) => armed.push(m),
                None => return false,
            }
        }
        true
    }
}

impl RxQueue for TapRx {
    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let n = max.min(out.remaining());
        let fd = self.fd.as_raw_fd();
        let armed = self.armed.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut got = 0usize;
        let mut bytes = 0usize;
        while got < n {
            if !Self::arm(armed, &self.pool, self.segs) {
                self.counters.nombuf.add(1);
                break;
            }
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_RX_SEGS];
            for (v, m) in iov.iter_mut().zip(armed.iter_mut()) {
                // Fresh, unchained, unshared mbufs: the whole data room is writable.
                m.set_len(self.room);
                let d = m.data_mut();
                v.iov_base = d.as_mut_ptr().cast();
                v.iov_len = d.len();
            }
            // SAFETY: the iovecs describe the data rooms of the armed mbufs, owned by this queue
            // and not otherwise borrowed during the call.
            let r = unsafe {
                if self.segs == 1 {
                    libc::read(fd, iov[0].iov_base, iov[0].iov_len)
                } else {
                    libc::readv(fd, iov.as_ptr(), self.segs as libc::c_int)
                }
            };
            if r <= 0 {
                if r < 0 {
                    let e = io::Error::last_os_error().raw_os_error();
                    if e != Some(libc::EAGAIN) && e != Some(libc::EINTR) {
                        self.counters.errors.add(1);
                    }
                }
                break;
            }
            let len = r as usize;
            if len >= self.room * self.segs {
                // The buffers hold at least one byte more than the largest frame the MTU
                // allows, so a read that fills them was cut by the kernel (which returns either
                // the copied or, on older kernels, the full length).
                self.counters.errors.add(1);
                continue;
            }
            let used = len.div_ceil(self.room);
            let mut segs = armed.drain(..used);
            let Some(mut head) = segs.next() else { break };
            let first = len.min(self.room);
            head.set_len(first);
            let mut left = len - first;
            for mut seg in segs {
                let l = left.min(self.room);
                seg.set_len(l);
                left -= l;
                // Cannot fail: at most MAX_RX_SEGS segments of at most 64 KiB.
                let _ = head.chain(seg);
            }
            head.set_port(self.port);
            // Cannot fail: got < n <= out.remaining().
            if out.push(head).is_err() {
                break;
            }
            got += 1;
            bytes += len;
        }
        self.counters.packets.add(got as u64);
        self.counters.bytes.add(bytes as u64);
        got
    }
}

// ---------------------------------------------------------------------------------------------
// Transmit.

struct TapTx {
    fd: Arc<OwnedFd>,
    /// Staging buffer for chains of more than MAX_TX_IOV segments (allocated once at open).
    copy: Box<[u8]>,
    counters: QueueCounterRef,
}

/// Writes one frame; `Err(errno)` on failure (`EINVAL` for a frame too long to stage).
#[inline]
fn write_frame(fd: RawFd, copy: &mut [u8], m: &Mbuf) -> Result<(), i32> {
    let r = if m.nb_segs() == 1 {
        let d = m.data();
        // SAFETY: writes from a live, borrowed slice.
        unsafe { libc::write(fd, d.as_ptr().cast(), d.len()) }
    } else if m.nb_segs() <= MAX_TX_IOV {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_TX_IOV];
        let mut k = 0;
        for (v, s) in iov.iter_mut().zip(m.segments()) {
            v.iov_base = s.as_ptr() as *mut libc::c_void;
            v.iov_len = s.len();
            k += 1;
        }
        // SAFETY: the iovecs describe the segments of `m`, borrowed for the call; writev only
        // reads them.
        unsafe { libc::writev(fd, iov.as_ptr(), k as libc::c_int) }
    } else {
        let len = m.pkt_len();
        if len > copy.len() || !m.read_at(0, &mut copy[..len]) {
            return Err(libc::EINVAL);
        }
        // SAFETY: writes from the borrowed staging buffer.
        unsafe { libc::write(fd, copy.as_ptr().cast(), len) }
    };
    if r < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    Ok(())
}

impl TxQueue for TapTx {
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let fd = self.fd.as_raw_fd();
        let mut taken = 0usize;
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut failed = 0u64;
        for m in pkts.iter() {
            match write_frame(fd, &mut self.copy, m) {
                Ok(()) => {
                    sent += 1;
                    bytes += m.pkt_len() as u64;
                }
                Err(e) if e == libc::EAGAIN || e == libc::EINTR || e == libc::ENOBUFS => break,
                Err(_) => failed += 1,
            }
            taken += 1;
        }
        pkts.discard_front(taken);
        self.counters.packets.add(sent);
        self.counters.bytes.add(bytes);
        self.counters.errors.add(failed);
        taken
    }
}

// ---------------------------------------------------------------------------------------------
// Interface ioctls.

/// Checks an interface name the way the kernel's `dev_valid_name` does; the error completes
/// "tap interface name "...": ".
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty: give the interface a name such as fp-tap0".into());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "is {} bytes long; Linux interface names have at most {IFNAME_MAX}: use a shorter \
             one such as fp-tap0",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err("is not allowed by Linux: use a name such as fp-tap0".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        return Err(format!(
            "contains {c:?}, which Linux does not allow in interface names"
        ));
    }
    if name.matches('%').count() > 1 || (name.contains('%') && !name.contains("%d")) {
        return Err("may hold one %d (a number the kernel picks) and no other %".into());
    }
    Ok(())
}

fn tun_open_error(tun: &Path, iface: &str, e: &io::Error) -> String {
    let p = tun.display();
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "{p} does not exist: load the tun module (modprobe tun); in a container, pass the \
             device in (docker run --device /dev/net/tun --cap-add NET_ADMIN)"
        ),
        Some(libc::ENODEV) | Some(libc::ENXIO) => {
            format!("{p} has no driver behind it: load the tun module (modprobe tun)")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("{p} is not accessible: run as root, or give the user read/write access to it")
        }
        _ => format!("cannot open {p}"),
    };
    format!("tap {iface}: {hint} ({e})")
}

fn set_iff_error(iface: &str, existed: bool, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) if existed => format!(
            "tap {iface}: attaching to the existing interface is not permitted ({e}): run as \
             root or with CAP_NET_ADMIN (setcap cap_net_admin+ep on the binary), or have it \
             created for this user (ip tuntap add dev {iface} mode tap user $USER)"
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "tap {iface}: creating a tap needs CAP_NET_ADMIN ({e}): run as root or with \
             CAP_NET_ADMIN (setcap cap_net_admin+ep on the binary), or create it beforehand for \
             this user (ip tuntap add dev {iface} mode tap user $USER)"
        ),
        Some(libc::EBUSY) => format!(
            "tap {iface}: the interface is already in use by another process (a single-queue \
             tap has one reader): stop that process or choose another name ({e})"
        ),
        Some(libc::EINVAL) if existed => format!(
            "tap {iface}: an interface of that name exists and is not a single-queue tap (a \
             tun, a multi-queue tap or another kind of device): choose another name ({e})"
        ),
        _ => format!("tap {iface}: TUNSETIFF failed: {e}"),
    }
}

fn perm_hint(e: &io::Error, iface: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            " (needs CAP_NET_ADMIN: run as root, or set it up beforehand with ip link set \
             {iface} ...)"
        ),
        _ => String::new(),
    }
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes().take(IFNAME_MAX)) {
        *d = s as libc::c_char;
    }
    r
}

fn ifreq_name(r: &libc::ifreq) -> String {
    let bytes: Vec<u8> = r
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn ioctl(fd: RawFd, req: libc::c_ulong, r: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request used here reads or writes one `struct ifreq`.
    if unsafe { libc::ioctl(fd, req as _, r as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TUNSETIFF; returns the interface's name as the kernel set it.
fn set_iff(tap: &OwnedFd, name: &str) -> io::Result<String> {
    let mut r = ifreq(name);
    r.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    ioctl(tap.as_raw_fd(), libc::TUNSETIFF as libc::c_ulong, &mut r)?;
    Ok(ifreq_name(&r))
}

fn get_flags(ctl: &OwnedFd, name: &str) -> io::Result<libc::c_int> {
    let mut r = ifreq(name);
    ioctl(ctl.as_raw_fd(), libc::SIOCGIFFLAGS as libc::c_ulong, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    Ok(unsafe { r.ifr_ifru.ifru_flags } as u16 as libc::c_int)
}

fn set_flags(ctl: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<()> {
    let mut r = ifreq(name);
    r.ifr_ifru.ifru_flags = flags as libc::c_short;
    ioctl(ctl.as_raw_fd(), libc::SIOCSIFFLAGS as libc::c_ulong, &mut r)
}

fn get_mtu(ctl: &OwnedFd, name: &str) -> io::Result<i32> {
    let mut r = ifreq(name);
    ioctl(ctl.as_raw_fd(), libc::SIOCGIFMTU as libc::c_ulong, &mut r)?;
    // SAFETY: SIOCGIFMTU filled the mtu member.
    Ok(unsafe { r.ifr_ifru.ifru_mtu })
}

fn set_mtu(ctl: &OwnedFd, name: &str, mtu: i32) -> io::Result<()> {
    let mut r = ifreq(name);
    r.ifr_ifru.ifru_mtu = mtu;
    ioctl(ctl.as_raw_fd(), libc::SIOCSIFMTU as libc::c_ulong, &mut r)
}

fn get_hwaddr(ctl: &OwnedFd, name: &str) -> io::Result<MacAddr> {
    let mut r = ifreq(name);
    ioctl(
        ctl.as_raw_fd(),
        libc::SIOCGIFHWADDR as libc::c_ulong,
        &mut r,
    )?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    let sa = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(MacAddr(mac))
}

#[cfg(test)]
mod tests {
    //! These tests create taps, so they need root (CAP_NET_ADMIN). Without it they print
    //! "skipping: needs root" and pass, unless FERROPLANE_REQUIRE_TOOLS=1 makes that a failure.
    //! Each one works in a network namespace of its own (`fp-<pid>-t<n>`, removed by a guard,
    //! also on panic), with IPv6 off so the kernel sends nothing unasked.

    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};
    use std::fs::File;
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x02]);
    const OUR_IP: [u8; 4] = [198, 18, 10, 2];
    const KERNEL_IP: [u8; 4] = [198, 18, 10, 1];

    fn require_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        assert!(
            std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "tap tests need root (CAP_NET_ADMIN) but FERROPLANE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipping: needs root");
        false
    }

    fn pool(n: u32, data_room: u16) -> Mempool {
        let mut p = MempoolParams::new("tap-test", n);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = data_room;
        Mempool::new(&p).unwrap()
    }

    fn ip(args: &[&str]) -> String {
        let o = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            o.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A fresh network namespace, deleted on drop (closing our taps first is up to the test:
    /// the namespace disappears once nothing holds it).
    struct TestNs {
        name: String,
    }

    impl TestNs {
        fn new() -> TestNs {
            static N: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "fp-{}-t{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            ip(&["netns", "add", &name]);
            let ns = TestNs { name };
            // Through /proc (as seen inside the namespace), so no sysctl binary is needed.
            ns.ip(&[
                "netns",
                "exec",
                &ns.name,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && \
                 echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
            ]);
            ns
        }

        /// `ip` with the arguments as given (callers add `-n NAME` or `netns exec NAME`).
        fn ip(&self, args: &[&str]) -> String {
            ip(args)
        }

        /// `ip -n NAME args…`
        fn ipn(&self, args: &[&str]) -> String {
            let mut all = vec!["-n", &self.name];
            all.extend_from_slice(args);
            ip(&all)
        }

        /// Runs `f` on a thread that entered the namespace (the rest of the process stays
        /// where it is).
        fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
            let path = format!("/run/netns/{}", self.name);
            std::thread::scope(|s| {
                s.spawn(|| {
                    let ns = File::open(&path).expect("open netns");
                    // SAFETY: setns on this thread only, with a namespace descriptor we own.
                    let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(r, 0, "setns: {}", io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        }

        fn open(&self, cfg: TapConfig) -> Result<TapPort, PortError> {
            self.enter(|| TapPort::open(cfg))
        }

        /// Opens the port on a thread that entered the namespace and then became user 65534
        /// (`nobody`), without capabilities. The raw `setresuid` system call changes the
        /// credentials of the calling thread only.
        fn open_as_nobody(&self, cfg: TapConfig) -> Result<TapPort, PortError> {
            self.enter(|| {
                // SAFETY: plain system call; affects this (short-lived) thread only.
                let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
                assert_eq!(r, 0, "setresuid: {}", io::Error::last_os_error());
                TapPort::open(cfg)
            })
        }

        fn link_exists(&self, iface: &str) -> bool {
            Command::new("ip")
                .args(["-n", &self.name, "link", "show", "dev", iface])
                .output()
                .unwrap()
                .status
                .success()
        }
    }

    impl Drop for TestNs {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .status();
        }
    }

    /// True once the port reports its link up, within 3 s: IFF_RUNNING follows the carrier
    /// through the kernel's link watcher, which may defer the change by up to a second.
    fn comes_up(port: &TapPort) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            if port.link().up {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn cfg(pool: &Mempool, iface: &str) -> TapConfig {
        let mut c = TapConfig::new("tap0", 3, pool.clone(), iface);
        c.mac = Some(OUR_MAC);
        c
    }

    fn arp_request(src_mac: MacAddr, src_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&src_mac.0);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
        f.extend_from_slice(&src_mac.0);
        f.extend_from_slice(&src_ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        f
    }

    fn checksum(b: &[u8]) -> u16 {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// An ICMP echo request from us to the kernel with `payload` bytes of data.
    fn echo_request(dst_mac: MacAddr, id: u16, payload: usize) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac.0);
        f.extend_from_slice(&OUR_MAC.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
        ip.extend_from_slice(&OUR_IP);
        ip.extend_from_slice(&KERNEL_IP);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut icmp = vec![8, 0, 0, 0];
        icmp.extend_from_slice(&id.to_be_bytes());
        icmp.extend_from_slice(&1u16.to_be_bytes());
        icmp.extend((0..payload).map(|i| (i * 7 + id as usize) as u8));
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&icmp);
        f
    }

    /// `bytes` as a chain of segments of at most `seg` bytes from `pool`.
    fn chain_of(pool: &Mempool, bytes: &[u8], seg: usize) -> Mbuf {
        let mut pieces = bytes.chunks(seg);
        let mut head = pool.alloc().unwrap();
        let first = pieces.next().unwrap();
        head.append(first.len()).unwrap().copy_from_slice(first);
        for p in pieces {
            let mut m = pool.alloc().unwrap();
            m.append(p.len()).unwrap().copy_from_slice(p);
            head.chain(m).unwrap();
        }
        head
    }

    fn bytes_of(m: &Mbuf) -> Vec<u8> {
        m.segments().flatten().copied().collect()
    }

    /// Polls `rx` for up to 3 s until a frame matching `want` arrives; other frames are dropped.
    fn recv_matching(rx: &mut dyn RxQueue, want: impl Fn(&[u8]) -> bool) -> Option<Mbuf> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut b = Burst::new();
        while Instant::now() < deadline {
            if rx.rx_burst(&mut b, 32) == 0 {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            while let Some(m) = b.pop() {
                if want(&bytes_of(&m)) {
                    return Some(m);
                }
            }
        }
        None
    }

    fn is_arp_reply(f: &[u8]) -> bool {
        f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2]
    }

    fn send(tx: &mut dyn TxQueue, m: Mbuf) {
        let mut b = Burst::new();
        b.push(m).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 1);
        assert!(b.is_empty());
    }

    fn send_bytes(tx: &mut dyn TxQueue, pool: &Mempool, frame: &[u8]) {
        let mut m = pool.alloc().unwrap();
        m.append(frame.len()).unwrap().copy_from_slice(frame);
        send(tx, m);
    }

    #[test]
    fn arp_round_trip_through_the_kernel() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(64, 2048);
        let mut port = ns.open(cfg(&mp, "fp-tap0")).unwrap();
        assert!(port.created());
        assert_eq!(port.iface(), "fp-tap0");
        assert_eq!(port.info().mac, OUR_MAC);
        assert_eq!(port.info().driver, "tap");
        assert!(comes_up(&port));
        let kernel_mac = port.iface_mac();
        assert_ne!(kernel_mac, OUR_MAC);
        ns.ipn(&["addr", "add", "198.18.10.1/24", "dev", "fp-tap0"]);

        let mut rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        // Nothing waits: one read, nothing received, one mbuf armed for the next frame.
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 0);
        assert_eq!(mp.in_use(), 1);

        send_bytes(&mut *tx, &mp, &arp_request(OUR_MAC, OUR_IP, KERNEL_IP));
        let reply = recv_matching(&mut *rx, is_arp_reply).expect("no ARP reply from the kernel");
        let f = bytes_of(&reply);
        assert_eq!(reply.port(), 3);
        assert_eq!(f[0..6], OUR_MAC.0, "reply goes to our MAC");
        assert_eq!(f[6..12], kernel_mac.0);
        assert_eq!(f[22..28], kernel_mac.0, "sender hardware address");
        assert_eq!(f[28..32], KERNEL_IP);
        assert_eq!(f[32..38], OUR_MAC.0);
        assert_eq!(f[38..42], OUR_IP);
        // The request reached the kernel on its own: it learned our address from it.
        let neigh = ns.ipn(&["neigh", "show", "198.18.10.2", "dev", "fp-tap0"]);
        assert!(neigh.contains(&OUR_MAC.to_string()), "{neigh}");

        let s = port.stats();
        assert_eq!((s.opackets, s.obytes, s.oerrors), (1, 60, 0));
        assert!(s.ipackets >= 1 && s.ibytes >= 42, "{s:?}");
        drop(reply);
        drop((rx, tx));
        assert_eq!(mp.in_use(), 0, "the armed mbuf goes back with the queue");
    }

    #[test]
    fn chains_both_ways_with_icmp_echo() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        // data_room 256: a 1500-byte MTU needs 6 segments per read.
        let mp = pool(256, 256);
        let mut port = ns.open(cfg(&mp, "fp-tap1")).unwrap();
        let kernel_mac = port.iface_mac();
        ns.ipn(&["addr", "add", "198.18.10.1/24", "dev", "fp-tap1"]);
        ns.ipn(&[
            "neigh",
            "replace",
            "198.18.10.2",
            "lladdr",
            &OUR_MAC.to_string(),
            "dev",
            "fp-tap1",
            "nud",
            "permanent",
        ]);
        let mut rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        // A tiny-segment pool for transmit: 70 segments exceed MAX_TX_IOV (the copy path).
        let small = pool(512, 16);
        // And a single-segment frame.
        let big = pool(16, 2048);
        for (id, seg_pool, seg) in [(1u16, &mp, 256usize), (2, &small, 16), (3, &big, 2048)] {
            let req = echo_request(kernel_mac, id, 1000);
            let m = chain_of(seg_pool, &req, seg);
            assert_eq!(m.nb_segs(), req.len().div_ceil(seg));
            send(&mut *tx, m);
            let reply = recv_matching(&mut *rx, |f| {
                f.len() >= 42
                    && f[12..14] == [0x08, 0x00]
                    && f[34] == 0
                    && f[38..40] == id.to_be_bytes()
            })
            .unwrap_or_else(|| panic!("no echo reply to request {id}"));
            assert_eq!(reply.pkt_len(), req.len());
            assert_eq!(
                reply.nb_segs(),
                req.len().div_ceil(256),
                "received as a chain"
            );
            let f = bytes_of(&reply);
            assert_eq!(f[0..6], OUR_MAC.0);
            assert_eq!(f[26..30], KERNEL_IP);
            assert_eq!(f[42..], req[42..], "payload echoed");
        }
        let s = port.stats();
        assert_eq!((s.opackets, s.oerrors), (3, 0));
        assert_eq!(s.obytes, 3 * 1042);
    }

    #[test]
    fn empty_pool_counts_nombuf_and_loses_nothing() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(8, 2048);
        let mut port = ns.open(cfg(&mp, "fp-tap2")).unwrap();
        ns.ipn(&["addr", "add", "198.18.10.1/24", "dev", "fp-tap2"]);
        let mut rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        send_bytes(&mut *tx, &mp, &arp_request(OUR_MAC, OUR_IP, KERNEL_IP));
        let mut held = Burst::new();
        assert!(mp.alloc_bulk(&mut held, 8));
        let mut b = Burst::new();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(rx.rx_burst(&mut b, 32), 0);
        assert_eq!(port.stats().rx_nombuf, 1);
        held.clear();
        // The reply waited in the kernel's queue.
        assert!(recv_matching(&mut *rx, is_arp_reply).is_some());
    }

    #[test]
    fn frames_longer_than_the_buffers_are_counted_and_skipped() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(64, 2048);
        let mut port = ns.open(cfg(&mp, "fp-tap4")).unwrap();
        let kernel_mac = port.iface_mac();
        ns.ipn(&["addr", "add", "198.18.10.1/24", "dev", "fp-tap4"]);
        ns.ipn(&[
            "neigh",
            "replace",
            "198.18.10.2",
            "lladdr",
            &OUR_MAC.to_string(),
            "dev",
            "fp-tap4",
            "nud",
            "permanent",
        ]);
        // Behind the port's back: its buffers still hold 1518 bytes.
        ns.ipn(&["link", "set", "dev", "fp-tap4", "mtu", "9000"]);
        let mut rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        let big = echo_request(kernel_mac, 7, 3000);
        send(&mut *tx, chain_of(&mp, &big, 2048));
        let small = echo_request(kernel_mac, 8, 100);
        send(&mut *tx, chain_of(&mp, &small, 2048));
        let reply = recv_matching(&mut *rx, |f| f.len() > 40 && f[34] == 0)
            .expect("the small reply still arrives");
        assert_eq!(reply.pkt_len(), small.len());
        assert_eq!(port.stats().ierrors, 1, "the 3042-byte reply was dropped");
    }

    #[test]
    fn attaches_to_an_existing_tap_and_leaves_it() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        ns.ipn(&["tuntap", "add", "dev", "fp-tap3", "mode", "tap"]);
        let mp = pool(16, 2048);
        let mut c = cfg(&mp, "fp-tap3");
        c.mac = None;
        c.mtu = 1400;
        let port = ns.open(c).unwrap();
        assert!(!port.created());
        let shown = ns.ipn(&["link", "show", "dev", "fp-tap3"]);
        assert!(
            shown.contains("mtu 1400") && shown.contains(",UP"),
            "{shown}"
        );
        // Without a configured MAC the port uses the interface's own.
        assert_eq!(port.info().mac, port.iface_mac());
        assert!(shown.contains(&port.iface_mac().to_string()), "{shown}");
        assert_eq!(port.info().mtu, 1400);
        // A single-queue tap has one reader.
        let second = ns.open(cfg(&mp, "fp-tap3")).err().expect("second open");
        assert!(second.to_string().contains("already in use"), "{second}");
        drop(port);
        assert!(ns.link_exists("fp-tap3"), "a persistent tap stays");
    }

    #[test]
    fn created_tap_disappears_with_its_last_queue() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(16, 2048);
        let mut c = cfg(&mp, "fp-tap%d");
        c.up = false;
        let mut port = ns.open(c).unwrap();
        let name = port.iface().to_string();
        assert!(name.starts_with("fp-tap") && !name.contains('%'), "{name}");
        assert!(ns.link_exists(&name));
        assert!(!port.link().up, "left down as asked");
        let rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        let mut b = Burst::new();
        let mut m = mp.alloc().unwrap();
        m.append(60)
            .unwrap()
            .copy_from_slice(&arp_request(OUR_MAC, OUR_IP, KERNEL_IP));
        b.push(m).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 1, "taken, not left in the burst");
        assert_eq!(port.stats().oerrors, 1, "a down tap refuses writes (EIO)");
        drop(tx);
        drop(port);
        assert!(ns.link_exists(&name), "the rx queue still holds the tap");
        drop(rx);
        assert!(!ns.link_exists(&name), "gone with the last descriptor");
    }

    #[test]
    fn without_cap_net_admin_errors_name_the_fix() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(16, 2048);
        let e = ns
            .open_as_nobody(cfg(&mp, "fp-tap6"))
            .err()
            .expect("creating needs CAP_NET_ADMIN");
        let m = e.to_string();
        assert!(
            m.contains("creating a tap needs CAP_NET_ADMIN") && m.contains("ip tuntap add"),
            "{m}"
        );
        // A tap created for the user, already up, with the right MTU: no privilege needed.
        ns.ipn(&[
            "tuntap", "add", "dev", "fp-tap7", "mode", "tap", "user", "65534",
        ]);
        ns.ipn(&["link", "set", "dev", "fp-tap7", "up"]);
        let port = ns.open_as_nobody(cfg(&mp, "fp-tap7")).unwrap();
        assert!(!port.created() && comes_up(&port));
        drop(port);
        // A different MTU needs the capability again.
        let mut c = cfg(&mp, "fp-tap7");
        c.mtu = 1400;
        let m = ns.open_as_nobody(c).err().expect("mtu change").to_string();
        assert!(
            m.contains("cannot set mtu 1400") && m.contains("CAP_NET_ADMIN"),
            "{m}"
        );
        // Someone else's tap.
        ns.ipn(&[
            "tuntap", "add", "dev", "fp-tap8", "mode", "tap", "user", "0",
        ]);
        let m = ns
            .open_as_nobody(cfg(&mp, "fp-tap8"))
            .err()
            .expect("not ours")
            .to_string();
        assert!(
            m.contains("attaching to the existing interface is not permitted"),
            "{m}"
        );
    }

    #[test]
    fn names_that_are_not_taps_are_refused() {
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(16, 2048);
        let e = ns.open(cfg(&mp, "lo")).err().expect("lo is not a tap");
        assert!(e.to_string().contains("not a single-queue tap"), "{e}");
    }

    #[test]
    fn invalid_names_and_settings_are_refused_before_any_syscall() {
        let mp = pool(16, 256);
        let msg = |c: TapConfig| TapPort::open(c).err().expect("refused").to_string();
        let m = msg(cfg(&mp, "fp-tap-name-too-long"));
        assert!(
            m.contains("fp-tap-name-too-long") && m.contains("at most 15"),
            "{m}"
        );
        assert!(msg(cfg(&mp, "")).contains("is empty"));
        assert!(msg(cfg(&mp, "a/b")).contains("'/'"));
        assert!(msg(cfg(&mp, "a b")).contains("' '"));
        assert!(msg(cfg(&mp, "tap%s")).contains("%d"));
        let mut c = cfg(&mp, "fp-tap9");
        c.mtu = 20;
        assert!(msg(c).contains("mtu 20 is too small"));
        let mut c = cfg(&mp, "fp-tap9");
        c.mac = Some(MacAddr::BROADCAST);
        assert!(msg(c).contains("not a unicast"));
        // data_room 256 with a 65535 MTU: 65554 bytes need 257 segments.
        let mut c = cfg(&mp, "fp-tap9");
        c.mtu = 65535;
        let m = msg(c);
        assert!(m.contains("257 mbufs") && m.contains("data_room"), "{m}");
    }

    #[test]
    fn missing_tun_device_names_the_fix() {
        let mp = pool(16, 2048);
        let e = TapPort::open_at(cfg(&mp, "fp-tap9"), Path::new("/nonexistent/net/tun"))
            .err()
            .expect("refused");
        let m = e.to_string();
        assert!(
            m.starts_with("port tap0: tap fp-tap9:")
                && m.contains("/nonexistent/net/tun does not exist")
                && m.contains("modprobe tun"),
            "{m}"
        );
    }

    /// Records when the first frame reached the lcore's stage.
    struct FirstFrame(std::sync::Arc<std::sync::Mutex<Option<Instant>>>);

    impl crate::runtime::Stage for FirstFrame {
        fn process(&mut self, _port: u16, pkts: &mut Burst, _io: &mut crate::runtime::LcoreIo) {
            self.0.lock().unwrap().get_or_insert_with(Instant::now);
            while pkts.pop().is_some() {}
        }
    }

    #[test]
    fn an_idle_lcore_sleeps_in_poll_and_wakes_on_the_first_frame() {
        use crate::runtime::{IdlePolicy, Lcore, LcoreIo};
        if !require_root() {
            return;
        }
        let ns = TestNs::new();
        let mp = pool(64, 2048);
        let mut port = ns.open(cfg(&mp, "fp-tap0")).unwrap();
        assert!(comes_up(&port));
        ns.ipn(&["addr", "add", "198.18.10.1/24", "dev", "fp-tap0"]);
        let rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        assert!(rx.wake_fd().is_some());
        let first = std::sync::Arc::new(std::sync::Mutex::new(None));
        // Sleeps double up to 4 s while nothing arrives.
        let idle = IdlePolicy::Adaptive {
            spin_turns: 1,
            max_sleep_us: 4_000_000,
        };
        let stage = Box::new(FirstFrame(first.clone()));
        let mut lcore = Lcore::new(
            1,
            None,
            vec![(3, rx)],
            LcoreIo::new(vec![]),
            stage,
            32,
            idle,
        );
        let mon = lcore.monitor();
        let stop = std::sync::atomic::AtomicBool::new(false);
        /// Stops the lcore however the test ends (a failed assert must not leave it running).
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        std::thread::scope(|s| {
            s.spawn(|| lcore.run(&stop));
            let _stop = StopOnDrop(&stop);
            // After 1.5 s of backing off, each sleep is the better part of a second.
            std::thread::sleep(Duration::from_millis(1500));
            let asleep = mon.stats().idle_sleeps;
            assert!(asleep > 10, "{asleep} sleeps");
            // The kernel answers this with an ARP reply on the tap.
            let sent = Instant::now();
            send_bytes(&mut *tx, &mp, &arp_request(OUR_MAC, OUR_IP, KERNEL_IP));
            let deadline = sent + Duration::from_secs(5);
            let got = loop {
                if let Some(t) = *first.lock().unwrap() {
                    break Some(t);
                }
                if Instant::now() > deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let got = got.expect("the reply never reached the stage");
            let took = got.saturating_duration_since(sent);
            // A timed sleep would have run on for hundreds of milliseconds.
            assert!(
                took < Duration::from_millis(250),
                "woke {took:?} after the frame"
            );
        });
        // The sleep was cut short by the frame, not by its timeout.
        let st = mon.stats();
        assert!(st.idle_wakeups >= 1, "{st:?}");
        assert!(st.rx_packets >= 1, "{st:?}");
        drop((lcore, tx));
        assert_eq!(mp.in_use(), 0);
    }
}
