//! What the client sends once publishing: shared packets (payloads never
//! copied; metadata with its `@setDataFrame` back), a stream's output queue
//! in batches, and, for tests and tools, raw messages and payloads.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;

use super::{Client, ClientError, INPUT_POLL, MAX_BATCH, PublishEnd};
use crate::hub::output::{Outbound, OutputQueue};
use crate::hub::packet::{Packet, PacketKind};
use crate::protocol::amf0::{self, Value};
use crate::protocol::chunk_encoder::csid;
use crate::protocol::data;
use crate::protocol::message::{Message, RawMessage, type_id};
use crate::protocol::session::Outgoing;
use crate::rtmp::writer::{Frame, SendMode};

impl Client {
    /// How a packet goes to the server: shared, its payload not copied;
    /// metadata with its `@setDataFrame` back, as encoders send it.
    fn frame_for<'a>(packet: &'a Packet, stream_id: u32) -> Frame<'a> {
        if packet.kind != PacketKind::Data || !packet.sequence_header {
            return Frame::Packet(packet);
        }
        let mut payload = amf0::encode_all(&data::metadata_for_publishing(&[]));
        payload.extend_from_slice(&packet.payload);
        Frame::Message {
            csid: csid::STREAM,
            message: RawMessage {
                type_id: type_id::DATA_AMF0,
                timestamp: packet.timestamp,
                stream_id,
                payload: Bytes::from(payload),
            },
        }
    }

    /// Sends a shared packet on the current NetStream (see
    /// [`Client::publish_output`] for many).
    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let stream_id = self.stream_id();
        let frame = Client::frame_for(packet, stream_id);
        Ok(self.writer.write_frames(
            &mut super::wire(&self.socket, &mut self.tls),
            [frame],
            stream_id,
            SendMode::Wait,
        )?)
    }

    /// Publishes a stream's output until the stream ends, the stream lets
    /// go of it, `stop` is set or something fails: `catch_up` (metadata,
    /// headers, cached GOP) first, then what the queue holds, in batches
    /// written with one vectored write each, reading what the server sends
    /// every 100 ms.
    pub fn publish_output(
        &mut self,
        catch_up: &[Arc<Packet>],
        queue: &OutputQueue,
        stop: &AtomicBool,
    ) -> Result<PublishEnd, ClientError> {
        let stream_id = self.stream_id();
        let frames = catch_up.iter().map(|p| Client::frame_for(p, stream_id));
        self.writer.write_frames(
            &mut super::wire(&self.socket, &mut self.tls),
            frames,
            stream_id,
            SendMode::Wait,
        )?;
        queue.record_sent(
            catch_up.len(),
            catch_up.iter().map(|p| p.payload.len()).sum(),
            catch_up.last().map(|p| p.timestamp),
        );
        let mut batch = Vec::new();
        let mut last_poll = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let Ok(first) = queue.recv_timeout(INPUT_POLL) else {
                return Ok(PublishEnd::Released);
            };
            batch.extend(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(Some(item)) => batch.push(item),
                    Ok(None) => break,
                    Err(_) => return Ok(PublishEnd::Released),
                }
            }
            let ended = batch.iter().any(|i| matches!(i, Outbound::PublishEnded));
            let packets = batch.iter().filter_map(|item| match item {
                Outbound::Media(packet) => Some(packet),
                _ => None,
            });
            let count = packets.clone().count();
            let bytes: usize = packets.clone().map(|p| p.payload.len()).sum();
            let last = packets.clone().next_back().map(|p| p.timestamp);
            let frames = packets.map(|p| Client::frame_for(p, stream_id));
            let written = self.writer.write_frames(
                &mut super::wire(&self.socket, &mut self.tls),
                frames,
                stream_id,
                SendMode::Wait,
            );
            queue.release_queued(bytes);
            batch.clear();
            written?;
            queue.record_sent(count, bytes, last);
            if ended {
                return Ok(PublishEnd::StreamEnded);
            }
            if last_poll.elapsed() >= INPUT_POLL {
                last_poll = Instant::now();
                self.poll_input()?;
            }
        }
        Ok(PublishEnd::Stopped)
    }

    /// Writes raw bytes (for protocol tests).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        super::wire(&self.socket, &mut self.tls).send_all(&mut [io::IoSlice::new(bytes)])
    }

    /// Sends any message on chunk stream `csid` (a Set Chunk Size switches
    /// this client's chunk size).
    pub fn send(&mut self, csid: u32, message: &RawMessage) -> io::Result<()> {
        self.writer.send(
            &mut super::wire(&self.socket, &mut self.tls),
            csid,
            message.clone(),
        )
    }

    pub fn set_chunk_size(&mut self, size: u32) -> io::Result<()> {
        let message = Outgoing::control(Message::SetChunkSize(size));
        self.writer.send(
            &mut super::wire(&self.socket, &mut self.tls),
            message.csid,
            message.message,
        )
    }

    /// Sends a command on NetStream `stream_id` (0: the connection).
    pub fn command(&mut self, stream_id: u32, values: Vec<Value>) -> io::Result<()> {
        let message = Outgoing::command(stream_id, values);
        self.writer.send(
            &mut super::wire(&self.socket, &mut self.tls),
            message.csid,
            message.message,
        )
    }

    /// Sends a video payload (copied into a packet: for tests and tools).
    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) -> Result<(), ClientError> {
        let packet = Packet::new(
            PacketKind::Video,
            timestamp,
            Bytes::copy_from_slice(payload),
        );
        self.send_packet(&packet)
    }

    /// Sends an audio payload (copied into a packet: for tests and tools).
    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) -> Result<(), ClientError> {
        let packet = Packet::new(
            PacketKind::Audio,
            timestamp,
            Bytes::copy_from_slice(payload),
        );
        self.send_packet(&packet)
    }

    /// Sends `@setDataFrame onMetaData {properties}` as encoders do.
    pub fn send_metadata(&mut self, properties: Vec<(String, Value)>) -> Result<(), ClientError> {
        let values = [Value::string("onMetaData"), Value::EcmaArray(properties)];
        let packet = Packet::new(PacketKind::Data, 0, Bytes::from(amf0::encode_all(&values)));
        self.send_packet(&packet.into_metadata())
    }
}
