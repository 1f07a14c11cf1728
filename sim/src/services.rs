//! The population's national-service directory: the embedded demo set
//! ([`DEMO_SERVICES_TOML`]) plus one accredited system per organisation of
//! the population, accredited for every PDS interaction, so the simulated
//! senders may look patients up (`[node] service_requests_per_send`).
//!
//! Both modes use it: the deterministic driver gives its in-process node
//! [`directory`]; `spine-sim directory` writes [`render_toml`] as
//! [`SERVICES_TOML`] for `spine serve --services-directory` before a live
//! run.
//!
//! Invariants and why:
//! - One list of systems (`population_systems`) feeds both forms, so the
//!   file loads (with `spine_core::services::load_services_toml`) into
//!   exactly the directory the deterministic node gets; a test checks it.
//! - Organisations are taken once each, in sorted order, and numbered from
//!   0: ASID `3` then the index in 11 digits, party key `<ODS>-SIM`. The
//!   same population gives the same file, byte for byte, and the demo's
//!   own ASIDs (which start with 2) never collide with these.
//! - The demo text is kept verbatim and the population's systems are
//!   appended after it, so the file stays readable and diffable against
//!   the demo set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use spine_core::ids::OdsCode;
use spine_core::services::{AccreditedSystem, Asid, ServiceDirectory, DEMO_SERVICES_TOML};

use crate::model::Population;

/// The file `spine-sim directory` writes the service directory to.
pub const SERVICES_TOML: &str = "services.toml";

/// One accredited system per organisation (sorted, each once), for every
/// PDS interaction of `demo`.
fn population_systems(
    demo: &ServiceDirectory,
    organisations: impl IntoIterator<Item = OdsCode>,
) -> anyhow::Result<Vec<AccreditedSystem>> {
    let pds: BTreeSet<_> = demo
        .interactions()
        .filter(|i| i.service.as_str() == "pds")
        .map(|i| i.id.clone())
        .collect();
    let organisations: BTreeSet<OdsCode> = organisations.into_iter().collect();
    organisations
        .into_iter()
        .enumerate()
        .map(|(i, ods)| {
            Ok(AccreditedSystem {
                asid: Asid::parse(&format!("3{i:011}")).map_err(anyhow::Error::msg)?,
                party_key: format!("{ods}-SIM"),
                ods_code: ods,
                interactions: pds.clone(),
            })
        })
        .collect()
}

/// The demo service directory with the population's organisations
/// accredited for PDS (what the deterministic driver's node uses).
pub fn directory(
    organisations: impl IntoIterator<Item = OdsCode>,
) -> anyhow::Result<ServiceDirectory> {
    let demo = ServiceDirectory::demo()?;
    let mut systems: Vec<AccreditedSystem> = demo.systems().cloned().collect();
    systems.extend(population_systems(&demo, organisations)?);
    ServiceDirectory::new(
        demo.services().cloned(),
        demo.interactions().cloned(),
        systems,
    )
    .map_err(anyhow::Error::msg)
}

/// [`directory`] as the TOML a node loads (`[services] directory`).
pub fn render_toml(organisations: impl IntoIterator<Item = OdsCode>) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct File {
        accredited_system: Vec<Entry>,
    }
    #[derive(Serialize)]
    struct Entry {
        asid: String,
        party_key: String,
        ods_code: String,
        interactions: Vec<String>,
    }
    let demo = ServiceDirectory::demo()?;
    let systems = population_systems(&demo, organisations)?;
    let mut text = String::from(DEMO_SERVICES_TOML);
    if systems.is_empty() {
        return Ok(text);
    }
    let file = File {
        accredited_system: systems
            .into_iter()
            .map(|s| Entry {
                asid: s.asid.to_string(),
                party_key: s.party_key,
                ods_code: s.ods_code.as_str().to_owned(),
                interactions: s.interactions.iter().map(|i| i.to_string()).collect(),
            })
            .collect(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "\n# The simulated population (spine-sim directory): one system per \
         organisation,\n# accredited for every PDS interaction.\n",
    );
    text.push_str(&toml::to_string(&file).context("rendering the accredited systems")?);
    Ok(text)
}

/// The organisations of `population` (one per mailbox; duplicates are
/// taken once by [`directory`] and [`render_toml`]).
pub fn organisations(population: &Population) -> impl Iterator<Item = OdsCode> + '_ {
    population.mailboxes.iter().map(|m| m.ods.clone())
}

/// Writes [`SERVICES_TOML`] for `population` into `dir`; answers its path.
pub fn write(population: &Population, dir: &Path) -> anyhow::Result<PathBuf> {
    let text = render_toml(organisations(population))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(SERVICES_TOML);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::services::{load_services_toml, InteractionId};

    fn population() -> Population {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/national-peak-short.toml");
        let scenario = crate::scenario::Scenario::load(path).unwrap();
        crate::model::population(&scenario, 3)
    }

    /// The file loads with the node's own loader into exactly the directory
    /// the deterministic node gets, and every organisation of the
    /// population may then make a PDS get without naming an ASID.
    #[test]
    fn the_file_loads_as_the_deterministic_nodes_service_directory() {
        let population = population();
        let text = render_toml(organisations(&population)).unwrap();
        let loaded = load_services_toml(&text).unwrap();
        let built = directory(organisations(&population)).unwrap();
        assert_eq!(loaded, built);
        let demo = ServiceDirectory::demo().unwrap();
        let orgs: BTreeSet<OdsCode> = organisations(&population).collect();
        assert!(orgs.len() > 10, "{}", orgs.len());
        assert_eq!(
            loaded.systems().count(),
            demo.systems().count() + orgs.len()
        );
        let get: InteractionId = loaded.resolve("pds", "get").unwrap().id.clone();
        let scr = loaded.resolve("scr", "get").unwrap().id.clone();
        for ods in &orgs {
            loaded.authorize(ods, None, &get).unwrap();
            assert!(loaded.authorize(ods, None, &scr).is_err(), "PDS only");
        }
        // Same population, same bytes.
        assert_eq!(text, render_toml(organisations(&population)).unwrap());
    }

    #[test]
    fn write_puts_services_toml_in_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(&population(), &tmp.path().join("nested")).unwrap();
        assert!(path.ends_with(SERVICES_TOML));
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with(DEMO_SERVICES_TOML));
        load_services_toml(&text).unwrap();
    }
}
