//! Hand-written SVG charts against offered load, in the simulator's style
//! (`sim/src/report/svg.rs`): `throughput.svg` (achieved msgs/s, with the
//! offered = achieved diagonal) and `latency.svg` (p50 and p99, log scale).
//!
//! Invariants:
//! - Output is standalone, well-formed SVG 1.1: XML prolog, one `<svg>`
//!   root in the SVG namespace, every element closed, all text escaped.
//! - Each series is exactly one `<polyline class="series"
//!   data-series="NAME">`, even when it has no points, so a reader or a
//!   test finds every mode by name; each point is also a `<circle>` with a
//!   `<title>` giving its values.
//! - Every coordinate written is finite; points that cannot be drawn
//!   (non-finite, or not positive on a log axis) are skipped; nothing here
//!   panics on any input.

use std::fmt::Write as _;

use super::markdown::thousands;
use super::report::{PeerResult, Report};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 56.0;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#d62728",
];

/// One line: `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: usize,
    pub(crate) dashed: bool,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A chart with one plot area.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) subtitle: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    /// Log-scale y axis (latency), values in milliseconds.
    pub(crate) log_y: bool,
    /// Draw the y = x diagonal (throughput against offered load).
    pub(crate) diagonal: bool,
    pub(crate) series: Vec<Series>,
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A coordinate, finite and rounded to 0.1.
fn c(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

/// A round step (1, 2, 2.5 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let exp = 10f64.powf(raw.log10().floor());
    let f = raw / exp;
    let nf = match f {
        f if f <= 1.0 => 1.0,
        f if f <= 2.0 => 2.0,
        f if f <= 2.5 => 2.5,
        f if f <= 5.0 => 5.0,
        _ => 10.0,
    };
    nf * exp
}

/// Linear ticks from 0 to a round maximum at or above `max`.
pub(crate) fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let step = nice_step(max / 5.0);
    let mut ticks = vec![0.0];
    let mut v = 0.0;
    while v < max && ticks.len() < 12 {
        v += step;
        ticks.push(v);
    }
    ticks
}

/// Powers of ten covering `[min, max]` (both positive), at most 12.
pub(crate) fn log_ticks(min: f64, max: f64) -> Vec<f64> {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    let (min, max) = match (ok(min), ok(max)) {
        (true, true) if min <= max => (min, max),
        _ => (1.0, 10.0),
    };
    let lo = min.log10().floor() as i32;
    let hi = (max.log10().ceil() as i32).max(lo + 1);
    (lo..=hi.min(lo + 11)).map(|e| 10f64.powi(e)).collect()
}

fn tick_label(v: f64, log_y: bool) -> String {
    if log_y {
        if v >= 1000.0 {
            format!("{} s", thousands(v / 1000.0))
        } else if v >= 1.0 {
            format!("{v:.0} ms")
        } else {
            format!("{v} ms")
        }
    } else if v >= 1000.0 && v % 1000.0 == 0.0 {
        format!("{}k", thousands(v / 1000.0))
    } else {
        thousands(v)
    }
}

/// Renders a chart as a standalone SVG document.
pub(crate) fn render(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let drawable = |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && x >= 0.0 && y >= 0.0 && (!chart.log_y || y > 0.0)
    };
    let all: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(drawable)
        .collect();
    let x_ticks = linear_ticks(all.iter().map(|p| p.0).fold(0.0, f64::max));
    let x_max = x_ticks.last().copied().unwrap_or(1.0);
    let y_max_data = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let y_ticks = if chart.log_y {
        let min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        log_ticks(min, y_max_data)
    } else {
        linear_ticks(y_max_data.max(if chart.diagonal { x_max } else { 0.0 }))
    };
    let y_lo = y_ticks.first().copied().unwrap_or(0.0);
    let y_hi = y_ticks.last().copied().unwrap_or(1.0);
    let x_of = |x: f64| LEFT + (x / x_max).clamp(0.0, 1.0) * plot_w;
    let y_of = |y: f64| {
        let f = if chart.log_y {
            (y.log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10())
        } else {
            (y - y_lo) / (y_hi - y_lo)
        };
        let f = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        };
        TOP + plot_h - f * plot_h
    };

    let mut s = String::with_capacity(16 * 1024);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" role=\"img\">",
        w = c(WIDTH),
        h = c(HEIGHT)
    );
    let _ = writeln!(s, "<title>{}</title>", xml(&chart.title));
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
        c(WIDTH),
        c(HEIGHT)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>",
        c(LEFT),
        xml(&chart.title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"44\" fill=\"#555555\">{}</text>",
        c(LEFT),
        xml(&chart.subtitle)
    );
    // Grid and axes.
    for &t in &y_ticks {
        let y = y_of(t);
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e0e0e0\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            c(LEFT), c(LEFT + plot_w), c(LEFT - 6.0), c(y_of(t) + 4.0), xml(&tick_label(t, chart.log_y)),
            y = c(y)
        );
    }
    for &t in &x_ticks {
        let x = x_of(t);
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#e0e0e0\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            c(TOP), c(TOP + plot_h), c(TOP + plot_h + 16.0), xml(&tick_label(t, false)),
            x = c(x)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333333\"/>",
        c(LEFT),
        c(TOP),
        c(plot_w),
        c(plot_h)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        c(LEFT + plot_w / 2.0),
        c(HEIGHT - 14.0),
        xml(&chart.x_label)
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{y}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {y})\">{}</text>",
        xml(&chart.y_label),
        y = c(TOP + plot_h / 2.0)
    );
    if chart.diagonal {
        let end = x_max.min(y_hi);
        let _ = writeln!(
            s,
            "<line class=\"diagonal\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999999\" stroke-dasharray=\"4 4\"><title>achieved = offered</title></line>",
            c(x_of(0.0)), c(y_of(0.0)), c(x_of(end)), c(y_of(end))
        );
    }
    // Series and legend.
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[series.color % PALETTE.len()];
        let dash = if series.dashed {
            " stroke-dasharray=\"6 3\""
        } else {
            ""
        };
        let mut pts: Vec<(f64, f64)> = series.points.iter().copied().filter(drawable).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{},{}", c(x_of(x)), c(y_of(y))))
            .collect();
        let _ = writeln!(
            s,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            xml(&series.name),
            coords.join(" ")
        );
        for &(x, y) in &pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"><title>{}: offered {} → {}</title></circle>",
                c(x_of(x)), c(y_of(y)), xml(&series.name), thousands(x),
                if chart.log_y { format!("{y:.2} ms") } else { thousands(y) }
            );
        }
        let ly = TOP + 8.0 + i as f64 * 18.0;
        let lx = LEFT + plot_w + 14.0;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            c(lx), c(ly), c(lx + 22.0), c(ly), c(lx + 28.0), c(ly + 4.0), xml(&series.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn points(p: &PeerResult, f: impl Fn(&super::report::RunResult) -> f64) -> Vec<(f64, f64)> {
    p.fixed_rate
        .iter()
        .filter_map(|r| r.offered_msgs_per_s.map(|o| (o, f(r))))
        .collect()
}

/// Achieved throughput against offered load, one line per mode.
pub(crate) fn throughput_chart(report: &Report) -> Chart {
    Chart {
        title: "Throughput against offered load".to_owned(),
        subtitle: format!(
            "{} B messages, {} producers, {} consumers, {} s per point; dashed grey: achieved = offered",
            report.workload.size, report.workload.producers, report.workload.consumers, report.workload.seconds
        ),
        x_label: "offered load (msgs/s)".to_owned(),
        y_label: "acknowledged msgs/s".to_owned(),
        log_y: false,
        diagonal: true,
        series: report
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| Series {
                name: p.mode.clone(),
                color: i,
                dashed: false,
                points: points(p, |r| r.throughput_msgs_per_s),
            })
            .collect(),
    }
}

/// p99 (solid) and p50 (dashed) latency against offered load.
pub(crate) fn latency_chart(report: &Report) -> Chart {
    let mut series = Vec::new();
    for (i, p) in report.peers.iter().enumerate() {
        series.push(Series {
            name: format!("{} p99", p.mode),
            color: i,
            dashed: false,
            points: points(p, |r| r.latency_us.p99 as f64 / 1000.0),
        });
        series.push(Series {
            name: format!("{} p50", p.mode),
            color: i,
            dashed: true,
            points: points(p, |r| r.latency_us.p50 as f64 / 1000.0),
        });
    }
    Chart {
        title: "Publish-to-acknowledgement latency against offered load".to_owned(),
        subtitle: "from each message's scheduled send time (coordinated omission); log scale"
            .to_owned(),
        x_label: "offered load (msgs/s)".to_owned(),
        y_label: "latency".to_owned(),
        log_y: true,
        diagonal: false,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::super::mode::Mode;
    use super::super::report::tests::sample;
    use super::*;

    /// Element names in document order, and whether every tag was closed
    /// (a small well-formedness check: no XML crate needed).
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let body = svg.trim_start_matches(|c| c != '>').get(1..).unwrap_or("");
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                return false;
            };
            let tag = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or("").to_owned();
                stack.push(name);
            }
        }
        stack.is_empty()
    }

    #[test]
    fn charts_are_well_formed_with_one_polyline_per_series() {
        let report = sample();
        for (chart, per_mode) in [(throughput_chart(&report), 1), (latency_chart(&report), 2)] {
            let svg = render(&chart);
            assert!(svg.starts_with("<?xml"));
            assert!(balanced(&svg), "unbalanced:\n{svg}");
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
            assert_eq!(
                svg.matches("<polyline class=\"series\"").count(),
                Mode::ALL.len() * per_mode
            );
            assert!(
                svg.contains("data-series=\"spine")
                    && svg.contains("data-series=\"redis-aof-always")
            );
        }
    }

    #[test]
    fn points_land_where_their_values_say() {
        let chart = Chart {
            title: "t <&>".into(),
            subtitle: String::new(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: false,
            diagonal: false,
            series: vec![Series {
                name: "a".into(),
                color: 0,
                dashed: false,
                points: vec![(0.0, 0.0), (10.0, 10.0), (f64::NAN, 1.0)],
            }],
        };
        let svg = render(&chart);
        assert!(svg.contains("t &lt;&amp;&gt;"));
        // x ticks 0..10 over the plot width, y ticks 0..10 over its height.
        let left = c(LEFT);
        let bottom = c(HEIGHT - BOTTOM);
        let right = c(WIDTH - RIGHT);
        let top = c(TOP);
        assert!(
            svg.contains(&format!("points=\"{left},{bottom} {right},{top}\"")),
            "{svg}"
        );
    }

    #[test]
    fn log_ticks_cover_the_data_and_bad_input_is_survived() {
        assert_eq!(
            log_ticks(0.5, 2000.0),
            vec![0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        assert_eq!(log_ticks(f64::NAN, 0.0), vec![1.0, 10.0]);
        assert_eq!(linear_ticks(93_000.0).last(), Some(&100_000.0));
        let empty = Chart {
            title: String::new(),
            subtitle: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_y: true,
            diagonal: true,
            series: vec![Series {
                name: "none".into(),
                color: 9,
                dashed: true,
                points: vec![(1.0, 0.0)],
            }],
        };
        let svg = render(&empty);
        assert!(balanced(&svg));
        assert!(svg.contains("data-series=\"none\""));
    }
}
