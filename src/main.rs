//! picd: the daemon of a personal internet cell. This file parses the command line, sets up
//! logging and hands over to the subcommand.

#![forbid(unsafe_code)]

mod app;
mod audit;
mod auth;
mod caddy;
mod cell;
mod cli;
mod client;
mod compose;
mod config;
mod connectivity;
mod db;
mod dns;
mod driver;
mod error;
mod files;
mod health;
mod logs;
mod peers;
mod routing;
mod serve;
mod services;
mod session_layer;
mod setup;
mod state;
mod time;
mod validation;
mod vault;
mod web;
mod wireguard;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("picd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
