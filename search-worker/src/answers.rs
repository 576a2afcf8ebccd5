//! The last answers a snapshot gave, so that the same question of an unchanged table (a client's
//! retry, a page shown again, the same query vector) is answered without scanning it again.
//!
//! An answer is a function of the question and of the snapshot's rows, and the rows are a
//! function of `max_seq`: every write moves its row's `seq` past all others, so a snapshot that
//! has caught up to the same `max_seq` holds the same version of every row, whether it is the one
//! that answered or one read again after an eviction. An answer is kept with the `max_seq` it
//! was computed at, given only while the snapshot is still there, and taken only if the snapshot
//! did not move while the answer was scored. The catch-up that comes before is never skipped:
//! a write the consumer committed moves `max_seq`, and the question is answered anew.

use std::collections::VecDeque;

use serde_json::{Map, Value};
use shared::filter::Filter;

use crate::cache::json_bytes;

/// A nearest record: its id, exact score and metadata.
pub(crate) type Nearest = (String, f32, Map<String, Value>);

/// Answers a snapshot keeps at most, the latest first.
pub(crate) const ANSWERS_KEPT: usize = 8;

/// What was asked: the normalised query vector, bit for bit, and every bound of the answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    pub query: Vec<f32>,
    pub filter: Filter,
    pub limit: usize,
    pub min_score: f32,
}

impl Question {
    fn bytes(&self) -> usize {
        self.query.len() * 4 + 64
    }
}

#[derive(Debug, Default)]
pub(crate) struct Answers {
    /// Each question with the `max_seq` its answer was computed at, and the answer.
    kept: VecDeque<(Question, i64, Vec<Nearest>)>,
    bytes: usize,
}

impl Answers {
    /// The answer to `question` of a snapshot at `max_seq`, if one was kept.
    pub(crate) fn get(&mut self, question: &Question, max_seq: i64) -> Option<Vec<Nearest>> {
        let at = self
            .kept
            .iter()
            .position(|(q, seq, _)| *seq == max_seq && q == question)?;
        let entry = self.kept.remove(at)?;
        let answer = entry.2.clone();
        self.kept.push_front(entry);
        Some(answer)
    }

    /// Keeps `answer`, computed at `at`, for a snapshot now at `max_seq`: only if it did not move
    /// meanwhile. Answers of an older `max_seq` can no longer be given, and go.
    pub(crate) fn put(&mut self, question: Question, at: i64, max_seq: i64, answer: Vec<Nearest>) {
        if at != max_seq {
            return;
        }
        self.kept
            .retain(|(q, seq, _)| *seq == max_seq && *q != question);
        self.kept.push_front((question, at, answer));
        self.kept.truncate(ANSWERS_KEPT);
        self.bytes = self.kept.iter().map(entry_bytes).sum();
    }

    /// What the kept answers take, roughly, for the cache's budget.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

fn entry_bytes((question, _, answer): &(Question, i64, Vec<Nearest>)) -> usize {
    question.bytes()
        + answer
            .iter()
            .map(|(id, _, metadata)| id.len() + 64 + json_bytes(metadata))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn question(x: f32, limit: usize) -> Question {
        Question {
            query: vec![x, 1.0 - x],
            filter: Filter::default(),
            limit,
            min_score: -1.0,
        }
    }

    fn answer(id: &str) -> Vec<Nearest> {
        vec![(id.to_owned(), 0.5, Map::new())]
    }

    #[test]
    fn an_answer_is_given_for_the_same_question_at_the_same_seq_only() {
        let mut answers = Answers::default();
        answers.put(question(0.25, 10), 7, 7, answer("a"));
        assert_eq!(answers.get(&question(0.25, 10), 7), Some(answer("a")));
        assert_eq!(
            answers.get(&question(0.25, 10), 8),
            None,
            "the table moved on"
        );
        assert_eq!(answers.get(&question(0.25, 5), 7), None, "another limit");
        assert_eq!(answers.get(&question(0.5, 10), 7), None, "another vector");
        let filtered = Question {
            filter: Filter::parse(Some(&json!({"topic": "city"})), &["topic"], "filter").unwrap(),
            ..question(0.25, 10)
        };
        assert_eq!(answers.get(&filtered, 7), None, "another filter");
    }

    #[test]
    fn an_answer_scored_while_the_snapshot_moved_is_not_kept() {
        let mut answers = Answers::default();
        answers.put(question(0.25, 10), 7, 9, answer("a"));
        assert_eq!(answers.get(&question(0.25, 10), 7), None);
        assert_eq!(answers.get(&question(0.25, 10), 9), None);
        assert_eq!(answers.bytes(), 0);
    }

    #[test]
    fn the_latest_answers_are_kept_and_older_tables_answers_go() {
        let mut answers = Answers::default();
        answers.put(question(0.0, 10), 3, 3, answer("old"));
        for i in 0..ANSWERS_KEPT {
            answers.put(
                question(0.1 * f32::from(u8::try_from(i).unwrap()), 5),
                4,
                4,
                answer("new"),
            );
        }
        assert_eq!(answers.kept.len(), ANSWERS_KEPT);
        assert!(answers.kept.iter().all(|(_, seq, _)| *seq == 4));
        assert!(answers.bytes() > 0);
        // Asked again, an answer becomes the latest, and outlives those kept after it.
        assert!(answers.get(&question(0.0, 5), 4).is_some());
        answers.put(question(0.9, 5), 4, 4, answer("newest"));
        assert!(answers.get(&question(0.0, 5), 4).is_some());
        assert!(answers.get(&question(0.1, 5), 4).is_none());
    }
}
