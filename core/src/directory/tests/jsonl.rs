//! mesh-sandbox JSONL loading.

use proptest::prelude::*;

use super::*;
use crate::directory::{
    load_jsonl, Directory, DirectoryError, FileKind, LoadError, DEFAULT_HASH_ITERATIONS,
};
use crate::ErrorCode;

const SANDBOX_MAILBOX: &str = r#"{"mailbox_id":  "X26ABC1", "mailbox_name": "TESTMB1", "billing_entity": "England", "ods_code": "X26", "org_code": "X26", "password": "password"}"#;
const WORKFLOWS: &str =
    r#"{"workflow_id": "TEST_WORKFLOW", "senders":  ["X26ABC1"], "receivers":  ["X26ABC2"]}"#;

fn line(id: &str, extra: &str) -> String {
    format!(
        r#"{{"mailbox_id": "{id}", "mailbox_name": "N", "ods_code": "X26", "password": "pw"{extra}}}"#
    )
}

fn load(mailboxes: &str, workflows: &str) -> Result<Directory, DirectoryError> {
    load_jsonl(mailboxes, workflows, &mut rng(), 1)
}

/// Unwraps a located load error.
fn load_err(mailboxes: &str, workflows: &str) -> LoadError {
    match load(mailboxes, workflows) {
        Err(DirectoryError::Load(e)) => e,
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn sandbox_format_loads() {
    let mailboxes = format!("{SANDBOX_MAILBOX}\n{}\n", line("X26ABC2", ""));
    let dir = load(&mailboxes, WORKFLOWS).unwrap();
    let m = dir.mailbox(&mb("X26ABC1")).unwrap();
    assert_eq!(m.name, "TESTMB1");
    assert_eq!(m.org_code.as_deref(), Some("X26"));
    assert_eq!(m.org_name, None);
    assert_eq!(m.billing_entity.as_deref(), Some("England"));
    assert!(m.active);
    assert!(dir.authenticate(&mb("X26ABC1"), "password").is_ok());
    assert_eq!(ids(&dir.workflow_search(&wf("TEST_WORKFLOW"))), ["X26ABC2"]);
}

#[test]
fn optional_fields_nulls_and_unknown_fields() {
    let mailboxes = line(
        "X26ABC1",
        r#", "org_name": "Org", "org_code": null, "active": false, "inbox_count": 3, "billing_entity": "  ""#,
    );
    let dir = load(&mailboxes, "").unwrap();
    let m = dir.mailbox(&mb("X26ABC1")).unwrap();
    assert_eq!(m.org_name.as_deref(), Some("Org"));
    assert_eq!(m.org_code, None);
    assert_eq!(m.billing_entity, None, "blank counts as absent");
    assert!(!m.active);
}

#[test]
fn blank_lines_crlf_and_bom_keep_line_numbers() {
    let mailboxes = format!(
        "\u{feff}{}\r\n\r\n   \n{}\r\n",
        line("X26ABC1", ""),
        line("X26ABC1", "")
    );
    let err = load_err(&mailboxes, "");
    assert_eq!(err.line, 4);
    assert_eq!(err.code(), "DIR_LOAD_DUPLICATE_MAILBOX");
}

#[test]
fn ids_are_trimmed_and_upper_cased_like_mesh_sandbox() {
    let workflows = r#"{"workflow_id": " W ", "senders": [" x26abc1"], "receivers": ["X26ABC1 "]}"#;
    let dir = load(&line(" x26abc1 ", ""), workflows).unwrap();
    assert!(dir.mailbox(&mb("X26ABC1")).is_some());
    assert_eq!(ids(&dir.workflow_search(&wf("W"))), ["X26ABC1"]);
}

#[test]
fn empty_files_give_empty_directory() {
    assert!(load("", "\n\n").unwrap().is_empty());
}

#[test]
fn invalid_json_names_file_and_line() {
    let mailboxes = format!("{}\n\n{{\"mailbox_id\": \"X26ABC2\",", line("X26ABC1", ""));
    let err = load_err(&mailboxes, "");
    assert_eq!(err.code(), "DIR_LOAD_JSON_INVALID");
    assert_eq!((err.file, err.line), (FileKind::MailboxesJsonl, 3));
    let msg = err.to_string();
    assert!(
        msg.starts_with("mailboxes.jsonl line 3: invalid JSON: "),
        "{msg}"
    );
    assert!(!msg.contains("at line 1"), "{msg}");
}

#[test]
fn non_object_line_refused() {
    let err = load_err("[1, 2]", "");
    assert_eq!(err.code(), "DIR_LOAD_JSON_INVALID");
    assert!(
        err.to_string()
            .contains("found an array, expected an object"),
        "{err}"
    );
}

#[test]
fn missing_field_named() {
    let mailboxes = format!(
        "{}\n{}\n{{\"mailbox_name\": \"N\", \"ods_code\": \"X26\", \"password\": \"pw\"}}",
        line("X26ABC1", ""),
        line("X26ABC2", "")
    );
    let err = load_err(&mailboxes, "");
    assert_eq!(err.code(), "DIR_LOAD_FIELD_MISSING");
    assert_eq!(
        err.to_string(),
        "mailboxes.jsonl line 3: field \"mailbox_id\": required field is missing; add it"
    );
}

#[test]
fn wrong_types_named() {
    let err = load_err(&line("X26ABC1", r#", "active": "yes""#), "");
    assert_eq!(err.code(), "DIR_LOAD_FIELD_TYPE");
    assert_eq!(err.field.as_deref(), Some("active"));
    let err = load_err(
        r#"{"mailbox_id": 7, "mailbox_name": "N", "ods_code": "X26", "password": "pw"}"#,
        "",
    );
    assert_eq!(err.field.as_deref(), Some("mailbox_id"));
    assert!(err.to_string().contains("expected a string"), "{err}");
    let workflows = r#"{"workflow_id": "W", "senders": "X26ABC1", "receivers": []}"#;
    let err = load_err(&line("X26ABC1", ""), workflows);
    assert_eq!(
        (err.file, err.field.as_deref()),
        (FileKind::WorkflowsJsonl, Some("senders"))
    );
    let workflows = r#"{"workflow_id": "W", "senders": [], "receivers": [1]}"#;
    let err = load_err(&line("X26ABC1", ""), workflows);
    assert_eq!(err.field.as_deref(), Some("receivers"));
}

#[test]
fn empty_name_refused() {
    let err = load_err(
        r#"{"mailbox_id": "X26ABC1", "mailbox_name": " ", "ods_code": "X26", "password": "pw"}"#,
        "",
    );
    assert_eq!(err.code(), "DIR_LOAD_FIELD_EMPTY");
    assert_eq!(err.field.as_deref(), Some("mailbox_name"));
}

#[test]
fn invalid_ids_named() {
    let err = load_err(&line("bad id!", ""), "");
    assert_eq!(err.code(), "DIR_LOAD_ID_INVALID");
    assert!(
        err.to_string()
            .starts_with("mailboxes.jsonl line 1: field \"mailbox_id\": "),
        "{err}"
    );
    let err = load_err(
        r#"{"mailbox_id": "X26ABC1", "mailbox_name": "N", "ods_code": "no good!", "password": "pw"}"#,
        "",
    );
    assert_eq!(err.field.as_deref(), Some("ods_code"));
    let workflows = r#"{"workflow_id": "bad workflow!", "senders": [], "receivers": []}"#;
    let err = load_err("", workflows);
    assert_eq!((err.file, err.line), (FileKind::WorkflowsJsonl, 1));
    assert_eq!(err.field.as_deref(), Some("workflow_id"));
}

#[test]
fn duplicate_mailbox_names_first_line_case_insensitively() {
    let mailboxes = format!(
        "{}\n{}\n{}",
        line("X26ABC1", ""),
        line("X26ABC2", ""),
        line("x26abc1", "")
    );
    let err = load_err(&mailboxes, "");
    assert_eq!(err.code(), "DIR_LOAD_DUPLICATE_MAILBOX");
    assert_eq!(
        err.to_string(),
        "mailboxes.jsonl line 3: field \"mailbox_id\": mailbox X26ABC1 is already defined on line 1; remove or rename one of them"
    );
}

#[test]
fn duplicate_workflow_names_first_line() {
    let wf_line = r#"{"workflow_id": "W", "senders": [], "receivers": []}"#;
    let err = load_err("", &format!("{wf_line}\n\n{wf_line}"));
    assert_eq!(err.code(), "DIR_LOAD_DUPLICATE_WORKFLOW");
    assert_eq!((err.file, err.line), (FileKind::WorkflowsJsonl, 3));
    assert!(
        err.to_string().contains("already defined on line 1"),
        "{err}"
    );
}

#[test]
fn workflow_with_unknown_mailbox_names_line_and_list() {
    let workflows = format!(
        "{WORKFLOWS}\n{}",
        r#"{"workflow_id": "W2", "senders": ["X26ABC1"], "receivers": ["X26ABC9"]}"#
    );
    let err = load_err(
        &format!("{SANDBOX_MAILBOX}\n{}", line("X26ABC2", "")),
        &workflows,
    );
    assert_eq!(err.code(), "DIR_LOAD_UNKNOWN_MAILBOX");
    assert_eq!(
        err.to_string(),
        "workflows.jsonl line 2: field \"receivers\": mailbox X26ABC9 is not defined in mailboxes.jsonl; define it there or remove it from this list"
    );
}

#[test]
fn missing_workflow_lists_refused() {
    let err = load_err(
        &line("X26ABC1", ""),
        r#"{"workflow_id": "W", "senders": ["X26ABC1"], "recievers": []}"#,
    );
    assert_eq!(err.code(), "DIR_LOAD_FIELD_MISSING");
    assert_eq!(err.field.as_deref(), Some("receivers"));
}

#[test]
fn password_hash_extension_and_password_choice() {
    let hash = Credential::from_password("s3cret", &mut rng(), 2)
        .unwrap()
        .to_hash_string();
    let mailboxes = format!(
        r#"{{"mailbox_id": "X26ABC1", "mailbox_name": "N", "ods_code": "X26", "password_hash": "{hash}"}}"#
    );
    let dir = load(&mailboxes, "").unwrap();
    let m = dir.authenticate(&mb("X26ABC1"), "s3cret").unwrap();
    assert!(m.credential.mesh_secret().is_none());

    let err = load_err(
        &line("X26ABC1", &format!(r#", "password_hash": "{hash}""#)),
        "",
    );
    assert_eq!(err.code(), "DIR_LOAD_PASSWORD_CHOICE");
    assert!(err.to_string().contains("both were given"), "{err}");
    let err = load_err(
        r#"{"mailbox_id": "X26ABC1", "mailbox_name": "N", "ods_code": "X26"}"#,
        "",
    );
    assert_eq!(err.code(), "DIR_LOAD_PASSWORD_CHOICE");
    assert!(err.to_string().contains("neither was given"), "{err}");

    let err = load_err(
        r#"{"mailbox_id": "X26ABC1", "mailbox_name": "N", "ods_code": "X26", "password_hash": "md5$x"}"#,
        "",
    );
    assert_eq!(err.code(), "DIR_HASH_MALFORMED");
    assert_eq!(err.field.as_deref(), Some("password_hash"));
    let err = load_err(&line("X26ABC1", "").replace("\"pw\"", "\"\""), "");
    assert_eq!(err.code(), "DIR_PASSWORD_EMPTY");
    assert_eq!(err.field.as_deref(), Some("password"));
}

#[test]
fn bad_iteration_count_refused_before_reading() {
    let err = load_jsonl("not json", "", &mut rng(), 0).unwrap_err();
    assert_eq!(err.code(), "DIR_HASH_ITERATIONS_INVALID");
    assert!(matches!(err, DirectoryError::Credential(_)));
}

#[test]
fn iterations_are_applied() {
    let dir = load_jsonl(&line("X26ABC1", ""), "", &mut rng(), 3).unwrap();
    assert_eq!(
        dir.mailbox(&mb("X26ABC1")).unwrap().credential.iterations(),
        3
    );
    assert_ne!(DEFAULT_HASH_ITERATIONS, 3);
}

proptest! {
    #[test]
    fn loader_never_panics(mailboxes in "\\PC{0,200}", workflows in "\\PC{0,200}") {
        let _ = load(&mailboxes, &workflows);
    }

    #[test]
    fn generated_directories_round_trip(active in proptest::collection::vec(any::<bool>(), 1..20)) {
        let id = |i: usize| format!("X{i:02}ABC");
        let mut mailboxes = String::new();
        for (i, on) in active.iter().enumerate() {
            mailboxes.push_str(&line(&id(i), &format!(r#", "active": {on}"#)));
            mailboxes.push('\n');
        }
        let all: Vec<String> = (0..active.len()).map(|i| format!("\"{}\"", id(i))).collect();
        let workflows = format!(
            r#"{{"workflow_id": "ALL", "senders": [{0}], "receivers": [{0}]}}"#,
            all.join(",")
        );
        let dir = load(&mailboxes, &workflows).unwrap();
        prop_assert_eq!(dir.len(), active.len());
        let active_count = active.iter().filter(|on| **on).count();
        prop_assert_eq!(dir.workflow_search(&wf("ALL")).len(), active_count);
        prop_assert_eq!(dir.lookup(&ods("X26"), &wf("ALL")).len(), active_count);
        for (i, on) in active.iter().enumerate() {
            let result = dir.authenticate(&mb(&id(i)), "pw");
            prop_assert_eq!(result.is_ok(), *on);
        }
    }
}

#[test]
fn simulation_scale_directory_loads() {
    // One hash iteration per mailbox, as a simulation would configure.
    let mut mailboxes = String::new();
    for i in 0..26_000 {
        mailboxes.push_str(&line(&format!("M{i:05}"), ""));
        mailboxes.push('\n');
    }
    let dir = load(&mailboxes, "").unwrap();
    assert_eq!(dir.len(), 26_000);
}
