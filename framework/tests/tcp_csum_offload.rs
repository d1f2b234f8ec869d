//! Transmit checksum offload over ring ports: a ferroplane client echoes bytes through the
//! `tcp-echo` app on another ferroplane stack, each stack on its own ring port, with a test
//! wire between the host sides that looks at every TCP frame as it passes.
//!
//! With offload on the ring sides, frames cross with partial checksums (the pseudo-header sum
//! in the field, which does not verify) flagged `RX_L4_CKSUM_GOOD`, and the receiving
//! `tcp-input` takes them as they are: had it verified them in software it would have dropped
//! them as `bad_checksum` and the echo would not complete. Without offload, every frame on the
//! wire carries a complete checksum that verifies, and no flag vouches for it.

mod common;

use std::time::{Duration, Instant};

use common::tcp::*;
use ferroplane::batch::Burst;
use ferroplane::mem::{ol, Mbuf};
use ferroplane::port::{Port, RxQueue, TxQueue};
use ferroplane::wire::{checksum, ethertype, ip_protocol, Ipv4Packet};

const ECHO: &str = "name = \"tcp-echo\"\nports = [7]";

/// What the wire saw of the TCP frames it carried.
#[derive(Debug, Default)]
struct Seen {
    frames: u64,
    /// Flagged `RX_L4_CKSUM_GOOD` by the sending ring side.
    vouched: u64,
    /// Checksum field equal to the pseudo-header sum (partial).
    partial: u64,
    /// Checksum verifies over pseudo header and segment.
    verifies: u64,
}

impl Seen {
    fn look(&mut self, m: &Mbuf) {
        // The frame's bytes, gathered: segments sent by reference are header + payload chains.
        let all: Vec<u8> = m.segments().flatten().copied().collect();
        let d = &all[..];
        if d.len() < 34 || u16::from_be_bytes([d[12], d[13]]) != ethertype::IPV4 {
            return;
        }
        let ip = Ipv4Packet::new_unchecked(&d[14..]);
        if ip.protocol() != ip_protocol::TCP {
            return;
        }
        let hl = ip.header_len();
        let tcp = &d[14 + hl..14 + ip.total_len() as usize];
        let ph = checksum::pseudo_header_v4(
            ip.src_addr(),
            ip.dst_addr(),
            ip_protocol::TCP,
            tcp.len() as u16,
        );
        self.frames += 1;
        self.vouched += u64::from(m.ol_flags() & ol::RX_L4_CKSUM_GOOD != 0);
        self.partial += u64::from(u16::from_be_bytes([tcp[16], tcp[17]]) == ph as u16);
        self.verifies += u64::from(checksum::verify_sum(checksum::combine(
            ph,
            checksum::sum(tcp),
        )));
    }
}

/// Moves frames between the host sides, looking at each (bytes unchanged). Like a bridge
/// passing `CHECKSUM_PARTIAL` on, a frame that arrived vouched for leaves as a partial-checksum
/// request again (the ring gives each receiver its own verdict).
struct Tap {
    to_server: Box<dyn TxQueue>,
    from_server: Box<dyn RxQueue>,
    to_client: Box<dyn TxQueue>,
    from_client: Box<dyn RxQueue>,
    seen: Seen,
}

impl Tap {
    fn forward(&mut self) {
        let mut b = Burst::new();
        for dir in 0..2 {
            let (from, to) = if dir == 0 {
                (&mut self.from_server, &mut self.to_client)
            } else {
                (&mut self.from_client, &mut self.to_server)
            };
            if from.rx_burst(&mut b, 64) == 0 {
                continue;
            }
            for m in b.iter_mut() {
                self.seen.look(m);
                if m.ol_flags() & ol::RX_L4_CKSUM_GOOD != 0 {
                    m.set_ol_flags(ol::TX_L4_CKSUM);
                }
            }
            to.tx_burst(&mut b);
            assert!(b.is_empty(), "the ring to the stack is full");
        }
    }
}

/// Echoes 256 KiB over ring sides with or without offload; returns what the wire saw, after
/// checking the bytes came back and nothing was dropped on the way.
fn echo(offload: bool) -> Seen {
    let n = 256 * 1024;
    let st = Flows::new([random_bytes(n, 0x0ff1_0ad5)]);
    let ((sp, mut sh), (cp, mut ch)) = wired_ports_offload(1, 1, offload);
    assert_eq!(sp.info().tx_l4_checksum_offload, offload);
    let mut p = Stacks::on(
        sp,
        cp,
        Server::new(ECHO),
        tcp_apps(vec![EchoClient::all(&st, "198.18.0.1:7")]),
    );
    // (Made after the stacks, so dropped before them: the frames in its queues go back to
    // the stacks' pools before those are released.)
    let mut tap = Tap {
        to_server: sh.take_tx_queue(0).unwrap(),
        from_server: sh.take_rx_queue(0).unwrap(),
        to_client: ch.take_tx_queue(0).unwrap(),
        from_client: ch.take_rx_queue(0).unwrap(),
        seen: Seen::default(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !st.lock().unwrap().flows[0].finished() {
        p.server.run_turns(1);
        tap.forward();
        p.client.run_turns(1);
        tap.forward();
    }
    let st = st.lock().unwrap();
    let f = &st.flows[0];
    assert!(f.connected, "never connected");
    assert_eq!(
        f.received.len(),
        n,
        "echoed {} of {n} bytes",
        f.received.len()
    );
    assert!(f.received == f.to_send, "echoed bytes differ");
    assert!(f.peer_closed);
    for g in [&p.server_graph, &p.client_graph] {
        assert_eq!(count(g, "tcp-input", "bad_checksum"), 0);
        // The flows' port is the egress port: the tx node never had to finish a checksum.
        assert_eq!(count(g, "tx", "l4_checksum_completed"), 0);
        assert_eq!(count(g, "tx", "l4_checksum_failed"), 0);
    }
    // Bytes both ways: well over a hundred segments.
    assert!(tap.seen.frames > 100, "{:?}", tap.seen);
    tap.seen
}

#[test]
fn offload_on_both_sides_carries_partial_checksums_the_receiver_never_verifies() {
    let seen = echo(true);
    // Every segment crossed with only the pseudo-header sum, vouched for by the ring.
    assert_eq!(seen.partial, seen.frames, "{seen:?}");
    assert_eq!(seen.vouched, seen.frames, "{seen:?}");
    // A partial checksum verifies only by chance (1 in 65535): most did not, and tcp-input
    // still took every one of them (no bad_checksum drop, every byte echoed) — it never summed
    // them.
    assert!(seen.verifies * 10 < seen.frames, "{seen:?}");
}

#[test]
fn without_offload_every_frame_on_the_wire_has_a_full_checksum() {
    let seen = echo(false);
    assert_eq!(seen.verifies, seen.frames, "{seen:?}");
    assert_eq!(seen.vouched, 0, "{seen:?}");
}
