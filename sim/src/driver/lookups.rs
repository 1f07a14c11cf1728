//! The national-service side of a scenario: the PDS look-ups a sender
//! makes per message it sends (`[node] service_requests_per_send`), shared
//! by both drivers so that they ask the same things and log them alike.
//!
//! Invariants and why:
//! - The patient of request `j` after the send of event `seq` depends only
//!   on `(seq × n + j) mod PATIENTS`: the deterministic event log is the
//!   same on every run of a seed, and a live run asks what the
//!   deterministic run of the same seed asks.
//! - Every patient is one a node seeds by default (the first [`PATIENTS`]
//!   of `synthetic_numbers`, the `[services] patients` default), so a
//!   look-up fails only for a reason worth reporting (not accredited, a
//!   fault, a node started with fewer patients).
//! - Outcomes are tallied as counts by stable error code ([`Tally`]): a
//!   batch of up to 1,000 requests costs a few words, never a list.
//! - Failed look-ups are reported (event log, report), never an invariant
//!   violation: a refusal under an injected fault is legitimate.

use std::collections::BTreeMap;

use bytes::Bytes;

/// The service the look-ups call.
pub(crate) const SERVICE: &str = "pds";
/// The interaction (operation) they call.
pub(crate) const INTERACTION: &str = "get";
/// Seeded PDS patients the look-ups spread over (a node seeds 1,000 by
/// default).
const PATIENTS: usize = 1_000;

/// The look-up bodies, one per seeded patient, and how many per send.
#[derive(Debug)]
pub(crate) struct LookUps {
    per_send: u64,
    bodies: Vec<Bytes>,
}

impl LookUps {
    /// `per_send` look-ups after each acknowledged send (0: none).
    pub(crate) fn new(per_send: u32) -> LookUps {
        let bodies = if per_send > 0 {
            spine_core::services::pds::synthetic_numbers(PATIENTS)
                .map(|n| Bytes::from(format!(r#"{{"nhs_number":"{n}"}}"#)))
                .collect()
        } else {
            Vec::new()
        };
        LookUps {
            per_send: u64::from(per_send),
            bodies,
        }
    }

    /// Whether sends are followed by look-ups at all.
    pub(crate) fn enabled(&self) -> bool {
        self.per_send > 0 && !self.bodies.is_empty()
    }

    /// The bodies of the look-ups after the send of event `seq`, in order.
    pub(crate) fn bodies(&self, seq: u64) -> impl Iterator<Item = Bytes> + '_ {
        let n = if self.enabled() { self.per_send } else { 0 };
        let len = self.bodies.len().max(1) as u64;
        (0..n).map(move |j| {
            let index = (seq.wrapping_mul(n).wrapping_add(j) % len) as usize;
            self.bodies.get(index).cloned().unwrap_or_default()
        })
    }
}

/// Outcomes of one sender's look-ups: answered, and failed by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Requests answered.
    pub(crate) ok: u64,
    /// Requests failed or refused, by stable error code.
    pub(crate) failed: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one request's outcome (`Err`: its stable error code).
    pub(crate) fn add(&mut self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => self.ok = self.ok.saturating_add(1),
            Err(code) => {
                let n = self.failed.entry(code.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }

    /// The event-log details: `pds get x<n> ok=<k>` then ` CODE=<k>` per
    /// failure code.
    pub(crate) fn describe(&self) -> String {
        let issued = self
            .failed
            .values()
            .fold(self.ok, |sum, n| sum.saturating_add(*n));
        let failures: String = self
            .failed
            .iter()
            .map(|(c, k)| format!(" {c}={k}"))
            .collect();
        format!("{SERVICE} {INTERACTION} x{issued} ok={}{failures}", self.ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_depend_on_the_sequence_only_and_wrap_over_the_patients() {
        let l = LookUps::new(3);
        let a: Vec<Bytes> = l.bodies(7).collect();
        assert_eq!(a.len(), 3);
        assert_eq!(a, l.bodies(7).collect::<Vec<_>>());
        assert_ne!(a, l.bodies(8).collect::<Vec<_>>());
        // seq 7, n 3: patients 21, 22, 23.
        assert_eq!(a[0], l.bodies[21]);
        assert_eq!(a[2], l.bodies[23]);
        let wrapped: Vec<Bytes> = l.bodies(PATIENTS as u64).collect();
        assert_eq!(wrapped[0], l.bodies[0]);
        assert!(std::str::from_utf8(&a[0])
            .unwrap()
            .starts_with(r#"{"nhs_number":""#));
        assert_eq!(LookUps::new(0).bodies(7).count(), 0);
        assert!(!LookUps::new(0).enabled());
    }

    #[test]
    fn a_tally_counts_by_code_and_describes_itself() {
        let mut t = Tally::default();
        t.add(Ok(()));
        t.add(Err("SVC_BUSY"));
        t.add(Ok(()));
        t.add(Err("SVC_BUSY"));
        t.add(Err("SVC_NOT_ACCREDITED"));
        assert_eq!(t.ok, 2);
        assert_eq!(t.failed.get("SVC_BUSY"), Some(&2));
        assert_eq!(
            t.describe(),
            "pds get x5 ok=2 SVC_BUSY=2 SVC_NOT_ACCREDITED=1"
        );
    }
}
