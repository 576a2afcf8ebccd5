//! The embedding model catalogue.
//!
//! Workers AI serves each model under its `@cf/...` name. The catalogue is the single source of
//! truth for a model's output dimension: embedder clients check every vector they receive against
//! it, and the config refuses any model that is not listed here.

use serde::Serialize;

/// Workers AI accepts at most this many texts in one embedding call.
pub const MAX_TEXTS_PER_CALL: usize = 100;

/// The model used when neither the request nor the table names one.
pub const DEFAULT_MODEL: &str = "@cf/baai/bge-base-en-v1.5";

/// How token vectors are pooled into one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The vector of the `[CLS]` token: what the BGE models were trained for.
    Cls,
    /// The mean of the token vectors under the attention mask.
    Mean,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
    }
}

/// One embedding model as Workers AI serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelSpec {
    pub name: &'static str,
    pub dimensions: usize,
    pub pooling: Pooling,
    /// Longest input, in tokens, that the model reads; longer input is truncated.
    pub max_tokens: usize,
}

/// Every model the product accepts.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "@cf/baai/bge-small-en-v1.5",
        dimensions: 384,
        pooling: Pooling::Cls,
        max_tokens: 512,
    },
    ModelSpec {
        name: DEFAULT_MODEL,
        dimensions: 768,
        pooling: Pooling::Cls,
        max_tokens: 512,
    },
    ModelSpec {
        name: "@cf/baai/bge-large-en-v1.5",
        dimensions: 1024,
        pooling: Pooling::Cls,
        max_tokens: 512,
    },
];

/// Looks a model up by its Workers AI name.
pub fn model(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|spec| spec.name == name)
}

/// The default model's entry.
pub fn default_model() -> &'static ModelSpec {
    model(DEFAULT_MODEL).expect("the default model is in the catalogue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_three_bge_models_with_their_dimensions() {
        let dims: Vec<(&str, usize)> = MODELS.iter().map(|m| (m.name, m.dimensions)).collect();
        assert_eq!(
            dims,
            vec![
                ("@cf/baai/bge-small-en-v1.5", 384),
                ("@cf/baai/bge-base-en-v1.5", 768),
                ("@cf/baai/bge-large-en-v1.5", 1024),
            ]
        );
    }

    #[test]
    fn default_is_bge_base() {
        assert_eq!(default_model().dimensions, 768);
        assert!(model("@cf/baai/bge-huge").is_none());
    }
}
