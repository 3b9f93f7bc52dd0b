//! Fine-tuning a causal LM, as a step-able session like the classifier's: plain text packed
//! into blocks of `max_len` tokens (continued pre-training, HF `run_clm`'s `group_texts`), or
//! prompt → completion pairs where only the completion is learnt (the prompt's tokens weigh 0 in
//! the loss). Every weight trains (`strategy: "full"`), or only LoRA adapters on the recipe's
//! target projections (`strategy: "lora"`; exported merged and as a PEFT adapter), with AdamW,
//! warm-up and the recipe's schedule, clipping and gradient accumulation; loss and perplexity on
//! held-out rows after every epoch.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::causal::{CausalLm, CausalModel, next_token_loss};
use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;
use crate::train::{MemoryEstimate, Recipe, Stepper, Strategy, clip_global_norm, read_step};
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

/// A prompt the page (and `burnish eval`) asks the model to continue, with the answer the data
/// gives for it, if any.
#[derive(Debug, Clone, Serialize)]
pub struct EvalPrompt {
    /// What the model is given (the prompt in its template, or the conversation so far in the
    /// chat template).
    pub prompt: String,
    pub reference: Option<String>,
    /// The prompt is a chat-template rendering: it carries its own special tokens, so it is
    /// tokenized without adding any (see `prompt_ids`).
    pub chat: bool,
}

/// Token ids of a prompt to continue: a chat rendering as it is, anything else with the
/// tokenizer's own special tokens (a BOS where the model expects one), as the training rows were.
pub fn prompt_ids(tok: &TextTokenizer, prompt: &str, chat: bool) -> Result<Vec<u32>> {
    if chat { tok.encode_plain(prompt) } else { tok.encode_all(prompt) }
}

/// Training rows for the recipe's task from a table, and one prompt per row where rows are
/// examples (instruction tuning), or per text (plain text: its first words):
/// - `causal-lm`: the text column packed into `max_len` blocks;
/// - `instruct` with a `messages_column` in the data: conversations in the model's chat
///   template, assistant turns learnt;
/// - `instruct` otherwise: prompt → completion pairs in the prompt template.
pub fn rows_for_task(cm: &CausalModel, table: &crate::data::Table, r: &Recipe) -> Result<(Vec<LmRow>, Vec<EvalPrompt>)> {
    let eos = cm.eos.first().copied();
    match r.task.as_str() {
        "instruct" if table.columns.contains(&r.messages_column) => {
            let template = cm.chat_template.as_ref().ok_or_else(|| {
                Error::data(format!(
                    "{} holds conversations (\"{}\") but this model has no chat template: give its tokenizer_config.json, or use prompt/completion columns",
                    table.name, r.messages_column
                ))
            })?;
            let conversations = crate::chat::conversations_from_table(table, &r.messages_column)?;
            let rows = crate::chat::chat_rows(&cm.tokenizer, template, &conversations, r.max_len)?;
            let prompts = conversations
                .iter()
                .map(|c| crate::chat::prompt_and_reference(template, c).map(|(prompt, reference)| EvalPrompt { prompt, reference, chat: true }))
                .collect::<Result<_>>()?;
            Ok((rows, prompts))
        }
        "instruct" => {
            let pairs = pairs_from_table(table, &r.prompt_column, &r.completion_column)?;
            let rows = instruction_rows(&cm.tokenizer, &pairs, &r.prompt_template, r.max_len, eos)?;
            let prompts = pairs.into_iter().map(|(p, c)| EvalPrompt { prompt: r.prompt_template.replace("{prompt}", &p), reference: Some(c), chat: false }).collect();
            Ok((rows, prompts))
        }
        "causal-lm" => {
            let texts = crate::mlm::domain_texts(table, &r.text_column)?;
            let rows = pack_texts(&cm.tokenizer, &texts, r.max_len, eos)?;
            let prompts = texts.iter().map(|t| EvalPrompt { prompt: t.split_whitespace().take(6).collect::<Vec<_>>().join(" "), reference: None, chat: false }).collect();
            Ok((rows, prompts))
        }
        other => Err(Error::Recipe(format!("task \"{other}\" is not a causal-LM task (causal-lm or instruct)"))),
    }
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// HF module names inside each layer that carry LoRA adapters (empty: full fine-tuning).
    pub lora_modules: Vec<&'static str>,
    /// Parameters that get gradients (all of them, or the LoRA factors).
    pub trainable: usize,
    optim: ModuleOptimizer,
    pub recipe: Recipe,
    train: Vec<LmRow>,
    eval: Vec<LmRow>,
    pub load_report: LoadReport,
    pad: u32,
    device: Device,
    base_device: Device,
    rng: StdRng,
    /// Epoch shuffles drawn from `rng` so far (a resumed run replays them).
    shuffles: usize,
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
        let modules = match recipe.strategy {
            Strategy::Full => Vec::new(),
            Strategy::Lora => crate::causal::lora_modules(&cm.config, &recipe.lora_targets),
            other => {
                return Err(Error::Recipe(format!(
                    "strategy \"{}\" is for classifiers; a causal LM trains every weight (\"full\") or LoRA adapters (\"lora\")",
                    serde_json::to_value(other).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
                )));
            }
        };
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (mut model, load_report) = cm.load(recipe.seed, &ad)?;
        if recipe.strategy == Strategy::Lora {
            model = model.with_lora(&modules, recipe.lora_rank, recipe.lora_alpha, recipe.lora_dropout);
        }
        let trainable = crate::train::count_trainable(&model);
        let per_epoch = train.len().div_ceil(recipe.batch_size).div_ceil(recipe.grad_accum.max(1));
        let total_steps = per_epoch * recipe.epochs;
        Ok(LmSession {
            model: Some(model),
            lora_modules: modules,
            trainable,
            optim: AdamWConfig::new().with_weight_decay(recipe.weight_decay as f32).with_epsilon(1e-8).init(),
            warmup_steps: (total_steps as f64 * recipe.warmup_ratio).ceil() as usize,
            rng: StdRng::seed_from_u64(recipe.seed),
            shuffles: 0,
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

    /// The current weights in eval mode (dropout off; LoRA adapters merged into the weights),
    /// for generation and scoring.
    pub fn inference_model(&self) -> Result<CausalLm> {
        Ok(self.model()?.valid().materialize())
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
            self.shuffles += 1;
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
    /// tokenizer_config.json and chat_template.jinja when the model came with them (a GGUF brings a
    /// tokenizer_config.json), model.safetensors (HF names, LoRA merged in; a tied head is not stored, as transformers
    /// does), and after a LoRA run the PEFT adapter under `peft/` (`base_name` is what its
    /// `adapter_config.json` names as the base model).
    pub async fn export(&self, cm: &CausalModel, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![
            ("config.json".to_string(), cm.config_bytes.clone()),
            ("tokenizer.json".to_string(), cm.tokenizer.raw().to_vec()),
            ("model.safetensors".to_string(), crate::weights::export_causal_safetensors(self.model()?).await?),
        ];
        if let Some(tc) = &cm.tokenizer_config {
            files.push(("tokenizer_config.json".to_string(), tc.clone()));
        }
        if let Some(t) = &cm.chat_template_file {
            files.push(("chat_template.jinja".to_string(), t.clone().into_bytes()));
        }
        if !self.lora_modules.is_empty() {
            files.extend(self.export_peft(cm, base_name).await?);
        }
        Ok(files)
    }

    /// The PEFT adapter folder (`peft/adapter_config.json`, `peft/adapter_model.safetensors`)
    /// that `peft.PeftModel.from_pretrained` loads on top of the base `AutoModelForCausalLM`.
    pub async fn export_peft(&self, cm: &CausalModel, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let r = &self.recipe;
        let layers = if matches!(cm.config, crate::causal::DecoderConfig::Gpt2(_)) { "h" } else { "layers" };
        let names: Vec<String> = self.lora_modules.iter().map(|m| m.replace('.', "\\.")).collect();
        let target = format!(".*\\.{layers}\\.\\d+\\.({})", names.join("|"));
        // GPT-2's Conv1D stores its weight [in, out].
        let config = crate::train::peft_adapter_config(r, "CAUSAL_LM", base_name, &target, serde_json::Value::Null, layers == "h");
        let model = self.model()?;
        Ok(vec![
            ("peft/adapter_config.json".to_string(), serde_json::to_vec_pretty(&config).map_err(|e| Error::Other(e.to_string()))?),
            ("peft/adapter_model.safetensors".to_string(), crate::weights::export_lora_adapters(&model.lora_linears(&self.lora_modules)).await?),
        ])
    }
}

/// Everything of a decoder run besides tensors, as stored in a checkpoint.
#[derive(Serialize, Deserialize)]
struct LmState {
    format: u32,
    recipe: Recipe,
    train_count: usize,
    train_fingerprint: u64,
    step: usize,
    epoch: usize,
    order: Vec<usize>,
    cursor: usize,
    shuffles: usize,
    /// f64 bit patterns, so a resumed curve is the same to the last bit.
    losses: Vec<u64>,
    history: Vec<LmEval>,
    train_seconds: f64,
    tokens_seen: usize,
}

/// FNV-1a over the training rows (ids and weights): a resumed run must see the same rows.
fn rows_fingerprint(rows: &[LmRow]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in rows {
        eat(r.ids.len() as u64);
        for (&id, &w) in r.ids.iter().zip(&r.weights) {
            eat(id as u64);
            eat(w.to_bits() as u64);
        }
    }
    h
}

impl LmSession {
    /// The whole run as bytes (recipe, data order and position, RNG draws, curve, held-out
    /// scores, weights with LoRA adapters, AdamW state), every tensor read asynchronously so it
    /// works on WebGPU too. `resume` continues it.
    pub async fn checkpoint(&self) -> Result<Vec<u8>> {
        let state = LmState {
            format: 1,
            recipe: self.recipe.clone(),
            train_count: self.train.len(),
            train_fingerprint: rows_fingerprint(&self.train),
            step: self.step,
            epoch: self.epoch,
            order: self.order.clone(),
            cursor: self.cursor,
            shuffles: self.shuffles,
            losses: self.losses.iter().map(|l| l.to_bits()).collect(),
            history: self.history.clone(),
            train_seconds: self.train_seconds,
            tokens_seen: self.tokens_seen,
        };
        let state = serde_json::to_vec(&state).map_err(|e| Error::Other(e.to_string()))?;
        let model = crate::train::module_record_bytes(self.model()?).await?;
        let optim = crate::train::optimizer_record_bytes(&self.optim).await?;
        Ok(crate::train::pack(&[&state, &model, &optim]))
    }

    /// Continues the run saved by `checkpoint` with the same model and rows (checked): the
    /// saved recipe, weights, AdamW state, data order and RNG, so the rest of the run is the
    /// one the uninterrupted run would have had.
    pub fn resume(cm: &CausalModel, train: Vec<LmRow>, eval: Vec<LmRow>, checkpoint: &[u8], device: &Device) -> Result<Self> {
        let parts = crate::train::unpack(checkpoint)?;
        let [state, model, optim] = parts.as_slice() else {
            return Err(Error::Other("this is not a decoder training checkpoint (it has the wrong parts)".into()));
        };
        let st: LmState = serde_json::from_slice(state).map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
        if st.format != 1 {
            return Err(Error::Other(format!("checkpoint format {} is not supported by this version", st.format)));
        }
        if train.len() != st.train_count || rows_fingerprint(&train) != st.train_fingerprint {
            return Err(Error::data(format!(
                "the training data is not the data this checkpoint was trained on ({} rows now, {} then): resume needs the same file, columns, template and split",
                train.len(),
                st.train_count
            )));
        }
        let mut s = LmSession::new(cm, train, eval, st.recipe, device)?;
        let m = s.model.take().ok_or_else(|| Error::Other("no model".into()))?;
        s.model = Some(crate::train::load_module(m, model)?);
        s.optim = crate::train::load_optimizer(s.optim.clone(), optim, &s.device)?;
        for _ in 0..st.shuffles {
            let mut v: Vec<usize> = (0..s.train.len()).collect();
            v.shuffle(&mut s.rng);
        }
        s.shuffles = st.shuffles;
        s.step = st.step;
        s.epoch = st.epoch;
        s.order = st.order;
        s.cursor = st.cursor;
        s.losses = st.losses.into_iter().map(f64::from_bits).collect();
        s.history = st.history;
        s.train_seconds = st.train_seconds;
        s.tokens_seen = st.tokens_seen;
        Ok(s)
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

/// The seeded held-out split the page and the CLI share: `fraction` of the rows (at least one,
/// never all) held out. Returns (train, held out, the held-out rows' indices in `rows`).
pub fn split_rows(rows: &[LmRow], fraction: f64, seed: u64) -> (Vec<LmRow>, Vec<LmRow>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_eval = if rows.len() < 2 { 0 } else { ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1) };
    let eval_idx: Vec<usize> = idx[..n_eval].to_vec();
    let eval = eval_idx.iter().map(|&i| rows[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| rows[i].clone()).collect();
    (train, eval, eval_idx)
}

/// Memory to fine-tune `model` (as loaded, before any LoRA) under the recipe's strategy at
/// `batch × max_len`, f32 and AdamW: weights; gradients and two moments for what trains (every
/// weight, or the LoRA factors, rank·(in + out) per adapted linear); activations kept for the
/// backward pass. Per token and layer a Llama layer keeps about 12·hidden + 4·intermediate +
/// 3·kv_dim floats (norms, q/k/v before and after rotary, repeated k/v, context, residuals,
/// gate, up, SiLU and their product) plus 2·heads·len for the attention scores and
/// probabilities; a GPT-2 block about 13·hidden + 3·inner + 3·heads·len. The head adds 3·vocab
/// per token (logits, log-softmax, their gradient), and LoRA keeps each adapted linear's merged
/// weight `W + s·A·B` for the backward pass.
pub fn estimate_memory(model: &CausalLm, cfg: &crate::causal::DecoderConfig, recipe: &Recipe, batch: usize, max_len: usize) -> MemoryEstimate {
    use crate::causal::DecoderConfig;
    let parameters = model.num_params();
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
        Strategy::Lora => {
            let modules = crate::causal::lora_modules(cfg, &recipe.lora_targets);
            model.lora_linears(&modules).iter().fold((0u64, 0u64), |(t, m), (_, l)| {
                let [d_in, d_out] = l.weight.dims();
                (t + (recipe.lora_rank * (d_in + d_out)) as u64, m + (d_in * d_out) as u64)
            })
        }
        _ => (parameters as u64, 0),
    };
    let weights = 4 * parameters as u64;
    let (gradients, optimizer) = (4 * trainable, 8 * trainable);
    let activations = 4 * (tokens * (layers * per_layer + 2 * hidden + 3 * vocab) + merged);
    let largest_tensor = 4 * (tokens * vocab).max(vocab * hidden).max(batch as u64 * heads * len * len);
    MemoryEstimate {
        parameters,
        trainable: trainable as usize,
        weights,
        gradients,
        optimizer,
        activations,
        total: weights + gradients + optimizer + activations,
        largest_tensor,
        warnings: Vec::new(),
    }
}

/// Decoder speed: training steps (forward, masked loss, backward, clip, AdamW under the
/// recipe's strategy) on a fixed `[batch, len]` batch of seeded random token ids, then greedy
/// generation with the KV cache.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderBench {
    pub strategy: Strategy,
    pub trainable: usize,
    pub training: crate::train::BenchResult,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    /// The same greedy generation on 8-bit weights (`models/q8.rs`), for Llama/Qwen2: tokens/s,
    /// how many of its first tokens equal the f32 model's, and the weights' size.
    pub int8: Option<Int8Bench>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Int8Bench {
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    pub same_tokens_as_f32: usize,
    pub weight_bytes: usize,
    pub quantize_s: f64,
}

/// Times `steps` training steps after `warmup` untimed ones (each step's loss is read back, so
/// it has finished on the device), then `gen_tokens` greedy tokens after a 16-token prompt (end
/// of sequence ignored, so exactly that many).
pub async fn bench_decoder(cm: &CausalModel, recipe: &Recipe, steps: usize, warmup: usize, gen_tokens: usize, device: &Device) -> Result<DecoderBench> {
    use rand::Rng;
    let (batch, len) = (recipe.batch_size, recipe.max_len);
    if steps == 0 || batch == 0 || len < 2 || len > cm.config.max_positions() || gen_tokens == 0 {
        return Err(Error::Recipe("bench needs steps ≥ 1, batch ≥ 1, tokens ≥ 1 and 2 ≤ max-len ≤ the model's positions".into()));
    }
    let mut rng = StdRng::seed_from_u64(0);
    let vocab = cm.tokenizer.vocab_size().min(cm.config.vocab_size()) as u32;
    let lo = 256.min(vocab / 2);
    let rows: Vec<LmRow> = (0..batch).map(|_| LmRow { ids: (0..len).map(|_| rng.random_range(lo..vocab)).collect(), weights: vec![1.0; len] }).collect();
    let r = Recipe { epochs: warmup + steps, grad_accum: 1, warmup_ratio: 0.0, ..recipe.clone() };
    let mut s = LmSession::new(cm, rows.clone(), Vec::new(), r, device)?;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        s.step().await?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let training = crate::train::BenchResult::new(batch, len, times);
    let model = s.inference_model()?;
    let prompt: Vec<u32> = rows[0].ids.iter().take(16.min(len)).copied().collect();
    let positions = cm.config.max_positions();
    let opts = crate::causal::GenerateOptions { max_new_tokens: gen_tokens.min(positions.saturating_sub(prompt.len())).max(1), ..Default::default() };
    let mut g = crate::causal::Generation::new(&model, prompt.clone(), opts, Vec::new(), positions)?;
    let t0 = Instant::now();
    while g.step(&model, &cm.tokenizer).await?.is_some() {}
    let generation_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let int8 = match crate::causal::int8_model(&model).await? {
        Some(q8) => {
            let quantize_s = t0.elapsed().as_secs_f64();
            let weight_bytes = q8.bytes();
            let mut g8 = crate::causal::Generation::new(&model, prompt.clone(), crate::causal::GenerateOptions { max_new_tokens: g.generated().len().max(1), ..Default::default() }, Vec::new(), positions)?;
            g8.use_int8(std::sync::Arc::new(q8));
            let t0 = Instant::now();
            while g8.step(&model, &cm.tokenizer).await?.is_some() {}
            let s = t0.elapsed().as_secs_f64();
            let same = g8.generated().iter().zip(g.generated()).take_while(|(a, b)| a == b).count();
            Some(Int8Bench { generation_s: s, generation_tokens_per_s: g8.generated().len() as f64 / s.max(1e-9), same_tokens_as_f32: same, weight_bytes, quantize_s })
        }
        None => None,
    };
    Ok(DecoderBench {
        strategy: recipe.strategy,
        trainable: s.trainable,
        training,
        prompt_tokens: prompt.len(),
        generated_tokens: g.generated().len(),
        generation_s,
        generation_tokens_per_s: g.generated().len() as f64 / generation_s.max(1e-9),
        int8,
    })
}
