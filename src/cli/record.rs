//! The `-record-*` flags into [`RecordSettings`]: stream patterns, and a
//! recording directory that exists (created if need be) and takes files,
//! checked at startup rather than at the first publish.

use std::path::PathBuf;
use std::time::Duration;

use super::UsageError;
use super::values::{bytes, invalid, parse_bool, parse_duration};
use crate::hub::stream_key::KeyPattern;
use crate::record::RecordSettings;
use crate::record::pattern::{self, SegmentPattern};
use crate::record::retention::Retention;
use crate::record::sink::RecordFormat;

/// The `-record-*` and `-segment-*` flags as given.
pub(super) struct RecordFlags<'a> {
    pub all: &'a str,
    pub patterns: &'a [String],
    pub dir: &'a str,
    pub segment_duration: &'a str,
    pub segment_pattern: Option<&'a str>,
    pub max_age: Option<&'a str>,
    pub min_free: Option<&'a str>,
    pub format: &'a str,
}

pub(super) fn record_settings(flags: &RecordFlags<'_>) -> Result<RecordSettings, UsageError> {
    let mut patterns = Vec::new();
    for pattern in flags.patterns.iter().flat_map(|p| p.split(',')) {
        let parsed = KeyPattern::parse(pattern).ok_or_else(|| {
            UsageError(format!(
                "rtmp-server: invalid value {:?} for flag -record: \
                 want app/name or app/*, comma-separated",
                pattern.trim()
            ))
        })?;
        patterns.push(parsed);
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
    let format = match flags.format {
        "auto" => RecordFormat::Auto,
        "flv" => RecordFormat::Flv,
        "mp4" => RecordFormat::Mp4,
        other => return Err(invalid("record-format", other, "want auto, flv or mp4")),
    };
    let settings = RecordSettings {
        format,
        all: parse_bool("record-all", flags.all)?,
        patterns,
        dir: PathBuf::from(flags.dir),
        segment,
        names,
        retention: Retention {
            max_age: flags
                .max_age
                .map(|v| parse_duration("record-max-age", v))
                .transpose()?,
            min_free: flags
                .min_free
                .map(|v| parse_bytes("record-min-free", v))
                .transpose()?,
        },
    };
    if settings.is_enabled() {
        check_dir(&settings.dir)?;
    }
    Ok(settings)
}

/// A size such as `1GiB`, `500MiB`, `200M` or a number of bytes.
fn parse_bytes(flag: &str, value: &str) -> Result<u64, UsageError> {
    bytes(value)
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(flag, value, "want a size such as 1GiB or 500MiB"))
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
