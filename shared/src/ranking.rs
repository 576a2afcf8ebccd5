//! A search's mode, and how each mode ranks the records its searches found: `semantic` by the
//! vector search alone (cosine), `keyword` by the keyword index alone (BM25,
//! `shared::keywords`), `hybrid` by reciprocal rank fusion of the two (`shared::fusion`).
//!
//! Whatever the mode, a match's `score` is its vector score, the cosine of the query's vector
//! and the record's, and classification and the gray zone read that, so that `DUPLICATE`
//! means the same in every mode. What each mode adds is how the matches are ordered, and each
//! match says where each search placed it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::MAX_SEARCH_LIMIT;
use crate::fusion::reciprocal_rank_fusion;
use crate::search::{Match, Plan};

/// How a search finds and orders its matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// By meaning: the records whose vectors are nearest the query's.
    #[default]
    Semantic,
    /// By words: the records holding the query's words, the rarer words weighing more.
    Keyword,
    /// Both, fused by rank: a record either search ranks high comes first, and one both rank
    /// high before it.
    Hybrid,
}

impl SearchMode {
    pub fn uses_vectors(self) -> bool {
        self != SearchMode::Keyword
    }

    pub fn uses_keywords(self) -> bool {
        self != SearchMode::Semantic
    }

    /// How many records each search of a request for `limit` matches ranks. A hybrid search
    /// fuses at least [`FUSION_DEPTH`] of each, so that a record one search ranks just past
    /// `limit` can still rise by the other's vote.
    pub fn depth(self, limit: u32) -> u32 {
        match self {
            SearchMode::Hybrid => limit.clamp(FUSION_DEPTH, MAX_SEARCH_LIMIT),
            SearchMode::Semantic | SearchMode::Keyword => limit,
        }
    }
}

/// The fewest records each search ranks for a hybrid search.
pub const FUSION_DEPTH: u32 = 50;

/// A record as its mode ranked it, best first: where each search placed it (from 1), its
/// keyword score (BM25, higher is better), and in `hybrid` mode its fused score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub id: String,
    pub vector_rank: Option<u32>,
    pub keyword_rank: Option<u32>,
    pub keyword_score: Option<f32>,
    pub fused_score: Option<f64>,
}

/// The records of `vector` (the vector search's ranking, best first) and of `keyword` (the
/// keyword search's, best first, with scores) as `mode` orders them; a search the mode does
/// not use is ignored. Fusion uses `k`.
pub fn rank(mode: SearchMode, vector: &[String], keyword: &[(String, f32)], k: u32) -> Vec<Ranked> {
    let rank_of = |i: usize| Some(u32::try_from(i + 1).unwrap_or(u32::MAX));
    match mode {
        SearchMode::Semantic => vector
            .iter()
            .enumerate()
            .map(|(i, id)| Ranked {
                id: id.clone(),
                vector_rank: rank_of(i),
                keyword_rank: None,
                keyword_score: None,
                fused_score: None,
            })
            .collect(),
        SearchMode::Keyword => keyword
            .iter()
            .enumerate()
            .map(|(i, (id, score))| Ranked {
                id: id.clone(),
                vector_rank: None,
                keyword_rank: rank_of(i),
                keyword_score: Some(*score),
                fused_score: None,
            })
            .collect(),
        SearchMode::Hybrid => {
            let scores: HashMap<&str, f32> = keyword
                .iter()
                .rev()
                .map(|(id, score)| (id.as_str(), *score))
                .collect();
            let words: Vec<String> = keyword.iter().map(|(id, _)| id.clone()).collect();
            reciprocal_rank_fusion(vector, &words, k)
                .into_iter()
                .map(|fused| Ranked {
                    keyword_score: fused
                        .keyword_rank
                        .and_then(|_| scores.get(fused.item.as_str()).copied()),
                    id: fused.item,
                    vector_rank: fused.vector_rank,
                    keyword_rank: fused.keyword_rank,
                    fused_score: Some(fused.score),
                })
                .collect()
        }
    }
}

/// A record a search found: its id, its vector score and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    pub score: f32,
    pub metadata: Map<String, Value>,
}

/// The matches of `plan`: the records of `vector` (the vector search's, best first) and of
/// `keyword` (the keyword search's, best first, each with its BM25 score) as the plan's mode
/// ranks them, none scoring below the plan's floor, at most its limit, each classified by the
/// service's thresholds. A record both found keeps the vector search's score.
pub fn matches(plan: &Plan<'_>, vector: Vec<Found>, keyword: Vec<(Found, f32)>) -> Vec<Match> {
    let vector_ids: Vec<String> = vector.iter().map(|f| f.id.clone()).collect();
    let keyword_ranking: Vec<(String, f32)> = keyword
        .iter()
        .map(|(f, score)| (f.id.clone(), *score))
        .collect();
    let mut found: HashMap<String, Found> = keyword
        .into_iter()
        .rev()
        .map(|(f, _)| (f.id.clone(), f))
        .collect();
    found.extend(vector.into_iter().rev().map(|f| (f.id.clone(), f)));
    let thresholds = plan.service.thresholds;
    rank(plan.mode, &vector_ids, &keyword_ranking, plan.service.rrf_k)
        .into_iter()
        .filter_map(|ranked| {
            let found = found.remove(&ranked.id)?;
            (found.score >= plan.min_score).then(|| Match {
                id: found.id,
                score: found.score,
                classification: thresholds.classify(found.score),
                metadata: found.metadata,
                vector_rank: ranked.vector_rank,
                keyword_score: ranked.keyword_score,
                keyword_rank: ranked.keyword_rank,
                fused_score: ranked.fused_score,
            })
        })
        .take(usize::try_from(plan.limit).unwrap_or(usize::MAX))
        .collect()
}

#[cfg(test)]
#[path = "ranking_tests.rs"]
mod tests;
