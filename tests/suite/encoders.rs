//! RoBERTa, XLM-RoBERTa and DistilBERT against transformers: tiny random checkpoints written by
//! transformers itself (tests/fixtures/make_encoders.py) load completely, tokenize, encode,
//! classify and fill masks as transformers does; fine-tuned, they export under exactly the
//! tensor names transformers saves (classifier, masked LM, PEFT adapter) and load back with the
//! same logits.

use std::collections::BTreeSet;

use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::backend::read_f32;
use burnish::engine::classifier::TrainSession;
use burnish::engine::cross_entropy;
use burnish::engine::masked_lm::MlmSession;
use burnish::hf::weights::ParamSource;
use burnish::infer::fill_mask::load_masked_lm;
use burnish::models::bert::{BertInput, SequenceClassifier};
use burnish::recipe::{LoraTarget, Recipe, Strategy};
use safetensors::SafeTensors;

use super::common::*;

const MODELS: [(&str, &str, &str); 3] = [("tiny-roberta", "roberta", "roberta."), ("tiny-xlmr", "xlm-roberta", "roberta."), ("tiny-distilbert", "distilbert", "distilbert.")];

fn reference(name: &str) -> serde_json::Value {
    read_json(fixture("encoder_reference.json"))[name].clone()
}

/// The reference batch (no token types: zeros, as transformers uses for these models).
fn batch(r: &serde_json::Value, ids_key: &serde_json::Value, device: &Device) -> BertInput {
    let ids = id_rows(ids_key);
    let mask = id_rows(&r["attention_mask"]);
    let (b, s) = (ids.len(), ids[0].len());
    BertInput {
        input_ids: Tensor::<2, Int>::from_data(TensorData::new(ids.iter().flatten().map(|&x| x as i64).collect::<Vec<_>>(), [b, s]), device),
        token_type_ids: Tensor::<2, Int>::zeros([b, s], device),
        attention_mask: Tensor::<2>::from_data(TensorData::new(mask.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>(), [b, s]), device),
    }
}

fn names(weights: &[u8]) -> BTreeSet<String> {
    SafeTensors::deserialize(weights).unwrap().names().into_iter().map(String::from).collect()
}

#[test]
fn encoders_tokenize_encode_and_classify_as_transformers() {
    let device = Device::flex();
    for (name, model_type, prefix) in MODELS {
        let r = reference(name);
        let mut ckpt = load_dir(fixture(name));
        assert_eq!(ckpt.summary().model_type, model_type);
        // The base model's parameters, plus the head's dense layer and the 3-label classifier,
        // are what transformers counts for the classification model.
        assert_eq!(ckpt.summary().parameters + (32 * 32 + 32) + (32 * 3 + 3), r["parameters"].as_u64().unwrap() as usize, "{name}: parameters");
        // The tokenizer: same ids as AutoTokenizer, special tokens included.
        let ids = id_rows(&r["input_ids"]);
        let mask = id_rows(&r["attention_mask"]);
        for (i, t) in r["texts"].as_array().unwrap().iter().enumerate() {
            let n = mask[i].iter().filter(|&&m| m == 1).count();
            assert_eq!(ckpt.tokenizer.encode(t.as_str().unwrap(), 64).unwrap(), ids[i][..n].to_vec(), "{name}: text {t}");
        }
        // Every tensor of the file is used and none is missing.
        let mut src = ParamSource::from_safetensors(&ckpt.weights, ckpt.config.initializer_range, 0).unwrap();
        let model = SequenceClassifier::load(&ckpt.config, 3, &mut src, &device).unwrap();
        let report = src.report();
        assert_eq!(report.prefix, prefix, "{name}");
        assert!(report.initialized.is_empty() && report.unexpected.is_empty(), "{name}: {report:?}");
        let input = batch(&r, &r["input_ids"], &device);
        let hidden = pollster::block_on(read_f32(model.bert.encode(&input))).unwrap();
        let logits = pollster::block_on(read_f32(model.forward(&input))).unwrap();
        // Real tokens only: transformers gives RoBERTa's padding the position `pad_token_id`, and
        // what a padded position computes is masked out of everything downstream.
        let real: Vec<bool> = mask.iter().flatten().flat_map(|&m| std::iter::repeat_n(m == 1, 32)).collect();
        let keep = |v: &[f32]| v.iter().zip(&real).filter(|(_, r)| **r).map(|(x, _)| *x).collect::<Vec<f32>>();
        let (dh, dl) = (max_abs_diff(&keep(&hidden), &keep(&f32s(&r["last_hidden_state"]))), max_abs_diff(&logits, &f32s(&r["logits"])));
        eprintln!("{name}: max |Δ| hidden {dh:.2e} logits {dl:.2e}");
        assert!(dh < 1e-4 && dl < 1e-4, "{name}: hidden {dh} logits {dl}");
    }
}

#[test]
fn encoders_masked_lm_heads_match_transformers() {
    let device = Device::flex();
    for (name, _, _) in MODELS {
        let r = reference(name);
        let m = &r["mlm"];
        let ckpt = load_dir(fixture(&format!("{name}-mlm")));
        let (model, report) = load_masked_lm(&ckpt, &device).unwrap();
        // The LM head comes from the file; only the classification head's dense layer is new.
        assert!(report.initialized.iter().all(|n| n.starts_with("classifier.dense") || n.starts_with("pre_classifier")), "{name}: initialised {:?}", report.initialized);
        assert!(report.unexpected.is_empty(), "{name}: unexpected {:?}", report.unexpected);
        assert_eq!(ckpt.tokenizer.mask_id().unwrap() as usize, {
            let masked = &m["masked"][0];
            id_rows(&m["input_ids"])[masked[0].as_u64().unwrap() as usize][masked[1].as_u64().unwrap() as usize] as usize
        });
        let input = batch(&r, &m["input_ids"], &device);
        let seq = id_rows(&r["input_ids"])[0].len();
        let positions: Vec<i64> = m["masked"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize * seq + p[1].as_u64().unwrap() as usize) as i64).collect();
        let targets: Vec<i64> = m["targets"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
        let n = positions.len();
        let logits = model.logits_at(&input, Tensor::from_data(TensorData::new(positions, [n]), &device));
        let got = pollster::block_on(read_f32(logits.clone())).unwrap();
        let diff = max_abs_diff(&got, &f32s(&m["logits"]));
        let loss = pollster::block_on(read_f32(cross_entropy(logits, Tensor::from_data(TensorData::new(targets, [n]), &device)))).unwrap()[0];
        let want = m["loss"].as_f64().unwrap() as f32;
        eprintln!("{name}: masked-LM logits max |Δ| {diff:.2e}, loss {loss} vs {want}");
        assert!(diff < 1e-4 && (loss - want).abs() < 1e-4, "{name}: logits {diff}, loss {loss} vs {want}");
    }
}

fn recipe() -> Recipe {
    Recipe { epochs: 1, lr: 1e-2, batch_size: 8, max_len: 24, warmup_ratio: 0.0, seed: 3, ..Recipe::default() }
}

#[test]
fn fine_tuned_encoders_export_under_transformers_names_and_reload_identically() {
    let dev = Device::flex();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let (train, eval) = (reviews(24, 0, false), reviews(8, 50, false));
    for (name, model_type, _) in MODELS {
        let mut ckpt = load_dir(fixture(name));
        let original = names(&ckpt.weights);

        // Full fine-tuning: the folder has the same tensor names as transformers' own file.
        let mut s = TrainSession::new(&mut ckpt, &train, &eval, labels.clone(), recipe(), &dev).unwrap();
        for _ in 0..3 {
            pollster::block_on(s.step()).unwrap();
        }
        let files: std::collections::HashMap<String, Vec<u8>> = pollster::block_on(s.export(&ckpt, name)).unwrap().into_iter().collect();
        assert_eq!(names(&files["model.safetensors"]), original, "{name}: exported tensor names");
        let config: serde_json::Value = serde_json::from_slice(&files["config.json"]).unwrap();
        assert_eq!(config["model_type"], model_type);
        let class = config["architectures"][0].as_str().unwrap();
        assert!(class.ends_with("ForSequenceClassification") && class.to_lowercase().starts_with(&model_type.replace('-', "")), "{class}");
        assert!(files.contains_key("tokenizer.json") && files.contains_key("tokenizer_config.json"));

        // The folder loads back (as a user would open it) and predicts what the session does.
        let back = burnish::Checkpoint::from_bytes(&files["config.json"], &files["tokenizer.json"], files["model.safetensors"].clone()).unwrap();
        let (reloaded, report) = burnish::infer::classify::build_classifier(&back, &labels, 0, &dev).unwrap();
        assert!(report.initialized.is_empty(), "{name}: {report:?}");
        let rows = vec![ckpt.tokenizer.encode("the film was wonderful", 24).unwrap(), ckpt.tokenizer.encode("dull", 24).unwrap()];
        let input = BertInput::from_rows(&rows, ckpt.tokenizer.pad_id, &dev);
        let a = pollster::block_on(read_f32(reloaded.forward(&input))).unwrap();
        let b = pollster::block_on(read_f32(s.classifier().unwrap().model.forward(&input))).unwrap();
        assert!(max_abs_diff(&a, &b) < 1e-5, "{name}: reloaded logits differ");

        // LoRA: PEFT names under the architecture's module paths; the head saved whole.
        let mut ckpt = load_dir(fixture(name));
        let targets = vec![LoraTarget::Query, LoraTarget::Value, LoraTarget::Output];
        let r = Recipe { strategy: Strategy::Lora, lora_rank: 2, lora_targets: targets, ..recipe() };
        let mut s = TrainSession::new(&mut ckpt, &train, &eval, labels.clone(), r, &dev).unwrap();
        pollster::block_on(s.step()).unwrap();
        let files: std::collections::HashMap<String, Vec<u8>> = pollster::block_on(s.export(&ckpt, name)).unwrap().into_iter().collect();
        let peft = names(&files["peft/adapter_model.safetensors"]);
        let acfg: serde_json::Value = serde_json::from_slice(&files["peft/adapter_config.json"]).unwrap();
        let (base, layer, q, v, out, heads): (&str, &str, &str, &str, &str, &[&str]) = if model_type == "distilbert" {
            ("distilbert", "transformer.layer", "attention.q_lin", "attention.v_lin", "ffn.lin2", &["pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"])
        } else {
            ("roberta", "encoder.layer", "attention.self.query", "attention.self.value", "output.dense", &["classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"])
        };
        let mut want: BTreeSet<String> = heads.iter().map(|h| format!("base_model.model.{h}")).collect();
        for i in 0..2 {
            for m in [q, v, out] {
                for f in ["lora_A", "lora_B"] {
                    want.insert(format!("base_model.model.{base}.{layer}.{i}.{m}.{f}.weight"));
                }
            }
        }
        assert_eq!(peft, want, "{name}: PEFT tensor names");
        let regex = acfg["target_modules"].as_str().unwrap();
        assert!(regex.contains(&q.replace('.', "\\.")) && regex.contains(&out.replace('.', "\\.")), "{regex}");
        assert_eq!(names(&files["model.safetensors"]), original, "{name}: merged export");
    }
}

#[test]
fn encoders_adapt_as_masked_lms_and_export_their_own_heads() {
    let dev = burnish::backend::cpu().0;
    let texts: Vec<String> = reviews(24, 0, false).into_iter().map(|e| e.text).collect();
    let (train, eval) = burnish::data::text::split_texts(&texts, 0.25, 1);
    for (name, _, _) in MODELS {
        let mut ckpt = load_dir(fixture(&format!("{name}-mlm")));
        let original = names(&ckpt.weights);
        let r = Recipe { batch_size: 6, max_len: 24, mlm_probability: 0.3, ..Recipe::default() };
        let mut s = MlmSession::new(&mut ckpt, &train, &eval, &r, 2, 1e-2, &dev).unwrap();
        while !s.is_done() {
            pollster::block_on(s.step()).unwrap();
        }
        let (before, after) = (&s.evaluations()[0], &s.evaluations()[2]);
        assert!(after.loss < before.loss, "{name}: held-out MLM loss {} → {}", before.loss, after.loss);
        let files: std::collections::HashMap<String, Vec<u8>> = pollster::block_on(s.export(&ckpt)).unwrap().into_iter().collect();
        assert_eq!(names(&files["model.safetensors"]), original, "{name}: masked-LM export names");
        let config: serde_json::Value = serde_json::from_slice(&files["config.json"]).unwrap();
        assert!(config["architectures"][0].as_str().unwrap().ends_with("ForMaskedLM"), "{config}");
    }
}

#[test]
fn an_unsupported_encoder_names_every_supported_one() {
    let cfg = br#"{"model_type": "electra", "hidden_size": 32}"#;
    let e = burnish::hf::config::HfConfigFile::from_bytes(cfg).unwrap().into_bert().unwrap_err().to_string();
    for t in ["\"electra\"", "\"bert\"", "\"roberta\"", "\"xlm-roberta\"", "\"distilbert\""] {
        assert!(e.contains(t), "{e}");
    }
    let cfg = br#"{"model_type": "distilbert", "dim": 32, "n_heads": 4, "n_layers": 1, "hidden_dim": 64, "vocab_size": 10, "max_position_embeddings": 8, "sinusoidal_pos_embds": true}"#;
    let e = burnish::hf::config::HfConfigFile::from_bytes(cfg).unwrap().into_bert().unwrap_err().to_string();
    assert!(e.contains("sinusoidal_pos_embds"), "{e}");
    let cfg = br#"{"model_type": "roberta", "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 10, "max_position_embeddings": 3, "pad_token_id": 1}"#;
    let e = burnish::hf::config::HfConfigFile::from_bytes(cfg).unwrap().into_bert().unwrap_err().to_string();
    assert!(e.contains("pad_token_id + 1"), "{e}");
}
