//! `rtmp-server`: a small, dependable RTMP live-streaming server.
//!
//! [`protocol`] is the sans-IO core (handshake, chunks, AMF0, messages,
//! commands, media tags); [`server`] drives it with one thread per
//! connection; [`client`] is a blocking RTMP client used by the tests and
//! tools; [`http`] serves metrics and status; [`cli`] parses the Go-style
//! command line.

pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod proc_stats;
pub mod protocol;
pub mod server;
