//! Loader for Spine's native TOML directory.
//!
//! ```toml
//! [[mailbox]]
//! id = "X26ABC1"
//! name = "TESTMB1"
//! ods_code = "X26"
//! org_name = "Test org"      # optional, as are org_code and billing_entity
//! active = true              # optional, default true
//! password = "password"      # or password_hash = "pbkdf2-sha256$10000$<salt hex>$<hash hex>"
//!
//! [[workflow]]
//! id = "TEST_WORKFLOW"
//! senders = ["X26ABC1"]
//! receivers = ["X26ABC2"]
//! ```
//!
//! Each mailbox gives exactly one of `password` (plaintext; also kept as the
//! MESH secret so `NHSMESH` headers can be checked) and `password_hash` (no
//! plaintext on disk; `NHSMESH` header auth then unavailable).
//!
//! Unknown keys are errors, at every level, so a typo such as `pasword` or
//! `[[mailboxes]]` is reported instead of silently ignored. Every error
//! carries the 1-based line, taken from the TOML parser's byte spans; field
//! values are read as `toml::Spanned` so validation errors point at the
//! offending value's line. Workflows may name only mailboxes defined in the
//! same file, in any order.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::directory::error::{DirectoryError, FileKind, LoadError, LoadErrorKind};
use crate::directory::loader::{self, Assembler, Loc};
use crate::directory::model::{Mailbox, Workflow};
use crate::directory::Directory;
use crate::ids::{MailboxId, OdsCode, WorkflowId};
use crate::random::RandomSource;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDirectory {
    #[serde(default)]
    mailbox: Vec<Spanned<TomlMailbox>>,
    #[serde(default)]
    workflow: Vec<Spanned<TomlWorkflow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlMailbox {
    id: Spanned<String>,
    name: Spanned<String>,
    ods_code: Spanned<String>,
    org_code: Option<String>,
    org_name: Option<String>,
    billing_entity: Option<String>,
    active: Option<bool>,
    password: Option<Spanned<String>>,
    password_hash: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlWorkflow {
    id: Spanned<String>,
    senders: Vec<Spanned<String>>,
    receivers: Vec<Spanned<String>>,
}

/// Loads a directory from the contents of a native TOML directory file,
/// hashing plaintext passwords with `iterations` rounds and salts drawn from
/// `rng`.
pub fn load_toml(
    contents: &str,
    rng: &mut dyn RandomSource,
    iterations: u32,
) -> Result<Directory, DirectoryError> {
    loader::check_iterations(iterations)?;
    let parsed: TomlDirectory = toml::from_str(contents).map_err(|e| {
        let line = e
            .span()
            .map_or(1, |span| loader::line_of(contents, span.start));
        LoadError::line(
            FileKind::Toml,
            line,
            LoadErrorKind::InvalidToml(e.message().trim().to_owned()),
        )
    })?;
    let lines = Lines { contents };
    let mut assembler = Assembler::new(FileKind::Toml);
    for entry in &parsed.mailbox {
        let mailbox = mailbox(entry, lines, rng, iterations)?;
        assembler.add_mailbox(mailbox, lines.at(entry.get_ref().id.span()), "id")?;
    }
    for entry in &parsed.workflow {
        let workflow = workflow(entry.get_ref(), lines, &assembler)?;
        assembler.add_workflow(workflow, lines.at(entry.get_ref().id.span()), "id")?;
    }
    assembler.finish()
}

/// Byte span to line conversion for this file.
#[derive(Clone, Copy)]
struct Lines<'a> {
    contents: &'a str,
}

impl Lines<'_> {
    fn at(self, span: Range<usize>) -> Loc {
        Loc {
            file: FileKind::Toml,
            line: loader::line_of(self.contents, span.start),
        }
    }

    fn err(self, value: &Spanned<String>, field: &str, kind: LoadErrorKind) -> LoadError {
        self.at(value.span()).err(field, kind)
    }
}

fn mailbox(
    entry: &Spanned<TomlMailbox>,
    lines: Lines<'_>,
    rng: &mut dyn RandomSource,
    iterations: u32,
) -> Result<Mailbox, LoadError> {
    let raw = entry.get_ref();
    let id = loader::parse_id(raw.id.get_ref(), MailboxId::parse)
        .map_err(|k| lines.err(&raw.id, "id", k))?;
    let name =
        loader::required_text(raw.name.get_ref()).map_err(|k| lines.err(&raw.name, "name", k))?;
    let ods_code = loader::parse_id(raw.ods_code.get_ref(), OdsCode::parse)
        .map_err(|k| lines.err(&raw.ods_code, "ods_code", k))?;
    let credential = loader::credential(
        raw.password.as_ref().map(|p| p.get_ref().as_str()),
        raw.password_hash.as_ref().map(|p| p.get_ref().as_str()),
        rng,
        iterations,
    )
    .map_err(|(field, kind)| {
        let value = match field {
            Some("password") => raw.password.as_ref(),
            Some(_) => raw.password_hash.as_ref(),
            None => None,
        };
        match (field, value) {
            (Some(field), Some(value)) => lines.err(value, field, kind),
            _ => {
                let at = lines.at(entry.span());
                LoadError::line(at.file, at.line, kind)
            }
        }
    })?;
    Ok(Mailbox {
        id,
        name,
        ods_code,
        org_code: loader::optional_text(raw.org_code.as_deref()),
        org_name: loader::optional_text(raw.org_name.as_deref()),
        billing_entity: loader::optional_text(raw.billing_entity.as_deref()),
        active: raw.active.unwrap_or(true),
        credential,
    })
}

fn workflow(
    raw: &TomlWorkflow,
    lines: Lines<'_>,
    known: &Assembler,
) -> Result<Workflow, LoadError> {
    let id = loader::parse_id(raw.id.get_ref(), WorkflowId::parse)
        .map_err(|k| lines.err(&raw.id, "id", k))?;
    let members =
        |list: &[Spanned<String>], field: &str| -> Result<BTreeSet<MailboxId>, LoadError> {
            let mut set = BTreeSet::new();
            for value in list {
                let mailbox = loader::parse_id(value.get_ref(), MailboxId::parse)
                    .map_err(|k| lines.err(value, field, k))?;
                known.require_mailbox(&mailbox, lines.at(value.span()), field)?;
                set.insert(mailbox);
            }
            Ok(set)
        };
    Ok(Workflow {
        id,
        senders: members(&raw.senders, "senders")?,
        receivers: members(&raw.receivers, "receivers")?,
    })
}
