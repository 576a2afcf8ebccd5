//! Which model names local-ai answers, and with what.
//!
//! By default every `@cf/baai/bge-*` name of the catalogue in `shared` is served by the one
//! local encoder (all-MiniLM-L6-v2), its vector zero-padded to that model's dimension: cosine
//! similarity is unchanged by the padding, and nobody can mistake the answer for BGE because
//! each response says so. `--serve NAME=DIR` serves a name with real weights instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::encoder::{Encoder, LoadError};

/// One servable model name.
#[derive(Debug)]
pub struct Served {
    pub name: String,
    pub encoder: Arc<Encoder>,
    /// The dimension answered: the catalogue's for a BGE name, else the encoder's own.
    pub dimensions: usize,
    /// Set when the answer is not the named model's: said in every response.
    pub stand_in: Option<String>,
}

#[derive(Debug)]
pub struct Catalogue {
    models: BTreeMap<String, Arc<Served>>,
}

impl Catalogue {
    /// The default encoder from `default_dir` for every catalogue name, then each `overrides`
    /// entry (`name`, weights directory) served for real.
    pub fn load(default_dir: &Path, overrides: &[(String, PathBuf)]) -> Result<Self, LoadError> {
        let default = Arc::new(Encoder::load(default_dir)?);
        let mut models = BTreeMap::new();
        for spec in shared::models::MODELS {
            let served = stand_in(spec.name, spec.dimensions, &default)?;
            models.insert(spec.name.to_owned(), Arc::new(served));
        }
        for (name, dir) in overrides {
            let encoder = Arc::new(Encoder::load(dir)?);
            let dimensions =
                shared::models::model(name).map_or(encoder.dimensions, |spec| spec.dimensions);
            if dimensions != encoder.dimensions {
                return Err(LoadError::Unsupported(format!(
                    "{name} has {dimensions} dimensions; the weights in {} give {}",
                    dir.display(),
                    encoder.dimensions
                )));
            }
            models.insert(
                name.clone(),
                Arc::new(Served {
                    name: name.clone(),
                    encoder,
                    dimensions,
                    stand_in: None,
                }),
            );
        }
        Ok(Catalogue { models })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Served>> {
        self.models.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.models.values()
    }
}

fn stand_in(name: &str, dimensions: usize, encoder: &Arc<Encoder>) -> Result<Served, LoadError> {
    if encoder.dimensions > dimensions {
        return Err(LoadError::Unsupported(format!(
            "the default encoder has {} dimensions, more than {name}'s {dimensions}",
            encoder.dimensions
        )));
    }
    Ok(Served {
        name: name.to_owned(),
        encoder: Arc::clone(encoder),
        dimensions,
        stand_in: Some(format!(
            "local-ai stand-in: {name} is answered by {} ({} dims, {} pooling), zero-padded to {dimensions}; these are not BGE vectors",
            encoder.label,
            encoder.dimensions,
            encoder.pooling.as_str()
        )),
    })
}
