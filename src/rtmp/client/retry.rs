//! What outbound clients (relays, pulls) share to retry and stop: a
//! growing wait with jitter between attempts, a stop control that also
//! shuts the connection in use, and a peer's error text made fit to show.

use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::protocol::url::RtmpUrl;

/// First wait before reconnecting, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest error text kept from a peer.
const MAX_ERROR_CHARS: usize = 200;

/// The growing wait between attempts.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }

    /// The wait before the next attempt: the current step plus up to half
    /// of it at random (so relays that failed together do not retry
    /// together); the step doubles up to the maximum.
    pub fn wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let jitter_ms = (step.as_millis() / 2).max(1) as u32;
        let random = getrandom::u32().unwrap_or(0) % jitter_ms;
        step + Duration::from_millis(random.into())
    }

    /// A destination that refused us is retried at the maximum.
    pub fn refused(&mut self) {
        self.next = BACKOFF_MAX;
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// How an outbound client (a relay, a pull) is stopped: a flag it looks at between steps, and the
/// socket of its connection, shut down so that a write to a peer that
/// reads slowly returns at once.
#[derive(Debug, Default)]
pub struct Stopper {
    stop: AtomicBool,
    socket: Mutex<Option<Arc<TcpStream>>>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(socket) = self.socket.lock().as_ref() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The flag, for loops that look at it.
    pub fn flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// The connection now in use (`None` when there is none).
    pub fn attach(&self, socket: Option<Arc<TcpStream>>) {
        let mut slot = self.socket.lock();
        *slot = socket;
        if self.is_stopped()
            && let Some(socket) = slot.as_ref()
        {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// A peer's error text as the API shows it: bounded, printable,
/// and never the stream name it was sent (often a secret key).
pub fn sanitize(error: &str, url: &RtmpUrl) -> String {
    let mut text: String = error
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect();
    if let Some(name) = url.name.as_deref() {
        for secret in [name, name.split('?').next().unwrap_or_default()] {
            if secret.len() >= 4 {
                text = text.replace(secret, "***");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_maximum() {
        let mut backoff = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.wait()).collect();
        for (wait, step) in waits.iter().zip([1, 2, 4, 8, 16, 30, 30, 30]) {
            let step = Duration::from_secs(step);
            assert!(
                *wait >= step && *wait <= step + step / 2,
                "{wait:?} for {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.wait() < Duration::from_secs(2));
        let url = RtmpUrl::parse("rtmp://yt/live2/abcd-key?k=1").unwrap();
        let said = sanitize("Publish.BadName: abcd-key\n\x1b[31mno", &url);
        assert_eq!(said, "Publish.BadName: ***  [31mno");
        assert_eq!(sanitize(&"x".repeat(1000), &url).len(), MAX_ERROR_CHARS);
        backoff.refused();
        assert!(backoff.wait() >= BACKOFF_MAX);
    }
}
