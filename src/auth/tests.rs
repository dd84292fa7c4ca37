//! The authenticator's decisions in each mode.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn key(app: &str, name: &str) -> StreamKey {
    StreamKey::new(app, name).unwrap()
}

fn addr() -> SocketAddr {
    "192.0.2.7:50000".parse().unwrap()
}

fn token_mode(entries: &[&str], play: bool) -> Authenticator {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    Authenticator::new(AuthSettings {
        mode: AuthMode::Token(TokenMap::from_entries(&entries).unwrap()),
        play,
    })
}

fn request<'a>(action: Action, key: &'a StreamKey, connect_query: Option<&'a str>) -> Request<'a> {
    Request {
        action,
        key,
        connect_query,
        remote_addr: addr(),
    }
}

#[test]
fn token_mode_allows_the_right_token_from_the_name_or_the_connect_url() {
    let auth = token_mode(&["live/cam=s3cret"], true);
    let good = key("live", "cam?token=s3cret");
    assert_eq!(auth.check(&request(Action::Publish, &good, None)), Ok(()));
    let plain = key("live", "cam");
    assert_eq!(
        auth.check(&request(Action::Play, &plain, Some("token=s3cret"))),
        Ok(())
    );
    let in_app = key("live?token=s3cret", "cam");
    assert_eq!(auth.check(&request(Action::Publish, &in_app, None)), Ok(()));
    // The name's token wins over the connect URL's.
    let wrong = key("live", "cam?token=nope");
    assert_eq!(
        auth.check(&request(Action::Publish, &wrong, Some("token=s3cret"))),
        Err(Denial::WrongToken)
    );
    assert_eq!(
        auth.check(&request(Action::Publish, &plain, None)),
        Err(Denial::MissingToken)
    );
    let other = key("live", "dog?token=s3cret");
    assert_eq!(
        auth.check(&request(Action::Publish, &other, None)),
        Err(Denial::NoTokenForStream)
    );
}

#[test]
fn playback_can_be_left_open() {
    let open = token_mode(&["live/cam=s3cret"], false);
    assert!(open.guards(Action::Publish));
    assert!(!open.guards(Action::Play));
    let guarded = token_mode(&["live/cam=s3cret"], true);
    assert!(guarded.guards(Action::Play));
    assert!(!Authenticator::new(AuthSettings::default()).guards(Action::Publish));
}

#[test]
fn the_token_file_is_reloaded_and_a_bad_one_keeps_the_old_tokens() {
    let dir = std::env::temp_dir().join(format!("rtmp-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens.json");
    std::fs::write(&path, r#"{"live/cam": "one"}"#).unwrap();
    let auth = Authenticator::new(AuthSettings {
        mode: AuthMode::File {
            path: path.clone(),
            tokens: read_token_file(&path).unwrap(),
        },
        play: true,
    });
    let one = key("live", "cam?token=one");
    let two = key("live", "cam?token=two");
    assert_eq!(auth.check(&request(Action::Publish, &one, None)), Ok(()));
    std::fs::write(&path, r#"{"live/cam": "two"}"#).unwrap();
    assert_eq!(auth.reload().unwrap(), Some(1));
    assert_eq!(auth.check(&request(Action::Publish, &two, None)), Ok(()));
    assert!(auth.check(&request(Action::Publish, &one, None)).is_err());
    std::fs::write(&path, "{broken").unwrap();
    assert!(matches!(auth.reload(), Err(ReloadError::Tokens(_))));
    let two_again = key("live", "cam?token=two");
    assert_eq!(auth.check(&request(Action::Play, &two_again, None)), Ok(()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A one-request HTTP server answering `status` (after `delay`); returns
/// its URL and a receiver of the body it got.
fn callback_server(
    status: u16,
    delay: Duration,
) -> (String, crossbeam_channel::Receiver<serde_json::Value>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/auth", server.server_addr().to_ip().unwrap());
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        if let Ok(mut request) = server.recv() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            tx.send(serde_json::from_str(&body).unwrap()).unwrap();
            std::thread::sleep(delay);
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    (url, rx)
}

fn callback_mode(url: String, timeout: Duration) -> Authenticator {
    Authenticator::new(AuthSettings {
        mode: AuthMode::Callback { url, timeout },
        play: true,
    })
}

#[test]
fn the_callback_is_asked_and_a_2xx_allows() {
    let (url, asked) = callback_server(204, Duration::ZERO);
    let auth = callback_mode(url, Duration::from_secs(5));
    let cam = key("live", "cam?token=s3cret&x=1");
    assert_eq!(auth.check(&request(Action::Play, &cam, None)), Ok(()));
    let body = asked.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "action": "play",
            "app": "live",
            "name": "cam",
            "stream_key": "live/cam",
            "token": "s3cret",
            "remote_addr": "192.0.2.7:50000",
        })
    );
}

#[test]
fn the_callback_denies_with_another_status_a_timeout_or_no_answer() {
    let (url, _asked) = callback_server(403, Duration::ZERO);
    let auth = callback_mode(url, Duration::from_secs(5));
    let cam = key("live", "cam");
    assert_eq!(
        auth.check(&request(Action::Publish, &cam, None)),
        Err(Denial::CallbackRefused(403))
    );
    let (url, _asked) = callback_server(200, Duration::from_secs(3));
    let auth = callback_mode(url, Duration::from_millis(300));
    assert_eq!(
        auth.check(&request(Action::Publish, &cam, None)),
        Err(Denial::CallbackTimedOut)
    );
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/auth", closed.local_addr().unwrap());
    drop(closed);
    let auth = callback_mode(url, Duration::from_secs(5));
    assert!(matches!(
        auth.check(&request(Action::Publish, &cam, None)),
        Err(Denial::CallbackFailed(_))
    ));
}
