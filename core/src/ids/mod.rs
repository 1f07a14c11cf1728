//! Validated identifiers.
//!
//! Invariants and why:
//! - Each identifier is a newtype whose only constructors validate
//!   (`parse`, `TryFrom<String>`, `FromStr`, serde deserialisation), so a
//!   value of the type is a valid id; code downstream never re-checks.
//! - Ids MESH treats case-insensitively ([`MailboxId`], [`OdsCode`]) are
//!   stored in upper case, so equality, hashing and ordering agree with MESH.
//!   Ids MESH passes through verbatim ([`WorkflowId`], [`LocalId`]) keep
//!   their case.
//! - [`MessageId`] text sorts in time order, so ordered maps keyed by it are
//!   ordered by creation time.
//! - rkyv archives hold the inner string only. Archive validation
//!   (bytecheck) checks structure, not these rules, so anything read from an
//!   archive must be re-parsed (see `crate::envelope`) before it is trusted.
//! - Errors ([`IdError`]) echo at most 64 characters of the input.

mod error;
mod local;
mod mailbox;
mod message_id;
mod nhs_number;
mod ods;
mod workflow;

pub use error::{bounded_input, IdError, IdKind, MAX_ERROR_INPUT_CHARS};
pub use local::LocalId;
pub use mailbox::MailboxId;
pub use message_id::{IdTag, MessageId, MessageIdGenerator};
pub use nhs_number::NhsNumber;
pub use ods::OdsCode;
pub use workflow::WorkflowId;

/// The conversions shared by every string-backed id: `as_str`, `Display`,
/// `FromStr`, `TryFrom<String>`, `TryFrom<&str>`, `AsRef<str>` and
/// `From<Id> for String`. All constructing conversions go through the type's
/// own `parse`, so none of them can bypass validation.
macro_rules! string_id_common {
    ($ty:ident) => {
        impl $ty {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::ids::IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }

        impl ::std::convert::TryFrom<String> for $ty {
            type Error = $crate::ids::IdError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                $ty::parse(&s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $crate::ids::IdError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $ty::parse(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
    };
}
pub(crate) use string_id_common;

#[cfg(test)]
pub(crate) mod strategies {
    //! proptest strategies producing valid ids, shared with other modules' tests.
    use proptest::prelude::*;

    /// Valid mailbox ids (mixed case; parse normalises).
    pub fn mailbox() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,32}"
    }

    /// Valid ODS codes.
    pub fn ods() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{2,10}"
    }

    /// Valid workflow ids (not URLs).
    pub fn workflow() -> impl Strategy<Value = String> {
        "[!-~]{1,300}".prop_filter("not a URL", |s| {
            let l = s.to_ascii_lowercase();
            !l.starts_with("http://") && !l.starts_with("https://")
        })
    }

    /// Valid local ids: any non-control Unicode.
    pub fn local() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            any::<char>().prop_filter("no C0/DEL", |c| *c > '\u{1F}' && *c != '\u{7F}'),
            1..=300,
        )
        .prop_map(|v| v.into_iter().collect())
    }
}
