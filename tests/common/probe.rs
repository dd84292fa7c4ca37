//! What ffprobe and ffmpeg say of a media file: its codecs and frame
//! counts, whether it starts on a keyframe, whether it decodes cleanly.

use std::path::Path;
use std::process::Command;

/// Codecs (sorted) and frame counts of a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Probe {
    pub codecs: Vec<String>,
    pub video_frames: u64,
    pub audio_frames: u64,
}

pub fn probe(file: &Path) -> Probe {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut probe = Probe {
        codecs: Vec::new(),
        video_frames: 0,
        audio_frames: 0,
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let [name, kind, frames] = fields[..] else {
            continue;
        };
        let frames: u64 = frames.parse().unwrap_or(0);
        probe.codecs.push(name.to_owned());
        match kind {
            "video" => probe.video_frames = frames,
            "audio" => probe.audio_frames = frames,
            _ => {}
        }
    }
    probe.codecs.sort();
    probe
}

pub fn first_video_frame_is_key(file: &Path) -> bool {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_entries", "frame=key_frame", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    first.split(',').next().map(str::trim) == Some("1")
}

/// `ffmpeg -v error -i FILE -f null -` must print nothing.
pub fn decode_errors(file: &Path) -> String {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}
