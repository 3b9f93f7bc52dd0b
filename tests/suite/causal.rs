//! Causal LMs against transformers (tests/fixtures/make_decoders.py): tiny random GPT-2, Llama
//! (grouped-query attention, untied head, sharded safetensors) and Qwen2 (q/k/v biases, tied
//! head) give the reference logits within 1e-4 and the same next-token loss; greedy generation
//! gives transformers' tokens, with the KV cache and without it; sampling follows its options.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::models::causal::{CausalModel, next_token_loss, shard_files};
use burnish::infer::generate::{GenerateOptions, Generation, StopReason};
use burnish::backend::read_f32;

use super::common::*;

const MODELS: [&str; 4] = ["tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-qwen3"];

/// Reads an HF folder: config.json, tokenizer.json and model.safetensors or the shards named by
/// model.safetensors.index.json; tokenizer_config.json and chat_template.jinja when present.
pub fn load_causal(dir: PathBuf) -> CausalModel {
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{}/{n}: {e}", dir.display()));
    let weights = match std::fs::read(dir.join("model.safetensors.index.json")) {
        Ok(index) => shard_files(&index).unwrap().iter().map(|f| read(f)).collect(),
        Err(_) => vec![read("model.safetensors")],
    };
    let cm = CausalModel::from_bytes(&read("config.json"), &read("tokenizer.json"), weights).unwrap();
    let optional = |n: &str| std::fs::read(dir.join(n)).ok();
    let jinja = optional("chat_template.jinja").map(|b| String::from_utf8(b).unwrap());
    cm.with_tokenizer_config(optional("tokenizer_config.json"), jinja).unwrap()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn logits_and_loss_match_transformers() {
    let reference = read_json(fixture("decoder_reference.json"));
    let device = Device::flex();
    for name in MODELS {
        let r = &reference[name];
        let cm = load_causal(fixture(name));
        let (model, report) = cm.load(0, &device).unwrap();
        assert!(report.initialized.is_empty(), "{name}: every tensor comes from the file: {:?}", report.initialized);
        assert!(report.unexpected.is_empty(), "{name}: every tensor of the file is used: {:?}", report.unexpected);
        for (i, ids_json) in r["ids"].as_array().unwrap().iter().enumerate() {
            let ids = ids_of(ids_json);
            let text = r["prompts"][i].as_str().unwrap();
            assert_eq!(cm.tokenizer.encode_all(text).unwrap(), ids, "{name}: the tokenizer gives transformers' ids");
            let n = ids.len();
            let input = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
            let logits = model.forward(input, None); // [1, n, vocab]
            if i == 0 {
                let got = pollster::block_on(read_f32(logits.clone())).unwrap();
                let want: Vec<f32> = r["logits"].as_array().unwrap().iter().flat_map(|row| f32s(row)).collect();
                assert_eq!(got.len(), want.len());
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-4, "{name}: logits differ from transformers by {worst}");
            }
            let loss = next_token_loss(logits, &[ids.clone()], &[vec![1.0; n]]).unwrap();
            let loss = pollster::block_on(read_f32(loss)).unwrap()[0];
            let want = r["losses"][i].as_f64().unwrap() as f32;
            assert!((loss - want).abs() < 1e-4, "{name}: loss {loss} vs transformers {want}");
        }
    }
}

#[test]
fn greedy_generation_matches_transformers_with_and_without_the_cache() {
    let reference = read_json(fixture("decoder_reference.json"));
    let device = Device::flex();
    for name in MODELS {
        let r = &reference[name];
        let cm = load_causal(fixture(name));
        let (model, _) = cm.load(0, &device).unwrap();
        for (i, ids_json) in r["ids"].as_array().unwrap().iter().enumerate() {
            let want = ids_of(&r["greedy"][i]);
            for use_cache in [true, false] {
                let opts = GenerateOptions { max_new_tokens: 10, use_cache, ..GenerateOptions::default() };
                let mut g = Generation::new(&model, ids_of(ids_json), opts, vec![], cm.config.max_positions()).unwrap();
                while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
                assert_eq!(g.generated(), want.as_slice(), "{name} prompt {i}, cache {use_cache}");
                assert_eq!(g.stopped, Some(StopReason::MaxTokens));
            }
        }
    }
}

/// Generation on 8-bit weights (models/q8.rs) against the f32 model it was made from, which the
/// tests above check against transformers: next-token logits within the rounding of weights
/// and activations at every position (prompt, then each greedy token fed to both), the cache
/// giving what a whole-sequence pass gives, and Qwen2's biases and tied head included.
#[test]
fn int8_generation_stays_within_rounding_of_the_f32_model() {
    let reference = read_json(fixture("decoder_reference.json"));
    let device = Device::flex();
    for name in ["tiny-llama", "tiny-qwen2", "tiny-qwen3"] {
        let cm = load_causal(fixture(name));
        let (model, _) = cm.load(0, &device).unwrap();
        let q8 = pollster::block_on(burnish::infer::generate::int8_model(&model)).unwrap().expect("Llama and Qwen2 have an 8-bit path");
        let mut ids = ids_of(&reference[name]["ids"][0]);
        let mut cache = q8.new_cache();
        let mut fed = 0;
        for step in 0..8 {
            let n = ids.len();
            let input = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
            let want = pollster::block_on(read_f32(model.last_logits(input, None))).unwrap();
            let got = q8.forward(&ids[fed..], &mut cache);
            fed = n;
            assert_eq!(cache.len(), n);
            let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
            let rel = want.iter().zip(&got).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt() / norm;
            // These models are tiny (hidden size 32: one quantization block per row) and random,
            // so rounding weighs more than in a real model (SmolLM2 stays within 3 %: gguf.rs).
            assert!(rel < 0.08, "{name} step {step}: 8-bit logits {rel:.4} away from f32 (relative L2)");
            let argmax = want.iter().enumerate().fold(0, |best, (i, v)| if *v > want[best] { i } else { best });
            ids.push(argmax as u32);
        }
        // The cache holds what a fresh pass over the whole sequence computes.
        let mut fresh = q8.new_cache();
        let all = q8.forward(&ids[..fed], &mut fresh);
        let mut cached = q8.new_cache();
        q8.forward(&ids[..fed - 1], &mut cached);
        let last = q8.forward(&ids[fed - 1..fed], &mut cached);
        let worst = all.iter().zip(&last).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{name}: cached and whole-sequence 8-bit logits differ by {worst}");
        assert!(q8.bytes() * 3 < 4 * model.num_params(), "{name}: 8-bit weights take {} bytes for {} parameters", q8.bytes(), model.num_params());
    }
    // GPT-2 has no 8-bit path: generation stays on f32.
    let (gpt2, _) = load_causal(fixture("tiny-gpt2")).load(0, &device).unwrap();
    assert!(pollster::block_on(burnish::infer::generate::int8_model(&gpt2)).unwrap().is_none());
}

#[test]
fn sampling_is_seeded_and_follows_its_options() {
    let device = Device::flex();
    let cm = load_causal(fixture("tiny-llama"));
    let (model, _) = cm.load(0, &device).unwrap();
    let prompt = cm.tokenizer.encode_all("The film was").unwrap();
    let run = |opts: GenerateOptions| {
        let mut g = Generation::new(&model, prompt.clone(), opts, vec![], 128).unwrap();
        while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        (g.generated().to_vec(), g.stopped)
    };
    let sampled = |seed| GenerateOptions { max_new_tokens: 12, temperature: 1.0, seed, ..GenerateOptions::default() };
    assert_eq!(run(sampled(7)), run(sampled(7)), "same seed, same tokens");
    assert_ne!(run(sampled(7)).0, run(sampled(8)).0, "another seed, other tokens");
    // top_k = 1 is greedy whatever the temperature.
    let greedy = run(GenerateOptions { max_new_tokens: 12, ..GenerateOptions::default() });
    assert_eq!(run(GenerateOptions { top_k: 1, ..sampled(3) }).0, greedy.0);
    // A tiny top_p keeps only the most likely token: greedy again.
    assert_eq!(run(GenerateOptions { top_p: 1e-6, ..sampled(4) }).0, greedy.0);
    // A strong repetition penalty never repeats a token of the text in this short run.
    let (rep, _) = run(GenerateOptions { repetition_penalty: 1e6, ..GenerateOptions { max_new_tokens: 12, ..GenerateOptions::default() } });
    let mut seen = prompt.clone();
    for t in rep {
        assert!(!seen.contains(&t) || seen.len() >= cm.config.vocab_size(), "token {t} repeated despite the penalty");
        seen.push(t);
    }
    // The end-of-sequence token ends generation.
    let first = greedy.0[0];
    let mut g = Generation::new(&model, prompt.clone(), GenerateOptions::default(), vec![first], 128).unwrap();
    while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
    assert_eq!((g.generated(), g.stopped), (&[first][..], Some(StopReason::Eos)));
    // A stop sequence ends it and is cut from the text.
    let text = cm.tokenizer.decode(&greedy.0).unwrap();
    let stop: String = text.chars().skip(3).take(2).collect();
    let mut g = Generation::new(&model, prompt.clone(), GenerateOptions { stop: vec![stop.clone()], ..GenerateOptions::default() }, vec![], 128).unwrap();
    while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
    assert_eq!(g.stopped, Some(StopReason::StopSequence));
    let cut = g.text(&cm.tokenizer).unwrap();
    assert!(!cut.contains(&stop) && text.starts_with(&cut), "{cut:?} is {text:?} cut before {stop:?}");
}

#[test]
fn bad_decoder_inputs_are_refused_with_reasons() {
    let dir = fixture("tiny-llama");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let cfg = read("config.json");
    let tok = read("tokenizer.json");
    let err = |c: &[u8], w: Vec<Vec<u8>>| CausalModel::from_bytes(c, &tok, w).err().map(|e| e.to_string()).unwrap_or_default();
    let bert = std::fs::read(fixture("tiny-bert/config.json")).unwrap();
    assert!(err(&bert, vec![vec![]]).contains("BERT is an encoder"));
    let mut v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    v["model_type"] = "mamba".into();
    assert!(err(&serde_json::to_vec(&v).unwrap(), vec![vec![]]).contains("unsupported model_type \"mamba\""));
    let mut v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    v["rope_parameters"] = serde_json::json!({"rope_type": "llama3", "rope_theta": 500000.0});
    assert!(err(&serde_json::to_vec(&v).unwrap(), vec![vec![]]).contains("rotary scaling \"llama3\" is not supported"));
    assert!(err(&cfg, vec![]).contains("no weights"));
    // Only two of the three shards: the missing tensors are named.
    let files = shard_files(&read("model.safetensors.index.json")).unwrap();
    assert_eq!(files.len(), 3);
    let two: Vec<Vec<u8>> = files[..2].iter().map(|f| read(f)).collect();
    let cm = CausalModel::from_bytes(&cfg, &tok, two).unwrap();
    let e = cm.load(0, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("missing tensor") && e.contains("complete Llama checkpoint"), "{e}");
    assert!(shard_files(br#"{"weight_map": {"a": "../x.safetensors"}}"#).is_err());
    // Options out of range.
    let (model, _) = load_causal(dir.clone()).load(0, &Device::flex()).unwrap();
    let gen_err = |o: GenerateOptions| Generation::new(&model, vec![5, 6], o, vec![], 128).err().unwrap().to_string();
    assert!(gen_err(GenerateOptions { temperature: -1.0, ..Default::default() }).contains("temperature must be ≥ 0"));
    assert!(gen_err(GenerateOptions { top_p: 0.0, ..Default::default() }).contains("top_p must be in (0, 1]"));
    assert!(Generation::new(&model, vec![], GenerateOptions::default(), vec![], 128).err().unwrap().to_string().contains("the prompt is empty"));
}
