//! `rtmp-bench failover`: what a player of a `-source` stream sees when its
//! input changes. Two paced publishers (25 fps, a keyframe a second, their
//! frames told apart by length) feed `NAME.main` and `NAME.backup`; one
//! player plays `NAME`. Measured, as the player sees it:
//! - failover: the main publisher's connection drops; the time from the
//!   last main frame to the first backup frame (includes the wait for the
//!   backup's keyframe);
//! - manual switch (`POST .../switch`): the time from the request to the
//!   first frame of the other input, and how much of it is more than the
//!   wait for that input's next keyframe;
//! - on-demand pull (`-pull-url`): the time from play to the first video
//!   frame when no pull is open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rtmp_server::protocol::message::type_id;
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::{Client, ClientError, ClientOptions};

const FRAME: Duration = Duration::from_millis(40);
const MAIN_LEN: usize = 1000;
const BACKUP_LEN: usize = 1200;

pub struct FailoverSpec {
    /// `rtmp://host:port/app/NAME` of the `-source` stream.
    pub url: RtmpUrl,
    pub name: String,
    /// `http://host:port` of its API, and the API token.
    pub api: String,
    pub token: String,
    pub switches: usize,
    /// A `-source` stream pulled on demand, to time its first frame.
    pub pull: Option<(RtmpUrl, String)>,
}

/// A paced publisher: when it sent each keyframe.
struct Paced {
    stop: Arc<AtomicBool>,
    keyframes: Arc<Mutex<Vec<Instant>>>,
    thread: JoinHandle<Result<(), ClientError>>,
}

fn client(url: &RtmpUrl) -> Result<Client, ClientError> {
    Client::connect(url, &ClientOptions::default())
}

fn frame(n: u32, len: usize) -> Vec<u8> {
    let mut v = vec![
        if n.is_multiple_of(25) { 0x17 } else { 0x27 },
        0x01,
        0,
        0,
        0,
    ];
    v.resize(len, (n % 251) as u8);
    v
}

impl Paced {
    fn start(url: &RtmpUrl, name: &str, len: usize) -> Result<Paced, ClientError> {
        let mut publisher = client(url)?;
        publisher.publish(name)?;
        let stop = Arc::new(AtomicBool::new(false));
        let keyframes = Arc::new(Mutex::new(Vec::new()));
        let (flag, sent) = (Arc::clone(&stop), Arc::clone(&keyframes));
        let thread = thread::spawn(move || {
            let header = [
                0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f,
            ];
            publisher.send_video(0, &header)?;
            let started = Instant::now();
            let mut n = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let due = started + FRAME * n;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                if n.is_multiple_of(25) {
                    sent.lock().push(Instant::now());
                }
                publisher.send_video(n * 40, &frame(n, len))?;
                n += 1;
            }
            Ok(())
        });
        Ok(Paced {
            stop,
            keyframes,
            thread,
        })
    }

    /// Stops; dropping the client closes its connection.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }

    /// The first keyframe sent at or after `t`.
    fn keyframe_after(&self, t: Instant) -> Option<Instant> {
        self.keyframes.lock().iter().copied().find(|k| *k >= t)
    }
}

/// Video frames a player got: arrival and payload length.
type Arrivals = Arc<Mutex<Vec<(Instant, usize)>>>;

fn watch(url: &RtmpUrl, name: &str, stop: Arc<AtomicBool>) -> Result<Arrivals, ClientError> {
    let mut player = client(url)?;
    player.play(name)?;
    player.set_read_timeout(Duration::from_millis(200));
    let seen: Arrivals = Arc::default();
    let out = Arc::clone(&seen);
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match player.read_message() {
                Ok(m) if m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1) => {
                    out.lock().push((Instant::now(), m.payload.len()))
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
    });
    Ok(seen)
}

/// Waits for the player's first frame of input length `len` after index
/// `from`; its arrival, and the arrival of the frame before it.
fn wait_frame(seen: &Arrivals, len: usize, from: usize) -> Result<(Instant, Instant), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        {
            let seen = seen.lock();
            if let Some(at) = (from.max(1)..seen.len()).find(|&i| seen[i].1 == len) {
                return Ok((seen[at].0, seen[at - 1].0));
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    Err(format!("no frame of length {len} within 20 s"))
}

fn post(spec: &FailoverSpec, input: usize) -> Result<(), String> {
    let url = format!(
        "{}/api/streams/{}/{}/switch?input={input}",
        spec.api, spec.url.app, spec.name
    );
    ureq::post(&url)
        .header("Authorization", &format!("Bearer {}", spec.token))
        .send_empty()
        .map(|_| ())
        .map_err(|e| format!("POST {url}: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `p50 / max` of durations in milliseconds.
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let p50 = values.get(values.len() / 2).copied().unwrap_or(0.0);
    let max = values.last().copied().unwrap_or(0.0);
    format!("p50 {p50:.0} ms, max {max:.0} ms (n = {})", values.len())
}

/// Publishes the main input again, once the server has let go of the
/// last connection.
fn start_again(url: &RtmpUrl, name: &str) -> Result<Paced, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Paced::start(url, name, MAIN_LEN) {
            Ok(paced) => return Ok(paced),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

pub fn run(spec: &FailoverSpec) -> Result<(), String> {
    let e = |e: ClientError| e.to_string();
    let main_name = format!("{}.main", spec.name);
    let backup =
        Paced::start(&spec.url, &format!("{}.backup", spec.name), BACKUP_LEN).map_err(e)?;
    let mut main = Paced::start(&spec.url, &main_name, MAIN_LEN).map_err(e)?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = watch(&spec.url, &spec.name, Arc::clone(&stop)).map_err(e)?;
    wait_frame(&seen, MAIN_LEN, 0)?;

    let mut failovers = Vec::new();
    for _ in 0..spec.switches {
        // At a random point of the backup's GOP.
        let jitter = getrandom::u32().unwrap_or(0) % 1000;
        thread::sleep(Duration::from_millis(1500 + u64::from(jitter)));
        let from = seen.lock().len();
        main.stop();
        let (first, before) = wait_frame(&seen, BACKUP_LEN, from)?;
        failovers.push(ms(first - before));
        let at = seen.lock().len();
        main = start_again(&spec.url, &main_name)?;
        wait_frame(&seen, MAIN_LEN, at)?;
    }
    let mut manual = Vec::new();
    let mut beyond_keyframe = Vec::new();
    for n in 0..spec.switches {
        let jitter = getrandom::u32().unwrap_or(0) % 1000;
        thread::sleep(Duration::from_millis(700 + u64::from(jitter)));
        let (input, len, paced) = match n % 2 {
            0 => (1, BACKUP_LEN, &backup),
            _ => (0, MAIN_LEN, &main),
        };
        let from = seen.lock().len();
        let asked = Instant::now();
        post(spec, input)?;
        let (first, _) = wait_frame(&seen, len, from)?;
        manual.push(ms(first - asked));
        if let Some(key) = paced.keyframe_after(asked) {
            beyond_keyframe.push(ms(first.saturating_duration_since(key)));
        }
    }
    post(spec, 0).ok();
    stop.store(true, Ordering::Relaxed);
    println!(
        "failover (publisher gone), gap between frames at the player: {}",
        spread(failovers)
    );
    println!("manual switch, request to first frame: {}", spread(manual));
    println!(
        "manual switch, first frame after the new input's keyframe was sent: {}",
        spread(beyond_keyframe)
    );
    if let Some((url, name)) = &spec.pull {
        let mut firsts = Vec::new();
        for _ in 0..spec.switches {
            let asked = Instant::now();
            let mut player = client(url).map_err(e)?;
            player.play(name).map_err(e)?;
            loop {
                let m = player.read_message().map_err(e)?;
                if m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1) {
                    break;
                }
            }
            firsts.push(ms(asked.elapsed()));
            drop(player);
            // -pull-idle-timeout 0: the pull closes as the player leaves.
            thread::sleep(Duration::from_millis(500));
        }
        println!(
            "on-demand pull, play to first video frame: {}",
            spread(firsts)
        );
    }
    main.stop();
    backup.stop();
    Ok(())
}
