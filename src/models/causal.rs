//! Causal language models (GPT-2, Llama, Qwen2): a Hugging Face folder's files in (config.json,
//! tokenizer.json, `model.safetensors` or the shards an index names), next-token logits and loss,
//! and generation with a key/value cache, one token per `step` so a page can stream them.

use burn::module::{Lora, Module, ParamGroup};
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;

use crate::hf::chat_template::ChatTemplate;
use crate::error::{Error, Result};
use crate::models::decoder::KvCache;
use crate::models::gpt2::{Gpt2Config, Gpt2ConfigFile, Gpt2LmHead, gpt2_buffer, gpt2_optional};
use crate::models::llama::{LlamaConfig, LlamaConfigFile, LlamaForCausalLm, llama_buffer, llama_optional};
use crate::hf::tokenizer::TextTokenizer;
use crate::recipe::LoraTarget;
use crate::hf::weights::{LoadReport, ParamSource};

pub const SUPPORTED_DECODERS: &str =
    "GPT-2 (model_type \"gpt2\"), Llama (\"llama\": SmolLM2, TinyLlama), Qwen2 (\"qwen2\") and Qwen3 (\"qwen3\") causal language models";

/// A decoder's validated configuration, by architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum DecoderConfig {
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

impl DecoderConfig {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| crate::error::coded!(Config, "config.not-json", "not valid JSON for a model config: {error}", error = e))?;
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Config(format!("no \"model_type\" key; Burnish's generative models are {SUPPORTED_DECODERS}")))?
            .to_string();
        let parse = |what: &str, e: serde_json::Error| Error::Config(format!("not a valid {what} config: {e}"));
        match model_type.as_str() {
            "gpt2" => Ok(DecoderConfig::Gpt2(serde_json::from_value::<Gpt2ConfigFile>(v).map_err(|e| parse("GPT-2", e))?.validate()?)),
            "llama" | "qwen2" | "qwen3" => Ok(DecoderConfig::Llama(serde_json::from_value::<LlamaConfigFile>(v).map_err(|e| parse(&model_type, e))?.validate()?)),
            "bert" => Err(Error::UnsupportedModel {
                found: model_type,
                supported: format!("{SUPPORTED_DECODERS} for generation (BERT is an encoder: fine-tune it for classification instead)"),
            }),
            _ => Err(Error::UnsupportedModel { found: model_type, supported: SUPPORTED_DECODERS.into() }),
        }
    }

    /// The HF class this configuration loads as.
    pub fn architecture(&self) -> &'static str {
        match self {
            DecoderConfig::Gpt2(_) => "GPT2LMHeadModel",
            DecoderConfig::Llama(c) if c.qwen2 => "Qwen2ForCausalLM",
            DecoderConfig::Llama(c) if c.qk_norm => "Qwen3ForCausalLM",
            DecoderConfig::Llama(_) => "LlamaForCausalLM",
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            DecoderConfig::Gpt2(c) => c.vocab_size,
            DecoderConfig::Llama(c) => c.vocab_size,
        }
    }

    pub fn layers(&self) -> usize {
        match self {
            DecoderConfig::Gpt2(c) => c.layers,
            DecoderConfig::Llama(c) => c.layers,
        }
    }

    /// The longest sequence the model takes (GPT-2's learned positions end there).
    pub fn max_positions(&self) -> usize {
        match self {
            DecoderConfig::Gpt2(c) => c.max_positions,
            DecoderConfig::Llama(c) => c.max_positions,
        }
    }

    fn initializer_range(&self) -> f64 {
        match self {
            DecoderConfig::Gpt2(c) => c.initializer_range,
            DecoderConfig::Llama(c) => c.initializer_range,
        }
    }
}

/// A causal LM of any supported architecture.
#[derive(Module, Debug)]
pub enum CausalLm {
    Gpt2(Gpt2LmHead),
    Llama(LlamaForCausalLm),
}

impl CausalLm {
    /// Builds the model from its weight files (one `model.safetensors`, or every shard).
    pub fn load(cfg: &DecoderConfig, weights: &[&[u8]], seed: u64, device: &Device) -> Result<(Self, LoadReport)> {
        let init = cfg.initializer_range();
        Ok(match cfg {
            DecoderConfig::Gpt2(c) => {
                let mut src = ParamSource::from_shards(weights, init, seed, gpt2_optional, gpt2_buffer, "GPT-2 checkpoint")?;
                (CausalLm::Gpt2(Gpt2LmHead::load(c, &mut src, device)?), src.report())
            }
            DecoderConfig::Llama(c) => {
                let kind = if c.qwen2 { "Qwen2 checkpoint" } else if c.qk_norm { "Qwen3 checkpoint" } else { "Llama checkpoint" };
                let mut src = ParamSource::from_shards(weights, init, seed, llama_optional, llama_buffer, kind)?;
                (CausalLm::Llama(LlamaForCausalLm::load(c, &mut src, device)?), src.report())
            }
        })
    }

    /// Next-token logits `[batch, seq, vocab]` for `ids` `[batch, seq]`, continuing `cache`.
    pub fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        match self {
            CausalLm::Gpt2(m) => m.forward(ids, cache),
            CausalLm::Llama(m) => m.forward(ids, cache),
        }
    }

    /// Logits `[batch, vocab]` for the last position only: generation needs no others, and the
    /// vocabulary projection is the largest matrix product of a step (a prompt's prefill would
    /// otherwise project every prompt position).
    pub fn last_logits(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        let [batch, seq] = ids.dims();
        let last = |h: Tensor<3>| h.narrow(1, seq - 1, 1); // [batch, 1, hidden]
        let logits = match self {
            CausalLm::Gpt2(m) => m.head(last(m.hidden(ids, cache))),
            CausalLm::Llama(m) => m.head(last(m.hidden(ids, cache))),
        }; // [batch, 1, vocab]
        let vocab = logits.dims()[2];
        logits.reshape([batch, vocab])
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(match self {
            CausalLm::Gpt2(m) => m.blocks.len(),
            CausalLm::Llama(m) => m.layers.len(),
        })
    }
}

/// The HF module names (inside a layer) LoRA adapts for a recipe target. Llama / Qwen2:
/// query → `self_attn.q_proj`, key → `k_proj`, value → `v_proj`, attention output → `o_proj`,
/// intermediate → `mlp.gate_proj` and `mlp.up_proj`, output → `mlp.down_proj`. GPT-2 fuses q, k
/// and v in `attn.c_attn` (any of the three adapts it), attention output → `attn.c_proj`,
/// intermediate → `mlp.c_fc`, output → `mlp.c_proj`.
pub fn lora_modules(cfg: &DecoderConfig, targets: &[LoraTarget]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for t in targets {
        let add: &[&'static str] = match (cfg, t) {
            (DecoderConfig::Gpt2(_), LoraTarget::Query | LoraTarget::Key | LoraTarget::Value) => &["attn.c_attn"],
            (DecoderConfig::Gpt2(_), LoraTarget::AttentionOutput) => &["attn.c_proj"],
            (DecoderConfig::Gpt2(_), LoraTarget::Intermediate) => &["mlp.c_fc"],
            (DecoderConfig::Gpt2(_), LoraTarget::Output) => &["mlp.c_proj"],
            (DecoderConfig::Llama(_), LoraTarget::Query) => &["self_attn.q_proj"],
            (DecoderConfig::Llama(_), LoraTarget::Key) => &["self_attn.k_proj"],
            (DecoderConfig::Llama(_), LoraTarget::Value) => &["self_attn.v_proj"],
            (DecoderConfig::Llama(_), LoraTarget::AttentionOutput) => &["self_attn.o_proj"],
            (DecoderConfig::Llama(_), LoraTarget::Intermediate) => &["mlp.gate_proj", "mlp.up_proj"],
            (DecoderConfig::Llama(_), LoraTarget::Output) => &["mlp.down_proj"],
        };
        for n in add {
            if !names.contains(n) {
                names.push(n);
            }
        }
    }
    names
}

impl CausalLm {
    /// Every linear of every layer as (HF module name, linear), e.g.
    /// `model.layers.3.self_attn.q_proj`.
    pub fn named_linears(&self) -> Vec<(String, &Linear)> {
        let mut out = Vec::new();
        match self {
            CausalLm::Gpt2(g) => {
                for (i, b) in g.blocks.iter().enumerate() {
                    let p = format!("transformer.h.{i}");
                    out.push((format!("{p}.attn.c_attn"), &b.c_attn));
                    out.push((format!("{p}.attn.c_proj"), &b.attn_proj));
                    out.push((format!("{p}.mlp.c_fc"), &b.c_fc));
                    out.push((format!("{p}.mlp.c_proj"), &b.mlp_proj));
                }
            }
            CausalLm::Llama(l) => {
                for (i, layer) in l.layers.iter().enumerate() {
                    let p = format!("model.layers.{i}");
                    let a = &layer.self_attn;
                    out.push((format!("{p}.self_attn.q_proj"), &a.q_proj));
                    out.push((format!("{p}.self_attn.k_proj"), &a.k_proj));
                    out.push((format!("{p}.self_attn.v_proj"), &a.v_proj));
                    out.push((format!("{p}.self_attn.o_proj"), &a.o_proj));
                    out.push((format!("{p}.mlp.gate_proj"), &layer.gate_proj));
                    out.push((format!("{p}.mlp.up_proj"), &layer.up_proj));
                    out.push((format!("{p}.mlp.down_proj"), &layer.down_proj));
                }
            }
        }
        out
    }

    /// The linears `modules` (from `lora_modules`) names, in every layer.
    pub fn lora_linears(&self, modules: &[&str]) -> Vec<(String, &Linear)> {
        self.named_linears().into_iter().filter(|(name, _)| modules.iter().any(|m| name.ends_with(&format!(".{m}")))).collect()
    }

    /// Attaches burn's LoRA adapters (`Module::apply_lora`) to `modules` in every layer: every
    /// pretrained weight (embeddings, norms, head included) is frozen and only the adapters
    /// train. A starts with PEFT's Kaiming-uniform spread (std 1/√(3·hidden)), B at zero, so the
    /// outputs are unchanged at step 0; `dropout` is PEFT's `lora_dropout`.
    pub fn with_lora(self, modules: &[&str], rank: usize, alpha: f64, dropout: f64) -> Self {
        let ids = self.lora_linears(modules).iter().map(|(_, l)| l.weight.id).collect();
        let hidden = match &self {
            CausalLm::Gpt2(g) => g.wte.weight.dims()[1],
            CausalLm::Llama(l) => l.embed_tokens.weight.dims()[1],
        } as f64;
        let mut lora = Lora::new(rank, alpha).set_param_group(ParamGroup::from_ids(ids));
        lora.init_std = Some(1.0 / (3.0 * hidden).sqrt());
        let mut m = self.apply_lora(lora);
        match &mut m {
            CausalLm::Gpt2(g) => g.blocks.iter_mut().for_each(|b| b.lora_dropout = DropoutConfig::new(dropout).init()),
            CausalLm::Llama(l) => l.layers.iter_mut().for_each(|b| b.lora_dropout = DropoutConfig::new(dropout).init()),
        }
        m
    }
}

/// Mean next-token cross-entropy: position `t` predicts `ids[t + 1]`, counted where
/// `weights[b][t + 1]` is 1 (prompt tokens and padding are 0). `logits` `[batch, seq, vocab]`.
pub fn next_token_loss(logits: Tensor<3>, ids: &[Vec<u32>], weights: &[Vec<f32>]) -> Result<Tensor<1>> {
    let [batch, seq, vocab] = logits.dims();
    let device = logits.device();
    if seq < 2 || ids.len() != batch {
        return Err(Error::data("a causal-LM loss needs at least two tokens per row"));
    }
    let mut targets = vec![0i64; batch * (seq - 1)];
    let mut w = vec![0f32; batch * (seq - 1)];
    for b in 0..batch {
        for t in 0..seq - 1 {
            if let (Some(&id), Some(&wt)) = (ids[b].get(t + 1), weights[b].get(t + 1)) {
                targets[b * (seq - 1) + t] = id as i64;
                w[b * (seq - 1) + t] = wt;
            }
        }
    }
    let count: f32 = w.iter().sum();
    if count == 0.0 {
        return Err(Error::data("no token to learn: every target is masked"));
    }
    let logp = log_softmax(logits.narrow(1, 0, seq - 1).reshape([batch * (seq - 1), vocab]), 1); // [n, vocab]
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch * (seq - 1)]), &device).reshape([batch * (seq - 1), 1]);
    let picked = logp.gather(1, targets).reshape([batch * (seq - 1)]); // [n]
    let w = Tensor::<1>::from_data(TensorData::new(w, [batch * (seq - 1)]), &device);
    Ok((picked * w).sum().neg().div_scalar(count))
}

/// A causal LM's files as bytes: validated together.
pub struct CausalModel {
    pub config: DecoderConfig,
    /// config.json as given (exported back with the fine-tuned weights).
    pub config_bytes: Vec<u8>,
    pub tokenizer: TextTokenizer,
    /// `model.safetensors`, or the shards in index order.
    pub weights: Vec<Vec<u8>>,
    /// Token ids that end generation (config.json's `eos_token_id`, one or a list).
    pub eos: Vec<u32>,
    /// tokenizer_config.json as given (or made from GGUF metadata), exported with the model.
    pub tokenizer_config: Option<Vec<u8>>,
    /// chat_template.jinja as given (transformers ≥ 4.47 saves the template there), exported
    /// with the model.
    pub chat_template_file: Option<String>,
    /// The model's chat template, for chat data (`{"messages": [...]}`).
    pub chat_template: Option<ChatTemplate>,
}

impl CausalModel {
    pub fn from_bytes(config: &[u8], tokenizer: &[u8], weights: Vec<Vec<u8>>) -> Result<Self> {
        let cfg = DecoderConfig::from_bytes(config)?;
        let tok = TextTokenizer::from_bytes(tokenizer)?;
        if tok.vocab_size() > cfg.vocab_size() {
            return Err(Error::Tokenizer(format!(
                "the tokenizer has {} tokens but the model only {}: they do not belong together",
                tok.vocab_size(),
                cfg.vocab_size()
            )));
        }
        tok.check_fits(cfg.vocab_size())?;
        if weights.is_empty() {
            return Err(Error::Weights("no weights: give model.safetensors (or the shards its index names)".into()));
        }
        let v: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
        let eos: Vec<u64> = match v.get("eos_token_id") {
            Some(Value::Number(n)) => n.as_u64().into_iter().collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).collect(),
            _ => Vec::new(),
        };
        // An end token outside the vocabulary could never be generated: ignore it.
        let eos: Vec<u32> = eos.into_iter().filter(|&x| x < cfg.vocab_size() as u64).map(|x| x as u32).collect();
        Ok(CausalModel {
            config: cfg,
            config_bytes: config.to_vec(),
            tokenizer: tok,
            weights,
            eos,
            tokenizer_config: None,
            chat_template_file: None,
            chat_template: None,
        })
    }

    /// Adds tokenizer_config.json and/or chat_template.jinja (either may be absent): the chat
    /// template (the .jinja file's, else tokenizer_config.json's `chat_template`) is compiled
    /// with the config's BOS / EOS tokens, and both files are exported with the fine-tuned model.
    pub fn with_tokenizer_config(mut self, config: Option<Vec<u8>>, jinja: Option<String>) -> Result<Self> {
        let from_config = config.as_deref().map(ChatTemplate::from_tokenizer_config).transpose()?.flatten();
        self.chat_template = match &jinja {
            Some(source) => {
                let (bos, eos) = from_config.as_ref().map_or_else(|| (String::new(), String::new()), |t| (t.bos_token.clone(), t.eos_token.clone()));
                let (bos, eos) = match config.as_deref().map(crate::hf::chat_template::special_tokens) {
                    Some(Ok(tokens)) => tokens,
                    _ => (bos, eos),
                };
                Some(ChatTemplate::new(source, &bos, &eos)?)
            }
            None => from_config,
        };
        self.tokenizer_config = config;
        self.chat_template_file = jinja;
        Ok(self)
    }

    pub fn load(&self, seed: u64, device: &Device) -> Result<(CausalLm, LoadReport)> {
        let files: Vec<&[u8]> = self.weights.iter().map(Vec::as_slice).collect();
        CausalLm::load(&self.config, &files, seed, device)
    }
}

/// The shard file names of a `model.safetensors.index.json`, each once, in order of first use.
pub fn shard_files(index: &[u8]) -> Result<Vec<String>> {
    let v: Value = serde_json::from_slice(index).map_err(|e| Error::Weights(format!("model.safetensors.index.json is not valid JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Weights("model.safetensors.index.json has no \"weight_map\"".into()))?;
    let mut files: Vec<String> = Vec::new();
    for f in map.values() {
        let f = f.as_str().ok_or_else(|| Error::Weights("model.safetensors.index.json: a weight_map entry is not a file name".into()))?;
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(Error::Weights(format!("model.safetensors.index.json names \"{f}\", which is not a file in the same folder")));
        }
        if !files.iter().any(|x| x == f) {
            files.push(f.to_string());
        }
    }
    files.sort();
    Ok(files)
}


/// A GGUF Llama-family model as an in-memory HF folder: config.json (from `llama.*` /
/// `qwen2.*` metadata), tokenizer.json (rebuilt from the vocabulary), model.safetensors (every
/// tensor dequantized to f32 under its HF name).
pub fn from_gguf(bytes: &[u8]) -> Result<CausalModel> {
    let (config, tokenizer, weights) = crate::hf::gguf::to_hf_files(bytes)?;
    CausalModel::from_bytes(&config, &tokenizer, vec![weights])?.with_tokenizer_config(Some(crate::hf::gguf::tokenizer_config(&crate::hf::gguf::Gguf::parse(bytes)?)?), None)
}

