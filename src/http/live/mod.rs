//! Live streams over HTTP: each viewer an output of its stream, on its own
//! thread.

pub mod feed;
mod response;
mod viewer;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tiny_http::Request;

use super::route::LiveRequest;
use crate::metrics;
use crate::server::Shared;
use viewer::Viewer;

/// Serves `request` for a live stream: admitted as a connection (or
/// refused past `-max-connections`), on a thread of its own from there,
/// so that the HTTP thread never waits on a viewer.
pub fn open(shared: &Arc<Shared>, request: Request, live: LiveRequest, cors: Option<Arc<str>>) {
    let peer = request
        .remote_addr()
        .copied()
        .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    // A viewer looks at its kicked flag and the server's shutdown itself.
    let Some((id, kicked)) = shared.admit(peer, Box::new(|| {}), false) else {
        metrics::add(&shared.metrics.connections_rejected, 1);
        log::debug!(
            "{peer} refused: -max-connections {} reached",
            shared.config.max_connections
        );
        return response::refuse(request, 503, "too many connections", cors.as_deref());
    };
    let viewer = Viewer {
        shared: Arc::clone(shared),
        request,
        live,
        id,
        peer,
        kicked,
        cors,
    };
    // A thread that cannot start drops the request: tiny_http answers 500.
    shared.spawn(id, peer, move || viewer.run());
}
