//! One AF_XDP socket per NIC queue, and the rx / tx queue objects that drive its rings.
//!
//! A socket's four rings split cleanly between the two queue objects: the rx queue owns the fill
//! and rx rings, the tx queue owns the tx and completion rings. Each ring has one user-space
//! side, so the two queues can live on different lcores without a lock. What they share is the
//! socket itself ([`SocketShared`], behind an `Arc`).
//!
//! **Buffer ownership.** Every UMEM buffer the kernel may touch is owned by an [`Mbuf`] parked
//! in the queue that gave it to the kernel: the rx queue keeps the mbufs whose buffers are in the
//! fill ring (or being filled), the tx queue keeps those being sent until the completion ring
//! hands them back. Both tables are indexed by buffer index and sized to the pool at `open`, so
//! the data path never allocates. When a queue is dropped its table is parked in the socket, and
//! the socket frees the parked mbufs only **after** closing its descriptor — the kernel has
//! stopped using the UMEM by then (`xsk_release` unbinds and waits for the driver with
//! `synchronize_net`), so no buffer goes back to the pool while the kernel may still write it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use super::ring::Ring;
use super::umem::Umem;
use crate::batch::Burst;
use crate::mem::{free_burst, Mbuf, Mempool};
use crate::port::counters::QueueCounterRef;
use crate::port::{RxQueue, TxQueue};

/// include/uapi/linux/if_xdp.h (kernel >= 6.17): the copy-mode transmit budget of one
/// `sendto` (default 32, `TX_BATCH_SIZE`). Raised to the ring size so one kick sends a whole
/// burst; older kernels answer ENOPROTOOPT and keep 32.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// How long `bind` retries while the queue is still held by a socket being released.
const BIND_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Fill-ring refills happen in batches of at least this many buffers.
const REFILL_BATCH: u32 = 32;

/// The socket shared by the rx and tx queue of one NIC queue.
pub(crate) struct SocketShared {
    /// Closed first when the socket goes (fields drop in order): the kernel then stops using
    /// every buffer of the UMEM.
    fd: OwnedFd,
    /// Mbuf tables of dropped queues, freed after the descriptor is closed.
    parked: Mutex<Vec<Vec<Option<Mbuf>>>>,
    /// True when the kernel bound it in zero-copy mode.
    pub(crate) zero_copy: bool,
}

impl SocketShared {
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn park(&self, table: Vec<Option<Mbuf>>) {
        if let Ok(mut p) = self.parked.lock() {
            p.push(table);
        }
        // A poisoned lock means a panic elsewhere; the table is then dropped here, which is
        // still safe for buffers the kernel no longer has (and leaks nothing).
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`).
    pub(crate) fn statistics(&self) -> Option<libc::xdp_statistics> {
        // SAFETY: all-zero is a valid `xdp_statistics` (plain integers).
        let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: getsockopt into a live struct of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut st as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(st)
    }
}

/// Which step of socket set-up failed (to explain the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `socket(AF_XDP)`.
    Socket,
    /// `setsockopt(XDP_UMEM_REG)`.
    UmemReg,
    /// Ring sizes, offsets and mappings.
    Rings,
    /// `bind`.
    Bind,
}

/// What to create.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketParams {
    pub(crate) ifindex: u32,
    pub(crate) queue_id: u32,
    pub(crate) ring_size: u32,
    pub(crate) rx: bool,
    pub(crate) tx: bool,
    /// `XDP_COPY` / `XDP_ZEROCOPY` / none, plus `XDP_USE_NEED_WAKEUP`.
    pub(crate) bind_flags: u16,
}

/// A bound socket and its mapped rings, before they are split into queues.
pub(crate) struct Socket {
    pub(crate) shared: Arc<SocketShared>,
    fill: Option<Ring<u64>>,
    comp: Option<Ring<u64>>,
    rx: Option<Ring<libc::xdp_desc>>,
    tx: Option<Ring<libc::xdp_desc>>,
}

fn setsockopt_u32(fd: RawFd, opt: libc::c_int, v: u32) -> io::Result<()> {
    // SAFETY: setsockopt with a live u32 and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (&v as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Socket {
    /// Creates, configures and binds a socket whose UMEM is `umem`.
    pub(crate) fn create(p: &SocketParams, umem: &Umem) -> Result<Socket, (Step, io::Error)> {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err((Step::Socket, io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        umem.register(raw).map_err(|e| (Step::UmemReg, e))?;
        let rings = |e| (Step::Rings, e);
        setsockopt_u32(raw, libc::XDP_UMEM_FILL_RING, p.ring_size).map_err(rings)?;
        setsockopt_u32(raw, libc::XDP_UMEM_COMPLETION_RING, p.ring_size).map_err(rings)?;
        if p.rx {
            setsockopt_u32(raw, libc::XDP_RX_RING, p.ring_size).map_err(rings)?;
        }
        if p.tx {
            setsockopt_u32(raw, libc::XDP_TX_RING, p.ring_size).map_err(rings)?;
        }
        // SAFETY: all-zero is a valid `xdp_mmap_offsets` (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: getsockopt into a live struct of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(rings(io::Error::last_os_error()));
        }
        if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            // A kernel older than 5.4 (no flags word, so no need_wakeup).
            return Err(rings(io::Error::from_raw_os_error(libc::EOPNOTSUPP)));
        }
        let n = p.ring_size;
        let (fill, rx) = if p.rx {
            (
                Some(
                    Ring::map(raw, libc::XDP_UMEM_PGOFF_FILL_RING, &off.fr, n, true)
                        .map_err(rings)?,
                ),
                Some(
                    Ring::map(raw, libc::XDP_PGOFF_RX_RING as u64, &off.rx, n, false)
                        .map_err(rings)?,
                ),
            )
        } else {
            (None, None)
        };
        let (comp, tx) = if p.tx {
            (
                Some(
                    Ring::map(raw, libc::XDP_UMEM_PGOFF_COMPLETION_RING, &off.cr, n, false)
                        .map_err(rings)?,
                ),
                Some(
                    Ring::map(
                        raw,
                        libc::XDP_PGOFF_TX_RING as u64 & 0xffff_ffff,
                        &off.tx,
                        n,
                        true,
                    )
                    .map_err(rings)?,
                ),
            )
        } else {
            (None, None)
        };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: p.bind_flags,
            sxdp_ifindex: p.ifindex,
            sxdp_queue_id: p.queue_id,
            sxdp_shared_umem_fd: 0,
        };
        // A socket closed moments ago on the same queue releases it from a kernel work item
        // (`xp_release_deferred`), so for a short while bind sees EBUSY: retry, bounded.
        let deadline = std::time::Instant::now() + BIND_BUSY_RETRY;
        loop {
            // SAFETY: bind with a valid sockaddr_xdp and its size.
            let r = unsafe {
                libc::bind(
                    raw,
                    (&sa as *const libc::sockaddr_xdp).cast(),
                    std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) || std::time::Instant::now() > deadline {
                return Err((Step::Bind, e));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if p.tx {
            // Best effort: kernels before 6.17 do not have it and keep a budget of 32.
            let _ = setsockopt_u32(raw, XDP_MAX_TX_SKB_BUDGET, p.ring_size);
        }
        let mut opts = libc::xdp_options { flags: 0 };
        let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
        // SAFETY: getsockopt into a live struct of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                (&mut opts as *mut libc::xdp_options).cast(),
                &mut len,
            )
        };
        let zero_copy = r == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0;
        Ok(Socket {
            shared: Arc::new(SocketShared {
                fd,
                parked: Mutex::new(Vec::new()),
                zero_copy,
            }),
            fill,
            comp,
            rx,
            tx,
        })
    }

    /// The receive side: fill + rx rings. Pre-fills the fill ring with up to `fill_target`
    /// buffers from `pool`.
    pub(crate) fn rx_queue(
        &mut self,
        umem: Umem,
        pool: &Mempool,
        fill_target: u32,
        port: u16,
        counters: QueueCounterRef,
    ) -> Option<XskRx> {
        let mut q = XskRx {
            shared: self.shared.clone(),
            fill: self.fill.take()?,
            rx: self.rx.take()?,
            umem,
            pool: pool.clone(),
            held: Vec::new(),
            outstanding: 0,
            fill_target,
            spare: Burst::new(),
            port,
            counters,
        };
        q.held.resize_with(umem.buffers() as usize, || None);
        q.fill_target = q.fill_target.min(q.fill.size());
        while q.outstanding < q.fill_target {
            if q.refill(true) == 0 {
                break;
            }
        }
        if q.fill.needs_wakeup() {
            q.kick_rx();
        }
        Some(q)
    }

    /// The transmit side: tx + completion rings.
    pub(crate) fn tx_queue(
        &mut self,
        umem: Umem,
        pool: &Mempool,
        counters: QueueCounterRef,
    ) -> Option<XskTx> {
        let mut q = XskTx {
            shared: self.shared.clone(),
            tx: self.tx.take()?,
            comp: self.comp.take()?,
            umem,
            pool: pool.clone(),
            held: Vec::new(),
            in_flight: 0,
            done: Burst::new(),
            copies: Burst::new(),
            counters,
        };
        q.held.resize_with(umem.buffers() as usize, || None);
        Some(q)
    }
}

/// Receive queue: fill ring + rx ring of one socket.
pub(crate) struct XskRx {
    shared: Arc<SocketShared>,
    fill: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    umem: Umem,
    pool: Mempool,
    /// The mbuf owning each buffer the kernel has (fill ring or being filled), by buffer index.
    held: Vec<Option<Mbuf>>,
    /// Buffers given to the kernel and not yet received back.
    outstanding: u32,
    /// How many buffers to keep in the kernel's hands.
    fill_target: u32,
    /// Scratch space for bulk allocation.
    spare: Burst,
    port: u16,
    counters: QueueCounterRef,
}

impl XskRx {
    /// Tops the fill ring up towards `fill_target` with one bulk allocation (at most a burst).
    /// Unless `force`, does nothing for a deficit smaller than [`REFILL_BATCH`]. Returns the
    /// buffers added.
    #[inline]
    fn refill(&mut self, force: bool) -> u32 {
        let deficit = self.fill_target - self.outstanding;
        if deficit == 0 || (!force && deficit < REFILL_BATCH.min(self.fill_target)) {
            return 0;
        }
        let mut n = self
            .fill
            .prod_free(deficit.min(self.spare.capacity() as u32));
        if n == 0 {
            return 0;
        }
        // All or nothing per call: on a short pool, try smaller amounts.
        while !self.pool.alloc_bulk(&mut self.spare, n as usize) {
            if n <= 1 {
                // One failed attempt; the next burst tries again.
                self.counters.nombuf.add(1);
                return 0;
            }
            n /= 2;
        }
        let mut i = 0;
        while let Some(m) = self.spare.pop() {
            let idx = m.buf_index();
            self.fill.prod_write(i, self.umem.fill_addr(idx));
            self.held[idx as usize] = Some(m);
            i += 1;
        }
        self.fill.prod_submit(n);
        self.outstanding += n;
        n
    }

    /// Wakes the driver up to refill its rx descriptors (`recvfrom`, only when asked).
    #[cold]
    fn kick_rx(&self) {
        // SAFETY: a zero-length, non-blocking recvfrom with null buffers, which AF_XDP treats as
        // a wake-up call.
        unsafe {
            libc::recvfrom(
                self.shared.raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

#[cfg(test)]
impl XskRx {
    /// Waits (bounded) for an rx descriptor and returns it without consuming it.
    pub(crate) fn peek_raw(&mut self, within: std::time::Duration) -> Option<libc::xdp_desc> {
        let end = std::time::Instant::now() + within;
        while std::time::Instant::now() < end {
            if self.rx.cons_peek(1) == 1 {
                return Some(self.rx.cons_read(0));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        None
    }
}

impl RxQueue for XskRx {
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.shared.fd.as_raw_fd())
    }

    #[inline]
    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let want = max.min(out.remaining()) as u32;
        let avail = if want == 0 {
            0
        } else {
            self.rx.cons_peek(want)
        };
        let mut got = 0usize;
        let mut bytes = 0u64;
        let mut errors = 0u64;
        for i in 0..avail {
            let d = self.rx.cons_read(i);
            let (idx, off) = self.umem.locate_rx(d.addr);
            let Some(mut m) = self.held.get_mut(idx).and_then(Option::take) else {
                // Not a buffer we gave the kernel: nothing to hand out.
                errors += 1;
                continue;
            };
            self.outstanding -= 1;
            if !m.set_data(off, d.len as usize) {
                // Longer than the mbuf's buffer (the kernel's limit is the chunk, which can be
                // up to 63 bytes more): drop it.
                errors += 1;
                continue;
            }
            m.set_port(self.port);
            bytes += d.len as u64;
            // Cannot fail: `avail` <= `out.remaining()`.
            let _ = out.push(m);
            got += 1;
        }
        if avail > 0 {
            self.rx.cons_release(avail);
        }
        self.refill(false);
        if self.fill.needs_wakeup() {
            self.kick_rx();
        }
        if got > 0 {
            self.counters.packets.add(got as u64);
            self.counters.bytes.add(bytes);
        }
        if errors > 0 {
            self.counters.errors.add(errors);
        }
        got
    }
}

impl Drop for XskRx {
    fn drop(&mut self) {
        self.shared.park(std::mem::take(&mut self.held));
    }
}

/// Transmit queue: tx ring + completion ring of one socket.
pub(crate) struct XskTx {
    shared: Arc<SocketShared>,
    tx: Ring<libc::xdp_desc>,
    comp: Ring<u64>,
    umem: Umem,
    pool: Mempool,
    /// The mbuf owning each buffer being sent, by buffer index.
    held: Vec<Option<Mbuf>>,
    in_flight: u32,
    /// Completed mbufs, freed in bulk.
    done: Burst,
    /// Copies of packets that are not in this UMEM, in send order.
    copies: Burst,
    counters: QueueCounterRef,
}

impl XskTx {
    /// Takes back the buffers the kernel has finished sending and frees their mbufs.
    #[inline]
    fn reclaim(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        let n = self.comp.cons_peek(self.in_flight);
        for i in 0..n {
            let idx = self.umem.index_of(self.comp.cons_read(i));
            if let Some(m) = self.held.get_mut(idx).and_then(Option::take) {
                if let Err(m) = self.done.push(m) {
                    free_burst(&mut self.done);
                    let _ = self.done.push(m);
                }
            }
        }
        if n > 0 {
            self.comp.cons_release(n);
            self.in_flight -= n;
            free_burst(&mut self.done);
        }
    }

    /// Asks the kernel to send what is in the tx ring (`sendto`, only when asked).
    #[inline]
    fn kick_tx(&self) {
        if !self.tx.needs_wakeup() {
            return;
        }
        // SAFETY: a zero-length, non-blocking sendto with no buffer and no address, which
        // AF_XDP treats as "process the tx ring". Errors (EAGAIN, EBUSY, ENOBUFS, ENETDOWN)
        // are transient: the descriptors stay in the ring for the next kick.
        unsafe {
            libc::sendto(
                self.shared.raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
    }
}

impl TxQueue for XskTx {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        self.reclaim();
        let want = pkts.len() as u32;
        if want == 0 {
            return 0;
        }
        let room = self.tx.prod_free(want) as usize;
        let data_room = self.pool.data_room() as usize;
        // Pass 1: how many packets go, and copies of those outside the UMEM.
        let mut take = 0;
        for m in &pkts.as_slice()[..room] {
            if self.umem.tx_slot(m).is_none() && m.pkt_len() <= data_room {
                let Some(mut c) = self.pool.alloc() else {
                    self.counters.nombuf.add(1);
                    break;
                };
                // Cannot fail: pkt_len <= data_room, the tailroom of a fresh mbuf.
                let dst = c.append(m.pkt_len()).expect("fits the data room");
                m.read_at(0, dst);
                let _ = self.copies.push(c);
            }
            take += 1;
        }
        // Pass 2: descriptors, in order. Copies are consumed from the front.
        self.copies.as_mut_slice().reverse();
        let (mut sent, mut bytes, mut dropped) = (0u32, 0u64, 0u64);
        let (umem, tx, held, copies) = (&self.umem, &mut self.tx, &mut self.held, &mut self.copies);
        pkts.drain_front(take, |m| {
            let m = match umem.tx_slot(&m) {
                Some(_) => m,
                None if m.pkt_len() > data_room => {
                    dropped += 1;
                    return;
                }
                // The copy made for this packet in pass 1; `m` itself is freed here.
                None => copies.pop().expect("one copy per packet outside the UMEM"),
            };
            let (idx, addr) = umem.tx_slot(&m).expect("own buffer");
            let len = m.data_len();
            tx.prod_write(
                sent,
                libc::xdp_desc {
                    addr,
                    len: len as u32,
                    options: 0,
                },
            );
            held[idx] = Some(m);
            sent += 1;
            bytes += len as u64;
        });
        if sent > 0 {
            self.tx.prod_submit(sent);
            self.in_flight += sent;
            self.counters.packets.add(sent as u64);
            self.counters.bytes.add(bytes);
        }
        if dropped > 0 {
            self.counters.errors.add(dropped);
        }
        self.kick_tx();
        take
    }

    fn flush(&mut self) {
        if self.tx.prod_pending() > 0 {
            self.kick_tx();
        }
        self.reclaim();
    }
}

impl Drop for XskTx {
    fn drop(&mut self) {
        self.shared.park(std::mem::take(&mut self.held));
    }
}
