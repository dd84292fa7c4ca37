//! Retention deletes only this server's finished recordings: the too old,
//! then the oldest while the disk is short of space.

use std::fs::File;
use std::time::Duration;

use super::*;
use crate::media::flv_writer::{MetadataFacts, file_header, metadata_tag, tag_header, tag_trailer};

/// A directory with: two of our recordings (10 and 5 days old), one our
/// recorder has open, a fresh one, a foreign FLV and a text file.
fn setup(name: &str) -> (PathBuf, SystemTime) {
    let dir = std::env::temp_dir().join(format!("rtmp-retention-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let ours = |path: &Path, body: &[u8]| {
        let meta = metadata_tag(None, &MetadataFacts::default());
        let mut bytes = file_header(true, true).to_vec();
        bytes.extend_from_slice(&tag_header(18, 0, meta.body.len()).unwrap());
        bytes.extend_from_slice(&meta.body);
        bytes.extend_from_slice(&tag_trailer(meta.body.len()));
        bytes.extend_from_slice(body);
        std::fs::write(path, bytes).unwrap();
    };
    let now = SystemTime::now();
    let age = |path: &Path, days: u64| {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(now - Duration::from_secs(days * 86_400))
            .unwrap();
    };
    ours(&dir.join("old.flv"), &[0; 1000]);
    age(&dir.join("old.flv"), 10);
    ours(&dir.join("sub/older_than_a_week.flv"), &[0; 1000]);
    age(&dir.join("sub/older_than_a_week.flv"), 8);
    ours(&dir.join("middle.flv"), &[0; 1000]);
    age(&dir.join("middle.flv"), 5);
    ours(&dir.join("open.flv"), &[]);
    age(&dir.join("open.flv"), 30);
    ours(&dir.join("fresh.flv"), &[]);
    std::fs::write(
        dir.join("foreign.flv"),
        b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00",
    )
    .unwrap();
    age(&dir.join("foreign.flv"), 30);
    std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();
    age(&dir.join("notes.txt"), 30);
    (dir, now)
}

fn left(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = [
        "old.flv",
        "sub/older_than_a_week.flv",
        "middle.flv",
        "open.flv",
        "fresh.flv",
        "foreign.flv",
        "notes.txt",
    ]
    .into_iter()
    .filter(|n| dir.join(n).exists())
    .map(String::from)
    .collect();
    names.sort();
    names
}

#[test]
fn too_old_recordings_of_ours_go_and_nothing_else() {
    let (dir, now) = setup("age");
    let open: HashSet<PathBuf> = [dir.join("open.flv")].into();
    let retention = Retention {
        max_age: Some(Duration::from_secs(7 * 86_400)),
        min_free: None,
    };
    let deleted = sweep(&dir, &retention, &open, now, || None);
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted.iter().all(|(_, why)| *why == Why::TooOld));
    assert_eq!(
        left(&dir),
        [
            "foreign.flv",
            "fresh.flv",
            "middle.flv",
            "notes.txt",
            "open.flv"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_oldest_go_while_the_disk_is_short_and_no_more() {
    let (dir, now) = setup("free");
    let open: HashSet<PathBuf> = [dir.join("open.flv")].into();
    let retention = Retention {
        max_age: None,
        min_free: Some(1_000_000),
    };
    // Short by a little: the oldest of ours goes, then there is room.
    let freed = std::cell::Cell::new(999_500u64);
    let deleted = sweep(&dir, &retention, &open, now, || Some(freed.get()));
    assert_eq!(deleted, [(dir.join("old.flv"), Why::DiskFull)]);
    // Far short: every finished one of ours goes, the open, fresh and
    // foreign ones stay.
    let deleted = sweep(&dir, &retention, &open, now, || Some(0));
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert_eq!(
        left(&dir),
        ["foreign.flv", "fresh.flv", "notes.txt", "open.flv"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
