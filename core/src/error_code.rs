//! Stable error codes.
//!
//! Every library error enum implements [`ErrorCode`]. The code is part of the
//! public contract (operators grep logs for it, clients switch on it), so a
//! code is never reused for a different meaning and never renamed.

/// An error with a stable, machine-readable code such as `ID_MAILBOX_INVALID`.
pub trait ErrorCode {
    /// The stable code: upper snake case, prefixed by the area (`ID_`, `DIR_`, `WAL_`, ...).
    fn code(&self) -> &'static str;
}
