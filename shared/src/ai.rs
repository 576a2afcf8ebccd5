//! The Workers AI text-embedding call, as its REST API speaks it:
//! `POST /client/v4/accounts/{account}/ai/run/{model}` with `{"text": "..."}` or
//! `{"text": [...]}`, answered by the Cloudflare envelope around `{shape, data}`.
//! `local-ai` serves it; the workers' REST client sends it and checks the answer here.

use serde::{Deserialize, Serialize};

use crate::models::{ModelSpec, MAX_TEXTS_PER_CALL};

/// The request body. One text or a list of at most [`MAX_TEXTS_PER_CALL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingRequest {
    pub text: Texts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(text) => vec![text],
            Texts::Many(texts) => texts,
        }
    }
}

/// The embedding result inside the envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResult {
    /// `[number of texts, dimensions]`.
    pub shape: Vec<usize>,
    pub data: Vec<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
}

/// One entry of the envelope's `errors` or `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub code: u32,
    pub message: String,
}

/// The Cloudflare API envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub result: Option<T>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<Notice>,
    #[serde(default)]
    pub messages: Vec<Notice>,
}

impl<T> Envelope<T> {
    pub fn ok(result: T, messages: Vec<Notice>) -> Self {
        Envelope {
            result: Some(result),
            success: true,
            errors: Vec::new(),
            messages,
        }
    }

    pub fn error(code: u32, message: impl Into<String>) -> Self {
        Envelope {
            result: None,
            success: false,
            errors: vec![Notice {
                code,
                message: message.into(),
            }],
            messages: Vec::new(),
        }
    }
}

/// Whether a failed call is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Rate limits, server errors, timeouts, network faults: try again later.
    Transient,
    /// The input or the model was refused: the same call will fail again.
    Permanent,
}

/// Classifies an HTTP status of the Workers AI REST API.
pub fn classify_status(status: u16) -> FailureKind {
    match status {
        408 | 429 | 500..=599 => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

/// Classifies an error thrown by the `AI` binding, which carries the API's error code in its
/// message: 5006 (bad input) and 5007 (no such model) are permanent, the rest transient.
pub fn classify_binding_error(message: &str) -> FailureKind {
    const PERMANENT: [&str; 4] = ["5006", "5007", "Bad input", "No such model"];
    if PERMANENT.iter().any(|marker| message.contains(marker)) {
        FailureKind::Permanent
    } else {
        FailureKind::Transient
    }
}

/// Checks a list of texts before it is sent: 1 to 100, none blank.
pub fn check_texts(texts: &[String]) -> Result<(), String> {
    if texts.is_empty() {
        return Err("`text` must hold at least one text".into());
    }
    if texts.len() > MAX_TEXTS_PER_CALL {
        return Err(format!(
            "`text` holds {} texts; at most {MAX_TEXTS_PER_CALL} are accepted per call",
            texts.len()
        ));
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
        return Err(format!("text {i} is empty"));
    }
    Ok(())
}

/// Checks what came back for `texts` texts against the model's catalogue entry, and returns the
/// vectors in order.
pub fn check_result(
    model: &ModelSpec,
    texts: usize,
    result: EmbeddingResult,
) -> Result<Vec<Vec<f32>>, String> {
    let expected = [texts, model.dimensions];
    if result.shape != expected {
        return Err(format!(
            "{} answered shape {:?}, expected {expected:?}",
            model.name, result.shape
        ));
    }
    if result.data.len() != texts || result.data.iter().any(|v| v.len() != model.dimensions) {
        return Err(format!(
            "{} answered data that does not match its shape {expected:?}",
            model.name
        ));
    }
    if result.data.iter().flatten().any(|x| !x.is_finite()) {
        return Err(format!(
            "{} answered a vector with a non-finite value",
            model.name
        ));
    }
    Ok(result.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;
    use serde_json::json;

    #[test]
    fn request_takes_one_text_or_many() {
        let one: EmbeddingRequest = serde_json::from_value(json!({"text": "hi"})).unwrap();
        assert_eq!(one.text.into_vec(), vec!["hi"]);
        let many: EmbeddingRequest =
            serde_json::from_value(json!({"text": ["a", "b"], "pooling": "cls"})).unwrap();
        assert_eq!(many.pooling.as_deref(), Some("cls"));
        assert_eq!(many.text.into_vec(), vec!["a", "b"]);
        assert!(serde_json::from_value::<EmbeddingRequest>(json!({"text": 3})).is_err());
    }

    #[test]
    fn texts_are_bounded() {
        assert!(check_texts(&["a".into()]).is_ok());
        assert!(check_texts(&[]).is_err());
        assert!(check_texts(&vec!["a".to_string(); 101])
            .unwrap_err()
            .contains("at most 100"));
        assert!(check_texts(&vec!["a".to_string(); 100]).is_ok());
        assert_eq!(
            check_texts(&["a".into(), " ".into()]).unwrap_err(),
            "text 1 is empty"
        );
    }

    #[test]
    fn results_are_checked_against_the_catalogue() {
        let small = models::model("@cf/baai/bge-small-en-v1.5").unwrap();
        let good = EmbeddingResult {
            shape: vec![2, 384],
            data: vec![vec![0.1; 384], vec![0.2; 384]],
            pooling: None,
        };
        assert_eq!(check_result(small, 2, good.clone()).unwrap().len(), 2);
        assert!(check_result(small, 3, good.clone())
            .unwrap_err()
            .contains("expected [3, 384]"));
        let base = models::default_model();
        assert!(check_result(base, 2, good.clone()).is_err());
        let mut ragged = good.clone();
        ragged.data[1].pop();
        assert!(check_result(small, 2, ragged).is_err());
        let mut nan = good;
        nan.data[0][0] = f32::NAN;
        assert!(check_result(small, 2, nan).is_err());
    }

    #[test]
    fn failures_are_classified_for_retry() {
        for status in [408, 429, 500, 502, 503] {
            assert_eq!(classify_status(status), FailureKind::Transient, "{status}");
        }
        for status in [400, 401, 403, 404, 413] {
            assert_eq!(classify_status(status), FailureKind::Permanent, "{status}");
        }
        assert_eq!(
            classify_binding_error("AiError: 5006: Bad input"),
            FailureKind::Permanent
        );
        assert_eq!(
            classify_binding_error("3040: Capacity temporarily exceeded"),
            FailureKind::Transient
        );
    }

    #[test]
    fn envelope_matches_the_cloudflare_shape() {
        let ok = Envelope::ok(
            EmbeddingResult {
                shape: vec![1, 2],
                data: vec![vec![0.5, 0.5]],
                pooling: Some("mean".into()),
            },
            vec![],
        );
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"result": {"shape": [1, 2], "data": [[0.5, 0.5]], "pooling": "mean"}, "success": true, "errors": [], "messages": []})
        );
        let err: Envelope<EmbeddingResult> = Envelope::error(5006, "bad input");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"result": null, "success": false, "errors": [{"code": 5006, "message": "bad input"}], "messages": []})
        );
    }
}
