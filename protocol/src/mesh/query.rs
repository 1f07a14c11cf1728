//! The query string of a MESH request: `max_results`, `continue_from`,
//! `workflow_filter` (inbox) and `messageID` (tracking).
//!
//! Invariant: unknown parameters are ignored (clients add their own), known
//! ones are bounded and validated here, with messages that say what to
//! change; a repeated parameter keeps its last value.

use thiserror::Error;

use super::route::decode_bytes;

/// Default inbox page size (MESH spec).
pub const DEFAULT_MAX_RESULTS: usize = 500;
/// Smallest `max_results` the spec allows.
pub const MIN_MAX_RESULTS: usize = 10;
/// Largest `max_results` the spec allows.
pub const MAX_MAX_RESULTS: usize = 5000;
/// Longest query string accepted, bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The parameters Spine reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `max_results` (validated range).
    pub max_results: Option<usize>,
    /// `continue_from`: an opaque paging token (v2) or the last message id (v1).
    pub continue_from: Option<String>,
    /// `workflow_filter`.
    pub workflow_filter: Option<String>,
    /// `messageID` (tracking).
    pub message_id: Option<String>,
}

/// A query parameter is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// Longer than [`MAX_QUERY_BYTES`].
    #[error("the query string is longer than 4096 bytes")]
    TooLong,
    /// Bad percent-encoding or not UTF-8.
    #[error("parameter {0} is badly percent-encoded or not UTF-8")]
    Encoding(&'static str),
    /// `max_results` outside the range.
    #[error("max_results must be a whole number from 10 to 5000")]
    MaxResults,
}

impl spine_core::ErrorCode for QueryError {
    fn code(&self) -> &'static str {
        match self {
            QueryError::TooLong => "MESH_QUERY_TOO_LONG",
            QueryError::Encoding(_) => "MESH_QUERY_ENCODING",
            QueryError::MaxResults => "MESH_MAX_RESULTS",
        }
    }
}

impl Query {
    /// Parses a raw query string (without `?`).
    pub fn parse(raw: Option<&str>) -> Result<Query, QueryError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        if raw.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong);
        }
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name: &'static str = match k {
                "max_results" => "max_results",
                "continue_from" => "continue_from",
                "workflow_filter" => "workflow_filter",
                "messageID" | "messageId" | "message_id" => "messageID",
                _ => continue,
            };
            let value = decode_bytes(v.as_bytes(), true, MAX_QUERY_BYTES)
                .map_err(|_| QueryError::Encoding(name))?;
            match name {
                "max_results" => {
                    let n: usize = value.parse().map_err(|_| QueryError::MaxResults)?;
                    if !(MIN_MAX_RESULTS..=MAX_MAX_RESULTS).contains(&n) {
                        return Err(QueryError::MaxResults);
                    }
                    q.max_results = Some(n);
                }
                "continue_from" => q.continue_from = Some(value).filter(|v| !v.is_empty()),
                "workflow_filter" => q.workflow_filter = Some(value).filter(|v| !v.is_empty()),
                _ => q.message_id = Some(value).filter(|v| !v.is_empty()),
            }
        }
        Ok(q)
    }
}

/// Percent-encodes a query value (unreserved characters kept).
pub fn encode_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parameters_parse_and_unknown_ones_are_ignored() {
        let q = Query::parse(Some(
            "max_results=10&continue_from=abc&workflow_filter=%21TEST%2A&x=1&messageID=M",
        ))
        .unwrap();
        assert_eq!(q.max_results, Some(10));
        assert_eq!(q.continue_from.as_deref(), Some("abc"));
        assert_eq!(q.workflow_filter.as_deref(), Some("!TEST*"));
        assert_eq!(q.message_id.as_deref(), Some("M"));
        assert_eq!(Query::parse(None).unwrap(), Query::default());
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            Query::parse(Some("max_results=9")),
            Err(QueryError::MaxResults)
        );
        assert_eq!(
            Query::parse(Some("max_results=5001")),
            Err(QueryError::MaxResults)
        );
        assert_eq!(
            Query::parse(Some("max_results=x")),
            Err(QueryError::MaxResults)
        );
        assert!(matches!(
            Query::parse(Some("continue_from=%G0")),
            Err(QueryError::Encoding(_))
        ));
    }

    proptest! {
        #[test]
        fn encoded_values_decode_to_themselves(v in "[ -~]{1,60}") {
            let q = Query::parse(Some(&format!("workflow_filter={}", encode_value(&v)))).unwrap();
            prop_assert_eq!(q.workflow_filter.as_deref(), Some(v.as_str()));
        }

        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = Query::parse(Some(&s));
        }
    }
}
