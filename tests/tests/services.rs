//! Black-box tests of Spine services: the real `spine serve` on loopback,
//! reached through the `spine` CLI (`pds`, `scr`, `eps`, `request`,
//! `provide`) and the `spine-client` library over TCP (and a provider
//! over QUIC).
//!
//! Every node runs on a fresh data directory with OS-assigned ports and
//! metrics off; every wait is bounded (client requests by their timeouts,
//! each test by [`LIMIT`]); providers are `spine provide` processes, so
//! killing one is a real SIGKILL of another process.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use spine_client::{Client, ClientConfig, ClientError, Endpoint, RequestOptions};
use spine_core::ids::MailboxId;
use spine_tests::{run, Finished, Spine};

const PASSWORD: &str = "password";
/// Bound on a whole test.
const LIMIT: Duration = Duration::from_secs(120);

/// A node on a data directory that outlives restarts.
struct Node {
    spine: Option<Spine>,
    data: tempfile::TempDir,
    native: SocketAddr,
}

impl Node {
    fn start() -> anyhow::Result<Node> {
        let data = tempfile::tempdir()?;
        let (spine, native) = serve(data.path())?;
        Ok(Node {
            spine: Some(spine),
            data,
            native,
        })
    }

    fn url(&self) -> String {
        format!("native://{}", self.native)
    }

    /// `spine ARGS --server URL --mailbox MAILBOX --password password`.
    fn cli(&self, mailbox: &str, args: &[&str]) -> anyhow::Result<Finished> {
        let url = self.url();
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--server",
            &url,
            "--mailbox",
            mailbox,
            "--password",
            PASSWORD,
        ]);
        run(&all)
    }

    async fn client(&self, mailbox: &str) -> anyhow::Result<Client> {
        let mut config = ClientConfig::new(
            Endpoint::parse(&self.url())?,
            MailboxId::parse(mailbox)?,
            PASSWORD,
        );
        config.client_name = "spine-tests/services".into();
        config.connect_timeout = Duration::from_secs(10);
        config.request_timeout = Duration::from_secs(30);
        Ok(Client::connect(config).await?)
    }

    /// Stops with `signal` (TERM expects a clean exit) and starts again on
    /// the same data directory.
    fn restart(&mut self, signal: &str) -> anyhow::Result<()> {
        let spine = self.spine.take().context("not running")?;
        spine.signal(signal)?;
        let out = spine.wait()?;
        if signal == "TERM" {
            ensure!(
                out.code() == 0,
                "exit {} after SIGTERM:\n{}",
                out.code(),
                out.stderr
            );
        }
        let (spine, native) = serve(self.data.path())?;
        self.spine = Some(spine);
        self.native = native;
        Ok(())
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let spine = self.spine.take().context("not running")?;
        spine.signal("TERM")?;
        let out = spine.wait()?;
        ensure!(
            out.code() == 0 && !out.stderr.contains("panicked"),
            "not a clean stop ({}):\n{}",
            out.code(),
            out.stderr
        );
        Ok(())
    }
}

fn serve(data: &Path) -> anyhow::Result<(Spine, SocketAddr)> {
    let (spine, logged) = serve_with(data, &[])?;
    let native = logged_addr(&logged, "native", "tcp://")?.parse()?;
    Ok((spine, native))
}

/// `spine serve` on `data` (JSON logs, metrics off, native and QUIC on
/// OS-assigned loopback ports, `extra` flags) until it is ready; answers
/// the node and its "listen addresses" log line.
fn serve_with(data: &Path, extra: &[&str]) -> anyhow::Result<(Spine, Value)> {
    let dir = data.to_str().context("UTF-8 path")?;
    let mut args = vec![
        "serve",
        "--data-dir",
        dir,
        "--log-format",
        "json",
        "--metrics-enabled",
        "false",
        "--native-listen",
        "127.0.0.1:0",
        "--quic-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut spine = Spine::start(&args)?;
    let line = spine.wait_for_log("listen addresses")?;
    spine.wait_for_log("ready; send SIGINT or SIGTERM to stop")?;
    Ok((spine, serde_json::from_str(&line)?))
}

/// The address logged under `key`, without its `scheme`.
fn logged_addr(logged: &Value, key: &str, scheme: &str) -> anyhow::Result<String> {
    logged[key]
        .as_str()
        .and_then(|s| s.strip_prefix(scheme))
        .map(str::to_owned)
        .with_context(|| format!("{key} address logged: {logged}"))
}

async fn bounded(
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::time::timeout(LIMIT, body)
        .await
        .map_err(|_| anyhow!("the test did not finish within {LIMIT:?}"))?
}

fn json_of(out: &Finished) -> anyhow::Result<Value> {
    ensure!(out.code() == 0, "exit {}: {}", out.code(), out.stderr);
    serde_json::from_str(out.stdout.trim()).with_context(|| format!("not JSON: {}", out.stdout))
}

/// Expects exit 5 with `code` on stderr.
fn refused(out: &Finished, code: &str) -> anyhow::Result<()> {
    ensure!(
        out.code() == 5 && out.stderr.contains(&format!("[{code}]")),
        "expected a refusal with {code}, got exit {}: {}{}",
        out.code(),
        out.stdout,
        out.stderr
    );
    Ok(())
}

fn fault_code(e: &ClientError) -> Option<&str> {
    match e {
        ClientError::Service(f) => Some(&f.code),
        _ => None,
    }
}

async fn eps(client: &Client, operation: &str, body: Value) -> Result<Value, ClientError> {
    let answer = client
        .request(
            "eps",
            operation,
            Bytes::from(body.to_string()),
            RequestOptions::default(),
        )
        .await?;
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

#[test]
fn pds_get_validates_check_digits_versions_and_accreditation() -> anyhow::Result<()> {
    let node = Node::start()?;
    // The seeded patient, readable and as JSON.
    let out = node.cli("X26ABC1", &["pds", "get", "9000000009"])?;
    ensure!(
        out.code() == 0 && out.stdout.contains("Jane Smith") && out.stdout.contains("900 000 0009"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let jane = json_of(&node.cli("X26ABC1", &["pds", "get", "9000000009", "--json"])?)?;
    ensure!(
        jane["nhs_number"] == "9000000009" && jane["version"] == 1,
        "{jane}"
    );
    // A wrong check digit is refused with its own code and a clear message.
    let out = node.cli("X26ABC1", &["pds", "get", "9000000001"])?;
    refused(&out, "ID_NHS_NUMBER_CHECK_DIGIT")?;
    ensure!(out.stderr.contains("check digit"), "{}", out.stderr);
    // A valid number nobody has.
    refused(
        &node.cli("X26ABC1", &["pds", "get", "9999999999"])?,
        "PDS_PATIENT_NOT_FOUND",
    )?;
    // Update on the current version, then a stale one.
    let updated = json_of(&node.cli(
        "X26ABC1",
        &[
            "pds",
            "update",
            "9000000009",
            "--version",
            "1",
            "--postcode",
            "LS2 7UE",
            "--json",
        ],
    )?)?;
    ensure!(
        updated["version"] == 2 && updated["postcode"] == "LS2 7UE",
        "{updated}"
    );
    refused(
        &node.cli(
            "X26ABC1",
            &[
                "pds",
                "update",
                "9000000009",
                "--version",
                "1",
                "--postcode",
                "LS3 1AA",
            ],
        )?,
        "PDS_VERSION_CONFLICT",
    )?;
    let now = json_of(&node.cli("X26ABC1", &["pds", "get", "9000000009", "--json"])?)?;
    ensure!(
        now["postcode"] == "LS2 7UE",
        "the stale update changed nothing: {now}"
    );
    // Search.
    let found = json_of(&node.cli(
        "X26ABC1",
        &[
            "pds",
            "search",
            "--family",
            "Smith",
            "--birth-date",
            "2010-10-22",
            "--json",
        ],
    )?)?;
    ensure!(
        found["patients"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["nhs_number"] == "9000000009")),
        "{found}"
    );
    // Accreditation: another organisation's ASID, a system not accredited
    // for the interaction, an unknown ASID.
    refused(
        &node.cli(
            "X26ABC1",
            &["pds", "get", "9000000009", "--asid", "200000000201"],
        )?,
        "SVC_NOT_ACCREDITED",
    )?;
    refused(
        &node.cli(
            "X26ABC1",
            &[
                "pds",
                "search",
                "--family",
                "Smith",
                "--asid",
                "200000000102",
            ],
        )?,
        "SVC_NOT_ACCREDITED",
    )?;
    refused(
        &node.cli(
            "X26ABC1",
            &["pds", "get", "9000000009", "--asid", "999999999999"],
        )?,
        "SVC_NOT_ACCREDITED",
    )?;
    ensure!(
        node.cli(
            "X26ABC1",
            &["pds", "get", "9000000009", "--asid", "200000000102"]
        )?
        .code()
            == 0
    );
    // The generic command, by short interaction id.
    let body = tempfile::NamedTempFile::new()?;
    std::fs::write(body.path(), br#"{"nhs_number":"9000000017"}"#)?;
    let path = body.path().to_str().context("UTF-8")?;
    let p = json_of(&node.cli(
        "X26ABC1",
        &[
            "request",
            "pds",
            "QUPA_IN040000UK32",
            "--body",
            path,
            "--json",
        ],
    )?)?;
    ensure!(p["nhs_number"] == "9000000017", "{p}");
    refused(
        &node.cli(
            "X26ABC1",
            &[
                "request",
                "scr",
                "urn:nhs:names:services:pdsquery/QUPA_IN040000UK32",
                "--body",
                path,
            ],
        )?,
        "SVC_WRONG_SERVICE",
    )?;
    node.stop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eps_releases_each_prescription_exactly_once_under_concurrent_releases(
) -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(Node::start)?;
    bounded(async {
        let gp = node.client("X26ABC1").await?;
        for i in 0..30 {
            eps(&gp, "create", json!({"id": format!("RX-{i}"), "nhs_number": "9000000009", "nominated_pharmacy": "X27", "items": ["Paracetamol 500mg x 32"]})).await?;
        }
        // Eight pharmacy connections release concurrently until nothing is left.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pharmacy = node.client("X26ABC3").await?;
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let r = eps(&pharmacy, "release", json!({})).await?;
                    let ids: Vec<String> = r["released"].as_array().context("released")?.iter().filter_map(|p| p["id"].as_str().map(str::to_owned)).collect();
                    if ids.is_empty() {
                        return anyhow::Ok(got);
                    }
                    got.extend(ids);
                }
            }));
        }
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for t in tasks {
            for id in t.await?? {
                *count.entry(id).or_default() += 1;
            }
        }
        ensure!(count.len() == 30, "released {} of 30", count.len());
        ensure!(count.values().all(|n| *n == 1), "released more than once: {count:?}");
        // One prescription released by id from eight connections at once:
        // exactly one wins, the others are refused as an invalid transition.
        eps(&gp, "create", json!({"id": "RX-ONE", "nhs_number": "9000000009", "nominated_pharmacy": "X27", "items": ["x"]})).await?;
        let mut racers = Vec::new();
        for _ in 0..8 {
            let pharmacy = node.client("X26ABC3").await?;
            racers.push(tokio::spawn(async move { eps(&pharmacy, "release", json!({"id": "RX-ONE"})).await }));
        }
        let (mut won, mut lost) = (0, 0);
        for r in racers {
            match r.await? {
                Ok(_) => won += 1,
                Err(e) if fault_code(&e) == Some("EPS_INVALID_TRANSITION") => lost += 1,
                Err(e) => bail!("unexpected: {e}"),
            }
        }
        ensure!((won, lost) == (1, 7), "won {won}, lost {lost}");
        // Lifecycle order is enforced.
        let pharmacy = node.client("X26ABC3").await?;
        let e = eps(&pharmacy, "claim", json!({"id": "RX-ONE"})).await.err().context("claim before dispense")?;
        ensure!(fault_code(&e) == Some("EPS_INVALID_TRANSITION"), "{e}");
        Ok(())
    })
    .await?;
    tokio::task::block_in_place(|| node.stop())
}

#[test]
fn service_state_survives_sigterm_and_sigkill() -> anyhow::Result<()> {
    let mut node = Node::start()?;
    let ok = |out: Finished| -> anyhow::Result<Finished> {
        ensure!(out.code() == 0, "exit {}: {}", out.code(), out.stderr);
        Ok(out)
    };
    ok(node.cli(
        "X26ABC1",
        &[
            "pds",
            "update",
            "9000000009",
            "--version",
            "1",
            "--given",
            "Janet",
        ],
    )?)?;
    ok(node.cli(
        "X26ABC1",
        &[
            "scr",
            "put",
            "9000000009",
            "--data",
            r#"{"allergies":["penicillin"]}"#,
        ],
    )?)?;
    ok(node.cli(
        "X26ABC1",
        &[
            "eps",
            "create",
            "--id",
            "RX-A",
            "--nhs-number",
            "9000000009",
            "--item",
            "Amoxicillin",
        ],
    )?)?;
    ok(node.cli(
        "X26ABC1",
        &[
            "eps",
            "create",
            "--id",
            "RX-B",
            "--nhs-number",
            "9000000009",
            "--item",
            "Ibuprofen",
        ],
    )?)?;
    ok(node.cli("X26ABC3", &["eps", "release", "--id", "RX-A"])?)?;
    // `rx_a`: the status RX-A must have at this stage.
    let check = |node: &Node, stage: &str, rx_a: &str| -> anyhow::Result<()> {
        let p = json_of(&node.cli("X26ABC1", &["pds", "get", "9000000009", "--json"])?)?;
        ensure!(p["given"] == "Janet" && p["version"] == 2, "{stage}: {p}");
        let s = json_of(&node.cli("X26ABC3", &["scr", "get", "9000000009", "--json"])?)?;
        ensure!(
            s["content"] == r#"{"allergies":["penicillin"]}"#,
            "{stage}: {s}"
        );
        let a = json_of(&node.cli("X26ABC1", &["eps", "get", "RX-A", "--json"])?)?;
        ensure!(a["status"] == rx_a, "{stage}: {a}");
        // Still released exactly once: a second release by id is refused.
        refused(
            &node.cli("X26ABC3", &["eps", "release", "--id", "RX-A"])?,
            "EPS_INVALID_TRANSITION",
        )
        .with_context(|| stage.to_owned())?;
        Ok(())
    };
    check(&node, "running", "released")?;
    node.restart("TERM")?;
    check(&node, "after SIGTERM", "released")?;
    // More changes, then a crash.
    ok(node.cli("X26ABC3", &["eps", "dispense", "RX-A"])?)?;
    let released = json_of(&node.cli("X26ABC3", &["eps", "release", "--json"])?)?;
    ensure!(
        released["released"].as_array().map(Vec::len) == Some(1),
        "RX-B released: {released}"
    );
    node.restart("KILL")?;
    check(&node, "after SIGKILL", "dispensed")?;
    let b = json_of(&node.cli("X26ABC1", &["eps", "get", "RX-B", "--json"])?)?;
    ensure!(
        b["status"] == "released" && b["released_to"] == "X27",
        "after SIGKILL: {b}"
    );
    let again = json_of(&node.cli("X26ABC3", &["eps", "release", "--json"])?)?;
    ensure!(
        again["released"].as_array().map(Vec::len) == Some(0),
        "nothing released twice: {again}"
    );
    node.stop()
}

/// A `spine provide` process, registered once it has said so on stdout.
fn provider(node: &Node, tag: &str) -> anyhow::Result<Spine> {
    let url = node.url();
    let spine = Spine::start(&[
        "provide",
        "ers",
        "--tag",
        tag,
        "--server",
        &url,
        "--mailbox",
        "X26ABC3",
        "--password",
        PASSWORD,
    ])?;
    let stdout: PathBuf = spine.stderr_path().with_file_name("stdout");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::fs::read_to_string(&stdout).is_ok_and(|s| s.contains("\"registered\"")) {
            return Ok(spine);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(spine.stderr_path()).unwrap_or_default();
            bail!("provider {tag} did not register: {log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn referral(client: &Client, n: usize) -> Result<Value, ClientError> {
    let body = Bytes::from(json!({"referral": n}).to_string());
    let answer = client
        .request("ers", "referral", body, RequestOptions::default())
        .await?;
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_providers_serve_share_load_and_a_killed_one_is_routed_around(
) -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(Node::start)?;
    bounded(async {
        let gp = node.client("X26ABC1").await?;
        // No provider yet: a clear refusal.
        let e = referral(&gp, 0).await.err().context("no provider")?;
        ensure!(fault_code(&e) == Some("SVC_NO_PROVIDER"), "{e}");
        // A mailbox not allowed to provide the service is refused.
        let stranger = node.client("X26ABC2").await?;
        let e = stranger
            .register_provider("ers", 16)
            .await
            .err()
            .context("X26ABC2 may not provide ers")?;
        ensure!(e.to_string().contains("may not provide"), "{e}");
        let a = tokio::task::block_in_place(|| provider(&node, "A"))?;
        let b = tokio::task::block_in_place(|| provider(&node, "B"))?;
        let mut served: BTreeMap<String, usize> = BTreeMap::new();
        for n in 0..20 {
            let answer = referral(&gp, n).await?;
            ensure!(
                answer["request"]["referral"] == n
                    && answer["ods"] == "X26"
                    && answer["operation"] == "referral",
                "{answer}"
            );
            *served
                .entry(answer["provider"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        ensure!(
            served.get("A").copied().unwrap_or(0) >= 5
                && served.get("B").copied().unwrap_or(0) >= 5,
            "load shared: {served:?}"
        );
        // Kill A: every later request is answered, by B.
        a.signal("KILL")?;
        drop(tokio::task::block_in_place(|| a.wait()));
        let mut after = BTreeSet::new();
        for n in 0..20 {
            let answer = referral(&gp, n)
                .await
                .with_context(|| format!("request {n} after A was killed"))?;
            after.insert(answer["provider"].as_str().unwrap_or("?").to_owned());
        }
        ensure!(
            after == BTreeSet::from(["B".to_owned()]),
            "after the kill: {after:?}"
        );
        b.signal("KILL")?;
        drop(tokio::task::block_in_place(|| b.wait()));
        Ok(())
    })
    .await?;
    tokio::task::block_in_place(|| node.stop())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_provider_times_out_clearly_and_is_routed_around() -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(Node::start)?;
    bounded(async {
        let gp = node.client("X26ABC1").await?;
        // A provider that takes calls and never answers.
        let hung = node.client("X26ABC3").await?;
        let mut calls = hung.register_provider("ers", 16).await?;
        let started = Instant::now();
        let e = referral(&gp, 1)
            .await
            .err()
            .context("a hung provider cannot answer")?;
        ensure!(fault_code(&e) == Some("SVC_TIMEOUT"), "{e}");
        ensure!(
            e.to_string().contains("did not respond within 5000 ms"),
            "{e}"
        );
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "bounded by the interaction's deadline"
        );
        ensure!(
            calls.next().await.is_some(),
            "the call did reach the hung provider"
        );
        // A healthy provider joins: the timed-out one is routed around.
        let b = tokio::task::block_in_place(|| provider(&node, "B"))?;
        for n in 0..5 {
            let answer = referral(&gp, n).await?;
            ensure!(answer["provider"] == "B", "{answer}");
        }
        b.signal("KILL")?;
        drop(tokio::task::block_in_place(|| b.wait()));
        Ok(())
    })
    .await?;
    tokio::task::block_in_place(|| node.stop())
}

/// A node with development certificates (`spine certs dev`): TLS on the
/// native port, and QUIC.
struct TlsNode {
    spine: Spine,
    _data: tempfile::TempDir,
    certs: tempfile::TempDir,
    natives: String,
    quic: String,
}

fn serve_tls() -> anyhow::Result<TlsNode> {
    let data = tempfile::tempdir()?;
    let certs = tempfile::tempdir()?;
    let path = |p: &Path| p.to_str().map(str::to_owned).context("UTF-8 path");
    let made = run(&["certs", "dev", &path(certs.path())?])?;
    ensure!(made.code() == 0, "spine certs dev: {}", made.stderr);
    let (cert, key) = (
        path(&certs.path().join("server.pem"))?,
        path(&certs.path().join("server-key.pem"))?,
    );
    let (spine, logged) = serve_with(data.path(), &["--tls-cert", &cert, "--tls-key", &key])?;
    let natives = format!("natives://{}", logged_addr(&logged, "native", "tls://")?);
    let quic = format!("quic://{}", logged_addr(&logged, "quic", "quic://")?);
    Ok(TlsNode {
        spine,
        _data: data,
        certs,
        natives,
        quic,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_registered_over_quic_serves_and_leaves_with_its_stream() -> anyhow::Result<()> {
    let TlsNode {
        spine,
        _data,
        certs,
        natives,
        quic,
    } = tokio::task::block_in_place(serve_tls)?;
    let connect = |url: String, mailbox: &'static str| {
        let ca = certs.path().join("ca.pem");
        async move {
            let mut config =
                ClientConfig::new(Endpoint::parse(&url)?, MailboxId::parse(mailbox)?, PASSWORD);
            config.tls.ca_file = Some(ca);
            config.request_timeout = Duration::from_secs(30);
            anyhow::Ok(Client::connect(config).await?)
        }
    };
    bounded(async {
        let provider = connect(quic.clone(), "X26ABC3").await?;
        let mut calls = provider.register_provider("ers", 16).await?;
        // The provider answers every call it is given, over QUIC.
        let answering = tokio::spawn(async move {
            let mut answered = 0u32;
            while answered < 3 {
                let Some(call) = calls.next().await else {
                    break;
                };
                let body = Bytes::from(json!({"via": "quic", "echo": call.body.len()}).to_string());
                calls.reply(call.correlation, Ok(body)).await?;
                answered += 1;
            }
            // Dropping the calls ends the registration stream.
            drop(calls);
            anyhow::Ok(answered)
        });
        // Callers over TLS and over QUIC both reach it.
        let gp_tls = connect(natives.clone(), "X26ABC1").await?;
        let gp_quic = connect(quic.clone(), "X26ABC1").await?;
        for (n, gp) in [&gp_tls, &gp_quic, &gp_tls].into_iter().enumerate() {
            let answer = referral(gp, n).await?;
            ensure!(
                answer["via"] == "quic",
                "answered by the QUIC provider: {answer}"
            );
        }
        ensure!(answering.await?? == 3, "three calls answered");
        // Its stream has ended, so it is no longer a provider (bounded wait
        // for the node to see the stream end).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match referral(&gp_tls, 9).await {
                Err(e) if fault_code(&e) == Some("SVC_NO_PROVIDER") => break,
                other if Instant::now() > deadline => {
                    bail!("still routed to a provider that left: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        drop(provider);
        Ok(())
    })
    .await?;
    spine.signal("TERM")?;
    let out = tokio::task::block_in_place(|| spine.wait())?;
    ensure!(out.code() == 0, "clean stop: {}", out.stderr);
    Ok(())
}
