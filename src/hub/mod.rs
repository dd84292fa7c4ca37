//! The hub: live streams by key, each with its metadata, sequence headers,
//! GOP cache and the bounded queues of its outputs.

pub mod gop_cache;
pub mod history;
pub mod packet;
pub mod registry;
pub mod stream;
pub mod stream_key;
pub mod stream_status;
pub mod subscriber;
