//! The recipe: every hyperparameter of a run, its defaults, its limits and its validation, in
//! one place. The page reads the same limits from `schema()` (through the wasm module), and the
//! CLI's flags override its fields by name, so Rust, the page and the CLI cannot disagree.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hf::config::Part;

/// What a run trains.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Task {
    /// A sequence classifier (BERT-family encoders).
    #[default]
    TextClassification,
    /// Masked-LM domain adaptation of an encoder.
    MaskedLm,
    /// Next-token training of a decoder on plain text (continued pre-training).
    CausalLm,
    /// Instruction / chat tuning of a decoder: only the completions are learnt.
    Instruct,
}

impl Task {
    pub const ALL: [Task; 4] = [Task::TextClassification, Task::MaskedLm, Task::CausalLm, Task::Instruct];

    /// The name recipes use.
    pub fn name(self) -> &'static str {
        match self {
            Task::TextClassification => "text-classification",
            Task::MaskedLm => "masked-lm",
            Task::CausalLm => "causal-lm",
            Task::Instruct => "instruct",
        }
    }

    /// Whether the task fine-tunes a decoder (GPT-2, Llama, Qwen2).
    pub fn is_decoder(self) -> bool {
        matches!(self, Task::CausalLm | Task::Instruct)
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Task> for &'static str {
    fn from(t: Task) -> Self {
        t.name()
    }
}

impl TryFrom<String> for Task {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        Task::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            format!("task \"{s}\" is not supported (supported: {})", Task::ALL.map(Task::name).join(", "))
        })
    }
}

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Task::try_from(s.to_string()).map_err(Error::Recipe)
    }
}

/// Multi-task training: how the task of each micro-batch is chosen.
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

/// Hyperparameters of a fine-tuning run. Every field has a default, so a partial JSON recipe
/// is valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// What is trained.
    pub task: Task,
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
    pub task_sampling: TaskSampling,
}

/// Linear layers of an encoder layer that LoRA can adapt (BERT's HF module names in the docs).
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

    /// The encoder sublayer it names (`EncoderArch::module` gives its HF module path: BERT's
    /// `attention.self.query`, DistilBERT's `attention.q_lin`, …).
    pub fn part(self) -> Part {
        match self {
            LoraTarget::Query => Part::Query,
            LoraTarget::Key => Part::Key,
            LoraTarget::Value => Part::Value,
            LoraTarget::AttentionOutput => Part::AttentionOutput,
            LoraTarget::Intermediate => Part::Intermediate,
            LoraTarget::Output => Part::Output,
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
    /// Whether `new` is an improvement on `old`.
    pub fn better(self, new: f64, old: f64) -> bool {
        if self == EvalMetric::Loss { new < old } else { new > old }
    }
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

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            task: Task::TextClassification,
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
            task_sampling: TaskSampling::Proportional,
        }
    }
}

impl Recipe {
    /// Refuses a recipe for another task where a classifier is trained.
    pub fn require_classification(&self) -> Result<()> {
        if self.task != Task::TextClassification {
            return Err(Error::Recipe(format!(
                "task \"{}\" trains no classifier: masked-lm runs as domain adaptation (burnish train --task masked-lm, or mlm_epochs with domain text before a classifier); causal-lm and instruct fine-tune a decoder (burnish train --task causal-lm|instruct with a GPT-2/Llama/Qwen2 model)",
                self.task
            )));
        }
        Ok(())
    }

    /// Checks every field against its limits in [`FIELDS`] (the page reads the same table), then
    /// the rules that tie fields together. `max_positions` is the model's.
    pub fn validate(&self, max_positions: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Recipe(m));
        let values = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        for f in FIELDS {
            if !matches!(f.kind, Kind::Integer | Kind::Number) {
                continue;
            }
            let v = values.get(f.name).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
            if !f.allows(v) {
                return Err(crate::error::coded!(
                    Recipe,
                    "recipe.out-of-range",
                    "{label} must be {range} (got {got})",
                    label = f.label,
                    range = f.range(),
                    got = &values[f.name];
                    field = f.name
                ));
            }
        }
        if self.max_len > max_positions {
            return Err(crate::error::coded!(
                Recipe,
                "recipe.max-len-beyond-model",
                "max length must be between 4 and the model's {positions} positions (got {got})",
                positions = max_positions,
                got = self.max_len
            ));
        }
        if self.strategy == Strategy::Lora {
            if self.lora_targets.is_empty() {
                return bad("LoRA needs at least one target module (query, key, value, attention_output, intermediate, output)".into());
            }
            if self.gradual_unfreeze {
                return bad("gradual unfreezing does not apply to LoRA (the pretrained weights stay frozen): turn one of them off".into());
            }
        }
        if let Some(w) = self.mix_weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return bad(format!("mixing weights must be numbers ≥ 0 (got {w})"));
        }
        if !self.mix_weights.is_empty() && self.mix_weights.iter().sum::<f64>() <= 0.0 {
            return bad("at least one mixing weight must be above 0".into());
        }
        if self.task == Task::MaskedLm && self.strategy != Strategy::Full {
            return bad("masked-LM adaptation trains every weight: strategies (head, top, LoRA) apply to the classifier stage".into());
        }
        if self.task.is_decoder() && !matches!(self.strategy, Strategy::Full | Strategy::Lora) {
            return bad(format!(
                "strategy \"{}\" is for classifiers; a causal LM trains every weight (\"full\") or LoRA adapters (\"lora\")",
                enum_name(&self.strategy)
            ));
        }
        if self.early_stopping_patience > 0 && self.task != Task::TextClassification && self.early_stopping_metric != EvalMetric::Loss {
            return bad(format!(
                "early stopping of a {} run watches the held-out loss: set the early-stopping metric to \"loss\" (got \"{}\")",
                self.task,
                enum_name(&self.early_stopping_metric)
            ));
        }
        Ok(())
    }
}

/// The JSON name of a unit enum variant (`Strategy::Lora` → "lora").
pub fn enum_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// A field's kind, as the page's form and the CLI's flags treat it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Integer,
    Number,
    Flag,
    Choice,
    /// A list of choices (`lora_targets`).
    Choices,
    /// A list of numbers (`mix_weights`).
    Numbers,
    Text,
}

/// A limit of a numeric field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    None,
    /// The value may equal it.
    Incl(f64),
    /// The value must stay strictly beyond it.
    Excl(f64),
}

/// One recipe field: its kind, limits, the tasks it applies to and a line of help.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// How messages name it ("learning rate").
    pub label: &'static str,
    pub kind: Kind,
    pub min: Bound,
    pub max: Bound,
    /// The tasks it applies to (empty: every task).
    pub tasks: &'static [Task],
    pub help: &'static str,
}

impl Field {
    /// Whether `v` is within the limits.
    pub fn allows(&self, v: f64) -> bool {
        let lo = match self.min {
            Bound::None => true,
            Bound::Incl(a) => v >= a,
            Bound::Excl(a) => v > a,
        };
        let hi = match self.max {
            Bound::None => true,
            Bound::Incl(b) => v <= b,
            Bound::Excl(b) => v < b,
        };
        v.is_finite() && lo && hi
    }

    /// The limits in words: "between 1 and 1000", "in [0, 1)", "a positive number below 1", "≥ 0".
    pub fn range(&self) -> String {
        match (self.min, self.max) {
            (Bound::Incl(a), Bound::Incl(b)) => format!("between {a} and {b}"),
            (Bound::Excl(a), Bound::Excl(b)) if a == 0.0 => format!("a positive number below {b}"),
            (Bound::Excl(a), Bound::Excl(b)) => format!("in ({a}, {b})"),
            (Bound::Incl(a), Bound::Excl(b)) => format!("in [{a}, {b})"),
            (Bound::Excl(a), Bound::Incl(b)) => format!("in ({a}, {b}]"),
            (Bound::Incl(a), Bound::None) => format!("≥ {a}"),
            (Bound::Excl(a), Bound::None) if a == 0.0 => "a positive number".into(),
            (Bound::Excl(a), Bound::None) => format!("> {a}"),
            (Bound::None, Bound::Incl(b)) => format!("≤ {b}"),
            (Bound::None, Bound::Excl(b)) => format!("< {b}"),
            (Bound::None, Bound::None) => "a number".into(),
        }
    }
}

const CLS: &[Task] = &[Task::TextClassification];
const ENCODER: &[Task] = &[Task::TextClassification, Task::MaskedLm];
const INSTRUCT: &[Task] = &[Task::Instruct];
const TEXT: &[Task] = &[Task::TextClassification, Task::CausalLm];

macro_rules! field {
    ($name:literal, $label:literal, $kind:ident, $min:expr, $max:expr, $tasks:expr, $help:literal) => {
        Field { name: $name, label: $label, kind: Kind::$kind, min: $min, max: $max, tasks: $tasks, help: $help }
    };
}
use Bound::{Excl, Incl, None as Free};

/// Every recipe field, in the order the page shows them. `validate` enforces these limits and
/// `schema()` hands them to the page.
pub const FIELDS: &[Field] = &[
    field!("task", "task", Choice, Free, Free, &[], "What is trained: a classifier, masked-LM adaptation, a decoder on plain text, or instruction tuning."),
    field!("epochs", "epochs", Integer, Incl(1.0), Incl(1000.0), &[], "Passes over the training data."),
    field!("lr", "learning rate", Number, Excl(0.0), Excl(1.0), &[], "Peak learning rate of AdamW, reached after the warm-up."),
    field!("batch_size", "batch size", Integer, Incl(1.0), Incl(4096.0), &[], "Examples per micro-batch."),
    field!("max_len", "max length", Integer, Incl(4.0), Free, &[], "Tokens per example (at most the model's positions); longer texts are cut."),
    field!("warmup_ratio", "warmup ratio", Number, Incl(0.0), Excl(1.0), &[], "Share of the steps over which the learning rate rises from 0."),
    field!("weight_decay", "weight decay", Number, Incl(0.0), Free, &[], "AdamW's decoupled weight decay."),
    field!("seed", "seed", Integer, Incl(0.0), Free, &[], "Seeds the data order, new weights and dropout: the same seed gives the same run."),
    field!("eval_fraction", "eval fraction", Number, Excl(0.0), Excl(0.9), &[], "Share of the training file held out for evaluation when no evaluation file is given."),
    field!("eval_every", "evaluation interval", Integer, Incl(0.0), Free, &[], "Also evaluate every this many steps (0: at the end of each epoch only)."),
    field!("max_grad_norm", "max grad norm", Number, Incl(0.0), Free, &[], "Clip the gradients' global L2 norm to this (0: no clipping)."),
    field!("schedule", "schedule", Choice, Free, Free, &[], "Learning-rate schedule after the warm-up."),
    field!("grad_accum", "gradient accumulation", Integer, Incl(1.0), Incl(1024.0), &[], "Micro-batches per optimizer step (effective batch = batch size × this)."),
    field!("early_stopping_patience", "early stopping patience", Integer, Incl(0.0), Incl(1000.0), &[], "Stop after this many evaluations without improvement and keep the best weights (0: off)."),
    field!("early_stopping_metric", "early-stopping metric", Choice, Free, Free, &[], "What early stopping watches (language models: the loss)."),
    field!("strategy", "strategy", Choice, Free, Free, &[], "What trains: every weight, the head, the head and the top layers, or LoRA adapters (decoders: full or LoRA)."),
    field!("top_layers", "top layers", Integer, Incl(1.0), Incl(1000.0), CLS, "With the top strategy: encoder layers, from the top, that train with the head."),
    field!("freeze_embeddings", "freeze embeddings", Flag, Free, Free, CLS, "Keep the embeddings frozen."),
    field!("gradual_unfreeze", "gradual unfreezing", Flag, Free, Free, CLS, "Start with the head only and unfreeze one more layer group from the top every epoch (or every N steps)."),
    field!("unfreeze_every", "unfreeze interval", Integer, Incl(0.0), Free, CLS, "With gradual unfreezing: steps between unfreezing (0: once per epoch)."),
    field!("layer_lr_decay", "layer lr decay", Number, Excl(0.0), Incl(1.0), CLS, "Discriminative rates: a group d below the head trains at lr × this^d (1: the same everywhere)."),
    field!("lora_rank", "LoRA rank", Integer, Incl(1.0), Incl(256.0), &[], "With LoRA: the adapters' rank."),
    field!("lora_alpha", "LoRA alpha", Number, Excl(0.0), Free, &[], "With LoRA: the update is scaled by alpha / rank."),
    field!("lora_dropout", "LoRA dropout", Number, Incl(0.0), Excl(1.0), &[], "With LoRA: dropout on the adapters' input."),
    field!("lora_targets", "LoRA targets", Choices, Free, Free, &[], "With LoRA: the linear layers of every layer that get an adapter."),
    field!("mix_weights", "mixing weights", Numbers, Free, Free, CLS, "One weight per training file (empty: by size, tempered)."),
    field!("mix_temperature", "mixing temperature", Number, Excl(0.0), Incl(100.0), CLS, "Without weights: file i is drawn ∝ rows^(1/T); larger T moves towards uniform."),
    field!("mlm_epochs", "domain adaptation epochs", Integer, Incl(0.0), Incl(1000.0), CLS, "Masked-LM epochs on domain text before the classifier (0: none)."),
    field!("mlm_lr", "domain adaptation learning rate", Number, Excl(0.0), Excl(1.0), CLS, "Peak learning rate of the domain-adaptation stage."),
    field!("mlm_probability", "masking probability", Number, Excl(0.0), Excl(1.0), ENCODER, "Share of tokens predicted (80 % [MASK], 10 % random, 10 % kept)."),
    field!("text_column", "text column", Text, Free, Free, TEXT, "The column holding the text."),
    field!("label_column", "label column", Text, Free, Free, CLS, "The column holding the label."),
    field!("domain_text_column", "domain text column", Text, Free, Free, ENCODER, "The domain-text file's column (a .txt file's lines are \"text\")."),
    field!("prompt_column", "prompt column", Text, Free, Free, INSTRUCT, "Instruction tuning: the prompts' column."),
    field!("completion_column", "completion column", Text, Free, Free, INSTRUCT, "Instruction tuning: the completions' column (only these are learnt)."),
    field!("prompt_template", "prompt template", Text, Free, Free, INSTRUCT, "Where the prompt goes ({prompt}) before the completion."),
    field!("messages_column", "messages column", Text, Free, Free, INSTRUCT, "Chat data: the column of conversations, rendered with the model's chat template."),
    field!("task_sampling", "task sampling", Choice, Free, Free, CLS, "Multi-task runs: each step's task by the tasks' sizes, or in turn."),
];

/// The recipe's schema for the page: every field with its kind, default, limits, choices, the
/// tasks it applies to and its help line.
pub fn schema() -> serde_json::Value {
    fn names<T: Serialize>(all: &[T]) -> Vec<String> {
        all.iter().map(enum_name).collect()
    }
    let defaults = serde_json::to_value(Recipe::default()).unwrap_or_default();
    let bound = |b: Bound| match b {
        Bound::None => serde_json::Value::Null,
        Bound::Incl(x) | Bound::Excl(x) => serde_json::json!(x),
    };
    let fields: Vec<serde_json::Value> = FIELDS
        .iter()
        .map(|f| {
            let choices = match f.name {
                "task" => names(&Task::ALL),
                "strategy" => names(&[Strategy::Full, Strategy::Head, Strategy::Top, Strategy::Lora]),
                "schedule" => names(&[Schedule::Linear, Schedule::Cosine, Schedule::Constant]),
                "early_stopping_metric" => names(&[EvalMetric::Accuracy, EvalMetric::MacroF1, EvalMetric::Loss]),
                "task_sampling" => names(&[TaskSampling::Proportional, TaskSampling::RoundRobin]),
                "lora_targets" => names(&LoraTarget::ALL),
                _ => Vec::new(),
            };
            serde_json::json!({
                "name": f.name,
                "label": f.label,
                "kind": f.kind,
                "default": defaults[f.name],
                "min": bound(f.min),
                "min_exclusive": matches!(f.min, Bound::Excl(_)),
                "max": bound(f.max),
                "max_exclusive": matches!(f.max, Bound::Excl(_)),
                "choices": choices,
                "tasks": names(f.tasks),
                "help": f.help,
            })
        })
        .collect();
    serde_json::json!({ "fields": fields })
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

