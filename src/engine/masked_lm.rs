//! The masked-LM objective (domain adaptation): BERT's pre-training loss on plain domain text,
//! every weight trained, texts masked afresh each time they are drawn (transformers'
//! `DataCollatorForLanguageModeling`), held-out texts masked once so every evaluation scores the
//! same task.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::hf::checkpoint::Checkpoint;
use crate::engine::{Fnv, Objective, Run, cross_entropy};
use crate::error::{Error, Result};
use crate::infer::fill_mask::load_masked_lm_seeded;
use crate::models::bert::{BertInput, MaskedLm};
use crate::recipe::{EvalMetric, Recipe, Strategy, Task};
use crate::backend::read_f32;

/// A masked-LM run.
pub type MlmSession = Run<MaskedLmTask>;
pub type MlmReport = crate::engine::StepReport<MlmEval, MlmDetail>;

/// Held-out masked-LM scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

/// A masked-LM step's extra report fields.
#[derive(Debug, Clone, Serialize)]
pub struct MlmDetail {
    pub stage: &'static str,
    pub masked_tokens: usize,
}

pub struct MaskedLmTask {
    rule: MaskRule,
    train: Vec<Vec<u32>>,
    eval: Vec<Masked>,
    pad_id: u32,
    eval_batch: usize,
    rng: StdRng,
}

impl Objective for MaskedLmTask {
    type Model = MaskedLm;
    type Batch = Vec<Masked>;
    type Eval = MlmEval;
    type Detail = MlmDetail;
    const NAME: &'static str = "masked-lm";
    const LOSS: &'static str = "masked-LM loss";
    const ADVICE: &'static str = "lower the adaptation learning rate and start again";
    const SEED_SALT: u64 = 0x6d6c_6d00;
    const EVAL_BEFORE: bool = true;
    const NOTHING_TO_LEARN: &'static str = "no domain text left to mask";

    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn eval_len(&self) -> usize {
        self.eval.len()
    }
    fn order_rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    /// Masks the rows afresh; a micro-batch that drew no position at all gets one in its first row.
    fn prepare(&self, rows: &[usize], rng: &mut StdRng) -> Vec<Masked> {
        let mut b: Vec<Masked> = rows.iter().map(|&i| self.rule.apply(&self.train[i], rng, false)).collect();
        if b.iter().all(|m| m.targets.is_empty()) {
            if let Some(&i) = rows.first() {
                b[0] = self.rule.apply(&self.train[i], rng, true);
            }
        }
        b
    }
    fn weight(&self, batch: &Vec<Masked>) -> f64 {
        batch.iter().map(|m| m.targets.len()).sum::<usize>() as f64
    }
    fn tokens(&self, batch: &Vec<Masked>) -> usize {
        batch.iter().map(|m| m.input.len()).sum()
    }
    fn loss(&self, model: &MaskedLm, rows: &Vec<Masked>, device: &Device) -> Result<Tensor<1>> {
        let (input, positions, targets, _) = batch(rows, self.pad_id, device);
        Ok(cross_entropy(model.logits_at(&input, positions), targets))
    }
    fn detail(&self, batches: &[Vec<Masked>]) -> MlmDetail {
        MlmDetail { stage: "mlm", masked_tokens: batches.iter().map(|b| self.weight(b) as usize).sum() }
    }
    /// Masked-LM loss, perplexity and masked-token accuracy on the held-out texts (eval mode).
    async fn evaluate(&self, model: &MaskedLm, step: usize, epoch: usize, device: &Device) -> Result<MlmEval> {
        let model = model.valid();
        let (mut loss_sum, mut correct, mut count) = (0.0f64, 0.0f64, 0usize);
        for chunk in self.eval.chunks(self.eval_batch) {
            let (input, positions, targets, n) = batch(chunk, self.pad_id, device);
            let logits = model.logits_at(&input, positions); // [n, vocab]
            let hits = logits.clone().argmax(1).reshape([n]).equal(targets.clone()).float().sum();
            let loss = cross_entropy(logits, targets);
            loss_sum += read_f32(loss).await?.first().copied().unwrap_or(f32::NAN) as f64 * n as f64;
            correct += read_f32(hits).await?.first().copied().unwrap_or(0.0) as f64;
            count += n;
        }
        let loss = loss_sum / count.max(1) as f64;
        Ok(MlmEval { step, epoch, loss, perplexity: loss.exp(), masked_accuracy: correct / count.max(1) as f64, masked_tokens: count })
    }
    fn watch(eval: &MlmEval, metric: EvalMetric) -> Option<f64> {
        match metric {
            EvalMetric::Loss => Some(eval.loss),
            EvalMetric::Accuracy => Some(eval.masked_accuracy),
            EvalMetric::MacroF1 => None,
        }
    }
    fn supports(metric: EvalMetric) -> bool {
        metric != EvalMetric::MacroF1
    }
    fn fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        for ids in &self.train {
            h.eat(ids.len() as u64);
            for &id in ids {
                h.eat(id as u64);
            }
        }
        h.finish()
    }
}

impl MaskedLmTask {
    fn build(ckpt: &mut Checkpoint, train: &[String], eval: &[String], recipe: &Recipe, device: &Device) -> Result<(Self, MaskedLm, crate::hf::weights::LoadReport)> {
        recipe.validate(ckpt.config.max_tokens())?;
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
        let (model, report) = load_masked_lm_seeded(ckpt, &ad, recipe.seed)?;
        let task = MaskedLmTask {
            rule,
            train: train_ids,
            eval: eval_masked,
            pad_id: ckpt.tokenizer.pad_id,
            eval_batch: recipe.batch_size.max(32),
            rng: StdRng::seed_from_u64(recipe.seed ^ 0x6d61_736b),
        };
        Ok((task, model, report))
    }

    /// The masked-LM recipe of a stage: `base` with `epochs` at peak rate `lr`, every weight trained.
    fn stage_recipe(base: &Recipe, epochs: usize, lr: f64) -> Result<Recipe> {
        if epochs == 0 {
            return Err(Error::Recipe("masked-LM adaptation needs at least one epoch".into()));
        }
        // Early stopping and the strategy belong to the classifier stage of a two-stage recipe.
        Ok(Recipe { task: Task::MaskedLm, epochs, lr, strategy: Strategy::Full, gradual_unfreeze: false, early_stopping_patience: 0, ..base.clone() })
    }
}

impl Run<MaskedLmTask> {
    /// A masked-LM run of `epochs` at peak rate `lr` on the domain texts, with the recipe's
    /// batch size, max length, warm-up, schedule, weight decay, clipping, accumulation, seed and
    /// masking probability. Every weight trains.
    pub fn new(ckpt: &mut Checkpoint, train: &[String], eval: &[String], recipe: &Recipe, epochs: usize, lr: f64, device: &Device) -> Result<Self> {
        let recipe = MaskedLmTask::stage_recipe(recipe, epochs, lr)?;
        let (task, model, report) = MaskedLmTask::build(ckpt, train, eval, &recipe, device)?;
        Run::start(task, model, report, recipe, device)
    }

    /// Continues a masked-LM run from `checkpoint` on the same domain texts.
    pub fn resume(ckpt: &mut Checkpoint, train: &[String], eval: &[String], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let (recipe, _, _) = crate::engine::checkpoint_recipe(checkpoint)?;
        let (task, model, report) = MaskedLmTask::build(ckpt, train, eval, &recipe, device)?;
        Run::restore(task, model, report, device, checkpoint)
    }

    /// Stage one of the two-stage recipe, as the page and the CLI run it: masked-LM adaptation
    /// (`mlm_epochs` at `mlm_lr`) on the domain table's `domain_text_column`, split into training
    /// and held-out texts by the recipe's eval fraction and seed. `adapted_checkpoint` then
    /// hands the adapted encoder to the classifier stage.
    pub fn domain_stage(ckpt: &mut Checkpoint, domain: &crate::data::Table, recipe: &Recipe, device: &Device) -> Result<Self> {
        if recipe.mlm_epochs == 0 {
            return Err(Error::Recipe("set the domain adaptation epochs above 0 to adapt the model first".into()));
        }
        let texts = crate::data::text::domain_texts(domain, &recipe.domain_text_column)?;
        let (train, eval) = crate::data::text::split_texts(&texts, recipe.eval_fraction, recipe.seed);
        Self::new(ckpt, &train, &eval, recipe, recipe.mlm_epochs, recipe.mlm_lr, device)
    }

    pub fn train_count(&self) -> usize {
        self.objective.train.len()
    }

    pub fn eval_count(&self) -> usize {
        self.objective.eval.len()
    }

    /// HF `…ForMaskedLM` folder files: config.json, tokenizer files, model.safetensors.
    pub async fn export(&self, ckpt: &Checkpoint) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = vec![("config.json".to_string(), crate::hf::config::export_mlm_config(&ckpt.config_file, ckpt.config.arch)?)];
        files.extend(ckpt.tokenizer_files());
        files.push(("model.safetensors".to_string(), crate::models::export::export_mlm_safetensors(ckpt.config.arch, self.model()?).await?));
        Ok(files)
    }

    /// The adapted encoder as a checkpoint to fine-tune a classifier from (stage two).
    pub async fn adapted_checkpoint(&self, ckpt: &Checkpoint) -> Result<Checkpoint> {
        let weights = crate::models::export::export_mlm_safetensors(ckpt.config.arch, self.model()?).await?;
        Ok(Checkpoint {
            config_file: ckpt.config_file.clone(),
            config: ckpt.config.clone(),
            tokenizer: crate::hf::tokenizer::TextTokenizer::from_bytes(ckpt.tokenizer.raw())?,
            weights,
            tokenizer_config: ckpt.tokenizer_config.clone(),
        })
    }

    /// The current weights in eval mode, for fill-mask.
    pub fn inference_model(&self) -> Result<MaskedLm> {
        Ok(self.model()?.valid())
    }
}

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

    pub fn maskable(&self, id: u32) -> bool {
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

/// A padded batch of masked rows: the input, the flat masked positions, their targets, count.
pub fn batch(rows: &[Masked], pad_id: u32, device: &Device) -> (BertInput, Tensor<1, Int>, Tensor<1, Int>, usize) {
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

