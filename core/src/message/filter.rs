//! MESH inbox workflow filters.
//!
//! `WF` equals, `!WF` not equals, `WF*` begins with, `!WF*` does not begin
//! with, `*X*` contains, `!*X*` does not contain (MESH API v2, inbox
//! `workflow_filter`, 2..=255 characters).

use crate::ErrorCode;

/// Longest filter accepted.
pub const MAX_FILTER_LEN: usize = 255;

/// A parsed workflow filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowFilter {
    negate: bool,
    kind: FilterKind,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilterKind {
    Equals,
    BeginsWith,
    Contains,
}

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow filter {filter:?} is invalid: {why}; use WF, !WF, WF*, !WF*, *X* or !*X* (2 to 255 characters)")]
pub struct FilterError {
    /// The filter given.
    pub filter: String,
    /// What is wrong.
    pub why: &'static str,
}

impl ErrorCode for FilterError {
    fn code(&self) -> &'static str {
        "MSG_WORKFLOW_FILTER_INVALID"
    }
}

impl WorkflowFilter {
    /// Parses a MESH workflow filter.
    pub fn parse(input: &str) -> Result<WorkflowFilter, FilterError> {
        let err = |why| FilterError {
            filter: input.chars().take(64).collect(),
            why,
        };
        if input.len() < 2 || input.len() > MAX_FILTER_LEN {
            return Err(err("length must be 2 to 255 characters"));
        }
        if input.chars().any(|c| c.is_control()) {
            return Err(err("control characters are not allowed"));
        }
        let (negate, rest) = match input.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let (kind, text) =
            if let Some(inner) = rest.strip_prefix('*').and_then(|r| r.strip_suffix('*')) {
                (FilterKind::Contains, inner)
            } else if let Some(prefix) = rest.strip_suffix('*') {
                (FilterKind::BeginsWith, prefix)
            } else {
                (FilterKind::Equals, rest)
            };
        if text.is_empty() || text.contains('*') {
            return Err(err(
                "'*' may only open and close a contains filter or end a prefix filter",
            ));
        }
        Ok(WorkflowFilter {
            negate,
            kind,
            text: text.to_string(),
        })
    }

    /// Whether `workflow` passes the filter.
    pub fn matches(&self, workflow: &str) -> bool {
        let hit = match self.kind {
            FilterKind::Equals => workflow == self.text,
            FilterKind::BeginsWith => workflow.starts_with(&self.text),
            FilterKind::Contains => workflow.contains(&self.text),
        };
        hit != self.negate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_form_matches_as_mesh_documents() {
        let m = |f: &str, w: &str| WorkflowFilter::parse(f).unwrap().matches(w);
        assert!(m("TEST_WORKFLOW", "TEST_WORKFLOW") && !m("TEST_WORKFLOW", "TEST_WORKFLOW_ACK"));
        assert!(!m("!TEST_WORKFLOW", "TEST_WORKFLOW") && m("!TEST_WORKFLOW", "OTHER"));
        assert!(m("TEST*", "TEST_WORKFLOW_ACK") && !m("TEST*", "XTEST"));
        assert!(!m("!TEST*", "TEST_WORKFLOW") && m("!TEST*", "XTEST"));
        assert!(m("*ACK*", "TEST_WORKFLOW_ACK") && !m("*ACK*", "TEST_WORKFLOW"));
        assert!(!m("!*ACK*", "TEST_WORKFLOW_ACK") && m("!*ACK*", "TEST_WORKFLOW"));
    }

    #[test]
    fn bad_filters_are_refused_with_a_code() {
        for bad in [
            "",
            "A",
            "**",
            "!*",
            "A*B",
            "*A",
            &"W".repeat(256),
            "A\u{7}B",
        ] {
            let e = WorkflowFilter::parse(bad).unwrap_err();
            assert_eq!(e.code(), "MSG_WORKFLOW_FILTER_INVALID", "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn negation_inverts(f in "[A-Z_]{2,20}\\*?", w in "[A-Z_]{1,30}") {
            let pos = WorkflowFilter::parse(&f).unwrap();
            let neg = WorkflowFilter::parse(&format!("!{f}")).unwrap();
            prop_assert_ne!(pos.matches(&w), neg.matches(&w));
        }

        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = WorkflowFilter::parse(&s).map(|f| f.matches("X"));
        }
    }
}
