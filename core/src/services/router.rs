//! The request router of one service: a sans-IO state machine that picks a
//! provider for each request, tracks it by correlation id until its
//! response, retries per the interaction's reliability settings, and
//! eliminates duplicates.
//!
//! The owner (the service actor, or a test) feeds it events — a request,
//! a response, a provider joining or leaving, a clock tick — and carries
//! out the [`Action`]s it returns. Time only comes in as arguments, so the
//! simulator and property tests drive it on a virtual clock.
//!
//! Invariants and why:
//! - Every request is answered exactly once: by its provider's response,
//!   or by an error once its attempts are used up (`SVC_TIMEOUT`,
//!   `SVC_PROVIDER_LOST`) or when it cannot be placed (`SVC_NO_PROVIDER`,
//!   `SVC_BUSY`), or by the error its owner gives when the provider holding
//!   it failed ([`Router::fail`]: not retried, not remembered for duplicate
//!   elimination). A response for a correlation id no longer pending (late,
//!   or already answered) is dropped.
//! - Correlation ids are never reused within a router, and a router that
//!   replaces a failed one starts past its predecessor's ids
//!   ([`Router::starting_at`]), so a late answer cannot be misattributed.
//! - Bounded: at most `max_pending` requests in flight, `max_providers`
//!   providers and `max_remembered` duplicate-elimination entries; a full
//!   router refuses rather than queues.
//! - Providers are chosen round-robin among the healthy ones, preferring one
//!   not yet tried for this request. A provider whose attempt timed out is
//!   unhealthy for `cooldown` and routed around while any healthy one
//!   remains; a provider that leaves takes no new requests, and its pending
//!   ones are retried elsewhere (attempts permitting) at once.
//! - A retry keeps the correlation id, so a provider can recognise a repeat.
//! - An external provider's answer counts only for a request placed with
//!   it ([`Router::complete_from`]).
//! - Duplicate elimination (reliable interactions only): a request whose
//!   `(ASID, message id)` is pending joins it; one already answered within
//!   `persist_duration` gets the same answer again without a delivery.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::time::Timestamp;

use super::error::ServiceError;
use super::names::ServiceName;
use super::reliability::{Pattern, Reliability};

/// A provider's id, unique within a node.
pub type ProviderId = u64;
/// A request's correlation id, unique within a router.
pub type Correlation = u64;

/// Router limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Most requests in flight.
    pub max_pending: usize,
    /// Most providers.
    pub max_providers: usize,
    /// Most remembered message ids for duplicate elimination.
    pub max_remembered: usize,
    /// How long a provider that timed out is routed around.
    pub cooldown: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_pending: 4_096,
            max_providers: 64,
            max_remembered: 65_536,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// A request as providers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Interaction id.
    pub interaction: String,
    /// Operation name.
    pub operation: String,
    /// The caller's ASID.
    pub asid: String,
    /// The caller's ODS code.
    pub ods: String,
    /// The message id (for duplicate elimination), if given.
    pub message_id: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// What the owner must do.
#[derive(Debug)]
pub enum Action<W> {
    /// Deliver `request` to `provider` under `correlation`.
    Deliver {
        /// The provider.
        provider: ProviderId,
        /// The correlation id.
        correlation: Correlation,
        /// The request.
        request: Arc<Routed>,
    },
    /// Answer these waiters.
    Respond {
        /// Who is waiting.
        waiters: Vec<W>,
        /// The answer.
        result: Result<Bytes, ServiceError>,
    },
}

#[derive(Debug, Default)]
struct ProviderState {
    unhealthy_until: Option<Timestamp>,
}

#[derive(Debug)]
struct Pending<W> {
    request: Arc<Routed>,
    reliability: Reliability,
    attempts: u32,
    provider: ProviderId,
    tried: BTreeSet<ProviderId>,
    deadline: Timestamp,
    waiters: Vec<W>,
    dedup: Option<String>,
}

#[derive(Debug, Clone)]
enum Remembered {
    InFlight(Correlation),
    Done {
        result: Result<Bytes, ServiceError>,
        until: Timestamp,
    },
}

/// One service's router.
#[derive(Debug)]
pub struct Router<W> {
    service: ServiceName,
    config: RouterConfig,
    providers: BTreeMap<ProviderId, ProviderState>,
    cursor: ProviderId,
    next_correlation: Correlation,
    pending: BTreeMap<Correlation, Pending<W>>,
    deadlines: BTreeSet<(Timestamp, Correlation)>,
    remembered: BTreeMap<String, Remembered>,
    forget_at: BTreeSet<(Timestamp, String)>,
}

impl<W> Router<W> {
    /// An empty router for `service`.
    pub fn new(service: ServiceName, config: RouterConfig) -> Router<W> {
        Router::starting_at(service, config, 1)
    }

    /// An empty router whose correlation ids start at `first`. A service
    /// actor that replaces a failed one starts past every id its
    /// predecessor could have given out, so a provider's late answer to an
    /// old request can never be taken for the answer to a new one.
    pub fn starting_at(
        service: ServiceName,
        config: RouterConfig,
        first: Correlation,
    ) -> Router<W> {
        Router {
            service,
            config,
            providers: BTreeMap::new(),
            cursor: 0,
            next_correlation: first,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            remembered: BTreeMap::new(),
            forget_at: BTreeSet::new(),
        }
    }

    /// The service.
    pub fn service(&self) -> &ServiceName {
        &self.service
    }

    /// Requests in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Registered providers.
    pub fn providers(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.providers.keys().copied()
    }

    /// Remembered message ids.
    pub fn remembered(&self) -> usize {
        self.remembered.len()
    }

    /// The earliest deadline, for the owner's timer.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Adds a provider.
    pub fn register(&mut self, provider: ProviderId) -> Result<(), ServiceError> {
        if !self.providers.contains_key(&provider)
            && self.providers.len() >= self.config.max_providers
        {
            return Err(ServiceError::TooManyProviders {
                service: self.service.to_string(),
                limit: self.config.max_providers,
            });
        }
        self.providers.entry(provider).or_default();
        Ok(())
    }

    /// Removes a provider; its pending requests are retried elsewhere or
    /// failed.
    pub fn unregister(&mut self, provider: ProviderId, now: Timestamp) -> Vec<Action<W>> {
        if self.providers.remove(&provider).is_none() {
            return Vec::new();
        }
        let lost: Vec<Correlation> = self
            .pending
            .iter()
            .filter(|(_, p)| p.provider == provider)
            .map(|(c, _)| *c)
            .collect();
        let mut actions = Vec::new();
        for correlation in lost {
            self.retry_or_fail(correlation, now, false, &mut actions);
        }
        actions
    }

    /// Requests currently placed with `provider`, by correlation id.
    pub fn placed_with(&self, provider: ProviderId) -> Vec<Correlation> {
        self.pending
            .iter()
            .filter(|(_, p)| p.provider == provider)
            .map(|(c, _)| *c)
            .collect()
    }

    /// Answers request `correlation` with `error` at once: no retry
    /// elsewhere, and nothing remembered for duplicate elimination, so a
    /// repeat of it is served afresh. For a request that was not carried
    /// out, or whose outcome is unknown (its provider failed while holding
    /// it), where only the caller can decide whether to ask again. Unknown
    /// correlations are ignored.
    pub fn fail(&mut self, correlation: Correlation, error: ServiceError) -> Vec<Action<W>> {
        let Some(p) = self.pending.remove(&correlation) else {
            return Vec::new();
        };
        self.deadlines.remove(&(p.deadline, correlation));
        vec![self.answer_failed(p, error)]
    }

    /// Answers a request removed from `pending` with `error`, forgetting its
    /// duplicate-elimination entry (a failed request may be tried again).
    fn answer_failed(&mut self, p: Pending<W>, error: ServiceError) -> Action<W> {
        if let Some(key) = &p.dedup {
            self.remembered.remove(key);
        }
        Action::Respond {
            waiters: p.waiters,
            result: Err(error),
        }
    }

    /// Routes a new request.
    pub fn submit(
        &mut self,
        request: Routed,
        reliability: Reliability,
        waiter: W,
        now: Timestamp,
    ) -> Vec<Action<W>> {
        self.forget_expired(now);
        let dedup = (reliability.duplicate_elimination)
            .then(|| {
                request
                    .message_id
                    .as_ref()
                    .map(|m| format!("{}/{m}", request.asid))
            })
            .flatten();
        if let Some(key) = &dedup {
            match self.remembered.get(key) {
                Some(Remembered::InFlight(c)) => {
                    if let Some(p) = self.pending.get_mut(c) {
                        p.waiters.push(waiter);
                        return Vec::new();
                    }
                }
                Some(Remembered::Done { result, .. }) => {
                    return vec![Action::Respond {
                        waiters: vec![waiter],
                        result: result.clone(),
                    }];
                }
                None => {}
            }
        }
        if self.pending.len() >= self.config.max_pending
            || (dedup.is_some() && self.remembered.len() >= self.config.max_remembered)
        {
            return vec![Action::Respond {
                waiters: vec![waiter],
                result: Err(ServiceError::Busy {
                    service: self.service.to_string(),
                    limit: self.config.max_pending,
                }),
            }];
        }
        let Some(provider) = self.pick(now, &BTreeSet::new()) else {
            return vec![Action::Respond {
                waiters: vec![waiter],
                result: Err(ServiceError::NoProvider {
                    service: self.service.to_string(),
                }),
            }];
        };
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let deadline = now.saturating_add(reliability.retry_interval);
        let request = Arc::new(request);
        if let Some(key) = &dedup {
            self.remembered
                .insert(key.clone(), Remembered::InFlight(correlation));
        }
        self.pending.insert(
            correlation,
            Pending {
                request: Arc::clone(&request),
                reliability,
                attempts: 1,
                provider,
                tried: BTreeSet::from([provider]),
                deadline,
                waiters: vec![waiter],
                dedup,
            },
        );
        self.deadlines.insert((deadline, correlation));
        vec![Action::Deliver {
            provider,
            correlation,
            request,
        }]
    }

    /// An external provider's response: taken only if `from` is the
    /// provider the request is currently placed with, so one provider
    /// cannot answer another's requests (and a late answer from an earlier
    /// attempt's provider is dropped).
    pub fn complete_from(
        &mut self,
        from: ProviderId,
        correlation: Correlation,
        result: Result<Bytes, ServiceError>,
        now: Timestamp,
    ) -> Vec<Action<W>> {
        if self
            .pending
            .get(&correlation)
            .is_some_and(|p| p.provider == from)
        {
            self.complete(correlation, result, now)
        } else {
            Vec::new()
        }
    }

    /// A provider's response. Late or unknown correlations are ignored.
    pub fn complete(
        &mut self,
        correlation: Correlation,
        result: Result<Bytes, ServiceError>,
        now: Timestamp,
    ) -> Vec<Action<W>> {
        let Some(p) = self.pending.remove(&correlation) else {
            return Vec::new();
        };
        self.deadlines.remove(&(p.deadline, correlation));
        if let Some(key) = p.dedup {
            let until = now.saturating_add(p.reliability.persist_duration);
            self.remembered.insert(
                key.clone(),
                Remembered::Done {
                    result: result.clone(),
                    until,
                },
            );
            self.forget_at.insert((until, key));
        }
        vec![Action::Respond {
            waiters: p.waiters,
            result,
        }]
    }

    /// Handles every deadline at or before `now`.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Action<W>> {
        self.forget_expired(now);
        let mut actions = Vec::new();
        while let Some(&(deadline, correlation)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.remove(&(deadline, correlation));
            if let Some(p) = self.pending.get(&correlation) {
                let provider = p.provider;
                if let Some(state) = self.providers.get_mut(&provider) {
                    state.unhealthy_until = Some(now.saturating_add(self.config.cooldown));
                }
            }
            self.retry_or_fail(correlation, now, true, &mut actions);
        }
        actions
    }

    fn retry_or_fail(
        &mut self,
        correlation: Correlation,
        now: Timestamp,
        timed_out: bool,
        actions: &mut Vec<Action<W>>,
    ) {
        let Some(p) = self.pending.get(&correlation) else {
            return;
        };
        // A synchronous request whose provider left before answering is
        // placed once more: the caller is still waiting on its connection
        // (an update is still guarded by its version check). Timeouts of
        // synchronous and express requests are final.
        let retry = p.attempts < p.reliability.attempts()
            || (!timed_out && p.reliability.pattern == Pattern::Synchronous && p.attempts == 1);
        let tried = p.tried.clone();
        let next = if retry { self.pick(now, &tried) } else { None };
        let Some(mut p) = self.pending.remove(&correlation) else {
            return;
        };
        self.deadlines.remove(&(p.deadline, correlation));
        match next {
            Some(provider) => {
                p.attempts += 1;
                p.provider = provider;
                p.tried.insert(provider);
                p.deadline = now.saturating_add(p.reliability.retry_interval);
                self.deadlines.insert((p.deadline, correlation));
                actions.push(Action::Deliver {
                    provider,
                    correlation,
                    request: Arc::clone(&p.request),
                });
                self.pending.insert(correlation, p);
            }
            None => {
                let service = self.service.to_string();
                let error = if timed_out {
                    ServiceError::Timeout {
                        service,
                        timeout_ms: p.reliability.retry_interval.as_millis() as u64,
                        attempts: p.attempts,
                    }
                } else if self.providers.is_empty() {
                    ServiceError::NoProvider { service }
                } else {
                    ServiceError::ProviderLost { service }
                };
                actions.push(self.answer_failed(p, error));
            }
        }
    }

    /// Round-robin over providers: healthy and untried first, then healthy,
    /// then any.
    fn pick(&mut self, now: Timestamp, tried: &BTreeSet<ProviderId>) -> Option<ProviderId> {
        let healthy = |s: &ProviderState| s.unhealthy_until.is_none_or(|t| t <= now);
        let after = self.cursor;
        let ordered = || {
            self.providers
                .range(after.saturating_add(1)..)
                .chain(self.providers.range(..=after))
        };
        let chosen = ordered()
            .find(|(id, s)| healthy(s) && !tried.contains(id))
            .or_else(|| ordered().find(|(_, s)| healthy(s)))
            .or_else(|| ordered().next())
            .map(|(id, _)| *id)?;
        self.cursor = chosen;
        Some(chosen)
    }

    fn forget_expired(&mut self, now: Timestamp) {
        while let Some((until, key)) = self.forget_at.first().cloned() {
            if until > now {
                break;
            }
            self.forget_at.remove(&(until, key.clone()));
            if matches!(self.remembered.get(&key), Some(Remembered::Done { until: u, .. }) if *u == until)
            {
                self.remembered.remove(&key);
            }
        }
    }
}
