//! Causal language models (GPT-2, Llama, Qwen2): a Hugging Face folder's files in (config.json,
//! tokenizer.json, `model.safetensors` or the shards an index names), next-token logits and loss,
//! and generation with a key/value cache, one token per `step` so a page can stream them.

use burn::module::{Lora, Module, ParamGroup};
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::models::decoder::KvCache;
use crate::models::q8::{Q8Cache, Q8Llama};
use std::sync::Arc;
use crate::models::gpt2::{Gpt2Config, Gpt2ConfigFile, Gpt2LmHead, gpt2_buffer, gpt2_optional};
use crate::models::llama::{LlamaConfig, LlamaConfigFile, LlamaForCausalLm, llama_buffer, llama_optional};
use crate::tokenize::TextTokenizer;
use crate::recipe::LoraTarget;
use crate::weights::{LoadReport, ParamSource, read_f32};

pub const SUPPORTED_DECODERS: &str =
    "GPT-2 (model_type \"gpt2\"), Llama (\"llama\": SmolLM2, TinyLlama) and Qwen2 (\"qwen2\") causal language models";

/// A decoder's validated configuration, by architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum DecoderConfig {
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

impl DecoderConfig {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("not valid JSON for a model config: {e}")))?;
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Config(format!("no \"model_type\" key; Burnish's generative models are {SUPPORTED_DECODERS}")))?
            .to_string();
        let parse = |what: &str, e: serde_json::Error| Error::Config(format!("not a valid {what} config: {e}"));
        match model_type.as_str() {
            "gpt2" => Ok(DecoderConfig::Gpt2(serde_json::from_value::<Gpt2ConfigFile>(v).map_err(|e| parse("GPT-2", e))?.validate()?)),
            "llama" | "qwen2" => Ok(DecoderConfig::Llama(serde_json::from_value::<LlamaConfigFile>(v).map_err(|e| parse(&model_type, e))?.validate()?)),
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
                let kind = if c.qwen2 { "Qwen2 checkpoint" } else { "Llama checkpoint" };
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
        if weights.is_empty() {
            return Err(Error::Weights("no weights: give model.safetensors (or the shards its index names)".into()));
        }
        let v: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
        let eos = match v.get("eos_token_id") {
            Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).map(|x| x as u32).collect(),
            _ => Vec::new(),
        };
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
                let (bos, eos) = match config.as_deref().map(crate::chat::special_tokens) {
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

/// How to pick tokens. `temperature` 0 is greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probabilities add up to `top_p`.
    pub top_p: f64,
    /// HF's repetition penalty: logits of tokens already in the text are divided by it (or
    /// multiplied, when negative). 1 is off.
    pub repetition_penalty: f64,
    pub seed: u64,
    /// Generation ends when the text contains one of these (it is cut before it).
    pub stop: Vec<String>,
    /// Reuse keys and values of earlier positions (same tokens, much faster).
    pub use_cache: bool,
    /// Generate on 8-bit weights (`models/q8.rs`: Llama and Qwen2 on the CPU; about 4× less
    /// memory traffic per token, logits within rounding of the f32 model's). Ignored where it
    /// does not apply; `Generation::int8` says whether it was used.
    pub int8: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_new_tokens: 64, temperature: 0.0, top_k: 0, top_p: 1.0, repetition_penalty: 1.0, seed: 0, stop: Vec::new(), use_cache: true, int8: false }
    }
}

impl GenerateOptions {
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 {
            return Err(Error::Recipe("max_new_tokens must be at least 1".into()));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Recipe(format!("temperature must be ≥ 0 (0 is greedy), got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Recipe(format!("top_p must be in (0, 1], got {}", self.top_p)));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(Error::Recipe(format!("repetition_penalty must be > 0 (1 is off), got {}", self.repetition_penalty)));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::Recipe("a stop sequence cannot be empty".into()));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    StopSequence,
    ContextFull,
}

/// A generation in progress: the prompt and the tokens so far, the cache, the sampler's RNG.
pub struct Generation {
    ids: Vec<u32>,
    prompt_len: usize,
    cache: Option<KvCache>,
    /// Ids already in the cache.
    fed: usize,
    rng: StdRng,
    opts: GenerateOptions,
    eos: Vec<u32>,
    max_positions: usize,
    pub stopped: Option<StopReason>,
    /// The 8-bit copy of the model and its cache, when generating on it.
    fast: Option<(Arc<Q8Llama>, Q8Cache)>,
}

/// An 8-bit copy of `model` for generation (`GenerateOptions::int8`), where its architecture
/// has one (Llama, Qwen2; not GPT-2).
pub async fn int8_model(model: &CausalLm) -> Result<Option<Q8Llama>> {
    match model {
        CausalLm::Llama(m) => Ok(Some(Q8Llama::from_model(m).await?)),
        CausalLm::Gpt2(_) => Ok(None),
    }
}

impl Generation {
    pub fn new(model: &CausalLm, prompt: Vec<u32>, opts: GenerateOptions, eos: Vec<u32>, max_positions: usize) -> Result<Self> {
        opts.validate()?;
        if prompt.is_empty() {
            return Err(Error::data("the prompt is empty: write some text to continue"));
        }
        if prompt.len() >= max_positions {
            return Err(Error::data(format!("the prompt has {} tokens; this model takes at most {max_positions}", prompt.len())));
        }
        Ok(Generation {
            prompt_len: prompt.len(),
            ids: prompt,
            cache: opts.use_cache.then(|| model.new_cache()),
            fed: 0,
            rng: StdRng::seed_from_u64(opts.seed),
            opts,
            eos,
            max_positions,
            stopped: None,
            fast: None,
        })
    }

    /// Generates on `q8` (an `int8_model` of the same weights) from now on. Only before the
    /// first step, so that one cache holds every position.
    pub fn use_int8(&mut self, q8: Arc<Q8Llama>) {
        if self.fed == 0 {
            self.fast = Some((q8.clone(), q8.new_cache()));
        }
    }

    /// Whether the tokens come from the 8-bit weights.
    pub fn int8(&self) -> bool {
        self.fast.is_some()
    }

    /// The generated tokens so far.
    pub fn generated(&self) -> &[u32] {
        &self.ids[self.prompt_len..]
    }

    /// The generated text so far, cut before a stop sequence.
    pub fn text(&self, tokenizer: &TextTokenizer) -> Result<String> {
        let mut text = tokenizer.decode(self.generated())?;
        if let Some(at) = self.opts.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(at);
        }
        Ok(text)
    }

    /// Produces one token (`None` once generation has ended; `stopped` says why).
    pub async fn step(&mut self, model: &CausalLm, tokenizer: &TextTokenizer) -> Result<Option<u32>> {
        if self.stopped.is_some() {
            return Ok(None);
        }
        let mut last = if let Some((q8, cache)) = self.fast.as_mut() {
            q8.forward(&self.ids[self.fed..], cache)
        } else {
            let device = match model {
                CausalLm::Gpt2(m) => m.wte.weight.device(),
                CausalLm::Llama(m) => m.embed_tokens.weight.device(),
            };
            let input: Vec<i64> = self.ids[if self.cache.is_some() { self.fed } else { 0 }..].iter().map(|&x| x as i64).collect();
            let n = input.len();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(input, [1, n]), &device);
            read_f32(model.last_logits(ids, self.cache.as_mut())).await? // [1, vocab]
        };
        self.fed = self.ids.len();
        let next = pick(&mut last, &self.ids, &self.opts, &mut self.rng);
        self.ids.push(next);
        if self.eos.contains(&next) {
            self.stopped = Some(StopReason::Eos);
        } else if self.generated().len() >= self.opts.max_new_tokens {
            self.stopped = Some(StopReason::MaxTokens);
        } else if self.ids.len() >= self.max_positions {
            self.stopped = Some(StopReason::ContextFull);
        }
        if !self.opts.stop.is_empty() {
            let text = tokenizer.decode(self.generated())?;
            if self.opts.stop.iter().any(|s| text.contains(s.as_str())) {
                self.stopped = Some(StopReason::StopSequence);
            }
        }
        Ok(Some(next))
    }
}

/// Chooses the next token from `logits` (modified in place) as HF's generate does: repetition
/// penalty, then greedy, or temperature → top-k → top-p → sampling.
fn pick(logits: &mut [f32], history: &[u32], opts: &GenerateOptions, rng: &mut StdRng) -> u32 {
    if opts.repetition_penalty != 1.0 {
        let p = opts.repetition_penalty as f32;
        let mut seen = history.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = if *l > 0.0 { *l / p } else { *l * p };
            }
        }
    }
    if opts.temperature == 0.0 {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let t = opts.temperature as f32;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap_or(std::cmp::Ordering::Equal));
    if opts.top_k > 0 {
        order.truncate(opts.top_k);
    }
    let max = logits[order[0]] / t;
    let mut probs: Vec<f64> = order.iter().map(|&i| ((logits[i] / t - max) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    let all = probs.len();
    let mut keep = all;
    let mut cum = 0.0;
    for (n, p) in probs.iter_mut().enumerate() {
        *p /= total;
        cum += *p;
        if cum >= opts.top_p && keep == all {
            keep = n + 1;
        }
    }
    let kept = &probs[..keep];
    let mass: f64 = kept.iter().sum();
    let mut r = rng.random::<f64>() * mass;
    for (n, p) in kept.iter().enumerate() {
        r -= p;
        if r <= 0.0 {
            return order[n] as u32;
        }
    }
    order[keep - 1] as u32
}
