//! Running any engine run from the CLI to its end: `--checkpoint FILE` every `--checkpoint-every`
//! steps and at the end (written next to the target, then renamed: a crash never leaves half a
//! file), `--resume FILE`, `--stop-after N`; and writing a run's metrics.json and recipe.json.
//! Every kind of run (classifier, masked LM, decoder, multi-task) goes through here.

use std::path::{Path, PathBuf};

use burnish::engine::{Objective, Run, StepReport};
use burnish::error::{Error, Result};
use burnish::recipe::Recipe;
use clap::Args;

/// The checkpoint flags of a training command.
#[derive(Args, Clone)]
pub struct CheckpointFlags {
    /// Save a training checkpoint (weights, optimizer, schedule, data order, RNG) to this file
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (and one at the end)
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
    /// Continue the run saved in this checkpoint (its recipe is used; give the same data)
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many steps in this invocation (then checkpoint and export)
    #[arg(long)]
    pub stop_after: Option<usize>,
}

impl CheckpointFlags {
    /// The `--resume` file's bytes and the recipe it holds (which replaces `r`).
    pub fn resume_bytes(&self, r: &mut Recipe) -> Result<Option<Vec<u8>>> {
        let Some(p) = &self.resume else { return Ok(None) };
        let b = super::io::read(p)?;
        let (saved, _, step) = burnish::engine::checkpoint_recipe(&b).map_err(|e| Error::Other(format!("{}: {e}", p.display())))?;
        eprintln!("resuming {} after step {step} with its recipe", p.display());
        *r = saved;
        Ok(Some(b))
    }
}

/// Steps `run` to its end (or `--stop-after`), checkpointing as the flags say; `each` sees every
/// step's report (for progress lines).
pub fn drive<O: Objective>(run: &mut Run<O>, flags: &CheckpointFlags, mut each: impl FnMut(&Run<O>, &StepReport<O::Eval, O::Detail>)) -> Result<()> {
    let save = |run: &Run<O>| -> Result<()> {
        let Some(p) = &flags.checkpoint else { return Ok(()) };
        let tmp = p.with_extension("partial");
        std::fs::write(&tmp, pollster::block_on(run.checkpoint())?).map_err(|e| Error::Io(format!("cannot write {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, p).map_err(|e| Error::Io(format!("cannot write {}: {e}", p.display())))
    };
    let mut ran = 0usize;
    while !run.is_done() && flags.stop_after.is_none_or(|n| ran < n) {
        let rep = pollster::block_on(run.step())?;
        ran += 1;
        if flags.checkpoint_every > 0 && rep.step % flags.checkpoint_every == 0 {
            save(run)?;
        }
        each(run, &rep);
    }
    save(run)?;
    if !run.is_done() {
        eprintln!("stopped after step {} of {}; continue with --resume", run.step, run.total_steps);
    }
    Ok(())
}

/// Writes `metrics.json` and `recipe.json` under `out` and prints the metrics.
pub fn write_run(out: &Path, metrics: &serde_json::Value, r: &Recipe) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::Io(format!("cannot create {}: {e}", out.display())))?;
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(out.join(name), bytes).map_err(|e| Error::Io(format!("cannot write {}: {e}", out.join(name).display())));
    write("metrics.json", serde_json::to_vec_pretty(metrics).unwrap_or_default())?;
    write("recipe.json", serde_json::to_vec_pretty(r).unwrap_or_default())?;
    eprintln!("wrote {}", out.display());
    super::io::print_json(metrics);
    Ok(())
}
