//! `burnish embed`: Sentence embeddings (mean-pooled, L2-normalised) as JSON Lines

use std::path::PathBuf;
use burnish::infer::embed::Embedder;
use burnish::error::Result;
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct EmbedArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub texts: Texts,
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    let EmbedArgs { model, texts, max_len, device: d } = args;

    let texts = texts_from(texts)?;
    let mut ckpt = load_checkpoint(&model)?;
    let (dev, _) = device(&d);
    let max_len = max_len.min(ckpt.config.max_tokens());
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| ckpt.tokenizer.encode(t, max_len)).collect::<Result<_>>()?;
    let emb = Embedder::new(&ckpt, &dev)?;
    let vecs = pollster::block_on(emb.embed_ids(&ids, 32, &dev))?;
    for (t, v) in texts.iter().zip(vecs) {
        println!("{}", json!({"text": t, "embedding": v}));
    }
    Ok(())
}
