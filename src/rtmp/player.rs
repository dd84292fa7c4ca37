//! An RTMP player as an output of a stream, written by a writer-pool
//! thread: at each of its thread's ticks it sends what its queue holds
//! (catch-up first) in non-blocking vectored writes of the shared payloads.
//! When the player's socket is full, what a write began waits in the
//! connection's backlog and what it did not begin stays here; nothing more
//! is taken from the queue until both are written, so a slow player's
//! queue fills and the stream's slow-subscriber policy applies. A socket
//! that takes nothing for `-write-timeout` ends the player. The player's
//! connection thread and its writer meet in a [`PlayerLink`].

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::transport::Transport;
use super::wire::Wire;
use super::writer::{ChunkWriter, Frame, SendMode};
use crate::hub::output::{Outbound, OutputQueue, OutputShared, Released};
use crate::hub::packet::Packet;
use crate::protocol::command::{Level, status};
use crate::protocol::message::{Message, UserControl};
use crate::protocol::session::Outgoing;

/// Most queued items taken at once.
const MAX_BATCH: usize = 128;
/// Batches written per drain at most.
const MAX_BATCHES_PER_DRAIN: usize = 2;
/// Room for pending items kept between ticks (a tick of a 2 Mbps stream
/// takes a few; a catch-up can take hundreds, once).
const RETAINED_PENDING: usize = 32;

/// Why a player's writer ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerEnd {
    /// The stream dropped it (slow-subscriber `disconnect`).
    SlowPlayer,
    /// Its socket took nothing for `-write-timeout`.
    WriteTimeout,
    /// Writing failed.
    WriteFailed(io::ErrorKind),
    /// Told its stream ended at shutdown.
    Shutdown,
}

/// What a player's connection thread and its writer share.
#[derive(Debug, Default)]
pub struct PlayerLink {
    /// The connection stopped playing: the writer lets go.
    stopped: AtomicBool,
    /// Why the player was ended (by its writer, or by its stream), if it
    /// was.
    end: Mutex<Option<PlayerEnd>>,
}

impl PlayerLink {
    /// Tells the writer to let go (before the output is unsubscribed).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Why the player was ended, if it was.
    pub fn end(&self) -> Option<PlayerEnd> {
        *self.end.lock()
    }

    /// Records why the player ends (the first reason given stays).
    pub fn ended(&self, end: PlayerEnd) {
        self.end.lock().get_or_insert(end);
    }
}

/// What a drain left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Everything taken was written.
    Written,
    /// The socket is full (or busy): more to write at the next tick.
    Waiting,
    /// The player is gone: drop it.
    Done,
}

/// The writing side of one RTMP player.
pub struct PlayerOutput {
    transport: Arc<Transport>,
    link: Arc<PlayerLink>,
    batch: Batch,
}

/// What a player's writer takes from its queue and turns into chunks.
struct Batch {
    queue: OutputQueue,
    stream_id: u32,
    /// Taken (catch-up, then from the queue) and not yet begun. What came
    /// from the queue still counts in its byte bound until it is written,
    /// so a stuck player holds no more than its queue's bound.
    pending: VecDeque<Outbound>,
    /// How many of the first pending items are catch-up (not counted in
    /// the queue's bound).
    catch_up_left: usize,
    /// The last event written told the player the stream ended.
    told_ended: bool,
}

impl PlayerOutput {
    pub fn new(
        transport: Arc<Transport>,
        queue: OutputQueue,
        stream_id: u32,
        link: Arc<PlayerLink>,
        catch_up: Vec<Arc<Packet>>,
    ) -> PlayerOutput {
        PlayerOutput {
            transport,
            link,
            batch: Batch {
                queue,
                stream_id,
                catch_up_left: catch_up.len(),
                pending: catch_up.into_iter().map(Outbound::Media).collect(),
                told_ended: false,
            },
        }
    }

    /// Its counters and switches, shared with its stream.
    pub fn output(&self) -> &Arc<OutputShared> {
        self.batch.queue.shared()
    }

    /// Writes what the player has waiting, as far as its socket takes it
    /// now. At shutdown (`closing`), a player told its stream ended is
    /// closed.
    pub fn drain(&mut self, write_timeout: Duration, closing: bool) -> Drained {
        if self.link.is_stopped() {
            return Drained::Done;
        }
        // Busy: its connection thread is sending a reply. Next tick.
        let Some(mut sending) = self.transport.try_sending() else {
            return Drained::Waiting;
        };
        let (writer, mut wire) = sending.parts();
        // Checked under the lock: after `stop` the connection's replies
        // must not be followed by this stream's media.
        if self.link.is_stopped() {
            return Drained::Done;
        }
        let result = self.batch.write(&mut wire, writer);
        let stalled = writer.stalled_since();
        drop(sending);
        match result {
            Err(e) => self.end(PlayerEnd::WriteFailed(e.kind())),
            Ok(Err(Released)) if self.link.is_stopped() => Drained::Done,
            // The stream dropped it and already shut its socket.
            Ok(Err(Released)) => self.end(PlayerEnd::SlowPlayer),
            Ok(Ok(_)) if stalled.is_some_and(|since| since.elapsed() >= write_timeout) => {
                self.end(PlayerEnd::WriteTimeout)
            }
            // Once all of the notice is written.
            Ok(Ok(Drained::Written)) if closing && self.batch.told_ended => {
                self.end(PlayerEnd::Shutdown)
            }
            Ok(Ok(drained)) => drained,
        }
    }

    /// Ends a player whose writing failed unexpectedly.
    pub fn abandon(&self) -> Drained {
        self.end(PlayerEnd::WriteFailed(io::ErrorKind::Other))
    }

    fn end(&self, end: PlayerEnd) -> Drained {
        self.link.ended(end);
        self.transport.shutdown();
        Drained::Done
    }
}

impl Batch {
    /// Writes the backlog, then what is pending and queued, as far as the
    /// socket takes it now.
    fn write(
        &mut self,
        wire: &mut Wire<'_>,
        writer: &mut ChunkWriter,
    ) -> io::Result<Result<Drained, Released>> {
        if !writer.flush_backlog(wire, SendMode::UntilFull)? {
            return Ok(Ok(Drained::Waiting));
        }
        // A bounded share of the thread (and of the lock its connection's
        // replies wait for) per drain, however fast the stream queues.
        for _ in 0..MAX_BATCHES_PER_DRAIN {
            if self.pending.is_empty()
                && let Err(released) = self.take_queued()
            {
                return Ok(Err(released));
            }
            if self.pending.is_empty() {
                return Ok(Ok(Drained::Written));
            }
            let stream_id = self.stream_id;
            let units = self.pending.iter().map(|item| {
                // Vec::new() does not allocate: media costs no allocation.
                let (packet, events) = match item {
                    Outbound::Media(packet) => (Some(Frame::Packet(packet)), Vec::new()),
                    event => (None, event_frames(event, stream_id)),
                };
                packet.into_iter().chain(events)
            });
            let begun = writer.write_units(wire, units, stream_id, SendMode::UntilFull)?;
            self.account(begun);
            if !self.pending.is_empty() || writer.has_backlog() || wire.has_pending() {
                return Ok(Ok(Drained::Waiting));
            }
        }
        // More may be queued: come back soon.
        Ok(Ok(Drained::Waiting))
    }

    /// Takes what the queue holds, up to a batch.
    fn take_queued(&mut self) -> Result<(), Released> {
        while self.pending.len() < MAX_BATCH {
            match self.queue.try_recv()? {
                Some(item) => self.pending.push_back(item),
                None => break,
            }
        }
        Ok(())
    }

    /// Counts the first `begun` pending items as sent.
    fn account(&mut self, begun: usize) {
        let (mut media, mut media_bytes, mut queued_bytes) = (0, 0, 0);
        let mut last_timestamp = None;
        let begun = begun.min(self.pending.len());
        let from_catch_up = begun.min(self.catch_up_left);
        self.catch_up_left -= from_catch_up;
        for (n, item) in self.pending.drain(..begun).enumerate() {
            match item {
                Outbound::Media(packet) => {
                    media += 1;
                    media_bytes += packet.payload.len();
                    if n >= from_catch_up {
                        queued_bytes += packet.payload.len();
                    }
                    last_timestamp = Some(packet.timestamp);
                }
                event => self.told_ended = matches!(event, Outbound::PublishEnded),
            }
        }
        self.queue.release_queued(queued_bytes);
        if media_bytes > 0 {
            self.queue.record_sent(media, media_bytes, last_timestamp);
        }
        if self.pending.is_empty() && self.pending.capacity() > RETAINED_PENDING {
            self.pending.shrink_to(RETAINED_PENDING / 4);
        }
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
