//! The send and receive buffers, allocated once with the connection: the send buffer is a
//! queue of mbuf chunks from a pool of its own (so segments can reference their payload
//! instead of copying it), the receive buffer a byte ring.
//!
//! The receive ring also holds out-of-order data: bytes that arrive ahead of `RCV.NXT` are
//! written at their final position (their distance from `RCV.NXT` past the in-order end), and
//! a small sorted list of sequence ranges, with a fixed capacity, records which parts are
//! present. Nothing here allocates after construction.

use std::cell::Cell;
use std::collections::VecDeque;

use super::segment::{Payload, PayloadMbufs};
use super::seq::Seq;
use crate::mem::{HugePolicy, Mbuf, Mempool, MempoolParams};
use crate::wire::SackBlocks;

/// A byte ring: `len` bytes starting at `head`.
#[derive(Debug)]
struct Ring {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(cap: usize) -> Self {
        Ring {
            buf: vec![0; cap.max(1)],
            head: 0,
            len: 0,
        }
    }

    fn cap(&self) -> usize {
        self.buf.len()
    }

    fn free(&self) -> usize {
        self.cap() - self.len
    }

    /// The buffer index of ring position `pos` (< 2 × capacity) counted from index 0: a
    /// compare instead of a division on every read and write.
    #[inline]
    fn wrap(&self, pos: usize) -> usize {
        debug_assert!(pos < 2 * self.cap());
        if pos >= self.cap() {
            pos - self.cap()
        } else {
            pos
        }
    }

    /// Up to two slices covering `len` bytes starting `off` bytes after the head.
    fn slices(&self, off: usize, len: usize) -> [&[u8]; 2] {
        debug_assert!(off + len <= self.cap());
        let cap = self.cap();
        let start = self.wrap(self.head + off);
        let first = len.min(cap - start);
        [&self.buf[start..start + first], &self.buf[..len - first]]
    }

    /// Writes `data` at `off` bytes after the head (may be beyond `len`).
    fn write_at(&mut self, off: usize, data: &[u8]) {
        debug_assert!(off + data.len() <= self.cap());
        if data.is_empty() {
            return;
        }
        let cap = self.cap();
        let start = self.wrap(self.head + off);
        let first = data.len().min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
    }

    fn write_parts(&mut self, off: usize, data: Payload<'_>) {
        let [a, b] = data.0;
        self.write_at(off, a);
        self.write_at(off + a.len(), b);
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.head = self.wrap(self.head + n);
        self.len -= n;
    }
}

/// Chunks a send buffer's pool holds beyond its capacity: room for chunks that are
/// acknowledged but still referenced by segments on their way (a late retransmission).
const SPARE_CHUNKS: usize = 4;

/// The send buffer: bytes from `SND.UNA` (first unacknowledged) to the end of what the
/// application queued, held in *chunks*: mbufs of a pool private to the buffer, each filled
/// to `chunk` bytes (the segment size, once known) before the next is taken, or mbufs the
/// application handed over whole ([`give`](Self::give)). A segment's payload lies in at most
/// two chunks (the engine cuts segments at [`span`](Self::span)) and can go to the wire as
/// references to them ([`Mbuf::clone_range`]) instead of a copy. Acknowledged chunks are
/// released from the front; an own chunk nothing refers to any more is kept for the next
/// write, the others are freed when the last segment using them is.
#[derive(Debug)]
pub(crate) struct SendBuffer {
    /// Data room of each own chunk.
    room: usize,
    /// Bytes each own chunk is filled to before the next (`room`, or the connection's segment
    /// size once known, so that segments line up with chunks: see [`fit`](Self::fit)).
    chunk: usize,
    cap: usize,
    /// The chunks, each with the stream position of its first byte.
    chunks: VecDeque<(u64, Mbuf)>,
    /// Index of the chunk the last lookup found: segments go forward through the buffer, so
    /// the next lookup is a step or two from it.
    hint: Cell<usize>,
    /// The last chunk is an own one that writes may still extend.
    tail_open: bool,
    /// Acknowledged own chunks no segment refers to any more, emptied for reuse: the common
    /// case takes and returns no pool object at all.
    idle: Vec<Mbuf>,
    /// Stream position of the first unacknowledged byte.
    head: u64,
    len: usize,
    /// The last write stopped short because the pool was empty (chunks still referenced by
    /// segments in flight), not because the buffer was full.
    starved: bool,
    /// The chunks' pool. Declared last, so it is dropped after the chunks (fields drop in
    /// order): a pool released while its mbufs are out is leaked, with a warning.
    pool: Mempool,
}

impl SendBuffer {
    /// A buffer for `cap` bytes in chunks of `chunk` bytes (its pool is allocated here, once).
    pub(crate) fn new(cap: usize, chunk: usize) -> Self {
        let cap = cap.max(1);
        let chunk = chunk.clamp(1, u16::MAX as usize);
        // Room for a full buffer even when chunks are filled a little less (see `fit`).
        let slots = cap.div_ceil(chunk - chunk / 8) + 2;
        let total = slots + SPARE_CHUNKS;
        let mut p = MempoolParams::new("tcp-send", total as u32);
        p.data_room = chunk as u16;
        p.headroom = 0;
        p.cache_size = 0;
        p.huge = HugePolicy::Off;
        let pool = Mempool::new(&p)
            .unwrap_or_else(|e| panic!("out of memory for a TCP send buffer of {cap} bytes: {e}"));
        SendBuffer {
            room: chunk,
            chunk,
            cap,
            chunks: VecDeque::with_capacity(slots),
            hint: Cell::new(0),
            tail_open: false,
            idle: Vec::with_capacity(total),
            head: 0,
            len: 0,
            starved: false,
            pool,
        }
    }

    /// This buffer emptied for a new connection when it has capacity `cap` in chunks of
    /// `chunk` bytes, else a new one.
    pub(crate) fn reuse(mut self, cap: usize, chunk: usize) -> Self {
        if self.cap != cap.max(1) || self.room != chunk.clamp(1, u16::MAX as usize) {
            return SendBuffer::new(cap, chunk);
        }
        self.chunk = self.room;
        while let Some((_, c)) = self.chunks.pop_front() {
            self.retire(c);
        }
        self.tail_open = false;
        self.hint.set(0);
        self.head = 0;
        self.len = 0;
        self.starved = false;
        self
    }

    /// Keeps an emptied own chunk for reuse if nothing refers to it any more; otherwise lets
    /// it go (back to its pool when the last segment using it is freed).
    fn retire(&mut self, mut c: Mbuf) {
        if self.pool.owns(&c) && self.idle.len() < self.idle.capacity() && c.set_data(0, 0) {
            self.idle.push(c);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn free(&self) -> usize {
        self.cap - self.len
    }

    /// Fills chunks to `seg` bytes from now on, so that full-sized segments of `seg` bytes
    /// each lie in one chunk (one reference each instead of two). Only while the buffer is
    /// empty, and only for a size the pool was made for (`seg` within an eighth below `room`);
    /// otherwise nothing changes.
    pub(crate) fn fit(&mut self, seg: usize) {
        if self.chunks.is_empty() && seg <= self.room && seg >= self.room - self.room / 8 {
            self.chunk = seg;
        }
    }

    /// True when the last [`write`](Self::write) was cut short by an empty pool.
    pub(crate) fn starved(&self) -> bool {
        self.starved
    }

    /// Appends as much of `data` as fits; returns the count.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        let want = data.len().min(self.free());
        let mut done = 0;
        self.starved = false;
        while done < want {
            let open = self.tail_open
                && self
                    .chunks
                    .back()
                    .is_some_and(|(_, c)| c.data_len() < self.chunk);
            if !open {
                if self.chunks.len() == self.chunks.capacity() {
                    break; // never for writes alone: the deque is sized for a full buffer
                }
                let Some(m) = self.idle.pop().or_else(|| self.pool.alloc()) else {
                    self.starved = true;
                    break;
                };
                let at = self.head + (self.len + done) as u64;
                self.chunks.push_back((at, m));
                self.tail_open = true;
            }
            let Some((_, c)) = self.chunks.back_mut() else {
                break;
            };
            let n = (self.chunk - c.data_len()).min(want - done);
            // SAFETY: own chunks only ever grow: segments refer to bytes that were data when
            // they were made, so none covers bytes past the data end.
            let w = unsafe { c.append_past_clones(&data[done..done + n]) };
            done += w;
            if w < n {
                break; // never: the data room is at least `chunk` and the headroom 0
            }
        }
        self.len += done;
        done
    }

    /// Queues the bytes of `m` (one segment) without copying them: the mbuf becomes a chunk
    /// and goes to the wire by reference. Refused (handed back) when its bytes do not fit the
    /// free space, when it is a chain, or when the buffer holds as many chunks as it can.
    pub(crate) fn give(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let n = m.data_len();
        if n > self.free() || m.nb_segs() != 1 || self.chunks.len() == self.chunks.capacity() {
            return Err(m);
        }
        if n > 0 {
            self.chunks.push_back((self.head + self.len as u64, m));
            self.len += n;
            self.tail_open = false;
        }
        Ok(())
    }

    /// The chunk holding the byte `off` bytes after the first unacknowledged one, and that
    /// byte's offset in its data.
    fn locate(&self, off: usize) -> (usize, usize) {
        let at = self.head + off as u64;
        let mut i = self.hint.get().min(self.chunks.len() - 1);
        while i > 0 && self.chunks[i].0 > at {
            i -= 1;
        }
        while i + 1 < self.chunks.len() && self.chunks[i + 1].0 <= at {
            i += 1;
        }
        self.hint.set(i);
        (i, (at - self.chunks[i].0) as usize)
    }

    /// How many bytes from `off` on lie in the chunk holding `off` and the next one: the most
    /// one segment starting there may carry.
    pub(crate) fn span(&self, off: usize) -> usize {
        if off >= self.len {
            return 0;
        }
        let (i, o) = self.locate(off);
        let mut n = self.chunks[i].1.data_len() - o;
        if let Some((_, c)) = self.chunks.get(i + 1) {
            n += c.data_len();
        }
        n.min(self.len - off)
    }

    /// `len` bytes (at most [`span`](Self::span)) from `off` bytes after the first
    /// unacknowledged byte, as up to two pieces: a chunk and the offset in its data.
    pub(crate) fn pieces(&self, off: usize, len: usize) -> [Option<(&Mbuf, usize, usize)>; 2] {
        debug_assert!(off + len <= self.len && len <= self.span(off));
        if len == 0 {
            return [None, None];
        }
        let (i, o) = self.locate(off);
        let c = &self.chunks[i].1;
        let first = len.min(c.data_len() - o);
        let second = (len > first).then(|| (&self.chunks[i + 1].1, 0, len - first));
        [Some((c, o, first)), second]
    }

    /// The payload of a segment of `len` bytes (at most [`span`](Self::span)) from `off` bytes
    /// after the first unacknowledged byte: its bytes, and the chunks they lie in.
    pub(crate) fn payload(&self, off: usize, len: usize) -> (Payload<'_>, PayloadMbufs<'_>) {
        let mut payload = Payload::default();
        let mut mbufs = PayloadMbufs::default();
        for (i, p) in self.pieces(off, len).into_iter().enumerate() {
            if let Some((m, at, n)) = p {
                payload.0[i] = &m.data()[at..at + n];
                mbufs.0[i] = Some((m, at));
            }
        }
        (payload, mbufs)
    }

    /// `len` bytes from `off` bytes after the first unacknowledged byte, as up to two slices.
    #[cfg(test)]
    pub(crate) fn slices(&self, off: usize, len: usize) -> [&[u8]; 2] {
        self.payload(off, len).0 .0
    }

    /// Releases `n` acknowledged bytes (whole chunks go back towards the pool).
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let n = n.min(self.len);
        self.len -= n;
        self.head += n as u64;
        while let Some((s, c)) = self.chunks.front() {
            // Keep the open tail while it is not full: writes go on filling it.
            let open_tail = self.chunks.len() == 1 && self.tail_open && c.data_len() < self.chunk;
            if s + c.data_len() as u64 > self.head || open_tail {
                break;
            }
            if let Some((_, c)) = self.chunks.pop_front() {
                self.retire(c);
                self.hint.set(self.hint.get().saturating_sub(1));
            }
        }
        if self.chunks.is_empty() {
            self.tail_open = false;
        }
    }
}

/// One out-of-order range `[start, end)` and when it was last extended (for SACK ordering).
#[derive(Debug, Clone, Copy)]
struct OooRange {
    start: Seq,
    end: Seq,
    stamp: u64,
}

/// Why out-of-order data was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OooReject {
    /// Storing it would exceed the configured out-of-order byte limit.
    Bytes,
    /// It starts a new range and the range list is full.
    Ranges,
}

/// The receive buffer: in-order bytes ready for the application, followed by space where
/// out-of-order bytes are stored at their final position.
#[derive(Debug)]
pub(crate) struct RecvBuffer {
    ring: Ring,
    ranges: Vec<OooRange>,
    max_ranges: usize,
    max_ooo_bytes: usize,
    ooo_bytes: usize,
    stamp: u64,
    /// In-order bytes at the tail counted in `ring.len` but not written yet (see
    /// [`lend`](Self::lend)).
    lent: usize,
}

impl RecvBuffer {
    pub(crate) fn new(cap: usize, max_ranges: usize, max_ooo_bytes: usize) -> Self {
        RecvBuffer {
            ring: Ring::new(cap),
            ranges: Vec::with_capacity(max_ranges),
            max_ranges,
            max_ooo_bytes,
            ooo_bytes: 0,
            stamp: 0,
            lent: 0,
        }
    }

    /// This buffer emptied for a new connection when it has the same limits, else a new one
    /// (the ring keeps its old bytes: they are never read before being written again).
    pub(crate) fn reuse(mut self, cap: usize, max_ranges: usize, max_ooo_bytes: usize) -> Self {
        if self.ring.cap() != cap.max(1) || self.max_ranges != max_ranges {
            return RecvBuffer::new(cap, max_ranges, max_ooo_bytes);
        }
        self.ring.head = 0;
        self.ring.len = 0;
        self.ranges.clear();
        self.max_ooo_bytes = max_ooo_bytes;
        self.ooo_bytes = 0;
        self.stamp = 0;
        self.lent = 0;
        self
    }

    pub(crate) fn cap(&self) -> usize {
        self.ring.cap()
    }

    /// In-order bytes the application has not read.
    pub(crate) fn len(&self) -> usize {
        self.ring.len
    }

    /// Space after the in-order bytes (out-of-order bytes live inside it).
    pub(crate) fn free(&self) -> usize {
        self.ring.free()
    }

    /// Bytes held out of order.
    pub(crate) fn ooo_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// True when some out-of-order data is held.
    pub(crate) fn has_ooo(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Stores `data` (one or two parts, read in order) whose first byte has sequence number
    /// `seq`, given that the in-order end is `rcv_nxt`. The caller trims `data` so that
    /// `rcv_nxt <= seq` and it fits in [`free`](Self::free). Returns how far `rcv_nxt`
    /// advances (0 for out-of-order data; more than `data.len()` when it fills a gap).
    pub(crate) fn insert_parts(
        &mut self,
        rcv_nxt: Seq,
        seq: Seq,
        data: Payload<'_>,
    ) -> Result<u32, OooReject> {
        debug_assert!(rcv_nxt.le(seq));
        let off = seq.since(rcv_nxt) as usize;
        debug_assert!(off + data.len() <= self.free());
        let end = seq + data.len() as u32;
        if off == 0 {
            self.ring.write_parts(self.ring.len, data);
            let mut new_end = end;
            while let Some(r) = self.ranges.first().copied() {
                if r.start.gt(new_end) {
                    break;
                }
                self.ranges.remove(0);
                self.ooo_bytes -= r.end.since(r.start) as usize;
                new_end = new_end.max(r.end);
            }
            let adv = new_end.since(rcv_nxt);
            self.ring.len += adv as usize;
            return Ok(adv);
        }
        // Out of order: merge with every range it overlaps or touches (ranges are sorted
        // and disjoint, so the touching ones are consecutive).
        let (mut s, mut e) = (seq, end);
        let mut first = None;
        let mut last = 0;
        let mut merged_bytes = 0usize;
        for (i, r) in self.ranges.iter().enumerate() {
            if r.end.lt(s) {
                continue;
            }
            if r.start.gt(e) {
                break;
            }
            first.get_or_insert(i);
            last = i + 1;
            s = s.min(r.start);
            e = e.max(r.end);
            merged_bytes += r.end.since(r.start) as usize;
        }
        if first.is_none() && self.ranges.len() >= self.max_ranges {
            return Err(OooReject::Ranges);
        }
        let new_total = self.ooo_bytes - merged_bytes + e.since(s) as usize;
        if new_total > self.max_ooo_bytes {
            return Err(OooReject::Bytes);
        }
        self.ring.write_parts(self.ring.len + off, data);
        self.stamp += 1;
        let range = OooRange {
            start: s,
            end: e,
            stamp: self.stamp,
        };
        if let Some(first) = first {
            self.ranges[first] = range;
            self.ranges.drain(first + 1..last);
        } else {
            let at = self
                .ranges
                .iter()
                .position(|r| r.start.gt(e))
                .unwrap_or(self.ranges.len());
            self.ranges.insert(at, range);
        }
        self.ooo_bytes = new_total;
        Ok(0)
    }

    /// `insert_parts` for one slice.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, rcv_nxt: Seq, seq: Seq, data: &[u8]) -> Result<u32, OooReject> {
        self.insert_parts(rcv_nxt, seq, Payload([data, &[]]))
    }

    /// True when `n` in-order bytes may be lent instead of written: the buffer holds nothing
    /// else (no unread and no out-of-order bytes), so the loan is all there is to read.
    pub(crate) fn can_lend(&self) -> bool {
        self.ring.len == 0 && self.ranges.is_empty()
    }

    /// Counts `n` in-order bytes as received without writing them: they stay in the
    /// caller's buffer until [`settle`](Self::settle). Only when [`can_lend`](Self::can_lend).
    pub(crate) fn lend(&mut self, n: usize) {
        debug_assert!(self.can_lend() && n <= self.free());
        self.ring.len = n;
        self.lent = n;
    }

    /// Bytes lent and not settled yet.
    #[cfg(test)]
    pub(crate) fn lent(&self) -> usize {
        self.lent
    }

    /// Ends a loan: the application read the first `read` lent bytes; `rest` (the others, in
    /// order) is written into the ring.
    pub(crate) fn settle(&mut self, read: usize, rest: Payload<'_>) {
        debug_assert_eq!(read + rest.len(), self.lent);
        debug_assert_eq!(self.ring.len, self.lent);
        self.ring.consume(read);
        self.ring.write_parts(0, rest);
        self.lent = 0;
    }

    /// Up to `max` SACK blocks, the most recently extended range first (RFC 2018 §4).
    pub(crate) fn sack_blocks(&self, max: usize) -> SackBlocks {
        let mut blocks = [(0u32, 0u32); 4];
        let mut stamps = [0u64; 4];
        let mut n = 0;
        let max = max.min(4);
        for r in &self.ranges {
            // Insertion sort into the top `max` by stamp, newest first.
            let mut i = n.min(max);
            while i > 0 && stamps[i - 1] < r.stamp {
                if i < max {
                    blocks[i] = blocks[i - 1];
                    stamps[i] = stamps[i - 1];
                }
                i -= 1;
            }
            if i < max {
                blocks[i] = (r.start.0, r.end.0);
                stamps[i] = r.stamp;
                n = (n + 1).min(max);
            }
        }
        SackBlocks::from_slice(&blocks[..n]).expect("at most four blocks")
    }

    /// The unread in-order bytes, as up to two slices.
    pub(crate) fn peek(&self) -> [&[u8]; 2] {
        debug_assert_eq!(self.lent, 0, "peek during a loan");
        self.ring.slices(0, self.ring.len)
    }

    /// Releases `n` bytes the application has read.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert_eq!(self.lent, 0, "consume during a loan");
        self.ring.consume(n.min(self.ring.len));
    }

    /// Copies unread bytes into `out` and releases them; returns the count.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        debug_assert_eq!(self.lent, 0, "read during a loan");
        let n = out.len().min(self.ring.len);
        let [a, b] = self.ring.slices(0, n);
        out[..a.len()].copy_from_slice(a);
        out[a.len()..n].copy_from_slice(b);
        self.ring.consume(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_chunks_fill_release_and_hand_out_pieces() {
        let mut s = SendBuffer::new(20, 8);
        assert_eq!(s.write(b"abcdef"), 6);
        assert_eq!(s.write(b"ghijklmnopqrstuvwxyz"), 14);
        assert_eq!((s.len(), s.free()), (20, 0));
        let [a, b] = s.slices(6, 5);
        assert_eq!((a, b), (&b"gh"[..], &b"ijk"[..]));
        // The same bytes as chunk references: chunk 0 from 6, chunk 1 from 0.
        let [p, q] = s.pieces(6, 5);
        let (c0, o0, n0) = p.unwrap();
        let (c1, o1, n1) = q.unwrap();
        assert_eq!((o0, n0, o1, n1), (6, 2, 0, 3));
        assert_eq!(c0.data(), b"abcdefgh");
        assert_eq!(c1.data(), b"ijklmnop");
        // A segment in flight keeps its chunk after the acknowledgement.
        let pool = {
            let mut p = MempoolParams::new("clones", 4);
            p.cache_size = 0;
            p.huge = HugePolicy::Off;
            Mempool::new(&p).unwrap()
        };
        let flight = c0.clone_range(&pool, o0, n0).unwrap();
        s.consume(10);
        assert_eq!((s.len(), s.free()), (10, 10));
        let [a, b] = s.slices(0, 8);
        assert_eq!([a, b].concat(), b"klmnopqr");
        assert_eq!(flight.data(), b"gh");
        // The tail chunk keeps filling while earlier bytes of it are referenced.
        let tail = s.pieces(9, 1)[0]
            .unwrap()
            .0
            .clone_range(&pool, 0, 4)
            .unwrap();
        assert_eq!(s.write(b"0123456789AB"), 10);
        assert_eq!(tail.data(), b"qrst");
        let [a, b] = s.slices(0, 8);
        assert_eq!([a, b].concat(), b"klmnopqr");
        let [a, b] = s.slices(12, 8);
        assert_eq!([a, b].concat(), b"23456789");
        s.consume(20);
        assert_eq!((s.len(), s.free()), (0, 20));
        drop((flight, tail));
        // Reuse empties it; every chunk is back in its pool.
        let s = s.reuse(20, 8);
        assert_eq!(s.len(), 0);
        assert_eq!(s.pool.available() + s.idle.len(), s.pool.capacity());
        assert!(!s.idle.is_empty(), "unreferenced chunks are kept for reuse");
    }

    #[test]
    fn chunks_fitted_to_the_segment_size_hold_one_segment_each() {
        let mut s = SendBuffer::new(64, 16);
        s.fit(7); // too small for the pool's sizing: ignored
        s.fit(14);
        assert_eq!(s.write(&[1; 60]), 60);
        for k in 0..4 {
            let [p, q] = s.pieces(k * 14, 14);
            assert_eq!(p.unwrap().1, 0, "segment {k} starts its chunk");
            assert!(q.is_none(), "segment {k} lies in one chunk");
        }
        s.fit(16); // written already: ignored
        let [p, q] = s.pieces(56, 4);
        assert_eq!((p.unwrap().1, q.is_none()), (0, true));
        assert_eq!(s.free(), 4);
        assert_eq!(s.write(&[2; 4]), 4);
    }

    #[test]
    fn handed_over_mbufs_are_chunks_and_segments_are_cut_at_two() {
        let pool = {
            let mut p = MempoolParams::new("app", 8);
            p.cache_size = 0;
            p.huge = HugePolicy::Off;
            Mempool::new(&p).unwrap()
        };
        let mbuf = |bytes: &[u8]| {
            let mut m = pool.alloc().unwrap();
            m.append(bytes.len()).unwrap().copy_from_slice(bytes);
            m
        };
        let mut s = SendBuffer::new(40, 8);
        assert_eq!(s.write(b"abc"), 3);
        s.give(mbuf(b"DE")).unwrap();
        s.give(mbuf(b"FGHIJKLMNOPQ")).unwrap(); // longer than a chunk: fine, one piece
        assert_eq!(s.write(b"rstuvwxyz"), 9); // a new own chunk after the handed ones
        assert_eq!(s.len(), 26);
        // Segments stop at the end of the second chunk from where they start.
        assert_eq!(s.span(0), 5); // "abc" + "DE"
        assert_eq!(s.span(1), 4);
        assert_eq!(s.span(3), 14); // "DE" + "FGHIJKLMNOPQ"
        assert_eq!(s.span(6), 11 + 8); // rest of "FGH…" + the next own chunk ("rstuvwxy")
        let [a, b] = s.slices(3, 14);
        assert_eq!([a, b].concat(), b"DEFGHIJKLMNOPQ");
        let [a, b] = s.slices(15, 6);
        assert_eq!([a, b].concat(), b"PQrstu");
        // Too big, or a chain: handed back.
        let back = s.give(mbuf(&[0; 15])).unwrap_err();
        assert_eq!(back.data_len(), 15);
        // Acknowledging releases the handed-over mbufs to their own pool, not ours.
        let before = pool.available();
        s.consume(17);
        assert_eq!(pool.available(), before + 2);
        assert!(s.idle.len() <= 1);
        let [a, b] = s.slices(0, s.span(0));
        assert_eq!([a, b].concat(), b"rstuvwxyz");
    }

    #[test]
    fn an_empty_pool_cuts_a_write_short_and_says_so() {
        let mut s = SendBuffer::new(16, 4);
        let cap = s.pool.capacity();
        let pool = {
            let mut p = MempoolParams::new("clones", 64);
            p.cache_size = 0;
            p.huge = HugePolicy::Off;
            Mempool::new(&p).unwrap()
        };
        // Every chunk acknowledged while a late segment still holds it.
        let mut held = Vec::new();
        for _ in 0..cap {
            assert_eq!(s.write(b"wxyz"), 4);
            held.push(
                s.pieces(0, 4)[0]
                    .unwrap()
                    .0
                    .clone_range(&pool, 0, 4)
                    .unwrap(),
            );
            s.consume(4);
        }
        assert_eq!(s.write(b"more"), 0);
        assert!(s.starved());
        held.pop();
        assert_eq!(s.write(b"more"), 4);
        assert!(!s.starved());
    }

    #[test]
    fn out_of_order_ranges_merge_and_fill() {
        let base = Seq(u32::MAX - 10); // ranges straddle the wrap
        let mut r = RecvBuffer::new(64, 3, 64);
        assert_eq!(r.insert(base, base + 10, b"KLM"), Ok(0));
        assert_eq!(r.insert(base, base + 20, b"UV"), Ok(0));
        assert_eq!(r.insert(base, base + 30, b"ef"), Ok(0));
        // A fourth disjoint range does not fit the list; touching ones merge.
        assert_eq!(r.insert(base, base + 40, b"x"), Err(OooReject::Ranges));
        assert_eq!(r.insert(base, base + 13, b"NOPQRST"), Ok(0)); // joins 10..13 and 20..22
        assert_eq!(r.ooo_bytes(), 12 + 2);
        let sack = r.sack_blocks(4);
        assert_eq!(
            sack.as_slice(),
            &[
                ((base + 10).0, (base + 22).0),
                ((base + 30).0, (base + 32).0)
            ]
        );
        assert_eq!(r.len(), 0);
        // Filling the gap delivers everything up to the next hole.
        assert_eq!(r.insert(base, base, b"ABCDEFGHIJ"), Ok(22));
        assert_eq!(r.len(), 22);
        assert_eq!(r.ooo_bytes(), 2);
        let mut out = [0u8; 22];
        assert_eq!(r.read(&mut out), 22);
        assert_eq!(&out, b"ABCDEFGHIJKLMNOPQRSTUV");
        assert!(r.has_ooo());
        let nxt = base + 22;
        assert_eq!(r.insert(nxt, nxt, b"WXYZabc"), Ok(7));
        // Overlaps the held "e" at 30 and reaches the end of the range at 32.
        assert_eq!(r.insert(nxt + 7, nxt + 7, b"de"), Ok(3));
        let [a, b] = r.peek();
        assert_eq!([a, b].concat(), b"WXYZabcdef");
        r.consume(100);
        assert_eq!((r.len(), r.free(), r.has_ooo()), (0, 64, false));
    }

    #[test]
    fn two_part_data_lands_like_one_slice_in_order_out_of_order_and_wrapped() {
        let mut r = RecvBuffer::new(16, 4, 16);
        let z = Seq(u32::MAX - 3);
        // Out of order first (bytes 6..11), then the in-order start fills the gap.
        assert_eq!(r.insert_parts(z, z + 6, Payload([b"gh", b"ijk"])), Ok(0));
        assert_eq!(r.insert_parts(z, z, Payload([b"abc", b"def"])), Ok(11));
        let [a, b] = r.peek();
        assert_eq!([a, b].concat(), b"abcdefghijk");
        r.consume(10);
        // Across the end of the ring.
        let nxt = z + 11;
        assert_eq!(
            r.insert_parts(nxt, nxt, Payload([b"LMNOPQ", b"RSTU"])),
            Ok(10)
        );
        let [a, b] = r.peek();
        assert!(!b.is_empty(), "wrapped");
        assert_eq!([a, b].concat(), b"kLMNOPQRSTU");
    }

    #[test]
    fn lent_bytes_take_space_and_only_the_unread_rest_is_copied() {
        let mut r = RecvBuffer::new(16, 4, 16);
        assert!(r.can_lend());
        r.lend(10);
        assert_eq!((r.len(), r.free(), r.lent()), (10, 6, 10));
        // The application read four of "0123456789"; the rest lands in the ring.
        r.settle(4, Payload([b"45", b"6789"]));
        assert_eq!((r.len(), r.lent()), (6, 0));
        let [a, b] = r.peek();
        assert_eq!([a, b].concat(), b"456789");
        assert!(!r.can_lend());
        r.consume(6);
        // A loan read completely leaves nothing; the ring wraps correctly after it.
        r.lend(16);
        r.settle(16, Payload::default());
        assert_eq!((r.len(), r.free()), (0, 16));
        assert_eq!(r.insert(Seq(0), Seq(0), b"abcdefghij"), Ok(10));
        let [a, b] = r.peek();
        assert_eq!([a, b].concat(), b"abcdefghij");
        // Out-of-order bytes forbid a loan (the loan must be all there is to read).
        r.consume(10);
        assert_eq!(r.insert(Seq(10), Seq(12), b"x"), Ok(0));
        assert!(!r.can_lend());
    }

    #[test]
    fn byte_limit_and_sack_recency() {
        let mut r = RecvBuffer::new(100, 8, 10);
        let z = Seq(1000);
        assert_eq!(r.insert(z, z + 50, b"aaaa"), Ok(0));
        assert_eq!(r.insert(z, z + 10, b"bbbb"), Ok(0));
        assert_eq!(r.insert(z, z + 30, b"ccc"), Err(OooReject::Bytes));
        assert_eq!(r.insert(z, z + 30, b"c"), Ok(0));
        assert_eq!(r.insert(z, z + 54, b"a"), Ok(0)); // extends the oldest: now newest
        assert_eq!(r.ooo_bytes(), 10);
        let s = r.sack_blocks(4);
        assert_eq!(s.as_slice(), &[(1050, 1055), (1030, 1031), (1010, 1014)]);
        assert_eq!(r.sack_blocks(2).as_slice(), &[(1050, 1055), (1030, 1031)]);
        assert_eq!(r.sack_blocks(0).as_slice(), &[]);
    }
}
