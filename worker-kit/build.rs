//! Validates the project's embeddings config at build time, so a bad config fails the build of
//! every worker with the offending field named.

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../embeddings.toml");
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    if let Err(errors) = shared::Config::parse(&text) {
        panic!("{errors}");
    }
}
