//! [`ScenarioError`]: why a scenario file cannot be used.
//!
//! Every variant names the file (or `<scenario>` for text parsed from
//! memory) and, except a read failure, the key to fix: TOML syntax and type
//! errors carry the parser's line, column and a snippet of the offending
//! line; validation errors carry a path such as `flow[1].size.lognormal.sigma`
//! (0-based indices into the `[[flow]]`, `[[class]]`, `[[peak]]` and
//! `[[fault]]` arrays). Codes are stable (`SIM_SCENARIO_*`).

use spine_core::ErrorCode;

/// The origin shown for scenarios parsed from a string.
pub const INLINE_ORIGIN: &str = "<scenario>";

/// A scenario that cannot be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error(
        "{file}: cannot read the scenario file ({source}); check the path and its permissions"
    )]
    Read {
        /// The path as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, a value of the wrong type, or a value
    /// its type refuses (a malformed workflow id or start time).
    #[error("{file}: {detail}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's description, with line, column and the key.
        detail: String,
    },
    /// A value is outside its allowed range.
    #[error("{file}: `{key}` {problem}")]
    OutOfRange {
        /// The file.
        file: String,
        /// Path of the offending key.
        key: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// A name refers to something the scenario does not define.
    #[error("{file}: `{key}` names {kind} `{name}`, which is not defined; defined: {known}")]
    UnknownName {
        /// The file.
        file: String,
        /// Path of the offending key.
        key: String,
        /// What kind of thing was named (e.g. "class").
        kind: &'static str,
        /// The unknown name.
        name: String,
        /// The names that are defined.
        known: String,
    },
    /// Two entries share a name that must be unique.
    #[error("{file}: `{key}` repeats the {kind} `{name}`; give each {kind} a different one")]
    Duplicate {
        /// The file.
        file: String,
        /// Path of the second occurrence.
        key: String,
        /// What kind of name (e.g. "class name").
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A value or combination of values that is not usable.
    #[error("{file}: `{key}` {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// Path of the offending key.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The scenario would generate more events than its sanity cap.
    #[error(
        "{file}: the scenario would generate about {estimated} events, more than \
         `max_events` = {cap}; lower `scale` or `duration`, poll less often (or set \
         `idle_polls = false`), or raise `max_events` if you mean it"
    )]
    TooManyEvents {
        /// The file.
        file: String,
        /// Estimated number of events.
        estimated: u64,
        /// The cap.
        cap: u64,
    },
}

impl ScenarioError {
    /// The key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::OutOfRange { key, .. }
            | ScenarioError::UnknownName { key, .. }
            | ScenarioError::Duplicate { key, .. }
            | ScenarioError::Invalid { key, .. } => Some(key),
            ScenarioError::TooManyEvents { .. } => Some("max_events"),
            ScenarioError::Read { .. } | ScenarioError::Syntax { .. } => None,
        }
    }

    /// The file (or [`INLINE_ORIGIN`]) the error is about.
    pub fn file(&self) -> &str {
        match self {
            ScenarioError::Read { file, .. }
            | ScenarioError::Syntax { file, .. }
            | ScenarioError::OutOfRange { file, .. }
            | ScenarioError::UnknownName { file, .. }
            | ScenarioError::Duplicate { file, .. }
            | ScenarioError::Invalid { file, .. }
            | ScenarioError::TooManyEvents { file, .. } => file,
        }
    }
}

impl ErrorCode for ScenarioError {
    fn code(&self) -> &'static str {
        match self {
            ScenarioError::Read { .. } => "SIM_SCENARIO_READ",
            ScenarioError::Syntax { .. } => "SIM_SCENARIO_SYNTAX",
            ScenarioError::OutOfRange { .. } => "SIM_SCENARIO_OUT_OF_RANGE",
            ScenarioError::UnknownName { .. } => "SIM_SCENARIO_UNKNOWN_NAME",
            ScenarioError::Duplicate { .. } => "SIM_SCENARIO_DUPLICATE",
            ScenarioError::Invalid { .. } => "SIM_SCENARIO_INVALID",
            ScenarioError::TooManyEvents { .. } => "SIM_SCENARIO_TOO_MANY_EVENTS",
        }
    }
}

impl ScenarioError {
    /// The stable code (same as [`ErrorCode::code`], without the import).
    pub fn code(&self) -> &'static str {
        ErrorCode::code(self)
    }
}
