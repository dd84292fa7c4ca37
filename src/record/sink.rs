//! Where a recorder writes: an FLV file or a fragmented-MP4 file, chosen
//! per file by `-record-format` and the stream's codecs (`auto`: FLV for
//! the legacy codecs, MP4 for Enhanced RTMP ones it can carry).

use std::io;
use std::path::Path;
use std::time::Duration;

use super::disk::Finished;
use super::file::FlvFile;
use super::mp4_file::{self, Mp4File};
use crate::hub::packet::Packet;
use crate::media::codec::Codec;
use crate::media::flv_writer::{MetadataFacts, MetadataTag};
use crate::media::fmp4_mux::Fmp4Muxer;

/// `-record-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordFormat {
    /// FLV for legacy codecs, fragmented MP4 for Enhanced RTMP ones.
    #[default]
    Auto,
    Flv,
    Mp4,
}

/// The container of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Flv,
    Mp4,
}

impl Container {
    pub fn extension(self) -> &'static str {
        match self {
            Container::Flv => "flv",
            Container::Mp4 => "mp4",
        }
    }
}

/// Whether the MP4 muxer carries these codecs (H.264, H.265, AV1, VP9,
/// AAC, Opus).
fn mp4_carries(video: Option<Codec>, audio: Option<Codec>) -> bool {
    let video_ok = video.is_none_or(|c| {
        matches!(
            c.fourcc().as_ref(),
            Some(b"avc1" | b"hvc1" | b"av01" | b"vp09")
        )
    });
    let audio_ok = audio.is_none_or(|c| matches!(c.fourcc().as_ref(), Some(b"mp4a" | b"Opus")));
    video_ok && audio_ok
}

impl RecordFormat {
    /// The container for a file of a stream with these codecs: MP4 only
    /// where the muxer carries them (else FLV, which carries anything).
    pub fn choose(self, video: Option<Codec>, audio: Option<Codec>) -> Container {
        let enhanced = [video, audio]
            .into_iter()
            .flatten()
            .any(|c| matches!(c, Codec::FourCc(_)) || c == Codec::LegacyVideo(12));
        let wanted = match self {
            RecordFormat::Flv => Container::Flv,
            RecordFormat::Mp4 => Container::Mp4,
            RecordFormat::Auto if enhanced => Container::Mp4,
            RecordFormat::Auto => Container::Flv,
        };
        match wanted {
            Container::Mp4 if mp4_carries(video, audio) => Container::Mp4,
            _ => Container::Flv,
        }
    }
}

/// What a new file starts with.
pub struct Tracks<'a> {
    pub has_audio: bool,
    pub has_video: bool,
    /// The stream's facts (sizes, the stream, the start).
    pub facts: &'a MetadataFacts,
    /// The `onMetaData` of an FLV file.
    pub metadata: &'a MetadataTag,
    /// The sequence headers.
    pub headers: &'a [&'a Packet],
}

/// An open recording file of either kind.
pub enum Sink {
    Flv(FlvFile),
    Mp4(Box<Mp4File>),
}

impl Sink {
    /// Creates `path` (never replacing a file) as `container`, starting
    /// with the metadata and sequence headers.
    pub fn create(container: Container, path: &Path, tracks: &Tracks<'_>) -> io::Result<Sink> {
        let headers = tracks.headers;
        match container {
            Container::Flv => {
                let tags = headers.iter().map(|h| (h.kind.type_id(), &h.payload[..]));
                FlvFile::create(
                    path,
                    tracks.has_audio,
                    tracks.has_video,
                    tracks.metadata,
                    tags,
                )
                .map(Sink::Flv)
            }
            Container::Mp4 => {
                let facts = tracks.facts;
                let size = |v: Option<f64>| v.map_or(0, |v| v.clamp(0.0, 65_535.0) as u16);
                let muxer = Fmp4Muxer::new(
                    tracks.has_video,
                    tracks.has_audio,
                    size(facts.width),
                    size(facts.height),
                );
                let marker = mp4_file::marker(
                    facts.stream.as_deref().unwrap_or_default(),
                    facts.started_at.as_deref().unwrap_or_default(),
                );
                let tags = headers.iter().map(|h| (h.kind, &h.payload));
                Mp4File::create(path, muxer, marker, tags).map(|f| Sink::Mp4(Box::new(f)))
            }
        }
    }

    /// Writes `packet` at `timestamp` (ms into the file); true at a point
    /// to write out at (a keyframe, a fragment).
    pub fn write(&mut self, packet: &Packet, timestamp: u32) -> io::Result<bool> {
        match self {
            Sink::Flv(flv) => {
                flv.tag(packet.kind.type_id(), timestamp, &packet.payload)?;
                Ok(packet.keyframe)
            }
            Sink::Mp4(mp4) => mp4.push(packet.kind, timestamp, packet.keyframe, &packet.payload),
        }
    }

    /// Whether a stream without keyframes should be written out now.
    pub fn checkpoint_due(&self) -> bool {
        match self {
            Sink::Flv(flv) => flv.checkpoint_due(),
            // The muxer cuts such a stream every second (a video stream
            // without keyframes every 10 s).
            Sink::Mp4(_) => false,
        }
    }

    pub fn checkpoint(&mut self) -> io::Result<()> {
        match self {
            Sink::Flv(flv) => flv.checkpoint(),
            Sink::Mp4(mp4) => mp4.checkpoint(),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Sink::Flv(flv) => flv.path(),
            Sink::Mp4(mp4) => mp4.path(),
        }
    }

    pub fn bytes_written(&self) -> u64 {
        match self {
            Sink::Flv(flv) => flv.bytes_written(),
            Sink::Mp4(mp4) => mp4.bytes_written(),
        }
    }

    pub fn last_timestamp(&self) -> u32 {
        match self {
            Sink::Flv(flv) => flv.last_timestamp(),
            Sink::Mp4(mp4) => mp4.last_timestamp(),
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.last_timestamp().into())
    }

    /// Whether a new sequence header needs a new file: MP4 states its
    /// codec configuration once, in its `moov`.
    pub fn fixed_configuration(&self) -> bool {
        matches!(self, Sink::Mp4(_))
    }

    pub fn format(&self) -> &'static str {
        match self {
            Sink::Flv(_) => "flv",
            Sink::Mp4(_) => "mp4",
        }
    }

    pub fn finish(self) -> io::Result<Finished> {
        match self {
            Sink::Flv(flv) => flv.finish(),
            Sink::Mp4(mp4) => (*mp4).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_keeps_legacy_codecs_in_flv_and_enhanced_ones_in_mp4_when_it_can() {
        let avc = Some(Codec::LegacyVideo(7));
        let aac = Some(Codec::LegacyAudio(10));
        let hevc = Some(Codec::FourCc(*b"hvc1"));
        let av1 = Some(Codec::FourCc(*b"av01"));
        let opus = Some(Codec::FourCc(*b"Opus"));
        let auto = RecordFormat::Auto;
        assert_eq!(auto.choose(avc, aac), Container::Flv);
        assert_eq!(auto.choose(hevc, aac), Container::Mp4);
        assert_eq!(
            auto.choose(Some(Codec::LegacyVideo(12)), aac),
            Container::Mp4
        );
        assert_eq!(auto.choose(av1, opus), Container::Mp4);
        let vp8 = Some(Codec::FourCc(*b"vp08"));
        assert_eq!(auto.choose(vp8, opus), Container::Flv, "not carried");
        assert_eq!(RecordFormat::Mp4.choose(avc, aac), Container::Mp4);
        assert_eq!(RecordFormat::Mp4.choose(None, aac), Container::Mp4);
        assert_eq!(
            RecordFormat::Mp4.choose(avc, Some(Codec::LegacyAudio(2))),
            Container::Flv
        );
        assert_eq!(RecordFormat::Flv.choose(hevc, aac), Container::Flv);
    }
}
