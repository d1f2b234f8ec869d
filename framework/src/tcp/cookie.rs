//! SYN cookies (RFC 4987 §3.6): a listener whose backlog is full answers a SYN without
//! keeping any state, encoding what it must remember in the ISN of its SYN-ACK, and
//! rebuilds the connection from the returning ACK.
//!
//! The cookie ISN, as RFC 4987 lays it out:
//!
//! ```text
//!  31      27 26  24 23                                 0
//! +----------+------+------------------------------------+
//! | t mod 32 | MSS  |  24 bits of SipHash(key; 4-tuple,   |
//! |          | index|  client ISN, t, MSS index)          |
//! +----------+------+------------------------------------+
//! ```
//!
//! where `t` counts [`COOKIE_PERIOD`]s (64 s). A returning ACK is valid when `ACK − 1`
//! carries the current or the previous `t` and the hash matches, so a cookie lives 64 to
//! 128 s. The MSS index selects from [`MSS_TABLE`] (the largest entry not above the
//! client's MSS).
//!
//! Window scaling and SACK-permitted cannot fit in the ISN. When the client uses
//! timestamps they ride in the low 6 bits of our TSval, as Linux does: bits 0–3 the
//! client's window-scale shift (15 = none), bit 4 SACK-permitted, bit 5 zero; the client
//! echoes them in TSecr. The TSval is lowered (never raised) to carry them, so the clock
//! stays monotonic. Without timestamps those options are lost and the connection runs
//! without window scaling or SACK.

use std::net::SocketAddrV4;

use super::config::{MS, SEC};
use super::isn::IsnGenerator;
use super::seq::Seq;

/// Length of one cookie time step; cookies of the current and the previous step are valid.
pub const COOKIE_PERIOD: u64 = 64 * SEC;

/// The MSS values a cookie can encode (3 bits).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1400, 1440, 1452, 1460, 8960];

const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const WS_NONE: u32 = 0xf;
const SACK_BIT: u32 = 1 << 4;

fn counter(now: u64) -> u32 {
    (now / COOKIE_PERIOD) as u32
}

/// The index of the largest table MSS not above `mss` (0 below the smallest).
pub(crate) fn mss_index(mss: u16) -> u8 {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u8
}

/// The cookie ISN for a SYN from `remote` with sequence number `client_isn`.
pub(crate) fn make_isn(
    isn: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    client_isn: Seq,
    mss_idx: u8,
    now: u64,
) -> Seq {
    let t = counter(now);
    let idx = mss_idx & 7;
    let h = isn.cookie_hash(local, remote, client_isn, t, idx) & 0x00ff_ffff;
    Seq(((t & 31) << 27) | ((idx as u32) << 24) | h)
}

/// Checks a cookie (`ACK − 1` of the returning segment, whose `SEQ − 1` is `client_isn`);
/// the encoded MSS when it is genuine and not older than the previous period.
pub(crate) fn check_isn(
    isn: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    client_isn: Seq,
    cookie: Seq,
    now: u64,
) -> Option<u16> {
    let t = counter(now);
    let field = cookie.0 >> 27;
    let idx = ((cookie.0 >> 24) & 7) as u8;
    [t, t.wrapping_sub(1)]
        .into_iter()
        .filter(|c| c & 31 == field)
        .find(|&c| {
            isn.cookie_hash(local, remote, client_isn, c, idx) & 0x00ff_ffff
                == cookie.0 & 0x00ff_ffff
        })
        .map(|_| MSS_TABLE[idx as usize])
}

/// Our TSval for a cookie SYN-ACK: the connection's clock (`ts_now`) with the options in
/// its low bits, lowered if needed so it never runs ahead of the clock.
pub(crate) fn encode_tsval(ts_now: u32, wscale: Option<u8>, sack: bool) -> u32 {
    let ws = wscale.map_or(WS_NONE, |w| w.min(14) as u32);
    let bits = ws | if sack { SACK_BIT } else { 0 };
    let ts = (ts_now & !TS_MASK) | bits;
    if ts > ts_now {
        ts.wrapping_sub(TS_MASK + 1)
    } else {
        ts
    }
}

/// The options carried by an echoed TSecr; `None` when the bits are malformed.
pub(crate) fn decode_tsecr(tsecr: u32) -> Option<(Option<u8>, bool)> {
    let ws = tsecr & 0xf;
    if tsecr & (1 << 5) != 0 || (ws > 14 && ws != WS_NONE) {
        return None;
    }
    let wscale = (ws != WS_NONE).then_some(ws as u8);
    Some((wscale, tsecr & SACK_BIT != 0))
}

/// The TSval clock of a connection between `local` and `remote` (as
/// [`Connection`](super::Connection) computes it).
pub(crate) fn ts_now(
    isn: &IsnGenerator,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    now: u64,
) -> u32 {
    ((now / MS) as u32).wrapping_add(isn.ts_offset(local, remote))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn cookies_validate_for_two_periods_and_carry_the_mss() {
        let g = IsnGenerator::new(*b"cookie-test-key!");
        let l = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
        let r = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5555);
        let cisn = Seq(123_456);
        let t0 = 1000 * SEC;
        for (mss, want) in [
            (1460, 1460),
            (1400, 1400),
            (1439, 1400),
            (500, 536),
            (9000, 8960),
        ] {
            let idx = mss_index(mss);
            let c = make_isn(&g, l, r, cisn, idx, t0);
            assert_eq!(check_isn(&g, l, r, cisn, c, t0), Some(want));
            assert_eq!(check_isn(&g, l, r, cisn, c, t0 + COOKIE_PERIOD), Some(want));
            // Too old, another tuple or client ISN, a flipped bit: rejected.
            assert_eq!(check_isn(&g, l, r, cisn, c, t0 + 2 * COOKIE_PERIOD), None);
            assert_eq!(check_isn(&g, l, r, cisn + 1, c, t0), None);
            let r2 = SocketAddrV4::new(*r.ip(), 5556);
            assert_eq!(check_isn(&g, l, r2, cisn, c, t0), None);
            for bit in [0, 23, 24, 26, 27, 31] {
                assert_eq!(check_isn(&g, l, r, cisn, Seq(c.0 ^ (1 << bit)), t0), None);
            }
        }
        // Timestamp bits round-trip and never move the clock forward.
        for ts in [0u32, 63, 64, 1000, u32::MAX] {
            for (ws, sack) in [
                (None, false),
                (Some(0), true),
                (Some(7), false),
                (Some(14), true),
            ] {
                let v = encode_tsval(ts, ws, sack);
                assert!(ts.wrapping_sub(v) < 64, "{ts} {v}");
                assert_eq!(decode_tsecr(v), Some((ws, sack)));
            }
        }
        assert_eq!(decode_tsecr(0b10_0000), None);
    }
}
