//! The `rtmp-server` binary: parse flags, set up logging and signals, run.

use std::process::ExitCode;

use rtmp_server::cli::{self, Invocation};
use rtmp_server::server::Server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

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
    let listen = config.listen;
    let config_metrics_addr = config.metrics_addr;
    let api_token = config.api_token.clone();
    let server = match Server::bind(*config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("rtmp-server: cannot listen on {listen} (flag -listen): {e}");
            return ExitCode::from(2);
        }
    };
    let handle = server.handle();
    if let Some(addr) = config_metrics_addr
        && let Err(e) = rtmp_server::http::spawn(addr, handle.clone(), api_token)
    {
        eprintln!("rtmp-server: cannot serve metrics on {addr} (flag -metrics-addr): {e}");
        return ExitCode::from(2);
    }
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
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
