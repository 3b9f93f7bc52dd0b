//! `burnish bench`: Time full training steps (forward, backward, clip, AdamW) on fixed-size batches; for a

use std::path::PathBuf;
use burnish::backend;
use burnish::error::{Error, Result};
use burnish::recipe::{self, Recipe};
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Causal LMs: full or lora (rank 8 on q and v)
    #[arg(long, default_value = "full")]
    pub strategy: String,
    /// Causal LMs: tokens to generate
    #[arg(long, default_value_t = 32)]
    pub gen_tokens: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let BenchArgs { model, strategy, gen_tokens, batch_size, max_len, steps, warmup, device: d } = args;

    let mut v = if is_decoder(&model) {
        let cm = load_causal(&model)?;
        let strategy: recipe::Strategy = serde_json::from_value(json!(strategy)).map_err(|e| Error::Recipe(format!("--strategy: {e}")))?;
        let r = Recipe { task: recipe::Task::CausalLm, strategy, batch_size, max_len, lr: 1e-4, ..Recipe::default() };
        let (dev, info) = device(&d);
        let b = pollster::block_on(burnish::bench::bench_decoder(&cm, &r, steps, warmup, gen_tokens, &dev))?;
        let mut v = serde_json::to_value(&b).unwrap_or_default();
        v["architecture"] = json!(cm.config.architecture());
        v["backend"] = serde_json::to_value(&info).unwrap_or_default();
        v
    } else {
        let ckpt = load_checkpoint(&model)?;
        let (dev, info) = device(&d);
        let r = pollster::block_on(burnish::bench::bench_training(&ckpt, batch_size, max_len, steps, warmup, &dev))?;
        // Evaluation throughput too: forward passes only, same shape.
        let f = pollster::block_on(burnish::bench::bench_forward(&ckpt, batch_size, max_len, steps, warmup.max(1), &dev))?;
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["forward"] = serde_json::to_value(&f).unwrap_or_default();
        v["backend"] = serde_json::to_value(&info).unwrap_or_default();
        v
    };
    v["framework"] = json!("burnish");
    v["threads"] = json!(backend::cpu_threads());
    print_json(&v);
    Ok(())
}
