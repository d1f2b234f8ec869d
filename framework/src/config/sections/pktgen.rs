//! Reader of `[app]` with `name = "pktgen"`: rate, limits, `[[app.streams]]` and `app.replay`.
//! The value formats are those of [`crate::pktgen::parse`]; frame sizes against port MTUs and
//! the replay file are checked in `validate.rs`, which knows the ports.

use toml::de::DeValue;

use super::{mac, read_duration, table_array};
use crate::config::reader::{describe, int, string, At, Diag, Got, Table, Val};
use crate::config::{
    PktgenConfig, PktgenProto, PktgenStreamConfig, ReplayConfig, ReplayTiming, Rfc2544Config,
};
use crate::pktgen::parse::{self, IP_FORMS, PORT_FORMS, PROTOCOLS, RATE_FORMS, SIZE_FORMS};
use crate::pktgen::{FieldRange, Payload, Rate, SizeSpec};

/// The keys of `[app]` for pktgen.
pub(in crate::config) const PKTGEN_KEYS: &[&str] = &[
    "rate",
    "l1_overhead",
    "burst",
    "count",
    "duration",
    "latency",
    "catch_up",
    "streams",
    "replay",
    "rfc2544",
];

/// The keys of `[app.rfc2544]`.
const RFC2544_KEYS: &[&str] = &[
    "sizes",
    "max_pps",
    "trial",
    "resolution",
    "loss_ratio",
    "max_trials",
];

/// `[app]` of pktgen as read, with the locations the cross-checks report at.
#[derive(Debug)]
pub(in crate::config) struct RawPktgen {
    /// The config, `None` if any field was invalid.
    pub(in crate::config) config: Option<PktgenConfig>,
    /// Path of each stream's `size` (or of the stream table when defaulted).
    pub(in crate::config) size_at: Vec<At<()>>,
    /// Location of `replay.file`.
    pub(in crate::config) replay_at: Option<At<()>>,
    /// Location of the `[app]` table.
    pub(in crate::config) app_at: At<()>,
    /// Location of each `rfc2544.sizes` entry (or of the table when defaulted).
    pub(in crate::config) rfc_sizes_at: Vec<At<()>>,
}

fn got<T>(x: Got<T>) -> Option<Option<T>> {
    x.optional()
}

/// Reads the pktgen keys of `[app]` (the caller finishes the table).
pub(in crate::config) fn read_pktgen(d: &mut Diag, t: &mut Table<'_, '_>) -> RawPktgen {
    let app_at = t.dflt("name", ());
    let rate = t
        .with(d, "rate", |d, v, p| {
            let s = string(d, v, p, RATE_FORMS)?;
            match parse::parse_rate(s) {
                Ok(r) => Some(r),
                Err(e) => {
                    d.error(p, &Some(v.span()), e, RATE_FORMS);
                    None
                }
            }
        })
        .or(t.dflt("rate", Rate::Unlimited));
    let l1 = t.boolean(d, "l1_overhead").or(t.dflt("l1_overhead", false));
    let burst = t
        .int(
            d,
            "burst",
            1u16,
            crate::BURST_MAX as u16,
            &format!(
                "packets generated per queue per loop turn, 1 to {}",
                crate::BURST_MAX
            ),
        )
        .or(t.dflt("burst", 32));
    let count = t.int(
        d,
        "count",
        1u64,
        u64::MAX >> 1,
        "packets to send per tx port, at least 1 (leave out for no limit)",
    );
    let duration = t.with(d, "duration", read_duration);
    let latency = t.boolean(d, "latency").or(t.dflt("latency", true));
    let catch_up = t
        .with(d, "catch_up", read_duration)
        .or(t.dflt("catch_up", std::time::Duration::from_millis(20)));

    let mut size_at = Vec::new();
    let mut streams = Some(Vec::new());
    const STREAMS_HINT: &str =
        "add [[app.streams]] tables with proto, dst_ip, size (every field has a default)";
    if let Some((tables, complete)) = table_array(d, t, "streams", STREAMS_HINT) {
        if !complete {
            streams = None;
        }
        for (_, mut st) in tables {
            size_at.push(match st.value_span("size") {
                Some(span) => At {
                    v: (),
                    path: st.child("size"),
                    span: Some(span),
                },
                None => st.dflt("size", ()),
            });
            let s = read_stream(d, &mut st);
            st.finish(d);
            match (s, &mut streams) {
                (Some(s), Some(list)) => list.push(s),
                _ => streams = None,
            }
        }
    }
    let mut replay_at = None;
    let replay = match t.raw("replay") {
        None => Some(None),
        Some((v, path)) => {
            let hint = "write replay = { file = \"in.pcap\", timing = \"original\", loops = 1 }";
            match Table::of(d, v, path, hint) {
                None => None,
                Some(mut r) => {
                    let file = r.with(d, "file", |d, v, p| {
                        string(d, v, p, "the path of a pcap file").map(std::path::PathBuf::from)
                    });
                    if let Got::Ok(f) = &file {
                        replay_at = Some(At {
                            v: (),
                            path: f.path.clone(),
                            span: f.span.clone(),
                        });
                    }
                    let file = r.required(d, "file", file, "the pcap file to send");
                    const TIMING_HINT: &str = "\"original\" (the file's gaps), \"fast\" (paced by rate), or \"xN\" to replay N times faster, like \"x2\" or \"x0.5\"";
                    let timing = r
                        .with(d, "timing", |d, v, p| {
                            let s = string(d, v, p, TIMING_HINT)?;
                            let parsed = match s {
                                "original" => Some(ReplayTiming::Original),
                                "fast" => Some(ReplayTiming::Fast),
                                _ => s
                                    .strip_prefix('x')
                                    .and_then(|f| f.parse::<f64>().ok())
                                    .filter(|f| f.is_finite() && *f > 0.0)
                                    .map(ReplayTiming::Scaled),
                            };
                            if parsed.is_none() {
                                d.error(
                                    p,
                                    &Some(v.span()),
                                    format!("invalid replay timing \"{s}\""),
                                    TIMING_HINT,
                                );
                            }
                            parsed
                        })
                        .or(r.dflt("timing", ReplayTiming::Original));
                    let loops = r
                        .int(
                            d,
                            "loops",
                            1u32,
                            u32::MAX,
                            "how many times to send the file, at least 1",
                        )
                        .or(r.dflt("loops", 1));
                    r.finish(d);
                    (|| {
                        Some(Some(ReplayConfig {
                            file: file?.v,
                            timing: timing?.v,
                            loops: loops?.v,
                        }))
                    })()
                }
            }
        }
    };

    let mut rfc_sizes_at = Vec::new();
    let rfc2544 = match t.raw("rfc2544") {
        None => Some(None),
        Some((v, path)) => read_rfc2544(d, v, path, &mut rfc_sizes_at).map(Some),
    };

    let config = (|| {
        let l1 = l1?.v;
        let mut rate = rate?.v;
        if let Rate::Bps { l1_overhead, .. } = &mut rate {
            *l1_overhead = l1;
        }
        let mut streams = streams?;
        let replay = replay?;
        if streams.is_empty() && replay.is_none() {
            streams.push(default_stream());
        }
        if !streams.is_empty() && replay.is_some() {
            d.error(
                app_at.path.replace(".name", ".replay"),
                &app_at.span,
                "`replay` and `streams` cannot be combined",
                "remove [[app.streams]] to replay the file, or remove `replay`",
            );
            return None;
        }
        Some(PktgenConfig {
            rate,
            l1_overhead: l1,
            burst: burst?.v,
            count: got(count)?,
            duration: got(duration)?,
            latency: latency?.v,
            catch_up: catch_up?.v,
            streams,
            replay,
            rfc2544: rfc2544?,
        })
    })();
    RawPktgen {
        config,
        size_at,
        replay_at,
        app_at,
        rfc_sizes_at,
    }
}

/// Reads a number (integer or float) in `lo..=hi` (`lo_open`: `lo` itself excluded,
/// `hi_open`: `hi` excluded).
fn number(
    d: &mut Diag,
    v: &Val<'_>,
    path: &str,
    (lo, lo_open): (f64, bool),
    (hi, hi_open): (f64, bool),
    hint: &str,
) -> Option<f64> {
    let x = match v.get_ref() {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        other => {
            d.error(
                path,
                &Some(v.span()),
                format!("expected a number, got {}", describe(other)),
                hint,
            );
            return None;
        }
    };
    let ok = |x: f64| {
        x.is_finite()
            && if lo_open { x > lo } else { x >= lo }
            && if hi_open { x < hi } else { x <= hi }
    };
    match x {
        Some(x) if ok(x) => Some(x),
        _ => {
            d.error(
                path,
                &Some(v.span()),
                format!(
                    "{} is out of range: must be in {}{lo}, {hi}{}",
                    describe(v.get_ref()),
                    if lo_open { "(" } else { "[" },
                    if hi_open { ")" } else { "]" }
                ),
                hint,
            );
            None
        }
    }
}

/// Reads `[app.rfc2544]`; `None` if anything in it is invalid (each problem reported).
fn read_rfc2544(
    d: &mut Diag,
    v: &Val<'_>,
    path: String,
    sizes_at: &mut Vec<At<()>>,
) -> Option<Rfc2544Config> {
    let hint = "write [app.rfc2544] with sizes = [64, 1518], max_pps, trial, resolution, \
                loss_ratio, max_trials (every key has a default)";
    let mut r = Table::of(d, v, path, hint)?;
    const SIZES_HINT: &str =
        "frame sizes with FCS, like sizes = [64, 128, 512, 1518] (64 to 65535, each once)";
    let sizes = match r.array(d, "sizes", SIZES_HINT) {
        Got::Absent => {
            sizes_at.push(r.dflt("sizes", ()));
            Some(Rfc2544Config::DEFAULT_SIZES.to_vec())
        }
        Got::Bad => None,
        Got::Ok(list) => {
            let mut out = Some(Vec::new());
            let mut seen = Vec::new();
            if list.v.is_empty() {
                d.error(
                    &list.path,
                    &list.span,
                    "the list of frame sizes is empty",
                    SIZES_HINT,
                );
                out = None;
            }
            for (i, item) in list.v.iter().enumerate() {
                let p = format!("{}[{i}]", list.path);
                sizes_at.push(At {
                    v: (),
                    path: p.clone(),
                    span: Some(item.span()),
                });
                match int(d, item, &p, 64, 65535, SIZES_HINT).map(|n| n as u16) {
                    Some(n) => {
                        if seen.contains(&n) {
                            d.error(
                                &p,
                                &Some(item.span()),
                                format!("frame size {n} is listed twice"),
                                SIZES_HINT,
                            );
                            out = None;
                        } else if let Some(o) = &mut out {
                            o.push(n);
                        }
                        seen.push(n);
                    }
                    None => out = None,
                }
            }
            out
        }
    };
    let max_pps = r
        .with(d, "max_pps", |d, v, p| {
            number(
                d,
                v,
                p,
                (0.0, true),
                (1e12, false),
                "the highest rate tried, packets per second > 0, like 1000000 or 14.88e6",
            )
        })
        .or(r.dflt("max_pps", 1e6));
    let trial = r
        .with(d, "trial", read_duration)
        .and_then(|t| {
            if t.v.is_zero() {
                d.error(
                    &t.path,
                    &t.span,
                    "a trial of 0 s sends nothing",
                    "give the duration of each trial, like \"1s\" or \"60s\" (RFC 2544)",
                );
                None
            } else {
                Some(t)
            }
        })
        .or(r.dflt("trial", std::time::Duration::from_secs(1)));
    let resolution = r
        .with(d, "resolution", |d, v, p| {
            number(
                d,
                v,
                p,
                (0.0, true),
                (1.0, true),
                "stop when the search interval is below this fraction of max_pps, like 0.01",
            )
        })
        .or(r.dflt("resolution", 0.01));
    let loss_ratio = r
        .with(d, "loss_ratio", |d, v, p| {
            number(
                d,
                v,
                p,
                (0.0, false),
                (1.0, true),
                "the accepted loss ratio of a trial, 0 (zero loss) up to below 1, like 0.001",
            )
        })
        .or(r.dflt("loss_ratio", 0.0));
    let max_trials = r
        .int(
            d,
            "max_trials",
            1u32,
            1000,
            "most trials per frame size, 1 to 1000",
        )
        .or(r.dflt("max_trials", 30));
    r.mark(RFC2544_KEYS);
    r.finish(d);
    Some(Rfc2544Config {
        sizes: sizes?,
        max_pps: max_pps?.v,
        trial: trial?.v,
        resolution: resolution?.v,
        loss_ratio: loss_ratio?.v,
        max_trials: max_trials?.v,
    })
}

/// The stream used when `[app]` lists none: 64-byte UDP from 198.18.0.1 to 198.19.0.1.
pub(in crate::config) fn default_stream() -> PktgenStreamConfig {
    PktgenStreamConfig {
        proto: PktgenProto::Udp,
        src_mac: None,
        dst_mac: [0xff; 6],
        vlan: None,
        src_ip: FieldRange::Fixed(0xc612_0001),
        dst_ip: FieldRange::Fixed(0xc613_0001),
        src_port: FieldRange::Fixed(1024),
        dst_port: FieldRange::Fixed(1024),
        ttl: 64,
        size: SizeSpec::Fixed(64),
        payload: Payload::Zeros,
    }
}

/// Reads a string field with a parser from [`parse`].
fn parsed<T>(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    key: &'static str,
    hint: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Got<T> {
    t.with(d, key, |d, v, p| {
        let s = string(d, v, p, hint)?;
        match f(s) {
            Ok(x) => Some(x),
            Err(e) => {
                d.error(p, &Some(v.span()), e, hint);
                None
            }
        }
    })
}

/// A field that is an integer or a string form.
fn int_or<T>(
    d: &mut Diag,
    v: &Val<'_>,
    p: &str,
    hi: i128,
    hint: &str,
    fixed: impl Fn(i128) -> T,
    f: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    match v.get_ref() {
        DeValue::Integer(_) => int(d, v, p, 0, hi, hint).map(fixed),
        DeValue::String(s) => match f(s) {
            Ok(x) => Some(x),
            Err(e) => {
                d.error(p, &Some(v.span()), e, hint);
                None
            }
        },
        other => {
            d.error(
                p,
                &Some(v.span()),
                format!("expected an integer or a string, got {}", describe(other)),
                hint,
            );
            None
        }
    }
}

fn read_stream(d: &mut Diag, t: &mut Table<'_, '_>) -> Option<PktgenStreamConfig> {
    let dflt = default_stream();
    let proto = t
        .choice(d, "proto", PROTOCOLS)
        .or(t.dflt("proto", "udp"))
        .map(|p| match p.v {
            "tcp-syn" => PktgenProto::TcpSyn,
            "icmp-echo" => PktgenProto::IcmpEcho,
            _ => PktgenProto::Udp,
        });
    let src_mac = t.with(d, "src_mac", mac);
    let dst_mac = t
        .with(d, "dst_mac", mac)
        .or(t.dflt("dst_mac", dflt.dst_mac));
    let vlan = t.int(d, "vlan", 0u16, 4095, "an 802.1Q VLAN id, 0 to 4095");
    let src_ip =
        parsed(d, t, "src_ip", IP_FORMS, parse::parse_ip_range).or(t.dflt("src_ip", dflt.src_ip));
    let dst_ip =
        parsed(d, t, "dst_ip", IP_FORMS, parse::parse_ip_range).or(t.dflt("dst_ip", dflt.dst_ip));
    let port = |d: &mut Diag, v: &Val<'_>, p: &str| {
        int_or(
            d,
            v,
            p,
            65535,
            PORT_FORMS,
            |n| FieldRange::Fixed(n as u16),
            parse::parse_port_range,
        )
    };
    let src_port = t
        .with(d, "src_port", port)
        .or(t.dflt("src_port", dflt.src_port));
    let dst_port = t
        .with(d, "dst_port", port)
        .or(t.dflt("dst_port", dflt.dst_port));
    let ttl = t
        .int(d, "ttl", 1u8, 255, "an IPv4 TTL, 1 to 255")
        .or(t.dflt("ttl", 64));
    let size = t
        .with(d, "size", |d, v, p| {
            int_or(
                d,
                v,
                p,
                65535,
                SIZE_FORMS,
                |n| SizeSpec::Fixed(n as u16),
                parse::parse_size,
            )
        })
        .or(t.dflt("size", dflt.size));
    let payload = parsed(d, t, "payload", parse::PAYLOAD_FORMS, parse::parse_payload)
        .or(t.dflt("payload", Payload::Zeros));
    Some(PktgenStreamConfig {
        proto: proto?,
        src_mac: got(src_mac)?,
        dst_mac: dst_mac?.v,
        vlan: got(vlan)?,
        src_ip: src_ip?.v,
        dst_ip: dst_ip?.v,
        src_port: src_port?.v,
        dst_port: dst_port?.v,
        ttl: ttl?.v,
        size: size?.v,
        payload: payload?.v,
    })
}
