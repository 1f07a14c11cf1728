//! [`LocalId`]: the sender's own reference for a message (MESH
//! `Mex-LocalID`).
//!
//! Invariant: 1..=300 characters (Unicode scalar values), none of them a C0
//! control character (U+0000..=U+001F) or DEL (U+007F); case preserved.
//! Control characters are refused because the value is echoed into HTTP
//! headers and logs, where CR/LF would allow header or log injection.

use serde::{Deserialize, Serialize};

use super::error::{check_chars, IdKind};
use super::{string_id_common, IdError};

/// A validated sender-local message reference.
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
pub struct LocalId(String);

impl LocalId {
    /// Shortest accepted length, in characters.
    pub const MIN_LEN: usize = 1;
    /// Longest local id, in characters.
    pub const MAX_LEN: usize = 300;

    /// Parses a local id (case and Unicode are kept as given).
    pub fn parse(input: &str) -> Result<LocalId, IdError> {
        check_chars(
            IdKind::Local,
            input,
            Self::MIN_LEN,
            Self::MAX_LEN,
            |c| c > '\u{1F}' && c != '\u{7F}',
            "characters other than control characters (U+0000-U+001F, U+007F)",
        )?;
        Ok(LocalId(input.to_owned()))
    }
}

string_id_common!(LocalId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::strategies;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_unicode_and_spaces() {
        for ok in ["ref 123", "Überweisung-7", "患者", " ", &"é".repeat(300)] {
            assert_eq!(LocalId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_controls_and_bad_lengths() {
        let e = LocalId::parse("a\r\nX-Evil: 1").unwrap_err();
        assert_eq!(e.code(), "ID_LOCAL_INVALID");
        assert!(e.to_string().contains("'\\r' at position 1"), "{e}");
        assert!(LocalId::parse("\u{7F}").is_err());
        assert!(LocalId::parse("").is_err());
        assert!(LocalId::parse(&"é".repeat(301)).is_err());
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(s in strategies::local()) {
            let id = LocalId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<LocalId>(&json).unwrap(), id.clone());
            prop_assert_eq!(id.to_string().parse::<LocalId>(), Ok(id));
        }

        #[test]
        fn any_control_char_is_refused(prefix in "[a-z]{0,5}", c in 0u32..0x20, suffix in "[a-z]{0,5}") {
            let c = char::from_u32(c).unwrap();
            let input = format!("{prefix}{c}{suffix}");
            let is_char_error = matches!(LocalId::parse(&input), Err(IdError::Char { .. }));
            prop_assert!(is_char_error);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}|.{0,40}") {
            let _ = LocalId::parse(&s);
        }
    }
}
