//! Writes the seed corpora to `fuzz/corpus/<target>/` from the real
//! encoders (`spine_fuzz::corpus`). Run from anywhere:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_corpus
//! ```
//!
//! Files the generator no longer makes are left alone (remove them by hand
//! if that is intended); `tests/replay.rs` checks that every generated seed
//! is committed unchanged.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut written = 0;
    for seed in spine_fuzz::corpus::all() {
        let dir = root.join(seed.target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&seed.name);
        if std::fs::read(&path).ok().as_deref() != Some(&seed.data[..]) {
            std::fs::write(&path, &seed.data)?;
            println!("wrote {}", path.display());
            written += 1;
        }
    }
    println!("{written} seed file(s) written under {}", root.display());
    Ok(())
}
