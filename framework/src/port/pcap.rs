//! The `pcap` port, like DPDK's `net_pcap`: receive replays a capture file, transmit writes one.
//!
//! **Receive.** At [`PcapPort::open`] the whole rx file is read, validated and copied into one
//! contiguous buffer of frame bytes plus an index of `(offset, len)` pairs, so `rx_burst` is a
//! plain memory copy into mbufs: no heap allocation and no system call per packet. Classic pcap
//! (microsecond and nanosecond magic, either byte order) and pcapng (Enhanced, Simple and
//! obsolete Packet blocks, several sections and interfaces, either byte order) are read; every
//! packet must be on an Ethernet (`DLT_EN10MB`) interface. A file that cannot be read, is not a
//! capture, is truncated or corrupt, or carries another link type is refused at `open` with a
//! [`PortError::Driver`] naming the file, the record and the byte offset. Files larger than
//! [`MAX_RX_FILE_BYTES`] (1 GiB) are refused. Frames are replayed exactly as stored (a frame
//! cut by the capture's snaplen at its captured length, runts and empty records included), and
//! as fast as they are polled: the file's timestamps are ignored.
//!
//! Frames longer than the pool's `data_room` are received as **chains of segments** (the head
//! from the burst's `alloc_bulk`, the rest one `alloc` each); `open` refuses a file whose largest
//! frame needs more segments than an mbuf chain can hold or than the pool has.
//!
//! With `repeat` the file is replayed in a loop forever; without it, the port delivers every
//! frame once and then sets its "rx done" flag ([`PcapPort::rx_done`], [`RxDoneFlag`],
//! [`Port::rx_finished`]) so a runner knows the input is over. A port without an rx file is
//! done from the start: it will never receive.
//!
//! **Transmit.** The tx file is created (truncated) at `open` and gets a classic pcap header
//! (native byte order, microsecond timestamps, snaplen [`TX_SNAPLEN`], link type Ethernet).
//! `tx_burst` appends one record per packet, segments concatenated, through a `BufWriter`, so
//! system calls happen only when its buffer fills; the clock is read once per burst. Packets
//! longer than the snaplen are cut to it in the file (the record keeps the real length as its
//! original length, as tcpdump does). [`TxQueue::flush`] and dropping the queue flush the buffer.
//! Without a tx file, transmitted packets are freed and counted as sent.
//!
//! The rx file is loaded before the tx file is created, so both may name the same path.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness};

use super::{
    LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, QueueSlots, RxQueue, TxQueue,
};
use crate::batch::Burst;
use crate::mem::{free_burst, Mbuf, Mempool};
use crate::port::counters::QueueCounterRef;

/// Largest rx file [`PcapPort::open`] loads into memory (1 GiB).
pub const MAX_RX_FILE_BYTES: u64 = 1 << 30;

/// Largest frame accepted in an rx file (libpcap's `MAXIMUM_SNAPLEN`, 256 KiB); a record that
/// claims more is treated as corrupt.
pub const MAX_FRAME_LEN: usize = 262_144;

/// Snapshot length written in the header of tx files; longer packets are cut to it.
pub const TX_SNAPLEN: u32 = 65_535;

/// Capacity of the tx file's write buffer.
const TX_BUFFER_BYTES: usize = 256 * 1024;

/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;

/// Settings of a pcap port.
#[derive(Debug, Clone)]
pub struct PcapConfig {
    /// Port name.
    pub name: String,
    /// Port id (written into received mbufs).
    pub id: u16,
    /// Pool that received packets come from.
    pub pool: Mempool,
    /// Capture file to replay on receive (`None`: the port never receives).
    pub rx: Option<PathBuf>,
    /// File to write transmitted packets to (`None`: transmitted packets are dropped, counted
    /// as sent).
    pub tx: Option<PathBuf>,
    /// Replay the rx file in a loop forever instead of once.
    pub repeat: bool,
    /// MAC address.
    pub mac: MacAddr,
    /// MTU.
    pub mtu: u16,
}

/// A pcap port: one rx queue replaying a file, one tx queue writing a file.
pub struct PcapPort {
    info: PortInfo,
    counters: PortCounters,
    rx: QueueSlots<PcapRx>,
    tx: QueueSlots<PcapTx<BufWriter<File>>>,
    rx_done: RxDoneFlag,
    rx_frames: usize,
}

/// A read-only view of a pcap port's "rx file fully read" flag, which stays valid after the
/// port has been boxed as a `dyn Port` or its rx queue moved to an lcore.
#[derive(Debug, Clone)]
pub struct RxDoneFlag(Arc<AtomicBool>);

impl RxDoneFlag {
    /// True once the port will never receive again: every frame of a non-repeating rx file
    /// has been received (at once for a file with no frames, or for a port without an rx
    /// file). Always false with `repeat`.
    #[inline]
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

fn driver_err(port: &str, message: String) -> PortError {
    PortError::Driver {
        port: port.to_string(),
        message,
    }
}

impl PcapPort {
    /// Opens the port: loads and validates the whole rx file (if any), then creates the tx
    /// file (if any) and writes its header.
    ///
    /// Fails with [`PortError::Driver`], naming the file and what is wrong, when the rx file
    /// cannot be read, is not a pcap/pcapng capture of Ethernet frames, is truncated or
    /// corrupt, is larger than [`MAX_RX_FILE_BYTES`], holds a frame the pool cannot hold even
    /// as a chain, or is empty while `repeat` is set; or when the tx file cannot be created or
    /// written.
    pub fn open(cfg: PcapConfig) -> Result<PcapPort, PortError> {
        let counters = PortCounters::new(1, 1);
        let done = Arc::new(AtomicBool::new(false));

        let frames = match &cfg.rx {
            None => {
                done.store(true, Ordering::Release);
                Frames::default()
            }
            Some(path) => {
                let frames = load(path).map_err(|m| driver_err(&cfg.name, m))?;
                check_fits_pool(path, &frames, &cfg.pool).map_err(|m| driver_err(&cfg.name, m))?;
                if frames.index.is_empty() {
                    if cfg.repeat {
                        return Err(driver_err(
                            &cfg.name,
                            format!(
                                "{}: holds no packets, so it cannot be replayed with repeat = \
                                 true; use a capture with at least one packet",
                                path.display()
                            ),
                        ));
                    }
                    done.store(true, Ordering::Release);
                }
                frames
            }
        };
        let rx_frames = frames.index.len();

        let writer = match &cfg.tx {
            None => None,
            Some(path) => Some(create_tx_file(path).map_err(|m| driver_err(&cfg.name, m))?),
        };

        let rx = PcapRx {
            data: frames.data,
            index: frames.index,
            pos: 0,
            repeat: cfg.repeat,
            pool: cfg.pool.clone(),
            port: cfg.id,
            counters: counters.rx(0),
            done: done.clone(),
        };
        let tx = PcapTx {
            out: writer,
            failed: false,
            counters: counters.tx(0),
        };
        Ok(PcapPort {
            info: PortInfo {
                name: cfg.name.clone(),
                id: cfg.id,
                driver: "pcap",
                mac: cfg.mac,
                mtu: cfg.mtu,
                rx_queues: 1,
                tx_queues: 1,
                tx_l4_checksum_offload: false,
            },
            counters,
            rx: QueueSlots::new(&cfg.name, "rx", vec![rx]),
            tx: QueueSlots::new(&cfg.name, "tx", vec![tx]),
            rx_done: RxDoneFlag(done),
            rx_frames,
        })
    }

    /// True once the port will never receive again: every frame of a non-repeating rx file
    /// has been received, or the port has no rx file. Always false with `repeat`.
    #[inline]
    pub fn rx_done(&self) -> bool {
        self.rx_done.get()
    }

    /// A handle on the [`rx_done`](PcapPort::rx_done) flag to keep after the port is boxed.
    pub fn rx_done_flag(&self) -> RxDoneFlag {
        self.rx_done.clone()
    }

    /// Number of frames loaded from the rx file (0 without one).
    pub fn rx_frames(&self) -> usize {
        self.rx_frames
    }
}

impl Port for PcapPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkStatus {
        LinkStatus::up(10_000)
    }

    fn counters(&self) -> &PortCounters {
        &self.counters
    }

    fn rx_finished(&self) -> bool {
        self.rx_done()
    }

    fn take_rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, PortError> {
        Ok(Box::new(self.rx.take(q)?))
    }

    fn take_tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, PortError> {
        Ok(Box::new(self.tx.take(q)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading the rx file.

/// The frames of an rx file: their bytes back to back, and where each one lies.
#[derive(Debug, Default)]
struct Frames {
    data: Vec<u8>,
    /// `(offset, len)` of each frame in `data`, in file order.
    index: Vec<(u32, u32)>,
    /// Length of the longest frame.
    max_len: usize,
}

/// Reads, validates and indexes a capture file. Errors start with the path.
fn load(path: &Path) -> Result<Frames, String> {
    let shown = path.display();
    let cannot = |e: io::Error| format!("{shown}: cannot read the rx file: {e}");
    let file = File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    let too_big = |n: u64| {
        format!(
            "{shown}: the file is {n} bytes; the pcap port loads rx files into memory and \
             accepts at most {MAX_RX_FILE_BYTES} bytes (1 GiB): split it (e.g. with editcap -c)"
        )
    };
    if size > MAX_RX_FILE_BYTES {
        return Err(too_big(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(MAX_RX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(cannot)?;
    if buf.len() as u64 > MAX_RX_FILE_BYTES {
        return Err(too_big(buf.len() as u64));
    }
    parse(buf).map_err(|m| format!("{shown}: {m}"))
}

/// Parses a whole capture held in `buf`. The frames are compacted in place: each frame moves
/// to the front, over the headers already parsed (a frame's new offset never exceeds its old
/// one, so nothing unparsed is overwritten), and `buf` becomes the frame buffer.
fn parse(buf: Vec<u8>) -> Result<Frames, String> {
    let magic: [u8; 4] = match buf.get(..4) {
        Some(m) => [m[0], m[1], m[2], m[3]],
        None if buf.is_empty() => {
            return Err("is empty: not a pcap or pcapng file".to_string());
        }
        None => {
            return Err(format!(
                "is only {} bytes long: not a pcap or pcapng file",
                buf.len()
            ));
        }
    };
    let classic = match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 | 0xa1b2_3c4d => Some(Endian::Little),
        _ => match u32::from_be_bytes(magic) {
            0xa1b2_c3d4 | 0xa1b2_3c4d => Some(Endian::Big),
            _ => None,
        },
    };
    if let Some(endian) = classic {
        return parse_pcap(buf, endian);
    }
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        return parse_pcapng(buf);
    }
    let hint =
        if u32::from_le_bytes(magic) == 0xa1b2_cd34 || u32::from_be_bytes(magic) == 0xa1b2_cd34 {
            " (this is the modified/Kuznetzov pcap format: convert it with editcap -F pcap)"
        } else {
            ""
        };
    Err(format!(
        "not a pcap or pcapng file: it starts with bytes {:02x} {:02x} {:02x} {:02x}{hint}",
        magic[0], magic[1], magic[2], magic[3]
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

/// Reads a `u32` at `at`; `None` past the end.
#[inline]
fn u32_at(b: &[u8], at: usize, e: Endian) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let a = [s[0], s[1], s[2], s[3]];
    Some(match e {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    })
}

/// Reads a `u16` at `at`; `None` past the end.
#[inline]
fn u16_at(b: &[u8], at: usize, e: Endian) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    let a = [s[0], s[1]];
    Some(match e {
        Endian::Little => u16::from_le_bytes(a),
        Endian::Big => u16::from_be_bytes(a),
    })
}

fn link_name(linktype: u32) -> String {
    format!("{linktype} ({:?})", DataLink::from(linktype))
}

/// Accumulates frames while a parser walks the file.
struct Builder {
    buf: Vec<u8>,
    /// End of the compacted frame bytes.
    w: usize,
    index: Vec<(u32, u32)>,
    max_len: usize,
}

impl Builder {
    fn new(buf: Vec<u8>) -> Builder {
        Builder {
            buf,
            w: 0,
            index: Vec::new(),
            max_len: 0,
        }
    }

    /// Takes the frame at `src..src + len` (already checked to lie in the buffer, after every
    /// byte parsed so far).
    fn push(&mut self, src: usize, len: usize) {
        debug_assert!(self.w <= src && src + len <= self.buf.len());
        self.buf.copy_within(src..src + len, self.w);
        // Both fit in u32: the file is at most MAX_RX_FILE_BYTES.
        self.index.push((self.w as u32, len as u32));
        self.w += len;
        self.max_len = self.max_len.max(len);
    }

    fn finish(mut self) -> Frames {
        self.buf.truncate(self.w);
        self.buf.shrink_to_fit();
        self.index.shrink_to_fit();
        Frames {
            data: self.buf,
            index: self.index,
            max_len: self.max_len,
        }
    }
}

/// Classic pcap: a 24-byte file header, then records of a 16-byte header and the frame.
fn parse_pcap(buf: Vec<u8>, e: Endian) -> Result<Frames, String> {
    let len = buf.len();
    if len < 24 {
        return Err(format!(
            "truncated: the pcap file header needs 24 bytes but the file has only {len}"
        ));
    }
    // Bits 16.. of the link-type field carry FCS information; the type is the low 16 bits.
    let linktype = u32_at(&buf, 20, e).unwrap_or(0) & 0xffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(format!(
            "link type is {}, not Ethernet (1): the pcap port replays Ethernet frames only",
            link_name(linktype)
        ));
    }
    let mut b = Builder::new(buf);
    let mut r = 24;
    let mut record = 0u64;
    while r < len {
        record += 1;
        if len - r < 16 {
            return Err(format!(
                "truncated: record {record} at byte {r} has only {} of its 16 header bytes",
                len - r
            ));
        }
        let incl = u32_at(&b.buf, r + 8, e).unwrap_or(0) as usize;
        if incl > MAX_FRAME_LEN {
            return Err(format!(
                "corrupt: record {record} at byte {r} says {incl} bytes, more than the \
                 {MAX_FRAME_LEN} a frame can have"
            ));
        }
        let data = r + 16;
        if len - data < incl {
            return Err(format!(
                "truncated: record {record} at byte {r} says {incl} bytes but only {} remain",
                len - data
            ));
        }
        b.push(data, incl);
        r = data + incl;
    }
    Ok(b.finish())
}

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// pcapng: blocks of `type, total length, body, total length`; the byte order is set by each
/// section header block.
fn parse_pcapng(buf: Vec<u8>) -> Result<Frames, String> {
    let len = buf.len();
    let mut b = Builder::new(buf);
    let mut e = Endian::Little;
    // (link type, snaplen) of each interface of the current section.
    let mut ifaces: Vec<(u32, u32)> = Vec::new();
    let mut r = 0;
    let mut block = 0u64;
    while r < len {
        block += 1;
        if len - r < 12 {
            return Err(format!(
                "truncated: block {block} at byte {r} has only {} bytes, fewer than the 12 of \
                 the smallest block",
                len - r
            ));
        }
        let is_shb = b.buf[r..r + 4] == [0x0a, 0x0d, 0x0d, 0x0a];
        if is_shb {
            e = match u32_at(&b.buf, r + 8, Endian::Little) {
                Some(BYTE_ORDER_MAGIC) => Endian::Little,
                _ if u32_at(&b.buf, r + 8, Endian::Big) == Some(BYTE_ORDER_MAGIC) => Endian::Big,
                _ => {
                    return Err(format!(
                        "corrupt: section header block {block} at byte {r} has no valid \
                         byte-order magic"
                    ))
                }
            };
            ifaces.clear();
        } else if block == 1 {
            return Err("corrupt: pcapng file does not start with a section header".into());
        }
        let btype = u32_at(&b.buf, r, e).unwrap_or(0);
        let total = u32_at(&b.buf, r + 4, e).unwrap_or(0) as usize;
        if total < 12 || total % 4 != 0 {
            return Err(format!(
                "corrupt: block {block} at byte {r} has length {total}, which is not a \
                 multiple of 4 of at least 12"
            ));
        }
        if total > len - r {
            return Err(format!(
                "truncated: block {block} at byte {r} says {total} bytes but only {} remain",
                len - r
            ));
        }
        let trailer = u32_at(&b.buf, r + total - 4, e).unwrap_or(0) as usize;
        if trailer != total {
            return Err(format!(
                "corrupt: block {block} at byte {r} starts with length {total} but ends with \
                 {trailer}"
            ));
        }
        let body = r + 8;
        let body_len = total - 12;
        let short = |need: usize, what: &str| {
            format!(
                "corrupt: {what} block {block} at byte {r} has a {body_len}-byte body, fewer \
                 than the {need} it needs"
            )
        };
        // (interface, captured length, offset of the data)
        let packet = match btype {
            SHB => {
                if body_len < 16 {
                    return Err(short(16, "section header"));
                }
                None
            }
            IDB => {
                if body_len < 8 {
                    return Err(short(8, "interface description"));
                }
                let linktype = u16_at(&b.buf, body, e).unwrap_or(0) as u32;
                let snaplen = u32_at(&b.buf, body + 4, e).unwrap_or(0);
                ifaces.push((linktype, snaplen));
                None
            }
            EPB => {
                if body_len < 20 {
                    return Err(short(20, "enhanced packet"));
                }
                let iface = u32_at(&b.buf, body, e).unwrap_or(0) as usize;
                let cap = u32_at(&b.buf, body + 12, e).unwrap_or(0) as usize;
                Some((iface, cap, body + 20))
            }
            PB => {
                if body_len < 20 {
                    return Err(short(20, "packet"));
                }
                let iface = u16_at(&b.buf, body, e).unwrap_or(0) as usize;
                let cap = u32_at(&b.buf, body + 12, e).unwrap_or(0) as usize;
                Some((iface, cap, body + 20))
            }
            SPB => {
                if body_len < 4 {
                    return Err(short(4, "simple packet"));
                }
                // The captured length is the original length cut to interface 0's snaplen
                // and to the block.
                let orig = u32_at(&b.buf, body, e).unwrap_or(0) as usize;
                let snap = match ifaces.first() {
                    Some(&(_, s)) if s != 0 => s as usize,
                    _ => usize::MAX,
                };
                Some((0, orig.min(snap).min(body_len - 4), body + 4))
            }
            _ => None,
        };
        if let Some((iface, cap, data)) = packet {
            let Some(&(linktype, _)) = ifaces.get(iface) else {
                return Err(format!(
                    "corrupt: packet block {block} at byte {r} is on interface {iface}, but its \
                     section describes only {} interface(s)",
                    ifaces.len()
                ));
            };
            if linktype != LINKTYPE_ETHERNET {
                return Err(format!(
                    "packet block {block} at byte {r} is on interface {iface} whose link type \
                     is {}, not Ethernet (1): the pcap port replays Ethernet frames only",
                    link_name(linktype)
                ));
            }
            if cap > MAX_FRAME_LEN {
                return Err(format!(
                    "corrupt: packet block {block} at byte {r} says {cap} bytes, more than the \
                     {MAX_FRAME_LEN} a frame can have"
                ));
            }
            let room = r + total - 4 - data;
            if cap > room {
                return Err(format!(
                    "corrupt: packet block {block} at byte {r} says {cap} bytes but its block \
                     holds only {room}"
                ));
            }
            b.push(data, cap);
        }
        r += total;
    }
    Ok(b.finish())
}

/// Refuses files whose largest frame could never be received from `pool`.
fn check_fits_pool(path: &Path, frames: &Frames, pool: &Mempool) -> Result<(), String> {
    let room = pool.data_room().max(1) as usize;
    let segs = frames.max_len.div_ceil(room);
    let limit = (u16::MAX as usize).min(pool.capacity());
    if segs > limit {
        return Err(format!(
            "{}: the largest frame is {} bytes and needs {segs} mbufs of pool {} (data_room \
             {room}), but a packet can use at most {limit}: use a pool with a larger data_room",
            path.display(),
            frames.max_len,
            pool.name()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Receive.

struct PcapRx {
    data: Vec<u8>,
    index: Vec<(u32, u32)>,
    /// Next frame to deliver.
    pos: usize,
    repeat: bool,
    pool: Mempool,
    port: u16,
    counters: QueueCounterRef,
    done: Arc<AtomicBool>,
}

/// Why a frame could not be copied into an mbuf chain.
enum FillError {
    /// The pool ran out of segments.
    NoBuf,
    /// The mbuf refused the bytes (cannot happen with fresh mbufs; handled rather than panic).
    Refused,
}

/// Copies `frame` into the fresh mbuf `head`, chaining more segments from `pool` as needed.
#[inline]
fn fill(pool: &Mempool, head: &mut Mbuf, frame: &[u8]) -> Result<(), FillError> {
    let take = frame.len().min(head.tailroom());
    head.append(take)
        .ok_or(FillError::Refused)?
        .copy_from_slice(&frame[..take]);
    let mut rest = &frame[take..];
    while !rest.is_empty() {
        let mut seg = pool.alloc().ok_or(FillError::NoBuf)?;
        let take = rest.len().min(seg.tailroom());
        if take == 0 {
            return Err(FillError::Refused);
        }
        seg.append(take)
            .ok_or(FillError::Refused)?
            .copy_from_slice(&rest[..take]);
        head.chain(seg).map_err(|_| FillError::Refused)?;
        rest = &rest[take..];
    }
    Ok(())
}

impl RxQueue for PcapRx {
    fn rx_burst(&mut self, out: &mut Burst, max: usize) -> usize {
        let total = self.index.len();
        let mut n = max.min(out.remaining());
        if !self.repeat {
            n = n.min(total - self.pos);
        }
        if n == 0 || total == 0 {
            return 0;
        }
        let start = out.len();
        if !self.pool.alloc_bulk(out, n) {
            self.counters.nombuf.add(n as u64);
            return 0;
        }
        let mut pos = self.pos;
        let mut bytes = 0usize;
        let mut got = 0usize;
        let mut failure = None;
        for m in &mut out.as_mut_slice()[start..] {
            let (off, len) = self.index[pos];
            let frame = &self.data[off as usize..off as usize + len as usize];
            if let Err(e) = fill(&self.pool, m, frame) {
                failure = Some(e);
                break;
            }
            m.set_port(self.port);
            bytes += len as usize;
            got += 1;
            pos += 1;
            if pos == total && self.repeat {
                pos = 0;
            }
        }
        if let Some(e) = failure {
            // Free the unfilled heads (and the partial chain of the failed frame).
            out.truncate(start + got);
            match e {
                // The frame is retried on the next call.
                FillError::NoBuf => self.counters.nombuf.add((n - got) as u64),
                FillError::Refused => {
                    self.counters.errors.add(1);
                    pos += 1;
                    if pos == total && self.repeat {
                        pos = 0;
                    }
                }
            }
        }
        self.pos = pos;
        if !self.repeat && pos == total {
            self.done.store(true, Ordering::Release);
        }
        self.counters.packets.add(got as u64);
        self.counters.bytes.add(bytes as u64);
        got
    }
}

// ---------------------------------------------------------------------------------------------
// Transmit.

/// Creates the tx file and writes (and flushes) its pcap header. Errors start with the path.
fn create_tx_file(path: &Path) -> Result<BufWriter<File>, String> {
    let shown = path.display();
    let file =
        File::create(path).map_err(|e| format!("{shown}: cannot create the tx file: {e}"))?;
    let mut w = BufWriter::with_capacity(TX_BUFFER_BYTES, file);
    write_file_header(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| format!("{shown}: cannot write the tx file: {e}"))?;
    Ok(w)
}

fn write_file_header<W: Write>(w: &mut W) -> io::Result<()> {
    let header = PcapHeader {
        snaplen: TX_SNAPLEN,
        datalink: DataLink::ETHERNET,
        endianness: Endianness::native(),
        ..PcapHeader::default()
    };
    header.write_to(w).map(drop).map_err(|e| match e {
        pcap_file::PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    })
}

/// Appends one record (native byte order, like the file header) for packet `m`.
#[inline]
fn write_record<W: Write>(w: &mut W, m: &Mbuf, sec: u32, usec: u32) -> io::Result<()> {
    let orig = m.pkt_len();
    let incl = orig.min(TX_SNAPLEN as usize);
    let mut hdr = [0u8; 16];
    hdr[0..4].copy_from_slice(&sec.to_ne_bytes());
    hdr[4..8].copy_from_slice(&usec.to_ne_bytes());
    hdr[8..12].copy_from_slice(&(incl as u32).to_ne_bytes());
    hdr[12..16].copy_from_slice(&(orig.min(u32::MAX as usize) as u32).to_ne_bytes());
    w.write_all(&hdr)?;
    let mut left = incl;
    for seg in m.segments() {
        if left == 0 {
            break;
        }
        let take = seg.len().min(left);
        w.write_all(&seg[..take])?;
        left -= take;
    }
    // Segments shorter than pkt_len (an inconsistent chain): pad so the record stays whole.
    while left > 0 {
        let take = left.min(64);
        w.write_all(&[0u8; 64][..take])?;
        left -= take;
    }
    Ok(())
}

/// The tx queue. Generic over the writer so tests can make writes fail.
struct PcapTx<W: Write> {
    /// `None`: no tx file, packets are dropped and counted as sent.
    out: Option<W>,
    /// A write failed: the file may end in a torn record, so nothing more is written and every
    /// later packet counts as an error.
    failed: bool,
    counters: QueueCounterRef,
}

impl<W: Write + Send> TxQueue for PcapTx<W> {
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        if n == 0 {
            return 0;
        }
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut errors = 0u64;
        match &mut self.out {
            None => {
                sent = n as u64;
                bytes = pkts.iter().map(|m| m.pkt_len() as u64).sum();
            }
            Some(w) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let (sec, usec) = (now.as_secs() as u32, now.subsec_micros());
                for m in pkts.iter() {
                    if self.failed {
                        errors += 1;
                    } else if write_record(w, m, sec, usec).is_ok() {
                        sent += 1;
                        bytes += m.pkt_len() as u64;
                    } else {
                        self.failed = true;
                        errors += 1;
                    }
                }
            }
        }
        free_burst(pkts);
        self.counters.packets.add(sent);
        self.counters.bytes.add(bytes);
        self.counters.errors.add(errors);
        n
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.out {
            if !self.failed && w.flush().is_err() {
                self.failed = true;
            }
        }
    }
}

impl<W: Write> Drop for PcapTx<W> {
    fn drop(&mut self) {
        if let Some(w) = &mut self.out {
            if !self.failed {
                let _ = w.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{HugePolicy, MempoolParams};
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use std::borrow::Cow;
    use std::time::Duration;

    fn pool(n: u32, data_room: u16) -> Mempool {
        let mut p = MempoolParams::new("pcap-test", n);
        p.huge = HugePolicy::Off;
        p.cache_size = 0;
        p.data_room = data_room;
        Mempool::new(&p).unwrap()
    }

    fn cfg(pool: &Mempool, rx: Option<&Path>, tx: Option<&Path>, repeat: bool) -> PcapConfig {
        PcapConfig {
            name: "pc0".into(),
            id: 3,
            pool: pool.clone(),
            rx: rx.map(Path::to_path_buf),
            tx: tx.map(Path::to_path_buf),
            repeat,
            mac: MacAddr::local(1),
            mtu: 1500,
        }
    }

    fn open_err(c: PcapConfig) -> String {
        match PcapPort::open(c) {
            Ok(_) => panic!("open succeeded"),
            Err(e) => e.to_string(),
        }
    }

    /// Frame `i` of length `len`: recognisable bytes.
    fn frame(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
    }

    fn bytes_of(m: &Mbuf) -> Vec<u8> {
        let mut v = Vec::new();
        for s in m.segments() {
            v.extend_from_slice(s);
        }
        assert_eq!(v.len(), m.pkt_len());
        v
    }

    /// Builds one mbuf (chained across segments of `seg` bytes if needed) holding `data`.
    fn mbuf_with(pool: &Mempool, data: &[u8], seg: usize) -> Mbuf {
        let mut chunks = data.chunks(seg.max(1));
        let first = chunks.next().unwrap_or(&[]);
        let mut head = pool.alloc().unwrap();
        head.append(first.len()).unwrap().copy_from_slice(first);
        for c in chunks {
            let mut s = pool.alloc().unwrap();
            s.append(c.len()).unwrap().copy_from_slice(c);
            head.chain(s).unwrap();
        }
        head
    }

    /// Writes `frames` through a pcap port's tx queue into `path`.
    fn write_through_port(path: &Path, frames: &[Vec<u8>]) -> PortStatsPair {
        // 65535 bytes in 100-byte segments take 656 mbufs.
        let mp = pool(1024, 2048);
        let mut p = PcapPort::open(cfg(&mp, None, Some(path), false)).unwrap();
        let mut tx = p.take_tx_queue(0).unwrap();
        for chunk in frames.chunks(7) {
            let mut b = Burst::new();
            for (k, f) in chunk.iter().enumerate() {
                // Alternate single-segment and chained (100-byte segments) packets.
                let seg = if k % 2 == 0 { 2048 } else { 100 };
                b.push(mbuf_with(&mp, f, seg)).unwrap();
            }
            assert_eq!(tx.tx_burst(&mut b), chunk.len());
            assert!(b.is_empty());
        }
        drop(tx); // flushes
        assert_eq!(mp.in_use(), 0);
        let s = p.stats();
        (s.opackets, s.obytes)
    }

    type PortStatsPair = (u64, u64);

    fn sample_frames() -> Vec<Vec<u8>> {
        [60, 64, 1514, 128, 9000, 1, 0, 300, 2048, 2049, 65535]
            .iter()
            .enumerate()
            .map(|(i, &l)| frame(i, l))
            .collect()
    }

    /// Receives everything (up to `limit` frames) from `rx`, in bursts of `burst`.
    fn drain(rx: &mut Box<dyn RxQueue>, burst: usize, limit: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut b = Burst::new();
        while got.len() < limit {
            let n = rx.rx_burst(&mut b, burst.min(limit - got.len()));
            if n == 0 {
                break;
            }
            for m in b.iter() {
                assert_eq!(m.port(), 3);
                got.push(bytes_of(m));
            }
            b.clear();
        }
        got
    }

    fn classic_file(e: Endian, nanos: bool, linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let u32b = |v: u32| match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let u16b = |v: u16| match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        let mut v = Vec::new();
        v.extend(u32b(magic));
        v.extend(u16b(2));
        v.extend(u16b(4));
        v.extend(u32b(0));
        v.extend(u32b(0));
        v.extend(u32b(262_144));
        v.extend(u32b(linktype));
        for (i, f) in frames.iter().enumerate() {
            v.extend(u32b(1_700_000_000 + i as u32));
            v.extend(u32b(999));
            v.extend(u32b(f.len() as u32));
            v.extend(u32b(f.len() as u32));
            v.extend_from_slice(f);
        }
        v
    }

    fn temp_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn round_trip_preserves_bytes_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt.pcap");
        let frames = sample_frames();
        let total: usize = frames.iter().map(Vec::len).sum();
        assert_eq!(
            write_through_port(&path, &frames),
            (frames.len() as u64, total as u64)
        );

        let mp = pool(256, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(&path), None, false)).unwrap();
        assert_eq!(p.info().rx_queues, 1);
        assert_eq!(p.info().tx_queues, 1);
        assert_eq!(p.info().driver, "pcap");
        assert_eq!(p.rx_frames(), frames.len());
        let mut rx = p.take_rx_queue(0).unwrap();
        let got = drain(&mut rx, 4, usize::MAX);
        assert_eq!(got, frames);
        let s = p.stats();
        assert_eq!((s.ipackets, s.ibytes), (frames.len() as u64, total as u64));
        assert_eq!((s.rx_nombuf, s.ierrors), (0, 0));
        assert_eq!(mp.in_use(), 0);
    }

    #[test]
    fn tx_file_is_readable_by_pcap_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oracle.pcap");
        let frames = sample_frames();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        write_through_port(&path, &frames);
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();

        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        let h = r.header();
        assert_eq!(h.datalink, DataLink::ETHERNET);
        assert_eq!(h.snaplen, 65_535);
        assert_eq!(h.ts_resolution, pcap_file::TsResolution::MicroSecond);
        let mut i = 0;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            assert_eq!(&pkt.data[..], &frames[i][..], "frame {i}");
            assert_eq!(pkt.orig_len as usize, frames[i].len());
            assert!(pkt.timestamp + Duration::from_secs(1) >= before);
            assert!(pkt.timestamp <= after);
            i += 1;
        }
        assert_eq!(i, frames.len());
    }

    #[test]
    fn tx_cuts_packets_to_the_snaplen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        let big = frame(9, 70_000);
        write_through_port(&path, std::slice::from_ref(&big));
        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        let raw = r.next_raw_packet().unwrap().unwrap();
        assert_eq!((raw.incl_len, raw.orig_len), (65_535, 70_000));
        assert_eq!(&raw.data[..], &big[..65_535]);
        assert!(r.next_raw_packet().is_none());
    }

    #[test]
    fn repeat_loops_over_the_file() {
        let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(i, 60 + i * 10)).collect();
        let f = temp_with(&classic_file(Endian::Little, false, 1, &frames));
        let mp = pool(64, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, true)).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        // Bursts of 4 cross the end of the file at different points.
        let got = drain(&mut rx, 4, 3 * frames.len());
        let want: Vec<Vec<u8>> = frames.iter().cycle().take(15).cloned().collect();
        assert_eq!(got, want);
        assert!(!p.rx_done());
        // A burst larger than the file wraps within the burst.
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 12), 12);
        let lens: Vec<usize> = b.iter().map(Mbuf::pkt_len).collect();
        assert_eq!(lens, [60, 70, 80, 90, 100, 60, 70, 80, 90, 100, 60, 70]);
        assert!(!p.rx_done());
    }

    #[test]
    fn no_repeat_stops_and_sets_rx_done() {
        let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(i, 100)).collect();
        let f = temp_with(&classic_file(Endian::Little, false, 1, &frames));
        let mp = pool(64, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, false)).unwrap();
        let flag = p.rx_done_flag();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 8), 8);
        assert!(!p.rx_done() && !flag.get());
        assert_eq!(rx.rx_burst(&mut b, 8), 2);
        assert!(p.rx_done() && flag.get());
        let boxed: Box<dyn Port> = Box::new(p);
        assert!(boxed.rx_finished());
        assert_eq!(rx.rx_burst(&mut b, 8), 0);
        assert_eq!(b.len(), 10);
        b.clear();
        assert_eq!(rx.rx_burst(&mut b, 8), 0);
        assert_eq!(boxed.stats().ipackets, 10);
        assert_eq!(boxed.stats().rx_nombuf, 0);
    }

    #[test]
    fn empty_capture_is_done_at_once_and_refused_with_repeat() {
        let f = temp_with(&classic_file(Endian::Little, false, 1, &[]));
        let mp = pool(16, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, false)).unwrap();
        assert!(p.rx_done());
        let mut rx = p.take_rx_queue(0).unwrap();
        assert_eq!(rx.rx_burst(&mut Burst::new(), 32), 0);
        let msg = open_err(cfg(&mp, Some(f.path()), None, true));
        assert!(msg.contains("no packets"), "{msg}");
    }

    #[test]
    fn without_files_rx_is_idle_and_tx_counts_and_frees() {
        let mp = pool(64, 2048);
        let mut p = PcapPort::open(cfg(&mp, None, None, false)).unwrap();
        assert!(p.rx_done() && p.rx_finished());
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut tx = p.take_tx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 0);
        assert!(mp.alloc_bulk(&mut b, 5));
        for m in b.iter_mut() {
            m.append(50).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 5);
        assert!(b.is_empty());
        assert_eq!(mp.in_use(), 0);
        let s = p.stats();
        assert_eq!((s.opackets, s.obytes, s.oerrors), (5, 250, 0));
        assert!(matches!(
            p.take_rx_queue(0),
            Err(PortError::QueueTaken { .. })
        ));
        assert!(matches!(
            p.take_tx_queue(1),
            Err(PortError::NoSuchQueue { count: 1, .. })
        ));
    }

    #[test]
    fn reads_every_classic_variant() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(i, 64 + i)).collect();
        for e in [Endian::Little, Endian::Big] {
            for nanos in [false, true] {
                let f = temp_with(&classic_file(e, nanos, 1, &frames));
                let mp = pool(16, 2048);
                let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, false)).unwrap();
                let mut rx = p.take_rx_queue(0).unwrap();
                assert_eq!(drain(&mut rx, 32, 100), frames, "{e:?} nanos={nanos}");
                assert!(p.rx_done());
            }
        }
    }

    #[test]
    fn reads_pcapng() {
        let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(i, 60 + 3 * i)).collect();
        for endianness in [Endianness::Little, Endianness::Big] {
            let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
            w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
                .unwrap();
            for f in &frames {
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: Duration::from_secs(1),
                    original_len: f.len() as u32,
                    data: Cow::Borrowed(f),
                    options: vec![],
                })
                .unwrap();
            }
            let bytes = w.into_inner();
            let file = temp_with(&bytes);
            let mp = pool(16, 2048);
            let mut p = PcapPort::open(cfg(&mp, Some(file.path()), None, false)).unwrap();
            let mut rx = p.take_rx_queue(0).unwrap();
            assert_eq!(drain(&mut rx, 32, 100), frames, "{endianness:?}");

            // Cut mid-block: refused, never a panic.
            let cut = temp_with(&bytes[..bytes.len() - 10]);
            let msg = open_err(cfg(&mp, Some(cut.path()), None, false));
            assert!(msg.contains("truncated"), "{msg}");
            assert!(msg.contains(&cut.path().display().to_string()), "{msg}");
        }
    }

    #[test]
    fn pcapng_needs_ethernet_interfaces() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::LINUX_SLL, 0))
            .unwrap();
        let f = vec![0u8; 60];
        for iface in [0, 1] {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: iface,
                timestamp: Duration::ZERO,
                original_len: 60,
                data: Cow::Borrowed(&f),
                options: vec![],
            })
            .unwrap();
        }
        let file = temp_with(&w.into_inner());
        let mp = pool(16, 2048);
        let msg = open_err(cfg(&mp, Some(file.path()), None, false));
        assert!(
            msg.contains("interface 1") && msg.contains("LINUX_SLL"),
            "{msg}"
        );
    }

    #[test]
    fn not_a_pcap_is_refused_naming_the_file() {
        let mp = pool(16, 2048);
        for bytes in [
            &b"<html><body>hello</body></html>"[..],
            &b""[..],
            &b"ab"[..],
        ] {
            let f = temp_with(bytes);
            let msg = open_err(cfg(&mp, Some(f.path()), None, false));
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
            assert!(msg.contains("not a pcap"), "{msg}");
        }
        let missing = Path::new("/nonexistent/dir/in.pcap");
        let msg = open_err(cfg(&mp, Some(missing), None, false));
        assert!(msg.contains("/nonexistent/dir/in.pcap") && msg.contains("cannot read"));
    }

    #[test]
    fn non_ethernet_link_type_is_refused() {
        let f = temp_with(&classic_file(Endian::Little, false, 113, &[frame(0, 60)]));
        let mp = pool(16, 2048);
        let msg = open_err(cfg(&mp, Some(f.path()), None, false));
        assert!(
            msg.contains("link type is 113") && msg.contains("LINUX_SLL"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_files_are_refused_without_panic() {
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i, 100)).collect();
        let bytes = classic_file(Endian::Big, false, 1, &frames);
        let mp = pool(16, 2048);
        // Mid-packet: the last record's data is cut.
        let f = temp_with(&bytes[..bytes.len() - 30]);
        let msg = open_err(cfg(&mp, Some(f.path()), None, false));
        let path = f.path().display().to_string();
        assert!(
            msg.contains(&path)
                && msg
                    .contains("truncated: record 3 at byte 256 says 100 bytes but only 70 remain"),
            "{msg}"
        );
        // Mid-header.
        let f = temp_with(&bytes[..24 + 116 + 5]);
        let msg = open_err(cfg(&mp, Some(f.path()), None, false));
        assert!(
            msg.contains("truncated: record 2 at byte 140 has only 5 of its 16 header bytes"),
            "{msg}"
        );
        // Mid file header.
        let f = temp_with(&bytes[..10]);
        assert!(open_err(cfg(&mp, Some(f.path()), None, false)).contains("truncated"));
        // Every prefix: Ok exactly at record boundaries, a truncation error otherwise.
        for cut in 0..bytes.len() {
            let r = parse(bytes[..cut].to_vec());
            let boundary = cut == 24 || (cut > 24 && (cut - 24) % 116 == 0);
            assert_eq!(r.is_ok(), boundary, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i, 40)).collect();
        let classic = classic_file(Endian::Little, false, 1, &frames);
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::ZERO,
            original_len: 40,
            data: Cow::Borrowed(&frames[0]),
            options: vec![],
        })
        .unwrap();
        let ng = w.into_inner();
        // Deterministic xorshift so failures reproduce.
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for base in [&classic, &ng] {
            for _ in 0..3000 {
                let mut v = base.clone();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() as usize) % v.len();
                    v[i] = rnd() as u8;
                }
                let cut = (rnd() as usize) % (v.len() + 1);
                v.truncate(cut.max(v.len() / 2));
                if let Ok(fr) = parse(v) {
                    for &(o, l) in &fr.index {
                        assert!((o + l) as usize <= fr.data.len());
                    }
                }
            }
        }
    }

    #[test]
    fn oversized_rx_file_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(MAX_RX_FILE_BYTES + 1).unwrap(); // sparse: nothing is written
        let mp = pool(16, 2048);
        let msg = open_err(cfg(&mp, Some(f.path()), None, false));
        assert!(msg.contains("at most 1073741824 bytes"), "{msg}");
    }

    #[test]
    fn empty_pool_counts_nombuf() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| frame(i, 60)).collect();
        let f = temp_with(&classic_file(Endian::Little, false, 1, &frames));
        let mp = pool(16, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, true)).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut held = Burst::new();
        assert!(mp.alloc_bulk(&mut held, 16));
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 0);
        assert_eq!(p.stats().rx_nombuf, 32);
        held.clear();
        // Nothing was consumed: reception resumes at the first frame.
        assert_eq!(rx.rx_burst(&mut b, 2), 2);
        assert_eq!(bytes_of(&b[0]), frames[0]);
        assert_eq!(p.stats().ipackets, 2);
    }

    #[test]
    fn oversize_frames_arrive_as_chains() {
        // data_room 256: a 1000-byte frame needs 4 segments.
        let frames = vec![frame(0, 1000), frame(1, 256), frame(2, 257), frame(3, 10)];
        let f = temp_with(&classic_file(Endian::Little, false, 1, &frames));
        let mp = pool(64, 256);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, false)).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 4);
        let segs: Vec<usize> = b.iter().map(Mbuf::nb_segs).collect();
        assert_eq!(segs, [4, 1, 2, 1]);
        for (m, f) in b.iter().zip(&frames) {
            assert_eq!(&bytes_of(m), f);
        }
        assert_eq!(mp.in_use(), 8);
        b.clear();
        assert_eq!(mp.in_use(), 0);
        assert_eq!(p.stats().ibytes, 1523);
    }

    #[test]
    fn chain_allocation_failure_keeps_whole_frames_only() {
        // Frames of 3 segments each (data_room 100); a 7-mbuf pool fits two of them.
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i, 250)).collect();
        let f = temp_with(&classic_file(Endian::Little, false, 1, &frames));
        let mp = pool(7, 100);
        let mut p = PcapPort::open(cfg(&mp, Some(f.path()), None, false)).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 3), 2);
        assert_eq!(p.stats().rx_nombuf, 1);
        assert_eq!(mp.in_use(), 6);
        assert_eq!(bytes_of(&b[1]), frames[1]);
        b.clear();
        assert!(!p.rx_done());
        assert_eq!(rx.rx_burst(&mut b, 3), 1);
        assert_eq!(bytes_of(&b[0]), frames[2]);
        assert!(p.rx_done());
    }

    #[test]
    fn frames_the_pool_cannot_hold_are_refused() {
        let f = temp_with(&classic_file(Endian::Little, false, 1, &[frame(0, 5000)]));
        let mp = pool(4, 1000); // needs 5 mbufs, the pool has 4
        let msg = open_err(cfg(&mp, Some(f.path()), None, false));
        assert!(msg.contains("needs 5 mbufs"), "{msg}");
    }

    #[test]
    fn tx_file_that_cannot_be_created_is_named() {
        let mp = pool(16, 2048);
        let bad = Path::new("/nonexistent/dir/out.pcap");
        let msg = open_err(cfg(&mp, None, Some(bad), false));
        assert!(msg.contains("/nonexistent/dir/out.pcap") && msg.contains("cannot create"));
    }

    /// A writer that accepts `room` bytes, then fails.
    struct Full {
        room: usize,
        got: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tx_write_errors_are_counted_not_panics() {
        let counters = PortCounters::new(1, 1);
        let mut tx = PcapTx {
            out: Some(Full {
                room: 1000,
                got: Vec::new(),
            }),
            failed: false,
            counters: counters.tx(0),
        };
        let mp = pool(64, 2048);
        let mut b = Burst::new();
        for i in 0..10 {
            b.push(mbuf_with(&mp, &frame(i, 200), 2048)).unwrap();
        }
        // 1000 bytes hold four 216-byte records; the fifth fails, the rest are not written.
        assert_eq!(tx.tx_burst(&mut b), 10);
        assert!(b.is_empty());
        assert_eq!(mp.in_use(), 0);
        let s = counters.stats();
        assert_eq!((s.opackets, s.obytes, s.oerrors), (4, 800, 6));
        tx.flush();
        assert!(mp.alloc_bulk(&mut b, 3));
        assert_eq!(tx.tx_burst(&mut b), 3);
        assert_eq!(counters.stats().oerrors, 9);
    }

    #[test]
    fn tx_flush_makes_records_visible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flush.pcap");
        let mp = pool(16, 2048);
        let mut p = PcapPort::open(cfg(&mp, None, Some(&path), false)).unwrap();
        // The header is on disk from the start.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        let mut tx = p.take_tx_queue(0).unwrap();
        let mut b = Burst::new();
        b.push(mbuf_with(&mp, &frame(0, 60), 2048)).unwrap();
        tx.tx_burst(&mut b);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        tx.flush();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 16 + 60);
    }

    #[test]
    fn same_file_for_rx_and_tx() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("both.pcap");
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(i, 80)).collect();
        std::fs::write(&path, classic_file(Endian::Little, false, 1, &frames)).unwrap();
        let mp = pool(16, 2048);
        let mut p = PcapPort::open(cfg(&mp, Some(&path), Some(&path), false)).unwrap();
        let mut rx = p.take_rx_queue(0).unwrap();
        let mut tx = p.take_tx_queue(0).unwrap();
        let mut b = Burst::new();
        assert_eq!(rx.rx_burst(&mut b, 32), 3);
        assert_eq!(tx.tx_burst(&mut b), 3);
        drop(tx);
        let reread = parse(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(reread.index.len(), 3);
    }
}
