//! AdamW on burn's public module traits (`ModuleMapper`, `Param`, `GradientsParams`), replacing
//! burn-optim's `ModuleOptimizer` for three things a browser needs and it lacks: its state is
//! written to bytes with every tensor read asynchronously (WebGPU in a tab allows no synchronous
//! read), it is loaded onto the run's own device (the default device there is a WebGPU device
//! that may not be initialised), and on the CPU backend each parameter's update is one fused pass
//! (split over rayon natively and in the threaded module) instead of ~15 tensor ops.
//!
//! The update is burn's `AdamW` (`AdaptiveMomentumW::transform`, then the decoupled decay and the
//! step) op for op: the tensor path uses the same ops in the same order, and the fused path the
//! same f32 arithmetic per element, so both give burn's results bit for bit on the CPU
//! (tests/suite/fidelity.rs checks it against burn's own optimizer).

use std::collections::HashMap;

use burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// AdamW's hyperparameters (PyTorch's and burn's defaults except where the recipe sets them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8, weight_decay: 0.0 }
    }
}

/// One parameter's moments (flattened) and the steps taken.
#[derive(Clone)]
struct Moments {
    time: i32,
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW with its per-parameter state, keyed by `ParamId` (a module record restores the ids).
#[derive(Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    states: HashMap<ParamId, Moments>,
    /// Use the fused CPU pass where it applies (off: always the tensor ops; tests compare both).
    pub fused: bool,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW { config, states: HashMap::new(), fused: true }
    }

    /// The same optimizer that always takes the tensor-op path (tests compare the two).
    pub fn without_fusion(mut self) -> Self {
        self.fused = false;
        self
    }

    /// Updates every parameter of `module` that has a gradient in `grads`, at the learning rate
    /// `lr` gives its parameter group.
    pub fn step<M: Module>(&mut self, lr: impl Into<ModuleLearningRate>, module: M, grads: GradientsParams) -> M {
        module.map(&mut Mapper { optim: self, grads, lr: lr.into() })
    }

    /// Parameters with state.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The update of one parameter (`param` and `grad` without autodiff, on the same device).
    fn update<const D: usize>(&mut self, id: ParamId, lr: f64, param: Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
        let dims = param.dims();
        let n = param.shape().num_elements();
        let state = self.states.remove(&id);
        let (param, moments) = match self.fused_update(lr, param.reshape([n]), grad.reshape([n]), state) {
            Ok(done) => done,
            Err((param, grad, state)) => self.tensor_update(lr, param, grad, state),
        };
        self.states.insert(id, moments);
        param.reshape(dims)
    }

    /// burn's tensor ops, in burn's order.
    fn tensor_update(&self, lr: f64, param: Tensor<1>, grad: Tensor<1>, state: Option<Moments>) -> (Tensor<1>, Moments) {
        let c = self.config;
        let (factor_1, factor_2) = (1.0 - c.beta_1, 1.0 - c.beta_2);
        let (m, v, time) = match state {
            Some(s) => (
                s.m.mul_scalar(c.beta_1).add(grad.clone().mul_scalar(factor_1)),
                s.v.mul_scalar(c.beta_2).add(grad.square().mul_scalar(factor_2)),
                s.time + 1,
            ),
            None => (grad.clone().mul_scalar(factor_1), grad.square().mul_scalar(factor_2), 1),
        };
        let m_hat = m.clone().div_scalar(1f32 - c.beta_1.powi(time));
        let v_hat = v.clone().div_scalar(1f32 - c.beta_2.powi(time));
        let delta = m_hat.div(v_hat.sqrt().add_scalar(c.epsilon));
        let rate = lr * c.weight_decay as f64;
        let decayed = if rate == 0.0 { param } else { param.mul_scalar(1.0 - rate) };
        (decayed - delta.mul_scalar(lr), Moments { time, m, v })
    }

    /// The same update as one pass over the parameter, its gradient and both moments, for f32
    /// tensors on burn's flex CPU backend, in place where the buffers are not shared (flex's
    /// `into_data` hands a uniquely owned buffer over without copying).
    #[allow(clippy::type_complexity)]
    fn fused_update(&self, lr: f64, param: Tensor<1>, grad: Tensor<1>, state: Option<Moments>) -> std::result::Result<(Tensor<1>, Moments), (Tensor<1>, Tensor<1>, Option<Moments>)> {
        let flex = Device::flex();
        let on_flex = |t: &Tensor<1>| t.dtype() == DType::F32 && t.device() == flex;
        let applies = self.fused && on_flex(&param) && on_flex(&grad) && state.as_ref().is_none_or(|s| on_flex(&s.m) && on_flex(&s.v));
        if !applies {
            return Err((param, grad, state));
        }
        let n = param.shape().num_elements();
        // Synchronous reads are safe here: `applies` admits only tensors on the flex CPU device
        // (WebGPU tensors take the tensor path above, which reads nothing).
        let mut p = param.into_data();
        let g = grad.into_data();
        let (mut m, mut v, time, first) = match state {
            Some(s) => (s.m.into_data(), s.v.into_data(), s.time + 1, false),
            None => (TensorData::zeros::<f32, _>([n]), TensorData::zeros::<f32, _>([n]), 1, true),
        };
        let c = self.config;
        let k = Kernel {
            beta_1: c.beta_1,
            beta_2: c.beta_2,
            factor_1: 1.0 - c.beta_1,
            factor_2: 1.0 - c.beta_2,
            correction_1: 1f32 - c.beta_1.powi(time),
            correction_2: 1f32 - c.beta_2.powi(time),
            epsilon: c.epsilon,
            decay: {
                let rate = lr * c.weight_decay as f64;
                (rate != 0.0).then_some((1.0 - rate) as f32)
            },
            lr: lr as f32,
            first,
        };
        {
            let (Ok(p), Ok(g), Ok(m), Ok(v)) = (p.as_mut_slice::<f32>(), g.as_slice::<f32>(), m.as_mut_slice::<f32>(), v.as_mut_slice::<f32>()) else {
                unreachable!("f32 tensors checked above give f32 slices");
            };
            const CHUNK: usize = 1 << 14;
            #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
            {
                use rayon::prelude::*;
                p.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK)).for_each(|(((p, m), v), g)| k.run(p, g, m, v));
            }
            #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
            for (((p, m), v), g) in p.chunks_mut(CHUNK).zip(m.chunks_mut(CHUNK)).zip(v.chunks_mut(CHUNK)).zip(g.chunks(CHUNK)) {
                k.run(p, g, m, v);
            }
        }
        FUSED_UPDATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((Tensor::from_data(p, &flex), Moments { time, m: Tensor::from_data(m, &flex), v: Tensor::from_data(v, &flex) }))
    }

    /// The state as bytes (safetensors: `{id}.m` and `{id}.v` per parameter, the step counts in
    /// the metadata), every tensor read asynchronously.
    pub async fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut ids: Vec<&ParamId> = self.states.keys().collect();
        ids.sort_by_key(|id| id.val());
        let mut named: Vec<(String, Vec<u8>, usize)> = Vec::with_capacity(2 * ids.len());
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "burnish-adamw-1".to_string());
        for id in ids {
            let s = &self.states[id];
            meta.insert(id.val().to_string(), s.time.to_string());
            for (part, t) in [("m", &s.m), ("v", &s.v)] {
                let data = crate::backend::read_f32(t.clone()).await?;
                named.push((format!("{}.{part}", id.val()), data.iter().flat_map(|x| x.to_le_bytes()).collect(), data.len()));
            }
        }
        let views = named
            .iter()
            .map(|(name, bytes, n)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*n], bytes).map(|v| (name.clone(), v)).map_err(|e| Error::Other(format!("optimizer state {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::Other(format!("saving the optimizer state: {e}")))
    }

    /// The state written by `to_bytes`, on `device`.
    pub fn load_bytes(&mut self, bytes: &[u8], device: &Device) -> Result<()> {
        let bad = |what: String| Error::Other(format!("the checkpoint's optimizer state cannot be read: {what}"));
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some("burnish-adamw-1") {
            return Err(bad("it was not written by this version's optimizer".into()));
        }
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut states = HashMap::new();
        for (key, time) in meta.iter().filter(|(k, _)| k.as_str() != "format") {
            let id: u64 = key.parse().map_err(|_| bad(format!("parameter \"{key}\"")))?;
            let time: i32 = time.parse().ok().filter(|t| *t > 0).ok_or_else(|| bad(format!("step count \"{time}\" of {key}")))?;
            let read = |part: &str| -> Result<Tensor<1>> {
                let view = st.tensor(&format!("{key}.{part}")).map_err(|e| bad(e.to_string()))?;
                if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 1 {
                    return Err(bad(format!("{key}.{part} is not a list of f32")));
                }
                let v: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                let n = v.len();
                Ok(Tensor::from_data(TensorData::new(v, [n]), device))
            };
            let (m, v) = (read("m")?, read("v")?);
            if m.dims() != v.dims() {
                return Err(bad(format!("the moments of {key} differ in size")));
            }
            states.insert(ParamId::from(id), Moments { time, m, v });
        }
        self.states = states;
        Ok(())
    }
}

struct Mapper<'a> {
    optim: &'a mut AdamW,
    grads: GradientsParams,
    lr: ModuleLearningRate,
}

impl ModuleMapper for Mapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let checkpointing = tensor.gradient_checkpointing_strategy();
        let inner = tensor.inner();
        let grad = if grad.device() == inner.device() { grad } else { grad.to_device(&inner.device()) };
        let lr = self.lr.lr_from_param(id, None);
        let mut updated = Tensor::from_inner(self.optim.update(id, lr, inner, grad));
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// How many parameter updates took the fused CPU path in this process (tests check that it ran).
static FUSED_UPDATES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn fused_updates() -> usize {
    FUSED_UPDATES.load(std::sync::atomic::Ordering::Relaxed)
}

/// The per-element update of the fused path.
struct Kernel {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    correction_1: f32,
    correction_2: f32,
    epsilon: f32,
    decay: Option<f32>,
    lr: f32,
    first: bool,
}

impl Kernel {
    #[inline]
    fn run(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            // The tensor path's ops, one by one: m·β1 + g·(1-β1); v·β2 + (g·g)·(1-β2) (the
            // first step starts from g·(1-β1) and (g·g)·(1-β2)); bias corrections; the
            // delta m̂ / (√v̂ + ε); p·(1 - lr·λ) - delta·lr.
            let (nm, nv) = if self.first {
                (g * self.factor_1, (g * g) * self.factor_2)
            } else {
                (*m * self.beta_1 + g * self.factor_1, *v * self.beta_2 + (g * g) * self.factor_2)
            };
            *m = nm;
            *v = nv;
            let delta = (nm / self.correction_1) / ((nv / self.correction_2).sqrt() + self.epsilon);
            let decayed = match self.decay {
                Some(d) => *p * d,
                None => *p,
            };
            *p = decayed - delta * self.lr;
        }
    }
}
