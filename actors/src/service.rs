//! The mailbox service actor: directory look-ups and authentication.
//!
//! Password checks are deliberately slow (PBKDF2), so each runs on the
//! blocking pool and answers directly; the actor never waits on one.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use spine_core::directory::DirectoryError;
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};
use tokio::sync::oneshot;

use crate::node::shared::Shared;

/// A mailbox as look-ups report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSummary {
    /// The mailbox id.
    pub mailbox_id: MailboxId,
    /// Its display name.
    pub mailbox_name: String,
    /// Its organisation's ODS code.
    pub ods_code: OdsCode,
}

/// Messages.
#[derive(Debug)]
pub enum ServiceMsg {
    /// Check a mailbox's password.
    Authenticate {
        /// The mailbox.
        mailbox: MailboxId,
        /// The password offered.
        password: String,
        /// Where to answer.
        reply: oneshot::Sender<Result<(), DirectoryError>>,
    },
    /// Receivers of `workflow` at organisation `ods`.
    Lookup {
        /// The organisation.
        ods: OdsCode,
        /// The workflow.
        workflow: WorkflowId,
        /// Where to answer.
        reply: oneshot::Sender<Vec<MailboxSummary>>,
    },
    /// Receivers of `workflow` anywhere.
    WorkflowSearch {
        /// The workflow.
        workflow: WorkflowId,
        /// Where to answer.
        reply: oneshot::Sender<Vec<MailboxSummary>>,
    },
    /// Fault injection: panic.
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// The actor.
#[derive(Debug)]
pub struct ServiceActor;

impl Actor for ServiceActor {
    type Msg = ServiceMsg;
    type State = Arc<Shared>;
    type Arguments = Arc<Shared>;

    async fn pre_start(
        &self,
        _myself: ActorRef<ServiceMsg>,
        shared: Arc<Shared>,
    ) -> Result<Arc<Shared>, ActorProcessingErr> {
        Ok(shared)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ServiceMsg>,
        msg: ServiceMsg,
        shared: &mut Arc<Shared>,
    ) -> Result<(), ActorProcessingErr> {
        let summary = |m: &spine_core::directory::Mailbox| MailboxSummary {
            mailbox_id: m.id.clone(),
            mailbox_name: m.name.clone(),
            ods_code: m.ods_code.clone(),
        };
        match msg {
            ServiceMsg::Authenticate {
                mailbox,
                password,
                reply,
            } => {
                let directory = Arc::clone(&shared.directory);
                tokio::task::spawn_blocking(move || {
                    let result = directory.authenticate(&mailbox, &password).map(|_| ());
                    let _ = reply.send(result);
                });
            }
            ServiceMsg::Lookup {
                ods,
                workflow,
                reply,
            } => {
                let _ = reply.send(
                    shared
                        .directory
                        .lookup(&ods, &workflow)
                        .into_iter()
                        .map(summary)
                        .collect(),
                );
            }
            ServiceMsg::WorkflowSearch { workflow, reply } => {
                let _ = reply.send(
                    shared
                        .directory
                        .workflow_search(&workflow)
                        .into_iter()
                        .map(summary)
                        .collect(),
                );
            }
            #[cfg(any(test, feature = "fault-injection"))]
            ServiceMsg::Panic => panic!("fault injection: service actor panics on request"),
        }
        Ok(())
    }
}
