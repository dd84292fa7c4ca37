//! The hub: live streams by key, each fed by an input and drained by its
//! outputs (RTMP players now; recorders, relays and HTTP viewers later),
//! each output with its own bounded queue. Lifecycle events go out on
//! bounded channels. Nothing here does IO.

/// Output and input ids from here up are not connections (relays'
/// outputs, sources' taps and pulls); connections count from 1.
pub const FIRST_INTERNAL_ID: u64 = 1 << 61;

pub mod doorbell;
pub mod events;
pub mod gop_cache;
pub mod history;
pub mod input;
pub mod output;
pub mod packet;
pub mod registry;
pub mod slot;
pub mod stream;
pub mod stream_key;
mod stream_state;
pub mod stream_status;

#[cfg(test)]
mod tests;
