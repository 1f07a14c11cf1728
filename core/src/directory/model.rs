//! Directory entries: mailboxes and workflows.
//!
//! These are plain validated records: every identifier is already a parsed
//! type ([`MailboxId`], [`OdsCode`], [`WorkflowId`]), so anything holding a
//! `Mailbox` holds well-formed ids. Cross-entry rules (unique ids, workflows
//! naming only known mailboxes) are enforced by [`super::Directory::new`].

use std::collections::BTreeSet;

use crate::directory::credentials::Credential;
use crate::ids::{MailboxId, OdsCode, WorkflowId};

/// A MESH mailbox.
///
/// `Debug` is safe to log: the [`Credential`] prints neither hash nor secret.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Mailbox id, e.g. `X26ABC1` (upper case).
    pub id: MailboxId,
    /// Human-readable mailbox name (mesh-sandbox `mailbox_name`).
    pub name: String,
    /// ODS code of the owning organisation; used by endpoint lookup.
    pub ods_code: OdsCode,
    /// Organisation code, if given.
    pub org_code: Option<String>,
    /// Organisation name, if given.
    pub org_name: Option<String>,
    /// Billing entity (e.g. `England`), if given.
    pub billing_entity: Option<String>,
    /// Inactive mailboxes cannot log in, are not returned by lookups, and
    /// cannot be sent to.
    pub active: bool,
    /// Password hash and optional MESH secret.
    pub credential: Credential,
}

/// A registered workflow: who may send it and who may receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// Workflow id, e.g. `TEST_WORKFLOW`.
    pub id: WorkflowId,
    /// Mailboxes allowed to send messages with this workflow id.
    pub senders: BTreeSet<MailboxId>,
    /// Mailboxes allowed to receive them; also the endpoint-lookup index.
    pub receivers: BTreeSet<MailboxId>,
}
