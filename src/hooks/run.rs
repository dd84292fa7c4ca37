//! Running one hook for one event: a script (its own process group, the
//! `RTMP_*` variables, the JSON on stdin, killed with its children at the
//! timeout) or a webhook (a JSON POST, retried when the connection fails,
//! abandoned at the timeout).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use super::payload::Payload;
use crate::auth::callback::describe;

/// Retries of a webhook whose connection failed, and the pause before
/// each.
const WEBHOOK_RETRIES: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

/// How a hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    TimedOut,
}

/// Runs `script` for `payload`, for at most `timeout`. Its output goes to
/// the server's standard error (standard output carries
/// `-hook-stdio-format` events).
pub fn run_script(script: &Path, payload: &Payload, timeout: Duration) -> Outcome {
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    };
    let spawned = Command::new(script)
        .envs(payload.env_vars())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Outcome::Failed(format!("cannot start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A script that does not read its input may have exited already.
        let _ = stdin.write_all(payload.to_json().as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    match child.wait_timeout(timeout) {
        Ok(Some(status)) if status.success() => Outcome::Done,
        Ok(Some(status)) => Outcome::Failed(format!("exited with {status}")),
        Ok(None) => {
            // The whole group: a shell script's children too.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            Outcome::TimedOut
        }
        Err(e) => Outcome::Failed(format!("cannot wait for it: {e}")),
    }
}

/// POSTs `payload` to `url`; a connection failure is retried while time
/// is left.
pub fn post_webhook(
    agent: &ureq::Agent,
    url: &str,
    payload: &Payload,
    timeout: Duration,
) -> Outcome {
    let body = payload.to_json();
    let deadline = Instant::now() + timeout;
    let mut retries = WEBHOOK_RETRIES.iter();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::TimedOut;
        }
        let sent = agent
            .post(url)
            .config()
            .timeout_global(Some(left))
            .build()
            .content_type("application/json")
            .send(body.as_str());
        let error = match sent {
            Ok(response) if response.status().is_success() => return Outcome::Done,
            Ok(response) => return Outcome::Failed(format!("answered {}", response.status())),
            Err(ureq::Error::Timeout(_)) => return Outcome::TimedOut,
            Err(e) => e,
        };
        let retry = matches!(
            error,
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) | ureq::Error::HostNotFound
        );
        match retries.next() {
            Some(pause) if retry && Instant::now() + *pause < deadline => {
                std::thread::sleep(*pause)
            }
            _ => return Outcome::Failed(describe(&error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::events::Event;
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    fn payload() -> Payload {
        let event = Event::SubscriberCount {
            key: "live/cam".into(),
            count: 2,
        };
        Payload::from_event(&event, SystemTime::now()).unwrap()
    }

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_webhook_is_retried_when_its_connection_fails() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        // The receiver comes up only after the first attempt failed.
        let receiver = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let server = tiny_http::Server::http(addr).unwrap();
            let mut request = server.recv().unwrap();
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            request.respond(tiny_http::Response::empty(204)).unwrap();
            body
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let url = format!("http://{addr}/hook");
        let outcome = post_webhook(&agent, &url, &payload(), Duration::from_secs(10));
        assert_eq!(outcome, Outcome::Done);
        let body: serde_json::Value = serde_json::from_str(&receiver.join().unwrap()).unwrap();
        assert_eq!(body["type"], "subscriber_count");
        // Nobody there at all: failed after the retries, within the time.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nobody = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let started = Instant::now();
        let outcome = post_webhook(&agent, &nobody, &payload(), Duration::from_secs(10));
        assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_script_gets_variables_and_json_and_a_hanging_one_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("rtmp-hook-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let ok = script(
            &dir,
            "ok.sh",
            &format!(
                "{{ echo \"$RTMP_EVENT_TYPE $RTMP_COUNT\"; cat; }} > {}",
                out.display()
            ),
        );
        assert_eq!(
            run_script(&ok, &payload(), Duration::from_secs(10)),
            Outcome::Done
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("subscriber_count 2\n{"), "{text}");
        let failing = script(&dir, "fail.sh", "exit 3");
        assert!(matches!(
            run_script(&failing, &payload(), Duration::from_secs(10)),
            Outcome::Failed(_)
        ));
        let pid_file = dir.join("pid");
        let hanging = script(
            &dir,
            "hang.sh",
            &format!("sleep 1000 & echo $! > {}; wait", pid_file.display()),
        );
        let started = Instant::now();
        let outcome = run_script(&hanging, &payload(), Duration::from_millis(500));
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
        let child: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background `sleep` goes with the script (a zombie at most,
        // until init reaps it).
        let gone = || {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z ")
        };
        let waited = Instant::now();
        while !gone() && waited.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(), "the script's child outlived it");
        let missing = dir.join("missing.sh");
        assert!(matches!(
            run_script(&missing, &payload(), Duration::from_secs(1)),
            Outcome::Failed(_)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
