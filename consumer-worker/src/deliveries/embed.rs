//! Step 4 of a batch: the jobs to embed, grouped by model, at most 100 texts a call; a text the
//! AI refuses outright is found by embedding its call's texts one by one.

use shared::disposition::Outcome;
use shared::models::{self, MAX_TEXTS_PER_CALL};
use std::collections::BTreeMap;
use worker_kit::embedder::{EmbedError, Embedder};

use super::{Consumer, Entry, Tally};
use crate::ports::{JobStore, Requeue, VectorIndexes};

impl<S: JobStore, E: Embedder, R: Requeue, V: VectorIndexes> Consumer<'_, S, E, R, V> {
    /// Embeds the jobs that need it: grouped by model, at most 100 texts a call. While a
    /// table's model changes, a job of it may need both models.
    pub(super) async fn embed(&self, entries: &mut [Entry<'_>], tally: &mut Tally) {
        let mut by_model: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if matches!(entry.outcome, Outcome::Handled) {
                for model in entry.models_to_embed() {
                    by_model.entry(model.to_owned()).or_default().push(i);
                }
            }
        }
        for (model, indices) in by_model {
            let spec = models::model(&model).expect("sets and decoded jobs name catalogue models");
            for chunk in indices.chunks(MAX_TEXTS_PER_CALL) {
                // A job that failed under the other model already is not sent again.
                let chunk: Vec<usize> = chunk
                    .iter()
                    .copied()
                    .filter(|&i| matches!(entries[i].outcome, Outcome::Handled))
                    .collect();
                if chunk.is_empty() {
                    continue;
                }
                let texts: Vec<String> = chunk
                    .iter()
                    .map(|&i| {
                        let (text, truncated) = models::truncate(&entries[i].job.content);
                        // Cut here, or already by whoever made the message.
                        entries[i].truncated = truncated || entries[i].job.truncated;
                        text.to_owned()
                    })
                    .collect();
                tally.ai_calls += 1;
                match self.embedder.embed(spec, &texts).await {
                    Ok(vectors) => {
                        tally.texts += texts.len();
                        for (&i, vector) in chunk.iter().zip(vectors) {
                            entries[i].vectors.insert(model.clone(), vector);
                        }
                    }
                    Err(error) if error.is_transient() || chunk.len() == 1 => {
                        for &i in &chunk {
                            entries[i].outcome = outcome_of(&error);
                        }
                    }
                    Err(_) => {
                        // Refused outright: find the texts at fault one by one, so that one bad
                        // text does not take the others down with it.
                        for (&i, text) in chunk.iter().zip(&texts) {
                            tally.ai_calls += 1;
                            match self.embedder.embed(spec, std::slice::from_ref(text)).await {
                                Ok(mut vectors) => {
                                    tally.texts += 1;
                                    if let Some(vector) = vectors.pop() {
                                        entries[i].vectors.insert(model.clone(), vector);
                                    }
                                }
                                Err(error) => entries[i].outcome = outcome_of(&error),
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcome_of(error: &EmbedError) -> Outcome {
    let reason = format!("embedding failed: {}", error.message);
    if error.is_transient() {
        Outcome::Transient(reason)
    } else {
        Outcome::Permanent(reason)
    }
}
