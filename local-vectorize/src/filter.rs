//! Metadata filters, parsed and checked once ("Metadata filtering", Supported operations), then
//! tested against what each vector holds in the metadata indexes.
//!
//! - A filter is a non-empty object whose compact JSON is under 2048 bytes; its keys are `AND`ed
//!   (there is no `$and` or `$or`); a key is a property path (`a.b` is nested), not empty, without
//!   `"`, not starting with `$`, at most 512 characters.
//! - A bare value means `$eq`. `$eq`/`$ne` take a string, number, boolean or null; `$in`/`$nin`
//!   an array of those; `$lt`/`$lte`/`$gt`/`$gte` a string or a number. An upper bound may be
//!   combined with a lower bound under one key; no other combination is allowed.
//! - A vector is tested on its indexed values only: a property it holds no indexed value for
//!   (no metadata index, written before the index existed, or a value of another type) fails
//!   every operator, `$ne` and `$nin` included. Strings compare on their first 64 bytes, the
//!   filter's value cut the same way; ranges compare strings bytewise (lexicographically).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Kind, Result};
use crate::limits::{FILTER_JSON_BYTES, INDEXED_STRING_BYTES};
use crate::metadata::{check_property, truncate_utf8, Indexed, IndexedValues};

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    property: String,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Eq(Scalar),
    Ne(Scalar),
    In(Vec<Scalar>),
    Nin(Vec<Scalar>),
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
struct Bound {
    value: Scalar,
    inclusive: bool,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(Kind::InvalidFilter, message)
}

impl Filter {
    pub fn parse(filter: &Value) -> Result<Self> {
        let Some(object) = filter.as_object().filter(|o| !o.is_empty()) else {
            return Err(invalid("filter must be a non-empty object"));
        };
        let size = serde_json::to_vec(filter).map_or(usize::MAX, |b| b.len());
        if size >= FILTER_JSON_BYTES {
            return Err(invalid(format!(
                "filter too large; its compact JSON must be less than {FILTER_JSON_BYTES} bytes, got {size} bytes"
            )));
        }
        let clauses = object
            .iter()
            .map(|(key, value)| {
                if key.starts_with('$') {
                    return Err(invalid(format!(
                        "`{key}` is not supported: a filter's keys are property names, combined with an implicit AND"
                    )));
                }
                check_property(key).map_err(invalid)?;
                Ok(Clause {
                    property: key.clone(),
                    test: parse_test(key, value)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Filter { clauses })
    }

    /// The property paths the filter tests.
    pub fn properties(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|c| c.property.as_str())
    }

    /// Whether a vector holding `indexed` passes every clause.
    pub fn matches(&self, indexed: &IndexedValues) -> bool {
        self.clauses.iter().all(|clause| {
            indexed
                .get(&clause.property)
                .is_some_and(|value| clause.test.admits(value))
        })
    }
}

fn parse_test(key: &str, value: &Value) -> Result<Test> {
    let Value::Object(operators) = value else {
        return Ok(Test::Eq(scalar(key, "a bare value", value)?));
    };
    if operators.is_empty() {
        return Err(invalid(format!(
            "`{key}`: an operator object may not be empty"
        )));
    }
    if let Some(nested) = operators.keys().find(|k| !k.starts_with('$')) {
        return Err(invalid(format!(
            "`{key}`: `{nested}` is not an operator; address a nested property with a dotted key"
        )));
    }
    if operators.len() == 1 {
        let (op, operand) = operators.iter().next().expect("one operator");
        match op.as_str() {
            "$eq" => return Ok(Test::Eq(scalar(key, op, operand)?)),
            "$ne" => return Ok(Test::Ne(scalar(key, op, operand)?)),
            "$in" => return Ok(Test::In(list(key, op, operand)?)),
            "$nin" => return Ok(Test::Nin(list(key, op, operand)?)),
            _ => {}
        }
    }
    parse_range(key, operators)
}

fn parse_range(key: &str, operators: &Map<String, Value>) -> Result<Test> {
    let (mut lower, mut upper) = (None, None);
    for (op, operand) in operators {
        let (slot, inclusive) = match op.as_str() {
            "$gt" => (&mut lower, false),
            "$gte" => (&mut lower, true),
            "$lt" => (&mut upper, false),
            "$lte" => (&mut upper, true),
            "$eq" | "$ne" | "$in" | "$nin" => {
                return Err(invalid(format!(
                    "`{key}`: `{op}` cannot be combined with other operators; only an upper bound ($lt, $lte) with a lower bound ($gt, $gte)"
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "`{key}`: unsupported operator `{op}`; supported: $eq $ne $in $nin $lt $lte $gt $gte"
                )))
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "`{key}`: two bounds on the same side; only an upper bound ($lt, $lte) with a lower bound ($gt, $gte)"
            )));
        }
        let value = match operand {
            Value::String(_) | Value::Number(_) => scalar(key, op, operand)?,
            _ => {
                return Err(invalid(format!(
                    "`{key}`: `{op}` takes a string or a number"
                )))
            }
        };
        *slot = Some(Bound { value, inclusive });
    }
    Ok(Test::Range { lower, upper })
}

fn scalar(key: &str, op: &str, value: &Value) -> Result<Scalar> {
    match value {
        Value::String(s) => Ok(Scalar::Str(
            truncate_utf8(s, INDEXED_STRING_BYTES).to_owned(),
        )),
        Value::Number(n) => n
            .as_f64()
            .map(Scalar::Num)
            .ok_or_else(|| invalid(format!("`{key}`: {op} number out of range"))),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Null => Ok(Scalar::Null),
        Value::Array(_) | Value::Object(_) => Err(invalid(format!(
            "`{key}`: {op} takes a string, number, boolean or null{}",
            if value.is_array() {
                " (use $in for a list)"
            } else {
                ""
            }
        ))),
    }
}

fn list(key: &str, op: &str, value: &Value) -> Result<Vec<Scalar>> {
    let Value::Array(items) = value else {
        return Err(invalid(format!("`{key}`: {op} takes an array")));
    };
    items.iter().map(|item| scalar(key, op, item)).collect()
}

impl Test {
    fn admits(&self, value: &Indexed) -> bool {
        match self {
            Test::Eq(s) => equal(value, s),
            Test::Ne(s) => !equal(value, s),
            Test::In(list) => list.iter().any(|s| equal(value, s)),
            Test::Nin(list) => !list.iter().any(|s| equal(value, s)),
            Test::Range { lower, upper } => {
                let above = lower.as_ref().is_none_or(|b| {
                    compare(value, &b.value)
                        .is_some_and(|o| o == Ordering::Greater || (b.inclusive && o.is_eq()))
                });
                let below = upper.as_ref().is_none_or(|b| {
                    compare(value, &b.value)
                        .is_some_and(|o| o == Ordering::Less || (b.inclusive && o.is_eq()))
                });
                above && below
            }
        }
    }
}

fn equal(value: &Indexed, scalar: &Scalar) -> bool {
    compare(value, scalar).is_some_and(Ordering::is_eq)
        || matches!((value, scalar), (Indexed::Bool(a), Scalar::Bool(b)) if a == b)
}

/// The order of an indexed value and a filter value of the same type; `None` across types.
fn compare(value: &Indexed, scalar: &Scalar) -> Option<Ordering> {
    match (value, scalar) {
        (Indexed::Str(a), Scalar::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Indexed::Num(a), Scalar::Num(b)) => a.partial_cmp(b),
        _ => None,
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
