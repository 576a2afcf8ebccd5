//! A query request, parsed and checked once: what to search near (a vector, or a stored vector's
//! id) and the options ("Vectorize API", Query vectors).

use serde_json::{Map, Value};

use crate::error::{Error, Kind, Result};
use crate::filter::Filter;
use crate::limits::{DEFAULT_TOP_K, MAX_TOP_K, MAX_TOP_K_WITH_VALUES_OR_METADATA};
use crate::vector::{to_f32, Namespace};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnMetadata {
    None,
    /// The values held in metadata indexes, strings cut to 64 bytes.
    Indexed,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Vector(Vec<f32>),
    /// `queryById`: the stored vector of this id.
    Id(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub target: Target,
    pub top_k: usize,
    pub return_values: bool,
    pub return_metadata: ReturnMetadata,
    pub namespace: Option<Namespace>,
    pub filter: Option<Filter>,
}

/// A field, with JSON `null` read as absent.
fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

impl QueryRequest {
    /// Parses a `query` body: `vector`, or `vectorId` as the binding's `queryById` sends it.
    pub fn parse(body: &Value) -> Result<Self> {
        let body = body
            .as_object()
            .ok_or_else(|| Error::unparsable("expected an object"))?;
        let target = match (field(body, "vector"), field(body, "vectorId")) {
            (Some(vector), None) => Target::Vector(parse_vector(vector)?),
            (None, Some(Value::String(id))) => Target::Id(id.clone()),
            (None, Some(_)) => return Err(Error::unparsable("vectorId: expected a string")),
            (None, None) => return Err(Error::unparsable("missing field `vector`")),
            (Some(_), Some(_)) => {
                return Err(Error::unparsable("give `vector` or `vectorId`, not both"))
            }
        };
        let return_values = match field(body, "returnValues") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::unparsable("returnValues: expected a boolean")),
        };
        let return_metadata = parse_return_metadata(field(body, "returnMetadata"))?;
        let top_k = parse_top_k(
            field(body, "topK"),
            return_values || return_metadata == ReturnMetadata::All,
        )?;
        let namespace = match field(body, "namespace") {
            None => None,
            Some(Value::String(ns)) => Some(Namespace::parse(ns.clone())?),
            Some(_) => return Err(Error::unparsable("namespace: expected a string")),
        };
        let filter = field(body, "filter").map(Filter::parse).transpose()?;
        Ok(QueryRequest {
            target,
            top_k,
            return_values,
            return_metadata,
            namespace,
            filter,
        })
    }
}

fn parse_vector(vector: &Value) -> Result<Vec<f32>> {
    let numbers: Option<Vec<f64>> = vector
        .as_array()
        .and_then(|items| items.iter().map(Value::as_f64).collect());
    let numbers =
        numbers.ok_or_else(|| Error::unparsable("vector: expected an array of numbers"))?;
    to_f32(&numbers).ok_or_else(|| {
        Error::new(
            Kind::InvalidQueryVector,
            "invalid query vector, a value is out of the float32 range",
        )
    })
}

/// `"none"`, `"indexed"` or `"all"`. The binding turns `true` into `"all"` before it sends, and
/// so does the stand-in; it sends `false` as it is, which Vectorize refuses (code 40026, seen
/// in production: "returnMetadata: expected value"), and so does the stand-in.
fn parse_return_metadata(value: Option<&Value>) -> Result<ReturnMetadata> {
    match value {
        None => Ok(ReturnMetadata::None),
        Some(Value::Bool(true)) => Ok(ReturnMetadata::All),
        Some(Value::String(level)) if level == "none" => Ok(ReturnMetadata::None),
        Some(Value::String(level)) if level == "indexed" => Ok(ReturnMetadata::Indexed),
        Some(Value::String(level)) if level == "all" => Ok(ReturnMetadata::All),
        Some(_) => Err(Error::unparsable(
            "returnMetadata: expected value \"none\", \"indexed\" or \"all\"",
        )),
    }
}

/// `topK`: 5 when absent, at most 100, and at most 50 with values or all metadata, in the words
/// of Vectorize's refusal (code 40025).
fn parse_top_k(value: Option<&Value>, heavy: bool) -> Result<usize> {
    let Some(value) = value else {
        return Ok(DEFAULT_TOP_K);
    };
    let top_k = value
        .as_u64()
        .and_then(|k| usize::try_from(k).ok())
        .filter(|&k| k >= 1)
        .ok_or_else(|| {
            Error::new(
                Kind::InvalidQueryOptions,
                format!("topK must be a whole number of at least 1, got {value}"),
            )
        })?;
    if top_k > MAX_TOP_K {
        return Err(Error::new(
            Kind::TopKTooLarge,
            format!("max top K is {MAX_TOP_K}, but got {top_k}"),
        ));
    }
    if heavy && top_k > MAX_TOP_K_WITH_VALUES_OR_METADATA {
        return Err(Error::new(
            Kind::TopKTooLarge,
            format!(
                "with returnValues=true or returnMetadata=all, max top K is {MAX_TOP_K_WITH_VALUES_OR_METADATA}, but got {top_k}; for a top K up to {MAX_TOP_K}, retry with returnValues=false and returnMetadata=indexed"
            ),
        ));
    }
    Ok(top_k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &Value) -> Result<QueryRequest> {
        QueryRequest::parse(body)
    }

    #[test]
    fn defaults() {
        let q = parse(&json!({"vector": [1, 2]})).unwrap();
        assert_eq!(q.top_k, 5);
        assert!(!q.return_values);
        assert_eq!(q.return_metadata, ReturnMetadata::None);
        assert_eq!(q.target, Target::Vector(vec![1.0, 2.0]));
    }

    #[test]
    fn top_k_limits() {
        assert_eq!(
            parse(&json!({"vector": [1], "topK": 100})).unwrap().top_k,
            100
        );
        let err = parse(&json!({"vector": [1], "topK": 101})).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (Kind::TopKTooLarge, "max top K is 100, but got 101")
        );
        for heavy in [
            json!({"returnValues": true}),
            json!({"returnMetadata": "all"}),
            json!({"returnMetadata": true}),
        ] {
            let mut body = heavy.clone();
            body["vector"] = json!([1]);
            body["topK"] = json!(50);
            assert!(parse(&body).is_ok(), "{heavy}");
            body["topK"] = json!(51);
            assert_eq!(
                parse(&body).unwrap_err().kind,
                Kind::TopKTooLarge,
                "{heavy}"
            );
        }
        assert!(parse(&json!({"vector": [1], "topK": 100, "returnMetadata": "indexed"})).is_ok());
        for bad in [json!(0), json!(2.5), json!(-1), json!("5")] {
            let err = parse(&json!({"vector": [1], "topK": bad})).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidQueryOptions, "{bad}");
        }
    }

    #[test]
    fn return_metadata_false_is_refused_as_vectorize_refuses_it() {
        let err = parse(&json!({"vector": [1], "returnMetadata": false})).unwrap_err();
        assert_eq!(err.kind, Kind::UnparsableBody);
        assert!(err.message.starts_with(
            "Failed to parse the request body as JSON: returnMetadata: expected value"
        ));
        assert!(parse(&json!({"vector": [1], "returnMetadata": "everything"})).is_err());
    }

    #[test]
    fn vector_or_vector_id() {
        assert_eq!(
            parse(&json!({"vectorId": "a"})).unwrap().target,
            Target::Id("a".into())
        );
        assert!(parse(&json!({"vectorId": "a", "vector": [1]})).is_err());
        assert!(parse(&json!({"topK": 1})).is_err());
        assert!(parse(&json!({"vector": ["a"]})).is_err());
    }
}
