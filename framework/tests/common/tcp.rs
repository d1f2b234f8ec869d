//! The TCP test bench: ferroplane stacks with one ring port each, a server (its app from its
//! config) and a client (hand-built [`TcpApp`]s on an l3fwd stack), joined directly or through
//! host sides a test-made wire forwards between; and [`EchoClient`], which opens flows, streams
//! each one's bytes, half-closes and keeps what comes back.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroplane::app::{self, AppShared};
use ferroplane::config::{self, Config};
use ferroplane::graph::{GraphMonitor, GraphStage};
use ferroplane::mem::{HugePolicy, Mempool, MempoolParams};
use ferroplane::port::ring::{RingPort, RingSide};
use ferroplane::port::{MacAddr, Port, RxQueue, TxQueue};
use ferroplane::runtime::{IdlePolicy, Lcore, LcoreIo, Stage};
use ferroplane::stack::setup::{build_graph_with_tcp, TcpApps, UdpApps};
use ferroplane::stack::tcp::xcore::XCORE_APP_NODE;
use ferroplane::stack::tcp::{CloseReason, SockId, TcpApp, TcpControl, TcpSocket};

pub const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);
pub const SERVER_IP: &str = "198.18.0.1";
pub const CLIENT_IP: &str = "198.18.0.2";

/// A heap pool of `mbufs` buffers (cache 64).
pub fn pool(name: &str, mbufs: u32) -> Mempool {
    pool_room(name, mbufs, 2048)
}

/// [`pool`] with `data_room` bytes per buffer.
pub fn pool_room(name: &str, mbufs: u32, data_room: u16) -> Mempool {
    let mut p = MempoolParams::new(name, mbufs);
    p.huge = HugePolicy::Off;
    p.cache_size = 64;
    p.data_room = data_room;
    Mempool::new(&p).unwrap()
}

/// One side of a ring pair: port id 0, MTU 1500, `queues` rx and tx queues, no checksum
/// offload.
pub fn side(name: &str, mac: MacAddr, queues: u16) -> RingSide {
    side_offload(name, mac, queues, false)
}

/// [`side`] taking partial L4 checksums on transmit when `offload`.
pub fn side_offload(name: &str, mac: MacAddr, queues: u16, offload: bool) -> RingSide {
    RingSide {
        name: name.into(),
        id: 0,
        rx_queues: queues,
        tx_queues: queues,
        mac,
        mtu: 1500,
        tx_l4_checksum_offload: offload,
    }
}

/// The server's and the client's ports joined directly, with jumbo frames of `mtu` bytes
/// (pair with [`Server::data_room`] large enough for them).
pub fn jumbo_ports(mtu: u16) -> (RingPort, RingPort) {
    let side = |name: &str, mac| RingSide {
        mtu,
        ..side(name, mac, 1)
    };
    RingPort::pair(side("p0", SERVER_MAC), side("p0", CLIENT_MAC), 1024).unwrap()
}

/// The server's and the client's ports joined directly.
pub fn direct_ports() -> (RingPort, RingPort) {
    direct_ports_offload(false)
}

/// [`direct_ports`] taking partial L4 checksums on transmit when `offload`.
pub fn direct_ports_offload(offload: bool) -> (RingPort, RingPort) {
    RingPort::pair(
        side_offload("p0", SERVER_MAC, 1, offload),
        side_offload("p0", CLIENT_MAC, 1, offload),
        1024,
    )
    .unwrap()
}

/// The server's port with its host side ("h0") and the client's port with its host side
/// ("h1"), for a wire that forwards between the host sides: `(server, h0), (client, h1)`.
pub fn wired_ports(
    server_queues: u16,
    client_queues: u16,
) -> ((RingPort, RingPort), (RingPort, RingPort)) {
    wired_ports_offload(server_queues, client_queues, false)
}

/// [`wired_ports`] whose sides all take partial L4 checksums when `offload`: what a stack
/// sends with a partial checksum reaches the host side flagged `RX_L4_CKSUM_GOOD`.
pub fn wired_ports_offload(
    server_queues: u16,
    client_queues: u16,
    offload: bool,
) -> ((RingPort, RingPort), (RingPort, RingPort)) {
    let s = RingPort::pair(
        side_offload("p0", SERVER_MAC, server_queues, offload),
        side_offload("h0", CLIENT_MAC, server_queues, offload),
        1024,
    )
    .unwrap();
    let c = RingPort::pair(
        side_offload("p0", CLIENT_MAC, client_queues, offload),
        side_offload("h1", SERVER_MAC, client_queues, offload),
        1024,
    )
    .unwrap();
    (s, c)
}

/// A port's rx and tx queues.
pub type Queues = (Vec<Box<dyn RxQueue>>, Vec<Box<dyn TxQueue>>);

/// Takes the first `n` rx and tx queues of `p`.
pub fn take_queues(p: &mut RingPort, n: u16) -> Queues {
    (
        (0..n).map(|q| p.take_rx_queue(q).unwrap()).collect(),
        (0..n).map(|q| p.take_tx_queue(q).unwrap()).collect(),
    )
}

/// `02:00:...` text of a MAC.
pub fn mac_text(m: MacAddr) -> String {
    m.0.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The config of a one-port stack: p0 with `mac` and `addr`/24, then `more` (more keys of the
/// port, neighbours, the `[[lcores]]` tables), then `[app]` with `app`.
pub fn one_port_config(addr: &str, mac: MacAddr, app: &str, more: &str) -> String {
    format!(
        r#"
[memory]
huge_pages = "off"
[[memory.pools]]
name = "pool"
[[ports]]
name = "p0"
driver = "null"
mac = "{}"
ipv4 = ["{addr}/24"]
{more}
[app]
{app}
[metrics]
enabled = false
"#,
        mac_text(mac)
    )
}

/// `[[lcores]]` tables for lcores `ids` polling p0's only queue, in a config.
pub fn lcore_tables(rx: u32, idle: &[u32]) -> String {
    let mut s = format!("[[lcores]]\nid = {rx}\nrx = [\"p0\"]\n");
    for id in idle {
        s.push_str(&format!("[[lcores]]\nid = {id}\n"));
    }
    s
}

/// Parses `text` and prepares its stack on `port` with `pool`.
pub fn prepare(text: &str, port: &RingPort, pool: Mempool) -> (Config, AppShared) {
    let cfg = config::parse(text).unwrap_or_else(|e| panic!("config: {e}"));
    let shared = app::prepare(&cfg, &[port.info().clone()], vec![pool]).unwrap();
    (cfg, shared)
}

/// Lcore `id` polling queue `q` of `port` (port 0 of its stack) and sending on its tx queue `q`.
pub fn port_lcore(id: u32, port: &mut RingPort, q: u16, stage: Box<dyn Stage>) -> Lcore {
    Lcore::new(
        id,
        None,
        vec![(0, port.take_rx_queue(q).unwrap())],
        LcoreIo::new(vec![Some(port.take_tx_queue(q).unwrap())]),
        stage,
        32,
        IdlePolicy::Busy,
    )
}

/// A server lcore: the stage of lcore `id` from its config, on queue `q`; and its graph.
pub fn server_lcore(
    cfg: &Config,
    shared: &AppShared,
    id: u32,
    port: &mut RingPort,
    q: u16,
) -> (Lcore, GraphMonitor) {
    let stage = app::make_stage(cfg, shared, id).unwrap();
    let graph = stage.graph_monitor().unwrap();
    (port_lcore(id, port, q, stage), graph)
}

/// A client lcore: the stack's graph with the hand-built `tcp` apps, on queue `q`; and its
/// graph.
pub fn client_lcore(
    shared: &AppShared,
    id: u32,
    port: &mut RingPort,
    q: u16,
    tcp: TcpApps,
) -> (Lcore, GraphMonitor) {
    let graph = build_graph_with_tcp(
        shared.stack().unwrap(),
        id,
        UdpApps::default(),
        tcp,
        &[],
        shared.trace().clone(),
    )
    .unwrap();
    let monitor = graph.monitor();
    let stage = Box::new(GraphStage::new(graph));
    (port_lcore(id, port, q, stage), monitor)
}

/// These apps, with the default TCP parameters.
pub fn tcp_apps(apps: Vec<Box<dyn TcpApp>>) -> TcpApps {
    TcpApps {
        apps,
        ..TcpApps::default()
    }
}

/// This client app, with room for 64 connections and 64 in TIME-WAIT (tests that open many).
pub fn many_conns_client(client: Box<dyn TcpApp>) -> TcpApps {
    TcpApps {
        apps: vec![client],
        params: ferroplane::stack::tcp::LayerParams {
            max_connections: 64,
            max_time_wait: 64,
            ..Default::default()
        },
        ..TcpApps::default()
    }
}

/// What the server stack of [`Stacks`] runs.
pub struct Server<'a> {
    /// The `[app]` table.
    pub app: &'a str,
    /// Buffers in each stack's pool.
    pub mbufs: u32,
    /// Data room of those buffers.
    pub data_room: u16,
    /// The app runs on app lcore 2 with this idle policy (the app says `app_lcores = [2]`).
    pub app_lcore: Option<IdlePolicy>,
}

impl<'a> Server<'a> {
    /// `app` on the stack lcore, 4096 buffers a pool.
    pub fn new(app: &'a str) -> Self {
        Server {
            app,
            mbufs: 4096,
            data_room: 2048,
            app_lcore: None,
        }
    }

    /// `app` (which says `app_lcores = [2]`) with its sessions on app lcore 2, adaptive idle,
    /// 8192 buffers a pool.
    pub fn on_app_lcore(app: &'a str) -> Self {
        Server {
            mbufs: 8192,
            app_lcore: Some(IdlePolicy::Adaptive {
                spin_turns: 64,
                max_sleep_us: 50,
            }),
            ..Server::new(app)
        }
    }
}

/// A server stack (lcore 1, and app lcore 2 if asked) and a client stack (the next lcore id),
/// one port each.
pub struct Stacks {
    pub server: Lcore,
    pub app_lcore: Option<Lcore>,
    pub client: Lcore,
    pub server_graph: GraphMonitor,
    pub client_graph: GraphMonitor,
    /// The app lcore's counters (node `xcore-app`: the endpoint's and the application's).
    pub app_graph: Option<GraphMonitor>,
}

impl Stacks {
    /// The stacks on a direct ring pair, `tcp` on the client.
    pub fn new(server: Server<'_>, tcp: TcpApps) -> Stacks {
        let (sp, cp) = direct_ports();
        Stacks::on(sp, cp, server, tcp)
    }

    /// The stacks on these ports.
    pub fn on(mut sp: RingPort, mut cp: RingPort, server: Server<'_>, tcp: TcpApps) -> Stacks {
        let idle: &[u32] = if server.app_lcore.is_some() {
            &[2]
        } else {
            &[]
        };
        let text = one_port_config(SERVER_IP, SERVER_MAC, server.app, &lcore_tables(1, idle));
        let (scfg, sshared) = prepare(&text, &sp, pool_room("srv", server.mbufs, server.data_room));
        let (server_lcore, server_graph) = server_lcore(&scfg, &sshared, 1, &mut sp, 0);
        let mut app_graph = None;
        let app_lcore = server.app_lcore.map(|idle| {
            let stage = app::make_stage(&scfg, &sshared, 2).unwrap();
            let g = stage.graph_monitor().expect("the app lcore's counters");
            assert!(
                !has_node(&g, "tcp-input") && has_node(&g, XCORE_APP_NODE),
                "lcore 2 runs the app, not the stack"
            );
            app_graph = Some(g);
            Lcore::new(
                2,
                None,
                Vec::new(),
                LcoreIo::new(vec![None]),
                stage,
                32,
                idle,
            )
        });
        let id = 2 + u32::from(app_lcore.is_some());
        let text = one_port_config(
            CLIENT_IP,
            CLIENT_MAC,
            "name = \"l3fwd\"",
            &lcore_tables(id, &[]),
        );
        let (_, cshared) = prepare(&text, &cp, pool_room("cli", server.mbufs, server.data_room));
        let (client, client_graph) = client_lcore(&cshared, id, &mut cp, 0, tcp);
        Stacks {
            server: server_lcore,
            app_lcore,
            client,
            server_graph,
            client_graph,
            app_graph,
        }
    }

    /// Runs the app lcore on a thread of its own ([`AppThread`]) and turns the server and the
    /// client on this one until `done` or 60 s; stops the app lcore and returns the time taken.
    pub fn run_with_app_thread(&mut self, mut done: impl FnMut() -> bool) -> Duration {
        let app_thread = AppThread::spawn(self.app_lcore.take().expect("an app lcore"));
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(60);
        while Instant::now() < deadline {
            self.server.run_turns(1);
            self.client.run_turns(1);
            if done() {
                break;
            }
        }
        let took = t0.elapsed();
        app_thread.stop();
        took
    }

    /// One turn of the server, its app lcore (if any, and not moved out) and the client.
    pub fn turn(&mut self) {
        self.server.run_turns(1);
        if let Some(a) = self.app_lcore.as_mut() {
            a.run_turns(1);
        }
        self.client.run_turns(1);
    }
}

/// The count of `reason` at `node` in `g`.
pub fn count(g: &GraphMonitor, node: &str, reason: &str) -> u64 {
    g.stats()
        .iter()
        .find(|n| n.node == node)
        .and_then(|n| n.drops.iter().find(|d| d.0 == reason).map(|d| d.1))
        .unwrap_or(0)
}

/// Whether `g` has `node`.
pub fn has_node(g: &GraphMonitor, node: &str) -> bool {
    g.stats().iter().any(|n| n.node == node)
}

/// `n` bytes of a xorshift64 sequence from `seed`, each the state shifted right by `shift`.
pub fn xorshift_bytes(n: usize, mut seed: u64, shift: u32) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> shift) as u8
        })
        .collect()
}

/// `n` bytes of a xorshift64 sequence from `seed` (the low byte of each state).
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    xorshift_bytes(n, seed, 0)
}

// ---------------------------------------------------------------- the echo client

/// One connection of an [`EchoClient`].
#[derive(Default, Clone)]
pub struct Flow {
    pub to_send: Vec<u8>,
    pub sent: usize,
    pub received: Vec<u8>,
    pub connected: bool,
    pub shut: bool,
    pub peer_closed: bool,
    pub closed: Option<CloseReason>,
}

impl Flow {
    /// Over: the peer closed or the connection ended (reset, timeout...).
    pub fn finished(&self) -> bool {
        self.peer_closed || self.closed.is_some()
    }
}

/// What the echo clients (one per client lcore) saw.
#[derive(Default)]
pub struct Flows {
    pub flows: Vec<Flow>,
    /// (client lcore, socket) → flow index.
    pub by_id: HashMap<(usize, SockId), usize>,
    pub connect_errors: u32,
}

impl Flows {
    /// A flow per payload, none opened yet.
    pub fn new(payloads: impl IntoIterator<Item = Vec<u8>>) -> Arc<Mutex<Flows>> {
        Arc::new(Mutex::new(Flows {
            flows: payloads
                .into_iter()
                .map(|to_send| Flow {
                    to_send,
                    ..Flow::default()
                })
                .collect(),
            ..Flows::default()
        }))
    }
}

/// Opens its flows to the server (at most `max_open` at a time), streams each one's bytes,
/// half-closes, reads everything back until the server's FIN.
pub struct EchoClient {
    st: Arc<Mutex<Flows>>,
    /// Which client lcore runs this app (socket ids are per lcore).
    lane: usize,
    server: SocketAddrV4,
    /// Flows still to open, the next one last.
    pending: Vec<usize>,
    max_open: usize,
    open: usize,
    /// When set, most bytes are handed over in mbufs of this pool (of varying sizes, with
    /// some copied writes in between) instead of copied.
    handover: Option<Mempool>,
    writes: usize,
}

impl EchoClient {
    /// Like [`EchoClient::all`], handing most of the stream over in mbufs from `pool`
    /// (zero-copy writes of 100, 700, 1900 and 64 bytes, then a copied write, in turn).
    pub fn all_handing_over(
        st: &Arc<Mutex<Flows>>,
        server: &str,
        pool: Mempool,
    ) -> Box<dyn TcpApp> {
        let n = st.lock().unwrap().flows.len();
        let mut c = EchoClient::new(st, 0, server, (0..n).collect(), usize::MAX);
        c.handover = Some(pool);
        Box::new(c)
    }

    /// Opens flows `mine`, in that order.
    pub fn new(
        st: &Arc<Mutex<Flows>>,
        lane: usize,
        server: &str,
        mut mine: Vec<usize>,
        max_open: usize,
    ) -> EchoClient {
        mine.reverse();
        EchoClient {
            st: st.clone(),
            lane,
            server: server.parse().unwrap(),
            pending: mine,
            max_open,
            open: 0,
            handover: None,
            writes: 0,
        }
    }

    /// Opens every flow of `st` at once, from client lcore 0.
    pub fn all(st: &Arc<Mutex<Flows>>, server: &str) -> Box<dyn TcpApp> {
        let n = st.lock().unwrap().flows.len();
        Box::new(EchoClient::new(st, 0, server, (0..n).collect(), usize::MAX))
    }

    fn flow<'a>(&self, st: &'a mut Flows, id: SockId) -> Option<&'a mut Flow> {
        let i = *st.by_id.get(&(self.lane, id))?;
        st.flows.get_mut(i)
    }

    fn push(&mut self, f: &mut Flow, s: &mut TcpSocket<'_>) {
        while f.sent < f.to_send.len() {
            let rest = &f.to_send[f.sent..];
            self.writes += 1;
            let size = [100, 700, 1900, 64, 0][self.writes % 5];
            if let (Some(pool), true) = (&self.handover, size > 0) {
                let n = size.min(rest.len());
                let mut m = pool.alloc().expect("handover pool");
                m.append(n).unwrap().copy_from_slice(&rest[..n]);
                if s.write_mbuf(m).is_err() {
                    break; // full: on_writable comes back
                }
                f.sent += n;
                continue;
            }
            let n = s.write(&rest[..rest.len().min(1000)]);
            if n == 0 {
                break;
            }
            f.sent += n;
        }
        if f.sent == f.to_send.len() && !f.shut {
            f.shut = true;
            s.shutdown();
        }
    }

    fn read(f: &mut Flow, s: &mut TcpSocket<'_>) {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.recv(&mut buf);
            if n == 0 {
                break;
            }
            f.received.extend_from_slice(&buf[..n]);
        }
    }
}

impl TcpApp for EchoClient {
    fn on_connected(&mut self, s: &mut TcpSocket<'_>) {
        let st = self.st.clone();
        let mut st = st.lock().unwrap();
        if let Some(f) = self.flow(&mut st, s.id()) {
            f.connected = true;
            self.push(f, s);
        }
    }
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        let mut st = self.st.lock().unwrap();
        if let Some(f) = self.flow(&mut st, s.id()) {
            Self::read(f, s);
        }
    }
    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        let st = self.st.clone();
        let mut st = st.lock().unwrap();
        if let Some(f) = self.flow(&mut st, s.id()) {
            self.push(f, s);
        }
    }
    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        let st = self.st.clone();
        let mut st = st.lock().unwrap();
        if let Some(f) = self.flow(&mut st, s.id()) {
            Self::read(f, s);
            if !f.finished() {
                self.open -= 1;
            }
            f.peer_closed = true;
        }
        s.close();
    }
    fn on_close(&mut self, id: SockId, reason: CloseReason) {
        let st = self.st.clone();
        let mut st = st.lock().unwrap();
        if let Some(f) = self.flow(&mut st, id) {
            if !f.finished() {
                self.open -= 1;
            }
            f.closed = Some(reason);
        }
    }
    fn poll(&mut self, ctl: &mut TcpControl<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let mut st = self.st.lock().unwrap();
        while self.open < self.max_open {
            let Some(i) = self.pending.pop() else { break };
            match ctl.connect(self.server) {
                Ok(id) => {
                    st.by_id.insert((self.lane, id), i);
                    self.open += 1;
                }
                Err(_) => st.connect_errors += 1,
            }
        }
    }
}

/// An app lcore running on its own thread (registered as lcore 2) until [`stop`](Self::stop).
pub struct AppThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl AppThread {
    /// Starts `lcore` (the app lcore of [`Stacks`]) on a thread of its own.
    pub fn spawn(mut lcore: Lcore) -> AppThread {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let _g = ferroplane::lcore::register(2).unwrap();
            lcore.run(&flag);
        });
        AppThread { stop, thread }
    }

    /// Stops the lcore and waits for its thread.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}
