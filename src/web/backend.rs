//! The backend is chosen by measurement, not by existence: with a WebGPU adapter present, the
//! loaded model's forward pass is timed on the GPU and on the wasm CPU backend, and the faster
//! one trains. A software adapter (SwiftShader, what a VM or remote desktop gives Chrome) can be
//! 50× slower than the CPU; it is only used when measured faster or when the user insists.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use burn::tensor::Device;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::backend::{self, BackendInfo};
use crate::models::causal::CausalLm;
use crate::hf::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::bench::{ForwardProbe, median};

/// How the page asked for the backend (`?backend=` in its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Measure, then use the faster (the default).
    Auto,
    Cpu,
    Webgpu,
}

/// One measurement: the same forward pass timed on both backends.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// What was timed, e.g. "MiniLM forward pass, 4 × 64 tokens".
    pub what: String,
    pub cpu_ms: f64,
    /// `None` when the GPU did not finish within `gpu_limit_ms` (it is slower than that).
    pub gpu_ms: Option<f64>,
    pub gpu_limit_ms: f64,
    /// "cpu" or "webgpu".
    pub chosen: String,
}

/// What the page shows: the backend in use (flattened), how it was chosen, the GPU adapter
/// that exists (even when the CPU was chosen) and the last measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    #[serde(flatten)]
    pub current: BackendInfo,
    pub mode: Mode,
    pub gpu: Option<BackendInfo>,
    pub measurement: Option<Measurement>,
}

struct Backends {
    mode: Mode,
    cpu: (Device, BackendInfo),
    gpu: Option<(Device, BackendInfo)>,
    measurement: Option<Measurement>,
}

thread_local! {
    static BACKENDS: RefCell<Option<Backends>> = const { RefCell::new(None) };
}

fn report(b: &Backends) -> BackendReport {
    BackendReport {
        current: crate::web::current_backend().unwrap_or_else(|| b.cpu.1.clone()),
        mode: b.mode,
        gpu: b.gpu.as_ref().map(|g| g.1.clone()),
        measurement: b.measurement.clone(),
    }
}

fn select(b: &Backends, gpu: bool) {
    let chosen = match (&b.gpu, gpu) {
        (Some(g), true) => g.clone(),
        _ => b.cpu.clone(),
    };
    crate::web::set_device(chosen);
}

fn to_js<T: Serialize>(v: &T) -> std::result::Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&format!("internal: {e}")))
}

/// Initialises the backends for `mode` ("auto", "cpu" or "webgpu"). Idempotent. In auto mode
/// a hardware adapter is used until a measurement says otherwise; a software adapter is not.
#[wasm_bindgen(js_name = initBackend)]
pub async fn init_backend(mode: String) -> std::result::Result<JsValue, JsError> {
    if let Some(r) = BACKENDS.with(|b| b.borrow().as_ref().map(report)) {
        return to_js(&r);
    }
    let mode = match mode.as_str() {
        "cpu" => Mode::Cpu,
        "webgpu" | "gpu" => Mode::Webgpu,
        _ => Mode::Auto,
    };
    // backend::init falls back to the CPU (with the reason as its note) when forced or without
    // an adapter; otherwise the CPU is kept beside the GPU for the measurement.
    let (device, info) = backend::init(mode == Mode::Cpu).await;
    let (cpu, gpu) = if info.kind == "cpu" { ((device, info), None) } else { (backend::cpu(), Some((device, info))) };
    let use_gpu = gpu.as_ref().is_some_and(|(_, info)| mode == Mode::Webgpu || !info.software);
    let b = Backends { mode, cpu, gpu, measurement: None };
    select(&b, use_gpu);
    let r = report(&b);
    BACKENDS.with(|s| *s.borrow_mut() = Some(b));
    to_js(&r)
}

/// Resolves after `ms` milliseconds (the worker's setTimeout).
fn sleep(ms: f64) -> wasm_bindgen_futures::JsFuture {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        if let Ok(f) = js_sys::Reflect::get(&global, &JsValue::from_str("setTimeout")).and_then(|f| f.dyn_into::<js_sys::Function>()) {
            let _ = f.call2(&global, &resolve, &JsValue::from_f64(ms));
        }
    });
    wasm_bindgen_futures::JsFuture::from(promise)
}

/// `fut`'s output, or `None` when it takes longer than `ms`. The GPU work already submitted
/// still finishes on the device; only the wait is abandoned.
async fn within<T>(fut: impl Future<Output = T>, ms: f64) -> Option<T> {
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Times `pass` on the CPU (one warm-up, then `passes`), then on the GPU under time limits
/// derived from the CPU's figure, and selects the faster device.
async fn measure<P>(what: String, passes: usize, build: impl Fn(&Device) -> Result<P>, pass: impl AsyncFn(&P) -> Result<f64>) -> Result<Option<Measurement>> {
    let Some((cpu, gpu, software)) = BACKENDS.with(|b| {
        let b = b.borrow();
        let b = b.as_ref()?;
        if b.mode != Mode::Auto {
            return None;
        }
        let (gpu, info) = b.gpu.clone()?;
        Some((b.cpu.0.clone(), gpu, info.software))
    }) else {
        return Ok(None);
    };
    let probe = build(&cpu)?;
    pass(&probe).await?;
    let mut times = Vec::with_capacity(passes);
    for _ in 0..passes {
        times.push(pass(&probe).await?);
    }
    let cpu_s = median(&times);
    drop(probe);

    // The first GPU pass compiles every shader: a hardware GPU gets 20 s for it, a software one
    // 3 s (it has already lost if it needs more); each timed pass may take 3× the CPU's time.
    let warm_limit_ms = if software { 3_000f64 } else { 20_000f64 }.max(5.0 * cpu_s * 1e3);
    let pass_limit_ms = (3.0 * cpu_s * 1e3).max(1_000.0);
    let probe = build(&gpu)?;
    let mut gpu_s = None;
    if within(pass(&probe), warm_limit_ms).await.transpose()?.is_some() {
        let mut times = Vec::with_capacity(passes);
        for _ in 0..passes {
            match within(pass(&probe), pass_limit_ms).await.transpose()? {
                Some(t) => times.push(t),
                None => break,
            }
        }
        if times.len() == passes {
            gpu_s = Some(median(&times));
        }
    }
    let use_gpu = gpu_s.is_some_and(|g| g < cpu_s);
    let m = Measurement {
        what,
        cpu_ms: cpu_s * 1e3,
        gpu_ms: gpu_s.map(|g| g * 1e3),
        gpu_limit_ms: if gpu_s.is_none() { pass_limit_ms.max(warm_limit_ms) } else { pass_limit_ms },
        chosen: if use_gpu { "webgpu" } else { "cpu" }.into(),
    };
    BACKENDS.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.measurement = Some(m.clone());
            select(b, use_gpu);
        }
    });
    Ok(Some(m))
}

/// Times the loaded classifier's forward pass (`batch × len` tokens) on both backends and uses
/// the faster one for what is built next. In CPU or WebGPU mode, or without an adapter, it
/// measures nothing and returns the current report.
#[wasm_bindgen(js_name = measureBackends)]
pub async fn measure_backends(batch: usize, len: usize) -> std::result::Result<JsValue, JsError> {
    crate::web::with_checkpoint(async |ckpt| {
        let len = len.clamp(2, ckpt.config.max_tokens());
        let what = format!("classifier forward pass, {} × {len} tokens", batch.max(1));
        let ckpt: &Checkpoint = ckpt;
        measure(what, 2, |d| ForwardProbe::new(ckpt, batch.max(1), len, d), async |p: &ForwardProbe| p.pass().await).await
    })
    .await
    .map_err(|e| JsError::new(&e.to_string()))?;
    to_js(&BACKENDS.with(|b| b.borrow().as_ref().map(report)))
}

/// The same for a decoder: one forward pass of `len` tokens (the shape of a prompt's prefill
/// and, per token, of a training row) on a copy of the model built on each backend.
pub(crate) async fn measure_decoder(cm: &crate::models::causal::CausalModel, len: usize) -> Result<Option<Measurement>> {
    use burn::tensor::{Int, Tensor, TensorData};
    let len = len.clamp(2, cm.config.max_positions());
    let vocab = cm.config.vocab_size().min(cm.tokenizer.vocab_size()).max(2) as i64;
    let ids: Vec<i64> = (0..len as i64).map(|i| (i * 7919 + 13) % vocab).collect();
    let what = format!("decoder forward pass, 1 × {len} tokens");
    let build = |d: &Device| -> Result<(CausalLm, Device)> { Ok((cm.load(0, d)?.0, d.clone())) };
    let pass = async |(model, d): &(CausalLm, Device)| {
        let t0 = web_time::Instant::now();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, len]), d);
        crate::backend::read_f32(model.last_logits(input, None)).await?;
        Ok::<f64, Error>(t0.elapsed().as_secs_f64())
    };
    measure(what, 2, build, pass).await
}

/// The current backend report (after `measureBackends`, with its figures).
pub(crate) fn current_report() -> Option<BackendReport> {
    BACKENDS.with(|b| b.borrow().as_ref().map(report))
}
