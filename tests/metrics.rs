//! The HTTP metrics and status endpoint, driven by the in-repo client.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use rtmp_server::protocol::amf0::Value as Amf;
use rtmp_server::rtmp::client::Client;
use serde_json::Value;

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn request(method: &str, url: &str, token: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = match method {
        "GET" => {
            let mut r = agent.get(url);
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.call().unwrap()
        }
        "DELETE" => {
            let mut r = agent.delete(url);
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.call().unwrap()
        }
        "POST" => agent.post(url).send("").unwrap(),
        other => panic!("{other}"),
    };
    Reply {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: response.body_mut().read_to_string().unwrap(),
    }
}

fn get(server: &TestServer, path: &str) -> Reply {
    request(
        "GET",
        &format!("http://{}{path}", server.http.unwrap()),
        None,
    )
}

fn vars(server: &TestServer) -> Value {
    get(server, "/debug/vars").json()
}

fn var(server: &TestServer, name: &str) -> u64 {
    vars(server)[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// A figure the README documents under "`/debug/vars` keys".
struct DocumentedKey {
    expvar: String,
    /// The Prometheus series name; `None` for computed keys.
    prometheus: Option<String>,
}

/// Every key of the README's `/debug/vars` tables: rows whose first cell is
/// a backticked key, with the Prometheus name in the second cell when the
/// table has one. The README is the list the tests check, so it cannot
/// drift from what the server exports.
fn documented_keys() -> Vec<DocumentedKey> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### `/debug/vars` keys")
        .nth(1)
        .expect("README has a `/debug/vars` keys section");
    let section = section.split("\n### ").next().unwrap_or(section);
    let backticked = |cell: &str| {
        let cell = cell.trim();
        (cell.len() > 2
            && cell.starts_with('`')
            && cell.ends_with('`')
            && !cell[1..].contains("` "))
        .then(|| cell.trim_matches('`').to_owned())
    };
    let mut keys = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        let Some(expvar) = backticked(cells[0]) else {
            continue;
        };
        let prometheus = if cells.len() == 3 {
            Some(backticked(cells[1]).unwrap_or_else(|| panic!("no Prometheus name: {line}")))
        } else {
            None
        };
        keys.push(DocumentedKey { expvar, prometheus });
    }
    assert!(keys.len() > 20, "README tables not found: {}", keys.len());
    keys
}

#[test]
fn every_documented_debug_vars_key_is_present_and_every_key_is_documented() {
    let server = TestServer::with_http(None, |_| {});
    let reply = get(&server, "/debug/vars");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    let v = reply.json();
    let documented = documented_keys();
    let samples = check_prometheus(&get(&server, "/metrics").body);
    for key in &documented {
        let value = v
            .get(&key.expvar)
            .unwrap_or_else(|| panic!("{} documented but not in /debug/vars", key.expvar));
        if let Some(name) = &key.prometheus {
            // Gauges and counters: all zero on a fresh server.
            assert_eq!(value.as_u64(), Some(0), "{}", key.expvar);
            assert_eq!(samples.get(name), Some(&0.0), "{name} not in /metrics");
        }
    }
    let object = v.as_object().unwrap();
    for name in object.keys() {
        assert!(
            documented.iter().any(|k| &k.expvar == name),
            "{name} is in /debug/vars but not documented in the README"
        );
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for series in samples.keys() {
        let name = series.split('{').next().unwrap();
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is in /metrics but not documented in the README"
        );
    }
    assert!(v["rtmp_uptime_seconds"].is_f64());
    let info = &v["rtmp_server_info"];
    assert!(info["version"].is_string() && info["rustc"].as_str().unwrap().starts_with("rustc"));
    assert_eq!(
        info["listen"][0].as_str(),
        Some(server.addr.to_string().as_str())
    );
    assert!(info["pid"].is_u64() && info["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["rtmp_streams"], Value::Array(vec![]));
    assert_eq!(v["rtmp_relay_destinations"], Value::Array(vec![]));
    assert!(v["process"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(v["process"]["threads"].as_u64().unwrap() > 0);
    assert!(v["process"]["cpu_seconds"].is_number());
    assert!(v.get("cmdline").is_none(), "no command line exposed");
}

#[test]
fn scripted_session_gives_exact_figures_and_a_history_entry() {
    let server = TestServer::with_http(None, |_| {});
    let mut first = player(server.addr, "script");
    let mut second = player(server.addr, "script");
    let mut publisher = publisher(server.addr, "script");
    let mut sent_bytes = 0u64;
    let send = |publisher: &mut Client, n: u32| {
        let frame = video_frame(n, n.is_multiple_of(10), 1000 + n as usize);
        publisher.send_video(n * 40, &frame).unwrap();
        let audio = aac_frame(n);
        publisher.send_audio(n * 40, &audio).unwrap();
        (frame.len() + audio.len()) as u64
    };
    let mut first_batch = 0;
    for n in 0..20 {
        first_batch += send(&mut publisher, n);
    }
    sent_bytes += first_batch;
    read_media(&mut first, 40).unwrap();
    read_media(&mut second, 40).unwrap();
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_bytes_egress"
    ) == 2 * first_batch));
    let live = vars(&server);
    assert_eq!(live["rtmp_publishers_active"], 1);
    assert_eq!(live["rtmp_subscribers_active"], 2);
    assert_eq!(live["rtmp_streams_active"], 1);
    assert_eq!(live["rtmp_connections_active"], 3);
    assert_eq!(live["rtmp_streams"][0]["key"], "live/script");
    assert_eq!(live["rtmp_streams"][0]["subscribers"], 2);
    assert_eq!(live["rtmp_streams"][0]["codecs"]["video"], "H264");

    drop(second);
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_subscribers_active"
    ) == 1));
    let mut second_batch = 0;
    for n in 20..30 {
        second_batch += send(&mut publisher, n);
    }
    sent_bytes += second_batch;
    read_media(&mut first, 20).unwrap();
    let egress = 2 * first_batch + second_batch;
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_bytes_egress"
    ) == egress));

    publisher.delete_stream().unwrap();
    drop(publisher);
    drop(first);
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_connections_active"
    ) == 0));
    let end = vars(&server);
    for gauge in [
        "rtmp_connections_active",
        "rtmp_publishers_active",
        "rtmp_subscribers_active",
        "rtmp_streams_active",
    ] {
        assert_eq!(end[gauge], 0, "{gauge}");
    }
    assert_eq!(end["rtmp_connections_total"], 3);
    assert_eq!(end["rtmp_publishers_total"], 1);
    assert_eq!(end["rtmp_subscribers_total"], 2);
    assert_eq!(end["rtmp_messages_video"], 30);
    assert_eq!(end["rtmp_messages_audio"], 30);
    assert_eq!(end["rtmp_bytes_ingested"], sent_bytes);
    assert_eq!(end["rtmp_bytes_egress"], egress);
    assert_eq!(end["rtmp_subscriber_drops_total"], 0);
    assert_eq!(end["rtmp_protocol_errors_total"], 0);
    assert_eq!(end["rtmp_handshake_failures_total"], 0);

    let history = get(&server, "/api/history").json();
    assert_eq!(history["total"], 1);
    let entry = &history["sessions"][0];
    assert_eq!(entry["key"], "live/script");
    assert_eq!(entry["reason"], "publisher_closed");
    assert_eq!(entry["peak_subscribers"], 2);
    assert_eq!(entry["total_subscribers"], 2);
    assert_eq!(entry["bytes_in"], sent_bytes);
    assert_eq!(entry["bytes_out"], egress);
    assert_eq!(entry["dropped_messages"], 0);
    assert!(entry["duration_ms"].is_u64());
    assert!(entry["opened_at"].as_str().unwrap() <= entry["closed_at"].as_str().unwrap());
}

#[test]
fn history_records_timeouts_and_kicks_newest_first() {
    let token = "k1ck-t0ken";
    let server = TestServer::with_http(Some(token), |c| {
        c.publisher_timeout = Duration::from_millis(300)
    });
    let _silent = publisher(server.addr, "quiet");
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .is_empty()));
    let kicked = publisher(server.addr, "kicked");
    let stream = server.registry().get("live/kicked").unwrap();
    let id = stream.input_id().unwrap();
    let url = format!("http://{}/api/clients/{id}", server.http.unwrap());
    assert_eq!(request("DELETE", &url, Some(token)).status, 200);
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .is_empty()));
    drop(kicked);
    let history = get(&server, "/api/history").json();
    let reasons: Vec<_> = history["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(reasons, vec!["kicked", "publisher_timeout"]);
    assert_eq!(var(&server, "rtmp_zombie_connections_total"), 1);
}

#[test]
fn api_streams_describes_publisher_media_and_players() {
    let server = TestServer::with_http(None, |_| {});
    let mut publisher = publisher(server.addr, "described");
    publisher
        .send_metadata(vec![
            ("width".into(), Amf::Number(1280.0)),
            ("height".into(), Amf::Number(720.0)),
            ("framerate".into(), Amf::Number(30.0)),
        ])
        .unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_audio(0, &aac_sequence_header()).unwrap();
    publisher.send_video(0, &video_frame(0, true, 500)).unwrap();
    publisher.send_audio(10, &aac_frame(1)).unwrap();
    let mut player = player(server.addr, "described");
    read_media(&mut player, 5).unwrap();
    let _other = common::publisher(server.addr, "other");

    let all = get(&server, "/api/streams").json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["streams"].as_array().unwrap().len(), 2);
    let page = get(&server, "/api/streams?page=2&per_page=1").json();
    assert_eq!(page["streams"].as_array().unwrap().len(), 1);
    assert_eq!(page["streams"][0]["key"], "live/other");

    let s = get(&server, "/api/streams/live/described").json();
    assert_eq!(s["key"], "live/described");
    assert!(s["publisher"]["id"].is_u64());
    assert!(
        s["publisher"]["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(s["publisher"]["uptime_ms"].is_u64());
    assert_eq!(s["video"]["codec"]["name"], "H264");
    assert_eq!(s["video"]["codec"]["fourcc"], "avc1");
    assert_eq!(s["video"]["width"], 1280.0);
    assert_eq!(s["video"]["height"], 720.0);
    assert_eq!(s["video"]["fps"], 30.0);
    assert_eq!(s["video"]["profile"], 100);
    assert_eq!(s["video"]["level"], 31);
    assert_eq!(s["video"]["profile_name"], "High");
    assert_eq!(s["video"]["level_name"], "3.1");
    assert_eq!(s["audio"]["codec"]["name"], "AAC");
    assert_eq!(s["audio"]["sample_rate"], 44100);
    assert_eq!(s["audio"]["channels"], 2);
    assert_eq!(s["gop_cache"]["frames"], 1);
    assert_eq!(s["gop_cache"]["messages"], 2);
    assert_eq!(s["gop_cache"]["bytes"], 500 + aac_frame(1).len());
    assert!(s["bitrate_in_kbps"].is_number() && s["bitrate_out_kbps"].is_number());
    assert!(s["bytes_in"].as_u64().unwrap() >= 500);
    for key in [
        "skip_events",
        "dropped_messages",
        "dropped_bytes",
        "max_lag_ms",
    ] {
        assert!(s["slow_subscribers"][key].is_u64(), "{key}");
    }
    let sub = &s["subscribers"][0];
    for key in [
        "id",
        "bytes_sent",
        "queue_depth",
        "dropped_messages",
        "skip_events",
        "lag_ms",
    ] {
        assert!(sub[key].is_u64(), "{key}");
    }
    assert!(sub["connected_at"].as_str().unwrap().ends_with('Z'));

    let missing = get(&server, "/api/streams/live/nothing");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/json");
    assert!(missing.json()["error"].is_string());
}

#[test]
fn bitrates_are_zero_once_the_publisher_left() {
    let server = TestServer::with_http(None, |_| {});
    let _waiting = player(server.addr, "rates");
    let mut publisher = publisher(server.addr, "rates");
    let kbps = || get(&server, "/api/streams/live/rates").json()["bitrate_in_kbps"].as_f64();
    let mut n = 0;
    // The endpoint samples once a second: send until a rate shows.
    let shown = wait_for(Duration::from_secs(10), || {
        n += 1;
        publisher
            .send_video(n * 40, &video_frame(n, n == 1, 5000))
            .unwrap();
        kbps().unwrap_or(0.0) > 0.0
    });
    assert!(shown, "no ingress bitrate while publishing");
    drop(publisher);
    assert!(wait_for(Duration::from_secs(5), || {
        get(&server, "/api/streams/live/rates").json()["publisher"].is_null()
    }));
    assert_eq!(kbps(), Some(0.0), "bitrate kept after the publisher left");
}

/// A strict check of the text exposition format.
fn check_prometheus(text: &str) -> HashMap<String, f64> {
    let mut helps = HashSet::new();
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helps.insert(name.to_owned()), "duplicate HELP {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap().to_owned();
            assert!(["counter", "gauge"].contains(&kind.as_str()), "{line}");
            if kind == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter {name} must end in _total"
                );
            }
            assert!(types.insert(name, kind).is_none(), "duplicate TYPE: {line}");
        } else {
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "stray line {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let name = series.split('{').next().unwrap();
            assert!(valid_name(name), "bad name {name}");
            assert!(types.contains_key(name), "sample before TYPE: {line}");
            assert!(helps.contains(name), "sample without HELP: {line}");
            if let Some(labels) = series.strip_prefix(name)
                && !labels.is_empty()
            {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split("\",") {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                    assert!(valid_name(k) && !v.contains('\n'), "{line}");
                }
            }
            samples.insert(series.to_owned(), value);
        }
    }
    samples
}

#[test]
fn prometheus_exposition_is_valid_and_has_per_stream_series() {
    let server = TestServer::with_http(None, |_| {});
    let mut publisher = publisher(server.addr, "prom");
    publisher.send_video(0, &video_frame(0, true, 100)).unwrap();
    let _player = player(server.addr, "prom");
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_subscribers_active"
    ) == 1));
    let reply = get(&server, "/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.content_type.starts_with("text/plain; version=0.0.4"));
    let samples = check_prometheus(&reply.body);
    assert_eq!(samples["rtmp_publishers_active"], 1.0);
    assert_eq!(samples["rtmp_video_messages_total"], 1.0);
    assert_eq!(
        samples["rtmp_stream_subscribers{stream=\"live/prom\"}"],
        1.0
    );
    for name in [
        "rtmp_stream_ingress_kbps{stream=\"live/prom\"}",
        "rtmp_stream_egress_kbps{stream=\"live/prom\"}",
        "rtmp_stream_dropped_messages_total{stream=\"live/prom\"}",
        "rtmp_ingested_bytes_total",
        "rtmp_egress_bytes_total",
        "process_resident_memory_bytes",
        "rtmp_uptime_seconds",
    ] {
        assert!(samples.contains_key(name), "{name} missing");
    }
}

#[test]
fn kick_needs_the_token_and_nothing_leaks_tokens_or_queries() {
    let token = "api-Sup3rSecret";
    let server = TestServer::with_http(Some(token), |_| {});
    let mut publisher = connect(server.addr, "live?app_token=AppQuery1").unwrap();
    publisher.publish("leaky?token=StreamQuery2").unwrap();
    let mut player = connect(server.addr, "live").unwrap();
    player.play("leaky?viewer=ViewerQuery3").unwrap();
    let id = server
        .registry()
        .get("live/leaky")
        .unwrap()
        .input_id()
        .unwrap();
    let base = format!("http://{}", server.http.unwrap());

    for path in [
        "/debug/vars",
        "/metrics",
        "/api/streams",
        "/api/streams/live/leaky",
        "/api/server",
        "/api/history",
    ] {
        let body = get(&server, path).body;
        for secret in [token, "AppQuery1", "StreamQuery2", "ViewerQuery3", "token="] {
            assert!(!body.contains(secret), "{path} shows {secret}");
        }
    }

    let url = format!("{base}/api/clients/{id}");
    let missing = request("DELETE", &url, None);
    assert_eq!(missing.status, 401);
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{}",
        missing.body
    );
    let wrong = request("DELETE", &url, Some("wrong"));
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.json()["error"], "forbidden: wrong API token");
    assert_eq!(
        request("DELETE", &url, Some(&format!("{token}x"))).status,
        403
    );
    assert!(
        server
            .registry()
            .get("live/leaky")
            .unwrap()
            .input_id()
            .is_some()
    );
    let ok = request("DELETE", &url, Some(token));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["kicked"], id);
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .get("live/leaky")
        .is_none_or(|s| s.input_id().is_none())));
    assert!(
        (0..100).any(|_| publisher.read_message().is_err()),
        "kicked publisher closed"
    );
    assert_eq!(
        request("DELETE", &format!("{base}/api/clients/99999"), Some(token)).status,
        404
    );
    let history = get(&server, "/api/history").json();
    assert_eq!(history["sessions"][0]["reason"], "kicked");
    drop(player);
}

#[test]
fn without_a_token_every_write_is_forbidden() {
    let server = TestServer::with_http(None, |_| {});
    let _publisher = publisher(server.addr, "safe");
    let id = server
        .registry()
        .get("live/safe")
        .unwrap()
        .input_id()
        .unwrap();
    let url = format!("http://{}/api/clients/{id}", server.http.unwrap());
    for token in [None, Some(""), Some("guess")] {
        let reply = request("DELETE", &url, token);
        assert_eq!(reply.status, 403);
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("-api-token"),
            "{}",
            reply.body
        );
    }
    assert!(
        server
            .registry()
            .get("live/safe")
            .unwrap()
            .input_id()
            .is_some()
    );
}

#[test]
fn unknown_paths_404_wrong_methods_405_healthz_and_server() {
    let server = TestServer::with_http(None, |_| {});
    let base = format!("http://{}", server.http.unwrap());
    let missing = get(&server, "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/json");
    let wrong = request("POST", &format!("{base}/api/streams"), None);
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.content_type, "application/json");
    let health = get(&server, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let info = get(&server, "/api/server").json();
    assert!(info["version"].is_string());
    assert!(info["uptime_ms"].is_u64());
    assert_eq!(
        info["listen"][0].as_str(),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(info["connections"]["active"], 0);
    assert!(info["process"]["rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn protocol_errors_and_handshake_failures_are_counted() {
    use std::io::Write;
    let server = TestServer::with_http(None, |_| {});
    let mut garbage = std::net::TcpStream::connect(server.addr).unwrap();
    garbage.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_handshake_failures_total"
    ) == 1));
    let mut client = Client::handshake(server.addr, &Default::default()).unwrap();
    client.write_raw(&[0xc5, 1, 2, 3]).unwrap(); // type-3 chunk with no header
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_protocol_errors_total"
    ) == 1));
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_connections_active"
    ) == 0));
    assert_eq!(var(&server, "rtmp_connections_total"), 1);
}

#[test]
fn slow_player_drops_and_skips_are_counted() {
    let server = TestServer::with_http(None, |c| {
        c.queue_max_bytes = 256 * 1024;
        c.queue_max_messages = 64;
    });
    let mut publisher = publisher(server.addr, "slowcount");
    let _slow = player(server.addr, "slowcount");
    for n in 0..600u32 {
        publisher
            .send_video(n * 40, &video_frame(n, n.is_multiple_of(30), 20_000))
            .unwrap();
    }
    assert!(wait_for(Duration::from_secs(5), || var(
        &server,
        "rtmp_slow_skips_total"
    ) > 0));
    // Let the server finish reading what the publisher sent.
    let mut last = u64::MAX;
    assert!(wait_for(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = var(&server, "rtmp_messages_video");
        std::mem::replace(&mut last, now) == now
    }));
    let v = vars(&server);
    let stream = get(&server, "/api/streams/live/slowcount").json();
    let drops = v["rtmp_subscriber_drops_total"].as_u64().unwrap();
    assert!(drops > 0);
    assert_eq!(stream["slow_subscribers"]["dropped_messages"], drops);
    assert_eq!(stream["subscribers"][0]["dropped_messages"], drops);
    assert!(
        stream["slow_subscribers"]["dropped_bytes"]
            .as_u64()
            .unwrap()
            >= drops * 20_000
    );
}
