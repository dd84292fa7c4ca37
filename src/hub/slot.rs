//! The stream's side of one output: what to queue, drop or resend, under
//! the stream's lock and without ever blocking. A full queue applies the
//! output's slow-subscriber policy: skip to the next point a decoder can
//! start from (a keyframe; an audio frame when the output gets no video),
//! or disconnect. A sequence header or metadata the output did not get
//! (dropped, or filtered while paused or while that kind was switched
//! off) is resent, the current one, just before the output's next frame of
//! that kind. Video switched back on resumes at a keyframe without
//! disturbing audio; unpausing resumes everything at a keyframe.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Sender, TrySendError};

use super::doorbell::Doorbell;
use super::output::{
    OnDrop, Outbound, OutputOptions, OutputQueue, OutputShared, OutputSpec, OutputStats,
};
use super::packet::{Packet, PacketKind};
use crate::config::SlowSubscriberPolicy;
use crate::metrics::{self, Metrics, StreamCounters};

/// Queue slots kept free of media for stream events, so that a full queue
/// can still be told the input left.
const EVENT_RESERVE: usize = 8;

/// What became of a packet offered to an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not wanted (paused, receiveAudio/receiveVideo false, video waiting
    /// for a keyframe after being switched back on).
    Filtered,
    Dropped,
    /// Drop this output: its policy says so, or its consumer is gone.
    Disconnect,
}

/// The stream's current state that a slot needs: what may start a decoder,
/// and the headers to resend.
pub struct ResumeContext<'a> {
    /// Audio frames are sync points when the stream has no video.
    pub audio_only: bool,
    pub metadata: Option<&'a Arc<Packet>>,
    pub video_header: Option<&'a Arc<Packet>>,
    pub audio_header: Option<&'a Arc<Packet>>,
}

/// Headers an output has not received in their current version.
#[derive(Debug, Default, Clone, Copy)]
struct Missed {
    metadata: bool,
    video: bool,
    audio: bool,
}

impl Missed {
    fn mark(&mut self, packet: &Packet) {
        match packet.kind {
            PacketKind::Data => self.metadata = true,
            PacketKind::Video => self.video = true,
            PacketKind::Audio => self.audio = true,
        }
    }
}

pub struct OutputSlot {
    shared: Arc<OutputShared>,
    tx: Sender<Outbound>,
    options: OutputOptions,
    on_drop: Option<OnDrop>,
    doorbell: Option<Arc<Doorbell>>,
    /// Dropping everything until a point a decoder can start from.
    skipping: bool,
    /// Video alone waits for a keyframe (switched back on).
    video_waits: bool,
    missed: Missed,
}

impl OutputSlot {
    /// Creates an output's queue; `wait_for_keyframe` makes it start at
    /// the next keyframe (when no GOP cache let it start earlier).
    pub fn new(
        spec: OutputSpec,
        metrics: Arc<Metrics>,
        counters: Arc<StreamCounters>,
        wait_for_keyframe: bool,
    ) -> (OutputSlot, OutputQueue) {
        let shared = Arc::new(OutputShared::new(&spec, metrics, counters));
        // Bounded here, by `has_room` and `notify`: a bounded channel would
        // allocate every slot up front (3 KiB a player), a list channel
        // allocates blocks as it fills.
        let (tx, rx) = crossbeam_channel::unbounded();
        let slot = OutputSlot {
            shared: Arc::clone(&shared),
            tx,
            options: spec.options,
            on_drop: spec.on_drop,
            doorbell: spec.doorbell,
            skipping: wait_for_keyframe,
            video_waits: false,
            missed: Missed::default(),
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

    /// Offers a live packet without ever blocking.
    pub fn offer(&mut self, packet: &Arc<Packet>, ctx: &ResumeContext<'_>) -> Offer {
        let shared = &self.shared;
        if !shared.wants(packet.kind) || shared.is_paused() {
            if packet.sequence_header {
                self.missed.mark(packet);
            }
            return Offer::Filtered;
        }
        // Read before writing: the flags are almost never set, and a write
        // would bounce their cache line between stream and consumer.
        if shared.resume_all.load(Ordering::Relaxed)
            && shared.resume_all.swap(false, Ordering::Relaxed)
        {
            self.skipping = true;
        }
        if shared.resume_video.load(Ordering::Relaxed)
            && shared.resume_video.swap(false, Ordering::Relaxed)
        {
            self.video_waits = true;
        }
        if self.skipping {
            let sync_point = packet.keyframe
                || (packet.kind == PacketKind::Audio
                    && !packet.sequence_header
                    && (ctx.audio_only || !shared.wants(PacketKind::Video)));
            if !sync_point {
                return self.drop_packet(packet);
            }
            return match self.deliver(packet, ctx) {
                Offer::Queued => {
                    self.skipping = false;
                    self.video_waits = false;
                    Offer::Queued
                }
                Offer::Dropped => self.drop_packet(packet),
                offer => offer,
            };
        }
        if packet.kind == PacketKind::Video && self.video_waits {
            if !packet.keyframe {
                if packet.sequence_header {
                    self.missed.mark(packet);
                }
                return Offer::Filtered;
            }
            self.video_waits = false;
        }
        match self.deliver(packet, ctx) {
            Offer::Dropped => match self.options.policy {
                SlowSubscriberPolicy::Disconnect => Offer::Disconnect,
                SlowSubscriberPolicy::Skip => {
                    self.skipping = true;
                    metrics::add(&self.shared.skip_events, 1);
                    metrics::add(&self.shared.counters.skip_events, 1);
                    if let Some(skips) = self.options.kind.counters(&self.shared.metrics).skips {
                        metrics::add(skips, 1);
                    }
                    self.drop_packet(packet)
                }
            },
            offer => offer,
        }
    }

    /// Queues `packet`, after the headers it needs that the output missed,
    /// if they all fit; `Dropped` (nothing queued) if they do not.
    fn deliver(&mut self, packet: &Arc<Packet>, ctx: &ResumeContext<'_>) -> Offer {
        let own_header = match packet.kind {
            PacketKind::Video => (self.missed.video, ctx.video_header),
            PacketKind::Audio => (self.missed.audio, ctx.audio_header),
            PacketKind::Data => (false, None),
        };
        let metadata = ctx.metadata.filter(|_| self.missed.metadata);
        let header = own_header
            .1
            .filter(|_| own_header.0 && !packet.sequence_header);
        let resend = [metadata, header];
        let resend = resend.iter().flatten();
        let (count, bytes) = resend.clone().fold((1, packet.payload.len()), |(n, b), h| {
            (n + 1, b + h.payload.len())
        });
        if !self.has_room(count, bytes) {
            return Offer::Dropped;
        }
        for extra in resend {
            if !self.enqueue(extra) {
                return Offer::Disconnect;
            }
        }
        if !self.enqueue(packet) {
            return Offer::Disconnect;
        }
        self.missed.metadata = false;
        match packet.kind {
            PacketKind::Video => self.missed.video = false,
            PacketKind::Audio => self.missed.audio = false,
            PacketKind::Data => {}
        }
        Offer::Queued
    }

    fn has_room(&self, messages: usize, bytes: usize) -> bool {
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        self.tx.len() + messages <= self.options.max_messages
            && (queued == 0 || queued + bytes <= self.options.max_bytes)
    }

    /// Queues one packet; false if the consumer is gone.
    fn enqueue(&self, packet: &Arc<Packet>) -> bool {
        // Room was checked: the queue cannot be full of media here, and the
        // only sender is the stream, under its lock.
        match self.tx.try_send(Outbound::Media(Arc::clone(packet))) {
            Ok(()) => {
                self.shared
                    .queued_bytes
                    .fetch_add(packet.payload.len(), Ordering::Relaxed);
                self.ring();
                true
            }
            Err(_) => false,
        }
    }

    fn ring(&self) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.ring();
        }
    }

    fn drop_packet(&mut self, packet: &Packet) -> Offer {
        if packet.sequence_header {
            self.missed.mark(packet);
        }
        let shared = &self.shared;
        metrics::add(&shared.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_bytes, packet.payload.len() as u64);
        if let Some(dropped) = self.options.kind.counters(&shared.metrics).dropped {
            metrics::add(dropped, 1);
        }
        Offer::Dropped
    }

    /// Queues a stream event; false if even the reserve is full or the
    /// consumer is gone.
    pub fn notify(&mut self, event: Outbound) -> bool {
        if matches!(event, Outbound::PublishEnded | Outbound::PublishStarted) {
            // A new input's stream starts with its own headers and
            // keyframe: nothing from the old one needs resending.
            self.missed = Missed::default();
        }
        if self.tx.len() >= self.options.max_messages + EVENT_RESERVE {
            return false;
        }
        match self.tx.try_send(event) {
            Ok(()) => {
                self.ring();
                true
            }
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
