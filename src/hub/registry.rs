//! The stream registry: live streams by `app/name`, and the owner of each.
//! An entry exists while the stream has a session, an input or an output,
//! and is removed when the last of them goes. For a plain stream the
//! registry is the owner that decides what an input leaving means: the
//! session ends with it. Lock order: registry, then stream.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::events::Events;
use super::history::{EndReason, History};
use super::output::OutputSpec;
use super::stream::{Stream, StreamSettings, Subscription};
use super::stream_key::StreamKey;
use crate::config::Config;
use crate::metrics::Metrics;

/// Why a publisher cannot have a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRefused {
    /// A second publisher on a live stream.
    AlreadyPublishing,
    /// The stream is fed by a `-source`'s inputs.
    FedBySource,
}

impl fmt::Display for PublishRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishRefused::AlreadyPublishing => write!(f, "stream already has a publisher"),
            PublishRefused::FedBySource => {
                write!(f, "stream is fed by -source: publish to one of its inputs")
            }
        }
    }
}

impl std::error::Error for PublishRefused {}

pub struct Registry {
    settings: StreamSettings,
    metrics: Arc<Metrics>,
    events: Arc<Events>,
    history: History,
    streams: Mutex<HashMap<String, Arc<Stream>>>,
}

impl Registry {
    pub fn new(config: &Config, metrics: Arc<Metrics>, events: Arc<Events>) -> Self {
        Registry {
            settings: StreamSettings::from_config(config),
            history: History::new(config.history_limit),
            metrics,
            events,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// Ended publish sessions.
    pub fn history(&self) -> &History {
        &self.history
    }

    fn entry(&self, streams: &mut HashMap<String, Arc<Stream>>, key: &StreamKey) -> Arc<Stream> {
        let path = key.as_path();
        Arc::clone(streams.entry(path.clone()).or_insert_with(|| {
            Arc::new(Stream::new(
                key,
                self.settings,
                Arc::clone(&self.metrics),
                Arc::clone(&self.events),
            ))
        }))
    }

    /// Makes `input` the stream's input (its publisher).
    pub fn publish(
        &self,
        key: &StreamKey,
        input: u64,
        remote_addr: SocketAddr,
    ) -> Result<Arc<Stream>, PublishRefused> {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        if stream.is_owned() {
            Err(PublishRefused::FedBySource)
        } else if stream.attach_input(input, Some(remote_addr)) {
            Ok(stream)
        } else {
            Err(PublishRefused::AlreadyPublishing)
        }
    }

    /// The input left. A plain stream's session ends with it (outputs
    /// are told) and is recorded in the history; a stream a `-source`
    /// owns waits for another input.
    pub fn input_ended(&self, stream: &Arc<Stream>, input: u64, reason: EndReason) {
        let mut streams = self.streams.lock();
        if stream.detach_input(input)
            && !stream.is_owned()
            && let Some(record) = stream.end_session(reason)
        {
            self.history.push(record);
        }
        Self::remove_if_idle(&mut streams, stream);
    }

    /// Makes a `-source` the owner of the stream at `key` (see
    /// [`Stream::set_owned`]), or no longer (`false`).
    pub fn set_owned(&self, key: &StreamKey, owned: bool) -> Arc<Stream> {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        stream.set_owned(owned);
        stream
    }

    /// Closes every stream (server shutdown): live sessions end and are
    /// recorded; every output is told the stream ended.
    pub fn close_all(&self, reason: EndReason) {
        for stream in self.streams() {
            if let Some(record) = stream.close(reason) {
                self.history.push(record);
            }
        }
    }

    /// Adds an output to the stream, creating the entry if no input is
    /// there yet (the output waits for one).
    pub fn subscribe(&self, key: &StreamKey, spec: OutputSpec) -> (Arc<Stream>, Subscription) {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        let subscription = stream.subscribe(spec);
        (stream, subscription)
    }

    /// [`Registry::subscribe`] for a player, unless the stream has
    /// `max_players` (0: no limit): then the stream, and `None`.
    pub fn subscribe_within(
        &self,
        key: &StreamKey,
        spec: OutputSpec,
        max_players: usize,
    ) -> (Arc<Stream>, Option<Subscription>) {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        let subscription = stream.subscribe_within(spec, max_players);
        (stream, subscription)
    }

    pub fn unsubscribe(&self, stream: &Arc<Stream>, output: u64) {
        let mut streams = self.streams.lock();
        stream.unsubscribe(output);
        Self::remove_if_idle(&mut streams, stream);
    }

    fn remove_if_idle(streams: &mut HashMap<String, Arc<Stream>>, stream: &Arc<Stream>) {
        let same = streams
            .get(stream.path())
            .is_some_and(|s| Arc::ptr_eq(s, stream));
        if same && stream.is_idle() {
            streams.remove(stream.path());
        }
    }

    /// A snapshot of the streams.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams.lock().values().cloned().collect()
    }

    pub fn get(&self, path: &str) -> Option<Arc<Stream>> {
        self.streams.lock().get(path).cloned()
    }

    pub fn len(&self) -> usize {
        self.streams.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
