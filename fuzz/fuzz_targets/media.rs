//! Fuzzes the media tag parser: keyframe, sequence header, codec, profile
//! and audio format detection on audio and video payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_server::media::codec;

fuzz_target!(|data: &[u8]| {
    if let Some(video) = codec::inspect_video(data) {
        assert!(!(video.keyframe && video.sequence_header));
        let _ = video.codec.name();
        let _ = video.codec.fourcc();
    }
    if let Some(audio) = codec::inspect_audio(data) {
        let _ = audio.codec.name();
    }
    let _ = codec::video_profile_level(data);
    let _ = codec::audio_format(data);
});
