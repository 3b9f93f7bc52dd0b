//! Fine-tuning engine on the tiny fixture model: the loss falls and a learnable split is
//! learned, runs are deterministic on CPU, export → reload gives the same logits, and bad
//! checkpoints or recipes get specific errors.



use burn::tensor::Device;
use burnish::Checkpoint;
use burnish::data::Example;
use burnish::engine::classifier::TrainSession;
use burnish::engine::memory::estimate_memory;
use burnish::infer::classify::{Classifier, build_classifier};
use burnish::recipe::{Recipe, linear_schedule};
use super::common::*;

/// A sentiment task a small model can learn: the label is carried by the adjective.
fn learnable(n: usize, offset: usize) -> Vec<Example> {
    reviews(n, offset, false)
}

fn recipe() -> Recipe {
    Recipe { epochs: 15, lr: 3e-3, batch_size: 8, max_len: 32, warmup_ratio: 0.1, seed: 3, ..Recipe::default() }
}

fn labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

fn run(r: Recipe) -> TrainSession {
    let mut ckpt = tiny();
    let mut s = TrainSession::new(&mut ckpt, &learnable(64, 0), &learnable(32, 1000), labels(), r, &Device::flex()).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    s
}

#[test]
fn loss_falls_and_the_split_is_learned() {
    let mut ckpt = tiny();
    let s0 = TrainSession::new(&mut ckpt, &learnable(64, 0), &learnable(32, 1000), labels(), recipe(), &Device::flex()).unwrap();
    let (before, _) = pollster::block_on(s0.evaluate_all()).unwrap();
    let s = run(recipe());
    assert_eq!(s.step, 120);
    assert_eq!(s.history.len(), 15);
    let first: f64 = s.losses[..8].iter().sum::<f64>() / 8.0;
    let last: f64 = s.losses[112..].iter().sum::<f64>() / 8.0;
    let (after, preds) = pollster::block_on(s.evaluate_all()).unwrap();
    eprintln!("loss {first:.4} → {last:.4}; eval accuracy {:.3} → {:.3}", before.accuracy, after.accuracy);
    assert!(last < first * 0.5, "loss did not fall enough: {first} → {last}");
    assert!(after.accuracy >= 0.9, "accuracy {}", after.accuracy);
    assert!(after.loss < before.loss);
    assert_eq!(preds.len(), 32);
    assert_eq!(after.confusion.iter().flatten().sum::<usize>(), 32);
}

#[test]
fn training_is_deterministic_on_cpu() {
    let r = Recipe { epochs: 1, ..recipe() };
    let a = run(r.clone());
    let b = run(r.clone());
    assert_eq!(a.losses, b.losses);
    let c = run(Recipe { seed: 4, ..r });
    assert_ne!(a.losses, c.losses);
}

#[test]
fn export_then_reload_gives_the_same_logits() {
    let s = run(Recipe { epochs: 1, ..recipe() });
    let ckpt = tiny();
    let files = pollster::block_on(s.export(&ckpt, "tiny-bert")).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "model.safetensors"] {
        assert!(names.contains(&want), "missing {want} in {names:?}");
    }
    let get = |n: &str| files.iter().find(|(f, _)| f == n).unwrap().1.clone();
    let config: serde_json::Value = serde_json::from_slice(&get("config.json")).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["1"], "positive");
    assert_eq!(config["label2id"]["negative"], 0);

    let mut re = Checkpoint::from_bytes(&get("config.json"), &get("tokenizer.json"), get("model.safetensors")).unwrap();
    assert_eq!(re.config.labels, labels());
    let device = Device::flex();
    let (model, report) = build_classifier(&re, &labels(), 0, &device).unwrap();
    assert!(report.initialized.is_empty(), "reloaded model must be complete: {:?}", report.initialized);
    let reloaded = Classifier { model, labels: labels(), pad_id: re.tokenizer.pad_id };
    let rows: Vec<Vec<u32>> = learnable(6, 500).iter().map(|e| re.tokenizer.encode(&e.text, 32).unwrap()).collect();
    let a = pollster::block_on(s.classifier().unwrap().logits(&rows, 4, &device)).unwrap();
    let b = pollster::block_on(reloaded.logits(&rows, 4, &device)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn schedule_warms_up_then_decays_like_hf() {
    assert_eq!(linear_schedule(1.0, 0, 10, 100), 0.0);
    assert!((linear_schedule(1.0, 5, 10, 100) - 0.5).abs() < 1e-12);
    assert!((linear_schedule(1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
    assert!((linear_schedule(1.0, 55, 10, 100) - 0.5).abs() < 1e-12);
    assert_eq!(linear_schedule(1.0, 100, 10, 100), 0.0);
    assert!((linear_schedule(2.0, 0, 0, 4) - 2.0).abs() < 1e-12);
}

#[test]
fn bad_recipes_are_refused_with_the_reason() {
    let mut ckpt = tiny();
    let bad = |r: Recipe, ck: &mut Checkpoint| {
        TrainSession::new(ck, &learnable(8, 0), &learnable(4, 100), labels(), r, &Device::flex()).err().expect("refused").to_string()
    };
    assert!(bad(Recipe { lr: -1.0, ..recipe() }, &mut ckpt).contains("learning rate"));
    assert!(bad(Recipe { batch_size: 0, ..recipe() }, &mut ckpt).contains("batch size"));
    assert!(bad(Recipe { max_len: 4096, ..recipe() }, &mut ckpt).contains("64 positions"));
    assert!(bad(Recipe { epochs: 0, ..recipe() }, &mut ckpt).contains("epochs"));
    let e = serde_json::from_str::<Recipe>(r#"{"task": "summarization"}"#).unwrap_err().to_string();
    assert!(e.contains("task \"summarization\" is not supported (supported: text-classification, masked-lm, causal-lm, instruct)"), "{e}");
    let e = bad(Recipe { task: burnish::recipe::Task::Instruct, ..recipe() }, &mut ckpt);
    assert!(e.contains("causal-lm and instruct fine-tune a decoder"), "{e}");
    let e = bad(Recipe { task: burnish::recipe::Task::MaskedLm, ..recipe() }, &mut ckpt);
    assert!(e.contains("masked-lm runs as domain adaptation"), "{e}");
    let mut eval = learnable(4, 100);
    eval[0].label = "neutral".into();
    let e = TrainSession::new(&mut ckpt, &learnable(8, 0), &eval, labels(), recipe(), &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("labels that the training data does not: neutral"), "{e}");
}

#[test]
fn bad_checkpoints_are_refused_with_the_reason() {
    let dir = fixture("tiny-bert");
    let config = std::fs::read(dir.join("config.json")).unwrap();
    let tok = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();

    let gpt2 = String::from_utf8(config.clone()).unwrap().replace("\"bert\"", "\"gpt2\"");
    let e = Checkpoint::from_bytes(gpt2.as_bytes(), &tok, weights.clone()).err().unwrap().to_string();
    assert!(e.contains("unsupported model_type \"gpt2\"") && e.contains("bert"), "{e}");

    let e = Checkpoint::from_bytes(b"{not json", &tok, weights.clone()).err().unwrap().to_string();
    assert!(e.starts_with("config.json: not valid JSON"), "{e}");

    let e = Checkpoint::from_bytes(&config, b"garbage", weights.clone()).err().unwrap().to_string();
    assert!(e.starts_with("tokenizer.json:"), "{e}");

    let e = Checkpoint::from_bytes(&config, &tok, b"definitely not safetensors".to_vec()).err().unwrap().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    let other = safetensors::serialize(
        vec![("lm_head.weight", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).unwrap())],
        None,
    )
    .unwrap();
    let e = Checkpoint::from_bytes(&config, &tok, other).err().unwrap().to_string();
    assert!(e.contains("not a BERT, RoBERTa or DistilBERT checkpoint (first tensors: lm_head.weight)"), "{e}");

    // Drop one encoder tensor: the error names it.
    let st = safetensors::SafeTensors::deserialize(&weights).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| n != "bert.encoder.layer.1.output.dense.weight").collect();
    let partial = safetensors::serialize(kept, None).unwrap();
    let ckpt = Checkpoint::from_bytes(&config, &tok, partial).unwrap();
    let e = build_classifier(&ckpt, &labels(), 0, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("missing tensor \"bert.encoder.layer.1.output.dense.weight\""), "{e}");
}

#[test]
fn a_new_head_is_initialised_when_labels_differ() {
    let ckpt = tiny();
    // The fixture's head has 3 labels; two labels need a new head, reported by name.
    let (_, report) = build_classifier(&ckpt, &labels(), 0, &Device::flex()).unwrap();
    assert_eq!(report.initialized, vec!["classifier.weight", "classifier.bias"]);
    let three: Vec<String> = ckpt.config.labels.clone();
    let (_, report) = build_classifier(&ckpt, &three, 0, &Device::flex()).unwrap();
    assert!(report.initialized.is_empty());
}

#[test]
fn periodic_evaluation_scores_every_n_steps_and_at_epoch_ends() {
    let mut ckpt = tiny();
    let r = Recipe { epochs: 2, eval_every: 3, ..recipe() };
    // 20 examples, batch 8: 3 steps per epoch, 6 in all.
    let mut s = TrainSession::new(&mut ckpt, &learnable(20, 0), &learnable(6, 500), labels(), r, &Device::flex()).unwrap();
    let mut scored = Vec::new();
    while !s.is_done() {
        let rep = pollster::block_on(s.step()).unwrap();
        if let Some(m) = &rep.eval {
            assert_eq!(m.count, 6);
            scored.push((rep.step, rep.epoch_end.is_some()));
        }
    }
    assert_eq!(scored, vec![(3, true), (6, true)]);
    let mut ckpt = tiny();
    let r = Recipe { epochs: 1, eval_every: 1, ..recipe() };
    let mut s = TrainSession::new(&mut ckpt, &learnable(20, 0), &learnable(6, 500), labels(), r, &Device::flex()).unwrap();
    let mut steps = Vec::new();
    while !s.is_done() {
        let rep = pollster::block_on(s.step()).unwrap();
        if rep.eval.is_some() {
            steps.push(rep.step);
        }
    }
    assert_eq!(steps, vec![1, 2, 3]);
}

#[test]
fn memory_estimate_adds_up_and_scales_with_the_batch() {
    let ckpt = tiny();
    let p = ckpt.summary().parameters;
    let a = estimate_memory(&ckpt.config, p, p, 8, 32);
    let b = estimate_memory(&ckpt.config, p, p, 16, 32);
    assert_eq!(a.weights, 4 * p as u64);
    assert_eq!(a.optimizer, 2 * a.weights);
    assert_eq!(a.total, a.weights + a.gradients + a.optimizer + a.activations);
    assert_eq!(b.activations, 2 * a.activations);
    assert_eq!(b.weights, a.weights);
    // Attention scores grow with the square of the length: doubling it more than doubles them.
    let c = estimate_memory(&ckpt.config, p, p, 8, 64);
    assert!(c.activations > 2 * a.activations);
}

/// The page scores the starting weights a few batches at a time between training slices: the
/// result equals a whole evaluation of those weights, steps taken meanwhile do not change it,
/// and the metrics come only once every example is scored.
#[test]
fn a_pending_evaluation_scores_the_snapshot_taken_at_its_start() {
    let mut ckpt = tiny();
    let eval = learnable(40, 1000);
    let r = Recipe { batch_size: 4, ..recipe() }; // eval batches of 32: two of them for 40 rows
    let mut s = TrainSession::new(&mut ckpt, &learnable(32, 0), &eval, labels(), r, &Device::flex()).unwrap();
    let (whole, whole_preds) = pollster::block_on(s.evaluate_all()).unwrap();
    let mut pending = s.pending_evaluation().unwrap();
    for _ in 0..3 {
        pollster::block_on(s.step()).unwrap();
    }
    let (moved, _) = pollster::block_on(s.evaluate_all()).unwrap();
    assert_ne!(moved.loss, whole.loss, "the steps changed the weights");
    // A budget of 0 ms scores one batch per call: 32 rows, then the last 8.
    assert!(pollster::block_on(pending.advance(0.0)).unwrap().is_none(), "metrics before every row was scored");
    let (metrics, preds) = pollster::block_on(pending.advance(0.0)).unwrap().expect("done after two batches");
    assert_eq!(metrics.loss, whole.loss);
    assert_eq!(metrics.accuracy, whole.accuracy);
    assert_eq!(metrics.confusion, whole.confusion);
    let logits = |p: &[burnish::infer::classify::Prediction]| p.iter().map(|p| p.logits.clone()).collect::<Vec<_>>();
    assert_eq!(logits(&preds), logits(&whole_preds));
}
