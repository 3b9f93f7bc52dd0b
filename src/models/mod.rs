//! Model architectures, one file each, named after the Hugging Face classes they mirror.

pub mod bert;
pub mod decoder;
pub mod gpt2;
pub mod llama;
