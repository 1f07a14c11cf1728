//! Supervision of the national-service actors, in process through the node
//! handle on real data directories: a service router or the reference
//! services' actor is made to panic (`NodeHandle::inject_panic`), and the
//! tests check what callers, providers and the state see.
//!
//! Deterministic and bounded: the node's clock is a `ManualClock` that never
//! moves, so no router deadline ever fires, and an answer that is not a
//! timeout proves it came from the failure handling. Every await is
//! bounded ([`within`]), so a hang fails the test with what it awaited.
//! Nothing asserts on wall-clock durations.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use serde_json::{json, Value};
use spine_core::directory::Directory;
use spine_core::ids::{MailboxId, WorkflowId};
use spine_core::random::SeededRandom;
use spine_core::services::ServiceError;
use spine_core::time::{ManualClock, Timestamp};
use spine_core::ErrorCode;

use super::{ProviderRegistration, ServiceRequest};
use crate::node::{
    FaultTarget, Node, NodeHandle, NodeParts, RuntimeConfig, SendRequest, StorageConfig,
};

/// The longest any single await may take before the test calls it a hang.
const STEP: Duration = Duration::from_secs(40);

/// A GP practice's mailbox (ODS X26).
const GP: &str = "X26ABC1";
/// A pharmacy's mailbox (ODS X27), also allowed to provide `pds` and `ers`.
const PHARMACY: &str = "X26ABC3";

fn mb(s: &str) -> MailboxId {
    MailboxId::parse(s).unwrap()
}

async fn within<T>(what: impl std::fmt::Display, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hang: {what} did not finish within {STEP:?}"),
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_780_000_000,
    )))
}

async fn start(dir: &std::path::Path, clock: Arc<ManualClock>, max_restarts: u32) -> NodeHandle {
    let storage = StorageConfig {
        data_dir: dir.to_path_buf(),
        segment_bytes: 64 * 1024,
        ..StorageConfig::default()
    };
    let parts = NodeParts {
        runtime: RuntimeConfig {
            partitions: 2,
            expiry_interval_ms: 3_600_000,
            max_restarts,
            restart_window_secs: 3_600,
            request_wait_ms: 10_000,
            ..RuntimeConfig::default()
        },
        directory: Arc::new(Directory::demo(&mut SeededRandom::new(1)).unwrap()),
        clock,
        rng: Box::new(SeededRandom::new(2)),
    };
    within("start", Node::start(storage, parts))
        .await
        .unwrap()
        .0
}

/// A node on a fresh data directory (kept while the directory lives).
async fn fresh(max_restarts: u32) -> (tempfile::TempDir, NodeHandle) {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), clock(), max_restarts).await;
    (dir, node)
}

async fn stop(node: NodeHandle) {
    within("shutdown", node.shutdown()).await.unwrap();
}

/// `caller` asks `service` for `operation` with `body`.
async fn ask(
    node: &NodeHandle,
    caller: &str,
    service: &str,
    operation: &str,
    body: Value,
) -> Result<Value, ServiceError> {
    let request = ServiceRequest {
        service: service.into(),
        interaction: operation.into(),
        asid: None,
        message_id: None,
        body: Bytes::from(body.to_string()),
    };
    let what = format!("{caller}: {service} {operation}");
    let answer = within(&what, node.request(&mb(caller), request)).await?;
    Ok(serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("{what}: not JSON: {e}")))
}

/// A PDS look-up, asked until it is not `SVC_UNAVAILABLE` (an actor is
/// being replaced), bounded.
async fn pds_served(node: &NodeHandle) -> Value {
    within("pds get served again", async {
        loop {
            let get = json!({ "nhs_number": "9000000009" });
            match ask(node, GP, "pds", "get", get).await {
                Err(e) if e.code() == "SVC_UNAVAILABLE" => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                other => return other.unwrap(),
            }
        }
    })
    .await
}

fn code<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> &'static str {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Injects a panic into `target`, retrying while it is being replaced.
async fn inject(node: &NodeHandle, target: FaultTarget) {
    within(format!("inject {target:?}"), async {
        while node.inject_panic(target).await.is_err() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

/// Injects a panic into `target` and waits until the supervisor has
/// counted the restart of `label`.
async fn kill(node: &NodeHandle, target: FaultTarget, label: &str) {
    let before = node.restarts().get(label).copied().unwrap_or(0);
    inject(node, target).await;
    within(format!("restart of {label}"), async {
        while node.restarts().get(label).copied().unwrap_or(0) == before {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

/// The pharmacy's connection registers as a provider of `service`.
async fn provide(node: &NodeHandle, service: &str) -> ProviderRegistration {
    within("register", node.register_provider(&mb(PHARMACY), service))
        .await
        .unwrap()
}

/// The next call to a provider, bounded.
async fn next_call(provider: &mut ProviderRegistration) -> super::ProviderCall {
    within("a call reaches the provider", provider.calls.recv())
        .await
        .expect("the provider's call queue stays open")
}

/// Requests while a fault is injected: each is answered (no hang), and
/// only with a success or `SVC_UNAVAILABLE` (never a timeout).
fn traffic(node: &NodeHandle, tasks: usize, each: usize) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..tasks)
        .map(|t| {
            let node = node.clone();
            tokio::spawn(async move {
                let mut unavailable = 0;
                for i in 0..each {
                    let n = ["9000000009", "9000000017", "9000000025"][(t + i) % 3];
                    match ask(&node, GP, "pds", "get", json!({ "nhs_number": n })).await {
                        Ok(_) => {}
                        Err(e) if e.code() == "SVC_UNAVAILABLE" => unavailable += 1,
                        Err(e) => panic!("request during a restart: {} {e}", e.code()),
                    }
                }
                unavailable
            })
        })
        .collect()
}

async fn finish(tasks: Vec<tokio::task::JoinHandle<usize>>) -> usize {
    let mut unavailable = 0;
    for t in tasks {
        unavailable += within("traffic", t).await.unwrap();
    }
    unavailable
}

/// A router that fails with a request in flight: the caller gets
/// `SVC_UNAVAILABLE` at once (not a timeout: the clock never moves), the
/// external provider registered before the failure gets the next request,
/// and its late answer to the old request cannot answer the new one (the
/// first request of each incarnation would share correlation id 1 if ids
/// restarted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_panic_fails_the_request_in_flight_and_keeps_its_external_provider() {
    let (_dir, node) = fresh(5).await;
    let mut provider = provide(&node, "ers").await;
    let referral = json!({ "nhs_number": "9000000009" });
    let held = {
        let node = node.clone();
        let body = referral.clone();
        tokio::spawn(async move { ask(&node, GP, "ers", "referral", body).await })
    };
    let old = next_call(&mut provider).await;
    kill(&node, FaultTarget::ServiceRouter("ers"), "service_router").await;
    let e = within("the held request", held).await.unwrap().unwrap_err();
    assert_eq!(e.code(), "SVC_UNAVAILABLE", "{e}");
    assert!(e.to_string().contains("may or may not"), "{e}");

    // The provider survived the restart: the next request reaches it.
    let next = {
        let node = node.clone();
        tokio::spawn(async move { ask(&node, GP, "ers", "referral", referral).await })
    };
    let new = next_call(&mut provider).await;
    assert_ne!(new.correlation, old.correlation, "ids are not reused");
    for (correlation, body) in [(old.correlation, "stale"), (new.correlation, "fresh")] {
        node.provider_reply(
            &provider.service,
            provider.id,
            correlation,
            Ok(Bytes::from(json!({ "answer": body }).to_string())),
        )
        .unwrap();
    }
    let answer = within("the new request", next).await.unwrap().unwrap();
    assert_eq!(answer, json!({ "answer": "fresh" }));
    assert_eq!(node.restarts().get("service_router"), Some(&1));
    assert!(
        node.failed().now_or_never().is_none(),
        "one restart is allowed"
    );
    stop(node).await;
}

/// A router that fails under load, holding requests placed with an
/// external provider (which answers only its replacement's calls):
/// every caller is answered, those held with `SVC_UNAVAILABLE`; later
/// requests are served, and both the built-in provider and the external
/// one registered before are used after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_panic_under_load_answers_every_caller_and_keeps_both_providers() {
    let (_dir, node) = fresh(5).await;
    let mut provider = provide(&node, "pds").await;
    // The external provider counts the calls it gets and answers only
    // those of the router's next incarnation (its correlation ids start
    // there): the first router's calls stay in flight until it fails.
    let received = Arc::new(AtomicUsize::new(0));
    let responder = {
        let node = node.clone();
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(call) = provider.calls.recv().await {
                received.fetch_add(1, Ordering::AcqRel);
                if call.correlation > super::supervised::INCARNATION_SPAN {
                    let body = Bytes::from(json!({ "from": "external" }).to_string());
                    let _ = node.provider_reply(
                        &provider.service,
                        provider.id,
                        call.correlation,
                        Ok(body),
                    );
                }
            }
        })
    };
    let tasks = 4;
    let load = traffic(&node, tasks, 40);
    // Round robin: each task's first or second request reaches the
    // external provider and waits there.
    within("every task waits on the external provider", async {
        while received.load(Ordering::Acquire) < tasks {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    kill(&node, FaultTarget::ServiceRouter("pds"), "service_router").await;
    let unavailable = finish(load).await;
    assert!(
        unavailable >= tasks,
        "the {tasks} requests held by the failed router were failed: {unavailable}"
    );

    let external_before = received.load(Ordering::Acquire);
    let mut from = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let v = pds_served(&node).await;
        from.insert(if v["from"] == "external" {
            "external"
        } else {
            "builtin"
        });
    }
    assert_eq!(
        from,
        ["builtin", "external"].into(),
        "round robin over both providers after the restart"
    );
    assert!(received.load(Ordering::Acquire) > external_before);
    assert_eq!(node.restarts().get("service_router"), Some(&1));
    stop(node).await;
    responder.abort();
}

/// Requests the reference actor held when it failed (queued behind the
/// fault) are failed at once with `SVC_UNAVAILABLE`, outcome unknown: not
/// left to a timeout (the clock never moves, so none would come before the
/// hub's own bound), and not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_held_by_a_failed_reference_actor_are_failed_at_once() {
    use super::reference_actor::ReferenceMsg;
    use super::router_actor::RouterMsg;

    let (_dir, node) = fresh(5).await;
    let hub = Arc::clone(node.hub().unwrap());
    let reference = hub.reference.get().unwrap();
    let (release, stalled) = tokio::sync::oneshot::channel();
    reference.cast(ReferenceMsg::Stall(stalled)).unwrap();
    reference.cast(ReferenceMsg::Panic).unwrap();
    let held: Vec<_> = ["9000000009", "9000000017", "9000000025"]
        .into_iter()
        .map(|n| {
            let node = node.clone();
            tokio::spawn(
                async move { ask(&node, GP, "pds", "get", json!({ "nhs_number": n })).await },
            )
        })
        .collect();
    let pds = hub
        .routers
        .iter()
        .find(|s| s.service.as_str() == "pds")
        .unwrap();
    within("three requests held by the reference actor", async {
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pds.actor.get().unwrap().cast(RouterMsg::Stats(tx)).unwrap();
            if rx.await.unwrap().0 == held.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    release.send(()).unwrap();
    for h in held {
        let e = within("a held request", h).await.unwrap().unwrap_err();
        assert_eq!(e.code(), "SVC_UNAVAILABLE", "{e}");
        assert!(e.to_string().contains("may or may not"), "{e}");
    }
    pds_served(&node).await;
    assert_eq!(node.restarts().get("reference_services"), Some(&1));
    stop(node).await;
}

fn prescription(id: &str) -> Value {
    json!({ "id": id, "nhs_number": "9000000009", "nominated_pharmacy": "X27", "items": ["amoxicillin 500mg"] })
}

/// Everything the reference services hold that the test changed.
async fn snapshot(node: &NodeHandle) -> Vec<Value> {
    let mut out = Vec::new();
    for n in ["9000000009", "9000000017"] {
        out.push(
            ask(node, GP, "pds", "get", json!({ "nhs_number": n }))
                .await
                .unwrap(),
        );
    }
    out.push(
        ask(
            node,
            GP,
            "scr",
            "get",
            json!({ "nhs_number": "9000000017" }),
        )
        .await
        .unwrap(),
    );
    for id in ["RX-1", "RX-2"] {
        out.push(
            ask(node, GP, "eps", "get", json!({ "id": id }))
                .await
                .unwrap(),
        );
    }
    let counts = within("counts", node.service_counts()).await.unwrap();
    out.push(json!([counts.0, counts.1, counts.2]));
    out
}

/// The reference services fail after acknowledged changes, with requests
/// running: their state is rebuilt from the log to exactly what it was
/// (PDS versions, the released prescription stays released once), every
/// caller is answered, and the restart is counted. A node restart then
/// recovers the same state plus the changes made after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_services_panic_rebuilds_their_state_exactly_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let node = start(dir.path(), Arc::clone(&clock), 5).await;
    let update = |version: u64, postcode: &str| json!({ "nhs_number": "9000000009", "version": version, "changes": { "postcode": postcode } });
    let patient = ask(&node, GP, "pds", "update", update(1, "LS1 4AP"))
        .await
        .unwrap();
    assert_eq!(patient["version"], 2);
    ask(
        &node,
        GP,
        "scr",
        "upload",
        json!({ "nhs_number": "9000000017", "summary": { "allergies": ["penicillin"] } }),
    )
    .await
    .unwrap();
    for id in ["RX-1", "RX-2"] {
        ask(&node, GP, "eps", "create", prescription(id))
            .await
            .unwrap();
    }
    let released = ask(&node, PHARMACY, "eps", "release", json!({ "id": "RX-1" }))
        .await
        .unwrap();
    assert_eq!(released["released"][0]["id"], "RX-1");
    let before = snapshot(&node).await;

    let load = traffic(&node, 4, 40);
    kill(&node, FaultTarget::ReferenceServices, "reference_services").await;
    let unavailable = finish(load).await;
    eprintln!("{unavailable} of 160 requests met the restart");
    pds_served(&node).await;
    assert_eq!(snapshot(&node).await, before, "state rebuilt exactly");
    assert_eq!(node.restarts().get("reference_services"), Some(&1));

    // Exactly once still holds: RX-1 cannot be released again, RX-2 is
    // released once; versions continue from the logged ones.
    assert_eq!(
        code(ask(&node, PHARMACY, "eps", "release", json!({ "id": "RX-1" })).await),
        "EPS_INVALID_TRANSITION"
    );
    let all = ask(&node, PHARMACY, "eps", "release", json!({}))
        .await
        .unwrap();
    assert_eq!(
        all["released"].as_array().map(|a| a.len()),
        Some(1),
        "{all}"
    );
    assert_eq!(all["released"][0]["id"], "RX-2");
    let none = ask(&node, PHARMACY, "eps", "release", json!({}))
        .await
        .unwrap();
    assert_eq!(none["released"], json!([]));
    assert_eq!(
        code(ask(&node, GP, "pds", "update", update(1, "LS2 7UE")).await),
        "PDS_VERSION_CONFLICT"
    );
    let patient = ask(&node, GP, "pds", "update", update(2, "LS2 7UE"))
        .await
        .unwrap();
    assert_eq!(patient["version"], 3);

    // And the log says the same to a fresh start.
    let after = snapshot(&node).await;
    stop(node).await;
    let node = start(dir.path(), clock, 5).await;
    assert_eq!(
        snapshot(&node).await,
        after,
        "the log agrees after a restart"
    );
    stop(node).await;
}

/// The intensity limit is per child and the same as for the other actors:
/// two restarts each of the reference services and two routers leave the
/// node serving; a third failure of one router fails the node, visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_router_restarts_fail_the_node() {
    let (_dir, node) = fresh(2).await;
    let get = json!({ "nhs_number": "9000000009" });
    for round in 1..=2u64 {
        kill(&node, FaultTarget::ReferenceServices, "reference_services").await;
        pds_served(&node).await;
        kill(&node, FaultTarget::ServiceRouter("scr"), "service_router").await;
        kill(&node, FaultTarget::ServiceRouter("pds"), "service_router").await;
        pds_served(&node).await;
        assert_eq!(node.restarts().get("service_router"), Some(&(2 * round)));
        assert!(
            node.failed().now_or_never().is_none(),
            "{round} restarts of each child failed the node"
        );
    }
    inject(&node, FaultTarget::ServiceRouter("pds")).await;
    let reason = within("node.failed()", node.failed()).await;
    assert!(reason.contains("service_router of pds"), "{reason}");
    let e = ask(&node, GP, "pds", "get", get).await.unwrap_err();
    assert_eq!(e.code(), "SVC_UNAVAILABLE");
    assert!(e.to_string().contains("failed"), "{e}");
    let send = SendRequest::simple(
        mb(GP),
        mb("X26ABC2"),
        WorkflowId::parse("TEST_WORKFLOW").unwrap(),
        Bytes::from_static(b"x"),
    );
    assert_eq!(
        within("send", node.send(send)).await.unwrap_err().code(),
        "NODE_FAILED"
    );
    stop(node).await;
}

/// The reference services failing more often than the limit fail the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_reference_services_restarts_fail_the_node() {
    let (_dir, node) = fresh(1).await;
    kill(&node, FaultTarget::ReferenceServices, "reference_services").await;
    pds_served(&node).await;
    assert!(
        node.failed().now_or_never().is_none(),
        "one restart is allowed"
    );
    inject(&node, FaultTarget::ReferenceServices).await;
    let reason = within("node.failed()", node.failed()).await;
    assert!(reason.contains("reference_services"), "{reason}");
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_names_an_existing_service() {
    let (_dir, node) = fresh(5).await;
    let e = node
        .inject_panic(FaultTarget::ServiceRouter("nope"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NODE_REQUEST_INVALID");
    stop(node).await;
}
