//! A pretrained checkpoint as the three Hugging Face files (bytes in, never paths), validated
//! together, plus what the page shows about it and the HF folder written on export.

use serde::Serialize;

use crate::hf::config::{BertConfig, HfConfigFile, export_classifier_config};
use crate::error::Result;
use crate::hf::tokenizer::TextTokenizer;

pub struct Checkpoint {
    pub config_file: HfConfigFile,
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
    pub weights: Vec<u8>,
    /// Optional `tokenizer_config.json` that came with the model (exported unchanged).
    pub tokenizer_config: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub architecture: String,
    pub model_type: String,
    pub parameters: usize,
    pub layers: usize,
    pub hidden_size: usize,
    pub heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub labels: Vec<String>,
    pub weights_bytes: usize,
}

impl Checkpoint {
    pub fn from_bytes(config: &[u8], tokenizer: &[u8], weights: Vec<u8>) -> Result<Self> {
        let config_file = HfConfigFile::from_bytes(config)?;
        let cfg = config_file.clone().into_bert()?;
        let tok = TextTokenizer::from_bytes(tokenizer)?;
        if tok.vocab_size() > cfg.vocab_size {
            return Err(crate::error::coded!(
                Tokenizer,
                "tokenizer.other-model",
                "the tokenizer has {tokens} tokens but config.json says vocab_size {vocab}: they belong to different models",
                tokens = tok.vocab_size(),
                vocab = cfg.vocab_size
            ));
        }
        tok.check_fits(cfg.vocab_size)?;
        crate::hf::weights::validate_safetensors(&weights)?;
        Ok(Checkpoint { config_file, config: cfg, tokenizer: tok, weights, tokenizer_config: None })
    }

    pub fn summary(&self) -> ModelSummary {
        let c = &self.config;
        let h = c.hidden_size;
        let emb = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * (2 * h) + (h * c.intermediate_size + c.intermediate_size) + (c.intermediate_size * h + h);
        let pooler = h * h + h;
        ModelSummary {
            architecture: self
                .config_file
                .architectures
                .as_ref()
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| "BertModel".into()),
            model_type: "bert".into(),
            parameters: emb + c.num_hidden_layers * layer + pooler,
            layers: c.num_hidden_layers,
            hidden_size: h,
            heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
            max_position_embeddings: c.max_position_embeddings,
            labels: c.labels.clone(),
            weights_bytes: self.weights.len(),
        }
    }

    /// The tokenizer files `AutoTokenizer.from_pretrained` needs next to `tokenizer.json`.
    pub fn tokenizer_files(&self) -> Vec<(String, Vec<u8>)> {
        let raw = self.tokenizer.raw();
        let json: serde_json::Value = serde_json::from_slice(raw).unwrap_or(serde_json::Value::Null);
        let lower = json
            .pointer("/normalizer/lowercase")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let tok_config = self.tokenizer_config.clone().unwrap_or_else(|| {
            serde_json::to_vec_pretty(&serde_json::json!({
                "tokenizer_class": "BertTokenizer",
                "do_lower_case": lower,
                "model_max_length": self.config.max_position_embeddings,
                "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "mask_token": "[MASK]", "unk_token": "[UNK]",
                "clean_up_tokenization_spaces": true
            }))
            .unwrap_or_default()
        });
        let special = serde_json::to_vec_pretty(&serde_json::json!({
            "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "mask_token": "[MASK]", "unk_token": "[UNK]"
        }))
        .unwrap_or_default();
        let mut files = vec![
            ("tokenizer.json".to_string(), raw.to_vec()),
            ("tokenizer_config.json".to_string(), tok_config),
            ("special_tokens_map.json".to_string(), special),
        ];
        if let Some(vocab) = json.pointer("/model/vocab").and_then(|v| v.as_object()) {
            let mut pairs: Vec<(u64, &str)> = vocab.iter().filter_map(|(k, v)| v.as_u64().map(|id| (id, k.as_str()))).collect();
            pairs.sort();
            let text: String = pairs.iter().map(|(_, t)| format!("{t}\n")).collect();
            files.push(("vocab.txt".to_string(), text.into_bytes()));
        }
        files
    }

    /// config.json for a fine-tuned `BertForSequenceClassification` with these labels.
    pub fn classifier_config(&self, labels: &[String]) -> Result<Vec<u8>> {
        export_classifier_config(&self.config_file, labels)
    }
}
