//! The RTMP version 3 handshake, as a state machine over byte slices.
//!
//! The server accepts both the simple handshake (S1 random, S2 echoes C1)
//! and the digest ("complex") handshake of Flash-era clients and some
//! hardware encoders: when C1 carries a valid HMAC-SHA256 client digest at
//! either of the two known offsets, S1 and S2 are signed the way those
//! clients verify; otherwise the server falls back to the simple echo.
//! A client side is here too, for the in-repo test client.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Size of C1, C2, S1 and S2.
pub const PACKET_SIZE: usize = 1536;
/// The only RTMP version accepted in C0 (plain, unencrypted RTMP).
pub const VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const PLAYER_KEY_TEXT: &[u8] = b"Genuine Adobe Flash Player 001";
const SERVER_KEY_TEXT: &[u8] = b"Genuine Adobe Flash Media Server 001";
/// Version bytes a digest-signing server puts in S1 (those of FMS 3.5).
const SERVER_VERSION: [u8; 4] = [0x03, 0x05, 0x01, 0x01];
/// Version bytes our client puts in a digest C1 (those ffmpeg sends).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7c, 0x02];

fn player_key_full() -> Vec<u8> {
    [PLAYER_KEY_TEXT, &KEY_TAIL].concat()
}

fn server_key_full() -> Vec<u8> {
    [SERVER_KEY_TEXT, &KEY_TAIL].concat()
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// C0/S0 asked for a version other than 3 (e.g. 6 for RTMPE).
    UnsupportedVersion(u8),
    /// The peer's S2 did not carry the signature the digest scheme demands.
    BadServerSignature,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // 0x16 starts a TLS record: an rtmps:// client.
            HandshakeError::UnsupportedVersion(0x16) => write!(
                f,
                "a TLS handshake on the plain RTMP port: rtmps:// clients go to -tls-listen's port"
            ),
            HandshakeError::UnsupportedVersion(v) => {
                write!(f, "unsupported RTMP version {v} (only 3 is served)")
            }
            HandshakeError::BadServerSignature => write!(f, "server handshake signature invalid"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Which handshake the server answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    Simple,
    Digest,
}

/// Where a digest sits in a 1536-byte packet: the two schemes clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DigestScheme {
    /// Offset derived from bytes 8..12 (ffmpeg's and librtmp's clients).
    Scheme0,
    /// Offset derived from bytes 772..776 (Flash Player 10+).
    Scheme1,
}

impl DigestScheme {
    fn base(self) -> usize {
        match self {
            DigestScheme::Scheme0 => 8,
            DigestScheme::Scheme1 => 772,
        }
    }

    fn offset(self, packet: &[u8; PACKET_SIZE]) -> usize {
        let base = self.base();
        let sum: usize = packet[base..base + 4].iter().map(|&b| b as usize).sum();
        sum % 728 + base + 4
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; DIGEST_LEN],
    };
    for part in parts {
        mac.update(part);
    }
    let mut out = [0; DIGEST_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The digest of `packet` with the 32 bytes at `offset` left out.
fn packet_digest(packet: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Finds a valid digest in `packet` signed with `key`; returns its scheme
/// and the digest bytes.
fn find_digest(packet: &[u8; PACKET_SIZE], key: &[u8]) -> Option<(DigestScheme, [u8; DIGEST_LEN])> {
    [DigestScheme::Scheme1, DigestScheme::Scheme0]
        .into_iter()
        .find_map(|scheme| {
            let offset = scheme.offset(packet);
            let expected = packet_digest(packet, offset, key);
            (packet[offset..offset + DIGEST_LEN] == expected).then_some((scheme, expected))
        })
}

/// Writes a digest of `packet` into it at the position `scheme` dictates.
fn sign_packet(
    packet: &mut [u8; PACKET_SIZE],
    scheme: DigestScheme,
    key: &[u8],
) -> [u8; DIGEST_LEN] {
    let offset = scheme.offset(packet);
    let digest = packet_digest(packet, offset, key);
    packet[offset..offset + DIGEST_LEN].copy_from_slice(&digest);
    digest
}

/// The signature closing S2 (or C2) in the digest scheme: an HMAC of the
/// first 1504 bytes, keyed by an HMAC of the peer's digest.
fn response_signature(packet: &[u8], peer_digest: &[u8], key: &[u8]) -> [u8; DIGEST_LEN] {
    let derived = hmac_sha256(key, &[peer_digest]);
    hmac_sha256(&derived, &[&packet[..PACKET_SIZE - DIGEST_LEN]])
}

fn random_packet() -> Box<[u8; PACKET_SIZE]> {
    let mut packet = Box::new([0u8; PACKET_SIZE]);
    // Handshake randomness carries no security: zeros are an acceptable
    // fallback if the OS source is unavailable.
    let _ = getrandom::fill(&mut packet[..]);
    packet
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStage {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// The server side: feed it the client's bytes, send what it outputs.
#[derive(Debug)]
pub struct ServerHandshake {
    stage: ServerStage,
    buffer: Vec<u8>,
    output: Vec<u8>,
    kind: Option<HandshakeKind>,
    epoch_ms: u32,
}

impl ServerHandshake {
    /// `epoch_ms` is the server's uptime, written into S1's time field.
    pub fn new(epoch_ms: u32) -> Self {
        ServerHandshake {
            stage: ServerStage::AwaitC0C1,
            buffer: Vec::with_capacity(1 + PACKET_SIZE),
            output: Vec::new(),
            kind: None,
            epoch_ms,
        }
    }

    /// Consumes as many bytes of `input` as the handshake needs and returns
    /// how many it took; bytes after C2 belong to the chunk stream.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let wanted = match self.stage {
            ServerStage::AwaitC0C1 => 1 + PACKET_SIZE,
            ServerStage::AwaitC2 => PACKET_SIZE,
            ServerStage::Done => return Ok(0),
        };
        if self.stage == ServerStage::AwaitC0C1
            && let Some(&version) = self.buffer.first().or(input.first())
            && version != VERSION
        {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        let take = (wanted - self.buffer.len()).min(input.len());
        self.buffer.extend_from_slice(&input[..take]);
        if self.buffer.len() == wanted {
            match self.stage {
                ServerStage::AwaitC0C1 => {
                    let mut c1 = Box::new([0u8; PACKET_SIZE]);
                    c1.copy_from_slice(&self.buffer[1..]);
                    self.respond(&c1);
                    self.stage = ServerStage::AwaitC2;
                }
                // C2 is not checked: many clients send anything there.
                _ => self.stage = ServerStage::Done,
            }
            self.buffer.clear();
        }
        Ok(take)
    }

    fn respond(&mut self, c1: &[u8; PACKET_SIZE]) {
        let mut s1 = random_packet();
        s1[..4].copy_from_slice(&self.epoch_ms.to_be_bytes());
        let s2: Box<[u8; PACKET_SIZE]>;
        match find_digest(c1, PLAYER_KEY_TEXT) {
            Some((scheme, client_digest)) => {
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                sign_packet(&mut s1, scheme, SERVER_KEY_TEXT);
                let mut signed = random_packet();
                let signature = response_signature(&signed[..], &client_digest, &server_key_full());
                signed[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&signature);
                s2 = signed;
                self.kind = Some(HandshakeKind::Digest);
            }
            None => {
                // Zero version bytes: clients such as ffmpeg validate an S1
                // digest whenever byte 4 is 3 or more.
                s1[4..8].fill(0);
                let mut echo = Box::new([0u8; PACKET_SIZE]);
                echo.copy_from_slice(c1);
                echo[4..8].copy_from_slice(&self.epoch_ms.to_be_bytes());
                s2 = echo;
                self.kind = Some(HandshakeKind::Simple);
            }
        }
        self.output.reserve(1 + 2 * PACKET_SIZE);
        self.output.push(VERSION);
        self.output.extend_from_slice(&s1[..]);
        self.output.extend_from_slice(&s2[..]);
    }

    /// Bytes to send to the client (S0, S1, S2), once they are ready.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn is_done(&self) -> bool {
        self.stage == ServerStage::Done
    }

    /// Which handshake was answered, once C1 has been seen.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientStage {
    AwaitS0S1S2,
    Done,
}

/// The client side, used by the in-repo client and tests.
#[derive(Debug)]
pub struct ClientHandshake {
    stage: ClientStage,
    c1: Box<[u8; PACKET_SIZE]>,
    client_digest: Option<[u8; DIGEST_LEN]>,
    buffer: Vec<u8>,
    output: Vec<u8>,
}

impl ClientHandshake {
    /// Starts a handshake; with `digest` the C1 is signed like ffmpeg's.
    pub fn new(digest: bool) -> Self {
        let mut c1 = random_packet();
        c1[..4].fill(0);
        let client_digest = if digest {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            Some(sign_packet(&mut c1, DigestScheme::Scheme0, PLAYER_KEY_TEXT))
        } else {
            c1[4..8].fill(0);
            None
        };
        let mut output = Vec::with_capacity(1 + PACKET_SIZE);
        output.push(VERSION);
        output.extend_from_slice(&c1[..]);
        ClientHandshake {
            stage: ClientStage::AwaitS0S1S2,
            c1,
            client_digest,
            buffer: Vec::new(),
            output,
        }
    }

    /// The C1 this handshake sends.
    pub fn c1(&self) -> &[u8; PACKET_SIZE] {
        &self.c1
    }

    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        if self.stage == ClientStage::Done {
            return Ok(0);
        }
        if let Some(&version) = self.buffer.first().or(input.first())
            && version != VERSION
        {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        let wanted = 1 + 2 * PACKET_SIZE;
        let take = (wanted - self.buffer.len()).min(input.len());
        self.buffer.extend_from_slice(&input[..take]);
        if self.buffer.len() == wanted {
            let mut s1 = [0u8; PACKET_SIZE];
            s1.copy_from_slice(&self.buffer[1..1 + PACKET_SIZE]);
            let s2 = &self.buffer[1 + PACKET_SIZE..];
            if let Some(client_digest) = self.client_digest {
                let (_, server_digest) =
                    find_digest(&s1, SERVER_KEY_TEXT).ok_or(HandshakeError::BadServerSignature)?;
                let expected = response_signature(s2, &client_digest, &server_key_full());
                if s2[PACKET_SIZE - DIGEST_LEN..] != expected {
                    return Err(HandshakeError::BadServerSignature);
                }
                let mut c2 = random_packet();
                let signature = response_signature(&c2[..], &server_digest, &player_key_full());
                c2[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&signature);
                self.output.extend_from_slice(&c2[..]);
            } else {
                self.output.extend_from_slice(&s1);
            }
            self.stage = ClientStage::Done;
            self.buffer = Vec::new();
        }
        Ok(take)
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn is_done(&self) -> bool {
        self.stage == ClientStage::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: &mut ClientHandshake, server: &mut ServerHandshake) {
        let c0c1 = client.take_output();
        assert_eq!(server.feed(&c0c1).unwrap(), c0c1.len());
        let s = server.take_output();
        assert_eq!(s.len(), 1 + 2 * PACKET_SIZE);
        assert_eq!(client.feed(&s).unwrap(), s.len());
        let c2 = client.take_output();
        assert_eq!(c2.len(), PACKET_SIZE);
        assert_eq!(server.feed(&c2).unwrap(), PACKET_SIZE);
        assert!(server.is_done() && client.is_done());
    }

    #[test]
    fn simple_handshake_echoes_c1_and_zeroes_s1_version() {
        let mut client = ClientHandshake::new(false);
        let mut server = ServerHandshake::new(1234);
        let c1 = *client.c1();
        let c0c1 = client.take_output();
        server.feed(&c0c1).unwrap();
        let s = server.take_output();
        assert_eq!(s[0], 3);
        assert_eq!(&s[1..5], &1234u32.to_be_bytes());
        assert_eq!(&s[5..9], &[0, 0, 0, 0], "S1 version must be zero");
        let s2 = &s[1 + PACKET_SIZE..];
        assert_eq!(&s2[8..], &c1[8..], "S2 echoes C1's random bytes");
        assert_eq!(server.kind(), Some(HandshakeKind::Simple));
        let mut client = ClientHandshake::new(false);
        run(&mut client, &mut ServerHandshake::new(0));
    }

    #[test]
    fn digest_handshake_signs_s1_and_s2_like_ffmpeg_checks() {
        let mut client = ClientHandshake::new(true);
        let mut server = ServerHandshake::new(0);
        run(&mut client, &mut server);
        assert_eq!(server.kind(), Some(HandshakeKind::Digest));
    }

    /// A C1 built the way ffmpeg's `rtmp_handshake` builds it: scheme 0
    /// digest keyed with the 30-byte player key, version 9.0.124.2.
    #[test]
    fn digest_of_an_ffmpeg_style_c1_is_found() {
        let mut c1 = [0u8; PACKET_SIZE];
        for (i, b) in c1.iter_mut().enumerate().skip(8) {
            *b = (i * 7 % 251) as u8;
        }
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let offset =
            (c1[8] as usize + c1[9] as usize + c1[10] as usize + c1[11] as usize) % 728 + 12;
        let digest = hmac_sha256(PLAYER_KEY_TEXT, &[&c1[..offset], &c1[offset + 32..]]);
        c1[offset..offset + 32].copy_from_slice(&digest);
        let (scheme, found) = find_digest(&c1, PLAYER_KEY_TEXT).unwrap();
        assert_eq!(scheme, DigestScheme::Scheme0);
        assert_eq!(found, digest);

        let mut server = ServerHandshake::new(0);
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&c1);
        server.feed(&c0c1).unwrap();
        let out = server.take_output();
        let mut s1 = [0u8; PACKET_SIZE];
        s1.copy_from_slice(&out[1..1 + PACKET_SIZE]);
        // ffmpeg looks for the server digest at scheme 1 first, then 0.
        assert!(find_digest(&s1, SERVER_KEY_TEXT).is_some());
        assert!(s1[4] >= 3);
        let s2 = &out[1 + PACKET_SIZE..];
        assert_eq!(
            &s2[PACKET_SIZE - 32..],
            &response_signature(s2, &digest, &server_key_full())
        );
    }

    #[test]
    fn a_corrupt_digest_falls_back_to_simple() {
        let mut client = ClientHandshake::new(true);
        let mut c0c1 = client.take_output();
        c0c1[100] ^= 0xff;
        c0c1[900] ^= 0xff;
        let mut server = ServerHandshake::new(0);
        server.feed(&c0c1).unwrap();
        assert_eq!(server.kind(), Some(HandshakeKind::Simple));
    }

    #[test]
    fn input_may_arrive_one_byte_at_a_time() {
        let mut client = ClientHandshake::new(true);
        let mut server = ServerHandshake::new(0);
        let c0c1 = client.take_output();
        for (i, byte) in c0c1.iter().enumerate() {
            assert!(server.take_output().is_empty() || i == c0c1.len());
            assert_eq!(server.feed(std::slice::from_ref(byte)).unwrap(), 1);
        }
        let s = server.take_output();
        for byte in &s {
            client.feed(std::slice::from_ref(byte)).unwrap();
        }
        let c2 = client.take_output();
        for (i, byte) in c2.iter().enumerate() {
            assert!(!server.is_done(), "done after {i} bytes of C2");
            server.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert!(server.is_done());
    }

    #[test]
    fn bytes_after_c2_are_left_for_the_chunk_stream() {
        let mut client = ClientHandshake::new(false);
        let mut server = ServerHandshake::new(0);
        server.feed(&client.take_output()).unwrap();
        client.feed(&server.take_output()).unwrap();
        let mut c2 = client.take_output();
        c2.extend_from_slice(&[0x02, 0xAA]);
        assert_eq!(server.feed(&c2).unwrap(), PACKET_SIZE);
        assert!(server.is_done());
    }

    #[test]
    fn other_versions_are_rejected_at_the_first_byte() {
        let mut server = ServerHandshake::new(0);
        assert_eq!(
            server.feed(&[6]),
            Err(HandshakeError::UnsupportedVersion(6))
        );
        let mut server = ServerHandshake::new(0);
        assert_eq!(
            server.feed(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::UnsupportedVersion(b'G'))
        );
    }

    #[test]
    fn a_tampered_s2_is_detected_by_the_digest_client() {
        let mut client = ClientHandshake::new(true);
        let mut server = ServerHandshake::new(0);
        server.feed(&client.take_output()).unwrap();
        let mut s = server.take_output();
        let last = s.len() - 1;
        s[last] ^= 1;
        assert_eq!(client.feed(&s), Err(HandshakeError::BadServerSignature));
    }
}
