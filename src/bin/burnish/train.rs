//! `burnish train`: fine-tune a classifier (optionally after masked-LM adaptation on domain text),
//! adapt an encoder alone (`--task masked-lm`), or fine-tune a decoder; writes an HF folder,
//! metrics.json and recipe.json.

use std::path::{Path, PathBuf};
use burnish::error::{Error, Result};
use burnish::engine::classifier::TrainSession;
use burnish::engine::{causal_lm, masked_lm};
use burnish::recipe::{self, Recipe};
use clap::Args;
use serde_json::json;

use super::flags::*;
use super::io::*;
use super::runner::{CheckpointFlags, drive, write_run};

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub files: TrainFiles,
    #[command(flatten)]
    pub base: RecipeArgs,
    #[command(flatten)]
    pub tuning: RecipeFlags,
    /// Domain text (.txt lines, or a column of a CSV/TSV/JSONL): adapt the encoder with
    /// masked-LM training on it first, then fine-tune the classifier (two-stage recipe)
    #[arg(long)]
    pub domain: Option<PathBuf>,
    #[command(flatten)]
    pub checkpoints: CheckpointFlags,
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let TrainArgs { model, files, base, tuning, domain, checkpoints, out, device: d } = args;

    let wall = std::time::Instant::now();
    // The default max length (128) is capped to what the model can take.
    let (r, cap_max_len) = base.recipe()?;
    let mut r = tuning.apply(r)?;
    if domain.is_some() && r.mlm_epochs == 0 && r.task != recipe::Task::MaskedLm {
        r.mlm_epochs = 1;
    }
    let resume_bytes = checkpoints.resume_bytes(&mut r)?;
    if r.task.is_decoder() {
        if domain.is_some() {
            return Err(Error::Other("--domain is for classifier runs".into()));
        }
        return train_decoder(&model, &files, r, cap_max_len, &out, &d, wall, &checkpoints, resume_bytes);
    }
    let mut ckpt = load_checkpoint(&model)?;
    if cap_max_len {
        r.max_len = r.max_len.min(ckpt.config.max_tokens());
    }
    r.validate(ckpt.config.max_tokens())?;
    let (dev, info) = device(&d);
    if r.task == recipe::Task::MaskedLm {
        let mut texts = Vec::new();
        for p in &files.train {
            texts.extend(burnish::data::text::domain_texts(&load_table(p)?, &r.text_column)?);
        }
        let (train_t, eval_t) = match &files.eval {
            Some(p) => (texts, burnish::data::text::domain_texts(&load_table(p)?, &r.text_column)?),
            None => burnish::data::text::split_texts(&texts, r.eval_fraction, r.seed),
        };
        let mut session = match &resume_bytes {
            Some(bytes) => masked_lm::MlmSession::resume(&mut ckpt, &train_t, &eval_t, bytes, &dev)?,
            None => masked_lm::MlmSession::new(&mut ckpt, &train_t, &eval_t, &r, r.epochs, r.lr, &dev)?,
        };
        adapt(&mut session, &r, &checkpoints)?;
        write_files(&out, pollster::block_on(session.export(&ckpt))?)?;
        let metrics = json!({
            "task": "masked-lm",
            "loss": session.evaluations().last().map(|e| e.loss),
            "perplexity": session.evaluations().last().map(|e| e.perplexity),
            "masked_accuracy": session.evaluations().last().map(|e| e.masked_accuracy),
            "history": session.evaluations(),
            "train_losses": session.losses,
            "train_texts": session.train_count(),
            "eval_texts": session.eval_count(),
            "train_seconds": session.train_seconds,
            "wall_seconds": wall.elapsed().as_secs_f64(),
            "backend": info,
            "load_report": session.load_report,
            "recipe": r,
        });
        return write_run(&out, &metrics, &r);
    }
    let td = training_files(&files, &r)?;
    if td.skipped > 0 {
        eprintln!("skipped {} rows with an empty text or label", td.skipped);
    }
    let (labels, skipped, eval_ex) = (td.labels.clone(), td.skipped, td.eval.clone());
    eprintln!("{} training and {} evaluation examples; labels: {}", td.train_count(), eval_ex.len(), labels.join(", "));
    // Stage one of the two-stage recipe: masked-LM adaptation of the encoder on the
    // domain text; the classifier then starts from the adapted encoder. A resumed run
    // skips it (the checkpoint holds the adapted weights).
    let mut adapted = serde_json::Value::Null;
    if r.mlm_epochs > 0 && resume_bytes.is_none() {
        let p = domain.as_ref().ok_or_else(|| Error::Recipe("mlm_epochs > 0 needs domain text: give --domain FILE".into()))?;
        let mut stage = masked_lm::MlmSession::domain_stage(&mut ckpt, &load_table(p)?, &r, &dev)?;
        adapt(&mut stage, &r, &CheckpointFlags { checkpoint: None, checkpoint_every: 0, resume: None, stop_after: None })?;
        write_files(&out.join("domain-adapted"), pollster::block_on(stage.export(&ckpt))?)?;
        adapted = json!({
            "domain_file": p.display().to_string(),
            "history": stage.evaluations(),
            "train_losses": stage.losses,
            "train_texts": stage.train_count(),
            "eval_texts": stage.eval_count(),
            "train_seconds": stage.train_seconds,
            "load_report": stage.load_report,
            "folder": out.join("domain-adapted").display().to_string(),
        });
        ckpt = pollster::block_on(stage.adapted_checkpoint(&ckpt))?;
        eprintln!("stage 2: fine-tuning the classifier from the adapted encoder");
    } else if domain.is_some() && resume_bytes.is_some() {
        eprintln!("resuming the classifier stage: the domain adaptation is already in the checkpoint's weights");
    }
    let mut session = match &resume_bytes {
        Some(b) => TrainSession::resume_sources(&mut ckpt, &td.sources, &eval_ex, b, &dev)?,
        None => TrainSession::with_sources(&mut ckpt, &td.sources, &eval_ex, labels.clone(), r.clone(), &dev)?,
    };
    if td.sources.len() > 1 {
        for m in session.mixture() {
            eprintln!(
                "mixture: {} ({} rows): p = {:.3}, {:.0} examples per epoch ({:.2} passes over its rows)",
                m.name, m.rows, m.probability, m.per_epoch, m.passes
            );
        }
    }
    if !session.load_report.initialized.is_empty() {
        eprintln!("initialised (not in the checkpoint): {}", session.load_report.initialized.join(", "));
    }
    let t = session.trainable();
    eprintln!("training {} of {} parameters: {}", t.trainable_parameters, t.total_parameters, t.training.join(", "));
    let every = (session.total_steps / 20).max(1);
    drive(&mut session, &checkpoints, |_, rep| {
        if rep.step % every == 0 || rep.done {
            eprintln!(
                "step {}/{} epoch {} loss {:.4} lr {:.2e} {:.1} ex/s",
                rep.step, rep.total_steps, rep.epoch, rep.loss, rep.lr, rep.examples_per_s
            );
        }
        if let Some(e) = &rep.early_stop {
            eprintln!(
                "{} at step {}: kept the weights of step {} ({:?} {:.4})",
                if e.early { "early stopping" } else { "end of training" },
                e.stopped_at, e.best_step, e.metric, e.best_value
            );
        }
        if let Some(t) = &rep.unfrozen {
            eprintln!("step {}: now training {} parameters: {}", t.step + 1, t.trainable_parameters, t.training.join(", "));
        }
        if let Some(e) = &rep.epoch_end {
            if let Some(m) = &e.eval {
                eprintln!("epoch {}: train loss {:.4}, eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", e.epoch, e.train_loss, m.loss, m.accuracy, m.macro_f1);
            }
        } else if let Some(m) = &rep.eval {
            eprintln!("step {}: eval loss {:.4}, accuracy {:.4}, macro-F1 {:.4}", rep.step, m.loss, m.accuracy, m.macro_f1);
        }
    })?;
    let final_eval = if eval_ex.is_empty() { None } else { Some(pollster::block_on(session.evaluate())?) };
    write_files(&out, pollster::block_on(session.export(&ckpt, &model.display().to_string()))?)?;
    let metrics = json!({
        "domain_adaptation": adapted,
        "accuracy": final_eval.as_ref().map(|m| m.accuracy),
        "macro_f1": final_eval.as_ref().map(|m| m.macro_f1),
        "loss": final_eval.as_ref().map(|m| m.loss),
        "confusion_matrix": final_eval.as_ref().map(|m| m.confusion.clone()),
        "eval": final_eval,
        "history": session.history,
        "train_losses": session.losses,
        "labels": labels,
        "train_examples": td.train_count(),
        "mixture": if td.sources.len() > 1 { json!({"files": session.mixture(), "drawn": session.drawn}) } else { serde_json::Value::Null },
        "eval_examples": eval_ex.len(),
        "skipped_rows": skipped,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "train_seconds": session.train_seconds,
        "backend": info,
        "load_report": session.load_report,
        "trainable": session.trainable(),
        "early_stop": session.early_stop,
        "layer_groups": session.layer_groups(),
        "recipe": r,
    });
    write_run(&out, &metrics, &r)
}

/// `train --task causal-lm|instruct`: fine-tunes a decoder and writes its HF folder and
/// metrics.json (held-out loss and perplexity before and after each epoch).
#[allow(clippy::too_many_arguments)]
pub fn train_decoder(model: &Path, files: &TrainFiles, mut r: Recipe, cap_max_len: bool, out: &Path, d: &DeviceArg, wall: std::time::Instant, ck: &CheckpointFlags, resume: Option<Vec<u8>>) -> Result<()> {
    let cm = load_causal(model)?;
    if cap_max_len {
        r.max_len = r.max_len.min(cm.config.max_positions());
    }
    r.validate(cm.config.max_positions())?;
    let rows_of = |p: &Path| -> Result<Vec<burnish::data::text::LmRow>> { burnish::data::decoder::rows_for_task(&cm, &load_table(p)?, &r).map(|(rows, _)| rows) };
    let mut train_rows = Vec::new();
    for p in &files.train {
        train_rows.extend(rows_of(p)?);
    }
    let (train_rows, eval_rows) = match &files.eval {
        Some(p) => (train_rows, rows_of(p)?),
        None => {
            let (train, eval, _) = burnish::data::text::split_rows(&train_rows, r.eval_fraction, r.seed);
            (train, eval)
        }
    };
    let (dev, info) = device(d);
    eprintln!("{} training rows, {} held out ({}, {})", train_rows.len(), eval_rows.len(), cm.config.architecture(), info.adapter);
    let mut s = match &resume {
        Some(bytes) => {
            let s = causal_lm::LmSession::resume(&cm, train_rows, eval_rows, bytes, &dev)?;
            eprintln!("resuming at step {} of {}", s.step, s.total_steps);
            r = s.recipe.clone();
            s
        }
        None => causal_lm::LmSession::new(&cm, train_rows, eval_rows, r.clone(), &dev)?,
    };
    if s.objective.lora_modules.is_empty() {
        eprintln!("training every weight ({} parameters)", s.objective.trainable);
    } else {
        eprintln!("training LoRA adapters (rank {}) on {} in every layer: {} parameters", r.lora_rank, s.objective.lora_modules.join(", "), s.objective.trainable);
    }
    drive(&mut s, ck, |_, rep| {
        if let Some(e) = &rep.eval {
            eprintln!("epoch {}: held-out loss {:.4}, perplexity {:.2}", e.epoch, e.loss, e.perplexity);
        } else if rep.step % 10 == 0 {
            eprintln!("step {}/{}: loss {:.4}", rep.step, rep.total_steps, rep.loss);
        }
    })?;
    std::fs::create_dir_all(out).map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
    write_files(out, pollster::block_on(s.export(&cm, &model.display().to_string()))?)?;
    let metrics = json!({
        "task": r.task,
        "architecture": cm.config.architecture(),
        "loss": s.evaluations().last().map(|e| e.loss),
        "perplexity": s.evaluations().last().map(|e| e.perplexity),
        "history": s.evaluations(),
        "train_losses": s.losses,
        "train_rows": s.train_count(),
        "eval_rows": s.eval_count(),
        "trainable_parameters": s.objective.trainable,
        "lora_modules": s.objective.lora_modules,
        "train_seconds": s.train_seconds,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "backend": info,
        "load_report": s.load_report,
        "recipe": r,
    });
    write_run(&out, &metrics, &r)
}
/// Runs a masked-LM adaptation to its end (checkpointed as the flags say), printing progress and
/// the held-out scores.
pub fn adapt(s: &mut masked_lm::MlmSession, r: &Recipe, ck: &CheckpointFlags) -> Result<()> {
    let lr = s.recipe.lr;
    eprintln!(
        "masked-LM adaptation: {} training and {} held-out texts, {} steps, lr {lr:.2e}, masking {:.0} %",
        s.train_count(),
        s.eval_count(),
        s.total_steps,
        r.mlm_probability * 100.0
    );
    if !s.load_report.initialized.is_empty() {
        eprintln!("initialised (not in the checkpoint): {}", s.load_report.initialized.join(", "));
    }
    let every = (s.total_steps / 20).max(1);
    drive(s, ck, |s, rep| {
        if rep.step == 1 {
            if let Some(e) = &s.before {
                eprintln!("before: held-out MLM loss {:.4}, perplexity {:.1}, masked-token accuracy {:.4}", e.loss, e.perplexity, e.masked_accuracy);
            }
        }
        if rep.step % every == 0 || rep.done {
            eprintln!("mlm step {}/{} epoch {} loss {:.4} lr {:.2e}", rep.step, rep.total_steps, rep.epoch, rep.loss, rep.lr);
        }
        if let Some(e) = &rep.eval {
            eprintln!("mlm epoch {}: held-out loss {:.4}, perplexity {:.1}, masked-token accuracy {:.4}", e.epoch, e.loss, e.perplexity, e.masked_accuracy);
        }
    })
}