//! [`OdsCode`]: an Organisation Data Service code such as `X26`, `RA9` or
//! `Y12345`.
//!
//! Invariant: 2..=10 ASCII letters and digits, stored upper case (ODS codes
//! are case-insensitive and published in upper case).

use serde::{Deserialize, Serialize};

use super::error::{check_chars, IdKind};
use super::{string_id_common, IdError};

/// A validated, upper-cased ODS organisation code.
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
pub struct OdsCode(String);

impl OdsCode {
    /// Shortest accepted length, in characters.
    pub const MIN_LEN: usize = 2;
    /// Longest ODS code.
    pub const MAX_LEN: usize = 10;

    /// Parses and upper-cases an ODS code.
    pub fn parse(input: &str) -> Result<OdsCode, IdError> {
        check_chars(
            IdKind::Ods,
            input,
            Self::MIN_LEN,
            Self::MAX_LEN,
            |c| c.is_ascii_alphanumeric(),
            "letters A-Z and digits",
        )?;
        Ok(OdsCode(input.to_ascii_uppercase()))
    }
}

string_id_common!(OdsCode);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::strategies;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_real_codes() {
        for ok in ["X26", "Y12345", "RA9", "ra9", "AB", "ABCDE12345"] {
            assert_eq!(
                OdsCode::parse(ok).unwrap().as_str(),
                ok.to_ascii_uppercase()
            );
        }
    }

    #[test]
    fn rejects() {
        let e = OdsCode::parse("X").unwrap_err();
        assert_eq!(e.code(), "ID_ODS_INVALID");
        assert_eq!(
            e.to_string(),
            "ODS code \"X\" is 1 characters long; use 2 to 10 characters"
        );
        assert!(OdsCode::parse("ABCDE123456").is_err());
        let e = OdsCode::parse("X-26").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ODS code \"X-26\" contains '-' at position 1; use only letters A-Z and digits"
        );
        assert!(serde_json::from_str::<OdsCode>("\"X 26\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_codes_round_trip(s in strategies::ods()) {
            let id = OdsCode::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.to_ascii_uppercase());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<OdsCode>(&json).unwrap(), id.clone());
            prop_assert_eq!(id.to_string().parse::<OdsCode>(), Ok(id));
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,20}") {
            let _ = OdsCode::parse(&s);
        }
    }
}
