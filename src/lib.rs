//! Burnish: fine-tune small pretrained language models (BERT encoders; GPT-2, Llama and Qwen2
//! decoders) natively and in the browser on WebGPU. Everything that computes lives here as plain Rust; `web.rs` is the thin
//! wasm-bindgen layer for the page's worker and `bin/burnish.rs` the native CLI.

pub mod backend;
pub mod causal;
pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod embed;
pub mod error;
pub mod gguf;
pub mod lm;
pub mod metrics;
pub mod mlm;
pub mod multitask;
pub mod models;
pub mod tokenize;
pub mod train;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod web_backend;
#[cfg(target_arch = "wasm32")]
pub mod web_decoder;

pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use train::{Recipe, TrainSession};
