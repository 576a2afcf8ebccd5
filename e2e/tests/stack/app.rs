//! The example application Worker (`example-app/`), as a customer's app: better-auth signs
//! two users up into two organizations, and the cookies it sets work in the app and in the
//! gateway alike. The app's routes reach search-worker over Workers RPC through
//! `d1-embeddings-client`; their answers must be the gateway's (which reaches the same methods
//! through the Rust client), an organization's calls never see another's records, and bad input
//! is refused with the gateway's errors. What each role gets from the app is in `app_roles`.

use std::time::Instant;

use e2e::{Client, Reply};

use super::backends::{create_records, settle, Backend};
use super::{check, expect, json, wait_final_as, Ctx, Duration, Failed, Value};

pub(crate) const BACKEND_TESTS: &[(&str, super::backends::BackendTest)] = &[(
    "the_example_app_answers_as_the_gateway_for_each_organization_alone",
    the_example_app_answers_as_the_gateway_for_each_organization_alone,
)];

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "the_example_apps_custom_pipeline_send_reaches_the_consumer",
        the_example_apps_custom_pipeline_send_reaches_the_consumer,
    ),
    (
        "a_sign_out_in_the_app_closes_the_gateway_within_the_stated_five_seconds",
        a_sign_out_in_the_app_closes_the_gateway_within_the_stated_five_seconds,
    ),
];

/// The bound docs/api.md ("Credentials") gives: the gateway trusts a session row it read for 5 s.
const SESSION_TRUST: Duration = Duration::from_secs(5);

/// A user better-auth signed up, with the organization they created and made active.
pub(crate) struct SignedUp {
    pub(crate) cookie: String,
    pub(crate) organization_id: String,
}

pub(crate) fn app(ctx: &Ctx) -> Result<(Client, String), Failed> {
    let url = ctx
        .stack
        .example_app_url
        .clone()
        .ok_or("the stack runs without the example app")?;
    Ok((Client::new(&url), url))
}

/// A user better-auth signed up, in no organization yet.
struct Registered {
    cookie: String,
    email: String,
    /// Unique to this user, for names that must be.
    unique: String,
}

/// Signs `name` up through better-auth.
fn register(ctx: &Ctx, name: &str) -> Result<Registered, Failed> {
    let (app, origin) = app(ctx)?;
    let unique = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    let email = format!("{unique}@example.com");
    let reply = app.call(
        "POST",
        "/api/auth/sign-up/email",
        &[("origin", &origin)],
        Some(
            &json!({"name": name, "email": email, "password": "a long enough password"})
                .to_string(),
        ),
    )?;
    expect(&reply, 200, "better-auth sign-up")?;
    Ok(Registered {
        cookie: session_cookie(&reply)?,
        email,
        unique,
    })
}

/// Signs `name` up through better-auth, creates an organization and makes it active.
pub(crate) fn sign_up(ctx: &Ctx, name: &str) -> Result<SignedUp, Failed> {
    let (app, origin) = app(ctx)?;
    let Registered { cookie, unique, .. } = register(ctx, name)?;
    let headers = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let slug = unique;
    let reply = app.call(
        "POST",
        "/api/auth/organization/create",
        &headers,
        Some(&json!({"name": format!("{name}'s newsroom"), "slug": slug}).to_string()),
    )?;
    expect(&reply, 200, "better-auth organization/create")?;
    let organization_id = reply.body["id"]
        .as_str()
        .ok_or_else(|| format!("no organization id in {}", reply.body))?
        .to_owned();
    let reply = app.call(
        "POST",
        "/api/auth/organization/set-active",
        &headers,
        Some(&json!({"organizationId": organization_id}).to_string()),
    )?;
    expect(&reply, 200, "better-auth organization/set-active")?;
    // The same cookie, unless better-auth rotated it on the way.
    let cookie = session_cookie(&reply).unwrap_or(cookie);
    Ok(SignedUp {
        cookie,
        organization_id,
    })
}

/// Signs `name` up, has `owner` invite them into the owner's organization with `roles`, accepts
/// the invitation and makes the organization active: the cookie of that session.
pub(crate) fn join(
    ctx: &Ctx,
    owner: &SignedUp,
    name: &str,
    roles: &[&str],
) -> Result<String, Failed> {
    let (app, origin) = app(ctx)?;
    let user = register(ctx, name)?;
    let reply = app.call(
        "POST",
        "/api/auth/organization/invite-member",
        &[("cookie", &owner.cookie), ("origin", &origin)],
        Some(
            &json!({"email": user.email, "role": roles, "organizationId": owner.organization_id})
                .to_string(),
        ),
    )?;
    expect(
        &reply,
        200,
        &format!("the owner invites {name} as {roles:?}"),
    )?;
    let invitation = reply.body["id"]
        .as_str()
        .ok_or_else(|| format!("no invitation id in {}", reply.body))?;
    let headers = [
        ("cookie", user.cookie.as_str()),
        ("origin", origin.as_str()),
    ];
    let reply = app.call(
        "POST",
        "/api/auth/organization/accept-invitation",
        &headers,
        Some(&json!({"invitationId": invitation}).to_string()),
    )?;
    expect(&reply, 200, &format!("{name} accepts the invitation"))?;
    check(reply.body["member"]["role"] == roles.join(","), || {
        format!("{name} joined as {roles:?}: {}", reply.body)
    })?;
    let reply = app.call(
        "POST",
        "/api/auth/organization/set-active",
        &headers,
        Some(&json!({"organizationId": owner.organization_id}).to_string()),
    )?;
    expect(&reply, 200, &format!("{name} sets the organization active"))?;
    Ok(session_cookie(&reply).unwrap_or(user.cookie))
}

fn session_cookie(reply: &Reply) -> Result<String, Failed> {
    Ok(reply
        .cookies
        .iter()
        .find(|c| c.starts_with("better-auth.session_token="))
        .ok_or_else(|| format!("no session cookie set: {:?}", reply.cookies))?
        .clone())
}

pub(crate) fn post(
    client: &Client,
    path: &str,
    cookie: &str,
    body: &Value,
) -> Result<Reply, Failed> {
    Ok(client.call("POST", path, &[("cookie", cookie)], Some(&body.to_string()))?)
}

/// `(id, classification, score)` of each match, in order.
fn matches(list: &Value) -> Result<Vec<(String, String, f64)>, Failed> {
    list.as_array()
        .ok_or_else(|| format!("not a list of matches: {list}"))?
        .iter()
        .map(|m| {
            Ok((
                m["id"].as_str().ok_or("no id")?.to_owned(),
                m["classification"]
                    .as_str()
                    .ok_or("no classification")?
                    .to_owned(),
                m["score"].as_f64().ok_or("no score")?,
            ))
        })
        .collect()
}

fn same_matches(what: &str, app: &Value, gateway: &Value) -> Result<(), Failed> {
    let (a, g) = (matches(app)?, matches(gateway)?);
    check(
        a.len() == g.len()
            && a.iter()
                .zip(&g)
                .all(|(a, g)| a.0 == g.0 && a.1 == g.1 && (a.2 - g.2).abs() < 1e-6),
        || format!("{what}: the app answered {app}, the gateway {gateway}"),
    )
}

fn the_example_app_answers_as_the_gateway_for_each_organization_alone(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let (app, _) = app(ctx)?;
    let (ann, bob) = (sign_up(ctx, "ann")?, sign_up(ctx, "bob")?);
    check(ann.organization_id != bob.organization_id, || {
        "two sign-ups share an organization".into()
    })?;
    // better-auth's own cookie opens the gateway: its records, created there, are embedded.
    let text = "Police arrested three suspects after the downtown robbery";
    let ann_ids = create_records(
        ctx,
        backend,
        &ann.cookie,
        &[
            (text, "s1"),
            (
                "Three people were detained by police over the robbery",
                "s1",
            ),
            ("The council approved the new budget for parks", "s2"),
        ],
    )?;
    let bob_ids = create_records(ctx, backend, &bob.cookie, &[(text, "s1")])?;
    settle(ctx, backend)?;

    let service = backend.service;
    let query = "Police arrested three people after a robbery";
    let via_app = post(
        &app,
        &format!("/app/search/{service}"),
        &ann.cookie,
        &json!({"text": query}),
    )?;
    expect(&via_app, 200, "search through the app")?;
    let via_gateway = post(
        &ctx.client,
        &format!("/api/v1/embeddings/search/{service}"),
        &ann.cookie,
        &json!({"text": query}),
    )?;
    expect(&via_gateway, 200, "search through the gateway")?;
    same_matches("search", &via_app.body, &via_gateway.body)?;
    let found: Vec<String> = matches(&via_app.body)?.into_iter().map(|m| m.0).collect();
    check(
        !found.is_empty() && found.iter().all(|id| ann_ids.contains(id)),
        || format!("Ann's search found {found:?}; her records are {ann_ids:?}, Bob's {bob_ids:?}"),
    )?;

    // Bob's identical record is his alone, and Ann's are not his.
    let bobs = post(
        &app,
        &format!("/app/search/{service}"),
        &bob.cookie,
        &json!({"text": text}),
    )?;
    expect(&bobs, 200, "Bob's search through the app")?;
    let found: Vec<String> = matches(&bobs.body)?.into_iter().map(|m| m.0).collect();
    check(found == bob_ids, || {
        format!("Bob's search found {found:?}, not only his {bob_ids:?}")
    })?;
    let top = matches(&bobs.body)?;
    check(top.first().is_some_and(|m| m.1 == "DUPLICATE"), || {
        format!("the same text is a DUPLICATE: {}", bobs.body)
    })?;

    // A metadata field as a shorthand option is the filter it stands for.
    let shorthand = post(
        &app,
        &format!("/app/search/{service}"),
        &ann.cookie,
        &json!({"text": query, "storyId": "s2"}),
    )?;
    expect(&shorthand, 200, "search with a storyId")?;
    let filtered = post(
        &ctx.client,
        &format!("/api/v1/embeddings/search/{service}"),
        &ann.cookie,
        &json!({"text": query, "filters": {"story_id": "s2"}}),
    )?;
    same_matches("storyId shorthand", &shorthand.body, &filtered.body)?;
    check(
        matches(&shorthand.body)?
            .iter()
            .map(|m| &m.0)
            .eq([&ann_ids[2]]),
        || format!("story s2 holds one record: {}", shorthand.body),
    )?;

    gray_zone_and_embed_agree(ctx, &app, service, &ann.cookie, query)?;
    large_numbers_cross(ctx, &app, service, &ann.cookie)?;
    bad_input_is_refused(&app, service, &ann.cookie)
}

/// A filter value past 2^53 is a JS number on the way, as for any JS reader of the API: a
/// search that finds nothing, not a failed call (the Rust client once refused to send it).
fn large_numbers_cross(ctx: &Ctx, app: &Client, service: &str, cookie: &str) -> Result<(), Failed> {
    let body = json!({"text": "x", "filters": {"story_id": 1_036_846_076_197_336_320_u64}});
    for (client, path) in [
        (app, format!("/app/search/{service}")),
        (&ctx.client, format!("/api/v1/embeddings/search/{service}")),
    ] {
        let reply = post(client, &path, cookie, &body)?;
        check(
            reply.status == 200 && reply.body.as_array().is_some_and(Vec::is_empty),
            || {
                format!(
                    "{path} with a large number: {} {}",
                    reply.status, reply.body
                )
            },
        )?;
    }
    Ok(())
}

fn gray_zone_and_embed_agree(
    ctx: &Ctx,
    app: &Client,
    service: &str,
    cookie: &str,
    query: &str,
) -> Result<(), Failed> {
    // The gray zone splits as the gateway's does.
    let zone = json!({"text": query, "min": 0.3, "max": 0.8});
    let via_app = post(app, &format!("/app/gray-zone/{service}"), cookie, &zone)?;
    expect(&via_app, 200, "gray zone through the app")?;
    let via_gateway = post(
        &ctx.client,
        &format!("/api/v1/embeddings/gray-zone/{service}"),
        cookie,
        &zone,
    )?;
    expect(&via_gateway, 200, "gray zone through the gateway")?;
    same_matches(
        "high confidence",
        &via_app.body["highConfidence"],
        &via_gateway.body["high_confidence"],
    )?;
    same_matches(
        "gray zone",
        &via_app.body["grayZone"],
        &via_gateway.body["gray_zone"],
    )?;

    // The raw vector is the service model's, the same either way.
    let via_app = post(
        app,
        &format!("/app/embed/{service}"),
        cookie,
        &json!({"text": query}),
    )?;
    expect(&via_app, 200, "embed through the app")?;
    let via_gateway = post(
        &ctx.client,
        "/api/v1/embeddings/embed",
        cookie,
        &json!({"text": query, "service": service}),
    )?;
    expect(&via_gateway, 200, "embed through the gateway")?;
    // As numbers: JSON writes the zero of a padded dimension as `0` from the app, `0.0` here.
    let vector = |body: &Value| -> Vec<f64> {
        body["vector"]
            .as_array()
            .map_or_else(Vec::new, |v| v.iter().filter_map(Value::as_f64).collect())
    };
    check(vector(&via_app.body) == vector(&via_gateway.body), || {
        "the app's vector is not the gateway's".into()
    })?;

    check(
        via_app.body["vector"]
            .as_array()
            .is_some_and(|v| v.len() == 768),
        || "a 768-dimension vector".into(),
    )
}

/// Bad input is refused with the gateway's error codes, before any search.
fn bad_input_is_refused(app: &Client, service: &str, cookie: &str) -> Result<(), Failed> {
    for (path, body, status, code) in [
        (
            format!("/app/search/{service}"),
            json!({"text": ""}),
            400,
            "invalid_request",
        ),
        (
            format!("/app/search/{service}"),
            json!({"text": "x", "filters": {"nope": 1}}),
            400,
            "invalid_request",
        ),
        (
            format!("/app/search/{service}"),
            json!({"text": "x", "limit": 1000}),
            400,
            "invalid_request",
        ),
        (
            "/app/search/noSuchService".to_owned(),
            json!({"text": "x"}),
            404,
            "not_found",
        ),
        (
            format!("/app/gray-zone/{service}"),
            json!({"text": "x", "min": "low"}),
            400,
            "invalid_request",
        ),
    ] {
        let reply = post(app, &path, cookie, &body)?;
        check(
            reply.status == status && reply.body["error"]["code"] == code,
            || {
                format!(
                    "{path} {body}: expected {status} {code}, got {} {}",
                    reply.status, reply.body
                )
            },
        )?;
    }
    let reply = app.post(
        &format!("/app/search/{service}"),
        None,
        &json!({"text": "x"}).to_string(),
    )?;
    expect(&reply, 401, "a search without a session")?;
    Ok(())
}

fn the_example_apps_custom_pipeline_send_reaches_the_consumer(ctx: &Ctx) -> Result<(), Failed> {
    let (app, _) = app(ctx)?;
    let (ann, bob) = (sign_up(ctx, "ann")?, sign_up(ctx, "bob")?);
    let reply = post(
        &app,
        "/app/pipeline",
        &ann.cookie,
        &json!({"content": "A custom pipeline's text, sent by the app"}),
    )?;
    expect(&reply, 202, "a custom-pipeline send")?;
    let job_id = reply.body["jobId"].as_str().ok_or("no jobId")?.to_owned();
    // The gateway made no row for it: the consumer does, when the job is delivered.
    let started = Instant::now();
    while ctx
        .client
        .get(
            &format!("/api/v1/embeddings/jobs/{job_id}"),
            Some(&ann.cookie),
        )?
        .status
        == 404
    {
        check(started.elapsed() < Duration::from_secs(30), || {
            format!("the app's job {job_id} never reached the consumer")
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let done = wait_final_as(ctx, &ann.cookie, &job_id, Duration::from_secs(30))?;
    check(done["status"] == "done", || {
        format!("the app's job: {done}")
    })?;
    // The consumer kept it in Ann's organization: Bob's session cannot see it.
    let reply = ctx.client.get(
        &format!("/api/v1/embeddings/jobs/{job_id}"),
        Some(&bob.cookie),
    )?;
    expect(&reply, 404, "another organization's job")?;
    // A job the consumer would refuse is refused by the app's typed constructor first.
    let reply = post(
        &app,
        "/app/pipeline",
        &ann.cookie,
        &json!({"content": "x", "table": "claims"}),
    )?;
    check(reply.status == 400, || {
        format!("a table without an id: {} {}", reply.status, reply.body)
    })?;
    Ok(())
}

fn a_sign_out_in_the_app_closes_the_gateway_within_the_stated_five_seconds(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let (app, origin) = app(ctx)?;
    let ann = sign_up(ctx, "ann")?;
    let reply = ctx.client.get("/api/v1/claims", Some(&ann.cookie))?;
    expect(&reply, 200, "the gateway with better-auth's cookie")?;
    let signed_out = Instant::now();
    let reply = app.call(
        "POST",
        "/api/auth/sign-out",
        &[("cookie", &ann.cookie), ("origin", &origin)],
        Some("{}"),
    )?;
    expect(&reply, 200, "better-auth sign-out")?;
    loop {
        let status = ctx.client.get("/api/v1/claims", Some(&ann.cookie))?.status;
        if status == 401 {
            return Ok(());
        }
        check(status == 200, || {
            format!("the signed-out cookie answered {status}")
        })?;
        check(
            signed_out.elapsed() < SESSION_TRUST + Duration::from_millis(750),
            || {
                format!(
                    "the gateway still took the session {:?} after the sign-out",
                    signed_out.elapsed()
                )
            },
        )?;
        std::thread::sleep(Duration::from_millis(100));
    }
}
