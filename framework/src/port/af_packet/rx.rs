//! Receive: walking a TPACKET_V3 ring of blocks and copying frames into mbufs.
//!
//! The ring is `blocks` blocks of `block_size` bytes. The kernel fills one block at a time with
//! frames (each a `tpacket3_hdr` followed by the frame bytes, linked by `tp_next_offset`) and
//! hands it over by setting `TP_STATUS_USER` in the block header, either when the block is full
//! or when the retire timer (`tp_retire_blk_tov`) fires on a partially filled one. User space
//! reads the frames and gives the block back by storing `TP_STATUS_KERNEL`. Blocks are used in
//! ring order, so the queue only ever looks at one block: the one at `cur`.
//!
//! Every offset and length read from the ring is checked against the block size before it is
//! used; a block whose headers do not add up is given back to the kernel unread (its remaining
//! frames counted as `errors`) instead of being trusted.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use libc::{
    TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID, TP_STATUS_KERNEL, TP_STATUS_LOSING,
    TP_STATUS_USER, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID,
};

use super::sys::{
    self, rd16, rd32, wr32, Mapping, BD_FIRST, BD_NUM_PKTS, BD_SIZE, BD_STATUS, H3_LEN, H3_MAC,
    H3_NEXT, H3_RXHASH, H3_SIZE, H3_SNAPLEN, H3_STATUS, H3_VLAN_TCI, H3_VLAN_TPID,
};
use crate::batch::Burst;
use crate::counter::Counter;
use crate::mem::{ol, Mbuf, Mempool};
use crate::port::counters::QueueCounterRef;
use crate::port::RxQueue;
use crate::wire::checksum;

/// What an rx queue shares with its port: the socket (for `PACKET_STATISTICS`) and the
/// driver-specific counters.
pub(super) struct RxShared {
    /// The queue's socket. The port keeps it to read kernel drop counts on demand.
    pub(super) fd: OwnedFd,
    /// Frames the kernel dropped because the ring was full (summed `tp_drops`).
    drops: AtomicU64,
    /// Times the kernel found the ring full and froze the queue (summed `tp_freeze_q_cnt`).
    freezes: AtomicU64,
    /// Blocks given back unread because their headers were inconsistent (written by the queue).
    pub(super) bad_blocks: Counter,
    /// Frames whose L4 checksum the driver completed (`TP_STATUS_CSUMNOTREADY`; written by
    /// the queue).
    pub(super) csum_completed: Counter,
}

impl RxShared {
    pub(super) fn new(fd: OwnedFd) -> Self {
        RxShared {
            fd,
            drops: AtomicU64::new(0),
            freezes: AtomicU64::new(0),
            bad_blocks: Counter::default(),
            csum_completed: Counter::default(),
        }
    }

    /// Moves the kernel's drop counters (reset by every read) into ours. One system call; the
    /// queue calls it only when a block arrives flagged `TP_STATUS_LOSING`, the port when its
    /// statistics are read.
    pub(super) fn refresh(&self) {
        if let Ok((drops, freezes)) = sys::packet_stats(self.fd.as_fd()) {
            if drops != 0 {
                self.drops.fetch_add(drops as u64, Ordering::Relaxed);
            }
            if freezes != 0 {
                self.freezes.fetch_add(freezes as u64, Ordering::Relaxed);
            }
        }
    }

    /// Frames dropped by the kernel so far (as of the last refresh).
    pub(super) fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Queue freezes so far (as of the last refresh).
    pub(super) fn freezes(&self) -> u64 {
        self.freezes.load(Ordering::Relaxed)
    }
}

/// One receive queue: a socket's TPACKET_V3 ring and where reading stands in it.
pub(super) struct AfPacketRx {
    // Declared first so the ring is unmapped before the last handle on the socket closes.
    ring: Mapping,
    shared: Arc<RxShared>,
    block_size: usize,
    blocks: usize,
    /// The block being read, or the next one to wait for.
    cur: usize,
    /// Frames not yet read in block `cur` (0: the block is not open).
    left: u32,
    /// Offset in block `cur` of the next frame's header (valid while `left > 0`).
    off: usize,
    pool: Mempool,
    port: u16,
    counters: QueueCounterRef,
}

/// Outcome of reading one frame.
enum Step {
    /// Delivered into the mbuf: this many bytes.
    Got(usize),
    /// Consumed without delivering (counted as an error); the mbuf is still empty.
    Skipped,
    /// The pool ran dry while chaining segments: the frame stays in the ring.
    NoBuf,
}

/// Why a frame could not be copied into an mbuf chain.
enum FillError {
    /// The pool ran out of segments.
    NoBuf,
    /// The mbuf refused the bytes (cannot happen with fresh mbufs; handled rather than panic).
    Refused,
}

/// The status word at `p` as an atomic (block and frame status words are 4-byte aligned).
///
/// # Safety
/// `p` must be 4-byte aligned and inside a mapping that outlives `'a`.
#[inline(always)]
pub(super) unsafe fn status_word<'a>(p: *mut u8) -> &'a AtomicU32 {
    // SAFETY: guaranteed by the caller; the kernel accesses the word concurrently, which is
    // what an atomic is for.
    unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }
}

impl AfPacketRx {
    /// A queue over `ring` (`blocks` blocks of `block_size` bytes, all owned by the kernel).
    pub(super) fn new(
        ring: Mapping,
        block_size: usize,
        blocks: usize,
        shared: Arc<RxShared>,
        pool: Mempool,
        port: u16,
        counters: QueueCounterRef,
    ) -> Self {
        assert!(
            blocks > 0 && block_size >= BD_SIZE + H3_SIZE && ring.len() >= block_size * blocks,
            "af_packet rx ring geometry"
        );
        AfPacketRx {
            ring,
            shared,
            block_size,
            blocks,
            cur: 0,
            left: 0,
            off: 0,
            pool,
            port,
            counters,
        }
    }

    #[inline(always)]
    fn block(&self) -> *mut u8 {
        // SAFETY: cur < blocks and the ring holds blocks * block_size bytes.
        unsafe { self.ring.base().add(self.cur * self.block_size) }
    }

    /// Gives block `cur` back to the kernel and moves on to the next one.
    #[inline]
    fn release_block(&mut self) {
        // SAFETY: the block header lies at the start of block `cur`, page aligned.
        let status = unsafe { status_word(self.block().add(BD_STATUS)) };
        // Release: every read of the block's frames happens before the kernel may refill it.
        status.store(TP_STATUS_KERNEL, Ordering::Release);
        self.left = 0;
        self.cur += 1;
        if self.cur == self.blocks {
            self.cur = 0;
        }
    }

    /// Gives back block `cur` whose headers are inconsistent; `lost` frames (the ones the
    /// header announced but that were not read; 1 when the count itself is implausible) are
    /// counted as errors.
    #[cold]
    fn bad_block(&mut self, lost: u32) {
        self.counters.errors.add(lost.max(1) as u64);
        self.shared.bad_blocks.add(1);
        self.release_block();
    }

    /// Opens block `cur` if the kernel has handed it over; false if it has not. An empty or
    /// corrupt block is given back at once (and true returned: progress was made).
    #[inline]
    fn open_block(&mut self) -> bool {
        let b = self.block();
        // SAFETY: the status word lies in the block header, page aligned.
        let status = unsafe { status_word(b.add(BD_STATUS)) }.load(Ordering::Acquire);
        if status & TP_STATUS_USER == 0 {
            return false;
        }
        if status & TP_STATUS_LOSING != 0 {
            self.shared.refresh();
        }
        // SAFETY: the header fields lie within the first BD_SIZE bytes of the block, and the
        // acquire load above ordered these reads after the kernel's writes.
        let (num, first) = unsafe { (rd32(b, BD_NUM_PKTS), rd32(b, BD_FIRST) as usize) };
        // Each frame takes at least a header, so a count above this is garbage.
        let most = ((self.block_size - BD_SIZE) / H3_SIZE) as u32;
        if num == 0 {
            self.release_block();
        } else if num > most {
            self.bad_block(1);
        } else if first < BD_SIZE || first > self.block_size - H3_SIZE {
            self.bad_block(num);
        } else {
            self.left = num;
            self.off = first;
        }
        true
    }

    /// Moves past the frame at `off` (whose header said the next one is `next` bytes on).
    #[inline]
    fn advance(&mut self, next: usize) {
        self.left -= 1;
        if self.left == 0 {
            self.release_block();
        } else if next < H3_SIZE || next > self.block_size - H3_SIZE - self.off {
            let left = self.left;
            self.bad_block(left);
        } else {
            self.off += next;
        }
    }

    /// Reads the frame at `off` of the open block into the empty mbuf `m`.
    #[inline]
    fn read_frame(&mut self, m: &mut Mbuf) -> Step {
        let bs = self.block_size;
        let off = self.off;
        // SAFETY: off + H3_SIZE <= block_size (checked when the block was opened or when
        // `off` advanced), so the header lies inside block `cur`.
        let h = unsafe { self.block().add(off) };
        // SAFETY: as above; all fields lie within the H3_SIZE header.
        let (next, snaplen, len, status, mac) = unsafe {
            (
                rd32(h, H3_NEXT) as usize,
                rd32(h, H3_SNAPLEN) as usize,
                rd32(h, H3_LEN) as usize,
                rd32(h, H3_STATUS),
                rd16(h, H3_MAC) as usize,
            )
        };
        let room = bs - off;
        if mac < H3_SIZE || mac > room || snaplen > room - mac {
            let left = self.left;
            self.bad_block(left);
            return Step::Skipped;
        }
        if snaplen < len {
            // Cut by the kernel (the frame did not fit a block): not the frame that was sent.
            self.counters.errors.add(1);
            self.advance(next);
            return Step::Skipped;
        }
        // SAFETY: off + mac + snaplen <= block_size (checked above), and block `cur` belongs
        // to us (TP_STATUS_USER) until it is released, so nothing else touches these bytes.
        let frame = unsafe { std::slice::from_raw_parts_mut(h.add(mac), snaplen) };
        let mut status = status;
        if status & TP_STATUS_CSUMNOTREADY != 0 {
            // A frame sent by this host with checksum offload: the L4 checksum field holds
            // only the pseudo-header sum. Finish it, and mark the frame so that a retry after
            // a pool shortage does not do it twice.
            if complete_l4_checksum(frame) {
                self.shared.csum_completed.add(1);
                status = (status & !TP_STATUS_CSUMNOTREADY) | TP_STATUS_CSUM_VALID;
            } else {
                status &= !TP_STATUS_CSUMNOTREADY;
            }
            // SAFETY: the status field lies in this frame's header, in our block.
            unsafe { wr32(h, H3_STATUS, status) };
        }
        // The kernel strips the outer VLAN tag into the header; put it back where it was.
        let tag = if status & TP_STATUS_VLAN_VALID != 0 && snaplen >= 12 {
            // SAFETY: header fields, within the H3_SIZE header.
            let (tci, tpid) = unsafe { (rd32(h, H3_VLAN_TCI) as u16, rd16(h, H3_VLAN_TPID)) };
            let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
                tpid
            } else {
                0x8100
            };
            let (p, t) = (tpid.to_be_bytes(), tci.to_be_bytes());
            Some([p[0], p[1], t[0], t[1]])
        } else {
            None
        };
        let filled = match &tag {
            None => fill(&self.pool, m, &[frame]),
            Some(tag) => fill(&self.pool, m, &[&frame[..12], tag, &frame[12..]]),
        };
        match filled {
            Ok(total) => {
                m.set_port(self.port);
                let mut flags = 0;
                // SAFETY: header field, within the H3_SIZE header.
                let hash = unsafe { rd32(h, H3_RXHASH) };
                if hash != 0 {
                    m.set_rss_hash(hash);
                    flags |= ol::RX_RSS_HASH;
                }
                if status & TP_STATUS_CSUM_VALID != 0 {
                    flags |= ol::RX_L4_CKSUM_GOOD;
                }
                m.set_ol_flags(flags);
                self.advance(next);
                Step::Got(total)
            }
            Err(FillError::NoBuf) => {
                m.truncate(0);
                Step::NoBuf
            }
            Err(FillError::Refused) => {
                m.truncate(0);
                self.counters.errors.add(1);
                self.advance(next);
                Step::Skipped
            }
        }
    }
}

/// Appends up to `n` fresh mbufs to `out` (in bulk when the pool has them all); returns how
/// many.
#[inline]
fn alloc_upto(pool: &Mempool, out: &mut Burst, n: usize) -> usize {
    if pool.alloc_bulk(out, n) {
        return n;
    }
    let mut k = 0;
    while k < n {
        match pool.alloc() {
            Some(m) => {
                if out.push(m).is_err() {
                    break;
                }
                k += 1;
            }
            None => break,
        }
    }
    k
}

/// Copies the concatenation of `parts` into the empty mbuf `head`, chaining more segments from
/// `pool` when it does not fit one. Returns the length.
#[inline]
fn fill(pool: &Mempool, head: &mut Mbuf, parts: &[&[u8]]) -> Result<usize, FillError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if let [only] = parts {
        if only.len() <= head.tailroom() {
            head.append(only.len())
                .ok_or(FillError::Refused)?
                .copy_from_slice(only);
            return Ok(total);
        }
    }
    let mut src = Gather { parts, i: 0, at: 0 };
    let first = total.min(head.tailroom());
    src.copy_to(head.append(first).ok_or(FillError::Refused)?);
    let mut rest = total - first;
    while rest > 0 {
        let mut seg = pool.alloc().ok_or(FillError::NoBuf)?;
        let take = rest.min(seg.tailroom());
        if take == 0 {
            return Err(FillError::Refused);
        }
        src.copy_to(seg.append(take).ok_or(FillError::Refused)?);
        head.chain(seg).map_err(|_| FillError::Refused)?;
        rest -= take;
    }
    Ok(total)
}

/// A read cursor over several byte slices taken as one.
struct Gather<'a> {
    parts: &'a [&'a [u8]],
    i: usize,
    at: usize,
}

impl Gather<'_> {
    /// Fills `dst` from the cursor (the caller never asks for more than is left).
    fn copy_to(&mut self, dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() && self.i < self.parts.len() {
            let p = self.parts[self.i];
            let take = (p.len() - self.at).min(dst.len() - done);
            dst[done..done + take].copy_from_slice(&p[self.at..self.at + take]);
            done += take;
            self.at += take;
            if self.at == p.len() {
                self.i += 1;
                self.at = 0;
            }
        }
    }
}

/// Finishes the TCP or UDP checksum of an Ethernet frame (IPv4 or IPv6, behind up to two VLAN
/// tags) that was sent with checksum offload (`CHECKSUM_PARTIAL`): its checksum field holds
/// the pseudo-header sum, and the rest is the one's complement sum of the L4 bytes. Returns
/// false, changing nothing, for frames it does not understand.
pub(super) fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let be16 = |f: &[u8], at: usize| f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let Some(mut ethertype) = be16(frame, 12) else {
        return false;
    };
    let mut l3 = 14;
    for _ in 0..2 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            let Some(inner) = be16(frame, l3 + 2) else {
                return false;
            };
            ethertype = inner;
            l3 += 4;
        }
    }
    let (proto, l4, l4_len) = match ethertype {
        0x0800 => {
            let Some(&vihl) = frame.get(l3) else {
                return false;
            };
            let ihl = (vihl & 0x0f) as usize * 4;
            let (Some(total), Some(frag), Some(&proto)) =
                (be16(frame, l3 + 2), be16(frame, l3 + 6), frame.get(l3 + 9))
            else {
                return false;
            };
            if vihl >> 4 != 4 || ihl < 20 || (total as usize) < ihl || frag & 0x3fff != 0 {
                return false;
            }
            (proto, l3 + ihl, total as usize - ihl)
        }
        0x86dd => {
            let (Some(plen), Some(&next)) = (be16(frame, l3 + 4), frame.get(l3 + 6)) else {
                return false;
            };
            (next, l3 + 40, plen as usize)
        }
        _ => return false,
    };
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    if field + 2 > l4_len || l4 + l4_len > frame.len() {
        return false;
    }
    let seg = &mut frame[l4..l4 + l4_len];
    let mut c = checksum::finish(checksum::sum(seg));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    seg[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

impl RxQueue for AfPacketRx {
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.shared.fd.as_raw_fd())
    }

    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let want = max.min(out.remaining());
        if want == 0 {
            return 0;
        }
        let start = out.len();
        let mut got = 0usize;
        let mut bytes = 0usize;
        let mut opened = 0usize;
        let mut pool_dry = false;
        while got < want {
            if self.left == 0 {
                // At most one lap of the ring per call, whatever the kernel does.
                if opened == self.blocks || !self.open_block() {
                    break;
                }
                opened += 1;
                continue;
            }
            // Spare mbufs sit after the delivered ones; take more when they run out.
            if out.len() == start + got {
                if pool_dry {
                    break;
                }
                let n = (want - got).min(self.left as usize);
                let have = alloc_upto(&self.pool, out, n);
                if have < n {
                    // The frames without an mbuf stay in the ring for the next call.
                    self.counters.nombuf.add((n - have) as u64);
                    pool_dry = true;
                    if have == 0 {
                        break;
                    }
                }
            }
            let m = &mut out.as_mut_slice()[start + got];
            match self.read_frame(m) {
                Step::Got(len) => {
                    got += 1;
                    bytes += len;
                }
                Step::Skipped => {}
                Step::NoBuf => {
                    self.counters.nombuf.add(1);
                    break;
                }
            }
        }
        // Return the spare mbufs.
        out.truncate(start + got);
        if got > 0 {
            self.counters.packets.add(got as u64);
            self.counters.bytes.add(bytes as u64);
        }
        got
    }
}

#[cfg(test)]
mod tests {
    //! The ring walking code against a ring in plain memory laid out the way the kernel lays
    //! it out (no socket, no privileges needed).

    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};
    use crate::port::PortCounters;

    const BS: usize = 8192;
    /// Where the kernel puts a V3 frame's bytes relative to its header (TPACKET_ALIGN of the
    /// header plus sockaddr_ll, adjusted so the network header is 16-byte aligned).
    const MAC: usize = 82;

    fn pool(n: u32, data_room: u16) -> Mempool {
        let mut p = MempoolParams::new("afp-rx-test", n);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = data_room;
        Mempool::new(&p).unwrap()
    }

    struct Fake {
        rx: AfPacketRx,
        counters: PortCounters,
    }

    fn fake(blocks: usize, pool: &Mempool) -> Fake {
        let counters = PortCounters::new(1, 0);
        let null = std::fs::File::open("/dev/null").unwrap();
        let shared = Arc::new(RxShared::new(OwnedFd::from(null)));
        let ring = Mapping::anonymous(BS * blocks).unwrap();
        let rx = AfPacketRx::new(ring, BS, blocks, shared, pool.clone(), 3, counters.rx(0));
        Fake { rx, counters }
    }

    /// A frame as the kernel would describe it.
    #[derive(Clone, Default)]
    struct F {
        bytes: Vec<u8>,
        len: Option<u32>,
        status: u32,
        hash: u32,
        vlan: Option<(u16, u16)>,
    }

    fn f(bytes: Vec<u8>) -> F {
        F {
            bytes,
            ..F::default()
        }
    }

    impl Fake {
        fn block_ptr(&self, i: usize) -> *mut u8 {
            // SAFETY: test ring, i < blocks.
            unsafe { self.rx.ring.base().add(i * BS) }
        }

        fn status(&self, i: usize) -> u32 {
            // SAFETY: test ring header.
            unsafe { status_word(self.block_ptr(i).add(BD_STATUS)) }.load(Ordering::Acquire)
        }

        /// Writes `frames` into block `i` like the kernel and hands it to user space.
        fn put(&self, i: usize, frames: &[F]) {
            let b = self.block_ptr(i);
            let mut off = BD_SIZE;
            // SAFETY: everything written lies inside block i (asserted).
            unsafe {
                std::ptr::write_bytes(b, 0, BS);
                wr32(b, BD_NUM_PKTS, frames.len() as u32);
                wr32(b, BD_FIRST, off as u32);
                for (k, fr) in frames.iter().enumerate() {
                    let h = b.add(off);
                    let snap = fr.bytes.len();
                    let total = (MAC + snap).next_multiple_of(16);
                    assert!(off + total <= BS);
                    let next = if k + 1 == frames.len() { 0 } else { total };
                    wr32(h, H3_NEXT, next as u32);
                    wr32(h, H3_SNAPLEN, snap as u32);
                    wr32(h, H3_LEN, fr.len.unwrap_or(snap as u32));
                    let mut st = fr.status | TP_STATUS_USER;
                    if let Some((tpid, tci)) = fr.vlan {
                        st |= TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
                        wr32(h, H3_VLAN_TCI, tci as u32);
                        std::ptr::write_unaligned(h.add(H3_VLAN_TPID).cast::<u16>(), tpid);
                    }
                    wr32(h, H3_STATUS, st);
                    std::ptr::write_unaligned(h.add(H3_MAC).cast::<u16>(), MAC as u16);
                    wr32(h, H3_RXHASH, fr.hash);
                    std::ptr::copy_nonoverlapping(fr.bytes.as_ptr(), h.add(MAC), snap);
                    off += total;
                }
                status_word(b.add(BD_STATUS)).store(TP_STATUS_USER, Ordering::Release);
            }
        }

        fn poke(&self, i: usize, off: usize, v: u32) {
            // SAFETY: test ring; callers stay inside the block.
            unsafe { wr32(self.block_ptr(i), off, v) };
        }
    }

    fn bytes_of(m: &Mbuf) -> Vec<u8> {
        m.segments().flatten().copied().collect()
    }

    fn frame(i: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        v[12..14].copy_from_slice(&[0x88, 0xb5]);
        for (k, b) in v[14..].iter_mut().enumerate() {
            *b = (i + k) as u8;
        }
        v
    }

    #[test]
    fn reads_frames_across_bursts_and_blocks_and_returns_blocks() {
        let mp = pool(64, 2048);
        let mut r = fake(4, &mp);
        let a: Vec<F> = (0..5).map(|i| f(frame(i, 60 + i))).collect();
        let b: Vec<F> = (5..8).map(|i| f(frame(i, 100 + i))).collect();
        r.put(0, &a);
        r.put(1, &b);
        let mut out = Burst::new();
        assert_eq!(r.rx.rx_burst(&mut out, 3), 3);
        // Block 0 is still being read.
        assert_eq!(r.status(0), TP_STATUS_USER);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 5);
        assert_eq!(r.status(0), TP_STATUS_KERNEL);
        assert_eq!(r.status(1), TP_STATUS_KERNEL);
        let all: Vec<Vec<u8>> = out.iter().map(bytes_of).collect();
        let want: Vec<Vec<u8>> = a.iter().chain(&b).map(|x| x.bytes.clone()).collect();
        assert_eq!(all, want);
        assert!(out.iter().all(|m| m.port() == 3));
        assert_eq!(r.rx.rx_burst(&mut out, 32), 0);
        let s = r.counters.stats();
        assert_eq!(s.ipackets, 8);
        assert_eq!(s.ibytes, want.iter().map(|v| v.len() as u64).sum::<u64>());
        out.clear();
        assert_eq!(mp.in_use(), 0);
        // The ring wraps: blocks 2, 3, then 0 again.
        r.put(2, &a[..1]);
        r.put(3, &a[1..2]);
        r.put(0, &a[2..3]);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 3);
    }

    #[test]
    fn empty_pool_leaves_frames_in_the_ring() {
        let mp = pool(4, 2048);
        let mut r = fake(2, &mp);
        let frames: Vec<F> = (0..6).map(|i| f(frame(i, 64))).collect();
        r.put(0, &frames);
        let mut out = Burst::new();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 4);
        assert_eq!(r.counters.stats().rx_nombuf, 2);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 0);
        let got: Vec<Vec<u8>> = out.iter().map(bytes_of).collect();
        out.clear();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 2);
        let rest: Vec<Vec<u8>> = out.iter().map(bytes_of).collect();
        let all: Vec<Vec<u8>> = got.into_iter().chain(rest).collect();
        assert_eq!(
            all,
            frames.iter().map(|x| x.bytes.clone()).collect::<Vec<_>>()
        );
        assert_eq!(r.status(0), TP_STATUS_KERNEL);
    }

    #[test]
    fn large_frames_become_chains_and_a_dry_pool_mid_chain_retries() {
        let mp = pool(8, 256);
        let mut r = fake(1, &mp);
        let big = frame(7, 1000);
        r.put(0, &[f(big.clone())]);
        let mut out = Burst::new();
        // Hold all but 2 mbufs: the 1000-byte frame needs 4.
        let mut hold = Burst::new();
        assert!(mp.alloc_bulk(&mut hold, 6));
        assert_eq!(r.rx.rx_burst(&mut out, 32), 0);
        assert_eq!(r.counters.stats().rx_nombuf, 1);
        assert_eq!(mp.in_use(), 6);
        hold.clear();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 1);
        assert_eq!(out[0].nb_segs(), 4);
        assert_eq!(bytes_of(&out[0]), big);
    }

    #[test]
    fn vlan_tags_are_reinserted_and_hash_flags_set() {
        let mp = pool(8, 2048);
        let mut r = fake(1, &mp);
        let plain = frame(1, 64);
        let mut fr = f(plain.clone());
        fr.vlan = Some((0x88a8, 0x2064));
        fr.hash = 0xdead_beef;
        fr.status = TP_STATUS_CSUM_VALID;
        r.put(0, &[fr]);
        let mut out = Burst::new();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 1);
        let mut want = plain[..12].to_vec();
        want.extend_from_slice(&[0x88, 0xa8, 0x20, 0x64]);
        want.extend_from_slice(&plain[12..]);
        assert_eq!(bytes_of(&out[0]), want);
        assert_eq!(out[0].rss_hash(), 0xdead_beef);
        assert_eq!(
            out[0].ol_flags(),
            ol::RX_RSS_HASH | ol::RX_L4_CKSUM_GOOD,
            "hash and checksum flags"
        );
        assert_eq!(r.counters.stats().ibytes, 68);
    }

    #[test]
    fn truncated_frames_are_counted_and_skipped() {
        let mp = pool(8, 2048);
        let mut r = fake(1, &mp);
        let mut cut = f(frame(1, 100));
        cut.len = Some(9000);
        r.put(0, &[f(frame(0, 60)), cut, f(frame(2, 70))]);
        let mut out = Burst::new();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 2);
        assert_eq!(out[1].pkt_len(), 70);
        assert_eq!(r.counters.stats().ierrors, 1);
        out.clear();
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn corrupt_blocks_are_given_back_unread() {
        let mp = pool(16, 2048);
        let mut r = fake(4, &mp);
        let frames: Vec<F> = (0..3).map(|i| f(frame(i, 60))).collect();
        let mut out = Burst::new();

        // First frame offset past the end of the block.
        r.put(0, &frames);
        r.poke(0, BD_FIRST, (BS - 8) as u32);
        // Snap length running off the end of the block.
        r.put(1, &frames);
        r.poke(1, BD_SIZE + H3_SNAPLEN, BS as u32);
        // The first frame's next pointer going backwards (would loop if trusted).
        r.put(2, &frames);
        r.poke(2, BD_SIZE + H3_NEXT, 4);
        // A good block after them.
        r.put(3, &frames);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 4);
        assert_eq!(r.rx.shared.bad_blocks.get(), 3);
        // Block 0: 3 lost, block 1: 3 lost, block 2: first frame read, 2 lost.
        assert_eq!(r.counters.stats().ierrors, 8);
        for i in 0..4 {
            assert_eq!(r.status(i), TP_STATUS_KERNEL);
        }
        assert_eq!(bytes_of(&out[0]), frames[0].bytes);
        out.clear();
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn a_huge_frame_count_cannot_walk_out_of_the_block() {
        let mp = pool(64, 2048);
        let mut r = fake(1, &mp);
        let frames: Vec<F> = (0..3).map(|i| f(frame(i, 60))).collect();
        let mut out = Burst::new();
        // More frames than a block can hold: refused outright.
        r.put(0, &frames);
        r.poke(0, BD_NUM_PKTS, u32::MAX);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 0);
        assert_eq!(r.status(0), TP_STATUS_KERNEL);
        assert_eq!(r.rx.shared.bad_blocks.get(), 1);
        assert_eq!(r.counters.stats().ierrors, 1);
        // More frames than were written: the last one says "no next" (offset 0), so the walk
        // stops at the end of the real frames.
        r.put(0, &frames);
        r.poke(0, BD_NUM_PKTS, 5);
        assert_eq!(r.rx.rx_burst(&mut out, 32), 3);
        assert_eq!(r.status(0), TP_STATUS_KERNEL);
        assert_eq!(r.rx.shared.bad_blocks.get(), 2);
    }

    fn udp_frame(partial: bool) -> (Vec<u8>, u16) {
        let payload = b"hello, checksum";
        let mut v = frame(0, 14 + 20 + 8 + payload.len());
        v[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut v[14..34];
        ip.fill(0);
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
        let c = checksum::internet_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let udp_len = (8 + payload.len()) as u16;
        v[34..36].copy_from_slice(&1234u16.to_be_bytes());
        v[36..38].copy_from_slice(&9u16.to_be_bytes());
        v[38..40].copy_from_slice(&udp_len.to_be_bytes());
        v[42..].copy_from_slice(payload);
        let pseudo =
            checksum::pseudo_header_v4([198, 18, 0, 1].into(), [198, 18, 0, 2].into(), 17, udp_len);
        let full = {
            let mut t = v[34..].to_vec();
            t[6..8].fill(0);
            checksum::finish(checksum::combine(pseudo, checksum::sum(&t)))
        };
        if partial {
            // What the kernel leaves for the NIC: the folded pseudo-header sum, uncomplemented.
            let p = !checksum::finish(pseudo);
            v[40..42].copy_from_slice(&p.to_be_bytes());
        } else {
            v[40..42].copy_from_slice(&full.to_be_bytes());
        }
        (v, full)
    }

    #[test]
    fn partial_checksums_are_completed_once() {
        let (mut v, full) = udp_frame(true);
        assert!(complete_l4_checksum(&mut v));
        assert_eq!(u16::from_be_bytes([v[40], v[41]]), full);
        assert_eq!(v, udp_frame(false).0);

        // Through the ring, with a pool shortage in between (the retry must not redo it).
        let mp = pool(8, 32);
        let mut r = fake(1, &mp);
        let (partial, _) = udp_frame(true);
        let mut fr = f(partial);
        fr.status = TP_STATUS_CSUMNOTREADY;
        r.put(0, &[fr]);
        let mut hold = Burst::new();
        assert!(mp.alloc_bulk(&mut hold, 7));
        let mut out = Burst::new();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 0);
        hold.clear();
        assert_eq!(r.rx.rx_burst(&mut out, 32), 1);
        assert_eq!(bytes_of(&out[0]), udp_frame(false).0);
        assert_eq!(
            out[0].ol_flags() & ol::RX_L4_CKSUM_GOOD,
            ol::RX_L4_CKSUM_GOOD
        );
        assert_eq!(r.rx.shared.csum_completed.get(), 1);
    }

    #[test]
    fn checksum_completion_leaves_other_frames_alone() {
        let mut short = vec![0u8; 20];
        assert!(!complete_l4_checksum(&mut short));
        let (mut v, _) = udp_frame(true);
        v[14 + 6] = 0x20; // more fragments
        let before = v.clone();
        assert!(!complete_l4_checksum(&mut v));
        assert_eq!(v, before);
        let (mut v, _) = udp_frame(true);
        v[14 + 9] = 1; // ICMP
        assert!(!complete_l4_checksum(&mut v));
        let (mut v, _) = udp_frame(true);
        v[16..18].copy_from_slice(&200u16.to_be_bytes()); // IP length beyond the frame
        assert!(!complete_l4_checksum(&mut v));
    }
}
