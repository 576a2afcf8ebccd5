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

/// Longest text, in characters, that is sent to a model. Every model here reads at most 512
/// tokens, and 512 `WordPiece` tokens of English run to about 2,000 to 2,500 characters, so a text
/// cut here loses nothing the model would have read; the model truncates whatever is still over
/// 512 tokens (Workers AI and local-ai alike). Cutting first bounds what the queue carries to
/// the AI call and tells the job, which records `truncated`, that the tail was not embedded.
pub const MAX_INPUT_CHARS: usize = 2_048;

/// The text a model is given for `content`, and whether it was cut: at most
/// [`MAX_INPUT_CHARS`] characters, ending at the last whitespace of the final 64 characters
/// when there is one, so that no word is split.
pub fn truncate(content: &str) -> (&str, bool) {
    let Some((cut, _)) = content.char_indices().nth(MAX_INPUT_CHARS) else {
        return (content, false);
    };
    let head = &content[..cut];
    let word_end = head
        .char_indices()
        .rev()
        .take(64)
        .find(|(_, c)| c.is_whitespace())
        .map_or(cut, |(i, _)| i);
    (head[..word_end].trim_end(), true)
}

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
    fn long_text_is_cut_at_a_word_boundary_within_the_limit() {
        assert_eq!(truncate("short text"), ("short text", false));
        let exact = "a".repeat(MAX_INPUT_CHARS);
        assert_eq!(truncate(&exact), (exact.as_str(), false));

        let words = "word ".repeat(1_000);
        let (cut, truncated) = truncate(&words);
        assert!(truncated);
        assert!(cut.chars().count() <= MAX_INPUT_CHARS);
        assert!(cut.chars().count() > MAX_INPUT_CHARS - 64);
        assert!(cut.ends_with("word"), "no word is split");

        // No whitespace near the end: cut at the limit, on a character boundary.
        let kana = "\u{3042}".repeat(MAX_INPUT_CHARS + 10);
        let (cut, truncated) = truncate(&kana);
        assert!(truncated);
        assert_eq!(cut.chars().count(), MAX_INPUT_CHARS);
    }

    #[test]
    fn poolings_are_named_as_local_ai_takes_them() {
        assert_eq!(
            (Pooling::Cls.as_str(), Pooling::Mean.as_str()),
            ("cls", "mean")
        );
        for pooling in [Pooling::Cls, Pooling::Mean] {
            assert_eq!(serde_json::to_value(pooling).unwrap(), pooling.as_str());
        }
    }

    #[test]
    fn default_is_bge_base() {
        assert_eq!(default_model().dimensions, 768);
        assert!(model("@cf/baai/bge-huge").is_none());
    }
}
