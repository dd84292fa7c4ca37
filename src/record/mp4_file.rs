//! One fragmented-MP4 recording on disk: the muxer's init segment, then a
//! `free` box marking the file as this server's (with the stream, the
//! start and a duration patched at the end), then a fragment per GOP,
//! each written out as it is cut. Every fragment is complete on its own,
//! so whatever happens to the server the file plays up to the last one.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::disk::{DiskFile, Finished};
use crate::hub::packet::PacketKind;
use crate::media::fmp4_mux::{Fmp4Muxer, Output};

/// What the marker box starts with.
pub const MARKER: &[u8] = b"rtmp-server\0";

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
    disk: DiskFile,
    muxer: Fmp4Muxer,
    marker: Vec<u8>,
    /// Where the marker's duration is, once written.
    duration_at: Option<u64>,
    last_timestamp: u32,
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
        let mut mp4 = Mp4File {
            disk: DiskFile::create(path)?,
            muxer,
            marker,
            duration_at: None,
            last_timestamp: 0,
        };
        for (kind, payload) in headers {
            // Headers give the muxer its configuration; nothing to write.
            if let Err(e) = mp4.push(kind, 0, false, payload) {
                mp4.disk.discard();
                return Err(e);
            }
        }
        Ok(mp4)
    }

    /// Writes what the muxer gave; true if a fragment was among it.
    fn write(&mut self, outputs: Vec<Output>) -> io::Result<bool> {
        let mut fragment = false;
        for output in outputs {
            match output {
                Output::Init(init) => {
                    self.disk.put(&init)?;
                    let size = (8 + self.marker.len()) as u32;
                    self.disk.put(&size.to_be_bytes())?;
                    self.disk.put(b"free")?;
                    self.duration_at = Some(self.disk.written() + MARKER.len() as u64);
                    let marker = std::mem::take(&mut self.marker);
                    self.disk.put(&marker)?;
                    self.disk.settle()?;
                }
                Output::Fragment(f) => {
                    self.disk.put(&f.header)?;
                    for data in &f.data {
                        self.disk.put(data)?;
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

    /// Writes out what is buffered, syncing now and then.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.disk.checkpoint()
    }

    pub fn path(&self) -> &Path {
        self.disk.path()
    }

    pub fn bytes_written(&self) -> u64 {
        self.disk.written()
    }

    pub fn last_timestamp(&self) -> u32 {
        self.last_timestamp
    }

    /// Writes the last fragment, patches the duration, syncs. A file the
    /// muxer never started (no track could be configured) is removed.
    pub fn finish(mut self) -> io::Result<Finished> {
        let outputs = self.muxer.finish();
        self.write(outputs)?;
        if self.duration_at.is_none() {
            self.disk.discard();
            return Err(io::Error::other(
                "nothing could be muxed (no codec configuration)",
            ));
        }
        let ms = u64::from(self.last_timestamp).to_be_bytes();
        let patches: Vec<(u64, &[u8])> = self
            .duration_at
            .map(|at| (at, &ms[..]))
            .into_iter()
            .collect();
        let duration = Duration::from_millis(self.last_timestamp.into());
        self.disk.finish(&patches, duration)
    }
}
