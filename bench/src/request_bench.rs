//! `spine-bench request`: PDS-style synchronous request/response over the
//! native protocol against a running node — throughput and p50/p99 of
//! `pds get` (interaction `QUPA_IN040000UK32`) for seeded patients, beside
//! the same connections' `PING` round trips (the protocol's own floor) in
//! the same run.
//!
//! Each client is one connection keeping `--window` requests in flight
//! (closed loop); latency is from issue to answer. Patients are drawn
//! round-robin from the first `--patients` synthetic NHS numbers, so the
//! node's seed must provide them (the default 1,000 does). A refused or
//! failed request is counted and fails the run: a benchmark of errors is
//! no benchmark.
//!
//! With `--send-every N` (default 32) a third phase mixes the two kinds of
//! Spine traffic in national proportions: every Nth operation is a 1 KiB
//! MESH-style message send (to X26ABC2 on `TEST_WORKFLOW`) instead of a
//! PDS request — Spine carries about 1.3 billion messages a month against
//! MESH's 40 million files, about 32 to 1 (`mesh-notes.md` §5.4).
//!
//! Beside them, in the same run and with the same clients, window and
//! patients, NATS request/reply: a core `nats-server` on loopback with
//! responders answering `pds.get` from the same reference PDS state
//! (`nats_reply`; what is and is not alike is said there). It runs right
//! after Spine's PDS phase so both see the same machine; `--no-nats` skips
//! it, and a missing `nats-server` is reported as "not run" with the
//! reason, not as a failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use spine_client::{Client, ClientConfig, Endpoint, RequestOptions};
use spine_core::ids::MailboxId;

use crate::nats_reply::{self, NatsReply};
use crate::report::{latency_histogram, Latency};
use crate::service_mix::{pds_get_bodies, INTERACTION};

/// `spine-bench request` options.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// native://HOST:PORT (or natives://, quic://)
    #[arg(long, default_value = "native://127.0.0.1:7701")]
    target: String,
    /// Client connections
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Requests in flight per connection
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Measured seconds (each of the request and the PING phases)
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Patients to spread requests over (the first N synthetic numbers)
    #[arg(long, default_value_t = 1000)]
    patients: usize,
    /// The calling mailbox (its organisation must be accredited for PDS)
    #[arg(long, default_value = "X26ABC1")]
    mailbox: String,
    /// Its password
    #[arg(long, default_value = "password")]
    password: String,
    /// CA certificate (PEM) for TLS and QUIC targets
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Skip the PING baseline
    #[arg(long)]
    no_baseline: bool,
    /// In the mixed phase, every Nth operation is a message send (0: no mixed phase)
    #[arg(long, default_value_t = 32)]
    send_every: u64,
    /// Write the JSON result here too
    #[arg(long)]
    json: Option<PathBuf>,
    /// nats-server binary for the NATS request/reply phase (default:
    /// target/compare-tools/nats/bin/nats-server, then PATH)
    #[arg(long, env = "NATS_SERVER")]
    nats_server: Option<PathBuf>,
    /// Responder connections answering NATS requests (a queue group)
    #[arg(long, default_value_t = 1)]
    nats_responders: usize,
    /// Skip the NATS request/reply phase
    #[arg(long)]
    no_nats: bool,
}

#[derive(Debug, Serialize)]
struct Phase {
    requests: u64,
    errors: u64,
    throughput_per_s: f64,
    latency_us: Latency,
}

#[derive(Debug, Serialize)]
struct Output {
    benchmark: &'static str,
    target: String,
    clients: usize,
    window: usize,
    seconds: f64,
    pds_get: Phase,
    /// NATS request/reply of the same PDS get, same clients and window.
    nats_request_reply: Option<Phase>,
    /// Why the NATS phase did not run.
    nats_not_run: Option<String>,
    /// `nats-server --version`.
    nats_version: Option<String>,
    nats_responders: usize,
    /// Spine's PDS throughput over NATS's.
    throughput_ratio_to_nats: Option<f64>,
    /// Spine's PDS p99 over NATS's (below 1: Spine's tail is shorter).
    p99_ratio_to_nats: Option<f64>,
    ping_baseline: Option<Phase>,
    /// Service requests and message sends mixed (one send every
    /// `send_every` operations); latency over both.
    mixed: Option<Phase>,
    send_every: u64,
}

pub fn run(args: RequestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.window > 0 && args.patients > 0 && args.seconds > 0.0,
        "--clients, --window, --patients and --seconds must be positive"
    );
    anyhow::ensure!(
        (1..=64).contains(&args.nats_responders),
        "--nats-responders must be 1 to 64"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let numbers = pds_get_bodies(args.patients);
        let mut clients = Vec::new();
        for _ in 0..args.clients {
            let mut config = ClientConfig::new(
                Endpoint::parse(&args.target)?,
                MailboxId::parse(&args.mailbox)?,
                &args.password,
            );
            config.client_name = "spine-bench/request".into();
            config.max_in_flight = args.window.max(1);
            config.tls.ca_file = args.ca.clone();
            clients.push(Client::connect(config).await.context("connecting")?);
        }
        let seconds = Duration::from_secs_f64(args.seconds);
        let pds = phase(&clients, args.window, seconds, {
            let numbers = Arc::clone(&numbers);
            move |client: Client, i: u64| {
                let body = numbers[(i as usize) % numbers.len()].clone();
                async move {
                    client
                        .request("pds", INTERACTION, body, RequestOptions::default())
                        .await
                        .map(|_| ())
                }
            }
        })
        .await?;
        anyhow::ensure!(pds.errors == 0, "{} PDS requests failed", pds.errors);
        let (nats, nats_not_run, nats_version) = if args.no_nats {
            (None, Some("--no-nats".to_owned()), None)
        } else {
            match nats_reply::binary(args.nats_server.as_deref()) {
                Err(why) => (None, Some(why), None),
                Ok(binary) => {
                    let (p, version) = nats_phase(&binary, &args, &numbers, seconds).await?;
                    anyhow::ensure!(p.errors == 0, "{} NATS requests failed", p.errors);
                    (Some(p), None, version)
                }
            }
        };
        let ping = if args.no_baseline {
            None
        } else {
            Some(
                phase(
                    &clients,
                    args.window,
                    seconds,
                    |client: Client, _| async move { client.ping().await.map(|_| ()) },
                )
                .await?,
            )
        };
        let mixed = if args.send_every == 0 {
            None
        } else {
            let every = args.send_every;
            let numbers = Arc::clone(&numbers);
            let recipient = MailboxId::parse("X26ABC2")?;
            let workflow = spine_core::ids::WorkflowId::parse("TEST_WORKFLOW")?;
            let message = Bytes::from(vec![b'x'; 1024]);
            let p = phase(
                &clients,
                args.window,
                seconds,
                move |client: Client, i: u64| {
                    let header =
                        spine_client::SendHeader::simple(recipient.clone(), workflow.clone());
                    let message = message.clone();
                    let body = numbers[(i as usize) % numbers.len()].clone();
                    async move {
                        if i.is_multiple_of(every) {
                            client.send(header, message).await.map(|_| ())
                        } else {
                            client
                                .request(
                                    "pds",
                                    INTERACTION,
                                    body,
                                    RequestOptions::default(),
                                )
                                .await
                                .map(|_| ())
                        }
                    }
                },
            )
            .await?;
            anyhow::ensure!(p.errors == 0, "{} mixed operations failed", p.errors);
            Some(p)
        };
        let out = Output {
            benchmark: "request",
            target: args.target.clone(),
            clients: args.clients,
            window: args.window,
            seconds: args.seconds,
            throughput_ratio_to_nats: nats
                .as_ref()
                .map(|n| pds.throughput_per_s / n.throughput_per_s.max(f64::MIN_POSITIVE)),
            p99_ratio_to_nats: nats
                .as_ref()
                .map(|n| pds.latency_us.p99 as f64 / n.latency_us.p99.max(1) as f64),
            pds_get: pds,
            nats_request_reply: nats,
            nats_not_run,
            nats_version,
            nats_responders: args.nats_responders,
            ping_baseline: ping,
            mixed,
            send_every: args.send_every,
        };
        println!(
            "pds get: {:.0} req/s, p50 {} µs, p99 {} µs ({} requests)",
            out.pds_get.throughput_per_s,
            out.pds_get.latency_us.p50,
            out.pds_get.latency_us.p99,
            out.pds_get.requests
        );
        match (&out.nats_request_reply, &out.nats_not_run) {
            (Some(n), _) => println!(
                "NATS request/reply ({} responder(s)): {:.0} req/s, p50 {} µs, p99 {} µs; Spine/NATS throughput {:.2}×, p99 {:.2}×",
                out.nats_responders,
                n.throughput_per_s,
                n.latency_us.p50,
                n.latency_us.p99,
                out.throughput_ratio_to_nats.unwrap_or(0.0),
                out.p99_ratio_to_nats.unwrap_or(0.0),
            ),
            (None, Some(why)) => println!("NATS request/reply: not run ({why})"),
            (None, None) => {}
        }
        if let Some(p) = &out.ping_baseline {
            println!(
                "PING baseline: {:.0} req/s, p50 {} µs, p99 {} µs",
                p.throughput_per_s, p.latency_us.p50, p.latency_us.p99
            );
        }
        if let Some(m) = &out.mixed {
            println!(
                "mixed (1 send per {} operations): {:.0} ops/s, p50 {} µs, p99 {} µs",
                out.send_every, m.throughput_per_s, m.latency_us.p50, m.latency_us.p99
            );
        }
        let json = serde_json::to_string_pretty(&out)?;
        println!("{json}");
        if let Some(path) = &args.json {
            std::fs::write(path, json)?;
        }
        anyhow::Ok(())
    })
}

/// The NATS request/reply phase: starts the server and responders,
/// measures, stops them; answers the phase and the server's version.
async fn nats_phase(
    binary: &std::path::Path,
    args: &RequestArgs,
    numbers: &Arc<Vec<Bytes>>,
    seconds: Duration,
) -> anyhow::Result<(Phase, Option<String>)> {
    let nats = NatsReply::start(binary, args.nats_responders, args.patients).await?;
    let clients = nats.clients(args.clients).await?;
    let numbers = Arc::clone(numbers);
    let measured = phase(
        &clients,
        args.window,
        seconds,
        move |client: async_nats::Client, i: u64| {
            let body = numbers[(i as usize) % numbers.len()].clone();
            async move {
                let reply = client
                    .request(nats_reply::SUBJECT, body)
                    .await
                    .map_err(|e| e.to_string())?;
                if reply.payload.starts_with(nats_reply::ERROR_PREFIX) {
                    return Err(String::from_utf8_lossy(&reply.payload).into_owned());
                }
                Ok(())
            }
        },
    )
    .await;
    let version = nats.version().map(str::to_owned);
    drop(clients);
    nats.stop();
    Ok((measured?, version))
}

/// Runs `call` on every connection with `window` in flight for `seconds`.
async fn phase<C, F, Fut, E>(
    clients: &[C],
    window: usize,
    seconds: Duration,
    call: F,
) -> anyhow::Result<Phase>
where
    C: Clone + Send + Sync + 'static,
    F: Fn(C, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + seconds;
    let mut tasks = Vec::new();
    for client in clients {
        let client = client.clone();
        let call = call.clone();
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut hist = latency_histogram()?;
            let mut errors = 0u64;
            let mut in_flight = FuturesUnordered::new();
            let issue = |i: u64| {
                let fut = call(client.clone(), i);
                async move {
                    let t = Instant::now();
                    let r = fut.await;
                    (t.elapsed(), r)
                }
            };
            for _ in 0..window {
                in_flight.push(issue(counter.fetch_add(1, Ordering::Relaxed)));
            }
            while let Some((took, result)) = in_flight.next().await {
                match result {
                    Ok(()) => {
                        hist.record(took.as_micros().max(1) as u64)?;
                    }
                    Err(_) => errors += 1,
                }
                if Instant::now() < deadline {
                    in_flight.push(issue(counter.fetch_add(1, Ordering::Relaxed)));
                }
            }
            anyhow::Ok((hist, errors))
        }));
    }
    let mut all: Histogram<u64> = latency_histogram()?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        all.add(&h)?;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Phase {
        requests: all.len(),
        errors,
        throughput_per_s: all.len() as f64 / elapsed,
        latency_us: Latency::from_hist(&all),
    })
}
