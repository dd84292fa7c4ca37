//! Hooks get their events in order, and a flood is dropped and counted
//! without ever blocking whoever emits.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use super::*;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn count(key: &str, n: usize) -> Event {
    Event::SubscriberCount {
        key: key.into(),
        count: n,
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn each_hook_gets_its_events_in_order_and_only_those_it_asked_for() {
    let dir = std::env::temp_dir().join(format!("rtmp-hooks-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (all, only) = (dir.join("all"), dir.join("only"));
    let settings = HookSettings {
        hooks: vec![
            (
                EventFilter::All,
                HookTarget::Script(script(
                    &dir,
                    "all.sh",
                    &format!("echo \"$RTMP_EVENT_TYPE $RTMP_COUNT\" >> {}", all.display()),
                )),
            ),
            (
                EventFilter::parse("connection_accept").unwrap(),
                HookTarget::Script(script(
                    &dir,
                    "only.sh",
                    &format!(
                        "echo \"$RTMP_EVENT_TYPE $RTMP_CONN_ID\" >> {}",
                        only.display()
                    ),
                )),
            ),
        ],
        concurrency: 4,
        ..HookSettings::default()
    };
    let metrics = Arc::new(Metrics::default());
    let events = Events::new(Arc::clone(&metrics));
    start(&events, Arc::clone(&metrics), &settings).unwrap();
    for n in 0..20 {
        events.emit(|| count("live/cam", n));
    }
    events.emit(|| Event::ConnectionAccepted {
        id: 5,
        remote_addr: "127.0.0.1:1".parse().unwrap(),
    });
    events.emit(|| Event::LastPlayerLeft {
        key: "live/cam".into(),
    });
    let lines = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let mut want: Vec<String> = (0..20).map(|n| format!("subscriber_count {n}")).collect();
    want.push("connection_accept ".into());
    wait_until("every run", || {
        lines(&all).len() == want.len() && lines(&only).len() == 1
    });
    assert_eq!(lines(&all), want);
    assert_eq!(lines(&only), ["connection_accept 5"]);
    assert_eq!(metrics::get(&metrics.hooks_fired), 22);
    assert_eq!(metrics::get(&metrics.hooks_failed), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flood_is_dropped_and_counted_without_blocking() {
    let dir = std::env::temp_dir().join(format!("rtmp-hooks-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = HookSettings {
        hooks: vec![(
            EventFilter::All,
            HookTarget::Script(script(&dir, "slow.sh", "sleep 5")),
        )],
        timeout: Duration::from_secs(1),
        concurrency: 1,
        ..HookSettings::default()
    };
    let metrics = Arc::new(Metrics::default());
    let events = Events::new(Arc::clone(&metrics));
    start(&events, Arc::clone(&metrics), &settings).unwrap();
    let started = Instant::now();
    let flood = 5000;
    for n in 0..flood {
        events.emit(|| count("live/cam", n));
    }
    let emitting = started.elapsed();
    assert!(
        emitting < Duration::from_secs(10),
        "emitting took {emitting:?}"
    );
    wait_until("the flood handled", || {
        let seen = metrics::get(&metrics.hooks_dropped) + HOOK_QUEUE as u64 + 1;
        seen >= flood as u64
    });
    assert!(metrics::get(&metrics.hooks_dropped) >= (flood - HOOK_QUEUE - 1) as u64);
    wait_until("the first run timed out", || {
        metrics::get(&metrics.hooks_timed_out) >= 1
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
