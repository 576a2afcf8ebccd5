//! Validates the embeddings config at build time, so a bad config fails the build of every worker
//! with the offending field named, and hands the validated text to `config.rs` through
//! `$OUT_DIR/embeddings.toml`.
//!
//! The config is the project's `embeddings.toml`, or the file `EMBEDDINGS_CONFIG` names (absolute,
//! or relative to the repository root): the end-to-end suite builds the workers from a variant
//! config this way (`scripts/build-variant`), to change a table's model under a running stack.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=EMBEDDINGS_CONFIG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("worker-kit sits in the workspace");
    // Joining an absolute path replaces the root.
    let path = match std::env::var_os("EMBEDDINGS_CONFIG").filter(|p| !p.is_empty()) {
        Some(chosen) => root.join(chosen),
        None => root.join("embeddings.toml"),
    };
    let shown = path.display();
    println!("cargo:rerun-if-changed={shown}");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {shown}: {e}"));
    if let Err(errors) = shared::Config::parse(&text) {
        panic!("{shown}: {errors}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out.join("embeddings.toml");
    std::fs::write(&embedded, text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", embedded.display()));
}
