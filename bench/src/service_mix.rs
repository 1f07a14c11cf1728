//! Service requests mixed into the load generator's message traffic
//! (`spine-bench load --requests-per-send K`): each producer issues K PDS
//! get requests (`QUPA_IN040000UK32`) on its own connection for every
//! message it sends, inside the same window, so the mix holds at exactly K
//! to 1 whatever the node's speed. Spine carries about 1.3 billion
//! messages a month against MESH's 40 million files, about 32 to 1, so
//! national proportions are `--requests-per-send 31` (`mesh-notes.md`
//! §5.4).
//!
//! Invariants: a request owed by a send is issued only before the
//! measured phase's deadline; its latency counts from when the send that
//! owed it was issued (in `--rate` mode, that send's scheduled time:
//! coordinated omission, as for sends), so waiting for a window slot
//! counts too; every
//! request's outcome is counted, and a refused one is an error in the
//! report, never silently dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use spine_client::{Client, ClientError, RequestOptions};
use spine_core::services::pds::synthetic_numbers;

use crate::report::{latency_histogram, Latency};

/// The PDS interaction every mixed request uses (a synchronous get).
pub(crate) const INTERACTION: &str = "QUPA_IN040000UK32";

/// Most service requests per message send.
pub(crate) const MAX_REQUESTS_PER_SEND: u32 = 1_000;

/// Request bodies for the first `patients` synthetic patients
/// (`{"nhs_number":"…"}`); the node's default seed has 1,000.
pub(crate) fn pds_get_bodies(patients: usize) -> Arc<Vec<Bytes>> {
    Arc::new(
        synthetic_numbers(patients)
            .map(|n| Bytes::from(format!(r#"{{"nhs_number":"{n}"}}"#)))
            .collect(),
    )
}

/// Shared state of the mixed requests across producers.
#[derive(Debug)]
pub(crate) struct ServiceMix {
    /// Requests per message send.
    pub(crate) per_send: u32,
    bodies: Arc<Vec<Bytes>>,
    issued: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

/// What the report says about the mixed requests.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceReport {
    pub(crate) interaction: &'static str,
    pub(crate) requests_per_send: u32,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) requests_per_s: f64,
    /// Answered requests over acknowledged sends (the mix achieved).
    pub(crate) achieved_per_send: f64,
    pub(crate) latency_us: Latency,
}

impl ServiceMix {
    /// `per_send` requests per message over `patients` patients.
    pub(crate) fn new(per_send: u32, patients: usize) -> anyhow::Result<ServiceMix> {
        anyhow::ensure!(
            (1..=MAX_REQUESTS_PER_SEND).contains(&per_send),
            "--requests-per-send must be 0 to {MAX_REQUESTS_PER_SEND}"
        );
        anyhow::ensure!(patients > 0, "no patients to ask about");
        Ok(ServiceMix {
            per_send,
            bodies: pds_get_bodies(patients),
            issued: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            hist: Mutex::new(latency_histogram()?),
        })
    }

    /// One request's future (the next patient in turn).
    pub(crate) fn request(
        &self,
        client: &Client,
    ) -> impl std::future::Future<Output = Result<Bytes, ClientError>> + Send + 'static {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) as usize;
        let body = self.bodies[n % self.bodies.len()].clone();
        let client = client.clone();
        async move {
            client
                .request("pds", INTERACTION, body, RequestOptions::default())
                .await
        }
    }

    /// Counts one answer; answers the error text when it failed.
    pub(crate) fn record(
        &self,
        hist: &mut Histogram<u64>,
        micros: u64,
        result: Result<Bytes, ClientError>,
    ) -> Option<String> {
        match result {
            Ok(_) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                let _ = hist.record(micros.max(1));
                None
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Some(format!("service request: {e}"))
            }
        }
    }

    /// Adds a producer's latencies.
    pub(crate) fn merge(&self, hist: &Histogram<u64>) {
        let mut all = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        let _ = all.add(hist);
    }

    /// The report over a measured phase of `seconds` with `acked` sends.
    pub(crate) fn report(&self, seconds: f64, acked: u64) -> ServiceReport {
        let answered = self.answered.load(Ordering::SeqCst);
        let hist = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        ServiceReport {
            interaction: INTERACTION,
            requests_per_send: self.per_send,
            requests: answered,
            errors: self.errors.load(Ordering::SeqCst),
            requests_per_s: answered as f64 / seconds.max(f64::MIN_POSITIVE),
            achieved_per_send: answered as f64 / acked.max(1) as f64,
            latency_us: Latency::from_hist(&hist),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_valid_seeded_patients_first_9000000009() {
        let bodies = pds_get_bodies(3);
        assert_eq!(bodies.len(), 3);
        assert_eq!(&bodies[0][..], br#"{"nhs_number":"9000000009"}"#);
        for b in bodies.iter() {
            let v: serde_json::Value = serde_json::from_slice(b).expect("json");
            let n = v["nhs_number"].as_str().expect("number");
            assert!(spine_core::ids::NhsNumber::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn the_mix_is_bounded_and_reports_what_was_achieved() {
        assert!(ServiceMix::new(0, 10).is_err());
        assert!(ServiceMix::new(MAX_REQUESTS_PER_SEND + 1, 10).is_err());
        let mix = ServiceMix::new(31, 10).expect("mix");
        let mut hist = latency_histogram().expect("hist");
        for _ in 0..62 {
            assert_eq!(mix.record(&mut hist, 100, Ok(Bytes::new())), None);
        }
        let refused = mix.record(&mut hist, 100, Err(ClientError::Closed));
        assert!(refused.is_some_and(|e| e.starts_with("service request")));
        mix.merge(&hist);
        let r = mix.report(2.0, 2);
        assert_eq!((r.requests, r.errors), (62, 1));
        assert!((r.achieved_per_send - 31.0).abs() < 1e-9, "{r:?}");
        assert!((r.requests_per_s - 31.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.latency_us.p50, 100);
    }
}
