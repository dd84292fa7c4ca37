//! What each `-source` stream is doing, for the API, metrics and the
//! decision to take a player: its inputs' status, the active and forced
//! input, whether it is exhausted, its switches; and the way in for a
//! manual switch (checked here, carried out by the source's thread). The
//! set of sources is fixed at startup.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::health::InputStatus;
use super::spec::{SourceSettings, SourceSpec};
use crate::hub::stream_key::StreamKey;

/// Requests a source's thread may fall behind by.
const CONTROL_CAPACITY: usize = 16;

/// One input as the API shows it.
#[derive(Debug, Clone)]
pub struct InputView {
    /// Its key, or its URL without query.
    pub source: String,
    pub pull: bool,
    pub status: InputStatus,
    pub last_packet_at: Option<SystemTime>,
    pub bitrate_kbps: u64,
    pub last_error: Option<(String, SystemTime)>,
    /// Connection attempts of its pull after the first (while needed).
    pub reconnects: u64,
}

/// A source as the API shows it.
#[derive(Debug, Clone, Default)]
pub struct SourceView {
    pub inputs: Vec<InputView>,
    pub active: Option<usize>,
    /// Forced through the API (until it degrades).
    pub forced: Option<usize>,
    pub exhausted: bool,
    pub switch_count: u64,
    /// A player now would need a pull opened (none runs, nothing healthy).
    pub needs_pull: bool,
}

/// What the API asks a source's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Force this input (`None`: choose by priority again).
    Force(Option<usize>),
}

/// One source.
pub struct SourceEntry {
    pub spec: SourceSpec,
    view: Mutex<SourceView>,
    control: (Sender<Control>, Receiver<Control>),
}

impl SourceEntry {
    pub fn view(&self) -> SourceView {
        self.view.lock().clone()
    }

    pub(super) fn set_view(&self, view: SourceView) {
        *self.view.lock() = view;
    }

    pub(super) fn controls(&self) -> &Receiver<Control> {
        &self.control.1
    }
}

/// Why a manual switch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchError {
    /// No `-source` feeds the stream.
    NotASource,
    /// No input of that priority.
    NoSuchInput { input: usize, inputs: usize },
    /// The input cannot feed the stream now.
    Unhealthy { input: usize, status: InputStatus },
    /// The source's thread is not taking requests.
    Busy,
}

impl SwitchError {
    /// The HTTP status it answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            SwitchError::NotASource => 404,
            SwitchError::NoSuchInput { .. } => 400,
            SwitchError::Unhealthy { .. } => 409,
            SwitchError::Busy => 503,
        }
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::NotASource => write!(f, "no -source feeds this stream"),
            SwitchError::NoSuchInput { input, inputs } => write!(
                f,
                "no input {input}: the stream has inputs 0 to {}",
                inputs.saturating_sub(1)
            ),
            SwitchError::Unhealthy { input, status } => write!(
                f,
                "input {input} is {}: only a healthy input can be switched to",
                status.as_str()
            ),
            SwitchError::Busy => write!(f, "the source is busy: try again"),
        }
    }
}

impl std::error::Error for SwitchError {}

/// Every source of the server.
#[derive(Default)]
pub struct SourceBoard {
    entries: Vec<Arc<SourceEntry>>,
    max_pulls: usize,
    /// Pull workers running (each holds one of `-max-pulls` until its
    /// thread ends).
    pulls: Arc<AtomicUsize>,
}

/// One of `-max-pulls`, held by a pull's thread: given back when it ends,
/// however it ends.
#[derive(Debug)]
pub struct PullSlot(Arc<AtomicUsize>);

impl Drop for PullSlot {
    fn drop(&mut self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl SourceBoard {
    pub fn new(settings: &SourceSettings) -> SourceBoard {
        let entries = settings
            .sources
            .iter()
            .map(|spec| {
                Arc::new(SourceEntry {
                    spec: spec.clone(),
                    view: Mutex::new(SourceView::default()),
                    control: crossbeam_channel::bounded(CONTROL_CAPACITY),
                })
            })
            .collect();
        SourceBoard {
            entries,
            max_pulls: settings.max_pulls,
            pulls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn entries(&self) -> &[Arc<SourceEntry>] {
        &self.entries
    }

    /// The source feeding `path` (`app/name`), if one does.
    pub fn get(&self, path: &str) -> Option<&Arc<SourceEntry>> {
        self.entries.iter().find(|e| e.spec.key.as_path() == path)
    }

    /// Forces input `input` of the stream at `path` (`None`: back to
    /// choosing by priority).
    pub fn switch(&self, path: &str, input: Option<usize>) -> Result<(), SwitchError> {
        let entry = self.get(path).ok_or(SwitchError::NotASource)?;
        if let Some(n) = input {
            let view = entry.view();
            let count = entry.spec.inputs.len();
            let status = match view.inputs.get(n) {
                Some(i) => i.status,
                None if n < count => InputStatus::Idle,
                None => {
                    return Err(SwitchError::NoSuchInput {
                        input: n,
                        inputs: count,
                    });
                }
            };
            if matches!(status, InputStatus::Idle | InputStatus::Degraded) {
                return Err(SwitchError::Unhealthy { input: n, status });
            }
        }
        entry
            .control
            .0
            .try_send(Control::Force(input))
            .map_err(|_| SwitchError::Busy)
    }

    /// Whether a player of `key` may come: not if it would need a pull
    /// opened and `-max-pulls` are open. The refusal says why.
    pub fn admit_player(&self, key: &StreamKey) -> Result<(), String> {
        let Some(entry) = self.get(&key.as_path()) else {
            return Ok(());
        };
        if entry.view().needs_pull && self.pulls.load(Ordering::Acquire) >= self.max_pulls {
            return Err(format!(
                "Too many upstream pulls (-max-pulls {}).",
                self.max_pulls
            ));
        }
        Ok(())
    }

    /// Takes one of `-max-pulls` for a pull to start; `None` if none is
    /// left.
    pub(super) fn take_pull(&self) -> Option<PullSlot> {
        self.pulls
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_pulls).then_some(n + 1)
            })
            .ok()
            .map(|_| PullSlot(Arc::clone(&self.pulls)))
    }
}
