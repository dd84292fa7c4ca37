//! The HTTP endpoint, served by one `tiny_http` thread when
//! `-metrics-addr` is given: the dashboard at `/`, `/debug/vars` (Go
//! expvar), `/metrics` (Prometheus), `/api/streams`, `/api/history`,
//! `/api/recordings`, `/api/server`, `/healthz`, and the writes
//! `DELETE /api/clients/{id}` and `POST /api/streams/{app}/{name}/switch`
//! (only with the API token, which also guards every read but `/healthz`
//! with `-api-read-auth`). Live streams (`/{app}/{name}.flv`,
//! `/live/{app}/{name}.mp4`) are handed to a thread per viewer. The same
//! thread takes each stream's bitrate reading once a second.

mod json;
mod live;
mod page;
mod prometheus;
mod route;
mod snapshot;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tiny_http::{Header, Request, Response};

use crate::config::ApiToken;
use crate::hub::stream_key;
use crate::server::ServerHandle;
use route::{Route, route};
use snapshot::Snapshot;

/// Items per page when the caller asks for a page without a size.
const DEFAULT_PER_PAGE: usize = 50;
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Pending connections the kernel may queue before `accept`.
const LISTEN_BACKLOG: i32 = 256;

/// Binds the endpoint's listener. Its send timeout passes to every
/// connection it accepts (as Linux does): a client that takes nothing for
/// `write_timeout` is dropped instead of holding a thread. (A receive
/// timeout would pass on too, but it would also end `accept`.)
fn listen(addr: SocketAddr, write_timeout: Duration) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_write_timeout(Some(write_timeout))?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Starts the endpoint on `addr`; binding failures are returned, so that
/// the server can refuse to start.
pub fn spawn(
    addr: SocketAddr,
    server: ServerHandle,
    access: ApiAccess,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let config = &server.shared().config;
    let listener = listen(addr, config.write_timeout)?;
    let http = serve_on(&listener)?;
    let local = http.server_addr().to_ip().unwrap_or(addr);
    if !local.ip().is_loopback() && !access.guard_reads {
        log::warn!(
            "metrics endpoint on {local} has no authentication for reads \
             (-api-read-auth true guards them with the API token)"
        );
    }
    log::info!("metrics and status on http://{local}");
    let cors = config.http_cors.as_deref().map(Arc::from);
    let endpoint = Endpoint {
        server,
        token: access.token,
        guard_reads: access.guard_reads,
        cors,
    };
    let thread = thread::Builder::new()
        .name("http".into())
        .stack_size(256 * 1024)
        .spawn(move || endpoint.run(&listener, http))?;
    Ok((local, thread))
}

/// A `tiny_http` server accepting on (a handle of) `listener`.
fn serve_on(listener: &TcpListener) -> io::Result<tiny_http::Server> {
    tiny_http::Server::from_listener(listener.try_clone()?, None)
        .map_err(|e| io::Error::other(e.to_string()))
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
    /// `Access-Control-Allow-Origin` of live streams (`-http-cors`).
    cors: Option<Arc<str>>,
}

impl Endpoint {
    /// Serves requests. `tiny_http` stops accepting at the first failed
    /// `accept` (out of descriptors, say), which `recv` reports: then a
    /// new server accepts on the same listener.
    fn run(&self, listener: &TcpListener, mut http: tiny_http::Server) {
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
                    log::warn!("HTTP endpoint: accepting failed ({e}); accepting again");
                    thread::sleep(Duration::from_millis(100));
                    match serve_on(listener) {
                        Ok(new) => http = new,
                        Err(e) => log::warn!("HTTP endpoint: cannot accept again yet: {e}"),
                    }
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
                | Route::Page
                | Route::Live(_)
                | Route::Kick(_)
                | Route::Reconnect
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
            Route::Page => {
                return respond(request, 200, "text/html; charset=utf-8", page::HTML.into());
            }
            Route::Live(live) => {
                return live::open(self.server.shared(), request, live, self.cors.clone());
            }
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
                            &snapshot.tls,
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
                        &self.server.tls_connections(),
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
            Route::Reconnect => match self.authorize(&request) {
                Err((status, why)) => (status, json::error(why)),
                Ok(()) => {
                    let asked = self.server.request_reconnect();
                    (200, serde_json::json!({ "asked": asked }))
                }
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
