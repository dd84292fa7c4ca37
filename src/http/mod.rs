//! The HTTP metrics and status endpoint, served by one `tiny_http` thread
//! when `-metrics-addr` is given: `/debug/vars` (Go expvar), `/metrics`
//! (Prometheus), `/api/streams`, `/api/history`, `/api/recordings`,
//! `/api/server`, `/healthz`,
//! and `DELETE /api/clients/{id}` (only with the API token, which also
//! guards every read but `/healthz` with `-api-read-auth`). The same thread
//! takes each stream's bitrate reading once a second.

mod json;
mod prometheus;
mod snapshot;

use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response};

use crate::config::ApiToken;
use crate::hub::stream_key;
use crate::server::ServerHandle;
use snapshot::Snapshot;

/// Items per page when the caller asks for a page without a size.
const DEFAULT_PER_PAGE: usize = 50;
const MAX_PER_PAGE: usize = 1000;
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    DebugVars,
    Metrics,
    Streams,
    Stream(String),
    History,
    Recordings,
    Server,
    Healthz,
    Kick(Option<u64>),
    /// Force an input of a `-source` stream (`None`: no valid choice).
    Switch(String, Option<Option<usize>>),
    MethodNotAllowed,
    NotFound,
}

/// Paging asked for in the query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Paging {
    page: Option<usize>,
    per_page: Option<usize>,
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

fn route(method: &Method, url: &str) -> (Route, Paging) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path.trim_end_matches('/');
    let get = *method == Method::Get || *method == Method::Head;
    let read = |route: Route| if get { route } else { Route::MethodNotAllowed };
    let route = match path {
        "/debug/vars" => read(Route::DebugVars),
        "/metrics" => read(Route::Metrics),
        "/api/streams" => read(Route::Streams),
        "/api/history" => read(Route::History),
        "/api/recordings" => read(Route::Recordings),
        "/api/server" => read(Route::Server),
        "/healthz" => read(Route::Healthz),
        _ => {
            let stream = path
                .strip_prefix("/api/streams/")
                .filter(|k| k.contains('/'));
            let switch = stream.and_then(|k| k.strip_suffix("/switch"));
            if let Some(key) = switch.filter(|_| *method == Method::Post) {
                Route::Switch(key.to_owned(), switch_choice(query))
            } else if let Some(key) = stream {
                read(Route::Stream(key.to_owned()))
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
    };
    (route, parse_query(query))
}

/// Starts the endpoint on `addr`; binding failures are returned, so that
/// the server can refuse to start.
pub fn spawn(
    addr: SocketAddr,
    server: ServerHandle,
    access: ApiAccess,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let http = tiny_http::Server::http(addr).map_err(|e| io::Error::other(e.to_string()))?;
    let local = http.server_addr().to_ip().unwrap_or(addr);
    if !local.ip().is_loopback() && !access.guard_reads {
        log::warn!(
            "metrics endpoint on {local} has no authentication for reads \
             (-api-read-auth true guards them with the API token)"
        );
    }
    log::info!("metrics and status on http://{local}");
    let endpoint = Endpoint {
        server,
        token: access.token,
        guard_reads: access.guard_reads,
    };
    let thread = thread::Builder::new()
        .name("http".into())
        .stack_size(256 * 1024)
        .spawn(move || endpoint.run(&http))?;
    Ok((local, thread))
}

/// Who may use the API.
#[derive(Debug, Clone, Default)]
pub struct ApiAccess {
    /// The bearer token that allows writes.
    pub token: Option<ApiToken>,
    /// Reads need the token too (`-api-read-auth`).
    pub guard_reads: bool,
}

struct Endpoint {
    server: ServerHandle,
    token: Option<ApiToken>,
    guard_reads: bool,
}

impl Endpoint {
    fn run(&self, http: &tiny_http::Server) {
        let mut last_sample = Instant::now() - SAMPLE_INTERVAL;
        loop {
            if last_sample.elapsed() >= SAMPLE_INTERVAL {
                last_sample = Instant::now();
                for stream in self.server.registry().streams() {
                    stream.sample_bitrates(last_sample);
                }
            }
            match http.recv_timeout(SAMPLE_INTERVAL.saturating_sub(last_sample.elapsed())) {
                Ok(Some(request)) => self.respond(request),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("metrics endpoint: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Whether a write request may go ahead; if not, the status and the
    /// reason to answer with (which says what is missing, never the token).
    fn authorize(&self, request: &Request) -> Result<(), (u16, &'static str)> {
        let Some(token) = &self.token else {
            return Err((
                403,
                "forbidden: API writes are off; start the server with -api-token, \
                 -api-token-file or RTMP_API_TOKEN",
            ));
        };
        let presented = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .and_then(|h| h.value.as_str().strip_prefix("Bearer "));
        match presented {
            None => Err((
                401,
                "unauthorized: send the API token as Authorization: Bearer TOKEN",
            )),
            Some(presented) if token.matches(presented.trim()) => Ok(()),
            Some(_) => Err((403, "forbidden: wrong API token")),
        }
    }

    fn listen_addrs(&self) -> Vec<SocketAddr> {
        vec![self.server.listen_addr()]
    }

    fn respond(&self, request: Request) {
        let (route, paging) = route(request.method(), request.url());
        let per_page = paging.per_page.unwrap_or(DEFAULT_PER_PAGE);
        let guarded = !matches!(
            route,
            Route::Healthz
                | Route::Kick(_)
                | Route::Switch(..)
                | Route::MethodNotAllowed
                | Route::NotFound
        );
        if guarded
            && self.guard_reads
            && let Err((status, why)) = self.authorize(&request)
        {
            let text = json::error(why).to_string();
            return respond(request, status, "application/json", text);
        }
        let (status, body) = match route {
            Route::Metrics => {
                let text = prometheus::render(&Snapshot::take(&self.server, self.listen_addrs()));
                return respond(request, 200, PROMETHEUS_TYPE, text);
            }
            Route::Healthz => {
                let (status, text) = if self.server.is_shutting_down() {
                    (503, "shutting down")
                } else {
                    (200, "ok")
                };
                return respond(request, status, "text/plain; charset=utf-8", text.into());
            }
            Route::DebugVars => (
                200,
                json::expvar(&Snapshot::take(&self.server, self.listen_addrs())),
            ),
            Route::Server => (
                200,
                json::server(&Snapshot::take(&self.server, self.listen_addrs())),
            ),
            Route::Streams => {
                let snapshot = Snapshot::take(&self.server, self.listen_addrs());
                let items = snapshot
                    .streams
                    .iter()
                    .map(|s| {
                        json::stream(
                            s,
                            &snapshot.relays,
                            snapshot.recording(&s.key),
                            snapshot.source(&s.key),
                        )
                    })
                    .collect();
                (200, json::paged(items, paging.page, per_page, "streams"))
            }
            Route::Stream(key) => match self.server.registry().get(&key) {
                Some(stream) => (
                    200,
                    json::stream(
                        &stream.status(),
                        &self.server.relays(),
                        self.server.recording(&key),
                        self.server.source(&key).as_ref(),
                    ),
                ),
                None => (404, json::error("no such stream")),
            },
            Route::Recordings => {
                let items = self
                    .server
                    .recordings()
                    .iter()
                    .map(json::recording)
                    .collect();
                (200, json::paged(items, paging.page, per_page, "recordings"))
            }
            Route::History => {
                let items = snapshot::history(&self.server)
                    .iter()
                    .map(json::history_entry)
                    .collect();
                (200, json::paged(items, paging.page, per_page, "sessions"))
            }
            Route::Kick(id) => match self.authorize(&request) {
                Err((status, why)) => (status, json::error(why)),
                Ok(()) => match id {
                    Some(id) if self.server.kick(id) => {
                        log::info!("conn#{id} kicked through the API");
                        (200, serde_json::json!({ "kicked": id }))
                    }
                    _ => (404, json::error("no such client")),
                },
            },
            Route::Switch(key, choice) => match self.authorize(&request) {
                Err((status, why)) => (status, json::error(why)),
                Ok(()) => self.switch(&key, choice),
            },
            Route::MethodNotAllowed => (405, json::error("method not allowed")),
            Route::NotFound => (404, json::error("not found")),
        };
        let text = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
        respond(request, status, "application/json", text);
    }
}

impl Endpoint {
    /// Forces an input of a `-source` stream, or clears the override.
    fn switch(&self, key: &str, choice: Option<Option<usize>>) -> (u16, serde_json::Value) {
        let Some(input) = choice else {
            return (
                400,
                json::error("want ?input=N (a priority, 0 first) or ?input=auto"),
            );
        };
        match self.server.switch_input(key, input) {
            Ok(()) => {
                log::info!(
                    "{}: input {} asked for through the API",
                    stream_key::log_path(key),
                    input.map_or("auto".to_owned(), |n| n.to_string())
                );
                (
                    200,
                    serde_json::json!({ "stream": key, "override_input": input }),
                )
            }
            Err(e) => (e.http_status(), json::error(&e.to_string())),
        }
    }
}

fn respond(request: Request, status: u16, content_type: &str, body: String) {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(header) = Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(header);
    }
    if status == 401
        && let Ok(header) = Header::from_bytes("WWW-Authenticate", "Bearer")
    {
        response = response.with_header(header);
    }
    let _ = request.respond(response);
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
