//! `spine certs dev DIR`: development certificates, so TLS and mutual TLS
//! are one command away.
//!
//! Invariants:
//! - All the work is `spine_actors::tls::generate_dev_certs`: nothing is
//!   written until every key and certificate has been generated, no
//!   existing file is overwritten without `--force`, and private keys are
//!   mode 0600.
//! - Exit 0 with the files listed on stdout; an existing file exits 1
//!   (`TLS_DEV_CERTS_EXIST`, naming it); failing to generate or write
//!   exits 3.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use spine_actors::tls::{self, DevCerts, TlsError};
use spine_core::directory::Directory;
use spine_core::ids::MailboxId;
use spine_core::random::SeededRandom;

use crate::exit::{write_stdout, Exit, Failure};

const DEV_ABOUT: &str = "\
Write development certificates into DIR (created if missing):
  ca.pem, ca-key.pem                   a local certificate authority
  server.pem, server-key.pem           a server certificate for localhost,
                                       127.0.0.1 and ::1, signed by the CA
  client-<MAILBOX>.pem, -key.pem       per mailbox: a client certificate
                                       whose subject CN is the mailbox id
                                       (how a client certificate names its
                                       mailbox), signed by the CA

Without --mailbox, the demo directory's mailboxes (X26ABC1, X26ABC2,
X26ABC3). Keys are ECDSA P-256, unencrypted, mode 0600; certificates are
valid for ten years from today. For development only.

Then: spine serve --tls-cert DIR/server.pem --tls-key DIR/server-key.pem
--client-ca DIR/ca.pem (add --require-client-cert to refuse clients
without a certificate); clients trust DIR/ca.pem.

Exit status: 0 written, 1 a file already exists (nothing written; use
--force to overwrite) or a bad flag, 3 generating or writing failed.";

/// `spine certs ...`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a development CA, a localhost server certificate and client
    /// certificates for mailboxes.
    #[command(long_about = DEV_ABOUT)]
    Dev(DevArgs),
}

/// `spine certs dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory to write the PEM files into; created if missing.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// A mailbox to write a client certificate for (repeatable) [default: the demo mailboxes X26ABC1, X26ABC2, X26ABC3]
    #[arg(long = "mailbox", value_name = "MAILBOX", value_parser = parse_mailbox)]
    pub mailboxes: Vec<MailboxId>,
    /// Overwrite existing files of the same names.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

fn parse_mailbox(raw: &str) -> Result<MailboxId, String> {
    MailboxId::parse(raw).map_err(|e| e.to_string())
}

/// Runs `spine certs ...`.
pub fn run(command: &CertsCommand) -> Result<Exit, Failure> {
    match command {
        CertsCommand::Dev(args) => {
            write_stdout(&dev(args)?)?;
            Ok(Exit::Ok)
        }
    }
}

/// `spine certs dev`: writes the files and returns the report for stdout.
fn dev(args: &DevArgs) -> Result<String, Failure> {
    let mailboxes = if args.mailboxes.is_empty() {
        demo_mailboxes()?
    } else {
        args.mailboxes.clone()
    };
    let certs = tls::generate_dev_certs(&args.dir, &mailboxes, args.force).map_err(|e| {
        let exit = match e {
            TlsError::DevCertsExist { .. } => Exit::Usage,
            _ => Exit::Runtime,
        };
        Failure::new(exit, &e)
    })?;
    Ok(if args.json {
        json_report(&certs)
    } else {
        text_report(&certs)
    })
}

/// The demo directory's mailbox ids (its passwords are irrelevant here, so
/// a fixed seed for their salts is fine).
fn demo_mailboxes() -> Result<Vec<MailboxId>, Failure> {
    let directory =
        Directory::demo(&mut SeededRandom::new(0)).map_err(|e| Failure::new(Exit::Runtime, &e))?;
    Ok(directory.mailboxes().map(|m| m.id.clone()).collect())
}

/// Each file with what it is.
fn described(certs: &DevCerts) -> Vec<(&Path, &'static str, String)> {
    let mut files = vec![
        (
            certs.ca_cert.as_path(),
            "ca_cert",
            "CA certificate: clients trust it; the server verifies client certificates with it"
                .to_owned(),
        ),
        (
            certs.ca_key.as_path(),
            "ca_key",
            "CA private key (mode 0600)".to_owned(),
        ),
        (
            certs.server_cert.as_path(),
            "server_cert",
            "server certificate for localhost, 127.0.0.1 and ::1".to_owned(),
        ),
        (
            certs.server_key.as_path(),
            "server_key",
            "server private key (mode 0600)".to_owned(),
        ),
    ];
    for client in &certs.clients {
        files.push((
            client.cert.as_path(),
            "client_cert",
            format!("client certificate for mailbox {}", client.mailbox),
        ));
        files.push((
            client.key.as_path(),
            "client_key",
            format!(
                "client private key for mailbox {} (mode 0600)",
                client.mailbox
            ),
        ));
    }
    files
}

/// How to use the files, as a `spine serve` command line.
fn serve_hint(certs: &DevCerts) -> String {
    format!(
        "spine serve --tls-cert {} --tls-key {} --client-ca {}",
        shell_word(&certs.server_cert),
        shell_word(&certs.server_key),
        shell_word(&certs.ca_cert),
    )
}

fn text_report(certs: &DevCerts) -> String {
    let files = described(certs);
    let width = files
        .iter()
        .map(|(p, _, _)| p.display().to_string().chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "wrote development certificates (not for production) to {}:\n",
        certs.dir.display()
    );
    for (path, _, what) in &files {
        let _ = writeln!(out, "  {:<width$}  {what}", path.display().to_string());
    }
    let _ = writeln!(
        out,
        "use: {} (add --require-client-cert to refuse clients without a certificate)",
        serve_hint(certs)
    );
    out
}

fn json_report(certs: &DevCerts) -> String {
    let files: Vec<serde_json::Value> = described(certs)
        .into_iter()
        .map(|(path, kind, what)| {
            serde_json::json!({
                "path": path.to_string_lossy(),
                "kind": kind,
                "description": what,
            })
        })
        .collect();
    let clients: Vec<serde_json::Value> = certs
        .clients
        .iter()
        .map(|c| {
            serde_json::json!({
                "mailbox": c.mailbox.as_str(),
                "cert": c.cert.to_string_lossy(),
                "key": c.key.to_string_lossy(),
            })
        })
        .collect();
    let report = serde_json::json!({
        "dir": certs.dir.to_string_lossy(),
        "files": files,
        "clients": clients,
        "serve": serve_hint(certs),
    });
    format!("{report}\n")
}

/// `path` as one POSIX shell word: as is when it has only safe characters,
/// else single-quoted.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if safe {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<DevArgs, clap::Error> {
        let mut all = vec!["spine", "certs", "dev"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Certs {
                command: CertsCommand::Dev(args),
            } => Ok(args),
            other => panic!("not certs dev: {other:?}"),
        }
    }

    #[test]
    fn flags_parse() {
        let args = parse(&["d", "--mailbox", "x26abc9", "--mailbox", "ALICE", "--force"]).unwrap();
        assert_eq!(args.dir, PathBuf::from("d"));
        assert_eq!(
            args.mailboxes,
            vec![
                MailboxId::parse("X26ABC9").unwrap(),
                MailboxId::parse("ALICE").unwrap()
            ]
        );
        assert!(args.force && !args.json);
        let args = parse(&["d", "--json"]).unwrap();
        assert!(args.mailboxes.is_empty() && !args.force && args.json);
        // Usage errors: exit 1 through main's handling of clap errors.
        let e = parse(&["d", "--mailbox", "not a mailbox"]).unwrap_err();
        assert!(e.to_string().contains("not a mailbox"), "{e}");
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn certs_dev_writes_the_demo_mailboxes_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("certs");
        let dir_arg = dir.to_str().unwrap();
        let out = dev(&parse(&[dir_arg]).unwrap()).unwrap();
        for name in [
            "ca.pem",
            "ca-key.pem",
            "server.pem",
            "server-key.pem",
            "client-X26ABC1.pem",
            "client-X26ABC1-key.pem",
            "client-X26ABC2.pem",
            "client-X26ABC2-key.pem",
            "client-X26ABC3.pem",
            "client-X26ABC3-key.pem",
        ] {
            let path = dir.join(name);
            assert!(path.is_file(), "{name}");
            assert!(out.contains(&path.display().to_string()), "{name}: {out}");
        }
        assert!(out.contains(&format!(
            "spine serve --tls-cert {0}/server.pem --tls-key {0}/server-key.pem --client-ca {0}/ca.pem",
            dir.display()
        )), "{out}");
        // The files work together.
        tls::server_config(
            &dir.join("server.pem"),
            &dir.join("server-key.pem"),
            Some(&dir.join("ca.pem")),
            true,
            &[tls::NATIVE_ALPN],
        )
        .unwrap();

        let before = std::fs::read(dir.join("ca.pem")).unwrap();
        let failure = dev(&parse(&[dir_arg]).unwrap()).unwrap_err();
        assert_eq!(failure.exit, Exit::Usage);
        assert_eq!(failure.code, "TLS_DEV_CERTS_EXIST");
        assert!(failure.message.contains("ca.pem"), "{}", failure.line());
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);

        dev(&parse(&[dir_arg, "--force"]).unwrap()).unwrap();
        assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
    }

    #[test]
    fn certs_dev_json_lists_the_given_mailboxes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir_arg = tmp.path().to_str().unwrap();
        let out = dev(&parse(&[dir_arg, "--mailbox", "alice", "--json"]).unwrap()).unwrap();
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["files"].as_array().unwrap().len(), 6);
        assert_eq!(report["clients"][0]["mailbox"], "ALICE");
        assert!(tmp.path().join("client-ALICE-key.pem").is_file());
        assert!(!tmp.path().join("client-X26ABC1.pem").exists());
        assert!(report["serve"]
            .as_str()
            .unwrap()
            .starts_with("spine serve --tls-cert "));
    }

    #[test]
    fn write_failures_exit_3() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let failure =
            dev(&parse(&[file.to_str().unwrap(), "--mailbox", "A"]).unwrap()).unwrap_err();
        assert_eq!(failure.exit, Exit::Runtime);
        assert_eq!(failure.code, "TLS_DEV_CERTS_WRITE");
        assert!(failure.message.contains("file"), "{}", failure.line());
    }

    #[test]
    fn paths_are_quoted_for_the_shell_when_needed() {
        assert_eq!(
            shell_word(Path::new("/tmp/certs/ca.pem")),
            "/tmp/certs/ca.pem"
        );
        assert_eq!(
            shell_word(Path::new("my certs/ca.pem")),
            "'my certs/ca.pem'"
        );
        assert_eq!(shell_word(Path::new("it's")), r"'it'\''s'");
    }
}
