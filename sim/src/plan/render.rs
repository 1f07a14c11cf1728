//! `plan.md` and the sentences of a plan: the conclusion, the assumptions,
//! one line per step.
//!
//! Pure functions of a [`PlanReport`], so the text is tested without
//! running anything.
//!
//! Invariants and why:
//! - Every number in the text comes from the report (nothing is measured or
//!   recomputed here), so `plan.md` and `plan.json` cannot disagree.
//! - An unknown figure prints as "n/a", never as 0.
//! - A capacity that is only a lower bound (every step passed, or the time
//!   budget ended the search) says so in the conclusion.

use std::fmt::Write as _;

use super::ramp::StopReason;
use super::{PlanReport, StepReport, MAX_BACKLOG_SECONDS, MIN_ACHIEVED_FRACTION};

/// `12345.6` → `"12,346"`.
pub fn int(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let n = x.round().abs() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if x.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Bytes per second in decimal units: `"41.6 MB/s"`.
pub fn bytes_per_s(b: f64) -> String {
    if !b.is_finite() {
        return "n/a".into();
    }
    let units = [(1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")];
    for (scale, unit) in units {
        if b >= scale {
            return format!("{:.1} {unit}", b / scale);
        }
    }
    format!("{b:.0} B/s")
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.filter(|v| v.is_finite()).map_or_else(|| "n/a".into(), f)
}

fn ms(x: Option<f64>) -> String {
    opt(x, |v| {
        if v < 10.0 {
            format!("{v:.2}")
        } else {
            format!("{v:.1}")
        }
    })
}

/// A ratio with two significant figures below 10: `0.013`, `2.4`, `23`.
fn ratio(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x >= 10.0 {
        int(x)
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        let digits = 1 + (-x.max(1e-9).log10()).ceil() as usize;
        format!("{x:.digits$}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The machine in a phrase: `"2 CPUs, Intel(R) Xeon(R) ..., 23 GiB"`.
fn machine_phrase(r: &PlanReport) -> String {
    let m = &r.machine;
    let mut s = format!("{} CPUs", m.logical_cpus.unwrap_or(m.available_parallelism));
    if let Some(model) = &m.cpu_model {
        let _ = write!(s, ", {model}");
    }
    if let Some(mib) = m.memory_mib {
        let _ = write!(s, ", {} GiB", mib / 1024);
    }
    if let Some(d) = &m.disk {
        let _ = write!(s, "; raw 4 KiB fdatasync {}/s", int(d.fdatasync_per_s));
    }
    s
}

/// One line per step for progress output.
pub fn step_line(s: &StepReport) -> String {
    format!(
        "step {} ({:?}) offered {}/s: achieved {}/s, p50 {} ms, p99 {} ms, p99.9 {} ms, errors {}, unsent {}, backlog {}, others {} cores: {}",
        s.index,
        s.phase,
        int(s.offered_per_s as f64),
        int(s.achieved_per_s),
        ms(s.latency.p50_ms),
        ms(s.latency.p99_ms),
        ms(s.latency.p999_ms),
        s.errors,
        s.unsent,
        s.backlog_at_end,
        opt(s.other_cores, |c| format!("{c:.2}")),
        if s.passed {
            "pass".to_string()
        } else {
            format!("FAIL ({})", s.reasons.join("; "))
        }
    )
}

/// The answer in one paragraph.
pub fn conclusion(r: &PlanReport) -> String {
    let a = &r.settings;
    let mut s = format!(
        "On this machine ({}), one durable node with {} partitions ",
        machine_phrase(r),
        a.partitions
    );
    let best = r
        .max_rate_offered
        .and_then(|o| r.steps.iter().find(|st| st.passed && st.offered_per_s == o));
    match (r.max_rate, best) {
        (Some(max), Some(step)) => {
            let _ = write!(
                s,
                "sustained **{} msgs/s** within p99 ≤ {} ms (offered {}/s, p99 there {} ms",
                int(max),
                a.p99_ms,
                int(step.offered_per_s as f64),
                ms(step.latency.p99_ms)
            );
            if let Some(x) = r.measured.max_rate_per_raw_fdatasync {
                let _ = write!(s, "; {} messages per raw fdatasync of this disk", ratio(x));
            }
            s.push_str("). ");
            match (r.stop_reason, r.lowest_failing_rate) {
                (StopReason::MaxRate, _) => {
                    s.push_str("Every step up to --max-rate passed, so this is a lower bound. ")
                }
                (StopReason::TimeBudget, _) => s.push_str(
                    "The time budget (--max-seconds) ended the search first, so this is a lower bound. ",
                ),
                (_, Some(fail)) => {
                    let _ = write!(s, "The lowest rate that failed was {} msgs/s. ", int(fail as f64));
                }
                _ => {}
            }
        }
        _ => {
            let _ = write!(s, "sustained no tested rate within p99 ≤ {} ms. ", a.p99_ms);
        }
    }
    match (&r.sizing, &r.sizing_error) {
        (Some(z), _) => {
            let _ = write!(
                s,
                "For {} msgs/s with {} headroom (at most {} msgs/s per node) that is **{} node{}** and {} partitions, each node carrying {} msgs/s ({} of its measured maximum).",
                int(a.target_rate),
                pct(a.headroom),
                int(z.usable_rate_per_node),
                z.nodes,
                if z.nodes == 1 { "" } else { "s" },
                z.partitions,
                int(z.rate_per_node),
                pct(z.load_per_node),
            );
            if let Some(d) = z.disk_write_bytes_per_s {
                let _ = write!(
                    s,
                    " Disk: {} of log writes in total ({} per node",
                    bytes_per_s(d),
                    opt(z.disk_write_bytes_per_s_per_node, bytes_per_s)
                );
                if let Some(f) = z.fsyncs_per_s_per_node {
                    let _ = write!(s, ", about {} fdatasync/s per node", int(f));
                    if let Some(share) = z.fsync_share_of_raw {
                        let _ = write!(s, ", {} of this disk's raw sync rate", pct(share));
                    }
                }
                s.push_str(").");
            }
            if let (Some(i), Some(o)) = (z.network_in_bytes_per_s, z.network_out_bytes_per_s) {
                let _ = write!(
                    s,
                    " Network: {} in and {} out in total ({} Mbit/s per node, native protocol frames).",
                    bytes_per_s(i),
                    bytes_per_s(o),
                    opt(z.network_mbit_per_s_per_node, |m| format!("{m:.0}"))
                );
            }
        }
        (None, Some(e)) => {
            let _ = write!(s, "No sizing: {e}.");
        }
        (None, None) => s.push_str("No sizing."),
    }
    s
}

/// What the figures assume, one sentence each.
pub fn assumptions(r: &PlanReport) -> Vec<String> {
    let a = &r.settings;
    let cpus = r
        .machine
        .logical_cpus
        .unwrap_or(r.machine.available_parallelism);
    let mut v = vec![
        format!(
            "Capacity is what one node sustained on this machine, in this process, with the load generator and the consumers sharing its {cpus} CPUs. Their CPU is spent here and would not be on a dedicated node (conservative); the network transport's cost (frame decoding, TCP/TLS/QUIC; BENCHMARKS.md puts it near 7 µs of CPU per send over TCP) is not paid here (optimistic)."
        ),
        format!(
            "Every message is a single chunk of {} bytes, sent once, then listed, downloaded and acknowledged once by its recipient, which polls every {} ms; the acknowledgement is a durable write too. {} generated mailboxes, {} consumer tasks.",
            a.size, a.poll_ms, a.mailboxes, a.consumers
        ),
        format!(
            "A step passes when p99 from each message's scheduled send time to its durable acknowledgement is at most {} ms, at least {} of the offered rate was acknowledged within the step plus that bound, no send failed or timed out, and recipients were at most {} s behind. Load is open-loop (no coordinated omission) with at most {} sends in flight; a slot that could not start, or was not answered, before the step's hard stop is counted with a lower-bound latency.",
            a.p99_ms,
            pct(MIN_ACHIEVED_FRACTION),
            MAX_BACKLOG_SECONDS,
            a.senders
        ),
        "Nodes share nothing: each mailbox lives on one node, load spreads evenly over the nodes (as mailboxes hash onto partitions), and there is no replication or cross-node traffic; a router or load balancer in front is not counted.".to_string(),
        format!(
            "Headroom {}: each node is planned at no more than {} of the rate measured here, for peaks, failover of a neighbour's load, compaction and a slower disk day.",
            pct(a.headroom),
            pct(1.0 - a.headroom)
        ),
        "Disk: log bytes per message as measured (the message's record and its acknowledgement's, with group-commit framing, and compaction when it ran). fdatasync/s per node is interpolated between the passing steps at the per-node rate. Downloads were served from the page cache here: disk reads are not counted.".to_string(),
        "Network: native-protocol frame bytes computed with spine-protocol's encoder (SEND, SEND_OK, one inbox entry, DOWNLOAD, DOWNLOAD_DATA, ACKNOWLEDGE, ACK_OK). TCP/IP and TLS framing, connection set-up and inbox polling are not included; MESH's HTTP API carries text headers and costs more per message.".to_string(),
        "The machine is shared and noisy: the step table shows the cores other processes used during each step, and a busy neighbour lowers the figure. Single runs vary (BENCHMARKS.md reads them as ±15%); repeat the plan for a range.".to_string(),
    ];
    if r.stop_reason == StopReason::TimeBudget {
        v.push(format!(
            "The search was cut short by --max-seconds {}: the capacity is a lower bound.",
            a.max_seconds
        ));
    }
    v
}

/// `plan.md`.
pub fn markdown(r: &PlanReport) -> String {
    let a = &r.settings;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Capacity plan: {} msgs/s at p99 ≤ {} ms\n",
        int(a.target_rate),
        a.p99_ms
    );
    let _ = writeln!(md, "## Conclusion\n\n{}\n", r.conclusion);

    md.push_str("## Sizing\n\n");
    match &r.sizing {
        Some(z) => {
            md.push_str("| | |\n|---|---|\n");
            let rows = [
                ("target", format!("{} msgs/s", int(a.target_rate))),
                (
                    "sustained by one node here",
                    opt(r.max_rate, |m| format!("{} msgs/s", int(m))),
                ),
                ("headroom", pct(a.headroom)),
                (
                    "usable per node",
                    format!("{} msgs/s", int(z.usable_rate_per_node)),
                ),
                ("**nodes**", format!("**{}**", z.nodes)),
                (
                    "partitions",
                    format!("{} ({} per node)", z.partitions, z.partitions_per_node),
                ),
                (
                    "load per node",
                    format!(
                        "{} msgs/s ({} of measured max)",
                        int(z.rate_per_node),
                        pct(z.load_per_node)
                    ),
                ),
                (
                    "disk writes, total / per node",
                    format!(
                        "{} / {}",
                        opt(z.disk_write_bytes_per_s, bytes_per_s),
                        opt(z.disk_write_bytes_per_s_per_node, bytes_per_s)
                    ),
                ),
                (
                    "fdatasync/s, total / per node",
                    format!(
                        "{} / {}",
                        opt(z.fsyncs_per_s, int),
                        opt(z.fsyncs_per_s_per_node, int)
                    ),
                ),
                (
                    "per node vs the disk's raw sync rate",
                    opt(z.fsync_share_of_raw, pct),
                ),
                (
                    "network in / out, total",
                    format!(
                        "{} / {}",
                        opt(z.network_in_bytes_per_s, bytes_per_s),
                        opt(z.network_out_bytes_per_s, bytes_per_s)
                    ),
                ),
                (
                    "network per node (in + out)",
                    opt(z.network_mbit_per_s_per_node, |m| format!("{m:.0} Mbit/s")),
                ),
            ];
            for (k, v) in rows {
                let _ = writeln!(md, "| {k} | {v} |");
            }
            md.push('\n');
        }
        None => {
            let _ = writeln!(
                md,
                "No sizing: {}\n",
                r.sizing_error.as_deref().unwrap_or("unknown")
            );
        }
    }

    md.push_str("## This machine\n\n| | |\n|---|---|\n");
    let m = &r.machine;
    let _ = writeln!(md, "| CPU | {} |", m.cpu_model.as_deref().unwrap_or("n/a"));
    let _ = writeln!(
        md,
        "| logical CPUs / usable by this process | {} / {} |",
        m.logical_cpus.map_or("n/a".into(), |n| n.to_string()),
        m.available_parallelism
    );
    let _ = writeln!(
        md,
        "| memory | {} |",
        m.memory_mib.map_or("n/a".into(), |n| format!("{n} MiB"))
    );
    let _ = writeln!(
        md,
        "| load average at start (1/5/15 min) | {} |",
        m.load_average_at_start.map_or("n/a".into(), |l| format!(
            "{:.2} / {:.2} / {:.2}",
            l[0], l[1], l[2]
        ))
    );
    let _ = writeln!(md, "| kernel | {} |", m.kernel.as_deref().unwrap_or("n/a"));
    if let Some(d) = &m.disk {
        let _ = writeln!(
            md,
            "| raw 4 KiB write + fdatasync | {}/s (p50 {} µs, p99 {} µs, max {} µs; {} in {:.1} s in `{}`) |",
            int(d.fdatasync_per_s),
            d.p50_us,
            d.p99_us,
            d.max_us,
            d.syncs,
            d.seconds,
            d.dir.display()
        );
    }
    md.push('\n');

    let _ = writeln!(
        md,
        "## Steps\n\nSearch: {}. Latency is from each message's scheduled send time to its durable acknowledgement (ms). \"others\" is the cores the rest of the machine used meanwhile.\n",
        r.stop_reason.describe()
    );
    md.push_str("| # | phase | offered/s | achieved/s | p50 | p99 | p99.9 | max | errors | unsent | backlog | fsync/s | msgs/fsync | log B/msg | cores (ours / others) | verdict |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &r.steps {
        let _ = writeln!(
            md,
            "| {} | {:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            s.index,
            s.phase,
            int(s.offered_per_s as f64),
            int(s.achieved_per_s),
            ms(s.latency.p50_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.p999_ms),
            ms(s.latency.max_ms),
            s.errors,
            s.unsent,
            s.backlog_at_end,
            int(s.fsyncs_per_s),
            opt(s.msgs_per_fsync, |x| format!("{x:.1}")),
            opt(s.log_bytes_per_msg, int),
            opt(s.cpu_cores, |c| format!("{c:.2}")),
            opt(s.other_cores, |c| format!("{c:.2}")),
            if s.passed {
                "pass".to_string()
            } else {
                format!("fail: {}", s.reasons.join("; "))
            }
        );
    }
    md.push('\n');

    md.push_str("## What one message costs\n\n| | |\n|---|---|\n");
    let c = &r.measured;
    let _ = writeln!(
        md,
        "| messages accepted (all steps) | {} |",
        int(c.messages as f64)
    );
    let _ = writeln!(
        md,
        "| log bytes per message | {} |",
        opt(c.log_bytes_per_msg, int)
    );
    let _ = writeln!(
        md,
        "| fdatasync/s at the highest pass | {} ({} msgs per fdatasync; {} of the raw rate) |",
        opt(c.fsyncs_per_s_at_max, int),
        opt(c.msgs_per_fsync_at_max, |x| format!("{x:.1}")),
        opt(c.fsync_share_of_raw_at_max, pct)
    );
    let _ = writeln!(
        md,
        "| CPU per message at the highest pass (node + load + consumers) | {} |",
        opt(c.cpu_us_per_msg_at_max, |x| format!("{x:.1} µs"))
    );
    if let Some(w) = &c.wire {
        let _ = writeln!(
            md,
            "| network bytes per message (in / out / protocol overhead) | {} / {} / {} |",
            w.in_per_msg, w.out_per_msg, w.overhead_per_msg
        );
        let frames: Vec<String> = w
            .frames
            .iter()
            .map(|f| format!("{} {}", f.frame, f.bytes))
            .collect();
        let _ = writeln!(md, "| frames (bytes) | {} |", frames.join(", "));
    }
    md.push('\n');

    md.push_str("## Assumptions\n\n");
    for x in &r.assumptions {
        let _ = writeln!(md, "- {x}");
    }
    md.push('\n');

    md.push_str("## Settings\n\n");
    let _ = writeln!(
        md,
        "`--target-rate {} --p99-ms {} --step-seconds {} --headroom {} --size {} --partitions {} --max-seconds {} --start-rate {} --growth {} --refine-steps {} --min-rate {} --max-rate {} --senders {} --mailboxes {} --consumers {} --poll-ms {} --warmup-seconds {} --seed {}`; data directory {}; ran {:.1} s.",
        a.target_rate,
        a.p99_ms,
        a.step_seconds,
        a.headroom,
        a.size,
        a.partitions,
        a.max_seconds,
        a.start_rate,
        a.growth,
        a.refine_steps,
        a.min_rate,
        a.max_rate,
        a.senders,
        a.mailboxes,
        a.consumers,
        a.poll_ms,
        a.warmup_seconds,
        a.seed,
        a.data_dir
            .as_ref()
            .map_or("the system temporary directory".into(), |d| format!("`{}`", d.display())),
        r.elapsed_s
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_thousands_separators() {
        assert_eq!(int(0.0), "0");
        assert_eq!(int(999.4), "999");
        assert_eq!(int(1000.0), "1,000");
        assert_eq!(int(1_234_567.0), "1,234,567");
        assert_eq!(int(-1234.0), "-1,234");
        assert_eq!(int(f64::NAN), "n/a");
    }

    #[test]
    fn byte_rates_use_decimal_units() {
        assert_eq!(bytes_per_s(512.0), "512 B/s");
        assert_eq!(bytes_per_s(41_600_000.0), "41.6 MB/s");
        assert_eq!(bytes_per_s(2.5e9), "2.5 GB/s");
        assert_eq!(bytes_per_s(f64::INFINITY), "n/a");
    }

    #[test]
    fn ratios_keep_two_significant_figures() {
        assert_eq!(ratio(23.76), "24");
        assert_eq!(ratio(2.44), "2.4");
        assert_eq!(ratio(0.0128), "0.013");
        assert_eq!(ratio(0.25), "0.25");
        assert_eq!(ratio(f64::NAN), "n/a");
    }
}
