//! Who exists: the [`Population`] a scenario and a seed describe, and the
//! node's [`Directory`] built from it.
//!
//! Invariants and why:
//! - Mailboxes are laid out class by class as [`Scenario::class_spans`]
//!   says (hub classes first, then the others, each in file order), so the
//!   schedule can find a class's mailboxes by index without a map.
//! - Ids depend only on the scenario, never on the seed: a class's ODS
//!   codes are its prefix and a zero-padded organisation number
//!   (`PRA00042`), mailbox ids add `OT` and a three-digit mailbox number
//!   (`PRA00042OT001`). Prefixes are letters only and unique, so codes of
//!   different classes cannot collide.
//! - What the seed decides — passwords, which mailboxes are slow or absent
//!   (exact counts, chosen by a seeded shuffle), each poller's interval
//!   within its class's range — comes from independent streams
//!   ([`sampling::stream`]), so the same seed gives the same population.
//! - Workflows registered by flows list every mailbox of their `from`
//!   classes as senders and of their `to` classes as receivers, sorted by
//!   id; unregistered workflows are not listed (anyone may use them).

use std::collections::BTreeSet;

use spine_core::directory::credentials::{CredentialError, MIN_HASH_ITERATIONS};
use spine_core::directory::{Credential, Directory, DirectoryError, Mailbox, Workflow};
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use spine_core::ErrorCode;

use super::sampling::{self, label};
use super::{ConsumerMode, Population, SimMailbox, SimWorkflow};
use crate::scenario::{ConsumerKind, MailboxClass, Scenario, MAX_MAILBOXES};

/// Characters of a generated password.
const PASSWORD_LEN: usize = 24;
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why a population could not become a directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopulationError {
    /// A mailbox's password could not be hashed (it is empty).
    #[error("mailbox {mailbox}: {source}")]
    Credential {
        /// The mailbox.
        mailbox: MailboxId,
        /// Why.
        #[source]
        source: CredentialError,
    },
    /// The directory refused the mailboxes or workflows (duplicate ids,
    /// a workflow naming an unknown mailbox).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl ErrorCode for PopulationError {
    fn code(&self) -> &'static str {
        match self {
            PopulationError::Credential { .. } => "SIM_POPULATION_CREDENTIAL",
            PopulationError::Directory(_) => "SIM_POPULATION_DIRECTORY",
        }
    }
}

/// The population `scenario` describes, for `seed`.
pub fn population(scenario: &Scenario, seed: u64) -> Population {
    // A capacity hint only: never trust an unvalidated count with an
    // allocation.
    let hint = scenario.mailbox_count().min(MAX_MAILBOXES);
    let mut mailboxes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    for span in scenario.class_spans() {
        let Some(class) = scenario.classes.get(span.class) else {
            continue;
        };
        let consumers = consumers(class, span.class, span.len, seed);
        let prefix: String = class
            .prefix()
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect();
        let digits = class.ods_digits();
        let per_org = class.mailboxes_per_organisation.max(1);
        for org in 0..class.organisations {
            let ods_text = format!("{prefix}{:0digits$}", u64::from(org) + 1);
            let Ok(ods) = OdsCode::parse(&ods_text) else {
                continue;
            };
            for m in 0..per_org {
                let index = mailboxes.len();
                let Ok(id) = MailboxId::parse(&format!("{ods_text}OT{:03}", m + 1)) else {
                    continue;
                };
                let within = index - span.first.min(index);
                mailboxes.push(SimMailbox {
                    id,
                    ods: ods.clone(),
                    password: password(seed, index as u64),
                    hub: class.hub,
                    consumer: consumers
                        .get(within)
                        .copied()
                        .unwrap_or(ConsumerMode::Absent),
                });
            }
        }
    }
    let workflows = workflows(scenario, &mailboxes);
    Population {
        mailboxes,
        workflows,
    }
}

/// Each mailbox of a class's consumer mode, in mailbox order.
fn consumers(class: &MailboxClass, class_index: usize, n: usize, seed: u64) -> Vec<ConsumerMode> {
    let c = &class.consumer;
    let (absent, slow) = c.split(n as u64);
    // A seeded partial Fisher-Yates picks exactly `absent + slow` mailboxes.
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = sampling::stream(seed, label::CONSUMERS, class_index as u64);
    let picked = usize::try_from(absent + slow).unwrap_or(n).min(n);
    for i in 0..picked {
        let j = i + sampling::below(&mut rng, (n - i) as u64) as usize;
        order.swap(i, j);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Normal,
        Slow,
        Absent,
    }
    let mut kinds = vec![Kind::Normal; n];
    for (rank, &mailbox) in order.iter().take(picked).enumerate() {
        if let Some(k) = kinds.get_mut(mailbox) {
            *k = if (rank as u64) < absent {
                Kind::Absent
            } else {
                Kind::Slow
            };
        }
    }
    let mut intervals = sampling::stream(seed, label::INTERVAL, class_index as u64);
    let factor = c.slow_factor.max(1);
    kinds
        .into_iter()
        .map(|kind| {
            if kind == Kind::Absent {
                return ConsumerMode::Absent;
            }
            let slow = kind == Kind::Slow;
            match c.mode {
                ConsumerKind::Absent => ConsumerMode::Absent,
                ConsumerKind::Push => ConsumerMode::Push {
                    delay_ms: if slow {
                        c.delay_ms.saturating_mul(factor)
                    } else {
                        c.delay_ms
                    },
                },
                ConsumerKind::Poll => {
                    let lo = c.interval.max(1);
                    let spread = c.interval_max().saturating_sub(lo);
                    let interval = if spread > 0 {
                        lo + sampling::below(&mut intervals, spread + 1)
                    } else {
                        lo
                    };
                    ConsumerMode::Poll {
                        interval_secs: if slow {
                            interval.saturating_mul(factor)
                        } else {
                            interval
                        },
                        batch: c.batch.max(1),
                    }
                }
            }
        })
        .collect()
}

/// Mailbox `index`'s password.
fn password(seed: u64, index: u64) -> String {
    let mut rng = sampling::stream(seed, label::PASSWORD, index);
    (0..PASSWORD_LEN)
        .map(|_| {
            let i = sampling::below(&mut rng, PASSWORD_ALPHABET.len() as u64) as usize;
            char::from(PASSWORD_ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// Registered workflows, in order of first use by a flow.
fn workflows(scenario: &Scenario, mailboxes: &[SimMailbox]) -> Vec<SimWorkflow> {
    let spans = scenario.class_spans();
    let ids_of = |targets| -> BTreeSet<MailboxId> {
        let mut ids = BTreeSet::new();
        for (class, _) in scenario.target_shares(targets) {
            let Some(span) = spans.iter().find(|s| s.class == class) else {
                continue;
            };
            let end = span.first.saturating_add(span.len).min(mailboxes.len());
            let members = mailboxes.get(span.first.min(end)..end).unwrap_or_default();
            ids.extend(members.iter().map(|m| m.id.clone()));
        }
        ids
    };
    let mut merged: Vec<(WorkflowId, BTreeSet<MailboxId>, BTreeSet<MailboxId>)> = Vec::new();
    for flow in scenario.flows.iter().filter(|f| f.registered) {
        let senders = ids_of(&flow.from);
        let receivers = ids_of(&flow.to);
        match merged.iter_mut().find(|(id, _, _)| *id == flow.workflow) {
            Some((_, s, r)) => {
                s.extend(senders);
                r.extend(receivers);
            }
            None => merged.push((flow.workflow.clone(), senders, receivers)),
        }
    }
    merged
        .into_iter()
        .map(|(id, senders, receivers)| SimWorkflow {
            id,
            senders: senders.into_iter().collect(),
            receivers: receivers.into_iter().collect(),
        })
        .collect()
}

/// The node's directory for `pop`: every mailbox active, its password
/// hashed with [`MIN_HASH_ITERATIONS`] (so 26,000 mailboxes load in a
/// blink; the simulator is not defending real secrets) and salts from
/// `seed`. Workflows without senders are left unregistered.
pub fn directory(pop: &Population, seed: u64) -> Result<Directory, PopulationError> {
    let mut rng = sampling::stream(seed, label::SALT, 0);
    let mut mailboxes = Vec::with_capacity(pop.mailboxes.len());
    for m in &pop.mailboxes {
        let credential = Credential::from_password(&m.password, &mut rng, MIN_HASH_ITERATIONS)
            .map_err(|source| PopulationError::Credential {
                mailbox: m.id.clone(),
                source,
            })?;
        let kind = if m.hub { "hub" } else { "organisation" };
        mailboxes.push(Mailbox {
            id: m.id.clone(),
            name: format!("Simulated {kind} {}", m.id),
            ods_code: m.ods.clone(),
            org_code: Some(m.ods.to_string()),
            org_name: Some(format!("Simulated {kind} {}", m.ods)),
            billing_entity: Some("England".to_owned()),
            active: true,
            credential,
        });
    }
    let workflows = pop
        .workflows
        .iter()
        .filter(|w| !w.senders.is_empty())
        .map(|w| Workflow {
            id: w.id.clone(),
            senders: w.senders.iter().cloned().collect(),
            receivers: w.receivers.iter().cloned().collect(),
        });
    Ok(Directory::new(mailboxes, workflows)?)
}
