use super::*;

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn words(pairs: &[(&str, f32)]) -> Vec<(String, f32)> {
    pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
}

#[test]
fn semantic_ranks_by_the_vector_search_alone() {
    let ranked = rank(
        SearchMode::Semantic,
        &ids(&["a", "b"]),
        &words(&[("c", 9.0)]),
        60,
    );
    assert_eq!(
        ranked,
        vec![
            Ranked {
                id: "a".into(),
                vector_rank: Some(1),
                keyword_rank: None,
                keyword_score: None,
                fused_score: None
            },
            Ranked {
                id: "b".into(),
                vector_rank: Some(2),
                keyword_rank: None,
                keyword_score: None,
                fused_score: None
            },
        ]
    );
}

#[test]
fn keyword_ranks_by_the_keyword_search_alone_with_its_scores() {
    let ranked = rank(
        SearchMode::Keyword,
        &ids(&["a"]),
        &words(&[("c", 9.5), ("a", 2.0)]),
        60,
    );
    assert_eq!(ranked.len(), 2);
    assert_eq!(
        ranked[1],
        Ranked {
            id: "a".into(),
            vector_rank: None,
            keyword_rank: Some(2),
            keyword_score: Some(2.0),
            fused_score: None
        }
    );
    assert_eq!(
        (ranked[0].id.as_str(), ranked[0].keyword_score),
        ("c", Some(9.5))
    );
}

#[test]
fn hybrid_fuses_by_rank_and_keeps_each_searchs_place_and_score() {
    let ranked = rank(
        SearchMode::Hybrid,
        &ids(&["a", "b", "c"]),
        &words(&[("c", 7.0), ("d", 3.0)]),
        60,
    );
    let order: Vec<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, vec!["c", "a", "b", "d"]);
    assert_eq!(
        ranked[0],
        Ranked {
            id: "c".into(),
            vector_rank: Some(3),
            keyword_rank: Some(1),
            keyword_score: Some(7.0),
            fused_score: Some(1.0 / 63.0 + 1.0 / 61.0)
        }
    );
    assert_eq!(
        (ranked[1].keyword_rank, ranked[1].keyword_score),
        (None, None)
    );
    assert_eq!(
        (
            ranked[3].vector_rank,
            ranked[3].keyword_score,
            ranked[3].fused_score
        ),
        (None, Some(3.0), Some(1.0 / 62.0))
    );
    // k is the service's: k = 0 puts the first rank of either search first.
    assert_eq!(
        rank(
            SearchMode::Hybrid,
            &ids(&["a"]),
            &words(&[("b", 1.0), ("a", 0.5)]),
            0
        )[0]
        .id,
        "a"
    );
}

#[test]
fn a_record_repeated_in_the_keyword_ranking_keeps_its_first_score() {
    let ranked = rank(
        SearchMode::Hybrid,
        &[],
        &words(&[("a", 5.0), ("a", 1.0)]),
        60,
    );
    assert_eq!(ranked.len(), 1);
    assert_eq!(ranked[0].keyword_score, Some(5.0));
}

#[test]
fn hybrid_ranks_at_least_the_fusion_depth_of_each_search() {
    assert_eq!(SearchMode::Hybrid.depth(5), FUSION_DEPTH);
    assert_eq!(SearchMode::Hybrid.depth(80), 80);
    assert_eq!(SearchMode::Hybrid.depth(MAX_SEARCH_LIMIT), MAX_SEARCH_LIMIT);
    assert_eq!(SearchMode::Semantic.depth(5), 5);
    assert_eq!(SearchMode::Keyword.depth(7), 7);
    assert!(SearchMode::Semantic.uses_vectors() && !SearchMode::Semantic.uses_keywords());
    assert!(!SearchMode::Keyword.uses_vectors() && SearchMode::Keyword.uses_keywords());
    assert!(SearchMode::Hybrid.uses_vectors() && SearchMode::Hybrid.uses_keywords());
}

#[test]
fn modes_are_written_in_lower_case_and_semantic_is_the_default() {
    assert_eq!(SearchMode::default(), SearchMode::Semantic);
    for (mode, name) in [
        (SearchMode::Semantic, "\"semantic\""),
        (SearchMode::Keyword, "\"keyword\""),
        (SearchMode::Hybrid, "\"hybrid\""),
    ] {
        assert_eq!(serde_json::to_string(&mode).unwrap(), name);
        assert_eq!(serde_json::from_str::<SearchMode>(name).unwrap(), mode);
    }
    assert!(serde_json::from_str::<SearchMode>("\"Hybrid\"").is_err());
}

fn found(id: &str, score: f32) -> Found {
    Found {
        id: id.into(),
        score,
        metadata: serde_json::json!({"story_id": id})
            .as_object()
            .unwrap()
            .clone(),
    }
}

/// The plan of a `claimSimilarity` search (thresholds 0.90 / 0.85 / 0.75) in `mode`.
fn plan_of(config: &crate::Config, body: serde_json::Value) -> crate::search::Plan<'_> {
    serde_json::from_value::<crate::search::SearchRequest>(body)
        .unwrap()
        .plan(config, "claimSimilarity")
        .unwrap()
}

fn config() -> crate::Config {
    crate::Config::parse(include_str!("../../embeddings.toml")).unwrap()
}

#[test]
fn a_match_is_classified_by_its_vector_score_in_every_mode() {
    use crate::classify::Classification;
    let config = config();
    let vector = vec![found("a", 0.95), found("b", 0.80)];
    // "c" only the keyword side found: its exact vector score classifies it.
    let keyword = vec![(found("c", 0.87), 12.5), (found("a", 0.95), 3.0)];
    for mode in ["semantic", "keyword", "hybrid"] {
        let plan = plan_of(&config, serde_json::json!({"text": "x", "mode": mode}));
        for m in matches(&plan, vector.clone(), keyword.clone()) {
            let expected = match m.id.as_str() {
                "a" => Classification::Duplicate,
                "b" => Classification::Related,
                _ => Classification::Confirms,
            };
            assert_eq!(m.classification, expected, "{mode} {}", m.id);
            assert_eq!(m.metadata["story_id"], m.id.as_str());
        }
    }
    let plan = plan_of(&config, serde_json::json!({"text": "x", "mode": "keyword"}));
    let got = matches(&plan, vector.clone(), keyword.clone());
    assert_eq!(
        got.iter()
            .map(|m| (m.id.as_str(), m.score, m.keyword_rank, m.keyword_score))
            .collect::<Vec<_>>(),
        vec![
            ("c", 0.87, Some(1), Some(12.5)),
            ("a", 0.95, Some(2), Some(3.0))
        ]
    );
    let plan = plan_of(&config, serde_json::json!({"text": "x", "mode": "hybrid"}));
    let got = matches(&plan, vector, keyword);
    assert_eq!(
        got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["a", "c", "b"]
    );
    assert_eq!(
        (got[0].vector_rank, got[0].keyword_rank),
        (Some(1), Some(2))
    );
    assert!(got.iter().all(|m| m.fused_score.is_some()));
}

#[test]
fn a_record_both_searches_found_keeps_the_vector_searchs_score() {
    let config = config();
    let plan = plan_of(&config, serde_json::json!({"text": "x", "mode": "hybrid"}));
    // Vectorize's score and the exact one differ in the last bits; one match shows one score.
    let got = matches(
        &plan,
        vec![found("a", 0.5)],
        vec![(found("a", 0.5001), 1.0)],
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].score.to_bits(), 0.5f32.to_bits());
}

#[test]
fn matches_below_the_floor_go_and_at_most_the_limit_stay() {
    let config = config();
    let plan = plan_of(
        &config,
        serde_json::json!({"text": "x", "mode": "keyword", "threshold": 0.5, "limit": 2}),
    );
    let keyword = vec![
        (found("low", 0.2), 9.0),
        (found("a", 0.6), 8.0),
        (found("edge", 0.5), 7.0),
        (found("b", 0.9), 6.0),
    ];
    let got = matches(&plan, Vec::new(), keyword);
    assert_eq!(
        got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["a", "edge"]
    );
    assert_eq!(got[0].keyword_rank, Some(2));
    let plan = plan_of(&config, serde_json::json!({"text": "x", "limit": 1}));
    let got = matches(&plan, vec![found("a", 0.9), found("b", 0.8)], Vec::new());
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].vector_rank, got[0].keyword_rank, got[0].fused_score),
        (Some(1), None, None)
    );
}
