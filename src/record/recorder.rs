//! One stream's recorder, on its own thread: an output of the stream (not
//! a player) whose bounded queue it empties into an FLV file. A file
//! starts at a keyframe (an audio frame for a stream without video) with
//! the metadata and sequence headers first, timestamps from 0; it is
//! written out at every keyframe and finished when the session ends. A
//! disk error, or falling behind the queue's bound (the stream then skips
//! this output to a keyframe), closes the file cleanly, is counted and
//! logged once, and the next keyframe starts a new file.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::RecordingStatus;
use super::file::FlvFile;
use super::name;
use crate::config::SlowSubscriberPolicy;
use crate::hub::events::Event;
use crate::hub::output::{Outbound, OutputKind, OutputOptions, OutputQueue, OutputSpec};
use crate::hub::packet::{Packet, PacketKind};
use crate::hub::stream::Stream;
use crate::hub::stream_key::StreamKey;
use crate::media::flv_writer::{MetadataFacts, metadata_tag, tag_type};
use crate::metrics::{self, GaugeGuard};
use crate::server::Shared;

/// The recorder's queue: roomier than a player's, so that a disk pausing
/// for a moment costs nothing.
const QUEUE_MESSAGES: usize = 2048;
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
const POLL: Duration = Duration::from_millis(250);
/// Audio frames kept while waiting for a keyframe, and how far before it
/// they may be to go in the file.
const MAX_EARLY_AUDIO: usize = 32;
const EARLY_AUDIO_MS: u32 = 500;

pub(super) struct Recorder {
    shared: Arc<Shared>,
    key: StreamKey,
    output_id: u64,
}

/// The open file of a recorder.
struct Open {
    flv: FlvFile,
    /// The stream timestamp that is 0 in the file.
    base: u32,
    _active: GaugeGuard,
}

/// A recorder's state between packets.
struct Writing<'a> {
    recorder: &'a Recorder,
    stream: &'a Stream,
    file: Option<Open>,
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    saw_video: bool,
    /// Audio frames that came while waiting for the first keyframe: those
    /// just before it go in the file too.
    early_audio: VecDeque<Arc<Packet>>,
    /// A failure was logged; the next ones are only counted.
    failing: bool,
    /// The queue's dropped messages when last looked at.
    dropped: u64,
}

impl Recorder {
    pub(super) fn new(shared: Arc<Shared>, key: StreamKey, output_id: u64) -> Recorder {
        Recorder {
            shared,
            key,
            output_id,
        }
    }

    /// Records until the session ends; the board forgets it after.
    pub(super) fn run(self) {
        let path = self.key.as_path();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.record()));
        if run.is_err() {
            log::error!("recording of {} failed (panic)", self.key);
            if let Some(stream) = self.shared.registry.get(&path) {
                self.shared.registry.unsubscribe(&stream, self.output_id);
            }
        }
        self.shared.recorders.remove(&path);
    }

    fn record(&self) {
        let spec = OutputSpec {
            id: self.output_id,
            remote_addr: None,
            options: OutputOptions {
                kind: OutputKind::Recorder,
                max_messages: QUEUE_MESSAGES,
                max_bytes: QUEUE_BYTES,
                policy: SlowSubscriberPolicy::Skip,
                counts_as_player: false,
            },
            on_drop: None,
            doorbell: None,
        };
        let registry = &self.shared.registry;
        let (stream, subscription) = registry.subscribe(&self.key, spec);
        if stream.is_live() {
            let mut writing = Writing::new(self, &stream);
            for packet in &subscription.catch_up {
                writing.packet(packet);
            }
            writing.drain(&subscription.queue);
            writing.close();
        }
        registry.unsubscribe(&stream, self.output_id);
    }
}

impl<'a> Writing<'a> {
    fn new(recorder: &'a Recorder, stream: &'a Stream) -> Writing<'a> {
        Writing {
            recorder,
            stream,
            file: None,
            metadata: None,
            video_header: None,
            audio_header: None,
            saw_video: false,
            early_audio: VecDeque::new(),
            failing: false,
            dropped: 0,
        }
    }

    /// Takes packets from the queue until the session ends.
    fn drain(&mut self, queue: &OutputQueue) {
        loop {
            match queue.recv_timeout(POLL) {
                Ok(Some(Outbound::Media(packet))) => {
                    let bytes = packet.payload.len();
                    queue.release_queued(bytes);
                    self.check_lag(queue);
                    self.packet(&packet);
                    queue.record_sent(1, bytes, Some(packet.timestamp));
                }
                Ok(Some(Outbound::PublishStarted) | None) => {}
                Ok(Some(Outbound::PublishEnded)) | Err(_) => return,
            }
        }
    }

    /// A queue that dropped messages means the recorder fell behind: the
    /// file so far is closed, and the next keyframe (which the stream
    /// resumes this output at) starts another.
    fn check_lag(&mut self, queue: &OutputQueue) {
        let dropped = queue.shared().stats().dropped_messages;
        if dropped > self.dropped {
            self.dropped = dropped;
            self.failed(
                "fell behind the stream (is the disk too slow?)",
                io::Error::other(format!("{dropped} messages skipped so far")),
            );
        }
    }

    fn packet(&mut self, packet: &Arc<Packet>) {
        match packet.kind {
            PacketKind::Data if packet.sequence_header => self.metadata = Some(Arc::clone(packet)),
            PacketKind::Video if packet.sequence_header => {
                self.video_header = Some(Arc::clone(packet))
            }
            PacketKind::Audio if packet.sequence_header => {
                self.audio_header = Some(Arc::clone(packet))
            }
            _ => {}
        }
        self.saw_video |= packet.kind == PacketKind::Video;
        if self.file.is_none() {
            if !self.starts_a_file(packet) {
                if packet.kind == PacketKind::Audio && !packet.sequence_header {
                    if self.early_audio.len() == MAX_EARLY_AUDIO {
                        self.early_audio.pop_front();
                    }
                    self.early_audio.push_back(Arc::clone(packet));
                }
                return;
            }
            // The audio of the keyframe's moment, stamped just before it,
            // starts the file with it.
            let early: Vec<Arc<Packet>> = std::mem::take(&mut self.early_audio)
                .into_iter()
                .filter(|a| packet.timestamp.wrapping_sub(a.timestamp) <= EARLY_AUDIO_MS)
                .collect();
            let base = early.first().map_or(packet.timestamp, |a| a.timestamp);
            if let Err(e) = self.open(base) {
                self.failed("cannot create a file", e);
                return;
            }
            for audio in &early {
                if let Err(e) = self.write(audio) {
                    self.failed("cannot write", e);
                    return;
                }
            }
        }
        if let Err(e) = self.write(packet) {
            self.failed("cannot write", e);
        }
    }

    /// A file starts at a keyframe, or at an audio frame of a stream
    /// without video.
    fn starts_a_file(&self, packet: &Packet) -> bool {
        if packet.sequence_header {
            return false;
        }
        match packet.kind {
            PacketKind::Video => packet.keyframe,
            PacketKind::Audio => !self.expects_video(),
            PacketKind::Data => false,
        }
    }

    fn expects_video(&self) -> bool {
        let media = self.stream.media();
        self.saw_video
            || self.video_header.is_some()
            || media.video_codec.is_some()
            || media.width.is_some()
    }

    /// Opens a new file (never replacing one) and writes the metadata and
    /// sequence headers; `base` becomes its time 0.
    fn open(&mut self, base: u32) -> io::Result<()> {
        let settings = &self.recorder.shared.config.record;
        let media = self.stream.media();
        let facts = MetadataFacts {
            width: media.width,
            height: media.height,
            frame_rate: media.fps,
            video: media.video_codec,
            audio: media.audio_codec,
            sample_rate: media.sample_rate,
            channels: media.channels,
        };
        let metadata = metadata_tag(self.metadata.as_ref().map(|p| &p.payload[..]), &facts);
        let has_audio = self.audio_header.is_some() || media.audio_codec.is_some();
        let has_video = self.expects_video();
        let stamp = name::local_stamp();
        let mut created = None;
        for path in name::candidates(&settings.dir, &self.recorder.key, &stamp, "flv") {
            match FlvFile::create(&path, has_audio, has_video, &metadata) {
                Ok(flv) => {
                    created = Some(flv);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    // What could be created is ours and useless: remove it.
                    if path.exists() && e.kind() != io::ErrorKind::AlreadyExists {
                        let _ = std::fs::remove_file(&path);
                    }
                    return Err(e);
                }
            }
        }
        let mut flv = created.ok_or_else(|| io::Error::other("every file name is taken"))?;
        for header in [&self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
        {
            if let Err(e) = flv.tag(tag_of(header.kind), 0, &header.payload) {
                let _ = std::fs::remove_file(flv.path());
                return Err(e);
            }
        }
        let shown = flv.path().display().to_string();
        if std::mem::take(&mut self.failing) {
            log::info!("recording of {} resumed in {shown}", self.recorder.key);
        } else {
            log::info!("recording {} to {shown}", self.recorder.key);
        }
        self.file = Some(Open {
            flv,
            base,
            _active: GaugeGuard::raise(
                &self.recorder.shared.metrics,
                |m| &m.recordings_active,
                None,
            ),
        });
        self.show();
        Ok(())
    }

    fn write(&mut self, packet: &Packet) -> io::Result<()> {
        let Some(open) = &mut self.file else {
            return Ok(());
        };
        // Anything stamped before the file's start (audio a little ahead
        // of the first keyframe) is at 0.
        let timestamp = match packet.timestamp.wrapping_sub(open.base) {
            t if t > i32::MAX as u32 => 0,
            t => t,
        };
        open.flv
            .tag(tag_of(packet.kind), timestamp, &packet.payload)?;
        if packet.keyframe {
            open.flv.checkpoint()?;
            self.show();
        }
        Ok(())
    }

    /// Updates the board with the open file's figures.
    fn show(&self) {
        let status = self.file.as_ref().map(|open| RecordingStatus {
            file: open.flv.path().display().to_string(),
            bytes: open.flv.bytes_written(),
            duration: open.flv.duration(),
        });
        let path = self.recorder.key.as_path();
        self.recorder.shared.recorders.set(&path, status);
    }

    /// Counts a failure, logs the first of a run of them, and closes the
    /// file cleanly; the next keyframe starts another.
    fn failed(&mut self, what: &str, error: io::Error) {
        metrics::add(&self.recorder.shared.metrics.recording_errors, 1);
        if !std::mem::replace(&mut self.failing, true) {
            log::warn!(
                "recording of {} {what}: {error}; the file so far is kept, \
                 a new one starts at the next keyframe",
                self.recorder.key
            );
        }
        self.close();
    }

    /// Finishes the open file, if any, and tells the event consumers.
    fn close(&mut self) {
        let Some(open) = self.file.take() else {
            return;
        };
        let shared = &self.recorder.shared;
        match open.flv.finish() {
            Ok(done) => {
                let file = done.path.display().to_string();
                log::info!(
                    "recorded {} to {file}: {} bytes, {:.1} s",
                    self.recorder.key,
                    done.bytes,
                    done.duration.as_secs_f64()
                );
                shared.events.emit(|| Event::RecordingDone {
                    key: self.recorder.key.as_path(),
                    file,
                    bytes: done.bytes,
                    duration: done.duration,
                });
            }
            Err(e) => {
                metrics::add(&shared.metrics.recording_errors, 1);
                log::warn!("recording of {} not finished: {e}", self.recorder.key);
            }
        }
        self.show();
    }
}

fn tag_of(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Audio => tag_type::AUDIO,
        PacketKind::Video => tag_type::VIDEO,
        PacketKind::Data => tag_type::SCRIPT,
    }
}
