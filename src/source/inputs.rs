//! One input of a source as its thread holds it: the tap it takes the
//! input's media through (an output of the input's stream, or of a pull's
//! private stream), the input's health, bitrate and latest metadata and
//! sequence headers, and, for a pulled input, its worker.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::board::InputView;
use super::health::InputHealth;
use super::pull::{Pull, PullReport};
use super::spec::InputSpec;
use crate::config::SlowSubscriberPolicy;
use crate::hub::doorbell::Doorbell;
use crate::hub::output::{Outbound, OutputKind, OutputOptions, OutputQueue, OutputSpec, Released};
use crate::hub::packet::{Packet, PacketKind};
use crate::hub::stream::Stream;
use crate::rtmp::client::retry::Stopper;
use crate::server::Shared;

/// Queue bounds of a tap: at least a player's (the source's thread drains
/// it at once; a burst must not make it skip).
const TAP_MIN_MESSAGES: usize = 1024;
const TAP_MIN_BYTES: usize = 16 * 1024 * 1024;
/// A bitrate not updated for this long is shown as zero.
const BITRATE_STALE: Duration = Duration::from_secs(3);

/// The metadata and sequence headers an input sent last.
#[derive(Debug, Clone, Default)]
pub(super) struct Headers {
    pub metadata: Option<Arc<Packet>>,
    pub video: Option<Arc<Packet>>,
    pub audio: Option<Arc<Packet>>,
}

impl Headers {
    /// Whether two headers are alike (both absent, or the same bytes).
    pub fn same(a: &Option<Arc<Packet>>, b: &Option<Arc<Packet>>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.payload == b.payload,
            _ => false,
        }
    }

    fn learn(&mut self, packet: &Arc<Packet>) {
        let slot = match packet.kind {
            PacketKind::Data => &mut self.metadata,
            PacketKind::Video => &mut self.video,
            PacketKind::Audio => &mut self.audio,
        };
        *slot = Some(Arc::clone(packet));
    }
}

/// Payload bytes over about a second.
#[derive(Debug, Default)]
struct Bitrate {
    since: Option<Instant>,
    bytes: u64,
    kbps: u64,
    updated: Option<Instant>,
}

impl Bitrate {
    fn add(&mut self, now: Instant, bytes: usize) {
        let since = *self.since.get_or_insert(now);
        self.bytes += bytes as u64;
        let span = now.saturating_duration_since(since);
        if span >= Duration::from_secs(1) {
            // Bits per millisecond are kilobits per second.
            self.kbps = self.bytes * 8 / span.as_millis().max(1) as u64;
            self.bytes = 0;
            self.since = Some(now);
            self.updated = Some(now);
        }
    }

    fn kbps(&self, now: Instant) -> u64 {
        match self.updated {
            Some(t) if now.saturating_duration_since(t) < BITRATE_STALE => self.kbps,
            _ => 0,
        }
    }
}

struct Tap {
    stream: Arc<Stream>,
    queue: OutputQueue,
}

struct Worker {
    stopper: Arc<Stopper>,
    report: Arc<PullReport>,
    thread: JoinHandle<()>,
}

impl Drop for Worker {
    /// A worker let go of stops (its thread ends on its own time, and
    /// gives its `-max-pulls` slot back then), even when the source's
    /// thread unwinds.
    fn drop(&mut self) {
        self.stopper.stop();
    }
}

/// A pulled input's private stream and worker.
struct PullSlot {
    stream: Arc<Stream>,
    worker: Option<Worker>,
    /// Since when no player has needed it.
    unwanted_since: Option<Instant>,
    /// The worker's errors already told to the input's health.
    errors_seen: u64,
    /// Refused by `-max-pulls` (told once).
    blocked: bool,
    /// Reconnects of workers before the current one.
    reconnects: u64,
}

pub(super) struct Feed {
    pub spec: InputSpec,
    /// Its tap's output id in the input's stream (a pull's input id in
    /// the source's stream too).
    pub tap_id: u64,
    pub health: InputHealth,
    pub headers: Headers,
    has_video: bool,
    tap: Option<Tap>,
    pull: Option<PullSlot>,
    bitrate: Bitrate,
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.spec)
    }
}

impl Feed {
    /// `private` is a pulled input's own stream (not in the registry).
    pub fn new(spec: InputSpec, tap_id: u64, private: Option<Arc<Stream>>) -> Feed {
        Feed {
            spec,
            tap_id,
            health: InputHealth::default(),
            headers: Headers::default(),
            has_video: false,
            tap: None,
            pull: private.map(|stream| PullSlot {
                stream,
                worker: None,
                unwanted_since: None,
                errors_seen: 0,
                blocked: false,
                reconnects: 0,
            }),
            bitrate: Bitrate::default(),
        }
    }

    /// Joins the input's stream as an output (again, if the stream let
    /// go of the tap), learning its headers from the catch-up.
    pub fn tap_in(&mut self, shared: &Shared, bell: &Arc<Doorbell>, now: Instant) {
        self.untap(shared);
        let config = &shared.config;
        let spec = OutputSpec {
            id: self.tap_id,
            remote_addr: None,
            options: OutputOptions {
                kind: OutputKind::SourceTap,
                max_messages: config.queue_max_messages.max(TAP_MIN_MESSAGES),
                max_bytes: config.queue_max_bytes.max(TAP_MIN_BYTES),
                policy: SlowSubscriberPolicy::Skip,
                counts_as_player: false,
            },
            on_drop: None,
            doorbell: Some(Arc::clone(bell)),
        };
        let (stream, subscription) = match (&self.spec, &self.pull) {
            (_, Some(pull)) => {
                let stream = Arc::clone(&pull.stream);
                let subscription = stream.subscribe(spec);
                (stream, subscription)
            }
            (InputSpec::Local(key), None) => shared.registry.subscribe(key, spec),
            (InputSpec::Pull(_), None) => return,
        };
        self.headers = Headers::default();
        for packet in subscription.catch_up.iter().filter(|p| p.sequence_header) {
            self.headers.learn(packet);
        }
        self.has_video = self.headers.video.is_some();
        match stream.input_id() {
            // Joining again keeps what is known of an input sending.
            Some(_) if self.health.is_connected() => {}
            Some(_) => self.health.connected(now),
            None => self.health.disconnected(),
        }
        self.tap = Some(Tap {
            stream,
            queue: subscription.queue,
        });
    }

    fn untap(&mut self, shared: &Shared) {
        if let Some(tap) = self.tap.take() {
            match self.pull {
                Some(_) => tap.stream.unsubscribe(self.tap_id),
                None => shared.registry.unsubscribe(&tap.stream, self.tap_id),
            }
        }
    }

    /// The next item of the tap's queue, if one waits.
    pub fn take(&mut self) -> Result<Option<Outbound>, Released> {
        let Some(tap) = &self.tap else {
            return Ok(None);
        };
        let item = tap.queue.try_recv()?;
        if let Some(Outbound::Media(packet)) = &item {
            tap.queue.release_queued(packet.payload.len());
        }
        Ok(item)
    }

    /// A packet arrived: health, bitrate, headers.
    pub fn note(&mut self, packet: &Arc<Packet>, now: Instant) {
        if packet.kind != PacketKind::Data {
            self.health.media(now);
            self.bitrate.add(now, packet.payload.len());
        }
        if packet.kind == PacketKind::Video {
            self.has_video = true;
        }
        if packet.sequence_header {
            self.headers.learn(packet);
        }
    }

    /// Whether the stream may switch to this input at `packet`: a
    /// keyframe, or any audio frame of an input without video.
    pub fn starts_at(&self, packet: &Packet) -> bool {
        if packet.sequence_header {
            return false;
        }
        if self.has_video {
            packet.kind == PacketKind::Video && packet.keyframe
        } else {
            packet.kind == PacketKind::Audio
        }
    }

    /// A publisher (or the pull) started on the input's stream.
    pub fn started(&mut self, now: Instant) {
        self.health.connected(now);
        self.headers = Headers::default();
        self.has_video = false;
    }

    /// It left.
    pub fn ended(&mut self) {
        self.health.disconnected();
        self.headers = Headers::default();
        self.has_video = false;
    }

    /// Its id as the source's stream's input: the publisher's connection
    /// (events and hooks name it), or the tap's for a pull.
    pub fn input_id(&self) -> u64 {
        match (&self.pull, &self.tap) {
            (None, Some(tap)) => tap.stream.input_id().unwrap_or(self.tap_id),
            _ => self.tap_id,
        }
    }

    /// The address its media comes from.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.tap.as_ref().and_then(|t| t.stream.input_addr())
    }

    /// Tells the input's health what its pull reported.
    pub fn poll_pull(&mut self) {
        if self
            .pull
            .as_ref()
            .and_then(|p| p.worker.as_ref())
            .is_some_and(|w| w.thread.is_finished())
        {
            // Ended by itself (a panic): started again when needed.
            self.stop_pull();
        }
        let Some(worker) = self.pull.as_mut().and_then(|p| p.worker.as_ref()) else {
            return;
        };
        let errors = worker.report.errors.load(Ordering::Acquire);
        let error = worker.report.last_error();
        if let Some(pull) = &mut self.pull
            && errors > pull.errors_seen
        {
            pull.errors_seen = errors;
            self.health
                .failed(error.as_deref().unwrap_or("connection failed"));
        }
    }

    /// Makes sure the pull runs (a player needs it).
    pub fn start_pull(&mut self, shared: &Shared, source: &str) {
        let InputSpec::Pull(url) = &self.spec else {
            return;
        };
        let Some(pull) = &mut self.pull else {
            return;
        };
        pull.unwanted_since = None;
        if pull.worker.is_some() {
            return;
        }
        let max = shared.config.sources.max_pulls;
        let Some(slot) = shared.sources.take_pull() else {
            if !std::mem::replace(&mut pull.blocked, true) {
                log::warn!("{source}: pull of {url} waits: -max-pulls {max} are open");
                self.health
                    .failed(&format!("-max-pulls {max} reached: not pulled"));
            }
            return;
        };
        pull.blocked = false;
        let report = Arc::new(PullReport::default());
        let stopper = Arc::new(Stopper::default());
        let worker = Pull {
            url: url.clone(),
            stream: Arc::clone(&pull.stream),
            stopper: Arc::clone(&stopper),
            report: Arc::clone(&report),
            metrics: Arc::clone(&shared.metrics),
            input_timeout: shared.config.sources.input_timeout,
            max_message_size: shared.config.max_message_size,
            verify_tls: !shared.config.tls_insecure_upstream,
            source: source.to_owned(),
            slot,
        };
        match worker.spawn() {
            Ok(thread) => {
                pull.errors_seen = 0;
                pull.worker = Some(Worker {
                    stopper,
                    report,
                    thread,
                });
            }
            Err(e) => {
                log::warn!("{source}: pull of {url} not started: cannot start a thread: {e}");
            }
        }
    }

    /// How long a running pull has not been needed (zero if none runs).
    pub fn unwanted_for(&mut self, now: Instant) -> Duration {
        match &mut self.pull {
            Some(pull) if pull.worker.is_some() => {
                let since = *pull.unwanted_since.get_or_insert(now);
                now.saturating_duration_since(since)
            }
            _ => Duration::ZERO,
        }
    }

    /// Stops the pull if one runs; true if one did. It leaves in the
    /// background (a connect under way ends at its timeout).
    pub fn stop_pull(&mut self) -> bool {
        let Some(pull) = &mut self.pull else {
            return false;
        };
        pull.unwanted_since = None;
        let Some(worker) = pull.worker.take() else {
            return false;
        };
        pull.reconnects += worker.report.reconnects.load(Ordering::Relaxed);
        drop(worker);
        true
    }

    pub fn pulling(&self) -> bool {
        self.pull.as_ref().is_some_and(|p| p.worker.is_some())
    }

    /// Leaves: the pull stops, the tap goes.
    pub fn stop(&mut self, shared: &Shared) {
        self.stop_pull();
        self.untap(shared);
    }

    pub fn view(&self, active: bool, now: Instant) -> InputView {
        let reconnects = self.pull.as_ref().map_or(0, |p| {
            p.reconnects
                + p.worker
                    .as_ref()
                    .map_or(0, |w| w.report.reconnects.load(Ordering::Relaxed))
        });
        InputView {
            source: self.spec.label(),
            pull: self.spec.is_pull(),
            status: self.health.status(active),
            last_packet_at: self.health.last_media_at,
            bitrate_kbps: self.bitrate.kbps(now),
            last_error: self.health.last_error.clone(),
            reconnects,
        }
    }
}
