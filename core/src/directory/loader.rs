//! Steps shared by the JSONL and TOML loaders.
//!
//! The loaders check the cross-entry rules themselves, as entries arrive,
//! because only they know line numbers: a duplicate id names the line of the
//! first definition, and an unknown mailbox in a workflow names the
//! workflow's line. [`Assembler::finish`] then hands the already-checked
//! entries to [`Directory::new`], which re-checks them (cheaply) as the
//! single source of truth.

use std::collections::BTreeMap;
use std::fmt::Display;

use crate::directory::credentials::{self, Credential};
use crate::directory::error::{DirectoryError, FileKind, LoadError, LoadErrorKind};
use crate::directory::model::{Mailbox, Workflow};
use crate::directory::Directory;
use crate::ids::{MailboxId, WorkflowId};
use crate::random::RandomSource;

/// A place in a file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    pub file: FileKind,
    pub line: usize,
}

impl Loc {
    pub fn err(self, field: &str, kind: LoadErrorKind) -> LoadError {
        LoadError::field(self.file, self.line, field, kind)
    }
}

/// Collects entries, rejecting duplicates and dangling references with the
/// offending line.
#[derive(Debug)]
pub(super) struct Assembler {
    mailboxes_defined_in: FileKind,
    mailboxes: Vec<Mailbox>,
    mailbox_lines: BTreeMap<MailboxId, usize>,
    workflows: Vec<Workflow>,
    workflow_lines: BTreeMap<WorkflowId, usize>,
}

impl Assembler {
    pub fn new(mailboxes_defined_in: FileKind) -> Assembler {
        Assembler {
            mailboxes_defined_in,
            mailboxes: Vec::new(),
            mailbox_lines: BTreeMap::new(),
            workflows: Vec::new(),
            workflow_lines: BTreeMap::new(),
        }
    }

    /// Adds a mailbox defined at `at`; `id_field` names its id field.
    pub fn add_mailbox(
        &mut self,
        mailbox: Mailbox,
        at: Loc,
        id_field: &str,
    ) -> Result<(), LoadError> {
        if let Some(&first_line) = self.mailbox_lines.get(&mailbox.id) {
            return Err(at.err(
                id_field,
                LoadErrorKind::DuplicateMailbox {
                    id: mailbox.id,
                    first_line,
                },
            ));
        }
        self.mailbox_lines.insert(mailbox.id.clone(), at.line);
        self.mailboxes.push(mailbox);
        Ok(())
    }

    /// Fails unless `id` was added before. Mailboxes must therefore all be
    /// added before any workflow that names them.
    pub fn require_mailbox(&self, id: &MailboxId, at: Loc, field: &str) -> Result<(), LoadError> {
        if self.mailbox_lines.contains_key(id) {
            Ok(())
        } else {
            Err(at.err(
                field,
                LoadErrorKind::UnknownMailbox {
                    id: id.clone(),
                    defined_in: self.mailboxes_defined_in,
                },
            ))
        }
    }

    /// Adds a workflow defined at `at`; `id_field` names its id field.
    pub fn add_workflow(
        &mut self,
        workflow: Workflow,
        at: Loc,
        id_field: &str,
    ) -> Result<(), LoadError> {
        if let Some(&first_line) = self.workflow_lines.get(&workflow.id) {
            return Err(at.err(
                id_field,
                LoadErrorKind::DuplicateWorkflow {
                    id: workflow.id,
                    first_line,
                },
            ));
        }
        self.workflow_lines.insert(workflow.id.clone(), at.line);
        self.workflows.push(workflow);
        Ok(())
    }

    pub fn finish(self) -> Result<Directory, DirectoryError> {
        Directory::new(self.mailboxes, self.workflows)
    }
}

/// Parses an identifier, turning its error into a load error kind.
/// Surrounding whitespace is ignored, as mesh-sandbox strips it.
pub(super) fn parse_id<T, E: Display>(
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, LoadErrorKind> {
    parse(raw.trim()).map_err(|e| LoadErrorKind::InvalidId(e.to_string()))
}

/// A required free-text field: trimmed, must not be empty.
pub(super) fn required_text(raw: &str) -> Result<String, LoadErrorKind> {
    let text = raw.trim();
    if text.is_empty() {
        Err(LoadErrorKind::Empty)
    } else {
        Ok(text.to_owned())
    }
}

/// An optional free-text field: trimmed; blank counts as absent
/// (mesh-sandbox defaults these to `""`).
pub(super) fn optional_text(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Builds the credential from exactly one of `password` / `password_hash`.
/// On error, returns the field to blame (none when the choice itself is
/// wrong).
pub(super) fn credential(
    password: Option<&str>,
    password_hash: Option<&str>,
    rng: &mut dyn RandomSource,
    iterations: u32,
) -> Result<Credential, (Option<&'static str>, LoadErrorKind)> {
    match (password, password_hash) {
        (Some(pw), None) => Credential::from_password(pw, rng, iterations)
            .map_err(|e| (Some("password"), LoadErrorKind::Credential(e))),
        (None, Some(hash)) => Credential::from_hash_string(hash)
            .map_err(|e| (Some("password_hash"), LoadErrorKind::Credential(e))),
        (Some(_), Some(_)) => Err((None, LoadErrorKind::PasswordChoice { both: true })),
        (None, None) => Err((None, LoadErrorKind::PasswordChoice { both: false })),
    }
}

/// Validates the loader-wide iteration count before any line is read, so a
/// bad setting is not blamed on line 1.
pub(super) fn check_iterations(iterations: u32) -> Result<(), DirectoryError> {
    credentials::check_iterations(iterations).map_err(DirectoryError::Credential)
}

/// 1-based line of byte offset `offset` in `contents`.
pub(super) fn line_of(contents: &str, offset: usize) -> usize {
    contents
        .as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
