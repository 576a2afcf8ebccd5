//! A BERT sentence encoder on the CPU: tokenize (truncated at 512 tokens), one forward pass of
//! the batch's texts packed one after another (no padding), pool (mean over each text's tokens,
//! or its `[CLS]`, as the model's pooling config says), L2-normalise.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use shared::models::Pooling;

use crate::bert::{Bert, BertConfig};

/// Longest input the encoder reads, in tokens; the rest is cut, as Workers AI does.
pub const MAX_TOKENS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid config: {source}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("weights {path}: {source}")]
    Weights {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// sentence-transformers' `1_Pooling/config.json`.
#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// The output of one forward pass.
#[derive(Debug)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, summed over the texts.
    pub tokens: usize,
    /// Positions (in the input) of the texts cut at [`MAX_TOKENS`].
    pub truncated: Vec<usize>,
}

pub struct Encoder {
    /// What the weights are, for logs and responses (the directory's name).
    pub label: String,
    pub dimensions: usize,
    pub pooling: Pooling,
    model: Bert,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("label", &self.label)
            .field("dimensions", &self.dimensions)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Encoder {
    /// Loads `config.json`, `tokenizer.json`, `model.safetensors` and (if present)
    /// `1_Pooling/config.json` from `dir`. Mean pooling when no pooling config says otherwise.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let config_path = dir.join("config.json");
        let config: BertConfig =
            serde_json::from_slice(&read(&config_path)?).map_err(|source| LoadError::Config {
                path: config_path.clone(),
                source,
            })?;

        let pooling_path = dir.join("1_Pooling/config.json");
        let pooling =
            if pooling_path.exists() {
                let pooling: PoolingConfig = serde_json::from_slice(&read(&pooling_path)?)
                    .map_err(|source| LoadError::Config {
                        path: pooling_path.clone(),
                        source,
                    })?;
                match (
                    pooling.pooling_mode_mean_tokens,
                    pooling.pooling_mode_cls_token,
                ) {
                    (true, false) => Pooling::Mean,
                    (false, true) => Pooling::Cls,
                    _ => {
                        return Err(LoadError::Unsupported(format!(
                            "{}: only mean or CLS pooling is supported",
                            pooling_path.display()
                        )))
                    }
                }
            } else {
                Pooling::Mean
            };

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer_error = |message: String| LoadError::Tokenizer {
            path: tokenizer_path.clone(),
            message,
        };
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| tokenizer_error(e.to_string()))?;
        // The shipped tokenizer.json truncates and pads to 128; Workers AI reads up to 512
        // tokens.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| tokenizer_error(e.to_string()))?;
        // No padding: a pass packs its texts one after another (`Bert::forward`).
        tokenizer.with_padding(None);

        let weights_path = dir.join("model.safetensors");
        let weights_error = |source| LoadError::Weights {
            path: weights_path.clone(),
            source,
        };
        // SAFETY: memory-maps the weights file read-only; it is not modified while served.
        #[allow(unsafe_code)]
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, &Device::Cpu)
        }
        .map_err(weights_error)?;
        let model = Bert::load(vb, &config).map_err(weights_error)?;

        let label = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Encoder {
            label,
            dimensions: config.hidden_size,
            pooling,
            model,
            tokenizer,
        })
    }

    /// Embeds `texts` in one forward pass; vectors come back in order, L2-normalised. The texts
    /// are packed, not padded: a pass costs the tokens its texts have, however their lengths
    /// differ.
    pub fn embed(&self, texts: &[&str]) -> Result<Embedded, candle_core::Error> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::msg)?;
        let lengths: Vec<usize> = encodings.iter().map(tokenizers::Encoding::len).collect();
        let tokens: usize = lengths.iter().sum();
        let mut ids = Vec::with_capacity(tokens);
        let mut truncated = Vec::new();
        for (position, encoding) in encodings.iter().enumerate() {
            ids.extend_from_slice(encoding.get_ids());
            if !encoding.get_overflowing().is_empty() {
                truncated.push(position);
            }
        }
        if texts.is_empty() {
            return Ok(Embedded {
                vectors: Vec::new(),
                tokens,
                truncated,
            });
        }
        let input_ids = Tensor::from_vec(ids, tokens, &self.model.device)?;
        let hidden = self
            .model
            .forward(&input_ids, &lengths)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let width = self.dimensions;
        let mut vectors = Vec::with_capacity(texts.len());
        let mut start = 0;
        for &length in &lengths {
            let text = &hidden[start * width..(start + length) * width];
            start += length;
            let pooled: Vec<f32> = match self.pooling {
                Pooling::Cls => text[..width.min(text.len())].to_vec(),
                Pooling::Mean => {
                    let mut sum = vec![0.0f32; width];
                    for row in text.chunks_exact(width) {
                        for (s, x) in sum.iter_mut().zip(row) {
                            *s += x;
                        }
                    }
                    #[allow(clippy::cast_precision_loss)]
                    let count = (length as f32).max(1e-9);
                    sum.into_iter().map(|s| s / count).collect()
                }
            };
            let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            let mut vector: Vec<f32> = pooled.into_iter().map(|x| x / norm).collect();
            vector.resize(width, 0.0);
            vectors.push(vector);
        }
        Ok(Embedded {
            vectors,
            tokens,
            truncated,
        })
    }
}
