//! The search modes side by side at one size: the organization's records given texts (the
//! app's rows, which the keyword index reads), then questions asked in `semantic`, `hybrid` and
//! `keyword` mode in turn, each with a text of its own so that no mode answers from a query
//! another put in the cache. Target: hybrid p50 at most semantic p50 + 5 ms at 10,000 records.

use std::fmt::Write as _;
use std::time::Instant;

use e2e::bench::{percentile, Error};
use e2e::verdict::{summary, Bound};
use e2e::{Client, Stack};
use serde_json::json;

use crate::backends::Backend;
use crate::{ORGANIZATION, SEARCHES};

/// Words the records and questions are made of: each record holds eight of them (and a code of
/// its own), so that each word is in about one record in eight, and a question of five words
/// matches thousands of records at 10,000, as common words of real text do.
const WORDS: [&str; 64] = [
    "harbour", "council", "budget", "snow", "road", "valley", "police", "arrest", "bank",
    "robbery", "river", "flood", "school", "teacher", "strike", "hospital", "nurse", "vaccine",
    "election", "vote", "mayor", "bridge", "train", "delay", "airport", "storm", "farmer",
    "harvest", "price", "market", "fire", "forest", "museum", "painting", "theft", "court",
    "judge", "appeal", "factory", "worker", "union", "wage", "tax", "reform", "park", "festival",
    "music", "concert", "ferry", "island", "fisher", "quota", "energy", "grid", "outage", "water",
    "drought", "well", "library", "closure", "protest", "square", "statue", "repair",
];

/// Each mode's latencies, in ms, one a question.
pub(crate) struct ModeLatencies {
    pub(crate) semantic: Vec<f64>,
    pub(crate) hybrid: Vec<f64>,
    pub(crate) keyword: Vec<f64>,
    /// Keyword searches that found at least one record.
    pub(crate) keyword_found: usize,
}

/// A number from `i` and `salt`, spread (`SplitMix64`'s finaliser).
fn spread(i: usize, salt: u64) -> usize {
    let mut z = (i as u64).wrapping_add(salt.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    usize::try_from(z ^ (z >> 31)).unwrap_or(0)
}

fn words(i: usize, count: usize, salt: u64) -> String {
    (0..count)
        .map(|k| WORDS[spread(i * 16 + k, salt) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Gives records `from..total` of the organization texts, as the app's own rows of the table.
pub(crate) fn write_texts(
    stack: &Stack,
    backend: Backend,
    from: usize,
    total: usize,
) -> Result<(), Error> {
    let mut sql = String::new();
    for i in from..total {
        let text = format!("{} RC-{i:05}", words(i, 8, 1));
        let (columns, values) = if backend.table == "notes" {
            ("title, body", format!("'Note {i}', '{text}'"))
        } else {
            ("content", format!("'{text}'"))
        };
        let _ = writeln!(
            sql,
            "INSERT INTO {} (id, organization_id, {columns}, created_at, updated_at) \
             VALUES ('rec_{i:05}', '{ORGANIZATION}', {values}, 0, 0) ON CONFLICT DO NOTHING;",
            backend.table
        );
    }
    stack.sql_script(&sql)?;
    Ok(())
}

/// [`SEARCHES`] questions in each mode, the modes in turn for each question.
pub(crate) fn measure(
    gateway: &Client,
    backend: Backend,
    cookie: &str,
    total: usize,
) -> Result<ModeLatencies, Error> {
    let path = format!("/api/v1/embeddings/search/{}", backend.service);
    let mut latencies = ModeLatencies {
        semantic: Vec::with_capacity(SEARCHES),
        hybrid: Vec::with_capacity(SEARCHES),
        keyword: Vec::with_capacity(SEARCHES),
        keyword_found: 0,
    };
    for i in 0..SEARCHES {
        let question = words(i, 5, 2);
        for mode in ["semantic", "hybrid", "keyword"] {
            let body = json!({
                "text": format!("{question} ({mode} {total}-{i})"),
                "limit": crate::LIMIT,
                "mode": mode,
            });
            let started = Instant::now();
            let reply = gateway.post(&path, Some(cookie), &body.to_string())?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if reply.status != 200 {
                return Err(
                    format!("a {mode} search answered {} {}", reply.status, reply.body).into(),
                );
            }
            let found = reply.body.as_array().is_some_and(|m| !m.is_empty());
            match mode {
                "semantic" => latencies.semantic.push(ms),
                "hybrid" => latencies.hybrid.push(ms),
                _ => {
                    latencies.keyword.push(ms);
                    latencies.keyword_found += usize::from(found);
                }
            }
        }
    }
    Ok(latencies)
}

/// The modes' figures of one backend at one size, and the target.
pub(crate) fn print(backend: Backend, total: usize, m: &ModeLatencies) {
    let p = |v: &[f64]| (percentile(v, 50), percentile(v, 99));
    let ((s50, s99), (h50, h99), (k50, k99)) = (p(&m.semantic), p(&m.hybrid), p(&m.keyword));
    summary(
        format!(
            "search p50 / p99 by mode, {total} records, {}: semantic {s50:.1} / {s99:.1}, hybrid \
             {h50:.1} / {h99:.1}, keyword {k50:.1} / {k99:.1} ms ({} of {} keyword searches \
             found records)",
            backend.name,
            m.keyword_found,
            m.keyword.len()
        ),
        format!("hybrid - semantic p50 {:.1} ms", h50 - s50),
        "<= 5 ms",
        Bound::AtMost(5.0).verdict(h50 - s50),
    );
}
