//! Fuzzing on stable Rust: every parser of untrusted files gets a bounded number of arbitrary
//! and mutated inputs, seeded with the real fixtures, and none may panic (a panic is a trap in
//! the browser's wasm module, which aborts). Each case is deterministic (seeded by the parser's
//! name), so a failure reproduces; the input is written to `$CARGO_TARGET_DIR/fuzz-crashes/` and
//! belongs in `tests/fixtures/fuzz-regressions/<parser>/`, which every run replays.
//!
//! `BURNISH_FUZZ_SCALE=k` runs k times as many cases (docs/reliability.md records the deep runs).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use burnish::Checkpoint;
use burnish::data;
use burnish::engine::classifier::TrainSession;
use burnish::engine::codec;
use burnish::hf::chat_template::{ChatTemplate, Message};
use burnish::hf::config::HfConfigFile;
use burnish::hf::tokenizer::TextTokenizer;
use burnish::hf::weights::ParamSource;
use burnish::models::causal::{CausalModel, DecoderConfig, from_gguf, shard_files};
use burnish::recipe::Recipe;

use super::common::*;

fn scale() -> usize {
    std::env::var("BURNISH_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1)
}

const INTERESTING: [u64; 12] = [0, 1, 2, 7, 0x7F, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0001, i64::MAX as u64, u64::MAX];
const NUMBERS: [&str; 12] = ["0", "-1", "1e308", "-0", "4294967297", "18446744073709551616", "99999999999", "0.5", "1.5", "NaN", "\"x\"", "null"];

/// One input made from `seed` by a few random edits: bit flips, special bytes, little-endian
/// integers of interesting values (sizes, counts, offsets), numbers in text replaced, cuts,
/// deletions, duplicated or swapped chunks.
fn mutate(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..9) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = *[0u8, 0xFF, 0x7F, 0x80, b'"', b'{', b'}', b'[', b'\n', b',', b'\\', b'%', b'\t'].choose(rng).unwrap(),
            2 => {
                let v = INTERESTING.choose(rng).unwrap().to_le_bytes();
                let n = *[1usize, 2, 4, 8].choose(rng).unwrap();
                // Header fields of binary formats are 8-aligned more often than not.
                let at = if rng.random_bool(0.5) { i & !7 } else { i };
                for (k, byte) in v.iter().take(n).enumerate() {
                    if let Some(x) = b.get_mut(at + k) {
                        *x = *byte;
                    }
                }
            }
            3 => {
                // A run of digits (a number in JSON or CSV) replaced by an awkward one.
                if let Some(start) = (i..b.len()).find(|&k| b[k].is_ascii_digit()) {
                    let end = (start..b.len()).find(|&k| !b[k].is_ascii_digit() && b[k] != b'.').unwrap_or(b.len());
                    b.splice(start..end, NUMBERS.choose(rng).unwrap().bytes());
                }
            }
            4 => b.truncate(i),
            5 => {
                let end = (i + rng.random_range(1..64)).min(b.len());
                b.drain(i..end);
            }
            6 => {
                let end = (i + rng.random_range(1..256)).min(b.len());
                let chunk = b[i..end].to_vec();
                let at = rng.random_range(0..=b.len());
                b.splice(at..at, chunk.iter().cycle().take(chunk.len() * rng.random_range(1..8)).copied());
            }
            7 => {
                let n = rng.random_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(i..i, bytes);
            }
            _ => {
                let j = rng.random_range(0..b.len());
                let n = rng.random_range(1..32).min(b.len() - i.max(j));
                if i.abs_diff(j) >= n {
                    for k in 0..n {
                        b.swap(i + k, j + k);
                    }
                }
            }
        }
    }
    b
}

/// A JSON seed with one to three of its values replaced (by awkward numbers, other types,
/// empty or long strings), array items dropped or repeated, or object keys removed: inputs that
/// still parse as JSON, so they reach the checks behind the parser.
fn mutate_json(seed: &serde_json::Value, rng: &mut StdRng) -> Vec<u8> {
    use serde_json::{Value, json};
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| paths(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| paths(x, format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut v = seed.clone();
    for _ in 0..rng.random_range(1..=3) {
        let mut all = Vec::new();
        paths(&v, String::new(), &mut all);
        let at = all.choose(rng).unwrap().clone();
        let Some(node) = v.pointer_mut(&at) else { continue };
        let replacement = match rng.random_range(0..12) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(u64::MAX),
            3 => json!(4_294_967_297u64),
            4 => json!(1e308),
            5 => json!(0.5),
            6 => json!(null),
            7 => json!(""),
            8 => json!("x".repeat(rng.random_range(1..5000))),
            9 => json!([]),
            10 => match node {
                Value::Array(a) if !a.is_empty() => {
                    let i = rng.random_range(0..a.len());
                    if rng.random_bool(0.5) {
                        a.remove(i);
                    } else {
                        let x = a[i].clone();
                        a.insert(i, x);
                    }
                    continue;
                }
                Value::Object(m) if !m.is_empty() => {
                    let k = m.keys().nth(rng.random_range(0..m.len())).unwrap().clone();
                    m.remove(&k);
                    continue;
                }
                _ => json!(true),
            },
            _ => json!({}),
        };
        *node = replacement;
    }
    serde_json::to_vec(&v).unwrap()
}

fn crash_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    target.join("fuzz-crashes")
}

/// Runs `target` on the saved regressions of `name`, then on `cases` inputs (one in ten of them
/// arbitrary bytes, the rest mutations of `seeds`); returns how many ran. Panics name the input.
fn fuzz(name: &str, seeds: &[Vec<u8>], cases: usize, target: impl Fn(&[u8]) -> bool) -> usize {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    let reg = fixture("fuzz-regressions").join(name);
    if let Ok(dir) = std::fs::read_dir(&reg) {
        for e in dir.flatten() {
            inputs.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let mut rng = StdRng::seed_from_u64(seed);
    let cases = cases * scale();
    let json_seeds: std::collections::HashMap<&Vec<u8>, serde_json::Value> =
        seeds.iter().filter_map(|s| serde_json::from_slice(s).ok().map(|v| (s, v))).collect();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed: Option<(String, String)> = None;
    let mut accepted = 0usize;
    let mut run = |label: String, input: &[u8]| {
        if failed.is_some() {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| target(input))) {
            Ok(parsed) => accepted += parsed as usize,
            Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            let dir = crash_dir().join(name);
            std::fs::create_dir_all(&dir).ok();
            let path = dir.join(format!("{}.bin", label.rsplit('/').next().unwrap_or("case")));
            std::fs::write(&path, input).ok();
            failed = Some((format!("{label} (saved as {})", path.display()), msg));
            }
        }
    };
    for (label, input) in &inputs {
        run(label.clone(), input);
    }
    for i in 0..cases {
        let input = if i % 10 == 9 {
            let n = rng.random_range(0..512);
            (0..n).map(|_| rng.random()).collect()
        } else {
            let seed = seeds.choose(&mut rng).unwrap();
            match json_seeds.get(seed) {
                Some(v) if rng.random_bool(0.5) => mutate_json(v, &mut rng),
                _ => mutate(seed, &mut rng),
            }
        };
        run(format!("case-{i}"), &input);
    }
    std::panic::set_hook(quiet);
    if let Some((which, msg)) = failed {
        panic!("fuzz {name}: input {which} panicked: {msg}");
    }
    eprintln!("fuzz {name}: {} regressions and {cases} cases, none panicked; {accepted} got past the parser", inputs.len());
    inputs.len() + cases
}

fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixture(dir).join(name)).unwrap()
}

fn data_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data").join(name)).unwrap()
}

#[test]
fn fuzz_tables_csv_tsv_jsonl_text() {
    let seeds: Vec<Vec<u8>> = ["checks.csv", "quirks.csv", "ragged.csv", "ints.tsv", "topic-train.tsv", "quirks.jsonl", "chat.jsonl", "domain-reviews.txt", "instruct-pairs.jsonl"]
        .iter()
        .map(|n| data_file(n))
        .collect();
    for (fmt, name) in [(data::Format::Csv, "t.csv"), (data::Format::Tsv, "t.tsv"), (data::Format::Jsonl, "t.jsonl"), (data::Format::Text, "t.txt")] {
        fuzz(&format!("table-{name}"), &seeds, 1500, |b| {
            let Ok(t) = data::parse_table_as(b, name, fmt) else { return false };
            let cols = t.columns.clone();
            let (a, z) = (cols.first().cloned().unwrap_or_default(), cols.last().cloned().unwrap_or_default());
            let _ = data::check_data(&t, &a, &z, Some(&t), 32, None);
            if let Ok(d) = data::training_data(&[&t], None, &a, &z, 0.2, 1) {
                assert!(d.labels.len() <= data::MAX_CLASSES);
            }
            let _ = data::chat::conversations_from_table(&t, &a);
            let _ = data::text::domain_texts(&t, &a);
            let _ = data::text::pairs_from_table(&t, &a, &z);
            true
        });
    }
}

/// Parquet (hostile files from the Hub): mutated with the `PAR1` magic kept at both ends, so the
/// footer, the thrift metadata, the pages and the codecs are reached.
#[test]
fn fuzz_parquet_tables() {
    let seeds: Vec<Vec<u8>> = ["hub/test-org/reviews/data/train-00000-of-00001.parquet", "chat.parquet", "reviews-gzip.parquet"].iter().map(|n| data_file(n)).collect();
    fuzz("table-parquet", &seeds, 1500, |b| {
        let mut b = b.to_vec();
        if b.len() >= 12 {
            let n = b.len();
            b[..4].copy_from_slice(b"PAR1");
            b[n - 4..].copy_from_slice(b"PAR1");
        }
        let Ok(t) = data::parse_table_as(&b, "t.parquet", data::Format::Parquet) else { return false };
        let cols = t.columns.clone();
        let (a, z) = (cols.first().cloned().unwrap_or_default(), cols.last().cloned().unwrap_or_default());
        let _ = data::check_data(&t, &a, &z, Some(&t), 32, None);
        let _ = data::chat::conversations_from_table(&t, &a);
        true
    });
}

#[test]
fn fuzz_config_json_of_every_architecture() {
    let seeds: Vec<Vec<u8>> = ["tiny-bert", "tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-bert-mlm", "tiny-roberta", "tiny-distilbert"].iter().map(|d| read(d, "config.json")).collect();
    fuzz("config", &seeds, 4000, |b| {
        let bert = HfConfigFile::from_bytes(b).and_then(HfConfigFile::into_bert).is_ok();
        DecoderConfig::from_bytes(b).is_ok() || bert
    });
}

#[test]
fn fuzz_tokenizer_json_against_the_embedding_rows() {
    let seeds: Vec<Vec<u8>> = ["tiny-bert", "tiny-gpt2", "tiny-qwen2"].iter().map(|d| read(d, "tokenizer.json")).collect();
    fuzz("tokenizer", &seeds, 600, |b| {
        let Ok(mut t) = TextTokenizer::from_bytes(b) else { return false };
        if t.check_fits(1 << 16).is_err() {
            return false;
        }
        let _ = t.encode("Hello world, héllo 世界! [MASK] <s>", 16);
        if let Ok(ids) = t.encode_all("a quick test") {
            let _ = t.decode(&ids);
        }
        let _ = t.special_ids();
        true
    });
}

#[test]
fn fuzz_safetensors_weights_and_shard_index() {
    let (cfg, tok) = (read("tiny-bert", "config.json"), read("tiny-bert", "tokenizer.json"));
    let seeds = vec![read("tiny-bert", "model.safetensors")];
    fuzz("safetensors", &seeds, 300, |b| {
        let _ = ParamSource::from_safetensors(b, 0.02, 0);
        let Ok(ckpt) = Checkpoint::from_bytes(&cfg, &tok, b.to_vec()) else { return false };
        burnish::infer::classify::build_classifier(&ckpt, &["a".into(), "b".into()], 0, &Device::flex()).is_ok()
    });
    let seeds = vec![read("tiny-llama", "model.safetensors.index.json")];
    fuzz("shard-index", &seeds, 2000, |b| {
        let Ok(files) = shard_files(b) else { return false };
        assert!(files.iter().all(|f| !f.contains('/') && !f.starts_with('.')));
        true
    });
    let (cfg, tok) = (read("tiny-gpt2", "config.json"), read("tiny-gpt2", "tokenizer.json"));
    let seeds = vec![read("tiny-gpt2", "model.safetensors")];
    fuzz("safetensors-decoder", &seeds, 200, |b| {
        let Ok(cm) = CausalModel::from_bytes(&cfg, &tok, vec![b.to_vec()]) else { return false };
        cm.load(0, &Device::flex()).is_ok()
    });
}

#[test]
fn fuzz_gguf_header_metadata_tensor_table() {
    let seeds = vec![std::fs::read(fixture("tiny-spm.gguf")).unwrap()];
    fuzz("gguf", &seeds, 400, |b| {
        let Ok(cm) = from_gguf(b) else { return false };
        cm.load(0, &Device::flex()).is_ok()
    });
}

#[test]
fn fuzz_chat_templates() {
    let mut seeds = vec![read("tiny-llama", "chat_template.jinja")];
    let cfg: serde_json::Value = serde_json::from_slice(&read("tiny-qwen2", "tokenizer_config.json")).unwrap();
    if let Some(t) = cfg["chat_template"].as_str() {
        seeds.push(t.as_bytes().to_vec());
    }
    seeds.push(b"{% for m in messages %}{{ m.role | upper }}: {{ m.content | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}".to_vec());
    seeds.push(b"{% for i in range(10) %}{% for j in range(10) %}{{ (i * j) ~ messages[0].content * 3 }}{% endfor %}{% endfor %}{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(9) }}".to_vec());
    let conv = vec![
        Message { role: "system".into(), content: "Be brief.".into() },
        Message { role: "user".into(), content: "What is 2+2?".into() },
        Message { role: "assistant".into(), content: "4".into() },
    ];
    fuzz("chat-template", &seeds, 3000, |b| {
        let Ok(src) = std::str::from_utf8(b) else { return false };
        let Ok(t) = ChatTemplate::new(src, "<s>", "</s>") else { return false };
        t.render(&conv, true).is_ok()
    });
}

#[test]
fn fuzz_checkpoints_and_recipes() {
    let (train, eval) = (reviews(12, 0, false), reviews(4, 100, false));
    let labels: Vec<String> = vec!["negative".into(), "positive".into()];
    let r = Recipe { batch_size: 4, max_len: 16, ..Recipe::default() };
    let mut s = TrainSession::new(&mut tiny(), &train, &eval, labels, r.clone(), &Device::flex()).unwrap();
    pollster::block_on(s.step()).unwrap();
    let bytes = pollster::block_on(s.checkpoint()).unwrap();
    let parts: Vec<Vec<u8>> = codec::unpack(&bytes).unwrap().into_iter().map(<[u8]>::to_vec).collect();
    // The run state (JSON) is where indices live: mutate it and repack, and mutate whole files.
    fuzz("checkpoint-state", &[parts[0].clone()], 300, |st| {
        let packed = codec::pack(&[st, &parts[1], &parts[2], &parts[3]]);
        let Ok(mut run) = TrainSession::resume(&mut tiny(), &train, &eval, &packed, &Device::flex()) else { return false };
        let _ = pollster::block_on(run.step());
        true
    });
    fuzz("checkpoint", &[bytes.clone()], 100, |b| {
        let Ok(mut run) = TrainSession::resume(&mut tiny(), &train, &eval, b, &Device::flex()) else { return false };
        let _ = pollster::block_on(run.step());
        true
    });
    let recipe = serde_json::to_vec_pretty(&r).unwrap();
    fuzz("recipe", &[recipe], 4000, |b| {
        let Ok(r) = serde_json::from_slice::<Recipe>(b) else { return false };
        if r.validate(64).is_ok() {
            let _ = burnish::recipe::planned_steps(&r, 100);
            let _ = burnish::recipe::preset_recipe("top2", &r, true, 10, 2);
        }
        true
    });
}
