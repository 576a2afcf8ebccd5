//! An API key's uses: requests made with one key, and how many times its `last_used_at` was
//! written meanwhile (at most once a minute).

use std::time::{Duration, Instant};

use e2e::bench::Error;
use e2e::verdict::{said, summary};
use e2e::Stack;
use serde_json::json;

use crate::REPEATS;

/// Requests made with one API key, and how many times its `last_used_at` was written meanwhile.
pub(crate) struct KeyUses {
    requests: usize,
    elapsed: Duration,
    writes: usize,
}

impl KeyUses {
    /// At most one write a minute per key: one for each minute begun since the first use.
    pub(crate) fn print(&self) {
        let allowed = self.elapsed.as_secs() / 60 + 1;
        summary(
            format!(
                "an API key's last_used_at writes over {} requests with it in {:.1} s (its lastUsedAt read after each)",
                self.requests,
                self.elapsed.as_secs_f64()
            ),
            self.writes,
            format!("<= 1 a minute per key: {allowed}"),
            said(self.writes as u64 <= allowed),
        );
    }
}

/// A new API key of ann's organization used for [`REPEATS`] requests (the table list), its
/// `lastUsedAt` read through the key list after each: every distinct value is a write.
pub(crate) fn key_uses(stack: &Stack) -> Result<KeyUses, Error> {
    let gateway = stack.client();
    let cookie = stack.tenant("ann").cookie;
    let created = gateway.post(
        "/api/v1/api-keys",
        Some(&cookie),
        &json!({"name": "bench", "role": "member"}).to_string(),
    )?;
    if created.status != 201 {
        return Err(format!(
            "creating a key answered {} {}",
            created.status, created.body
        )
        .into());
    }
    let bearer = format!("Bearer {}", created.body["key"].as_str().ok_or("no key")?);
    let id = created.body["id"].clone();
    let mut written: Vec<serde_json::Value> = Vec::new();
    let started = Instant::now();
    for _ in 0..REPEATS {
        let reply = gateway.call(
            "GET",
            "/api/v1/embeddings/tables",
            &[("authorization", &bearer)],
            None,
        )?;
        if reply.status != 200 {
            return Err(format!("a request with the key answered {}", reply.status).into());
        }
        let listed = gateway.get("/api/v1/api-keys", Some(&cookie))?;
        let last_used = listed.body["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["id"] == id))
            .map(|k| k["lastUsedAt"].clone())
            .ok_or("the key list lacks the key")?;
        if last_used.is_null() {
            return Err("a used key shows no lastUsedAt".into());
        }
        if !written.contains(&last_used) {
            written.push(last_used);
        }
    }
    Ok(KeyUses {
        requests: REPEATS,
        elapsed: started.elapsed(),
        writes: written.len(),
    })
}
