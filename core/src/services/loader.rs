//! Loading the service directory from its TOML form, and the embedded
//! demo set (`demo.toml`: PDS, SCR and EPS interactions with SDS-style
//! reliability settings, an external-only e-RS, and accredited systems for
//! the demo mailboxes' organisations).
//!
//! ```toml
//! [[service]]
//! name = "pds"
//! builtin = "pds"            # optional: pds, scr or eps
//! providers = ["X26ABC3"]    # optional: mailboxes that may register as providers
//!
//! [[interaction]]
//! id = "urn:nhs:names:services:pdsquery/QUPA_IN040000UK32"
//! service = "pds"
//! operation = "get"
//! pattern = "sync"           # sync, async-express or async-reliable
//! retries = 0                # optional (async-reliable only)
//! retry_interval = "PT10S"   # ISO-8601; the attempt timeout
//! persist_duration = "PT5M"  # optional; duplicate-elimination window
//! duplicate_elimination = false
//!
//! [[accredited_system]]
//! asid = "200000000101"
//! party_key = "X26-822599"
//! ods_code = "X26"
//! interactions = ["urn:nhs:names:services:pdsquery/QUPA_IN040000UK32"]
//! ```
//!
//! Unknown keys are errors, so a typo is reported rather than ignored;
//! every error names the 1-based line of the entry at fault.

use std::collections::BTreeSet;

use serde::Deserialize;
use toml::Spanned;

use crate::ids::{MailboxId, OdsCode};
use crate::ErrorCode;

use super::directory::{AccreditedSystem, Builtin, Interaction, Service, ServiceDirectory};
use super::names::{Asid, InteractionId, ServiceName};
use super::reliability::{parse_iso_duration, Pattern, Reliability};

/// The embedded demo service directory.
pub const DEMO_SERVICES_TOML: &str = include_str!("demo.toml");

/// Why a service directory file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service directory, line {line}: {message}")]
pub struct ServiceDirectoryError {
    /// 1-based line of the entry at fault (1 when not known).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ErrorCode for ServiceDirectoryError {
    fn code(&self) -> &'static str {
        "SVC_DIRECTORY_INVALID"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    #[serde(default)]
    interaction: Vec<Spanned<RawInteraction>>,
    #[serde(default)]
    accredited_system: Vec<Spanned<RawSystem>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    builtin: Option<String>,
    #[serde(default)]
    providers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInteraction {
    id: String,
    service: String,
    operation: String,
    pattern: String,
    #[serde(default)]
    retries: u32,
    retry_interval: String,
    persist_duration: Option<String>,
    #[serde(default)]
    duplicate_elimination: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    asid: String,
    party_key: String,
    ods_code: String,
    interactions: Vec<String>,
}

fn line_of(contents: &str, at: usize) -> usize {
    contents
        .get(..at)
        .map_or(1, |s| s.bytes().filter(|b| *b == b'\n').count() + 1)
}

/// Loads a service directory from TOML text.
pub fn load_services_toml(contents: &str) -> Result<ServiceDirectory, ServiceDirectoryError> {
    let file: File = toml::from_str(contents).map_err(|e| ServiceDirectoryError {
        line: e.span().map_or(1, |s| line_of(contents, s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let err = |span: std::ops::Range<usize>, message: String| ServiceDirectoryError {
        line: line_of(contents, span.start),
        message,
    };
    let mut services = Vec::new();
    for entry in &file.service {
        let raw = entry.get_ref();
        let at = || entry.span();
        let name = ServiceName::parse(&raw.name).map_err(|m| err(at(), m))?;
        let builtin =
            match &raw.builtin {
                None => None,
                Some(b) => Some(Builtin::parse(b).ok_or_else(|| {
                    err(at(), format!("builtin {b:?} is not one of pds, scr, eps"))
                })?),
            };
        let providers = raw
            .providers
            .iter()
            .map(|m| MailboxId::parse(m).map_err(|e| err(at(), e.to_string())))
            .collect::<Result<BTreeSet<_>, _>>()?;
        services.push(Service {
            name,
            builtin,
            providers,
        });
    }
    let mut interactions = Vec::new();
    for entry in &file.interaction {
        let raw = entry.get_ref();
        let at = || entry.span();
        let id = InteractionId::parse(&raw.id).map_err(|m| err(at(), m))?;
        let service = ServiceName::parse(&raw.service).map_err(|m| err(at(), m))?;
        let pattern = Pattern::parse(&raw.pattern).ok_or_else(|| {
            err(
                at(),
                format!(
                    "pattern {:?} is not one of sync, async-express, async-reliable",
                    raw.pattern
                ),
            )
        })?;
        let duration = |field: &str, text: &str| {
            parse_iso_duration(text).ok_or_else(|| {
                err(
                    at(),
                    format!("{field} {text:?} is not an ISO-8601 duration such as PT1M"),
                )
            })
        };
        let retry_interval = duration("retry_interval", &raw.retry_interval)?;
        let persist_duration = match &raw.persist_duration {
            Some(p) => duration("persist_duration", p)?,
            None => std::time::Duration::ZERO,
        };
        let reliability = Reliability::new(
            pattern,
            raw.retries,
            retry_interval,
            persist_duration,
            raw.duplicate_elimination,
        )
        .map_err(|m| err(at(), format!("interaction {id}: {m}")))?;
        interactions.push(Interaction {
            id,
            service,
            operation: raw.operation.clone(),
            reliability,
        });
    }
    let mut systems = Vec::new();
    for entry in &file.accredited_system {
        let raw = entry.get_ref();
        let at = || entry.span();
        let asid = Asid::parse(&raw.asid).map_err(|m| err(at(), m))?;
        let ods_code = OdsCode::parse(&raw.ods_code).map_err(|e| err(at(), e.to_string()))?;
        if raw.party_key.is_empty()
            || raw.party_key.len() > 64
            || !raw.party_key.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(err(
                at(),
                "party_key must be 1 to 64 printable characters (for example X26-822599)".into(),
            ));
        }
        let interactions = raw
            .interactions
            .iter()
            .map(|i| InteractionId::parse(i).map_err(|m| err(at(), m)))
            .collect::<Result<BTreeSet<_>, _>>()?;
        systems.push(AccreditedSystem {
            asid,
            party_key: raw.party_key.clone(),
            ods_code,
            interactions,
        });
    }
    ServiceDirectory::new(services, interactions, systems)
        .map_err(|message| ServiceDirectoryError { line: 1, message })
}

impl ServiceDirectory {
    /// The embedded demo service directory.
    pub fn demo() -> Result<ServiceDirectory, ServiceDirectoryError> {
        load_services_toml(DEMO_SERVICES_TOML)
    }
}
