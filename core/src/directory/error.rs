//! Directory errors.
//!
//! Two families share [`DirectoryError`]:
//! - runtime answers (`authenticate`, `check_send`), some of which map onto
//!   MESH error codes via [`DirectoryError::mesh_error_code`];
//! - load errors ([`LoadError`]), which always name the file, the 1-based
//!   line and, where one is to blame, the field, so an operator can go
//!   straight to the mistake.
//!
//! Authentication failures deliberately carry no mailbox id and read the same
//! whether the mailbox is unknown or the password is wrong, so the error
//! cannot be used to discover which mailboxes exist.

use std::fmt;

use crate::directory::credentials::CredentialError;
use crate::ids::{MailboxId, WorkflowId};
use crate::ErrorCode;

/// Which side of a workflow a mailbox was named on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Listed in the workflow's `senders`.
    Sender,
    /// Listed in the workflow's `receivers`.
    Receiver,
}

impl Role {
    /// `"senders"` or `"receivers"`: the list the role comes from.
    pub fn list_name(self) -> &'static str {
        match self {
            Role::Sender => "senders",
            Role::Receiver => "receivers",
        }
    }
}

/// Errors from building or querying a [`super::Directory`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Two mailboxes share an id.
    #[error("mailbox {id} is defined more than once; remove or rename the duplicate")]
    DuplicateMailbox {
        /// The repeated id.
        id: MailboxId,
    },
    /// Two workflows share an id.
    #[error("workflow {id} is defined more than once; merge the entries into one")]
    DuplicateWorkflow {
        /// The repeated id.
        id: WorkflowId,
    },
    /// A workflow names a mailbox that is not in the directory.
    #[error(
        "workflow {workflow} lists unknown mailbox {mailbox} in its {}; define the mailbox or remove it from the list",
        role.list_name()
    )]
    WorkflowUnknownMailbox {
        /// The workflow.
        workflow: WorkflowId,
        /// Which list named the mailbox.
        role: Role,
        /// The unknown mailbox.
        mailbox: MailboxId,
    },
    /// Unknown mailbox or wrong password (indistinguishable on purpose).
    #[error("authentication failed: unknown mailbox or wrong password")]
    AuthenticationFailed,
    /// The mailbox exists (and, for `authenticate`, the password was right)
    /// but it is deactivated.
    #[error("mailbox {id} is inactive; ask the directory administrator to reactivate it")]
    MailboxInactive {
        /// The inactive mailbox.
        id: MailboxId,
    },
    /// The sending mailbox is not in the directory.
    #[error("sender mailbox {id} is not in the directory")]
    SenderUnknown {
        /// The unknown sender.
        id: MailboxId,
    },
    /// MESH error 12: the recipient mailbox is not registered.
    #[error("unregistered recipient {id}: no such mailbox; check the mex-To address")]
    RecipientUnregistered {
        /// The unknown recipient.
        id: MailboxId,
    },
    /// MESH error 14: the recipient mailbox is deactivated.
    #[error("recipient mailbox {id} is deactivated and cannot receive messages")]
    RecipientInactive {
        /// The inactive recipient.
        id: MailboxId,
    },
    /// MESH error 17: the workflow is registered and the mailbox is not on
    /// the required side of it.
    #[error(
        "workflow {workflow} not registered for mailbox {mailbox}: it is not in the workflow's {}",
        role.list_name()
    )]
    WorkflowNotRegistered {
        /// The workflow.
        workflow: WorkflowId,
        /// The mailbox that is not registered.
        mailbox: MailboxId,
        /// The list it is missing from.
        role: Role,
    },
    /// A credential setting (such as the iteration count) is unusable.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A directory file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl DirectoryError {
    /// The MESH error code this corresponds to, if any (`"12"`, `"14"`,
    /// `"17"`).
    pub fn mesh_error_code(&self) -> Option<&'static str> {
        match self {
            Self::RecipientUnregistered { .. } => Some("12"),
            Self::RecipientInactive { .. } => Some("14"),
            Self::WorkflowNotRegistered { .. } => Some("17"),
            _ => None,
        }
    }
}

impl ErrorCode for DirectoryError {
    fn code(&self) -> &'static str {
        match self {
            Self::DuplicateMailbox { .. } => "DIR_DUPLICATE_MAILBOX",
            Self::DuplicateWorkflow { .. } => "DIR_DUPLICATE_WORKFLOW",
            Self::WorkflowUnknownMailbox { .. } => "DIR_WORKFLOW_UNKNOWN_MAILBOX",
            Self::AuthenticationFailed => "DIR_AUTH_FAILED",
            Self::MailboxInactive { .. } => "DIR_MAILBOX_INACTIVE",
            Self::SenderUnknown { .. } => "DIR_SENDER_UNKNOWN",
            Self::RecipientUnregistered { .. } => "DIR_RECIPIENT_UNREGISTERED",
            Self::RecipientInactive { .. } => "DIR_RECIPIENT_INACTIVE",
            Self::WorkflowNotRegistered { .. } => "DIR_WORKFLOW_NOT_REGISTERED",
            Self::Credential(e) => e.code(),
            Self::Load(e) => e.code(),
        }
    }
}

/// Which directory file an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// mesh-sandbox `mailboxes.jsonl`.
    MailboxesJsonl,
    /// mesh-sandbox `workflows.jsonl`.
    WorkflowsJsonl,
    /// Spine's native TOML directory.
    Toml,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::MailboxesJsonl => "mailboxes.jsonl",
            FileKind::WorkflowsJsonl => "workflows.jsonl",
            FileKind::Toml => "directory TOML",
        })
    }
}

/// A load error pinned to a file, line and (usually) field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: FileKind,
    /// 1-based line number.
    pub line: usize,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

impl LoadError {
    /// An error about `field` at `line` of `file`.
    pub fn field(file: FileKind, line: usize, field: &str, kind: LoadErrorKind) -> LoadError {
        LoadError {
            file,
            line,
            field: Some(field.to_owned()),
            kind,
        }
    }

    /// An error about the entry at `line` as a whole.
    pub fn line(file: FileKind, line: usize, kind: LoadErrorKind) -> LoadError {
        LoadError {
            file,
            line,
            field: None,
            kind,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "field {field:?}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl ErrorCode for LoadError {
    fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// What is wrong with a directory file entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    /// The line is not a JSON object.
    #[error("invalid JSON: {0}; each non-blank line must be one complete JSON object")]
    InvalidJson(String),
    /// The TOML is malformed, has an unknown field, or a wrong type.
    #[error("invalid directory TOML: {0}")]
    InvalidToml(String),
    /// A required field is absent.
    #[error("required field is missing; add it")]
    MissingField,
    /// A field has the wrong JSON/TOML type.
    #[error("expected {expected}")]
    WrongType {
        /// What was expected, e.g. `"a string"`.
        expected: &'static str,
    },
    /// A required text field is empty.
    #[error("must not be empty")]
    Empty,
    /// An identifier does not parse (the message of the `ids` error).
    #[error("{0}")]
    InvalidId(String),
    /// The password or password hash is unusable.
    #[error("{0}")]
    Credential(CredentialError),
    /// Neither or both of `password` and `password_hash` were given.
    #[error(
        "give exactly one of \"password\" (plaintext; enables NHSMESH header auth) or \"password_hash\" ({})",
        if *both { "both were given" } else { "neither was given" }
    )]
    PasswordChoice {
        /// True when both were given, false when neither was.
        both: bool,
    },
    /// A mailbox id is repeated.
    #[error("mailbox {id} is already defined on line {first_line}; remove or rename one of them")]
    DuplicateMailbox {
        /// The id.
        id: MailboxId,
        /// Line of the first definition.
        first_line: usize,
    },
    /// A workflow id is repeated.
    #[error("workflow {id} is already defined on line {first_line}; merge the two entries")]
    DuplicateWorkflow {
        /// The id.
        id: WorkflowId,
        /// Line of the first definition.
        first_line: usize,
    },
    /// A workflow lists a mailbox that is not defined.
    #[error(
        "mailbox {id} is not defined in {defined_in}; define it there or remove it from this list"
    )]
    UnknownMailbox {
        /// The unknown mailbox.
        id: MailboxId,
        /// Where mailboxes are defined.
        defined_in: FileKind,
    },
}

impl ErrorCode for LoadErrorKind {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "DIR_LOAD_JSON_INVALID",
            Self::InvalidToml(_) => "DIR_LOAD_TOML_INVALID",
            Self::MissingField => "DIR_LOAD_FIELD_MISSING",
            Self::WrongType { .. } => "DIR_LOAD_FIELD_TYPE",
            Self::Empty => "DIR_LOAD_FIELD_EMPTY",
            Self::InvalidId(_) => "DIR_LOAD_ID_INVALID",
            Self::Credential(e) => e.code(),
            Self::PasswordChoice { .. } => "DIR_LOAD_PASSWORD_CHOICE",
            Self::DuplicateMailbox { .. } => "DIR_LOAD_DUPLICATE_MAILBOX",
            Self::DuplicateWorkflow { .. } => "DIR_LOAD_DUPLICATE_WORKFLOW",
            Self::UnknownMailbox { .. } => "DIR_LOAD_UNKNOWN_MAILBOX",
        }
    }
}
