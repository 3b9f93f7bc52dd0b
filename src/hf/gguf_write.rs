//! A fine-tuned decoder's Hugging Face files (config.json, tokenizer.json, the safetensors
//! weights, the chat template) written as one GGUF file for llama.cpp, Ollama, LM Studio and
//! transformers' GGUF loader, in F32, F16 or Q8_0. The layout is llama.cpp's own
//! (convert_hf_to_gguf.py): its tensor names, q/k permuted for the rotary of the `llama`
//! architecture only, 1-D tensors (norms, biases) kept in F32, and the byte-level BPE vocabulary
//! as `tokenizer.ggml.*` (tokens, types, merges, special ids, the chat template). `hf::gguf`
//! reads it back, and the tests load it with the `gguf` package and transformers.

use serde_json::Value;

use crate::error::{Error, Result};

/// The weights' encoding in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufType {
    F32,
    F16,
    /// 8-bit blocks of 32 weights with one f16 scale (llama.cpp's Q8_0): a quarter of F32.
    Q8_0,
}

impl GgufType {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(GgufType::F32),
            "f16" => Ok(GgufType::F16),
            "q8_0" | "q8" => Ok(GgufType::Q8_0),
            other => Err(Error::Other(format!("GGUF type \"{other}\" is not one Burnish writes (f32, f16, q8_0)"))),
        }
    }

    fn ggml(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::Q8_0 => 8,
        }
    }

    /// `general.file_type` (llama.cpp's LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q8_0).
    fn file_type(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::Q8_0 => 7,
        }
    }
}

const ALIGN: usize = 32;

/// One metadata value.
enum V {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

struct Out(Vec<u8>);

impl Out {
    fn u32(&mut self, v: u32) {
        self.0.extend(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend(v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend(s.as_bytes());
    }
    fn kv(&mut self, key: &str, v: &V) {
        self.str(key);
        match v {
            V::U32(x) => {
                self.u32(4);
                self.u32(*x);
            }
            V::F32(x) => {
                self.u32(6);
                self.0.extend(x.to_le_bytes());
            }
            V::Bool(b) => {
                self.u32(7);
                self.0.push(*b as u8);
            }
            V::Str(s) => {
                self.u32(8);
                self.str(s);
            }
            V::Strs(items) => {
                self.u32(9);
                self.u32(8);
                self.u64(items.len() as u64);
                for s in items {
                    self.str(s);
                }
            }
            V::I32s(items) => {
                self.u32(9);
                self.u32(5);
                self.u64(items.len() as u64);
                for x in items {
                    self.0.extend(x.to_le_bytes());
                }
            }
        }
    }
    fn pad(&mut self) {
        while self.0.len() % ALIGN != 0 {
            self.0.push(0);
        }
    }
}

/// HF → llama.cpp name of a Llama-family tensor (the inverse of `hf::gguf`'s mapping).
fn gguf_name(hf: &str) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let (g, _) = crate::hf::gguf::LAYER_MODULES.iter().find(|(_, hf)| *hf == module)?;
    Some(format!("blk.{layer}.{g}.{kind}"))
}

/// llama.cpp's q/k permutation for the `llama` architecture's rotary (`LlamaModel.permute`):
/// rows `[heads, 2, dim/2]` → `[heads, dim/2, 2]`. `rows` × `cols`.
fn permute(w: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let half = rows / heads / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for two in 0..2 {
            for i in 0..half {
                let src = h * 2 * half + two * half + i;
                let dst = h * 2 * half + i * 2 + two;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Q8_0 blocks of `data` (whose length is a multiple of 32): per block an f16 scale
/// `d = max|x| / 127` and 32 int8 values `round(x / d)`.
pub fn quantize_q8_0(data: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 32 * 34);
    for block in data.chunks(32) {
        let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend(half::f16::from_f32(d).to_le_bytes());
        for x in block {
            out.push(((x * inv).round().clamp(-127.0, 127.0) as i8) as u8);
        }
    }
    out
}

fn need(cfg: &Value, key: &str) -> Result<usize> {
    cfg[key].as_u64().and_then(|v| usize::try_from(v).ok()).ok_or_else(|| Error::Config(format!("config.json has no \"{key}\"")))
}

/// The byte-level BPE vocabulary as `tokenizer.ggml.*` metadata.
fn tokenizer_meta(tok: &Value, vocab_size: usize, add: &mut dyn FnMut(&str, V)) -> Result<()> {
    let model = &tok["model"];
    let byte_level = |v: &Value| -> bool {
        v["type"] == "ByteLevel" || v["pretokenizers"].as_array().is_some_and(|a| a.iter().any(|p| p["type"] == "ByteLevel"))
    };
    if model["type"] != "BPE" || !byte_level(&tok["pre_tokenizer"]) {
        return Err(Error::Tokenizer(
            "GGUF export needs a byte-level BPE tokenizer (GPT-2 style, as SmolLM2's and Qwen's are); this tokenizer.json is another kind".into(),
        ));
    }
    let vocab = model["vocab"].as_object().ok_or_else(|| Error::Tokenizer("tokenizer.json has no model.vocab".into()))?;
    let mut tokens: Vec<Option<String>> = Vec::new();
    let mut types: Vec<i32> = Vec::new();
    let mut put = |id: usize, t: &str, ty: i32| {
        if id >= tokens.len() {
            tokens.resize(id + 1, None);
            types.resize(id + 1, 1);
        }
        tokens[id] = Some(t.to_string());
        types[id] = ty;
    };
    for (t, id) in vocab {
        let id = id.as_u64().and_then(|i| usize::try_from(i).ok()).ok_or_else(|| Error::Tokenizer(format!("vocabulary entry {t} has no id")))?;
        put(id, t, 1);
    }
    for a in tok["added_tokens"].as_array().map(Vec::as_slice).unwrap_or_default() {
        if let (Some(id), Some(content)) = (a["id"].as_u64().and_then(|i| usize::try_from(i).ok()), a["content"].as_str()) {
            put(id, content, if a["special"].as_bool().unwrap_or(false) { 3 } else { 4 });
        }
    }
    if tokens.len() > vocab_size {
        return Err(Error::Tokenizer(format!("the tokenizer has ids up to {} but config.json's vocab_size is {vocab_size}", tokens.len() - 1)));
    }
    // llama.cpp's converter fills unused embedding rows with [PAD<i>] tokens of type UNUSED (5).
    let mut list = Vec::with_capacity(vocab_size);
    for i in 0..vocab_size {
        match tokens.get(i).cloned().flatten() {
            Some(t) => list.push(t),
            None => {
                list.push(format!("[PAD{i}]"));
                if i < types.len() {
                    types[i] = 5;
                } else {
                    types.push(5);
                }
            }
        }
    }
    let merges: Vec<String> = model["merges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_str().map(String::from).or_else(|| m.as_array().map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))))
        .collect();
    add("tokenizer.ggml.model", V::Str("gpt2".into()));
    add("tokenizer.ggml.tokens", V::Strs(list));
    add("tokenizer.ggml.token_type", V::I32s(types));
    add("tokenizer.ggml.merges", V::Strs(merges));
    Ok(())
}

/// One GGUF file from a decoder's HF files (`weights`: model.safetensors or its shards).
pub fn hf_to_gguf(config: &[u8], tokenizer: &[u8], weights: &[&[u8]], tokenizer_config: Option<&[u8]>, chat_template: Option<&str>, ty: GgufType, name: &str) -> Result<Vec<u8>> {
    let cfg: Value = serde_json::from_slice(config).map_err(|e| Error::Config(format!("config.json: {e}")))?;
    let arch = cfg["model_type"].as_str().unwrap_or_default().to_string();
    if !matches!(arch.as_str(), "llama" | "qwen2" | "qwen3") {
        return Err(Error::UnsupportedModel {
            found: format!("{arch} (for GGUF export)"),
            supported: "GGUF export of Llama (SmolLM2), Qwen2 and Qwen3 decoders".into(),
        });
    }
    let tok: Value = serde_json::from_slice(tokenizer).map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
    let (hidden, layers, heads) = (need(&cfg, "hidden_size")?, need(&cfg, "num_hidden_layers")?, need(&cfg, "num_attention_heads")?);
    let kv_heads = cfg["num_key_value_heads"].as_u64().map(|v| v as usize).unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || hidden % heads != 0 {
        return Err(Error::Config(format!("num_attention_heads {heads} / num_key_value_heads {kv_heads} do not fit hidden_size {hidden}")));
    }
    let head_dim = cfg["head_dim"].as_u64().map(|v| v as usize).unwrap_or(hidden / heads);
    let vocab_size = need(&cfg, "vocab_size")?;
    let rope_theta = cfg["rope_theta"].as_f64().or_else(|| cfg["rope_parameters"]["rope_theta"].as_f64()).unwrap_or(10_000.0);
    if cfg["rope_scaling"].is_object() && cfg["rope_scaling"]["rope_type"] != "default" {
        return Err(Error::Config("GGUF export of a model with rotary scaling (rope_scaling) is not supported yet".into()));
    }

    let mut meta: Vec<(String, V)> = Vec::new();
    let mut add = |k: &str, v: V| meta.push((k.to_string(), v));
    add("general.architecture", V::Str(arch.clone()));
    add("general.name", V::Str(name.to_string()));
    add("general.file_type", V::U32(ty.file_type()));
    add("general.quantization_version", V::U32(2));
    let a = |k: &str| format!("{arch}.{k}");
    add(&a("context_length"), V::U32(need(&cfg, "max_position_embeddings")? as u32));
    add(&a("embedding_length"), V::U32(hidden as u32));
    add(&a("block_count"), V::U32(layers as u32));
    add(&a("feed_forward_length"), V::U32(need(&cfg, "intermediate_size")? as u32));
    add(&a("attention.head_count"), V::U32(heads as u32));
    add(&a("attention.head_count_kv"), V::U32(kv_heads as u32));
    add(&a("rope.freq_base"), V::F32(rope_theta as f32));
    add(&a("attention.layer_norm_rms_epsilon"), V::F32(cfg["rms_norm_eps"].as_f64().unwrap_or(1e-6) as f32));
    if arch == "llama" {
        add(&a("rope.dimension_count"), V::U32(head_dim as u32));
        add(&a("vocab_size"), V::U32(vocab_size as u32));
    }
    if head_dim != hidden / heads || arch == "qwen3" {
        add(&a("attention.key_length"), V::U32(head_dim as u32));
        add(&a("attention.value_length"), V::U32(head_dim as u32));
    }
    tokenizer_meta(&tok, vocab_size, &mut add)?;
    // llama.cpp picks its pre-tokenizer regex by name.
    let digits = tok["pre_tokenizer"]["pretokenizers"].as_array().is_some_and(|a| a.iter().any(|p| p["type"] == "Digits"));
    add("tokenizer.ggml.pre", V::Str(if arch != "llama" { "qwen2" } else if digits { "smollm" } else { "gpt2" }.into()));
    for (key, cfg_key) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("padding_token_id", "pad_token_id")] {
        if let Some(id) = cfg[cfg_key].as_u64() {
            add(&format!("tokenizer.ggml.{key}"), V::U32(id as u32));
        }
    }
    let bos_template = tok["post_processor"]["type"] == "TemplateProcessing" && tok["post_processor"]["single"][0].get("SpecialToken").is_some();
    add("tokenizer.ggml.add_bos_token", V::Bool(bos_template));
    let tc: Option<Value> = tokenizer_config.and_then(|b| serde_json::from_slice(b).ok());
    let template = chat_template.map(String::from).or_else(|| tc.as_ref().and_then(|t| t["chat_template"].as_str().map(String::from)));
    if let Some(t) = template {
        add("tokenizer.chat_template", V::Str(t));
    }

    // Tensors, in the order llama.cpp writes them.
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for bytes in weights {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file ({e})")))?;
        for (hf, view) in st.tensors() {
            let Some(g) = gguf_name(&hf) else {
                return Err(Error::Weights(format!("tensor {hf} has no llama.cpp name Burnish knows")));
            };
            let shape = view.shape().to_vec();
            let mut data: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                safetensors::Dtype::F16 => view.data().chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                safetensors::Dtype::BF16 => view.data().chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
                other => return Err(Error::Weights(format!("tensor {hf}: dtype {other:?} is not supported"))),
            };
            if arch == "llama" && shape.len() == 2 && (hf.ends_with("q_proj.weight") || hf.ends_with("k_proj.weight")) {
                let h = if hf.ends_with("q_proj.weight") { heads } else { kv_heads };
                if shape[0] % (2 * h) != 0 {
                    return Err(Error::Weights(format!("{hf} has {} rows, not a whole number of {h} rotary heads", shape[0])));
                }
                data = permute(&data, shape[0], shape[1], h);
            }
            tensors.push((g, shape, data));
        }
    }
    let order = |n: &str| -> (usize, usize, String) {
        match n {
            "token_embd.weight" => (0, 0, String::new()),
            "output_norm.weight" => (2, 0, String::new()),
            "output.weight" => (2, 1, String::new()),
            _ => {
                let layer = n.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|l| l.parse().ok()).unwrap_or(0);
                (1, layer, n.to_string())
            }
        }
    };
    tensors.sort_by(|x, y| order(&x.0).cmp(&order(&y.0)));

    // Encode each tensor: 1-D ones and rows that are not whole Q8_0 blocks stay wider.
    let mut encoded: Vec<(String, Vec<usize>, u32, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, shape, data) in tensors {
        let t = if shape.len() < 2 { GgufType::F32 } else if ty == GgufType::Q8_0 && shape[shape.len() - 1] % 32 != 0 { GgufType::F16 } else { ty };
        let bytes = match t {
            GgufType::F32 => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            GgufType::F16 => data.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect(),
            GgufType::Q8_0 => quantize_q8_0(&data),
        };
        encoded.push((name, shape, t.ggml(), bytes));
    }

    let mut out = Out(Vec::new());
    out.0.extend(b"GGUF");
    out.u32(3);
    out.u64(encoded.len() as u64);
    out.u64(meta.len() as u64);
    for (k, v) in &meta {
        out.kv(k, v);
    }
    let mut offset = 0usize;
    for (name, shape, t, bytes) in &encoded {
        out.str(name);
        out.u32(shape.len() as u32);
        for d in shape.iter().rev() {
            out.u64(*d as u64);
        }
        out.u32(*t);
        out.u64(offset as u64);
        offset += bytes.len().div_ceil(ALIGN) * ALIGN;
    }
    out.pad();
    for (_, _, _, bytes) in &encoded {
        out.0.extend(bytes);
        out.pad();
    }
    Ok(out.0)
}
