//! Fidelity against Hugging Face transformers: fixtures written by
//! tests/fixtures/make_reference.py (tiny random BERT logits/hidden states, real MiniLM
//! sentence embeddings, one AdamW step) compared with Burnish's outputs.



use burn::optim::GradientsParams;
use burnish::engine::adamw::{AdamW, AdamWConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::infer::embed::Embedder;
use burnish::models::bert::SequenceClassifier;
use burnish::engine::{clip_global_norm, cross_entropy};
use burnish::hf::weights::ParamSource;
use burnish::backend::read_f32;
use super::common::*;

fn tiny_classifier(device: &Device, dropout_off: bool) -> SequenceClassifier {
    let mut ckpt = tiny();
    if dropout_off {
        ckpt.config.hidden_dropout_prob = 0.0;
        ckpt.config.attention_probs_dropout_prob = 0.0;
        ckpt.config.classifier_dropout = None;
    }
    let mut src = ParamSource::from_safetensors(&ckpt.weights, 0.02, 0).unwrap();
    let model = SequenceClassifier::load(&ckpt.config, 3, &mut src, device).unwrap();
    let report = src.report();
    assert!(report.initialized.is_empty(), "tiny fixture should be complete: {:?}", report.initialized);
    assert!(report.unexpected.is_empty(), "unexpected: {:?}", report.unexpected);
    assert_eq!(report.prefix, "bert.");
    model
}

#[test]
fn tokenizer_matches_transformers_on_tiny_model() {
    let r = read_json(fixture("tiny_reference.json"));
    let mut ckpt = tiny();
    let texts: Vec<String> = r["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let ids = id_rows(&r["input_ids"]);
    let mask = id_rows(&r["attention_mask"]);
    for (i, t) in texts.iter().enumerate() {
        let n = mask[i].iter().filter(|&&m| m == 1).count();
        assert_eq!(ckpt.tokenizer.encode(t, 64).unwrap(), ids[i][..n].to_vec(), "text {t:?}");
    }
}

#[test]
fn tiny_bert_hidden_states_pooler_and_logits_match_transformers() {
    let r = read_json(fixture("tiny_reference.json"));
    let device = Device::flex();
    let model = tiny_classifier(&device, false);
    let input = batch_from_fixture(&r, &device);
    let hidden = model.bert.encode(&input);
    let pooled = model.bert.pool(hidden.clone());
    let logits = model.forward(&input);
    let h = pollster::block_on(read_f32(hidden)).unwrap();
    let p = pollster::block_on(read_f32(pooled)).unwrap();
    let l = pollster::block_on(read_f32(logits)).unwrap();
    let dh = max_abs_diff(&h, &f32s(&r["last_hidden_state"]));
    let dp = max_abs_diff(&p, &f32s(&r["pooler_output"]));
    let dl = max_abs_diff(&l, &f32s(&r["logits"]));
    eprintln!("max |Δ| hidden {dh:.2e} pooler {dp:.2e} logits {dl:.2e}");
    assert!(dh < 1e-4 && dp < 1e-4 && dl < 1e-4);
}

#[test]
fn minilm_sentence_embeddings_match_transformers() {
    let r = read_json(fixture("minilm_embeddings.json"));
    let mut ckpt = load_dir(minilm_dir());
    let texts: Vec<String> = r["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let ref_ids = id_rows(&r["input_ids"]);
    let rows: Vec<Vec<u32>> = texts.iter().map(|t| ckpt.tokenizer.encode(t, 128).unwrap()).collect();
    assert_eq!(rows, ref_ids, "MiniLM token ids differ from transformers");
    let device = Device::flex();
    let emb = Embedder::new(&ckpt, &device).unwrap();
    let got = pollster::block_on(emb.embed_ids(&rows, 8, &device)).unwrap();
    let want = r["embeddings"].as_array().unwrap();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let w = f32s(w);
        let d = max_abs_diff(g, &w);
        let cos: f32 = g.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>()
            / (g.iter().map(|a| a * a).sum::<f32>().sqrt() * w.iter().map(|a| a * a).sum::<f32>().sqrt());
        eprintln!("{:?}: max |Δ| {d:.2e}, cosine {cos:.7}", texts[i]);
        assert!(d < 2e-4, "embedding {i} differs by {d}");
        assert!(cos >= 0.9999, "cosine {cos}");
    }
}

#[test]
fn one_adamw_step_matches_pytorch() {
    let r = read_json(fixture("tiny_train_step.json"));
    let device = Device::flex().autodiff();
    let mut model = tiny_classifier(&device, true);
    let input = batch_from_fixture(&r, &device);
    let labels: Vec<i64> = r["labels"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
    let n = labels.len();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device);
    let loss = cross_entropy(model.forward(&input), y);
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = clip_global_norm(&model, &mut grads, r["max_grad_norm"].as_f64().unwrap()).unwrap();
    let betas = f32s(&r["betas"]);
    let mut optim = AdamW::new(AdamWConfig {
        beta_1: betas[0],
        beta_2: betas[1],
        epsilon: r["eps"].as_f64().unwrap() as f32,
        weight_decay: r["weight_decay"].as_f64().unwrap() as f32,
    });
    model = optim.step(r["lr"].as_f64().unwrap(), model, grads);

    let loss_v = pollster::block_on(read_f32(loss.detach())).unwrap()[0];
    let norm_v = pollster::block_on(read_f32(norm)).unwrap()[0];
    let want_loss = r["loss_before"].as_f64().unwrap() as f32;
    let want_norm = r["grad_norm"].as_f64().unwrap() as f32;
    eprintln!("loss {loss_v} vs {want_loss}; grad norm {norm_v} vs {want_norm}");
    assert!((loss_v - want_loss).abs() < 1e-4);
    assert!((norm_v - want_norm).abs() < 1e-3 * want_norm.max(1.0));

    let eval_model = model.clone();
    let logits = pollster::block_on(read_f32(eval_model.forward(&input))).unwrap();
    let dl = max_abs_diff(&logits, &f32s(&r["logits_after"]));
    eprintln!("logits after the step: max |Δ| {dl:.2e}");
    assert!(dl < 1e-4);

    // Individual parameters after the step, by HF name.
    let files = pollster::block_on(burnish::models::export::export_classifier(&model, &tiny(), &["negative".into(), "neutral".into(), "positive".into()])).unwrap();
    let st_bytes = &files.iter().find(|(n, _)| n == "model.safetensors").unwrap().1;
    let st = safetensors::SafeTensors::deserialize(st_bytes).unwrap();
    for (name, spec) in r["params_after"].as_object().unwrap() {
        let view = st.tensor(name).unwrap_or_else(|_| panic!("exported file lacks {name}"));
        let data: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let index: Vec<usize> = spec["index"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let start = if index.len() == 2 { index[0] * view.shape()[1] + index[1] } else { index[0] };
        let after = f32s(&spec["values_after"]);
        let before = f32s(&spec["values_before"]);
        let got = &data[start..start + after.len()];
        let d = max_abs_diff(got, &after);
        eprintln!("{name}: max |Δ| {d:.2e} (moved by up to {:.2e})", max_abs_diff(&before, &after));
        assert!(d < 1e-4, "{name}: {got:?} vs {after:?}");
    }
}

/// Burnish's AdamW (engine/adamw.rs) runs as one fused pass per parameter on the CPU backend,
/// and as tensor ops elsewhere; both must give bit for bit what burn's own AdamW gives, and what
/// the formula spelled out here with burn's ops gives, over several steps, with weight decay and
/// a learning rate that changes per step.
#[test]
fn adamw_equals_burns_own_and_the_tensor_formula_bit_for_bit() {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;
    let device = Device::flex().autodiff();
    device.seed(11);
    let start_model = LinearConfig::new(37, 19).init(&device);
    let (b1, b2, eps, wd) = (0.9f32, 0.999f32, 1e-8f32, 0.01f32);
    let config = AdamWConfig { beta_1: b1, beta_2: b2, epsilon: eps, weight_decay: wd };
    let (mut fused, mut tensor_ops) = (AdamW::new(config), AdamW::new(config).without_fusion());
    let mut burns = burn::optim::AdamWConfig::new().with_weight_decay(wd).with_epsilon(eps).init();
    let (mut a, mut b, mut c) = (start_model.clone(), start_model.clone(), start_model);
    let mut w = a.weight.val().inner();
    let mut moments: Option<(Tensor<2>, Tensor<2>)> = None;
    let bits = |t: Tensor<2>| -> Vec<u32> { t.into_data().try_to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect() };
    let start = bits(w.clone());
    let fused_before = burnish::engine::adamw::fused_updates();
    for t in 1..=4i32 {
        let x = Tensor::<2>::random([5, 37], Distribution::Normal(0.0, 1.0), &device);
        let lr = 1e-2 * t as f64;
        let mut g = None;
        for (model, optim) in [(&mut a, 0), (&mut b, 1), (&mut c, 2)] {
            let raw = model.forward(x.clone()).powi_scalar(2).mean().backward();
            g = model.weight.val().grad(&raw);
            let grads = GradientsParams::from_grads(raw, &*model);
            let m = model.clone();
            *model = match optim {
                0 => fused.step(lr, m, grads),
                1 => tensor_ops.step(lr, m, grads),
                _ => burns.step(lr, m, grads),
            };
        }
        let g = g.expect("the weight has a gradient");
        let (m, v) = match moments.take() {
            None => (g.clone().mul_scalar(1.0 - b1), g.clone().square().mul_scalar(1.0 - b2)),
            Some((m, v)) => (m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1)), v.mul_scalar(b2).add(g.square().mul_scalar(1.0 - b2))),
        };
        let delta = m.clone().div_scalar(1f32 - b1.powi(t)).div(v.clone().div_scalar(1f32 - b2.powi(t)).sqrt().add_scalar(eps));
        w = w.mul_scalar(1.0 - lr * wd as f64) - delta.mul_scalar(lr);
        moments = Some((m, v));
        let want = bits(w.clone());
        for (what, model) in [("fused", &a), ("tensor ops", &b), ("burn's AdamW", &c)] {
            let got = bits(model.weight.val().inner());
            let differing = got.iter().zip(&want).filter(|(x, y)| x != y).count();
            assert_eq!(differing, 0, "step {t}: {what}: {differing} of {} weights differ from the tensor formula", want.len());
        }
        assert_eq!(bits(a.weight.val().inner()), bits(c.weight.val().inner()));
    }
    // Weight and bias, four steps each (other tests may add theirs meanwhile).
    assert!(burnish::engine::adamw::fused_updates() >= fused_before + 8, "the fused AdamW path did not run");
    let changed = bits(a.weight.val().inner()).iter().zip(&start).filter(|(x, y)| x != y).count();
    assert!(changed > start.len() / 2, "only {changed} of {} weights moved in four steps", start.len());
}
