//! The causal-LM objective: next-token loss of a decoder (GPT-2, Llama, Qwen2) on rows whose
//! tokens each carry a weight (1: learn to predict it; 0: prompt, context or padding), so the
//! same objective does continued pre-training on packed text and instruction tuning where only
//! the completions are learnt. Every weight trains, or LoRA adapters on the recipe's targets.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::data::text::{LmRow, learnt};
use crate::models::causal::{CausalLm, CausalModel, next_token_loss};
use crate::engine::{Fnv, NoDetail, Objective, Run};
use crate::error::{Error, Result};
use crate::backend::read_f32;
use crate::recipe::{EvalMetric, Recipe, Strategy};

/// A decoder run.
pub type LmSession = Run<CausalLmTask>;
pub type LmReport = crate::engine::StepReport<LmEval, NoDetail>;

/// Held-out next-token loss and perplexity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LmEval {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    pub perplexity: f64,
    pub tokens: usize,
}

pub struct CausalLmTask {
    train: Vec<LmRow>,
    eval: Vec<LmRow>,
    pad: u32,
    eval_batch: usize,
    rng: StdRng,
    /// HF module names inside each layer that carry LoRA adapters (empty: full fine-tuning).
    pub lora_modules: Vec<&'static str>,
    /// Parameters that get gradients (all of them, or the LoRA factors).
    pub trainable: usize,
}

impl Objective for CausalLmTask {
    type Model = CausalLm;
    type Batch = Vec<usize>;
    type Eval = LmEval;
    type Detail = NoDetail;
    const NAME: &'static str = "causal-lm";
    const LOSS: &'static str = "language-model loss";
    const EVAL_BEFORE: bool = true;
    const NOTHING_TO_LEARN: &'static str = "a batch without any token to learn (every completion is empty)";

    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn eval_len(&self) -> usize {
        self.eval.len()
    }
    fn order_rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    fn prepare(&self, rows: &[usize], _rng: &mut StdRng) -> Vec<usize> {
        rows.to_vec()
    }
    /// Every learnt token weighs the same, as in one big batch.
    fn weight(&self, rows: &Vec<usize>) -> f64 {
        rows.iter().map(|&i| learnt(&self.train[i]) as f64).sum()
    }
    fn tokens(&self, rows: &Vec<usize>) -> usize {
        rows.iter().map(|&i| self.train[i].ids.len()).sum()
    }
    fn loss(&self, model: &CausalLm, rows: &Vec<usize>, device: &Device) -> Result<Tensor<1>> {
        let rows: Vec<&LmRow> = rows.iter().map(|&i| &self.train[i]).collect();
        loss_of(model, &rows, self.pad, device)
    }
    fn detail(&self, _batches: &[Vec<usize>]) -> NoDetail {
        NoDetail {}
    }
    async fn evaluate(&self, model: &CausalLm, step: usize, epoch: usize, device: &Device) -> Result<LmEval> {
        let model = model.valid().materialize();
        score(&model, &self.eval, self.pad, self.eval_batch, device, step, epoch).await
    }
    fn watch(eval: &LmEval, metric: EvalMetric) -> Option<f64> {
        (metric == EvalMetric::Loss).then_some(eval.loss)
    }
    fn supports(metric: EvalMetric) -> bool {
        metric == EvalMetric::Loss
    }
    /// FNV-1a over the training rows (ids and weights).
    fn fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        for r in &self.train {
            h.eat(r.ids.len() as u64);
            for (&id, &w) in r.ids.iter().zip(&r.weights) {
                h.eat(id as u64);
                h.eat(w.to_bits() as u64);
            }
        }
        h.finish()
    }
}

impl CausalLmTask {
    fn build(cm: &CausalModel, train: Vec<LmRow>, eval: Vec<LmRow>, recipe: &Recipe, device: &Device) -> Result<(Self, CausalLm, crate::hf::weights::LoadReport)> {
        recipe.validate(cm.config.max_positions())?;
        if train.is_empty() {
            return Err(Error::data("no training rows"));
        }
        if let Some(r) = train.iter().chain(&eval).find(|r| r.ids.len() > cm.config.max_positions()) {
            return Err(Error::data(format!("a row has {} tokens; this model takes at most {}", r.ids.len(), cm.config.max_positions())));
        }
        let modules = match recipe.strategy {
            Strategy::Full => Vec::new(),
            Strategy::Lora => crate::models::causal::lora_modules(&cm.config, &recipe.lora_targets),
            other => {
                return Err(Error::Recipe(format!(
                    "strategy \"{}\" is for classifiers; a causal LM trains every weight (\"full\") or LoRA adapters (\"lora\")",
                    crate::recipe::enum_name(&other)
                )));
            }
        };
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (mut model, report) = cm.load(recipe.seed, &ad)?;
        if recipe.strategy == Strategy::Lora {
            model = model.with_lora(&modules, recipe.lora_rank, recipe.lora_alpha, recipe.lora_dropout);
        }
        let task = CausalLmTask {
            trainable: crate::engine::count_trainable(&model),
            lora_modules: modules,
            train,
            eval,
            pad: cm.eos.first().copied().unwrap_or(0),
            eval_batch: recipe.batch_size,
            rng: StdRng::seed_from_u64(recipe.seed),
        };
        Ok((task, model, report))
    }
}

impl Run<CausalLmTask> {
    /// A decoder run over `train` (rows from `pack_texts` or `instruction_rows`).
    pub fn new(cm: &CausalModel, train: Vec<LmRow>, eval: Vec<LmRow>, recipe: Recipe, device: &Device) -> Result<Self> {
        let (task, model, report) = CausalLmTask::build(cm, train, eval, &recipe, device)?;
        Run::start(task, model, report, recipe, device)
    }

    /// Continues the run saved by `checkpoint` with the same model and rows (checked).
    pub fn resume(cm: &CausalModel, train: Vec<LmRow>, eval: Vec<LmRow>, checkpoint: &[u8], device: &Device) -> Result<Self> {
        let (recipe, _, _) = crate::engine::checkpoint_recipe(checkpoint)?;
        let (task, model, report) = CausalLmTask::build(cm, train, eval, &recipe, device)?;
        Run::restore(task, model, report, device, checkpoint)
    }

    pub fn train_count(&self) -> usize {
        self.objective.train.len()
    }

    pub fn eval_count(&self) -> usize {
        self.objective.eval.len()
    }

    /// The current weights in eval mode (dropout off; LoRA adapters merged into the weights),
    /// for generation and scoring.
    pub fn inference_model(&self) -> Result<CausalLm> {
        Ok(self.model()?.valid().materialize())
    }

    /// Next-token loss and perplexity over `rows` (weighted tokens only), in eval mode.
    pub async fn score(&self, rows: &[LmRow]) -> Result<LmEval> {
        let model = self.inference_model()?;
        score(&model, rows, self.objective.pad, self.objective.eval_batch, self.base_device(), self.step, self.epoch).await
    }

    /// The fine-tuned model as an HF folder: config.json (as loaded), tokenizer.json,
    /// tokenizer_config.json and chat_template.jinja when the model came with them (a GGUF brings a
    /// tokenizer_config.json), model.safetensors (HF names, LoRA merged in; a tied head is not
    /// stored, as transformers does), and after a LoRA run the PEFT adapter under `peft/`
    /// (`base_name` is what its `adapter_config.json` names as the base model).
    pub async fn export(&self, cm: &CausalModel, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![
            ("config.json".to_string(), cm.config_bytes.clone()),
            ("tokenizer.json".to_string(), cm.tokenizer.raw().to_vec()),
            ("model.safetensors".to_string(), crate::models::export::export_causal_safetensors(self.model()?).await?),
        ];
        if let Some(tc) = &cm.tokenizer_config {
            files.push(("tokenizer_config.json".to_string(), tc.clone()));
        }
        if let Some(t) = &cm.chat_template_file {
            files.push(("chat_template.jinja".to_string(), t.clone().into_bytes()));
        }
        if !self.objective.lora_modules.is_empty() {
            files.extend(self.export_peft(cm, base_name).await?);
        }
        Ok(files)
    }

    /// The PEFT adapter folder (`peft/adapter_config.json`, `peft/adapter_model.safetensors`)
    /// that `peft.PeftModel.from_pretrained` loads on top of the base `AutoModelForCausalLM`.
    pub async fn export_peft(&self, cm: &CausalModel, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let layers = if matches!(cm.config, crate::models::causal::DecoderConfig::Gpt2(_)) { "h" } else { "layers" };
        let names: Vec<String> = self.objective.lora_modules.iter().map(|m| m.replace('.', "\\.")).collect();
        let target = format!(".*\\.{layers}\\.\\d+\\.({})", names.join("|"));
        // GPT-2's Conv1D stores its weight [in, out].
        let config = crate::models::export::peft_adapter_config(&self.recipe, "CAUSAL_LM", base_name, &target, serde_json::Value::Null, layers == "h");
        let model = self.model()?;
        Ok(vec![
            ("peft/adapter_config.json".to_string(), serde_json::to_vec_pretty(&config).map_err(|e| Error::Other(e.to_string()))?),
            ("peft/adapter_model.safetensors".to_string(), crate::models::export::export_lora_adapters(&model.lora_linears(&self.objective.lora_modules)).await?),
        ])
    }
}

/// A right-padded batch: ids `[batch, seq]` (padding with `pad`; causal attention never lets a
/// real token see a later pad) and the rows, for the loss.
pub fn batch(rows: &[&LmRow], pad: u32, device: &Device) -> Tensor<2, Int> {
    let seq = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad as i64; rows.len() * seq];
    for (b, r) in rows.iter().enumerate() {
        for (t, &id) in r.ids.iter().enumerate() {
            ids[b * seq + t] = id as i64;
        }
    }
    Tensor::from_data(TensorData::new(ids, [rows.len(), seq]), device)
}

pub fn loss_of(model: &CausalLm, rows: &[&LmRow], pad: u32, device: &Device) -> Result<Tensor<1>> {
    let logits = model.forward(batch(rows, pad, device), None); // [batch, seq, vocab]
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.ids.clone()).collect();
    let w: Vec<Vec<f32>> = rows.iter().map(|r| r.weights.clone()).collect();
    next_token_loss(logits, &ids, &w)
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

