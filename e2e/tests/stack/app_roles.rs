//! Members invited with each role the config names get from every route of the example app
//! what the config's access rules give that role, as they do from the gateway.

use shared::access::Action;
use shared::config::TableConfig;
use shared::Config;

use super::app::{app, join, post, sign_up, SignedUp};
use super::{check, expect, json, wait_final_as, Ctx, Duration, Failed, Value};

pub(crate) const TESTS: &[(&str, super::Test)] = &[(
    "each_role_gets_from_the_example_app_what_the_access_rules_give_it",
    each_role_gets_from_the_example_app_what_the_access_rules_give_it,
)];

/// The config the stack's workers were built from, and the example app typed by (its generated
/// access table is held to this file by `client-types --check`).
const CONFIG: &str = include_str!("../../../embeddings.toml");

/// The search service whose routes each role calls.
const SERVICE: &str = "claimSimilarity";

/// A body as a failure shows it: a vector's numbers would bury the rest.
fn brief(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// One app route, the gateway's route for the same call, and what each answers when allowed.
struct RouteCase {
    what: &'static str,
    app_path: String,
    app_body: Value,
    gateway_path: String,
    gateway_body: Value,
    success: u16,
    /// The actions it needs, each on the service's table (`true`) or project-wide.
    needs: Vec<(Action, bool)>,
}

fn each_role_gets_from_the_example_app_what_the_access_rules_give_it(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let config = Config::parse(CONFIG).map_err(|e| e.to_string())?;
    let service = config
        .service(SERVICE)
        .ok_or("embeddings.toml has no such service")?;
    let table: &TableConfig = config
        .table(&service.table)
        .ok_or("validated config: a service's table exists")?;
    let (app, _) = app(ctx)?;
    let owner = sign_up(ctx, "owner")?;
    let record = embedded_record(ctx, &owner, table)?;
    let roles = config.roles();
    let callers = members(ctx, &owner, &roles)?;
    let cases = route_cases(table, &record);

    let mut refused = 0;
    for (roles, cookie) in &callers {
        // The gateway's rule: one of the member's roles allowed is enough, for each action.
        let may = |action: Action, on_table: bool| {
            roles
                .iter()
                .any(|role| config.allows(on_table.then_some(table), role, action))
        };
        for case in &cases {
            let allowed = case.needs.iter().all(|&(action, on)| may(action, on));
            let status = if allowed { case.success } else { 403 };
            let via_app = post(&app, &case.app_path, cookie, &case.app_body)?;
            let via_gateway = post(&ctx.client, &case.gateway_path, cookie, &case.gateway_body)?;
            for (who, reply) in [("the app", &via_app), ("the gateway", &via_gateway)] {
                check(reply.status == status, || {
                    format!(
                        "{roles:?}, {}: {who} answered {} {}, the access rules say {status}",
                        case.what,
                        reply.status,
                        brief(&reply.body)
                    )
                })?;
            }
            if !allowed {
                refused += 1;
                check(
                    via_app.body["error"]["code"] == "forbidden"
                        && via_app.body == via_gateway.body,
                    || {
                        format!(
                            "{roles:?}, {}: the app refused with {}, the gateway with {}",
                            case.what, via_app.body, via_gateway.body
                        )
                    },
                )?;
            }
        }
    }
    // A config under which every role may do everything would test no refusal at all.
    check(refused > 0, || {
        "no role was refused anything: the config gives this test nothing to refuse".into()
    })
}

/// A record of the owner's organization in `table`, every embedded field filled, for the jobs
/// bound to one; embedded before anyone acts on it, as a record a member finds would be.
fn embedded_record(ctx: &Ctx, owner: &SignedUp, table: &TableConfig) -> Result<String, Failed> {
    let fields: serde_json::Map<String, Value> = table
        .embeddings
        .fields
        .iter()
        .map(|field| (field.clone(), json!("Police arrested three suspects")))
        .collect();
    let reply = post(
        &ctx.client,
        &format!("/api/v1/{}", table.name),
        &owner.cookie,
        &Value::Object(fields),
    )?;
    expect(&reply, 201, "the owner creates a record")?;
    let job = reply.body["job"]["jobId"]
        .as_str()
        .ok_or_else(|| format!("no job in {}", reply.body))?;
    wait_final_as(ctx, &owner.cookie, job, Duration::from_secs(30))?;
    Ok(reply.body["record"]["id"]
        .as_str()
        .ok_or_else(|| format!("no record id in {}", reply.body))?
        .to_owned())
}

/// The owner, and a member of the owner's organization for every other role, each alone; and
/// one with the last two together, the last first (better-auth stores `viewer,member`), so
/// that a check of the first role alone would not give it what the config gives. Each with
/// the cookie of a session in the organization.
fn members<'a>(
    ctx: &Ctx,
    owner: &SignedUp,
    roles: &'a [String],
) -> Result<Vec<(Vec<&'a str>, String)>, Failed> {
    let mut callers = vec![(vec!["owner"], owner.cookie.clone())];
    let mut joining: Vec<Vec<&str>> = roles
        .iter()
        .filter(|role| *role != "owner")
        .map(|role| vec![role.as_str()])
        .collect();
    if let [.., second_last, last] = roles {
        joining.push(vec![last.as_str(), second_last.as_str()]);
    }
    for roles in joining {
        let cookie = join(ctx, owner, &roles.join("-"), &roles)?;
        callers.push((roles, cookie));
    }
    Ok(callers)
}

/// Every app route, each beside the gateway's route for the same call and what it needs
/// there: a search or gray zone, `search` on the service's table; a raw embed, `embed`
/// project-wide (the gateway's embed route names no table); a job for free content, `embed`
/// project-wide; a job for a record, which replaces its vector, `embed` and `update` on its
/// table.
fn route_cases(table: &TableConfig, record: &str) -> [RouteCase; 5] {
    let text = json!({"text": "Police arrested three people after a robbery"});
    let content = json!({"content": "A text of the member's choosing"});
    let bound =
        json!({"content": "A text of the member's choosing", "table": table.name, "id": record});
    [
        RouteCase {
            what: "search",
            app_path: format!("/app/search/{SERVICE}"),
            app_body: text.clone(),
            gateway_path: format!("/api/v1/embeddings/search/{SERVICE}"),
            gateway_body: text.clone(),
            success: 200,
            needs: vec![(Action::Search, true)],
        },
        RouteCase {
            what: "gray zone",
            app_path: format!("/app/gray-zone/{SERVICE}"),
            app_body: text.clone(),
            gateway_path: format!("/api/v1/embeddings/gray-zone/{SERVICE}"),
            gateway_body: text.clone(),
            success: 200,
            needs: vec![(Action::Search, true)],
        },
        RouteCase {
            what: "embed",
            app_path: format!("/app/embed/{SERVICE}"),
            app_body: text.clone(),
            gateway_path: "/api/v1/embeddings/embed".into(),
            gateway_body: json!({"text": text["text"], "service": SERVICE}),
            success: 200,
            needs: vec![(Action::Embed, false)],
        },
        RouteCase {
            what: "a job for free content",
            app_path: "/app/pipeline".into(),
            app_body: content.clone(),
            gateway_path: "/api/v1/embeddings".into(),
            gateway_body: content,
            success: 202,
            needs: vec![(Action::Embed, false)],
        },
        RouteCase {
            what: "a job for a record",
            app_path: "/app/pipeline".into(),
            app_body: bound.clone(),
            gateway_path: "/api/v1/embeddings".into(),
            gateway_body: bound,
            success: 202,
            needs: vec![(Action::Embed, true), (Action::Update, true)],
        },
    ]
}
