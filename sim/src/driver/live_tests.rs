//! The live driver's PDS look-ups against a node served in this process
//! over loopback (the real native transport and client): answered when the
//! node accredits the population, refused and counted (not judged) when it
//! does not. The black-box run against `spine serve` is in `tests/cli.rs`.

use std::sync::Arc;
use std::time::Duration;

use spine_actors::node::{Node, NodeParts, RuntimeConfig, StorageConfig};
use spine_actors::system::SystemClock;
use spine_actors::transport::{NetworkConfig, Transports};
use spine_core::ids::WorkflowId;
use spine_core::random::SeededRandom;
use spine_core::time::Timestamp;

use super::live::{run, LiveConfig};
use super::tests::{assert_all_answered, mb, world_of, Both, Count};
use super::RunResult;
use crate::model::{Action, SendSpec, SimEvent};
use crate::report::Recorder;

const PER_SEND: u32 = 2;
const SENDS: u64 = 20;

/// Sends back and forth between the poller and the push consumer, then a
/// poll: every message is collected, so the run's invariants all hold.
fn events(start: Timestamp) -> Vec<SimEvent> {
    let mut out = Vec::new();
    for i in 0..SENDS {
        let (from, to) = if i % 2 == 0 {
            ("POLLER1", "PUSHED1")
        } else {
            ("PUSHED1", "POLLER1")
        };
        out.push(SimEvent {
            at: start.saturating_add(Duration::from_secs(i)),
            seq: i + 1,
            action: Action::Send(SendSpec {
                from: mb(from),
                to: mb(to),
                workflow: WorkflowId::parse("SIM_WF").unwrap(),
                bytes: 200 + i,
                chunks: 1,
                content_seed: i,
            }),
        });
    }
    out.push(SimEvent {
        at: start.saturating_add(Duration::from_secs(SENDS)),
        seq: SENDS + 1,
        action: Action::Poll {
            mailbox: mb("POLLER1"),
        },
    });
    out
}

/// A live run of [`events`] by mailboxes of organisation `SIM01` against
/// an in-memory node on loopback whose service directory accredits the
/// population or (`accredit` false) is the demo set, which does not know
/// `SIM01`. Whatever the look-ups' fate, every send is acknowledged and
/// every invariant holds.
async fn live_run(accredit: bool) -> (RunResult, Count, Recorder) {
    let (population, directory) = world_of("SIM01");
    let mut runtime = RuntimeConfig::default();
    if accredit {
        let orgs = crate::services::organisations(&population);
        runtime.service_directory = Some(Arc::new(crate::services::directory(orgs).unwrap()));
    }
    let parts = NodeParts {
        runtime,
        directory: Arc::new(directory),
        clock: Arc::new(SystemClock::new()),
        rng: Box::new(SeededRandom::new(9)),
    };
    let node = Node::start_in_memory(StorageConfig::default(), parts)
        .await
        .unwrap();
    let network = NetworkConfig {
        native_listen: "127.0.0.1:0".to_string(),
        quic_enabled: false,
        ..NetworkConfig::default()
    };
    let transports = Transports::start(node.clone(), &network).await.unwrap();
    let addr = transports.native_addr().unwrap();
    let start = Timestamp::from_unix_seconds(1_800_000_000);
    let config = LiveConfig {
        endpoint: format!("native://{addr}"),
        ca: None,
        speed: None,
        concurrency: 4,
        max_clients: 8,
        seed: 1,
        start,
        drain: Duration::from_secs(10),
        service_requests_per_send: PER_SEND,
    };
    let mut count = Count::default();
    let mut recorder = Recorder::new(start, Duration::from_secs(60));
    let mut both = Both {
        count: &mut count,
        recorder: &mut recorder,
    };
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run(&config, &population, events(start).into_iter(), &mut both),
    )
    .await
    .expect("the live run ends within its bounds")
    .unwrap();
    transports.stop().await;
    let _ = node.shutdown().await;
    assert!(result.passed(), "{:#?}", result.verdicts);
    assert_eq!(result.accepted, SENDS, "{result:?}");
    (result, count, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_look_ups_are_answered_by_a_node_that_accredits_the_population() {
    let (result, count, recorder) = live_run(true).await;
    assert_eq!(result.delivered, SENDS, "{result:?}");
    assert_all_answered(&count, &recorder, SENDS, u64::from(PER_SEND));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_look_ups_refused_by_a_node_without_the_accreditation_are_counted_not_judged() {
    let (_, count, recorder) = live_run(false).await;
    assert_eq!((count.service_batches, count.service_ok), (SENDS, 0));
    let totals = recorder.service_totals();
    assert_eq!(totals.issued, u64::from(PER_SEND) * SENDS, "{totals:?}");
    assert_eq!(
        totals.failed.get("SVC_NOT_ACCREDITED"),
        Some(&totals.issued),
        "{totals:?}"
    );
}
