//! The `spine` command: `spine serve` runs a node, `spine wal inspect`
//! verifies a log read-only, `spine certs dev` writes development
//! certificates.
//!
//! Invariants:
//! - Every outcome maps to one documented exit status (`spine --help`):
//!   0 ok, 1 usage/config, 2 storage refused, 3 runtime failure, 4 torn
//!   tail only (`wal inspect`). Clap's own usage errors exit 1 too.
//! - Fatal errors are printed once to stderr as `spine: error [CODE]: ...`;
//!   stdout carries only command output.
//! - Nothing reachable from input panics.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod certs;
mod cli;
mod client_cmd;
mod config;
mod directory;
mod exit;
mod inspect;
mod logging;
mod serve;
mod service_cmd;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, WalCommand};
use crate::client_cmd::ClientCommand;
use crate::exit::Exit;
use crate::service_cmd::ServiceCommand;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors exit 1.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    let result = match &cli.command {
        Command::Serve(args) => serve::run(args, &config::process_env),
        Command::Wal {
            command: WalCommand::Inspect(args),
        } => inspect::run(args),
        Command::Certs { command } => certs::run(command),
        Command::Send(a) => client_cmd::run(ClientCommand::Send(a), &config::process_env),
        Command::Inbox(a) => client_cmd::run(ClientCommand::Inbox(a), &config::process_env),
        Command::Get(a) => client_cmd::run(ClientCommand::Get(a), &config::process_env),
        Command::Ack(a) => client_cmd::run(ClientCommand::Ack(a), &config::process_env),
        Command::Track(a) => client_cmd::run(ClientCommand::Track(a), &config::process_env),
        Command::Lookup(a) => client_cmd::run(ClientCommand::Lookup(a), &config::process_env),
        Command::Watch(a) => client_cmd::run(ClientCommand::Watch(a), &config::process_env),
        Command::Request(a) => service_cmd::run(ServiceCommand::Request(a), &config::process_env),
        Command::Pds { command } => {
            service_cmd::run(ServiceCommand::Pds(command), &config::process_env)
        }
        Command::Scr { command } => {
            service_cmd::run(ServiceCommand::Scr(command), &config::process_env)
        }
        Command::Eps { command } => {
            service_cmd::run(ServiceCommand::Eps(command), &config::process_env)
        }
        Command::Provide(a) => service_cmd::run(ServiceCommand::Provide(a), &config::process_env),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            // Not `eprintln!`: it panics if stderr is a closed pipe.
            let _ = writeln!(std::io::stderr(), "{}", failure.line());
            failure.exit.into()
        }
    }
}
