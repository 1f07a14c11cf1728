//! Whole-report tests: a recorded run written to a directory, read back.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use spine_core::time::Timestamp;
use spine_core::ErrorCode;

use super::xml_check::{check_well_formed, polyline_series};
use super::*;

fn t0() -> Timestamp {
    Timestamp::from_unix_seconds(1_750_000_000)
}

fn at(secs: u64) -> Timestamp {
    t0().saturating_add(Duration::from_secs(secs))
}

/// A one-hour run with traffic, samples, a fault and a broken invariant.
fn sample_run() -> (Outcome, Recorder) {
    let mut r = Recorder::new(t0(), Duration::from_secs(60));
    let mut bytes = 0u64;
    let mut fsyncs = 0u64;
    for s in 0..3600u64 {
        r.send_accepted(at(s), Duration::from_micros(200 + s % 50), 2_048);
        if s % 2 == 0 {
            r.delivered(at(s), Duration::from_millis(40 + s % 100));
        }
        if s % 600 == 599 {
            r.send_refused(at(s), "NODE_SHUTTING_DOWN");
        }
        // Four look-ups a second; one refused every 15 minutes.
        let busy = BTreeMap::from([("SVC_BUSY".to_owned(), 1)]);
        if s % 900 == 0 {
            r.service_requests(at(s), 3, &busy);
        } else {
            r.service_requests(at(s), 4, &BTreeMap::new());
        }
        bytes += 2_100;
        fsyncs += 1;
        if s % 30 == 0 {
            r.queue_depth(at(s), (s % 17) as usize, (s % 5) as usize);
            r.wal(at(s), bytes, fsyncs);
            r.memory(at(s), 100 << 20);
        }
    }
    r.expired(at(1800), 3);
    r.report_received(at(1801));
    r.fault(at(1200), "node crash | restart <from log>");
    r.set_end(at(3600));
    let outcome = Outcome {
        scenario: "game-day-short".to_owned(),
        seed: 42,
        mode: Mode::Deterministic,
        scale: 0.01,
        event_log_hash: "ab".repeat(32),
        events_processed: 9_000,
        virtual_duration: Duration::from_secs(3600),
        wall_duration: Duration::from_millis(1_500),
        totals: Totals {
            sent: 3600,
            refused: BTreeMap::from([("NODE_SHUTTING_DOWN".to_owned(), 6)]),
            delivered: 1800,
            expired: 3,
            reports: 1,
            lost: 0,
            misdelivered: 0,
            out_of_order: 1,
            services: r.service_totals(),
        },
        invariants: vec![
            InvariantResult {
                name: "no_acknowledged_message_lost".to_owned(),
                ok: true,
                detail: None,
            },
            InvariantResult {
                name: "per_mailbox_order".to_owned(),
                ok: false,
                detail: Some("seed 42, event #1234: X0001 got m7 before m6".to_owned()),
            },
        ],
    };
    (outcome, r)
}

#[test]
fn report_json_round_trips_with_the_expected_fields() {
    let (outcome, recorder) = sample_run();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("nested/out");
    let (report, files) = write_outcome(&out, &outcome, &recorder).expect("write");
    assert_eq!(files.json, out.join(REPORT_JSON));

    let text = fs::read_to_string(&files.json).expect("read report.json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let obj = value.as_object().expect("object");
    for field in [
        "schema_version",
        "scenario",
        "seed",
        "mode",
        "scale",
        "event_log_hash",
        "passed",
        "events_processed",
        "virtual_start",
        "virtual_duration_secs",
        "wall_duration_secs",
        "bucket_secs",
        "totals",
        "invariants",
        "latency",
        "throughput",
        "latency_over_time",
        "queue_depth",
        "wal",
        "memory",
        "faults",
        "recorder",
    ] {
        assert!(obj.contains_key(field), "missing {field}");
    }
    assert_eq!(value["event_log_hash"], "ab".repeat(32));
    assert_eq!(value["mode"], "deterministic");
    assert_eq!(value["seed"], 42);
    assert_eq!(value["passed"], false);
    assert_eq!(value["totals"]["refused"]["NODE_SHUTTING_DOWN"], 6);
    assert_eq!(value["schema_version"], 2);
    let services = &value["totals"]["services"];
    assert_eq!(services["issued"], 14_400, "{services}");
    assert_eq!(services["ok"], 14_396, "{services}");
    assert_eq!(services["failed"]["SVC_BUSY"], 4, "{services}");
    assert_eq!(value["throughput"][0]["service_ok"], 239);
    assert_eq!(value["throughput"][0]["service_failed"], 1);
    assert_eq!(value["throughput"][1]["service_per_sec"], 4.0);
    assert_eq!(value["invariants"][1]["ok"], false);
    assert!(value["invariants"][1]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("event #1234")));
    assert_eq!(value["throughput"].as_array().map(Vec::len), Some(60));
    assert!(value["latency"]["end_to_end_virtual"]["p99_us"].is_u64());
    assert!(value["latency"]["send_wall"]["p50_us"].is_u64());
    assert!(value["latency_over_time"][0]["end_to_end_virtual"]["p50_us"].is_u64());
    assert!(value["wal"][5]["bytes_per_sec"].is_f64());
    assert_eq!(value["queue_depth"][0]["deepest_partition_max"], 13);
    assert_eq!(value["memory"][0]["rss_bytes_max"], 100u64 << 20);
    assert_eq!(value["faults"][0]["t"], 1200.0);

    // Back into the typed form: integers and strings exactly, floats to
    // within rounding of the text form.
    let back: Report = serde_json::from_str(&text).expect("typed");
    assert_eq!(back.event_log_hash, report.event_log_hash);
    assert_eq!(back.totals, report.totals);
    assert_eq!(back.invariants, report.invariants);
    assert_eq!(back.latency, report.latency);
    assert_eq!(back.queue_depth, report.queue_depth);
    assert_eq!(back.memory, report.memory);
    assert_eq!(back.faults, report.faults);
    assert_eq!(back.throughput.len(), report.throughput.len());
    for (a, b) in back.wal.iter().zip(&report.wal) {
        let (x, y) = (
            a.bytes_per_sec.unwrap_or(0.0),
            b.bytes_per_sec.unwrap_or(0.0),
        );
        assert!((x - y).abs() <= y.abs() * 1e-12, "{x} vs {y}");
    }
}

#[test]
fn rates_in_the_report_match_the_run() {
    let (outcome, recorder) = sample_run();
    let report = Report::build(&outcome, &recorder);
    // One send a second throughout.
    assert!(report
        .throughput
        .iter()
        .all(|p| (p.accepted_per_sec - 1.0).abs() < 1e-9));
    // 2100 WAL bytes and one fsync per virtual second, once there is a
    // previous reading.
    for w in report.wal.iter().skip(1) {
        let bytes = w.bytes_per_sec.expect("bytes rate");
        let fsyncs = w.fsyncs_per_sec.expect("fsync rate");
        assert!((bytes - 2_100.0).abs() < 1e-6, "{bytes}");
        assert!((fsyncs - 1.0).abs() < 1e-9, "{fsyncs}");
    }
    assert!((report.speedup - 2_400.0).abs() < 1e-6);
    assert!((report.events_per_wall_sec - 6_000.0).abs() < 1e-6);
    let e2e = report.latency.end_to_end_virtual.expect("e2e");
    assert_eq!(e2e.count, 1800);
    assert!(e2e.p50_us >= 80_000 && e2e.p50_us <= 100_000, "{e2e:?}");
}

#[test]
fn svgs_are_well_formed_with_every_series() {
    let (outcome, recorder) = sample_run();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, files) = write_outcome(dir.path(), &outcome, &recorder).expect("write");
    assert_eq!(files.charts.len(), 3);
    let expected: [(&str, &[&str]); 3] = [
        (
            THROUGHPUT_SVG,
            &[
                "accepted/s",
                "delivered/s",
                "refused/s",
                "expired/s",
                "payload bytes/s",
                "WAL bytes/s",
            ],
        ),
        (
            LATENCY_SVG,
            &[
                "end-to-end p50",
                "end-to-end p99",
                "end-to-end max",
                "send p50",
                "send p99",
                "send p99.9",
            ],
        ),
        (
            QUEUE_DEPTH_SVG,
            &["deepest partition queue", "WAL appends in flight"],
        ),
    ];
    for (name, series) in expected {
        let svg = fs::read_to_string(dir.path().join(name)).expect("read svg");
        check_well_formed(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(polyline_series(&svg), series, "{name}");
        // Every series with data has points.
        assert!(!svg.contains("points=\"\""), "{name} has an empty series");
        // The fault is marked, escaped.
        assert!(svg.contains("class=\"fault\""), "{name}");
        assert!(
            svg.contains("node crash | restart &lt;from log&gt;"),
            "{name}"
        );
        // Time axis in HH:MM of virtual time (start 15:06:40 UTC).
        assert!(svg.contains(">15:10<") && svg.contains(">16:00<"), "{name}");
    }
}

#[test]
fn markdown_has_verdict_tables_charts_and_faults() {
    let (outcome, recorder) = sample_run();
    let report = Report::build(&outcome, &recorder);
    let md = markdown::render(&report);
    assert!(md.contains("**Result: FAIL**: 1 of 2 invariants broken (seed 42)"));
    assert!(md.contains("| per_mailbox_order | **FAIL** | seed 42, event #1234"));
    assert!(md.contains("| no_acknowledged_message_lost | PASS |"));
    assert!(md.contains(&format!("`{}`", "ab".repeat(32))));
    assert!(md.contains("| End to end (virtual) | 1,800 |"));
    assert!(md.contains("| Send (wall) | 3,600 |"));
    assert!(md.contains("![Throughput over virtual time](throughput.svg)"));
    assert!(md.contains("![Latency over virtual time](latency.svg)"));
    assert!(md.contains("![Queue depth over virtual time](queue_depth.svg)"));
    assert!(md.contains(
        "| F1 | 2025-06-15 15:26:40 | +00:20:00 | node crash \\| restart &lt;from log&gt; |"
    ));
    assert!(md.contains("| `NODE_SHUTTING_DOWN` | 6 |"));
    assert!(md.contains("## Service requests"), "{md}");
    assert!(md.contains("| 14,400 | 14,396 | 4 |"), "{md}");
    assert!(md.contains("| `SVC_BUSY` | 4 |"), "{md}");
    assert!(
        md.contains("**4 of 14,400 service requests failed.**"),
        "{md}"
    );
    assert!(md.contains("| Service requests per second | 4.0 |"), "{md}");
}

#[test]
fn an_empty_run_still_writes_a_valid_report() {
    let recorder = Recorder::new(t0(), Duration::from_secs(60));
    let outcome = Outcome {
        scenario: String::new(),
        seed: 0,
        mode: Mode::Live,
        scale: f64::NAN,
        event_log_hash: String::new(),
        events_processed: 0,
        virtual_duration: Duration::ZERO,
        wall_duration: Duration::ZERO,
        totals: Totals::default(),
        invariants: vec![],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (report, _) = write_outcome(dir.path(), &outcome, &recorder).expect("write");
    assert!(report.passed);
    assert_eq!(report.scale, 0.0);
    let text = fs::read_to_string(dir.path().join(REPORT_JSON)).expect("read");
    let back: Report = serde_json::from_str(&text).expect("typed");
    assert_eq!(back, report);
    for name in [THROUGHPUT_SVG, LATENCY_SVG, QUEUE_DEPTH_SVG] {
        let svg = fs::read_to_string(dir.path().join(name)).expect("read svg");
        check_well_formed(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let md = fs::read_to_string(dir.path().join(REPORT_MD)).expect("read md");
    assert!(md.contains("No invariants were checked."));
    assert!(md.contains("No faults were injected."));
    assert!(md.contains("No national-service requests were made"));
    assert!(md.contains("| Service requests per second | - | not sampled |"));
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    let (outcome, recorder) = sample_run();
    let dir = tempfile::tempdir().expect("tempdir");
    // A path through a regular file cannot be created, even by root.
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").expect("write file");
    let target = file.join("out");
    let err = write_outcome(&target, &outcome, &recorder).expect_err("must fail");
    assert_eq!(err.code(), "SIM_REPORT_CREATE_DIR");
    let msg = err.to_string();
    assert!(msg.contains("cannot create the report directory"), "{msg}");
    assert!(msg.contains("not-a-dir/out"), "{msg}");
    assert!(msg.contains("--out DIR"), "{msg}");

    // The directory exists but a report file cannot be written: its name
    // is taken by a directory.
    let out = dir.path().join("out2");
    fs::create_dir_all(out.join(REPORT_JSON)).expect("mkdir");
    let err = write_outcome(&out, &outcome, &recorder).expect_err("must fail");
    assert_eq!(err.code(), "SIM_REPORT_WRITE");
    assert!(err.to_string().contains("report.json"), "{err}");
    assert!(
        !out.join(".report.json.tmp").exists(),
        "temporary file left"
    );
}

#[test]
fn rewriting_replaces_the_files() {
    let (outcome, recorder) = sample_run();
    let dir = tempfile::tempdir().expect("tempdir");
    write_outcome(dir.path(), &outcome, &recorder).expect("first");
    let mut second = outcome.clone();
    second.event_log_hash = "cd".repeat(32);
    write_outcome(dir.path(), &second, &recorder).expect("second");
    let text = fs::read_to_string(dir.path().join(REPORT_JSON)).expect("read");
    assert!(text.contains(&"cd".repeat(32)));
    let names: Vec<_> = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    assert_eq!(names.len(), 5, "{names:?}");
}
