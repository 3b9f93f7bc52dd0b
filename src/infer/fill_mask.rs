//! Fill-mask (transformers' `fill-mask` pipeline) with an encoder's masked-LM head, and loading one.

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use crate::backend::read_f32;
use crate::error::{Error, Result};
use crate::hf::checkpoint::Checkpoint;
use crate::hf::weights::{LoadReport, ParamSource};
use crate::models::bert::{BertInput, MaskedLm};

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
    // `[MASK]` works for every model: RoBERTa's and XLM-R's own mask token is `<mask>`.
    let token = ckpt.tokenizer.token(mask_id).unwrap_or_else(|| "[MASK]".into());
    let ids = ckpt.tokenizer.encode(&text.replace("[MASK]", &token), max_len)?;
    let positions: Vec<usize> = (0..ids.len()).filter(|&t| ids[t] == mask_id).collect();
    if positions.is_empty() {
        let also = if token == "[MASK]" { String::new() } else { format!(" (or {token})") };
        return Err(Error::data(format!("no [MASK] in \"{text}\": write [MASK]{also} where the model should guess a word")));
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
