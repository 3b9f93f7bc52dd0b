//! The Llama family, mirroring Hugging Face `LlamaForCausalLM`
//! (transformers/models/llama/modeling_llama.py): RMSNorm, rotary position embeddings in HF's
//! half-split layout, SwiGLU MLP (`down(silu(gate(x)) · up(x))`), grouped-query attention, and an
//! LM head that is its own matrix or tied to the embeddings. **Qwen2** is the same network with
//! biases on q/k/v (`Qwen2ForCausalLM`), and **Qwen3** adds an RMSNorm over each head's queries and
//! keys before the rotary embedding (`q_norm`, `k_norm`; `Qwen3ForCausalLM`), chosen by
//! `model_type`; SmolLM2 and TinyLlama are Llama.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, Linear, RmsNorm, RmsNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};
use serde::Deserialize;
use serde_json::Value;

use super::decoder::{KvCache, apply_rope, causal_attention, rope_tables};
use super::lora_linear;
use crate::error::{Error, Result};
use crate::hf::weights::ParamSource;

/// The fields of HF `LlamaConfig` / `Qwen2Config` Burnish reads (others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfigFile {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub max_position_embeddings: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    /// transformers ≥ 5 writes `{"rope_theta", "rope_type"}` here instead of `rope_theta`.
    pub rope_parameters: Option<Value>,
    pub rope_scaling: Option<Value>,
    pub tie_word_embeddings: Option<bool>,
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
    pub hidden_act: Option<String>,
    pub attention_dropout: Option<f64>,
    pub initializer_range: Option<f64>,
    pub use_sliding_window: Option<bool>,
}

/// Validated Llama / Qwen2 configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub qwen2: bool,
    /// Qwen3: RMSNorm over each head's queries and keys (`q_norm`, `k_norm`, of head_dim).
    pub qk_norm: bool,
    pub vocab_size: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub max_positions: usize,
    pub eps: f64,
    pub rope_theta: f64,
    pub tie_word_embeddings: bool,
    /// Biases on q, k and v (Qwen2 always; Llama with `attention_bias`).
    pub qkv_bias: bool,
    pub attention_dropout: f64,
    pub initializer_range: f64,
}

impl LlamaConfigFile {
    pub fn validate(self) -> Result<LlamaConfig> {
        let qwen2 = self.model_type == "qwen2";
        let qwen3 = self.model_type == "qwen3";
        let rope = |key: &str| -> Option<Value> {
            self.rope_parameters.as_ref().and_then(|p| p.get(key)).or_else(|| self.rope_scaling.as_ref().and_then(|p| p.get(key))).cloned()
        };
        let rope_type = rope("rope_type").or_else(|| rope("type")).and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "default".into());
        if rope_type != "default" {
            return Err(Error::Config(format!("rotary scaling \"{rope_type}\" is not supported yet (plain rotary embeddings are)")));
        }
        let rope_theta = self.rope_theta.or_else(|| rope("rope_theta").and_then(|v| v.as_f64())).unwrap_or(10000.0);
        let act = self.hidden_act.as_deref().unwrap_or("silu");
        if act != "silu" {
            return Err(Error::Config(format!("activation \"{act}\" is not supported (silu is)")));
        }
        if self.mlp_bias == Some(true) {
            return Err(Error::Config("MLP biases (mlp_bias) are not supported".into()));
        }
        if self.use_sliding_window == Some(true) {
            return Err(Error::Config("sliding-window attention is not supported".into()));
        }
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || self.hidden_size % heads != 0 && self.head_dim.is_none() {
            return Err(Error::Config(format!("{heads} attention heads cannot be split into {kv_heads} key/value groups over hidden size {}", self.hidden_size)));
        }
        let head_dim = self.head_dim.unwrap_or(self.hidden_size / heads);
        if head_dim % 2 != 0 || self.num_hidden_layers == 0 || self.vocab_size == 0 {
            return Err(Error::Config(format!("head_dim {head_dim} must be even, with layers and a vocabulary")));
        }
        use crate::hf::config::{check_positive, check_prob, check_size, limits};
        check_size("num_attention_heads", heads, 1, limits::HEADS)?;
        check_size("head_dim", head_dim, 2, limits::HEAD_DIM)?;
        Ok(LlamaConfig {
            qwen2,
            qk_norm: qwen3,
            vocab_size: check_size("vocab_size", self.vocab_size, 1, limits::VOCAB)?,
            hidden: check_size("hidden_size", self.hidden_size, 1, limits::HIDDEN)?,
            intermediate: check_size("intermediate_size", self.intermediate_size, 1, limits::INTERMEDIATE)?,
            layers: check_size("num_hidden_layers", self.num_hidden_layers, 1, limits::LAYERS)?,
            heads,
            kv_heads,
            head_dim,
            max_positions: check_size("max_position_embeddings", self.max_position_embeddings.unwrap_or(2048), 1, limits::POSITIONS)?,
            eps: check_positive("rms_norm_eps", self.rms_norm_eps.unwrap_or(1e-6))?,
            rope_theta: check_positive("rope_theta", rope_theta)?,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            qkv_bias: qwen2 || self.attention_bias == Some(true),
            attention_dropout: check_prob("attention_dropout", self.attention_dropout.unwrap_or(0.0))?,
            initializer_range: self.initializer_range.unwrap_or(0.02),
        })
    }
}

#[derive(Module, Debug)]
pub struct LlamaAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// Qwen3's RMSNorm over each query and key head (head_dim), before the rotary embedding.
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub dropout: Dropout,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

#[derive(Module, Debug)]
pub struct LlamaLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: LlamaAttention,
    pub post_attention_layernorm: RmsNorm,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    /// PEFT's `lora_dropout` on the input of every LoRA-adapted linear (0 without LoRA).
    pub lora_dropout: Dropout,
}

/// `LlamaForCausalLM` / `Qwen2ForCausalLM` / `Qwen3ForCausalLM`. `lm_head` is `None` when tied to `embed_tokens`.
#[derive(Module, Debug)]
pub struct LlamaForCausalLm {
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaLayer>,
    pub norm: RmsNorm,
    /// `[hidden, vocab]` (burn layout of HF's `lm_head.weight`).
    pub lm_head: Option<Linear>,
    pub rope_theta: f64,
}

fn rms_norm(src: &mut ParamSource, name: &str, dim: usize, eps: f64, device: &Device) -> Result<RmsNorm> {
    let mut n = RmsNormConfig::new(dim).with_epsilon(eps).init(device);
    n.gamma = src.ones_or_load(&format!("{name}.weight"), dim, device)?;
    Ok(n)
}

/// A tied checkpoint has no `lm_head.weight`.
pub fn llama_optional(name: &str) -> bool {
    name == "lm_head.weight"
}

/// Rotary buffers some checkpoints store.
pub fn llama_buffer(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
}

impl LlamaForCausalLm {
    pub fn load(cfg: &LlamaConfig, src: &mut ParamSource, device: &Device) -> Result<Self> {
        let (h, d) = (cfg.hidden, cfg.head_dim);
        let proj = |src: &mut ParamSource, name: String, d_in: usize, d_out: usize, bias: bool| {
            if bias { src.linear(&name, d_in, d_out, device) } else { src.linear_no_bias(&name, d_in, d_out, device) }
        };
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = format!("model.layers.{i}");
            layers.push(LlamaLayer {
                input_layernorm: rms_norm(src, &format!("{p}.input_layernorm"), h, cfg.eps, device)?,
                self_attn: LlamaAttention {
                    q_proj: proj(src, format!("{p}.self_attn.q_proj"), h, cfg.heads * d, cfg.qkv_bias)?,
                    k_proj: proj(src, format!("{p}.self_attn.k_proj"), h, cfg.kv_heads * d, cfg.qkv_bias)?,
                    v_proj: proj(src, format!("{p}.self_attn.v_proj"), h, cfg.kv_heads * d, cfg.qkv_bias)?,
                    o_proj: proj(src, format!("{p}.self_attn.o_proj"), cfg.heads * d, h, false)?,
                    q_norm: if cfg.qk_norm { Some(rms_norm(src, &format!("{p}.self_attn.q_norm"), d, cfg.eps, device)?) } else { None },
                    k_norm: if cfg.qk_norm { Some(rms_norm(src, &format!("{p}.self_attn.k_norm"), d, cfg.eps, device)?) } else { None },
                    dropout: DropoutConfig::new(cfg.attention_dropout).init(),
                    heads: cfg.heads,
                    kv_heads: cfg.kv_heads,
                    head_dim: d,
                },
                post_attention_layernorm: rms_norm(src, &format!("{p}.post_attention_layernorm"), h, cfg.eps, device)?,
                gate_proj: src.linear_no_bias(&format!("{p}.mlp.gate_proj"), h, cfg.intermediate, device)?,
                up_proj: src.linear_no_bias(&format!("{p}.mlp.up_proj"), h, cfg.intermediate, device)?,
                down_proj: src.linear_no_bias(&format!("{p}.mlp.down_proj"), cfg.intermediate, h, device)?,
                lora_dropout: DropoutConfig::new(0.0).init(),
            });
        }
        let embed_tokens = Embedding { weight: src.matrix("model.embed_tokens.weight", cfg.vocab_size, h, device)? };
        // An untied head the file lacks would be initialised at random: HF does the same, and
        // the load report says so.
        let lm_head = if cfg.tie_word_embeddings { None } else { Some(src.linear_no_bias("lm_head", h, cfg.vocab_size, device)?) };
        Ok(LlamaForCausalLm { embed_tokens, layers, norm: rms_norm(src, "model.norm", h, cfg.eps, device)?, lm_head, rope_theta: cfg.rope_theta })
    }

    /// Last hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]` at positions after
    /// those in `cache`.
    pub fn hidden(&self, ids: Tensor<2, Int>, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len());
        let device = ids.device();
        let d = self.layers.first().map_or(2, |l| l.self_attn.head_dim);
        let (cos, sin) = rope_tables(past, seq, d, self.rope_theta, &device); // [1, 1, seq, head_dim]
        let mut x = self.embed_tokens.forward(ids); // [batch, seq, hidden]
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x, &cos, &sin, cache.as_deref_mut().map(|c| (c, i)));
        }
        if let Some(c) = cache {
            c.advance(seq);
        }
        self.norm.forward(x)
    }

    /// Next-token logits `[batch, seq, vocab]`.
    pub fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.head(self.hidden(ids, cache))
    }

    /// The vocabulary projection of hidden states `[batch, seq, hidden]` → `[batch, seq, vocab]`.
    pub fn head(&self, h: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => head.forward(h),
            None => h.matmul(self.embed_tokens.weight.val().transpose().unsqueeze()), // [batch, seq, vocab]
        }
    }

}

impl LlamaLayer {
    fn forward(&self, x: Tensor<3>, cos: &Tensor<4>, sin: &Tensor<4>, cache: Option<(&mut KvCache, usize)>) -> Tensor<3> {
        let d = &self.lora_dropout;
        let a = self.self_attn.forward(self.input_layernorm.forward(x.clone()), cos, sin, cache, d);
        let x = x + a;
        let h = self.post_attention_layernorm.forward(x.clone());
        let m = lora_linear(&self.down_proj, silu(lora_linear(&self.gate_proj, h.clone(), d)) * lora_linear(&self.up_proj, h, d), d); // [batch, seq, hidden]
        x + m
    }
}

impl LlamaAttention {
    fn forward(&self, x: Tensor<3>, cos: &Tensor<4>, sin: &Tensor<4>, cache: Option<(&mut KvCache, usize)>, ld: &Dropout) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let d = self.head_dim;
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, d]).swap_dims(1, 2); // [batch, n, seq, d]
        let norm = |n: &Option<RmsNorm>, t: Tensor<4>| match n {
            Some(n) => n.forward(t), // over each head's head_dim (the last axis)
            None => t,
        };
        let q = apply_rope(norm(&self.q_norm, split(lora_linear(&self.q_proj, x.clone(), ld), self.heads)), cos, sin);
        let k = apply_rope(norm(&self.k_norm, split(lora_linear(&self.k_proj, x.clone(), ld), self.kv_heads)), cos, sin);
        let v = split(lora_linear(&self.v_proj, x, ld), self.kv_heads);
        let a = causal_attention(q, k, v, cache, &self.dropout); // [batch, seq, heads·d]
        lora_linear(&self.o_proj, a, ld)
    }
}
