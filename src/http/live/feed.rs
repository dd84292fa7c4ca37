//! What a live HTTP viewer is sent, sans-IO: a stream's packets turned
//! into the bytes of an FLV stream or of a fragmented MP4 for Media Source
//! Extensions. A viewer starts at a keyframe (at an audio frame when the
//! stream has no video), with the metadata and sequence headers before it;
//! its times start at 0 there. Payloads are passed on as they are, shared
//! with every other output, never copied.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::hub::packet::{Packet, PacketKind};
use crate::media::flv_writer::{file_header, tag_header, tag_trailer};
use crate::media::fmp4_mux::{Fmp4Muxer, Output, carries_audio, carries_video};

use super::super::route::LiveFormat;

/// Audio frames kept while waiting for the start.
const MAX_EARLY_AUDIO: usize = 16;
/// How far ahead of the starting keyframe its audio may be.
const EARLY_AUDIO_MS: u32 = 200;

/// What a viewer's start needs to know of the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamFacts {
    pub has_video: bool,
    pub has_audio: bool,
    pub width: u16,
    pub height: u16,
}

/// The latest metadata and sequence headers.
#[derive(Default)]
struct Headers {
    metadata: Option<Arc<Packet>>,
    video: Option<Arc<Packet>>,
    audio: Option<Arc<Packet>>,
}

impl Headers {
    fn slot(&mut self, kind: PacketKind) -> &mut Option<Arc<Packet>> {
        match kind {
            PacketKind::Data => &mut self.metadata,
            PacketKind::Video => &mut self.video,
            PacketKind::Audio => &mut self.audio,
        }
    }

    fn codec_headers(&self) -> impl Iterator<Item = &Arc<Packet>> {
        [&self.video, &self.audio].into_iter().flatten()
    }
}

enum Container {
    Flv,
    /// The muxer, once started.
    Mp4(Option<Box<Fmp4Muxer>>),
}

/// One viewer's stream of bytes.
pub struct LiveFeed {
    container: Container,
    headers: Headers,
    /// The stream time that is the viewer's 0, once started.
    base: Option<u32>,
    facts: StreamFacts,
    /// The content type, once known (an MP4's names its codecs).
    content_type: Option<String>,
    /// Nothing of the stream can be carried (MP4 of other codecs).
    unplayable: bool,
    /// Audio that came before the start: what is at the start's time
    /// goes out with it.
    early_audio: VecDeque<Arc<Packet>>,
}

impl LiveFeed {
    pub fn new(format: LiveFormat) -> LiveFeed {
        LiveFeed {
            container: match format {
                LiveFormat::Flv => Container::Flv,
                LiveFormat::Mp4 => Container::Mp4(None),
            },
            headers: Headers::default(),
            base: None,
            facts: StreamFacts::default(),
            content_type: None,
            unplayable: false,
            early_audio: VecDeque::new(),
        }
    }

    /// Whether none of the stream's tracks can be sent in this format.
    pub fn is_unplayable(&self) -> bool {
        self.unplayable
    }

    /// The `Content-Type` of the response, once the first bytes are
    /// known.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Takes one packet of the stream; `facts` is asked at the start.
    /// Returns the bytes to send, in order (often none).
    pub fn push(
        &mut self,
        packet: &Arc<Packet>,
        facts: impl FnOnce() -> StreamFacts,
    ) -> Vec<Bytes> {
        let mut out = Vec::new();
        if packet.sequence_header {
            let changed = self
                .headers
                .slot(packet.kind)
                .as_ref()
                .is_none_or(|h| h.payload != packet.payload);
            *self.headers.slot(packet.kind) = Some(Arc::clone(packet));
            if self.base.is_some() && changed {
                self.header_changed(packet, &mut out);
            }
            return out;
        }
        if self.base.is_some() {
            self.write_at_base(packet, &mut out);
        } else if self.start_at(packet, facts, &mut out).is_some() {
            let early = std::mem::take(&mut self.early_audio);
            // FLV in time order; the MP4 muxer starts at the keyframe,
            // and takes each track's samples from its own start.
            if let Container::Mp4(_) = self.container {
                self.write_at_base(packet, &mut out);
            }
            for audio in &early {
                self.write_at_base(audio, &mut out);
            }
            if let Container::Flv = self.container {
                self.write_at_base(packet, &mut out);
            }
        } else if packet.kind == PacketKind::Audio {
            if self.early_audio.len() == MAX_EARLY_AUDIO {
                self.early_audio.pop_front();
            }
            self.early_audio.push_back(Arc::clone(packet));
        }
        out
    }

    /// Writes `packet` at its time from the start; one from before the
    /// start (audio sent ahead of the keyframe) is left out.
    fn write_at_base(&mut self, packet: &Packet, out: &mut Vec<Bytes>) {
        let Some(base) = self.base else {
            return;
        };
        let at = packet.timestamp.wrapping_sub(base);
        if at <= i32::MAX as u32 {
            self.write(packet, at, out);
        }
    }

    /// Ends a fragment with what is complete (MP4), so that the viewer
    /// sees each frame as it comes rather than a GOP at a time.
    pub fn flush(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Container::Mp4(Some(muxer)) = &mut self.container {
            let outputs = muxer.flush();
            self.mp4_bytes(outputs, &mut out);
        }
        out
    }

    /// Starts the viewer at `packet` if it can start there: the base is
    /// its time, and the beginning goes out.
    fn start_at(
        &mut self,
        packet: &Packet,
        facts: impl FnOnce() -> StreamFacts,
        out: &mut Vec<Bytes>,
    ) -> Option<u32> {
        let mut facts = facts();
        facts.has_video |= self.headers.video.is_some();
        facts.has_audio |= self.headers.audio.is_some();
        if let Container::Mp4(_) = self.container {
            // Only the tracks the muxer can carry, configured now.
            let header = |h: &Option<Arc<Packet>>| h.as_ref().map(|p| p.payload.clone());
            let video = header(&self.headers.video).is_some_and(|h| carries_video(&h));
            let audio = header(&self.headers.audio).is_some_and(|h| carries_audio(&h));
            if !video && !audio {
                if facts.has_video || facts.has_audio {
                    self.unplayable = true;
                }
                return None;
            }
            // The start waits for video only if it can be shown.
            facts.has_video = video;
            facts.has_audio = audio;
        }
        let starts = match packet.kind {
            PacketKind::Video => packet.keyframe,
            PacketKind::Audio => !facts.has_video,
            PacketKind::Data => false,
        };
        if !starts {
            return None;
        }
        // The audio of the keyframe's moment (sent a little ahead of it)
        // is in too: the start is at the earliest of it.
        let ahead = |a: &Arc<Packet>| packet.timestamp.wrapping_sub(a.timestamp);
        let earliest = self
            .early_audio
            .iter()
            .map(ahead)
            .filter(|d| *d <= EARLY_AUDIO_MS)
            .max()
            .unwrap_or(0);
        self.base = Some(packet.timestamp.wrapping_sub(earliest));
        self.facts = facts;
        match self.container {
            Container::Flv => {
                self.content_type = Some("video/x-flv".into());
                out.push(Bytes::copy_from_slice(&file_header(
                    facts.has_audio,
                    facts.has_video,
                )));
                let headers: Vec<Arc<Packet>> = self
                    .headers
                    .metadata
                    .iter()
                    .chain(self.headers.codec_headers())
                    .cloned()
                    .collect();
                for header in &headers {
                    flv_tag(header, 0, out);
                }
            }
            Container::Mp4(_) => self.new_muxer(),
        }
        self.base
    }

    /// A new muxer, configured by the current headers (its init segment
    /// comes with the next keyframe).
    fn new_muxer(&mut self) {
        let facts = self.facts;
        let mut muxer = Fmp4Muxer::new(facts.has_video, facts.has_audio, facts.width, facts.height);
        for header in self.headers.codec_headers() {
            match header.kind {
                PacketKind::Video => muxer.push_video(0, false, &header.payload),
                _ => muxer.push_audio(0, &header.payload),
            };
        }
        self.container = Container::Mp4(Some(Box::new(muxer)));
    }

    /// A sequence header changed after the start: FLV passes it on; MP4
    /// ends its fragments and begins anew, with a new init segment at the
    /// next keyframe (Media Source Extensions take one mid-stream).
    fn header_changed(&mut self, packet: &Packet, out: &mut Vec<Bytes>) {
        match &mut self.container {
            Container::Flv => {
                if let Some(base) = self.base {
                    flv_tag(
                        packet,
                        packet.timestamp.wrapping_sub(base).min(i32::MAX as u32),
                        out,
                    );
                }
            }
            Container::Mp4(muxer) => {
                if packet.kind == PacketKind::Data {
                    return;
                }
                if let Some(mut old) = muxer.take() {
                    let outputs = old.finish();
                    self.mp4_bytes(outputs, out);
                }
                self.new_muxer();
            }
        }
    }

    fn write(&mut self, packet: &Packet, at: u32, out: &mut Vec<Bytes>) {
        match &mut self.container {
            Container::Flv => flv_tag(packet, at, out),
            Container::Mp4(Some(muxer)) => {
                let at = u64::from(at);
                let outputs = match packet.kind {
                    PacketKind::Video => muxer.push_video(at, packet.keyframe, &packet.payload),
                    PacketKind::Audio => muxer.push_audio(at, &packet.payload),
                    PacketKind::Data => Vec::new(),
                };
                self.mp4_bytes(outputs, out);
            }
            Container::Mp4(None) => {}
        }
    }

    fn mp4_bytes(&mut self, outputs: Vec<Output>, out: &mut Vec<Bytes>) {
        for output in outputs {
            match output {
                Output::Init(init) => {
                    if self.content_type.is_none()
                        && let Container::Mp4(Some(muxer)) = &self.container
                    {
                        let kind = if self.facts.has_video {
                            "video"
                        } else {
                            "audio"
                        };
                        let codecs = muxer.codecs().join(",");
                        self.content_type = Some(format!("{kind}/mp4; codecs=\"{codecs}\""));
                    }
                    out.push(Bytes::from(init));
                }
                Output::Fragment(fragment) => {
                    out.push(Bytes::from(fragment.header));
                    out.extend(fragment.data);
                }
            }
        }
    }
}

/// One FLV tag: header, the shared payload, trailer. A payload FLV
/// cannot carry (over 16 MiB) is left out.
fn flv_tag(packet: &Packet, at: u32, out: &mut Vec<Bytes>) {
    let len = packet.payload.len();
    if let Some(header) = tag_header(packet.kind.type_id(), at, len) {
        out.push(Bytes::copy_from_slice(&header));
        out.push(packet.payload.clone());
        out.push(Bytes::copy_from_slice(&tag_trailer(len)));
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
