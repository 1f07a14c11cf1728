//! Validated names used by service routing: [`ServiceName`],
//! [`InteractionId`] and [`Asid`].
//!
//! Invariants and why: each is checked on construction (length, character
//! set), so a value of the type is always safe to log, to use as a map key
//! and to put on the wire; lengths are bounded so a hostile request cannot
//! make the directory or the router hold large keys.

use std::fmt;

/// Longest service name.
pub const MAX_SERVICE_NAME: usize = 32;
/// Longest interaction id.
pub const MAX_INTERACTION_ID: usize = 128;
/// Longest ASID.
pub const MAX_ASID: usize = 20;

/// A service's short name, such as `pds`: `[a-z][a-z0-9-]*`, at most 32.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// Parses a service name.
    pub fn parse(input: &str) -> Result<ServiceName, String> {
        let ok = !input.is_empty()
            && input.len() <= MAX_SERVICE_NAME
            && input.starts_with(|c: char| c.is_ascii_lowercase())
            && input
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ServiceName(input.to_owned()))
        } else {
            Err(format!(
                "service name {:?} is invalid: use 1 to {MAX_SERVICE_NAME} lower-case letters, digits or '-', starting with a letter (for example pds)",
                cut(input)
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An interaction id such as
/// `urn:nhs:names:services:pdsquery/QUPA_IN040000UK32`: printable ASCII
/// without spaces, at most 128 characters, with a `/` before a non-empty
/// short id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InteractionId(String);

impl InteractionId {
    /// Parses an interaction id.
    pub fn parse(input: &str) -> Result<InteractionId, String> {
        let printable = input.chars().all(|c| c.is_ascii_graphic());
        let short_ok = input
            .rsplit_once('/')
            .is_some_and(|(head, short)| !head.is_empty() && !short.is_empty());
        if printable && short_ok && input.len() <= MAX_INTERACTION_ID {
            Ok(InteractionId(input.to_owned()))
        } else {
            Err(format!(
                "interaction id {:?} is invalid: use at most {MAX_INTERACTION_ID} printable characters without spaces, as SERVICE-URN/INTERACTION (for example urn:nhs:names:services:pdsquery/QUPA_IN040000UK32)",
                cut(input)
            ))
        }
    }

    /// The full id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `/` (`QUPA_IN040000UK32`).
    pub fn short(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, s)| s)
    }
}

impl fmt::Display for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Accredited System ID: 1 to 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asid(String);

impl Asid {
    /// Parses an ASID.
    pub fn parse(input: &str) -> Result<Asid, String> {
        if !input.is_empty() && input.len() <= MAX_ASID && input.chars().all(|c| c.is_ascii_digit())
        {
            Ok(Asid(input.to_owned()))
        } else {
            Err(format!(
                "ASID {:?} is invalid: use 1 to {MAX_ASID} digits (for example 200000000101)",
                cut(input)
            ))
        }
    }

    /// The ASID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Asid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn cut(input: &str) -> String {
    input.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_validate() {
        assert!(ServiceName::parse("pds").is_ok());
        assert!(ServiceName::parse("e-rs2").is_ok());
        for bad in ["", "PDS", "1pds", "p ds", &"a".repeat(33)] {
            assert!(ServiceName::parse(bad).is_err(), "{bad}");
        }
        let id = InteractionId::parse("urn:nhs:names:services:pdsquery/QUPA_IN040000UK32").unwrap();
        assert_eq!(id.short(), "QUPA_IN040000UK32");
        for bad in ["", "QUPA", "/x", "x/", "a b/c"] {
            assert!(InteractionId::parse(bad).is_err(), "{bad}");
        }
        assert!(Asid::parse("200000000101").is_ok());
        for bad in ["", "12a", &"1".repeat(21)] {
            assert!(Asid::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(input in ".{0,140}") {
            if let Ok(n) = ServiceName::parse(&input) { prop_assert_eq!(n.as_str(), input.as_str()); }
            if let Ok(n) = InteractionId::parse(&input) { prop_assert_eq!(n.as_str(), input.as_str()); }
            if let Ok(n) = Asid::parse(&input) { prop_assert_eq!(n.as_str(), input.as_str()); }
        }
    }
}
