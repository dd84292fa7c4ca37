//! The `rtmp-server` binary: parse flags, set up logging, the open-files
//! limit and signals, run.

use std::process::ExitCode;

use rtmp_server::cli::{self, Invocation};
use rtmp_server::server::Server;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// File descriptors a connection uses (its socket).
const FDS_PER_CONNECTION: u64 = 1;
/// File descriptors the server needs besides its connections: listeners,
/// the HTTP endpoint's connections, standard streams, files.
const FDS_RESERVED: u64 = 64;

/// Raises the soft limit of open files to the hard limit (as Go's runtime
/// does: a default soft limit of 1024 would cap the server at about 1000
/// connections), and warns once if `-max-connections` still cannot fit.
fn raise_open_files_limit(max_connections: usize) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            log::warn!("cannot raise the open files limit: {e}");
            return;
        }
    };
    let needed = max_connections as u64 * FDS_PER_CONNECTION + FDS_RESERVED;
    if needed > limit {
        log::warn!(
            "-max-connections {max_connections} needs about {needed} open files, \
             but the limit is {limit} (raise it with ulimit -n or LimitNOFILE=)"
        );
    } else {
        log::debug!("open files limit: {limit}");
    }
}

fn init_logging(level: Option<log::LevelFilter>) {
    let mut builder = match level {
        Some(level) => {
            let mut builder = env_logger::Builder::new();
            builder.filter_level(level);
            builder
        }
        None => env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")),
    };
    builder.format_target(false).init();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, log_level) = match cli::parse("rtmp-server", &args) {
        Ok(Invocation::Run { config, log_level }) => (config, log_level),
        Ok(Invocation::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(log_level);
    raise_open_files_limit(config.max_connections);
    let listen = config.listen;
    let config_metrics_addr = config.metrics_addr;
    let api_access = rtmp_server::http::ApiAccess {
        token: config.api_token.clone(),
        guard_reads: config.api_read_auth,
    };
    let server = match Server::bind(*config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("rtmp-server: cannot listen on {listen} (flag -listen): {e}");
            return ExitCode::from(2);
        }
    };
    let handle = server.handle();
    if let Some(addr) = config_metrics_addr
        && let Err(e) = rtmp_server::http::spawn(addr, handle.clone(), api_access)
    {
        eprintln!("rtmp-server: cannot serve metrics on {addr} (flag -metrics-addr): {e}");
        return ExitCode::from(2);
    }
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("rtmp-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = 0;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    log::info!("SIGHUP received: reloading");
                    handle.reload();
                    continue;
                }
                if signal == SIGUSR1 {
                    log::info!("SIGUSR1 received: asking clients to reconnect");
                    handle.request_reconnect();
                    continue;
                }
                received += 1;
                if received > 1 {
                    log::warn!("second signal {signal}: exiting at once");
                    std::process::exit(1);
                }
                log::info!("signal {signal} received");
                handle.shutdown();
            }
        });
    if let Err(e) = spawned {
        eprintln!("rtmp-server: cannot start the signal thread: {e}");
        return ExitCode::FAILURE;
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
