//! Exit statuses and the one way a fatal error is reported.
//!
//! Invariant: every fatal error leaves the process through [`Failure`], which
//! prints exactly one line `spine: error [CODE]: message` to stderr and maps
//! to one documented [`Exit`] status (see `spine --help`).

use std::fmt::Display;

use spine_core::ErrorCode;

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Usage or configuration error.
    Usage = 1,
    /// Storage refused: corruption or a locked data directory.
    StorageRefused = 2,
    /// Runtime failure.
    Runtime = 3,
    /// `wal inspect`: only a torn tail.
    TornTail = 4,
    /// A client command: the server refused the request (its code is
    /// printed).
    Refused = 5,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// A fatal error with its stable code and exit status.
#[derive(Debug)]
pub struct Failure {
    /// How the process exits.
    pub exit: Exit,
    /// The stable code.
    pub code: &'static str,
    /// The full message.
    pub message: String,
}

impl Failure {
    /// Wraps a coded error.
    pub fn new(exit: Exit, error: &(impl ErrorCode + Display + ?Sized)) -> Failure {
        Failure {
            exit,
            code: error.code(),
            message: error.to_string(),
        }
    }

    /// A failure from a code and a message.
    pub fn plain(exit: Exit, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            code,
            message: message.into(),
        }
    }

    /// The stderr line.
    pub fn line(&self) -> String {
        format!("spine: error [{}]: {}", self.code, self.message)
    }
}

/// Writes command output to stdout; a closed pipe or full disk is a
/// [`Failure`], never a panic (unlike `print!`).
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            Failure::plain(
                Exit::Runtime,
                "STDOUT_WRITE_FAILED",
                format!("cannot write the output to stdout: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_documented_numbers() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Usage as u8, 1);
        assert_eq!(Exit::StorageRefused as u8, 2);
        assert_eq!(Exit::Runtime as u8, 3);
        assert_eq!(Exit::TornTail as u8, 4);
        assert_eq!(Exit::Refused as u8, 5);
    }

    #[test]
    fn line_carries_the_code() {
        let f = Failure::plain(Exit::Usage, "X_Y", "bad");
        assert_eq!(f.line(), "spine: error [X_Y]: bad");
    }
}
