//! A doorbell: how a stream wakes a consumer that drains many outputs (a
//! writer thread of RTMP players) when it queues something for one of
//! them. Ringing never blocks and costs one atomic operation when the
//! bell already rang; the consumer waits for a ring or a timeout.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Rung by streams (or anyone), waited on by one consumer.
#[derive(Debug)]
pub struct Doorbell {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Default for Doorbell {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(1);
        Doorbell { tx, rx }
    }
}

impl Doorbell {
    /// Wakes the consumer (or makes its next wait return at once).
    pub fn ring(&self) {
        match self.tx.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Waits until rung or `timeout` passed; true if rung.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.rx.recv_timeout(timeout).is_ok()
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
