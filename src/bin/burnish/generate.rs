//! `burnish generate`: Continue a prompt with a causal LM (GPT-2, Llama/SmolLM2, Qwen2 folder): the text is

use std::path::PathBuf;
use burnish::error::{Error, Result};
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct GenerateArgs {
    /// Folder with config.json, tokenizer.json and model.safetensors (or its shards + index),
    /// or a .gguf file (Llama / Qwen2 architectures)
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub prompt: String,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// 0 is greedy decoding
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Sample among the k most likely tokens (0: all)
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Sample among the most likely tokens covering this probability
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the text contains this (repeatable)
    #[arg(long)]
    pub stop: Vec<String>,
    /// Recompute every position each step instead of reusing the key/value cache
    #[arg(long)]
    pub no_cache: bool,
    /// Generate on 8-bit weights (Llama, Qwen2; on the CPU): faster, with logits within the
    /// weights' rounding of the f32 model's (the page's default on the CPU)
    #[arg(long)]
    pub int8: bool,
    /// Put the prompt in the model's chat template as the user's message
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object (prompt, text, token ids, stop reason, tokens/s) instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let GenerateArgs { model, prompt, chat, max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, no_cache, int8, json: as_json, device: d } = args;

    use std::io::Write;
    let cm = load_causal(&model)?;
    let (dev, info) = device(&d);
    let (lm, report) = cm.load(seed, &dev)?;
    if !report.initialized.is_empty() {
        eprintln!("warning: {} lacks {} (initialised at random)", model.display(), report.initialized.join(", "));
    }
    let opts = burnish::infer::generate::GenerateOptions { max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, use_cache: !no_cache, int8 };
    let ids = if chat {
        let t = cm.chat_template.as_ref().ok_or_else(|| Error::Config(format!("--chat: {} has no chat template (chat_template.jinja or tokenizer_config.json)", model.display())))?;
        cm.tokenizer.encode_plain(&t.render(&[burnish::hf::chat_template::Message { role: "user".into(), content: prompt.clone() }], true)?)?
    } else {
        cm.tokenizer.encode_all(&prompt)?
    };
    let mut g = burnish::infer::generate::Generation::new(&lm, ids.clone(), opts, cm.eos.clone(), cm.config.max_positions())?;
    if int8 && info.kind == "cpu" {
        if let Some(q8) = pollster::block_on(burnish::infer::generate::int8_model(&lm))? {
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
    Ok(())
}
