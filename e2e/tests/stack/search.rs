//! Search through the gateway against the real stack, on each backend: records created through
//! the API and embedded by the real model, then searched, filtered, split into the gray zone and
//! queried.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use e2e::seed::{random_unit_vectors, VectorRow};
use shared::topk::{dot, normalized};

use super::backends::{create_records, settle, Backend, BackendTest};
use super::{check, embed, expect, wait_final_as, Ctx, Test};
use super::{json, Failed, Value};

pub(crate) const TESTS: &[(&str, BackendTest)] = &[(
    "search_classifies_filters_splits_and_keeps_tenants_apart",
    search_classifies_filters_splits_and_keeps_tenants_apart,
)];

/// On the D1 backend only: the others' tables hold a few records, this one thousands.
pub(crate) const D1_TESTS: &[(&str, Test)] = &[(
    "a_large_table_is_searched_exactly_through_large_catch_ups",
    a_large_table_is_searched_exactly_through_large_catch_ups,
)];

const COUNCIL: &str = "The city council approved the new harbour budget on Monday";
const SNOW: &str = "Heavy snow closed every mountain road into the valley";
const ARREST: &str = "Police arrested three suspects after the bank robbery";

fn post(ctx: &Ctx, cookie: &str, path: &str, body: &Value) -> Result<Value, Failed> {
    let reply = ctx.client.post(path, Some(cookie), &body.to_string())?;
    expect(&reply, 200, path)?;
    Ok(reply.body)
}

fn search(ctx: &Ctx, backend: Backend, cookie: &str, body: &Value) -> Result<Vec<Value>, Failed> {
    let path = format!("/api/v1/embeddings/search/{}", backend.service);
    let reply = post(ctx, cookie, &path, body)?;
    Ok(reply.as_array().ok_or("a search answers an array")?.clone())
}

/// The example services' thresholds, as the config sets them (both use 0.90 / 0.85 / 0.75).
pub(crate) fn classify(score: f64) -> &'static str {
    match score {
        s if s >= 0.90 => "DUPLICATE",
        s if s >= 0.85 => "CONFIRMS",
        s if s >= 0.75 => "RELATED",
        _ => "NEW",
    }
}

fn search_classifies_filters_splits_and_keeps_tenants_apart(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let ours = create_records(
        ctx,
        backend,
        &ctx.ann,
        &[
            (COUNCIL, "s-search-1"),
            (SNOW, "s-search-2"),
            (ARREST, "s-search-1"),
        ],
    )?;
    let theirs = create_records(ctx, backend, &ctx.bob, &[(COUNCIL, "s-search-1")])?;
    settle(ctx, backend)?;
    let council = &ours[0];

    let near = search(
        ctx,
        backend,
        &ctx.ann,
        &json!({"text": format!("{COUNCIL}."), "limit": 20}),
    )?;
    check(
        near[0]["id"] == council.as_str() && near[0]["classification"] == "DUPLICATE",
        || format!("a near-identical claim is a DUPLICATE: {:?}", near.first()),
    )?;
    let ids: BTreeSet<&str> = near.iter().filter_map(|m| m["id"].as_str()).collect();
    check(!ids.contains(theirs[0].as_str()), || {
        "another organization's record came back".into()
    })?;
    for m in &near {
        let score = m["score"].as_f64().ok_or("no score")?;
        check(m["classification"] == classify(score), || {
            format!("classified by the service's thresholds: {m}")
        })?;
    }
    let scores: Vec<f64> = near.iter().filter_map(|m| m["score"].as_f64()).collect();
    check(scores.windows(2).all(|w| w[0] >= w[1]), || {
        format!("best first: {scores:?}")
    })?;

    let unrelated = search(
        ctx,
        backend,
        &ctx.ann,
        &json!({"text": "Quantum computers factor large integers with qubits"}),
    )?;
    check(
        unrelated.iter().all(|m| m["classification"] == "NEW"),
        || format!("an unrelated text matches nothing: {unrelated:?}"),
    )?;

    let paraphrase = "On Monday councillors voted to approve the harbour's new budget";
    let found = search(
        ctx,
        backend,
        &ctx.ann,
        &json!({"text": paraphrase, "filters": {"story_id": "s-search-1"}}),
    )?;
    let top = found.first().ok_or("the paraphrase found nothing")?;
    let score = top["score"].as_f64().ok_or("no score")?;
    check(
        top["id"] == council.as_str() && top["classification"] == classify(score),
        || format!("the paraphrase falls where the thresholds put it: {top}"),
    )?;
    let zone = post(
        ctx,
        &ctx.ann,
        &format!("/api/v1/embeddings/gray-zone/{}", backend.service),
        &json!({"text": paraphrase, "limit": 20}),
    )?;
    check_split(&zone, 0.60, 0.85)?;
    let in_high = zone["high_confidence"]
        .as_array()
        .is_some_and(|h| h.iter().any(|m| m["id"] == council.as_str()));
    check(in_high == (score >= 0.85), || {
        format!("the paraphrase ({score}) is on the same side of 0.85 through both routes: {zone}")
    })?;

    filters_narrow_and_tenants_stay_apart(ctx, backend, &ours, &theirs)?;

    let vector = embed(ctx, COUNCIL)?;
    let query = post(
        ctx,
        &ctx.ann,
        "/api/v1/embeddings/query",
        &json!({"vector": vector, "topK": 2, "table": backend.table}),
    )?;
    check(
        query["matches"][0]["id"] == council.as_str()
            && query["matches"][0]["metadata"]["story_id"] == "s-search-1",
        || format!("a raw vector query: {query}"),
    )
}

fn filters_narrow_and_tenants_stay_apart(
    ctx: &Ctx,
    backend: Backend,
    ours: &[String],
    theirs: &[String],
) -> Result<(), Failed> {
    let filtered = search(
        ctx,
        backend,
        &ctx.ann,
        &json!({"text": COUNCIL, "filters": {"story_id": "s-search-2"}}),
    )?;
    check(
        filtered.len() == 1 && filtered[0]["id"] == ours[1].as_str(),
        || format!("a metadata filter narrows to the one snow claim: {filtered:?}"),
    )?;
    let reply = ctx.client.post(
        &format!("/api/v1/embeddings/search/{}", backend.service),
        Some(&ctx.ann),
        &json!({"text": COUNCIL, "filters": {"organization_id": "org_b"}}).to_string(),
    )?;
    expect(&reply, 400, "the organization is not a filter")?;
    // A record without the field matches no operator, `$ne` included, on either backend.
    let reply = ctx.client.call(
        "POST",
        &format!("/api/v1/{}", backend.table),
        &[("cookie", &ctx.ann)],
        Some(&json!({"content": SNOW}).to_string()),
    )?;
    expect(&reply, 201, "a record without a story")?;
    let storyless = reply.body["record"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let job = reply.body["job"]["jobId"].as_str().ok_or("no job")?;
    let done = wait_final_as(ctx, &ctx.ann, job, Duration::from_secs(30))?;
    check(done["status"] == "done", || format!("{done}"))?;
    settle(ctx, backend)?;
    let negated = search(
        ctx,
        backend,
        &ctx.ann,
        &json!({"text": SNOW, "filters": {"story_id": {"$ne": "s-search-1"}}, "limit": 100}),
    )?;
    check(
        negated.iter().any(|m| m["id"] == ours[1].as_str())
            && negated.iter().all(|m| {
                m["id"] != storyless.as_str()
                    && m["metadata"]["story_id"].is_string()
                    && m["metadata"]["story_id"] != "s-search-1"
            }),
        || {
            format!("`$ne` finds the snow claim of another story, not the one without a story: {negated:?}")
        },
    )?;
    let bobs = search(
        ctx,
        backend,
        &ctx.bob,
        &json!({"text": COUNCIL, "filters": {"story_id": {"$in": ["s-search-1", "s-search-2"]}}, "limit": 50}),
    )?;
    check(bobs.iter().all(|m| m["id"] == theirs[0].as_str()), || {
        format!("bob sees only his organization's claim, whatever the filter: {bobs:?}")
    })?;

    Ok(())
}

fn check_split(zone: &Value, min: f64, max: f64) -> Result<(), Failed> {
    let scores = |key: &str| -> Vec<f64> {
        zone[key]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["score"].as_f64()).collect())
            .unwrap_or_default()
    };
    let (high, gray) = (scores("high_confidence"), scores("gray_zone"));
    check(
        high.iter().all(|s| *s >= max) && gray.iter().all(|s| (min..max).contains(s)),
        || format!("high_confidence >= {max}, {min} <= gray_zone < {max}: {zone}"),
    )
}

/// The notes table's model and location (the D1 backend), which `org_c` has no set of.
const NOTES_MODEL: &str = "@cf/baai/bge-small-en-v1.5";
const TOPICS: [&str; 4] = ["city", "weather", "crime", "sport"];

/// What `org_c`'s notes hold, by record: the vector and its topic.
type Notes = BTreeMap<String, (Vec<f32>, &'static str)>;

/// Cat's organization gets 3,000 notes at once, every seventh written before codes were (its
/// vector looked up beside the catch-up index's scan): one catch-up of about 2.8 MB. Then a
/// thousand more, forty updated and forty deleted (one of them written again after): a second
/// catch-up, with a chunk of exact vectors beside it. After
/// each, vector queries (with a filter and without) answer exactly what a brute-force ranking
/// of the rows written answers.
fn a_large_table_is_searched_exactly_through_large_catch_ups(ctx: &Ctx) -> Result<(), Failed> {
    const FIRST: usize = 3_000;
    let cat = ctx.stack.tenant("cat").cookie;
    let vectors = random_unit_vectors(41, FIRST + 1_000 + 40, 384);
    let queries = random_unit_vectors(43, 3, 384);
    let mut notes = Notes::new();
    let mut seq = 0;
    // A note's row as one statement, and the oracle's note as the row leaves it.
    let mut write = |notes: &mut Notes, i: usize, vector: Option<&[f32]>| -> String {
        let record = format!("note_{i:05}");
        let topic = TOPICS[i % TOPICS.len()];
        let metadata = json!({ "topic": topic }).to_string();
        seq += 1;
        let row = VectorRow {
            organization_id: "org_c",
            table: "notes",
            model: NOTES_MODEL,
            location: "d1",
            record_id: &record,
            vector,
            codes: !i.is_multiple_of(7),
            metadata: if vector.is_some() { &metadata } else { "{}" },
            seq,
        };
        let sql = row.upsert_sql();
        match vector {
            Some(vector) => notes.insert(record, (vector.to_vec(), topic)),
            None => notes.remove(&record),
        };
        sql
    };
    let mut sql = String::new();
    for (i, vector) in vectors.iter().enumerate().take(FIRST) {
        let _ = writeln!(sql, "{}", write(&mut notes, i, Some(vector)));
    }
    ctx.stack.sql_script(&sql)?;
    check_exact(ctx, &cat, &notes, &queries, "3,000 notes in one catch-up")?;

    sql.clear();
    for (i, vector) in vectors.iter().enumerate().skip(FIRST).take(1_000) {
        let _ = writeln!(sql, "{}", write(&mut notes, i, Some(vector)));
    }
    for k in 0..40 {
        let updated = write(&mut notes, k * 61 + 5, Some(&vectors[FIRST + 1_000 + k]));
        let deleted = write(&mut notes, k * 67 + 8, None);
        let _ = writeln!(sql, "{updated}\n{deleted}");
    }
    ctx.stack.sql_script(&sql)?;
    check_exact(
        ctx,
        &cat,
        &notes,
        &queries,
        "1,000 more, 40 updated, 40 deleted",
    )
}

/// Each of `queries`, as a vector query of `org_c`'s notes without a filter and with one, ranks
/// the ten best notes of `notes` as brute force does.
fn check_exact(
    ctx: &Ctx,
    cookie: &str,
    notes: &Notes,
    queries: &[Vec<f32>],
    after: &str,
) -> Result<(), Failed> {
    for query in queries {
        for topic in [None, Some("city")] {
            let mut body = json!({"vector": query, "topK": 10, "table": "notes"});
            if let Some(topic) = topic {
                body["filter"] = json!({ "topic": topic });
            }
            let answer = post(ctx, cookie, "/api/v1/embeddings/query", &body)?;
            let ours: Vec<(String, f64)> = answer["matches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let id = m["id"].as_str().unwrap_or_default().to_owned();
                    (id, m["score"].as_f64().unwrap_or(f64::NAN))
                })
                .collect();
            let unit = normalized(query);
            let mut expected: Vec<(&String, f32)> = notes
                .iter()
                .filter(|(_, (_, t))| topic.is_none_or(|topic| topic == *t))
                .map(|(id, (vector, _))| (id, dot(&unit, vector)))
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1));
            expected.truncate(10);
            let same = ours.len() == expected.len()
                && ours
                    .iter()
                    .zip(&expected)
                    .all(|((id, score), (want, want_score))| {
                        id == *want && (score - f64::from(*want_score)).abs() < 1e-4
                    });
            check(same, || {
                format!("after {after}, topic {topic:?}: {ours:?}, brute force: {expected:?}")
            })?;
        }
    }
    Ok(())
}
