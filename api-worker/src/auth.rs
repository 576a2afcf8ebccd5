//! Authentication and the organization firewall. A request is let in by an organization API key
//! (`Authorization: Bearer emb_…`) or a better-auth session cookie, and becomes a [`Caller`]
//! bound to one organization with its roles; [`Caller::require`] then checks a role may act.
//!
//! 401 when the caller is not known; 403 when known but without an active organization, not a
//! member of it, or without a role that may do what it asks.
//!
//! An API key belongs to the organization but acts for the member who made it: within its own
//! role and within its creator's role as it is now. Demote the creator and the key loses what
//! the creator lost; remove the creator and the key does nothing (403) until it is revoked.
//!
//! A session, once read, is trusted by the isolate for [`SESSION_TRUST_MS`] (its cookie's
//! signature is still checked on every request, and its expiry): a sign-out, a change of active
//! organization or a removal from the organization takes effect within that time, and every
//! request after the first in that time skips the D1 read.

use shared::access::Action;
use shared::api_key;
use shared::config::TableConfig;
use shared::session::{find_session_cookie, verify_signed_token};
use shared::time::parse_instant_ms;
use shared::{ApiError, ErrorCode};
use worker_kit::http::HttpRequest;
use worker_kit::Fault;

use crate::error::Result;
use crate::ports::{App, Credentials, Ports};

/// Who is calling, and the one organization every read and write is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub organization_id: String,
    /// better-auth stores several roles as one comma-separated string.
    pub roles: Vec<String>,
    /// For an API key, its creator's roles now: an action must be allowed to these too.
    pub ceiling: Option<Vec<String>>,
    pub principal: Principal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    User(String),
    ApiKey(String),
}

impl Caller {
    /// Refuses with 403 unless one of the caller's roles may do `action` (on `table`, when
    /// the action is on one).
    pub(crate) fn require(
        &self,
        app: &App<impl Ports>,
        table: Option<&TableConfig>,
        action: Action,
    ) -> Result<()> {
        let allowed = |roles: &[String]| {
            roles
                .iter()
                .any(|role| app.config.allows(table, role, action))
        };
        if allowed(&self.roles) && self.ceiling.as_deref().is_none_or(allowed) {
            return Ok(());
        }
        let on = table.map_or_else(String::new, |t| format!(" on `{}`", t.name));
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "role `{}` may not {}{on}",
                self.roles.join(","),
                action.as_str()
            ),
        )
        .into())
    }
}

/// How long an isolate answers a session from what it read, before it reads it again.
pub(crate) const SESSION_TRUST_MS: i64 = 5_000;
/// Sessions one isolate keeps at most.
pub(crate) const SESSION_CACHE_ENTRIES: usize = 10_000;

fn unauthenticated(reason: &str) -> ApiError {
    tracing::info!(reason, "authentication refused");
    ApiError::new(
        ErrorCode::Unauthenticated,
        "a valid session or API key is required",
    )
}

pub(crate) async fn authenticate(app: &App<impl Ports>, request: &HttpRequest) -> Result<Caller> {
    if let Some(header) = request.header("authorization") {
        return api_key_caller(app, header).await;
    }
    session_caller(app, request).await
}

async fn api_key_caller(app: &App<impl Ports>, header: &str) -> Result<Caller> {
    let key = api_key::from_authorization(header)
        .ok_or_else(|| unauthenticated("malformed authorization header"))?;
    let used = app
        .store
        .use_api_key(&api_key::hash(key), app.now_ms)
        .await?
        .ok_or_else(|| unauthenticated("unknown or revoked API key"))?;
    let creator_role = used.creator_role.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "the key's creator is no longer a member of the organization, so the key acts for nobody; revoke it and make a new one",
        )
    })?;
    Ok(Caller {
        organization_id: used.key.organization_id,
        roles: vec![used.key.role],
        ceiling: Some(split_roles(&creator_role)),
        principal: Principal::ApiKey(used.key.id),
    })
}

/// better-auth keeps several roles in one comma-separated `member.role`.
fn split_roles(role: &str) -> Vec<String> {
    role.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn session_caller(app: &App<impl Ports>, request: &HttpRequest) -> Result<Caller> {
    // Without the secret no signature can be checked: fail closed, and say why in the logs.
    let secret = app
        .auth_secret
        .as_deref()
        .ok_or_else(|| Fault("BETTER_AUTH_SECRET is not set".into()))?;
    let cookie = request
        .header("cookie")
        .ok_or_else(|| unauthenticated("no cookie header"))?;
    let value = find_session_cookie(cookie).map_err(|e| unauthenticated(&e.to_string()))?;
    let token = verify_signed_token(&value, secret.as_bytes())
        .map_err(|e| unauthenticated(&e.to_string()))?;
    let cached = app.sessions.borrow().get(token, app.now_ms);
    let session = if let Some(session) = cached {
        session
    } else {
        let session = app
            .store
            .session(token)
            .await?
            .ok_or_else(|| unauthenticated("no such session"))?;
        app.sessions
            .borrow_mut()
            .put(token, session.clone(), app.now_ms);
        session
    };
    let expires_at = parse_instant_ms(&session.expires_at).ok_or_else(|| {
        Fault(format!(
            "session expiresAt `{}` is not a time",
            session.expires_at
        ))
    })?;
    if expires_at <= app.now_ms {
        return Err(unauthenticated("session expired").into());
    }
    let organization_id = session.active_organization_id.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "the session has no active organization",
        )
    })?;
    let role = session.role.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "not a member of the active organization",
        )
    })?;
    Ok(Caller {
        organization_id,
        roles: split_roles(&role),
        ceiling: None,
        principal: Principal::User(session.user_id),
    })
}
