//! Tests of the service directory, the reference services and the router.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use crate::ids::{NhsNumber, OdsCode};
use crate::time::Timestamp;
use crate::ErrorCode;

use super::eps::PrescriptionStatus;
use super::pds::synthetic_numbers;
use super::*;

fn ods(s: &str) -> OdsCode {
    OdsCode::parse(s).unwrap()
}

fn caller(asid: &str, o: &str) -> Caller {
    Caller {
        asid: Asid::parse(asid).unwrap(),
        ods: ods(o),
    }
}

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

// ---- directory ---------------------------------------------------------

#[test]
fn demo_directory_loads_and_resolves() {
    let dir = ServiceDirectory::demo().unwrap();
    let full = "urn:nhs:names:services:pdsquery/QUPA_IN040000UK32";
    for typed in [full, "QUPA_IN040000UK32", "get"] {
        let i = dir.resolve("pds", typed).unwrap();
        assert_eq!(i.id.as_str(), full);
        assert_eq!(i.operation, "get");
        assert_eq!(i.reliability.pattern, Pattern::Synchronous);
    }
    let upload = dir.resolve("scr", "REPC_IN150016UK05").unwrap();
    assert_eq!(upload.reliability.pattern, Pattern::AsyncReliable);
    assert_eq!(upload.reliability.retries, 2);
    assert_eq!(upload.reliability.retry_interval, Duration::from_secs(60));
    assert_eq!(
        upload.reliability.persist_duration,
        Duration::from_secs(300)
    );
    assert!(upload.reliability.duplicate_elimination);
    assert_eq!(
        dir.resolve("scr", full).unwrap_err().code(),
        "SVC_WRONG_SERVICE"
    );
    assert_eq!(
        dir.resolve("pds", "nope").unwrap_err().code(),
        "SVC_UNKNOWN_INTERACTION"
    );
    assert_eq!(
        dir.resolve("nope", "get").unwrap_err().code(),
        "SVC_UNKNOWN_SERVICE"
    );
}

#[test]
fn senders_must_be_accredited_for_their_organisation() {
    let dir = ServiceDirectory::demo().unwrap();
    let get = InteractionId::parse("urn:nhs:names:services:pdsquery/QUPA_IN040000UK32").unwrap();
    let search = InteractionId::parse("urn:nhs:names:services:pdsquery/QUPA_IN000005UK01").unwrap();
    let asid = |s: &str| Asid::parse(s).unwrap();
    // Implicit ASID: the organisation's first accredited system.
    assert_eq!(
        dir.authorize(&ods("X26"), None, &get)
            .unwrap()
            .asid
            .as_str(),
        "200000000101"
    );
    // Explicit and accredited.
    assert!(dir
        .authorize(&ods("X26"), Some(&asid("200000000102")), &get)
        .is_ok());
    // Accredited system, but not for this interaction.
    let e = dir
        .authorize(&ods("X26"), Some(&asid("200000000102")), &search)
        .unwrap_err();
    assert_eq!(e.code(), "SVC_NOT_ACCREDITED");
    // Another organisation's ASID.
    let e = dir
        .authorize(&ods("X26"), Some(&asid("200000000201")), &get)
        .unwrap_err();
    assert_eq!(e.code(), "SVC_NOT_ACCREDITED");
    assert!(e.to_string().contains("X27"), "{e}");
    // Unknown ASID, unknown organisation.
    assert!(dir
        .authorize(&ods("X26"), Some(&asid("999")), &get)
        .is_err());
    assert!(dir.authorize(&ods("Y99"), None, &get).is_err());
}

#[test]
fn directory_files_are_checked_with_lines() {
    let bad_ref = "[[service]]\nname = \"pds\"\n\n[[interaction]]\nid = \"urn:x/Y\"\nservice = \"scr\"\noperation = \"get\"\npattern = \"sync\"\nretry_interval = \"PT1S\"\n";
    let e = load_services_toml(bad_ref).unwrap_err();
    assert_eq!(e.code(), "SVC_DIRECTORY_INVALID");
    assert!(e.message.contains("unknown service scr"), "{e}");
    let typo = "[[service]]\nname = \"pds\"\nbuiltn = \"pds\"\n";
    let e = load_services_toml(typo).unwrap_err();
    assert!(e.to_string().contains("builtn"), "{e}");
    let contradiction = "[[service]]\nname = \"pds\"\n\n[[interaction]]\nid = \"urn:x/Y\"\nservice = \"pds\"\noperation = \"get\"\npattern = \"sync\"\nretries = 3\nretry_interval = \"PT1S\"\n";
    let e = load_services_toml(contradiction).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    let e = load_services_toml("[[accredited_system]]\nasid = \"1\"\nparty_key = \"k\"\nods_code = \"X26\"\ninteractions = [\"urn:x/Y\"]\n").unwrap_err();
    assert!(e.message.contains("unknown interaction"), "{e}");
}

// ---- NHS numbers and PDS -------------------------------------------------

#[test]
fn check_digits_of_the_demo_numbers() {
    assert!(NhsNumber::parse("9000000009").is_ok());
    let e = NhsNumber::parse("9000000001").unwrap_err();
    assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
    let first: Vec<String> = synthetic_numbers(3).map(|n| n.to_string()).collect();
    assert_eq!(first, ["9000000009", "9000000017", "9000000025"]);
}

proptest! {
    #[test]
    fn changing_one_digit_of_a_valid_number_breaks_the_check(i in 0usize..2000, pos in 0usize..10, delta in 1u8..10) {
        let n = synthetic_numbers(i + 1).last().unwrap();
        let mut digits: Vec<u8> = n.as_str().bytes().map(|b| b - b'0').collect();
        digits[pos] = (digits[pos] + delta) % 10;
        let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        prop_assert!(NhsNumber::parse(&text).is_err());
    }
}

fn services() -> ReferenceServices {
    ReferenceServices::new(ReferenceConfig {
        patients: 200,
        ..ReferenceConfig::default()
    })
    .unwrap()
}

fn gp() -> Caller {
    caller("200000000101", "X26")
}

fn pharmacy() -> Caller {
    caller("200000000201", "X27")
}

fn run(
    s: &mut ReferenceServices,
    log: &mut Vec<ServiceRecord>,
    b: Builtin,
    op: &str,
    who: &Caller,
    body: &str,
) -> Result<serde_json::Value, ServiceError> {
    let handled = s.handle(b, op, who, body.as_bytes(), T0)?;
    for r in handled.records {
        log.push(r.clone());
        s.apply(r, log.len() as u64);
    }
    Ok(serde_json::from_slice(&handled.response).unwrap())
}

#[test]
fn pds_get_search_and_versioned_update() {
    let mut s = services();
    let mut log = Vec::new();
    let jane = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "get",
        &gp(),
        r#"{"nhs_number":"9000000009"}"#,
    )
    .unwrap();
    assert_eq!(jane["family"], "Smith");
    assert_eq!(jane["version"], 1);
    let e = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "get",
        &gp(),
        r#"{"nhs_number":"9000000001"}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "ID_NHS_NUMBER_CHECK_DIGIT");
    let e = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "get",
        &gp(),
        r#"{"nhs_number":"9990000018"}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.code(),
        "PDS_PATIENT_NOT_FOUND",
        "a valid number nobody has: {e}"
    );
    let found = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "search",
        &gp(),
        r#"{"family":"smith","birth_date":"2010-10-22"}"#,
    )
    .unwrap();
    assert!(found["patients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["nhs_number"] == "9000000009"));
    assert_eq!(
        run(&mut s, &mut log, Builtin::Pds, "search", &gp(), "{}")
            .unwrap_err()
            .code(),
        "SVC_BAD_REQUEST"
    );
    let updated = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "update",
        &gp(),
        r#"{"nhs_number":"9000000009","version":1,"changes":{"postcode":"LS2 7UE"}}"#,
    )
    .unwrap();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["postcode"], "LS2 7UE");
    let e = run(
        &mut s,
        &mut log,
        Builtin::Pds,
        "update",
        &gp(),
        r#"{"nhs_number":"9000000009","version":1,"changes":{"postcode":"LS3 1AA"}}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "PDS_VERSION_CONFLICT");
    assert_eq!(
        s.pds
            .get(&NhsNumber::parse("9000000009").unwrap())
            .unwrap()
            .postcode,
        "LS2 7UE"
    );
    assert_eq!(log.len(), 1, "only the successful update is logged");
}

#[test]
fn seeding_is_a_function_of_the_seed() {
    let a = ReferenceServices::new(ReferenceConfig {
        seed: 7,
        patients: 50,
        ..Default::default()
    })
    .unwrap();
    let b = ReferenceServices::new(ReferenceConfig {
        seed: 7,
        patients: 50,
        ..Default::default()
    })
    .unwrap();
    let c = ReferenceServices::new(ReferenceConfig {
        seed: 8,
        patients: 50,
        ..Default::default()
    })
    .unwrap();
    let all = |s: &ReferenceServices| {
        synthetic_numbers(50)
            .map(|n| s.pds.get(&n).unwrap().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(all(&a), all(&b));
    assert_ne!(all(&a), all(&c));
    assert_eq!(all(&a)[0], all(&c)[0], "9000000009 is always Jane Smith");
}

#[test]
fn scr_keeps_the_latest_replacement() {
    let mut s = services();
    let mut log = Vec::new();
    let e = run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "get",
        &gp(),
        r#"{"nhs_number":"9000000009"}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "SCR_NOT_FOUND");
    run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "upload",
        &gp(),
        r#"{"nhs_number":"9000000009","summary":{"allergies":["penicillin"]}}"#,
    )
    .unwrap();
    run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "upload",
        &gp(),
        r#"{"nhs_number":"9000000009","summary":{"allergies":[]}}"#,
    )
    .unwrap();
    let latest = run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "get",
        &pharmacy(),
        r#"{"nhs_number":"9000000009"}"#,
    )
    .unwrap();
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["content"], r#"{"allergies":[]}"#);
    assert_eq!(latest["author_ods"], "X26");
}

#[test]
fn eps_lifecycle_and_refused_transitions() {
    let mut s = services();
    let mut log = Vec::new();
    let create =
        r#"{"id":"RX-1","nhs_number":"9000000009","items":["Amoxicillin 250mg capsules x 15"]}"#;
    let p = run(&mut s, &mut log, Builtin::Eps, "create", &gp(), create).unwrap();
    assert_eq!(
        p["nominated_pharmacy"], "X27",
        "defaults to the PDS nomination"
    );
    assert_eq!(
        run(&mut s, &mut log, Builtin::Eps, "create", &gp(), create)
            .unwrap_err()
            .code(),
        "EPS_EXISTS"
    );
    // Dispense before release: refused.
    let e = run(
        &mut s,
        &mut log,
        Builtin::Eps,
        "dispense",
        &pharmacy(),
        r#"{"id":"RX-1"}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "EPS_INVALID_TRANSITION");
    // The nominated pharmacy releases it once; a second release finds nothing.
    let r = run(&mut s, &mut log, Builtin::Eps, "release", &pharmacy(), "").unwrap();
    assert_eq!(r["released"].as_array().unwrap().len(), 1);
    let r = run(&mut s, &mut log, Builtin::Eps, "release", &pharmacy(), "{}").unwrap();
    assert_eq!(r["released"].as_array().unwrap().len(), 0);
    let e = run(
        &mut s,
        &mut log,
        Builtin::Eps,
        "release",
        &gp(),
        r#"{"id":"RX-1"}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), "EPS_INVALID_TRANSITION");
    // Another organisation cannot dispense it; claim before dispense refused.
    assert_eq!(
        run(
            &mut s,
            &mut log,
            Builtin::Eps,
            "dispense",
            &gp(),
            r#"{"id":"RX-1"}"#
        )
        .unwrap_err()
        .code(),
        "EPS_WRONG_PHARMACY"
    );
    assert_eq!(
        run(
            &mut s,
            &mut log,
            Builtin::Eps,
            "claim",
            &pharmacy(),
            r#"{"id":"RX-1"}"#
        )
        .unwrap_err()
        .code(),
        "EPS_INVALID_TRANSITION"
    );
    run(
        &mut s,
        &mut log,
        Builtin::Eps,
        "dispense",
        &pharmacy(),
        r#"{"id":"RX-1"}"#,
    )
    .unwrap();
    let c = run(
        &mut s,
        &mut log,
        Builtin::Eps,
        "claim",
        &pharmacy(),
        r#"{"id":"RX-1"}"#,
    )
    .unwrap();
    assert_eq!(c["status"], "claimed");
    assert_eq!(
        run(
            &mut s,
            &mut log,
            Builtin::Eps,
            "claim",
            &pharmacy(),
            r#"{"id":"RX-1"}"#
        )
        .unwrap_err()
        .code(),
        "EPS_INVALID_TRANSITION"
    );
    assert_eq!(
        run(&mut s, &mut log, Builtin::Eps, "fly", &pharmacy(), "{}")
            .unwrap_err()
            .code(),
        "SVC_UNKNOWN_OPERATION"
    );
}

fn rank(s: PrescriptionStatus) -> u8 {
    match s {
        PrescriptionStatus::Created => 0,
        PrescriptionStatus::Released => 1,
        PrescriptionStatus::Dispensed => 2,
        PrescriptionStatus::Claimed => 3,
    }
}

proptest! {
    /// Any sequence of EPS and PDS operations: every prescription is
    /// released at most once, statuses only move forward, and replaying the
    /// log from scratch (as a restart does) rebuilds the same state.
    #[test]
    fn eps_releases_exactly_once_and_replay_rebuilds_state(
        ops in proptest::collection::vec((0u8..6, 0usize..6, 0u8..3), 1..120)
    ) {
        let mut s = services();
        let mut log = Vec::new();
        let who = [gp(), pharmacy(), caller("200000000301", "X28")];
        let mut released: BTreeMap<String, usize> = BTreeMap::new();
        let mut last: BTreeMap<String, u8> = BTreeMap::new();
        let mut seen = 0;
        for (op, n, w) in ops {
            let id = format!("RX-{n}");
            let c = &who[w as usize];
            let result = match op {
                0 => run(&mut s, &mut log, Builtin::Eps, "create", c, &format!(r#"{{"id":"{id}","nhs_number":"9000000009","nominated_pharmacy":"X2{}","items":["x"]}}"#, 6 + n % 3)),
                1 => run(&mut s, &mut log, Builtin::Eps, "release", c, ""),
                2 => run(&mut s, &mut log, Builtin::Eps, "release", c, &format!(r#"{{"id":"{id}"}}"#)),
                3 => run(&mut s, &mut log, Builtin::Eps, "dispense", c, &format!(r#"{{"id":"{id}"}}"#)),
                4 => run(&mut s, &mut log, Builtin::Eps, "claim", c, &format!(r#"{{"id":"{id}"}}"#)),
                _ => run(&mut s, &mut log, Builtin::Pds, "update", c, &format!(r#"{{"nhs_number":"9000000009","version":{},"changes":{{"given":"J{n}"}}}}"#, 1 + n % 3)),
            };
            if let (1 | 2, Ok(v)) = (op, &result) {
                for p in v["released"].as_array().unwrap() {
                    *released.entry(p["id"].as_str().unwrap().to_owned()).or_default() += 1;
                }
            }
            for r in &log[seen..] {
                if let ServiceRecord::Prescription(p) = r {
                    let now = rank(p.status);
                    let before = last.insert(p.id.clone(), now).unwrap_or(0);
                    prop_assert!(now >= before, "{} went from {before} to {now}", p.id);
                }
            }
            seen = log.len();
        }
        for (id, times) in &released {
            prop_assert_eq!(*times, 1, "{} released {} times", id, times);
        }
        let mut rebuilt = services();
        for (i, r) in log.iter().enumerate() {
            rebuilt.apply(r.clone(), i as u64 + 1);
        }
        prop_assert_eq!(rebuilt.carry(u64::MAX), s.carry(u64::MAX));
        // Records survive their encoding.
        for r in &log {
            let rec = r.to_record().unwrap();
            let back = ServiceRecord::from_record(rec.kind, &rec.head).unwrap();
            prop_assert_eq!(back.as_ref(), Some(r));
        }
    }
}

#[test]
fn carry_names_only_entities_in_old_segments() {
    let mut s = services();
    let mut log = Vec::new();
    run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "upload",
        &gp(),
        r#"{"nhs_number":"9000000009","summary":1}"#,
    )
    .unwrap();
    run(
        &mut s,
        &mut log,
        Builtin::Scr,
        "upload",
        &gp(),
        r#"{"nhs_number":"9000000017","summary":2}"#,
    )
    .unwrap();
    assert_eq!(s.carry(0).len(), 0);
    assert_eq!(s.carry(1).len(), 1);
    assert_eq!(s.carry(2).len(), 2);
    let e = ServiceRecord::from_record(
        KIND_SERVICE_STATE,
        b"{\"entity\":\"patient\",\"nhs_number\":\"9000000001\"}",
    )
    .unwrap_err();
    assert!(e.contains("service record"), "{e}");
    assert_eq!(ServiceRecord::from_record(1, b"x").unwrap(), None);
    assert!(ServiceRecord::from_record(40, b"x").is_err());
}

// ---- router ----------------------------------------------------------------

fn reliability(pattern: Pattern, retries: u32) -> Reliability {
    let dedup = pattern == Pattern::AsyncReliable;
    Reliability::new(
        pattern,
        retries,
        Duration::from_secs(10),
        Duration::from_secs(60),
        dedup,
    )
    .unwrap()
}

fn routed(message_id: Option<&str>) -> Routed {
    Routed {
        interaction: "urn:x/Y".into(),
        operation: "get".into(),
        asid: "1".into(),
        ods: "X26".into(),
        message_id: message_id.map(str::to_owned),
        body: Bytes::from_static(b"{}"),
    }
}

fn router() -> Router<u32> {
    Router::new(
        ServiceName::parse("pds").unwrap(),
        RouterConfig {
            max_pending: 8,
            ..RouterConfig::default()
        },
    )
}

fn delivered(actions: &[Action<u32>]) -> Vec<(ProviderId, Correlation)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver {
                provider,
                correlation,
                ..
            } => Some((*provider, *correlation)),
            Action::Respond { .. } => None,
        })
        .collect()
}

fn answers(actions: Vec<Action<u32>>) -> Vec<(u32, Result<Bytes, String>)> {
    actions
        .into_iter()
        .flat_map(|a| match a {
            Action::Respond { waiters, result } => waiters
                .into_iter()
                .map(|w| (w, result.clone().map_err(|e| e.wire_code().to_owned())))
                .collect(),
            Action::Deliver { .. } => Vec::new(),
        })
        .collect()
}

#[test]
fn round_robin_shares_load_and_routes_around_failure() {
    let mut r = router();
    assert_eq!(
        answers(r.submit(routed(None), reliability(Pattern::Synchronous, 0), 1, T0))[0].1,
        Err("SVC_NO_PROVIDER".into())
    );
    r.register(1).unwrap();
    r.register(2).unwrap();
    let mut by_provider = BTreeMap::<ProviderId, u32>::new();
    for w in 0..10 {
        let a = r.submit(routed(None), reliability(Pattern::Synchronous, 0), w, T0);
        let (p, c) = delivered(&a)[0];
        *by_provider.entry(p).or_default() += 1;
        assert_eq!(answers(r.complete(c, Ok(Bytes::new()), T0)).len(), 1);
    }
    assert_eq!(by_provider, BTreeMap::from([(1, 5), (2, 5)]));
    // Provider 1 hangs: the request times out (sync: no retry) and 1 is
    // routed around while 2 is healthy.
    let mut on_one = None;
    for w in 0..2 {
        let a = r.submit(
            routed(None),
            reliability(Pattern::Synchronous, 0),
            100 + w,
            T0,
        );
        let (p, c) = delivered(&a)[0];
        if p == 1 {
            on_one = Some(c)
        } else {
            r.complete(c, Ok(Bytes::new()), T0);
        }
    }
    assert!(on_one.is_some());
    let later = T0.saturating_add(Duration::from_secs(11));
    let a = answers(r.tick(later));
    assert_eq!(a[0].1, Err("SVC_TIMEOUT".into()));
    for w in 0..4 {
        let a = r.submit(
            routed(None),
            reliability(Pattern::Synchronous, 0),
            200 + w,
            later,
        );
        assert_eq!(delivered(&a)[0].0, 2);
    }
}

#[test]
fn a_lost_provider_s_requests_go_elsewhere() {
    let mut r = router();
    r.register(1).unwrap();
    r.register(2).unwrap();
    let a = r.submit(routed(None), reliability(Pattern::Synchronous, 0), 7, T0);
    let (p, c) = delivered(&a)[0];
    let a = r.unregister(p, T0);
    let (q, c2) = delivered(&a)[0];
    assert_ne!(p, q);
    assert_eq!(c, c2, "a retry keeps the correlation id");
    let other = if p == 1 { 2 } else { 1 };
    assert_eq!(
        answers(r.unregister(other, T0)),
        vec![(7, Err("SVC_NO_PROVIDER".into()))]
    );
}

#[test]
fn reliable_requests_retry_then_time_out_and_duplicates_are_eliminated() {
    let mut r = router();
    r.register(1).unwrap();
    let rel = reliability(Pattern::AsyncReliable, 2);
    let a = r.submit(routed(Some("m1")), rel, 1, T0);
    let c = delivered(&a)[0].1;
    // A duplicate while in flight joins the first: no second delivery.
    assert!(r.submit(routed(Some("m1")), rel, 2, T0).is_empty());
    let mut t = T0;
    for _ in 0..2 {
        t = t.saturating_add(Duration::from_secs(10));
        assert_eq!(delivered(&r.tick(t)), vec![(1, c)]);
    }
    t = t.saturating_add(Duration::from_secs(10));
    let a = answers(r.tick(t));
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|(_, res)| res == &Err("SVC_TIMEOUT".into())));
    // Answered within the persist duration: the same answer, no delivery.
    let a = r.submit(routed(Some("m2")), rel, 3, t);
    let c = delivered(&a)[0].1;
    r.complete(c, Ok(Bytes::from_static(b"done")), t);
    let again = answers(r.submit(
        routed(Some("m2")),
        rel,
        4,
        t.saturating_add(Duration::from_secs(59)),
    ));
    assert_eq!(again, vec![(4, Ok(Bytes::from_static(b"done")))]);
    // After it, delivered afresh.
    let late = r.submit(
        routed(Some("m2")),
        rel,
        5,
        t.saturating_add(Duration::from_secs(61)),
    );
    assert_eq!(delivered(&late).len(), 1);
    assert!(
        r.complete(9_999, Ok(Bytes::new()), t).is_empty(),
        "unknown correlation ignored"
    );
}

#[test]
fn the_router_is_bounded() {
    let mut r = router();
    r.register(1).unwrap();
    for w in 0..8 {
        assert_eq!(
            delivered(&r.submit(routed(None), reliability(Pattern::Synchronous, 0), w, T0)).len(),
            1
        );
    }
    assert_eq!(
        answers(r.submit(routed(None), reliability(Pattern::Synchronous, 0), 8, T0))[0].1,
        Err("SVC_BUSY".into())
    );
    let mut r: Router<u32> = Router::new(
        ServiceName::parse("x").unwrap(),
        RouterConfig {
            max_providers: 2,
            ..RouterConfig::default()
        },
    );
    r.register(1).unwrap();
    r.register(2).unwrap();
    r.register(2).unwrap();
    assert_eq!(r.register(3).unwrap_err().code(), "SVC_TOO_MANY_PROVIDERS");
}

proptest! {
    /// Whatever happens, every waiter is answered exactly once, and the
    /// router ends empty once time has run out and providers have gone.
    #[test]
    fn every_request_is_answered_exactly_once(
        events in proptest::collection::vec((0u8..7, 0u64..4, 0u64..30), 1..200),
        reliable in any::<bool>(),
    ) {
        let mut r = router();
        let rel = if reliable { reliability(Pattern::AsyncReliable, 2) } else { reliability(Pattern::Synchronous, 0) };
        let mut now = T0;
        let mut next_waiter = 0u32;
        let mut answered: BTreeMap<u32, u32> = BTreeMap::new();
        let mut submitted = BTreeSet::new();
        let mut in_flight: Vec<Correlation> = Vec::new();
        let mut take = |actions: Vec<Action<u32>>, in_flight: &mut Vec<Correlation>| {
            for a in actions {
                match a {
                    Action::Deliver { correlation, .. } => in_flight.push(correlation),
                    Action::Respond { waiters, .. } => for w in waiters { *answered.entry(w).or_default() += 1; },
                }
            }
        };
        for (kind, x, y) in events {
            match kind {
                0 => { let _ = r.register(x); }
                1 => take(r.unregister(x, now), &mut in_flight),
                2 | 3 => {
                    next_waiter += 1;
                    submitted.insert(next_waiter);
                    let id = format!("m{}", y % 5);
                    take(r.submit(routed(Some(&id)), rel, next_waiter, now), &mut in_flight);
                }
                4 => if !in_flight.is_empty() {
                    let c = in_flight.swap_remove(y as usize % in_flight.len());
                    take(r.complete(c, Ok(Bytes::new()), now), &mut in_flight);
                },
                // Provider x failed while holding requests: they are failed.
                5 => for c in r.placed_with(x) {
                    take(r.fail(c, ServiceError::Unavailable { why: "failed".into() }), &mut in_flight);
                },
                _ => { now = now.saturating_add(Duration::from_secs(y)); take(r.tick(now), &mut in_flight); }
            }
        }
        for p in 0..4 { take(r.unregister(p, now), &mut in_flight); }
        take(r.tick(now.saturating_add(Duration::from_secs(3600))), &mut in_flight);
        prop_assert_eq!(r.pending(), 0);
        for w in &submitted {
            prop_assert_eq!(answered.get(w).copied().unwrap_or(0), 1, "waiter {} answered {:?} times", w, answered.get(w));
        }
    }
}

// ---- the log: replay and compaction -----------------------------------------

#[test]
fn service_state_survives_replay_and_compaction_in_a_shared_log() {
    use crate::message::{compact_with, CompactionPolicy, MessageStore, StoreConfig};
    use crate::wal::{MemStorage, Wal, WalConfig};
    let config = WalConfig {
        segment_bytes: 4 * 1024,
        max_record_bytes: 1 << 20,
        max_batch_records: 256,
    };
    let disk = MemStorage::new();
    let (mut wal, _) = Wal::open(disk.clone(), config.clone(), |_| Ok(())).unwrap();
    let mut s = services();
    let mut store = MessageStore::new(StoreConfig::default());
    // Enough changes to span many segments; later ones supersede earlier.
    for i in 0..200u64 {
        let n = synthetic_numbers(20).nth((i % 20) as usize).unwrap();
        let body = format!(r#"{{"nhs_number":"{n}","summary":{{"rev":{i}}}}}"#);
        let h = s
            .handle(Builtin::Scr, "upload", &gp(), body.as_bytes(), T0)
            .unwrap();
        let recs: Vec<_> = h.records.iter().map(|r| r.to_record().unwrap()).collect();
        let appended = wal.append_batch(&recs).unwrap();
        for (r, a) in h.records.into_iter().zip(appended) {
            s.apply(r, a.location.segment);
        }
    }
    let before = s.carry(u64::MAX);
    assert!(wal.segments().len() > 3, "the test needs several segments");
    let report = compact_with(
        &mut wal,
        &mut store,
        &mut s,
        &CompactionPolicy::default(),
        true,
    )
    .unwrap();
    assert!(report.segments_removed > 0, "{report:?}");
    assert_eq!(s.carry(u64::MAX), before);
    drop(wal);
    // A restart replays what is left: the same state.
    let mut replayed = services();
    let mut messages = MessageStore::new(StoreConfig::default());
    let (_wal, _) = Wal::open(disk, config, |r| {
        messages.replay(&r).map_err(|e| e.to_string())?;
        replayed.replay(&r)
    })
    .unwrap();
    assert_eq!(replayed.carry(u64::MAX), before);
    assert_eq!(messages.len(), 0);
}

#[test]
fn a_provider_can_only_answer_requests_placed_with_it() {
    let mut r = router();
    r.register(1).unwrap();
    r.register(2).unwrap();
    let a = r.submit(routed(None), reliability(Pattern::Synchronous, 0), 1, T0);
    let (p, c) = delivered(&a)[0];
    let other = if p == 1 { 2 } else { 1 };
    assert!(r.complete_from(other, c, Ok(Bytes::new()), T0).is_empty());
    assert_eq!(r.pending(), 1, "another provider's answer is ignored");
    assert_eq!(
        answers(r.complete_from(p, c, Ok(Bytes::new()), T0)).len(),
        1
    );
}

#[test]
fn failing_a_request_answers_it_once_and_forgets_it_for_duplicate_elimination() {
    let mut r = router();
    r.register(1).unwrap();
    r.register(2).unwrap();
    let rel = reliability(Pattern::AsyncReliable, 2);
    let a = r.submit(routed(Some("m1")), rel, 1, T0);
    let (p, c) = delivered(&a)[0];
    // A duplicate joins the request in flight.
    assert!(r.submit(routed(Some("m1")), rel, 2, T0).is_empty());
    let other = if p == 1 { 2 } else { 1 };
    assert!(r.placed_with(other).is_empty());
    assert_eq!(r.placed_with(p), vec![c]);
    let unavailable = || ServiceError::Unavailable {
        why: "the provider failed".into(),
    };
    // Failed at once, both waiters, no retry elsewhere (although attempts
    // and another provider remain).
    let a = r.fail(c, unavailable());
    assert!(delivered(&a).is_empty(), "not retried");
    assert_eq!(
        answers(a),
        vec![
            (1, Err("SVC_UNAVAILABLE".into())),
            (2, Err("SVC_UNAVAILABLE".into()))
        ]
    );
    assert_eq!(r.pending(), 0);
    assert!(r.fail(c, unavailable()).is_empty(), "answered once");
    assert!(
        r.complete(c, Ok(Bytes::new()), T0).is_empty(),
        "a late answer is dropped"
    );
    // Not remembered: the same message id is delivered afresh.
    let again = r.submit(routed(Some("m1")), rel, 3, T0);
    assert_eq!(delivered(&again).len(), 1);
}

#[test]
fn a_router_starting_at_a_later_id_never_takes_an_old_answer_for_a_new_request() {
    let mut old = router();
    old.register(7).unwrap();
    let a = old.submit(routed(None), reliability(Pattern::Synchronous, 0), 1, T0);
    let (_, c_old) = delivered(&a)[0];
    // The replacement (same provider re-adopted) starts past the old ids.
    let mut new: Router<u32> = Router::starting_at(
        ServiceName::parse("pds").unwrap(),
        RouterConfig::default(),
        1 << 40,
    );
    new.register(7).unwrap();
    let a = new.submit(routed(None), reliability(Pattern::Synchronous, 0), 2, T0);
    let (_, c_new) = delivered(&a)[0];
    assert_ne!(c_old, c_new);
    assert!(
        new.complete_from(7, c_old, Ok(Bytes::from_static(b"stale")), T0)
            .is_empty(),
        "the provider's late answer to the old router's request is ignored"
    );
    assert_eq!(
        answers(new.complete_from(7, c_new, Ok(Bytes::from_static(b"fresh")), T0)),
        vec![(2, Ok(Bytes::from_static(b"fresh")))]
    );
}
