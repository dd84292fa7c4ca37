//! Relay push: every published stream sent on to other servers
//! (`-relay-to`, `-relay-map`). A manager thread follows the hub's
//! lifecycle events: when a stream's session starts it starts one relay
//! per destination (see `worker`), each on its own thread with its own
//! bounded queue; when the session ends it stops them. Startup never waits
//! on a destination, and nothing a destination does reaches the
//! publisher or the players.

pub mod status;
pub mod target;
mod worker;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::hub::events::Event;
use crate::rtmp::client::retry::Stopper;
use crate::server::Shared;
use worker::Relay;

/// Lifecycle events the manager may fall behind by before some are
/// dropped (counted in `rtmp_events_dropped_total`).
const EVENT_CAPACITY: usize = 1024;
/// How often the manager looks whether the server is stopping.
const POLL: Duration = Duration::from_millis(250);
/// How often the manager compares its relays with the live streams.
const RECONCILE: Duration = Duration::from_secs(1);
/// Relays' output ids, apart from connection ids (which count from 1).
const FIRST_OUTPUT_ID: u64 = crate::hub::FIRST_INTERNAL_ID << 1;

/// Starts the relay manager if the server has destinations.
pub(crate) fn start(shared: &Arc<Shared>) -> io::Result<()> {
    if shared.config.relays.is_empty() {
        return Ok(());
    }
    let events = shared.events.subscribe("relays", EVENT_CAPACITY);
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name("relays".into())
        .spawn(move || Manager::new(shared).run(&events))?;
    Ok(())
}

struct Manager {
    shared: Arc<Shared>,
    /// The controls of the relays of each live stream, by `app/name`.
    running: HashMap<String, Vec<Arc<Stopper>>>,
    next_output_id: u64,
}

impl Manager {
    fn new(shared: Arc<Shared>) -> Manager {
        Manager {
            shared,
            running: HashMap::new(),
            next_output_id: FIRST_OUTPUT_ID,
        }
    }

    fn run(mut self, events: &Receiver<Event>) {
        let mut next_check = Instant::now() + RECONCILE;
        loop {
            match events.recv_timeout(POLL) {
                Ok(Event::PublishStarted { key, .. }) => self.start(&key),
                Ok(Event::PublishStopped(summary)) => self.stop(&summary.record.key),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.shared.shutting_down.load(Ordering::Relaxed) {
                break;
            }
            // However busy the channel, events it dropped (it is bounded)
            // are made up for.
            if Instant::now() >= next_check {
                self.reconcile();
                next_check = Instant::now() + RECONCILE;
            }
        }
        // Relays end with their streams at shutdown; this makes sure none
        // waits in its backoff or in a write to a slow destination.
        for key in self.running.keys().cloned().collect::<Vec<_>>() {
            self.stop(&key);
        }
    }

    /// Stops the relays of streams no longer live and starts relays for
    /// live streams that have none.
    fn reconcile(&mut self) {
        let registry = &self.shared.registry;
        let ended: Vec<String> = self
            .running
            .keys()
            .filter(|path| registry.get(path).is_none_or(|s| !s.is_live()))
            .cloned()
            .collect();
        for path in ended {
            self.stop(&path);
        }
        for stream in self.shared.registry.streams() {
            if stream.is_live() && !self.running.contains_key(stream.path()) {
                self.start(stream.path());
            }
        }
    }

    /// Starts the relays of a session that began on `path`.
    fn start(&mut self, path: &str) {
        self.stop(path);
        // The stream knows its application and name apart (a name may
        // hold a `/`).
        let Some(key) = self.shared.registry.get(path).map(|s| s.key().clone()) else {
            return;
        };
        let mut flags = Vec::new();
        let urls = self.shared.config.relays.destinations(&key);
        let labels: Vec<String> = urls.iter().map(ToString::to_string).collect();
        for (n, url) in urls.into_iter().enumerate() {
            let control = Arc::new(Stopper::default());
            // Destinations that show alike (names cut short) get their
            // place in the list, so the API and Prometheus tell them apart.
            let label = &labels[n];
            let label = match labels.iter().filter(|l| *l == label).count() {
                1 => label.clone(),
                _ => format!("{label} #{}", n + 1),
            };
            let entry = self.shared.relays.add(&key.as_path(), label);
            let relay = Relay {
                shared: Arc::clone(&self.shared),
                key: key.clone(),
                url,
                output_id: self.next_output_id,
                control: Arc::clone(&control),
                entry: Arc::clone(&entry),
            };
            self.next_output_id += 1;
            let spawned = thread::Builder::new()
                .name("relay".into())
                .spawn(move || relay.run());
            match spawned {
                Ok(_) => flags.push(control),
                Err(e) => {
                    // The relay, dropped unrun, is still listed: unlist it.
                    self.shared.relays.remove(&entry);
                    log::warn!("relay of {key} not started: cannot start a thread: {e}")
                }
            }
        }
        // Recorded even when empty, so that `reconcile` does not retry.
        self.running.insert(path.to_owned(), flags);
    }

    /// Stops the relays of `path`'s session.
    fn stop(&mut self, path: &str) {
        for control in self.running.remove(path).unwrap_or_default() {
            control.stop();
        }
    }
}
