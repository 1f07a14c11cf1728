//! What the live driver's tasks report, and how each report is judged.
//!
//! Sends, polls and pushes run on their own tasks and report through one
//! channel, so reports about one message may arrive in either order: a
//! push can be collected before the sender's answer is read. A collect of
//! an id the checker has not heard of yet is held in [`InFlight`] and
//! judged when the send's answer arrives, so a message is never counted
//! uncollected (or its collection lost) because of that race.

use std::collections::BTreeMap;
use std::time::Duration;

use spine_core::ids::{MailboxId, MessageId};
use spine_core::time::Timestamp;

use super::lookups::Tally;
use super::Observe;
use crate::checker::Checker;
use crate::eventlog::EventLog;
use crate::log_event;
use crate::model::SendSpec;

/// One report from a task of the live run.
pub(super) enum Outcome {
    Sent {
        spec: SendSpec,
        issued: u64,
        result: Result<MessageId, String>,
        wall: Duration,
        at: Timestamp,
    },
    Listed {
        mailbox: MailboxId,
        data: Vec<MessageId>,
        at: Timestamp,
    },
    Collected {
        mailbox: MailboxId,
        id: MessageId,
        ok: bool,
        at: Timestamp,
    },
    Report {
        mailbox: MailboxId,
        id: MessageId,
        linked: Option<MessageId>,
        at: Timestamp,
    },
    Failed {
        what: String,
        at: Timestamp,
    },
    LookedUp {
        from: MailboxId,
        tally: Tally,
        at: Timestamp,
    },
}

/// Sends the driver has heard of, and collects it has not placed yet.
#[derive(Default)]
pub(super) struct InFlight {
    /// Accepted and not yet collected, with the virtual time of the send.
    sent_at: BTreeMap<MessageId, Timestamp>,
    /// Collected (by a push) before the sender's answer reached the driver.
    early: BTreeMap<MessageId, (MailboxId, bool, Timestamp)>,
}

/// Judges one report: records it in the log, the checker and the observer.
pub(super) fn handle<O: Observe>(
    o: Outcome,
    checker: &mut Checker,
    log: &mut EventLog,
    observer: &mut O,
    refused: &mut BTreeMap<String, u64>,
    flight: &mut InFlight,
) {
    match o {
        Outcome::Sent {
            spec,
            issued,
            result,
            wall,
            at,
        } => match result {
            Ok(id) => {
                let acked = checker.tick();
                log_event!(log, at, "send", "{}->{} id={id}", spec.from, spec.to);
                checker.accepted_between(id, &spec, false, "live send", issued, acked);
                observer.send_accepted(at, wall, spec.bytes);
                match flight.early.remove(&id) {
                    Some((mailbox, ok, collected_at)) => {
                        log_event!(log, collected_at, "collect", "{mailbox} {id} ok={ok}");
                        checker.collected(&mailbox, &id, ok, "live collect");
                        observer.delivered(at.max(collected_at), Duration::ZERO);
                    }
                    None => {
                        flight.sent_at.insert(id, at);
                    }
                }
            }
            Err(code) => {
                log_event!(log, at, "refused", "{}->{} {code}", spec.from, spec.to);
                *refused.entry(code.clone()).or_insert(0) += 1;
                observer.send_refused(at, &code);
            }
        },
        Outcome::Listed { mailbox, data, at } => {
            log_event!(log, at, "poll", "{mailbox} listed={}", data.len());
            checker.listed(&mailbox, &data, "live poll");
        }
        Outcome::Collected {
            mailbox,
            id,
            ok,
            at,
        } => {
            if !checker.expects(&id) {
                // Pushed and collected before the sender's answer came
                // through the channel: judged when that answer does.
                flight.early.insert(id, (mailbox, ok, at));
                return;
            }
            log_event!(log, at, "collect", "{mailbox} {id} ok={ok}");
            checker.collected(&mailbox, &id, ok, "live collect");
            if let Some(sent) = flight.sent_at.remove(&id) {
                let now = at.max(sent);
                observer.delivered(now, now.saturating_sub(sent));
            }
        }
        Outcome::Report {
            mailbox,
            id,
            linked,
            at,
        } => {
            log_event!(log, at, "report", "{mailbox}");
            checker.report(&mailbox, id, linked, "live report");
            observer.report_received(at);
        }
        Outcome::Failed { what, at } => log_event!(log, at, "failed", "{what}"),
        Outcome::LookedUp { from, tally, at } => {
            log_event!(log, at, "service", "{from} {}", tally.describe());
            observer.service_requests(at, tally.ok, &tally.failed);
        }
    }
}

#[cfg(test)]
#[path = "live_outcomes_tests.rs"]
mod tests;
