//! Packet trace: follow chosen packets node by node with the decision each node took.
//!
//! A control handle arms a trace for the next N packets (optionally only from one port). The
//! graph's entry marks matching packets (`Mbuf::set_traced`) and gives each a trace id; every node
//! that handles a traced packet appends one line to the lcore's trace buffer. Records are fixed
//! size and preallocated, so tracing does not allocate on the data path either. Finished
//! records are moved to the shared collector at the end of a turn, and can be printed as text or
//! as a Mermaid sequence diagram.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Longest text of one trace line.
pub const TRACE_TEXT: usize = 120;
/// Trace lines one lcore buffers between two collections.
pub const TRACE_RECORDS: usize = 4096;
/// Port filter value meaning "any port".
pub const ANY_PORT: u32 = u32::MAX;

/// One node's decision about one traced packet.
#[derive(Clone, Copy)]
pub struct TraceRecord {
    /// Trace id of the packet (unique per run).
    pub packet: u32,
    /// Lcore that handled it.
    pub lcore: u32,
    /// Node name.
    pub node: &'static str,
    text: [u8; TRACE_TEXT],
    len: u8,
}

impl TraceRecord {
    /// The decision text (e.g. `type 0x0800 → ipv4-input`).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len as usize]).unwrap_or("?")
    }
}

impl fmt::Debug for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}: {}", self.packet, self.node, self.text())
    }
}

/// A writer into a fixed buffer that silently truncates (at a char boundary).
struct FixedWriter<'a> {
    buf: &'a mut [u8; TRACE_TEXT],
    len: usize,
}

impl Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = TRACE_TEXT - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Shared between the control side (arming, reading) and every lcore's graph.
#[derive(Debug, Default)]
pub struct TraceControl {
    /// Packets still to mark.
    remaining: AtomicU32,
    /// Port id filter or [`ANY_PORT`].
    port: AtomicU32,
    next_id: AtomicU32,
    records: Mutex<Vec<TraceRecord>>,
}

impl TraceControl {
    /// A fresh control with nothing armed.
    pub fn new() -> Arc<Self> {
        Arc::new(TraceControl {
            remaining: AtomicU32::new(0),
            port: AtomicU32::new(ANY_PORT),
            next_id: AtomicU32::new(1),
            records: Mutex::new(Vec::new()),
        })
    }

    /// Traces the next `count` packets received on `port` (or any port). Clears earlier records.
    pub fn arm(&self, count: u32, port: Option<u16>) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.port
            .store(port.map_or(ANY_PORT, u32::from), Ordering::Relaxed);
        self.remaining.store(count, Ordering::Release);
    }

    /// True while packets remain to be marked.
    #[inline]
    pub fn armed(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) != 0
    }

    /// Claims a trace id for a packet from `port`, if the trace wants it.
    #[inline]
    pub(crate) fn claim(&self, port: u16) -> Option<u32> {
        let filter = self.port.load(Ordering::Relaxed);
        if filter != ANY_PORT && filter != port as u32 {
            return None;
        }
        let mut left = self.remaining.load(Ordering::Acquire);
        loop {
            if left == 0 {
                return None;
            }
            match self.remaining.compare_exchange_weak(
                left,
                left - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(self.next_id.fetch_add(1, Ordering::Relaxed)),
                Err(now) => left = now,
            }
        }
    }

    fn collect(&self, recs: &[TraceRecord]) {
        let mut all = self.records.lock().unwrap_or_else(|e| e.into_inner());
        all.extend_from_slice(recs);
    }

    /// Every record collected so far, ordered by packet then by arrival.
    pub fn records(&self) -> Vec<TraceRecord> {
        let mut v = self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|r| r.packet);
        v
    }

    /// The trace as text, one block per packet.
    pub fn to_text(&self) -> String {
        render_text(&self.records())
    }

    /// The trace as a Mermaid sequence diagram.
    pub fn to_mermaid(&self) -> String {
        render_mermaid(&self.records())
    }
}

/// Formats records as text:
/// ```text
/// Packet 1 (lcore 1):
///   eth-input: type 0x0800 → ipv4-input
/// ```
pub fn render_text(recs: &[TraceRecord]) -> String {
    let mut out = String::new();
    let mut cur = None;
    for r in recs {
        if cur != Some(r.packet) {
            let _ = writeln!(out, "Packet {} (lcore {}):", r.packet, r.lcore);
            cur = Some(r.packet);
        }
        let _ = writeln!(out, "  {}: {}", r.node, r.text());
    }
    out
}

/// Formats records as a Mermaid sequence diagram: one participant per node, one arrow per
/// hand-over from a node to the next node that saw the same packet.
pub fn render_mermaid(recs: &[TraceRecord]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let mut seen: Vec<&str> = Vec::new();
    for r in recs {
        if !seen.contains(&r.node) {
            seen.push(r.node);
            let _ = writeln!(out, "    participant {}", mermaid_id(r.node));
        }
    }
    for (i, r) in recs.iter().enumerate() {
        let next = recs.get(i + 1).filter(|n| n.packet == r.packet);
        let text = r.text().replace([';', '#', '\n'], " ");
        match next {
            Some(n) => {
                let _ = writeln!(
                    out,
                    "    {}->>{}: pkt {}: {}",
                    mermaid_id(r.node),
                    mermaid_id(n.node),
                    r.packet,
                    text
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "    Note over {}: pkt {}: {}",
                    mermaid_id(r.node),
                    r.packet,
                    text
                );
            }
        }
    }
    out
}

fn mermaid_id(node: &str) -> String {
    node.replace('-', "_")
}

/// One lcore's trace buffer (preallocated; full buffers drop further lines).
pub struct TraceBuf {
    lcore: u32,
    recs: Vec<TraceRecord>,
    ctl: Arc<TraceControl>,
    /// Lines dropped because the buffer was full.
    pub overflow: u64,
}

impl TraceBuf {
    /// A buffer for `lcore` reporting to `ctl`.
    pub fn new(lcore: u32, ctl: Arc<TraceControl>) -> Self {
        TraceBuf {
            lcore,
            recs: Vec::with_capacity(TRACE_RECORDS),
            ctl,
            overflow: 0,
        }
    }

    /// The shared control.
    pub fn control(&self) -> &Arc<TraceControl> {
        &self.ctl
    }

    /// Appends one line for packet `id` at `node`.
    pub fn record(&mut self, id: u32, node: &'static str, args: fmt::Arguments<'_>) {
        if self.recs.len() == TRACE_RECORDS {
            self.overflow += 1;
            return;
        }
        let mut rec = TraceRecord {
            packet: id,
            lcore: self.lcore,
            node,
            text: [0; TRACE_TEXT],
            len: 0,
        };
        let mut w = FixedWriter {
            buf: &mut rec.text,
            len: 0,
        };
        let _ = w.write_fmt(args);
        rec.len = w.len as u8;
        self.recs.push(rec);
    }

    /// Hands buffered lines to the control (end of a turn; takes a lock only when there are any).
    pub fn flush(&mut self) {
        if !self.recs.is_empty() {
            self.ctl.collect(&self.recs);
            self.recs.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_claim_and_render() {
        let ctl = TraceControl::new();
        assert!(ctl.claim(0).is_none());
        ctl.arm(2, Some(1));
        assert!(ctl.claim(0).is_none(), "port filter");
        let a = ctl.claim(1).unwrap();
        let b = ctl.claim(1).unwrap();
        assert!(ctl.claim(1).is_none(), "count exhausted");
        let mut buf = TraceBuf::new(3, ctl.clone());
        buf.record(
            a,
            "eth-input",
            format_args!("type 0x{:04x} → {}", 0x800, "ipv4-input"),
        );
        buf.record(a, "ipv4-input", format_args!("ok → ipv4-lookup"));
        buf.record(b, "eth-input", format_args!("type 0x0806 → arp"));
        buf.flush();
        let text = ctl.to_text();
        assert!(text.contains("Packet 1 (lcore 3):\n  eth-input: type 0x0800 → ipv4-input\n"));
        let mm = ctl.to_mermaid();
        assert!(mm.starts_with("sequenceDiagram\n"));
        assert!(mm.contains("eth_input->>ipv4_input: pkt 1: type 0x0800 → ipv4-input"));
        assert!(mm.contains("Note over eth_input: pkt 2: type 0x0806 → arp"));
    }

    #[test]
    fn long_text_is_truncated_at_a_char_boundary() {
        let ctl = TraceControl::new();
        let mut buf = TraceBuf::new(0, ctl.clone());
        let long = "→".repeat(100);
        buf.record(1, "n", format_args!("{long}"));
        buf.flush();
        let r = ctl.records();
        assert!(r[0].text().len() <= TRACE_TEXT);
        assert!(r[0].text().chars().all(|c| c == '→'));
    }
}
