//! `Directory::new`, lookups, authentication and send checks.

use super::*;
use crate::directory::{Directory, DirectoryError, Role};
use crate::ErrorCode;

fn sample() -> Directory {
    let mut inactive = mailbox("X27OFF1", "X27", "pw-off");
    inactive.active = false;
    Directory::new(
        vec![
            mailbox("X26ABC2", "X26", "pw2"),
            mailbox("X26ABC1", "X26", "pw1"),
            mailbox("X27ABC3", "X27", "pw3"),
            inactive,
        ],
        vec![
            workflow(
                "ROUTED",
                &["X26ABC1"],
                &["X27ABC3", "X26ABC2", "X26ABC1", "X27OFF1"],
            ),
            workflow("REPLY", &["X26ABC2"], &["X26ABC1"]),
        ],
    )
    .unwrap()
}

#[test]
fn duplicate_mailbox_refused() {
    let err = Directory::new(
        vec![
            mailbox("X26ABC1", "X26", "a"),
            mailbox("x26abc1", "X26", "b"),
        ],
        vec![],
    )
    .unwrap_err();
    assert_eq!(err.code(), "DIR_DUPLICATE_MAILBOX");
    assert!(err.to_string().contains("X26ABC1"), "{err}");
}

#[test]
fn duplicate_workflow_refused() {
    let err = Directory::new(
        vec![mailbox("X26ABC1", "X26", "a")],
        vec![
            workflow("W", &[], &["X26ABC1"]),
            workflow("W", &["X26ABC1"], &[]),
        ],
    )
    .unwrap_err();
    assert_eq!(err.code(), "DIR_DUPLICATE_WORKFLOW");
}

#[test]
fn workflow_naming_unknown_mailbox_refused() {
    let boxes = || vec![mailbox("X26ABC1", "X26", "a")];
    let err = Directory::new(boxes(), vec![workflow("W", &["NOPE1"], &[])]).unwrap_err();
    assert_eq!(err.code(), "DIR_WORKFLOW_UNKNOWN_MAILBOX");
    assert!(err.to_string().contains("senders"), "{err}");
    let err = Directory::new(boxes(), vec![workflow("W", &[], &["NOPE1"])]).unwrap_err();
    assert!(matches!(
        err,
        DirectoryError::WorkflowUnknownMailbox {
            role: Role::Receiver,
            ..
        }
    ));
}

#[test]
fn accessors() {
    let dir = sample();
    assert_eq!(dir.len(), 4);
    assert!(!dir.is_empty());
    assert!(Directory::new(vec![], vec![]).unwrap().is_empty());
    assert_eq!(dir.mailbox(&mb("X26ABC2")).unwrap().name, "name of X26ABC2");
    assert!(dir.mailbox(&mb("X99ZZZ9")).is_none());
    let order: Vec<String> = dir.mailboxes().map(|m| m.id.to_string()).collect();
    assert_eq!(order, ["X26ABC1", "X26ABC2", "X27ABC3", "X27OFF1"]);
    assert_eq!(dir.workflow(&wf("REPLY")).unwrap().senders.len(), 1);
    assert!(dir.workflow(&wf("UNKNOWN")).is_none());
    assert_eq!(dir.workflows().count(), 2);
}

#[test]
fn lookup_by_ods_and_workflow_is_ordered_and_skips_inactive() {
    let dir = sample();
    assert_eq!(
        ids(&dir.lookup(&ods("X26"), &wf("ROUTED"))),
        ["X26ABC1", "X26ABC2"]
    );
    assert_eq!(ids(&dir.lookup(&ods("X27"), &wf("ROUTED"))), ["X27ABC3"]);
    assert!(dir.lookup(&ods("X27"), &wf("REPLY")).is_empty());
    assert!(dir.lookup(&ods("X99"), &wf("ROUTED")).is_empty());
    assert!(dir.lookup(&ods("X26"), &wf("UNKNOWN")).is_empty());
}

#[test]
fn workflow_search_returns_active_receivers_in_id_order() {
    let dir = sample();
    assert_eq!(
        ids(&dir.workflow_search(&wf("ROUTED"))),
        ["X26ABC1", "X26ABC2", "X27ABC3"]
    );
    assert_eq!(ids(&dir.workflow_search(&wf("REPLY"))), ["X26ABC1"]);
    assert!(dir.workflow_search(&wf("UNKNOWN")).is_empty());
}

#[test]
fn authenticate_accepts_right_password() {
    let dir = sample();
    let found = dir.authenticate(&mb("X26ABC1"), "pw1").unwrap();
    assert_eq!(found.id, mb("X26ABC1"));
}

#[test]
fn unknown_mailbox_and_wrong_password_are_indistinguishable() {
    let dir = sample();
    let wrong = dir.authenticate(&mb("X26ABC1"), "pw2").unwrap_err();
    let unknown = dir.authenticate(&mb("X99ZZZ9"), "pw1").unwrap_err();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.code(), "DIR_AUTH_FAILED");
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(!unknown.to_string().contains("X99ZZZ9"));
}

#[test]
fn inactive_mailbox_refused_only_after_password_check() {
    let dir = sample();
    let err = dir.authenticate(&mb("X27OFF1"), "pw-off").unwrap_err();
    assert_eq!(err.code(), "DIR_MAILBOX_INACTIVE");
    let err = dir.authenticate(&mb("X27OFF1"), "guess").unwrap_err();
    assert_eq!(err.code(), "DIR_AUTH_FAILED");
}

#[test]
fn check_send_registered_workflow() {
    let dir = sample();
    let ok = dir.check_send(&mb("X26ABC1"), &mb("X27ABC3"), &wf("ROUTED"));
    assert!(ok.is_ok());
    // Sender not in senders.
    let err = dir
        .check_send(&mb("X26ABC2"), &mb("X27ABC3"), &wf("ROUTED"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_WORKFLOW_NOT_REGISTERED");
    assert_eq!(err.mesh_error_code(), Some("17"));
    assert!(err.to_string().contains("senders"), "{err}");
    // Recipient not in receivers.
    let err = dir
        .check_send(&mb("X26ABC2"), &mb("X27ABC3"), &wf("REPLY"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_WORKFLOW_NOT_REGISTERED");
    assert!(matches!(
        err,
        DirectoryError::WorkflowNotRegistered {
            role: Role::Receiver,
            ..
        }
    ));
}

#[test]
fn check_send_unregistered_workflow_is_unrestricted() {
    let dir = sample();
    assert!(dir
        .check_send(&mb("X27ABC3"), &mb("X26ABC2"), &wf("ANYTHING"))
        .is_ok());
}

#[test]
fn check_send_unknown_or_inactive_parties() {
    let dir = sample();
    let err = dir
        .check_send(&mb("X26ABC1"), &mb("X99ZZZ9"), &wf("ROUTED"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_RECIPIENT_UNREGISTERED");
    assert_eq!(err.mesh_error_code(), Some("12"));
    let err = dir
        .check_send(&mb("X26ABC1"), &mb("X27OFF1"), &wf("ROUTED"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_RECIPIENT_INACTIVE");
    assert_eq!(err.mesh_error_code(), Some("14"));
    let err = dir
        .check_send(&mb("X99ZZZ9"), &mb("X26ABC1"), &wf("ROUTED"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_SENDER_UNKNOWN");
    assert_eq!(err.mesh_error_code(), None);
    let err = dir
        .check_send(&mb("X27OFF1"), &mb("X26ABC1"), &wf("ANYTHING"))
        .unwrap_err();
    assert_eq!(err.code(), "DIR_MAILBOX_INACTIVE");
}

#[test]
fn debug_output_leaks_no_password() {
    let dir = sample();
    let dbg = format!("{dir:?}");
    for secret in ["pw1", "pw2", "pw3", "pw-off"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
}
