//! Coalescing of requests into forward passes, off the async threads.
//!
//! Requests that arrive within a short window are gathered (up to a bounded number of texts),
//! dealt into passes of at most `max_batch` texts and about equal length (a pass packs its texts,
//! without padding), and run on one dedicated inference thread. The
//! async runtime only waits on a channel, so a slow pass never stalls `/health`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tokio::sync::oneshot;

use crate::encoder::Encoder;
use crate::stats::Stats;

/// Vectors for one request, in order, with what reading them cost.
#[derive(Debug)]
pub struct Batch {
    pub vectors: Vec<Vec<f32>>,
    pub truncated: usize,
}

struct Work {
    encoder: Arc<Encoder>,
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Batch, String>>,
}

#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Work>,
}

/// Batching knobs.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Most texts in one forward pass.
    pub max_batch: usize,
    /// How long the first request of a batch waits for company.
    pub window: Duration,
}

impl Batcher {
    pub fn start(policy: BatchPolicy, stats: Arc<Stats>) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("inference".into())
            .spawn(move || run(&rx, policy, &stats))
            .expect("the inference thread starts");
        Batcher { tx }
    }

    /// Embeds `texts` with `encoder`, sharing forward passes with concurrent requests.
    pub async fn embed(&self, encoder: Arc<Encoder>, texts: Vec<String>) -> Result<Batch, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Work {
                encoder,
                texts,
                reply,
            })
            .map_err(|_| "the inference thread has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the inference thread dropped the request".to_owned())?
    }
}

fn run(rx: &mpsc::Receiver<Work>, policy: BatchPolicy, stats: &Stats) {
    while let Ok(first) = rx.recv() {
        let mut pending = vec![first];
        let mut texts = pending[0].texts.len();
        let deadline = Instant::now() + policy.window;
        while texts < policy.max_batch {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(work) => {
                    texts += work.texts.len();
                    pending.push(work);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        while !pending.is_empty() {
            // One encoder per group: requests for other models wait for the next round.
            let encoder = Arc::clone(&pending[0].encoder);
            let (group, rest): (Vec<Work>, Vec<Work>) = pending
                .into_iter()
                .partition(|w| Arc::ptr_eq(&w.encoder, &encoder));
            pending = rest;
            stats.batch();
            embed_group(&encoder, group, policy.max_batch, stats);
        }
    }
}

/// Texts per forward pass: equal passes of at most `max_batch`, as many as a multiple of the
/// cores, so that no core idles while another finishes a long pass.
fn pass_size(texts: usize, max_batch: usize, cores: usize) -> usize {
    let cores = cores.max(1);
    let passes = texts.div_ceil(max_batch.max(1)).div_ceil(cores) * cores;
    texts.div_ceil(passes.max(1)).max(1)
}

/// The texts (by index) of each pass of at most `pass`, for texts of `lengths`: dealt out
/// longest first, one to each pass in turn, so that the passes, which run side by side, carry
/// about the same number of tokens (a pass packs its texts, so no text waits on another's
/// length; it is the passes that must end together).
fn passes(lengths: &[usize], pass: usize) -> Vec<Vec<usize>> {
    let count = lengths.len().div_ceil(pass.max(1));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut passes = vec![Vec::with_capacity(pass); count];
    for (turn, i) in order.into_iter().enumerate() {
        passes[turn % count].push(i);
    }
    passes
}

/// Embeds every text of `group` in passes of about equal tokens, run in parallel on the rayon
/// pool (one pass per core at a time), and answers each request.
fn embed_group(encoder: &Encoder, group: Vec<Work>, max_batch: usize, stats: &Stats) {
    let texts: Vec<&str> = group
        .iter()
        .flat_map(|w| w.texts.iter().map(String::as_str))
        .collect();
    let lengths: Vec<usize> = texts.iter().map(|t| t.len()).collect();
    let pass = pass_size(texts.len(), max_batch, rayon::current_num_threads());

    let passes: Vec<_> = passes(&lengths, pass)
        .into_par_iter()
        .map(|chunk| {
            let inputs: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let started = Instant::now();
            let embedded = encoder.embed(&inputs);
            if let Ok(embedded) = &embedded {
                stats.forward_pass(chunk.len(), embedded.tokens, embedded.truncated.len());
                tracing::debug!(
                    texts = chunk.len(),
                    tokens = embedded.tokens,
                    ms = started.elapsed().as_millis(),
                    "forward pass"
                );
            }
            (chunk, embedded)
        })
        .collect();

    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
    let mut truncated = vec![false; texts.len()];
    let mut failure = None;
    for (chunk, embedded) in passes {
        match embedded {
            Ok(embedded) => {
                for (slot, vector) in chunk.iter().zip(embedded.vectors) {
                    vectors[*slot] = Some(vector);
                }
                for position in embedded.truncated {
                    truncated[chunk[position]] = true;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, texts = chunk.len(), "forward pass failed");
                failure = Some(e.to_string());
            }
        }
    }

    let mut offset = 0;
    for work in group {
        let range = offset..offset + work.texts.len();
        offset = range.end;
        let answer = match &failure {
            Some(message) => Err(message.clone()),
            None => Ok(Batch {
                vectors: vectors[range.clone()]
                    .iter_mut()
                    .map(|v| v.take().unwrap_or_default())
                    .collect(),
                truncated: truncated[range].iter().filter(|&&t| t).count(),
            }),
        };
        // The caller may have gone away (client disconnected); nothing to do then.
        let _ = work.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::{pass_size, passes};

    #[test]
    fn passes_hold_every_text_once_and_about_equal_lengths() {
        let lengths: Vec<usize> = (0..100).map(|i| (i * 37) % 500 + 1).collect();
        let dealt = passes(&lengths, 25);
        assert_eq!(dealt.len(), 4);
        assert!(dealt.iter().all(|p| p.len() == 25));
        let mut seen: Vec<usize> = dealt.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let sums: Vec<usize> = dealt
            .iter()
            .map(|p| p.iter().map(|&i| lengths[i]).sum())
            .collect();
        let (least, most) = (sums.iter().min().unwrap(), sums.iter().max().unwrap());
        // Dealt longest first, no pass is ahead of another by more than the longest text.
        assert!(most - least <= 500, "{sums:?}");
        assert_eq!(passes(&[], 25), Vec::<Vec<usize>>::new());
        assert_eq!(passes(&[3, 1, 2], 32), vec![vec![0, 2, 1]]);
    }

    #[test]
    fn passes_are_balanced_across_cores() {
        assert_eq!(pass_size(100, 32, 2), 25); // 4 passes of 25, not 32 + 32 + 32 + 4
        assert_eq!(pass_size(32, 32, 2), 16);
        assert_eq!(pass_size(1, 32, 2), 1);
        assert_eq!(pass_size(64, 32, 1), 32);
        assert_eq!(pass_size(7, 32, 4), 2);
        assert_eq!(pass_size(0, 32, 2), 1);
    }
}
