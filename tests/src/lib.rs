//! Helpers for black-box tests of the `spine` binary.
//!
//! [`spine_bin`] builds the real binary once per test process (with the
//! same profile as the tests) and returns its path; [`Spine`] runs it as a
//! child process with captured output, and can signal it like an operator
//! would. Every wait is bounded so a hang fails the test instead of CI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Path of the `spine` binary, built once.
pub fn spine_bin() -> anyhow::Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary is not under target/<profile>/deps")?
        .to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "spine-actors", "--bin", "spine"]);
    if release {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = cmd
        .status()
        .context("running cargo build for the spine binary")?;
    if !status.success() {
        bail!("cargo build of the spine binary failed: {status}");
    }
    let bin = profile_dir.join("spine");
    if !bin.exists() {
        bail!("built spine binary not found at {}", bin.display());
    }
    Ok(bin)
}

/// Output of a finished `spine` run.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error (logs).
    pub stderr: String,
}

impl Finished {
    /// The exit code (-1 if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Runs `spine ARGS` to completion (bounded by [`WAIT`]).
pub fn run(args: &[&str]) -> anyhow::Result<Finished> {
    run_env(args, &[])
}

/// Runs `spine ARGS` with extra environment variables.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Finished> {
    let child = Spine::start_env(args, env)?;
    child.wait()
}

/// A running `spine` process; its stdout and stderr go to files so tests
/// can watch the log while it runs.
#[derive(Debug)]
pub struct Spine {
    child: Child,
    out: tempfile::TempDir,
}

impl Spine {
    /// Starts `spine ARGS` with output captured.
    pub fn start(args: &[&str]) -> anyhow::Result<Spine> {
        Spine::start_env(args, &[])
    }

    /// Starts `spine ARGS` with extra environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Spine> {
        let out = tempfile::tempdir()?;
        let stdout = std::fs::File::create(out.path().join("stdout"))?;
        let stderr = std::fs::File::create(out.path().join("stderr"))?;
        let mut cmd = Command::new(spine_bin()?);
        // Tests run in parallel: a node that does not choose its MESH port
        // gets a free one instead of the fixed default.
        let mut args: Vec<&str> = args.to_vec();
        if args.first() == Some(&"serve")
            && !args.contains(&"--mesh-listen")
            && !env.iter().any(|(k, _)| *k == "SPINE_MESH_LISTEN")
        {
            args.extend(["--mesh-listen", "127.0.0.1:0"]);
        }
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for key in [
            "SPINE_DATA_DIR",
            "SPINE_LOG_FORMAT",
            "SPINE_LOG_LEVEL",
            "RUST_LOG",
        ] {
            cmd.env_remove(key);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("starting spine")?;
        Ok(Spine { child, out })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) via the `kill` command.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {} failed", self.pid());
        }
        Ok(())
    }

    /// Waits for exit (bounded) and collects output.
    pub fn wait(mut self) -> anyhow::Result<Finished> {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("spine did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(self.out.path().join("stdout"))?;
        let stderr = std::fs::read_to_string(self.out.path().join("stderr"))?;
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    }

    /// Path of the file receiving the process's standard error (its log).
    pub fn stderr_path(&self) -> PathBuf {
        self.out.path().join("stderr")
    }

    /// Waits until the log has a line containing `needle`; fails early if
    /// the process exits first.
    pub fn wait_for_log(&mut self, needle: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        let path = self.stderr_path();
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                    return Ok(line.to_string());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                bail!("spine exited ({status}) before logging {needle:?}; log:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("spine did not log {needle:?} within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> anyhow::Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }
}

impl Drop for Spine {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
