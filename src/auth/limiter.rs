//! Slowing down guessers: after a few refusals in a minute, each request
//! from that address waits for its turn before it is answered, turns
//! spaced further apart with each refusal (up to a cap), so that parallel
//! connections queue up rather than guess at once; an address that would
//! wait too long is refused without being checked. IPv6 addresses count
//! by their /64, what one host usually has. The table of addresses is
//! bounded: past its size the stalest entry goes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Addresses remembered at most.
pub const MAX_TRACKED: usize = 4096;
/// A refusal counts this long.
pub const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Refusals an address may have before its answers slow down.
pub const FREE_FAILURES: u32 = 3;
/// The first spacing, doubled with each refusal after, up to the cap.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// A request that would wait longer than this is refused at once.
pub const MAX_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    /// The earliest time the next request may be answered.
    next_turn: Instant,
}

impl Record {
    fn spacing(&self) -> Duration {
        match self.failures.checked_sub(FREE_FAILURES) {
            None => Duration::ZERO,
            Some(over) => FIRST_DELAY.saturating_mul(1 << over.min(8)).min(MAX_DELAY),
        }
    }
}

/// When a request may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// After this wait (zero: at once).
    After(Duration),
    /// Not at all: the address has too many requests waiting.
    Refused,
}

/// Refusals by address, for the wait before answering.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    records: Mutex<HashMap<IpAddr, Record>>,
}

/// The key an address counts under: itself, or its /64 for IPv6.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

impl FailureLimiter {
    /// Takes the next turn of `addr` as of `now`: how long its request
    /// waits before it is checked and answered.
    pub fn turn(&self, addr: IpAddr, now: Instant) -> Turn {
        let mut records = self.records.lock();
        let Some(record) = records.get_mut(&key(addr)) else {
            return Turn::After(Duration::ZERO);
        };
        let spacing = record.spacing();
        if spacing.is_zero() || now.saturating_duration_since(record.last) > FORGET_AFTER {
            return Turn::After(Duration::ZERO);
        }
        let turn = record.next_turn.max(now) + spacing;
        let wait = turn - now;
        if wait > MAX_WAIT {
            return Turn::Refused;
        }
        record.next_turn = turn;
        Turn::After(wait)
    }

    /// Counts a refusal of `addr`.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let addr = key(addr);
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
            next_turn: now,
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

    fn wait(turn: Turn) -> Duration {
        match turn {
            Turn::After(wait) => wait,
            Turn::Refused => panic!("refused"),
        }
    }

    #[test]
    fn waits_grow_with_refusals_up_to_a_cap_and_are_forgotten() {
        let limiter = FailureLimiter::default();
        let mut t = Instant::now();
        let addr = ip(1);
        let mut waits = Vec::new();
        for _ in 0..10 {
            let w = wait(limiter.turn(addr, t));
            waits.push(w);
            t += w;
            limiter.failed(addr, t);
        }
        assert_eq!(waits[..3], [Duration::ZERO; 3]);
        assert_eq!(waits[3], FIRST_DELAY);
        assert_eq!(waits[4], FIRST_DELAY * 2);
        assert_eq!(waits[9], MAX_DELAY);
        assert_eq!(limiter.turn(ip(2), t), Turn::After(Duration::ZERO));
        let later = t + FORGET_AFTER + Duration::from_secs(10);
        assert_eq!(limiter.turn(addr, later), Turn::After(Duration::ZERO));
        limiter.failed(addr, later);
        assert_eq!(
            limiter.turn(addr, later),
            Turn::After(Duration::ZERO),
            "counting anew"
        );
    }

    #[test]
    fn parallel_requests_queue_up_and_too_many_are_refused() {
        let limiter = FailureLimiter::default();
        let t = Instant::now();
        for _ in 0..4 {
            limiter.failed(ip(1), t);
        }
        let step = FIRST_DELAY * 2;
        let turns: Vec<Turn> = (0..12).map(|_| limiter.turn(ip(1), t)).collect();
        for (n, turn) in turns.iter().enumerate() {
            let due = step * (n as u32 + 1);
            if due <= MAX_WAIT {
                assert_eq!(*turn, Turn::After(due), "request {n}");
            } else {
                assert_eq!(*turn, Turn::Refused, "request {n}");
            }
        }
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64() {
        let limiter = FailureLimiter::default();
        let t = Instant::now();
        for n in 0..5u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, n, n, n, n));
            limiter.failed(addr, t);
        }
        assert_eq!(limiter.tracked(), 1);
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        assert!(matches!(limiter.turn(other, t), Turn::After(w) if w > Duration::ZERO));
        let elsewhere = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert_eq!(limiter.turn(elsewhere, t), Turn::After(Duration::ZERO));
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
        assert!(limiter.turn(last, t + Duration::from_secs(100)) != Turn::After(Duration::ZERO));
    }
}
