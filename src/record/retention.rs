//! Retention for small disks (`-record-max-age`, `-record-min-free`):
//! the oldest finished recordings of this server are deleted, and each
//! deletion logged. Only files this server wrote (FLV whose `onMetaData`
//! says `metadatacreator: rtmp-server`) are ever touched, never one being
//! written (a recorder has it open, or it changed in the last minute).
//! A thread sweeps at startup, every minute, and when a recording ends.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};

use super::catalog::{self, Recorded};
use crate::server::Shared;

/// How often the directory is swept without a recording ending.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// A file changed this recently may be being written.
const BUSY: Duration = Duration::from_secs(60);

/// The retention settings; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// `-record-max-age`: delete recordings older than this.
    pub max_age: Option<Duration>,
    /// `-record-min-free`: delete the oldest while the disk has less free.
    pub min_free: Option<u64>,
}

impl Retention {
    pub fn is_enabled(&self) -> bool {
        self.max_age.is_some() || self.min_free.is_some()
    }
}

/// Why a recording was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    TooOld,
    DiskFull,
}

/// This server's recordings under `dir`, oldest first, leaving out
/// `open` ones and any changed since `now - BUSY`.
fn finished(dir: &Path, open: &HashSet<PathBuf>, now: SystemTime) -> Vec<Recorded> {
    catalog::scan(dir, |path, modified| {
        let busy = now.duration_since(modified).map_or(true, |age| age < BUSY);
        !busy && !open.contains(path)
    })
}

/// Deletes what `retention` says should go; `free` tells the free bytes
/// on the disk. Returns what was deleted and why.
pub fn sweep(
    dir: &Path,
    retention: &Retention,
    open: &HashSet<PathBuf>,
    now: SystemTime,
    free: impl Fn() -> Option<u64>,
) -> Vec<(PathBuf, Why)> {
    let mut deleted = Vec::new();
    let mut left = Vec::new();
    for recording in finished(dir, open, now) {
        let too_old = retention.max_age.is_some_and(|age| {
            now.duration_since(recording.modified)
                .is_ok_and(|a| a > age)
        });
        if too_old && std::fs::remove_file(&recording.path).is_ok() {
            deleted.push((recording.path, Why::TooOld));
        } else {
            left.push(recording);
        }
    }
    if let Some(min_free) = retention.min_free {
        let mut free_now = free();
        for recording in left {
            if free_now.is_none_or(|f| f >= min_free) {
                break;
            }
            if std::fs::remove_file(&recording.path).is_ok() {
                deleted.push((recording.path, Why::DiskFull));
                // Some file systems free space late: count it now.
                free_now = free_now
                    .map(|f| f.saturating_add(recording.bytes))
                    .max(free());
            }
        }
    }
    deleted
}

/// Free bytes for unprivileged users on the disk holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Starts the retention thread; the sender asks for a sweep now (a
/// recording ended).
pub(crate) fn start(shared: &Arc<Shared>) -> std::io::Result<Option<Sender<()>>> {
    let retention = shared.config.record.retention;
    if !retention.is_enabled() || !shared.config.record.is_enabled() {
        return Ok(None);
    }
    let (tx, rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let dir = shared.config.record.dir.clone();
            loop {
                let open = shared.recorders.open_files();
                for (path, why) in sweep(&dir, &retention, &open, SystemTime::now(), || {
                    free_bytes(&dir)
                }) {
                    let why = match why {
                        Why::TooOld => "older than -record-max-age",
                        Why::DiskFull => "to keep -record-min-free",
                    };
                    log::info!("deleted recording {} ({why})", path.display());
                }
                if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
                    rx.recv_timeout(SWEEP_EVERY)
                {
                    return;
                }
            }
        })?;
    Ok(Some(tx))
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
