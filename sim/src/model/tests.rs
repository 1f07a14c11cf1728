//! Population and schedule tests: determinism, order, rates, shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use spine_core::ids::{MailboxId, OdsCode, WorkflowId};

use super::*;
use crate::scenario::{Scenario, ScenarioError};

const BASE: &str = r#"
name = "test"
start = "2026-03-02T00:00:00Z"
duration = 7200

[node]
inbox_expiry = 600
expiry_tick = 60
sample_interval = 300

[[class]]
name = "hub"
hub = true
organisations = 3
mailboxes_per_organisation = 2
skew = 1.0
[class.consumer]
mode = "push"
delay_ms = 50

[[class]]
name = "practice"
organisations = 50
[class.consumer]
mode = "poll"
interval = 60
interval_max = 120
batch = 5
slow_fraction = 0.1
slow_factor = 5
absent_fraction = 0.1

[[flow]]
name = "results"
workflow = "PATH_MEDRPT_V3"
rate = 2
from = "hub"
to = "practice"
size = { lognormal = { median = 3000, sigma = 1.0, min = 100, max = 50000 } }
chunk_bytes = 4096

[[flow]]
name = "requests"
workflow = "PATH_TEST_REQUEST"
rate = 1
from = "practice"
to = "hub"

[[flow]]
name = "misc"
workflow = "MISC"
registered = false
rate = 0.5
from = "any"
to = "any"

[[fault]]
at = 100
kind = "node_crash"

[[fault]]
at = 100
kind = "partition_panic"
partition = 2
"#;

fn base() -> Scenario {
    match Scenario::parse(BASE) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(path).unwrap_or_else(|e: ScenarioError| panic!("{e}"))
}

/// SHA-256 of the first `n` events' debug forms.
fn hash_events(events: impl Iterator<Item = SimEvent>, n: usize) -> String {
    let mut h = Sha256::new();
    for e in events.take(n) {
        h.update(format!("{e:?}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

fn events(s: &Scenario, seed: u64) -> Vec<SimEvent> {
    let pop = population(s, seed);
    schedule(s, &pop, seed).collect()
}

#[test]
fn population_follows_the_scenario() {
    let s = base();
    let pop = population(&s, 1);
    assert_eq!(pop.mailboxes.len(), 56);
    // Hubs first, in organisation order, two mailboxes each.
    let ids: Vec<&str> = pop.mailboxes.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(&ids[..3], ["HUB001OT001", "HUB001OT002", "HUB002OT001"]);
    assert_eq!(ids[6], "PRA001OT001");
    assert_eq!(ids[55], "PRA050OT001");
    assert!(pop.mailboxes[..6].iter().all(|m| m.hub));
    assert!(pop.mailboxes[6..].iter().all(|m| !m.hub));
    assert_eq!(pop.mailboxes[1].ods, OdsCode::parse("HUB001").unwrap());
    // Ids unique and valid.
    let unique: BTreeSet<&MailboxId> = pop.mailboxes.iter().map(|m| &m.id).collect();
    assert_eq!(unique.len(), 56);
    for m in &pop.mailboxes {
        assert_eq!(MailboxId::parse(m.id.as_str()).as_ref(), Ok(&m.id));
        assert_eq!(m.password.len(), 24);
        assert!(m.password.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    // Consumers: hubs push; practices poll within 60..=120 s, slow ones
    // five times slower; exactly 10% slow and 10% absent.
    assert!(pop.mailboxes[..6]
        .iter()
        .all(|m| m.consumer == ConsumerMode::Push { delay_ms: 50 }));
    let practices = &pop.mailboxes[6..];
    let absent = practices
        .iter()
        .filter(|m| m.consumer == ConsumerMode::Absent)
        .count();
    let mut slow = 0;
    for m in practices {
        if let ConsumerMode::Poll {
            interval_secs,
            batch,
        } = m.consumer
        {
            assert_eq!(batch, 5);
            if interval_secs > 120 {
                slow += 1;
                assert!((300..=600).contains(&interval_secs), "{interval_secs}");
            } else {
                assert!((60..=120).contains(&interval_secs), "{interval_secs}");
            }
        }
    }
    assert_eq!((absent, slow), (5, 5));
    // Registered workflows only, with the classes' mailboxes.
    let wf: Vec<&str> = pop.workflows.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(wf, ["PATH_MEDRPT_V3", "PATH_TEST_REQUEST"]);
    assert_eq!(pop.workflows[0].senders.len(), 6);
    assert_eq!(pop.workflows[0].receivers.len(), 50);
    assert!(pop.workflows[0].receivers.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn population_is_a_function_of_the_seed() {
    let s = base();
    assert_eq!(population(&s, 7), population(&s, 7));
    let (a, b) = (population(&s, 7), population(&s, 8));
    assert_ne!(a, b);
    // Ids never depend on the seed; passwords and consumers do.
    let ids = |p: &Population| p.mailboxes.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(a.mailboxes[0].password, b.mailboxes[0].password);
}

#[test]
fn directory_authenticates_and_enforces_registered_workflows() {
    let s = base();
    let pop = population(&s, 3);
    let dir = directory(&pop, 3).unwrap();
    assert_eq!(dir.len(), 56);
    let hub = &pop.mailboxes[0];
    let practice = &pop.mailboxes[10];
    assert!(dir.authenticate(&hub.id, &hub.password).is_ok());
    assert!(dir.authenticate(&hub.id, "wrong").is_err());
    let results = WorkflowId::parse("PATH_MEDRPT_V3").unwrap();
    assert!(dir.check_send(&hub.id, &practice.id, &results).is_ok());
    assert!(dir.check_send(&practice.id, &hub.id, &results).is_err());
    // Unregistered: anyone to anyone.
    let misc = WorkflowId::parse("MISC").unwrap();
    assert!(dir.workflow(&misc).is_none());
    assert!(dir.check_send(&practice.id, &hub.id, &misc).is_ok());
    // Lookup by ODS code finds the mailbox.
    assert_eq!(dir.lookup(&practice.ods, &results).len(), 1);
    // A hand-built population with an empty password is refused.
    let mut bad = pop.clone();
    bad.mailboxes[0].password.clear();
    let err = directory(&bad, 3).unwrap_err();
    assert_eq!(
        spine_core::ErrorCode::code(&err),
        "SIM_POPULATION_CREDENTIAL"
    );
}

#[test]
fn national_population_builds_a_directory() {
    let s = shipped("national-day");
    let pop = population(&s, 42);
    assert_eq!(pop.mailboxes.len(), 26_040);
    let ods: BTreeSet<&OdsCode> = pop.mailboxes.iter().map(|m| &m.ods).collect();
    assert_eq!(ods.len(), 26_000);
    let dir = directory(&pop, 42).unwrap();
    assert_eq!(dir.len(), 26_040);
    assert_eq!(dir.workflows().count(), 4);
}

#[test]
fn same_seed_same_events_different_seed_different_events() {
    let s = base();
    let run = |seed| {
        let pop = population(&s, seed);
        hash_events(schedule(&s, &pop, seed), 2000)
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
    // A whole short national day, twice.
    let day = shipped("national-day-short");
    let pop = population(&day, 5);
    let a = hash_events(schedule(&day, &pop, 5), usize::MAX);
    let b = hash_events(schedule(&day, &pop, 5), usize::MAX);
    assert_eq!(a, b);
}

#[test]
fn events_are_ordered_bounded_and_numbered() {
    let s = base();
    let evs = events(&s, 9);
    assert!(!evs.is_empty());
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert!(e.at >= s.start && e.at <= s.end(), "{e:?}");
    }
    assert!(evs.windows(2).all(|w| w[0].at <= w[1].at));
    // Sends and polls strictly before the end.
    assert!(evs
        .iter()
        .filter(|e| matches!(e.action, Action::Send(_) | Action::Poll { .. }))
        .all(|e| e.at < s.end()));
}

#[test]
fn ticks_samples_and_faults_come_on_time() {
    let s = base();
    let evs = events(&s, 1);
    let at = |pred: &dyn Fn(&Action) -> bool| -> Vec<u64> {
        evs.iter()
            .filter(|e| pred(&e.action))
            .map(|e| (e.at.as_micros() - s.start.as_micros()) / 1_000_000)
            .collect()
    };
    let ticks = at(&|a| *a == Action::ExpiryTick);
    assert_eq!(ticks, (1..=120).map(|k| k * 60).collect::<Vec<_>>());
    let samples = at(&|a| *a == Action::Sample);
    assert_eq!(samples, (0..=24).map(|k| k * 300).collect::<Vec<_>>());
    let faults: Vec<&SimEvent> = evs
        .iter()
        .filter(|e| matches!(e.action, Action::Fault(_)))
        .collect();
    assert_eq!(faults.len(), 2);
    // Same instant: file order.
    assert_eq!(faults[0].action, Action::Fault(Fault::NodeCrash));
    assert_eq!(
        faults[1].action,
        Action::Fault(Fault::PartitionPanic { partition: 2 })
    );
    assert!(faults
        .iter()
        .all(|e| e.at.as_micros() - s.start.as_micros() == 100_000_000));
}

#[test]
fn sends_respect_flows_sizes_and_chunks() {
    let s = base();
    let pop = population(&s, 4);
    let class_of: BTreeMap<&MailboxId, bool> =
        pop.mailboxes.iter().map(|m| (&m.id, m.hub)).collect();
    let mut by_workflow: BTreeMap<String, u64> = BTreeMap::new();
    let mut multi_chunk = 0;
    for e in schedule(&s, &pop, 4) {
        let Action::Send(spec) = e.action else {
            continue;
        };
        *by_workflow.entry(spec.workflow.to_string()).or_default() += 1;
        let (from_hub, to_hub) = (class_of[&spec.from], class_of[&spec.to]);
        match spec.workflow.as_str() {
            "PATH_MEDRPT_V3" => {
                assert!(from_hub && !to_hub);
                assert!((100..=50_000).contains(&spec.bytes), "{}", spec.bytes);
                assert_eq!(u64::from(spec.chunks), spec.bytes.div_ceil(4096));
                if spec.chunks > 1 {
                    multi_chunk += 1;
                }
            }
            "PATH_TEST_REQUEST" => {
                assert!(!from_hub && to_hub);
                assert_eq!((spec.bytes, spec.chunks), (4096, 1));
            }
            "MISC" => assert_ne!(spec.from, spec.to),
            other => panic!("unexpected workflow {other}"),
        }
    }
    assert!(multi_chunk > 0);
    // Counts near rate × duration: 14400, 7200, 3600.
    for (wf, expected) in [
        ("PATH_MEDRPT_V3", 14_400.0),
        ("PATH_TEST_REQUEST", 7_200.0),
        ("MISC", 3_600.0),
    ] {
        let got = by_workflow[wf] as f64;
        let sigma = f64::sqrt(expected);
        assert!(
            (got - expected).abs() < 5.0 * sigma,
            "{wf}: {got} vs {expected}"
        );
    }
}

#[test]
fn skew_favours_the_first_mailboxes() {
    let s = base();
    let pop = population(&s, 2);
    let mut counts: BTreeMap<MailboxId, u64> = BTreeMap::new();
    for e in schedule(&s, &pop, 2) {
        if let Action::Send(spec) = e.action {
            if spec.workflow.as_str() == "PATH_MEDRPT_V3" {
                *counts.entry(spec.from).or_default() += 1;
            }
        }
    }
    // Zipf(1) over 6 hub mailboxes: the first has 1/H(6) ≈ 41% of traffic,
    // the last ≈ 6.8%.
    let first = counts[&pop.mailboxes[0].id] as f64;
    let last = counts[&pop.mailboxes[5].id] as f64;
    let total: f64 = counts.values().map(|&c| c as f64).sum();
    assert!((first / total - 0.408).abs() < 0.03, "{}", first / total);
    assert!((last / total - 0.068).abs() < 0.02, "{}", last / total);
}

#[test]
fn arrival_count_matches_rate_over_a_long_window() {
    // 50/s × 0.1 scale over 20,000 s: 100,000 expected, sd 316.
    let text = BASE
        .replace("duration = 7200", "duration = 20000\nscale = 0.1")
        .replace("rate = 2\n", "rate = 50\n")
        .replace("rate = 1\n", "rate = 0\n")
        .replace("rate = 0.5\n", "rate = 0\n");
    let s = Scenario::parse(&text).unwrap();
    let sends = events(&s, 77)
        .iter()
        .filter(|e| matches!(e.action, Action::Send(_)))
        .count() as f64;
    assert!((sends - 100_000.0).abs() < 5.0 * 316.3, "{sends}");
    assert!((s.estimate().sends - 100_000.0).abs() < 1e-6);
}

/// Sends per UTC hour of one flow over `days` days.
fn hourly_sends(s: &Scenario, seed: u64) -> [u64; 24] {
    let mut hours = [0u64; 24];
    for e in events(s, seed) {
        if matches!(e.action, Action::Send(_)) {
            hours[e.at.to_civil().hour as usize] += 1;
        }
    }
    hours
}

#[test]
fn diurnal_curve_shapes_counts() {
    let text = BASE
        .replace("duration = 7200", "duration = 172800")
        .replace(
            "chunk_bytes = 4096",
            "chunk_bytes = 4096\ndiurnal = \"uk-working-hours\"",
        )
        .replace("rate = 1\n", "rate = 0\n")
        .replace("rate = 0.5\n", "rate = 0\n");
    let s = Scenario::parse(&text).unwrap();
    let curve = s.flows[0].diurnal.multipliers().unwrap();
    let hours = hourly_sends(&s, 3);
    for (h, count) in hours.iter().enumerate() {
        // 2/s × 3600 s × multiplier × 2 days.
        let expected = 2.0 * 3600.0 * curve[h] * 2.0;
        let got = *count as f64;
        assert!(
            (got - expected).abs() < 5.0 * expected.sqrt() + 5.0,
            "hour {h}: {got} vs {expected}"
        );
    }
    assert!(hours[10] > 5 * hours[3]);
}

#[test]
fn peaks_multiply_the_rate() {
    // Flow rate 2/s; a 10x peak from 1000 s to 2000 s, and a flow-only 0x
    // peak silencing requests from 3000 s to 4000 s.
    let text = BASE
        .replacen(
            "[[fault]]\nat = 100",
            "[[peak]]\nat = 1000\nduration = 1000\nmultiplier = 10\n\n[[fault]]\nat = 100",
            1,
        )
        .replace(
            "to = \"hub\"\n",
            "to = \"hub\"\n[[flow.peak]]\nat = 3000\nduration = 1000\nmultiplier = 0\n",
        );
    let s = Scenario::parse(&text).unwrap();
    let evs = events(&s, 21);
    let count = |wf: &str, from: u64, to: u64| {
        evs.iter()
            .filter(|e| {
                let t = (e.at.as_micros() - s.start.as_micros()) / 1_000_000;
                matches!(&e.action, Action::Send(spec) if spec.workflow.as_str() == wf)
                    && (from..to).contains(&t)
            })
            .count() as f64
    };
    let before = count("PATH_MEDRPT_V3", 0, 1000);
    let during = count("PATH_MEDRPT_V3", 1000, 2000);
    assert!((before - 2000.0).abs() < 5.0 * 2000f64.sqrt(), "{before}");
    assert!(
        (during - 20_000.0).abs() < 5.0 * 20_000f64.sqrt(),
        "{during}"
    );
    assert_eq!(count("PATH_TEST_REQUEST", 3000, 4000), 0.0);
    assert!(count("PATH_TEST_REQUEST", 4000, 5000) > 800.0);
}

#[test]
fn polls_follow_traffic_and_only_pollers_poll() {
    let s = base();
    let pop = population(&s, 8);
    let modes: BTreeMap<&MailboxId, ConsumerMode> =
        pop.mailboxes.iter().map(|m| (&m.id, m.consumer)).collect();
    let mut sent_to: BTreeMap<MailboxId, u64> = BTreeMap::new();
    let mut last_poll: BTreeMap<MailboxId, u64> = BTreeMap::new();
    let (mut sends, mut polls) = (0u64, 0u64);
    for e in schedule(&s, &pop, 8) {
        match &e.action {
            Action::Send(spec) => {
                sends += 1;
                *sent_to.entry(spec.to.clone()).or_default() += 1;
            }
            Action::Poll { mailbox } => {
                polls += 1;
                let ConsumerMode::Poll { interval_secs, .. } = modes[mailbox] else {
                    panic!("{mailbox} polls but is {:?}", modes[mailbox]);
                };
                // Something was sent to it, or it sent to an absent mailbox.
                let at = e.at.as_micros();
                if let Some(prev) = last_poll.insert(mailbox.clone(), at) {
                    assert!(
                        at - prev >= interval_secs * 1_000_000,
                        "{mailbox} polled too soon"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(polls > 0);
    assert!(polls <= sends, "{polls} polls for {sends} sends");
    // Every poller that was sent something polled.
    for (mailbox, n) in &sent_to {
        if matches!(modes[mailbox], ConsumerMode::Poll { .. }) && *n > 0 {
            assert!(last_poll.contains_key(mailbox), "{mailbox} never polled");
        }
    }
}

#[test]
fn idle_polling_polls_every_interval() {
    let text = BASE.replace("batch = 5\n", "batch = 5\nidle_polls = true\n");
    let s = Scenario::parse(&text).unwrap();
    let pop = population(&s, 6);
    let mut per_mailbox: BTreeMap<MailboxId, u64> = BTreeMap::new();
    for e in schedule(&s, &pop, 6) {
        if let Action::Poll { mailbox } = e.action {
            *per_mailbox.entry(mailbox).or_default() += 1;
        }
    }
    for m in &pop.mailboxes {
        let polls = per_mailbox.get(&m.id).copied().unwrap_or(0);
        match m.consumer {
            ConsumerMode::Poll { interval_secs, .. } => {
                let expected = 7200 / interval_secs;
                assert!(
                    polls == expected || polls == expected + 1,
                    "{polls} vs {expected}"
                );
            }
            _ => assert_eq!(polls, 0),
        }
    }
}

#[test]
fn reports_for_absent_recipients_make_senders_poll() {
    // Practices send only to absent practices; nothing is sent to the
    // senders, so their polls come from predicted reports alone, at least
    // inbox_expiry + expiry_tick after their first send.
    let text = BASE
        .replace("absent_fraction = 0.1", "absent_fraction = 0.0")
        .replace("rate = 2\n", "rate = 0\n")
        .replace("rate = 0.5\n", "rate = 0\n")
        + r#"
[[class]]
name = "ghost"
organisations = 5
[class.consumer]
mode = "absent"

[[flow]]
name = "to-ghosts"
workflow = "GHOST"
rate = 1
from = "practice"
to = "ghost"
"#;
    let s = Scenario::parse(&text).unwrap();
    let pop = population(&s, 13);
    let mut first_send: BTreeMap<MailboxId, u64> = BTreeMap::new();
    let mut polls = 0;
    for e in schedule(&s, &pop, 13) {
        match &e.action {
            Action::Send(spec) if spec.workflow.as_str() == "GHOST" => {
                first_send
                    .entry(spec.from.clone())
                    .or_insert(e.at.as_micros());
            }
            Action::Poll { mailbox } => {
                if let Some(first) = first_send.get(mailbox) {
                    if e.at.as_micros() >= first + 660_000_000 {
                        polls += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(polls > 100, "{polls}");
}

#[test]
fn shipped_short_forms_stay_small() {
    for name in [
        "national-day-short",
        "national-peak-short",
        "mesh-bulk-files-short",
        "game-day-short",
    ] {
        let s = shipped(name);
        let pop = population(&s, 1);
        assert!(pop.mailboxes.len() <= 500);
        let sched = schedule(&s, &pop, 1);
        let estimated = sched.estimated_events();
        let mut count = 0u64;
        let mut bytes = 0u64;
        for e in sched {
            count += 1;
            if let Action::Send(spec) = e.action {
                bytes += spec.bytes;
            }
        }
        assert!(count <= 20_000, "{name}: {count} events");
        assert!(bytes <= 200 << 20, "{name}: {bytes} bytes");
        // The estimate is close enough for a progress bar.
        let ratio = count as f64 / estimated as f64;
        assert!(
            (0.5..=1.2).contains(&ratio),
            "{name}: {count} of {estimated}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any seed, any small rate and duration: ordered, unique seq, in
    /// bounds, reproducible.
    #[test]
    fn any_seed_gives_an_ordered_reproducible_stream(
        seed: u64,
        rate in 0.0f64..5.0,
        duration in 1u64..2000,
        scale in 0.01f64..=1.0,
    ) {
        let text = BASE
            .replace("duration = 7200", &format!("duration = {duration}\nscale = {scale:?}"))
            .replace("rate = 2\n", &format!("rate = {rate:?}\n"))
            .replace("at = 100", &format!("at = {}", duration / 2));
        let s = Scenario::parse(&text).unwrap();
        let a = events(&s, seed);
        let b = events(&s, seed);
        prop_assert_eq!(&a, &b);
        for (i, e) in a.iter().enumerate() {
            prop_assert_eq!(e.seq, i as u64);
            prop_assert!(e.at >= s.start && e.at <= s.end());
        }
        prop_assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
