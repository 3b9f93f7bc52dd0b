//! `burnish multitask`: several labelled files (one task each, with its own labels and head)
//! share one encoder; writes one HF folder per task + metrics.json.

use std::path::PathBuf;
use burnish::error::Result;
use burnish::engine::multitask;
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;
use super::runner::{CheckpointFlags, drive, write_run};

#[derive(Args)]
pub struct MultitaskArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// A task: NAME=FILE, or NAME=FILE:TEXT_COLUMN:LABEL_COLUMN (repeat; two or more)
    #[arg(long = "task", required = true)]
    pub tasks: Vec<String>,
    #[command(flatten)]
    pub base: RecipeArgs,
    /// How each step's task is chosen
    #[arg(long, value_parser = ["proportional", "round-robin"])]
    pub sampling: Option<String>,
    /// Gradient accumulation: micro-batches (of any tasks) per optimizer step
    #[arg(long)]
    pub grad_accum: Option<usize>,
    #[command(flatten)]
    pub checkpoints: CheckpointFlags,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: MultitaskArgs) -> Result<()> {
    let MultitaskArgs { model, tasks, base, sampling, grad_accum, checkpoints, out, device: d } = args;

    let wall = std::time::Instant::now();
    let (mut r, cap_max_len) = base.recipe()?;
    if let Some(v) = sampling { r.task_sampling = if v == "round-robin" { multitask::TaskSampling::RoundRobin } else { multitask::TaskSampling::Proportional }; }
    if let Some(v) = grad_accum { r.grad_accum = v; }
    let resume = checkpoints.resume_bytes(&mut r)?;
    let mut ckpt = load_checkpoint(&model)?;
    if cap_max_len {
        r.max_len = r.max_len.min(ckpt.config.max_tokens());
    }
    let mut data = Vec::new();
    for spec in &tasks {
        let (name, rest) = match spec.split_once('=') {
            Some((n, rest)) => (n.to_string(), rest),
            None => (multitask::task_name(spec), spec.as_str()),
        };
        let mut parts = rest.split(':');
        let file = PathBuf::from(parts.next().unwrap_or_default());
        let text = parts.next().map(String::from).unwrap_or_else(|| r.text_column.clone());
        let label = parts.next().map(String::from).unwrap_or_else(|| r.label_column.clone());
        let table = load_table(&file)?;
        data.push(multitask::task_from_table(&name, &table, None, &text, &label, r.eval_fraction, r.seed)?);
    }
    let (dev, info) = device(&d);
    let mut s = match &resume {
        Some(bytes) => multitask::MultiTaskSession::resume(&mut ckpt, &data, bytes, &dev)?,
        None => multitask::MultiTaskSession::new(&mut ckpt, &data, r.clone(), &dev)?,
    };
    for t in s.tasks() {
        eprintln!(
            "task {}: {} training and {} evaluation rows, labels {}, {} batches per epoch, {:.1} % of the steps",
            t.name, t.train_count, t.eval_count, t.labels.join(", "), t.batches_per_epoch, 100.0 * t.share
        );
    }
    let every = (s.total_steps / 20).max(1);
    drive(&mut s, &checkpoints, |s, rep| {
        if rep.step % every == 0 || rep.done {
            eprintln!("step {}/{} epoch {} task {} loss {:.4} lr {:.2e}", rep.step, rep.total_steps, rep.epoch, s.tasks()[rep.detail.task].name, rep.loss, rep.lr);
        }
        if let Some(ms) = &rep.eval {
            for (t, m) in s.tasks().iter().zip(ms) {
                eprintln!("epoch {} task {}: eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", rep.epoch, t.name, m.loss, m.accuracy, m.macro_f1);
            }
        }
    })?;
    let final_eval = pollster::block_on(s.evaluate())?;
    write_files(&out, pollster::block_on(s.export(&ckpt))?)?;
    let metrics = json!({
        "tasks": s.tasks().iter().zip(&final_eval).map(|(t, m)| json!({
            "name": t.name, "labels": t.labels, "train_examples": t.train_count, "eval_examples": t.eval_count,
            "share": t.share, "accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss, "eval": m,
            "folder": out.join(multitask::task_name(&t.name)).display().to_string(),
        })).collect::<Vec<_>>(),
        "sampling": r.task_sampling,
        "drawn": s.drawn,
        "steps": s.step,
        "history": s.history.iter().map(|h| (h.step, h.eval.clone())).collect::<Vec<_>>(),
        "train_losses": s.losses,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "train_seconds": s.train_seconds,
        "backend": info,
        "recipe": r,
    });
    write_run(&out, &metrics, &r)
}
