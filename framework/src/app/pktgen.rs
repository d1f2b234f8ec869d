//! `pktgen`: the traffic generator application on top of [`crate::pktgen`].
//!
//! Every tx queue listed in an lcore's `tx` sends the configured streams round-robin (or the
//! frames of a pcap file), paced by its own [`Pacer`] at its share of the port's rate, until its
//! share of `count` or `duration` is reached. Every rx queue the lcores poll feeds an
//! [`Analyzer`]; the per-stream results are published to [`PktgenShared`] every 100 ms and when
//! the lcore stops, where the CLI (or a test) reads them.
//!
//! Stream ids are `global tx queue index × streams + stream index`, so each (queue, stream)
//! has its own sequence space and the analyzer sees no false duplicates with several queues.
//!
//! Per packet the tx path allocates nothing and makes no syscall of its own: mbufs come in
//! bulk from the port's pool, frames are stamped from the stream templates, refused packets
//! stay queued (in order) for the next turn instead of being dropped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::batch::Burst;
use crate::config::{
    Config, LcoreConfig, PktgenConfig, PktgenProto, PktgenStreamConfig, ReplayTiming,
};
use crate::counter::Counter;
use crate::mem::Mempool;
use crate::pktgen::{
    Analyzer, AnalyzerConfig, LimitTracker, Limits, Pacer, Rate, RxStats, Stream, StreamSpec, L4,
};
use crate::port::impair::ImpairCounters;
use crate::port::{MacAddr, PortInfo};
use crate::runtime::tsc::{rdtsc, tsc_hz};
use crate::runtime::{DropReason, LcoreIo, RuntimeError, Stage};

/// The [`StreamSpec`] of a configured stream: `id`, source MAC `port_mac` unless the stream
/// sets one, and the signature when `latency` is on.
pub fn stream_spec(
    s: &PktgenStreamConfig,
    id: u16,
    port_mac: [u8; 6],
    latency: bool,
) -> StreamSpec {
    StreamSpec {
        id,
        src_mac: MacAddr(s.src_mac.unwrap_or(port_mac)),
        dst_mac: MacAddr(s.dst_mac),
        vlan: s.vlan,
        src_ip: s.src_ip,
        dst_ip: s.dst_ip,
        ttl: s.ttl,
        l4: match s.proto {
            PktgenProto::Udp => L4::Udp {
                src_port: s.src_port,
                dst_port: s.dst_port,
            },
            PktgenProto::TcpSyn => L4::TcpSyn {
                src_port: s.src_port,
                dst_port: s.dst_port,
            },
            PktgenProto::IcmpEcho => L4::IcmpEcho,
        },
        size: s.size.clone(),
        payload: s.payload.clone(),
        signature: latency,
    }
}

/// One frame of a pcap file: its timestamp in nanoseconds and its bytes.
pub type PcapFrame = (u64, Vec<u8>);

/// Reads every frame of a pcap file (Ethernet link type). Errors name the problem.
pub fn load_pcap(path: &Path) -> Result<Vec<PcapFrame>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut r = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a pcap file ({e})"))?;
    let lt = r.header().datalink;
    if lt != pcap_file::DataLink::ETHERNET {
        return Err(format!("link type {lt:?} is not Ethernet"));
    }
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.map_err(|e| format!("frame {}: {e}", out.len()))?;
        out.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
    }
    if out.is_empty() {
        return Err("the file has no frames".into());
    }
    Ok(out)
}

/// One tx queue of the run, in global order (lcores in file order, their `tx` lists in order).
#[derive(Debug, Clone)]
pub struct TxQueueInfo {
    /// Lcore that owns it.
    pub lcore: u32,
    /// Port id.
    pub port: u16,
    /// Port name.
    pub port_name: String,
    /// Queue index on the port.
    pub queue: u16,
}

/// Published receive results of one rx port of one lcore.
#[derive(Debug, Clone)]
pub struct RxSlot {
    /// Lcore.
    pub lcore: u32,
    /// Port id.
    pub port: u16,
    /// The analyzer's latest snapshot.
    pub stats: RxStats,
}

/// State shared between the pktgen lcores and the thread that reports.
#[derive(Debug)]
pub struct PktgenShared {
    /// The application config.
    pub config: PktgenConfig,
    /// Streams per tx queue (1 for a replay).
    pub streams_per_queue: usize,
    /// Every tx queue, in global order.
    pub tx_queues: Vec<TxQueueInfo>,
    /// Frames sent per stream id.
    tx_sent: Vec<Counter>,
    /// Per tx queue: its limit is reached and nothing is left to send.
    tx_done: Vec<AtomicBool>,
    /// Latest receive results.
    rx: Mutex<Vec<RxSlot>>,
    /// Replay frames, loaded once.
    replay: Option<Arc<Vec<PcapFrame>>>,
    /// Counters of the impaired tx queues (`impair` on a port), registered at build time.
    impair: Mutex<Vec<ImpairSlot>>,
}

/// The counters of one impaired tx queue.
#[derive(Debug, Clone)]
pub struct ImpairSlot {
    /// Port id.
    pub port: u16,
    /// Queue index on the port.
    pub queue: u16,
    /// What the impairment did so far.
    pub counters: Arc<ImpairCounters>,
}

/// What the impairments of one port (its queues summed) did, read at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImpairTotals {
    /// Frames offered to the impaired queues.
    pub offered: u64,
    /// Dropped by `drop_every`.
    pub dropped: u64,
    /// Dropped by the `max_pps` rate limit.
    pub rate_dropped: u64,
    /// Extra copies sent by `dup_every`.
    pub duplicated: u64,
    /// Held back behind the next frame by `swap_every` (reordered).
    pub reordered: u64,
    /// Refused by the wrapped queue or not copied for lack of an mbuf.
    pub refused: u64,
}

impl PktgenShared {
    /// Total number of stream ids.
    pub fn stream_count(&self) -> usize {
        self.tx_sent.len()
    }

    /// Frames sent per stream id so far.
    pub fn tx_sent(&self) -> Vec<u64> {
        self.tx_sent.iter().map(|c| c.get()).collect()
    }

    /// True when every tx queue has reached its limit (never without count or duration).
    pub fn all_tx_done(&self) -> bool {
        !self.tx_done.is_empty() && self.tx_done.iter().all(|d| d.load(Ordering::Acquire))
    }

    /// The latest receive results, per (lcore, rx port).
    pub fn rx_slots(&self) -> Vec<RxSlot> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The receive results of one port (every lcore polling it merged), finalised with the tx
    /// counts; `None` if no lcore polls it or nothing was published yet.
    pub fn rx_of_port(&self, port: u16) -> Option<RxStats> {
        let slots = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Option<RxStats> = None;
        for s in slots.iter().filter(|s| s.port == port) {
            match &mut out {
                None => out = Some(s.stats.clone()),
                Some(o) => {
                    let _ = o.merge(&s.stats);
                }
            }
        }
        out
    }

    /// Registers the counters of an impaired tx queue (done by the runtime when it builds it).
    pub fn add_impair(&self, port: u16, queue: u16, counters: Arc<ImpairCounters>) {
        self.impair
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ImpairSlot {
                port,
                queue,
                counters,
            });
    }

    /// Every impaired tx queue, in build order.
    pub fn impair_slots(&self) -> Vec<ImpairSlot> {
        self.impair
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The impairment counters of port `port`, its queues summed; `None` if it has none.
    pub fn impair_of_port(&self, port: u16) -> Option<ImpairTotals> {
        let slots = self.impair.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Option<ImpairTotals> = None;
        for s in slots.iter().filter(|s| s.port == port) {
            let t = out.get_or_insert_with(ImpairTotals::default);
            let c = &s.counters;
            t.offered += c.offered.get();
            t.dropped += c.dropped.get();
            t.rate_dropped += c.rate_dropped.get();
            t.duplicated += c.duplicated.get();
            t.reordered += c.swapped.get();
            t.refused += c.refused.get();
        }
        out
    }

    /// The stream id of stream `s` of global tx queue `q`.
    pub fn stream_id(&self, q: usize, s: usize) -> u16 {
        (q * self.streams_per_queue + s) as u16
    }
}

/// Builds the shared state from the config (`None` for other apps).
pub(crate) fn prepare(
    cfg: &Config,
    ports: &[PortInfo],
) -> Result<Option<Arc<PktgenShared>>, RuntimeError> {
    let crate::config::AppConfig::Pktgen(p) = &cfg.app else {
        return Ok(None);
    };
    let mut tx_queues = Vec::new();
    for lc in &cfg.lcores {
        for q in &lc.tx {
            let Some(info) = ports.iter().find(|i| i.name == q.port) else {
                continue;
            };
            tx_queues.push(TxQueueInfo {
                lcore: lc.id,
                port: info.id,
                port_name: info.name.clone(),
                queue: q.queue,
            });
        }
    }
    let replay = match &p.replay {
        Some(r) => Some(Arc::new(load_pcap(&r.file).map_err(|e| {
            RuntimeError::Stack(format!("app.replay.file {}: {e}", r.file.display()))
        })?)),
        None => None,
    };
    let per_queue = p.streams.len().max(1);
    let total = tx_queues.len() * per_queue;
    if total > u16::MAX as usize {
        return Err(RuntimeError::Stack(format!(
            "pktgen: {} tx queues × {per_queue} streams exceed 65535 stream ids",
            tx_queues.len()
        )));
    }
    Ok(Some(Arc::new(PktgenShared {
        config: p.clone(),
        streams_per_queue: per_queue,
        tx_sent: (0..total).map(|_| Counter::default()).collect(),
        tx_done: (0..tx_queues.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        tx_queues,
        rx: Mutex::new(Vec::new()),
        replay,
        impair: Mutex::new(Vec::new()),
    })))
}

/// Splits a per-port rate over `n` queues.
fn rate_share(rate: Rate, n: usize) -> Rate {
    let n = n.max(1) as f64;
    match rate {
        Rate::Pps(p) => Rate::Pps(p / n),
        Rate::Bps {
            bits_per_sec,
            l1_overhead,
        } => Rate::Bps {
            bits_per_sec: bits_per_sec / n,
            l1_overhead,
        },
        Rate::LineRate { link_bps } => Rate::LineRate {
            link_bps: link_bps / n,
        },
        Rate::Unlimited => Rate::Unlimited,
    }
}

/// What a tx queue sends.
enum Source {
    Streams {
        streams: Vec<Stream>,
        seq: Vec<u64>,
        /// Next stream to fill.
        fill_rr: usize,
    },
    Replay {
        frames: Arc<Vec<PcapFrame>>,
        timing: ReplayTiming,
        loops: u32,
        /// Next frame and loop.
        idx: usize,
        lap: u32,
        /// TSC at which the current lap's first frame went out (original / scaled timing).
        lap_start: u64,
    },
}

/// One tx queue's generator.
struct TxGen {
    port: u16,
    gq: usize,
    pool: Mempool,
    source: Source,
    /// Stream ids of this queue, by stream index.
    ids: Vec<u16>,
    /// Next stream whose packet will be counted as sent.
    sent_rr: usize,
    pacer: Pacer,
    limits: Limits,
    tracker: Option<LimitTracker>,
    pending: Burst,
    burst: usize,
    done: bool,
}

/// The pktgen stage of one lcore.
pub struct Pktgen {
    shared: Arc<PktgenShared>,
    lcore: u32,
    txs: Vec<TxGen>,
    /// (rx port, analyzer), created lazily per port this lcore receives on.
    rx: Vec<(u16, Analyzer)>,
    rx_ports: Vec<u16>,
    analyzer_cfg: AnalyzerConfig,
    dirty: bool,
    last_publish: u64,
    publish_every: u64,
    hz: u64,
    nombuf: DropReason,
    nofit: DropReason,
    /// Index of this lcore's slots in the shared rx list, by position in `rx`.
    published: Vec<usize>,
}

impl Pktgen {
    /// Builds lcore `lc`'s stage. `pools[p]` is port `p`'s pool.
    pub(crate) fn new(
        shared: Arc<PktgenShared>,
        lc: &LcoreConfig,
        ports: &[PortInfo],
        pools: &[Mempool],
    ) -> Result<Pktgen, RuntimeError> {
        let cfg = &shared.config;
        let hz = tsc_hz();
        let err = |m: String| RuntimeError::Stack(format!("pktgen: {m}"));
        let mut txs = Vec::new();
        for (gq, q) in shared.tx_queues.iter().enumerate() {
            if q.lcore != lc.id {
                continue;
            }
            let info = &ports[q.port as usize];
            let nq = shared.tx_queues.iter().filter(|o| o.port == q.port).count();
            let idx_on_port = shared.tx_queues[..gq]
                .iter()
                .filter(|o| o.port == q.port)
                .count();
            let count = cfg
                .count
                .map(|c| c / nq as u64 + u64::from((idx_on_port as u64) < c % nq as u64));
            let (source, ids, mean) = match &shared.replay {
                Some(frames) => {
                    let r = cfg
                        .replay
                        .as_ref()
                        .expect("replay frames come from app.replay");
                    let mean = frames.iter().map(|f| f.1.len() as f64 + 4.0).sum::<f64>()
                        / frames.len() as f64;
                    (
                        Source::Replay {
                            frames: frames.clone(),
                            timing: r.timing,
                            loops: r.loops,
                            idx: 0,
                            lap: 0,
                            lap_start: 0,
                        },
                        vec![shared.stream_id(gq, 0)],
                        mean,
                    )
                }
                None => {
                    let mut streams = Vec::new();
                    let mut ids = Vec::new();
                    for (si, s) in cfg.streams.iter().enumerate() {
                        let id = shared.stream_id(gq, si);
                        let mut st =
                            Stream::new(stream_spec(s, id, info.mac.0, cfg.latency), info.mtu)
                                .map_err(|e| err(format!("port {}: {e}", info.name)))?;
                        st.reseed(0x5eed_0000 + id as u64);
                        streams.push(st);
                        ids.push(id);
                    }
                    let mean = streams.iter().map(|s| s.frame_len().mean).sum::<f64>()
                        / streams.len().max(1) as f64;
                    let n = streams.len();
                    (
                        Source::Streams {
                            streams,
                            seq: vec![0; n],
                            fill_rr: 0,
                        },
                        ids,
                        mean,
                    )
                }
            };
            let burst = cfg.burst as usize;
            let mut pacer = Pacer::new(rate_share(cfg.rate, nq), mean, burst, hz)
                .map_err(|e| err(format!("app.rate: {e}")))?;
            // Make up for stalls up to `catch_up` (a preempted lcore on a shared machine) so
            // the long-run rate stays on target.
            if let Some(pps) = pacer.pps() {
                pacer.set_catch_up((pps * cfg.catch_up.as_secs_f64()) as u64);
            }
            txs.push(TxGen {
                port: q.port,
                gq,
                pool: pools[q.port as usize].clone(),
                source,
                ids,
                sent_rr: 0,
                pacer,
                limits: Limits {
                    duration: cfg.duration,
                    count,
                },
                tracker: None,
                pending: Burst::new(),
                burst,
                done: false,
            });
        }
        let rx_ports = lc
            .rx
            .iter()
            .filter_map(|q| ports.iter().find(|p| p.name == q.port).map(|p| p.id))
            .collect::<Vec<_>>();
        let analyzer_cfg = AnalyzerConfig::new(shared.stream_count(), hz);
        let mut rx = Vec::new();
        for &p in &rx_ports {
            if !rx.iter().any(|(q, _)| *q == p) {
                rx.push((
                    p,
                    Analyzer::new(&analyzer_cfg).map_err(|e| err(e.to_string()))?,
                ));
            }
        }
        Ok(Pktgen {
            lcore: lc.id,
            txs,
            rx,
            rx_ports,
            analyzer_cfg,
            dirty: false,
            last_publish: 0,
            publish_every: hz / 10,
            hz,
            nombuf: DropReason::placeholder(),
            nofit: DropReason::placeholder(),
            published: Vec::new(),
            shared,
        })
    }

    /// Copies the analyzers' results into the shared state (reusing its storage).
    fn publish(&mut self) {
        let mut slots = self.shared.rx.lock().unwrap_or_else(|e| e.into_inner());
        if self.published.len() != self.rx.len() {
            self.published.clear();
            for (port, a) in &self.rx {
                self.published.push(slots.len());
                slots.push(RxSlot {
                    lcore: self.lcore,
                    port: *port,
                    stats: a.snapshot(),
                });
            }
        } else {
            for (i, (_, a)) in self.rx.iter().enumerate() {
                a.snapshot_into(&mut slots[self.published[i]].stats);
            }
        }
        self.dirty = false;
    }

    /// Counts `n` packets of `g` as sent: the streams are filled round-robin from `sent_rr`, so
    /// each gets `n / k` and the `n % k` from `sent_rr` on one more. One add per stream per
    /// burst, not per packet.
    #[inline]
    fn count_sent(shared: &PktgenShared, g: &mut TxGen, n: usize) {
        let k = g.ids.len();
        if n == 0 || k == 0 {
            return;
        }
        if k == 1 {
            shared.tx_sent[g.ids[0] as usize].add(n as u64);
            return;
        }
        let (each, extra) = (n / k, n % k);
        for (j, &id) in g.ids.iter().enumerate() {
            // Position of stream j after sent_rr in round-robin order.
            let pos = (j + k - g.sent_rr) % k;
            let c = each + usize::from(pos < extra);
            if c > 0 {
                shared.tx_sent[id as usize].add(c as u64);
            }
        }
        g.sent_rr = (g.sent_rr + n) % k;
    }

    /// One turn of one tx queue.
    #[inline]
    fn generate(&mut self, i: usize, now: u64, io: &mut LcoreIo) {
        let g = &mut self.txs[i];
        if g.done {
            return;
        }
        // What the queue refused last time goes first, before anything new.
        if !g.pending.is_empty() {
            let n = io.try_send_burst(g.port, &mut g.pending);
            Self::count_sent(&self.shared, g, n);
            if !g.pending.is_empty() {
                return;
            }
        }
        let tracker = g
            .tracker
            .get_or_insert_with(|| g.limits.start(now, self.hz));
        let finished_replay =
            matches!(&g.source, Source::Replay { loops, lap, .. } if lap >= loops);
        if tracker.is_done(now) || finished_replay {
            g.done = true;
            self.shared.tx_done[g.gq].store(true, Ordering::Release);
            return;
        }
        let mut n = tracker.cap(g.pacer.allowance(now)).min(g.burst);
        if let Source::Replay {
            frames,
            timing,
            loops,
            idx,
            lap,
            lap_start,
        } = &mut g.source
        {
            // Original or scaled timing: only frames whose time has come.
            let scale = match *timing {
                ReplayTiming::Original => Some(1.0),
                ReplayTiming::Scaled(f) => Some(1.0 / f),
                ReplayTiming::Fast => None,
            };
            if *idx == 0 && *lap < *loops {
                *lap_start = now;
            }
            if let Some(scale) = scale {
                let t0 = frames[0].0;
                let mut k = 0;
                while k < n && *idx + k < frames.len() {
                    let due_ns = (frames[*idx + k].0.saturating_sub(t0)) as f64 * scale;
                    let due = *lap_start + (due_ns * self.hz as f64 / 1e9) as u64;
                    if due > now {
                        break;
                    }
                    k += 1;
                }
                n = k;
            }
            n = n.min(frames.len() - *idx);
        }
        if n == 0 {
            return;
        }
        if !g.pool.alloc_bulk(&mut g.pending, n) {
            io.count_drops(self.nombuf, n as u64);
            return;
        }
        let mut ok = true;
        match &mut g.source {
            Source::Streams {
                streams,
                seq,
                fill_rr,
            } => {
                if let ([stream], [s]) = (&mut streams[..], &mut seq[..]) {
                    // One stream: no round-robin bookkeeping per packet.
                    for m in g.pending.iter_mut() {
                        ok &= stream.fill(m, *s, now);
                        *s += 1;
                    }
                } else {
                    let k = streams.len();
                    for m in g.pending.iter_mut() {
                        ok &= streams[*fill_rr].fill(m, seq[*fill_rr], now);
                        seq[*fill_rr] += 1;
                        *fill_rr += 1;
                        if *fill_rr == k {
                            *fill_rr = 0;
                        }
                    }
                }
            }
            Source::Replay {
                frames, idx, lap, ..
            } => {
                for m in g.pending.iter_mut() {
                    let f = &frames[*idx].1;
                    match m.append(f.len()) {
                        Some(d) => d.copy_from_slice(f),
                        None => ok = false,
                    }
                    *idx += 1;
                }
                if *idx == frames.len() {
                    *idx = 0;
                    *lap += 1;
                }
            }
        }
        g.pacer.sent(n);
        if let Some(t) = &mut g.tracker {
            t.sent(n);
        }
        if !ok {
            // A frame larger than the mbuf's data room: the stream cannot be sent from this
            // pool. Count and drop the whole burst (the sequence numbers show up as loss).
            let len = g.pending.len() as u64;
            crate::mem::free_burst(&mut g.pending);
            io.count_drops(self.nofit, len);
            let k = g.ids.len();
            g.sent_rr = (g.sent_rr + len as usize) % k;
            return;
        }
        let sent = io.try_send_burst(g.port, &mut g.pending);
        Self::count_sent(&self.shared, g, sent);
    }
}

impl Stage for Pktgen {
    fn init(&mut self, io: &mut LcoreIo) {
        self.nombuf = io.drop_reason("pktgen_no_mbuf");
        self.nofit = io.drop_reason("pktgen_frame_too_big");
        self.last_publish = rdtsc();
        let _ = &self.rx_ports;
    }

    #[inline]
    fn process(&mut self, rx_port: u16, pkts: &mut Burst, _io: &mut LcoreIo) {
        let now = rdtsc();
        if let Some((_, a)) = self.rx.iter_mut().find(|(p, _)| *p == rx_port) {
            for m in pkts.iter() {
                a.record(m.data(), now);
            }
            self.dirty = true;
        }
        crate::mem::free_burst(pkts);
    }

    #[inline]
    fn poll(&mut self, io: &mut LcoreIo) {
        let now = rdtsc();
        for i in 0..self.txs.len() {
            self.generate(i, now, io);
        }
        if self.dirty && now.wrapping_sub(self.last_publish) >= self.publish_every {
            self.last_publish = now;
            self.publish();
        }
    }

    fn finish(&mut self, _io: &mut LcoreIo) {
        for g in &mut self.txs {
            // Generated but never taken by the queue: not sent.
            crate::mem::free_burst(&mut g.pending);
            self.shared.tx_done[g.gq].store(true, Ordering::Release);
        }
        let _ = &self.analyzer_cfg;
        self.publish();
    }
}
