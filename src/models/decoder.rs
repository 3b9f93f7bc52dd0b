//! Pieces every decoder shares: the key/value cache for generation, causal attention over the
//! cache (with grouped-query heads), rotary position embeddings in Hugging Face's layout, and
//! GPT-2's tanh GELU.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

/// Keys and values of the positions seen so far, one entry per layer, each
/// `[batch, kv_heads, past, head_dim]`.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
}

impl KvCache {
    pub fn new(layers: usize) -> Self {
        KvCache { layers: vec![None; layers], len: 0 }
    }

    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends this step's keys and values for `layer` and returns all of them so far.
    fn extend(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (k, v) = match self.layers[layer].take() {
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)), // [batch, kv_heads, past + seq, head_dim]
            None => (k, v),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }

    /// Called once per forward pass, after every layer has extended the cache by `seq`.
    pub(crate) fn advance(&mut self, seq: usize) {
        self.len += seq;
    }
}

/// `softmax(q·kᵀ / √d + causal mask)·v` with `q` `[batch, heads, seq, d]` and `k`, `v`
/// `[batch, kv_heads, seq, d]` (grouped-query attention repeats each key/value head for
/// `heads / kv_heads` query heads, as HF's `repeat_kv`). With a cache, `k`/`v` are appended to it
/// and the queries (at positions `past..past + seq`) attend to every cached position too.
/// Returns `[batch, seq, heads · d]`.
pub fn causal_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    cache: Option<(&mut KvCache, usize)>,
    dropout: &burn::nn::Dropout,
) -> Tensor<3> {
    let [batch, heads, seq, d] = q.dims();
    let (past, (k, v)) = match cache {
        Some((c, layer)) => (c.len(), c.extend(layer, k, v)),
        None => (0, (k, v)),
    };
    let kv_heads = k.dims()[1];
    let k = repeat_kv(k, heads / kv_heads); // [batch, heads, past + seq, d]
    let v = repeat_kv(v, heads / kv_heads);
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d as f32).sqrt()); // [batch, heads, seq, past + seq]
    let scores = if seq > 1 {
        let mask = causal_mask(seq, past, &scores.device());
        scores + mask
    } else {
        scores
    };
    let probs = dropout.forward(softmax(scores, 3));
    probs
        .matmul(v) // [batch, heads, seq, d]
        .swap_dims(1, 2) // [batch, seq, heads, d]
        .reshape([batch, seq, heads * d])
}

/// Additive mask `[1, 1, seq, past + seq]`: query `i` (at position `past + i`) sees keys up to
/// its own position.
fn causal_mask(seq: usize, past: usize, device: &Device) -> Tensor<4> {
    let total = past + seq;
    let mut m = vec![0f32; seq * total];
    for i in 0..seq {
        for j in (past + i + 1)..total {
            m[i * total + j] = -1.0e9;
        }
    }
    Tensor::<2>::from_data(TensorData::new(m, [seq, total]), device).reshape([1, 1, seq, total])
}

/// `[batch, kv_heads, seq, d]` → `[batch, kv_heads · n, seq, d]`, each head repeated `n` times
/// in place (HF `repeat_kv`).
fn repeat_kv(x: Tensor<4>, n: usize) -> Tensor<4> {
    if n == 1 {
        return x;
    }
    let [b, kvh, s, d] = x.dims();
    x.unsqueeze_dim::<5>(2).expand([b, kvh, n, s, d]).reshape([b, kvh * n, s, d])
}

/// Rotary embedding tables for positions `start..start + len`: `(cos, sin)`, each
/// `[1, 1, len, head_dim]`, laid out as HF's `LlamaRotaryEmbedding` (frequencies repeated over
/// both halves), computed in f32 like transformers.
pub fn rope_tables(start: usize, len: usize, head_dim: usize, theta: f64, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half).map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect();
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for p in start..start + len {
        for _ in 0..2 {
            for f in &inv {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [len, head_dim]), device).reshape([1, 1, len, head_dim]);
    (t(cos), t(sin))
}

/// `x·cos + rotate_half(x)·sin` on `[batch, heads, seq, head_dim]`, where `rotate_half` maps the
/// halves `(x1, x2)` to `(−x2, x1)`.
pub fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let d = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, d / 2);
    let x2 = x.clone().narrow(3, d / 2, d - d / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// GPT-2's `gelu_new`: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let c = (2.0f32 / std::f32::consts::PI).sqrt();
    let inner = (x.clone() + x.clone().powi_scalar(3).mul_scalar(0.044715)).mul_scalar(c);
    x.clone().mul_scalar(0.5) * (inner.tanh() + 1.0)
}
