//! One pulled input of a `-source`: an outbound client that plays an
//! upstream URL on its own thread and feeds what it receives into the
//! input's private stream (which the source takes it from, as from any
//! input). A connection that fails, stalls (no media for
//! `-input-timeout`), breaks the protocol, sends an endless message or
//! jumps its timestamps is dropped and tried again with backoff and
//! jitter; each retry is counted. Nothing an upstream does reaches the
//! source's players but its media.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::board::PullSlot;
use super::timeline::{MAX_JUMP_MS, diff};
use crate::hub::FIRST_INTERNAL_ID;
use crate::hub::history::EndReason;
use crate::hub::input::{IngestError, Input};
use crate::hub::stream::Stream;
use crate::media::codec;
use crate::metrics::{self, GaugeGuard, Metrics};
use crate::protocol::message::type_id;
use crate::protocol::session::client::ClientEvent;
use crate::protocol::url::RtmpUrl;
use crate::rtmp::client::retry::{Backoff, Stopper, sanitize};
use crate::rtmp::client::{Client, ClientError, ClientOptions};

/// How long one read waits before the worker looks whether it should stop
/// or has stalled.
const READ_POLL: Duration = Duration::from_millis(250);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);
/// How long connecting and each request step may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Ids of pulls' connections as inputs of their private streams.
static NEXT_INPUT_ID: AtomicU64 = AtomicU64::new(FIRST_INTERNAL_ID | (1 << 60));

/// Why a pull's connection ended.
#[derive(Debug)]
pub enum PullError {
    Client(ClientError),
    Ingest(IngestError),
    /// Connected, but no media for this long.
    Stalled(Duration),
    /// Consecutive timestamps this far apart (milliseconds).
    Jump(i64),
    /// The connection before is still letting go of the input.
    Overlap,
}

impl fmt::Display for PullError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullError::Client(e) => write!(f, "{e}"),
            PullError::Ingest(e) => write!(f, "{e}"),
            PullError::Stalled(d) => write!(f, "stalled: no media for {d:?}"),
            PullError::Jump(ms) => write!(f, "timestamp jump of {ms} ms"),
            PullError::Overlap => write!(f, "the previous connection is still closing"),
        }
    }
}

impl std::error::Error for PullError {}

impl From<ClientError> for PullError {
    fn from(e: ClientError) -> Self {
        PullError::Client(e)
    }
}

/// What a pull tells its source.
#[derive(Debug, Default)]
pub struct PullReport {
    /// Playing the upstream now.
    pub connected: AtomicBool,
    /// Connections that failed or stalled, and the last one's error.
    pub errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Connection attempts after the first.
    pub reconnects: AtomicU64,
}

impl PullReport {
    fn failed(&self, error: String) {
        *self.last_error.lock() = Some(error);
        self.errors.fetch_add(1, Ordering::Release);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
}

/// A pull to start.
pub struct Pull {
    pub url: RtmpUrl,
    /// The input's private stream (not in the registry).
    pub stream: Arc<Stream>,
    pub stopper: Arc<Stopper>,
    pub report: Arc<PullReport>,
    pub metrics: Arc<Metrics>,
    pub input_timeout: Duration,
    pub max_message_size: usize,
    /// Check an `rtmps://` upstream's certificate (not with
    /// `-tls-insecure-upstream`).
    pub verify_tls: bool,
    /// The source's stream, for logs.
    pub source: String,
    /// Its place among `-max-pulls`, given back when the thread ends.
    pub slot: PullSlot,
}

impl Pull {
    pub fn spawn(self) -> io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("pull".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        log::info!("{}: pulling {}", self.source, self.url);
        let mut backoff = Backoff::new();
        let mut attempts = 0u64;
        while !self.stopper.is_stopped() {
            if attempts > 0 {
                metrics::add(&self.metrics.pull_reconnects, 1);
                self.report.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            attempts += 1;
            let started = Instant::now();
            match self.connection() {
                Ok(()) => break,
                Err(e) if self.stopper.is_stopped() => {
                    log::debug!("{}: pull of {} stopped: {e}", self.source, self.url);
                    break;
                }
                Err(e) => {
                    if matches!(e, PullError::Client(ClientError::Refused { .. })) {
                        backoff.refused();
                    }
                    log::warn!("{}: pull of {}: {e}", self.source, self.url);
                    self.report.failed(sanitize(&e.to_string(), &self.url));
                }
            }
            if started.elapsed() >= STABLE {
                backoff.reset();
            }
            self.sleep(backoff.wait());
        }
        log::info!("{}: pull of {} stopped", self.source, self.url);
    }

    /// Sleeps `wait`, or less if stopped meanwhile.
    fn sleep(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.stopper.is_stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(READ_POLL));
        }
    }

    /// One connection: play, then feed the private stream until it ends.
    fn connection(&self) -> Result<(), PullError> {
        let options = ClientOptions {
            connect_timeout: REQUEST_TIMEOUT,
            read_timeout: REQUEST_TIMEOUT,
            max_message_size: self.max_message_size,
            verify_tls: self.verify_tls,
            ..ClientOptions::default()
        };
        let mut client = Client::connect(&self.url, &options)?;
        self.stopper.attach(Some(client.socket_handle()));
        let result = self.play(&mut client);
        self.stopper.attach(None);
        result
    }

    fn play(&self, client: &mut Client) -> Result<(), PullError> {
        let name = self.url.name.as_deref().unwrap_or_default();
        client.play(name)?;
        let peer = client.socket().peer_addr().ok();
        let _open = GaugeGuard::raise(&self.metrics, |m| &m.pulls_active, None);
        // Each connection its own id: a pull stopped and started again
        // at once must not end its successor's session on its way out.
        let id = NEXT_INPUT_ID.fetch_add(1, Ordering::Relaxed);
        if !self.stream.attach_input(id, peer) {
            return Err(PullError::Overlap);
        }
        self.report.connected.store(true, Ordering::Release);
        log::info!("{}: pull of {} playing", self.source, self.url);
        let input = Input::new(Arc::clone(&self.stream), id);
        let result = self.feed(client, &input);
        self.report.connected.store(false, Ordering::Release);
        if self.stream.detach_input(id) {
            self.stream.end_session(EndReason::PublisherClosed);
        }
        result
    }

    /// Feeds media in until stopped (`Ok`) or the connection fails.
    fn feed(&self, client: &mut Client, input: &Input) -> Result<(), PullError> {
        client.set_read_timeout(READ_POLL);
        let mut last_media = Instant::now();
        // The last audio and video timestamps.
        let mut last = [None; 2];
        loop {
            if self.stopper.is_stopped() {
                return Ok(());
            }
            match client.read_incoming() {
                Ok(incoming) if incoming.event == ClientEvent::Media => {
                    let message = &incoming.message;
                    // Frames, not headers: servers send those at 0 before
                    // a GOP at any time.
                    let payload = &message.payload[..];
                    if message.type_id == type_id::AGGREGATE {
                        // Media too (servers such as Wowza send it so).
                        last_media = Instant::now();
                    }
                    let kind = match message.type_id {
                        type_id::VIDEO
                            if codec::inspect_video(payload)
                                .is_some_and(|i| !i.sequence_header) =>
                        {
                            Some(0)
                        }
                        type_id::AUDIO
                            if codec::inspect_audio(payload)
                                .is_some_and(|i| !i.sequence_header) =>
                        {
                            Some(1)
                        }
                        _ => None,
                    };
                    if let Some(slot) = kind.and_then(|k| last.get_mut(k)) {
                        if let Some(previous) = *slot {
                            let step = diff(message.timestamp, previous);
                            if step.unsigned_abs() > u64::from(MAX_JUMP_MS) {
                                return Err(PullError::Jump(step));
                            }
                        }
                        *slot = Some(message.timestamp);
                        last_media = Instant::now();
                    }
                    input.ingest(message).map_err(PullError::Ingest)?;
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e.into()),
            }
            if last_media.elapsed() >= self.input_timeout {
                return Err(PullError::Stalled(self.input_timeout));
            }
        }
    }
}
