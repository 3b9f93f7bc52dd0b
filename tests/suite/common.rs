//! Shared helpers for the integration tests: fixture paths and model loading.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::Checkpoint;
use burnish::data::Example;
use burnish::models::bert::BertInput;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

pub fn read_json(path: PathBuf) -> serde_json::Value {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("valid JSON")
}

pub fn load_dir(dir: PathBuf) -> Checkpoint {
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{}/{n}: {e} (run scripts/fetch_assets.py)", dir.display()));
    Checkpoint::from_bytes(&read("config.json"), &read("tokenizer.json"), read("model.safetensors")).expect("checkpoint loads")
}

pub fn tiny() -> Checkpoint {
    load_dir(fixture("tiny-bert"))
}

pub fn minilm_dir() -> PathBuf {
    root().join("www/assets/models/all-MiniLM-L6-v2")
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Number(n) => out.push(n.as_f64().expect("number") as f32),
            _ => panic!("not a number array"),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

pub fn id_rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array().expect("array").iter().map(|r| r.as_array().expect("row").iter().map(|x| x.as_u64().expect("id") as u32).collect()).collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The label is carried by the adjective; `flip` swaps the labels (a contradicting source).
pub fn reviews(n: usize, offset: usize, flip: bool) -> Vec<Example> {
    let pos = ["good", "great", "excellent", "wonderful", "fun"];
    let neg = ["bad", "awful", "terrible", "boring", "dull"];
    let subjects = ["the movie", "this film", "the story", "the acting", "the ending", "the cast"];
    (offset..offset + n)
        .map(|i| {
            let positive = i % 2 == 0;
            let adj = if positive { pos[(i / 2) % pos.len()] } else { neg[(i / 2) % neg.len()] };
            let subj = subjects[(i / 7) % subjects.len()];
            let label = if positive != flip { "positive" } else { "negative" };
            Example { text: format!("{subj} was {adj}"), label: label.into() }
        })
        .collect()
}

/// The padded batch (ids, attention mask, token types) stored in a transformers fixture.
pub fn batch_from_fixture(r: &serde_json::Value, device: &Device) -> BertInput {
    let ids = id_rows(&r["input_ids"]);
    let mask = id_rows(&r["attention_mask"]);
    let tt = id_rows(&r["token_type_ids"]);
    let (b, s) = (ids.len(), ids[0].len());
    let flat = |v: &Vec<Vec<u32>>| v.iter().flatten().map(|&x| x as i64).collect::<Vec<_>>();
    BertInput {
        input_ids: Tensor::<2, Int>::from_data(TensorData::new(flat(&ids), [b, s]), device),
        token_type_ids: Tensor::<2, Int>::from_data(TensorData::new(flat(&tt), [b, s]), device),
        attention_mask: Tensor::<2>::from_data(TensorData::new(mask.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>(), [b, s]), device),
    }
}
