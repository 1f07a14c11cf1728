//! Commands: validate a request against current state and build the events
//! to log. Nothing here changes state; the caller logs the events and then
//! applies them (see [`super::store`]). Keeping validation before logging
//! means the log only ever holds events that apply cleanly.

use std::sync::Arc;

use crate::envelope::{Envelope, MessageType, ReportStatus};
use crate::ids::{LocalId, MailboxId, MessageId, WorkflowId};
use crate::time::Timestamp;

use super::error::StoreError;
use super::event::Event;
use super::status::MessageStatus;
use super::store::MessageStore;

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// MESH error code of a non-delivery report.
pub const NDR_CODE: &str = "14";

/// The outcome of checking a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendCheck {
    /// Log this event.
    New(Event),
    /// The sender already sent this idempotency key: answer with this id.
    Duplicate(MessageId),
}

/// The outcome of checking an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckCheck {
    /// Log this event.
    Log(Event),
    /// Already acknowledged: nothing to log, report success (idempotent).
    AlreadyAcknowledged,
}

/// Bounds on one step of a reset (see [`MessageStore::reset_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetLimits {
    /// Most messages examined.
    pub scan: usize,
    /// Most `Purge` events built.
    pub purge: usize,
}

/// One bounded step of a reset: what to log, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetStep {
    /// `Purge` events for matching messages, in id order.
    pub events: Vec<Event>,
    /// Continue after this id (exclusive); `None`: from the first message.
    pub after: Option<MessageId>,
    /// The scan reached the last message: nothing more to step through.
    pub done: bool,
    /// The step stopped at this matching message because the caller said
    /// it is busy (a change to it is in flight); continue once it is idle.
    pub blocked_on: Option<MessageId>,
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(StoreError::IdempotencyKey(format!(
            "length {} is outside 1..={MAX_IDEMPOTENCY_KEY_BYTES}",
            key.len()
        )));
    }
    if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(StoreError::IdempotencyKey(format!(
            "character {c:?} is not visible ASCII"
        )));
    }
    Ok(())
}

impl MessageStore {
    /// Checks a new message (chunk 1) and builds its `Create` event.
    pub fn check_send(
        &self,
        envelope: impl Into<Arc<Envelope>>,
        idempotency_key: Option<String>,
    ) -> Result<SendCheck, StoreError> {
        let envelope = envelope.into();
        if let Some(key) = &idempotency_key {
            check_key(key)?;
            if let Some(id) = self.by_idempotency_key(&envelope.sender, key) {
                return Ok(SendCheck::Duplicate(*id));
            }
        }
        envelope.validate()?;
        if self.messages.contains_key(&envelope.message_id) {
            return Err(StoreError::AlreadyExists(envelope.message_id));
        }
        if self.messages.len() as u64 >= self.config.max_messages {
            return Err(StoreError::Limit {
                what: "stored messages",
                limit: self.config.max_messages,
                hint: "a message counts until it is purged (storage.purge_after after creation, acknowledged or not); raise storage.max_messages (--max-messages) or shorten storage.purge_after (--purge-after-secs)",
            });
        }
        if self.inbox_len(&envelope.recipient) as u64 >= self.config.max_inbox_depth {
            return Err(StoreError::Limit {
                what: "inbox depth",
                limit: self.config.max_inbox_depth,
                hint: "the recipient must collect and acknowledge its messages before more can be delivered, or raise storage.max_inbox_depth (--max-inbox-depth)",
            });
        }
        Ok(SendCheck::New(Event::Create {
            envelope,
            idempotency_key,
        }))
    }

    /// Checks chunk `chunk_no` of an uploading message from `sender`.
    pub fn check_chunk(
        &self,
        sender: &MailboxId,
        id: &MessageId,
        chunk_no: u32,
    ) -> Result<Event, StoreError> {
        let state = self.get(id).ok_or(StoreError::NotFound(*id))?;
        if &state.envelope.sender != sender {
            return Err(StoreError::NotSender {
                id: *id,
                mailbox: sender.clone(),
            });
        }
        if state.status != MessageStatus::Uploading {
            return Err(StoreError::UploadComplete(*id));
        }
        let total = state.envelope.total_chunks;
        if chunk_no < 2 || chunk_no > total {
            return Err(StoreError::ChunkOutOfRange {
                id: *id,
                chunk: chunk_no,
                total,
            });
        }
        Ok(Event::Chunk {
            message_id: *id,
            origin: state.origin,
            chunk_no,
        })
    }

    /// Checks an acknowledgement by `mailbox` at `now`.
    pub fn check_ack(
        &self,
        mailbox: &MailboxId,
        id: &MessageId,
        now: Timestamp,
    ) -> Result<AckCheck, StoreError> {
        let state = self.get(id).ok_or(StoreError::NotFound(*id))?;
        if &state.envelope.recipient != mailbox {
            return Err(StoreError::NotRecipient {
                id: *id,
                mailbox: mailbox.clone(),
            });
        }
        match state.status {
            MessageStatus::Accepted => Ok(AckCheck::Log(Event::Acknowledge {
                message_id: *id,
                origin: state.origin,
                at: now,
            })),
            MessageStatus::Acknowledged => Ok(AckCheck::AlreadyAcknowledged),
            status => Err(StoreError::WrongStatus {
                id: *id,
                status,
                what: "only an accepted message can be acknowledged",
            }),
        }
    }

    /// Events expiring messages due at `now`: for each, one atomic group of
    /// `[Expire, Create(non-delivery report to the sender)]` (reports that
    /// expire produce no report, so reports can never loop). `next_id`
    /// supplies report ids, given the report's recipient (the original
    /// sender) so the id can name the partition that will own the report.
    pub fn expiry_events(
        &self,
        now: Timestamp,
        limit: usize,
        mut next_id: impl FnMut(&MailboxId) -> Result<MessageId, StoreError>,
    ) -> Result<Vec<Vec<Event>>, StoreError> {
        let mut groups = Vec::new();
        for state in self.due_expiry(now, limit) {
            let env = &state.envelope;
            let report = match env.message_type {
                MessageType::Data => Some(non_delivery_report(
                    env,
                    next_id(&env.sender)?,
                    now,
                    self.config.inbox_expiry,
                )),
                MessageType::Report => None,
            };
            let mut group = vec![Event::Expire {
                message_id: env.message_id,
                origin: state.origin,
                at: now,
                report_id: report.as_ref().map(|r| r.message_id),
            }];
            if let Some(report) = report {
                group.push(Event::Create {
                    envelope: Arc::new(report),
                    idempotency_key: None,
                });
            }
            groups.push(group);
        }
        Ok(groups)
    }

    /// One bounded step of a reset: `Purge` events for the messages after
    /// `after` (in id order) whose sender or recipient is `mailbox`, or for
    /// every message when `mailbox` is `None`, whatever their status. Stops
    /// after examining `limits.scan` messages or building `limits.purge`
    /// events, and before a matching message for which `busy` is true (its
    /// `origin` may be about to change: a purge built now could name a
    /// stale one). Repeat with the returned `after` until `done`.
    pub fn reset_events(
        &self,
        mailbox: Option<&MailboxId>,
        after: Option<&MessageId>,
        now: Timestamp,
        limits: ResetLimits,
        mut busy: impl FnMut(&MessageId) -> bool,
    ) -> ResetStep {
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut step = ResetStep {
            events: Vec::new(),
            after: after.copied(),
            done: false,
            blocked_on: None,
        };
        let range = self.messages.range((start, std::ops::Bound::Unbounded));
        for (scanned, (id, state)) in range.enumerate() {
            if scanned >= limits.scan.max(1) || step.events.len() >= limits.purge.max(1) {
                return step;
            }
            let env = &state.envelope;
            let matches = mailbox.is_none_or(|m| &env.sender == m || &env.recipient == m);
            if matches {
                if busy(id) {
                    step.blocked_on = Some(*id);
                    return step;
                }
                step.events.push(Event::Purge {
                    message_id: *id,
                    origin: state.origin,
                    at: now,
                });
            }
            step.after = Some(*id);
        }
        step.done = true;
        step
    }

    /// `Purge` events for messages due at `now`.
    pub fn purge_events(&self, now: Timestamp, limit: usize) -> Vec<Event> {
        self.due_purge(now, limit)
            .into_iter()
            .map(|s| Event::Purge {
                message_id: s.envelope.message_id,
                origin: s.origin,
                at: now,
            })
            .collect()
    }
}

/// What a REPORT message says (see [`report_envelope`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// The report's id.
    pub message_id: MessageId,
    /// Whom it is from (the mailbox the report is about, for example the
    /// recipient that did not collect).
    pub sender: MailboxId,
    /// Whose inbox it goes to.
    pub recipient: MailboxId,
    /// The workflow it is about.
    pub workflow_id: WorkflowId,
    /// `Mex-Subject`.
    pub subject: Option<String>,
    /// `Mex-LocalID`.
    pub local_id: Option<LocalId>,
    /// `Mex-FileName`.
    pub file_name: Option<String>,
    /// The message it reports on.
    pub linked_message_id: Option<MessageId>,
    /// Code, event and description.
    pub status: ReportStatus,
}

/// A REPORT envelope: no content (0 chunks), created `now`, expiring after
/// `inbox_expiry` (at least 1 µs later). Shared by the non-delivery report
/// and the sandbox's injected reports. The caller validates it (it goes
/// through [`MessageStore::check_send`] like any new message).
pub fn report_envelope(
    spec: ReportSpec,
    now: Timestamp,
    inbox_expiry: std::time::Duration,
) -> Envelope {
    Envelope {
        message_id: spec.message_id,
        message_type: MessageType::Report,
        sender: spec.sender,
        recipient: spec.recipient,
        workflow_id: spec.workflow_id,
        subject: spec.subject,
        local_id: spec.local_id,
        file_name: spec.file_name,
        content_type: None,
        compressed: false,
        encrypted: false,
        checksum: None,
        partner_id: None,
        total_chunks: 0,
        created_at: now,
        expires_at: now
            .saturating_add(inbox_expiry)
            .max(Timestamp::from_micros(now.as_micros().saturating_add(1))),
        linked_message_id: spec.linked_message_id,
        report: Some(spec.status),
    }
}

/// The non-delivery report (MESH code 14) for `original`: a REPORT with no
/// content, from the recipient that did not collect, to the original sender.
pub fn non_delivery_report(
    original: &Envelope,
    id: MessageId,
    now: Timestamp,
    inbox_expiry: std::time::Duration,
) -> Envelope {
    let days = inbox_expiry.as_secs() / 86_400;
    let after = if days >= 1 {
        format!("{days} days")
    } else {
        format!("{} seconds", inbox_expiry.as_secs())
    };
    let subject = match &original.subject {
        Some(s) => {
            let mut subject = format!("NDR: {s}");
            truncate_utf8(&mut subject, crate::envelope::MAX_SUBJECT_BYTES);
            subject
        }
        None => "NDR".to_string(),
    };
    report_envelope(
        ReportSpec {
            message_id: id,
            sender: original.recipient.clone(),
            recipient: original.sender.clone(),
            workflow_id: original.workflow_id.clone(),
            subject: Some(subject),
            local_id: original.local_id.clone(),
            file_name: None,
            linked_message_id: Some(original.message_id),
            status: ReportStatus {
                code: NDR_CODE.to_string(),
                event: "SEND".to_string(),
                description: format!("Message not collected by recipient after {after}"),
            },
        },
        now,
        inbox_expiry,
    )
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
