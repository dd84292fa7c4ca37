//! Hooks: telling other programs what happens. Lifecycle events become
//! payloads ([`payload`]) for scripts (`-hook-script EVENT=PATH`), webhooks
//! (`-hook-webhook EVENT=URL`) and standard output (`-hook-stdio-format`).
//! The RTMP path never waits for them: events reach the hooks' thread on
//! a bounded channel, each hook has a bounded queue of runs, and what does
//! not fit is dropped and counted. Each hook gets its events in order, one
//! run at a time; different hooks run in parallel, at most
//! `-hook-concurrency` at once. Every run ends by `-hook-timeout`.

pub mod payload;
pub mod run;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use self::payload::{HOOK_EVENTS, Payload};
use self::run::Outcome;
use crate::auth::callback::shown_url;
use crate::hub::events::{Event, Events};
use crate::metrics::{self, Metrics};

/// Events waiting for the hooks' thread.
const EVENT_QUEUE: usize = 1024;
/// Runs waiting per hook; more are dropped and counted.
pub const HOOK_QUEUE: usize = 256;

/// `-hook-stdio-format`: events on standard output, one per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioFormat {
    Json,
    Env,
}

/// Which events a hook is for: one, or `*` for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Only(&'static str),
}

impl EventFilter {
    /// `*` or one of [`HOOK_EVENTS`]; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<EventFilter> {
        if name == "*" {
            return Some(EventFilter::All);
        }
        HOOK_EVENTS
            .iter()
            .find(|known| **known == name)
            .map(|known| EventFilter::Only(known))
    }

    fn matches(self, event_type: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(name) => name == event_type,
        }
    }
}

/// What a hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookTarget {
    Script(PathBuf),
    Webhook(String),
}

impl HookTarget {
    /// As logs show it: a script's path, a webhook's URL without query.
    fn label(&self) -> String {
        match self {
            HookTarget::Script(path) => format!("script {}", path.display()),
            HookTarget::Webhook(url) => format!("webhook {}", shown_url(url)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    pub hooks: Vec<(EventFilter, HookTarget)>,
    pub stdio: Option<StdioFormat>,
    pub timeout: Duration,
    pub concurrency: usize,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            hooks: Vec::new(),
            stdio: None,
            timeout: Duration::from_secs(30),
            concurrency: 10,
        }
    }
}

/// One hook's runs waiting, in order.
struct HookQueue {
    filter: EventFilter,
    target: HookTarget,
    pending: Mutex<VecDeque<Arc<Payload>>>,
    /// In the ready channel or running: its next run is taken care of.
    scheduled: AtomicBool,
}

struct Hooks {
    queues: Vec<HookQueue>,
    /// Hooks with runs waiting (each at most once).
    ready: Sender<usize>,
    metrics: Arc<Metrics>,
    timeout: Duration,
    agent: ureq::Agent,
    /// The events stopped (the server is gone): workers leave.
    closed: AtomicBool,
}

/// Lets the server wait, at shutdown, for the last events' hooks.
pub struct HookDrain {
    hooks: Arc<Hooks>,
    events: Receiver<Event>,
    stdio: Option<Sender<Arc<Payload>>>,
}

impl HookDrain {
    /// Whether every event so far has been handed to its hooks and every
    /// run has ended.
    fn idle(&self) -> bool {
        self.events.is_empty()
            && self.stdio.as_ref().is_none_or(Sender::is_empty)
            && self
                .hooks
                .queues
                .iter()
                .all(|q| !q.scheduled.load(Ordering::Acquire) && q.pending.lock().is_empty())
    }

    /// Waits until idle, for at most `limit`. Idle twice in a row: an
    /// event just taken from the channel is not in a queue yet.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        let mut idle_polls = 0;
        while idle_polls < 2 && std::time::Instant::now() < deadline {
            idle_polls = if self.idle() { idle_polls + 1 } else { 0 };
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts the hooks' threads if any hook is set.
pub fn start(
    events: &Events,
    metrics: Arc<Metrics>,
    settings: &HookSettings,
) -> io::Result<Option<HookDrain>> {
    if settings.hooks.is_empty() && settings.stdio.is_none() {
        return Ok(None);
    }
    let rx = events.subscribe_counting("hooks", EVENT_QUEUE, Some(|m| &m.hooks_dropped));
    let stdio = match settings.stdio {
        Some(format) => {
            let (tx, rx) = crossbeam_channel::bounded(HOOK_QUEUE);
            let metrics = Arc::clone(&metrics);
            spawn("hook-stdio", move || write_stdio(&rx, format, &metrics))?;
            Some(tx)
        }
        None => None,
    };
    let (ready, ready_rx) = crossbeam_channel::bounded(settings.hooks.len().max(1));
    let hooks = Arc::new(Hooks {
        queues: settings
            .hooks
            .iter()
            .map(|(filter, target)| HookQueue {
                filter: *filter,
                target: target.clone(),
                pending: Mutex::new(VecDeque::new()),
                scheduled: AtomicBool::new(false),
            })
            .collect(),
        ready,
        metrics,
        timeout: settings.timeout,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent(),
        closed: AtomicBool::new(false),
    });
    let workers = if settings.hooks.is_empty() {
        0
    } else {
        settings.concurrency.min(settings.hooks.len())
    };
    for n in 0..workers {
        let (hooks, ready_rx) = (Arc::clone(&hooks), ready_rx.clone());
        spawn(&format!("hook-{n}"), move || {
            while !hooks.closed.load(Ordering::Acquire) {
                if let Ok(index) = ready_rx.recv_timeout(Duration::from_secs(1)) {
                    hooks.run_next(index);
                }
            }
        })?;
    }
    let drain = HookDrain {
        hooks: Arc::clone(&hooks),
        events: rx.clone(),
        stdio: stdio.clone(),
    };
    spawn("hooks", move || {
        for event in rx {
            hooks.dispatch(&event, stdio.as_ref());
        }
        hooks.closed.store(true, Ordering::Release);
    })?;
    Ok(Some(drain))
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(work)
        .map(drop)
}

impl Hooks {
    /// Queues `event` for every hook that wants it, without waiting.
    fn dispatch(&self, event: &Event, stdio: Option<&Sender<Arc<Payload>>>) {
        let Some(payload) = Payload::from_event(event, SystemTime::now()) else {
            return;
        };
        let payload = Arc::new(payload);
        if let Some(stdio) = stdio
            && stdio.try_send(Arc::clone(&payload)).is_err()
        {
            metrics::add(&self.metrics.hooks_dropped, 1);
        }
        for (index, queue) in self.queues.iter().enumerate() {
            if !queue.filter.matches(payload.event_type) {
                continue;
            }
            let mut pending = queue.pending.lock();
            if pending.len() >= HOOK_QUEUE {
                metrics::add(&self.metrics.hooks_dropped, 1);
                log::debug!(
                    "{} behind: {} dropped",
                    queue.target.label(),
                    payload.event_type
                );
                continue;
            }
            pending.push_back(Arc::clone(&payload));
            drop(pending);
            self.schedule(index);
        }
    }

    /// Puts hook `index` in the ready channel unless it is there or
    /// running. Never blocks: the channel holds every hook once.
    fn schedule(&self, index: usize) {
        if let Some(queue) = self.queues.get(index)
            && !queue.scheduled.swap(true, Ordering::AcqRel)
        {
            let _ = self.ready.try_send(index);
        }
    }

    /// Runs hook `index`'s oldest waiting run, then schedules it again if
    /// more wait.
    fn run_next(&self, index: usize) {
        let Some(queue) = self.queues.get(index) else {
            return;
        };
        let next = queue.pending.lock().pop_front();
        if let Some(payload) = next {
            self.run(&queue.target, &payload);
        }
        // Let go, then look again: a run queued meanwhile saw the hook
        // scheduled and left it to this thread.
        queue.scheduled.store(false, Ordering::Release);
        if !queue.pending.lock().is_empty() {
            self.schedule(index);
        }
    }

    fn run(&self, target: &HookTarget, payload: &Payload) {
        metrics::add(&self.metrics.hooks_fired, 1);
        let outcome = match target {
            HookTarget::Script(path) => run::run_script(path, payload, self.timeout),
            HookTarget::Webhook(url) => run::post_webhook(&self.agent, url, payload, self.timeout),
        };
        let label = target.label();
        match outcome {
            Outcome::Done => log::debug!("{label} ran for {}", payload.event_type),
            Outcome::Failed(why) => {
                metrics::add(&self.metrics.hooks_failed, 1);
                log::warn!("{label} failed for {}: {why}", payload.event_type);
            }
            Outcome::TimedOut => {
                metrics::add(&self.metrics.hooks_timed_out, 1);
                log::warn!(
                    "{label} stopped for {}: still running at -hook-timeout {:?}",
                    payload.event_type,
                    self.timeout
                );
            }
        }
    }
}

/// Writes each payload as a line on standard output.
fn write_stdio(rx: &Receiver<Arc<Payload>>, format: StdioFormat, metrics: &Metrics) {
    for payload in rx {
        metrics::add(&metrics.hooks_fired, 1);
        let line = match format {
            StdioFormat::Json => payload.to_json(),
            StdioFormat::Env => payload.env_line(),
        };
        let mut out = io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            metrics::add(&metrics.hooks_failed, 1);
        }
    }
}

#[cfg(test)]
mod tests;
