//! Servers this tool starts: spawn in a process group of their own, wait
//! until they listen, stop by the process id we started.
//!
//! Invariants:
//! - A server is only ever signalled through the process group whose id is
//!   the pid of the child *we* spawned (`process_group(0)` makes the child
//!   lead its own group), so a wrapper script and whatever it execs or
//!   forks (rabbitmq-server's `beam.smp`) stop with it, and nothing else on
//!   the machine is touched. Never by name.
//! - Stopping is SIGTERM, then SIGKILL after a grace period; dropping a
//!   [`Server`] that was not stopped kills its group, so an error path
//!   cannot leak a running peer.
//! - Every wait is bounded.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A running server process (group) and where its output goes.
#[derive(Debug)]
pub(crate) struct Server {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// What `BINARY --version` prints (first line trimmed), if it runs.
pub(crate) fn version(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Server {
    /// Starts `command` (output to `log`) and waits, at most `timeout`,
    /// until it listens on 127.0.0.1:`port`; answers it and that address.
    pub(crate) async fn start_listening(
        name: &str,
        command: Command,
        log: &Path,
        port: u16,
        timeout: Duration,
    ) -> anyhow::Result<(Server, SocketAddr)> {
        let mut server = Server::spawn(name, command, log)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        server.wait_listening(addr, timeout).await?;
        Ok((server, addr))
    }

    /// Starts `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Server> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Server {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The pid we started (also its process group id).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until `addr` accepts a TCP connection, failing early if the
    /// process exits, and after `timeout`.
    pub(crate) async fn wait_listening(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!(
                        "{} exited ({status}) before listening on {addr}: {}",
                        self.name,
                        self.log_tail()
                    );
                }
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} not listening on {addr} after {:?}: {}",
                    self.name,
                    timeout,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the server's output, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The last few lines, each cut short: an Erlang crash report is
        // one enormous line.
        let lines: Vec<String> = text
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .map(|l| truncate(l, 300))
            .collect();
        let tail: Vec<String> = lines.into_iter().rev().collect();
        format!("log {}: {}", self.log.display(), tail.join(" | "))
    }

    /// SIGTERM to the group we started, SIGKILL after `grace`; returns
    /// how it ended.
    pub(crate) fn stop(&mut self, grace: Duration) -> String {
        let Some(mut child) = self.child.take() else {
            return "not running".to_owned();
        };
        let group = Pid::from_raw(child.id() as i32);
        if let Ok(Some(status)) = child.try_wait() {
            // The leader is gone; its group may not be.
            let _ = killpg(group, Signal::SIGKILL);
            return format!("had already exited ({status})");
        }
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                // Anything the leader left behind in its group goes too.
                let _ = killpg(group, Signal::SIGKILL);
                return format!("stopped by SIGTERM ({status})");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let status = child.wait();
        format!("killed after {grace:?} ({status:?})")
    }
}

/// `s` cut to at most `n` characters (with `…` when cut).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_exits_early_is_reported_with_its_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom; exit 3"]);
        let mut server = Server::spawn("sh", cmd, &dir.path().join("log")).expect("spawn");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port().expect("port"))
            .parse()
            .expect("addr");
        let err = server
            .wait_listening(addr, Duration::from_secs(5))
            .await
            .expect_err("must fail");
        let text = format!("{err:#}");
        assert!(text.contains("exited") && text.contains("boom"), "{text}");
    }

    #[test]
    fn stop_terminates_the_whole_group_we_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        // A wrapper that forks a grandchild, like rabbitmq-server.
        cmd.args(["-c", "sleep 30 & echo $! > child.pid; wait"])
            .current_dir(dir.path());
        let mut server = Server::spawn("sh", cmd, &dir.path().join("log")).expect("spawn");
        let pid_file = dir.path().join("child.pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        let how = server.stop(Duration::from_secs(5));
        assert!(
            how.starts_with("stopped") || how.starts_with("killed"),
            "{how}"
        );
        // The grandchild got the signal too (it may linger as a zombie of
        // init for a moment; /proc/PID/stat says Z, or it is gone).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            match stat {
                Err(_) => break,
                Ok(s) if s.split_whitespace().nth(2) == Some("Z") => break,
                Ok(_) if Instant::now() > deadline => panic!("grandchild still running"),
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
