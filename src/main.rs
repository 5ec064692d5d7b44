//! The `cairn` command: parses arguments and runs one command against the home's store.
//!
//! - `cli`: argument definitions;
//! - `backend`: where operations run: the running node's API, or the service on the store;
//! - `commands`: what each command does, by group;
//! - `demo`: `cairn demo`, three nodes with sample entries;
//! - `home`: the home directory, identity, keys and configuration;
//! - `render`: text and `--json` output;
//! - `editor`: writing an entry in `$EDITOR`;
//! - `client`: the client of a running node's local API;
//! - `node`: `cairn node`, which runs the daemon;
//! - `output`: standard output that ends quietly on a closed pipe.

mod backend;
mod backup;
mod cli;
mod client;
mod commands;
mod demo;
mod editor;
mod home;
mod node;
mod output;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit with 2 inside `parse`, after printing clap's explanation.
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, leaving out causes whose text the message already includes.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
