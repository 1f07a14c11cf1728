//! [`MailboxId`]: a MESH mailbox id such as `X26ABC1` (or `ALICE` in
//! mesh-sandbox fixtures).
//!
//! Invariant: 1..=32 characters from `A-Z`, `0-9`, `_`, `-`, stored upper
//! case. MESH compares mailbox ids case-insensitively and upper-cases them,
//! so normalising on parse makes `x26abc1` and `X26ABC1` the same key here
//! too.

use serde::{Deserialize, Serialize};

use super::error::{check_chars, IdKind};
use super::{string_id_common, IdError};

/// A validated, upper-cased MESH mailbox id.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
#[rkyv(derive(Debug))]
pub struct MailboxId(String);

impl MailboxId {
    /// Shortest accepted length, in characters.
    pub const MIN_LEN: usize = 1;
    /// Longest mailbox id.
    pub const MAX_LEN: usize = 32;

    /// Parses and upper-cases a mailbox id.
    pub fn parse(input: &str) -> Result<MailboxId, IdError> {
        check_chars(
            IdKind::Mailbox,
            input,
            Self::MIN_LEN,
            Self::MAX_LEN,
            |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
            "letters A-Z, digits and '_' or '-'",
        )?;
        Ok(MailboxId(input.to_ascii_uppercase()))
    }
}

string_id_common!(MailboxId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::strategies;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_mesh_and_sandbox_ids() {
        for ok in [
            "X26ABC1",
            "ALICE",
            "x26abc1",
            "A",
            "MY_BOX-1",
            &"Z".repeat(32),
        ] {
            let id = MailboxId::parse(ok).unwrap();
            assert_eq!(id.as_str(), ok.to_ascii_uppercase());
        }
        assert_eq!(MailboxId::parse("x26abc1"), MailboxId::parse("X26ABC1"));
    }

    #[test]
    fn rejects_with_clear_messages() {
        let e = MailboxId::parse("x y").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mailbox id \"x y\" contains ' ' at position 1; use only letters A-Z, digits and '_' or '-'"
        );
        assert_eq!(e.code(), "ID_MAILBOX_INVALID");
        let e = MailboxId::parse("").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mailbox id \"\" is 0 characters long; use 1 to 32 characters"
        );
        assert!(MailboxId::parse(&"A".repeat(33)).is_err());
        assert!(MailboxId::parse("ÅLICE").is_err());
        assert!(MailboxId::parse("A.B").is_err());
        assert!(MailboxId::parse("AB\n").is_err());
    }

    #[test]
    fn serde_validates() {
        let id: MailboxId = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(id.as_str(), "ALICE");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ALICE\"");
        assert!(serde_json::from_str::<MailboxId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<MailboxId>("\"\"").is_err());
    }

    #[test]
    fn rkyv_round_trip() {
        let id = MailboxId::parse("X26ABC1").unwrap();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&id).unwrap();
        let back = rkyv::from_bytes::<MailboxId, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, id);
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(s in strategies::mailbox()) {
            let id = MailboxId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.to_ascii_uppercase());
            let shown = id.to_string();
            prop_assert_eq!(shown.as_str(), id.as_str());
            prop_assert_eq!(MailboxId::parse(&shown), Ok(id.clone()));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<MailboxId>(&json).unwrap(), id.clone());
            prop_assert_eq!(id.to_string().parse::<MailboxId>(), Ok(id));
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,40}") {
            if let Ok(id) = MailboxId::parse(&s) {
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
            }
        }
    }
}
