//! Tests for the directory and its loaders, one file per concern.

mod api;
mod demo;
mod jsonl;
mod toml_form;

use std::collections::BTreeSet;

use crate::directory::{Credential, Mailbox, Workflow};
use crate::ids::{MailboxId, OdsCode, WorkflowId};
use crate::random::SeededRandom;

fn rng() -> SeededRandom {
    SeededRandom::new(42)
}

fn mb(id: &str) -> MailboxId {
    MailboxId::parse(id).unwrap()
}

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

fn wf(id: &str) -> WorkflowId {
    WorkflowId::parse(id).unwrap()
}

fn mailbox(id: &str, ods_code: &str, password: &str) -> Mailbox {
    Mailbox {
        id: mb(id),
        name: format!("name of {id}"),
        ods_code: ods(ods_code),
        org_code: None,
        org_name: None,
        billing_entity: None,
        active: true,
        credential: Credential::from_password(password, &mut rng(), 1).unwrap(),
    }
}

fn workflow(id: &str, senders: &[&str], receivers: &[&str]) -> Workflow {
    let set = |ids: &[&str]| ids.iter().map(|s| mb(s)).collect::<BTreeSet<_>>();
    Workflow {
        id: wf(id),
        senders: set(senders),
        receivers: set(receivers),
    }
}

fn ids(found: &[&Mailbox]) -> Vec<String> {
    found.iter().map(|m| m.id.to_string()).collect()
}
