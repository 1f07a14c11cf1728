//! Hand-written SVG line charts: `throughput.svg`, `latency.svg` and
//! `queue_depth.svg`, drawn from a [`Report`].
//!
//! Invariants and why:
//! - Output is standalone, well-formed SVG 1.1 (XML prolog, one `<svg>`
//!   root with the SVG namespace, every element closed, every piece of
//!   text escaped), so browsers, Markdown viewers and XML tools all open
//!   it.
//! - Each series is exactly one `<polyline class="series"
//!   data-series="NAME">`, even when it has no points, so a reader (or a
//!   test) can find every series by name. Buckets where a value was not
//!   sampled are skipped, and the line joins the samples either side.
//! - x is virtual time: ticks fall on round clock times (UTC) and are
//!   labelled `HH:MM` (`HH:MM:SS` when ticks are under a minute apart,
//!   `MM-DD` when a day or more apart). y starts at 0 and ends at a round
//!   number above the largest value.
//! - Faults are dashed vertical lines numbered `F1`, `F2`, ... in the order
//!   `report.md` lists them, each carrying a `<title>` with its time and
//!   description.
//! - Every coordinate written is finite; nothing here panics on any input.

use std::fmt::Write as _;

use spine_core::time::Timestamp;

use super::format::{clock, si, xml};
use super::json::Report;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 24.0;
const HEADER: f64 = 58.0;
const PANEL_HEAD: f64 = 46.0;
const PLOT_H: f64 = 200.0;
const PANEL_FOOT: f64 = 34.0;
const FOOTER: f64 = 30.0;
const FAULT_COLOR: &str = "#d62728";
const PALETTE: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf",
];
/// Dash pattern of the series at `index`: the first two solid, later
/// ones dashed, so a series drawn over another (p99 equal to max) still
/// shows.
fn dash(index: usize) -> &'static str {
    match index {
        0 | 1 => "",
        2 => " stroke-dasharray=\"7 3\"",
        _ => " stroke-dasharray=\"2 2\"",
    }
}

/// Longest fault description drawn on a chart (the full text is in the
/// marker's `<title>` and in `report.md`).
const FAULT_LABEL_CHARS: usize = 24;

/// One line on a panel: `(x seconds since start, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One plot area with its own y axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) series: Vec<Series>,
}

/// A chart: panels stacked over a shared time axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) subtitle: String,
    pub(crate) start: Timestamp,
    pub(crate) x_max: f64,
    pub(crate) panels: Vec<Panel>,
    pub(crate) faults: Vec<(f64, String)>,
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let exp = 10f64.powf(raw.log10().floor());
    let f = raw / exp;
    let nf = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nf * exp
}

/// y ticks from 0 to a round maximum at or above `max`.
fn y_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max / 4.0);
    let mut ticks = vec![0.0];
    let mut v = 0.0;
    while v < max && ticks.len() < 12 {
        v += step;
        ticks.push(v);
    }
    ticks
}

/// Candidate x tick steps, seconds.
const X_STEPS: [f64; 20] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10800.0, 21600.0, 43200.0, 86400.0, 172_800.0, 604_800.0,
];

/// x tick step for a span of `x_max` seconds: at most about 8 ticks.
fn x_step(x_max: f64) -> f64 {
    for step in X_STEPS {
        if x_max / step <= 8.0 {
            return step;
        }
    }
    let days = (x_max / 8.0 / 86400.0).ceil().max(1.0);
    days * 86400.0
}

/// Tick offsets (seconds since start) on round clock times, and labels.
fn x_ticks(start: Timestamp, x_max: f64) -> Vec<(f64, String)> {
    let step = x_step(x_max);
    let start_secs = start.as_micros() as f64 / 1e6;
    let first = (start_secs / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut abs = first;
    while abs - start_secs <= x_max + 1e-9 && ticks.len() < 64 {
        let at = Timestamp::from_micros((abs * 1e6) as u64);
        let label = if step < 60.0 {
            clock(at, true)
        } else if step < 86400.0 {
            clock(at, false)
        } else {
            let c = at.to_civil();
            format!("{:02}-{:02}", c.month, c.day)
        };
        ticks.push((abs - start_secs, label));
        abs += step;
    }
    ticks
}

fn truncate_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A coordinate, finite and rounded to 0.1.
fn c(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

/// Renders a chart as a standalone SVG document.
pub(crate) fn render(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let panel_h = PANEL_HEAD + PLOT_H + PANEL_FOOT;
    let height = HEADER + panel_h * chart.panels.len() as f64 + FOOTER;
    let x_max = if chart.x_max.is_finite() && chart.x_max > 0.0 {
        chart.x_max
    } else {
        1.0
    };
    let x_of = |t: f64| LEFT + (t.clamp(0.0, x_max) / x_max) * plot_w;
    let xt = x_ticks(chart.start, x_max);

    let mut s = String::with_capacity(16 * 1024);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" \
         role=\"img\">",
        w = c(WIDTH),
        h = c(height)
    );
    let _ = writeln!(s, "<title>{}</title>", xml(&chart.title));
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
        c(WIDTH),
        c(height)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"24\" font-size=\"18\" font-weight=\"bold\">{}</text>",
        c(LEFT),
        xml(&chart.title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"44\" fill=\"#555555\">{}</text>",
        c(LEFT),
        xml(&chart.subtitle)
    );

    for (pi, panel) in chart.panels.iter().enumerate() {
        let top = HEADER + panel_h * pi as f64;
        let y0 = top + PANEL_HEAD;
        let max = panel
            .series
            .iter()
            .flat_map(|se| se.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let yt = y_ticks(max);
        let y_max = yt.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
        let y_of = |v: f64| y0 + PLOT_H - (v.clamp(0.0, y_max) / y_max) * PLOT_H;

        let _ = writeln!(s, "<g class=\"panel\">");
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            c(LEFT),
            c(top + 16.0),
            xml(&panel.title)
        );
        // Legend.
        let mut lx = LEFT;
        let ly = top + 34.0;
        for (i, se) in panel.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let label = if se.points.is_empty() {
                format!("{} (no data)", se.name)
            } else {
                se.name.clone()
            };
            let _ = writeln!(
                s,
                "<g class=\"legend\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" \
                 stroke-width=\"3\"{}/><text x=\"{}\" y=\"{}\">{}</text></g>",
                c(lx),
                c(ly - 4.0),
                c(lx + 16.0),
                c(ly - 4.0),
                dash(i),
                c(lx + 20.0),
                c(ly),
                xml(&label)
            );
            lx += 36.0 + 6.6 * label.chars().count() as f64;
        }
        if !chart.faults.is_empty() {
            let _ = writeln!(
                s,
                "<g class=\"legend\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{FAULT_COLOR}\" \
                 stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{}\">fault</text></g>",
                c(lx),
                c(ly - 4.0),
                c(lx + 16.0),
                c(ly - 4.0),
                c(lx + 20.0),
                c(ly)
            );
        }

        // Plot area, grid and axes.
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#cccccc\"/>",
            c(LEFT),
            c(y0),
            c(plot_w),
            c(PLOT_H)
        );
        for v in &yt {
            let y = y_of(*v);
            let _ = writeln!(
                s,
                "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e5e5e5\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                c(LEFT),
                c(y),
                c(LEFT + plot_w),
                c(y),
                c(LEFT - 6.0),
                c(y + 4.0),
                xml(&si(*v))
            );
        }
        for (t, label) in &xt {
            let x = x_of(*t);
            let _ = writeln!(
                s,
                "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e5e5e5\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                c(x),
                c(y0),
                c(x),
                c(y0 + PLOT_H),
                c(x),
                c(y0 + PLOT_H + 16.0),
                xml(label)
            );
        }
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333333\"/>\
             <line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" stroke=\"#333333\"/>",
            l = c(LEFT),
            r = c(LEFT + plot_w),
            t = c(y0),
            b = c(y0 + PLOT_H)
        );

        // Fault markers.
        for (i, (t, what)) in chart.faults.iter().enumerate() {
            let x = x_of(*t);
            let at = Timestamp::from_micros(
                chart
                    .start
                    .as_micros()
                    .saturating_add((t.max(0.0) * 1e6) as u64),
            );
            let _ = write!(
                s,
                "<g class=\"fault\"><title>F{n} at {time}: {what}</title><line x1=\"{x}\" y1=\"{y1}\" \
                 x2=\"{x}\" y2=\"{y2}\" stroke=\"{FAULT_COLOR}\" stroke-width=\"1.5\" \
                 stroke-dasharray=\"4 3\"/>",
                n = i + 1,
                time = clock(at, true),
                what = xml(what),
                x = c(x),
                y1 = c(y0),
                y2 = c(y0 + PLOT_H)
            );
            let label = if pi == 0 {
                format!("F{} {}", i + 1, truncate_chars(what, FAULT_LABEL_CHARS))
            } else {
                format!("F{}", i + 1)
            };
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"{FAULT_COLOR}\">{}</text></g>",
                c(x + 3.0),
                c(y0 + 11.0 + 11.0 * (i % 3) as f64),
                xml(&label)
            );
        }

        // Series.
        for (i, se) in panel.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut pts = String::with_capacity(se.points.len() * 14);
            for (t, v) in se
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
            {
                if !pts.is_empty() {
                    pts.push(' ');
                }
                let _ = write!(pts, "{},{}", c(x_of(*t)), c(y_of(*v)));
            }
            let _ = writeln!(
                s,
                "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{color}\" \
                 stroke-width=\"1.5\" stroke-linejoin=\"round\"{} points=\"{pts}\"/>",
                xml(&se.name),
                dash(i)
            );
            if se.points.len() == 1 {
                if let Some((t, v)) = se.points.first() {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{color}\"/>",
                        c(x_of(*t)),
                        c(y_of(*v))
                    );
                }
            }
        }
        let _ = writeln!(s, "</g>");
    }

    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555555\">virtual time (UTC) from {}</text>",
        c(LEFT + plot_w / 2.0),
        c(height - 10.0),
        xml(&super::format::date_time(chart.start))
    );
    s.push_str("</svg>\n");
    s
}

/// Midpoint (seconds since start) of each bucket.
fn midpoints(report: &Report) -> Vec<f64> {
    report
        .throughput
        .iter()
        .map(|p| p.t + p.span_secs / 2.0)
        .collect()
}

fn series<T>(name: &str, xs: &[f64], items: &[T], value: impl Fn(&T) -> Option<f64>) -> Series {
    Series {
        name: name.to_owned(),
        points: xs
            .iter()
            .zip(items)
            .filter_map(|(x, item)| value(item).map(|v| (*x, v)))
            .collect(),
    }
}

fn chart(report: &Report, title: &str, panels: Vec<Panel>) -> Chart {
    Chart {
        title: title.to_owned(),
        subtitle: format!(
            "{} · seed {} · {} · scale {} · buckets of {} s",
            report.scenario,
            report.seed,
            report.mode,
            report.scale,
            si(report.bucket_secs)
        ),
        start: report.start(),
        x_max: report.x_extent_secs(),
        panels,
        faults: report
            .faults
            .iter()
            .map(|f| (f.t, f.what.clone()))
            .collect(),
    }
}

/// Series names, as they appear in `data-series` attributes.
pub(crate) mod names {
    pub(crate) const ACCEPTED: &str = "accepted/s";
    pub(crate) const DELIVERED: &str = "delivered/s";
    pub(crate) const REFUSED: &str = "refused/s";
    pub(crate) const EXPIRED: &str = "expired/s";
    pub(crate) const PAYLOAD_BYTES: &str = "payload bytes/s";
    pub(crate) const WAL_BYTES: &str = "WAL bytes/s";
    pub(crate) const E2E_P50: &str = "end-to-end p50";
    pub(crate) const E2E_P99: &str = "end-to-end p99";
    pub(crate) const E2E_MAX: &str = "end-to-end max";
    pub(crate) const SEND_P50: &str = "send p50";
    pub(crate) const SEND_P99: &str = "send p99";
    pub(crate) const SEND_P999: &str = "send p99.9";
    pub(crate) const DEEPEST: &str = "deepest partition queue";
    pub(crate) const WAL_IN_FLIGHT: &str = "WAL appends in flight";
}

/// `throughput.svg`: messages and bytes per virtual second.
pub(crate) fn throughput_svg(report: &Report) -> String {
    let xs = midpoints(report);
    let tp = &report.throughput;
    let messages = Panel {
        title: "Messages per virtual second".to_owned(),
        series: vec![
            series(names::ACCEPTED, &xs, tp, |p| Some(p.accepted_per_sec)),
            series(names::DELIVERED, &xs, tp, |p| Some(p.delivered_per_sec)),
            series(names::REFUSED, &xs, tp, |p| Some(p.refused_per_sec)),
            series(names::EXPIRED, &xs, tp, |p| Some(p.expired_per_sec)),
        ],
    };
    let bytes = Panel {
        title: "Bytes per virtual second".to_owned(),
        series: vec![
            series(names::PAYLOAD_BYTES, &xs, tp, |p| {
                Some(p.accepted_bytes_per_sec)
            }),
            series(names::WAL_BYTES, &xs, &report.wal, |p| p.bytes_per_sec),
        ],
    };
    render(&chart(report, "Throughput", vec![messages, bytes]))
}

/// `latency.svg`: end-to-end (virtual) and send (wall) percentiles, ms.
pub(crate) fn latency_svg(report: &Report) -> String {
    let xs = midpoints(report);
    let lt = &report.latency_over_time;
    let ms = |us: u64| us as f64 / 1000.0;
    let e2e = Panel {
        title: "End to end, acceptance to collection (virtual ms)".to_owned(),
        series: vec![
            series(names::E2E_P50, &xs, lt, |p| {
                p.end_to_end_virtual.map(|q| ms(q.p50_us))
            }),
            series(names::E2E_P99, &xs, lt, |p| {
                p.end_to_end_virtual.map(|q| ms(q.p99_us))
            }),
            series(names::E2E_MAX, &xs, lt, |p| {
                p.end_to_end_virtual.map(|q| ms(q.max_us))
            }),
        ],
    };
    let send = Panel {
        title: "Send, until acknowledged (wall ms)".to_owned(),
        series: vec![
            series(names::SEND_P50, &xs, lt, |p| {
                p.send_wall.map(|q| ms(q.p50_us))
            }),
            series(names::SEND_P99, &xs, lt, |p| {
                p.send_wall.map(|q| ms(q.p99_us))
            }),
            series(names::SEND_P999, &xs, lt, |p| {
                p.send_wall.map(|q| ms(q.p999_us))
            }),
        ],
    };
    render(&chart(report, "Latency", vec![e2e, send]))
}

/// `queue_depth.svg`: the deepest partition queue and WAL appends in
/// flight (maximum per bucket).
pub(crate) fn queue_depth_svg(report: &Report) -> String {
    let xs = midpoints(report);
    let qd = &report.queue_depth;
    let panel = Panel {
        title: "Queue depth (largest sample per bucket)".to_owned(),
        series: vec![
            series(names::DEEPEST, &xs, qd, |p| {
                p.deepest_partition_max.map(|n| n as f64)
            }),
            series(names::WAL_IN_FLIGHT, &xs, qd, |p| {
                p.wal_in_flight_max.map(|n| n as f64)
            }),
        ],
    };
    render(&chart(report, "Queue depth", vec![panel]))
}

#[cfg(test)]
mod tests {
    use super::super::xml_check::{check_well_formed, polyline_series};
    use super::*;

    fn chart_with(points: Vec<(f64, f64)>, faults: Vec<(f64, String)>) -> Chart {
        Chart {
            title: "T <&> \"q\"".to_owned(),
            subtitle: "s".to_owned(),
            start: Timestamp::from_unix_seconds(1_750_000_000),
            x_max: 3600.0,
            panels: vec![Panel {
                title: "p".to_owned(),
                series: vec![
                    Series {
                        name: "a&b".to_owned(),
                        points,
                    },
                    Series {
                        name: "empty".to_owned(),
                        points: vec![],
                    },
                ],
            }],
            faults,
        }
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.02), 0.02);
        assert_eq!(nice_step(120.0), 200.0);
        assert_eq!(y_ticks(10.0), vec![0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(y_ticks(0.0), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn x_ticks_fall_on_round_clock_times() {
        // 15:06:40 start, one hour: ticks every 10 minutes from 15:10.
        let start = Timestamp::from_unix_seconds(1_750_000_000);
        let ticks = x_ticks(start, 3600.0);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            ["15:10", "15:20", "15:30", "15:40", "15:50", "16:00"]
        );
        assert!((ticks[0].0 - 200.0).abs() < 1e-6);
        // Short spans show seconds.
        let short = x_ticks(start, 30.0);
        assert_eq!(short[0].1, "15:06:40");
        // Long spans show dates.
        let long = x_ticks(start, 20.0 * 86400.0);
        assert!(long.iter().all(|t| t.1.len() == 5 && t.1.contains('-')));
    }

    #[test]
    fn render_is_well_formed_and_escaped() {
        let svg = render(&chart_with(
            vec![(0.0, 1.0), (1800.0, 5.0), (3600.0, f64::NAN)],
            vec![(900.0, "node <crash> & restart".to_owned())],
        ));
        check_well_formed(&svg).expect("well-formed");
        assert_eq!(polyline_series(&svg), ["a&amp;b", "empty"]);
        assert!(svg.contains("node &lt;crash&gt; &amp; restart"));
        assert!(svg.contains("class=\"fault\""));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn degenerate_charts_still_render() {
        let mut ch = chart_with(vec![(5.0, 0.0)], vec![]);
        ch.x_max = 0.0;
        let svg = render(&ch);
        check_well_formed(&svg).expect("well-formed");
        assert!(svg.contains("<circle"));
        ch.panels.clear();
        check_well_formed(&render(&ch)).expect("well-formed");
    }
}
