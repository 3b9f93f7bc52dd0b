//! `burnish eval`: Evaluate a fine-tuned classifier folder on a labelled file; or a causal LM (folder or

use std::path::{Path, PathBuf};
use burnish::error::Result;
use burnish::infer::classify::{self};
use burnish::recipe::{self, Recipe};
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub columns: Columns,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Causal LMs: prompt column of pair data
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    /// Causal LMs: completion (reference) column of pair data
    #[arg(long, default_value = "completion")]
    pub completion_column: String,
    /// Causal LMs: prompt template ({prompt} marks the prompt), or question-answering,
    /// summarization, translation, writing
    #[arg(long, default_value = "{prompt}")]
    pub prompt_template: String,
    /// Causal LMs: column of conversations, rendered with the model's chat template (the
    /// last assistant turn is the reference)
    #[arg(long, default_value = "messages")]
    pub messages_column: String,
    /// Causal LMs: most tokens of each greedy answer scored against its reference (0: no
    /// generation, perplexity only)
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let EvalArgs { model, data: path, columns, max_len, batch_size, prompt_column, completion_column, prompt_template, messages_column, max_new_tokens, device: d } = args;

    if is_decoder(&model) {
        let r = Recipe {
            prompt_column,
            completion_column,
            prompt_template: burnish::data::text::template_for(&prompt_template),
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
    let max_len = max_len.min(ckpt.config.max_tokens());
    let enc = classify::encode_examples(&mut ckpt, &ex, &clf.labels, max_len, &path.display().to_string())?;
    let (m, _) = pollster::block_on(clf.evaluate(&enc, batch_size, &dev))?;
    print_json(&serde_json::to_value(&m).unwrap_or_default());
    Ok(())
}

/// `eval` of a causal LM: next-token loss and perplexity over plain text (packed into max_len
/// blocks), over the completions of prompt/completion pairs, or over the assistant turns of
/// conversations; for pairs and conversations, greedy answers scored against the references
/// (exact match, ROUGE-L, chrF).
pub fn eval_decoder(model: &Path, path: &Path, mut r: Recipe, max_new_tokens: usize, d: &DeviceArg) -> Result<()> {
    let cm = load_causal(model)?;
    let table = load_table(path)?;
    r.max_len = r.max_len.min(cm.config.max_positions());
    let chat = table.columns.contains(&r.messages_column);
    let pairs = table.columns.contains(&r.prompt_column) && table.columns.contains(&r.completion_column);
    r.task = if chat || pairs { recipe::Task::Instruct } else { recipe::Task::CausalLm };
    let (rows, prompts) = burnish::data::decoder::rows_for_task(&cm, &table, &r)?;
    let (dev, info) = device(d);
    let (m, _) = cm.load(0, &dev)?;
    let score = pollster::block_on(burnish::engine::causal_lm::score(&m, &rows, cm.eos.first().copied().unwrap_or(0), r.batch_size, &dev, 0, 0))?;
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
            let ids = burnish::data::decoder::prompt_ids(&cm.tokenizer, &p.prompt, p.chat)?;
            let opts = burnish::infer::generate::GenerateOptions { max_new_tokens, ..Default::default() };
            let mut g = burnish::infer::generate::Generation::new(&m, ids, opts, cm.eos.clone(), cm.config.max_positions())?;
            while pollster::block_on(g.step(&m, &cm.tokenizer))?.is_some() {}
            let answer = g.text(&cm.tokenizer)?.trim().to_string();
            predictions.push(json!({
                "prompt": p.prompt,
                "reference": reference,
                "prediction": answer,
                "exact_match": burnish::infer::metrics::exact_match(&answer, &reference),
                "rouge_l": burnish::infer::metrics::rouge_l(&answer, &reference),
            }));
            scored.push((answer, reference));
        }
        out["generation"] = serde_json::to_value(burnish::infer::metrics::generation_metrics(&scored)).unwrap_or_default();
        out["predictions"] = json!(predictions);
    }
    print_json(&out);
    Ok(())
}