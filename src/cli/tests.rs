//! The command line as users type it: Go-style forms, defaults, booleans,
//! token sources and one clear error per bad value.

use std::time::Duration;

use super::*;
use crate::config::ApiToken;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn config(list: &[&str]) -> Config {
    match parse("rtmp-server", &args(list)).unwrap() {
        Invocation::Run { config, .. } => *config,
        other => panic!("{other:?}"),
    }
}

#[test]
fn go_style_single_dash_double_dash_and_equals() {
    for form in [
        vec!["-listen", "127.0.0.1:1936"],
        vec!["--listen", "127.0.0.1:1936"],
        vec!["-listen=127.0.0.1:1936"],
        vec!["--listen=127.0.0.1:1936"],
    ] {
        assert_eq!(
            config(&form).listen,
            "127.0.0.1:1936".parse().unwrap(),
            "{form:?}"
        );
    }
}

#[test]
fn defaults() {
    let c = config(&[]);
    assert_eq!(c.listen, "0.0.0.0:1935".parse().unwrap());
    assert_eq!(c.chunk_size, 4096);
    assert!(c.gop_cache);
    assert_eq!(c.slow_subscriber, SlowSubscriberPolicy::Skip);
    assert_eq!(c.publisher_timeout, Duration::from_secs(10));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
}

#[test]
fn every_flag_parses() {
    let c = config(&[
        "-listen",
        ":1940",
        "-chunk-size",
        "60000",
        "-gop-cache=false",
        "-slow-subscriber",
        "disconnect",
        "-publisher-timeout",
        "1m30s",
        "-write-timeout",
        "500ms",
        "-log-level",
        "debug",
    ]);
    assert_eq!(c.listen.port(), 1940);
    assert_eq!(c.chunk_size, 60000);
    assert!(!c.gop_cache);
    assert_eq!(c.slow_subscriber, SlowSubscriberPolicy::Disconnect);
    assert_eq!(c.publisher_timeout, Duration::from_secs(90));
    assert_eq!(c.write_timeout, Duration::from_millis(500));
}

#[test]
fn invalid_values_name_the_flag() {
    for (list, flag) in [
        (vec!["-chunk-size", "127"], "-chunk-size"),
        (vec!["-chunk-size", "65537"], "-chunk-size"),
        (vec!["-chunk-size", "big"], "-chunk-size"),
        (vec!["-gop-cache", "maybe"], "-gop-cache"),
        (vec!["-slow-subscriber", "wait"], "-slow-subscriber"),
        (vec!["-publisher-timeout", "0s"], "-publisher-timeout"),
        (vec!["-write-timeout", "soon"], "-write-timeout"),
        (vec!["-listen", "nonsense"], "-listen"),
        (vec!["-log-level", "loud"], "-log-level"),
        (vec!["-bogus", "1"], "-bogus"),
        (vec!["-listen"], "-listen"),
        (vec!["-metrics-addr", "8080"], "-metrics-addr"),
        (vec!["-api-token", ""], "-api-token"),
        (vec!["-history-limit", "many"], "-history-limit"),
        (vec!["-idle-timeout", "0"], "-idle-timeout"),
        (vec!["-write-coalesce", "1s"], "-write-coalesce"),
        (vec!["-max-connections", "0"], "-max-connections"),
        (vec!["-max-message-size", "16MiB"], "-max-message-size"),
        (vec!["-max-message-size", "1KiB"], "-max-message-size"),
        (vec!["-writer-threads", "many"], "-writer-threads"),
        (vec!["-relay-to", "http://edge/live"], "-relay-to"),
        (vec!["-relay-to", "rtmp://edge/live/cam"], "-relay-to"),
        (vec!["-relay-map", "live/cam"], "-relay-map"),
        (
            vec!["-relay-map", "live/cam=rtmp://edge/live"],
            "-relay-map",
        ),
    ] {
        let err = parse("rtmp-server", &args(&list)).unwrap_err();
        assert!(err.0.contains(flag), "{list:?}: {err}");
        assert_eq!(err.0.lines().count(), 1, "{err}");
    }
}

#[test]
fn help_lists_every_flag_with_its_default_in_go_style() {
    for h in ["-h", "--help", "-help"] {
        let Invocation::Print(text) = parse("rtmp-server", &args(&[h])).unwrap() else {
            panic!("no help for {h}");
        };
        for flag in [
            "-listen",
            "-chunk-size",
            "-log-level",
            "-gop-cache",
            "-slow-subscriber",
            "-publisher-timeout",
            "-write-timeout",
            "-metrics-addr",
            "-api-token",
            "-api-token-file",
            "-log-redact-keys",
            "-history-limit",
            "-idle-timeout",
            "-write-coalesce",
            "-max-connections",
            "-max-message-size",
            "-version",
        ] {
            assert!(text.contains(flag), "{flag} missing from help");
        }
        assert!(!text.contains("--"), "help should show Go-style flags");
        assert!(text.contains("default \":1935\""));
    }
}

#[test]
fn limits_parse() {
    let c = config(&[
        "-idle-timeout",
        "2m",
        "-max-connections",
        "50",
        "-max-message-size",
        "8MiB",
    ]);
    assert_eq!(c.idle_timeout, Duration::from_secs(120));
    assert_eq!(c.max_connections, 50);
    assert_eq!(c.max_message_size, 8 << 20);
    assert_eq!(
        config(&["-max-message-size", "100000"]).max_message_size,
        100_000
    );
    assert_eq!(
        config(&["-max-message-size", "512K"]).max_message_size,
        512 << 10
    );
    let d = config(&[]);
    assert_eq!(
        (d.idle_timeout, d.max_connections, d.max_message_size),
        (Duration::from_secs(60), 1000, 4 << 20)
    );
}

#[test]
fn version() {
    let Invocation::Print(text) = parse("rtmp-server", &args(&["-version"])).unwrap() else {
        panic!();
    };
    assert!(text.starts_with("rtmp-server "));
}

#[test]
fn boolean_flags_take_go_and_go_rtmp_forms() {
    for (form, want) in [
        (vec!["-gop-cache"], true),
        (vec!["-gop-cache=false"], false),
        (vec!["--gop-cache=0"], false),
        (vec!["-gop-cache", "false"], false),
        (vec!["-gop-cache", "true"], true),
        (vec!["-gop-cache", "F"], false),
    ] {
        assert_eq!(config(&form).gop_cache, want, "{form:?}");
    }
    // A bare boolean flag does not swallow the next flag.
    let c = config(&["-gop-cache", "-listen", ":1940"]);
    assert!(c.gop_cache);
    assert_eq!(c.listen.port(), 1940);
    let c = config(&["-log-redact-keys", "-gop-cache", "false"]);
    assert!(c.log_redact_keys && !c.gop_cache);
    assert!(!config(&[]).log_redact_keys);
}

#[test]
fn every_flag_with_a_boolean_default_is_a_boolean_flag() {
    let Invocation::Print(help) = parse("rtmp-server", &args(&["-h"])).unwrap() else {
        panic!();
    };
    // Help entries may wrap: join them and split at the flags.
    let joined = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let options = joined.split("Options: ").nth(1).unwrap();
    let mut booleans = Vec::new();
    for entry in options.split(" -").filter(|e| !e.is_empty()) {
        let name = entry.trim_start_matches('-').split(' ').next().unwrap();
        if entry.contains("(default true)") || entry.contains("(default false)") {
            booleans.push(name.to_owned());
        }
    }
    booleans.sort();
    let mut listed: Vec<String> = BOOL_FLAGS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(booleans, listed);
}

#[test]
fn help_shows_h_not_a_stray_help_entry() {
    let Invocation::Print(help) = parse("rtmp-server", &args(&["-h"])).unwrap() else {
        panic!();
    };
    assert!(help.contains("-h, -help"), "{help}");
    assert!(!help.contains(", help"), "{help}");
}

#[test]
fn api_token_from_flag_file_or_environment() {
    let token = |list: &[&str], env: Option<&str>| {
        let env = env.map(str::to_owned);
        match parse_with_env("rtmp-server", &args(list), |_| env.clone()) {
            Ok(Invocation::Run { config, .. }) => Ok(config.api_token),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.0),
        }
    };
    let is = |t: Option<ApiToken>, want: &str| t.is_some_and(|t| t.matches(want));
    assert!(is(
        token(&["-api-token", "abc"], Some("env")).unwrap(),
        "abc"
    ));
    assert!(is(token(&[], Some("fromenv")).unwrap(), "fromenv"));
    assert!(token(&[], None).unwrap().is_none());
    let dir = std::env::temp_dir().join(format!("rtmp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let path = file.to_str().unwrap();
    assert!(is(
        token(&["-api-token-file", path], Some("env")).unwrap(),
        "s3cret"
    ));
    let both = token(&["-api-token", "a", "-api-token-file", path], None).unwrap_err();
    assert!(both.contains("-api-token-file"), "{both}");
    let missing = token(&["-api-token-file", "/nonexistent/token"], None).unwrap_err();
    assert!(missing.contains("-api-token-file"), "{missing}");
    std::fs::write(&file, "\n").unwrap();
    let empty = token(&["-api-token-file", path], None).unwrap_err();
    assert!(empty.contains("must not be empty"), "{empty}");
    let blank_env = token(&[], Some(" ")).unwrap_err();
    assert!(blank_env.contains("RTMP_API_TOKEN"), "{blank_env}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn values_starting_with_a_dash_stay_values() {
    assert_eq!(
        normalize(&args(&["-log-level", "-x", "-version"])),
        args(&["--log-level", "-x", "--version"])
    );
}

#[test]
fn relay_flags_repeat_and_split_on_commas_and_never_echo_a_key() {
    let list = [
        "-relay-to",
        "rtmp://a/live,rtmp://b:1936/live",
        "--relay-to=rtmp://c/live",
        "-relay-map",
        "live/cam=rtmp://yt/live2/name?key=secret",
    ];
    let Ok(Invocation::Run { config, .. }) = parse("rtmp-server", &args(&list)) else {
        panic!("relay flags refused");
    };
    let cam = crate::hub::stream_key::StreamKey::new("live", "cam").unwrap();
    assert_eq!(config.relays.destinations(&cam).len(), 4);
    let bad = ["-relay-map", "live/cam=ftp://yt/live2/name?key=secret"];
    let err = parse("rtmp-server", &args(&bad)).unwrap_err();
    assert!(!err.0.contains("secret"), "{err}");
}

#[test]
fn a_relay_value_missing_its_key_or_scheme_is_not_repeated() {
    for value in [
        "rtmp://yt/live2/KEY?auth=SECRETVALUE",
        "live/cam=rtmp:/yt/l/SECRETKEY",
        "live/cam=SECRETVALUE",
    ] {
        let err = parse("rtmp-server", &args(&["-relay-map", value])).unwrap_err();
        assert!(!err.0.contains("SECRET"), "{err}");
        assert!(err.0.contains("-relay-map"), "{err}");
    }
}

fn error(list: &[&str]) -> String {
    parse("rtmp-server", &args(list)).unwrap_err().0
}

#[test]
fn auth_modes_take_the_flags_they_need() {
    use crate::auth::AuthMode;
    assert_eq!(config(&[]).auth.mode, AuthMode::None);
    assert!(config(&[]).auth.play);
    let c = config(&[
        "-auth-mode",
        "token",
        "-auth-token",
        "live/cam=s3cret",
        "-auth-token=live/*=other",
        "-auth-play",
        "false",
    ]);
    assert!(matches!(c.auth.mode, AuthMode::Token(ref t) if t.len() == 2));
    assert!(!c.auth.play);
    let c = config(&[
        "-auth-mode",
        "callback",
        "-auth-callback",
        "http://127.0.0.1:9/auth?key=1",
        "-auth-callback-timeout",
        "2s",
    ]);
    assert_eq!(
        c.auth.mode,
        AuthMode::Callback {
            url: "http://127.0.0.1:9/auth?key=1".into(),
            timeout: Duration::from_secs(2)
        }
    );
    let dir = std::env::temp_dir().join(format!("rtmp-cli-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens.json");
    std::fs::write(&file, r#"{"live/*": "s3cret"}"#).unwrap();
    let path = file.to_str().unwrap();
    let c = config(&["-auth-mode", "file", "-auth-file", path]);
    assert!(matches!(c.auth.mode, AuthMode::File { ref tokens, .. } if tokens.len() == 1));
    std::fs::write(&file, r#"{"live/*": s3cret"#).unwrap();
    let e = error(&["-auth-mode", "file", "-auth-file", path]);
    assert!(e.contains("-auth-file") && !e.contains("s3cret"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn auth_flag_mistakes_are_named_without_their_secrets() {
    for (list, says) in [
        (&["-auth-mode", "tokens"][..], "-auth-mode"),
        (&["-auth-mode", "token"], "needs -auth-token"),
        (
            &["-auth-token", "live/cam=s3cret"],
            "needs -auth-mode token",
        ),
        (
            &["-auth-mode", "token", "-auth-token", "cam=s3cret"],
            "-auth-token",
        ),
        (
            &["-auth-mode", "token", "-auth-token", "live/cam:s3cret"],
            "-auth-token",
        ),
        (&["-auth-mode", "file"], "needs -auth-file"),
        (
            &["-auth-mode", "file", "-auth-file", "/nonexistent/t.json"],
            "-auth-file",
        ),
        (&["-auth-mode", "callback"], "needs -auth-callback"),
        (
            &[
                "-auth-mode",
                "callback",
                "-auth-callback",
                "ftp://h/?s3cret",
            ],
            "-auth-callback",
        ),
        (
            &["-auth-mode", "callback", "-auth-callback", "http://"],
            "-auth-callback",
        ),
        (&["-auth-play", "maybe"], "-auth-play"),
        (&["-auth-callback-timeout", "0"], "-auth-callback-timeout"),
        (&["-api-read-auth"], "needs an API token"),
    ] {
        let e = error(list);
        assert!(e.contains(says), "{list:?}: {e}");
        assert!(!e.contains("s3cret"), "{list:?}: {e}");
    }
    let c = config(&["-api-read-auth", "-api-token", "t0ken"]);
    assert!(c.api_read_auth);
}

#[test]
fn hook_flags_name_known_events_and_real_scripts() {
    use crate::hooks::{EventFilter, HookTarget, StdioFormat};
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("rtmp-cli-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hook.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plain = dir.join("plain.txt");
    std::fs::write(&plain, "").unwrap();
    let script_arg = format!("publish_start={}", script.display());
    let c = config(&[
        "-hook-script",
        &script_arg,
        "-hook-webhook",
        "*=http://127.0.0.1:9/hook",
        "-hook-stdio-format",
        "env",
        "-hook-timeout",
        "5s",
        "-hook-concurrency",
        "3",
    ]);
    assert_eq!(
        c.hooks.hooks,
        [
            (
                EventFilter::Only("publish_start"),
                HookTarget::Script(script.clone())
            ),
            (
                EventFilter::All,
                HookTarget::Webhook("http://127.0.0.1:9/hook".into())
            ),
        ]
    );
    assert_eq!(c.hooks.stdio, Some(StdioFormat::Env));
    assert_eq!(c.hooks.timeout, Duration::from_secs(5));
    assert_eq!(c.hooks.concurrency, 3);
    let defaults = config(&[]).hooks;
    assert_eq!(
        (defaults.timeout, defaults.concurrency, defaults.stdio),
        (Duration::from_secs(30), 10, None)
    );
    let plain_arg = format!("*={}", plain.display());
    for (list, says) in [
        (
            &["-hook-script", "publish_begin=/bin/true"][..],
            "unknown event",
        ),
        (
            &["-hook-webhook", "input_switch=http://h/"],
            "unknown event",
        ),
        (&["-hook-script", "/bin/true"], "-hook-script"),
        (&["-hook-script", "*=/nonexistent/hook.sh"], "-hook-script"),
        (&["-hook-script", &plain_arg], "not executable"),
        (&["-hook-script", "*=/tmp"], "not a file"),
        (
            &["-hook-webhook", "*=localhost:9/x?s3cret"],
            "-hook-webhook",
        ),
        (&["-hook-stdio-format", "xml"], "-hook-stdio-format"),
        (&["-hook-timeout", "never"], "-hook-timeout"),
        (&["-hook-concurrency", "0"], "-hook-concurrency"),
    ] {
        let e = error(list);
        assert!(e.contains(says), "{list:?}: {e}");
        assert!(!e.contains("s3cret"), "{list:?}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn segment_flags_and_patterns_are_checked_at_startup() {
    use crate::record::pattern::{DEFAULT, DEFAULT_SEGMENTED, SegmentPattern};
    let plain = config(&[]).record;
    assert_eq!(plain.segment, None);
    assert_eq!(plain.names, SegmentPattern::parse(DEFAULT).unwrap());
    let c = config(&["-segment-duration", "30s"]).record;
    assert_eq!(c.segment, Some(Duration::from_secs(30)));
    assert_eq!(c.names, SegmentPattern::parse(DEFAULT_SEGMENTED).unwrap());
    let c = config(&["-segment-duration=2s", "-segment-pattern", "%Y/%s_%03d"]).record;
    assert_eq!(c.names, SegmentPattern::parse("%Y/%s_%03d").unwrap());
    for (list, says) in [
        (&["-segment-duration", "500ms"][..], "-segment-duration"),
        (&["-segment-duration", "soon"], "-segment-duration"),
        (&["-segment-pattern", "%s_%q"], "unknown placeholder %q"),
        (&["-segment-pattern", "cam_%T"], "needs %s"),
        (&["-segment-pattern", "../%s_%d"], "-record-dir"),
    ] {
        let e = error(list);
        assert!(e.contains(says), "{list:?}: {e}");
    }
}

#[test]
fn retention_flags_take_durations_and_sizes() {
    let c = config(&["-record-max-age", "7d", "-record-min-free", "1GiB"]).record;
    assert_eq!(c.retention.max_age, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(c.retention.min_free, Some(1 << 30));
    for (value, bytes) in [
        ("500MiB", 500u64 << 20),
        ("200M", 200 << 20),
        ("4096", 4096),
        ("2tb", 2 << 40),
    ] {
        let c = config(&["-record-min-free", value]).record;
        assert_eq!(c.retention.min_free, Some(bytes), "{value}");
    }
    assert_eq!(config(&[]).record.retention, Default::default());
    for (list, says) in [
        (&["-record-max-age", "forever"][..], "-record-max-age"),
        (&["-record-min-free", "lots"], "-record-min-free"),
        (&["-record-min-free", "0"], "-record-min-free"),
        (&["-record-min-free", "1PiB"], "-record-min-free"),
    ] {
        let e = error(list);
        assert!(e.contains(says), "{list:?}: {e}");
    }
}

#[test]
fn record_format_is_auto_flv_or_mp4() {
    use crate::record::sink::RecordFormat;
    assert_eq!(config(&[]).record.format, RecordFormat::Auto);
    assert_eq!(
        config(&["-record-format", "mp4"]).record.format,
        RecordFormat::Mp4
    );
    assert_eq!(
        config(&["-record-format=flv"]).record.format,
        RecordFormat::Flv
    );
    assert!(error(&["-record-format", "mkv"]).contains("-record-format"));
}

#[test]
fn max_subscribers_is_a_count() {
    assert_eq!(config(&[]).max_subscribers, 0);
    assert_eq!(config(&["-max-subscribers", "50"]).max_subscribers, 50);
    assert!(error(&["-max-subscribers", "-1"]).contains("-max-subscribers"));
    assert!(error(&["-max-subscribers", "lots"]).contains("-max-subscribers"));
}

#[test]
fn reconnect_url_is_an_rtmp_or_rtmps_url_never_echoed() {
    assert_eq!(config(&[]).reconnect_url, None);
    let url = "rtmps://backup.example.com:443/live?token=s3cret";
    assert_eq!(
        config(&["-reconnect-url", url]).reconnect_url.as_deref(),
        Some(url)
    );
    for bad in [
        "http://x/live?token=s3cret",
        "rtmp://",
        "backup?token=s3cret",
    ] {
        let e = error(&["-reconnect-url", bad]);
        assert!(e.contains("-reconnect-url") && !e.contains("s3cret"), "{e}");
    }
}

#[test]
fn http_cors_is_any_origin_one_origin_or_off() {
    assert_eq!(config(&[]).http_cors.as_deref(), Some("*"));
    let one = config(&["-http-cors", "https://tv.example.com:8443"]);
    assert_eq!(
        one.http_cors.as_deref(),
        Some("https://tv.example.com:8443")
    );
    assert_eq!(config(&["-http-cors", "off"]).http_cors, None);
    for bad in [
        "example.com",
        "https://a.com/path",
        "https://a.com\r\nX: y",
        "https://",
    ] {
        assert!(error(&["-http-cors", bad]).contains("-http-cors"), "{bad}");
    }
}

#[test]
fn record_flags_pick_streams_and_need_a_writable_directory() {
    let dir = std::env::temp_dir().join(format!("rtmp-cli-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let nested = dir.join("a/b");
    let c = config(&["-record-all", "-record-dir", nested.to_str().unwrap()]);
    assert!(c.record.all);
    assert!(nested.is_dir(), "created at startup");
    let c = config(&[
        "-record",
        "live/cam,tv/*",
        "-record=other/x",
        "-record-dir",
        nested.to_str().unwrap(),
    ]);
    let patterns: Vec<String> = c.record.patterns.iter().map(|p| p.to_string()).collect();
    assert_eq!(patterns, ["live/cam", "tv/*", "other/x"]);
    assert!(!c.record.all);
    let defaults = config(&[]).record;
    assert!(!defaults.is_enabled());
    assert_eq!(defaults.dir, std::path::PathBuf::from("recordings"));
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    for (list, says) in [
        (&["-record", "cam"][..], "-record"),
        (&["-record", "live/c*"], "-record"),
        (&["-record-all", "maybe"], "-record-all"),
        (
            &["-record-all", "-record-dir", file.to_str().unwrap()],
            "-record-dir",
        ),
    ] {
        let e = error(list);
        assert!(e.contains(says), "{list:?}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
