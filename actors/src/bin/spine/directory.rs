//! Loading the mailbox directory named by the configuration.
//!
//! Exactly one source is used: the mesh-sandbox JSONL pair, the native TOML
//! file, or (when neither is configured) the embedded demo directory.
//! Validation has already ensured the JSONL paths come as a pair and that
//! the two forms are not both given. Every error names the file path as
//! well as the line and field the core loader reports.

use std::path::{Path, PathBuf};

use spine_core::directory::{self, Directory, DirectoryError, FileKind};
use spine_core::random::RandomSource;
use spine_core::ErrorCode;

use crate::config::DirectoryConfig;

/// Where the loaded directory came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The embedded demo data (development only).
    Demo,
    /// mesh-sandbox `mailboxes.jsonl` and `workflows.jsonl`.
    Jsonl {
        /// The mailboxes file.
        mailboxes: PathBuf,
        /// The workflows file.
        workflows: PathBuf,
    },
    /// A native TOML directory file.
    Toml(PathBuf),
}

/// Why the directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// A directory file could not be read.
    #[error("cannot read the {what} file {}: {source}; check the path", path.display())]
    Unreadable {
        /// Which file, e.g. "mailboxes.jsonl".
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The contents are invalid; `path` is the file the error is in.
    #[error("directory {}: {source}", path.display())]
    Invalid {
        /// The file at fault (or the pair, for cross-file errors).
        path: PathBuf,
        /// The loader's error, with line and field.
        #[source]
        source: DirectoryError,
    },
}

impl ErrorCode for LoadFailure {
    fn code(&self) -> &'static str {
        match self {
            LoadFailure::Unreadable { .. } => "DIR_FILE_UNREADABLE",
            LoadFailure::Invalid { source, .. } => source.code(),
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, LoadFailure> {
    std::fs::read_to_string(path).map_err(|source| LoadFailure::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the configured directory, drawing password salts from `rng`.
pub fn load(
    config: &DirectoryConfig,
    rng: &mut dyn RandomSource,
) -> Result<(Directory, Source), LoadFailure> {
    let iterations = config.hash_iterations;
    match (&config.mailboxes, &config.workflows, &config.toml) {
        (Some(mailboxes), Some(workflows), _) => {
            let m = read("mailboxes.jsonl", mailboxes)?;
            let w = read("workflows.jsonl", workflows)?;
            let dir = directory::load_jsonl(&m, &w, rng, iterations).map_err(|source| {
                let path = match &source {
                    DirectoryError::Load(e) if e.file == FileKind::WorkflowsJsonl => {
                        workflows.clone()
                    }
                    _ => mailboxes.clone(),
                };
                LoadFailure::Invalid { path, source }
            })?;
            Ok((
                dir,
                Source::Jsonl {
                    mailboxes: mailboxes.clone(),
                    workflows: workflows.clone(),
                },
            ))
        }
        (_, _, Some(toml)) => {
            let text = read("directory TOML", toml)?;
            let dir = directory::load_toml(&text, rng, iterations).map_err(|source| {
                LoadFailure::Invalid {
                    path: toml.clone(),
                    source,
                }
            })?;
            Ok((dir, Source::Toml(toml.clone())))
        }
        _ => {
            let dir = Directory::demo(rng).map_err(|source| LoadFailure::Invalid {
                path: PathBuf::from("<embedded demo>"),
                source,
            })?;
            Ok((dir, Source::Demo))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::directory::{DEMO_MAILBOXES_JSONL, DEMO_WORKFLOWS_JSONL};
    use spine_core::random::SeededRandom;

    fn config() -> DirectoryConfig {
        DirectoryConfig {
            hash_iterations: 1,
            ..DirectoryConfig::default()
        }
    }

    #[test]
    fn demo_when_nothing_is_configured() {
        let (dir, source) = load(&config(), &mut SeededRandom::new(1)).unwrap();
        assert_eq!(source, Source::Demo);
        assert_eq!(dir.len(), 3);
    }

    #[test]
    fn jsonl_pair_loads_and_errors_name_the_right_file() {
        let tmp = tempfile::tempdir().unwrap();
        let m = tmp.path().join("mailboxes.jsonl");
        let w = tmp.path().join("workflows.jsonl");
        std::fs::write(&m, DEMO_MAILBOXES_JSONL).unwrap();
        std::fs::write(&w, DEMO_WORKFLOWS_JSONL).unwrap();
        let mut c = config();
        c.mailboxes = Some(m.clone());
        c.workflows = Some(w.clone());
        let (dir, source) = load(&c, &mut SeededRandom::new(1)).unwrap();
        assert_eq!(dir.len(), 3);
        assert!(matches!(source, Source::Jsonl { .. }));

        std::fs::write(
            &w,
            "{\"workflow_id\": \"X\", \"senders\": [\"NOPE1\"], \"receivers\": []}\n",
        )
        .unwrap();
        let e = load(&c, &mut SeededRandom::new(1)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&w.display().to_string()), "{text}");
        assert!(text.contains("line 1"), "{text}");
        assert!(e.code().starts_with("DIR_"), "{}", e.code());
    }

    #[test]
    fn missing_file_is_unreadable_with_path() {
        let mut c = config();
        c.toml = Some(PathBuf::from("/nonexistent/dir.toml"));
        let e = load(&c, &mut SeededRandom::new(1)).unwrap_err();
        assert_eq!(e.code(), "DIR_FILE_UNREADABLE");
        assert!(e.to_string().contains("/nonexistent/dir.toml"));
    }

    #[test]
    fn toml_directory_loads_and_errors_have_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("directory.toml");
        std::fs::write(
            &t,
            "[[mailbox]]\nid = \"X26ABC1\"\nname = \"A\"\nods_code = \"X26\"\npassword = \"pw\"\n",
        )
        .unwrap();
        let mut c = config();
        c.toml = Some(t.clone());
        let (dir, source) = load(&c, &mut SeededRandom::new(1)).unwrap();
        assert_eq!(dir.len(), 1);
        assert_eq!(source, Source::Toml(t.clone()));
        std::fs::write(&t, "[[mailbox]]\nid = \"X26ABC1\"\npasword = \"x\"\n").unwrap();
        let e = load(&c, &mut SeededRandom::new(1)).unwrap_err();
        assert!(e.to_string().contains(&t.display().to_string()), "{e}");
    }
}
