//! A [`Variant`]: the workers built from another embeddings config, which
//! [`Stack::restart_workers`](super::Stack::restart_workers) swaps in under live state.

use std::io;
use std::path::PathBuf;

use super::process::repo_root;
use super::WORKERS;

/// The workers built from another embeddings config: what [`Stack::restart_workers`](super::Stack::restart_workers) restarts
/// `wrangler dev` with.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The config the workers were built from; the Vectorize bindings and indexes follow it.
    pub config: PathBuf,
    /// Holds `<worker>/build/index.js` for each worker, as `scripts/build-variant` leaves them.
    pub build_dir: PathBuf,
}

impl Variant {
    /// The workers `scripts/build-variant CONFIG BUILD_DIR` built, checked to be there.
    pub fn new(config: PathBuf, build_dir: PathBuf) -> io::Result<Variant> {
        let build = format!(
            "scripts/build-variant {} {}",
            config.display(),
            build_dir.display()
        );
        if !config.is_file() {
            return Err(io::Error::other(format!(
                "the variant config {} is missing: write it, then run {build}",
                config.display()
            )));
        }
        for worker in WORKERS {
            let bundle = build_dir.join(worker).join("build/index.js");
            if !bundle.is_file() {
                return Err(io::Error::other(format!(
                    "{} is missing: run {build}",
                    bundle.display()
                )));
            }
        }
        Ok(Variant { config, build_dir })
    }

    /// The variant `scripts/test` builds as `model-change` (`scripts/variant-config`):
    /// embeddings.toml with claims and evidence on bge-small (evidence in the 384-dimension
    /// Vectorize index) and notes on bge-base.
    pub fn model_change() -> io::Result<Variant> {
        Variant::built(MODEL_CHANGE)
    }

    /// The variant `scripts/test` builds as `models-back`: embeddings.toml's own models, with
    /// the 384-dimension index kept bound, so that a stack on [`Variant::model_change`] can go
    /// back.
    pub fn models_back() -> io::Result<Variant> {
        Variant::built(MODELS_BACK)
    }

    /// The variant `scripts/test` leaves in `target/variant`: `NAME.toml`, and its workers in
    /// `NAME/`.
    fn built(name: &str) -> io::Result<Variant> {
        let variants = repo_root().join("target/variant");
        let config = variants.join(format!("{name}.toml"));
        if !config.is_file() {
            return Err(io::Error::other(format!(
                "{} is missing: run scripts/variant-config {name} target/variant/{name}.toml \
                 and scripts/build-variant target/variant/{name}.toml target/variant/{name} \
                 (scripts/test does)",
                config.display()
            )));
        }
        Variant::new(config, variants.join(name))
    }

    /// A name for what is rendered for it: its config's file stem.
    pub(super) fn name(&self) -> String {
        self.config
            .file_stem()
            .map_or_else(|| "variant".into(), |s| s.to_string_lossy().into_owned())
    }
}

const MODEL_CHANGE: &str = "model-change";
const MODELS_BACK: &str = "models-back";
