//! The TCP echo service (RFC 862): every byte received goes back on the same connection.

use super::layer::{TcpApp, TcpSocket};

/// Echoes received bytes. With the send buffer full it stops reading (the receive window
/// closes, so the peer is slowed down) and resumes on [`TcpApp::on_writable`]; when the
/// peer closes, it closes too once everything is echoed.
pub struct TcpEcho {
    scratch: Box<[u8]>,
    /// Bytes echoed (all connections).
    pub bytes: u64,
}

impl TcpEcho {
    /// An echo app copying through a `scratch`-byte buffer (allocated once, here).
    pub fn new(scratch: usize) -> Self {
        TcpEcho {
            scratch: vec![0; scratch.max(1)].into_boxed_slice(),
            bytes: 0,
        }
    }

    fn pump(&mut self, s: &mut TcpSocket<'_>) {
        loop {
            let n = {
                let [a, _] = s.peek();
                if a.is_empty() {
                    break;
                }
                let n = a.len().min(self.scratch.len());
                self.scratch[..n].copy_from_slice(&a[..n]);
                n
            };
            let w = s.write(&self.scratch[..n]);
            s.consume(w);
            self.bytes += w as u64;
            if w < n {
                // Send buffer full: on_writable continues.
                return;
            }
        }
        if s.is_read_closed() && s.available() == 0 {
            s.close();
        }
    }
}

impl Default for TcpEcho {
    fn default() -> Self {
        Self::new(16 * 1024)
    }
}

impl TcpApp for TcpEcho {
    fn on_data(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }

    fn on_writable(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }

    fn on_peer_closed(&mut self, s: &mut TcpSocket<'_>) {
        self.pump(s);
    }
}
