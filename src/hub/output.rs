//! An output of a stream as its consumer sees it: its kind and options
//! (queue bounds, slow-subscriber policy, whether it counts as a player),
//! the switches it sets (pause, receiveAudio, receiveVideo) and figures it
//! shares with the stream, and the consuming end of its bounded queue that
//! an RTMP player, recorder, relay or HTTP viewer drains. What goes into
//! the queue is decided on the stream's side (see `slot`). Nothing here
//! knows how an output writes what it takes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::doorbell::Doorbell;
use super::packet::{Packet, PacketKind};
use crate::config::{Config, SlowSubscriberPolicy};
use crate::metrics::{self, Metrics, StreamCounters};

/// What an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    RtmpPlayer,
    Recorder,
    Relay,
    /// A viewer of the stream as HTTP-FLV.
    HttpFlv,
    /// A viewer of the stream as live fragmented MP4.
    HttpMp4,
    /// A `-source` taking one of its inputs' media.
    SourceTap,
}

/// The server-wide counters an output of one kind adds to, beside its
/// own and its stream's: the one place that says which kind counts where.
pub(super) struct KindCounters<'a> {
    /// Media messages and payload bytes written.
    pub sent: Option<(&'a AtomicU64, &'a AtomicU64)>,
    /// Media messages dropped for lagging.
    pub dropped: Option<&'a AtomicU64>,
    /// Times it started skipping to a keyframe.
    pub skips: Option<&'a AtomicU64>,
    /// What it writes counts as the stream's and the server's output
    /// (`bytes_out`, `rtmp_bytes_egress`): not a recorder's.
    pub egress: bool,
}

impl OutputKind {
    /// How a player of this kind plays, as the API shows it.
    pub fn protocol(self) -> Option<&'static str> {
        match self {
            OutputKind::RtmpPlayer => Some("rtmp"),
            OutputKind::HttpFlv => Some("http-flv"),
            OutputKind::HttpMp4 => Some("http-mp4"),
            _ => None,
        }
    }

    pub(super) fn counters(self, m: &Metrics) -> KindCounters<'_> {
        match self {
            OutputKind::RtmpPlayer | OutputKind::HttpFlv | OutputKind::HttpMp4 => KindCounters {
                sent: None,
                dropped: Some(&m.subscriber_drops),
                skips: Some(&m.slow_skips),
                egress: true,
            },
            OutputKind::Relay => KindCounters {
                sent: Some((&m.relay_messages_sent, &m.relay_bytes_sent)),
                dropped: Some(&m.relay_messages_dropped),
                skips: None,
                egress: true,
            },
            // A recorder counts its failures itself; a tap's media is
            // counted where the source sends it on.
            OutputKind::Recorder | OutputKind::SourceTap => KindCounters {
                sent: None,
                dropped: None,
                skips: None,
                egress: false,
            },
        }
    }
}

/// How an output's queue is bounded and what happens when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    pub kind: OutputKind,
    /// Media messages the queue holds at most.
    pub max_messages: usize,
    /// Payload bytes the queue holds at most (a single message larger than
    /// this is still taken when the queue is empty).
    pub max_bytes: usize,
    pub policy: SlowSubscriberPolicy,
    /// Listed and counted as a player (API, metrics, first/last player
    /// events); recorders and relays are not.
    pub counts_as_player: bool,
}

impl OutputOptions {
    /// An RTMP player with the server's queue bounds and policy.
    pub fn rtmp_player(config: &Config) -> OutputOptions {
        OutputOptions::player(OutputKind::RtmpPlayer, config)
    }

    /// A player of `kind` (RTMP or HTTP) with the server's queue bounds
    /// and policy.
    pub fn player(kind: OutputKind, config: &Config) -> OutputOptions {
        OutputOptions {
            kind,
            max_messages: config.queue_max_messages,
            max_bytes: config.queue_max_bytes,
            policy: config.slow_subscriber,
            counts_as_player: true,
        }
    }
}

/// Wakes an output's consumer when the stream drops it (slow-subscriber
/// `disconnect`, or a queue too full even for events): an RTMP player's
/// shuts its socket, so that a writer blocked on it returns. It runs on the
/// input's thread under the stream's lock (sometimes the registry's too):
/// it must not block or touch the hub.
pub type OnDrop = Box<dyn Fn() + Send + Sync>;

/// A new output: who it is, its options, and how to wake it when dropped.
pub struct OutputSpec {
    /// Unique among the server's outputs (an RTMP player's connection id).
    pub id: u64,
    pub remote_addr: Option<SocketAddr>,
    pub options: OutputOptions,
    pub on_drop: Option<OnDrop>,
    /// Rung whenever something is queued, for a consumer that writes at
    /// once instead of at ticks (`-write-coalesce 0`).
    pub doorbell: Option<Arc<Doorbell>>,
}

/// What an output's queue carries.
#[derive(Debug)]
pub enum Outbound {
    Media(Arc<Packet>),
    /// An input started the stream the output waits on.
    PublishStarted,
    /// The stream ended.
    PublishEnded,
}

/// Counters and switches shared by an output's consumer and its stream.
#[derive(Debug)]
pub struct OutputShared {
    pub id: u64,
    pub kind: OutputKind,
    pub remote_addr: Option<SocketAddr>,
    pub connected_at: SystemTime,
    pub(super) metrics: Arc<Metrics>,
    pub(super) counters: Arc<StreamCounters>,
    /// Payload bytes in the queue.
    pub(super) queued_bytes: AtomicUsize,
    /// Timestamp of the last media message the output wrote.
    last_written_timestamp: AtomicU32,
    receive_audio: AtomicBool,
    receive_video: AtomicBool,
    paused: AtomicBool,
    /// Set on unpausing: the whole output resumes at a point a decoder
    /// can start from.
    pub(super) resume_all: AtomicBool,
    /// Set when video is switched back on: video resumes at a keyframe.
    pub(super) resume_video: AtomicBool,
    pub(super) dropped_messages: AtomicU64,
    pub(super) skip_events: AtomicU64,
    bytes_sent: AtomicU64,
    messages_sent: AtomicU64,
}

/// A snapshot of one output's delivery figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputStats {
    pub id: u64,
    pub kind: OutputKind,
    pub remote_addr: Option<SocketAddr>,
    pub connected_at: SystemTime,
    /// Media messages waiting in its queue.
    pub queue_depth: usize,
    /// Timestamp of the last media message written.
    pub last_written_timestamp: u32,
    /// Media bytes waiting in its queue.
    pub queued_bytes: usize,
    pub dropped_messages: u64,
    pub skip_events: u64,
    /// Media payload bytes written.
    pub bytes_sent: u64,
    /// Media messages written.
    pub messages_sent: u64,
}

impl OutputShared {
    pub(super) fn new(
        spec: &OutputSpec,
        metrics: Arc<Metrics>,
        counters: Arc<StreamCounters>,
    ) -> OutputShared {
        OutputShared {
            id: spec.id,
            kind: spec.options.kind,
            remote_addr: spec.remote_addr,
            connected_at: SystemTime::now(),
            metrics,
            counters,
            queued_bytes: AtomicUsize::new(0),
            last_written_timestamp: AtomicU32::new(0),
            receive_audio: AtomicBool::new(true),
            receive_video: AtomicBool::new(true),
            paused: AtomicBool::new(false),
            resume_all: AtomicBool::new(false),
            resume_video: AtomicBool::new(false),
            dropped_messages: AtomicU64::new(0),
            skip_events: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
        }
    }

    /// Pauses or resumes the output; it resumes at the next keyframe.
    pub fn set_paused(&self, paused: bool) {
        let was = self.paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            self.resume_all.store(true, Ordering::Relaxed);
        }
    }

    /// Stops or restarts audio or video (`receiveAudio`, `receiveVideo`);
    /// restarted video waits for the next keyframe, restarted audio gets
    /// its sequence header again if it changed meanwhile. The other kind
    /// is not affected.
    pub fn set_receive(&self, kind: PacketKind, on: bool) {
        let flag = match kind {
            PacketKind::Audio => &self.receive_audio,
            PacketKind::Video => &self.receive_video,
            PacketKind::Data => return,
        };
        let was = flag.swap(on, Ordering::Relaxed);
        if on && !was && kind == PacketKind::Video {
            self.resume_video.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub(super) fn wants(&self, kind: PacketKind) -> bool {
        match kind {
            PacketKind::Audio => self.receive_audio.load(Ordering::Relaxed),
            PacketKind::Video => self.receive_video.load(Ordering::Relaxed),
            PacketKind::Data => true,
        }
    }

    pub fn stats(&self) -> OutputStats {
        OutputStats {
            id: self.id,
            kind: self.kind,
            remote_addr: self.remote_addr,
            connected_at: self.connected_at,
            queue_depth: 0,
            last_written_timestamp: self.last_written_timestamp.load(Ordering::Relaxed),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            dropped_messages: metrics::get(&self.dropped_messages),
            skip_events: metrics::get(&self.skip_events),
            bytes_sent: metrics::get(&self.bytes_sent),
            messages_sent: metrics::get(&self.messages_sent),
        }
    }
}

/// The consuming end of an output's queue.
pub struct OutputQueue {
    pub(super) shared: Arc<OutputShared>,
    pub(super) rx: Receiver<Outbound>,
}

/// The stream let go of the output (slow-subscriber `disconnect`, or
/// unsubscribed): nothing more will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released;

impl fmt::Display for Released {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("released by its stream")
    }
}

impl std::error::Error for Released {}

impl OutputQueue {
    pub fn shared(&self) -> &Arc<OutputShared> {
        &self.shared
    }

    /// The next item, waiting up to `wait`; `Ok(None)` if none came.
    pub fn recv_timeout(&self, wait: Duration) -> Result<Option<Outbound>, Released> {
        match self.rx.recv_timeout(wait) {
            Ok(item) => Ok(Some(item)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Released),
        }
    }

    /// The next item if one is queued.
    pub fn try_recv(&self) -> Result<Option<Outbound>, Released> {
        match self.rx.try_recv() {
            Ok(item) => Ok(Some(item)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Released),
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Takes `bytes` of media the consumer has taken off the queue out of
    /// the queue's byte bound.
    pub fn release_queued(&self, bytes: usize) {
        self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Counts `messages` media messages of `bytes` payload bytes the
    /// output wrote, the last of them at `last_timestamp`.
    pub fn record_sent(&self, messages: usize, bytes: usize, last_timestamp: Option<u32>) {
        let shared = &self.shared;
        metrics::add(&shared.bytes_sent, bytes as u64);
        metrics::add(&shared.messages_sent, messages as u64);
        let counters = shared.kind.counters(&shared.metrics);
        if counters.egress {
            metrics::add(&shared.counters.bytes_out, bytes as u64);
            metrics::add(&shared.metrics.bytes_egress, bytes as u64);
        }
        if let Some((sent_messages, sent_bytes)) = counters.sent {
            metrics::add(sent_messages, messages as u64);
            metrics::add(sent_bytes, bytes as u64);
        }
        if let Some(timestamp) = last_timestamp {
            shared
                .last_written_timestamp
                .store(timestamp, Ordering::Relaxed);
        }
    }
}
