//! The history of ended publish sessions: the newest `limit` entries, in a
//! ring that never grows past its limit however long the server runs.

use std::collections::VecDeque;
use std::time::SystemTime;

/// Input switches kept per session (the count goes on).
pub const MAX_SWITCHES: usize = 32;

/// A `-source` stream changing the input players get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRecord {
    /// Priorities (0 first) of the inputs; `None` from nothing (a start).
    pub from: Option<usize>,
    pub to: usize,
    /// `start`, `failover`, `failback`, `manual`.
    pub reason: &'static str,
    pub at: SystemTime,
}

use parking_lot::Mutex;

/// Why a publish session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The publisher stopped (deleteStream, closed its connection).
    PublisherClosed,
    /// The publisher sent nothing for `-publisher-timeout`.
    PublisherTimeout,
    /// The publisher sent something the server could not accept.
    ProtocolError,
    /// Kicked through the HTTP API.
    Kicked,
    Shutdown,
    /// Every input of a `-source` stream was down for `-exhausted-timeout`.
    SourceExhausted,
    /// No player needed a pulled `-source` stream any more.
    SourceIdle,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::PublisherClosed => "publisher_closed",
            EndReason::PublisherTimeout => "publisher_timeout",
            EndReason::ProtocolError => "protocol_error",
            EndReason::Kicked => "kicked",
            EndReason::Shutdown => "shutdown",
            EndReason::SourceExhausted => "source_exhausted",
            EndReason::SourceIdle => "source_idle",
        }
    }
}

/// One ended publish session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub key: String,
    pub opened_at: SystemTime,
    pub closed_at: SystemTime,
    pub duration_ms: u64,
    pub reason: EndReason,
    pub peak_subscribers: usize,
    pub total_subscribers: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped_messages: u64,
    /// Its input switches (a `-source` stream's), the first
    /// [`MAX_SWITCHES`] of them, and how many there were.
    pub switches: Vec<SwitchRecord>,
    pub switch_count: u64,
}

#[derive(Debug)]
pub struct History {
    limit: usize,
    entries: Mutex<VecDeque<SessionRecord>>,
}

impl History {
    pub fn new(limit: usize) -> Self {
        History {
            limit,
            entries: Mutex::new(VecDeque::with_capacity(limit.min(1024))),
        }
    }

    pub fn push(&self, record: SessionRecord) {
        if self.limit == 0 {
            return;
        }
        let mut entries = self.entries.lock();
        while entries.len() >= self.limit {
            entries.pop_front();
        }
        entries.push_back(record);
    }

    /// Whether a session of stream `path` (`app/name`) is among them.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.lock().iter().any(|r| r.key == path)
    }

    /// The entries, newest first.
    pub fn newest_first(&self) -> Vec<SessionRecord> {
        self.entries.lock().iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> SessionRecord {
        SessionRecord {
            key: format!("live/{n}"),
            opened_at: SystemTime::UNIX_EPOCH,
            closed_at: SystemTime::UNIX_EPOCH,
            duration_ms: n,
            reason: EndReason::PublisherClosed,
            peak_subscribers: 0,
            total_subscribers: 0,
            bytes_in: 0,
            bytes_out: 0,
            dropped_messages: 0,
            switches: Vec::new(),
            switch_count: 0,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_the_limit() {
        let history = History::new(3);
        for n in 0..10 {
            history.push(record(n));
        }
        let keys: Vec<_> = history
            .newest_first()
            .into_iter()
            .map(|r| r.duration_ms)
            .collect();
        assert_eq!(keys, vec![9, 8, 7]);
        let none = History::new(0);
        none.push(record(1));
        assert!(none.newest_first().is_empty());
    }
}
