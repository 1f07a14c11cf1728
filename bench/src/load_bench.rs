//! `spine-bench load`: end-to-end load over the native protocol (TCP, TLS
//! or QUIC) against a running node, with consumers that receive and
//! acknowledge, and a check that every acknowledged send is received once.
//! `--target mesh://` and `meshs://` drive the MESH REST API instead, with
//! the same workload shape and report (see `mesh_load`).
//!
//! Phases: for `--seconds` producers send (each one connection keeping up
//! to `--window` sends in flight) while consumers list, download and
//! acknowledge; then producers stop and consumers drain for at most
//! `--drain-seconds`. Throughput counts sends the node acknowledged during
//! the measured phase. Latency is send-to-acknowledgement: in `--rate`
//! mode measured from each send's *scheduled* time (so a stalled server
//! cannot hide its queueing: coordinated omission), in `--max` mode from
//! when the send was issued. Beside it, the same run measures raw loopback
//! TCP throughput (1 KiB writes through one connection, nothing else) as
//! the baseline.
//!
//! Verification: every message id the node acknowledged to a producer must
//! be received by a consumer (`lost` counts those that were not after the
//! drain); a message listed again after its consumer's acknowledgement
//! completed counts as a `duplicate`.

// The tallies hash every message's id (or key) a few times; SipHash's
// resistance to chosen keys buys nothing in a load generator and cost a
// fifth of its CPU, which the node under test would otherwise have had.
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use spine_client::{Client, ClientConfig, ClientError, Endpoint, TlsOptions};
use spine_core::ids::{MailboxId, MessageId, WorkflowId};
use spine_protocol::{BatchItem, Limits, SendHeader, SendOk, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::mesh_http::MeshTarget;
use crate::mesh_load;
use crate::report::{latency_histogram, Latency};
use crate::service_mix::{ServiceMix, ServiceReport, MAX_REQUESTS_PER_SEND};
use crate::sharded::ShardedMap;
use crate::taken::{Stamp, Taken, Ticket, IN_PROGRESS};
use crate::tally_key::{PackedId, TallyKey};

/// `spine-bench load` options.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// native://HOST:PORT, natives://HOST:PORT (TLS), quic://HOST:PORT, or
    /// the MESH REST API: mesh://HOST:PORT (HTTP/1.1), meshs://HOST:PORT (HTTPS)
    #[arg(long, default_value = "native://127.0.0.1:7701")]
    pub(crate) target: String,
    /// Producer connections
    #[arg(long, default_value_t = 4)]
    pub(crate) producers: usize,
    /// Consumers, one per mailbox: 0 (only send) or at least --mailboxes
    /// (more are capped at one per mailbox)
    #[arg(long, default_value_t = 3)]
    pub(crate) consumers: usize,
    /// Mailboxes to send between (the first N of --mailbox)
    #[arg(long, default_value_t = 3)]
    pub(crate) mailboxes: usize,
    /// Mailbox ids (repeat); default the demo directory's X26ABC1..3
    #[arg(long = "mailbox", value_name = "ID")]
    pub(crate) mailbox_ids: Vec<String>,
    /// Password of every mailbox
    #[arg(long, default_value = "password")]
    pub(crate) password: String,
    /// Workflow id of the messages
    #[arg(long, default_value = "SPINE_LOAD")]
    pub(crate) workflow: String,
    /// Message body size in bytes
    #[arg(long, default_value_t = 1024)]
    pub(crate) size: usize,
    /// Sends in flight per producer (MESH: keep-alive connections per
    /// producer, one request outstanding on each)
    #[arg(long, default_value_t = 256)]
    pub(crate) window: usize,
    /// Messages per SEND_BATCH frame (1: one SEND per message). The window
    /// still counts messages.
    #[arg(long, default_value_t = 1)]
    pub(crate) batch: usize,
    /// Most queued sends a native TCP connection packs into one SEND_BATCH
    /// (the client's `coalesce_sends`; 1: every message in its own SEND)
    #[arg(long, default_value_t = spine_client::DEFAULT_COALESCE_SENDS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) coalesce_sends: usize,
    /// Fixed total send rate (messages per second, open loop)
    #[arg(long, conflicts_with = "max")]
    pub(crate) rate: Option<f64>,
    /// Send as fast as the window allows (the default without --rate)
    #[arg(long)]
    pub(crate) max: bool,
    /// Measured seconds
    #[arg(long, default_value_t = 10.0)]
    pub(crate) seconds: f64,
    /// Most seconds consumers get to drain after producers stop
    #[arg(long, default_value_t = 60.0)]
    pub(crate) drain_seconds: f64,
    /// Skip the raw loopback TCP baseline
    #[arg(long)]
    pub(crate) no_baseline: bool,
    /// CA certificate (PEM) for TLS, QUIC and meshs:// targets
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Client certificate (PEM) when the server requires one
    #[arg(long)]
    pub(crate) cert: Option<PathBuf>,
    /// Client key (PEM)
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// Write the JSON result here too
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// MESH: the shared key of the NHSMESH Authorization token
    #[arg(long, default_value = "BackBone")]
    pub(crate) shared_key: String,
    /// MESH: keep-alive connections per consumer that download and
    /// acknowledge (its inbox listing has one more of its own)
    #[arg(long, default_value_t = 8)]
    pub(crate) consumer_connections: usize,
    /// MESH: milliseconds a consumer waits before listing its inbox again
    /// after a page that was not full
    #[arg(long, default_value_t = 100)]
    pub(crate) poll_ms: u64,
    /// Native targets: PDS get requests each producer makes per message it
    /// sends, in the same window (31: national proportions; 0: none)
    #[arg(long, default_value_t = 0)]
    pub(crate) requests_per_send: u32,
}

/// The JSON report, the same for every target.
#[derive(Debug, Serialize)]
pub(crate) struct Output {
    pub(crate) benchmark: &'static str,
    pub(crate) target: String,
    pub(crate) mode: &'static str,
    pub(crate) producers: usize,
    pub(crate) consumers: usize,
    pub(crate) mailboxes: usize,
    pub(crate) size: usize,
    pub(crate) window: usize,
    pub(crate) batch: usize,
    pub(crate) coalesce_sends: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) seconds: f64,
    pub(crate) throughput_msgs_per_s: f64,
    pub(crate) latency_us: Latency,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) send_errors: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) consumer_errors: u64,
    pub(crate) drain_s: f64,
    pub(crate) raw_tcp_msgs_per_s: Option<f64>,
    pub(crate) raw_tcp_mb_per_s: Option<f64>,
    /// Service requests mixed in (`--requests-per-send`).
    pub(crate) service: Option<ServiceReport>,
    pub(crate) first_errors: Vec<String>,
}

/// Shared tallies; `Id` is the target's message id (a native
/// [`MessageId`], or the MESH API's id text).
pub(crate) struct Tally<Id: TallyKey> {
    pub(crate) sent: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) consumer_errors: AtomicU64,
    /// Ids the node acknowledged (a `Vec`: a push per send is cheaper than
    /// a set insert, and the set is only needed for the final check).
    pub(crate) acked_ids: Mutex<Vec<Id>>,
    /// Ids received by the compare peers' and the MESH consumers (sharded
    /// like [`Taken`]: it grows to millions of entries).
    pub(crate) received_ids: Mutex<ShardedMap<Id, ()>>,
    /// Ids the native consumers have taken, keyed compactly
    /// ([`TallyKey`]), and when each one's acknowledgement completed (the
    /// time tells a stale listing from a duplicate). A message is in this
    /// table or in `received_ids`, never both: one table entry per
    /// message, as for the other consumers.
    pub(crate) taken: Mutex<Taken<Id::Key>>,
    /// What [`Stamp`]s count from.
    epoch: Instant,
    errors: Mutex<Vec<String>>,
}

impl<Id: TallyKey> Default for Tally<Id> {
    fn default() -> Self {
        Tally {
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
            acked_ids: Mutex::new(Vec::new()),
            received_ids: Mutex::new(ShardedMap::default()),
            taken: Mutex::new(Taken::default()),
            epoch: Instant::now(),
            errors: Mutex::new(Vec::new()),
        }
    }
}

impl<Id: TallyKey> Tally<Id> {
    /// Now, as a [`Stamp`].
    pub(crate) fn stamp(&self) -> Stamp {
        u64::try_from(self.epoch.elapsed().as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    pub(crate) fn error(&self, what: String) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < 10 {
            e.push(what);
        }
    }

    /// Acknowledged sends no consumer has received (yet).
    fn missing(&self) -> u64 {
        let acked = self.acked_ids.lock().unwrap_or_else(|p| p.into_inner());
        let received = self.received_ids.lock().unwrap_or_else(|p| p.into_inner());
        let taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let settled =
            |id: &Id| !taken.is_empty() && taken.state(&id.key()).is_some_and(|s| s != IN_PROGRESS);
        acked
            .iter()
            .filter(|id| !received.contains_key(id) && !settled(id))
            .count() as u64
    }

    /// Records `id` as received; false (and counted as a duplicate) when
    /// it already was.
    pub(crate) fn record_received(&self, id: Id) -> bool {
        let fresh = self
            .received_ids
            .lock()
            .map(|mut ids| ids.insert(id, ()).is_none())
            .unwrap_or(false);
        if fresh {
            self.received.fetch_add(1, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }
}

/// What a target's measured phase hands to [`finish`].
pub(crate) struct Measured {
    /// Send latencies, one sample per acknowledged message.
    pub(crate) hist: Histogram<u64>,
    /// Length of the measured phase, seconds.
    pub(crate) seconds: f64,
    /// Sends acknowledged during it.
    pub(crate) acked: u64,
}

/// Waits for the producers and merges their latencies into the measured
/// phase (at least `seconds` long).
pub(crate) async fn measure<Id: TallyKey>(
    producers: Vec<tokio::task::JoinHandle<anyhow::Result<Histogram<u64>>>>,
    start: Instant,
    seconds: f64,
    tally: &Tally<Id>,
) -> anyhow::Result<Measured> {
    let mut hist = latency_histogram()?;
    for t in producers {
        if let Ok(Ok(h)) = t.await {
            hist.add(&h)?;
        }
    }
    Ok(Measured {
        hist,
        seconds: start.elapsed().as_secs_f64().max(seconds),
        acked: tally.acked.load(Ordering::SeqCst),
    })
}

enum Target {
    Native(Endpoint),
    Mesh(MeshTarget),
}

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    anyhow::ensure!(args.window > 0, "--window must be at least 1");
    anyhow::ensure!(
        (1..=1024).contains(&args.batch) && args.batch <= args.window,
        "--batch must be 1 to 1024 and at most --window"
    );
    anyhow::ensure!(
        args.size > 0 && args.size <= 16 << 20,
        "--size must be 1 to 16777216"
    );
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(
        args.requests_per_send <= MAX_REQUESTS_PER_SEND,
        "--requests-per-send must be 0 to {MAX_REQUESTS_PER_SEND}"
    );
    if let Some(rate) = args.rate {
        anyhow::ensure!(
            rate > 0.0 && rate.is_finite(),
            "--rate must be a positive number"
        );
    }
    let mut ids = args.mailbox_ids.clone();
    if ids.is_empty() {
        ids = (1..=3).map(|i| format!("X26ABC{i}")).collect();
    }
    anyhow::ensure!(
        args.mailboxes >= 1 && args.mailboxes <= ids.len(),
        "--mailboxes must be 1 to the number of --mailbox ids ({})",
        ids.len()
    );
    let mailboxes: Vec<MailboxId> = ids
        .iter()
        .take(args.mailboxes)
        .map(|m| MailboxId::parse(m))
        .collect::<Result<_, _>>()?;
    // Every mailbox messages go to needs a consumer, or what goes to the
    // others can never be received and would be counted as lost.
    anyhow::ensure!(
        args.consumers == 0 || args.consumers >= mailboxes.len(),
        "--consumers {} would leave {} of the {} mailboxes without a consumer, and every message sent to them would be counted as lost: give --consumers {} (one per mailbox), lower --mailboxes to {}, or --consumers 0 to only send",
        args.consumers,
        mailboxes.len() - args.consumers,
        mailboxes.len(),
        mailboxes.len(),
        args.consumers,
    );
    let consumers = args.consumers.min(mailboxes.len());
    let workflow = WorkflowId::parse(&args.workflow)?;
    let target = match MeshTarget::parse(&args.target)? {
        Some(mesh) => {
            anyhow::ensure!(
                args.batch == 1,
                "--batch does not apply to MESH targets (one message per POST)"
            );
            anyhow::ensure!(
                args.consumer_connections > 0,
                "--consumer-connections must be at least 1"
            );
            anyhow::ensure!(
                args.requests_per_send == 0,
                "--requests-per-send needs a native target (service requests are not part of the MESH API)"
            );
            Target::Mesh(mesh)
        }
        None => Target::Native(Endpoint::parse(&args.target)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let output = runtime.block_on(async {
        let baseline = if args.no_baseline {
            None
        } else {
            Some(raw_tcp_baseline(args.size, Duration::from_secs(2)).await?)
        };
        let result = match target {
            Target::Native(endpoint) => {
                drive(&args, endpoint, mailboxes, consumers, workflow).await?
            }
            Target::Mesh(mesh) => {
                mesh_load::drive(&args, mesh, mailboxes, consumers, workflow).await?
            }
        };
        anyhow::Ok(Output {
            raw_tcp_msgs_per_s: baseline.map(|b| b.0),
            raw_tcp_mb_per_s: baseline.map(|b| b.1),
            ..result
        })
    })?;
    let text = serde_json::to_string_pretty(&output)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn config(
    args: &LoadArgs,
    endpoint: &Endpoint,
    mailbox: &MailboxId,
    window: usize,
) -> ClientConfig {
    ClientConfig {
        endpoint: endpoint.clone(),
        mailbox: mailbox.clone(),
        password: args.password.clone(),
        client_name: "spine-bench-load".to_string(),
        tls: TlsOptions {
            ca_file: args.ca.clone(),
            client_cert: args.cert.clone(),
            client_key: args.key.clone(),
            server_name: None,
        },
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(60),
        max_in_flight: window,
        coalesce_sends: args.coalesce_sends,
        limits: Limits::default(),
    }
}

pub(crate) async fn drive(
    args: &LoadArgs,
    endpoint: Endpoint,
    mailboxes: Vec<MailboxId>,
    consumers: usize,
    workflow: WorkflowId,
) -> anyhow::Result<Output> {
    let tally = Arc::new(Tally::<MessageId>::default());
    let body = Bytes::from(vec![0x5a; args.size]);
    let mut consumer_tasks = Vec::new();
    let consuming = Arc::new(AtomicBool::new(true));
    for mailbox in mailboxes.iter().take(consumers) {
        let client = Client::connect(config(args, &endpoint, mailbox, 64))
            .await
            .with_context(|| format!("consumer connection as {mailbox}"))?;
        consumer_tasks.push(tokio::spawn(consume(
            client,
            Arc::clone(&tally),
            Arc::clone(&consuming),
        )));
    }
    let mut producer_clients = Vec::new();
    for p in 0..args.producers {
        let me = &mailboxes[p % mailboxes.len()];
        let client = Client::connect(config(args, &endpoint, me, args.window))
            .await
            .with_context(|| format!("producer connection as {me}"))?;
        producer_clients.push(client);
    }
    let per_producer_rate = args.rate.map(|r| r / args.producers as f64);
    let mix = match args.requests_per_send {
        0 => None,
        k => Some(Arc::new(ServiceMix::new(k, 1_000)?)),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut producer_tasks = Vec::new();
    for (p, client) in producer_clients.into_iter().enumerate() {
        let recipients: Vec<MailboxId> = (0..mailboxes.len())
            .map(|k| mailboxes[(p + 1 + k) % mailboxes.len()].clone())
            .collect();
        producer_tasks.push(tokio::spawn(produce(
            client,
            recipients,
            workflow.clone(),
            body.clone(),
            Pace {
                window: args.window,
                batch: args.batch,
                rate: per_producer_rate,
                deadline,
            },
            mix.clone(),
            Arc::clone(&tally),
        )));
    }
    let measured = measure(producer_tasks, start, args.seconds, &tally).await?;
    let service = mix
        .as_ref()
        .map(|m| m.report(measured.seconds, measured.acked));
    Ok(Output {
        service,
        ..finish(
            args,
            mailboxes.len(),
            consumers,
            &tally,
            measured,
            &consuming,
            consumer_tasks,
        )
        .await
    })
}

/// After the measured phase, for every target: lets consumers drain until
/// every acknowledged send is received (or `--drain-seconds` pass), stops
/// them, counts what was lost, and builds the report.
pub(crate) async fn finish<Id: TallyKey>(
    args: &LoadArgs,
    mailboxes: usize,
    consumers: usize,
    tally: &Tally<Id>,
    measured: Measured,
    consuming: &AtomicBool,
    consumer_tasks: Vec<tokio::task::JoinHandle<()>>,
) -> Output {
    // Drain: wait until consumers have everything acknowledged, or time out.
    // The drain ends when that is seen, not once the consumer tasks have
    // stopped: stopping them (a consumer may be waiting out its re-list
    // pause) is teardown, not delivery, and would understate end-to-end
    // throughput by up to that pause.
    let drain_start = Instant::now();
    let drain_deadline = drain_start + Duration::from_secs_f64(args.drain_seconds);
    if consumers > 0 {
        loop {
            // The exact check walks every id under the consumers' lock, so
            // it runs only once the counts say it can succeed.
            let counted =
                tally.received.load(Ordering::SeqCst) >= tally.acked.load(Ordering::SeqCst);
            if counted && tally.missing() == 0 {
                break;
            }
            if Instant::now() >= drain_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(if counted { 500 } else { 5 })).await;
        }
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    consuming.store(false, Ordering::SeqCst);
    for t in consumer_tasks {
        let _ = t.await;
    }
    let lost = if consumers > 0 { tally.missing() } else { 0 };
    let first_errors = tally.errors.lock().map(|e| e.clone()).unwrap_or_default();
    Output {
        benchmark: "load",
        target: args.target.clone(),
        mode: if args.rate.is_some() { "rate" } else { "max" },
        producers: args.producers,
        consumers,
        mailboxes,
        size: args.size,
        window: args.window,
        batch: args.batch,
        coalesce_sends: args.coalesce_sends,
        rate: args.rate,
        seconds: args.seconds,
        throughput_msgs_per_s: measured.acked as f64 / measured.seconds,
        latency_us: Latency::from_hist(&measured.hist),
        sent: tally.sent.load(Ordering::SeqCst),
        acked: tally.acked.load(Ordering::SeqCst),
        send_errors: tally.send_errors.load(Ordering::SeqCst),
        received: tally.received.load(Ordering::SeqCst),
        lost,
        duplicates: tally.duplicates.load(Ordering::SeqCst),
        consumer_errors: tally.consumer_errors.load(Ordering::SeqCst),
        drain_s,
        raw_tcp_msgs_per_s: None,
        raw_tcp_mb_per_s: None,
        service: None,
        first_errors,
    }
}

/// How a producer paces itself.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Operations in flight (messages and mixed service requests).
    window: usize,
    /// Messages per frame.
    batch: usize,
    /// Messages per second, or as fast as the window allows.
    rate: Option<f64>,
    /// When issuing stops.
    deadline: Instant,
}

/// A producer's operation that completed.
enum Done {
    /// `n` messages issued at the instant, with their outcomes.
    Sent(
        Instant,
        u64,
        Result<Vec<Result<SendOk, WireError>>, ClientError>,
    ),
    /// A mixed service request issued at the instant.
    Requested(Instant, Result<Bytes, ClientError>),
}

/// One producer: up to `window` operations in flight until `deadline`,
/// messages in `batch`-message `SEND_BATCH` frames when `batch > 1`, and
/// with `mix` the service requests each send owes (see `service_mix`);
/// returns its send latency histogram (one sample per message). Every
/// operation is a future polled by this one task (no task per send: the
/// generator shares the machine with the node, so its own overhead is kept
/// small).
async fn produce(
    client: Client,
    recipients: Vec<MailboxId>,
    workflow: WorkflowId,
    body: Bytes,
    pace: Pace,
    mix: Option<Arc<ServiceMix>>,
    tally: Arc<Tally<MessageId>>,
) -> anyhow::Result<Histogram<u64>> {
    let Pace {
        window,
        batch,
        rate,
        deadline,
    } = pace;
    let mut hist = latency_histogram()?;
    let mut request_hist = latency_histogram()?;
    // Service requests owed by sends already issued, and when the last of
    // those sends was issued (their latency counts from then).
    let mut owed: u64 = 0;
    let mut owed_since = Instant::now();
    let mut acked_ids = Vec::new();
    let start = Instant::now();
    let mut i: u64 = 0;
    let mut in_flight = 0usize;
    let mut pending: FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send>>> =
        FuturesUnordered::new();
    loop {
        let now = Instant::now();
        if let Some(mix) = mix.as_ref().filter(|_| owed > 0) {
            if now < deadline && in_flight < window {
                let request = mix.request(&client);
                let issued = owed_since;
                pending.push(Box::pin(
                    async move { Done::Requested(issued, request.await) },
                ));
                owed -= 1;
                in_flight += 1;
                continue;
            }
        }
        // When the next batch is due (rate is per message).
        let due = match rate {
            Some(r) => start + Duration::from_secs_f64(i as f64 / r),
            None => now,
        };
        let issuing = due < deadline && now < deadline;
        if issuing && due <= now && in_flight + batch <= window {
            // In rate mode latency counts from when the send was due, so
            // waiting for the window counts too.
            let issued = if rate.is_some() { due } else { now };
            let header = |k: u64| {
                SendHeader::simple(
                    recipients[(i + k) as usize % recipients.len()].clone(),
                    workflow.clone(),
                )
            };
            let client = client.clone();
            let n = batch as u64;
            if batch == 1 {
                let (header, body) = (header(0), body.clone());
                pending.push(Box::pin(async move {
                    let r = client.send(header, body).await.map(|ok| vec![Ok(ok)]);
                    Done::Sent(issued, n, r)
                }));
            } else {
                let items: Vec<BatchItem> = (0..n)
                    .map(|k| BatchItem {
                        header: header(k),
                        body: body.clone(),
                    })
                    .collect();
                pending.push(Box::pin(async move {
                    Done::Sent(issued, n, client.send_batch(items).await)
                }));
            }
            tally.sent.fetch_add(n, Ordering::Relaxed);
            in_flight += batch;
            i += n;
            if let Some(mix) = &mix {
                owed += n * u64::from(mix.per_send);
                owed_since = issued;
            }
            continue;
        }
        if !issuing && pending.is_empty() {
            break;
        }
        let wake = if issuing && in_flight + batch <= window {
            due
        } else {
            deadline.max(now + Duration::from_secs(3600))
        };
        tokio::select! {
            Some(done) = pending.next(), if !pending.is_empty() => match done {
                Done::Requested(issued, result) => {
                    in_flight -= 1;
                    let us = issued.elapsed().as_micros() as u64;
                    if let Some(e) = mix.as_ref().and_then(|m| m.record(&mut request_hist, us, result)) {
                        tally.error(e);
                    }
                }
                Done::Sent(issued, n, result) => {
                    in_flight -= n as usize;
                    let us = (issued.elapsed().as_micros() as u64).max(1);
                    match result {
                        Ok(results) => {
                            for r in results {
                                match r {
                                    Ok(ok) => {
                                        let _ = hist.record(us);
                                        acked_ids.push(ok.message_id);
                                    }
                                    Err(e) => {
                                        tally.send_errors.fetch_add(1, Ordering::Relaxed);
                                        tally.error(format!("send: {e}"));
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            tally.send_errors.fetch_add(n, Ordering::Relaxed);
                            tally.error(format!("send: {e}"));
                        }
                    }
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    tally
        .acked
        .fetch_add(acked_ids.len() as u64, Ordering::Relaxed);
    if let Ok(mut ids) = tally.acked_ids.lock() {
        ids.extend(acked_ids);
    }
    if let Some(mix) = &mix {
        mix.merge(&request_hist);
    }
    Ok(hist)
}

/// How often a consumer re-lists its inbox to catch messages a push did
/// not announce (sent before it subscribed, or pushes it missed).
const RELIST_EVERY: Duration = Duration::from_millis(250);

/// Acknowledgements a consumer sends in one `ACKNOWLEDGE_BATCH`.
const ACK_BATCH: usize = 64;

/// Longest a consumer holds a part-filled acknowledgement batch waiting for
/// another push. Under load pushes come far faster and batches fill; at
/// the end of a burst the last messages are acknowledged this soon.
const ACK_FLUSH: Duration = Duration::from_millis(2);

/// One consumer: subscribes to pushes and downloads and acknowledges each
/// announced message (pipelined), re-listing its inbox every
/// [`RELIST_EVERY`] to catch any it was not told about, until told to
/// stop. A message listed by a listing that *started after* its
/// acknowledgement completed is a duplicate delivery; one listed by an
/// older listing is only stale and skipped.
async fn consume(client: Client, tally: Arc<Tally<MessageId>>, running: Arc<AtomicBool>) {
    // The shared table of taken ids (`Tally::taken`): message id ->
    // when its acknowledgement completed (IN_PROGRESS: not yet).
    let permits = Arc::new(Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    // Small bodies come with their pushes: no DOWNLOAD for those.
    let mut subscription = match client.subscribe_with_bodies(1024).await {
        Ok(s) => Some(s),
        Err(e) => {
            tally.error(format!("subscribe: {e}"));
            None
        }
    };
    let mut next_list = Instant::now();
    // Pages forward through a backlog; back to the start once it is empty.
    let mut cursor: Option<u64> = None;
    // The order key of the last push: pushes come in inbox order (a
    // subscriber that falls behind is refilled from the inbox), so a listed
    // message after it is still to be pushed, and only one before it that
    // was never seen was missed (sent before subscribing) and is fetched.
    let mut last_pushed: Option<u64> = None;
    // Messages received (their bodies came with their pushes, or were
    // downloaded), acknowledged in batches (ACKNOWLEDGE_BATCH) once
    // ACK_BATCH are ready or no push came; those that came with their
    // bodies were taken under the batch's ticket (`Taken`).
    let mut to_ack = AckBatch::default();
    // (message, whether its body has already arrived with its push)
    let mut due: Vec<(MessageId, bool)> = Vec::new();
    while running.load(Ordering::SeqCst) {
        let mut pushed = false;
        due.clear();
        if Instant::now() >= next_list || subscription.is_none() {
            let listed_at = tally.stamp();
            match client.list_inbox(None, 500, cursor).await {
                Ok(page) => {
                    let s = tally.taken.lock().unwrap_or_else(|p| p.into_inner());
                    let mut more = page.messages.last().map(|m| m.order);
                    for entry in page.messages {
                        if subscription.is_some() && Some(entry.order) > last_pushed {
                            // Coming by push; so is everything after it.
                            more = None;
                            break;
                        }
                        match s.state(&entry.message_id.key()) {
                            Some(acked_at) if acked_at != IN_PROGRESS && acked_at < listed_at => {
                                tally.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(_) => {}
                            None => due.push((entry.message_id, false)),
                        }
                    }
                    // Keep paging while there is a backlog.
                    (cursor, next_list) = match more {
                        Some(order) => (Some(order), Instant::now()),
                        None => (None, Instant::now() + RELIST_EVERY),
                    };
                }
                Err(e) => {
                    tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    tally.error(format!("list: {e}"));
                    next_list = Instant::now() + RELIST_EVERY;
                }
            }
        } else if let Some(sub) = subscription.as_mut() {
            // With acknowledgements waiting, wait at most ACK_FLUSH for
            // the next push: when none comes, the batch goes then rather
            // than after the re-list pause (the last messages of a burst
            // would otherwise wait that long to be acknowledged).
            let until_list = next_list.saturating_duration_since(Instant::now());
            let wait = if to_ack.ids.is_empty() {
                until_list
            } else {
                until_list.min(ACK_FLUSH)
            };
            match tokio::time::timeout(wait, sub.next()).await {
                Ok(Some(push)) => {
                    pushed = true;
                    last_pushed = last_pushed.max(Some(push.order));
                    due.push((push.envelope.message_id, push.body.is_some()));
                    // Then every push already here, with no timer each.
                    while due.len() < ACK_BATCH {
                        match sub.next().now_or_never() {
                            Some(Some(push)) => {
                                last_pushed = last_pushed.max(Some(push.order));
                                due.push((push.envelope.message_id, push.body.is_some()));
                            }
                            Some(None) => {
                                subscription = None;
                                break;
                            }
                            None => break,
                        }
                    }
                }
                Ok(None) => subscription = None, // connection lost: poll
                Err(_) => {}                     // time to re-list
            }
        }
        // Take what no one has taken yet, under one lock for the lot: a
        // message here with its body under the open batch's ticket (it is
        // acknowledged in that batch), one still to download on its own.
        if !due.is_empty() {
            let mut s = tally.taken.lock().unwrap_or_else(|p| p.into_inner());
            let ticket = *to_ack.ticket.get_or_insert_with(|| s.open_ticket());
            due.retain(|&(id, have_body)| s.take(id.key(), have_body.then_some(ticket)));
        }
        for &(id, have_body) in &due {
            if have_body {
                to_ack.ids.push((id, true));
                continue;
            }
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (client, tally) = (client.clone(), Arc::clone(&tally));
            // Downloaded: acknowledged with the next batch.
            tasks.spawn(async move {
                let downloaded = client.download(id, 1).await;
                drop(permit);
                match downloaded {
                    Ok(_) => Some(id),
                    Err(e) => {
                        let mut s = tally.taken.lock().unwrap_or_else(|p| p.into_inner());
                        fail(&mut s, &tally, id, e.to_string());
                        None
                    }
                }
            });
        }
        while let Some(done) = tasks.try_join_next() {
            to_ack.ids.extend(done.ok().flatten().map(|id| (id, false)));
        }
        if to_ack.ids.len() >= ACK_BATCH || (!pushed && !to_ack.ids.is_empty()) {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let batch = std::mem::take(&mut to_ack);
            let (client, tally) = (client.clone(), Arc::clone(&tally));
            tasks.spawn(async move {
                acknowledge_all(&client, &tally, batch).await;
                drop(permit);
                None
            });
        }
    }
    // Whatever was downloaded but not yet acknowledged: in batches of at
    // most ACK_BATCH, the ticket stamped with the last.
    while let Some(done) = tasks.join_next().await {
        to_ack.ids.extend(done.ok().flatten().map(|id| (id, false)));
    }
    let mut rest = to_ack.ids;
    while !rest.is_empty() {
        let tail = rest.split_off(ACK_BATCH.min(rest.len()));
        let ticket = if tail.is_empty() { to_ack.ticket } else { None };
        acknowledge_all(&client, &tally, AckBatch { ids: rest, ticket }).await;
        rest = tail;
    }
}

/// Messages to acknowledge together.
#[derive(Default)]
struct AckBatch {
    /// Each message, and whether it was taken under `ticket`.
    ids: Vec<(MessageId, bool)>,
    /// The ticket its messages that came with their bodies were taken
    /// under (stamped once this batch is answered).
    ticket: Option<Ticket>,
}

/// Acknowledges `batch` in one `ACKNOWLEDGE_BATCH` and records each
/// outcome.
async fn acknowledge_all(client: &Client, tally: &Tally<MessageId>, batch: AckBatch) {
    let ids: Vec<MessageId> = batch.ids.iter().map(|(id, _)| *id).collect();
    let results = client.acknowledge_batch(ids).await;
    let now = tally.stamp();
    let mut s = tally.taken.lock().unwrap_or_else(|p| p.into_inner());
    let mut received = 0;
    for (i, (id, ticketed)) in batch.ids.into_iter().enumerate() {
        let result = match &results {
            Ok(r) => r
                .get(i)
                .cloned()
                .unwrap_or(Ok(()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) if ticketed => received += 1,
            Ok(()) => {
                s.stamp(id.key(), now);
                received += 1;
            }
            Err(e) => fail(&mut s, tally, id, e),
        }
    }
    // After every failure is forgotten: the ticket stamps only what was
    // acknowledged.
    if let Some(ticket) = batch.ticket {
        s.stamp_ticket(ticket, now);
    }
    tally.received.fetch_add(received, Ordering::Relaxed);
}

/// Records that consuming `id` failed: it may be taken again.
fn fail(s: &mut Taken<PackedId>, tally: &Tally<MessageId>, id: MessageId, e: String) {
    s.forget(&id.key());
    tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
    tally.error(format!("consume {id}: {e}"));
}

/// Raw loopback TCP: one connection, `size`-byte writes as fast as they
/// go for `duration`; returns (writes per second, MB per second).
pub(crate) async fn raw_tcp_baseline(
    size: usize,
    duration: Duration,
) -> anyhow::Result<(f64, f64)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(total);
            }
            total += n as u64;
        }
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let msg = vec![0x5a; size];
    let start = Instant::now();
    let mut writes = 0u64;
    while start.elapsed() < duration {
        socket.write_all(&msg).await?;
        writes += 1;
    }
    socket.shutdown().await?;
    let elapsed = start.elapsed().as_secs_f64();
    let total = reader.await??;
    Ok((writes as f64 / elapsed, total as f64 / elapsed / 1e6))
}
