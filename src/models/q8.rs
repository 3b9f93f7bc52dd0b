//! Generation on 8-bit weights for Llama and Qwen2 decoders on the CPU. Decoding multiplies
//! one activation row by every weight matrix per token, so its speed is the speed at which the
//! weights stream from memory: as f32 they are 4 bytes a weight, here 1 byte plus a scale per
//! 32 (llama.cpp's Q8_0 layout), and the activations are quantized the same way so each block's
//! dot product runs on integers (SIMD128 in the browser). Rows are split over the CPU's threads
//! (rayon: natively, and in the threaded wasm module). The network is the one `llama.rs`
//! computes — RMSNorm, rotary embeddings in HF's half-split layout, grouped-query attention
//! over a key/value cache, SwiGLU — read from a loaded model's weights (LoRA merged first), so
//! logits differ from the f32 model's only by the rounding of the weights and activations
//! (tests/q8.rs bounds it).

use super::llama::LlamaForCausalLm;
use crate::error::Result;
use crate::backend::read_f32;

/// Values per quantization block (each has its own f32 scale).
const BLOCK: usize = 32;

/// A `[rows, cols]` matrix (one row per output) as blocks of 32 int8 values with one scale
/// each; `cols` is padded with zeros to a whole number of blocks.
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    padded: usize,
    q: Vec<i8>,
    scales: Vec<f32>,
    bias: Option<Vec<f32>>,
}

/// Rows of activations quantized like the weights, one per token.
struct Q8Rows {
    n: usize,
    padded: usize,
    q: Vec<i8>,
    scales: Vec<f32>,
}

/// Quantizes `x` (`padded` values, zeros past the real ones) into `q` and `scales`.
fn quantize_into(x: &[f32], q: &mut [i8], scales: &mut [f32]) {
    for ((xb, qb), s) in x.chunks(BLOCK).zip(q.chunks_mut(BLOCK)).zip(scales.iter_mut()) {
        let max = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = max / 127.0;
        *s = scale;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (qv, &v) in qb.iter_mut().zip(xb) {
            *qv = (v * inv).round().clamp(-127.0, 127.0) as i8;
        }
        for qv in qb.iter_mut().skip(xb.len()) {
            *qv = 0;
        }
    }
}

fn padded(cols: usize) -> usize {
    cols.div_ceil(BLOCK) * BLOCK
}

impl Q8Rows {
    /// `x` is `n` rows of `cols` values.
    fn new(x: &[f32], n: usize, cols: usize) -> Self {
        let p = padded(cols);
        let mut q = vec![0i8; n * p];
        let mut scales = vec![0f32; n * p / BLOCK];
        let mut row = vec![0f32; p];
        for t in 0..n {
            row[..cols].copy_from_slice(&x[t * cols..(t + 1) * cols]);
            quantize_into(&row, &mut q[t * p..(t + 1) * p], &mut scales[t * p / BLOCK..(t + 1) * p / BLOCK]);
        }
        Q8Rows { n, padded: p, q, scales }
    }
}

/// Σ a·b over one block of 32 int8 values.
#[inline(always)]
fn dot_block(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        // SAFETY: both slices hold 32 values (BLOCK); v128_load reads 16 bytes unaligned.
        unsafe {
            let a0 = v128_load(a.as_ptr() as *const v128);
            let a1 = v128_load(a.as_ptr().add(16) as *const v128);
            let b0 = v128_load(b.as_ptr() as *const v128);
            let b1 = v128_load(b.as_ptr().add(16) as *const v128);
            // i8·i8 fits i16 (|−127·−127| < 2¹⁵); pairs of them fit i32.
            let s = i32x4_add(
                i32x4_add(i32x4_extadd_pairwise_i16x8(i16x8_extmul_low_i8x16(a0, b0)), i32x4_extadd_pairwise_i16x8(i16x8_extmul_high_i8x16(a0, b0))),
                i32x4_add(i32x4_extadd_pairwise_i16x8(i16x8_extmul_low_i8x16(a1, b1)), i32x4_extadd_pairwise_i16x8(i16x8_extmul_high_i8x16(a1, b1))),
            );
            i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s) + i32x4_extract_lane::<2>(s) + i32x4_extract_lane::<3>(s)
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        // Written so that the compiler vectorises it (pmaddwd on x86).
        let mut s = 0i32;
        for i in 0..BLOCK {
            s += a[i] as i16 as i32 * b[i] as i16 as i32;
        }
        s
    }
}

/// Runs `f(i, &mut out[i])` for every `i`, over the CPU's threads where there are several.
fn for_each_row(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Send + Sync) {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| f(c, o));
    }
    #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
    {
        for (c, o) in out.chunks_mut(chunk).enumerate() {
            f(c, o);
        }
    }
}

impl Q8Matrix {
    /// From a row-major `[rows, cols]` f32 matrix (one row per output): quantized as rows of
    /// activations are.
    pub fn new(w: &[f32], rows: usize, cols: usize, bias: Option<Vec<f32>>) -> Self {
        let Q8Rows { padded, q, scales, .. } = Q8Rows::new(w, rows, cols);
        Q8Matrix { rows, cols, padded, q, scales, bias }
    }

    /// From burn's `[d_in, d_out]` linear weight (transposed to one row per output).
    fn from_linear_weight(w: &[f32], d_in: usize, d_out: usize, bias: Option<Vec<f32>>) -> Self {
        let mut t = vec![0f32; d_in * d_out];
        for i in 0..d_in {
            for o in 0..d_out {
                t[o * d_in + i] = w[i * d_out + o];
            }
        }
        Self::new(&t, d_out, d_in, bias)
    }

    /// Bytes the weights take (int8 values and scales).
    pub fn bytes(&self) -> usize {
        self.q.len() + 4 * self.scales.len()
    }

    /// Row `r` as f32 (an embedding lookup in a tied matrix).
    fn row(&self, r: usize) -> Vec<f32> {
        let q = &self.q[r * self.padded..r * self.padded + self.cols];
        let s = &self.scales[r * self.padded / BLOCK..];
        q.iter().enumerate().map(|(i, &v)| v as f32 * s[i / BLOCK]).collect()
    }

    /// `x · selfᵀ (+ bias)` for every row of `x`: `[x.n, rows]`, row-major. The weights stream
    /// once for all rows of `x` (a prompt's tokens share each weight block while it is cached).
    fn apply(&self, x: &Q8Rows) -> Vec<f32> {
        debug_assert_eq!(x.padded, self.padded);
        let (n, p, blocks) = (x.n, self.padded, self.padded / BLOCK);
        const ROWS: usize = 16; // output rows per task
        let mut out_t = vec![0f32; self.rows * n]; // [rows, n]
        for_each_row(&mut out_t, ROWS * n, |c, o| {
            for (j, dst) in o.chunks_mut(n).enumerate() {
                let r = c * ROWS + j;
                let wq = &self.q[r * p..(r + 1) * p];
                let ws = &self.scales[r * blocks..(r + 1) * blocks];
                for (t, d) in dst.iter_mut().enumerate() {
                    let xq = &x.q[t * p..(t + 1) * p];
                    let xs = &x.scales[t * blocks..(t + 1) * blocks];
                    let mut acc = 0f32;
                    for b in 0..blocks {
                        acc += dot_block(&wq[b * BLOCK..(b + 1) * BLOCK], &xq[b * BLOCK..(b + 1) * BLOCK]) as f32 * (ws[b] * xs[b]);
                    }
                    *d = acc;
                }
            }
        });
        let mut out = vec![0f32; n * self.rows];
        for r in 0..self.rows {
            let b = self.bias.as_ref().map_or(0.0, |b| b[r]);
            for t in 0..n {
                out[t * self.rows + r] = out_t[r * n + t] + b;
            }
        }
        out
    }
}

struct Q8Layer {
    input_norm: Vec<f32>,
    q: Q8Matrix,
    k: Q8Matrix,
    v: Q8Matrix,
    o: Q8Matrix,
    /// Qwen3's per-head RMSNorm gains of queries and keys (head_dim each).
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    post_norm: Vec<f32>,
    gate: Q8Matrix,
    up: Q8Matrix,
    down: Q8Matrix,
}

/// A Llama/Qwen2/Qwen3 decoder on 8-bit weights, for generation.
pub struct Q8Llama {
    layers: Vec<Q8Layer>,
    /// The embedding rows (also the LM head when tied).
    embed: Q8Matrix,
    head: Option<Q8Matrix>,
    norm: Vec<f32>,
    eps: f32,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    inv_freq: Vec<f32>,
}

/// Keys and values of the positions seen so far: per layer, `[position][kv_heads · head_dim]`.
pub struct Q8Cache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl Q8Cache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

async fn linear(l: &burn::nn::Linear) -> Result<Q8Matrix> {
    let [d_in, d_out] = l.weight.val().dims();
    let bias = match &l.bias {
        Some(b) => Some(read_f32(b.val()).await?),
        None => None,
    };
    Ok(Q8Matrix::from_linear_weight(&read_f32(l.weight.val()).await?, d_in, d_out, bias))
}

fn rms_norm(x: &mut [f32], gamma: &[f32], eps: f32) {
    let n = gamma.len();
    for row in x.chunks_mut(n) {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / n as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, g) in row.iter_mut().zip(gamma) {
            *v = *v * inv * g;
        }
    }
}

impl Q8Llama {
    /// Quantizes `m`'s weights (read asynchronously, as any tensor read must be in a browser).
    pub async fn from_model(m: &LlamaForCausalLm) -> Result<Self> {
        let first = m.layers.first().ok_or_else(|| crate::error::Error::Config("the model has no layers".into()))?;
        let (heads, kv_heads, head_dim) = (first.self_attn.heads, first.self_attn.kv_heads, first.self_attn.head_dim);
        let [vocab, hidden] = m.embed_tokens.weight.val().dims();
        let mut layers = Vec::with_capacity(m.layers.len());
        for l in &m.layers {
            layers.push(Q8Layer {
                input_norm: read_f32(l.input_layernorm.gamma.val()).await?,
                q: linear(&l.self_attn.q_proj).await?,
                k: linear(&l.self_attn.k_proj).await?,
                v: linear(&l.self_attn.v_proj).await?,
                o: linear(&l.self_attn.o_proj).await?,
                q_norm: match &l.self_attn.q_norm {
                    Some(n) => Some(read_f32(n.gamma.val()).await?),
                    None => None,
                },
                k_norm: match &l.self_attn.k_norm {
                    Some(n) => Some(read_f32(n.gamma.val()).await?),
                    None => None,
                },
                post_norm: read_f32(l.post_attention_layernorm.gamma.val()).await?,
                gate: linear(&l.gate_proj).await?,
                up: linear(&l.up_proj).await?,
                down: linear(&l.down_proj).await?,
            });
        }
        let embed = Q8Matrix::new(&read_f32(m.embed_tokens.weight.val()).await?, vocab, hidden, None);
        let head = match &m.lm_head {
            Some(h) => Some(linear(h).await?),
            None => None,
        };
        let half = head_dim / 2;
        let inv_freq = (0..half).map(|i| 1.0 / (m.rope_theta as f32).powf((2 * i) as f32 / head_dim as f32)).collect();
        Ok(Q8Llama { layers, embed, head, norm: read_f32(m.norm.gamma.val()).await?, eps: m.norm.epsilon as f32, hidden, heads, kv_heads, head_dim, inv_freq })
    }

    pub fn new_cache(&self) -> Q8Cache {
        Q8Cache { k: vec![Vec::new(); self.layers.len()], v: vec![Vec::new(); self.layers.len()], len: 0 }
    }

    /// Bytes the quantized weights take.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| [&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down].iter().map(|m| m.bytes()).sum::<usize>()).sum::<usize>()
            + self.embed.bytes()
            + self.head.as_ref().map_or(0, Q8Matrix::bytes)
    }

    /// Rotary embedding of one head's `x` at position `pos` (HF's half-split layout).
    fn rope(&self, x: &mut [f32], pos: usize) {
        let half = self.head_dim / 2;
        for i in 0..half {
            let a = pos as f32 * self.inv_freq[i];
            let (sin, cos) = (a.sin(), a.cos());
            let (x1, x2) = (x[i], x[i + half]);
            x[i] = x1 * cos - x2 * sin;
            x[i + half] = x2 * cos + x1 * sin;
        }
    }

    /// Feeds `ids` (at the positions after the cache's) and returns the last one's next-token
    /// logits `[vocab]`.
    pub fn forward(&self, ids: &[u32], cache: &mut Q8Cache) -> Vec<f32> {
        let (n, h, d) = (ids.len(), self.hidden, self.head_dim);
        let past = cache.len;
        let (qw, kvw) = (self.heads * d, self.kv_heads * d);
        let group = self.heads / self.kv_heads;
        let mut x: Vec<f32> = ids.iter().flat_map(|&id| self.embed.row(id as usize)).collect(); // [n, hidden]
        let scale = 1.0 / (d as f32).sqrt();
        for (li, l) in self.layers.iter().enumerate() {
            let mut a = x.clone();
            rms_norm(&mut a, &l.input_norm, self.eps);
            let aq = Q8Rows::new(&a, n, h);
            let (mut q, mut k, v) = (l.q.apply(&aq), l.k.apply(&aq), l.v.apply(&aq));
            // Qwen3: each head's queries and keys normalised (rows of head_dim) before the rotary.
            if let Some(g) = &l.q_norm {
                rms_norm(&mut q, g, self.eps);
            }
            if let Some(g) = &l.k_norm {
                rms_norm(&mut k, g, self.eps);
            }
            for t in 0..n {
                for hd in 0..self.heads {
                    self.rope(&mut q[t * qw + hd * d..t * qw + (hd + 1) * d], past + t);
                }
                for hd in 0..self.kv_heads {
                    self.rope(&mut k[t * kvw + hd * d..t * kvw + (hd + 1) * d], past + t);
                }
            }
            cache.k[li].extend_from_slice(&k);
            cache.v[li].extend_from_slice(&v);
            let (ck, cv) = (&cache.k[li], &cache.v[li]);
            let mut att = vec![0f32; n * qw];
            let mut scores = Vec::with_capacity(past + n);
            for t in 0..n {
                let seen = past + t + 1; // causal: up to its own position
                for hd in 0..self.heads {
                    let kh = hd / group;
                    let qv = &q[t * qw + hd * d..t * qw + (hd + 1) * d];
                    scores.clear();
                    for j in 0..seen {
                        let kv = &ck[j * kvw + kh * d..j * kvw + (kh + 1) * d];
                        scores.push(qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f32>() * scale);
                    }
                    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                    let mut total = 0f32;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        total += *s;
                    }
                    let out = &mut att[t * qw + hd * d..t * qw + (hd + 1) * d];
                    for (j, &p) in scores.iter().enumerate() {
                        let vv = &cv[j * kvw + kh * d..j * kvw + (kh + 1) * d];
                        let w = p / total;
                        for (o, &vx) in out.iter_mut().zip(vv) {
                            *o += w * vx;
                        }
                    }
                }
            }
            let o = l.o.apply(&Q8Rows::new(&att, n, qw));
            for (xv, ov) in x.iter_mut().zip(&o) {
                *xv += ov;
            }
            let mut m = x.clone();
            rms_norm(&mut m, &l.post_norm, self.eps);
            let mq = Q8Rows::new(&m, n, h);
            let (g, u) = (l.gate.apply(&mq), l.up.apply(&mq));
            let inter = l.gate.rows;
            let act: Vec<f32> = g.iter().zip(&u).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect(); // silu(gate) · up
            let dn = l.down.apply(&Q8Rows::new(&act, n, inter));
            for (xv, dv) in x.iter_mut().zip(&dn) {
                *xv += dv;
            }
        }
        cache.len += n;
        let mut last = x[(n - 1) * h..n * h].to_vec();
        rms_norm(&mut last, &self.norm, self.eps);
        let lq = Q8Rows::new(&last, 1, h);
        self.head.as_ref().unwrap_or(&self.embed).apply(&lq)
    }
}
