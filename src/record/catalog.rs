//! The finished recordings of this server under the record directory:
//! FLV files whose `onMetaData` says `metadatacreator: rtmp-server`, and
//! MP4 files with this server's `free` box after their `moov`, with what
//! those tell (stream, start, duration). Retention deletes
//! from this list; `GET /api/recordings` shows it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::media::flv_writer::{self, CREATOR};
use crate::protocol::amf0::{self, Value};
use crate::protocol::message::type_id;

/// Directory levels looked into (patterns make subdirectories).
const MAX_DEPTH: usize = 8;
/// Directory entries looked at per scan at most.
const MAX_ENTRIES: usize = 100_000;
/// Longest `onMetaData` read.
const MAX_METADATA: usize = 64 * 1024;

/// One finished recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub path: PathBuf,
    pub modified: SystemTime,
    pub bytes: u64,
    /// `app/name`, as the file's metadata says.
    pub stream: Option<String>,
    /// When it started (RFC 3339), as the file's metadata says.
    pub started_at: Option<String>,
    /// Seconds, as patched into the metadata when the file was finished.
    pub duration: f64,
    /// `flv` or `mp4`.
    pub format: &'static str,
}

/// What the marker box of one of our MP4 files says: duration (s),
/// stream, start.
fn our_mp4(path: &Path) -> Option<(f64, Option<String>, Option<String>)> {
    let mut head = Vec::new();
    File::open(path)
        .ok()?
        .take(MAX_METADATA as u64)
        .read_to_end(&mut head)
        .ok()?;
    let mut at = 0usize;
    while let Some(header) = head.get(at..at + 8) {
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if size < 8 {
            return None;
        }
        if &header[4..8] == b"free" {
            let body = head.get(at + 8..at + size)?;
            let rest = body.strip_prefix(super::mp4_file::MARKER)?;
            let duration = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
            let mut texts = rest.get(8..)?;
            let mut read = || -> Option<String> {
                let len = u16::from_be_bytes([*texts.first()?, *texts.get(1)?]) as usize;
                let text = texts.get(2..2 + len)?;
                texts = texts.get(2 + len..)?;
                Some(String::from_utf8_lossy(text).into_owned())
            };
            let stream = read();
            let started = read();
            return Some((duration as f64 / 1000.0, stream, started));
        }
        at += size;
    }
    None
}

/// The `onMetaData` properties of `path` if this server wrote it.
fn our_metadata(path: &Path) -> Option<Vec<(String, Value)>> {
    let mut file = File::open(path).ok()?;
    let mut head = [0u8; flv_writer::FILE_HEADER_LEN + flv_writer::TAG_HEADER_LEN];
    file.read_exact(&mut head).ok()?;
    if &head[..3] != b"FLV" {
        return None;
    }
    let tag = &head[flv_writer::FILE_HEADER_LEN..];
    if tag[0] != type_id::DATA_AMF0 {
        return None;
    }
    let len = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]) as usize;
    if len > MAX_METADATA {
        return None;
    }
    let mut body = vec![0; len];
    file.read_exact(&mut body).ok()?;
    let values = amf0::decode_all(&body).ok()?;
    let Some(Value::EcmaArray(props)) = values.into_iter().nth(1) else {
        return None;
    };
    let ours = props
        .iter()
        .any(|(n, v)| n == "metadatacreator" && *v == Value::String(CREATOR.into()));
    ours.then_some(props)
}

/// This server's recordings under `dir` for which `keep` is true (given
/// the path and when it last changed), oldest first.
pub fn scan(dir: &Path, keep: impl Fn(&Path, SystemTime) -> bool) -> Vec<Recorded> {
    let mut found = Vec::new();
    let mut dirs = vec![(dir.to_owned(), 0)];
    let mut seen = 0;
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                break;
            }
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if !meta.is_file() || !matches!(extension, "flv" | "mp4") || !keep(&path, modified) {
                continue;
            }
            if extension == "mp4" {
                if let Some((duration, stream, started_at)) = our_mp4(&path) {
                    found.push(Recorded {
                        modified,
                        bytes: meta.len(),
                        stream,
                        started_at,
                        duration,
                        format: "mp4",
                        path,
                    });
                }
                continue;
            }
            let Some(props) = our_metadata(&path) else {
                continue;
            };
            let get = |name: &str| props.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let text = |name: &str| match get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            found.push(Recorded {
                modified,
                bytes: meta.len(),
                stream: text("recordedstream"),
                started_at: text("recordedat"),
                duration: match get("duration") {
                    Some(Value::Number(d)) => *d,
                    _ => 0.0,
                },
                format: "flv",
                path,
            });
        }
    }
    found.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::flv_writer::{
        MetadataFacts, file_header, metadata_tag, tag_header, tag_trailer,
    };

    #[test]
    fn only_this_server_s_files_are_listed_with_their_metadata() {
        let dir = std::env::temp_dir().join(format!("rtmp-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("2026")).unwrap();
        let facts = MetadataFacts {
            stream: Some("live/cam".into()),
            started_at: Some("2026-11-23T18:00:00Z".into()),
            ..MetadataFacts::default()
        };
        let mut meta = metadata_tag(None, &facts);
        meta.body[meta.duration_at..meta.duration_at + 8]
            .copy_from_slice(&flv_writer::number(12.5));
        let mut bytes = file_header(true, true).to_vec();
        bytes.extend_from_slice(&tag_header(18, 0, meta.body.len()).unwrap());
        bytes.extend_from_slice(&meta.body);
        bytes.extend_from_slice(&tag_trailer(meta.body.len()));
        std::fs::write(dir.join("2026/ours.flv"), &bytes).unwrap();
        std::fs::write(dir.join("other.flv"), file_header(true, true)).unwrap();
        std::fs::write(dir.join("ours.txt"), &bytes).unwrap();
        let found = scan(&dir, |_, _| true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, dir.join("2026/ours.flv"));
        assert_eq!(found[0].stream.as_deref(), Some("live/cam"));
        assert_eq!(found[0].started_at.as_deref(), Some("2026-11-23T18:00:00Z"));
        assert_eq!(found[0].duration, 12.5);
        assert_eq!(found[0].bytes, bytes.len() as u64);
        assert!(scan(&dir, |_, _| false).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
