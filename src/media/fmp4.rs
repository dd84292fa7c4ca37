//! Fragmented MP4 (ISO BMFF) boxes, sans-IO: the init segment (`ftyp` and
//! `moov` with each track's codec configuration) and fragments (`moof`
//! and the `mdat` header, the samples' bytes given back as they are, never
//! copied here). Decode times are 64-bit, so a recording of days is right
//! whatever the timescale.

use bytes::Bytes;

/// What a track carries, with its decoder configuration as the FLV
/// sequence header gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackCodec {
    /// H.264: the AVCDecoderConfigurationRecord (`avcC`).
    Avc(Bytes),
    /// H.265: the HEVCDecoderConfigurationRecord (`hvcC`).
    Hevc(Bytes),
    /// AV1: the AV1CodecConfigurationRecord (`av1C`).
    Av1(Bytes),
    /// VP9: the `vpcC` box's content (version and flags, then the
    /// VPCodecConfigurationRecord), as Enhanced RTMP carries it.
    Vp9(Bytes),
    /// AAC: the AudioSpecificConfig.
    Aac(Bytes),
    /// Opus: the `OpusHead` identification header (RFC 7845).
    Opus(Bytes),
}

/// One track of the init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    pub codec: TrackCodec,
    /// Units per second of its times.
    pub timescale: u32,
    pub width: u16,
    pub height: u16,
    pub channels: u16,
    pub sample_rate: u32,
}

impl Track {
    fn is_video(&self) -> bool {
        !matches!(self.codec, TrackCodec::Aac(_) | TrackCodec::Opus(_))
    }
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// Composition time offset (presentation minus decode time).
    pub cto: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// A track's samples in one fragment, from `base_decode_time` on.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
}

/// A fragment: `moof` and the `mdat` header, then the samples' bytes in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub header: Vec<u8>,
    pub data: Vec<Bytes>,
}

impl Fragment {
    pub fn len(&self) -> usize {
        self.header.len() + self.data.iter().map(Bytes::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends a box: size, type, then what `body` writes.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (with version and flags).
fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out);
    });
}

fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd`.
fn matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// `ftyp` and `moov` for `tracks`.
pub fn init_segment(tracks: &[Track]) -> Vec<u8> {
    let mut out = Vec::new();
    boxed(&mut out, b"ftyp", |out| {
        out.extend_from_slice(b"isom");
        u32be(out, 0x200);
        for brand in [b"isom", b"iso6", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |out| {
        full(out, b"mvhd", 0, 0, |out| {
            u32be(out, 0); // creation
            u32be(out, 0); // modification
            u32be(out, 1000); // timescale
            u32be(out, 0); // duration: fragmented
            u32be(out, 0x0001_0000); // rate
            u16be(out, 0x0100); // volume
            out.extend_from_slice(&[0; 10]);
            matrix(out);
            out.extend_from_slice(&[0; 24]);
            u32be(out, tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
        });
        for track in tracks {
            trak(out, track);
        }
        boxed(out, b"mvex", |out| {
            for track in tracks {
                full(out, b"trex", 0, 0, |out| {
                    u32be(out, track.id);
                    u32be(out, 1); // sample description index
                    u32be(out, 0);
                    u32be(out, 0);
                    u32be(out, 0);
                });
            }
        });
    });
    out
}

fn trak(out: &mut Vec<u8>, track: &Track) {
    boxed(out, b"trak", |out| {
        // Enabled, in the movie, in the preview.
        full(out, b"tkhd", 0, 3, |out| {
            u32be(out, 0);
            u32be(out, 0);
            u32be(out, track.id);
            u32be(out, 0);
            u32be(out, 0); // duration
            out.extend_from_slice(&[0; 8]);
            u16be(out, 0); // layer
            u16be(out, 0); // alternate group
            u16be(out, if track.is_video() { 0 } else { 0x0100 });
            u16be(out, 0);
            matrix(out);
            u32be(out, u32::from(track.width) << 16);
            u32be(out, u32::from(track.height) << 16);
        });
        boxed(out, b"mdia", |out| {
            full(out, b"mdhd", 0, 0, |out| {
                u32be(out, 0);
                u32be(out, 0);
                u32be(out, track.timescale);
                u32be(out, 0);
                u16be(out, 0x55c4); // "und"
                u16be(out, 0);
            });
            full(out, b"hdlr", 0, 0, |out| {
                u32be(out, 0);
                out.extend_from_slice(if track.is_video() { b"vide" } else { b"soun" });
                out.extend_from_slice(&[0; 12]);
                let name: &[u8] = if track.is_video() {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                };
                out.extend_from_slice(name);
            });
            boxed(out, b"minf", |out| {
                if track.is_video() {
                    full(out, b"vmhd", 0, 1, |out| out.extend_from_slice(&[0; 8]));
                } else {
                    full(out, b"smhd", 0, 0, |out| out.extend_from_slice(&[0; 4]));
                }
                boxed(out, b"dinf", |out| {
                    full(out, b"dref", 0, 0, |out| {
                        u32be(out, 1);
                        full(out, b"url ", 0, 1, |_| {});
                    });
                });
                stbl(out, track);
            });
        });
    });
}

fn stbl(out: &mut Vec<u8>, track: &Track) {
    boxed(out, b"stbl", |out| {
        full(out, b"stsd", 0, 0, |out| {
            u32be(out, 1);
            match &track.codec {
                TrackCodec::Avc(config) => visual(out, b"avc1", b"avcC", config, track),
                TrackCodec::Hevc(config) => visual(out, b"hvc1", b"hvcC", config, track),
                TrackCodec::Av1(config) => visual(out, b"av01", b"av1C", config, track),
                TrackCodec::Vp9(config) => visual(out, b"vp09", b"vpcC", config, track),
                TrackCodec::Aac(config) => mp4a(out, config, track),
                TrackCodec::Opus(head) => opus(out, head, track),
            }
        });
        // The samples are in the fragments: empty tables.
        full(out, b"stts", 0, 0, |out| u32be(out, 0));
        full(out, b"stsc", 0, 0, |out| u32be(out, 0));
        full(out, b"stsz", 0, 0, |out| {
            u32be(out, 0);
            u32be(out, 0);
        });
        full(out, b"stco", 0, 0, |out| u32be(out, 0));
    });
}

/// A visual sample entry with its configuration box.
fn visual(out: &mut Vec<u8>, entry: &[u8; 4], config_box: &[u8; 4], config: &[u8], track: &Track) {
    boxed(out, entry, |out| {
        out.extend_from_slice(&[0; 6]);
        u16be(out, 1); // data reference index
        out.extend_from_slice(&[0; 16]);
        u16be(out, track.width);
        u16be(out, track.height);
        u32be(out, 0x0048_0000); // 72 dpi
        u32be(out, 0x0048_0000);
        u32be(out, 0);
        u16be(out, 1); // frame count
        out.extend_from_slice(&[0; 32]); // compressor name
        u16be(out, 0x0018); // depth
        u16be(out, 0xffff);
        boxed(out, config_box, |out| out.extend_from_slice(config));
    });
}

/// An `mp4a` sample entry with its `esds`.
fn mp4a(out: &mut Vec<u8>, config: &[u8], track: &Track) {
    boxed(out, b"mp4a", |out| {
        audio_entry(out, track);
        full(out, b"esds", 0, 0, |out| {
            let specific = descriptor(0x05, config);
            let mut decoder = vec![0x40, 0x15, 0, 0, 0];
            decoder.extend_from_slice(&[0; 8]); // max and average bitrate
            decoder.extend_from_slice(&specific);
            let mut es = vec![0, 0, 0];
            es.extend_from_slice(&descriptor(0x04, &decoder));
            es.extend_from_slice(&descriptor(0x06, &[0x02]));
            out.extend_from_slice(&descriptor(0x03, &es));
        });
    });
}

/// The start of an audio sample entry: channels, 16-bit samples, rate.
fn audio_entry(out: &mut Vec<u8>, track: &Track) {
    out.extend_from_slice(&[0; 6]);
    u16be(out, 1);
    out.extend_from_slice(&[0; 8]);
    u16be(out, track.channels);
    u16be(out, 16);
    u32be(out, 0);
    u32be(out, track.sample_rate.min(0xffff) << 16);
}

/// `dOps` from an `OpusHead`: the same fields, big-endian, without the
/// magic (ISO/IEC 23003-5 / the Opus-in-ISOBMFF encapsulation).
pub fn dops(head: &[u8]) -> Option<Vec<u8>> {
    let fields = head.strip_prefix(b"OpusHead")?;
    let (channels, family) = (*fields.get(1)?, *fields.get(10)?);
    let pre_skip = u16::from_le_bytes([*fields.get(2)?, *fields.get(3)?]);
    let rate = u32::from_le_bytes(fields.get(4..8)?.try_into().ok()?);
    let gain = i16::from_le_bytes([*fields.get(8)?, *fields.get(9)?]);
    let mut out = vec![0, channels];
    out.extend_from_slice(&pre_skip.to_be_bytes());
    out.extend_from_slice(&rate.to_be_bytes());
    out.extend_from_slice(&gain.to_be_bytes());
    out.push(family);
    if family != 0 {
        // Stream count, coupled count and the channel mapping.
        out.extend_from_slice(fields.get(11..13 + usize::from(channels))?);
    }
    Some(out)
}

/// An `Opus` sample entry with its `dOps`.
fn opus(out: &mut Vec<u8>, head: &[u8], track: &Track) {
    boxed(out, b"Opus", |out| {
        audio_entry(out, track);
        let body = dops(head).unwrap_or_default();
        boxed(out, b"dOps", |out| out.extend_from_slice(&body));
    });
}

/// An MPEG-4 descriptor: tag, length (7 bits a byte), body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len().min(0x0fff_ffff) as u32;
    let mut out = vec![tag];
    for shift in [21, 14, 7] {
        out.push(0x80 | ((len >> shift) & 0x7f) as u8);
    }
    out.push((len & 0x7f) as u8);
    out.extend_from_slice(body);
    out
}

/// Sample flags: a sync sample, or one depending on others.
fn sample_flags(keyframe: bool) -> u32 {
    if keyframe { 0x0200_0000 } else { 0x0101_0000 }
}

/// `moof` (sequence `sequence`, a `traf` per run) and the `mdat` header;
/// the runs' sample bytes follow in order.
pub fn fragment(sequence: u32, runs: &[TrackRun<'_>]) -> Fragment {
    let mut moof = Vec::new();
    let mut offsets = Vec::new();
    boxed(&mut moof, b"moof", |out| {
        full(out, b"mfhd", 0, 0, |out| u32be(out, sequence));
        for run in runs {
            boxed(out, b"traf", |out| {
                // Data offsets from the start of the moof.
                full(out, b"tfhd", 0, 0x02_0000, |out| u32be(out, run.track_id));
                full(out, b"tfdt", 1, 0, |out| {
                    out.extend_from_slice(&run.base_decode_time.to_be_bytes())
                });
                // Offset, and per sample duration, size, flags and a
                // signed composition offset.
                full(out, b"trun", 1, 0x0f01, |out| {
                    u32be(out, run.samples.len() as u32);
                    offsets.push(out.len());
                    u32be(out, 0);
                    for sample in run.samples {
                        u32be(out, sample.duration);
                        u32be(out, sample.data.len() as u32);
                        u32be(out, sample_flags(sample.keyframe));
                        out.extend_from_slice(&sample.cto.to_be_bytes());
                    }
                });
            });
        }
    });
    let data: Vec<Bytes> = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.data.clone()))
        .collect();
    let payload: u64 = data.iter().map(|d| d.len() as u64).sum();
    let mut mdat = Vec::with_capacity(16);
    match u32::try_from(payload + 8) {
        Ok(size) => {
            u32be(&mut mdat, size);
            mdat.extend_from_slice(b"mdat");
        }
        Err(_) => {
            u32be(&mut mdat, 1);
            mdat.extend_from_slice(b"mdat");
            mdat.extend_from_slice(&(payload + 16).to_be_bytes());
        }
    }
    // Each run's data starts after the moof, the mdat header and the runs
    // before it.
    let mut at = (moof.len() + mdat.len()) as u64;
    for (run, offset) in runs.iter().zip(offsets) {
        let value = u32::try_from(at).unwrap_or(u32::MAX);
        moof[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
        at += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
    }
    moof.extend_from_slice(&mdat);
    Fragment { header: moof, data }
}

#[cfg(test)]
#[path = "fmp4_tests.rs"]
mod tests;
