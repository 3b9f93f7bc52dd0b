//! `burnish quantize`: a fine-tuned classifier folder with int8 weights (a quarter of the size),
//! and its accuracy on a labelled file against the f32 weights.

use std::path::PathBuf;

use burnish::error::Result;
use burnish::infer::classify;
use clap::Args;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct QuantizeArgs {
    /// A fine-tuned classifier folder (what `burnish train` wrote)
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data both models are scored on
    #[arg(long)]
    pub eval: PathBuf,
    #[command(flatten)]
    pub columns: Columns,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Where the int8 folder goes
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: QuantizeArgs) -> Result<()> {
    let mut ckpt = load_checkpoint(&args.model)?;
    let (ex, _) = load_examples(&args.eval, args.columns.text_column.as_deref().unwrap_or("text"), args.columns.label_column.as_deref().unwrap_or("label"))?;
    let (dev, _) = device(&args.device);
    let clf = classifier_from(&ckpt, &dev)?;
    let max_len = args.max_len.min(ckpt.config.max_tokens());
    let enc = classify::encode_examples(&mut ckpt, &ex, &clf.labels, max_len, &args.eval.display().to_string())?;
    let (weights, report) = pollster::block_on(classify::int8_comparison(&ckpt, &clf, &enc, args.batch_size, &dev))?;
    let mut files = vec![("config.json".to_string(), ckpt.classifier_config(&clf.labels)?)];
    files.extend(ckpt.tokenizer_files());
    files.push(("model.safetensors".to_string(), weights));
    let doc = serde_json::to_value(&report).unwrap_or_default();
    files.push(("quantization.json".to_string(), serde_json::to_vec_pretty(&doc).unwrap_or_default()));
    write_files(&args.out, files)?;
    eprintln!(
        "int8: {} bytes ({:.0} % of the f32 {} bytes); accuracy {:.4} → {:.4} on {} examples; wrote {}",
        report.int8_bytes,
        100.0 * report.int8_bytes as f64 / report.f32_bytes.max(1) as f64,
        report.f32_bytes,
        report.f32.accuracy,
        report.int8.accuracy,
        report.f32.count,
        args.out.display()
    );
    print_json(&serde_json::json!({ "f32_bytes": report.f32_bytes, "int8_bytes": report.int8_bytes, "f32_accuracy": report.f32.accuracy, "int8_accuracy": report.int8.accuracy, "accuracy_change": report.accuracy_change, "f32_macro_f1": report.f32.macro_f1, "int8_macro_f1": report.int8.macro_f1, "examples": report.f32.count }));
    Ok(())
}
