//! GPT-2, mirroring Hugging Face `GPT2LMHeadModel` (transformers/models/gpt2/modeling_gpt2.py):
//! token + learned position embeddings, pre-LN blocks (`ln_1` → attention → residual, `ln_2` →
//! MLP with `gelu_new` → residual), a final `ln_f`, and the LM head tied to `wte`. HF stores the
//! `Conv1D` weights `[in, out]`, which is burn's `Linear` layout, and fuses q/k/v in `c_attn`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor};
use serde::Deserialize;

use super::bert::layer_norm;
use super::decoder::{KvCache, causal_attention, gelu_tanh};
use super::lora_linear;
use crate::error::{Error, Result};
use crate::hf::weights::ParamSource;

/// The fields of HF `GPT2Config` Burnish reads (others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2ConfigFile {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_inner: Option<usize>,
    pub activation_function: Option<String>,
    pub layer_norm_epsilon: Option<f64>,
    pub resid_pdrop: Option<f64>,
    pub embd_pdrop: Option<f64>,
    pub attn_pdrop: Option<f64>,
    pub initializer_range: Option<f64>,
    pub scale_attn_weights: Option<bool>,
    pub scale_attn_by_inverse_layer_idx: Option<bool>,
}

/// Validated GPT-2 configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub max_positions: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub inner: usize,
    pub eps: f64,
    pub resid_pdrop: f64,
    pub embd_pdrop: f64,
    pub attn_pdrop: f64,
    pub initializer_range: f64,
}

impl Gpt2ConfigFile {
    pub fn validate(self) -> Result<Gpt2Config> {
        let act = self.activation_function.as_deref().unwrap_or("gelu_new");
        if !matches!(act, "gelu_new" | "gelu_pytorch_tanh") {
            return Err(Error::Config(format!("GPT-2 activation \"{act}\" is not supported (gelu_new is)")));
        }
        if self.scale_attn_weights == Some(false) || self.scale_attn_by_inverse_layer_idx == Some(true) {
            return Err(Error::Config("GPT-2 attention scaling other than 1/√head_dim is not supported".into()));
        }
        if self.n_head == 0 || self.n_embd % self.n_head != 0 || self.n_layer == 0 || self.vocab_size == 0 {
            return Err(Error::Config(format!("n_embd ({}) must be a multiple of n_head ({}), with layers and a vocabulary", self.n_embd, self.n_head)));
        }
        use crate::hf::config::{check_positive, check_prob, check_size, limits};
        check_size("n_head", self.n_head, 1, limits::HEADS)?;
        check_size("n_embd / n_head", self.n_embd / self.n_head, 1, limits::HEAD_DIM)?;
        Ok(Gpt2Config {
            vocab_size: check_size("vocab_size", self.vocab_size, 1, limits::VOCAB)?,
            max_positions: check_size("n_positions", self.n_positions, 1, limits::POSITIONS)?,
            hidden: check_size("n_embd", self.n_embd, 1, limits::HIDDEN)?,
            layers: check_size("n_layer", self.n_layer, 1, limits::LAYERS)?,
            heads: self.n_head,
            inner: check_size("n_inner", self.n_inner.unwrap_or(4 * self.n_embd), 1, limits::INTERMEDIATE)?,
            eps: check_positive("layer_norm_epsilon", self.layer_norm_epsilon.unwrap_or(1e-5))?,
            resid_pdrop: check_prob("resid_pdrop", self.resid_pdrop.unwrap_or(0.1))?,
            embd_pdrop: check_prob("embd_pdrop", self.embd_pdrop.unwrap_or(0.1))?,
            attn_pdrop: check_prob("attn_pdrop", self.attn_pdrop.unwrap_or(0.1))?,
            initializer_range: self.initializer_range.unwrap_or(0.02),
        })
    }
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    /// `attn.c_attn`: q, k and v in one `[hidden, 3·hidden]` projection
    pub c_attn: Linear,
    /// `attn.c_proj`
    pub attn_proj: Linear,
    pub ln_2: LayerNorm,
    /// `mlp.c_fc`
    pub c_fc: Linear,
    /// `mlp.c_proj`
    pub mlp_proj: Linear,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    /// PEFT's `lora_dropout` on the input of every LoRA-adapted linear (0 without LoRA).
    pub lora_dropout: Dropout,
    pub heads: usize,
}

/// `GPT2LMHeadModel`; `lm_head` is `wte` (tied).
#[derive(Module, Debug)]
pub struct Gpt2LmHead {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub drop: Dropout,
    pub blocks: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// The LM head is tied to `wte`, so files need not carry it.
pub fn gpt2_optional(name: &str) -> bool {
    name == "lm_head.weight"
}

/// Buffers of old GPT-2 checkpoints (the causal mask), not parameters.
pub fn gpt2_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

impl Gpt2LmHead {
    pub fn load(cfg: &Gpt2Config, src: &mut ParamSource, device: &Device) -> Result<Self> {
        let p = if src.has("transformer.wte.weight") { "transformer." } else { "" };
        let h = cfg.hidden;
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let b = format!("{p}h.{i}");
            blocks.push(Gpt2Block {
                ln_1: layer_norm(src, &format!("{b}.ln_1"), h, cfg.eps, device)?,
                c_attn: src.conv1d(&format!("{b}.attn.c_attn"), h, 3 * h, device)?,
                attn_proj: src.conv1d(&format!("{b}.attn.c_proj"), h, h, device)?,
                ln_2: layer_norm(src, &format!("{b}.ln_2"), h, cfg.eps, device)?,
                c_fc: src.conv1d(&format!("{b}.mlp.c_fc"), h, cfg.inner, device)?,
                mlp_proj: src.conv1d(&format!("{b}.mlp.c_proj"), cfg.inner, h, device)?,
                attn_dropout: DropoutConfig::new(cfg.attn_pdrop).init(),
                resid_dropout: DropoutConfig::new(cfg.resid_pdrop).init(),
                lora_dropout: DropoutConfig::new(0.0).init(),
                heads: cfg.heads,
            });
        }
        Ok(Gpt2LmHead {
            wte: Embedding { weight: src.matrix(&format!("{p}wte.weight"), cfg.vocab_size, h, device)? },
            wpe: Embedding { weight: src.matrix(&format!("{p}wpe.weight"), cfg.max_positions, h, device)? },
            drop: DropoutConfig::new(cfg.embd_pdrop).init(),
            blocks,
            ln_f: layer_norm(src, &format!("{p}ln_f"), h, cfg.eps, device)?,
        })
    }

    /// Last hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]` at positions after
    /// those in `cache`.
    pub fn hidden(&self, ids: Tensor<2, Int>, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(past as i64..(past + seq) as i64, &device).reshape([1, seq]); // [1, seq]
        let mut x = self.drop.forward(self.wte.forward(ids) + self.wpe.forward(positions)); // [batch, seq, hidden]
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, cache.as_deref_mut().map(|c| (c, i)));
        }
        if let Some(c) = cache {
            c.advance(seq);
        }
        self.ln_f.forward(x)
    }

    /// Next-token logits `[batch, seq, vocab]` (the head is `wte` transposed).
    pub fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.head(self.hidden(ids, cache))
    }

    /// The vocabulary projection of hidden states `[batch, seq, hidden]` → `[batch, seq, vocab]`.
    pub fn head(&self, h: Tensor<3>) -> Tensor<3> {
        h.matmul(self.wte.weight.val().transpose().unsqueeze()) // [batch, seq, vocab]
    }
}

impl Gpt2Block {
    fn forward(&self, x: Tensor<3>, cache: Option<(&mut KvCache, usize)>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let d = hidden / self.heads;
        let ld = &self.lora_dropout;
        let qkv = lora_linear(&self.c_attn, self.ln_1.forward(x.clone()), ld); // [batch, seq, 3·hidden]
        let split = |i: usize| qkv.clone().narrow(2, i * hidden, hidden).reshape([batch, seq, self.heads, d]).swap_dims(1, 2); // [batch, heads, seq, d]
        let a = causal_attention(split(0), split(1), split(2), cache, &self.attn_dropout); // [batch, seq, hidden]
        let x = x + self.resid_dropout.forward(lora_linear(&self.attn_proj, a, ld));
        let m = lora_linear(&self.mlp_proj, gelu_tanh(lora_linear(&self.c_fc, self.ln_2.forward(x.clone()), ld)), ld); // [batch, seq, hidden]
        x + self.resid_dropout.forward(m)
    }
}
