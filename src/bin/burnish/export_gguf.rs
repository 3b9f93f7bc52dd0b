//! `burnish export-gguf`: a decoder folder (e.g. what `burnish train --task instruct` wrote) as one
//! GGUF file for llama.cpp, Ollama or LM Studio, in F32, F16 or Q8_0.

use std::path::PathBuf;

use burnish::error::{Error, Result};
use burnish::hf::gguf_write::{GgufType, hf_to_gguf};
use clap::Args;

use super::io::*;

#[derive(Args)]
pub struct ExportGgufArgs {
    /// The decoder folder (config.json, tokenizer.json, model.safetensors or its shards;
    /// tokenizer_config.json / chat_template.jinja for the chat template)
    #[arg(long)]
    pub model: PathBuf,
    /// The weights' encoding: f16, q8_0 (a quarter of f32) or f32
    #[arg(long = "type", default_value = "q8_0")]
    pub ty: String,
    /// general.name in the file (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,
    /// The .gguf file to write
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportGgufArgs) -> Result<()> {
    let ty = GgufType::parse(&args.ty)?;
    // Loading it first checks the folder as every other command does.
    load_causal(&args.model)?;
    let dir = &args.model;
    let index = dir.join("model.safetensors.index.json");
    let weights = if index.exists() {
        burnish::models::causal::shard_files(&read(&index)?)?.iter().map(|f| read(&dir.join(f))).collect::<Result<Vec<_>>>()?
    } else {
        vec![read(&dir.join("model.safetensors"))?]
    };
    let optional = |name: &str| -> Result<Option<Vec<u8>>> { if dir.join(name).exists() { read(&dir.join(name)).map(Some) } else { Ok(None) } };
    let template = optional("chat_template.jinja")?.map(|b| String::from_utf8_lossy(&b).into_owned());
    let name = args.name.clone().unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()));
    let refs: Vec<&[u8]> = weights.iter().map(Vec::as_slice).collect();
    let bytes = hf_to_gguf(&read(&dir.join("config.json"))?, &read(&dir.join("tokenizer.json"))?, &refs, optional("tokenizer_config.json")?.as_deref(), template.as_deref(), ty, &name)?;
    std::fs::write(&args.out, &bytes).map_err(|e| Error::Io(format!("cannot write {}: {e}", args.out.display())))?;
    let f32_bytes: usize = weights.iter().map(Vec::len).sum();
    eprintln!("wrote {} ({} bytes; the safetensors weights were {} bytes)", args.out.display(), bytes.len(), f32_bytes);
    Ok(())
}
