//! `spine-bench load --target mesh://HOST:PORT` (or `meshs://`): the same
//! workload and report as the native load, over the MESH REST API.
//!
//! Shape, as for native targets: `--producers` producers, producer `p`
//! sending as mailbox `p % mailboxes` to the others in turn, `--size`-byte
//! bodies on workflow `--workflow`, for `--seconds`; then consumers drain.
//!
//! - A producer owns `--window` HTTP/1.1 keep-alive connections, each with
//!   one `POST /messageexchange/{me}/outbox` outstanding at a time (hyper
//!   does not pipeline), all polled by the producer's one task. Latency is
//!   send-to-`202`; in `--rate` mode each connection carries an equal share
//!   of the producer's rate, and latency counts from the scheduled time.
//! - A consumer (one per mailbox) lists its inbox on a connection of its
//!   own (`GET .../inbox?max_results=500`), hands the new ids to
//!   `--consumer-connections` keep-alive connections that each download
//!   (`GET .../inbox/{id}`, body length checked) and acknowledge
//!   (`PUT .../inbox/{id}/status/acknowledged`), waits for the page to be
//!   done, and lists again at once when the page was full, else after
//!   `--poll-ms`. An id listed again after its acknowledgement completed is
//!   a duplicate; an acknowledged send never received is lost.
//! - Every request has a fresh `NHSMESH` token (per-connection nonce,
//!   rising count). A connection that fails is replaced; the failed
//!   request counts as an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::future::join_all;
use hdrhistogram::Histogram;
use http::{HeaderValue, StatusCode, Uri};
use spine_core::ids::{MailboxId, WorkflowId};
use tokio::sync::mpsc;

use crate::load_bench::{finish, LoadArgs, Measured, Output, Tally};
use crate::mesh_http::{
    parse_inbox, parse_send, run_with, Auth, CallError, Connection, Connector, MeshTarget, Next,
    Sender, BACKOFF, MAX_RESULTS,
};
use crate::report::latency_histogram;

type Link = (Sender, Connection);
type Ids = Tally<String>;

/// Drives the MESH API at `target`; the measured phase and the drain, as
/// [`crate::load_bench`] does for native targets.
pub(crate) async fn drive(
    args: &LoadArgs,
    target: MeshTarget,
    mailboxes: Vec<MailboxId>,
    consumers: usize,
    workflow: WorkflowId,
) -> anyhow::Result<Output> {
    let connector = Arc::new(Connector::new(
        target,
        args.ca.as_deref(),
        args.cert.as_deref(),
        args.key.as_deref(),
    )?);
    let tally = Arc::new(Ids::default());
    let consuming = Arc::new(AtomicBool::new(true));
    let auths: Vec<Auth> = mailboxes
        .iter()
        .map(|m| Auth::new(m.as_str(), &args.password, &args.shared_key))
        .collect();

    let mut consumer_tasks = Vec::new();
    for auth in auths.iter().take(consumers) {
        let lister = connector
            .connect()
            .await
            .with_context(|| format!("consumer connection as {}", auth.mailbox()))?;
        let workers = connect_many(&connector, args.consumer_connections).await?;
        let ctx = ConsumerCtx {
            connector: Arc::clone(&connector),
            tally: Arc::clone(&tally),
            running: Arc::clone(&consuming),
            size: args.size,
            poll: Duration::from_millis(args.poll_ms),
        };
        consumer_tasks.push(tokio::spawn(consume(ctx, auth.fork(), lister, workers)));
    }

    let mut producer_links = Vec::new();
    for p in 0..args.producers {
        let links = connect_many(&connector, args.window)
            .await
            .with_context(|| format!("producer {p} as {}", auths[p % auths.len()].mailbox()))?;
        producer_links.push(links);
    }
    let body = Bytes::from(vec![0x5a; args.size]);
    let workflow = HeaderValue::try_from(workflow.as_str())?;
    let per_producer_rate = args.rate.map(|r| r / args.producers as f64);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut producer_tasks = Vec::new();
    for (p, links) in producer_links.into_iter().enumerate() {
        let n = mailboxes.len();
        let recipients = (0..n)
            .map(|k| HeaderValue::try_from(mailboxes[(p + 1 + k) % n].as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let auth = &auths[p % n];
        let ctx = ProducerCtx {
            connector: Arc::clone(&connector),
            tally: Arc::clone(&tally),
            auth: auth.clone(),
            outbox: format!("/messageexchange/{}/outbox", auth.mailbox()).parse()?,
            recipients,
            workflow: workflow.clone(),
            body: body.clone(),
            window: args.window,
            rate: per_producer_rate,
            start,
            deadline,
        };
        producer_tasks.push(tokio::spawn(produce(ctx, links)));
    }
    let mut hist = latency_histogram()?;
    for t in producer_tasks {
        if let Ok(Ok(h)) = t.await {
            hist.add(&h)?;
        }
    }
    let measured = Measured {
        hist,
        seconds: start.elapsed().as_secs_f64().max(args.seconds),
        acked: tally.acked.load(Ordering::SeqCst),
    };
    let output = finish(
        args,
        mailboxes.len(),
        consumers,
        &tally,
        measured,
        &consuming,
        consumer_tasks,
    )
    .await;
    let s = &connector.stats;
    let (connections, requests) = (
        s.connections.load(Ordering::Relaxed),
        s.requests.load(Ordering::Relaxed),
    );
    eprintln!(
        "mesh: {connections} connections opened ({} of them replacing one the server closed or that \
         failed), {requests} \
         requests ({:.0} per connection), {} answers with an unexpected status",
        s.reconnects.load(Ordering::Relaxed),
        requests as f64 / connections.max(1) as f64,
        s.unexpected_status.load(Ordering::Relaxed),
    );
    Ok(output)
}

/// `n` connections, opened a few at a time.
async fn connect_many(connector: &Connector, n: usize) -> anyhow::Result<Vec<Link>> {
    let mut links = Vec::with_capacity(n);
    while links.len() < n {
        let batch = (n - links.len()).min(32);
        for r in join_all((0..batch).map(|_| connector.connect())).await {
            links.push(r?);
        }
    }
    Ok(links)
}

/// A replacement connection after `why`, retried until `until` (errors
/// are tallied).
async fn reconnect(
    connector: &Connector,
    tally: &Ids,
    why: Next,
    until: impl Fn() -> bool,
) -> Option<Link> {
    if why == Next::Backoff {
        tokio::time::sleep(BACKOFF).await;
    }
    loop {
        if !until() {
            return None;
        }
        match connector.connect().await {
            Ok(link) => {
                connector.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                return Some(link);
            }
            Err(e) => {
                tally.error(format!("reconnect: {e:#}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

struct ProducerCtx {
    connector: Arc<Connector>,
    tally: Arc<Ids>,
    /// The sending mailbox's credentials (each connection forks a nonce).
    auth: Auth,
    outbox: Uri,
    recipients: Vec<HeaderValue>,
    workflow: HeaderValue,
    body: Bytes,
    window: usize,
    rate: Option<f64>,
    start: Instant,
    deadline: Instant,
}

/// What a producer's connections share (all polled by one task, so the
/// locks are never contended).
struct ProducerOut {
    hist: Mutex<Histogram<u64>>,
    acked: Mutex<Vec<String>>,
}

/// One producer: its connections until the deadline; returns its latency
/// histogram and adds its acknowledged ids to the tally.
async fn produce(ctx: ProducerCtx, links: Vec<Link>) -> anyhow::Result<Histogram<u64>> {
    let out = ProducerOut {
        hist: Mutex::new(latency_histogram()?),
        acked: Mutex::new(Vec::new()),
    };
    join_all(
        links
            .into_iter()
            .enumerate()
            .map(|(k, link)| produce_on(&ctx, &out, k, link)),
    )
    .await;
    let acked = out.acked.into_inner().unwrap_or_else(|p| p.into_inner());
    ctx.tally
        .acked
        .fetch_add(acked.len() as u64, Ordering::Relaxed);
    ctx.tally
        .acked_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(acked);
    Ok(out.hist.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Connection `k` of a producer: sends `k`, `k + window`, `k + 2 window`,
/// ... of the producer's sequence, one at a time.
async fn produce_on(ctx: &ProducerCtx, out: &ProducerOut, k: usize, link: Link) {
    let mut auth = ctx.auth.fork();
    let mut sent: u64 = 0;
    let mut link = Some(link);
    loop {
        let Some((sender, conn)) = link.take() else {
            return;
        };
        let next = run_with(conn, send_loop(ctx, out, k, &mut sent, &mut auth, sender)).await;
        if next == Next::Done {
            return;
        }
        link = reconnect(&ctx.connector, &ctx.tally, next, || {
            Instant::now() < ctx.deadline
        })
        .await;
    }
}

async fn send_loop(
    ctx: &ProducerCtx,
    out: &ProducerOut,
    k: usize,
    sent: &mut u64,
    auth: &mut Auth,
    mut sender: Sender,
) -> Next {
    let tally = &ctx.tally;
    let mut answered = false;
    loop {
        // This connection's next send in the producer's sequence.
        let i = k as u64 + *sent * ctx.window as u64;
        let now = Instant::now();
        let due = match ctx.rate {
            Some(r) => ctx.start + Duration::from_secs_f64(i as f64 / r),
            None => now,
        };
        if due >= ctx.deadline || now >= ctx.deadline {
            return Next::Done;
        }
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        }
        // In rate mode latency counts from when the send was due.
        let issued = if ctx.rate.is_some() {
            due
        } else {
            Instant::now()
        };
        let to = &ctx.recipients[i as usize % ctx.recipients.len()];
        let req = ctx
            .connector
            .send(auth, &ctx.outbox, to, &ctx.workflow, ctx.body.clone());
        let result = ctx.connector.call(&mut sender, req).await;
        if answered && matches!(result, Err(CallError::Closed)) {
            // Closed while idle, nothing sent: the same send again on a
            // new connection.
            return Next::Reconnect;
        }
        answered |= result.is_ok();
        *sent += 1;
        tally.sent.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(answer) if answer.status == StatusCode::ACCEPTED => match parse_send(&answer.body) {
                Ok(ok) => {
                    let us = (issued.elapsed().as_micros() as u64).max(1);
                    let _ = out
                        .hist
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(us);
                    out.acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ok.message_id);
                }
                Err(e) => {
                    tally.send_errors.fetch_add(1, Ordering::Relaxed);
                    tally.error(format!("send: {e:#}"));
                }
            },
            Ok(answer) => {
                tally.send_errors.fetch_add(1, Ordering::Relaxed);
                ctx.connector
                    .stats
                    .unexpected_status
                    .fetch_add(1, Ordering::Relaxed);
                tally.error(answer.unexpected("send"));
            }
            Err(e) => {
                tally.send_errors.fetch_add(1, Ordering::Relaxed);
                tally.error(format!("send: {e}"));
                return Next::after_failure(answered);
            }
        }
    }
}

struct ConsumerCtx {
    connector: Arc<Connector>,
    tally: Arc<Ids>,
    running: Arc<AtomicBool>,
    size: usize,
    poll: Duration,
}

impl ConsumerCtx {
    fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

/// A message's download and acknowledgement, as reported to the lister.
type Done = (String, Result<(), String>);

/// One consumer (one mailbox): a lister and a pool of connections that
/// download and acknowledge, all polled by this one task.
async fn consume(ctx: ConsumerCtx, auth: Auth, lister: Link, workers: Vec<Link>) {
    let (work_tx, work_rx) = mpsc::unbounded_channel::<String>();
    let work_rx = tokio::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
    let list = list_all(&ctx, auth.fork(), lister, work_tx, done_rx);
    let pool = join_all(
        workers
            .into_iter()
            .map(|link| take_on(&ctx, auth.fork(), link, &work_rx, done_tx.clone())),
    );
    drop(done_tx);
    futures_util::future::join(list, pool).await;
}

/// The lister: pages through the inbox while the consumer runs; dropping
/// `work` at the end stops the pool.
async fn list_all(
    ctx: &ConsumerCtx,
    mut auth: Auth,
    link: Link,
    work: mpsc::UnboundedSender<String>,
    mut done: mpsc::UnboundedReceiver<Done>,
) {
    // Message id -> when its acknowledgement completed.
    let mut acked_at: HashMap<String, Instant> = HashMap::new();
    let mut link = Some(link);
    while let Some((sender, conn)) = link.take() {
        let list = list_loop(ctx, &mut auth, sender, &work, &mut done, &mut acked_at);
        let next = run_with(conn, list).await;
        if next == Next::Done {
            break;
        }
        link = reconnect(&ctx.connector, &ctx.tally, next, || ctx.running()).await;
    }
}

async fn list_loop(
    ctx: &ConsumerCtx,
    auth: &mut Auth,
    mut sender: Sender,
    work: &mpsc::UnboundedSender<String>,
    done: &mut mpsc::UnboundedReceiver<Done>,
    acked_at: &mut HashMap<String, Instant>,
) -> Next {
    let tally = &ctx.tally;
    let mut answered = false;
    while ctx.running() {
        let req = match ctx.connector.list(auth, MAX_RESULTS) {
            Ok(r) => r,
            Err(e) => {
                tally.error(format!("list: {e:#}"));
                return Next::Done;
            }
        };
        let listed_at = Instant::now();
        let result = ctx.connector.call(&mut sender, req).await;
        if answered && matches!(result, Err(CallError::Closed)) {
            return Next::Reconnect; // closed while idle: list again
        }
        answered |= result.is_ok();
        let page = match result {
            Ok(answer) if answer.status == StatusCode::OK => match parse_inbox(&answer.body) {
                Ok(page) => page,
                Err(e) => {
                    tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    tally.error(format!("list: {e:#}"));
                    tokio::time::sleep(ctx.poll).await;
                    continue;
                }
            },
            Ok(answer) => {
                tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
                ctx.connector
                    .stats
                    .unexpected_status
                    .fetch_add(1, Ordering::Relaxed);
                tally.error(answer.unexpected("list"));
                tokio::time::sleep(ctx.poll).await;
                continue;
            }
            Err(e) => {
                tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
                tally.error(format!("list: {e}"));
                return Next::after_failure(answered);
            }
        };
        let more = page.more(MAX_RESULTS);
        let mut handed = 0usize;
        for id in page.messages {
            match acked_at.get(&id) {
                // Listed by a listing that started after its
                // acknowledgement completed: delivered twice.
                Some(at) if *at < listed_at => {
                    tally.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
                None => {
                    if work.send(id).is_err() {
                        return Next::Done;
                    }
                    handed += 1;
                }
            }
        }
        // Wait for the page to be downloaded and acknowledged: listing
        // again sooner would only list the same ids (oldest first).
        for _ in 0..handed {
            let Some((id, result)) = done.recv().await else {
                return Next::Done;
            };
            match result {
                Ok(()) => {
                    acked_at.insert(id.clone(), Instant::now());
                    tally.record_received(id);
                }
                Err(e) => {
                    tally.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    tally.error(e);
                }
            }
        }
        if !(more && handed > 0) {
            tokio::time::sleep(ctx.poll).await;
        }
    }
    Next::Done
}

/// One download-and-acknowledge connection of a consumer's pool.
async fn take_on(
    ctx: &ConsumerCtx,
    mut auth: Auth,
    link: Link,
    work: &tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    done: mpsc::UnboundedSender<Done>,
) {
    // A message to take again on the next connection.
    let mut carry: Option<String> = None;
    let mut link = Some(link);
    while let Some((sender, conn)) = link.take() {
        let take = take_loop(ctx, &mut auth, sender, work, &done, &mut carry);
        let next = run_with(conn, take).await;
        if next == Next::Done {
            break;
        }
        link = reconnect(&ctx.connector, &ctx.tally, next, || ctx.running()).await;
    }
    // The lister waits for every message it handed out.
    if let Some(id) = carry {
        let _ = done.send((id.clone(), Err(format!("take {id}: no connection"))));
    }
}

async fn take_loop(
    ctx: &ConsumerCtx,
    auth: &mut Auth,
    mut sender: Sender,
    work: &tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    done: &mpsc::UnboundedSender<Done>,
    carry: &mut Option<String>,
) -> Next {
    let mut answered = false;
    loop {
        let id = match carry.take() {
            Some(id) => id,
            None => match work.lock().await.recv().await {
                Some(id) => id,
                None => return Next::Done,
            },
        };
        let (result, next) = match take_one(ctx, auth, &mut sender, &id, &mut answered).await {
            Took::Done(result) => (result, None),
            Took::Again if answered => {
                *carry = Some(id);
                return Next::Reconnect;
            }
            Took::Again => (
                Err(format!("take {id}: connection closed before answering")),
                Some(Next::Backoff),
            ),
            Took::Broken(e) => (Err(e), Some(Next::after_failure(answered))),
        };
        if done.send((id, result)).is_err() {
            return Next::Done;
        }
        if let Some(next) = next {
            return next;
        }
    }
}

/// How taking one message went.
enum Took {
    /// Downloaded and acknowledged, or refused by the server.
    Done(Result<(), String>),
    /// The connection was closed before a request was written: take the
    /// message again on a new connection (not an error).
    Again,
    /// The connection failed mid-request (an error; reconnect).
    Broken(String),
}

/// Downloads `id`, checks its length, and acknowledges it; sets
/// `answered` once the connection has answered anything.
async fn take_one(
    ctx: &ConsumerCtx,
    auth: &mut Auth,
    sender: &mut Sender,
    id: &str,
    answered: &mut bool,
) -> Took {
    let c = &ctx.connector;
    let unexpected = |what: String| {
        c.stats.unexpected_status.fetch_add(1, Ordering::Relaxed);
        Took::Done(Err(what))
    };
    let req = match c.download(auth, id) {
        Ok(r) => r,
        Err(e) => return Took::Done(Err(format!("download {id}: {e:#}"))),
    };
    let result = c.call(sender, req).await;
    *answered |= result.is_ok();
    match result {
        Ok(a) if a.status == StatusCode::OK => {
            if !a.encoded && a.body.len() != ctx.size {
                return Took::Done(Err(format!(
                    "download {id}: {} bytes, sent {}",
                    a.body.len(),
                    ctx.size
                )));
            }
        }
        Ok(a) => return unexpected(a.unexpected(&format!("download {id}"))),
        Err(CallError::Closed) => return Took::Again,
        Err(e) => return Took::Broken(format!("download {id}: {e}")),
    }
    let req = match c.acknowledge(auth, id) {
        Ok(r) => r,
        Err(e) => return Took::Done(Err(format!("acknowledge {id}: {e:#}"))),
    };
    let result = c.call(sender, req).await;
    *answered |= result.is_ok();
    match result {
        Ok(a) if a.status == StatusCode::OK => Took::Done(Ok(())),
        Ok(a) => unexpected(a.unexpected(&format!("acknowledge {id}"))),
        Err(CallError::Closed) => Took::Again,
        Err(e) => Took::Broken(format!("acknowledge {id}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    //! The whole MESH load against an in-process fake MESH server (hyper,
    //! in memory): every token must verify and be fresh, every
    //! acknowledged send must be received once.
    use super::*;
    use std::collections::{BTreeMap, HashSet};
    use std::convert::Infallible;
    use std::sync::atomic::AtomicU64;

    use clap::Parser;
    use http::{Method, Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use spine_core::time::Timestamp;
    use spine_protocol::mesh::auth::Token;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    #[derive(Default)]
    struct Inbox {
        /// Arrival order -> (id, body): listed oldest first.
        queue: BTreeMap<u64, (String, Bytes)>,
        by_id: HashMap<String, u64>,
    }

    #[derive(Default)]
    struct Fake {
        inboxes: Mutex<HashMap<String, Inbox>>,
        tokens: Mutex<HashSet<(String, String, u64)>>,
        next: AtomicU64,
        /// Keep acknowledged messages listed (a broken server).
        relist_acknowledged: bool,
        refused: AtomicU64,
        full_pages: AtomicU64,
        /// Close each connection after this many answers (0: never).
        close_after: u64,
    }

    fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    }

    impl Fake {
        fn authorised(&self, req: &Request<Incoming>, mailbox: &str) -> bool {
            let now = Timestamp::from_micros(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0),
            );
            let ok = req.headers().get("accept").map(|v| v.as_bytes())
                == Some(crate::mesh_http::ACCEPT_V2.as_bytes())
                && req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| Token::parse(v).ok())
                    .is_some_and(|t| {
                        t.mailbox == mailbox
                            && t.verify("password", b"BackBone", now, Duration::from_secs(7200))
                                .is_ok()
                            && self.tokens.lock().unwrap().insert((
                                t.mailbox.clone(),
                                t.nonce.clone(),
                                t.nonce_count,
                            ))
                    });
            if !ok {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            ok
        }

        async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
            let path = req.uri().path().to_owned();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let method = req.method().clone();
            let Some(mb) = parts.get(1).map(|s| s.to_string()) else {
                return reply(StatusCode::NOT_FOUND, String::new());
            };
            if parts[0] != "messageexchange" || !self.authorised(&req, &mb) {
                return reply(StatusCode::FORBIDDEN, r#"{"detail":[]}"#.into());
            }
            match (method, &parts[2..]) {
                (Method::POST, ["outbox"]) => {
                    let h = req.headers();
                    let to = h
                        .get("mex-to")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let wf_ok = h.get("mex-workflowid").is_some()
                        && h.get("mex-chunk-range").map(|v| v.as_bytes()) == Some(b"1:1");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let Some(to) = to.filter(|_| wf_ok && !body.is_empty()) else {
                        return reply(StatusCode::EXPECTATION_FAILED, "{}".into());
                    };
                    let seq = self.next.fetch_add(1, Ordering::Relaxed);
                    let id = format!("FAKE{seq:020}");
                    let mut inboxes = self.inboxes.lock().unwrap();
                    let inbox = inboxes.entry(to).or_default();
                    inbox.queue.insert(seq, (id.clone(), body));
                    inbox.by_id.insert(id.clone(), seq);
                    reply(StatusCode::ACCEPTED, format!(r#"{{"message_id": "{id}"}}"#))
                }
                (Method::GET, ["inbox"]) => {
                    let max: usize = req
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("max_results="))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(500);
                    let inboxes = self.inboxes.lock().unwrap();
                    let ids: Vec<String> = inboxes
                        .get(&mb)
                        .map(|i| {
                            i.queue
                                .values()
                                .take(max)
                                .map(|(id, _)| format!("\"{id}\""))
                                .collect()
                        })
                        .unwrap_or_default();
                    let total = inboxes.get(&mb).map_or(0, |i| i.queue.len());
                    let next = if total > max {
                        self.full_pages.fetch_add(1, Ordering::Relaxed);
                        format!(r#","next":"/messageexchange/{mb}/inbox?continue_from=x""#)
                    } else {
                        String::new()
                    };
                    reply(
                        StatusCode::OK,
                        format!(
                            r#"{{"messages":[{}],"links":{{"self":"/messageexchange/{mb}/inbox"{next}}},"approx_inbox_count":{total}}}"#,
                            ids.join(",")
                        ),
                    )
                }
                (Method::GET, ["inbox", id]) => {
                    let inboxes = self.inboxes.lock().unwrap();
                    let found = inboxes
                        .get(&mb)
                        .and_then(|i| i.by_id.get(*id).and_then(|seq| i.queue.get(seq)));
                    match found {
                        Some((_, body)) => {
                            let mut r = Response::new(Full::new(body.clone()));
                            *r.status_mut() = StatusCode::OK;
                            r
                        }
                        None => reply(StatusCode::NOT_FOUND, "{}".into()),
                    }
                }
                (Method::PUT, ["inbox", id, "status", "acknowledged"]) => {
                    let mut inboxes = self.inboxes.lock().unwrap();
                    let inbox = inboxes.entry(mb).or_default();
                    if !self.relist_acknowledged {
                        if let Some(seq) = inbox.by_id.remove(*id) {
                            inbox.queue.remove(&seq);
                        }
                    }
                    reply(StatusCode::OK, String::new())
                }
                _ => reply(StatusCode::NOT_FOUND, "{}".into()),
            }
        }
    }

    async fn serve(fake: Arc<Fake>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fake = Arc::clone(&fake);
                tokio::spawn(async move {
                    let answered = Arc::new(AtomicU64::new(0));
                    let service = hyper::service::service_fn(move |req| {
                        let fake = Arc::clone(&fake);
                        let answered = Arc::clone(&answered);
                        async move {
                            let mut r = fake.handle(req).await;
                            let n = answered.fetch_add(1, Ordering::Relaxed) + 1;
                            if fake.close_after > 0 && n >= fake.close_after {
                                r.headers_mut()
                                    .insert("connection", HeaderValue::from_static("close"));
                            }
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        port
    }

    async fn run(fake: Arc<Fake>, extra: &[&str]) -> Output {
        let port = serve(Arc::clone(&fake)).await;
        let target = format!("mesh://127.0.0.1:{port}");
        let mut argv = vec![
            "load",
            "--target",
            &target,
            "--producers",
            "2",
            "--window",
            "4",
            "--consumer-connections",
            "3",
            "--no-baseline",
        ];
        argv.extend_from_slice(extra);
        let args = Cli::parse_from(argv).args;
        let mesh = MeshTarget::parse(&target).unwrap().unwrap();
        let mailboxes: Vec<MailboxId> = ["X26ABC1", "X26ABC2", "X26ABC3"]
            .iter()
            .map(|m| MailboxId::parse(m).unwrap())
            .collect();
        let workflow = WorkflowId::parse("SPINE_LOAD").unwrap();
        drive(&args, mesh, mailboxes, 3, workflow).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_send_is_received_once() {
        let fake = Arc::new(Fake::default());
        // Consumers poll rarely, so inboxes build a backlog of full pages.
        let out = run(
            Arc::clone(&fake),
            &[
                "--seconds",
                "1",
                "--size",
                "100",
                "--poll-ms",
                "400",
                "--drain-seconds",
                "20",
            ],
        )
        .await;
        assert!(out.acked > 0, "{out:?}");
        assert_eq!(out.acked, out.sent, "{out:?}");
        assert_eq!(out.send_errors, 0, "{out:?}");
        assert_eq!(out.consumer_errors, 0, "{out:?}");
        assert_eq!(out.received, out.acked, "{out:?}");
        assert_eq!((out.lost, out.duplicates), (0, 0), "{out:?}");
        assert_eq!(fake.refused.load(Ordering::Relaxed), 0);
        assert!(out.latency_us.p50 > 0);
        // With this backlog (tens of thousands in a debug build) pages
        // fill up and consumers list again at once.
        assert!(
            fake.full_pages.load(Ordering::Relaxed) > 0 || out.acked < 4_500,
            "{out:?}"
        );
        assert!(out.first_errors.is_empty(), "{:?}", out.first_errors);
        // Every inbox was emptied.
        assert!(fake
            .inboxes
            .lock()
            .unwrap()
            .values()
            .all(|i| i.queue.is_empty()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_messages_listed_again_are_duplicates() {
        let fake = Arc::new(Fake {
            relist_acknowledged: true,
            ..Fake::default()
        });
        let out = run(
            Arc::clone(&fake),
            &["--seconds", "0.3", "--rate", "100", "--drain-seconds", "1"],
        )
        .await;
        assert!(out.acked > 0 && out.lost == 0, "{out:?}");
        assert!(out.duplicates > 0, "{out:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_the_server_closes_are_replaced_without_errors() {
        let fake = Arc::new(Fake {
            close_after: 7,
            ..Fake::default()
        });
        let out = run(
            Arc::clone(&fake),
            &["--seconds", "0.5", "--drain-seconds", "20"],
        )
        .await;
        assert!(out.acked > 0, "{out:?}");
        assert_eq!((out.send_errors, out.consumer_errors), (0, 0), "{out:?}");
        assert_eq!((out.lost, out.duplicates), (0, 0), "{out:?}");
        assert_eq!(out.received, out.acked, "{out:?}");
        assert_eq!(out.sent, out.acked, "{out:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_drops_every_connection_gives_errors_not_a_hot_loop() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                drop(stream);
            }
        });
        let target = format!("mesh://127.0.0.1:{port}");
        let argv = [
            "load",
            "--target",
            &target,
            "--producers",
            "1",
            "--window",
            "2",
            "--consumers",
            "0",
            "--seconds",
            "0.5",
            "--no-baseline",
        ];
        let args = Cli::parse_from(argv).args;
        let mesh = MeshTarget::parse(&target).unwrap().unwrap();
        let mailboxes = vec![MailboxId::parse("X26ABC1").unwrap()];
        let out = drive(&args, mesh, mailboxes, 0, WorkflowId::parse("W").unwrap())
            .await
            .unwrap();
        assert_eq!(out.acked, 0);
        assert!(
            out.send_errors > 0 && out.send_errors == out.sent,
            "{out:?}"
        );
        assert!(!out.first_errors.is_empty());
        // Two connections, each replaced at most every 50 ms for 0.5 s.
        let n = accepted.load(Ordering::Relaxed);
        assert!(n <= 2 * 12, "{n} connections in 0.5 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_password_is_counted_as_send_errors() {
        let fake = Arc::new(Fake::default());
        let out = run(
            Arc::clone(&fake),
            &[
                "--seconds",
                "0.2",
                "--password",
                "wrong",
                "--consumers",
                "0",
            ],
        )
        .await;
        assert_eq!(out.acked, 0);
        assert!(
            out.send_errors > 0 && out.send_errors == out.sent,
            "{out:?}"
        );
        assert!(
            out.first_errors[0].contains("403"),
            "{:?}",
            out.first_errors
        );
    }
}
