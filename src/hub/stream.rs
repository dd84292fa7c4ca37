//! One live stream (`app/name`): its input, its live session, metadata,
//! sequence headers, GOP cache and outputs. The input's thread fans each
//! packet out to every output's queue under the stream's own lock, never
//! blocking on an output; an output joining late gets, in order, metadata,
//! sequence headers and the cached GOP, then live media, with no gap and
//! nothing twice. Events are emitted under the same lock, so a consumer
//! sees one stream's events in the order they happened.
//!
//! An input going away ([`Stream::detach_input`]) does not end the stream:
//! its owner decides whether to end the session ([`Stream::end_session`],
//! which tells the outputs) or to keep it open for another input.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use super::events::{Event, Events, PublishSummary};
use super::gop_cache::GopCache;
use super::history::{EndReason, MAX_SWITCHES, SessionRecord, SwitchRecord};
use super::output::{Outbound, OutputQueue, OutputSpec, OutputStats};
use super::packet::{Packet, PacketKind};
use super::slot::OutputSlot;
use super::stream_key::StreamKey;
use super::stream_state::{InputState, LiveSession, StreamState};
use super::stream_status::{BitrateSamples, MediaDescription};
use crate::config::Config;
use crate::metrics::{self, Metrics, StreamCounters};

/// What a stream needs from the server's settings.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    pub gop_cache: bool,
    pub gop_max_messages: usize,
    pub gop_max_bytes: usize,
}

impl StreamSettings {
    pub fn from_config(config: &Config) -> StreamSettings {
        StreamSettings {
            gop_cache: config.gop_cache,
            gop_max_messages: config.gop_max_messages,
            gop_max_bytes: config.gop_max_bytes,
        }
    }
}

pub struct Stream {
    pub(super) path: String,
    /// Its application and name (no query).
    key: StreamKey,
    settings: StreamSettings,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    pub(super) counters: Arc<StreamCounters>,
    pub(super) state: Mutex<StreamState>,
}

/// What a new output needs to start.
pub struct Subscription {
    pub queue: OutputQueue,
    /// Metadata, sequence headers and cached GOP, to write before the
    /// queue's items.
    pub catch_up: Vec<Arc<Packet>>,
}

impl Stream {
    pub fn new(
        key: &StreamKey,
        settings: StreamSettings,
        metrics: Arc<Metrics>,
        events: Arc<Events>,
    ) -> Stream {
        let key = key.without_query();
        Stream {
            path: key.as_path(),
            key,
            metrics,
            events,
            counters: Arc::new(StreamCounters::default()),
            state: Mutex::new(StreamState {
                input: None,
                session: None,
                owned: false,
                media: MediaDescription::default(),
                samples: BitrateSamples::default(),
                metadata: None,
                video_header: None,
                audio_header: None,
                track_headers: Vec::new(),
                headers: Vec::new(),
                gop: GopCache::new(settings.gop_max_messages, settings.gop_max_bytes),
                has_video: false,
                last_timestamp: 0,
                outputs: Vec::new(),
            }),
            settings,
        }
    }

    /// `app/name`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its application and name, apart (a name may hold a `/`).
    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// Makes a `-source` the stream's owner (or not): it attaches and
    /// detaches the inputs, the session stays open when one leaves, and
    /// publishers are refused.
    pub fn set_owned(&self, owned: bool) {
        self.state.lock().owned = owned;
    }

    pub fn is_owned(&self) -> bool {
        self.state.lock().owned
    }

    /// Notes a switch of a `-source` stream's input in the live session
    /// (the first [`MAX_SWITCHES`] are kept, all are counted).
    pub fn record_switch(&self, switch: SwitchRecord) {
        if let Some(session) = &mut self.state.lock().session {
            session.switch_count += 1;
            if session.switches.len() < MAX_SWITCHES {
                session.switches.push(switch);
            }
        }
    }

    /// Switches of the live session so far.
    pub fn switch_count(&self) -> u64 {
        self.state
            .lock()
            .session
            .as_ref()
            .map_or(0, |s| s.switch_count)
    }

    /// Makes `id` the stream's input; false if it has one. The first input
    /// opens a live session (outputs waiting are told it started); an
    /// input taking over a session kept open continues it.
    pub fn attach_input(&self, id: u64, remote_addr: Option<SocketAddr>) -> bool {
        let mut state = self.state.lock();
        if state.input.is_some() {
            return false;
        }
        state.input = Some(InputState {
            id,
            remote_addr,
            connected_at: SystemTime::now(),
            started: Instant::now(),
        });
        let key = || self.path.clone();
        if state.session.is_some() {
            // Its frames must not follow the old input's in a late
            // joiner's catch-up; its headers replace the old ones as they
            // come.
            state.gop.clear();
        } else {
            let players = state.players().count();
            state.session = Some(LiveSession {
                opened_at: SystemTime::now(),
                started: Instant::now(),
                baseline: self.counters.read(),
                peak_players: players,
                total_players: players as u64,
                last_input: (id, remote_addr),
                switches: Vec::new(),
                switch_count: 0,
            });
            state.reset_media();
            state.samples.clear();
            let dropped = state.notify_all(|| Outbound::PublishStarted);
            self.events.emit(|| Event::PublishStarted {
                key: key(),
                input_id: id,
                remote_addr,
            });
            self.players_dropped(&state, dropped);
        }
        if let Some(session) = &mut state.session {
            session.last_input = (id, remote_addr);
        }
        self.events.emit(|| Event::InputAttached {
            key: key(),
            input_id: id,
            remote_addr,
        });
        true
    }

    /// The input `id` went away. The session stays open, outputs are not
    /// told: the stream's owner decides (see [`Stream::end_session`]).
    /// False if `id` is not the stream's input.
    pub fn detach_input(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        if !state.is_input(id) {
            return false;
        }
        state.input = None;
        self.events.emit(|| Event::InputDetached {
            key: self.path.clone(),
            input_id: id,
        });
        true
    }

    /// Ends the live session: outputs are told the stream ended, media
    /// state is cleared, and the session's record returned (`None` if no
    /// session was open).
    pub fn end_session(&self, reason: EndReason) -> Option<SessionRecord> {
        let mut state = self.state.lock();
        let session = state.session.take()?;
        if let Some(input) = state.input.take() {
            self.events.emit(|| Event::InputDetached {
                key: self.path.clone(),
                input_id: input.id,
            });
        }
        let codecs = (state.media.video_codec, state.media.audio_codec);
        state.reset_media();
        // Bitrates belong to the session: outputs left waiting see zero.
        state.samples.clear();
        let dropped = state.notify_all(|| Outbound::PublishEnded);
        self.players_dropped(&state, dropped);
        let counts = self.counters.read().since(&session.baseline);
        let record = SessionRecord {
            key: self.path.clone(),
            opened_at: session.opened_at,
            closed_at: SystemTime::now(),
            duration_ms: session.started.elapsed().as_millis() as u64,
            reason,
            peak_subscribers: session.peak_players,
            total_subscribers: session.total_players,
            bytes_in: counts.bytes_in,
            bytes_out: counts.bytes_out,
            dropped_messages: counts.dropped_messages,
            switches: session.switches,
            switch_count: session.switch_count,
        };
        self.events.emit(|| {
            Event::PublishStopped(Box::new(PublishSummary {
                record: record.clone(),
                input_id: Some(session.last_input.0),
                remote_addr: session.last_input.1,
                video: codecs.0,
                audio: codecs.1,
            }))
        });
        Some(record)
    }

    /// Ends the session if one is open (returning its record) and tells
    /// every output the stream ended, those waiting for an input too: at
    /// shutdown each output writes that and leaves.
    pub fn close(&self, reason: EndReason) -> Option<SessionRecord> {
        let record = self.end_session(reason);
        if record.is_none() {
            let mut state = self.state.lock();
            let dropped = state.notify_all(|| Outbound::PublishEnded);
            self.players_dropped(&state, dropped);
        }
        record
    }

    /// What is known of the stream's media (codecs, size, rates).
    pub fn media(&self) -> MediaDescription {
        self.state.lock().media.clone()
    }

    /// The id of the input feeding the stream, if any.
    pub fn input_id(&self) -> Option<u64> {
        self.state.lock().input.as_ref().map(|i| i.id)
    }

    /// The address of the input feeding the stream, if it has one.
    pub fn input_addr(&self) -> Option<SocketAddr> {
        self.state.lock().input.as_ref().and_then(|i| i.remote_addr)
    }

    /// Whether a live session is open (with or without an input now).
    pub fn is_live(&self) -> bool {
        self.state.lock().session.is_some()
    }

    /// Neither a session nor an output, nor kept by its owner: the entry
    /// can go.
    pub fn is_idle(&self) -> bool {
        let state = self.state.lock();
        state.session.is_none() && state.input.is_none() && state.outputs.is_empty() && !state.owned
    }

    pub fn player_count(&self) -> usize {
        self.state.lock().players().count()
    }

    pub fn output_count(&self) -> usize {
        self.state.lock().outputs.len()
    }

    /// Delivery figures of each player.
    pub fn player_stats(&self) -> Vec<OutputStats> {
        self.state.lock().players().map(OutputSlot::stats).collect()
    }

    /// Takes a bitrate reading (the status thread does, once a second).
    pub fn sample_bitrates(&self, now: Instant) {
        let counts = self.counters.read();
        self.state
            .lock()
            .samples
            .record(now, counts.bytes_in, counts.bytes_out);
    }

    /// Records a packet from input `input_id` and offers it to every
    /// output. False (and dropped) if that is not the stream's input: it
    /// was detached, and should stop.
    pub fn publish(&self, input_id: u64, packet: Packet) -> bool {
        let packet = Arc::new(packet);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if !state.is_input(input_id) {
            return false;
        }
        self.count_in(&packet, state.owned);
        state.last_timestamp = packet.timestamp;
        let codec_unknown = match packet.kind {
            PacketKind::Video => state.media.video_codec.is_none(),
            PacketKind::Audio => state.media.audio_codec.is_none(),
            PacketKind::Data => false,
        };
        if packet.sequence_header || codec_unknown {
            let before = (state.media.video_codec, state.media.audio_codec);
            state.media.learn(&packet);
            let after = (state.media.video_codec, state.media.audio_codec);
            if before != after {
                self.events.emit(|| Event::CodecDetected {
                    key: self.path.clone(),
                    video: after.0,
                    audio: after.1,
                });
            }
        }
        state.has_video |= packet.kind == PacketKind::Video;
        if packet.sequence_header {
            state.keep_header(&packet);
        }
        if self.settings.gop_cache {
            state.gop.push(&packet);
        }
        let dropped = state.fan_out(&packet);
        self.players_dropped(state, dropped);
        true
    }

    /// Stores metadata (already in the form outputs get) from input
    /// `input_id`, replacing any earlier, and forwards it. False if that is
    /// not the stream's input.
    pub fn set_metadata(&self, input_id: u64, packet: Packet) -> bool {
        let packet = Arc::new(packet.into_metadata());
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if !state.is_input(input_id) {
            return false;
        }
        metrics::add(&self.counters.messages_in, 1);
        state.media.learn(&packet);
        state.metadata = Some(Arc::clone(&packet));
        state.rebuild_headers();
        let dropped = state.fan_out(&packet);
        self.players_dropped(state, dropped);
        true
    }

    /// Tells event consumers about players that left or were dropped.
    fn players_dropped(&self, state: &StreamState, dropped: Vec<OutputStats>) {
        if dropped.is_empty() {
            return;
        }
        for player in dropped {
            self.events.emit(|| Event::PlayStopped {
                key: self.path.clone(),
                id: player.id,
                remote_addr: player.remote_addr,
                duration: player.connected_at.elapsed().unwrap_or_default(),
                bytes_sent: player.bytes_sent,
            });
        }
        let count = state.players().count();
        self.events.emit(|| Event::SubscriberCount {
            key: self.path.clone(),
            count,
        });
        if count == 0 {
            self.events.emit(|| Event::LastPlayerLeft {
                key: self.path.clone(),
            });
        }
    }

    fn count_in(&self, packet: &Packet, owned: bool) {
        let bytes = packet.payload.len() as u64;
        metrics::add(&self.counters.messages_in, 1);
        if owned {
            metrics::add(&self.counters.bytes_in, bytes);
            return;
        }
        match packet.kind {
            PacketKind::Audio => metrics::add(&self.metrics.messages_audio, 1),
            PacketKind::Video => metrics::add(&self.metrics.messages_video, 1),
            PacketKind::Data => return,
        }
        metrics::add(&self.counters.bytes_in, bytes);
        metrics::add(&self.metrics.bytes_ingested, bytes);
    }

    /// Adds an output. Live packets published after this call go to its
    /// queue; everything it needs before them is in the catch-up list.
    pub fn subscribe(&self, spec: OutputSpec) -> Subscription {
        self.add_output(&mut self.state.lock(), spec)
    }

    /// [`Stream::subscribe`], unless the output is a player and the stream
    /// has `max_players` already (0: no limit): then `None`. Checked and
    /// added under the stream's lock, so the limit holds however many come
    /// at once.
    pub fn subscribe_within(&self, spec: OutputSpec, max_players: usize) -> Option<Subscription> {
        let mut state = self.state.lock();
        let full = max_players > 0 && state.players().count() >= max_players;
        if spec.options.counts_as_player && full {
            return None;
        }
        Some(self.add_output(&mut state, spec))
    }

    fn add_output(&self, state: &mut StreamState, spec: OutputSpec) -> Subscription {
        let is_player = spec.options.counts_as_player;
        let (id, remote_addr) = (spec.id, spec.remote_addr);
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
        // Without a cached GOP an output joining a live video stream starts
        // at the next keyframe rather than on frames it cannot decode.
        let wait_for_keyframe = state.session.is_some() && state.has_video && gop.is_empty();
        let (slot, queue) = OutputSlot::new(
            spec,
            Arc::clone(&self.metrics),
            Arc::clone(&self.counters),
            wait_for_keyframe,
        );
        state.outputs.push(slot);
        if is_player {
            let players = state.players().count();
            if let Some(session) = &mut state.session {
                session.total_players += 1;
                session.peak_players = session.peak_players.max(players);
            }
            let key = || self.path.clone();
            self.events.emit(|| Event::PlayStarted {
                key: key(),
                id,
                remote_addr,
            });
            self.events.emit(|| Event::SubscriberCount {
                key: key(),
                count: players,
            });
            if players == 1 {
                self.events.emit(|| Event::FirstPlayerJoined { key: key() });
            }
        }
        Subscription { queue, catch_up }
    }

    /// Removes output `id` (its queue's consumer sees it released).
    pub fn unsubscribe(&self, id: u64) {
        let mut state = self.state.lock();
        let Some(at) = state.outputs.iter().position(|o| o.id() == id) else {
            return;
        };
        let slot = state.outputs.remove(at);
        if slot.options().counts_as_player {
            self.players_dropped(&state, vec![slot.stats()]);
        }
    }
}
