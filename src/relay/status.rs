//! What each running relay is doing, for the API and metrics: its state
//! (`connecting`, `publishing`, `backoff`, `failed`), what it sent and
//! dropped over all its connections, its reconnects and its last error.
//! A board lists the relays that run; a relay leaves it when it stops.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::hub::output::OutputShared;

/// A relay's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    Connecting,
    Publishing,
    /// Waiting before it tries again.
    Backoff,
    /// The destination refused the stream; retried at the longest backoff.
    Failed,
    /// Ended with its stream's session (the last state events show).
    Stopped,
}

impl RelayState {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayState::Connecting => "connecting",
            RelayState::Publishing => "publishing",
            RelayState::Backoff => "backoff",
            RelayState::Failed => "failed",
            RelayState::Stopped => "stopped",
        }
    }
}

/// A snapshot of one relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    /// The stream relayed (`app/name`).
    pub key: String,
    /// Where to, as logs show it: no query, the stream name cut short.
    pub destination: String,
    pub state: RelayState,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_dropped: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
}

#[derive(Debug)]
struct Progress {
    state: RelayState,
    /// Sent and dropped by connections that ended.
    messages_sent: u64,
    bytes_sent: u64,
    messages_dropped: u64,
    reconnects: u64,
    last_error: Option<(String, SystemTime)>,
    /// The output of the connection now publishing, if any.
    output: Option<Arc<OutputShared>>,
}

/// One running relay's entry on the board.
#[derive(Debug)]
pub struct RelayEntry {
    key: String,
    destination: String,
    progress: Mutex<Progress>,
}

impl RelayEntry {
    /// Records a new state; returns the old one.
    pub fn set_state(&self, state: RelayState) -> RelayState {
        std::mem::replace(&mut self.progress.lock().state, state)
    }

    /// A connection attempt after the first.
    pub fn reconnecting(&self) {
        self.progress.lock().reconnects += 1;
    }

    pub fn failed(&self, error: &str) {
        self.progress.lock().last_error = Some((error.to_owned(), SystemTime::now()));
    }

    /// The output a new connection publishes.
    pub fn publishing(&self, output: Arc<OutputShared>) {
        self.progress.lock().output = Some(output);
    }

    /// The connection's output is done: its figures join the totals.
    pub fn unpublished(&self) {
        let mut progress = self.progress.lock();
        if let Some(output) = progress.output.take() {
            let stats = output.stats();
            progress.messages_sent += stats.messages_sent;
            progress.bytes_sent += stats.bytes_sent;
            progress.messages_dropped += stats.dropped_messages;
        }
    }

    fn status(&self) -> RelayStatus {
        let progress = self.progress.lock();
        let current = progress.output.as_ref().map(|o| o.stats());
        let (error, at) = match &progress.last_error {
            Some((error, at)) => (Some(error.clone()), Some(*at)),
            None => (None, None),
        };
        RelayStatus {
            key: self.key.clone(),
            destination: self.destination.clone(),
            state: progress.state,
            messages_sent: progress.messages_sent + current.map_or(0, |s| s.messages_sent),
            bytes_sent: progress.bytes_sent + current.map_or(0, |s| s.bytes_sent),
            messages_dropped: progress.messages_dropped + current.map_or(0, |s| s.dropped_messages),
            reconnects: progress.reconnects,
            last_error: error,
            last_error_at: at,
        }
    }
}

/// The relays that run.
#[derive(Debug, Default)]
pub struct RelayBoard {
    entries: Mutex<Vec<Arc<RelayEntry>>>,
}

impl RelayBoard {
    /// Lists a relay of `key` to `destination` (as logs show it).
    pub fn add(&self, key: &str, destination: String) -> Arc<RelayEntry> {
        let entry = Arc::new(RelayEntry {
            key: key.to_owned(),
            destination,
            progress: Mutex::new(Progress {
                state: RelayState::Connecting,
                messages_sent: 0,
                bytes_sent: 0,
                messages_dropped: 0,
                reconnects: 0,
                last_error: None,
                output: None,
            }),
        });
        self.entries.lock().push(Arc::clone(&entry));
        entry
    }

    pub fn remove(&self, entry: &Arc<RelayEntry>) {
        self.entries.lock().retain(|e| !Arc::ptr_eq(e, entry));
    }

    pub fn statuses(&self) -> Vec<RelayStatus> {
        self.entries.lock().iter().map(|e| e.status()).collect()
    }
}
