//! `report.md`: the report for people, rendered from a [`Report`].
//!
//! Invariants and why:
//! - Everything shown comes from the `Report`, so it agrees with
//!   `report.json`; nothing is recomputed differently here.
//! - The verdict comes first (PASS or FAIL, and which invariants broke with
//!   their details), because that is what someone opening a failed CI run
//!   needs.
//! - National-service requests get their own section (issued, answered,
//!   failed by code) next to the totals; failures are flagged there in
//!   words, not in the verdict, which stays the invariants'.
//! - Every piece of text from outside (scenario names, invariant details,
//!   fault descriptions, error codes) is escaped for a table cell, so no
//!   input can break the tables.
//! - Charts are relative image links to the SVGs written next to this
//!   file, so the directory can be moved or archived as a whole.

use std::fmt::Write as _;
use std::time::Duration;

use spine_core::time::Timestamp;

use super::format::{clock, date_time, hms, latency_us, md_cell, number, secs, thousands};
use super::json::Report;
use super::latency::Percentiles;
use super::outcome::ServiceTotals;
use super::write::{LATENCY_SVG, QUEUE_DEPTH_SVG, THROUGHPUT_SVG};

fn percentile_row(out: &mut String, label: &str, p: Option<Percentiles>) {
    match p {
        Some(p) => {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} | {} |",
                thousands(p.count),
                latency_us(p.p50_us),
                latency_us(p.p90_us),
                latency_us(p.p99_us),
                latency_us(p.p999_us),
                latency_us(p.max_us)
            );
        }
        None => {
            let _ = writeln!(out, "| {label} | 0 | - | - | - | - | - |");
        }
    }
}

/// Largest value of a series and the bucket start (`t`) where it occurred.
fn peak<T>(
    items: &[T],
    t: impl Fn(&T) -> f64,
    value: impl Fn(&T) -> Option<f64>,
) -> Option<(f64, f64)> {
    let mut best: Option<(f64, f64)> = None;
    for item in items {
        if let Some(v) = value(item).filter(|v| v.is_finite()) {
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, t(item)));
            }
        }
    }
    best
}

fn at_offset(start: Timestamp, t: f64) -> Timestamp {
    let us = if t.is_finite() && t > 0.0 {
        (t * 1e6) as u64
    } else {
        0
    };
    Timestamp::from_micros(start.as_micros().saturating_add(us))
}

/// The national-service requests section.
fn services(s: &mut String, services: &ServiceTotals) {
    let _ = writeln!(s, "\n## Service requests\n");
    if services.issued == 0 {
        let _ = writeln!(
            s,
            "No national-service requests were made (`[node] service_requests_per_send`)."
        );
        return;
    }
    let failed = services.failed_total();
    let _ = writeln!(s, "| Issued | Answered | Failed |\n|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| {} | {} | {} |",
        thousands(services.issued),
        thousands(services.ok),
        thousands(failed)
    );
    if failed == 0 {
        return;
    }
    let _ = writeln!(s, "\n| Failure code | Count |\n|---|---:|");
    for (code, n) in &services.failed {
        let _ = writeln!(s, "| `{}` | {} |", md_cell(code), thousands(*n));
    }
    let _ = writeln!(
        s,
        "\n**{} of {} service requests failed.** Failures are reported, not judged: \
         a refusal during an injected fault is expected, but `SVC_NOT_ACCREDITED` means \
         the node does not accredit the population (start it with the `services.toml` \
         that `spine-sim directory` writes).",
        thousands(failed),
        thousands(services.issued)
    );
}

/// Renders `report.md`.
pub(crate) fn render(report: &Report) -> String {
    let mut s = String::with_capacity(8 * 1024);
    let start = report.start();
    let broken: Vec<_> = report.invariants.iter().filter(|i| !i.ok).collect();

    let _ = writeln!(s, "# Simulation report: {}\n", md_cell(&report.scenario));
    if report.passed {
        let _ = writeln!(
            s,
            "**Result: PASS**: all {} invariants held.\n",
            report.invariants.len()
        );
    } else {
        let _ = writeln!(
            s,
            "**Result: FAIL**: {} of {} invariants broken (seed {}).\n",
            broken.len(),
            report.invariants.len(),
            report.seed
        );
    }

    // Summary.
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let rows: Vec<(&str, String)> = vec![
        ("Scenario", md_cell(&report.scenario)),
        ("Seed", report.seed.to_string()),
        ("Mode", report.mode.to_string()),
        ("Scale", number(report.scale, 3)),
        (
            "Event log hash",
            format!("`{}`", md_cell(&report.event_log_hash)),
        ),
        ("Events processed", thousands(report.events_processed)),
        ("Virtual start (UTC)", date_time(start)),
        (
            "Virtual duration",
            hms(Duration::from_secs_f64(
                report.virtual_duration_secs.max(0.0),
            )),
        ),
        (
            "Wall duration",
            secs(Duration::from_secs_f64(report.wall_duration_secs.max(0.0))),
        ),
        (
            "Events per wall second",
            number(report.events_per_wall_sec, 0),
        ),
        (
            "Speed-up (virtual/wall)",
            format!("{}×", number(report.speedup, 1)),
        ),
        (
            "Bucket width",
            if report.bucket_secs == report.requested_bucket_secs {
                format!("{} s", number(report.bucket_secs, 3))
            } else {
                format!(
                    "{} s (asked for {} s; coarsened to stay bounded)",
                    number(report.bucket_secs, 3),
                    number(report.requested_bucket_secs, 3)
                )
            },
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }

    // Totals.
    let t = &report.totals;
    let _ = writeln!(s, "\n## Totals\n");
    let _ = writeln!(
        s,
        "| Sent (acknowledged) | Refused | Delivered | Expired | Reports | Lost | Misdelivered | Out of order |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        thousands(t.sent),
        thousands(t.refused_total()),
        thousands(t.delivered),
        thousands(t.expired),
        thousands(t.reports),
        thousands(t.lost),
        thousands(t.misdelivered),
        thousands(t.out_of_order)
    );
    if !t.refused.is_empty() {
        let _ = writeln!(s, "\n| Refusal code | Count |\n|---|---:|");
        for (code, n) in &t.refused {
            let _ = writeln!(s, "| `{}` | {} |", md_cell(code), thousands(*n));
        }
    }

    services(&mut s, &t.services);

    // Invariants.
    let _ = writeln!(s, "\n## Invariants\n");
    if report.invariants.is_empty() {
        let _ = writeln!(s, "No invariants were checked.");
    } else {
        let _ = writeln!(s, "| Invariant | Result | Detail |\n|---|---|---|");
        for i in &report.invariants {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                md_cell(&i.name),
                if i.ok { "PASS" } else { "**FAIL**" },
                i.detail.as_deref().map(md_cell).unwrap_or_default()
            );
        }
    }

    // Latency.
    let _ = writeln!(s, "\n## Latency\n");
    let _ = writeln!(
        s,
        "| | Samples | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    percentile_row(
        &mut s,
        "End to end (virtual)",
        report.latency.end_to_end_virtual,
    );
    percentile_row(&mut s, "Send (wall)", report.latency.send_wall);
    let _ = writeln!(
        s,
        "\nEnd to end is virtual time from acceptance to collection by the recipient \
         (deterministic). Send is the real time the node took to acknowledge (varies by machine)."
    );

    // Peaks.
    let _ = writeln!(s, "\n## Peaks\n");
    let _ = writeln!(s, "| Measure | Peak | At (virtual) |\n|---|---:|---|");
    let peaks = [
        (
            "Accepted per second",
            peak(&report.throughput, |p| p.t, |p| Some(p.accepted_per_sec)),
            1,
        ),
        (
            "Delivered per second",
            peak(&report.throughput, |p| p.t, |p| Some(p.delivered_per_sec)),
            1,
        ),
        (
            "Service requests per second",
            peak(
                &report.throughput,
                |p| p.t,
                |p| Some(p.service_per_sec).filter(|_| t.services.issued > 0),
            ),
            1,
        ),
        (
            "Deepest partition queue",
            peak(
                &report.queue_depth,
                |p| p.t,
                |p| p.deepest_partition_max.map(|n| n as f64),
            ),
            0,
        ),
        (
            "WAL appends in flight",
            peak(
                &report.queue_depth,
                |p| p.t,
                |p| p.wal_in_flight_max.map(|n| n as f64),
            ),
            0,
        ),
        (
            "WAL bytes per second",
            peak(&report.wal, |p| p.t, |p| p.bytes_per_sec),
            0,
        ),
        (
            "WAL fsyncs per second",
            peak(&report.wal, |p| p.t, |p| p.fsyncs_per_sec),
            1,
        ),
        (
            "Resident memory (MiB)",
            peak(
                &report.memory,
                |p| p.t,
                |p| p.rss_bytes_max.map(|b| b as f64 / (1024.0 * 1024.0)),
            ),
            1,
        ),
    ];
    for (label, value, decimals) in peaks {
        match value {
            Some((v, t)) => {
                let _ = writeln!(
                    s,
                    "| {label} | {} | {} |",
                    number(v, decimals),
                    clock(at_offset(start, t), true)
                );
            }
            None => {
                let _ = writeln!(s, "| {label} | - | not sampled |");
            }
        }
    }

    // Charts.
    let _ = writeln!(s, "\n## Charts\n");
    let _ = writeln!(s, "![Throughput over virtual time]({THROUGHPUT_SVG})\n");
    let _ = writeln!(s, "![Latency over virtual time]({LATENCY_SVG})\n");
    let _ = writeln!(s, "![Queue depth over virtual time]({QUEUE_DEPTH_SVG})");

    // Faults.
    let _ = writeln!(s, "\n## Faults\n");
    if report.faults.is_empty() {
        let _ = writeln!(s, "No faults were injected.");
    } else {
        let _ = writeln!(
            s,
            "| | Virtual time (UTC) | Since start | Fault |\n|---|---|---|---|"
        );
        for (i, f) in report.faults.iter().enumerate() {
            let _ = writeln!(
                s,
                "| F{} | {} | +{} | {} |",
                i + 1,
                date_time(at_offset(start, f.t)),
                hms(Duration::from_secs_f64(f.t.max(0.0))),
                md_cell(&f.what)
            );
        }
    }
    if report.recorder.faults_dropped > 0 {
        let _ = writeln!(
            s,
            "\n{} further faults were injected but not listed.",
            thousands(report.recorder.faults_dropped)
        );
    }

    // What the recorder had to do to stay bounded.
    let n = &report.recorder;
    let mut notes = Vec::new();
    if n.samples_before_start > 0 {
        notes.push(format!(
            "{} samples were timed before the start and counted in the first bucket.",
            thousands(n.samples_before_start)
        ));
    }
    if n.latency_clamped > 0 {
        notes.push(format!(
            "{} latencies above 30 days were recorded as 30 days.",
            thousands(n.latency_clamped)
        ));
    }
    if n.latency_unrecorded > 0 {
        notes.push(format!(
            "{} latencies could not be recorded.",
            thousands(n.latency_unrecorded)
        ));
    }
    if n.error_codes_folded > 0 {
        notes.push(format!(
            "{} refusals beyond the distinct-code limit were counted as OTHER.",
            thousands(n.error_codes_folded)
        ));
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Recorder notes\n");
        for note in notes {
            let _ = writeln!(s, "- {note}");
        }
    }
    s
}
