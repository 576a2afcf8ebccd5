//! local-ai: a native stand-in for Workers AI text embeddings, so the product runs and is tested
//! offline with real semantic vectors. It answers the Workers AI REST call
//! (`POST /client/v4/accounts/{account}/ai/run/{model}`) with a real sentence-embedding model
//! run on the CPU with candle.
//!
//! - [`encoder`]: tokenization, forward pass, pooling and normalisation of a sentence encoder.
//! - [`bert`] and [`kernels`]: the BERT forward pass on candle tensors, with fused CPU kernels.
//! - [`catalogue`]: which model names are served, by which weights, padded to which dimension.
//! - [`batcher`]: requests that arrive together share forward passes, on a dedicated thread.
//! - [`faults`]: seeded fault injection (500s, 429s, delays) for reliability tests.
//! - [`stats`]: counters served at `/stats`.
//! - [`server`]: the routes.

pub mod batcher;
pub mod bert;
pub mod catalogue;
pub mod encoder;
pub mod faults;
pub mod kernels;
pub mod server;
pub mod stats;

use std::path::PathBuf;

/// Where `scripts/setup` puts the default model: `$D1_EMBEDDINGS_CACHE`, else
/// `$XDG_CACHE_HOME/d1-embeddings`, else `~/.cache/d1-embeddings`, then `models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    let cache = std::env::var_os("D1_EMBEDDINGS_CACHE").map_or_else(
        || {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("d1-embeddings")
        },
        PathBuf::from,
    );
    cache.join("models/all-MiniLM-L6-v2")
}
