//! Masked-LM domain adaptation: continue BERT's pre-training objective on plain domain text
//! before fine-tuning a classifier. Masking follows transformers'
//! `DataCollatorForLanguageModeling` (each non-special token is chosen with probability
//! `mlm_probability`; a chosen token becomes `[MASK]` 80 % of the time, a random token 10 %, stays
//! 10 %); the loss is cross-entropy at the chosen positions only, through HF's `BertForMaskedLM`
//! head with the decoder tied to the word embeddings. Like `TrainSession`, a step-able state
//! machine whose tensor reads are all asynchronous (WebGPU-safe).

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use web_time::Instant;

use crate::checkpoint::Checkpoint;
use crate::data::Table;
use crate::error::{Error, Result};
use crate::models::bert::{BertInput, MaskedLm};
use crate::train::{Recipe, Stepper, clip_global_norm, cross_entropy, read_step};
use crate::weights::{LoadReport, ParamSource, read_f32};

/// One sequence after masking: the model's input and the (position, original id) it must predict.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub input: Vec<u32>,
    pub targets: Vec<(usize, u32)>,
}

/// What the masking rule needs to know about the tokenizer.
#[derive(Debug, Clone)]
pub struct MaskRule {
    pub special: Vec<u32>,
    pub mask_id: u32,
    pub vocab: usize,
    pub probability: f64,
}

impl MaskRule {
    pub fn of(ckpt: &Checkpoint, probability: f64) -> Result<Self> {
        let mask_id = ckpt.tokenizer.mask_id().ok_or_else(|| {
            Error::Tokenizer("this tokenizer has no [MASK] token, which masked-LM adaptation needs".into())
        })?;
        Ok(MaskRule { special: ckpt.tokenizer.special_ids(), mask_id, vocab: ckpt.tokenizer.vocab_size(), probability })
    }

    fn maskable(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_err()
    }

    /// Masks one sequence (80 % `[MASK]`, 10 % random token, 10 % unchanged). With `at_least_one`
    /// a sequence that drew no position gets one at random, so it always has something to score.
    pub fn apply(&self, ids: &[u32], rng: &mut StdRng, at_least_one: bool) -> Masked {
        let mut input = ids.to_vec();
        let mut chosen: Vec<usize> = (0..ids.len()).filter(|&t| self.maskable(ids[t]) && rng.random::<f64>() < self.probability).collect();
        if chosen.is_empty() && at_least_one {
            let candidates: Vec<usize> = (0..ids.len()).filter(|&t| self.maskable(ids[t])).collect();
            chosen.extend(candidates.choose(rng));
        }
        let mut targets = Vec::with_capacity(chosen.len());
        for t in chosen {
            targets.push((t, ids[t]));
            let r: f64 = rng.random();
            if r < 0.8 {
                input[t] = self.mask_id;
            } else if r < 0.9 {
                input[t] = rng.random_range(0..self.vocab as u32);
            }
        }
        Masked { input, targets }
    }
}

/// The non-empty texts of `column` in a domain-text table (a .txt file's column is "text").
pub fn domain_texts(table: &Table, column: &str) -> Result<Vec<String>> {
    let col = table.columns.iter().position(|c| c == column).ok_or_else(|| {
        Error::data(format!(
            "{}: no text column \"{column}\" for domain adaptation; columns found: {}",
            table.name,
            table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let texts: Vec<String> = table.rows.iter().map(|r| r[col].trim().to_string()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        return Err(Error::data(format!("{}: the column \"{column}\" has no text", table.name)));
    }
    Ok(texts)
}

/// Seeded split of domain texts into training and held-out texts (at least one of each when
/// there are two or more).
pub fn split_texts(texts: &[String], eval_fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    let mut idx: Vec<usize> = (0..texts.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x6d6c_6d5f_7370_6c74));
    let n_eval = if texts.len() < 2 { 0 } else { ((texts.len() as f64 * eval_fraction).round() as usize).clamp(1, texts.len() - 1) };
    let eval = idx[..n_eval].iter().map(|&i| texts[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| texts[i].clone()).collect();
    (train, eval)
}

/// Held-out masked-LM scores.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MlmEval {
    pub step: usize,
    pub epoch: usize,
    /// Mean cross-entropy over the masked tokens.
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Share of masked tokens whose original token is the model's top prediction.
    pub masked_accuracy: f64,
    pub masked_tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MlmReport {
    pub stage: &'static str,
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub masked_tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub done: bool,
    /// Held-out scores at the end of an epoch.
    pub eval: Option<MlmEval>,
}

pub struct MlmSession {
    model: Option<MaskedLm>,
    optim: ModuleOptimizer,
    pub recipe: Recipe,
    pub epochs: usize,
    pub lr: f64,
    rule: MaskRule,
    train: Vec<Vec<u32>>,
    /// Held-out texts masked once with a fixed seed, so every evaluation scores the same task.
    eval: Vec<Masked>,
    pub load_report: LoadReport,
    device: Device,
    base_device: Device,
    pad_id: u32,
    rng: StdRng,
    order: Vec<usize>,
    cursor: usize,
    pub step: usize,
    pub epoch: usize,
    pub total_steps: usize,
    warmup_steps: usize,
    pub losses: Vec<f64>,
    /// Held-out scores before training and after every epoch.
    pub history: Vec<MlmEval>,
    started: Option<Instant>,
    pub train_seconds: f64,
    tokens_seen: usize,
}

impl MlmSession {
    /// A masked-LM run of `epochs` at peak rate `lr` on the domain texts, with the recipe's
    /// batch size, max length, warm-up, schedule, weight decay, clipping, seed and masking
    /// probability. Every weight trains.
    pub fn new(ckpt: &mut Checkpoint, train: &[String], eval: &[String], recipe: &Recipe, epochs: usize, lr: f64, device: &Device) -> Result<Self> {
        recipe.validate(ckpt.config.max_position_embeddings)?;
        if epochs == 0 {
            return Err(Error::Recipe("masked-LM adaptation needs at least one epoch".into()));
        }
        let rule = MaskRule::of(ckpt, recipe.mlm_probability)?;
        let mut train_ids = Vec::with_capacity(train.len());
        for t in train {
            let ids = ckpt.tokenizer.encode(t, recipe.max_len)?;
            if ids.iter().any(|&id| rule.maskable(id)) {
                train_ids.push(ids);
            }
        }
        if train_ids.is_empty() {
            return Err(Error::data("the domain text has no tokens to mask (every line is empty or unknown to the tokenizer)"));
        }
        let mut eval_rng = StdRng::seed_from_u64(recipe.seed ^ 0x6576_616c_6d61_736b);
        let mut eval_masked = Vec::with_capacity(eval.len());
        for t in eval {
            let ids = ckpt.tokenizer.encode(t, recipe.max_len)?;
            if ids.iter().any(|&id| rule.maskable(id)) {
                eval_masked.push(rule.apply(&ids, &mut eval_rng, true));
            }
        }
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (model, load_report) = load_masked_lm_seeded(ckpt, &ad, recipe.seed)?;
        let per_epoch = train_ids.len().div_ceil(recipe.batch_size).div_ceil(recipe.grad_accum.max(1));
        let total_steps = per_epoch * epochs;
        Ok(MlmSession {
            model: Some(model),
            optim: AdamWConfig::new().with_weight_decay(recipe.weight_decay as f32).with_epsilon(1e-8).init(),
            recipe: recipe.clone(),
            epochs,
            lr,
            rule,
            train: train_ids,
            eval: eval_masked,
            load_report,
            device: ad,
            base_device: device.clone(),
            pad_id: ckpt.tokenizer.pad_id,
            rng: StdRng::seed_from_u64(recipe.seed ^ 0x6d61_736b),
            order: Vec::new(),
            cursor: 0,
            step: 0,
            epoch: 0,
            total_steps,
            warmup_steps: (total_steps as f64 * recipe.warmup_ratio).ceil() as usize,
            losses: Vec::new(),
            history: Vec::new(),
            started: None,
            train_seconds: 0.0,
            tokens_seen: 0,
        })
    }

    pub fn base_device(&self) -> &Device {
        &self.base_device
    }

    pub fn train_count(&self) -> usize {
        self.train.len()
    }

    pub fn eval_count(&self) -> usize {
        self.eval.len()
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    fn model(&self) -> Result<&MaskedLm> {
        self.model.as_ref().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))
    }

    pub fn lr_at(&self, step: usize) -> f64 {
        self.recipe.schedule.lr(self.lr, step, self.warmup_steps, self.total_steps)
    }

    /// Masked-LM loss, perplexity and masked-token accuracy on the held-out texts (eval mode).
    pub async fn evaluate(&self) -> Result<MlmEval> {
        if self.eval.is_empty() {
            return Err(Error::data("no held-out domain text to evaluate on (give at least two lines)"));
        }
        let model = self.model()?.valid();
        let (mut loss_sum, mut correct, mut count) = (0.0f64, 0.0f64, 0usize);
        for chunk in self.eval.chunks(self.recipe.batch_size.max(32)) {
            let (input, positions, targets, n) = batch(chunk, self.pad_id, &self.base_device);
            let logits = model.logits_at(&input, positions); // [n, vocab]
            let hits = logits.clone().argmax(1).reshape([n]).equal(targets.clone()).float().sum();
            let loss = cross_entropy(logits, targets);
            loss_sum += read_f32(loss).await?.first().copied().unwrap_or(f32::NAN) as f64 * n as f64;
            correct += read_f32(hits).await?.first().copied().unwrap_or(0.0) as f64;
            count += n;
        }
        let loss = loss_sum / count.max(1) as f64;
        Ok(MlmEval {
            step: self.step,
            epoch: self.epoch,
            loss,
            perplexity: loss.exp(),
            masked_accuracy: correct / count.max(1) as f64,
            masked_tokens: count,
        })
    }

    /// One optimizer step on the next batch (freshly masked every time it is drawn).
    pub async fn step(&mut self) -> Result<MlmReport> {
        if self.is_done() {
            return Err(Error::Other("domain adaptation is already finished".into()));
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
        let mut batches: Vec<Vec<Masked>> = Vec::new();
        while batches.len() < self.recipe.grad_accum.max(1) && self.cursor < self.order.len() {
            let end = (self.cursor + self.recipe.batch_size).min(self.order.len());
            let mut b: Vec<Masked> = Vec::with_capacity(end - self.cursor);
            for &i in &self.order[self.cursor..end] {
                b.push(self.rule.apply(&self.train[i], &mut self.rng, false));
            }
            if b.iter().all(|m| m.targets.is_empty()) {
                // Nothing drawn in the whole micro-batch: score one token rather than none.
                let i = self.order[self.cursor];
                b[0] = self.rule.apply(&self.train[i], &mut self.rng, true);
            }
            batches.push(b);
            self.cursor = end;
        }
        let masked: usize = batches.iter().flatten().map(|m| m.targets.len()).sum();
        let tokens: usize = batches.iter().flatten().map(|m| m.input.len()).sum();
        self.device.seed(self.recipe.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6d6c_6d00 + self.step as u64));
        let lr = self.lr_at(self.step);
        let model = self.model.take().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))?;
        // Every masked token weighs the same, as in one big batch.
        let mut acc = GradientsAccumulator::<MaskedLm>::new();
        let mut loss: Option<Tensor<1>> = None;
        for b in &batches {
            let (input, positions, targets, n) = batch(b, self.pad_id, &self.device);
            let part = cross_entropy(model.logits_at(&input, positions), targets).mul_scalar(n as f64 / masked as f64);
            acc.accumulate(&model, GradientsParams::from_grads(part.backward(), &model));
            let part = part.detach();
            loss = Some(match loss.take() {
                Some(l) => l + part,
                None => part,
            });
        }
        let loss = loss.ok_or_else(|| Error::Other("no domain text left in the epoch".into()))?;
        let mut grads = acc.grads();
        let norm = clip_global_norm(&model, &mut grads, self.recipe.max_grad_norm);
        self.model = Some(self.optim.step(lr, model, grads));
        let (loss_v, grad_norm) = read_step(loss, norm, self.step, "masked-LM loss", "lower the adaptation learning rate and start again").await?;
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
        Ok(MlmReport {
            stage: "mlm",
            step: self.step,
            total_steps: self.total_steps,
            epoch: self.epoch,
            epochs: self.epochs,
            loss: loss_v,
            lr,
            grad_norm,
            masked_tokens: masked,
            tokens_per_s: self.tokens_seen as f64 / self.train_seconds.max(1e-9),
            elapsed_s: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            done: self.is_done(),
            eval,
        })
    }

    /// HF `BertForMaskedLM` folder files: config.json, tokenizer files, model.safetensors.
    pub async fn export(&self, ckpt: &Checkpoint) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![("config.json".to_string(), crate::config::export_mlm_config(&ckpt.config_file)?)];
        files.extend(ckpt.tokenizer_files());
        files.push(("model.safetensors".to_string(), crate::weights::export_mlm_safetensors(self.model()?).await?));
        Ok(files)
    }

    /// The adapted encoder as a checkpoint to fine-tune a classifier from (stage two).
    pub async fn adapted_checkpoint(&self, ckpt: &Checkpoint) -> Result<Checkpoint> {
        let weights = crate::weights::export_mlm_safetensors(self.model()?).await?;
        Ok(Checkpoint {
            config_file: ckpt.config_file.clone(),
            config: ckpt.config.clone(),
            tokenizer: crate::tokenize::TextTokenizer::from_bytes(ckpt.tokenizer.raw())?,
            weights,
            tokenizer_config: ckpt.tokenizer_config.clone(),
        })
    }

    /// The current weights in eval mode, for fill-mask.
    pub fn inference_model(&self) -> Result<MaskedLm> {
        Ok(self.model()?.valid())
    }
}

impl Stepper for MlmSession {
    type Report = MlmReport;
    fn finished(&self) -> bool {
        self.is_done()
    }
    async fn next_step(&mut self) -> Result<MlmReport> {
        self.step().await
    }
}

/// A padded batch of masked rows: the input, the flat masked positions, their targets, count.
fn batch(rows: &[Masked], pad_id: u32, device: &Device) -> (BertInput, Tensor<1, Int>, Tensor<1, Int>, usize) {
    let inputs: Vec<Vec<u32>> = rows.iter().map(|m| m.input.clone()).collect();
    let seq = inputs.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let input = BertInput::from_rows(&inputs, pad_id, device);
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (b, m) in rows.iter().enumerate() {
        for &(t, id) in &m.targets {
            positions.push((b * seq + t) as i64);
            targets.push(id as i64);
        }
    }
    let n = positions.len();
    (
        input,
        Tensor::from_data(TensorData::new(positions, [n]), device),
        Tensor::from_data(TensorData::new(targets, [n]), device),
        n,
    )
}

/// One candidate for a masked position.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub token: String,
    pub id: u32,
    pub score: f64,
}

/// The model's top guesses for one `[MASK]` of a text.
#[derive(Debug, Clone, Serialize)]
pub struct MaskFill {
    /// Token position in the encoded text (0 is `[CLS]`).
    pub position: usize,
    pub candidates: Vec<Candidate>,
}

/// Fill-mask (transformers' `fill-mask` pipeline): the `top_k` most probable tokens, with their
/// softmax probabilities, for every mask token in `text`. Reads asynchronously.
pub async fn fill_mask(model: &MaskedLm, ckpt: &mut Checkpoint, text: &str, top_k: usize, max_len: usize, device: &Device) -> Result<Vec<MaskFill>> {
    let mask_id = ckpt.tokenizer.mask_id().ok_or_else(|| Error::Tokenizer("this tokenizer has no [MASK] token".into()))?;
    let ids = ckpt.tokenizer.encode(text, max_len)?;
    let positions: Vec<usize> = (0..ids.len()).filter(|&t| ids[t] == mask_id).collect();
    if positions.is_empty() {
        return Err(Error::data(format!("no [MASK] in \"{text}\": write [MASK] where the model should guess a word")));
    }
    let input = BertInput::from_rows(std::slice::from_ref(&ids), ckpt.tokenizer.pad_id, device);
    let n = positions.len();
    let flat: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let logits = model.logits_at(&input, Tensor::from_data(TensorData::new(flat, [n]), device)); // [n, vocab]
    let vocab = logits.dims()[1];
    let probs = read_f32(burn::tensor::activation::softmax(logits, 1)).await?;
    Ok(positions
        .iter()
        .enumerate()
        .map(|(k, &position)| {
            let row = &probs[k * vocab..(k + 1) * vocab];
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let candidates = order
                .into_iter()
                .take(top_k.max(1))
                .map(|id| Candidate { token: ckpt.tokenizer.token(id as u32).unwrap_or_default(), id: id as u32, score: row[id] as f64 })
                .collect();
            MaskFill { position, candidates }
        })
        .collect())
}

/// Loads a `BertForMaskedLM` (or any BERT checkpoint, with a newly initialised head) for
/// inference: used by the fidelity test.
pub fn load_masked_lm(ckpt: &Checkpoint, device: &Device) -> Result<(MaskedLm, LoadReport)> {
    load_masked_lm_seeded(ckpt, device, 0)
}

/// `load_masked_lm`, initialising a missing head from `seed`.
fn load_masked_lm_seeded(ckpt: &Checkpoint, device: &Device, seed: u64) -> Result<(MaskedLm, LoadReport)> {
    let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, seed)?;
    let model = MaskedLm::load(&ckpt.config, &mut src, device)?;
    Ok((model, src.report()))
}
