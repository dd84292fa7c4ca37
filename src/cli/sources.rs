//! The `-source` flags into [`SourceSettings`]: each stream's inputs, and
//! the timing of health checks, failback, exhausted streams and pulls.

use std::time::Duration;

use super::UsageError;
use super::values::{invalid, parse_count, parse_duration};
use crate::source::{SourceSettings, SourceSpec};

/// Shortest `-input-timeout`: less would degrade inputs between frames.
const MIN_INPUT_TIMEOUT: Duration = Duration::from_millis(200);
/// Most `-max-pulls`.
const MAX_PULLS: usize = 1000;

/// The `-source` flags as given.
pub(super) struct SourceFlags<'a> {
    pub sources: &'a [String],
    pub input_timeout: &'a str,
    pub failback_delay: &'a str,
    pub exhausted_timeout: &'a str,
    pub pull_idle_timeout: &'a str,
    pub max_pulls: &'a str,
}

/// A duration that may be zero (`0`: at once).
fn duration_or_zero(flag: &str, value: &str) -> Result<Duration, UsageError> {
    match value.trim() {
        "0" => Ok(Duration::ZERO),
        value => parse_duration(flag, value),
    }
}

pub(super) fn source_settings(flags: &SourceFlags<'_>) -> Result<SourceSettings, UsageError> {
    let sources = flags
        .sources
        .iter()
        .map(|value| {
            SourceSpec::parse(value).map_err(|e| {
                UsageError(format!("rtmp-server: invalid value for flag -source: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let input_timeout = parse_duration("input-timeout", flags.input_timeout)?;
    if input_timeout < MIN_INPUT_TIMEOUT {
        return Err(invalid(
            "input-timeout",
            flags.input_timeout,
            "want at least 200ms, e.g. 3s",
        ));
    }
    let max_pulls = parse_count("max-pulls", flags.max_pulls, 1..=MAX_PULLS, None)?;
    let settings = SourceSettings {
        sources,
        input_timeout,
        failback_delay: duration_or_zero("failback-delay", flags.failback_delay)?,
        exhausted_timeout: duration_or_zero("exhausted-timeout", flags.exhausted_timeout)?,
        pull_idle_timeout: duration_or_zero("pull-idle-timeout", flags.pull_idle_timeout)?,
        max_pulls,
    };
    settings
        .check()
        .map_err(|e| UsageError(format!("rtmp-server: invalid value for flag -source: {e}")))?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::super::{Invocation, parse};
    use crate::config::Config;
    use crate::source::InputSpec;
    use std::time::Duration;

    fn run(list: &[&str]) -> Result<Config, String> {
        let args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        match parse("rtmp-server", &args) {
            Ok(Invocation::Run { config, .. }) => Ok(*config),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn sources_and_their_timing() {
        let defaults = run(&[]).unwrap().sources;
        assert!(defaults.sources.is_empty());
        assert_eq!(
            (
                defaults.input_timeout,
                defaults.failback_delay,
                defaults.exhausted_timeout,
                defaults.pull_idle_timeout,
                defaults.max_pulls
            ),
            (
                Duration::from_secs(3),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(30),
                8
            )
        );
        let c = run(&[
            "-source",
            "live/show=live/show.main,live/show.backup",
            "-source=live/cam=rtmp://192.168.1.20/live/cam",
            "-input-timeout",
            "1500ms",
            "-failback-delay",
            "0",
            "-exhausted-timeout=10s",
            "-pull-idle-timeout",
            "0",
            "-max-pulls",
            "2",
        ])
        .unwrap()
        .sources;
        assert_eq!(c.sources.len(), 2);
        assert!(matches!(c.sources[1].inputs[0], InputSpec::Pull(_)));
        assert_eq!(c.input_timeout, Duration::from_millis(1500));
        assert_eq!(c.failback_delay, Duration::ZERO);
        assert_eq!(c.exhausted_timeout, Duration::from_secs(10));
        assert_eq!(c.pull_idle_timeout, Duration::ZERO);
        assert_eq!(c.max_pulls, 2);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (list, says) in [
            (&["-source", "live/show"][..], "-source"),
            (&["-source", "live/show=ftp://h/live/x"], "-source"),
            (
                &["-source", "live/a=live/x", "-source", "live/a=live/y"],
                "-source",
            ),
            (&["-input-timeout", "100ms"], "-input-timeout"),
            (&["-input-timeout", "0"], "-input-timeout"),
            (&["-failback-delay", "soon"], "-failback-delay"),
            (&["-exhausted-timeout", "-1s"], "-exhausted-timeout"),
            (&["-pull-idle-timeout", "x"], "-pull-idle-timeout"),
            (&["-max-pulls", "0"], "-max-pulls"),
            (&["-max-pulls", "1001"], "-max-pulls"),
        ] {
            let e = run(list).unwrap_err();
            assert!(e.contains(says), "{list:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
