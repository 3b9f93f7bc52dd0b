//! Fine-tuning a sequence classifier as a step-able state machine: the browser worker (or the
//! CLI) awaits `step()` repeatedly and reports progress in between. One step is the explicit
//! classic loop: batch → forward → cross-entropy → backward → global-norm clip → AdamW with
//! linear warmup then linear decay (HF `get_linear_schedule_with_warmup`). Every tensor read is
//! asynchronous, so the same code runs on WebGPU in the browser.

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Lora, Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::nn::{DropoutConfig, Linear};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::checkpoint::Checkpoint;
use crate::data::{Example, Source};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, classification_metrics};
use crate::models::bert::{BertInput, BertLayer, SequenceClassifier};
use crate::weights::{LoadReport, ParamSource, read_f32};

/// Hyperparameters of a fine-tuning run. Every field has a default, so a partial JSON recipe
/// is valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// What is trained; only "text-classification" is implemented so far.
    pub task: String,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub max_len: usize,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Share of the training file held out for evaluation when no eval file is given.
    pub eval_fraction: f64,
    pub max_grad_norm: f64,
    pub text_column: String,
    pub label_column: String,
    /// Also score the eval set every this many steps (0: only at the end of each epoch).
    pub eval_every: usize,
    /// Which parameters train: everything, the head only, or the head and the top layers.
    pub strategy: Strategy,
    /// For `Strategy::Top`: how many encoder layers (from the top) train with the head.
    pub top_layers: usize,
    /// Keep the embeddings frozen (with `Strategy::Full`).
    pub freeze_embeddings: bool,
    /// Gradual unfreezing: start with the head only and unfreeze one more layer group from the
    /// top every epoch (or every `unfreeze_every` steps), up to what `strategy` allows.
    pub gradual_unfreeze: bool,
    pub unfreeze_every: usize,
    /// Discriminative learning rates: a layer group `d` groups below the head trains at
    /// `lr × layer_lr_decay^d` (1.0: the same rate everywhere).
    pub layer_lr_decay: f64,
    /// Learning-rate schedule after the warm-up.
    pub schedule: Schedule,
    /// Gradient accumulation: micro-batches of `batch_size` per optimizer step (effective batch
    /// = batch_size × grad_accum).
    pub grad_accum: usize,
    /// Early stopping: stop after this many evaluations without improvement of
    /// `early_stopping_metric` and restore the best weights (0: off).
    pub early_stopping_patience: usize,
    pub early_stopping_metric: EvalMetric,
    /// LoRA (`strategy: "lora"`): rank, alpha (the update is scaled by alpha / rank), dropout on
    /// the adapters' input, and which linear layers of every encoder layer get an adapter.
    pub lora_rank: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub lora_targets: Vec<LoraTarget>,
    /// Data mixing over several training files: one weight per file (empty: sample by size,
    /// tempered by `mix_temperature`). Probabilities are the weights over their sum.
    pub mix_weights: Vec<f64>,
    /// Without weights, file `i` is drawn with probability ∝ rows_i^(1/T): 1 keeps the natural
    /// proportions, larger values move towards uniform (up-sampling small files).
    pub mix_temperature: f64,
    /// Masked-LM domain adaptation before the classifier (the two-stage recipe): epochs of
    /// masked-LM training on the domain text (0: no adaptation stage) and their peak learning
    /// rate. With `task: "masked-lm"` there is only that stage, and `epochs` / `lr` apply.
    pub mlm_epochs: usize,
    pub mlm_lr: f64,
    /// Share of (non-special) tokens chosen for prediction; of those 80 % become [MASK], 10 % a
    /// random token, 10 % stay.
    pub mlm_probability: f64,
    /// Column of the domain-text file (a plain .txt file's lines are "text").
    pub domain_text_column: String,
    /// Instruction tuning (`task: "instruct"`): the columns holding prompt and completion, and
    /// the template the prompt is put in (`{prompt}` marks where; only the completion is learnt).
    pub prompt_column: String,
    pub completion_column: String,
    pub prompt_template: String,
    /// Instruction tuning on chat data: the column of conversations (`[{"role", "content"}, …]`),
    /// rendered with the model's chat template; used when the data has it.
    pub messages_column: String,
    /// Multi-task training: how each step's task is chosen (proportional to the tasks' batches,
    /// or round-robin).
    pub task_sampling: crate::multitask::TaskSampling,
}

/// Linear layers of a BERT encoder layer that LoRA can adapt (HF module names in the docs).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    /// `attention.self.query`
    Query,
    /// `attention.self.key`
    Key,
    /// `attention.self.value`
    Value,
    /// `attention.output.dense`
    AttentionOutput,
    /// `intermediate.dense` (feed-forward in)
    Intermediate,
    /// `output.dense` (feed-forward out)
    Output,
}

impl LoraTarget {
    pub const ALL: [LoraTarget; 6] =
        [LoraTarget::Query, LoraTarget::Key, LoraTarget::Value, LoraTarget::AttentionOutput, LoraTarget::Intermediate, LoraTarget::Output];

    /// The HF module path inside `encoder.layer.N`.
    pub fn hf_name(self) -> &'static str {
        match self {
            LoraTarget::Query => "attention.self.query",
            LoraTarget::Key => "attention.self.key",
            LoraTarget::Value => "attention.self.value",
            LoraTarget::AttentionOutput => "attention.output.dense",
            LoraTarget::Intermediate => "intermediate.dense",
            LoraTarget::Output => "output.dense",
        }
    }

    pub fn linear(self, layer: &BertLayer) -> &Linear {
        match self {
            LoraTarget::Query => &layer.attention.query,
            LoraTarget::Key => &layer.attention.key,
            LoraTarget::Value => &layer.attention.value,
            LoraTarget::AttentionOutput => &layer.attention_output,
            LoraTarget::Intermediate => &layer.intermediate,
            LoraTarget::Output => &layer.output,
        }
    }
}

/// The evaluation metric early stopping watches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvalMetric {
    Accuracy,
    MacroF1,
    Loss,
}

impl EvalMetric {
    pub fn of(self, m: &Metrics) -> f64 {
        match self {
            EvalMetric::Accuracy => m.accuracy,
            EvalMetric::MacroF1 => m.macro_f1,
            EvalMetric::Loss => m.loss,
        }
    }

    fn better(self, new: f64, old: f64) -> bool {
        if self == EvalMetric::Loss { new < old } else { new > old }
    }
}

/// Early stopping's outcome: where the run stopped and which weights it kept.
#[derive(Debug, Clone, Serialize)]
pub struct EarlyStop {
    pub metric: EvalMetric,
    /// The step after which training stopped.
    pub stopped_at: usize,
    /// The step whose weights were restored, and its metric value.
    pub best_step: usize,
    pub best_value: f64,
    /// True when patience ran out before the planned last step.
    pub early: bool,
}

/// Which parameters are trained.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Every weight (embeddings optionally frozen).
    Full,
    /// The classification head only (pooler + classifier); the encoder is frozen.
    Head,
    /// The head and the top `top_layers` encoder layers.
    Top,
    /// Low-rank adapters (LoRA) on the chosen linear layers plus the head; every pretrained
    /// encoder weight stays frozen.
    Lora,
}

/// Learning-rate schedule after linear warm-up (HF `get_*_schedule_with_warmup`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Linear,
    Cosine,
    Constant,
}

/// Tasks the engine trains today.
pub const TASKS: &[&str] = &["text-classification", "masked-lm", "causal-lm", "instruct"];

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            task: "text-classification".into(),
            epochs: 3,
            lr: 5e-5,
            batch_size: 16,
            max_len: 128,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            seed: 42,
            eval_fraction: 0.2,
            max_grad_norm: 1.0,
            text_column: "text".into(),
            label_column: "label".into(),
            eval_every: 0,
            strategy: Strategy::Full,
            top_layers: 2,
            freeze_embeddings: false,
            gradual_unfreeze: false,
            unfreeze_every: 0,
            layer_lr_decay: 1.0,
            schedule: Schedule::Linear,
            grad_accum: 1,
            early_stopping_patience: 0,
            early_stopping_metric: EvalMetric::MacroF1,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.1,
            lora_targets: vec![LoraTarget::Query, LoraTarget::Value],
            mix_weights: Vec::new(),
            mix_temperature: 1.0,
            mlm_epochs: 0,
            mlm_lr: 1e-4,
            mlm_probability: 0.15,
            domain_text_column: "text".into(),
            prompt_column: "prompt".into(),
            completion_column: "completion".into(),
            prompt_template: "{prompt}".into(),
            messages_column: "messages".into(),
            task_sampling: crate::multitask::TaskSampling::Proportional,
        }
    }
}

impl Recipe {
    /// Refuses a recipe for another task where a classifier is trained.
    pub fn require_classification(&self) -> Result<()> {
        if self.task != "text-classification" {
            return Err(Error::Recipe(format!(
                "task \"{}\" trains no classifier: masked-lm runs as domain adaptation (burnish train --task masked-lm, or mlm_epochs with domain text before a classifier); causal-lm and instruct fine-tune a decoder (burnish train --task causal-lm|instruct with a GPT-2/Llama/Qwen2 model)",
                self.task
            )));
        }
        Ok(())
    }

    pub fn validate(&self, max_positions: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Recipe(m));
        if !TASKS.contains(&self.task.as_str()) {
            return bad(format!("task \"{}\" is not supported (supported: {})", self.task, TASKS.join(", ")));
        }
        if self.epochs == 0 || self.epochs > 1000 {
            return bad(format!("epochs must be between 1 and 1000 (got {})", self.epochs));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 1.0) {
            return bad(format!("learning rate must be a positive number below 1 (got {})", self.lr));
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return bad(format!("batch size must be between 1 and 4096 (got {})", self.batch_size));
        }
        if self.max_len < 4 || self.max_len > max_positions {
            return bad(format!("max length must be between 4 and the model's {max_positions} positions (got {})", self.max_len));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!("warmup ratio must be in [0, 1) (got {})", self.warmup_ratio));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight decay must be ≥ 0 (got {})", self.weight_decay));
        }
        if !(self.eval_fraction > 0.0 && self.eval_fraction < 0.9) {
            return bad(format!("eval fraction must be in (0, 0.9) (got {})", self.eval_fraction));
        }
        if self.strategy == Strategy::Top && self.top_layers == 0 {
            return bad("top layers must be at least 1 with the \"top\" strategy (use \"head\" to train the head only)".into());
        }
        if self.grad_accum == 0 || self.grad_accum > 1024 {
            return bad(format!("gradient accumulation must be between 1 and 1024 micro-batches (got {})", self.grad_accum));
        }
        if !(self.layer_lr_decay.is_finite() && self.layer_lr_decay > 0.0 && self.layer_lr_decay <= 1.0) {
            return bad(format!("layer lr decay must be in (0, 1] (got {})", self.layer_lr_decay));
        }
        if self.strategy == Strategy::Lora {
            if self.lora_rank == 0 || self.lora_rank > 256 {
                return bad(format!("LoRA rank must be between 1 and 256 (got {})", self.lora_rank));
            }
            if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
                return bad(format!("LoRA alpha must be a positive number (got {})", self.lora_alpha));
            }
            if !(0.0..1.0).contains(&self.lora_dropout) {
                return bad(format!("LoRA dropout must be in [0, 1) (got {})", self.lora_dropout));
            }
            if self.lora_targets.is_empty() {
                return bad("LoRA needs at least one target module (query, key, value, attention_output, intermediate, output)".into());
            }
            if self.gradual_unfreeze {
                return bad("gradual unfreezing does not apply to LoRA (the pretrained weights stay frozen): turn one of them off".into());
            }
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return bad(format!("max grad norm must be ≥ 0 (got {})", self.max_grad_norm));
        }
        if !(self.mix_temperature.is_finite() && self.mix_temperature > 0.0 && self.mix_temperature <= 100.0) {
            return bad(format!("mixing temperature must be in (0, 100] (got {})", self.mix_temperature));
        }
        if let Some(w) = self.mix_weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return bad(format!("mixing weights must be numbers ≥ 0 (got {w})"));
        }
        if !self.mix_weights.is_empty() && self.mix_weights.iter().sum::<f64>() <= 0.0 {
            return bad("at least one mixing weight must be above 0".into());
        }
        if self.mlm_epochs > 1000 {
            return bad(format!("domain adaptation epochs must be between 0 and 1000 (got {})", self.mlm_epochs));
        }
        if !(self.mlm_lr.is_finite() && self.mlm_lr > 0.0 && self.mlm_lr < 1.0) {
            return bad(format!("domain adaptation learning rate must be a positive number below 1 (got {})", self.mlm_lr));
        }
        if !(self.mlm_probability > 0.0 && self.mlm_probability < 1.0) {
            return bad(format!("masking probability must be in (0, 1) (got {})", self.mlm_probability));
        }
        if self.task == "masked-lm" && self.strategy != Strategy::Full {
            return bad("masked-LM adaptation trains every weight: strategies (head, top, LoRA) apply to the classifier stage".into());
        }
        Ok(())
    }
}

/// HF's linear schedule: warm up from 0 to `lr` over `warmup` steps, then decay linearly to 0
/// at `total`. `step` counts the optimizer steps already taken.
pub fn linear_schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return lr * step as f64 / warmup.max(1) as f64;
    }
    lr * ((total.saturating_sub(step)) as f64 / (total.saturating_sub(warmup)).max(1) as f64).max(0.0)
}

/// HF's cosine schedule (`get_cosine_schedule_with_warmup`, half a cycle): warm up, then
/// follow a cosine from `lr` down to 0 at `total`.
pub fn cosine_schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return lr * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    lr * (0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())).max(0.0)
}

/// HF's constant schedule with warm-up.
pub fn constant_schedule(lr: f64, step: usize, warmup: usize) -> f64 {
    if step < warmup { lr * step as f64 / warmup.max(1) as f64 } else { lr }
}

impl Schedule {
    pub fn lr(self, lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
        match self {
            Schedule::Linear => linear_schedule(lr, step, warmup, total),
            Schedule::Cosine => cosine_schedule(lr, step, warmup, total),
            Schedule::Constant => constant_schedule(lr, step, warmup),
        }
    }
}

/// Layer groups from the top: 0 is the head (pooler + classifier), 1 the last encoder layer,
/// …, `layers` the first, `layers + 1` the embeddings.
/// A named fine-tuning strategy for comparisons (the CLI's `compare`, the page's side-by-side
/// view): what it changes in a base recipe and the learning rate it is usually run at.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    pub lr: f64,
}

pub const PRESETS: &[Preset] = &[
    Preset { name: "full", about: "full fine-tuning: every weight trains", lr: 5e-5 },
    Preset { name: "head", about: "head only: the encoder is frozen, pooler + classifier train", lr: 1e-3 },
    Preset { name: "top2", about: "top 2 encoder layers + head train", lr: 1e-4 },
    Preset { name: "gradual", about: "gradual unfreezing: head first, one more layer group from the top at even intervals over the first half", lr: 1e-4 },
    Preset { name: "discriminative", about: "full fine-tuning with layer-wise rates: lr × 0.8^(depth below the head)", lr: 1e-4 },
    Preset { name: "lora", about: "LoRA rank 8, alpha 16 on query and value + head; pretrained weights frozen", lr: 5e-4 },
];

/// `base` with preset `name` applied (its strategy fields and, unless `keep_lr`, its learning
/// rate). `total_steps` and `layers` place gradual unfreezing's steps.
pub fn preset_recipe(name: &str, base: &Recipe, keep_lr: bool, total_steps: usize, layers: usize) -> Result<Recipe> {
    let p = PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        Error::Recipe(format!("unknown strategy preset \"{name}\" (known: {})", PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")))
    })?;
    let mut r = Recipe {
        strategy: Strategy::Full,
        gradual_unfreeze: false,
        unfreeze_every: 0,
        layer_lr_decay: 1.0,
        freeze_embeddings: false,
        ..base.clone()
    };
    if !keep_lr {
        r.lr = p.lr;
    }
    match name {
        "head" => r.strategy = Strategy::Head,
        "top2" => {
            r.strategy = Strategy::Top;
            r.top_layers = 2;
        }
        "gradual" => {
            r.gradual_unfreeze = true;
            // Every group (layers + embeddings) unfrozen by half-way.
            r.unfreeze_every = (total_steps / (2 * (layers + 1))).max(1);
        }
        "discriminative" => r.layer_lr_decay = 0.8,
        "lora" => {
            r.strategy = Strategy::Lora;
            r.lora_rank = 8;
            r.lora_alpha = 16.0;
            r.lora_targets = vec![LoraTarget::Query, LoraTarget::Value];
        }
        _ => {}
    }
    Ok(r)
}

/// Optimizer steps a recipe takes over `rows` training rows.
pub fn planned_steps(r: &Recipe, rows: usize) -> usize {
    rows.div_ceil(r.batch_size.max(1)).div_ceil(r.grad_accum.max(1)) * r.epochs
}

/// One training file's place in a data mixture.
#[derive(Debug, Clone, Serialize)]
pub struct MixShare {
    pub name: String,
    pub rows: usize,
    /// Chance that a training example is drawn from this file.
    pub probability: f64,
    /// Examples drawn from it per epoch (an epoch is as many examples as all files hold).
    pub per_epoch: f64,
    /// How many times each of its rows is seen per epoch (< 1: down-sampled).
    pub passes: f64,
}

/// The mixture a recipe gives to training files of `(name, rows)`.
pub fn mixture(files: &[(String, usize)], r: &Recipe) -> Result<Vec<MixShare>> {
    let total: usize = files.iter().map(|f| f.1).sum();
    let raw: Vec<f64> = if r.mix_weights.is_empty() {
        files.iter().map(|f| (f.1 as f64).powf(1.0 / r.mix_temperature)).collect()
    } else if r.mix_weights.len() != files.len() {
        return Err(Error::Recipe(format!(
            "{} mixing weights for {} training files: give one weight per file, in order ({})",
            r.mix_weights.len(),
            files.len(),
            files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", ")
        )));
    } else {
        r.mix_weights.clone()
    };
    let sum: f64 = raw.iter().sum();
    if sum <= 0.0 {
        return Err(Error::Recipe("at least one mixing weight must be above 0".into()));
    }
    Ok(files
        .iter()
        .zip(raw)
        .map(|((name, rows), w)| {
            let probability = w / sum;
            let per_epoch = probability * total as f64;
            MixShare { name: name.clone(), rows: *rows, probability, per_epoch, passes: if *rows > 0 { per_epoch / *rows as f64 } else { 0.0 } }
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerGroup {
    pub name: String,
    pub parameters: usize,
    /// Learning-rate factor (`layer_lr_decay^depth`).
    pub lr_factor: f64,
}

/// The ids of a module's float parameters.
pub fn param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.id);
        }
    }
    let mut v = Ids(Vec::new());
    module.visit(&mut v);
    v.0
}

/// The layer groups of a classifier, top first, with their parameter ids.
pub fn layer_groups(model: &SequenceClassifier, decay: f64) -> Vec<(LayerGroup, Vec<ParamId>)> {
    let l = model.bert.layers.len();
    let mut out = Vec::with_capacity(l + 2);
    let mut push = |name: String, ids: Vec<ParamId>, parameters: usize| {
        let depth = out.len() as i32;
        out.push((LayerGroup { name, parameters, lr_factor: decay.powi(depth) }, ids));
    };
    let mut head = param_ids(&model.bert.pooler);
    head.extend(param_ids(&model.classifier));
    push("head (pooler + classifier)".into(), head, model.classifier.num_params() + model.bert.pooler.num_params());
    for i in (0..l).rev() {
        let layer = &model.bert.layers[i];
        push(format!("encoder layer {i}"), param_ids(layer), layer.num_params());
    }
    push("embeddings".into(), param_ids(&model.bert.embeddings), model.bert.embeddings.num_params());
    out
}

/// Sets which layer groups train: the top `n` groups (see `layer_groups`), minus the
/// embeddings when `freeze_embeddings`.
pub fn set_trainable(mut m: SequenceClassifier, n: usize, freeze_embeddings: bool) -> SequenceClassifier {
    let l = m.bert.layers.len();
    m.classifier = m.classifier.set_require_grad(true);
    m.bert.pooler = m.bert.pooler.set_require_grad(true);
    m.bert.layers = m.bert.layers.into_iter().enumerate().map(|(i, layer)| layer.set_require_grad(l - i < n)).collect();
    m.bert.embeddings = m.bert.embeddings.set_require_grad(l + 1 < n && !freeze_embeddings);
    m
}

/// Attaches burn's LoRA adapters (`Module::apply_lora`) to the recipe's target linears of every
/// encoder layer: all pretrained weights are frozen, the adapters and the head (pooler +
/// classifier, PEFT's `modules_to_save`) train. A starts like PEFT's Kaiming-uniform init in
/// spread (std 1/√(3·hidden)), B at zero, so the model's outputs are unchanged at step 0.
pub fn with_lora(mut m: SequenceClassifier, r: &Recipe) -> SequenceClassifier {
    let mut ids = Vec::new();
    for layer in &m.bert.layers {
        for t in &r.lora_targets {
            ids.push(t.linear(layer).weight.id);
        }
    }
    let hidden = m.bert.pooler.weight.dims()[0] as f64;
    let mut lora = Lora::new(r.lora_rank, r.lora_alpha).set_param_group(ParamGroup::from_ids(ids));
    lora.init_std = Some(1.0 / (3.0 * hidden).sqrt());
    m = m.apply_lora(lora);
    for layer in &mut m.bert.layers {
        layer.lora_dropout = DropoutConfig::new(r.lora_dropout).init();
    }
    m.classifier = m.classifier.set_require_grad(true);
    m.bert.pooler = m.bert.pooler.set_require_grad(true);
    m
}

/// Float parameters that currently require gradients (LoRA factors included).
pub fn count_trainable<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let t = p.val();
            if t.is_require_grad() {
                self.0 += t.shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    module.visit(&mut c);
    c.0
}

/// A tokenized example.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub label: usize,
}

/// Sum of squared gradients over the whole module (a tensor; nothing is read back).
struct GradSquares<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for GradSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    coef: Tensor<1>,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let coef: Tensor<D> = self.coef.clone().unsqueeze();
            self.grads.register::<D>(param.id, g * coef);
        }
    }
}

/// Clips gradients by their global L2 norm, like `torch.nn.utils.clip_grad_norm_` (burn's own
/// clipping works per tensor, which is a different rule). Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> Option<Tensor<1>> {
    let mut sq = GradSquares { grads, total: None };
    model.visit(&mut sq);
    let norm = sq.total?.sqrt();
    if max_norm > 0.0 {
        let coef = (norm.clone().add_scalar(1e-6).recip().mul_scalar(max_norm)).clamp_max(1.0);
        model.visit(&mut GradScale { grads, coef });
    }
    Some(norm)
}

/// Mean cross-entropy of `logits` `[batch, classes]` against `labels` `[batch]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let logp = log_softmax(logits, 1); // [batch, classes]
    let picked = logp.gather(1, labels.reshape([batch, 1])); // [batch, 1]
    picked.mean().neg()
}

/// Reads a step's loss and gradient norm (asynchronously: WebGPU-safe) and refuses a loss that
/// is not finite: "the {what} became NaN at step N: {advice}".
pub async fn read_step(loss: Tensor<1>, norm: Option<Tensor<1>>, step: usize, what: &str, advice: &str) -> Result<(f64, f64)> {
    let loss_v = read_f32(loss.detach()).await?.first().copied().unwrap_or(f32::NAN) as f64;
    let norm_v = match norm {
        Some(t) => read_f32(t).await?.first().copied().unwrap_or(0.0) as f64,
        None => 0.0,
    };
    if !loss_v.is_finite() {
        return Err(Error::Other(format!("the {what} became {loss_v} at step {}: {advice}", step + 1)));
    }
    Ok((loss_v, norm_v))
}

/// A run that advances one optimizer step at a time (classifier, masked-LM, multi-task).
#[allow(async_fn_in_trait)] // used on one thread (the page's worker, the CLI): no Send bound needed
pub trait Stepper {
    type Report;
    fn finished(&self) -> bool;
    async fn next_step(&mut self) -> Result<Self::Report>;

    /// Runs steps until `budget_ms` has passed (at least one step), returning their reports.
    async fn run_for(&mut self, budget_ms: f64) -> Result<Vec<Self::Report>> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        while !self.finished() {
            out.push(self.next_step().await?);
            if t0.elapsed().as_secs_f64() * 1000.0 >= budget_ms {
                break;
            }
        }
        Ok(out)
    }
}

impl Stepper for TrainSession {
    type Report = StepReport;
    fn finished(&self) -> bool {
        self.is_done()
    }
    async fn next_step(&mut self) -> Result<StepReport> {
        self.step().await
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub examples_per_s: f64,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
    pub done: bool,
    /// Set when this step closed an epoch and the eval set was scored.
    pub epoch_end: Option<EpochRecord>,
    /// Eval metrics when the eval set was scored after this step (epoch end or `eval_every`).
    pub eval: Option<Metrics>,
    /// Set when gradual unfreezing changed what trains, from this step on.
    pub unfrozen: Option<TrainableState>,
    /// Set when early stopping ended the run (or restored the best weights at its end).
    pub early_stop: Option<EarlyStop>,
    /// Data mixing: examples taken from each training file so far (empty with one file).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drawn: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub step: usize,
    pub train_loss: f64,
    pub eval: Option<Metrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    pub label_id: usize,
    pub probabilities: Vec<f64>,
    pub logits: Vec<f64>,
}

/// An inference-only classifier (no autodiff): evaluation, prediction, try-it box.
pub struct Classifier {
    pub model: SequenceClassifier,
    pub labels: Vec<String>,
    pub pad_id: u32,
}

impl Classifier {
    /// Logits for already tokenized rows, in input order; rows are batched by length.
    pub async fn logits(&self, rows: &[Vec<u32>], batch_size: usize, device: &Device) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let k = self.labels.len();
        let mut out = vec![Vec::new(); rows.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].clone()).collect();
            let input = BertInput::from_rows(&batch, self.pad_id, device);
            let logits = read_f32(self.model.forward(&input)).await?;
            for (j, &i) in chunk.iter().enumerate() {
                out[i] = logits[j * k..(j + 1) * k].to_vec();
            }
        }
        Ok(out)
    }

    pub fn to_prediction(&self, logits: &[f32]) -> Prediction {
        let probs = softmax64(logits);
        let best = argmax(&probs);
        Prediction {
            label: self.labels[best].clone(),
            label_id: best,
            probabilities: probs,
            logits: logits.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Metrics plus per-example predictions on encoded examples.
    pub async fn evaluate(&self, data: &[Encoded], batch_size: usize, device: &Device) -> Result<(Metrics, Vec<Prediction>)> {
        let rows: Vec<Vec<u32>> = data.iter().map(|e| e.ids.clone()).collect();
        let logits = self.logits(&rows, batch_size, device).await?;
        Ok(self.score(data, &logits))
    }

    /// Metrics and predictions from the logits of `data` (in its order).
    pub fn score(&self, data: &[Encoded], logits: &[Vec<f32>]) -> (Metrics, Vec<Prediction>) {
        let preds: Vec<Prediction> = logits.iter().map(|l| self.to_prediction(l)).collect();
        let gold: Vec<usize> = data.iter().map(|e| e.label).collect();
        let loss = if data.is_empty() {
            0.0
        } else {
            data.iter().zip(&preds).map(|(e, p)| -(p.probabilities[e.label].max(1e-300)).ln()).sum::<f64>() / data.len() as f64
        };
        let pred_ids: Vec<usize> = preds.iter().map(|p| p.label_id).collect();
        (classification_metrics(&gold, &pred_ids, &self.labels, loss), preds)
    }
}

/// An evaluation done a few batches at a time: the page scores the model before fine-tuning
/// (a snapshot of the starting weights) between training slices, so the first loss shows
/// without waiting for the whole evaluation set. Same batches and results as `evaluate`.
pub struct PendingEvaluation {
    classifier: Classifier,
    data: Vec<Encoded>,
    /// Example indices by length, in `batch_size` chunks (as `Classifier::logits` batches them).
    order: Vec<usize>,
    logits: Vec<Vec<f32>>,
    next: usize,
    batch_size: usize,
    device: Device,
}

impl PendingEvaluation {
    pub fn new(classifier: Classifier, data: Vec<Encoded>, batch_size: usize, device: Device) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| data[i].ids.len());
        let logits = vec![Vec::new(); data.len()];
        PendingEvaluation { classifier, data, order, logits, next: 0, batch_size: batch_size.max(1), device }
    }

    /// Scores batches for about `budget_ms` (at least one); the metrics once every example is in.
    pub async fn advance(&mut self, budget_ms: f64) -> Result<Option<(Metrics, Vec<Prediction>)>> {
        let t0 = Instant::now();
        while self.next < self.order.len() {
            let chunk: Vec<usize> = self.order[self.next..(self.next + self.batch_size).min(self.order.len())].to_vec();
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| self.data[i].ids.clone()).collect();
            let batch = self.classifier.logits(&rows, rows.len(), &self.device).await?;
            for (j, i) in chunk.iter().enumerate() {
                self.logits[*i] = batch[j].clone();
            }
            self.next += chunk.len();
            if t0.elapsed().as_secs_f64() * 1e3 >= budget_ms {
                break;
            }
        }
        Ok((self.next >= self.order.len()).then(|| self.classifier.score(&self.data, &self.logits)))
    }
}

pub fn softmax64(logits: &[f32]) -> Vec<f64> {
    let m = logits.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = logits.iter().map(|&x| (x as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Builds a classifier for `labels` from a checkpoint. The checkpoint's own head is reused only
/// when its labels are exactly these; otherwise a new head is initialised like HF's.
pub fn build_classifier(ckpt: &Checkpoint, labels: &[String], seed: u64, device: &Device) -> Result<(SequenceClassifier, LoadReport)> {
    let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, seed)?;
    let reuse_head = ckpt.config.labels == labels && src.has("classifier.weight");
    let model = if reuse_head {
        SequenceClassifier::load(&ckpt.config, labels.len(), &mut src, device)?
    } else {
        src.forget_prefix("classifier.");
        SequenceClassifier::load(&ckpt.config, labels.len(), &mut src, device)?
    };
    Ok((model, src.report()))
}

pub fn encode_examples(ckpt: &mut Checkpoint, examples: &[Example], labels: &[String], max_len: usize, what: &str) -> Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(examples.len());
    let mut unknown: Vec<String> = Vec::new();
    for e in examples {
        match labels.iter().position(|l| *l == e.label) {
            Some(label) => out.push(Encoded { ids: ckpt.tokenizer.encode(&e.text, max_len)?, label }),
            None => {
                if !unknown.contains(&e.label) {
                    unknown.push(e.label.clone());
                }
            }
        }
    }
    if !unknown.is_empty() {
        unknown.truncate(10);
        return Err(Error::data(format!(
            "{what} has labels that the training data does not: {} (training labels: {})",
            unknown.join(", "),
            labels.join(", ")
        )));
    }
    Ok(out)
}

pub struct TrainSession {
    model: Option<SequenceClassifier>,
    optim: ModuleOptimizer,
    pub recipe: Recipe,
    pub labels: Vec<String>,
    pub train: Vec<Encoded>,
    pub eval: Vec<Encoded>,
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
    epoch_loss_sum: f64,
    epoch_loss_count: usize,
    pub history: Vec<EpochRecord>,
    pub losses: Vec<f64>,
    started: Option<Instant>,
    pub train_seconds: f64,
    examples_seen: usize,
    tokens_seen: usize,
    groups: Vec<(LayerGroup, Vec<ParamId>)>,
    /// How many layer groups (from the top) train now.
    pub trainable_groups: usize,
    /// Early stopping: the best evaluation so far (value, step, weights) and evaluations since.
    best: Option<(f64, usize, SequenceClassifier)>,
    evals_without_gain: usize,
    pub early_stop: Option<EarlyStop>,
    /// Epoch shuffles drawn from `rng` so far (a resumed run replays them to restore the RNG).
    shuffles: usize,
    /// Data mixing: each training file's rows in `train`, the chance of drawing from it, how
    /// many of its rows were taken so far (its own shuffled stream), and the examples each file
    /// gave to optimizer steps.
    sources: Vec<(String, std::ops::Range<usize>)>,
    mix: Vec<MixShare>,
    source_pos: Vec<usize>,
    pub drawn: Vec<usize>,
}

/// Everything of a run besides tensors, as stored in a checkpoint.
#[derive(Serialize, Deserialize)]
struct RunState {
    format: u32,
    recipe: Recipe,
    labels: Vec<String>,
    train_fingerprint: u64,
    train_count: usize,
    step: usize,
    epoch: usize,
    order: Vec<usize>,
    cursor: usize,
    shuffles: usize,
    /// Floats that steer the run are stored as their bits (JSON text may round the last digit).
    epoch_loss_sum: u64,
    epoch_loss_count: usize,
    history: Vec<EpochRecord>,
    losses: Vec<u64>,
    train_seconds: f64,
    examples_seen: usize,
    tokens_seen: usize,
    trainable_groups: usize,
    evals_without_gain: usize,
    best: Option<(u64, usize)>,
    #[serde(default)]
    source_rows: Vec<usize>,
    #[serde(default)]
    source_pos: Vec<usize>,
    #[serde(default)]
    drawn: Vec<usize>,
}

const CHECKPOINT_MAGIC: &[u8; 8] = b"BURNCKP1";

/// FNV-1a over the tokenized training set: a resumed run must see the same data.
fn fingerprint(examples: &[Encoded]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    for e in examples {
        eat(e.label as u64);
        eat(e.ids.len() as u64);
        for &id in &e.ids {
            eat(id as u64);
        }
    }
    h
}

/// Length-prefixed parts: magic, then (u64 length, bytes) for each part.
pub(crate) fn pack(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    for p in parts {
        out.extend((p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

pub(crate) fn unpack(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let bad = || Error::Other("this is not a Burnish training checkpoint (or it is cut short)".into());
    if bytes.len() < 8 || &bytes[..8] != CHECKPOINT_MAGIC {
        return Err(bad());
    }
    let mut parts = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes.get(at..at + 8).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        at += 8;
        parts.push(bytes.get(at..at.checked_add(len).ok_or_else(bad)?).ok_or_else(bad)?);
        at += len;
    }
    Ok(parts)
}

/// burn's module record of `m`: the bytes `m.into_record().into_bytes()` writes (a burnpack of
/// every parameter, LoRA adapters included, by module path with its ParamId), but with every
/// tensor read by `into_data_async`, so it works on WebGPU in a browser, where synchronous reads
/// are impossible. Mirrors burn-core's record collector (the `on_save` form of each parameter).
pub async fn module_record_bytes<M: Module>(m: &M) -> Result<Vec<u8>> {
    type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<TensorData>>>>;
    fn pending<const D: usize, K: burn::tensor::kind::Basic + 'static>(t: Tensor<D, K>) -> Pending {
        Box::pin(async move { t.into_data_async().await.map_err(|e| Error::Other(format!("reading a weight for the checkpoint: {e:?}"))) })
    }
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        items: Vec<(String, ParamId, Pending)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
        fn visit_int<const D: usize>(&mut self, p: &Param<Tensor<D, Int>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
        fn visit_bool<const D: usize>(&mut self, p: &Param<Tensor<D, burn::tensor::Bool>>) {
            self.items.push((self.path.join("."), p.id, pending(p.transform_for_save().val())));
        }
    }
    let mut c = Collect::default();
    m.visit(&mut c);
    let mut tensors = Vec::with_capacity(c.items.len());
    for (path, id, data) in c.items {
        let (bytes, shape, dtype) = data.await?.into_parts();
        tensors.push(burn_pack::Tensor::new(path, dtype, shape, Some(id.val()), bytes));
    }
    let b = burn_pack::Writer::new(tensors).into_bytes().map_err(|e| Error::Other(format!("saving the weights: {e:?}")))?;
    Ok(b.to_vec())
}

/// burn's optimizer record of `optim` (the bytes `optim.into_bytes()` writes), with AdamW's
/// state read asynchronously (see the patched burn-optim's `to_record_async`).
pub async fn optimizer_record_bytes(optim: &ModuleOptimizer) -> Result<Vec<u8>> {
    let record = optim.to_record_async(&Device::flex()).await.map_err(|e| Error::Other(format!("saving the optimizer state: {e}")))?;
    let b = record.into_bytes().map_err(|e| Error::Other(format!("saving the optimizer state: {e:?}")))?;
    Ok(b.to_vec())
}

/// What a checkpoint holds, taken from a session at once (tensors are shared, not copied), so
/// that it can be written asynchronously while the session is free to go on.
pub struct Snapshot {
    state: Vec<u8>,
    model: SequenceClassifier,
    optim: ModuleOptimizer,
    best: Option<SequenceClassifier>,
}

impl Snapshot {
    /// The checkpoint bytes: run state, weights, optimizer state, early stopping's best weights.
    pub async fn into_bytes(self) -> Result<Vec<u8>> {
        let model = module_record_bytes(&self.model).await?;
        let optim = optimizer_record_bytes(&self.optim).await?;
        let best = match &self.best {
            Some(b) => module_record_bytes(b).await?,
            None => Vec::new(),
        };
        Ok(pack(&[&self.state, &model, &optim, &best]))
    }
}

/// `m` with the weights of a module record written by `module_record_bytes` (its saved
/// parameter ids included, which AdamW's state is keyed by).
pub(crate) fn load_module<M: Module>(m: M, bytes: &[u8]) -> Result<M> {
    let rec = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Other(format!("the checkpoint's weights cannot be read: {e:?}")))?;
    m.try_load_record(rec).map_err(|e| Error::Other(format!("the checkpoint's weights do not fit this model: {e:?}")))
}

/// An optimizer with the state of a record written by `optimizer_record_bytes`, on `device`.
pub(crate) fn load_optimizer(optim: ModuleOptimizer, bytes: &[u8], device: &Device) -> Result<ModuleOptimizer> {
    let record = burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Other(format!("the checkpoint's optimizer state cannot be read: {e:?}")))?;
    Ok(optim.load_record_on(record, device))
}

/// What trains at a point of the run (for the page and the CLI).
#[derive(Debug, Clone, Serialize)]
pub struct TrainableState {
    pub step: usize,
    /// Names of the groups that train, top first.
    pub training: Vec<String>,
    pub trainable_parameters: usize,
    pub total_parameters: usize,
}

impl TrainSession {
    /// `device` is the plain device (WebGPU or CPU); training runs on its autodiff decorator.
    pub fn new(ckpt: &mut Checkpoint, train: &[Example], eval: &[Example], labels: Vec<String>, recipe: Recipe, device: &Device) -> Result<Self> {
        let source = Source { name: "the training data".into(), examples: train.to_vec() };
        Self::with_sources(ckpt, std::slice::from_ref(&source), eval, labels, recipe, device)
    }

    /// A run over several training files mixed as the recipe says (`mix_weights`,
    /// `mix_temperature`); with one file it is the plain shuffled-epoch loop.
    pub fn with_sources(ckpt: &mut Checkpoint, sources: &[Source], eval: &[Example], labels: Vec<String>, recipe: Recipe, device: &Device) -> Result<Self> {
        recipe.validate(ckpt.config.max_position_embeddings)?;
        recipe.require_classification()?;
        let mut train_enc = Vec::new();
        let mut ranges = Vec::new();
        for src in sources {
            let start = train_enc.len();
            let what = if sources.len() == 1 { src.name.clone() } else { format!("training file {}", src.name) };
            train_enc.extend(encode_examples(ckpt, &src.examples, &labels, recipe.max_len, &what)?);
            if sources.len() > 1 && train_enc.len() == start {
                return Err(Error::data(format!("training file {} has no usable rows", src.name)));
            }
            ranges.push((src.name.clone(), start..train_enc.len()));
        }
        if sources.len() == 1 && !recipe.mix_weights.is_empty() && recipe.mix_weights != [1.0] {
            return Err(Error::Recipe("mixing weights need two or more training files (only one was given)".into()));
        }
        let mix = mixture(&ranges.iter().map(|(n, r)| (n.clone(), r.len())).collect::<Vec<_>>(), &recipe)?;
        let eval_enc = encode_examples(ckpt, eval, &labels, recipe.max_len, "the evaluation data")?;
        if train_enc.is_empty() {
            return Err(Error::data("no training examples"));
        }
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (model, load_report) = build_classifier(ckpt, &labels, recipe.seed, &ad)?;
        let groups = layer_groups(&model, recipe.layer_lr_decay);
        let optim = AdamWConfig::new()
            .with_weight_decay(recipe.weight_decay as f32)
            .with_epsilon(1e-8)
            .init();
        let total_steps = planned_steps(&recipe, train_enc.len());
        let warmup_steps = (total_steps as f64 * recipe.warmup_ratio).ceil() as usize;
        Ok(TrainSession {
            model: Some(model),
            optim,
            labels,
            train: train_enc,
            eval: eval_enc,
            load_report,
            device: ad,
            base_device: device.clone(),
            pad_id: ckpt.tokenizer.pad_id,
            rng: StdRng::seed_from_u64(recipe.seed),
            recipe,
            order: Vec::new(),
            cursor: 0,
            step: 0,
            epoch: 0,
            total_steps,
            warmup_steps,
            epoch_loss_sum: 0.0,
            epoch_loss_count: 0,
            history: Vec::new(),
            losses: Vec::new(),
            started: None,
            train_seconds: 0.0,
            examples_seen: 0,
            tokens_seen: 0,
            groups,
            trainable_groups: usize::MAX, // set before the first step
            best: None,
            evals_without_gain: 0,
            early_stop: None,
            shuffles: 0,
            source_pos: vec![0; ranges.len()],
            drawn: vec![0; ranges.len()],
            sources: ranges,
            mix,
        })
        .map(|mut s| {
            let n = s.wanted_groups();
            s.model = s.model.take().map(|m| {
                if s.recipe.strategy == Strategy::Lora { with_lora(m, &s.recipe) } else { set_trainable(m, n, s.recipe.freeze_embeddings) }
            });
            if let (Strategy::Lora, Some(m)) = (s.recipe.strategy, s.model.as_ref()) {
                // Adapters were added after the groups were listed: list them again.
                s.groups = layer_groups(m, s.recipe.layer_lr_decay);
            }
            s.trainable_groups = n;
            s
        })
    }

    /// The most layer groups the strategy lets train.
    fn max_groups(&self) -> usize {
        let layers = self.groups.len() - 2;
        match self.recipe.strategy {
            Strategy::Full => layers + 2,
            Strategy::Head => 1,
            Strategy::Top => 1 + self.recipe.top_layers.min(layers),
            // The head trains; the encoder trains only through its adapters.
            Strategy::Lora => 1,
        }
    }

    /// Groups that should train at the current step (gradual unfreezing grows it).
    fn wanted_groups(&self) -> usize {
        let max = self.max_groups();
        if !self.recipe.gradual_unfreeze {
            return max;
        }
        let unfrozen = if self.recipe.unfreeze_every > 0 { self.step / self.recipe.unfreeze_every } else { self.epoch };
        (1 + unfrozen).min(max)
    }

    /// The layer groups, top first, with parameter counts and learning-rate factors.
    pub fn layer_groups(&self) -> Vec<LayerGroup> {
        self.groups.iter().map(|g| g.0.clone()).collect()
    }

    /// What trains right now.
    pub fn trainable(&self) -> TrainableState {
        self.trainable_in(self.model.as_ref())
    }

    fn trainable_in(&self, model: Option<&SequenceClassifier>) -> TrainableState {
        let n = self.trainable_groups.min(self.groups.len());
        let emb = self.groups.len() - 1;
        let mut training: Vec<String> = self.groups[..n]
            .iter()
            .enumerate()
            .filter(|(i, _)| !(*i == emb && self.recipe.freeze_embeddings))
            .map(|(_, g)| g.0.name.clone())
            .collect();
        if self.recipe.strategy == Strategy::Lora {
            let names: Vec<&str> = self.recipe.lora_targets.iter().map(|t| t.hf_name()).collect();
            training.push(format!("LoRA adapters (rank {}) on {} in every encoder layer", self.recipe.lora_rank, names.join(", ")));
        }
        TrainableState {
            step: self.step,
            training,
            trainable_parameters: model.map(count_trainable).unwrap_or(0),
            total_parameters: self.groups.iter().map(|g| g.0.parameters).sum(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps || self.early_stop.is_some()
    }

    fn model(&self) -> Result<&SequenceClassifier> {
        self.model.as_ref().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))
    }

    /// The current weights as an inference classifier.
    pub fn classifier(&self) -> Result<Classifier> {
        Ok(Classifier { model: self.model()?.valid(), labels: self.labels.clone(), pad_id: self.pad_id })
    }

    pub fn base_device(&self) -> &Device {
        &self.base_device
    }

    /// Scores the eval set with the current weights.
    pub async fn evaluate(&self) -> Result<(Metrics, Vec<Prediction>)> {
        self.classifier()?.evaluate(&self.eval, self.eval_batch_size(), &self.base_device).await
    }

    /// The same evaluation of the current weights, to be done a few batches at a time while
    /// training goes on (the weights are a snapshot: later steps do not change them).
    pub fn pending_evaluation(&self) -> Result<PendingEvaluation> {
        Ok(PendingEvaluation::new(self.classifier()?, self.eval.clone(), self.eval_batch_size(), self.base_device.clone()))
    }

    fn eval_batch_size(&self) -> usize {
        self.recipe.batch_size.max(32)
    }

    /// One optimizer step on the next batch.
    pub async fn step(&mut self) -> Result<StepReport> {
        if self.is_done() {
            return Err(Error::Other("training is already finished".into()));
        }
        let t0 = Instant::now();
        if self.started.is_none() {
            self.started = Some(t0);
        }
        if self.cursor >= self.order.len() {
            if self.sources.len() > 1 {
                self.order = self.mixed_order();
            } else {
                self.order = (0..self.train.len()).collect();
                self.order.shuffle(&mut self.rng);
            }
            self.shuffles += 1;
            self.cursor = 0;
        }
        // Up to `grad_accum` micro-batches, never across the end of the epoch.
        let mut batches: Vec<Vec<usize>> = Vec::new();
        while batches.len() < self.recipe.grad_accum.max(1) && self.cursor < self.order.len() {
            let end = (self.cursor + self.recipe.batch_size).min(self.order.len());
            batches.push(self.order[self.cursor..end].to_vec());
            self.cursor = end;
        }
        let n: usize = batches.iter().map(|b| b.len()).sum();
        for &i in batches.iter().flatten() {
            if let Some(k) = self.sources.iter().position(|(_, r)| r.contains(&i)) {
                self.drawn[k] += 1;
            }
        }
        let tokens: usize = batches.iter().flatten().map(|&i| self.train[i].ids.len()).sum();

        // Dropout's random masks come from a per-step seed, so a resumed run draws the same ones.
        self.device.seed(self.recipe.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(self.step as u64));
        let lr = self.lr_at(self.step);
        let mut model = self.model.take().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))?;
        let wanted = self.wanted_groups();
        let mut unfrozen = None;
        if wanted != self.trainable_groups {
            model = set_trainable(model, wanted, self.recipe.freeze_embeddings);
            self.trainable_groups = wanted;
            unfrozen = Some(self.trainable_in(Some(&model)));
        }
        // Each micro-batch's mean loss weighted by its share of the examples: the accumulated
        // gradient is the gradient of the mean loss over all of them, as with one big batch.
        let mut acc = GradientsAccumulator::<SequenceClassifier>::new();
        let mut loss: Option<Tensor<1>> = None;
        for idx in &batches {
            let rows: Vec<Vec<u32>> = idx.iter().map(|&i| self.train[i].ids.clone()).collect();
            let labels: Vec<i64> = idx.iter().map(|&i| self.train[i].label as i64).collect();
            let input = BertInput::from_rows(&rows, self.pad_id, &self.device);
            let label_t = Tensor::<1, Int>::from_data(TensorData::new(labels, [idx.len()]), &self.device);
            let part = cross_entropy(model.forward(&input), label_t).mul_scalar(idx.len() as f64 / n as f64);
            acc.accumulate(&model, GradientsParams::from_grads(part.backward(), &model));
            let part = part.detach();
            loss = Some(match loss.take() {
                Some(l) => l + part,
                None => part,
            });
        }
        let loss = loss.ok_or_else(|| Error::Other("no training examples left in the epoch".into()))?;
        let mut grads = acc.grads();
        let norm = clip_global_norm(&model, &mut grads, self.recipe.max_grad_norm);
        // Discriminative learning rates: one constant-rate group per layer group below the head.
        let mut rates = ModuleLrScheduler::new(lr);
        if self.recipe.layer_lr_decay != 1.0 {
            for (g, ids) in &self.groups[1..] {
                rates = rates.with_group(ParamGroup::from_ids(ids.clone()), lr * g.lr_factor);
            }
        }
        let model = self.optim.step(rates.step(), model, grads);
        self.model = Some(model);

        let (loss_v, norm_v) = read_step(loss, norm, self.step, "loss", "lower the learning rate and start again").await?;
        self.step += 1;
        self.losses.push(loss_v);
        self.epoch_loss_sum += loss_v;
        self.epoch_loss_count += 1;
        self.examples_seen += n;
        self.tokens_seen += tokens;
        self.train_seconds += t0.elapsed().as_secs_f64();

        let mut epoch_end = None;
        if self.cursor >= self.order.len() {
            self.epoch += 1;
            let eval = if self.eval.is_empty() { None } else { Some(self.evaluate().await?.0) };
            let rec = EpochRecord {
                epoch: self.epoch,
                step: self.step,
                train_loss: self.epoch_loss_sum / self.epoch_loss_count.max(1) as f64,
                eval,
            };
            self.epoch_loss_sum = 0.0;
            self.epoch_loss_count = 0;
            self.history.push(rec.clone());
            epoch_end = Some(rec);
        }
        let mut eval = epoch_end.as_ref().and_then(|e| e.eval.clone());
        let every = self.recipe.eval_every;
        if eval.is_none() && every > 0 && self.step % every == 0 && !self.eval.is_empty() {
            eval = Some(self.evaluate().await?.0);
        }
        let mut early_stop = None;
        let patience = self.recipe.early_stopping_patience;
        if patience > 0 {
            let metric = self.recipe.early_stopping_metric;
            if let Some(m) = &eval {
                let value = metric.of(m);
                if self.best.as_ref().is_none_or(|b| metric.better(value, b.0)) {
                    self.best = Some((value, self.step, self.model()?.clone()));
                    self.evals_without_gain = 0;
                } else {
                    self.evals_without_gain += 1;
                }
            }
            let out_of_patience = self.evals_without_gain >= patience;
            if out_of_patience || self.step >= self.total_steps {
                if let Some((best_value, best_step, best)) = self.best.take() {
                    // Keep the best weights (like transformers' load_best_model_at_end).
                    self.model = Some(best);
                    let stop = EarlyStop { metric, stopped_at: self.step, best_step, best_value, early: out_of_patience && self.step < self.total_steps };
                    self.early_stop = Some(stop.clone());
                    early_stop = Some(stop);
                }
            }
        }
        let secs = self.train_seconds.max(1e-9);
        Ok(StepReport {
            step: self.step,
            total_steps: self.total_steps,
            epoch: self.epoch,
            epochs: self.recipe.epochs,
            loss: loss_v,
            lr,
            grad_norm: norm_v,
            examples_per_s: self.examples_seen as f64 / secs,
            tokens_per_s: self.tokens_seen as f64 / secs,
            elapsed_s: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            done: self.is_done() || early_stop.is_some(),
            epoch_end,
            eval,
            unfrozen,
            early_stop,
            drawn: if self.sources.len() > 1 { self.drawn.clone() } else { Vec::new() },
        })
    }

    /// An epoch's example order for a mixture: each of its `train.len()` slots picks a file
    /// with the mixture's probabilities and takes that file's next row from its own stream
    /// (the file's rows reshuffled on every pass). Everything is seeded by the recipe's seed,
    /// the epoch and the file, so a resumed run rebuilds the same order.
    fn mixed_order(&mut self) -> Vec<usize> {
        let seed = self.recipe.seed;
        let mix = |a: u64, b: u64| seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut rng = StdRng::seed_from_u64(mix(0x6d69_7865 + self.shuffles as u64, 0));
        let cumulative: Vec<f64> = self
            .mix
            .iter()
            .scan(0.0, |acc, m| {
                *acc += m.probability;
                Some(*acc)
            })
            .collect();
        let mut perms: std::collections::HashMap<(usize, usize), Vec<usize>> = std::collections::HashMap::new();
        (0..self.train.len())
            .map(|_| {
                let u: f64 = rand::Rng::random(&mut rng);
                let k = cumulative.iter().position(|&c| u < c).unwrap_or_else(|| {
                    // Rounding left `u` above the last sum: the last file with a share.
                    self.mix.iter().rposition(|m| m.probability > 0.0).unwrap_or(0)
                });
                let range = &self.sources[k].1;
                let (n, pos) = (range.len(), self.source_pos[k]);
                self.source_pos[k] += 1;
                let perm = perms.entry((k, pos / n)).or_insert_with(|| {
                    let mut p: Vec<usize> = (0..n).collect();
                    p.shuffle(&mut StdRng::seed_from_u64(mix(k as u64 + 1, (pos / n) as u64 + 1)));
                    p
                });
                range.start + perm[pos % n]
            })
            .collect()
    }

    /// The learning rate of optimizer step `step` (0-based), before layer-wise factors.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.recipe.schedule.lr(self.recipe.lr, step, self.warmup_steps, self.total_steps)
    }

    /// The data mixture (one entry per training file; a single file has probability 1).
    pub fn mixture(&self) -> &[MixShare] {
        &self.mix
    }


    /// A checkpoint of the whole run: weights (burn record, LoRA adapters included), AdamW's
    /// state, the schedule position, data order and cursor, the shuffling RNG (as the number of
    /// shuffles drawn), losses and history, and early stopping's best weights. Resuming from it
    /// continues the same run (bit for bit on the CPU backend).
    ///
    /// Every tensor is read asynchronously, so this works on WebGPU in a browser.
    pub async fn checkpoint(&self) -> Result<Vec<u8>> {
        self.snapshot()?.into_bytes().await
    }

    /// The parts of a checkpoint, taken now; `Snapshot::into_bytes` writes them.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let state = RunState {
            format: 1,
            recipe: self.recipe.clone(),
            labels: self.labels.clone(),
            train_fingerprint: fingerprint(&self.train),
            train_count: self.train.len(),
            step: self.step,
            epoch: self.epoch,
            order: self.order.clone(),
            cursor: self.cursor,
            shuffles: self.shuffles,
            epoch_loss_sum: self.epoch_loss_sum.to_bits(),
            epoch_loss_count: self.epoch_loss_count,
            history: self.history.clone(),
            losses: self.losses.iter().map(|l| l.to_bits()).collect(),
            train_seconds: self.train_seconds,
            examples_seen: self.examples_seen,
            tokens_seen: self.tokens_seen,
            trainable_groups: self.trainable_groups,
            evals_without_gain: self.evals_without_gain,
            best: self.best.as_ref().map(|b| (b.0.to_bits(), b.1)),
            source_rows: self.sources.iter().map(|s| s.1.len()).collect(),
            source_pos: self.source_pos.clone(),
            drawn: self.drawn.clone(),
        };
        Ok(Snapshot {
            state: serde_json::to_vec(&state).map_err(|e| Error::Other(e.to_string()))?,
            model: self.model()?.clone(),
            optim: self.optim.clone(),
            best: self.best.as_ref().map(|b| b.2.clone()),
        })
    }

    /// The recipe and labels stored in a checkpoint (to prepare the data for `resume`).
    pub fn checkpoint_recipe(bytes: &[u8]) -> Result<(Recipe, Vec<String>, usize)> {
        // The fields every Burnish checkpoint's state has (classifier and decoder runs alike).
        #[derive(Deserialize)]
        struct Head {
            recipe: Recipe,
            #[serde(default)]
            labels: Vec<String>,
            step: usize,
        }
        let parts = unpack(bytes)?;
        let state: Head = serde_json::from_slice(parts.first().copied().unwrap_or_default())
            .map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
        Ok((state.recipe, state.labels, state.step))
    }

    /// Continues a run from `checkpoint` on the same training and evaluation data.
    pub fn resume(ckpt: &mut Checkpoint, train: &[Example], eval: &[Example], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let source = Source { name: "the training data".into(), examples: train.to_vec() };
        Self::resume_sources(ckpt, std::slice::from_ref(&source), eval, checkpoint, device)
    }

    /// `resume` for a run over several training files (the same files, in the same order).
    pub fn resume_sources(ckpt: &mut Checkpoint, sources: &[Source], eval: &[Example], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let parts = unpack(checkpoint)?;
        if parts.len() != 4 {
            return Err(Error::Other("this training checkpoint is incomplete".into()));
        }
        let state: RunState =
            serde_json::from_slice(parts[0]).map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
        if state.format != 1 {
            return Err(Error::Other(format!("checkpoint format {} is not supported by this version", state.format)));
        }
        let mut s = TrainSession::with_sources(ckpt, sources, eval, state.labels.clone(), state.recipe.clone(), device)?;
        let rows: Vec<usize> = s.sources.iter().map(|x| x.1.len()).collect();
        let same_files = state.source_rows.is_empty() && rows.len() == 1 || state.source_rows == rows;
        if s.train.len() != state.train_count || fingerprint(&s.train) != state.train_fingerprint || !same_files {
            return Err(Error::data(format!(
                "the training data is not the data this checkpoint was trained on ({} rows now, {} then): resume needs the same file, columns and split",
                s.train.len(),
                state.train_count
            )));
        }
        let model = s.model.take().ok_or_else(|| Error::Other("no model".into()))?;
        let model = load_module(model, parts[1])?;
        s.model = Some(if s.recipe.strategy == Strategy::Lora { model } else { set_trainable(model, state.trainable_groups, s.recipe.freeze_embeddings) });
        // The record restored the saved parameter ids (AdamW's state is keyed by them).
        s.groups = layer_groups(s.model()?, s.recipe.layer_lr_decay);
        // On the session's device: the default device may be an uninitialised WebGPU one.
        s.optim = load_optimizer(s.optim.clone(), parts[2], &s.device)?;
        if let Some((value, step)) = state.best {
            let m = load_module(s.model()?.clone(), parts[3])?;
            s.best = Some((f64::from_bits(value), step, m));
        }
        s.rng = StdRng::seed_from_u64(s.recipe.seed);
        for _ in 0..state.shuffles {
            let mut v: Vec<usize> = (0..s.train.len()).collect();
            v.shuffle(&mut s.rng);
        }
        s.shuffles = state.shuffles;
        s.step = state.step;
        s.epoch = state.epoch;
        s.order = state.order;
        s.cursor = state.cursor;
        s.epoch_loss_sum = f64::from_bits(state.epoch_loss_sum);
        s.epoch_loss_count = state.epoch_loss_count;
        s.history = state.history;
        s.losses = state.losses.into_iter().map(f64::from_bits).collect();
        s.train_seconds = state.train_seconds;
        s.examples_seen = state.examples_seen;
        s.tokens_seen = state.tokens_seen;
        s.trainable_groups = state.trainable_groups;
        s.evals_without_gain = state.evals_without_gain;
        if !state.source_pos.is_empty() {
            s.source_pos = state.source_pos;
            s.drawn = state.drawn;
        }
        Ok(s)
    }

    /// HF folder files of the current model: config, tokenizer files, safetensors (LoRA merged
    /// into the weights), and with LoRA also the PEFT adapter folder under `peft/`.
    /// `base_name` is what `adapter_config.json` names as the base model.
    pub async fn export(&self, ckpt: &Checkpoint, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = export_classifier(self.model()?, ckpt, &self.labels).await?;
        if self.recipe.strategy == Strategy::Lora {
            files.extend(export_peft(self.model()?, &self.recipe, base_name).await?);
        }
        Ok(files)
    }
}

pub async fn export_classifier(model: &SequenceClassifier, ckpt: &Checkpoint, labels: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![("config.json".to_string(), ckpt.classifier_config(labels)?)];
    files.extend(ckpt.tokenizer_files());
    files.push(("model.safetensors".to_string(), crate::weights::export_classifier_safetensors(model).await?));
    Ok(files)
}

/// The PEFT adapter folder (`peft/adapter_config.json`, `peft/adapter_model.safetensors`) that
/// `peft.PeftModel.from_pretrained` loads on top of the base model
/// (`AutoModelForSequenceClassification` with the same labels).
pub async fn export_peft(model: &SequenceClassifier, r: &Recipe, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
    // A regex (PEFT full-matches it against module names) so that "output.dense" does not also
    // catch "attention.output.dense".
    let names: Vec<String> = r.lora_targets.iter().map(|t| t.hf_name().replace('.', "\\.")).collect();
    let target = format!(".*\\.layer\\.\\d+\\.({})", names.join("|"));
    let config = peft_adapter_config(r, "SEQ_CLS", base_name, &target, serde_json::json!(["classifier", "pooler"]), false);
    Ok(vec![
        ("peft/adapter_config.json".to_string(), serde_json::to_vec_pretty(&config).map_err(|e| Error::Other(e.to_string()))?),
        ("peft/adapter_model.safetensors".to_string(), crate::weights::export_peft_safetensors(model, &r.lora_targets).await?),
    ])
}

/// PEFT's `adapter_config.json` for a LoRA run of the recipe: `task_type` ("SEQ_CLS",
/// "CAUSAL_LM"), the regex of adapted module names, the modules saved whole, and whether the
/// base layers store their weights [in, out] (GPT-2's Conv1D).
pub fn peft_adapter_config(r: &Recipe, task_type: &str, base_name: &str, target_modules: &str, modules_to_save: serde_json::Value, fan_in_fan_out: bool) -> serde_json::Value {
    serde_json::json!({
        "peft_type": "LORA",
        "task_type": task_type,
        "base_model_name_or_path": base_name,
        "r": r.lora_rank,
        "lora_alpha": r.lora_alpha,
        "lora_dropout": r.lora_dropout,
        "target_modules": target_modules,
        "modules_to_save": modules_to_save,
        "bias": "none",
        "fan_in_fan_out": fan_in_fan_out,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    })
}

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

/// Per token and layer, a BERT layer keeps about 10·hidden + 2·intermediate floats (Q, K, V,
/// context, attention output, two layer norms and residuals, the FFN input and GELU output)
/// plus 3·heads·len for the attention scores, probabilities and dropout mask.
/// Gradients and AdamW state are only kept for the `trainable` parameters.
pub fn estimate_memory(cfg: &crate::config::BertConfig, parameters: usize, trainable: usize, batch: usize, max_len: usize) -> MemoryEstimate {
    let (h, i, heads, layers) = (cfg.hidden_size as u64, cfg.intermediate_size as u64, cfg.num_attention_heads as u64, cfg.num_hidden_layers as u64);
    let tokens = (batch * max_len) as u64;
    let per_token = layers * (10 * h + 2 * i + 3 * heads * max_len as u64) + 4 * h;
    let (p, t) = (parameters as u64, trainable as u64);
    let (weights, gradients, optimizer) = (4 * p, 4 * t, 8 * t);
    let activations = 4 * tokens * per_token;
    let largest_tensor = 4 * (cfg.vocab_size as u64 * h).max(batch as u64 * heads * (max_len * max_len) as u64).max(tokens * i);
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

/// (all parameters, trainable parameters) of a `num_labels` classifier under the recipe's
/// strategy, from the config alone (before any model is built). With gradual unfreezing, the
/// most that will train.
pub fn planned_parameters(cfg: &crate::config::BertConfig, r: &Recipe, num_labels: usize) -> (usize, usize) {
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

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub batch_size: usize,
    pub max_len: usize,
    pub steps: usize,
    pub median_step_s: f64,
    pub samples_per_s: f64,
    pub tokens_per_s: f64,
    pub step_seconds: Vec<f64>,
}

/// Median of some timings (0 when there are none).
pub fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl BenchResult {
    pub fn new(batch: usize, len: usize, times: Vec<f64>) -> Self {
        let median = median(&times);
        BenchResult {
            batch_size: batch,
            max_len: len,
            steps: times.len(),
            median_step_s: median,
            samples_per_s: batch as f64 / median.max(1e-12),
            tokens_per_s: (batch * len) as f64 / median.max(1e-12),
            step_seconds: times,
        }
    }
}

/// `[batch, len]` seeded random token ids from the upper part of a vocabulary (no specials).
fn random_rows(vocab: u32, batch: usize, len: usize, rng: &mut StdRng) -> Vec<Vec<u32>> {
    use rand::Rng;
    let lo = 1000.min(vocab / 2);
    (0..batch).map(|_| (0..len).map(|_| rng.random_range(lo..vocab)).collect()).collect()
}

fn check_bench_shape(ckpt: &Checkpoint, batch: usize, len: usize, steps: usize) -> Result<()> {
    if steps == 0 || batch == 0 || len < 2 || len > ckpt.config.max_position_embeddings {
        return Err(Error::Recipe("bench needs steps ≥ 1, batch ≥ 1 and 2 ≤ max-len ≤ the model's positions".into()));
    }
    Ok(())
}

/// Times full training steps (forward, cross-entropy, backward, global clip, AdamW) on a fixed
/// `[batch, len]` batch of seeded random token ids, after `warmup` untimed steps. The loss is
/// read back each step, so every timed step has finished on the device.
pub async fn bench_training(ckpt: &Checkpoint, batch: usize, len: usize, steps: usize, warmup: usize, device: &Device) -> Result<BenchResult> {
    use rand::Rng;
    check_bench_shape(ckpt, batch, len, steps)?;
    let labels = vec!["0".to_string(), "1".to_string()];
    let ad = device.clone().autodiff();
    let (mut model, _) = build_classifier(ckpt, &labels, 0, &ad)?;
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).with_epsilon(1e-8).init();
    let mut rng = StdRng::seed_from_u64(0);
    let rows = random_rows(ckpt.config.vocab_size as u32, batch, len, &mut rng);
    let ys: Vec<i64> = (0..batch).map(|_| rng.random_range(0..2)).collect();
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let input = BertInput::from_rows(&rows, 0, &ad);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys.clone(), [batch]), &ad);
        let loss = cross_entropy(model.forward(&input), y);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_global_norm(&model, &mut grads, 1.0);
        model = optim.step(5e-5, model, grads);
        let _ = read_f32(loss.detach()).await?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(BenchResult::new(batch, len, times))
}

/// One classifier forward pass (no autodiff) on a fixed `[batch, len]` batch of seeded random
/// token ids, timed with the logits read back: what evaluation and prediction cost, and what
/// the page times on each backend to choose between them.
pub struct ForwardProbe {
    model: SequenceClassifier,
    rows: Vec<Vec<u32>>,
    device: Device,
}

impl ForwardProbe {
    pub fn new(ckpt: &Checkpoint, batch: usize, len: usize, device: &Device) -> Result<Self> {
        check_bench_shape(ckpt, batch, len, 1)?;
        let labels = vec!["0".to_string(), "1".to_string()];
        let (model, _) = build_classifier(ckpt, &labels, 0, device)?;
        let rows = random_rows(ckpt.config.vocab_size as u32, batch, len, &mut StdRng::seed_from_u64(0));
        Ok(ForwardProbe { model, rows, device: device.clone() })
    }

    /// Seconds for one pass, from building the input to having the logits on the host.
    pub async fn pass(&self) -> Result<f64> {
        let t0 = Instant::now();
        let input = BertInput::from_rows(&self.rows, 0, &self.device);
        let _ = read_f32(self.model.forward(&input)).await?;
        Ok(t0.elapsed().as_secs_f64())
    }
}

/// Times `passes` forward passes (evaluation throughput) after `warmup` untimed ones.
pub async fn bench_forward(ckpt: &Checkpoint, batch: usize, len: usize, passes: usize, warmup: usize, device: &Device) -> Result<BenchResult> {
    check_bench_shape(ckpt, batch, len, passes)?;
    let probe = ForwardProbe::new(ckpt, batch, len, device)?;
    let mut times = Vec::with_capacity(passes);
    for i in 0..warmup + passes {
        let t = probe.pass().await?;
        if i >= warmup {
            times.push(t);
        }
    }
    Ok(BenchResult::new(batch, len, times))
}
