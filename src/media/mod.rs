//! Sans-IO media: what audio and video payloads are (codecs, keyframes,
//! sequence headers) and the FLV container.

pub mod codec;
pub mod codec_string;
pub mod ex_header;
pub mod flv;
pub mod flv_writer;
pub mod fmp4;
pub mod fmp4_mux;
