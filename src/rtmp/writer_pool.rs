//! The writer threads of RTMP players: a small pool (one per core by
//! default) that drains every player's queue to its socket, so players
//! cost no thread of their own for writing. Each thread owns a share of
//! the players and, at each tick of `-write-coalesce`, writes what every
//! one of them has queued; the ticks are shared by all threads, so the
//! CPU wakes once per tick. With `-write-coalesce 0` a thread instead
//! waits on a doorbell its players' streams ring whenever they queue
//! something, and writes at once. Writes never wait: a slow player keeps
//! its remainder for the next tick and never delays the others.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::player::{Drained, PlayerOutput};
use crate::hub::doorbell::Doorbell;

/// How often a thread with nothing to do looks at its players anyway
/// (to let go of stopped ones).
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// How soon a thread writing at once retries a player whose socket was
/// full.
const RETRY: Duration = Duration::from_millis(5);
/// Stack of a writer thread: its deepest path is one vectored write.
const WRITER_STACK_SIZE: usize = 128 * 1024;

/// Common origin of every writer's ticks.
static TICK_EPOCH: OnceLock<Instant> = OnceLock::new();

/// Time from `now` to the next multiple of `period` since a process-wide
/// epoch. Writers that sleep to the same ticks wake together: the CPU
/// runs them back to back and idles once, instead of waking from idle for
/// each (costly on virtual machines), with the same bound on delay.
fn until_next_tick(now: Instant, period: Duration) -> Duration {
    let epoch = *TICK_EPOCH.get_or_init(|| now);
    let period_ns = period.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let left = period_ns - since % period_ns;
    Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX))
}

/// How the pool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub threads: usize,
    /// The tick (`-write-coalesce`); zero writes at once.
    pub coalesce: Duration,
    pub write_timeout: Duration,
}

/// One writer thread's share.
#[derive(Default)]
struct Worker {
    /// Players added since the thread last looked.
    incoming: Mutex<Vec<PlayerOutput>>,
    doorbell: Arc<Doorbell>,
    /// Players assigned to it (added or about to be).
    load: AtomicUsize,
}

/// The writer threads of a server's RTMP players.
pub struct WriterPool {
    workers: Vec<Arc<Worker>>,
    settings: PoolSettings,
    closing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The writer thread chosen for a new player.
pub struct Assignment {
    worker: Arc<Worker>,
}

impl Assignment {
    /// Wakes the player's writer thread (when the player's connection left
    /// it something to write).
    pub fn wake(&self) {
        self.worker.doorbell.ring();
    }
}

impl WriterPool {
    pub fn start(settings: PoolSettings) -> io::Result<WriterPool> {
        let pool = WriterPool {
            workers: (0..settings.threads.max(1))
                .map(|_| Arc::default())
                .collect(),
            settings,
            closing: Arc::default(),
            stop: Arc::default(),
            threads: Mutex::new(Vec::new()),
        };
        for (n, worker) in pool.workers.iter().enumerate() {
            let (worker, closing, stop) = (
                Arc::clone(worker),
                Arc::clone(&pool.closing),
                Arc::clone(&pool.stop),
            );
            let thread = thread::Builder::new()
                .name(format!("writer-{n}"))
                .stack_size(WRITER_STACK_SIZE)
                .spawn(move || run(&worker, settings, &closing, &stop))?;
            pool.threads.lock().push(thread);
        }
        Ok(pool)
    }

    /// Picks the least loaded writer thread for a new player.
    pub fn assign(&self) -> Assignment {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
            .map(Arc::clone)
            .unwrap_or_default();
        worker.load.fetch_add(1, Ordering::Relaxed);
        Assignment { worker }
    }

    /// Gives back an assignment whose player never came (refused).
    pub fn unassign(&self, assignment: Assignment) {
        assignment.worker.load.fetch_sub(1, Ordering::Relaxed);
    }

    /// The doorbell a player's stream rings when it queues something, if
    /// the pool writes at once.
    pub fn doorbell(&self, assignment: &Assignment) -> Option<Arc<Doorbell>> {
        self.settings
            .coalesce
            .is_zero()
            .then(|| Arc::clone(&assignment.worker.doorbell))
    }

    /// Hands a player to its writer thread, which writes its catch-up at
    /// once.
    pub fn add(&self, assignment: &Assignment, player: PlayerOutput) {
        assignment.worker.incoming.lock().push(player);
        assignment.wake();
    }

    /// From now on a player told its stream ended is closed.
    pub fn begin_shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for worker in &self.workers {
            worker.doorbell.ring();
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in &self.workers {
            worker.doorbell.ring();
        }
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
    }
}

fn run(worker: &Worker, settings: PoolSettings, closing: &AtomicBool, stop: &AtomicBool) {
    let mut players: Vec<PlayerOutput> = Vec::new();
    let mut waiting = false;
    loop {
        let timeout = match (settings.coalesce.is_zero(), players.is_empty()) {
            (_, true) => HOUSEKEEPING,
            (true, false) if waiting => RETRY,
            (true, false) => HOUSEKEEPING,
            (false, false) => until_next_tick(Instant::now(), settings.coalesce),
        };
        worker.doorbell.wait(timeout);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        players.append(&mut worker.incoming.lock());
        let closing = closing.load(Ordering::SeqCst);
        waiting = false;
        players.retain_mut(|player| match drain_contained(player, settings, closing) {
            Drained::Written => true,
            Drained::Waiting => {
                waiting = true;
                true
            }
            Drained::Done => {
                worker.load.fetch_sub(1, Ordering::Relaxed);
                false
            }
        });
    }
}

/// Drains one player; a panic (there should be none) ends that player
/// only, logged, instead of the thread and every player it writes for.
fn drain_contained(player: &mut PlayerOutput, settings: PoolSettings, closing: bool) -> Drained {
    let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        player.drain(settings.write_timeout, closing)
    }));
    drained.unwrap_or_else(|_| {
        log::error!("a player's writer failed (panic); the player is closed");
        player.abandon()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_sleep_to_shared_ticks() {
        let period = Duration::from_millis(40);
        let now = Instant::now();
        let first = until_next_tick(now, period);
        assert!(first > Duration::ZERO && first <= period);
        let tick = now + first;
        // Two writers asking at different moments of one period wake at
        // the same next tick.
        let a = tick + Duration::from_millis(3);
        let b = tick + Duration::from_millis(17);
        assert_eq!(a + until_next_tick(a, period), tick + period);
        assert_eq!(b + until_next_tick(b, period), tick + period);
    }
}
