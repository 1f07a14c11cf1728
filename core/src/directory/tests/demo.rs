//! The embedded demo directory.

use super::*;
use crate::directory::DEMO_WORKFLOWS_JSONL;
use crate::directory::{load_jsonl, Directory, DEFAULT_HASH_ITERATIONS, DEMO_MAILBOXES_JSONL};

#[test]
fn demo_loads_with_expected_contents() {
    let dir = Directory::demo(&mut rng()).unwrap();
    assert_eq!(dir.len(), 3);
    let m1 = dir.mailbox(&mb("X26ABC1")).unwrap();
    assert_eq!(m1.name, "TESTMB1");
    assert_eq!(m1.ods_code, ods("X26"));
    assert_eq!(m1.billing_entity.as_deref(), Some("England"));
    assert_eq!(m1.credential.iterations(), DEFAULT_HASH_ITERATIONS);
    assert_eq!(dir.mailbox(&mb("X26ABC2")).unwrap().name, "TESTMB2");
    let m3 = dir.mailbox(&mb("X26ABC3")).unwrap();
    assert_eq!((m3.name.as_str(), m3.ods_code.as_str()), ("TESTMB3", "X27"));

    assert_eq!(
        dir.workflow(&wf("TEST_WORKFLOW")).unwrap(),
        &workflow("TEST_WORKFLOW", &["X26ABC1"], &["X26ABC2"])
    );
    assert_eq!(
        dir.workflow(&wf("TEST_WORKFLOW_ACK")).unwrap(),
        &workflow("TEST_WORKFLOW_ACK", &["X26ABC2"], &["X26ABC1", "X26ABC3"])
    );
    assert_eq!(
        dir.workflow(&wf("TEST_WORKFLOW2")).unwrap(),
        &workflow(
            "TEST_WORKFLOW2",
            &["X26ABC1"],
            &["X26ABC1", "X26ABC2", "X26ABC3"]
        )
    );
}

#[test]
fn demo_passwords_and_lookups() {
    let dir = Directory::demo(&mut rng()).unwrap();
    for id in ["X26ABC1", "X26ABC2", "X26ABC3"] {
        let m = dir.authenticate(&mb(id), "password").unwrap();
        assert_eq!(
            m.credential.mesh_secret().unwrap().expose_secret(),
            "password"
        );
    }
    assert_eq!(
        ids(&dir.lookup(&ods("X26"), &wf("TEST_WORKFLOW_ACK"))),
        ["X26ABC1"]
    );
    assert_eq!(
        ids(&dir.lookup(&ods("X27"), &wf("TEST_WORKFLOW_ACK"))),
        ["X26ABC3"]
    );
    assert_eq!(
        ids(&dir.workflow_search(&wf("TEST_WORKFLOW2"))),
        ["X26ABC1", "X26ABC2", "X26ABC3"]
    );
    assert!(dir
        .check_send(&mb("X26ABC1"), &mb("X26ABC2"), &wf("TEST_WORKFLOW"))
        .is_ok());
    assert!(dir
        .check_send(&mb("X26ABC2"), &mb("X26ABC1"), &wf("TEST_WORKFLOW"))
        .is_err());
}

#[test]
fn demo_files_load_through_the_public_loader() {
    let dir = load_jsonl(DEMO_MAILBOXES_JSONL, DEMO_WORKFLOWS_JSONL, &mut rng(), 1).unwrap();
    assert_eq!(dir.len(), 3);
    assert_eq!(dir.workflows().count(), 3);
}
