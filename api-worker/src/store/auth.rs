//! [`Credentials`] and [`ApiKeys`] over D1: better-auth's `session` and `member` tables, read
//! only, and the gateway's own `api_keys`.

use serde::Deserialize;
use shared::api_key;
use worker_kit::d1::{number, text};
use worker_kit::Fault;

use super::D1Store;
use crate::ports::{ApiKeyRow, ApiKeys, Credentials, KeyUse, SessionRow};

/// The columns of an [`ApiKeyRow`], as every read of a key selects them.
const API_KEY_COLUMNS: &str =
    "id, organization_id, name, role, created_by, created_at, last_used_at, revoked_at";

impl Credentials for D1Store {
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        // The session and the user's role in its active organization, in one round trip.
        let row = self
            .statement(
                r#"SELECT s."userId" AS user_id, s."activeOrganizationId" AS active_organization_id,
                          CAST(s."expiresAt" AS TEXT) AS expires_at, m."role" AS role
                   FROM "session" s
                   LEFT JOIN "member" m
                     ON m."organizationId" = s."activeOrganizationId" AND m."userId" = s."userId"
                   WHERE s."token" = ?1"#,
                &[text(token)],
            )?
            .first::<SessionRow>(None)
            .await?;
        Ok(row)
    }

    async fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<KeyUse>, Fault> {
        #[derive(Deserialize)]
        struct CreatorRole {
            role: String,
        }
        // One round trip: the key marked used (when its last written use is a minute old, as
        // `api_key::use_is_written` says: an UPDATE that matches nothing writes nothing), the
        // key, and its creator's membership now.
        let touch = self.statement(
            "UPDATE api_keys SET last_used_at = ?2
             WHERE key_hash = ?1 AND revoked_at IS NULL
               AND (last_used_at IS NULL OR last_used_at <= ?3)",
            &[
                text(key_hash),
                number(now_ms),
                number(now_ms - api_key::LAST_USED_RESOLUTION_MS),
            ],
        )?;
        let key = self.statement(
            &format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
            ),
            &[text(key_hash)],
        )?;
        let creator = self.statement(
            r#"SELECT m."role" AS role FROM api_keys k
               JOIN "member" m ON m."organizationId" = k.organization_id AND m."userId" = k.created_by
               WHERE k.key_hash = ?1"#,
            &[text(key_hash)],
        )?;
        let mut results = self
            .db
            .batch(vec![touch, key, creator])
            .await?
            .into_iter()
            .skip(1);
        let key = match results.next() {
            Some(result) => result.results::<ApiKeyRow>()?.into_iter().next(),
            None => None,
        };
        let creator_role = match results.next() {
            Some(result) => result.results::<CreatorRole>()?.into_iter().next(),
            None => None,
        };
        Ok(key.map(|key| KeyUse {
            key,
            creator_role: creator_role.map(|c| c.role),
        }))
    }
}

impl ApiKeys for D1Store {
    async fn insert_api_key(&self, key: &ApiKeyRow, key_hash: &str) -> Result<(), Fault> {
        self.statement(
            "INSERT INTO api_keys (id, organization_id, name, key_hash, role, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                text(&key.id),
                text(&key.organization_id),
                text(&key.name),
                text(key_hash),
                text(&key.role),
                text(&key.created_by),
                number(key.created_at),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyRow>, Fault> {
        let rows = self
            .statement(
                &format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE organization_id = ?1
                     ORDER BY created_at DESC, id"
                ),
                &[text(organization_id)],
            )?
            .all()
            .await?
            .results::<ApiKeyRow>()?;
        Ok(rows)
    }

    async fn revoke_api_key(
        &self,
        organization_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let result = self
            .statement(
                "UPDATE api_keys SET revoked_at = ?3
                 WHERE id = ?1 AND organization_id = ?2 AND revoked_at IS NULL",
                &[text(id), text(organization_id), number(now_ms)],
            )?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }
}
