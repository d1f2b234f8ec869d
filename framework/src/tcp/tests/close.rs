//! Closing: active and passive close, simultaneous close, half-close, TIME-WAIT, resets on
//! close with unread data, orphaned FIN-WAIT-2.

use super::*;
use crate::tcp::sim::{LinkConfig, Sim};
use crate::tcp::SEC;

fn open_pair(seed: u64, cfg: &TcpConfig) -> Sim {
    let mut sim = Sim::symmetric(seed, LinkConfig::default());
    sim.open(cfg, cfg, 4);
    assert!(sim.run_until(SEC, |s| s.hosts[1].conns.len() == 1
        && s.hosts[0].saw(Event::Connected)
        && s.hosts[1].saw(Event::Connected)));
    sim
}

fn event_time(sim: &Sim, host: usize, ev: Event) -> Option<u64> {
    sim.hosts[host]
        .events
        .iter()
        .find(|e| e.2 == ev)
        .map(|e| e.0)
}

#[test]
fn active_close_waits_two_msl_in_time_wait() {
    let cfg = TcpConfig::default(); // MSL 30 s
    let mut sim = open_pair(10, &cfg);
    let now = sim.now;
    assert_eq!(sim.a().send(b"hello", now), 5);
    sim.a().close(now);
    assert_eq!(sim.a().state(), State::FinWait1);
    let mut got = Vec::new();
    assert!(sim.run_until(2 * SEC, |s| {
        let now = s.now;
        let b = s.b();
        let mut buf = [0u8; 64];
        let n = b.recv(&mut buf);
        got.extend_from_slice(&buf[..n]);
        if b.state() == State::CloseWait {
            b.close(now);
        }
        s.a().state() == State::TimeWait && s.b().state() == State::Closed
    }));
    assert_eq!(got, b"hello");
    // The data and the FIN went in one segment.
    let a_sent: Vec<_> = sim.sent_by(0).skip(2).collect();
    assert_eq!(
        a_sent[0].header.flags,
        TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN
    );
    assert_eq!(a_sent[0].payload_len, 5);
    let b_fin = sim
        .sent_by(1)
        .find(|r| r.has(TcpFlags::FIN))
        .expect("server FIN")
        .header;
    assert_eq!(b_fin.ack, sim.a().iss() + 1 + 5 + 1);
    let evs: Vec<_> = sim.hosts[1].events.iter().map(|e| e.2).collect();
    assert_eq!(
        evs,
        [
            Event::Connected,
            Event::Readable,
            Event::PeerClosed,
            Event::Closed
        ]
    );
    // TIME-WAIT began when A acknowledged B's FIN and lasts exactly 2·MSL.
    let last_ack = sim.sent_by(0).last().unwrap().clone();
    assert_eq!(last_ack.header.ack, b_fin.seq + 1);
    let tw = last_ack.time;
    sim.run_to(tw + 60 * SEC - 1);
    assert_eq!(sim.a().state(), State::TimeWait);
    assert_eq!(sim.a().next_timer(), Some(tw + 60 * SEC));
    sim.run_to(tw + 60 * SEC);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(event_time(&sim, 0, Event::Closed), Some(tw + 60 * SEC));
    assert_eq!(sim.a().next_timer(), None);
}

#[test]
fn passive_close_through_last_ack() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(11, &cfg);
    let now = sim.now;
    // The server closes its side first (shutdown: it still reads the client's last words;
    // after a full close(), that data would draw a reset).
    sim.b().shutdown_write(now);
    let mut replied = false;
    assert!(sim.run_until(2 * SEC, |s| {
        let now = s.now;
        if s.a().state() == State::CloseWait && !replied {
            // Still allowed to send in CLOSE-WAIT.
            assert_eq!(s.a().send(b"bye", now), 3);
            s.a().close(now);
            assert_eq!(s.a().state(), State::LastAck);
            replied = true;
        }
        s.a().state() == State::Closed
    }));
    assert!(sim.hosts[0].saw(Event::PeerClosed));
    assert_eq!(sim.hosts[0].events.last().unwrap().2, Event::Closed);
    assert_eq!(sim.b().state(), State::TimeWait);
    let mut buf = [0u8; 8];
    let n = sim.b().recv(&mut buf);
    assert_eq!(&buf[..n], b"bye");
    assert!(sim.b().is_read_closed());
    // A closed when B's ACK of its FIN arrived: 10 ms + serialization after it was sent.
    let b_last = sim.sent_by(1).last().unwrap().clone();
    let closed_at = event_time(&sim, 0, Event::Closed).unwrap();
    assert_eq!(closed_at - b_last.time, 10 * MS + (32 + 20) * 80);
    sim.run_to(closed_at + 61 * SEC);
    assert_eq!(sim.b().state(), State::Closed);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(12, &cfg);
    let t0 = sim.now;
    sim.a().close(t0);
    sim.b().close(t0);
    sim.run_to(t0 + 5 * MS);
    assert_eq!(
        (sim.a().state(), sim.b().state()),
        (State::FinWait1, State::FinWait1)
    );
    sim.run_to(t0 + 15 * MS);
    assert_eq!(
        (sim.a().state(), sim.b().state()),
        (State::Closing, State::Closing)
    );
    sim.run_to(t0 + 25 * MS);
    assert_eq!(
        (sim.a().state(), sim.b().state()),
        (State::TimeWait, State::TimeWait)
    );
    for from in 0..2 {
        let fins = sim.sent_by(from).filter(|r| r.has(TcpFlags::FIN)).count();
        assert_eq!(fins, 1);
    }
    sim.run_to(t0 + 25 * MS + 60 * SEC);
    assert_eq!(
        (sim.a().state(), sim.b().state()),
        (State::Closed, State::Closed)
    );
    assert!(sim.hosts[0].saw(Event::PeerClosed) && sim.hosts[1].saw(Event::PeerClosed));
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(13, &cfg);
    let up = pattern(100_000, 1);
    let down = pattern(300_000, 2);
    let (mut up_sent, mut down_sent) = (0, 0);
    let (mut up_got, mut down_got) = (Vec::new(), Vec::new());
    let mut a_shut = false;
    let mut b_shut = false;
    let mut a_states = Vec::new();
    assert!(sim.run_until(20 * SEC, |s| {
        let now = s.now;
        up_sent += s.a().send(&up[up_sent..], now);
        if up_sent == up.len() && !a_shut {
            s.a().shutdown_write(now);
            a_shut = true;
        }
        let mut buf = [0u8; 65536];
        loop {
            let n = s.b().recv(&mut buf);
            if n == 0 {
                break;
            }
            up_got.extend_from_slice(&buf[..n]);
        }
        // B sends its data only after A's FIN arrived: a true half-close.
        if s.b().is_read_closed() {
            down_sent += s.b().send(&down[down_sent..], now);
            if down_sent == down.len() && !b_shut {
                s.b().close(now);
                b_shut = true;
            }
        }
        loop {
            let n = s.a().recv(&mut buf);
            if n == 0 {
                break;
            }
            down_got.extend_from_slice(&buf[..n]);
        }
        if down_sent > 0 {
            a_states.push(s.a().state());
        }
        s.a().is_read_closed() && s.b().state() == State::Closed
    }));
    assert_eq!(digest(&up_got), digest(&up));
    assert_eq!(digest(&down_got), digest(&down));
    assert_eq!(up_got.len(), up.len());
    assert_eq!(down_got.len(), down.len());
    // While the server's 300 kB flowed, the client sat in FIN-WAIT-2, reading.
    assert!(a_states.iter().filter(|&&s| s == State::FinWait2).count() > 10);
    assert_eq!(sim.a().state(), State::TimeWait);
}

#[test]
fn time_wait_acks_a_retransmitted_fin_and_restarts() {
    let cfg = TcpConfig {
        msl: SEC, // TIME-WAIT = 2 s
        ..TcpConfig::default()
    };
    let mut sim = open_pair(14, &cfg);
    let now = sim.now;
    sim.a().close(now);
    // Lose A's first ACK of B's FIN: B retransmits its FIN after an RTO.
    let mut dropped = false;
    sim.filter = Some(Box::new(move |_, from, h, _| {
        if from == 0 && h.flags == TcpFlags::ACK && !dropped && h.ack.0 != 0 {
            // Only the ACK that answers a FIN (sent in TIME-WAIT) is dropped; the first
            // segment from A after the close is its FIN.
            dropped = true;
            return false;
        }
        true
    }));
    assert!(sim.run_until(5 * SEC, |s| {
        let now = s.now;
        if s.b().state() == State::CloseWait {
            s.b().close(now);
        }
        s.b().state() == State::Closed
    }));
    let fins: Vec<_> = sim
        .sent_by(1)
        .filter(|r| r.has(TcpFlags::FIN))
        .cloned()
        .collect();
    assert_eq!(fins.len(), 2, "FIN retransmitted once");
    let acks: Vec<_> = sim
        .sent_by(0)
        .filter(|r| r.header.ack == fins[0].header.seq + 1)
        .cloned()
        .collect();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].fate, crate::tcp::sim::Fate::Filtered);
    // TIME-WAIT restarted on the second FIN: A closes 2 s after its second ACK.
    sim.run_to(acks[1].time + 2 * SEC - 1);
    assert_eq!(sim.a().state(), State::TimeWait);
    sim.run_to(acks[1].time + 2 * SEC);
    assert_eq!(sim.a().state(), State::Closed);
}

#[test]
fn close_with_unread_data_resets() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(15, &cfg);
    let now = sim.now;
    sim.a().send(b"unread", now);
    sim.run_to(now + 50 * MS);
    assert_eq!(sim.b().recv_available(), 6);
    let now = sim.now;
    sim.b().close(now);
    assert_eq!(sim.b().state(), State::Closed);
    sim.run_to(now + 50 * MS);
    let rst = sim.sent_by(1).last().unwrap().clone();
    assert_eq!(rst.header.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(sim.hosts[0].events.last().unwrap().2, Event::Reset);
    assert_eq!(sim.hosts[1].events.last().unwrap().2, Event::Closed);
}

#[test]
fn data_after_close_resets_and_orphans_time_out() {
    let cfg = TcpConfig::default();
    // Data arriving after close(): the closer resets.
    let mut sim = open_pair(16, &cfg);
    let now = sim.now;
    sim.a().close(now);
    sim.run_to(now + 50 * MS);
    assert_eq!(sim.a().state(), State::FinWait2);
    let now = sim.now;
    sim.b().send(b"too late", now);
    sim.run_to(now + 50 * MS);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(sim.b().state(), State::Closed);
    assert_eq!(sim.hosts[1].events.last().unwrap().2, Event::Reset);

    // An orphan whose peer never closes leaves FIN-WAIT-2 after fin_wait2_timeout.
    let mut sim = open_pair(17, &cfg);
    let now = sim.now;
    sim.a().close(now);
    sim.run_to(now + 50 * MS);
    assert_eq!(sim.a().state(), State::FinWait2);
    let fin_acked = sim.sent_by(1).last().unwrap().time + 10 * MS + (32 + 20) * 80;
    sim.run_to(fin_acked + 60 * SEC);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(
        event_time(&sim, 0, Event::Closed),
        Some(fin_acked + 60 * SEC)
    );
    // Merely shut down (not closed), FIN-WAIT-2 waits as long as it takes.
    let mut sim = open_pair(18, &cfg);
    let now = sim.now;
    sim.a().shutdown_write(now);
    sim.run_to(now + 300 * SEC);
    assert_eq!(sim.a().state(), State::FinWait2);
    assert_eq!(sim.a().next_timer(), None);
}

#[test]
fn abort_sends_a_reset() {
    let cfg = TcpConfig::default();
    let mut sim = open_pair(19, &cfg);
    let now = sim.now;
    sim.a().send(&[7u8; 5000], now);
    sim.a().abort(now);
    assert_eq!(sim.a().state(), State::Closed);
    assert_eq!(sim.a().send(b"x", now), 0);
    sim.run_to(now + 100 * MS);
    let a: Vec<_> = sim.sent_by(0).skip(2).collect();
    assert_eq!(a.len(), 1, "only the reset, no data: {a:#?}");
    assert_eq!(a[0].header.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(sim.b().state(), State::Closed);
    assert!(sim.hosts[1].saw(Event::Reset));
}
