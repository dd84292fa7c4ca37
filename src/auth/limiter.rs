//! Slowing down guessers: an address whose publish or play requests were
//! refused recently waits before its next answer, longer with each
//! refusal (up to a cap), so trying tokens one after another is slow. The
//! table of addresses is bounded: past its size the stalest entry goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Addresses remembered at most.
pub const MAX_TRACKED: usize = 4096;
/// A refusal counts this long.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Refusals an address may have before its answers slow down.
const FREE_FAILURES: u32 = 2;
/// The first delay, doubled with each refusal after, up to the cap.
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Refusals by address, for the delay before answering.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl FailureLimiter {
    /// How long to wait before answering `addr` (zero when it has not
    /// been refused lately), as of `now`.
    pub fn delay(&self, addr: IpAddr, now: Instant) -> Duration {
        let records = self.records.lock();
        let Some(record) = records.get(&addr) else {
            return Duration::ZERO;
        };
        if now.saturating_duration_since(record.last) > FORGET_AFTER {
            return Duration::ZERO;
        }
        match record.failures.checked_sub(FREE_FAILURES) {
            None | Some(0) => Duration::ZERO,
            Some(over) => FIRST_DELAY
                .saturating_mul(1 << (over - 1).min(8))
                .min(MAX_DELAY),
        }
    }

    /// Counts a refusal of `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut records = self.records.lock();
        if !records.contains_key(&addr) && records.len() >= MAX_TRACKED {
            records.retain(|_, r| now.saturating_duration_since(r.last) <= FORGET_AFTER);
            if records.len() >= MAX_TRACKED
                && let Some(stalest) = records.iter().min_by_key(|(_, r)| r.last).map(|(a, _)| *a)
            {
                records.remove(&stalest);
            }
        }
        let record = records.entry(addr).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(record.last) > FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.records.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn delays_grow_with_refusals_up_to_a_cap_and_are_forgotten() {
        let limiter = FailureLimiter::default();
        let t = Instant::now();
        let addr = ip(1);
        let mut delays = Vec::new();
        for _ in 0..10 {
            delays.push(limiter.delay(addr, t));
            limiter.failed(addr, t);
        }
        assert_eq!(delays[..3], [Duration::ZERO; 3]);
        assert_eq!(delays[3], FIRST_DELAY);
        assert_eq!(delays[4], FIRST_DELAY * 2);
        assert_eq!(delays[9], MAX_DELAY);
        assert_eq!(limiter.delay(ip(2), t), Duration::ZERO, "others unaffected");
        let later = t + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(limiter.delay(addr, later), Duration::ZERO);
        limiter.failed(addr, later);
        assert_eq!(limiter.delay(addr, later), Duration::ZERO, "counting anew");
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = FailureLimiter::default();
        let t = Instant::now();
        for n in 0..(MAX_TRACKED as u32 * 3) {
            limiter.failed(ip(n), t + Duration::from_millis(n as u64));
        }
        assert_eq!(limiter.tracked(), MAX_TRACKED);
        let last = ip(MAX_TRACKED as u32 * 3 - 1);
        for _ in 0..5 {
            limiter.failed(last, t + Duration::from_secs(100));
        }
        assert!(limiter.delay(last, t + Duration::from_secs(100)) > Duration::ZERO);
    }
}
