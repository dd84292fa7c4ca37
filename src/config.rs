//! The server's validated settings. Built from the command line by
//! [`crate::cli`], or directly by tests and embedders.

use crate::auth::AuthSettings;
use crate::hooks::HookSettings;
use crate::record::RecordSettings;
use crate::relay::target::RelayTargets;
use crate::source::SourceSettings;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::protocol::chunk_decoder::DEFAULT_MAX_MESSAGE_SIZE;

/// The API's bearer token. Never printed, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> ApiToken {
        ApiToken(token.into())
    }

    /// Whether `presented` is this token, in time independent of where
    /// they differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// What to do with a player whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowSubscriberPolicy {
    /// Drop its media until the next keyframe, so its decoder never gets
    /// a frame whose reference was dropped.
    Skip,
    /// Close its connection.
    Disconnect,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address the RTMP listener binds.
    pub listen: SocketAddr,
    /// Outbound chunk size, announced with Set Chunk Size at connect.
    pub chunk_size: usize,
    /// Keep the last GOP so players start at once.
    pub gop_cache: bool,
    pub slow_subscriber: SlowSubscriberPolicy,
    /// A publisher that sends nothing for this long is dropped.
    pub publisher_timeout: Duration,
    /// A player whose socket accepts nothing for this long is closed.
    pub write_timeout: Duration,
    /// How long a player's writer lets media gather after waking, so that
    /// one write carries several messages (zero: write at once).
    pub write_coalesce: Duration,
    /// Time allowed for the handshake, and for a connection to say what
    /// it wants (connect, publish or play) after it.
    pub handshake_timeout: Duration,
    /// Threads writing to RTMP players; 0: one per core.
    pub writer_threads: usize,
    /// A connection with nothing to or from it for this long is closed.
    pub idle_timeout: Duration,
    /// Connections beyond this many are closed right after accept.
    pub max_connections: usize,
    /// Players per stream at most (`-max-subscribers`); 0: no limit.
    pub max_subscribers: usize,
    /// Longest message accepted from a peer.
    pub max_message_size: usize,
    /// Per-player queue bounds.
    pub queue_max_messages: usize,
    pub queue_max_bytes: usize,
    /// GOP cache bounds; past either the cache is dropped until the next
    /// keyframe.
    pub gop_max_messages: usize,
    pub gop_max_bytes: usize,
    /// Address of the HTTP metrics and status endpoint; none if `None`.
    pub metrics_addr: Option<SocketAddr>,
    /// Bearer token that allows the API's write endpoints.
    pub api_token: Option<ApiToken>,
    /// The API token guards reads too (`-api-read-auth`).
    pub api_read_auth: bool,
    /// The RTMPS listener and its certificate (`-tls-*`).
    pub tls: Option<crate::tls::TlsSettings>,
    /// Relays and pulls to `rtmps://` take any certificate
    /// (`-tls-insecure-upstream`).
    pub tls_insecure_upstream: bool,
    /// Where Enhanced RTMP clients asked to reconnect should go
    /// (`-reconnect-url`); `None`: where they are.
    pub reconnect_url: Option<String>,
    /// `Access-Control-Allow-Origin` of the live HTTP streams
    /// (`-http-cors`); `None`: no such header.
    pub http_cors: Option<String>,
    /// Ended publish sessions kept for `/api/history`.
    pub history_limit: usize,
    /// Where published streams are relayed (`-relay-to`, `-relay-map`).
    pub relays: RelayTargets,
    /// Who may publish and play (`-auth-*`).
    pub auth: AuthSettings,
    /// Programs told what happens (`-hook-*`).
    pub hooks: HookSettings,
    /// What is recorded, where (`-record-*`).
    pub record: RecordSettings,
    /// Streams fed by failover inputs and pulls (`-source` and friends).
    pub sources: SourceSettings,
    /// Logs show stream names as `app/abc***` (for a server facing the
    /// internet, where a name is a secret stream key).
    pub log_redact_keys: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            chunk_size: 4096,
            gop_cache: true,
            slow_subscriber: SlowSubscriberPolicy::Skip,
            publisher_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            write_coalesce: Duration::from_millis(40),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            writer_threads: 0,
            max_connections: 1000,
            max_subscribers: 0,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            queue_max_messages: 128,
            queue_max_bytes: 4 * 1024 * 1024,
            gop_max_messages: 2500,
            gop_max_bytes: 32 * 1024 * 1024,
            metrics_addr: None,
            api_token: None,
            api_read_auth: false,
            http_cors: Some("*".to_owned()),
            reconnect_url: None,
            tls: None,
            tls_insecure_upstream: false,
            history_limit: 100,
            log_redact_keys: false,
            relays: RelayTargets::default(),
            auth: AuthSettings::default(),
            hooks: HookSettings::default(),
            record: RecordSettings::default(),
            sources: SourceSettings::default(),
        }
    }
}

impl Config {
    /// How many threads write to players: `writer_threads`, or one per
    /// core.
    pub fn writer_threads(&self) -> usize {
        match self.writer_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}
