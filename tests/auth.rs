//! Authentication with the real binary and real clients: each mode allows
//! and denies as documented, ffmpeg fails at once when refused, the token
//! file reloads on SIGHUP, the callback's silence denies, guessers are
//! slowed down, and no token shows in any log or endpoint.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    ServerProcess, connect, ffmpeg_play, ffmpeg_publish, finish, http_get, prometheus_value,
    test_dir, tool_available,
};
use rtmp_server::rtmp::client::ClientError;

const SECRET: &str = "s3cret-Tok3n";

/// ffmpeg publishes for `seconds`; whether it succeeded (it must end
/// within the time it publishes and a margin, never hang).
fn ffmpeg_publishes(url: &str, seconds: u32) -> bool {
    let output = finish(
        ffmpeg_publish(url, seconds),
        Duration::from_secs(seconds as u64 + 20),
        "ffmpeg publisher",
    );
    output.status.success()
}

/// A publish by the in-repo client: the status code of a refusal.
fn refusal(addr: SocketAddr, app: &str, name: &str) -> Option<String> {
    let mut client = connect(addr, app).unwrap();
    match client.publish(name) {
        Ok(_) => None,
        Err(ClientError::Refused { code, .. }) => Some(code),
        Err(e) => panic!("publish {name}: {e}"),
    }
}

/// Every endpoint and the log: none shows the secret.
fn assert_secret_nowhere(server: &mut ServerProcess, http: SocketAddr, token: Option<&str>) {
    for path in [
        "/metrics",
        "/debug/vars",
        "/api/streams",
        "/api/history",
        "/api/recordings",
        "/api/server",
        "/api/streams/live/cam",
    ] {
        let (_, body) = http_get(http, path, token);
        assert!(!body.contains(SECRET), "{path} shows the token: {body}");
    }
    let log = server.drain_log().join("\n");
    assert!(!log.contains(SECRET), "the log shows the token:\n{log}");
}

#[test]
fn token_mode_guards_publish_and_play_with_real_ffmpeg() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let entry = format!("live/cam={SECRET}");
    // With debug logging: the token is not even there.
    let (mut server, rtmp, http) = ServerProcess::start_with_http(&[
        "-auth-mode",
        "token",
        "-auth-token",
        &entry,
        "-log-level",
        "debug",
    ]);
    let refused_at = Instant::now();
    assert!(!ffmpeg_publishes(
        &format!("rtmp://{rtmp}/live/cam?token=wrong"),
        5
    ));
    server.wait_line("publish live/cam refused: wrong token");
    assert!(refused_at.elapsed() < Duration::from_secs(10));
    assert!(!ffmpeg_publishes(&format!("rtmp://{rtmp}/live/cam"), 5));
    server.wait_line("publish live/cam refused: no token given");

    let publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam?token={SECRET}"), 6);
    server.wait_line("publishing live/cam");
    let dir = test_dir("auth-token");
    // A player without the token is refused; ffmpeg says so and exits.
    let output = finish(
        ffmpeg_play(&format!("rtmp://{rtmp}/live/cam"), &dir.join("no.flv")),
        Duration::from_secs(15),
        "refused player",
    );
    assert!(!output.status.success());
    server.wait_line("play live/cam refused: no token given");
    // One with the token in the connect URL plays.
    let played = dir.join("yes.flv");
    let player = ffmpeg_play(&format!("rtmp://{rtmp}/live?token={SECRET}/cam"), &played);
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    let output = finish(player, Duration::from_secs(20), "player");
    assert!(output.status.success(), "{output:?}");
    assert!(
        common::probe::video_packets(&played) > 25,
        "the player got video"
    );
    assert_eq!(prometheus_value(http, "rtmp_auth_failures_total"), 3);
    assert_eq!(prometheus_value(http, "rtmp_auth_successes_total"), 2);
    assert_secret_nowhere(&mut server, http, None);
}

#[test]
fn playback_left_open_guards_publishing_only() {
    let entry = format!("live/*={SECRET}");
    let (_server, rtmp, http) = ServerProcess::start_with_http(&[
        "-auth-mode",
        "token",
        "-auth-token",
        &entry,
        "-auth-play",
        "false",
    ]);
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish(&format!("show?token={SECRET}")).unwrap();
    let mut player = connect(rtmp, "live").unwrap();
    player.play("show").unwrap();
    assert_eq!(
        refusal(rtmp, "live", "other").as_deref(),
        Some("NetStream.Publish.Unauthorized")
    );
    assert_eq!(
        prometheus_value(http, "rtmp_auth_successes_total"),
        1,
        "play unchecked"
    );
}

#[test]
fn the_token_file_is_reread_on_sighup_and_a_broken_one_changes_nothing() {
    let dir = test_dir("auth-file");
    let file = dir.join("tokens.json");
    std::fs::write(&file, r#"{"live/cam": "first"}"#).unwrap();
    let (mut server, rtmp, _http) = ServerProcess::start_with_http(&[
        "-auth-mode",
        "file",
        "-auth-file",
        file.to_str().unwrap(),
    ]);
    let hup = |server: &ServerProcess| {
        Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
    };
    assert!(ffmpeg_publishes(
        &format!("rtmp://{rtmp}/live/cam?token=first"),
        1
    ));
    std::fs::write(&file, format!(r#"{{"live/cam": "{SECRET}"}}"#)).unwrap();
    hup(&server);
    server.wait_line("auth file reloaded: 1 stream patterns");
    assert_eq!(
        refusal(rtmp, "live", "cam?token=first").as_deref(),
        Some("NetStream.Publish.Unauthorized")
    );
    assert!(ffmpeg_publishes(
        &format!("rtmp://{rtmp}/live/cam?token={SECRET}"),
        1
    ));
    std::fs::write(&file, format!(r#"{{"live/cam": "{SECRET}""#)).unwrap();
    hup(&server);
    server.wait_line("auth file not reloaded, the old tokens stay");
    assert_eq!(refusal(rtmp, "live", &format!("cam?token={SECRET}")), None);
    assert!(server.is_alive());
    let log = server.drain_log().join("\n");
    assert!(!log.contains(SECRET), "{log}");
}

/// An auth callback: allows the token "good", refuses others, and never
/// answers for the stream "slow". Sends each body it gets to the channel.
fn callback_server() -> (String, crossbeam_channel::Receiver<serde_json::Value>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/auth", server.server_addr().to_ip().unwrap());
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            let _ = tx.send(json.clone());
            if json["name"] == "slow" {
                held.push(request);
                continue;
            }
            let status = if json["token"] == "good" { 200 } else { 403 };
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    (url, rx)
}

#[test]
fn the_callback_decides_and_its_silence_denies() {
    let (url, asked) = callback_server();
    let (_server, rtmp, _http) = ServerProcess::start_with_http(&[
        "-auth-mode",
        "callback",
        "-auth-callback",
        &url,
        "-auth-callback-timeout",
        "1s",
    ]);
    assert!(ffmpeg_publishes(
        &format!("rtmp://{rtmp}/live/cam?token=good"),
        1
    ));
    let body = asked.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(body["action"], "publish");
    assert_eq!(body["app"], "live");
    assert_eq!(body["name"], "cam");
    assert_eq!(body["stream_key"], "live/cam");
    assert_eq!(body["token"], "good");
    assert!(
        body["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(!ffmpeg_publishes(
        &format!("rtmp://{rtmp}/live/cam?token=bad"),
        1
    ));
    let started = Instant::now();
    assert_eq!(
        refusal(rtmp, "live", "slow?token=good").as_deref(),
        Some("NetStream.Publish.Unauthorized")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for it"
    );
}

#[test]
fn repeated_failures_from_one_address_are_slowed_down() {
    let entry = format!("live/cam={SECRET}");
    let (_server, rtmp, http) =
        ServerProcess::start_with_http(&["-auth-mode", "token", "-auth-token", &entry]);
    let mut answers = Vec::new();
    for n in 0..5 {
        let started = Instant::now();
        let code = refusal(rtmp, "live", &format!("cam?token=guess{n}"));
        assert_eq!(code.as_deref(), Some("NetStream.Publish.Unauthorized"));
        answers.push(started.elapsed());
    }
    // The first two answer at once; later ones wait, longer each time.
    assert!(answers[3] >= Duration::from_millis(500), "{answers:?}");
    assert!(answers[4] >= Duration::from_millis(1000), "{answers:?}");
    assert_eq!(prometheus_value(http, "rtmp_auth_failures_total"), 5);
}

#[test]
fn the_api_token_guards_reads_with_api_read_auth() {
    let (mut server, _rtmp, http) =
        ServerProcess::start_with_http(&["-api-token", SECRET, "-api-read-auth", "true"]);
    for path in [
        "/api/streams",
        "/api/history",
        "/api/recordings",
        "/api/server",
        "/metrics",
        "/debug/vars",
    ] {
        assert_eq!(http_get(http, path, None).0, 401, "{path}");
        assert_eq!(http_get(http, path, Some("wrong")).0, 403, "{path}");
        assert_eq!(http_get(http, path, Some(SECRET)).0, 200, "{path}");
    }
    assert_eq!(http_get(http, "/healthz", None), (200, "ok".into()));
    assert_secret_nowhere(&mut server, http, Some(SECRET));
}
