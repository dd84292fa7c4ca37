//! The timestamps players of a source see: each input's are moved by an
//! offset so that, across a switch, the stream continues one frame
//! interval after the last packet it sent, never backwards and never
//! further forwards; audio and video of one input move together, so they
//! stay in sync. A timestamp jump within an input (more than a minute
//! forwards, a second backwards: a restarted encoder, a hostile upstream)
//! is absorbed the same way. Plain arithmetic on RTMP's
//! wrapping 32-bit milliseconds.

use crate::hub::packet::PacketKind;

/// Frame interval assumed before one is seen (30 fps).
const DEFAULT_INTERVAL: u32 = 33;
/// A gap between consecutive frames longer than this is not an interval.
const MAX_INTERVAL: u32 = 200;
/// A jump forwards within an input beyond this is rebased away (and a
/// pulled upstream jumping this far either way is dropped).
pub const MAX_JUMP_MS: u32 = 60_000;
/// A step backwards beyond this (an encoder restarted) is rebased away;
/// less is jitter, passed on.
const MAX_BACK_MS: i64 = 1000;

/// `a - b` in wrapping milliseconds, as a signed difference.
pub fn diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Added (wrapping) to the current input's timestamps.
    offset: u32,
    /// The latest timestamp sent.
    last_out: Option<u32>,
    /// Video and audio of the current input before this timestamp are
    /// dropped until one of that kind reaches it (audio from just before
    /// the keyframe switched at, which arrives after it).
    cut: [Option<u32>; 2],
    /// Last input timestamp of each kind, to see jumps and intervals.
    last_in: [Option<u32>; 2],
    interval: u32,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            offset: 0,
            last_out: None,
            cut: [None; 2],
            last_in: [None; 2],
            interval: DEFAULT_INTERVAL,
        }
    }
}

fn slot(kind: PacketKind) -> Option<usize> {
    match kind {
        PacketKind::Video => Some(0),
        PacketKind::Audio => Some(1),
        PacketKind::Data => None,
    }
}

impl Timeline {
    /// A new input starts at `first`: it continues one interval after
    /// what was sent (at `first` itself if nothing was). Returns where
    /// `first` goes.
    pub fn switch(&mut self, first: u32) -> u32 {
        self.offset = match self.last_out {
            Some(last) => last.wrapping_add(self.interval).wrapping_sub(first),
            None => 0,
        };
        self.cut = [Some(first); 2];
        self.last_in = [None; 2];
        first.wrapping_add(self.offset)
    }

    /// The timestamp to send a packet of the current input at; `None` to
    /// drop it.
    pub fn map(&mut self, kind: PacketKind, timestamp: u32) -> Option<u32> {
        if let Some(i) = slot(kind) {
            if let Some(cut) = self.cut[i] {
                if diff(timestamp, cut) < 0 {
                    return None;
                }
                self.cut[i] = None;
            }
            if let Some(previous) = self.last_in[i] {
                let step = diff(timestamp, previous);
                if step > i64::from(MAX_JUMP_MS) || step < -MAX_BACK_MS {
                    // As if the input were switched to anew.
                    log::debug!("timestamp jump of {step} ms rebased");
                    self.switch(timestamp);
                    self.cut = [None; 2];
                } else if kind == PacketKind::Video && (1..=i64::from(MAX_INTERVAL)).contains(&step)
                {
                    self.interval = step as u32;
                }
            }
            self.last_in[i] = Some(timestamp);
        }
        let out = timestamp.wrapping_add(self.offset);
        if self.last_out.is_none_or(|last| diff(out, last) > 0) {
            self.last_out = Some(out);
        }
        Some(out)
    }

    /// Where headers sent at a switch go: at the latest timestamp sent.
    pub fn now(&self) -> u32 {
        self.last_out.unwrap_or(0)
    }

    /// Forgets the stream's past (a new session starts at the input's own
    /// timestamps).
    pub fn reset(&mut self) {
        *self = Timeline::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PacketKind::{Audio, Video};

    #[test]
    fn the_first_input_keeps_its_timestamps() {
        let mut t = Timeline::default();
        t.switch(5000);
        assert_eq!(t.map(Video, 5000), Some(5000));
        assert_eq!(t.map(Audio, 5010), Some(5010));
    }

    #[test]
    fn a_switch_continues_one_frame_later_in_sync() {
        let mut t = Timeline::default();
        t.switch(0);
        for ts in (0..=1000).step_by(40) {
            t.map(Video, ts);
            t.map(Audio, ts + 3);
        }
        // The new input's clock is far ahead; its audio just before the
        // keyframe is dropped, the rest keeps its distance to the video.
        t.switch(90_000);
        assert_eq!(t.map(Video, 90_000), Some(1003 + 40));
        // Audio from before the keyframe comes after it: dropped until
        // the audio reaches the keyframe's time.
        assert_eq!(t.map(Audio, 89_900), None);
        assert_eq!(t.map(Audio, 89_990), None);
        assert_eq!(t.map(Audio, 90_005), Some(1003 + 45));
        assert_eq!(t.map(Video, 90_040), Some(1003 + 80));
        // And back to an input whose clock is behind.
        t.switch(10);
        assert_eq!(t.map(Video, 10), Some(1083 + 40));
    }

    #[test]
    fn an_audio_only_input_switches_on_audio_and_absorbs_jumps_back() {
        let mut t = Timeline::default();
        t.switch(0);
        for ts in (0..=460).step_by(23) {
            t.map(Audio, ts);
        }
        t.switch(5000);
        assert_eq!(t.map(Audio, 5000), Some(460 + 33));
        assert_eq!(t.map(Audio, 5023), Some(460 + 56));
        // Its encoder restarts at 0: rebased, not dropped.
        assert_eq!(t.map(Audio, 0), Some(460 + 56 + 33));
    }

    #[test]
    fn wraps_and_absorbs_jumps() {
        let mut t = Timeline::default();
        t.switch(u32::MAX - 20);
        assert_eq!(t.map(Video, u32::MAX - 20), Some(u32::MAX - 20));
        assert_eq!(t.map(Video, 19), Some(19), "wraps like RTMP");
        // A jump of about four billion milliseconds backwards or forwards.
        let out = t.map(Video, 4_000_000_000).unwrap();
        assert_eq!(out, 19 + 40);
        assert_eq!(t.map(Video, 4_000_000_040), Some(19 + 80));
        assert_eq!(diff(1, u32::MAX), 2);
    }
}
