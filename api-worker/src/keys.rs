//! Organization API keys: `POST /api/v1/api-keys` creates one (the key is shown once),
//! `GET /api/v1/api-keys` lists them without their secrets, `DELETE /api/v1/api-keys/{id}`
//! revokes one. Only a signed-in owner or admin (the `admin` action) manages keys, and a key
//! never gets a role its creator does not hold.

use serde::Deserialize;
use shared::access::Action;
use shared::{api_key, ApiError, ErrorCode};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::{Caller, Principal};
use crate::error::Result;
use crate::ports::{ApiKeyRow, ApiKeys, App, Ports};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    role: Option<String>,
}

fn by_a_user<'a>(app: &App<impl Ports>, caller: &'a Caller) -> Result<&'a str> {
    caller.require(app, None, Action::Admin)?;
    match &caller.principal {
        Principal::User(user_id) => Ok(user_id),
        Principal::ApiKey(_) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "API keys are managed by a signed-in user, not by another key",
        )
        .into()),
    }
}

pub(crate) async fn create(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let user_id = by_a_user(app, caller)?;
    let body: CreateKey = request.json()?;
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::invalid("`name` must be 1 to 100 characters, not all blank").into());
    }
    let role = body.role.unwrap_or_else(|| "member".to_owned());
    if role != "member" && !caller.roles.contains(&role) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "`role` must be `member` or a role you hold ({})",
                caller.roles.join(", ")
            ),
        )
        .into());
    }
    let key = api_key::generate(Uuid::new_v4(), Uuid::new_v4());
    let row = ApiKeyRow {
        id: Uuid::new_v4().to_string(),
        organization_id: caller.organization_id.clone(),
        name: name.to_owned(),
        role,
        created_by: user_id.to_owned(),
        created_at: app.now_ms,
        last_used_at: None,
        revoked_at: None,
    };
    app.store.insert_api_key(&row, &api_key::hash(&key)).await?;
    tracing::info!(key_id = %row.id, organization_id = %row.organization_id, role = %row.role, "API key created");
    let mut view = view(&row);
    view["key"] = key.into();
    Ok(HttpResponse::json(201, &view))
}

pub(crate) async fn list(app: &App<impl Ports>, caller: &Caller) -> Result<HttpResponse> {
    by_a_user(app, caller)?;
    let keys = app.store.api_keys(&caller.organization_id).await?;
    let keys: Vec<serde_json::Value> = keys.iter().map(view).collect();
    Ok(HttpResponse::ok(&serde_json::json!({ "keys": keys })))
}

pub(crate) async fn revoke(
    app: &App<impl Ports>,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse> {
    by_a_user(app, caller)?;
    if !app
        .store
        .revoke_api_key(&caller.organization_id, id, app.now_ms)
        .await?
    {
        return Err(ApiError::not_found(format!("no API key `{id}`")).into());
    }
    tracing::info!(key_id = id, "API key revoked");
    Ok(HttpResponse::no_content())
}

fn view(key: &ApiKeyRow) -> serde_json::Value {
    use shared::time::rfc3339_millis;
    serde_json::json!({
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "createdBy": key.created_by,
        "createdAt": rfc3339_millis(key.created_at),
        "lastUsedAt": key.last_used_at.map(rfc3339_millis),
        "revokedAt": key.revoked_at.map(rfc3339_millis),
    })
}
