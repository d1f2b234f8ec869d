//! A hashed timer wheel over connection slots (Varghese & Lauck, scheme 6): one deadline per
//! slot, kept in the bucket of its tick in an intrusive doubly linked list, so arming,
//! re-arming and cancelling are O(1) and nothing is allocated after construction. Deadlines
//! further away than one turn of the wheel stay in their bucket and are skipped until due.

const NIL: u32 = u32::MAX;

/// Timer wheel for up to `capacity` slots.
#[derive(Debug)]
pub struct TimerWheel {
    /// log2 of the tick in nanoseconds.
    tick_shift: u32,
    heads: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Deadline per slot; `u64::MAX` when not armed.
    deadline: Vec<u64>,
    /// Bucket each armed slot is linked in.
    home: Vec<u32>,
    /// The last tick whose bucket was processed.
    cur_tick: u64,
    armed: usize,
}

impl TimerWheel {
    /// A wheel of `buckets` (rounded up to a power of two) ticks of `2^tick_shift` ns each,
    /// for slots `0..capacity`, starting at time `now`.
    pub fn new(capacity: usize, buckets: usize, tick_shift: u32, now: u64) -> Self {
        let buckets = buckets.max(2).next_power_of_two();
        TimerWheel {
            tick_shift,
            heads: vec![NIL; buckets],
            next: vec![NIL; capacity],
            prev: vec![NIL; capacity],
            deadline: vec![u64::MAX; capacity],
            home: vec![0; capacity],
            cur_tick: now >> tick_shift,
            armed: 0,
        }
    }

    /// Slots with a deadline.
    pub fn armed(&self) -> usize {
        self.armed
    }

    /// The deadline of `slot`, if armed.
    pub fn deadline(&self, slot: u32) -> Option<u64> {
        let d = self.deadline[slot as usize];
        (d != u64::MAX).then_some(d)
    }

    #[inline]
    fn bucket(&self, t: u64) -> usize {
        ((t >> self.tick_shift) as usize) & (self.heads.len() - 1)
    }

    /// Sets (or with `None` cancels) the deadline of `slot`. Cheap when unchanged.
    #[inline]
    pub fn set(&mut self, slot: u32, at: Option<u64>) {
        let at = at.unwrap_or(u64::MAX);
        let s = slot as usize;
        if self.deadline[s] == at {
            return;
        }
        if self.deadline[s] != u64::MAX {
            self.unlink(slot);
        }
        self.deadline[s] = at;
        if at != u64::MAX {
            // A deadline in a tick already processed goes to the next bucket visited.
            let b = self.bucket(at.max((self.cur_tick + 1) << self.tick_shift));
            let h = self.heads[b];
            self.next[s] = h;
            self.prev[s] = NIL;
            if h != NIL {
                self.prev[h as usize] = slot;
            }
            self.heads[b] = slot;
            self.home[s] = b as u32;
            self.armed += 1;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let s = slot as usize;
        let (n, p) = (self.next[s], self.prev[s]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            self.heads[self.home[s] as usize] = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        }
        self.next[s] = NIL;
        self.prev[s] = NIL;
        self.armed -= 1;
    }

    /// Moves time to `now` and pushes every slot whose deadline is ≤ `now` into `fired`
    /// (disarming it), up to `fired`'s spare capacity; the rest fire on the next call.
    pub fn advance(&mut self, now: u64, fired: &mut Vec<u32>) {
        let target = now >> self.tick_shift;
        if target < self.cur_tick {
            return;
        }
        let n = self.heads.len() as u64;
        // Visit each bucket at most once, ending at the current tick's bucket.
        let first = if target - self.cur_tick >= n {
            target + 1 - n
        } else {
            self.cur_tick
        };
        for tick in first..=target {
            let b = (tick as usize) & (self.heads.len() - 1);
            let mut s = self.heads[b];
            while s != NIL {
                let next = self.next[s as usize];
                if self.deadline[s as usize] <= now {
                    if fired.len() == fired.capacity() {
                        // Out of room: leave the rest for the next call.
                        self.cur_tick = tick.saturating_sub(1);
                        return;
                    }
                    self.unlink(s);
                    self.deadline[s as usize] = u64::MAX;
                    fired.push(s);
                }
                s = next;
            }
        }
        self.cur_tick = target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn fires_each_deadline_once_in_time_and_never_early() {
        let mut w = TimerWheel::new(64, 256, 20, 0);
        let mut fired = Vec::with_capacity(64);
        // Deadlines from 0 to ~3 wheel turns away, some re-armed, some cancelled.
        let mut want: Vec<Option<u64>> = vec![None; 64];
        for s in 0..64u32 {
            let at = (s as u64 * 13 * MS) % (800 * MS) + 1;
            w.set(s, Some(at));
            want[s as usize] = Some(at);
        }
        w.set(3, Some(5 * MS));
        want[3] = Some(5 * MS);
        w.set(4, None);
        want[4] = None;
        assert_eq!(w.armed(), 63);
        let mut now = 0;
        let mut got = vec![None; 64];
        while now < 1000 * MS {
            now += 700_000; // 0.7 ms steps, not aligned to the tick
            fired.clear();
            w.advance(now, &mut fired);
            for &s in &fired {
                assert!(got[s as usize].is_none(), "slot {s} fired twice");
                let d = want[s as usize].unwrap();
                assert!(d <= now, "slot {s} fired early");
                assert!(now - d < 2 * MS, "slot {s} fired late: {d} at {now}");
                got[s as usize] = Some(now);
            }
        }
        for s in 0..64 {
            assert_eq!(got[s].is_some(), want[s].is_some(), "slot {s}");
        }
        assert_eq!(w.armed(), 0);
    }

    #[test]
    fn a_long_jump_and_a_past_deadline_still_fire() {
        let mut w = TimerWheel::new(4, 16, 20, 0);
        let mut fired = Vec::with_capacity(4);
        w.set(0, Some(10 * MS));
        w.set(1, Some(100 * MS));
        w.advance(50 * MS, &mut fired);
        assert_eq!(fired, vec![0]);
        // Armed in the past: fires on the next advance.
        w.set(2, Some(MS));
        fired.clear();
        w.advance(51 * MS, &mut fired);
        assert_eq!(fired, vec![2]);
        fired.clear();
        w.advance(10_000 * MS, &mut fired);
        assert_eq!(fired, vec![1]);
    }
}
