//! One relay: a stream's output pushed to one destination on its own
//! thread, as an encoder would publish it. It connects (handshake,
//! connect, releaseStream, FCPublish, createStream, publish), joins the
//! stream as an output (catch-up first: metadata, sequence headers, the
//! cached GOP from a keyframe) and writes what the output's bounded queue
//! holds. A destination that fails or refuses is retried with exponential
//! backoff and jitter (1 s doubling to 30 s) while the stream lives; each
//! new connection starts again from the metadata, headers and a keyframe.
//! The stream never waits for a relay: a full queue skips to the next
//! keyframe, like a slow player's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::status::{RelayEntry, RelayState};
use crate::config::SlowSubscriberPolicy;
use crate::hub::events::Event;
use crate::hub::output::{OutputKind, OutputOptions, OutputSpec};
use crate::hub::stream_key::StreamKey;
use crate::protocol::url::RtmpUrl;
use crate::rtmp::client::retry::{Backoff, Stopper, sanitize};
use crate::rtmp::client::{Client, ClientError, ClientOptions, PublishEnd};
use crate::server::Shared;

/// How often a waiting relay looks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(100);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);

/// What a relay needs to run.
pub(crate) struct Relay {
    pub(crate) shared: Arc<Shared>,
    pub key: StreamKey,
    pub url: RtmpUrl,
    /// Its output's id, unique among the server's outputs.
    pub output_id: u64,
    /// Stopped when the stream's session ended or the server stops.
    pub control: Arc<Stopper>,
    /// Its entry on the server's relay board.
    pub entry: Arc<RelayEntry>,
}

impl Relay {
    /// Relays until the stream's session ends, then unpublishes there.
    pub fn run(self) {
        log::info!("relay of {} to {} starting", self.key, self.url);
        // A panic (there should be none) ends this relay only, and leaves
        // nothing behind: no output, no entry on the board.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.relay()));
        if run.is_err() {
            log::error!("relay of {} to {} failed (panic)", self.key, self.url);
            if let Some(stream) = self.shared.registry.get(&self.key.as_path()) {
                self.shared.registry.unsubscribe(&stream, self.output_id);
            }
        }
        self.set_state(RelayState::Stopped);
        self.shared.relays.remove(&self.entry);
        log::info!("relay of {} to {} stopped", self.key, self.url);
    }

    fn relay(&self) {
        let mut backoff = Backoff::new();
        let mut first = true;
        while !self.stopped() {
            if std::mem::take(&mut first) {
                // The board shows a new relay as connecting already; its
                // event consumers are told here.
                self.entry.set_state(RelayState::Connecting);
                self.tell(RelayState::Connecting);
            } else {
                self.entry.reconnecting();
                self.set_state(RelayState::Connecting);
            }
            let result = match self.connect() {
                Ok(None) => Ok(true),
                Ok(Some(client)) => {
                    self.set_state(RelayState::Publishing);
                    let started = Instant::now();
                    let end = self.publish(client);
                    // A connection that held a while earns a fresh
                    // backoff; one dropped at once (a bad key) keeps
                    // backing off.
                    if started.elapsed() >= STABLE {
                        backoff.reset();
                    }
                    end
                }
                Err(e) => Err(e),
            };
            let state = match result {
                Ok(true) => break,
                Ok(false) => RelayState::Backoff,
                Err(e) => {
                    let refused = matches!(e, ClientError::Refused { .. });
                    if refused {
                        backoff.refused();
                    }
                    self.entry.failed(&sanitize(&e.to_string(), &self.url));
                    log::warn!("relay of {} to {}: {e}", self.key, self.url);
                    if refused {
                        RelayState::Failed
                    } else {
                        RelayState::Backoff
                    }
                }
            };
            self.set_state(state);
            let wait = backoff.wait();
            log::debug!(
                "relay of {} to {}: retrying in {wait:?}",
                self.key,
                self.url
            );
            self.sleep(wait);
        }
    }

    /// Records the relay's state, telling event consumers of a change.
    fn set_state(&self, state: RelayState) {
        if self.entry.set_state(state) != state {
            self.tell(state);
        }
    }

    fn tell(&self, state: RelayState) {
        self.shared.events.emit(|| Event::RelayStateChanged {
            key: self.key.as_path(),
            destination: self.url.to_string(),
            state: state.as_str(),
        });
    }

    fn stopped(&self) -> bool {
        self.control.is_stopped() || self.shared.shutting_down.load(Ordering::Relaxed)
    }

    /// Sleeps `wait`, or less if the relay is stopped meanwhile.
    fn sleep(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(STOP_POLL));
        }
    }

    /// Connects and publishes, unless the relay was stopped meanwhile (a
    /// relay of an ended session must not publish into the next one).
    fn connect(&self) -> Result<Option<Client>, ClientError> {
        let options = ClientOptions {
            verify_tls: !self.shared.config.tls_insecure_upstream,
            ..ClientOptions::default()
        };
        let mut client = Client::connect(&self.url, &options)?;
        if self.stopped() {
            return Ok(None);
        }
        let name = self.url.name.as_deref().unwrap_or(self.key.name());
        client.publish(name)?;
        log::info!("relay of {} to {} publishing", self.key, self.url);
        Ok(Some(client))
    }

    /// Publishes the stream's output over `client` until the session ends
    /// (`Ok(true)`: done) or the connection ends (`Ok(false)` or an error:
    /// retry).
    fn publish(&self, mut client: Client) -> Result<bool, ClientError> {
        let config = &self.shared.config;
        let spec = OutputSpec {
            id: self.output_id,
            remote_addr: None,
            options: OutputOptions {
                kind: OutputKind::Relay,
                counts_as_player: false,
                // Never dropped for lagging: it skips to a keyframe.
                policy: SlowSubscriberPolicy::Skip,
                ..OutputOptions::rtmp_player(config)
            },
            on_drop: None,
            doorbell: None,
        };
        let registry = &self.shared.registry;
        if self.stopped() {
            let _ = client.delete_stream();
            return Ok(true);
        }
        let (stream, subscription) = registry.subscribe(&self.key, spec);
        if !stream.is_live() {
            // The session ended before the relay joined it.
            registry.unsubscribe(&stream, self.output_id);
            let _ = client.delete_stream();
            return Ok(true);
        }
        self.entry
            .publishing(Arc::clone(subscription.queue.shared()));
        self.control.attach(Some(client.socket_handle()));
        let end = client.publish_output(
            &subscription.catch_up,
            &subscription.queue,
            self.control.flag(),
        );
        self.control.attach(None);
        self.entry.unpublished();
        let done = match end {
            Ok(PublishEnd::StreamEnded | PublishEnd::Stopped) => Ok(true),
            // Let go of by the stream while it lives: join it again.
            Ok(PublishEnd::Released) => Ok(!stream.is_live()),
            Err(e) => Err(e),
        };
        if matches!(done, Ok(true)) {
            // FCUnpublish and deleteStream, while still an output (so
            // shutdown waits for it); dropping the client closes.
            let _ = client.delete_stream();
        }
        registry.unsubscribe(&stream, self.output_id);
        done
    }
}
