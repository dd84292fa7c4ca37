//! `rtmp-bench`: the load client of `scripts/bench.sh`, and a micro-benchmark
//! of the protocol core.
//!
//! - `rtmp-bench run -url rtmp://127.0.0.1:1935/live/bench -flv FILE -players 100 -label ours -server-pid PID`
//!   publishes FILE in real time, plays it with N players (multiplexed on
//!   a few threads, or `-client-mode threads`: one thread each) and prints
//!   one JSON line of figures (append it to a file for `report`).
//! - `rtmp-bench idle -url rtmp://127.0.0.1:1935/live -connections 1000 -server-pid PID`
//!   measures the memory and file descriptors of idle connections.
//! - `rtmp-bench report FILE` prints the tables and the ratios.
//! - `rtmp-bench micro` measures chunk encoding and decoding in MB/s.
//! - `rtmp-bench failover -url rtmp://127.0.0.1:1935/live/show -api http://127.0.0.1:8080 -token T`
//!   measures what a player of a `-source` stream sees at a failover, a
//!   manual switch and an on-demand pull (see `scripts/failover-bench.sh`).

use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
mod failover;
mod idle;
mod load;
mod micro;
mod mux;
mod report;

use load::RunSpec;
use report::ClientMode;
use rtmp_server::protocol::url::RtmpUrl;

/// RTMP load benchmark.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Run(RunArgs),
    Idle(IdleArgs),
    Report(ReportArgs),
    Micro(MicroArgs),
    Failover(FailoverArgs),
}

/// time what a player of a -source stream sees when its input changes
#[derive(FromArgs)]
#[argh(subcommand, name = "failover")]
struct FailoverArgs {
    /// rtmp://HOST:PORT/APP/NAME of a stream fed by NAME.main,NAME.backup
    #[argh(option)]
    url: String,
    /// http://HOST:PORT of the server's API
    #[argh(option)]
    api: String,
    /// the API token
    #[argh(option)]
    token: String,
    /// failovers and manual switches to time, each (default 10)
    #[argh(option, default = "10")]
    switches: usize,
    /// rtmp://HOST:PORT/APP/NAME of a stream pulled on demand
    /// (-pull-idle-timeout 0), to time its first frame
    #[argh(option)]
    pull_url: Option<String>,
}

/// publish an FLV file in real time and play it with N players
#[derive(FromArgs)]
#[argh(subcommand, name = "run")]
struct RunArgs {
    /// rtmp://HOST:PORT/APP/NAME of the server under test
    #[argh(option)]
    url: String,
    /// pre-encoded FLV file to publish, looped
    #[argh(option)]
    flv: String,
    /// number of players (default 10)
    #[argh(option, default = "10")]
    players: usize,
    /// mux: players multiplexed on a few threads; threads: a blocking
    /// thread per player (default mux)
    #[argh(option, default = "ClientMode::Mux")]
    client_mode: ClientMode,
    /// threads that multiplex the players in mux mode (default 1)
    #[argh(option, default = "1")]
    client_threads: usize,
    /// name for this server in the report (default ours)
    #[argh(option, default = "String::from(\"ours\")")]
    label: String,
    /// seconds of publishing before players join (default 3)
    #[argh(option, default = "3.0")]
    lead_in: f64,
    /// seconds between the players joining and the window (default 5)
    #[argh(option, default = "5.0")]
    warmup: f64,
    /// seconds of measurement (default 30)
    #[argh(option, default = "30.0")]
    window: f64,
    /// pid of a server process to measure (repeatable)
    #[argh(option)]
    server_pid: Vec<u32>,
}

/// open N connections that connect and sit idle; measure what they cost
#[derive(FromArgs)]
#[argh(subcommand, name = "idle")]
struct IdleArgs {
    /// rtmp://HOST:PORT/APP of the server under test
    #[argh(option)]
    url: String,
    /// number of connections (default 1000)
    #[argh(option, default = "1000")]
    connections: usize,
    /// name for this server in the report (default ours)
    #[argh(option, default = "String::from(\"ours\")")]
    label: String,
    /// longest wait, in seconds, for the server's open files to settle
    /// (default 10)
    #[argh(option, default = "10.0")]
    settle: f64,
    /// pid of a server process to measure (repeatable)
    #[argh(option)]
    server_pid: Vec<u32>,
}

/// print the table of results and ratios
#[derive(FromArgs)]
#[argh(subcommand, name = "report")]
struct ReportArgs {
    /// file of JSON lines written by `run`
    #[argh(positional)]
    file: String,
    /// label of our server (default ours)
    #[argh(option, default = "String::from(\"ours\")")]
    ours: String,
    /// label of the peer (default nginx-rtmp)
    #[argh(option, default = "String::from(\"nginx-rtmp\")")]
    peer: String,
}

/// chunk encode/decode throughput of the protocol core
#[derive(FromArgs)]
#[argh(subcommand, name = "micro")]
struct MicroArgs {
    /// seconds per measurement (default 2)
    #[argh(option, default = "2.0")]
    seconds: f64,
}

/// The application URL and the stream name of `rtmp://host:port/app/name`.
fn parse_url(url: &str) -> Option<(RtmpUrl, String)> {
    let url = RtmpUrl::parse(url).ok()?;
    let name = url.name.clone()?;
    Some((url, name))
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    match args.command {
        Command::Run(run) => {
            let Some((url, name)) = parse_url(&run.url) else {
                eprintln!("rtmp-bench: bad --url: want rtmp://host:port/app/name");
                return ExitCode::from(2);
            };
            let flv = match std::fs::read(&run.flv) {
                Ok(flv) => flv,
                Err(e) => {
                    eprintln!("rtmp-bench: cannot read {}: {e}", run.flv);
                    return ExitCode::from(2);
                }
            };
            let spec = RunSpec {
                label: run.label,
                url,
                name,
                flv,
                players: run.players,
                client_mode: run.client_mode,
                client_threads: run.client_threads.max(1),
                lead_in: Duration::from_secs_f64(run.lead_in),
                warmup: Duration::from_secs_f64(run.warmup),
                window: Duration::from_secs_f64(run.window),
                server_pids: run.server_pid,
            };
            match load::run(spec) {
                Ok(result) => {
                    for e in result.errors.iter().take(3) {
                        eprintln!("rtmp-bench: player error: {e}");
                    }
                    println!("{}", result.summary().to_json());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rtmp-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Idle(idle_args) => {
            let Ok(url) = RtmpUrl::parse(&idle_args.url) else {
                eprintln!("rtmp-bench: bad --url: want rtmp://host:port/app");
                return ExitCode::from(2);
            };
            let spec = idle::IdleSpec {
                label: idle_args.label,
                url,
                connections: idle_args.connections,
                server_pids: idle_args.server_pid,
                settle: Duration::from_secs_f64(idle_args.settle.max(0.0)),
            };
            match idle::run(&spec) {
                Ok(summary) => {
                    println!("{}", summary.to_json());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rtmp-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report(report_args) => {
            let text = match std::fs::read_to_string(&report_args.file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("rtmp-bench: cannot read {}: {e}", report_args.file);
                    return ExitCode::from(2);
                }
            };
            let values: Vec<serde_json::Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let runs: Vec<report::Summary> = values
                .iter()
                .filter_map(report::Summary::from_json)
                .collect();
            let idles: Vec<idle::IdleSummary> = values
                .iter()
                .filter_map(idle::IdleSummary::from_json)
                .collect();
            let (ours, peer) = (&report_args.ours, &report_args.peer);
            if !runs.is_empty() || idles.is_empty() {
                print!("{}", report::table(&runs, ours, peer));
            }
            if !idles.is_empty() {
                if !runs.is_empty() {
                    println!();
                }
                print!("{}", idle::table(&idles, ours, peer));
            }
            ExitCode::SUCCESS
        }
        Command::Failover(args) => {
            let (Some((url, name)), pull) = (
                parse_url(&args.url),
                args.pull_url.as_deref().map(parse_url),
            ) else {
                eprintln!("rtmp-bench: bad --url: want rtmp://host:port/app/name");
                return ExitCode::from(2);
            };
            let spec = failover::FailoverSpec {
                url,
                name,
                api: args.api.trim_end_matches('/').to_owned(),
                token: args.token,
                switches: args.switches.max(1),
                pull: pull.flatten(),
            };
            match failover::run(&spec) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rtmp-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Micro(micro) => {
            for t in micro::run(Duration::from_secs_f64(micro.seconds)) {
                println!("{:<34} {:>9.0} MB/s", t.name, t.megabytes_per_second);
            }
            ExitCode::SUCCESS
        }
    }
}
