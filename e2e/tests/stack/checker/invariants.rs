//! The invariants once a history has settled: each record, and each tenant's search (in every
//! mode), gray zone and vector query, compared with what the oracle says they must be.

use std::collections::{BTreeMap, BTreeSet};

use crate::search::classify;
use crate::{check, cosine, embed_with};
use crate::{json, Failed, Value};

use super::history::History;

impl History<'_> {
    /// local-ai's embedding of `text` with the table's model now.
    pub(super) fn embedding(&mut self, text: &'static str) -> Result<Vec<f32>, Failed> {
        let key = (self.backend.model, text);
        if let Some(vector) = self.embeddings.get(&key) {
            return Ok(vector.clone());
        }
        let vector = embed_with(self.ctx, self.backend.model, text)?;
        self.embeddings.insert(key, vector.clone());
        Ok(vector)
    }

    /// Checks a record against the oracle, `stored` being what the search store holds for it.
    pub(super) fn check_record(
        &mut self,
        tenant: usize,
        id: &str,
        stored: Option<Vec<f32>>,
    ) -> Result<(), Failed> {
        let organization_id = self.tenants[tenant].organization_id;
        let reply = self.call(
            tenant,
            "GET",
            &format!("{}?include=embedding", self.path(id)),
            None,
        )?;
        let backend = self.backend.name;
        let Some(live) = self.oracle.get(&(tenant, id.to_owned())).copied() else {
            self.check_absent("GET", &reply, id)?;
            return self.check(stored.is_none(), || {
                format!("`{id}` of {organization_id} is deleted, yet {backend} holds a vector")
            });
        };
        self.check(
            reply.status == 200
                && reply.body["content"] == live.content
                && reply.body["story_id"] == self.stories[live.story].as_str(),
            || {
                format!(
                    "`{id}` of {organization_id} reads back as the oracle has it: {}",
                    reply.body
                )
            },
        )?;
        let expected = self.embedding(live.content)?;
        let column: Vec<f32> =
            serde_json::from_value(reply.body["embedding"].clone()).unwrap_or_default();
        let stored = stored.unwrap_or_default();
        let (in_column, in_store) = (cosine(&column, &expected), cosine(&stored, &expected));
        // The lengths too: a vector of another model could point the same way.
        let (model, lengths) = (self.backend.model, [column.len(), stored.len()]);
        self.check(
            in_column > 0.9999 && in_store > 0.9999 && lengths == [expected.len(); 2],
            || {
                format!(
                    "`{id}` of {organization_id} ({:?}): cosine to its text's embedding by {model} {in_column} in its column, {in_store} in {backend}; {lengths:?} dimensions of {}",
                    live.content,
                    expected.len()
                )
            },
        )
    }

    /// Search, gray zone and vector query as one tenant, each against the brute-force ranking
    /// of the oracle's live records of that tenant: over the history's stories (the tenant's
    /// other records stay out), and over one story, which only metadata as it is now can pass.
    pub(super) fn check_search(
        &mut self,
        tenant: usize,
        text: &'static str,
        story: usize,
    ) -> Result<(), Failed> {
        let query = self.embedding(text)?;
        let mut ranked: Vec<(String, usize, f32)> = Vec::new();
        for ((owner, id), live) in self.oracle.clone() {
            if owner == tenant {
                let score = cosine(&query, &self.embedding(live.content)?);
                ranked.push((id, live.story, score));
            }
        }
        ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
        let all: Vec<(String, f32)> = ranked.iter().map(|(id, _, s)| (id.clone(), *s)).collect();
        let one: Vec<(String, f32)> = ranked
            .iter()
            .filter(|r| r.1 == story)
            .map(|(id, _, s)| (id.clone(), *s))
            .collect();
        let (stories, one_story) = (json!({"$in": self.stories}), self.stories[story].clone());
        let service = self.backend.service;
        let search = format!("/api/v1/embeddings/search/{service}");
        for (what, filter, expected) in [
            ("search", &stories, &all),
            ("search of one story", &json!(one_story), &one),
        ] {
            let body = json!({"text": text, "limit": 10, "filters": {"story_id": filter}});
            let answer = self.post_ok(tenant, &search, &body)?;
            self.check_ranking(tenant, what, &answer, expected, true)?;
        }

        let (min, max) = (0.3, 0.7);
        let zone = self.post_ok(
            tenant,
            &format!("/api/v1/embeddings/gray-zone/{service}"),
            &json!({"text": text, "min": min, "max": max, "limit": 10, "filters": {"story_id": stories}}),
        )?;
        let high: Vec<(String, f32)> = all.iter().filter(|m| m.1 >= max).cloned().collect();
        let gray: Vec<(String, f32)> = all
            .iter()
            .filter(|m| (min..max).contains(&m.1))
            .cloned()
            .collect();
        self.check_ranking(
            tenant,
            "gray zone, high confidence",
            &zone["high_confidence"],
            &high,
            true,
        )?;
        self.check_ranking(tenant, "gray zone", &zone["gray_zone"], &gray, true)?;

        let body = json!({"vector": query, "topK": 10, "table": self.backend.table,
                          "filter": {"story_id": one_story}});
        let answer = self.post_ok(tenant, "/api/v1/embeddings/query", &body)?;
        self.check_ranking(
            tenant,
            "vector query of one story",
            &answer["matches"],
            &one,
            false,
        )?;
        let carried = answer["matches"].as_array().is_some_and(|m| {
            m.iter()
                .all(|m| m["metadata"]["story_id"] == one_story.as_str())
        });
        self.check(carried, || {
            format!("a vector query's matches carry their metadata as it is now: {answer}")
        })
    }

    /// Keyword and hybrid search as one tenant, over the history's stories. Their order rests
    /// on BM25's statistics of the whole table, which the oracle does not keep; what it does
    /// know must hold: every match is a live record of the tenant, scored and classified by its
    /// vector as a semantic search scores it; a keyword search finds every live record that
    /// holds a word of the text as it is now (the index follows every write); a hybrid search,
    /// whose vector side ranks at least 50, finds every live record.
    pub(super) fn check_keywords(
        &mut self,
        tenant: usize,
        text: &'static str,
    ) -> Result<(), Failed> {
        let query = self.embedding(text)?;
        let words: BTreeSet<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut live: BTreeMap<String, f32> = BTreeMap::new();
        let mut holding: BTreeSet<String> = BTreeSet::new();
        for ((owner, id), record) in self.oracle.clone() {
            if owner != tenant {
                continue;
            }
            live.insert(id.clone(), cosine(&query, &self.embedding(record.content)?));
            if record
                .content
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| words.contains(&w.to_lowercase()))
            {
                holding.insert(id);
            }
        }
        let search = format!("/api/v1/embeddings/search/{}", self.backend.service);
        let stories = json!({"$in": self.stories});
        let organization_id = self.tenants[tenant].organization_id;
        for mode in ["keyword", "hybrid"] {
            let body = json!({"text": text, "limit": 100, "mode": mode,
                              "filters": {"story_id": stories}});
            let answer = self.post_ok(tenant, &search, &body)?;
            let matches = answer.as_array().cloned().unwrap_or_default();
            let found: BTreeSet<String> = matches
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            let scored = matches.iter().all(|m| {
                let score = m["score"].as_f64().unwrap_or(f64::NAN);
                m["id"]
                    .as_str()
                    .and_then(|id| live.get(id))
                    .is_some_and(|want| {
                        (score - f64::from(*want)).abs() < 1e-3
                            && m["classification"] == classify(score)
                    })
            });
            let complete = if mode == "keyword" {
                holding.is_subset(&found)
            } else {
                live.keys().all(|id| found.contains(id))
            };
            self.check(scored && complete, || {
                format!(
                    "{mode} search of {text:?} as {organization_id}: {matches:?}; the oracle's live \
                     records and scores {live:?}, of which hold a word of it {holding:?}"
                )
            })?;
        }
        Ok(())
    }

    pub(super) fn post_ok(&self, tenant: usize, path: &str, body: &Value) -> Result<Value, Failed> {
        let reply = self.call(tenant, "POST", path, Some(body))?;
        check(reply.status == 200, || {
            format!("{path}: {} {}", reply.status, reply.body)
        })?;
        Ok(reply.body)
    }

    /// Whether `answer` (matches, best first) is `expected` (id and score): the same scores to
    /// float rounding, the same ids except where two scores tie, and, when `classified`, each
    /// match classified by the service's thresholds.
    pub(super) fn check_ranking(
        &mut self,
        tenant: usize,
        what: &str,
        answer: &Value,
        expected: &[(String, f32)],
        classified: bool,
    ) -> Result<(), Failed> {
        let ours: Vec<(String, f64, String)> = answer
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().to_owned(),
                    m["score"].as_f64().unwrap_or(f64::NAN),
                    m["classification"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let same = ours.len() == expected.len()
            && ours
                .iter()
                .zip(expected)
                .all(|((id, score, class), (want, want_score))| {
                    (*score - f64::from(*want_score)).abs() < 1e-3
                        && (id == want || (*score - f64::from(*want_score)).abs() < 1e-4)
                        && (!classified || class == classify(*score))
                });
        let organization_id = self.tenants[tenant].organization_id;
        self.check(same, || {
            format!(
                "{what} as {organization_id}: {ours:?}, brute force over the oracle: {expected:?}"
            )
        })
    }
}
