//! The classifier objective: a BERT-family encoder with a classification head, trained with
//! the recipe's strategy (full, head, top layers, LoRA), gradual unfreezing, discriminative
//! (layer-wise) learning rates, and data mixing over several training files.

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::{Lora, Module, ParamGroup, ParamId};
use burn::nn::DropoutConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::hf::checkpoint::Checkpoint;
use crate::hf::config::EncoderArch;
use crate::data::{Example, Source};
use crate::engine::{Fnv, NoDetail, Objective, Run, TrainableState, count_trainable, cross_entropy, param_ids, shuffled_batches};
use crate::error::{Error, Result};
use crate::infer::classify::{Classifier, Encoded, PendingEvaluation, build_classifier, encode_examples};
use crate::infer::metrics::Metrics;
use crate::models::bert::{BertInput, SequenceClassifier};
use crate::models::export::{export_classifier, export_peft};
use crate::recipe::{EvalMetric, LoraTarget, Recipe, Strategy};

/// A classifier run.
pub type TrainSession = Run<ClassifierTask>;
/// A classifier run's step report.
pub type StepReport = crate::engine::StepReport<Metrics, NoDetail>;
pub type EpochRecord = crate::engine::EpochRecord<Metrics>;

/// The classifier objective's data and what trains.
pub struct ClassifierTask {
    pub labels: Vec<String>,
    pub train: Vec<Encoded>,
    pub eval: Vec<Encoded>,
    pad_id: u32,
    arch: EncoderArch,
    strategy: Strategy,
    top_layers: usize,
    freeze_embeddings: bool,
    gradual_unfreeze: bool,
    unfreeze_every: usize,
    layer_lr_decay: f64,
    lora: Option<(usize, Vec<LoraTarget>)>,
    eval_batch: usize,
    seed: u64,
    rng: StdRng,
    groups: Vec<(LayerGroup, Vec<ParamId>)>,
    /// How many layer groups (from the top) train now.
    pub trainable_groups: usize,
    /// Data mixing: each training file's rows in `train`, its share, and how many of its rows
    /// were taken so far (its own shuffled stream).
    sources: Vec<(String, std::ops::Range<usize>)>,
    mix: Vec<MixShare>,
    source_pos: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    trainable_groups: usize,
    source_rows: Vec<usize>,
}

impl ClassifierTask {
    /// The most layer groups the strategy lets train.
    fn max_groups(&self) -> usize {
        let layers = self.groups.len() - 2;
        match self.strategy {
            Strategy::Full => layers + 2,
            Strategy::Head => 1,
            Strategy::Top => 1 + self.top_layers.min(layers),
            // The head trains; the encoder trains only through its adapters.
            Strategy::Lora => 1,
        }
    }

    /// Groups that should train at `step` of `epoch` (gradual unfreezing grows it).
    fn wanted_groups(&self, step: usize, epoch: usize) -> usize {
        let max = self.max_groups();
        if !self.gradual_unfreeze {
            return max;
        }
        let unfrozen = if self.unfreeze_every > 0 { step / self.unfreeze_every } else { epoch };
        (1 + unfrozen).min(max)
    }

    /// What trains with `model` at `step`.
    pub fn trainable_in(&self, model: Option<&SequenceClassifier>, step: usize) -> TrainableState {
        let n = self.trainable_groups.min(self.groups.len());
        let emb = self.groups.len() - 1;
        let mut training: Vec<String> = self.groups[..n]
            .iter()
            .enumerate()
            .filter(|(i, _)| !(*i == emb && self.freeze_embeddings))
            .map(|(_, g)| g.0.name.clone())
            .collect();
        if let Some((rank, targets)) = &self.lora {
            let names: Vec<&str> = targets.iter().map(|t| self.arch.module(t.part())).collect();
            training.push(format!("LoRA adapters (rank {rank}) on {} in every encoder layer", names.join(", ")));
        }
        TrainableState {
            step,
            training,
            trainable_parameters: model.map(count_trainable).unwrap_or(0),
            total_parameters: self.groups.iter().map(|g| g.0.parameters).sum(),
        }
    }

    /// An epoch's example order for a mixture: each of its `train.len()` slots picks a file
    /// with the mixture's probabilities and takes that file's next row from its own stream
    /// (the file's rows reshuffled on every pass). Everything is seeded by the recipe's seed,
    /// the epoch and the file, so a resumed run rebuilds the same order.
    fn mixed_order(&mut self, draw: usize) -> Vec<usize> {
        let seed = self.seed;
        let mix = |a: u64, b: u64| seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut rng = StdRng::seed_from_u64(mix(0x6d69_7865 + draw as u64, 0));
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

    fn classifier_of(&self, model: &SequenceClassifier) -> Classifier {
        Classifier { model: model.valid(), labels: self.labels.clone(), pad_id: self.pad_id }
    }
}

/// A micro-batch of labelled examples (the classifier's, and each task's of a multi-task run).
pub struct ClassifierBatch {
    pub rows: Vec<Vec<u32>>,
    pub labels: Vec<i64>,
}

/// Adds labelled examples to a fingerprint.
pub fn eat_examples(h: &mut Fnv, examples: &[Encoded]) {
    for e in examples {
        h.eat(e.label as u64);
        h.eat(e.ids.len() as u64);
        for &id in &e.ids {
            h.eat(id as u64);
        }
    }
}

impl ClassifierBatch {
    pub fn of(examples: &[Encoded], rows: &[usize]) -> Self {
        ClassifierBatch { rows: rows.iter().map(|&i| examples[i].ids.clone()).collect(), labels: rows.iter().map(|&i| examples[i].label as i64).collect() }
    }

    /// Mean cross-entropy of `forward`'s logits against the labels.
    pub fn loss(&self, forward: impl FnOnce(&BertInput) -> Tensor<2>, pad_id: u32, device: &Device) -> Tensor<1> {
        let input = BertInput::from_rows(&self.rows, pad_id, device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(self.labels.clone(), [self.labels.len()]), device);
        cross_entropy(forward(&input), labels)
    }

    pub fn tokens(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }
}

impl Objective for ClassifierTask {
    type Model = SequenceClassifier;
    type Batch = ClassifierBatch;
    type Eval = Metrics;
    type Detail = NoDetail;
    const NAME: &'static str = "text-classification";

    fn train_len(&self) -> usize {
        self.train.len()
    }
    fn eval_len(&self) -> usize {
        self.eval.len()
    }
    fn order_rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    fn epoch(&mut self, draw: usize, batch_size: usize) -> Vec<Vec<usize>> {
        if self.sources.len() > 1 {
            self.mixed_order(draw).chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
        } else {
            shuffled_batches(&mut self.rng, self.train.len(), batch_size)
        }
    }
    fn prepare(&self, rows: &[usize], _rng: &mut StdRng) -> ClassifierBatch {
        ClassifierBatch::of(&self.train, rows)
    }
    fn weight(&self, batch: &ClassifierBatch) -> f64 {
        batch.rows.len() as f64
    }
    fn tokens(&self, batch: &ClassifierBatch) -> usize {
        batch.tokens()
    }
    fn loss(&self, model: &SequenceClassifier, batch: &ClassifierBatch, device: &Device) -> Result<Tensor<1>> {
        Ok(batch.loss(|input| model.forward(input), self.pad_id, device))
    }
    fn detail(&self, _batches: &[ClassifierBatch]) -> NoDetail {
        NoDetail {}
    }
    async fn evaluate(&self, model: &SequenceClassifier, _step: usize, _epoch: usize, device: &Device) -> Result<Metrics> {
        Ok(self.classifier_of(model).evaluate(&self.eval, self.eval_batch, device).await?.0)
    }
    fn watch(eval: &Metrics, metric: EvalMetric) -> Option<f64> {
        Some(eval.watched(metric))
    }
    fn fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        eat_examples(&mut h, &self.train);
        h.finish()
    }
    fn sources(&self) -> usize {
        if self.sources.len() > 1 { self.sources.len() } else { 0 }
    }
    fn count_drawn(&self, rows: &[usize], drawn: &mut [usize]) {
        if drawn.is_empty() {
            return;
        }
        for &i in rows {
            if let Some(k) = self.sources.iter().position(|(_, r)| r.contains(&i)) {
                drawn[k] += 1;
            }
        }
    }
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }
    fn before_step(&mut self, model: SequenceClassifier, step: usize, epoch: usize) -> (SequenceClassifier, Option<TrainableState>) {
        let wanted = self.wanted_groups(step, epoch);
        if wanted == self.trainable_groups {
            return (model, None);
        }
        let model = set_trainable(model, wanted, self.freeze_embeddings);
        self.trainable_groups = wanted;
        let note = self.trainable_in(Some(&model), step);
        (model, Some(note))
    }
    /// Discriminative learning rates: one constant-rate group per layer group below the head.
    fn rates(&self, lr: f64) -> ModuleLearningRate {
        let mut rates = ModuleLrScheduler::new(lr);
        if self.layer_lr_decay != 1.0 {
            for (g, ids) in &self.groups[1..] {
                rates = rates.with_group(ParamGroup::from_ids(ids.clone()), lr * g.lr_factor);
            }
        }
        rates.step()
    }
    fn save_state(&self) -> serde_json::Value {
        let saved = SavedState { trainable_groups: self.trainable_groups, source_rows: self.sources.iter().map(|s| s.1.len()).collect() };
        serde_json::to_value(saved).unwrap_or_default()
    }
    fn restore_state(&mut self, model: SequenceClassifier, state: &serde_json::Value) -> Result<SequenceClassifier> {
        let saved: SavedState =
            serde_json::from_value(state.clone()).map_err(|e| Error::Other(format!("the checkpoint's run state cannot be read: {e}")))?;
        let rows: Vec<usize> = self.sources.iter().map(|s| s.1.len()).collect();
        if saved.source_rows != rows {
            return Err(Error::data(format!(
                "the training files are not the files this checkpoint was trained on ({:?} rows then, {:?} now): resume needs the same files in the same order",
                saved.source_rows, rows
            )));
        }
        if saved.trainable_groups == 0 || saved.trainable_groups > self.groups.len() {
            return Err(Error::Other(format!("this checkpoint's trainable layer groups ({}) do not fit this model", saved.trainable_groups)));
        }
        let model = if self.strategy == Strategy::Lora { model } else { set_trainable(model, saved.trainable_groups, self.freeze_embeddings) };
        // The record restored the saved parameter ids (AdamW's state is keyed by them).
        self.groups = layer_groups(&model, self.layer_lr_decay);
        self.trainable_groups = saved.trainable_groups;
        Ok(model)
    }
}

impl Run<ClassifierTask> {
    /// A run on one training file. `device` is the plain device (WebGPU or CPU); training runs
    /// on its autodiff decorator.
    pub fn new(ckpt: &mut Checkpoint, train: &[Example], eval: &[Example], labels: Vec<String>, recipe: Recipe, device: &Device) -> Result<Self> {
        let source = Source { name: "the training data".into(), examples: train.to_vec() };
        Self::with_sources(ckpt, std::slice::from_ref(&source), eval, labels, recipe, device)
    }

    /// A run over several training files mixed as the recipe says (`mix_weights`,
    /// `mix_temperature`); with one file it is the plain shuffled-epoch loop.
    pub fn with_sources(ckpt: &mut Checkpoint, sources: &[Source], eval: &[Example], labels: Vec<String>, recipe: Recipe, device: &Device) -> Result<Self> {
        let (task, model, report) = ClassifierTask::build(ckpt, sources, eval, labels, &recipe, device)?;
        Run::start(task, model, report, recipe, device)
    }

    /// Continues a run from `checkpoint` on the same training and evaluation data.
    pub fn resume(ckpt: &mut Checkpoint, train: &[Example], eval: &[Example], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let source = Source { name: "the training data".into(), examples: train.to_vec() };
        Self::resume_sources(ckpt, std::slice::from_ref(&source), eval, checkpoint, device)
    }

    /// `resume` for a run over several training files (the same files, in the same order).
    pub fn resume_sources(ckpt: &mut Checkpoint, sources: &[Source], eval: &[Example], checkpoint: &[u8], device: &Device) -> Result<Self> {
        let (recipe, labels, _) = crate::engine::checkpoint_recipe(checkpoint)?;
        let (task, model, report) = ClassifierTask::build(ckpt, sources, eval, labels, &recipe, device)?;
        Run::restore(task, model, report, device, checkpoint)
    }

    pub fn labels(&self) -> &[String] {
        &self.objective.labels
    }

    /// The layer groups, top first, with parameter counts and learning-rate factors.
    pub fn layer_groups(&self) -> Vec<LayerGroup> {
        self.objective.groups.iter().map(|g| g.0.clone()).collect()
    }

    /// What trains right now.
    pub fn trainable(&self) -> TrainableState {
        self.objective.trainable_in(self.model().ok(), self.step)
    }

    /// The current weights as an inference classifier.
    pub fn classifier(&self) -> Result<Classifier> {
        Ok(self.objective.classifier_of(self.model()?))
    }

    /// Scores the eval set with the current weights (metrics and every prediction).
    pub async fn evaluate_all(&self) -> Result<(Metrics, Vec<crate::infer::classify::Prediction>)> {
        self.classifier()?.evaluate(&self.objective.eval, self.objective.eval_batch, self.base_device()).await
    }

    /// The same evaluation of the current weights, to be done a few batches at a time while
    /// training goes on (the weights are a snapshot: later steps do not change them).
    pub fn pending_evaluation(&self) -> Result<PendingEvaluation> {
        Ok(PendingEvaluation::new(self.classifier()?, self.objective.eval.clone(), self.objective.eval_batch, self.base_device().clone()))
    }

    /// The data mixture (one entry per training file; a single file has probability 1).
    pub fn mixture(&self) -> &[MixShare] {
        &self.objective.mix
    }

    /// The current model with int8 weights (config, tokenizer files, the int8 `model.safetensors`,
    /// quantization.json) and how it scores on the eval set against the f32 weights.
    pub async fn export_int8(&self, ckpt: &Checkpoint) -> Result<(Vec<(String, Vec<u8>)>, crate::infer::classify::Int8Report)> {
        let clf = self.classifier()?;
        let (weights, report) = crate::infer::classify::int8_comparison(ckpt, &clf, &self.objective.eval, self.objective.eval_batch, self.base_device()).await?;
        let mut files = vec![("config.json".to_string(), ckpt.classifier_config(&self.objective.labels)?)];
        files.extend(ckpt.tokenizer_files());
        files.push(("model.safetensors".to_string(), weights));
        files.push(("quantization.json".to_string(), serde_json::to_vec_pretty(&report).map_err(|e| Error::Other(e.to_string()))?));
        Ok((files, report))
    }

    /// HF folder files of the current model: config, tokenizer files, safetensors (LoRA merged
    /// into the weights), and with LoRA also the PEFT adapter folder under `peft/`.
    /// `base_name` is what `adapter_config.json` names as the base model.
    pub async fn export(&self, ckpt: &Checkpoint, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = export_classifier(self.model()?, ckpt, &self.objective.labels).await?;
        if self.recipe.strategy == Strategy::Lora {
            files.extend(export_peft(ckpt.config.arch, self.model()?, &self.recipe, base_name).await?);
        }
        Ok(files)
    }
}

impl ClassifierTask {
    /// The objective and its model (on `device.autodiff()`, with the strategy applied).
    fn build(ckpt: &mut Checkpoint, sources: &[Source], eval: &[Example], labels: Vec<String>, recipe: &Recipe, device: &Device) -> Result<(Self, SequenceClassifier, crate::hf::weights::LoadReport)> {
        recipe.validate(ckpt.config.max_tokens())?;
        recipe.require_classification()?;
        let mut train = Vec::new();
        let mut ranges = Vec::new();
        for src in sources {
            let start = train.len();
            let what = if sources.len() == 1 { src.name.clone() } else { format!("training file {}", src.name) };
            train.extend(encode_examples(ckpt, &src.examples, &labels, recipe.max_len, &what)?);
            if sources.len() > 1 && train.len() == start {
                return Err(Error::data(format!("training file {} has no usable rows", src.name)));
            }
            ranges.push((src.name.clone(), start..train.len()));
        }
        if sources.len() == 1 && !recipe.mix_weights.is_empty() && recipe.mix_weights != [1.0] {
            return Err(Error::Recipe("mixing weights need two or more training files (only one was given)".into()));
        }
        let mix = mixture(&ranges.iter().map(|(n, r)| (n.clone(), r.len())).collect::<Vec<_>>(), recipe)?;
        let eval = encode_examples(ckpt, eval, &labels, recipe.max_len, "the evaluation data")?;
        if train.is_empty() {
            return Err(Error::data("no training examples"));
        }
        let ad = device.clone().autodiff();
        ad.seed(recipe.seed);
        let (model, report) = build_classifier(ckpt, &labels, recipe.seed, &ad)?;
        let mut task = ClassifierTask {
            labels,
            train,
            eval,
            pad_id: ckpt.tokenizer.pad_id,
            arch: ckpt.config.arch,
            strategy: recipe.strategy,
            top_layers: recipe.top_layers,
            freeze_embeddings: recipe.freeze_embeddings,
            gradual_unfreeze: recipe.gradual_unfreeze,
            unfreeze_every: recipe.unfreeze_every,
            layer_lr_decay: recipe.layer_lr_decay,
            lora: (recipe.strategy == Strategy::Lora).then(|| (recipe.lora_rank, recipe.lora_targets.clone())),
            eval_batch: recipe.batch_size.max(32),
            seed: recipe.seed,
            rng: StdRng::seed_from_u64(recipe.seed),
            groups: layer_groups(&model, recipe.layer_lr_decay),
            trainable_groups: 0,
            source_pos: vec![0; ranges.len()],
            sources: ranges,
            mix,
        };
        let n = task.wanted_groups(0, 0);
        let model = if recipe.strategy == Strategy::Lora {
            let m = with_lora(model, recipe);
            // Adapters were added after the groups were listed: list them again.
            task.groups = layer_groups(&m, recipe.layer_lr_decay);
            m
        } else {
            set_trainable(model, n, recipe.freeze_embeddings)
        };
        task.trainable_groups = n;
        Ok((task, model, report))
    }
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
            ids.push(layer.linear(*t).weight.id);
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


