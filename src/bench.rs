//! Benchmarks the CLI (`burnish bench`) and the page run: timed training steps and forward
//! passes of a classifier on seeded random tokens.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use web_time::Instant;

use crate::hf::checkpoint::Checkpoint;
use crate::engine::adamw::{AdamW, AdamWConfig};
use crate::engine::{clip_global_norm, cross_entropy};
use crate::error::{Error, Result};
use crate::infer::classify::build_classifier;
use crate::data::text::LmRow;
use crate::models::bert::{BertInput, SequenceClassifier};
use crate::models::causal::CausalModel;
use crate::recipe::{Recipe, Strategy};
use crate::backend::read_f32;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub batch_size: usize,
    pub max_len: usize,
    pub steps: usize,
    pub median_step_s: f64,
    pub samples_per_s: f64,
    pub tokens_per_s: f64,
    pub step_seconds: Vec<f64>,
}

/// Median of some timings (0 when there are none).
pub fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl BenchResult {
    pub fn new(batch: usize, len: usize, times: Vec<f64>) -> Self {
        let median = median(&times);
        BenchResult {
            batch_size: batch,
            max_len: len,
            steps: times.len(),
            median_step_s: median,
            samples_per_s: batch as f64 / median.max(1e-12),
            tokens_per_s: (batch * len) as f64 / median.max(1e-12),
            step_seconds: times,
        }
    }
}

/// `[batch, len]` seeded random token ids from the upper part of a vocabulary (no specials).
fn random_rows(vocab: u32, batch: usize, len: usize, rng: &mut StdRng) -> Vec<Vec<u32>> {
    use rand::Rng;
    let lo = 1000.min(vocab / 2);
    (0..batch).map(|_| (0..len).map(|_| rng.random_range(lo..vocab)).collect()).collect()
}

fn check_bench_shape(ckpt: &Checkpoint, batch: usize, len: usize, steps: usize) -> Result<()> {
    if steps == 0 || batch == 0 || len < 2 || len > ckpt.config.max_tokens() {
        return Err(Error::Recipe("bench needs steps ≥ 1, batch ≥ 1 and 2 ≤ max-len ≤ the model's positions".into()));
    }
    Ok(())
}

/// Times full training steps (forward, cross-entropy, backward, global clip, AdamW) on a fixed
/// `[batch, len]` batch of seeded random token ids, after `warmup` untimed steps. The loss is
/// read back each step, so every timed step has finished on the device.
pub async fn bench_training(ckpt: &Checkpoint, batch: usize, len: usize, steps: usize, warmup: usize, device: &Device) -> Result<BenchResult> {
    use rand::Rng;
    check_bench_shape(ckpt, batch, len, steps)?;
    let labels = vec!["0".to_string(), "1".to_string()];
    let ad = device.clone().autodiff();
    let (mut model, _) = build_classifier(ckpt, &labels, 0, &ad)?;
    let mut optim = AdamW::new(AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() });
    let mut rng = StdRng::seed_from_u64(0);
    let rows = random_rows(ckpt.config.vocab_size as u32, batch, len, &mut rng);
    let ys: Vec<i64> = (0..batch).map(|_| rng.random_range(0..2)).collect();
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let input = BertInput::from_rows(&rows, 0, &ad);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys.clone(), [batch]), &ad);
        let loss = cross_entropy(model.forward(&input), y);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_global_norm(&model, &mut grads, 1.0);
        model = optim.step(5e-5, model, grads);
        let _ = read_f32(loss.detach()).await?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(BenchResult::new(batch, len, times))
}

/// One classifier forward pass (no autodiff) on a fixed `[batch, len]` batch of seeded random
/// token ids, timed with the logits read back: what evaluation and prediction cost, and what
/// the page times on each backend to choose between them.
pub struct ForwardProbe {
    model: SequenceClassifier,
    rows: Vec<Vec<u32>>,
    device: Device,
}

impl ForwardProbe {
    pub fn new(ckpt: &Checkpoint, batch: usize, len: usize, device: &Device) -> Result<Self> {
        check_bench_shape(ckpt, batch, len, 1)?;
        let labels = vec!["0".to_string(), "1".to_string()];
        let (model, _) = build_classifier(ckpt, &labels, 0, device)?;
        let rows = random_rows(ckpt.config.vocab_size as u32, batch, len, &mut StdRng::seed_from_u64(0));
        Ok(ForwardProbe { model, rows, device: device.clone() })
    }

    /// Seconds for one pass, from building the input to having the logits on the host.
    pub async fn pass(&self) -> Result<f64> {
        let t0 = Instant::now();
        let input = BertInput::from_rows(&self.rows, 0, &self.device);
        let _ = read_f32(self.model.forward(&input)).await?;
        Ok(t0.elapsed().as_secs_f64())
    }
}

/// Times `passes` forward passes (evaluation throughput) after `warmup` untimed ones.
pub async fn bench_forward(ckpt: &Checkpoint, batch: usize, len: usize, passes: usize, warmup: usize, device: &Device) -> Result<BenchResult> {
    check_bench_shape(ckpt, batch, len, passes)?;
    let probe = ForwardProbe::new(ckpt, batch, len, device)?;
    let mut times = Vec::with_capacity(passes);
    for i in 0..warmup + passes {
        let t = probe.pass().await?;
        if i >= warmup {
            times.push(t);
        }
    }
    Ok(BenchResult::new(batch, len, times))
}

/// Decoder speed: training steps (forward, masked loss, backward, clip, AdamW under the
/// recipe's strategy) on a fixed `[batch, len]` batch of seeded random token ids, then greedy
/// generation with the KV cache.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderBench {
    pub strategy: Strategy,
    pub trainable: usize,
    pub training: crate::bench::BenchResult,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    /// The same greedy generation on 8-bit weights (`models/q8.rs`), for Llama/Qwen2: tokens/s,
    /// how many of its first tokens equal the f32 model's, and the weights' size.
    pub int8: Option<Int8Bench>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Int8Bench {
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    pub same_tokens_as_f32: usize,
    pub weight_bytes: usize,
    pub quantize_s: f64,
}

/// Times `steps` training steps after `warmup` untimed ones (each step's loss is read back, so
/// it has finished on the device), then `gen_tokens` greedy tokens after a 16-token prompt (end
/// of sequence ignored, so exactly that many).
pub async fn bench_decoder(cm: &CausalModel, recipe: &Recipe, steps: usize, warmup: usize, gen_tokens: usize, device: &Device) -> Result<DecoderBench> {
    use rand::Rng;
    let (batch, len) = (recipe.batch_size, recipe.max_len);
    if steps == 0 || batch == 0 || len < 2 || len > cm.config.max_positions() || gen_tokens == 0 {
        return Err(Error::Recipe("bench needs steps ≥ 1, batch ≥ 1, tokens ≥ 1 and 2 ≤ max-len ≤ the model's positions".into()));
    }
    let mut rng = StdRng::seed_from_u64(0);
    let vocab = cm.tokenizer.vocab_size().min(cm.config.vocab_size()) as u32;
    let lo = 256.min(vocab / 2);
    let rows: Vec<LmRow> = (0..batch).map(|_| LmRow { ids: (0..len).map(|_| rng.random_range(lo..vocab)).collect(), weights: vec![1.0; len] }).collect();
    let r = Recipe { epochs: warmup + steps, grad_accum: 1, warmup_ratio: 0.0, ..recipe.clone() };
    let mut s = crate::engine::causal_lm::LmSession::new(cm, rows.clone(), Vec::new(), r, device)?;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        s.step().await?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let training = crate::bench::BenchResult::new(batch, len, times);
    let model = s.inference_model()?;
    let prompt: Vec<u32> = rows[0].ids.iter().take(16.min(len)).copied().collect();
    let positions = cm.config.max_positions();
    let opts = crate::infer::generate::GenerateOptions { max_new_tokens: gen_tokens.min(positions.saturating_sub(prompt.len())).max(1), ..Default::default() };
    let mut g = crate::infer::generate::Generation::new(&model, prompt.clone(), opts, Vec::new(), positions)?;
    let t0 = Instant::now();
    while g.step(&model, &cm.tokenizer).await?.is_some() {}
    let generation_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let int8 = match crate::infer::generate::int8_model(&model).await? {
        Some(q8) => {
            let quantize_s = t0.elapsed().as_secs_f64();
            let weight_bytes = q8.bytes();
            let mut g8 = crate::infer::generate::Generation::new(&model, prompt.clone(), crate::infer::generate::GenerateOptions { max_new_tokens: g.generated().len().max(1), ..Default::default() }, Vec::new(), positions)?;
            g8.use_int8(std::sync::Arc::new(q8));
            let t0 = Instant::now();
            while g8.step(&model, &cm.tokenizer).await?.is_some() {}
            let s = t0.elapsed().as_secs_f64();
            let same = g8.generated().iter().zip(g.generated()).take_while(|(a, b)| a == b).count();
            Some(Int8Bench { generation_s: s, generation_tokens_per_s: g8.generated().len() as f64 / s.max(1e-9), same_tokens_as_f32: same, weight_bytes, quantize_s })
        }
        None => None,
    };
    Ok(DecoderBench {
        strategy: recipe.strategy,
        trainable: s.objective.trainable,
        training,
        prompt_tokens: prompt.len(),
        generated_tokens: g.generated().len(),
        generation_s,
        generation_tokens_per_s: g.generated().len() as f64 / generation_s.max(1e-9),
        int8,
    })
}
