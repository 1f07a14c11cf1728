//! Loader for NHS mesh-sandbox's directory files.
//!
//! Two files, one JSON object per line, blank lines allowed:
//!
//! `mailboxes.jsonl`
//! ```text
//! {"mailbox_id": "X26ABC1", "mailbox_name": "TESTMB1", "billing_entity": "England", "ods_code": "X26", "org_code": "X26", "password": "password"}
//! ```
//! Required: `mailbox_id`, `mailbox_name`, `ods_code`, and exactly one of
//! `password` (plaintext, kept as the MESH secret) or `password_hash`
//! (`pbkdf2-sha256$...`, a Spine extension). Optional: `org_code`,
//! `org_name`, `billing_entity` (blank or `null` counts as absent), `active`
//! (default `true`). Unknown fields are ignored, as mesh-sandbox does.
//!
//! `workflows.jsonl`
//! ```text
//! {"workflow_id": "TEST_WORKFLOW", "senders": ["X26ABC1"], "receivers": ["X26ABC2"]}
//! ```
//! All three fields are required; every listed mailbox must be defined in
//! `mailboxes.jsonl`. (mesh-sandbox silently skips unknown receivers; Spine
//! refuses them, because a typo would otherwise silently drop routes.)
//!
//! Every error names the file, the 1-based line and the field. Lines are
//! split on `\n` (a trailing `\r` is ignored) and a leading UTF-8 byte-order
//! mark is skipped, so line numbers match what an editor shows.

use serde_json::{Map, Value};

use crate::directory::error::{DirectoryError, FileKind, LoadError, LoadErrorKind};
use crate::directory::loader::{self, Assembler, Loc};
use crate::directory::model::{Mailbox, Workflow};
use crate::directory::Directory;
use crate::ids::{MailboxId, OdsCode, WorkflowId};
use crate::random::RandomSource;

/// Loads a directory from the contents of `mailboxes.jsonl` and
/// `workflows.jsonl`, hashing plaintext passwords with `iterations` rounds
/// and salts drawn from `rng`.
pub fn load_jsonl(
    mailboxes: &str,
    workflows: &str,
    rng: &mut dyn RandomSource,
    iterations: u32,
) -> Result<Directory, DirectoryError> {
    loader::check_iterations(iterations)?;
    let mut assembler = Assembler::new(FileKind::MailboxesJsonl);
    for record in records(mailboxes, FileKind::MailboxesJsonl) {
        let (at, object) = record?;
        let fields = Fields {
            at,
            object: &object,
        };
        let mailbox = mailbox(&fields, rng, iterations)?;
        assembler.add_mailbox(mailbox, at, "mailbox_id")?;
    }
    for record in records(workflows, FileKind::WorkflowsJsonl) {
        let (at, object) = record?;
        let fields = Fields {
            at,
            object: &object,
        };
        let workflow = workflow(&fields, &assembler)?;
        assembler.add_workflow(workflow, at, "workflow_id")?;
    }
    assembler.finish()
}

fn mailbox(
    f: &Fields<'_>,
    rng: &mut dyn RandomSource,
    iterations: u32,
) -> Result<Mailbox, LoadError> {
    let id = f.id("mailbox_id", MailboxId::parse)?;
    let name = loader::required_text(f.required_str("mailbox_name")?)
        .map_err(|k| f.at.err("mailbox_name", k))?;
    let ods_code = f.id("ods_code", OdsCode::parse)?;
    let credential = loader::credential(
        f.optional_str("password")?,
        f.optional_str("password_hash")?,
        rng,
        iterations,
    )
    .map_err(|(field, kind)| match field {
        Some(field) => f.at.err(field, kind),
        None => LoadError::line(f.at.file, f.at.line, kind),
    })?;
    Ok(Mailbox {
        id,
        name,
        ods_code,
        org_code: loader::optional_text(f.optional_str("org_code")?),
        org_name: loader::optional_text(f.optional_str("org_name")?),
        billing_entity: loader::optional_text(f.optional_str("billing_entity")?),
        active: f.optional_bool("active")?.unwrap_or(true),
        credential,
    })
}

fn workflow(f: &Fields<'_>, known: &Assembler) -> Result<Workflow, LoadError> {
    let id = f.id("workflow_id", WorkflowId::parse)?;
    let members = |field: &str| -> Result<_, LoadError> {
        let mut set = std::collections::BTreeSet::new();
        for raw in f.required_str_list(field)? {
            let mailbox =
                loader::parse_id(raw, MailboxId::parse).map_err(|k| f.at.err(field, k))?;
            known.require_mailbox(&mailbox, f.at, field)?;
            set.insert(mailbox);
        }
        Ok(set)
    };
    let senders = members("senders")?;
    let receivers = members("receivers")?;
    Ok(Workflow {
        id,
        senders,
        receivers,
    })
}

/// Non-blank lines of `contents` parsed as JSON objects, with their location.
fn records(
    contents: &str,
    file: FileKind,
) -> impl Iterator<Item = Result<(Loc, Map<String, Value>), LoadError>> + '_ {
    let contents = contents.strip_prefix('\u{feff}').unwrap_or(contents);
    contents
        .lines()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(move |(index, text)| {
            let at = Loc {
                file,
                line: index + 1,
            };
            let invalid =
                |msg: String| LoadError::line(file, at.line, LoadErrorKind::InvalidJson(msg));
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => Ok((at, object)),
                Ok(other) => Err(invalid(format!(
                    "found {}, expected an object",
                    kind_of(&other)
                ))),
                Err(e) => Err(invalid(json_error_message(&e))),
            }
        })
}

/// serde_json's message without its "at line 1 column N" suffix (always
/// line 1 here), with the column kept.
fn json_error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let message = match full.rsplit_once(" at line ") {
        Some((message, _)) => message,
        None => full.as_str(),
    };
    format!("{message} (column {})", e.column())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to one line's fields; every error carries the line and the
/// field name. JSON `null` is treated as absent.
struct Fields<'a> {
    at: Loc,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, field: &str, expected: &'static str) -> LoadError {
        self.at.err(field, LoadErrorKind::WrongType { expected })
    }

    fn required_str(&self, field: &str) -> Result<&'a str, LoadError> {
        self.optional_str(field)?
            .ok_or_else(|| self.at.err(field, LoadErrorKind::MissingField))
    }

    fn optional_str(&self, field: &str) -> Result<Option<&'a str>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.wrong_type(field, "a string")),
        }
    }

    fn optional_bool(&self, field: &str) -> Result<Option<bool>, LoadError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong_type(field, "true or false")),
        }
    }

    fn required_str_list(&self, field: &str) -> Result<Vec<&'a str>, LoadError> {
        const EXPECTED: &str = "an array of mailbox id strings";
        let Some(value) = self.get(field) else {
            return Err(self.at.err(field, LoadErrorKind::MissingField));
        };
        let Value::Array(items) = value else {
            return Err(self.wrong_type(field, EXPECTED));
        };
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| self.wrong_type(field, EXPECTED))
            })
            .collect()
    }

    fn id<T, E: std::fmt::Display>(
        &self,
        field: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, LoadError> {
        loader::parse_id(self.required_str(field)?, parse).map_err(|k| self.at.err(field, k))
    }
}
