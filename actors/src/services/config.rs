//! `[services]`: settings of service routing and the reference services.
//! Every limit is bounded here and checked by [`ServicesConfig::validate`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spine_core::services::eps::EpsLimits;
use spine_core::services::reference::MAX_SEED_PATIENTS;
use spine_core::services::scr::ScrLimits;
use spine_core::services::{ReferenceConfig, RouterConfig};

/// Service routing settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// Service directory file (TOML); absent: the embedded demo set.
    pub directory: Option<PathBuf>,
    /// Seed of the synthetic PDS patients. Must not change across restarts
    /// of one data directory (seeded patients are not logged).
    pub seed: u64,
    /// Number of synthetic PDS patients, 1 to 1000000 (9000000009 first).
    pub patients: usize,
    /// Largest request or response body in bytes.
    pub max_body_bytes: usize,
    /// Most requests in flight per service; more are refused (`SVC_BUSY`).
    pub max_pending: usize,
    /// Most providers per service.
    pub max_providers: usize,
    /// Most message ids remembered per service for duplicate elimination.
    pub max_remembered: usize,
    /// Requests queued for one external provider's connection.
    pub provider_queue: usize,
    /// How long a provider that timed out is routed around, in ms.
    pub cooldown_ms: u64,
    /// How often pending requests' deadlines are checked, in ms.
    pub tick_ms: u64,
    /// Most SCR summaries held.
    pub max_summaries: usize,
    /// Most EPS prescriptions held.
    pub max_prescriptions: usize,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        let router = RouterConfig::default();
        ServicesConfig {
            directory: None,
            seed: 1,
            patients: 1_000,
            max_body_bytes: 1 << 20,
            max_pending: router.max_pending,
            max_providers: router.max_providers,
            max_remembered: router.max_remembered,
            provider_queue: 1_024,
            cooldown_ms: router.cooldown.as_millis() as u64,
            tick_ms: 100,
            max_summaries: ScrLimits::default().max_summaries,
            max_prescriptions: EpsLimits::default().max_prescriptions,
        }
    }
}

impl ServicesConfig {
    /// Checks every value; says which is out of range.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 9] = [
            (
                (1..=MAX_SEED_PATIENTS).contains(&self.patients),
                "services.patients must be 1 to 1000000",
            ),
            (
                (1024..=16 << 20).contains(&self.max_body_bytes),
                "services.max_body_bytes must be 1024 to 16777216",
            ),
            (
                (1..=1 << 20).contains(&self.max_pending),
                "services.max_pending must be 1 to 1048576",
            ),
            (
                (1..=1024).contains(&self.max_providers),
                "services.max_providers must be 1 to 1024",
            ),
            (
                (self.max_pending..=1 << 24).contains(&self.max_remembered),
                "services.max_remembered must be max_pending to 16777216",
            ),
            (
                (1..=1 << 20).contains(&self.provider_queue),
                "services.provider_queue must be 1 to 1048576",
            ),
            (
                (1..=3_600_000).contains(&self.cooldown_ms),
                "services.cooldown_ms must be 1 to 3600000",
            ),
            (
                (10..=60_000).contains(&self.tick_ms),
                "services.tick_ms must be 10 to 60000",
            ),
            (
                (1..=1 << 26).contains(&self.max_summaries)
                    && (1..=1 << 26).contains(&self.max_prescriptions),
                "services.max_summaries and services.max_prescriptions must be 1 to 67108864",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err((*why).to_string()),
            None => Ok(()),
        }
    }

    /// The reference services' settings.
    pub fn reference(&self) -> ReferenceConfig {
        ReferenceConfig {
            seed: self.seed,
            patients: self.patients,
            scr: ScrLimits {
                max_summaries: self.max_summaries,
                ..ScrLimits::default()
            },
            eps: EpsLimits {
                max_prescriptions: self.max_prescriptions,
                ..EpsLimits::default()
            },
            ..ReferenceConfig::default()
        }
    }

    /// The routers' settings.
    pub fn router(&self) -> RouterConfig {
        RouterConfig {
            max_pending: self.max_pending,
            max_providers: self.max_providers,
            max_remembered: self.max_remembered,
            cooldown: std::time::Duration::from_millis(self.cooldown_ms),
        }
    }
}
