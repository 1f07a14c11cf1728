//! Runs every committed seed (`corpus/<target>/`) and every kept crash
//! input (`regressions/<target>/`) through its target's check, without
//! libFuzzer, so the checks and the inputs stay usable on the stable
//! toolchain; and checks the committed seeds are what
//! `examples/make_corpus.rs` generates.
//!
//! ```text
//! cargo test --manifest-path fuzz/Cargo.toml --locked
//! ```

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for target in spine_fuzz::TARGETS {
        for path in files(&root().join(kind).join(target)) {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| spine_fuzz::check(target, &data));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_seed_passes_its_check() {
    let n = replay("corpus");
    assert!(n >= 50, "only {n} seed files found");
}

#[test]
fn every_kept_regression_passes_its_check() {
    replay("regressions");
}

#[test]
fn every_target_has_seeds() {
    for target in spine_fuzz::TARGETS {
        let n = files(&root().join("corpus").join(target)).len();
        assert!(n >= 3, "corpus/{target} has {n} seeds");
    }
}

#[test]
fn committed_seeds_match_the_generator() {
    for seed in spine_fuzz::corpus::all() {
        let path = root().join("corpus").join(seed.target).join(&seed.name);
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == seed.data,
            "{} differs from what make_corpus generates; run \
             `cargo run --manifest-path fuzz/Cargo.toml --example make_corpus`",
            path.display()
        );
    }
}

/// The seeds are meaningful: each kind of valid input is accepted, so the
/// fuzzer starts from the parsers' accepting paths, not only their
/// refusals.
#[test]
fn valid_seeds_are_accepted() {
    use bytes::BytesMut;
    use spine_core::directory::{load_jsonl, load_toml};
    use spine_core::envelope::Envelope;
    use spine_core::random::SeededRandom;
    use spine_core::time::Timestamp;
    use spine_protocol::mesh::auth::{Token, DEFAULT_TOKEN_WINDOW};
    use spine_protocol::mesh::headers::send_header;
    use spine_protocol::{ClientCodec, ServerCodec};

    let read = |target: &str, name: &str| {
        std::fs::read(root().join("corpus").join(target).join(name)).unwrap()
    };
    for path in files(&root().join("corpus/frame_codec")) {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let data = std::fs::read(&path).unwrap();
        let mut wire = BytesMut::from(&data[2..]);
        if name.starts_with("request_") {
            let decoded = ServerCodec::default().decode(&mut wire);
            assert!(matches!(decoded, Ok(Some(_))), "{name}: {decoded:?}");
        } else if name.starts_with("response_") && !name.contains("to_server") {
            let decoded = ClientCodec::default().decode(&mut wire);
            assert!(matches!(decoded, Ok(Some(_))), "{name}: {decoded:?}");
        }
    }
    for path in files(&root().join("corpus/envelope")) {
        let data = std::fs::read(&path).unwrap();
        Envelope::from_rkyv_bytes(&data).unwrap();
    }
    let send = read("mesh_headers", "mesh_client_send.http");
    let head = spine_fuzz::mesh_headers::Head::parse(&send);
    let (header, _) = send_header(&|n: &str| head.get(n)).unwrap();
    assert_eq!(header.recipient.as_str(), "X26ABC2");
    let token = String::from_utf8(read("nhsmesh_token", "mesh_client.txt")).unwrap();
    let now = Timestamp::parse_seconds("20261124060000").unwrap();
    Token::parse(&token)
        .unwrap()
        .verify("password", b"BackBone", now, DEFAULT_TOKEN_WINDOW)
        .unwrap();
    let demo = String::from_utf8(read("directory", "demo.jsonl")).unwrap();
    let (m, w) = demo.split_once('\0').unwrap();
    assert_eq!(
        load_jsonl(m, w, &mut SeededRandom::new(1), 1)
            .unwrap()
            .len(),
        3
    );
    let extended = String::from_utf8(read("directory", "extended.jsonl")).unwrap();
    let (m, w) = extended.split_once('\0').unwrap();
    assert_eq!(
        load_jsonl(m, w, &mut SeededRandom::new(1), 1)
            .unwrap()
            .len(),
        2
    );
    let toml = String::from_utf8(read("directory", "demo.toml")).unwrap();
    assert_eq!(
        load_toml(&toml, &mut SeededRandom::new(1), 1)
            .unwrap()
            .len(),
        3
    );
}
