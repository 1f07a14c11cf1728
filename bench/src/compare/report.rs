//! The comparison's results: the data model written to `report.json`,
//! Spine's ratios to each peer, the verdict against the issue's target,
//! and the `report.md` table.
//!
//! Invariants:
//! - Every requested mode has exactly one row: a peer that could not be
//!   run is a row saying `not run: <why>`, never a missing row or an error.
//! - Ratios are computed from the max-rate runs only, and only between
//!   modes that ran with a non-zero throughput; anything else is `None`
//!   (`n/a` in the table), never infinite or NaN.
//! - Each row states whether its acknowledgement means durable.

use std::fmt::Write as _;

use serde::Serialize;

use super::machine::{FsyncBaseline, Machine};
use super::mode::Mode;
use crate::report::Latency;

/// One measured run (max-rate, or one fixed offered load).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RunResult {
    /// `None` for the max-rate run.
    pub(crate) offered_msgs_per_s: Option<f64>,
    pub(crate) throughput_msgs_per_s: f64,
    pub(crate) latency_us: Latency,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) send_errors: u64,
    pub(crate) consumer_errors: u64,
    pub(crate) drain_s: f64,
    pub(crate) first_errors: Vec<String>,
}

/// Whether a mode ran.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Status {
    Ran,
    NotRun { reason: String },
}

/// Spine's standing against one peer (max-rate runs).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Ratio {
    /// Spine's throughput over the peer's.
    pub(crate) throughput: Option<f64>,
    /// Spine's p99 over the peer's (below 1: Spine's is lower).
    pub(crate) p99: Option<f64>,
}

/// One row: a mode and its runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct PeerResult {
    pub(crate) mode: String,
    pub(crate) version: Option<String>,
    pub(crate) durable_ack: bool,
    pub(crate) ack_means: String,
    #[serde(flatten)]
    pub(crate) status: Status,
    pub(crate) max_rate: Option<RunResult>,
    pub(crate) fixed_rate: Vec<RunResult>,
    /// Offered loads skipped because they were far above what the peer
    /// sustained at max rate.
    pub(crate) skipped_rates: Vec<f64>,
    /// Spine's ratio to this peer (absent on Spine's own row).
    pub(crate) spine_ratio: Option<Ratio>,
    /// The raw 1 KiB write + `fdatasync` rate measured just before this
    /// mode's max-rate run, on the same filesystem: this machine's disk
    /// varies several-fold between minutes, and every durable row stands
    /// on it.
    pub(crate) disk_syncs_per_s: Option<f64>,
    /// How each run's server stopped, in run order.
    pub(crate) stopped: Vec<String>,
    /// Fixed-rate runs that failed, and why.
    pub(crate) failed_runs: Vec<String>,
}

impl PeerResult {
    /// A row for a mode that could not be run.
    pub(crate) fn not_run(mode: Mode, version: Option<String>, reason: String) -> PeerResult {
        PeerResult {
            mode: mode.name().to_owned(),
            version,
            durable_ack: mode.durable_ack(),
            ack_means: mode.ack_meaning().to_owned(),
            status: Status::NotRun { reason },
            max_rate: None,
            fixed_rate: Vec::new(),
            skipped_rates: Vec::new(),
            spine_ratio: None,
            disk_syncs_per_s: None,
            stopped: Vec::new(),
            failed_runs: Vec::new(),
        }
    }
}

/// The workload every mode got.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Workload {
    pub(crate) size: usize,
    pub(crate) producers: usize,
    pub(crate) window: usize,
    pub(crate) consumers: usize,
    pub(crate) seconds: f64,
    pub(crate) drain_seconds: f64,
    pub(crate) rates: Vec<f64>,
}

/// How Spine stands against the issue's target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) fastest_durable_peer: Option<String>,
    pub(crate) ratio_to_fastest_durable: Option<f64>,
    /// At least 1.5x the fastest durable peer.
    pub(crate) meets_1_5x_fastest_durable: Option<bool>,
    /// Ahead of NATS JetStream with its default (non-durable) sync.
    pub(crate) ahead_of_nats_default: Option<bool>,
    /// Spine's max-rate p99 below every peer's that ran.
    pub(crate) lower_p99_than_every_peer: Option<bool>,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Report {
    pub(crate) benchmark: &'static str,
    pub(crate) started_utc: String,
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) fdatasync_baseline: Option<FsyncBaseline>,
    pub(crate) workload: Workload,
    pub(crate) peers: Vec<PeerResult>,
    pub(crate) verdict: Verdict,
}

fn max_run(p: &PeerResult) -> Option<&RunResult> {
    match p.status {
        Status::Ran => p
            .max_rate
            .as_ref()
            .filter(|r| r.throughput_msgs_per_s > 0.0),
        Status::NotRun { .. } => None,
    }
}

fn div(a: f64, b: f64) -> Option<f64> {
    let r = a / b;
    (b > 0.0 && r.is_finite()).then_some(r)
}

/// Fills every peer's `spine_ratio` and returns the verdict.
pub(crate) fn compare(peers: &mut [PeerResult]) -> Verdict {
    let spine = peers
        .iter()
        .find(|p| p.mode == Mode::Spine.name())
        .and_then(max_run)
        .cloned();
    let mut fastest: Option<(String, f64)> = None;
    let mut ahead_of_nats = None;
    let mut lower_p99: Option<bool> = None;
    for p in peers.iter_mut().filter(|p| p.mode != Mode::Spine.name()) {
        let Some(run) = max_run(p).cloned() else {
            continue;
        };
        if p.durable_ack
            && fastest
                .as_ref()
                .is_none_or(|(_, t)| run.throughput_msgs_per_s > *t)
        {
            fastest = Some((p.mode.clone(), run.throughput_msgs_per_s));
        }
        let Some(s) = &spine else {
            continue;
        };
        let ratio = Ratio {
            throughput: div(s.throughput_msgs_per_s, run.throughput_msgs_per_s),
            p99: div(s.latency_us.p99 as f64, run.latency_us.p99 as f64),
        };
        if p.mode == Mode::NatsDefault.name() {
            ahead_of_nats = ratio.throughput.map(|r| r > 1.0);
        }
        if let Some(r) = ratio.p99 {
            lower_p99 = Some(lower_p99.unwrap_or(true) && r < 1.0);
        }
        p.spine_ratio = Some(ratio);
    }
    let ratio_to_fastest = match (&spine, &fastest) {
        (Some(s), Some((_, t))) => div(s.throughput_msgs_per_s, *t),
        _ => None,
    };
    Verdict {
        fastest_durable_peer: fastest.map(|(m, _)| m),
        ratio_to_fastest_durable: ratio_to_fastest,
        meets_1_5x_fastest_durable: ratio_to_fastest.map(|r| r >= 1.5),
        ahead_of_nats_default: ahead_of_nats,
        lower_p99_than_every_peer: lower_p99,
    }
}

/// Microseconds as milliseconds with sensible precision.
pub(crate) fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A count with thousands separators.
pub(crate) fn thousands(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}×"))
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    }
}

/// `report.md`.
pub(crate) fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let w = &report.workload;
    let _ = writeln!(s, "# Spine beside NATS, RabbitMQ and Redis\n");
    let _ = writeln!(s, "Started {} UTC. Command:\n", report.started_utc);
    let _ = writeln!(s, "```sh\n{}\n```\n", report.command);
    let m = &report.machine;
    let _ = writeln!(
        s,
        "Machine: {} cores ({}), {:.1} GiB memory, Linux {}, data on {}; load average {} at the start, {} at the end.",
        m.cores,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.data_filesystem,
        m.load_average_start,
        m.load_average_end
    );
    if let Some(b) = &report.fdatasync_baseline {
        let _ = writeln!(
            s,
            "Raw disk baseline in the same run: one thread writing 1 KiB + `fdatasync`, {} syncs/s (p50 {}, p99 {}).",
            thousands(b.syncs_per_s),
            ms(b.latency_us.p50),
            ms(b.latency_us.p99)
        );
    }
    let _ = writeln!(
        s,
        "\nWorkload, the same for every row: {} B messages, {} producers each keeping up to {} publishes in flight, {} consumers that receive and acknowledge, {} s per run. Latency is publish-to-acknowledgement (HdrHistogram); in fixed-rate runs it counts from each message's scheduled send time (coordinated omission). `lost` = acknowledged but not received by a consumer within {} s of the run's end (the drain).\n",
        w.size, w.producers, w.window, w.consumers, w.seconds, w.drain_seconds
    );
    let _ = writeln!(s, "## Max rate\n");
    let _ = writeln!(
        s,
        "| mode | ack means durable | msgs/s | p50 | p99 | p999 | lost / dup | Spine's throughput ratio | Spine's p99 ratio | disk fdatasyncs/s just before |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for p in &report.peers {
        let durable = if p.durable_ack { "yes" } else { "**no**" };
        match (&p.status, &p.max_rate) {
            (Status::NotRun { reason }, _) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | not run: {} | | | | | | | |",
                    p.mode,
                    durable,
                    super::process::truncate(&reason.replace('|', "/").replace('\n', " "), 400)
                );
            }
            (Status::Ran, None) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | no max-rate run | | | | | | | |",
                    p.mode, durable
                );
            }
            (Status::Ran, Some(r)) => {
                let (tr, pr) = match &p.spine_ratio {
                    Some(ratio) => (ratio_text(ratio.throughput), ratio_text(ratio.p99)),
                    None if p.mode == Mode::Spine.name() => ("—".to_owned(), "—".to_owned()),
                    None => ("n/a".to_owned(), "n/a".to_owned()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} |",
                    p.mode,
                    durable,
                    thousands(r.throughput_msgs_per_s),
                    ms(r.latency_us.p50),
                    ms(r.latency_us.p99),
                    ms(r.latency_us.p999),
                    r.lost,
                    r.duplicates,
                    tr,
                    pr,
                    p.disk_syncs_per_s
                        .map_or_else(|| "n/a".to_owned(), thousands)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nRatios are Spine's figure over the row's (throughput above 1: Spine faster; p99 below 1: Spine's lower).\n"
    );
    let v = &report.verdict;
    let _ = writeln!(s, "## Against the target\n");
    let _ = writeln!(
        s,
        "- At least 1.5× the fastest durable peer ({}): {} (ratio {}).",
        v.fastest_durable_peer.as_deref().unwrap_or("none ran"),
        yes_no(v.meets_1_5x_fastest_durable),
        ratio_text(v.ratio_to_fastest_durable)
    );
    let _ = writeln!(
        s,
        "- Ahead of NATS JetStream in its non-durable default: {}.",
        yes_no(v.ahead_of_nats_default)
    );
    let _ = writeln!(
        s,
        "- Lower p99 than every peer at max rate: {}.\n",
        yes_no(v.lower_p99_than_every_peer)
    );
    fixed_rate_table(&mut s, report);
    let _ = writeln!(s, "## What each acknowledgement means\n");
    for p in &report.peers {
        let _ = writeln!(
            s,
            "- `{}` ({}): {}.",
            p.mode,
            p.version.as_deref().unwrap_or("version unknown"),
            p.ack_means
        );
    }
    errors_section(&mut s, report);
    s
}

fn fixed_rate_table(s: &mut String, report: &Report) {
    let ran: Vec<&PeerResult> = report
        .peers
        .iter()
        .filter(|p| !p.fixed_rate.is_empty())
        .collect();
    if ran.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Fixed offered load\n");
    let _ = writeln!(
        s,
        "Achieved msgs/s and p50 / p99 / p999 at each offered load (see `throughput.svg`, `latency.svg`).\n"
    );
    let _ = writeln!(
        s,
        "| mode | offered msgs/s | achieved msgs/s | p50 | p99 | p999 | lost / dup |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for p in ran {
        for r in &p.fixed_rate {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} / {} |",
                p.mode,
                thousands(r.offered_msgs_per_s.unwrap_or(0.0)),
                thousands(r.throughput_msgs_per_s),
                ms(r.latency_us.p50),
                ms(r.latency_us.p99),
                ms(r.latency_us.p999),
                r.lost,
                r.duplicates
            );
        }
        if !p.skipped_rates.is_empty() {
            let list: Vec<String> = p.skipped_rates.iter().map(|r| thousands(*r)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | skipped: over twice its max rate | | | | |",
                p.mode,
                list.join(", ")
            );
        }
    }
    s.push('\n');
}

fn errors_section(s: &mut String, report: &Report) {
    let mut lines = Vec::new();
    for p in &report.peers {
        for f in &p.failed_runs {
            lines.push(format!("- `{}` {}", p.mode, f.replace('\n', " ")));
        }
        let runs = p.max_rate.iter().chain(p.fixed_rate.iter());
        for r in runs {
            if r.send_errors + r.consumer_errors > 0 {
                lines.push(format!(
                    "- `{}` {}: {} publish errors, {} consumer errors; first: {}",
                    p.mode,
                    r.offered_msgs_per_s.map_or_else(
                        || "max rate".to_owned(),
                        |o| format!("at {}/s", thousands(o))
                    ),
                    r.send_errors,
                    r.consumer_errors,
                    r.first_errors.first().map_or("", String::as_str)
                ));
            }
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(s, "\n## Errors\n");
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn run(throughput: f64, p99: u64, offered: Option<f64>) -> RunResult {
        RunResult {
            offered_msgs_per_s: offered,
            throughput_msgs_per_s: throughput,
            latency_us: Latency {
                p50: p99 / 2,
                p99,
                p999: p99 * 2,
                max: p99 * 3,
                mean: p99 as f64 / 2.0,
            },
            sent: 10,
            acked: 10,
            received: 10,
            lost: 0,
            duplicates: 0,
            send_errors: 0,
            consumer_errors: 0,
            drain_s: 0.0,
            first_errors: Vec::new(),
        }
    }

    pub(crate) fn ran(mode: Mode, throughput: f64, p99: u64) -> PeerResult {
        PeerResult {
            disk_syncs_per_s: (mode == Mode::Spine).then_some(5_500.0),
            status: Status::Ran,
            max_rate: Some(run(throughput, p99, None)),
            fixed_rate: vec![
                run(throughput.min(1000.0), p99 / 4, Some(1000.0)),
                run(throughput.min(5000.0), p99 / 2, Some(5000.0)),
            ],
            ..PeerResult::not_run(mode, Some("v1".into()), String::new())
        }
    }

    pub(crate) fn sample() -> Report {
        let mut peers = vec![
            ran(Mode::NatsDefault, 90_000.0, 20_000),
            ran(Mode::NatsSyncAlways, 3_500.0, 200_000),
            ran(Mode::RabbitQuorum, 15_000.0, 80_000),
            PeerResult::not_run(Mode::RedisAofAlways, None, "redis-server not found".into()),
            ran(Mode::Spine, 150_000.0, 10_000),
        ];
        let verdict = compare(&mut peers);
        Report {
            benchmark: "compare",
            started_utc: "2026-11-24 10:00:00".into(),
            command: "spine-bench compare --seconds 10".into(),
            machine: Machine {
                cores: 2,
                cpu_model: "Xeon".into(),
                memory_gib: 24.0,
                kernel: "6.18".into(),
                data_filesystem: "ext4 /dev/vda".into(),
                load_average_start: "0.10 0.20 0.30".into(),
                load_average_end: "1.00 0.50 0.40".into(),
            },
            fdatasync_baseline: None,
            workload: Workload {
                size: 1024,
                producers: 4,
                window: 256,
                consumers: 2,
                seconds: 10.0,
                drain_seconds: 120.0,
                rates: vec![1000.0, 5000.0],
            },
            peers,
            verdict,
        }
    }

    #[test]
    fn ratios_compare_spine_with_each_peer_that_ran() {
        let report = sample();
        let nats = &report.peers[0];
        let ratio = nats.spine_ratio.as_ref().expect("ratio");
        assert_eq!(ratio.throughput.map(|r| (r * 100.0).round()), Some(167.0));
        assert_eq!(ratio.p99, Some(0.5));
        assert!(report.peers[3].spine_ratio.is_none(), "not run: no ratio");
        assert!(report.peers[4].spine_ratio.is_none(), "Spine's own row");
        let v = &report.verdict;
        assert_eq!(v.fastest_durable_peer.as_deref(), Some("rabbitmq-quorum"));
        assert_eq!(v.ratio_to_fastest_durable, Some(10.0));
        assert_eq!(v.meets_1_5x_fastest_durable, Some(true));
        assert_eq!(v.ahead_of_nats_default, Some(true));
        assert_eq!(v.lower_p99_than_every_peer, Some(true));
    }

    #[test]
    fn a_slower_spine_fails_the_verdict() {
        let mut peers = vec![
            ran(Mode::NatsDefault, 90_000.0, 20_000),
            ran(Mode::RabbitQuorum, 15_000.0, 80_000),
            ran(Mode::Spine, 20_000.0, 30_000),
        ];
        let v = compare(&mut peers);
        assert_eq!(v.meets_1_5x_fastest_durable, Some(false));
        assert_eq!(v.ahead_of_nats_default, Some(false));
        assert_eq!(v.lower_p99_than_every_peer, Some(false));
    }

    #[test]
    fn without_spine_or_peers_nothing_is_claimed() {
        let mut only_peers = vec![ran(Mode::RabbitQuorum, 15_000.0, 80_000)];
        let v = compare(&mut only_peers);
        assert_eq!(v.fastest_durable_peer.as_deref(), Some("rabbitmq-quorum"));
        assert_eq!(v.meets_1_5x_fastest_durable, None);
        assert!(only_peers[0].spine_ratio.is_none());
        let mut zero = vec![ran(Mode::RabbitQuorum, 0.0, 0), ran(Mode::Spine, 10.0, 10)];
        let v = compare(&mut zero);
        assert_eq!(v.ratio_to_fastest_durable, None);
        assert!(zero[0].spine_ratio.is_none());
    }

    #[test]
    fn the_table_has_one_row_per_mode_with_not_run_rows() {
        let md = markdown(&sample());
        for m in Mode::ALL {
            let rows = md
                .lines()
                .filter(|l| l.starts_with(&format!("| {} |", m.name())));
            assert!(rows.count() >= 1, "{m}");
        }
        assert!(md.contains("| redis-aof-always | yes | not run: redis-server not found |"));
        assert!(md.contains("| nats-js-default | **no** | 90,000 | 10.0 ms | 20.0 ms | 40.0 ms | 0 / 0 | 1.67× | 0.50× | n/a |"));
        assert!(md.contains("| spine | yes | 150,000 |"));
        assert!(md
            .lines()
            .any(|l| l.starts_with("| spine | yes | 150,000 |") && l.ends_with("| 5,500 |")));
        assert!(md.contains(
            "At least 1.5× the fastest durable peer (rabbitmq-quorum): yes (ratio 10.00×)"
        ));
        assert!(md.contains("| rabbitmq-quorum | 5,000 | 5,000 |"));
    }

    #[test]
    fn json_has_the_fields_planners_read() {
        let v = serde_json::to_value(sample()).expect("json");
        let nats = &v["peers"][0];
        assert_eq!(nats["mode"], "nats-js-default");
        assert_eq!(nats["durable_ack"], false);
        assert_eq!(nats["status"], "ran");
        assert_eq!(nats["max_rate"]["throughput_msgs_per_s"], 90_000.0);
        assert_eq!(nats["max_rate"]["latency_us"]["p99"], 20_000);
        assert!(nats["spine_ratio"]["throughput"].is_number());
        let redis = &v["peers"][3];
        assert_eq!(redis["status"], "not_run");
        assert_eq!(redis["reason"], "redis-server not found");
        assert_eq!(v["verdict"]["meets_1_5x_fastest_durable"], true);
    }

    #[test]
    fn numbers_format_for_people() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(f64::NAN), "n/a");
        assert_eq!(ms(1_500), "1.50 ms");
        assert_eq!(ms(25_000), "25.0 ms");
        assert_eq!(ms(250_000), "250 ms");
    }
}
