//! RFC 5961 (blind reset, SYN and data injection) and RFC 7323 PAWS, with hand-made
//! segments.

use super::*;
use crate::tcp::SEC;

#[test]
fn reset_with_the_exact_sequence_number_resets() {
    let (mut a, p) = established(&TcpConfig::default(), plain_peer());
    a.on_segment(&p.seg(TcpFlags::RST, &[]), 2 * MS);
    assert_eq!(a.state(), State::Closed);
    assert_eq!(events(&mut a), [Event::Reset]);
    assert!(drain(&mut a, 2 * MS).is_empty());
    assert_eq!(a.next_timer(), None);
    assert_eq!(a.stats().rst_in, 1);
}

#[test]
fn in_window_reset_draws_a_challenge_ack() {
    let (mut a, p) = established(&TcpConfig::default(), plain_peer());
    let mut q = p.clone();
    q.seq = p.seq + 1000; // inside our 256 KiB window, but not RCV.NXT
    a.on_segment(&q.seg(TcpFlags::RST, &[]), 2 * MS);
    assert_eq!(a.state(), State::Established);
    let out = drain(&mut a, 2 * MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.flags, TcpFlags::ACK);
    assert_eq!(out[0].header.ack, p.seq);
    assert_eq!(out[0].header.seq, p.ack);
    assert_eq!(a.stats().challenge_acks, 1);
    // A genuine peer answers the challenge with a reset at exactly the acknowledged number.
    let mut r = p.clone();
    r.seq = out[0].header.ack;
    a.on_segment(&r.seg(TcpFlags::RST, &[]), 3 * MS);
    assert_eq!(a.state(), State::Closed);
}

#[test]
fn out_of_window_reset_is_ignored() {
    let (mut a, p) = established(&TcpConfig::default(), plain_peer());
    for off in [300_000u32, 0x8000_0000, u32::MAX] {
        let mut q = p.clone();
        q.seq = p.seq + off;
        a.on_segment(&q.seg(TcpFlags::RST | TcpFlags::ACK, &[]), 2 * MS);
        assert_eq!(a.state(), State::Established);
        assert!(drain(&mut a, 2 * MS).is_empty());
    }
    assert_eq!(a.stats().challenge_acks, 0);
    assert_eq!(a.stats().rst_in, 3);
}

#[test]
fn syn_on_an_established_connection_draws_a_challenge_ack() {
    let (mut a, p) = established(&TcpConfig::default(), plain_peer());
    for seq in [p.seq, p.seq + 5, Seq(12345)] {
        let mut q = p.clone();
        q.seq = seq;
        a.on_segment(&q.seg(TcpFlags::SYN, &[]), 2 * MS);
        assert_eq!(a.state(), State::Established);
        let out = drain(&mut a, 2 * MS);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header.flags, TcpFlags::ACK);
        assert_eq!((out[0].header.seq, out[0].header.ack), (p.ack, p.seq));
    }
    assert_eq!(a.stats().challenge_acks, 3);
    assert!(events(&mut a).is_empty());
}

#[test]
fn challenge_acks_are_rate_limited() {
    let cfg = TcpConfig {
        challenge_ack_limit: 3,
        ..TcpConfig::default()
    };
    let (mut a, p) = established(&cfg, plain_peer());
    let mut q = p.clone();
    q.seq = p.seq + 10;
    let mut sent = 0;
    for i in 0..5 {
        a.on_segment(&q.seg(TcpFlags::RST, &[]), 2 * MS + i * MS);
        sent += drain(&mut a, 2 * MS + i * MS).len();
    }
    assert_eq!(sent, 3);
    assert_eq!(a.stats().challenge_acks, 3);
    assert_eq!(a.stats().challenge_acks_suppressed, 2);
    // A second later the budget is back.
    a.on_segment(&q.seg(TcpFlags::SYN, &[]), 2 * MS + SEC);
    assert_eq!(drain(&mut a, 2 * MS + SEC).len(), 1);
}

#[test]
fn unacceptable_acks_are_dropped_with_their_data() {
    let (mut a, p) = established(&TcpConfig::default(), plain_peer());
    // ACK of data never sent: an ACK goes back, the data is not taken (RFC 9293, RFC 5961
    // §5.2).
    let mut q = p.clone();
    q.ack = p.ack + 10;
    a.on_segment(&q.seg(TcpFlags::ACK, b"injected"), 2 * MS);
    assert_eq!(a.recv_available(), 0);
    let out = drain(&mut a, 2 * MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.ack, p.seq);
    // Far too old an ACK (below SND.UNA - MAX.SND.WND): the same.
    q.ack = p.ack - 70_000;
    a.on_segment(&q.seg(TcpFlags::ACK, b"injected"), 3 * MS);
    assert_eq!(a.recv_available(), 0);
    assert_eq!(drain(&mut a, 3 * MS).len(), 1);
    assert_eq!(a.stats().challenge_acks, 2);
    // A slightly old ACK (within the window) is fine: the data is taken.
    q.ack = p.ack - 100;
    a.on_segment(&q.seg(TcpFlags::ACK, b"fine"), 4 * MS);
    assert_eq!(a.recv_available(), 4);
    // A segment without ACK carries nothing either.
    let mut r = p.clone();
    r.seq = p.seq + 4;
    a.on_segment(&r.seg(TcpFlags::PSH, b"noack"), 5 * MS);
    assert_eq!(a.recv_available(), 4);
}

#[test]
fn paws_rejects_an_old_timestamp() {
    let peer_ts = TcpOptions {
        mss: Some(1460),
        timestamps: Some(Timestamps {
            tsval: 1_000,
            tsecr: 0,
        }),
        ..Default::default()
    };
    let (mut a, mut p) = established(&TcpConfig::default(), peer_ts);
    assert!(a.timestamps_enabled());
    assert_eq!(a.mss(), 1448);
    p.tsval = Some(1_005);
    a.on_segment(&p.seg(TcpFlags::ACK | TcpFlags::PSH, b"first"), 2 * MS);
    assert_eq!(a.recv_available(), 5);
    let out = drain(&mut a, 2 * MS); // quick-ack
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.options.timestamps.unwrap().tsecr, 1_005);
    p.seq += 5;
    // An older TSval (a wrapped-around duplicate, say) is rejected before the sequence
    // check, answered with an ACK.
    p.tsval = Some(1_004);
    a.on_segment(&p.seg(TcpFlags::ACK | TcpFlags::PSH, b"stale"), 3 * MS);
    assert_eq!(a.recv_available(), 5);
    assert_eq!(a.stats().paws_rejected, 1);
    let out = drain(&mut a, 3 * MS);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].header.ack, p.seq);
    assert_eq!(out[0].header.options.timestamps.unwrap().tsecr, 1_005);
    // An equal TSval is not old.
    p.tsval = Some(1_005);
    a.on_segment(&p.seg(TcpFlags::ACK, b"same"), 4 * MS);
    assert_eq!(a.recv_available(), 9);
    // Resets are exempt from PAWS (the RFC 5961 exact-match rule applies).
    p.seq += 4;
    p.tsval = Some(3);
    a.on_segment(&p.seg(TcpFlags::RST, &[]), 5 * MS);
    assert_eq!(a.state(), State::Closed);
}

#[test]
fn paws_accepts_wrapped_timestamps_and_segments_without_one() {
    let peer_ts = TcpOptions {
        mss: Some(1460),
        timestamps: Some(Timestamps {
            tsval: u32::MAX - 1,
            tsecr: 0,
        }),
        ..Default::default()
    };
    let (mut a, mut p) = established(&TcpConfig::default(), peer_ts);
    p.tsval = Some(2); // wrapped: newer
    a.on_segment(&p.seg(TcpFlags::ACK, b"abc"), 2 * MS);
    assert_eq!(a.recv_available(), 3);
    p.seq += 3;
    p.tsval = None; // tolerated, as Linux does
    a.on_segment(&p.seg(TcpFlags::ACK, b"de"), 3 * MS);
    assert_eq!(a.recv_available(), 5);
    assert_eq!(a.stats().paws_rejected, 0);
}
