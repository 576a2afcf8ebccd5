//! The declarative config: which tables carry embeddings and which search services exist.
//!
//! One TOML file (the project's `embeddings.toml`) is embedded in the workers at build time and
//! parsed here. [`Config::parse`] either returns a config in which every name is checked, or
//! every problem found, each naming its field (`table.claims.embeddings.on_update`).
//! Table and column names reach SQL only from a parsed config, so they are held to plain
//! identifiers.

mod validate;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::access::{self, AccessSpec, Action};
use crate::classify::{GrayZone, Thresholds};
use crate::models::{self, ModelSpec};

pub use validate::{ConfigError, ConfigErrors};

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[[table]]`: the embedding tables.
    #[serde(default, rename = "table")]
    pub tables: Vec<TableConfig>,
    /// `[[search]]`: the search services.
    #[serde(default, rename = "search")]
    pub services: Vec<SearchService>,
    /// `[access]`: which roles may do what, project-wide (see [`crate::access`]).
    #[serde(default)]
    pub access: AccessSpec,
    /// `[[vectorize]]`: Vectorize indexes kept bound though no table keeps its vectors there
    /// now. A table whose model or index changed is searched in its old index until its new set
    /// covers it (`crate::sets`), and its old vectors are removed from it after: the old index
    /// must stay bound until the change is done.
    #[serde(default, rename = "vectorize")]
    pub kept_indexes: Vec<KeptIndex>,
}

/// A Vectorize index kept bound: its binding, and the model whose vectors it holds (which gives
/// its dimension).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptIndex {
    pub binding: String,
    pub model: String,
}

/// One table whose records carry embeddings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub name: String,
    /// Every column of the table, as the migration creates it.
    pub columns: Vec<String>,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    /// The tenant column: set by the gateway from the caller's organization, never from a body.
    #[serde(default = "default_organization_column")]
    pub organization_column: String,
    /// Columns a caller may set on create and update.
    #[serde(default)]
    pub writable: Vec<String>,
    /// Writable columns a create must give, and never null: `NOT NULL` without a default in D1.
    #[serde(default)]
    pub required: Vec<String>,
    /// Writable columns that may be left out on create (D1 has a default) but are never null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// `[table.access]`: this table's rules, over the project's.
    #[serde(default)]
    pub access: Option<AccessSpec>,
    pub embeddings: EmbeddingSpec,
}

/// How a table's records are embedded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    /// Columns whose values, joined by `separator`, are the text to embed.
    pub fields: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_model")]
    pub model: String,
    /// Embed a record when it is created.
    #[serde(default = "yes")]
    pub on_insert: bool,
    /// Embed again on update: `true` when any of `fields` changes, `false` never, or a list of
    /// the watched fields.
    #[serde(default)]
    pub on_update: OnUpdate,
    /// The column that receives the embedding as a JSON array.
    #[serde(default = "default_embedding_column")]
    pub embedding_column: String,
    /// Columns copied into the vector's metadata, filterable in searches.
    #[serde(default)]
    pub metadata: Vec<String>,
    /// The most bytes a metadata field's value may take as JSON, per field; a field not named
    /// here is held to `metadata::default_value_bytes` (`shared::metadata`).
    #[serde(default)]
    pub metadata_max_bytes: BTreeMap<String, usize>,
    /// Where the vectors are kept for search.
    #[serde(default)]
    pub vector_index: VectorIndex,
}

/// The `on_update` setting as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OnUpdate {
    Enabled(bool),
    Watched(Vec<String>),
}

impl Default for OnUpdate {
    fn default() -> Self {
        OnUpdate::Enabled(true)
    }
}

/// The vector backend of a table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum VectorIndex {
    /// Vectors in D1, searched exactly: the local default, and right for small tenants.
    #[default]
    D1,
    /// A Vectorize index, reached through the named binding; one index per model dimension.
    Vectorize { binding: String },
}

impl VectorIndex {
    /// Where a vector written for this backend is kept, as `embedding_vectors.location` records
    /// it: `d1`, or `vectorize:` and the binding. A stored vector whose location is not its
    /// table's current one is moved there (from the copy D1 keeps, with no AI call).
    pub fn location(&self) -> String {
        match self {
            VectorIndex::D1 => crate::sets::D1_LOCATION.to_owned(),
            VectorIndex::Vectorize { binding } => format!("vectorize:{binding}"),
        }
    }

    /// The Vectorize binding, for a table kept in Vectorize.
    pub fn vectorize_binding(&self) -> Option<&str> {
        match self {
            VectorIndex::D1 => None,
            VectorIndex::Vectorize { binding } => Some(binding),
        }
    }
}

/// A typed similarity search over one table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchService {
    pub name: String,
    pub table: String,
    /// Matches returned when the request does not say.
    #[serde(default = "default_limit")]
    pub limit: u32,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub gray_zone: GrayZone,
    /// The `k` of hybrid search's reciprocal rank fusion (`shared::fusion`): larger flattens
    /// the weight of the first ranks.
    #[serde(default = "default_rrf_k")]
    pub rrf_k: u32,
}

/// Most matches a search may ask for.
pub const MAX_SEARCH_LIMIT: u32 = 100;

fn default_id_column() -> String {
    "id".into()
}
fn default_organization_column() -> String {
    "organization_id".into()
}
fn default_separator() -> String {
    " ".into()
}
fn default_model() -> String {
    models::DEFAULT_MODEL.into()
}
fn default_embedding_column() -> String {
    "embedding".into()
}
fn default_limit() -> u32 {
    10
}
fn default_rrf_k() -> u32 {
    crate::fusion::DEFAULT_RRF_K
}
fn yes() -> bool {
    true
}

impl Config {
    /// Parses and validates a config file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
        let config: Config = toml::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                "config",
                e.to_string().trim().replace('\n', " "),
            )])
        })?;
        validate::validate(&config)?;
        Ok(config)
    }

    pub fn table(&self, name: &str) -> Option<&TableConfig> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&SearchService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// better-auth's organization roles, then every other role the access rules name, each
    /// once, in order of first mention: the roles an organization's members may hold.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = access::BETTER_AUTH_ROLES.map(String::from).to_vec();
        let specs = std::iter::once(&self.access)
            .chain(self.tables.iter().filter_map(|t| t.access.as_ref()));
        for (_, given) in specs.flat_map(AccessSpec::given) {
            for role in given {
                if !roles.contains(role) {
                    roles.push(role.clone());
                }
            }
        }
        roles
    }

    /// Whether `role` may do `action`, on `table` or project-wide.
    pub fn allows(&self, table: Option<&TableConfig>, role: &str, action: Action) -> bool {
        access::allows(
            &self.access,
            table.and_then(|t| t.access.as_ref()),
            role,
            action,
        )
    }
}

impl TableConfig {
    /// The catalogue entry of the table's model (checked when the config was parsed).
    pub fn model(&self) -> &'static ModelSpec {
        models::model(&self.embeddings.model).expect("validated config names a known model")
    }

    /// Whether a change to `column` must re-embed the record.
    pub fn watches(&self, column: &str) -> bool {
        match &self.embeddings.on_update {
            OnUpdate::Enabled(enabled) => {
                *enabled && self.embeddings.fields.iter().any(|f| f == column)
            }
            OnUpdate::Watched(fields) => fields.iter().any(|f| f == column),
        }
    }

    pub fn is_writable(&self, column: &str) -> bool {
        self.writable.iter().any(|c| c == column)
    }

    /// Whether a caller may set `column` to null (a `required` or `not_null` column may not).
    pub fn is_nullable(&self, column: &str) -> bool {
        !self
            .required
            .iter()
            .chain(&self.not_null)
            .any(|c| c == column)
    }

    /// The columns the consumer reads of a record: its id, the embedded fields and the metadata
    /// fields, each once.
    pub fn embedding_columns(&self) -> Vec<&str> {
        let mut columns = vec![self.id_column.as_str()];
        for column in self
            .embeddings
            .fields
            .iter()
            .chain(&self.embeddings.metadata)
        {
            if !columns.contains(&column.as_str()) {
                columns.push(column);
            }
        }
        columns
    }

    /// The text embedded for a record: its `fields` joined by `separator`, skipping empty and
    /// null ones. Numbers and booleans are written as JSON writes them.
    pub fn embedding_text(&self, record: &serde_json::Map<String, serde_json::Value>) -> String {
        let parts: Vec<String> = self
            .embeddings
            .fields
            .iter()
            .filter_map(|field| match record.get(field)? {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) if s.is_empty() => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect();
        parts.join(&self.embeddings.separator)
    }

    /// Whether a record has anything to embed: its [`TableConfig::embedding_text`] is more than
    /// white space (as `str::trim` knows it). A record without is no record for a model change
    /// to cover (`shared::sets::needs_job`).
    pub fn has_text(&self, record: &serde_json::Map<String, serde_json::Value>) -> bool {
        !self.embedding_text(record).trim().is_empty()
    }

    /// [`TableConfig::has_text`] as an SQL condition on the row `alias` of this table: some
    /// field is more than white space, or, when the separator is not white space, two fields
    /// are joined by it. TRIM is given every character `str::trim` removes, and a field counts
    /// as `embedding_text` counts it (neither null nor empty), so that the two agree on every
    /// value.
    pub fn has_text_sql(&self, alias: &str) -> String {
        let column = |f: &str| format!("CAST({alias}.\"{f}\" AS TEXT)");
        let mut some: Vec<String> = self
            .embeddings
            .fields
            .iter()
            .map(|f| format!("TRIM({}, {WHITE_SPACE_SQL}) != ''", column(f)))
            .collect();
        if !self.embeddings.separator.trim().is_empty() && self.embeddings.fields.len() > 1 {
            let parts: Vec<String> = self
                .embeddings
                .fields
                .iter()
                .map(|f| format!("(COALESCE({}, '') != '')", column(f)))
                .collect();
            some.push(format!("{} >= 2", parts.join(" + ")));
        }
        format!("({})", some.join(" OR "))
    }

    /// An SQL expression for what [`TableConfig::metadata_of`] makes of the row `alias` of this
    /// table: its metadata fields as a JSON object, null ones left out (`json_patch` drops them).
    /// Writers of a vector's metadata take it from the record as it is when they commit, so a
    /// metadata edit racing an embedding job cannot be overwritten by the job's older read.
    /// Names come from the validated config, which holds them to plain identifiers.
    ///
    /// A value over its bound (`shared::metadata`) is left out, so that no vector row ever
    /// carries one, whoever wrote the record.
    pub fn metadata_sql(&self, alias: &str) -> String {
        let pairs: Vec<String> = self
            .embeddings
            .metadata
            .iter()
            .map(|field| {
                let column = format!("{alias}.\"{field}\"");
                format!(
                    "'{field}', CASE WHEN length(CAST(json_quote({column}) AS BLOB)) <= {max} \
                     THEN {column} END",
                    max = self.metadata_max_bytes(field)
                )
            })
            .collect();
        format!("json_patch('{{}}', json_object({}))", pairs.join(", "))
    }

    /// The most bytes `field`'s value may take in a vector's metadata, as JSON.
    pub fn metadata_max_bytes(&self, field: &str) -> usize {
        self.embeddings
            .metadata_max_bytes
            .get(field)
            .copied()
            .unwrap_or_else(|| crate::metadata::default_value_bytes(self))
    }

    /// The configured metadata fields of a record, as a vector's metadata carries them.
    pub fn metadata_of(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Map<String, serde_json::Value> {
        self.embeddings
            .metadata
            .iter()
            .filter_map(|field| {
                let value = record.get(field)?;
                (!value.is_null()).then(|| (field.clone(), value.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

/// The characters `char::is_whitespace` knows (Unicode's `White_Space`), as an SQL string.
const WHITE_SPACE_SQL: &str = "char(9, 10, 11, 12, 13, 32, 133, 160, 5760, 8192, 8193, 8194, \
     8195, 8196, 8197, 8198, 8199, 8200, 8201, 8202, 8232, 8233, 8239, 8287, 12288)";
