//! Keyword and hybrid search against the real stack, on each backend: the table's FTS5 index in
//! the local D1, kept by its triggers, asked through the gateway.

use std::collections::BTreeMap;

use super::backends::{create_records, settle, Backend, BackendTest, BACKENDS};
use super::search::classify;
use super::{check, expect, Ctx, Test};
use super::{json, Failed, Value};

pub(crate) const TESTS: &[(&str, BackendTest)] = &[(
    "a_rare_code_is_found_first_by_keyword_and_hybrid_and_the_index_follows_every_write",
    a_rare_code_is_found_first_by_keyword_and_hybrid_and_the_index_follows_every_write,
)];

pub(crate) const PLAIN_TESTS: &[(&str, Test)] = &[(
    "the_database_exports_whole_and_imports_with_its_keyword_indexes",
    the_database_exports_whole_and_imports_with_its_keyword_indexes,
)];

/// Ann's organization, as the seed names it.
const ANN_ORG: &str = "org_a";

fn search(ctx: &Ctx, backend: Backend, body: &Value) -> Result<Vec<Value>, Failed> {
    let path = format!("/api/v1/embeddings/search/{}", backend.service);
    let reply = ctx.client.post(&path, Some(&ctx.ann), &body.to_string())?;
    expect(&reply, 200, &path)?;
    Ok(reply
        .body
        .as_array()
        .ok_or("a search answers an array")?
        .clone())
}

fn ids(matches: &[Value]) -> Vec<&str> {
    matches.iter().filter_map(|m| m["id"].as_str()).collect()
}

fn a_rare_code_is_found_first_by_keyword_and_hybrid_and_the_index_follows_every_write(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let code = format!("XQ-{}", &unique[..6]);
    let coded = format!("The harbour office paid invoice {code} late, after the council's vote");
    let ours = create_records(
        ctx,
        backend,
        &ctx.ann,
        &[
            (coded.as_str(), "s-kw-1"),
            (
                "The city council approved the new harbour budget on Monday",
                "s-kw-1",
            ),
            (
                "Heavy snow closed every mountain road into the valley",
                "s-kw-2",
            ),
        ],
    )?;
    let theirs = create_records(ctx, backend, &ctx.bob, &[(coded.as_str(), "s-kw-1")])?;
    settle(ctx, backend)?;
    let coded_id = ours[0].as_str();

    // The code alone: keyword and hybrid find its record first, and never the other tenant's.
    let semantic = search(ctx, backend, &json!({"text": code, "limit": 100}))?;
    let vector_scores: BTreeMap<&str, f64> = semantic
        .iter()
        .filter_map(|m| Some((m["id"].as_str()?, m["score"].as_f64()?)))
        .collect();
    check(
        semantic
            .iter()
            .all(|m| m["keyword_rank"].is_null() && m["vector_rank"].is_u64()),
        || format!("a semantic search carries its vector ranks only: {semantic:?}"),
    )?;
    for mode in ["keyword", "hybrid"] {
        let found = search(ctx, backend, &json!({"text": code, "mode": mode}))?;
        let first = found
            .first()
            .ok_or_else(|| format!("{mode}: the code found nothing"))?;
        check(first["id"] == coded_id, || {
            format!("{mode}: the record holding {code} is not first: {found:?}")
        })?;
        check(!ids(&found).contains(&theirs[0].as_str()), || {
            format!("{mode}: another organization's record came back: {found:?}")
        })?;
        check(
            first["keyword_rank"] == 1 && first["keyword_score"].as_f64().is_some_and(|s| s > 0.0),
            || format!("{mode}: the keyword search's place and score: {first}"),
        )?;
        // Classified by the vector score, the one a semantic search gives the record.
        let score = first["score"].as_f64().ok_or("no score")?;
        let semantic_score = vector_scores.get(coded_id).copied();
        check(
            semantic_score.is_some_and(|s| (s - score).abs() < 1e-4)
                && first["classification"] == classify(score),
            || format!("{mode}: score {score} against semantic {semantic_score:?}: {first}"),
        )?;
        check(
            (mode == "hybrid") == first["fused_score"].is_number(),
            || format!("{mode}: a fused score only in hybrid mode: {first}"),
        )?;
    }
    let filtered = search(
        ctx,
        backend,
        &json!({"text": code, "mode": "keyword", "filters": {"story_id": "s-kw-2"}}),
    )?;
    check(filtered.is_empty(), || {
        format!("a filter holds in keyword mode: {filtered:?}")
    })?;
    // A filter that passes the record: its vector is read after the filter.
    let passing = search(
        ctx,
        backend,
        &json!({"text": code, "mode": "keyword", "filters": {"story_id": "s-kw-1"}}),
    )?;
    check(
        ids(&passing).first() == Some(&coded_id)
            && passing[0]["score"]
                .as_f64()
                .zip(vector_scores.get(coded_id))
                .is_some_and(|(s, v)| (s - v).abs() < 1e-4),
        || format!("a filter that passes the record, in keyword mode: {passing:?}"),
    )?;

    the_index_follows_every_write(ctx, backend, &code, &ours)?;

    // Words that are FTS5 syntax are words; a text with none finds nothing; a bad mode is a 400.
    for text in ["c++ \"NEAR\" don't *", "-- ?"] {
        search(ctx, backend, &json!({"text": text, "mode": "keyword"}))?;
    }
    let reply = ctx.client.post(
        &format!("/api/v1/embeddings/search/{}", backend.service),
        Some(&ctx.ann),
        &json!({"text": code, "mode": "fuzzy"}).to_string(),
    )?;
    expect(&reply, 400, "an unknown mode")
}

/// Every write is in the index as it commits: the gateway's update (before the record is
/// embedded again), the app's own write behind the gateway's back, and a delete.
fn the_index_follows_every_write(
    ctx: &Ctx,
    backend: Backend,
    code: &str,
    ours: &[String],
) -> Result<(), Failed> {
    let coded_id = ours[0].as_str();
    let path = format!("/api/v1/{}/{coded_id}", backend.table);
    let edited = ctx.client.call(
        "PATCH",
        &path,
        &[("cookie", &ctx.ann)],
        Some(&json!({"content": "The harbour office paid every invoice on time"}).to_string()),
    )?;
    expect(&edited, 200, "an edit that drops the code")?;
    let found = search(ctx, backend, &json!({"text": code, "mode": "keyword"}))?;
    check(found.is_empty(), || {
        format!("the index still finds the edited-out code: {found:?}")
    })?;
    // The app's own write, behind the gateway's back, is in the index too.
    ctx.stack.sql(&format!(
        "UPDATE {} SET content = 'Snow and {code} closed the pass' \
         WHERE organization_id = '{ANN_ORG}' AND id = '{}'",
        backend.table, ours[2]
    ))?;
    let found = search(ctx, backend, &json!({"text": code, "mode": "keyword"}))?;
    check(ids(&found) == [ours[2].as_str()], || {
        format!("the app's own write is not in the index: {found:?}")
    })?;
    let deleted = ctx.client.call(
        "DELETE",
        &format!("/api/v1/{}/{}", backend.table, ours[2]),
        &[("cookie", &ctx.ann)],
        None,
    )?;
    expect(&deleted, 204, "delete the record")?;
    let found = search(ctx, backend, &json!({"text": code, "mode": "hybrid"}))?;
    check(!ids(&found).contains(&ours[2].as_str()), || {
        format!("a deleted record is found by its words: {found:?}")
    })?;
    Ok(())
}

/// `wrangler d1 export` refuses a database with virtual tables; `scripts/export` exports it
/// whole, and the copy imports into an empty database with every row and a keyword index that
/// finds them, kept by its triggers from then on.
fn the_database_exports_whole_and_imports_with_its_keyword_indexes(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let code = format!("ZK-{}", &unique[..6]);
    let ours = create_records(
        ctx,
        BACKENDS[0],
        &ctx.ann,
        &[(
            format!("An exported claim about {code}").as_str(),
            "s-export",
        )],
    )?;
    // A note of two fields of 60,001 characters is one INSERT past D1's 100,000-byte statement:
    // the export must write it so that it imports whole.
    let long = format!("{}\n{}", "'\"\u{e9}".repeat(15_000), "x".repeat(15_000));
    let created = ctx.client.post(
        "/api/v1/notes",
        Some(&ctx.ann),
        &json!({"title": long, "body": long, "topic": "export"}).to_string(),
    )?;
    expect(&created, 201, "a long note")?;
    let note = created.body["record"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let dir = std::env::temp_dir().join(format!("d1-export-{unique}"));
    std::fs::create_dir_all(&dir)?;
    let result = export_and_import(ctx, &dir, &code, &ours[0], &note);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn export_and_import(
    ctx: &Ctx,
    dir: &std::path::Path,
    code: &str,
    id: &str,
    note: &str,
) -> Result<(), Failed> {
    let counts = "SELECT (SELECT count(*) FROM claims) AS claims, (SELECT count(*) FROM notes) \
                  AS notes, (SELECT count(*) FROM evidence) AS evidence, \
                  (SELECT count(*) FROM d1_migrations) AS migrations, \
                  (SELECT count(*) FROM \"user\") AS users";
    let before = ctx.stack.sql(counts)?;
    let file = dir.join("export.sql");
    ctx.stack.export(&file)?;
    let copy = dir.join("state");
    ctx.stack.sql_file_at(&copy, &file)?;
    let read = |name: &str, sql: String| -> Result<Vec<Value>, Failed> {
        let path = dir.join(name);
        std::fs::write(&path, sql)?;
        Ok(ctx.stack.sql_file_at(&copy, &path)?)
    };
    let after = read("counts.sql", format!("{counts};"))?;
    check(before == after, || {
        format!("the copy holds {after:?}, the database {before:?}")
    })?;
    let whole = format!(
        "SELECT title = body AND length(title) = 60001 AND substr(title, 1, 3) = char(39, 34, 233) \
         AND instr(title, char(10)) = 45001 AS whole \
         FROM notes WHERE organization_id = '{ANN_ORG}' AND id = '{note}';"
    );
    let long = read("long.sql", whole)?;
    check(long == [json!({"whole": 1})], || {
        format!("the long note imports whole: {long:?}")
    })?;
    let find = |code: &str| {
        format!(
            "SELECT c.id FROM claims_keywords JOIN claims c ON c.rowid = claims_keywords.rowid \
             WHERE claims_keywords MATCH '\"{code}\"';"
        )
    };
    let found = read("find.sql", find(code))?;
    check(found == [json!({"id": id})], || {
        format!("the copy's keyword index finds {found:?} for {code}")
    })?;
    let added = read(
        "add.sql",
        format!(
            "INSERT INTO claims (id, organization_id, content, created_at, updated_at) \
             VALUES ('clm_after_import', '{ANN_ORG}', 'Written after the import: {code}9', 0, 0);\n{}",
            find(&format!("{code}9"))
        ),
    )?;
    check(added == [json!({"id": "clm_after_import"})], || {
        format!("the copy's triggers keep its index: {added:?}")
    })?;
    // An index emptied behind its table's back finds nothing until it is rebuilt.
    let emptied = read(
        "empty.sql",
        format!(
            "INSERT INTO claims_keywords(claims_keywords) VALUES ('delete-all');\n{}",
            find(code)
        ),
    )?;
    check(emptied.is_empty(), || {
        format!("an emptied index found {emptied:?}")
    })?;
    ctx.stack.rebuild_keywords_at(&copy)?;
    let rebuilt = read("rebuilt.sql", find(code))?;
    check(rebuilt == [json!({"id": id})], || {
        format!("the rebuilt index finds {rebuilt:?} for {code}")
    })
}
