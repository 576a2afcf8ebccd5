//! A BERT sentence encoder on the CPU: tokenize (truncated at 512 tokens, padded to the longest
//! text of the batch), one forward pass, pool (mean over the attention mask, or `[CLS]`, as the
//! model's pooling config says), L2-normalise.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    /// Tokens read, summed over the texts (padding not counted).
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
        // tokens, and padding to the longest text of a batch wastes no work on short batches.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| tokenizer_error(e.to_string()))?;
        let pad_token = tokenizer
            .get_padding()
            .map_or_else(|| "[PAD]".to_owned(), |p| p.pad_token.clone());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            pad_token,
            ..PaddingParams::default()
        }));

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

    /// Embeds `texts` in one forward pass; vectors come back in order, L2-normalised.
    pub fn embed(&self, texts: &[&str]) -> Result<Embedded, candle_core::Error> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::msg)?;
        let n = encodings.len();
        let width = encodings.first().map_or(0, tokenizers::Encoding::len);
        let mut ids = Vec::with_capacity(n * width);
        let mut mask = Vec::with_capacity(n * width);
        let mut tokens = 0;
        let mut truncated = Vec::new();
        for (position, encoding) in encodings.iter().enumerate() {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
            tokens += encoding
                .get_attention_mask()
                .iter()
                .filter(|&&m| m == 1)
                .count();
            if !encoding.get_overflowing().is_empty() {
                truncated.push(position);
            }
        }
        let device = &self.model.device;
        let input_ids = Tensor::from_vec(ids, (n, width), device)?;
        let attention_mask = Tensor::from_vec(mask, (n, width), device)?;
        let hidden = self.model.forward(&input_ids, &attention_mask)?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
                summed.broadcast_div(&counts)?
            }
        };
        let norms = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let vectors = pooled.broadcast_div(&norms)?.to_vec2::<f32>()?;
        Ok(Embedded {
            vectors,
            tokens,
            truncated,
        })
    }
}
