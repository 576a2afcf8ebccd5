//! Every refusal: one kind per rule, each with its Cloudflare error code and HTTP status, in one
//! table. Codes below 49000 are Vectorize's own (seen in its answers: `vectorize.index.not_found
//! [code: 3000]`, `VECTOR_QUERY_ERROR (code = 40006)`, ...). Where Vectorize's code for a rule is
//! not known, the stand-in uses one of its own, from 49001 up, so that nobody mistakes it for
//! Vectorize's.

use axum::http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `vectorize.index.not_found`.
    IndexNotFound,
    /// `vectorize.index.duplicate_name`.
    DuplicateIndex,
    /// `vectorize.index.invalid_config`: dimensions, metric or preset.
    InvalidIndexConfig,
    /// An index name outside the rules.
    InvalidIndexName,
    /// A metadata index request outside the rules (the limit of 10, a bad property name).
    InvalidMetadataIndex,
    /// "invalid query vector, expected N dimensions, and got M dimensions".
    InvalidQueryVector,
    /// "too many ids in payload".
    TooManyIds,
    /// "id too long": also an empty id.
    InvalidId,
    /// "invalid vector for id=...": dimensions, or a value no f32 holds.
    InvalidVector,
    /// "failed to parse upsert vectors request": NDJSON that does not parse.
    UnparsableVectors,
    /// `topK` above what the options allow.
    TopKTooLarge,
    /// "Failed to parse the request body as JSON": a body or field of the wrong shape.
    UnparsableBody,
    InvalidNamespace,
    InvalidMetadata,
    InvalidFilter,
    /// More vectors in one write than the caller may send.
    TooManyVectors,
    /// A query option outside the rules other than `topK` too large.
    InvalidQueryOptions,
    /// A request body over the upload limit.
    BodyTooLarge,
    /// No such route (Cloudflare's API code 7000).
    NoRoute,
    /// The stand-in itself failed (its data directory).
    Internal,
}

impl Kind {
    pub fn code(self) -> u32 {
        match self {
            Kind::IndexNotFound => 3000,
            Kind::DuplicateIndex => 3002,
            Kind::InvalidQueryVector => 40006,
            Kind::TooManyIds => 40007,
            Kind::InvalidId => 40008,
            Kind::InvalidVector => 40012,
            Kind::UnparsableVectors => 40023,
            Kind::TopKTooLarge => 40025,
            Kind::UnparsableBody => 40026,
            Kind::NoRoute => 7000,
            // The stand-in's own codes.
            Kind::InvalidNamespace => 49001,
            Kind::InvalidMetadata => 49002,
            Kind::InvalidFilter => 49003,
            Kind::TooManyVectors => 49004,
            Kind::InvalidQueryOptions => 49005,
            Kind::InvalidIndexName => 49010,
            Kind::InvalidIndexConfig => 49011,
            Kind::InvalidMetadataIndex => 49012,
            Kind::BodyTooLarge => 49013,
            Kind::Internal => 49099,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::IndexNotFound | Kind::NoRoute => StatusCode::NOT_FOUND,
            Kind::DuplicateIndex => StatusCode::CONFLICT,
            Kind::TooManyVectors | Kind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A refused request: what rule, and Vectorize's words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn index_not_found(name: &str) -> Self {
        Error::new(
            Kind::IndexNotFound,
            format!("vectorize.index.not_found - Index name \"{name}\""),
        )
    }

    /// A body or field of the wrong shape, in the words Vectorize uses for it.
    pub fn unparsable(detail: impl std::fmt::Display) -> Self {
        Error::new(
            Kind::UnparsableBody,
            format!("Failed to parse the request body as JSON: {detail}"),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::new(Kind::Internal, format!("local-vectorize: {detail}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
