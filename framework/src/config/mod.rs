//! Configuration: one TOML file declares memory, ports, lcores, the application, the L2/L3 stack
//! (addresses, routes, static neighbours, ACLs, protocol limits), tracing, metrics and run
//! options; [`parse`] turns it into a validated [`Config`].
//!
//! Validation reports *every* problem at once ([`ConfigErrors`]), each with its path in the file
//! (`ports[1].rx_queues`, `lcores[0].rx[2]`, …), the line where possible, a message and a hint
//! saying what would be valid. Serde stops at the first error, so the parsed (spanned) TOML tree
//! is walked by hand with an error-collecting reader (`reader.rs`); the per-section readers
//! (`sections.rs`, and `sections/net.rs` for the stack's sections) check what a single table can
//! tell, and the cross-reference checks (`validate.rs`, and `validate/net.rs` for subnets,
//! routes, neighbours and ACLs) run only on the parts that read well enough, so one typo does not
//! cascade.
//!
//! The output types derive `Serialize` in the same shape as the input format, so
//! `toml::to_string(&config)` prints the *effective* configuration (defaults and automatic tx
//! queue assignment resolved) as a file that parses back to the same [`Config`].
//!
//! The field reference is `docs/CONFIG.md`; `configs/default.toml` is a commented example.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

mod reader;
mod sections;
mod validate;

#[cfg(test)]
mod tests;

/// The built-in demo configuration (`configs/default.toml`): two `null` ports forwarded by one
/// lcore for five seconds.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/default.toml");

/// Parses and validates a configuration file's text.
///
/// Returns every error found, in file order (errors that belong to no line first).
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    validate::parse_with(text, &validate::Env::from_system())
}

/// Reads the file at `path` and [`parse`]s it.
///
/// A file that cannot be read gives a single [`ConfigError`] with an empty `path` and the I/O
/// error in its message. Relative paths inside the file (pcap `rx`/`tx`, `hugetlbfs`) are kept as
/// written, i.e. relative to the process's working directory, not to the file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            path: String::new(),
            line: None,
            message: format!("cannot read config file {}: {e}", path.display()),
            hint: "check that the file exists and is readable".to_string(),
        }])),
    }
}

/// The built-in demo configuration, parsed ([`DEFAULT_CONFIG`]).
///
/// # Panics
///
/// Never in practice: the file is compiled in and a test asserts that it parses.
pub fn default_config() -> Config {
    parse(DEFAULT_CONFIG).expect("configs/default.toml is valid")
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where in the file: `ports[1].rx_queues`, `lcores[0].rx[2]`, `memory.pools[0].cache_size`;
    /// empty for problems with the file as a whole (unreadable, TOML syntax).
    pub path: String,
    /// 1-based line number in the file, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What would be valid instead (may be empty).
    pub hint: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("error: ")?;
        match (self.path.is_empty(), self.line) {
            (false, Some(line)) => write!(f, "{} (line {line}): ", self.path)?,
            (false, None) => write!(f, "{}: ", self.path)?,
            (true, Some(line)) => write!(f, "line {line}: ")?,
            (true, None) => {}
        }
        f.write_str(&self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// All the problems found in a configuration file (never empty when returned by [`parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `[memory]`: hugepages and mbuf pools.
    pub memory: MemoryConfig,
    /// `[[ports]]`, in declaration order (port index = position).
    pub ports: Vec<PortConfig>,
    /// `[[lcores]]`, in declaration order, with tx queues resolved.
    pub lcores: Vec<LcoreConfig>,
    /// `[app]`: what the lcores do with packets.
    pub app: AppConfig,
    /// `[[routes]]`: static IPv4 routes, in declaration order (the connected subnets of the
    /// ports' `ipv4` addresses are implicit and not listed here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
    /// `[[neighbours]]`: static ARP entries, in declaration order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<NeighbourConfig>,
    /// `[[acl]]`: packet filters placed on graph edges, in declaration order.
    #[serde(rename = "acl", skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<AclConfig>,
    /// `[stack]`: ARP, reassembly and ICMP limits of the L2/L3 stack.
    pub stack: StackConfig,
    /// `[trace]`: trace the first packets node by node (`None`: no tracing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceConfig>,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[run]`: poll-loop and lifetime options.
    pub run: RunConfig,
}

/// Whether pools are backed by hugepages (`memory.huge_pages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HugePages {
    /// Use hugepages when available, fall back to normal pages (`"auto"`, the default).
    Auto,
    /// Fail start-up if hugepages cannot be mapped (`"required"`).
    Required,
    /// Never use hugepages (`"off"`).
    Off,
}

/// `[memory]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryConfig {
    /// Hugepage policy.
    pub huge_pages: HugePages,
    /// Mount point of a hugetlbfs to map files from (absent: anonymous `MAP_HUGETLB` mappings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugetlbfs: Option<PathBuf>,
    /// `[[memory.pools]]`, at least one.
    pub pools: Vec<PoolConfig>,
}

/// One mbuf pool (`[[memory.pools]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolConfig {
    /// Unique name, referenced by `ports[].pool`.
    pub name: String,
    /// Number of mbufs in the pool.
    pub mbufs: u32,
    /// Bytes of packet data per mbuf, after the headroom.
    pub data_room: u16,
    /// Bytes reserved in front of the packet data (for prepending headers).
    pub headroom: u16,
    /// Per-lcore cache size (0 disables the cache).
    pub cache_size: u32,
}

/// One port (`[[ports]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortConfig {
    /// Unique name (`[A-Za-z0-9_-]{1,32}`), used in queue references such as `"p0:1"`.
    pub name: String,
    /// Name of the pool its rx mbufs come from.
    pub pool: String,
    /// Number of rx queues.
    pub rx_queues: u16,
    /// Number of tx queues.
    pub tx_queues: u16,
    /// Largest L3 payload; frames are up to `mtu + 18` bytes.
    pub mtu: u16,
    /// The port's own (unicast) MAC address. Always set for `null`, `ring` and `pcap` ports
    /// (default `02:00:00:00:00:NN`, NN = port index + 1); for `af_packet`, `af_xdp` and `tap`
    /// ports `None` unless `mac` is given: the driver then uses the interface's own MAC.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_mac"
    )]
    pub mac: Option<[u8; 6]>,
    /// The port's IPv4 addresses with their subnets (`ipv4 = ["198.18.0.1/24"]`); each subnet
    /// is a connected route through this port. Subnets of different ports do not overlap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ipv4: Vec<Ipv4Cidr>,
    /// Accept every frame. When false (the default), Ethernet input accepts only frames sent to
    /// this port's MAC, to broadcast and to multicast addresses.
    pub promiscuous: bool,
    /// Impair what this port transmits (tests): drop / duplicate / swap at intervals, cap the
    /// packet rate. `None`: untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impair: Option<ImpairConfig>,
    /// The driver and its options.
    #[serde(flatten)]
    pub driver: DriverConfig,
}

/// `ports[].impair`: see [`crate::port::impair`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImpairConfig {
    /// Drop every Nth transmitted frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_every: Option<u64>,
    /// Send every Nth frame twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dup_every: Option<u64>,
    /// Hold every Nth frame back behind the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_every: Option<u64>,
    /// Drop frames above this many per second (token bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pps: Option<u64>,
}

/// A port driver and its driver-specific options (they live directly in the port table).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum DriverConfig {
    /// `driver = "null"`: rx returns frames of `size` bytes, tx frees what it is given.
    Null {
        /// Length of every received frame.
        size: u16,
        /// First bytes written into every received frame; `None`: data is left as it is
        /// (like DPDK's `net_null`).
        #[serde(
            skip_serializing_if = "Option::is_none",
            serialize_with = "ser::opt_hex"
        )]
        template: Option<Vec<u8>>,
    },
    /// `driver = "ring"`: an in-process link to `peer` (tx queue q of one side feeds rx queue q of
    /// the other).
    Ring {
        /// The ring port at the other end (may be this port itself, for loopback).
        peer: String,
        /// Slots per ring (power of two).
        depth: u32,
        /// This side takes TCP/UDP packets with partial checksums (transmit checksum offload,
        /// [`PortInfo::tx_l4_checksum_offload`](crate::port::PortInfo::tx_l4_checksum_offload))
        /// and hands them to the peer flagged good, like Linux veth passing
        /// `CHECKSUM_PARTIAL`: the stack then sums no TCP/UDP payload on this link.
        checksum_offload: bool,
    },
    /// `driver = "pcap"`: rx reads frames from a file, tx appends them to a file.
    Pcap {
        /// File to read received frames from.
        #[serde(skip_serializing_if = "Option::is_none")]
        rx: Option<PathBuf>,
        /// File to write transmitted frames to.
        #[serde(skip_serializing_if = "Option::is_none")]
        tx: Option<PathBuf>,
        /// Restart reading `rx` at its end (toml key `loop`).
        #[serde(rename = "loop")]
        repeat: bool,
    },
    /// `driver = "af_packet"`: a Linux packet socket (`AF_PACKET`, TPACKET_V3 rx ring, mmap'ed
    /// tx ring) per queue, bound to an existing interface.
    #[serde(rename = "af_packet")]
    AfPacket {
        /// The Linux interface (exists when the config is validated).
        iface: String,
        /// Send with `PACKET_QDISC_BYPASS`, skipping the kernel's queueing discipline
        /// (default true).
        qdisc_bypass: bool,
        /// Bytes per TPACKET_V3 rx block (default 262144 = 256 KiB; a power of two,
        /// 4096..=67108864).
        block_size: u32,
        /// Rx blocks per queue (default 64, 1..=1024).
        blocks: u32,
        /// Frames of the tx ring per queue (default 1024; a power of two, 16..=65536).
        tx_frames: u32,
    },
    /// `driver = "af_xdp"`: one AF_XDP socket per queue on consecutive queues of an existing
    /// interface, with the pool's buffers as UMEM.
    #[serde(rename = "af_xdp")]
    AfXdp {
        /// The Linux interface (exists when the config is validated).
        iface: String,
        /// First NIC queue (default 0, 0..=255): port queue q uses NIC queue `queue + q`.
        queue: u16,
        /// How the XDP program is attached (default [`XdpMode::Auto`]).
        mode: XdpMode,
        /// Zero-copy policy (default [`ZeroCopy::Auto`]).
        zero_copy: ZeroCopy,
        /// Descriptors per fill, completion, rx and tx ring (default 2048; a power of two,
        /// 64..=16384).
        ring_size: u32,
    },
    /// `driver = "tap"`: a TAP interface (created if missing), one queue each way.
    Tap {
        /// The TAP interface's name.
        iface: String,
        /// Bring the interface up when the port starts (default true).
        up: bool,
    },
}

impl DriverConfig {
    /// The driver's name as written in the file (`"null"`, `"af_xdp"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            DriverConfig::Null { .. } => "null",
            DriverConfig::Ring { .. } => "ring",
            DriverConfig::Pcap { .. } => "pcap",
            DriverConfig::AfPacket { .. } => "af_packet",
            DriverConfig::AfXdp { .. } => "af_xdp",
            DriverConfig::Tap { .. } => "tap",
        }
    }
}

/// How an `af_xdp` port attaches its XDP program (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode if the NIC driver supports XDP, else generic (`"auto"`, the
    /// default).
    Auto,
    /// Native (driver) mode only; start-up fails without driver support (`"native"`).
    Native,
    /// Generic (SKB) mode: works on every interface, slower (`"generic"`).
    Generic,
}

/// Whether an `af_xdp` port uses zero-copy (`zero_copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroCopy {
    /// Zero-copy if the NIC driver supports it, else copy mode (`"auto"`, the default).
    Auto,
    /// Zero-copy only; start-up fails without driver support (`"on"`).
    On,
    /// Always copy mode (`"off"`).
    Off,
}

/// An IPv4 address with a prefix length: `"198.18.0.1/24"`.
///
/// As an interface address (`ports[].ipv4`) the host bits are the port's own address; as a
/// route or ACL prefix they are zero. Displays and serializes as `"a.b.c.d/n"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Ipv4Cidr {
    /// The address (host bits included).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix_len`; `None` if `prefix_len` is above 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 32).then_some(Ipv4Cidr { addr, prefix_len })
    }

    /// The network mask as a host-order integer (`/24` → `0xffff_ff00`, `/0` → 0).
    pub fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    /// The network address: the host bits cleared (`198.18.0.1/24` → `198.18.0.0`).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The directed broadcast address: the host bits set (`198.18.0.1/24` → `198.18.0.255`).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// True if `ip` is inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }

    /// True if the two prefixes share at least one address (one contains the other).
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The same prefix with the host bits cleared (`198.18.0.1/24` → `198.18.0.0/24`).
    pub fn trunc(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

/// One queue of one port: `"p0:1"`, `"p0"` (queue 0) or `{ port = "p0", queue = 1 }`.
///
/// Displays and serializes as `"p0:1"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct QueueRef {
    /// Port name.
    pub port: String,
    /// Queue index on that port.
    pub queue: u16,
}

impl fmt::Display for QueueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.port, self.queue)
    }
}

impl From<QueueRef> for String {
    fn from(q: QueueRef) -> String {
        q.to_string()
    }
}

/// One polling core (`[[lcores]]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LcoreConfig {
    /// Unique lcore id, 0..=63.
    pub id: u32,
    /// CPU to pin the thread to (`None`: not pinned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<usize>,
    /// Rx queues this lcore polls.
    pub rx: Vec<QueueRef>,
    /// Tx queues this lcore owns: the explicit list, or the automatic assignment.
    pub tx: Vec<QueueRef>,
}

/// How l2fwd rewrites Ethernet addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FwdMode {
    /// Forward frames untouched (`"io"`).
    Io,
    /// Swap source and destination MAC (`"macswap"`, the default).
    Macswap,
    /// Source = the tx port's MAC, destination = that port's peer MAC (`"mac"`).
    Mac,
}

/// Options of the `l2fwd` application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L2fwdConfig {
    /// Address rewriting mode.
    pub mode: FwdMode,
    /// Port pairs: a frame received on one port of a pair leaves through the other (a port
    /// paired with itself sends frames back out). Every port is in exactly one pair.
    pub pairs: Vec<(String, String)>,
    /// Destination MAC written on frames leaving each port, for every port in declaration
    /// order; only filled in mode [`FwdMode::Mac`] (empty otherwise).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ser::peer_macs"
    )]
    pub peer_macs: Vec<(String, [u8; 6])>,
}

/// Options of the `l3fwd` application (none yet: the routes come from `[[routes]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct L3fwdConfig {}

/// Options of the `udp-echo` application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UdpEchoConfig {
    /// UDP port to answer on, 1..=65535 (default 7, the echo service).
    pub port: u16,
    /// The local address to answer on (one of the ports' `ipv4` addresses); `None`: every
    /// local address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
}

/// The protocol of a pktgen stream (`app.streams[].proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PktgenProto {
    /// Ethernet/IPv4/UDP (`"udp"`, the default).
    Udp,
    /// TCP SYN segments (`"tcp-syn"`).
    TcpSyn,
    /// ICMP echo requests (`"icmp-echo"`).
    IcmpEcho,
}

/// One stream of the `pktgen` application (`[[app.streams]]`). Address, port and size fields
/// take the forms of [`crate::pktgen::parse`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PktgenStreamConfig {
    /// Transport protocol.
    pub proto: PktgenProto,
    /// Ethernet source (`None`: the tx port's MAC).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_mac"
    )]
    pub src_mac: Option<[u8; 6]>,
    /// Ethernet destination (default broadcast).
    #[serde(serialize_with = "ser::mac")]
    pub dst_mac: [u8; 6],
    /// 802.1Q VLAN id, 0..=4095 (`None`: untagged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// IPv4 source addresses.
    #[serde(serialize_with = "ser::ip_range")]
    pub src_ip: crate::pktgen::Range32,
    /// IPv4 destination addresses.
    #[serde(serialize_with = "ser::ip_range")]
    pub dst_ip: crate::pktgen::Range32,
    /// UDP/TCP source ports (ignored for ICMP).
    #[serde(serialize_with = "ser::port_range")]
    pub src_port: crate::pktgen::Range16,
    /// UDP/TCP destination ports (ignored for ICMP).
    #[serde(serialize_with = "ser::port_range")]
    pub dst_port: crate::pktgen::Range16,
    /// IPv4 TTL.
    pub ttl: u8,
    /// Frame sizes including the FCS.
    #[serde(serialize_with = "ser::size")]
    pub size: crate::pktgen::SizeSpec,
    /// Payload after the signature.
    #[serde(serialize_with = "ser::payload")]
    pub payload: crate::pktgen::Payload,
}

/// How a pcap file is replayed (`app.replay.timing`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplayTiming {
    /// The gaps between the file's timestamps (`"original"`).
    Original,
    /// The file's gaps divided by this factor (`"x2"`, `"x0.5"`: twice as fast, half as fast).
    Scaled(f64),
    /// As fast as the port takes, paced by `rate` (`"fast"`).
    Fast,
}

impl Serialize for ReplayTiming {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ReplayTiming::Original => s.serialize_str("original"),
            ReplayTiming::Fast => s.serialize_str("fast"),
            ReplayTiming::Scaled(f) => s.serialize_str(&format!("x{f}")),
        }
    }
}

/// `app.replay`: send the frames of a pcap file instead of streams.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayConfig {
    /// The pcap file (read once at start-up, into memory).
    pub file: PathBuf,
    /// Timing of the replay.
    pub timing: ReplayTiming,
    /// How many times the file is sent (at least 1).
    pub loops: u32,
}

/// Options of the `pktgen` application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PktgenConfig {
    /// Rate per tx port, split evenly across the port's tx queues owned by lcores.
    #[serde(serialize_with = "ser::rate")]
    pub rate: crate::pktgen::Rate,
    /// Bit rates count the 20-byte per-frame layer-1 overhead.
    pub l1_overhead: bool,
    /// Most packets generated per tx queue per loop turn (1..=256).
    pub burst: u16,
    /// Packets per tx port, split across its queues (`None`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// How long to send (`None`: no limit).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_duration"
    )]
    pub duration: Option<Duration>,
    /// Stamp the rx signature (loss, reordering, latency).
    pub latency: bool,
    /// How long a stall the pacer makes up for by sending faster afterwards (0: forgive any
    /// debt beyond one burst; RFC 2544 trials use 0 so stalls never turn into bursts).
    #[serde(serialize_with = "ser::duration")]
    pub catch_up: Duration,
    /// The streams, sent round-robin by every tx queue (empty when `replay` is set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<PktgenStreamConfig>,
    /// Replay a pcap file instead of streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayConfig>,
    /// `[app.rfc2544]`: `ferroplane pktgen` runs an RFC 2544 throughput search with these
    /// settings instead of one run (`None`: one run, unless `--rfc2544` is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rfc2544: Option<Rfc2544Config>,
}

/// Settings of an RFC 2544 throughput search (`[app.rfc2544]` of pktgen); the CLI's
/// `--rfc2544*` flags override them one by one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfc2544Config {
    /// Frame sizes searched one after the other, FCS included (default RFC 2544's Ethernet
    /// sizes 64, 128, 256, 512, 1024, 1280, 1518); each must fit every stream and port MTU.
    pub sizes: Vec<u16>,
    /// Highest rate tried (the first trial), packets per second > 0 (default 1000000).
    pub max_pps: f64,
    /// Duration of each trial (default 1s).
    #[serde(serialize_with = "ser::duration")]
    pub trial: Duration,
    /// Stop when the search interval is below this fraction of `max_pps`, in (0, 1)
    /// (default 0.01).
    pub resolution: f64,
    /// Accepted loss ratio of a trial, in [0, 1) (default 0: zero loss).
    pub loss_ratio: f64,
    /// Most trials per frame size, 1..=1000 (default 30).
    pub max_trials: u32,
}

impl Rfc2544Config {
    /// RFC 2544's frame sizes for Ethernet (section 9.1).
    pub const DEFAULT_SIZES: [u16; 7] = [64, 128, 256, 512, 1024, 1280, 1518];
}

/// Congestion control of TCP connections (`congestion` in TCP apps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpCongestion {
    /// NewReno (RFC 5681, RFC 6582).
    Newreno,
    /// CUBIC (RFC 9438).
    Cubic,
}

/// Options of the `tcp-echo` application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpEchoConfig {
    /// TCP ports to listen on, each 1..=65535, no duplicates (default `[7]`).
    pub ports: Vec<u16>,
    /// The local address to listen on (one of the ports' `ipv4` addresses); `None`: every
    /// local address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Send buffer per connection in bytes, 1024..=1073741824 (default 262144).
    pub send_buffer: u32,
    /// Receive buffer (largest advertised window) per connection in bytes,
    /// 1024..=1073741824 (default 262144).
    pub recv_buffer: u32,
    /// Congestion control, `"newreno"` or `"cubic"` (default `"newreno"`).
    pub congestion: TcpCongestion,
    /// Disable Nagle's algorithm (default false).
    pub nodelay: bool,
    /// Connections per lcore, every state included, 1..=1048576 (default 4096).
    pub max_connections: u32,
    /// Connections per lcore in TIME-WAIT, 0..=max_connections (default 1024).
    pub max_time_wait: u32,
    /// Pending connections per listener, 1..=65535 (default 128).
    pub backlog: u32,
    /// Lcores (declared in `[[lcores]]`, polling no queues) that run the application and
    /// reach the connections through rings; empty (the default): the application runs on
    /// the stack lcores. `tcp-echo` and `http` (whose sessions then run there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_lcores: Vec<u32>,
}

/// Where an HTTP route's body comes from (`body` or `file` in `[[app.routes]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpBody {
    /// The text given in the config.
    #[serde(rename = "body")]
    Text(String),
    /// A file read into memory at start-up.
    File(std::path::PathBuf),
}

/// One `[[app.routes]]` of the `http` application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRouteConfig {
    /// Request path served (exact match; the query string is ignored), starting with `/`.
    pub path: String,
    /// The `Content-Type` of the response (default `text/plain`).
    pub content_type: String,
    /// The response body (printed as `body = "..."` or `file = "..."`, as written).
    #[serde(flatten)]
    pub body: HttpBody,
}

/// Options of the `http` application: the TCP server options of `tcp-echo` (listening ports,
/// default `[80]`) plus the routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpConfig {
    /// Listening ports, buffers, congestion control and limits.
    #[serde(flatten)]
    pub tcp: TcpEchoConfig,
    /// The paths served, each with a fixed body (404 for every other path).
    pub routes: Vec<HttpRouteConfig>,
    /// The `Server` header (default `ferroplane`).
    pub server: String,
    /// Largest request head in bytes, 256..=65536 (default 8192); larger gets 431.
    pub max_request_head: u32,
}

/// The application run by the lcores (`[app]`, chosen by `name`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum AppConfig {
    /// `name = "l2fwd"`: forward between paired ports.
    L2fwd(L2fwdConfig),
    /// `name = "l3fwd"`: route IPv4 between ports (connected subnets, `[[routes]]`, ARP,
    /// ICMP errors).
    L3fwd(L3fwdConfig),
    /// `name = "udp-echo"`: answer UDP datagrams on a port with their own payload.
    #[serde(rename = "udp-echo")]
    UdpEcho(UdpEchoConfig),
    /// `name = "pktgen"`: generate traffic on the lcores' tx queues, analyse what comes back.
    Pktgen(PktgenConfig),
    /// `name = "tcp-echo"`: echo every byte received on TCP connections to the ports.
    #[serde(rename = "tcp-echo")]
    TcpEcho(TcpEchoConfig),
    /// `name = "http"`: an HTTP/1.1 server of fixed responses and files held in memory.
    Http(HttpConfig),
}

impl AppConfig {
    /// The application's name as written in the file (`"l2fwd"`, `"l3fwd"`, `"udp-echo"`).
    pub fn name(&self) -> &'static str {
        match self {
            AppConfig::L2fwd(_) => "l2fwd",
            AppConfig::L3fwd(_) => "l3fwd",
            AppConfig::UdpEcho(_) => "udp-echo",
            AppConfig::Pktgen(_) => "pktgen",
            AppConfig::TcpEcho(_) => "tcp-echo",
            AppConfig::Http(_) => "http",
        }
    }
}

/// What a route does with the packets it matches (`routes[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAction {
    /// Send to the gateways in `via`, or directly to the destination on `port` (`"forward"`,
    /// the default).
    Forward,
    /// Drop silently: a blackhole (`"drop"`).
    Drop,
    /// Drop and answer with ICMP destination (net) unreachable (`"reject"`).
    Reject,
}

/// One static route (`[[routes]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfig {
    /// Destination prefix, host bits zero; `0.0.0.0/0` is the default route. Unique among
    /// routes and distinct from the ports' connected subnets.
    pub prefix: Ipv4Cidr,
    /// Gateways (more than one: equal-cost multipath). Each lies in a connected subnet (of
    /// `port`, when given). Empty for a directly connected route and for drop/reject routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<Ipv4Addr>,
    /// Output port: required without `via` (the destination is on that port's link),
    /// optional with it (the gateways must then be on that port's subnets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// What to do with matching packets; `via` and `port` only with [`RouteAction::Forward`].
    pub action: RouteAction,
}

/// One static ARP entry (`[[neighbours]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighbourConfig {
    /// The neighbour's address, inside one of `port`'s subnets.
    pub ip: Ipv4Addr,
    /// Its (unicast) MAC address.
    #[serde(serialize_with = "ser::mac")]
    pub mac: [u8; 6],
    /// The port it is reached through.
    pub port: String,
}

/// What an ACL does with a packet (`acl[].default`, `acl[].rules[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    /// Let the packet through (`"accept"`).
    Accept,
    /// Drop it (`"drop"`).
    Drop,
    /// Count it and let it through (`"count"`).
    Count,
}

/// One ACL rule: every field given must match; the first matching rule decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclRule {
    /// Source prefix (host bits zero; a bare address means `/32`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<Ipv4Cidr>,
    /// Destination prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Cidr>,
    /// IP protocol number (`"icmp"` = 1, `"tcp"` = 6, `"udp"` = 17, or 0..=255).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_proto"
    )]
    pub proto: Option<u8>,
    /// Source port range, inclusive (`"53"`, `"1000-2000"`); only with TCP or UDP.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_port_range"
    )]
    pub sport: Option<(u16, u16)>,
    /// Destination port range, inclusive; only with TCP or UDP.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_port_range"
    )]
    pub dport: Option<(u16, u16)>,
    /// What to do with a matching packet.
    pub action: AclAction,
}

/// One packet filter on one edge of the graph (`[[acl]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclConfig {
    /// Unique name, used in counters.
    pub name: String,
    /// The graph edge it sits on: (from node, to node), written `"ipv4-input -> ipv4-lookup"`.
    /// Only the form is checked here; the graph builder checks that the edge exists.
    #[serde(serialize_with = "ser::edge")]
    pub on: (String, String),
    /// Action for packets no rule matches (default [`AclAction::Accept`]).
    pub default: AclAction,
    /// Rules, tried in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AclRule>,
}

/// `[stack]`: limits and timers of the L2/L3 stack (the defaults suit most uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackConfig {
    /// A resolved neighbour is refreshed after this long (default 60s, 1s..=1h).
    #[serde(serialize_with = "ser::duration")]
    pub arp_timeout: Duration,
    /// ARP requests sent before a neighbour is declared unreachable (default 3, 1..=10).
    pub arp_retries: u32,
    /// Packets held per unresolved neighbour while ARP runs (default 4, 0..=64).
    pub arp_hold: u16,
    /// Size of the neighbour table (default 4096, a power of two, 16..=1048576).
    pub neighbours_max: u32,
    /// An incomplete datagram is dropped after this long (default 30s, 1s..=120s).
    #[serde(serialize_with = "ser::duration")]
    pub reassembly_timeout: Duration,
    /// Datagrams in reassembly at once, per lcore (default 1024, 1..=65536).
    pub reassembly_max: u32,
    /// Fragments per datagram (default 64, 2..=1024).
    pub reassembly_max_frags: u16,
    /// ICMP errors sent per second per lcore (default 1000, 0..=1000000; 0 disables sending
    /// ICMP errors).
    pub icmp_rate: u32,
    /// ICMP errors that may be sent back to back (token bucket depth; default 50, 1..=10000).
    pub icmp_burst: u32,
    /// TTL of locally originated packets (default 64, 1..=255).
    pub ttl: u8,
    /// Slots of each ring that hands TCP segments from one TCP lcore to another (default 1024,
    /// a power of two, 64..=65536; used only when `tcp-echo` or `http` runs on several lcores).
    pub handoff_ring: u32,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            arp_timeout: Duration::from_secs(60),
            arp_retries: 3,
            arp_hold: 4,
            neighbours_max: 4096,
            reassembly_timeout: Duration::from_secs(30),
            reassembly_max: 1024,
            reassembly_max_frags: 64,
            icmp_rate: 1000,
            icmp_burst: 50,
            ttl: 64,
            handoff_ring: 1024,
        }
    }
}

/// `[trace]`: trace the first packets after start node by node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceConfig {
    /// How many packets to trace (1..=10000).
    pub packets: u32,
    /// Only trace packets received on this port (`None`: any port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics.
    pub enabled: bool,
    /// Address of the HTTP endpoint (port 0: any free port).
    pub listen: SocketAddr,
}

/// What an lcore does when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "idle", rename_all = "lowercase")]
pub enum IdlePolicy {
    /// Poll continuously (`idle = "busy"`): lowest latency, 100% CPU.
    Busy,
    /// Spin for a while, then sleep with exponential back-off (`idle = "adaptive"`).
    Adaptive {
        /// Empty loop turns before the first sleep (`idle_spin_turns`).
        #[serde(rename = "idle_spin_turns")]
        spin_turns: u32,
        /// Upper bound of one sleep, microseconds (`idle_max_sleep_us`).
        #[serde(rename = "idle_max_sleep_us")]
        max_sleep_us: u32,
    },
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunConfig {
    /// Idle policy of the poll loops.
    #[serde(flatten)]
    pub idle: IdlePolicy,
    /// Stop after this long (`None`: run until SIGINT/SIGTERM).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_duration"
    )]
    pub duration: Option<Duration>,
    /// Period of the statistics printout.
    #[serde(serialize_with = "ser::duration")]
    pub stats_interval: Duration,
    /// Maximum packets per rx/tx burst.
    pub burst: u16,
}

/// Serializers that print values the way the file format writes them.
mod ser {
    use std::time::Duration;

    use serde::ser::SerializeMap;
    use serde::Serializer;

    pub(super) fn mac_string(m: &[u8; 6]) -> String {
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    pub(super) fn duration_string(d: &Duration) -> String {
        let ms = d.as_millis();
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }

    pub(super) fn mac<S: Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&mac_string(m))
    }

    pub(super) fn opt_mac<S: Serializer>(m: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => mac(m, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn opt_hex<S: Serializer>(t: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                s.serialize_str(&hex)
            }
            None => s.serialize_none(),
        }
    }

    pub(super) fn peer_macs<S: Serializer>(
        v: &[(String, [u8; 6])],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (port, m) in v {
            map.serialize_entry(port, &mac_string(m))?;
        }
        map.end()
    }

    /// The name of a protocol number where it has one (`"udp"`), else the number.
    pub(super) fn opt_proto<S: Serializer>(p: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(1) => s.serialize_str("icmp"),
            Some(6) => s.serialize_str("tcp"),
            Some(17) => s.serialize_str("udp"),
            Some(n) => s.serialize_u8(*n),
            None => s.serialize_none(),
        }
    }

    /// `"53"` or `"1000-2000"`.
    pub(super) fn opt_port_range<S: Serializer>(
        r: &Option<(u16, u16)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Some((lo, hi)) if lo == hi => s.serialize_str(&lo.to_string()),
            Some((lo, hi)) => s.serialize_str(&format!("{lo}-{hi}")),
            None => s.serialize_none(),
        }
    }

    pub(super) fn rate<S: Serializer>(r: &crate::pktgen::Rate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::pktgen::parse::fmt_rate(r))
    }

    pub(super) fn ip_range<S: Serializer>(
        r: &crate::pktgen::Range32,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::pktgen::parse::fmt_ip_range(r))
    }

    pub(super) fn port_range<S: Serializer>(
        r: &crate::pktgen::Range16,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            crate::pktgen::FieldRange::Fixed(p) => s.serialize_u16(*p),
            r => s.serialize_str(&crate::pktgen::parse::fmt_port_range(r)),
        }
    }

    pub(super) fn size<S: Serializer>(
        v: &crate::pktgen::SizeSpec,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            crate::pktgen::SizeSpec::Fixed(n) => s.serialize_u16(*n),
            v => s.serialize_str(&crate::pktgen::parse::fmt_size(v)),
        }
    }

    pub(super) fn payload<S: Serializer>(
        p: &crate::pktgen::Payload,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::pktgen::parse::fmt_payload(p))
    }

    /// `"from -> to"`.
    pub(super) fn edge<S: Serializer>(e: &(String, String), s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{} -> {}", e.0, e.1))
    }

    pub(super) fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&duration_string(d))
    }

    pub(super) fn opt_duration<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration(d, s),
            None => s.serialize_none(),
        }
    }
}
