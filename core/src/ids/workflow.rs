//! [`WorkflowId`]: the MESH workflow id naming the business process a
//! message belongs to (e.g. `PATH_TEST`, `TOC_FHIR_EC_DISCH`).
//!
//! Invariant: 1..=300 visible ASCII characters (0x21..=0x7E), case
//! preserved, and not starting with `http://` or `https://` in any case:
//! MESH rejects URL workflow ids, so refusing them here fails fast instead of
//! after a network round trip.

use serde::{Deserialize, Serialize};

use super::error::{bounded_input, check_chars, IdKind};
use super::{string_id_common, IdError};

/// A validated MESH workflow id.
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
pub struct WorkflowId(String);

impl WorkflowId {
    /// Shortest accepted length, in characters.
    pub const MIN_LEN: usize = 1;
    /// Longest workflow id.
    pub const MAX_LEN: usize = 300;

    /// Parses a workflow id (case is kept).
    pub fn parse(input: &str) -> Result<WorkflowId, IdError> {
        check_chars(
            IdKind::Workflow,
            input,
            Self::MIN_LEN,
            Self::MAX_LEN,
            |c| ('!'..='~').contains(&c),
            "visible ASCII characters (no spaces or control characters)",
        )?;
        if starts_with_ignore_case(input, "http://") || starts_with_ignore_case(input, "https://") {
            return Err(IdError::WorkflowUrl {
                input: bounded_input(input),
            });
        }
        Ok(WorkflowId(input.to_owned()))
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

string_id_common!(WorkflowId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::strategies;
    use crate::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_keeps_case() {
        for ok in [
            "PATH_TEST",
            "toc_fhir_EC_disch",
            "a",
            "x:y/z",
            "http:/x",
            "HTTPX://a",
        ] {
            assert_eq!(WorkflowId::parse(ok).unwrap().as_str(), ok);
        }
        assert!(WorkflowId::parse(&"W".repeat(300)).is_ok());
    }

    #[test]
    fn rejects_urls_in_any_case() {
        for bad in ["http://x", "HTTPS://nhs.uk/wf", "hTtP://", "https://"] {
            let e = WorkflowId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "ID_WORKFLOW_INVALID");
            assert!(e.to_string().contains("URL scheme"), "{e}");
        }
    }

    #[test]
    fn rejects_bad_chars_and_lengths() {
        assert!(WorkflowId::parse("").is_err());
        assert!(WorkflowId::parse(&"W".repeat(301)).is_err());
        let e = WorkflowId::parse("PATH TEST").unwrap_err();
        assert!(e.to_string().contains("' ' at position 4"), "{e}");
        assert!(WorkflowId::parse("PATH\tTEST").is_err());
        assert!(WorkflowId::parse("PATH\u{7F}").is_err());
        assert!(WorkflowId::parse("PATHé").is_err());
    }

    proptest! {
        #[test]
        fn valid_ids_round_trip(s in strategies::workflow()) {
            let id = WorkflowId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<WorkflowId>(&json).unwrap(), id.clone());
            prop_assert_eq!(id.to_string().parse::<WorkflowId>(), Ok(id));
        }

        #[test]
        fn url_prefixed_ids_are_refused(scheme in "[hH][tT][tT][pP][sS]?://", rest in "[!-~]{0,20}") {
            let input = format!("{scheme}{rest}");
            let is_url_error = matches!(WorkflowId::parse(&input), Err(IdError::WorkflowUrl { .. }));
            prop_assert!(is_url_error);
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,40}") {
            let _ = WorkflowId::parse(&s);
        }
    }
}
