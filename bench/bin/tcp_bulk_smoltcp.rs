//! The smoltcp side of `bench/tcp-bulk.sh`: one TCP connection between two sockets of one
//! smoltcp interface over an in-memory device (the setup of smoltcp's own `loopback` example),
//! moving a fixed number of bytes as fast as one thread can; prints Gbit/s of payload.
//!
//! Two devices: `--device loopback` is smoltcp's own `phy::Loopback` (65535-byte MTU, and
//! checksums neither computed nor verified), `--device eth1500` is a FIFO with a 1500-byte
//! MTU that computes and verifies every checksum — what a TCP stack does on a real Ethernet
//! port without offloads, and what ferroplane does over its `ring` ports.
//!
//! Usage: `tcp-bulk-smoltcp [--bytes N] [--device loopback|eth1500] [--buffer BYTES]`

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Instant as StdInstant;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

/// A FIFO device with an Ethernet MTU and full software checksums.
struct Eth1500 {
    queue: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Eth1500 {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.max_transmission_unit = 1514;
        caps.medium = Medium::Ethernet;
        caps
    }

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_>)> {
        let buf = self.queue.pop_front()?;
        Some((Rx(buf), Tx(&mut self.queue)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.queue))
    }
}

fn run<D: Device>(mut dev: D, total: u64, buffer: usize) -> Result<f64, String> {
    let mac = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
    let mut iface = Interface::new(Config::new(mac.into()), &mut dev, Instant::now());
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(198, 18, 0, 1), 24))
            .expect("one address");
    });
    let sock = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; buffer]),
            tcp::SocketBuffer::new(vec![0; buffer]),
        )
    };
    let mut sockets = SocketSet::new(vec![]);
    let server = sockets.add(sock());
    let client = sockets.add(sock());
    sockets
        .get_mut::<tcp::Socket>(server)
        .listen(5001)
        .map_err(|e| e.to_string())?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (IpAddress::v4(198, 18, 0, 1), 5001), 49152)
        .map_err(|e| e.to_string())?;

    let chunk = vec![0x5au8; 64 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = StdInstant::now();
    let mut turns = 0u64;
    while received < total {
        turns += 1;
        if turns > 1_000_000_000 || start.elapsed().as_secs() > 300 {
            return Err(format!("stalled at {received} of {total} bytes"));
        }
        iface.poll(Instant::now(), &mut dev, &mut sockets);
        let c = sockets.get_mut::<tcp::Socket>(client);
        while sent < total && c.can_send() {
            let want = ((total - sent) as usize).min(chunk.len());
            match c.send_slice(&chunk[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n as u64,
            }
        }
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            match s.recv_slice(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n as u64,
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(received as f64 * 8.0 / secs / 1e9)
}

fn main() -> ExitCode {
    let mut total: u64 = 1 << 30;
    let mut device = "eth1500".to_string();
    let mut buffer = 256 * 1024;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        let bad = |what: &str| {
            eprintln!("tcp-bulk-smoltcp: {what}");
            ExitCode::from(2)
        };
        match (a.as_str(), v) {
            ("--bytes", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => total = n,
                _ => return bad("--bytes takes a positive integer"),
            },
            ("--device", Some(v)) if v == "loopback" || v == "eth1500" => device = v,
            ("--device", _) => return bad("--device takes loopback or eth1500"),
            ("--buffer", Some(v)) => match v.parse() {
                Ok(n) if n >= 4096 => buffer = n,
                _ => return bad("--buffer takes a byte count of at least 4096"),
            },
            _ => {
                return bad(&format!(
                    "unknown argument {a:?} (use --bytes, --device, --buffer)"
                ))
            }
        }
    }
    let r = if device == "loopback" {
        run(Loopback::new(Medium::Ethernet), total, buffer)
    } else {
        run(
            Eth1500 {
                queue: VecDeque::new(),
            },
            total,
            buffer,
        )
    };
    match r {
        Ok(gbps) => {
            println!("smoltcp device={device} bytes={total} buffer={buffer} gbit_s={gbps:.3}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp-bulk-smoltcp: {e}");
            ExitCode::FAILURE
        }
    }
}
