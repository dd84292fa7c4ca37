//! A recording file being appended to: created without replacing anything
//! (and its name synced to the disk), written through a buffer that is
//! written out at each checkpoint (a keyframe, a fragment) and synced at
//! most once a second, patched in place and synced when finished.
//! Whatever happens to the server, the file holds everything up to the
//! last checkpoint.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Buffered bytes at most between checkpoints before they are written
/// out anyway.
const BUFFER: usize = 256 * 1024;
/// Least time between two syncs to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// A recording that was finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub bytes: u64,
    pub duration: Duration,
}

/// An open recording file.
pub struct DiskFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes written (or buffered) so far.
    len: u64,
    last_sync: Instant,
    last_checkpoint: Instant,
}

impl DiskFile {
    /// Creates `path`; fails if it exists.
    pub fn create(path: &Path) -> io::Result<DiskFile> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(DiskFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(BUFFER, file),
            len: 0,
            last_sync: Instant::now(),
            last_checkpoint: Instant::now(),
        })
    }

    /// Removes a file created here that holds nothing of use.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Writes out what is buffered and puts the file's name on the disk
    /// (its directory synced): for the start of a file.
    pub fn settle(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some(dir) = self.path.parent()
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    pub fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered, and syncs it to the disk if the last
    /// sync was a while ago.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.last_checkpoint = Instant::now();
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.out.get_ref().sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Whether a second has passed since the last checkpoint (for a
    /// stream without keyframes to checkpoint at).
    pub fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.elapsed() >= SYNC_EVERY
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file so far.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// Writes out the rest, writes each `(offset, bytes)` patch in place,
    /// and syncs. On an error the file keeps what was written before.
    pub fn finish(mut self, patches: &[(u64, &[u8])], duration: Duration) -> io::Result<Finished> {
        self.out.flush()?;
        let file = self.out.get_ref();
        for (at, bytes) in patches {
            file.write_all_at(bytes, *at)?;
        }
        file.sync_all()?;
        Ok(Finished {
            path: self.path,
            bytes: self.len,
            duration,
        })
    }
}
