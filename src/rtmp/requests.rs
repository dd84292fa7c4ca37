//! What a connection does with its session's events: publish and play
//! requests accepted or refused (the decision point for who may publish or
//! play), a publisher's media fed to its stream's input, a player's
//! switches, and leaving a role.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::connection::{Connection, ConnectionError, PUBLISHER_READ_BUFFER_SIZE, Role};
use super::player::{PlayerEnd, PlayerLink, PlayerOutput};
use crate::auth::{Action, Request};
use crate::hub::history::EndReason;
use crate::hub::input::{IngestError, Input};
use crate::hub::output::{OutputOptions, OutputSpec};
use crate::hub::packet::PacketKind;
use crate::hub::registry::PublishRefused;
use crate::hub::stream_key::StreamKey;
use crate::metrics::GaugeGuard;
use crate::protocol::command::status;
use crate::protocol::session::server::ServerEvent;
use crate::record;

/// Unknown commands logged at info level per connection; more go to debug.
const MAX_LOGGED_UNKNOWN: u32 = 10;

impl Connection {
    pub(super) fn on_event(&mut self, event: ServerEvent) -> Result<(), ConnectionError> {
        match event {
            ServerEvent::Connected { .. } => {
                log::debug!("conn#{} {} connected", self.id, self.peer);
                if self.session.accepts_reconnect() {
                    let connections = &self.shared.connections;
                    connections.accepts_reconnect(self.id, &self.transport);
                }
            }
            ServerEvent::PublishRequested { stream_id, name } => {
                self.on_publish(stream_id, &name)?
            }
            ServerEvent::PlayRequested { stream_id, name } => self.on_play(stream_id, &name)?,
            ServerEvent::Media(message) => {
                if let Role::Publisher { input, .. } = &self.role {
                    input.ingest(&message).map_err(|e| match e {
                        // The session was ended under it: at shutdown, or
                        // by the stream's owner.
                        IngestError::Detached
                            if self.shared.shutting_down.load(Ordering::Relaxed) =>
                        {
                            ConnectionError::ShuttingDown
                        }
                        IngestError::Detached => ConnectionError::Rejected(e.to_string()),
                        e => ConnectionError::Ingest(e),
                    })?;
                }
            }
            ServerEvent::StrayMedia => log::warn!(
                "conn#{} {} sent media without publishing; dropped",
                self.id,
                self.peer
            ),
            ServerEvent::Stopped(_) => self.leave_role(EndReason::PublisherClosed),
            ServerEvent::Paused(paused) => {
                if let Role::Player { output, .. } = &self.role {
                    output.set_paused(paused);
                }
            }
            ServerEvent::ReceiveAudio(on) => self.set_receive(PacketKind::Audio, on),
            ServerEvent::ReceiveVideo(on) => self.set_receive(PacketKind::Video, on),
            ServerEvent::UnknownCommand { name, count } => {
                // A flood of them must not flood the log.
                let level = if count <= MAX_LOGGED_UNKNOWN {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "conn#{} {} unknown command {name:?}",
                    self.id,
                    self.peer
                );
            }
        }
        Ok(())
    }

    fn set_receive(&self, kind: PacketKind, on: bool) {
        if let Role::Player { output, .. } = &self.role {
            output.set_receive(kind, on);
        }
    }

    /// The key of a publish or play request, or the request refused with
    /// `code`.
    fn stream_key(
        &mut self,
        stream_id: u32,
        name: &str,
        code: &str,
    ) -> Result<StreamKey, ConnectionError> {
        let app = self.session.app().unwrap_or_default();
        StreamKey::new(app, name).map_err(|e| {
            self.session.reject(stream_id, code, "Invalid stream name.");
            ConnectionError::Rejected(e.to_string())
        })
    }

    /// Asks the server's authentication whether this request may go
    /// ahead; a refused one is told `NetStream.*.Unauthorized` (level
    /// error), then the connection closes.
    fn authorize(
        &mut self,
        action: Action,
        stream_id: u32,
        key: &StreamKey,
    ) -> Result<(), ConnectionError> {
        if !self.shared.auth.guards(action) {
            return Ok(());
        }
        let request = Request {
            action,
            key,
            connect_query: self.session.connect_query(),
            remote_addr: self.peer,
        };
        let Err(denial) = self.shared.authorize(self.id, &request) else {
            return Ok(());
        };
        self.session.reject(
            stream_id,
            action.unauthorized_code(),
            "Authentication failed.",
        );
        Err(ConnectionError::Rejected(format!(
            "{} {key} refused: {denial}",
            action.as_str()
        )))
    }

    fn on_publish(&mut self, stream_id: u32, name: &str) -> Result<(), ConnectionError> {
        let key = self.stream_key(stream_id, name, status::PUBLISH_BAD_NAME)?;
        self.authorize(Action::Publish, stream_id, &key)?;
        let stream = match self.shared.registry.publish(&key, self.id, self.peer) {
            Ok(stream) => stream,
            Err(refused) => {
                let description = match refused {
                    PublishRefused::AlreadyPublishing => "Stream already publishing.",
                    PublishRefused::FedBySource => "Stream is fed by -source.",
                };
                self.session
                    .reject(stream_id, status::PUBLISH_BAD_NAME, description);
                return Err(ConnectionError::Rejected(format!("{key}: {refused}")));
            }
        };
        log::info!("conn#{} {} publishing {key}", self.id, self.peer);
        // Before any of its media: the recorder's file misses nothing.
        record::attach(&self.shared, &stream);
        self.role = Role::Publisher {
            input: Input::new(stream, self.id),
            key,
            _active: GaugeGuard::raise(
                &self.shared.metrics,
                |m| &m.publishers_active,
                Some(|m| &m.publishers_total),
            ),
        };
        self.read_buffer.resize(PUBLISHER_READ_BUFFER_SIZE, 0);
        self.session.accept_publish(stream_id);
        Ok(())
    }

    /// Accepts a play request: the player becomes an output of its
    /// stream, is told it plays, and is handed to a writer thread, which
    /// writes the catch-up (metadata, headers, cached GOP) and what follows.
    fn on_play(&mut self, stream_id: u32, name: &str) -> Result<(), ConnectionError> {
        let key = self.stream_key(stream_id, name, status::PLAY_FAILED)?;
        self.authorize(Action::Play, stream_id, &key)?;
        if let Err(why) = self.shared.sources.admit_player(&key) {
            self.session.reject(stream_id, status::PLAY_FAILED, &why);
            return Err(ConnectionError::Rejected(format!("{key}: {why}")));
        }
        let writers = &self.shared.writers;
        let writer = writers.assign();
        let link = Arc::new(PlayerLink::default());
        let (closer, dropped) = (Arc::clone(&self.transport), Arc::clone(&link));
        let spec = OutputSpec {
            id: self.id,
            remote_addr: Some(self.peer),
            options: OutputOptions::rtmp_player(&self.shared.config),
            // Wakes the connection thread of a player the stream drops.
            on_drop: Some(Box::new(move || {
                dropped.ended(PlayerEnd::SlowPlayer);
                closer.shutdown();
            })),
            doorbell: writers.doorbell(&writer),
        };
        let max = self.shared.config.max_subscribers;
        let (stream, subscription) = self.shared.registry.subscribe_within(&key, spec, max);
        let Some(subscription) = subscription else {
            self.shared.writers.unassign(writer);
            self.session
                .reject(stream_id, status::PLAY_FAILED, "Stream is full.");
            return Err(ConnectionError::Rejected(format!(
                "{key} has -max-subscribers {max} players"
            )));
        };
        let waiting = if stream.input_id().is_some() {
            ""
        } else {
            " (waiting for a publisher)"
        };
        log::info!("conn#{} {} playing {key}{waiting}", self.id, self.peer);
        let player = PlayerOutput::new(
            Arc::clone(&self.transport),
            subscription.queue,
            stream_id,
            Arc::clone(&link),
            subscription.catch_up,
        );
        // Recorded before anything can fail, so leaving always unsubscribes.
        self.role = Role::Player {
            stream,
            key,
            output: Arc::clone(player.output()),
            link,
            writer,
            _active: GaugeGuard::raise(
                &self.shared.metrics,
                |m| &m.subscribers_active,
                Some(|m| &m.subscribers_total),
            ),
        };
        // The replies go out, or wait in the backlog, before anything the
        // writer thread sends; then the writer has the player (and writes
        // the backlog if it must be waited for).
        self.session.accept_play(stream_id);
        let queued = self.queue_replies();
        if let Role::Player { writer, .. } = &self.role {
            self.shared.writers.add(writer, player);
        }
        queued?;
        self.wait_for_replies()
    }

    /// Stops publishing or playing: a publisher's stream is told its input
    /// left; a player's queue is released (what is still in it is not
    /// written).
    pub(super) fn leave_role(&mut self, reason: EndReason) {
        self.session.clear_role();
        match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Idle => {}
            Role::Publisher { input, key, .. } => {
                self.shared
                    .registry
                    .input_ended(input.stream(), input.id(), reason);
                log::info!("conn#{} {} stopped publishing {key}", self.id, self.peer);
            }
            Role::Player {
                stream, key, link, ..
            } => {
                // The writer lets go before the stream does.
                link.stop();
                self.shared.registry.unsubscribe(&stream, self.id);
                log::debug!("conn#{} {} stopped playing {key}", self.id, self.peer);
            }
        }
    }
}
