//! What `-source` says: a stream fed by inputs in priority order, each a
//! stream key an encoder publishes to or an `rtmp://` URL the server
//! pulls, and the timing of health checks, failback, pulls and an
//! exhausted stream. Parsed and checked at startup.

use std::fmt;
use std::time::Duration;

use crate::hub::stream_key::StreamKey;
use crate::protocol::url::RtmpUrl;

/// Inputs one source may list.
pub const MAX_INPUTS: usize = 16;

/// Where one input's media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// A stream key encoders publish to, as to any other stream.
    Local(StreamKey),
    /// An upstream stream the server plays and pulls in.
    Pull(RtmpUrl),
}

impl InputSpec {
    pub fn is_pull(&self) -> bool {
        matches!(self, InputSpec::Pull(_))
    }

    /// As the API shows it: a key as `app/name`, a URL whole but for its
    /// query.
    pub fn label(&self) -> String {
        match self {
            InputSpec::Local(key) => key.as_path(),
            InputSpec::Pull(url) => url.without_query(),
        }
    }
}

impl fmt::Display for InputSpec {
    /// As logs show it (names redacted as `-log-redact-keys` says; a
    /// URL's stream name always cut short).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Local(key) => write!(f, "{key}"),
            InputSpec::Pull(url) => write!(f, "{url}"),
        }
    }
}

/// A stream fed by inputs in priority order (the first is preferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub key: StreamKey,
    pub inputs: Vec<InputSpec>,
}

impl SourceSpec {
    /// Parses `app/name=input,input,...`.
    pub fn parse(value: &str) -> Result<SourceSpec, String> {
        let value = value.trim();
        // The key ends at the first `=`; one after `://` belongs to a URL.
        let Some((key, inputs)) = value.split_once('=').filter(|(k, _)| !k.contains("://")) else {
            return Err(
                "want app/name=input,input,... (an input is app/name or rtmp://...)".into(),
            );
        };
        let key = parse_key(key).map_err(|e| format!("stream {e}"))?;
        let mut parsed = Vec::new();
        for input in inputs.split(',').map(str::trim) {
            if input.is_empty() {
                return Err(format!("{key}: an empty input in the list"));
            }
            let spec = if input.contains("://") {
                let url = RtmpUrl::parse(input).map_err(|e| format!("{key}: input {e}"))?;
                if url.name.is_none() {
                    return Err(format!(
                        "{key}: input {url} names no stream: want rtmp://host/app/name"
                    ));
                }
                InputSpec::Pull(url)
            } else {
                let input_key = parse_key(input).map_err(|e| format!("{key}: input {e}"))?;
                if input_key == key {
                    return Err(format!("{key}: a stream cannot be its own input"));
                }
                InputSpec::Local(input_key)
            };
            if parsed.contains(&spec) {
                return Err(format!("{key}: input {spec} is listed twice"));
            }
            parsed.push(spec);
        }
        if parsed.len() > MAX_INPUTS {
            return Err(format!("{key}: more than {MAX_INPUTS} inputs"));
        }
        Ok(SourceSpec {
            key,
            inputs: parsed,
        })
    }
}

/// `app/name` without a query.
fn parse_key(text: &str) -> Result<StreamKey, String> {
    let text = text.trim();
    if text.contains('?') {
        return Err(format!("{text:?}: a stream key here takes no ?query"));
    }
    let Some((app, name)) = text.split_once('/') else {
        return Err(format!("{text:?}: want app/name"));
    };
    if app.is_empty() {
        return Err(format!("{text:?}: want app/name"));
    }
    StreamKey::new(app, name).map_err(|e| format!("{text:?}: {e}"))
}

/// The `-source` streams and their timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub sources: Vec<SourceSpec>,
    /// An input sending no media this long is degraded (`-input-timeout`).
    pub input_timeout: Duration,
    /// A preferred input healthy this long is switched back to.
    pub failback_delay: Duration,
    /// Players of a stream with no input left wait this long.
    pub exhausted_timeout: Duration,
    /// A pull no player needs is closed after this long.
    pub pull_idle_timeout: Duration,
    /// Upstream connections open at once, at most.
    pub max_pulls: usize,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            sources: Vec::new(),
            input_timeout: Duration::from_secs(3),
            failback_delay: Duration::from_secs(5),
            exhausted_timeout: Duration::from_secs(30),
            pull_idle_timeout: Duration::from_secs(30),
            max_pulls: 8,
        }
    }
}

impl SourceSettings {
    /// Checks what single values cannot show: a stream fed twice, an
    /// input that is itself a fed stream.
    pub fn check(&self) -> Result<(), String> {
        for (n, source) in self.sources.iter().enumerate() {
            if self.sources[..n].iter().any(|s| s.key == source.key) {
                return Err(format!("{} is given twice", source.key));
            }
            for input in &source.inputs {
                if let InputSpec::Local(key) = input
                    && self.sources.iter().any(|s| &s.key == key)
                {
                    return Err(format!(
                        "{}: input {key} is itself a -source stream",
                        source.key
                    ));
                }
            }
        }
        Ok(())
    }

    /// The source feeding `key`, if one does.
    pub fn find(&self, key: &StreamKey) -> Option<&SourceSpec> {
        self.sources.iter().find(|s| &s.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_pulled_inputs_in_order() {
        let spec = SourceSpec::parse(
            "live/show=live/show.main, live/show.backup,rtmp://192.168.1.20/live/cam?token=x",
        )
        .unwrap();
        assert_eq!(spec.key.as_path(), "live/show");
        assert_eq!(spec.inputs.len(), 3);
        assert_eq!(spec.inputs[0].label(), "live/show.main");
        assert!(spec.inputs[2].is_pull());
        assert_eq!(
            spec.inputs[2].label(),
            "rtmp://192.168.1.20/live/cam",
            "shown without its query"
        );
    }

    #[test]
    fn refuses_what_cannot_work() {
        for (value, why) in [
            ("live/show", "want app/name="),
            ("show=live/a", "want app/name"),
            ("live/show=", "empty input"),
            ("live/show=live/show", "its own input"),
            ("live/show=live/a,live/a", "listed twice"),
            ("live/show=rtmp://host/live", "names no stream"),
            ("live/show=http://host/live/a", "scheme"),
            ("live/show?x=1=live/a", "no ?query"),
        ] {
            let e = SourceSpec::parse(value).unwrap_err();
            assert!(e.contains(why), "{value}: {e}");
        }
    }

    #[test]
    fn a_fed_stream_is_no_input_and_not_fed_twice() {
        let settings = |values: &[&str]| SourceSettings {
            sources: values
                .iter()
                .map(|v| SourceSpec::parse(v).unwrap())
                .collect(),
            ..SourceSettings::default()
        };
        assert!(
            settings(&["live/a=live/x", "live/b=live/x"])
                .check()
                .is_ok()
        );
        let e = settings(&["live/a=live/x", "live/a=live/y"])
            .check()
            .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = settings(&["live/a=live/b", "live/b=live/x"])
            .check()
            .unwrap_err();
        assert!(e.contains("itself a -source"), "{e}");
    }
}
