//! A live viewer's response, written on the connection `tiny_http` hands
//! over: the head, then the body as HTTP/1.1 chunks, one per batch of
//! pieces with the shared payloads written as they are (the crate's own
//! chunk encoder would copy each into its buffer), or for an HTTP/1.0
//! client plain bytes until the connection closes. The head says
//! `Connection: close`: the client closes the connection after the last
//! chunk (this side cannot, `tiny_http` keeps the socket). Refusals are
//! ordinary `tiny_http` responses.

use std::io::{self, Write};

use bytes::Bytes;
use tiny_http::{Header, Request, Response};

use crate::http::route::LiveFormat;

/// Headers every live response carries: never cached, and readable by
/// pages of other origins when `-http-cors` allows.
fn common_headers(cors: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![("Cache-Control", "no-cache, no-store".to_owned())];
    if let Some(origin) = cors {
        headers.push(("Access-Control-Allow-Origin", origin.to_owned()));
    }
    headers
}

/// Answers `request` with `status` and a JSON error `message`.
pub fn refuse(request: Request, status: u16, message: &str, cors: Option<&str>) {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::from_string(body).with_status_code(status);
    let mut headers = common_headers(cors);
    headers.push(("Content-Type", "application/json".to_owned()));
    for (name, value) in headers {
        if let Ok(header) = Header::from_bytes(name, value) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}

/// Answers a `HEAD`: `200` with the content type when the stream is
/// live, else `404`.
pub fn head(request: Request, live: bool, format: LiveFormat, cors: Option<&str>) {
    let content_type = match format {
        LiveFormat::Flv => "video/x-flv",
        LiveFormat::Mp4 => "video/mp4",
    };
    let mut response = Response::empty(if live { 200 } else { 404 });
    let mut headers = common_headers(cors);
    headers.push(("Content-Type", content_type.to_owned()));
    for (name, value) in headers {
        if let Ok(header) = Header::from_bytes(name, value) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}

/// The body of a live response being written.
pub struct LiveBody {
    writer: Box<dyn Write + Send>,
    chunked: bool,
}

impl LiveBody {
    /// Writes the head of a `200 OK` of `content_type` and returns the
    /// body's writer.
    pub fn start(request: Request, content_type: &str, cors: Option<&str>) -> io::Result<LiveBody> {
        let version = request.http_version().clone();
        let chunked = (version.0, version.1) >= (1, 1);
        let mut writer = request.into_writer();
        let mut head = if chunked {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n".to_owned()
        } else {
            "HTTP/1.0 200 OK\r\nConnection: close\r\n".to_owned()
        };
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
        for (name, value) in common_headers(cors) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.flush()?;
        Ok(LiveBody { writer, chunked })
    }

    /// Sends `pieces` (one chunk) and flushes them out.
    pub fn send(&mut self, pieces: &[Bytes]) -> io::Result<()> {
        let len: usize = pieces.iter().map(Bytes::len).sum();
        if len == 0 {
            return Ok(());
        }
        if self.chunked {
            self.writer.write_all(format!("{len:X}\r\n").as_bytes())?;
        }
        for piece in pieces {
            self.writer.write_all(piece)?;
        }
        if self.chunked {
            self.writer.write_all(b"\r\n")?;
        }
        self.writer.flush()
    }

    /// Ends the body: the last chunk (HTTP/1.1), or nothing more before
    /// the connection closes (HTTP/1.0).
    pub fn finish(mut self) -> io::Result<()> {
        if self.chunked {
            self.writer.write_all(b"0\r\n\r\n")?;
        }
        self.writer.flush()
    }
}
