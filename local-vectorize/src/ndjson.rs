//! The body of an insert or upsert: NDJSON, one vector a line ("Insert vectors": each vector
//! complete and on its own line, not in an array), sent raw (`application/x-ndjson`, as the
//! `cloudflare` SDK and the Workers binding send it) or as the `vectors` file of a
//! multipart/form-data body (as `wrangler vectorize insert` sends it).

use crate::error::{Error, Kind, Result};
use crate::multipart;
use crate::vector::{NewVector, RawVector};

/// What to do with a line that does not parse: the `unparsable-behavior` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unparsable {
    #[default]
    Error,
    Discard,
}

impl Unparsable {
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("error") => Ok(Unparsable::Error),
            Some("discard") => Ok(Unparsable::Discard),
            Some(other) => Err(Error::new(
                Kind::UnparsableBody,
                format!("unparsable-behavior must be `error` or `discard`, not `{other}`"),
            )),
        }
    }
}

/// The NDJSON text of a body, taken out of its multipart envelope when it has one.
pub fn ndjson_of<'a>(body: &'a [u8], content_type: Option<&str>) -> Result<&'a [u8]> {
    match content_type.and_then(multipart::boundary) {
        Some(boundary) => multipart::file(body, &boundary, "vectors").ok_or_else(|| {
            Error::new(
                Kind::UnparsableVectors,
                "the multipart body has no `vectors` part",
            )
        }),
        None => Ok(body),
    }
}

/// Parses and checks every vector of an NDJSON text for an index of `dimensions`. `operation`
/// names the write in messages (`insert` or `upsert`).
pub fn parse_vectors(
    ndjson: &[u8],
    dimensions: usize,
    unparsable: Unparsable,
    operation: &str,
) -> Result<Vec<NewVector>> {
    let text = std::str::from_utf8(ndjson).map_err(|e| {
        Error::new(
            Kind::UnparsableVectors,
            format!("failed to parse {operation} vectors request: not UTF-8: {e}"),
        )
    })?;
    let mut vectors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<RawVector>(line) {
            Ok(raw) => vectors.push(NewVector::parse(raw, dimensions)?),
            Err(_) if unparsable == Unparsable::Discard => {}
            Err(e) => {
                return Err(Error::new(
                    Kind::UnparsableVectors,
                    format!(
                        "failed to parse {operation} vectors request in json format: line {}: {e}",
                        n + 1
                    ),
                ))
            }
        }
    }
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_blank_lines_are_skipped() {
        let body = b"{\"id\":\"a\",\"values\":[1,2]}\n\n{\"id\":\"b\",\"values\":[3,4],\"namespace\":\"n\",\"metadata\":{\"k\":1}}\n";
        let vectors = parse_vectors(body, 2, Unparsable::Error, "upsert").unwrap();
        assert_eq!(vectors.len(), 2);
        assert_eq!(vectors[1].namespace.as_ref().unwrap().as_str(), "n");
    }

    #[test]
    fn an_unparsable_line_is_refused_or_discarded() {
        let body = b"{\"id\":\"a\",\"values\":[1,2]}\nnot json\n{\"id\":\"b\"}\n";
        let err = parse_vectors(body, 2, Unparsable::Error, "insert").unwrap_err();
        assert_eq!(err.kind, Kind::UnparsableVectors);
        assert!(err.message.contains("line 2"), "{}", err.message);
        let kept = parse_vectors(body, 2, Unparsable::Discard, "insert").unwrap();
        assert_eq!(kept.len(), 1);
        // Discarding is for lines that do not parse, not for vectors that break a rule.
        let wrong = b"{\"id\":\"a\",\"values\":[1,2,3]}\n";
        assert!(parse_vectors(wrong, 2, Unparsable::Discard, "insert").is_err());
    }

    #[test]
    fn unparsable_behavior_values() {
        assert_eq!(Unparsable::parse(None).unwrap(), Unparsable::Error);
        assert_eq!(
            Unparsable::parse(Some("discard")).unwrap(),
            Unparsable::Discard
        );
        assert!(Unparsable::parse(Some("ignore")).is_err());
    }
}
