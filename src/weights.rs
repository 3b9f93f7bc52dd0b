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
use crate::models::bert::{BertModel, MaskedLm, SequenceClassifier};

/// What loading found: tensors initialised because the file lacks them, and tensors the file
/// has that the model does not use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub initialized: Vec<String>,
    pub unexpected: Vec<String>,
    pub skipped_buffers: Vec<String>,
    /// "bert." when the file's encoder keys carry that prefix, "" otherwise.
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

/// Cheap check of a weights file at load time (header only): valid safetensors holding a BERT
/// embedding table, so a wrong file is refused before training starts.
pub fn validate_safetensors(bytes: &[u8]) -> Result<()> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Weights(format!("not a valid safetensors file ({e}); expected HF model.safetensors"))
    })?;
    let names = st.names();
    if !names.iter().any(|n| n.ends_with("embeddings.word_embeddings.weight")) {
        let mut sample: Vec<&str> = names.into_iter().take(5).collect();
        sample.sort();
        return Err(Error::Weights(format!(
            "no embeddings.word_embeddings.weight tensor: this is not a BERT checkpoint (first tensors: {})",
            sample.join(", ")
        )));
    }
    Ok(())
}

/// Names of the heads that may legitimately be absent (HF initialises them): the encoder itself
/// must be complete.
fn optional_name(name: &str) -> bool {
    name.starts_with("pooler.") || name.starts_with("classifier.") || name.starts_with("cls.predictions.")
}

impl ParamSource {
    /// Parses safetensors bytes. `seed` drives the initialisation of absent tensors.
    pub fn from_safetensors(bytes: &[u8], init_range: f64, seed: u64) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            Error::Weights(format!("not a valid safetensors file ({e}); expected HF model.safetensors"))
        })?;
        let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
        let mut src = ParamSource::empty(init_range, seed);
        src.prefix = prefix.to_string();
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
        for name in st.names() {
            if skip(name) {
                self.skipped.push(name.to_string());
                continue;
            }
            let view = st.tensor(name).map_err(|e| Error::Weights(format!("tensor {name}: {e}")))?;
            let data = to_f32(view.dtype(), view.data()).map_err(|e| Error::Weights(format!("tensor {name}: {e}")))?;
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
            kind: "BERT checkpoint",
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
                .map(|k| if k.starts_with("classifier.") || k.starts_with("cls.") { k.clone() } else { format!("{}{k}", self.prefix) })
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

/// How a parameter is laid out relative to HF.
#[derive(Clone, Copy)]
enum Layout {
    Same,
    /// burn `[in, out]` ↔ HF `[out, in]`
    Transposed,
}

fn linear_entries(out: &mut Vec<(String, Tensor<2>, Layout)>, out1: &mut Vec<(String, Tensor<1>)>, name: &str, l: &Linear) {
    out.push((format!("{name}.weight"), l.weight.val(), Layout::Transposed));
    if let Some(b) = &l.bias {
        out1.push((format!("{name}.bias"), b.val()));
    }
}

fn norm_entries(out1: &mut Vec<(String, Tensor<1>)>, name: &str, ln: &burn::nn::LayerNorm) {
    out1.push((format!("{name}.weight"), ln.gamma.val()));
    if let Some(b) = &ln.beta {
        out1.push((format!("{name}.bias"), b.val()));
    }
}

/// Every encoder parameter under its HF name (`bert.` prefix), pooler included.
fn encoder_entries(bert: &BertModel, m: &mut Vec<(String, Tensor<2>, Layout)>, v: &mut Vec<(String, Tensor<1>)>) {
    let e = &bert.embeddings;
    m.push(("bert.embeddings.word_embeddings.weight".into(), e.word_embeddings.weight.val(), Layout::Same));
    m.push(("bert.embeddings.position_embeddings.weight".into(), e.position_embeddings.weight.val(), Layout::Same));
    m.push(("bert.embeddings.token_type_embeddings.weight".into(), e.token_type_embeddings.weight.val(), Layout::Same));
    norm_entries(v, "bert.embeddings.LayerNorm", &e.layer_norm);
    for (i, layer) in bert.layers.iter().enumerate() {
        let p = format!("bert.encoder.layer.{i}");
        linear_entries(m, v, &format!("{p}.attention.self.query"), &layer.attention.query);
        linear_entries(m, v, &format!("{p}.attention.self.key"), &layer.attention.key);
        linear_entries(m, v, &format!("{p}.attention.self.value"), &layer.attention.value);
        linear_entries(m, v, &format!("{p}.attention.output.dense"), &layer.attention_output);
        norm_entries(v, &format!("{p}.attention.output.LayerNorm"), &layer.attention_norm);
        linear_entries(m, v, &format!("{p}.intermediate.dense"), &layer.intermediate);
        linear_entries(m, v, &format!("{p}.output.dense"), &layer.output);
        norm_entries(v, &format!("{p}.output.LayerNorm"), &layer.output_norm);
    }
    linear_entries(m, v, "bert.pooler.dense", &bert.pooler);
}

/// Every parameter of the classifier under its HF `BertForSequenceClassification` name.
fn classifier_entries(model: &SequenceClassifier) -> (Vec<(String, Tensor<2>, Layout)>, Vec<(String, Tensor<1>)>) {
    let mut m = Vec::new();
    let mut v = Vec::new();
    encoder_entries(&model.bert, &mut m, &mut v);
    linear_entries(&mut m, &mut v, "classifier", &model.classifier);
    (m, v)
}

/// HF `BertForMaskedLM` `model.safetensors` bytes: the encoder (with its pooler, which
/// transformers' masked-LM class ignores but a later classifier reuses) and `cls.predictions.*`.
/// The decoder is tied to the word embeddings, so like transformers only `cls.predictions.bias`
/// is written for it.
pub async fn export_mlm_safetensors(model: &MaskedLm) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    let mut v = Vec::new();
    encoder_entries(&model.bert, &mut m, &mut v);
    linear_entries(&mut m, &mut v, "cls.predictions.transform.dense", &model.transform);
    norm_entries(&mut v, "cls.predictions.transform.LayerNorm", &model.transform_norm);
    v.push(("cls.predictions.bias".into(), model.decoder_bias.val()));
    serialize_entries(m, v).await
}

/// Serialises the classifier to HF `model.safetensors` bytes, reading each parameter
/// asynchronously (safe on WebGPU in the browser). LoRA adapters are merged (`W + s·A·B`).
pub async fn export_classifier_safetensors(model: &SequenceClassifier) -> Result<Vec<u8>> {
    let (mats, vecs) = classifier_entries(model);
    serialize_entries(mats, vecs).await
}

/// A PEFT `adapter_model.safetensors`: every LoRA factor under PEFT's name
/// (`base_model.model.bert.encoder.layer.N.<module>.lora_A.weight` `[rank, in]`, `lora_B`
/// `[out, rank]`; burn keeps `A [in, rank]`, `B [rank, out]`, the transposes) and the trained head
/// as `modules_to_save` (`base_model.model.classifier.*`, `base_model.model.bert.pooler.dense.*`).
pub async fn export_peft_safetensors(model: &SequenceClassifier, targets: &[crate::recipe::LoraTarget]) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    let mut v = Vec::new();
    for (i, layer) in model.bert.layers.iter().enumerate() {
        for t in targets {
            let name = format!("base_model.model.bert.encoder.layer.{i}.{}", t.hf_name());
            let ad = layer
                .linear(*t)
                .weight
                .adapter()
                .ok_or_else(|| Error::Other(format!("{name} has no LoRA adapter: was the model trained with LoRA?")))?;
            m.push((format!("{name}.lora_A.weight"), ad.a.val(), Layout::Transposed));
            m.push((format!("{name}.lora_B.weight"), ad.b.val(), Layout::Transposed));
        }
    }
    linear_entries(&mut m, &mut v, "base_model.model.bert.pooler.dense", &model.bert.pooler);
    linear_entries(&mut m, &mut v, "base_model.model.classifier", &model.classifier);
    serialize_entries(m, v).await
}

/// PEFT's `adapter_model.safetensors` for LoRA-adapted linears named by their HF module names:
/// `base_model.model.<name>.lora_A.weight` `[rank, in]` and `lora_B.weight` `[out, rank]`.
pub async fn export_lora_adapters(linears: &[(String, &Linear)]) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    for (name, l) in linears {
        let ad = l.weight.adapter().ok_or_else(|| Error::Other(format!("{name} has no LoRA adapter: was the model trained with LoRA?")))?;
        m.push((format!("base_model.model.{name}.lora_A.weight"), ad.a.val(), Layout::Transposed));
        m.push((format!("base_model.model.{name}.lora_B.weight"), ad.b.val(), Layout::Transposed));
    }
    serialize_entries(m, Vec::new()).await
}

/// A causal LM's `model.safetensors` bytes under its HF names (GPT-2's Conv1D weights stay
/// `[in, out]`; Llama's linears go back to `[out, in]`). A tied LM head is not stored, as
/// transformers does not store it.
pub async fn export_causal_safetensors(model: &crate::causal::CausalLm) -> Result<Vec<u8>> {
    use crate::causal::CausalLm;
    let mut m = Vec::new();
    let mut v = Vec::new();
    match model {
        CausalLm::Gpt2(g) => {
            let conv = |m: &mut Vec<(String, Tensor<2>, Layout)>, v: &mut Vec<(String, Tensor<1>)>, name: String, l: &Linear| {
                m.push((format!("{name}.weight"), l.weight.val(), Layout::Same));
                if let Some(b) = &l.bias {
                    v.push((format!("{name}.bias"), b.val()));
                }
            };
            m.push(("transformer.wte.weight".into(), g.wte.weight.val(), Layout::Same));
            m.push(("transformer.wpe.weight".into(), g.wpe.weight.val(), Layout::Same));
            for (i, b) in g.blocks.iter().enumerate() {
                let p = format!("transformer.h.{i}");
                norm_entries(&mut v, &format!("{p}.ln_1"), &b.ln_1);
                conv(&mut m, &mut v, format!("{p}.attn.c_attn"), &b.c_attn);
                conv(&mut m, &mut v, format!("{p}.attn.c_proj"), &b.attn_proj);
                norm_entries(&mut v, &format!("{p}.ln_2"), &b.ln_2);
                conv(&mut m, &mut v, format!("{p}.mlp.c_fc"), &b.c_fc);
                conv(&mut m, &mut v, format!("{p}.mlp.c_proj"), &b.mlp_proj);
            }
            norm_entries(&mut v, "transformer.ln_f", &g.ln_f);
        }
        CausalLm::Llama(l) => {
            m.push(("model.embed_tokens.weight".into(), l.embed_tokens.weight.val(), Layout::Same));
            for (i, layer) in l.layers.iter().enumerate() {
                let p = format!("model.layers.{i}");
                v.push((format!("{p}.input_layernorm.weight"), layer.input_layernorm.gamma.val()));
                let a = &layer.self_attn;
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.q_proj"), &a.q_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.k_proj"), &a.k_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.v_proj"), &a.v_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.o_proj"), &a.o_proj);
                v.push((format!("{p}.post_attention_layernorm.weight"), layer.post_attention_layernorm.gamma.val()));
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.gate_proj"), &layer.gate_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.up_proj"), &layer.up_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.down_proj"), &layer.down_proj);
            }
            v.push(("model.norm.weight".into(), l.norm.gamma.val()));
            if let Some(head) = &l.lm_head {
                linear_entries(&mut m, &mut v, "lm_head", head);
            }
        }
    }
    serialize_entries(m, v).await
}

async fn serialize_entries(mats: Vec<(String, Tensor<2>, Layout)>, vecs: Vec<(String, Tensor<1>)>) -> Result<Vec<u8>> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(mats.len() + vecs.len());
    for (name, t, layout) in mats {
        let [r, c] = t.dims();
        let data = read_f32(t).await?;
        let (shape, data) = match layout {
            Layout::Same => (vec![r, c], data),
            Layout::Transposed => (vec![c, r], transpose(&data, r, c)),
        };
        named.push((name, shape, f32_bytes(&data)));
    }
    for (name, t) in vecs {
        let [n] = t.dims();
        let data = read_f32(t).await?;
        named.push((name, vec![n], f32_bytes(&data)));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(n, s, d)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Other(format!("safetensors view {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Other(format!("safetensors: {e}")))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Reads a float tensor to the host without blocking (the only kind of read allowed on wasm).
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Backend(format!("reading a tensor failed: {e:?}")))?;
    data.convert::<f32>().try_to_vec::<f32>().map_err(|e| Error::Backend(format!("tensor data: {e:?}")))
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
