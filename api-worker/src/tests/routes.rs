//! The route table: tables, unknown routes and methods, the `OpenAPI` document against the routes,
//! and the rate limits.

use serde_json::json;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fixtures::{app, as_ann, as_user, get_as_ann, send};

#[wasm_bindgen_test]
async fn tables_unknown_routes_and_methods() {
    let app = app();
    let response = get_as_ann(&app, "/api/v1/embeddings/tables").await;
    assert_eq!(
        response.body,
        json!({"tables": [
            {"name": "claims", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"},
            {"name": "notes", "embeddingColumn": "embedding", "model": "@cf/baai/bge-small-en-v1.5"},
            {"name": "evidence", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"}
        ]})
    );
    for path in [
        "/api/v1/nothing",
        "/api/v1/embeddings/nothing",
        "/api/v2/claims",
        "/api/v1/claims/a/b",
    ] {
        let response = send(&app, HttpRequest::new(Method::Get, path)).await;
        assert_eq!(response.status, 404, "{path}");
    }
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Delete,
            "/api/v1/embeddings/tables",
        )),
    )
    .await;
    assert_eq!(response.status, 405);
    // RFC 9110: a 405 says which methods the route takes.
    assert_eq!(
        response.headers,
        vec![("allow".to_owned(), "GET".to_owned())]
    );
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Other, "/api/v1/claims/clm_1")),
    )
    .await;
    assert_eq!(response.status, 405);
    assert_eq!(
        response.headers,
        vec![("allow".to_owned(), "GET, PATCH, DELETE".to_owned())]
    );
}

/// Every route, as a request without credentials, with what a routed request answers.
fn every_route() -> Vec<(Method, String)> {
    let job = Uuid::nil();
    let mut routes: Vec<(Method, String)> = [
        (Method::Get, "/api/v1/health"),
        (Method::Get, "/api/v1/openapi.json"),
        (Method::Post, "/api/v1/embeddings"),
        (Method::Get, "/api/v1/embeddings/tables"),
        (Method::Get, "/api/v1/embeddings/status"),
        (Method::Get, "/api/v1/embeddings/jobs"),
        (Method::Post, "/api/v1/embeddings/backfill"),
        (Method::Post, "/api/v1/embeddings/embed"),
        (Method::Post, "/api/v1/embeddings/query"),
        (Method::Get, "/api/v1/api-keys"),
        (Method::Post, "/api/v1/api-keys"),
        (Method::Delete, "/api/v1/api-keys/key_1"),
    ]
    .iter()
    .map(|(m, p)| (*m, (*p).to_owned()))
    .collect();
    routes.push((Method::Get, format!("/api/v1/embeddings/jobs/{job}")));
    routes.push((Method::Post, format!("/api/v1/embeddings/jobs/{job}/retry")));
    let config = worker_kit::config::config();
    for service in &config.services {
        for route in ["search", "gray-zone"] {
            routes.push((
                Method::Post,
                format!("/api/v1/embeddings/{route}/{}", service.name),
            ));
        }
    }
    for table in &config.tables {
        routes.push((
            Method::Get,
            format!("/api/v1/embeddings/status/{}", table.name),
        ));
        routes.push((
            Method::Post,
            format!("/api/v1/embeddings/tables/{}/migration", table.name),
        ));
        routes.push((Method::Get, format!("/api/v1/{}", table.name)));
        routes.push((Method::Post, format!("/api/v1/{}", table.name)));
        for method in [Method::Get, Method::Patch, Method::Delete] {
            routes.push((method, format!("/api/v1/{}/rec_1", table.name)));
        }
    }
    routes
}

/// Whether a concrete path fits a document path, `{name}` matching one segment.
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[wasm_bindgen_test]
async fn the_openapi_document_and_the_routes_agree_both_ways() {
    let app = app();
    let response = send(&app, HttpRequest::new(Method::Get, "/api/v1/openapi.json")).await;
    assert_eq!(response.status, 200);
    let document = response.body;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();

    // Every route is documented, with its method.
    for (method, path) in every_route() {
        let verb = method.as_str().to_ascii_lowercase();
        let documented = paths
            .iter()
            .any(|(template, item)| fits(template, &path) && item.get(&verb).is_some());
        assert!(documented, "{verb} {path} is not in the document");
    }
    // Every documented operation is a route: without credentials it is refused with 401 (or
    // answered, for the public ones), never 404 or 405.
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{jobId}", &Uuid::nil().to_string())
            .replace("{id}", "rec_1");
        for (verb, _) in item
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "parameters")
        {
            let method = match verb.as_str() {
                "get" => Method::Get,
                "post" => Method::Post,
                "patch" => Method::Patch,
                "delete" => Method::Delete,
                other => panic!("{other} {template}: a method the gateway does not route"),
            };
            operations += 1;
            let status = send(&app, HttpRequest::new(method, &path)).await.status;
            let public = item[verb.as_str()]["security"] == json!([]);
            let expected = if public { [200, 503] } else { [401, 401] };
            assert!(expected.contains(&status), "{verb} {template}: {status}");
        }
    }
    assert_eq!(operations, every_route().len(), "one operation per route");
    // Each table's write schema is its writable fields (and an id).
    let write = &document["components"]["schemas"]["Write_claims"]["properties"];
    let mut fields: Vec<&str> = write
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["content", "id", "story_id"]);
}

#[wasm_bindgen_test]
async fn each_organization_has_its_own_rate_per_kind_of_route_and_past_it_gets_429() {
    use shared::rate::RouteClass;

    let mut app = app();
    app.limits.limits.borrow_mut().push((RouteClass::Write, 3));
    let create = |user: &str, i: usize| {
        as_user(user, HttpRequest::new(Method::Post, "/api/v1/claims"))
            .with_json(&json!({"id": format!("rate_{user}_{i}"), "content": "text"}))
    };
    for i in 0..3 {
        assert_eq!(send(&app, create("ann", i)).await.status, 201);
    }
    // Past the rate a write is refused before it is read: a malformed one as well.
    let malformed =
        as_ann(HttpRequest::new(Method::Post, "/api/v1/claims")).with_json(&json!({"nope": 1}));
    assert_eq!(send(&app, malformed).await.status, 429);
    let refused = send(&app, create("ann", 3)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "rate_limited");
    assert!(refused
        .headers
        .contains(&("retry-after".into(), "10".into())));
    assert_eq!(
        app.queue.sent.borrow().len(),
        3,
        "nothing enqueued past the rate"
    );
    // Another kind of route, and another organization, keep their own counts.
    let read = get_as_ann(&app, "/api/v1/claims").await;
    assert_eq!(read.status, 200);
    assert_eq!(send(&app, create("zoe", 0)).await.status, 201);

    // A limiter that cannot answer lets requests through.
    app.limits.down = true;
    assert_eq!(send(&app, create("ann", 4)).await.status, 201);
}

#[wasm_bindgen_test]
fn the_rate_limits_are_the_wrangler_configs() {
    use shared::rate::RouteClass;

    let toml = include_str!("../../../wrangler/api-worker.toml");
    for class in RouteClass::ALL {
        let binding = format!("name = \"{}\"\nnamespace_id = \"", class.binding());
        let at = toml.find(&binding).unwrap_or_else(|| panic!("{binding}"));
        let simple = format!(
            "simple = {{ limit = {}, period = {} }}",
            class.limit(),
            class.period_seconds()
        );
        let rest = &toml[at..];
        let end = rest.find("\n\n").unwrap_or(rest.len());
        assert!(
            rest[..end].contains(&simple),
            "{}: {simple}",
            class.binding()
        );
    }
}
