//! Hugging Face `model.safetensors` in and out. Loading is declarative: the model constructors
//! (`models/bert.rs`) ask a `ParamSource` for each tensor by its HF name; whatever the file lacks
//! is initialised like HF's `_init_weights` (normal(0, initializer_range), zero bias, unit
//! LayerNorm) and reported. Export reads every parameter asynchronously (no synchronous GPU
//! reads, so it works in the browser) and writes the same names back.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

use crate::error::{Error, Result};

/// What loading found: tensors initialised because the file lacks them, and tensors the file
/// has that the model does not use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub initialized: Vec<String>,
    pub unexpected: Vec<String>,
    pub skipped_buffers: Vec<String>,
    /// "bert." (or "roberta.", "distilbert.") when the file's encoder keys carry that prefix, ""
    /// for a bare base model.
    pub prefix: String,
}

struct RawTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Named tensors of a checkpoint, with the bookkeeping needed for the load report.
pub struct ParamSource {
    tensors: BTreeMap<String, RawTensor>,
    used: BTreeSet<String>,
    initialized: Vec<String>,
    skipped: Vec<String>,
    prefix: String,
    init_range: f64,
    rng: StdRng,
    /// Names that may be absent (heads HF initialises, a tied LM head).
    optional: fn(&str) -> bool,
    /// What a complete file is, for the message about a missing tensor.
    kind: &'static str,
}

/// Cheap check of a weights file at load time (header only): valid safetensors holding an
/// encoder's embedding table, so a wrong file is refused before training starts.
pub fn validate_safetensors(bytes: &[u8]) -> Result<()> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Weights(format!("not a valid safetensors file ({e}); expected HF model.safetensors"))
    })?;
    let names = st.names();
    if !names.iter().any(|n| n.ends_with("embeddings.word_embeddings.weight")) {
        let mut sample: Vec<&str> = names.into_iter().take(5).collect();
        sample.sort();
        return Err(Error::Weights(format!(
            "no embeddings.word_embeddings.weight tensor: this is not a BERT, RoBERTa or DistilBERT checkpoint (first tensors: {})",
            sample.join(", ")
        )));
    }
    Ok(())
}

/// The task heads' names, outside the base model's prefix (BERT's classifier and masked-LM head,
/// RoBERTa's, DistilBERT's).
const HEADS: [&str; 7] = ["classifier.", "cls.", "lm_head.", "pre_classifier.", "vocab_transform.", "vocab_layer_norm.", "vocab_projector."];

fn head_name(name: &str) -> bool {
    HEADS.iter().any(|h| name.starts_with(h))
}

/// Names of the heads that may legitimately be absent (HF initialises them): the encoder itself
/// must be complete.
fn optional_name(name: &str) -> bool {
    name.starts_with("pooler.") || head_name(name)
}

impl ParamSource {
    /// Parses safetensors bytes. `seed` drives the initialisation of absent tensors.
    pub fn from_safetensors(bytes: &[u8], init_range: f64, seed: u64) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            Error::Weights(format!("not a valid safetensors file ({e}); expected HF model.safetensors"))
        })?;
        // Whatever precedes the word embeddings: "bert.", "roberta.", "distilbert." or nothing.
        let prefix = st
            .names()
            .iter()
            .find_map(|n| n.strip_suffix("embeddings.word_embeddings.weight"))
            .filter(|p| p.is_empty() || (p.ends_with('.') && !p[..p.len() - 1].contains('.')))
            .unwrap_or("")
            .to_string();
        let mut src = ParamSource::empty(init_range, seed);
        src.prefix = prefix;
        src.add_file(&st, |name| name.ends_with("position_ids"))?;
        Ok(src)
    }

    /// A decoder's weights: one `model.safetensors` or the shards of a sharded checkpoint (names
    /// kept as they are). `optional` names may be absent (a tied LM head); `skip` names are
    /// buffers, not parameters.
    pub fn from_shards(files: &[&[u8]], init_range: f64, seed: u64, optional: fn(&str) -> bool, skip: fn(&str) -> bool, kind: &'static str) -> Result<Self> {
        let mut src = ParamSource::empty(init_range, seed);
        src.optional = optional;
        src.kind = kind;
        for bytes in files {
            let st = SafeTensors::deserialize(bytes).map_err(|e| {
                Error::Weights(format!("not a valid safetensors file ({e}); expected HF model.safetensors or its shards"))
            })?;
            src.add_file(&st, skip)?;
        }
        Ok(src)
    }

    fn add_file(&mut self, st: &SafeTensors<'_>, skip: fn(&str) -> bool) -> Result<()> {
        let names = st.names();
        for name in names.iter().copied() {
            if skip(name) {
                self.skipped.push(name.to_string());
                continue;
            }
            let view = st.tensor(name).map_err(|e| Error::Weights(format!("tensor {name}: {e}")))?;
            // Burnish's int8 export: I8 rows with an F32 scale per row beside them (`{name}_scale`).
            let scale_name = format!("{name}_scale");
            let int8_base = name.strip_suffix("_scale").filter(|b| names.contains(b) && st.tensor(b).is_ok_and(|t| t.dtype() == Dtype::I8));
            if int8_base.is_some() {
                continue; // read with its int8 tensor
            }
            let data = if view.dtype() == Dtype::I8 {
                let scale = st.tensor(&scale_name).map_err(|_| Error::Weights(format!("tensor {name} is int8 but the file has no {scale_name} beside it")))?;
                let scales = to_f32(scale.dtype(), scale.data()).map_err(|e| Error::Weights(format!("tensor {scale_name}: {e}")))?;
                let rows = view.shape().first().copied().unwrap_or(0);
                if view.shape().len() != 2 || scales.len() != rows || rows == 0 {
                    return Err(Error::Weights(format!("tensor {name}: an int8 matrix needs one scale per row ({scale_name} has {} for {rows} rows)", scales.len())));
                }
                let cols = view.data().len() / rows;
                view.data().iter().enumerate().map(|(i, &b)| (b as i8) as f32 * scales[i / cols]).collect()
            } else {
                to_f32(view.dtype(), view.data()).map_err(|e| Error::Weights(format!("tensor {name}: {e}")))?
            };
            // A NaN or infinite weight makes every prediction NaN (which argmax turns into label 0).
            if let Some(i) = data.iter().position(|x| !x.is_finite()) {
                return Err(Error::Weights(format!(
                    "tensor {name} holds a non-finite value ({}) at element {i} of {}: the file is damaged",
                    data[i],
                    data.len()
                )));
            }
            let key = name.strip_prefix(self.prefix.as_str()).unwrap_or(name).to_string();
            if self.tensors.insert(key, RawTensor { shape: view.shape().to_vec(), data }).is_some() {
                return Err(Error::Weights(format!("tensor {name} appears in two weight files")));
            }
        }
        Ok(())
    }

    /// A source with no tensors: every parameter is initialised (used for tests and new heads).
    pub fn empty(init_range: f64, seed: u64) -> Self {
        ParamSource {
            tensors: BTreeMap::new(),
            used: BTreeSet::new(),
            initialized: Vec::new(),
            skipped: Vec::new(),
            prefix: String::new(),
            init_range,
            rng: StdRng::seed_from_u64(seed),
            optional: optional_name,
            kind: "encoder checkpoint",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Takes `name` with the given shape; `Ok(None)` when absent (or, for heads, of another
    /// shape, which means a new head with a different number of labels).
    fn take(&mut self, name: &str, shape: &[usize], replace_on_mismatch: bool) -> Result<Option<Vec<f32>>> {
        let Some(t) = self.tensors.get(name) else {
            if (self.optional)(name) {
                return Ok(None);
            }
            return Err(Error::Weights(format!(
                "missing tensor \"{}{name}\" (shape {shape:?}); the file does not look like a complete {}",
                self.prefix, self.kind
            )));
        };
        if t.shape != shape {
            if replace_on_mismatch {
                self.used.insert(name.to_string());
                return Ok(None);
            }
            return Err(Error::Weights(format!(
                "tensor \"{}{name}\" has shape {:?} but config.json implies {shape:?}",
                self.prefix, t.shape
            )));
        }
        self.used.insert(name.to_string());
        Ok(Some(t.data.clone()))
    }

    fn normal(&mut self, n: usize) -> Vec<f32> {
        // A broken initializer_range in config.json falls back to BERT's 0.02.
        let std = if self.init_range.is_finite() && self.init_range > 0.0 { self.init_range } else { 0.02 };
        match Normal::new(0.0f64, std) {
            Ok(dist) => (0..n).map(|_| dist.sample(&mut self.rng) as f32).collect(),
            Err(_) => vec![0.0; n],
        }
    }

    fn init_note(&mut self, name: &str) {
        self.initialized.push(name.to_string());
    }

    /// A matrix stored as in HF (`[rows, cols]`), e.g. an embedding table.
    pub fn matrix(&mut self, name: &str, rows: usize, cols: usize, device: &Device) -> Result<Param<Tensor<2>>> {
        let data = match self.take(name, &[rows, cols], false)? {
            Some(d) => d,
            None => {
                self.init_note(name);
                self.normal(rows * cols)
            }
        };
        Ok(Param::from_data(TensorData::new(data, [rows, cols]), device))
    }

    fn vector(&mut self, name: &str, n: usize, fill: f32, random: bool, replace: bool, device: &Device) -> Result<Param<Tensor<1>>> {
        let data = match self.take(name, &[n], replace)? {
            Some(d) => d,
            None => {
                self.init_note(name);
                if random { self.normal(n) } else { vec![fill; n] }
            }
        };
        Ok(Param::from_data(TensorData::new(data, [n]), device))
    }

    pub fn ones_or_load(&mut self, name: &str, n: usize, device: &Device) -> Result<Param<Tensor<1>>> {
        self.vector(name, n, 1.0, false, false, device)
    }

    pub fn zeros_or_load(&mut self, name: &str, n: usize, device: &Device) -> Result<Param<Tensor<1>>> {
        self.vector(name, n, 0.0, false, false, device)
    }

    fn linear_impl(&mut self, name: &str, d_in: usize, d_out: usize, replace: bool, device: &Device) -> Result<Linear> {
        let wname = format!("{name}.weight");
        // HF stores [out, in]; burn's row-layout Linear computes x · W with W as [in, out].
        let weight = match self.take(&wname, &[d_out, d_in], replace)? {
            Some(d) => transpose(&d, d_out, d_in),
            None => {
                self.init_note(&wname);
                self.normal(d_in * d_out)
            }
        };
        let bias = self.vector(&format!("{name}.bias"), d_out, 0.0, false, replace, device)?;
        Ok(Linear {
            weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
            bias: Some(bias),
        })
    }

    /// A linear layer without bias in HF layout (`[out, in]`), e.g. Llama's projections.
    pub fn linear_no_bias(&mut self, name: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
        let wname = format!("{name}.weight");
        let weight = match self.take(&wname, &[d_out, d_in], false)? {
            Some(d) => transpose(&d, d_out, d_in),
            None => {
                self.init_note(&wname);
                self.normal(d_in * d_out)
            }
        };
        Ok(Linear { weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device), bias: None })
    }

    /// GPT-2's `Conv1D`: the weight is stored `[in, out]`, as burn keeps it; with bias.
    pub fn conv1d(&mut self, name: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
        let weight = self.matrix(&format!("{name}.weight"), d_in, d_out, device)?;
        let bias = self.zeros_or_load(&format!("{name}.bias"), d_out, device)?;
        Ok(Linear { weight, bias: Some(bias) })
    }

    /// An encoder linear layer; it must be present with the right shape.
    pub fn linear(&mut self, name: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
        self.linear_impl(name, d_in, d_out, false, device)
    }

    /// A task head: loaded when present with the right shape, otherwise newly initialised.
    pub fn head_linear(&mut self, name: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
        self.linear_impl(name, d_in, d_out, true, device)
    }

    pub fn report(&self) -> LoadReport {
        LoadReport {
            initialized: self.initialized.clone(),
            unexpected: self
                .tensors
                .keys()
                .filter(|k| !self.used.contains(*k))
                .map(|k| if head_name(k) { k.clone() } else { format!("{}{k}", self.prefix) })
                .collect(),
            skipped_buffers: self.skipped.clone(),
            prefix: self.prefix.clone(),
        }
    }
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    match dtype {
        Dtype::F32 => Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F16 => Ok(bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()),
        Dtype::BF16 => Ok(bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()),
        Dtype::F64 => Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect()),
        other => Err(format!("dtype {other:?} is not supported (F32, F16, BF16, F64 are)")),
    }
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

impl ParamSource {
    /// Drops every tensor under `prefix` (e.g. an old classification head being replaced),
    /// listing them as unexpected so the report says they were not used.
    pub fn forget_prefix(&mut self, prefix: &str) {
        let keys: Vec<String> = self.tensors.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        for k in keys {
            self.tensors.remove(&k);
            self.skipped.push(format!("{k} (old head replaced)"));
        }
    }
}
