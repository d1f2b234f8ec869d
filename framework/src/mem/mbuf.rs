//! The packet buffer handle, modelled on `rte_mbuf`.
//!
//! An [`Mbuf`] is one pointer to a 128-byte header in its pool's arena; the header points at a
//! fixed-size buffer (headroom + data room) in the same arena. The handle owns the packet:
//! dropping it returns the header and buffer to the pool (to the calling lcore's cache). Nothing
//! here allocates from the heap.
//!
//! ```text
//! buffer: [ headroom | data (data_len bytes) | tailroom ]
//!           ^buf      ^buf + data_off
//! ```
//!
//! Packets longer than one buffer are chains of segments (`next`); the first segment carries the
//! total `pkt_len` and `nb_segs`. A buffer can be shared by several handles through
//! [`Mbuf::clone_into`] (DPDK's indirect mbufs): the buffer has a reference count, and while it
//! is shared its bytes are read-only.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use super::mempool::{Mempool, ObjPtr, PoolInner};

/// Bytes of per-node scratch space in each mbuf (like `rte_mbuf`'s dynfields / `udata64`).
pub const SCRATCH_LEN: usize = 32;

/// Size of an mbuf header.
pub(crate) const HDR_SIZE: usize = 128;

const F_INDIRECT: u16 = 1;
const F_TRACED: u16 = 2;

/// Offload and status flags carried by an mbuf (a subset of DPDK's `RTE_MBUF_F_*`).
pub mod ol {
    /// The RSS hash field is valid.
    pub const RX_RSS_HASH: u64 = 1 << 1;
    /// The RSS hash is the Toeplitz hash of the IPv4 addresses and L4 ports under
    /// `stack::tcp::rss::SYMMETRIC_KEY` (a port whose RSS is set up like software steering):
    /// TCP flow steering uses it instead of hashing again. Not a DPDK flag.
    pub const RX_RSS_SYM_TOEPLITZ: u64 = 1 << 40;
    /// A VLAN tag was stripped into `vlan_tci`.
    pub const RX_VLAN_STRIPPED: u64 = 1 << 6;
    /// The IPv4 header checksum was verified good.
    pub const RX_IP_CKSUM_GOOD: u64 = 1 << 7;
    /// The IPv4 header checksum was found bad.
    pub const RX_IP_CKSUM_BAD: u64 = 1 << 4;
    /// The L4 checksum was verified good.
    pub const RX_L4_CKSUM_GOOD: u64 = 1 << 8;
    /// The L4 checksum was found bad.
    pub const RX_L4_CKSUM_BAD: u64 = 1 << 3;
    /// Ask the port to compute the IPv4 header checksum on transmit.
    pub const TX_IP_CKSUM: u64 = 1 << 54;
    /// Ask the port to compute the L4 checksum on transmit.
    pub const TX_L4_CKSUM: u64 = 1 << 52;
    /// Ask the port to insert `vlan_tci` on transmit.
    pub const TX_VLAN: u64 = 1 << 57;
}

/// The mbuf header, exactly two cache lines.
#[repr(C, align(64))]
pub(crate) struct MbufHdr {
    // Cache line 0: what rx, forwarding and tx touch.
    buf: *mut u8,
    pool: *const PoolInner,
    next: *mut MbufHdr,
    data_off: u16,
    data_len: u16,
    buf_len: u16,
    refcnt: AtomicU16,
    nb_segs: u16,
    port: u16,
    vlan_tci: u16,
    flags: u16,
    pkt_len: u32,
    rss_hash: u32,
    packet_type: u32,
    index: u32,
    ol_flags: u64,
    // Cache line 1: less frequently used.
    direct: *mut MbufHdr,
    timestamp: u64,
    tx_offload: u64,
    scratch: [u64; SCRATCH_LEN / 8],
}

const _: () = assert!(std::mem::size_of::<MbufHdr>() == HDR_SIZE);

/// Port number of an mbuf that has not been received on any port.
pub const NO_PORT: u16 = u16::MAX;

impl MbufHdr {
    pub(crate) fn new(pool: *const PoolInner, buf: *mut u8, buf_len: u16, index: u32) -> Self {
        MbufHdr {
            buf,
            pool,
            next: ptr::null_mut(),
            data_off: 0,
            data_len: 0,
            buf_len,
            refcnt: AtomicU16::new(1),
            nb_segs: 1,
            port: NO_PORT,
            vlan_tci: 0,
            flags: 0,
            pkt_len: 0,
            rss_hash: 0,
            packet_type: 0,
            index,
            ol_flags: 0,
            direct: ptr::null_mut(),
            timestamp: 0,
            tx_offload: 0,
            scratch: [0; SCRATCH_LEN / 8],
        }
    }

    /// Resets a free header to an empty packet (`rte_pktmbuf_reset`). Free headers already have
    /// `next` null, one segment, refcount 1 and their own buffer. Only the first cache line is
    /// written: `tx_offload` and `timestamp` are meaningful only when `ol_flags` (cleared here)
    /// or the stage that set them says so.
    ///
    /// # Safety
    /// `h` must be a free object of a live pool, owned by the caller; `headroom` must not
    /// exceed its buffer length (the pool guarantees it).
    #[inline(always)]
    pub(crate) unsafe fn reset(h: *mut MbufHdr, headroom: u16) {
        let h = &mut *h;
        h.data_off = headroom;
        h.data_len = 0;
        h.pkt_len = 0;
        h.port = NO_PORT;
        h.ol_flags = 0;
        h.packet_type = 0;
        h.vlan_tci = 0;
    }
}

/// An owned packet buffer (possibly the head of a chain of segments).
#[repr(transparent)]
pub struct Mbuf(NonNull<MbufHdr>);

// SAFETY: an Mbuf is an owning handle; the buffer's shared state (refcount) is atomic and the
// pool it returns to is Sync.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Wraps a free object after resetting it.
    ///
    /// # Safety
    /// `h` must be a free object of a live pool, now owned by the caller.
    #[inline]
    pub(crate) unsafe fn from_fresh(h: NonNull<MbufHdr>, headroom: u16) -> Mbuf {
        MbufHdr::reset(h.as_ptr(), headroom);
        Mbuf(h)
    }

    #[inline]
    fn hdr(&self) -> &MbufHdr {
        // SAFETY: the handle owns a live header.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn hdr_mut(&mut self) -> &mut MbufHdr {
        // SAFETY: the handle owns a live header exclusively (headers are never shared; only
        // buffers are).
        unsafe { self.0.as_mut() }
    }

    /// Bytes of data in this segment.
    #[inline]
    pub fn data_len(&self) -> usize {
        self.hdr().data_len as usize
    }

    /// Bytes of data in the whole chain (valid on the first segment).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.hdr().pkt_len as usize
    }

    /// Number of segments in the chain.
    #[inline]
    pub fn nb_segs(&self) -> usize {
        self.hdr().nb_segs as usize
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.hdr().data_off as usize
    }

    /// Free bytes after the data of this segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let h = self.hdr();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    /// Size of the whole buffer (headroom + data room).
    #[inline]
    pub fn buf_len(&self) -> usize {
        self.hdr().buf_len as usize
    }

    /// Address of the start of the buffer this segment uses.
    #[inline]
    pub fn buf_addr(&self) -> *const u8 {
        self.hdr().buf
    }

    /// The pool this header returns to.
    #[inline]
    pub(crate) fn pool_ptr(&self) -> *const PoolInner {
        self.hdr().pool
    }

    /// Index of this mbuf inside its pool (stable for the life of the pool; a driver can map it
    /// to an offset in the pool's data region).
    #[inline]
    pub fn buf_index(&self) -> u32 {
        self.hdr().index
    }

    /// The data of this segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let h = self.hdr();
        // SAFETY: data_off + data_len <= buf_len, inside this mbuf's buffer.
        unsafe { std::slice::from_raw_parts(h.buf.add(h.data_off as usize), h.data_len as usize) }
    }

    /// True when the buffer is also referenced by another handle (so it must not be written).
    #[inline]
    pub fn is_shared(&self) -> bool {
        let h = self.hdr();
        h.flags & F_INDIRECT != 0 || h.refcnt.load(Ordering::Acquire) != 1
    }

    /// True for a handle made by [`Mbuf::clone_into`] that borrows another mbuf's buffer.
    #[inline]
    pub fn is_indirect(&self) -> bool {
        self.hdr().flags & F_INDIRECT != 0
    }

    /// References to this segment's buffer.
    #[inline]
    pub fn refcnt(&self) -> u16 {
        self.hdr().refcnt.load(Ordering::Acquire)
    }

    /// The data of this segment, writable, or `None` while the buffer is shared.
    #[inline]
    pub fn try_data_mut(&mut self) -> Option<&mut [u8]> {
        if self.is_shared() {
            return None;
        }
        let h = self.hdr_mut();
        // SAFETY: unshared buffer owned by this handle; range inside the buffer.
        Some(unsafe {
            std::slice::from_raw_parts_mut(h.buf.add(h.data_off as usize), h.data_len as usize)
        })
    }

    /// The data of this segment, writable.
    ///
    /// # Panics
    /// If the buffer is shared with a clone (a programming error, not an input error); use
    /// [`Mbuf::try_data_mut`] where sharing is possible.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.try_data_mut()
            .expect("data_mut on a shared mbuf: buffers shared by clone_into are read-only")
    }

    /// Sets the data length of a single-segment packet (what an rx driver does after filling the
    /// buffer). Returns false if `len` does not fit in the room after the data offset.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        let h = self.hdr_mut();
        if len > (h.buf_len - h.data_off) as usize || !h.next.is_null() {
            return false;
        }
        h.data_len = len as u16;
        h.pkt_len = len as u32;
        true
    }

    /// Places the data of a single-segment packet at `offset` bytes from the start of the
    /// buffer with length `len` (what a zero-copy driver does when the device wrote the frame
    /// somewhere inside the buffer). False, changing nothing, if it does not fit the buffer or
    /// the mbuf is chained or shared.
    #[inline]
    pub fn set_data(&mut self, offset: usize, len: usize) -> bool {
        if self.is_shared() {
            return false;
        }
        let h = self.hdr_mut();
        if !h.next.is_null()
            || offset
                .checked_add(len)
                .is_none_or(|end| end > h.buf_len as usize)
        {
            return false;
        }
        h.data_off = offset as u16;
        h.data_len = len as u16;
        h.pkt_len = len as u32;
        true
    }

    /// Moves the start of data back by `n` bytes and returns the new bytes (to write a header
    /// in front), like `rte_pktmbuf_prepend`. `None` if the headroom is short or the buffer
    /// is shared.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() || self.is_shared() {
            return None;
        }
        let h = self.hdr_mut();
        h.data_off -= n as u16;
        h.data_len += n as u16;
        h.pkt_len += n as u32;
        // SAFETY: the n bytes at the new data_off lie in this unshared buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(h.buf.add(h.data_off as usize), n) })
    }

    /// Extends the last segment by `n` bytes and returns them, like `rte_pktmbuf_append`.
    /// `None` if the tailroom is short or the buffer is shared.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let last = self.last_seg();
        // SAFETY: `last` is a segment of our chain, owned through us.
        let lh = unsafe { &mut *last };
        let tail = lh.buf_len as usize - lh.data_off as usize - lh.data_len as usize;
        let shared = lh.flags & F_INDIRECT != 0 || lh.refcnt.load(Ordering::Acquire) != 1;
        if n > tail || shared {
            return None;
        }
        let start = lh.data_off as usize + lh.data_len as usize;
        lh.data_len += n as u16;
        let buf = lh.buf;
        self.hdr_mut().pkt_len += n as u32;
        // SAFETY: the n bytes after the old end lie in the last segment's unshared buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(buf.add(start), n) })
    }

    /// Removes `n` bytes from the start of the first segment (`rte_pktmbuf_adj`). False if the
    /// segment is shorter than `n`.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let h = self.hdr_mut();
        if n > h.data_len as usize {
            return false;
        }
        h.data_off += n as u16;
        h.data_len -= n as u16;
        h.pkt_len -= n as u32;
        true
    }

    /// Removes `n` bytes from the end of the last segment (`rte_pktmbuf_trim`). False if the
    /// last segment is shorter than `n`.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let last = self.last_seg();
        // SAFETY: `last` is a segment of our chain.
        let lh = unsafe { &mut *last };
        if n > lh.data_len as usize {
            return false;
        }
        lh.data_len -= n as u16;
        self.hdr_mut().pkt_len -= n as u32;
        true
    }

    fn last_seg(&mut self) -> *mut MbufHdr {
        let mut p = self.0.as_ptr();
        // SAFETY: following `next` within our own chain.
        unsafe {
            while !(*p).next.is_null() {
                p = (*p).next;
            }
        }
        p
    }

    /// Shortens the packet to `len` bytes, freeing segments that fall entirely beyond it.
    /// Does nothing if the packet is not longer than `len`.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.pkt_len() {
            return;
        }
        let mut left = len;
        let mut p = self.0.as_ptr();
        // SAFETY: walking and cutting our own chain; the cut-off tail becomes a separate chain
        // that is freed by dropping a handle to it.
        unsafe {
            loop {
                let seg_len = (*p).data_len as usize;
                if left <= seg_len || (*p).next.is_null() {
                    (*p).data_len = left.min(seg_len) as u16;
                    let tail = (*p).next;
                    (*p).next = ptr::null_mut();
                    if !tail.is_null() {
                        drop(Mbuf(NonNull::new_unchecked(tail)));
                    }
                    break;
                }
                left -= seg_len;
                p = (*p).next;
            }
            let segs = self.seg_ptrs().count() as u16;
            let h = self.hdr_mut();
            h.pkt_len = len as u32;
            h.nb_segs = segs;
        }
    }

    /// Appends `tail` (and its segments) to this chain, like `rte_pktmbuf_chain`. Gives `tail`
    /// back if the chain would exceed 65535 segments or 4 GiB.
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        let segs = self.nb_segs() + tail.nb_segs();
        let len = self.pkt_len() as u64 + tail.pkt_len() as u64;
        if segs > u16::MAX as usize || len > u32::MAX as u64 {
            return Err(tail);
        }
        let last = self.last_seg();
        let t = tail.0.as_ptr();
        std::mem::forget(tail);
        // SAFETY: `last` is the end of our chain; `t` is a head we now own; its segment count
        // and length move into ours.
        unsafe {
            (*last).next = t;
            (*t).nb_segs = 1;
            (*t).pkt_len = (*t).data_len as u32;
        }
        let h = self.hdr_mut();
        h.nb_segs = segs as u16;
        h.pkt_len = len as u32;
        Ok(())
    }

    /// Iterates over the data of each segment.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.0.as_ptr(),
            _m: std::marker::PhantomData,
        }
    }

    /// Copies `dst.len()` bytes starting at `offset` of the packet (across segments) into
    /// `dst`. False if the packet is too short.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> bool {
        if offset + dst.len() > self.pkt_len() {
            return false;
        }
        let mut skip = offset;
        let mut done = 0;
        for seg in self.segments() {
            if done == dst.len() {
                break;
            }
            if skip >= seg.len() {
                skip -= seg.len();
                continue;
            }
            let take = (seg.len() - skip).min(dst.len() - done);
            dst[done..done + take].copy_from_slice(&seg[skip..skip + take]);
            done += take;
            skip = 0;
        }
        done == dst.len()
    }

    /// Port the packet arrived on ([`NO_PORT`] if none).
    #[inline]
    pub fn port(&self) -> u16 {
        self.hdr().port
    }

    /// Sets the arrival port.
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.hdr_mut().port = port;
    }

    /// RSS / flow hash (valid when `ol::RX_RSS_HASH` is set).
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        self.hdr().rss_hash
    }

    /// Sets the flow hash and marks it valid.
    #[inline]
    pub fn set_rss_hash(&mut self, hash: u32) {
        let h = self.hdr_mut();
        h.rss_hash = hash;
        h.ol_flags |= ol::RX_RSS_HASH;
    }

    /// Offload flags (see [`ol`]).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.hdr().ol_flags
    }

    /// Replaces the offload flags.
    #[inline]
    pub fn set_ol_flags(&mut self, flags: u64) {
        self.hdr_mut().ol_flags = flags;
    }

    /// Packet type as classified by a driver or parser node (free-form bits).
    #[inline]
    pub fn packet_type(&self) -> u32 {
        self.hdr().packet_type
    }

    /// Sets the packet type.
    #[inline]
    pub fn set_packet_type(&mut self, t: u32) {
        self.hdr_mut().packet_type = t;
    }

    /// VLAN tag control information (stripped on rx / to insert on tx).
    #[inline]
    pub fn vlan_tci(&self) -> u16 {
        self.hdr().vlan_tci
    }

    /// Sets the VLAN TCI.
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        self.hdr_mut().vlan_tci = tci;
    }

    /// Timestamp (driver- or app-defined units, e.g. TSC at rx).
    #[inline]
    pub fn timestamp(&self) -> u64 {
        self.hdr().timestamp
    }

    /// Sets the timestamp.
    #[inline]
    pub fn set_timestamp(&mut self, t: u64) {
        self.hdr_mut().timestamp = t;
    }

    /// Packed tx offload lengths (l2/l3/l4 header lengths, TSO segment size), as `rte_mbuf`.
    /// Not cleared on allocation: meaningful only when a `TX_*` offload flag is set.
    #[inline]
    pub fn tx_offload(&self) -> u64 {
        self.hdr().tx_offload
    }

    /// Sets the packed tx offload lengths.
    #[inline]
    pub fn set_tx_offload(&mut self, v: u64) {
        self.hdr_mut().tx_offload = v;
    }

    /// Per-packet scratch space for nodes to pass results along (not cleared on alloc), as
    /// 8-byte aligned words.
    #[inline]
    pub fn scratch_words(&self) -> &[u64; SCRATCH_LEN / 8] {
        &self.hdr().scratch
    }

    /// Writable scratch words.
    #[inline]
    pub fn scratch_words_mut(&mut self) -> &mut [u64; SCRATCH_LEN / 8] {
        &mut self.hdr_mut().scratch
    }

    /// Scratch space as bytes.
    #[inline]
    pub fn scratch(&self) -> &[u8; SCRATCH_LEN] {
        // SAFETY: [u64; 4] and [u8; 32] have the same size; u8 has no alignment or validity
        // requirements.
        unsafe { &*(self.hdr().scratch.as_ptr() as *const [u8; SCRATCH_LEN]) }
    }

    /// Writable scratch bytes.
    #[inline]
    pub fn scratch_mut(&mut self) -> &mut [u8; SCRATCH_LEN] {
        // SAFETY: as in `scratch`; the borrow is exclusive through `&mut self`.
        unsafe { &mut *(self.hdr_mut().scratch.as_mut_ptr() as *mut [u8; SCRATCH_LEN]) }
    }

    /// True if the packet is being traced through the graph.
    #[inline]
    pub fn is_traced(&self) -> bool {
        self.hdr().flags & F_TRACED != 0
    }

    /// Marks or unmarks the packet for tracing (cleared when the mbuf is freed).
    #[inline]
    pub fn set_traced(&mut self, on: bool) {
        let h = self.hdr_mut();
        if on {
            h.flags |= F_TRACED;
        } else {
            h.flags &= !F_TRACED;
        }
    }

    /// Makes a second handle to the same packet bytes without copying them (DPDK's
    /// `rte_pktmbuf_clone`): one header per segment is taken from `pool`, each pointing at the
    /// original buffer, whose reference count goes up. Both handles are read-only until the
    /// other is dropped. `None` if `pool` runs out (nothing is leaked).
    pub fn clone_into(&self, pool: &Mempool) -> Option<Mbuf> {
        let mut head: Option<Mbuf> = None;
        for seg in self.seg_ptrs() {
            let mut m = pool.alloc()?;
            // SAFETY: `seg` is a live segment of our chain; `direct` owns the buffer we attach
            // to (the segment itself, or the mbuf it is attached to).
            unsafe {
                let s = &*seg;
                let direct = if s.flags & F_INDIRECT != 0 {
                    s.direct
                } else {
                    seg
                };
                (*direct).refcnt.fetch_add(1, Ordering::AcqRel);
                let h = m.hdr_mut();
                h.buf = (*direct).buf;
                h.buf_len = (*direct).buf_len;
                h.direct = direct;
                h.flags |= F_INDIRECT;
                h.data_off = s.data_off;
                h.data_len = s.data_len;
                h.pkt_len = s.data_len as u32;
                h.port = s.port;
                h.rss_hash = s.rss_hash;
                h.ol_flags = s.ol_flags;
                h.packet_type = s.packet_type;
                h.vlan_tci = s.vlan_tci;
                h.timestamp = s.timestamp;
                h.tx_offload = s.tx_offload;
            }
            match head.as_mut() {
                None => head = Some(m),
                Some(hd) => {
                    if let Err(m) = hd.chain(m) {
                        drop(m);
                        return None;
                    }
                }
            }
        }
        head
    }

    /// A read-only handle to `len` bytes at `off` within this single segment's data, sharing
    /// its buffer (a one-segment [`clone_into`](Self::clone_into) narrowed to the range): how a
    /// TCP send buffer hands a segment's payload to the wire without copying it. `None` if
    /// `pool` runs out, the range is not inside the data, or this is a chain.
    pub fn clone_range(&self, pool: &Mempool, off: usize, len: usize) -> Option<Mbuf> {
        if self.nb_segs() != 1 || off.checked_add(len)? > self.data_len() {
            return None;
        }
        let mut m = self.clone_into(pool)?;
        let h = m.hdr_mut();
        h.data_off += off as u16;
        h.data_len = len as u16;
        h.pkt_len = len as u32;
        Some(m)
    }

    /// Appends as much of `data` as fits in the tailroom to this segment's data, even while
    /// clones of the buffer exist, and returns the count: clones see only bytes that were data
    /// when they were made, so the bytes after the data are this handle's alone. A send buffer
    /// fills its chunks this way while earlier parts of them are on the wire. Appends nothing
    /// (returns 0) to an indirect mbuf or a chain.
    ///
    /// # Safety
    /// No handle sharing this buffer may cover bytes past this segment's current data end
    /// (true when the data was never shortened by [`trim`](Self::trim) or
    /// [`truncate`](Self::truncate) after a clone was made).
    pub unsafe fn append_past_clones(&mut self, data: &[u8]) -> usize {
        if self.is_indirect() || self.nb_segs() != 1 {
            return 0;
        }
        let n = data.len().min(self.tailroom());
        let h = self.hdr_mut();
        let end = h.data_off as usize + h.data_len as usize;
        // SAFETY: `end + n <= buf_len`, inside this direct buffer; by the caller's promise no
        // other handle reads these bytes, and `data` cannot overlap them (it is borrowed
        // shared while the bytes past the data end are reachable only through `self`).
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), h.buf.add(end), n) };
        h.data_len += n as u16;
        h.pkt_len += n as u32;
        n
    }

    fn seg_ptrs(&self) -> impl Iterator<Item = *mut MbufHdr> + '_ {
        let mut p = self.0.as_ptr();
        std::iter::from_fn(move || {
            if p.is_null() {
                return None;
            }
            let cur = p;
            // SAFETY: walking our own chain.
            p = unsafe { (*p).next };
            Some(cur)
        })
    }

    /// If this is a lone, unshared, direct segment, gives up the handle without running `Drop`
    /// and returns the object and its pool, for a bulk put. Otherwise returns the handle.
    #[inline]
    pub(crate) fn into_simple_free(self) -> Result<(NonNull<MbufHdr>, *const PoolInner), Mbuf> {
        let h = self.hdr();
        if h.next.is_null() && h.flags == 0 && h.refcnt.load(Ordering::Relaxed) == 1 {
            let out = (self.0, h.pool);
            std::mem::forget(self);
            Ok(out)
        } else {
            Err(self)
        }
    }

    /// Turns the handle into a raw pointer without freeing (for drivers that park mbufs in
    /// hardware-like rings). Pair with [`Mbuf::from_raw`].
    #[inline]
    pub fn into_raw(self) -> NonNull<u8> {
        let p = self.0.cast();
        std::mem::forget(self);
        p
    }

    /// Rebuilds a handle from [`Mbuf::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` and be used once.
    #[inline]
    pub unsafe fn from_raw(p: NonNull<u8>) -> Mbuf {
        Mbuf(p.cast())
    }
}

/// Returns one segment's header to its pool if this was the last reference to it
/// (`rte_pktmbuf_prefree_seg` + put).
///
/// # Safety
/// `seg` must be a live segment whose `next` has already been detached or read by the caller.
unsafe fn free_seg(seg: *mut MbufHdr) {
    let s = &mut *seg;
    let last = if s.refcnt.load(Ordering::Acquire) == 1 {
        true
    } else {
        s.refcnt.fetch_sub(1, Ordering::AcqRel) == 1
    };
    if !last {
        return;
    }
    s.refcnt.store(1, Ordering::Relaxed);
    s.next = ptr::null_mut();
    s.nb_segs = 1;
    if s.flags & F_INDIRECT != 0 {
        let direct = s.direct;
        let pool = &*s.pool;
        s.direct = ptr::null_mut();
        s.buf = pool.own_buf(s.index);
        s.buf_len = pool.buf_len();
        free_seg(direct);
    }
    s.flags = 0;
    let pool = &*s.pool;
    pool.put_bulk(&[ObjPtr(NonNull::new_unchecked(seg))]);
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        let mut p = self.0.as_ptr();
        while !p.is_null() {
            // SAFETY: we own the chain; read `next` before the segment is recycled.
            unsafe {
                let next = (*p).next;
                free_seg(p);
                p = next;
            }
        }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("index", &self.buf_index())
            .field("pkt_len", &self.pkt_len())
            .field("nb_segs", &self.nb_segs())
            .field("port", &self.port())
            .finish()
    }
}

/// Iterator over the segments' data of a chain.
pub struct Segments<'a> {
    next: *mut MbufHdr,
    _m: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: segments of a chain borrowed for 'a.
        unsafe {
            let h = &*self.next;
            self.next = h.next;
            Some(std::slice::from_raw_parts(
                h.buf.add(h.data_off as usize),
                h.data_len as usize,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};

    fn pool(n: u32) -> Mempool {
        let mut p = MempoolParams::new("mbuf-test", n);
        p.cache_size = 0;
        p.huge = HugePolicy::Off;
        p.data_room = 256;
        Mempool::new(&p).unwrap()
    }

    #[test]
    fn fresh_mbuf_shape() {
        let mp = pool(4);
        let m = mp.alloc().unwrap();
        assert_eq!(m.data_len(), 0);
        assert_eq!(m.pkt_len(), 0);
        assert_eq!(m.headroom(), 128);
        assert_eq!(m.tailroom(), 256);
        assert_eq!(m.nb_segs(), 1);
        assert_eq!(m.port(), NO_PORT);
        assert!(!m.is_shared());
    }

    #[test]
    fn prepend_append_adj_trim() {
        let mp = pool(4);
        let mut m = mp.alloc().unwrap();
        m.append(4).unwrap().copy_from_slice(b"data");
        m.prepend(3).unwrap().copy_from_slice(b"hdr");
        assert_eq!(m.data(), b"hdrdata");
        assert_eq!(m.pkt_len(), 7);
        assert_eq!(m.headroom(), 125);
        assert!(m.prepend(126).is_none());
        assert!(m.append(256).is_none());
        assert!(m.adj(3));
        assert!(m.trim(2));
        assert_eq!(m.data(), b"da");
        assert!(!m.adj(3));
        assert!(!m.trim(3));
        assert_eq!(m.pkt_len(), 2);
        assert!(m.set_len(256));
        assert!(!m.set_len(257));
    }

    #[test]
    fn chains_free_every_segment() {
        let mp = pool(8);
        let mut a = mp.alloc().unwrap();
        a.append(3).unwrap().copy_from_slice(b"abc");
        for chunk in [&b"de"[..], b"fgh"] {
            let mut s = mp.alloc().unwrap();
            s.append(chunk.len()).unwrap().copy_from_slice(chunk);
            a.chain(s).unwrap();
        }
        assert_eq!(a.nb_segs(), 3);
        assert_eq!(a.pkt_len(), 8);
        let segs: Vec<&[u8]> = a.segments().collect();
        assert_eq!(segs, [&b"abc"[..], b"de", b"fgh"]);
        let mut buf = [0u8; 5];
        assert!(a.read_at(2, &mut buf));
        assert_eq!(&buf, b"cdefg");
        assert!(!a.read_at(4, &mut buf));
        // append goes to the last segment, trim takes from it.
        a.append(1).unwrap()[0] = b'i';
        assert!(a.trim(2));
        assert_eq!(a.segments().last().unwrap(), b"fg");
        assert_eq!(mp.in_use(), 3);
        drop(a);
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn clones_share_bytes_and_free_in_any_order() {
        let mp = pool(8);
        let hdrs = pool(8);
        let mut a = mp.alloc().unwrap();
        a.append(5).unwrap().copy_from_slice(b"hello");
        a.set_port(3);
        let mut b = a.clone_into(&hdrs).unwrap();
        assert_eq!(b.data(), b"hello");
        assert_eq!(b.port(), 3);
        assert_eq!(a.refcnt(), 2);
        assert!(a.is_shared() && b.is_shared());
        assert!(a.try_data_mut().is_none());
        assert!(b.try_data_mut().is_none());
        assert!(b.prepend(1).is_none());
        // Moving the view of a clone does not move the original's.
        assert!(b.adj(1));
        assert_eq!(b.data(), b"ello");
        assert_eq!(a.data(), b"hello");
        let c = b.clone_into(&hdrs).unwrap();
        assert_eq!(a.refcnt(), 3);
        drop(a);
        assert_eq!(mp.in_use(), 1, "buffer stays while clones exist");
        drop(b);
        assert_eq!(c.data(), b"ello");
        drop(c);
        assert_eq!(mp.in_use(), 0);
        assert_eq!(hdrs.in_use(), 0);
    }

    #[test]
    fn clone_fails_cleanly_when_pool_empty() {
        let mp = pool(4);
        let hdrs = pool(1);
        let mut a = mp.alloc().unwrap();
        a.append(1).unwrap();
        let s = mp.alloc().unwrap();
        a.chain(s).unwrap();
        assert!(a.clone_into(&hdrs).is_none());
        assert_eq!(hdrs.in_use(), 0);
        assert_eq!(a.refcnt(), 1);
        assert!(!a.is_shared());
    }

    #[test]
    fn set_data_places_the_frame_anywhere_in_the_buffer() {
        let mp = pool(2);
        let mut m = mp.alloc().unwrap();
        assert!(m.set_data(256, 100));
        assert_eq!((m.headroom(), m.data_len(), m.pkt_len()), (256, 100, 100));
        assert_eq!(m.tailroom(), 384 - 356);
        assert!(!m.set_data(300, 100), "past the end of the 384-byte buffer");
        assert!(m.set_data(0, 384));
    }

    #[test]
    fn truncate_frees_the_tail_segments() {
        let mp = pool(8);
        let mut a = mp.alloc().unwrap();
        a.append(10).unwrap().fill(1);
        for _ in 0..3 {
            let mut s = mp.alloc().unwrap();
            s.append(10).unwrap().fill(2);
            a.chain(s).unwrap();
        }
        assert_eq!((a.pkt_len(), a.nb_segs(), mp.in_use()), (40, 4, 4));
        a.truncate(50);
        assert_eq!(a.pkt_len(), 40);
        a.truncate(15);
        assert_eq!((a.pkt_len(), a.nb_segs(), mp.in_use()), (15, 2, 2));
        assert_eq!(a.segments().map(|s| s.len()).collect::<Vec<_>>(), [10, 5]);
        a.truncate(4);
        assert_eq!((a.pkt_len(), a.nb_segs(), mp.in_use()), (4, 1, 1));
        assert_eq!(a.data(), &[1, 1, 1, 1]);
    }

    #[test]
    fn raw_round_trip() {
        let mp = pool(2);
        let m = mp.alloc().unwrap();
        let idx = m.buf_index();
        let raw = m.into_raw();
        assert_eq!(mp.in_use(), 1);
        // SAFETY: from into_raw, used once.
        let m = unsafe { Mbuf::from_raw(raw) };
        assert_eq!(m.buf_index(), idx);
        drop(m);
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn clone_range_shares_a_window_and_appends_past_it_stay_invisible() {
        let mp = pool(8);
        let mut m = mp.alloc().unwrap();
        // SAFETY: no clones exist yet.
        assert_eq!(unsafe { m.append_past_clones(b"hello, ") }, 7);
        let c = m.clone_range(&mp, 2, 4).unwrap();
        assert_eq!(c.data(), b"llo,");
        assert!(c.is_indirect() && m.is_shared());
        // SAFETY: the clone covers bytes 2..6 of the data, nothing past its end.
        assert_eq!(unsafe { m.append_past_clones(b"world") }, 5);
        assert_eq!(m.data(), b"hello, world");
        assert_eq!(c.data(), b"llo,");
        let d = m.clone_range(&mp, 7, 5).unwrap();
        assert_eq!(d.data(), b"world");
        assert!(m.clone_range(&mp, 8, 5).is_none(), "past the data");
        assert!(m.clone_range(&mp, usize::MAX, 2).is_none(), "overflow");
        // Clones cannot be appended to; the tailroom bounds the owner.
        let mut c = c;
        // SAFETY: (refused: indirect)
        assert_eq!(unsafe { c.append_past_clones(b"x") }, 0);
        let big = vec![7u8; 1000];
        // SAFETY: as above.
        assert_eq!(unsafe { m.append_past_clones(&big) }, 256 - 12);
        // The buffer goes back to the pool only after the last handle.
        let avail = mp.available();
        drop(m);
        assert_eq!(mp.available(), avail);
        drop(c);
        assert_eq!(mp.available(), avail + 1);
        drop(d);
        assert_eq!(mp.available(), avail + 3);
    }
}
