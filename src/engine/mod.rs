//! The training engine: ONE optimizer-step loop, shared by every kind of run.
//!
//! A run is a [`Run`] over an [`Objective`]. The engine owns everything a training loop does
//! the same way whatever is trained: the epoch's order of micro-batches, gradient accumulation
//! (each micro-batch weighted by its share of the step), per-step dropout seeds, global-norm
//! clipping, AdamW, the learning-rate schedule, epoch bookkeeping, held-out evaluation (every
//! epoch and every `eval_every` steps), early stopping with the best weights restored, progress
//! reports, and checkpoint/resume (bit for bit on the CPU backend). An objective supplies only
//! what differs: its data order, batch → loss, its evaluation, and (for classifiers) what trains
//! at each step.
//!
//! The objectives: [`classifier`] (sequence classification, with freezing, gradual unfreezing,
//! layer-wise rates, LoRA and data mixing), [`masked_lm`] (domain adaptation), [`causal_lm`]
//! (continued pre-training and instruction tuning of decoders) and [`multitask`] (one encoder,
//! a head per task).

pub mod adamw;
pub mod causal_lm;
pub mod classifier;
pub mod codec;
pub mod masked_lm;
pub mod memory;
pub mod multitask;
pub mod script;

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::engine::adamw::{AdamW, AdamWConfig};
use crate::error::{Error, Result};
use crate::recipe::{EvalMetric, Recipe};
use crate::hf::weights::LoadReport;
use crate::backend::read_f32;

/// What one kind of training run supplies to the engine's step loop.
#[allow(async_fn_in_trait)] // used on one thread (the page's worker, the CLI): no Send bound needed
pub trait Objective: Sized {
    /// The trained module (on the autodiff device).
    type Model: Module + Clone;
    /// A micro-batch, ready for the model.
    type Batch;
    /// A held-out evaluation.
    type Eval: Clone + Serialize + DeserializeOwned;
    /// Extra fields of this objective's step reports (flattened into them).
    type Detail: Serialize;

    /// Stored in checkpoints: a checkpoint resumes only as the objective that wrote it.
    const NAME: &'static str;
    /// The loss's name and what to change, for "the {LOSS} became NaN at step N: {ADVICE}".
    const LOSS: &'static str = "loss";
    const ADVICE: &'static str = "lower the learning rate and start again";
    /// Added to every step's dropout seed, so that objectives draw apart.
    const SEED_SALT: u64 = 0;
    /// Score the held-out data once before the first step (`Run::before`).
    const EVAL_BEFORE: bool = false;
    /// Said when a step's micro-batches carry no weight at all.
    const NOTHING_TO_LEARN: &'static str = "a batch without anything to learn";

    /// Training rows, and held-out rows.
    fn train_len(&self) -> usize;
    fn eval_len(&self) -> usize;
    /// The generator of the data order (seeded by the recipe).
    fn order_rng(&mut self) -> &mut StdRng;
    fn has_eval(&self) -> bool {
        self.eval_len() > 0
    }
    /// Micro-batches of `batch_size` in one epoch.
    fn batches_per_epoch(&self, batch_size: usize) -> usize {
        self.train_len().div_ceil(batch_size.max(1))
    }
    /// The micro-batches of the next epoch (row indices), in order: by default every row once,
    /// shuffled. `draw` counts the epochs drawn before; a resumed run replays the draws to
    /// restore the objective's random state.
    fn epoch(&mut self, _draw: usize, batch_size: usize) -> Vec<Vec<usize>> {
        let n = self.train_len();
        shuffled_batches(self.order_rng(), n, batch_size)
    }
    /// A micro-batch of `rows`; `rng` is seeded by the step (masking draws from it).
    fn prepare(&self, rows: &[usize], rng: &mut StdRng) -> Self::Batch;
    /// The micro-batch's weight in the step's loss (examples, masked or learnt tokens): the
    /// accumulated gradient is that of the weighted mean, as with one big batch.
    fn weight(&self, batch: &Self::Batch) -> f64;
    /// Input tokens of the micro-batch (for tokens/s).
    fn tokens(&self, batch: &Self::Batch) -> usize;
    /// Mean loss of the micro-batch, as a graph to differentiate.
    fn loss(&self, model: &Self::Model, batch: &Self::Batch, device: &Device) -> Result<Tensor<1>>;
    /// This objective's extra report fields for a step of `batches`.
    fn detail(&self, batches: &[Self::Batch]) -> Self::Detail;
    /// Held-out scores of the current weights (`model` is on the autodiff device).
    async fn evaluate(&self, model: &Self::Model, step: usize, epoch: usize, device: &Device) -> Result<Self::Eval>;
    /// The value early stopping watches, or None when this objective has no such metric.
    fn watch(eval: &Self::Eval, metric: EvalMetric) -> Option<f64>;
    /// FNV-1a of the training rows: a resumed run must see the same data.
    fn fingerprint(&self) -> u64;

    /// Whether `watch` gives `metric` (asked before the run starts).
    fn supports(_metric: EvalMetric) -> bool {
        true
    }
    /// Sources that `drawn` counts against (training files of a mixture, tasks); 0: none.
    fn sources(&self) -> usize {
        0
    }
    /// Adds a micro-batch of `rows` to the per-source counts.
    fn count_drawn(&self, _rows: &[usize], _drawn: &mut [usize]) {}
    /// Labels stored in checkpoints (to prepare the same data on resume).
    fn labels(&self) -> Vec<String> {
        Vec::new()
    }
    /// Called before each step: the model to step (gradual unfreezing changes what trains) and
    /// what trains now, when that changed.
    fn before_step(&mut self, model: Self::Model, _step: usize, _epoch: usize) -> (Self::Model, Option<TrainableState>) {
        (model, None)
    }
    /// The step's learning rates (one rate unless the objective has layer-wise rates).
    fn rates(&self, lr: f64) -> ModuleLearningRate {
        lr.into()
    }
    /// State beyond the engine's that a checkpoint keeps, and its restoration on the loaded
    /// model (whose saved parameter ids are back).
    fn save_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore_state(&mut self, model: Self::Model, _state: &serde_json::Value) -> Result<Self::Model> {
        Ok(model)
    }
}

/// No extra report fields.
#[derive(Debug, Clone, Serialize)]
pub struct NoDetail {}

/// One optimizer step, as the page and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport<E, D> {
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
    /// Set when this step closed an epoch.
    pub epoch_end: Option<EpochRecord<E>>,
    /// The held-out scores when they were computed after this step (epoch end, `eval_every`).
    pub eval: Option<E>,
    /// Set when gradual unfreezing changed what trains, from this step on.
    pub unfrozen: Option<TrainableState>,
    /// Set when early stopping ended the run (or restored the best weights at its end).
    pub early_stop: Option<EarlyStop>,
    /// What each source (training file, task) gave so far (empty without sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drawn: Vec<usize>,
    #[serde(flatten)]
    pub detail: D,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord<E> {
    pub epoch: usize,
    pub step: usize,
    pub train_loss: f64,
    pub eval: Option<E>,
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

/// What trains at a point of the run (for the page and the CLI).
#[derive(Debug, Clone, Serialize)]
pub struct TrainableState {
    pub step: usize,
    /// Names of the groups that train, top first.
    pub training: Vec<String>,
    pub trainable_parameters: usize,
    pub total_parameters: usize,
}

/// A run that advances one optimizer step at a time.
#[allow(async_fn_in_trait)]
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

/// A training run of objective `O`.
pub struct Run<O: Objective> {
    pub objective: O,
    model: Option<O::Model>,
    optim: AdamW,
    pub recipe: Recipe,
    pub load_report: LoadReport,
    device: Device,
    base_device: Device,
    /// The epoch's micro-batches and the next one.
    order: Vec<Vec<usize>>,
    cursor: usize,
    /// Epoch orders drawn so far.
    draws: usize,
    pub step: usize,
    pub epoch: usize,
    pub total_steps: usize,
    warmup_steps: usize,
    epoch_loss_sum: f64,
    epoch_loss_count: usize,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord<O::Eval>>,
    /// The held-out scores before the first step (objectives with `EVAL_BEFORE`).
    pub before: Option<O::Eval>,
    pub losses: Vec<f64>,
    started: Option<Instant>,
    pub train_seconds: f64,
    examples_seen: usize,
    tokens_seen: usize,
    pub drawn: Vec<usize>,
    /// Early stopping: the best evaluation so far (value, step, weights) and evaluations since.
    best: Option<(f64, usize, O::Model)>,
    evals_without_gain: usize,
    pub early_stop: Option<EarlyStop>,
}

/// Everything of a run besides tensors, as stored in a checkpoint.
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "E: DeserializeOwned", serialize = "E: Serialize"))]
struct RunState<E> {
    format: u32,
    objective: String,
    recipe: Recipe,
    labels: Vec<String>,
    train_fingerprint: u64,
    train_count: usize,
    step: usize,
    epoch: usize,
    order: Vec<Vec<usize>>,
    cursor: usize,
    draws: usize,
    /// Floats that steer the run are stored as their bits (JSON text may round the last digit).
    epoch_loss_sum: u64,
    epoch_loss_count: usize,
    history: Vec<EpochRecord<E>>,
    before: Option<E>,
    losses: Vec<u64>,
    train_seconds: f64,
    examples_seen: usize,
    tokens_seen: usize,
    evals_without_gain: usize,
    best: Option<(u64, usize)>,
    drawn: Vec<usize>,
    state: serde_json::Value,
}

const FORMAT: u32 = 2;

/// The fields every Burnish checkpoint's state has, whatever wrote it.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    format: u32,
    #[serde(default)]
    objective: String,
    recipe: Recipe,
    #[serde(default)]
    labels: Vec<String>,
    step: usize,
}

/// The recipe, labels and step stored in a checkpoint (to prepare the data for a resume).
pub fn checkpoint_recipe(bytes: &[u8]) -> Result<(Recipe, Vec<String>, usize)> {
    let head = read_head(bytes)?;
    Ok((head.recipe, head.labels, head.step))
}

fn read_head(bytes: &[u8]) -> Result<Head> {
    let parts = codec::unpack(bytes)?;
    let head: Head = serde_json::from_slice(parts.first().copied().unwrap_or_default())
        .map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
    if head.format != FORMAT {
        return Err(Error::Other(format!(
            "this checkpoint was written by another version of Burnish (format {}, this version reads {FORMAT}): start the run again",
            head.format
        )));
    }
    // The recipe is untrusted like every other field: a batch size of 0 would divide by zero.
    head.recipe.validate(usize::MAX).map_err(|e| Error::Other(format!("this checkpoint's recipe is not valid ({e}): the file is damaged")))?;
    Ok(head)
}

/// Each step's dropout seed (a resumed run draws the same masks).
fn step_seed(seed: u64, salt: u64, step: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_add(step as u64))
}

/// `n` rows shuffled with `rng`, cut into micro-batches of `batch_size`.
pub fn shuffled_batches(rng: &mut StdRng, n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

/// FNV-1a over a stream of words.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn eat(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl<O: Objective> Run<O> {
    /// A fresh run of `objective` on `model` (built on `device.autodiff()` by the objective's
    /// constructor); `base_device` is the plain device, where evaluation runs.
    pub fn start(objective: O, model: O::Model, load_report: LoadReport, recipe: Recipe, base_device: &Device) -> Result<Self> {
        if objective.train_len() == 0 {
            return Err(Error::data("no training rows"));
        }
        if recipe.early_stopping_patience > 0 && !O::supports(recipe.early_stopping_metric) {
            return Err(Error::Recipe(format!(
                "early stopping cannot watch \"{}\" in this kind of run: use \"loss\"",
                serde_json::to_value(recipe.early_stopping_metric).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            )));
        }
        let per_epoch = objective.batches_per_epoch(recipe.batch_size).div_ceil(recipe.grad_accum.max(1));
        let total_steps = per_epoch * recipe.epochs;
        let drawn = vec![0; objective.sources()];
        Ok(Run {
            model: Some(model),
            optim: AdamW::new(AdamWConfig { weight_decay: recipe.weight_decay as f32, ..AdamWConfig::default() }),
            load_report,
            device: base_device.clone().autodiff(),
            base_device: base_device.clone(),
            order: Vec::new(),
            cursor: 0,
            draws: 0,
            step: 0,
            epoch: 0,
            total_steps,
            warmup_steps: (total_steps as f64 * recipe.warmup_ratio).ceil() as usize,
            epoch_loss_sum: 0.0,
            epoch_loss_count: 0,
            history: Vec::new(),
            before: None,
            losses: Vec::new(),
            started: None,
            train_seconds: 0.0,
            examples_seen: 0,
            tokens_seen: 0,
            drawn,
            best: None,
            evals_without_gain: 0,
            early_stop: None,
            recipe,
            objective,
        })
    }

    /// `start`, then the state of `checkpoint` (written by `checkpoint` of a run of the same
    /// objective over the same data): weights, AdamW state, data order and position, random
    /// draws, curve, evaluations and early stopping's best weights.
    pub fn restore(objective: O, model: O::Model, load_report: LoadReport, base_device: &Device, checkpoint: &[u8]) -> Result<Self> {
        let head = read_head(checkpoint)?;
        if head.objective != O::NAME {
            return Err(Error::Other(format!("this checkpoint is of a {} run, not a {} run", head.objective, O::NAME)));
        }
        let parts = codec::unpack(checkpoint)?;
        let [state, weights, optim, best] = parts.as_slice() else {
            return Err(Error::Other("this training checkpoint is incomplete".into()));
        };
        let st: RunState<O::Eval> =
            serde_json::from_slice(state).map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
        let mut run = Run::start(objective, model, load_report, st.recipe.clone(), base_device)?;
        let (n, fp) = (run.objective.train_len(), run.objective.fingerprint());
        if n != st.train_count || fp != st.train_fingerprint {
            return Err(Error::data(format!(
                "the training data is not the data this checkpoint was trained on ({n} rows now, {} then): resume needs the same files, columns, template and split",
                st.train_count
            )));
        }
        let bs = run.recipe.batch_size;
        if st.step > run.total_steps
            || st.cursor > st.order.len()
            || st.order.iter().flatten().any(|&i| i >= n)
            || st.drawn.len() != run.drawn.len()
            || st.losses.len() != st.step
            || st.epoch > run.recipe.epochs
            || st.history.len() > st.epoch
            || st.draws > st.epoch.saturating_add(1)
            || st.best.is_some_and(|(_, step)| step > st.step)
            || (st.best.is_some() && best.is_empty())
        {
            return Err(Error::Other("this training checkpoint's run state does not fit its data (it is damaged)".into()));
        }
        let model = run.model.take().ok_or_else(|| Error::Other("no model".into()))?;
        let model = codec::load_module(model, weights)?;
        let model = run.objective.restore_state(model, &st.state)?;
        // On the run's device: the default device may be an uninitialised WebGPU one.
        run.optim.load_bytes(optim, &run.base_device)?;
        if let Some((value, step)) = st.best {
            run.best = Some((f64::from_bits(value), step, codec::load_module(model.clone(), best)?));
        }
        run.model = Some(model);
        // Replays the epoch draws so the objective's random state is where it was.
        for d in 0..st.draws {
            run.objective.epoch(d, bs);
        }
        run.draws = st.draws;
        run.step = st.step;
        run.epoch = st.epoch;
        run.order = st.order;
        run.cursor = st.cursor;
        run.epoch_loss_sum = f64::from_bits(st.epoch_loss_sum);
        run.epoch_loss_count = st.epoch_loss_count;
        run.history = st.history;
        run.before = st.before;
        run.losses = st.losses.into_iter().map(f64::from_bits).collect();
        run.train_seconds = st.train_seconds;
        run.examples_seen = st.examples_seen;
        run.tokens_seen = st.tokens_seen;
        run.evals_without_gain = st.evals_without_gain;
        run.drawn = st.drawn;
        Ok(run)
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps || self.early_stop.is_some()
    }

    pub fn model(&self) -> Result<&O::Model> {
        self.model.as_ref().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))
    }

    pub fn base_device(&self) -> &Device {
        &self.base_device
    }

    /// The learning rate of optimizer step `step` (0-based), before layer-wise factors.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.recipe.schedule.lr(self.recipe.lr, step, self.warmup_steps, self.total_steps)
    }

    /// Held-out scores of the current weights.
    pub async fn evaluate(&self) -> Result<O::Eval> {
        if !self.objective.has_eval() {
            return Err(Error::data("there is no held-out data to evaluate on"));
        }
        self.objective.evaluate(self.model()?, self.step, self.epoch, &self.base_device).await
    }

    /// Every held-out evaluation in order: before training (when scored) and each epoch's.
    pub fn evaluations(&self) -> Vec<O::Eval> {
        self.before.iter().cloned().chain(self.history.iter().filter_map(|h| h.eval.clone())).collect()
    }

    /// One optimizer step on the next micro-batches.
    pub async fn step(&mut self) -> Result<StepReport<O::Eval, O::Detail>> {
        if self.is_done() {
            return Err(Error::Other("this run is already finished".into()));
        }
        if O::EVAL_BEFORE && self.step == 0 && self.before.is_none() && self.objective.has_eval() {
            self.before = Some(self.evaluate().await?);
        }
        let t0 = Instant::now();
        if self.started.is_none() {
            self.started = Some(t0);
        }
        let bs = self.recipe.batch_size;
        if self.cursor >= self.order.len() {
            self.order = self.objective.epoch(self.draws, bs);
            self.draws += 1;
            self.cursor = 0;
        }
        // Up to `grad_accum` micro-batches, never across the end of the epoch.
        // Where this step starts, so that a step refused for a non-finite loss leaves no trace.
        let (cursor_before, drawn_before) = (self.cursor, self.drawn.clone());
        let end = (self.cursor + self.recipe.grad_accum.max(1)).min(self.order.len());
        let micro: Vec<Vec<usize>> = self.order[self.cursor..end].to_vec();
        self.cursor = end;
        let mut rng = StdRng::seed_from_u64(step_seed(self.recipe.seed ^ 0x6261_7463_6865_7321, O::SEED_SALT, self.step));
        let batches: Vec<O::Batch> = micro.iter().map(|rows| self.objective.prepare(rows, &mut rng)).collect();
        for rows in &micro {
            self.objective.count_drawn(rows, &mut self.drawn);
        }
        let weights: Vec<f64> = batches.iter().map(|b| self.objective.weight(b)).collect();
        let total: f64 = weights.iter().sum();
        let examples: usize = micro.iter().map(Vec::len).sum();
        let tokens: usize = batches.iter().map(|b| self.objective.tokens(b)).sum();
        if total <= 0.0 {
            return Err(Error::data(O::NOTHING_TO_LEARN));
        }

        // Dropout's random masks come from a per-step seed, so a resumed run draws the same ones.
        self.device.seed(step_seed(self.recipe.seed, O::SEED_SALT, self.step));
        let lr = self.lr_at(self.step);
        let model = self.model.take().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))?;
        let (model, unfrozen) = self.objective.before_step(model, self.step, self.epoch);
        let mut acc = GradientsAccumulator::<O::Model>::new();
        let mut loss: Option<Tensor<1>> = None;
        for (b, w) in batches.iter().zip(&weights) {
            if *w == 0.0 {
                continue;
            }
            let part = match self.objective.loss(&model, b, &self.device) {
                Ok(l) => l.mul_scalar(w / total),
                Err(e) => {
                    self.model = Some(model);
                    return Err(e);
                }
            };
            acc.accumulate(&model, GradientsParams::from_grads(part.backward(), &model));
            let part = part.detach();
            loss = Some(match loss.take() {
                Some(l) => l + part,
                None => part,
            });
        }
        let Some(loss) = loss else {
            self.model = Some(model);
            return Err(Error::data(O::NOTHING_TO_LEARN));
        };
        let mut grads = acc.grads();
        let norm = clip_global_norm(&model, &mut grads, self.recipe.max_grad_norm);
        // The loss and gradient norm are read before AdamW applies the step: a NaN or infinite
        // one stops the run with the weights (and AdamW's moments) of the last good step.
        let (loss_v, norm_v) = match read_step(loss, norm, self.step, O::LOSS, O::ADVICE).await {
            Ok(v) => v,
            Err(e) => {
                self.model = Some(model);
                self.cursor = cursor_before;
                self.drawn = drawn_before;
                return Err(e);
            }
        };
        let rates = self.objective.rates(lr);
        self.model = Some(self.optim.step(rates, model, grads));
        self.step += 1;
        self.losses.push(loss_v);
        self.epoch_loss_sum += loss_v;
        self.epoch_loss_count += 1;
        self.examples_seen += examples;
        self.tokens_seen += tokens;
        self.train_seconds += t0.elapsed().as_secs_f64();

        let mut epoch_end = None;
        if self.cursor >= self.order.len() {
            self.epoch += 1;
            let eval = if self.objective.has_eval() { Some(self.evaluate().await?) } else { None };
            let rec = EpochRecord { epoch: self.epoch, step: self.step, train_loss: self.epoch_loss_sum / self.epoch_loss_count.max(1) as f64, eval };
            self.epoch_loss_sum = 0.0;
            self.epoch_loss_count = 0;
            self.history.push(rec.clone());
            epoch_end = Some(rec);
        }
        let mut eval = epoch_end.as_ref().and_then(|e| e.eval.clone());
        let every = self.recipe.eval_every;
        if eval.is_none() && every > 0 && self.step % every == 0 && self.objective.has_eval() {
            eval = Some(self.evaluate().await?);
        }
        let early_stop = self.early_stopping(eval.as_ref())?;
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
            done: self.is_done(),
            epoch_end,
            eval,
            unfrozen,
            early_stop,
            drawn: self.drawn.clone(),
            detail: self.objective.detail(&batches),
        })
    }

    /// Early stopping after an evaluation: keeps the best weights, and ends the run (restoring
    /// them, like transformers' load_best_model_at_end) when patience runs out or at the end.
    fn early_stopping(&mut self, eval: Option<&O::Eval>) -> Result<Option<EarlyStop>> {
        let patience = self.recipe.early_stopping_patience;
        if patience == 0 {
            return Ok(None);
        }
        let metric = self.recipe.early_stopping_metric;
        if let Some(value) = eval.and_then(|e| O::watch(e, metric)) {
            if self.best.as_ref().is_none_or(|b| metric.better(value, b.0)) {
                self.best = Some((value, self.step, self.model()?.clone()));
                self.evals_without_gain = 0;
            } else {
                self.evals_without_gain += 1;
            }
        }
        let out_of_patience = self.evals_without_gain >= patience;
        if !(out_of_patience || self.step >= self.total_steps) {
            return Ok(None);
        }
        let Some((best_value, best_step, best)) = self.best.take() else {
            return Ok(None);
        };
        self.model = Some(best);
        let stop = EarlyStop { metric, stopped_at: self.step, best_step, best_value, early: out_of_patience && self.step < self.total_steps };
        self.early_stop = Some(stop.clone());
        Ok(Some(stop))
    }

    /// A checkpoint of the whole run; `resume` continues it (bit for bit on the CPU backend).
    /// Every tensor is read asynchronously, so this works on WebGPU in a browser.
    pub async fn checkpoint(&self) -> Result<Vec<u8>> {
        self.snapshot()?.into_bytes().await
    }

    /// The parts of a checkpoint, taken now (tensors are shared, not copied), so that it can
    /// be written asynchronously while the run goes on.
    pub fn snapshot(&self) -> Result<Snapshot<O::Model>> {
        let state = RunState::<O::Eval> {
            format: FORMAT,
            objective: O::NAME.into(),
            recipe: self.recipe.clone(),
            labels: self.objective.labels(),
            train_fingerprint: self.objective.fingerprint(),
            train_count: self.objective.train_len(),
            step: self.step,
            epoch: self.epoch,
            order: self.order.clone(),
            cursor: self.cursor,
            draws: self.draws,
            epoch_loss_sum: self.epoch_loss_sum.to_bits(),
            epoch_loss_count: self.epoch_loss_count,
            history: self.history.clone(),
            before: self.before.clone(),
            losses: self.losses.iter().map(|l| l.to_bits()).collect(),
            train_seconds: self.train_seconds,
            examples_seen: self.examples_seen,
            tokens_seen: self.tokens_seen,
            evals_without_gain: self.evals_without_gain,
            best: self.best.as_ref().map(|b| (b.0.to_bits(), b.1)),
            drawn: self.drawn.clone(),
            state: self.objective.save_state(),
        };
        Ok(Snapshot {
            state: serde_json::to_vec(&state).map_err(|e| Error::Other(e.to_string()))?,
            model: self.model()?.clone(),
            optim: self.optim.clone(),
            best: self.best.as_ref().map(|b| b.2.clone()),
        })
    }
}

impl<O: Objective> Stepper for Run<O> {
    type Report = StepReport<O::Eval, O::Detail>;
    fn finished(&self) -> bool {
        self.is_done()
    }
    async fn next_step(&mut self) -> Result<Self::Report> {
        self.step().await
    }
}

/// A checkpoint's parts: run state, weights, optimizer state, early stopping's best weights.
pub struct Snapshot<M> {
    state: Vec<u8>,
    model: M,
    optim: AdamW,
    best: Option<M>,
}

impl<M: Module> Snapshot<M> {
    pub async fn into_bytes(self) -> Result<Vec<u8>> {
        let model = codec::module_record_bytes(&self.model).await?;
        let optim = self.optim.to_bytes().await?;
        let best = match &self.best {
            Some(b) => codec::module_record_bytes(b).await?,
            None => Vec::new(),
        };
        Ok(codec::pack(&[&self.state, &model, &optim, &best]))
    }
}

/// Reads a step's loss and gradient norm (asynchronously: WebGPU-safe) and refuses a loss that
/// is not finite: "the {what} became NaN at step N: {advice}".
pub async fn read_step(loss: Tensor<1>, norm: Option<Tensor<1>>, step: usize, what: &str, advice: &str) -> Result<(f64, f64)> {
    let loss_v = read_f32(loss.detach()).await?.first().copied().unwrap_or(f32::NAN) as f64;
    let norm_v = match norm {
        Some(t) => read_f32(t).await?.first().copied().unwrap_or(0.0) as f64,
        None => 0.0,
    };
    let kept = if step == 0 { "the weights are the pretrained ones".to_string() } else { format!("the weights are those after step {step}") };
    if !loss_v.is_finite() {
        return Err(Error::Other(format!("the {what} became {loss_v} at step {}; the step was not applied and {kept}: {advice}", step + 1)));
    }
    if !norm_v.is_finite() {
        return Err(Error::Other(format!("the gradients became {norm_v} at step {}; the step was not applied and {kept}: {advice}", step + 1)));
    }
    Ok((loss_v, norm_v))
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
