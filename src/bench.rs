//! Benchmarks the CLI (`burnish bench`) and the page run: timed training steps and forward
//! passes of a classifier on seeded random tokens.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use web_time::Instant;

use crate::checkpoint::Checkpoint;
use crate::engine::{clip_global_norm, cross_entropy};
use crate::error::{Error, Result};
use crate::infer::classify::build_classifier;
use crate::models::bert::{BertInput, SequenceClassifier};
use crate::weights::read_f32;

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
    if steps == 0 || batch == 0 || len < 2 || len > ckpt.config.max_position_embeddings {
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
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).with_epsilon(1e-8).init();
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
