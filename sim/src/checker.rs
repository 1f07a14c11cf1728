//! [`Checker`]: the run's invariants, checked as events happen and at the
//! end. A violation names the invariant, the message, and the event that
//! broke it; the driver adds the seed.
//!
//! Invariants checked (issue 6):
//! - **no acknowledged message lost**: every send the node acknowledged is,
//!   at the end, either collected by its recipient or still held by the
//!   node (waiting, or expired with a report);
//! - **nothing delivered to the wrong mailbox**: a mailbox only ever
//!   collects messages addressed to it, with exactly the bytes sent;
//! - **per-mailbox order kept**: an inbox lists messages in the order they
//!   were accepted;
//! - **one report per expired message**: every message that expired yields
//!   exactly one non-delivery report to its sender, and no report names a
//!   message that did not expire;
//! - **nothing acknowledged that was not durable**: while the log is
//!   failing, no send is acknowledged;
//! - **memory within limits**: the process's resident memory stays under
//!   the scenario's bound.
//!
//! Memory: one small record per acknowledged message (no payloads; content
//! is recomputed from its seed).

use std::collections::BTreeMap;

use spine_core::ids::{MailboxId, MessageId};

use crate::model::SendSpec;

/// Names of the invariants, in report order.
pub const INVARIANTS: [&str; 6] = [
    "no acknowledged message lost",
    "nothing delivered to the wrong mailbox",
    "per-mailbox order kept",
    "one report per expired message",
    "nothing acknowledged that was not durable",
    "memory within limits",
];

/// One invariant's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Which invariant.
    pub name: &'static str,
    /// Held throughout.
    pub ok: bool,
    /// The first violation: what and where.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Collected,
}

#[derive(Debug, Clone)]
struct Expected {
    from: MailboxId,
    to: MailboxId,
    /// When the send was issued and when its acknowledgement arrived, on
    /// the driver's tick counter. In deterministic mode both are the
    /// message's place in the run; in live mode concurrent sends overlap,
    /// and only a message acknowledged before another was even issued
    /// must be listed first.
    issued: u64,
    acked: u64,
    fate: Fate,
    reports: u32,
}

/// What the node says of a message at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    /// Not known to the node.
    Missing,
    /// Waiting in its inbox (or uploading).
    Waiting,
    /// Collected and acknowledged.
    Acknowledged,
    /// Expired.
    Expired,
}

/// Tracks what must be true.
#[derive(Debug, Default)]
pub struct Checker {
    expected: BTreeMap<MessageId, Expected>,
    seen_reports: std::collections::BTreeSet<MessageId>,
    tick: u64,
    first: BTreeMap<&'static str, String>,
    /// Acknowledged sends.
    pub accepted: u64,
    /// Data messages collected.
    pub collected: u64,
    /// Reports collected.
    pub reports: u64,
    /// Collections of a message addressed elsewhere or with wrong bytes.
    pub misdelivered: u64,
    /// Listings out of acceptance order.
    pub out_of_order: u64,
    /// Acknowledged messages missing at the end.
    pub lost: u64,
    /// Messages that expired.
    pub expired: u64,
    peak_rss: u64,
}

impl Checker {
    /// A fresh checker.
    pub fn new() -> Checker {
        Checker::default()
    }

    fn violate(&mut self, invariant: &'static str, detail: String) {
        self.first.entry(invariant).or_insert(detail);
    }

    /// The node acknowledged `id` for `spec` (sends applied one at a time).
    /// `log_failing`: the log was known to be failing (an fsync fault was
    /// active) when it answered.
    pub fn accepted(&mut self, id: MessageId, spec: &SendSpec, log_failing: bool, event: &str) {
        self.tick += 1;
        let t = self.tick;
        self.accepted_between(id, spec, log_failing, event, t, t);
    }

    /// A tick of the driver's clock for [`Checker::accepted_between`].
    pub fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// As [`Checker::accepted`], for a send issued at tick `issued` and
    /// acknowledged at tick `acked` (sends that overlap may be accepted in
    /// either order).
    pub fn accepted_between(
        &mut self,
        id: MessageId,
        spec: &SendSpec,
        log_failing: bool,
        event: &str,
        issued: u64,
        acked: u64,
    ) {
        if log_failing {
            self.violate(
                INVARIANTS[4],
                format!("send {id} was acknowledged while fdatasync was failing ({event})"),
            );
        }
        let expected = Expected {
            from: spec.from.clone(),
            to: spec.to.clone(),
            issued,
            acked,
            fate: Fate::Waiting,
            reports: 0,
        };
        if self.expected.insert(id, expected).is_some() {
            self.violate(
                INVARIANTS[0],
                format!("message id {id} was issued twice ({event})"),
            );
        }
        self.accepted += 1;
    }

    /// Whether `id` was accepted (and so is judged when collected).
    pub fn expects(&self, id: &MessageId) -> bool {
        self.expected.contains_key(id)
    }

    /// `mailbox` listed these data messages, in this order.
    pub fn listed(&mut self, mailbox: &MailboxId, ids: &[MessageId], event: &str) {
        // The latest issue tick among the messages listed so far: a message
        // acknowledged before that was listed after one issued later.
        let mut latest_issued: Option<(u64, MessageId)> = None;
        for id in ids {
            let Some(e) = self.expected.get(id) else {
                continue; // a send whose answer was lost (unknown outcome)
            };
            let (to, issued, acked) = (e.to.clone(), e.issued, e.acked);
            if &to != mailbox {
                let detail = format!("{mailbox} listed {id}, addressed to {to} ({event})");
                self.misdelivered += 1;
                self.violate(INVARIANTS[1], detail);
                continue;
            }
            if let Some((before, earlier)) = latest_issued {
                if acked < before {
                    self.out_of_order += 1;
                    self.violate(
                        INVARIANTS[2],
                        format!(
                            "{mailbox} listed {id} after {earlier}, though {id} was accepted before {earlier} was sent ({event})"
                        ),
                    );
                }
            }
            if latest_issued.is_none_or(|(t, _)| issued > t) {
                latest_issued = Some((issued, *id));
            }
        }
    }

    /// `mailbox` collected data message `id`; `bytes_ok` says whether its
    /// content matched what was sent.
    pub fn collected(&mut self, mailbox: &MailboxId, id: &MessageId, bytes_ok: bool, event: &str) {
        let Some(e) = self.expected.get_mut(id) else {
            return;
        };
        let wrong = if &e.to != mailbox {
            Some(format!(
                "{mailbox} collected {id}, addressed to {} ({event})",
                e.to
            ))
        } else if !bytes_ok {
            Some(format!(
                "{mailbox} collected {id} with bytes that differ from those sent ({event})"
            ))
        } else if e.fate == Fate::Collected {
            Some(format!(
                "{mailbox} collected {id} again after acknowledging it ({event})"
            ))
        } else {
            None
        };
        e.fate = Fate::Collected;
        match wrong {
            Some(detail) => {
                self.misdelivered += 1;
                self.violate(INVARIANTS[1], detail);
            }
            None => self.collected += 1,
        }
    }

    /// `mailbox` holds (or collected) non-delivery report `report_id`
    /// about `linked`. A report seen again (listed, then collected) counts
    /// once.
    pub fn report(
        &mut self,
        mailbox: &MailboxId,
        report_id: MessageId,
        linked: Option<MessageId>,
        event: &str,
    ) {
        if !self.seen_reports.insert(report_id) {
            return;
        }
        self.reports += 1;
        let Some(linked) = linked else {
            self.violate(
                INVARIANTS[3],
                format!("{mailbox} got report {report_id}, which names no message ({event})"),
            );
            return;
        };
        let Some(e) = self.expected.get_mut(&linked) else {
            return; // about a send whose outcome the driver did not learn
        };
        e.reports += 1;
        if &e.from != mailbox {
            let detail = format!(
                "{mailbox} got the report about {linked}, which {} sent ({event})",
                e.from
            );
            self.violate(INVARIANTS[3], detail);
        }
    }

    /// A memory sample.
    pub fn memory(&mut self, rss: u64, limit: u64, event: &str) {
        self.peak_rss = self.peak_rss.max(rss);
        if limit > 0 && rss > limit {
            self.violate(
                INVARIANTS[5],
                format!(
                    "resident memory {} MiB exceeds the limit of {} MiB ({event})",
                    rss >> 20,
                    limit >> 20
                ),
            );
        }
    }

    /// Peak resident memory sampled.
    pub fn peak_rss(&self) -> u64 {
        self.peak_rss
    }

    /// Messages that were acknowledged and not yet collected (the driver
    /// asks the node about each at the end), with their senders.
    pub fn uncollected(&self) -> impl Iterator<Item = (&MessageId, &MailboxId)> {
        self.expected
            .iter()
            .filter(|(_, e)| e.fate == Fate::Waiting)
            .map(|(id, e)| (id, &e.from))
    }

    /// Recipients of acknowledged messages not yet collected.
    pub fn waiting_recipients(&self) -> std::collections::BTreeSet<MailboxId> {
        self.expected
            .values()
            .filter(|e| e.fate == Fate::Waiting)
            .map(|e| e.to.clone())
            .collect()
    }

    /// Ends the run: `fate` says what the node holds for each uncollected
    /// message; reports still waiting in inboxes have been passed to
    /// [`Checker::report`] by the driver's final sweep.
    pub fn finish(
        mut self,
        fate: &BTreeMap<MessageId, Final>,
        context: &str,
    ) -> (Vec<Verdict>, Checker) {
        let mut lost = Vec::new();
        let mut report_problems = Vec::new();
        for (id, e) in &self.expected {
            let state = match e.fate {
                Fate::Collected => Final::Acknowledged,
                Fate::Waiting => fate.get(id).copied().unwrap_or(Final::Missing),
            };
            match state {
                Final::Missing => lost.push(*id),
                Final::Expired if e.reports != 1 => report_problems.push(format!(
                    "{id} expired and its sender {} got {} reports",
                    e.from, e.reports
                )),
                Final::Waiting | Final::Acknowledged if e.reports > 0 => report_problems.push(
                    format!("{id} did not expire but its sender got a report about it"),
                ),
                _ => {}
            }
            if state == Final::Expired {
                self.expired += 1;
            }
        }
        self.lost = lost.len() as u64;
        if let Some(id) = lost.first() {
            let detail = format!(
                "{} acknowledged messages missing at the end, first {id} ({context})",
                lost.len()
            );
            self.violate(INVARIANTS[0], detail);
        }
        if let Some(first) = report_problems.first() {
            let detail = format!(
                "{} problems, first: {first} ({context})",
                report_problems.len()
            );
            self.violate(INVARIANTS[3], detail);
        }
        let verdicts = INVARIANTS
            .iter()
            .map(|name| Verdict {
                name,
                ok: !self.first.contains_key(name),
                detail: self.first.get(name).cloned(),
            })
            .collect();
        (verdicts, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::ids::WorkflowId;

    fn mb(s: &str) -> MailboxId {
        MailboxId::parse(s).unwrap()
    }

    fn id(n: u32) -> MessageId {
        MessageId::parse(&format!("20260101000000{n:06}_ABCDEF")).unwrap()
    }

    fn spec(from: &str, to: &str) -> SendSpec {
        SendSpec {
            from: mb(from),
            to: mb(to),
            workflow: WorkflowId::parse("WF").unwrap(),
            bytes: 10,
            chunks: 1,
            content_seed: 1,
        }
    }

    fn failed(verdicts: &[Verdict]) -> Vec<&'static str> {
        verdicts.iter().filter(|v| !v.ok).map(|v| v.name).collect()
    }

    #[test]
    fn a_clean_run_passes() {
        let mut c = Checker::new();
        c.accepted(id(1), &spec("A", "B"), false, "e1");
        c.accepted(id(2), &spec("A", "B"), false, "e2");
        c.accepted(id(3), &spec("B", "C"), false, "e3");
        c.listed(&mb("B"), &[id(1), id(2)], "poll");
        c.collected(&mb("B"), &id(1), true, "get");
        c.collected(&mb("B"), &id(2), true, "get");
        c.report(&mb("B"), id(90), Some(id(3)), "ndr");
        c.report(&mb("B"), id(90), Some(id(3)), "the same report, collected");
        let fate = BTreeMap::from([(id(3), Final::Expired)]);
        let (v, c) = c.finish(&fate, "end");
        assert!(failed(&v).is_empty(), "{v:?}");
        assert_eq!((c.accepted, c.collected, c.expired), (3, 2, 1));
    }

    #[test]
    fn each_violation_is_caught() {
        let mut c = Checker::new();
        c.accepted(id(1), &spec("A", "B"), false, "e1");
        c.accepted(id(2), &spec("A", "B"), false, "e2");
        c.accepted(id(3), &spec("A", "C"), true, "e3");
        c.accepted(id(4), &spec("A", "C"), false, "e4");
        c.listed(&mb("B"), &[id(2), id(1)], "poll");
        c.collected(&mb("C"), &id(1), true, "wrong mailbox");
        c.memory(200 << 20, 100 << 20, "sample");
        let fate = BTreeMap::from([(id(4), Final::Expired)]);
        let (v, c) = c.finish(&fate, "end");
        assert_eq!(failed(&v), INVARIANTS.to_vec());
        assert_eq!(c.lost, 2, "ids 2 and 3 are missing");
        assert!(v[1].detail.as_deref().unwrap().contains("wrong mailbox"));
    }
}
