//! The `-auth-*` flags into [`AuthSettings`] (each mode with the flags it
//! needs, none it ignores, the token file read at startup), and the API
//! token from its flag, file or environment. Error lines name the flag
//! and the stream pattern, never a token.

use std::path::PathBuf;

use super::values::{invalid, parse_bool, parse_duration};
use super::{API_TOKEN_ENV, UsageError};
use crate::auth::callback::shown_url;
use crate::auth::tokens::TokenMap;
use crate::auth::{AuthMode, AuthSettings, read_token_file};
use crate::config::ApiToken;

/// The `-auth-*` flags as given.
pub(super) struct AuthFlags<'a> {
    pub mode: &'a str,
    pub tokens: &'a [String],
    pub file: Option<&'a str>,
    pub callback: Option<&'a str>,
    pub callback_timeout: &'a str,
    pub play: &'a str,
}

pub(super) fn auth_settings(flags: &AuthFlags<'_>) -> Result<AuthSettings, UsageError> {
    let play = parse_bool("auth-play", flags.play)?;
    let callback_timeout = parse_duration("auth-callback-timeout", flags.callback_timeout)?;
    let given = [
        ("auth-token", !flags.tokens.is_empty(), "token"),
        ("auth-file", flags.file.is_some(), "file"),
        ("auth-callback", flags.callback.is_some(), "callback"),
    ];
    for (flag, is_given, mode) in given {
        if is_given && flags.mode != mode {
            return Err(UsageError(format!(
                "rtmp-server: flag -{flag} needs -auth-mode {mode} (it is {:?})",
                flags.mode
            )));
        }
    }
    let mode = match flags.mode {
        "none" => AuthMode::None,
        "token" if flags.tokens.is_empty() => {
            return Err(needs("token", "-auth-token app/name=secret"));
        }
        "token" => AuthMode::Token(TokenMap::from_entries(flags.tokens).map_err(|e| {
            UsageError(format!(
                "rtmp-server: invalid value for flag -auth-token: {e}"
            ))
        })?),
        "file" => {
            let path = PathBuf::from(flags.file.ok_or_else(|| needs("file", "-auth-file PATH"))?);
            let tokens = read_token_file(&path).map_err(|e| {
                UsageError(format!(
                    "rtmp-server: invalid file {path:?} for flag -auth-file: {e}"
                ))
            })?;
            AuthMode::File { path, tokens }
        }
        "callback" => {
            let url = flags
                .callback
                .ok_or_else(|| needs("callback", "-auth-callback URL"))?;
            AuthMode::Callback {
                url: parse_http_url("auth-callback", url)?,
                timeout: callback_timeout,
            }
        }
        other => {
            return Err(invalid(
                "auth-mode",
                other,
                "want none, token, file or callback",
            ));
        }
    };
    Ok(AuthSettings { mode, play })
}

fn needs(mode: &str, flag: &str) -> UsageError {
    UsageError(format!("rtmp-server: -auth-mode {mode} needs {flag}"))
}

/// An `http://` or `https://` URL with a host. A bad one is named without
/// its query (which may hold credentials).
pub(super) fn parse_http_url(flag: &str, value: &str) -> Result<String, UsageError> {
    let valid = value
        .parse::<ureq::http::Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
        .is_some_and(|uri| uri.host().is_some_and(|h| !h.is_empty()));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            flag,
            &shown_url(value),
            "want an http:// or https:// URL",
        ))
    }
}

/// The API token: from `-api-token`, from the file `-api-token-file` names
/// (which, unlike the command line, `ps` does not show), or from
/// `RTMP_API_TOKEN`, in that order; two flags at once are an error.
pub(super) fn api_token(
    flag: Option<String>,
    file: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<ApiToken>, UsageError> {
    let (token, source) = match (flag, file) {
        (Some(_), Some(_)) => {
            return Err(UsageError(
                "rtmp-server: flags -api-token and -api-token-file are both given: use one".into(),
            ));
        }
        (Some(token), None) => (token, "flag -api-token"),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => (text, "flag -api-token-file"),
            Err(e) => {
                return Err(UsageError(format!(
                    "rtmp-server: cannot read {path:?} (flag -api-token-file): {e}"
                )));
            }
        },
        (None, None) => match env(API_TOKEN_ENV) {
            Some(token) => (token, "environment variable RTMP_API_TOKEN"),
            None => return Ok(None),
        },
    };
    match token.trim() {
        "" => Err(UsageError(format!(
            "rtmp-server: invalid API token from {source}: must not be empty"
        ))),
        token if token.contains(char::is_whitespace) => Err(UsageError(format!(
            "rtmp-server: invalid API token from {source}: must not contain spaces"
        ))),
        token => Ok(Some(ApiToken::new(token))),
    }
}

/// `-http-cors`: `*`, one origin (`https://host[:port]`), or `off`.
pub(super) fn http_cors(value: &str) -> Result<Option<String>, UsageError> {
    if value == "off" || value.is_empty() {
        return Ok(None);
    }
    let origin = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let host_ok = origin.is_some_and(|host| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    });
    if value == "*" || host_ok {
        Ok(Some(value.to_owned()))
    } else {
        Err(UsageError(format!(
            "rtmp-server: invalid value for flag -http-cors: {value:?} \
             (want *, an origin such as https://example.com, or off)"
        )))
    }
}
