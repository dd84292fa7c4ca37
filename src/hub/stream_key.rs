//! Stream keys: `app/name` with any `?query` split off and kept (for later
//! authentication) but never shown, and the form logs show: the whole
//! `app/name` by default, `app/abc***` with `-log-redact-keys` (for a
//! server facing the internet, where a stream name is a secret).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::protocol::url::redact_name;

/// Whether logs redact stream names; set once at startup.
static REDACT_IN_LOGS: AtomicBool = AtomicBool::new(false);

/// Makes logs show stream names as `app/abc***` (`-log-redact-keys`).
pub fn set_log_redaction(on: bool) {
    REDACT_IN_LOGS.store(on, Ordering::Relaxed);
}

/// Longest stream name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    app: String,
    name: String,
    query: Option<String>,
}

/// Why a stream name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    Empty,
    TooLong(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => write!(f, "empty stream name"),
            KeyError::TooLong(n) => {
                write!(f, "stream name or app of {n} bytes (limit {MAX_NAME_LEN})")
            }
        }
    }
}

impl std::error::Error for KeyError {}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (s, None),
    }
}

impl StreamKey {
    /// Builds a key from the `connect` app and the `publish`/`play` name.
    /// Queries on either are split off; the name's wins if both have one.
    pub fn new(app: &str, name: &str) -> Result<StreamKey, KeyError> {
        // The app too: both go into events, hook payloads and logs.
        if let Some(long) = [app, name].into_iter().find(|s| s.len() > MAX_NAME_LEN) {
            return Err(KeyError::TooLong(long.len()));
        }
        let (app, app_query) = split_query(app);
        let (name, name_query) = split_query(name);
        let app = app.trim_matches('/');
        let name = name.trim_matches('/');
        if name.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(StreamKey {
            app: app.to_owned(),
            name: name.to_owned(),
            query: name_query.or(app_query).map(str::to_owned),
        })
    }

    /// `app/name`, the registry key. May contain a secret stream key: log
    /// [`StreamKey::redacted`] instead.
    pub fn as_path(&self) -> String {
        format!("{}/{}", self.app, self.name)
    }

    /// The same key without its query.
    pub fn without_query(&self) -> StreamKey {
        StreamKey {
            app: self.app.clone(),
            name: self.name.clone(),
            query: None,
        }
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The query string given with the name, if any (never logged).
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// `app/abc***`: enough to tell streams apart in a log, not enough to
    /// hijack one.
    pub fn redacted(&self) -> String {
        redact_path(&self.as_path())
    }
}

/// Whether logs redact stream names (`-log-redact-keys`).
pub fn redacting_logs() -> bool {
    REDACT_IN_LOGS.load(Ordering::Relaxed)
}

/// Streams a setting applies to: `app/name`, every name of an app
/// (`app/*`), or every stream (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPattern {
    All,
    App(String),
    Exact(String),
}

impl KeyPattern {
    /// Parses `app/name`, `app/*` or `*` (slashes around trimmed); `None`
    /// for anything else, such as a name alone or a `*` elsewhere.
    pub fn parse(pattern: &str) -> Option<KeyPattern> {
        let pattern = pattern.trim().trim_matches('/');
        if pattern == "*" {
            return Some(KeyPattern::All);
        }
        let (app, name) = pattern.split_once('/')?;
        if app.is_empty() || name.is_empty() || app.contains('*') {
            return None;
        }
        match name {
            "*" => Some(KeyPattern::App(app.to_owned())),
            name if name.contains('*') => None,
            _ => Some(KeyPattern::Exact(pattern.to_owned())),
        }
    }

    pub fn matches(&self, key: &StreamKey) -> bool {
        match self {
            KeyPattern::All => true,
            KeyPattern::App(app) => app == key.app(),
            KeyPattern::Exact(path) => *path == key.as_path(),
        }
    }
}

impl fmt::Display for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPattern::All => f.write_str("*"),
            KeyPattern::App(app) => write!(f, "{app}/*"),
            KeyPattern::Exact(path) => f.write_str(path),
        }
    }
}

/// An `app/name` path as logs show it: whole, or redacted when
/// `-log-redact-keys` is on. Never a query: paths have none.
pub fn log_path(path: &str) -> String {
    if REDACT_IN_LOGS.load(Ordering::Relaxed) {
        redact_path(path)
    } else {
        path.to_owned()
    }
}

/// Redacts the name part of an `app/name` path for logging.
pub fn redact_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((app, name)) => format!("{app}/{}", redact_name(name)),
        None => redact_name(path),
    }
}

impl fmt::Display for StreamKey {
    /// The form logs show: `app/name` (redacted with `-log-redact-keys`),
    /// never the query, so a token cannot be logged by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&log_path(&self.as_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_split_off_and_kept() {
        let key = StreamKey::new("live", "mystream?token=s3cret").unwrap();
        assert_eq!(key.as_path(), "live/mystream");
        assert_eq!(key.query(), Some("token=s3cret"));
        let key = StreamKey::new("live?token=a", "cam").unwrap();
        assert_eq!(key.as_path(), "live/cam");
        assert_eq!(key.query(), Some("token=a"));
    }

    #[test]
    fn display_shows_the_name_never_the_query_and_redacts_when_asked() {
        let key = StreamKey::new("live", "live_1234567890abcdef?token=s3cret").unwrap();
        let shown = key.to_string();
        assert_eq!(shown, "live/live_1234567890abcdef");
        assert!(!shown.contains("s3cret"));
        assert_eq!(key.redacted(), "live/liv***");
        assert_eq!(StreamKey::new("live", "ab").unwrap().redacted(), "live/***");
    }

    #[test]
    fn patterns_name_a_stream_an_app_or_all() {
        let key = StreamKey::new("live", "cam?token=x").unwrap();
        for (pattern, matches) in [
            ("live/cam", true),
            ("/live/*/", true),
            ("*", true),
            ("tv/*", false),
            ("live/dog", false),
        ] {
            let parsed = KeyPattern::parse(pattern).unwrap();
            assert_eq!(parsed.matches(&key), matches, "{pattern}");
        }
        assert_eq!(KeyPattern::parse("/live/*/").unwrap().to_string(), "live/*");
        for bad in ["cam", "*/cam", "live/c*m", "/cam", "live/", ""] {
            assert_eq!(KeyPattern::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_names() {
        assert_eq!(StreamKey::new("live", ""), Err(KeyError::Empty));
        assert_eq!(StreamKey::new("live", "?x=1"), Err(KeyError::Empty));
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            StreamKey::new("live", &long),
            Err(KeyError::TooLong(MAX_NAME_LEN + 1))
        );
        assert_eq!(
            StreamKey::new(&long, "cam"),
            Err(KeyError::TooLong(MAX_NAME_LEN + 1))
        );
        assert!(StreamKey::new("live", &"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn redacts_paths() {
        assert_eq!(redact_path("live/abcdef"), "live/abc***");
        assert_eq!(redact_path("abcdef"), "abc***");
        assert_eq!(redact_path("ab"), "***");
    }
}
