//! Data transfer: bulk transfers over impaired links (bytes compared by hash, time
//! bounded), window scaling, out-of-order data and SACK blocks, receive-window rules, the
//! zero-copy receive API, backpressure.

use super::*;
use crate::tcp::sim::{LinkConfig, Sim};
use crate::tcp::SEC;

pub(super) struct Bulk {
    pub sim: Sim,
    pub elapsed: u64,
    max_in_flight: u32,
}

/// Sends `total` bytes from A to B, then FIN; returns once B has read everything and the
/// FIN. Panics unless it completes within `bound` of virtual time with identical bytes.
pub(super) fn bulk(
    seed: u64,
    link: LinkConfig,
    total: usize,
    client: &TcpConfig,
    server: &TcpConfig,
    bound: u64,
) -> Bulk {
    let mut sim = Sim::symmetric(seed, link);
    sim.open(client, server, 4);
    assert!(sim.run_until(5 * SEC, |s| s.hosts[1].conns.len() == 1
        && s.hosts[0].saw(Event::Connected)));
    let data = pattern(total, seed);
    let mut got = Vec::with_capacity(total);
    let mut sent = 0;
    let mut shut = false;
    let mut max_in_flight = 0;
    let t0 = sim.now;
    let mut buf = vec![0u8; 64 * 1024];
    let done = sim.run_until(t0 + bound, |s| {
        let now = s.now;
        let a = s.a();
        sent += a.send(&data[sent..], now);
        if sent == total && !shut {
            a.shutdown_write(now);
            shut = true;
        }
        max_in_flight = max_in_flight.max(a.bytes_in_flight());
        let b = s.b();
        loop {
            let n = b.recv(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        b.is_read_closed()
    });
    let elapsed = sim.now - t0;
    assert!(
        done,
        "not done in {bound} ns: {} of {total} bytes; {:?} {:?} {:?}",
        got.len(),
        sim.hosts[0].conns[0],
        sim.hosts[0].conns[0].stats(),
        sim.links[0].stats
    );
    assert_eq!(got.len(), total);
    assert_eq!(digest(&got), digest(&data), "bytes differ");
    Bulk {
        sim,
        elapsed,
        max_in_flight,
    }
}

const MB: usize = 1 << 20;

#[test]
fn bulk_megabyte_clean_link() {
    let cfg = TcpConfig::default();
    let mut r = bulk(100, LinkConfig::default(), MB, &cfg, &cfg, 250 * MS);
    let a = *r.sim.a().stats();
    assert_eq!(a.retransmits, 0);
    assert_eq!(r.sim.b().stats().ooo_segments, 0);
    assert_eq!(r.sim.b().stats().bytes_in, MB as u64);
    // Segmentation: no segment exceeds the MSS (1448 with timestamps) and nearly all are
    // full; a few short ones go when the application's writes leave a small tail and no
    // small segment is outstanding (Minshall's Nagle).
    let sizes: Vec<_> = r
        .sim
        .sent_by(0)
        .filter(|x| x.payload_len > 0)
        .map(|x| x.payload_len)
        .collect();
    assert!(sizes.iter().all(|&n| n <= 1448));
    assert_eq!(sizes.iter().sum::<usize>(), MB);
    let short = sizes.iter().filter(|&&n| n < 1448).count();
    assert!(short <= 5, "{short} short segments");
    // Delayed ACKs: about one ACK per two segments once quick-ack is over.
    let acks = r.sim.sent_by(1).filter(|x| x.payload_len == 0).count();
    assert!(
        acks < sizes.len() * 6 / 10,
        "{acks} ACKs for {} segments",
        sizes.len()
    );
    assert!(r.max_in_flight <= 256 * 1024);
    eprintln!("clean: {} ms", r.elapsed / MS);
}

#[test]
fn bulk_megabyte_one_percent_loss() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        loss: 0.01,
        ..LinkConfig::default()
    };
    let mut r = bulk(101, link, MB, &cfg, &cfg, SEC);
    let a = *r.sim.a().stats();
    assert!(a.retransmits > 0 && a.fast_retransmits > 0, "{a:?}");
    assert!(r.sim.links[0].stats.lost > 0);
    // The receiver reported the holes with SACK blocks.
    assert!(r
        .sim
        .sent_by(1)
        .any(|x| !x.header.options.sack_blocks.as_slice().is_empty()));
    assert!(r.sim.b().stats().ooo_segments > 0);
    eprintln!("1% loss: {} ms, {a:?}", r.elapsed / MS);
}

#[test]
fn bulk_megabyte_five_percent_loss() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        loss: 0.05,
        ..LinkConfig::default()
    };
    let mut r = bulk(102, link, MB, &cfg, &cfg, 10 * SEC);
    let a = *r.sim.a().stats();
    assert!(a.fast_retransmits > 0 && a.retransmits > 20, "{a:?}");
    eprintln!("5% loss: {} ms, {a:?}", r.elapsed / MS);
}

#[test]
fn bulk_megabyte_reordering() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        reorder: 0.05,
        reorder_delay: 3 * MS,
        ..LinkConfig::default()
    };
    let mut r = bulk(103, link, MB, &cfg, &cfg, 4 * SEC);
    assert!(r.sim.links[0].stats.reordered > 0);
    assert!(r.sim.b().stats().ooo_segments > 0);
    // Without reordering detection (RACK, DSACK undo: next slice) each displaced segment
    // looks lost after three duplicate ACKs, so NewReno halves its window needlessly.
    eprintln!(
        "reordering: {} ms, {:?}",
        r.elapsed / MS,
        r.sim.ra().stats()
    );
}

#[test]
fn bulk_megabyte_duplication() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    let mut r = bulk(104, link, MB, &cfg, &cfg, 250 * MS);
    assert!(r.sim.links[0].stats.duplicated > 20);
    // Duplicates are old data: answered with ACKs, never delivered twice.
    assert!(r.sim.b().stats().out_of_window > 0);
    assert_eq!(r.sim.b().stats().bytes_in, MB as u64);
    eprintln!("duplication: {} ms", r.elapsed / MS);
}

#[test]
fn bulk_megabyte_corruption() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        corrupt: 0.02,
        ..LinkConfig::default()
    };
    let r = bulk(105, link, MB, &cfg, &cfg, 3 * SEC);
    // Every corrupted segment failed its checksum and was dropped before the engine.
    let l = r.sim.links[0].stats;
    assert!(l.corrupted > 5);
    assert_eq!(l.checksum_drops, l.corrupted);
    eprintln!(
        "corruption: {} ms, {:?}",
        r.elapsed / MS,
        r.sim.ra().stats()
    );
}

#[test]
fn bulk_megabyte_everything_at_once_without_sack_and_timestamps() {
    let cfg = TcpConfig {
        sack: false,
        timestamps: false,
        ..TcpConfig::default()
    };
    let link = LinkConfig {
        loss: 0.02,
        reorder: 0.02,
        duplicate: 0.02,
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let mut r = bulk(106, link, MB, &cfg, &cfg, 5 * SEC);
    assert!(r
        .sim
        .trace
        .iter()
        .all(|x| x.header.options.sack_blocks.as_slice().is_empty()
            && x.header.options.timestamps.is_none()));
    eprintln!(
        "all impairments: {} ms, {:?}",
        r.elapsed / MS,
        r.sim.a().stats()
    );
}

#[test]
fn window_scaling_with_a_one_megabyte_window() {
    let big = TcpConfig {
        send_buffer: MB,
        recv_buffer: MB,
        ..TcpConfig::default()
    };
    let link = LinkConfig {
        delay: 50 * MS, // RTT 100 ms, bandwidth-delay product 1.25 MB
        queue_bytes: 4 * MB,
        ..LinkConfig::default()
    };
    let mut r = bulk(107, link, 4 * MB, &big, &big, 3 * SEC);
    // Shift 5: 1 MiB >> 5 = 32768 fits the 16-bit field.
    let synack = r.sim.sent_by(1).next().unwrap().header;
    assert_eq!(synack.options.wscale, Some(5));
    assert_eq!(r.sim.a().window_scales(), (5, 5));
    assert!(r.max_in_flight > 512 * 1024, "{}", r.max_in_flight);
    let scaled = r.elapsed;
    // The same without scaling on the server: 64 KiB per round trip at most.
    let unscaled = TcpConfig {
        window_scaling: false,
        ..big
    };
    let mut r2 = bulk(107, link, 4 * MB, &big, &unscaled, 20 * SEC);
    assert_eq!(r2.sim.a().window_scales(), (0, 0));
    assert!(r2.max_in_flight <= 65535);
    assert!(r2.elapsed > 3 * scaled, "{} vs {}", r2.elapsed, scaled);
    eprintln!(
        "1 MB window: {} ms; 64 KB window: {} ms",
        scaled / MS,
        r2.elapsed / MS
    );
}

fn sack_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        ..Default::default()
    }
}

#[test]
fn out_of_order_data_and_sack_blocks() {
    let (mut a, p) = established(&TcpConfig::default(), sack_peer());
    assert!(a.sack_enabled() && !a.timestamps_enabled());
    let data = pattern(1200, 9);
    let base = p.seq;
    let send = |a: &mut Connection, at: usize, now: u64| -> Vec<(u32, u32)> {
        let mut q = p.clone();
        q.seq = base + at as u32;
        a.on_segment(&q.seg(TcpFlags::ACK, &data[at..at + 100]), now);
        let out = drain(a, now);
        assert_eq!(out.len(), 1, "an immediate ACK");
        out[0]
            .header
            .options
            .sack_blocks
            .as_slice()
            .iter()
            .map(|&(l, r)| (l.wrapping_sub(base.0), r.wrapping_sub(base.0)))
            .collect()
    };
    assert_eq!(send(&mut a, 0, 2 * MS), []);
    assert_eq!(send(&mut a, 200, 3 * MS), [(200, 300)]);
    assert_eq!(send(&mut a, 400, 4 * MS), [(400, 500), (200, 300)]);
    assert_eq!(
        send(&mut a, 600, 5 * MS),
        [(600, 700), (400, 500), (200, 300)]
    );
    assert_eq!(
        send(&mut a, 800, 6 * MS),
        [(800, 900), (600, 700), (400, 500), (200, 300)]
    );
    // Five ranges: the four most recent are reported (no timestamps: room for four).
    assert_eq!(
        send(&mut a, 1000, 7 * MS),
        [(1000, 1100), (800, 900), (600, 700), (400, 500)]
    );
    // Joining two old ranges makes the merged range the first block.
    assert_eq!(
        send(&mut a, 300, 8 * MS),
        [(200, 500), (1000, 1100), (800, 900), (600, 700)]
    );
    assert_eq!(a.recv_available(), 100);
    assert_eq!(a.recv_ooo_bytes(), 600);
    // Filling the first hole delivers up to the next one.
    assert_eq!(
        send(&mut a, 100, 9 * MS),
        [(1000, 1100), (800, 900), (600, 700)]
    );
    assert_eq!(a.recv_available(), 500);
    let mut buf = vec![0u8; 2000];
    let n = a.recv(&mut buf);
    assert_eq!(&buf[..n], &data[..500]);
    assert_eq!(a.stats().ooo_segments, 6);
}

#[test]
fn an_out_of_order_fin_waits_for_the_gap() {
    let (mut a, p) = established(&TcpConfig::default(), sack_peer());
    let mut q = p.clone();
    q.seq = p.seq + 5;
    a.on_segment(&q.seg(TcpFlags::ACK | TcpFlags::FIN, b"world"), 2 * MS);
    assert_eq!(a.state(), State::Established);
    assert!(!a.is_read_closed());
    a.on_segment(&p.seg(TcpFlags::ACK, b"hello"), 3 * MS);
    assert_eq!(a.state(), State::CloseWait);
    assert!(a.is_read_closed());
    let out = drain(&mut a, 3 * MS);
    assert_eq!(out.last().unwrap().header.ack, p.seq + 11);
    let mut buf = [0u8; 16];
    let n = a.recv(&mut buf);
    assert_eq!(&buf[..n], b"helloworld");
    assert_eq!(events(&mut a), [Event::Readable, Event::PeerClosed]);
}

#[test]
fn receive_window_avoids_silly_updates_and_never_shrinks() {
    let cfg = TcpConfig {
        recv_buffer: 10_000,
        quickack_segments: 100,
        ..TcpConfig::default()
    };
    let (mut a, mut p) = established(&cfg, plain_peer());
    let data = pattern(9_000, 4);
    let edge = p.seq + 10_000;
    let mut last_window = 0;
    for chunk in data.chunks(1000) {
        a.on_segment(&p.seg(TcpFlags::ACK, chunk), 2 * MS);
        p.seq += chunk.len() as u32;
        let out = drain(&mut a, 2 * MS);
        last_window = out.last().unwrap().header.window;
        // The right edge stays put while the application does not read.
        assert_eq!(p.seq + last_window as u32, edge);
    }
    assert_eq!(last_window, 1000);
    // Reading 100 bytes frees too little to announce (less than min(buffer/2, MSS)).
    let mut buf = vec![0u8; 10_000];
    assert_eq!(a.recv(&mut buf[..100]), 100);
    assert!(drain(&mut a, 3 * MS).is_empty());
    // A segment now still sees the old right edge: no 100-byte window increase.
    a.on_segment(&p.seg(TcpFlags::ACK, &[0u8; 500]), 4 * MS);
    let out = drain(&mut a, 4 * MS);
    assert_eq!(out[0].header.window, 500);
    // Reading most of it: the window may more than double, so an update goes out at once.
    assert_eq!(a.recv(&mut buf), 9400);
    let out = drain(&mut a, 5 * MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.window, 10_000);
    assert!(out[0].payload.is_empty());
}

#[test]
fn zero_copy_receive_and_backpressure() {
    let client = TcpConfig {
        send_buffer: 4096,
        ..TcpConfig::default()
    };
    let server = TcpConfig {
        recv_buffer: 3000,
        ..TcpConfig::default()
    };
    let mut sim = Sim::symmetric(108, LinkConfig::default());
    sim.open(&client, &server, 4);
    sim.run_to(100 * MS);
    let data = pattern(10_000, 5);
    let now = sim.now;
    // Backpressure: only what fits in the send ring is taken.
    assert_eq!(sim.a().send(&data, now), 4096);
    assert_eq!(sim.a().send_capacity(), 0);
    let mut got = Vec::new();
    let mut sent = 4096;
    let mut wraps = 0;
    assert!(sim.run_until(10 * SEC, |s| {
        let now = s.now;
        if s.hosts[0].events.iter().any(|e| e.2 == Event::Writable) {
            sent += s.a().send(&data[sent..], now);
            s.hosts[0].events.retain(|e| e.2 != Event::Writable);
        }
        let b = s.b();
        let [x, y] = b.recv_peek();
        if !y.is_empty() {
            wraps += 1;
        }
        got.extend_from_slice(x);
        got.extend_from_slice(y);
        let n = x.len() + y.len();
        b.recv_consume(n);
        got.len() == data.len()
    }));
    assert_eq!(got, data);
    assert!(wraps > 0, "the receive ring wrapped");
    assert_eq!(sent, data.len());
}

fn cubic() -> TcpConfig {
    TcpConfig {
        congestion: crate::tcp::CongestionAlgorithm::Cubic,
        ..TcpConfig::default()
    }
}

#[test]
fn cubic_bulk_with_loss() {
    let cfg = cubic();
    let link = LinkConfig {
        loss: 0.01,
        ..LinkConfig::default()
    };
    let mut r = bulk(201, link, 2 * MB, &cfg, &cfg, 3 * SEC);
    assert_eq!(
        r.sim.a().congestion_algorithm(),
        crate::tcp::CongestionAlgorithm::Cubic
    );
    let a = *r.sim.a().stats();
    assert!(a.fast_retransmits > 0, "{a:?}");
    // β = 0.7: after the last loss ssthresh is 0.7 of a flight, not half of it.
    assert!(r.sim.a().ssthresh() < u32::MAX);
    eprintln!("cubic 1% loss: {} ms, {a:?}", r.elapsed / MS);
}

#[test]
fn cubic_bulk_with_every_impairment() {
    let cfg = cubic();
    let link = LinkConfig {
        loss: 0.02,
        reorder: 0.02,
        duplicate: 0.02,
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let r = bulk(202, link, MB, &cfg, &cfg, 5 * SEC);
    eprintln!(
        "cubic all impairments: {} ms, {:?}",
        r.elapsed / MS,
        r.sim.ra().stats()
    );
    let no_ts = TcpConfig {
        sack: false,
        timestamps: false,
        ..cubic()
    };
    let r = bulk(203, link, MB, &no_ts, &no_ts, 10 * SEC);
    eprintln!(
        "cubic, no SACK/TS: {} ms, {:?}",
        r.elapsed / MS,
        r.sim.ra().stats()
    );
}
