//! Chat data: conversations `{"messages": [{"role", "content"}, …]}` rendered with the model's
//! own chat template (hf/chat_template.rs), learning only the assistant's turns; checked against
//! transformers' output in the tests.

use crate::data::text::LmRow;
use crate::error::{Error, Result};
use crate::hf::chat_template::{ChatTemplate, Message};
use crate::hf::tokenizer::TextTokenizer;

/// Conversations from a table's `column` (a JSON array of `{"role", "content"}` per row; JSONL
/// rows keep it as JSON text). Every conversation needs an assistant turn to learn from.
pub fn conversations_from_table(table: &crate::data::Table, column: &str) -> Result<Vec<Vec<Message>>> {
    let c = table.columns.iter().position(|x| x == column).ok_or_else(|| Error::data(format!("{}: no \"{column}\" column", table.name)))?;
    let mut out = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let messages: Vec<Message> = serde_json::from_str(&row[c]).map_err(|e| {
            Error::data(format!("{}: row {}: \"{column}\" must be a list of {{\"role\": ..., \"content\": ...}} objects ({e})", table.name, i + 1))
        })?;
        if let Some(m) = messages.iter().find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant" | "tool")) {
            return Err(Error::data(format!("{}: row {}: unknown role \"{}\" (system, user, assistant or tool)", table.name, i + 1, m.role)));
        }
        if !messages.iter().any(|m| m.role == "assistant") {
            return Err(Error::data(format!("{}: row {}: the conversation has no assistant turn to learn from", table.name, i + 1)));
        }
        out.push(messages);
    }
    if out.is_empty() {
        return Err(Error::data(format!("{}: no conversations", table.name)));
    }
    Ok(out)
}

/// Training rows from conversations: the conversation rendered with the template, every
/// assistant turn learnt (from after the template's assistant opening to the end of the turn,
/// its end-of-turn token included) and everything else weighing 0. Each assistant turn's
/// context is the conversation so far rendered with `add_generation_prompt`, so the model learns
/// exactly what it will be asked to continue. Cut to `max_len` tokens; a conversation whose first
/// assistant turn starts beyond `max_len` is refused with its row number.
pub fn chat_rows(tok: &TextTokenizer, template: &ChatTemplate, conversations: &[Vec<Message>], max_len: usize) -> Result<Vec<LmRow>> {
    let mut rows = Vec::with_capacity(conversations.len());
    for (row, messages) in conversations.iter().enumerate() {
        let (mut ids, mut weights, mut done) = (Vec::new(), Vec::new(), String::new());
        for (i, m) in messages.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            let context = template.render(&messages[..i], true)?;
            let full = template.render(&messages[..=i], false)?;
            let (Some(before), Some(answer)) = (context.strip_prefix(done.as_str()), full.strip_prefix(context.as_str())) else {
                return Err(Error::data(format!(
                    "row {}: this chat template does not render the conversation as a growing text (turn {} changes what came before), so its assistant turns cannot be masked",
                    row + 1,
                    i + 1
                )));
            };
            let c = tok.encode_plain(before)?;
            let a = tok.encode_plain(answer)?;
            weights.extend(std::iter::repeat_n(0.0, c.len()));
            weights.extend(std::iter::repeat_n(1.0, a.len()));
            ids.extend(c);
            ids.extend(a);
            done = full;
        }
        if weights.iter().take(max_len).all(|&w| w == 0.0) {
            return Err(Error::data(format!("row {}: the first assistant turn starts after max_len {max_len} tokens: nothing to learn", row + 1)));
        }
        ids.truncate(max_len);
        weights.truncate(max_len);
        rows.push(LmRow { ids, weights });
    }
    if rows.is_empty() {
        return Err(Error::data("no conversations"));
    }
    Ok(rows)
}

/// The text a model is asked to continue for `messages` (every turn so far, then the opening of
/// the assistant's turn), and the last assistant turn as the reference answer when the
/// conversation ends with one.
pub fn prompt_and_reference(template: &ChatTemplate, messages: &[Message]) -> Result<(String, Option<String>)> {
    match messages.split_last() {
        Some((last, before)) if last.role == "assistant" => Ok((template.render(before, true)?, Some(last.content.clone()))),
        _ => Ok((template.render(messages, true)?, None)),
    }
}
