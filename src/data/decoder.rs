//! The rows of a decoder run: for the recipe's task, training rows from a table (plain text
//! packed into blocks, prompt → completion pairs, or chat conversations in the model's template)
//! and the prompts the page and `burnish eval` ask the model to continue.

use serde::Serialize;

use crate::data::text::{LmRow, instruction_rows, pack_texts, pairs_from_table};
use crate::error::{Error, Result};
use crate::hf::tokenizer::TextTokenizer;
use crate::models::causal::CausalModel;
use crate::recipe::Recipe;

/// A prompt the page (and `burnish eval`) asks the model to continue, with the answer the data
/// gives for it, if any.
#[derive(Debug, Clone, Serialize)]
pub struct EvalPrompt {
    /// What the model is given (the prompt in its template, or the conversation so far in the
    /// chat template).
    pub prompt: String,
    pub reference: Option<String>,
    /// The prompt is a chat-template rendering: it carries its own special tokens, so it is
    /// tokenized without adding any (see `prompt_ids`).
    pub chat: bool,
}

/// Token ids of a prompt to continue: a chat rendering as it is, anything else with the
/// tokenizer's own special tokens (a BOS where the model expects one), as the training rows were.
pub fn prompt_ids(tok: &TextTokenizer, prompt: &str, chat: bool) -> Result<Vec<u32>> {
    if chat { tok.encode_plain(prompt) } else { tok.encode_all(prompt) }
}

/// Training rows for the recipe's task from a table, and one prompt per row where rows are
/// examples (instruction tuning), or per text (plain text: its first words):
/// - `causal-lm`: the text column packed into `max_len` blocks;
/// - `instruct` with a `messages_column` in the data: conversations in the model's chat
///   template, assistant turns learnt;
/// - `instruct` otherwise: prompt → completion pairs in the prompt template.
pub fn rows_for_task(cm: &CausalModel, table: &crate::data::Table, r: &Recipe) -> Result<(Vec<LmRow>, Vec<EvalPrompt>)> {
    let eos = cm.eos.first().copied();
    match r.task.name() {
        "instruct" if table.columns.contains(&r.messages_column) => {
            let template = cm.chat_template.as_ref().ok_or_else(|| {
                Error::data(format!(
                    "{} holds conversations (\"{}\") but this model has no chat template: give its tokenizer_config.json, or use prompt/completion columns",
                    table.name, r.messages_column
                ))
            })?;
            let conversations = crate::data::chat::conversations_from_table(table, &r.messages_column)?;
            let rows = crate::data::chat::chat_rows(&cm.tokenizer, template, &conversations, r.max_len)?;
            let prompts = conversations
                .iter()
                .map(|c| crate::data::chat::prompt_and_reference(template, c).map(|(prompt, reference)| EvalPrompt { prompt, reference, chat: true }))
                .collect::<Result<_>>()?;
            Ok((rows, prompts))
        }
        "instruct" => {
            let pairs = pairs_from_table(table, &r.prompt_column, &r.completion_column)?;
            let rows = instruction_rows(&cm.tokenizer, &pairs, &r.prompt_template, r.max_len, eos)?;
            let prompts = pairs.into_iter().map(|(p, c)| EvalPrompt { prompt: r.prompt_template.replace("{prompt}", &p), reference: Some(c), chat: false }).collect();
            Ok((rows, prompts))
        }
        "causal-lm" => {
            let texts = crate::data::text::domain_texts(table, &r.text_column)?;
            let rows = pack_texts(&cm.tokenizer, &texts, r.max_len, eos)?;
            let prompts = texts.iter().map(|t| EvalPrompt { prompt: t.split_whitespace().take(6).collect::<Vec<_>>().join(" "), reference: None, chat: false }).collect();
            Ok((rows, prompts))
        }
        other => Err(Error::Recipe(format!("task \"{other}\" is not a causal-LM task (causal-lm or instruct)"))),
    }
}

