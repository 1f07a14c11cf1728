//! The plan as a whole: option checking, the summary of made-up steps, and
//! one tiny real plan end to end (bounded: low rates, 1-second steps, a
//! loose bound).

use std::time::Duration;

use super::*;
use crate::plan::load::Latency;
use crate::plan::machine::DiskBaseline;

fn args(extra: &[&str]) -> PlanArgs {
    let mut argv = vec!["--target-rate", "32000", "--p99-ms", "50"];
    argv.extend_from_slice(extra);
    PlanArgs::parse_from(argv).unwrap()
}

#[test]
fn defaults_are_valid_and_documented_values() {
    let a = args(&[]);
    a.validate().unwrap();
    assert_eq!(a.step_seconds, 3.0);
    assert_eq!(a.headroom, 0.3);
    assert_eq!(a.size, 1024);
    assert_eq!(a.partitions, RuntimeConfig::default().partitions);
    assert_eq!(a.max_seconds, 60.0);
    assert_eq!(a.data_dir, None);
    assert_eq!(a.out, PathBuf::from("plan-out"));
}

#[test]
fn the_required_options_are_required() {
    assert!(PlanArgs::parse_from(["--p99-ms", "50"]).is_err());
    assert!(PlanArgs::parse_from(["--target-rate", "100"]).is_err());
    assert!(PlanArgs::parse_from(["--target-rate", "lots", "--p99-ms", "5"]).is_err());
}

#[test]
fn every_option_out_of_range_is_refused_by_name() {
    let cases: &[(&[&str], &str)] = &[
        (&["--target-rate", "0"], "--target-rate"),
        (&["--target-rate=-5"], "--target-rate"),
        (&["--target-rate", "NaN"], "--target-rate"),
        (&["--p99-ms", "0"], "--p99-ms"),
        (&["--p99-ms", "inf"], "--p99-ms"),
        (&["--step-seconds", "0"], "--step-seconds"),
        (&["--headroom", "1"], "--headroom"),
        (&["--headroom=-0.1"], "--headroom"),
        (&["--size", "0"], "--size"),
        (&["--size", "16777217"], "--size"),
        (&["--partitions", "0"], "--partitions"),
        (&["--max-seconds", "0"], "--max-seconds"),
        (&["--max-rate", "0"], "--max-rate"),
        (&["--start-rate", "0"], "--start-rate"),
        (&["--min-rate", "0"], "--min-rate"),
        (&["--growth", "1"], "--growth"),
        (&["--refine-steps", "50"], "--refine-steps"),
        (&["--senders", "0"], "--senders"),
        (&["--mailboxes", "0"], "--mailboxes"),
        (&["--mailboxes", "4", "--consumers", "5"], "--consumers"),
        (&["--poll-ms", "0"], "--poll-ms"),
        (&["--warmup-seconds=-1"], "--warmup-seconds"),
    ];
    for (extra, name) in cases {
        // The required options, unless the case gives them itself.
        let mut argv: Vec<&str> = Vec::new();
        if !extra.iter().any(|e| e.starts_with("--target-rate")) {
            argv.extend(["--target-rate", "32000"]);
        }
        if !extra.iter().any(|e| e.starts_with("--p99-ms")) {
            argv.extend(["--p99-ms", "50"]);
        }
        argv.extend_from_slice(extra);
        let a = PlanArgs::parse_from(argv).unwrap();
        let e = a.validate().unwrap_err();
        assert!(e.to_string().starts_with(name), "{extra:?}: {e}");
        assert_eq!(spine_core::ErrorCode::code(&e), "PLAN_INVALID_ARGUMENT");
    }
}

#[tokio::test]
async fn invalid_options_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&[]);
    a.target_rate = 0.0;
    a.data_dir = Some(dir.path().to_path_buf());
    let e = plan_with_progress(&a, &mut |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("--target-rate"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn step(index: usize, offered: u64, passed: bool) -> StepReport {
    StepReport {
        index,
        phase: Phase::Up,
        offered_per_s: offered,
        seconds: 3.0,
        scheduled: offered * 3,
        accepted: offered * 3,
        achieved_per_s: offered as f64 * 0.99,
        errors: 0,
        error_codes: BTreeMap::new(),
        timed_out: 0,
        unsent: 0,
        latency: Latency {
            count: offered * 3,
            p50_ms: Some(1.0),
            p99_ms: Some(if passed { 10.0 } else { 80.0 }),
            p999_ms: Some(90.0),
            max_ms: Some(100.0),
            mean_ms: Some(2.0),
        },
        log_bytes: offered * 3 * 1300,
        log_bytes_per_msg: Some(1300.0),
        fsyncs_per_s: 500.0,
        msgs_per_fsync: Some(offered as f64 / 500.0),
        collected: offered * 3,
        backlog_at_end: 10,
        consumer_errors: 0,
        deepest_partition_queue: 3,
        wal_in_flight: 7,
        cpu_cores: Some(1.5),
        other_cores: Some(0.2),
        drain_s: 0.1,
        drained: true,
        passed,
        reasons: if passed {
            Vec::new()
        } else {
            vec!["p99 80.0 ms > 50.0 ms".into()]
        },
    }
}

fn machine_with_disk() -> Machine {
    Machine {
        disk: Some(DiskBaseline {
            dir: PathBuf::from("/tmp/x"),
            write_bytes: 4096,
            seconds: 1.0,
            syncs: 1000,
            fdatasync_per_s: 1000.0,
            p50_us: 900,
            p99_us: 2000,
            max_us: 3000,
        }),
        ..machine::describe()
    }
}

fn ramp_after(verdicts: &[bool]) -> Ramp {
    let mut ramp = Ramp::new(args(&[]).ramp_config()).unwrap();
    for v in verdicts {
        ramp.record(*v);
    }
    ramp
}

#[test]
fn a_summary_sizes_from_the_highest_pass() {
    // 1000, 2000, 4000, 8000, 16000 pass; 32000 fails; 24000 passes;
    // 28000 fails.
    let verdicts = [true, true, true, true, true, false, true, false];
    let rates = [1000, 2000, 4000, 8000, 16_000, 32_000, 24_000, 28_000];
    let steps: Vec<StepReport> = rates
        .iter()
        .zip(verdicts)
        .enumerate()
        .map(|(i, (r, v))| step(i + 1, *r, v))
        .collect();
    let ramp = ramp_after(&verdicts);
    let wire = wire::wire_bytes(&wire::tests::envelope(), 1024).unwrap();
    let r = summarise(&args(&[]), machine_with_disk(), steps, &ramp, Some(wire));
    assert_eq!(r.stop_reason, StopReason::Bracketed);
    assert_eq!(r.max_rate_offered, Some(24_000));
    assert_eq!(r.max_rate, Some(24_000.0 * 0.99));
    assert_eq!(r.lowest_failing_rate, Some(28_000));
    assert_eq!(r.measured.log_bytes_per_msg, Some(1300.0));
    assert_eq!(r.measured.max_rate_per_raw_fdatasync, Some(23.76));
    assert_eq!(r.measured.fsync_share_of_raw_at_max, Some(0.5));
    let z = r.sizing.as_ref().unwrap();
    // 23,760 × 0.7 = 16,632 usable; 32,000 / 16,632 = 1.92 → 2 nodes.
    assert_eq!(z.nodes, 2);
    assert_eq!(z.partitions, 16);
    assert_eq!(z.disk_write_bytes_per_s, Some(1300.0 * 32_000.0));
    assert!(r.sizing_error.is_none());
    assert!(r.conclusion.contains("**2 nodes**"), "{}", r.conclusion);
    assert!(r.conclusion.contains("23,760 msgs/s"), "{}", r.conclusion);
    assert!(r.conclusion.contains("28,000 msgs/s"), "{}", r.conclusion);
    assert!(r.assumptions.len() >= 8);
    let md = render::markdown(&r);
    for needle in [
        "## Conclusion",
        "## Sizing",
        "## Steps",
        "## Assumptions",
        "| **nodes** | **2** |",
    ] {
        assert!(md.contains(needle), "{needle} missing from\n{md}");
    }
    // One table row per step.
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| ") && l.contains("| Up |"))
            .count(),
        8
    );
}

#[test]
fn a_summary_without_a_pass_explains_why_there_is_no_sizing() {
    let verdicts = [false; 3];
    let steps = vec![
        step(1, 1000, false),
        step(2, 500, false),
        step(3, 250, false),
    ];
    let ramp = ramp_after(&verdicts);
    let r = summarise(&args(&[]), machine_with_disk(), steps, &ramp, None);
    assert_eq!(r.max_rate, None);
    assert!(r.sizing.is_none());
    let e = r.sizing_error.as_deref().unwrap();
    assert!(e.contains("even at 250 msgs/s"), "{e}");
    assert!(r.conclusion.contains("No sizing"), "{}", r.conclusion);
    let md = render::markdown(&r);
    assert!(md.contains("No sizing: no step sustained"), "{md}");
}

#[test]
fn a_summary_cut_short_by_time_says_it_is_a_lower_bound() {
    let mut ramp = ramp_after(&[true]);
    ramp.stop(StopReason::TimeBudget);
    let r = summarise(
        &args(&[]),
        machine::describe(),
        vec![step(1, 1000, true)],
        &ramp,
        None,
    );
    assert_eq!(r.stop_reason, StopReason::TimeBudget);
    assert!(r.conclusion.contains("lower bound"), "{}", r.conclusion);
    assert!(r.assumptions.iter().any(|a| a.contains("--max-seconds")));
    // Without a disk baseline or wire figure those stay unknown.
    assert_eq!(r.measured.max_rate_per_raw_fdatasync, None);
    let z = r.sizing.unwrap();
    assert_eq!(z.network_in_bytes_per_s, None);
    // 32,000 / (990 × 0.7) = 46.2 → 47 nodes.
    assert_eq!(z.nodes, 47);
}

/// A real plan, tiny: 20 then 40 msgs/s for 1 s each against a durable
/// node, bound 2 s, then plan.json read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_plan_runs_end_to_end_and_writes_plan_json() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("plan");
    let a = PlanArgs::parse_from([
        "--target-rate",
        "50",
        "--p99-ms",
        "2000",
        "--step-seconds",
        "1",
        "--start-rate",
        "20",
        "--max-rate",
        "40",
        "--refine-steps",
        "0",
        "--partitions",
        "2",
        "--mailboxes",
        "4",
        "--consumers",
        "2",
        "--senders",
        "16",
        "--poll-ms",
        "20",
        "--warmup-seconds",
        "0",
        "--max-seconds",
        "30",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .unwrap();
    let mut seen = Vec::new();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        plan_with_progress(&a, &mut |s| seen.push(s.index)),
    )
    .await
    .expect("the plan is bounded")
    .unwrap();
    write(&a.out, &report).unwrap();
    assert_eq!(seen, [1, 2]);
    // The scratch data directory is gone.
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);

    let text = std::fs::read_to_string(out_dir.join("plan.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["settings"]["target_rate"], 50.0);
    assert_eq!(json["stop_reason"], "max_rate", "{text}");
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for (s, offered) in steps.iter().zip([20, 40]) {
        assert_eq!(s["offered_per_s"], offered);
        assert_eq!(s["scheduled"], offered);
        assert_eq!(s["accepted"], offered, "{s}");
        assert_eq!(s["errors"], 0);
        assert_eq!(s["unsent"], 0);
        assert_eq!(s["passed"], true, "{s}");
        assert_eq!(s["latency"]["count"], offered);
        let p99 = s["latency"]["p99_ms"].as_f64().unwrap();
        assert!(p99 > 0.0 && p99 <= 2000.0, "{p99}");
        // The message's record (1 KiB body) and its acknowledgement's.
        let log = s["log_bytes_per_msg"].as_f64().unwrap();
        assert!(log > 1024.0 && log < 4096.0, "{log}");
        assert!(s["fsyncs_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(s["consumer_errors"], 0);
        assert!(s["drained"].as_bool().unwrap());
        assert!(s["phase"] == "up");
    }
    let max = json["max_rate"].as_f64().unwrap();
    assert!((38.0..=40.0).contains(&max), "{max}");
    assert_eq!(json["max_rate_offered"], 40);
    assert!(json["lowest_failing_rate"].is_null());
    let disk = &json["machine"]["disk"];
    assert!(disk["fdatasync_per_s"].as_f64().unwrap() > 0.0);
    assert!(json["machine"]["available_parallelism"].as_u64().unwrap() >= 1);
    let wire = &json["measured"]["wire"];
    assert!(wire["in_per_msg"].as_u64().unwrap() > 1024);
    assert!(wire["out_per_msg"].as_u64().unwrap() > 1024);
    let sizing = &json["sizing"];
    let nodes = (50.0 / (max * 0.7)).ceil() as u64;
    assert_eq!(sizing["nodes"], nodes);
    assert_eq!(sizing["partitions"], nodes * 2);
    let log = json["measured"]["log_bytes_per_msg"].as_f64().unwrap();
    let disk_total = sizing["disk_write_bytes_per_s"].as_f64().unwrap();
    assert!((disk_total - log * 50.0).abs() < 1e-6);
    assert!(sizing["fsyncs_per_s_per_node"].as_f64().unwrap() > 0.0);
    assert!(sizing["network_mbit_per_s_per_node"].as_f64().unwrap() > 0.0);
    assert!(json["sizing_error"].is_null());
    assert!(!json["conclusion"].as_str().unwrap().is_empty());
    assert!(json["assumptions"].as_array().unwrap().len() >= 8);
    assert!(report.elapsed_s < 30.0, "{}", report.elapsed_s);
    // The file is the report (floats compared as printed: JSON keeps
    // them to the shortest round-trip form, which the parser may read one
    // ulp off).
    let back: PlanReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.settings, report.settings);
    assert_eq!(back.steps.len(), report.steps.len());
    assert_eq!(back.conclusion, report.conclusion);
    assert_eq!(back.sizing.map(|z| z.nodes), report.sizing.map(|z| z.nodes));
    let md = std::fs::read_to_string(out_dir.join("plan.md")).unwrap();
    assert!(md.contains("## Steps") && md.contains("**nodes**"), "{md}");
}

/// A real measurement: `SPINE_PLAN_ARGS="--target-rate 32000 --p99-ms 50
/// --step-seconds 3 --out target/plan" cargo test --release -p spine-sim
/// plan::tests::real -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a real capacity measurement (about a minute): run in release mode on purpose"]
async fn real_plan_from_the_environment() {
    let raw = std::env::var("SPINE_PLAN_ARGS")
        .unwrap_or_else(|_| "--target-rate 32000 --p99-ms 50 --step-seconds 3".into());
    let a = PlanArgs::parse_from(raw.split_whitespace()).unwrap();
    let report = plan(&a).await.unwrap();
    write(&a.out, &report).unwrap();
    println!("{}\n\nwritten to {}", report.conclusion, a.out.display());
}
