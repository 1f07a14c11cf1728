//! `spine-sim` through its binary: a run's verdict and exit code, the
//! reports it writes, and reproducibility (same seed, same
//! `event_log_hash`; another seed, another).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const TINY: &str = "tests/data/tiny-drill.toml";

fn run(scenario: &str, seed: u64, out: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spine-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            scenario,
            "--seed",
            &seed.to_string(),
            "--quiet",
            "--out",
        ])
        .arg(out)
        .output()
        .expect("spine-sim runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

#[test]
fn the_same_seed_gives_the_same_event_log_and_another_seed_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let (code, out, err) = run(TINY, 11, &a);
    assert_eq!(code, 0, "{out}\n{err}");
    let first = report(&a);
    assert_eq!(first["passed"], true, "{first}");
    let totals = &first["totals"];
    assert!(totals["sent"].as_u64().unwrap() > 100, "{totals}");
    assert!(
        totals["expired"].as_u64().unwrap() > 0,
        "absent consumers: {totals}"
    );
    assert_eq!(totals["expired"], totals["reports"], "{totals}");
    assert!(
        totals["refused"]["NODE_LOG_FAILED"].as_u64().unwrap() > 0,
        "{totals}"
    );
    assert!(
        first["faults"].as_array().unwrap().len() >= 8,
        "{}",
        first["faults"]
    );
    for file in [
        "report.md",
        "throughput.svg",
        "latency.svg",
        "queue_depth.svg",
    ] {
        assert!(a.join(file).is_file(), "{file}");
    }
    let hash = first["event_log_hash"].as_str().unwrap().to_string();
    assert!(out.contains(&hash), "{out}");

    let (code, _, err) = run(TINY, 11, &b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report(&b)["event_log_hash"], hash.as_str());
    let (code, _, err) = run(TINY, 12, &c);
    assert_eq!(code, 0, "{err}");
    assert_ne!(report(&c)["event_log_hash"], hash.as_str());
}

#[test]
fn every_shipped_short_scenario_runs_with_its_invariants_held() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "national-day-short",
        "national-peak-short",
        "mesh-bulk-files-short",
        "game-day-short",
    ] {
        let out = tmp.path().join(name);
        let (code, stdout, stderr) = run(&format!("scenarios/{name}.toml"), 1, &out);
        assert_eq!(code, 0, "{name}: {stdout}\n{stderr}");
        assert_eq!(report(&out)["passed"], true, "{name}");
    }
}

#[test]
fn a_bad_scenario_is_refused_with_its_key_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(TINY))
        .unwrap()
        .replace("partitions = 4", "partitions = 0");
    std::fs::write(&bad, text).unwrap();
    let (code, _, err) = run(bad.to_str().unwrap(), 1, &tmp.path().join("out"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("SIM_SCENARIO_") && err.contains("partitions"),
        "{err}"
    );
}

#[test]
fn plan_measures_this_machine_and_writes_its_conclusion() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plan");
    let output = Command::new(env!("CARGO_BIN_EXE_spine-sim"))
        .args([
            "plan",
            "--target-rate",
            "100",
            "--p99-ms",
            "2000",
            "--step-seconds",
            "1",
            "--start-rate",
            "20",
            "--max-seconds",
            "8",
            "--warmup-seconds",
            "0",
        ])
        .arg("--data-dir")
        .arg(tmp.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("spine-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    assert!(
        plan["conclusion"].as_str().unwrap().contains("node"),
        "{plan}"
    );
    assert!(out.join("plan.md").is_file());
    assert!(stdout.contains("node"), "{stdout}");
}

/// Live mode: the same kind of scenario against a real `spine serve` over
/// the native protocol (its mailbox directory is the scenario's, loaded
/// from the JSONL files `spine-sim directory` writes, and its service
/// directory the `services.toml` written beside them), with the invariants
/// checked from the outside and every sender's PDS look-ups answered.
#[test]
fn live_mode_drives_a_running_node_over_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let written = Command::new(env!("CARGO_BIN_EXE_spine-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "directory",
            "tests/data/tiny-live.toml",
            "--seed",
            "5",
            "--out",
        ])
        .arg(tmp.path())
        .output()
        .expect("spine-sim runs");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let data = path("data");
    let (mb, wf) = (path("mailboxes.jsonl"), path("workflows.jsonl"));
    let services = path("services.toml");
    let told = String::from_utf8_lossy(&written.stdout);
    assert!(
        told.contains(&format!("--services-directory {services}")),
        "{told}"
    );
    let mut node = spine_tests::Spine::start(&[
        "serve",
        "--data-dir",
        &data,
        "--log-format",
        "json",
        "--metrics-enabled",
        "false",
        "--native-listen",
        "127.0.0.1:0",
        "--quic-enabled",
        "false",
        "--mailboxes",
        &mb,
        "--workflows",
        &wf,
        "--services-directory",
        &services,
        "--hash-iterations",
        "1",
    ])
    .unwrap();
    let line = node.wait_for_log("listen addresses").unwrap();
    node.wait_for_log("ready").unwrap();
    let logged: Value = serde_json::from_str(&line).unwrap();
    let native = logged["native"]
        .as_str()
        .unwrap()
        .replace("tcp://", "native://");
    let out = tmp.path().join("live");
    let output = Command::new(env!("CARGO_BIN_EXE_spine-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "tests/data/tiny-live.toml",
            "--seed",
            "5",
            "--quiet",
            "--mode",
            "live",
        ])
        .args(["--target", &native, "--drain-secs", "20", "--out"])
        .arg(&out)
        .output()
        .expect("spine-sim runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = report(&out);
    assert_eq!(r["mode"], "live");
    assert_eq!(r["passed"], true, "{r}");
    let totals = &r["totals"];
    assert!(totals["sent"].as_u64().unwrap() > 50, "{totals}");
    assert_eq!(
        totals["sent"], totals["delivered"],
        "every message collected: {totals}"
    );
    assert_eq!(totals["lost"], 0);
    // Two look-ups per acknowledged send, all answered by the node that
    // accredits the population.
    let services = &totals["services"];
    let sent = totals["sent"].as_u64().unwrap();
    assert_eq!(services["issued"].as_u64(), Some(2 * sent), "{services}");
    assert_eq!(services["ok"], services["issued"], "{services}");
    assert_eq!(services["failed"], serde_json::json!({}), "{services}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Service requests"), "{md}");
    assert!(
        stdout.contains(&format!(
            "service requests {}: answered {0}, failed 0",
            2 * sent
        )),
        "{stdout}"
    );
}
