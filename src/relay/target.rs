//! Where published streams are relayed: `-relay-to` destinations (an
//! application URL: every stream goes to `app/<its name>` there) and
//! `-relay-map` entries (one stream key to an explicit URL, query string
//! and all, as services such as YouTube expect), parsed and checked at
//! startup.

use std::fmt;

use crate::hub::stream_key::StreamKey;
use crate::protocol::url::RtmpUrl;

/// The relay destinations of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayTargets {
    /// Applications every stream is relayed to, under its own name.
    to: Vec<RtmpUrl>,
    /// Streams (`app/name`) relayed to one explicit URL each.
    map: Vec<(String, RtmpUrl)>,
}

/// A `-relay-to` or `-relay-map` value that cannot be used (the value
/// itself is not repeated: it may hold a stream key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub flag: &'static str,
    pub why: String,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{}: {}", self.flag, self.why)
    }
}

fn to_error(why: impl ToString) -> TargetError {
    TargetError {
        flag: "relay-to",
        why: why.to_string(),
    }
}

fn map_error(why: impl ToString) -> TargetError {
    TargetError {
        flag: "relay-map",
        why: why.to_string(),
    }
}

impl std::error::Error for TargetError {}

impl RelayTargets {
    /// Parses `-relay-to` values (each may hold several URLs separated by
    /// commas) and `-relay-map` values (`app/name=URL`).
    pub fn parse(to: &[String], map: &[String]) -> Result<RelayTargets, TargetError> {
        let mut targets = RelayTargets::default();
        for url in to.iter().flat_map(|v| v.split(',')).map(str::trim) {
            if url.is_empty() {
                continue;
            }
            let parsed = RtmpUrl::parse(url).map_err(to_error)?;
            if parsed.name.is_some() {
                return Err(to_error(format!(
                    "{parsed}: want rtmp://host[:port]/app (every stream goes to app/<its name>); \
                     use -relay-map app/name=URL for one stream"
                )));
            }
            targets.to.push(parsed);
        }
        for entry in map.iter().map(|v| v.trim()) {
            // The key ends at the first `=`; one after `://` belongs to
            // the URL (a key forgotten).
            let split = entry
                .split_once('=')
                .filter(|(key, _)| !key.contains("://"));
            let Some((key, url)) = split else {
                return Err(map_error("want app/name=rtmp://host/app/name"));
            };
            let (app, name) = key.rsplit_once('/').unwrap_or(("", key));
            let key =
                StreamKey::new(app, name).map_err(|e| map_error(format!("stream key: {e}")))?;
            let parsed = RtmpUrl::parse(url).map_err(map_error)?;
            if parsed.name.is_none() {
                return Err(map_error(format!(
                    "{parsed}: want the stream name too (rtmp://host/app/name)"
                )));
            }
            targets.map.push((key.as_path(), parsed));
        }
        Ok(targets)
    }

    pub fn is_empty(&self) -> bool {
        self.to.is_empty() && self.map.is_empty()
    }

    /// The URLs the stream `key` (`app/name`) is relayed to, each once.
    pub fn destinations(&self, key: &StreamKey) -> Vec<RtmpUrl> {
        let for_all = self.to.iter().map(|app| app.with_name(key.name()));
        let mapped = self
            .map
            .iter()
            .filter(|(path, _)| *path == key.as_path())
            .map(|(_, url)| url.clone());
        let mut urls: Vec<RtmpUrl> = Vec::new();
        for url in for_all.chain(mapped) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn every_stream_goes_to_each_application_and_mapped_keys_to_their_url() {
        let targets = RelayTargets::parse(
            &strings(&["rtmp://edge1/live,rtmp://edge2:1936/live", "rtmp://big/in"]),
            &strings(&["live/cam=rtmp://a.rtmp.youtube.com/live2/abcd?key=secret"]),
        )
        .unwrap();
        let cam = StreamKey::new("live", "cam").unwrap();
        let urls = targets.destinations(&cam);
        let names: Vec<_> = urls
            .iter()
            .map(|u| (u.authority(), u.app.clone(), u.name.clone().unwrap()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("edge1".into(), "live".into(), "cam".into()),
                ("edge2:1936".into(), "live".into(), "cam".into()),
                ("big".into(), "in".into(), "cam".into()),
                (
                    "a.rtmp.youtube.com".into(),
                    "live2".into(),
                    "abcd?key=secret".into()
                ),
            ]
        );
        let other = StreamKey::new("live", "other").unwrap();
        assert_eq!(targets.destinations(&other).len(), 3);
        // The query never shows in what is logged.
        assert!(!urls[3].to_string().contains("secret"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (to, map) in [
            (vec!["http://edge/live"], vec![]),
            (vec!["rtmp://edge/live/cam"], vec![]),
            (vec![], vec!["live/cam"]),
            (vec![], vec!["live/cam=rtmp://edge/live"]),
            (vec![], vec!["=rtmp://edge/live/cam"]),
        ] {
            assert!(
                RelayTargets::parse(&strings(&to), &strings(&map)).is_err(),
                "{to:?} {map:?}"
            );
        }
        assert!(RelayTargets::parse(&[], &[]).unwrap().is_empty());
    }
}
