//! An index's configuration, checked once when the index is created: its name, its dimensions
//! and its distance metric, which never change after ("Create indexes": "The configuration of
//! an index cannot be changed after creation").

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Kind, Result};
use crate::limits::{MAX_DIMENSIONS, MAX_INDEX_NAME_BYTES, MIN_DIMENSIONS};

/// A valid index name: lowercase ASCII letters, digits and dashes, starting with a letter
/// ("Introduction to Vectorize", and cloudflare-docs#11529: uppercase and a leading digit are
/// refused), at most 64 bytes ("limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexName(String);

impl IndexName {
    pub fn parse(name: &str) -> Result<Self> {
        let refuse = |why: &str| {
            Err(Error::new(
                Kind::InvalidIndexName,
                format!("vectorize.index.invalid_name - Index name \"{name}\" {why}"),
            ))
        };
        if name.is_empty() {
            return refuse("is empty");
        }
        if name.len() > MAX_INDEX_NAME_BYTES {
            return refuse(&format!("is longer than {MAX_INDEX_NAME_BYTES} bytes"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return refuse("must start with a lowercase letter");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return refuse("may hold only lowercase letters, digits and dashes");
        }
        Ok(IndexName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Cosine similarity, from -1 to 1; higher is closer.
    Cosine,
    /// L2 distance; lower is closer.
    Euclidean,
    /// The negative dot product; lower is closer ("Create indexes": "A score of -1000 is more
    /// similar than -500").
    DotProduct,
}

/// What an index is built for; the `config` of the REST API's index object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexConfig {
    pub dimensions: usize,
    pub metric: Metric,
}

/// The Workers AI models a preset may name, with what they configure. The REST schema lists two
/// more presets (`OpenAI`'s and Cohere's) whose metric no page states; the stand-in refuses those.
const PRESETS: [(&str, usize); 3] = [
    ("@cf/baai/bge-small-en-v1.5", 384),
    ("@cf/baai/bge-base-en-v1.5", 768),
    ("@cf/baai/bge-large-en-v1.5", 1024),
];

impl IndexConfig {
    /// Parses the `config` of a create request: `{dimensions, metric}` or `{preset}`.
    pub fn parse(config: Option<&Value>) -> Result<Self> {
        let invalid = |why: String| {
            Error::new(
                Kind::InvalidIndexConfig,
                format!("vectorize.index.invalid_config - {why}"),
            )
        };
        let Some(config) = config.filter(|c| !c.is_null()) else {
            return Err(invalid("Config must be provided".into()));
        };
        if let Some(preset) = config.get("preset") {
            let preset = preset.as_str().unwrap_or_default();
            return PRESETS
                .iter()
                .find(|(name, _)| *name == preset)
                .map(|&(_, dimensions)| IndexConfig {
                    dimensions,
                    metric: Metric::Cosine,
                })
                .ok_or_else(|| invalid(format!("unknown preset `{preset}`")));
        }
        let dimensions = config
            .get("dimensions")
            .and_then(Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (MIN_DIMENSIONS..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| {
                invalid(format!(
                    "Dimensions must be in range: [{MIN_DIMENSIONS}, {MAX_DIMENSIONS}]"
                ))
            })?;
        let metric = config
            .get("metric")
            .cloned()
            .and_then(|m| serde_json::from_value(m).ok())
            .ok_or_else(|| {
                invalid("Metric must be one of cosine, euclidean, dot-product".into())
            })?;
        Ok(IndexConfig { dimensions, metric })
    }
}

/// An index as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRecord {
    pub name: String,
    pub description: String,
    pub config: IndexConfig,
    pub created_on: String,
    pub modified_on: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn index_names_follow_the_documented_rules() {
        for good in ["a", "prod-search-index", "idx2", &"a".repeat(64)] {
            assert!(IndexName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Upper",
            "1st",
            "-x",
            "with space",
            "under_score",
            &"a".repeat(65),
        ] {
            assert_eq!(
                IndexName::parse(bad).unwrap_err().kind,
                Kind::InvalidIndexName,
                "{bad}"
            );
        }
    }

    #[test]
    fn config_takes_dimensions_and_metric_or_a_preset() {
        let parsed = IndexConfig::parse(Some(&json!({"dimensions": 32, "metric": "dot-product"})));
        assert_eq!(
            parsed.unwrap(),
            IndexConfig {
                dimensions: 32,
                metric: Metric::DotProduct
            }
        );
        let preset = IndexConfig::parse(Some(&json!({"preset": "@cf/baai/bge-base-en-v1.5"})));
        assert_eq!(preset.unwrap().dimensions, 768);
        for bad in [
            json!({"dimensions": 0, "metric": "cosine"}),
            json!({"dimensions": 1537, "metric": "cosine"}),
            json!({"dimensions": 3, "metric": "manhattan"}),
            json!({"preset": "@cf/unknown"}),
        ] {
            assert_eq!(
                IndexConfig::parse(Some(&bad)).unwrap_err().kind,
                Kind::InvalidIndexConfig
            );
        }
        assert!(IndexConfig::parse(None).is_err());
    }
}
