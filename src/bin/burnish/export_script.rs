//! `burnish export-script`: the recipe as a Hugging Face Trainer + PEFT script (train.py) that
//! `python train.py` or `accelerate launch train.py` runs on one or many GPUs.

use std::path::PathBuf;

use burnish::engine::script::{ScriptInputs, training_script};
use burnish::error::{Error, Result};
use clap::Args;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct ExportScriptArgs {
    /// The model folder (read for its architecture and positions)
    #[arg(long)]
    pub model: PathBuf,
    /// What the script loads as the model (a Hub id, e.g. sentence-transformers/all-MiniLM-L6-v2;
    /// default: the --model folder)
    #[arg(long)]
    pub model_id: Option<String>,
    #[command(flatten)]
    pub files: TrainFiles,
    #[command(flatten)]
    pub base: RecipeArgs,
    #[command(flatten)]
    pub tuning: RecipeFlags,
    /// Where to write the script (e.g. train.py)
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportScriptArgs) -> Result<()> {
    let (r, cap_max_len) = args.base.recipe()?;
    let mut r = args.tuning.apply(r)?;
    let ckpt = load_checkpoint(&args.model)?;
    if cap_max_len {
        r.max_len = r.max_len.min(ckpt.config.max_tokens());
    }
    r.validate(ckpt.config.max_tokens())?;
    let model = args.model_id.unwrap_or_else(|| args.model.display().to_string());
    let train: Vec<String> = args.files.train.iter().map(|p| p.display().to_string()).collect();
    let eval = args.files.eval.as_ref().map(|p| p.display().to_string());
    let text = training_script(&r, &ScriptInputs { model: &model, arch: ckpt.config.arch, train_files: &train, eval_file: eval.as_deref() })?;
    std::fs::write(&args.out, text).map_err(|e| Error::Other(format!("cannot write {}: {e}", args.out.display())))?;
    eprintln!("wrote {}: run it with `python {0}`, or `accelerate launch {0}` on several GPUs", args.out.display());
    Ok(())
}
