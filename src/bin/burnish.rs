//! `burnish` native CLI: embed, train, eval, predict, bench. JSON on stdout, human progress on
//! stderr. A thin shell over the library: it reads files, hands bytes over, prints results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burnish::backend;
use burnish::checkpoint::Checkpoint;
use burnish::data::{self, Example};
use burnish::embed::Embedder;
use burnish::error::{Error, Result};
use burnish::engine::classifier::{self, TrainSession};
use burnish::engine::{causal_lm, masked_lm, multitask};
use burnish::infer::classify::{self, Classifier};
use burnish::recipe::{self, Recipe};
use burnish::{causal, lm, mlm};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

// mimalloc instead of glibc's malloc: burn-flex allocates a fresh buffer for nearly every tensor
// op, and glibc hands each large one (an embedding gradient, AdamW's moments, attention scores)
// to mmap and back to the kernel on free, so every op paid page faults on memory it had just
// released (a MiniLM step spent a third of its time faulting). mimalloc keeps freed pages.
// Its default returns freed pages to the kernel 10 ms after they empty, which a training step
// (hundreds of ms between the same allocations) still pays in faults; one second keeps a step's
// working set mapped and still gives memory back once a run ends or shrinks. The environment
// (MIMALLOC_PURGE_DELAY) overrides it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49 names only
/// v2's options; v3 is what it builds by default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads it on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
}

#[derive(Parser)]
#[command(name = "burnish", version, about = "Fine-tune BERT-family models (HF format in and out)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DeviceArg {
    /// Compute device: cpu (burn flex) or gpu (wgpu: Vulkan/Metal/DX12, lavapipe works)
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    device: String,
}

#[derive(Args, Clone)]
struct Columns {
    /// Name of the text column
    #[arg(long)]
    text_column: Option<String>,
    /// Name of the label column
    #[arg(long)]
    label_column: Option<String>,
}

/// Training data: one or more training files (mixed) and an optional evaluation file.
#[derive(Args, Clone)]
struct TrainFiles {
    /// Training file; repeat it (--train a.csv --train b.csv) to mix several files
    #[arg(long, required = true)]
    train: Vec<PathBuf>,
    /// Evaluation file (default: a seeded, stratified share of each training file)
    #[arg(long)]
    eval: Option<PathBuf>,
}

/// Input texts: repeated --text and/or a file with one text per line.
#[derive(Args, Clone)]
struct Texts {
    /// A text (repeatable)
    #[arg(long = "text")]
    texts: Vec<String>,
    /// File with one text per line
    #[arg(long)]
    input: Option<PathBuf>,
}

/// The recipe file and the basic hyperparameters that override it (train, multitask).
#[derive(Args, Clone)]
struct RecipeArgs {
    /// Recipe JSON (the page's "download recipe"); flags override it
    #[arg(long)]
    recipe: Option<PathBuf>,
    #[command(flatten)]
    columns: Columns,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    max_len: Option<usize>,
    #[arg(long)]
    warmup_ratio: Option<f64>,
    #[arg(long)]
    weight_decay: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Share of each training file held out for evaluation when no --eval file is given
    #[arg(long)]
    eval_fraction: Option<f64>,
}

impl RecipeArgs {
    /// The recipe file (or the defaults) with these flags applied, and whether the max length
    /// was left to the default (then capped to what the model can take).
    fn recipe(&self) -> Result<(Recipe, bool)> {
        let mut r: Recipe = match &self.recipe {
            Some(p) => serde_json::from_slice(&read(p)?).map_err(|e| Error::Recipe(format!("{}: {e}", p.display())))?,
            None => Recipe::default(),
        };
        if let Some(v) = &self.columns.text_column { r.text_column = v.clone(); }
        if let Some(v) = &self.columns.label_column { r.label_column = v.clone(); }
        if let Some(v) = self.epochs { r.epochs = v; }
        if let Some(v) = self.lr { r.lr = v; }
        if let Some(v) = self.batch_size { r.batch_size = v; }
        if let Some(v) = self.max_len { r.max_len = v; }
        if let Some(v) = self.warmup_ratio { r.warmup_ratio = v; }
        if let Some(v) = self.weight_decay { r.weight_decay = v; }
        if let Some(v) = self.seed { r.seed = v; }
        if let Some(v) = self.eval_fraction { r.eval_fraction = v; }
        Ok((r, self.max_len.is_none() && self.recipe.is_none()))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Sentence embeddings (mean-pooled, L2-normalised) as JSON Lines
    Embed {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        texts: Texts,
        #[arg(long, default_value_t = 256)]
        max_len: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Fine-tune a sequence classifier and write an HF folder + metrics.json
    Train {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        files: TrainFiles,
        #[command(flatten)]
        base: RecipeArgs,
        /// Also evaluate every N steps (0: only at each epoch end)
        #[arg(long)]
        eval_every: Option<usize>,
        /// What trains: full (everything), head (pooler + classifier), top (head + --top-layers),
        /// lora (low-rank adapters + head; pretrained weights frozen)
        #[arg(long, value_parser = ["full", "head", "top", "lora"])]
        strategy: Option<String>,
        /// Encoder layers (from the top) that train with --strategy top
        #[arg(long)]
        top_layers: Option<usize>,
        /// Keep the embeddings frozen
        #[arg(long)]
        freeze_embeddings: bool,
        /// Start with the head only and unfreeze one more layer group every epoch (or --unfreeze-every steps)
        #[arg(long)]
        gradual_unfreeze: bool,
        #[arg(long)]
        unfreeze_every: Option<usize>,
        /// Discriminative learning rates: lr × decay^(depth below the head) per layer group
        #[arg(long)]
        layer_lr_decay: Option<f64>,
        /// Learning-rate schedule after warm-up
        #[arg(long, value_parser = ["linear", "cosine", "constant"])]
        schedule: Option<String>,
        /// Gradient accumulation: micro-batches per optimizer step
        #[arg(long)]
        grad_accum: Option<usize>,
        /// Stop after N evaluations without improvement and keep the best weights (0: off)
        #[arg(long)]
        early_stopping_patience: Option<usize>,
        #[arg(long, value_parser = ["accuracy", "macro_f1", "loss"])]
        early_stopping_metric: Option<String>,
        /// LoRA rank (--strategy lora)
        #[arg(long)]
        lora_rank: Option<usize>,
        /// LoRA alpha: the adapter update is scaled by alpha / rank
        #[arg(long)]
        lora_alpha: Option<f64>,
        /// Dropout on the LoRA adapters' input
        #[arg(long)]
        lora_dropout: Option<f64>,
        /// Linear layers that get adapters, comma-separated
        #[arg(long, value_delimiter = ',', value_parser = ["query", "key", "value", "attention_output", "intermediate", "output"])]
        lora_targets: Option<Vec<String>>,
        /// Clip the global gradient norm to this value (0: no clipping)
        #[arg(long)]
        max_grad_norm: Option<f64>,
        /// Data mixing: one weight per --train file, comma-separated (default: by size)
        #[arg(long, value_delimiter = ',')]
        mix_weights: Option<Vec<f64>>,
        /// Data mixing without weights: draw file i with probability ∝ rows_i^(1/T)
        #[arg(long)]
        mix_temperature: Option<f64>,
        /// text-classification, or masked-lm: continue pre-training on the --train files' text
        /// (no labels) and write a BertForMaskedLM folder; causal-lm (plain text, packed into
        /// --max-len blocks) and instruct (prompt → completion pairs, only the completion learnt)
        /// fine-tune a GPT-2 / Llama / Qwen2 model
        #[arg(long, value_parser = ["text-classification", "masked-lm", "causal-lm", "instruct"])]
        task: Option<String>,
        /// instruct: column of the prompt (default "prompt")
        #[arg(long)]
        prompt_column: Option<String>,
        /// instruct: column of the completion (default "completion")
        #[arg(long)]
        completion_column: Option<String>,
        /// instruct: template around the prompt, with {prompt} where it goes, or a built-in one:
        /// question-answering, summarization, translation, writing
        #[arg(long)]
        prompt_template: Option<String>,
        /// instruct: column of conversations ([{"role", "content"}, …], default "messages"),
        /// used when the data has it: rendered with the model's chat template, assistant turns
        /// learnt
        #[arg(long)]
        messages_column: Option<String>,
        /// Domain text (.txt lines, or a column of a CSV/TSV/JSONL): adapt the encoder with
        /// masked-LM training on it first, then fine-tune the classifier (two-stage recipe)
        #[arg(long)]
        domain: Option<PathBuf>,
        /// Column of the --domain file (default "text")
        #[arg(long)]
        domain_column: Option<String>,
        /// Masked-LM epochs on the --domain text before the classifier
        #[arg(long)]
        mlm_epochs: Option<usize>,
        /// Peak learning rate of the masked-LM stage
        #[arg(long)]
        mlm_lr: Option<f64>,
        /// Share of tokens chosen for masked-LM prediction (80 % [MASK], 10 % random, 10 % kept)
        #[arg(long)]
        mlm_probability: Option<f64>,
        /// Save a training checkpoint (weights, optimizer, schedule, data order, RNG) to this file
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Steps between checkpoints (and one at the end)
        #[arg(long, default_value_t = 50)]
        checkpoint_every: usize,
        /// Continue the run saved in this checkpoint (its recipe is used; give the same data)
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Stop after this many steps in this invocation (then checkpoint and export)
        #[arg(long)]
        stop_after: Option<usize>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Multi-task fine-tuning: several labelled files (one task each, with its own labels and
    /// head) share one encoder; writes one HF folder per task + metrics.json
    Multitask {
        #[arg(long)]
        model: PathBuf,
        /// A task: NAME=FILE, or NAME=FILE:TEXT_COLUMN:LABEL_COLUMN (repeat; two or more)
        #[arg(long = "task", required = true)]
        tasks: Vec<String>,
        #[command(flatten)]
        base: RecipeArgs,
        /// How each step's task is chosen
        #[arg(long, value_parser = ["proportional", "round-robin"])]
        sampling: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Fill in [MASK] tokens (masked-LM head; e.g. a domain-adapted folder) as JSON Lines
    /// {text, masks: [{position, candidates: [{token, id, score}]}]}
    FillMask {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        texts: Texts,
        /// Candidates per mask
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Continue a prompt with a causal LM (GPT-2, Llama/SmolLM2, Qwen2 folder): the text is
    /// streamed to stdout as it is generated; a JSON summary goes to stderr with --json
    Generate {
        /// Folder with config.json, tokenizer.json and model.safetensors (or its shards + index),
        /// or a .gguf file (Llama / Qwen2 architectures)
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// 0 is greedy decoding
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Sample among the k most likely tokens (0: all)
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Sample among the most likely tokens covering this probability
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        #[arg(long, default_value_t = 1.0)]
        repetition_penalty: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop when the text contains this (repeatable)
        #[arg(long)]
        stop: Vec<String>,
        /// Recompute every position each step instead of reusing the key/value cache
        #[arg(long)]
        no_cache: bool,
        /// Generate on 8-bit weights (Llama, Qwen2; on the CPU): faster, with logits within the
        /// weights' rounding of the f32 model's (the page's default on the CPU)
        #[arg(long)]
        int8: bool,
        /// Put the prompt in the model's chat template as the user's message
        #[arg(long)]
        chat: bool,
        /// Print one JSON object (prompt, text, token ids, stop reason, tokens/s) instead of text
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Data checks (the page's): empty rows, duplicates, label counts, rare labels, token lengths
    Check {
        #[arg(long)]
        train: PathBuf,
        #[arg(long)]
        eval: Option<PathBuf>,
        #[command(flatten)]
        columns: Columns,
        /// A model folder: adds token-length checks with its tokenizer
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
    },
    /// Evaluate a fine-tuned classifier folder on a labelled file; or a causal LM (folder or
    /// .gguf): perplexity on plain text or on the completions of prompt/completion pairs, and for
    /// pairs the greedy answers' exact match, ROUGE-L and chrF against the completions
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        columns: Columns,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Causal LMs: prompt column of pair data
        #[arg(long, default_value = "prompt")]
        prompt_column: String,
        /// Causal LMs: completion (reference) column of pair data
        #[arg(long, default_value = "completion")]
        completion_column: String,
        /// Causal LMs: prompt template ({prompt} marks the prompt), or question-answering,
        /// summarization, translation, writing
        #[arg(long, default_value = "{prompt}")]
        prompt_template: String,
        /// Causal LMs: column of conversations, rendered with the model's chat template (the
        /// last assistant turn is the reference)
        #[arg(long, default_value = "messages")]
        messages_column: String,
        /// Causal LMs: most tokens of each greedy answer scored against its reference (0: no
        /// generation, perplexity only)
        #[arg(long, default_value_t = 32)]
        max_new_tokens: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Predict labels as JSON Lines {text, label, probabilities, logits}
    Predict {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        texts: Texts,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Run several strategies (presets) with the same model, data and budget; write a table
    /// (comparison.md) and the full results (comparison.json) to --out
    Compare {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        files: TrainFiles,
        #[command(flatten)]
        columns: Columns,
        /// Strategy presets, comma-separated (default: all)
        #[arg(long, value_delimiter = ',', default_value = "full,head,top2,gradual,discriminative,lora")]
        strategies: Vec<String>,
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value_t = 64)]
        max_len: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 0.2)]
        eval_fraction: f64,
        /// One learning rate for every strategy (default: each preset's usual rate)
        #[arg(long)]
        lr: Option<f64>,
        /// Train on a seeded, stratified subset of this many rows per training file
        #[arg(long)]
        max_train: Option<usize>,
        /// Title of the table (e.g. the dataset's name)
        #[arg(long)]
        title: Option<String>,
        /// Internal: train only this preset and print its result as JSON (`compare` runs each
        /// preset in a process of its own, so that its peak memory is its own)
        #[arg(long, hide = true)]
        one: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Time full training steps (forward, backward, clip, AdamW) on fixed-size batches; for a
    /// causal LM (folder or .gguf) also greedy generation with the KV cache (tokens/s)
    Bench {
        #[arg(long)]
        model: PathBuf,
        /// Causal LMs: full or lora (rank 8 on q and v)
        #[arg(long, default_value = "full")]
        strategy: String,
        /// Causal LMs: tokens to generate
        #[arg(long, default_value_t = 32)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[arg(long, default_value_t = 64)]
        max_len: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[command(flatten)]
        device: DeviceArg,
    },
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

fn load_checkpoint(dir: &Path) -> Result<Checkpoint> {
    if !dir.is_dir() {
        return Err(Error::Io(format!("--model {}: not a folder (expected config.json, tokenizer.json, model.safetensors)", dir.display())));
    }
    let need = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        if !p.exists() {
            return Err(Error::Io(format!("{} has no {name} (a model folder needs config.json, tokenizer.json, model.safetensors)", dir.display())));
        }
        read(&p)
    };
    let mut ckpt = Checkpoint::from_bytes(&need("config.json")?, &need("tokenizer.json")?, need("model.safetensors")?)?;
    let tc = dir.join("tokenizer_config.json");
    if tc.exists() {
        ckpt.tokenizer_config = Some(read(&tc)?);
    }
    Ok(ckpt)
}

/// A causal LM folder: config.json, tokenizer.json, and model.safetensors or the shards its
/// model.safetensors.index.json names.
fn load_causal(dir: &Path) -> Result<causal::CausalModel> {
    if dir.is_file() && dir.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return burnish::gguf::to_causal_model(&read(dir)?).map_err(|e| Error::Other(format!("{}: {e}", dir.display())));
    }
    if !dir.is_dir() {
        return Err(Error::Io(format!("--model {}: not a folder (expected config.json, tokenizer.json, model.safetensors)", dir.display())));
    }
    let need = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        if !p.exists() {
            return Err(Error::Io(format!("{} has no {name} (a model folder needs config.json, tokenizer.json, model.safetensors or its shards)", dir.display())));
        }
        read(&p)
    };
    let index = dir.join("model.safetensors.index.json");
    let weights = if index.exists() {
        causal::shard_files(&read(&index)?)?.iter().map(|f| need(f)).collect::<Result<Vec<_>>>()?
    } else {
        vec![need("model.safetensors")?]
    };
    let cm = causal::CausalModel::from_bytes(&need("config.json")?, &need("tokenizer.json")?, weights)?;
    // Optional: tokenizer_config.json and chat_template.jinja carry the chat template.
    let optional = |name: &str| -> Result<Option<Vec<u8>>> { if dir.join(name).exists() { read(&dir.join(name)).map(Some) } else { Ok(None) } };
    let jinja = optional("chat_template.jinja")?.map(|b| String::from_utf8_lossy(&b).into_owned());
    cm.with_tokenizer_config(optional("tokenizer_config.json")?, jinja)
}

/// A .gguf file, or a folder whose config.json names a GPT-2, Llama or Qwen2 model.
fn is_decoder(path: &Path) -> bool {
    if path.is_file() {
        return path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    }
    std::fs::read(path.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["model_type"].as_str().map(String::from))
        .is_some_and(|t| matches!(t.as_str(), "gpt2" | "llama" | "qwen2"))
}

/// `eval` of a causal LM: next-token loss and perplexity over plain text (packed into max_len
/// blocks), over the completions of prompt/completion pairs, or over the assistant turns of
/// conversations; for pairs and conversations, greedy answers scored against the references
/// (exact match, ROUGE-L, chrF).
fn eval_decoder(model: &Path, path: &Path, mut r: Recipe, max_new_tokens: usize, d: &DeviceArg) -> Result<()> {
    let cm = load_causal(model)?;
    let table = load_table(path)?;
    r.max_len = r.max_len.min(cm.config.max_positions());
    let chat = table.columns.contains(&r.messages_column);
    let pairs = table.columns.contains(&r.prompt_column) && table.columns.contains(&r.completion_column);
    r.task = if chat || pairs { recipe::Task::Instruct } else { recipe::Task::CausalLm };
    let (rows, prompts) = lm::rows_for_task(&cm, &table, &r)?;
    let (dev, info) = device(d);
    let (m, _) = cm.load(0, &dev)?;
    let score = pollster::block_on(lm::score(&m, &rows, cm.eos.first().copied().unwrap_or(0), r.batch_size, &dev, 0, 0))?;
    let data = if chat {
        "conversations (assistant turns scored)"
    } else if pairs {
        "prompt/completion pairs (completion tokens scored)"
    } else {
        "plain text (every token scored)"
    };
    let mut out = json!({
        "architecture": cm.config.architecture(),
        "data": data,
        "rows": rows.len(),
        "loss": score.loss,
        "perplexity": score.perplexity,
        "tokens": score.tokens,
        "backend": info,
    });
    if (chat || pairs) && max_new_tokens > 0 {
        let mut scored = Vec::with_capacity(prompts.len());
        let mut predictions = Vec::with_capacity(prompts.len());
        for p in prompts {
            let Some(reference) = p.reference else { continue };
            let ids = lm::prompt_ids(&cm.tokenizer, &p.prompt, p.chat)?;
            let opts = causal::GenerateOptions { max_new_tokens, ..Default::default() };
            let mut g = causal::Generation::new(&m, ids, opts, cm.eos.clone(), cm.config.max_positions())?;
            while pollster::block_on(g.step(&m, &cm.tokenizer))?.is_some() {}
            let answer = g.text(&cm.tokenizer)?.trim().to_string();
            predictions.push(json!({
                "prompt": p.prompt,
                "reference": reference,
                "prediction": answer,
                "exact_match": burnish::metrics::exact_match(&answer, &reference),
                "rouge_l": burnish::metrics::rouge_l(&answer, &reference),
            }));
            scored.push((answer, reference));
        }
        out["generation"] = serde_json::to_value(burnish::metrics::generation_metrics(&scored)).unwrap_or_default();
        out["predictions"] = json!(predictions);
    }
    print_json(&out);
    Ok(())
}

/// `train --task causal-lm|instruct`: fine-tunes a decoder and writes its HF folder and
/// metrics.json (held-out loss and perplexity before and after each epoch).
/// `--checkpoint FILE [--checkpoint-every N]`, `--resume FILE`, `--stop-after N` of a decoder run.
struct DecoderCheckpoints {
    checkpoint: Option<PathBuf>,
    every: usize,
    resume: Option<Vec<u8>>,
    stop_after: Option<usize>,
}

#[allow(clippy::too_many_arguments)]
fn train_decoder(model: &Path, files: &TrainFiles, mut r: Recipe, cap_max_len: bool, out: &Path, d: &DeviceArg, wall: std::time::Instant, ck: DecoderCheckpoints) -> Result<()> {
    let cm = load_causal(model)?;
    if cap_max_len {
        r.max_len = r.max_len.min(cm.config.max_positions());
    }
    r.validate(cm.config.max_positions())?;
    let rows_of = |p: &Path| -> Result<Vec<lm::LmRow>> { lm::rows_for_task(&cm, &load_table(p)?, &r).map(|(rows, _)| rows) };
    let mut train_rows = Vec::new();
    for p in &files.train {
        train_rows.extend(rows_of(p)?);
    }
    let (train_rows, eval_rows) = match &files.eval {
        Some(p) => (train_rows, rows_of(p)?),
        None => {
            let (train, eval, _) = lm::split_rows(&train_rows, r.eval_fraction, r.seed);
            (train, eval)
        }
    };
    let (dev, info) = device(d);
    eprintln!("{} training rows, {} held out ({}, {})", train_rows.len(), eval_rows.len(), cm.config.architecture(), info.adapter);
    let mut s = match &ck.resume {
        Some(bytes) => {
            let s = causal_lm::LmSession::resume(&cm, train_rows, eval_rows, bytes, &dev)?;
            eprintln!("resuming at step {} of {}", s.step, s.total_steps);
            r = s.recipe.clone();
            s
        }
        None => causal_lm::LmSession::new(&cm, train_rows, eval_rows, r.clone(), &dev)?,
    };
    let save = |s: &causal_lm::LmSession| -> Result<()> {
        if let Some(p) = &ck.checkpoint {
            // Written next to the target, then renamed: a crash never leaves half a file.
            let tmp = p.with_extension("partial");
            std::fs::write(&tmp, pollster::block_on(s.checkpoint())?).map_err(|e| Error::Io(format!("cannot write {}: {e}", tmp.display())))?;
            std::fs::rename(&tmp, p).map_err(|e| Error::Io(format!("cannot write {}: {e}", p.display())))?;
        }
        Ok(())
    };
    if s.objective.lora_modules.is_empty() {
        eprintln!("training every weight ({} parameters)", s.objective.trainable);
    } else {
        eprintln!("training LoRA adapters (rank {}) on {} in every layer: {} parameters", r.lora_rank, s.objective.lora_modules.join(", "), s.objective.trainable);
    }
    let mut ran = 0usize;
    while !s.is_done() && ck.stop_after.is_none_or(|n| ran < n) {
        let rep = pollster::block_on(s.step())?;
        ran += 1;
        if ck.every > 0 && rep.step % ck.every == 0 {
            save(&s)?;
        }
        if let Some(e) = &rep.eval {
            eprintln!("epoch {}: held-out loss {:.4}, perplexity {:.2}", e.epoch, e.loss, e.perplexity);
        } else if rep.step % 10 == 0 {
            eprintln!("step {}/{}: loss {:.4}", rep.step, rep.total_steps, rep.loss);
        }
    }
    save(&s)?;
    if !s.is_done() {
        eprintln!("stopped after step {} of {}; continue with --resume", s.step, s.total_steps);
    }
    std::fs::create_dir_all(out).map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
    write_files(out, pollster::block_on(s.export(&cm, &model.display().to_string()))?)?;
    let metrics = json!({
        "task": r.task,
        "architecture": cm.config.architecture(),
        "loss": s.evaluations().last().map(|e| e.loss),
        "perplexity": s.evaluations().last().map(|e| e.perplexity),
        "history": s.evaluations(),
        "train_losses": s.losses,
        "train_rows": s.train_count(),
        "eval_rows": s.eval_count(),
        "trainable_parameters": s.objective.trainable,
        "lora_modules": s.objective.lora_modules,
        "train_seconds": s.train_seconds,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "backend": info,
        "load_report": s.load_report,
        "recipe": r,
    });
    std::fs::write(out.join("metrics.json"), serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
    std::fs::write(out.join("recipe.json"), serde_json::to_vec_pretty(&r).unwrap_or_default())?;
    eprintln!("wrote {}", out.display());
    print_json(&metrics);
    Ok(())
}

fn device(arg: &DeviceArg) -> (burn::tensor::Device, backend::BackendInfo) {
    let (d, info) = pollster::block_on(backend::init(arg.device == "cpu"));
    eprintln!("backend: {} ({}){}", info.kind, info.adapter, info.note.as_ref().map(|n| format!(" — {n}")).unwrap_or_default());
    (d, info)
}

fn texts_from(Texts { texts, input }: Texts) -> Result<Vec<String>> {
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

fn load_table(path: &Path) -> Result<data::Table> {
    let bytes = read(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    data::parse_table(&bytes, &name)
}

/// The training files and eval file read and split as the recipe says.
fn training_files(files: &TrainFiles, r: &Recipe) -> Result<data::TrainingData> {
    let tables = files.train.iter().map(|p| load_table(p)).collect::<Result<Vec<_>>>()?;
    let eval_table = files.eval.as_deref().map(load_table).transpose()?;
    data::training_data(&tables.iter().collect::<Vec<_>>(), eval_table.as_ref(), &r.text_column, &r.label_column, r.eval_fraction, r.seed)
}

fn load_examples(path: &Path, text_col: &str, label_col: &str) -> Result<(Vec<Example>, usize)> {
    let table = load_table(path)?;
    let d = data::labeled_examples(&table, text_col, label_col)?;
    if d.skipped_empty_text + d.skipped_empty_label > 0 {
        eprintln!("{}: skipped {} rows with empty text and {} with an empty label", table.name, d.skipped_empty_text, d.skipped_empty_label);
    }
    Ok((d.examples, d.skipped_empty_text + d.skipped_empty_label))
}

fn classifier_from(ckpt: &Checkpoint, dev: &burn::tensor::Device) -> Result<Classifier> {
    if ckpt.config.labels.len() < 2 {
        return Err(Error::Config("this model has no classification head (no id2label); fine-tune it with `burnish train` first".into()));
    }
    let (model, report) = classify::build_classifier(ckpt, &ckpt.config.labels, 0, dev)?;
    if !report.initialized.is_empty() {
        return Err(Error::Weights(format!("the folder lacks trained tensors: {}", report.initialized.join(", "))));
    }
    Ok(Classifier { model, labels: ckpt.config.labels.clone(), pad_id: ckpt.tokenizer.pad_id })
}

/// Linux: the process's resident-memory high-water mark (VmHWM) in bytes.
/// Writes HF folder files under `out` (creating folders as needed).
fn write_files(out: &Path, files: Vec<(String, Vec<u8>)>) -> Result<()> {
    for (name, bytes) in files {
        let path = out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Runs masked-LM adaptation to the end, printing progress and the held-out scores.
fn adapt(ckpt: &mut Checkpoint, train: &[String], eval: &[String], r: &Recipe, epochs: usize, lr: f64, dev: &burn::tensor::Device) -> Result<masked_lm::MlmSession> {
    let mut s = masked_lm::MlmSession::new(ckpt, train, eval, r, epochs, lr, dev)?;
    eprintln!(
        "masked-LM adaptation: {} training and {} held-out texts, {} steps, lr {lr:.2e}, masking {:.0} %",
        s.train_count(),
        s.eval_count(),
        s.total_steps,
        r.mlm_probability * 100.0
    );
    if !s.load_report.initialized.is_empty() {
        eprintln!("initialised (not in the checkpoint): {}", s.load_report.initialized.join(", "));
    }
    let every = (s.total_steps / 20).max(1);
    while !s.is_done() {
        let rep = pollster::block_on(s.step())?;
        if rep.step == 1 {
            if let Some(e) = &s.before {
                eprintln!("before: held-out MLM loss {:.4}, perplexity {:.1}, masked-token accuracy {:.4}", e.loss, e.perplexity, e.masked_accuracy);
            }
        }
        if rep.step % every == 0 || rep.done {
            eprintln!("mlm step {}/{} epoch {} loss {:.4} lr {:.2e}", rep.step, rep.total_steps, rep.epoch, rep.loss, rep.lr);
        }
        if let Some(e) = &rep.eval {
            eprintln!("mlm epoch {}: held-out loss {:.4}, perplexity {:.1}, masked-token accuracy {:.4}", e.epoch, e.loss, e.perplexity, e.masked_accuracy);
        }
    }
    Ok(s)
}

fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed { model, texts, max_len, device: d } => {
            let texts = texts_from(texts)?;
            let mut ckpt = load_checkpoint(&model)?;
            let (dev, _) = device(&d);
            let max_len = max_len.min(ckpt.config.max_position_embeddings);
            let ids: Vec<Vec<u32>> = texts.iter().map(|t| ckpt.tokenizer.encode(t, max_len)).collect::<Result<_>>()?;
            let emb = Embedder::new(&ckpt, &dev)?;
            let vecs = pollster::block_on(emb.embed_ids(&ids, 32, &dev))?;
            for (t, v) in texts.iter().zip(vecs) {
                println!("{}", json!({"text": t, "embedding": v}));
            }
        }
        Command::Train {
            model, files, base, eval_every, strategy, top_layers, freeze_embeddings, gradual_unfreeze, unfreeze_every,
            layer_lr_decay, schedule, grad_accum, early_stopping_patience, early_stopping_metric, lora_rank, lora_alpha,
            lora_dropout, lora_targets, max_grad_norm, mix_weights, mix_temperature, task, domain, domain_column, mlm_epochs,
            mlm_lr, mlm_probability, checkpoint, checkpoint_every, resume, stop_after, out, device: d,
            prompt_column, completion_column, prompt_template, messages_column,
        } => {
            let wall = std::time::Instant::now();
            // The default max length (128) is capped to what the model can take.
            let (mut r, cap_max_len) = base.recipe()?;
            if let Some(v) = eval_every { r.eval_every = v; }
            if let Some(v) = strategy { r.strategy = serde_json::from_value(json!(v)).map_err(|e| Error::Recipe(e.to_string()))?; }
            if let Some(v) = top_layers { r.top_layers = v; }
            if freeze_embeddings { r.freeze_embeddings = true; }
            if gradual_unfreeze { r.gradual_unfreeze = true; }
            if let Some(v) = unfreeze_every { r.unfreeze_every = v; }
            if let Some(v) = layer_lr_decay { r.layer_lr_decay = v; }
            if let Some(v) = schedule { r.schedule = serde_json::from_value(json!(v)).map_err(|e| Error::Recipe(e.to_string()))?; }
            if let Some(v) = grad_accum { r.grad_accum = v; }
            if let Some(v) = early_stopping_patience { r.early_stopping_patience = v; }
            if let Some(v) = early_stopping_metric { r.early_stopping_metric = serde_json::from_value(json!(v)).map_err(|e| Error::Recipe(e.to_string()))?; }
            if let Some(v) = lora_rank { r.lora_rank = v; }
            if let Some(v) = lora_alpha { r.lora_alpha = v; }
            if let Some(v) = lora_dropout { r.lora_dropout = v; }
            if let Some(v) = lora_targets { r.lora_targets = serde_json::from_value(json!(v)).map_err(|e| Error::Recipe(e.to_string()))?; }
            if let Some(v) = max_grad_norm { r.max_grad_norm = v; }
            if let Some(v) = mix_weights { r.mix_weights = v; }
            if let Some(v) = mix_temperature { r.mix_temperature = v; }
            if let Some(v) = task { r.task = v.parse()?; }
            if let Some(v) = domain_column { r.domain_text_column = v; }
            if let Some(v) = mlm_epochs { r.mlm_epochs = v; }
            if let Some(v) = mlm_lr { r.mlm_lr = v; }
            if let Some(v) = mlm_probability { r.mlm_probability = v; }
            if let Some(v) = prompt_column { r.prompt_column = v; }
            if let Some(v) = completion_column { r.completion_column = v; }
            if let Some(v) = prompt_template { r.prompt_template = lm::template_for(&v); }
            if let Some(v) = messages_column { r.messages_column = v; }
            if domain.is_some() && r.mlm_epochs == 0 && r.task != recipe::Task::MaskedLm {
                r.mlm_epochs = 1;
            }
            let resume_bytes = match &resume {
                Some(p) => {
                    let b = read(p)?;
                    let (saved, _, step) = burnish::engine::checkpoint_recipe(&b).map_err(|e| Error::Other(format!("{}: {e}", p.display())))?;
                    eprintln!("resuming {} after step {step} with its recipe", p.display());
                    r = saved;
                    Some(b)
                }
                None => None,
            };
            if r.task.is_decoder() {
                if domain.is_some() {
                    return Err(Error::Other("--domain is for classifier runs".into()));
                }
                let ck = DecoderCheckpoints { checkpoint: checkpoint.clone(), every: checkpoint_every, resume: resume_bytes, stop_after };
                return train_decoder(&model, &files, r, cap_max_len, &out, &d, wall, ck);
            }
            let mut ckpt = load_checkpoint(&model)?;
            if cap_max_len {
                r.max_len = r.max_len.min(ckpt.config.max_position_embeddings);
            }
            r.validate(ckpt.config.max_position_embeddings)?;
            let (dev, info) = device(&d);
            if r.task == recipe::Task::MaskedLm {
                if resume_bytes.is_some() || checkpoint.is_some() {
                    return Err(Error::Other("--checkpoint / --resume are for classification runs; masked-LM adaptation runs in one go".into()));
                }
                let mut texts = Vec::new();
                for p in &files.train {
                    texts.extend(mlm::domain_texts(&load_table(p)?, &r.text_column)?);
                }
                let (train_t, eval_t) = match &files.eval {
                    Some(p) => (texts, mlm::domain_texts(&load_table(p)?, &r.text_column)?),
                    None => mlm::split_texts(&texts, r.eval_fraction, r.seed),
                };
                let session = adapt(&mut ckpt, &train_t, &eval_t, &r, r.epochs, r.lr, &dev)?;
                write_files(&out, pollster::block_on(session.export(&ckpt))?)?;
                let metrics = json!({
                    "task": "masked-lm",
                    "loss": session.evaluations().last().map(|e| e.loss),
                    "perplexity": session.evaluations().last().map(|e| e.perplexity),
                    "masked_accuracy": session.evaluations().last().map(|e| e.masked_accuracy),
                    "history": session.evaluations(),
                    "train_losses": session.losses,
                    "train_texts": session.train_count(),
                    "eval_texts": session.eval_count(),
                    "train_seconds": session.train_seconds,
                    "wall_seconds": wall.elapsed().as_secs_f64(),
                    "backend": info,
                    "load_report": session.load_report,
                    "recipe": r,
                });
                std::fs::write(out.join("metrics.json"), serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
                std::fs::write(out.join("recipe.json"), serde_json::to_vec_pretty(&r).unwrap_or_default())?;
                eprintln!("wrote {}", out.display());
                print_json(&metrics);
                return Ok(());
            }
            let td = training_files(&files, &r)?;
            if td.skipped > 0 {
                eprintln!("skipped {} rows with an empty text or label", td.skipped);
            }
            let (labels, skipped, eval_ex) = (td.labels.clone(), td.skipped, td.eval.clone());
            eprintln!("{} training and {} evaluation examples; labels: {}", td.train_count(), eval_ex.len(), labels.join(", "));
            // Stage one of the two-stage recipe: masked-LM adaptation of the encoder on the
            // domain text; the classifier then starts from the adapted encoder. A resumed run
            // skips it (the checkpoint holds the adapted weights).
            let mut adapted = serde_json::Value::Null;
            if r.mlm_epochs > 0 && resume_bytes.is_none() {
                let p = domain.as_ref().ok_or_else(|| Error::Recipe("mlm_epochs > 0 needs domain text: give --domain FILE".into()))?;
                let texts = mlm::domain_texts(&load_table(p)?, &r.domain_text_column)?;
                let (train_t, eval_t) = mlm::split_texts(&texts, r.eval_fraction, r.seed);
                let stage = adapt(&mut ckpt, &train_t, &eval_t, &r, r.mlm_epochs, r.mlm_lr, &dev)?;
                write_files(&out.join("domain-adapted"), pollster::block_on(stage.export(&ckpt))?)?;
                adapted = json!({
                    "domain_file": p.display().to_string(),
                    "history": stage.evaluations(),
                    "train_losses": stage.losses,
                    "train_texts": stage.train_count(),
                    "eval_texts": stage.eval_count(),
                    "train_seconds": stage.train_seconds,
                    "load_report": stage.load_report,
                    "folder": out.join("domain-adapted").display().to_string(),
                });
                ckpt = pollster::block_on(stage.adapted_checkpoint(&ckpt))?;
                eprintln!("stage 2: fine-tuning the classifier from the adapted encoder");
            } else if domain.is_some() && resume_bytes.is_some() {
                eprintln!("resuming the classifier stage: the domain adaptation is already in the checkpoint's weights");
            }
            let mut session = match &resume_bytes {
                Some(b) => TrainSession::resume_sources(&mut ckpt, &td.sources, &eval_ex, b, &dev)?,
                None => TrainSession::with_sources(&mut ckpt, &td.sources, &eval_ex, labels.clone(), r.clone(), &dev)?,
            };
            if td.sources.len() > 1 {
                for m in session.mixture() {
                    eprintln!(
                        "mixture: {} ({} rows): p = {:.3}, {:.0} examples per epoch ({:.2} passes over its rows)",
                        m.name, m.rows, m.probability, m.per_epoch, m.passes
                    );
                }
            }
            let save = |session: &TrainSession| -> Result<()> {
                if let Some(p) = &checkpoint {
                    // Written next to the target, then renamed: a crash never leaves half a file.
                    let tmp = p.with_extension("partial");
                    std::fs::write(&tmp, pollster::block_on(session.checkpoint())?).map_err(|e| Error::Io(format!("cannot write {}: {e}", tmp.display())))?;
                    std::fs::rename(&tmp, p).map_err(|e| Error::Io(format!("cannot write {}: {e}", p.display())))?;
                }
                Ok(())
            };
            let mut ran = 0usize;
            if !session.load_report.initialized.is_empty() {
                eprintln!("initialised (not in the checkpoint): {}", session.load_report.initialized.join(", "));
            }
            let t = session.trainable();
            eprintln!("training {} of {} parameters: {}", t.trainable_parameters, t.total_parameters, t.training.join(", "));
            let every = (session.total_steps / 20).max(1);
            while !session.is_done() && stop_after.is_none_or(|n| ran < n) {
                let rep = pollster::block_on(session.step())?;
                ran += 1;
                if checkpoint_every > 0 && rep.step % checkpoint_every == 0 {
                    save(&session)?;
                }
                if rep.step % every == 0 || rep.done {
                    eprintln!(
                        "step {}/{} epoch {} loss {:.4} lr {:.2e} {:.1} ex/s",
                        rep.step, rep.total_steps, rep.epoch, rep.loss, rep.lr, rep.examples_per_s
                    );
                }
                if let Some(e) = &rep.early_stop {
                    eprintln!(
                        "{} at step {}: kept the weights of step {} ({:?} {:.4})",
                        if e.early { "early stopping" } else { "end of training" },
                        e.stopped_at, e.best_step, e.metric, e.best_value
                    );
                }
                if let Some(t) = &rep.unfrozen {
                    eprintln!("step {}: now training {} parameters: {}", t.step + 1, t.trainable_parameters, t.training.join(", "));
                }
                if let Some(e) = &rep.epoch_end {
                    if let Some(m) = &e.eval {
                        eprintln!("epoch {}: train loss {:.4}, eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", e.epoch, e.train_loss, m.loss, m.accuracy, m.macro_f1);
                    }
                } else if let Some(m) = &rep.eval {
                    eprintln!("step {}: eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", rep.step, m.loss, m.accuracy, m.macro_f1);
                }
            }
            save(&session)?;
            if !session.is_done() {
                eprintln!("stopped after step {} of {}; continue with --resume", session.step, session.total_steps);
            }
            let final_eval = if eval_ex.is_empty() { None } else { Some(pollster::block_on(session.evaluate())?) };
            write_files(&out, pollster::block_on(session.export(&ckpt, &model.display().to_string()))?)?;
            let metrics = json!({
                "domain_adaptation": adapted,
                "accuracy": final_eval.as_ref().map(|m| m.accuracy),
                "macro_f1": final_eval.as_ref().map(|m| m.macro_f1),
                "loss": final_eval.as_ref().map(|m| m.loss),
                "confusion_matrix": final_eval.as_ref().map(|m| m.confusion.clone()),
                "eval": final_eval,
                "history": session.history,
                "train_losses": session.losses,
                "labels": labels,
                "train_examples": td.train_count(),
                "mixture": if td.sources.len() > 1 { json!({"files": session.mixture(), "drawn": session.drawn}) } else { serde_json::Value::Null },
                "eval_examples": eval_ex.len(),
                "skipped_rows": skipped,
                "wall_seconds": wall.elapsed().as_secs_f64(),
                "train_seconds": session.train_seconds,
                "backend": info,
                "load_report": session.load_report,
                "trainable": session.trainable(),
                "early_stop": session.early_stop,
                "layer_groups": session.layer_groups(),
                "recipe": r,
            });
            std::fs::write(out.join("metrics.json"), serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
            std::fs::write(out.join("recipe.json"), serde_json::to_vec_pretty(&r).unwrap_or_default())?;
            eprintln!("wrote {}", out.display());
            print_json(&metrics);
        }
        Command::Multitask { model, tasks, base, sampling, out, device: d } => {
            let wall = std::time::Instant::now();
            let (mut r, cap_max_len) = base.recipe()?;
            if let Some(v) = sampling { r.task_sampling = if v == "round-robin" { multitask::TaskSampling::RoundRobin } else { multitask::TaskSampling::Proportional }; }
            let mut ckpt = load_checkpoint(&model)?;
            if cap_max_len {
                r.max_len = r.max_len.min(ckpt.config.max_position_embeddings);
            }
            let mut data = Vec::new();
            for spec in &tasks {
                let (name, rest) = match spec.split_once('=') {
                    Some((n, rest)) => (n.to_string(), rest),
                    None => (multitask::task_name(spec), spec.as_str()),
                };
                let mut parts = rest.split(':');
                let file = PathBuf::from(parts.next().unwrap_or_default());
                let text = parts.next().map(String::from).unwrap_or_else(|| r.text_column.clone());
                let label = parts.next().map(String::from).unwrap_or_else(|| r.label_column.clone());
                let table = load_table(&file)?;
                data.push(multitask::task_from_table(&name, &table, None, &text, &label, r.eval_fraction, r.seed)?);
            }
            let (dev, info) = device(&d);
            let mut s = multitask::MultiTaskSession::new(&mut ckpt, &data, r.clone(), &dev)?;
            for t in s.tasks() {
                eprintln!(
                    "task {}: {} training and {} evaluation rows, labels {}, {} batches per epoch, {:.1} % of the steps",
                    t.name, t.train_count, t.eval_count, t.labels.join(", "), t.batches_per_epoch, 100.0 * t.share
                );
            }
            let every = (s.total_steps / 20).max(1);
            while !s.is_done() {
                let rep = pollster::block_on(s.step())?;
                if rep.step % every == 0 || rep.done {
                    eprintln!("step {}/{} epoch {} task {} loss {:.4} lr {:.2e}", rep.step, rep.total_steps, rep.epoch, s.tasks()[rep.detail.task].name, rep.loss, rep.lr);
                }
                if let Some(ms) = &rep.eval {
                    for (t, m) in s.tasks().iter().zip(ms) {
                        eprintln!("epoch {} task {}: eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", rep.epoch, t.name, m.loss, m.accuracy, m.macro_f1);
                    }
                }
            }
            let final_eval = pollster::block_on(s.evaluate())?;
            write_files(&out, pollster::block_on(s.export(&ckpt))?)?;
            let metrics = json!({
                "tasks": s.tasks().iter().zip(&final_eval).map(|(t, m)| json!({
                    "name": t.name, "labels": t.labels, "train_examples": t.train_count, "eval_examples": t.eval_count,
                    "share": t.share, "accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss, "eval": m,
                    "folder": out.join(multitask::task_name(&t.name)).display().to_string(),
                })).collect::<Vec<_>>(),
                "sampling": r.task_sampling,
                "drawn": s.drawn,
                "steps": s.step,
                "history": s.history.iter().map(|h| (h.step, h.eval.clone())).collect::<Vec<_>>(),
                "train_losses": s.losses,
                "wall_seconds": wall.elapsed().as_secs_f64(),
                "train_seconds": s.train_seconds,
                "backend": info,
                "recipe": r,
            });
            std::fs::write(out.join("metrics.json"), serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
            std::fs::write(out.join("recipe.json"), serde_json::to_vec_pretty(&r).unwrap_or_default())?;
            eprintln!("wrote {}", out.display());
            print_json(&metrics);
        }
        Command::FillMask { model, texts, top_k, max_len, device: d } => {
            let texts = texts_from(texts)?;
            let mut ckpt = load_checkpoint(&model)?;
            let (dev, _) = device(&d);
            let (mlm_model, report) = mlm::load_masked_lm(&ckpt, &dev)?;
            if report.initialized.iter().any(|n| n.starts_with("cls.")) {
                eprintln!("warning: {} has no masked-LM head (it was initialised at random): adapt it first with train --task masked-lm", model.display());
            }
            let max_len = max_len.min(ckpt.config.max_position_embeddings);
            for t in texts {
                let masks = pollster::block_on(mlm::fill_mask(&mlm_model, &mut ckpt, &t, top_k, max_len, &dev))?;
                println!("{}", json!({"text": t, "masks": masks}));
            }
        }
        Command::Generate { model, prompt, chat, max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, no_cache, int8, json: as_json, device: d } => {
            use std::io::Write;
            let cm = load_causal(&model)?;
            let (dev, info) = device(&d);
            let (lm, report) = cm.load(seed, &dev)?;
            if !report.initialized.is_empty() {
                eprintln!("warning: {} lacks {} (initialised at random)", model.display(), report.initialized.join(", "));
            }
            let opts = causal::GenerateOptions { max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, use_cache: !no_cache, int8 };
            let ids = if chat {
                let t = cm.chat_template.as_ref().ok_or_else(|| Error::Config(format!("--chat: {} has no chat template (chat_template.jinja or tokenizer_config.json)", model.display())))?;
                cm.tokenizer.encode_plain(&t.render(&[burnish::chat::Message { role: "user".into(), content: prompt.clone() }], true)?)?
            } else {
                cm.tokenizer.encode_all(&prompt)?
            };
            let mut g = causal::Generation::new(&lm, ids.clone(), opts, cm.eos.clone(), cm.config.max_positions())?;
            if int8 && info.kind == "cpu" {
                if let Some(q8) = pollster::block_on(causal::int8_model(&lm))? {
                    g.use_int8(std::sync::Arc::new(q8));
                }
            }
            let t0 = std::time::Instant::now();
            let mut shown = String::new();
            let mut out = std::io::stdout();
            while pollster::block_on(g.step(&lm, &cm.tokenizer))?.is_some() {
                if !as_json {
                    // Print what the decoded text gained; a token may end mid-character (shown
                    // as U+FFFD until the next token completes it).
                    let text = g.text(&cm.tokenizer)?;
                    if !text.ends_with('\u{FFFD}')
                        && let Some(new) = text.strip_prefix(shown.as_str())
                    {
                        print!("{new}");
                        out.flush().ok();
                        shown = text;
                    }
                }
            }
            if !as_json {
                let text = g.text(&cm.tokenizer)?;
                match text.strip_prefix(shown.as_str()) {
                    Some(rest) => print!("{rest}"),
                    None => print!("\n{text}"),
                }
            }
            let seconds = t0.elapsed().as_secs_f64();
            let n = g.generated().len();
            if as_json {
                print_json(&json!({
                    "prompt": prompt, "prompt_ids": ids, "text": g.text(&cm.tokenizer)?, "ids": g.generated(),
                    "stopped": g.stopped, "tokens": n, "seconds": seconds, "tokens_per_s": n as f64 / seconds.max(1e-9),
                    "architecture": cm.config.architecture(), "backend": info, "int8": g.int8(),
                }));
            } else {
                println!();
                eprintln!("{n} tokens in {seconds:.2} s ({:.1} tokens/s), stopped: {:?}", n as f64 / seconds.max(1e-9), g.stopped);
            }
        }
        Command::Check { train, eval, columns, model, max_len } => {
            let d = Recipe::default();
            let text_col = columns.text_column.unwrap_or(d.text_column);
            let label_col = columns.label_column.unwrap_or(d.label_column);
            let table = data::parse_table(&read(&train)?, &train.display().to_string())?;
            let eval_table = match &eval {
                Some(p) => Some(data::parse_table(&read(p)?, &p.display().to_string())?),
                None => None,
            };
            let mut counter = match &model {
                Some(m) => Some(load_checkpoint(m)?.tokenizer.counter()?),
                None => None,
            };
            let count = counter.as_mut().map(|c| c as &mut dyn FnMut(&str) -> Result<usize>);
            let checks = data::check_data(&table, &text_col, &label_col, eval_table.as_ref(), max_len, count)?;
            print_json(&serde_json::to_value(&checks).map_err(|e| Error::Other(e.to_string()))?);
        }
        Command::Eval { model, data: path, columns, max_len, batch_size, prompt_column, completion_column, prompt_template, messages_column, max_new_tokens, device: d } => {
            if is_decoder(&model) {
                let r = Recipe {
                    prompt_column,
                    completion_column,
                    prompt_template: lm::template_for(&prompt_template),
                    messages_column,
                    text_column: columns.text_column.unwrap_or_else(|| "text".into()),
                    max_len,
                    batch_size,
                    ..Recipe::default()
                };
                return eval_decoder(&model, &path, r, max_new_tokens, &d);
            }
            let mut ckpt = load_checkpoint(&model)?;
            let (ex, _) = load_examples(
                &path,
                columns.text_column.as_deref().unwrap_or("text"),
                columns.label_column.as_deref().unwrap_or("label"),
            )?;
            let (dev, _) = device(&d);
            let clf = classifier_from(&ckpt, &dev)?;
            let max_len = max_len.min(ckpt.config.max_position_embeddings);
            let enc = classify::encode_examples(&mut ckpt, &ex, &clf.labels, max_len, &path.display().to_string())?;
            let (m, _) = pollster::block_on(clf.evaluate(&enc, batch_size, &dev))?;
            print_json(&serde_json::to_value(&m).unwrap_or_default());
        }
        Command::Predict { model, texts, max_len, device: d } => {
            let texts = texts_from(texts)?;
            let mut ckpt = load_checkpoint(&model)?;
            let (dev, _) = device(&d);
            let clf = classifier_from(&ckpt, &dev)?;
            let max_len = max_len.min(ckpt.config.max_position_embeddings);
            let ids: Vec<Vec<u32>> = texts.iter().map(|t| ckpt.tokenizer.encode(t, max_len)).collect::<Result<_>>()?;
            let logits = pollster::block_on(clf.logits(&ids, 32, &dev))?;
            for (t, l) in texts.iter().zip(logits) {
                let p = clf.to_prediction(&l);
                println!("{}", json!({"text": t, "label": p.label, "probabilities": p.probabilities, "logits": p.logits}));
            }
        }
        Command::Compare {
            model, files, columns, strategies, epochs, batch_size, max_len, seed, eval_fraction, lr, max_train, title, one, out, device: d,
        } => {
            let mut base = Recipe { epochs, batch_size, max_len, seed, eval_fraction, ..Recipe::default() };
            if let Some(v) = columns.text_column { base.text_column = v; }
            if let Some(v) = columns.label_column { base.label_column = v; }
            let mut ckpt = load_checkpoint(&model)?;
            base.max_len = base.max_len.min(ckpt.config.max_position_embeddings);
            base.validate(ckpt.config.max_position_embeddings)?;
            for name in &strategies {
                recipe::preset_recipe(name, &base, true, 1, 1)?;
            }
            let mut td = training_files(&files, &base)?;
            if let Some(n) = max_train {
                for s in &mut td.sources {
                    if s.examples.len() > n {
                        let drop = 1.0 - n as f64 / s.examples.len() as f64;
                        s.examples = data::stratified_split(&s.examples, drop, base.seed).0;
                    }
                }
            }
            let rows = td.train_count();
            let steps = recipe::planned_steps(&base, rows);
            if let Some(name) = one {
                let (dev, info) = device(&d);
                let mut r = recipe::preset_recipe(&name, &base, lr.is_some(), steps, ckpt.config.num_hidden_layers)?;
                if let Some(v) = lr { r.lr = v; }
                let wall = std::time::Instant::now();
                let mut s = TrainSession::with_sources(&mut ckpt, &td.sources, &td.eval, td.labels.clone(), r.clone(), &dev)?;
                let first = s.trainable();
                while !s.is_done() {
                    let rep = pollster::block_on(s.step())?;
                    if rep.step % (steps / 5).max(1) == 0 || rep.done {
                        eprintln!("{name}: step {}/{} loss {:.4} ({:.2} s/step)", rep.step, rep.total_steps, rep.loss, s.train_seconds / rep.step as f64);
                    }
                }
                let m = pollster::block_on(s.evaluate())?;
                let peak = peak_rss();
                let last = s.trainable();
                let est = classifier::estimate_memory(&ckpt.config, last.total_parameters, last.trainable_parameters, r.batch_size, r.max_len);
                let tail = (s.losses.len() / 10).max(1);
                let preset = recipe::PRESETS.iter().find(|p| p.name == name).map(|p| p.about).unwrap_or_default();
                eprintln!("{name}: accuracy {:.4}, macro-F1 {:.4}, {} of {} parameters train", m.accuracy, m.macro_f1, last.trainable_parameters, last.total_parameters);
                print_json(&json!({
                    "strategy": name,
                    "backend": info,
                    "about": preset,
                    "lr": r.lr,
                    "trainable_parameters": last.trainable_parameters,
                    "trainable_parameters_at_start": first.trainable_parameters,
                    "total_parameters": last.total_parameters,
                    "accuracy": m.accuracy,
                    "macro_f1": m.macro_f1,
                    "eval_loss": m.loss,
                    "final_train_loss": s.losses[s.losses.len() - tail..].iter().sum::<f64>() / tail as f64,
                    "steps": s.step,
                    "seconds_per_step": s.train_seconds / s.step.max(1) as f64,
                    "wall_seconds": wall.elapsed().as_secs_f64(),
                    "peak_rss_bytes": peak,
                    "estimated_training_memory_bytes": est.total,
                    "recipe": r,
                    "losses": s.losses,
                    "history": s.history,
                }));
                return Ok(());
            }
            eprintln!("{} training rows, {} evaluation rows, {} steps per strategy", rows, td.eval.len(), steps);
            let mut results = Vec::new();
            let exe = std::env::current_exe().map_err(|e| Error::Io(format!("cannot find the burnish binary: {e}")))?;
            for name in &strategies {
                let child = std::process::Command::new(&exe)
                    .args(std::env::args_os().skip(1))
                    .args(["--one", name.as_str()])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| Error::Io(format!("cannot run {}: {e}", exe.display())))?;
                if !child.status.success() {
                    return Err(Error::Other(format!("the {name} run failed (see above)")));
                }
                let row: serde_json::Value = serde_json::from_slice(&child.stdout)
                    .map_err(|e| Error::Other(format!("the {name} run printed no result: {e}")))?;
                results.push(row);
            }
            let backend = results.first().map(|r| r["backend"].clone()).unwrap_or_default();
            let title = title.unwrap_or_else(|| files.train.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "));
            let mut md = format!(
                "### {title}\n\nModel `{}`, {rows} training rows, {} evaluation rows, {epochs} epoch(s) × {steps} steps, batch {batch_size}, max length {}, seed {seed}, backend {} ({}).\n\n",
                model.display(), td.eval.len(), base.max_len, backend["kind"].as_str().unwrap_or("?"), backend["adapter"].as_str().unwrap_or("?")
            );
            md += "| strategy | lr | trainable parameters | accuracy | macro-F1 | eval loss | peak RSS (measured) | training memory (estimated) | s/step |\n|---|---|---|---|---|---|---|---|---|\n";
            for r in &results {
                let trainable = r["trainable_parameters"].as_u64().unwrap_or(0);
                let total = r["total_parameters"].as_u64().unwrap_or(1);
                md += &format!(
                    "| {} | {:.0e} | {} ({:.2}%) | {:.4} | {:.4} | {:.4} | {} | {} | {:.2} |\n",
                    r["strategy"].as_str().unwrap_or(""),
                    r["lr"].as_f64().unwrap_or(0.0),
                    trainable,
                    100.0 * trainable as f64 / total as f64,
                    r["accuracy"].as_f64().unwrap_or(f64::NAN),
                    r["macro_f1"].as_f64().unwrap_or(f64::NAN),
                    r["eval_loss"].as_f64().unwrap_or(f64::NAN),
                    r["peak_rss_bytes"].as_u64().map(mib).unwrap_or_else(|| "n/a".into()),
                    mib(r["estimated_training_memory_bytes"].as_u64().unwrap_or(0)),
                    r["seconds_per_step"].as_f64().unwrap_or(f64::NAN),
                );
            }
            md += "\n";
            for p in recipe::PRESETS.iter().filter(|p| strategies.iter().any(|s| s == p.name)) {
                md += &format!("- **{}**: {}\n", p.name, p.about);
            }
            std::fs::create_dir_all(&out).map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
            let all = json!({"title": title, "model": model, "train_rows": rows, "eval_rows": td.eval.len(), "steps": steps, "backend": backend, "base_recipe": base, "results": results});
            std::fs::write(out.join("comparison.json"), serde_json::to_vec_pretty(&all).unwrap_or_default())?;
            std::fs::write(out.join("comparison.md"), &md)?;
            eprintln!("wrote {}", out.display());
            print!("{md}");
        }
        Command::Bench { model, strategy, gen_tokens, batch_size, max_len, steps, warmup, device: d } => {
            let mut v = if is_decoder(&model) {
                let cm = load_causal(&model)?;
                let strategy: recipe::Strategy = serde_json::from_value(json!(strategy)).map_err(|e| Error::Recipe(format!("--strategy: {e}")))?;
                let r = Recipe { task: recipe::Task::CausalLm, strategy, batch_size, max_len, lr: 1e-4, ..Recipe::default() };
                let (dev, info) = device(&d);
                let b = pollster::block_on(lm::bench_decoder(&cm, &r, steps, warmup, gen_tokens, &dev))?;
                let mut v = serde_json::to_value(&b).unwrap_or_default();
                v["architecture"] = json!(cm.config.architecture());
                v["backend"] = serde_json::to_value(&info).unwrap_or_default();
                v
            } else {
                let ckpt = load_checkpoint(&model)?;
                let (dev, info) = device(&d);
                let r = pollster::block_on(burnish::bench::bench_training(&ckpt, batch_size, max_len, steps, warmup, &dev))?;
                // Evaluation throughput too: forward passes only, same shape.
                let f = pollster::block_on(burnish::bench::bench_forward(&ckpt, batch_size, max_len, steps, warmup.max(1), &dev))?;
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["forward"] = serde_json::to_value(&f).unwrap_or_default();
                v["backend"] = serde_json::to_value(&info).unwrap_or_default();
                v
            };
            v["framework"] = json!("burnish");
            v["threads"] = json!(backend::cpu_threads());
            print_json(&v);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
