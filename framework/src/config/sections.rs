//! Per-section readers: each reads one table of the file into a "raw" struct, checking what that
//! table alone can tell (types, ranges, formats, unknown keys). Fields that later cross-checks
//! need are kept with their location ([`At`]) and are `None` when invalid, so those checks can
//! skip them instead of piling follow-on errors onto a typo.
//!
//! The L2/L3 stack's sections (`[[routes]]`, `[[neighbours]]`, `[[acl]]`, `[stack]`, `[trace]`)
//! and the IPv4 value formats are read in the child module `net`.

pub(super) mod http;
pub(super) mod net;
pub(super) mod pktgen;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::reader::{describe, int, quoted_list, string, At, Diag, Got, Span, Table, Val};
use super::validate::Env;
use super::{
    FwdMode, HugePages, IdlePolicy, Ipv4Cidr, MetricsConfig, QueueRef, RunConfig, XdpMode, ZeroCopy,
};

/// Hint for names of ports and pools.
pub(super) const NAME_HINT: &str = "use 1 to 32 characters among letters, digits, '_' and '-'";

/// Hint for MAC addresses.
const MAC_HINT: &str = "write six hex bytes separated by ':', like \"02:00:00:00:00:01\"";

/// Hint for durations.
const DURATION_HINT: &str =
    "write a whole number with a unit, like \"500ms\", \"5s\", \"2m\" or \"1h\", or an integer number of seconds";

/// Hint for queue references.
pub(super) const QREF_HINT: &str =
    "write \"PORT:QUEUE\" like \"p0:1\", \"p0\" for queue 0, or { port = \"p0\", queue = 1 }";

/// True for `[A-Za-z0-9_-]{1,32}`.
pub(super) fn valid_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `"aa:bb:cc:dd:ee:ff"`.
pub(super) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("invalid MAC address \"{s}\": expected 6 bytes"));
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid MAC address \"{s}\": \"{part}\" is not a two-digit hex byte"
            ));
        }
        *byte = u8::from_str_radix(part, 16).map_err(|e| e.to_string())?;
    }
    Ok(mac)
}

/// Parses a hex string; `':'` and whitespace between digits are ignored.
pub(super) fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::with_capacity(s.len());
    for (pos, c) in s.chars().enumerate() {
        if c == ':' || c.is_whitespace() {
            continue;
        }
        match c.to_digit(16) {
            Some(v) => digits.push(v as u8),
            None => return Err(format!("invalid hex digit '{c}' at character {}", pos + 1)),
        }
    }
    if digits.is_empty() {
        return Err("template is empty".to_string());
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "odd number of hex digits ({}): every byte needs two",
            digits.len()
        ));
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Parses `"500ms"`, `"5s"`, `"2m"`, `"1h"`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("invalid duration \"{s}\""));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration \"{s}\": number too large"))?;
    let ms_per_unit = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("duration \"{s}\" has no unit")),
        other => {
            return Err(format!(
                "invalid duration \"{s}\": unknown unit \"{other}\""
            ))
        }
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration \"{s}\": too large"))
}

/// Reads a duration: a string with a unit, or an integer number of seconds.
pub(super) fn read_duration(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<Duration> {
    let span = Some(v.span());
    match v.get_ref() {
        DeValue::Integer(_) => int(d, v, path, 0, i128::from(u32::MAX), DURATION_HINT)
            .map(|n| Duration::from_secs(n as u64)),
        DeValue::String(s) => match parse_duration(s) {
            Ok(t) => Some(t),
            Err(msg) => {
                d.error(path, &span, msg, DURATION_HINT);
                None
            }
        },
        other => {
            d.error(
                path,
                &span,
                format!("expected a duration, got {}", describe(other)),
                DURATION_HINT,
            );
            None
        }
    }
}

/// Reads a MAC address string.
pub(super) fn mac(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<[u8; 6]> {
    let s = string(d, v, path, MAC_HINT)?;
    match parse_mac(s) {
        Ok(m) => Some(m),
        Err(msg) => {
            d.error(path, &Some(v.span()), msg, MAC_HINT);
            None
        }
    }
}

/// Reads a name (`[A-Za-z0-9_-]{1,32}`).
pub(super) fn name(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<String> {
    let s = string(d, v, path, NAME_HINT)?;
    if valid_name(s) {
        Some(s.to_string())
    } else {
        d.error(
            path,
            &Some(v.span()),
            format!("invalid name \"{s}\""),
            NAME_HINT,
        );
        None
    }
}

/// Reads a non-empty path string.
fn path_buf(d: &mut Diag, v: &Val<'_>, path: &str, hint: &str) -> Option<PathBuf> {
    let s = string(d, v, path, hint)?;
    if s.is_empty() {
        d.error(path, &Some(v.span()), "path must not be empty", hint);
        return None;
    }
    Some(PathBuf::from(s))
}

/// Reads a queue reference: `"p0:1"`, `"p0"` or `{ port = "p0", queue = 1 }`.
pub(super) fn queue_ref(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<QueueRef> {
    let span = Some(v.span());
    match v.get_ref() {
        DeValue::String(s) => {
            let (port, queue) = match s.split_once(':') {
                Some((p, q)) => (p, Some(q)),
                None => (s.as_ref(), None),
            };
            if !valid_name(port) {
                d.error(
                    path,
                    &span,
                    format!("invalid queue reference \"{s}\": \"{port}\" is not a port name"),
                    QREF_HINT,
                );
                return None;
            }
            let queue = match queue {
                None => 0,
                Some(q) => {
                    match q.parse::<u16>() {
                        Ok(q) => q,
                        Err(_) => {
                            d.error(
                            path,
                            &span,
                            format!("invalid queue reference \"{s}\": \"{q}\" is not a queue number"),
                            QREF_HINT,
                        );
                            return None;
                        }
                    }
                }
            };
            Some(QueueRef {
                port: port.to_string(),
                queue,
            })
        }
        DeValue::Table(_) => {
            let mut t = Table::of(d, v, path.to_string(), QREF_HINT)?;
            let port = t.with(d, "port", name);
            let port = t.required(d, "port", port, "name the port, like port = \"p0\"");
            let queue = t.int(d, "queue", 0u16, u16::MAX, "a queue index, like queue = 1");
            t.finish(d);
            let queue = queue.or(At {
                v: 0,
                path: String::new(),
                span: None,
            })?;
            Some(QueueRef {
                port: port?.v,
                queue: queue.v,
            })
        }
        other => {
            d.error(
                path,
                &span,
                format!("expected a queue reference, got {}", describe(other)),
                QREF_HINT,
            );
            None
        }
    }
}

/// Reads an array of tables (`[[ports]]`); non-table elements are errors. Returns the tables
/// (with their index in the array) and whether every element was a table.
pub(super) fn table_array<'a, 'i>(
    d: &mut Diag,
    parent: &mut Table<'a, 'i>,
    key: &'static str,
    hint: &str,
) -> Option<(Vec<(usize, Table<'a, 'i>)>, bool)> {
    let (v, path) = parent.raw(key)?;
    let DeValue::Array(items) = v.get_ref() else {
        d.error(
            &path,
            &Some(v.span()),
            format!("expected an array of tables, got {}", describe(v.get_ref())),
            hint,
        );
        return Some((Vec::new(), false));
    };
    let mut out = Vec::new();
    let mut complete = true;
    for (i, item) in items.iter().enumerate() {
        match Table::of(d, item, format!("{path}[{i}]"), hint) {
            Some(t) => out.push((i, t)),
            None => complete = false,
        }
    }
    Some((out, complete))
}

/// One `[[memory.pools]]` table.
#[derive(Debug)]
pub(super) struct RawPool {
    pub(super) path: String,
    pub(super) name: Option<At<String>>,
    pub(super) mbufs: Option<u32>,
    pub(super) data_room: Option<At<u16>>,
    pub(super) headroom: Option<u16>,
    pub(super) cache_size: Option<u32>,
}

/// `[memory]`.
#[derive(Debug)]
pub(super) struct RawMemory {
    pub(super) huge_pages: Option<HugePages>,
    pub(super) hugetlbfs: Option<Option<PathBuf>>,
    pub(super) pools: Vec<RawPool>,
    /// Every pool table read (even with errors in its fields).
    pub(super) pools_complete: bool,
}

pub(super) fn read_memory(d: &mut Diag, root: &mut Table<'_, '_>) -> RawMemory {
    const POOLS_HINT: &str =
        "add a pool: [[memory.pools]] with name = \"default\" (mbufs, data_room, headroom and cache_size have defaults)";
    let mut mem = RawMemory {
        huge_pages: Some(HugePages::Auto),
        hugetlbfs: Some(None),
        pools: Vec::new(),
        pools_complete: true,
    };
    let Some((v, path)) = root.raw("memory") else {
        d.error(
            "memory.pools",
            &None,
            "at least one mbuf pool is required, but there is no [memory] section",
            POOLS_HINT,
        );
        return mem;
    };
    let Some(mut t) = Table::of(d, v, path, "write [memory] as a table") else {
        mem.pools_complete = false;
        return mem;
    };
    mem.huge_pages = t
        .choice(d, "huge_pages", &["auto", "required", "off"])
        .or(t.dflt("huge_pages", "auto"))
        .map(|c| match c.v {
            "required" => HugePages::Required,
            "off" => HugePages::Off,
            _ => HugePages::Auto,
        });
    mem.hugetlbfs = t
        .with(d, "hugetlbfs", |d, v, p| {
            path_buf(
                d,
                v,
                p,
                "the mount point of a hugetlbfs, like \"/dev/hugepages\"",
            )
        })
        .optional();
    match table_array(d, &mut t, "pools", POOLS_HINT) {
        None => d.error(
            t.child("pools"),
            &t.span,
            "at least one mbuf pool is required",
            POOLS_HINT,
        ),
        Some((tables, complete)) => {
            mem.pools_complete = complete;
            if tables.is_empty() && complete {
                d.error(
                    t.child("pools"),
                    &t.value_span("pools"),
                    "at least one mbuf pool is required",
                    POOLS_HINT,
                );
            }
            for (_, pt) in tables {
                mem.pools.push(read_pool(d, pt));
            }
        }
    }
    t.finish(d);
    mem
}

fn read_pool(d: &mut Diag, mut t: Table<'_, '_>) -> RawPool {
    let name = t.with(d, "name", name);
    let name = t.required(
        d,
        "name",
        name,
        "give the pool a name, like name = \"default\"",
    );
    let mbufs = t
        .int(
            d,
            "mbufs",
            64u32,
            16 << 20,
            "number of mbufs, 64 to 16777216 (16M)",
        )
        .or(t.dflt("mbufs", 8192));
    let headroom = t
        .int(
            d,
            "headroom",
            0u16,
            1024,
            "bytes reserved before packet data, 0 to 1024",
        )
        .or(t.dflt("headroom", 128));
    let max_room = 65535 - headroom.as_ref().map_or(0, |h| h.v);
    let data_room = t
        .int(
            d,
            "data_room",
            64u16,
            max_room,
            &format!("bytes of packet data per mbuf, 64 to 65535 - headroom ({max_room})"),
        )
        .or(t.dflt("data_room", 2048));
    let cache_size = t
        .int(
            d,
            "cache_size",
            0u32,
            512,
            "per-lcore cache, 0 (off) to 512",
        )
        .or(t.dflt("cache_size", 256));
    // Like rte_mempool_create: the cache flush threshold (1.5 x cache_size) must fit in the pool.
    if let (Some(n), Some(c)) = (&mbufs, &cache_size) {
        if u64::from(c.v) * 3 > u64::from(n.v) * 2 {
            d.error(
                &c.path,
                &c.span,
                format!(
                    "cache_size {} is too large for a pool of {} mbufs (1.5 x cache_size must not exceed mbufs)",
                    c.v, n.v
                ),
                format!(
                    "lower cache_size to at most {} or raise mbufs to at least {}",
                    u64::from(n.v) * 2 / 3,
                    (u64::from(c.v) * 3).div_ceil(2)
                ),
            );
        }
    }
    let path = t.path.clone();
    t.finish(d);
    RawPool {
        path,
        name,
        mbufs: mbufs.map(|a| a.v),
        data_room,
        headroom: headroom.map(|a| a.v),
        cache_size: cache_size.map(|a| a.v),
    }
}

/// Driver-specific keys of each driver (a key may belong to several drivers).
const DRIVER_KEYS: &[(&str, &[&str])] = &[
    ("null", &["size", "template"]),
    ("ring", &["peer", "depth", "checksum_offload"]),
    ("pcap", &["rx", "tx", "loop"]),
    (
        "af_packet",
        &["iface", "qdisc_bypass", "block_size", "blocks", "tx_frames"],
    ),
    (
        "af_xdp",
        &["iface", "queue", "mode", "zero_copy", "ring_size"],
    ),
    ("tap", &["iface", "up"]),
];

/// Drivers attached to a Linux interface (`iface`).
const IFACE_DRIVERS: &[&str] = &["af_packet", "af_xdp", "tap"];

/// Hint for Linux interface names.
const IFACE_HINT: &str =
    "a Linux interface name: 1 to 15 bytes, without '/', ':' or whitespace, and not \".\" or \"..\"";

/// The driver part of a `[[ports]]` table.
#[derive(Debug)]
pub(super) enum RawDriver {
    Null {
        size: Option<At<u16>>,
        template: Option<Option<Vec<u8>>>,
    },
    Ring {
        peer: Option<At<String>>,
        depth: Option<At<u32>>,
        checksum_offload: Option<bool>,
    },
    Pcap {
        rx: Option<Option<PathBuf>>,
        tx: Option<Option<PathBuf>>,
        repeat: Option<bool>,
    },
    AfPacket {
        iface: Option<At<String>>,
        qdisc_bypass: Option<bool>,
        block_size: Option<u32>,
        blocks: Option<u32>,
        tx_frames: Option<u32>,
    },
    AfXdp {
        iface: Option<At<String>>,
        queue: Option<u16>,
        mode: Option<XdpMode>,
        zero_copy: Option<ZeroCopy>,
        ring_size: Option<u32>,
    },
    Tap {
        iface: Option<At<String>>,
        up: Option<bool>,
    },
}

impl RawDriver {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            RawDriver::Null { .. } => "null",
            RawDriver::Ring { .. } => "ring",
            RawDriver::Pcap { .. } => "pcap",
            RawDriver::AfPacket { .. } => "af_packet",
            RawDriver::AfXdp { .. } => "af_xdp",
            RawDriver::Tap { .. } => "tap",
        }
    }

    /// The Linux interface of an `af_packet`, `af_xdp` or `tap` port, where valid.
    pub(super) fn iface(&self) -> Option<&At<String>> {
        match self {
            RawDriver::AfPacket { iface, .. }
            | RawDriver::AfXdp { iface, .. }
            | RawDriver::Tap { iface, .. } => iface.as_ref(),
            _ => None,
        }
    }

    /// True for drivers that attach to an interface that must already exist.
    pub(super) fn needs_existing_iface(&self) -> bool {
        matches!(self, RawDriver::AfPacket { .. } | RawDriver::AfXdp { .. })
    }
}

/// One `[[ports]]` table.
#[derive(Debug)]
pub(super) struct RawPort {
    pub(super) path: String,
    /// Span of the port's table.
    pub(super) span: Span,
    pub(super) name: Option<At<String>>,
    /// Absent: the first pool.
    pub(super) pool: Got<String>,
    pub(super) rx_queues: Option<At<u16>>,
    pub(super) tx_queues: Option<At<u16>>,
    pub(super) mtu: Option<At<u16>>,
    /// `Some(None)`: absent and without a default (drivers that use the interface's MAC).
    pub(super) mac: Option<Option<[u8; 6]>>,
    /// The valid interface addresses (empty when absent).
    pub(super) ipv4: Vec<At<Ipv4Cidr>>,
    /// Every interface address is valid.
    pub(super) ipv4_ok: bool,
    pub(super) promiscuous: Option<bool>,
    /// `None` if invalid.
    pub(super) impair: Option<Option<super::ImpairConfig>>,
    pub(super) driver: Option<RawDriver>,
}

/// `02:00:00:00:00:NN` with NN = index + 1 (spilling into the fifth byte past 255 ports).
pub(super) fn default_port_mac(index: usize) -> [u8; 6] {
    let n = (index as u16).wrapping_add(1);
    let [hi, lo] = n.to_be_bytes();
    [0x02, 0, 0, 0, hi, lo]
}

/// Reads `[[ports]]`; `None` if the key is absent.
pub(super) fn read_ports(
    d: &mut Diag,
    root: &mut Table<'_, '_>,
    env: &Env,
) -> Option<(Vec<RawPort>, bool)> {
    const HINT: &str = "declare each port as a [[ports]] table with at least name and driver";
    let (tables, complete) = table_array(d, root, "ports", HINT)?;
    let ports = tables
        .into_iter()
        .map(|(i, t)| read_port(d, t, i, env))
        .collect();
    Some((ports, complete))
}

fn read_port(d: &mut Diag, mut t: Table<'_, '_>, index: usize, env: &Env) -> RawPort {
    const QUEUES_HINT: &str = "a number of queues, 1 to 64";
    let name = t.with(d, "name", name);
    let name = t.required(
        d,
        "name",
        name,
        &format!("give the port a unique name, like name = \"p{index}\""),
    );
    let pool = t.with(d, "pool", name_str);
    let mut rx_queues = t
        .int(d, "rx_queues", 1u16, 64, QUEUES_HINT)
        .or(t.dflt("rx_queues", 1));
    let mut tx_queues = t
        .int(d, "tx_queues", 1u16, 64, QUEUES_HINT)
        .or(t.dflt("tx_queues", 1));
    let mtu = t
        .int(d, "mtu", 68u16, 9600, "an MTU from 68 to 9600 bytes")
        .or(t.dflt("mtu", 1500));
    let mut mac = t
        .with(d, "mac", |d, v, p| unicast_mac(d, v, p, "port"))
        .optional();
    let (ipv4, ipv4_ok) = match t.with(d, "ipv4", net::interface_addresses) {
        Got::Absent => (Vec::new(), true),
        Got::Bad => (Vec::new(), false),
        Got::Ok(list) => list.v,
    };
    let promiscuous = t
        .boolean(d, "promiscuous")
        .or(t.dflt("promiscuous", false))
        .map(|p| p.v);

    let drivers: Vec<&'static str> = DRIVER_KEYS.iter().map(|(drv, _)| *drv).collect();
    let driver_kind = t.choice(d, "driver", &drivers);
    let driver_kind = t.required(
        d,
        "driver",
        driver_kind,
        &format!("choose a driver: driver = {}", quoted_list(&drivers)),
    );
    // Keys of the other drivers are errors; all driver keys are known either way.
    let mut driver_keys: Vec<&'static str> = Vec::new();
    for (_, keys) in DRIVER_KEYS {
        t.mark(keys);
        for key in *keys {
            if !driver_keys.contains(key) {
                driver_keys.push(key);
            }
        }
    }
    if let Some(kind) = &driver_kind {
        for key in driver_keys {
            let owners: Vec<&str> = DRIVER_KEYS
                .iter()
                .filter(|(_, keys)| keys.contains(&key))
                .map(|(drv, _)| *drv)
                .collect();
            if !t.has(key) || owners.contains(&kind.v) {
                continue;
            }
            let owners = match owners.as_slice() {
                [one] => format!("driver \"{one}\""),
                many => format!("drivers {}", quoted_list(many)),
            };
            d.error(
                t.child(key),
                &t.key_span(key),
                format!("`{key}` is only valid for {owners}"),
                format!(
                    "this port has driver = \"{}\"; remove `{key}` or change the driver",
                    kind.v
                ),
            );
        }
    }
    // Drivers on a Linux interface use the interface's own MAC unless one is given; the others
    // get 02:00:00:00:00:NN.
    if let (Some(None), Some(kind)) = (&mac, &driver_kind) {
        if !IFACE_DRIVERS.contains(&kind.v) {
            mac = Some(Some(default_port_mac(index)));
        }
    }
    let impair = match t.raw("impair") {
        None => Some(None),
        Some((v, path)) => {
            const HINT: &str = "write impair = { drop_every = 100, dup_every = 0, swap_every = 0, max_pps = 100000 } (every key optional; 0 disables)";
            match Table::of(d, v, path, HINT) {
                None => None,
                Some(mut it) => {
                    let mut every = |d: &mut Diag, key: &'static str| {
                        it.int(
                            d,
                            key,
                            0u64,
                            u64::MAX >> 1,
                            "a frame interval N: every Nth frame (0 disables)",
                        )
                        .optional()
                        .map(|o| o.filter(|n| *n > 0))
                    };
                    let drop_every = every(d, "drop_every");
                    let dup_every = every(d, "dup_every");
                    let swap_every = every(d, "swap_every");
                    let max_pps = it
                        .int(
                            d,
                            "max_pps",
                            1u64,
                            1u64 << 40,
                            "the highest packet rate let through, > 0",
                        )
                        .optional();
                    it.finish(d);
                    (|| {
                        Some(Some(super::ImpairConfig {
                            drop_every: drop_every?,
                            dup_every: dup_every?,
                            swap_every: swap_every?,
                            max_pps: max_pps?,
                        }))
                    })()
                }
            }
        }
    };
    let queues = [&mut rx_queues, &mut tx_queues];
    let driver = driver_kind.and_then(|kind| match kind.v {
        "null" => Some(read_null(d, &mut t)),
        "ring" => Some(read_ring(d, &mut t)),
        "pcap" => read_pcap(d, &mut t, env, queues),
        "af_packet" => Some(read_af_packet(d, &mut t)),
        "af_xdp" => Some(read_af_xdp(d, &mut t, queues)),
        _ => Some(read_tap(d, &mut t, queues)),
    });
    let (path, span) = (t.path.clone(), t.span.clone());
    t.finish(d);
    RawPort {
        path,
        span,
        name,
        pool,
        rx_queues,
        tx_queues,
        mtu,
        mac,
        ipv4,
        ipv4_ok,
        promiscuous,
        impair,
        driver,
    }
}

/// Reads a unicast MAC address (not multicast, broadcast or all zeros); `whose` names the owner
/// in messages (`"port"`, `"neighbour"`).
pub(super) fn unicast_mac(d: &mut Diag, v: &Val<'_>, path: &str, whose: &str) -> Option<[u8; 6]> {
    let m = mac(d, v, path)?;
    let what = if m == [0xff; 6] {
        "the broadcast address"
    } else if m[0] & 1 != 0 {
        "a multicast address"
    } else if m == [0; 6] {
        "all zeros"
    } else {
        return Some(m);
    };
    d.error(
        path,
        &Some(v.span()),
        format!("{whose} MAC {} is {what}", super::ser::mac_string(&m)),
        format!("a {whose} needs a unicast address: the lowest bit of the first byte must be 0, like \"02:00:00:00:00:01\""),
    );
    None
}

/// A name reference (validated later against the defined names).
fn name_str(d: &mut Diag, v: &Val<'_>, path: &str) -> Option<String> {
    string(d, v, path, "the name of a pool defined in [[memory.pools]]").map(str::to_string)
}

fn read_null(d: &mut Diag, t: &mut Table<'_, '_>) -> RawDriver {
    let size = t
        .int(
            d,
            "size",
            14u16,
            u16::MAX,
            "frame length in bytes, from 14 (an Ethernet header) to the pool's data_room",
        )
        .or(t.dflt("size", 64));
    let template = t.with(d, "template", |d, v, p| {
        const HINT: &str =
            "hex bytes of the start of each frame, like \"ffffffffffff 020000000001 0800\" (':' and spaces allowed)";
        let s = string(d, v, p, HINT)?;
        match parse_hex(s) {
            Ok(bytes) => Some(bytes),
            Err(msg) => {
                d.error(p, &Some(v.span()), msg, HINT);
                None
            }
        }
    });
    if let (Got::Ok(tpl), Some(size)) = (&template, &size) {
        if tpl.v.len() > usize::from(size.v) {
            d.error(
                &tpl.path,
                &tpl.span,
                format!(
                    "template is {} bytes, longer than the frame size {}",
                    tpl.v.len(),
                    size.v
                ),
                format!(
                    "shorten the template to at most {} bytes or raise size to at least {}",
                    size.v,
                    tpl.v.len()
                ),
            );
        }
    }
    RawDriver::Null {
        size,
        template: template.optional(),
    }
}

fn read_ring(d: &mut Diag, t: &mut Table<'_, '_>) -> RawDriver {
    let peer = t.with(d, "peer", |d, v, p| {
        string(d, v, p, "the name of the ring port at the other end").map(str::to_string)
    });
    let peer = t.required(
        d,
        "peer",
        peer,
        "name the ring port at the other end, like peer = \"p1\" (or this port itself for loopback)",
    );
    const DEPTH_HINT: &str = "a power of two from 64 to 65536, like depth = 1024";
    let depth = t.int(d, "depth", 64u32, 65536, DEPTH_HINT);
    let depth = power_of_two(d, depth, "depth").or(t.dflt("depth", 1024));
    let checksum_offload = t
        .boolean(d, "checksum_offload")
        .or(t.dflt("checksum_offload", false))
        .map(|a| a.v);
    RawDriver::Ring {
        peer,
        depth,
        checksum_offload,
    }
}

/// Makes an integer that is not a power of two bad (`key` names it in the message); the range
/// has been checked, and its bounds are powers of two.
pub(super) fn power_of_two(d: &mut Diag, got: Got<u32>, key: &str) -> Got<u32> {
    got.and_then(|n| {
        if n.v.is_power_of_two() {
            Some(n)
        } else {
            d.error(
                &n.path,
                &n.span,
                format!("{key} must be a power of two, got {}", n.v),
                format!(
                    "use {} or {}",
                    n.v.next_power_of_two() / 2,
                    n.v.next_power_of_two()
                ),
            );
            None
        }
    })
}

/// Drivers with exactly one rx and one tx queue: other counts are errors, and are taken out of
/// the queue ownership checks.
fn one_queue_each_way(d: &mut Diag, driver: &str, queues: [&mut Option<At<u16>>; 2]) {
    for (key, slot) in ["rx_queues", "tx_queues"].into_iter().zip(queues) {
        if let Some(q) = slot.as_ref().filter(|q| q.v != 1) {
            d.error(
                &q.path,
                &q.span,
                format!(
                    "{driver} ports have exactly one queue each way, got {key} = {}",
                    q.v
                ),
                format!("set {key} = 1 or remove it"),
            );
            *slot = None;
        }
    }
}

fn read_pcap(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    env: &Env,
    queues: [&mut Option<At<u16>>; 2],
) -> Option<RawDriver> {
    let rx = t.with(d, "rx", |d, v, p| {
        let path = path_buf(d, v, p, "the pcap file to read frames from")?;
        let full = env.resolve(&path);
        let problem = match std::fs::metadata(&full) {
            Ok(m) if m.is_dir() => Some("is a directory".to_string()),
            Ok(_) => std::fs::File::open(&full).err().map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            d.error(
                p,
                &Some(v.span()),
                format!("cannot read rx file \"{}\": {problem}", path.display()),
                format!(
                    "`{}` must be a readable pcap file; relative paths are taken from the working directory ({})",
                    path.display(),
                    env.base_display()
                ),
            );
            return None;
        }
        Some(path)
    });
    let tx = t.with(d, "tx", |d, v, p| {
        path_buf(d, v, p, "the pcap file to write frames to")
    });
    let repeat = t.boolean(d, "loop");
    if rx.is_absent() && tx.is_absent() {
        d.error(
            t.child("rx"),
            &t.span,
            "a pcap port needs `rx`, `tx` or both",
            "add rx = \"in.pcap\" to read frames and/or tx = \"out.pcap\" to write them",
        );
    }
    if let (Got::Ok(l), true) = (&repeat, rx.is_absent()) {
        if l.v {
            d.error(
                &l.path,
                &t.key_span("loop"),
                "`loop` needs an `rx` file to replay",
                "add rx = \"in.pcap\" or remove `loop`",
            );
        }
    }
    one_queue_each_way(d, "pcap", queues);
    let bad = rx.is_bad() || tx.is_bad() || repeat.is_bad();
    let driver = RawDriver::Pcap {
        rx: rx.optional(),
        tx: tx.optional(),
        repeat: repeat.or(t.dflt("loop", false)).map(|a| a.v),
    };
    (!bad).then_some(driver)
}

/// Why `s` is not a valid Linux interface name (the kernel's `dev_valid_name`), if it is not.
fn iface_name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("interface name must not be empty".to_string());
    }
    if s.len() > 15 {
        return Some(format!(
            "interface name {s:?} is {} bytes long; Linux allows at most 15",
            s.len()
        ));
    }
    if s == "." || s == ".." {
        return Some(format!("{s:?} is not a valid interface name"));
    }
    let bad = s
        .chars()
        .find(|&c| c == '/' || c == ':' || c.is_whitespace())?;
    let what = if bad.is_whitespace() {
        "whitespace".to_string()
    } else {
        format!("'{bad}'")
    };
    Some(format!("invalid interface name {s:?}: it contains {what}"))
}

/// Reads the required `iface` of a driver on a Linux interface (the name only: whether it
/// exists is checked with the other ports).
fn read_iface(d: &mut Diag, t: &mut Table<'_, '_>, missing_hint: &str) -> Option<At<String>> {
    let iface = t.with(d, "iface", |d, v, p| {
        let s = string(d, v, p, IFACE_HINT)?;
        match iface_name_problem(s) {
            None => Some(s.to_string()),
            Some(msg) => {
                d.error(p, &Some(v.span()), msg, IFACE_HINT);
                None
            }
        }
    });
    t.required(d, "iface", iface, missing_hint)
}

fn read_af_packet(d: &mut Diag, t: &mut Table<'_, '_>) -> RawDriver {
    let iface = read_iface(
        d,
        t,
        "name the Linux interface to attach to, like iface = \"eth0\"",
    );
    let qdisc_bypass = t
        .boolean(d, "qdisc_bypass")
        .or(t.dflt("qdisc_bypass", true))
        .map(|a| a.v);
    let block_size = t.int(
        d,
        "block_size",
        4096u32,
        64 << 20,
        "bytes per TPACKET_V3 rx block: a power of two from 4096 (4 KiB) to 67108864 (64 MiB), like block_size = 262144",
    );
    let block_size = power_of_two(d, block_size, "block_size")
        .or(t.dflt("block_size", 1 << 18))
        .map(|a| a.v);
    let blocks = t
        .int(d, "blocks", 1u32, 1024, "rx blocks per queue, 1 to 1024")
        .or(t.dflt("blocks", 64))
        .map(|a| a.v);
    let tx_frames = t.int(
        d,
        "tx_frames",
        16u32,
        65536,
        "frames of the tx ring per queue: a power of two from 16 to 65536, like tx_frames = 1024",
    );
    let tx_frames = power_of_two(d, tx_frames, "tx_frames")
        .or(t.dflt("tx_frames", 1024))
        .map(|a| a.v);
    RawDriver::AfPacket {
        iface,
        qdisc_bypass,
        block_size,
        blocks,
        tx_frames,
    }
}

fn read_af_xdp(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    queues: [&mut Option<At<u16>>; 2],
) -> RawDriver {
    let iface = read_iface(
        d,
        t,
        "name the Linux interface to attach to, like iface = \"eth0\"",
    );
    let queue = t
        .int(
            d,
            "queue",
            0u16,
            255,
            "the first NIC queue, 0 to 255: port queue q uses NIC queue `queue` + q",
        )
        .or(t.dflt("queue", 0))
        .map(|a| a.v);
    let mode = t
        .choice(d, "mode", &["auto", "native", "generic"])
        .or(t.dflt("mode", "auto"))
        .map(|m| match m.v {
            "native" => XdpMode::Native,
            "generic" => XdpMode::Generic,
            _ => XdpMode::Auto,
        });
    let zero_copy = t
        .choice(d, "zero_copy", &["auto", "on", "off"])
        .or(t.dflt("zero_copy", "auto"))
        .map(|z| match z.v {
            "on" => ZeroCopy::On,
            "off" => ZeroCopy::Off,
            _ => ZeroCopy::Auto,
        });
    let ring_size = t.int(
        d,
        "ring_size",
        64u32,
        16384,
        "descriptors per AF_XDP ring: a power of two from 64 to 16384, like ring_size = 2048",
    );
    let ring_size = power_of_two(d, ring_size, "ring_size")
        .or(t.dflt("ring_size", 2048))
        .map(|a| a.v);
    // Each port queue is one AF_XDP socket, which receives and sends.
    let [rx, tx] = queues;
    if let (Some(rx), Some(tx)) = (&*rx, &*tx) {
        if rx.v != tx.v {
            let (at, key, other, other_key) = if t.has("tx_queues") {
                (tx, "tx_queues", rx, "rx_queues")
            } else {
                (rx, "rx_queues", tx, "tx_queues")
            };
            d.error(
                &at.path,
                &at.span,
                format!(
                    "af_xdp ports have as many tx queues as rx queues, got rx_queues = {} and tx_queues = {}",
                    rx.v, tx.v
                ),
                format!(
                    "each queue is one AF_XDP socket, used both ways: give both the same count, like {key} = {} or {other_key} = {}",
                    other.v, at.v
                ),
            );
        }
    }
    RawDriver::AfXdp {
        iface,
        queue,
        mode,
        zero_copy,
        ring_size,
    }
}

fn read_tap(d: &mut Diag, t: &mut Table<'_, '_>, queues: [&mut Option<At<u16>>; 2]) -> RawDriver {
    let iface = read_iface(
        d,
        t,
        "name the TAP interface (created if missing), like iface = \"fp-tap0\"",
    );
    let up = t.boolean(d, "up").or(t.dflt("up", true)).map(|a| a.v);
    one_queue_each_way(d, "tap", queues);
    RawDriver::Tap { iface, up }
}

/// One `[[lcores]]` table.
#[derive(Debug)]
pub(super) struct RawLcore {
    pub(super) path: String,
    pub(super) span: Span,
    pub(super) id: Option<At<u32>>,
    pub(super) cpu: Option<Option<usize>>,
    pub(super) rx: Vec<At<QueueRef>>,
    /// Every rx entry read.
    pub(super) rx_ok: bool,
    /// `None`: assign tx queues automatically.
    pub(super) tx: Option<Vec<At<QueueRef>>>,
    /// Every tx entry read.
    pub(super) tx_ok: bool,
    /// Location of the `tx` key (or of the table when absent).
    pub(super) tx_at: At<()>,
}

/// Reads `[[lcores]]`; `None` if the key is absent.
pub(super) fn read_lcores(
    d: &mut Diag,
    root: &mut Table<'_, '_>,
    env: &Env,
) -> Option<(Vec<RawLcore>, bool)> {
    const HINT: &str = "declare each lcore as a [[lcores]] table with an id and an rx list";
    let (tables, complete) = table_array(d, root, "lcores", HINT)?;
    let lcores = tables
        .into_iter()
        .map(|(i, t)| read_lcore(d, t, i, env))
        .collect();
    Some((lcores, complete))
}

fn queue_list(
    d: &mut Diag,
    t: &mut Table<'_, '_>,
    key: &'static str,
) -> (Option<Vec<At<QueueRef>>>, bool) {
    let hint = format!("a list of queues, like {key} = [\"p0:0\", \"p1:0\"]");
    match t.array(d, key, &hint) {
        Got::Absent => (None, true),
        Got::Bad => (Some(Vec::new()), false),
        Got::Ok(items) => {
            let mut ok = true;
            let mut out = Vec::new();
            for (i, item) in items.v.iter().enumerate() {
                let path = format!("{}[{i}]", items.path);
                match queue_ref(d, item, &path) {
                    Some(q) => out.push(At {
                        v: q,
                        path,
                        span: Some(item.span()),
                    }),
                    None => ok = false,
                }
            }
            (Some(out), ok)
        }
    }
}

fn read_lcore(d: &mut Diag, mut t: Table<'_, '_>, index: usize, env: &Env) -> RawLcore {
    let id = t.int(d, "id", 0u32, 63, "a unique lcore id from 0 to 63");
    let id = t.required(
        d,
        "id",
        id,
        &format!(
            "give the lcore a unique id from 0 to 63, like id = {}",
            index + 1
        ),
    );
    let cpus = env.cpus.max(1);
    let cpu = t
        .int(
            d,
            "cpu",
            0u64,
            cpus as u64 - 1,
            &format!(
                "this machine has {cpus} CPUs online: use 0 to {} or remove `cpu` to leave the thread unpinned",
                cpus - 1
            ),
        )
        .optional()
        .map(|c| c.map(|c| c as usize));
    let (rx, rx_ok) = queue_list(d, &mut t, "rx");
    let tx_at = match t.value_span("tx") {
        Some(span) => At {
            v: (),
            path: t.child("tx"),
            span: Some(span),
        },
        None => t.dflt("tx", ()),
    };
    let (tx, tx_ok) = queue_list(d, &mut t, "tx");
    let (path, span) = (t.path.clone(), t.span.clone());
    t.finish(d);
    RawLcore {
        path,
        span,
        id,
        cpu,
        rx: rx.unwrap_or_default(),
        rx_ok,
        tx,
        tx_ok,
        tx_at,
    }
}

/// `[app]` with `name = "l2fwd"`.
#[derive(Debug)]
pub(super) struct RawL2fwd {
    pub(super) mode: Option<FwdMode>,
    /// Absent: default pairing.
    pub(super) pairs: Got<Vec<(At<String>, At<String>)>>,
    /// Location of `pairs` (or of the table).
    pub(super) pairs_at: At<()>,
    /// `None` if invalid.
    pub(super) peer_macs: Option<Vec<(At<String>, [u8; 6])>>,
}

/// `[app]`, by application.
#[derive(Debug)]
pub(super) enum RawApp {
    L2fwd(RawL2fwd),
    L3fwd,
    UdpEcho {
        port: Option<u16>,
        /// `None` if invalid.
        address: Option<Option<At<Ipv4Addr>>>,
    },
    Pktgen(pktgen::RawPktgen),
    TcpEcho(RawTcpEcho),
    /// `http`: the TCP server options and the HTTP ones.
    Http(RawTcpEcho, http::RawHttp),
}

/// `[app]` of `tcp-echo`; `None` fields were invalid (errors recorded).
#[derive(Debug)]
pub(super) struct RawTcpEcho {
    pub(super) ports: Option<Vec<At<u16>>>,
    pub(super) address: Option<Option<At<Ipv4Addr>>>,
    pub(super) send_buffer: Option<u32>,
    pub(super) recv_buffer: Option<u32>,
    pub(super) congestion: Option<super::TcpCongestion>,
    pub(super) nodelay: Option<bool>,
    pub(super) max_connections: Option<u32>,
    pub(super) max_time_wait: Option<At<u32>>,
    pub(super) backlog: Option<u32>,
    /// `app_lcores` (tcp-echo and http; `None` if invalid).
    pub(super) app_lcores: Option<Vec<At<u32>>>,
}

/// The keys of `tcp-echo`: the TCP server's and the lcores its echo logic runs on.
const TCP_ECHO_KEYS: &[&str] = &[
    "ports",
    "address",
    "send_buffer",
    "recv_buffer",
    "congestion",
    "nodelay",
    "max_connections",
    "max_time_wait",
    "backlog",
    "app_lcores",
];

/// The keys of `http`: the TCP server's, the lcores its sessions run on, and its own.
const HTTP_KEYS: &[&str] = &[
    "ports",
    "address",
    "send_buffer",
    "recv_buffer",
    "congestion",
    "nodelay",
    "max_connections",
    "max_time_wait",
    "backlog",
    "app_lcores",
    "routes",
    "server",
    "max_request_head",
];

/// Application-specific keys of each application.
const APP_KEYS: &[(&str, &[&str])] = &[
    ("l2fwd", &["mode", "pairs", "peer_macs"]),
    ("l3fwd", &[]),
    ("udp-echo", &["port", "address"]),
    ("pktgen", pktgen::PKTGEN_KEYS),
    ("tcp-echo", TCP_ECHO_KEYS),
    ("http", HTTP_KEYS),
];

/// Reads `[app]`; `None` if it is unusable (errors recorded).
pub(super) fn read_app(d: &mut Diag, root: &mut Table<'_, '_>) -> Option<RawApp> {
    let Some((v, path)) = root.raw("app") else {
        return Some(RawApp::L2fwd(RawL2fwd {
            mode: Some(FwdMode::Macswap),
            pairs: Got::Absent,
            pairs_at: At {
                v: (),
                path: "app.pairs".to_string(),
                span: None,
            },
            peer_macs: Some(Vec::new()),
        }));
    };
    let mut t = Table::of(d, v, path, "write [app] as a table with name = \"l2fwd\"")?;
    let apps: Vec<&'static str> = APP_KEYS.iter().map(|(a, _)| *a).collect();
    let app = t.choice(d, "name", &apps);
    let app = t.required(
        d,
        "name",
        app,
        &format!("choose the application: name = {}", quoted_list(&apps)),
    );
    // Keys of the other applications are errors (one per key, naming every application that
    // has it); all application keys are known either way.
    let mut reported: Vec<&str> = Vec::new();
    for (name, keys) in APP_KEYS {
        t.mark(keys);
        let Some(app) = &app else { continue };
        if app.v == *name {
            continue;
        }
        let own: &[&str] = APP_KEYS
            .iter()
            .find(|(n, _)| *n == app.v)
            .map_or(&[], |(_, k)| *k);
        for key in *keys {
            if t.has(key) && !own.contains(key) && !reported.contains(key) {
                reported.push(key);
                let owners: Vec<String> = APP_KEYS
                    .iter()
                    .filter(|(_, k)| k.contains(key))
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect();
                d.error(
                    t.child(key),
                    &t.key_span(key),
                    format!("`{key}` is only valid for app {}", owners.join(" or ")),
                    format!(
                        "this [app] has name = \"{}\"; remove `{key}` or change the application",
                        app.v
                    ),
                );
            }
        }
    }
    // Without a known application its options cannot be checked.
    let app = match app.map(|a| a.v) {
        None => None,
        Some("l2fwd") => Some(RawApp::L2fwd(read_l2fwd(d, &mut t))),
        Some("l3fwd") => Some(RawApp::L3fwd),
        Some("pktgen") => Some(RawApp::Pktgen(pktgen::read_pktgen(d, &mut t))),
        Some("tcp-echo") => {
            let mut tcp = read_tcp_echo(d, &mut t, 7);
            tcp.app_lcores = read_app_lcores(d, &mut t);
            Some(RawApp::TcpEcho(tcp))
        }
        Some("http") => {
            let mut tcp = read_tcp_echo(d, &mut t, 80);
            tcp.app_lcores = read_app_lcores(d, &mut t);
            Some(RawApp::Http(tcp, http::read_http(d, &mut t)))
        }
        Some(_) => {
            let port = t
                .int(
                    d,
                    "port",
                    1u16,
                    u16::MAX,
                    "the UDP port to answer on, 1 to 65535 (7 is the echo service)",
                )
                .or(t.dflt("port", 7))
                .map(|p| p.v);
            let address = t.with(d, "address", net::host_address).optional_at();
            Some(RawApp::UdpEcho { port, address })
        }
    };
    t.finish(d);
    app
}

/// Reads the TCP server keys of `[app]`; `default_port` is listened on when `ports` is absent.
fn read_tcp_echo(d: &mut Diag, t: &mut Table<'_, '_>, default_port: u16) -> RawTcpEcho {
    const PORT_HINT: &str = "TCP ports to listen on, each 1 to 65535, like ports = [7, 8007]";
    let ports = match t.array(d, "ports", PORT_HINT) {
        Got::Absent => Some(vec![t.dflt("ports", default_port)]),
        Got::Bad => None,
        Got::Ok(a) => {
            let mut out = Vec::new();
            let mut ok = true;
            if a.v.is_empty() {
                d.error(
                    &a.path,
                    &a.span,
                    "`ports` is empty",
                    "list at least one port, like ports = [7]",
                );
                ok = false;
            }
            for (i, v) in a.v.iter().enumerate() {
                let path = format!("{}[{i}]", a.path);
                match crate::config::reader::int(d, v, &path, 1, 65535, PORT_HINT) {
                    Some(n) => out.push(At {
                        v: n as u16,
                        path,
                        span: Some(v.span()),
                    }),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    };
    let address = t.with(d, "address", net::host_address).optional_at();
    let buffer = |d: &mut Diag, t: &mut Table<'_, '_>, key: &'static str| {
        t.int(
            d,
            key,
            1024u32,
            1 << 30,
            "bytes per connection, 1024 to 1073741824 (1 GiB), like 262144",
        )
        .or(t.dflt(key, 256 * 1024))
        .map(|v| v.v)
    };
    let send_buffer = buffer(d, t, "send_buffer");
    let recv_buffer = buffer(d, t, "recv_buffer");
    let congestion = t
        .choice(d, "congestion", &["newreno", "cubic"])
        .or(t.dflt("congestion", "newreno"))
        .map(|c| match c.v {
            "cubic" => super::TcpCongestion::Cubic,
            _ => super::TcpCongestion::Newreno,
        });
    let nodelay = t
        .boolean(d, "nodelay")
        .or(t.dflt("nodelay", false))
        .map(|v| v.v);
    let max_connections = t
        .int(
            d,
            "max_connections",
            1u32,
            1 << 20,
            "connections per lcore (every state), 1 to 1048576, like 4096",
        )
        .or(t.dflt("max_connections", 4096))
        .map(|v| v.v);
    let max_time_wait = t
        .int(
            d,
            "max_time_wait",
            0u32,
            1 << 20,
            "connections per lcore kept in TIME-WAIT, at most max_connections, like 1024",
        )
        .or(t.dflt(
            "max_time_wait",
            max_connections.map_or(1024, |m| m.min(1024)),
        ));
    let backlog = t
        .int(
            d,
            "backlog",
            1u32,
            65535,
            "pending connections per listening port, 1 to 65535, like 128",
        )
        .or(t.dflt("backlog", 128))
        .map(|v| v.v);
    RawTcpEcho {
        ports,
        address,
        send_buffer,
        recv_buffer,
        congestion,
        nodelay,
        max_connections,
        max_time_wait,
        backlog,
        app_lcores: Some(Vec::new()),
    }
}

/// Reads `app_lcores`: ids of lcores that run the application instead of the stack.
fn read_app_lcores(d: &mut Diag, t: &mut Table<'_, '_>) -> Option<Vec<At<u32>>> {
    const HINT: &str =
        "ids of [[lcores]] (0 to 63, with no rx or tx queues) that run the application, like app_lcores = [2]";
    match t.array(d, "app_lcores", HINT) {
        Got::Absent => Some(Vec::new()),
        Got::Bad => None,
        Got::Ok(a) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, v) in a.v.iter().enumerate() {
                let path = format!("{}[{i}]", a.path);
                match crate::config::reader::int(d, v, &path, 0, 63, HINT) {
                    Some(n) => out.push(At {
                        v: n as u32,
                        path,
                        span: Some(v.span()),
                    }),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    }
}

fn read_l2fwd(d: &mut Diag, t: &mut Table<'_, '_>) -> RawL2fwd {
    let mode = t
        .choice(d, "mode", &["io", "macswap", "mac"])
        .or(t.dflt("mode", "macswap"))
        .map(|m| match m.v {
            "io" => FwdMode::Io,
            "mac" => FwdMode::Mac,
            _ => FwdMode::Macswap,
        });
    let pairs_at = match t.value_span("pairs") {
        Some(span) => At {
            v: (),
            path: t.child("pairs"),
            span: Some(span),
        },
        None => t.dflt("pairs", ()),
    };
    const PAIRS_HINT: &str =
        "a list of port pairs, like pairs = [[\"p0\", \"p1\"], [\"p2\", \"p2\"]]";
    let pairs = t.array(d, "pairs", PAIRS_HINT).and_then(|items| {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.v.iter().enumerate() {
            let ppath = format!("{}[{i}]", items.path);
            let DeValue::Array(two) = item.get_ref() else {
                d.error(
                    &ppath,
                    &Some(item.span()),
                    format!("expected a pair of port names, got {}", describe(item.get_ref())),
                    PAIRS_HINT,
                );
                ok = false;
                continue;
            };
            if two.len() != 2 {
                d.error(
                    &ppath,
                    &Some(item.span()),
                    format!("a pair has exactly two ports, got {}", two.len()),
                    "write [\"a\", \"b\"], or [\"a\", \"a\"] to send a port's frames back out of it",
                );
                ok = false;
                continue;
            }
            let mut names = Vec::new();
            for (j, e) in two.iter().enumerate() {
                let epath = format!("{ppath}[{j}]");
                if let Some(s) = string(d, e, &epath, "a port name, like \"p0\"") {
                    names.push(At {
                        v: s.to_string(),
                        path: epath,
                        span: Some(e.span()),
                    });
                }
            }
            match <[At<String>; 2]>::try_from(names) {
                Ok([a, b]) => out.push((a, b)),
                Err(_) => ok = false,
            }
        }
        ok.then_some(At {
            v: out,
            path: items.path,
            span: items.span,
        })
    });
    let peer_macs = match t.raw("peer_macs") {
        None => Some(Vec::new()),
        Some((v, path)) => {
            let is_mac = mode == Some(FwdMode::Mac);
            if !is_mac && mode.is_some() {
                d.error(
                    &path,
                    &t.key_span("peer_macs"),
                    "`peer_macs` is only used with mode = \"mac\"",
                    "remove `peer_macs` or set mode = \"mac\"",
                );
            }
            let hint =
                "a table of port name = MAC, like peer_macs = { p1 = \"02:00:00:00:00:aa\" }";
            let mut pm = Table::of(d, v, path, hint);
            let mut out = Vec::new();
            let mut ok = pm.is_some() && (is_mac || mode.is_none());
            if let Some(pm) = &mut pm {
                for (key, kspan, val) in pm.entries() {
                    let epath = pm.child(key);
                    match mac(d, val, &epath) {
                        Some(m) => out.push((
                            At {
                                v: key.to_string(),
                                path: epath,
                                span: kspan,
                            },
                            m,
                        )),
                        None => ok = false,
                    }
                }
            }
            ok.then_some(out)
        }
    };
    RawL2fwd {
        mode,
        pairs,
        pairs_at,
        peer_macs,
    }
}

/// Reads `[metrics]`; `None` if invalid.
pub(super) fn read_metrics(d: &mut Diag, root: &mut Table<'_, '_>) -> Option<MetricsConfig> {
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 9100));
    let Some((v, path)) = root.raw("metrics") else {
        return Some(MetricsConfig {
            enabled: true,
            listen: default_listen,
        });
    };
    let mut t = Table::of(d, v, path, "write [metrics] as a table")?;
    let enabled = t.boolean(d, "enabled").or(t.dflt("enabled", true));
    const LISTEN_HINT: &str =
        "an IP address and port, like \"127.0.0.1:9100\", \"[::1]:9100\" or \"0.0.0.0:9100\" (port 0: any free port)";
    let listen = t
        .with(d, "listen", |d, v, p| {
            let s = string(d, v, p, LISTEN_HINT)?;
            match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    d.error(
                        p,
                        &Some(v.span()),
                        format!("invalid listen address \"{s}\""),
                        LISTEN_HINT,
                    );
                    None
                }
            }
        })
        .or(t.dflt("listen", default_listen));
    t.finish(d);
    Some(MetricsConfig {
        enabled: enabled?.v,
        listen: listen?.v,
    })
}

/// Reads `[run]`; `None` if invalid.
pub(super) fn read_run(d: &mut Diag, root: &mut Table<'_, '_>) -> Option<RunConfig> {
    let defaults = RunConfig {
        idle: IdlePolicy::Adaptive {
            spin_turns: 64,
            max_sleep_us: 100,
        },
        duration: None,
        stats_interval: Duration::from_secs(1),
        burst: 32,
    };
    let Some((v, path)) = root.raw("run") else {
        return Some(defaults);
    };
    let mut t = Table::of(d, v, path, "write [run] as a table")?;
    let idle = t
        .choice(d, "idle", &["busy", "adaptive"])
        .or(t.dflt("idle", "adaptive"));
    let spin = t.int(
        d,
        "idle_spin_turns",
        0u32,
        u32::MAX,
        "empty loop turns before sleeping, like idle_spin_turns = 64",
    );
    let sleep = t.int(
        d,
        "idle_max_sleep_us",
        1u32,
        100_000,
        "longest idle sleep in microseconds, 1 to 100000",
    );
    if idle.as_ref().is_some_and(|i| i.v == "busy") {
        for key in ["idle_spin_turns", "idle_max_sleep_us"] {
            if t.has(key) {
                d.error(
                    t.child(key),
                    &t.key_span(key),
                    format!("`{key}` is only valid with idle = \"adaptive\""),
                    format!("remove `{key}` or set idle = \"adaptive\""),
                );
            }
        }
    }
    let duration = t
        .with(d, "duration", read_duration)
        .and_then(|dur| {
            if dur.v.is_zero() {
                d.error(
                    &dur.path,
                    &dur.span,
                    "duration must be greater than zero",
                    "remove `duration` to run until Ctrl-C (SIGINT/SIGTERM), or give a positive duration like \"5s\"",
                );
                None
            } else {
                Some(dur)
            }
        })
        .optional();
    let stats_interval = t
        .with(d, "stats_interval", read_duration)
        .and_then(|s| {
            if s.v < Duration::from_millis(100) {
                d.error(
                    &s.path,
                    &s.span,
                    format!(
                        "stats_interval must be at least 100ms, got {}ms",
                        s.v.as_millis()
                    ),
                    "use a period of \"100ms\" or more, like \"1s\"",
                );
                None
            } else {
                Some(s)
            }
        })
        .or(t.dflt("stats_interval", defaults.stats_interval));
    let burst = t
        .int(d, "burst", 1u16, 256, "packets per burst, 1 to 256")
        .or(t.dflt("burst", defaults.burst));
    t.finish(d);
    let idle = match idle?.v {
        "busy" => IdlePolicy::Busy,
        _ => IdlePolicy::Adaptive {
            spin_turns: spin.or(t_dflt(64))?.v,
            max_sleep_us: sleep.or(t_dflt(100))?.v,
        },
    };
    Some(RunConfig {
        idle,
        duration: duration?,
        stats_interval: stats_interval?.v,
        burst: burst?.v,
    })
}

/// A default whose location no later check needs.
fn t_dflt<T>(v: T) -> At<T> {
    At {
        v,
        path: String::new(),
        span: None,
    }
}
