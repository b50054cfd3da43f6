//! `rallypoint-loadgen`: one client that measures every server of the benchmark the same way
//! (docs/LOADGEN.md). It opens N WebSocket clients (drivers, observers and, for Rallypoint, one
//! admin), sends emergency reports at a set rate, and measures for every `emergency_event` the
//! time from its report's send to its receipt at each client, and each report's time to its
//! `ack`; with `--flood N`, N more clients attack the server meanwhile, unmeasured.
//!
//! It prints a progress line to stderr once a second, the table on stdout, and with `--json` the
//! same results as JSON. Exit codes: 0 a clean run (every event delivered, every report acked,
//! no connection lost), 3 a run that finished with events missing or reports refused, 1 a run
//! that could not be done, 2 bad arguments.

mod cli;
mod client;
mod error;
mod flood;
mod http;
mod net;
mod rallypoint;
mod rallypoint_sio;
mod run;
mod socketio;
mod summary;
mod sys;
mod tally;

use clap::Parser;
use error::LoadgenError;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("rallypoint-loadgen: {e}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(clean) if clean => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(3),
        Err(e) => {
            eprintln!("rallypoint-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Does the run; answers whether it was clean.
fn run(args: &cli::Args) -> Result<bool, LoadgenError> {
    let (old, limit) = sys::raise_file_limit()?;
    if old < limit {
        eprintln!("loadgen: open-file limit raised from {old} to {limit} (the hard limit)");
    } else {
        eprintln!("loadgen: open-file limit {limit} (already the hard limit)");
    }
    let wanted = (args.clients + args.flood) as u64 + 64;
    if wanted > limit {
        return Err(LoadgenError::FileLimit(format!(
            "{} clients need about {wanted} open files, the hard limit is {limit}: \
             split the clients over several loadgen processes",
            args.clients
        )));
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.build().map_err(LoadgenError::Runtime)?;
    let summary = runtime.block_on(run::run(args, limit))?;
    print!("{}", summary.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary).expect("a summary serializes");
        std::fs::write(path, text + "\n").map_err(|err| LoadgenError::WriteJson {
            path: path.clone(),
            err,
        })?;
        eprintln!("loadgen: results written to {path}");
    }
    if !summary.is_clean() {
        eprintln!(
            "loadgen: NOT CLEAN: {} events missing, {} reports refused, {} unanswered, {} not sent, {} connections dropped, {} flood connections dropped",
            summary.events_missing,
            summary.reports_refused,
            summary.reports_unanswered,
            summary.reports_not_sent,
            summary.connections_dropped,
            summary.flood_connections_dropped
        );
    }
    Ok(summary.is_clean())
}
