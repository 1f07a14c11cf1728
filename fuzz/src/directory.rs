//! Directory file loading: `load_jsonl` (mesh-sandbox's `mailboxes.jsonl`
//! and `workflows.jsonl`) and `load_toml` (the native form) on arbitrary
//! text.
//!
//! Input: text (invalid UTF-8 replaced). For `load_jsonl` it is split at
//! the first NUL byte into the mailboxes file and the workflows file (no
//! NUL: all mailboxes, no workflows); `load_toml` gets the whole text.
//!
//! Asserted for every input: no panic, and for a directory that loads:
//! - its invariants: every mailbox can be found by id; a plaintext
//!   password was hashed with the requested cost and verifies (and logs the
//!   mailbox in when active); a `password_hash` survives its text form;
//!   workflows name only known mailboxes; lookups return only active
//!   receivers of the workflow; every sender may send to every receiver;
//! - it round-trips: written back out as JSONL and as TOML, each loads
//!   again to the same directory.

use spine_core::directory::{load_jsonl, load_toml, Credential, Directory};
use spine_core::random::SeededRandom;

/// PBKDF2 rounds for plaintext passwords (the cheapest allowed).
const ITERATIONS: u32 = 1;

/// The check; see the module docs.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (mailboxes, workflows) = text.split_once('\0').unwrap_or((&text, ""));
    match load_jsonl(mailboxes, workflows, &mut SeededRandom::new(1), ITERATIONS) {
        Ok(dir) => {
            holds(&dir);
            round_trips(&dir);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match load_toml(&text, &mut SeededRandom::new(1), ITERATIONS) {
        Ok(dir) => {
            holds(&dir);
            round_trips(&dir);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn holds(dir: &Directory) {
    assert_eq!(dir.len(), dir.mailboxes().count());
    for m in dir.mailboxes() {
        assert!(dir.mailbox(&m.id).is_some());
        assert!(!m.name.is_empty() && m.name.trim() == m.name);
        match m.credential.mesh_secret() {
            Some(secret) => {
                assert_eq!(m.credential.iterations(), ITERATIONS);
                assert!(
                    m.credential.verify(secret.expose_secret()),
                    "a plaintext password does not verify against its own hash"
                );
                let login = dir.authenticate(&m.id, secret.expose_secret());
                assert_eq!(login.is_ok(), m.active, "login of {} is {login:?}", m.id);
            }
            None => {
                let text = m.credential.to_hash_string();
                let again = Credential::from_hash_string(&text)
                    .expect("a loaded password hash parses from its own text form");
                assert_eq!(again.to_hash_string(), text);
            }
        }
    }
    for wf in dir.workflows() {
        for id in wf.senders.iter().chain(&wf.receivers) {
            assert!(dir.mailbox(id).is_some(), "workflow names unknown {id}");
        }
        for found in dir.workflow_search(&wf.id) {
            assert!(found.active && wf.receivers.contains(&found.id));
        }
        for r in &wf.receivers {
            let Some(m) = dir.mailbox(r) else { continue };
            let found = dir.lookup(&m.ods_code, &wf.id);
            assert_eq!(
                found.iter().any(|f| f.id == m.id),
                m.active,
                "lookup of {} for {} disagrees with its active flag",
                m.ods_code,
                wf.id
            );
            for f in found {
                assert!(f.active && f.ods_code == m.ods_code && wf.receivers.contains(&f.id));
            }
        }
        for s in wf.senders.iter().take(8) {
            for r in wf.receivers.iter().take(8) {
                let active = |id| dir.mailbox(id).is_some_and(|m| m.active);
                if active(s) && active(r) {
                    let allowed = dir.check_send(s, r, &wf.id);
                    assert!(allowed.is_ok(), "{s} -> {r} on {}: {allowed:?}", wf.id);
                }
            }
        }
    }
}

/// The password field of a mailbox: its plaintext if it had one, else its
/// hash.
fn password(m: &spine_core::directory::Mailbox) -> (&'static str, String) {
    match m.credential.mesh_secret() {
        Some(secret) => ("password", secret.expose_secret().to_string()),
        None => ("password_hash", m.credential.to_hash_string()),
    }
}

fn to_jsonl(dir: &Directory) -> (String, String) {
    let mut mailboxes = String::new();
    for m in dir.mailboxes() {
        let mut o = serde_json::Map::new();
        o.insert("mailbox_id".into(), m.id.as_str().into());
        o.insert("mailbox_name".into(), m.name.as_str().into());
        o.insert("ods_code".into(), m.ods_code.as_str().into());
        for (k, v) in [
            ("org_code", &m.org_code),
            ("org_name", &m.org_name),
            ("billing_entity", &m.billing_entity),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), v.as_str().into());
            }
        }
        o.insert("active".into(), m.active.into());
        let (k, v) = password(m);
        o.insert(k.into(), v.into());
        mailboxes.push_str(&serde_json::Value::Object(o).to_string());
        mailboxes.push('\n');
    }
    let mut workflows = String::new();
    for wf in dir.workflows() {
        let ids = |set: &std::collections::BTreeSet<spine_core::ids::MailboxId>| {
            set.iter()
                .map(|id| id.as_str().to_string())
                .collect::<Vec<_>>()
        };
        let line = serde_json::json!({
            "workflow_id": wf.id.as_str(),
            "senders": ids(&wf.senders),
            "receivers": ids(&wf.receivers),
        });
        workflows.push_str(&line.to_string());
        workflows.push('\n');
    }
    (mailboxes, workflows)
}

fn to_toml(dir: &Directory) -> String {
    use toml::{Table, Value};
    let mut mailboxes = Vec::new();
    for m in dir.mailboxes() {
        let mut t = Table::new();
        t.insert("id".into(), m.id.as_str().into());
        t.insert("name".into(), m.name.as_str().into());
        t.insert("ods_code".into(), m.ods_code.as_str().into());
        for (k, v) in [
            ("org_code", &m.org_code),
            ("org_name", &m.org_name),
            ("billing_entity", &m.billing_entity),
        ] {
            if let Some(v) = v {
                t.insert(k.into(), v.as_str().into());
            }
        }
        t.insert("active".into(), m.active.into());
        let (k, v) = password(m);
        t.insert(k.into(), v.into());
        mailboxes.push(Value::Table(t));
    }
    let mut workflows = Vec::new();
    for wf in dir.workflows() {
        let ids = |set: &std::collections::BTreeSet<spine_core::ids::MailboxId>| {
            Value::Array(set.iter().map(|id| id.as_str().into()).collect())
        };
        let mut t = Table::new();
        t.insert("id".into(), wf.id.as_str().into());
        t.insert("senders".into(), ids(&wf.senders));
        t.insert("receivers".into(), ids(&wf.receivers));
        workflows.push(Value::Table(t));
    }
    let mut root = Table::new();
    root.insert("mailbox".into(), Value::Array(mailboxes));
    root.insert("workflow".into(), Value::Array(workflows));
    toml::to_string(&root).expect("a TOML table serialises")
}

fn same(a: &Directory, b: &Directory, how: &str) {
    let ma: Vec<_> = a.mailboxes().collect();
    let mb: Vec<_> = b.mailboxes().collect();
    assert_eq!(ma.len(), mb.len(), "{how}: mailbox count changed");
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(
            (
                &x.id,
                &x.name,
                &x.ods_code,
                &x.org_code,
                &x.org_name,
                &x.billing_entity,
                x.active
            ),
            (
                &y.id,
                &y.name,
                &y.ods_code,
                &y.org_code,
                &y.org_name,
                &y.billing_entity,
                y.active
            ),
            "{how}: mailbox changed"
        );
        assert_eq!(password(x), password(y), "{how}: credential changed");
    }
    let wa: Vec<_> = a.workflows().collect();
    let wb: Vec<_> = b.workflows().collect();
    assert_eq!(wa, wb, "{how}: workflows changed");
}

fn round_trips(dir: &Directory) {
    let (mailboxes, workflows) = to_jsonl(dir);
    match load_jsonl(
        &mailboxes,
        &workflows,
        &mut SeededRandom::new(2),
        ITERATIONS,
    ) {
        Ok(again) => same(dir, &again, "JSONL round trip"),
        Err(e) => panic!(
            "a loaded directory written as JSONL does not load: {e}\n{mailboxes}\n{workflows}"
        ),
    }
    let toml_text = to_toml(dir);
    match load_toml(&toml_text, &mut SeededRandom::new(2), ITERATIONS) {
        Ok(again) => same(dir, &again, "TOML round trip"),
        Err(e) => panic!("a loaded directory written as TOML does not load: {e}\n{toml_text}"),
    }
}
