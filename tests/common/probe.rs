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

/// The lines ffprobe prints for `file` with `args` (as CSV, no keys).
pub fn ffprobe(file: &Path, args: &[&str]) -> Vec<String> {
    let output = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

pub fn first_video_frame_is_key(file: &Path) -> bool {
    let args = ["-select_streams", "v", "-read_intervals", "%+#1"];
    let lines = ffprobe(
        file,
        &[&args[..], &["-show_entries", "frame=key_frame"]].concat(),
    );
    lines.first().and_then(|l| l.split(',').next()) == Some("1")
}

/// Video packets in `file`.
pub fn video_packets(file: &Path) -> u64 {
    let args = ["-select_streams", "v:0", "-count_packets"];
    let lines = ffprobe(
        file,
        &[&args[..], &["-show_entries", "stream=nb_read_packets"]].concat(),
    );
    lines.first().and_then(|l| l.parse().ok()).unwrap_or(0)
}

/// The duration of `file`, in seconds.
pub fn duration(file: &Path) -> f64 {
    let lines = ffprobe(file, &["-show_entries", "format=duration"]);
    lines.first().and_then(|l| l.parse().ok()).unwrap_or(-1.0)
}

/// The video packets' presentation times, to the millisecond.
pub fn video_pts(file: &Path) -> Vec<String> {
    ffprobe(
        file,
        &["-select_streams", "v", "-show_entries", "packet=pts_time"],
    )
    .iter()
    .map(|l| format!("{:.3}", l.parse::<f64>().unwrap_or(-1.0)))
    .collect()
}

/// `ffmpeg -v error -i FILE -f null -` must print nothing.
pub fn decode_errors(file: &Path) -> String {
    decode_errors_with("ffmpeg", file)
}

/// [`decode_errors`] with another ffmpeg (a modern one, for codecs the
/// system's cannot decode).
pub fn decode_errors_with(ffmpeg: &str, file: &Path) -> String {
    let output = Command::new(ffmpeg)
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}
