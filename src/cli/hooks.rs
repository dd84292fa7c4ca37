//! The `-hook-*` flags into [`HookSettings`]: known event names (or `*`),
//! scripts that exist and may be run, webhook URLs, the stdio format, the
//! timeout and the concurrency.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::UsageError;
use super::access::parse_http_url;
use super::values::{invalid, parse_count, parse_duration};
use crate::hooks::payload::HOOK_EVENTS;
use crate::hooks::{EventFilter, HookSettings, HookTarget, StdioFormat};

/// Most `-hook-concurrency`.
const MAX_CONCURRENCY: usize = 1000;

/// The `-hook-*` flags as given.
pub(super) struct HookFlags<'a> {
    pub scripts: &'a [String],
    pub webhooks: &'a [String],
    pub stdio_format: Option<&'a str>,
    pub timeout: &'a str,
    pub concurrency: &'a str,
}

pub(super) fn hook_settings(flags: &HookFlags<'_>) -> Result<HookSettings, UsageError> {
    let mut hooks = Vec::new();
    for entry in flags.scripts {
        let (filter, path) = split_entry("hook-script", entry)?;
        hooks.push((filter, HookTarget::Script(script_path(path)?)));
    }
    for entry in flags.webhooks {
        let (filter, url) = split_entry("hook-webhook", entry)?;
        hooks.push((
            filter,
            HookTarget::Webhook(parse_http_url("hook-webhook", url)?),
        ));
    }
    let stdio = match flags.stdio_format {
        None | Some("") => None,
        Some("json") => Some(StdioFormat::Json),
        Some("env") => Some(StdioFormat::Env),
        Some(other) => return Err(invalid("hook-stdio-format", other, "want json or env")),
    };
    let concurrency = parse_count(
        "hook-concurrency",
        flags.concurrency,
        1..=MAX_CONCURRENCY,
        None,
    )?;
    Ok(HookSettings {
        hooks,
        stdio,
        timeout: parse_duration("hook-timeout", flags.timeout)?,
        concurrency,
    })
}

/// `EVENT=target`, with a known event or `*`.
fn split_entry<'a>(flag: &str, entry: &'a str) -> Result<(EventFilter, &'a str), UsageError> {
    let Some((event, target)) = entry.split_once('=') else {
        return Err(UsageError(format!(
            "rtmp-server: invalid value for flag -{flag}: want EVENT=TARGET, e.g. publish_start=..."
        )));
    };
    let filter = EventFilter::parse(event.trim()).ok_or_else(|| {
        UsageError(format!(
            "rtmp-server: unknown event {event:?} in flag -{flag}: want * or one of {}",
            HOOK_EVENTS.join(", ")
        ))
    })?;
    if target.is_empty() {
        return Err(invalid(flag, event, "nothing after ="));
    }
    Ok((filter, target))
}

/// A script that exists and may be executed.
fn script_path(path: &str) -> Result<PathBuf, UsageError> {
    let fail = |why: String| {
        UsageError(format!(
            "rtmp-server: script {path:?} (flag -hook-script): {why}"
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a file".into()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(fail("not executable (chmod +x it)".into()));
    }
    Ok(PathBuf::from(path))
}
