//! The health of a source's inputs and the choice of the one players get:
//! an input is healthy while it sends media (none for `-input-timeout`
//! degrades it, as does an error), the preferred healthy input is chosen,
//! a higher-priority input takes over again once healthy for
//! `-failback-delay`, and a manual override holds until its input
//! degrades. Plain logic over instants given by the caller: no clock, no
//! IO.

use std::time::{Duration, Instant, SystemTime};

/// What an input is doing, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputStatus {
    /// Not connected, or connected and not sending yet.
    Idle,
    /// The one players get.
    Active,
    /// Healthy, not selected.
    Standby,
    /// Timed out or failed; see its last error.
    Degraded,
}

impl InputStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InputStatus::Idle => "idle",
            InputStatus::Active => "active",
            InputStatus::Standby => "standby",
            InputStatus::Degraded => "degraded",
        }
    }

    pub const ALL: [InputStatus; 4] = [
        InputStatus::Idle,
        InputStatus::Active,
        InputStatus::Standby,
        InputStatus::Degraded,
    ];
}

/// Longest error text kept per input.
const MAX_ERROR_CHARS: usize = 200;

/// One input's health.
#[derive(Debug, Clone, Default)]
pub struct InputHealth {
    /// A publisher is on it, or its pull is connected.
    connected: bool,
    last_media: Option<Instant>,
    pub last_media_at: Option<SystemTime>,
    /// Since when it has been sending without a pause (for failback).
    healthy_since: Option<Instant>,
    /// Since it connected (a connection that never sends is degraded too).
    connected_since: Option<Instant>,
    degraded: bool,
    pub last_error: Option<(String, SystemTime)>,
}

impl InputHealth {
    pub fn connected(&mut self, now: Instant) {
        self.connected = true;
        self.connected_since = Some(now);
        self.healthy_since = None;
        self.last_media = None;
    }

    /// Its publisher or pull went away: idle, not in error.
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.connected_since = None;
        self.healthy_since = None;
        self.degraded = false;
    }

    /// It failed: degraded until it sends media again.
    pub fn failed(&mut self, error: &str) {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        self.last_error = Some((error, SystemTime::now()));
        self.degraded = true;
        self.healthy_since = None;
    }

    /// Media arrived.
    pub fn media(&mut self, now: Instant) {
        if !self.connected {
            self.connected(now);
        }
        if self.degraded || self.healthy_since.is_none() {
            self.degraded = false;
            self.healthy_since = Some(now);
        }
        self.last_media = Some(now);
        self.last_media_at = Some(SystemTime::now());
    }

    /// Degrades it if it has been silent for `timeout`; true if it just
    /// was.
    pub fn check(&mut self, now: Instant, timeout: Duration) -> bool {
        if !self.connected || self.degraded {
            return false;
        }
        let since = self.last_media.or(self.connected_since);
        if since.is_some_and(|t| now.saturating_duration_since(t) >= timeout) {
            let what = if self.last_media.is_some() {
                "no media for"
            } else {
                "connected, but no media for"
            };
            self.failed(&format!("{what} {}", show_duration(timeout)));
            return true;
        }
        false
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_healthy(&self) -> bool {
        self.connected && !self.degraded && self.healthy_since.is_some()
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// How long it has been healthy.
    fn healthy_for(&self, now: Instant) -> Option<Duration> {
        self.healthy_since
            .filter(|_| self.is_healthy())
            .map(|t| now.saturating_duration_since(t))
    }

    pub fn status(&self, active: bool) -> InputStatus {
        match () {
            _ if active => InputStatus::Active,
            _ if self.degraded => InputStatus::Degraded,
            _ if self.is_healthy() => InputStatus::Standby,
            _ => InputStatus::Idle,
        }
    }
}

/// `3s`, `500ms`.
pub fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Why the chosen input changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// The stream starts (or restarts after being exhausted).
    Start,
    /// The active input degraded or left.
    Failover,
    /// A preferred input is healthy again.
    Failback,
    /// Asked for through the API.
    Manual,
}

impl SwitchReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Start => "start",
            SwitchReason::Failover => "failover",
            SwitchReason::Failback => "failback",
            SwitchReason::Manual => "manual",
        }
    }
}

/// Which input should feed the stream, and why it would change.
pub fn choose(
    inputs: &[InputHealth],
    active: Option<usize>,
    forced: Option<usize>,
    now: Instant,
    failback_delay: Duration,
) -> Option<(usize, SwitchReason)> {
    let healthy = |i: usize| inputs.get(i).is_some_and(InputHealth::is_healthy);
    if let Some(n) = forced.filter(|&n| healthy(n)) {
        return Some((n, SwitchReason::Manual));
    }
    match active {
        Some(a) if healthy(a) => {
            let preferred = (0..a).find(|&i| {
                inputs[i]
                    .healthy_for(now)
                    .is_some_and(|d| d >= failback_delay)
            });
            Some(match preferred {
                Some(i) => (i, SwitchReason::Failback),
                // Staying (or coming back from a forced input to the one
                // chosen by priority is no failback).
                None => (a, SwitchReason::Failover),
            })
        }
        Some(_) => (0..inputs.len())
            .find(|&i| healthy(i))
            .map(|i| (i, SwitchReason::Failover)),
        None => (0..inputs.len())
            .find(|&i| healthy(i))
            .map(|i| (i, SwitchReason::Start)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(3);
    const FAILBACK: Duration = Duration::from_secs(5);

    fn sending(now: Instant) -> InputHealth {
        let mut h = InputHealth::default();
        h.media(now);
        h
    }

    #[test]
    fn silence_degrades_and_media_heals() {
        let t0 = Instant::now();
        let mut h = sending(t0);
        assert_eq!(h.status(false), InputStatus::Standby);
        assert!(!h.check(t0 + Duration::from_secs(2), TIMEOUT));
        assert!(h.check(t0 + TIMEOUT, TIMEOUT));
        assert!(!h.check(t0 + TIMEOUT * 2, TIMEOUT), "told once");
        assert_eq!(h.status(false), InputStatus::Degraded);
        assert_eq!(h.last_error.as_ref().unwrap().0, "no media for 3s");
        h.media(t0 + TIMEOUT * 2);
        assert!(h.is_healthy());
        h.disconnected();
        assert_eq!(h.status(false), InputStatus::Idle);
        let mut silent = InputHealth::default();
        silent.connected(t0);
        assert_eq!(silent.status(false), InputStatus::Idle);
        assert!(silent.check(t0 + TIMEOUT, TIMEOUT));
        assert!(silent.last_error.unwrap().0.starts_with("connected, but"));
    }

    #[test]
    fn prefers_the_first_healthy_and_fails_back_after_the_delay() {
        let t0 = Instant::now();
        let mut inputs = vec![InputHealth::default(), sending(t0)];
        assert_eq!(
            choose(&inputs, None, None, t0, FAILBACK),
            Some((1, SwitchReason::Start))
        );
        inputs[0].media(t0 + Duration::from_secs(1));
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            choose(&inputs, Some(1), None, at(5), FAILBACK).unwrap().0,
            1
        );
        assert_eq!(
            choose(&inputs, Some(1), None, at(6), FAILBACK),
            Some((0, SwitchReason::Failback))
        );
        inputs[0].failed("gone");
        assert_eq!(
            choose(&inputs, Some(0), None, at(6), FAILBACK),
            Some((1, SwitchReason::Failover))
        );
        inputs[1].disconnected();
        assert_eq!(choose(&inputs, Some(0), None, at(6), FAILBACK), None);
    }

    #[test]
    fn an_override_holds_until_its_input_degrades() {
        let t0 = Instant::now();
        let mut inputs = vec![sending(t0), sending(t0)];
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            choose(&inputs, Some(1), Some(1), later, FAILBACK),
            Some((1, SwitchReason::Manual))
        );
        inputs[1].failed("stalled");
        assert_eq!(
            choose(&inputs, Some(1), Some(1), later, FAILBACK),
            Some((0, SwitchReason::Failover))
        );
    }
}
