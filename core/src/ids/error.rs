//! [`IdError`]: why a string is not a valid identifier.
//!
//! Every variant carries the offending input, cut to [`MAX_ERROR_INPUT_CHARS`]
//! characters so a hostile multi-megabyte header cannot flood the logs, and
//! its message says both what is wrong and what would be accepted.

use std::fmt;

use thiserror::Error;

use crate::time::{TimeError, Timestamp};
use crate::ErrorCode;

/// Longest prefix of an offending input kept in an error, in characters.
pub const MAX_ERROR_INPUT_CHARS: usize = 64;

/// Which kind of identifier an [`IdError`] is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// [`crate::ids::MailboxId`].
    Mailbox,
    /// [`crate::ids::OdsCode`].
    Ods,
    /// [`crate::ids::WorkflowId`].
    Workflow,
    /// [`crate::ids::LocalId`].
    Local,
    /// [`crate::ids::MessageId`].
    Message,
}

impl IdKind {
    /// Human name used in error messages.
    pub const fn name(self) -> &'static str {
        match self {
            IdKind::Mailbox => "mailbox id",
            IdKind::Ods => "ODS code",
            IdKind::Workflow => "workflow id",
            IdKind::Local => "local id",
            IdKind::Message => "message id",
        }
    }

    /// The stable error code for any problem with this kind of id.
    pub const fn code(self) -> &'static str {
        match self {
            IdKind::Mailbox => "ID_MAILBOX_INVALID",
            IdKind::Ods => "ID_ODS_INVALID",
            IdKind::Workflow => "ID_WORKFLOW_INVALID",
            IdKind::Local => "ID_LOCAL_INVALID",
            IdKind::Message => "ID_MESSAGE_INVALID",
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Too short or too long (length counted in characters).
    #[error("{kind} {input:?} is {len} characters long; use {min} to {max} characters")]
    Length {
        /// Which id.
        kind: IdKind,
        /// The input (truncated).
        input: String,
        /// Its length in characters.
        len: usize,
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
    },
    /// Contains a character the id does not allow.
    #[error("{kind} {input:?} contains {found:?} at position {position}; use only {allowed}")]
    Char {
        /// Which id.
        kind: IdKind,
        /// The input (truncated).
        input: String,
        /// The offending character.
        found: char,
        /// Its 0-based character position.
        position: usize,
        /// What is allowed, phrased to follow "use only".
        allowed: &'static str,
    },
    /// A workflow id that is a URL, which MESH rejects.
    #[error(
        "workflow id {input:?} starts with a URL scheme (http:// or https://), which MESH \
         rejects; use a plain workflow name such as \"PATH_TEST\""
    )]
    WorkflowUrl {
        /// The input (truncated).
        input: String,
    },
    /// A message id that is not `YYYYMMDDHHMMSSffffff_XXXXXX`.
    #[error(
        "message id {input:?} {problem}; use the MESH form YYYYMMDDHHMMSSffffff_XXXXXX \
         (20-digit UTC time, '_', 6 upper-case hex digits)"
    )]
    MessageFormat {
        /// The input (truncated).
        input: String,
        /// What is wrong, phrased to follow the input.
        problem: String,
    },
    /// A message id whose 20 digits are not a real UTC date-time.
    #[error("message id {input:?} does not start with a valid UTC time: {source}")]
    MessageTime {
        /// The input (truncated).
        input: String,
        /// The time parse failure.
        source: TimeError,
    },
    /// A message id suffix that does not fit in 6 hex digits.
    #[error("message id suffix {suffix:#x} is larger than 0xFFFFFF; use a value below 2^24")]
    MessageSuffix {
        /// The rejected suffix.
        suffix: u32,
    },
    /// The generator cannot issue a later id within the four-digit-year range.
    #[error(
        "cannot issue a message id after {last}: the next id would lie beyond \
         9999-12-31T23:59:59.999999Z; check the clock feeding the id generator"
    )]
    MessageClockExhausted {
        /// The newest timestamp already issued or observed.
        last: Timestamp,
    },
    /// An NHS number without exactly 10 digits.
    #[error(
        "NHS number {input:?} has {digits} digits; an NHS number has exactly 10 digits, \
         optionally grouped 3-3-4 with spaces or hyphens (\"943 476 5919\")"
    )]
    NhsNumberLength {
        /// The input (truncated).
        input: String,
        /// How many digits it contains.
        digits: usize,
    },
    /// An NHS number containing something other than digits and 3-3-4 separators.
    #[error(
        "NHS number {input:?} contains {found:?} at position {position}; use 10 digits, \
         optionally grouped 3-3-4 with spaces or hyphens (\"943 476 5919\" or \"943-476-5919\")"
    )]
    NhsNumberDigits {
        /// The input (truncated).
        input: String,
        /// The offending character.
        found: char,
        /// Its 0-based character position.
        position: usize,
    },
    /// The check digit does not match the first nine digits.
    #[error(
        "NHS number {input:?} ends in check digit {found} but its first nine digits require \
         {expected} (modulus 11); re-check the number for a mistyped or swapped digit"
    )]
    NhsNumberCheckDigit {
        /// The input (truncated).
        input: String,
        /// The tenth digit as given.
        found: u8,
        /// The check digit the first nine digits require.
        expected: u8,
    },
    /// The first nine digits give modulus-11 check value 10, which no NHS number has.
    #[error(
        "NHS number {input:?} cannot be valid: its first nine digits give modulus-11 check \
         value 10, which is never issued; re-check the number for a mistyped or swapped digit"
    )]
    NhsNumberNoCheckDigit {
        /// The input (truncated).
        input: String,
    },
}

impl ErrorCode for IdError {
    fn code(&self) -> &'static str {
        match self {
            IdError::Length { kind, .. } | IdError::Char { kind, .. } => kind.code(),
            IdError::WorkflowUrl { .. } => IdKind::Workflow.code(),
            IdError::MessageFormat { .. }
            | IdError::MessageTime { .. }
            | IdError::MessageSuffix { .. } => IdKind::Message.code(),
            IdError::MessageClockExhausted { .. } => "ID_MESSAGE_CLOCK_EXHAUSTED",
            IdError::NhsNumberLength { .. } => "ID_NHS_NUMBER_LENGTH",
            IdError::NhsNumberDigits { .. } => "ID_NHS_NUMBER_DIGITS",
            IdError::NhsNumberCheckDigit { .. } | IdError::NhsNumberNoCheckDigit { .. } => {
                "ID_NHS_NUMBER_CHECK_DIGIT"
            }
        }
    }
}

/// `input` cut to [`MAX_ERROR_INPUT_CHARS`] characters, with `…` appended if
/// anything was cut. Used for every input echoed in an error.
pub fn bounded_input(input: &str) -> String {
    match input.char_indices().nth(MAX_ERROR_INPUT_CHARS) {
        Some((cut, _)) => {
            let mut s = String::with_capacity(cut + '…'.len_utf8());
            s.push_str(input.get(..cut).unwrap_or(""));
            s.push('…');
            s
        }
        None => input.to_owned(),
    }
}

/// Checks that `input` has `min..=max` characters and that every character
/// satisfies `ok`; the shared validation of the string ids.
pub(crate) fn check_chars(
    kind: IdKind,
    input: &str,
    min: usize,
    max: usize,
    ok: impl Fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), IdError> {
    let len = input.chars().count();
    if len < min || len > max {
        return Err(IdError::Length {
            kind,
            input: bounded_input(input),
            len,
            min,
            max,
        });
    }
    match input.chars().enumerate().find(|&(_, c)| !ok(c)) {
        Some((position, found)) => Err(IdError::Char {
            kind,
            input: bounded_input(input),
            found,
            position,
            allowed,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_input_cuts_at_64_chars() {
        assert_eq!(bounded_input("abc"), "abc");
        let exact = "é".repeat(64);
        assert_eq!(bounded_input(&exact), exact);
        let long = "é".repeat(65);
        let cut = bounded_input(&long);
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_input(&"x".repeat(1_000_000)).chars().count(), 65);
    }

    #[test]
    fn mailbox_message_matches_house_style() {
        let e = check_chars(
            IdKind::Mailbox,
            "x y",
            1,
            32,
            |c| c.is_ascii_alphanumeric(),
            "letters A-Z, digits and '_' or '-'",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "mailbox id \"x y\" contains ' ' at position 1; use only letters A-Z, digits and '_' or '-'"
        );
        assert_eq!(e.code(), "ID_MAILBOX_INVALID");
    }
}
