//! "Export as a training script": a classifier recipe (model id, data files, strategy with
//! freezing, gradual unfreezing, layer-wise rates and LoRA, schedule, seed) as a runnable Hugging
//! Face Trainer + PEFT script (`train.py`, `accelerate launch` ready), for when a run outgrows
//! the browser tab. The script (`train_script.py` beside this file) is fixed Python that reads
//! one JSON blob of settings written here; `scripts/verify_script.py` runs it with the tiny model
//! and checks, on the weights, that it trains as the recipe says.

use serde_json::json;

use crate::error::{Error, Result};
use crate::hf::config::EncoderArch;
use crate::recipe::{Recipe, Task};

const TEMPLATE: &str = include_str!("train_script.py");

/// What the script loads: the model (a Hub id or a folder) and the data files (paths or URLs).
pub struct ScriptInputs<'a> {
    pub model: &'a str,
    pub arch: EncoderArch,
    pub train_files: &'a [String],
    pub eval_file: Option<&'a str>,
}

/// PEFT's `target_modules` regex for the recipe's LoRA targets (as `models::export` writes it).
fn lora_regex(r: &Recipe, arch: EncoderArch) -> String {
    let names: Vec<String> = r.lora_targets.iter().map(|t| arch.module(t.part()).replace('.', "\\.")).collect();
    format!(".*\\.layer\\.\\d+\\.({})", names.join("|"))
}

/// The script's text.
pub fn training_script(r: &Recipe, inputs: &ScriptInputs) -> Result<String> {
    if r.task != Task::TextClassification {
        return Err(crate::error::coded!(
            Recipe,
            "recipe.script-task",
            "the training-script export covers text classification (this recipe's task is {task}); export the model instead",
            task = r.task.name()
        ));
    }
    if r.mlm_epochs > 0 {
        return Err(crate::error::coded!(
            Recipe,
            "recipe.script-two-stage",
            "the training-script export does not cover the masked-LM stage before the classifier (mlm_epochs {epochs}); set it to 0 to export the classifier stage",
            epochs = r.mlm_epochs
        ));
    }
    if inputs.train_files.is_empty() {
        return Err(crate::error::coded!(Data, "data.no-training-file", "choose a training file first"));
    }
    let settings = json!({
        "model": inputs.model,
        "model_type": inputs.arch.model_type(),
        "train_files": inputs.train_files,
        "eval_file": inputs.eval_file,
        "recipe": r,
        "lora_target_modules": lora_regex(r, inputs.arch),
        "lora_modules_to_save": crate::models::export::modules_to_save(inputs.arch),
    });
    let blob = serde_json::to_string_pretty(&settings).map_err(|e| Error::Other(e.to_string()))?;
    // The blob sits in a raw triple-quoted Python string; JSON escapes every quote inside a
    // string, so three in a row cannot occur, nor a closing backslash.
    debug_assert!(!blob.contains("\"\"\""));
    Ok(TEMPLATE.replace("__RECIPE_JSON__", &blob))
}
