//! Burnish: fine-tune small pretrained language models (BERT encoders; GPT-2, Llama and Qwen2
//! decoders) natively and in the browser on WebGPU. Everything that computes lives here as plain Rust; `web.rs` is the thin
//! wasm-bindgen layer for the page's worker and `bin/burnish.rs` the native CLI.

pub mod backend;
pub mod bench;
pub mod causal;
pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod embed;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod infer;
pub mod lm;
pub mod metrics;
pub mod mlm;
pub mod models;
pub mod recipe;
pub mod tokenize;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod web_backend;
#[cfg(target_arch = "wasm32")]
pub mod web_decoder;

pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use engine::classifier::TrainSession;
pub use recipe::Recipe;
