//! `spine-sim`: rehearse national peaks and fault drills, and plan capacity.
//!
//! Exit codes: 0 every invariant held; 1 bad usage or scenario; 2 an
//! invariant was violated (the report says which, with the seed and the
//! event); 3 the run itself failed (the node could not start, I/O).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spine_core::ErrorCode;
use spine_sim::run::{run, RunArgs};
use spine_sim::scenario::ScenarioError;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Spine's simulation harness.
#[derive(Debug, Parser)]
#[command(name = "spine-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario (deterministic from its seed, or live against a node).
    Run(RunArgs),
    /// Find this machine's sustainable rate within a p99 bound and size the
    /// platform for a target rate.
    Plan(spine_sim::plan::PlanArgs),
    /// Write a scenario's mailboxes and workflows as mesh-sandbox JSONL
    /// files and its service directory as TOML (every organisation
    /// accredited for PDS), for `spine serve --mailboxes … --workflows …
    /// --services-directory …` before a live run.
    Directory(DirectoryArgs),
}

/// `spine-sim directory` options.
#[derive(Debug, clap::Args)]
struct DirectoryArgs {
    /// The scenario file.
    scenario: std::path::PathBuf,
    /// The seed the live run will use (passwords depend on it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write mailboxes.jsonl, workflows.jsonl and services.toml.
    #[arg(long)]
    out: std::path::PathBuf,
}

/// Panics the scenario injects on purpose (`fault injection: ...`) are
/// part of the drill: one line each, not a backtrace. Any other panic is
/// reported in full.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if text.starts_with("fault injection") {
            eprintln!("spine-sim: injected: {text}");
        } else {
            default(info);
        }
    }));
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    quiet_injected_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spine-sim: error [SIM_RUNTIME]: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::Directory(args) => {
            let scenario = match spine_sim::scenario::Scenario::load(&args.scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("spine-sim: error [{}]: {e}", e.code());
                    return ExitCode::from(1);
                }
            };
            let population = spine_sim::model::population(&scenario, args.seed);
            let written = spine_sim::jsonl::write(&population, &args.out)
                .map_err(anyhow::Error::from)
                .and_then(|()| spine_sim::services::write(&population, &args.out));
            match written {
                Ok(services) => {
                    let dir = args.out.display();
                    println!(
                        "wrote {} mailboxes and their organisations' PDS accreditation to {dir}",
                        population.mailboxes.len()
                    );
                    println!(
                        "start the node with: spine serve --mailboxes {dir}/mailboxes.jsonl \
                         --workflows {dir}/workflows.jsonl --services-directory {}",
                        services.display()
                    );
                    println!(
                        "(or `[services] directory = \"{}\"` in its config file, or SPINE_SERVICES_DIRECTORY)",
                        services.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "spine-sim: error [SIM_DIRECTORY_WRITE]: cannot write into {}: {e:#}",
                        args.out.display()
                    );
                    ExitCode::from(3)
                }
            }
        }
        Command::Plan(args) => {
            if let Err(e) = args.validate() {
                eprintln!("spine-sim: error [{}]: {e}", e.code());
                return ExitCode::from(1);
            }
            let planned = runtime.block_on(spine_sim::plan::plan(&args));
            match planned.and_then(|report| {
                spine_sim::plan::write(&args.out, &report)?;
                Ok(report)
            }) {
                Ok(report) => {
                    println!("{}", report.conclusion);
                    println!("plan: {}", args.out.join("plan.md").display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("spine-sim: error [SIM_PLAN_FAILED]: {e:#}");
                    ExitCode::from(3)
                }
            }
        }
        Command::Run(args) => match runtime.block_on(run(&args)) {
            Ok(done) => {
                let o = &done.outcome;
                println!(
                    "{} seed {}: {} events in {:.1}s (virtual {:.0}s); sent {}, delivered {}, expired {}, reports {}, refused {}",
                    o.scenario,
                    o.seed,
                    o.events_processed,
                    o.wall_duration.as_secs_f64(),
                    o.virtual_duration.as_secs_f64(),
                    o.totals.sent,
                    o.totals.delivered,
                    o.totals.expired,
                    o.totals.reports,
                    o.totals.refused_total()
                );
                let svc = &o.totals.services;
                if svc.issued > 0 {
                    println!(
                        "service requests {}: answered {}, failed {}",
                        svc.issued,
                        svc.ok,
                        svc.failed_total()
                    );
                }
                println!("event_log_hash {}", o.event_log_hash);
                for inv in &o.invariants {
                    let mark = if inv.ok { "PASS" } else { "FAIL" };
                    match &inv.detail {
                        Some(d) => println!("{mark} {}: {d}", inv.name),
                        None => println!("{mark} {}", inv.name),
                    }
                }
                println!("report: {}", done.dir.join("report.md").display());
                if o.passed() {
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "spine-sim: an invariant was violated (seed {}); the last events:",
                        o.seed
                    );
                    for line in &done.tail {
                        eprintln!("  {line}");
                    }
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                let usage = e.downcast_ref::<ScenarioError>();
                let code = usage.map_or("SIM_RUN_FAILED", |s| s.code());
                eprintln!("spine-sim: error [{code}]: {e:#}");
                ExitCode::from(if usage.is_some() { 1 } else { 3 })
            }
        },
    }
}
