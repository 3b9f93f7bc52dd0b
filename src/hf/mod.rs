//! Hugging Face's files, read as untrusted input: `config.json`, `tokenizer.json` and
//! `tokenizer_config.json`, `model.safetensors` (and shard indexes), GGUF, and chat templates.

pub mod chat_template;
pub mod checkpoint;
pub mod config;
pub mod gguf;
pub mod gguf_write;
pub mod tokenizer;
pub mod weights;
