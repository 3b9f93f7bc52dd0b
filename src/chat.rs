//! Chat data: conversations `{"messages": [{"role", "content"}, …]}` rendered with the model's
//! own chat template (tokenizer_config.json's `chat_template`, a `chat_template.jinja` file, or a
//! GGUF's `tokenizer.chat_template`), learning only the assistant's turns. Templates are Jinja;
//! minijinja renders them in the environment transformers uses for `apply_chat_template`
//! (trim_blocks, lstrip_blocks, loop controls, `tojson`, Python string methods,
//! `raise_exception`), checked against transformers' output in the tests.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value, context};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lm::LmRow;
use crate::tokenize::TextTokenizer;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A model's chat template with the special tokens it refers to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`; a template that does not parse is refused with minijinja's reason.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| Error::Config(format!("chat template syntax: {e}")))?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_string()).map_err(|e| Error::Config(format!("the chat template does not parse: {e}")))?;
        Ok(ChatTemplate { env, source: source.to_string(), bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The template from a tokenizer_config.json (`chat_template` as a string, or the "default"
    /// entry of a list of named templates) with its `bos_token` / `eos_token`; `Ok(None)` when it
    /// has no template.
    pub fn from_tokenizer_config(bytes: &[u8]) -> Result<Option<Self>> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("tokenizer_config.json: {e}")))?;
        let (bos, eos) = special_tokens(bytes)?;
        let source = match &v["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .or(list.first())
                .and_then(|t| t["template"].as_str().map(String::from)),
            _ => None,
        };
        source.map(|s| ChatTemplate::new(&s, &bos, &eos)).transpose()
    }

    /// The conversation as the model sees it; with `add_generation_prompt`, followed by the
    /// opening of an assistant turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let t = self.env.get_template("chat").map_err(|e| Error::Config(format!("chat template: {e}")))?;
        t.render(context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone(),
            eos_token => self.eos_token.clone(),
        })
        .map_err(|e| Error::data(format!("the chat template failed on this conversation: {e}")))
    }
}

/// tokenizer_config.json's `bos_token` and `eos_token` (a string, or `{"content": ...}`; empty
/// when absent).
pub fn special_tokens(tokenizer_config: &[u8]) -> Result<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(tokenizer_config).map_err(|e| Error::Config(format!("tokenizer_config.json: {e}")))?;
    let token = |key: &str| match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    Ok((token("bos_token"), token("eos_token")))
}

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
