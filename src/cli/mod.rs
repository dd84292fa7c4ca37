//! The Go-style command line: `-listen :1935`, `--listen :1935` and
//! `-listen=:1935` all work; `-h` lists every flag with its default.
//! Arguments are rewritten into argh's `--flag value` form, parsed, then
//! validated into a [`Config`] with one clear error line per bad value.

use crate::relay::target::RelayTargets;
use std::fmt;

use argh::FromArgs;

mod access;
mod hooks;
mod record;
mod sources;
mod tls;
mod values;

use access::{AuthFlags, api_token, auth_settings};
use hooks::{HookFlags, hook_settings};
use record::{RecordFlags, record_settings};
use sources::{SourceFlags, source_settings};
use tls::{TlsFlags, tls_settings};

use values::{
    invalid, parse_addr, parse_bool, parse_bool_word, parse_chunk_size, parse_coalesce,
    parse_count, parse_duration, parse_size, reconnect_url,
};

use crate::config::{Config, SlowSubscriberPolicy};

/// rtmp-server: a small RTMP live-streaming server. Publish to
/// rtmp://HOST/APP/NAME from OBS or ffmpeg, play the same URL.
#[derive(FromArgs, Debug)]
struct Flags {
    /// address for RTMP, host:port or :port (default ":1935")
    #[argh(option, default = "String::from(\":1935\")")]
    listen: String,

    /// outbound chunk size, 128..65536 (default 4096)
    #[argh(option, default = "String::from(\"4096\")")]
    chunk_size: String,

    /// error|warn|info|debug|trace, or RUST_LOG (default info)
    #[argh(option)]
    log_level: Option<String>,

    /// cache the last GOP for instant start (default true)
    #[argh(option, default = "String::from(\"true\")")]
    gop_cache: String,

    /// show only app/abc*** of stream names in logs (default false)
    #[argh(option, default = "String::from(\"false\")")]
    log_redact_keys: String,

    /// lagging player: skip to keyframe|disconnect (default skip)
    #[argh(option, default = "String::from(\"skip\")")]
    slow_subscriber: String,

    /// drop a publisher silent this long (default 10s)
    #[argh(option, default = "String::from(\"10s\")")]
    publisher_timeout: String,

    /// close a player that accepts nothing this long (default 30s)
    #[argh(option, default = "String::from(\"30s\")")]
    write_timeout: String,

    /// gather player media this long per write, 0=off (default 40ms)
    #[argh(option, default = "String::from(\"40ms\")")]
    write_coalesce: String,

    /// relay every stream to rtmp://host[:port]/app (repeatable, or a,b)
    #[argh(option)]
    relay_to: Vec<String>,

    /// relay one stream: app/name=rtmp://host/app/name?key (repeatable)
    #[argh(option)]
    relay_map: Vec<String>,

    /// threads writing to players, 0=one per core (default 0)
    #[argh(option, default = "String::from(\"0\")")]
    writer_threads: String,

    /// close a connection idle this long (default 60s)
    #[argh(option, default = "String::from(\"60s\")")]
    idle_timeout: String,

    /// connections beyond this are closed at once (default 1000)
    #[argh(option, default = "String::from(\"1000\")")]
    max_connections: String,

    /// largest message accepted, bytes or KiB/MiB (default 4MiB)
    #[argh(option, default = "String::from(\"4MiB\")")]
    max_message_size: String,

    /// metrics and status HTTP address, e.g. :8080 (default off)
    #[argh(option)]
    metrics_addr: Option<String>,

    /// RTMPS address, e.g. :1936 (needs -tls-cert and -tls-key; default off)
    #[argh(option)]
    tls_listen: Option<String>,

    /// RTMPS certificate chain, PEM (default none)
    #[argh(option)]
    tls_cert: Option<String>,

    /// RTMPS private key, PEM (default none)
    #[argh(option)]
    tls_key: Option<String>,

    /// rtmps:// relays and pulls take any certificate, e.g. a LAN camera's self-signed one (default false)
    #[argh(option, default = "String::from(\"false\")")]
    tls_insecure_upstream: String,

    /// send Enhanced RTMP clients asked to reconnect (SIGUSR1) here (default: where they are)
    #[argh(option)]
    reconnect_url: Option<String>,

    /// allowed origin of .flv/.mp4 streams: *, an origin, or off (default *)
    #[argh(option, default = "String::from(\"*\")")]
    http_cors: String,

    /// bearer token allowing API writes; also RTMP_API_TOKEN (default none)
    #[argh(option)]
    api_token: Option<String>,

    /// file holding the API token, kept out of ps (default none)
    #[argh(option)]
    api_token_file: Option<String>,

    /// the API token also guards reads, /healthz aside (default false)
    #[argh(option, default = "String::from(\"false\")")]
    api_read_auth: String,

    /// who may publish/play: none|token|file|callback (default none)
    #[argh(option, default = "String::from(\"none\")")]
    auth_mode: String,

    /// token mode: app/name=secret or app/*=secret (repeatable)
    #[argh(option)]
    auth_token: Vec<String>,

    /// file mode: JSON {"app/name": "secret"}, reread on SIGHUP
    #[argh(option)]
    auth_file: Option<String>,

    /// callback mode: URL asked by POST, 2xx allows (default none)
    #[argh(option)]
    auth_callback: Option<String>,

    /// callback mode: deny when no answer this long (default 5s)
    #[argh(option, default = "String::from(\"5s\")")]
    auth_callback_timeout: String,

    /// playing needs a token too; false guards publishing only (default true)
    #[argh(option, default = "String::from(\"true\")")]
    auth_play: String,

    /// run a script on an event: EVENT=/path/script, EVENT may be * (repeatable)
    #[argh(option)]
    hook_script: Vec<String>,

    /// POST events as JSON: EVENT=http://host/path, EVENT may be * (repeatable)
    #[argh(option)]
    hook_webhook: Vec<String>,

    /// print events on stdout, one per line: json|env (default off)
    #[argh(option)]
    hook_stdio_format: Option<String>,

    /// stop a hook still running after this long (default 30s)
    #[argh(option, default = "String::from(\"30s\")")]
    hook_timeout: String,

    /// hooks running at once (default 10)
    #[argh(option, default = "String::from(\"10\")")]
    hook_concurrency: String,

    /// record every published stream as FLV (default false)
    #[argh(option, default = "String::from(\"false\")")]
    record_all: String,

    /// record these streams: app/name or app/* (repeatable, or a,b)
    #[argh(option)]
    record: Vec<String>,

    /// start a new recording file at the first keyframe after this, 0=off (default 0)
    #[argh(option, default = "String::from(\"0\")")]
    segment_duration: String,

    /// file names: %s key, %d/%0Nd segment, %T time... (default "%s_%T")
    #[argh(option)]
    segment_pattern: Option<String>,

    /// delete recordings older than this, e.g. 7d (default keep)
    #[argh(option)]
    record_max_age: Option<String>,

    /// delete the oldest recordings while less is free, e.g. 1GiB (default off)
    #[argh(option)]
    record_min_free: Option<String>,

    /// recording container: auto (FLV, MP4 for HEVC)|flv|mp4 (default auto)
    #[argh(option, default = "String::from(\"auto\")")]
    record_format: String,

    /// where recordings go, created as needed (default "recordings")
    #[argh(option, default = "String::from(\"recordings\")")]
    record_dir: String,

    /// a stream fed by failover inputs: app/name=app/name.main,rtmp://host/app/name,... (repeatable)
    #[argh(option)]
    source: Vec<String>,

    /// an input sending no media this long is degraded (default 3s)
    #[argh(option, default = "String::from(\"3s\")")]
    input_timeout: String,

    /// switch back to a preferred input healthy this long (default 5s)
    #[argh(option, default = "String::from(\"5s\")")]
    failback_delay: String,

    /// players of a -source stream with no input left wait this long (default 30s)
    #[argh(option, default = "String::from(\"30s\")")]
    exhausted_timeout: String,

    /// close a pull this long after its last player left (default 30s)
    #[argh(option, default = "String::from(\"30s\")")]
    pull_idle_timeout: String,

    /// upstream connections of -source pulls at most (default 8)
    #[argh(option, default = "String::from(\"8\")")]
    max_pulls: String,

    /// players per stream at most, 0=no limit (default 0)
    #[argh(option, default = "String::from(\"0\")")]
    max_subscribers: String,

    /// ended publish sessions kept for /api/history (default 100)
    #[argh(option, default = "String::from(\"100\")")]
    history_limit: String,

    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

/// Most `-writer-threads`.
const MAX_WRITER_THREADS: usize = 256;
/// Upper bound of `-max-connections`.
const MAX_CONNECTIONS: usize = 100_000;

/// Most ended sessions `-history-limit` may keep.
const MAX_HISTORY: usize = 100_000;

/// Flags that take no value.
const SWITCHES: &[&str] = &["help", "version"];

/// Boolean flags. As with Go's flag package, `-gop-cache` alone means true
/// and `-gop-cache=false` sets it; `-gop-cache false` (as go-rtmp users
/// type it) works too. A test checks that this lists every flag whose
/// default is true or false.
const BOOL_FLAGS: &[&str] = &[
    "gop-cache",
    "log-redact-keys",
    "api-read-auth",
    "auth-play",
    "record-all",
    "tls-insecure-upstream",
];

/// The environment variable that may hold the API token.
pub const API_TOKEN_ENV: &str = "RTMP_API_TOKEN";

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run {
        config: Box<Config>,
        log_level: Option<log::LevelFilter>,
    },
    /// Print this text to stdout and exit 0 (help, version).
    Print(String),
}

/// A command line that cannot be run; print it and exit with status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Rewrites Go-style arguments into the `--flag value` form argh parses.
fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(iter.by_ref().cloned());
            break;
        }
        let name = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(name) if name.starts_with(|c: char| c.is_ascii_alphabetic()) => name,
            _ => {
                out.push(arg.clone());
                continue;
            }
        };
        let (name, inline_value) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (name, None),
        };
        let name = if name == "h" { "help" } else { name };
        out.push(format!("--{name}"));
        match inline_value {
            Some(value) => out.push(value.to_owned()),
            None if BOOL_FLAGS.contains(&name) => {
                // A bare boolean flag means true, unless a value follows:
                // the server takes no positional arguments, so a word
                // after it is meant as its value (and a bad one is named
                // as such).
                match iter.as_slice().first() {
                    Some(next) if !next.starts_with('-') || parse_bool_word(next).is_some() => {
                        out.push(next.clone());
                        iter.next();
                    }
                    _ => out.push("true".into()),
                }
            }
            // The next argument is this flag's value, even if it starts
            // with a dash.
            None if !SWITCHES.contains(&name) => out.extend(iter.next().cloned()),
            None => {}
        }
    }
    out
}

/// Parses the arguments after the program name, with the process's
/// environment.
pub fn parse(program: &str, args: &[String]) -> Result<Invocation, UsageError> {
    parse_with_env(program, args, |name| std::env::var(name).ok())
}

/// Parses the arguments, looking up environment variables with `env`.
pub fn parse_with_env(
    program: &str,
    args: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Invocation, UsageError> {
    let normalized = normalize(args);
    let refs: Vec<&str> = normalized.iter().map(String::as_str).collect();
    let flags = match Flags::from_args(&[program], &refs) {
        Ok(flags) => flags,
        Err(exit) if exit.status.is_ok() => {
            return Ok(Invocation::Print(go_style_help(&exit.output)));
        }
        Err(exit) => {
            let line = exit.output.lines().next().unwrap_or("invalid arguments");
            return Err(UsageError(format!(
                "{program}: {} (see -h)",
                go_style_help(line)
            )));
        }
    };
    if flags.version {
        return Ok(Invocation::Print(format!(
            "rtmp-server {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let log_level = flags
        .log_level
        .as_deref()
        .map(|v| {
            v.parse::<log::LevelFilter>()
                .map_err(|_| invalid("log-level", v, "want error, warn, info, debug or trace"))
        })
        .transpose()?;
    let config = Config {
        listen: parse_addr("listen", &flags.listen)?,
        chunk_size: parse_chunk_size(&flags.chunk_size)?,
        gop_cache: parse_bool("gop-cache", &flags.gop_cache)?,
        slow_subscriber: match flags.slow_subscriber.as_str() {
            "skip" => SlowSubscriberPolicy::Skip,
            "disconnect" => SlowSubscriberPolicy::Disconnect,
            other => return Err(invalid("slow-subscriber", other, "want skip or disconnect")),
        },
        publisher_timeout: parse_duration("publisher-timeout", &flags.publisher_timeout)?,
        write_timeout: parse_duration("write-timeout", &flags.write_timeout)?,
        idle_timeout: parse_duration("idle-timeout", &flags.idle_timeout)?,
        write_coalesce: parse_coalesce(&flags.write_coalesce)?,
        writer_threads: parse_count(
            "writer-threads",
            &flags.writer_threads,
            0..=MAX_WRITER_THREADS,
            Some("one per core"),
        )?,
        max_connections: parse_count(
            "max-connections",
            &flags.max_connections,
            1..=MAX_CONNECTIONS,
            None,
        )?,
        max_message_size: parse_size("max-message-size", &flags.max_message_size)?,
        max_subscribers: parse_count(
            "max-subscribers",
            &flags.max_subscribers,
            0..=MAX_CONNECTIONS,
            Some("no limit"),
        )?,
        metrics_addr: flags
            .metrics_addr
            .as_deref()
            .map(|addr| parse_addr("metrics-addr", addr))
            .transpose()?,
        api_token: api_token(flags.api_token, flags.api_token_file, env)?,
        api_read_auth: parse_bool("api-read-auth", &flags.api_read_auth)?,
        http_cors: access::http_cors(&flags.http_cors)?,
        tls: tls_settings(&TlsFlags {
            listen: flags.tls_listen.as_deref(),
            cert: flags.tls_cert.as_deref(),
            key: flags.tls_key.as_deref(),
        })?,
        tls_insecure_upstream: parse_bool("tls-insecure-upstream", &flags.tls_insecure_upstream)?,
        reconnect_url: flags
            .reconnect_url
            .as_deref()
            .map(reconnect_url)
            .transpose()?,
        auth: auth_settings(&AuthFlags {
            mode: &flags.auth_mode,
            tokens: &flags.auth_token,
            file: flags.auth_file.as_deref(),
            callback: flags.auth_callback.as_deref(),
            callback_timeout: &flags.auth_callback_timeout,
            play: &flags.auth_play,
        })?,
        hooks: hook_settings(&HookFlags {
            scripts: &flags.hook_script,
            webhooks: &flags.hook_webhook,
            stdio_format: flags.hook_stdio_format.as_deref(),
            timeout: &flags.hook_timeout,
            concurrency: &flags.hook_concurrency,
        })?,
        record: record_settings(&RecordFlags {
            all: &flags.record_all,
            patterns: &flags.record,
            dir: &flags.record_dir,
            segment_duration: &flags.segment_duration,
            segment_pattern: flags.segment_pattern.as_deref(),
            max_age: flags.record_max_age.as_deref(),
            min_free: flags.record_min_free.as_deref(),
            format: &flags.record_format,
        })?,
        sources: source_settings(&SourceFlags {
            sources: &flags.source,
            input_timeout: &flags.input_timeout,
            failback_delay: &flags.failback_delay,
            exhausted_timeout: &flags.exhausted_timeout,
            pull_idle_timeout: &flags.pull_idle_timeout,
            max_pulls: &flags.max_pulls,
        })?,
        log_redact_keys: parse_bool("log-redact-keys", &flags.log_redact_keys)?,
        relays: RelayTargets::parse(&flags.relay_to, &flags.relay_map)
            .map_err(|e| UsageError(format!("rtmp-server: invalid value for flag {e}")))?,
        history_limit: parse_count("history-limit", &flags.history_limit, 0..=MAX_HISTORY, None)?,
        ..Config::default()
    };
    if config.api_read_auth && config.api_token.is_none() {
        return Err(UsageError(
            "rtmp-server: -api-read-auth true needs an API token (-api-token, \
             -api-token-file or RTMP_API_TOKEN)"
                .into(),
        ));
    }
    Ok(Invocation::Run {
        config: Box::new(config),
        log_level,
    })
}

fn go_style_help(text: &str) -> String {
    // argh lists its built-in help as "--help, help": Go shows "-h".
    text.replace("--help, help     ", "-h, -help        ")
        .replace("--", "-")
}

#[cfg(test)]
mod tests;
