//! Timers: retransmission timeout (initial value, doubling, Karn), fast retransmit, the
//! persist timer, delayed ACKs, Nagle, keepalive.

use super::*;
use crate::tcp::sim::{Fate, LinkConfig, Sim};
use crate::tcp::{Keepalive, SEC};

fn open_pair(seed: u64, client: &TcpConfig, server: &TcpConfig, link: LinkConfig) -> Sim {
    let mut sim = Sim::symmetric(seed, link);
    sim.open(client, server, 4);
    assert!(sim.run_until(SEC, |s| s.hosts[1].conns.len() == 1
        && s.hosts[0].saw(Event::Connected)
        && s.hosts[1].saw(Event::Connected)));
    sim
}

#[test]
fn syn_retransmissions_double_from_one_second() {
    let cfg = TcpConfig::default();
    let mut sim = Sim::symmetric(20, LinkConfig::default());
    sim.hosts[1].stray_resets = false; // a black hole
    sim.hosts[0]
        .conns
        .push(Connection::connect(&cfg, &isn(), addr_a(), addr_b(), 0));
    sim.run_to(200 * SEC);
    let syns: Vec<_> = sim.sent_by(0).map(|r| r.time / SEC).collect();
    // Initial RTO 1 s, doubled each time; six retries (tcp_syn_retries).
    assert_eq!(syns, [0, 1, 3, 7, 15, 31, 63]);
    assert!(sim
        .sent_by(0)
        .all(|r| r.header.flags == TcpFlags::SYN && r.header.seq == sim.hosts[0].conns[0].iss()));
    assert_eq!(sim.a().state(), State::Closed);
    // The last wait is capped by rto_max (60 s): 63 + 60.
    assert_eq!(
        sim.hosts[0].events.last().map(|e| (e.0, e.2)),
        Some((123 * SEC, Event::TimedOut))
    );
}

#[test]
fn lost_syn_means_a_one_segment_initial_window_and_three_second_rto() {
    let cfg = TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    };
    let mut sim = Sim::symmetric(21, LinkConfig::default());
    let mut first = true;
    sim.filter = Some(Box::new(move |_, from, h, _| {
        let drop = from == 0 && h.flags == TcpFlags::SYN && first;
        first &= !drop;
        !drop
    }));
    sim.open(&cfg, &cfg, 4);
    sim.run_to(SEC + 50 * MS);
    assert_eq!(sim.a().state(), State::Established);
    // RFC 6928 §2 and RFC 6298 §5.7: no RTT sample (Karn), so RTO = 3 s; cwnd = 1 MSS.
    assert_eq!(sim.a().srtt(), None);
    assert_eq!(sim.a().rto(), 3 * SEC);
    assert_eq!(sim.a().cwnd(), sim.a().mss());
}

#[test]
fn data_rto_doubles_and_karn_ignores_retransmitted_samples() {
    // Without timestamps, so Karn's rule is what protects the estimator.
    let cfg = TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    };
    let mut sim = open_pair(22, &cfg, &cfg, LinkConfig::default());
    // Handshake RTT sample: 20 ms + serialization; RTO = max(200 ms, 3·RTT) = 200 ms.
    let srtt = sim.a().srtt().unwrap();
    assert!(srtt > 20 * MS && srtt < 21 * MS, "{srtt}");
    assert_eq!(sim.a().rto(), 200 * MS);
    // A's data is lost until 1.3 s after it was first sent.
    let t0 = sim.now;
    sim.filter = Some(Box::new(move |now, from, _, len| {
        !(from == 0 && len > 0 && now < t0 + 1300 * MS)
    }));
    sim.a().send(b"0123456789", t0);
    sim.run_to(t0 + 1350 * MS);
    let data: Vec<_> = sim
        .sent_by(0)
        .filter(|r| r.payload_len > 0)
        .map(|r| (r.time - t0, r.fate))
        .collect();
    // Sent at 0, retransmitted 200, 400 and 800 ms apart (the last one gets through).
    assert_eq!(
        data,
        [
            (0, Fate::Filtered),
            (200 * MS, Fate::Filtered),
            (600 * MS, Fate::Filtered)
        ]
    );
    sim.run_to(t0 + 1500 * MS);
    let last = sim
        .sent_by(0)
        .filter(|r| r.payload_len > 0)
        .last()
        .unwrap()
        .clone();
    assert_eq!((last.time - t0, last.fate), (1400 * MS, Fate::Sent));
    assert_eq!(sim.a().stats().rto_expirations, 3);
    assert_eq!(sim.a().stats().retransmits, 3);
    // The ACK of the retransmission arrived, but it gives no sample (ambiguous): SRTT is
    // unchanged and the backed-off RTO (200 ms << 3) stays until a clean sample.
    assert_eq!(sim.a().send_queued(), 0);
    assert_eq!(sim.a().srtt(), Some(srtt));
    assert_eq!(sim.a().rto(), 1600 * MS);
    let now = sim.now;
    sim.a().send(b"fresh", now);
    sim.run_to(now + 100 * MS);
    assert_ne!(sim.a().srtt(), Some(srtt));
    assert_eq!(sim.a().rto(), 200 * MS);
    let mut buf = [0u8; 32];
    let n = sim.b().recv(&mut buf);
    assert_eq!(&buf[..n], b"0123456789fresh");
}

#[test]
fn with_timestamps_the_retransmission_is_measured() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(23, &cfg, &cfg, LinkConfig::default());
    let t0 = sim.now;
    sim.filter = Some(Box::new(move |now, from, _, len| {
        !(from == 0 && len > 0 && now < t0 + 500 * MS)
    }));
    sim.a().send(b"0123456789", t0);
    sim.run_to(t0 + 700 * MS);
    assert_eq!(sim.a().stats().rto_expirations, 2);
    assert_eq!(sim.a().send_queued(), 0);
    // TSecr echoes the retransmission's own TSval: a valid sample clears the backoff.
    assert_eq!(sim.a().rto(), 200 * MS);
}

#[test]
fn retransmissions_give_up_after_the_retry_limit() {
    let cfg = TcpConfig {
        retries: 3,
        ..TcpConfig::default()
    };
    let mut sim = open_pair(24, &cfg, &cfg, LinkConfig::default());
    let t0 = sim.now;
    sim.filter = Some(Box::new(|_, from, _, _| from != 0));
    sim.a().send(b"doomed", t0);
    sim.run_to(t0 + 10 * SEC);
    // 200 + 400 + 800 ms, then the fourth expiry (1.6 s later) ends it.
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(
        sim.hosts[0].events.last().map(|e| (e.0 - t0, e.2)),
        Some((3000 * MS, Event::TimedOut))
    );
}

#[test]
fn fast_retransmit_after_exactly_three_duplicate_acks() {
    let cfg = TcpConfig {
        timestamps: false,
        sack: false,
        ..TcpConfig::default()
    };
    let (mut a, p) = established(&cfg, plain_peer());
    let mss = a.mss() as usize;
    assert_eq!(mss, 1460);
    let data = pattern(14 * mss, 7);
    assert_eq!(a.send(&data, 2 * MS), 14 * mss);
    let first = drain(&mut a, 2 * MS);
    assert_eq!(first.len(), 10, "initial window of 10 segments");
    assert!(first.iter().all(|s| s.payload.len() == mss));
    let una = p.ack;
    // The first segment is lost; the next ones produce duplicate ACKs. The first two do not
    // retransmit, but each sends one new segment beyond cwnd (limited transmit, RFC 3042).
    let dup = p.ack_seg();
    for i in 1..=2u32 {
        a.on_segment(&dup, 30 * MS + i as u64);
        let out = drain(&mut a, 30 * MS + i as u64);
        let seqs: Vec<_> = out.iter().map(|s| s.header.seq).collect();
        assert_eq!(
            seqs,
            [una + (9 + i) * mss as u32],
            "dupack {i}: one new segment, no retransmit"
        );
    }
    // Not a duplicate: carries data, or changes the window.
    let mut q = p.clone();
    q.window = 60000;
    a.on_segment(&q.ack_seg(), 30 * MS + 3);
    a.on_segment(&dup, 30 * MS + 3); // window back to 65535: also not a duplicate
    assert!(drain(&mut a, 30 * MS + 3).is_empty());
    assert_eq!(a.stats().dupacks_in, 2);
    a.on_segment(&dup, 30 * MS + 4);
    assert_eq!(a.stats().dupacks_in, 3);
    let rtx = drain(&mut a, 30 * MS + 4);
    assert_eq!(rtx.len(), 1);
    assert_eq!(rtx[0].header.seq, una);
    assert_eq!(rtx[0].payload, &data[..mss]);
    assert_eq!(a.stats().fast_retransmits, 1);
    assert!(a.in_recovery());
    // The two limited-transmit segments do not count in the flight that sets ssthresh
    // (RFC 5681 §3.2 step 2).
    let flight = 10 * mss as u32;
    assert_eq!(a.ssthresh(), flight / 2);
    assert_eq!(a.cwnd(), flight / 2 + 3 * mss as u32);
    // Further duplicates inflate the window by one MSS each (RFC 6582 step 4): new data
    // would go once it exceeds the flight, 12 segments with the limited-transmit ones.
    let mut sent_new = Vec::new();
    for i in 0..4u64 {
        a.on_segment(&dup, 31 * MS + i);
        sent_new.extend(drain(&mut a, 31 * MS + i).into_iter().map(|s| s.header.seq));
    }
    assert_eq!(a.cwnd(), flight / 2 + 7 * mss as u32);
    assert_eq!(sent_new, [], "cwnd 12·MSS over 12 in flight");
    // A partial ACK (the retransmission filled the first hole; the 4th segment was lost
    // too): retransmit the next hole at once.
    let mut q = p.clone();
    q.ack = una + 3 * mss as u32;
    a.on_segment(&q.ack_seg(), 50 * MS);
    let rtx2 = drain(&mut a, 50 * MS);
    // Deflated by the 3 MSS acknowledged plus one back: 10 MSS over 9 in flight leaves room
    // for one more new segment.
    assert_eq!(a.cwnd(), 10 * mss as u32);
    let seqs: Vec<_> = rtx2.iter().map(|s| s.header.seq).collect();
    assert_eq!(seqs, [una + 3 * mss as u32, una + 12 * mss as u32]);
    assert!(a.in_recovery());
    // The full ACK (everything up to the recovery point, the limited-transmit segments
    // included) ends recovery with cwnd = min(ssthresh, flight + MSS) = min(5, 1 + 1) MSS.
    q.ack = una + 12 * mss as u32;
    a.on_segment(&q.ack_seg(), 60 * MS);
    assert!(!a.in_recovery());
    assert_eq!(a.cwnd(), 2 * mss as u32);
    assert_eq!(a.stats().fast_retransmits, 1);
    assert_eq!(a.stats().rto_expirations, 0);
}

#[test]
fn zero_window_persist_probes_then_reopen() {
    let client = TcpConfig::default();
    let server = TcpConfig {
        recv_buffer: 10 * 1448, // exactly ten segments, unscaled
        ..TcpConfig::default()
    };
    let mut sim = open_pair(25, &client, &server, LinkConfig::default());
    assert_eq!(sim.a().send_window(), 14480);
    let data = pattern(60_000, 3);
    let now = sim.now;
    let mut sent = sim.a().send(&data, now);
    // The server application does not read for 5 s.
    let t0 = sim.now;
    sim.run_until(t0 + 5 * SEC, |s| {
        let now = s.now;
        sent += s.a().send(&data[sent..], now);
        false
    });
    assert_eq!(sim.b().recv_available(), 14480);
    assert_eq!(sim.a().send_window(), 0);
    let zero_ack = sim
        .sent_by(1)
        .find(|r| r.header.window == 0)
        .expect("a zero window")
        .time;
    let probes: Vec<_> = sim
        .sent_by(0)
        .filter(|r| r.time > zero_ack && r.payload_len == 0)
        .cloned()
        .collect();
    // Probes: zero-length, SEQ = SND.UNA - 1, on a persist timer that starts at the RTO
    // and doubles: 200 ms, then 400, 800, 1600 ms apart.
    let rto = sim.a().rto();
    assert_eq!(rto, 200 * MS);
    assert_eq!(probes.len(), 4, "{probes:#?}");
    let una = sim.a().iss() + 1 + 14480;
    assert!(probes.iter().all(|r| r.header.seq == una - 1));
    let first_delay = probes[0].time - zero_ack;
    assert!(first_delay >= 10 * MS + rto && first_delay < 11 * MS + rto);
    let gaps: Vec<_> = probes.windows(2).map(|w| w[1].time - w[0].time).collect();
    assert_eq!(gaps, [2 * rto, 4 * rto, 8 * rto]);
    // Each probe is answered with an ACK still showing the zero window.
    let answers = sim
        .sent_by(1)
        .filter(|r| r.time > probes[0].time && r.header.window == 0)
        .count();
    assert_eq!(answers, 4);
    assert_eq!(sim.a().stats().window_probes, 4);
    assert_eq!(sim.a().state(), State::Established);
    // The application reads: a window update reopens the flow and everything arrives.
    let mut got = Vec::new();
    assert!(sim.run_until(sim.now + 5 * SEC, |s| {
        let now = s.now;
        sent += s.a().send(&data[sent..], now);
        let mut buf = [0u8; 4096];
        loop {
            let n = s.b().recv(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() == data.len()
    }));
    assert_eq!(digest(&got), digest(&data));
    let update = sim
        .sent_by(1)
        .find(|r| r.time >= t0 + 5 * SEC && r.header.window > 0)
        .expect("window update");
    assert_eq!(update.time, t0 + 5 * SEC);
    assert_eq!(update.header.window as usize, 14480);
}

#[test]
fn delayed_ack_timing() {
    let client = TcpConfig {
        nodelay: true,
        ..TcpConfig::default()
    };
    let server = TcpConfig {
        quickack_segments: 2,
        ..TcpConfig::default()
    };
    let link = LinkConfig {
        bandwidth_bps: 0, // no serialization: arrivals are exactly 10 ms after sending
        ..LinkConfig::default()
    };
    let mut sim = open_pair(26, &client, &server, link);
    fn acks_after(sim: &mut Sim, len: usize) -> (u64, u64) {
        let t = sim.now;
        sim.a().send(&vec![1u8; len], t);
        let before = sim.trace.len();
        sim.run_to(t + 200 * MS);
        let sent = sim.trace[before..]
            .iter()
            .filter(|r| r.from == 0 && r.payload_len > 0)
            .map(|r| r.time)
            .next_back()
            .unwrap();
        let ack = sim.trace[before..]
            .iter()
            .find(|r| r.from == 1)
            .map(|r| r.time)
            .unwrap();
        (sent - t, ack - sent)
    }
    // Quick-ack for the first two data segments: ACKed on arrival.
    assert_eq!(acks_after(&mut sim, 100), (0, 10 * MS));
    assert_eq!(acks_after(&mut sim, 100), (0, 10 * MS));
    // Then a lone small segment waits for the 40 ms delayed-ACK timer.
    assert_eq!(acks_after(&mut sim, 100), (0, 50 * MS));
    // Two full-sized segments: ACKed when the second arrives.
    let mss = sim.a().mss() as usize;
    assert_eq!(acks_after(&mut sim, 2 * mss), (0, 10 * MS));
    // One full segment alone: delayed.
    assert_eq!(acks_after(&mut sim, mss), (0, 50 * MS));
    // A reply within 40 ms carries the ACK: no pure ACK at all.
    let t = sim.now;
    sim.a().send(b"request", t);
    let before = sim.trace.len();
    sim.run_to(t + 15 * MS);
    let now = sim.now;
    sim.b().send(b"response", now);
    sim.run_to(t + 200 * MS);
    let from_b: Vec<_> = sim.trace[before..].iter().filter(|r| r.from == 1).collect();
    assert_eq!(from_b.len(), 1);
    assert_eq!(from_b[0].payload_len, 8);
    assert_eq!(from_b[0].time, t + 15 * MS);
}

#[test]
fn nagle_coalesces_small_writes_and_nodelay_does_not() {
    for nodelay in [false, true] {
        let cfg = TcpConfig {
            nodelay,
            ..TcpConfig::default()
        };
        let mut sim = open_pair(27, &cfg, &cfg, LinkConfig::default());
        let t0 = sim.now;
        let before = sim.trace.len();
        for i in 0..20 {
            sim.run_to(t0 + i * MS);
            let now = sim.now;
            assert_eq!(sim.a().send(b"0123456789", now), 10);
        }
        sim.run_to(t0 + 300 * MS);
        let sizes: Vec<_> = sim.trace[before..]
            .iter()
            .filter(|r| r.from == 0 && r.payload_len > 0)
            .map(|r| r.payload_len)
            .collect();
        if nodelay {
            assert_eq!(sizes, [10; 20]);
        } else {
            // The first write goes at once; the other 19 wait for its ACK (20 ms later).
            assert_eq!(sizes, [10, 190]);
        }
        assert_eq!(sim.b().recv_available(), 200);
    }
}

#[test]
fn keepalive_probes_and_timeout() {
    let cfg = TcpConfig {
        keepalive: Some(Keepalive {
            idle: 10 * SEC,
            interval: SEC,
            count: 3,
        }),
        ..TcpConfig::default()
    };
    let mut sim = open_pair(28, &cfg, &TcpConfig::default(), LinkConfig::default());
    let synack_arrival = sim.sent_by(1).next().unwrap().time + 10 * MS + 60 * 80;
    let t0 = sim.now;
    sim.run_to(t0 + 15 * SEC);
    // The first probe 10 s after the last segment received (the SYN-ACK); answered.
    let probes: Vec<_> = sim.sent_by(0).skip(2).cloned().collect();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].time, synack_arrival + 10 * SEC);
    assert_eq!(probes[0].payload_len, 0);
    assert_eq!(probes[0].header.seq, sim.a().iss()); // SND.UNA - 1
    let answer = sim.sent_by(1).last().unwrap().clone();
    assert_eq!(answer.time, probes[0].time + 10 * MS + 52 * 80);
    assert_eq!(sim.a().state(), State::Established);
    // The peer disappears: probes every second, then after three unanswered a reset.
    sim.filter = Some(Box::new(|_, from, _, _| from == 0));
    sim.hosts[1].conns.clear();
    sim.hosts[1].stray_resets = false;
    sim.run_to(t0 + 60 * SEC);
    let next_idle = answer.time + 10 * MS + 52 * 80 + 10 * SEC;
    let later: Vec<_> = sim
        .sent_by(0)
        .skip(3)
        .map(|r| (r.time, r.header.flags))
        .collect();
    assert_eq!(
        later,
        [
            (next_idle, TcpFlags::ACK),
            (next_idle + SEC, TcpFlags::ACK),
            (next_idle + 2 * SEC, TcpFlags::ACK),
            (next_idle + 3 * SEC, TcpFlags::RST | TcpFlags::ACK),
        ]
    );
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(sim.hosts[0].events.last().unwrap().2, Event::TimedOut);
    assert_eq!(sim.a().stats().keepalive_probes, 4);
}
