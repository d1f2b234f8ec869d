//! Engine tests: hand-driven segments for exact field checks, and the simulated link
//! (`super::sim`) for whole conversations in virtual time.

mod close;
mod cookies;
mod handshake;
mod sack;
mod security;
mod timers;
mod transfer;

use super::sim::{addr_a, addr_b, isn, PORT_A, PORT_B};
use super::{
    siphash24, Connection, Event, Seq, State, TcpConfig, TcpHeader, TcpOptions, TcpSegment,
    Timestamps, MS,
};
use crate::wire::TcpFlags;

/// A segment with its payload copied out of the send ring.
#[derive(Debug, Clone)]
pub(super) struct Owned {
    pub header: TcpHeader,
    pub payload: Vec<u8>,
}

/// Everything the connection wants to send now.
pub(super) fn drain(c: &mut Connection, now: u64) -> Vec<Owned> {
    let mut v = Vec::new();
    while let Some(t) = c.poll_transmit(now) {
        let mut payload = vec![0; t.payload_len()];
        t.copy_payload(&mut payload);
        v.push(Owned {
            header: t.header,
            payload,
        });
        assert!(v.len() < 10_000, "poll_transmit does not stop");
    }
    v
}

pub(super) fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The far end of a hand-driven connection: it builds segments from its own sequence state.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub seq: Seq,
    pub ack: Seq,
    pub window: u16,
    pub tsval: Option<u32>,
    pub tsecr: u32,
}

impl Peer {
    pub(super) fn seg<'a>(&self, flags: TcpFlags, payload: &'a [u8]) -> TcpSegment<'a> {
        TcpSegment {
            header: TcpHeader {
                src_port: PORT_B,
                dst_port: PORT_A,
                seq: self.seq,
                ack: self.ack,
                flags,
                window: self.window,
                options: TcpOptions {
                    timestamps: self.tsval.map(|tsval| Timestamps {
                        tsval,
                        tsecr: self.tsecr,
                    }),
                    ..Default::default()
                },
            },
            payload,
            payload_tail: &[],
        }
    }

    /// An ACK-only segment.
    pub(super) fn ack_seg(&self) -> TcpSegment<'static> {
        self.seg(TcpFlags::ACK, &[])
    }
}

/// The peer's ISN in hand-driven tests.
pub(super) const PEER_ISS: Seq = Seq(0xffff_f000); // wraps during the tests

/// An ESTABLISHED connection from `addr_a()` (SYN at 0, SYN-ACK at 1 ms) whose peer's SYN
/// carried `peer_opts` (its timestamps, if any, get TSecr filled in).
pub(super) fn established(cfg: &TcpConfig, mut peer_opts: TcpOptions) -> (Connection, Peer) {
    let mut a = Connection::connect(cfg, &isn(), addr_a(), addr_b(), 0);
    let syn = drain(&mut a, 0);
    assert_eq!(syn.len(), 1);
    let syn = &syn[0];
    if let Some(ts) = peer_opts.timestamps.as_mut() {
        ts.tsecr = syn.header.options.timestamps.map_or(0, |t| t.tsval);
    }
    let synack = TcpSegment {
        header: TcpHeader {
            src_port: PORT_B,
            dst_port: PORT_A,
            seq: PEER_ISS,
            ack: syn.header.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 65535,
            options: peer_opts,
        },
        payload: &[],
        payload_tail: &[],
    };
    a.on_segment(&synack, MS);
    assert_eq!(a.state(), State::Established);
    let out = drain(&mut a, MS);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(events(&mut a), vec![Event::Connected]);
    let peer = Peer {
        seq: PEER_ISS + 1,
        ack: syn.header.seq + 1,
        window: 65535,
        tsval: peer_opts.timestamps.map(|t| t.tsval),
        tsecr: out[0].header.options.timestamps.map_or(0, |t| t.tsval),
    };
    (a, peer)
}

/// Options of a plain peer: MSS 1460, nothing else.
pub(super) fn plain_peer() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        ..Default::default()
    }
}

/// Deterministic test data.
pub(super) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub(super) fn digest(data: &[u8]) -> u64 {
    siphash24(b"test digest key!", data)
}
