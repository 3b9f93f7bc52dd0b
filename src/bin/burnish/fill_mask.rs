//! `burnish fill-mask`: Fill in [MASK] tokens (masked-LM head; e.g. a domain-adapted folder) as JSON Lines

use std::path::PathBuf;
use burnish::error::Result;
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct FillMaskArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub texts: Texts,
    /// Candidates per mask
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: FillMaskArgs) -> Result<()> {
    let FillMaskArgs { model, texts, top_k, max_len, device: d } = args;

    let texts = texts_from(texts)?;
    let mut ckpt = load_checkpoint(&model)?;
    let (dev, _) = device(&d);
    let (mlm_model, report) = burnish::infer::fill_mask::load_masked_lm(&ckpt, &dev)?;
    if report.initialized.iter().any(|n| n.starts_with("cls.")) {
        eprintln!("warning: {} has no masked-LM head (it was initialised at random): adapt it first with train --task masked-lm", model.display());
    }
    let max_len = max_len.min(ckpt.config.max_tokens());
    for t in texts {
        let masks = pollster::block_on(burnish::infer::fill_mask::fill_mask(&mlm_model, &mut ckpt, &t, top_k, max_len, &dev))?;
        println!("{}", json!({"text": t, "masks": masks}));
    }
    Ok(())
}
