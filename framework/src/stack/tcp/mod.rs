//! TCP on the lcores: the glue between the sans-IO engine ([`crate::tcp`]) and the graph.
//!
//! Each lcore owns a [`TcpLayer`]: a fixed-capacity connection table (open addressing on the
//! 4-tuple, [`table`]), listeners by local port, a hashed timer wheel ([`wheel`]) that calls
//! the engine's `on_timer` at each connection's `next_timer`, a bounded TIME-WAIT count, and
//! the applications whose callbacks ([`TcpApp`]) it runs on that lcore. The `tcp-input` node
//! (`stack::nodes::tcp`) parses and checks segments, feeds them to the layer, and turns what
//! the engine transmits into IPv4 packets for `ipv4-lookup`.
//!
//! Nothing is shared between lcores: a connection lives on the lcore its packets arrive at
//! (hardware RSS, or [`rss::toeplitz`] for software steering; with
//! [`LayerParams::rss`] set, active opens pick ephemeral ports whose replies hash to the lcore's
//! own queue). With several TCP lcores, the `tcp-handoff` node sends each segment to the lcore
//! that owns its flow through the SPSC rings of [`handoff`].

pub mod echo;
pub mod handoff;
pub mod layer;
pub mod rss;
pub mod table;
pub mod wheel;
pub mod xcore;

pub use echo::TcpEcho;
pub use handoff::{mesh, Handoff};
pub use layer::{
    AppId, CloseReason, InputOutcome, LayerParams, LayerStats, SegmentSink, SockId, SourceFn,
    TcpApp, TcpControl, TcpError, TcpLayer, TcpSocket,
};
pub use rss::RssSteer;
pub use table::{FlowIndex, FlowKey};
pub use wheel::TimerWheel;
