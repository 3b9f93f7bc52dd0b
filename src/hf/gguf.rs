//! GGUF import (llama.cpp's single-file format, versions 2 and 3): the header, metadata and
//! tensor table are parsed, quantized tensors are dequantized to f32 (F32, F16, BF16, Q8_0, Q4_0,
//! Q4_1, Q4_K, Q5_K, Q6_K, as ggml's reference `dequantize_row_*`), llama.cpp tensor names are
//! mapped back to Hugging Face ones (undoing the q/k row permutation llama.cpp's converter
//! applies), and the tokenizer is rebuilt from the metadata into a `tokenizer.json`, as
//! transformers does for `from_pretrained(..., gguf_file=...)`. The result is an ordinary HF
//! folder in memory (config.json, tokenizer.json, model.safetensors) for `CausalModel`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

impl Meta {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Meta::UInt(v) => Some(*v),
            Meta::Int(v) if *v >= 0 => Some(*v as u64),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Meta::Float(v) => Some(*v),
            Meta::UInt(v) => Some(*v as f64),
            Meta::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Meta::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Meta::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// ggml tensor types Burnish dequantizes (others are refused by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

impl GgmlType {
    fn from_id(id: u32) -> Result<Self> {
        Ok(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            30 => GgmlType::BF16,
            other => {
                let name = match other {
                    6 => "Q5_0",
                    7 => "Q5_1",
                    9 => "Q8_1",
                    10 => "Q2_K",
                    11 => "Q3_K",
                    15 => "Q8_K",
                    16..=23 => "an IQ type",
                    24 => "I8",
                    25 => "I16",
                    26 => "I32",
                    27 => "I64",
                    28 => "F64",
                    29 => "IQ1_M",
                    _ => "an unknown type",
                };
                return Err(Error::Weights(format!(
                    "GGUF tensor type {name} (id {other}) is not supported; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"
                )));
            }
        })
    }

    /// (elements per block, bytes per block)
    fn block(self) -> (usize, usize) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q4K => (256, 144),
            GgmlType::Q5K => (256, 176),
            GgmlType::Q6K => (256, 210),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q5K => "Q5_K",
            GgmlType::Q6K => "Q6_K",
        }
    }

    /// Bytes of `n` elements.
    pub fn bytes_for(self, n: usize) -> Result<usize> {
        let (per, bytes) = self.block();
        if n % per != 0 {
            return Err(Error::Weights(format!("{n} elements are not a whole number of {} blocks of {per}", self.name())));
        }
        Ok(n / per * bytes)
    }
}

/// One entry of the tensor table. `dims` are ggml's (fastest first): HF's shape is reversed.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<usize>,
    pub ty: GgmlType,
    offset: usize,
}

impl TensorInfo {
    /// The element count (checked when the table is parsed: it fits in `usize` and the file).
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// The product of `dims`, or `None` when it overflows `usize` (on wasm32 too).
fn checked_elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The most tensors and metadata entries a GGUF file may list (real ones have a few hundred
/// tensors and a few dozen keys): each entry costs memory before any data is read.
const MAX_TENSORS: usize = 65_536;
const MAX_KEYS: usize = 65_536;

/// A parsed GGUF file borrowing its bytes.
pub struct Gguf<'a> {
    pub version: u32,
    pub metadata: BTreeMap<String, Meta>,
    pub tensors: Vec<TensorInfo>,
    data: &'a [u8],
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
    /// Metadata array items read so far (each costs a `Meta` in memory, 32 bytes per file byte).
    items: usize,
}

/// The most metadata array items a file may hold in all (a 256k vocabulary with its scores,
/// types and merges is ~1M).
const MAX_ITEMS: usize = 1 << 23;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| Error::Weights("the GGUF file is cut short".into()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| Error::Weights("bad u32".into()))?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| Error::Weights("bad u64".into()))?))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u64()?;
        if n > self.b.len() as u64 {
            return Err(Error::Weights(format!("the GGUF file claims a length of {n}, longer than the file")));
        }
        usize::try_from(n).map_err(|_| Error::Weights(format!("the GGUF file claims a length of {n}, more than this machine can address")))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Error::Weights("a GGUF string is not UTF-8".into()))
    }
    fn value(&mut self, ty: u32, depth: usize) -> Result<Meta> {
        let fixed = |c: &mut Self, n: usize| -> Result<[u8; 8]> {
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(c.take(n)?);
            Ok(buf)
        };
        Ok(match ty {
            0 => Meta::UInt(self.take(1)?[0] as u64),
            1 => Meta::Int(self.take(1)?[0] as i8 as i64),
            2 => Meta::UInt(u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as u64),
            3 => Meta::Int(i16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as i64),
            4 => Meta::UInt(self.u32()? as u64),
            5 => Meta::Int(self.u32()? as i32 as i64),
            6 => {
                let b = fixed(self, 4)?;
                Meta::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
            7 => Meta::Bool(self.take(1)?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                if depth > 2 {
                    return Err(Error::Weights("GGUF metadata nests arrays too deeply".into()));
                }
                let item = self.u32()?;
                let n = self.len()?;
                self.items = self.items.saturating_add(n);
                if self.items > MAX_ITEMS {
                    return Err(Error::Weights(format!("the GGUF metadata holds more than {MAX_ITEMS} array items")));
                }
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(item, depth + 1)?);
                }
                Meta::Array(v)
            }
            10 => Meta::UInt(self.u64()?),
            11 => Meta::Int(self.u64()? as i64),
            12 => Meta::Float(f64::from_le_bytes(fixed(self, 8)?)),
            other => return Err(Error::Weights(format!("unknown GGUF metadata type {other}"))),
        })
    }
}

impl<'a> Gguf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 4 || &bytes[..4] != b"GGUF" {
            return Err(Error::Weights("not a GGUF file (it does not start with \"GGUF\")".into()));
        }
        let mut c = Cursor { b: bytes, at: 4, items: 0 };
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(Error::Weights(format!("GGUF version {version} is not supported (2 and 3 are)")));
        }
        let n_tensors = c.len()?;
        let n_kv = c.len()?;
        if n_tensors > MAX_TENSORS || n_kv > MAX_KEYS {
            return Err(Error::Weights(format!(
                "the GGUF header lists {n_tensors} tensors and {n_kv} metadata keys; the limits are {MAX_TENSORS} and {MAX_KEYS}"
            )));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            let v = c.value(ty, 0)?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let n_dims = c.u32()? as usize;
            if n_dims > 4 {
                return Err(Error::Weights(format!("GGUF tensor {name} has {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.len()?);
            }
            let ty = GgmlType::from_id(c.u32()?).map_err(|e| Error::Weights(format!("{name}: {e}")))?;
            let raw = c.u64()?;
            let offset = usize::try_from(raw)
                .ok()
                .filter(|&o| o <= bytes.len())
                .ok_or_else(|| Error::Weights(format!("GGUF tensor {name}: its data offset {raw} lies past the end of the file")))?;
            if checked_elements(&dims).is_none() {
                return Err(Error::Weights(format!("GGUF tensor {name}: its dimensions {dims:?} multiply past what this machine can address")));
            }
            tensors.push(TensorInfo { name, dims, ty, offset });
        }
        let align = match metadata.get("general.alignment") {
            None => 32,
            Some(m) => match m.as_u64() {
                Some(a) if (1..=1 << 16).contains(&a) && a.is_power_of_two() => a as usize,
                _ => return Err(Error::Weights(format!("GGUF general.alignment is {m:?}; it must be a power of two up to 65536"))),
            },
        };
        let start = c.at.div_ceil(align).checked_mul(align).filter(|&s| s <= bytes.len());
        let data = start.and_then(|s| bytes.get(s..)).ok_or_else(|| Error::Weights("the GGUF file has no tensor data".into()))?;
        for t in &tensors {
            let need = t.ty.bytes_for(t.elements()).map_err(|e| Error::Weights(format!("GGUF tensor {}: {e}", t.name)))?;
            if t.offset.checked_add(need).is_none_or(|end| end > data.len()) {
                return Err(Error::Weights(format!("GGUF tensor {} runs past the end of the file (is it cut short?)", t.name)));
            }
        }
        Ok(Gguf { version, metadata, tensors, data })
    }

    pub fn get(&self, key: &str) -> Option<&Meta> {
        self.metadata.get(key)
    }

    /// The tensor's values as f32, in ggml order (row-major over the reversed dims).
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        let n = t.elements();
        let bytes = &self.data[t.offset..t.offset + t.ty.bytes_for(n)?];
        dequantize(t.ty, bytes, n)
    }
}

fn f16(b: &[u8]) -> f32 {
    half::f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` of a K-quant block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// `n` values of type `ty` from `bytes`, as ggml's `dequantize_row_*`.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    let (per, size) = ty.block();
    if n % per != 0 || bytes.len() != n / per * size {
        return Err(Error::Weights(format!("{} data of {} bytes cannot hold {n} values", ty.name(), bytes.len())));
    }
    let mut y = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => y.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => y.extend(bytes.chunks_exact(2).map(f16)),
        GgmlType::BF16 => y.extend(bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for b in bytes.chunks_exact(size) {
                let d = f16(b);
                y.extend(b[2..34].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in bytes.chunks_exact(size) {
                let d = f16(b);
                let qs = &b[2..18];
                y.extend(qs.iter().map(|&q| ((q & 0xF) as i32 - 8) as f32 * d));
                y.extend(qs.iter().map(|&q| ((q >> 4) as i32 - 8) as f32 * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in bytes.chunks_exact(size) {
                let (d, m) = (f16(b), f16(&b[2..]));
                let qs = &b[4..20];
                y.extend(qs.iter().map(|&q| (q & 0xF) as f32 * d + m));
                y.extend(qs.iter().map(|&q| (q >> 4) as f32 * d + m));
            }
        }
        GgmlType::Q4K => {
            for b in bytes.chunks_exact(size) {
                let (d, dmin) = (f16(b), f16(&b[2..]));
                let scales = &b[4..16];
                let mut q = &b[16..144];
                for is in (0..8).step_by(2) {
                    let (sc, m) = scale_min_k4(is, scales);
                    let (d1, m1) = (d * sc as f32, dmin * m as f32);
                    let (sc, m) = scale_min_k4(is + 1, scales);
                    let (d2, m2) = (d * sc as f32, dmin * m as f32);
                    y.extend(q[..32].iter().map(|&x| d1 * (x & 0xF) as f32 - m1));
                    y.extend(q[..32].iter().map(|&x| d2 * (x >> 4) as f32 - m2));
                    q = &q[32..];
                }
            }
        }
        GgmlType::Q5K => {
            for b in bytes.chunks_exact(size) {
                let (d, dmin) = (f16(b), f16(&b[2..]));
                let scales = &b[4..16];
                let qh = &b[16..48];
                let mut ql = &b[48..176];
                let (mut u1, mut u2) = (1u8, 2u8);
                for is in (0..8).step_by(2) {
                    let (sc, m) = scale_min_k4(is, scales);
                    let (d1, m1) = (d * sc as f32, dmin * m as f32);
                    let (sc, m) = scale_min_k4(is + 1, scales);
                    let (d2, m2) = (d * sc as f32, dmin * m as f32);
                    y.extend((0..32).map(|l| d1 * ((ql[l] & 0xF) as f32 + if qh[l] & u1 != 0 { 16.0 } else { 0.0 }) - m1));
                    y.extend((0..32).map(|l| d2 * ((ql[l] >> 4) as f32 + if qh[l] & u2 != 0 { 16.0 } else { 0.0 }) - m2));
                    ql = &ql[32..];
                    u1 <<= 2;
                    u2 <<= 2;
                }
            }
        }
        GgmlType::Q6K => {
            for b in bytes.chunks_exact(size) {
                let d = f16(&b[208..]);
                let mut ql = &b[..128];
                let mut qh = &b[128..192];
                let mut sc = &b[192..208];
                for _ in 0..2 {
                    let mut out = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        out[l] = d * (sc[is] as i8 as f32) * q1 as f32;
                        out[l + 32] = d * (sc[is + 2] as i8 as f32) * q2 as f32;
                        out[l + 64] = d * (sc[is + 4] as i8 as f32) * q3 as f32;
                        out[l + 96] = d * (sc[is + 6] as i8 as f32) * q4 as f32;
                    }
                    y.extend_from_slice(&out);
                    ql = &ql[64..];
                    qh = &qh[32..];
                    sc = &sc[8..];
                }
            }
        }
    }
    Ok(y)
}

/// GPT-2's byte ↔ printable-character table (`bytes_to_unicode`).
fn byte_alphabet() -> Vec<char> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        table[*b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    table
}

fn strings(m: Option<&Meta>, what: &str) -> Result<Vec<String>> {
    match m {
        Some(Meta::Array(v)) => v.iter().map(|x| x.as_str().map(String::from).ok_or_else(|| Error::Tokenizer(format!("GGUF {what} holds a non-string")))).collect(),
        _ => Err(Error::Tokenizer(format!("the GGUF file has no {what}"))),
    }
}

/// `tokenizer.json` for a byte-level BPE vocabulary (`tokenizer.ggml.model` "gpt2"), built as
/// transformers' GGUF converter builds it: the vocabulary respelt in the byte alphabet where a
/// token is not already, the file's merges, control tokens (type 3) as special added tokens,
/// user-defined ones (type 4) as plain added tokens, a BOS template when `add_bos_token`.
fn byte_level_tokenizer(g: &Gguf) -> Result<Vec<u8>> {
    let tokens = strings(g.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")?;
    let merges = strings(g.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges")?;
    let types: Vec<u64> = match g.get("tokenizer.ggml.token_type") {
        Some(Meta::Array(v)) => v.iter().map(|x| x.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let table = byte_alphabet();
    let alphabet: std::collections::HashSet<char> = table.iter().copied().collect();
    let spell = |t: &str| -> String {
        if t.chars().all(|c| alphabet.contains(&c)) { t.to_string() } else { t.bytes().map(|b| table[b as usize]).collect() }
    };
    let mut vocab = serde_json::Map::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(spell(t), json!(i));
    }
    let mut added = Vec::new();
    for (i, (t, ty)) in tokens.iter().zip(&types).enumerate() {
        let in_alphabet = t.chars().all(|c| alphabet.contains(&c));
        if (*ty == 3 && in_alphabet) || *ty == 4 {
            added.push(json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": *ty == 3}));
        }
    }
    let add_bos = g.get("tokenizer.ggml.add_bos_token").and_then(Meta::as_bool).unwrap_or(false);
    let bos = g.get("tokenizer.ggml.bos_token_id").and_then(Meta::as_u64);
    let post = match (add_bos, bos) {
        (true, Some(id)) => {
            let b = usize::try_from(id).ok().and_then(|i| tokens.get(i)).cloned().unwrap_or_default();
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b.clone(): {"id": b, "ids": [id], "tokens": [b]}}})
        }
        _ => json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}),
    };
    tokenizer_json(
        added,
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
        post,
        json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}),
        json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
               "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}),
    )
}

/// A `tokenizer.json` (no normalizer, truncation or padding) from its parts.
fn tokenizer_json(added: Vec<Value>, pre_tokenizer: Value, post_processor: Value, decoder: Value, model: Value) -> Result<Vec<u8>> {
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": decoder,
        "model": model,
    });
    serde_json::to_vec(&tok).map_err(|e| Error::Tokenizer(e.to_string()))
}

/// `tokenizer.json` for a SentencePiece vocabulary (`tokenizer.ggml.model` "llama": Llama 2,
/// TinyLlama), built as transformers' GGUF converter builds it (`LlamaTokenizer` from the
/// vocabulary and merges): BPE with byte fallback over "\u{2581}"-spelt pieces, the merges the file
/// lists or, as SentencePiece files list none, the ones its scores imply (transformers'
/// `generate_merges`), a Metaspace pre-tokenizer that puts "\u{2581}" before the first word, the
/// unknown / BOS / EOS and control tokens as special added tokens, and BOS first unless
/// `add_bos_token` is false.
fn sentencepiece_tokenizer(g: &Gguf) -> Result<Vec<u8>> {
    let tokens = strings(g.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")?;
    let types: Vec<u64> = match g.get("tokenizer.ggml.token_type") {
        Some(Meta::Array(v)) => v.iter().map(|x| x.as_u64().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let mut vocab = serde_json::Map::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.clone(), json!(i));
        index.insert(t.as_str(), i);
    }
    let merges: Vec<String> = match g.get("tokenizer.ggml.merges") {
        Some(_) => strings(g.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges")?,
        None => {
            let scores: Vec<f64> = match g.get("tokenizer.ggml.scores") {
                Some(Meta::Array(v)) => v.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect(),
                _ => return Err(Error::Tokenizer("the GGUF SentencePiece vocabulary has neither merges nor scores".into())),
            };
            if let Some(i) = scores.iter().position(|x| !x.is_finite()) {
                return Err(Error::Tokenizer(format!("GGUF tokenizer.ggml.scores holds a non-finite score ({}) at token {i}", scores[i])));
            }
            // Splitting every token at every place costs the sum of their squared lengths: a
            // vocabulary of very long tokens would hang here (real ones cost a few million).
            let cost: usize = tokens.iter().map(|t| t.len().saturating_mul(t.len())).fold(0, usize::saturating_add);
            if cost > 200_000_000 {
                return Err(Error::Tokenizer(format!(
                    "the GGUF SentencePiece vocabulary's tokens are too long to derive merges from (cost {cost}, limit 200000000)"
                )));
            }
            // Each token with its last score, in order of first appearance (a Python dict).
            let mut order: Vec<&str> = Vec::new();
            let mut score_of: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
            for (t, &sc) in tokens.iter().zip(&scores) {
                if score_of.insert(t.as_str(), sc).is_none() {
                    order.push(t.as_str());
                }
            }
            let mut all: Vec<(String, String, f64)> = Vec::new();
            for t in order {
                let chars: Vec<char> = t.chars().collect();
                let mut local: Vec<(String, String, f64)> = (1..chars.len())
                    .map(|k| (chars[..k].iter().collect::<String>(), chars[k..].iter().collect::<String>()))
                    .filter(|(l, r)| index.contains_key(l.as_str()) && index.contains_key(r.as_str()))
                    .map(|(l, r)| (l, r, score_of[t]))
                    .collect();
                local.sort_by_key(|(l, r, _)| (index[l.as_str()], index[r.as_str()]));
                all.extend(local);
            }
            // Best score first, then longer left and right pieces; ties keep their order.
            // `total_cmp`: a NaN score (refused above, but never trusted) must not break the sort.
            let key = |m: &(String, String, f64)| (m.0.chars().count(), m.1.chars().count());
            all.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| key(b).cmp(&key(a))));
            all.into_iter().map(|(l, r, _)| format!("{l} {r}")).collect()
        }
    };
    let name = |k: &str| g.get(&format!("tokenizer.ggml.{k}")).and_then(Meta::as_u64).filter(|&i| usize::try_from(i).is_ok_and(|i| i < tokens.len()));
    let mut special: std::collections::BTreeSet<usize> = types.iter().enumerate().filter(|(_, t)| **t == 3).map(|(i, _)| i).collect();
    for k in ["unknown_token_id", "bos_token_id", "eos_token_id"] {
        special.extend(name(k).map(|i| i as usize));
    }
    let added: Vec<Value> = (0..tokens.len())
        .filter(|i| special.contains(i) || types.get(*i) == Some(&4))
        .map(|i| json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": special.contains(&i)}))
        .collect();
    let add_bos = g.get("tokenizer.ggml.add_bos_token").and_then(Meta::as_bool).unwrap_or(true);
    let post = match (add_bos, name("bos_token_id")) {
        (true, Some(id)) => {
            let b = tokens[id as usize].clone();
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": b, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b.clone(): {"id": b, "ids": [id], "tokens": [b]}}})
        }
        _ => Value::Null,
    };
    tokenizer_json(
        added,
        json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false}),
        post,
        json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}),
        json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
               "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": merges}),
    )
}

/// llama.cpp's and HF's names of a Llama-family layer's modules (`blk.N.<gguf>` ↔
/// `model.layers.N.<hf>`; `gguf_write` maps the other way).
pub(crate) const LAYER_MODULES: [(&str, &str); 11] = [
    ("attn_norm", "input_layernorm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// llama.cpp → HF name of a Llama-family tensor (`None`: not a weight Burnish maps).
fn hf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let (_, hf) = LAYER_MODULES.iter().find(|(g, _)| *g == module)?;
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's q/k permutation for rotary embeddings (transformers'
/// `reverse_permute_weights`): rows `[heads, dim/2, 2]` → `[heads, 2, dim/2]`. `rows` × `cols`.
fn unpermute(w: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let half = rows / heads / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for two in 0..2 {
                let src = h * 2 * half + i * 2 + two;
                let dst = h * 2 * half + two * half + i;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// A tokenizer_config.json from GGUF metadata: the BOS / EOS / padding tokens by name, and the
/// chat template when the file has one (transformers' `apply_chat_template` uses it).
pub fn tokenizer_config(g: &Gguf) -> Result<Vec<u8>> {
    let tokens = strings(g.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")?;
    let name = |k: &str| g.get(&format!("tokenizer.ggml.{k}")).and_then(Meta::as_u64).and_then(|i| usize::try_from(i).ok()).and_then(|i| tokens.get(i).cloned());
    let mut v = json!({ "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": name("bos_token_id"), "eos_token": name("eos_token_id") });
    if let Some(pad) = name("padding_token_id") {
        v["pad_token"] = json!(pad);
    }
    if let Some(t) = g.get("tokenizer.chat_template").and_then(Meta::as_str) {
        v["chat_template"] = json!(t);
    }
    serde_json::to_vec_pretty(&v).map_err(|e| Error::Other(e.to_string()))
}

/// `(config.json, tokenizer.json, model.safetensors)` bytes of a GGUF file.
pub fn to_hf_files(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let g = Gguf::parse(bytes)?;
    let arch = g.get("general.architecture").and_then(Meta::as_str).unwrap_or("").to_string();
    if arch != "llama" && arch != "qwen2" && arch != "qwen3" {
        return Err(Error::UnsupportedModel {
            found: format!("GGUF architecture {arch}"),
            supported: "GGUF files of the llama (SmolLM2, TinyLlama, Llama), qwen2 and qwen3 architectures".into(),
        });
    }
    let key = |k: &str| g.get(&format!("{arch}.{k}"));
    let need = |k: &str| -> Result<usize> {
        let v = key(k).and_then(Meta::as_u64).ok_or_else(|| Error::Config(format!("the GGUF file has no {arch}.{k}")))?;
        usize::try_from(v).map_err(|_| Error::Config(format!("the GGUF file's {arch}.{k} is {v}, too large")))
    };
    let tok_model = g.get("tokenizer.ggml.model").and_then(Meta::as_str).unwrap_or("");
    if tok_model != "gpt2" && tok_model != "llama" {
        return Err(Error::Tokenizer(format!(
            "GGUF tokenizer \"{tok_model}\" is not supported (byte-level BPE, tokenizer.ggml.model \"gpt2\", and SentencePiece BPE, \"llama\", are)"
        )));
    }
    let (hidden, layers, heads) = (need("embedding_length")?, need("block_count")?, need("attention.head_count")?);
    let kv_heads = if key("attention.head_count_kv").is_some() { need("attention.head_count_kv")? } else { heads };
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || hidden % heads != 0 {
        return Err(Error::Config(format!(
            "the GGUF file's {arch}.attention.head_count {heads} and head_count_kv {kv_heads} do not divide its embedding_length {hidden}"
        )));
    }
    let tokens = strings(g.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")?;
    let vocab = if key("vocab_size").is_some() { need("vocab_size")? } else { tokens.len() };
    let has_output = g.tensors.iter().any(|t| t.name == "output.weight");
    let id = |k: &str| g.get(&format!("tokenizer.ggml.{k}")).and_then(Meta::as_u64);
    let mut cfg = json!({
        "architectures": [match arch.as_str() { "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", _ => "LlamaForCausalLM" }],
        "model_type": arch,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": need("feed_forward_length")?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": need("context_length")?,
        "rms_norm_eps": key("attention.layer_norm_rms_epsilon").and_then(Meta::as_f64).unwrap_or(1e-6),
        "rope_theta": key("rope.freq_base").and_then(Meta::as_f64).unwrap_or(10000.0),
        "tie_word_embeddings": !has_output,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    });
    // The head size: attention.key_length where the file gives it (Qwen3's is not hidden / heads),
    // else the rotary dimension count.
    for k in ["attention.key_length", "rope.dimension_count"] {
        if let Some(d) = key(k).and_then(Meta::as_u64) {
            if usize::try_from(d).ok() != Some(hidden / heads) {
                cfg["head_dim"] = json!(d);
            }
            break;
        }
    }
    if key("rope.scaling.type").and_then(Meta::as_str).is_some_and(|s| s != "none") {
        return Err(Error::Config("rotary scaling in this GGUF file is not supported yet".into()));
    }
    for (k, name) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("padding_token_id", "pad_token_id")] {
        if let Some(v) = id(k) {
            cfg[name] = json!(v);
        }
    }
    let tokenizer = if tok_model == "llama" { sentencepiece_tokenizer(&g)? } else { byte_level_tokenizer(&g)? };

    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        let Some(name) = hf_name(&t.name) else {
            if t.name.ends_with("rope_freqs.weight") {
                return Err(Error::Config("this GGUF file carries rotary frequency factors (scaled rope), which are not supported yet".into()));
            }
            return Err(Error::Weights(format!("GGUF tensor {} has no Hugging Face counterpart Burnish knows", t.name)));
        };
        let mut data = g.dequantize(t)?;
        let shape: Vec<usize> = t.dims.iter().rev().copied().collect();
        // llama.cpp permutes q/k only for the llama architecture (its rotary pairs neighbours);
        // qwen2 and qwen3 files keep HF's half-split order.
        if arch == "llama" && shape.len() == 2 && (name.ends_with("q_proj.weight") || name.ends_with("k_proj.weight")) {
            let h = if name.ends_with("q_proj.weight") { heads } else { kv_heads };
            if h.checked_mul(2).is_none_or(|d| shape[0] % d != 0) {
                return Err(Error::Weights(format!("GGUF tensor {} has {} rows, not a whole number of {h} rotary heads", t.name, shape[0])));
            }
            data = unpermute(&data, shape[0], shape[1], h);
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::Weights(format!("GGUF tensor {} holds a non-finite value ({}) at element {i}: the file is damaged", t.name, data[i])));
        }
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        named.push((name, shape, raw));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(n, s, d)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Weights(format!("{n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let weights = safetensors::serialize(views, None).map_err(|e| Error::Weights(format!("safetensors: {e}")))?;
    let config = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Config(e.to_string()))?;
    Ok((config, tokenizer, weights))
}

