//! The dashboard in headless Chromium (through ChromeDriver) while ffmpeg
//! publishes: the stream shows up, plays in the page through Media Source
//! Extensions, and ends; the page rides out a server restart. Needs
//! Debian's `chromium` and `chromium-driver` (scripts/test.sh installs
//! them).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;

/// Where the dashboard's screenshot goes: `target/test-artifacts/`, and
/// the README's copy when `RTMP_SERVER_SCREENSHOT` names it.
fn save_screenshot(browser: &Browser, name: &str) {
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts");
    browser.screenshot(&artifacts.join(name));
    if let Ok(copy) = std::env::var("RTMP_SERVER_SCREENSHOT")
        && name == "dashboard.png"
    {
        browser.screenshot(&PathBuf::from(copy));
    }
}

/// The console's errors that come from the page itself (the browser's own
/// network errors while the server is away are expected).
fn page_errors(browser: &Browser) -> Vec<String> {
    browser
        .console()
        .into_iter()
        .filter(|(level, source, _)| level == "SEVERE" && source != "network")
        .map(|(_, source, message)| format!("{source}: {message}"))
        .collect()
}

const CARD: &str = "document.querySelector('[data-key=\"live/cam\"]')";

#[test]
fn the_dashboard_shows_a_stream_plays_it_and_sees_it_end() {
    let (_server, rtmp, http) = ServerProcess::start_with_http(&["-api-token", "secret"]);
    let browser = Browser::start();
    browser.open(&format!("http://{http}/"));
    assert!(browser.wait_for(
        Duration::from_secs(10),
        "return document.getElementById('reachability').textContent === 'connected' \
         && !document.getElementById('no-streams').hidden"
    ));
    let mut publisher = ffmpeg_encoder(
        "640x360",
        440,
        60,
        25,
        &["-f", "flv", &format!("rtmp://{rtmp}/live/cam")],
    );
    let described = wait_for(Duration::from_secs(20), || {
        let streams = http_json(http, "/api/streams");
        streams["streams"][0]["video"]["width"].as_f64() == Some(640.0)
    });
    assert!(described, "the API shows the stream");
    // The page shows it within 3 s, with its codec and resolution.
    let shown = browser.wait_for(
        Duration::from_secs(3),
        &format!(
            "const card = {CARD}; if (!card) return false; \
             const text = card.textContent; \
             return text.includes('H264') && text.includes('640×360') \
                 && card.querySelector('.state').textContent === 'live'"
        ),
    );
    assert!(
        shown,
        "the stream on the page: {}",
        browser.eval("return document.body.innerText")
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('button.danger').length"),
        0,
        "no actions without the token"
    );

    // The Watch view plays it.
    browser.eval(&format!("{CARD}.querySelector('button.watch').click()"));
    let playing = browser.wait_for(
        Duration::from_secs(20),
        "return document.getElementById('video').currentTime > 3",
    );
    assert!(
        playing,
        "video plays: {}",
        browser.eval("return document.getElementById('watch-status').textContent")
    );
    assert_eq!(
        browser.eval("return document.getElementById('video').error"),
        serde_json::Value::Null
    );
    let spread = browser.eval(
        "const v = document.getElementById('video'); \
         const c = document.createElement('canvas'); c.width = 64; c.height = 36; \
         const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36); \
         const p = g.getImageData(0, 0, 64, 36).data; let lo = 255, hi = 0; \
         for (let i = 0; i < p.length; i += 4) { \
           const y = (p[i] + p[i + 1] + p[i + 2]) / 3; lo = Math.min(lo, y); hi = Math.max(hi, y); } \
         return hi - lo",
    );
    assert!(
        spread.as_f64().unwrap_or(0.0) > 50.0,
        "the decoded frame is a picture, not blank: spread {spread}"
    );
    let streams = http_json(http, "/api/streams");
    let viewer = &streams["streams"][0]["subscribers"][0];
    assert_eq!(viewer["protocol"], "http-mp4", "{streams}");

    // With the API token, the player can be kicked.
    browser.eval(
        "document.getElementById('unlock').click(); \
         document.getElementById('token-input').value = 'secret'; \
         document.getElementById('token-form').requestSubmit();",
    );
    assert!(browser.wait_for(
        Duration::from_secs(5),
        &format!("return {CARD}.querySelectorAll('button.danger').length === 1")
    ));
    save_screenshot(&browser, "dashboard.png");
    // On a phone's screen nothing is wider than the screen.
    browser.resize(390, 844);
    let fits = browser.wait_for(
        Duration::from_secs(3),
        "return window.innerWidth < 500 \
             && document.documentElement.scrollWidth <= window.innerWidth",
    );
    assert!(
        fits,
        "{} wide in {}: {}",
        browser.eval("return document.documentElement.scrollWidth"),
        browser.eval(
            "return [...document.querySelectorAll('body *')] \
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1) \
             .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)) \
             .slice(0, 12).join(' | ')"
        ),
        browser.eval("return window.innerWidth")
    );
    save_screenshot(&browser, "dashboard-phone.png");

    // The publisher stops: the page says the stream ended.
    publisher.kill().unwrap();
    let _ = publisher.wait();
    let ended = browser.wait_for(
        Duration::from_secs(10),
        &format!(
            "return {CARD}.querySelector('.state').textContent === 'ended' \
             && document.getElementById('watch-status').textContent.includes('ended')"
        ),
    );
    assert!(ended, "{}", browser.eval("return document.body.innerText"));
    let errors = page_errors(&browser);
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn the_page_keeps_working_when_the_server_restarts_under_it() {
    let (mut server, _, http) = ServerProcess::start_with_http(&[]);
    let browser = Browser::start();
    browser.open(&format!("http://{http}/"));
    let connected = "return document.getElementById('reachability').textContent === 'connected' \
                     && document.getElementById('banner').hidden";
    assert!(browser.wait_for(Duration::from_secs(10), connected));
    server.terminate();
    assert!(
        browser.wait_for(
            Duration::from_secs(10),
            "return !document.getElementById('banner').hidden"
        ),
        "the page says the server is unreachable"
    );
    // The same address again.
    let started = Instant::now();
    let _again = loop {
        let mut again =
            ServerProcess::start(&["-listen", "127.0.0.1:0", "-metrics-addr", &http.to_string()]);
        if again.is_alive() && wait_for(Duration::from_secs(2), || again.is_alive()) {
            break again;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "restart on {http}"
        );
    };
    assert!(
        browser.wait_for(Duration::from_secs(10), connected),
        "the page is back: {}",
        browser.eval("return document.body.innerText")
    );
    let errors = page_errors(&browser);
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// A modern ffmpeg publishing `seconds` of test video and audio to `url`.
fn publish_modern(url: &str, seconds: u32, video: &[&str], audio: &[&str]) -> std::process::Child {
    modern_encoder(seconds, video, audio, &["-f", "flv", url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the modern ffmpeg")
}

#[test]
fn enhanced_rtmp_codecs_play_where_the_browser_can_and_the_page_says_why_not() {
    let (_server, rtmp, http) = ServerProcess::start_with_http(&[]);
    let mut encoders = [
        publish_modern(
            &format!("rtmp://{rtmp}/live/av1"),
            60,
            AV1_OPTIONS,
            &["-c:a", "libopus"],
        ),
        publish_modern(
            &format!("rtmp://{rtmp}/live/hevc"),
            60,
            HEVC_OPTIONS,
            &["-c:a", "aac"],
        ),
    ];
    let live = wait_for(Duration::from_secs(20), || {
        let streams = http_json(http, "/api/streams");
        streams["streams"]
            .as_array()
            .is_some_and(|s| s.iter().filter(|s| !s["video"].is_null()).count() == 2)
    });
    assert!(live, "both streams are live");
    let browser = Browser::start();
    for (name, codec) in [("av1", "av01"), ("hevc", "hvc1")] {
        browser.open(&format!("http://{http}/#watch/live/{name}"));
        let answered = browser.wait_for(
            Duration::from_secs(15),
            &format!(
                "const s = document.getElementById('watch-status').textContent; \
                 return s.includes('{codec}') && (s.startsWith('Playing') || s.includes('cannot play'))"
            ),
        );
        let status = browser.eval("return document.getElementById('watch-status').textContent");
        assert!(answered, "{name}: {status}");
        let playable = browser.eval(&format!(
            "return MediaSource.isTypeSupported('video/mp4; codecs=\"' + \
             document.getElementById('watch-status').textContent.match(/{codec}[^ ,]*/)[0] + '\"')"
        ));
        if playable == serde_json::Value::Bool(true) {
            let playing = browser.wait_for(
                Duration::from_secs(20),
                "return document.getElementById('video').currentTime > 2",
            );
            assert!(playing, "{name} plays: {status}");
            assert_eq!(
                browser.eval("return document.getElementById('video').error"),
                serde_json::Value::Null
            );
        } else {
            assert!(
                status.as_str().unwrap_or_default().contains("cannot play"),
                "{name}: the page says why: {status}"
            );
        }
    }
    let errors = page_errors(&browser);
    assert!(errors.is_empty(), "console errors: {errors:?}");
    for encoder in &mut encoders {
        let _ = encoder.kill();
        let _ = encoder.wait();
    }
}
