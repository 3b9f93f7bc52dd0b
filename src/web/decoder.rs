//! The wasm surface of the page's causal-LM section: load a decoder (GGUF, or HF files), stream a
//! generation token by token, fine-tune it (causal LM on plain text, or instruction tuning with
//! the prompt masked) in budgeted slices, and export the tuned HF folder. Its state is its own;
//! only the compute device is shared with the classifier studio (`web.rs`).

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_time::Instant;

use crate::models::causal::{CausalLm, CausalModel, DecoderConfig};
use crate::web::Missing;
use crate::infer::generate::{GenerateOptions, Generation, StopReason};
use crate::models::q8::Q8Llama;
use std::sync::Arc;
use crate::data::{self, Table};
use crate::error::Error;
use crate::engine::causal_lm::{LmEval, LmReport, LmSession};
use crate::data::decoder::EvalPrompt;
use crate::hf::tokenizer::TextTokenizer;
use crate::engine::Stepper;
use crate::recipe::Recipe;

#[derive(Default)]
struct DecoderState {
    model: Option<CausalModel>,
    /// The pretrained weights on the device, for generating before (or without) fine-tuning.
    base: Option<CausalLm>,
    data: Option<Table>,
    session: Option<LmSession>,
    /// Prompts held out for the before/after view (instruction tuning) or text starts.
    eval_prompts: Vec<EvalPrompt>,
    generation: Option<Running>,
    /// Changes whenever the base or the fine-tuned weights may have: the 8-bit copies below are
    /// reused only while it stays the same.
    version: u64,
    /// 8-bit copies for generation on the CPU (`GenerateOptions::int8`): of the base weights
    /// and of the fine-tuned ones, each with the `version` it was made at.
    q8_base: Option<(u64, Arc<Q8Llama>)>,
    q8_tuned: Option<(u64, Arc<Q8Llama>)>,
}

struct Running {
    g: Generation,
    model: CausalLm,
    tok: TextTokenizer,
    started: Instant,
}

thread_local! {
    static DEC: RefCell<DecoderState> = RefCell::new(DecoderState::default());
}

fn err(e: Error) -> JsError {
    crate::web::js_err(e)
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&format!("internal: {e}")))
}

fn device() -> Result<Device, JsError> {
    crate::web::current_device().ok_or_else(|| Missing::Backend.err())
}

#[derive(Serialize)]
struct DecoderSummary {
    architecture: String,
    layers: usize,
    vocab_size: usize,
    max_positions: usize,
    parameters: usize,
    initialized: Vec<String>,
    /// The model has a chat template (conversation data, chat-formatted prompts).
    chat_template: bool,
}

fn install(cm: CausalModel) -> Result<JsValue, JsError> {
    let dev = device()?;
    let (base, report) = cm.load(0, &dev).map_err(err)?;
    let summary = DecoderSummary {
        architecture: cm.config.architecture().into(),
        layers: cm.config.layers(),
        vocab_size: cm.config.vocab_size(),
        max_positions: cm.config.max_positions(),
        parameters: base.num_params(),
        initialized: report.initialized,
        chat_template: cm.chat_template.is_some(),
    };
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        d.session = None;
        d.generation = None;
        d.eval_prompts.clear();
        d.base = Some(base);
        d.model = Some(cm);
        d.version += 1;
    });
    to_js(&summary)
}

/// Times the loaded decoder's forward pass (`len` tokens) on the CPU and on the WebGPU adapter
/// and uses the faster one (web/backend.rs); when that is not where the weights are, they are
/// loaded again there. Without an adapter, or with a backend forced by the page, it measures
/// nothing. Returns the backend report.
#[wasm_bindgen(js_name = measureDecoderBackends)]
pub async fn measure_decoder_backends(len: usize) -> Result<JsValue, JsError> {
    let cm = DEC.with(|d| d.borrow_mut().model.take()).ok_or_else(|| Missing::Decoder.err())?;
    let before = crate::web::current_backend().map(|b| b.kind);
    let measured = crate::web::backend::measure_decoder(&cm, len).await;
    let moved = crate::web::current_backend().map(|b| b.kind) != before;
    let reloaded = if moved { device().and_then(|dev| cm.load(0, &dev).map_err(err)).map(|(base, _)| Some(base)) } else { Ok(None) };
    DEC.with(|d| d.borrow_mut().model = Some(cm));
    measured.map_err(err)?;
    if let Some(base) = reloaded? {
        DEC.with(|d| {
            let mut d = d.borrow_mut();
            d.base = Some(base);
            d.version += 1;
            d.generation = None;
        });
    }
    to_js(&crate::web::backend::current_report())
}

/// Loads a GGUF file (Llama / Qwen2 architectures; the tokenizer comes from its metadata).
#[wasm_bindgen(js_name = loadDecoderGguf)]
pub fn load_decoder_gguf(bytes: &[u8]) -> Result<JsValue, JsError> {
    install(crate::models::causal::from_gguf(bytes).map_err(err)?)
}

/// Loads HF files: config.json, tokenizer.json, and model.safetensors or every shard; with
/// tokenizer_config.json and chat_template.jinja (both optional) comes the chat template.
#[wasm_bindgen(js_name = loadDecoderFiles)]
pub fn load_decoder_files(
    config: &[u8],
    tokenizer: &[u8],
    weights: Vec<js_sys::Uint8Array>,
    tokenizer_config: Option<Vec<u8>>,
    chat_template: Option<String>,
) -> Result<JsValue, JsError> {
    let weights: Vec<Vec<u8>> = weights.iter().map(|w| w.to_vec()).collect();
    let cm = CausalModel::from_bytes(config, tokenizer, weights).map_err(err)?;
    install(cm.with_tokenizer_config(tokenizer_config, chat_template).map_err(err)?)
}

/// The shard names a `model.safetensors.index.json` lists.
#[wasm_bindgen(js_name = shardFiles)]
pub fn shard_files(index: &[u8]) -> Result<JsValue, JsError> {
    to_js(&crate::models::causal::shard_files(index).map_err(err)?)
}

/// The training file (JSONL / CSV / TSV with prompt and completion columns, or plain text).
#[wasm_bindgen(js_name = setLmData)]
pub fn set_lm_data(bytes: &[u8], file_name: &str) -> Result<JsValue, JsError> {
    let table = data::parse_table(bytes, file_name).map_err(err)?;
    #[derive(Serialize)]
    struct Info<'a> {
        name: &'a str,
        columns: &'a [String],
        rows: usize,
    }
    let out = to_js(&Info { name: &table.name, columns: &table.columns, rows: table.rows.len() })?;
    DEC.with(|d| d.borrow_mut().data = Some(table));
    Ok(out)
}


#[derive(Serialize)]
struct LmStarted {
    train_rows: usize,
    eval_rows: usize,
    total_steps: usize,
    epochs: usize,
    eval_prompts: Vec<EvalPrompt>,
    /// Parameters that train (all, or the LoRA factors) of `parameters`.
    trainable: usize,
    parameters: usize,
    /// HF module names in every layer that carry LoRA adapters (empty: full fine-tuning).
    lora_modules: Vec<&'static str>,
    /// Steps done (0, or where a resumed run goes on), the curve and held-out scores so far.
    step: usize,
    losses: Vec<f64>,
    history: Vec<LmEval>,
    recipe: Recipe,
}

/// Rows from the data for the recipe's task, split into training and held-out rows (seeded),
/// and up to three held-out prompts for the before/after view.
fn prepare(d: &DecoderState, recipe: &Recipe) -> Result<(Vec<crate::data::text::LmRow>, Vec<crate::data::text::LmRow>, Vec<EvalPrompt>), JsError> {
    let cm = d.model.as_ref().ok_or_else(|| Missing::Model.err())?;
    let table = d.data.as_ref().ok_or_else(|| Missing::TrainingFile.err())?;
    recipe.validate(cm.config.max_positions()).map_err(err)?;
    let (rows, prompts) = crate::data::decoder::rows_for_task(cm, table, recipe).map_err(err)?;
    // The same seeded split for rows and their prompts (one prompt per row for instruct).
    let (train, eval, eval_idx) = crate::data::text::split_rows(&rows, recipe.eval_fraction, recipe.seed);
    let eval_prompts: Vec<EvalPrompt> = if recipe.task == crate::recipe::Task::Instruct {
        eval_idx.iter().take(3).filter_map(|&i| prompts.get(i).cloned()).collect()
    } else {
        prompts.into_iter().take(3).collect()
    };
    Ok((train, eval, eval_prompts))
}

fn parse_recipe(recipe: &JsValue) -> Result<Recipe, JsError> {
    let text: String = js_sys::JSON::stringify(recipe).map_err(|_| JsError::new("recipe: not a JSON object"))?.into();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("recipe: {e}")))
}

/// The run's summary for the page (with the curve so far when resumed).
fn started(d: &DecoderState, session: &LmSession, eval_prompts: Vec<EvalPrompt>) -> Result<JsValue, JsError> {
    to_js(&LmStarted {
        train_rows: session.train_count(),
        eval_rows: session.eval_count(),
        total_steps: session.total_steps,
        epochs: session.recipe.epochs,
        eval_prompts,
        trainable: session.objective.trainable,
        parameters: d.base.as_ref().map_or(0, |b| b.num_params()),
        lora_modules: session.objective.lora_modules.clone(),
        step: session.step,
        losses: session.losses.clone(),
        history: session.evaluations(),
        recipe: session.recipe.clone(),
    })
}

/// Builds the run's rows from the loaded model and data, makes the session with `make` (a new
/// run or a resumed one), installs it and returns its summary.
fn begin(recipe: JsValue, make: impl FnOnce(&CausalModel, Vec<crate::data::text::LmRow>, Vec<crate::data::text::LmRow>, Recipe, &Device) -> crate::error::Result<LmSession>) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(&recipe)?;
    let dev = device()?;
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        let (train, eval, eval_prompts) = prepare(&d, &recipe)?;
        let cm = d.model.as_ref().ok_or_else(|| Missing::Model.err())?;
        let session = make(cm, train, eval, recipe, &dev).map_err(err)?;
        let out = started(&d, &session, eval_prompts.clone())?;
        d.session = Some(session);
        d.eval_prompts = eval_prompts;
        d.version += 1;
        Ok(out)
    })
}

/// Prepares a run: rows from the data (plain text packed into blocks, prompt → completion pairs
/// in the template, or conversations in the chat template), a seeded held-out share, and the
/// session.
#[wasm_bindgen(js_name = startLm)]
pub fn start_lm(recipe: JsValue) -> Result<JsValue, JsError> {
    begin(recipe, |cm, train, eval, recipe, dev| LmSession::new(cm, train, eval, recipe, dev))
}

/// Continues a run from its checkpoint (the model and data loaded as they were; `recipe` is the
/// run's recipe, which builds the same rows).
#[wasm_bindgen(js_name = resumeLm)]
pub fn resume_lm(recipe: JsValue, checkpoint: &[u8]) -> Result<JsValue, JsError> {
    begin(recipe, |cm, train, eval, _, dev| LmSession::resume(cm, train, eval, checkpoint, dev))
}

/// The running fine-tuning's checkpoint (weights, AdamW state, data order, RNG, curve), read
/// asynchronously (WebGPU allows nothing else).
#[wasm_bindgen(js_name = saveLmCheckpoint)]
pub async fn save_lm_checkpoint() -> Result<Vec<u8>, JsError> {
    let s = DEC.with(|d| d.borrow_mut().session.take()).ok_or_else(|| JsError::new("no fine-tuning run"))?;
    let bytes = s.checkpoint().await;
    DEC.with(|d| d.borrow_mut().session = Some(s));
    bytes.map_err(err)
}

#[derive(Serialize)]
struct LmProgress {
    reports: Vec<LmReport>,
    history: Vec<LmEval>,
}

/// Training steps for about `budget_ms` (at least one); the first also scores the held-out rows.
#[wasm_bindgen(js_name = lmSteps, unchecked_return_type = "Progress")]
pub async fn lm_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut s = DEC.with(|d| d.borrow_mut().session.take()).ok_or_else(|| JsError::new("no fine-tuning run: press Start first"))?;
    let r = s.run_for(budget_ms).await;
    let history = s.evaluations();
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        d.session = Some(s);
        d.version += 1;
    });
    to_js(&LmProgress { reports: r.map_err(err)?, history })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GenerateRequest {
    prompt: String,
    options: GenerateOptions,
    /// Generate with the fine-tuned weights (else the pretrained ones).
    tuned: bool,
    /// Put the prompt in the model's chat template as the user's message.
    chat: bool,
    /// The prompt already is a chat-template rendering (a held-out conversation).
    templated: bool,
}

/// Starts a generation (the tokens come from `generateSteps`). With `options.int8` on the CPU
/// backend, a Llama/Qwen2 model generates on its 8-bit copy (made once per weights version).
#[wasm_bindgen(js_name = startGeneration)]
pub async fn start_generation(request: JsValue) -> Result<JsValue, JsError> {
    let text: String = js_sys::JSON::stringify(&request).map_err(|_| JsError::new("generation: not a JSON object"))?.into();
    let req: GenerateRequest = serde_json::from_str(&text).map_err(|e| JsError::new(&format!("generation options: {e}")))?;
    let on_cpu = crate::web::current_backend().is_some_and(|b| b.kind == "cpu");
    let (mut g, model, tok, n, version, cached) = DEC.with(|d| {
        let d = d.borrow();
        let cm = d.model.as_ref().ok_or_else(|| Missing::Model.err())?;
        let model = if req.tuned {
            d.session.as_ref().ok_or_else(|| Missing::Tuning.err())?.inference_model().map_err(err)?
        } else {
            d.base.clone().ok_or_else(|| Missing::Model.err())?
        };
        let ids = if req.chat {
            let t = cm.chat_template.as_ref().ok_or_else(|| JsError::new("this model has no chat template (load its tokenizer_config.json with it)"))?;
            let text = t.render(&[crate::hf::chat_template::Message { role: "user".into(), content: req.prompt.clone() }], true).map_err(err)?;
            cm.tokenizer.encode_plain(&text).map_err(err)?
        } else {
            crate::data::decoder::prompt_ids(&cm.tokenizer, &req.prompt, req.templated).map_err(err)?
        };
        let n = ids.len();
        let tok = TextTokenizer::from_bytes(cm.tokenizer.raw()).map_err(err)?;
        let g = Generation::new(&model, ids, req.options.clone(), cm.eos.clone(), cm.config.max_positions()).map_err(err)?;
        let slot = if req.tuned { &d.q8_tuned } else { &d.q8_base };
        let cached = slot.as_ref().filter(|(v, _)| *v == d.version).map(|(_, q)| q.clone());
        Ok::<_, JsError>((g, model, tok, n, d.version, cached))
    })?;
    if req.options.int8 && on_cpu {
        let q8 = match cached {
            Some(q) => Some(q),
            None => crate::infer::generate::int8_model(&model).await.map_err(err)?.map(Arc::new),
        };
        if let Some(q8) = q8 {
            g.use_int8(q8.clone());
            DEC.with(|d| {
                let mut d = d.borrow_mut();
                if d.version == version {
                    *(if req.tuned { &mut d.q8_tuned } else { &mut d.q8_base }) = Some((version, q8));
                }
            });
        }
    }
    let int8 = g.int8();
    DEC.with(|d| d.borrow_mut().generation = Some(Running { g, model, tok, started: Instant::now() }));
    to_js(&serde_json::json!({ "prompt_tokens": n, "int8": int8 }))
}

#[derive(Serialize)]
struct GenerationProgress {
    text: String,
    tokens: usize,
    done: bool,
    stopped: Option<StopReason>,
    tokens_per_s: f64,
    /// The tokens come from the 8-bit weights.
    int8: bool,
}

/// Generates tokens for about `budget_ms` (at least one) and returns the text so far.
#[wasm_bindgen(js_name = generateSteps)]
pub async fn generate_steps(budget_ms: f64) -> Result<JsValue, JsError> {
    let mut run = DEC.with(|d| d.borrow_mut().generation.take()).ok_or_else(|| JsError::new("no generation running"))?;
    let t0 = Instant::now();
    let mut result = Ok(());
    loop {
        match run.g.step(&run.model, &run.tok).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        if run.g.stopped.is_some() || t0.elapsed().as_secs_f64() * 1000.0 >= budget_ms {
            break;
        }
    }
    let text = run.g.text(&run.tok);
    let out = GenerationProgress {
        text: text.map_err(err)?,
        tokens: run.g.generated().len(),
        done: run.g.stopped.is_some(),
        stopped: run.g.stopped,
        tokens_per_s: run.g.generated().len() as f64 / run.started.elapsed().as_secs_f64().max(1e-9),
        int8: run.g.int8(),
    };
    result.map_err(err)?;
    if !out.done {
        DEC.with(|d| d.borrow_mut().generation = Some(run));
    }
    to_js(&out)
}

/// Ends the running generation (the Stop button).
#[wasm_bindgen(js_name = stopGeneration)]
pub fn stop_generation() {
    DEC.with(|d| d.borrow_mut().generation = None);
}

/// Training-memory estimate for the loaded decoder at `batch × max_len` under the (partial)
/// recipe's strategy, with what the backend says about that size.
#[wasm_bindgen(js_name = estimateDecoderMemory)]
pub fn estimate_decoder_memory(batch_size: usize, max_len: usize, recipe: JsValue) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(&recipe)?;
    DEC.with(|d| {
        let d = d.borrow();
        let cm = d.model.as_ref().ok_or_else(|| Missing::Model.err())?;
        let est = crate::web::with_backend_warnings(crate::engine::memory::estimate_decoder_memory(&cm.config, &recipe, batch_size.max(1), max_len.max(1)));
        to_js(&est)
    })
}

/// The same estimate for a decoder config.json not loaded (the decoder gallery: what the recipe
/// would need before anything is downloaded). The config goes through the same checks.
#[wasm_bindgen(js_name = estimateDecoderMemoryForConfig)]
pub fn estimate_decoder_memory_for_config(config_json: String, batch_size: usize, max_len: usize, recipe: JsValue) -> Result<JsValue, JsError> {
    let recipe = parse_recipe(&recipe)?;
    let config = DecoderConfig::from_bytes(config_json.as_bytes()).map_err(err)?;
    let est = crate::web::with_backend_warnings(crate::engine::memory::estimate_decoder_memory(&config, &recipe, batch_size.max(1), max_len.max(1)));
    to_js(&est)
}

/// The fine-tuned model as HF folder files `[{name, bytes}]` (with `peft/` after a LoRA run,
/// naming `base_name` as its base model).
#[wasm_bindgen(js_name = exportDecoder)]
pub async fn export_decoder(base_name: String) -> Result<JsValue, JsError> {
    crate::web::exported_files(decoder_files(&base_name).await?)
}

/// The fine-tuned decoder's HF folder files (the session and model are lent across the await).
async fn decoder_files(base_name: &str) -> Result<Vec<(String, Vec<u8>)>, JsError> {
    let s = DEC.with(|d| d.borrow_mut().session.take()).ok_or_else(|| Missing::Tuning.err())?;
    let cm = DEC.with(|d| d.borrow_mut().model.take());
    let files = match &cm {
        Some(c) => s.export(c, base_name).await,
        None => Err(Error::Other("load a model first".into())),
    };
    DEC.with(|d| {
        let mut d = d.borrow_mut();
        d.session = Some(s);
        d.model = cm;
    });
    files.map_err(err)
}

/// The fine-tuned decoder as one GGUF file (`ty`: "f16", "q8_0" or "f32"; hf::gguf_write) for
/// llama.cpp, Ollama or LM Studio: its merged weights, tokenizer and chat template.
#[wasm_bindgen(js_name = exportDecoderGguf)]
pub async fn export_decoder_gguf(ty: String, name: String) -> Result<Vec<u8>, JsError> {
    let ty = crate::hf::gguf_write::GgufType::parse(&ty).map_err(err)?;
    let files = decoder_files(&name).await?;
    let get = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, b)| b.as_slice());
    let missing = |n: &str| err(Error::Other(format!("the export has no {n}")));
    let template = get("chat_template.jinja").map(|b| String::from_utf8_lossy(b).into_owned());
    let weights = [get("model.safetensors").ok_or_else(|| missing("model.safetensors"))?];
    crate::hf::gguf_write::hf_to_gguf(
        get("config.json").ok_or_else(|| missing("config.json"))?,
        get("tokenizer.json").ok_or_else(|| missing("tokenizer.json"))?,
        &weights,
        get("tokenizer_config.json"),
        template.as_deref(),
        ty,
        &name,
    )
    .map_err(err)
}

/// Exact match, ROUGE-L and chrF of generated answers against their references
/// (`[[prediction, reference], …]`).
#[wasm_bindgen(js_name = generationMetrics)]
pub fn generation_metrics(pairs: JsValue) -> Result<JsValue, JsError> {
    let pairs: Vec<(String, String)> = serde_wasm_bindgen::from_value(pairs).map_err(|e| JsError::new(&format!("pairs: {e}")))?;
    to_js(&crate::infer::metrics::generation_metrics(&pairs))
}

/// The browser benchmark (bench/browser.mjs): the loaded decoder's training steps under
/// `strategy` ("full" or "lora", rank 8 on q and v as `burnish bench`) at `batch × len`, then
/// greedy generation of `gen_tokens` tokens, on the current backend.
#[wasm_bindgen(js_name = benchDecoder)]
pub async fn bench_decoder(strategy: String, batch: usize, len: usize, steps: usize, warmup: usize, gen_tokens: usize) -> Result<JsValue, JsError> {
    let dev = device()?;
    let strategy: crate::recipe::Strategy = serde_json::from_value(serde_json::json!(strategy)).map_err(|e| JsError::new(&format!("strategy: {e}")))?;
    let recipe = Recipe { task: crate::recipe::Task::CausalLm, strategy, batch_size: batch, max_len: len, lr: 1e-4, ..Recipe::default() };
    let cm = DEC.with(|d| d.borrow_mut().model.take()).ok_or_else(|| Missing::Decoder.err())?;
    let result = crate::bench::bench_decoder(&cm, &recipe, steps, warmup, gen_tokens, &dev).await;
    DEC.with(|d| d.borrow_mut().model = Some(cm));
    to_js(&result.map_err(err)?)
}
