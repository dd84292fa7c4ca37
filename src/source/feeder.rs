//! A source's thread: it takes every input's media through a tap (an
//! output of the input's stream, bounded like any), keeps each input's
//! health and latest metadata and sequence headers, and feeds the chosen
//! input into the source's stream. A switch happens on the new input's
//! keyframe: its metadata and headers first (when they differ), then its
//! media on a rebased timeline. It opens pulls when players need them and
//! closes them when they have not for `-pull-idle-timeout`; when nothing
//! is healthy, the stream's players wait `-exhausted-timeout`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::board::{Control, InputView, SourceEntry, SourceView};
use super::health::{self, InputHealth, SwitchReason};
use super::inputs::{Feed, Headers};
use super::spec::SourceSettings;
use super::timeline::Timeline;
use crate::hub::doorbell::Doorbell;
use crate::hub::events::Event;
use crate::hub::history::{EndReason, SwitchRecord};
use crate::hub::output::Outbound;
use crate::hub::packet::{Packet, PacketKind};
use crate::hub::stream::Stream;
use crate::metrics;
use crate::record;
use crate::server::Shared;

/// Longest the thread sleeps between looks at its inputs' health.
const TICK: Duration = Duration::from_millis(100);
/// Items taken from one input per round, so that one cannot starve the
/// others.
const MAX_BATCH: usize = 256;

pub(super) struct Feeder {
    pub shared: Arc<Shared>,
    pub entry: Arc<SourceEntry>,
    pub settings: SourceSettings,
    /// The source's stream, which players play.
    pub stream: Arc<Stream>,
    pub inputs: Vec<Feed>,
    pub bell: Arc<Doorbell>,
    /// The input players get now, and its id as the stream's input (its
    /// publisher's connection, or its tap's id for a pull).
    active: Option<usize>,
    attached: u64,
    /// The input to switch to at its next keyframe, and why.
    pending: Option<(usize, SwitchReason)>,
    /// The input forced through the API.
    forced: Option<usize>,
    /// The input that was active before the stream was exhausted.
    last_active: Option<usize>,
    timeline: Timeline,
    exhausted_since: Option<Instant>,
    /// The metadata and headers the stream sent last.
    sent: Headers,
}

impl Feeder {
    pub fn new(
        shared: Arc<Shared>,
        entry: Arc<SourceEntry>,
        stream: Arc<Stream>,
        inputs: Vec<Feed>,
        bell: Arc<Doorbell>,
    ) -> Feeder {
        Feeder {
            settings: shared.config.sources.clone(),
            shared,
            entry,
            stream,
            inputs,
            bell,
            active: None,
            attached: 0,
            pending: None,
            forced: None,
            last_active: None,
            timeline: Timeline::default(),
            exhausted_since: None,
            sent: Headers::default(),
        }
    }

    fn key(&self) -> String {
        self.stream.key().to_string()
    }

    pub fn run(mut self) {
        let now = Instant::now();
        for feed in &mut self.inputs {
            feed.tap_in(&self.shared, &self.bell, now);
        }
        while !self.shared.shutting_down.load(Ordering::Relaxed) {
            self.bell.wait(TICK);
            let now = Instant::now();
            for i in 0..self.inputs.len() {
                self.drain(i, now);
            }
            while let Ok(control) = self.entry.controls().try_recv() {
                let Control::Force(input) = control;
                self.forced = input;
                match input {
                    Some(n) => log::info!("{}: input {n} forced through the API", self.key()),
                    None => log::info!("{}: input chosen by priority again", self.key()),
                }
            }
            self.evaluate(now);
            self.show(now);
        }
        for feed in &mut self.inputs {
            feed.stop(&self.shared);
        }
    }

    /// Takes what input `i` queued.
    fn drain(&mut self, i: usize, now: Instant) {
        for _ in 0..MAX_BATCH {
            let item = match self.inputs[i].take() {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(_) => {
                    // Dropped by its stream (it fell behind): join again.
                    log::warn!("{}: input {i} tap dropped; joining again", self.key());
                    self.inputs[i].tap_in(&self.shared, &self.bell, now);
                    return;
                }
            };
            match item {
                Outbound::Media(packet) => self.take(i, packet, now),
                Outbound::PublishStarted => self.inputs[i].started(now),
                Outbound::PublishEnded => {
                    self.inputs[i].ended();
                    if self.active == Some(i) {
                        log::info!("{}: input {i} ({}) left", self.key(), self.inputs[i]);
                        // Let go of it now: if its encoder comes back
                        // before another input's keyframe, that is a new
                        // input to switch to (its own timeline and id).
                        self.detach_active();
                        self.evaluate(now);
                    }
                }
            }
        }
    }

    /// A packet of input `i`.
    fn take(&mut self, i: usize, packet: Arc<Packet>, now: Instant) {
        let feed = &mut self.inputs[i];
        feed.note(&packet, now);
        if self.active.is_none() && self.pending.is_none() && feed.starts_at(&packet) {
            // Nothing plays: choose now, so that the stream starts on this
            // keyframe (a pull's first, from its upstream's GOP cache)
            // rather than the next.
            self.evaluate(now);
        }
        let feed = &self.inputs[i];
        if self.active == Some(i) {
            self.forward(&packet);
        } else if let Some((target, reason)) = self.pending
            && target == i
            && feed.starts_at(&packet)
        {
            self.switch(i, reason, &packet);
            self.forward(&packet);
        }
    }

    /// Sends a packet of the active input on, at its rebased time.
    fn forward(&mut self, packet: &Packet) {
        let Some(active) = self.active else {
            return;
        };
        if packet.sequence_header {
            // Metadata and headers go where the stream is (encoders and
            // servers send them at 0 as often as not: no jump to rebase).
            self.sent = self.inputs[active].headers.clone();
            self.send_header(packet, self.timeline.now());
            return;
        }
        let Some(at) = self.timeline.map(packet.kind, packet.timestamp) else {
            return;
        };
        self.stream.publish(self.attached, packet.retimed(at));
    }

    /// Sends metadata or a sequence header at `at`.
    fn send_header(&self, packet: &Packet, at: u32) {
        let retimed = packet.retimed(at);
        if packet.kind == PacketKind::Data {
            self.stream.set_metadata(self.attached, retimed);
        } else {
            self.stream.publish(self.attached, retimed);
        }
    }

    /// Makes input `to` the active one, from `first` (its keyframe).
    fn switch(&mut self, to: usize, reason: SwitchReason, first: &Packet) {
        let key = self.key();
        let was_live = self.stream.is_live();
        if !was_live {
            self.timeline.reset();
            self.sent = Headers::default();
            self.last_active = None;
        }
        let from = self.active.or(self.last_active);
        // Back from exhausted: the stream goes on, from another input.
        let reason = match reason {
            SwitchReason::Start if was_live => SwitchReason::Failover,
            reason => reason,
        };
        self.detach_active();
        let feed = &self.inputs[to];
        self.attached = feed.input_id();
        self.stream.attach_input(self.attached, feed.remote_addr());
        if !was_live {
            // Before any media, so that a recording misses nothing.
            record::attach(&self.shared, &self.stream);
        }
        self.active = Some(to);
        self.last_active = Some(to);
        self.pending = None;
        let at = self.timeline.switch(first.timestamp);
        // The new input's metadata and headers, where they differ.
        let headers = feed.headers.clone();
        for (new, old) in [
            (&headers.metadata, &self.sent.metadata),
            (&headers.video, &self.sent.video),
            (&headers.audio, &self.sent.audio),
        ] {
            if let Some(header) = new.as_ref().filter(|_| !Headers::same(new, old)) {
                self.send_header(header, at);
            }
        }
        self.sent = headers;
        let label = |i: usize| (i, self.inputs[i].spec.label());
        let restored = self.exhausted_since.take().is_some();
        log::info!(
            "{key}: input {to} ({}) active ({})",
            self.inputs[to],
            reason.as_str()
        );
        if was_live {
            metrics::add(&self.shared.metrics.input_switches, 1);
            self.stream.record_switch(SwitchRecord {
                from,
                to,
                reason: reason.as_str(),
                at: SystemTime::now(),
            });
            self.shared.events.emit(|| Event::InputSwitched {
                key: self.stream.path().to_owned(),
                from: from.map(label),
                to: label(to),
                reason: reason.as_str(),
            });
        }
        if restored {
            self.shared.events.emit(|| Event::StreamRestored {
                key: self.stream.path().to_owned(),
                input: label(to),
            });
        }
    }

    /// Looks at health, pulls, the choice of input and the exhausted
    /// timer.
    fn evaluate(&mut self, now: Instant) {
        let timeout = self.settings.input_timeout;
        let key = self.key();
        for (i, feed) in self.inputs.iter_mut().enumerate() {
            feed.poll_pull();
            if feed.health.check(now, timeout) {
                log::warn!(
                    "{key}: input {i} ({feed}) degraded: no media for {}",
                    health::show_duration(timeout)
                );
            }
        }
        let demand = self.stream.player_count() > 0;
        self.manage_pulls(now, demand);
        let healths: Vec<InputHealth> = self.inputs.iter().map(|f| f.health.clone()).collect();
        if let Some(n) = self.forced
            && !healths[n].is_healthy()
        {
            log::info!("{key}: forced input {n} is not healthy; choosing by priority");
            self.forced = None;
        }
        let choice = health::choose(
            &healths,
            self.active,
            self.forced,
            now,
            self.settings.failback_delay,
        );
        match choice {
            Some((target, reason)) if Some(target) != self.active => {
                self.pending = Some((target, reason));
            }
            Some(_) => self.pending = None,
            None => {
                self.pending = None;
                self.exhaust(now, demand);
            }
        }
        if let Some(since) = self.exhausted_since
            && now.saturating_duration_since(since) >= self.settings.exhausted_timeout
        {
            log::info!("{key}: no input came back; the stream ends");
            self.end(EndReason::SourceExhausted);
        }
    }

    /// Nothing is healthy: players wait for an input to come back, or the
    /// session ends at once when no player does.
    fn exhaust(&mut self, now: Instant, demand: bool) {
        if !self.stream.is_live() {
            return;
        }
        if !demand {
            self.end(EndReason::SourceIdle);
            return;
        }
        self.detach_active();
        if self.exhausted_since.is_none() {
            log::warn!("{}: every input is down; players wait", self.key());
            self.exhausted_since = Some(now);
            self.shared.events.emit(|| Event::StreamExhausted {
                key: self.stream.path().to_owned(),
            });
        }
    }

    /// The stream no longer takes the active input's packets (the
    /// session stays open).
    fn detach_active(&mut self) {
        if self.active.take().is_some() {
            self.stream.detach_input(self.attached);
        }
    }

    /// Ends the stream's session; its record goes to the history.
    fn end(&mut self, reason: EndReason) {
        self.detach_active();
        if let Some(record) = self.stream.end_session(reason) {
            self.shared.registry.history().push(record);
        }
        self.exhausted_since = None;
        self.last_active = None;
    }

    /// Opens the pulls players need: each pulled input before the first
    /// healthy one (and a forced one); closes those not needed for
    /// `-pull-idle-timeout`.
    fn manage_pulls(&mut self, now: Instant, demand: bool) {
        let idle_timeout = self.settings.pull_idle_timeout;
        let mut healthy_before = false;
        let key = self.key();
        for i in 0..self.inputs.len() {
            // The active input stays until the switch away from it.
            let keep = self.forced == Some(i) || self.active == Some(i);
            let wanted = demand && (!healthy_before || keep);
            let feed = &mut self.inputs[i];
            healthy_before |= feed.health.is_healthy();
            if !feed.spec.is_pull() {
                continue;
            }
            if wanted {
                feed.start_pull(&self.shared, &key);
            } else if feed.unwanted_for(now) >= idle_timeout && feed.stop_pull() {
                log::info!(
                    "{key}: pull of input {i} closed: not needed for {}",
                    health::show_duration(idle_timeout)
                );
            }
        }
    }

    /// Shows the source on the board.
    fn show(&self, now: Instant) {
        let inputs: Vec<InputView> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, f)| f.view(self.active == Some(i), now))
            .collect();
        let healthy = self.inputs.iter().any(|f| f.health.is_healthy());
        let pulling = self.inputs.iter().any(Feed::pulling);
        let has_pulls = self.inputs.iter().any(|f| f.spec.is_pull());
        self.entry.set_view(SourceView {
            inputs,
            active: self.active,
            forced: self.forced,
            exhausted: self.exhausted_since.is_some(),
            switch_count: self.stream.switch_count(),
            needs_pull: has_pulls && !healthy && !pulling,
        });
    }
}
