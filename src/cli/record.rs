//! The `-record-*` flags into [`RecordSettings`]: stream patterns, and a
//! recording directory that exists (created if need be) and takes files,
//! checked at startup rather than at the first publish.

use std::path::PathBuf;
use std::time::Duration;

use super::UsageError;
use super::values::{invalid, parse_bool, parse_duration};
use crate::record::RecordSettings;
use crate::record::pattern::{self, SegmentPattern};

/// The `-record-*` and `-segment-*` flags as given.
pub(super) struct RecordFlags<'a> {
    pub all: &'a str,
    pub patterns: &'a [String],
    pub dir: &'a str,
    pub segment_duration: &'a str,
    pub segment_pattern: Option<&'a str>,
}

pub(super) fn record_settings(flags: &RecordFlags<'_>) -> Result<RecordSettings, UsageError> {
    let mut patterns = Vec::new();
    for pattern in flags.patterns.iter().flat_map(|p| p.split(',')) {
        let pattern = pattern.trim().trim_matches('/');
        let valid = matches!(pattern.split_once('/'), Some((app, name))
            if !app.is_empty() && !name.is_empty() && !app.contains('*')
                && (name == "*" || !name.contains('*')));
        if !valid {
            return Err(UsageError(format!(
                "rtmp-server: invalid value {pattern:?} for flag -record: \
                 want app/name or app/*, comma-separated"
            )));
        }
        patterns.push(pattern.to_owned());
    }
    let segment = match flags.segment_duration.trim() {
        "0" | "" => None,
        value => match parse_duration("segment-duration", value)? {
            d if d >= Duration::from_secs(1) => Some(d),
            _ => {
                return Err(invalid(
                    "segment-duration",
                    value,
                    "want 0 (one file per session) or at least 1s, e.g. 30s or 10m",
                ));
            }
        },
    };
    let default = if segment.is_some() {
        pattern::DEFAULT_SEGMENTED
    } else {
        pattern::DEFAULT
    };
    let names_given = flags.segment_pattern.unwrap_or(default);
    let names = SegmentPattern::parse(names_given).map_err(|e| {
        UsageError(format!(
            "rtmp-server: invalid value {names_given:?} for flag -segment-pattern: {e}"
        ))
    })?;
    let settings = RecordSettings {
        all: parse_bool("record-all", flags.all)?,
        patterns,
        dir: PathBuf::from(flags.dir),
        segment,
        names,
    };
    if settings.is_enabled() {
        check_dir(&settings.dir)?;
    }
    Ok(settings)
}

/// Creates the directory if need be and makes sure a file can be
/// written in it.
fn check_dir(dir: &std::path::Path) -> Result<(), UsageError> {
    let fail = |why: String| {
        UsageError(format!(
            "rtmp-server: cannot record in {dir:?} (flag -record-dir): {why}"
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let probe = dir.join(format!(".rtmp-server-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(e.to_string()))?;
    std::fs::remove_file(&probe).map_err(|e| fail(e.to_string()))?;
    Ok(())
}
