//! Black-box tests of `spine-bench compare`: the real binary, run against
//! the real `spine` binary (built once by `spine_tests::spine_bin`), with
//! only Spine as a peer so CI needs no broker installed: two 1 s rounds
//! and one fixed-rate run. Every wait is bounded; a hung run is killed and
//! fails the test.

#![allow(clippy::expect_used, clippy::unwrap_used)]

// The other tools' black-box tests share this binary (one link, one
// `spine` build).
#[path = "tools/request.rs"]
mod request;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `spine-bench ARGS`, killed after `limit`.
fn spine_bench(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spine-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start spine-bench");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "spine-bench {args:?} ran past {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Runs `spine-bench compare ARGS --out OUT`, killed after `limit`.
fn compare(args: &[&str], out: &Path, limit: Duration) -> Output {
    let out = out.to_str().expect("utf-8 path");
    let argv: Vec<&str> = std::iter::once("compare")
        .chain(args.iter().copied())
        .chain(["--out", out])
        .collect();
    spine_bench(&argv, limit)
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn spine_alone_is_measured_in_rounds_verified_and_reported() {
    let spine = spine_tests::spine_bin().expect("spine binary");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let result = compare(
        &[
            "--peers",
            "spine",
            "--seconds",
            "1",
            "--rounds",
            "2",
            "--rates",
            "200",
            "--drain-seconds",
            "15",
            "--baseline-seconds",
            "0.2",
            "--spine",
            spine.to_str().expect("utf-8 path"),
        ],
        &out,
        Duration::from_secs(90),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "exit {:?}: {stderr}",
        result.status
    );
    let r = report(&out);
    let peers = r["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "only the requested mode");
    let spine_row = &peers[0];
    assert_eq!(spine_row["mode"], "spine");
    assert_eq!(spine_row["status"], "ran", "{spine_row}");
    assert_eq!(spine_row["durable_ack"], true);
    assert_eq!(r["workload"]["rounds"], 2);
    let rounds = spine_row["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{spine_row}");
    let mut throughputs = Vec::new();
    for (i, round) in rounds.iter().enumerate() {
        assert_eq!(round["round"], i + 1);
        let run = &round["max_rate"];
        assert!(run["acked"].as_u64().expect("acked") > 0, "{round}");
        assert_eq!(run["lost"], 0, "{round}");
        assert_eq!(run["duplicates"], 0, "{round}");
        assert!(round["disk_syncs_per_s"].as_f64().expect("disk") > 0.0);
        throughputs.push(run["throughput_msgs_per_s"].as_f64().expect("rate"));
    }
    let max = &spine_row["max_rate"];
    assert_eq!(max["rounds"], 2, "{max}");
    let median = max["throughput_msgs_per_s"].as_f64().expect("median");
    let mean = (throughputs[0] + throughputs[1]) / 2.0;
    assert!(
        (median - mean).abs() < 1e-6,
        "even count: {median} vs {mean}"
    );
    let (lo, hi) = (
        throughputs[0].min(throughputs[1]),
        throughputs[0].max(throughputs[1]),
    );
    assert_eq!(max["throughput_min_msgs_per_s"].as_f64(), Some(lo));
    assert_eq!(max["throughput_max_msgs_per_s"].as_f64(), Some(hi));
    assert_eq!(
        max["acked"].as_u64(),
        rounds
            .iter()
            .map(|r| r["max_rate"]["acked"].as_u64())
            .sum::<Option<u64>>()
    );
    assert_eq!(max["lost"], 0, "{max}");
    assert_eq!(max["duplicates"], 0, "{max}");
    assert!(max["latency_us"]["p99"].as_u64().expect("p99") > 0);
    let fixed = spine_row["fixed_rate"].as_array().expect("fixed");
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed[0]["offered_msgs_per_s"], 200.0);
    assert!(
        r["fdatasync_baseline"]["syncs_per_s"]
            .as_f64()
            .expect("baseline")
            > 0.0
    );
    assert_eq!(
        r["fdatasync_baseline_rounds"].as_array().map(Vec::len),
        Some(2),
        "one disk baseline per round"
    );
    assert!(r["machine"]["cores"].as_u64().expect("cores") >= 1);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        md.lines().any(|l| l.starts_with("| spine | yes | 2 | ")),
        "{md}"
    );
    assert!(md.contains("## Max rate (medians of 2 rounds)"), "{md}");
    for svg in ["throughput.svg", "latency.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).expect(svg);
        assert!(text.contains("data-series=\"spine"), "{svg}");
    }
    assert!(!out.join("work").exists(), "data directories removed");
    for round in [1, 2] {
        assert!(out
            .join(format!("logs/spine-round-{round}-max-server.log"))
            .is_file());
    }
    assert!(out.join("logs/spine-rate-200-server.log").is_file());
}

#[test]
fn a_missing_peer_is_a_not_run_row_and_the_run_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let missing = dir.path().join("no-such-redis-server");
    let result = compare(
        &[
            "--peers",
            "redis-aof-always",
            "--seconds",
            "1",
            "--baseline-seconds",
            "0",
            "--redis-server",
            missing.to_str().expect("utf-8 path"),
        ],
        &out,
        Duration::from_secs(30),
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let r = report(&out);
    let row = &r["peers"][0];
    assert_eq!(row["mode"], "redis-aof-always");
    assert_eq!(row["status"], "not_run");
    assert!(row["reason"]
        .as_str()
        .expect("reason")
        .contains("not found"));
    assert!(r["fdatasync_baseline"].is_null());
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("| redis-aof-always | yes | not run: "), "{md}");
}

#[test]
fn zero_rounds_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let result = compare(&["--rounds", "0"], &out, Duration::from_secs(30));
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("--rounds must be at least 1"), "{stderr}");
    assert!(!out.exists(), "nothing run, nothing written");
}
