//! The text forms of pktgen's parameters, shared by the config file (`[app] name = "pktgen"`)
//! and the `ferroplane pktgen` quick flags, and their inverse (`fmt_*`), so that a printed
//! configuration parses back to the same values.
//!
//! | what | forms |
//! |---|---|
//! | rate | `"1Mpps"`, `"250kpps"`, `"1000pps"`, `"10Gbit/s"` (also `bps`, `k`/`M`/`G` prefixes), `"line:10G"` (line rate of a 10 Gbit/s link, L1 overhead included), `"max"` (as fast as the port takes) |
//! | IPv4 | `"198.18.0.1"`, `"198.18.0.1-198.18.0.255"` (each in turn), `"random:198.18.0.1-198.18.0.255"` |
//! | port | `1024`, `"1024-2047"`, `"random:1024-65535"` |
//! | size | `64`, `"64-1518"` (a sweep), `"random:64-1518"`, `"imix"` (64:7, 594:4, 1518:1), `"64:7,576:4,1500:1"` |
//! | payload | `"zeros"`, `"inc"` (0, 1, 2, …), `"0xdeadbeef"` (these bytes repeated) |
//! | protocol | `"udp"`, `"tcp-syn"`, `"icmp-echo"` |
//!
//! Every error message says what was wrong and which forms are valid.

use std::net::Ipv4Addr;

use super::{FieldRange, Payload, Range16, Range32, Rate, SizeSpec};

/// What a rate may look like (used in error hints).
pub const RATE_FORMS: &str =
    "a rate like \"1Mpps\", \"250kpps\", \"10Gbit/s\", \"500Mbps\", \"line:10G\" (line rate of a 10 Gbit/s link) or \"max\"";
/// What an IPv4 field may look like.
pub const IP_FORMS: &str =
    "an address \"198.18.0.1\", a range \"198.18.0.1-198.18.0.255\" (in turn) or \"random:198.18.0.1-198.18.0.255\"";
/// What a port field may look like.
pub const PORT_FORMS: &str =
    "a port 1024, a range \"1024-2047\" (in turn) or \"random:1024-65535\" (ports 0..=65535)";
/// What a size may look like.
pub const SIZE_FORMS: &str =
    "a frame size with FCS like 64, a sweep \"64-1518\", \"random:64-1518\", \"imix\" or an IMIX \"64:7,576:4,1500:1\" (size:weight)";
/// What a payload may look like.
pub const PAYLOAD_FORMS: &str =
    "\"zeros\", \"inc\" (0, 1, 2, … 255) or hex bytes repeated, like \"0xdeadbeef\"";
/// The protocols a stream may send.
pub const PROTOCOLS: &[&str] = &["udp", "tcp-syn", "icmp-echo"];

/// Splits a number from its unit: `"1.5Mpps"` → (1.5, `"Mpps"`).
fn number_unit(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+'))
        .unwrap_or(s.len());
    // "1e6pps": keep the exponent; "1Mpps": 'M' ends the number.
    let (num, unit) = s.split_at(end);
    let v: f64 = num.parse().ok()?;
    Some((v, unit.trim()))
}

/// `k`, `M`, `G`, `T` prefixes (powers of 1000) at the start of `unit`; returns the factor and
/// the rest.
fn prefix(unit: &str) -> (f64, &str) {
    let mut c = unit.chars();
    match c.next() {
        Some('k') | Some('K') => (1e3, c.as_str()),
        Some('M') => (1e6, c.as_str()),
        Some('G') => (1e9, c.as_str()),
        Some('T') => (1e12, c.as_str()),
        _ => (1.0, unit),
    }
}

/// Parses a bit rate like `"10G"`, `"10Gbit/s"`, `"100Mbps"` into bits per second.
fn bit_rate(s: &str) -> Option<f64> {
    let (v, unit) = number_unit(s)?;
    let (f, rest) = prefix(unit);
    match rest {
        "" | "bit/s" | "bps" | "b/s" | "bit" => Some(v * f),
        _ => None,
    }
}

/// Parses a rate (see [`RATE_FORMS`]). The value must be finite and greater than 0.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let t = s.trim();
    let bad = || format!("invalid rate \"{s}\"; expected {RATE_FORMS}");
    let rate = if t == "max" || t == "unlimited" {
        Rate::Unlimited
    } else if let Some(link) = t.strip_prefix("line:") {
        Rate::LineRate {
            link_bps: bit_rate(link).ok_or_else(bad)?,
        }
    } else if t == "line" {
        return Err(format!(
            "\"line\" needs the link speed: write \"line:10G\" for a 10 Gbit/s link; expected {RATE_FORMS}"
        ));
    } else {
        let (v, unit) = number_unit(t).ok_or_else(bad)?;
        let (f, rest) = prefix(unit);
        match rest {
            "pps" | "p/s" => Rate::Pps(v * f),
            "bit/s" | "bps" | "b/s" => Rate::Bps {
                bits_per_sec: v * f,
                l1_overhead: false,
            },
            _ => return Err(bad()),
        }
    };
    let value = match rate {
        Rate::Pps(v) => v,
        Rate::Bps { bits_per_sec, .. } => bits_per_sec,
        Rate::LineRate { link_bps } => link_bps,
        Rate::Unlimited => 1.0,
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(format!(
            "rate \"{s}\" must be greater than 0; expected {RATE_FORMS}"
        ));
    }
    Ok(rate)
}

/// The text form of a rate; [`parse_rate`] reads it back exactly (L1 overhead is a separate
/// setting and not part of the text).
pub fn fmt_rate(r: &Rate) -> String {
    match *r {
        Rate::Pps(p) => format!("{p}pps"),
        Rate::Bps { bits_per_sec, .. } => format!("{bits_per_sec}bit/s"),
        Rate::LineRate { link_bps } => format!("line:{link_bps}bit/s"),
        Rate::Unlimited => "max".to_string(),
    }
}

/// `"random:a-b"` / `"a-b"` / `"a"` → (random, a, Some(b) or None).
fn range_parts(s: &str) -> (bool, &str, Option<&str>) {
    let t = s.trim();
    let (random, t) = match t.strip_prefix("random:") {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    match t.split_once('-') {
        Some((a, b)) => (random, a.trim(), Some(b.trim())),
        None => (random, t, None),
    }
}

fn make_range<T: Copy + PartialOrd + From<u8>>(
    random: bool,
    a: T,
    b: Option<T>,
    s: &str,
    forms: &str,
) -> Result<FieldRange<T>, String> {
    match b {
        None if random => Err(format!(
            "\"{s}\": random needs a range start-end; expected {forms}"
        )),
        None => Ok(FieldRange::Fixed(a)),
        Some(b) if a > b => Err(format!(
            "\"{s}\": the range starts above its end; expected {forms}"
        )),
        Some(b) if random => Ok(FieldRange::Random { start: a, end: b }),
        Some(b) => Ok(FieldRange::Seq {
            start: a,
            end: b,
            step: T::from(1),
        }),
    }
}

/// Parses an IPv4 field (see [`IP_FORMS`]).
pub fn parse_ip_range(s: &str) -> Result<Range32, String> {
    let (random, a, b) = range_parts(s);
    let ip = |x: &str| {
        x.parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| format!("invalid IPv4 address \"{x}\" in \"{s}\"; expected {IP_FORMS}"))
    };
    let a = ip(a)?;
    let b = b.map(ip).transpose()?;
    make_range(random, a, b, s, IP_FORMS)
}

/// Parses a port field given as a string (see [`PORT_FORMS`]).
pub fn parse_port_range(s: &str) -> Result<Range16, String> {
    let (random, a, b) = range_parts(s);
    let port = |x: &str| {
        x.parse::<u16>()
            .map_err(|_| format!("invalid port \"{x}\" in \"{s}\"; expected {PORT_FORMS}"))
    };
    let a = port(a)?;
    let b = b.map(port).transpose()?;
    make_range(random, a, b, s, PORT_FORMS)
}

fn fmt_range<T: std::fmt::Display + PartialEq>(
    r: &FieldRange<T>,
    one: impl Fn(&T) -> String,
) -> String {
    match r {
        FieldRange::Fixed(v) => one(v),
        FieldRange::Seq { start, end, .. } => format!("{}-{}", one(start), one(end)),
        FieldRange::Random { start, end } => format!("random:{}-{}", one(start), one(end)),
    }
}

/// The text form of an IPv4 field.
pub fn fmt_ip_range(r: &Range32) -> String {
    fmt_range(r, |v| Ipv4Addr::from(*v).to_string())
}

/// The text form of a port field.
pub fn fmt_port_range(r: &Range16) -> String {
    fmt_range(r, |v| v.to_string())
}

/// Parses a frame size given as a string (see [`SIZE_FORMS`]); bounds are checked when the
/// stream is built (they depend on the MTU and the headers).
pub fn parse_size(s: &str) -> Result<SizeSpec, String> {
    let t = s.trim();
    if t == "imix" {
        return Ok(SizeSpec::simple_imix());
    }
    if t.contains(':') && !t.starts_with("random:") {
        let mut out = Vec::new();
        for part in t.split(',') {
            let Some((size, weight)) = part.split_once(':') else {
                return Err(format!(
                    "IMIX entry \"{part}\" in \"{s}\" is not size:weight; expected {SIZE_FORMS}"
                ));
            };
            let size: u16 = size.trim().parse().map_err(|_| {
                format!("invalid frame size \"{size}\" in \"{s}\"; expected {SIZE_FORMS}")
            })?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("invalid weight \"{weight}\" in \"{s}\"; weights are integers > 0")
            })?;
            if weight == 0 {
                return Err(format!(
                    "IMIX entry \"{part}\" in \"{s}\" has weight 0; weights are integers > 0"
                ));
            }
            out.push((size, weight));
        }
        return Ok(SizeSpec::Imix(out));
    }
    let (random, a, b) = range_parts(t);
    let size = |x: &str| {
        x.parse::<u16>()
            .map_err(|_| format!("invalid frame size \"{x}\" in \"{s}\"; expected {SIZE_FORMS}"))
    };
    let a = size(a)?;
    let b = b.map(size).transpose()?;
    Ok(match make_range(random, a, b, s, SIZE_FORMS)? {
        FieldRange::Fixed(v) => SizeSpec::Fixed(v),
        r => SizeSpec::Range(r),
    })
}

/// The text form of a size.
pub fn fmt_size(s: &SizeSpec) -> String {
    match s {
        SizeSpec::Fixed(v) => v.to_string(),
        SizeSpec::Range(r) => fmt_port_range(r),
        SizeSpec::Imix(entries) => entries
            .iter()
            .map(|(s, w)| format!("{s}:{w}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Parses a payload (see [`PAYLOAD_FORMS`]).
pub fn parse_payload(s: &str) -> Result<Payload, String> {
    let t = s.trim();
    match t {
        "zeros" | "zero" => return Ok(Payload::Zeros),
        "inc" | "incrementing" => return Ok(Payload::Incrementing),
        _ => {}
    }
    let bad = || format!("invalid payload \"{s}\"; expected {PAYLOAD_FORMS}");
    let hex = t.strip_prefix("0x").ok_or_else(bad)?;
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 2048 {
        return Err(format!(
            "payload \"{s}\" needs an even number of hex digits (1..=1024 bytes); expected {PAYLOAD_FORMS}"
        ));
    }
    let mut out = Vec::with_capacity(hex.len() / 2);
    for i in (0..hex.len()).step_by(2) {
        out.push(u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?);
    }
    Ok(Payload::Pattern(out))
}

/// The text form of a payload.
pub fn fmt_payload(p: &Payload) -> String {
    match p {
        Payload::Zeros => "zeros".into(),
        Payload::Incrementing => "inc".into(),
        Payload::Pattern(b) => {
            let mut s = String::from("0x");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1Mpps"), Ok(Rate::Pps(1e6)));
        assert_eq!(parse_rate("250kpps"), Ok(Rate::Pps(250e3)));
        assert_eq!(parse_rate("1e6pps"), Ok(Rate::Pps(1e6)));
        assert_eq!(
            parse_rate("10Gbit/s"),
            Ok(Rate::Bps {
                bits_per_sec: 10e9,
                l1_overhead: false
            })
        );
        assert_eq!(
            parse_rate("line:10G"),
            Ok(Rate::LineRate { link_bps: 10e9 })
        );
        assert_eq!(parse_rate("max"), Ok(Rate::Unlimited));
        for bad in [
            "0pps", "-1Mpps", "fast", "10Gfoo", "line", "NaNpps", "infpps",
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("1Mpps"), "{bad}: {e}");
        }
        for r in ["1.5Mpps", "123.25kbit/s", "line:40G", "max", "3pps"] {
            let v = parse_rate(r).unwrap();
            assert_eq!(parse_rate(&fmt_rate(&v)), Ok(v));
        }
    }

    #[test]
    fn ranges_and_sizes() {
        assert_eq!(
            parse_ip_range("198.18.0.1-198.18.0.9").unwrap(),
            FieldRange::Seq {
                start: 0xc612_0001,
                end: 0xc612_0009,
                step: 1
            }
        );
        assert!(parse_ip_range("198.18.0.9-198.18.0.1").is_err());
        assert!(parse_ip_range("random:198.18.0.1").is_err());
        assert!(parse_ip_range("300.1.1.1")
            .unwrap_err()
            .contains("300.1.1.1"));
        assert_eq!(
            parse_port_range("random:1-9").unwrap(),
            FieldRange::Random { start: 1, end: 9 }
        );
        assert!(parse_port_range("70000").is_err());
        assert_eq!(
            parse_size("64:7,576:4,1500:1").unwrap(),
            SizeSpec::Imix(vec![(64, 7), (576, 4), (1500, 1)])
        );
        assert!(parse_size("64:0").unwrap_err().contains("weight 0"));
        assert_eq!(parse_size("128").unwrap(), SizeSpec::Fixed(128));
        for s in ["64-1518", "random:64-128", "64:7,576:4,1500:1", "99"] {
            let v = parse_size(s).unwrap();
            assert_eq!(fmt_size(&v), s);
        }
        for s in [
            "198.18.0.1",
            "random:198.18.0.1-198.18.0.5",
            "198.18.0.1-198.18.1.0",
        ] {
            assert_eq!(fmt_ip_range(&parse_ip_range(s).unwrap()), s);
        }
        assert_eq!(
            parse_payload("0xdeadBEEF").unwrap(),
            Payload::Pattern(vec![0xde, 0xad, 0xbe, 0xef])
        );
        assert!(parse_payload("0xabc").is_err());
        assert!(parse_payload("junk").is_err());
        assert_eq!(fmt_payload(&parse_payload("0x0102").unwrap()), "0x0102");
    }
}
