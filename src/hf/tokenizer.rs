//! Wraps a Hugging Face `tokenizer.json` (via the `tokenizers` crate, pure Rust so it builds for
//! wasm). The file's own padding/truncation settings are switched off (MiniLM's pads everything
//! to 128); Burnish truncates to the recipe's `max_len` and pads per batch, as transformers does.

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};

pub struct TextTokenizer {
    inner: Tokenizer,
    pub pad_id: u32,
    raw: Vec<u8>,
    /// The largest id the post-processor's templates add (BOS/CLS/SEP), if any.
    post_max: Option<u32>,
}

/// tokenizers deserializes a `TemplateProcessing` post-processor without the checks its builder
/// makes, then indexes its special-token map by every template piece, panicking on a piece the
/// map lacks (processors/template.rs: "We already checked existence above"). This makes those
/// checks: every piece's token is in the map with as many ids as tokens. Returns the largest id.
fn check_post_processor(v: &serde_json::Value) -> Result<Option<u32>> {
    let bad = |m: String| Err(Error::Tokenizer(format!("post_processor: {m}")));
    let mut max: Option<u32> = None;
    match v["type"].as_str() {
        Some("Sequence") => {
            for p in v["processors"].as_array().map(Vec::as_slice).unwrap_or_default() {
                max = max.max(check_post_processor(p)?);
            }
        }
        // RoBERTa's: `sep` and `cls` are [token, id] pairs.
        Some("RobertaProcessing") | Some("BertProcessing") => {
            for key in ["sep", "cls"] {
                max = max.max(v[key][1].as_u64().and_then(|x| u32::try_from(x).ok()));
            }
        }
        Some("TemplateProcessing") => {
            let specials = v["special_tokens"].as_object();
            for t in specials.into_iter().flat_map(|m| m.values()) {
                let (ids, tokens) = (t["ids"].as_array(), t["tokens"].as_array());
                if ids.map(Vec::len) != tokens.map(Vec::len) {
                    return bad(format!("special token {} has {} ids but {} tokens", t["id"], ids.map_or(0, Vec::len), tokens.map_or(0, Vec::len)));
                }
                for id in ids.into_iter().flatten() {
                    max = max.max(id.as_u64().and_then(|x| u32::try_from(x).ok()));
                }
            }
            for key in ["single", "pair"] {
                for piece in v[key].as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some(id) = piece["SpecialToken"]["id"].as_str() {
                        if !specials.is_some_and(|m| m.contains_key(id)) {
                            return bad(format!("the {key} template uses the special token \"{id}\", which its special_tokens do not define"));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(max)
}

impl TextTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // tokenizers 0.23 panics (`expect("Helper")` in decoders/mod.rs) when the "decoder"
        // section is not valid JSON, instead of returning its error; a panic is a trap in the
        // browser. Any valid JSON there deserializes (a legacy decoder), so checking the whole
        // file is JSON first turns that panic into this message (found by tests/suite/fuzz.rs).
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Tokenizer(format!("not valid JSON: {e}")))?;
        let post_max = check_post_processor(&json["post_processor"])?;
        let mut inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("could not read it as a Hugging Face tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("{e}")))?;
        let pad_id = inner.token_to_id("[PAD]").or_else(|| inner.token_to_id("<pad>")).unwrap_or(0);
        Ok(TextTokenizer { inner, pad_id, raw: bytes.to_vec(), post_max })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The number of embedding rows the tokenizer's ids need: one more than its largest id
    /// (added tokens included). A vocabulary with gaps needs more rows than it has tokens.
    pub fn rows_needed(&self) -> usize {
        let max = self.inner.get_vocab(true).values().max().copied().max(self.post_max);
        max.map_or(0, |m| m as usize + 1).max(self.vocab_size())
    }

    /// Refuses a tokenizer whose ids would index past a model's `rows` embedding rows.
    pub fn check_fits(&self, rows: usize) -> Result<()> {
        let need = self.rows_needed();
        if need > rows {
            return Err(Error::Tokenizer(format!(
                "the tokenizer's ids go up to {} but the model's vocab_size is {rows}: they belong to different models",
                need - 1
            )));
        }
        Ok(())
    }

    /// The original tokenizer.json bytes, exported unchanged next to the fine-tuned weights.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Token ids with special tokens, truncated to `max_len` (special tokens included).
    pub fn encode(&mut self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        self.inner
            .with_truncation(Some(TruncationParams { max_length: max_len.max(2), ..Default::default() }))
            .map_err(|e| Error::Tokenizer(format!("{e}")))?;
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// A counter of tokens without truncation (for data checks); clones the tokenizer once.
    pub fn counter(&self) -> Result<impl FnMut(&str) -> Result<usize> + use<>> {
        let mut t = self.inner.clone();
        t.with_truncation(None).map_err(|e| Error::Tokenizer(format!("{e}")))?;
        Ok(move |text: &str| Ok(t.encode(text, true).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?.len()))
    }

    /// Ids of the special tokens (added tokens marked special, and BERT's `[CLS]` `[SEP]`
    /// `[PAD]` `[UNK]` `[MASK]` when the vocabulary has them): masked-LM never masks them.
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.inner.get_added_tokens_decoder().into_iter().filter(|(_, t)| t.special).map(|(id, _)| id).collect();
        for t in ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>"] {
            ids.extend(self.inner.token_to_id(t));
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The mask token's id (`[MASK]` or `<mask>`), if the tokenizer has one.
    pub fn mask_id(&self) -> Option<u32> {
        self.inner.token_to_id("[MASK]").or_else(|| self.inner.token_to_id("<mask>"))
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| Error::Tokenizer(format!("decoding failed: {e}")))
    }

    /// Token ids of `text` as the tokenizer's post-processor makes them (a BOS token where the
    /// model expects one), without truncation.
    pub fn encode_all(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text` alone, without any special token (a completion after its prompt).
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Whether the vocabulary (added tokens included) has `token`.
    pub fn has_token(&self, token: &str) -> bool {
        self.inner.token_to_id(token).is_some()
    }

    /// The vocabulary entry of `id` (e.g. "##ing"), if any.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
