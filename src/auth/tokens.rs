//! Stream tokens: which secret lets a client publish or play which stream
//! (`live/cam=secret`, `live/*=secret`), read from `-auth-token` flags or
//! an `-auth-file` JSON object, and the token a client presents in a
//! stream name's or connect URL's query (`?token=secret`). Secrets are
//! never printed and are compared in constant time.

use std::collections::HashMap;
use std::fmt;

use subtle::ConstantTimeEq;

use crate::hub::stream_key::KeyPattern;

/// A secret token: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Whether `presented` is this secret, in time independent of where
    /// they differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a token entry or file cannot be used. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not `app/name=secret`.
    Shape,
    /// The stream part is not `app/name`, `app/*` or `*`.
    Pattern(String),
    EmptySecret(String),
    /// The file is not a JSON object of strings.
    Json(String),
    Empty,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Shape => write!(f, "want app/name=secret"),
            TokenError::Pattern(p) => {
                write!(f, "stream {p:?}: want app/name, app/* or *")
            }
            TokenError::EmptySecret(p) => write!(f, "stream {p:?}: empty token"),
            TokenError::Json(why) => write!(f, "{why}"),
            TokenError::Empty => write!(f, "no tokens given"),
        }
    }
}

impl std::error::Error for TokenError {}

/// Secrets by stream: exact `app/name` first, then `app/*`, then `*`.
/// A stream may have several secrets; any of them lets the client in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenMap {
    by_pattern: HashMap<String, Vec<Secret>>,
}

/// What a lookup found for a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    Wrong,
    /// No secret is set for this stream.
    Unknown,
}

impl TokenMap {
    /// The map `-auth-token app/name=secret` flags make.
    pub fn from_entries(entries: &[String]) -> Result<TokenMap, TokenError> {
        let mut map = TokenMap::default();
        for entry in entries {
            let (pattern, secret) = entry.split_once('=').ok_or(TokenError::Shape)?;
            map.insert(pattern, secret)?;
        }
        if map.by_pattern.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(map)
    }

    /// The map an `-auth-file` holds: `{"live/cam": "secret", "live/*":
    /// "other"}`. An empty object is allowed (nobody gets in).
    pub fn from_json(text: &str) -> Result<TokenMap, TokenError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            // serde_json's messages name a position, never the content.
            TokenError::Json(format!("not valid JSON: {e}"))
        })?;
        let object = value.as_object().ok_or_else(|| {
            TokenError::Json("want a JSON object of \"app/name\": \"token\"".into())
        })?;
        let mut map = TokenMap::default();
        for (pattern, secret) in object {
            let secret = secret.as_str().ok_or_else(|| {
                TokenError::Json(format!("stream {pattern:?}: the token must be a string"))
            })?;
            map.insert(pattern, secret)?;
        }
        Ok(map)
    }

    fn insert(&mut self, pattern: &str, secret: &str) -> Result<(), TokenError> {
        let pattern = pattern.trim().trim_matches('/');
        if pattern != "*" && !pattern.contains('/') {
            // Not echoed: it may be a token typed without `app/name=`.
            return Err(TokenError::Shape);
        }
        let pattern = KeyPattern::parse(pattern)
            .ok_or_else(|| TokenError::Pattern(pattern.to_owned()))?
            .to_string();
        let pattern = pattern.as_str();
        if secret.is_empty() {
            return Err(TokenError::EmptySecret(pattern.to_owned()));
        }
        self.by_pattern
            .entry(pattern.to_owned())
            .or_default()
            .push(Secret(secret.to_owned()));
        Ok(())
    }

    /// How many stream patterns have secrets.
    pub fn len(&self) -> usize {
        self.by_pattern.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pattern.is_empty()
    }

    /// Checks `presented` against the secrets of `app/name`: the most
    /// specific pattern that has any decides.
    pub fn check(&self, app: &str, name: &str, presented: Option<&Presented>) -> TokenCheck {
        let secrets = self
            .by_pattern
            .get(&format!("{app}/{name}"))
            .or_else(|| self.by_pattern.get(&format!("{app}/*")))
            .or_else(|| self.by_pattern.get("*"));
        let Some(secrets) = secrets else {
            return TokenCheck::Unknown;
        };
        let Some(presented) = presented else {
            return TokenCheck::Wrong;
        };
        // Every secret is compared, so timing does not tell which matched.
        let matched = secrets.iter().fold(false, |any, secret| {
            secret.matches(&presented.decoded) | secret.matches(&presented.raw) | any
        });
        if matched {
            TokenCheck::Valid
        } else {
            TokenCheck::Wrong
        }
    }
}

/// A token as a client sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    /// Percent-decoded, `+` as a space, as a browser would encode it.
    pub decoded: String,
    /// As typed: RTMP clients send the stream key as it was entered, so a
    /// base64 token's `+` stays a `+`.
    pub raw: String,
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Presented(***)")
    }
}

/// The `token` parameter of a query string (`token=secret&x=y`).
pub fn token_in_query(query: &str) -> Option<Presented> {
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))?;
    let decoded = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "token")
        .map_or_else(|| raw.to_owned(), |(_, value)| value.into_owned());
    Some(Presented {
        decoded,
        raw: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> Presented {
        Presented {
            decoded: s.into(),
            raw: s.into(),
        }
    }

    fn map(entries: &[&str]) -> TokenMap {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        TokenMap::from_entries(&entries).unwrap()
    }

    #[test]
    fn the_most_specific_pattern_decides() {
        let tokens = map(&["live/cam=one", "live/*=two", "*=three"]);
        assert_eq!(
            tokens.check("live", "cam", Some(&token("one"))),
            TokenCheck::Valid
        );
        assert_eq!(
            tokens.check("live", "cam", Some(&token("two"))),
            TokenCheck::Wrong
        );
        assert_eq!(
            tokens.check("live", "other", Some(&token("two"))),
            TokenCheck::Valid
        );
        assert_eq!(
            tokens.check("tv", "x", Some(&token("three"))),
            TokenCheck::Valid
        );
        assert_eq!(tokens.check("live", "cam", None), TokenCheck::Wrong);
        let narrow = map(&["live/cam=one"]);
        assert_eq!(
            narrow.check("live", "dog", Some(&token("one"))),
            TokenCheck::Unknown
        );
    }

    #[test]
    fn a_stream_may_have_several_secrets() {
        let tokens = map(&["live/cam=one", "live/cam=two"]);
        assert_eq!(
            tokens.check("live", "cam", Some(&token("two"))),
            TokenCheck::Valid
        );
        assert_eq!(
            tokens.check("live", "cam", Some(&token("one"))),
            TokenCheck::Valid
        );
        assert_eq!(
            tokens.check("live", "cam", Some(&token("on"))),
            TokenCheck::Wrong
        );
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_secrets() {
        for (entry, want) in [
            ("live/cam", TokenError::Shape),
            ("cam=s3cret", TokenError::Shape),
            ("s3cret==", TokenError::Shape),
            ("live/c*m=s3cret", TokenError::Pattern("live/c*m".into())),
            ("*/cam=s3cret", TokenError::Pattern("*/cam".into())),
            ("live/cam=", TokenError::EmptySecret("live/cam".into())),
        ] {
            let err = TokenMap::from_entries(&[entry.to_string()]).unwrap_err();
            assert_eq!(err, want, "{entry}");
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        assert_eq!(TokenMap::from_entries(&[]).unwrap_err(), TokenError::Empty);
    }

    #[test]
    fn a_token_file_is_an_object_of_strings() {
        let tokens = TokenMap::from_json(r#"{"live/cam": "a", "live/*": "b"}"#).unwrap();
        assert_eq!(
            tokens.check("live", "cam", Some(&token("a"))),
            TokenCheck::Valid
        );
        assert_eq!(
            tokens.check("live", "x", Some(&token("b"))),
            TokenCheck::Valid
        );
        assert!(TokenMap::from_json("{}").unwrap().is_empty());
        for bad in [
            r#"["live/cam"]"#,
            r#"{"live/cam": 5}"#,
            r#"{"cam": "x"}"#,
            "{\"live/cam\": \"s3cret\"",
        ] {
            let err = TokenMap::from_json(bad).unwrap_err();
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn the_token_is_found_in_a_query_and_decoded() {
        assert_eq!(token_in_query("token=abc"), Some(token("abc")));
        let encoded = token_in_query("x=1&token=a%2Fb").unwrap();
        assert_eq!(
            (encoded.decoded.as_str(), encoded.raw.as_str()),
            ("a/b", "a%2Fb")
        );
        assert_eq!(token_in_query("tokens=abc"), None);
        assert_eq!(token_in_query(""), None);
        // A base64 token typed into OBS: either form matches.
        let tokens = map(&["live/cam=ab+c/d=="]);
        let typed = token_in_query("token=ab+c/d==").unwrap();
        assert_eq!(typed.decoded, "ab c/d==");
        assert_eq!(tokens.check("live", "cam", Some(&typed)), TokenCheck::Valid);
    }

    #[test]
    fn secrets_are_never_printed() {
        let tokens = map(&["live/cam=s3cret"]);
        assert!(!format!("{tokens:?}").contains("s3cret"));
    }
}
