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
use crate::models::{self, ModelSpec};

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
}

/// One match of a search, as the reference page shapes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub id: String,
    pub score: f32,
    pub classification: Classification,
    pub metadata: Map<String, Value>,
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
        match (&self.service, &self.model) {
            (Some(_), Some(_)) => Err(ApiError::invalid("give `service` or `model`, not both")),
            (Some(service), None) => {
                let service = config
                    .service(service)
                    .ok_or_else(|| ApiError::not_found(format!("no search service `{service}`")))?;
                let table = config
                    .table(&service.table)
                    .expect("validated config: a service's table exists");
                Ok(table.model())
            }
            (None, Some(model)) => guard::model(model),
            (None, None) => Ok(models::default_model()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn config() -> Config {
        Config::parse(include_str!("../../embeddings.toml")).unwrap()
    }

    fn request(service: Option<&str>, model: Option<&str>) -> EmbedRequest {
        EmbedRequest {
            text: "hello".into(),
            service: service.map(Into::into),
            model: model.map(Into::into),
        }
    }

    #[test]
    fn counts_are_whole_numbers_written_either_way() {
        let search = |v: serde_json::Value| serde_json::from_value::<SearchRequest>(v);
        for (limit, expected) in [
            (serde_json::json!(5), Some(5)),
            (serde_json::json!(5.0), Some(5)),
            (serde_json::json!(null), None),
        ] {
            let request = search(serde_json::json!({"text": "x", "limit": limit})).unwrap();
            assert_eq!(request.limit, expected, "{limit}");
        }
        for bad in [
            serde_json::json!(5.5),
            serde_json::json!(-1),
            serde_json::json!(4.3e9),
            serde_json::json!("5"),
        ] {
            assert!(
                search(serde_json::json!({"text": "x", "limit": bad})).is_err(),
                "{bad}"
            );
        }
        let query: QueryRequest =
            serde_json::from_value(serde_json::json!({"vector": [1.0], "topK": 7.0})).unwrap();
        assert_eq!(query.top_k, 7);
        let query: QueryRequest =
            serde_json::from_value(serde_json::json!({"vector": [1.0]})).unwrap();
        assert_eq!(query.top_k, 5, "the default");
        assert!(query.return_metadata, "metadata by default");
        assert!(serde_json::from_value::<QueryRequest>(
            serde_json::json!({"vector": [1.0], "topK": null})
        )
        .is_err());
    }

    #[test]
    fn the_model_comes_from_the_service_the_request_or_the_default() {
        let config = config();
        assert_eq!(
            request(Some("claimSimilarity"), None)
                .resolve(&config)
                .unwrap()
                .dimensions,
            768
        );
        let small = request(None, Some("@cf/baai/bge-small-en-v1.5"));
        assert_eq!(small.resolve(&config).unwrap().dimensions, 384);
        assert_eq!(
            request(None, None).resolve(&config).unwrap().name,
            models::DEFAULT_MODEL
        );
    }

    #[test]
    fn search_plans_take_the_services_defaults_and_check_the_rest() {
        let config = config();
        let request =
            |v: serde_json::Value| -> SearchRequest { serde_json::from_value(v).unwrap() };
        let plan = request(serde_json::json!({"text": "x"}))
            .plan(&config, "claimSimilarity")
            .unwrap();
        assert_eq!((plan.limit, plan.table.name.as_str()), (5, "claims"));
        assert!(plan.filter.is_empty());
        assert!(
            (plan.min_score - -1.0).abs() < f32::EPSILON,
            "no threshold: every score counts"
        );
        let plan = request(serde_json::json!({"text": "x", "limit": 7, "threshold": 0.7, "filters": {"story_id": "s1"}}))
            .plan(&config, "claimSimilarity")
            .unwrap();
        assert!((plan.limit, plan.min_score) == (7, 0.7) && !plan.filter.is_empty());
        for (body, status) in [
            (serde_json::json!({"text": "x", "limit": 0}), 400),
            (serde_json::json!({"text": "x", "limit": 101}), 400),
            (serde_json::json!({"text": "x", "threshold": 2.0}), 400),
            (
                serde_json::json!({"text": "x", "filters": {"organization_id": "org_b"}}),
                400,
            ),
            (serde_json::json!({"text": " "}), 400),
        ] {
            assert_eq!(
                request(body.clone())
                    .plan(&config, "claimSimilarity")
                    .unwrap_err()
                    .status(),
                status,
                "{body}"
            );
        }
        assert_eq!(
            request(serde_json::json!({"text": "x"}))
                .plan(&config, "nope")
                .unwrap_err()
                .status(),
            404
        );

        let zone: GrayZoneRequest =
            serde_json::from_value(serde_json::json!({"text": "x", "max": 0.9})).unwrap();
        let (_, bounds) = zone.plan(&config, "claimSimilarity").unwrap();
        assert_eq!((bounds.min, bounds.max), (0.60, 0.9));
        let upside_down: GrayZoneRequest =
            serde_json::from_value(serde_json::json!({"text": "x", "min": 0.9, "max": 0.5}))
                .unwrap();
        let (plan, zone) = upside_down.plan(&config, "claimSimilarity").unwrap();
        assert!(
            (plan.min_score - 0.9).abs() < f32::EPSILON,
            "nothing below `min` is kept"
        );
        let scores = vec![0.95_f32, 0.7, 0.4];
        assert_eq!(
            zone.split(scores, |s| *s),
            (vec![0.95], vec![]),
            "and the zone is empty"
        );
    }

    #[test]
    fn a_query_finds_its_table_by_dimension() {
        let config = config();
        let query = |v: serde_json::Value| -> QueryRequest { serde_json::from_value(v).unwrap() };
        let (table, _) = query(serde_json::json!({"vector": vec![0.1; 768], "table": "evidence"}))
            .plan(&config)
            .unwrap();
        assert_eq!(table.name, "evidence");
        // claims and evidence both hold 768 dimensions: the caller must say which.
        let ambiguous = query(serde_json::json!({"vector": vec![0.1; 768]})).plan(&config);
        assert!(ambiguous
            .unwrap_err()
            .message
            .contains("name one in `table`"));
        let (table, _) =
            query(serde_json::json!({"vector": vec![0.1; 384], "filter": {"topic": "x"}}))
                .plan(&config)
                .unwrap();
        assert_eq!(table.name, "notes");
        // A named table takes the vector here; its dimensions are checked against the set the
        // table is searched in now.
        let (claims, _) = query(serde_json::json!({"vector": vec![0.1; 384], "table": "claims"}))
            .plan(&config)
            .unwrap();
        let refused = QueryRequest::check_dimensions(claims, claims.model(), 384).unwrap_err();
        assert_eq!(refused.status(), 400);
        assert!(
            refused.message.contains("768-dimension"),
            "{}",
            refused.message
        );
        let small = models::model("@cf/baai/bge-small-en-v1.5").unwrap();
        assert!(QueryRequest::check_dimensions(claims, small, 384).is_ok());
        for body in [
            serde_json::json!({"vector": vec![0.1; 1024]}),
            serde_json::json!({"vector": []}),
            serde_json::json!({"vector": vec![0.1; 768], "topK": 0}),
            serde_json::json!({"vector": vec![0.1; 768], "filter": {"secret": 1}}),
        ] {
            assert_eq!(query(body).plan(&config).unwrap_err().status(), 400);
        }
        assert_eq!(
            query(serde_json::json!({"vector": [0.1], "table": "nope"}))
                .plan(&config)
                .unwrap_err()
                .status(),
            404
        );
        // Empty or not finite (an f32 overflows past 3.4e38) is refused as such, whatever the
        // dimension.
        let refused = |vector: Vec<f32>| {
            let request = QueryRequest {
                vector,
                top_k: 5,
                filter: None,
                table: None,
                return_metadata: true,
            };
            request.plan(&config).unwrap_err().message
        };
        let message = "`vector` must be a non-empty array of finite numbers";
        assert_eq!(refused(Vec::new()), message);
        assert_eq!(refused(vec![f32::INFINITY; 384]), message);
        assert!(query(serde_json::json!({"vector": vec![1e39; 384]})).vector[0].is_infinite());
    }

    #[test]
    fn bad_requests_are_refused() {
        let config = config();
        let code = |r: EmbedRequest| r.resolve(&config).unwrap_err().code;
        assert_eq!(code(request(Some("nope"), None)), ErrorCode::NotFound);
        assert_eq!(code(request(None, Some("@cf/x"))), ErrorCode::UnknownModel);
        assert_eq!(
            code(request(
                Some("claimSimilarity"),
                Some(models::DEFAULT_MODEL)
            )),
            ErrorCode::InvalidRequest
        );
        let blank = EmbedRequest {
            text: " ".into(),
            service: None,
            model: None,
        };
        assert!(blank
            .resolve(&config)
            .unwrap_err()
            .message
            .contains("`text`"));
    }
}
