//! Transmit: copying mbufs into a TPACKET_V2 tx ring and kicking the kernel once per burst.
//!
//! The ring is `frames` frames of `frame_size` bytes, used in order. A frame is free when its
//! status is `TP_STATUS_AVAILABLE` (the kernel sets it back once the packet it made of the
//! frame is freed). `tx_burst` copies packets into free frames, marks each
//! `TP_STATUS_SEND_REQUEST`, then makes one `sendto(MSG_DONTWAIT)` call, which has the kernel
//! transmit every requested frame. A frame the kernel could not take (the kick failed, or the
//! socket's send buffer was full) keeps its request and goes out with the next kick.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use libc::{TP_STATUS_SENDING, TP_STATUS_SEND_REQUEST, TP_STATUS_WRONG_FORMAT};

use super::rx::status_word;
use super::sys::{self, wr32, Mapping, H2_LEN, H2_SNAPLEN, H2_STATUS, TX_DATA_OFFSET};
use crate::batch::Burst;
use crate::counter::Counter;
use crate::mem::{free_burst, Mbuf};
use crate::port::counters::QueueCounterRef;
use crate::port::TxQueue;

/// Ethernet header length.
const ETH_HLEN: usize = 14;
/// An 802.1Q tag.
const VLAN_HLEN: usize = 4;

/// Driver-specific counters of a tx queue (single writer: the queue).
#[derive(Default)]
pub(super) struct TxShared {
    /// `sendto` kicks that failed (EAGAIN, ENOBUFS, ENETDOWN, …); the frames stay requested
    /// and go out with a later kick.
    pub(super) kick_errors: Counter,
    /// Frames the kernel refused as malformed (`TP_STATUS_WRONG_FORMAT`).
    pub(super) wrong_format: Counter,
}

/// One transmit queue: a socket's TPACKET_V2 tx ring.
pub(super) struct AfPacketTx {
    // Declared before `fd` so the ring is unmapped before the socket closes.
    ring: Mapping,
    fd: OwnedFd,
    frame_size: usize,
    frames: usize,
    /// Next frame to fill.
    head: usize,
    /// Longest frame accepted without a VLAN tag (MTU + Ethernet header).
    max_len: usize,
    /// Requested frames may be waiting for a kick.
    unsent: bool,
    shared: Arc<TxShared>,
    counters: QueueCounterRef,
}

impl AfPacketTx {
    /// A queue over `ring` (`frames` frames of `frame_size` bytes, laid out back to back) of
    /// socket `fd`.
    pub(super) fn new(
        ring: Mapping,
        fd: OwnedFd,
        frame_size: usize,
        frames: usize,
        max_len: usize,
        shared: Arc<TxShared>,
        counters: QueueCounterRef,
    ) -> Self {
        assert!(
            frames > 0
                && frame_size % 16 == 0
                && frame_size >= TX_DATA_OFFSET + max_len + VLAN_HLEN
                && ring.len() >= frame_size * frames,
            "af_packet tx ring geometry"
        );
        AfPacketTx {
            ring,
            fd,
            frame_size,
            frames,
            head: 0,
            max_len,
            unsent: false,
            shared,
            counters,
        }
    }

    #[inline(always)]
    fn frame(&self, i: usize) -> *mut u8 {
        // SAFETY: i < frames and the ring holds frames * frame_size bytes.
        unsafe { self.ring.base().add(i * self.frame_size) }
    }

    /// The longest frame accepted for `m`: the kernel allows 4 more bytes for an 802.1Q
    /// tagged frame.
    #[inline]
    fn limit(&self, m: &Mbuf) -> usize {
        let mut t = [0u8; 2];
        let tagged = match m.data().get(12..14) {
            Some(b) => b == [0x81, 0x00],
            None => m.read_at(12, &mut t) && t == [0x81, 0x00],
        };
        if tagged {
            self.max_len + VLAN_HLEN
        } else {
            self.max_len
        }
    }

    /// Has the kernel send every requested frame.
    #[inline]
    fn kick(&mut self) {
        if sys::kick(self.fd.as_fd()).is_err() {
            self.shared.kick_errors.add(1);
            self.unsent = true;
            return;
        }
        // A successful kick can still stop early (send buffer full): if the newest frame is
        // still requested, kick again next time.
        let last = if self.head == 0 {
            self.frames - 1
        } else {
            self.head - 1
        };
        // SAFETY: frame status words are at the 16-byte aligned start of each frame.
        let st = unsafe { status_word(self.frame(last).add(H2_STATUS)) }.load(Ordering::Acquire);
        self.unsent = st & TP_STATUS_SEND_REQUEST != 0;
    }
}

impl TxQueue for AfPacketTx {
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let mut taken = 0usize;
        let mut queued = 0u64;
        let mut bytes = 0u64;
        let mut bad = 0u64;
        for m in pkts.iter() {
            let len = m.pkt_len();
            if !(ETH_HLEN..=self.limit(m)).contains(&len) {
                // Not a frame the interface can send: refused, freed below.
                bad += 1;
                taken += 1;
                continue;
            }
            let f = self.frame(self.head);
            // SAFETY: the status word is at the 16-byte aligned start of the frame.
            let status = unsafe { status_word(f.add(H2_STATUS)) };
            let st = status.load(Ordering::Acquire);
            if st & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
                break; // ring full: the rest stays with the caller
            }
            if st & TP_STATUS_WRONG_FORMAT != 0 {
                // Only without PACKET_LOSS; the frame is ours again either way.
                self.shared.wrong_format.add(1);
            }
            // SAFETY: the frame is ours (status available); the data area after
            // TX_DATA_OFFSET holds frame_size - TX_DATA_OFFSET >= max_len + VLAN_HLEN >= len
            // bytes (checked at construction).
            let mut dst = unsafe { f.add(TX_DATA_OFFSET) };
            let mut left = len;
            for seg in m.segments() {
                let n = seg.len().min(left);
                // SAFETY: `n` bytes fit the data area (the segments sum to at most `len`);
                // the mbuf and the ring do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(seg.as_ptr(), dst, n);
                    dst = dst.add(n);
                }
                left -= n;
                if left == 0 {
                    break;
                }
            }
            let sent = len - left;
            // SAFETY: header fields of a frame we own.
            unsafe {
                wr32(f, H2_LEN, sent as u32);
                wr32(f, H2_SNAPLEN, sent as u32);
            }
            // Release: the frame bytes are visible before the kernel sees the request.
            status.store(TP_STATUS_SEND_REQUEST, Ordering::Release);
            self.head += 1;
            if self.head == self.frames {
                self.head = 0;
            }
            queued += 1;
            bytes += sent as u64;
            taken += 1;
        }
        if taken == pkts.len() {
            free_burst(pkts);
        } else {
            pkts.discard_front(taken);
        }
        if queued > 0 || self.unsent {
            self.kick();
        }
        if queued > 0 {
            self.counters.packets.add(queued);
            self.counters.bytes.add(bytes);
        }
        if bad > 0 {
            self.counters.errors.add(bad);
        }
        taken
    }

    fn flush(&mut self) {
        if self.unsent {
            self.kick();
        }
    }
}

impl Drop for AfPacketTx {
    fn drop(&mut self) {
        // Frames still requested go out before the socket closes (no waiting: the kernel
        // keeps what it took alive by itself).
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    //! The tx ring logic against a ring in plain memory, with this test playing the kernel.
    //! The socket is `/dev/null`, so every kick fails (and is counted).

    use super::*;
    use crate::mem::{HugePolicy, Mempool, MempoolParams};
    use crate::port::PortCounters;
    use libc::TP_STATUS_AVAILABLE;

    const FS: usize = 2048;

    fn pool(n: u32) -> Mempool {
        let mut p = MempoolParams::new("afp-tx-test", n);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        Mempool::new(&p).unwrap()
    }

    fn queue(frames: usize) -> (AfPacketTx, PortCounters, Arc<TxShared>) {
        let counters = PortCounters::new(0, 1);
        let shared = Arc::new(TxShared::default());
        let null = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let ring = Mapping::anonymous(FS * frames).unwrap();
        let tx = AfPacketTx::new(ring, null, FS, frames, 1514, shared.clone(), counters.tx(0));
        (tx, counters, shared)
    }

    fn pkt(pool: &Mempool, len: usize, tag: u8, vlan: bool) -> Mbuf {
        let mut m = pool.alloc().unwrap();
        let d = m.append(len).unwrap();
        for (i, b) in d.iter_mut().enumerate() {
            *b = tag.wrapping_add(i as u8);
        }
        if len >= 14 {
            let et = if vlan { [0x81, 0x00] } else { [0x88, 0xb5] };
            d[12..14].copy_from_slice(&et);
        }
        m
    }

    fn status(tx: &AfPacketTx, i: usize) -> u32 {
        // SAFETY: test ring, i < frames.
        unsafe { status_word(tx.frame(i)) }.load(Ordering::Acquire)
    }

    fn frame_bytes(tx: &AfPacketTx, i: usize) -> Vec<u8> {
        // SAFETY: test ring, i < frames; tp_len bytes were written after TX_DATA_OFFSET.
        unsafe {
            let f = tx.frame(i);
            let len = sys::rd32(f, H2_LEN) as usize;
            std::slice::from_raw_parts(f.add(TX_DATA_OFFSET), len).to_vec()
        }
    }

    /// The "kernel" finishes frame `i`.
    fn complete(tx: &AfPacketTx, i: usize) {
        // SAFETY: test ring, i < frames.
        unsafe { status_word(tx.frame(i)) }.store(TP_STATUS_AVAILABLE, Ordering::Release);
    }

    #[test]
    fn full_ring_leaves_packets_with_the_caller_and_bad_lengths_are_refused() {
        let mp = pool(64);
        let (mut tx, counters, shared) = queue(4);
        let mut b = Burst::new();
        b.push(pkt(&mp, 10, 0, false)).unwrap(); // shorter than an Ethernet header
        for k in 0..6 {
            b.push(pkt(&mp, 60 + k, k as u8, false)).unwrap();
        }
        let want: Vec<Vec<u8>> = b.iter().skip(1).map(|m| m.data().to_vec()).collect();
        assert_eq!(tx.tx_burst(&mut b), 5, "1 refused + 4 queued");
        assert_eq!(b.len(), 2, "2 did not fit");
        assert_eq!(b[0].pkt_len(), 64, "the leftovers keep their order");
        for (i, w) in want.iter().take(4).enumerate() {
            assert_eq!(status(&tx, i), TP_STATUS_SEND_REQUEST);
            assert_eq!(&frame_bytes(&tx, i), w);
        }
        let s = counters.stats();
        assert_eq!((s.opackets, s.oerrors), (4, 1));
        assert_eq!(s.obytes, (60..64).sum::<u64>());
        // The kick failed (no socket): counted, and retried with the next burst.
        assert_eq!(shared.kick_errors.get(), 1);
        assert!(tx.unsent);
        assert_eq!(mp.in_use(), 2);

        // Still full: nothing taken, but the kick is retried.
        assert_eq!(tx.tx_burst(&mut b), 0);
        assert_eq!(shared.kick_errors.get(), 2);

        // The kernel finishes two frames; the rest go out, then an oversize frame is refused
        // and a tagged frame 4 bytes longer is accepted.
        complete(&tx, 0);
        complete(&tx, 1);
        b.push(pkt(&mp, 1515, 9, false)).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 3);
        assert!(b.is_empty());
        assert_eq!(frame_bytes(&tx, 0), want[4]);
        assert_eq!(frame_bytes(&tx, 1), want[5]);
        complete(&tx, 2);
        b.push(pkt(&mp, 1518, 7, true)).unwrap();
        b.push(pkt(&mp, 1519, 7, true)).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 2);
        assert_eq!(frame_bytes(&tx, 2).len(), 1518);
        let s = counters.stats();
        assert_eq!((s.opackets, s.oerrors), (7, 3));
        assert_eq!(mp.in_use(), 0, "taken packets are freed, refused ones too");
    }

    #[test]
    fn chained_packets_are_copied_whole_and_flush_retries_the_kick() {
        let mp = pool(8);
        let (mut tx, _counters, shared) = queue(2);
        let mut head = pkt(&mp, 100, 1, false);
        let mut tail = mp.alloc().unwrap();
        tail.append(50).unwrap().fill(0xee);
        head.chain(tail).unwrap();
        let want: Vec<u8> = head.segments().flatten().copied().collect();
        let mut b = Burst::new();
        b.push(head).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 1);
        assert_eq!(frame_bytes(&tx, 0), want);
        assert_eq!(shared.kick_errors.get(), 1);
        tx.flush();
        assert_eq!(shared.kick_errors.get(), 2);
        assert_eq!(mp.in_use(), 0);
    }
}
