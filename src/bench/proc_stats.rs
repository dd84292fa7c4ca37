//! CPU time and resident memory of processes, read from `/proc`, for the
//! benchmark's figures of the server under test and of itself.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

fn stat_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// User plus system CPU time of a process (`None`: this one).
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let stat = std::fs::read_to_string(stat_path(pid, "stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / TICKS_PER_SECOND)
}

/// Resident memory of a process in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(stat_path(Some(pid), "status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Summed figures of a set of processes (nginx may run several).
pub fn total_cpu(pids: &[u32]) -> Duration {
    pids.iter().map(|&p| cpu_time(Some(p))).sum()
}

pub fn total_rss(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| rss(p)).sum()
}
