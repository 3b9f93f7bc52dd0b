//! `burnish predict`: Predict labels as JSON Lines {text, label, probabilities, logits}

use std::path::PathBuf;
use burnish::error::Result;
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub texts: Texts,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let PredictArgs { model, texts, max_len, device: d } = args;

    let texts = texts_from(texts)?;
    let mut ckpt = load_checkpoint(&model)?;
    let (dev, _) = device(&d);
    let clf = classifier_from(&ckpt, &dev)?;
    let max_len = max_len.min(ckpt.config.max_tokens());
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| ckpt.tokenizer.encode(t, max_len)).collect::<Result<_>>()?;
    let logits = pollster::block_on(clf.logits(&ids, 32, &dev))?;
    for (t, l) in texts.iter().zip(logits) {
        let p = clf.to_prediction(&l);
        println!("{}", json!({"text": t, "label": p.label, "probabilities": p.probabilities, "logits": p.logits}));
    }
    Ok(())
}
