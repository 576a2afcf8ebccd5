//! Requests and responses of the search routes, shared by the gateway (which validates and
//! forwards them) and search-worker (which serves them).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::classify::{Classification, GrayZone};
use crate::config::{Config, SearchService, TableConfig, MAX_SEARCH_LIMIT};
use crate::error::ApiError;
use crate::filter::Filter;
use crate::guard;
use crate::models::ModelSpec;
use crate::ranking::SearchMode;

/// `POST /api/v1/embeddings/search/{service}`: the records most similar to `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub text: String,
    /// On the table's configured metadata fields, in Vectorize's operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    /// Matches to return; the service's default when absent, at most 100.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_count"
    )]
    pub limit: Option<u32>,
    /// No match scores below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// How matches are found and ordered; `semantic` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SearchMode>,
}

/// `POST /api/v1/embeddings/gray-zone/{service}`: matches split into the confident and those
/// that need review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrayZoneRequest {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_count"
    )]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SearchMode>,
}

/// One match of a search, as the reference page shapes it. `score` is the vector score (the
/// cosine of the query's vector and the record's) in every mode, and what `classification`
/// reads; the rest says where each search placed the match (`shared::ranking`), and is absent
/// where a search did not run or did not find it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub id: String,
    pub score: f32,
    pub classification: Classification,
    pub metadata: Map<String, Value>,
    /// Its place in the vector search's ranking, from 1 (`semantic` and `hybrid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<u32>,
    /// Its BM25 score in the keyword index, higher is better (`keyword` and `hybrid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_score: Option<f32>,
    /// Its place in the keyword search's ranking, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<u32>,
    /// Its reciprocal-rank-fusion score (`hybrid`), what the matches are ordered by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fused_score: Option<f64>,
}

/// The gray-zone answer: `high_confidence` is `score >= max`, `gray_zone` is
/// `min <= score < max`, each best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrayZoneResponse {
    pub high_confidence: Vec<Match>,
    pub gray_zone: Vec<Match>,
}

/// `POST /api/v1/embeddings/query`: the raw vector query, as Vectorize takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRequest {
    pub vector: Vec<f32>,
    #[serde(default = "default_top_k", deserialize_with = "count")]
    pub top_k: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// The embedding table to query; the one table whose model has the vector's dimension
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Return each match's metadata (default true).
    #[serde(default = "yes")]
    pub return_metadata: bool,
}

fn default_top_k() -> u32 {
    5
}

/// A count as JSON Schema's `integer` reads one: `5` and `5.0` alike.
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_u64().or_else(|| {
        let x = number.as_f64()?;
        // Within u32 and without a fraction, the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x)).then_some(x as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number from 0 to 2^32")))
}

fn optional_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    Option::<serde_json::Number>::deserialize(deserializer)?
        .map(|number| count(number).map_err(D::Error::custom))
        .transpose()
}

fn yes() -> bool {
    true
}

/// One match of a vector query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMatch {
    pub id: String,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// The answer to a vector query: its matches, best first, and how many there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    pub count: usize,
    pub matches: Vec<QueryMatch>,
}

impl QueryAnswer {
    pub fn new(matches: Vec<QueryMatch>) -> Self {
        QueryAnswer {
            count: matches.len(),
            matches,
        }
    }
}

/// A search request checked against its service: the table, the limit, the score floor and the
/// filter it resolves to.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub service: &'a SearchService,
    pub table: &'a TableConfig,
    pub limit: u32,
    pub min_score: f32,
    pub filter: Filter,
    pub mode: SearchMode,
}

fn service_and_table<'a>(
    config: &'a Config,
    name: &str,
) -> Result<(&'a SearchService, &'a TableConfig), ApiError> {
    let service = config
        .service(name)
        .ok_or_else(|| ApiError::not_found(format!("no search service `{name}`")))?;
    let table = config
        .table(&service.table)
        .expect("validated config: a service's table exists");
    Ok((service, table))
}

fn limit(limit: Option<u32>, service: &SearchService) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(service.limit);
    if (1..=MAX_SEARCH_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid(format!(
            "`limit` must be 1 to {MAX_SEARCH_LIMIT}"
        )))
    }
}

fn score(value: f32, name: &str) -> Result<f32, ApiError> {
    if value.is_finite() && (-1.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(format!(
            "`{name}` must be a score from -1 to 1"
        )))
    }
}

fn metadata_fields(table: &TableConfig) -> Vec<&str> {
    table
        .embeddings
        .metadata
        .iter()
        .map(String::as_str)
        .collect()
}

impl SearchRequest {
    pub fn plan<'a>(&self, config: &'a Config, service: &str) -> Result<Plan<'a>, ApiError> {
        guard::text("text", &self.text)?;
        let (service, table) = service_and_table(config, service)?;
        Ok(Plan {
            service,
            table,
            limit: limit(self.limit, service)?,
            min_score: self
                .threshold
                .map(|t| score(t, "threshold"))
                .transpose()?
                .unwrap_or(-1.0),
            filter: Filter::parse(self.filters.as_ref(), &metadata_fields(table), "filters")?,
            mode: self.mode.unwrap_or_default(),
        })
    }
}

impl GrayZoneRequest {
    /// The plan, and the zone: the service's bounds unless the request gives its own.
    pub fn plan<'a>(
        &self,
        config: &'a Config,
        service: &str,
    ) -> Result<(Plan<'a>, GrayZone), ApiError> {
        guard::text("text", &self.text)?;
        let (service, table) = service_and_table(config, service)?;
        let zone = GrayZone {
            min: self
                .min
                .map(|v| score(v, "min"))
                .transpose()?
                .unwrap_or(service.gray_zone.min),
            max: self
                .max
                .map(|v| score(v, "max"))
                .transpose()?
                .unwrap_or(service.gray_zone.max),
        };
        // `min` above `max` is a zone with nothing in it: what is kept is at or above `max`.
        let plan = Plan {
            service,
            table,
            limit: limit(self.limit, service)?,
            min_score: zone.min,
            filter: Filter::parse(self.filters.as_ref(), &metadata_fields(table), "filters")?,
            mode: self.mode.unwrap_or_default(),
        };
        Ok((plan, zone))
    }
}

impl QueryRequest {
    /// The table queried and the filter: on its metadata fields and `table`.
    pub fn plan<'a>(&self, config: &'a Config) -> Result<(&'a TableConfig, Filter), ApiError> {
        if self.vector.is_empty() || self.vector.iter().any(|x| !x.is_finite()) {
            return Err(ApiError::invalid(
                "`vector` must be a non-empty array of finite numbers",
            ));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&self.top_k) {
            return Err(ApiError::invalid(format!(
                "`topK` must be 1 to {MAX_SEARCH_LIMIT}"
            )));
        }
        let dims = self.vector.len();
        let table = if let Some(name) = &self.table {
            config
                .table(name)
                .ok_or_else(|| ApiError::not_found(format!("`{name}` is not an embedding table")))?
        } else {
            let mut fitting = config
                .tables
                .iter()
                .filter(|t| t.model().dimensions == dims);
            match (fitting.next(), fitting.next()) {
                (Some(table), None) => table,
                (None, _) => {
                    return Err(ApiError::invalid(format!(
                        "no embedding table has {dims}-dimension vectors"
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid(format!(
                        "several tables have {dims}-dimension vectors: name one in `table`"
                    )))
                }
            }
        };
        let filter = Filter::parse(self.filter.as_ref(), &metadata_fields(table), "filter")?;
        Ok((table, filter))
    }

    /// Refuses a vector of other dimensions than the vectors `table` is searched in now, which
    /// are `model`'s: the configured model's, or during a model change the old one's until the
    /// switch (`crate::sets`).
    pub fn check_dimensions(
        table: &TableConfig,
        model: &ModelSpec,
        dims: usize,
    ) -> Result<(), ApiError> {
        if model.dimensions == dims {
            return Ok(());
        }
        Err(ApiError::invalid(format!(
            "`vector` has {dims} dimensions; `{}` holds {}-dimension vectors",
            table.name, model.dimensions
        )))
    }
}

/// What the gateway sends search-worker: a caller's request and the organization it is scoped
/// to. search-worker trusts the organization: only the gateway can reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scoped<T> {
    pub organization_id: String,
    pub request: T,
}

/// `POST /api/v1/embeddings/embed`: the raw vector of a text, by a search service's model or a
/// named model (the default model when neither is given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    pub model: String,
    pub dimensions: usize,
    pub vector: Vec<f32>,
}

impl EmbedRequest {
    /// Checks the text and resolves the model: 400 for a bad text or an unknown model, 404 for an
    /// unknown service.
    pub fn resolve(&self, config: &Config) -> Result<&'static ModelSpec, ApiError> {
        guard::text("text", &self.text)?;
        crate::enqueue::requested_model(config, self.service.as_deref(), self.model.as_deref())
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
