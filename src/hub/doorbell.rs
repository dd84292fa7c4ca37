//! A doorbell: how a stream wakes a consumer that drains many outputs (a
//! writer thread of RTMP players) when it queues something for one of
//! them. Ringing never blocks and costs one atomic operation when the
//! bell already rang; the consumer waits for a ring or a timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Rung by streams (or anyone), waited on by one consumer. Waiting parks
/// the thread at once (no spinning: a consumer woken for each message
/// would spend its time spinning).
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Doorbell {
    /// Wakes the consumer (or makes its next wait return at once).
    pub fn ring(&self) {
        // Many outputs ring one bell per message: only the first pays.
        if self.rung.load(Ordering::Acquire) || self.rung.swap(true, Ordering::AcqRel) {
            return;
        }
        // Taking the lock orders this after a waiter's check of `rung`.
        let _guard = self.lock.lock();
        self.wake.notify_one();
    }

    /// Waits until rung or `timeout` passed; true if rung.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock();
        while !self.rung.load(Ordering::Acquire) {
            if self.wake.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
        drop(guard);
        self.rung.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_wake_one_wait_and_do_not_pile_up() {
        let bell = Doorbell::default();
        assert!(!bell.wait(Duration::from_millis(1)));
        bell.ring();
        bell.ring();
        assert!(bell.wait(Duration::from_secs(5)));
        assert!(
            !bell.wait(Duration::from_millis(1)),
            "two rings, one wake-up"
        );
    }
}
