//! Multi-task fine-tuning: several classification tasks (their own data, labels and head)
//! sharing one encoder, as in MT-DNN. Every optimizer step trains on one batch of one task,
//! chosen proportionally to the tasks' sizes (each epoch holds every task's batches once, in a
//! seeded shuffled order) or round-robin (tasks take turns). Metrics are per task; each task
//! exports as its own `BertForSequenceClassification` folder (shared encoder + its head).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::checkpoint::Checkpoint;
use crate::data::Example;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::models::bert::{BertInput, BertModel, SequenceClassifier};
use crate::train::{Classifier, Encoded, Prediction, Recipe, Stepper, Strategy, clip_global_norm, cross_entropy, encode_examples, read_step};
use crate::weights::{LoadReport, ParamSource};

/// How the task of each step is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaskSampling {
    /// Each epoch holds every task's batches once, shuffled: a task's share of the steps is its
    /// share of the batches.
    #[default]
    Proportional,
    /// Tasks take turns (1, 2, …, 1, 2, …): equal shares, small tasks repeat their data.
    RoundRobin,
}

/// One task: a name, its training and evaluation examples and its label vocabulary.
#[derive(Debug, Clone)]
pub struct TaskData {
    pub name: String,
    pub train: Vec<Example>,
    pub eval: Vec<Example>,
    pub labels: Vec<String>,
}

/// A task from a labelled table: its columns, label vocabulary and evaluation rows (the eval
/// table when given, else a seeded stratified share of the table).
pub fn task_from_table(name: &str, table: &crate::data::Table, eval: Option<&crate::data::Table>, text_col: &str, label_col: &str, eval_fraction: f64, seed: u64) -> Result<TaskData> {
    let td = crate::data::training_data(&[table], eval, text_col, label_col, eval_fraction, seed)?;
    let train = td.sources.into_iter().next().map(|s| s.examples).unwrap_or_default();
    Ok(TaskData { name: name.to_string(), train, eval: td.eval, labels: td.labels })
}

/// A task's name from its file name: the stem, kept to letters, digits, `.`, `_` and `-`.
pub fn task_name(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base.rsplit_once('.').map(|(s, _)| s).filter(|s| !s.is_empty()).unwrap_or(base);
    let name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    if name.trim_matches('-').is_empty() { "task".into() } else { name }
}

/// The shared encoder and one classification head per task.
#[derive(Module, Debug)]
pub struct MultiTaskModel {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub heads: Vec<Linear>,
}

impl MultiTaskModel {
    /// Logits of task `t` `[batch, labels_t]`.
    pub fn forward(&self, input: &BertInput, t: usize) -> Tensor<2> {
        let pooled = self.bert.pool(self.bert.encode(input));
        self.heads[t].forward(self.dropout.forward(pooled))
    }

    /// Task `t` as a plain sequence classifier (the shared encoder with that head).
    pub fn task_classifier(&self, t: usize) -> SequenceClassifier {
        SequenceClassifier { bert: self.bert.clone(), dropout: self.dropout.clone(), classifier: self.heads[t].clone() }
    }
}

/// A task as the page and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub name: String,
    pub labels: Vec<String>,
    pub train_count: usize,
    pub eval_count: usize,
    pub batches_per_epoch: usize,
    /// Share of the steps this task gets.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub epochs: usize,
    /// The task trained at this step.
    pub task: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Batches drawn from each task so far.
    pub drawn: Vec<usize>,
    pub elapsed_s: f64,
    pub done: bool,
    /// Per-task metrics when an epoch ended.
    pub eval: Option<Vec<Metrics>>,
}

pub struct MultiTaskSession {
    model: Option<MultiTaskModel>,
    optim: ModuleOptimizer,
    pub recipe: Recipe,
    pub tasks: Vec<TaskInfo>,
    train: Vec<Vec<Encoded>>,
    eval: Vec<Vec<Encoded>>,
    pub load_report: LoadReport,
    device: Device,
    base_device: Device,
    pad_id: u32,
    rng: StdRng,
    /// The tasks of the current epoch's steps, and the position in it.
    plan: Vec<usize>,
    pos: usize,
    /// Each task's own shuffled row order and cursor (reshuffled when used up).
    streams: Vec<(Vec<usize>, usize)>,
    pub step: usize,
    pub epoch: usize,
    pub total_steps: usize,
    warmup_steps: usize,
    pub drawn: Vec<usize>,
    pub losses: Vec<(usize, f64)>,
    /// Per-task metrics after each epoch.
    pub history: Vec<(usize, Vec<Metrics>)>,
    started: Option<Instant>,
    pub train_seconds: f64,
}

impl MultiTaskSession {
    pub fn new(ckpt: &mut Checkpoint, tasks: &[TaskData], recipe: Recipe, device: &Device) -> Result<Self> {
        recipe.validate(ckpt.config.max_position_embeddings)?;
        recipe.require_classification()?;
        if tasks.len() < 2 {
            return Err(Error::data("multi-task training needs at least two tasks (add another labelled file)"));
        }
        if recipe.strategy != Strategy::Full || recipe.gradual_unfreeze || recipe.layer_lr_decay != 1.0 {
            return Err(Error::Recipe("multi-task training fine-tunes the whole shared encoder: use the full strategy without gradual unfreezing or layer-wise rates".into()));
        }
        let mut names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::data(format!("two tasks are both called \"{}\": give each task its own name", w[0])));
        }
        let mut train = Vec::new();
        let mut eval = Vec::new();
        for t in tasks {
            if t.labels.len() < 2 {
                return Err(Error::data(format!("task {}: classification needs at least two labels (found {})", t.name, t.labels.join(", "))));
            }
            let tr = encode_examples(ckpt, &t.train, &t.labels, recipe.max_len, &format!("task {}", t.name))?;
            if tr.is_empty() {
                return Err(Error::data(format!("task {} has no training rows", t.name)));
            }
            train.push(tr);
            eval.push(encode_examples(ckpt, &t.eval, &t.labels, recipe.max_len, &format!("task {} (evaluation)", t.name))?);
        }
        let batches: Vec<usize> = train.iter().map(|t| t.len().div_ceil(recipe.batch_size)).collect();
        let per_epoch: usize = batches.iter().sum();
        let total: f64 = per_epoch as f64;
        let infos = tasks
            .iter()
            .zip(&train)
            .zip(&eval)
            .zip(&batches)
            .map(|(((t, tr), ev), &b)| TaskInfo {
                name: t.name.clone(),
                labels: t.labels.clone(),
                train_count: tr.len(),
                eval_count: ev.len(),
                batches_per_epoch: b,
                share: match recipe.task_sampling {
                    TaskSampling::Proportional => b as f64 / total,
                    TaskSampling::RoundRobin => 1.0 / tasks.len() as f64,
                },
            })
            .collect();
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, recipe.seed)?;
        src.forget_prefix("classifier.");
        let bert = BertModel::load(&ckpt.config, &mut src, &ad)?;
        let h = ckpt.config.hidden_size;
        let mut heads = Vec::with_capacity(tasks.len());
        for t in tasks {
            // `head_linear` initialises a head the file does not have (here: every task head).
            heads.push(src.head_linear(&format!("classifier.{}", t.name), h, t.labels.len(), &ad)?);
        }
        let p = ckpt.config.classifier_dropout.unwrap_or(ckpt.config.hidden_dropout_prob);
        let model = MultiTaskModel { bert, dropout: DropoutConfig::new(p).init(), heads };
        let total_steps = per_epoch * recipe.epochs;
        let mut rng = StdRng::seed_from_u64(recipe.seed);
        let streams = train
            .iter()
            .map(|t| {
                let mut order: Vec<usize> = (0..t.len()).collect();
                order.shuffle(&mut rng);
                (order, 0)
            })
            .collect();
        Ok(MultiTaskSession {
            model: Some(model),
            optim: AdamWConfig::new().with_weight_decay(recipe.weight_decay as f32).with_epsilon(1e-8).init(),
            warmup_steps: (total_steps as f64 * recipe.warmup_ratio).ceil() as usize,
            recipe,
            tasks: infos,
            drawn: vec![0; train.len()],
            train,
            eval,
            load_report: src.report(),
            device: ad,
            base_device: device.clone(),
            pad_id: ckpt.tokenizer.pad_id,
            rng,
            plan: Vec::new(),
            pos: 0,
            streams,
            step: 0,
            epoch: 0,
            total_steps,
            losses: Vec::new(),
            history: Vec::new(),
            started: None,
            train_seconds: 0.0,
        })
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }

    fn model(&self) -> Result<&MultiTaskModel> {
        self.model.as_ref().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))
    }

    /// The tasks of one epoch's steps: every task's batches once, shuffled (proportional), or
    /// the tasks in turn (round-robin).
    fn epoch_plan(&mut self) -> Vec<usize> {
        let per_epoch: usize = self.tasks.iter().map(|t| t.batches_per_epoch).sum();
        match self.recipe.task_sampling {
            TaskSampling::Proportional => {
                let mut plan: Vec<usize> = self.tasks.iter().enumerate().flat_map(|(i, t)| std::iter::repeat_n(i, t.batches_per_epoch)).collect();
                plan.shuffle(&mut self.rng);
                plan
            }
            TaskSampling::RoundRobin => (0..per_epoch).map(|s| (self.step + s) % self.tasks.len()).collect(),
        }
    }

    /// The next batch of task `t` from its own stream.
    fn next_rows(&mut self, t: usize) -> Vec<usize> {
        let n = self.recipe.batch_size;
        let (order, cursor) = &mut self.streams[t];
        if *cursor >= order.len() {
            order.shuffle(&mut self.rng);
            *cursor = 0;
        }
        let end = (*cursor + n).min(order.len());
        let rows = order[*cursor..end].to_vec();
        *cursor = end;
        rows
    }

    pub fn lr_at(&self, step: usize) -> f64 {
        self.recipe.schedule.lr(self.recipe.lr, step, self.warmup_steps, self.total_steps)
    }

    /// One optimizer step on one batch of the next planned task.
    pub async fn step(&mut self) -> Result<TaskReport> {
        if self.is_done() {
            return Err(Error::Other("training is already finished".into()));
        }
        let t0 = Instant::now();
        if self.started.is_none() {
            self.started = Some(t0);
        }
        if self.pos >= self.plan.len() {
            self.plan = self.epoch_plan();
            self.pos = 0;
        }
        let task = self.plan[self.pos];
        self.pos += 1;
        let rows_idx = self.next_rows(task);
        let rows: Vec<Vec<u32>> = rows_idx.iter().map(|&i| self.train[task][i].ids.clone()).collect();
        let labels: Vec<i64> = rows_idx.iter().map(|&i| self.train[task][i].label as i64).collect();
        self.device.seed(self.recipe.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6d74_0000 + self.step as u64));
        let lr = self.lr_at(self.step);
        let model = self.model.take().ok_or_else(|| Error::Other("the model was lost after a failed step".into()))?;
        let input = BertInput::from_rows(&rows, self.pad_id, &self.device);
        let label_t = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows_idx.len()]), &self.device);
        let loss = cross_entropy(model.forward(&input, task), label_t);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let norm = clip_global_norm(&model, &mut grads, self.recipe.max_grad_norm);
        self.model = Some(self.optim.step(lr, model, grads));
        let (loss_v, grad_norm) = read_step(loss, norm, self.step, "loss", "lower the learning rate and start again").await?;
        self.step += 1;
        self.drawn[task] += 1;
        self.losses.push((task, loss_v));
        self.train_seconds += t0.elapsed().as_secs_f64();
        let mut eval = None;
        if self.pos >= self.plan.len() {
            self.epoch += 1;
            let m = self.evaluate().await?;
            self.history.push((self.step, m.clone()));
            eval = Some(m);
        }
        Ok(TaskReport {
            step: self.step,
            total_steps: self.total_steps,
            epoch: self.epoch,
            epochs: self.recipe.epochs,
            task,
            loss: loss_v,
            lr,
            grad_norm,
            drawn: self.drawn.clone(),
            elapsed_s: self.started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            done: self.is_done(),
            eval,
        })
    }

    /// Task `t` with the current weights as an inference classifier.
    pub fn classifier(&self, t: usize) -> Result<Classifier> {
        let info = self.tasks.get(t).ok_or_else(|| Error::Other(format!("there is no task {t}")))?;
        Ok(Classifier { model: self.model()?.valid().task_classifier(t), labels: info.labels.clone(), pad_id: self.pad_id })
    }

    /// Metrics of every task on its own evaluation rows (empty metrics for a task without any).
    pub async fn evaluate(&self) -> Result<Vec<Metrics>> {
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in 0..self.tasks.len() {
            let (m, _) = self.classifier(t)?.evaluate(&self.eval[t], self.recipe.batch_size.max(32), &self.base_device).await?;
            out.push(m);
        }
        Ok(out)
    }

    /// Every task's prediction for one text.
    pub async fn predict(&self, ckpt: &mut Checkpoint, text: &str) -> Result<Vec<Prediction>> {
        let ids = ckpt.tokenizer.encode(text, self.recipe.max_len)?;
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in 0..self.tasks.len() {
            let clf = self.classifier(t)?;
            let logits = clf.logits(std::slice::from_ref(&ids), 1, &self.base_device).await?;
            out.push(clf.to_prediction(&logits[0]));
        }
        Ok(out)
    }

    /// One HF `BertForSequenceClassification` folder per task, under `<task name>/`.
    pub async fn export(&self, ckpt: &Checkpoint) -> Result<Vec<(String, Vec<u8>)>> {
        let model = self.model()?;
        let mut files = Vec::new();
        for (t, info) in self.tasks.iter().enumerate() {
            let folder = task_name(&info.name);
            for (name, bytes) in crate::train::export_classifier(&model.task_classifier(t), ckpt, &info.labels).await? {
                files.push((format!("{folder}/{name}"), bytes));
            }
        }
        Ok(files)
    }
}

impl Stepper for MultiTaskSession {
    type Report = TaskReport;
    fn finished(&self) -> bool {
        self.is_done()
    }
    async fn next_step(&mut self) -> Result<TaskReport> {
        self.step().await
    }
}
