use super::*;
use crate::error::ErrorCode;
use crate::models;

fn config() -> Config {
    Config::parse(include_str!("../../embeddings.toml")).unwrap()
}

fn request(service: Option<&str>, model: Option<&str>) -> EmbedRequest {
    EmbedRequest {
        text: "hello".into(),
        service: service.map(Into::into),
        model: model.map(Into::into),
    }
}

#[test]
fn counts_are_whole_numbers_written_either_way() {
    let search = |v: serde_json::Value| serde_json::from_value::<SearchRequest>(v);
    for (limit, expected) in [
        (serde_json::json!(5), Some(5)),
        (serde_json::json!(5.0), Some(5)),
        (serde_json::json!(null), None),
    ] {
        let request = search(serde_json::json!({"text": "x", "limit": limit})).unwrap();
        assert_eq!(request.limit, expected, "{limit}");
    }
    for bad in [
        serde_json::json!(5.5),
        serde_json::json!(-1),
        serde_json::json!(4.3e9),
        serde_json::json!("5"),
    ] {
        assert!(
            search(serde_json::json!({"text": "x", "limit": bad})).is_err(),
            "{bad}"
        );
    }
    let query: QueryRequest =
        serde_json::from_value(serde_json::json!({"vector": [1.0], "topK": 7.0})).unwrap();
    assert_eq!(query.top_k, 7);
    let query: QueryRequest = serde_json::from_value(serde_json::json!({"vector": [1.0]})).unwrap();
    assert_eq!(query.top_k, 5, "the default");
    assert!(query.return_metadata, "metadata by default");
    assert!(serde_json::from_value::<QueryRequest>(
        serde_json::json!({"vector": [1.0], "topK": null})
    )
    .is_err());
}

#[test]
fn the_model_comes_from_the_service_the_request_or_the_default() {
    let config = config();
    assert_eq!(
        request(Some("claimSimilarity"), None)
            .resolve(&config)
            .unwrap()
            .dimensions,
        768
    );
    let small = request(None, Some("@cf/baai/bge-small-en-v1.5"));
    assert_eq!(small.resolve(&config).unwrap().dimensions, 384);
    assert_eq!(
        request(None, None).resolve(&config).unwrap().name,
        models::DEFAULT_MODEL
    );
}

#[test]
fn search_plans_take_the_services_defaults_and_check_the_rest() {
    let config = config();
    let request = |v: serde_json::Value| -> SearchRequest { serde_json::from_value(v).unwrap() };
    let plan = request(serde_json::json!({"text": "x"}))
        .plan(&config, "claimSimilarity")
        .unwrap();
    assert_eq!((plan.limit, plan.table.name.as_str()), (5, "claims"));
    assert!(plan.filter.is_empty());
    assert!(
        (plan.min_score - -1.0).abs() < f32::EPSILON,
        "no threshold: every score counts"
    );
    let plan = request(serde_json::json!({"text": "x", "limit": 7, "threshold": 0.7, "filters": {"story_id": "s1"}}))
        .plan(&config, "claimSimilarity")
        .unwrap();
    assert!((plan.limit, plan.min_score) == (7, 0.7) && !plan.filter.is_empty());
    for (body, status) in [
        (serde_json::json!({"text": "x", "limit": 0}), 400),
        (serde_json::json!({"text": "x", "limit": 101}), 400),
        (serde_json::json!({"text": "x", "threshold": 2.0}), 400),
        (
            serde_json::json!({"text": "x", "filters": {"organization_id": "org_b"}}),
            400,
        ),
        (serde_json::json!({"text": " "}), 400),
    ] {
        assert_eq!(
            request(body.clone())
                .plan(&config, "claimSimilarity")
                .unwrap_err()
                .status(),
            status,
            "{body}"
        );
    }
    assert_eq!(
        request(serde_json::json!({"text": "x"}))
            .plan(&config, "nope")
            .unwrap_err()
            .status(),
        404
    );

    let zone: GrayZoneRequest =
        serde_json::from_value(serde_json::json!({"text": "x", "max": 0.9})).unwrap();
    let (_, bounds) = zone.plan(&config, "claimSimilarity").unwrap();
    assert_eq!((bounds.min, bounds.max), (0.60, 0.9));
    let upside_down: GrayZoneRequest =
        serde_json::from_value(serde_json::json!({"text": "x", "min": 0.9, "max": 0.5})).unwrap();
    let (plan, zone) = upside_down.plan(&config, "claimSimilarity").unwrap();
    assert!(
        (plan.min_score - 0.9).abs() < f32::EPSILON,
        "nothing below `min` is kept"
    );
    let scores = vec![0.95_f32, 0.7, 0.4];
    assert_eq!(
        zone.split(scores, |s| *s),
        (vec![0.95], vec![]),
        "and the zone is empty"
    );
}

#[test]
fn a_query_finds_its_table_by_dimension() {
    let config = config();
    let query = |v: serde_json::Value| -> QueryRequest { serde_json::from_value(v).unwrap() };
    let (table, _) = query(serde_json::json!({"vector": vec![0.1; 768], "table": "evidence"}))
        .plan(&config)
        .unwrap();
    assert_eq!(table.name, "evidence");
    // claims and evidence both hold 768 dimensions: the caller must say which.
    let ambiguous = query(serde_json::json!({"vector": vec![0.1; 768]})).plan(&config);
    assert!(ambiguous
        .unwrap_err()
        .message
        .contains("name one in `table`"));
    let (table, _) = query(serde_json::json!({"vector": vec![0.1; 384], "filter": {"topic": "x"}}))
        .plan(&config)
        .unwrap();
    assert_eq!(table.name, "notes");
    // A named table takes the vector here; its dimensions are checked against the set the
    // table is searched in now.
    let (claims, _) = query(serde_json::json!({"vector": vec![0.1; 384], "table": "claims"}))
        .plan(&config)
        .unwrap();
    let refused = QueryRequest::check_dimensions(claims, claims.model(), 384).unwrap_err();
    assert_eq!(refused.status(), 400);
    assert!(
        refused.message.contains("768-dimension"),
        "{}",
        refused.message
    );
    let small = models::model("@cf/baai/bge-small-en-v1.5").unwrap();
    assert!(QueryRequest::check_dimensions(claims, small, 384).is_ok());
    for body in [
        serde_json::json!({"vector": vec![0.1; 1024]}),
        serde_json::json!({"vector": []}),
        serde_json::json!({"vector": vec![0.1; 768], "topK": 0}),
        serde_json::json!({"vector": vec![0.1; 768], "filter": {"secret": 1}}),
    ] {
        assert_eq!(query(body).plan(&config).unwrap_err().status(), 400);
    }
    assert_eq!(
        query(serde_json::json!({"vector": [0.1], "table": "nope"}))
            .plan(&config)
            .unwrap_err()
            .status(),
        404
    );
    // Empty or not finite (an f32 overflows past 3.4e38) is refused as such, whatever the
    // dimension.
    let refused = |vector: Vec<f32>| {
        let request = QueryRequest {
            vector,
            top_k: 5,
            filter: None,
            table: None,
            return_metadata: true,
        };
        request.plan(&config).unwrap_err().message
    };
    let message = "`vector` must be a non-empty array of finite numbers";
    assert_eq!(refused(Vec::new()), message);
    assert_eq!(refused(vec![f32::INFINITY; 384]), message);
    assert!(query(serde_json::json!({"vector": vec![1e39; 384]})).vector[0].is_infinite());
}

#[test]
fn bad_requests_are_refused() {
    let config = config();
    let code = |r: EmbedRequest| r.resolve(&config).unwrap_err().code;
    assert_eq!(code(request(Some("nope"), None)), ErrorCode::NotFound);
    assert_eq!(code(request(None, Some("@cf/x"))), ErrorCode::UnknownModel);
    assert_eq!(
        code(request(
            Some("claimSimilarity"),
            Some(models::DEFAULT_MODEL)
        )),
        ErrorCode::InvalidRequest
    );
    let blank = EmbedRequest {
        text: " ".into(),
        service: None,
        model: None,
    };
    assert!(blank
        .resolve(&config)
        .unwrap_err()
        .message
        .contains("`text`"));
}

#[test]
fn a_search_plans_its_mode_semantic_unless_it_names_another() {
    let config = config();
    let plan = |body: serde_json::Value| {
        serde_json::from_value::<SearchRequest>(body)
            .map(|r| r.plan(&config, "claimSimilarity").unwrap().mode)
    };
    assert_eq!(
        plan(serde_json::json!({"text": "x"})).unwrap(),
        SearchMode::Semantic
    );
    assert_eq!(
        plan(serde_json::json!({"text": "x", "mode": "hybrid"})).unwrap(),
        SearchMode::Hybrid
    );
    assert!(plan(serde_json::json!({"text": "x", "mode": "fuzzy"})).is_err());
    let zone: GrayZoneRequest =
        serde_json::from_value(serde_json::json!({"text": "x", "mode": "keyword"})).unwrap();
    assert_eq!(
        zone.plan(&config, "claimSimilarity").unwrap().0.mode,
        SearchMode::Keyword
    );
}
