//! One FLV recording on disk: created without overwriting anything, tags
//! appended through a buffer that is written out at every keyframe (and
//! synced to the disk at most once a second), and finished by patching
//! `duration` and `filesize` into its `onMetaData` and syncing. Whatever
//! happens to the server, the file holds every tag up to the last one
//! written out, complete.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::media::flv_writer::{self, MetadataTag};

/// Buffered bytes at most between keyframes before they are written out
/// anyway.
const BUFFER: usize = 256 * 1024;
/// Least time between two syncs to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// An open recording.
pub struct FlvFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes written (or buffered) so far.
    len: u64,
    /// Where the metadata's numbers are in the file.
    duration_at: u64,
    filesize_at: u64,
    /// The timestamp of the last tag, the file's duration in ms.
    last_timestamp: u32,
    last_sync: Instant,
    last_flush: Instant,
}

impl FlvFile {
    /// Creates `path` (never replacing a file) and writes the header,
    /// `metadata` and the `headers` (sequence headers: tag type and body)
    /// at time 0. If those cannot be written the file is removed.
    pub fn create<'a>(
        path: &Path,
        has_audio: bool,
        has_video: bool,
        metadata: &MetadataTag,
        headers: impl Iterator<Item = (u8, &'a [u8])>,
    ) -> io::Result<FlvFile> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let started = FlvFile::start(path, file, has_audio, has_video, metadata, headers);
        match &started {
            Err(_) => {
                // Created here, holding nothing of use.
                let _ = std::fs::remove_file(path);
            }
            // The new name itself is on the disk too.
            Ok(_) => {
                if let Some(dir) = path.parent()
                    && let Ok(dir) = File::open(dir)
                {
                    let _ = dir.sync_all();
                }
            }
        }
        started
    }

    fn start<'a>(
        path: &Path,
        file: File,
        has_audio: bool,
        has_video: bool,
        metadata: &MetadataTag,
        headers: impl Iterator<Item = (u8, &'a [u8])>,
    ) -> io::Result<FlvFile> {
        let mut flv = FlvFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(BUFFER, file),
            len: 0,
            duration_at: 0,
            filesize_at: 0,
            last_timestamp: 0,
            last_sync: Instant::now(),
            last_flush: Instant::now(),
        };
        flv.put(&flv_writer::file_header(has_audio, has_video))?;
        let body_at = flv.len + flv_writer::TAG_HEADER_LEN as u64;
        flv.duration_at = body_at + metadata.duration_at as u64;
        flv.filesize_at = body_at + metadata.filesize_at as u64;
        flv.tag(flv_writer::tag_type::SCRIPT, 0, &metadata.body)?;
        for (tag_type, body) in headers {
            flv.tag(tag_type, 0, body)?;
        }
        // The start of the file is on the disk before any media.
        flv.out.flush()?;
        Ok(flv)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends a tag. A body FLV cannot state the length of is an error.
    pub fn tag(&mut self, tag_type: u8, timestamp: u32, body: &[u8]) -> io::Result<()> {
        let header = flv_writer::tag_header(tag_type, timestamp, body.len())
            .ok_or_else(|| io::Error::other("a message too long for an FLV tag"))?;
        self.put(&header)?;
        self.put(body)?;
        self.put(&flv_writer::tag_trailer(body.len()))?;
        self.last_timestamp = self.last_timestamp.max(timestamp);
        Ok(())
    }

    /// Whether a second has passed since the last checkpoint (for a
    /// stream without keyframes to checkpoint at).
    pub fn checkpoint_due(&self) -> bool {
        self.last_flush.elapsed() >= SYNC_EVERY
    }

    /// The timestamp of the latest tag.
    pub fn last_timestamp(&self) -> u32 {
        self.last_timestamp
    }

    /// Writes out what is buffered (at a keyframe), and syncs it to the
    /// disk if the last sync was a while ago.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.last_flush = Instant::now();
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.out.get_ref().sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    /// The media's duration so far.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.last_timestamp.into())
    }

    /// Writes out the rest, patches `duration` and `filesize`, and syncs.
    /// On a write error the file keeps what was written out before.
    pub fn finish(mut self) -> io::Result<Finished> {
        self.out.flush()?;
        let file = self.out.get_ref();
        let seconds = f64::from(self.last_timestamp) / 1000.0;
        file.write_all_at(&flv_writer::number(seconds), self.duration_at)?;
        file.write_all_at(&flv_writer::number(self.len as f64), self.filesize_at)?;
        file.sync_all()?;
        Ok(Finished {
            path: self.path,
            bytes: self.len,
            duration: Duration::from_millis(self.last_timestamp.into()),
        })
    }
}

/// A recording that was finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub bytes: u64,
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::flv;
    use crate::media::flv_writer::{MetadataFacts, metadata_tag};
    use crate::protocol::amf0::{self, Value};
    use bytes::Bytes;

    #[test]
    fn a_finished_file_parses_with_its_duration_and_size_patched() {
        let dir = std::env::temp_dir().join(format!("rtmp-flvfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.flv");
        let meta = metadata_tag(None, &MetadataFacts::default());
        let headers = [(9u8, &b"\x17\x00\x00\x00\x00hdr"[..])];
        let mut file = FlvFile::create(&path, true, true, &meta, headers.into_iter()).unwrap();
        file.tag(9, 0, b"\x17\x01\x00\x00\x00key").unwrap();
        file.checkpoint().unwrap();
        file.tag(8, 2500, b"\xaf\x01aac").unwrap();
        let len = file.bytes_written();
        // Never replaces a file.
        let again = FlvFile::create(&path, true, true, &meta, std::iter::empty());
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists)
        );
        assert!(path.exists(), "left alone");
        let done = file.finish().unwrap();
        assert_eq!(done.bytes, len);
        assert_eq!(done.duration, Duration::from_millis(2500));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        let tags = flv::parse(&Bytes::from(bytes)).unwrap();
        assert_eq!(tags.len(), 4);
        let values = amf0::decode_all(&tags[0].payload).unwrap();
        let Value::EcmaArray(props) = &values[1] else {
            panic!("{values:?}");
        };
        assert_eq!(props[0], ("duration".into(), Value::Number(2.5)));
        assert_eq!(props[1], ("filesize".into(), Value::Number(len as f64)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
