//! Masked-LM domain adaptation: the `BertForMaskedLM` head against transformers (fixture from
//! tests/fixtures/make_reference.py), HF's 80/10/10 masking rule, held-out loss falling on real
//! domain text with MiniLM, and the two-stage recipe handing the adapted encoder to the
//! classifier.

use burn::tensor::{Device, Tensor, TensorData};
use burnish::engine::classifier::TrainSession;
use burnish::engine::cross_entropy;
use burnish::engine::masked_lm::MlmSession;
use burnish::engine::masked_lm::MaskRule;
use burnish::data::text::{domain_texts, split_texts};
use burnish::infer::fill_mask::load_masked_lm;
use burnish::recipe::Recipe;
use burnish::backend::read_f32;
use rand::SeedableRng;
use rand::rngs::StdRng;
use safetensors::SafeTensors;

use super::common::*;

#[test]
fn masked_lm_head_matches_transformers() {
    let r = read_json(fixture("tiny_mlm_reference.json"));
    let ckpt = load_dir(fixture("tiny-bert-mlm"));
    let device = Device::flex();
    let (model, report) = load_masked_lm(&ckpt, &device).unwrap();
    // The head comes from the file; only the pooler (BertForMaskedLM has none) is new.
    assert!(report.initialized.iter().all(|n| n.starts_with("pooler.")), "initialised: {:?}", report.initialized);
    let input = batch_from_fixture(&r, &device);
    let seq = id_rows(&r["input_ids"])[0].len();
    let positions: Vec<i64> = r["masked"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize * seq + p[1].as_u64().unwrap() as usize) as i64).collect();
    let targets: Vec<i64> = r["targets"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    let n = positions.len();
    let logits = model.logits_at(&input, Tensor::from_data(TensorData::new(positions, [n]), &device));
    let got = pollster::block_on(read_f32(logits.clone())).unwrap();
    let diff = max_abs_diff(&got, &f32s(&r["logits"]));
    assert!(diff < 1e-4, "masked-LM logits differ from transformers by {diff}");
    let loss = cross_entropy(logits, Tensor::from_data(TensorData::new(targets, [n]), &device));
    let loss = pollster::block_on(read_f32(loss)).unwrap()[0];
    let want = r["loss"].as_f64().unwrap() as f32;
    assert!((loss - want).abs() < 1e-4, "MLM loss {loss} vs transformers {want}");
}

#[test]
fn masking_follows_the_80_10_10_rule() {
    let (mask_id, vocab) = (4u32, 400usize);
    let rule = MaskRule { special: vec![0, 1, 2, 3, 4], mask_id, vocab, probability: 0.15 };
    let mut rng = StdRng::seed_from_u64(7);
    let (mut maskable, mut chosen, mut to_mask, mut random, mut kept) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for i in 0..400u32 {
        // [CLS] w w … w [SEP] with a few padding-like specials inside.
        let mut ids = vec![2u32];
        ids.extend((0..60).map(|j| if j % 17 == 0 { 1 } else { 5 + (i * 61 + j * 7) % (vocab as u32 - 5) }));
        ids.push(3);
        let m = rule.apply(&ids, &mut rng, false);
        maskable += ids.iter().filter(|&&x| x > 4).count();
        for &(t, original) in &m.targets {
            assert_eq!(original, ids[t], "a target must be the original token");
            assert!(ids[t] > 4, "special token {} at {t} was chosen", ids[t]);
            chosen += 1;
            if m.input[t] == mask_id {
                to_mask += 1;
            } else if m.input[t] == ids[t] {
                kept += 1;
            } else {
                random += 1;
            }
        }
        for (t, (&a, &b)) in ids.iter().zip(&m.input).enumerate() {
            if a != b {
                assert!(m.targets.iter().any(|x| x.0 == t), "position {t} changed without being a target");
            }
        }
    }
    let within = |count: usize, n: usize, p: f64| {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        (count as f64 - n as f64 * p).abs() < 4.0 * sd
    };
    assert!(within(chosen, maskable, 0.15), "chosen {chosen} of {maskable}");
    assert!(within(to_mask, chosen, 0.8), "[MASK] {to_mask} of {chosen}");
    // A random replacement can draw the original token (1 in 400): it then counts as kept.
    assert!(within(random, chosen, 0.1 * (1.0 - 1.0 / vocab as f64)), "random {random} of {chosen}");
    assert!(within(kept, chosen, 0.1 + 0.1 / vocab as f64), "kept {kept} of {chosen}");
    // Seeded: the same seed masks the same way; a short row still gets one target on request.
    let a = rule.apply(&[2, 9, 3], &mut StdRng::seed_from_u64(1), true);
    assert_eq!(a, rule.apply(&[2, 9, 3], &mut StdRng::seed_from_u64(1), true));
    assert_eq!(a.targets, vec![(1, 9)]);
}

#[test]
fn domain_adaptation_lowers_held_out_loss_on_minilm() {
    let mut ckpt = load_dir(minilm_dir());
    let table = burnish::data::parse_table(&std::fs::read(root().join("www/assets/data/movie-domain.txt")).unwrap(), "movie-domain.txt").unwrap();
    let texts = domain_texts(&table, "text").unwrap();
    let (train, eval) = split_texts(&texts[..240], 0.2, 42);
    assert_eq!((train.len(), eval.len()), (192, 48));
    let r = Recipe { batch_size: 16, max_len: 48, mlm_probability: 0.15, warmup_ratio: 0.1, ..Recipe::default() };
    let mut s = MlmSession::new(&mut ckpt, &train, &eval, &r, 1, 2e-4, &burnish::backend::cpu().0).unwrap();
    // all-MiniLM-L6-v2 ships without its masked-LM head: it starts newly initialised.
    assert!(s.load_report.initialized.iter().any(|n| n == "cls.predictions.bias"), "{:?}", s.load_report.initialized);
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    assert_eq!(s.step, 12);
    let (before, after) = (&s.evaluations()[0], &s.evaluations()[1]);
    assert_eq!(before.masked_tokens, after.masked_tokens, "the same held-out masks are scored every time");
    assert!(before.masked_tokens > 100, "{before:?}");
    assert!(after.loss < before.loss - 1.0, "held-out MLM loss did not fall: {before:?} → {after:?}");
    assert!((after.perplexity - after.loss.exp()).abs() < 1e-6 * after.perplexity);
    assert!(after.masked_accuracy > before.masked_accuracy && after.masked_accuracy <= 1.0, "{before:?} → {after:?}");
}

fn tensor(weights: &[u8], name: &str) -> Vec<f32> {
    let st = SafeTensors::deserialize(weights).unwrap();
    let t = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
    t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn two_stage_recipe_fine_tunes_the_adapted_encoder() {
    let mut ckpt = tiny();
    let texts: Vec<String> = reviews(40, 0, false).into_iter().map(|e| e.text).collect();
    let (train, eval) = split_texts(&texts, 0.25, 1);
    let r = Recipe { batch_size: 8, max_len: 24, epochs: 1, ..Recipe::default() };
    let dev = burnish::backend::cpu().0;
    let mut s = MlmSession::new(&mut ckpt, &train, &eval, &r, 2, 5e-3, &dev).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    assert_eq!(s.evaluations().len(), 3, "before + one evaluation per epoch");
    let adapted = pollster::block_on(s.adapted_checkpoint(&ckpt)).unwrap();
    let name = "bert.encoder.layer.0.attention.self.query.weight";
    assert_ne!(tensor(&adapted.weights, name), tensor(&ckpt.weights, name), "adaptation must change the encoder");

    // Stage two starts from the adapted encoder: before any step its export carries it.
    let mut adapted = adapted;
    let labeled = reviews(24, 0, false);
    let session = TrainSession::new(&mut adapted, &labeled, &labeled[..8], vec!["negative".into(), "positive".into()], r, &dev).unwrap();
    let files = pollster::block_on(session.export(&adapted, "tiny")).unwrap();
    let weights = &files.iter().find(|f| f.0 == "model.safetensors").unwrap().1;
    for n in [name, "bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight"] {
        assert_eq!(tensor(weights, n), tensor(&adapted.weights, n), "{n} is not the adapted one");
    }
    // The masked-LM export is a BertForMaskedLM folder with the tied-decoder layout.
    let mlm_files = pollster::block_on(s.export(&ckpt)).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&mlm_files.iter().find(|f| f.0 == "config.json").unwrap().1).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["BertForMaskedLM"]));
    assert!(config.get("id2label").is_none(), "{config}");
    let w = &mlm_files.iter().find(|f| f.0 == "model.safetensors").unwrap().1;
    let names = SafeTensors::deserialize(w).unwrap().names().into_iter().map(String::from).collect::<Vec<_>>();
    assert!(names.iter().any(|n| n == "cls.predictions.bias") && names.iter().any(|n| n == "cls.predictions.transform.dense.weight"));
    assert!(!names.iter().any(|n| n.starts_with("cls.predictions.decoder")), "the decoder is tied, not stored: {names:?}");
}

#[test]
fn bad_domain_input_gets_specific_messages() {
    let table = burnish::data::parse_table(b"review,label\nnice,pos\n", "d.csv").unwrap();
    let e = domain_texts(&table, "text").unwrap_err().to_string();
    assert!(e.contains("no text column \"text\"") && e.contains("\"review\""), "{e}");
    let r = Recipe { mlm_probability: 1.5, ..Recipe::default() };
    let e = r.validate(512).unwrap_err().to_string();
    assert!(e.contains("masking probability"), "{e}");
    let r = Recipe { task: burnish::recipe::Task::MaskedLm, strategy: burnish::recipe::Strategy::Lora, ..Recipe::default() };
    assert!(r.validate(512).unwrap_err().to_string().contains("classifier stage"));
}
