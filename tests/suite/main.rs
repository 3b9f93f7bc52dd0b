//! Native integration tests, compiled into one binary (linking burn per test file is slow).
//! Fixtures come from tests/fixtures/make_reference.py (transformers reference outputs); the
//! MiniLM model and data from scripts/fetch_assets.py.

mod causal;
mod chat;
mod cli;
mod common;

mod data_parsing;
mod error_codes;
mod encoders;
mod engine;
mod fidelity;
mod fuzz;
mod gguf;
mod hostile;
mod int8;
mod lm;
mod mixing;
mod mlm;
mod multitask;
mod parquet;
mod resume;
mod strategies;
mod text_metrics;
mod training;
