//! Two-layer model config: a permissive serde mirror of Hugging Face's `config.json`
//! (unknown keys ignored) and the validated `BertConfig` the model is built from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

pub const SUPPORTED_MODEL_TYPES: &str = "BERT-family encoders (model_type \"bert\", e.g. all-MiniLM-L6-v2, bert-base-uncased)";

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
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Validated runtime configuration of a BERT encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub classifier_dropout: Option<f64>,
    pub max_position_embeddings: usize,
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
        match self.model_type.as_deref() {
            Some("bert") => {}
            Some(other) => {
                return Err(Error::UnsupportedModel {
                    found: other.to_string(),
                    supported: SUPPORTED_MODEL_TYPES.into(),
                });
            }
            None => return Err(Error::Config(format!("no \"model_type\" key; Burnish supports {SUPPORTED_MODEL_TYPES}"))),
        }
        if let Some(act) = &self.hidden_act {
            if act != "gelu" {
                return Err(Error::Config(format!("hidden_act \"{act}\" is not supported (only \"gelu\", the exact erf GELU)")));
            }
        }
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return Err(Error::Config(format!("position_embedding_type \"{p}\" is not supported (only \"absolute\")")));
            }
        }
        let need = |v: Option<usize>, name: &str| v.ok_or_else(|| Error::Config(format!("missing \"{name}\"")));
        let hidden_size = need(self.hidden_size, "hidden_size")?;
        let heads = need(self.num_attention_heads, "num_attention_heads")?;
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
        let cfg = BertConfig {
            vocab_size: check_size("vocab_size", need(self.vocab_size, "vocab_size")?, 1, limits::VOCAB)?,
            hidden_size: check_size("hidden_size", hidden_size, 1, limits::HIDDEN)?,
            num_hidden_layers: check_size("num_hidden_layers", need(self.num_hidden_layers, "num_hidden_layers")?, 1, limits::LAYERS)?,
            num_attention_heads: heads,
            intermediate_size: check_size("intermediate_size", need(self.intermediate_size, "intermediate_size")?, 1, limits::INTERMEDIATE)?,
            hidden_dropout_prob: dropout(self.hidden_dropout_prob, 0.1, "hidden_dropout_prob")?,
            attention_probs_dropout_prob: dropout(self.attention_probs_dropout_prob, 0.1, "attention_probs_dropout_prob")?,
            classifier_dropout: match self.classifier_dropout {
                Some(p) => Some(check_prob("classifier_dropout", p)?),
                None => None,
            },
            max_position_embeddings: check_size("max_position_embeddings", need(self.max_position_embeddings, "max_position_embeddings")?, 1, limits::POSITIONS)?,
            type_vocab_size: check_size("type_vocab_size", self.type_vocab_size.unwrap_or(2), 1, limits::TOKEN_TYPES)?,
            initializer_range: self.initializer_range.unwrap_or(0.02),
            layer_norm_eps: check_positive("layer_norm_eps", self.layer_norm_eps.unwrap_or(1e-12))?,
            pad_token_id: self.pad_token_id.unwrap_or(0),
            labels,
        };
        if cfg.pad_token_id >= cfg.vocab_size {
            return Err(Error::Config(format!("\"pad_token_id\" {} is not below vocab_size {}", cfg.pad_token_id, cfg.vocab_size)));
        }
        Ok(cfg)
    }
}

impl BertConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Writes an HF `config.json` for a fine-tuned classifier: the original file's keys, with the
/// architecture and label maps replaced.
pub fn export_classifier_config(original: &HfConfigFile, labels: &[String]) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(original).map_err(|e| Error::Other(e.to_string()))?;
    let obj = value.as_object_mut().ok_or_else(|| Error::Other("config is not an object".into()))?;
    obj.retain(|_, v| !v.is_null());
    obj.insert("architectures".into(), serde_json::json!(["BertForSequenceClassification"]));
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

/// Writes an HF `config.json` for a domain-adapted `BertForMaskedLM`: the original file's keys
/// with the architecture replaced and any classification label maps dropped.
pub fn export_mlm_config(original: &HfConfigFile) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(original).map_err(|e| Error::Other(e.to_string()))?;
    let obj = value.as_object_mut().ok_or_else(|| Error::Other("config is not an object".into()))?;
    obj.retain(|_, v| !v.is_null());
    obj.insert("architectures".into(), serde_json::json!(["BertForMaskedLM"]));
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
