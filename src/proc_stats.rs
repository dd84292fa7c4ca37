//! Process figures read from `/proc`: resident memory, thread count and
//! CPU time, of this process (for the status endpoint) or another (for the
//! benchmark's server under test). Zero where `/proc` is unavailable.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on
/// every mainstream Linux architecture).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub rss_bytes: u64,
    pub threads: u64,
    pub cpu_seconds: f64,
}

impl ProcessFigures {
    /// This process's figures.
    pub fn read() -> ProcessFigures {
        ProcessFigures::of(None)
    }

    /// The figures of process `pid`, or of this one for `None`.
    pub fn of(pid: Option<u32>) -> ProcessFigures {
        let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
        let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
        parse(&status, &stat)
    }

    pub fn cpu_time(&self) -> Duration {
        Duration::from_secs_f64(self.cpu_seconds)
    }
}

/// Summed CPU time of a set of processes (nginx may run several).
pub fn total_cpu(pids: &[u32]) -> Duration {
    pids.iter()
        .map(|&pid| ProcessFigures::of(Some(pid)).cpu_time())
        .sum()
}

/// Summed resident memory of a set of processes, in bytes.
pub fn total_rss(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|&pid| ProcessFigures::of(Some(pid)).rss_bytes)
        .sum()
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parse(status: &str, stat: &str) -> ProcessFigures {
    // Fields after the parenthesised command name, which may hold spaces:
    // utime and stime are fields 14 and 15 of the whole line.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ProcessFigures {
        rss_bytes: status_field(status, "VmRSS:").unwrap_or(0) * 1024,
        threads: status_field(status, "Threads:").unwrap_or(0),
        cpu_seconds: (ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\trtmp-server\nVmRSS:\t    5120 kB\nThreads:\t7\n";
        let stat = "1234 (rtmp server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0";
        let figures = parse(status, stat);
        assert_eq!(figures.rss_bytes, 5120 * 1024);
        assert_eq!(figures.threads, 7);
        assert_eq!(figures.cpu_seconds, 3.0);
        assert_eq!(parse("", ""), ProcessFigures::default());
    }

    #[test]
    fn reads_this_process() {
        let figures = ProcessFigures::read();
        assert!(figures.rss_bytes > 0 && figures.threads >= 1);
    }
}
