//! A player's subscription: the bounded queue the publisher pushes into
//! without ever blocking, the slow-subscriber policy applied when it is
//! full, and the draining of that queue to the player's socket by the
//! player's own connection thread (its one writer thread).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::packet::{Packet, PacketKind, csid};
use crate::config::SlowSubscriberPolicy;
use crate::metrics::{self, Metrics, StreamCounters};
use crate::protocol::amf0::Value;
use crate::protocol::command::{self, Level, status};
use crate::protocol::message::{Message, UserControl};
use crate::rtmp::writer::{ConnWriter, Frame};

/// Queue slots kept free of media for stream events, so that a full queue
/// can still be told the publisher left.
const EVENT_RESERVE: usize = 8;
/// Most queued items written in one batch (one vectored write).
const MAX_BATCH: usize = 128;

/// What a player's queue carries.
pub enum Outbound {
    Media(Arc<Packet>),
    /// A publisher started on the stream the player waits on.
    PublishStarted,
    /// The publisher left.
    PublishEnded,
}

/// Counters and switches shared by the player's threads and the stream.
#[derive(Debug)]
pub struct SubscriberShared {
    /// The player's connection id.
    pub id: u64,
    pub remote_addr: SocketAddr,
    pub connected_at: SystemTime,
    metrics: Arc<Metrics>,
    counters: Arc<StreamCounters>,
    queued_bytes: AtomicUsize,
    /// Timestamp of the last media message written to the socket.
    last_written_timestamp: AtomicU32,
    pub receive_audio: AtomicBool,
    pub receive_video: AtomicBool,
    pub paused: AtomicBool,
    /// Set on unpause: skip to the next keyframe.
    pub wants_keyframe: AtomicBool,
    pub dropped_messages: AtomicU64,
    pub skip_events: AtomicU64,
    pub bytes_sent: AtomicU64,
}

impl SubscriberShared {
    pub fn new(
        id: u64,
        remote_addr: SocketAddr,
        metrics: Arc<Metrics>,
        counters: Arc<StreamCounters>,
    ) -> Self {
        SubscriberShared {
            id,
            remote_addr,
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
        }
    }
}

impl SubscriberShared {
    fn record_sent(&self, bytes: usize, last_timestamp: Option<u32>) {
        metrics::add(&self.bytes_sent, bytes as u64);
        metrics::add(&self.counters.bytes_out, bytes as u64);
        metrics::add(&self.metrics.bytes_egress, bytes as u64);
        if let Some(timestamp) = last_timestamp {
            self.last_written_timestamp
                .store(timestamp, Ordering::Relaxed);
        }
    }
}

/// A snapshot of one player's delivery figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberStats {
    pub id: u64,
    pub remote_addr: SocketAddr,
    pub connected_at: SystemTime,
    /// Media messages waiting in its queue.
    pub queue_depth: usize,
    /// Timestamp of the last media message written to it.
    pub last_written_timestamp: u32,
    /// Media bytes waiting in its queue.
    pub queued_bytes: usize,
    pub dropped_messages: u64,
    pub skip_events: u64,
    /// Media payload bytes written to its socket.
    pub bytes_sent: u64,
}

impl SubscriberShared {
    pub fn stats(&self) -> SubscriberStats {
        SubscriberStats {
            id: self.id,
            remote_addr: self.remote_addr,
            connected_at: self.connected_at,
            queue_depth: 0,
            last_written_timestamp: self.last_written_timestamp.load(Ordering::Relaxed),
            queued_bytes: self.queued_bytes.load(Ordering::Relaxed),
            dropped_messages: self.dropped_messages.load(Ordering::Relaxed),
            skip_events: self.skip_events.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
        }
    }
}

/// The publisher's side of one player: owned by the stream, touched only
/// under the stream's lock.
pub struct SubscriberSlot {
    pub shared: Arc<SubscriberShared>,
    tx: Sender<Outbound>,
    conn: Arc<ConnWriter>,
    max_messages: usize,
    max_bytes: usize,
    /// Dropping media until the next point a decoder can resume from.
    skipping: bool,
    /// A sequence header or metadata was dropped while skipping: resend
    /// the current ones before resuming.
    missed_headers: bool,
}

/// What became of a packet offered to a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Not wanted (paused, receiveAudio/receiveVideo false).
    Filtered,
    Dropped,
    /// The slow-subscriber policy says close this player.
    Disconnect,
}

/// The stream state a slot needs to decide where a player may resume.
pub struct ResumeContext<'a> {
    /// Audio frames are sync points when the stream has no video.
    pub audio_only: bool,
    /// Current metadata and sequence headers, resent after a skip.
    pub headers: &'a [Arc<Packet>],
    pub policy: SlowSubscriberPolicy,
}

impl SubscriberSlot {
    /// Creates a player's queue; `wait_for_keyframe` makes it start at the
    /// next keyframe (when no GOP cache let it start earlier).
    pub fn new(
        shared: Arc<SubscriberShared>,
        conn: Arc<ConnWriter>,
        max_messages: usize,
        max_bytes: usize,
        wait_for_keyframe: bool,
    ) -> (SubscriberSlot, Receiver<Outbound>) {
        let (tx, rx) = crossbeam_channel::bounded(max_messages + EVENT_RESERVE);
        let slot = SubscriberSlot {
            shared,
            tx,
            conn,
            max_messages,
            max_bytes,
            skipping: wait_for_keyframe,
            missed_headers: false,
        };
        (slot, rx)
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    fn has_room(&self, bytes: usize) -> bool {
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        self.tx.len() < self.max_messages && (queued == 0 || queued + bytes <= self.max_bytes)
    }

    fn enqueue(&self, packet: &Arc<Packet>) {
        self.shared
            .queued_bytes
            .fetch_add(packet.payload.len(), Ordering::Relaxed);
        // Room was checked: the queue cannot be full of media here, and the
        // only other sender is the publisher thread holding the same lock.
        let _ = self.tx.try_send(Outbound::Media(Arc::clone(packet)));
    }

    fn drop_packet(&mut self, packet: &Packet) -> Offer {
        if packet.sequence_header || packet.kind == PacketKind::Data {
            self.missed_headers = true;
        }
        let shared = &self.shared;
        metrics::add(&shared.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_messages, 1);
        metrics::add(&shared.counters.dropped_bytes, packet.payload.len() as u64);
        metrics::add(&shared.metrics.subscriber_drops, 1);
        Offer::Dropped
    }

    /// A snapshot of this player's figures, queue depth included.
    pub fn stats(&self) -> SubscriberStats {
        SubscriberStats {
            queue_depth: self.tx.len(),
            ..self.shared.stats()
        }
    }

    /// Offers a live packet without ever blocking.
    pub fn offer(&mut self, packet: &Arc<Packet>, ctx: &ResumeContext<'_>) -> Offer {
        let shared = &self.shared;
        let wanted = match packet.kind {
            PacketKind::Audio => shared.receive_audio.load(Ordering::Relaxed),
            PacketKind::Video => shared.receive_video.load(Ordering::Relaxed),
            PacketKind::Data => true,
        };
        if !wanted || shared.paused.load(Ordering::Relaxed) {
            return Offer::Filtered;
        }
        // Read before writing: the flag is almost never set, and a write
        // would bounce its cache line between publisher and player.
        if shared.wants_keyframe.load(Ordering::Relaxed)
            && shared.wants_keyframe.swap(false, Ordering::Relaxed)
        {
            self.skipping = true;
        }
        if self.skipping {
            let sync_point = packet.keyframe
                || (ctx.audio_only && packet.kind == PacketKind::Audio && !packet.sequence_header);
            if !sync_point {
                return self.drop_packet(packet);
            }
            let resend: &[Arc<Packet>] = if self.missed_headers {
                ctx.headers
            } else {
                &[]
            };
            let needed: usize =
                resend.iter().map(|p| p.payload.len()).sum::<usize>() + packet.payload.len();
            if !self.has_room(needed) || self.tx.len() + resend.len() >= self.max_messages {
                return self.drop_packet(packet);
            }
            for header in resend {
                self.enqueue(header);
            }
            self.skipping = false;
            self.missed_headers = false;
            self.enqueue(packet);
            return Offer::Queued;
        }
        if !self.has_room(packet.payload.len()) {
            return match ctx.policy {
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

    /// Queues a stream event; false if even the reserve is full.
    pub fn notify(&mut self, event: Outbound) -> bool {
        if matches!(event, Outbound::PublishEnded | Outbound::PublishStarted) {
            // A new publisher's stream starts with its own headers and
            // keyframe: nothing from the old one needs resending.
            self.missed_headers = false;
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Closes the player's connection (slow-subscriber `disconnect`).
    pub fn disconnect(&self) {
        self.conn.shutdown();
    }
}

/// Common origin of every writer's ticks.
static TICK_EPOCH: OnceLock<Instant> = OnceLock::new();

/// Time from `now` to the next multiple of `period` since a process-wide
/// epoch. Writers that sleep to the same ticks wake together: the CPU
/// runs them back to back and idles once, instead of waking from idle for
/// each (costly on virtual machines), with the same bound on delay.
fn until_next_tick(now: Instant, period: Duration) -> Duration {
    let epoch = *TICK_EPOCH.get_or_init(|| now);
    let period_ns = period.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let left = period_ns - since % period_ns;
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// The receiving end of a player's queue, drained by the player's own
/// connection thread: it waits for media, lets a little more gather when
/// told to (fewer wake-ups and system calls per message), and writes
/// everything queued with one vectored write.
pub struct PlayerQueue {
    shared: Arc<SubscriberShared>,
    rx: Receiver<Outbound>,
    batch: Vec<Outbound>,
}

/// What one wait on a player's queue came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Something was written (or the wait timed out with nothing to do).
    Written,
    /// The stream let go of this player (slow-subscriber `disconnect`).
    Released,
}

impl PlayerQueue {
    fn take_queued(&mut self) {
        while self.batch.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(item) => self.batch.push(item),
                Err(_) => break,
            }
        }
    }

    pub fn new(shared: Arc<SubscriberShared>, rx: Receiver<Outbound>) -> Self {
        PlayerQueue {
            shared,
            rx,
            batch: Vec::new(),
        }
    }

    pub fn shared(&self) -> &Arc<SubscriberShared> {
        &self.shared
    }

    /// Writes the catch-up packets (metadata, headers, cached GOP).
    pub fn write_catch_up(
        &self,
        catch_up: &[Arc<Packet>],
        conn: &ConnWriter,
        stream_id: u32,
    ) -> io::Result<()> {
        let bytes: usize = catch_up.iter().map(|p| p.payload.len()).sum();
        conn.write_frames(catch_up.iter().map(|p| Frame::Packet(p)), stream_id)?;
        self.shared
            .record_sent(bytes, catch_up.last().map(|p| p.timestamp));
        Ok(())
    }

    /// Writes what is queued. With `coalesce` zero it waits up to `wait`
    /// for the first item and writes at once. Otherwise it first sleeps
    /// `coalesce` so that media gathers without the publisher having to
    /// wake this thread for each message, and only blocks (up to `wait`)
    /// when nothing came meanwhile.
    pub fn drain(
        &mut self,
        conn: &ConnWriter,
        stream_id: u32,
        wait: Duration,
        coalesce: Duration,
    ) -> io::Result<Drained> {
        if !coalesce.is_zero() {
            thread::sleep(until_next_tick(Instant::now(), coalesce));
            self.take_queued();
        }
        if self.batch.is_empty() {
            match self.rx.recv_timeout(wait) {
                Ok(first) => self.batch.push(first),
                Err(RecvTimeoutError::Timeout) => return Ok(Drained::Written),
                Err(RecvTimeoutError::Disconnected) => return Ok(Drained::Released),
            }
            self.take_queued();
        }
        let mut media_bytes = 0;
        let mut last_timestamp = None;
        for item in &self.batch {
            if let Outbound::Media(packet) = item {
                media_bytes += packet.payload.len();
                last_timestamp = Some(packet.timestamp);
            }
        }
        let frames = self.batch.iter().flat_map(|item| {
            // Vec::new() does not allocate: media costs no allocation here.
            let (packet, events) = match item {
                Outbound::Media(packet) => (Some(Frame::Packet(packet)), Vec::new()),
                event => (None, event_frames(event, stream_id)),
            };
            packet.into_iter().chain(events)
        });
        let result = conn.write_frames(frames, stream_id);
        self.shared
            .queued_bytes
            .fetch_sub(media_bytes, Ordering::Relaxed);
        self.batch.clear();
        result?;
        self.shared.record_sent(media_bytes, last_timestamp);
        Ok(Drained::Written)
    }
}

fn event_frames(event: &Outbound, stream_id: u32) -> Vec<Frame<'static>> {
    match event {
        Outbound::PublishStarted => vec![
            control_message(UserControl::StreamBegin(stream_id)),
            status_message(
                Level::Status,
                status::PLAY_PUBLISH_NOTIFY,
                "Stream is now published.",
                stream_id,
            ),
        ],
        Outbound::PublishEnded => vec![
            status_message(
                Level::Status,
                status::PLAY_UNPUBLISH_NOTIFY,
                "Stream was unpublished.",
                stream_id,
            ),
            control_message(UserControl::StreamEof(stream_id)),
        ],
        Outbound::Media(_) => Vec::new(),
    }
}

/// A user control event (StreamBegin, StreamEOF...) on the control stream.
pub fn control_message(event: UserControl) -> Frame<'static> {
    Frame::Message {
        csid: csid::CONTROL,
        message: Message::UserControl(event).encode(0, 0),
    }
}

/// `onStatus` for a player, on its message stream id.
pub fn status_message(
    level: Level,
    code: &str,
    description: &str,
    stream_id: u32,
) -> Frame<'static> {
    Frame::Message {
        csid: csid::STREAM,
        message: Message::Command(command::on_status(level, code, description))
            .encode(0, stream_id),
    }
}

/// A data message (e.g. `|RtmpSampleAccess`) on a player's stream.
pub fn data_message(values: Vec<Value>, stream_id: u32) -> Frame<'static> {
    Frame::Message {
        csid: csid::STREAM,
        message: Message::Data(values).encode(0, stream_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_sleep_to_shared_ticks() {
        let period = Duration::from_millis(40);
        let now = Instant::now();
        let first = until_next_tick(now, period);
        assert!(first > Duration::ZERO && first <= period);
        let tick = now + first;
        // Two writers asking at different moments of one period wake at
        // the same next tick.
        let a = tick + Duration::from_millis(3);
        let b = tick + Duration::from_millis(17);
        assert_eq!(a + until_next_tick(a, period), tick + period);
        assert_eq!(b + until_next_tick(b, period), tick + period);
    }
}
