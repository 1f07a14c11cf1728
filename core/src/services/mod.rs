//! Spine services: request/response routing to national services (PDS,
//! SCR, EPS and any service external systems provide), in the manner of the
//! Spine Directory Service and Spine's messaging patterns.
//!
//! - [`names`] — validated service names, interaction ids and ASIDs.
//! - [`reliability`] — messaging patterns and SDS reliability settings.
//! - [`directory`], [`loader`] — the service directory (services,
//!   interactions with reliability, accredited systems), its TOML form and
//!   the embedded demo set.
//! - [`router`] — one service's routing state machine: provider choice,
//!   correlation ids, timeouts and retries, duplicate elimination.
//! - [`pds`], [`scr`], [`eps`], [`reference`] — the built-in reference
//!   services as deterministic state machines.
//! - [`record`] — how their state changes are logged.
//! - [`error`] — [`ServiceError`] with stable codes.
//!
//! Everything here is sans-IO and deterministic like the rest of the core:
//! time comes in as arguments, randomness only from a seed.

pub mod directory;
pub mod eps;
pub mod error;
pub mod loader;
pub mod names;
pub mod pds;
pub mod record;
pub mod reference;
pub mod reliability;
pub mod router;
pub mod scr;

pub use directory::{AccreditedSystem, Builtin, Interaction, Service, ServiceDirectory};
pub use error::ServiceError;
pub use loader::{load_services_toml, ServiceDirectoryError, DEMO_SERVICES_TOML};
pub use names::{Asid, InteractionId, ServiceName};
pub use record::{is_service_kind, ServiceRecord, KIND_SERVICE_STATE};
pub use reference::{Caller, Handled, ReferenceConfig, ReferenceServices};
pub use reliability::{Pattern, Reliability};
pub use router::{Action, Correlation, ProviderId, Routed, Router, RouterConfig};

#[cfg(test)]
mod tests;
