//! Requests and responses of the search routes, shared by the gateway (which validates and
//! forwards them) and search-worker (which serves them).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ApiError;
use crate::guard;
use crate::models::{self, ModelSpec};

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
