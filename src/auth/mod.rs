//! Who may publish or play: the policy the connection's decision point
//! asks (`-auth-mode none|token|file|callback`). The token comes from the
//! stream name's query (`cam?token=secret`, typed into OBS's stream key
//! field) or the connect URL's (`rtmp://host/live?token=secret`).
//! Addresses refused lately wait before their next answer. Tokens are
//! never logged, and the token file is reloaded on SIGHUP.

pub mod callback;
pub mod limiter;
pub mod tokens;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use self::callback::{Callback, CallbackAnswer, CallbackQuestion};
use self::limiter::{FailureLimiter, Turn};
use self::tokens::{Presented, TokenCheck, TokenError, TokenMap, token_in_query};
use crate::hub::stream_key::StreamKey;
use crate::protocol::command::status;

/// How requests are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Everyone may publish and play.
    #[default]
    None,
    /// Tokens from `-auth-token` flags.
    Token(TokenMap),
    /// Tokens from a JSON file, reloaded on SIGHUP; `tokens` as read at
    /// startup.
    File { path: PathBuf, tokens: TokenMap },
    /// Another program decides.
    Callback { url: String, timeout: Duration },
}

impl AuthMode {
    pub fn name(&self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Token(_) => "token",
            AuthMode::File { .. } => "file",
            AuthMode::Callback { .. } => "callback",
        }
    }
}

/// The authentication settings (`-auth-*` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// Whether playing needs a token too (`-auth-play`).
    pub play: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::None,
            play: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }

    /// The onStatus code a refused request gets.
    pub fn unauthorized_code(self) -> &'static str {
        match self {
            Action::Publish => status::PUBLISH_UNAUTHORIZED,
            Action::Play => status::PLAY_UNAUTHORIZED,
        }
    }
}

/// Why a request was refused. Never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    MissingToken,
    WrongToken,
    /// Token mode, and no token is set for this stream.
    NoTokenForStream,
    CallbackRefused(u16),
    CallbackTimedOut,
    CallbackFailed(String),
    /// The address has too many refused requests waiting.
    TooManyFailures,
}

impl Denial {
    /// A short name, for events and hook payloads.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingToken => "missing_token",
            Denial::WrongToken => "wrong_token",
            Denial::NoTokenForStream => "no_token_for_stream",
            Denial::CallbackRefused(_) => "callback_refused",
            Denial::CallbackTimedOut => "callback_timeout",
            Denial::CallbackFailed(_) => "callback_failed",
            Denial::TooManyFailures => "too_many_failures",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::MissingToken => write!(f, "no token given"),
            Denial::WrongToken => write!(f, "wrong token"),
            Denial::NoTokenForStream => write!(f, "no token is set for this stream"),
            Denial::CallbackRefused(code) => write!(f, "the auth callback answered {code}"),
            Denial::CallbackTimedOut => write!(f, "the auth callback did not answer in time"),
            Denial::CallbackFailed(why) => write!(f, "the auth callback failed: {why}"),
            Denial::TooManyFailures => write!(f, "too many refused requests from this address"),
        }
    }
}

/// A publish or play request to check.
pub struct Request<'a> {
    pub action: Action,
    pub key: &'a StreamKey,
    /// The query of the connect URL (`tcUrl`), if any.
    pub connect_query: Option<&'a str>,
    pub remote_addr: SocketAddr,
}

impl Request<'_> {
    /// The token presented: the stream name's, else the connect URL's.
    fn token(&self) -> Option<Presented> {
        let from_key = self.key.query().and_then(token_in_query);
        from_key.or_else(|| self.connect_query.and_then(token_in_query))
    }
}

/// Why the token file could not be reloaded.
#[derive(Debug)]
pub enum ReloadError {
    Read(std::io::Error),
    Tokens(TokenError),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Read(e) => write!(f, "cannot read it: {e}"),
            ReloadError::Tokens(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReloadError {}

/// Reads a token file.
pub fn read_token_file(path: &std::path::Path) -> Result<TokenMap, ReloadError> {
    let text = std::fs::read_to_string(path).map_err(ReloadError::Read)?;
    TokenMap::from_json(&text).map_err(ReloadError::Tokens)
}

/// The server's authentication: its settings, the current tokens and the
/// refusals by address.
pub struct Authenticator {
    settings: AuthSettings,
    tokens: RwLock<Arc<TokenMap>>,
    callback: Option<Callback>,
    limiter: FailureLimiter,
}

impl Authenticator {
    pub fn new(settings: AuthSettings) -> Authenticator {
        let (tokens, callback) = match &settings.mode {
            AuthMode::None => (TokenMap::default(), None),
            AuthMode::Token(tokens) | AuthMode::File { tokens, .. } => (tokens.clone(), None),
            AuthMode::Callback { url, timeout } => (
                TokenMap::default(),
                Some(Callback::new(url.clone(), *timeout)),
            ),
        };
        Authenticator {
            settings,
            tokens: RwLock::new(Arc::new(tokens)),
            callback,
            limiter: FailureLimiter::default(),
        }
    }

    /// Whether requests for `action` are checked at all.
    pub fn guards(&self, action: Action) -> bool {
        self.settings.mode != AuthMode::None && (action == Action::Publish || self.settings.play)
    }

    /// Decides a request, after the delay its address has earned by
    /// earlier refusals. Blocks the calling connection's thread only: for
    /// that delay, and for the callback's answer in callback mode.
    pub fn check(&self, request: &Request<'_>) -> Result<(), Denial> {
        let ip = request.remote_addr.ip();
        match self.limiter.turn(ip, Instant::now()) {
            Turn::After(wait) if wait.is_zero() => {}
            Turn::After(wait) => std::thread::sleep(wait),
            Turn::Refused => return Err(Denial::TooManyFailures),
        }
        let decision = self.decide(request);
        // A callback that is down is not the client's fault.
        if let Err(denial) = &decision
            && !matches!(denial, Denial::CallbackTimedOut | Denial::CallbackFailed(_))
        {
            self.limiter.failed(ip, Instant::now());
        }
        decision
    }

    fn decide(&self, request: &Request<'_>) -> Result<(), Denial> {
        let token = request.token();
        let (app, name) = (request.key.app(), request.key.name());
        if let Some(callback) = &self.callback {
            let question = CallbackQuestion {
                action: request.action.as_str(),
                app,
                name,
                token: token.as_ref().map(|t| t.decoded.as_str()),
                remote_addr: request.remote_addr,
            };
            return match callback.ask(&question) {
                CallbackAnswer::Allowed => Ok(()),
                CallbackAnswer::Refused(code) => Err(Denial::CallbackRefused(code)),
                CallbackAnswer::TimedOut => Err(Denial::CallbackTimedOut),
                CallbackAnswer::Failed(why) => Err(Denial::CallbackFailed(why)),
            };
        }
        let tokens = Arc::clone(&self.tokens.read());
        match tokens.check(app, name, token.as_ref()) {
            TokenCheck::Valid => Ok(()),
            TokenCheck::Wrong if token.is_none() => Err(Denial::MissingToken),
            TokenCheck::Wrong => Err(Denial::WrongToken),
            TokenCheck::Unknown => Err(Denial::NoTokenForStream),
        }
    }

    /// Rereads the token file (file mode): on success the new tokens apply
    /// to requests from now on and their count is returned; on failure the
    /// old ones stay. `Ok(None)` in other modes.
    pub fn reload(&self) -> Result<Option<usize>, ReloadError> {
        let AuthMode::File { path, .. } = &self.settings.mode else {
            return Ok(None);
        };
        let tokens = read_token_file(path)?;
        let count = tokens.len();
        *self.tokens.write() = Arc::new(tokens);
        Ok(Some(count))
    }

    /// The mode's name, for the startup log.
    pub fn describe(&self) -> String {
        let play = if self.settings.play {
            "publish and play"
        } else {
            "publish only"
        };
        match &self.settings.mode {
            AuthMode::None => "authentication off".into(),
            mode => format!("authentication: {} ({play})", mode.name()),
        }
    }
}

#[cfg(test)]
mod tests;
