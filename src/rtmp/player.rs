//! An RTMP player as an output of a stream: it drains the output's queue to
//! the player's connection with RTMP framing. Its writer lets media gather
//! between writes (sleeping to ticks shared by every writer, so that they
//! wake together) and writes everything queued with one vectored write.

use std::io;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::writer::{ChunkWriter, Frame};
use crate::hub::output::{Outbound, OutputQueue, Released};
use crate::hub::packet::Packet;
use crate::protocol::command::{Level, status};
use crate::protocol::message::{Message, UserControl};
use crate::protocol::session::Outgoing;

/// Most queued items written in one batch.
const MAX_BATCH: usize = 128;

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

/// The writing side of one RTMP player.
pub struct PlayerWriter {
    queue: OutputQueue,
    stream_id: u32,
    batch: Vec<Outbound>,
    /// The player was told the stream ended (the last thing it gets at
    /// shutdown).
    told_ended: bool,
}

impl PlayerWriter {
    pub fn new(queue: OutputQueue, stream_id: u32) -> Self {
        PlayerWriter {
            queue,
            stream_id,
            batch: Vec::new(),
            told_ended: false,
        }
    }

    /// Whether the last event written told the player the stream ended.
    pub fn told_ended(&self) -> bool {
        self.told_ended
    }

    pub fn queue(&self) -> &OutputQueue {
        &self.queue
    }

    /// Writes the catch-up packets (metadata, headers, cached GOP).
    pub fn write_catch_up(&self, catch_up: &[Arc<Packet>], conn: &ChunkWriter) -> io::Result<()> {
        let bytes: usize = catch_up.iter().map(|p| p.payload.len()).sum();
        conn.write_frames(catch_up.iter().map(|p| Frame::Packet(p)), self.stream_id)?;
        self.queue
            .record_sent(bytes, catch_up.last().map(|p| p.timestamp));
        Ok(())
    }

    fn take_queued(&mut self) -> Result<(), Released> {
        while self.batch.len() < MAX_BATCH {
            match self.queue.try_recv()? {
                Some(item) => self.batch.push(item),
                None => break,
            }
        }
        Ok(())
    }

    /// Writes what is queued. With `coalesce` zero it waits up to `wait`
    /// for the first item and writes at once. Otherwise it first sleeps
    /// to the next tick of `coalesce` so that media gathers without the
    /// stream having to wake this thread for each message, and only
    /// blocks (up to `wait`) when nothing came meanwhile. `Ok(Err(_))`
    /// when the stream let go of the player.
    pub fn drain(
        &mut self,
        conn: &ChunkWriter,
        wait: Duration,
        coalesce: Duration,
    ) -> io::Result<Result<(), Released>> {
        if !coalesce.is_zero() {
            thread::sleep(until_next_tick(Instant::now(), coalesce));
            if let Err(released) = self.take_queued() {
                return Ok(Err(released));
            }
        }
        if self.batch.is_empty() {
            match self.queue.recv_timeout(wait) {
                Ok(Some(first)) => self.batch.push(first),
                Ok(None) => return Ok(Ok(())),
                Err(released) => return Ok(Err(released)),
            }
            if let Err(released) = self.take_queued() {
                return Ok(Err(released));
            }
        }
        let mut media_bytes = 0;
        let mut last_timestamp = None;
        for item in &self.batch {
            match item {
                Outbound::Media(packet) => {
                    media_bytes += packet.payload.len();
                    last_timestamp = Some(packet.timestamp);
                }
                event => self.told_ended = matches!(event, Outbound::PublishEnded),
            }
        }
        let stream_id = self.stream_id;
        let frames = self.batch.iter().flat_map(|item| {
            // Vec::new() does not allocate: media costs no allocation here.
            let (packet, events) = match item {
                Outbound::Media(packet) => (Some(Frame::Packet(packet)), Vec::new()),
                event => (None, event_frames(event, stream_id)),
            };
            packet.into_iter().chain(events)
        });
        let result = conn.write_frames(frames, stream_id);
        self.queue.release_queued(media_bytes);
        self.batch.clear();
        result?;
        self.queue.record_sent(media_bytes, last_timestamp);
        Ok(Ok(()))
    }
}

/// What a player is told of a stream event.
fn event_frames(event: &Outbound, stream_id: u32) -> Vec<Frame<'static>> {
    let messages = match event {
        Outbound::PublishStarted => [
            Outgoing::control(Message::UserControl(UserControl::StreamBegin(stream_id))),
            Outgoing::status(
                stream_id,
                Level::Status,
                status::PLAY_PUBLISH_NOTIFY,
                "Stream is now published.",
            ),
        ],
        Outbound::PublishEnded => [
            Outgoing::status(
                stream_id,
                Level::Status,
                status::PLAY_UNPUBLISH_NOTIFY,
                "Stream was unpublished.",
            ),
            Outgoing::control(Message::UserControl(UserControl::StreamEof(stream_id))),
        ],
        Outbound::Media(_) => return Vec::new(),
    };
    messages.into_iter().map(Frame::from).collect()
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
