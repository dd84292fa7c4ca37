//! One live stream (`app/name`): its publisher, metadata, sequence headers,
//! GOP cache and players. The publisher's thread fans each packet out to
//! every player's queue under the stream's own lock, never blocking on a
//! player; a joining player gets, in order, metadata, sequence headers and
//! the cached GOP, then live media, with no gap and nothing twice.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::conn_writer::ConnWriter;
use super::gop_cache::GopCache;
use super::packet::{Packet, PacketKind};
use super::stream_key::redact_path;
use super::subscriber::{
    Offer, Outbound, ResumeContext, SubscriberShared, SubscriberSlot, SubscriberStats,
};
use crate::config::{Config, SlowSubscriberPolicy};

struct StreamState {
    publisher: Option<u64>,
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
    state: Mutex<StreamState>,
}

/// What a new player needs to start.
pub struct Subscription {
    pub rx: Receiver<Outbound>,
    /// Metadata, sequence headers and cached GOP, to send before the queue.
    pub catch_up: Vec<Arc<Packet>>,
}

impl Stream {
    pub fn new(path: String, config: &Config) -> Stream {
        Stream {
            path,
            settings: StreamSettings {
                gop_cache: config.gop_cache,
                policy: config.slow_subscriber,
                queue_max_messages: config.queue_max_messages,
                queue_max_bytes: config.queue_max_bytes,
            },
            state: Mutex::new(StreamState {
                publisher: None,
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

    pub fn redacted(&self) -> String {
        redact_path(&self.path)
    }

    /// Makes `publisher` the stream's publisher; false if it has one.
    pub fn start_publishing(&self, publisher: u64) -> bool {
        let mut state = self.state.lock();
        if state.publisher.is_some() {
            return false;
        }
        state.publisher = Some(publisher);
        state.reset_media();
        notify_all(&mut state.subscribers, || Outbound::PublishStarted);
        true
    }

    /// Ends `publisher`'s session and tells the players.
    pub fn stop_publishing(&self, publisher: u64) {
        let mut state = self.state.lock();
        if state.publisher != Some(publisher) {
            return;
        }
        state.publisher = None;
        state.reset_media();
        notify_all(&mut state.subscribers, || Outbound::PublishEnded);
    }

    /// Tells every player the stream ended (server shutdown).
    pub fn end_for_shutdown(&self) {
        let mut state = self.state.lock();
        if state.publisher.take().is_some() {
            notify_all(&mut state.subscribers, || Outbound::PublishEnded);
        }
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
            .map(|slot| slot.shared.stats())
            .collect()
    }

    /// Records a packet from the publisher and offers it to every player.
    pub fn publish(&self, packet: Packet) {
        let packet = Arc::new(packet);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.last_timestamp = packet.timestamp;
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
        let mut guard = self.state.lock();
        let state = &mut *guard;
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
    pub fn subscribe(&self, shared: Arc<SubscriberShared>, conn: Arc<ConnWriter>) -> Subscription {
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
            shared,
            conn,
            self.settings.queue_max_messages,
            self.settings.queue_max_bytes,
            wait_for_keyframe,
        );
        state.subscribers.push(slot);
        Subscription { rx, catch_up }
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
