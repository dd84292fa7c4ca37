//! The `-auth-*` flags into [`AuthSettings`]: each mode with the flags it
//! needs, none it ignores, the token file read at startup. Error lines
//! name the flag and the stream pattern, never a token.

use std::path::PathBuf;

use super::UsageError;
use super::values::{invalid, parse_bool, parse_duration};
use crate::auth::callback::shown_url;
use crate::auth::tokens::TokenMap;
use crate::auth::{AuthMode, AuthSettings, read_token_file};

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
