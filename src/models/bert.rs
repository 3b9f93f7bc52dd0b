//! BERT encoder and sequence-classification head, mirroring Hugging Face `BertModel` /
//! `BertForSequenceClassification` (transformers/models/bert/modeling_bert.py): word + position +
//! token-type embeddings with LayerNorm, post-LN encoder layers, exact (erf) GELU, additive
//! attention mask on padding, tanh pooler over [CLS], linear classifier on the pooled output.
//! The same network is RoBERTa / XLM-RoBERTa (modeling_roberta.py: positions from
//! `pad_token_id + 1`, the head's dense layer on `<s>` with dropout before it) and DistilBERT
//! (modeling_distilbert.py: no token types, no dropout after the attention output, ReLU
//! `pre_classifier`); `EncoderArch` names each one's tensors, so `weights.rs` maps them one to one.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::lora_linear;
use crate::hf::config::{BertConfig, EncoderArch, Part};
use crate::error::Result;
use crate::recipe::LoraTarget;
use crate::hf::weights::ParamSource;

/// One padded batch, already on the device.
#[derive(Debug, Clone)]
pub struct BertInput {
    pub input_ids: Tensor<2, Int>,      // [batch, seq]
    pub token_type_ids: Tensor<2, Int>, // [batch, seq]
    pub attention_mask: Tensor<2>,      // [batch, seq], 1.0 real token, 0.0 padding
}

impl BertInput {
    /// Builds a batch from rows of token ids, padding each to the longest row.
    pub fn from_rows(rows: &[Vec<u32>], pad_id: u32, device: &Device) -> Self {
        let batch = rows.len();
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![pad_id as i64; batch * seq];
        let mut mask = vec![0f32; batch * seq];
        for (b, row) in rows.iter().enumerate() {
            for (t, &id) in row.iter().enumerate() {
                ids[b * seq + t] = id as i64;
                mask[b * seq + t] = 1.0;
            }
        }
        BertInput {
            input_ids: Tensor::from_data(TensorData::new(ids, [batch, seq]), device),
            token_type_ids: Tensor::zeros([batch, seq], device),
            attention_mask: Tensor::from_data(TensorData::new(mask, [batch, seq]), device),
        }
    }
}

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    /// None for DistilBERT.
    pub token_type_embeddings: Option<Embedding>,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// The first position id (RoBERTa: `pad_token_id + 1`).
    pub position_offset: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    pub num_heads: usize,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertSelfAttention,
    /// `attention.output.dense` / `attention.output.LayerNorm`
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    /// `intermediate.dense`
    pub intermediate: Linear,
    /// `output.dense` / `output.LayerNorm`
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub dropout: Dropout,
    /// On the attention output before its residual (DistilBERT has none: probability 0).
    pub attention_output_dropout: Dropout,
    /// PEFT's `lora_dropout` on the input of every LoRA-adapted linear (probability 0 without
    /// LoRA; see `lora_linear`).
    pub lora_dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
    /// The dense layer on the first token: BERT's `pooler.dense` and RoBERTa's `classifier.dense`
    /// (then tanh), DistilBERT's `pre_classifier` (then ReLU). See `EncoderArch::pooler`.
    pub pooler: Linear,
    /// Dropout on the first token before `pooler` (RoBERTa's head; probability 0 otherwise).
    pub pooler_dropout: Dropout,
    /// ReLU after `pooler` (DistilBERT) instead of tanh.
    pub pooler_relu: bool,
}

/// `BertForSequenceClassification`: encoder, dropout, `classifier` on the pooled output.
#[derive(Module, Debug)]
pub struct SequenceClassifier {
    pub bert: BertModel,
    pub dropout: Dropout,
    pub classifier: Linear,
}

/// A LayerNorm from `{name}.weight` / `{name}.bias` (BERT and GPT-2 name them alike).
pub(crate) fn layer_norm(src: &mut ParamSource, name: &str, dim: usize, eps: f64, device: &Device) -> Result<LayerNorm> {
    let mut ln = LayerNormConfig::new(dim).with_epsilon(eps).init(device);
    ln.gamma = src.ones_or_load(&format!("{name}.weight"), dim, device)?;
    ln.beta = Some(src.zeros_or_load(&format!("{name}.bias"), dim, device)?);
    Ok(ln)
}

fn embedding(src: &mut ParamSource, name: &str, n: usize, dim: usize, device: &Device) -> Result<Embedding> {
    Ok(Embedding { weight: src.matrix(&format!("{name}.weight"), n, dim, device)? })
}

impl BertModel {
    /// Builds the encoder from a checkpoint (or, for absent tensors, HF's initialisation).
    /// The source strips the checkpoint's prefix ("bert.", "roberta.", …) from its names.
    pub fn load(cfg: &BertConfig, src: &mut ParamSource, device: &Device) -> Result<Self> {
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let arch = cfg.arch;
        let hidden_dropout = DropoutConfig::new(cfg.hidden_dropout_prob).init();
        let embeddings = BertEmbeddings {
            word_embeddings: embedding(src, "embeddings.word_embeddings", cfg.vocab_size, h, device)?,
            position_embeddings: embedding(src, "embeddings.position_embeddings", cfg.max_position_embeddings, h, device)?,
            token_type_embeddings: match cfg.type_vocab_size {
                0 => None,
                n => Some(embedding(src, "embeddings.token_type_embeddings", n, h, device)?),
            },
            layer_norm: layer_norm(src, "embeddings.LayerNorm", h, eps, device)?,
            dropout: hidden_dropout.clone(),
            position_offset: cfg.position_offset(),
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = arch.layer(i);
            let name = |part: Part| format!("{p}.{}", arch.module(part));
            let i_size = cfg.intermediate_size;
            layers.push(BertLayer {
                attention: BertSelfAttention {
                    query: src.linear(&name(Part::Query), h, h, device)?,
                    key: src.linear(&name(Part::Key), h, h, device)?,
                    value: src.linear(&name(Part::Value), h, h, device)?,
                    dropout: DropoutConfig::new(cfg.attention_probs_dropout_prob).init(),
                    num_heads: cfg.num_attention_heads,
                },
                attention_output: src.linear(&name(Part::AttentionOutput), h, h, device)?,
                attention_norm: layer_norm(src, &name(Part::AttentionNorm), h, eps, device)?,
                intermediate: src.linear(&name(Part::Intermediate), h, i_size, device)?,
                output: src.linear(&name(Part::Output), i_size, h, device)?,
                output_norm: layer_norm(src, &name(Part::OutputNorm), h, eps, device)?,
                dropout: hidden_dropout.clone(),
                attention_output_dropout: DropoutConfig::new(if arch == EncoderArch::DistilBert { 0.0 } else { cfg.hidden_dropout_prob }).init(),
                lora_dropout: DropoutConfig::new(0.0).init(),
            });
        }
        let pooler = src.head_linear(arch.pooler(), h, h, device)?;
        let head_dropout = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(BertModel {
            embeddings,
            layers,
            pooler,
            pooler_dropout: DropoutConfig::new(if arch.is_roberta() { head_dropout } else { 0.0 }).init(),
            pooler_relu: arch == EncoderArch::DistilBert,
        })
    }

    /// Returns the last hidden state `[batch, seq, hidden]`.
    pub fn encode(&self, input: &BertInput) -> Tensor<3> {
        let [batch, seq] = input.input_ids.dims();
        let device = input.input_ids.device();
        let e = &self.embeddings;
        // Rows are padded on the right, so transformers' RoBERTa positions (`pad + 1 + cumsum` of
        // the real tokens) are `offset + t` at every real token; padded positions are masked.
        let start = e.position_offset as i64;
        let positions = Tensor::<1, Int>::arange(start..start + seq as i64, &device).reshape([1, seq]); // [1, seq]
        let mut x = e.word_embeddings.forward(input.input_ids.clone()) // [batch, seq, hidden]
            + e.position_embeddings.forward(positions); // [1, seq, hidden]
        if let Some(tt) = &e.token_type_embeddings {
            x = x + tt.forward(input.token_type_ids.clone()); // [batch, seq, hidden]
        }
        let mut x = e.dropout.forward(e.layer_norm.forward(x));

        // Additive mask: 0 for real tokens, a large negative number for padding keys.
        let mask = (input.attention_mask.clone().neg() + 1.0).mul_scalar(-1.0e9_f32); // [batch, seq]
        let mask = mask.reshape([batch, 1, 1, seq]); // [batch, 1, 1, seq]
        for layer in &self.layers {
            x = layer.forward(x, mask.clone());
        }
        x
    }

    /// `tanh(dense(h[:, 0]))` (DistilBERT: ReLU): the pooled first-token representation
    /// `[batch, hidden]`.
    pub fn pool(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [batch, _, h] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([batch, h]); // [batch, hidden]
        let dense = self.pooler.forward(self.pooler_dropout.forward(cls));
        if self.pooler_relu { burn::tensor::activation::relu(dense) } else { dense.tanh() }
    }
}

impl BertLayer {
    /// The linear layer a LoRA target names.
    pub fn linear(&self, target: LoraTarget) -> &Linear {
        match target {
            LoraTarget::Query => &self.attention.query,
            LoraTarget::Key => &self.attention.key,
            LoraTarget::Value => &self.attention.value,
            LoraTarget::AttentionOutput => &self.attention_output,
            LoraTarget::Intermediate => &self.intermediate,
            LoraTarget::Output => &self.output,
        }
    }


    fn forward(&self, x: Tensor<3>, mask: Tensor<4>) -> Tensor<3> {
        let d = &self.lora_dropout;
        let a = self.attention.forward(x.clone(), mask, d); // [batch, seq, hidden]
        let a = self.attention_output_dropout.forward(lora_linear(&self.attention_output, a, d));
        let x = self.attention_norm.forward(a + x);
        let f = gelu(lora_linear(&self.intermediate, x.clone(), d)); // [batch, seq, intermediate]
        let f = self.dropout.forward(lora_linear(&self.output, f, d)); // [batch, seq, hidden]
        self.output_norm.forward(f + x)
    }
}

impl BertSelfAttention {
    fn forward(&self, x: Tensor<3>, mask: Tensor<4>, lora_dropout: &Dropout) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let heads = self.num_heads;
        let head_dim = hidden / heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2); // [batch, heads, seq, head_dim]
        let q = split(lora_linear(&self.query, x.clone(), lora_dropout));
        let k = split(lora_linear(&self.key, x.clone(), lora_dropout));
        let v = split(lora_linear(&self.value, x, lora_dropout));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((head_dim as f32).sqrt()); // [batch, heads, seq, seq]
        let probs = self.dropout.forward(softmax(scores + mask, 3));
        probs
            .matmul(v) // [batch, heads, seq, head_dim]
            .swap_dims(1, 2) // [batch, seq, heads, head_dim]
            .reshape([batch, seq, hidden])
    }
}

impl SequenceClassifier {
    pub fn load(cfg: &BertConfig, num_labels: usize, src: &mut ParamSource, device: &Device) -> Result<Self> {
        let bert = BertModel::load(cfg, src, device)?;
        let classifier = src.head_linear(cfg.arch.classifier(), cfg.hidden_size, num_labels, device)?;
        let p = cfg.classifier_dropout.unwrap_or(cfg.hidden_dropout_prob);
        Ok(SequenceClassifier { bert, dropout: DropoutConfig::new(p).init(), classifier })
    }

    /// Class logits `[batch, num_labels]`.
    pub fn forward(&self, input: &BertInput) -> Tensor<2> {
        let pooled = self.bert.pool(self.bert.encode(input)); // [batch, hidden]
        self.classifier.forward(self.dropout.forward(pooled))
    }

    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }
}

/// `BertForMaskedLM`: the encoder and HF's `cls.predictions` head: `transform.dense` → GELU →
/// `transform.LayerNorm`, then a decoder tied to the word embeddings (`logits = h · Eᵀ + bias`,
/// `cls.predictions.bias`). RoBERTa's `lm_head` (dense, layer_norm, bias) and DistilBERT's
/// `vocab_transform` / `vocab_layer_norm` / `vocab_projector` are the same computation. The
/// pooler is kept (unused here) so the adapted encoder can go on to classification with it.
#[derive(Module, Debug)]
pub struct MaskedLm {
    pub bert: BertModel,
    /// `cls.predictions.transform.dense`
    pub transform: Linear,
    /// `cls.predictions.transform.LayerNorm`
    pub transform_norm: LayerNorm,
    /// `cls.predictions.bias` `[vocab]`
    pub decoder_bias: Param<Tensor<1>>,
}

impl MaskedLm {
    /// The head is loaded when the file has it (a `BertForMaskedLM` checkpoint), otherwise
    /// initialised as HF does (normal(0, initializer_range) dense, LayerNorm 1/0, bias 0).
    pub fn load(cfg: &BertConfig, src: &mut ParamSource, device: &Device) -> Result<Self> {
        let bert = BertModel::load(cfg, src, device)?;
        let h = cfg.hidden_size;
        let [dense, norm, bias] = cfg.arch.mlm_head();
        let transform = src.linear(dense, h, h, device)?;
        let transform_norm = layer_norm(src, norm, h, cfg.layer_norm_eps, device)?;
        let decoder_bias = src.zeros_or_load(bias, cfg.vocab_size, device)?;
        Ok(MaskedLm { bert, transform, transform_norm, decoder_bias })
    }

    /// Vocabulary logits `[n, vocab]` at the flat positions `positions` (`b * seq + t`) of the
    /// batch: only masked positions go through the (large) decoder.
    pub fn logits_at(&self, input: &BertInput, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.bert.encode(input); // [batch, seq, hidden]
        let [batch, seq, h] = hidden.dims();
        let picked = hidden.reshape([batch * seq, h]).select(0, positions); // [n, hidden]
        let t = self.transform_norm.forward(gelu(self.transform.forward(picked))); // [n, hidden]
        let emb = self.bert.embeddings.word_embeddings.weight.val(); // [vocab, hidden]
        let bias: Tensor<2> = self.decoder_bias.val().unsqueeze(); // [1, vocab]
        t.matmul(emb.transpose()) + bias // [n, vocab]
    }
}

/// Mean of the hidden states over real tokens, L2-normalised (sentence-transformers pooling).
pub fn mean_pool_normalized(hidden: Tensor<3>, attention_mask: Tensor<2>) -> Tensor<2> {
    let [batch, seq, _] = hidden.dims();
    let mask = attention_mask.reshape([batch, seq, 1]); // [batch, seq, 1]
    let summed = (hidden * mask.clone()).sum_dim(1); // [batch, 1, hidden]
    let count = mask.sum_dim(1).clamp_min(1e-9); // [batch, 1, 1]
    let mean = summed / count; // [batch, 1, hidden]
    let norm = mean.clone().square().sum_dim(2).sqrt().clamp_min(1e-12); // [batch, 1, 1]
    let [_, _, h] = mean.dims();
    (mean / norm).reshape([batch, h])
}
