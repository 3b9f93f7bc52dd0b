//! Sentence embeddings (sentence-transformers style): encoder hidden states mean-pooled over
//! the attention mask and L2-normalised.

use burn::tensor::Device;

use crate::hf::checkpoint::Checkpoint;
use crate::error::Result;
use crate::models::bert::{BertInput, BertModel, mean_pool_normalized};
use crate::hf::weights::ParamSource;
use crate::backend::read_f32;

pub struct Embedder {
    pub model: BertModel,
    pub pad_id: u32,
    pub hidden: usize,
}

impl Embedder {
    pub fn new(ckpt: &Checkpoint, device: &Device) -> Result<Self> {
        let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, 0)?;
        let model = BertModel::load(&ckpt.config, &mut src, device)?;
        Ok(Embedder { model, pad_id: ckpt.tokenizer.pad_id, hidden: ckpt.config.hidden_size })
    }

    /// One embedding per row of token ids, batched `batch_size` at a time.
    pub async fn embed_ids(&self, rows: &[Vec<u32>], batch_size: usize, device: &Device) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(batch_size.max(1)) {
            let input = BertInput::from_rows(chunk, self.pad_id, device);
            let hidden = self.model.encode(&input);
            let pooled = read_f32(mean_pool_normalized(hidden, input.attention_mask.clone())).await?;
            out.extend(pooled.chunks(self.hidden).map(|c| c.to_vec()));
        }
        Ok(out)
    }
}
