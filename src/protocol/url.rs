//! `rtmp://host[:port]/app[/instance]/name[?query]` URLs, as encoders and
//! services write them: the host an IPv4 address, an IPv6 address in
//! brackets or a DNS name (resolved when connecting); the port 1935 unless
//! given; the application everything up to the last path segment, the
//! stream name that segment with its query (services such as YouTube put
//! their stream key there, and it must arrive intact). A URL with no stream
//! name (`rtmp://host/live?token=x`) keeps its query with the application.
//! Shown (`Display`, `Debug`) without any query and with the stream name cut
//! to its first three characters (`abc***`): for a service the name is the
//! stream key, a secret.

use std::fmt;

/// Why a string is not a usable RTMP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not `rtmp://...` nor `rtmps://...`.
    Scheme(String),
    MissingHost,
    /// Not a host name or address (an IPv6 address needs brackets).
    BadHost,
    BadPort(String),
    /// No application after the host.
    MissingApp,
    /// `user:password@` before the host: RTMP has no place for them.
    Credentials,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Scheme(scheme) if scheme.is_empty() => {
                write!(f, "not a URL: want rtmp://host[:port]/app")
            }
            UrlError::Scheme(scheme) => {
                write!(f, "unsupported scheme {scheme:?}: want rtmp:// or rtmps://")
            }
            UrlError::MissingHost => write!(f, "no host in the URL"),
            UrlError::BadHost => write!(
                f,
                "bad host: want a name, an IPv4 address or [an IPv6 address]"
            ),
            UrlError::BadPort(port) => write!(f, "bad port {port:?}"),
            UrlError::MissingApp => write!(f, "no application in the URL (rtmp://host/app/name)"),
            UrlError::Credentials => {
                write!(f, "user and password in an RTMP URL are not supported")
            }
        }
    }
}

impl std::error::Error for UrlError {}

/// A parsed `rtmp://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: RTMP over TLS.
    pub tls: bool,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    /// Whether the URL said the port (it is then kept in the tcUrl).
    explicit_port: bool,
    /// `app` or `app/instance`.
    pub app: String,
    /// The query when it follows the application (no stream name).
    pub app_query: Option<String>,
    /// The stream name with its `?query`, if the URL has one.
    pub name: Option<String>,
}

pub const DEFAULT_PORT: u16 = 1935;
/// The port of `rtmps://` without one (as ffmpeg and the services use).
pub const DEFAULT_TLS_PORT: u16 = 443;

impl RtmpUrl {
    pub fn parse(url: &str) -> Result<RtmpUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            // Without a scheme nothing is repeated: it may be a stream key.
            .ok_or(UrlError::Scheme(String::new()))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => false,
            "rtmps" => true,
            other => return Err(UrlError::Scheme(other.to_owned())),
        };
        // The authority ends at the path or, without one, at the query.
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = path.strip_prefix('/').unwrap_or(path);
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path, None),
        };
        let path = path.trim_matches('/');
        if path.is_empty() {
            return Err(UrlError::MissingApp);
        }
        let (app, name, app_query) = match path.rsplit_once('/') {
            Some((app, name)) => {
                let name = match &query {
                    Some(query) => format!("{name}?{query}"),
                    None => name.to_owned(),
                };
                (app.trim_end_matches('/').to_owned(), Some(name), None)
            }
            None => (path.to_owned(), None, query),
        };
        Ok(RtmpUrl {
            tls,
            host: host.to_owned(),
            port: port.unwrap_or(if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT }),
            explicit_port: port.is_some(),
            app,
            app_query,
            name,
        })
    }

    /// The `app` property of `connect`: the application, with the query
    /// that followed it.
    pub fn connect_app(&self) -> String {
        match &self.app_query {
            Some(query) => format!("{}?{query}", self.app),
            None => self.app.clone(),
        }
    }

    /// The URL without the stream name, as `connect`'s `tcUrl`.
    pub fn tc_url(&self) -> String {
        format!(
            "{}://{}/{}",
            self.scheme(),
            self.authority(),
            self.connect_app()
        )
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls { "rtmps" } else { "rtmp" }
    }

    fn default_port(&self) -> u16 {
        if self.tls {
            DEFAULT_TLS_PORT
        } else {
            DEFAULT_PORT
        }
    }

    /// `host:port` for connecting (IPv6 in brackets).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port || self.port != self.default_port() {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }

    /// The whole URL but its query (the API shows a pulled source so):
    /// `rtmp://host[:port]/app/name`.
    pub fn without_query(&self) -> String {
        let mut shown = format!("{}://{}/{}", self.scheme(), self.authority(), self.app);
        if let Some(name) = &self.name {
            shown.push('/');
            shown.push_str(name.split('?').next().unwrap_or_default());
        }
        shown
    }

    /// The same URL with another stream name (`app/<name>` on the same
    /// server).
    pub fn with_name(&self, name: &str) -> RtmpUrl {
        RtmpUrl {
            name: Some(name.to_owned()),
            ..self.clone()
        }
    }
}

impl fmt::Display for RtmpUrl {
    /// `rtmp://host[:port]/app/abc***`: no query, the name cut short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme(), self.authority(), self.app)?;
        if let Some(name) = &self.name {
            let name = name.split('?').next().unwrap_or_default();
            write!(f, "/{}", redact_name(name))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtmpUrl({self})")
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::BadHost)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost);
        }
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(UrlError::BadPort(after.to_owned())),
        }
    } else {
        if authority.matches(':').count() > 1 {
            return Err(UrlError::BadHost);
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if !host.chars().all(name_char) {
            // `::1` without brackets, `]`, spaces...
            return Err(UrlError::BadHost);
        }
        (host, port)
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(UrlError::BadPort(p.to_owned())),
        })
        .transpose()?;
    Ok((host, port))
}

/// A stream name as logs may show it: its first three characters.
pub fn redact_name(name: &str) -> String {
    let shown: String = name.chars().take(3).collect();
    if name.chars().count() > 3 {
        format!("{shown}***")
    } else {
        "***".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_name_and_the_query_with_the_name() {
        let url = RtmpUrl::parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh?backup=1").unwrap();
        assert_eq!(url.host, "a.rtmp.youtube.com");
        assert_eq!(url.port, 1935);
        assert_eq!(url.app, "live2");
        assert_eq!(url.name.as_deref(), Some("abcd-efgh?backup=1"));
        assert_eq!(url.tc_url(), "rtmp://a.rtmp.youtube.com/live2");
        assert_eq!(url.to_string(), "rtmp://a.rtmp.youtube.com/live2/abc***");
        assert!(!format!("{url:?}").contains("efgh"), "the key is not shown");
    }

    #[test]
    fn instances_ports_and_ipv6() {
        let url = RtmpUrl::parse("rtmp://192.168.1.20:1936/app/inst/cam").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("192.168.1.20", 1936));
        assert_eq!(
            (url.app.as_str(), url.name.as_deref()),
            ("app/inst", Some("cam"))
        );
        assert_eq!(url.tc_url(), "rtmp://192.168.1.20:1936/app/inst");
        let v6 = RtmpUrl::parse("rtmp://[::1]:19350/live/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 19350));
        assert_eq!(v6.authority(), "[::1]:19350");
        let bare = RtmpUrl::parse("rtmp://[fe80::1]/live/x").unwrap();
        assert_eq!(
            (bare.port, bare.authority()),
            (1935, "[fe80::1]".to_owned())
        );
    }

    #[test]
    fn a_query_without_a_name_stays_with_the_app() {
        let url = RtmpUrl::parse("rtmp://host/live?token=secret").unwrap();
        assert_eq!(url.app, "live");
        assert_eq!(url.name, None);
        assert_eq!(url.connect_app(), "live?token=secret");
        assert_eq!(url.tc_url(), "rtmp://host/live?token=secret");
        assert_eq!(url.to_string(), "rtmp://host/live", "no query shown");
        assert_eq!(
            url.with_name("camera").to_string(),
            "rtmp://host/live/cam***"
        );
        let trailing = RtmpUrl::parse("rtmp://host/live/").unwrap();
        assert_eq!((trailing.app.as_str(), trailing.name), ("live", None));
    }

    #[test]
    fn rtmps_urls_default_to_port_443_and_keep_their_scheme() {
        let url = RtmpUrl::parse("rtmps://live-api-s.facebook.com/rtmp/KEY?s=1").unwrap();
        assert!(url.tls);
        assert_eq!(url.port, 443);
        assert_eq!(url.tc_url(), "rtmps://live-api-s.facebook.com/rtmp");
        assert_eq!(url.to_string(), "rtmps://live-api-s.facebook.com/rtmp/***");
        let own = RtmpUrl::parse("RTMPS://host:1936/live/cam").unwrap();
        assert_eq!((own.tls, own.port), (true, 1936));
        assert_eq!(own.without_query(), "rtmps://host:1936/live/cam");
        assert!(!RtmpUrl::parse("rtmp://host/live/cam").unwrap().tls);
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, error) in [
            ("http://host/live/x", UrlError::Scheme("http".into())),
            ("rtmp:///live/x", UrlError::MissingHost),
            ("rtmp://host", UrlError::MissingApp),
            ("rtmp://host/", UrlError::MissingApp),
            ("rtmp://host:http/live", UrlError::BadPort("http".into())),
            ("rtmp://host:0/live", UrlError::BadPort("0".into())),
            ("rtmp://host:70000/live", UrlError::BadPort("70000".into())),
            ("rtmp://user:pw@host/live", UrlError::Credentials),
            ("rtmp://::1/live/x", UrlError::BadHost),
            ("rtmp://]/live/x", UrlError::BadHost),
            ("rtmp://[nonsense]/live/x", UrlError::BadHost),
            ("rtmp://[::1/live/x", UrlError::BadHost),
            ("rtmp://h:+1/live", UrlError::BadPort("+1".into())),
            ("rtmp://host:1935?token=secret", UrlError::MissingApp),
            // Nothing of a value without a scheme is repeated.
            ("host/live", UrlError::Scheme(String::new())),
        ] {
            assert_eq!(RtmpUrl::parse(url), Err(error), "{url}");
        }
    }
}
