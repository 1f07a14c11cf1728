//! The service directory, in the manner of the Spine Directory Service:
//! which services exist, which interactions route to each (with the
//! interaction's reliability settings), and which accredited systems may
//! send which interactions.
//!
//! Invariants and why:
//! - Immutable once built; [`ServiceDirectory::new`] checks every
//!   cross-reference (an interaction's service exists; an accredited
//!   system names only known interactions; ids are unique), so look-ups
//!   never meet a dangling name.
//! - Sender checks follow SDS's two keys: an accredited system (ASID) is
//!   bound to an ODS code, and a caller may only use an ASID of its own
//!   organisation (the ODS code of the mailbox it authenticated as), so one
//!   organisation cannot borrow another's accreditation. Without an ASID
//!   the caller's organisation's first system (ASID order) accredited for
//!   the interaction is used, deterministically.
//! - All maps are `BTreeMap`s: same directory, same answers, same order.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{MailboxId, OdsCode};

use super::error::ServiceError;
use super::names::{Asid, InteractionId, ServiceName};
use super::reliability::Reliability;

/// The built-in reference implementation behind a service, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Builtin {
    /// Personal Demographics Service.
    Pds,
    /// Summary Care Record.
    Scr,
    /// Electronic Prescription Service.
    Eps,
}

impl Builtin {
    /// Parses `pds`, `scr` or `eps`.
    pub fn parse(input: &str) -> Option<Builtin> {
        match input {
            "pds" => Some(Builtin::Pds),
            "scr" => Some(Builtin::Scr),
            "eps" => Some(Builtin::Eps),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Pds => "pds",
            Builtin::Scr => "scr",
            Builtin::Eps => "eps",
        }
    }
}

/// A service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name.
    pub name: ServiceName,
    /// The built-in provider, if the node serves it itself.
    pub builtin: Option<Builtin>,
    /// Mailboxes whose connections may register as external providers.
    pub providers: BTreeSet<MailboxId>,
}

/// An interaction: an operation of a service, with its reliability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// The interaction id.
    pub id: InteractionId,
    /// The service it routes to.
    pub service: ServiceName,
    /// The operation name the provider sees (`get`, `search`, ...).
    pub operation: String,
    /// How it is delivered.
    pub reliability: Reliability,
}

/// An accredited system (SDS `nhsAs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccreditedSystem {
    /// Its ASID.
    pub asid: Asid,
    /// Its MHS party key.
    pub party_key: String,
    /// Its organisation.
    pub ods_code: OdsCode,
    /// Interactions it may send.
    pub interactions: BTreeSet<InteractionId>,
}

/// The validated service directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDirectory {
    services: BTreeMap<ServiceName, Service>,
    interactions: BTreeMap<InteractionId, Interaction>,
    systems: BTreeMap<Asid, AccreditedSystem>,
}

impl ServiceDirectory {
    /// Builds a directory, checking uniqueness and cross-references.
    pub fn new(
        services: impl IntoIterator<Item = Service>,
        interactions: impl IntoIterator<Item = Interaction>,
        systems: impl IntoIterator<Item = AccreditedSystem>,
    ) -> Result<ServiceDirectory, String> {
        let mut dir = ServiceDirectory::default();
        for s in services {
            if dir.services.insert(s.name.clone(), s.clone()).is_some() {
                return Err(format!("service {} is defined more than once", s.name));
            }
        }
        for i in interactions {
            if !dir.services.contains_key(&i.service) {
                return Err(format!(
                    "interaction {} names unknown service {}; define it with [[service]]",
                    i.id, i.service
                ));
            }
            if i.operation.is_empty()
                || i.operation.len() > 32
                || !i
                    .operation
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "interaction {}: operation {:?} must be 1 to 32 letters, digits, '-' or '_'",
                    i.id, i.operation
                ));
            }
            if dir.interactions.insert(i.id.clone(), i.clone()).is_some() {
                return Err(format!("interaction {} is defined more than once", i.id));
            }
        }
        for a in systems {
            if let Some(unknown) = a
                .interactions
                .iter()
                .find(|i| !dir.interactions.contains_key(*i))
            {
                return Err(format!(
                    "accredited system {} names unknown interaction {unknown}",
                    a.asid
                ));
            }
            if dir.systems.insert(a.asid.clone(), a.clone()).is_some() {
                return Err(format!(
                    "accredited system {} is defined more than once",
                    a.asid
                ));
            }
        }
        Ok(dir)
    }

    /// The service with this name.
    pub fn service(&self, name: &ServiceName) -> Option<&Service> {
        self.services.get(name)
    }

    /// All services, by name.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    /// All interactions, by id.
    pub fn interactions(&self) -> impl Iterator<Item = &Interaction> {
        self.interactions.values()
    }

    /// All accredited systems, by ASID.
    pub fn systems(&self) -> impl Iterator<Item = &AccreditedSystem> {
        self.systems.values()
    }

    /// The interaction with this exact id.
    pub fn interaction(&self, id: &InteractionId) -> Option<&Interaction> {
        self.interactions.get(id)
    }

    /// Resolves what a caller typed: a full interaction id, or its short
    /// form (`QUPA_IN040000UK32`) or operation name (`get`) within
    /// `service`, and checks it belongs to `service`.
    pub fn resolve(&self, service: &str, interaction: &str) -> Result<&Interaction, ServiceError> {
        let name = ServiceName::parse(service).map_err(|_| ServiceError::UnknownService {
            service: service.chars().take(64).collect(),
        })?;
        if !self.services.contains_key(&name) {
            return Err(ServiceError::UnknownService {
                service: name.to_string(),
            });
        }
        let found = InteractionId::parse(interaction)
            .ok()
            .and_then(|id| self.interactions.get(&id))
            .or_else(|| {
                self.interactions.values().find(|i| {
                    i.service == name && (i.id.short() == interaction || i.operation == interaction)
                })
            })
            .ok_or_else(|| ServiceError::UnknownInteraction {
                interaction: interaction.chars().take(128).collect(),
            })?;
        if found.service != name {
            return Err(ServiceError::WrongService {
                interaction: found.id.to_string(),
                requested: name.to_string(),
                actual: found.service.to_string(),
            });
        }
        Ok(found)
    }

    /// Checks that a caller of organisation `caller_ods` may send
    /// `interaction`, as `asid` if given; answers the system it acts as.
    pub fn authorize(
        &self,
        caller_ods: &OdsCode,
        asid: Option<&Asid>,
        interaction: &InteractionId,
    ) -> Result<&AccreditedSystem, ServiceError> {
        let refuse = |why: String| ServiceError::NotAccredited { why };
        match asid {
            Some(asid) => {
                let system = self.systems.get(asid).ok_or_else(|| {
                    refuse(format!("ASID {asid} is not an accredited system"))
                })?;
                if &system.ods_code != caller_ods {
                    return Err(refuse(format!(
                        "ASID {asid} belongs to organisation {}, not the caller's ({caller_ods})",
                        system.ods_code
                    )));
                }
                if !system.interactions.contains(interaction) {
                    return Err(refuse(format!(
                        "ASID {asid} is not accredited for interaction {interaction}"
                    )));
                }
                Ok(system)
            }
            None => self
                .systems
                .values()
                .find(|s| &s.ods_code == caller_ods && s.interactions.contains(interaction))
                .ok_or_else(|| {
                    refuse(format!(
                        "no system of organisation {caller_ods} is accredited for interaction {interaction}"
                    ))
                }),
        }
    }

    /// May `mailbox` register as a provider of `service`?
    pub fn may_provide(
        &self,
        mailbox: &MailboxId,
        service: &ServiceName,
    ) -> Result<(), ServiceError> {
        let s = self
            .services
            .get(service)
            .ok_or_else(|| ServiceError::UnknownService {
                service: service.to_string(),
            })?;
        if s.providers.contains(mailbox) {
            Ok(())
        } else {
            Err(ServiceError::NotAccredited {
                why: format!("mailbox {mailbox} may not provide service {service}"),
            })
        }
    }
}
