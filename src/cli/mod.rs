//! Command-line parsing and dispatch; each subcommand lives in its own module.

mod batch;
mod bench;
mod bench_sam;
mod everything;
mod merge;

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
    Merge(merge::Args),
    /// Measure speed on your data and print the figures (`camsam bench merge …`).
    Bench(bench::Args),
    /// Segment everything: SAM's automatic mask generator on one image, written as SAM's
    /// amg.py writes it (DIR/<i>.png + DIR/metadata.csv).
    Everything(everything::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: camsam::Result<()> = match cli.command {
        Command::Merge(args) => merge::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Everything(args) => everything::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
