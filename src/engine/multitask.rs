//! Multi-task fine-tuning: several classification tasks (their own data, labels and head)
//! sharing one encoder, as in MT-DNN. Every optimizer step trains on one batch of one task,
//! chosen proportionally to the tasks' sizes (each epoch holds every task's batches once, in a
//! seeded shuffled order) or round-robin (tasks take turns). Metrics are per task; each task
//! exports as its own `BertForSequenceClassification` folder (shared encoder + its head).

//! With gradient accumulation a step may hold micro-batches of several tasks, each weighted by
//! its examples.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::hf::checkpoint::Checkpoint;
use crate::data::Example;
use crate::engine::classifier::{ClassifierBatch, eat_examples};
use crate::engine::{Fnv, Objective, Run};
use crate::error::{Error, Result};
use crate::infer::classify::{Classifier, Encoded, Prediction, encode_examples};
use crate::infer::metrics::Metrics;
use crate::models::bert::{BertInput, BertModel, SequenceClassifier};
use crate::recipe::{EvalMetric, Recipe, Strategy};
use crate::hf::weights::ParamSource;

/// A multi-task run.
pub type MultiTaskSession = Run<MultiTask>;
pub type TaskReport = crate::engine::StepReport<Vec<Metrics>, TaskDetail>;

/// A multi-task step's extra report field: the task of its (first) micro-batch.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail {
    pub task: usize,
}

pub struct MultiTask {
    pub tasks: Vec<TaskInfo>,
    /// Every task's training rows, task after task (`offsets[t]..offsets[t + 1]`).
    train: Vec<Encoded>,
    offsets: Vec<usize>,
    eval: Vec<Vec<Encoded>>,
    pad_id: u32,
    max_len: usize,
    sampling: TaskSampling,
    eval_batch: usize,
    rng: StdRng,
    /// Each task's own shuffled row order and cursor (reshuffled when used up).
    streams: Vec<(Vec<usize>, usize)>,
}

/// A micro-batch of one task.
pub struct TaskBatch {
    task: usize,
    examples: ClassifierBatch,
}

impl MultiTask {
    fn task_of(&self, row: usize) -> usize {
        self.offsets.partition_point(|&o| o <= row).saturating_sub(1)
    }

    /// The next batch of task `t` from its own stream (global row indices).
    fn next_rows(&mut self, t: usize, batch_size: usize) -> Vec<usize> {
        let (order, cursor) = &mut self.streams[t];
        if *cursor >= order.len() {
            order.shuffle(&mut self.rng);
            *cursor = 0;
        }
        let end = (*cursor + batch_size.max(1)).min(order.len());
        let rows = order[*cursor..end].iter().map(|&i| self.offsets[t] + i).collect();
        *cursor = end;
        rows
    }
}

impl Objective for MultiTask {
    type Model = MultiTaskModel;
    type Batch = TaskBatch;
    type Eval = Vec<Metrics>;
    type Detail = TaskDetail;
    const NAME: &'static str = "multi-task";
    const SEED_SALT: u64 = 0x6d74_0000;

    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn eval_len(&self) -> usize {
        self.eval.iter().map(Vec::len).sum()
    }
    fn order_rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    /// Every epoch ends with every task's metrics (empty for a task without held-out rows).
    fn has_eval(&self) -> bool {
        true
    }
    fn batches_per_epoch(&self, _batch_size: usize) -> usize {
        self.tasks.iter().map(|t| t.batches_per_epoch).sum()
    }
    /// The epoch's batches: every task's batches once, in shuffled order (proportional), or the
    /// tasks in turn (round-robin); each from its task's own stream.
    fn epoch(&mut self, draw: usize, batch_size: usize) -> Vec<Vec<usize>> {
        let per_epoch: usize = self.tasks.iter().map(|t| t.batches_per_epoch).sum();
        let plan: Vec<usize> = match self.sampling {
            TaskSampling::Proportional => {
                let mut plan: Vec<usize> = self.tasks.iter().enumerate().flat_map(|(i, t)| std::iter::repeat_n(i, t.batches_per_epoch)).collect();
                plan.shuffle(&mut self.rng);
                plan
            }
            TaskSampling::RoundRobin => (0..per_epoch).map(|s| (draw * per_epoch + s) % self.tasks.len()).collect(),
        };
        plan.into_iter().map(|t| self.next_rows(t, batch_size)).collect()
    }
    fn prepare(&self, rows: &[usize], _rng: &mut StdRng) -> TaskBatch {
        TaskBatch { task: rows.first().map(|&r| self.task_of(r)).unwrap_or(0), examples: ClassifierBatch::of(&self.train, rows) }
    }
    fn weight(&self, batch: &TaskBatch) -> f64 {
        batch.examples.rows.len() as f64
    }
    fn tokens(&self, batch: &TaskBatch) -> usize {
        batch.examples.tokens()
    }
    fn loss(&self, model: &MultiTaskModel, batch: &TaskBatch, device: &Device) -> Result<Tensor<1>> {
        Ok(batch.examples.loss(|input| model.forward(input, batch.task), self.pad_id, device))
    }
    fn detail(&self, batches: &[TaskBatch]) -> TaskDetail {
        TaskDetail { task: batches.first().map(|b| b.task).unwrap_or(0) }
    }
    fn sources(&self) -> usize {
        self.tasks.len()
    }
    /// Batches drawn from each task.
    fn count_drawn(&self, rows: &[usize], drawn: &mut [usize]) {
        if let Some(&r) = rows.first() {
            drawn[self.task_of(r)] += 1;
        }
    }
    /// Metrics of every task on its own evaluation rows (empty metrics for a task without any).
    async fn evaluate(&self, model: &MultiTaskModel, _step: usize, _epoch: usize, device: &Device) -> Result<Vec<Metrics>> {
        let valid = model.valid();
        let mut out = Vec::with_capacity(self.tasks.len());
        for (t, info) in self.tasks.iter().enumerate() {
            let clf = Classifier { model: valid.task_classifier(t), labels: info.labels.clone(), pad_id: self.pad_id };
            out.push(clf.evaluate(&self.eval[t], self.eval_batch, device).await?.0);
        }
        Ok(out)
    }
    /// The mean over the tasks that have evaluation rows.
    fn watch(eval: &Vec<Metrics>, metric: EvalMetric) -> Option<f64> {
        let scored: Vec<f64> = eval.iter().filter(|m| m.count > 0).map(|m| m.watched(metric)).collect();
        (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64)
    }
    fn fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        for (t, &o) in self.offsets.iter().enumerate() {
            h.eat(t as u64);
            h.eat(o as u64);
        }
        eat_examples(&mut h, &self.train);
        h.finish()
    }
}

impl MultiTask {
    fn build(ckpt: &mut Checkpoint, tasks: &[TaskData], recipe: &Recipe, device: &Device) -> Result<(Self, MultiTaskModel, crate::hf::weights::LoadReport)> {
        recipe.validate(ckpt.config.max_tokens())?;
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
        let mut offsets = Vec::new();
        let mut eval = Vec::new();
        let mut infos = Vec::new();
        for t in tasks {
            if t.labels.len() < 2 {
                return Err(Error::data(format!("task {}: classification needs at least two labels (found {})", t.name, t.labels.join(", "))));
            }
            let tr = encode_examples(ckpt, &t.train, &t.labels, recipe.max_len, &format!("task {}", t.name))?;
            if tr.is_empty() {
                return Err(Error::data(format!("task {} has no training rows", t.name)));
            }
            let ev = encode_examples(ckpt, &t.eval, &t.labels, recipe.max_len, &format!("task {} (evaluation)", t.name))?;
            infos.push(TaskInfo {
                name: t.name.clone(),
                labels: t.labels.clone(),
                train_count: tr.len(),
                eval_count: ev.len(),
                batches_per_epoch: tr.len().div_ceil(recipe.batch_size),
                share: 0.0,
            });
            offsets.push(train.len());
            train.extend(tr);
            eval.push(ev);
        }
        let per_epoch: usize = infos.iter().map(|t| t.batches_per_epoch).sum();
        let n = infos.len();
        for t in &mut infos {
            t.share = match recipe.task_sampling {
                TaskSampling::Proportional => t.batches_per_epoch as f64 / per_epoch as f64,
                TaskSampling::RoundRobin => 1.0 / n as f64,
            };
        }
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, recipe.seed)?;
        src.forget_prefix(&format!("{}.", ckpt.config.arch.classifier()));
        let bert = BertModel::load(&ckpt.config, &mut src, &ad)?;
        let h = ckpt.config.hidden_size;
        let mut heads = Vec::with_capacity(tasks.len());
        for t in tasks {
            // `head_linear` initialises a head the file does not have (here: every task head).
            heads.push(src.head_linear(&format!("classifier.{}", t.name), h, t.labels.len(), &ad)?);
        }
        let p = ckpt.config.classifier_dropout.unwrap_or(ckpt.config.hidden_dropout_prob);
        let model = MultiTaskModel { bert, dropout: DropoutConfig::new(p).init(), heads };
        let mut rng = StdRng::seed_from_u64(recipe.seed);
        let streams = infos
            .iter()
            .map(|t| {
                let mut order: Vec<usize> = (0..t.train_count).collect();
                order.shuffle(&mut rng);
                (order, 0)
            })
            .collect();
        let task = MultiTask {
            tasks: infos,
            train,
            offsets,
            eval,
            pad_id: ckpt.tokenizer.pad_id,
            max_len: recipe.max_len,
            sampling: recipe.task_sampling,
            eval_batch: recipe.batch_size.max(32),
            rng,
            streams,
        };
        Ok((task, model, src.report()))
    }
}

impl Run<MultiTask> {
    pub fn new(ckpt: &mut Checkpoint, tasks: &[TaskData], recipe: Recipe, device: &Device) -> Result<Self> {
        let (task, model, report) = MultiTask::build(ckpt, tasks, &recipe, device)?;
        Run::start(task, model, report, recipe, device)
    }

    /// Continues a multi-task run from `checkpoint` on the same tasks.
    pub fn resume(ckpt: &mut Checkpoint, tasks: &[TaskData], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let (recipe, _, _) = crate::engine::checkpoint_recipe(checkpoint)?;
        let (task, model, report) = MultiTask::build(ckpt, tasks, &recipe, device)?;
        Run::restore(task, model, report, device, checkpoint)
    }

    pub fn tasks(&self) -> &[TaskInfo] {
        &self.objective.tasks
    }

    /// Task `t` with the current weights as an inference classifier.
    pub fn classifier(&self, t: usize) -> Result<Classifier> {
        let info = self.objective.tasks.get(t).ok_or_else(|| Error::Other(format!("there is no task {t}")))?;
        Ok(Classifier { model: self.model()?.valid().task_classifier(t), labels: info.labels.clone(), pad_id: self.objective.pad_id })
    }

    /// Every task's prediction for one text.
    pub async fn predict(&self, ckpt: &mut Checkpoint, text: &str) -> Result<Vec<Prediction>> {
        let ids = ckpt.tokenizer.encode(text, self.objective.max_len)?;
        let mut out = Vec::with_capacity(self.objective.tasks.len());
        for t in 0..self.objective.tasks.len() {
            let clf = self.classifier(t)?;
            let logits = clf.logits(std::slice::from_ref(&ids), 1, self.base_device()).await?;
            out.push(clf.to_prediction(&logits[0]));
        }
        Ok(out)
    }

    /// One HF `…ForSequenceClassification` folder per task, under `<task name>/`.
    pub async fn export(&self, ckpt: &Checkpoint) -> Result<Vec<(String, Vec<u8>)>> {
        let model = self.model()?;
        let mut files = Vec::new();
        for (t, info) in self.objective.tasks.iter().enumerate() {
            let folder = task_name(&info.name);
            for (name, bytes) in crate::models::export::export_classifier(&model.task_classifier(t), ckpt, &info.labels).await? {
                files.push((format!("{folder}/{name}"), bytes));
            }
        }
        Ok(files)
    }
}

pub use crate::recipe::TaskSampling;

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

