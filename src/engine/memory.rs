//! Memory estimates before a run starts (the page's estimate beside Start, `burnish compare`):
//! weights, gradients and AdamW's moments for what trains, and the activations one batch keeps
//! for the backward pass, for encoders and decoders.

use serde::Serialize;

use crate::hf::config::BertConfig;
use crate::models::causal::DecoderConfig;
use crate::recipe::{LoraTarget, Recipe, Strategy};

/// Rough bytes needed to fine-tune (all parameters trained, f32, AdamW), for the page's
/// estimate before Start.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryEstimate {
    pub parameters: usize,
    /// Parameters that get gradients and AdamW state under the recipe's strategy.
    pub trainable: usize,
    pub weights: u64,
    pub gradients: u64,
    /// AdamW's two moment tensors.
    pub optimizer: u64,
    /// Activations kept for the backward pass of one `batch × max_len` batch.
    pub activations: u64,
    pub total: u64,
    /// The biggest single tensor (bytes): it must fit in one GPU buffer.
    pub largest_tensor: u64,
    /// What the backend says about this size (`BackendInfo::memory_warnings`), filled in by the
    /// caller that knows the backend.
    pub warnings: Vec<String>,
}

impl MemoryEstimate {
    /// f32 weights for every parameter; gradients and AdamW's two moments for what trains.
    fn of(parameters: usize, trainable: usize, activations: u64, largest_tensor: u64) -> Self {
        let (weights, gradients, optimizer) = (4 * parameters as u64, 4 * trainable as u64, 8 * trainable as u64);
        MemoryEstimate {
            parameters,
            trainable,
            weights,
            gradients,
            optimizer,
            activations,
            total: weights + gradients + optimizer + activations,
            largest_tensor,
            warnings: Vec::new(),
        }
    }
}

/// Per token and layer, a BERT layer keeps about 10·hidden + 2·intermediate floats (Q, K, V,
/// context, attention output, two layer norms and residuals, the FFN input and GELU output)
/// plus 3·heads·len for the attention scores, probabilities and dropout mask.
/// Gradients and AdamW state are only kept for the `trainable` parameters.
pub fn estimate_memory(cfg: &BertConfig, parameters: usize, trainable: usize, batch: usize, max_len: usize) -> MemoryEstimate {
    let (h, i, heads, layers) = (cfg.hidden_size as u64, cfg.intermediate_size as u64, cfg.num_attention_heads as u64, cfg.num_hidden_layers as u64);
    let tokens = (batch * max_len) as u64;
    let per_token = layers * (10 * h + 2 * i + 3 * heads * max_len as u64) + 4 * h;
    let activations = 4 * tokens * per_token;
    let largest_tensor = 4 * (cfg.vocab_size as u64 * h).max(batch as u64 * heads * (max_len * max_len) as u64).max(tokens * i);
    MemoryEstimate::of(parameters, trainable, activations, largest_tensor)
}

/// (all parameters, trainable parameters) of a `num_labels` classifier under the recipe's
/// strategy, from the config alone (before any model is built). With gradual unfreezing, the
/// most that will train.
pub fn planned_parameters(cfg: &BertConfig, r: &Recipe, num_labels: usize) -> (usize, usize) {
    let (h, i, l) = (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers);
    let embeddings = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * h + 2 * h;
    let layer = 4 * (h * h + h) + 2 * (2 * h) + (h * i + i) + (i * h + h);
    let head = (h * h + h) + (h * num_labels + num_labels);
    let base = embeddings + l * layer + head;
    match r.strategy {
        Strategy::Full => (base, base - if r.freeze_embeddings { embeddings } else { 0 }),
        Strategy::Head => (base, head),
        Strategy::Top => (base, head + r.top_layers.min(l) * layer),
        Strategy::Lora => {
            let per_layer: usize = r
                .lora_targets
                .iter()
                .map(|t| match t {
                    LoraTarget::Intermediate => r.lora_rank * (h + i),
                    LoraTarget::Output => r.lora_rank * (i + h),
                    _ => r.lora_rank * 2 * h,
                })
                .sum();
            (base + l * per_layer, head + l * per_layer)
        }
    }
}


/// The parameters of a decoder from its config alone (as `CausalLm` builds it: a tied LM head
/// adds none), and the `(d_in, d_out)` of each linear named in `modules` within one layer.
pub fn decoder_shapes(cfg: &DecoderConfig, modules: &[&str]) -> (usize, Vec<(usize, usize)>) {
    match cfg {
        DecoderConfig::Llama(c) => {
            let (h, i, q, kv) = (c.hidden, c.intermediate, c.heads * c.head_dim, c.kv_heads * c.head_dim);
            let bias = if c.qkv_bias { q + 2 * kv } else { 0 };
            let qk_norm = if c.qk_norm { 2 * c.head_dim } else { 0 };
            let layer = h * q + 2 * h * kv + bias + qk_norm + q * h + 3 * h * i + 2 * h;
            let head = if c.tie_word_embeddings { 0 } else { c.vocab_size * h };
            let dims = |m: &str| match m {
                "self_attn.q_proj" => (h, q),
                "self_attn.k_proj" | "self_attn.v_proj" => (h, kv),
                "self_attn.o_proj" => (q, h),
                "mlp.gate_proj" | "mlp.up_proj" => (h, i),
                _ => (i, h), // mlp.down_proj
            };
            (c.vocab_size * h + c.layers * layer + h + head, modules.iter().map(|m| dims(m)).collect())
        }
        DecoderConfig::Gpt2(c) => {
            let (h, i) = (c.hidden, c.inner);
            let layer = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h);
            let dims = |m: &str| match m {
                "attn.c_attn" => (h, 3 * h),
                "attn.c_proj" => (h, h),
                "mlp.c_fc" => (h, i),
                _ => (i, h), // mlp.c_proj
            };
            ((c.vocab_size + c.max_positions) * h + c.layers * layer + 2 * h, modules.iter().map(|m| dims(m)).collect())
        }
    }
}

/// Memory to fine-tune a decoder of config `cfg` (before any LoRA) under the recipe's strategy at
/// `batch × max_len`, f32 and AdamW, from the config alone (so the page can say it before a
/// download): weights; gradients and two moments for what trains (every weight, or the LoRA
/// factors, rank·(in + out) per adapted linear); activations kept for the backward pass. Per
/// token and layer a Llama layer keeps about 12·hidden + 4·intermediate + 3·kv_dim floats
/// (norms, q/k/v before and after rotary, repeated k/v, context, residuals, gate, up, SiLU and
/// their product) plus 2·heads·len for the attention scores and probabilities; a GPT-2 block
/// about 13·hidden + 3·inner + 3·heads·len. The head adds 3·vocab per token (logits,
/// log-softmax, their gradient), and LoRA keeps each adapted linear's merged weight `W + s·A·B`
/// for the backward pass.
pub fn estimate_decoder_memory(cfg: &DecoderConfig, recipe: &Recipe, batch: usize, max_len: usize) -> MemoryEstimate {
    let modules = if recipe.strategy == Strategy::Lora { crate::models::causal::lora_modules(cfg, &recipe.lora_targets) } else { Vec::new() };
    let (parameters, linears) = decoder_shapes(cfg, &modules);
    let (tokens, len) = ((batch * max_len) as u64, max_len as u64);
    let (per_layer, heads, hidden, layers, vocab) = match cfg {
        DecoderConfig::Llama(c) => {
            let (h, i, kv) = (c.hidden as u64, c.intermediate as u64, (c.kv_heads * c.head_dim) as u64);
            (12 * h + 4 * i + 3 * kv + 2 * c.heads as u64 * len, c.heads as u64, h, c.layers as u64, c.vocab_size as u64)
        }
        DecoderConfig::Gpt2(c) => {
            let (h, i) = (c.hidden as u64, c.inner as u64);
            (13 * h + 3 * i + 3 * c.heads as u64 * len, c.heads as u64, h, c.layers as u64, c.vocab_size as u64)
        }
    };
    let (trainable, merged) = match recipe.strategy {
        Strategy::Lora => linears.iter().fold((0u64, 0u64), |(t, m), &(d_in, d_out)| {
            (t + layers * (recipe.lora_rank * (d_in + d_out)) as u64, m + layers * (d_in * d_out) as u64)
        }),
        _ => (parameters as u64, 0),
    };
    let activations = 4 * (tokens * (layers * per_layer + 2 * hidden + 3 * vocab) + merged);
    let largest_tensor = 4 * (tokens * vocab).max(vocab * hidden).max(batch as u64 * heads * len * len);
    MemoryEstimate::of(parameters, trainable as usize, activations, largest_tensor)
}

