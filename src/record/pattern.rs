//! `-segment-pattern`: how recording files are named, go-rtmp's way.
//! `%s` is the stream key with `/` as `_`, `%d` or `%0Nd` the segment
//! number from 1, `%T` the segment's start as `YYYYMMDD_HHMMSS`, `%Y %m
//! %D %H %M %S` its parts, `%%` a `%`; a `/` makes subdirectories. A
//! pattern that names an unknown placeholder, leaves the record directory,
//! or could give two files of a recording the same name is refused when
//! it is parsed (at startup), never at the first segment.

use std::fmt;
use std::path::PathBuf;

use crate::hub::stream_key::StreamKey;

/// The pattern without `-segment-pattern` and without segments.
pub const DEFAULT: &str = "%s_%T";
/// The default with `-segment-duration`.
pub const DEFAULT_SEGMENTED: &str = "%s_%T_seg%03d";
/// Widest `%0Nd`.
const MAX_WIDTH: usize = 9;
/// Bytes of a stream key kept in a name (file names are at most 255).
const MAX_KEY: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Key,
    /// The segment number, zero-padded to this width.
    Number(usize),
    /// `%T`.
    Stamp,
    /// A strftime field of jiff (`%Y`, `%m`, `%d`, `%H`, `%M`, `%S`).
    Field(&'static str),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPattern {
    pieces: Vec<Piece>,
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    Unknown(String),
    /// `%` at the end.
    Dangling,
    /// Absolute, or with a `..` or empty component.
    Escapes,
    /// No `%s`: two streams recording at once would collide.
    NoKey,
    /// Neither a segment number nor the time to the second.
    NoUniquePart,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Unknown(p) => write!(
                f,
                "unknown placeholder {p}: want %s, %d, %0Nd, %T, %Y, %m, %D, %H, %M, %S or %%"
            ),
            PatternError::Dangling => write!(f, "a % at the end"),
            PatternError::Escapes => write!(
                f,
                "must stay in -record-dir: no leading /, no .. or empty parts"
            ),
            PatternError::NoKey => write!(f, "needs %s, or two streams would share names"),
            PatternError::NoUniquePart => write!(
                f,
                "needs %d (the segment number) or %T or %S, or segments would share names"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

impl SegmentPattern {
    pub fn parse(pattern: &str) -> Result<SegmentPattern, PatternError> {
        if pattern.starts_with('/') || pattern.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(PatternError::Escapes);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let piece = match chars.next().ok_or(PatternError::Dangling)? {
                '%' => {
                    text.push('%');
                    continue;
                }
                's' => Piece::Key,
                'd' => Piece::Number(0),
                'T' => Piece::Stamp,
                'Y' => Piece::Field("%Y"),
                'm' => Piece::Field("%m"),
                'D' => Piece::Field("%d"),
                'H' => Piece::Field("%H"),
                'M' => Piece::Field("%M"),
                'S' => Piece::Field("%S"),
                '0' => {
                    let mut digits = String::new();
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        digits.push(d);
                    }
                    let width = digits.parse::<usize>().ok().filter(|w| *w <= MAX_WIDTH);
                    match (width, chars.next()) {
                        (Some(width), Some('d')) => Piece::Number(width),
                        (_, next) => {
                            let next = next.map(String::from).unwrap_or_default();
                            return Err(PatternError::Unknown(format!("%0{digits}{next}")));
                        }
                    }
                }
                other => return Err(PatternError::Unknown(format!("%{other}"))),
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(piece);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        let has = |f: fn(&Piece) -> bool| pieces.iter().any(f);
        if !has(|p| *p == Piece::Key) {
            return Err(PatternError::NoKey);
        }
        if !has(|p| matches!(p, Piece::Number(_) | Piece::Stamp | Piece::Field("%S"))) {
            return Err(PatternError::NoUniquePart);
        }
        Ok(SegmentPattern { pieces })
    }

    /// Whether the pattern makes subdirectories.
    pub fn has_directories(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.contains('/')))
    }

    /// The path, relative to the record directory and without extension,
    /// of segment `number` of `key` started at `time`.
    pub fn render(&self, key: &StreamKey, number: u32, time: &jiff::Zoned) -> PathBuf {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Key => {
                    let key = format!("{}_{}", key.app(), key.name());
                    out.extend(safe(&key).take(MAX_KEY));
                }
                Piece::Number(width) => out.push_str(&format!("{number:0width$}")),
                Piece::Stamp => out.push_str(&time.strftime("%Y%m%d_%H%M%S").to_string()),
                Piece::Field(field) => out.push_str(&time.strftime(field).to_string()),
            }
        }
        PathBuf::from(out)
    }
}

/// `text` as a name shows it (see [`safe`]).
pub fn safe_text(text: &str) -> String {
    safe(text).collect()
}

/// A stream key's characters as a file name may hold them: letters,
/// digits, `.`, `-` and `_` kept, anything else (a `/`, spaces, non-ASCII)
/// as `_`; never a name of dots alone.
fn safe(text: &str) -> impl Iterator<Item = char> + '_ {
    let dots_only = text.chars().all(|c| c == '.');
    text.chars().map(move |c| {
        if dots_only || !(c.is_ascii_alphanumeric() || "._-".contains(c)) {
            '_'
        } else {
            c
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> jiff::Zoned {
        "2026-11-23T18:45:07[UTC]".parse().unwrap()
    }

    fn key() -> StreamKey {
        StreamKey::new("live", "my cam?token=s3cret").unwrap()
    }

    #[test]
    fn placeholders_render() {
        let render = |p: &str, n| {
            SegmentPattern::parse(p)
                .unwrap()
                .render(&key(), n, &at())
                .display()
                .to_string()
        };
        assert_eq!(render(DEFAULT, 1), "live_my_cam_20261123_184507");
        assert_eq!(
            render(DEFAULT_SEGMENTED, 7),
            "live_my_cam_20261123_184507_seg007"
        );
        assert_eq!(
            render("%Y/%m/%D/%s-%H%M%S-%d", 12),
            "2026/11/23/live_my_cam-184507-12"
        );
        assert_eq!(render("%s_100%%_%05d", 3), "live_my_cam_100%_00003");
        let p = SegmentPattern::parse("%Y-%m/%s_%d").unwrap();
        assert!(p.has_directories());
        assert!(!SegmentPattern::parse(DEFAULT).unwrap().has_directories());
    }

    #[test]
    fn bad_patterns_are_refused_at_parse() {
        for (pattern, want) in [
            ("%s_%q", PatternError::Unknown("%q".into())),
            ("%s_%0xd", PatternError::Unknown("%0x".into())),
            ("%s_%012d", PatternError::Unknown("%012d".into())),
            ("%s_%T%", PatternError::Dangling),
            ("/abs/%s_%d", PatternError::Escapes),
            ("../%s_%d", PatternError::Escapes),
            ("a//%s_%d", PatternError::Escapes),
            ("rec_%T", PatternError::NoKey),
            ("%s_%Y%m%D", PatternError::NoUniquePart),
        ] {
            assert_eq!(SegmentPattern::parse(pattern), Err(want), "{pattern}");
        }
    }

    #[test]
    fn keys_never_make_directories_or_dots() {
        let p = SegmentPattern::parse("%s_%d").unwrap();
        let k = StreamKey::new("..", "../../etc").unwrap();
        let path = p.render(&k, 1, &at());
        assert_eq!(path.components().count(), 1, "{path:?}");
        let long = StreamKey::new("live", &"n".repeat(1000)).unwrap();
        assert!(p.render(&long, 1, &at()).as_os_str().len() < 200);
    }
}
