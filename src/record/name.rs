//! Recording file names: the `-segment-pattern` rendered in the record
//! directory with the local time, then the extension; `_2`, `_3`... when a
//! name is taken, so that nothing is ever overwritten.

use std::path::{Path, PathBuf};

use super::pattern::SegmentPattern;
use crate::hub::stream_key::StreamKey;

/// Suffixes tried for a name already taken.
pub const MAX_SUFFIX: u32 = 1000;

/// The candidate paths in `dir` for segment `number` of `key` starting
/// now, in the order to try them: the pattern's name, then `_2`, `_3`...
pub fn candidates<'a>(
    dir: &'a Path,
    pattern: &SegmentPattern,
    key: &StreamKey,
    number: u32,
    extension: &'a str,
) -> impl Iterator<Item = PathBuf> + 'a {
    let base = dir.join(pattern.render(key, number, &jiff::Zoned::now()));
    (1..=MAX_SUFFIX).map(move |n| {
        let mut name = base.clone().into_os_string();
        if n > 1 {
            name.push(format!("_{n}"));
        }
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::pattern::DEFAULT;

    #[test]
    fn names_never_repeat_and_stay_in_the_directory() {
        let dir = Path::new("/rec");
        let key = StreamKey::new("live", "my cam/../x?token=s3cret").unwrap();
        let pattern = SegmentPattern::parse(DEFAULT).unwrap();
        let names: Vec<PathBuf> = candidates(dir, &pattern, &key, 1, "flv").take(3).collect();
        let first = names[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(first.starts_with("live_my_cam_.._x_2"), "{first}");
        assert!(first.ends_with(".flv"), "{first}");
        assert!(names[1].to_str().unwrap().ends_with("_2.flv"));
        assert!(names[2].to_str().unwrap().ends_with("_3.flv"));
        for name in &names {
            assert_eq!(name.parent(), Some(dir), "stays in the directory");
        }
    }
}
