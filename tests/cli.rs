//! The real binary: flags as users type them, startup line, signals, logs.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ServerProcess as Running, connect, read_media, video_frame};

const BIN: &str = common::BIN;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_flag_with_defaults() {
    for flag in ["-h", "--help"] {
        let (code, stdout, _) = run(&[flag]);
        assert_eq!(code, 0);
        for expected in [
            "-listen",
            "(default \":1935\")",
            "-chunk-size",
            "(default 4096)",
            "-log-level",
            "-gop-cache",
            "(default true)",
            "-slow-subscriber",
            "(default skip)",
            "-publisher-timeout",
            "(default 10s)",
            "-write-timeout",
            "(default 30s)",
            "-log-redact-keys",
            "(default false)",
            "-api-token-file",
            "-h, -help",
            "-version",
        ] {
            assert!(
                stdout.contains(expected),
                "{expected} missing from:\n{stdout}"
            );
        }
    }
}

#[test]
fn version_prints_and_exits() {
    let (code, stdout, _) = run(&["-version"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("rtmp-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invalid_values_exit_2_with_one_line_naming_the_flag() {
    for (args, flag) in [
        (vec!["-chunk-size", "5"], "-chunk-size"),
        (vec!["-gop-cache", "maybe"], "-gop-cache"),
        (vec!["-slow-subscriber=wait"], "-slow-subscriber"),
        (vec!["-publisher-timeout", "forever"], "-publisher-timeout"),
        (vec!["-write-timeout", "-1s"], "-write-timeout"),
        (vec!["-log-level", "chatty"], "-log-level"),
        (vec!["-listen", "not an address"], "-listen"),
        (vec!["-no-such-flag"], "-no-such-flag"),
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

#[test]
fn a_busy_listen_address_is_a_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run(&["-listen", &addr]);
    assert_eq!(code, 2);
    assert!(stderr.contains("-listen"), "{stderr}");
}

#[test]
fn serves_with_go_style_flags_and_exits_0_on_sigterm() {
    for (listen, gop_cache) in [
        (vec!["-listen", "127.0.0.1:0"], vec!["-gop-cache=true"]),
        (vec!["--listen", "127.0.0.1:0"], vec!["-gop-cache"]),
        (vec!["-listen=127.0.0.1:0"], vec!["-gop-cache", "true"]),
    ] {
        let mut args = listen.clone();
        args.extend(gop_cache);
        args.extend(["-chunk-size", "8192"]);
        let mut server = Running::start(&args);
        let addr = server.listen_addr();
        let mut publisher = connect(addr, "live").unwrap();
        publisher.publish("mysecretkey42?token=hunter2").unwrap();
        let mut player = connect(addr, "live").unwrap();
        player.play("mysecretkey42").unwrap();
        publisher
            .send_video(0, &video_frame(1, true, 20_000))
            .unwrap();
        let got = read_media(&mut player, 1).unwrap();
        assert_eq!(got[0].payload.len(), 20_000);
        server.wait_line("playing live/mysecretkey42");

        let (code, took) = server.terminate();
        assert_eq!(code, Some(0), "{listen:?}: {:?}", server.log);
        assert!(took < Duration::from_secs(5), "{took:?}");
        let log = server.log.join("\n");
        assert!(!log.contains("hunter2"), "token logged:\n{log}");
    }
}

#[test]
fn log_redact_keys_hides_stream_names_and_queries_never_show() {
    let mut server = Running::start(&["-listen", "127.0.0.1:0", "-log-redact-keys"]);
    let addr = server.listen_addr();
    let mut publisher = connect(addr, "live?app=Query1").unwrap();
    publisher.publish("mysecretkey42?token=hunter2").unwrap();
    let mut player = connect(addr, "live").unwrap();
    player.play("mysecretkey42?viewer=Query3").unwrap();
    server.wait_line("playing live/mys***");
    drop(publisher);
    server.wait_line("stopped publishing live/mys***");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let log = server.log.join("\n");
    for secret in ["mysecretkey42", "hunter2", "Query1", "Query3", "token="] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}

#[test]
fn a_relay_map_key_never_shows_in_the_log() {
    // Port 1 refuses: the relay fails and logs why, at debug level too.
    let map = "live/cam=rtmp://127.0.0.1:1/live2/yt-key-Secret9?auth=Query7";
    let mut server = Running::start(&[
        "-listen",
        "127.0.0.1:0",
        "-relay-map",
        map,
        "-log-level",
        "debug",
    ]);
    let addr = server.listen_addr();
    let mut publisher = connect(addr, "live").unwrap();
    publisher.publish("cam").unwrap();
    server.wait_line("relay of live/cam to rtmp://127.0.0.1:1/live2/yt-***");
    server.wait_line("retrying in");
    drop(publisher);
    server.wait_line("stopped publishing live/cam");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let log = server.log.join("\n");
    for secret in ["Secret9", "Query7", "auth="] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}

#[test]
fn log_level_flag_controls_verbosity() {
    let mut quiet = Running::start(&["-listen", "127.0.0.1:0", "-log-level", "warn"]);
    // Nothing at info level: the listening line does not appear.
    assert!(
        quiet
            .lines
            .recv_timeout(Duration::from_millis(500))
            .is_err()
    );
    let mut verbose = Running::start(&["-listen", "127.0.0.1:0", "-log-level", "debug"]);
    let addr = verbose.listen_addr();
    let _client = connect(addr, "live").unwrap();
    verbose.wait_line("handshake done");
    let _ = quiet.terminate();
}

#[test]
fn metrics_endpoint_starts_with_the_flag_and_a_busy_address_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run(&["-listen", "127.0.0.1:0", "-metrics-addr", &addr]);
    assert_eq!(code, 2);
    assert!(stderr.contains("-metrics-addr"), "{stderr}");

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = free.local_addr().unwrap();
    drop(free);
    let mut server = Running::start(&[
        "-listen",
        "127.0.0.1:0",
        "-metrics-addr",
        &metrics_addr.to_string(),
    ]);
    server.wait_line(&format!("metrics and status on http://{metrics_addr}"));
    assert_eq!(
        http(metrics_addr, "GET /healthz HTTP/1.0\r\n\r\n"),
        (200, "ok".to_owned())
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut server = Running::start(&["-listen", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"]);
    let metrics: std::net::SocketAddr = server
        .wait_line("metrics and status on http://")
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let addr = server.listen_addr();
    // A player that reads nothing of a live stream: once its socket is
    // full its writer blocks with media still queued, so shutdown waits
    // (up to a second) for it to be told the stream ended, and the second
    // signal comes meanwhile.
    let _player = {
        let mut p = connect(addr, "live").unwrap();
        p.play("busy").unwrap();
        p
    };
    let mut publisher = connect(addr, "live").unwrap();
    publisher.publish("busy").unwrap();
    let player_figures = || {
        let body = http(metrics, "GET /api/streams/live/busy HTTP/1.0\r\n\r\n").1;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let player = &json["subscribers"][0];
        let figure = |name: &str| player[name].as_u64().unwrap_or(0);
        (figure("bytes_sent"), figure("dropped_messages"))
    };
    // Blocked: nothing more reaches the player's socket while the stream
    // keeps dropping media for it.
    let mut n = 0;
    let mut last_sent = None;
    loop {
        assert!(n < 5000, "the player's writer never blocked");
        for _ in 0..25 {
            publisher
                .send_video(n * 40, &video_frame(n, n % 25 == 0, 100_000))
                .unwrap();
            n += 1;
        }
        let (sent, dropped) = player_figures();
        if dropped > 50 && last_sent == Some(sent) {
            break;
        }
        last_sent = Some(sent);
    }
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    // Two quick signals may arrive as one: send the second once the first
    // is being handled.
    server.wait_line("signal 15 received");
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = server.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the second signal ends the process before the graceful path"
    );
}

/// Sends one HTTP/1.0 request; returns the status code and the body.
fn http(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut socket, request.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut socket, &mut reply).unwrap();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn api_token_from_a_file_or_the_environment_allows_writes() {
    let dir = std::env::temp_dir().join(format!("rtmp-cli-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "FileToken9\n").unwrap();
    for (args, env, token) in [
        (
            vec!["-api-token-file", file.to_str().unwrap()],
            None,
            "FileToken9",
        ),
        (vec![], Some("EnvToken7"), "EnvToken7"),
    ] {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let metrics = free.local_addr().unwrap();
        drop(free);
        let metrics_arg = metrics.to_string();
        let mut all = vec!["-listen", "127.0.0.1:0", "-metrics-addr", &metrics_arg];
        all.extend(args.iter().copied());
        let mut server = Running::start_with_env(&all, env.map(|t| ("RTMP_API_TOKEN", t)));
        server.wait_line("metrics and status on");
        let kick = |auth: &str| {
            http(
                metrics,
                &format!("DELETE /api/clients/999 HTTP/1.0\r\n{auth}\r\n"),
            )
            .0
        };
        assert_eq!(kick(""), 401, "no token sent");
        assert_eq!(kick("Authorization: Bearer nope\r\n"), 403, "wrong token");
        assert_eq!(
            kick(&format!("Authorization: Bearer {token}\r\n")),
            404,
            "right token: no such client"
        );
        let (code, _) = server.terminate();
        assert_eq!(code, Some(0));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The unit in `scripts/`, as `systemd-analyze` sees it once installed:
/// valid, hardened (exposure "OK", at most 2.0), and its flags start the
/// server.
#[test]
fn systemd_unit_verifies_is_hardened_and_its_flags_run() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/rtmp-server.service"
    ))
    .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart line");
    let mut words = exec.split_whitespace();
    let installed = words.next().unwrap();
    assert_eq!(installed, "/usr/local/bin/rtmp-server");
    let flags: Vec<&str> = words.collect();
    assert!(unit.contains("LimitNOFILE=65536"));

    if common::tool_available("systemd-analyze") {
        let dir = std::env::temp_dir().join(format!("rtmp-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rtmp-server.service");
        std::fs::write(&path, unit.replace(installed, BIN)).unwrap();
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && complaints.trim().is_empty(),
            "{complaints}"
        );
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&security.stdout);
        assert!(security.status.success(), "exposure above 2.0:\n{report}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The same flags, on free loopback ports.
    let flags: Vec<&str> = flags
        .iter()
        .map(|f| if f.contains(':') { "127.0.0.1:0" } else { f })
        .collect();
    let mut server = Running::start(&flags);
    server.listen_addr();
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("metrics and status on http://127.0.0.1:")),
        "{:?}",
        server.log
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
