//! The sans-IO RTMP protocol core: plain functions and state machines over
//! byte slices, with no sockets, threads or clocks. The server layer drives
//! them over TCP.

pub mod aggregate;
pub mod amf0;
pub mod chunk_decoder;
pub mod chunk_encoder;
pub mod command;
pub mod data;
pub mod handshake;
pub mod message;
