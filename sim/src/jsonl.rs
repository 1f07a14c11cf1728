//! A scenario's directory as mesh-sandbox JSONL files, so a live node can
//! be started with the mailboxes the scenario sends between:
//! `spine-sim directory SCENARIO --seed N --out DIR`, then
//! `spine serve --mailboxes DIR/mailboxes.jsonl --workflows DIR/workflows.jsonl`.
//!
//! Invariant: the files describe exactly `model::population(scenario, seed)`
//! (same ids, passwords and registered workflows), so a live run with the
//! same seed authenticates as they say.

use std::path::Path;

use serde_json::json;

use crate::model::Population;

/// The two files' contents: (`mailboxes.jsonl`, `workflows.jsonl`).
pub fn render(population: &Population) -> (String, String) {
    let mut mailboxes = String::new();
    for m in &population.mailboxes {
        let line = json!({
            "mailbox_id": m.id.as_str(),
            "mailbox_name": m.id.as_str(),
            "ods_code": m.ods.as_str(),
            "password": m.password,
        });
        mailboxes.push_str(&line.to_string());
        mailboxes.push('\n');
    }
    let mut workflows = String::new();
    for w in population
        .workflows
        .iter()
        .filter(|w| !w.senders.is_empty())
    {
        let line = json!({
            "workflow_id": w.id.as_str(),
            "senders": w.senders.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "receivers": w.receivers.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        });
        workflows.push_str(&line.to_string());
        workflows.push('\n');
    }
    (mailboxes, workflows)
}

/// Writes `mailboxes.jsonl` and `workflows.jsonl` into `dir`.
pub fn write(population: &Population, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (mailboxes, workflows) = render(population);
    std::fs::write(dir.join("mailboxes.jsonl"), mailboxes)?;
    std::fs::write(dir.join("workflows.jsonl"), workflows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_core::random::SeededRandom;

    /// What is written loads with the node's own JSONL loader and holds
    /// every mailbox of the population.
    #[test]
    fn the_files_load_as_the_nodes_directory() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/national-peak-short.toml");
        let scenario = crate::scenario::Scenario::load(path).unwrap();
        let population = crate::model::population(&scenario, 3);
        let (m, w) = render(&population);
        let directory =
            spine_core::directory::load_jsonl(&m, &w, &mut SeededRandom::new(1), 1).unwrap();
        assert_eq!(directory.len(), population.mailboxes.len());
        for mb in &population.mailboxes {
            directory.authenticate(&mb.id, &mb.password).unwrap();
        }
    }
}
