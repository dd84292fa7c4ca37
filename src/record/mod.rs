//! Recording: published streams kept on disk as FLV (`-record-all`,
//! `-record app/*`, `-record-dir`). A manager thread follows the hub's
//! lifecycle events and starts one recorder per live session it should
//! keep (see `recorder`): an output of the stream with its own bounded
//! queue and thread, so that a slow or full disk never holds up the
//! publisher or a player. The board lists what is being recorded, and
//! lets shutdown wait until every file is finished.

mod file;
mod name;
mod recorder;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use parking_lot::Mutex;

use crate::hub::events::Event;
use crate::hub::stream_key::StreamKey;
use crate::server::Shared;
use recorder::Recorder;

/// Lifecycle events the manager may fall behind by.
const EVENT_CAPACITY: usize = 1024;
const POLL: Duration = Duration::from_millis(250);
/// How often the manager looks for live streams without their recorder.
const RECONCILE: Duration = Duration::from_secs(1);
/// Recorders' output ids, apart from connections' and relays'.
const FIRST_OUTPUT_ID: u64 = 3 << 61;

/// Which streams are recorded, where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSettings {
    /// `-record-all`: every stream.
    pub all: bool,
    /// `-record`: streams matching one of these (`app/name`, `app/*`).
    pub patterns: Vec<String>,
    /// `-record-dir`.
    pub dir: PathBuf,
}

impl RecordSettings {
    pub fn is_enabled(&self) -> bool {
        self.all || !self.patterns.is_empty()
    }

    /// Whether the stream `key` is recorded.
    pub fn wants(&self, key: &StreamKey) -> bool {
        self.all
            || self.patterns.iter().any(|p| match p.split_once('/') {
                Some((app, "*")) => app == key.app(),
                _ => *p == key.as_path(),
            })
    }
}

/// What one recorder is writing now, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStatus {
    /// The file's name (in `-record-dir`).
    pub file: String,
    pub bytes: u64,
    pub duration: Duration,
}

/// The recorders running, by stream.
#[derive(Debug, Default)]
pub struct RecorderBoard {
    running: Mutex<HashMap<String, Option<RecordingStatus>>>,
}

impl RecorderBoard {
    /// The recording of stream `path` now, if a file is open.
    pub fn status(&self, path: &str) -> Option<RecordingStatus> {
        self.running.lock().get(path).cloned().flatten()
    }

    fn is_running(&self, path: &str) -> bool {
        self.running.lock().contains_key(path)
    }

    fn set(&self, path: &str, status: Option<RecordingStatus>) {
        self.running.lock().insert(path.to_owned(), status);
    }

    fn remove(&self, path: &str) {
        self.running.lock().remove(path);
    }

    /// Waits, for at most `limit`, until no recorder runs (each finishes
    /// its file when its stream ends).
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.running.lock().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts the recording manager if anything is recorded.
pub(crate) fn start(shared: &Arc<Shared>) -> io::Result<()> {
    if !shared.config.record.is_enabled() {
        return Ok(());
    }
    let events = shared.events.subscribe("recorders", EVENT_CAPACITY);
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("recorders".into())
        .spawn(move || {
            let mut next_id = FIRST_OUTPUT_ID;
            let mut next_check = Instant::now() + RECONCILE;
            loop {
                match events.recv_timeout(POLL) {
                    Ok(Event::PublishStarted { key, .. }) => {
                        start_recorder(&shared, &key, &mut next_id)
                    }
                    Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if shared.shutting_down.load(Ordering::Relaxed) {
                    break;
                }
                // Sessions whose start event was dropped (the channel is
                // bounded) are made up for.
                if Instant::now() >= next_check {
                    for stream in shared.registry.streams() {
                        if stream.is_live() && !shared.recorders.is_running(stream.path()) {
                            start_recorder(&shared, stream.path(), &mut next_id);
                        }
                    }
                    next_check = Instant::now() + RECONCILE;
                }
            }
        })?;
    Ok(())
}

/// Starts a recorder for the session on `path`, if it is to be recorded
/// and none runs.
fn start_recorder(shared: &Arc<Shared>, path: &str, next_id: &mut u64) {
    let Some(key) = shared.registry.get(path).map(|s| s.key().clone()) else {
        return;
    };
    if !shared.config.record.wants(&key) || shared.recorders.is_running(path) {
        return;
    }
    shared.recorders.set(path, None);
    let recorder = Recorder::new(Arc::clone(shared), key, *next_id);
    *next_id += 1;
    let spawned = thread::Builder::new()
        .name("recorder".into())
        .spawn(move || recorder.run());
    if let Err(e) = spawned {
        shared.recorders.remove(path);
        log::warn!("recording of {path} not started: cannot start a thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_pick_streams() {
        let settings = RecordSettings {
            all: false,
            patterns: vec!["live/cam".into(), "tv/*".into()],
            dir: PathBuf::from("recordings"),
        };
        let key = |app, name| StreamKey::new(app, name).unwrap();
        assert!(settings.wants(&key("live", "cam?token=x")));
        assert!(!settings.wants(&key("live", "dog")));
        assert!(settings.wants(&key("tv", "news")));
        assert!(settings.is_enabled());
        let all = RecordSettings {
            all: true,
            ..RecordSettings::default()
        };
        assert!(all.wants(&key("any", "thing")));
        assert!(!RecordSettings::default().is_enabled());
    }
}
