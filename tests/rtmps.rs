//! RTMPS (`-tls-listen`, `-tls-cert`, `-tls-key`): ffmpeg publishing and
//! playing over TLS with a self-signed certificate the test makes, plain
//! RTMP beside it; the wrong protocol on either port closed and counted;
//! bad certificate files refused at startup; SIGHUP rereading the pair; a
//! TLS handshake dripping a byte at a time closed at the handshake
//! deadline while RTMPS works on.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::probe::{decode_errors, first_video_frame_is_key, probe};
use common::*;

/// A self-signed certificate for localhost and its key, as PEM files in
/// `dir`; their paths.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The binary with RTMPS on a loopback port: it, its RTMP and RTMPS
/// addresses.
fn start_rtmps(cert: &Path, key: &Path, more: &[&str]) -> (ServerProcess, SocketAddr, SocketAddr) {
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut args = vec![
        "-listen",
        "127.0.0.1:0",
        "-tls-listen",
        "127.0.0.1:0",
        "-tls-cert",
        cert,
        "-tls-key",
        key,
    ];
    args.extend_from_slice(more);
    let mut server = ServerProcess::start(&args);
    let rtmp = server.listen_addr();
    let line = server.wait_line("RTMPS listening on ");
    let tls = line.rsplit(' ').next().unwrap().parse().unwrap();
    (server, rtmp, tls)
}

/// ffmpeg playing `url` into `out` (certificates not checked).
fn ffmpeg_play_tls(url: &str, out: &Path) -> std::process::Child {
    ffmpeg_play_with(&["-rw_timeout", "10000000", "-tls_verify", "0"], url, out)
}

/// An ffmpeg player and then 2 s of an ffmpeg publisher over RTMPS on
/// `live/cam`; the video frames the player wrote to `out`.
fn rtmps_round_trip(server: &mut ServerProcess, tls: SocketAddr, out: &Path) -> u64 {
    let url = format!("rtmps://{tls}/live/cam");
    let player = ffmpeg_play_tls(&url, out);
    server.wait_line("playing live/cam");
    let publisher = ffmpeg_encoder(
        "320x240",
        440,
        2,
        25,
        &["-tls_verify", "0", "-f", "flv", &url],
    );
    let published = finish(publisher, Duration::from_secs(30), "the publisher");
    assert!(published.status.success());
    finish(player, Duration::from_secs(20), "the player");
    probe(out).video_frames
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_plays_over_rtmps_and_plain_rtmp() {
    assert!(tool_available("ffmpeg"), "ffmpeg is needed");
    let dir = test_dir("rtmps");
    let (cert, key) = certificate(&dir, "server");
    let (mut server, rtmp, tls) = start_rtmps(&cert, &key, &["-metrics-addr", "127.0.0.1:0"]);
    let http = server.metrics_addr();
    let (over_tls, over_plain) = (dir.join("tls.flv"), dir.join("plain.flv"));
    let tls_player = ffmpeg_play_tls(&format!("rtmps://{tls}/live/cam"), &over_tls);
    let plain_player = ffmpeg_play(&format!("rtmp://{rtmp}/live/cam"), &over_plain);
    server.wait_line("playing live/cam");
    server.wait_line("playing live/cam");
    let publisher = ffmpeg_encoder(
        "320x240",
        440,
        4,
        25,
        &[
            "-tls_verify",
            "0",
            "-f",
            "flv",
            &format!("rtmps://{tls}/live/cam"),
        ],
    );
    // The API says which connections are over TLS.
    let shown = wait_for(Duration::from_secs(10), || {
        let stream = http_json(http, "/api/streams/live/cam");
        let mut players: Vec<bool> = stream["subscribers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["tls"] == true)
            .collect();
        players.sort();
        stream["publisher"]["tls"] == true && players == [false, true]
    });
    assert!(shown, "{}", http_json(http, "/api/streams/live/cam"));
    let published = finish(publisher, Duration::from_secs(30), "the RTMPS publisher");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    finish(tls_player, Duration::from_secs(20), "the RTMPS player");
    finish(plain_player, Duration::from_secs(20), "the RTMP player");
    let (got, plain) = (probe(&over_tls), probe(&over_plain));
    assert_eq!(got.codecs, ["aac", "h264"]);
    assert_eq!(got.video_frames, 100, "every frame of 4 s at 25 fps");
    assert_eq!(got, plain, "the same over TLS and plain RTMP");
    assert!(first_video_frame_is_key(&over_tls));
    assert_eq!(decode_errors(&over_tls), "");
}

#[test]
fn the_wrong_protocol_on_either_port_is_closed_and_counted() {
    let dir = test_dir("rtmps-wrong");
    let (cert, key) = certificate(&dir, "server");
    let (mut server, rtmp, tls) = start_rtmps(&cert, &key, &["-metrics-addr", "127.0.0.1:0"]);
    let http = server.metrics_addr();
    for (addr, hello) in [
        // RTMP's C0 and the start of C1 to the RTMPS port.
        (tls, vec![3u8; 1537]),
        // The start of a TLS ClientHello to the RTMP port.
        (
            rtmp,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
    ] {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let asked = Instant::now();
        let _ = socket.write_all(&hello);
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "closed at once, not at a deadline"
        );
    }
    server.wait_line("plain RTMP on the RTMPS port?");
    server.wait_line("a TLS handshake on the plain RTMP port");
    assert_eq!(prometheus_value(http, "rtmp_handshake_failures_total"), 2);
}

#[test]
fn unusable_certificate_files_are_startup_errors_naming_their_flag() {
    let dir = test_dir("rtmps-files");
    let (cert, key) = certificate(&dir, "one");
    let (_, other_key) = certificate(&dir, "two");
    let missing = dir.join("missing.pem");
    let (cert, key, other_key, missing) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        other_key.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    for (args, flag) in [
        (vec!["-tls-cert", missing, "-tls-key", key], "-tls-cert"),
        (vec!["-tls-cert", cert, "-tls-key", missing], "-tls-key"),
        (vec!["-tls-cert", key, "-tls-key", key], "-tls-cert"),
        (vec!["-tls-cert", cert, "-tls-key", other_key], "-tls-key"),
    ] {
        let output = std::process::Command::new(BIN)
            .args(["-listen", "127.0.0.1:0", "-tls-listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
    let output = std::process::Command::new(BIN)
        .args(["-tls-listen", ":1936"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("-tls-cert"), "{stderr}");
}

#[test]
fn sighup_rereads_the_certificate_and_a_bad_one_keeps_the_old() {
    assert!(tool_available("ffmpeg"), "ffmpeg is needed");
    let dir = test_dir("rtmps-reload");
    let (cert, key) = certificate(&dir, "server");
    let (mut server, _, tls) = start_rtmps(&cert, &key, &[]);
    let hup = |server: &ServerProcess| {
        let pid = server.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    // A new pair.
    let (new_cert, new_key) = certificate(&dir, "renewed");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    hup(&server);
    server.wait_line("TLS certificate and key reloaded");
    // A broken one: the old pair stays in service.
    std::fs::write(&key, "not a key").unwrap();
    hup(&server);
    server.wait_line("TLS certificate not reloaded, the old one stays");
    assert_eq!(
        rtmps_round_trip(&mut server, tls, &dir.join("after.flv")),
        50
    );
}

#[test]
fn dripping_tls_handshakes_are_closed_at_the_deadline_while_rtmps_works() {
    assert!(tool_available("ffmpeg"), "ffmpeg is needed");
    let dir = test_dir("rtmps-drip");
    let (cert, key) = certificate(&dir, "server");
    let (mut server, _, tls) = start_rtmps(&cert, &key, &[]);
    // 200 connections, each sending a ClientHello one byte a second.
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec();
    let mut drips: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(tls).unwrap()).collect();
    let dripping = std::thread::spawn(move || {
        let started = Instant::now();
        let mut closed = 0;
        for byte in hello.iter().cycle().take(15) {
            drips.retain_mut(|s| s.write_all(&[*byte]).is_ok());
            std::thread::sleep(Duration::from_secs(1));
            if drips.is_empty() {
                closed = 200;
                break;
            }
        }
        (started.elapsed(), closed, drips.len())
    });
    // Meanwhile a normal RTMPS publish and play.
    let frames = rtmps_round_trip(&mut server, tls, &dir.join("meanwhile.flv"));
    assert_eq!(frames, 50, "RTMPS works meanwhile");
    let (took, _, left) = dripping.join().unwrap();
    assert_eq!(left, 0, "every dripping connection was closed");
    assert!(
        took < Duration::from_secs(14),
        "closed at the 10 s handshake deadline: {took:?}"
    );
    server.wait_line("handshake timed out");
}

#[test]
fn relays_and_pulls_reach_an_rtmps_server_and_check_its_certificate() {
    assert!(tool_available("ffmpeg"), "ffmpeg is needed");
    let dir = test_dir("rtmps-upstream");
    let (cert, key) = certificate(&dir, "edge");
    let (mut edge, edge_rtmp, edge_tls) = start_rtmps(&cert, &key, &[]);
    // Relayed over RTMPS to the edge (its certificate is self-signed).
    let relay_to = format!("rtmps://{edge_tls}/live");
    let mut origin = ServerProcess::start(&[
        "-listen",
        "127.0.0.1:0",
        "-relay-to",
        &relay_to,
        "-tls-insecure-upstream",
    ]);
    let origin_rtmp = origin.listen_addr();
    // Without -tls-insecure-upstream the certificate is refused.
    let (mut strict, strict_rtmp, strict_http) =
        ServerProcess::start_with_http(&["-relay-to", &format!("rtmps://{edge_tls}/strict")]);
    let relayed = dir.join("relayed.flv");
    let player = ffmpeg_play(&format!("rtmp://{edge_rtmp}/live/cam"), &relayed);
    edge.wait_line("playing live/cam");
    let publisher = ffmpeg_encoder(
        "320x240",
        440,
        8,
        25,
        &["-f", "flv", &format!("rtmp://{origin_rtmp}/live/cam")],
    );
    origin.wait_line("relay of live/cam to rtmps://");
    // A pull of the edge's stream over RTMPS.
    let pulled = dir.join("pulled.flv");
    let source = format!("live/pulled=rtmps://{edge_tls}/live/cam");
    let mut puller = ServerProcess::start(&[
        "-listen",
        "127.0.0.1:0",
        "-source",
        &source,
        "-tls-insecure-upstream",
    ]);
    let puller_rtmp = puller.listen_addr();
    let pull_player = ffmpeg_play(&format!("rtmp://{puller_rtmp}/live/pulled"), &pulled);
    let mut strict_publisher = ffmpeg_encoder(
        "320x240",
        440,
        20,
        25,
        &["-f", "flv", &format!("rtmp://{strict_rtmp}/live/cam")],
    );
    // The strict relay says why it cannot reach the edge.
    let refused = wait_for(Duration::from_secs(10), || {
        let (_, body) = http_get(strict_http, "/api/streams/live/cam", None);
        let stream: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        stream["relays"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate"))
    });
    let _ = strict_publisher.kill();
    let _ = strict_publisher.wait();
    assert!(
        refused,
        "the self-signed certificate is refused without -tls-insecure-upstream: {}",
        http_get(strict_http, "/api/streams/live/cam", None).1
    );
    assert!(
        finish(publisher, Duration::from_secs(30), "the publisher")
            .status
            .success()
    );
    finish(player, Duration::from_secs(20), "the edge's player");
    let got = probe(&relayed);
    assert_eq!(got.codecs, ["aac", "h264"]);
    assert!(got.video_frames >= 175, "relayed over RTMPS: {got:?}");
    assert_eq!(decode_errors(&relayed), "");
    let mut pull_player = pull_player;
    let _ = pull_player.kill();
    let _ = pull_player.wait();
    let pulled_got = probe(&pulled);
    assert!(
        pulled_got.video_frames >= 25,
        "pulled over RTMPS: {pulled_got:?}"
    );
    assert!(first_video_frame_is_key(&pulled));
    let _ = (&mut strict, &mut puller);
}

#[test]
fn an_rtmps_player_that_reads_nothing_is_skipped_then_dropped_while_others_play() {
    use rtmp_server::rtmp::client::{Client, ClientOptions};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = test_dir("rtmps-slow");
    let (cert, key) = certificate(&dir, "server");
    let server = TestServer::with_http(None, |c| {
        c.write_timeout = Duration::from_secs(2);
        c.tls = Some(rtmp_server::tls::TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            files: rtmp_server::tls::TlsFiles { cert, key },
        });
    });
    let (http, tls) = (server.http.unwrap(), server.tls.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // 100 kB frames at 25 fps: 20 Mbps, enough to fill any socket buffer.
    let sender = publish_paced(
        publisher(server.addr, "cam"),
        100_000,
        Arc::clone(&stop),
        Arc::default(),
    );
    let options = ClientOptions {
        verify_tls: false,
        ..test_options()
    };
    let url = rtmp_server::protocol::url::RtmpUrl::parse(&format!("rtmps://{tls}/live")).unwrap();
    let mut reader = Client::connect(&url, &options).unwrap();
    reader.play("cam").unwrap();
    let mut stuck = Client::connect(&url, &options).unwrap();
    stuck.play("cam").unwrap();
    // The RTMPS player that reads keeps real time while the other reads nothing.
    read_media(&mut reader, 10).unwrap();
    let started = Instant::now();
    read_media(&mut reader, 2 * 125).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(5600),
        "125 frames (5 s) took {took:?}"
    );
    let dropped = wait_for(Duration::from_secs(15), || {
        let (_, body) = http_get(http, "/api/streams/live/cam", None);
        let stream: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        stream["subscribers"]
            .as_array()
            .is_some_and(|s| s.len() == 1)
    });
    assert!(
        dropped,
        "the stuck RTMPS player was dropped at -write-timeout"
    );
    assert!(
        prometheus_value(http, "rtmp_subscriber_drops_total") > 0,
        "it was skipped first"
    );
    read_media(&mut reader, 25).unwrap();
    stop.store(true, Ordering::Relaxed);
    drop(sender.join().unwrap());
    drop(stuck);
}
