//! The `af_packet` port: a Linux network interface driven through `AF_PACKET` sockets with
//! memory-mapped rings, like DPDK's `net_af_packet` (with TPACKET_V3 on receive).
//!
//! **Receive.** Each rx queue is one socket bound to the interface (`ETH_P_ALL`) with a
//! TPACKET_V3 ring of [`AfPacketConfig::blocks`] blocks of [`AfPacketConfig::block_size`]
//! bytes. The kernel packs frames into a block and hands it over when it is full or when the
//! block timer ([`AfPacketConfig::block_timeout_ms`]) fires, so a frame waits at most that long
//! under light load. `rx_burst` only reads ring memory — no system call — and copies each frame
//! into an mbuf from the port's pool (in bulk); blocks go back to the kernel as soon as they
//! are read. With several rx queues the sockets form one `PACKET_FANOUT_HASH` group (id
//! chosen by the kernel, unique per port), so each flow lands on one queue; fragments of one
//! datagram hash alike (the kernel hashes fragments on addresses only). Sockets ignore frames
//! sent from the host (`PACKET_IGNORE_OUTGOING`, and the fanout flag of the same name), so a
//! port does not receive what it, or the kernel, transmits on the interface.
//!
//! What rx does with unusual frames:
//! * longer than the pool's data room: received as a **chain of segments** (one `alloc` per
//!   extra segment); if the pool runs dry mid-chain, the frame stays in the ring;
//! * pool empty: `nombuf` is counted and the frames stay in the ring for the next call;
//! * cut by the kernel (`tp_snaplen < tp_len`: larger than a block can hold): counted in
//!   `errors` and skipped;
//! * VLAN tag stripped by the kernel: put back into the frame (TPID and TCI as received), so
//!   the bytes are those on the wire;
//! * sent by this host with checksum offload (`TP_STATUS_CSUMNOTREADY`, e.g. a kernel peer on
//!   a veth): the TCP/UDP checksum is completed in software and `RX_L4_CKSUM_GOOD` set;
//! * the kernel's flow hash is stored as the mbuf's RSS hash (`RX_RSS_HASH`).
//!
//! Frames the kernel dropped because the ring was full are read from `PACKET_STATISTICS`
//! when a block arrives flagged `TP_STATUS_LOSING` (one system call, only under loss) and
//! whenever the port's statistics are read; [`Port::stats`] reports them as `imissed`.
//!
//! **Transmit.** Each tx queue is one socket with a TPACKET_V2 tx ring of
//! [`AfPacketConfig::tx_frames`] frames (frame size: MTU + headers rounded up to a power of
//! two, at least 2 KiB), `PACKET_QDISC_BYPASS` when [`AfPacketConfig::qdisc_bypass`], and
//! `PACKET_LOSS` (the kernel skips a frame it cannot send instead of stalling the ring).
//! `tx_burst` copies each packet (all segments) into a free frame, then makes **one**
//! `sendto(MSG_DONTWAIT)` kick per burst. Packets that do not fit stay in the caller's burst;
//! packets shorter than an Ethernet header or longer than MTU + 14 (+ 4 when 802.1Q tagged)
//! are counted in `errors` and freed. A failed kick (EAGAIN, ENOBUFS, …) is counted
//! ([`AfPacketXstats::tx_kick_errors`]); its frames stay requested and go out with the next
//! kick (the next `tx_burst`, or [`TxQueue::flush`]).
//!
//! **Set-up.** [`AfPacketPort::open`] checks the configuration, looks the interface up, reads
//! its MAC and MTU, sets promiscuous mode (a membership held by the port: it ends when the
//! port is dropped), then builds every socket and ring. Errors name the port and interface and
//! say what to do; whatever was opened before a failure is closed again. Opening needs
//! `CAP_NET_RAW`.

mod rx;
mod sys;
mod tx;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use self::rx::{AfPacketRx, RxShared};
use self::sys::{Mapping, BD_SIZE, TX_DATA_OFFSET};
use self::tx::{AfPacketTx, TxShared};
use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueSlots, RxQueue,
    TxQueue,
};
use crate::mem::Mempool;

/// Default rx block size: 256 KiB (about 1800 minimum-size or 160 full-size frames per block).
pub const DEFAULT_BLOCK_SIZE: u32 = 256 << 10;
/// Default number of rx blocks per queue: 16 MiB of ring per rx queue with the default size.
///
/// Many smaller blocks rather than a few large ones: under light load every block is handed
/// over by its timer holding only a few frames, so the ring absorbs a stall of the polling
/// core of about `blocks * block_timeout_ms` (64 ms here) whatever the block size.
pub const DEFAULT_BLOCKS: u32 = 64;
/// Default block retire timeout: a partially filled block is handed over after 1 ms.
pub const DEFAULT_BLOCK_TIMEOUT_MS: u32 = 1;
/// Default tx ring frames per queue.
pub const DEFAULT_TX_FRAMES: u32 = 1024;
/// Most rx (or tx) queues a port can have (the kernel's classic fanout group limit).
pub const MAX_QUEUES: u16 = 256;
/// Largest ring (rx: `block_size * blocks`, tx: frames) per queue: 4 GiB.
pub const MAX_RING_BYTES: u64 = 1 << 32;
/// Largest `tx_frames`.
pub const MAX_TX_FRAMES: u32 = 1 << 20;
/// Largest `block_timeout_ms`.
pub const MAX_BLOCK_TIMEOUT_MS: u32 = 60_000;

/// Ethernet header plus an 802.1Q tag.
const L2_MAX: usize = 18;
/// Room a received frame needs in a block besides its bytes: the block header plus the
/// frame header, `sockaddr_ll` and alignment the kernel puts in front of the frame.
const RX_OVERHEAD: usize = BD_SIZE + 128;

/// Settings of an af_packet port.
#[derive(Debug, Clone)]
pub struct AfPacketConfig {
    /// Port name.
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// Pool that received packets come from.
    pub pool: Mempool,
    /// Linux interface to attach to (`eth0`, `veth1`, …).
    pub iface: String,
    /// Receive queues: one socket each, joined in a fanout group when more than one
    /// (0..=[`MAX_QUEUES`]).
    pub rx_queues: u16,
    /// Transmit queues: one socket each (0..=[`MAX_QUEUES`]).
    pub tx_queues: u16,
    /// MTU (L3 bytes per frame). 0: the interface's MTU. Must not exceed the interface's.
    pub mtu: u16,
    /// MAC address the port reports. `None`: the interface's own. (The interface keeps its
    /// address; frames to another MAC reach the port only with `promiscuous`.)
    pub mac: Option<MacAddr>,
    /// Transmit straight to the driver, bypassing the interface's qdisc (and packet taps
    /// such as tcpdump on the sending host). Default true.
    pub qdisc_bypass: bool,
    /// Bytes per rx ring block: a multiple of the page size, at least MTU + 18 + 176. A power
    /// of two wastes no kernel memory. Default [`DEFAULT_BLOCK_SIZE`].
    pub block_size: u32,
    /// Blocks per rx ring. Default [`DEFAULT_BLOCKS`]. Under light load each block carries
    /// the frames of one timeout, so more blocks means longer stalls survived.
    pub blocks: u32,
    /// Milliseconds after which the kernel hands over a partially filled block (the most a
    /// frame waits under light load); 0 lets the kernel pick from the link speed. Default
    /// [`DEFAULT_BLOCK_TIMEOUT_MS`].
    pub block_timeout_ms: u32,
    /// Frames per tx ring (rounded up to fill whole ring blocks). Default
    /// [`DEFAULT_TX_FRAMES`].
    pub tx_frames: u32,
    /// Put the interface in promiscuous mode while the port is open.
    pub promiscuous: bool,
}

impl AfPacketConfig {
    /// A configuration with the defaults: one rx and one tx queue, the interface's MTU and
    /// MAC, qdisc bypass, 64 blocks of 256 KiB, 1 ms block timeout, 1024 tx frames, not
    /// promiscuous.
    pub fn new(name: &str, id: u16, pool: Mempool, iface: &str) -> Self {
        AfPacketConfig {
            name: name.to_string(),
            id,
            pool,
            iface: iface.to_string(),
            rx_queues: 1,
            tx_queues: 1,
            mtu: 0,
            mac: None,
            qdisc_bypass: true,
            block_size: DEFAULT_BLOCK_SIZE,
            blocks: DEFAULT_BLOCKS,
            block_timeout_ms: DEFAULT_BLOCK_TIMEOUT_MS,
            tx_frames: DEFAULT_TX_FRAMES,
            promiscuous: false,
        }
    }
}

/// Driver-specific counters of an af_packet port, per queue (like DPDK's xstats). The common
/// ones are in [`Port::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfPacketXstats {
    /// Frames the kernel dropped because an rx ring was full (also in `imissed`).
    pub rx_kernel_drops: Vec<u64>,
    /// Times the kernel found an rx ring full and froze it until a block was returned.
    pub rx_ring_freezes: Vec<u64>,
    /// Rx blocks given back unread because their headers were inconsistent.
    pub rx_bad_blocks: Vec<u64>,
    /// Received frames whose TCP/UDP checksum the driver completed (sent by this host with
    /// checksum offload).
    pub rx_csum_completed: Vec<u64>,
    /// Failed tx kicks (the frames stayed queued for the next kick).
    pub tx_kick_errors: Vec<u64>,
    /// Tx frames the kernel refused as malformed.
    pub tx_wrong_format: Vec<u64>,
}

/// A port on a Linux interface through `AF_PACKET` rings.
pub struct AfPacketPort {
    info: PortInfo,
    iface: String,
    ifindex: u32,
    /// Control socket: interface ioctls, and the promiscuous membership.
    ctl: OwnedFd,
    fanout_group: Option<u16>,
    counters: PortCounters,
    rx_shared: Vec<Arc<RxShared>>,
    tx_shared: Vec<Arc<TxShared>>,
    rx: QueueSlots<AfPacketRx>,
    tx: QueueSlots<AfPacketTx>,
}

fn driver_err(port: &str, message: String) -> PortError {
    PortError::Driver {
        port: port.to_string(),
        message,
    }
}

/// The tx ring geometry for an MTU: (frame size, block size).
fn tx_geometry(mtu: usize, page: usize) -> (usize, usize) {
    let frame = (TX_DATA_OFFSET + mtu + L2_MAX)
        .next_power_of_two()
        .max(2048);
    (frame, frame.max(page))
}

/// Checks everything that does not need the interface.
fn validate(cfg: &AfPacketConfig, page: usize) -> Result<(), String> {
    let n = cfg.iface.len();
    if n == 0 || n >= libc::IFNAMSIZ || cfg.iface.contains(['\0', '/']) {
        return Err(format!(
            "interface name `{}` is not valid: Linux names are 1 to {} bytes without `/`",
            cfg.iface,
            libc::IFNAMSIZ - 1
        ));
    }
    for (what, q) in [("rx_queues", cfg.rx_queues), ("tx_queues", cfg.tx_queues)] {
        if q > MAX_QUEUES {
            return Err(format!(
                "{what} = {q} is too many: an af_packet port has at most {MAX_QUEUES}"
            ));
        }
    }
    if cfg.rx_queues > 0 {
        let bs = cfg.block_size as usize;
        if bs < page || bs % page != 0 {
            return Err(format!(
                "block_size = {} must be a multiple of the page size {page} (e.g. {})",
                cfg.block_size, DEFAULT_BLOCK_SIZE
            ));
        }
        if cfg.blocks == 0 {
            return Err("blocks = 0: the rx ring needs at least 1 block".to_string());
        }
        let ring = cfg.block_size as u64 * cfg.blocks as u64;
        if ring > MAX_RING_BYTES {
            return Err(format!(
                "block_size * blocks = {ring} bytes per rx queue is more than {MAX_RING_BYTES}: \
                 use fewer or smaller blocks"
            ));
        }
        if cfg.block_timeout_ms > MAX_BLOCK_TIMEOUT_MS {
            return Err(format!(
                "block_timeout_ms = {} is more than {MAX_BLOCK_TIMEOUT_MS}",
                cfg.block_timeout_ms
            ));
        }
    }
    if cfg.tx_queues > 0 && !(1..=MAX_TX_FRAMES).contains(&cfg.tx_frames) {
        return Err(format!(
            "tx_frames = {} must be 1..={MAX_TX_FRAMES}",
            cfg.tx_frames
        ));
    }
    Ok(())
}

/// The error for a failed `socket(AF_PACKET)`.
fn socket_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "opening an AF_PACKET socket needs CAP_NET_RAW (run as root, or grant it: setcap \
             cap_net_raw,cap_net_admin+ep <binary>): {e}"
        ),
        Some(libc::EAFNOSUPPORT) => {
            format!("this kernel has no AF_PACKET support (CONFIG_PACKET): {e}")
        }
        _ => format!("cannot open an AF_PACKET socket: {e}"),
    }
}

fn packet_socket() -> Result<OwnedFd, String> {
    sys::packet_socket().map_err(|e| socket_error(&e))
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    sys::set_opt(fd, level, name, &v)
}

/// Opens one rx socket with its TPACKET_V3 ring, bound to the interface. With `quiet` a
/// drop-all filter is attached before binding (removed once the fanout group is complete),
/// so the socket sees no frame before it shares the traffic with its group.
fn open_rx(cfg: &AfPacketConfig, ifindex: u32, quiet: bool) -> Result<(OwnedFd, Mapping), String> {
    let fd = packet_socket()?;
    let s = fd.as_fd();
    set_int(s, libc::SOL_PACKET, libc::PACKET_VERSION, sys::TPACKET_V3)
        .map_err(|e| format!("PACKET_VERSION TPACKET_V3 failed (Linux >= 3.2 needed): {e}"))?;
    set_int(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)
        .map_err(|e| format!("PACKET_IGNORE_OUTGOING failed (Linux >= 4.20 needed): {e}"))?;
    let bs = cfg.block_size;
    let frame = 2048u32.min(bs);
    // SAFETY: tpacket_req3 is plain old data; all-zero is a valid value.
    let mut req: libc::tpacket_req3 = unsafe { std::mem::zeroed() };
    req.tp_block_size = bs;
    req.tp_block_nr = cfg.blocks;
    // V3 ignores the frame geometry except for a consistency check.
    req.tp_frame_size = frame;
    req.tp_frame_nr = (bs / frame) * cfg.blocks;
    req.tp_retire_blk_tov = cfg.block_timeout_ms;
    req.tp_sizeof_priv = 0;
    req.tp_feature_req_word = libc::TP_FT_REQ_FILL_RXHASH;
    sys::set_opt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).map_err(|e| {
        format!(
            "setting up the rx ring ({} blocks of {bs} bytes) failed: {e} (use a smaller \
             block_size or fewer blocks)",
            cfg.blocks
        )
    })?;
    let len = bs as usize * cfg.blocks as usize;
    let ring = Mapping::ring(s, len).map_err(|e| {
        format!(
            "mapping the rx ring ({len} bytes) failed: {e} (use a smaller block_size or fewer \
             blocks, or raise `ulimit -l`)"
        )
    })?;
    if quiet {
        let mut drop_all = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: drop_all.as_mut_ptr(),
        };
        sys::set_opt(s, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
            .map_err(|e| format!("attaching the start-up filter failed: {e}"))?;
    }
    sys::bind_ll(s, ifindex, libc::ETH_P_ALL as u16)
        .map_err(|e| format!("binding the rx socket failed: {e}"))?;
    Ok((fd, ring))
}

/// Joins the rx sockets into one hash fanout group. Returns the group id.
fn join_fanout(socks: &[OwnedFd], port_id: u16) -> Result<u16, String> {
    let arg = |id: u16, flags: u32| -> libc::c_int {
        (id as u32 | ((libc::PACKET_FANOUT_HASH | flags) << 16)) as libc::c_int
    };
    let ignore = libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
    let unique = libc::PACKET_FANOUT_FLAG_UNIQUEID;
    // Without UNIQUEID (Linux < 4.5) an id derived from the process and port is used.
    let derived = (std::process::id() as u16).rotate_left(5) ^ port_id.wrapping_mul(0x9e37);
    let first = socks[0].as_fd();
    let mut chosen = None;
    let mut last_err = None;
    for (id, flags) in [
        (0, unique | ignore),
        (0, unique),
        (derived, ignore),
        (derived, 0),
    ] {
        match set_int(first, libc::SOL_PACKET, libc::PACKET_FANOUT, arg(id, flags)) {
            Ok(()) => {
                chosen = Some((id, flags & !unique));
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(format!("joining a PACKET_FANOUT group failed: {e}")),
        }
    }
    let Some((mut id, flags)) = chosen else {
        return Err(format!(
            "joining a PACKET_FANOUT group failed: {} (Linux >= 3.1 needed for rx_queues > 1)",
            last_err.map_or_else(String::new, |e| e.to_string())
        ));
    };
    if id == 0 {
        // The kernel chose the id: read it back (low 16 bits).
        let v = sys::get_opt(
            first,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            0 as libc::c_int,
        )
        .map_err(|e| format!("reading the PACKET_FANOUT group id failed: {e}"))?;
        id = (v & 0xffff) as u16;
    }
    if flags & ignore == 0 {
        eprintln!(
            "warning: this kernel has no PACKET_FANOUT_FLAG_IGNORE_OUTGOING (Linux < 6.9?): with \
             several rx queues the port also receives frames this host sends on the interface"
        );
    }
    for s in &socks[1..] {
        set_int(
            s.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            arg(id, flags),
        )
        .map_err(|e| format!("joining PACKET_FANOUT group {id} failed: {e}"))?;
    }
    for s in socks {
        set_int(s.as_fd(), libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0)
            .map_err(|e| format!("removing the start-up filter failed: {e}"))?;
    }
    Ok(id)
}

/// Opens one tx socket with its TPACKET_V2 ring (`frames` frames), bound to the interface
/// without receiving anything.
fn open_tx(
    cfg: &AfPacketConfig,
    ifindex: u32,
    frame: usize,
    block: usize,
    frames: usize,
) -> Result<(OwnedFd, Mapping), String> {
    let fd = packet_socket()?;
    let s = fd.as_fd();
    set_int(s, libc::SOL_PACKET, libc::PACKET_VERSION, sys::TPACKET_V2)
        .map_err(|e| format!("PACKET_VERSION TPACKET_V2 failed: {e}"))?;
    if cfg.qdisc_bypass {
        set_int(s, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1).map_err(|e| {
            format!("PACKET_QDISC_BYPASS failed (Linux >= 3.14; or set qdisc_bypass = false): {e}")
        })?;
    }
    set_int(s, libc::SOL_PACKET, libc::PACKET_LOSS, 1)
        .map_err(|e| format!("PACKET_LOSS failed: {e}"))?;
    // Frames in flight count against the send buffer; let the whole ring be in flight. Root
    // may exceed net.core.wmem_max; otherwise the kernel caps the value.
    let want = (frames * (frame + 1024)).min(i32::MAX as usize / 2) as libc::c_int;
    if set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want).is_err() {
        let _ = set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUF, want);
    }
    // SAFETY: tpacket_req is plain old data; all-zero is a valid value.
    let mut req: libc::tpacket_req = unsafe { std::mem::zeroed() };
    req.tp_block_size = block as u32;
    req.tp_block_nr = (frames / (block / frame)) as u32;
    req.tp_frame_size = frame as u32;
    req.tp_frame_nr = frames as u32;
    sys::set_opt(s, libc::SOL_PACKET, libc::PACKET_TX_RING, &req).map_err(|e| {
        format!("setting up the tx ring ({frames} frames of {frame} bytes) failed: {e} (use fewer tx_frames)")
    })?;
    let ring = Mapping::ring(s, block * req.tp_block_nr as usize).map_err(|e| {
        format!("mapping the tx ring failed: {e} (use fewer tx_frames, or raise `ulimit -l`)")
    })?;
    sys::bind_ll(s, ifindex, 0).map_err(|e| format!("binding the tx socket failed: {e}"))?;
    Ok((fd, ring))
}

impl AfPacketPort {
    /// Opens the port on `cfg.iface`: validates the configuration, reads the interface's MAC
    /// and MTU, and builds one socket and ring per queue.
    ///
    /// Fails with [`PortError::Driver`] (naming the port and interface, with the fix) when the
    /// configuration is out of range, the interface does not exist or is not Ethernet, the
    /// MTU exceeds the interface's, the process lacks `CAP_NET_RAW`, or a ring cannot be set
    /// up or mapped (with the errno). Everything opened before the failure is closed.
    pub fn open(cfg: AfPacketConfig) -> Result<AfPacketPort, PortError> {
        let page = sys::page_size();
        let iface = cfg.iface.clone();
        let fail = |m: String| driver_err(&cfg.name, m);
        let on_if = |m: String| driver_err(&cfg.name, format!("interface `{iface}`: {m}"));
        validate(&cfg, page).map_err(fail)?;
        let ifindex = sys::if_index(&iface).ok_or_else(|| {
            driver_err(
                &cfg.name,
                format!("interface `{iface}` does not exist (check `ip link`)"),
            )
        })?;
        let ctl = packet_socket().map_err(on_if)?;
        let (hwtype, hwaddr) = sys::if_hwaddr(ctl.as_fd(), &iface)
            .map_err(|e| on_if(format!("reading its hardware address failed: {e}")))?;
        if hwtype != sys::ARPHRD_ETHER && hwtype != sys::ARPHRD_LOOPBACK {
            return Err(on_if(format!(
                "not an Ethernet device (link type {hwtype}): the af_packet port moves \
                 Ethernet frames"
            )));
        }
        let if_mtu = sys::if_mtu(ctl.as_fd(), &iface)
            .map_err(|e| on_if(format!("reading its MTU failed: {e}")))?;
        let mtu = if cfg.mtu == 0 {
            if_mtu.min(u16::MAX as u32) as u16
        } else if cfg.mtu as u32 > if_mtu {
            return Err(on_if(format!(
                "mtu = {} is larger than the interface's MTU {if_mtu} (raise it: ip link set \
                 {iface} mtu {}, or set mtu = 0 to follow the interface)",
                cfg.mtu, cfg.mtu
            )));
        } else {
            cfg.mtu
        };
        let need = mtu as usize + L2_MAX + RX_OVERHEAD;
        if cfg.rx_queues > 0 && (cfg.block_size as usize) < need {
            let hint = need.next_multiple_of(page).next_power_of_two();
            return Err(fail(format!(
                "block_size = {} cannot hold a frame of MTU {mtu}: use at least {need} (e.g. \
                 {hint})",
                cfg.block_size
            )));
        }
        if cfg.promiscuous {
            // SAFETY: packet_mreq is plain old data; all-zero is a valid value.
            let mut mr: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mr.mr_ifindex = ifindex as libc::c_int;
            mr.mr_type = libc::PACKET_MR_PROMISC as u16;
            sys::set_opt(
                ctl.as_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mr,
            )
            .map_err(|e| on_if(format!("enabling promiscuous mode failed: {e}")))?;
        }

        let fanout = cfg.rx_queues > 1;
        if fanout {
            // The kernel lets only sockets of a running interface join a fanout group.
            let flags = sys::if_flags(ctl.as_fd(), &iface)
                .map_err(|e| on_if(format!("reading its flags failed: {e}")))?;
            if flags & libc::IFF_UP == 0 {
                return Err(on_if(format!(
                    "is down, and with rx_queues = {} it must be up when the port opens (ip \
                     link set {iface} up)",
                    cfg.rx_queues
                )));
            }
        }
        let mut rx_socks = Vec::with_capacity(cfg.rx_queues as usize);
        let mut rx_rings = Vec::with_capacity(cfg.rx_queues as usize);
        for q in 0..cfg.rx_queues {
            let (fd, ring) =
                open_rx(&cfg, ifindex, fanout).map_err(|m| on_if(format!("rx queue {q}: {m}")))?;
            rx_socks.push(fd);
            rx_rings.push(ring);
        }
        let fanout_group = if fanout {
            Some(join_fanout(&rx_socks, cfg.id).map_err(on_if)?)
        } else {
            None
        };

        let (frame, block) = tx_geometry(mtu as usize, page);
        let per_block = block / frame;
        let tx_frames = (cfg.tx_frames as usize).next_multiple_of(per_block);
        if (tx_frames * frame) as u64 > MAX_RING_BYTES {
            return Err(fail(format!(
                "tx_frames = {} of {frame} bytes is more than {MAX_RING_BYTES} bytes: use fewer",
                cfg.tx_frames
            )));
        }
        let mut tx_parts = Vec::with_capacity(cfg.tx_queues as usize);
        for q in 0..cfg.tx_queues {
            let p = open_tx(&cfg, ifindex, frame, block, tx_frames)
                .map_err(|m| on_if(format!("tx queue {q}: {m}")))?;
            tx_parts.push(p);
        }

        let counters = PortCounters::new(cfg.rx_queues, cfg.tx_queues);
        let mut rx_shared = Vec::with_capacity(rx_socks.len());
        let mut rx = Vec::with_capacity(rx_socks.len());
        for (q, (fd, ring)) in rx_socks.into_iter().zip(rx_rings).enumerate() {
            let shared = Arc::new(RxShared::new(fd));
            rx_shared.push(shared.clone());
            rx.push(AfPacketRx::new(
                ring,
                cfg.block_size as usize,
                cfg.blocks as usize,
                shared,
                cfg.pool.clone(),
                cfg.id,
                counters.rx(q as u16),
            ));
        }
        let mut tx_shared = Vec::with_capacity(tx_parts.len());
        let mut tx = Vec::with_capacity(tx_parts.len());
        let max_len = mtu as usize + 14;
        for (q, (fd, ring)) in tx_parts.into_iter().enumerate() {
            let shared = Arc::new(TxShared::default());
            tx_shared.push(shared.clone());
            tx.push(AfPacketTx::new(
                ring,
                fd,
                frame,
                tx_frames,
                max_len,
                shared,
                counters.tx(q as u16),
            ));
        }
        Ok(AfPacketPort {
            info: PortInfo {
                name: cfg.name.clone(),
                id: cfg.id,
                driver: "af_packet",
                mac: cfg.mac.unwrap_or(MacAddr(hwaddr)),
                mtu,
                rx_queues: cfg.rx_queues,
                tx_queues: cfg.tx_queues,
                tx_l4_checksum_offload: false,
            },
            iface,
            ifindex,
            ctl,
            fanout_group,
            counters,
            rx_shared,
            tx_shared,
            rx: QueueSlots::new(&cfg.name, "rx", rx),
            tx: QueueSlots::new(&cfg.name, "tx", tx),
        })
    }

    /// The Linux interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface index the sockets are bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The `PACKET_FANOUT` group id of the rx sockets (with more than one rx queue).
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }

    /// Driver-specific counters per queue (reads the kernel's drop counters first).
    pub fn xstats(&self) -> AfPacketXstats {
        for s in &self.rx_shared {
            s.refresh();
        }
        AfPacketXstats {
            rx_kernel_drops: self.rx_shared.iter().map(|s| s.drops()).collect(),
            rx_ring_freezes: self.rx_shared.iter().map(|s| s.freezes()).collect(),
            rx_bad_blocks: self.rx_shared.iter().map(|s| s.bad_blocks.get()).collect(),
            rx_csum_completed: self
                .rx_shared
                .iter()
                .map(|s| s.csum_completed.get())
                .collect(),
            tx_kick_errors: self.tx_shared.iter().map(|s| s.kick_errors.get()).collect(),
            tx_wrong_format: self
                .tx_shared
                .iter()
                .map(|s| s.wrong_format.get())
                .collect(),
        }
    }
}

impl Port for AfPacketPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    /// Up when the interface is administratively up and has carrier (`IFF_UP` and
    /// `IFF_RUNNING`); speed and duplex from ethtool (0 / full when the driver does not say).
    fn link(&self) -> LinkStatus {
        let fd = self.ctl.as_fd();
        let flags = sys::if_flags(fd, &self.iface).unwrap_or(0);
        let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
        let (speed_mbps, duplex) = if up {
            sys::if_speed(fd, &self.iface).unwrap_or((0, None))
        } else {
            (0, None)
        };
        LinkStatus {
            up,
            speed_mbps,
            full_duplex: duplex.unwrap_or(true),
        }
    }

    fn counters(&self) -> &PortCounters {
        &self.counters
    }

    /// The queue counters, plus the frames the kernel dropped for lack of ring space as each
    /// rx queue's `missed` (read from the sockets now).
    fn stats(&self) -> PortStats {
        let mut s = self.counters.stats();
        for (q, sh) in self.rx_shared.iter().enumerate() {
            sh.refresh();
            let d = sh.drops();
            if let Some(qs) = s.rx_queues.get_mut(q) {
                qs.missed += d;
            }
            s.imissed += d;
        }
        s
    }

    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError> {
        Ok(Box::new(self.rx.take(q)?))
    }

    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(self.tx.take(q)?))
    }
}
