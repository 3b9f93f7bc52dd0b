//! Generation with a causal LM: greedy or sampled (temperature, top-k, top-p, repetition
//! penalty, seed), stop sequences, the KV cache, and 8-bit weights on the CPU (models/q8.rs), one
//! token at a time so the page can stream and stop it.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::backend::read_f32;
use crate::hf::tokenizer::TextTokenizer;
use crate::error::{Error, Result};
use crate::models::causal::CausalLm;
use crate::models::decoder::KvCache;
use crate::models::q8::{Q8Cache, Q8Llama};

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
