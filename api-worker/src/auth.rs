//! Authentication and the organization firewall: a better-auth session cookie becomes a
//! [`Caller`] bound to the session's active organization, or the request is refused.
//! 401 when the caller is not known, 403 when known but not a member of an active organization.

use shared::session::{find_session_cookie, verify_signed_token};
use shared::time::parse_instant_ms;
use shared::{ApiError, ErrorCode};
use worker_kit::http::HttpRequest;
use worker_kit::Fault;

use crate::error::Result;
use crate::ports::{App, JobQueue, SearchService, Store};

/// Who is calling, and the one organization every read and write is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub user_id: String,
    pub organization_id: String,
    pub role: String,
}

fn unauthenticated(reason: &str) -> ApiError {
    tracing::info!(reason, "authentication refused");
    ApiError::new(ErrorCode::Unauthenticated, "a valid session is required")
}

pub(crate) async fn authenticate<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    request: &HttpRequest,
) -> Result<Caller> {
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
    let session = app
        .store
        .session(token)
        .await?
        .ok_or_else(|| unauthenticated("no such session"))?;
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
    let role = app
        .store
        .member_role(&organization_id, &session.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Forbidden,
                "not a member of the active organization",
            )
        })?;
    Ok(Caller {
        user_id: session.user_id,
        organization_id,
        role,
    })
}
