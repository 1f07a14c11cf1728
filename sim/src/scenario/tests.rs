//! Scenario parsing and validation tests, and the shipped scenarios.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use spine_core::ErrorCode;

use super::*;
use crate::model::Fault;

/// A small valid scenario; tests edit it.
pub(crate) const MINIMAL: &str = r#"
name = "minimal"
start = "2026-03-02T00:00:00Z"
duration = 3600

[[class]]
name = "hub"
hub = true
organisations = 2

[[class]]
name = "practice"
organisations = 20

[[flow]]
name = "results"
workflow = "PATH_MEDRPT_V3"
rate = 1
from = "hub"
to = "practice"
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text)
}

/// `MINIMAL` with `extra` appended.
fn with(extra: &str) -> Result<Scenario, ScenarioError> {
    parse(&format!("{MINIMAL}\n{extra}"))
}

/// `MINIMAL` with top-level keys `extra` added before its tables.
fn top(extra: &str) -> Result<Scenario, ScenarioError> {
    parse(&format!("{extra}\n{MINIMAL}"))
}

/// `MINIMAL` with the first occurrence of `from` replaced.
fn replaced(from: &str, to: &str) -> Result<Scenario, ScenarioError> {
    assert!(MINIMAL.contains(from), "{from}");
    parse(&MINIMAL.replacen(from, to, 1))
}

#[track_caller]
fn assert_error(result: Result<Scenario, ScenarioError>, code: &str, mentions: &[&str]) {
    let err = match result {
        Ok(_) => panic!("expected {code}, got a valid scenario"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert_eq!(err.code(), code, "{text}");
    assert!(text.starts_with(INLINE_ORIGIN), "{text}");
    for m in mentions {
        assert!(text.contains(m), "{text:?} should mention {m:?}");
    }
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.scale, 1.0);
    assert_eq!(s.max_events, DEFAULT_MAX_EVENTS);
    assert_eq!(s.node, NodeSettings::default());
    assert_eq!(s.node.purge_after(), 30 * 86_400);
    assert_eq!(s.start.to_rfc3339(), "2026-03-02T00:00:00.000000Z");
    assert_eq!(s.end().as_micros() - s.start.as_micros(), 3600 * 1_000_000);
    assert_eq!(s.mailbox_count(), 22);
    let flow = &s.flows[0];
    assert!(flow.registered);
    assert_eq!(flow.size, SizeDist::Fixed(DEFAULT_MESSAGE_BYTES));
    assert_eq!(flow.chunk_bytes, DEFAULT_CHUNK_BYTES);
    assert_eq!(flow.diurnal, Diurnal::Named("flat".into()));
    assert_eq!(s.classes[1].consumer, Consumer::default());
    assert_eq!(s.classes[1].prefix(), "PRA");
}

#[test]
fn native_toml_datetime_start() {
    let s = replaced(
        r#"start = "2026-03-02T00:00:00Z""#,
        "start = 2026-03-02T01:00:00+01:00",
    )
    .unwrap();
    assert_eq!(s.start, parse(MINIMAL).unwrap().start);
    assert_error(
        replaced(
            r#"start = "2026-03-02T00:00:00Z""#,
            "start = 2026-03-02T00:00:00",
        ),
        "SIM_SCENARIO_SYNTAX",
        &["start", "no UTC offset"],
    );
    assert_error(
        replaced(r#"start = "2026-03-02T00:00:00Z""#, "start = 5"),
        "SIM_SCENARIO_SYNTAX",
        &["start", "RFC 3339"],
    );
}

#[test]
fn targets_take_every_form() {
    let s = replaced(r#"to = "practice""#, r#"to = { practice = 3, hub = 1 }"#).unwrap();
    assert_eq!(
        s.flows[0].to,
        Targets::Weighted(vec![("practice".into(), 3.0), ("hub".into(), 1.0)])
    );
    assert_eq!(s.target_shares(&s.flows[0].to), vec![(1, 0.75), (0, 0.25)]);
    let s = replaced(r#"to = "practice""#, r#"to = ["practice", "hub"]"#).unwrap();
    let shares = s.target_shares(&s.flows[0].to);
    assert_eq!(shares, vec![(0, 2.0 / 22.0), (1, 20.0 / 22.0)]);
    let s = replaced(r#"to = "practice""#, r#"to = "any""#).unwrap();
    assert_eq!(s.flows[0].to, Targets::Any);
    assert_eq!(s.target_shares(&Targets::Any).len(), 2);
}

#[test]
fn syntax_errors_name_the_key() {
    // Unknown keys, at every level.
    assert_error(top("colour = 1"), "SIM_SCENARIO_SYNTAX", &["colour"]);
    assert_error(
        replaced("rate = 1", "rat = 1"),
        "SIM_SCENARIO_SYNTAX",
        &["rat", "line"],
    );
    assert_error(
        with("[node]\npartition = 3"),
        "SIM_SCENARIO_SYNTAX",
        &["partition"],
    );
    assert_error(
        replaced(
            "organisations = 20",
            "organisations = 20\n[class.consumer]\nintervl = 5",
        ),
        "SIM_SCENARIO_SYNTAX",
        &["intervl"],
    );
    assert_error(
        with("[[fault]]\nat = 5\nkind = \"disk_stall\"\nmilis = 3"),
        "SIM_SCENARIO_SYNTAX",
        &["milis"],
    );
    // Wrong types and values their types refuse.
    assert_error(
        replaced("duration = 3600", "duration = \"an hour\""),
        "SIM_SCENARIO_SYNTAX",
        &["duration"],
    );
    assert_error(
        replaced("duration = 3600", "duration = -5"),
        "SIM_SCENARIO_SYNTAX",
        &["duration"],
    );
    assert_error(
        replaced(r#"workflow = "PATH_MEDRPT_V3""#, r#"workflow = "http://x""#),
        "SIM_SCENARIO_SYNTAX",
        &["workflow"],
    );
    assert_error(
        with("[[fault]]\nat = 5\nkind = \"meteor_strike\""),
        "SIM_SCENARIO_SYNTAX",
        &["meteor_strike", "partition_panic"],
    );
    assert_error(
        with("[[flow]]\nname = \"x\"\nworkflow = \"W\"\nrate = 1\nfrom = \"hub\"\nto = 7"),
        "SIM_SCENARIO_SYNTAX",
        &["to", "class name"],
    );
    assert_error(
        replaced(
            r#"to = "practice""#,
            "to = \"practice\"\nsize = { gaussian = 5 }",
        ),
        "SIM_SCENARIO_SYNTAX",
        &["gaussian", "lognormal"],
    );
    assert_error(
        replaced(
            r#"to = "practice""#,
            "to = \"practice\"\nsize = { uniform = { min = 1, max = 2, mean = 1 } }",
        ),
        "SIM_SCENARIO_SYNTAX",
        &["mean"],
    );
    assert_error(parse("name = "), "SIM_SCENARIO_SYNTAX", &["line 1"]);
    assert_error(
        parse(&MINIMAL.replace("[[flow]]", "[[flows]]")),
        "SIM_SCENARIO_SYNTAX",
        &["flows"],
    );
}

#[test]
fn validation_errors_name_the_key() {
    let cases: Vec<(Result<Scenario, ScenarioError>, &str, Vec<&str>)> = vec![
        (replaced("duration = 3600", "duration = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`duration`"]),
        (top("scale = 0.0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`scale`", "above 0"]),
        (top("scale = 1.5"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`scale`"]),
        (top("scale = nan"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`scale`"]),
        (top("max_events = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`max_events`"]),
        (top("name2 = 1"), "SIM_SCENARIO_SYNTAX", vec!["name2"]),
        (replaced(r#"name = "minimal""#, r#"name = " ""#), "SIM_SCENARIO_INVALID", vec!["`name`"]),
        (with("[node]\npartitions = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.partitions`", "1 to 4096"]),
        (with("[node]\ninbox_expiry = 100\npurge_after = 50"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.purge_after`"]),
        (with("[node]\nexpiry_tick = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.expiry_tick`"]),
        (with("[node]\nsample_interval = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.sample_interval`"]),
        (with("[node]\nmemory_limit_bytes = 5"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.memory_limit_bytes`"]),
        (with("[node]\nservice_requests_per_send = 1001"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`node.service_requests_per_send`"]),
        (replaced("organisations = 20", "organisations = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].organisations`"]),
        (replaced(r#"name = "practice""#, r#"name = "hub""#), "SIM_SCENARIO_DUPLICATE", vec!["`class[1].name`", "hub"]),
        (replaced(r#"name = "practice""#, r#"name = "Practice""#), "SIM_SCENARIO_INVALID", vec!["`class[1].name`"]),
        (replaced(r#"name = "practice""#, r#"name = "any""#), "SIM_SCENARIO_INVALID", vec!["`class[1].name`", "any"]),
        (replaced("organisations = 20", "organisations = 20\nods_prefix = \"HUB\""), "SIM_SCENARIO_INVALID", vec!["`class[1].ods_prefix`", "class[0]"]),
        (replaced("organisations = 20", "organisations = 20\nods_prefix = \"P1\""), "SIM_SCENARIO_INVALID", vec!["`class[1].ods_prefix`", "letters"]),
        (replaced("organisations = 20", "organisations = 1000000\nods_prefix = \"ABCD\""), "SIM_SCENARIO_INVALID", vec!["`class[1].ods_prefix`", "shorten"]),
        (replaced("organisations = 20", "organisations = 20\nskew = -1"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].skew`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\ninterval = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.interval`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\ninterval = 60\ninterval_max = 30"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.interval_max`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\nbatch = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.batch`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\nslow_fraction = 0.7\nabsent_fraction = 0.5"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.slow_fraction`", "absent_fraction"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\nabsent_fraction = 2"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.absent_fraction`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\nslow_factor = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.slow_factor`"]),
        (replaced("organisations = 20", "organisations = 20\n[class.consumer]\nmode = \"push\"\ndelay_ms = 100000000"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`class[1].consumer.delay_ms`"]),
        (replaced("rate = 1", "rate = -1"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].rate`"]),
        (replaced(r#"to = "practice""#, r#"to = "pharmacy""#), "SIM_SCENARIO_UNKNOWN_NAME", vec!["`flow[0].to`", "pharmacy", "hub, practice"]),
        (replaced(r#"from = "hub""#, r#"from = ["hub", "gp"]"#), "SIM_SCENARIO_UNKNOWN_NAME", vec!["`flow[0].from`", "gp"]),
        (replaced(r#"from = "hub""#, r#"from = ["hub", "hub"]"#), "SIM_SCENARIO_DUPLICATE", vec!["`flow[0].from`"]),
        (replaced(r#"from = "hub""#, r#"from = ["hub", "any"]"#), "SIM_SCENARIO_INVALID", vec!["`flow[0].from`", "any"]),
        (replaced(r#"from = "hub""#, "from = []"), "SIM_SCENARIO_INVALID", vec!["`flow[0].from`", "empty"]),
        (replaced(r#"to = "practice""#, "to = { practice = 0 }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].to.practice`"]),
        (replaced(r#"to = "practice""#, "to = {}"), "SIM_SCENARIO_INVALID", vec!["`flow[0].to`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\ndiurnal = \"weekend\""), "SIM_SCENARIO_UNKNOWN_NAME", vec!["`flow[0].diurnal`", "uk-working-hours"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\ndiurnal = [1, 2, 3]"), "SIM_SCENARIO_INVALID", vec!["`flow[0].diurnal`", "24"]),
        (replaced(r#"to = "practice""#, &format!("to = \"practice\"\ndiurnal = [{}]", ["0"; 24].join(","))), "SIM_SCENARIO_INVALID", vec!["`flow[0].diurnal`", "zeros"]),
        (replaced(r#"to = "practice""#, &format!("to = \"practice\"\ndiurnal = [-1{}]", ",1".repeat(23))), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].diurnal[0]`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { fixed = 0 }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.fixed`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { uniform = { min = 9, max = 3 } }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.uniform.min`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { lognormal = { median = 100, sigma = 9 } }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.lognormal.sigma`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { lognormal = { median = 100, sigma = 1, min = 500, max = 200 } }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.lognormal.min`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { lognormal = { median = 1000000000000, sigma = 1 } }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.lognormal.median`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { lognormal = { median = 10000000000, sigma = 1 } }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.lognormal.max`", "set max"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { mix = [] }"), "SIM_SCENARIO_INVALID", vec!["`flow[0].size.mix`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { mix = [{ weight = 0, size = { fixed = 5 } }] }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].size.mix[0].weight`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nsize = { mix = [{ weight = 1, size = { mix = [{ weight = 1, size = { fixed = 5 } }] } }] }"), "SIM_SCENARIO_INVALID", vec!["`flow[0].size.mix[0].size.mix`", "one mix"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nchunk_bytes = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].chunk_bytes`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nchunk_bytes = 20000000"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].chunk_bytes`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\nchunk_bytes = 1\nsize = { fixed = 200000 }"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].chunk_bytes`", "chunks"]),
        (with("[[peak]]\nat = 3600\nduration = 5\nmultiplier = 2"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`peak[0].at`"]),
        (with("[[peak]]\nat = 0\nduration = 0\nmultiplier = 2"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`peak[0].duration`"]),
        (with("[[peak]]\nat = 0\nduration = 5\nmultiplier = 2000"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`peak[0].multiplier`"]),
        (replaced(r#"to = "practice""#, "to = \"practice\"\n[[flow.peak]]\nat = 0\nduration = 5\nmultiplier = -2"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`flow[0].peak[0].multiplier`"]),
        (with("[[fault]]\nat = 4000\nkind = \"node_crash\""), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].at`"]),
        (with("[[fault]]\nat = 5\nkind = \"node_crash\"\nmillis = 5"), "SIM_SCENARIO_INVALID", vec!["`fault[0].millis`", "node_crash", "no parameters"]),
        (with("[[fault]]\nat = 5\nkind = \"disk_stall\"\nframes = 5"), "SIM_SCENARIO_INVALID", vec!["`fault[0].frames`", "only millis, duration"]),
        (with("[[fault]]\nat = 5\nkind = \"partition_panic\"\npartition = 8"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].partition`", "8 partitions"]),
        (with("[[fault]]\nat = 5\nkind = \"disk_stall\"\nmillis = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].millis`"]),
        (with("[[fault]]\nat = 5\nkind = \"disk_stall\"\nduration = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].duration`"]),
        (with("[[fault]]\nat = 5\nkind = \"reconnect_storm\"\nconnections = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].connections`"]),
        (with("[[fault]]\nat = 5\nkind = \"malformed_input\"\nframes = 0"), "SIM_SCENARIO_OUT_OF_RANGE", vec!["`fault[0].frames`"]),
        (with("[[flow]]\nname = \"results\"\nworkflow = \"W\"\nrate = 1\nfrom = \"hub\"\nto = \"hub\""), "SIM_SCENARIO_DUPLICATE", vec!["`flow[1].name`", "results"]),
        (with("[[flow]]\nname = \"more\"\nworkflow = \"PATH_MEDRPT_V3\"\nregistered = false\nrate = 1\nfrom = \"hub\"\nto = \"hub\""), "SIM_SCENARIO_INVALID", vec!["`flow[1].registered`", "flow[0]"]),
        (replaced("rate = 1", "rate = 1000000"), "SIM_SCENARIO_TOO_MANY_EVENTS", vec!["max_events", "scale"]),
    ];
    for (result, code, mentions) in cases {
        assert_error(result, code, &mentions);
    }
}

#[test]
fn empty_sections_are_refused() {
    let no_flows = "flow = []\n".to_owned() + MINIMAL.split("[[flow]]").next().unwrap_or_default();
    assert_error(
        parse(&no_flows),
        "SIM_SCENARIO_INVALID",
        &["`flow`", "at least one"],
    );
    let start = MINIMAL.find("[[class]]").unwrap();
    let end = MINIMAL.find("[[flow]]").unwrap();
    let no_classes = format!("{}class = []\n{}", &MINIMAL[..start], &MINIMAL[end..]);
    assert_error(parse(&no_classes), "SIM_SCENARIO_INVALID", &["`class`"]);
}

#[test]
fn error_codes_and_accessors() {
    let e = Scenario::load("/nonexistent/scenario.toml").unwrap_err();
    assert_eq!(e.code(), "SIM_SCENARIO_READ");
    assert_eq!(ErrorCode::code(&e), "SIM_SCENARIO_READ");
    assert_eq!(e.file(), "/nonexistent/scenario.toml");
    assert!(e.to_string().contains("/nonexistent/scenario.toml"));
    assert_eq!(e.key(), None);
    let e = replaced("rate = 1", "rate = -1").unwrap_err();
    assert_eq!(e.key(), Some("flow[0].rate"));
    let e = Scenario::parse_from("x = ", "my.toml").unwrap_err();
    assert_eq!(e.file(), "my.toml");
    assert!(e.to_string().starts_with("my.toml: "));
    let e = replaced("rate = 1", "rate = 1000000").unwrap_err();
    assert_eq!(e.key(), Some("max_events"));
}

#[test]
fn load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, MINIMAL.replace("rate = 1", "rate = -1")).unwrap();
    let e = Scenario::load(&path).unwrap_err();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(Scenario::load(&path).unwrap(), parse(MINIMAL).unwrap());
}

#[test]
fn validate_catches_edits_after_loading() {
    let mut s = parse(MINIMAL).unwrap();
    s.validate().unwrap();
    s.scale = 0.0;
    assert_eq!(s.validate().unwrap_err().key(), Some("scale"));
}

#[test]
fn faults_convert_with_defaults() {
    let s = with(
        "[[fault]]\nat = 1\nkind = \"partition_panic\"\n\
         [[fault]]\nat = 2\nkind = \"disk_stall\"\n\
         [[fault]]\nat = 3\nkind = \"disk_stall\"\nmillis = 7\nduration = 9\n\
         [[fault]]\nat = 4\nkind = \"node_crash\"\n\
         [[fault]]\nat = 5\nkind = \"fsync_failure\"\n\
         [[fault]]\nat = 6\nkind = \"drop_connections\"\n\
         [[fault]]\nat = 7\nkind = \"reconnect_storm\"\n\
         [[fault]]\nat = 8\nkind = \"malformed_input\"\nframes = 3\n",
    )
    .unwrap();
    let faults: Vec<Fault> = s.faults.iter().map(FaultSpec::fault).collect();
    assert_eq!(
        faults,
        vec![
            Fault::PartitionPanic { partition: 0 },
            Fault::DiskStall {
                millis: DEFAULT_STALL_MILLIS,
                duration_secs: DEFAULT_STALL_SECS
            },
            Fault::DiskStall {
                millis: 7,
                duration_secs: 9
            },
            Fault::NodeCrash,
            Fault::FsyncFailure,
            Fault::DropConnections,
            Fault::ReconnectStorm {
                connections: DEFAULT_STORM_CONNECTIONS
            },
            Fault::MalformedInput { frames: 3 },
        ]
    );
    for f in &s.faults {
        assert!(!f.kind.name().is_empty());
    }
}

#[test]
fn class_layout_puts_hubs_first() {
    let text = MINIMAL.replace("hub = true\n", "").replace(
        "name = \"practice\"\norganisations = 20",
        "name = \"practice\"\norganisations = 20\nhub = true\nmailboxes_per_organisation = 3",
    );
    let s = parse(&text).unwrap();
    assert_eq!(
        s.class_spans(),
        vec![
            ClassSpan {
                class: 1,
                first: 0,
                len: 60
            },
            ClassSpan {
                class: 0,
                first: 60,
                len: 2
            },
        ]
    );
}

#[test]
fn rate_model_follows_diurnal_curve_and_peaks() {
    let s = parse(&format!(
        "scale = 0.5\n{MINIMAL}\n[[peak]]\nat = 600\nduration = 600\nmultiplier = 10"
    ))
    .unwrap();
    let m = RateModel::new(&s, &s.flows[0]);
    assert_eq!(m.segment(0.0), (0.5, 600.0));
    assert_eq!(m.segment(600.0), (5.0, 1200.0));
    assert_eq!(m.segment(1199.0), (5.0, 1200.0));
    assert_eq!(m.segment(1200.0), (0.5, 3600.0));
    assert!((m.expected(0.0, 3600.0) - (0.5 * 3000.0 + 5.0 * 600.0)).abs() < 1e-9);
    assert!((s.rate_at(700.0) - 5.0).abs() < 1e-12);

    // The UK curve is normalised to mean 1 and shaped like a working day.
    let uk = Diurnal::Named("uk-working-hours".into())
        .multipliers()
        .unwrap();
    assert!((uk.iter().sum::<f64>() - 24.0).abs() < 1e-9);
    assert!(uk[10] > 2.0 && uk[3] < 0.5);
    let s = replaced(
        r#"to = "practice""#,
        "to = \"practice\"\ndiurnal = \"uk-working-hours\"",
    )
    .unwrap();
    let s = Scenario {
        duration: 86_400,
        ..s
    };
    let m = RateModel::new(&s, &s.flows[0]);
    assert!((m.expected(0.0, 86_400.0) - 86_400.0).abs() < 1e-6);
    assert_eq!(m.segment(10.5 * 3600.0), (uk[10], 11.0 * 3600.0));
    // A start off the hour: segments still end on UTC hours.
    let s = Scenario {
        start: parse_rfc3339("2026-03-02T10:30:00Z").unwrap(),
        ..s
    };
    let m = RateModel::new(&s, &s.flows[0]);
    assert_eq!(m.segment(0.0), (uk[10], 1800.0));
    assert_eq!(m.segment(1800.0), (uk[11], 5400.0));
    // A start late in the day wraps to hour 0.
    let s = Scenario {
        start: parse_rfc3339("2026-03-02T23:00:00Z").unwrap(),
        ..s
    };
    let m = RateModel::new(&s, &s.flows[0]);
    assert_eq!(m.segment(3600.0).0, uk[0]);
}

#[test]
fn estimate_counts_sends_polls_and_ticks() {
    let s = with("[node]\nexpiry_tick = 60\nsample_interval = 600").unwrap();
    let e = s.estimate();
    assert!((e.sends - 3600.0).abs() < 1e-9);
    assert_eq!(e.expiry_ticks, 60);
    assert_eq!(e.samples, 7);
    assert_eq!(e.faults, 0);
    // Polls follow traffic: at most one per message.
    assert!(e.polls <= e.sends + 1e-9);
    assert_eq!(e.mean_bytes, DEFAULT_MESSAGE_BYTES as f64);
    // Idle polling: 20 practices every 600 s, hubs too (they send).
    let idle = replaced(
        "organisations = 20",
        "organisations = 20\n[class.consumer]\nidle_polls = true",
    )
    .unwrap();
    let polls = idle.estimate().polls;
    assert!((polls - 20.0 * 6.0).abs() < 1e-9, "{polls}");
}

/// The directory holding the shipped scenarios.
fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn every_shipped_scenario_parses_and_validates() {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(scenario_dir()).unwrap();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert_eq!(s.name, stem, "a scenario's name matches its file");
        assert!(!s.description.is_empty(), "{stem} has a description");
        if stem.ends_with("-short") {
            // Small enough for the deterministic driver in CI.
            let estimated = s.estimated_events();
            assert!(estimated <= 20_000, "{stem}: {estimated} events");
            assert!(
                s.mailbox_count() <= 500,
                "{stem}: {} mailboxes",
                s.mailbox_count()
            );
        }
        names.push(stem);
    }
    names.sort();
    for required in [
        "national-day",
        "national-peak",
        "mesh-bulk-files",
        "game-day",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} is shipped");
        let short = format!("{required}-short");
        assert!(names.contains(&short), "{short} is shipped");
    }
}

#[test]
fn shipped_scenarios_say_what_the_issue_asks() {
    let load = |name: &str| Scenario::load(scenario_dir().join(format!("{name}.toml"))).unwrap();
    // national-day: 26,000 organisations, 1.3 billion messages a month.
    let day = load("national-day");
    let organisations: u32 = day.classes.iter().map(|c| c.organisations).sum();
    assert_eq!(organisations, 26_000);
    let per_day = day.estimate().sends / day.scale;
    let per_month = per_day * 30.0;
    assert!((1.25e9..1.35e9).contains(&per_month), "{per_month}");
    // national-peak: 3,200 msgs/s, then 10x.
    let peak = load("national-peak");
    let national = |s: &Scenario, t: f64| s.rate_at(t) / s.scale;
    assert!((national(&peak, 0.0) - 3200.0).abs() < 1e-6);
    assert!((national(&peak, 700.0) - 32_000.0).abs() < 1e-6);
    let short = load("national-peak-short");
    assert!((national(&short, 0.0) - 3200.0).abs() < 1e-6);
    assert!((national(&short, 150.0) - 32_000.0).abs() < 1e-6);
    // mesh-bulk-files: some messages need many chunks, most one.
    for name in ["mesh-bulk-files", "mesh-bulk-files-short"] {
        let bulk = load(name);
        assert!(bulk
            .flows
            .iter()
            .any(|f| f.chunks_for(f.size.bounds().1) > 4));
        assert!(bulk
            .flows
            .iter()
            .any(|f| f.chunks_for(f.size.bounds().1) == 1));
    }
    // game-day: every fault kind, during a peak.
    for name in ["game-day", "game-day-short"] {
        let game = load(name);
        let kinds: std::collections::BTreeSet<&str> =
            game.faults.iter().map(|f| f.kind.name()).collect();
        assert_eq!(kinds.len(), 7, "{name}: {kinds:?}");
        let peak = &game.peaks[0];
        assert!(game
            .faults
            .iter()
            .all(|f| f.at >= peak.at && f.at < peak.end()));
    }
}

proptest! {
    /// Whatever the text, parsing returns a value or an error, never panics.
    #[test]
    fn parse_never_panics(text in "[ -~\n]{0,200}") {
        let _ = Scenario::parse(&text);
    }

    /// Mutating one number of a valid scenario never panics, and any error
    /// names a key or is a syntax error.
    #[test]
    fn mutated_numbers_never_panic(
        rate in -10.0f64..1e7,
        duration in 0u64..40_000_000,
        scale in -1.0f64..2.0,
        orgs in 0u32..2_000_000,
    ) {
        let text = format!("scale = {scale:?}\n")
            + &MINIMAL
            .replace("rate = 1", &format!("rate = {rate:?}"))
            .replace("duration = 3600", &format!("duration = {duration}"))
            .replace("organisations = 20", &format!("organisations = {orgs}"));
        match Scenario::parse(&text) {
            Ok(s) => prop_assert!(s.estimated_events() <= s.max_events),
            Err(e) => prop_assert!(e.key().is_some() || e.code() == "SIM_SCENARIO_SYNTAX"),
        }
    }
}

#[test]
fn the_readme_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string(scenario_dir().join("README.md")).unwrap();
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let s = Scenario::parse(&readme[start..end]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.classes.len(), 2);
    assert_eq!(s.faults.len(), 5);
    assert_eq!(s.flows[0].peaks.len(), 1);
}
