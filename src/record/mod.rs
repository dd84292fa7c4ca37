//! Recording: published streams kept on disk as FLV (`-record-all`,
//! `-record app/*`, `-record-dir`). When a publish session starts, the
//! publisher's own thread attaches a recorder to the stream ([`attach`])
//! before any of its media is taken, so a file misses nothing; the
//! recorder (see `recorder`) is an output of the stream with its own
//! bounded queue and thread, so that a slow or full disk never holds up
//! the publisher or a player. The board lists what is being recorded, and
//! lets shutdown wait until every file is finished.

pub mod catalog;
mod disk;
mod file;
mod mp4_file;
mod name;
pub mod pattern;
mod recorder;
pub mod retention;
pub mod sink;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::hub::stream::Stream;
use crate::hub::stream_key::{KeyPattern, StreamKey};
use crate::server::Shared;
use pattern::SegmentPattern;
use recorder::Recorder;
use retention::Retention;
use sink::RecordFormat;

/// Recorders' output ids, apart from connections' and relays'.
const FIRST_OUTPUT_ID: u64 = 3 << 61;

/// Which streams are recorded, where, in what files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSettings {
    /// `-record-all`: every stream.
    pub all: bool,
    /// `-record`: streams matching one of these (`app/name`, `app/*`).
    pub patterns: Vec<KeyPattern>,
    /// `-record-dir`.
    pub dir: PathBuf,
    /// `-segment-duration`: a new file at the first keyframe after this.
    pub segment: Option<Duration>,
    /// `-segment-pattern`: file names.
    pub names: SegmentPattern,
    /// `-record-max-age`, `-record-min-free`.
    pub retention: Retention,
    /// `-record-format`.
    pub format: RecordFormat,
}

impl Default for RecordSettings {
    fn default() -> Self {
        RecordSettings {
            all: false,
            patterns: Vec::new(),
            dir: PathBuf::from("recordings"),
            segment: None,
            names: SegmentPattern::parse(pattern::DEFAULT).expect("the default pattern parses"),
            retention: Retention::default(),
            format: RecordFormat::default(),
        }
    }
}

impl RecordSettings {
    pub fn is_enabled(&self) -> bool {
        self.all || !self.patterns.is_empty()
    }

    /// Whether the stream `key` is recorded.
    pub fn wants(&self, key: &StreamKey) -> bool {
        self.all || self.patterns.iter().any(|p| p.matches(key))
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

/// One running recorder.
#[derive(Debug)]
struct Running {
    path: String,
    status: Option<RecordingStatus>,
}

/// The recorders running, by output id (a stream republished at once may
/// have the old session's recorder finishing while the new one starts).
#[derive(Debug)]
pub struct RecorderBoard {
    running: Mutex<HashMap<u64, Running>>,
    next_id: AtomicU64,
    /// Asks the retention thread for a sweep.
    sweeper: Mutex<Option<crossbeam_channel::Sender<()>>>,
}

impl Default for RecorderBoard {
    fn default() -> Self {
        RecorderBoard {
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(FIRST_OUTPUT_ID),
            sweeper: Mutex::new(None),
        }
    }
}

impl RecorderBoard {
    /// The files recorders have open.
    pub fn open_files(&self) -> std::collections::HashSet<PathBuf> {
        let running = self.running.lock();
        running
            .values()
            .filter_map(|r| r.status.as_ref().map(|s| PathBuf::from(&s.file)))
            .collect()
    }

    /// Starts retention if it is asked for.
    pub(crate) fn start_retention(&self, shared: &Arc<Shared>) -> std::io::Result<()> {
        *self.sweeper.lock() = retention::start(shared)?;
        Ok(())
    }

    /// A recording was finished: retention may have work.
    fn recording_ended(&self) {
        if let Some(sweeper) = &*self.sweeper.lock() {
            let _ = sweeper.try_send(());
        }
    }

    /// The file stream `path` is being recorded to now, if one is open
    /// (the newest recorder's).
    pub fn status(&self, path: &str) -> Option<RecordingStatus> {
        let running = self.running.lock();
        running
            .iter()
            .filter(|(_, r)| r.path == path && r.status.is_some())
            .max_by_key(|(id, _)| **id)
            .and_then(|(_, r)| r.status.clone())
    }

    fn add(&self, path: &str) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.running.lock().insert(
            id,
            Running {
                path: path.to_owned(),
                status: None,
            },
        );
        id
    }

    fn set(&self, id: u64, status: Option<RecordingStatus>) {
        if let Some(running) = self.running.lock().get_mut(&id) {
            running.status = status;
        }
    }

    fn remove(&self, id: u64) {
        self.running.lock().remove(&id);
    }

    /// Waits, for at most `limit`, until no recorder runs (each finishes
    /// its file when its stream ends); logs those that did not finish.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.running.lock().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for running in self.running.lock().values() {
            log::warn!(
                "recording of {} not finished at shutdown",
                crate::hub::stream_key::log_path(&running.path)
            );
        }
    }
}

/// Attaches a recorder to the live session of `stream` if it is to be
/// recorded. Called by the input's thread as the session starts, before
/// it takes any media: the recorder's queue gets everything.
pub(crate) fn attach(shared: &Arc<Shared>, stream: &Arc<Stream>) {
    let key = stream.key().clone();
    if !shared.config.record.wants(&key) {
        return;
    }
    let id = shared.recorders.add(stream.path());
    let recorder = Recorder::subscribe(Arc::clone(shared), key, Arc::clone(stream), id);
    let spawned = thread::Builder::new()
        .name("recorder".into())
        .spawn(move || recorder.run());
    if let Err(e) = spawned {
        // The recorder, dropped unrun, let go of its output.
        shared.recorders.remove(id);
        log::warn!(
            "recording of {} not started: cannot start a thread: {e}",
            stream.key()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_pick_streams() {
        let settings = RecordSettings {
            patterns: ["live/cam", "tv/*"]
                .into_iter()
                .filter_map(KeyPattern::parse)
                .collect(),
            ..RecordSettings::default()
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
