//! A BERT encoder forward pass on candle tensors, shaped for CPU throughput: the query, key and
//! value projections are one matrix product (with the attention scale folded into the query
//! weights at load), and bias + GELU and attention are fused kernels ([`crate::kernels`]); a
//! pass's texts are packed one after another, never padded, and every product and kernel splits
//! its rows over the cores. Weights are read from a sentence-transformers / Hugging Face BERT
//! checkpoint (`model.safetensors`, with or without a `bert.` prefix).

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use crate::kernels::{Attention, BiasGelu, BiasMatMul, MatMul, ResidualNorm};

/// The parts of a BERT `config.json` the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn gelu() -> String {
    "gelu".into()
}

/// `x W + b` with `W` stored as `(in, out)`, contiguous.
#[derive(Debug)]
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder, input: usize, output: usize) -> Result<Self> {
        Ok(Dense {
            weight: vb.get((output, input), "weight")?.t()?.contiguous()?,
            bias: vb.get(output, "bias")?,
        })
    }

    /// Several projections of the same input as one: weights side by side.
    fn concat(parts: &[Dense]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|d| &d.weight).collect();
        let biases: Vec<&Tensor> = parts.iter().map(|d| &d.bias).collect();
        Ok(Dense {
            weight: Tensor::cat(&weights, 1)?.contiguous()?,
            bias: Tensor::cat(&biases, 0)?,
        })
    }

    fn scaled(self, factor: f64) -> Result<Self> {
        Ok(Dense {
            weight: (self.weight * factor)?,
            bias: (self.bias * factor)?,
        })
    }

    /// `x` is `(rows, in)`, contiguous.
    fn product(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op2_no_bwd(&self.weight, &MatMul)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply_op3_no_bwd(&self.weight, &self.bias, &BiasMatMul)
    }
}

#[derive(Debug)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        #[allow(clippy::cast_possible_truncation)]
        Ok(LayerNorm {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// A dense layer whose output is added to its input and layer-normalised: `params` stacks the
/// dense bias, the norm's weight and its shift, for [`ResidualNorm`].
#[derive(Debug)]
struct DenseResidualNorm {
    weight: Tensor,
    params: Tensor,
    norm: ResidualNorm,
}

impl DenseResidualNorm {
    fn load(dense: Dense, norm: &LayerNorm) -> Result<Self> {
        Ok(DenseResidualNorm {
            weight: dense.weight,
            params: Tensor::stack(&[&dense.bias, &norm.weight, &norm.bias], 0)?,
            norm: ResidualNorm { eps: norm.eps },
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.apply_op2_no_bwd(&self.weight, &MatMul)?.apply_op3_no_bwd(
            residual,
            &self.params,
            &self.norm,
        )
    }
}

#[derive(Debug)]
struct Layer {
    qkv: Dense,
    attention_out: DenseResidualNorm,
    intermediate: Dense,
    output: DenseResidualNorm,
}

#[derive(Debug)]
pub struct Bert {
    word: candle_nn::Embedding,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    pub device: Device,
}

impl Bert {
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        if config.hidden_act != "gelu" {
            candle_core::bail!(
                "hidden_act `{}` is not supported (only `gelu`)",
                config.hidden_act
            );
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if h % heads != 0 {
            candle_core::bail!("hidden size {h} is not a multiple of {heads} heads");
        }
        #[allow(clippy::cast_precision_loss)]
        let scale = 1.0 / ((h / heads) as f64).sqrt();
        let emb = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let layer = vb.pp(format!("encoder.layer.{i}"));
            let own = layer.pp("attention.self");
            let query = Dense::load(&own.pp("query"), h, h)?.scaled(scale)?;
            let key = Dense::load(&own.pp("key"), h, h)?;
            let value = Dense::load(&own.pp("value"), h, h)?;
            let eps = config.layer_norm_eps;
            layers.push(Layer {
                qkv: Dense::concat(&[query, key, value])?,
                attention_out: DenseResidualNorm::load(
                    Dense::load(&layer.pp("attention.output.dense"), h, h)?,
                    &LayerNorm::load(&layer.pp("attention.output.LayerNorm"), h, eps)?,
                )?,
                intermediate: Dense::load(
                    &layer.pp("intermediate.dense"),
                    h,
                    config.intermediate_size,
                )?,
                output: DenseResidualNorm::load(
                    Dense::load(&layer.pp("output.dense"), config.intermediate_size, h)?,
                    &LayerNorm::load(&layer.pp("output.LayerNorm"), h, eps)?,
                )?,
            });
        }
        Ok(Bert {
            word: candle_nn::Embedding::new(
                emb.get((config.vocab_size, h), "word_embeddings.weight")?,
                h,
            ),
            position: emb.get(
                (config.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            // Every input is one segment: token type 0.
            token_type: emb
                .get((config.type_vocab_size, h), "token_type_embeddings.weight")?
                .get(0)?,
            embedding_norm: LayerNorm::load(&emb.pp("LayerNorm"), h, config.layer_norm_eps)?,
            layers,
            heads,
            device: vb.device().clone(),
        })
    }

    /// Token vectors `(tokens, hidden)` of texts whose token ids `input_ids` `(tokens)` lie one
    /// after another, `lengths` tokens each. Nothing is padded: every product runs on real
    /// tokens only, and each text attends to its own.
    pub fn forward(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let tokens = input_ids.dims1()?;
        if tokens != lengths.iter().sum::<usize>() {
            candle_core::bail!("{tokens} token ids for texts of {lengths:?} tokens");
        }
        let positions: Vec<u32> = lengths
            .iter()
            .flat_map(|&n| 0..u32::try_from(n).unwrap_or(u32::MAX))
            .collect();
        let positions = Tensor::from_vec(positions, tokens, &self.device)?;
        let embedded = self
            .word
            .forward(input_ids)?
            .add(&self.position.index_select(&positions, 0)?)?
            .broadcast_add(&self.token_type)?;
        let attention = Attention {
            heads: self.heads,
            lengths: lengths.to_vec(),
        };
        let mut x = self.embedding_norm.forward(&embedded)?;
        for layer in &self.layers {
            x = Self::layer(layer, &x, &attention)?;
        }
        Ok(x)
    }

    /// One encoder layer on `x` `(tokens, hidden)`.
    fn layer(layer: &Layer, x: &Tensor, attention: &Attention) -> Result<Tensor> {
        let context = layer.qkv.forward(x)?.apply_op1_no_bwd(attention)?;
        let attended = layer.attention_out.forward(&context, x)?;
        let intermediate = layer
            .intermediate
            .product(&attended)?
            .apply_op2_no_bwd(&layer.intermediate.bias, &BiasGelu)?;
        layer.output.forward(&intermediate, &attended)
    }
}
