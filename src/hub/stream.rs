//! One live stream (`app/name`): its publisher, metadata, sequence headers,
//! GOP cache and players. The publisher's thread fans each packet out to
//! every player's queue under the stream's own lock, never blocking on a
//! player; a joining player gets, in order, metadata, sequence headers and
//! the cached GOP, then live media, with no gap and nothing twice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::gop_cache::GopCache;
use super::history::{EndReason, SessionRecord};
use super::packet::{Packet, PacketKind};
use super::stream_status::{
    BitrateSamples, MediaDescription, PublisherStatus, StreamStatus, SubscriberStatus,
};
use super::subscriber::{
    Offer, Outbound, ResumeContext, SubscriberShared, SubscriberSlot, SubscriberStats,
};
use crate::config::{Config, SlowSubscriberPolicy};
use crate::metrics::{self, Metrics, StreamCounters, StreamCounts};
use crate::rtmp::writer::ConnWriter;

/// The current publisher and its session's figures.
struct Publisher {
    id: u64,
    remote_addr: SocketAddr,
    connected_at: SystemTime,
    opened_at: SystemTime,
    started: Instant,
    baseline: StreamCounts,
    peak_subscribers: usize,
    total_subscribers: u64,
}

struct StreamState {
    publisher: Option<Publisher>,
    media: MediaDescription,
    samples: BitrateSamples,
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    /// Metadata and sequence headers in the order players need them.
    headers: Vec<Arc<Packet>>,
    gop: GopCache,
    has_video: bool,
    last_timestamp: u32,
    subscribers: Vec<SubscriberSlot>,
}

impl StreamState {
    fn reset_media(&mut self) {
        self.media = MediaDescription::default();
        self.metadata = None;
        self.video_header = None;
        self.audio_header = None;
        self.headers.clear();
        self.gop.clear();
        self.has_video = false;
    }

    fn rebuild_headers(&mut self) {
        self.headers = [&self.metadata, &self.video_header, &self.audio_header]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
    }
}

/// Settings a stream applies to its players and cache.
#[derive(Debug, Clone, Copy)]
struct StreamSettings {
    gop_cache: bool,
    policy: SlowSubscriberPolicy,
    queue_max_messages: usize,
    queue_max_bytes: usize,
}

pub struct Stream {
    path: String,
    settings: StreamSettings,
    metrics: Arc<Metrics>,
    counters: Arc<StreamCounters>,
    state: Mutex<StreamState>,
}

/// What a new player needs to start.
pub struct Subscription {
    pub shared: Arc<SubscriberShared>,
    pub rx: Receiver<Outbound>,
    /// Metadata, sequence headers and cached GOP, to send before the queue.
    pub catch_up: Vec<Arc<Packet>>,
}

impl Stream {
    pub fn new(path: String, config: &Config, metrics: Arc<Metrics>) -> Stream {
        Stream {
            path,
            metrics,
            counters: Arc::new(StreamCounters::default()),
            settings: StreamSettings {
                gop_cache: config.gop_cache,
                policy: config.slow_subscriber,
                queue_max_messages: config.queue_max_messages,
                queue_max_bytes: config.queue_max_bytes,
            },
            state: Mutex::new(StreamState {
                publisher: None,
                media: MediaDescription::default(),
                samples: BitrateSamples::default(),
                metadata: None,
                video_header: None,
                audio_header: None,
                headers: Vec::new(),
                gop: GopCache::new(config.gop_max_messages, config.gop_max_bytes),
                has_video: false,
                last_timestamp: 0,
                subscribers: Vec::new(),
            }),
        }
    }

    /// `app/name`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Makes connection `id` the stream's publisher; false if it has one.
    pub fn start_publishing(&self, id: u64, remote_addr: SocketAddr) -> bool {
        let mut state = self.state.lock();
        if state.publisher.is_some() {
            return false;
        }
        let watching = state.subscribers.len();
        state.publisher = Some(Publisher {
            id,
            remote_addr,
            connected_at: SystemTime::now(),
            opened_at: SystemTime::now(),
            started: Instant::now(),
            baseline: self.counters.read(),
            peak_subscribers: watching,
            total_subscribers: watching as u64,
        });
        state.reset_media();
        state.samples.clear();
        notify_all(&mut state.subscribers, || Outbound::PublishStarted);
        true
    }

    /// Ends connection `id`'s publish session, tells the players, and
    /// returns the session's record.
    pub fn stop_publishing(&self, id: u64, reason: EndReason) -> Option<SessionRecord> {
        let mut state = self.state.lock();
        if state.publisher.as_ref().map(|p| p.id) != Some(id) {
            return None;
        }
        let publisher = state.publisher.take()?;
        state.reset_media();
        // Bitrates belong to the session: players left waiting see zero.
        state.samples.clear();
        notify_all(&mut state.subscribers, || Outbound::PublishEnded);
        let counts = self.counters.read().since(&publisher.baseline);
        Some(SessionRecord {
            key: self.path.clone(),
            opened_at: publisher.opened_at,
            closed_at: SystemTime::now(),
            duration_ms: publisher.started.elapsed().as_millis() as u64,
            reason,
            peak_subscribers: publisher.peak_subscribers,
            total_subscribers: publisher.total_subscribers,
            bytes_in: counts.bytes_in,
            bytes_out: counts.bytes_out,
            dropped_messages: counts.dropped_messages,
        })
    }

    /// The id of the publishing connection, if any.
    pub fn publisher_id(&self) -> Option<u64> {
        self.state.lock().publisher.as_ref().map(|p| p.id)
    }

    pub fn has_publisher(&self) -> bool {
        self.state.lock().publisher.is_some()
    }

    pub fn is_idle(&self) -> bool {
        let state = self.state.lock();
        state.publisher.is_none() && state.subscribers.is_empty()
    }

    pub fn subscriber_count(&self) -> usize {
        self.state.lock().subscribers.len()
    }

    /// Delivery figures of each player.
    pub fn subscriber_stats(&self) -> Vec<SubscriberStats> {
        self.state
            .lock()
            .subscribers
            .iter()
            .map(SubscriberSlot::stats)
            .collect()
    }

    /// Takes a bitrate reading (the status thread does, once a second).
    pub fn sample_bitrates(&self, now: Instant) {
        let counts = self.counters.read();
        self.state
            .lock()
            .samples
            .record(now, counts.bytes_in, counts.bytes_out);
    }

    /// Everything the status API shows about this stream.
    pub fn status(&self) -> StreamStatus {
        let state = self.state.lock();
        let counts = self.counters.read();
        let (bitrate_in_kbps, bitrate_out_kbps) = state.samples.kbps();
        let subscribers: Vec<SubscriberStatus> = state
            .subscribers
            .iter()
            .map(|slot| {
                let stats = slot.stats();
                let lag_ms = if state.publisher.is_some() {
                    state
                        .last_timestamp
                        .wrapping_sub(stats.last_written_timestamp) as i32
                } else {
                    0
                };
                SubscriberStatus {
                    stats,
                    lag_ms: lag_ms.max(0) as u64,
                }
            })
            .collect();
        StreamStatus {
            key: self.path.clone(),
            publisher: state.publisher.as_ref().map(|p| PublisherStatus {
                id: p.id,
                remote_addr: p.remote_addr,
                connected_at: p.connected_at,
                uptime: p.started.elapsed(),
            }),
            media: state.media.clone(),
            counts: state
                .publisher
                .as_ref()
                .map_or(StreamCounts::default(), |p| counts.since(&p.baseline)),
            bitrate_in_kbps,
            bitrate_out_kbps,
            gop_cache_messages: state.gop.packets().len(),
            gop_cache_video_frames: state.gop.video_frames(),
            gop_cache_bytes: state.gop.bytes(),
            max_lag_ms: subscribers.iter().map(|s| s.lag_ms).max().unwrap_or(0),
            subscribers,
        }
    }

    /// Records a packet from the publisher and offers it to every player.
    pub fn publish(&self, packet: Packet) {
        let packet = Arc::new(packet);
        let bytes = packet.payload.len() as u64;
        metrics::add(&self.counters.messages_in, 1);
        match packet.kind {
            PacketKind::Audio => metrics::add(&self.metrics.messages_audio, 1),
            PacketKind::Video => metrics::add(&self.metrics.messages_video, 1),
            PacketKind::Data => {}
        }
        if packet.kind != PacketKind::Data {
            metrics::add(&self.counters.bytes_in, bytes);
            metrics::add(&self.metrics.bytes_ingested, bytes);
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.last_timestamp = packet.timestamp;
        let codec_unknown = match packet.kind {
            PacketKind::Video => state.media.video_codec.is_none(),
            PacketKind::Audio => state.media.audio_codec.is_none(),
            PacketKind::Data => false,
        };
        if packet.sequence_header || codec_unknown {
            state.media.learn(&packet);
        }
        match packet.kind {
            PacketKind::Video => {
                state.has_video = true;
                if packet.sequence_header {
                    state.video_header = Some(Arc::clone(&packet));
                    state.rebuild_headers();
                }
            }
            PacketKind::Audio if packet.sequence_header => {
                state.audio_header = Some(Arc::clone(&packet));
                state.rebuild_headers();
            }
            PacketKind::Audio | PacketKind::Data => {}
        }
        if self.settings.gop_cache {
            state.gop.push(&packet);
        }
        self.fan_out(state, &packet);
    }

    /// Stores metadata (already in player form), replacing any earlier,
    /// and forwards it.
    pub fn set_metadata(&self, packet: Packet) {
        let packet = Arc::new(packet.into_metadata());
        metrics::add(&self.counters.messages_in, 1);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.media.learn(&packet);
        state.metadata = Some(Arc::clone(&packet));
        state.rebuild_headers();
        self.fan_out(state, &packet);
    }

    fn fan_out(&self, state: &mut StreamState, packet: &Arc<Packet>) {
        let ctx = ResumeContext {
            audio_only: !state.has_video,
            headers: &state.headers,
            policy: self.settings.policy,
        };
        state.subscribers.retain_mut(|slot| {
            if slot.offer(packet, &ctx) == Offer::Disconnect {
                slot.disconnect();
                return false;
            }
            true
        });
    }

    /// Adds a player. Live packets published after this call go to its
    /// queue; everything it needs before them is in the catch-up list.
    pub fn subscribe(
        &self,
        id: u64,
        remote_addr: SocketAddr,
        conn: Arc<ConnWriter>,
    ) -> Subscription {
        let shared = Arc::new(SubscriberShared::new(
            id,
            remote_addr,
            Arc::clone(&self.metrics),
            Arc::clone(&self.counters),
        ));
        let mut state = self.state.lock();
        let gop = state.gop.packets();
        let base = gop
            .iter()
            .map(|p| p.timestamp)
            .min()
            .unwrap_or(state.last_timestamp);
        let mut catch_up: Vec<Arc<Packet>> = state
            .headers
            .iter()
            .map(|p| {
                if p.timestamp > base {
                    Arc::new(p.retimed(base))
                } else {
                    Arc::clone(p)
                }
            })
            .collect();
        catch_up.extend(gop.iter().cloned());
        // Without a cached GOP a player joining a live video stream starts
        // at the next keyframe rather than on frames it cannot decode.
        let wait_for_keyframe = state.publisher.is_some() && state.has_video && gop.is_empty();
        let (slot, rx) = SubscriberSlot::new(
            Arc::clone(&shared),
            conn,
            self.settings.queue_max_messages,
            self.settings.queue_max_bytes,
            wait_for_keyframe,
        );
        state.subscribers.push(slot);
        let watching = state.subscribers.len();
        if let Some(publisher) = &mut state.publisher {
            publisher.total_subscribers += 1;
            publisher.peak_subscribers = publisher.peak_subscribers.max(watching);
        }
        Subscription {
            shared,
            rx,
            catch_up,
        }
    }

    pub fn unsubscribe(&self, subscriber_id: u64) {
        self.state
            .lock()
            .subscribers
            .retain(|s| s.id() != subscriber_id);
    }
}

fn notify_all(subscribers: &mut Vec<SubscriberSlot>, event: impl Fn() -> Outbound) {
    subscribers.retain_mut(|slot| {
        let told = slot.notify(event());
        if !told {
            // Its queue is full even of events: it cannot be told, so it
            // is closed rather than left waiting forever.
            slot.disconnect();
        }
        told
    });
}
