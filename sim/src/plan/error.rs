//! Why a plan cannot be made: refused inputs and results that cannot be
//! sized.
//!
//! Invariants and why:
//! - Every message names the option (as typed on the command line), the
//!   value given and what would be accepted, so an operator can fix the
//!   command without reading code.
//! - Each variant has a stable `code()` (`PLAN_*`), as the rest of Spine's
//!   errors do, so scripts need not match on text.

use spine_core::ErrorCode;

/// Why a plan's inputs or results were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// An option is out of range (zero, negative, not a number, too large).
    #[error("--{name} must be {expected} (got {value})")]
    Invalid {
        /// The option, without the leading dashes.
        name: &'static str,
        /// What was given, as text.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// No step met the bound, so there is no per-node capacity to divide by.
    #[error("no step sustained the load within the bound (p99 <= {p99_ms} ms at >= 95% of the offered rate){lowest}; this machine cannot be sized from this run: loosen --p99-ms, lower --start-rate, or look at the step table for why each step failed")]
    NoCapacity {
        /// The latency bound, in milliseconds.
        p99_ms: f64,
        /// ", even at N msgs/s" when a step ran, else "".
        lowest: String,
    },
    /// The target needs more nodes than the arithmetic is meant for.
    #[error("{target_rate} msgs/s at {usable_per_node:.1} usable msgs/s per node needs {nodes} nodes, more than the {max} this planner sizes; the per-node figure is too small to extrapolate from")]
    TooManyNodes {
        /// The target rate.
        target_rate: f64,
        /// Per-node capacity after headroom.
        usable_per_node: f64,
        /// The count the arithmetic gave (saturated).
        nodes: f64,
        /// The largest count accepted.
        max: u64,
    },
}

impl ErrorCode for PlanError {
    fn code(&self) -> &'static str {
        match self {
            PlanError::Invalid { .. } => "PLAN_INVALID_ARGUMENT",
            PlanError::NoCapacity { .. } => "PLAN_NO_CAPACITY",
            PlanError::TooManyNodes { .. } => "PLAN_TOO_MANY_NODES",
        }
    }
}

/// Refuses `value` for option `name` unless `ok`.
pub(crate) fn check(
    ok: bool,
    name: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> Result<(), PlanError> {
    if ok {
        Ok(())
    } else {
        Err(PlanError::Invalid {
            name,
            value: value.to_string(),
            expected,
        })
    }
}
