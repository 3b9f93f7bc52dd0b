//! Fine-tuning a causal LM, as a step-able session like the classifier's: plain text packed
//! into blocks of `max_len` tokens (continued pre-training, HF `run_clm`'s `group_texts`), or
//! prompt → completion pairs where only the completion is learnt (the prompt's tokens weigh 0 in
//! the loss). Every weight trains (`strategy: "full"`), or only LoRA adapters on the recipe's
//! target projections (`strategy: "lora"`; exported merged and as a PEFT adapter), with AdamW,
//! warm-up and the recipe's schedule, clipping and gradient accumulation; loss and perplexity on
//! held-out rows after every epoch.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use web_time::Instant;

use crate::causal::{CausalLm, CausalModel, next_token_loss};
use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;
use crate::engine::causal_lm::LmEval;
use crate::engine::classifier::MemoryEstimate;
use crate::recipe::{Recipe, Strategy};
use crate::weights::read_f32;

/// One training row: token ids and a loss weight per token (1: learn to predict it, 0: context
/// or padding).
#[derive(Debug, Clone, PartialEq)]
pub struct LmRow {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Built-in prompt templates for instruction tuning (`{prompt}` is replaced by the prompt).
pub const PROMPT_TEMPLATES: &[(&str, &str)] = &[
    ("question-answering", "Question: {prompt}\nAnswer: "),
    ("summarization", "Summarize the text.\n\n{prompt}\n\nSummary: "),
    ("translation", "Translate to French.\n\n{prompt}\n\nFrench: "),
    ("writing", "{prompt}\n\n"),
];

/// A built-in template by name, or the text itself as a template.
pub fn template_for(name_or_template: &str) -> String {
    PROMPT_TEMPLATES.iter().find(|(n, _)| *n == name_or_template).map_or_else(|| name_or_template.to_string(), |(_, t)| t.to_string())
}

/// Prompt → completion pairs from two columns of a table (JSONL `{"prompt", "completion"}`, CSV,
/// TSV); rows with an empty prompt or completion are refused with their row number.
pub fn pairs_from_table(table: &crate::data::Table, prompt: &str, completion: &str) -> Result<Vec<(String, String)>> {
    let find = |name: &str, what: &str| {
        table.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::data(format!(
                "{}: no {what} column \"{name}\"; columns found: {}",
                table.name,
                table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (p, c) = (find(prompt, "prompt")?, find(completion, "completion")?);
    let mut pairs = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let (pt, ct) = (row[p].trim(), row[c].trim());
        if pt.is_empty() || ct.is_empty() {
            return Err(Error::data(format!("{}: row {} has an empty {}", table.name, i + 1, if pt.is_empty() { "prompt" } else { "completion" })));
        }
        pairs.push((pt.to_string(), ct.to_string()));
    }
    if pairs.is_empty() {
        return Err(Error::data(format!("{}: no prompt/completion rows", table.name)));
    }
    Ok(pairs)
}

/// A prompt the page (and `burnish eval`) asks the model to continue, with the answer the data
/// gives for it, if any.
#[derive(Debug, Clone, Serialize)]
pub struct EvalPrompt {
    /// What the model is given (the prompt in its template, or the conversation so far in the
    /// chat template).
    pub prompt: String,
    pub reference: Option<String>,
    /// The prompt is a chat-template rendering: it carries its own special tokens, so it is
    /// tokenized without adding any (see `prompt_ids`).
    pub chat: bool,
}

/// Token ids of a prompt to continue: a chat rendering as it is, anything else with the
/// tokenizer's own special tokens (a BOS where the model expects one), as the training rows were.
pub fn prompt_ids(tok: &TextTokenizer, prompt: &str, chat: bool) -> Result<Vec<u32>> {
    if chat { tok.encode_plain(prompt) } else { tok.encode_all(prompt) }
}

/// Training rows for the recipe's task from a table, and one prompt per row where rows are
/// examples (instruction tuning), or per text (plain text: its first words):
/// - `causal-lm`: the text column packed into `max_len` blocks;
/// - `instruct` with a `messages_column` in the data: conversations in the model's chat
///   template, assistant turns learnt;
/// - `instruct` otherwise: prompt → completion pairs in the prompt template.
pub fn rows_for_task(cm: &CausalModel, table: &crate::data::Table, r: &Recipe) -> Result<(Vec<LmRow>, Vec<EvalPrompt>)> {
    let eos = cm.eos.first().copied();
    match r.task.name() {
        "instruct" if table.columns.contains(&r.messages_column) => {
            let template = cm.chat_template.as_ref().ok_or_else(|| {
                Error::data(format!(
                    "{} holds conversations (\"{}\") but this model has no chat template: give its tokenizer_config.json, or use prompt/completion columns",
                    table.name, r.messages_column
                ))
            })?;
            let conversations = crate::chat::conversations_from_table(table, &r.messages_column)?;
            let rows = crate::chat::chat_rows(&cm.tokenizer, template, &conversations, r.max_len)?;
            let prompts = conversations
                .iter()
                .map(|c| crate::chat::prompt_and_reference(template, c).map(|(prompt, reference)| EvalPrompt { prompt, reference, chat: true }))
                .collect::<Result<_>>()?;
            Ok((rows, prompts))
        }
        "instruct" => {
            let pairs = pairs_from_table(table, &r.prompt_column, &r.completion_column)?;
            let rows = instruction_rows(&cm.tokenizer, &pairs, &r.prompt_template, r.max_len, eos)?;
            let prompts = pairs.into_iter().map(|(p, c)| EvalPrompt { prompt: r.prompt_template.replace("{prompt}", &p), reference: Some(c), chat: false }).collect();
            Ok((rows, prompts))
        }
        "causal-lm" => {
            let texts = crate::mlm::domain_texts(table, &r.text_column)?;
            let rows = pack_texts(&cm.tokenizer, &texts, r.max_len, eos)?;
            let prompts = texts.iter().map(|t| EvalPrompt { prompt: t.split_whitespace().take(6).collect::<Vec<_>>().join(" "), reference: None, chat: false }).collect();
            Ok((rows, prompts))
        }
        other => Err(Error::Recipe(format!("task \"{other}\" is not a causal-LM task (causal-lm or instruct)"))),
    }
}

/// Plain text → blocks of `block_len` tokens: every text tokenized (with the tokenizer's own
/// special tokens), followed by `eos`, all concatenated and cut into blocks; a last partial block
/// is kept when it has at least two tokens. Every token is learnt.
pub fn pack_texts(tok: &TextTokenizer, texts: &[String], block_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if block_len < 2 {
        return Err(Error::Recipe("max_len must be at least 2 tokens for language modelling".into()));
    }
    let mut stream = Vec::new();
    for t in texts {
        stream.extend(tok.encode_all(t)?);
        stream.extend(eos);
    }
    let rows: Vec<LmRow> = stream
        .chunks(block_len)
        .filter(|c| c.len() >= 2)
        .map(|c| LmRow { ids: c.to_vec(), weights: vec![1.0; c.len()] })
        .collect();
    if rows.is_empty() {
        return Err(Error::data("the text has fewer than two tokens: nothing to learn"));
    }
    Ok(rows)
}

/// Prompt → completion pairs: `template` with `{prompt}` filled in, then the completion and
/// `eos`; only the completion and `eos` are learnt. Cut to `max_len` tokens; a pair whose prompt
/// leaves no room for the completion is refused with its row number.
pub fn instruction_rows(tok: &TextTokenizer, pairs: &[(String, String)], template: &str, max_len: usize, eos: Option<u32>) -> Result<Vec<LmRow>> {
    if !template.contains("{prompt}") {
        return Err(Error::Recipe(format!("the prompt template must contain {{prompt}} (got \"{template}\")")));
    }
    let mut rows = Vec::with_capacity(pairs.len());
    for (i, (prompt, completion)) in pairs.iter().enumerate() {
        let context = tok.encode_all(&template.replace("{prompt}", prompt))?;
        let mut answer = tok.encode_plain(completion)?;
        answer.extend(eos);
        if context.len() + 1 > max_len || answer.is_empty() {
            return Err(Error::data(format!(
                "row {}: the prompt takes {} tokens, leaving no room for the completion within max_len {max_len}",
                i + 1,
                context.len()
            )));
        }
        let mut ids = context.clone();
        ids.extend(&answer);
        ids.truncate(max_len);
        let mut weights = vec![0.0; context.len()];
        weights.resize(ids.len(), 1.0);
        rows.push(LmRow { ids, weights });
    }
    if rows.is_empty() {
        return Err(Error::data("no prompt/completion pairs"));
    }
    Ok(rows)
}

/// A right-padded batch: ids `[batch, seq]` (padding with `pad`; causal attention never lets a
/// real token see a later pad) and the rows, for the loss.
pub fn batch(rows: &[&LmRow], pad: u32, device: &Device) -> Tensor<2, Int> {
    let seq = rows.iter().map(|r| r.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad as i64; rows.len() * seq];
    for (b, r) in rows.iter().enumerate() {
        for (t, &id) in r.ids.iter().enumerate() {
            ids[b * seq + t] = id as i64;
        }
    }
    Tensor::from_data(TensorData::new(ids, [rows.len(), seq]), device)
}

pub fn loss_of(model: &CausalLm, rows: &[&LmRow], pad: u32, device: &Device) -> Result<Tensor<1>> {
    let logits = model.forward(batch(rows, pad, device), None); // [batch, seq, vocab]
    let ids: Vec<Vec<u32>> = rows.iter().map(|r| r.ids.clone()).collect();
    let w: Vec<Vec<f32>> = rows.iter().map(|r| r.weights.clone()).collect();
    next_token_loss(logits, &ids, &w)
}

/// Tokens a row teaches (targets with weight > 0, the first token predicts nothing).
pub fn learnt(r: &LmRow) -> f32 {
    r.weights.iter().skip(1).sum()
}

/// Weighted next-token loss and perplexity of `model` over `rows`.
pub async fn score(model: &CausalLm, rows: &[LmRow], pad: u32, batch_size: usize, device: &Device, step: usize, epoch: usize) -> Result<LmEval> {
    let (mut sum, mut count) = (0.0f64, 0.0f64);
    for chunk in rows.chunks(batch_size.max(1)) {
        let refs: Vec<&LmRow> = chunk.iter().filter(|r| learnt(r) > 0.0).collect();
        if refs.is_empty() {
            continue;
        }
        let n: f32 = refs.iter().map(|r| learnt(r)).sum();
        let loss = loss_of(model, &refs, pad, device)?;
        sum += read_f32(loss).await?.first().copied().unwrap_or(f32::NAN) as f64 * n as f64;
        count += n as f64;
    }
    if count == 0.0 {
        return Err(Error::data("no token to score"));
    }
    let loss = sum / count;
    Ok(LmEval { step, epoch, loss, perplexity: loss.exp(), tokens: count as usize })
}

/// The seeded held-out split the page and the CLI share: `fraction` of the rows (at least one,
/// never all) held out. Returns (train, held out, the held-out rows' indices in `rows`).
pub fn split_rows(rows: &[LmRow], fraction: f64, seed: u64) -> (Vec<LmRow>, Vec<LmRow>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    let n_eval = if rows.len() < 2 { 0 } else { ((rows.len() as f64 * fraction).round() as usize).clamp(1, rows.len() - 1) };
    let eval_idx: Vec<usize> = idx[..n_eval].to_vec();
    let eval = eval_idx.iter().map(|&i| rows[i].clone()).collect();
    let train = idx[n_eval..].iter().map(|&i| rows[i].clone()).collect();
    (train, eval, eval_idx)
}

/// Memory to fine-tune `model` (as loaded, before any LoRA) under the recipe's strategy at
/// `batch × max_len`, f32 and AdamW: weights; gradients and two moments for what trains (every
/// weight, or the LoRA factors, rank·(in + out) per adapted linear); activations kept for the
/// backward pass. Per token and layer a Llama layer keeps about 12·hidden + 4·intermediate +
/// 3·kv_dim floats (norms, q/k/v before and after rotary, repeated k/v, context, residuals,
/// gate, up, SiLU and their product) plus 2·heads·len for the attention scores and
/// probabilities; a GPT-2 block about 13·hidden + 3·inner + 3·heads·len. The head adds 3·vocab
/// per token (logits, log-softmax, their gradient), and LoRA keeps each adapted linear's merged
/// weight `W + s·A·B` for the backward pass.
pub fn estimate_memory(model: &CausalLm, cfg: &crate::causal::DecoderConfig, recipe: &Recipe, batch: usize, max_len: usize) -> MemoryEstimate {
    use crate::causal::DecoderConfig;
    let parameters = model.num_params();
    let (tokens, len) = ((batch * max_len) as u64, max_len as u64);
    let (per_layer, heads, hidden, layers, vocab) = match cfg {
        DecoderConfig::Llama(c) => {
            let (h, i, kv) = (c.hidden as u64, c.intermediate as u64, (c.kv_heads * c.head_dim) as u64);
            (12 * h + 4 * i + 3 * kv + 2 * c.heads as u64 * len, c.heads as u64, h, c.layers as u64, c.vocab_size as u64)
        }
        DecoderConfig::Gpt2(c) => {
            let (h, i) = (c.hidden as u64, c.inner as u64);
            (13 * h + 3 * i + 3 * c.heads as u64 * len, c.heads as u64, h, c.layers as u64, c.vocab_size as u64)
        }
    };
    let (trainable, merged) = match recipe.strategy {
        Strategy::Lora => {
            let modules = crate::causal::lora_modules(cfg, &recipe.lora_targets);
            model.lora_linears(&modules).iter().fold((0u64, 0u64), |(t, m), (_, l)| {
                let [d_in, d_out] = l.weight.dims();
                (t + (recipe.lora_rank * (d_in + d_out)) as u64, m + (d_in * d_out) as u64)
            })
        }
        _ => (parameters as u64, 0),
    };
    let weights = 4 * parameters as u64;
    let (gradients, optimizer) = (4 * trainable, 8 * trainable);
    let activations = 4 * (tokens * (layers * per_layer + 2 * hidden + 3 * vocab) + merged);
    let largest_tensor = 4 * (tokens * vocab).max(vocab * hidden).max(batch as u64 * heads * len * len);
    MemoryEstimate {
        parameters,
        trainable: trainable as usize,
        weights,
        gradients,
        optimizer,
        activations,
        total: weights + gradients + optimizer + activations,
        largest_tensor,
        warnings: Vec::new(),
    }
}

/// Decoder speed: training steps (forward, masked loss, backward, clip, AdamW under the
/// recipe's strategy) on a fixed `[batch, len]` batch of seeded random token ids, then greedy
/// generation with the KV cache.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderBench {
    pub strategy: Strategy,
    pub trainable: usize,
    pub training: crate::bench::BenchResult,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    /// The same greedy generation on 8-bit weights (`models/q8.rs`), for Llama/Qwen2: tokens/s,
    /// how many of its first tokens equal the f32 model's, and the weights' size.
    pub int8: Option<Int8Bench>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Int8Bench {
    pub generation_s: f64,
    pub generation_tokens_per_s: f64,
    pub same_tokens_as_f32: usize,
    pub weight_bytes: usize,
    pub quantize_s: f64,
}

/// Times `steps` training steps after `warmup` untimed ones (each step's loss is read back, so
/// it has finished on the device), then `gen_tokens` greedy tokens after a 16-token prompt (end
/// of sequence ignored, so exactly that many).
pub async fn bench_decoder(cm: &CausalModel, recipe: &Recipe, steps: usize, warmup: usize, gen_tokens: usize, device: &Device) -> Result<DecoderBench> {
    use rand::Rng;
    let (batch, len) = (recipe.batch_size, recipe.max_len);
    if steps == 0 || batch == 0 || len < 2 || len > cm.config.max_positions() || gen_tokens == 0 {
        return Err(Error::Recipe("bench needs steps ≥ 1, batch ≥ 1, tokens ≥ 1 and 2 ≤ max-len ≤ the model's positions".into()));
    }
    let mut rng = StdRng::seed_from_u64(0);
    let vocab = cm.tokenizer.vocab_size().min(cm.config.vocab_size()) as u32;
    let lo = 256.min(vocab / 2);
    let rows: Vec<LmRow> = (0..batch).map(|_| LmRow { ids: (0..len).map(|_| rng.random_range(lo..vocab)).collect(), weights: vec![1.0; len] }).collect();
    let r = Recipe { epochs: warmup + steps, grad_accum: 1, warmup_ratio: 0.0, ..recipe.clone() };
    let mut s = crate::engine::causal_lm::LmSession::new(cm, rows.clone(), Vec::new(), r, device)?;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        s.step().await?;
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let training = crate::bench::BenchResult::new(batch, len, times);
    let model = s.inference_model()?;
    let prompt: Vec<u32> = rows[0].ids.iter().take(16.min(len)).copied().collect();
    let positions = cm.config.max_positions();
    let opts = crate::causal::GenerateOptions { max_new_tokens: gen_tokens.min(positions.saturating_sub(prompt.len())).max(1), ..Default::default() };
    let mut g = crate::causal::Generation::new(&model, prompt.clone(), opts, Vec::new(), positions)?;
    let t0 = Instant::now();
    while g.step(&model, &cm.tokenizer).await?.is_some() {}
    let generation_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let int8 = match crate::causal::int8_model(&model).await? {
        Some(q8) => {
            let quantize_s = t0.elapsed().as_secs_f64();
            let weight_bytes = q8.bytes();
            let mut g8 = crate::causal::Generation::new(&model, prompt.clone(), crate::causal::GenerateOptions { max_new_tokens: g.generated().len().max(1), ..Default::default() }, Vec::new(), positions)?;
            g8.use_int8(std::sync::Arc::new(q8));
            let t0 = Instant::now();
            while g8.step(&model, &cm.tokenizer).await?.is_some() {}
            let s = t0.elapsed().as_secs_f64();
            let same = g8.generated().iter().zip(g.generated()).take_while(|(a, b)| a == b).count();
            Some(Int8Bench { generation_s: s, generation_tokens_per_s: g8.generated().len() as f64 / s.max(1e-9), same_tokens_as_f32: same, weight_bytes, quantize_s })
        }
        None => None,
    };
    Ok(DecoderBench {
        strategy: recipe.strategy,
        trainable: s.objective.trainable,
        training,
        prompt_tokens: prompt.len(),
        generated_tokens: g.generated().len(),
        generation_s,
        generation_tokens_per_s: g.generated().len() as f64 / generation_s.max(1e-9),
        int8,
    })
}
