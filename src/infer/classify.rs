//! Classification with a fine-tuned (or loaded) classifier: logits, predictions, metrics, and
//! an evaluation done a few batches at a time. Also the tokenized examples and the classifier
//! built from a checkpoint that training starts from.

use burn::tensor::Device;
use serde::Serialize;
use web_time::Instant;

use crate::hf::checkpoint::Checkpoint;
use crate::data::Example;
use crate::error::Result;
use crate::infer::metrics::{Metrics, classification_metrics};
use crate::models::bert::{BertInput, SequenceClassifier};
use crate::hf::weights::{LoadReport, ParamSource};
use crate::backend::read_f32;

/// A tokenized example.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub label: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    pub label_id: usize,
    pub probabilities: Vec<f64>,
    pub logits: Vec<f64>,
}

/// An inference-only classifier (no autodiff): evaluation, prediction, try-it box.
pub struct Classifier {
    pub model: SequenceClassifier,
    pub labels: Vec<String>,
    pub pad_id: u32,
}

impl Classifier {
    /// Logits for already tokenized rows, in input order; rows are batched by length.
    pub async fn logits(&self, rows: &[Vec<u32>], batch_size: usize, device: &Device) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let k = self.labels.len();
        let mut out = vec![Vec::new(); rows.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| rows[i].clone()).collect();
            let input = BertInput::from_rows(&batch, self.pad_id, device);
            let logits = read_f32(self.model.forward(&input)).await?;
            for (j, &i) in chunk.iter().enumerate() {
                out[i] = logits[j * k..(j + 1) * k].to_vec();
            }
        }
        Ok(out)
    }

    pub fn to_prediction(&self, logits: &[f32]) -> Prediction {
        let probs = softmax64(logits);
        let best = argmax(&probs);
        Prediction {
            label: self.labels[best].clone(),
            label_id: best,
            probabilities: probs,
            logits: logits.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Metrics plus per-example predictions on encoded examples.
    pub async fn evaluate(&self, data: &[Encoded], batch_size: usize, device: &Device) -> Result<(Metrics, Vec<Prediction>)> {
        let rows: Vec<Vec<u32>> = data.iter().map(|e| e.ids.clone()).collect();
        let logits = self.logits(&rows, batch_size, device).await?;
        Ok(self.score(data, &logits))
    }

    /// Metrics and predictions from the logits of `data` (in its order).
    pub fn score(&self, data: &[Encoded], logits: &[Vec<f32>]) -> (Metrics, Vec<Prediction>) {
        let preds: Vec<Prediction> = logits.iter().map(|l| self.to_prediction(l)).collect();
        let gold: Vec<usize> = data.iter().map(|e| e.label).collect();
        let loss = if data.is_empty() {
            0.0
        } else {
            data.iter().zip(&preds).map(|(e, p)| -(p.probabilities[e.label].max(1e-300)).ln()).sum::<f64>() / data.len() as f64
        };
        let pred_ids: Vec<usize> = preds.iter().map(|p| p.label_id).collect();
        (classification_metrics(&gold, &pred_ids, &self.labels, loss), preds)
    }
}

/// An evaluation done a few batches at a time: the page scores the model before fine-tuning
/// (a snapshot of the starting weights) between training slices, so the first loss shows
/// without waiting for the whole evaluation set. Same batches and results as `evaluate`.
pub struct PendingEvaluation {
    classifier: Classifier,
    data: Vec<Encoded>,
    /// Example indices by length, in `batch_size` chunks (as `Classifier::logits` batches them).
    order: Vec<usize>,
    logits: Vec<Vec<f32>>,
    next: usize,
    batch_size: usize,
    device: Device,
}

impl PendingEvaluation {
    pub fn new(classifier: Classifier, data: Vec<Encoded>, batch_size: usize, device: Device) -> Self {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| data[i].ids.len());
        let logits = vec![Vec::new(); data.len()];
        PendingEvaluation { classifier, data, order, logits, next: 0, batch_size: batch_size.max(1), device }
    }

    /// Scores batches for about `budget_ms` (at least one); the metrics once every example is in.
    pub async fn advance(&mut self, budget_ms: f64) -> Result<Option<(Metrics, Vec<Prediction>)>> {
        let t0 = Instant::now();
        while self.next < self.order.len() {
            let chunk: Vec<usize> = self.order[self.next..(self.next + self.batch_size).min(self.order.len())].to_vec();
            let rows: Vec<Vec<u32>> = chunk.iter().map(|&i| self.data[i].ids.clone()).collect();
            let batch = self.classifier.logits(&rows, rows.len(), &self.device).await?;
            for (j, i) in chunk.iter().enumerate() {
                self.logits[*i] = batch[j].clone();
            }
            self.next += chunk.len();
            if t0.elapsed().as_secs_f64() * 1e3 >= budget_ms {
                break;
            }
        }
        Ok((self.next >= self.order.len()).then(|| self.classifier.score(&self.data, &self.logits)))
    }
}

pub fn softmax64(logits: &[f32]) -> Vec<f64> {
    let m = logits.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = logits.iter().map(|&x| (x as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Builds a classifier for `labels` from a checkpoint. The checkpoint's own label layer is reused
/// only when its labels are exactly these; otherwise a new one is initialised like HF's.
pub fn build_classifier(ckpt: &Checkpoint, labels: &[String], seed: u64, device: &Device) -> Result<(SequenceClassifier, LoadReport)> {
    let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, seed)?;
    let head = ckpt.config.arch.classifier();
    if !(ckpt.config.labels == labels && src.has(&format!("{head}.weight"))) {
        // Only the label layer is new; the dense layer before it (RoBERTa's classifier.dense,
        // DistilBERT's pre_classifier) is kept, as transformers keeps it.
        src.forget_prefix(&format!("{head}."));
    }
    let model = SequenceClassifier::load(&ckpt.config, labels.len(), &mut src, device)?;
    Ok((model, src.report()))
}

pub fn encode_examples(ckpt: &mut Checkpoint, examples: &[Example], labels: &[String], max_len: usize, what: &str) -> Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(examples.len());
    let mut unknown: Vec<String> = Vec::new();
    for e in examples {
        match labels.iter().position(|l| *l == e.label) {
            Some(label) => out.push(Encoded { ids: ckpt.tokenizer.encode(&e.text, max_len)?, label }),
            None => {
                if !unknown.contains(&e.label) {
                    unknown.push(e.label.clone());
                }
            }
        }
    }
    if !unknown.is_empty() {
        unknown.truncate(10);
        return Err(crate::error::coded!(
            Data,
            "data.eval-unseen-labels",
            "{what} has labels that the training data does not: {unseen} (training labels: {labels})",
            what = what,
            unseen = unknown.join(", "),
            labels = labels.join(", ")
        ));
    }
    Ok(out)
}


/// An int8 classifier against its f32 weights: both files' sizes and both models' scores on the
/// same evaluation data.
#[derive(Debug, Clone, Serialize)]
pub struct Int8Report {
    pub f32_bytes: usize,
    pub int8_bytes: usize,
    pub f32: Metrics,
    pub int8: Metrics,
    /// int8 accuracy − f32 accuracy (points of accuracy, as a fraction).
    pub accuracy_change: f64,
    pub note: &'static str,
}

/// The int8 export of `clf` (models::export::export_classifier_int8_safetensors), read back as
/// Burnish reads it (dequantized on load) and scored on `eval` beside the f32 model; returns the
/// int8 `model.safetensors` and the comparison.
pub async fn int8_comparison(ckpt: &Checkpoint, clf: &Classifier, eval: &[Encoded], batch: usize, device: &Device) -> Result<(Vec<u8>, Int8Report)> {
    let arch = ckpt.config.arch;
    let int8 = crate::models::export::export_classifier_int8_safetensors(arch, &clf.model).await?;
    let f32_bytes = crate::models::export::export_classifier_safetensors(arch, &clf.model).await?.len();
    let mut src = ParamSource::from_safetensors(&int8, ckpt.config.initializer_range, 0)?;
    let q = Classifier { model: SequenceClassifier::load(&ckpt.config, clf.labels.len(), &mut src, device)?, labels: clf.labels.clone(), pad_id: clf.pad_id };
    let (m32, _) = clf.evaluate(eval, batch, device).await?;
    let (m8, _) = q.evaluate(eval, batch, device).await?;
    let report = Int8Report {
        f32_bytes,
        int8_bytes: int8.len(),
        accuracy_change: m8.accuracy - m32.accuracy,
        f32: m32,
        int8: m8,
        note: "int8 per-row absmax weights (I8 + an F32 scale per row); Burnish (page, CLI, web app) reads them, transformers needs the f32 export",
    };
    Ok((int8, report))
}
