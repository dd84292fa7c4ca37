//! The table of open connections, RTMP sockets and HTTP viewers alike:
//! their ids, admission under `-max-connections`, kicks, reconnect
//! requests to the Enhanced RTMP clients that accept them, and closing
//! them all at shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::protocol::enhanced;
use crate::protocol::session::Outgoing;
use crate::rtmp::transport::Transport;
use crate::rtmp::writer::{Frame, SendMode};

/// Closes a connection: shuts an RTMP socket, or tells an HTTP viewer
/// to stop. It must not block.
pub(crate) type Closer = Box<dyn Fn() + Send + Sync>;

/// An open connection as the server tracks it.
struct Entry {
    /// Closes it at shutdown or on a kick.
    close: Closer,
    kicked: Arc<AtomicBool>,
    /// An RTMP connection whose client accepts reconnect requests.
    reconnects: Option<Arc<Transport>>,
    /// Its bytes go through TLS (RTMPS).
    tls: bool,
}

pub(crate) struct ConnectionTable {
    entries: Mutex<HashMap<u64, Entry>>,
    all_closed: Condvar,
    next_id: AtomicU64,
    max: usize,
}

impl ConnectionTable {
    /// A table that admits `max` connections at most.
    pub fn new(max: usize) -> ConnectionTable {
        ConnectionTable {
            entries: Mutex::new(HashMap::new()),
            all_closed: Condvar::new(),
            next_id: AtomicU64::new(1),
            max,
        }
    }

    /// Takes a new connection, with a new id and its kicked flag; `None`
    /// (nothing taken) past the maximum.
    pub fn admit(&self, close: Closer, tls: bool) -> Option<(u64, Arc<AtomicBool>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kicked = Arc::new(AtomicBool::new(false));
        let mut entries = self.entries.lock();
        if entries.len() >= self.max {
            return None;
        }
        let entry = Entry {
            close,
            kicked: Arc::clone(&kicked),
            reconnects: None,
            tls,
        };
        entries.insert(id, entry);
        Some((id, kicked))
    }

    /// Removes connection `id`, closing it.
    pub fn forget(&self, id: u64) {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.remove(&id) {
            (entry.close)();
        }
        if entries.is_empty() {
            self.all_closed.notify_all();
        }
    }

    /// Closes connection `id`, marked as kicked; false if unknown.
    pub fn kick(&self, id: u64) -> bool {
        match self.entries.lock().get(&id) {
            Some(entry) => {
                entry.kicked.store(true, Ordering::SeqCst);
                (entry.close)();
                true
            }
            None => false,
        }
    }

    /// The ids of the connections over TLS.
    pub fn tls_ids(&self) -> HashSet<u64> {
        let entries = self.entries.lock();
        entries
            .iter()
            .filter(|(_, e)| e.tls)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Connection `id`'s client accepts reconnect requests, sent on
    /// `transport`.
    pub fn accepts_reconnect(&self, id: u64, transport: &Arc<Transport>) {
        if let Some(entry) = self.entries.lock().get_mut(&id) {
            entry.reconnects = Some(Arc::clone(transport));
        }
    }

    /// Asks every client that accepts it to reconnect (to `tc_url`, else
    /// to where it is): `NetConnection.Connect.ReconnectRequest`, sent
    /// without waiting (what the socket does not take now waits in the
    /// connection's backlog). Returns how many were asked.
    pub fn request_reconnect(&self, tc_url: Option<&str>) -> usize {
        let transports: Vec<Arc<Transport>> = self
            .entries
            .lock()
            .values()
            .filter_map(|e| e.reconnects.clone())
            .collect();
        let request = Outgoing::command(0, enhanced::reconnect_request(tc_url));
        transports
            .iter()
            .filter(|t| {
                let frame = Frame::from(request.clone());
                t.send([frame], SendMode::Backlog).is_ok()
            })
            .count()
    }

    /// Closes every connection and waits up to `grace` for all to be
    /// gone; how many are left.
    pub fn close_all(&self, grace: Duration) -> usize {
        let mut entries = self.entries.lock();
        for entry in entries.values() {
            (entry.close)();
        }
        let deadline = Instant::now() + grace;
        while !entries.is_empty() {
            if self
                .all_closed
                .wait_until(&mut entries, deadline)
                .timed_out()
            {
                break;
            }
        }
        entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }
}
