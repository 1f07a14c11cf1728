//! The live driver: a scenario's events against a running node, over the
//! network with the real client (`spine-client`), in real or compressed
//! time.
//!
//! Invariants and why:
//! - Events are issued no earlier than their scaled time (`speed` virtual
//!   seconds per real second; unlimited: as fast as the bounds allow), in
//!   scenario order; sends and polls then run concurrently, bounded by
//!   `concurrency` (a full window delays the next event: backpressure, not
//!   an unbounded queue).
//! - Every outcome goes through one channel to this task, which alone owns
//!   the checker, so the invariants see a single consistent history. Sends
//!   overlap, so order is checked only between a message acknowledged
//!   before another was issued (`Checker::accepted_between`).
//! - With `service_requests_per_send = N`, the task that sent a message,
//!   once it is acknowledged, makes its sender's N PDS look-ups (`lookups`:
//!   the same patients as the deterministic driver) one after another on
//!   the sender's client, still holding its place in the window: look-ups
//!   are bounded by `concurrency` like everything else, and their outcomes
//!   (one per send, counted by code) come through the same channel. A
//!   failed look-up is reported, not an invariant violation.
//! - Clients are kept per mailbox, at most `max_clients` at once (the least
//!   recently used is closed), so 26,000 mailboxes do not mean 26,000
//!   connections.
//! - Faults that need the node's insides (panics, crashes, disk and fsync
//!   faults) are logged as skipped: run them in deterministic mode. The
//!   network drills run for real. The node expires messages on its own
//!   clock; scenario expiry ticks are ignored.
//! - Live runs are not reproducible (the network and the node's clock are
//!   real); the event log hash is reported but only deterministic runs
//!   promise it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use spine_client::{Client, ClientConfig, ClientError, Endpoint, RequestOptions, TlsOptions};
use spine_core::envelope::MessageType;
use spine_core::ids::{MailboxId, MessageId};
use spine_core::message::{MessageStatus, SendHeader};
use spine_core::time::Timestamp;
use spine_core::ErrorCode;
use tokio::sync::{mpsc, Semaphore};

use super::live_outcomes::{handle, InFlight, Outcome};
use super::lookups::{self, LookUps, Tally};
use super::{Observe, RunResult};
use crate::checker::{Checker, Final};
use crate::content;
use crate::eventlog::EventLog;
use crate::log_event;
use crate::model::{Action, ConsumerMode, Fault, Population, SimEvent};

/// Settings of a live run.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// `native://HOST:PORT`, `natives://HOST:PORT` or `quic://HOST:PORT`.
    pub endpoint: String,
    /// CA certificate for TLS and QUIC.
    pub ca: Option<std::path::PathBuf>,
    /// Virtual seconds per real second (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Most sends and polls in flight at once.
    pub concurrency: usize,
    /// Most client connections at once.
    pub max_clients: usize,
    /// The run's seed (for the report).
    pub seed: u64,
    /// Virtual start time.
    pub start: Timestamp,
    /// How long to keep collecting after the last event.
    pub drain: Duration,
    /// PDS look-ups each sender makes per acknowledged send (0: none).
    pub service_requests_per_send: u32,
}

/// What each acknowledged send was (content seed, bytes, chunks), for
/// checking what recipients download; shared with the collecting tasks.
type Specs = Arc<std::sync::Mutex<BTreeMap<MessageId, (u64, u64, u32)>>>;

/// Clients by mailbox, least recently used closed beyond the bound.
struct Pool {
    clients: BTreeMap<MailboxId, (Client, u64)>,
    passwords: BTreeMap<MailboxId, String>,
    endpoint: Endpoint,
    tls: TlsOptions,
    max: usize,
    uses: u64,
}

impl Pool {
    async fn get(&mut self, mailbox: &MailboxId) -> anyhow::Result<Client> {
        self.uses += 1;
        if let Some((client, used)) = self.clients.get_mut(mailbox) {
            *used = self.uses;
            return Ok(client.clone());
        }
        if self.clients.len() >= self.max {
            let oldest = self
                .clients
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(m, _)| m.clone());
            if let Some(m) = oldest {
                if let Some((c, _)) = self.clients.remove(&m) {
                    tokio::spawn(c.close());
                }
            }
        }
        let password = self
            .passwords
            .get(mailbox)
            .cloned()
            .with_context(|| format!("no password for {mailbox}"))?;
        let mut config = ClientConfig::new(self.endpoint.clone(), mailbox.clone(), password);
        config.tls = self.tls.clone();
        let client = Client::connect(config).await?;
        self.clients
            .insert(mailbox.clone(), (client.clone(), self.uses));
        Ok(client)
    }

    async fn close_all(&mut self) {
        for (_, (c, _)) in std::mem::take(&mut self.clients) {
            c.close().await;
        }
    }
}

async fn collect(
    client: &Client,
    id: MessageId,
    total: u32,
    spec: Option<(u64, u64, u32)>,
) -> Result<(bool, Option<Option<MessageId>>), String> {
    let mut ok = true;
    let mut report = None;
    for chunk in 1..=total.max(1) {
        let d = client
            .download(id, chunk)
            .await
            .map_err(|e| e.code().to_string())?;
        if d.envelope.message_type == MessageType::Report {
            report = Some(d.envelope.linked_message_id);
        } else if let Some((seed, bytes, chunks)) = spec {
            let size = content::chunk_size(bytes, chunks);
            if d.body != content::chunk(seed, bytes, size, chunk - 1) {
                ok = false;
            }
        }
    }
    client
        .acknowledge(id)
        .await
        .map_err(|e| e.code().to_string())?;
    Ok((ok, report))
}

/// The sender's look-ups after its send of event `seq`, one after another.
/// A fault the service answered is counted under the fault's own code (as
/// the deterministic driver would count it), any other error under the
/// client's code.
async fn look_up(client: &Client, lookups: &LookUps, seq: u64) -> Tally {
    let mut tally = Tally::default();
    for body in lookups.bodies(seq) {
        let outcome = client
            .request(
                lookups::SERVICE,
                lookups::INTERACTION,
                body,
                RequestOptions::default(),
            )
            .await;
        match &outcome {
            Ok(_) => tally.add(Ok(())),
            Err(ClientError::Service(fault)) => tally.add(Err(&fault.code)),
            Err(e) => tally.add(Err(e.code())),
        }
    }
    tally
}

/// Lists `mailbox`'s inbox once and collects what it finds, reporting
/// every outcome on `tx`. Answers how many messages it found.
async fn poll_once(
    client: &Client,
    mailbox: &MailboxId,
    batch: usize,
    specs: &Specs,
    tx: &mpsc::Sender<Outcome>,
    at: Timestamp,
) -> usize {
    let page = match client.list_inbox(None, batch as u32, None).await {
        Ok(p) => p,
        Err(e) => {
            let what = format!("poll {mailbox} {}", e.code());
            let _ = tx.send(Outcome::Failed { what, at }).await;
            return 0;
        }
    };
    let data = page
        .messages
        .iter()
        .filter(|m| m.message_type == MessageType::Data)
        .map(|m| m.message_id)
        .collect();
    let _ = tx
        .send(Outcome::Listed {
            mailbox: mailbox.clone(),
            data,
            at,
        })
        .await;
    let found = page.messages.len();
    for entry in page.messages {
        let id = entry.message_id;
        let spec = specs.lock().ok().and_then(|s| s.get(&id).copied());
        let outcome = match collect(client, id, entry.total_chunks, spec).await {
            Ok((ok, None)) => Outcome::Collected {
                mailbox: mailbox.clone(),
                id,
                ok,
                at,
            },
            Ok((_, Some(linked))) => Outcome::Report {
                mailbox: mailbox.clone(),
                id,
                linked,
                at,
            },
            Err(code) => Outcome::Failed {
                what: format!("collect {mailbox} {id} {code}"),
                at,
            },
        };
        let _ = tx.send(outcome).await;
    }
    found
}

/// Runs `events` against the node at `config.endpoint`.
pub async fn run<O: Observe>(
    config: &LiveConfig,
    population: &Population,
    events: impl Iterator<Item = SimEvent>,
    observer: &mut O,
) -> anyhow::Result<RunResult> {
    let wall = Instant::now();
    let endpoint = Endpoint::parse(&config.endpoint)?;
    let tls = TlsOptions {
        ca_file: config.ca.clone(),
        ..TlsOptions::default()
    };
    let mut pool = Pool {
        clients: BTreeMap::new(),
        passwords: population
            .mailboxes
            .iter()
            .map(|m| (m.id.clone(), m.password.clone()))
            .collect(),
        endpoint: endpoint.clone(),
        tls: tls.clone(),
        max: config.max_clients.max(1),
        uses: 0,
    };
    let consumers: BTreeMap<MailboxId, ConsumerMode> = population
        .mailboxes
        .iter()
        .map(|m| (m.id.clone(), m.consumer))
        .collect();
    let (tx, mut rx) = mpsc::channel::<Outcome>(config.concurrency.max(1) * 4);
    let window = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let specs: Specs = Arc::default();
    let lookups = Arc::new(LookUps::new(config.service_requests_per_send));
    let polling: Arc<std::sync::Mutex<BTreeSet<MailboxId>>> = Arc::default();
    let mut checker = Checker::new();
    let mut log = EventLog::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut flight = InFlight::default();
    let mut scenario_events = 0u64;
    let mut last = config.start;
    let real_start = Instant::now();

    // Push consumers: one subscription each, collecting as pushes arrive.
    for (mailbox, mode) in &consumers {
        if let ConsumerMode::Push { .. } = mode {
            let client = pool.get(mailbox).await?;
            let mut sub = client.subscribe(64).await?;
            let tx = tx.clone();
            let specs = Arc::clone(&specs);
            let mailbox = mailbox.clone();
            let start = config.start;
            let speed = config.speed.filter(|s| *s > 0.0);
            tokio::spawn(async move {
                while let Some(push) = sub.next().await {
                    let id = push.envelope.message_id;
                    let spec = specs.lock().ok().and_then(|s| s.get(&id).copied());
                    let at = speed.map_or(start, |s| {
                        start.saturating_add(real_start.elapsed().mul_f64(s))
                    });
                    let outcome = match collect(&client, id, push.envelope.total_chunks, spec).await
                    {
                        Ok((ok, None)) => Outcome::Collected {
                            mailbox: mailbox.clone(),
                            id,
                            ok,
                            at,
                        },
                        Ok((_, Some(linked))) => Outcome::Report {
                            mailbox: mailbox.clone(),
                            id,
                            linked,
                            at,
                        },
                        Err(code) => Outcome::Failed {
                            what: format!("push-collect {mailbox} {id} {code}"),
                            at,
                        },
                    };
                    if tx.send(outcome).await.is_err() {
                        break;
                    }
                    let _ = sub.grant(1).await;
                }
            });
        }
    }

    let virtual_now = |real: Instant| -> Timestamp {
        match config.speed {
            Some(speed) if speed > 0.0 => config
                .start
                .saturating_add(real.duration_since(real_start).mul_f64(speed)),
            _ => config.start,
        }
    };

    for event in events {
        scenario_events += 1;
        last = event.at;
        if let Some(speed) = config.speed.filter(|s| *s > 0.0) {
            let due = real_start + event.at.saturating_sub(config.start).div_f64(speed);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        while let Ok(o) = rx.try_recv() {
            handle(
                o,
                &mut checker,
                &mut log,
                observer,
                &mut refused,
                &mut flight,
            );
        }
        let at = event.at;
        match event.action {
            Action::Send(spec) => {
                let permit = Arc::clone(&window).acquire_owned().await?;
                let client = match pool.get(&spec.from).await {
                    Ok(c) => c,
                    Err(e) => {
                        log_event!(log, at, "connect-failed", "{} {e}", spec.from);
                        continue;
                    }
                };
                let issued = checker.tick();
                let tx = tx.clone();
                let specs = Arc::clone(&specs);
                let lookups = Arc::clone(&lookups);
                let seq = event.seq;
                tokio::spawn(async move {
                    let _permit = permit;
                    let started = Instant::now();
                    let chunks = spec.chunks.max(1);
                    let size = content::chunk_size(spec.bytes, chunks);
                    let mut header = SendHeader::simple(spec.to.clone(), spec.workflow.clone());
                    header.total_chunks = chunks;
                    let first = content::chunk(spec.content_seed, spec.bytes, size, 0);
                    let mut result = client
                        .send(header, first)
                        .await
                        .map(|ok| ok.message_id)
                        .map_err(|e| e.code().to_string());
                    if let Ok(id) = result {
                        if let Ok(mut s) = specs.lock() {
                            s.insert(id, (spec.content_seed, spec.bytes, chunks));
                        }
                        for i in 1..chunks {
                            let body: Bytes =
                                content::chunk(spec.content_seed, spec.bytes, size, i);
                            if let Err(e) = client.send_chunk(id, i + 1, body).await {
                                result = Err(e.code().to_string());
                                break;
                            }
                        }
                    }
                    let wall = started.elapsed();
                    let acknowledged = result.is_ok();
                    let from = spec.from.clone();
                    let _ = tx
                        .send(Outcome::Sent {
                            spec,
                            issued,
                            result,
                            wall,
                            at,
                        })
                        .await;
                    if acknowledged && lookups.enabled() {
                        let tally = look_up(&client, &lookups, seq).await;
                        let _ = tx.send(Outcome::LookedUp { from, tally, at }).await;
                    }
                });
            }
            Action::Poll { mailbox } => {
                let batch = match consumers.get(&mailbox) {
                    Some(ConsumerMode::Poll { batch, .. }) => (*batch).max(1),
                    _ => continue,
                };
                // One poll per mailbox at a time, as one consumer would.
                let claimed = polling.lock().is_ok_and(|mut p| p.insert(mailbox.clone()));
                if !claimed {
                    continue;
                }
                let permit = Arc::clone(&window).acquire_owned().await?;
                let client = match pool.get(&mailbox).await {
                    Ok(c) => c,
                    Err(e) => {
                        log_event!(log, at, "connect-failed", "{mailbox} {e}");
                        if let Ok(mut p) = polling.lock() {
                            p.remove(&mailbox);
                        }
                        continue;
                    }
                };
                let tx = tx.clone();
                let specs = Arc::clone(&specs);
                let polling = Arc::clone(&polling);
                tokio::spawn(async move {
                    let _permit = permit;
                    poll_once(&client, &mailbox, batch, &specs, &tx, at).await;
                    if let Ok(mut p) = polling.lock() {
                        p.remove(&mailbox);
                    }
                });
            }
            Action::ExpiryTick | Action::Sample => {}
            Action::Fault(fault) => {
                let what = match fault {
                    Fault::DropConnections => {
                        pool.close_all().await;
                        "drop_connections clients_closed=true".to_string()
                    }
                    Fault::ReconnectStorm { connections } => {
                        let mut tasks = tokio::task::JoinSet::new();
                        let some = population
                            .mailboxes
                            .first()
                            .map(|m| (m.id.clone(), m.password.clone()));
                        if let Some((mb, pw)) = some {
                            for _ in 0..connections {
                                let mut c =
                                    ClientConfig::new(endpoint.clone(), mb.clone(), pw.clone());
                                c.tls = tls.clone();
                                tasks.spawn(async move {
                                    match Client::connect(c).await {
                                        Ok(client) => {
                                            let ok = client.ping().await.is_ok();
                                            client.close().await;
                                            ok
                                        }
                                        Err(_) => false,
                                    }
                                });
                            }
                        }
                        let mut ok = 0;
                        while let Some(r) = tasks.join_next().await {
                            ok += u32::from(matches!(r, Ok(true)));
                        }
                        format!("reconnect_storm connections={connections} authenticated={ok}")
                    }
                    other => format!("{other:?} skipped=needs-deterministic-mode"),
                };
                log_event!(log, at, "fault", "{what}");
                observer.fault(at, &what);
            }
        }
        observer.progress(scenario_events, virtual_now(Instant::now()).max(at));
    }

    // Let the work in flight finish, draining its outcomes meanwhile (the
    // channel is bounded: a task must never wait on a reader that waits on
    // it).
    {
        let all = window.acquire_many(config.concurrency.max(1) as u32);
        tokio::pin!(all);
        loop {
            tokio::select! {
                Some(o) = rx.recv() => handle(o, &mut checker, &mut log, observer, &mut refused, &mut flight),
                _ = &mut all => break,
            }
        }
    }
    // Consumers collect what is left, as they would at their next polls
    // (the scenario's events may end before they come round); pushes keep
    // arriving meanwhile. Bounded by the drain period.
    let deadline = Instant::now() + config.drain;
    while Instant::now() < deadline {
        let pollers: Vec<(MailboxId, usize)> = checker
            .waiting_recipients()
            .into_iter()
            .filter_map(|m| match consumers.get(&m) {
                Some(ConsumerMode::Poll { batch, .. }) => Some((m, (*batch).max(1))),
                _ => None,
            })
            .collect();
        let mut clients = Vec::new();
        for (mailbox, batch) in pollers {
            if let Ok(client) = pool.get(&mailbox).await {
                clients.push((client, mailbox, batch));
            }
        }
        let sweep = {
            let (specs, tx) = (Arc::clone(&specs), tx.clone());
            tokio::spawn(async move {
                for (client, mailbox, batch) in clients {
                    poll_once(&client, &mailbox, batch, &specs, &tx, last).await;
                }
            })
        };
        tokio::pin!(sweep);
        let pause = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(pause);
        let mut swept = false;
        loop {
            tokio::select! {
                Some(o) = rx.recv() => handle(o, &mut checker, &mut log, observer, &mut refused, &mut flight),
                _ = &mut sweep, if !swept => swept = true,
                _ = &mut pause, if swept => break,
            }
        }
        // Done when nothing waits for a mailbox that collects at all.
        let collectable = checker
            .waiting_recipients()
            .iter()
            .any(|m| !matches!(consumers.get(m), Some(ConsumerMode::Absent) | None));
        if !collectable {
            break;
        }
    }
    while let Ok(o) = rx.try_recv() {
        handle(
            o,
            &mut checker,
            &mut log,
            observer,
            &mut refused,
            &mut flight,
        );
    }

    // What became of every acknowledged message not collected: ask the
    // sender (tracking is the sender's view).
    let uncollected: Vec<(MessageId, MailboxId)> = checker
        .uncollected()
        .map(|(id, from)| (*id, from.clone()))
        .collect();
    let mut fate = BTreeMap::new();
    let mut senders = BTreeSet::new();
    for (id, from) in &uncollected {
        let state = match pool.get(from).await {
            Ok(client) => match client.track(*id).await {
                Ok(t) => match t.status {
                    MessageStatus::Expired => {
                        senders.insert(from.clone());
                        Final::Expired
                    }
                    MessageStatus::Acknowledged => Final::Acknowledged,
                    _ => Final::Waiting,
                },
                Err(_) => Final::Missing,
            },
            Err(_) => Final::Missing,
        };
        fate.insert(*id, state);
    }
    for sender in &senders {
        if let Ok(client) = pool.get(sender).await {
            if let Ok(page) = client.list_inbox(None, 5000, None).await {
                for m in page
                    .messages
                    .iter()
                    .filter(|m| m.message_type == MessageType::Report)
                {
                    if let Ok(d) = client.download(m.message_id, 1).await {
                        checker.report(
                            sender,
                            m.message_id,
                            d.envelope.linked_message_id,
                            "final sweep",
                        );
                    }
                }
            }
        }
    }
    pool.close_all().await;
    log_event!(
        log,
        last,
        "end",
        "accepted={} uncollected={}",
        checker.accepted,
        uncollected.len()
    );
    let context = format!("seed {}, end of live run", config.seed);
    let (verdicts, checker) = checker.finish(&fate, &context);
    Ok(RunResult {
        event_log_hash: log.hash(),
        events: log.len(),
        scenario_events,
        virtual_duration: last.saturating_sub(config.start),
        wall_duration: wall.elapsed(),
        verdicts,
        accepted: checker.accepted,
        refused,
        delivered: checker.collected,
        expired: checker.expired,
        reports: checker.reports,
        lost: checker.lost,
        misdelivered: checker.misdelivered,
        out_of_order: checker.out_of_order,
        tail: log.tail().map(str::to_string).collect(),
    })
}
