//! Fine-tuning a causal LM, as a step-able session like the classifier's: plain text packed
//! into blocks of `max_len` tokens (continued pre-training, HF `run_clm`'s `group_texts`), or
//! prompt → completion pairs where only the completion is learnt (the prompt's tokens weigh 0 in
//! the loss). Every weight trains with AdamW, warm-up and the recipe's schedule, clipping and
//! gradient accumulation; loss and perplexity on held-out rows after every epoch.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use web_time::Instant;

use crate::causal::{CausalLm, CausalModel, next_token_loss};
use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;
use crate::train::{Recipe, Stepper, clip_global_norm, read_step};
use crate::weights::{LoadReport, read_f32};

/// One training row: token ids and a loss weight per token (1: learn to predict it, 0: context
/// or padding).
#[derive(Debug, Clone, PartialEq)]
pub struct LmRow {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Built-in prompt templates for instruction tuning (`{prompt}` is replaced by the prompt).
pub const PROMPT_TEMPLATES: &[(&str, &str)] = &[
    ("question-answering", "Question: {prompt}\nAnswer: "),
    ("summarization", "Summarize the text.\n\n{prompt}\n\nSummary: "),
    ("translation", "Translate to French.\n\n{prompt}\n\nFrench: "),
    ("writing", "{prompt}\n\n"),
];

/// A built-in template by name, or the text itself as a template.
pub fn template_for(name_or_template: &str) -> String {
    PROMPT_TEMPLATES.iter().find(|(n, _)| *n == name_or_template).map_or_else(|| name_or_template.to_string(), |(_, t)| t.to_string())
}

/// Prompt → completion pairs from two columns of a table (JSONL `{"prompt", "completion"}`, CSV,
/// TSV); rows with an empty prompt or completion are refused with their row number.
pub fn pairs_from_table(table: &crate::data::Table, prompt: &str, completion: &str) -> Result<Vec<(String, String)>> {
    let find = |name: &str, what: &str| {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::data(format!(
                "{}: no {what} column \"{name}\"; columns found: {}",
                table.name,
                table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (p, c) = (find(prompt, "prompt")?, find(completion, "completion")?);
    let mut pairs = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let (pt, ct) = (row[p].trim(), row[c].trim());
        if pt.is_empty() || ct.is_empty() {
            return Err(Error::data(format!("{}: row {} has an empty {}", table.name, i + 1, if pt.is_empty() { "prompt" } else { "completion" })));
        }
        pairs.push((pt.to_string(), ct.to_string()));
    }
    if pairs.is_empty() {
        return Err(Error::data(format!("{}: no prompt/completion rows", table.name)));
    }
    Ok(pairs)
}

/// Plain text → blocks of `block_len` tokens: every text tokenized (with the tokenizer's own
/// special tokens), followed by `eos`, all concatenated and cut into blocks; a last partial block
/// is kept when it has at least two tokens. Every token is learnt.
pub fn pack_texts(tok: &TextTokenizer, texts: &[String], block_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if block_len < 2 {
        return Err(Error::Recipe("max_len must be at least 2 tokens for language modelling".into()));
    }
    let mut stream = Vec::new();
    for t in texts {
        stream.extend(tok.encode_all(t)?);
        stream.extend(eos);
    }
    let rows: Vec<LmRow> = stream
        .chunks(block_len)
        .filter(|c| c.len() >= 2)
        .map(|c| LmRow { ids: c.to_vec(), weights: vec![1.0; c.len()] })
        .collect();
    if rows.is_empty() {
        return Err(Error::data("the text has fewer than two tokens: nothing to learn"));
    }
    Ok(rows)
}

/// Prompt → completion pairs: `template` with `{prompt}` filled in, then the completion and
/// `eos`; only the completion and `eos` are learnt. Cut to `max_len` tokens; a pair whose prompt
/// leaves no room for the completion is refused with its row number.
pub fn instruction_rows(tok: &TextTokenizer, pairs: &[(String, String)], template: &str, max_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if !template.contains("{prompt}") {
        return Err(Error::Recipe(format!("the prompt template must contain {{prompt}} (got \"{template}\")")));
    }
    let mut rows = Vec::with_capacity(pairs.len());
    for (i, (prompt, completion)) in pairs.iter().enumerate() {
        let context = tok.encode_all(&template.replace("{prompt}", prompt))?;
        let mut answer = tok.encode_plain(completion)?;
        answer.extend(eos);
        if context.len() + 1 > max_len || answer.is_empty() {
            return Err(Error::data(format!(
                "row {}: the prompt takes {} tokens, leaving no room for the completion within max_len {max_len}",
                i + 1,
                context.len()
            )));
        }
        let mut ids = context.clone();
        ids.extend(&answer);
        ids.truncate(max_len);
        let mut weights = vec![0.0; context.len()];
        weights.resize(ids.len(), 1.0);
        rows.push(LmRow { ids, weights });
    }
    if rows.is_empty() {
        return Err(Error::data("no prompt/completion pairs"));
    }
    Ok(rows)
}

/// A right-padded batch: ids `[batch, seq]` (padding with `pad`; causal attention never lets a
/// real token see a later pad) and the rows, for the loss.
fn batch(rows: &[&LmRow], pad: u32, device: &Device) -> Tensor<2, Int> {
    let seq = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad as i64; rows.len() * seq];
    for (b, r) in rows.iter().enumerate() {
        for (t, &id) in r.ids.iter().enumerate() {
            ids[b * seq + t] = id as i64;
        }
    }
    Tensor::from_data(TensorData::new(ids, [rows.len(), seq]), device)
}

fn loss_of(model: &CausalLm, rows: &[&LmRow], pad: u32, device: &Device) -> Result<Tensor<1>> {
    let logits = model.forward(batch(rows, pad, device), None); // [batch, seq, vocab]
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.ids.clone()).collect();
    let w: Vec<Vec<f32>> = rows.iter().map(|r| r.weights.clone()).collect();
    next_token_loss(logits, &ids, &w)
}

/// Tokens a row teaches (targets with weight > 0, the first token predicts nothing).
fn learnt(r: &LmRow) -> f32 {
    r.weights.iter().skip(1).sum()
}

/// Held-out next-token loss and perplexity.
#[derive(Debug, Clone, Serialize)]
pub struct LmEval {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub perplexity: f64,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LmReport {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub done: bool,
    pub eval: Option<LmEval>,
}

pub struct LmSession {
    model: Option<CausalLm>,
    optim: ModuleOptimizer,
    pub recipe: Recipe,
    train: Vec<LmRow>,
    eval: Vec<LmRow>,
    pub load_report: LoadReport,
    pad: u32,
    device: Device,
    base_device: Device,
    rng: StdRng,
    order: Vec<usize>,
    cursor: usize,
    pub step: usize,
    pub epoch: usize,
    pub total_steps: usize,
    warmup_steps: usize,
    pub losses: Vec<f64>,
    /// Held-out scores before training and after every epoch.
    pub history: Vec<LmEval>,
    started: Option<Instant>,
    pub train_seconds: f64,
    tokens_seen: usize,
}

impl LmSession {
    /// A full fine-tuning run over `train` (rows from `pack_texts` or `instruction_rows`) with
    /// the recipe's epochs, lr, batch size, warm-up, schedule, weight decay, clipping, gradient
    /// accumulation and seed.
    pub fn new(cm: &CausalModel, train: Vec<LmRow>, eval: Vec<LmRow>, recipe: Recipe, device: &Device) -> Result<Self> {
        recipe.validate(cm.config.max_positions())?;
        if train.is_empty() {
            return Err(Error::data("no training rows"));
        }
        if let Some(r) = train.iter().chain(&eval).find(|r| r.ids.len() > cm.config.max_positions()) {
            return Err(Error::data(format!("a row has {} tokens; this model takes at most {}", r.ids.len(), cm.config.max_positions())));
        }
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (model, load_report) = cm.load(recipe.seed, &ad)?;
        let per_epoch = train.len().div_ceil(recipe.batch_size).div_ceil(recipe.grad_accum.max(1));
        let total_steps = per_epoch * recipe.epochs;
        Ok(LmSession {
            model: Some(model),
            optim: AdamWConfig::new().with_weight_decay(recipe.weight_decay as f32).with_epsilon(1e-8).init(),
            warmup_steps: (total_steps as f64 * recipe.warmup_ratio).ceil() as usize,
            rng: StdRng::seed_from_u64(recipe.seed),
            recipe,
            train,
            eval,
            load_report,
            pad: cm.eos.first().copied().unwrap_or(0),
            device: ad,
            base_device: device.clone(),
            order: Vec::new(),
            cursor: 0,
            step: 0,
            epoch: 0,
            total_steps,
            losses: Vec::new(),
            history: Vec::new(),
            started: None,
            train_seconds: 0.0,
            tokens_seen: 0,
        })
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    pub fn train_count(&self) -> usize {
        self.train.len()
    }

    pub fn eval_count(&self) -> usize {
        self.eval.len()
    }

    fn model(&self) -> Result<&CausalLm> {
        self.model.as_ref().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))
    }

    /// The current weights in eval mode (dropout off), for generation and scoring.
    pub fn inference_model(&self) -> Result<CausalLm> {
        Ok(self.model()?.valid())
    }

    pub fn base_device(&self) -> &Device {
        &self.base_device
    }

    /// Next-token loss and perplexity over `rows` (weighted tokens only), in eval mode.
    pub async fn score(&self, rows: &[LmRow]) -> Result<LmEval> {
        let model = self.inference_model()?;
        score(&model, rows, self.pad, self.recipe.batch_size, &self.base_device, self.step, self.epoch).await
    }

    /// `score` on the held-out rows.
    pub async fn evaluate(&self) -> Result<LmEval> {
        if self.eval.is_empty() {
            return Err(Error::data("no held-out rows to evaluate on"));
        }
        self.score(&self.eval).await
    }

    /// One optimizer step on the next batch(es).
    pub async fn step(&mut self) -> Result<LmReport> {
        if self.is_done() {
            return Err(Error::Other("this run is already finished".into()));
        }
        if self.history.is_empty() && !self.eval.is_empty() {
            let before = self.evaluate().await?;
            self.history.push(before);
        }
        let t0 = Instant::now();
        if self.started.is_none() {
            self.started = Some(t0);
        }
        if self.cursor >= self.order.len() {
            self.order = (0..self.train.len()).collect();
            self.order.shuffle(&mut self.rng);
            self.cursor = 0;
        }
        let mut micro: Vec<Vec<usize>> = Vec::new();
        while micro.len() < self.recipe.grad_accum.max(1) && self.cursor < self.order.len() {
            let end = (self.cursor + self.recipe.batch_size).min(self.order.len());
            micro.push(self.order[self.cursor..end].to_vec());
            self.cursor = end;
        }
        let total: f32 = micro.iter().flatten().map(|&i| learnt(&self.train[i])).sum();
        let tokens: usize = micro.iter().flatten().map(|&i| self.train[i].ids.len()).sum();
        self.device.seed(self.recipe.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(self.step as u64));
        let lr = self.recipe.schedule.lr(self.recipe.lr, self.step, self.warmup_steps, self.total_steps);
        let model = self.model.take().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))?;
        // Every learnt token weighs the same, as in one big batch.
        let mut acc = GradientsAccumulator::<CausalLm>::new();
        let mut loss: Option<Tensor<1>> = None;
        for idx in &micro {
            let rows: Vec<&LmRow> = idx.iter().map(|&i| &self.train[i]).collect();
            let share: f32 = rows.iter().map(|r| learnt(r)).sum::<f32>() / total.max(1.0);
            if share == 0.0 {
                continue;
            }
            let part = loss_of(&model, &rows, self.pad, &self.device)?.mul_scalar(share);
            acc.accumulate(&model, GradientsParams::from_grads(part.backward(), &model));
            let part = part.detach();
            loss = Some(match loss.take() {
                Some(l) => l + part,
                None => part,
            });
        }
        let Some(loss) = loss else {
            self.model = Some(model);
            return Err(Error::data("a batch without any token to learn (every completion is empty)"));
        };
        let mut grads = acc.grads();
        let norm = clip_global_norm(&model, &mut grads, self.recipe.max_grad_norm);
        self.model = Some(self.optim.step(lr, model, grads));
        let (loss_v, grad_norm) = read_step(loss, norm, self.step, "language-model loss", "lower the learning rate and start again").await?;
        self.step += 1;
        self.losses.push(loss_v);
        self.tokens_seen += tokens;
        self.train_seconds += t0.elapsed().as_secs_f64();
        let mut eval = None;
        if self.cursor >= self.order.len() {
            self.epoch += 1;
            if !self.eval.is_empty() {
                let e = self.evaluate().await?;
                self.history.push(e.clone());
                eval = Some(e);
            }
        }
        Ok(LmReport {
            step: self.step,
            total_steps: self.total_steps,
            epoch: self.epoch,
            epochs: self.recipe.epochs,
            loss: loss_v,
            lr,
            grad_norm,
            tokens_per_s: self.tokens_seen as f64 / self.train_seconds.max(1e-9),
            elapsed_s: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            done: self.is_done(),
            eval,
        })
    }

    /// The fine-tuned model as an HF folder: config.json (as loaded), tokenizer.json,
    /// model.safetensors (HF names; a tied head is not stored, as transformers does).
    pub async fn export(&self, cm: &CausalModel) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            ("config.json".to_string(), cm.config_bytes.clone()),
            ("tokenizer.json".to_string(), cm.tokenizer.raw().to_vec()),
            ("model.safetensors".to_string(), crate::weights::export_causal_safetensors(self.model()?).await?),
        ])
    }
}

impl Stepper for LmSession {
    type Report = LmReport;
    fn finished(&self) -> bool {
        self.is_done()
    }
    async fn next_step(&mut self) -> Result<LmReport> {
        self.step().await
    }
}

/// Weighted next-token loss and perplexity of `model` over `rows`.
pub async fn score(model: &CausalLm, rows: &[LmRow], pad: u32, batch_size: usize, device: &Device, step: usize, epoch: usize) -> Result<LmEval> {
    let (mut sum, mut count) = (0.0f64, 0.0f64);
    for chunk in rows.chunks(batch_size.max(1)) {
        let refs: Vec<&LmRow> = chunk.iter().filter(|r| learnt(r) > 0.0).collect();
        if refs.is_empty() {
            continue;
        }
        let n: f32 = refs.iter().map(|r| learnt(r)).sum();
        let loss = loss_of(model, &refs, pad, device)?;
        sum += read_f32(loss).await?.first().copied().unwrap_or(f32::NAN) as f64 * n as f64;
        count += n as f64;
    }
    if count == 0.0 {
        return Err(Error::data("no token to score"));
    }
    let loss = sum / count;
    Ok(LmEval { step, epoch, loss, perplexity: loss.exp(), tokens: count as usize })
}
