//! Another tenant's data is indistinguishable from absent data, and a stranger learns nothing of
//! anyone's activity: ids, the query cache, the public health route, an owner's health route.

use super::backends::{create_records, Backend, BackendTest, BACKENDS};
use super::{check, expect, Ctx, Test};
use super::{json, Value};
use libtest_mimic::Failed;

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "one_tenants_searches_are_invisible_to_another_and_to_strangers",
        one_tenants_searches_are_invisible_to_another_and_to_strangers,
    ),
    (
        "an_api_key_never_outlives_its_creators_rights",
        an_api_key_never_outlives_its_creators_rights,
    ),
    (
        "an_owner_sees_the_caches_of_their_own_organization_only",
        an_owner_sees_the_caches_of_their_own_organization_only,
    ),
];

pub(crate) const BACKEND_TESTS: &[(&str, BackendTest)] = &[(
    "another_tenants_record_id_reads_and_writes_as_one_nobody_used",
    another_tenants_record_id_reads_and_writes_as_one_nobody_used,
)];

fn texts_embedded(ctx: &Ctx) -> Result<u64, Failed> {
    Ok(ctx.local_ai.get("/stats", None)?.body["texts"]
        .as_u64()
        .ok_or("no stats")?)
}

fn search(ctx: &Ctx, cookie: &str, text: &str) -> Result<(), Failed> {
    let reply = ctx.client.post(
        "/api/v1/embeddings/search/claimSimilarity",
        Some(cookie),
        &json!({"text": text}).to_string(),
    )?;
    expect(&reply, 200, "search")
}

/// Finds whether any key of `value`, at any depth, is one of `names`.
fn mentions(value: &Value, names: &[&str]) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(key, v)| names.contains(&key.as_str()) || mentions(v, names)),
        Value::Array(items) => items.iter().any(|v| mentions(v, names)),
        _ => false,
    }
}

/// Ann's search of a text must not make Bob's search of it cheaper (one cache per organization),
/// and the unauthenticated health route shows no counter of anyone's searches.
fn one_tenants_searches_are_invisible_to_another_and_to_strangers(ctx: &Ctx) -> Result<(), Failed> {
    let text = format!("A question only Ann asked, {}", uuid::Uuid::new_v4());
    let before = ctx.client.get("/api/v1/health", None)?;
    expect(&before, 200, "health")?;
    check(
        !mentions(&before.body, &["queryCache", "hits", "misses"]),
        || format!("the public health route counts searches: {}", before.body),
    )?;
    let start = texts_embedded(ctx)?;
    search(ctx, &ctx.ann, &text)?;
    search(ctx, &ctx.ann, &text)?;
    let after_ann = texts_embedded(ctx)?;
    search(ctx, &ctx.bob, &text)?;
    let after_bob = texts_embedded(ctx)?;
    check(after_ann - start == 1, || {
        format!(
            "Ann's repeated text is embedded once: {} texts",
            after_ann - start
        )
    })?;
    check(after_bob - after_ann == 1, || {
        "Bob's search of the text Ann just searched came from her cache: he can tell she asked it"
            .into()
    })
}

/// What an owner's health route shows of search-worker's caches: its tables, vectors and query
/// entries, with their bytes (the budgets, the same for everyone, left out).
fn own_caches(ctx: &Ctx, cookie: &str) -> Result<Value, Failed> {
    let reply = ctx.client.get("/api/v1/health", Some(cookie))?;
    expect(&reply, 200, "health")?;
    let caches = &reply.body["search"]["detail"]["caches"];
    check(
        caches["vectors"]["budgetBytes"].is_u64() && caches["queries"]["budgetBytes"].is_u64(),
        || {
            format!(
                "an owner's health shows the caches' budgets: {}",
                reply.body
            )
        },
    )?;
    let (vectors, queries) = (&caches["vectors"], &caches["queries"]);
    Ok(json!({
        "tables": vectors["tables"], "vectors": vectors["vectors"], "vectorBytes": vectors["bytes"],
        "entries": queries["entries"], "entryBytes": queries["bytes"],
    }))
}

/// An owner of an organization made a moment ago, with no record and no search, reads the
/// health route: it shows nothing in the caches, however much Ann's organization holds and
/// searches meanwhile (it used to show the isolate's query vectors and tables, and so each new
/// search another tenant made). Its own search then shows as its own, and only that.
fn an_owner_sees_the_caches_of_their_own_organization_only(ctx: &Ctx) -> Result<(), Failed> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let content = format!("Only Ann's organization holds this record, {run}");
    create_records(ctx, BACKENDS[0], &ctx.ann, &[(content.as_str(), "story_1")])?;
    let ask = |cookie: &str, i: usize| search(ctx, cookie, &format!("Question {i} of {run}"));
    for i in 0..3 {
        ask(&ctx.ann, i)?;
    }
    let anns = own_caches(ctx, &ctx.ann)?;
    check(
        anns["vectors"].as_u64() >= Some(1) && anns["entries"].as_u64() >= Some(3),
        || format!("Ann's own figures hold her table and her searches: {anns}"),
    )?;

    let fresh = ctx
        .stack
        .add_owner(&format!("owner{run}"), &format!("org_{run}"))?;
    let nothing =
        json!({"tables": 0, "vectors": 0, "vectorBytes": 0, "entries": 0, "entryBytes": 0});
    let before = own_caches(ctx, &fresh)?;
    check(before == nothing, || {
        format!("a new organization's owner sees other tenants' caches: {before}")
    })?;
    for i in 3..6 {
        ask(&ctx.ann, i)?;
    }
    let after = own_caches(ctx, &fresh)?;
    check(after == nothing, || {
        format!("Ann's searches moved what another organization's owner sees: {after}")
    })?;

    ask(&fresh, 0)?;
    let own = own_caches(ctx, &fresh)?;
    check(
        own["tables"] == 1 && own["vectors"] == 0 && own["entries"] == 1,
        || format!("the new organization's own search (no record: an empty table): {own}"),
    )?;
    let anns_now = own_caches(ctx, &ctx.ann)?;
    check(anns_now["entries"].as_u64() >= Some(6), || {
        format!("Ann's figures hold her six searches: {anns_now}")
    })
}

/// Ann holds `id`; to Bob it reads as an id nobody used (the same 404, word for word), and it
/// is his to create, after which both records live apart.
fn another_tenants_record_id_reads_and_writes_as_one_nobody_used(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (taken, free) = (format!("taken-{run}"), format!("free-{run}"));
    let table = backend.table;
    let call = |cookie: &str, method: &str, id: &str, body: Option<Value>| {
        let path = if method == "POST" {
            format!("/api/v1/{table}")
        } else {
            format!("/api/v1/{table}/{id}")
        };
        ctx.client.call(
            method,
            &path,
            &[("cookie", cookie)],
            body.map(|b| b.to_string()).as_deref(),
        )
    };
    let created = call(
        &ctx.ann,
        "POST",
        "",
        Some(json!({"id": taken, "content": "Ann's record"})),
    )?;
    expect(&created, 201, "Ann creates her record")?;
    for method in ["GET", "PATCH", "DELETE"] {
        let body = (method == "PATCH").then(|| json!({"content": "Bob's edit"}));
        let theirs = call(&ctx.bob, method, &taken, body.clone())?;
        let nobodys = call(&ctx.bob, method, &free, body)?;
        let scrub = |reply: &e2e::Reply, id: &str| reply.body.to_string().replace(id, "ID");
        check(
            theirs.status == 404
                && nobodys.status == 404
                && scrub(&theirs, &taken) == scrub(&nobodys, &free),
            || {
                format!(
                    "{method} of another tenant's id answers {} {}, of a free id {} {}",
                    theirs.status, theirs.body, nobodys.status, nobodys.body
                )
            },
        )?;
    }
    let bobs = call(
        &ctx.bob,
        "POST",
        "",
        Some(json!({"id": taken, "content": "Bob's record"})),
    )?;
    expect(&bobs, 201, "Bob creates a record with the id Ann uses")?;
    let anns = call(&ctx.ann, "GET", &taken, None)?;
    check(anns.body["content"] == "Ann's record", || {
        format!("Ann's record is untouched: {}", anns.body)
    })
}

/// A key acts with its own role and never beyond its creator's current one: Kim (an owner) makes
/// a `member` key; demoted to `viewer`, her key can no longer write; removed from the
/// organization, it can do nothing.
fn an_api_key_never_outlives_its_creators_rights(ctx: &Ctx) -> Result<(), Failed> {
    let kim = format!("kim{}", uuid::Uuid::new_v4().simple());
    let t = "'2026-01-01T00:00:00.000Z'";
    let live = "'2099-01-01T00:00:00.000Z'";
    ctx.stack.sql(&format!(
        r#"INSERT INTO "user" VALUES ('{kim}', '{kim}', '{kim}@example.com', 1, NULL, {t}, {t});
           INSERT INTO "member" VALUES ('mem_{kim}', 'org_a', '{kim}', 'owner', {t});
           INSERT INTO "session" VALUES ('ses_{kim}', {live}, 'tok_{kim}', {t}, {t}, NULL, NULL, '{kim}', 'org_a');"#
    ))?;
    let cookie = ctx.stack.cookie(&format!("tok_{kim}"));
    let created = ctx.client.call(
        "POST",
        "/api/v1/api-keys",
        &[("cookie", &cookie)],
        Some(&json!({"name": "kim's pipeline", "role": "member"}).to_string()),
    )?;
    expect(&created, 201, "Kim makes a member key")?;
    let bearer = format!("Bearer {}", created.body["key"].as_str().ok_or("no key")?);
    let write = || {
        ctx.client.call(
            "POST",
            "/api/v1/claims",
            &[("authorization", bearer.as_str())],
            Some(&json!({"content": "written with Kim's key"}).to_string()),
        )
    };
    let read = || {
        ctx.client.call(
            "GET",
            "/api/v1/claims/clm_a1",
            &[("authorization", bearer.as_str())],
            None,
        )
    };
    expect(&write()?, 201, "the key writes while Kim may")?;
    ctx.stack.sql(&format!(
        r#"UPDATE "member" SET "role" = 'viewer' WHERE "userId" = '{kim}'"#
    ))?;
    expect(&write()?, 403, "Kim is a viewer now: her key may not write")?;
    expect(&read()?, 200, "a viewer may read, so the key still reads")?;
    ctx.stack
        .sql(&format!(r#"DELETE FROM "member" WHERE "userId" = '{kim}'"#))?;
    let reply = read()?;
    expect(
        &reply,
        403,
        "Kim left the organization: her key does nothing",
    )?;
    check(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no longer a member")),
        || format!("the refusal says why: {}", reply.body),
    )
}
