//! Native TOML loading.

use super::*;
use crate::directory::{load_toml, Directory, DirectoryError, FileKind, LoadError};
use crate::ErrorCode;

const EXAMPLE: &str = r#"
[[mailbox]]
id = "X26ABC1"
name = "TESTMB1"
ods_code = "X26"
org_name = "Test org"
password = "password"

[[mailbox]]
id = "X26ABC2"
name = "TESTMB2"
ods_code = "X26"
org_code = "X26"
billing_entity = "England"
active = false
password = "password"

[[workflow]]
id = "TEST_WORKFLOW"
senders = ["X26ABC1"]
receivers = ["X26ABC2"]
"#;

fn load(contents: &str) -> Result<Directory, DirectoryError> {
    load_toml(contents, &mut rng(), 1)
}

fn load_err(contents: &str) -> LoadError {
    match load(contents) {
        Err(DirectoryError::Load(e)) => e,
        other => panic!("expected a load error, got {other:?}"),
    }
}

/// A minimal valid mailbox table.
fn mailbox_table(id: &str) -> String {
    format!("[[mailbox]]\nid = \"{id}\"\nname = \"N\"\nods_code = \"X26\"\npassword = \"pw\"\n")
}

#[test]
fn example_loads() {
    let dir = load(EXAMPLE).unwrap();
    assert_eq!(dir.len(), 2);
    let m1 = dir.mailbox(&mb("X26ABC1")).unwrap();
    assert_eq!(m1.org_name.as_deref(), Some("Test org"));
    assert!(m1.active);
    let m2 = dir.mailbox(&mb("X26ABC2")).unwrap();
    assert_eq!(m2.billing_entity.as_deref(), Some("England"));
    assert!(!m2.active);
    assert!(dir.authenticate(&mb("X26ABC1"), "password").is_ok());
    assert_eq!(
        dir.workflow(&wf("TEST_WORKFLOW")).unwrap(),
        &workflow("TEST_WORKFLOW", &["X26ABC1"], &["X26ABC2"])
    );
}

#[test]
fn empty_document_is_empty_directory() {
    assert!(load("# nothing here\n").unwrap().is_empty());
}

#[test]
fn unknown_field_is_caught_with_its_line() {
    let contents = EXAMPLE.replace("org_name = \"Test org\"", "org_nmae = \"Test org\"");
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_TOML_INVALID");
    assert_eq!(err.line, 6);
    assert!(
        err.to_string().starts_with("directory TOML line 6: "),
        "{err}"
    );
    assert!(err.to_string().contains("org_nmae"), "{err}");
}

#[test]
fn unknown_table_is_caught() {
    let err = load_err("\n[[mailboxes]]\nid = \"X26ABC1\"\n");
    assert_eq!(err.code(), "DIR_LOAD_TOML_INVALID");
    assert!(err.to_string().contains("mailboxes"), "{err}");
    assert_eq!(err.line, 2);
}

#[test]
fn syntax_error_has_line() {
    // Line 6 is blank; the value is missing on line 7.
    let err = load_err(&format!("{}\norg_name = \n", mailbox_table("X26ABC1")));
    assert_eq!(err.code(), "DIR_LOAD_TOML_INVALID");
    assert_eq!(err.line, 7);
}

#[test]
fn missing_field_points_at_the_entry() {
    let contents = format!(
        "{}\n[[mailbox]]\nid = \"X26ABC2\"\nods_code = \"X26\"\npassword = \"pw\"\n",
        mailbox_table("X26ABC1")
    );
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_TOML_INVALID");
    assert!(err.to_string().contains("name"), "{err}");
    assert_eq!(
        err.line, 7,
        "the [[mailbox]] header of the incomplete entry"
    );
}

#[test]
fn wrong_type_has_line() {
    let contents = format!("{}active = \"yes\"\n", mailbox_table("X26ABC1"));
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_TOML_INVALID");
    assert_eq!(err.line, 6);
}

#[test]
fn invalid_id_points_at_value_line() {
    let contents = format!("{}\n{}", mailbox_table("X26ABC1"), mailbox_table("bad id!"));
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_ID_INVALID");
    assert_eq!(
        (err.file, err.line, err.field.as_deref()),
        (FileKind::Toml, 8, Some("id"))
    );
}

#[test]
fn duplicate_mailbox_names_first_line() {
    let contents = format!("{}\n{}", mailbox_table("X26ABC1"), mailbox_table("x26abc1"));
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_DUPLICATE_MAILBOX");
    assert_eq!(
        err.to_string(),
        "directory TOML line 8: field \"id\": mailbox X26ABC1 is already defined on line 2; remove or rename one of them"
    );
}

#[test]
fn duplicate_workflow_names_first_line() {
    let wf = "[[workflow]]\nid = \"W\"\nsenders = []\nreceivers = []\n";
    let err = load_err(&format!("{wf}{wf}"));
    assert_eq!(err.code(), "DIR_LOAD_DUPLICATE_WORKFLOW");
    assert_eq!(err.line, 6);
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn unknown_receiver_points_at_its_own_line() {
    let contents = format!(
        "{}[[workflow]]\nid = \"W\"\nsenders = [\"X26ABC1\"]\nreceivers = [\n  \"X26ABC1\",\n  \"X26ABC9\",\n]\n",
        mailbox_table("X26ABC1")
    );
    let err = load_err(&contents);
    assert_eq!(err.code(), "DIR_LOAD_UNKNOWN_MAILBOX");
    assert_eq!((err.line, err.field.as_deref()), (11, Some("receivers")));
    assert!(
        err.to_string().contains("not defined in directory TOML"),
        "{err}"
    );
}

#[test]
fn workflows_may_precede_mailboxes() {
    let contents = format!(
        "[[workflow]]\nid = \"W\"\nsenders = [\"X26ABC1\"]\nreceivers = [\"X26ABC1\"]\n{}",
        mailbox_table("X26ABC1")
    );
    assert_eq!(load(&contents).unwrap().workflow_search(&wf("W")).len(), 1);
}

#[test]
fn password_hash_form() {
    let hash = Credential::from_password("s3cret", &mut rng(), 2)
        .unwrap()
        .to_hash_string();
    let contents = format!("[[mailbox]]\nid = \"X26ABC1\"\nname = \"N\"\nods_code = \"X26\"\npassword_hash = \"{hash}\"\n");
    let dir = load(&contents).unwrap();
    let m = dir.authenticate(&mb("X26ABC1"), "s3cret").unwrap();
    assert!(m.credential.mesh_secret().is_none());
    assert_eq!(m.credential.to_hash_string(), hash);
}

#[test]
fn password_choice_errors_point_at_the_entry() {
    let both = format!("\n{}password_hash = \"x\"\n", mailbox_table("X26ABC1"));
    let err = load_err(&both);
    assert_eq!(err.code(), "DIR_LOAD_PASSWORD_CHOICE");
    assert_eq!(err.field, None);
    assert_eq!(err.line, 2, "the [[mailbox]] header");
    let neither = "[[mailbox]]\nid = \"X26ABC1\"\nname = \"N\"\nods_code = \"X26\"\n";
    let err = load_err(neither);
    assert_eq!(err.code(), "DIR_LOAD_PASSWORD_CHOICE");
}

#[test]
fn bad_password_hash_points_at_its_line() {
    let contents = "[[mailbox]]\nid = \"X26ABC1\"\nname = \"N\"\nods_code = \"X26\"\n\npassword_hash = \"pbkdf2-sha256$0$00$00\"\n";
    let err = load_err(contents);
    assert_eq!(err.code(), "DIR_HASH_ITERATIONS_INVALID");
    assert_eq!((err.line, err.field.as_deref()), (6, Some("password_hash")));
}

#[test]
fn bad_iteration_count_refused() {
    let err = load_toml(EXAMPLE, &mut rng(), 0).unwrap_err();
    assert_eq!(err.code(), "DIR_HASH_ITERATIONS_INVALID");
}

proptest::proptest! {
    #[test]
    fn loader_never_panics(contents in "\\PC{0,300}") {
        let _ = load(&contents);
    }
}
