//! The stream registry: live streams by `app/name`. An entry exists while
//! the stream has a publisher or a player, and is removed when the last
//! one leaves. Lock order: registry, then stream.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use std::net::SocketAddr;

use super::history::{EndReason, History};
use super::stream::{Stream, Subscription};
use super::stream_key::StreamKey;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rtmp::writer::ConnWriter;

/// A second publisher on a live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyPublishing;

impl fmt::Display for AlreadyPublishing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream already has a publisher")
    }
}

impl std::error::Error for AlreadyPublishing {}

pub struct Registry {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    history: History,
    streams: Mutex<HashMap<String, Arc<Stream>>>,
}

impl Registry {
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        Registry {
            history: History::new(config.history_limit),
            config,
            metrics,
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
            Arc::new(Stream::new(path, &self.config, Arc::clone(&self.metrics)))
        }))
    }

    /// Claims the stream for a publisher.
    pub fn publish(
        &self,
        key: &StreamKey,
        publisher: u64,
        remote_addr: SocketAddr,
    ) -> Result<Arc<Stream>, AlreadyPublishing> {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        if stream.start_publishing(publisher, remote_addr) {
            Ok(stream)
        } else {
            Err(AlreadyPublishing)
        }
    }

    /// Adds a player to the stream, creating the entry if no publisher is
    /// there yet (the player waits for one).
    pub fn subscribe(
        &self,
        key: &StreamKey,
        subscriber: u64,
        remote_addr: SocketAddr,
        conn: Arc<ConnWriter>,
    ) -> (Arc<Stream>, Subscription) {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        let subscription = stream.subscribe(subscriber, remote_addr, conn);
        (stream, subscription)
    }

    /// Ends a publish session, recording it in the history.
    pub fn unpublish(&self, stream: &Arc<Stream>, publisher: u64, reason: EndReason) {
        let mut streams = self.streams.lock();
        if let Some(record) = stream.stop_publishing(publisher, reason) {
            self.history.push(record);
        }
        Self::remove_if_idle(&mut streams, stream);
    }

    /// Ends every publish session (server shutdown); players are told.
    pub fn unpublish_all(&self, reason: EndReason) {
        for stream in self.streams() {
            if let Some(publisher) = stream.publisher_id() {
                self.unpublish(&stream, publisher, reason);
            }
        }
    }

    pub fn unsubscribe(&self, stream: &Arc<Stream>, subscriber: u64) {
        let mut streams = self.streams.lock();
        stream.unsubscribe(subscriber);
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
