//! Recording file names: `<app>_<name>_<YYYYMMDD_HHMMSS>.flv` in local
//! time, with what a file name cannot hold replaced, and `_2`, `_3`...
//! when a name is taken, so that nothing is ever overwritten.

use std::path::{Path, PathBuf};

use crate::hub::stream_key::StreamKey;

/// Bytes of the app or the name kept in a file name (file names are at
/// most 255 bytes).
const MAX_PART: usize = 100;
/// Suffixes tried for a name already taken.
pub const MAX_SUFFIX: u32 = 1000;

/// A part of a file name: letters, digits, `.`, `-` and `_` kept, anything
/// else (a `/` of a name, spaces, non-ASCII) as `_`, cut short.
pub fn part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_PART)
        .collect()
}

/// The local time as names show it: `YYYYMMDD_HHMMSS`.
pub fn local_stamp() -> String {
    jiff::Zoned::now().strftime("%Y%m%d_%H%M%S").to_string()
}

/// The candidate paths in `dir` for a recording of `key` started at
/// `stamp`, in the order to try them: the plain name, then `_2`, `_3`...
pub fn candidates<'a>(
    dir: &'a Path,
    key: &StreamKey,
    stamp: &str,
    extension: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    let base = format!("{}_{}_{stamp}", part(key.app()), part(key.name()));
    (1..=MAX_SUFFIX).map(move |n| {
        let name = match n {
            1 => format!("{base}.{extension}"),
            n => format!("{base}_{n}.{extension}"),
        };
        dir.join(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_never_repeat() {
        let dir = Path::new("/rec");
        let key = StreamKey::new("live", "my cam/../x?token=s3cret").unwrap();
        let names: Vec<PathBuf> = candidates(dir, &key, "20261123_184500", "flv")
            .take(3)
            .collect();
        assert_eq!(
            names,
            [
                PathBuf::from("/rec/live_my_cam_.._x_20261123_184500.flv"),
                PathBuf::from("/rec/live_my_cam_.._x_20261123_184500_2.flv"),
                PathBuf::from("/rec/live_my_cam_.._x_20261123_184500_3.flv"),
            ]
        );
        for name in &names {
            assert_eq!(name.parent(), Some(dir), "stays in the directory");
        }
        let long = StreamKey::new("live", &"n".repeat(1000)).unwrap();
        let name = candidates(dir, &long, "x", "flv").next().unwrap();
        assert!(name.file_name().unwrap().len() < 255);
    }

    #[test]
    fn the_local_stamp_has_its_shape() {
        let stamp = local_stamp();
        assert_eq!(stamp.len(), 15, "{stamp}");
        assert_eq!(stamp.as_bytes()[8], b'_');
        assert!(stamp.replace('_', "").chars().all(|c| c.is_ascii_digit()));
    }
}
