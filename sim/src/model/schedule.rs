//! What happens when: the lazily generated [`Schedule`] of [`SimEvent`]s.
//!
//! Invariants and why:
//! - Lazy: a binary heap holds only each source's *next* event (one per
//!   flow, at most one poll per mailbox, the next expiry tick and sample,
//!   the faults, and the non-delivery reports predicted but not yet due),
//!   so a national day is never materialised.
//! - Ordered: events come out by `(at, seq)`; `at` never decreases and
//!   `seq` counts up from 0 (unique, below 2^62, the driver's own range).
//!   Heap ties at the same microsecond are broken by insertion order, which
//!   is itself deterministic, so the stream is a pure function of the
//!   scenario, the population and the seed. No hash map is iterated.
//! - Bounded in time: every event lies in `[start, start + duration]`;
//!   sends and polls before the end, the last sample may fall on it.
//! - Arrivals are a non-homogeneous Poisson process per flow: exponential
//!   inter-arrival times spent across the flow's piecewise-constant rate
//!   ([`RateModel`]), so counts follow `rate × scale × diurnal × peaks`
//!   exactly in expectation. Each flow has its own random stream.
//! - Polls (only for `poll` consumers): each poller has a seeded phase in
//!   its interval and polls on its grid `start + phase + k × interval`. A
//!   class with `idle_polls` polls on every grid point (if it takes part in
//!   any flow). Otherwise a poll is emitted only at the first grid point
//!   after something may be waiting, by the schedule's own count: a
//!   message sent to the mailbox, or a non-delivery report predicted for
//!   it (a message it sent to an absent mailbox, due `inbox_expiry +
//!   expiry_tick` later); each poll takes `batch` off the count and polls
//!   continue every interval while it is positive. That keeps polls at
//!   most about one per message, however many mailboxes there are.
//! - Push and absent consumers get no events: the driver collects pushed
//!   messages itself; absent ones never collect.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use spine_core::ids::{MailboxId, WorkflowId};
use spine_core::random::{RandomSource, SeededRandom};
use spine_core::time::Timestamp;

use super::sampling::{self, label};
use super::{Action, ConsumerMode, Fault, Population, SendSpec, SimEvent};
use crate::scenario::{RateModel, Scenario, SizeDist, Targets};

const MICROS: u64 = 1_000_000;
/// Redraws of a recipient that came out equal to the sender.
const SELF_SEND_REDRAWS: u32 = 8;

/// The events of one run, generated lazily in `(at, seq)` order.
#[derive(Debug)]
pub struct Schedule {
    start: u64,
    end: u64,
    heap: BinaryHeap<Reverse<Pending>>,
    inserted: u64,
    next_seq: u64,
    flows: Vec<FlowGen>,
    classes: Vec<ClassPick>,
    mailboxes: Vec<MailboxId>,
    plans: Vec<Plan>,
    faults: Vec<Fault>,
    expiry_tick: u64,
    sample_every: u64,
    report_delay: u64,
    estimated: u64,
}

/// A heap entry: the next event of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: u64,
    order: u64,
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Flow(usize),
    Poll(usize),
    ReportDue(usize),
    ExpiryTick,
    Sample,
    Fault(usize),
}

/// One flow's generator.
#[derive(Debug)]
struct FlowGen {
    rates: RateModel,
    rng: SeededRandom,
    /// Offset of the last arrival, seconds.
    t: f64,
    seg_end: f64,
    seg_rate: f64,
    from: Picker,
    to: Picker,
    size: SizeDist,
    chunk_bytes: u64,
    workflow: WorkflowId,
}

/// Picks a class by share, then a mailbox within it.
#[derive(Debug, Clone)]
struct Picker {
    /// `(index into Schedule::classes, cumulative share)`.
    classes: Vec<(usize, f64)>,
    /// Mailboxes it can pick from.
    size: usize,
}

/// A class's mailboxes and, when skewed, the cumulative Zipf weights.
#[derive(Debug, Clone)]
struct ClassPick {
    first: usize,
    len: usize,
    cumulative: Option<Vec<f64>>,
}

/// A mailbox's polling state.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// `(interval µs, batch)` for pollers.
    poll: Option<(u64, u64)>,
    idle: bool,
    absent: bool,
    phase: u64,
    pending: u64,
    scheduled: bool,
}

/// The schedule of `scenario` for `pop` (which should be
/// `population(scenario, seed)`) and `seed`.
pub fn schedule(scenario: &Scenario, pop: &Population, seed: u64) -> Schedule {
    Schedule::new(scenario, pop, seed)
}

impl Schedule {
    fn new(scenario: &Scenario, pop: &Population, seed: u64) -> Schedule {
        let start = scenario.start.as_micros();
        let end = scenario.end().as_micros();
        let n = pop.mailboxes.len();
        // Class picks, indexed like `scenario.classes`.
        let spans = scenario.class_spans();
        let mut classes: Vec<ClassPick> = (0..scenario.classes.len())
            .map(|_| ClassPick {
                first: 0,
                len: 0,
                cumulative: None,
            })
            .collect();
        let mut idle_class = vec![false; n];
        let mut in_flows = vec![false; scenario.classes.len()];
        for flow in &scenario.flows {
            for targets in [&flow.from, &flow.to] {
                for (c, _) in scenario.target_shares(targets) {
                    if let Some(f) = in_flows.get_mut(c) {
                        *f = true;
                    }
                }
            }
        }
        for span in &spans {
            let first = span.first.min(n);
            let len = span.len.min(n - first);
            let Some(class) = scenario.classes.get(span.class) else {
                continue;
            };
            let cumulative = (class.skew > 0.0 && class.skew.is_finite() && len > 1).then(|| {
                let mut total = 0.0;
                (0..len)
                    .map(|r| {
                        total += sampling::powf((r + 1) as f64, -class.skew);
                        total
                    })
                    .collect()
            });
            if let Some(slot) = classes.get_mut(span.class) {
                *slot = ClassPick {
                    first,
                    len,
                    cumulative,
                };
            }
            let idle =
                class.consumer.idle_polls && in_flows.get(span.class).copied().unwrap_or(false);
            for flag in idle_class.iter_mut().skip(first).take(len) {
                *flag = idle;
            }
        }
        let picker = |targets: &Targets| {
            let mut cumulative = 0.0;
            let mut size = 0;
            let classes: Vec<(usize, f64)> = scenario
                .target_shares(targets)
                .into_iter()
                .filter(|(c, _)| classes.get(*c).is_some_and(|p| p.len > 0))
                .map(|(c, share)| {
                    cumulative += share;
                    size += classes.get(c).map_or(0, |p| p.len);
                    (c, cumulative)
                })
                .collect();
            Picker { classes, size }
        };
        let flows: Vec<FlowGen> = scenario
            .flows
            .iter()
            .enumerate()
            .map(|(i, flow)| FlowGen {
                rates: RateModel::new(scenario, flow),
                rng: sampling::stream(seed, label::FLOW, i as u64),
                t: 0.0,
                seg_end: 0.0,
                seg_rate: 0.0,
                from: picker(&flow.from),
                to: picker(&flow.to),
                size: flow.size.clone(),
                chunk_bytes: flow.chunk_bytes.max(1),
                workflow: flow.workflow.clone(),
            })
            .collect();
        let plans = pop
            .mailboxes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let poll = match m.consumer {
                    ConsumerMode::Poll {
                        interval_secs,
                        batch,
                    } => Some((
                        interval_secs.max(1).saturating_mul(MICROS),
                        (batch as u64).max(1),
                    )),
                    _ => None,
                };
                let phase = match poll {
                    Some((interval, _)) => {
                        sampling::derive(seed, label::PHASE, i as u64) % interval
                    }
                    None => 0,
                };
                Plan {
                    poll,
                    idle: idle_class.get(i).copied().unwrap_or(false),
                    absent: m.consumer == ConsumerMode::Absent,
                    phase,
                    pending: 0,
                    scheduled: false,
                }
            })
            .collect();
        let mut schedule = Schedule {
            start,
            end,
            heap: BinaryHeap::new(),
            inserted: 0,
            next_seq: 0,
            flows,
            classes,
            mailboxes: pop.mailboxes.iter().map(|m| m.id.clone()).collect(),
            plans,
            faults: scenario.faults.iter().map(|f| f.fault()).collect(),
            expiry_tick: scenario.node.expiry_tick.max(1).saturating_mul(MICROS),
            sample_every: scenario.node.sample_interval.max(1).saturating_mul(MICROS),
            report_delay: scenario
                .node
                .inbox_expiry
                .saturating_add(scenario.node.expiry_tick)
                .saturating_mul(MICROS),
            estimated: scenario.estimated_events(),
        };
        schedule.prime(scenario);
        schedule
    }

    /// Pushes every source's first event.
    fn prime(&mut self, scenario: &Scenario) {
        for (i, fault) in scenario.faults.iter().enumerate() {
            let at = self.start.saturating_add(fault.at.saturating_mul(MICROS));
            if at <= self.end {
                self.push(at, Source::Fault(i));
            }
        }
        self.push(self.start, Source::Sample);
        let first_tick = self.start.saturating_add(self.expiry_tick);
        if first_tick <= self.end {
            self.push(first_tick, Source::ExpiryTick);
        }
        for i in 0..self.flows.len() {
            self.schedule_flow(i);
        }
        for i in 0..self.plans.len() {
            let Some(plan) = self.plans.get_mut(i) else {
                continue;
            };
            if plan.idle && plan.poll.is_some() {
                plan.scheduled = true;
                let at = self.start.saturating_add(plan.phase);
                if at < self.end {
                    self.push(at, Source::Poll(i));
                }
            }
        }
    }

    /// Events expected in all (for a progress bar; the actual count is
    /// random around it).
    pub fn estimated_events(&self) -> u64 {
        self.estimated
    }

    /// Events yielded so far.
    pub fn emitted(&self) -> u64 {
        self.next_seq
    }

    /// The virtual start.
    pub fn start(&self) -> Timestamp {
        Timestamp::from_micros(self.start)
    }

    /// The virtual end (no event lies after it).
    pub fn end(&self) -> Timestamp {
        Timestamp::from_micros(self.end)
    }

    fn push(&mut self, at: u64, source: Source) {
        self.heap.push(Reverse(Pending {
            at,
            order: self.inserted,
            source,
        }));
        self.inserted += 1;
    }

    /// Draws flow `i`'s next arrival and queues it, unless it ends.
    fn schedule_flow(&mut self, i: usize) {
        let Some(flow) = self.flows.get_mut(i) else {
            return;
        };
        let Some(offset) = flow.next_arrival() else {
            return;
        };
        let micros = (offset * 1e6).floor();
        let micros = if micros.is_finite() && micros >= 0.0 {
            micros as u64
        } else {
            u64::MAX
        };
        let at = self.start.saturating_add(micros);
        if at < self.end {
            self.push(at, Source::Flow(i));
        }
    }

    /// Queues mailbox `i`'s next poll after `now`, unless one is queued.
    fn want_poll(&mut self, i: usize, now: u64) {
        let Some(plan) = self.plans.get_mut(i) else {
            return;
        };
        let Some((interval, _)) = plan.poll else {
            return;
        };
        if plan.idle || plan.scheduled {
            return;
        }
        let origin = self.start.saturating_add(plan.phase);
        let at = if now < origin {
            origin
        } else {
            let k = (now - origin) / interval + 1;
            origin.saturating_add(k.saturating_mul(interval))
        };
        if at < self.end {
            plan.scheduled = true;
            self.push(at, Source::Poll(i));
        }
    }

    /// A send from flow `i` at `at`.
    fn send(&mut self, i: usize, at: u64) -> Option<Action> {
        let flow = self.flows.get_mut(i)?;
        let from = flow.from.pick(&mut flow.rng, &self.classes);
        let mut to = flow.to.pick(&mut flow.rng, &self.classes);
        if flow.to.size > 1 {
            for _ in 0..SELF_SEND_REDRAWS {
                if to != from {
                    break;
                }
                to = flow.to.pick(&mut flow.rng, &self.classes);
            }
        }
        let bytes = sample_size(&flow.size, &mut flow.rng);
        let chunks = bytes.div_ceil(flow.chunk_bytes).max(1);
        let content_seed = flow.rng.next_u64();
        let workflow = flow.workflow.clone();
        self.schedule_flow(i);
        let (from, to) = (from?, to?);
        let spec = SendSpec {
            from: self.mailboxes.get(from)?.clone(),
            to: self.mailboxes.get(to)?.clone(),
            workflow,
            bytes,
            chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
            content_seed,
        };
        if let Some(plan) = self.plans.get_mut(to) {
            plan.pending = plan.pending.saturating_add(1);
        }
        self.want_poll(to, at);
        let recipient_absent = self.plans.get(to).is_some_and(|p| p.absent);
        let sender_polls = self
            .plans
            .get(from)
            .is_some_and(|p| p.poll.is_some() && !p.idle);
        if recipient_absent && sender_polls {
            let due = at.saturating_add(self.report_delay);
            if due < self.end {
                self.push(due, Source::ReportDue(from));
            }
        }
        Some(Action::Send(spec))
    }

    /// Mailbox `i` polls at `at`.
    fn poll(&mut self, i: usize, at: u64) -> Option<Action> {
        let plan = self.plans.get_mut(i)?;
        let (interval, batch) = plan.poll?;
        plan.pending = plan.pending.saturating_sub(batch);
        let again = plan.idle || plan.pending > 0;
        let next = at.saturating_add(interval);
        plan.scheduled = again && next < self.end;
        if plan.scheduled {
            self.push(next, Source::Poll(i));
        }
        Some(Action::Poll {
            mailbox: self.mailboxes.get(i)?.clone(),
        })
    }

    /// The next event, if any.
    fn step(&mut self) -> Option<SimEvent> {
        loop {
            let Reverse(Pending { at, source, .. }) = self.heap.pop()?;
            let action = match source {
                Source::Flow(i) => self.send(i, at),
                Source::Poll(i) => self.poll(i, at),
                Source::ReportDue(i) => {
                    if let Some(plan) = self.plans.get_mut(i) {
                        plan.pending = plan.pending.saturating_add(1);
                    }
                    self.want_poll(i, at);
                    None
                }
                Source::ExpiryTick => {
                    let next = at.saturating_add(self.expiry_tick);
                    if next <= self.end {
                        self.push(next, Source::ExpiryTick);
                    }
                    Some(Action::ExpiryTick)
                }
                Source::Sample => {
                    let next = at.saturating_add(self.sample_every);
                    if next <= self.end {
                        self.push(next, Source::Sample);
                    }
                    Some(Action::Sample)
                }
                Source::Fault(i) => self.faults.get(i).copied().map(Action::Fault),
            };
            if let Some(action) = action {
                let seq = self.next_seq;
                self.next_seq += 1;
                return Some(SimEvent {
                    at: Timestamp::from_micros(at),
                    seq,
                    action,
                });
            }
        }
    }
}

impl Iterator for Schedule {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        self.step()
    }
}

impl FlowGen {
    /// The offset of the next arrival, spending one Exp(1) variate across
    /// the rate's segments (`None` once past the end).
    fn next_arrival(&mut self) -> Option<f64> {
        let duration = self.rates.duration();
        let mut budget = sampling::exp1(&mut self.rng);
        loop {
            if self.t.is_nan() || self.t >= duration {
                return None;
            }
            if self.t >= self.seg_end {
                let (rate, end) = self.rates.segment(self.t);
                self.seg_rate = rate;
                self.seg_end = end;
            }
            let capacity = self.seg_rate * (self.seg_end - self.t);
            if self.seg_rate > 0.0 && budget < capacity {
                self.t += budget / self.seg_rate;
                return (self.t < duration).then_some(self.t);
            }
            if self.seg_rate > 0.0 {
                budget -= capacity;
            }
            self.t = self.seg_end;
        }
    }
}

impl Picker {
    /// A mailbox index, or `None` when the picker covers no mailbox.
    fn pick(&self, rng: &mut SeededRandom, classes: &[ClassPick]) -> Option<usize> {
        let class = match self.classes.as_slice() {
            [] => return None,
            [(only, _)] => *only,
            all => {
                let total = all.last().map_or(0.0, |(_, c)| *c);
                let u = sampling::unit(rng) * total;
                let slot = all.partition_point(|(_, c)| *c <= u).min(all.len() - 1);
                all.get(slot).map(|(c, _)| *c)?
            }
        };
        classes.get(class)?.pick(rng)
    }
}

impl ClassPick {
    fn pick(&self, rng: &mut SeededRandom) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let within = match &self.cumulative {
            None => sampling::below(rng, self.len as u64) as usize,
            Some(cumulative) => {
                let total = cumulative.last().copied().unwrap_or(0.0);
                let u = sampling::unit(rng) * total;
                cumulative.partition_point(|c| *c <= u).min(self.len - 1)
            }
        };
        Some(self.first + within)
    }
}

/// One message size from `dist`, clamped to its bounds (at least 1 byte).
pub(crate) fn sample_size(dist: &SizeDist, rng: &mut SeededRandom) -> u64 {
    let sampled = match dist {
        SizeDist::Fixed(n) => *n,
        SizeDist::Uniform { min, max } => {
            let (lo, hi) = (*min.min(max), *max.max(min));
            match (hi - lo).checked_add(1) {
                Some(span) => lo + sampling::below(rng, span),
                None => rng.next_u64(),
            }
        }
        SizeDist::LogNormal { median, sigma, .. } => {
            let (lo, hi) = dist.bounds();
            let z = sampling::std_normal(rng);
            let v = (*median as f64 * sampling::exp(sigma * z) + 0.5).floor();
            let v = if v.is_finite() && v >= 0.0 {
                v as u64
            } else {
                hi
            };
            v.clamp(lo.min(hi), hi)
        }
        SizeDist::Mix(parts) => {
            let total: f64 = parts.iter().map(|p| p.weight.max(0.0)).sum();
            let mut u = sampling::unit(rng) * total;
            let mut chosen = parts.last();
            for part in parts {
                let w = part.weight.max(0.0);
                if u < w {
                    chosen = Some(part);
                    break;
                }
                u -= w;
            }
            match chosen {
                // Validation forbids nesting; a hand-built nested mix is
                // still finite, so this recursion terminates.
                Some(part) => sample_size(&part.size, rng),
                None => 1,
            }
        }
    };
    sampled.max(1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::population;
    use crate::scenario::WeightedSize;

    #[test]
    fn the_heap_holds_only_each_sources_next_event() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/national-day.toml");
        let scenario = Scenario::load(path).unwrap();
        let pop = population(&scenario, 1);
        let mut schedule = schedule(&scenario, &pop, 1);
        // Flows, at most one poll per mailbox, a tick, a sample, the faults
        // (reports fall due after this day: expiry is 5 days).
        let bound = scenario.flows.len() + pop.mailboxes.len() + 2 + scenario.faults.len();
        let mut peak = 0;
        for _ in 0..200_000 {
            assert!(schedule.next().is_some());
            peak = peak.max(schedule.heap.len());
        }
        assert!(peak <= bound, "{peak} > {bound}");
        assert!(peak < 20_000, "{peak}");
    }

    #[test]
    fn sizes_stay_within_their_bounds() {
        let mut rng = SeededRandom::new(5);
        let lognormal = SizeDist::LogNormal {
            median: 10_000,
            sigma: 1.0,
            min: Some(500),
            max: Some(200_000),
        };
        let mut samples: Vec<u64> = (0..20_001)
            .map(|_| sample_size(&lognormal, &mut rng))
            .collect();
        assert!(samples.iter().all(|s| (500..=200_000).contains(s)));
        samples.sort_unstable();
        let median = samples[10_000] as f64;
        assert!((median / 10_000.0 - 1.0).abs() < 0.05, "{median}");
        let uniform = SizeDist::Uniform { min: 3, max: 5 };
        let seen: std::collections::BTreeSet<u64> =
            (0..100).map(|_| sample_size(&uniform, &mut rng)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [3, 4, 5]);
        let mix = SizeDist::Mix(vec![
            WeightedSize {
                weight: 3.0,
                size: SizeDist::Fixed(10),
            },
            WeightedSize {
                weight: 1.0,
                size: SizeDist::Fixed(20),
            },
        ]);
        let tens = (0..10_000)
            .filter(|_| sample_size(&mix, &mut rng) == 10)
            .count();
        assert!((tens as f64 / 10_000.0 - 0.75).abs() < 0.02, "{tens}");
        // Never 0 bytes, even from a hand-built distribution.
        assert_eq!(sample_size(&SizeDist::Fixed(0), &mut rng), 1);
        assert_eq!(sample_size(&SizeDist::Mix(Vec::new()), &mut rng), 1);
        let full = SizeDist::Uniform {
            min: 0,
            max: u64::MAX,
        };
        assert!(sample_size(&full, &mut rng) >= 1);
    }
}
