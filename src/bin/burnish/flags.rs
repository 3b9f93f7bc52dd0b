//! The flags several commands share: the device, data columns, training files, texts, and the
//! recipe file with the basic hyperparameters that override it.

use std::path::PathBuf;
use burnish::error::{Error, Result};
use burnish::{backend, data};
use burnish::recipe::Recipe;
use clap::Args;
use serde::Serialize;

use super::io::*;

#[derive(Args, Clone)]
pub struct DeviceArg {
    /// Compute device: cpu (burn flex) or gpu (wgpu: Vulkan/Metal/DX12, lavapipe works)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub device: String,
}
#[derive(Args, Clone, Serialize)]
pub struct Columns {
    /// Name of the text column
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub text_column: Option<String>,
    /// Name of the label column
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub label_column: Option<String>,
}
/// Training data: one or more training files (mixed) and an optional evaluation file.
#[derive(Args, Clone)]
pub struct TrainFiles {
    /// Training file; repeat it (--train a.csv --train b.csv) to mix several files
    #[arg(long, required = true)]
    pub train: Vec<PathBuf>,
    /// Evaluation file (default: a seeded, stratified share of each training file)
    #[arg(long)]
    pub eval: Option<PathBuf>,
}
/// Input texts: repeated --text and/or a file with one text per line.
#[derive(Args, Clone)]
pub struct Texts {
    /// A text (repeatable)
    #[arg(long = "text")]
    pub texts: Vec<String>,
    /// File with one text per line
    #[arg(long)]
    pub input: Option<PathBuf>,
}
/// The recipe file and the basic hyperparameters that override it (train, multitask).
#[derive(Args, Clone, Serialize)]
pub struct RecipeArgs {
    /// Recipe JSON (the page's "download recipe"); flags override it
    #[arg(long)]
    #[serde(skip)]
    pub recipe: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub columns: Columns,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub epochs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub max_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of each training file held out for evaluation when no --eval file is given
    #[serde(skip_serializing_if = "Option::is_none")]
    #[arg(long)]
    pub eval_fraction: Option<f64>,
}
impl RecipeArgs {
    /// The recipe file (or the defaults) with these flags applied, and whether the max length
    /// was left to the default (then capped to what the model can take).
    pub fn recipe(&self) -> Result<(Recipe, bool)> {
        let r: Recipe = match &self.recipe {
            Some(p) => serde_json::from_slice(&read(p)?).map_err(|e| Error::Recipe(format!("{}: {e}", p.display())))?,
            None => Recipe::default(),
        };
        let r = merge(r, self)?;
        Ok((r, self.max_len.is_none() && self.recipe.is_none()))
    }
}
/// The flags that override recipe fields (train), each named as its recipe field (recipe.rs;
/// `--domain-column` is `domain_text_column`). `apply` sets them all in one place, through the
/// recipe's own JSON form, so a flag is checked exactly as a recipe.json field is.
#[derive(Args, Clone, Serialize)]
pub struct RecipeFlags {
    /// Also evaluate every N steps (0: only at each epoch end)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<usize>,
    /// What trains: full (everything), head (pooler + classifier), top (head + --top-layers),
    /// lora (low-rank adapters + head; pretrained weights frozen)
    #[arg(long, value_parser = ["full", "head", "top", "lora"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Encoder layers (from the top) that train with --strategy top
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_layers: Option<usize>,
    /// Keep the embeddings frozen
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub freeze_embeddings: bool,
    /// Start with the head only and unfreeze one more layer group every epoch (or --unfreeze-every steps)
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gradual_unfreeze: bool,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfreeze_every: Option<usize>,
    /// Discriminative learning rates: lr × decay^(depth below the head) per layer group
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_lr_decay: Option<f64>,
    /// Learning-rate schedule after warm-up
    #[arg(long, value_parser = ["linear", "cosine", "constant"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Gradient accumulation: micro-batches per optimizer step
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_accum: Option<usize>,
    /// Stop after N evaluations without improvement and keep the best weights (0: off)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping_patience: Option<usize>,
    #[arg(long, value_parser = ["accuracy", "macro_f1", "loss"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping_metric: Option<String>,
    /// LoRA rank (--strategy lora)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_rank: Option<usize>,
    /// LoRA alpha: the adapter update is scaled by alpha / rank
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_alpha: Option<f64>,
    /// Dropout on the LoRA adapters' input
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_dropout: Option<f64>,
    /// Linear layers that get adapters, comma-separated
    #[arg(long, value_delimiter = ',', value_parser = ["query", "key", "value", "attention_output", "intermediate", "output"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora_targets: Option<Vec<String>>,
    /// Clip the global gradient norm to this value (0: no clipping)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_grad_norm: Option<f64>,
    /// Data mixing: one weight per --train file, comma-separated (default: by size)
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix_weights: Option<Vec<f64>>,
    /// Data mixing without weights: draw file i with probability ∝ rows_i^(1/T)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix_temperature: Option<f64>,
    /// text-classification, or masked-lm: continue pre-training on the --train files' text
    /// (no labels) and write a BertForMaskedLM folder; causal-lm (plain text, packed into
    /// --max-len blocks) and instruct (prompt → completion pairs, only the completion learnt)
    /// fine-tune a GPT-2 / Llama / Qwen2 model
    #[arg(long, value_parser = ["text-classification", "masked-lm", "causal-lm", "instruct"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// instruct: column of the prompt (default "prompt")
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_column: Option<String>,
    /// instruct: column of the completion (default "completion")
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_column: Option<String>,
    /// instruct: template around the prompt, with {prompt} where it goes, or a built-in one:
    /// question-answering, summarization, translation, writing
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_template: Option<String>,
    /// instruct: column of conversations ([{"role", "content"}, …], default "messages"),
    /// used when the data has it: rendered with the model's chat template, assistant turns
    /// learnt
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_column: Option<String>,
    /// Column of the --domain file (default "text")
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "domain_text_column")]
    pub domain_column: Option<String>,
    /// Masked-LM epochs on the --domain text before the classifier
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlm_epochs: Option<usize>,
    /// Peak learning rate of the masked-LM stage
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlm_lr: Option<f64>,
    /// Share of tokens chosen for masked-LM prediction (80 % [MASK], 10 % random, 10 % kept)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlm_probability: Option<f64>,
}

impl RecipeFlags {
    /// `r` with every flag given set.
    pub fn apply(&self, r: Recipe) -> Result<Recipe> {
        let mut r = merge(r, self)?;
        if let Some(t) = &self.prompt_template {
            r.prompt_template = burnish::data::text::template_for(t);
        }
        Ok(r)
    }
}

/// `r` with the fields `flags` serializes (those given) put over it, as if a recipe.json had them.
pub fn merge<T: Serialize>(r: Recipe, flags: &T) -> Result<Recipe> {
    let mut v = serde_json::to_value(&r).map_err(|e| Error::Other(e.to_string()))?;
    let given = serde_json::to_value(flags).map_err(|e| Error::Other(e.to_string()))?;
    for (k, x) in given.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).map_err(|e| Error::Recipe(e.to_string()))
}

pub fn device(arg: &DeviceArg) -> (burn::tensor::Device, backend::BackendInfo) {
    let (d, info) = pollster::block_on(backend::init(arg.device == "cpu"));
    eprintln!("backend: {} ({}){}", info.kind, info.adapter, info.note.as_ref().map(|n| format!(" — {n}")).unwrap_or_default());
    (d, info)
}

pub fn texts_from(Texts { texts, input }: Texts) -> Result<Vec<String>> {
    let mut all = texts;
    if let Some(p) = input {
        let bytes = read(&p)?;
        let text = data::decode_utf8(&bytes, &p.display().to_string())?;
        all.extend(text.lines().map(|l| l.trim_end_matches('\r').to_string()).filter(|l| !l.trim().is_empty()));
    }
    if all.is_empty() {
        return Err(Error::Io("give texts with --text T (repeatable) or --input FILE".into()));
    }
    Ok(all)
}

/// The training files and eval file read and split as the recipe says.
pub fn training_files(files: &TrainFiles, r: &Recipe) -> Result<data::TrainingData> {
    let tables = files.train.iter().map(|p| load_table(p)).collect::<Result<Vec<_>>>()?;
    let eval_table = files.eval.as_deref().map(load_table).transpose()?;
    data::training_data(&tables.iter().collect::<Vec<_>>(), eval_table.as_ref(), &r.text_column, &r.label_column, r.eval_fraction, r.seed)
}
