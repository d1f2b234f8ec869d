//! What a poll loop does when a turn finds no packets.

use std::time::Duration;

/// Idle behaviour of an lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Spin forever (lowest latency, one core at 100 %).
    Busy,
    /// Spin for `spin_turns` empty turns, then sleep, doubling the sleep from 1 µs up to
    /// `max_sleep_us` while the queues stay empty. Gives the CPU back on a shared machine.
    /// When every rx queue of the lcore can wake it ([`RxQueue::wake_fd`](crate::port::RxQueue::wake_fd)),
    /// the sleep is a `ppoll` on those descriptors that the first packet ends.
    Adaptive {
        /// Empty turns before the first sleep.
        spin_turns: u32,
        /// Longest single sleep in microseconds.
        max_sleep_us: u32,
    },
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy::Adaptive {
            spin_turns: 64,
            max_sleep_us: 100,
        }
    }
}

/// Per-lcore state of the idle policy.
#[derive(Debug)]
pub struct Idler {
    policy: IdlePolicy,
    empty_turns: u32,
    sleep_us: u32,
}

impl Idler {
    /// A fresh idler.
    pub fn new(policy: IdlePolicy) -> Self {
        Idler {
            policy,
            empty_turns: 0,
            sleep_us: 1,
        }
    }

    /// Called at the end of each turn with the packets it received; returns true if it slept.
    #[inline]
    pub fn after_turn(&mut self, packets: usize) -> bool {
        self.after_turn_with(packets, std::thread::sleep)
    }

    /// Like [`after_turn`](Self::after_turn), sleeping through `sleep` (which may return
    /// early, e.g. when a packet arrives).
    #[inline]
    pub fn after_turn_with(&mut self, packets: usize, sleep: impl FnOnce(Duration)) -> bool {
        if packets > 0 {
            self.empty_turns = 0;
            self.sleep_us = 1;
            return false;
        }
        match self.policy {
            IdlePolicy::Busy => {
                core::hint::spin_loop();
                false
            }
            IdlePolicy::Adaptive {
                spin_turns,
                max_sleep_us,
            } => {
                if self.empty_turns < spin_turns {
                    self.empty_turns += 1;
                    core::hint::spin_loop();
                    return false;
                }
                sleep(Duration::from_micros(self.sleep_us as u64));
                self.sleep_us = (self.sleep_us * 2).min(max_sleep_us.max(1));
                true
            }
        }
    }
}

/// Asks the kernel for fine-grained sleeps on this thread (the default timer slack of 50 µs
/// would make every short idle sleep 50 µs long).
pub fn set_fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_spins_then_sleeps_then_resets() {
        let mut i = Idler::new(IdlePolicy::Adaptive {
            spin_turns: 3,
            max_sleep_us: 4,
        });
        let slept: Vec<bool> = (0..6).map(|_| i.after_turn(0)).collect();
        assert_eq!(slept, [false, false, false, true, true, true]);
        assert_eq!(i.sleep_us, 4);
        assert!(!i.after_turn(5));
        assert!(!i.after_turn(0));
        assert_eq!(i.sleep_us, 1);
    }

    #[test]
    fn busy_never_sleeps() {
        let mut i = Idler::new(IdlePolicy::Busy);
        assert!((0..1000).all(|_| !i.after_turn(0)));
    }
}
