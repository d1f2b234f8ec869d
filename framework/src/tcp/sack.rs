//! The sender's SACK scoreboard (RFC 6675 §2–§4): which parts of `[SND.UNA, SND.MAX)` the
//! peer reported with SACK blocks (RFC 2018), and the routines loss recovery asks of it —
//! `IsLost`, the pipe estimate (`SetPipe`) and the holes `NextSeg` picks from.
//!
//! The scoreboard is a sorted list of disjoint, non-touching ranges with a fixed capacity,
//! allocated with the connection; nothing allocates afterwards. Every received block is
//! validated against the send sequence space before it is used: blocks that are empty,
//! inverted, wider than 2^31 or reach beyond `SND.MAX` are rejected (and counted by the
//! caller); parts below `SND.UNA` (D-SACK, RFC 2883, or stale blocks) are ignored. When the
//! list is full, a new disjoint range evicts the highest one if it lies below it (the lower
//! holes are the ones recovery repairs first), otherwise it is not recorded. Forgetting a
//! SACKed range only makes the sender more conservative: that data counts as outstanding
//! and may be retransmitted.

use super::seq::Seq;

/// `DupThresh` (RFC 6675 §2): this many segments SACKed above a hole mark it lost.
pub(crate) const DUP_THRESH: u32 = 3;

/// Ranges a scoreboard holds at most.
pub(crate) const SCOREBOARD_RANGES: usize = 32;

/// Outcome of recording one SACK block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockVerdict {
    /// Recorded (possibly merged with others), or already known.
    Used,
    /// Entirely at or below `SND.UNA` (a D-SACK or a stale block): ignored.
    Old,
    /// Malformed or outside what was sent: rejected.
    Invalid,
}

/// A hole: unSACKed sequence space `[start, end)` below the highest SACKed byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hole {
    pub start: Seq,
    pub end: Seq,
    /// `IsLost(start)`: at least `DupThresh` segments' worth (or `DupThresh` separate
    /// ranges) are SACKed above it.
    pub lost: bool,
}

/// The SACKed ranges above `SND.UNA`.
#[derive(Debug)]
pub(crate) struct Scoreboard {
    /// Sorted, disjoint and non-touching `[start, end)` ranges.
    ranges: Vec<(Seq, Seq)>,
    cap: usize,
}

impl Scoreboard {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Scoreboard {
            ranges: Vec::with_capacity(cap),
            cap,
        }
    }

    /// This scoreboard emptied for a new connection when it holds `cap` ranges, else a new one.
    pub(crate) fn reuse(mut self, cap: usize) -> Self {
        if self.cap != cap.max(1) {
            return Scoreboard::new(cap);
        }
        self.ranges.clear();
        self
    }

    /// Forgets everything (after a retransmission timeout, RFC 6675 §5.1).
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Ranges held.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Bytes SACKed in total.
    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.ranges.iter().map(|r| r.1.since(r.0)).sum()
    }

    /// The cumulative ACK moved to `una`: drops and trims the ranges below it.
    pub(crate) fn advance(&mut self, una: Seq) {
        let gone = self.ranges.iter().take_while(|r| r.1.le(una)).count();
        if gone > 0 {
            self.ranges.drain(..gone);
        }
        if let Some(first) = self.ranges.first_mut() {
            if first.0.lt(una) {
                first.0 = una;
            }
        }
    }

    /// Records the block `[left, right)` given the send sequence space `[una, max)`.
    pub(crate) fn add(&mut self, left: Seq, right: Seq, una: Seq, max: Seq) -> BlockVerdict {
        // Non-empty, and less than half the sequence space wide (so comparisons hold).
        if !left.lt(right) {
            return BlockVerdict::Invalid;
        }
        if right.le(una) {
            return BlockVerdict::Old;
        }
        // Beyond what was sent, or a left edge implausibly far below SND.UNA.
        if right.gt(max) || una.since(left.min(una)) > max.since(una).max(1 << 30) {
            return BlockVerdict::Invalid;
        }
        let (mut s, mut e) = (left.max(una), right);
        // Merge with every range it overlaps or touches (consecutive, as the list is sorted).
        let mut first = None;
        let mut last = 0;
        for (i, r) in self.ranges.iter().enumerate() {
            if r.1.lt(s) {
                continue;
            }
            if r.0.gt(e) {
                break;
            }
            first.get_or_insert(i);
            last = i + 1;
            s = s.min(r.0);
            e = e.max(r.1);
        }
        if let Some(first) = first {
            self.ranges[first] = (s, e);
            self.ranges.drain(first + 1..last);
            return BlockVerdict::Used;
        }
        let at = self
            .ranges
            .iter()
            .position(|r| r.0.gt(e))
            .unwrap_or(self.ranges.len());
        if self.ranges.len() >= self.cap {
            if at == self.ranges.len() {
                // Above everything held: not recorded.
                return BlockVerdict::Used;
            }
            self.ranges.pop();
        }
        self.ranges.insert(at, (s, e));
        BlockVerdict::Used
    }

    /// The end of the SACKed range containing `seq`, if any.
    pub(crate) fn sacked_end_at(&self, seq: Seq) -> Option<Seq> {
        self.ranges
            .iter()
            .find(|r| seq.in_range(r.0, r.1))
            .map(|r| r.1)
    }

    /// The end of the highest SACKed range.
    pub(crate) fn highest_end(&self) -> Option<Seq> {
        self.ranges.last().map(|r| r.1)
    }

    /// The start of the first SACKed range after `seq`.
    pub(crate) fn next_sacked_after(&self, seq: Seq) -> Option<Seq> {
        self.ranges.iter().find(|r| r.0.gt(seq)).map(|r| r.0)
    }

    /// `IsLost(seq)` (RFC 6675 §4) for an unSACKed `seq`: more than `(DupThresh − 1)·SMSS`
    /// bytes, or `DupThresh` separate ranges, are SACKed above it.
    pub(crate) fn is_lost(&self, seq: Seq, mss: u32) -> bool {
        let (mut bytes, mut count) = (0u32, 0u32);
        for r in self.ranges.iter().rev() {
            if r.1.le(seq) {
                break;
            }
            bytes = bytes.saturating_add(r.1.since(r.0.max(seq)));
            count += 1;
        }
        Self::lost(bytes, count, mss)
    }

    fn lost(bytes: u32, count: u32, mss: u32) -> bool {
        count >= DUP_THRESH || bytes > (DUP_THRESH - 1).saturating_mul(mss)
    }

    /// `SetPipe` (RFC 6675 §4): bytes presumed in the network — every unSACKed byte of
    /// `[una, max)` not deemed lost, plus every unSACKed byte below `high_rxt` (the end of
    /// the retransmitted data) once more.
    pub(crate) fn pipe(&self, una: Seq, max: Seq, high_rxt: Seq, mss: u32) -> u32 {
        let mut above_bytes = self.sacked_bytes();
        let mut above_count = self.ranges.len() as u32;
        let mut pipe = 0u32;
        let mut cur = una;
        let hole = |s: Seq, e: Seq, lost: bool| -> u32 {
            if !s.lt(e) {
                return 0;
            }
            let len = e.since(s);
            let rtx = if high_rxt.gt(s) {
                high_rxt.since(s).min(len)
            } else {
                0
            };
            if lost {
                rtx
            } else {
                len.saturating_add(rtx)
            }
        };
        for r in &self.ranges {
            pipe = pipe.saturating_add(hole(cur, r.0, Self::lost(above_bytes, above_count, mss)));
            above_bytes -= r.1.since(r.0);
            above_count -= 1;
            cur = r.1;
        }
        pipe.saturating_add(hole(cur, max, false))
    }

    /// The first hole at or after `from` (≥ `una`) that lies below the highest SACKed byte
    /// (`NextSeg` rules 1 and 3 pick from it); `None` when there is none.
    pub(crate) fn next_hole(&self, from: Seq, una: Seq, mss: u32) -> Option<Hole> {
        let mut above_bytes = self.sacked_bytes();
        let mut above_count = self.ranges.len() as u32;
        let mut cur = una;
        for r in &self.ranges {
            let start = cur.max(from);
            if start.lt(r.0) {
                return Some(Hole {
                    start,
                    end: r.0,
                    lost: Self::lost(above_bytes, above_count, mss),
                });
            }
            above_bytes -= r.1.since(r.0);
            above_count -= 1;
            cur = r.1;
        }
        None
    }

    #[cfg(test)]
    pub(crate) fn ranges(&self) -> &[(Seq, Seq)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_merge_validate_and_stay_bounded() {
        let una = Seq(u32::MAX - 5000); // straddles the wrap
        let max = una + 10_000;
        let mut sb = Scoreboard::new(4);
        assert_eq!(sb.add(una + 1000, una + 2000, una, max), BlockVerdict::Used);
        assert_eq!(sb.add(una + 3000, una + 4000, una, max), BlockVerdict::Used);
        // Overlapping and touching blocks merge.
        assert_eq!(sb.add(una + 1500, una + 3000, una, max), BlockVerdict::Used);
        assert_eq!(sb.ranges(), &[(una + 1000, una + 4000)]);
        // Invalid: empty, inverted, beyond SND.MAX, absurdly wide.
        assert_eq!(sb.add(una + 10, una + 10, una, max), BlockVerdict::Invalid);
        assert_eq!(sb.add(una + 20, una + 10, una, max), BlockVerdict::Invalid);
        assert_eq!(sb.add(una + 9000, max + 1, una, max), BlockVerdict::Invalid);
        assert_eq!(
            sb.add(una + 9000, una + 0x9000_0000, una, max),
            BlockVerdict::Invalid
        );
        assert_eq!(
            sb.add(una - 0x7000_0000, una + 5, una, max),
            BlockVerdict::Invalid
        );
        // Below SND.UNA (D-SACK): ignored; straddling it: clipped.
        assert_eq!(sb.add(una - 100, una, una, max), BlockVerdict::Old);
        assert_eq!(sb.add(una - 100, una + 100, una, max), BlockVerdict::Used);
        assert_eq!(sb.ranges(), &[(una, una + 100), (una + 1000, una + 4000)]);
        // Full: a lower range evicts the highest; a higher one is not recorded.
        sb.add(una + 5000, una + 5100, una, max);
        sb.add(una + 7000, una + 7100, una, max);
        assert_eq!(sb.len(), 4);
        sb.add(una + 9000, una + 9100, una, max);
        assert_eq!(sb.ranges().last(), Some(&(una + 7000, una + 7100)));
        sb.add(una + 6000, una + 6100, una, max);
        assert_eq!(sb.len(), 4);
        assert_eq!(sb.ranges().last(), Some(&(una + 6000, una + 6100)));
        // The cumulative ACK trims.
        sb.advance(una + 1500);
        assert_eq!(sb.ranges()[0], (una + 1500, una + 4000));
        sb.advance(una + 8000);
        assert!(sb.is_empty());
    }

    #[test]
    fn is_lost_pipe_and_holes() {
        let mss = 1000;
        let una = Seq(1000);
        let max = una + 10 * mss;
        let mut sb = Scoreboard::new(SCOREBOARD_RANGES);
        // Segments 0..10 sent; 1, 3 and 5..7 SACKed; 0, 2, 4 and 7..10 not.
        for (a, b) in [(1, 2), (3, 4), (5, 7)] {
            sb.add(una + a * mss, una + b * mss, una, max);
        }
        assert_eq!(sb.sacked_bytes(), 4 * mss);
        // Hole 0: three ranges (4 segments) above: lost. Hole 2: two ranges, 3 segments:
        // lost by bytes. Hole 4: 2 segments above: not lost. Above the highest: not lost.
        assert!(sb.is_lost(una, mss));
        assert!(sb.is_lost(una + 2 * mss, mss));
        assert!(!sb.is_lost(una + 4 * mss, mss));
        assert!(!sb.is_lost(una + 8 * mss, mss));
        // Pipe with nothing retransmitted: hole 4 (1 segment) and 7..10 (3 segments).
        assert_eq!(sb.pipe(una, max, una, mss), 4 * mss);
        // After retransmitting holes 0 and 2, they count once more.
        assert_eq!(sb.pipe(una, max, una + 3 * mss, mss), 6 * mss);
        let h = sb.next_hole(una, una, mss).expect("hole");
        assert_eq!((h.start, h.end, h.lost), (una, una + mss, true));
        let h = sb.next_hole(una + mss, una, mss).expect("hole");
        assert_eq!(
            (h.start, h.end, h.lost),
            (una + 2 * mss, una + 3 * mss, true)
        );
        let h = sb.next_hole(una + 3 * mss, una, mss).expect("hole");
        assert_eq!(
            (h.start, h.end, h.lost),
            (una + 4 * mss, una + 5 * mss, false)
        );
        assert_eq!(sb.next_hole(una + 5 * mss, una, mss), None);
        assert_eq!(sb.sacked_end_at(una + 5 * mss + 10), Some(una + 7 * mss));
        assert_eq!(sb.sacked_end_at(una), None);
        assert_eq!(sb.next_sacked_after(una + 4 * mss), Some(una + 5 * mss));
    }
}
