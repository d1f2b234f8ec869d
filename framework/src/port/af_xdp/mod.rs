//! The `af_xdp` port: Linux AF_XDP sockets (XSK), with the mempool as the UMEM.
//!
//! # Data path
//!
//! Port queue `q` is one AF_XDP socket bound to NIC queue `queue_base + q`. The pool's data
//! region *is* the UMEM, one chunk per mbuf buffer, so a received frame is already inside an
//! mbuf's buffer: `rx_burst` reads rx descriptors, finds the mbuf that owns each buffer, sets its
//! data window (`Mbuf::set_data`) and hands it out without a copy, then tops the fill ring up
//! from the pool in one bulk allocation. `tx_burst` first frees what the completion ring
//! returned, then sends each mbuf whose buffer lies in the UMEM in place (descriptor = buffer
//! offset + data offset) and keeps it until its completion; a chained or shared mbuf, or one
//! from another pool, is copied into a fresh mbuf of the port's pool first (a packet larger
//! than the pool's data room is dropped and counted as a tx error). Sockets are bound with
//! `XDP_USE_NEED_WAKEUP`, and the driver is kicked only when a ring's flag asks — `sendto` for
//! tx, `recvfrom` for the fill ring — at most once per burst. In copy mode the kernel sends at
//! most 32 frames per `sendto` unless `XDP_MAX_TX_SKB_BUDGET` (kernel 6.17+) raises it; the
//! driver raises it to the ring size, so one kick sends the whole burst; on older kernels the
//! rest goes with the next burst's kick or [`TxQueue::flush`].
//!
//! Buffer ownership: every buffer the kernel may touch is owned by an [`Mbuf`](crate::mem::Mbuf)
//! parked in a per-queue table indexed by buffer index (sized to the pool at `open`, so the data
//! path never allocates) — the rx queue's for buffers in the fill ring, the tx queue's for
//! buffers being sent. When a queue is dropped its table is handed to the socket, which closes
//! its descriptor (the kernel unbinds and waits for the driver) *before* returning those mbufs
//! to the pool. Each rx queue keeps `min(ring_size, capacity / (2 × rx_queues))` buffers in
//! the kernel's hands, so at least half the pool stays with the application.
//!
//! # The XDP program, and why it is always detached
//!
//! `open` creates an XSKMAP (NIC queue → socket), loads a six-instruction program —
//! `return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)` — and attaches it with a
//! **BPF link** (`BPF_LINK_CREATE`, attach type `BPF_XDP`). A link belongs to its file
//! descriptor: closing it detaches the program, and the kernel closes it when the process ends
//! however it ends (SIGINT, SIGTERM, a panic, SIGKILL). So the program is gone after the port is
//! dropped, after a failed `open` (every object is an owned descriptor, released on the error
//! path), and after any exit, with no signal handler or cleanup pass. Frames on queues without
//! a socket go on to the kernel stack (`XDP_PASS` as the map's miss action). An interface that
//! already has an XDP program is refused, naming the program, rather than taken over.
//!
//! # Modes
//!
//! [`XdpMode::Auto`] tries native (driver) XDP and falls back to generic (skb) XDP.
//! [`ZeroCopy::Auto`] lets the kernel bind zero-copy when the driver supports it and copy mode
//! otherwise (generic XDP always binds copy mode). veth has native XDP but no zero-copy AF_XDP,
//! so on veth the port runs native copy mode: the kernel copies each frame into our buffer,
//! and our side is still copy-free. [`AfXdpPort::attach_mode`] reports what was obtained.
//!
//! # Why raw system calls (no libbpf / libxdp)
//!
//! The control path is a handful of calls — `bpf(2)` for the map, the program and the link;
//! `socket`, `setsockopt` (`XDP_UMEM_REG`, ring sizes), `getsockopt` (`XDP_MMAP_OFFSETS`,
//! `XDP_OPTIONS`, `XDP_STATISTICS`), `mmap` and `bind` for the socket; one rtnetlink
//! `RTM_GETLINK` for the interface — made through the `libc` crate. That keeps the build and CI
//! free of C libraries, headers, clang and ELF objects, and the program is small enough to
//! assemble by hand. Constants and layouts the `libc` crate lacks are defined where they are
//! used, each citing its kernel UAPI header.
//!
//! # UMEM geometry (measured on kernel 6.18, veth, native and generic XDP)
//!
//! Chunk size = the pool's stride (headroom + data_room rounded up to 64). A stride that is not
//! a power of two — the default pool's 128 + 2048 = 2176 — registers the UMEM with
//! `XDP_UMEM_UNALIGNED_CHUNK_FLAG`, where the kernel uses fill addresses as given instead of
//! rounding them to a chunk. UMEM headroom is 0. In both modes the kernel writes the frame
//! `XDP_PACKET_HEADROOM` = 256 bytes after the fill address, so a received mbuf has 256 bytes
//! of headroom and the pool's buffers must hold 256 + mtu + 14 bytes (`open` refuses smaller
//! ones, naming the pool and the data_room needed). The rx descriptor's address differs by
//! mode: aligned, it is the data address itself (`chunk + 256`); unaligned, the buffer's fill
//! address sits in the low 48 bits and the offset 256 in the high 16
//! (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`). The driver decodes both with one formula,
//! `low 48 bits + high 16 bits`; a test checks the raw descriptors in all four combinations.
//!
//! Each socket registers the same region as its own UMEM: the kernel allows it (the pages are
//! pinned once per registration), it keeps the queues independent without `XDP_SHARED_UMEM`'s
//! ordering rules, and an mbuf received on one queue — or on another AF_XDP port using the same
//! pool — can be sent from any queue without a copy, since buffer offsets are the same in every
//! registration. Registration counts against `RLIMIT_MEMLOCK` once per socket, except for
//! processes with CAP_IPC_LOCK (root), which are exempt.
//!
//! # Namespaces
//!
//! `open` works in the network namespace of the calling thread: the interface is looked up
//! there and the sockets, program and netlink socket belong to it. The port can be used from
//! any thread afterwards.

mod bpf;
mod netlink;
mod ring;
mod socket;
mod umem;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::{Arc, Mutex};

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueSlots, RxQueue,
    TxQueue,
};
use crate::mem::Mempool;
use bpf::{XdpLink, XdpProgram, XskMap, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};
use netlink::Rtnl;
use socket::{Socket, SocketParams, SocketShared, Step, XskRx, XskTx};
use umem::{Umem, XDP_PACKET_HEADROOM};

/// Default number of entries of each of the four rings.
pub const DEFAULT_RING_SIZE: u32 = 2048;

/// Bytes of Ethernet header counted on top of the MTU when sizing buffers.
const ETH_HLEN: usize = 14;

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) XDP (`XDP_FLAGS_DRV_MODE`) or an error.
    Native,
    /// Generic (skb) XDP (`XDP_FLAGS_SKB_MODE`), which works on any interface, more slowly.
    Generic,
}

/// Whether sockets bind in zero-copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Zero-copy if the driver supports it (native mode only), else copy mode.
    #[default]
    Auto,
    /// Zero-copy or an error (`XDP_ZEROCOPY`).
    On,
    /// Copy mode always (`XDP_COPY`).
    Off,
}

/// Settings of an AF_XDP port.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// Port name.
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// The pool whose data region becomes the UMEM; received mbufs come from it.
    pub pool: Mempool,
    /// Interface name (in the network namespace of the thread calling `open`).
    pub iface: String,
    /// First NIC queue used: port queue `q` is NIC queue `queue_base + q`.
    pub queue_base: u16,
    /// Receive queues (at least 1).
    pub rx_queues: u16,
    /// Transmit queues. Tx queue `q` shares the socket of rx queue `q`; queues beyond
    /// `rx_queues` get sockets of their own (transmit only).
    pub tx_queues: u16,
    /// MTU the buffers must hold (L3 bytes per frame).
    pub mtu: u16,
    /// MAC address; `None` uses the interface's own.
    pub mac: Option<MacAddr>,
    /// How to attach the XDP program.
    pub mode: XdpMode,
    /// Whether to bind zero-copy.
    pub zero_copy: ZeroCopy,
    /// Entries per ring (fill, completion, rx, tx): a power of two, 64 to 32768.
    pub ring_size: u32,
}

impl AfXdpConfig {
    /// Settings with the defaults: NIC queue 0, one rx and one tx queue, MTU 1500, the
    /// interface's MAC, auto mode, auto zero-copy, [`DEFAULT_RING_SIZE`] entries per ring.
    pub fn new(name: &str, id: u16, pool: Mempool, iface: &str) -> AfXdpConfig {
        AfXdpConfig {
            name: name.to_string(),
            id,
            pool,
            iface: iface.to_string(),
            queue_base: 0,
            rx_queues: 1,
            tx_queues: 1,
            mtu: 1500,
            mac: None,
            mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            ring_size: DEFAULT_RING_SIZE,
        }
    }
}

/// An AF_XDP port. Dropping it detaches the XDP program; the sockets close when the port and
/// the queues taken from it are all gone.
pub struct AfXdpPort {
    // Declared first so it is dropped first: the program is detached before anything else goes.
    _link: XdpLink,
    _prog: XdpProgram,
    _map: XskMap,
    info: PortInfo,
    iface: String,
    counters: PortCounters,
    rx: Mutex<QueueSlots<XskRx>>,
    tx: Mutex<QueueSlots<XskTx>>,
    /// Socket of each rx queue, then of each tx-only queue (for the kernel's statistics).
    sockets: Vec<Arc<SocketShared>>,
    rtnl: Mutex<Rtnl>,
    mode: XdpMode,
    zero_copy: bool,
}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("name", &self.info.name)
            .field("iface", &self.iface)
            .field("mode", &self.mode)
            .field("zero_copy", &self.zero_copy)
            .finish()
    }
}

/// Builds the error messages of one `open` call.
struct Ctx<'a> {
    cfg: &'a AfXdpConfig,
}

impl Ctx<'_> {
    fn err(&self, message: String) -> PortError {
        PortError::Driver {
            port: self.cfg.name.clone(),
            message: format!("af_xdp on interface {}: {message}", self.cfg.iface),
        }
    }

    fn perm(&self, what: &str, e: &io::Error) -> PortError {
        self.err(format!(
            "{what} failed: {e}; AF_XDP needs root (CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF or \
             CAP_SYS_ADMIN): run as root or grant those capabilities"
        ))
    }
}

fn is_perm(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

fn memlock_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a live struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0).then_some(r.rlim_cur)
}

impl AfXdpPort {
    /// Opens the port: creates the sockets, registers the pool as their UMEM, fills the fill
    /// rings, and attaches the redirect program. On any error nothing is left behind (no
    /// program attached, no socket open) and the message names the port, the interface and
    /// the fix.
    pub fn open(cfg: AfXdpConfig) -> Result<AfXdpPort, PortError> {
        let cx = Ctx { cfg: &cfg };
        Self::check_config(&cx)?;
        let umem = Umem::of(&cfg.pool);

        let mut rtnl =
            Rtnl::open().map_err(|e| cx.err(format!("cannot open an rtnetlink socket: {e}")))?;
        let li = rtnl.link(&cfg.iface).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENODEV) {
                cx.err(
                    "no such interface in this network namespace; check `ip link show` and the \
                     port's `iface`"
                        .into(),
                )
            } else {
                cx.err(format!("cannot query the interface: {e}"))
            }
        })?;
        if let Some(x) = &li.xdp {
            let name = bpf::prog_name(x.id).unwrap_or_else(|| "?".into());
            return Err(cx.err(format!(
                "an XDP program is already attached ({} mode, id {}, name \"{name}\"); ferroplane \
                 does not replace it. Stop its owner or detach it (`ip link set dev {} xdp off`)",
                x.mode, x.id, cfg.iface
            )));
        }
        let top_rx = cfg.queue_base as u32 + cfg.rx_queues as u32;
        let top_tx = cfg.queue_base as u32 + cfg.tx_queues as u32;
        let nic_tx = li.tx_queues.max(li.rx_queues);
        if li.rx_queues > 0 && (top_rx > li.rx_queues || top_tx > nic_tx) {
            return Err(cx.err(format!(
                "queues {}..{} do not exist: the interface has {} rx and {} tx queues (see \
                 `ethtool -l {}`); lower queue_base / rx_queues / tx_queues",
                cfg.queue_base,
                top_rx.max(top_tx),
                li.rx_queues,
                li.tx_queues,
                cfg.iface
            )));
        }

        let map = XskMap::create(top_rx).map_err(|e| {
            if is_perm(&e) {
                cx.perm("creating the XSKMAP", &e)
            } else if e.raw_os_error() == Some(libc::ENOSYS) {
                cx.err("the kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL)".into())
            } else {
                cx.err(format!(
                    "creating the XSKMAP failed: {e} (kernel too old for AF_XDP?)"
                ))
            }
        })?;
        let prog = XdpProgram::load(&map).map_err(|le| {
            if is_perm(&le.err) {
                cx.perm("loading the XDP program", &le.err)
            } else {
                cx.err(format!(
                    "the kernel refused the XDP redirect program: {}; verifier log:\n{}",
                    le.err, le.log
                ))
            }
        })?;

        let bind_flags = libc::XDP_USE_NEED_WAKEUP
            | match (cfg.zero_copy, cfg.mode) {
                (ZeroCopy::On, _) => libc::XDP_ZEROCOPY,
                (ZeroCopy::Off, _) | (ZeroCopy::Auto, XdpMode::Generic) => libc::XDP_COPY,
                (ZeroCopy::Auto, _) => 0,
            };
        let nsock = cfg.rx_queues.max(cfg.tx_queues);
        let mut sockets = Vec::with_capacity(nsock as usize);
        for q in 0..nsock {
            let p = SocketParams {
                ifindex: li.ifindex,
                queue_id: cfg.queue_base as u32 + q as u32,
                ring_size: cfg.ring_size,
                rx: q < cfg.rx_queues,
                tx: q < cfg.tx_queues,
                bind_flags,
            };
            let s = Socket::create(&p, &umem)
                .map_err(|(step, e)| Self::socket_err(&cx, &umem, &p, step, &e))?;
            if p.rx {
                map.insert(p.queue_id, s.shared.raw_fd()).map_err(|e| {
                    cx.err(format!(
                        "inserting the socket of queue {} into the XSKMAP: {e}",
                        p.queue_id
                    ))
                })?;
            }
            sockets.push(s);
        }
        let zero_copy = sockets.iter().all(|s| s.shared.zero_copy);

        let (link, mode) = Self::attach(&cx, &prog, li.ifindex)?;
        if zero_copy && mode == XdpMode::Generic {
            return Err(cx.err(
                "the sockets bound zero-copy but the program could only be attached in generic \
                 mode, which cannot feed them; set zero_copy = \"off\""
                    .into(),
            ));
        }

        let counters = PortCounters::new(cfg.rx_queues, cfg.tx_queues);
        let fill_target =
            (cfg.ring_size as usize).min(cfg.pool.capacity() / (2 * cfg.rx_queues as usize)) as u32;
        let mut rx = Vec::with_capacity(cfg.rx_queues as usize);
        let mut tx = Vec::with_capacity(cfg.tx_queues as usize);
        let shared: Vec<Arc<SocketShared>> = sockets.iter().map(|s| s.shared.clone()).collect();
        for (q, s) in sockets.iter_mut().enumerate() {
            let q16 = q as u16;
            if q16 < cfg.rx_queues {
                rx.push(
                    s.rx_queue(umem, &cfg.pool, fill_target, cfg.id, counters.rx(q16))
                        .expect("rx socket has fill and rx rings"),
                );
            }
            if q16 < cfg.tx_queues {
                tx.push(
                    s.tx_queue(umem, &cfg.pool, counters.tx(q16))
                        .expect("tx socket has tx and completion rings"),
                );
            }
        }
        drop(sockets);

        let mac = cfg
            .mac
            .unwrap_or_else(|| MacAddr(li.mac.unwrap_or_default()));
        Ok(AfXdpPort {
            _link: link,
            _prog: prog,
            _map: map,
            info: PortInfo {
                name: cfg.name.clone(),
                id: cfg.id,
                driver: "af_xdp",
                mac,
                mtu: cfg.mtu,
                rx_queues: cfg.rx_queues,
                tx_queues: cfg.tx_queues,
                tx_l4_checksum_offload: false,
            },
            iface: cfg.iface.clone(),
            counters,
            rx: Mutex::new(QueueSlots::new(&cfg.name, "rx", rx)),
            tx: Mutex::new(QueueSlots::new(&cfg.name, "tx", tx)),
            sockets: shared,
            rtnl: Mutex::new(rtnl),
            mode,
            zero_copy,
        })
    }

    /// The mode the program was attached in ([`XdpMode::Native`] or [`XdpMode::Generic`]) and
    /// whether the sockets are zero-copy.
    pub fn attach_mode(&self) -> (XdpMode, bool) {
        (self.mode, self.zero_copy)
    }

    /// Interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    fn check_config(cx: &Ctx<'_>) -> Result<(), PortError> {
        let cfg = cx.cfg;
        if cfg.rx_queues == 0 {
            return Err(cx.err("rx_queues must be at least 1".into()));
        }
        if !cfg.ring_size.is_power_of_two() || !(64..=32768).contains(&cfg.ring_size) {
            return Err(cx.err(format!(
                "ring_size = {} must be a power of two from 64 to 32768",
                cfg.ring_size
            )));
        }
        let pool = &cfg.pool;
        let buf = pool.headroom() as usize + pool.data_room() as usize;
        let need = XDP_PACKET_HEADROOM + cfg.mtu as usize + ETH_HLEN;
        if buf < need {
            return Err(cx.err(format!(
                "the buffers of pool {} are too small: AF_XDP writes frames {XDP_PACKET_HEADROOM} \
                 bytes into the buffer, so headroom + data_room must be at least {need} \
                 ({XDP_PACKET_HEADROOM} + mtu {} + {ETH_HLEN}) but is {buf} ({} + {}); give the \
                 pool data_room >= {}",
                pool.name(),
                cfg.mtu,
                pool.headroom(),
                pool.data_room(),
                need - pool.headroom() as usize
            )));
        }
        let (_, _, stride) = pool.data_region();
        if stride < umem::XDP_UMEM_MIN_CHUNK_SIZE {
            return Err(cx.err(format!(
                "the buffers of pool {} are {stride} bytes apart; the kernel's smallest UMEM \
                 chunk is {}: give the pool headroom + data_room >= {}",
                pool.name(),
                umem::XDP_UMEM_MIN_CHUNK_SIZE,
                umem::XDP_UMEM_MIN_CHUNK_SIZE
            )));
        }
        if pool.capacity() / (2 * cfg.rx_queues as usize) < 64 {
            return Err(cx.err(format!(
                "pool {} has {} mbufs, too few to keep 64 in the fill ring of each of {} rx \
                 queues with half the pool left free; use at least {} mbufs",
                pool.name(),
                pool.capacity(),
                cfg.rx_queues,
                128 * cfg.rx_queues as usize
            )));
        }
        Ok(())
    }

    fn socket_err(
        cx: &Ctx<'_>,
        umem: &Umem,
        p: &SocketParams,
        step: Step,
        e: &io::Error,
    ) -> PortError {
        let q = p.queue_id;
        let code = e.raw_os_error().unwrap_or(0);
        match step {
            Step::Socket if code == libc::EAFNOSUPPORT => {
                cx.err("the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)".into())
            }
            _ if is_perm(e) => cx.perm(&format!("setting up the socket of queue {q}"), e),
            Step::Socket => cx.err(format!("socket(AF_XDP) failed: {e}")),
            Step::UmemReg if code == libc::ENOBUFS => cx.err(format!(
                "registering the pool's {} bytes as UMEM exceeds the locked-memory limit \
                 (RLIMIT_MEMLOCK = {}); run as root (CAP_IPC_LOCK is exempt), raise `ulimit -l`, \
                 or use a smaller pool",
                umem.len(),
                memlock_limit().map_or("?".into(), |l| l.to_string())
            )),
            Step::UmemReg if code == libc::ENOMEM => cx.err(format!(
                "the kernel could not pin the pool's {} bytes as UMEM ({e}): use a smaller pool",
                umem.len()
            )),
            Step::UmemReg => cx.err(format!(
                "the kernel refused the pool as UMEM ({e}): {} bytes, chunk {} ({}); the chunk \
                 (headroom + data_room rounded to 64) must be 2048 to 4096 bytes and the region \
                 at most 4 GiB of chunks: use a smaller pool or data_room",
                umem.len(),
                umem.stride(),
                if umem.unaligned() {
                    "unaligned chunks"
                } else {
                    "aligned chunks"
                }
            )),
            Step::Rings => cx.err(format!(
                "setting up the rings of queue {q} (ring_size {}): {e}",
                p.ring_size
            )),
            Step::Bind if code == libc::EBUSY => cx.err(format!(
                "queue {q} already has an AF_XDP socket bound (another process or port?)"
            )),
            Step::Bind if code == libc::EOPNOTSUPP || code == libc::EPROTONOSUPPORT => {
                cx.err(format!(
                    "binding queue {q} in zero-copy mode failed: the driver does not support \
                     it ({e}); set zero_copy = \"auto\" or \"off\""
                ))
            }
            Step::Bind if code == libc::EINVAL => cx.err(format!(
                "binding queue {q} failed ({e}): does the interface have that queue? (`ethtool \
                 -l {}`)",
                cx.cfg.iface
            )),
            Step::Bind => cx.err(format!("binding queue {q} failed: {e}")),
        }
    }

    fn attach(
        cx: &Ctx<'_>,
        prog: &XdpProgram,
        ifindex: u32,
    ) -> Result<(XdpLink, XdpMode), PortError> {
        let busy = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST));
        let fail = |mode: &str, e: io::Error| {
            if is_perm(&e) {
                cx.perm(&format!("attaching the XDP program ({mode} mode)"), &e)
            } else if busy(&e) {
                cx.err(format!(
                    "attaching the XDP program ({mode} mode) failed: {e}; another XDP program \
                     was attached meanwhile (see `ip -d link show dev {}`)",
                    cx.cfg.iface
                ))
            } else {
                cx.err(format!(
                    "attaching the XDP program in {mode} mode failed: {e} (kernel without BPF \
                     links for XDP, < 5.9?{})",
                    if mode == "native" {
                        "; or the driver has no native XDP: use mode = \"generic\" or \"auto\""
                    } else {
                        ""
                    }
                ))
            }
        };
        match cx.cfg.mode {
            XdpMode::Native => XdpLink::attach(prog, ifindex, XDP_FLAGS_DRV_MODE)
                .map(|l| (l, XdpMode::Native))
                .map_err(|e| fail("native", e)),
            XdpMode::Generic => XdpLink::attach(prog, ifindex, XDP_FLAGS_SKB_MODE)
                .map(|l| (l, XdpMode::Generic))
                .map_err(|e| fail("generic", e)),
            XdpMode::Auto => match XdpLink::attach(prog, ifindex, XDP_FLAGS_DRV_MODE) {
                Ok(l) => Ok((l, XdpMode::Native)),
                Err(e) if busy(&e) || is_perm(&e) => Err(fail("native", e)),
                Err(_) => XdpLink::attach(prog, ifindex, XDP_FLAGS_SKB_MODE)
                    .map(|l| (l, XdpMode::Generic))
                    .map_err(|e| fail("generic", e)),
            },
        }
    }
}

impl Port for AfXdpPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkStatus {
        let up = self
            .rtnl
            .lock()
            .ok()
            .and_then(|mut nl| nl.link(&self.iface).ok())
            .is_some_and(|li| li.up && li.lower_up);
        LinkStatus {
            up,
            speed_mbps: 0,
            full_duplex: true,
        }
    }

    fn counters(&self) -> &PortCounters {
        &self.counters
    }

    /// The queue counters plus the kernel's per-socket figures: frames dropped for a full rx
    /// ring or an empty fill ring count as `imissed`, invalid descriptors as errors.
    fn stats(&self) -> PortStats {
        let mut s = self.counters.stats();
        let nrx = self.info.rx_queues as usize;
        for (i, sock) in self.sockets.iter().enumerate() {
            let Some(k) = sock.statistics() else { continue };
            if i < nrx {
                let missed = k.rx_dropped + k.rx_ring_full;
                s.rx_queues[i].missed += missed;
                s.rx_queues[i].errors += k.rx_invalid_descs;
                s.imissed += missed;
                s.ierrors += k.rx_invalid_descs;
            }
            if let Some(t) = s.tx_queues.get_mut(i) {
                t.errors += k.tx_invalid_descs;
                s.oerrors += k.tx_invalid_descs;
            }
        }
        s
    }

    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError> {
        let slots = self.rx.get_mut().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(slots.take(q)?))
    }

    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError> {
        let slots = self.tx.get_mut().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(slots.take(q)?))
    }
}
