//! Reciprocal rank fusion: one ranking of records from the vector search's and the keyword
//! search's, each record scored `Σ 1 / (k + rank)` over the rankings that hold it (ranks from
//! 1; Cormack, Clarke and Büttcher, SIGIR 2009). It reads ranks only, so the two searches'
//! scores, on scales that do not compare, never meet; `k` (60 by default, as that paper and
//! most engines use) damps the weight of the first few ranks.

use std::collections::HashMap;
use std::hash::Hash;

/// The `k` of reciprocal rank fusion when a search service names none.
pub const DEFAULT_RRF_K: u32 = 60;

/// A record as fusion ranked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<T> {
    pub item: T,
    /// Its rank in the vector search's ranking, from 1, if that holds it.
    pub vector_rank: Option<u32>,
    /// Its rank in the keyword search's ranking, from 1, if that holds it.
    pub keyword_rank: Option<u32>,
    /// `Σ 1 / (k + rank)` over the two.
    pub score: f64,
}

/// Fuses two rankings, best first, each holding an item at most once: by score, highest first;
/// equal scores by the better of the two ranks, then by the vector rank held, then by item, so
/// that the order never depends on the order of a hash map.
pub fn reciprocal_rank_fusion<T: Clone + Eq + Hash + Ord>(
    vector: &[T],
    keyword: &[T],
    k: u32,
) -> Vec<Fused<T>> {
    let mut fused: Vec<Fused<T>> = Vec::with_capacity(vector.len() + keyword.len());
    let mut at: HashMap<&T, usize> = HashMap::with_capacity(vector.len() + keyword.len());
    let rank = |i: usize| u32::try_from(i + 1).unwrap_or(u32::MAX);
    for (i, item) in vector.iter().enumerate() {
        at.entry(item).or_insert_with(|| {
            fused.push(Fused {
                item: item.clone(),
                vector_rank: Some(rank(i)),
                keyword_rank: None,
                score: 0.0,
            });
            fused.len() - 1
        });
    }
    for (i, item) in keyword.iter().enumerate() {
        if let Some(&j) = at.get(item) {
            fused[j].keyword_rank.get_or_insert(rank(i));
        } else {
            at.insert(item, fused.len());
            fused.push(Fused {
                item: item.clone(),
                vector_rank: None,
                keyword_rank: Some(rank(i)),
                score: 0.0,
            });
        }
    }
    let term = |r: Option<u32>| r.map_or(0.0, |r| 1.0 / (f64::from(k) + f64::from(r)));
    for f in &mut fused {
        f.score = term(f.vector_rank) + term(f.keyword_rank);
    }
    let best = |f: &Fused<T>| {
        f.vector_rank
            .unwrap_or(u32::MAX)
            .min(f.keyword_rank.unwrap_or(u32::MAX))
    };
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| best(a).cmp(&best(b)))
            .then_with(|| {
                a.vector_rank
                    .unwrap_or(u32::MAX)
                    .cmp(&b.vector_rank.unwrap_or(u32::MAX))
            })
            .then_with(|| a.item.cmp(&b.item))
    });
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order<'a>(fused: &[Fused<&'a str>]) -> Vec<&'a str> {
        fused.iter().map(|f| f.item).collect::<Vec<_>>()
    }

    #[test]
    fn a_record_both_searches_found_outranks_one_that_only_one_did() {
        let fused = reciprocal_rank_fusion(&["a", "b", "c"], &["c", "d"], 60);
        // "b" (vector rank 2) and "d" (keyword rank 2) score alike; the vector rank goes first.
        assert_eq!(order(&fused), vec!["c", "a", "b", "d"]);
        let c = &fused[0];
        assert_eq!((c.vector_rank, c.keyword_rank), (Some(3), Some(1)));
        assert!((c.score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-15);
        let d = &fused[3];
        assert_eq!((d.vector_rank, d.keyword_rank), (None, Some(2)));
        assert!((d.score - 1.0 / 62.0).abs() < 1e-15);
    }

    #[test]
    fn k_weighs_the_first_ranks_against_agreement() {
        // "a" is first for vectors only; "b" second in both. A small k favours the first rank.
        let small = reciprocal_rank_fusion(&["a", "b"], &["x", "b", "a2"], 0);
        assert_eq!(small[0].item, "a");
        assert!((small[0].score - 1.0).abs() < 1e-15);
        let large = reciprocal_rank_fusion(&["a", "b"], &["x", "b", "a2"], 60);
        assert_eq!(large[0].item, "b");
    }

    #[test]
    fn equal_scores_go_by_the_better_rank_then_the_vector_rank_then_the_item() {
        // "v" and "w" are each first in one ranking: equal scores, equal best ranks.
        let fused = reciprocal_rank_fusion(&["v"], &["w"], 60);
        assert_eq!(order(&fused), vec!["v", "w"]);
        let fused = reciprocal_rank_fusion(&["w"], &["v"], 60);
        assert_eq!(order(&fused), vec!["w", "v"]);
        // Same ranks in the same ranking cannot happen; the item breaks what is left.
        let fused = reciprocal_rank_fusion::<&str>(&[], &[], 60);
        assert!(fused.is_empty());
        // 1/(60+1) + 1/(60+4) against 1/(60+2) + 1/(60+2) are not equal: scores decide first.
        let fused = reciprocal_rank_fusion(&["p", "q", "r", "s"], &["s", "q"], 60);
        assert_eq!(order(&fused)[..2], ["q", "s"]);
    }

    #[test]
    fn an_item_repeated_in_a_ranking_keeps_its_first_rank() {
        let fused = reciprocal_rank_fusion(&["a", "a"], &["b", "a", "a"], 60);
        let a = fused.iter().find(|f| f.item == "a").expect("a is fused");
        assert_eq!((a.vector_rank, a.keyword_rank), (Some(1), Some(2)));
        assert_eq!(fused.len(), 2);
    }

    #[test]
    fn ties_between_keyword_only_items_go_by_item() {
        let fused = reciprocal_rank_fusion(&["z"], &["y", "x"], 60);
        assert_eq!(order(&fused), vec!["z", "y", "x"]);
        let same = reciprocal_rank_fusion(&["m", "n"], &["n", "m"], 60);
        // Equal scores, equal best ranks: "m" holds the better vector rank.
        assert_eq!(order(&same), vec!["m", "n"]);
    }
}
