//! [`NhsNumber`]: a 10-digit NHS number with a valid modulus-11 check digit.
//!
//! Invariants and why:
//! - Stored as exactly 10 ASCII digits, so equal patients compare equal no
//!   matter how the number was typed. Input may be bare (`9434765919`) or
//!   grouped 3-3-4 with spaces or hyphens (`943 476 5919`, `943-476-5919`),
//!   the forms in which NHS numbers are printed.
//! - The tenth digit is the modulus-11 check digit of the first nine
//!   (weights 10 down to 2; check = 11 - sum mod 11, 11 means 0, 10 means
//!   the number can never be issued). Modulus 11 catches every single-digit
//!   error and every adjacent transposition, so a typo is refused here rather
//!   than routing a message about the wrong patient.

use serde::{Deserialize, Serialize};

use super::error::bounded_input;
use super::{string_id_common, IdError};

/// Number of digits in an NHS number.
const DIGITS: usize = 10;

/// A validated NHS number (10 bare digits).
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
pub struct NhsNumber(String);

impl NhsNumber {
    /// Parses an NHS number, bare or grouped 3-3-4 with spaces or hyphens,
    /// and checks its check digit.
    pub fn parse(input: &str) -> Result<NhsNumber, IdError> {
        let mut digits = Vec::with_capacity(DIGITS);
        let mut separators = Vec::new();
        for (position, c) in input.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c as u8 - b'0'),
                ' ' | '-' => separators.push((position, c)),
                found => return Err(digits_error(input, found, position)),
            }
        }
        if digits.len() != DIGITS {
            return Err(IdError::NhsNumberLength {
                input: bounded_input(input),
                digits: digits.len(),
            });
        }
        // Separators are allowed only as the 3-3-4 grouping, both the same.
        let grouping_ok = match separators.as_slice() {
            [] => true,
            [(3, a), (7, b)] => a == b,
            _ => false,
        };
        if !grouping_ok {
            // Blame the first separator out of place, else the second
            // (mismatched) one, else the lone one.
            let (position, found) = separators
                .iter()
                .copied()
                .find(|&(p, _)| p != 3 && p != 7)
                .or_else(|| separators.get(1).copied())
                .or_else(|| separators.first().copied())
                .unwrap_or((0, ' '));
            return Err(digits_error(input, found, position));
        }
        let expected = check_digit(&digits).ok_or_else(|| IdError::NhsNumberNoCheckDigit {
            input: bounded_input(input),
        })?;
        let found = digits.get(DIGITS - 1).copied().unwrap_or(u8::MAX);
        if found != expected {
            return Err(IdError::NhsNumberCheckDigit {
                input: bounded_input(input),
                found,
                expected,
            });
        }
        Ok(NhsNumber(
            digits.iter().map(|d| char::from(b'0' + d)).collect(),
        ))
    }

    /// The number grouped 3-3-4 with spaces, as printed on NHS documents.
    pub fn to_spaced(&self) -> String {
        let s = self.as_str();
        match (s.get(..3), s.get(3..6), s.get(6..)) {
            (Some(a), Some(b), Some(c)) => format!("{a} {b} {c}"),
            _ => s.to_owned(),
        }
    }
}

fn digits_error(input: &str, found: char, position: usize) -> IdError {
    IdError::NhsNumberDigits {
        input: bounded_input(input),
        found,
        position,
    }
}

/// The modulus-11 check digit for the first nine of `digits`, or `None` when
/// the check value is 10 (no valid NHS number starts with those nine digits).
fn check_digit(digits: &[u8]) -> Option<u8> {
    let sum: u32 = digits
        .iter()
        .take(DIGITS - 1)
        .zip((2..=10u32).rev())
        .map(|(&d, weight)| u32::from(d) * weight)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        // 11 - (sum % 11) lies in 1..=11, so this arm is 1..=9.
        check => u8::try_from(check).ok(),
    }
}

string_id_common!(NhsNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_numbers_in_all_forms() {
        for ok in ["9434765919", "943 476 5919", "943-476-5919"] {
            assert_eq!(NhsNumber::parse(ok).unwrap().as_str(), "9434765919");
        }
        assert_eq!(
            NhsNumber::parse("9000000009").unwrap().as_str(),
            "9000000009"
        );
        // Check value 11 means check digit 0.
        // 1*10 + 6*2 = 22 = 0 mod 11.
        assert_eq!(check_digit(&[1, 0, 0, 0, 0, 0, 0, 0, 6]), Some(0));
        assert!(NhsNumber::parse("1000000060").is_ok());
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().to_spaced(),
            "943 476 5919"
        );
    }

    #[test]
    fn refuses_wrong_check_digit_with_expected_value() {
        let e = NhsNumber::parse("9000000001").unwrap_err();
        assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
        assert_eq!(
            e,
            IdError::NhsNumberCheckDigit {
                input: "9000000001".into(),
                found: 1,
                expected: 9
            }
        );
        assert!(e
            .to_string()
            .contains("check digit 1 but its first nine digits require 9"));
    }

    #[test]
    fn refuses_check_value_ten() {
        // 1*10 + 0*9 ... + 1*2 = 12; 12 % 11 = 1; 11 - 1 = 10.
        let e = NhsNumber::parse("1000000010").unwrap_err();
        assert!(matches!(e, IdError::NhsNumberNoCheckDigit { .. }), "{e}");
        assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
    }

    #[test]
    fn distinct_errors_for_length_and_characters() {
        let e = NhsNumber::parse("943476591").unwrap_err();
        assert_eq!(e.code(), "ID_NHS_NUMBER_LENGTH");
        assert!(e.to_string().contains("has 9 digits"), "{e}");
        assert_eq!(
            NhsNumber::parse("").unwrap_err().code(),
            "ID_NHS_NUMBER_LENGTH"
        );
        assert_eq!(
            NhsNumber::parse("94347659190").unwrap_err().code(),
            "ID_NHS_NUMBER_LENGTH"
        );

        let e = NhsNumber::parse("943476591X").unwrap_err();
        assert_eq!(e.code(), "ID_NHS_NUMBER_DIGITS");
        assert!(e.to_string().contains("'X' at position 9"), "{e}");

        for bad_grouping in [
            "94 3476 5919",
            "943 4765919",
            "943-476 5919",
            "9434 76 5919",
            " 9434765919",
            "943 476 5919 ",
        ] {
            let e = NhsNumber::parse(bad_grouping).unwrap_err();
            assert_eq!(e.code(), "ID_NHS_NUMBER_DIGITS", "{bad_grouping:?}: {e}");
        }
        let e = NhsNumber::parse("943-476 5919").unwrap_err();
        assert!(e.to_string().contains("' ' at position 7"), "{e}");
        let e = NhsNumber::parse("943 4765919").unwrap_err();
        assert!(e.to_string().contains("' ' at position 3"), "{e}");
    }

    #[test]
    fn serde_validates() {
        let n: NhsNumber = serde_json::from_str("\"943 476 5919\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9000000001\"").is_err());
    }

    fn with_check_digit(first_nine: &[u8]) -> Option<String> {
        let check = check_digit(first_nine)?;
        Some(
            first_nine
                .iter()
                .chain([check].iter())
                .map(|d| char::from(b'0' + d))
                .collect(),
        )
    }

    proptest! {
        #[test]
        fn correct_check_digit_validates(nine in proptest::collection::vec(0u8..10, 9)) {
            if let Some(number) = with_check_digit(&nine) {
                let n = NhsNumber::parse(&number).unwrap();
                prop_assert_eq!(n.as_str(), number.as_str());
                prop_assert_eq!(NhsNumber::parse(&n.to_spaced()), Ok(n.clone()));
                prop_assert_eq!(NhsNumber::parse(&n.to_spaced().replace(' ', "-")), Ok(n.clone()));
                let json = serde_json::to_string(&n).unwrap();
                prop_assert_eq!(serde_json::from_str::<NhsNumber>(&json).unwrap(), n.clone());
                prop_assert_eq!(n.to_string().parse::<NhsNumber>(), Ok(n));
            } else {
                for check in 0..10u8 {
                    let s: String = nine.iter().chain([check].iter()).map(|d| char::from(b'0' + d)).collect();
                    prop_assert!(NhsNumber::parse(&s).is_err());
                }
            }
        }

        #[test]
        fn any_single_digit_change_is_caught(nine in proptest::collection::vec(0u8..10, 9), pos in 0usize..10, delta in 1u8..10) {
            if let Some(number) = with_check_digit(&nine) {
                let mut bytes = number.into_bytes();
                bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
                let changed = String::from_utf8(bytes).unwrap();
                let e = NhsNumber::parse(&changed).unwrap_err();
                prop_assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,20}|[0-9 -]{0,14}") {
            if let Ok(n) = NhsNumber::parse(&s) {
                prop_assert_eq!(n.as_str().len(), 10);
            }
        }
    }
}
