//! The only JavaScript boundary: thin `#[wasm_bindgen]` functions for the page's Web Worker.
//! State lives in one thread-local (the worker owns a single session); async calls take what
//! they need out of it, await, and put it back, so nothing is borrowed across an await.
//! Errors become JS `Error`s carrying the library's user-facing message, and its `code`, `kind`,
//! `args` and `detail` (error.rs), from which the page says it in the user's language.


pub mod backend;
pub mod decoder;

use std::cell::RefCell;

use burn::tensor::Device;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::backend::BackendInfo;
use crate::hf::checkpoint::Checkpoint;
use crate::data::{self, Table};
use crate::error::Error;
use crate::engine::Stepper;
use crate::engine::classifier::TrainSession;
use crate::recipe::Recipe;

#[derive(Default)]
struct State {
    device: Option<(Device, BackendInfo)>,
    checkpoint: Option<Checkpoint>,
    train_table: Option<Table>,
    /// More training files mixed with the first one (data mixing).
    extra_tables: Vec<Table>,
    eval_table: Option<Table>,
    session: Option<TrainSession>,
    /// The side-by-side comparison: one session per strategy preset, trained in turns.
    compare: Vec<(String, TrainSession)>,
    /// Texts of the eval examples, in session order (for the per-example table).
    eval_texts: Vec<(String, String)>,
    /// Domain text for masked-LM adaptation, the adaptation run, and the adapted encoder that
    /// the classifier stage of a two-stage recipe starts from.
    domain_table: Option<Table>,
    mlm: Option<crate::engine::masked_lm::MlmSession>,
    adapted: Option<Checkpoint>,
    /// Multi-task training: the other tasks' files (the main training file is task 1) and the run.
    task_tables: Vec<(String, Table)>,
    multitask: Option<crate::engine::multitask::MultiTaskSession>,
    /// The starting weights being scored between training slices (the "before" metrics).
    baseline: Option<crate::infer::classify::PendingEvaluation>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// A JS `Error` with the English message and, as properties, the error's `code`, `kind`, `args`
/// (an object of the values it names) and `detail` (the text without its kind's prefix).
pub(crate) fn js_err(e: Error) -> JsError {
    let err = JsError::new(&e.to_string());
    // A JsError is a handle: the clone names the same JS object, so the properties set on it
    // travel with the error returned.
    let obj = JsValue::from(err.clone());
    let args = js_sys::Object::new();
    for (k, v) in e.args() {
        let _ = js_sys::Reflect::set(&args, &JsValue::from_str(k), &JsValue::from_str(&v));
    }
    for (k, v) in [("code", JsValue::from_str(e.code())), ("kind", JsValue::from_str(e.kind())), ("args", args.into()), ("detail", JsValue::from_str(&e.detail()))] {
        let _ = js_sys::Reflect::set(&obj, &JsValue::from_str(k), &v);
    }
    err
}

/// What a call needs that is not there yet (both boundaries, mod.rs and decoder.rs, say it the same
/// way, with one code each).
#[derive(Clone, Copy)]
pub(crate) enum Missing {
    Backend,
    Model,
    Decoder,
    TrainingFile,
    Tuning,
    Text,
}

impl Missing {
    pub(crate) fn err(self) -> JsError {
        use crate::error::coded;
        js_err(match self {
            Missing::Backend => coded!(Other, "state.no-backend", "the backend is not initialised yet"),
            Missing::Model => coded!(Other, "state.no-model", "load a model first"),
            Missing::Decoder => coded!(Other, "state.no-decoder", "load a decoder first"),
            Missing::TrainingFile => coded!(Data, "data.no-training-file", "choose a training file first"),
            Missing::Tuning => coded!(Other, "state.not-tuned", "fine-tune the model first"),
            Missing::Text => coded!(Other, "state.no-text", "type some text first"),
        })
    }
}

/// A memory estimate with what the backend in use says about its size.
pub(crate) fn with_backend_warnings(mut est: crate::engine::memory::MemoryEstimate) -> crate::engine::memory::MemoryEstimate {
    if let Some(info) = current_backend() {
        est.warnings = info.memory_warnings(est.total, est.largest_tensor);
    }
    est
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("internal: {e}")))
}

/// The compute device, once `initBackend` has run (for the decoder section, `web/decoder.rs`).
pub(crate) fn current_device() -> Option<Device> {
    STATE.with(|s| s.borrow().device.as_ref().map(|d| d.0.clone()))
}

pub(crate) fn current_backend() -> Option<BackendInfo> {
    STATE.with(|s| s.borrow().device.as_ref().map(|d| d.1.clone()))
}

/// `initThreadPool(n)` (the threaded module, www/pkg-mt): starts `n` Web Workers sharing this
/// module's memory as rayon's pool; the worker awaits it before any other call.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Uses `device` for everything built from now on (web/backend.rs chooses it).
pub(crate) fn set_device(device: (Device, BackendInfo)) {
    STATE.with(|s| s.borrow_mut().device = Some(device));
}

#[wasm_bindgen(typescript_custom_section)]
const REPORT_TYPES: &str = r#"
/** One optimizer step of any run (engine/mod.rs `StepReport`); objectives add their own fields
 * (masked LM: stage, masked_tokens; multi-task: task). */
export interface StepReport {
  step: number;
  total_steps: number;
  epoch: number;
  epochs: number;
  loss: number;
  lr: number;
  grad_norm: number;
  examples_per_s: number;
  tokens_per_s: number;
  elapsed_s: number;
  done: boolean;
  epoch_end: { epoch: number; step: number; train_loss: number; eval: unknown } | null;
  eval: unknown;
  unfrozen: { step: number; training: string[]; trainable_parameters: number; total_parameters: number } | null;
  early_stop: { metric: string; stopped_at: number; best_step: number; best_value: number; early: boolean } | null;
  drawn?: number[];
  /** masked LM */
  stage?: string;
  masked_tokens?: number;
  /** multi-task: the task of the step's (first) micro-batch */
  task?: number;
}
/** Steps of a run whose held-out scores are listed too (masked LM, decoders). */
export interface Progress {
  reports: StepReport[];
  history: unknown[];
}
"#;

/// The recipe's schema (recipe.rs `schema`): every field's kind, default, limits, choices, the
/// tasks it applies to and its help, so the page checks what the engine checks.
#[wasm_bindgen(js_name = recipeSchema)]
pub fn recipe_schema() -> Result<JsValue, JsError> {
    to_js(&crate::recipe::schema())
}

/// The fault drill: a deliberate panic in the module, which the browser turns into a trap
/// (`panic = "abort"`), so that the page's recovery from a crashed engine can be tried for real
/// (worker.js `faultDrill`, tests/browser/reliability.test.mjs).
#[wasm_bindgen(js_name = faultDrill)]
pub fn fault_drill(kind: &str) -> Result<(), JsError> {
    match kind {
        "trap" => panic!("fault drill: a deliberate panic in the engine"),
        other => Err(JsError::new(&format!("unknown fault drill \"{other}\""))),
    }
}

#[wasm_bindgen(js_name = loadModel)]
pub fn load_model(config: &[u8], tokenizer: &[u8], weights: Vec<u8>, tokenizer_config: Option<Vec<u8>>) -> Result<JsValue, JsError> {
    let mut ckpt = Checkpoint::from_bytes(config, tokenizer, weights).map_err(js_err)?;
    ckpt.tokenizer_config = tokenizer_config;
    let summary = ckpt.summary();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.checkpoint = Some(ckpt);
        APP_CLASSIFIER.with(|c| *c.borrow_mut() = None);
        s.session = None;
        s.mlm = None;
        s.adapted = None;
        s.multitask = None;
    });
    to_js(&summary)
}

#[derive(Serialize)]
struct Inspection<'a> {
    name: &'a str,
    format: data::Format,
    columns: &'a [String],
    preview: Vec<Vec<String>>,
    row_count: usize,
}

/// A parsed file's name, format, columns, first rows and row count, for the page.
fn inspection(table: &Table) -> Result<JsValue, JsError> {
    to_js(&Inspection {
        name: &table.name,
        format: table.format,
        columns: &table.columns,
        preview: table.rows.iter().take(8).cloned().collect(),
        row_count: table.rows.len(),
    })
}

fn inspect(bytes: &[u8], name: &str, eval: bool) -> Result<JsValue, JsError> {
    let table = data::parse_table(bytes, name).map_err(js_err)?;
    let out = inspection(&table)?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if eval {
            s.eval_table = Some(table);
        } else {
            s.train_table = Some(table);
        }
    });
    Ok(out)
}

/// A Parquet file as JSON Lines (one object of string cells per row). The page calls this in a
/// worker of its own (www/parquet-worker.js), never in the engine's: the Parquet reader can trap
/// on a damaged file, and a trap must not take the loaded model and run with it.
#[wasm_bindgen(js_name = parquetToJsonl)]
pub fn parquet_to_jsonl(bytes: &[u8], file_name: &str) -> Result<Vec<u8>, JsError> {
    data::parquet::parquet_to_jsonl(bytes, file_name).map_err(js_err)
}

/// Parses a training file (CSV/TSV/JSONL/Parquet/TXT) and keeps it for `startTraining`.
#[wasm_bindgen(js_name = inspectData)]
pub fn inspect_data(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    inspect(bytes, file_name, false)
}

#[wasm_bindgen(js_name = inspectEvalData)]
pub fn inspect_eval_data(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    inspect(bytes, file_name, true)
}

/// Adds another training file to the mixture (same columns as the first); returns its
/// inspection like `inspectData`.
#[wasm_bindgen(js_name = addTrainSource)]
pub fn add_train_source(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    let table = data::parse_table(bytes, file_name).map_err(js_err)?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.train_table.is_none() {
            return Err(JsError::new("choose the main training file first, then add more files to mix with it"));
        }
        if s.train_table.iter().chain(&s.extra_tables).any(|t| t.name == table.name) {
            return Err(JsError::new(&format!("{} is already one of the training files", table.name)));
        }
        let out = inspection(&table)?;
        s.extra_tables.push(table);
        Ok(out)
    })
}

/// Removes the `index`-th added training file (0 = the first one added).
#[wasm_bindgen(js_name = removeTrainSource)]
pub fn remove_train_source(index: usize) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if index < s.extra_tables.len() {
            s.extra_tables.remove(index);
        }
    });
}

fn training_data(s: &State, recipe: &Recipe) -> Result<data::TrainingData, JsError> {
    let first = s.train_table.as_ref().ok_or_else(|| Missing::TrainingFile.err())?;
    let tables: Vec<&Table> = std::iter::once(first).chain(&s.extra_tables).collect();
    data::training_data(&tables, s.eval_table.as_ref(), &recipe.text_column, &recipe.label_column, recipe.eval_fraction, recipe.seed).map_err(js_err)
}

/// The device, and the training data for `recipe` after checking it against the loaded model.
fn prepare(st: &State, recipe: &Recipe) -> Result<(Device, data::TrainingData), JsError> {
    Ok((device_for(st, recipe)?, training_data(st, recipe)?))
}

/// The device, once the backend is up, a model is loaded and the recipe fits it.
fn device_for(st: &State, recipe: &Recipe) -> Result<Device, JsError> {
    let (device, _) = st.device.as_ref().ok_or_else(|| Missing::Backend.err())?;
    let ckpt = st.checkpoint.as_ref().ok_or_else(|| Missing::Model.err())?;
    recipe.validate(ckpt.config.max_tokens()).map_err(js_err)?;
    Ok(device.clone())
}

fn parse_recipe(recipe: JsValue) -> Result<Recipe, JsError> {
    if recipe.is_undefined() || recipe.is_null() {
        return Ok(Recipe::default());
    }
    // Through JSON, so `undefined` fields count as absent (their defaults apply).
    let text: String = js_sys::JSON::stringify(&recipe).map_err(|_| JsError::new("recipe: not a JSON object"))?.into();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("recipe: {e}")))
}

/// The mixture the (partial) recipe gives the training files, after the eval split: one entry
/// per file with its rows, probability, examples per epoch and passes over its rows.
#[wasm_bindgen(js_name = mixturePlan)]
pub fn mixture_plan(recipe: JsValue) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(recipe)?;
    STATE.with(|s| {
        let s = s.borrow();
        let td = training_data(&s, &recipe)?;
        let files: Vec<(String, usize)> = td.sources.iter().map(|x| (x.name.clone(), x.examples.len())).collect();
        to_js(&crate::engine::classifier::mixture(&files, &recipe).map_err(js_err)?)
    })
}

#[wasm_bindgen(js_name = clearEvalData)]
pub fn clear_eval_data() {
    STATE.with(|s| s.borrow_mut().eval_table = None);
}

/// Data checks on the chosen columns (token lengths when a model is loaded).
#[wasm_bindgen(js_name = checkData)]
pub fn check_data(text_column: &str, label_column: &str, max_len: usize) -> Result<JsValue, JsError> {
    STATE.with(|s| {
        let s = s.borrow();
        let table = s.train_table.as_ref().ok_or_else(|| Missing::TrainingFile.err())?;
        if label_column.is_empty() {
            return Err(JsError::new("choose the label column: text classification needs a label for every text"));
        }
        let mut counter = match &s.checkpoint {
            Some(c) => Some(c.tokenizer.counter().map_err(js_err)?),
            None => None,
        };
        let count = counter.as_mut().map(|c| c as &mut dyn FnMut(&str) -> crate::error::Result<usize>);
        let checks = data::check_data(table, text_column, label_column, s.eval_table.as_ref(), max_len, count).map_err(js_err)?;
        to_js(&checks)
    })
}

/// Training-memory estimate for the loaded model at `batch × max_len`, for what the (partial)
/// recipe's strategy trains.
#[wasm_bindgen(js_name = estimateMemory)]
pub fn estimate_memory(batch_size: usize, max_len: usize, recipe: JsValue, num_labels: usize) -> Result<JsValue, JsError> {
    let recipe: Recipe = serde_wasm_bindgen::from_value(recipe).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
    STATE.with(|s| {
        let s = s.borrow();
        let c = s.checkpoint.as_ref().ok_or_else(|| Missing::Model.err())?;
        let (all, trainable) = crate::engine::memory::planned_parameters(&c.config, &recipe, num_labels.max(2));
        to_js(&with_backend_warnings(crate::engine::memory::estimate_memory(&c.config, all, trainable, batch_size, max_len)))
    })
}

/// Training-memory estimate for a model that is not loaded, from its `config.json` text (the
/// page's model gallery: what the chosen recipe would need before anything is downloaded). The
/// config goes through the same checks as a loaded one.
#[wasm_bindgen(js_name = estimateMemoryForConfig)]
pub fn estimate_memory_for_config(config_json: String, batch_size: usize, max_len: usize, recipe: JsValue, num_labels: usize) -> Result<JsValue, JsError> {
    let recipe: Recipe = serde_wasm_bindgen::from_value(recipe).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
    let config = crate::hf::config::HfConfigFile::from_bytes(config_json.as_bytes()).and_then(|c| c.into_bert()).map_err(js_err)?;
    let (all, trainable) = crate::engine::memory::planned_parameters(&config, &recipe, num_labels.max(2));
    to_js(&with_backend_warnings(crate::engine::memory::estimate_memory(&config, all, trainable, batch_size, max_len)))
}

#[derive(Serialize)]
struct Started<'a> {
    total_steps: usize,
    labels: &'a [String],
    train_count: usize,
    eval_count: usize,
    skipped_rows: usize,
    load_report: &'a crate::hf::weights::LoadReport,
    recipe: &'a Recipe,
    mixture: &'a [crate::engine::classifier::MixShare],
    trainable: crate::engine::TrainableState,
    layer_groups: Vec<crate::engine::classifier::LayerGroup>,
}

thread_local! {
    /// The loaded checkpoint's own classifier, built on first use by `classifyTexts` (the
    /// exported web app's engine); `loadModel` clears it.
    static APP_CLASSIFIER: RefCell<Option<crate::infer::classify::Classifier>> = const { RefCell::new(None) };
}

/// Labels and probabilities for `texts` from the loaded checkpoint's own classification head (a
/// fine-tuned folder, as an exported web app ships it), without a training session.
#[wasm_bindgen(js_name = classifyTexts)]
pub async fn classify_texts(texts: Vec<String>, max_len: usize) -> Result<JsValue, JsError> {
    let device = current_device().ok_or_else(|| Missing::Backend.err())?;
    let (clf, rows) = STATE.with(|s| -> Result<_, JsError> {
        let mut s = s.borrow_mut();
        let ckpt = s.checkpoint.as_mut().ok_or_else(|| Missing::Model.err())?;
        if ckpt.config.labels.is_empty() {
            return Err(js_err(crate::error::coded!(Config, "config.no-labels", "this model has no fine-tuned classification head (config.json names no id2label): export a fine-tuned classifier")));
        }
        let max_len = max_len.clamp(2, ckpt.config.max_tokens());
        let rows = texts.iter().map(|t| ckpt.tokenizer.encode(t, max_len)).collect::<crate::error::Result<Vec<_>>>().map_err(js_err)?;
        let clf = APP_CLASSIFIER.with(|c| -> Result<_, JsError> {
            let mut c = c.borrow_mut();
            if c.is_none() {
                let (model, _) = crate::infer::classify::build_classifier(ckpt, &ckpt.config.labels.clone(), 0, &device).map_err(js_err)?;
                *c = Some(crate::infer::classify::Classifier { model, labels: ckpt.config.labels.clone(), pad_id: ckpt.tokenizer.pad_id });
            }
            Ok(c.as_ref().map(|c| crate::infer::classify::Classifier { model: c.model.clone(), labels: c.labels.clone(), pad_id: c.pad_id }))
        })?;
        Ok((clf.ok_or_else(|| Missing::Model.err())?, rows))
    })?;
    let logits = clf.logits(&rows, 16, &device).await.map_err(js_err)?;
    let out: Vec<_> = logits.iter().map(|l| clf.to_prediction(l)).collect();
    to_js(&out)
}

/// The recipe as a Hugging Face Trainer + PEFT script (engine/script.rs) for the loaded model:
/// `model` is what the script loads (a Hub id or a folder), the files are paths or URLs.
#[wasm_bindgen(js_name = trainingScript)]
pub fn training_script(recipe: JsValue, model: &str, train_files: Vec<String>, eval_file: Option<String>) -> Result<String, JsError> {
    let r = parse_recipe(recipe)?;
    STATE.with(|s| {
        let s = s.borrow();
        let ckpt = s.checkpoint.as_ref().ok_or_else(|| Missing::Model.err())?;
        r.validate(ckpt.config.max_tokens()).map_err(js_err)?;
        let inputs = crate::engine::script::ScriptInputs { model, arch: ckpt.config.arch, train_files: &train_files, eval_file: eval_file.as_deref() };
        crate::engine::script::training_script(&r, &inputs).map_err(js_err)
    })
}

/// Builds a training session from the loaded model, data and `recipe` (a partial Recipe JSON).
#[wasm_bindgen(js_name = startTraining)]
pub fn start_training(recipe: JsValue) -> Result<JsValue, JsError> {
    begin(parse_recipe(recipe)?, None)
}

/// Continues the run saved in `checkpoint` (from `saveCheckpoint`) on the loaded model and data
/// (the same files, columns and split; the checkpoint's own recipe is used).
#[wasm_bindgen(js_name = resumeTraining)]
pub fn resume_training(checkpoint: &[u8]) -> Result<JsValue, JsError> {
    let (recipe, _, _) = crate::engine::checkpoint_recipe(checkpoint).map_err(js_err)?;
    begin(recipe, Some(checkpoint))
}

/// A checkpoint of the running session (weights, AdamW state, schedule, data order, RNG). The
/// parts are taken at once (the session may step on meanwhile); every tensor is then read
/// asynchronously, as WebGPU requires.
#[wasm_bindgen(js_name = saveCheckpoint)]
pub async fn save_checkpoint() -> Result<Vec<u8>, JsError> {
    let snapshot = STATE.with(|s| {
        let s = s.borrow();
        let session = s.session.as_ref().ok_or_else(|| JsError::new("no training session to save"))?;
        session.snapshot().map_err(js_err)
    })?;
    snapshot.into_bytes().await.map_err(js_err)
}

#[derive(Serialize)]
struct Resumed<'a> {
    step: usize,
    losses: &'a [f64],
    history: &'a [crate::engine::classifier::EpochRecord],
    lrs: Vec<f64>,
}

fn begin(recipe: Recipe, checkpoint: Option<&[u8]>) -> Result<JsValue, JsError> {
    STATE.with(|s| {
        let mut guard = s.borrow_mut();
        let st = &mut *guard;
        let (device, td) = prepare(st, &recipe)?;
        let original = st.checkpoint.as_mut().ok_or_else(|| Missing::Model.err())?;
        // The classifier stage of a two-stage recipe starts from the adapted encoder (a resumed
        // run takes every weight from its checkpoint).
        let ckpt = match st.adapted.as_mut() {
            Some(a) if recipe.mlm_epochs > 0 && checkpoint.is_none() => a,
            _ => original,
        };
        let (labels, eval) = (td.labels, td.eval);
        let session = match checkpoint {
            Some(bytes) => TrainSession::resume_sources(ckpt, &td.sources, &eval, bytes, &device),
            None => TrainSession::with_sources(ckpt, &td.sources, &eval, labels.clone(), recipe.clone(), &device),
        }
        .map_err(js_err)?;
        let out = to_js(&Started {
            total_steps: session.total_steps,
            labels: session.labels(),
            train_count: session.objective.train.len(),
            eval_count: eval.len(),
            skipped_rows: td.skipped,
            load_report: &session.load_report,
            recipe: &session.recipe,
            mixture: session.mixture(),
            trainable: session.trainable(),
            layer_groups: session.layer_groups(),
        })?;
        if checkpoint.is_some() {
            let lrs = (0..session.step).map(|i| session.lr_at(i)).collect();
            let resumed = to_js(&Resumed { step: session.step, losses: &session.losses, history: &session.history, lrs })?;
            js_sys::Reflect::set(&out, &"resumed".into(), &resumed).map_err(|_| JsError::new("internal: cannot build the summary"))?;
        }
        st.eval_texts = eval.into_iter().map(|e| (e.text, e.label)).collect();
        st.session = Some(session);
        Ok(out)
    })
}

/// Parses the domain text for masked-LM adaptation (.txt lines, or a CSV/TSV/JSONL column).
#[wasm_bindgen(js_name = setDomainData)]
pub fn set_domain_data(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    let table = data::parse_table(bytes, file_name).map_err(js_err)?;
    let out = inspection(&table)?;
    STATE.with(|s| s.borrow_mut().domain_table = Some(table));
    Ok(out)
}

#[wasm_bindgen(js_name = clearDomainData)]
pub fn clear_domain_data() {
    STATE.with(|s| s.borrow_mut().domain_table = None);
}

#[derive(Serialize)]
struct AdaptationStarted<'a> {
    total_steps: usize,
    epochs: usize,
    lr: f64,
    train_count: usize,
    eval_count: usize,
    domain_file: &'a str,
    load_report: &'a crate::hf::weights::LoadReport,
}

/// Stage one of the two-stage recipe: a masked-LM run on the domain text (`mlm_epochs` at
/// `mlm_lr`). The classification data is checked first, so a mistake there shows before the
/// adaptation runs; with `adapt_only` the adaptation is the whole run and needs no labels.
#[wasm_bindgen(js_name = startAdaptation)]
pub fn start_adaptation(recipe: JsValue, adapt_only: Option<bool>) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(recipe)?;
    STATE.with(|s| {
        let mut guard = s.borrow_mut();
        let st = &mut *guard;
        // The two-stage run checks its labelled data now, before the adaptation stage; an
        // adaptation on its own needs none.
        let device = if adapt_only.unwrap_or(false) { device_for(st, &recipe)? } else { prepare(st, &recipe)?.0 };
        if recipe.mlm_epochs == 0 {
            return Err(JsError::new("set the domain adaptation epochs above 0 to adapt the model first"));
        }
        let table = st.domain_table.as_ref().ok_or_else(|| JsError::new("choose the domain text for the masked-LM adaptation (or set its epochs to 0)"))?;
        let ckpt = st.checkpoint.as_mut().ok_or_else(|| Missing::Model.err())?;
        let session = crate::engine::masked_lm::MlmSession::domain_stage(ckpt, table, &recipe, &device).map_err(js_err)?;
        let out = to_js(&AdaptationStarted {
            total_steps: session.total_steps,
            epochs: session.recipe.epochs,
            lr: session.recipe.lr,
            train_count: session.train_count(),
            eval_count: session.eval_count(),
            domain_file: &table.name,
            load_report: &session.load_report,
        })?;
        st.adapted = None;
        st.session = None;
        st.mlm = Some(session);
        Ok(out)
    })
}

fn take_mlm() -> Result<crate::engine::masked_lm::MlmSession, JsError> {
    STATE.with(|s| s.borrow_mut().mlm.take()).ok_or_else(|| JsError::new("no domain adaptation run: press Start first"))
}

fn put_mlm(session: crate::engine::masked_lm::MlmSession) {
    STATE.with(|s| s.borrow_mut().mlm = Some(session));
}

/// Masked-LM steps for about `budget_ms` (at least one); the first one also scores the
/// held-out text before any training.
#[wasm_bindgen(js_name = adaptSteps, unchecked_return_type = "Progress")]
pub async fn adapt_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut session = take_mlm()?;
    let result = session.run_for(budget_ms).await;
    let history = session.evaluations();
    put_mlm(session);
    let reports = result.map_err(js_err)?;
    let out = to_js(&reports)?;
    let out_obj = js_sys::Object::new();
    js_sys::Reflect::set(&out_obj, &"reports".into(), &out).map_err(|_| JsError::new("internal: reports"))?;
    js_sys::Reflect::set(&out_obj, &"history".into(), &to_js(&history)?).map_err(|_| JsError::new("internal: history"))?;
    Ok(out_obj.into())
}

/// Ends stage one: the adapted encoder becomes the starting point of the classifier.
#[wasm_bindgen(js_name = finishAdaptation)]
pub async fn finish_adaptation() -> Result<JsValue, JsError> {
    let session = take_mlm()?;
    let result = with_checkpoint(async |c| session.adapted_checkpoint(c).await).await;
    let history = session.evaluations();
    put_mlm(session);
    let adapted = result.map_err(js_err)?;
    STATE.with(|s| s.borrow_mut().adapted = Some(adapted));
    to_js(&history)
}

/// The adapted encoder's top guesses for every [MASK] in `text` (fill-mask).
#[wasm_bindgen(js_name = fillMask)]
pub async fn fill_mask(text: String, top_k: usize) -> Result<JsValue, JsError> {
    let session = take_mlm()?;
    let result = with_checkpoint(async |c| {
        let model = session.inference_model()?;
        crate::infer::fill_mask::fill_mask(&model, c, &text, top_k, session.recipe.max_len, session.base_device()).await
    })
    .await;
    put_mlm(session);
    to_js(&result.map_err(js_err)?)
}

/// The domain-adapted encoder as an HF `BertForMaskedLM` folder `[{name, bytes}]`.
#[wasm_bindgen(js_name = exportAdapted)]
pub async fn export_adapted() -> Result<JsValue, JsError> {
    let session = take_mlm()?;
    let result = with_checkpoint(async |c| session.export(c).await).await;
    put_mlm(session);
    exported_files(result.map_err(js_err)?)
}

/// Adds a labelled file as another task for multi-task training (named after the file);
/// returns its inspection and name.
#[wasm_bindgen(js_name = addTask)]
pub fn add_task(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    let table = data::parse_table(bytes, file_name).map_err(js_err)?;
    let out = inspection(&table)?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let base = crate::engine::multitask::task_name(file_name);
        let taken = |n: &str, s: &State| s.task_tables.iter().any(|t| t.0 == n) || s.train_table.as_ref().is_some_and(|t| crate::engine::multitask::task_name(&t.name) == n);
        let mut name = base.clone();
        let mut k = 2;
        while taken(&name, &s) {
            name = format!("{base}-{k}");
            k += 1;
        }
        js_sys::Reflect::set(&out, &"task".into(), &name.clone().into()).map_err(|_| JsError::new("internal: task name"))?;
        s.task_tables.push((name, table));
        Ok(out)
    })
}

#[wasm_bindgen(js_name = removeTask)]
pub fn remove_task(index: usize) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if index < s.task_tables.len() {
            s.task_tables.remove(index);
        }
    });
}

#[derive(serde::Deserialize)]
struct TaskColumns {
    text_column: String,
    label_column: String,
}

#[derive(Serialize)]
struct MultitaskStarted<'a> {
    tasks: &'a [crate::engine::multitask::TaskInfo],
    total_steps: usize,
    recipe: &'a Recipe,
}

/// Multi-task run: the main training file (with the recipe's columns and the page's eval
/// choice) is the first task, every added file another one with its own columns
/// (`columns[i]` for added task i).
#[wasm_bindgen(js_name = startMultitask)]
pub fn start_multitask(recipe: JsValue, columns: JsValue) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(recipe)?;
    let columns: Vec<TaskColumns> = serde_wasm_bindgen::from_value(columns).map_err(|e| JsError::new(&format!("task columns: {e}")))?;
    STATE.with(|s| {
        let mut guard = s.borrow_mut();
        let st = &mut *guard;
        let (device, _) = st.device.as_ref().ok_or_else(|| Missing::Backend.err())?.clone();
        let main = st.train_table.as_ref().ok_or_else(|| JsError::new("choose the main training file first: it is the first task"))?;
        if st.task_tables.is_empty() {
            return Err(JsError::new("add at least one more labelled file: multi-task training needs two or more tasks"));
        }
        if columns.len() != st.task_tables.len() {
            return Err(JsError::new("choose the text and label columns of every added task"));
        }
        let mut tasks = vec![crate::engine::multitask::task_from_table(&crate::engine::multitask::task_name(&main.name), main, st.eval_table.as_ref(), &recipe.text_column, &recipe.label_column, recipe.eval_fraction, recipe.seed).map_err(js_err)?];
        for ((name, table), c) in st.task_tables.iter().zip(&columns) {
            tasks.push(crate::engine::multitask::task_from_table(name, table, None, &c.text_column, &c.label_column, recipe.eval_fraction, recipe.seed).map_err(js_err)?);
        }
        let ckpt = st.checkpoint.as_mut().ok_or_else(|| Missing::Model.err())?;
        let session = crate::engine::multitask::MultiTaskSession::new(ckpt, &tasks, recipe, &device).map_err(js_err)?;
        let out = to_js(&MultitaskStarted { tasks: session.tasks(), total_steps: session.total_steps, recipe: &session.recipe })?;
        st.multitask = Some(session);
        Ok(out)
    })
}

fn take_multitask() -> Result<crate::engine::multitask::MultiTaskSession, JsError> {
    STATE.with(|s| s.borrow_mut().multitask.take()).ok_or_else(|| JsError::new("no multi-task run: press its Start first"))
}

fn put_multitask(session: crate::engine::multitask::MultiTaskSession) {
    STATE.with(|s| s.borrow_mut().multitask = Some(session));
}

#[wasm_bindgen(js_name = multitaskSteps, unchecked_return_type = "StepReport[]")]
pub async fn multitask_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut session = take_multitask()?;
    let result = session.run_for(budget_ms).await;
    put_multitask(session);
    to_js(&result.map_err(js_err)?)
}

#[wasm_bindgen(js_name = multitaskEvaluate)]
pub async fn multitask_evaluate() -> Result<JsValue, JsError> {
    let session = take_multitask()?;
    let result = session.evaluate().await;
    put_multitask(session);
    to_js(&result.map_err(js_err)?)
}

/// Every task's prediction for one text.
#[wasm_bindgen(js_name = multitaskPredict)]
pub async fn multitask_predict(text: String) -> Result<JsValue, JsError> {
    if text.trim().is_empty() {
        return Err(Missing::Text.err());
    }
    let session = take_multitask()?;
    let result = with_checkpoint(async |c| session.predict(c, &text).await).await;
    put_multitask(session);
    to_js(&result.map_err(js_err)?)
}

/// One HF classifier folder per task, `[{name: "<task>/<file>", bytes}]`.
#[wasm_bindgen(js_name = multitaskExport)]
pub async fn multitask_export() -> Result<JsValue, JsError> {
    let session = take_multitask()?;
    let result = with_checkpoint(async |c| session.export(c).await).await;
    put_multitask(session);
    exported_files(result.map_err(js_err)?)
}

/// The strategy presets the comparison view offers (name, one-line description, usual lr).
#[wasm_bindgen(js_name = strategyPresets)]
pub fn strategy_presets() -> Result<JsValue, JsError> {
    to_js(&crate::recipe::PRESETS)
}

#[derive(Serialize)]
struct CompareRun<'a> {
    name: &'a str,
    about: &'a str,
    recipe: &'a Recipe,
    total_steps: usize,
    trainable: crate::engine::TrainableState,
}

#[derive(Serialize)]
struct CompareStarted<'a> {
    train_count: usize,
    eval_count: usize,
    labels: &'a [String],
    runs: Vec<CompareRun<'a>>,
}

/// Starts a side-by-side comparison: the same model, data and base recipe, once per preset in
/// `presets` (each preset sets its strategy fields and usual learning rate).
#[wasm_bindgen(js_name = startComparison)]
pub fn start_comparison(recipe: JsValue, presets: Vec<String>) -> Result<JsValue, JsError> {
    let base = parse_recipe(recipe)?;
    if presets.len() < 2 {
        return Err(JsError::new("choose two strategies to compare"));
    }
    if presets.windows(2).any(|w| w[0] == w[1]) {
        return Err(JsError::new("choose two different strategies to compare"));
    }
    STATE.with(|s| {
        let mut guard = s.borrow_mut();
        let st = &mut *guard;
        let (device, td) = prepare(st, &base)?;
        let ckpt = st.checkpoint.as_mut().ok_or_else(|| Missing::Model.err())?;
        let steps = crate::recipe::planned_steps(&base, td.train_count());
        let layers = ckpt.config.num_hidden_layers;
        st.compare.clear();
        let mut runs = Vec::new();
        for name in &presets {
            let r = crate::recipe::preset_recipe(name, &base, false, steps, layers).map_err(js_err)?;
            let session = TrainSession::with_sources(ckpt, &td.sources, &td.eval, td.labels.clone(), r, &device).map_err(js_err)?;
            runs.push((name.clone(), session));
        }
        let out = to_js(&CompareStarted {
            train_count: td.train_count(),
            eval_count: td.eval.len(),
            labels: &td.labels,
            runs: runs
                .iter()
                .map(|(name, s)| CompareRun {
                    name,
                    about: crate::recipe::PRESETS.iter().find(|p| p.name == name.as_str()).map(|p| p.about).unwrap_or_default(),
                    recipe: &s.recipe,
                    total_steps: s.total_steps,
                    trainable: s.trainable(),
                })
                .collect(),
        })?;
        st.compare = runs;
        Ok(out)
    })
}

/// Trains every compared run for about `budget_ms` in total (the time split between the runs
/// still going); returns each run's step reports, in run order.
#[wasm_bindgen(js_name = compareSteps, unchecked_return_type = "StepReport[][]")]
pub async fn compare_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut runs = STATE.with(|s| std::mem::take(&mut s.borrow_mut().compare));
    if runs.is_empty() {
        return Err(JsError::new("no comparison is running: press Compare first"));
    }
    let going = runs.iter().filter(|r| !r.1.is_done()).count().max(1);
    let mut reports = Vec::with_capacity(runs.len());
    let mut failure = None;
    for (name, session) in runs.iter_mut() {
        if session.is_done() || failure.is_some() {
            reports.push(Vec::new());
            continue;
        }
        match session.run_for(budget_ms / going as f64).await {
            Ok(r) => reports.push(r),
            Err(e) => failure = Some(format!("{name}: {e}")),
        }
    }
    STATE.with(|s| s.borrow_mut().compare = runs);
    if let Some(f) = failure {
        return Err(JsError::new(&f));
    }
    to_js(&reports)
}

#[derive(Serialize)]
struct CompareResult {
    name: String,
    metrics: crate::infer::metrics::Metrics,
    trainable: crate::engine::TrainableState,
    seconds_per_step: f64,
    steps: usize,
}

/// Scores every compared run on the eval set.
#[wasm_bindgen(js_name = compareEvaluate)]
pub async fn compare_evaluate() -> Result<JsValue, JsError> {
    let runs = STATE.with(|s| std::mem::take(&mut s.borrow_mut().compare));
    let mut out = Vec::new();
    let mut failure = None;
    for (name, session) in &runs {
        match session.evaluate().await {
            Ok(metrics) => out.push(CompareResult {
                name: name.clone(),
                metrics,
                trainable: session.trainable(),
                seconds_per_step: session.train_seconds / session.step.max(1) as f64,
                steps: session.step,
            }),
            Err(e) => {
                failure = Some(format!("{name}: {e}"));
                break;
            }
        }
    }
    STATE.with(|s| s.borrow_mut().compare = runs);
    if let Some(f) = failure {
        return Err(JsError::new(&f));
    }
    to_js(&out)
}

fn take_session() -> Result<TrainSession, JsError> {
    STATE.with(|s| s.borrow_mut().session.take()).ok_or_else(|| {
        JsError::new("no training session: press Start first (or another request is still running)")
    })
}

fn put_session(session: TrainSession) {
    STATE.with(|s| s.borrow_mut().session = Some(session));
}

/// Runs training steps for about `budget_ms` (at least one) and returns their reports.
#[wasm_bindgen(js_name = trainSteps, unchecked_return_type = "StepReport[]")]
pub async fn train_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut session = take_session()?;
    let result = session.run_for(budget_ms).await;
    put_session(session);
    to_js(&result.map_err(js_err)?)
}

#[derive(Serialize)]
struct ExamplePrediction {
    text: String,
    gold: String,
    label: String,
    confidence: f64,
}

#[derive(Serialize)]
struct Evaluation {
    metrics: crate::infer::metrics::Metrics,
    predictions: Vec<ExamplePrediction>,
}

/// Scores the eval set with the current weights (metrics + per-example predictions).
#[wasm_bindgen]
pub async fn evaluate() -> Result<JsValue, JsError> {
    let session = take_session()?;
    let result = session.evaluate_all().await;
    let texts = STATE.with(|s| s.borrow().eval_texts.clone());
    put_session(session);
    let (metrics, preds) = result.map_err(js_err)?;
    to_js(&evaluation(metrics, preds, texts))
}

fn evaluation(metrics: crate::infer::metrics::Metrics, preds: Vec<crate::infer::classify::Prediction>, texts: Vec<(String, String)>) -> Evaluation {
    let predictions = texts
        .into_iter()
        .zip(preds)
        .map(|((text, gold), p)| ExamplePrediction { text, gold, confidence: p.probabilities[p.label_id], label: p.label })
        .collect();
    Evaluation { metrics, predictions }
}

/// Takes a snapshot of the session's current weights (before fine-tuning) for `baselineSteps`.
#[wasm_bindgen(js_name = startBaseline)]
pub fn start_baseline() -> Result<(), JsError> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let pending = s.session.as_ref().ok_or_else(|| JsError::new("no training session"))?.pending_evaluation().map_err(js_err)?;
        s.baseline = Some(pending);
        Ok(())
    })
}

/// Scores the snapshot for about `budget_ms`; its evaluation (as `evaluate`) once complete,
/// else null.
#[wasm_bindgen(js_name = baselineSteps)]
pub async fn baseline_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut pending = STATE.with(|s| s.borrow_mut().baseline.take()).ok_or_else(|| JsError::new("no evaluation in progress"))?;
    let result = pending.advance(budget_ms).await.map_err(js_err)?;
    match result {
        Some((metrics, preds)) => {
            let texts = STATE.with(|s| s.borrow().eval_texts.clone());
            to_js(&evaluation(metrics, preds, texts))
        }
        None => {
            STATE.with(|s| s.borrow_mut().baseline = Some(pending));
            Ok(JsValue::NULL)
        }
    }
}

/// Class probabilities for one text from the current model.
#[wasm_bindgen]
pub async fn predict(text: String) -> Result<JsValue, JsError> {
    if text.trim().is_empty() {
        return Err(Missing::Text.err());
    }
    let session = take_session()?;
    let ids = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let max_len = session.recipe.max_len;
        s.checkpoint.as_mut().map(|c| c.tokenizer.encode(&text, max_len))
    });
    let result = async {
        let ids = ids.ok_or_else(|| Error::Other("load a model first".into()))??;
        let clf = session.classifier()?;
        let logits = clf.logits(&[ids], 1, session.base_device()).await?;
        Ok::<_, Error>(clf.to_prediction(&logits[0]))
    }
    .await;
    put_session(session);
    to_js(&result.map_err(js_err)?)
}

#[derive(Serialize)]
struct ExportedFile {
    name: String,
    #[serde(with = "serde_bytes_as_uint8array")]
    bytes: Vec<u8>,
}

mod serde_bytes_as_uint8array {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

/// The fine-tuned model as HF folder files `[{name, bytes}]`.
/// `base_name` is the base model's name for a LoRA run's PEFT `adapter_config.json`.
#[wasm_bindgen(js_name = exportModel)]
pub async fn export_model(base_name: String) -> Result<JsValue, JsError> {
    let session = take_session()?;
    let result = with_checkpoint(async |c| session.export(c, &base_name).await).await;
    put_session(session);
    exported_files(result.map_err(js_err)?)
}

/// The fine-tuned classifier with int8 weights: `{files, report}`, the report comparing sizes and
/// the eval scores of the int8 and f32 weights (infer::classify::Int8Report).
#[wasm_bindgen(js_name = exportInt8)]
pub async fn export_int8() -> Result<JsValue, JsError> {
    let session = take_session()?;
    let result = with_checkpoint(async |c| session.export_int8(c).await).await;
    put_session(session);
    let (files, report) = result.map_err(js_err)?;
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"files".into(), &exported_files(files)?).map_err(|_| JsError::new("internal: files"))?;
    js_sys::Reflect::set(&out, &"report".into(), &to_js(&report)?).map_err(|_| JsError::new("internal: report"))?;
    Ok(out.into())
}

/// Lends the loaded model's checkpoint to `f` across awaits (a `RefCell` borrow cannot be held
/// over an await) and puts it back afterwards, whatever `f` returns.
pub(crate) async fn with_checkpoint<T>(f: impl AsyncFnOnce(&mut Checkpoint) -> crate::Result<T>) -> crate::Result<T> {
    let mut ckpt = STATE.with(|s| s.borrow_mut().checkpoint.take()).ok_or_else(|| Error::Other("load a model first".into()))?;
    let result = f(&mut ckpt).await;
    STATE.with(|s| s.borrow_mut().checkpoint = Some(ckpt));
    result
}

pub(crate) fn exported_files(files: Vec<(String, Vec<u8>)>) -> Result<JsValue, JsError> {
    let files: Vec<ExportedFile> = files.into_iter().map(|(name, bytes)| ExportedFile { name, bytes }).collect();
    // serialize_bytes becomes a Uint8Array with the default serializer.
    files
        .serialize(&serde_wasm_bindgen::Serializer::new())
        .map_err(|e| JsError::new(&format!("internal: {e}")))
}

#[derive(Serialize)]
struct ClassifierBench {
    training: crate::bench::BenchResult,
    forward: crate::bench::BenchResult,
    backend: Option<BackendInfo>,
}

/// The browser benchmark (bench/browser.mjs): training steps and forward passes of the loaded
/// classifier at `batch × len` on the current backend, as `burnish bench` times them natively.
#[wasm_bindgen(js_name = benchClassifier)]
pub async fn bench_classifier(batch: usize, len: usize, steps: usize, warmup: usize) -> Result<JsValue, JsError> {
    let device = current_device().ok_or_else(|| Missing::Backend.err())?;
    let (training, forward) = with_checkpoint(async |c| {
        let training = crate::bench::bench_training(c, batch, len, steps, warmup, &device).await?;
        let forward = crate::bench::bench_forward(c, batch, len, steps, warmup.max(1), &device).await?;
        Ok((training, forward))
    })
    .await
    .map_err(js_err)?;
    to_js(&ClassifierBench { training, forward, backend: current_backend() })
}
