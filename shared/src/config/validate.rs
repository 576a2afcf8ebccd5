//! Validation of a parsed config: every problem found, each naming its field.

use std::collections::HashSet;
use std::fmt;

use super::{Config, OnUpdate, SearchService, TableConfig, VectorIndex, MAX_SEARCH_LIMIT};
use crate::models;

/// One problem in the config, at one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `table.claims.embeddings.model`, `search.claimSimilarity.thresholds`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid embeddings config:")?;
        for e in &self.0 {
            writeln!(f, "  {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn check_access(access: &crate::access::AccessSpec, at: &str, errors: &mut Errors) {
    for (action, roles) in access.given() {
        let field = format!("{at}.{}", action.as_str());
        if roles.is_empty() {
            errors.push(
                &field,
                "name at least one role, or leave the action out for the default",
            );
        }
        if roles.iter().any(|r| r.trim().is_empty()) {
            errors.push(&field, "a role name is empty");
        }
    }
}

pub(super) fn validate(config: &Config) -> Result<(), ConfigErrors> {
    let mut errors = Errors::default();
    let mut table_names = HashSet::new();
    for table in &config.tables {
        let at = format!("table.{}", table.name);
        if !table_names.insert(table.name.as_str()) {
            errors.push(&at, "table is declared twice");
        }
        check_table(table, &at, &mut errors);
    }
    check_access(&config.access, "access", &mut errors);
    let mut service_names = HashSet::new();
    for service in &config.services {
        let at = format!("search.{}", service.name);
        if !service_names.insert(service.name.as_str()) {
            errors.push(&at, "duplicate search service name");
        }
        check_service(service, config, &at, &mut errors);
    }
    for (i, kept) in config.kept_indexes.iter().enumerate() {
        let at = format!("vectorize[{i}]");
        if !is_identifier(&kept.binding) {
            errors.push(&format!("{at}.binding"), "must be a binding name");
        }
        let Some(model) = models::model(&kept.model) else {
            errors.push(
                &format!("{at}.model"),
                format!("unknown model `{}`", kept.model),
            );
            continue;
        };
        for table in &config.tables {
            let Some(table_model) = models::model(&table.embeddings.model) else {
                continue;
            };
            if table.embeddings.vector_index.vectorize_binding() == Some(kept.binding.as_str())
                && table_model.dimensions != model.dimensions
            {
                errors.push(
                    &format!("{at}.model"),
                    format!(
                        "`{}` holds {} dimensions, but table `{}` keeps {}-dimension vectors there",
                        kept.binding, model.dimensions, table.name, table_model.dimensions
                    ),
                );
            }
        }
    }
    errors.finish()
}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(ConfigError::new(field, message));
    }

    fn finish(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}

/// A name that may stand unquoted in SQL: ASCII letter or `_`, then letters, digits or `_`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// Route segments under `/api/v1/` that a table's CRUD routes must not shadow.
const RESERVED_NAMES: &[&str] = &["embeddings", "health"];

fn check_table(table: &TableConfig, at: &str, errors: &mut Errors) {
    if !is_identifier(&table.name) {
        errors.push(
            &format!("{at}.name"),
            "must be a plain identifier (letters, digits, _)",
        );
    }
    if RESERVED_NAMES.contains(&table.name.as_str()) {
        errors.push(
            &format!("{at}.name"),
            "is taken by the API's own routes under /api/v1/",
        );
    }
    if let Some(access) = &table.access {
        check_access(access, &format!("{at}.access"), errors);
    }
    let mut columns = HashSet::new();
    for column in &table.columns {
        if !is_identifier(column) {
            errors.push(
                &format!("{at}.columns"),
                format!("`{column}` is not a plain identifier"),
            );
        }
        if !columns.insert(column.as_str()) {
            errors.push(
                &format!("{at}.columns"),
                format!("`{column}` is listed twice"),
            );
        }
    }
    let spec = &table.embeddings;
    let key_columns = [
        ("id_column", &table.id_column),
        ("organization_column", &table.organization_column),
        ("embeddings.embedding_column", &spec.embedding_column),
    ];
    for (key, column) in key_columns {
        if !columns.contains(column.as_str()) {
            errors.push(
                &format!("{at}.{key}"),
                format!("`{column}` is not in columns"),
            );
        }
    }
    for column in &table.writable {
        let field = format!("{at}.writable");
        if !columns.contains(column.as_str()) {
            errors.push(&field, format!("`{column}` is not in columns"));
        } else if key_columns.iter().any(|(_, c)| *c == column) {
            errors.push(
                &field,
                format!("`{column}` is set by the product, not by callers"),
            );
        }
    }
    for (key, list) in [("required", &table.required), ("not_null", &table.not_null)] {
        for column in list {
            if !table.is_writable(column) {
                errors.push(
                    &format!("{at}.{key}"),
                    format!("`{column}` is not in writable"),
                );
            }
        }
    }
    check_embeddings(table, &columns, &format!("{at}.embeddings"), errors);
}

fn check_embeddings(table: &TableConfig, columns: &HashSet<&str>, at: &str, errors: &mut Errors) {
    let spec = &table.embeddings;
    if spec.fields.is_empty() {
        errors.push(
            &format!("{at}.fields"),
            "must name at least one column to embed",
        );
    }
    for field in &spec.fields {
        if !columns.contains(field.as_str()) {
            errors.push(
                &format!("{at}.fields"),
                format!("`{field}` is not in columns"),
            );
        } else if *field == spec.embedding_column {
            errors.push(
                &format!("{at}.fields"),
                "the embedding column cannot be embedded",
            );
        } else if ["rank", "rowid"].contains(&field.to_ascii_lowercase().as_str()) {
            // They name FTS5's own columns in the keyword index (`shared::keywords`).
            errors.push(
                &format!("{at}.fields"),
                format!("`{field}` cannot be embedded: the keyword index reserves the name"),
            );
        }
    }
    if models::model(&spec.model).is_none() {
        let known: Vec<_> = models::MODELS.iter().map(|m| m.name).collect();
        errors.push(
            &format!("{at}.model"),
            format!(
                "unknown model `{}` (known: {})",
                spec.model,
                known.join(", ")
            ),
        );
    }
    if let OnUpdate::Watched(watched) = &spec.on_update {
        for field in watched {
            if !spec.fields.contains(field) {
                errors.push(
                    &format!("{at}.on_update"),
                    format!("watched field `{field}` is not in fields"),
                );
            }
        }
    }
    for field in &spec.metadata {
        if !columns.contains(field.as_str()) {
            errors.push(
                &format!("{at}.metadata"),
                format!("metadata field `{field}` is not a column"),
            );
        } else if *field == spec.embedding_column {
            errors.push(
                &format!("{at}.metadata"),
                "the embedding column cannot be metadata",
            );
        }
    }
    for (field, max) in &spec.metadata_max_bytes {
        if !spec.metadata.contains(field) {
            errors.push(
                &format!("{at}.metadata_max_bytes.{field}"),
                format!("`{field}` is not a metadata field"),
            );
        } else if *max < 8 {
            errors.push(
                &format!("{at}.metadata_max_bytes.{field}"),
                "a bound under 8 bytes leaves no room for a value",
            );
        }
    }
    let worst = crate::metadata::worst_case_bytes(table);
    if worst > crate::metadata::VECTORIZE_METADATA_BYTES {
        errors.push(
            &format!("{at}.metadata_max_bytes"),
            format!(
                "the metadata fields' bounds add up to {worst} bytes with what every vector \
                 carries, over Vectorize's {} per vector: lower them",
                crate::metadata::VECTORIZE_METADATA_BYTES
            ),
        );
    }
    if let VectorIndex::Vectorize { binding } = &spec.vector_index {
        if !is_identifier(binding) {
            errors.push(
                &format!("{at}.vector_index.binding"),
                "must be a binding name",
            );
        }
    }
}

/// The largest `rrf_k` a service may name: past it every rank weighs about the same.
const MAX_RRF_K: u32 = 10_000;

fn check_service(service: &SearchService, config: &Config, at: &str, errors: &mut Errors) {
    if service.name.is_empty()
        || !service
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.push(&format!("{at}.name"), "must be letters, digits, `_` or `-`");
    }
    if config.table(&service.table).is_none() {
        errors.push(
            &format!("{at}.table"),
            format!("`{}` is not an embedding table", service.table),
        );
    }
    if service.limit == 0 || service.limit > MAX_SEARCH_LIMIT {
        errors.push(
            &format!("{at}.limit"),
            format!("must be 1 to {MAX_SEARCH_LIMIT}"),
        );
    }
    if service.rrf_k == 0 || service.rrf_k > MAX_RRF_K {
        errors.push(&format!("{at}.rrf_k"), format!("must be 1 to {MAX_RRF_K}"));
    }
    let t = &service.thresholds;
    let in_range = |x: f32| (-1.0..=1.0).contains(&x);
    if ![t.duplicate, t.confirms, t.related]
        .into_iter()
        .all(in_range)
    {
        errors.push(
            &format!("{at}.thresholds"),
            "scores are cosines: each must be within -1..1",
        );
    } else if !(t.duplicate >= t.confirms && t.confirms >= t.related) {
        errors.push(
            &format!("{at}.thresholds"),
            "out of order: need duplicate >= confirms >= related",
        );
    }
    let g = &service.gray_zone;
    if !(in_range(g.min) && in_range(g.max)) {
        errors.push(&format!("{at}.gray_zone"), "bounds must be within -1..1");
    } else if g.min >= g.max {
        errors.push(&format!("{at}.gray_zone"), "min must be below max");
    }
}
