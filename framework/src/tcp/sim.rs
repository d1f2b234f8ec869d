//! A simulated network for the engine's tests: two hosts joined by two one-way links, each
//! with a propagation delay, a bandwidth and a drop-tail queue, and seeded random loss,
//! reordering, duplication and corruption. Segments cross the links as real wire bytes
//! ([`Transmit::emit`], checksum verified and [`TcpSegment::parse`]d on arrival, so a
//! corrupted segment is dropped exactly as a checksum failure would drop it). Time is
//! virtual: the loop jumps to the next arrival or timer.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{
    reset_for, Connection, Event, IsnGenerator, Listener, Payload, TcpConfig, TcpHeader,
    TcpSegment, Transmit, MS,
};
use crate::wire::TcpPacket;

/// xorshift64* — a tiny deterministic generator.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// One direction of the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkConfig {
    /// One-way propagation delay.
    pub delay: u64,
    /// Bits per second; 0 = infinitely fast.
    pub bandwidth_bps: u64,
    /// Drop-tail queue in bytes (waiting to be serialized).
    pub queue_bytes: usize,
    /// Probability a segment is lost.
    pub loss: f64,
    /// Probability a segment is held back by up to `reorder_delay`.
    pub reorder: f64,
    /// Largest extra delay of a reordered segment.
    pub reorder_delay: u64,
    /// Probability a segment is delivered twice.
    pub duplicate: f64,
    /// Probability one bit of a segment is flipped.
    pub corrupt: f64,
}

impl Default for LinkConfig {
    /// 10 ms one way, 100 Mbit/s, 1 MiB of queue, no impairment.
    fn default() -> Self {
        LinkConfig {
            delay: 10 * MS,
            bandwidth_bps: 100_000_000,
            queue_bytes: 1 << 20,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: 5 * MS,
            duplicate: 0.0,
            corrupt: 0.0,
        }
    }
}

/// A segment on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub filtered: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub checksum_drops: u64,
    pub delivered: u64,
}

#[derive(Debug)]
struct InFlight {
    at: u64,
    id: u64,
    pkt: Packet,
}

#[derive(Debug)]
pub(crate) struct Link {
    pub cfg: LinkConfig,
    busy_until: u64,
    /// Sorted by (at, id), latest first: the next arrival is at the end.
    queue: Vec<InFlight>,
    pub stats: LinkStats,
}

impl Link {
    fn new(cfg: LinkConfig) -> Self {
        Link {
            cfg,
            busy_until: 0,
            queue: Vec::new(),
            stats: LinkStats::default(),
        }
    }

    fn push(&mut self, at: u64, id: u64, pkt: Packet) {
        let pos = self.queue.partition_point(|f| (f.at, f.id) > (at, id));
        self.queue.insert(pos, InFlight { at, id, pkt });
    }

    fn next_arrival(&self) -> Option<u64> {
        self.queue.last().map(|f| f.at)
    }
}

/// What happened to a segment when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Sent,
    Lost,
    QueueFull,
    Filtered,
}

/// One segment sent by a host.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub time: u64,
    pub from: usize,
    pub header: TcpHeader,
    pub payload_len: usize,
    pub fate: Fate,
}

impl Record {
    pub(crate) fn has(&self, f: crate::wire::TcpFlags) -> bool {
        self.header.flags.contains(f)
    }
}

/// A host: maybe a listener, and its connections.
#[derive(Debug)]
pub(crate) struct Host {
    pub listener: Option<Listener>,
    pub conns: Vec<Connection>,
    /// Events seen, with time and connection index.
    pub events: Vec<(u64, usize, Event)>,
    /// Answer segments that match nothing with a reset (a closed port).
    pub stray_resets: bool,
    /// Move established connections from the listener to `conns` at once.
    pub auto_accept: bool,
    replies: Vec<Packet>,
}

impl Host {
    fn new() -> Self {
        Host {
            listener: None,
            conns: Vec::new(),
            events: Vec::new(),
            stray_resets: true,
            auto_accept: true,
            replies: Vec::new(),
        }
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        self.conns.first_mut().expect("no connection")
    }

    pub(crate) fn saw(&self, ev: Event) -> bool {
        self.events.iter().any(|e| e.2 == ev)
    }

    fn next_timer(&self) -> Option<u64> {
        let l = self.listener.as_ref().and_then(Listener::next_timer);
        let c = self.conns.iter().filter_map(Connection::next_timer).min();
        l.into_iter().chain(c).min()
    }
}

/// A filter deciding whether a segment from host `from` may enter the link.
pub(crate) type Filter = Box<dyn FnMut(u64, usize, &TcpHeader, usize) -> bool>;

pub(crate) const ADDR_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub(crate) const ADDR_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub(crate) const PORT_A: u16 = 40000;
pub(crate) const PORT_B: u16 = 80;

/// The ISN key every test uses.
pub(crate) fn isn() -> IsnGenerator {
    IsnGenerator::new(*b"ferroplane-tcp-k")
}

pub(crate) fn addr_a() -> SocketAddrV4 {
    SocketAddrV4::new(ADDR_A, PORT_A)
}

pub(crate) fn addr_b() -> SocketAddrV4 {
    SocketAddrV4::new(ADDR_B, PORT_B)
}

/// Two hosts (A = index 0, B = index 1) and the links between them (0: A→B, 1: B→A).
pub(crate) struct Sim {
    pub now: u64,
    pub hosts: [Host; 2],
    pub links: [Link; 2],
    pub trace: Vec<Record>,
    pub filter: Option<Filter>,
    rng: XorShift,
    next_id: u64,
    buf: Vec<u8>,
}

impl Sim {
    pub(crate) fn new(seed: u64, a_to_b: LinkConfig, b_to_a: LinkConfig) -> Self {
        Sim {
            now: 0,
            hosts: [Host::new(), Host::new()],
            links: [Link::new(a_to_b), Link::new(b_to_a)],
            trace: Vec::new(),
            filter: None,
            rng: XorShift::new(seed),
            next_id: 0,
            buf: vec![0; 2048],
        }
    }

    /// Same impairments both ways.
    pub(crate) fn symmetric(seed: u64, link: LinkConfig) -> Self {
        Self::new(seed, link, link)
    }

    /// A connects from `addr_a()` to a listener on `addr_b()` (accepted automatically).
    pub(crate) fn open(&mut self, client: &TcpConfig, server: &TcpConfig, backlog: usize) {
        self.hosts[1].listener = Some(Listener::new(server, isn(), addr_b(), backlog));
        let c = Connection::connect(client, &isn(), addr_a(), addr_b(), self.now);
        self.hosts[0].conns.push(c);
    }

    pub(crate) fn a(&mut self) -> &mut Connection {
        self.hosts[0].conn()
    }

    pub(crate) fn b(&mut self) -> &mut Connection {
        self.hosts[1].conn()
    }

    /// Host A's first connection, shared.
    pub(crate) fn ra(&self) -> &Connection {
        &self.hosts[0].conns[0]
    }

    /// Segments sent by host `from` (whatever their fate), in order.
    pub(crate) fn sent_by(&self, from: usize) -> impl Iterator<Item = &Record> {
        self.trace.iter().filter(move |r| r.from == from)
    }

    fn transmit(&mut self, from: usize, t: &Transmit<'_>) {
        let n = t.emit(&mut self.buf);
        let pkt = Packet {
            src: t.src_addr,
            dst: t.dst_addr,
            bytes: self.buf[..n].to_vec(),
        };
        let fate = self.enqueue(from, pkt, &t.header, t.payload_len());
        self.trace.push(Record {
            time: self.now,
            from,
            header: t.header,
            payload_len: t.payload_len(),
            fate,
        });
    }

    fn enqueue(&mut self, from: usize, mut pkt: Packet, h: &TcpHeader, plen: usize) -> Fate {
        let now = self.now;
        if let Some(f) = self.filter.as_mut() {
            if !f(now, from, h, plen) {
                self.links[from].stats.filtered += 1;
                return Fate::Filtered;
            }
        }
        let rng = &mut self.rng;
        let link = &mut self.links[from];
        link.stats.sent += 1;
        let cfg = link.cfg;
        let wire_len = pkt.bytes.len() as u64 + 20;
        let (start, tx) = if cfg.bandwidth_bps > 0 {
            let start = link.busy_until.max(now);
            let backlog = (start - now) as u128 * cfg.bandwidth_bps as u128 / 8_000_000_000;
            if backlog as usize > cfg.queue_bytes {
                link.stats.queue_drops += 1;
                return Fate::QueueFull;
            }
            let tx = (wire_len as u128 * 8 * 1_000_000_000 / cfg.bandwidth_bps as u128) as u64;
            link.busy_until = start + tx;
            (start, tx)
        } else {
            (now, 0)
        };
        if rng.chance(cfg.loss) {
            link.stats.lost += 1;
            return Fate::Lost;
        }
        if rng.chance(cfg.corrupt) {
            link.stats.corrupted += 1;
            let bit = rng.below(pkt.bytes.len() as u64 * 8);
            pkt.bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
        }
        let mut at = start + tx + cfg.delay;
        if rng.chance(cfg.reorder) {
            link.stats.reordered += 1;
            at += 1 + rng.below(cfg.reorder_delay);
        }
        if rng.chance(cfg.duplicate) {
            link.stats.duplicated += 1;
            let dup_at = at + rng.below(2 * MS);
            self.next_id += 1;
            link.push(dup_at, self.next_id, pkt.clone());
        }
        self.next_id += 1;
        link.push(at, self.next_id, pkt);
        Fate::Sent
    }

    /// Sends everything both hosts have to send now.
    pub(crate) fn flush(&mut self) {
        for i in 0..2 {
            loop {
                let host = &mut self.hosts[i];
                if let Some(p) = host.replies.pop() {
                    let seg = TcpSegment::parse(&p.bytes).expect("own reply parses");
                    let header = seg.header;
                    let t = Transmit {
                        src_addr: p.src,
                        dst_addr: p.dst,
                        header,
                        payload: Default::default(),
                        payload_mbufs: Default::default(),
                    };
                    self.transmit(i, &t);
                    continue;
                }
                let now = self.now;
                // Move the segment out of the borrow of the host before using `self`.
                let mut owned = None;
                if let Some(l) = host.listener.as_mut() {
                    if let Some(t) = l.poll_transmit(now) {
                        owned = Some(own(&t));
                    }
                }
                if owned.is_none() {
                    for c in host.conns.iter_mut() {
                        if let Some(t) = c.poll_transmit(now) {
                            owned = Some(own(&t));
                            break;
                        }
                    }
                }
                let Some((src, dst, header, payload)) = owned else {
                    break;
                };
                let t = Transmit {
                    src_addr: src,
                    dst_addr: dst,
                    header,
                    payload: Payload([&payload[..], &[]]),
                    payload_mbufs: Default::default(),
                };
                self.transmit(i, &t);
            }
            self.collect_events(i);
        }
    }

    fn collect_events(&mut self, i: usize) {
        let now = self.now;
        let host = &mut self.hosts[i];
        for (k, c) in host.conns.iter_mut().enumerate() {
            while let Some(e) = c.poll_event() {
                host.events.push((now, k, e));
            }
        }
    }

    fn deliver(&mut self, to: usize, pkt: Packet) {
        let now = self.now;
        let link = &mut self.links[1 - to];
        let ok = TcpPacket::new_checked(&pkt.bytes[..])
            .map(|p| p.verify_checksum(pkt.src, pkt.dst))
            .unwrap_or(false);
        if !ok {
            link.stats.checksum_drops += 1;
            return;
        }
        let Ok(seg) = TcpSegment::parse(&pkt.bytes) else {
            link.stats.checksum_drops += 1;
            return;
        };
        link.stats.delivered += 1;
        let host = &mut self.hosts[to];
        let remote = SocketAddrV4::new(pkt.src, seg.src_port);
        if let Some(c) = host
            .conns
            .iter_mut()
            .find(|c| c.remote() == remote && c.local().port() == seg.dst_port)
        {
            c.on_segment(&seg, now);
        } else if let Some(l) = host
            .listener
            .as_mut()
            .filter(|l| l.local().port() == seg.dst_port)
        {
            l.on_segment(pkt.src, pkt.dst, &seg, now);
            while host.auto_accept {
                match l.accept() {
                    Some(c) => host.conns.push(c),
                    None => break,
                }
            }
        } else if host.stray_resets {
            if let Some(h) = reset_for(&seg) {
                let t = Transmit {
                    src_addr: pkt.dst,
                    dst_addr: pkt.src,
                    header: h,
                    payload: Default::default(),
                    payload_mbufs: Default::default(),
                };
                let mut b = vec![0; t.buffer_len()];
                t.emit(&mut b);
                host.replies.push(Packet {
                    src: pkt.dst,
                    dst: pkt.src,
                    bytes: b,
                });
            }
        }
    }

    /// The time of the next arrival or timer.
    pub(crate) fn next_event(&self) -> Option<u64> {
        let arrivals = self.links.iter().filter_map(Link::next_arrival);
        let timers = self.hosts.iter().filter_map(Host::next_timer);
        arrivals.chain(timers).min()
    }

    /// Flushes, then advances to the next event (not past `deadline`) and processes
    /// everything due then. False when nothing is left to happen before `deadline`.
    pub(crate) fn step(&mut self, deadline: u64) -> bool {
        self.flush();
        let Some(t) = self.next_event().filter(|&t| t <= deadline) else {
            self.now = self.now.max(deadline);
            return false;
        };
        self.now = self.now.max(t);
        let now = self.now;
        for to in 0..2 {
            while self.links[1 - to].next_arrival().is_some_and(|a| a <= now) {
                let f = self.links[1 - to].queue.pop().expect("arrival");
                self.deliver(to, f.pkt);
            }
        }
        for h in self.hosts.iter_mut() {
            if let Some(l) = h.listener.as_mut() {
                if l.next_timer().is_some_and(|t| t <= now) {
                    l.on_timer(now);
                }
                while h.auto_accept {
                    match l.accept() {
                        Some(c) => h.conns.push(c),
                        None => break,
                    }
                }
            }
            for c in h.conns.iter_mut() {
                if c.next_timer().is_some_and(|t| t <= now) {
                    c.on_timer(now);
                }
            }
        }
        self.flush();
        true
    }

    /// Runs until `done` returns true (checked after every step, with the application
    /// work it does) or `deadline`; true if `done` was reached.
    pub(crate) fn run_until(
        &mut self,
        deadline: u64,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.step(deadline) {
                return done(self);
            }
        }
    }

    /// Runs every event up to `deadline` and leaves the clock there.
    pub(crate) fn run_to(&mut self, deadline: u64) {
        while self.step(deadline) {}
    }
}

fn own(t: &Transmit<'_>) -> (Ipv4Addr, Ipv4Addr, TcpHeader, Vec<u8>) {
    let mut p = vec![0; t.payload_len()];
    t.copy_payload(&mut p);
    (t.src_addr, t.dst_addr, t.header, p)
}
