//! The gateway against the real stack: every route refuses every kind of bad credential with the
//! right status, and every route works for the right caller: CRUD with auto-embedding, backfill,
//! jobs, API keys, and cookies signed by better-auth's own code.

use super::backends::select;
use super::consumer::{seed_claims, wait_all_final};
use super::{check, expect, job_id, wait_final, Ctx, Test};
use super::{json, Duration, Failed, Value};

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "every_route_refuses_bad_credentials_wrong_roles_and_other_tenants",
        every_route_refuses_bad_credentials_wrong_roles_and_other_tenants,
    ),
    (
        "a_cookie_signed_by_better_auth_itself_is_accepted",
        a_cookie_signed_by_better_auth_itself_is_accepted,
    ),
    (
        "crud_embeds_on_insert_and_on_watched_changes_only",
        crud_embeds_on_insert_and_on_watched_changes_only,
    ),
    (
        "a_backfill_embeds_what_lacks_a_current_embedding",
        a_backfill_embeds_what_lacks_a_current_embedding,
    ),
    (
        "an_api_key_works_for_its_organization_until_revoked",
        an_api_key_works_for_its_organization_until_revoked,
    ),
];

/// One route as the matrix calls it.
struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
}

fn route(method: &'static str, path: impl Into<String>, body: Option<Value>) -> Route {
    Route {
        method,
        path: path.into(),
        body,
    }
}

fn call(ctx: &Ctx, route: &Route, headers: &[(&str, &str)]) -> Result<super::Reply, Failed> {
    let body = route.body.as_ref().map(Value::to_string);
    Ok(ctx
        .client
        .call(route.method, &route.path, headers, body.as_deref())?)
}

/// Every authenticated route of the public API, aimed at Ann's records and job.
fn every_route(ann_job: &str, ann_key: &str) -> Vec<Route> {
    let text = Some(json!({"text": "Police arrested three suspects"}));
    vec![
        route("POST", "/api/v1/embeddings", Some(json!({"content": "x"}))),
        route("GET", "/api/v1/embeddings/tables", None),
        route("GET", "/api/v1/embeddings/jobs", None),
        route("GET", format!("/api/v1/embeddings/jobs/{ann_job}"), None),
        route(
            "POST",
            format!("/api/v1/embeddings/jobs/{ann_job}/retry"),
            None,
        ),
        route(
            "POST",
            "/api/v1/embeddings/backfill",
            Some(json!({"table": "claims"})),
        ),
        route("POST", "/api/v1/embeddings/embed", text.clone()),
        route(
            "POST",
            "/api/v1/embeddings/query",
            Some(json!({"vector": [0.1], "topK": 1})),
        ),
        route(
            "POST",
            "/api/v1/embeddings/search/claimSimilarity",
            text.clone(),
        ),
        route("POST", "/api/v1/embeddings/gray-zone/claimSimilarity", text),
        route("GET", "/api/v1/api-keys", None),
        route("POST", "/api/v1/api-keys", Some(json!({"name": "k"}))),
        route("DELETE", format!("/api/v1/api-keys/{ann_key}"), None),
        route("GET", "/api/v1/claims", None),
        route("POST", "/api/v1/claims", Some(json!({"content": "x"}))),
        route("GET", "/api/v1/claims/clm_a1", None),
        route(
            "PATCH",
            "/api/v1/claims/clm_a1",
            Some(json!({"story_id": "s"})),
        ),
        route("DELETE", "/api/v1/claims/clm_a1", None),
    ]
}

/// A job of Ann's, and an API key of hers that is revoked: (job id, key id, bearer header).
fn ann_job_and_revoked_key(ctx: &Ctx) -> Result<(String, String, String), Failed> {
    let ann_job = job_id(&super::enqueue(
        ctx,
        &ctx.ann,
        &json!({"content": "a job to look at"}),
    )?)?;
    let key = ctx.client.call(
        "POST",
        "/api/v1/api-keys",
        &[("cookie", &ctx.ann)],
        Some(&json!({"name": "matrix"}).to_string()),
    )?;
    expect(&key, 201, "ann creates a key")?;
    let ann_key = key.body["id"].as_str().ok_or("no key id")?.to_owned();
    let revoked_key = key.body["key"].as_str().ok_or("no key")?.to_owned();
    let revoke = ctx.client.call(
        "DELETE",
        &format!("/api/v1/api-keys/{ann_key}"),
        &[("cookie", &ctx.ann)],
        None,
    )?;
    expect(&revoke, 204, "ann revokes it")?;
    Ok((ann_job, ann_key, format!("Bearer {revoked_key}")))
}

fn every_route_refuses_bad_credentials_wrong_roles_and_other_tenants(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let (ann_job, ann_key, revoked) = ann_job_and_revoked_key(ctx)?;
    let garbage = "better-auth.session_token=garbage";
    let cases: [(&str, (&str, &str), u16); 8] = [
        ("no credentials", ("x-none", "1"), 401),
        ("forged signature", ("cookie", &ctx.forged), 401),
        ("garbage cookie", ("cookie", garbage), 401),
        ("expired session", ("cookie", &ctx.expired), 401),
        ("revoked API key", ("authorization", &revoked), 401),
        ("no active organization", ("cookie", &ctx.no_org), 403),
        ("not a member", ("cookie", &ctx.not_member), 403),
        (
            "a role the config grants nothing",
            ("cookie", &ctx.gus),
            403,
        ),
    ];
    for route in every_route(&ann_job, &ann_key) {
        for (what, header, status) in &cases {
            let reply = call(ctx, &route, &[*header])?;
            expect(
                &reply,
                *status,
                &format!("{what} on {} {}", route.method, route.path),
            )?;
            check(reply.body["error"]["code"].is_string(), || {
                format!(
                    "{} {}: no JSON error: {}",
                    route.method, route.path, reply.body
                )
            })?;
        }
    }

    wrong_roles_are_refused(ctx)?;
    other_tenants_find_nothing(ctx, &ann_job, &ann_key)
}

/// A viewer reads and searches but writes nothing; a member does not delete, backfill or
/// manage keys.
fn wrong_roles_are_refused(ctx: &Ctx) -> Result<(), Failed> {
    // Wrong role: a viewer reads and searches but writes nothing; a member does not delete,
    // backfill or manage keys.
    let forbidden: [(&str, Route); 7] = [
        (
            &ctx.vic,
            route("POST", "/api/v1/claims", Some(json!({"content": "x"}))),
        ),
        (
            &ctx.vic,
            route(
                "PATCH",
                "/api/v1/claims/clm_a1",
                Some(json!({"story_id": "s"})),
            ),
        ),
        (
            &ctx.vic,
            route("POST", "/api/v1/embeddings", Some(json!({"content": "x"}))),
        ),
        (
            &ctx.vic,
            route(
                "POST",
                "/api/v1/embeddings/embed",
                Some(json!({"text": "x"})),
            ),
        ),
        (&ctx.meg, route("DELETE", "/api/v1/claims/clm_a1", None)),
        (
            &ctx.meg,
            route(
                "POST",
                "/api/v1/embeddings/backfill",
                Some(json!({"table": "claims"})),
            ),
        ),
        (&ctx.meg, route("GET", "/api/v1/api-keys", None)),
    ];
    for (cookie, route) in &forbidden {
        let reply = call(ctx, route, &[("cookie", cookie)])?;
        expect(
            &reply,
            403,
            &format!("wrong role on {} {}", route.method, route.path),
        )?;
    }
    let reply = call(
        ctx,
        &route("GET", "/api/v1/claims/clm_a1", None),
        &[("cookie", &ctx.vic)],
    )?;
    expect(&reply, 200, "a viewer reads")?;

    Ok(())
}

/// Another tenant's record, job and key: not found, never forbidden, and untouched.
fn other_tenants_find_nothing(ctx: &Ctx, ann_job: &str, ann_key: &str) -> Result<(), Failed> {
    let other_tenant = [
        route("GET", "/api/v1/claims/clm_a1", None),
        route(
            "PATCH",
            "/api/v1/claims/clm_a1",
            Some(json!({"story_id": "s"})),
        ),
        route("DELETE", "/api/v1/claims/clm_a1", None),
        route(
            "POST",
            "/api/v1/embeddings",
            Some(json!({"content": "x", "table": "claims", "id": "clm_a1"})),
        ),
        route("GET", format!("/api/v1/embeddings/jobs/{ann_job}"), None),
        route(
            "POST",
            format!("/api/v1/embeddings/jobs/{ann_job}/retry"),
            None,
        ),
        route("DELETE", format!("/api/v1/api-keys/{ann_key}"), None),
    ];
    for route in &other_tenant {
        let reply = call(ctx, route, &[("cookie", &ctx.bob)])?;
        expect(
            &reply,
            404,
            &format!("bob on ann's {} {}", route.method, route.path),
        )?;
    }
    let listed = call(
        ctx,
        &route("GET", "/api/v1/claims", None),
        &[("cookie", &ctx.bob)],
    )?;
    check(!listed.body.to_string().contains("clm_a1"), || {
        format!("bob's list shows ann's claim: {}", listed.body)
    })?;
    // The record is untouched by all of it.
    let reply = call(
        ctx,
        &route("GET", "/api/v1/claims/clm_a1", None),
        &[("cookie", &ctx.ann)],
    )?;
    expect(&reply, 200, "ann's claim survives")?;
    check(reply.body["story_id"] == "story_1", || {
        format!("{}", reply.body)
    })
}

fn a_cookie_signed_by_better_auth_itself_is_accepted(ctx: &Ctx) -> Result<(), Failed> {
    let cookie = ctx.stack.better_auth_cookie("tok_ann")?;
    check(cookie == ctx.ann, || {
        format!("better-auth signs `{cookie}`, our helper `{}`", ctx.ann)
    })?;
    let reply = ctx.client.get("/api/v1/embeddings/tables", Some(&cookie))?;
    expect(&reply, 200, "the gateway accepts better-auth's own cookie")?;
    let secure = cookie.replacen("better-auth.", "__Secure-better-auth.", 1);
    let reply = ctx.client.get("/api/v1/embeddings/tables", Some(&secure))?;
    expect(&reply, 200, "and its __Secure- form")
}

/// How many of the newest 100 jobs of `org_a` are bound to record `id`.
fn jobs_of(ctx: &Ctx, id: &str) -> Result<usize, Failed> {
    let reply = ctx
        .client
        .get("/api/v1/embeddings/jobs?limit=100", Some(&ctx.ann))?;
    Ok(reply.body["jobs"]
        .as_array()
        .ok_or("no jobs")?
        .iter()
        .filter(|j| j["id"] == id)
        .count())
}

fn crud_embeds_on_insert_and_on_watched_changes_only(ctx: &Ctx) -> Result<(), Failed> {
    let send = |method, path: &str, body: Option<Value>| {
        ctx.client.call(
            method,
            path,
            &[("cookie", &ctx.meg)],
            body.map(|b| b.to_string()).as_deref(),
        )
    };
    let created = send(
        "POST",
        "/api/v1/claims",
        Some(json!({"content": "The harbour plan was approved", "story_id": "crud"})),
    )?;
    expect(&created, 201, "create")?;
    let id = created.body["record"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    check(created.body["record"]["organization_id"] == "org_a", || {
        format!("the firewall sets the organization: {}", created.body)
    })?;
    let insert_job = created.body["job"]["jobId"]
        .as_str()
        .ok_or("no job on insert")?
        .to_owned();
    let job = wait_final(ctx, &insert_job, Duration::from_secs(30))?;
    check(job["status"] == "done", || {
        format!("insert → job done: {job}")
    })?;
    let with_embedding = send(
        "GET",
        &format!("/api/v1/claims/{id}?include=embedding"),
        None,
    )?;
    check(
        with_embedding.body["embedding"].as_array().map(Vec::len) == Some(768),
        || format!("the record carries its embedding: {}", with_embedding.body),
    )?;

    let before = jobs_of(ctx, &id)?;
    let patched = send(
        "PATCH",
        &format!("/api/v1/claims/{id}"),
        Some(json!({"story_id": "crud-2"})),
    )?;
    expect(&patched, 200, "patch a field that is not watched")?;
    check(
        patched.body["job"].is_null() && jobs_of(ctx, &id)? == before,
        || {
            format!(
                "no new job for a field that is not watched: {}",
                patched.body
            )
        },
    )?;
    let patched = send(
        "PATCH",
        &format!("/api/v1/claims/{id}"),
        Some(json!({"content": "The harbour plan was rejected"})),
    )?;
    let update_job = patched.body["job"]["jobId"]
        .as_str()
        .ok_or("no job on a watched change")?;
    let job = wait_final(ctx, update_job, Duration::from_secs(30))?;
    check(
        job["status"] == "done" && jobs_of(ctx, &id)? == before + 1,
        || format!("one new job, done: {job}"),
    )?;

    list_then_delete(ctx, &id)
}

fn list_then_delete(ctx: &Ctx, id: &str) -> Result<(), Failed> {
    let send = |method, path: &str| ctx.client.call(method, path, &[("cookie", &ctx.meg)], None);
    let listed = send("GET", "/api/v1/claims?limit=1")?;
    expect(&listed, 200, "list")?;
    check(
        listed.body["records"].as_array().map(Vec::len) == Some(1)
            && listed.body["nextCursor"].is_string(),
        || format!("a page of one, and a cursor: {}", listed.body),
    )?;

    let deleted = ctx.client.call(
        "DELETE",
        &format!("/api/v1/claims/{id}"),
        &[("cookie", &ctx.ann)],
        None,
    )?;
    expect(&deleted, 204, "delete")?;
    expect(&send("GET", &format!("/api/v1/claims/{id}"))?, 404, "gone")?;
    let vectors = select(ctx, &format!(
        "SELECT count(vector) AS n FROM embedding_vectors WHERE organization_id = 'org_a' AND record_id = '{id}'"
    ))?;
    check(vectors.first().map(|r| &r["n"]) == Some(&json!(0)), || {
        format!("the record's vectors are deleted with it: {vectors:?}")
    })
}

fn a_backfill_embeds_what_lacks_a_current_embedding(ctx: &Ctx) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "backfill", 30)?;
    let log_start = ctx.stack.log("wrangler-dev.log").len();
    let reply = ctx.client.call(
        "POST",
        "/api/v1/embeddings/backfill",
        &[("cookie", &ctx.ann)],
        Some(&json!({"table": "claims"}).to_string()),
    )?;
    expect(&reply, 202, "backfill")?;
    let backfill_id = reply.body["backfillId"]
        .as_str()
        .ok_or("no backfillId")?
        .to_owned();
    let count = reply.body["count"].as_u64().ok_or("no count")?;
    check(count >= claims.len() as u64, || format!("{}", reply.body))?;
    // Its job rows go to D1 in one statement, not one each: D1 counts every statement of a
    // batch against the invocation's queries, 50 on Workers Free.
    let logged = ctx.stack.events(log_start, "backfill");
    let statements = logged
        .iter()
        .find(|fields| fields["backfill_id"] == backfill_id.as_str())
        .and_then(|fields| fields["d1_statements"].as_u64());
    check(statements.is_some_and(|n| n <= 3), || {
        format!("a backfill of {count} jobs prepared {statements:?} D1 statements: {logged:?}")
    })?;
    let listed = ctx.client.get(
        &format!("/api/v1/embeddings/jobs?backfillId={backfill_id}&limit=100"),
        Some(&ctx.ann),
    )?;
    let ids: Vec<String> = listed.body["jobs"]
        .as_array()
        .ok_or("no jobs")?
        .iter()
        .filter_map(|j| j["jobId"].as_str().map(str::to_owned))
        .collect();
    check(ids.len() as u64 == count, || {
        format!("the jobs route shows the backfill's {count} jobs")
    })?;
    let jobs = wait_all_final(ctx, &ids, Duration::from_mins(1))?;
    check(jobs.iter().all(|j| j["status"] == "done"), || {
        format!("{jobs:?}")
    })?;

    // Everything is current now: a second backfill finds nothing of these.
    let again = ctx.client.call(
        "POST",
        "/api/v1/embeddings/backfill",
        &[("cookie", &ctx.ann)],
        Some(&json!({"table": "claims"}).to_string()),
    )?;
    expect(&again, 202, "second backfill")?;
    check(again.body["count"].as_u64() < Some(count), || {
        format!("current records are not enqueued again: {}", again.body)
    })
}

fn an_api_key_works_for_its_organization_until_revoked(ctx: &Ctx) -> Result<(), Failed> {
    let created = ctx.client.call(
        "POST",
        "/api/v1/api-keys",
        &[("cookie", &ctx.ann)],
        Some(&json!({"name": "pipeline", "role": "member"}).to_string()),
    )?;
    expect(&created, 201, "create a key")?;
    let key = created.body["key"].as_str().ok_or("no key")?;
    let bearer = format!("Bearer {key}");
    let auth = [("authorization", bearer.as_str())];
    let reply = ctx.client.call(
        "POST",
        "/api/v1/embeddings",
        &auth,
        Some(&json!({"content": "sent with an API key"}).to_string()),
    )?;
    let job = job_id(&reply)?;
    let seen = ctx
        .client
        .get(&format!("/api/v1/embeddings/jobs/{job}"), Some(&ctx.ann))?;
    expect(&seen, 200, "the key's job belongs to ann's organization")?;
    let last_used = || -> Result<Value, Failed> {
        let listed = ctx
            .client
            .call("GET", "/api/v1/api-keys", &[("cookie", &ctx.ann)], None)?;
        let key_id = created.body["id"].clone();
        Ok(listed.body["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["id"] == key_id))
            .map(|k| k["lastUsedAt"].clone())
            .unwrap_or_default())
    };
    let first = last_used()?;
    check(first.is_string(), || {
        format!("the first use is written: {first}")
    })?;
    let reply = ctx
        .client
        .call("GET", "/api/v1/claims/clm_a1", &auth, None)?;
    expect(&reply, 200, "the key reads its organization's records")?;
    let second = last_used()?;
    check(second == first, || {
        format!("a use within the minute is not written again: {first} then {second}")
    })?;
    let listed = ctx
        .client
        .call("GET", "/api/v1/api-keys", &[("cookie", &ctx.ann)], None)?;
    check(!listed.body.to_string().contains(key), || {
        "a listed key shows no secret".into()
    })?;
    let id = created.body["id"].as_str().ok_or("no id")?;
    let revoked = ctx.client.call(
        "DELETE",
        &format!("/api/v1/api-keys/{id}"),
        &[("cookie", &ctx.ann)],
        None,
    )?;
    expect(&revoked, 204, "revoke")?;
    let reply = ctx
        .client
        .call("GET", "/api/v1/claims/clm_a1", &auth, None)?;
    expect(&reply, 401, "a revoked key")
}
