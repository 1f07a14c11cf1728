//! [`Progress`]: a progress line on stderr while a long run goes.
//!
//! Invariants and why:
//! - Cheap per event: [`Progress::update`] is a counter comparison until
//!   enough events have passed to be worth reading the clock; that stride
//!   adapts to the event rate so the clock is read about every 20 ms,
//!   whether the run does ten events a second or ten million.
//! - On a terminal the line is redrawn in place (`\r`, padded over the
//!   previous one) at most every 100 ms. Elsewhere (CI logs, files) a plain
//!   line is written each time another 5 % of the estimated events is done,
//!   plus one a minute if progress is slow or the estimate is unknown, so
//!   logs stay short and readable.
//! - Progress is best effort: write errors are ignored, nothing panics,
//!   and it never touches the simulation's state or its determinism (it
//!   reads only the wall clock, for the display).
//! - [`Progress::finish`] prints a final line ending in a newline; dropping
//!   an unfinished terminal progress line ends it with a newline too, so a
//!   following error message starts on its own line.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use spine_core::time::Timestamp;

use super::format::{clock, hms, number, thousands};

/// Least time between redraws on a terminal.
const TTY_INTERVAL: Duration = Duration::from_millis(100);
/// Percent step between plain lines.
const PLAIN_STEP_PCT: u64 = 5;
/// Longest silence between plain lines.
const PLAIN_HEARTBEAT: Duration = Duration::from_secs(60);
/// Aim for one clock read per this much wall time.
const CHECK_TARGET: Duration = Duration::from_millis(20);
/// Most events between clock reads.
const MAX_STRIDE: u64 = 1 << 16;
/// Width of the bar on a terminal.
const BAR_WIDTH: usize = 24;

/// A progress indicator for a run. See the module docs.
pub struct Progress {
    out: Option<Box<dyn Write + Send>>,
    terminal: bool,
    estimated: u64,
    virtual_start: Timestamp,
    done: u64,
    virtual_now: Timestamp,
    started: Instant,
    last_check: Instant,
    last_check_done: u64,
    last_draw: Option<Instant>,
    last_draw_done: u64,
    rate: f64,
    next_check: u64,
    stride: u64,
    next_pct: u64,
    drawn_len: usize,
    line_open: bool,
    finished: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("visible", &self.out.is_some())
            .field("terminal", &self.terminal)
            .field("estimated", &self.estimated)
            .field("done", &self.done)
            .field("virtual_now", &self.virtual_now)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Progress {
    /// Progress on stderr; redrawn in place if stderr is a terminal.
    /// `estimated_events` may be 0 (unknown): no percentage is shown.
    pub fn new(estimated_events: u64, virtual_start: Timestamp) -> Progress {
        let terminal = io::stderr().is_terminal();
        Progress::with_writer(
            Box::new(io::stderr()),
            terminal,
            estimated_events,
            virtual_start,
        )
    }

    /// Progress written to `out`, as on a terminal or not.
    pub fn with_writer(
        out: Box<dyn Write + Send>,
        terminal: bool,
        estimated_events: u64,
        virtual_start: Timestamp,
    ) -> Progress {
        let now = Instant::now();
        Progress {
            out: Some(out),
            terminal,
            estimated: estimated_events,
            virtual_start,
            done: 0,
            virtual_now: virtual_start,
            started: now,
            last_check: now,
            last_check_done: 0,
            last_draw: None,
            last_draw_done: 0,
            rate: 0.0,
            next_check: 0,
            stride: 1,
            next_pct: PLAIN_STEP_PCT,
            drawn_len: 0,
            line_open: false,
            finished: false,
        }
    }

    /// Progress that shows nothing (`--quiet`, tests).
    pub fn hidden() -> Progress {
        let mut p = Progress::with_writer(Box::new(io::sink()), false, 0, Timestamp::ZERO);
        p.out = None;
        p
    }

    /// Changes the estimate of the total number of events.
    pub fn set_estimate(&mut self, estimated_events: u64) {
        self.estimated = estimated_events;
    }

    /// `events_done` events are processed and virtual time has reached
    /// `virtual_now`. Call as often as every event.
    pub fn update(&mut self, events_done: u64, virtual_now: Timestamp) {
        self.done = events_done;
        self.virtual_now = virtual_now;
        if events_done < self.next_check || self.out.is_none() || self.finished {
            return;
        }
        let now = Instant::now();
        self.retune(now);
        let due = if self.terminal {
            self.last_draw
                .is_none_or(|last| now.duration_since(last) >= TTY_INTERVAL)
        } else {
            let pct_due = self.percent().is_some_and(|p| p >= self.next_pct as f64);
            let quiet_since = self.last_draw.unwrap_or(self.started);
            pct_due || now.duration_since(quiet_since) >= PLAIN_HEARTBEAT
        };
        if due {
            self.draw(now, false);
        }
    }

    /// Ends the progress display with a final summary line.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.out.is_some() {
            self.draw(Instant::now(), true);
        }
    }

    /// Adjusts how many events pass between clock reads: towards one read
    /// per [`CHECK_TARGET`], growing at most twofold per read so a burst
    /// of instant events cannot make it jump past a whole step.
    fn retune(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last_check);
        let events = self.done.saturating_sub(self.last_check_done);
        let ceiling = self.stride.saturating_mul(2).min(MAX_STRIDE);
        let wanted = if elapsed.is_zero() {
            ceiling
        } else {
            let per_target = events as f64 * CHECK_TARGET.as_secs_f64() / elapsed.as_secs_f64();
            per_target as u64
        };
        self.stride = wanted.clamp(1, ceiling.max(1));
        self.last_check = now;
        self.last_check_done = self.done;
        self.next_check = self.done.saturating_add(self.stride);
    }

    fn percent(&self) -> Option<f64> {
        if self.estimated == 0 {
            None
        } else {
            Some((self.done as f64 / self.estimated as f64 * 100.0).min(100.0))
        }
    }

    fn line(&self, now: Instant, last: bool) -> String {
        let elapsed = now.duration_since(self.started);
        let vt = self.virtual_now;
        let virtual_part = format!(
            "virtual {} (+{})",
            clock(vt, true),
            hms(vt.saturating_sub(self.virtual_start))
        );
        let count = if self.estimated > 0 {
            format!(
                "{} / {} events",
                thousands(self.done),
                thousands(self.estimated)
            )
        } else {
            format!("{} events", thousands(self.done))
        };
        let average = if elapsed.is_zero() {
            0.0
        } else {
            self.done as f64 / elapsed.as_secs_f64()
        };
        if last {
            return format!(
                "done: {count} | {virtual_part} | {} ev/s | {:.1} s",
                number(average, 0),
                elapsed.as_secs_f64()
            );
        }
        let rate = if self.rate > 0.0 { self.rate } else { average };
        let pct = self.percent();
        let mut line = String::new();
        if let Some(p) = pct {
            if self.terminal {
                let filled = ((p / 100.0) * BAR_WIDTH as f64) as usize;
                let filled = filled.min(BAR_WIDTH);
                line.push('[');
                line.push_str(&"#".repeat(filled));
                line.push_str(&".".repeat(BAR_WIDTH - filled));
                line.push_str("] ");
            }
            line.push_str(&format!("{p:5.1}% "));
        }
        line.push_str(&format!(
            "{count} | {virtual_part} | {} ev/s",
            number(rate, 0)
        ));
        if rate > 0.0 && self.estimated > self.done {
            let eta = (self.estimated - self.done) as f64 / rate;
            if eta.is_finite() && eta < 1e9 {
                line.push_str(&format!(" | eta {}", hms(Duration::from_secs_f64(eta))));
            }
        }
        line
    }

    fn draw(&mut self, now: Instant, last: bool) {
        if let Some(prev) = self.last_draw {
            let dt = now.duration_since(prev).as_secs_f64();
            if dt > 0.0 {
                self.rate = self.done.saturating_sub(self.last_draw_done) as f64 / dt;
            }
        }
        let line = self.line(now, last);
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let result = if self.terminal {
            let pad = self.drawn_len.saturating_sub(line.chars().count());
            let end = if last { "\n" } else { "" };
            write!(out, "\r{line}{}{end}", " ".repeat(pad))
        } else {
            writeln!(out, "spine-sim: {line}")
        };
        let _ = result.and_then(|()| out.flush());
        self.drawn_len = line.chars().count();
        self.line_open = self.terminal && !last;
        self.last_draw = Some(now);
        self.last_draw_done = self.done;
        if let Some(p) = self.percent() {
            // Next multiple of the step above what is done.
            let reached = (p as u64 / PLAIN_STEP_PCT) * PLAIN_STEP_PCT;
            self.next_pct = reached.saturating_add(PLAIN_STEP_PCT);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.line_open {
            if let Some(out) = self.out.as_mut() {
                let _ = writeln!(out).and_then(|()| out.flush());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
        }
    }

    fn t0() -> Timestamp {
        Timestamp::from_unix_seconds(1_750_000_000)
    }

    #[test]
    fn plain_output_is_a_line_per_five_percent() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(Box::new(buf.clone()), false, 100_000, t0());
        for i in 1..=100_000u64 {
            p.update(i, t0().saturating_add(Duration::from_millis(i)));
        }
        p.finish();
        let text = buf.text();
        assert!(!text.contains('\r'));
        let lines: Vec<&str> = text.lines().collect();
        // 20 steps at most (the stride may skip past a step), plus the
        // final line.
        assert!(lines.len() >= 2 && lines.len() <= 21, "{text}");
        assert!(lines.iter().all(|l| l.starts_with("spine-sim: ")));
        let last = lines.last().copied().unwrap_or_default();
        assert!(last.contains("done: 100,000 / 100,000 events"), "{last}");
        assert!(last.contains("virtual 15:08:20 (+00:01:40)"), "{last}");
    }

    #[test]
    fn terminal_output_redraws_in_place() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(Box::new(buf.clone()), true, 10, t0());
        p.update(1, t0());
        p.update(2, t0());
        p.finish();
        let text = buf.text();
        assert!(text.starts_with('\r'), "{text:?}");
        assert!(text.contains("[##"), "{text:?}");
        assert!(text.contains("10.0%"), "{text:?}");
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1);
    }

    #[test]
    fn dropping_an_open_terminal_line_ends_it() {
        let buf = Shared::default();
        {
            let mut p = Progress::with_writer(Box::new(buf.clone()), true, 0, t0());
            p.update(5, t0());
        }
        let text = buf.text();
        assert!(text.contains("5 events"), "{text:?}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn hidden_is_silent_and_finish_is_idempotent() {
        let mut p = Progress::hidden();
        for i in 0..1000 {
            p.update(i, t0());
        }
        p.finish();
        p.finish();
        let buf = Shared::default();
        let mut q = Progress::with_writer(Box::new(buf.clone()), false, 0, t0());
        q.finish();
        q.finish();
        assert_eq!(buf.text().lines().count(), 1);
    }

    #[test]
    fn updates_are_throttled() {
        let buf = Shared::default();
        let mut p = Progress::with_writer(Box::new(buf.clone()), true, 0, t0());
        for i in 0..1_000_000u64 {
            p.update(i, t0());
        }
        // A million updates in well under a second: a handful of redraws.
        assert!(buf.text().matches('\r').count() < 50);
    }
}
