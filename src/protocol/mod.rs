//! The sans-IO RTMP protocol core: plain functions and state machines over
//! byte slices, with no sockets, threads or clocks: the handshake, chunk
//! streams, AMF0, messages, commands, and the NetConnection/NetStream
//! sessions of a server and a client. The `rtmp` layer drives them over
//! TCP.

pub mod aggregate;
pub mod amf0;
pub mod chunk_decoder;
pub mod chunk_encoder;
pub mod command;
pub mod data;
pub mod enhanced;
pub mod handshake;
pub mod message;
pub mod session;
pub mod url;
