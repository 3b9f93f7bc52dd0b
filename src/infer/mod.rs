//! Inference: classification, sentence embeddings, fill-mask and generation, and the metrics
//! that score them.

pub mod classify;
pub mod embed;
pub mod fill_mask;
pub mod generate;
pub mod metrics;
