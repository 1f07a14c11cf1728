//! The mailbox directory: who exists, how they authenticate, and which
//! workflows they may send and receive.
//!
//! A [`Directory`] is immutable once built. [`Directory::new`] checks the
//! cross-entry invariants and builds the lookup indices exactly once:
//! - mailbox ids are unique, workflow ids are unique;
//! - every mailbox a workflow names exists;
//! - the endpoint index mirrors mesh-sandbox: each workflow's receivers,
//!   keyed by `WF` and by `ODS/WF` (using each receiver's own `ods_code`),
//!   sorted by mailbox id so results are deterministic. Inactive mailboxes
//!   are left out of lookups because they cannot be sent to.
//!
//! Authentication never tells a caller whether a mailbox exists: an unknown
//! mailbox and a wrong password give the same error, after the same amount
//! of hashing work.
//!
//! All maps are `BTreeMap`s: iteration order is the id order on every run,
//! which keeps simulations reproducible.
//!
//! Loading is sans-IO: [`jsonl::load_jsonl`] (mesh-sandbox files) and
//! [`toml_form::load_toml`] (native form) take file contents as `&str`, and
//! salts come from a caller-supplied
//! [`RandomSource`](crate::random::RandomSource).

pub mod credentials;
mod demo;
pub mod error;
pub mod jsonl;
mod loader;
pub mod model;
pub mod toml_form;

use std::collections::BTreeMap;

pub use credentials::{Credential, CredentialError, MeshSecret, DEFAULT_HASH_ITERATIONS};
pub use demo::{DEMO_MAILBOXES_JSONL, DEMO_WORKFLOWS_JSONL};
pub use error::{DirectoryError, FileKind, LoadError, LoadErrorKind, Role};
pub use jsonl::load_jsonl;
pub use model::{Mailbox, Workflow};
pub use toml_form::load_toml;

use crate::ids::{MailboxId, OdsCode, WorkflowId};

/// Receivers of one workflow, overall and per ODS code, each sorted by id.
#[derive(Debug, Clone, Default)]
struct Endpoints {
    all: Vec<MailboxId>,
    by_ods: BTreeMap<OdsCode, Vec<MailboxId>>,
}

/// The validated, indexed mailbox directory.
#[derive(Debug, Clone)]
pub struct Directory {
    mailboxes: BTreeMap<MailboxId, Mailbox>,
    workflows: BTreeMap<WorkflowId, Workflow>,
    endpoints: BTreeMap<WorkflowId, Endpoints>,
    /// Checked against when the mailbox is unknown, so a failed login costs
    /// the same time either way.
    decoy: Credential,
}

impl Directory {
    /// Builds a directory, refusing duplicate ids and workflows that name
    /// unknown mailboxes.
    pub fn new(
        mailboxes: impl IntoIterator<Item = Mailbox>,
        workflows: impl IntoIterator<Item = Workflow>,
    ) -> Result<Directory, DirectoryError> {
        let mut by_id = BTreeMap::new();
        for mailbox in mailboxes {
            if by_id.contains_key(&mailbox.id) {
                return Err(DirectoryError::DuplicateMailbox { id: mailbox.id });
            }
            by_id.insert(mailbox.id.clone(), mailbox);
        }
        let mut by_wf = BTreeMap::new();
        for workflow in workflows {
            let named = workflow
                .senders
                .iter()
                .map(|m| (Role::Sender, m))
                .chain(workflow.receivers.iter().map(|m| (Role::Receiver, m)));
            for (role, mailbox) in named {
                if !by_id.contains_key(mailbox) {
                    return Err(DirectoryError::WorkflowUnknownMailbox {
                        workflow: workflow.id.clone(),
                        role,
                        mailbox: mailbox.clone(),
                    });
                }
            }
            if by_wf.contains_key(&workflow.id) {
                return Err(DirectoryError::DuplicateWorkflow { id: workflow.id });
            }
            by_wf.insert(workflow.id.clone(), workflow);
        }
        let endpoints = build_endpoints(&by_id, &by_wf);
        let decoy_iterations = by_id
            .values()
            .map(|m| m.credential.iterations())
            .max()
            .unwrap_or(DEFAULT_HASH_ITERATIONS);
        Ok(Directory {
            mailboxes: by_id,
            workflows: by_wf,
            endpoints,
            decoy: Credential::decoy(decoy_iterations),
        })
    }

    /// The mailbox with this id.
    pub fn mailbox(&self, id: &MailboxId) -> Option<&Mailbox> {
        self.mailboxes.get(id)
    }

    /// All mailboxes, ordered by id.
    pub fn mailboxes(&self) -> impl Iterator<Item = &Mailbox> {
        self.mailboxes.values()
    }

    /// The workflow with this id, if registered.
    pub fn workflow(&self, id: &WorkflowId) -> Option<&Workflow> {
        self.workflows.get(id)
    }

    /// All registered workflows, ordered by id.
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.workflows.values()
    }

    /// Number of mailboxes.
    pub fn len(&self) -> usize {
        self.mailboxes.len()
    }

    /// True when there are no mailboxes.
    pub fn is_empty(&self) -> bool {
        self.mailboxes.is_empty()
    }

    /// Active receivers of `workflow` whose ODS code is `ods`, ordered by id
    /// (MESH endpoint lookup `ODS/WF`).
    pub fn lookup(&self, ods: &OdsCode, workflow: &WorkflowId) -> Vec<&Mailbox> {
        let ids = self
            .endpoints
            .get(workflow)
            .and_then(|e| e.by_ods.get(ods))
            .map(Vec::as_slice)
            .unwrap_or_default();
        self.resolve(ids)
    }

    /// All active receivers of `workflow`, ordered by id (MESH workflow
    /// search `WF`).
    pub fn workflow_search(&self, workflow: &WorkflowId) -> Vec<&Mailbox> {
        let ids = self
            .endpoints
            .get(workflow)
            .map(|e| e.all.as_slice())
            .unwrap_or_default();
        self.resolve(ids)
    }

    /// Checks a mailbox password.
    ///
    /// An unknown mailbox and a wrong password give the same
    /// [`DirectoryError::AuthenticationFailed`], and an unknown mailbox still
    /// runs a full-cost hash, so neither the answer nor its timing reveals
    /// whether the mailbox exists. [`DirectoryError::MailboxInactive`] is
    /// only returned after the password has been verified.
    pub fn authenticate(&self, id: &MailboxId, password: &str) -> Result<&Mailbox, DirectoryError> {
        let Some(mailbox) = self.mailboxes.get(id) else {
            std::hint::black_box(self.decoy.verify(password));
            return Err(DirectoryError::AuthenticationFailed);
        };
        if !mailbox.credential.verify(password) {
            return Err(DirectoryError::AuthenticationFailed);
        }
        if !mailbox.active {
            return Err(DirectoryError::MailboxInactive { id: id.clone() });
        }
        Ok(mailbox)
    }

    /// May `sender` send a message on `workflow` to `recipient`?
    ///
    /// Unknown recipient: MESH error 12; deactivated recipient: MESH error
    /// 14. If the workflow is registered, the sender must be in its
    /// `senders` and the recipient in its `receivers` (else MESH error 17);
    /// unregistered workflows are unrestricted.
    pub fn check_send(
        &self,
        sender: &MailboxId,
        recipient: &MailboxId,
        workflow: &WorkflowId,
    ) -> Result<(), DirectoryError> {
        let from = self
            .mailboxes
            .get(sender)
            .ok_or_else(|| DirectoryError::SenderUnknown { id: sender.clone() })?;
        if !from.active {
            return Err(DirectoryError::MailboxInactive { id: sender.clone() });
        }
        let to =
            self.mailboxes
                .get(recipient)
                .ok_or_else(|| DirectoryError::RecipientUnregistered {
                    id: recipient.clone(),
                })?;
        if !to.active {
            return Err(DirectoryError::RecipientInactive {
                id: recipient.clone(),
            });
        }
        let Some(registered) = self.workflows.get(workflow) else {
            return Ok(());
        };
        let not_registered = |mailbox: &MailboxId, role| DirectoryError::WorkflowNotRegistered {
            workflow: workflow.clone(),
            mailbox: mailbox.clone(),
            role,
        };
        if !registered.senders.contains(sender) {
            return Err(not_registered(sender, Role::Sender));
        }
        if !registered.receivers.contains(recipient) {
            return Err(not_registered(recipient, Role::Receiver));
        }
        Ok(())
    }

    fn resolve(&self, ids: &[MailboxId]) -> Vec<&Mailbox> {
        ids.iter().filter_map(|id| self.mailboxes.get(id)).collect()
    }
}

fn build_endpoints(
    mailboxes: &BTreeMap<MailboxId, Mailbox>,
    workflows: &BTreeMap<WorkflowId, Workflow>,
) -> BTreeMap<WorkflowId, Endpoints> {
    let mut index = BTreeMap::new();
    for workflow in workflows.values() {
        let mut endpoints = Endpoints::default();
        // `receivers` is a BTreeSet, so every list below is built in id order.
        for id in &workflow.receivers {
            let Some(mailbox) = mailboxes.get(id) else {
                continue;
            };
            if !mailbox.active {
                continue;
            }
            endpoints.all.push(id.clone());
            endpoints
                .by_ods
                .entry(mailbox.ods_code.clone())
                .or_default()
                .push(id.clone());
        }
        index.insert(workflow.id.clone(), endpoints);
    }
    index
}

#[cfg(test)]
mod tests;
