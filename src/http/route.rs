//! What an HTTP request asks for: the JSON API's documents and actions,
//! the dashboard page, and a live stream as HTTP-FLV (`/{app}/{name}.flv`)
//! or fragmented MP4 (`/live/{app}/{name}.mp4`). Plain parsing of the
//! method and URL, no IO.

use percent_encoding::percent_decode_str;
use tiny_http::Method;

/// Items per page at most.
pub const MAX_PER_PAGE: usize = 1000;

/// How a live stream is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveFormat {
    Flv,
    Mp4,
}

impl LiveFormat {
    /// The protocol name the API shows for its viewers.
    pub fn protocol(self) -> &'static str {
        match self {
            LiveFormat::Flv => "http-flv",
            LiveFormat::Mp4 => "http-mp4",
        }
    }
}

/// A live stream asked for: its app and name (percent-decoded) and the
/// URL's query (which may hold a play token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRequest {
    pub app: String,
    pub name: String,
    pub query: Option<String>,
    pub format: LiveFormat,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The dashboard.
    Page,
    DebugVars,
    Metrics,
    Streams,
    Stream(String),
    History,
    Recordings,
    Server,
    Healthz,
    Kick(Option<u64>),
    /// Ask Enhanced RTMP clients to reconnect.
    Reconnect,
    /// Force an input of a `-source` stream (`None`: no valid choice).
    Switch(String, Option<Option<usize>>),
    Live(LiveRequest),
    MethodNotAllowed,
    NotFound,
}

/// Paging asked for in the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paging {
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

fn parse_query(query: &str) -> Paging {
    let mut paging = Paging::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = value.parse::<usize>().ok().filter(|n| *n > 0);
        match key {
            "page" => paging.page = number,
            "per_page" | "limit" => paging.per_page = number.map(|n| n.min(MAX_PER_PAGE)),
            _ => {}
        }
    }
    if paging.page.is_none() && paging.per_page.is_some() {
        paging.page = Some(1);
    }
    paging
}

/// `input=N` (`Some(Some(N))`) or `input=auto` (`Some(None)`); `None`
/// if neither.
fn switch_choice(query: &str) -> Option<Option<usize>> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("input="))?;
    match value {
        "auto" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// `app/name.ext` split at the first slash, the extension cut off and
/// both parts percent-decoded; `None` if it is not of that shape.
fn live_key(path: &str, extension: &str, query: &str, format: LiveFormat) -> Option<LiveRequest> {
    let stem = path.strip_suffix(extension)?;
    let (app, name) = stem.split_once('/')?;
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let (app, name) = (decode(app)?, decode(name)?);
    if app.is_empty() || name.is_empty() {
        return None;
    }
    Some(LiveRequest {
        app,
        name,
        query: (!query.is_empty()).then(|| query.to_owned()),
        format,
    })
}

/// The route of a request, and the paging its query asks for.
pub fn route(method: &Method, url: &str) -> (Route, Paging) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let get = *method == Method::Get || *method == Method::Head;
    let read = |route: Route| if get { route } else { Route::MethodNotAllowed };
    if path == "/" || path == "/index.html" {
        return (read(Route::Page), Paging::default());
    }
    let path = path.trim_end_matches('/');
    let route = match path {
        "/debug/vars" => read(Route::DebugVars),
        "/metrics" => read(Route::Metrics),
        "/api/streams" => read(Route::Streams),
        "/api/history" => read(Route::History),
        "/api/recordings" => read(Route::Recordings),
        "/api/server" => read(Route::Server),
        "/healthz" => read(Route::Healthz),
        "/api/reconnect" if *method == Method::Post => Route::Reconnect,
        "/api/reconnect" => Route::MethodNotAllowed,
        _ if path.starts_with("/api/") => api_item(method, path, query),
        _ => {
            let rest = path.strip_prefix('/').unwrap_or(path);
            let mp4 = rest
                .strip_prefix("live/")
                .and_then(|p| live_key(p, ".mp4", query, LiveFormat::Mp4));
            match mp4.or_else(|| live_key(rest, ".flv", query, LiveFormat::Flv)) {
                Some(live) => read(Route::Live(live)),
                None => Route::NotFound,
            }
        }
    };
    (route, parse_query(query))
}

/// `/api/streams/{app}/{name}[/switch]` and `/api/clients/{id}`.
fn api_item(method: &Method, path: &str, query: &str) -> Route {
    let get = *method == Method::Get || *method == Method::Head;
    let stream = path
        .strip_prefix("/api/streams/")
        .filter(|k| k.contains('/'));
    let switch = stream.and_then(|k| k.strip_suffix("/switch"));
    if let Some(key) = switch.filter(|_| *method == Method::Post) {
        Route::Switch(key.to_owned(), switch_choice(query))
    } else if let Some(key) = stream {
        if get {
            Route::Stream(key.to_owned())
        } else {
            Route::MethodNotAllowed
        }
    } else if let Some(id) = path.strip_prefix("/api/clients/") {
        if *method == Method::Delete {
            Route::Kick(id.parse().ok())
        } else {
            Route::MethodNotAllowed
        }
    } else {
        Route::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = Method::Get;
        assert_eq!(route(&get, "/debug/vars").0, Route::DebugVars);
        assert_eq!(route(&get, "/metrics").0, Route::Metrics);
        assert_eq!(route(&get, "/api/streams/").0, Route::Streams);
        assert_eq!(
            route(&get, "/api/streams/live/cam").0,
            Route::Stream("live/cam".into())
        );
        assert_eq!(route(&get, "/api/streams/live").0, Route::NotFound);
        assert_eq!(route(&get, "/api/history?page=2").1.page, Some(2));
        assert_eq!(route(&Method::Post, "/metrics").0, Route::MethodNotAllowed);
        assert_eq!(
            route(&Method::Delete, "/api/clients/7").0,
            Route::Kick(Some(7))
        );
        assert_eq!(
            route(&Method::Delete, "/api/clients/x").0,
            Route::Kick(None)
        );
        assert_eq!(route(&get, "/api/clients/7").0, Route::MethodNotAllowed);
        assert_eq!(route(&get, "/nope").0, Route::NotFound);
        assert_eq!(route(&get, "/").0, Route::Page);
        assert_eq!(route(&get, "/?x=1").0, Route::Page);
        assert_eq!(route(&Method::Post, "/").0, Route::MethodNotAllowed);
        assert_eq!(route(&Method::Post, "/api/reconnect").0, Route::Reconnect);
        assert_eq!(route(&get, "/api/reconnect").0, Route::MethodNotAllowed);
    }

    #[test]
    fn live_streams() {
        let get = Method::Get;
        let live = |url: &str| match route(&get, url).0 {
            Route::Live(l) => Some((l.app, l.name, l.query, l.format)),
            _ => None,
        };
        assert_eq!(
            live("/live/cam.flv"),
            Some(("live".into(), "cam".into(), None, LiveFormat::Flv))
        );
        assert_eq!(
            live("/live/live/cam.mp4?token=s"),
            Some((
                "live".into(),
                "cam".into(),
                Some("token=s".into()),
                LiveFormat::Mp4
            ))
        );
        assert_eq!(
            live("/live/my%20cam.flv"),
            Some(("live".into(), "my cam".into(), None, LiveFormat::Flv))
        );
        // A name with a slash keeps it; the app is the first segment.
        assert_eq!(
            live("/tv/a/b.flv").map(|l| (l.0, l.1)),
            Some(("tv".into(), "a/b".into()))
        );
        assert_eq!(live("/cam.flv"), None);
        assert_eq!(live("/live/.flv"), None);
        assert_eq!(live("/live/cam.mp4"), None, "MP4 is under /live/");
        assert_eq!(live("/live/%ff.flv"), None, "not UTF-8");
        assert_eq!(
            route(&Method::Post, "/live/cam.flv").0,
            Route::MethodNotAllowed
        );
    }

    #[test]
    fn paging_defaults_to_everything() {
        assert_eq!(parse_query(""), Paging::default());
        assert_eq!(
            parse_query("per_page=5"),
            Paging {
                page: Some(1),
                per_page: Some(5)
            }
        );
        assert_eq!(
            parse_query("page=0&per_page=999999").per_page,
            Some(MAX_PER_PAGE)
        );
    }
}
