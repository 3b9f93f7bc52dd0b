//! A pretrained checkpoint as the three Hugging Face files (bytes in, never paths), validated
//! together, plus what the page shows about it and the HF folder written on export.

use serde::Serialize;

use crate::hf::config::{BertConfig, EncoderArch, HfConfigFile, export_classifier_config};
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
        // BERT's pooler is part of the base model; RoBERTa's and DistilBERT's dense layer is the head's.
        let pooler = if c.arch == EncoderArch::Bert { h * h + h } else { 0 };
        ModelSummary {
            architecture: self
                .config_file
                .architectures
                .as_ref()
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| format!("{}Model", c.arch.class())),
            model_type: c.arch.model_type().into(),
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

    /// The tokenizer files `AutoTokenizer.from_pretrained` needs next to `tokenizer.json`: the
    /// model's own `tokenizer_config.json` when it came with one, else one naming the
    /// architecture's tokenizer class and the special tokens the vocabulary has (BERT's `[CLS]` …
    /// or RoBERTa's `<s>` …); WordPiece vocabularies also get `vocab.txt`.
    pub fn tokenizer_files(&self) -> Vec<(String, Vec<u8>)> {
        let raw = self.tokenizer.raw();
        let json: serde_json::Value = serde_json::from_slice(raw).unwrap_or(serde_json::Value::Null);
        let lower = json
            .pointer("/normalizer/lowercase")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let has = |t: &str| self.tokenizer.has_token(t);
        let pick = |bert: &'static str, roberta: &'static str| if has(bert) || !has(roberta) { bert } else { roberta };
        let mut special = serde_json::Map::new();
        for (key, bert, roberta) in [("cls_token", "[CLS]", "<s>"), ("sep_token", "[SEP]", "</s>"), ("pad_token", "[PAD]", "<pad>"), ("mask_token", "[MASK]", "<mask>"), ("unk_token", "[UNK]", "<unk>")] {
            special.insert(key.into(), serde_json::Value::String(pick(bert, roberta).into()));
        }
        if has("<s>") && !has("[CLS]") {
            special.insert("bos_token".into(), "<s>".into());
            special.insert("eos_token".into(), "</s>".into());
        }
        let tokenizer_class = match self.config.arch {
            EncoderArch::Bert => "BertTokenizer",
            EncoderArch::Roberta => "RobertaTokenizer",
            EncoderArch::XlmRoberta => "XLMRobertaTokenizer",
            EncoderArch::DistilBert => "DistilBertTokenizer",
        };
        let tok_config = self.tokenizer_config.clone().unwrap_or_else(|| {
            let mut cfg = special.clone();
            cfg.insert("tokenizer_class".into(), tokenizer_class.into());
            cfg.insert("model_max_length".into(), self.config.max_tokens().into());
            cfg.insert("clean_up_tokenization_spaces".into(), true.into());
            if json.pointer("/model/type").and_then(|v| v.as_str()) == Some("WordPiece") {
                cfg.insert("do_lower_case".into(), lower.into());
            }
            serde_json::to_vec_pretty(&cfg).unwrap_or_default()
        });
        let mut files = vec![
            ("tokenizer.json".to_string(), raw.to_vec()),
            ("tokenizer_config.json".to_string(), tok_config),
            ("special_tokens_map.json".to_string(), serde_json::to_vec_pretty(&special).unwrap_or_default()),
        ];
        let wordpiece = json.pointer("/model/type").and_then(|v| v.as_str()).is_none_or(|t| t == "WordPiece");
        if let Some(vocab) = json.pointer("/model/vocab").and_then(|v| v.as_object()).filter(|_| wordpiece) {
            let mut pairs: Vec<(u64, &str)> = vocab.iter().filter_map(|(k, v)| v.as_u64().map(|id| (id, k.as_str()))).collect();
            pairs.sort();
            let text: String = pairs.iter().map(|(_, t)| format!("{t}\n")).collect();
            files.push(("vocab.txt".to_string(), text.into_bytes()));
        }
        files
    }

    /// config.json for a fine-tuned `…ForSequenceClassification` with these labels.
    pub fn classifier_config(&self, labels: &[String]) -> Result<Vec<u8>> {
        export_classifier_config(&self.config_file, self.config.arch, labels)
    }
}
