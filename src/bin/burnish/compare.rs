//! `burnish compare`: Run several strategies (presets) with the same model, data and budget; write a table

use std::path::PathBuf;
use burnish::data::{self};
use burnish::error::{Error, Result};
use burnish::engine::classifier::TrainSession;
use burnish::recipe::{self, Recipe};
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct CompareArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub files: TrainFiles,
    #[command(flatten)]
    pub columns: Columns,
    /// Strategy presets, comma-separated (default: all)
    #[arg(long, value_delimiter = ',', default_value = "full,head,top2,gradual,discriminative,lora")]
    pub strategies: Vec<String>,
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 0.2)]
    pub eval_fraction: f64,
    /// One learning rate for every strategy (default: each preset's usual rate)
    #[arg(long)]
    pub lr: Option<f64>,
    /// Train on a seeded, stratified subset of this many rows per training file
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Title of the table (e.g. the dataset's name)
    #[arg(long)]
    pub title: Option<String>,
    /// Internal: train only this preset and print its result as JSON (`compare` runs each
    /// preset in a process of its own, so that its peak memory is its own)
    #[arg(long, hide = true)]
    pub one: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: CompareArgs) -> Result<()> {
    let CompareArgs { model, files, columns, strategies, epochs, batch_size, max_len, seed, eval_fraction, lr, max_train, title, one, out, device: d, } = args;

    let mut base = Recipe { epochs, batch_size, max_len, seed, eval_fraction, ..Recipe::default() };
    if let Some(v) = columns.text_column { base.text_column = v; }
    if let Some(v) = columns.label_column { base.label_column = v; }
    let mut ckpt = load_checkpoint(&model)?;
    base.max_len = base.max_len.min(ckpt.config.max_tokens());
    base.validate(ckpt.config.max_tokens())?;
    for name in &strategies {
        recipe::preset_recipe(name, &base, true, 1, 1)?;
    }
    let mut td = training_files(&files, &base)?;
    if let Some(n) = max_train {
        for s in &mut td.sources {
            if s.examples.len() > n {
                let drop = 1.0 - n as f64 / s.examples.len() as f64;
                s.examples = data::stratified_split(&s.examples, drop, base.seed).0;
            }
        }
    }
    let rows = td.train_count();
    let steps = recipe::planned_steps(&base, rows);
    if let Some(name) = one {
        let (dev, info) = device(&d);
        let mut r = recipe::preset_recipe(&name, &base, lr.is_some(), steps, ckpt.config.num_hidden_layers)?;
        if let Some(v) = lr { r.lr = v; }
        let wall = std::time::Instant::now();
        let mut s = TrainSession::with_sources(&mut ckpt, &td.sources, &td.eval, td.labels.clone(), r.clone(), &dev)?;
        let first = s.trainable();
        while !s.is_done() {
            let rep = pollster::block_on(s.step())?;
            if rep.step % (steps / 5).max(1) == 0 || rep.done {
                eprintln!("{name}: step {}/{} loss {:.4} ({:.2} s/step)", rep.step, rep.total_steps, rep.loss, s.train_seconds / rep.step as f64);
            }
        }
        let m = pollster::block_on(s.evaluate())?;
        let peak = peak_rss();
        let last = s.trainable();
        let est = burnish::engine::memory::estimate_memory(&ckpt.config, last.total_parameters, last.trainable_parameters, r.batch_size, r.max_len);
        let tail = (s.losses.len() / 10).max(1);
        let preset = recipe::PRESETS.iter().find(|p| p.name == name).map(|p| p.about).unwrap_or_default();
        eprintln!("{name}: accuracy {:.4}, macro-F1 {:.4}, {} of {} parameters train", m.accuracy, m.macro_f1, last.trainable_parameters, last.total_parameters);
        print_json(&json!({
            "strategy": name,
            "backend": info,
            "about": preset,
            "lr": r.lr,
            "trainable_parameters": last.trainable_parameters,
            "trainable_parameters_at_start": first.trainable_parameters,
            "total_parameters": last.total_parameters,
            "accuracy": m.accuracy,
            "macro_f1": m.macro_f1,
            "eval_loss": m.loss,
            "final_train_loss": s.losses[s.losses.len() - tail..].iter().sum::<f64>() / tail as f64,
            "steps": s.step,
            "seconds_per_step": s.train_seconds / s.step.max(1) as f64,
            "wall_seconds": wall.elapsed().as_secs_f64(),
            "peak_rss_bytes": peak,
            "estimated_training_memory_bytes": est.total,
            "recipe": r,
            "losses": s.losses,
            "history": s.history,
        }));
        return Ok(());
    }
    eprintln!("{} training rows, {} evaluation rows, {} steps per strategy", rows, td.eval.len(), steps);
    let mut results = Vec::new();
    let exe = std::env::current_exe().map_err(|e| Error::Io(format!("cannot find the burnish binary: {e}")))?;
    for name in &strategies {
        let child = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .args(["--one", name.as_str()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::Io(format!("cannot run {}: {e}", exe.display())))?;
        if !child.status.success() {
            return Err(Error::Other(format!("the {name} run failed (see above)")));
        }
        let row: serde_json::Value = serde_json::from_slice(&child.stdout)
            .map_err(|e| Error::Other(format!("the {name} run printed no result: {e}")))?;
        results.push(row);
    }
    let backend = results.first().map(|r| r["backend"].clone()).unwrap_or_default();
    let title = title.unwrap_or_else(|| files.train.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "));
    let mut md = format!(
        "### {title}\n\nModel `{}`, {rows} training rows, {} evaluation rows, {epochs} epoch(s) × {steps} steps, batch {batch_size}, max length {}, seed {seed}, backend {} ({}).\n\n",
        model.display(), td.eval.len(), base.max_len, backend["kind"].as_str().unwrap_or("?"), backend["adapter"].as_str().unwrap_or("?")
    );
    md += "| strategy | lr | trainable parameters | accuracy | macro-F1 | eval loss | peak RSS (measured) | training memory (estimated) | s/step |\n|---|---|---|---|---|---|---|---|---|\n";
    for r in &results {
        let trainable = r["trainable_parameters"].as_u64().unwrap_or(0);
        let total = r["total_parameters"].as_u64().unwrap_or(1);
        md += &format!(
            "| {} | {:.0e} | {} ({:.2}%) | {:.4} | {:.4} | {:.4} | {} | {} | {:.2} |\n",
            r["strategy"].as_str().unwrap_or(""),
            r["lr"].as_f64().unwrap_or(0.0),
            trainable,
            100.0 * trainable as f64 / total as f64,
            r["accuracy"].as_f64().unwrap_or(f64::NAN),
            r["macro_f1"].as_f64().unwrap_or(f64::NAN),
            r["eval_loss"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_bytes"].as_u64().map(mib).unwrap_or_else(|| "n/a".into()),
            mib(r["estimated_training_memory_bytes"].as_u64().unwrap_or(0)),
            r["seconds_per_step"].as_f64().unwrap_or(f64::NAN),
        );
    }
    md += "\n";
    for p in recipe::PRESETS.iter().filter(|p| strategies.iter().any(|s| s == p.name)) {
        md += &format!("- **{}**: {}\n", p.name, p.about);
    }
    std::fs::create_dir_all(&out).map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
    let all = json!({"title": title, "model": model, "train_rows": rows, "eval_rows": td.eval.len(), "steps": steps, "backend": backend, "base_recipe": base, "results": results});
    std::fs::write(out.join("comparison.json"), serde_json::to_vec_pretty(&all).unwrap_or_default())?;
    std::fs::write(out.join("comparison.md"), &md)?;
    eprintln!("wrote {}", out.display());
    print!("{md}");
    Ok(())
}
