//! Network namespaces and veth pairs for interop tests: the Linux kernel in a namespace of its
//! own is the reference peer (ping, curl, iperf3, tcpdump … run there), ferroplane runs in the
//! root namespace or in another one.
//!
//! ```ignore
//! mod support;
//! use support::netns::{self, End, Netns, VethPair};
//!
//! #[test]
//! fn ping_through_ferroplane() {
//!     if !netns::require_root() || !netns::require_tool("ping") {
//!         return;
//!     }
//!     let peer = Netns::new("peer").unwrap();
//!     // One end stays in the root namespace for ferroplane, the other goes to the peer.
//!     let link = VethPair::new(&netns::ifname("f"), None, &netns::ifname("p"), Some(&peer)).unwrap();
//!     link.addr(End::B, "198.18.0.2/24").unwrap();
//!     // … start ferroplane on link.a, then:
//!     let out = peer.run(&["ping", "-c", "1", "-W", "1", "198.18.0.1"], Duration::from_secs(5)).unwrap();
//!     assert!(out.status.success());
//! }
//! ```
//!
//! **Names.** A namespace is `fp-<pid>-<n>-<tag>`; [`ifname`] makes interface names
//! `fpv<pid in base 36, 5 chars><n in base 36><tag>`, at most 15 characters. Both are unique
//! across the processes of a machine and carry the pid of the process that made them.
//!
//! **Cleanup.** Dropping a [`Netns`] kills every process still running in it and deletes it;
//! dropping a [`VethPair`] deletes it (both ends). Drops run during unwinding too, so a failing
//! test cleans up. A process killed outright (Ctrl-C, SIGKILL, a timeout of the test runner)
//! leaves its namespaces and root-namespace veths behind: the first [`Netns::new`] or
//! [`VethPair::new`] of every later test process removes those whose creating pid no longer
//! exists ([`remove_stale`]), and `tests/netns.sh cleanup` removes every `fp-*` namespace and
//! every `fpv*` link at once (do not run it while tests are running).
//!
//! **Safety of the root namespace.** Only addresses from 198.18.0.0/15 may be assigned
//! ([`VethPair::addr`] asserts it). A veth end left in the root namespace gets IPv4 forwarding
//! off, strict reverse-path filtering and IPv6 off, so the host never routes test traffic
//! elsewhere nor sends its own onto the test link.
//!
//! **Skipping.** [`require_root`] and [`require_tool`] return false (the test then returns
//! early and passes) with a "skipping: …" note, or panic when `FERROPLANE_REQUIRE_TOOLS=1`, as
//! CI sets it.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// The only range tests may assign addresses from: the benchmarking range of RFC 2544.
pub const TEST_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// Longest Linux interface name.
pub const IFNAME_MAX: usize = 15;

/// Prefix of every namespace made here.
pub const NS_PREFIX: &str = "fp-";

/// Prefix of every interface name [`ifname`] makes.
pub const IF_PREFIX: &str = "fpv";

/// How long `ip` itself may take (it never waits on the network).
const IP_TIMEOUT: Duration = Duration::from_secs(20);

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Skip policy.

fn tools_required() -> bool {
    std::env::var("FERROPLANE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

fn skip(what: &str) -> bool {
    assert!(
        !tools_required(),
        "{what}, and FERROPLANE_REQUIRE_TOOLS=1 makes a skip a failure"
    );
    eprintln!("skipping: {what}");
    false
}

/// True when running as root. Otherwise panics if `FERROPLANE_REQUIRE_TOOLS=1`, else prints
/// "skipping: needs root" and returns false (the caller returns early).
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip("needs root")
}

/// True when the external program `name` is on the `PATH` (or in /usr/sbin, /sbin). Otherwise
/// the same policy as [`require_root`], naming the Debian package to install.
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    skip(&format!(
        "needs {name} (apt-get install {})",
        debian_package(name)
    ))
}

/// The Debian package that provides a tool the interop tests use.
pub fn debian_package(tool: &str) -> &str {
    match tool {
        "ip" | "tc" | "bridge" => "iproute2",
        "ping" => "iputils-ping",
        "tshark" => "tshark",
        "tcpdump" => "tcpdump",
        "iperf3" => "iperf3",
        "socat" => "socat",
        "curl" => "curl",
        "nc" => "netcat-openbsd",
        "wrk" => "wrk",
        "redis-benchmark" => "redis-tools",
        "ethtool" => "ethtool",
        other => other,
    }
}

/// Where `name` is installed: searched on `PATH`, then in /usr/sbin and /sbin (root tools are
/// there and a test runner's `PATH` may lack them).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Polls `f` until it returns true or `timeout` passes (checking once more at the end);
/// returns its last answer.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands with a time limit.

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a pipe to its end on a thread, keeping what arrived so far readable.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let b = buf.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    b.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
                let _ = tx.send(());
            });
        }
        Collector { buf, done }
    }

    /// What was read, after waiting until `deadline` at most for the end of the pipe (a
    /// background process started by the command may hold it open).
    fn finish(self, deadline: Instant) -> Vec<u8> {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let _ = self.done.recv_timeout(wait);
        std::mem::take(&mut *self.buf.lock().unwrap())
    }
}

/// Runs `cmd` (stdin closed, output captured) and waits at most `timeout` for it. On timeout the
/// process is killed and the error says which command timed out, with its output so far.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> io::Result<Output> {
    let shown = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start `{shown}`: {e}")))?;
    let out = Collector::start(child.stdout.take());
    let err = Collector::start(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let grace = Instant::now() + Duration::from_millis(200);
            let stdout = String::from_utf8_lossy(&out.finish(grace)).into_owned();
            let stderr = String::from_utf8_lossy(&err.finish(grace)).into_owned();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "`{shown}` timed out after {timeout:?} and was killed\n\
                     stdout so far:\n{stdout}\nstderr so far:\n{stderr}"
                ),
            ));
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    };
    Ok(Output {
        status,
        stdout: out.finish(deadline),
        stderr: err.finish(deadline),
    })
}

fn ip_program() -> &'static Path {
    static IP: OnceLock<PathBuf> = OnceLock::new();
    IP.get_or_init(|| find_tool("ip").unwrap_or_else(|| PathBuf::from("ip")))
}

/// Runs `ip args…` and returns its stdout; a failure's error carries the command and stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let mut cmd = Command::new(ip_program());
    cmd.args(args);
    let shown = describe(&cmd);
    let o = run_bounded(cmd, IP_TIMEOUT)?;
    if !o.status.success() {
        return Err(io::Error::other(format!(
            "`{shown}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// `ip [-n ns] args…`
fn ip_in(ns: Option<&str>, args: &[&str]) -> io::Result<String> {
    match ns {
        None => ip(args),
        Some(ns) => {
            let mut all = vec!["-n", ns];
            all.extend_from_slice(args);
            ip(&all)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Names and stale objects.

fn base36(mut n: u32, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A unique interface name for this process: `fpv`, the pid (5 base-36 digits), a counter,
/// then as much of `tag` as fits in 15 characters.
pub fn ifname(tag: &str) -> String {
    ifname_for(std::process::id(), tag)
}

/// The name [`ifname`] would make in process `pid` (for tests of the stale cleanup).
pub fn ifname_for(pid: u32, tag: &str) -> String {
    let mut name = format!("{IF_PREFIX}{}{}", base36(pid, 5), base36(next_id(), 1));
    let room = IFNAME_MAX.saturating_sub(name.len());
    name.extend(tag.chars().filter(char::is_ascii_alphanumeric).take(room));
    name
}

/// The pid encoded in a name from [`ifname`], if it is one.
fn ifname_pid(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(IF_PREFIX)?.get(..5)?;
    u32::from_str_radix(digits, 36).ok()
}

/// The pid encoded in a namespace name from [`Netns::new`], if it is one.
fn ns_pid(name: &str) -> Option<u32> {
    name.strip_prefix(NS_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Names of the existing network namespaces.
pub fn netns_list() -> io::Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// True if a network namespace of that name exists.
pub fn netns_exists(name: &str) -> bool {
    netns_list().is_ok_and(|l| l.iter().any(|n| n == name))
}

/// Names of the interfaces in `ns` (the root namespace for `None`).
pub fn links(ns: Option<&str>) -> io::Result<Vec<String>> {
    Ok(ip_in(ns, &["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

/// True if interface `name` exists in `ns` (the root namespace for `None`).
pub fn link_exists(ns: Option<&str>, name: &str) -> bool {
    links(ns).is_ok_and(|l| l.iter().any(|n| n == name))
}

/// Pids of the processes running in namespace `name`.
fn ns_pids(name: &str) -> Vec<i32> {
    ip(&["netns", "pids", name])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills every process in namespace `name`, waits (2 s at most) for them to go, deletes it.
fn destroy_ns(name: &str) -> io::Result<()> {
    for pid in ns_pids(name) {
        // SAFETY: plain kill(2); a pid that vanished meanwhile just yields ESRCH.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if !wait_for(Duration::from_secs(2), || ns_pids(name).is_empty()) {
        eprintln!("warning: processes still running in namespace {name} after SIGKILL");
    }
    ip(&["netns", "del", name]).map(drop)
}

/// Removes the namespaces (`fp-<pid>-…`) and root-namespace interfaces (`fpv<pid>…`) made by
/// processes that no longer exist, and returns their names. [`Netns::new`] and
/// [`VethPair::new`] call it once per process.
pub fn remove_stale() -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for ns in netns_list()? {
        if ns_pid(&ns).is_some_and(|p| !pid_alive(p)) {
            match destroy_ns(&ns) {
                Ok(()) => removed.push(ns),
                Err(e) => eprintln!("warning: cannot remove stale namespace {ns}: {e}"),
            }
        }
    }
    for link in links(None)? {
        if ifname_pid(&link).is_some_and(|p| !pid_alive(p)) {
            match ip(&["link", "del", "dev", &link]) {
                Ok(_) => removed.push(link),
                // Deleting one end of a veth already took the other.
                Err(_) if !link_exists(None, &link) => removed.push(link),
                Err(e) => eprintln!("warning: cannot remove stale interface {link}: {e}"),
            }
        }
    }
    if !removed.is_empty() {
        eprintln!(
            "note: removed leftovers of killed test processes: {}",
            removed.join(" ")
        );
    }
    Ok(removed)
}

fn remove_stale_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = remove_stale() {
            eprintln!("warning: cannot look for stale test namespaces: {e}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Namespaces.

/// A network namespace made for a test; dropped, it kills what runs in it and disappears.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `fp-<pid>-<n>-<tag>` (`tag` keeps only `[a-z0-9]`, 16 characters at most) with
    /// its loopback up. Removes the leftovers of dead test processes first (once per process).
    pub fn new(tag: &str) -> io::Result<Netns> {
        remove_stale_once();
        let tag: String = tag
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        let mut name = format!("{NS_PREFIX}{}-{}", std::process::id(), next_id());
        if !tag.is_empty() {
            name = format!("{name}-{tag}");
        }
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "dev", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip -n NAME`, `ip netns exec NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME args…`, to be configured and run by the caller.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ip_program());
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs `args` in the namespace, stdin closed and output captured, for at most `timeout`:
    /// a command still running then is killed and an error of kind `TimedOut` names it. A
    /// command that fails is not an error: check `status`.
    pub fn run(&self, args: &[&str], timeout: Duration) -> io::Result<Output> {
        run_bounded(self.exec(args), timeout)
    }

    /// Starts `args` in the namespace (stdin closed, stdout and stderr inherited). The caller
    /// must kill it; dropping the namespace kills it too.
    pub fn spawn(&self, args: &[&str]) -> io::Result<Child> {
        self.exec(args).stdin(Stdio::null()).spawn()
    }

    /// `ip -n NAME args…`, returning stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        ip_in(Some(&self.name), args)
    }

    /// Pids of the processes running in the namespace.
    pub fn pids(&self) -> Vec<i32> {
        ns_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = destroy_ns(&self.name) {
            eprintln!(
                "warning: cannot delete namespace {} ({e}); tests/netns.sh cleanup removes it",
                self.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Veth pairs.

/// One end of a [`VethPair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The first end (`a`).
    A,
    /// The second end (`b`).
    B,
}

/// A veth pair, each end in a namespace or the root namespace, both up. Dropped, it is
/// deleted (deleting one end deletes both).
#[derive(Debug)]
pub struct VethPair {
    /// Name of end A.
    pub a: String,
    /// Name of end B.
    pub b: String,
    ns_a: Option<String>,
    ns_b: Option<String>,
}

fn check_ifname(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "interface name {name:?}: 1 to {IFNAME_MAX} characters of [A-Za-z0-9._-] \
                 (use netns::ifname)"
            ),
        ))
    }
}

/// Panics unless `cidr` (`a.b.c.d/len`) lies inside 198.18.0.0/15, the only range tests use.
pub fn assert_test_cidr(cidr: &str) {
    let parsed = cidr.split_once('/').and_then(|(a, l)| {
        let a: Ipv4Addr = a.parse().ok()?;
        let l: u8 = l.parse().ok()?;
        (l <= 32).then_some((a, l))
    });
    let Some((addr, len)) = parsed else {
        panic!("{cidr:?} is not an IPv4 address with a prefix length (a.b.c.d/len)");
    };
    let (net, net_len) = TEST_NET;
    let mask = u32::MAX << (32 - net_len);
    assert!(
        u32::from(addr) & mask == u32::from(net) && len >= net_len,
        "{cidr} is outside 198.18.0.0/15: tests use only the benchmarking range (RFC 2544)"
    );
}

/// Keeps the host from acting on a test link in the root namespace: no IPv4 forwarding of what
/// arrives on it, strict reverse-path filtering, no IPv6.
fn isolate_root_end(name: &str) {
    for (key, value) in [
        (format!("ipv4/conf/{name}/forwarding"), "0"),
        (format!("ipv4/conf/{name}/rp_filter"), "1"),
        (format!("ipv6/conf/{name}/disable_ipv6"), "1"),
    ] {
        let path = format!("/proc/sys/net/{key}");
        if let Err(e) = std::fs::write(&path, value) {
            eprintln!("warning: cannot write {value} to {path}: {e}");
        }
    }
}

impl VethPair {
    /// Creates the pair `a`–`b` with each end directly in its namespace (`None`: the root
    /// namespace) and brings both up. Names must be valid and unique where they land; in the
    /// root namespace use [`ifname`]. Root-namespace ends are isolated from the host's routing
    /// (see the module docs).
    pub fn new(
        a: &str,
        ns_a: Option<&Netns>,
        b: &str,
        ns_b: Option<&Netns>,
    ) -> io::Result<VethPair> {
        // One queue each way: a veth otherwise gets one queue per CPU, and a single-queue
        // AF_XDP port would miss the frames the kernel spreads onto the other queues.
        VethPair::with_queues(a, ns_a, b, ns_b, 1)
    }

    /// [`VethPair::new`] with `queues` rx and tx queues on each end (a frame arrives on the
    /// receive queue numbered like the transmit queue the sender's kernel picked for its flow).
    pub fn with_queues(
        a: &str,
        ns_a: Option<&Netns>,
        b: &str,
        ns_b: Option<&Netns>,
        queues: u16,
    ) -> io::Result<VethPair> {
        check_ifname(a)?;
        check_ifname(b)?;
        remove_stale_once();
        let n = queues.to_string();
        let q = ["numtxqueues", n.as_str(), "numrxqueues", n.as_str()];
        let mut args = vec!["link", "add", a];
        args.extend(q);
        if let Some(ns) = ns_a {
            args.extend(["netns", ns.name()]);
        }
        args.extend(["type", "veth", "peer", "name", b]);
        args.extend(q);
        if let Some(ns) = ns_b {
            args.extend(["netns", ns.name()]);
        }
        ip(&args)?;
        let pair = VethPair {
            a: a.to_string(),
            b: b.to_string(),
            ns_a: ns_a.map(|n| n.name().to_string()),
            ns_b: ns_b.map(|n| n.name().to_string()),
        };
        for end in [End::A, End::B] {
            if pair.ns(end).is_none() {
                isolate_root_end(pair.name(end));
            }
            pair.ip(end, &["link", "set", "dev", pair.name(end), "up"])?;
        }
        Ok(pair)
    }

    /// A pair with names from [`ifname`] (tags `a` and `b`).
    pub fn between(ns_a: Option<&Netns>, ns_b: Option<&Netns>) -> io::Result<VethPair> {
        VethPair::new(&ifname("a"), ns_a, &ifname("b"), ns_b)
    }

    /// The interface name of `end`.
    pub fn name(&self, end: End) -> &str {
        match end {
            End::A => &self.a,
            End::B => &self.b,
        }
    }

    /// The namespace of `end` (`None`: the root namespace).
    pub fn ns(&self, end: End) -> Option<&str> {
        match end {
            End::A => self.ns_a.as_deref(),
            End::B => self.ns_b.as_deref(),
        }
    }

    /// `ip [-n NS] args…` in the namespace of `end`.
    pub fn ip(&self, end: End, args: &[&str]) -> io::Result<String> {
        ip_in(self.ns(end), args)
    }

    /// Adds address `cidr` (e.g. `198.18.0.2/24`) to `end`.
    ///
    /// # Panics
    /// If `cidr` is not inside 198.18.0.0/15.
    pub fn addr(&self, end: End, cidr: &str) -> io::Result<()> {
        assert_test_cidr(cidr);
        self.ip(end, &["addr", "add", cidr, "dev", self.name(end)])
            .map(drop)
    }

    /// The MAC address of `end`, as `ip` prints it (`aa:bb:cc:dd:ee:ff`).
    pub fn mac(&self, end: End) -> io::Result<String> {
        let out = self.ip(end, &["-br", "link", "show", "dev", self.name(end)])?;
        out.split_whitespace()
            .nth(2)
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("no MAC in `{}`", out.trim())))
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for end in [End::A, End::B] {
            if !link_exists(self.ns(end), self.name(end)) {
                // Gone with its namespace, or with the other end.
                continue;
            }
            match self.ip(end, &["link", "del", "dev", self.name(end)]) {
                Ok(_) => return,
                Err(e) => eprintln!(
                    "warning: cannot delete veth {} ({e}); tests/netns.sh cleanup removes it",
                    self.name(end)
                ),
            }
        }
    }
}
