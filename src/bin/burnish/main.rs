//! `burnish` native CLI: JSON on stdout, human progress on stderr. A thin shell over the
//! library: it reads files, hands bytes over, prints results. One module per command; the flags
//! several commands share are in flags.rs, file reading and writing in io.rs.

mod bench;
mod check;
mod compare;
mod embed;
mod eval;
mod export_gguf;
mod export_script;
mod fill_mask;
mod flags;
mod generate;
mod io;
mod multitask;
mod predict;
mod quantize;
mod runner;
mod train;

use std::process::ExitCode;

use burnish::error::Result;
use clap::{Parser, Subcommand};

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

#[derive(Subcommand)]
enum Command {
    /// Sentence embeddings (mean-pooled, L2-normalised) as JSON Lines
    Embed(embed::EmbedArgs),
    /// Fine-tune a sequence classifier and write an HF folder + metrics.json
    Train(train::TrainArgs),
    /// Multi-task fine-tuning: several labelled files (one task each, with its own labels and
    /// head) share one encoder; writes one HF folder per task + metrics.json
    Multitask(multitask::MultitaskArgs),
    /// Fill in [MASK] tokens (masked-LM head; e.g. a domain-adapted folder) as JSON Lines
    /// {text, masks: [{position, candidates: [{token, id, score}]}]}
    FillMask(fill_mask::FillMaskArgs),
    /// Continue a prompt with a causal LM (GPT-2, Llama/SmolLM2, Qwen2 folder): the text is
    /// streamed to stdout as it is generated; a JSON summary goes to stderr with --json
    Generate(generate::GenerateArgs),
    /// Data checks (the page's): empty rows, duplicates, label counts, rare labels, token lengths
    Check(check::CheckArgs),
    /// Evaluate a fine-tuned classifier folder on a labelled file; or a causal LM (folder or
    /// .gguf): perplexity on plain text or on the completions of prompt/completion pairs, and for
    /// pairs the greedy answers' exact match, ROUGE-L and chrF against the completions
    Eval(eval::EvalArgs),
    /// Predict labels as JSON Lines {text, label, probabilities, logits}
    Predict(predict::PredictArgs),
    /// Run several strategies (presets) with the same model, data and budget; write a table
    /// (comparison.md) and the full results (comparison.json) to --out
    Compare(compare::CompareArgs),
    /// Write the recipe as a Hugging Face Trainer + PEFT script (train.py) for `python` or
    /// `accelerate launch` on bigger hardware (text classification)
    ExportScript(export_script::ExportScriptArgs),
    /// Write a decoder folder (Llama/SmolLM2, Qwen2, Qwen3) as one GGUF file (f16, q8_0 or f32)
    /// for llama.cpp, Ollama or LM Studio, with its tokenizer and chat template
    ExportGguf(export_gguf::ExportGgufArgs),
    /// A fine-tuned classifier with int8 weights (a quarter of the size), and its accuracy on
    /// --eval against the f32 weights
    Quantize(quantize::QuantizeArgs),
    /// Time full training steps (forward, backward, clip, AdamW) on fixed-size batches; for a
    /// causal LM (folder or .gguf) also greedy generation with the KV cache (tokens/s)
    Bench(bench::BenchArgs),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed(a) => embed::run(a),
        Command::Train(a) => train::run(a),
        Command::Multitask(a) => multitask::run(a),
        Command::FillMask(a) => fill_mask::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Check(a) => check::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Bench(a) => bench::run(a),
        Command::ExportScript(a) => export_script::run(a),
        Command::ExportGguf(a) => export_gguf::run(a),
        Command::Quantize(a) => quantize::run(a),
    }
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
