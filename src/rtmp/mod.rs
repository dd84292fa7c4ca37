//! RTMP over TCP: the server's connections and the outbound client, driving
//! the sans-IO protocol core over sockets.

mod backlog;
pub mod client;
pub(crate) mod connection;
mod connection_error;
pub mod player;
mod requests;
pub mod socket;
pub mod tls_stream;
pub mod transport;
pub mod wire;
pub mod writer;
pub mod writer_pool;
