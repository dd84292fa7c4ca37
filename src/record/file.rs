//! One FLV recording on disk: the header, `onMetaData` and the sequence
//! headers, then tags, written out at every keyframe, and `duration` and
//! `filesize` patched into the `onMetaData` when it is finished. Whatever
//! happens to the server, the file holds every tag up to the last
//! keyframe written out, complete.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::disk::{DiskFile, Finished};
use crate::media::flv_writer::{self, MetadataTag};
use crate::protocol::message::type_id;

/// An open FLV recording.
pub struct FlvFile {
    disk: DiskFile,
    /// Where the metadata's numbers are in the file.
    duration_at: u64,
    filesize_at: u64,
    /// The timestamp of the last tag, the file's duration in ms.
    last_timestamp: u32,
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
        let mut flv = FlvFile {
            disk: DiskFile::create(path)?,
            duration_at: 0,
            filesize_at: 0,
            last_timestamp: 0,
        };
        match flv.start(has_audio, has_video, metadata, headers) {
            Ok(()) => Ok(flv),
            Err(e) => {
                flv.disk.discard();
                Err(e)
            }
        }
    }

    fn start<'a>(
        &mut self,
        has_audio: bool,
        has_video: bool,
        metadata: &MetadataTag,
        headers: impl Iterator<Item = (u8, &'a [u8])>,
    ) -> io::Result<()> {
        self.disk
            .put(&flv_writer::file_header(has_audio, has_video))?;
        let body_at = self.disk.written() + flv_writer::TAG_HEADER_LEN as u64;
        self.duration_at = body_at + metadata.duration_at as u64;
        self.filesize_at = body_at + metadata.filesize_at as u64;
        self.tag(type_id::DATA_AMF0, 0, &metadata.body)?;
        for (tag_type, body) in headers {
            self.tag(tag_type, 0, body)?;
        }
        // The start of the file is on the disk before any media.
        self.disk.settle()
    }

    /// Appends a tag. A body FLV cannot state the length of is an error.
    pub fn tag(&mut self, tag_type: u8, timestamp: u32, body: &[u8]) -> io::Result<()> {
        let header = flv_writer::tag_header(tag_type, timestamp, body.len())
            .ok_or_else(|| io::Error::other("a message too long for an FLV tag"))?;
        self.disk.put(&header)?;
        self.disk.put(body)?;
        self.disk.put(&flv_writer::tag_trailer(body.len()))?;
        self.last_timestamp = self.last_timestamp.max(timestamp);
        Ok(())
    }

    /// Whether a second has passed since the last checkpoint.
    pub fn checkpoint_due(&self) -> bool {
        self.disk.checkpoint_due()
    }

    /// Writes out what is buffered (at a keyframe), syncing now and then.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.disk.checkpoint()
    }

    /// The timestamp of the latest tag.
    pub fn last_timestamp(&self) -> u32 {
        self.last_timestamp
    }

    pub fn path(&self) -> &Path {
        self.disk.path()
    }

    /// Bytes in the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.disk.written()
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.last_timestamp.into())
    }

    /// Writes out the rest, patches `duration` and `filesize`, and syncs.
    /// On a write error the file keeps what was written out before.
    pub fn finish(self) -> io::Result<Finished> {
        let seconds = flv_writer::number(f64::from(self.last_timestamp) / 1000.0);
        let size = flv_writer::number(self.disk.written() as f64);
        let patches = [
            (self.duration_at, &seconds[..]),
            (self.filesize_at, &size[..]),
        ];
        let duration = self.duration();
        self.disk.finish(&patches, duration)
    }
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
