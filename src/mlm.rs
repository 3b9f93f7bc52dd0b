//! Masked-LM domain adaptation: continue BERT's pre-training objective on plain domain text
//! before fine-tuning a classifier. Masking follows transformers'
//! `DataCollatorForLanguageModeling` (each non-special token is chosen with probability
//! `mlm_probability`; a chosen token becomes `[MASK]` 80 % of the time, a random token 10 %, stays
//! 10 %); the loss is cross-entropy at the chosen positions only, through HF's `BertForMaskedLM`
//! head with the decoder tied to the word embeddings. Like `TrainSession`, a step-able state
//! machine whose tensor reads are all asynchronous (WebGPU-safe).

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::data::Table;
use crate::error::{Error, Result};
use crate::models::bert::{BertInput, MaskedLm};
use crate::weights::{LoadReport, ParamSource, read_f32};

/// One sequence after masking: the model's input and the (position, original id) it must predict.
#[derive(Debug, Clone, PartialEq)]
pub struct Masked {
    pub input: Vec<u32>,
    pub targets: Vec<(usize, u32)>,
}

/// What the masking rule needs to know about the tokenizer.
#[derive(Debug, Clone)]
pub struct MaskRule {
    pub special: Vec<u32>,
    pub mask_id: u32,
    pub vocab: usize,
    pub probability: f64,
}

impl MaskRule {
    pub fn of(ckpt: &Checkpoint, probability: f64) -> Result<Self> {
        let mask_id = ckpt.tokenizer.mask_id().ok_or_else(|| {
            Error::Tokenizer("this tokenizer has no [MASK] token, which masked-LM adaptation needs".into())
        })?;
        Ok(MaskRule { special: ckpt.tokenizer.special_ids(), mask_id, vocab: ckpt.tokenizer.vocab_size(), probability })
    }

    pub fn maskable(&self, id: u32) -> bool {
        self.special.binary_search(&id).is_err()
    }

    /// Masks one sequence (80 % `[MASK]`, 10 % random token, 10 % unchanged). With `at_least_one`
    /// a sequence that drew no position gets one at random, so it always has something to score.
    pub fn apply(&self, ids: &[u32], rng: &mut StdRng, at_least_one: bool) -> Masked {
        let mut input = ids.to_vec();
        let mut chosen: Vec<usize> = (0..ids.len()).filter(|&t| self.maskable(ids[t]) && rng.random::<f64>() < self.probability).collect();
        if chosen.is_empty() && at_least_one {
            let candidates: Vec<usize> = (0..ids.len()).filter(|&t| self.maskable(ids[t])).collect();
            chosen.extend(candidates.choose(rng));
        }
        let mut targets = Vec::with_capacity(chosen.len());
        for t in chosen {
            targets.push((t, ids[t]));
            let r: f64 = rng.random();
            if r < 0.8 {
                input[t] = self.mask_id;
            } else if r < 0.9 {
                input[t] = rng.random_range(0..self.vocab as u32);
            }
        }
        Masked { input, targets }
    }
}

/// The non-empty texts of `column` in a domain-text table (a .txt file's column is "text").
pub fn domain_texts(table: &Table, column: &str) -> Result<Vec<String>> {
    let col = table.columns.iter().position(|c| c == column).ok_or_else(|| {
        Error::data(format!(
            "{}: no text column \"{column}\" for domain adaptation; columns found: {}",
            table.name,
            table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let texts: Vec<String> = table.rows.iter().map(|r| r[col].trim().to_string()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        return Err(Error::data(format!("{}: the column \"{column}\" has no text", table.name)));
    }
    Ok(texts)
}

/// Seeded split of domain texts into training and held-out texts (at least one of each when
/// there are two or more).
pub fn split_texts(texts: &[String], eval_fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    let mut idx: Vec<usize> = (0..texts.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x6d6c_6d5f_7370_6c74));
    let n_eval = if texts.len() < 2 { 0 } else { ((texts.len() as f64 * eval_fraction).round() as usize).clamp(1, texts.len() - 1) };
    let eval = idx[..n_eval].iter().map(|&i| texts[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| texts[i].clone()).collect();
    (train, eval)
}

/// A padded batch of masked rows: the input, the flat masked positions, their targets, count.
pub fn batch(rows: &[Masked], pad_id: u32, device: &Device) -> (BertInput, Tensor<1, Int>, Tensor<1, Int>, usize) {
    let inputs: Vec<Vec<u32>> = rows.iter().map(|m| m.input.clone()).collect();
    let seq = inputs.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
    let input = BertInput::from_rows(&inputs, pad_id, device);
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (b, m) in rows.iter().enumerate() {
        for &(t, id) in &m.targets {
            positions.push((b * seq + t) as i64);
            targets.push(id as i64);
        }
    }
    let n = positions.len();
    (
        input,
        Tensor::from_data(TensorData::new(positions, [n]), device),
        Tensor::from_data(TensorData::new(targets, [n]), device),
        n,
    )
}

/// One candidate for a masked position.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub token: String,
    pub id: u32,
    pub score: f64,
}

/// The model's top guesses for one `[MASK]` of a text.
#[derive(Debug, Clone, Serialize)]
pub struct MaskFill {
    /// Token position in the encoded text (0 is `[CLS]`).
    pub position: usize,
    pub candidates: Vec<Candidate>,
}

/// Fill-mask (transformers' `fill-mask` pipeline): the `top_k` most probable tokens, with their
/// softmax probabilities, for every mask token in `text`. Reads asynchronously.
pub async fn fill_mask(model: &MaskedLm, ckpt: &mut Checkpoint, text: &str, top_k: usize, max_len: usize, device: &Device) -> Result<Vec<MaskFill>> {
    let mask_id = ckpt.tokenizer.mask_id().ok_or_else(|| Error::Tokenizer("this tokenizer has no [MASK] token".into()))?;
    let ids = ckpt.tokenizer.encode(text, max_len)?;
    let positions: Vec<usize> = (0..ids.len()).filter(|&t| ids[t] == mask_id).collect();
    if positions.is_empty() {
        return Err(Error::data(format!("no [MASK] in \"{text}\": write [MASK] where the model should guess a word")));
    }
    let input = BertInput::from_rows(std::slice::from_ref(&ids), ckpt.tokenizer.pad_id, device);
    let n = positions.len();
    let flat: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
    let logits = model.logits_at(&input, Tensor::from_data(TensorData::new(flat, [n]), device)); // [n, vocab]
    let vocab = logits.dims()[1];
    let probs = read_f32(burn::tensor::activation::softmax(logits, 1)).await?;
    Ok(positions
        .iter()
        .enumerate()
        .map(|(k, &position)| {
            let row = &probs[k * vocab..(k + 1) * vocab];
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let candidates = order
                .into_iter()
                .take(top_k.max(1))
                .map(|id| Candidate { token: ckpt.tokenizer.token(id as u32).unwrap_or_default(), id: id as u32, score: row[id] as f64 })
                .collect();
            MaskFill { position, candidates }
        })
        .collect())
}

/// Loads a `BertForMaskedLM` (or any BERT checkpoint, with a newly initialised head) for
/// inference: used by the fidelity test.
pub fn load_masked_lm(ckpt: &Checkpoint, device: &Device) -> Result<(MaskedLm, LoadReport)> {
    load_masked_lm_seeded(ckpt, device, 0)
}

/// `load_masked_lm`, initialising a missing head from `seed`.
pub fn load_masked_lm_seeded(ckpt: &Checkpoint, device: &Device, seed: u64) -> Result<(MaskedLm, LoadReport)> {
    let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, seed)?;
    let model = MaskedLm::load(&ckpt.config, &mut src, device)?;
    Ok((model, src.report()))
}
