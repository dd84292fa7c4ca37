//! One fragmented-MP4 recording on disk: the muxer's init segment, then a
//! `free` box marking the file as this server's (with the stream, the
//! start and a duration patched at the end), then a fragment per GOP,
//! each written out as it is cut. Every fragment is complete on its own,
//! so whatever happens to the server the file plays up to the last one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::file::Finished;
use crate::hub::packet::PacketKind;
use crate::media::fmp4_mux::{Fmp4Muxer, Output};

/// What the marker box starts with.
pub const MARKER: &[u8] = b"rtmp-server\0";
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The marker's body: the magic, the duration in ms (patched), then the
/// stream and the start, each a u16 length and UTF-8.
pub fn marker(stream: &str, started_at: &str) -> Vec<u8> {
    let mut body = MARKER.to_vec();
    body.extend_from_slice(&0u64.to_be_bytes());
    for text in [stream, started_at] {
        let text = &text.as_bytes()[..text.len().min(1024)];
        body.extend_from_slice(&(text.len() as u16).to_be_bytes());
        body.extend_from_slice(text);
    }
    body
}

/// An open MP4 recording.
pub struct Mp4File {
    path: PathBuf,
    out: BufWriter<File>,
    muxer: Fmp4Muxer,
    len: u64,
    marker: Vec<u8>,
    /// Where the marker's duration is, once written.
    duration_at: Option<u64>,
    last_timestamp: u32,
    last_sync: Instant,
}

impl Mp4File {
    /// Creates `path` (never replacing a file) for a stream with the
    /// given tracks, and gives the muxer the sequence headers.
    pub fn create<'a>(
        path: &Path,
        muxer: Fmp4Muxer,
        marker: Vec<u8>,
        headers: impl Iterator<Item = (PacketKind, &'a Bytes)>,
    ) -> io::Result<Mp4File> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        let mut mp4 = Mp4File {
            path: path.to_owned(),
            out: BufWriter::with_capacity(256 * 1024, file),
            muxer,
            len: 0,
            marker,
            duration_at: None,
            last_timestamp: 0,
            last_sync: Instant::now(),
        };
        for (kind, payload) in headers {
            // Headers give the muxer its configuration; nothing to write.
            mp4.push(kind, 0, false, payload)?;
        }
        Ok(mp4)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Writes what the muxer gave; true if a fragment was among it.
    fn write(&mut self, outputs: Vec<Output>) -> io::Result<bool> {
        let mut fragment = false;
        for output in outputs {
            match output {
                Output::Init(init) => {
                    self.put(&init)?;
                    let size = (8 + self.marker.len()) as u32;
                    self.put(&size.to_be_bytes())?;
                    self.put(b"free")?;
                    self.duration_at = Some(self.len + MARKER.len() as u64);
                    let marker = std::mem::take(&mut self.marker);
                    self.put(&marker)?;
                }
                Output::Fragment(f) => {
                    self.put(&f.header)?;
                    for data in &f.data {
                        self.put(data)?;
                    }
                    fragment = true;
                }
            }
        }
        Ok(fragment)
    }

    /// Takes one tag at `timestamp` (ms into the file); true if a
    /// fragment was written (a keyframe began the next).
    pub fn push(
        &mut self,
        kind: PacketKind,
        timestamp: u32,
        keyframe: bool,
        payload: &Bytes,
    ) -> io::Result<bool> {
        let at = u64::from(timestamp);
        let outputs = match kind {
            PacketKind::Video => self.muxer.push_video(at, keyframe, payload),
            PacketKind::Audio => self.muxer.push_audio(at, payload),
            PacketKind::Data => Vec::new(),
        };
        self.last_timestamp = self.last_timestamp.max(timestamp);
        self.write(outputs)
    }

    /// Writes out what is buffered, and syncs if a second has passed.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.out.get_ref().sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes_written(&self) -> u64 {
        self.len
    }

    pub fn last_timestamp(&self) -> u32 {
        self.last_timestamp
    }

    /// Writes the last fragment, patches the duration, syncs.
    pub fn finish(mut self) -> io::Result<Finished> {
        let outputs = self.muxer.finish();
        self.write(outputs)?;
        self.out.flush()?;
        if let Some(at) = self.duration_at {
            let ms = u64::from(self.last_timestamp);
            self.out.get_ref().write_all_at(&ms.to_be_bytes(), at)?;
        }
        self.out.get_ref().sync_all()?;
        Ok(Finished {
            path: self.path,
            bytes: self.len,
            duration: Duration::from_millis(self.last_timestamp.into()),
        })
    }
}
