//! One session's recorder, on its own thread: an output of the stream (not
//! a player) whose bounded queue it empties into FLV files. A file starts
//! at a keyframe (an audio frame for a stream without video) with the
//! metadata and sequence headers first, timestamps from 0; it is written
//! out at every keyframe (every second for audio only) and finished when
//! the session ends. A disk error closes the file cleanly and is counted
//! and logged once; after a pause a keyframe starts a new file. Falling
//! behind the queue's bound (the stream then skips this output to a
//! keyframe) closes the file at the gap, and the keyframe after it starts
//! the next.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::RecordingStatus;
use super::sink::{Sink, Tracks};
use super::{name, pattern};
use crate::config::SlowSubscriberPolicy;
use crate::hub::events::Event;
use crate::hub::output::{Outbound, OutputKind, OutputOptions, OutputQueue, OutputSpec};
use crate::hub::packet::{Packet, PacketKind};
use crate::hub::stream::{Stream, Subscription};
use crate::hub::stream_key::{self, StreamKey};
use crate::media::flv_writer::{MetadataFacts, metadata_tag};
use crate::metrics::{self, GaugeGuard};
use crate::server::Shared;

/// The recorder's queue: roomier than a player's, so that a disk pausing
/// for a moment costs nothing.
const QUEUE_MESSAGES: usize = 2048;
const QUEUE_BYTES: usize = 32 * 1024 * 1024;
const POLL: Duration = Duration::from_millis(250);
/// Audio frames kept while waiting for a keyframe, and how far from it
/// they may be stamped to go in the file with it.
const MAX_EARLY_AUDIO: usize = 64;
const EARLY_AUDIO_MS: u32 = 500;
/// A timestamp this far behind the file's is a new timeline (a publisher
/// that restarted its clock): the file continues from where it was.
const BACKWARDS_MS: u32 = 1000;
/// After a disk error, the wait before a new file is tried.
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub(super) struct Recorder {
    shared: Arc<Shared>,
    key: StreamKey,
    stream: Arc<Stream>,
    subscription: Option<Subscription>,
    id: u64,
}

/// The open file of a recorder.
struct Open {
    sink: Sink,
    /// The stream timestamp that is 0 in the file.
    base: u32,
    has_video: bool,
    /// Audio and video frames written (headers aside).
    frames: u64,
    /// A write out to the disk worked: writing works.
    proven: bool,
    _active: GaugeGuard,
}

/// A recorder's state between packets.
struct Writing<'a> {
    recorder: &'a Recorder,
    file: Option<Open>,
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    saw_video: bool,
    /// Audio frames that came while waiting for a keyframe: those stamped
    /// close to it go in the file too.
    early_audio: VecDeque<Arc<Packet>>,
    /// A failure was logged; the next ones are only counted until a file
    /// is written out again.
    failing: bool,
    /// No new file before this (after a disk error).
    retry_at: Option<Instant>,
    /// The number of the next file of the session (from 1).
    segment: u32,
    /// The queue's dropped messages at the last gap (or the first
    /// packet); `None` before the first packet (an output joining mid-GOP
    /// skips to a keyframe, which is not falling behind).
    dropped: Option<u64>,
}

impl Recorder {
    /// Joins `stream` as an output now (the caller's thread takes the
    /// stream's media only after this returns).
    pub(super) fn subscribe(
        shared: Arc<Shared>,
        key: StreamKey,
        stream: Arc<Stream>,
        id: u64,
    ) -> Recorder {
        let spec = OutputSpec {
            id,
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
        let subscription = stream.subscribe(spec);
        Recorder {
            shared,
            key,
            stream,
            subscription: Some(subscription),
            id,
        }
    }

    /// Records until the session ends.
    pub(super) fn run(mut self) {
        let Some(subscription) = self.subscription.take() else {
            return;
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut writing = Writing::new(&self);
            for packet in &subscription.catch_up {
                writing.packet(packet);
            }
            writing.drain(&subscription.queue);
            writing.close(false);
        }));
        if run.is_err() {
            log::error!("recording of {} failed (panic)", self.key);
        }
    }

    /// A file path as logs show it: without the stream name when logs
    /// redact names (it is the secret stream key then).
    fn shown(&self, path: &Path) -> String {
        let shown = path.display().to_string();
        if stream_key::redacting_logs() {
            shown.replace(&pattern::safe_text(self.key.name()), "***")
        } else {
            shown
        }
    }
}

impl Drop for Recorder {
    /// Leaves the stream (and the board) however the recorder ended.
    fn drop(&mut self) {
        self.shared.registry.unsubscribe(&self.stream, self.id);
        self.shared.recorders.remove(self.id);
    }
}

impl<'a> Writing<'a> {
    fn new(recorder: &'a Recorder) -> Writing<'a> {
        Writing {
            recorder,
            file: None,
            metadata: None,
            video_header: None,
            audio_header: None,
            saw_video: false,
            early_audio: VecDeque::new(),
            failing: false,
            retry_at: None,
            segment: 1,
            dropped: None,
        }
    }

    /// Takes packets from the queue until the session ends.
    fn drain(&mut self, queue: &OutputQueue) {
        loop {
            match queue.recv_timeout(POLL) {
                Ok(Some(Outbound::Media(packet))) => {
                    let bytes = packet.payload.len();
                    queue.release_queued(bytes);
                    self.check_gap(queue, &packet);
                    self.packet(&packet);
                    queue.record_sent(1, bytes, Some(packet.timestamp));
                }
                Ok(Some(Outbound::PublishStarted) | None) => {}
                Ok(Some(Outbound::PublishEnded)) | Err(_) => return,
            }
        }
    }

    /// Whether the stream dropped messages of this output since it last
    /// looked: the queue then skips to a packet a file can start at, so
    /// the gap is right before the first such packet. The file so far
    /// ends there, and that packet starts the next.
    fn check_gap(&mut self, queue: &OutputQueue, packet: &Packet) {
        let dropped = queue.shared().stats().dropped_messages;
        let Some(before) = self.dropped else {
            // The first packet: what was skipped to reach it is no gap.
            self.dropped = Some(dropped);
            return;
        };
        if dropped > before && self.starts_a_file(packet) {
            self.dropped = Some(dropped);
            self.failed(
                "fell behind the stream (is the disk too slow?)",
                &io::Error::other(format!("{dropped} messages skipped so far")),
            );
            // Not a disk error: the next file starts at once.
            self.retry_at = None;
        }
    }

    fn packet(&mut self, packet: &Arc<Packet>) {
        if packet.sequence_header && self.changes_configuration(packet) {
            // The next file starts with the new one.
            self.close(false);
        }
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
        if self.segment_due(packet) {
            self.close(false);
        }
        if self.file.is_none() && !self.start(packet) {
            return;
        }
        if let Err(e) = self.write(packet) {
            self.failed("cannot write", &e);
        }
    }

    /// Whether `packet`, a sequence header, differs from the one the open
    /// file (of a format that states it once) started with.
    fn changes_configuration(&self, packet: &Packet) -> bool {
        let fixed = self
            .file
            .as_ref()
            .is_some_and(|o| o.sink.fixed_configuration());
        let current = match packet.kind {
            PacketKind::Video => &self.video_header,
            PacketKind::Audio => &self.audio_header,
            PacketKind::Data => return false,
        };
        fixed
            && current
                .as_ref()
                .is_some_and(|c| c.payload != packet.payload)
    }

    /// Opens a file at `packet` if it can start one; false if there is
    /// none open after.
    fn start(&mut self, packet: &Arc<Packet>) -> bool {
        let waiting = self.retry_at.is_some_and(|at| Instant::now() < at);
        if waiting || !self.starts_a_file(packet) {
            if packet.kind == PacketKind::Audio && !packet.sequence_header {
                if self.early_audio.len() == MAX_EARLY_AUDIO {
                    self.early_audio.pop_front();
                }
                self.early_audio.push_back(Arc::clone(packet));
            }
            return false;
        }
        // The audio of the keyframe's moment goes in the file with it.
        let near = |a: &Arc<Packet>| {
            let apart = a.timestamp.wrapping_sub(packet.timestamp);
            apart <= EARLY_AUDIO_MS || apart.wrapping_neg() <= EARLY_AUDIO_MS
        };
        let early: Vec<Arc<Packet>> = std::mem::take(&mut self.early_audio)
            .into_iter()
            .filter(near)
            .collect();
        let base = early
            .iter()
            .map(|a| a.timestamp)
            .filter(|t| packet.timestamp.wrapping_sub(*t) <= EARLY_AUDIO_MS)
            .fold(packet.timestamp, |base, t| {
                if base.wrapping_sub(t) <= EARLY_AUDIO_MS {
                    t
                } else {
                    base
                }
            });
        if let Err(e) = self.open(base) {
            self.failed("cannot create a file", &e);
            return false;
        }
        for audio in &early {
            if let Err(e) = self.write(audio) {
                self.failed("cannot write", &e);
                return false;
            }
        }
        true
    }

    /// Whether the open file is as long as a segment, and `packet` can
    /// start the next.
    fn segment_due(&self, packet: &Packet) -> bool {
        let Some(length) = self.recorder.shared.config.record.segment else {
            return false;
        };
        self.file.as_ref().is_some_and(|open| {
            let elapsed = packet.timestamp.wrapping_sub(open.base);
            elapsed <= i32::MAX as u32
                && u64::from(elapsed) >= length.as_millis() as u64
                && self.starts_a_file(packet)
        })
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
        if self.saw_video || self.video_header.is_some() {
            return true;
        }
        let media = self.recorder.stream.media();
        media.video_codec.is_some() || media.width.is_some()
    }

    /// Opens a new file (never replacing one) and writes the metadata and
    /// sequence headers; `base` becomes its time 0.
    fn open(&mut self, base: u32) -> io::Result<()> {
        let recorder = self.recorder;
        let media = recorder.stream.media();
        let facts = MetadataFacts {
            width: media.width,
            height: media.height,
            frame_rate: media.fps,
            video: media.video_codec,
            audio: media.audio_codec,
            sample_rate: media.sample_rate,
            channels: media.channels,
            stream: Some(recorder.key.as_path()),
            started_at: Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
        };
        let metadata = metadata_tag(self.metadata.as_ref().map(|p| &p.payload[..]), &facts);
        let has_audio = self.audio_header.is_some() || media.audio_codec.is_some();
        let has_video = self.expects_video();
        let headers = [&self.video_header, &self.audio_header];
        let headers: Vec<&Packet> = headers.into_iter().flatten().map(|p| &**p).collect();
        let settings = &recorder.shared.config.record;
        let container = settings.format.choose(media.video_codec, media.audio_codec);
        let number = self.segment;
        let mut sink = None;
        let names = name::candidates(
            &settings.dir,
            &settings.names,
            &recorder.key,
            number,
            container.extension(),
        );
        for path in names {
            if let Some(parent) = path.parent()
                && settings.names.has_directories()
            {
                std::fs::create_dir_all(parent)?;
            }
            let tracks = Tracks {
                has_audio,
                has_video,
                facts: &facts,
                metadata: &metadata,
                headers: &headers,
            };
            match Sink::create(container, &path, &tracks) {
                Ok(created) => {
                    sink = Some(created);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let sink = sink.ok_or_else(|| io::Error::other("every file name is taken"))?;
        self.segment += 1;
        let shown = recorder.shown(sink.path());
        if !self.failing {
            log::info!("recording {} to {shown}", recorder.key);
        }
        self.file = Some(Open {
            sink,
            base,
            has_video,
            frames: 0,
            proven: false,
            _active: GaugeGuard::raise(&recorder.shared.metrics, |m| &m.recordings_active, None),
        });
        self.show();
        Ok(())
    }

    fn write(&mut self, packet: &Packet) -> io::Result<()> {
        let Some(open) = &mut self.file else {
            return Ok(());
        };
        // Where the packet is in the file, as a signed distance from its
        // start (a little before: audio interleaved ahead of video).
        let relative = i64::from(packet.timestamp.wrapping_sub(open.base) as i32);
        let last = i64::from(open.sink.last_timestamp());
        let timestamp = if relative >= last - i64::from(BACKWARDS_MS) {
            relative.max(0) as u32
        } else {
            // A new timeline: the file continues from where it was.
            open.base = packet.timestamp.wrapping_sub(last as u32);
            last as u32
        };
        let point = open.sink.write(packet, timestamp)?;
        if packet.kind != PacketKind::Data && !packet.sequence_header {
            open.frames += 1;
        }
        let audio_only_due = !open.has_video && open.sink.checkpoint_due();
        if point || audio_only_due {
            open.sink.checkpoint()?;
            if !std::mem::replace(&mut open.proven, true) && std::mem::take(&mut self.failing) {
                let shown = self.recorder.shown(open.sink.path());
                log::info!("recording of {} resumed in {shown}", self.recorder.key);
            }
            self.show();
        }
        Ok(())
    }

    /// Updates the board with the open file's figures.
    fn show(&self) {
        let status = self.file.as_ref().map(|open| RecordingStatus {
            file: open.sink.path().display().to_string(),
            bytes: open.sink.bytes_written(),
            duration: open.sink.duration(),
        });
        self.recorder.shared.recorders.set(self.recorder.id, status);
    }

    /// Counts a failure, logs the first of a run of them, and closes the
    /// file (what it holds is kept); a disk error waits a while before the
    /// next file.
    fn failed(&mut self, what: &str, error: &io::Error) {
        metrics::add(&self.recorder.shared.metrics.recording_errors, 1);
        if !std::mem::replace(&mut self.failing, true) {
            log::warn!(
                "recording of {} {what}: {error}; the file so far is kept, \
                 a new one starts at a keyframe when it can be written",
                self.recorder.key
            );
        }
        self.retry_at = Some(Instant::now() + RETRY_AFTER);
        self.close(true);
    }

    /// Finishes the open file, if any, and tells the event consumers. After
    /// a failure (`quietly`) a file that cannot be finished is not counted
    /// again, and one without a frame is removed.
    fn close(&mut self, quietly: bool) {
        let Some(open) = self.file.take() else {
            return;
        };
        let recorder = self.recorder;
        let shared = &recorder.shared;
        let path = open.sink.path().to_owned();
        let format = open.sink.format();
        let frames = open.frames;
        match open.sink.finish() {
            Ok(done) if done.duration.is_zero() && frames == 0 && quietly => {
                let _ = std::fs::remove_file(&done.path);
            }
            Ok(done) => {
                let file = done.path.display().to_string();
                log::info!(
                    "recorded {} to {}: {} bytes, {:.1} s",
                    recorder.key,
                    recorder.shown(&done.path),
                    done.bytes,
                    done.duration.as_secs_f64()
                );
                shared.events.emit(|| Event::RecordingDone {
                    key: recorder.key.as_path(),
                    file,
                    bytes: done.bytes,
                    duration: done.duration,
                    format,
                });
                shared.recorders.recording_ended();
            }
            Err(_) if quietly => {
                if frames == 0 {
                    let _ = std::fs::remove_file(&path);
                }
            }
            Err(e) => {
                metrics::add(&shared.metrics.recording_errors, 1);
                log::warn!(
                    "recording of {} to {} not finished: {e}",
                    recorder.key,
                    recorder.shown(&path)
                );
            }
        }
        self.show();
    }
}
