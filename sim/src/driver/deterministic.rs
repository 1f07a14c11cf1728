//! The deterministic driver: the real node (core and actors) in this
//! process, on a virtual clock, fed one scenario event at a time.
//!
//! Invariants and why:
//! - One event at a time, each awaited before the next, with the clock set
//!   to the event's virtual time first: message ids (clock + seeded RNG),
//!   inbox orders and outcomes then depend only on the scenario and seed.
//! - Follow-up work the scenario does not list (a push consumer collecting
//!   a message, the end of a disk stall, an operator restarting a node whose
//!   log failed) is queued here with a virtual time and a sequence number
//!   from a range disjoint from the scenario's, so the merged order is total
//!   and reproducible.
//! - Only deterministic facts enter the event log (see `eventlog`);
//!   wall-clock latencies go to the report only.
//! - Every acknowledged send goes to the checker before anything else can
//!   happen to it; at the end every uncollected one is looked up in the
//!   node, so a lost message cannot go unnoticed.
//! - With `service_requests_per_send`, an acknowledged send is followed,
//!   before the next event, by its sender's PDS look-ups (`lookups`), each
//!   awaited: one `service` log line per send, counted in the report; a
//!   failed look-up is reported, not an invariant violation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spine_actors::node::{FaultTarget, NodeHandle, SendRequest};
use spine_actors::wal::failpoints;
use spine_core::directory::Directory;
use spine_core::envelope::MessageType;
use spine_core::ids::{MailboxId, MessageId};
use spine_core::message::{MessageStatus, SendHeader};
use spine_core::time::{ManualClock, Timestamp};
use spine_core::ErrorCode;

use super::lookups::{self, LookUps, Tally};
use super::net_faults::Network;
use super::node::SimNode;
use super::{rss_bytes, DriverConfig, Observe, RunResult};
use crate::checker::{Checker, Final};
use crate::content;
use crate::eventlog::EventLog;
use crate::log_event;
use crate::model::{Action, ConsumerMode, Fault, Population, SendSpec, SimEvent};

/// Sequence numbers of the driver's own follow-ups start here.
const OWN_SEQ: u64 = 1 << 62;
/// Most pages a final sweep reads per mailbox.
const SWEEP_PAGES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FollowUp {
    Collect { mailbox: MailboxId, id: MessageId },
    EndStall,
    OperatorRestart,
}

#[derive(Debug, Clone)]
struct Sent {
    at: Timestamp,
    from: MailboxId,
    seed: u64,
    bytes: u64,
    chunks: u32,
}

struct Run<'a, O: Observe> {
    config: &'a DriverConfig,
    observer: &'a mut O,
    node: SimNode,
    network: Option<Network>,
    clock: Arc<ManualClock>,
    log: EventLog,
    checker: Checker,
    consumers: BTreeMap<MailboxId, ConsumerMode>,
    sent: BTreeMap<MessageId, Sent>,
    follow: BinaryHeap<Reverse<(Timestamp, u64, FollowUp)>>,
    next_own: u64,
    log_failing: bool,
    /// Messages whose non-delivery report has been seen.
    reported: BTreeSet<MessageId>,
    refused: BTreeMap<String, u64>,
    scenario_events: u64,
    /// The PDS look-ups senders make (`service_requests_per_send` per
    /// message).
    lookups: LookUps,
}

/// Runs `events` against an in-process node. The run itself failing (the
/// node cannot start) is an error; a broken invariant is a result.
pub async fn run<O: Observe>(
    config: &DriverConfig,
    population: &Population,
    directory: Directory,
    events: impl Iterator<Item = SimEvent>,
    observer: &mut O,
) -> anyhow::Result<RunResult> {
    let wall = Instant::now();
    let clock = Arc::new(ManualClock::new(config.start));
    let node = SimNode::start(config, Arc::new(directory), Arc::clone(&clock)).await?;
    let mut run = Run {
        config,
        observer,
        node,
        network: None,
        clock,
        log: match &config.event_log {
            Some(path) => EventLog::to_file(path)?,
            None => EventLog::new(),
        },
        checker: Checker::new(),
        consumers: population
            .mailboxes
            .iter()
            .map(|m| (m.id.clone(), m.consumer))
            .collect(),
        sent: BTreeMap::new(),
        follow: BinaryHeap::new(),
        next_own: OWN_SEQ,
        log_failing: false,
        reported: BTreeSet::new(),
        refused: BTreeMap::new(),
        scenario_events: 0,
        lookups: LookUps::new(config.service_requests_per_send),
    };
    if let Some(first) = population.mailboxes.first() {
        run.network =
            Some(Network::start(&run.node.handle, first.id.clone(), first.password.clone()).await?);
    }
    let mut last = config.start;
    for event in events {
        run.follow_ups_until(event.at).await?;
        last = event.at;
        run.clock.set(event.at);
        run.scenario_events += 1;
        run.apply(&event).await?;
        run.observer.progress(run.scenario_events, event.at);
    }
    run.follow_ups_until(Timestamp::from_micros(u64::MAX))
        .await?;
    if let Some(Reverse((at, _, _))) = run.follow.peek() {
        last = last.max(*at);
    }
    if run.log_failing {
        run.recover(last).await?;
    }
    run.finish(last, wall).await
}

impl<O: Observe> Run<'_, O> {
    fn handle(&self) -> &NodeHandle {
        &self.node.handle
    }

    fn later(&mut self, at: Timestamp, what: FollowUp) {
        self.next_own += 1;
        self.follow.push(Reverse((at, self.next_own, what)));
    }

    async fn follow_ups_until(&mut self, until: Timestamp) -> anyhow::Result<()> {
        while let Some(Reverse((at, _, _))) = self.follow.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, what))) = self.follow.pop() else {
                break;
            };
            self.clock.set(at.max(self.clock_now()));
            let at = self.clock_now();
            match what {
                FollowUp::Collect { mailbox, id } => {
                    if let Ok(view) = self.handle().get(&id).await {
                        if view.status == MessageStatus::Accepted {
                            self.collect_data(at, &mailbox, id).await;
                        }
                    }
                }
                FollowUp::EndStall => {
                    failpoints::stall_sync(0);
                    log_event!(self.log, at, "fault-end", "disk_stall");
                }
                FollowUp::OperatorRestart => self.recover(at).await?,
            }
        }
        Ok(())
    }

    fn clock_now(&self) -> Timestamp {
        use spine_core::time::Clock;
        self.clock.now()
    }

    async fn apply(&mut self, event: &SimEvent) -> anyhow::Result<()> {
        let at = event.at;
        match &event.action {
            Action::Send(spec) => self.send(at, event.seq, spec).await,
            Action::Poll { mailbox } => self.poll(at, mailbox).await,
            Action::ExpiryTick => self.expire(at).await,
            Action::Fault(fault) => self.fault(at, *fault).await?,
            Action::Sample => self.sample(at),
        }
        Ok(())
    }

    async fn send(&mut self, at: Timestamp, seq: u64, spec: &SendSpec) {
        let chunks = spec.chunks.max(1);
        let size = content::chunk_size(spec.bytes, chunks);
        let mut header = SendHeader::simple(spec.to.clone(), spec.workflow.clone());
        header.total_chunks = chunks;
        let first = content::chunk(spec.content_seed, spec.bytes, size, 0);
        let started = Instant::now();
        let outcome = self
            .handle()
            .send(SendRequest {
                sender: spec.from.clone(),
                header,
                body: first,
            })
            .await;
        let id = match outcome {
            Ok(o) => o.message_id,
            Err(e) => {
                self.refuse(at, seq, e.code());
                return;
            }
        };
        for i in 1..chunks {
            let body = content::chunk(spec.content_seed, spec.bytes, size, i);
            if let Err(e) = self.handle().send_chunk(&spec.from, &id, i + 1, body).await {
                self.refuse(at, seq, e.code());
                return;
            }
        }
        let wall = started.elapsed();
        log_event!(
            self.log,
            at,
            "send",
            "#{seq} {}->{} {} bytes={} chunks={chunks} id={id}",
            spec.from,
            spec.to,
            spec.workflow,
            spec.bytes
        );
        let context = self.log.last().unwrap_or_default().to_string();
        self.checker.accepted(id, spec, self.log_failing, &context);
        self.sent.insert(
            id,
            Sent {
                at,
                from: spec.from.clone(),
                seed: spec.content_seed,
                bytes: spec.bytes,
                chunks,
            },
        );
        self.observer.send_accepted(at, wall, spec.bytes);
        self.look_up(at, seq, &spec.from).await;
        if let Some(ConsumerMode::Push { delay_ms }) = self.consumers.get(&spec.to).copied() {
            let when = at.saturating_add(Duration::from_millis(delay_ms));
            self.later(
                when,
                FollowUp::Collect {
                    mailbox: spec.to.clone(),
                    id,
                },
            );
        }
    }

    /// The sender's PDS look-ups that go with one message (Spine's service
    /// traffic mixed with MESH's), logged as one line with their outcomes
    /// and reported; see `lookups` for what is asked and why.
    async fn look_up(&mut self, at: Timestamp, seq: u64, from: &MailboxId) {
        if !self.lookups.enabled() {
            return;
        }
        let mut tally = Tally::default();
        let bodies: Vec<bytes::Bytes> = self.lookups.bodies(seq).collect();
        for body in bodies {
            let request = spine_actors::services::ServiceRequest {
                service: lookups::SERVICE.into(),
                interaction: lookups::INTERACTION.into(),
                asid: None,
                message_id: None,
                body,
            };
            let outcome = self.handle().request(from, request).await;
            tally.add(outcome.as_ref().map(|_| ()).map_err(|e| e.code()));
        }
        log_event!(
            self.log,
            at,
            "service",
            "#{seq} {from} {}",
            tally.describe()
        );
        self.observer.service_requests(at, tally.ok, &tally.failed);
    }

    fn refuse(&mut self, at: Timestamp, seq: u64, code: &str) {
        log_event!(self.log, at, "refused", "#{seq} {code}");
        *self.refused.entry(code.to_string()).or_insert(0) += 1;
        self.observer.send_refused(at, code);
    }

    async fn poll(&mut self, at: Timestamp, mailbox: &MailboxId) {
        let batch = match self.consumers.get(mailbox) {
            Some(ConsumerMode::Poll { batch, .. }) => (*batch).max(1),
            Some(ConsumerMode::Absent) => return,
            _ => 500,
        };
        let page = match self.handle().list_inbox(mailbox, None, None, batch).await {
            Ok(page) => page,
            Err(e) => {
                log_event!(self.log, at, "poll-failed", "{mailbox} {}", e.code());
                return;
            }
        };
        let data: Vec<MessageId> = page
            .messages
            .iter()
            .filter(|m| m.envelope.message_type == MessageType::Data)
            .map(|m| m.envelope.message_id)
            .collect();
        log_event!(
            self.log,
            at,
            "poll",
            "{mailbox} listed={} waiting={}",
            page.messages.len(),
            page.total
        );
        let context = self.log.last().unwrap_or_default().to_string();
        self.checker.listed(mailbox, &data, &context);
        for view in page.messages {
            let id = view.envelope.message_id;
            match view.envelope.message_type {
                MessageType::Data => self.collect_data(at, mailbox, id).await,
                MessageType::Report => {
                    let linked = view.envelope.linked_message_id;
                    if let Some(l) = linked {
                        self.reported.insert(l);
                    }
                    log_event!(
                        self.log,
                        at,
                        "report",
                        "{mailbox} {id} about={}",
                        linked.map_or_else(|| "-".to_string(), |l| l.to_string())
                    );
                    let context = self.log.last().unwrap_or_default().to_string();
                    self.checker.report(mailbox, id, linked, &context);
                    self.observer.report_received(at);
                    let _ = self.handle().acknowledge(mailbox, &id).await;
                }
            }
        }
    }

    async fn collect_data(&mut self, at: Timestamp, mailbox: &MailboxId, id: MessageId) {
        let known = self.sent.get(&id).cloned();
        let mut bytes_ok = true;
        let total = known.as_ref().map_or(1, |s| s.chunks);
        for chunk in 1..=total {
            match self.handle().download(mailbox, &id, chunk).await {
                Ok(d) => {
                    if let Some(s) = &known {
                        let size = content::chunk_size(s.bytes, s.chunks);
                        if d.body != content::chunk(s.seed, s.bytes, size, chunk - 1) {
                            bytes_ok = false;
                        }
                    }
                }
                Err(e) => {
                    log_event!(
                        self.log,
                        at,
                        "download-failed",
                        "{mailbox} {id} {}",
                        e.code()
                    );
                    return;
                }
            }
        }
        if let Err(e) = self.handle().acknowledge(mailbox, &id).await {
            log_event!(self.log, at, "ack-failed", "{mailbox} {id} {}", e.code());
            return;
        }
        log_event!(self.log, at, "collect", "{mailbox} {id} ok={bytes_ok}");
        let context = self.log.last().unwrap_or_default().to_string();
        self.checker.collected(mailbox, &id, bytes_ok, &context);
        if let Some(s) = self.sent.remove(&id) {
            self.observer.delivered(at, at.saturating_sub(s.at));
        }
    }

    async fn expire(&mut self, at: Timestamp) {
        let mut total = 0u64;
        // Each round is bounded per partition; repeat until nothing is due.
        for _ in 0..1000 {
            match self.handle().expire_now().await {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) => {
                    log_event!(self.log, at, "expiry-failed", "{}", e.code());
                    break;
                }
            }
        }
        log_event!(self.log, at, "expiry", "changed={total}");
        if total > 0 {
            self.observer.expired(at, total);
            self.observe_reports(at).await;
        }
    }

    /// Looks at the inboxes of the senders of messages that are now past
    /// their expiry and whose report has not been seen, so every report is
    /// seen before it can itself expire, whoever its mailbox is: push
    /// consumers collect theirs now, pollers at their next poll, absent
    /// mailboxes never (the report is only observed).
    async fn observe_reports(&mut self, at: Timestamp) {
        let expiry = self.config.inbox_expiry;
        let senders: BTreeSet<MailboxId> = self
            .sent
            .iter()
            .filter(|(id, s)| s.at.saturating_add(expiry) <= at && !self.reported.contains(id))
            .map(|(_, s)| s.from.clone())
            .collect();
        for sender in senders {
            let push = matches!(self.consumers.get(&sender), Some(ConsumerMode::Push { .. }));
            let mut after = None;
            for _ in 0..SWEEP_PAGES {
                let Ok(page) = self.handle().list_inbox(&sender, None, after, 5000).await else {
                    break;
                };
                for m in &page.messages {
                    if m.envelope.message_type != MessageType::Report {
                        continue;
                    }
                    let (id, linked) = (m.envelope.message_id, m.envelope.linked_message_id);
                    if let Some(l) = linked {
                        self.reported.insert(l);
                    }
                    log_event!(self.log, at, "report-seen", "{sender} {id}");
                    let context = self.log.last().unwrap_or_default().to_string();
                    self.checker.report(&sender, id, linked, &context);
                    if push && self.handle().acknowledge(&sender, &id).await.is_ok() {
                        self.observer.report_received(at);
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
    }

    fn sample(&mut self, at: Timestamp) {
        let depths = self.handle().queue_depths();
        let deepest = depths.partitions.iter().copied().max().unwrap_or(0);
        self.observer.queue_depth(at, deepest, depths.wal_in_flight);
        let (bytes, syncs) = self.handle().log_totals();
        self.observer.wal(at, bytes, syncs);
        let rss = rss_bytes();
        self.observer.memory(at, rss);
        let context = format!("sample at {}", at.to_rfc3339());
        self.checker.memory(rss, self.config.memory_limit, &context);
    }

    async fn fault(&mut self, at: Timestamp, fault: Fault) -> anyhow::Result<()> {
        let what = match fault {
            Fault::PartitionPanic { partition } => {
                let p = partition % self.config.partitions.max(1);
                let ok = self
                    .handle()
                    .inject_panic(FaultTarget::Partition(p))
                    .await
                    .is_ok();
                format!("partition_panic partition={p} injected={ok}")
            }
            Fault::NodeCrash => {
                if !self.node.durable() {
                    "node_crash skipped=memory-log".to_string()
                } else {
                    self.node.restart().await?;
                    self.rebind().await?;
                    "node_crash restarted=true".to_string()
                }
            }
            Fault::DiskStall {
                millis,
                duration_secs,
            } => {
                failpoints::stall_sync(millis);
                self.later(
                    at.saturating_add(Duration::from_secs(duration_secs)),
                    FollowUp::EndStall,
                );
                format!("disk_stall millis={millis} secs={duration_secs}")
            }
            Fault::FsyncFailure => {
                if !self.node.durable() {
                    "fsync_failure skipped=memory-log".to_string()
                } else {
                    failpoints::fail_sync(true);
                    self.log_failing = true;
                    self.later(
                        at.saturating_add(self.config.fsync_recovery),
                        FollowUp::OperatorRestart,
                    );
                    "fsync_failure".to_string()
                }
            }
            Fault::DropConnections => match self.network.as_mut() {
                Some(net) => {
                    let ok = net.drop_connections(&self.node.handle).await?;
                    format!("drop_connections client_reconnected={ok}")
                }
                None => "drop_connections skipped=no-network".to_string(),
            },
            Fault::ReconnectStorm { connections } => match &self.network {
                Some(net) => {
                    let ok = net.reconnect_storm(connections).await?;
                    format!("reconnect_storm connections={connections} authenticated={ok}")
                }
                None => "reconnect_storm skipped=no-network".to_string(),
            },
            Fault::MalformedInput { frames } => match &self.network {
                Some(net) => {
                    let answered = net.malformed(frames).await?;
                    format!(
                        "malformed_input frames={frames} refused_with_answer={}",
                        answered.min(frames)
                    )
                }
                None => "malformed_input skipped=no-network".to_string(),
            },
        };
        log_event!(self.log, at, "fault", "{what}");
        self.observer.fault(at, &what);
        Ok(())
    }

    async fn rebind(&mut self) -> anyhow::Result<()> {
        if let Some(net) = self.network.as_mut() {
            net.rebind(&self.node.handle).await?;
        }
        Ok(())
    }

    /// The operator's answer to a failed log: fix the disk, restart.
    async fn recover(&mut self, at: Timestamp) -> anyhow::Result<()> {
        failpoints::fail_sync(false);
        self.log_failing = false;
        self.node.restart().await?;
        self.rebind().await?;
        log_event!(
            self.log,
            at,
            "recovered",
            "node restarted after the log failure"
        );
        self.observer.fault(at, "operator restart");
        Ok(())
    }

    async fn finish(mut self, last: Timestamp, wall: Instant) -> anyhow::Result<RunResult> {
        // What became of every acknowledged message not collected?
        let uncollected: Vec<(MessageId, MailboxId)> = self
            .checker
            .uncollected()
            .map(|(id, from)| (*id, from.clone()))
            .collect();
        let mut fate = BTreeMap::new();
        let mut senders = BTreeSet::new();
        for (id, from) in &uncollected {
            let state = match self.handle().get(id).await {
                Ok(v) => match v.status {
                    MessageStatus::Expired => {
                        senders.insert(from.clone());
                        Final::Expired
                    }
                    MessageStatus::Acknowledged => Final::Acknowledged,
                    MessageStatus::Accepted | MessageStatus::Uploading => Final::Waiting,
                },
                Err(_) => Final::Missing,
            };
            fate.insert(*id, state);
        }
        // Reports still waiting in senders' inboxes.
        for sender in &senders {
            let mut after = None;
            for _ in 0..SWEEP_PAGES {
                let Ok(page) = self.handle().list_inbox(sender, None, after, 5000).await else {
                    break;
                };
                for m in &page.messages {
                    if m.envelope.message_type == MessageType::Report {
                        self.checker.report(
                            sender,
                            m.envelope.message_id,
                            m.envelope.linked_message_id,
                            "final sweep",
                        );
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        log_event!(
            self.log,
            last,
            "end",
            "accepted={} uncollected={}",
            self.checker.accepted,
            uncollected.len()
        );
        let context = format!("seed {}, end of run", self.config.seed);
        let (mut verdicts, checker) = self.checker.finish(&fate, &context);
        let seed = self.config.seed;
        for v in &mut verdicts {
            if let Some(d) = &mut v.detail {
                *d = format!("{d}; seed {seed}");
            }
        }
        if let Some(net) = self.network.take() {
            net.stop().await;
        }
        failpoints::stall_sync(0);
        failpoints::fail_sync(false);
        self.node.stop().await;
        Ok(RunResult {
            event_log_hash: self.log.hash(),
            events: self.log.len(),
            scenario_events: self.scenario_events,
            virtual_duration: last.saturating_sub(self.config.start),
            wall_duration: wall.elapsed(),
            verdicts,
            accepted: checker.accepted,
            refused: self.refused,
            delivered: checker.collected,
            expired: checker.expired,
            reports: checker.reports,
            lost: checker.lost,
            misdelivered: checker.misdelivered,
            out_of_order: checker.out_of_order,
            tail: self.log.tail().map(str::to_string).collect(),
        })
    }
}
