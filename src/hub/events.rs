//! Lifecycle events: connections accepted and closed, publish sessions and
//! plays starting and stopping, inputs attached and detached, a stream's
//! player count changing, codecs detected, authentication refused.
//! Consumers (hooks, relays, later the recorder and pull managers) each
//! get their own bounded channel and run on their own threads; emitting
//! never blocks: when a consumer falls behind, its events are dropped and
//! counted (`rtmp_events_dropped_total`), never queued without bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::RwLock;

use super::history::SessionRecord;
use crate::media::codec::Codec;
use crate::metrics::{self, Metrics};

/// Something that happened. Stream keys are `app/name`, never with a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ConnectionAccepted {
        id: u64,
        remote_addr: SocketAddr,
    },
    ConnectionClosed {
        id: u64,
        remote_addr: SocketAddr,
        duration: Duration,
    },
    /// A live session began: the stream's first input (`input_id`, the
    /// publisher's connection) started.
    PublishStarted {
        key: String,
        input_id: u64,
        remote_addr: Option<SocketAddr>,
    },
    /// The live session ended; its outputs were told.
    PublishStopped(Box<PublishSummary>),
    /// An input (a publisher) started feeding the stream.
    InputAttached {
        key: String,
        input_id: u64,
        remote_addr: Option<SocketAddr>,
    },
    /// The stream's input went away (the session may stay open).
    InputDetached {
        key: String,
        input_id: u64,
    },
    PlayStarted {
        key: String,
        id: u64,
        remote_addr: Option<SocketAddr>,
    },
    PlayStopped {
        key: String,
        id: u64,
        remote_addr: Option<SocketAddr>,
        duration: Duration,
        bytes_sent: u64,
    },
    /// The number of players of a stream changed.
    SubscriberCount {
        key: String,
        count: usize,
    },
    /// A publish or play request was refused by authentication.
    AuthFailed {
        key: String,
        id: u64,
        remote_addr: SocketAddr,
        action: &'static str,
        error: &'static str,
    },
    FirstPlayerJoined {
        key: String,
    },
    LastPlayerLeft {
        key: String,
    },
    /// The stream's codecs became known or changed.
    CodecDetected {
        key: String,
        video: Option<Codec>,
        audio: Option<Codec>,
    },
    /// A recording file was finished (`file` as the server wrote it:
    /// `-record-dir` and its name).
    RecordingDone {
        key: String,
        file: String,
        bytes: u64,
        duration: Duration,
        /// `flv` or `mp4`.
        format: &'static str,
    },
    /// A `-source` stream changed the input players get (`from` and `to`
    /// are priorities, 0 first, with the inputs as the API shows them).
    InputSwitched {
        key: String,
        from: Option<(usize, String)>,
        to: (usize, String),
        /// `start`, `failover`, `failback`, `manual`.
        reason: &'static str,
    },
    /// Every input of a `-source` stream is down: its players wait.
    StreamExhausted {
        key: String,
    },
    /// An input came back to an exhausted stream.
    StreamRestored {
        key: String,
        input: (usize, String),
    },
    /// A relay of the stream changed state (`connecting`, `publishing`,
    /// `backoff`, `failed`); `destination` as logs show it.
    RelayStateChanged {
        key: String,
        destination: String,
        state: &'static str,
    },
}

impl Event {
    /// A short name, as hooks and logs call it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ConnectionAccepted { .. } => "connection_accept",
            Event::ConnectionClosed { .. } => "connection_close",
            Event::PublishStarted { .. } => "publish_start",
            Event::PublishStopped { .. } => "publish_stop",
            Event::InputAttached { .. } => "input_attached",
            Event::InputDetached { .. } => "input_detached",
            Event::PlayStarted { .. } => "play_start",
            Event::PlayStopped { .. } => "play_stop",
            Event::FirstPlayerJoined { .. } => "first_player_joined",
            Event::LastPlayerLeft { .. } => "last_player_left",
            Event::CodecDetected { .. } => "codec_detected",
            Event::SubscriberCount { .. } => "subscriber_count",
            Event::AuthFailed { .. } => "auth_failed",
            Event::RelayStateChanged { .. } => "relay_state",
            Event::RecordingDone { .. } => "recording_done",
            Event::InputSwitched { .. } => "input_switched",
            Event::StreamExhausted { .. } => "stream_exhausted",
            Event::StreamRestored { .. } => "stream_restored",
        }
    }
}

/// What a live session was, told when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishSummary {
    pub record: SessionRecord,
    /// The last input's connection and address.
    pub input_id: Option<u64>,
    pub remote_addr: Option<SocketAddr>,
    pub video: Option<Codec>,
    pub audio: Option<Codec>,
}

/// Picks a counter of the server's metrics.
pub type CounterOf = fn(&Metrics) -> &AtomicU64;

struct Consumer {
    name: &'static str,
    tx: Sender<Event>,
    /// Also counts the events this consumer loses.
    also_count: Option<CounterOf>,
}

/// Where events are emitted: a bounded channel per consumer.
pub struct Events {
    metrics: Arc<Metrics>,
    consumers: RwLock<Vec<Consumer>>,
}

impl Events {
    pub fn new(metrics: Arc<Metrics>) -> Events {
        Events {
            metrics,
            consumers: RwLock::new(Vec::new()),
        }
    }

    /// A new consumer's channel, holding at most `capacity` events it has
    /// not taken yet. It gets every event emitted from now on, unless it
    /// falls that far behind. Dropping the receiver unsubscribes.
    pub fn subscribe(&self, name: &'static str, capacity: usize) -> Receiver<Event> {
        self.subscribe_counting(name, capacity, None)
    }

    /// [`Events::subscribe`], with the events this consumer loses also
    /// counted in `also_count` (the hooks' dropped counter).
    pub fn subscribe_counting(
        &self,
        name: &'static str,
        capacity: usize,
        also_count: Option<CounterOf>,
    ) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        self.consumers.write().push(Consumer {
            name,
            tx,
            also_count,
        });
        rx
    }

    /// Emits the event `make` builds, to every consumer, without blocking.
    /// Nothing is built when nobody listens.
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        let consumers = self.consumers.read();
        let Some((last, others)) = consumers.split_last() else {
            return;
        };
        let event = make();
        let mut gone = Vec::new();
        for consumer in others {
            if self.send(consumer, event.clone()) {
                gone.push(consumer.tx.clone());
            }
        }
        if self.send(last, event) {
            gone.push(last.tx.clone());
        }
        drop(consumers);
        if !gone.is_empty() {
            self.consumers
                .write()
                .retain(|c| !gone.iter().any(|g| g.same_channel(&c.tx)));
        }
    }

    /// Sends to one consumer; true if it is gone.
    fn send(&self, consumer: &Consumer, event: Event) -> bool {
        match consumer.tx.try_send(event) {
            Ok(()) => false,
            Err(TrySendError::Full(event)) => {
                metrics::add(&self.metrics.events_dropped, 1);
                if let Some(counter) = consumer.also_count {
                    metrics::add(counter(&self.metrics), 1);
                }
                log::debug!(
                    "event {} dropped: consumer {} is behind",
                    event.name(),
                    consumer.name
                );
                false
            }
            Err(TrySendError::Disconnected(_)) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: u64) -> Event {
        Event::PlayStarted {
            key: "live/cam".into(),
            id: n,
            remote_addr: None,
        }
    }

    #[test]
    fn every_consumer_gets_every_event_in_order() {
        let events = Events::new(Arc::default());
        let a = events.subscribe("a", 16);
        let b = events.subscribe("b", 16);
        for n in 0..5 {
            events.emit(|| started(n));
        }
        for rx in [a, b] {
            let got: Vec<Event> = rx.try_iter().collect();
            assert_eq!(got, (0..5).map(started).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_consumer_that_falls_behind_loses_events_counted_never_blocks() {
        let metrics = Arc::new(Metrics::default());
        let events = Events::new(Arc::clone(&metrics));
        let slow = events.subscribe("slow", 4);
        let fast = events.subscribe("fast", 1000);
        for n in 0..100 {
            events.emit(|| started(n));
        }
        assert_eq!(slow.try_iter().count(), 4, "bounded");
        assert_eq!(fast.try_iter().count(), 100, "others unaffected");
        assert_eq!(metrics::get(&metrics.events_dropped), 96);
        // After catching up it gets new events again.
        events.emit(|| started(100));
        assert_eq!(slow.try_recv().unwrap(), started(100));
    }

    #[test]
    fn nothing_is_built_without_consumers_and_gone_ones_are_forgotten() {
        let events = Events::new(Arc::default());
        events.emit(|| unreachable!("no consumer: the event is not built"));
        let rx = events.subscribe("gone", 4);
        drop(rx);
        events.emit(|| started(1));
        assert!(events.consumers.read().is_empty());
        events.emit(|| unreachable!("the gone consumer was forgotten"));
    }
}
