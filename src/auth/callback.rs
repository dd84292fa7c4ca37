//! `-auth-callback URL`: asks another program whether a publish or play
//! may go ahead. POSTs `{action, app, name, stream_key, token,
//! remote_addr}` as JSON; a 2xx answer allows, anything else, a failure
//! to connect or no answer within the timeout denies.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

/// The question sent to the callback. `stream_key` is `app/name`, the
/// token separate (the callback is the one place it goes).
pub struct CallbackQuestion<'a> {
    pub action: &'static str,
    pub app: &'a str,
    pub name: &'a str,
    pub token: Option<&'a str>,
    pub remote_addr: SocketAddr,
}

/// What the callback said, or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAnswer {
    Allowed,
    /// A non-2xx status.
    Refused(u16),
    TimedOut,
    /// It could not be asked (connection refused, bad answer...).
    Failed(String),
}

/// The callback's address and its HTTP client.
pub struct Callback {
    url: String,
    agent: ureq::Agent,
}

impl Callback {
    pub fn new(url: String, timeout: Duration) -> Callback {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Callback { url, agent }
    }

    /// Asks; blocks the calling connection's thread for at most the
    /// timeout.
    pub fn ask(&self, question: &CallbackQuestion<'_>) -> CallbackAnswer {
        let body = json!({
            "action": question.action,
            "app": question.app,
            "name": question.name,
            "stream_key": format!("{}/{}", question.app, question.name),
            "token": question.token.unwrap_or_default(),
            "remote_addr": question.remote_addr.to_string(),
        })
        .to_string();
        let sent = self
            .agent
            .post(&self.url)
            .content_type("application/json")
            .send(body.as_str());
        match sent {
            Ok(response) if response.status().is_success() => CallbackAnswer::Allowed,
            Ok(response) => CallbackAnswer::Refused(response.status().as_u16()),
            Err(ureq::Error::Timeout(_)) => CallbackAnswer::TimedOut,
            Err(e) => CallbackAnswer::Failed(describe(&e)),
        }
    }
}

/// An `http(s)://` URL as logs and errors show it: scheme, host, port and
/// path, without user information or query (either may hold
/// credentials).
pub fn shown_url(url: &str) -> String {
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => {
            let scheme = uri.scheme_str().unwrap_or("?");
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}{}", uri.path())
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// A failure as logs may show it: its kind, never the URL (which may hold
/// credentials).
pub fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => format!("{:?}", e.kind()),
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS failed".into(),
        _ => "request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_credentials() {
        assert_eq!(
            shown_url("https://user:pw@hooks.example:8443/a/b?key=s3cret"),
            "https://hooks.example:8443/a/b"
        );
        assert_eq!(shown_url("http://h/x"), "http://h/x");
        assert_eq!(shown_url("not a url at all"), "(not a URL)");
    }
}
