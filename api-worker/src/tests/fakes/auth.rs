//! [`Credentials`] and [`ApiKeys`] of the [`FakeStore`]: sessions as seeded, keys in memory.

use shared::api_key;
use worker_kit::Fault;

use super::FakeStore;
use crate::ports::{ApiKeyRow, ApiKeys, Credentials, KeyUse, SessionRow};

impl Credentials for FakeStore {
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        Ok(self
            .sessions
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, s)| s.clone()))
    }
    async fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<KeyUse>, Fault> {
        let mut keys = self.keys.borrow_mut();
        let key = keys
            .iter_mut()
            .find(|(h, k)| h == key_hash && k.revoked_at.is_none());
        Ok(key.map(|(_, k)| {
            if api_key::use_is_written(k.last_used_at, now_ms) {
                k.last_used_at = Some(now_ms);
            }
            // The creator's role now: their membership, as their sessions carry it.
            let creator_role = self
                .sessions
                .iter()
                .find(|(_, s)| {
                    s.user_id == k.created_by
                        && s.active_organization_id.as_deref() == Some(&k.organization_id)
                })
                .and_then(|(_, s)| s.role.clone());
            KeyUse {
                key: k.clone(),
                creator_role,
            }
        }))
    }
}

impl ApiKeys for FakeStore {
    async fn insert_api_key(&self, key: &ApiKeyRow, key_hash: &str) -> Result<(), Fault> {
        self.keys
            .borrow_mut()
            .push((key_hash.to_owned(), key.clone()));
        Ok(())
    }
    async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyRow>, Fault> {
        Ok(self
            .keys
            .borrow()
            .iter()
            .filter(|(_, k)| k.organization_id == organization_id)
            .map(|(_, k)| k.clone())
            .collect())
    }
    async fn revoke_api_key(
        &self,
        organization_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let mut keys = self.keys.borrow_mut();
        let key = keys.iter_mut().find(|(_, k)| {
            k.id == id && k.organization_id == organization_id && k.revoked_at.is_none()
        });
        Ok(key.is_some_and(|(_, k)| {
            k.revoked_at = Some(now_ms);
            true
        }))
    }
}
