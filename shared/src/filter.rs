//! Metadata filters, in Vectorize's language, checked against the configured metadata fields.
//!
//! `{"story_id": "s1"}` is `{"story_id": {"$eq": "s1"}}`; an object of operators on one field
//! must all hold, and all fields must hold. Operators: `$eq $ne $in $nin $lt $lte $gt $gte`, on
//! strings, numbers and booleans (`$lt`… compare numbers with numbers and strings with strings).
//! A field a record does not have (or has as null) matches no operator, `$ne` and `$nin` included,
//! as in Vectorize, so that a filter finds the same records on either backend. The organization is never a
//! filter: the worker applies it before any filter, whatever the filter says.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Lt(Value),
    Lte(Value),
    Gt(Value),
    Gte(Value),
}

/// A parsed, checked filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    conditions: Vec<(String, Op)>,
    /// The filter as given, for Vectorize.
    raw: Map<String, Value>,
}

impl Filter {
    /// Parses `value` (an object, or null for no filter), allowing only `fields`.
    pub fn parse(value: Option<&Value>, fields: &[&str], at: &str) -> Result<Self, ApiError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Filter::default());
        };
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::invalid(format!("`{at}` must be an object of fields")))?;
        let mut conditions = Vec::new();
        for (field, condition) in object {
            if !fields.contains(&field.as_str()) {
                return Err(ApiError::invalid(format!(
                    "`{at}.{field}` is not a filterable field (filterable: {})",
                    fields.join(", ")
                )));
            }
            match condition {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(ApiError::invalid(format!("`{at}.{field}` has no operator")));
                    }
                    combinable(ops, &format!("{at}.{field}"))?;
                    for (name, operand) in ops {
                        conditions
                            .push((field.clone(), op(name, operand, &format!("{at}.{field}"))?));
                    }
                }
                scalar => conditions.push((
                    field.clone(),
                    Op::Eq(check_scalar(scalar, &format!("{at}.{field}"))?),
                )),
            }
        }
        let size = value.to_string().len();
        if size >= MAX_FILTER_JSON_BYTES {
            return Err(ApiError::invalid(format!(
                "`{at}` is {size} bytes as JSON; Vectorize takes under {MAX_FILTER_JSON_BYTES}"
            )));
        }
        Ok(Filter {
            conditions,
            raw: object.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// The filter as Vectorize takes it.
    pub fn to_json(&self) -> Value {
        Value::Object(self.raw.clone())
    }

    /// Whether a vector's metadata passes.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.conditions.iter().all(|(field, op)| {
            let value = metadata.get(field).filter(|v| !v.is_null());
            match (op, value) {
                (_, None) => false,
                (Op::Eq(x), Some(v)) => v == x,
                (Op::Ne(x), Some(v)) => v != x,
                (Op::In(xs), Some(v)) => xs.contains(v),
                (Op::Nin(xs), Some(v)) => !xs.contains(v),
                (Op::Lt(x), Some(v)) => compare(v, x) == Some(Ordering::Less),
                (Op::Lte(x), Some(v)) => {
                    matches!(compare(v, x), Some(Ordering::Less | Ordering::Equal))
                }
                (Op::Gt(x), Some(v)) => compare(v, x) == Some(Ordering::Greater),
                (Op::Gte(x), Some(v)) => {
                    matches!(compare(v, x), Some(Ordering::Greater | Ordering::Equal))
                }
            }
        })
    }
}

/// Vectorize's bound on a filter: its compact JSON is under this many bytes. Every table is held
/// to it, so that a filter means the same whatever the backend.
pub const MAX_FILTER_JSON_BYTES: usize = 2048;

/// Vectorize's rule for several operators on one field: only a range, of at most one lower
/// bound (`$gt`, `$gte`) and one upper bound (`$lt`, `$lte`).
fn combinable(ops: &Map<String, Value>, at: &str) -> Result<(), ApiError> {
    if ops.len() < 2 {
        return Ok(());
    }
    let count = |names: &[&str]| ops.keys().filter(|k| names.contains(&k.as_str())).count();
    let (lower, upper) = (count(&["$gt", "$gte"]), count(&["$lt", "$lte"]));
    if lower + upper == ops.len() && lower <= 1 && upper <= 1 {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "`{at}`: operators combine only as a range, one of `$gt`/`$gte` with one of `$lt`/`$lte`"
    )))
}

fn check_scalar(value: &Value, at: &str) -> Result<Value, ApiError> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(value.clone()),
        _ => Err(ApiError::invalid(format!(
            "`{at}` must be a string, number or boolean"
        ))),
    }
}

fn op(name: &str, operand: &Value, at: &str) -> Result<Op, ApiError> {
    let list = || -> Result<Vec<Value>, ApiError> {
        let items = operand
            .as_array()
            .ok_or_else(|| ApiError::invalid(format!("`{at}.{name}` must be an array")))?;
        items
            .iter()
            .map(|v| check_scalar(v, &format!("{at}.{name}")))
            .collect()
    };
    let ordered = || -> Result<Value, ApiError> {
        match operand {
            Value::String(_) | Value::Number(_) => Ok(operand.clone()),
            _ => Err(ApiError::invalid(format!(
                "`{at}.{name}` must be a string or number"
            ))),
        }
    };
    Ok(match name {
        "$eq" => Op::Eq(check_scalar(operand, &format!("{at}.{name}"))?),
        "$ne" => Op::Ne(check_scalar(operand, &format!("{at}.{name}"))?),
        "$in" => Op::In(list()?),
        "$nin" => Op::Nin(list()?),
        "$lt" => Op::Lt(ordered()?),
        "$lte" => Op::Lte(ordered()?),
        "$gt" => Op::Gt(ordered()?),
        "$gte" => Op::Gte(ordered()?),
        other => {
            return Err(ApiError::invalid(format!(
                "`{at}`: unknown operator `{other}` (use $eq $ne $in $nin $lt $lte $gt $gte)"
            )))
        }
    })
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[&str] = &["story_id", "year", "published"];

    fn parse(value: &Value) -> Result<Filter, ApiError> {
        Filter::parse(Some(value), FIELDS, "filters")
    }

    fn meta(value: &Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn each_operator_means_what_vectorize_says() {
        let m = meta(&json!({"story_id": "s1", "year": 2024, "published": true}));
        let holds = |f: Value| parse(&f).unwrap().matches(&m);
        assert!(holds(json!({"story_id": "s1"})));
        assert!(!holds(json!({"story_id": "s2"})));
        assert!(holds(json!({"story_id": {"$ne": "s2"}})));
        assert!(holds(json!({"story_id": {"$in": ["s0", "s1"]}})));
        assert!(!holds(json!({"story_id": {"$nin": ["s0", "s1"]}})));
        assert!(holds(json!({"year": {"$gte": 2024, "$lt": 2025}})));
        assert!(holds(json!({"year": {"$lte": 2024, "$gt": 2000}})));
        assert!(!holds(json!({"year": {"$gt": 2024}})));
        assert!(holds(json!({"year": {"$lte": 2024}})));
        assert!(holds(json!({"story_id": {"$gt": "s0"}})));
        assert!(
            !holds(json!({"year": {"$gt": "2000"}})),
            "a number is not compared with a string"
        );
        assert!(holds(json!({"published": true, "story_id": "s1"})));
        assert!(
            !holds(json!({"published": true, "story_id": "s9"})),
            "every field must hold"
        );
        // A missing field matches no operator, the negative ones included (as in Vectorize).
        let bare = meta(&json!({}));
        for negative in [
            json!({"story_id": {"$ne": "s1"}}),
            json!({"story_id": {"$nin": ["s1"]}}),
        ] {
            assert!(!parse(&negative).unwrap().matches(&bare), "{negative}");
            assert!(!parse(&negative)
                .unwrap()
                .matches(&meta(&json!({"story_id": null}))));
        }
        assert!(!parse(&json!({"story_id": {"$in": ["s1"]}}))
            .unwrap()
            .matches(&bare));
        assert!(Filter::parse(None, FIELDS, "filters")
            .unwrap()
            .matches(&bare));
        // What Vectorize is sent is the filter as given.
        let given = json!({"story_id": {"$in": ["s1"]}, "year": 2024});
        assert_eq!(parse(&given).unwrap().to_json(), given);
    }

    #[test]
    fn unknown_fields_and_operators_and_bad_operands_are_refused_by_name() {
        for (filter, needle) in [
            (
                json!({"organization_id": "org_b"}),
                "`filters.organization_id`",
            ),
            (json!({"story_id": {"$regex": "s"}}), "$regex"),
            (json!({"story_id": {"$in": "s1"}}), "must be an array"),
            (
                json!({"story_id": {"$in": [["x"]]}}),
                "string, number or boolean",
            ),
            (json!({"year": {"$lt": true}}), "string or number"),
            (json!({"story_id": {}}), "no operator"),
            (json!({"year": {"$eq": 1, "$gt": 0}}), "only as a range"),
            (json!({"year": {"$gt": 1, "$gte": 0}}), "only as a range"),
            (json!({"year": {"$lt": 1, "$lte": 0}}), "only as a range"),
            (
                json!({"year": {"$in": [1], "$nin": [2]}}),
                "only as a range",
            ),
            (
                json!({"year": {"$gt": 0, "$lt": 9, "$lte": 8}}),
                "only as a range",
            ),
            (
                json!({"story_id": {"$in": vec!["x".repeat(100); 20]}}),
                "Vectorize takes under 2048",
            ),
            (json!(["story_id"]), "object of fields"),
        ] {
            let err = parse(&filter).unwrap_err();
            assert!(err.message.contains(needle), "{filter}: {}", err.message);
        }
    }
}
