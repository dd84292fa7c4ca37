//! An output of a stream: a bounded queue the stream pushes into without
//! ever blocking, the output's kind and options, the slow-subscriber policy
//! applied when the queue is full, and the consuming end that an RTMP
//! player, recorder, relay or HTTP viewer drains. Nothing here knows how an
//! output writes what it takes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::packet::{Packet, PacketKind};
use crate::config::{Config, SlowSubscriberPolicy};
use crate::metrics::{self, Metrics, StreamCounters};

/// Queue slots kept free of media for stream events, so that a full queue
/// can still be told the input left.
const EVENT_RESERVE: usize = 8;

/// What an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    RtmpPlayer,
    Recorder,
    Relay,
    HttpViewer,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::RtmpPlayer => "rtmp_player",
            OutputKind::Recorder => "recorder",
            OutputKind::Relay => "relay",
            OutputKind::HttpViewer => "http_viewer",
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
        OutputOptions {
            kind: OutputKind::RtmpPlayer,
            max_messages: config.queue_max_messages,
            max_bytes: config.queue_max_bytes,
            policy: config.slow_subscriber,
            counts_as_player: true,
        }
    }
}

/// Wakes an output's consumer when the stream drops it (slow-subscriber
/// `disconnect`, or a queue too full even for events): an RTMP player's
/// shuts its socket, so that a writer blocked on it returns.
pub type OnDrop = Box<dyn Fn() + Send + Sync>;

/// A new output: who it is, its options, and how to wake it when dropped.
pub struct OutputSpec {
    /// Unique among the server's outputs (an RTMP player's connection id).
    pub id: u64,
    pub remote_addr: Option<SocketAddr>,
    pub options: OutputOptions,
    pub on_drop: Option<OnDrop>,
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
    metrics: Arc<Metrics>,
    counters: Arc<StreamCounters>,
    /// Payload bytes in the queue.
    queued_bytes: AtomicUsize,
    /// Timestamp of the last media message the output wrote.
    last_written_timestamp: AtomicU32,
    receive_audio: AtomicBool,
    receive_video: AtomicBool,
    paused: AtomicBool,
    /// Set on resuming: skip to the next keyframe.
    wants_keyframe: AtomicBool,
    dropped_messages: AtomicU64,
    skip_events: AtomicU64,
    bytes_sent: AtomicU64,
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
}

impl OutputShared {
    /// Pauses or resumes the output; it resumes at the next keyframe.
    pub fn set_paused(&self, paused: bool) {
        let was = self.paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            self.wants_keyframe.store(true, Ordering::Relaxed);
        }
    }

    /// Stops or restarts audio or video (`receiveAudio`, `receiveVideo`);
    /// restarting waits for the next keyframe.
    pub fn set_receive(&self, kind: PacketKind, on: bool) {
        let flag = match kind {
            PacketKind::Audio => &self.receive_audio,
            PacketKind::Video => &self.receive_video,
            PacketKind::Data => return,
        };
        let was = flag.swap(on, Ordering::Relaxed);
        if on && !was {
            self.wants_keyframe.store(true, Ordering::Relaxed);
        }
    }

    fn wants(&self, kind: PacketKind) -> bool {
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
        }
    }
}

/// What became of a packet offered to an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not wanted (paused, receiveAudio/receiveVideo false).
    Filtered,
    Dropped,
    /// The slow-subscriber policy says drop this output.
    Disconnect,
}

/// The stream state a slot needs to decide where an output may resume.
pub struct ResumeContext<'a> {
    /// Audio frames are sync points when the stream has no video.
    pub audio_only: bool,
    /// Current metadata and sequence headers, resent after a gap.
    pub headers: &'a [Arc<Packet>],
}

/// The stream's side of one output: touched only under the stream's lock.
pub struct OutputSlot {
    shared: Arc<OutputShared>,
    tx: Sender<Outbound>,
    options: OutputOptions,
    on_drop: Option<OnDrop>,
    /// Dropping media until the next point a decoder can resume from.
    skipping: bool,
    /// A sequence header or metadata was not delivered (dropped or
    /// filtered): resend the current ones before resuming.
    missed_headers: bool,
}

/// The consuming end of an output's queue.
pub struct OutputQueue {
    shared: Arc<OutputShared>,
    rx: Receiver<Outbound>,
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

impl OutputSlot {
    /// Creates an output's queue; `wait_for_keyframe` makes it start at
    /// the next keyframe (when no GOP cache let it start earlier).
    pub fn new(
        spec: OutputSpec,
        metrics: Arc<Metrics>,
        counters: Arc<StreamCounters>,
        wait_for_keyframe: bool,
    ) -> (OutputSlot, OutputQueue) {
        let shared = Arc::new(OutputShared {
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
            wants_keyframe: AtomicBool::new(false),
            dropped_messages: AtomicU64::new(0),
            skip_events: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        });
        let (tx, rx) = crossbeam_channel::bounded(spec.options.max_messages + EVENT_RESERVE);
        let slot = OutputSlot {
            shared: Arc::clone(&shared),
            tx,
            options: spec.options,
            on_drop: spec.on_drop,
            skipping: wait_for_keyframe,
            missed_headers: false,
        };
        (slot, OutputQueue { shared, rx })
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn options(&self) -> &OutputOptions {
        &self.options
    }

    /// A snapshot of this output's figures, queue depth included.
    pub fn stats(&self) -> OutputStats {
        OutputStats {
            queue_depth: self.tx.len(),
            ..self.shared.stats()
        }
    }

    fn has_room(&self, messages: usize, bytes: usize) -> bool {
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        self.tx.len() + messages <= self.options.max_messages
            && (queued == 0 || queued + bytes <= self.options.max_bytes)
    }

    fn enqueue(&self, packet: &Arc<Packet>) {
        self.shared
            .queued_bytes
            .fetch_add(packet.payload.len(), Ordering::Relaxed);
        // Room was checked: the queue cannot be full of media here, and the
        // only sender is the stream, under its lock.
        let _ = self.tx.try_send(Outbound::Media(Arc::clone(packet)));
    }

    fn drop_packet(&mut self, packet: &Packet) -> Offer {
        if packet.sequence_header {
            self.missed_headers = true;
        }
        let shared = &self.shared;
        metrics::add(&shared.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_bytes, packet.payload.len() as u64);
        metrics::add(&shared.metrics.subscriber_drops, 1);
        Offer::Dropped
    }

    /// Offers a live packet without ever blocking.
    pub fn offer(&mut self, packet: &Arc<Packet>, ctx: &ResumeContext<'_>) -> Offer {
        let shared = &self.shared;
        if !shared.wants(packet.kind) || shared.paused.load(Ordering::Relaxed) {
            if packet.sequence_header {
                // Deliver the current headers before the output's next
                // frame once it resumes.
                self.missed_headers = true;
            }
            return Offer::Filtered;
        }
        // Read before writing: the flag is almost never set, and a write
        // would bounce its cache line between stream and consumer.
        if shared.wants_keyframe.load(Ordering::Relaxed)
            && shared.wants_keyframe.swap(false, Ordering::Relaxed)
        {
            self.skipping = true;
        }
        if self.skipping {
            return self.resume_at(packet, ctx);
        }
        if !self.has_room(1, packet.payload.len()) {
            return match self.options.policy {
                SlowSubscriberPolicy::Disconnect => Offer::Disconnect,
                SlowSubscriberPolicy::Skip => {
                    self.skipping = true;
                    metrics::add(&self.shared.skip_events, 1);
                    metrics::add(&self.shared.counters.skip_events, 1);
                    metrics::add(&self.shared.metrics.slow_skips, 1);
                    self.drop_packet(packet)
                }
            };
        }
        self.enqueue(packet);
        Offer::Queued
    }

    /// While skipping: drops everything up to a point a decoder can start
    /// from, then queues the headers it missed (those it wants) and that
    /// packet, if they fit.
    fn resume_at(&mut self, packet: &Arc<Packet>, ctx: &ResumeContext<'_>) -> Offer {
        let sync_point = packet.keyframe
            || (ctx.audio_only && packet.kind == PacketKind::Audio && !packet.sequence_header);
        if !sync_point {
            return self.drop_packet(packet);
        }
        let shared = &self.shared;
        let resend = ctx
            .headers
            .iter()
            .filter(|h| self.missed_headers && shared.wants(h.kind));
        let (count, bytes) = resend.clone().fold((1, packet.payload.len()), |(n, b), h| {
            (n + 1, b + h.payload.len())
        });
        if !self.has_room(count, bytes) {
            return self.drop_packet(packet);
        }
        for header in resend {
            self.enqueue(header);
        }
        self.skipping = false;
        self.missed_headers = false;
        self.enqueue(packet);
        Offer::Queued
    }

    /// Queues a stream event; false if even the reserve is full.
    pub fn notify(&mut self, event: Outbound) -> bool {
        if matches!(event, Outbound::PublishEnded | Outbound::PublishStarted) {
            // A new input's stream starts with its own headers and
            // keyframe: nothing from the old one needs resending.
            self.missed_headers = false;
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Wakes the output's consumer after the stream dropped it.
    pub fn wake_dropped(&self) {
        if let Some(on_drop) = &self.on_drop {
            on_drop();
        }
    }
}

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

    /// Counts media payload bytes the output wrote, the last of them at
    /// `last_timestamp`.
    pub fn record_sent(&self, bytes: usize, last_timestamp: Option<u32>) {
        let shared = &self.shared;
        metrics::add(&shared.bytes_sent, bytes as u64);
        metrics::add(&shared.counters.bytes_out, bytes as u64);
        metrics::add(&shared.metrics.bytes_egress, bytes as u64);
        if let Some(timestamp) = last_timestamp {
            shared
                .last_written_timestamp
                .store(timestamp, Ordering::Relaxed);
        }
    }
}
