//! Black-box tests of `spine-bench request` (Spine's PDS requests beside
//! NATS request/reply) and of `spine-bench load --requests-per-send` (service
//! requests mixed into message traffic), against a real `spine serve`.
//!
//! The NATS phase runs when a `nats-server` can be found (CI installs
//! Debian's); without one the tool must say it did not run and why. Both
//! branches assert what happened.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use spine_tests::Spine;

use super::spine_bench;

/// `spine serve` on a fresh directory with only the native TCP listener on
/// a port the OS picks; answers the node and its `native://` target.
fn serve(dir: &Path) -> (Spine, String) {
    let mut node = Spine::start(&[
        "serve",
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
        "--log-format",
        "json",
        "--native-listen",
        "127.0.0.1:0",
        "--quic-enabled",
        "false",
        "--mesh-enabled",
        "false",
        "--metrics-enabled",
        "false",
    ])
    .expect("start spine");
    let line = node.wait_for_log("listen addresses").expect("listening");
    let logged: Value = serde_json::from_str(&line).expect("json log line");
    let native = logged["native"].as_str().expect("native address");
    let addr = native.strip_prefix("tcp://").expect("tcp address");
    (node, format!("native://{addr}"))
}

/// Runs `spine-bench ARGS --json FILE`; answers the JSON it wrote.
fn run_json(args: &[&str], dir: &Path, name: &str) -> Value {
    let json = dir.join(name);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json", json.to_str().expect("utf-8 path")]);
    let out = spine_bench(&all, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "spine-bench {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(json).expect("json written")).expect("json")
}

/// Whether the tool will find a `nats-server` on this machine.
fn nats_server_available() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(Into::into))
        .any(|d| d.join("nats-server").is_file())
        || Path::new("target/compare-tools/nats/bin/nats-server").is_file()
}

fn positive(v: &Value) -> bool {
    v.as_f64().is_some_and(|x| x > 0.0)
}

#[test]
fn request_measures_spine_pds_beside_nats_request_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, target) = serve(&dir.path().join("data"));
    let common = [
        "request",
        "--target",
        target.as_str(),
        "--seconds",
        "0.5",
        "--clients",
        "2",
        "--window",
        "4",
        "--no-baseline",
    ];
    let mut mixed = common.to_vec();
    mixed.extend(["--send-every", "4"]);
    let r = run_json(&mixed, dir.path(), "request.json");
    let pds = &r["pds_get"];
    assert!(pds["requests"].as_u64().expect("requests") > 0, "{pds}");
    assert_eq!(pds["errors"], 0, "{pds}");
    assert!(positive(&pds["latency_us"]["p99"]), "{pds}");
    assert!(r["mixed"]["requests"].as_u64().expect("mixed") > 0, "{r}");
    assert_eq!(r["mixed"]["errors"], 0, "{r}");
    if nats_server_available() {
        let nats = &r["nats_request_reply"];
        assert!(r["nats_not_run"].is_null(), "{r}");
        assert!(
            nats["requests"].as_u64().expect("nats requests") > 0,
            "{nats}"
        );
        assert_eq!(nats["errors"], 0, "{nats}");
        let ratio = r["throughput_ratio_to_nats"].as_f64().expect("ratio");
        let expected = pds["throughput_per_s"].as_f64().expect("spine")
            / nats["throughput_per_s"].as_f64().expect("nats");
        assert!((ratio - expected).abs() < 1e-6 * expected, "{r}");
        assert!(positive(&r["p99_ratio_to_nats"]), "{r}");
        assert!(
            r["nats_version"]
                .as_str()
                .is_some_and(|v| v.contains("nats-server")),
            "{r}"
        );
    } else {
        assert!(r["nats_request_reply"].is_null(), "{r}");
        assert!(
            r["nats_not_run"]
                .as_str()
                .is_some_and(|w| w.contains("nats-server not found")),
            "{r}"
        );
    }

    // A nats-server that is not there: reported, not a failure.
    let mut missing = common.to_vec();
    missing.extend([
        "--nats-server",
        "/nonexistent/nats-server",
        "--send-every",
        "0",
    ]);
    let r = run_json(&missing, dir.path(), "missing.json");
    assert!(r["nats_request_reply"].is_null(), "{r}");
    assert!(r["mixed"].is_null(), "--send-every 0: no mixed phase: {r}");
    let why = r["nats_not_run"].as_str().expect("a reason");
    assert!(why.contains("--nats-server"), "says what to do: {why}");
}

#[test]
fn load_mixes_service_requests_with_messages_in_the_asked_proportion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, target) = serve(&dir.path().join("data"));
    let r = run_json(
        &[
            "load",
            "--target",
            target.as_str(),
            "--seconds",
            "1",
            "--producers",
            "2",
            "--window",
            "16",
            "--requests-per-send",
            "5",
            "--drain-seconds",
            "20",
            "--no-baseline",
        ],
        dir.path(),
        "load.json",
    );
    assert!(r["acked"].as_u64().expect("acked") > 0, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    let service = &r["service"];
    assert_eq!(service["requests_per_send"], 5, "{service}");
    assert_eq!(service["errors"], 0, "{service}");
    assert!(
        service["requests"].as_u64().expect("requests") > 0,
        "{service}"
    );
    // Each send owes five requests; only those still owed at the deadline
    // (at most a window's worth per producer) may be missing.
    let achieved = service["achieved_per_send"].as_f64().expect("achieved");
    let acked = r["acked"].as_f64().expect("acked");
    assert!(
        achieved <= 5.0 + 1e-9 && achieved * acked >= 5.0 * acked - 2.0 * 16.0 * 5.0,
        "{service} over {acked} sends"
    );

    // Without the flag there is no service section.
    let plain = run_json(
        &[
            "load",
            "--target",
            target.as_str(),
            "--seconds",
            "0.3",
            "--producers",
            "1",
            "--no-baseline",
        ],
        dir.path(),
        "plain.json",
    );
    assert!(plain["service"].is_null(), "{plain}");

    // MESH targets cannot carry service requests: a clear refusal.
    let out = spine_bench(
        &[
            "load",
            "--target",
            "mesh://127.0.0.1:9",
            "--requests-per-send",
            "3",
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--requests-per-send needs a native target"),
        "{stderr}"
    );
}

#[test]
fn load_refuses_fewer_consumers_than_mailboxes_before_sending() {
    // Two consumers for three mailboxes would leave one mailbox unread and
    // count everything sent to it as lost: refused up front, naming the fix.
    // Nothing listens on port 9, so only the argument check can answer.
    let out = spine_bench(
        &[
            "load",
            "--target",
            "native://127.0.0.1:9",
            "--consumers",
            "2",
            "--mailboxes",
            "3",
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--consumers 2 would leave 1 of the 3 mailboxes without a consumer"),
        "{stderr}"
    );
    assert!(stderr.contains("--consumers 3"), "{stderr}");
}
