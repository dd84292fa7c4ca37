//! The stream registry: live streams by `app/name`. An entry exists while
//! the stream has a publisher or a player, and is removed when the last
//! one leaves. Lock order: registry, then stream.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn_writer::ConnWriter;
use super::stream::{Stream, Subscription};
use super::stream_key::StreamKey;
use super::subscriber::SubscriberShared;
use crate::config::Config;

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
    streams: Mutex<HashMap<String, Arc<Stream>>>,
}

impl Registry {
    pub fn new(config: Arc<Config>) -> Self {
        Registry {
            config,
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, streams: &mut HashMap<String, Arc<Stream>>, key: &StreamKey) -> Arc<Stream> {
        let path = key.as_path();
        Arc::clone(
            streams
                .entry(path.clone())
                .or_insert_with(|| Arc::new(Stream::new(path, &self.config))),
        )
    }

    /// Claims the stream for a publisher.
    pub fn publish(
        &self,
        key: &StreamKey,
        publisher: u64,
    ) -> Result<Arc<Stream>, AlreadyPublishing> {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        if stream.start_publishing(publisher) {
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
        shared: Arc<SubscriberShared>,
        conn: Arc<ConnWriter>,
    ) -> (Arc<Stream>, Subscription) {
        let mut streams = self.streams.lock();
        let stream = self.entry(&mut streams, key);
        let subscription = stream.subscribe(shared, conn);
        (stream, subscription)
    }

    pub fn unpublish(&self, stream: &Arc<Stream>, publisher: u64) {
        let mut streams = self.streams.lock();
        stream.stop_publishing(publisher);
        Self::remove_if_idle(&mut streams, stream);
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
