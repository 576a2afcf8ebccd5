//! The enqueue rule: what a request for an embedding job is for, and by which model.
//!
//! Three places take such a request: the gateway's `POST /api/v1/embeddings` (the text in
//! `content`), search-worker's RPC `enqueue` (the text in `text`) and the TypeScript client's
//! `embeddingJob`, with which a custom pipeline makes its own message. The two workers call
//! [`resolve`]; the client is held to it by golden cases that `client-types` renders from it.
//! The rule, checked in this order so that a request with two faults is told the same one
//! everywhere:
//!
//! 1. the text is not blank and at most [`guard::MAX_TEXT_CHARS`] characters;
//! 2. the model is a search service's (`service`), a named one (`model`) or the default, never
//!    both a service and a model; an unknown service is not found, an unknown model refused;
//! 3. `table` and `id` come together, or neither;
//! 4. `table` is an embedding table, or it is not found;
//! 5. the caller's access check runs here, once the table is known (with none for a job bound
//!    to no record);
//! 6. `id` is a record id ([`guard::record_id`]);
//! 7. a record's job is by its table's model: a service or model naming another is refused,
//!    since a table's vectors never mix models.
//!
//! What differs between the workers is transport, not rule. The gateway checks the caller's
//! role at step 5, reads the record (another organization's is not found), writes the job's
//! row before sending it, and stamps the job with the hash of the record's text, so that the
//! consumer drops a job for text the record no longer has ([`crate::freshness`], rule 2).
//! search-worker is reached only by bound Workers, which it trusts with the organization; it
//! sends the job as a custom pipeline would: no row (the consumer creates it on delivery), no
//! record read (a missing record makes the job dead at the consumer, `freshness` rule 1) and so
//! no record hash (only the order of jobs decides what is stale).

use crate::config::{Config, TableConfig};
use crate::error::ApiError;
use crate::guard;
use crate::models::{self, ModelSpec};

/// What an enqueue asks for, whichever transport carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The name the transport gives the text, for messages: `content` or `text`.
    pub text_field: &'static str,
    pub text: &'a str,
    pub service: Option<&'a str>,
    pub model: Option<&'a str>,
    pub table: Option<&'a str>,
    pub id: Option<&'a str>,
}

/// A record named by a request: an embedding table of the config and an id that passed
/// [`guard::record_id`]. Only [`resolve`] makes one, so holding one means both were checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordRef<'a> {
    table: &'a TableConfig,
    id: &'a str,
}

impl<'a> RecordRef<'a> {
    /// The record's table, as configured.
    pub fn table(&self) -> &'a TableConfig {
        self.table
    }

    /// The record's id.
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The table's name and the id, as a job carries them.
    pub fn names(&self) -> (String, String) {
        (self.table.name.clone(), self.id.to_owned())
    }
}

/// What a valid request resolves to: the job's model, and the record it is for, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved<'a> {
    pub model: &'static ModelSpec,
    pub target: Option<RecordRef<'a>>,
}

/// Applies the rule above to `request`. `access` is the caller's own check, given the target's
/// table (`None` for a job bound to no record); a caller that trusts its callers passes
/// [`trusted`].
pub fn resolve<'a, E: From<ApiError>>(
    config: &'a Config,
    request: Request<'a>,
    access: impl FnOnce(Option<&'a TableConfig>) -> Result<(), E>,
) -> Result<Resolved<'a>, E> {
    guard::text(request.text_field, request.text)?;
    let requested = requested_model(config, request.service, request.model)?;
    let (name, id) = match (request.table, request.id) {
        (Some(name), Some(id)) => (name, id),
        (None, None) => {
            access(None)?;
            return Ok(Resolved {
                model: requested,
                target: None,
            });
        }
        _ => return Err(ApiError::invalid("give `table` and `id` together, or neither").into()),
    };
    let table = config
        .table(name)
        .ok_or_else(|| ApiError::not_found(format!("`{name}` is not an embedding table")))?;
    access(Some(table))?;
    let id = guard::record_id(id)?;
    let model = table.model();
    let named = request.service.is_some() || request.model.is_some();
    if named && requested.name != model.name {
        return Err(ApiError::invalid(format!(
            "table `{name}` embeds with `{}`; its vectors cannot mix models",
            model.name
        ))
        .into());
    }
    Ok(Resolved {
        model,
        target: Some(RecordRef { table, id }),
    })
}

/// The access check of a caller that trusts whoever reaches it (search-worker, bound only to
/// Workers that checked their own callers): everything is allowed.
pub fn trusted(_table: Option<&TableConfig>) -> Result<(), ApiError> {
    Ok(())
}

/// The model a request names: its search service's, the named one, or the default. An
/// unknown service is not found; an unknown model is `unknown_model`.
pub fn requested_model(
    config: &Config,
    service: Option<&str>,
    model: Option<&str>,
) -> Result<&'static ModelSpec, ApiError> {
    match (service, model) {
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

#[cfg(test)]
#[path = "enqueue_tests.rs"]
mod tests;
