//! Values of flags: addresses, sizes, durations, booleans as Go's flag
//! package reads them, and the error line a bad one gets.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::UsageError;

/// Bounds of `-max-message-size`: a 64 KiB floor keeps clients working,
/// the 16 MiB cap is the largest length an RTMP chunk header can state.
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=0xff_ffff;

/// Longest `-write-coalesce`: more would add visible latency.
const MAX_COALESCE: Duration = Duration::from_millis(100);

pub(super) fn invalid(flag: &str, value: &str, why: &str) -> UsageError {
    UsageError(format!(
        "rtmp-server: invalid value {value:?} for flag -{flag}: {why}"
    ))
}

/// `:1935` listens on every IPv4 interface, as Go's `net.Listen` does;
/// `host:port` and `[v6]:port` are resolved.
pub(super) fn parse_addr(flag: &str, value: &str) -> Result<SocketAddr, UsageError> {
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| invalid(flag, value, "want host:port or :port"))
}

pub(super) fn parse_chunk_size(value: &str) -> Result<usize, UsageError> {
    parse_count("chunk-size", value, 128..=65536, None)
}

/// A whole number within `range`; `zero_means` says what 0 does when the
/// range starts there (`"no limit"`), for the error line.
pub(super) fn parse_count(
    flag: &str,
    value: &str,
    range: std::ops::RangeInclusive<usize>,
    zero_means: Option<&str>,
) -> Result<usize, UsageError> {
    match value.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => {
            let from = match zero_means {
                Some(means) => format!("{} ({means})", range.start()),
                None => range.start().to_string(),
            };
            let why = format!("want a number from {from} to {}", range.end());
            Err(invalid(flag, value, &why))
        }
    }
}

/// The words Go's `strconv.ParseBool` accepts.
pub(super) fn parse_bool_word(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub(super) fn parse_bool(flag: &str, value: &str) -> Result<bool, UsageError> {
    parse_bool_word(value).ok_or_else(|| invalid(flag, value, "want true or false"))
}

/// A byte count: a plain number, or with a `KiB`/`MiB` (or `K`/`M`) suffix.
pub(super) fn parse_size(flag: &str, value: &str) -> Result<usize, UsageError> {
    bytes(value)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| MESSAGE_SIZE_RANGE.contains(n))
        .ok_or_else(|| {
            invalid(
                flag,
                value,
                "want a size from 64KiB to 16777215 bytes, e.g. 4MiB",
            )
        })
}

/// A byte count: a plain number, or with a `K`, `M`, `G` or `T` suffix
/// (`KiB`, `KB`, `k`...: powers of 1024).
pub(super) fn bytes(value: &str) -> Option<u64> {
    let trimmed = value.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// `-write-coalesce`: zero (off) or a duration up to 100 ms.
pub(super) fn parse_coalesce(value: &str) -> Result<Duration, UsageError> {
    if value.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    match parse_duration("write-coalesce", value) {
        Ok(d) if d <= MAX_COALESCE => Ok(d),
        _ => Err(invalid(
            "write-coalesce",
            value,
            "want 0 or a duration up to 100ms, e.g. 20ms",
        )),
    }
}

/// Go durations (`10s`, `500ms`, `1m30s`); a bare number means seconds.
pub(super) fn parse_duration(flag: &str, value: &str) -> Result<Duration, UsageError> {
    let parsed = match value.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(value),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(invalid(
            flag,
            value,
            "want a positive duration such as 10s, 500ms or 1m30s",
        )),
    }
}

/// `-reconnect-url`: where Enhanced RTMP clients asked to reconnect go, a
/// tcUrl (`rtmp://host[:port]/app`, or `rtmps://`). The error never
/// repeats the value: its query may hold a token.
pub(super) fn reconnect_url(value: &str) -> Result<String, UsageError> {
    crate::protocol::url::RtmpUrl::parse(value)
        .map(|_| value.to_owned())
        .map_err(|e| {
            UsageError(format!(
                "rtmp-server: invalid value for flag -reconnect-url: {e}"
            ))
        })
}
