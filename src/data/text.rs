//! Text for language models: training rows whose tokens each carry a loss weight (plain text
//! packed into blocks, HF `run_clm`'s `group_texts`; prompt → completion pairs where only the
//! completion is learnt; chat rows in data/chat.rs), prompt templates, seeded held-out splits, and
//! the domain texts of masked-LM adaptation.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::Table;
use crate::error::{Error, Result};
use crate::hf::tokenizer::TextTokenizer;

/// One training row: token ids and a loss weight per token (1: learn to predict it, 0: context
/// or padding).
#[derive(Debug, Clone, PartialEq)]
pub struct LmRow {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Built-in prompt templates for instruction tuning (`{prompt}` is replaced by the prompt).
pub const PROMPT_TEMPLATES: &[(&str, &str)] = &[
    ("question-answering", "Question: {prompt}\nAnswer: "),
    ("summarization", "Summarize the text.\n\n{prompt}\n\nSummary: "),
    ("translation", "Translate to French.\n\n{prompt}\n\nFrench: "),
    ("writing", "{prompt}\n\n"),
];

/// A built-in template by name, or the text itself as a template.
pub fn template_for(name_or_template: &str) -> String {
    PROMPT_TEMPLATES.iter().find(|(n, _)| *n == name_or_template).map_or_else(|| name_or_template.to_string(), |(_, t)| t.to_string())
}

/// Prompt → completion pairs from two columns of a table (JSONL `{"prompt", "completion"}`, CSV,
/// TSV); rows with an empty prompt or completion are refused with their row number.
pub fn pairs_from_table(table: &crate::data::Table, prompt: &str, completion: &str) -> Result<Vec<(String, String)>> {
    let find = |name: &str, what: &str| {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::data(format!(
                "{}: no {what} column \"{name}\"; columns found: {}",
                table.name,
                table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (p, c) = (find(prompt, "prompt")?, find(completion, "completion")?);
    let mut pairs = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let (pt, ct) = (row[p].trim(), row[c].trim());
        if pt.is_empty() || ct.is_empty() {
            return Err(Error::data(format!("{}: row {} has an empty {}", table.name, i + 1, if pt.is_empty() { "prompt" } else { "completion" })));
        }
        pairs.push((pt.to_string(), ct.to_string()));
    }
    if pairs.is_empty() {
        return Err(Error::data(format!("{}: no prompt/completion rows", table.name)));
    }
    Ok(pairs)
}

/// Plain text → blocks of `block_len` tokens: every text tokenized (with the tokenizer's own
/// special tokens), followed by `eos`, all concatenated and cut into blocks; a last partial block
/// is kept when it has at least two tokens. Every token is learnt.
pub fn pack_texts(tok: &TextTokenizer, texts: &[String], block_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if block_len < 2 {
        return Err(Error::Recipe("max_len must be at least 2 tokens for language modelling".into()));
    }
    let mut stream = Vec::new();
    for t in texts {
        stream.extend(tok.encode_all(t)?);
        stream.extend(eos);
    }
    let rows: Vec<LmRow> = stream
        .chunks(block_len)
        .filter(|c| c.len() >= 2)
        .map(|c| LmRow { ids: c.to_vec(), weights: vec![1.0; c.len()] })
        .collect();
    if rows.is_empty() {
        return Err(Error::data("the text has fewer than two tokens: nothing to learn"));
    }
    Ok(rows)
}

/// Prompt → completion pairs: `template` with `{prompt}` filled in, then the completion and
/// `eos`; only the completion and `eos` are learnt. Cut to `max_len` tokens; a pair whose prompt
/// leaves no room for the completion is refused with its row number.
pub fn instruction_rows(tok: &TextTokenizer, pairs: &[(String, String)], template: &str, max_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if !template.contains("{prompt}") {
        return Err(Error::Recipe(format!("the prompt template must contain {{prompt}} (got \"{template}\")")));
    }
    let mut rows = Vec::with_capacity(pairs.len());
    for (i, (prompt, completion)) in pairs.iter().enumerate() {
        let context = tok.encode_all(&template.replace("{prompt}", prompt))?;
        let mut answer = tok.encode_plain(completion)?;
        answer.extend(eos);
        if context.len() + 1 > max_len || answer.is_empty() {
            return Err(Error::data(format!(
                "row {}: the prompt takes {} tokens, leaving no room for the completion within max_len {max_len}",
                i + 1,
                context.len()
            )));
        }
        let mut ids = context.clone();
        ids.extend(&answer);
        ids.truncate(max_len);
        let mut weights = vec![0.0; context.len()];
        weights.resize(ids.len(), 1.0);
        rows.push(LmRow { ids, weights });
    }
    if rows.is_empty() {
        return Err(Error::data("no prompt/completion pairs"));
    }
    Ok(rows)
}

/// The seeded held-out split the page and the CLI share: `fraction` of the rows (at least one,
/// never all) held out. Returns (train, held out, the held-out rows' indices in `rows`).
pub fn split_rows(rows: &[LmRow], fraction: f64, seed: u64) -> (Vec<LmRow>, Vec<LmRow>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_eval = if rows.len() < 2 { 0 } else { ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1) };
    let eval_idx: Vec<usize> = idx[..n_eval].to_vec();
    let eval = eval_idx.iter().map(|&i| rows[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| rows[i].clone()).collect();
    (train, eval, eval_idx)
}

/// Tokens a row teaches (targets with weight > 0, the first token predicts nothing).
pub fn learnt(r: &LmRow) -> f32 {
    r.weights.iter().skip(1).sum()
}

/// The non-empty texts of `column` in a domain-text table (a .txt file's column is "text").
pub fn domain_texts(table: &Table, column: &str) -> Result<Vec<String>> {
    let col = table.columns.iter().position(|c| c == column).ok_or_else(|| {
        Error::data(format!(
            "{}: no text column \"{column}\" for domain adaptation; columns found: {}",
            table.name,
            table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let texts: Vec<String> = table.rows.iter().map(|r| r[col].trim().to_string()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        return Err(Error::data(format!("{}: the column \"{column}\" has no text", table.name)));
    }
    Ok(texts)
}

/// Seeded split of domain texts into training and held-out texts (at least one of each when
/// there are two or more).
pub fn split_texts(texts: &[String], eval_fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    let mut idx: Vec<usize> = (0..texts.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x6d6c_6d5f_7370_6c74));
    let n_eval = if texts.len() < 2 { 0 } else { ((texts.len() as f64 * eval_fraction).round() as usize).clamp(1, texts.len() - 1) };
    let eval = idx[..n_eval].iter().map(|&i| texts[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| texts[i].clone()).collect();
    (train, eval)
}

