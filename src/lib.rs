//! Burnish: fine-tune small pretrained language models (BERT encoders; GPT-2, Llama and Qwen2
//! decoders) natively and in the browser on WebGPU. Everything that computes lives here as plain
//! Rust, in layers that only import the layers below them (docs/architecture.md):
//!
//! - `error`, `recipe`, `backend`: errors, the typed recipe and its schema, devices and reads;
//! - `hf`: Hugging Face's files in: config.json, tokenizer.json, safetensors, GGUF, chat templates;
//! - `models`: BERT, GPT-2, Llama/Qwen2, LoRA, 8-bit weights, and their export in HF's formats;
//! - `data`: tables (CSV/TSV/JSONL/TXT), checks, splits, language-model and chat rows;
//! - `infer`: classification, embeddings, fill-mask, generation, metrics;
//! - `engine`: the one training loop and its objectives; `bench`: benchmarks;
//! - `web`: the wasm boundary for the page's worker; `bin/burnish`: the native CLI.

pub mod backend;
pub mod bench;
pub mod data;
pub mod engine;
pub mod error;
pub mod hf;
pub mod infer;
pub mod models;
pub mod recipe;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use engine::classifier::TrainSession;
pub use error::{Error, Result};
pub use hf::checkpoint::Checkpoint;
pub use recipe::Recipe;
