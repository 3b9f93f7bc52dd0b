//! Inference: classification, sentence embeddings, fill-mask and generation, and the metrics
//! that score them.

pub mod classify;
