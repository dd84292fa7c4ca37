//! One live HTTP viewer on its own thread: the request checked (stream
//! name, play token, whether the stream is known, `-max-pulls`,
//! `-max-subscribers`), then the viewer an output of its stream, its
//! queue drained into the response. It waits for a publisher up to
//! `-idle-timeout`; a stream the server has never heard of is 404 at once.
//! A socket that takes nothing for `-write-timeout` ends it (the listener
//! gives every connection that send timeout), as does the stream's
//! slow-subscriber policy, a kick, or the end of the stream.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tiny_http::{Method, Request};

use super::feed::{LiveFeed, StreamFacts};
use super::response::{LiveBody, head, refuse};
use crate::auth::{self, Action, Denial};
use crate::http::route::{LiveFormat, LiveRequest};
use crate::hub::output::{Outbound, OutputKind, OutputOptions, OutputQueue, OutputSpec};
use crate::hub::packet::Packet;
use crate::hub::stream::Stream;
use crate::hub::stream_key::StreamKey;
use crate::metrics::GaugeGuard;
use crate::server::Shared;

/// How often a viewer with nothing to send looks at its flags.
const POLL: Duration = Duration::from_millis(200);
/// Queue items taken into one write at most.
const MAX_BATCH: usize = 64;

/// A viewer's request, admitted as connection `id`.
pub struct Viewer {
    pub shared: Arc<Shared>,
    pub request: Request,
    pub live: LiveRequest,
    pub id: u64,
    pub peer: SocketAddr,
    pub kicked: Arc<AtomicBool>,
    pub cors: Option<Arc<str>>,
}

/// Why a viewer ended.
#[derive(Debug)]
enum End {
    StreamEnded,
    NotPublished,
    Unplayable,
    SlowViewer,
    Kicked,
    ShuttingDown,
    WriteTimeout,
    WriteFailed(io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::StreamEnded => write!(f, "the stream ended"),
            End::NotPublished => write!(f, "the stream did not start within -idle-timeout"),
            End::Unplayable => write!(f, "its codecs cannot be sent in this format"),
            End::SlowViewer => write!(f, "too slow (-slow-subscriber disconnect)"),
            End::Kicked => write!(f, "kicked"),
            End::ShuttingDown => write!(f, "shutting down"),
            End::WriteTimeout => write!(f, "took nothing for -write-timeout"),
            End::WriteFailed(e) => write!(f, "{e}"),
        }
    }
}

impl End {
    fn from_write(e: io::Error) -> End {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => End::WriteTimeout,
            _ => End::WriteFailed(e),
        }
    }
}

impl Viewer {
    pub fn run(self) {
        let Viewer {
            shared,
            request,
            live,
            id,
            peer,
            kicked,
            cors,
        } = self;
        let cors = cors.as_deref();
        let _connection = GaugeGuard::raise(
            &shared.metrics,
            |m| &m.connections_active,
            Some(|m| &m.connections_total),
        );
        let name = match &live.query {
            Some(query) => format!("{}?{query}", live.name),
            None => live.name.clone(),
        };
        let key = match StreamKey::new(&live.app, &name) {
            Ok(key) => key,
            Err(e) => return refuse(request, 400, &e.to_string(), cors),
        };
        if shared.auth.guards(Action::Play) {
            let question = auth::Request {
                action: Action::Play,
                key: &key,
                connect_query: None,
                remote_addr: peer,
            };
            if let Err(denial) = shared.authorize(id, &question) {
                log::info!("conn#{id} {peer} refused to view {key}: {denial}");
                let status = match denial {
                    Denial::MissingToken => 401,
                    _ => 403,
                };
                return refuse(request, status, "authentication failed: give ?token=", cors);
            }
        }
        let path = key.as_path();
        let known = shared.registry.get(&path).is_some()
            || shared.sources.get(&path).is_some()
            || shared.registry.history().contains(&path);
        if !known {
            log::info!("conn#{id} {peer} asked for {key}, which is not known: 404");
            return refuse(request, 404, "no such stream", cors);
        }
        if *request.method() == Method::Head {
            let live_now = shared.registry.get(&path).is_some_and(|s| s.is_live());
            return head(request, live_now, live.format, cors);
        }
        if let Err(why) = shared.sources.admit_player(&key) {
            return refuse(request, 503, &why, cors);
        }
        let kind = match live.format {
            LiveFormat::Flv => OutputKind::HttpFlv,
            LiveFormat::Mp4 => OutputKind::HttpMp4,
        };
        let spec = OutputSpec {
            id,
            remote_addr: Some(peer),
            options: OutputOptions::player(kind, &shared.config),
            on_drop: None,
            doorbell: None,
        };
        let max = shared.config.max_subscribers;
        let (stream, subscription) = shared.registry.subscribe_within(&key, spec, max);
        let Some(subscription) = subscription else {
            log::info!("conn#{id} {peer} refused {key}: -max-subscribers {max} reached");
            return refuse(request, 503, "stream is full (-max-subscribers)", cors);
        };
        let _player = GaugeGuard::raise(
            &shared.metrics,
            |m| &m.subscribers_active,
            Some(|m| &m.subscribers_total),
        );
        let waiting = if stream.is_live() {
            ""
        } else {
            " (waiting for a publisher)"
        };
        let protocol = live.format.protocol();
        log::info!("conn#{id} {peer} viewing {key} over {protocol}{waiting}");
        let mut watch = Watch {
            shared: &shared,
            stream: &stream,
            queue: &subscription.queue,
            feed: LiveFeed::new(live.format),
            request: Some(request),
            body: None,
            cors,
            kicked: &kicked,
        };
        let end = watch.run(subscription.catch_up);
        shared.registry.unsubscribe(&stream, id);
        // Ended before the response began: it is answered still.
        if let Some(request) = watch.request.take() {
            refuse(request, 503, &end.to_string(), cors);
        }
        // A response ended for any reason but a broken socket gets its
        // last chunk, so that the client knows the stream is over.
        if let Some(body) = watch.body.take()
            && !matches!(end, End::WriteFailed(_) | End::WriteTimeout)
        {
            let _ = body.finish();
        }
        log::info!("conn#{id} {peer} stopped viewing {key}: {end}");
    }
}

/// A subscribed viewer's loop.
struct Watch<'a> {
    shared: &'a Shared,
    stream: &'a Arc<Stream>,
    queue: &'a OutputQueue,
    feed: LiveFeed,
    /// Until the response starts.
    request: Option<Request>,
    body: Option<LiveBody>,
    cors: Option<&'a str>,
    kicked: &'a AtomicBool,
}

impl Watch<'_> {
    fn run(&mut self, catch_up: Vec<Arc<Packet>>) -> End {
        let waiting_until = Instant::now() + self.shared.config.idle_timeout;
        let mut pieces = Vec::new();
        for packet in &catch_up {
            pieces.extend(self.take(packet));
        }
        // The catch-up is not counted in the queue's bound.
        if let Err(end) = self.send(pieces, &[], 0) {
            return end;
        }
        loop {
            if self.kicked.load(Ordering::SeqCst) {
                return End::Kicked;
            }
            if self.shared.shutting_down.load(Ordering::SeqCst) && self.body.is_none() {
                return End::ShuttingDown;
            }
            let first = match self.queue.recv_timeout(POLL) {
                Err(_) => return End::SlowViewer,
                Ok(None) if self.body.is_none() && Instant::now() >= waiting_until => {
                    if let Some(request) = self.request.take() {
                        let why = "the stream did not start within -idle-timeout";
                        refuse(request, 404, why, self.cors);
                    }
                    return End::NotPublished;
                }
                Ok(None) => continue,
                Ok(Some(item)) => item,
            };
            if let Err(end) = self.batch(first) {
                return end;
            }
        }
    }

    /// Takes `first` and what else is queued (a batch), and sends what
    /// they make in one write.
    fn batch(&mut self, first: Outbound) -> Result<(), End> {
        let mut taken = Vec::new();
        let mut item = Some(first);
        while let Some(next) = item.take() {
            match next {
                Outbound::Media(packet) => taken.push(packet),
                Outbound::PublishStarted => {}
                // A viewer that has not started waits for the next
                // publisher.
                Outbound::PublishEnded if self.body.is_some() => {
                    self.send_taken(&taken)?;
                    return Err(End::StreamEnded);
                }
                Outbound::PublishEnded => {}
            }
            if taken.len() < MAX_BATCH {
                item = self.queue.try_recv().map_err(|_| End::SlowViewer)?;
            }
        }
        self.send_taken(&taken)
    }

    fn send_taken(&mut self, taken: &[Arc<Packet>]) -> Result<(), End> {
        let bytes: usize = taken.iter().map(|p| p.payload.len()).sum();
        // Out of the queue's bound, written or not.
        self.queue.release_queued(bytes);
        let mut pieces = Vec::new();
        for packet in taken {
            pieces.extend(self.take(packet));
        }
        pieces.extend(self.feed.flush());
        self.send(pieces, taken, bytes)
    }

    /// What `packet` makes.
    fn take(&mut self, packet: &Arc<Packet>) -> Vec<Bytes> {
        let stream = self.stream;
        self.feed.push(packet, || {
            let media = stream.media();
            let size = |v: Option<f64>| v.map_or(0, |v| v.clamp(0.0, 65_535.0) as u16);
            StreamFacts {
                has_video: media.video_codec.is_some() || media.width.is_some(),
                has_audio: media.audio_codec.is_some(),
                width: size(media.width),
                height: size(media.height),
            }
        })
    }

    /// Writes `pieces` (starting the response if it has not), and counts
    /// the `sent` packets of `bytes` payload.
    fn send(&mut self, pieces: Vec<Bytes>, sent: &[Arc<Packet>], bytes: usize) -> Result<(), End> {
        if self.body.is_none() && self.feed.is_unplayable() {
            if let Some(request) = self.request.take() {
                let codecs = self.stream.media();
                let names: Vec<String> = [codecs.video_codec, codecs.audio_codec]
                    .into_iter()
                    .flatten()
                    .map(|c| c.name())
                    .collect();
                let message = format!(
                    "the stream's codecs ({}) cannot go in MP4 here; the .flv URL carries them",
                    names.join(", ")
                );
                refuse(request, 415, &message, self.cors);
            }
            return Err(End::Unplayable);
        }
        if pieces.is_empty() {
            return Ok(());
        }
        if self.body.is_none() {
            let (Some(request), Some(content_type)) =
                (self.request.take(), self.feed.content_type())
            else {
                return Ok(());
            };
            let body =
                LiveBody::start(request, content_type, self.cors).map_err(End::from_write)?;
            self.body = Some(body);
        }
        if let Some(body) = &mut self.body {
            body.send(&pieces).map_err(End::from_write)?;
        }
        let media = sent.len();
        if media > 0 {
            self.queue
                .record_sent(media, bytes, sent.last().map(|p| p.timestamp));
        }
        Ok(())
    }
}
