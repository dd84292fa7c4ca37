//! `rtmp-server`: a small, dependable RTMP live-streaming server.
//!
//! The shape of the code is inputs → stream → outputs:
//! - [`protocol`]: the sans-IO RTMP core (handshake, chunks, AMF0,
//!   messages, commands);
//! - [`media`]: sans-IO codec parsing and containers (FLV);
//! - [`hub`]: streams, their registry, the GOP cache and the bounded queues
//!   of their outputs;
//! - [`rtmp`]: RTMP over TCP, the server's connections and the client;
//! - [`server`]: the listener and the server's life, tying them together,
//!   and the table of open connections;
//! - [`relay`]: pushing streams on to other servers; [`source`]: streams
//!   fed by failover inputs and on-demand pulls;
//! - [`auth`]: who may publish or play; [`hooks`]: telling other programs
//!   what happens;
//! - [`http`]: metrics and status, the dashboard, live streams over HTTP;
//!   [`cli`] and [`config`]: settings.

pub mod auth;
pub mod cli;
pub mod config;
mod connections;
pub mod hooks;
pub mod http;
pub mod hub;
mod listener;
pub mod media;
pub mod metrics;
pub mod proc_stats;
pub mod protocol;
pub mod record;
pub mod relay;
pub mod rtmp;
pub mod server;
pub mod source;
pub mod tls;
