//! SACK-based loss recovery (RFC 6675): repairing several holes in one round trip,
//! retransmitting only what was lost, the NewReno fallback without SACK, the timeout
//! clearing the scoreboard, and absurd SACK blocks from a hostile peer.

use std::cell::Cell;
use std::rc::Rc;

use super::transfer::bulk;
use super::*;
use crate::tcp::sim::{LinkConfig, Sim};
use crate::tcp::SEC;
use crate::wire::SackBlocks;

struct Drops {
    sim: Sim,
    elapsed: u64,
    lost_bytes: u64,
    /// When each dropped segment was sent again.
    resent_at: Vec<u64>,
    /// When B first acknowledged everything up to the end of the last hole.
    repaired_at: u64,
}

/// Sends `total` bytes A → B over a clean 20 ms RTT link, dropping the first transmission
/// of the data segments with the given indexes (in MSS-sized segments from the start).
fn transfer_with_drops(cfg: &TcpConfig, total: usize, drop: &[u32], bound: u64) -> Drops {
    let mut sim = Sim::symmetric(7, LinkConfig::default());
    sim.open(cfg, cfg, 4);
    assert!(sim.run_until(SEC, |s| s.hosts[1].conns.len() == 1
        && s.hosts[0].saw(Event::Connected)));
    let base = sim.ra().iss() + 1;
    let mss = sim.ra().mss();
    let targets: Vec<Seq> = drop.iter().map(|&k| base + k * mss).collect();
    let lost = Rc::new(Cell::new(0u64));
    let lost2 = lost.clone();
    let mut done = vec![false; targets.len()];
    sim.filter = Some(Box::new(move |_, from, h, plen| {
        if from == 0 && plen > 0 {
            if let Some(i) = targets.iter().position(|&t| t == h.seq) {
                if !done[i] {
                    done[i] = true;
                    lost2.set(lost2.get() + plen as u64);
                    return false;
                }
            }
        }
        true
    }));
    let data = pattern(total, 99);
    let mut got = Vec::with_capacity(total);
    let (mut sent, mut shut) = (0, false);
    let mut buf = vec![0u8; 64 * 1024];
    let t0 = sim.now;
    let ok = sim.run_until(t0 + bound, |s| {
        let now = s.now;
        let a = s.a();
        sent += a.send(&data[sent..], now);
        if sent == total && !shut {
            a.shutdown_write(now);
            shut = true;
        }
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
    assert!(
        ok,
        "not done: {} of {total}; {:?}",
        got.len(),
        sim.ra().stats()
    );
    assert_eq!(digest(&got), digest(&data));
    let elapsed = sim.now - t0;
    let targets: Vec<Seq> = drop.iter().map(|&k| base + k * mss).collect();
    // Recovery is over when B acknowledges past the last hole.
    let last_hole_end = targets.iter().fold(base, |m, &t| m.max(t)) + mss;
    let repaired_at = sim
        .sent_by(1)
        .find(|r| r.header.ack.ge(last_hole_end))
        .map(|r| r.time)
        .expect("holes repaired");
    let resent_at = sim
        .sent_by(0)
        .filter(|r| r.payload_len > 0 && targets.contains(&r.header.seq))
        .filter(|r| r.fate == crate::tcp::sim::Fate::Sent)
        .map(|r| r.time)
        .collect();
    Drops {
        sim,
        elapsed,
        repaired_at,
        lost_bytes: lost.get(),
        resent_at,
    }
}

const RTT: u64 = 20 * MS;

#[test]
fn several_losses_in_one_window_repaired_in_one_round_trip() {
    let drop = [40, 43, 46, 50, 53];
    let sack_cfg = TcpConfig::default();
    let mut s = transfer_with_drops(&sack_cfg, 300_000, &drop, 2 * SEC);
    let a = *s.sim.a().stats();
    assert!(s.sim.a().sack_enabled());
    assert_eq!(s.lost_bytes, 5 * 1448);
    // One recovery, no timeout, and only the lost segments went again.
    assert_eq!((a.sack_recoveries, a.fast_retransmits), (1, 1), "{a:?}");
    assert_eq!(a.rto_expirations, 0);
    assert_eq!(a.retransmits, 5);
    assert_eq!(a.bytes_retransmitted, s.lost_bytes);
    // All five holes were resent within one round trip.
    assert_eq!(s.resent_at.len(), 5);
    let span = s.resent_at[4] - s.resent_at[0];
    assert!(span < RTT, "SACK repairs took {} ms", span / MS);
    assert_eq!(s.sim.a().sacked_bytes(), 0);

    // The same losses without SACK: NewReno repairs one hole per round trip.
    let plain = TcpConfig {
        sack: false,
        ..TcpConfig::default()
    };
    let mut n = transfer_with_drops(&plain, 300_000, &drop, 2 * SEC);
    let b = *n.sim.a().stats();
    assert!(!n.sim.a().sack_enabled());
    assert_eq!((b.sack_recoveries, b.fast_retransmits), (0, 1), "{b:?}");
    assert_eq!(b.rto_expirations, 0);
    assert_eq!(n.resent_at.len(), 5);
    let span_nr = n.resent_at[4] - n.resent_at[0];
    assert!(
        span_nr >= 4 * RTT,
        "NewReno repairs took {} ms",
        span_nr / MS
    );
    // Recovery (first retransmission to the ACK covering every hole): about one round trip
    // with SACK, one per hole with NewReno; the whole transfer finishes earlier too.
    let rec_sack = s.repaired_at - s.resent_at[0];
    let rec_nr = n.repaired_at - n.resent_at[0];
    assert!(rec_sack < 2 * RTT, "SACK recovery {} ms", rec_sack / MS);
    assert!(rec_nr >= 4 * RTT, "NewReno recovery {} ms", rec_nr / MS);
    assert!(s.elapsed < n.elapsed);
    eprintln!(
        "5 losses: SACK {} ms (recovery {} ms, {} B resent), NewReno {} ms (recovery {} ms, {} B resent)",
        s.elapsed / MS,
        rec_sack / MS,
        a.bytes_retransmitted,
        n.elapsed / MS,
        rec_nr / MS,
        b.bytes_retransmitted
    );
}

/// Limited transmit (RFC 3042, RFC 5681 §3.2): with a window of three segments and the
/// first one lost, the two ACKs for the others each release one new segment, so enough is
/// SACKed above the hole to retransmit it within a few round trips instead of waiting for
/// the retransmission timeout (200 ms here). Under heavy loss (the netem interop test) small
/// windows are the common case.
#[test]
fn limited_transmit_repairs_a_loss_in_a_small_window_without_a_timeout() {
    let cfg = TcpConfig {
        initial_window_segments: 3,
        ..TcpConfig::default()
    };
    let r = transfer_with_drops(&cfg, 20 * 1448, &[0], 5 * SEC);
    let a = *r.sim.ra().stats();
    assert_eq!(a.rto_expirations, 0, "{a:?}");
    assert_eq!(a.fast_retransmits, 1, "{a:?}");
    assert_eq!(r.lost_bytes, 1448);
    let first = r.sim.sent_by(0).find(|x| x.payload_len > 0).unwrap().time;
    assert!(
        r.resent_at[0] - first < 4 * RTT,
        "resent {} ms after the first send",
        (r.resent_at[0] - first) / MS
    );
    // Without SACK the two duplicate ACKs release new data too, and their duplicate ACKs
    // make the third.
    let no_sack = TcpConfig { sack: false, ..cfg };
    let r = transfer_with_drops(&no_sack, 20 * 1448, &[0], 5 * SEC);
    let a = *r.sim.ra().stats();
    assert_eq!(a.rto_expirations, 0, "{a:?}");
    assert_eq!(a.fast_retransmits, 1, "{a:?}");
}

#[test]
fn bulk_with_every_impairment_and_sack() {
    let link = LinkConfig {
        loss: 0.02,
        reorder: 0.02,
        duplicate: 0.02,
        corrupt: 0.01,
        ..LinkConfig::default()
    };
    let cfg = TcpConfig::default();
    for seed in [301, 302, 303] {
        let mut r = bulk(seed, link, 1 << 20, &cfg, &cfg, 5 * SEC);
        let a = *r.sim.a().stats();
        assert!(a.sack_recoveries > 0, "{a:?}");
        // B is done when it has read the FIN; A's scoreboard empties once the last ACK
        // reaches it (it may still be on the way, or lost and the FIN resent).
        let t = r.sim.now;
        assert!(r
            .sim
            .run_until(t + 5 * SEC, |s| s.ra().bytes_in_flight() == 0));
        assert!(r.sim.a().sack_scoreboard_len() == 0);
        eprintln!("seed {seed}: {} ms, {a:?}", r.elapsed / MS);
    }
}

fn sack_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        ..Default::default()
    }
}

fn with_sack<'a>(seg: TcpSegment<'a>, blocks: &[(Seq, Seq)]) -> TcpSegment<'a> {
    let mut seg = seg;
    let raw: Vec<(u32, u32)> = blocks.iter().map(|b| (b.0 .0, b.1 .0)).collect();
    seg.header.options.sack_blocks = SackBlocks::from_slice(&raw).expect("at most four");
    seg
}

/// An established SACK connection with ten full segments (14 600 bytes) in flight.
fn ten_in_flight() -> (Connection, Peer, Vec<Owned>) {
    let (mut a, p) = established(&TcpConfig::default(), sack_peer());
    assert!(a.sack_enabled());
    assert_eq!(a.send(&pattern(100_000, 3), 2 * MS), 100_000);
    let out = drain(&mut a, 2 * MS);
    assert_eq!(out.len(), 10);
    (a, p, out)
}

#[test]
fn absurd_sack_blocks_cannot_corrupt_state() {
    let (mut a, p, out) = ten_in_flight();
    let una = out[0].header.seq;
    let max = una + 14_600;
    let blocks = [
        (una + 1000, max + 5000),        // beyond SND.MAX
        (una + 5000, una + 1000),        // inverted
        (una + 1, una + 0x8000_0004),    // wider than half the space
        (una - 0x7000_0000, una + 1460), // left edge absurdly far below SND.UNA
    ];
    a.on_segment(&with_sack(p.ack_seg(), &blocks), 3 * MS);
    assert_eq!(a.stats().sack_blocks_rejected, 4);
    assert_eq!(a.sacked_bytes(), 0);
    // Old (D-SACK) blocks are ignored without complaint; overlapping ones merge.
    let blocks = [
        (una - 3000, una - 10),
        (una + 1460, una + 4380),
        (una + 2920, una + 5840),
    ];
    a.on_segment(&with_sack(p.ack_seg(), &blocks), 4 * MS);
    assert_eq!(a.stats().sack_blocks_rejected, 4);
    assert_eq!(a.sacked_bytes(), 4380);
    assert_eq!(a.state(), State::Established);
    // Hundreds of disjoint one-byte blocks: the scoreboard stays bounded.
    for i in 0..300u32 {
        let b: Vec<(Seq, Seq)> = (0..4)
            .map(|j| {
                let at = una + 6000 + (i * 4 + j) * 7 % 8000;
                (at, at + 1)
            })
            .collect();
        a.on_segment(&with_sack(p.ack_seg(), &b), 5 * MS);
        assert!(a.sack_scoreboard_len() <= 32);
        let out = drain(&mut a, 5 * MS);
        assert!(out.len() <= 12);
        assert!(out
            .iter()
            .all(|o| o.header.seq.ge(una) && o.payload.len() <= 1460));
    }
    assert!(a.sacked_bytes() <= 14_600);
    assert!(a.pipe() <= 2 * 14_600);
    // A full cumulative ACK clears it all and the transfer goes on.
    let mut q = p.clone();
    q.ack = max;
    a.on_segment(&q.ack_seg(), 6 * MS);
    assert_eq!((a.sacked_bytes(), a.sack_scoreboard_len()), (0, 0));
    assert!(!a.in_recovery());
    assert!(!drain(&mut a, 6 * MS).is_empty());
    // Without SACK negotiated, blocks are ignored.
    let (mut b, p) = established(&TcpConfig::default(), plain_peer());
    b.send(&[7; 5000], 2 * MS);
    let o = drain(&mut b, 2 * MS);
    let u = o[0].header.seq;
    b.on_segment(&with_sack(p.ack_seg(), &[(u + 1460, u + 2920)]), 3 * MS);
    assert_eq!((b.sacked_bytes(), b.stats().sack_blocks_rejected), (0, 0));
}

#[test]
fn sack_recovery_by_hand_and_timeout_clears_the_scoreboard() {
    let (mut a, p, out) = ten_in_flight();
    let una = out[0].header.seq;
    let seg = |k: u32| una + k * 1460;
    // Segments 0 and 2 lost; 1 and 3..6 arrive: SACKs for them.
    a.on_segment(&with_sack(p.ack_seg(), &[(seg(1), seg(2))]), 22 * MS);
    assert!(!a.in_recovery());
    a.on_segment(
        &with_sack(p.ack_seg(), &[(seg(3), seg(5)), (seg(1), seg(2))]),
        22 * MS,
    );
    // Three segments SACKed above SND.UNA: IsLost(SND.UNA) before three duplicate ACKs.
    assert!(a.in_recovery());
    assert_eq!(a.stats().sack_recoveries, 1);
    assert_eq!(a.ssthresh(), 7300); // flight 14 600 / 2
    let out = drain(&mut a, 22 * MS);
    // Only segment 0 goes: the pipe is its retransmission, hole 2 (two segments SACKed
    // above it: not lost yet) and segments 5..10, 10 220 bytes against a 7 300-byte cwnd.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].header.seq, out[0].payload.len()), (seg(0), 1460));
    assert_eq!(a.pipe(), 10_220);
    // Segments 5 and 6 arrive: hole 2 is now lost (three segments above it) and the pipe
    // falls to 1460 (segment 0 again) + 3·1460 (7..10) = 5840: room for one segment, and
    // rule 1 picks hole 2.
    a.on_segment(
        &with_sack(p.ack_seg(), &[(seg(3), seg(7)), (seg(1), seg(2))]),
        23 * MS,
    );
    assert_eq!(a.pipe(), 5840);
    let out = drain(&mut a, 23 * MS);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].header.seq, seg(2));
    assert_eq!(a.pipe(), 7300);
    assert_eq!(a.stats().bytes_retransmitted, 2 * 1460);
    // A timeout clears the scoreboard (RFC 6675 §5.1) and goes back to SND.UNA.
    let rto_at = a.next_timer().expect("rto");
    a.on_timer(rto_at);
    assert_eq!(a.stats().rto_expirations, 1);
    assert_eq!((a.sacked_bytes(), a.sack_scoreboard_len()), (0, 0));
    assert!(!a.in_recovery());
    assert_eq!(a.cwnd(), 1460);
    let out = drain(&mut a, rto_at);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.seq, seg(0));
    // New SACK information after the timeout lets go-back-N skip what arrived.
    let mut q = p.clone();
    q.ack = seg(1);
    a.on_segment(
        &with_sack(q.ack_seg(), &[(seg(3), seg(6))]),
        rto_at + 20 * MS,
    );
    let out = drain(&mut a, rto_at + 20 * MS);
    let seqs: Vec<Seq> = out.iter().map(|o| o.header.seq).collect();
    assert_eq!(seqs.first(), Some(&seg(1)), "{seqs:?}");
    assert!(!seqs.contains(&seg(3)) && !seqs.contains(&seg(4)) && !seqs.contains(&seg(5)));
}

#[test]
fn rescue_retransmission_repairs_a_lost_tail() {
    // Ten segments and nothing more to send; the first and the last are lost.
    let (mut a, p) = established(&TcpConfig::default(), sack_peer());
    assert_eq!(a.send(&pattern(14_600, 4), 2 * MS), 14_600);
    let out = drain(&mut a, 2 * MS);
    assert_eq!(out.len(), 10);
    let una = out[0].header.seq;
    let seg = |k: u32| una + k * 1460;
    let mut rtx = Vec::new();
    for k in 2..=9 {
        // Segments 1..k arrived (k - 1 of them): the peer SACKs them.
        a.on_segment(&with_sack(p.ack_seg(), &[(seg(1), seg(k))]), 22 * MS);
        rtx.extend(drain(&mut a, 22 * MS).into_iter().map(|o| o.header.seq));
    }
    assert!(a.in_recovery());
    // Segment 0 (rule 1 on entry), then, with no new data and no hole left below the
    // highest SACK, the rescue retransmission of the tail (rule 4), once.
    assert_eq!(rtx, [seg(0), seg(9)]);
    assert_eq!(a.stats().bytes_retransmitted, 2 * 1460);
    // Both arrive: everything is acknowledged without a timeout.
    let mut q = p.clone();
    q.ack = seg(10);
    a.on_segment(&q.ack_seg(), 42 * MS);
    assert!(!a.in_recovery());
    assert_eq!(a.bytes_in_flight(), 0);
    assert_eq!(a.stats().rto_expirations, 0);
    assert_eq!(a.next_timer(), None);
}

#[test]
fn random_acks_and_sack_blocks_keep_the_invariants() {
    use crate::tcp::sim::XorShift;
    let mut rng = XorShift::new(77);
    let (mut recoveries, mut rejected, mut rtos) = (0, 0, 0);
    for round in 0..20 {
        let (mut a, p) = established(&TcpConfig::default(), sack_peer());
        let mut now = 2 * MS;
        let data = pattern(400_000, round);
        let mut sent = a.send(&data, now);
        for _ in 0..3000 {
            now += rng.below(3 * MS);
            sent += a.send(&data[sent.min(data.len())..], now);
            let out = drain(&mut a, now);
            assert!(out.len() <= 200, "{}", out.len());
            if a.state() != State::Established {
                break;
            }
            // ACK somewhere around the flight: mostly valid, sometimes absurd.
            let flight = a.bytes_in_flight().max(1);
            let lo = out.first().map_or(p.ack, |o| o.header.seq);
            let mut q = p.clone();
            q.ack = match rng.below(10) {
                0 => Seq(rng.next_u64() as u32),
                1..=6 => lo,
                _ => lo + rng.below(flight as u64 + 1) as u32,
            };
            q.window = rng.below(65536) as u16;
            let n = rng.below(5) as usize;
            let blocks: Vec<(Seq, Seq)> = (0..n)
                .map(|_| {
                    let l = q.ack + (rng.below(2 * flight as u64 + 10) as u32).wrapping_sub(5);
                    let len = if rng.chance(0.1) {
                        rng.next_u64() as u32
                    } else {
                        rng.below(4 * 1460) as u32
                    };
                    (l, l + len)
                })
                .take(4)
                .collect();
            a.on_segment(&with_sack(q.ack_seg(), &blocks), now);
            assert!(a.sack_scoreboard_len() <= 32);
            assert!(a.sacked_bytes() <= a.bytes_in_flight());
            assert!(a.pipe() <= 2 * a.bytes_in_flight());
            if rng.chance(0.01) {
                now += SEC; // silence: the retransmission timer fires
            }
            if let Some(t) = a.next_timer() {
                if t <= now {
                    let before = a.stats().rto_expirations;
                    a.on_timer(now);
                    if a.stats().rto_expirations > before {
                        assert_eq!(a.sacked_bytes(), 0);
                    }
                }
            }
        }
        recoveries += a.stats().sack_recoveries;
        rejected += a.stats().sack_blocks_rejected;
        rtos += a.stats().rto_expirations;
    }
    // The input exercised recovery, timeouts and the block validation.
    assert!(
        recoveries > 20 && rejected > 100 && rtos > 0,
        "{recoveries} {rejected} {rtos}"
    );
}
