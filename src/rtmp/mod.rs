//! RTMP over TCP: the server's connections and the outbound client, driving
//! the sans-IO protocol core over sockets.

pub mod client;
pub(crate) mod connection;
pub mod player;
mod requests;
pub mod socket;
pub mod writer;
