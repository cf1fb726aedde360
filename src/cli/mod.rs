//! Command-line parsing and dispatch; each subcommand lives in its own module.

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Refine weakly-supervised segmentation pseudo-labels with Segment Anything.
#[derive(Parser)]
#[command(name = "camsam", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speed figures (prints, never asserts).
    Bench(bench::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: camsam::Result<()> = match cli.command {
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
