//! Chat templates: a model's Jinja `chat_template` (tokenizer_config.json, a
//! `chat_template.jinja` file, or a GGUF's `tokenizer.chat_template`), rendered by minijinja in
//! the environment transformers uses for `apply_chat_template` (trim_blocks, lstrip_blocks, loop
//! controls, `tojson`, Python string methods, `raise_exception`).

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value, context};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The work one render may do (minijinja's fuel), and how deep macros and includes may nest.
pub const TEMPLATE_FUEL: u64 = 5_000_000;
pub const TEMPLATE_RECURSION: usize = 64;

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
        // A template is untrusted code: rendering one conversation may spend at most
        // `TEMPLATE_FUEL` (instructions, and data at ~64 bytes a unit) and nest
        // `TEMPLATE_RECURSION` calls deep; real templates use a few thousand units a message.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION);
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
        .map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => Error::data(format!(
                "the chat template did not finish: it used up its budget of {TEMPLATE_FUEL} steps on one conversation of {} messages (does it loop without end?)",
                messages.len()
            )),
            _ => Error::data(format!("the chat template failed on this conversation: {e}")),
        })
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

