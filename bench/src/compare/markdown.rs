//! `report.md`: the machine, the workload, the max-rate medians with each
//! mode's range over the rounds, every round's figures, the verdict, the
//! fixed-rate runs and any errors.
//!
//! Invariants: every mode has a row in the main table (a "not run" row if
//! it never ran); every figure in it says what it is (a median, a range,
//! a total); every loss in any round shows, with its round; nothing here
//! panics on any report.

use std::fmt::Write as _;

use super::mode::Mode;
use super::process::truncate;
use super::report::{MaxRate, PeerResult, Ratio, Report, RunResult, Status};

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

/// Text safe inside a table cell, on one line.
fn cell(text: &str) -> String {
    truncate(&text.replace('|', "/").replace('\n', " "), 400)
}

/// `lost / dup`, with the rounds that had any.
fn losses(m: &MaxRate) -> String {
    let mut s = format!("{} / {}", m.lost, m.duplicates);
    if !m.rounds_with_loss.is_empty() {
        let list: Vec<String> = m.rounds_with_loss.iter().map(u32::to_string).collect();
        let _ = write!(s, " (round {})", list.join(", "));
    }
    s
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
        m.cores, m.cpu_model, m.memory_gib, m.kernel, m.data_filesystem,
        m.load_average_start, m.load_average_end
    );
    if let Some(b) = &report.fdatasync_baseline {
        let each: Vec<String> = report
            .fdatasync_baseline_rounds
            .iter()
            .map(|r| thousands(r.syncs_per_s))
            .collect();
        let _ = writeln!(
            s,
            "Raw disk baseline, measured at the start of every round: one thread writing 1 KiB + `fdatasync`, median {} syncs/s (p50 {}, p99 {}; each round: {}).",
            thousands(b.syncs_per_s),
            ms(b.latency_us.p50),
            ms(b.latency_us.p99),
            each.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nWorkload, the same for every row: {} B messages, {} producers each keeping up to {} publishes in flight, {} consumers that receive and acknowledge, {} s per run. Latency is publish-to-acknowledgement (HdrHistogram); in fixed-rate runs it counts from each message's scheduled send time (coordinated omission). `lost` = acknowledged but not received by a consumer within {} s of the run's end (the drain).\n",
        w.size, w.producers, w.window, w.consumers, w.seconds, w.drain_seconds
    );
    let _ = writeln!(
        s,
        "{} rounds: each round runs every mode's max-rate run once, on a fresh server, the modes one after another (round 1: every mode, then round 2, ...), so drift on the machine hits every mode alike. The fixed-rate runs come after the rounds, one per mode and offered load: single runs, not medians.\n",
        w.rounds
    );
    max_rate_table(&mut s, report);
    rounds_table(&mut s, report);
    let v = &report.verdict;
    let _ = writeln!(s, "## Against the target (medians)\n");
    let _ = writeln!(
        s,
        "- At least 1.5× the fastest durable peer ({}, by median throughput): {} (median per-round ratio {}).",
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

fn max_rate_table(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "## Max rate (medians of {} rounds)\n",
        report.workload.rounds
    );
    let _ = writeln!(
        s,
        "| mode | ack means durable | rounds | msgs/s | min–max msgs/s | p50 | p99 | p999 | lost / dup | Spine's throughput ratio | Spine's p99 ratio | delivered end to end msgs/s (drain) | disk fdatasyncs/s just before |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in &report.peers {
        let durable = if p.durable_ack { "yes" } else { "**no**" };
        let gap = "| | | | | | | | | | |";
        match (&p.status, &p.max_rate) {
            (Status::NotRun { reason }, _) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | not run: {} {gap}",
                    p.mode,
                    durable,
                    cell(reason)
                );
            }
            (Status::Ran, None) => {
                let _ = writeln!(s, "| {} | {} | no max-rate run {gap}", p.mode, durable);
            }
            (Status::Ran, Some(m)) => {
                let (tr, pr) = match &p.spine_ratio {
                    Some(Ratio { throughput, p99 }) => (ratio_text(*throughput), ratio_text(*p99)),
                    None if p.mode == Mode::Spine.name() => ("—".to_owned(), "—".to_owned()),
                    None => ("n/a".to_owned(), "n/a".to_owned()),
                };
                let rounds = if m.rounds == report.workload.rounds as usize {
                    m.rounds.to_string()
                } else {
                    format!("{} of {}", m.rounds, report.workload.rounds)
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} | {} ({:.1} s) | {} |",
                    p.mode,
                    durable,
                    rounds,
                    thousands(m.throughput_msgs_per_s),
                    thousands(m.throughput_min_msgs_per_s),
                    thousands(m.throughput_max_msgs_per_s),
                    ms(m.latency_us.p50),
                    ms(m.latency_us.p99),
                    ms(m.latency_us.p999),
                    losses(m),
                    tr,
                    pr,
                    thousands(m.delivered_msgs_per_s),
                    m.drain_s,
                    p.disk_syncs_per_s
                        .map_or_else(|| "n/a".to_owned(), thousands)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nmsgs/s, p50, p99, p999 and the disk rate are medians over the rounds the mode ran in; min–max is the range of its rounds' throughput; lost / dup are totals over all rounds. msgs/s counts sends acknowledged during the run; delivered end to end is what the consumers received and acknowledged over the run plus the drain after it (in brackets: how long the drain took), so a peer whose consumers fell behind during the run shows it there. Ratios are per-round medians: Spine's figure over the row's in each round in which both ran, then the median of those (throughput above 1: Spine faster; p99 below 1: Spine's lower).\n"
    );
}

/// The rows `keep` selects; unless there are none, writes a section's
/// heading and introduction first.
fn section<'a>(
    s: &mut String,
    report: &'a Report,
    keep: fn(&PeerResult) -> bool,
    heading: &str,
    intro: &str,
) -> Vec<&'a PeerResult> {
    let rows: Vec<&PeerResult> = report.peers.iter().filter(|p| keep(p)).collect();
    if !rows.is_empty() {
        let _ = writeln!(s, "## {heading}\n\n{intro}\n");
    }
    rows
}

/// One line per round, a cell per mode that was tried.
fn rounds_table(s: &mut String, report: &Report) {
    let tried = section(
        s,
        report,
        |p| !p.rounds.is_empty(),
        "Max rate, round by round",
        "Each cell: msgs/s · p99 · Spine's throughput ratio to it in that round · disk fdatasyncs/s just before.",
    );
    if tried.is_empty() {
        return;
    }
    let names: Vec<&str> = tried.iter().map(|p| p.mode.as_str()).collect();
    let _ = writeln!(s, "| round | raw disk syncs/s | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(names.len()));
    for n in 1..=report.workload.rounds {
        let disk = report
            .fdatasync_baseline_rounds
            .get(n as usize - 1)
            .map_or_else(|| "n/a".to_owned(), |b| thousands(b.syncs_per_s));
        let cells: Vec<String> = tried
            .iter()
            .map(|p| match p.rounds.iter().find(|r| r.round == n) {
                None => "not run".to_owned(),
                Some(r) => match &r.max_rate {
                    None => "failed".to_owned(),
                    Some(run) => format!(
                        "{} · {} · {} · {}",
                        thousands(run.throughput_msgs_per_s),
                        ms(run.latency_us.p99),
                        r.spine_ratio
                            .as_ref()
                            .map_or_else(|| "—".to_owned(), |x| ratio_text(x.throughput)),
                        r.disk_syncs_per_s
                            .map_or_else(|| "n/a".to_owned(), thousands)
                    ),
                },
            })
            .collect();
        let _ = writeln!(s, "| {n} | {disk} | {} |", cells.join(" | "));
    }
    s.push('\n');
}

fn fixed_rate_table(s: &mut String, report: &Report) {
    let ran = section(
        s,
        report,
        |p| !p.fixed_rate.is_empty(),
        "Fixed offered load (one run each)",
        "Achieved msgs/s and p50 / p99 / p999 at each offered load, one run per mode and load after the rounds (see `throughput.svg`, `latency.svg`).",
    );
    if ran.is_empty() {
        return;
    }
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
                "| {} | {} | skipped: over twice its median max rate | | | | |",
                p.mode,
                list.join(", ")
            );
        }
    }
    s.push('\n');
}

/// A run's publish and consumer errors, if it had any.
fn run_errors(mode: &str, what: &str, r: &RunResult) -> Option<String> {
    (r.send_errors + r.consumer_errors > 0).then(|| {
        format!(
            "- `{mode}` {what}: {} publish errors, {} consumer errors; first: {}",
            r.send_errors,
            r.consumer_errors,
            r.first_errors.first().map_or("", String::as_str)
        )
    })
}

fn errors_section(s: &mut String, report: &Report) {
    let mut lines = Vec::new();
    for p in &report.peers {
        for r in &p.rounds {
            if let Some(why) = &r.failed {
                lines.push(format!(
                    "- `{}` round {}: {}",
                    p.mode,
                    r.round,
                    why.replace('\n', " ")
                ));
            }
            let what = format!("round {} max rate", r.round);
            lines.extend(
                r.max_rate
                    .as_ref()
                    .and_then(|run| run_errors(&p.mode, &what, run)),
            );
        }
        for f in &p.failed_runs {
            lines.push(format!("- `{}` {}", p.mode, f.replace('\n', " ")));
        }
        for r in &p.fixed_rate {
            let what = format!("at {}/s", thousands(r.offered_msgs_per_s.unwrap_or(0.0)));
            lines.extend(run_errors(&p.mode, &what, r));
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
mod tests {
    use super::super::report::tests::{ran_rounds, sample};
    use super::super::verdict;
    use super::*;

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
        assert!(md.contains("| nats-js-default | **no** | 1 | 90,000 | 90,000–90,000 | 10.0 ms | 20.0 ms | 40.0 ms | 0 / 0 | 1.67× | 0.50× | 90,000 (0.0 s) | n/a |"), "{md}");
        assert!(md
            .lines()
            .any(|l| l.starts_with("| spine | yes | 1 | 150,000 |")
                && l.ends_with("| — | — | 150,000 (0.0 s) | 5,500 |")));
        assert!(md.contains(
            "At least 1.5× the fastest durable peer (rabbitmq-quorum, by median throughput): yes (median per-round ratio 10.00×)"
        ));
        assert!(md.contains("| rabbitmq-quorum | 5,000 | 5,000 |"));
        let table: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.starts_with("## Max rate (medians"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(table.len(), 2 + Mode::ALL.len(), "{md}");
        for line in table {
            assert_eq!(line.matches('|').count(), 14, "13 cells: {line}");
        }
        assert!(md.contains("Ratios are per-round medians"));
        assert!(md.contains("single runs, not medians"));
    }

    #[test]
    fn rounds_ranges_and_losses_in_any_round_show() {
        let mut report = sample();
        report.workload.rounds = 3;
        let mut rabbit = ran_rounds(
            Mode::RabbitQuorum,
            &[(20_000.0, 80_000), (10_000.0, 90_000), (15_000.0, 70_000)],
        );
        rabbit.rounds[1].max_rate = None;
        rabbit.rounds[1].failed = Some("failed to start: port in use".into());
        if let Some(r) = rabbit.rounds[2].max_rate.as_mut() {
            r.lost = 4;
        }
        rabbit.max_rate = super::super::medians::max_rate(&rabbit.rounds);
        report.peers[2] = rabbit;
        report.peers[4] = ran_rounds(
            Mode::Spine,
            &[(100_000.0, 9_000), (120_000.0, 9_000), (150_000.0, 9_000)],
        );
        report.verdict = verdict::compare(&mut report.peers);
        let md = markdown(&report);
        assert!(
            md.contains("| rabbitmq-quorum | yes | 2 of 3 | 17,500 | 15,000–20,000 | 37.5 ms | 75.0 ms | 150 ms | 4 / 0 (round 3) | 7.50× |"),
            "{md}"
        );
        assert!(
            md.contains("| spine | yes | 3 | 120,000 | 100,000–150,000 |"),
            "{md}"
        );
        assert!(md.contains("## Max rate (medians of 3 rounds)"));
        assert!(
            md.contains("| 1 | n/a | 90,000 · 20.0 ms · 1.11× · n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | n/a | not run | not run | failed | 120,000 · 9.00 ms · — · 5,500 |"),
            "{md}"
        );
        assert!(md.contains("- `rabbitmq-quorum` round 2: failed to start: port in use"));
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
