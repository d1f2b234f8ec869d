//! Cross-core sockets: TCP connections owned by a stack lcore, used by an application that
//! runs on another lcore (an *app lcore*).
//!
//! ```text
//!  stack lcore                                        app lcore
//!  TcpLayer ── callbacks ──▶ XcoreBridge ══ events (SPSC) ══▶ XcoreEndpoint ──▶ XcoreApp
//!                           (a TcpApp)  ◀══ commands (SPSC) ══              ◀── read/write/…
//! ```
//!
//! Each (stack lcore, app lcore) pair has one [`link`]: an event ring towards the app and a
//! command ring back. Received bytes cross in mempool mbufs (copied out of the connection's
//! receive buffer by the bridge), written bytes in mbufs the endpoint fills (small writes
//! share one mbuf, sent when full or at the turn's flush); the pool is shared by both lcores,
//! so the data path allocates nothing from the heap.
//!
//! Backpressure is credit based, per socket and per direction:
//!
//! * **receive** — the bridge moves at most [`XcoreParams::rx_window`] bytes (and
//!   [`XcoreParams::rx_segments`] mbufs) that the app has not read yet; the rest stays in the
//!   TCP receive buffer, so the advertised window closes when the app does not read. Reads
//!   are reported back (`Consumed`) in batches of a quarter window.
//! * **send** — the app may have [`XcoreParams::tx_window`] bytes (and `tx_segments` mbufs)
//!   written but not yet taken into the TCP send buffer; beyond, [`XcoreEndpoint::write`] is
//!   short and an [`XEvent::Writable`] follows when the bridge reports room.
//! * **rings and pool** — a full event ring or an empty pool leaves data in the TCP buffer and
//!   the bridge retries on its next poll (counted in [`BridgeStats`]); control events wait in
//!   a bounded outbox, in order. A full command ring or an empty pool makes a write short and
//!   the endpoint reports [`XEvent::Writable`] once there is room again.
//!
//! Handles carry the stack's [`SockId`] (slot + generation), so a handle of a socket whose
//! slot was reused finds nothing on either side.

mod bridge;
mod endpoint;
mod stage;
#[cfg(test)]
mod tests;

use std::net::SocketAddrV4;

pub use bridge::{BridgeStats, XcoreBridge};
pub use endpoint::{EndpointStats, XcoreEndpoint};
pub use stage::{XcoreApp, XcoreEcho, XcoreStage, XCORE_APP_NODE};

use super::layer::{CloseReason, SockId, TcpError};
use crate::mem::Mbuf;
use crate::ring::{spsc, BadCapacity, Consumer, Producer};

/// Sizes of the cross-core path (the same on both ends of a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XcoreParams {
    /// Slots of each ring (events and commands), a power of two.
    pub ring_size: usize,
    /// Bytes a socket may have delivered to the app and not read yet.
    pub rx_window: u32,
    /// Mbufs a socket may have delivered to the app and not read yet.
    pub rx_segments: u32,
    /// Bytes the app may have written that are not in the TCP send buffer yet.
    pub tx_window: u32,
    /// Mbufs the app may have written that are not in the TCP send buffer yet.
    pub tx_segments: u32,
    /// Sockets per stack lcore (the layer's `max_connections`): the slot tables' size.
    pub max_sockets: usize,
    /// Control events that may wait for a full event ring; beyond, new connections are
    /// refused (reset) until the app catches up.
    pub outbox_limit: usize,
}

impl XcoreParams {
    /// Parameters for sockets with `send_buffer` / `recv_buffer` TCP buffers: the cross-core
    /// windows are the buffers' size, at most 128 KiB, over mbufs of `seg` payload bytes.
    pub fn for_buffers(
        send_buffer: usize,
        recv_buffer: usize,
        seg: usize,
        max_sockets: usize,
    ) -> Self {
        let win = |b: usize| b.clamp(1024, 128 << 10) as u32;
        let segs = |w: u32| (2 * w as usize / seg.max(1)).clamp(16, 1024) as u32;
        let (rx, tx) = (win(recv_buffer), win(send_buffer));
        XcoreParams {
            ring_size: 1024,
            rx_window: rx,
            rx_segments: segs(rx),
            tx_window: tx,
            tx_segments: segs(tx),
            max_sockets: max_sockets.max(1),
            outbox_limit: 1024,
        }
    }
}

/// A socket as the app lcore names it: the link (stack lcore) and the stack's socket id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XSock {
    link: u16,
    id: SockId,
}

impl XSock {
    /// Index of the link (stack lcore) the socket lives on, in the endpoint's link order.
    pub fn link(&self) -> usize {
        self.link as usize
    }
    /// The stack's slot number: dense, below [`XcoreParams::max_sockets`], reused after the
    /// socket ends (with another generation), so apps can index their own tables by
    /// (`link`, `slot`).
    pub fn slot(&self) -> usize {
        self.id.slot() as usize
    }
    /// The stack's socket id.
    pub fn id(&self) -> SockId {
        self.id
    }
}

/// Why an active open failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The stack refused it locally (table full, no port, no route).
    #[error("{0}")]
    Local(TcpError),
    /// The peer refused (reset) the connection.
    #[error("connection refused")]
    Refused,
    /// The handshake timed out.
    #[error("connection timed out")]
    TimedOut,
}

/// What the app lcore learns from [`XcoreEndpoint::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XEvent {
    /// A connection to a listener completed its handshake.
    Accepted {
        /// The new socket.
        sock: XSock,
        /// Our address.
        local: SocketAddrV4,
        /// The peer's address.
        remote: SocketAddrV4,
    },
    /// An active open ([`XcoreEndpoint::connect`]) completed.
    Connected {
        /// The new socket.
        sock: XSock,
        /// The token given to `connect`.
        token: u64,
        /// Our address.
        local: SocketAddrV4,
        /// The peer's address.
        remote: SocketAddrV4,
    },
    /// An active open failed.
    ConnectFailed {
        /// The token given to `connect`.
        token: u64,
        /// Why.
        error: ConnectError,
    },
    /// New bytes can be read.
    Readable {
        /// The socket.
        sock: XSock,
    },
    /// A write was short and there is room again.
    Writable {
        /// The socket.
        sock: XSock,
    },
    /// The peer closed its side: after the bytes already readable nothing more comes.
    PeerClosed {
        /// The socket.
        sock: XSock,
    },
    /// The socket ended (not sent for sockets the app closed or aborted); unread bytes are
    /// discarded.
    Closed {
        /// The socket.
        sock: XSock,
        /// How it ended.
        reason: CloseReason,
    },
}

/// Stack → app ring item.
#[derive(Debug)]
enum ToApp {
    Accepted {
        id: SockId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    },
    Connected {
        id: SockId,
        token: u64,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    },
    ConnectFailed {
        token: u64,
        error: ConnectError,
    },
    Data {
        id: SockId,
        data: Mbuf,
    },
    /// Written bytes (and mbufs) taken into the send buffer: send credit back.
    Credit {
        id: SockId,
        bytes: u32,
        segs: u32,
    },
    PeerClosed {
        id: SockId,
    },
    Closed {
        id: SockId,
        reason: CloseReason,
    },
}

/// App → stack ring item.
#[derive(Debug)]
enum ToStack {
    Write {
        id: SockId,
        data: Mbuf,
    },
    /// Bytes (and mbufs) read by the app: receive credit back.
    Consumed {
        id: SockId,
        bytes: u32,
        segs: u32,
    },
    Shutdown {
        id: SockId,
    },
    Close {
        id: SockId,
    },
    Abort {
        id: SockId,
    },
    Connect {
        remote: SocketAddrV4,
        token: u64,
    },
}

/// The stack lcore's end of one link (give it to [`XcoreBridge::new`]).
pub struct BridgeLink {
    events: Producer<ToApp>,
    commands: Consumer<ToStack>,
}

/// The app lcore's end of one link (give it to [`XcoreEndpoint::new`]).
pub struct AppLink {
    events: Consumer<ToApp>,
    commands: Producer<ToStack>,
}

/// Creates the two rings between one stack lcore and one app lcore.
pub fn link(ring_size: usize) -> Result<(BridgeLink, AppLink), BadCapacity> {
    let (ev_tx, ev_rx) = spsc(ring_size)?;
    let (cmd_tx, cmd_rx) = spsc(ring_size)?;
    Ok((
        BridgeLink {
            events: ev_tx,
            commands: cmd_rx,
        },
        AppLink {
            events: ev_rx,
            commands: cmd_tx,
        },
    ))
}
