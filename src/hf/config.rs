//! Two-layer model config: a permissive serde mirror of Hugging Face's `config.json`
//! (unknown keys ignored) and the validated `BertConfig` the model is built from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub const SUPPORTED_MODEL_TYPES: &str = "encoders of model_type \"bert\" (all-MiniLM-L6-v2, bert-base-uncased), \"roberta\" (roberta-base), \"xlm-roberta\" (xlm-roberta-base, multilingual-e5-base) and \"distilbert\" (distilbert-base-uncased)";

/// The encoder families Burnish loads. They share one network (`models/bert.rs`); what differs is
/// the names of the tensors, where positions start, token types, the classification head and the
/// masked-LM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderArch {
    Bert,
    /// RoBERTa: positions start after `pad_token_id`, one token type, the head `classifier.dense`
    /// + `classifier.out_proj` on `<s>` (no pooler), the masked-LM head `lm_head.*`.
    Roberta,
    /// XLM-RoBERTa: RoBERTa's network under its own `model_type` (and a SentencePiece tokenizer).
    XlmRoberta,
    /// DistilBERT: `transformer.layer.N` with `q_lin`..`out_lin`, `ffn.lin1/lin2`; no token types;
    /// the head `pre_classifier` + ReLU + `classifier`; the masked-LM head `vocab_*`.
    DistilBert,
}

/// One sublayer of an encoder layer, for its HF module name (`EncoderArch::module`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Query,
    Key,
    Value,
    AttentionOutput,
    AttentionNorm,
    Intermediate,
    Output,
    OutputNorm,
}

impl EncoderArch {
    pub fn model_type(self) -> &'static str {
        match self {
            EncoderArch::Bert => "bert",
            EncoderArch::Roberta => "roberta",
            EncoderArch::XlmRoberta => "xlm-roberta",
            EncoderArch::DistilBert => "distilbert",
        }
    }

    /// The transformers class prefix (`{class}ForSequenceClassification`).
    pub fn class(self) -> &'static str {
        match self {
            EncoderArch::Bert => "Bert",
            EncoderArch::Roberta => "Roberta",
            EncoderArch::XlmRoberta => "XLMRoberta",
            EncoderArch::DistilBert => "DistilBert",
        }
    }

    /// The base model's attribute in the task models (`bert.`, `roberta.`, `distilbert.`).
    pub fn prefix(self) -> &'static str {
        match self {
            EncoderArch::Bert => "bert.",
            EncoderArch::Roberta | EncoderArch::XlmRoberta => "roberta.",
            EncoderArch::DistilBert => "distilbert.",
        }
    }

    pub fn is_roberta(self) -> bool {
        matches!(self, EncoderArch::Roberta | EncoderArch::XlmRoberta)
    }

    /// Encoder layer `i`'s module path (without the prefix).
    pub fn layer(self, i: usize) -> String {
        match self {
            EncoderArch::DistilBert => format!("transformer.layer.{i}"),
            _ => format!("encoder.layer.{i}"),
        }
    }

    /// A sublayer's module path inside an encoder layer.
    pub fn module(self, part: Part) -> &'static str {
        let distil = self == EncoderArch::DistilBert;
        match (part, distil) {
            (Part::Query, false) => "attention.self.query",
            (Part::Key, false) => "attention.self.key",
            (Part::Value, false) => "attention.self.value",
            (Part::AttentionOutput, false) => "attention.output.dense",
            (Part::AttentionNorm, false) => "attention.output.LayerNorm",
            (Part::Intermediate, false) => "intermediate.dense",
            (Part::Output, false) => "output.dense",
            (Part::OutputNorm, false) => "output.LayerNorm",
            (Part::Query, true) => "attention.q_lin",
            (Part::Key, true) => "attention.k_lin",
            (Part::Value, true) => "attention.v_lin",
            (Part::AttentionOutput, true) => "attention.out_lin",
            (Part::AttentionNorm, true) => "sa_layer_norm",
            (Part::Intermediate, true) => "ffn.lin1",
            (Part::Output, true) => "ffn.lin2",
            (Part::OutputNorm, true) => "output_layer_norm",
        }
    }

    /// The dense layer between the first token's hidden state and the classifier, as the
    /// checkpoint names it: BERT's pooler is part of the base model (under the prefix), RoBERTa's
    /// and DistilBERT's belong to the head.
    pub fn pooler(self) -> &'static str {
        match self {
            EncoderArch::Bert => "pooler.dense",
            EncoderArch::Roberta | EncoderArch::XlmRoberta => "classifier.dense",
            EncoderArch::DistilBert => "pre_classifier",
        }
    }

    /// The classification layer's name.
    pub fn classifier(self) -> &'static str {
        if self.is_roberta() { "classifier.out_proj" } else { "classifier" }
    }

    /// The masked-LM head's (transform dense, transform norm, vocabulary bias) names.
    pub fn mlm_head(self) -> [&'static str; 3] {
        match self {
            EncoderArch::Bert => ["cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"],
            EncoderArch::Roberta | EncoderArch::XlmRoberta => ["lm_head.dense", "lm_head.layer_norm", "lm_head.bias"],
            EncoderArch::DistilBert => ["vocab_transform", "vocab_layer_norm", "vocab_projector.bias"],
        }
    }
}

/// Mirror of the fields of HF `BertConfig` that Burnish reads. Everything else in the file is
/// kept verbatim in `extra` so an export writes it back unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HfConfigFile {
    pub model_type: Option<String>,
    pub vocab_size: Option<usize>,
    pub hidden_size: Option<usize>,
    pub num_hidden_layers: Option<usize>,
    pub num_attention_heads: Option<usize>,
    pub intermediate_size: Option<usize>,
    pub hidden_act: Option<String>,
    pub hidden_dropout_prob: Option<f64>,
    pub attention_probs_dropout_prob: Option<f64>,
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: Option<usize>,
    pub type_vocab_size: Option<usize>,
    pub initializer_range: Option<f64>,
    pub layer_norm_eps: Option<f64>,
    pub pad_token_id: Option<usize>,
    pub position_embedding_type: Option<String>,
    pub id2label: Option<BTreeMap<String, String>>,
    pub num_labels: Option<usize>,
    pub architectures: Option<Vec<String>>,
    // DistilBERT names the same sizes differently.
    pub dim: Option<usize>,
    pub n_layers: Option<usize>,
    pub n_heads: Option<usize>,
    pub hidden_dim: Option<usize>,
    pub dropout: Option<f64>,
    pub attention_dropout: Option<f64>,
    pub seq_classif_dropout: Option<f64>,
    pub activation: Option<String>,
    pub sinusoidal_pos_embds: Option<bool>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Validated runtime configuration of a BERT encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub arch: EncoderArch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: usize,
    /// 0 for DistilBERT, which has no token-type embeddings.
    pub type_vocab_size: usize,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    /// Labels of the checkpoint's classification head, in id order (empty when it has none).
    pub labels: Vec<String>,
}

impl HfConfigFile {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::Config("the file is not UTF-8 text (is it really config.json?)".into()))?;
        serde_json::from_str(text).map_err(|e| crate::error::coded!(Config, "config.not-json", "not valid JSON for a model config: {error}", error = e))
    }

    /// Checks the file and turns it into the runtime config.
    pub fn into_bert(self) -> Result<BertConfig> {
        let arch = match self.model_type.as_deref() {
            Some("bert") => EncoderArch::Bert,
            Some("roberta") => EncoderArch::Roberta,
            Some("xlm-roberta") => EncoderArch::XlmRoberta,
            Some("distilbert") => EncoderArch::DistilBert,
            Some(other) => {
                return Err(Error::UnsupportedModel {
                    found: other.to_string(),
                    supported: SUPPORTED_MODEL_TYPES.into(),
                });
            }
            None => return Err(Error::Config(format!("no \"model_type\" key; Burnish supports {SUPPORTED_MODEL_TYPES}"))),
        };
        let distil = arch == EncoderArch::DistilBert;
        // DistilBERT's keys for the same things (its config class maps hidden_size to dim, …).
        let pick = |bert: Option<usize>, distil_key: Option<usize>| if distil { distil_key.or(bert) } else { bert };
        let pickf = |bert: Option<f64>, distil_key: Option<f64>| if distil { distil_key.or(bert) } else { bert };
        let (act_key, act) = if distil { ("activation", &self.activation) } else { ("hidden_act", &self.hidden_act) };
        if let Some(act) = act {
            if act != "gelu" {
                return Err(Error::Config(format!("{act_key} \"{act}\" is not supported (only \"gelu\", the exact erf GELU)")));
            }
        }
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return Err(Error::Config(format!("position_embedding_type \"{p}\" is not supported (only \"absolute\")")));
            }
        }
        if distil && self.sinusoidal_pos_embds == Some(true) {
            return Err(Error::Config("sinusoidal_pos_embds true is not supported (DistilBERT checkpoints on the Hub learn their positions)".into()));
        }
        let need = |v: Option<usize>, name: &str| v.ok_or_else(|| Error::Config(format!("missing \"{name}\"")));
        let key = |bert: &'static str, d: &'static str| if distil { d } else { bert };
        let hidden_size = need(pick(self.hidden_size, self.dim), key("hidden_size", "dim"))?;
        let heads = need(pick(self.num_attention_heads, self.n_heads), key("num_attention_heads", "n_heads"))?;
        if heads == 0 || hidden_size % heads != 0 {
            return Err(Error::Config(format!("hidden_size {hidden_size} is not divisible by num_attention_heads {heads}")));
        }
        let labels = match &self.id2label {
            Some(map) if !map.is_empty() => {
                let mut pairs: Vec<(usize, String)> = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let id = k.parse::<usize>().map_err(|_| Error::Config(format!("id2label key \"{k}\" is not an integer")))?;
                    pairs.push((id, v.clone()));
                }
                pairs.sort();
                if pairs.iter().enumerate().any(|(i, (id, _))| *id != i) {
                    return Err(Error::Config("id2label ids must be 0..n-1".into()));
                }
                pairs.into_iter().map(|(_, v)| v).collect()
            }
            _ => Vec::new(),
        };
        let dropout = |v: Option<f64>, d: f64, field: &str| -> Result<f64> { check_prob(field, v.unwrap_or(d)) };
        if labels.len() > limits::LABELS {
            return Err(Error::Config(format!("id2label has {} labels; the limit is {}", labels.len(), limits::LABELS)));
        }
        check_size("num_attention_heads", heads, 1, limits::HEADS)?;
        check_size("hidden_size / num_attention_heads", hidden_size / heads, 1, limits::HEAD_DIM)?;
        let layers = need(pick(self.num_hidden_layers, self.n_layers), key("num_hidden_layers", "n_layers"))?;
        let intermediate = need(pick(self.intermediate_size, self.hidden_dim), key("intermediate_size", "hidden_dim"))?;
        let type_vocab_size = match arch {
            EncoderArch::DistilBert => 0,
            EncoderArch::Roberta | EncoderArch::XlmRoberta => check_size("type_vocab_size", self.type_vocab_size.unwrap_or(1), 1, limits::TOKEN_TYPES)?,
            EncoderArch::Bert => check_size("type_vocab_size", self.type_vocab_size.unwrap_or(2), 1, limits::TOKEN_TYPES)?,
        };
        let cfg = BertConfig {
            arch,
            vocab_size: check_size("vocab_size", need(self.vocab_size, "vocab_size")?, 1, limits::VOCAB)?,
            hidden_size: check_size(key("hidden_size", "dim"), hidden_size, 1, limits::HIDDEN)?,
            num_hidden_layers: check_size(key("num_hidden_layers", "n_layers"), layers, 1, limits::LAYERS)?,
            num_attention_heads: heads,
            intermediate_size: check_size(key("intermediate_size", "hidden_dim"), intermediate, 1, limits::INTERMEDIATE)?,
            hidden_dropout_prob: dropout(pickf(self.hidden_dropout_prob, self.dropout), 0.1, key("hidden_dropout_prob", "dropout"))?,
            attention_probs_dropout_prob: dropout(pickf(self.attention_probs_dropout_prob, self.attention_dropout), 0.1, key("attention_probs_dropout_prob", "attention_dropout"))?,
            classifier_dropout: match pickf(self.classifier_dropout, self.seq_classif_dropout) {
                Some(p) => Some(check_prob(key("classifier_dropout", "seq_classif_dropout"), p)?),
                None => None,
            },
            max_position_embeddings: check_size("max_position_embeddings", need(self.max_position_embeddings, "max_position_embeddings")?, 1, limits::POSITIONS)?,
            type_vocab_size,
            initializer_range: self.initializer_range.unwrap_or(0.02),
            // DistilBERT's LayerNorms use 1e-12 always (its config has no epsilon).
            layer_norm_eps: if distil { 1e-12 } else { check_positive("layer_norm_eps", self.layer_norm_eps.unwrap_or(1e-12))? },
            pad_token_id: self.pad_token_id.unwrap_or(if arch.is_roberta() { 1 } else { 0 }),
            labels,
        };
        if cfg.pad_token_id >= cfg.vocab_size {
            return Err(Error::Config(format!("\"pad_token_id\" {} is not below vocab_size {}", cfg.pad_token_id, cfg.vocab_size)));
        }
        if cfg.max_tokens() < 2 {
            return Err(Error::Config(format!(
                "\"max_position_embeddings\" {} leaves no room for a sequence: RoBERTa's positions start at pad_token_id + 1 = {}",
                cfg.max_position_embeddings,
                cfg.position_offset()
            )));
        }
        Ok(cfg)
    }
}

impl BertConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The first position id: RoBERTa numbers positions from `pad_token_id + 1` (transformers'
    /// `create_position_ids_from_input_ids`), BERT and DistilBERT from 0.
    pub fn position_offset(&self) -> usize {
        if self.arch.is_roberta() { self.pad_token_id + 1 } else { 0 }
    }

    /// The longest sequence the position table holds (RoBERTa's 514 rows hold 512 tokens).
    pub fn max_tokens(&self) -> usize {
        self.max_position_embeddings.saturating_sub(self.position_offset())
    }
}

/// Writes an HF `config.json` for a fine-tuned classifier: the original file's keys, with the
/// architecture and label maps replaced.
pub fn export_classifier_config(original: &HfConfigFile, arch: EncoderArch, labels: &[String]) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(original).map_err(|e| Error::Other(e.to_string()))?;
    let obj = value.as_object_mut().ok_or_else(|| Error::Other("config is not an object".into()))?;
    obj.retain(|_, v| !v.is_null());
    obj.insert("architectures".into(), serde_json::json!([format!("{}ForSequenceClassification", arch.class())]));
    let id2label: serde_json::Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (i.to_string(), Value::String(l.clone()))).collect();
    let label2id: serde_json::Map<String, Value> =
        labels.iter().enumerate().map(|(i, l)| (l.clone(), Value::from(i))).collect();
    obj.insert("id2label".into(), Value::Object(id2label));
    obj.insert("label2id".into(), Value::Object(label2id));
    obj.remove("num_labels");
    obj.insert("problem_type".into(), Value::String("single_label_classification".into()));
    serde_json::to_vec_pretty(&value).map_err(|e| Error::Other(e.to_string()))
}

/// Writes an HF `config.json` for a domain-adapted `…ForMaskedLM`: the original file's keys
/// with the architecture replaced and any classification label maps dropped.
pub fn export_mlm_config(original: &HfConfigFile, arch: EncoderArch) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(original).map_err(|e| Error::Other(e.to_string()))?;
    let obj = value.as_object_mut().ok_or_else(|| Error::Other("config is not an object".into()))?;
    obj.retain(|_, v| !v.is_null());
    obj.insert("architectures".into(), serde_json::json!([format!("{}ForMaskedLM", arch.class())]));
    for k in ["id2label", "label2id", "num_labels", "problem_type"] {
        obj.remove(k);
    }
    serde_json::to_vec_pretty(&value).map_err(|e| Error::Other(e.to_string()))
}

/// The largest sizes a config.json may name. Real checkpoints stay far below them (the biggest
/// vocabularies are ~260k tokens, hidden sizes of browser-sized models ≤ 4096); a file beyond
/// them is damaged or hostile, and would otherwise reach an allocation of that size.
pub mod limits {
    pub const VOCAB: usize = 1 << 20;
    pub const HIDDEN: usize = 16_384;
    pub const LAYERS: usize = 256;
    pub const HEADS: usize = 512;
    pub const HEAD_DIM: usize = 1024;
    pub const INTERMEDIATE: usize = 65_536;
    pub const POSITIONS: usize = 1 << 20;
    pub const TOKEN_TYPES: usize = 1024;
    /// Labels of a classification head; also the most classes a label column may have
    /// (`data::MAX_CLASSES`): the page shows a k×k confusion matrix.
    pub const LABELS: usize = 1000;
}

/// `value` of config.json's `field` must lie in `min..=max`.
pub fn check_size(field: &str, value: usize, min: usize, max: usize) -> Result<usize> {
    if value < min || value > max {
        return Err(Error::Config(format!("\"{field}\" is {value}; it must be between {min} and {max}")));
    }
    Ok(value)
}

/// A dropout probability of config.json's `field`: finite, in [0, 1).
pub fn check_prob(field: &str, p: f64) -> Result<f64> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::Config(format!("\"{field}\" is {p}; a dropout probability must be in [0, 1)")));
    }
    Ok(p)
}

/// A strictly positive, finite value of config.json's `field` (a norm's epsilon, rope theta).
pub fn check_positive(field: &str, v: f64) -> Result<f64> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::Config(format!("\"{field}\" is {v}; it must be a positive finite number")));
    }
    Ok(v)
}
