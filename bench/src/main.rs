//! `spine-bench`: Spine's benchmark and load tool.
//!
//! Every figure is reported beside a raw baseline measured in the same run,
//! so results read as ratios on a shared, noisy machine.

use clap::{Parser, Subcommand};

mod compare;
mod load_bench;
mod mesh_http;
mod mesh_load;
mod nats_reply;
mod node_bench;
mod report;
mod request_bench;
mod service_mix;
mod sharded;
mod taken;
mod tally_key;
mod wal_bench;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "spine-bench",
    version,
    about = "Spine benchmarks and load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Group-commit WAL throughput and append-to-durable latency, beside raw write+fdatasync.
    Wal(wal_bench::WalArgs),
    /// In-process sends through a node: durable, memory-only, and the raw WAL figure.
    Node(node_bench::NodeArgs),
    /// End-to-end load against a running node over TCP, TLS, QUIC or the MESH API, beside raw loopback TCP.
    Load(load_bench::LoadArgs),
    /// PDS-style synchronous request/response over the native protocol, beside NATS request/reply and PING round trips.
    Request(request_bench::RequestArgs),
    /// Spine beside NATS JetStream, RabbitMQ and Redis on one durable workload (report.md, report.json, SVG charts).
    Compare(compare::CompareArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Wal(args) => wal_bench::run(args),
        Command::Node(args) => node_bench::run(args),
        Command::Load(args) => load_bench::run(args),
        Command::Request(args) => request_bench::run(args),
        Command::Compare(args) => compare::run(args),
    }
}
