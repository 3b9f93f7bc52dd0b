//! Fine-tuning strategies do what they say, measured on the weights: frozen groups are
//! bit-identical after training and unfrozen ones moved; gradual unfreezing grows the set of
//! moving groups on schedule; discriminative learning rates scale each layer's first AdamW
//! update by `decay^depth`; the cosine and constant schedules follow HF's formulas.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor};
use burnish::data::Example;
use burnish::models::bert::SequenceClassifier;
use burnish::engine::classifier::{TrainSession, layer_groups};
use burnish::engine::memory::planned_parameters;
use burnish::engine::param_ids;
use burnish::recipe::{LoraTarget, Recipe, Schedule, Strategy, constant_schedule, cosine_schedule};
use burnish::backend::read_f32;

use super::common::*;

fn data(n: usize, offset: usize) -> Vec<Example> {
    let pos = ["good", "great", "fun"];
    let neg = ["bad", "awful", "dull"];
    (offset..offset + n)
        .map(|i| {
            let p = i % 2 == 0;
            let w = if p { pos[i % 3] } else { neg[i % 3] };
            Example { text: format!("the film was {w}"), label: if p { "positive" } else { "negative" }.into() }
        })
        .collect()
}

fn session(r: Recipe) -> TrainSession {
    let mut ckpt = tiny();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    TrainSession::new(&mut ckpt, &data(32, 0), &data(8, 100), labels, r, &Device::flex()).unwrap()
}

fn recipe() -> Recipe {
    Recipe { epochs: 1, lr: 1e-2, batch_size: 8, max_len: 16, warmup_ratio: 0.0, weight_decay: 0.01, seed: 5, ..Recipe::default() }
}

struct Collect(Vec<(ParamId, Tensor<1>)>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push((p.id, p.val().flatten(0, D - 1)));
    }
}

fn values(m: &SequenceClassifier) -> HashMap<ParamId, Vec<f32>> {
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0.into_iter().map(|(id, t)| (id, pollster::block_on(read_f32(t)).unwrap())).collect()
}

/// For each layer group (top first): (name, moved, mean |Δ| over its parameters).
fn moved(before: &SequenceClassifier, after: &SequenceClassifier) -> Vec<(String, bool, f64)> {
    let (a, b) = (values(before), values(after));
    layer_groups(before, 1.0)
        .into_iter()
        .map(|(g, ids)| {
            let (mut changed, mut sum, mut n) = (false, 0.0, 0usize);
            for id in ids {
                let (x, y) = (&a[&id], &b[&id]);
                changed |= x != y;
                sum += x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64).sum::<f64>();
                n += x.len();
            }
            (g.name, changed, sum / n as f64)
        })
        .collect()
}

fn steps(s: &mut TrainSession, n: usize) {
    for _ in 0..n {
        pollster::block_on(s.step()).unwrap();
    }
}

fn model(s: &TrainSession) -> SequenceClassifier {
    s.classifier().unwrap().model
}

fn changed(groups: &[(String, bool, f64)]) -> Vec<&str> {
    groups.iter().filter(|g| g.1).map(|g| g.0.as_str()).collect()
}

#[test]
fn freezing_keeps_frozen_groups_bit_identical() {
    // tiny-bert has 2 encoder layers: groups are head, layer 1, layer 0, embeddings.
    let cases = [
        (Recipe { strategy: Strategy::Head, ..recipe() }, vec!["head (pooler + classifier)"]),
        (Recipe { strategy: Strategy::Top, top_layers: 1, ..recipe() }, vec!["head (pooler + classifier)", "encoder layer 1"]),
        (Recipe { freeze_embeddings: true, ..recipe() }, vec!["head (pooler + classifier)", "encoder layer 1", "encoder layer 0"]),
        (recipe(), vec!["head (pooler + classifier)", "encoder layer 1", "encoder layer 0", "embeddings"]),
    ];
    for (r, want) in cases {
        let mut s = session(r.clone());
        let before = model(&s);
        let t = s.trainable();
        assert_eq!(t.training, want, "{:?}", r.strategy);
        steps(&mut s, 3);
        assert_eq!(changed(&moved(&before, &model(&s))), want, "{:?} freeze_embeddings={}", r.strategy, r.freeze_embeddings);
        let groups = s.layer_groups();
        let expect: usize = groups.iter().filter(|g| want.contains(&g.name.as_str())).map(|g| g.parameters).sum();
        assert_eq!(t.trainable_parameters, expect);
        assert_eq!(t.total_parameters, groups.iter().map(|g| g.parameters).sum::<usize>());
    }
}

#[test]
fn gradual_unfreezing_grows_the_moving_set_on_schedule() {
    let mut s = session(Recipe { gradual_unfreeze: true, unfreeze_every: 2, ..recipe() });
    let mut prev = model(&s);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let rep = pollster::block_on(s.step()).unwrap();
        let m = model(&s);
        seen.push((rep.step, changed(&moved(&prev, &m)).len(), rep.unfrozen.map(|t| t.training.len())));
        prev = m;
    }
    // Steps 1-2: head only; step 3 unfreezes layer 1; (4 steps per epoch, so layer 0 would come at step 5).
    assert_eq!(seen, vec![(1, 1, None), (2, 1, None), (3, 2, Some(2)), (4, 2, None)]);
    // Per epoch by default: the second epoch adds one group.
    let mut s = session(Recipe { gradual_unfreeze: true, epochs: 2, ..recipe() });
    steps(&mut s, 4);
    assert_eq!(s.trainable().training.len(), 1);
    let rep = pollster::block_on(s.step()).unwrap();
    assert_eq!(rep.unfrozen.unwrap().training, vec!["head (pooler + classifier)", "encoder layer 1"]);
}

#[test]
fn discriminative_learning_rates_scale_each_layers_update() {
    // First AdamW step without weight decay: every update is ±lr (m/√v = ±1), so the mean |Δ| of
    // a layer is its learning rate.
    let r = Recipe { layer_lr_decay: 0.5, weight_decay: 0.0, schedule: Schedule::Constant, lr: 1e-3, ..recipe() };
    let mut s = session(r);
    let before = model(&s);
    let factors: Vec<f64> = s.layer_groups().iter().map(|g| g.lr_factor).collect();
    assert_eq!(factors, vec![1.0, 0.5, 0.25, 0.125]);
    steps(&mut s, 1);
    let g = moved(&before, &model(&s));
    let (top, below) = (g[1].2, g[2].2);
    eprintln!("mean |Δ|: {g:?}");
    assert!((top / 5e-4 - 1.0).abs() < 0.05, "layer 1 moved {top}, expected 5e-4");
    assert!((below / 2.5e-4 - 1.0).abs() < 0.05, "layer 0 moved {below}, expected 2.5e-4");
    assert!((top / below - 2.0).abs() < 0.1);
}

#[test]
fn cosine_and_constant_schedules_follow_hf() {
    assert_eq!(cosine_schedule(1.0, 5, 10, 110), 0.5);
    assert_eq!(cosine_schedule(1.0, 10, 10, 110), 1.0);
    assert!((cosine_schedule(1.0, 60, 10, 110) - 0.5).abs() < 1e-12);
    assert!(cosine_schedule(1.0, 110, 10, 110).abs() < 1e-12);
    assert_eq!(constant_schedule(2.0, 3, 4), 1.5);
    assert_eq!(constant_schedule(2.0, 50, 4), 2.0);
    let mut s = session(Recipe { schedule: Schedule::Cosine, warmup_ratio: 0.0, epochs: 2, ..recipe() });
    let lrs: Vec<f64> = (0..8).map(|_| pollster::block_on(s.step()).unwrap().lr).collect();
    assert_eq!(lrs[0], 1e-2);
    assert!((lrs[4] - 5e-3).abs() < 1e-12, "{lrs:?}");
}

/// tiny-bert with dropout off, so that runs differing only in batching are comparable.
fn tiny_without_dropout() -> burnish::Checkpoint {
    let dir = fixture("tiny-bert");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    cfg["hidden_dropout_prob"] = 0.0.into();
    cfg["attention_probs_dropout_prob"] = 0.0.into();
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    burnish::Checkpoint::from_bytes(&serde_json::to_vec(&cfg).unwrap(), &read("tokenizer.json"), read("model.safetensors")).unwrap()
}

#[test]
fn gradient_accumulation_equals_one_big_batch() {
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let run = |batch: usize, accum: usize| {
        let mut ckpt = tiny_without_dropout();
        let r = Recipe { batch_size: batch, grad_accum: accum, ..recipe() };
        let mut s = TrainSession::new(&mut ckpt, &data(32, 0), &data(8, 100), labels.clone(), r, &Device::flex()).unwrap();
        assert_eq!(s.total_steps, 32 / (batch * accum));
        let rep = pollster::block_on(s.step()).unwrap();
        // In visit order: parameter ids differ between separately built models.
        let mut c = Collect(Vec::new());
        model(&s).visit(&mut c);
        let vals: Vec<Vec<f32>> = c.0.into_iter().map(|(_, t)| pollster::block_on(read_f32(t)).unwrap()).collect();
        (rep.loss, vals)
    };
    let (loss_a, a) = run(8, 1);
    let (loss_b, b) = run(4, 2);
    let (loss_c, c) = run(8, 2); // a different effective batch: 16 examples
    assert!((loss_a - loss_b).abs() < 1e-5, "{loss_a} vs {loss_b}");
    // Mean |Δ| over all weights: AdamW's first step is ±lr wherever the gradient is clearly
    // non-zero, so where a gradient is near zero (|g| ~ eps) float rounding can flip a few
    // single elements; the mean stays tiny when the accumulated gradient is the big batch's.
    let mean_diff = |x: &Vec<Vec<f32>>, y: &Vec<Vec<f32>>| {
        assert_eq!(x.len(), y.len());
        let (sum, n) = x.iter().zip(y).fold((0f64, 0usize), |(s, n), (v, w)| {
            (s + v.iter().zip(w).map(|(p, q)| (p - q).abs() as f64).sum::<f64>(), n + v.len())
        });
        sum / n as f64
    };
    let (same, other) = (mean_diff(&a, &b), mean_diff(&a, &c));
    eprintln!("mean |Δ| accumulated vs one batch: {same:e}; batch 8 vs effective 16: {other:e}");
    assert!(same * 100.0 < other, "accumulated update differs: {same:e} vs {other:e} for a different batch");
    assert!((loss_a - loss_c).abs() > 1e-6);
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    use burnish::recipe::EvalMetric;
    // A learning rate too small to change any prediction: accuracy never improves after the
    // first evaluation, so patience 2 stops at step 3 and keeps step 1's weights.
    let r = Recipe { lr: 1e-9, eval_every: 1, early_stopping_patience: 2, early_stopping_metric: EvalMetric::Accuracy, epochs: 3, ..recipe() };
    let mut s = session(r);
    pollster::block_on(s.step()).unwrap();
    let after_first = values(&model(&s));
    let mut last = None;
    while !s.is_done() {
        last = Some(pollster::block_on(s.step()).unwrap());
    }
    let rep = last.unwrap();
    assert_eq!(rep.step, 3);
    assert!(rep.done);
    let stop = rep.early_stop.expect("early stop reported");
    assert!(stop.early);
    assert_eq!((stop.stopped_at, stop.best_step), (3, 1));
    assert_eq!(values(&model(&s)), after_first, "the best (step 1) weights are restored");
    assert!(s.step < s.total_steps);
}

fn adapter_ids(m: &SequenceClassifier, targets: &[LoraTarget]) -> Vec<ParamId> {
    let mut ids = Vec::new();
    for layer in &m.bert.layers {
        for t in targets {
            let ad = layer.linear(*t).weight.adapter().expect("adapter attached");
            ids.extend([ad.a.id, ad.b.id]);
        }
    }
    ids
}

fn safetensors_f32(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
    (t.shape().to_vec(), t.data().chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[test]
fn lora_trains_only_adapters_and_head_and_exports_merged_and_peft() {
    let targets = vec![LoraTarget::Query, LoraTarget::Value, LoraTarget::Output];
    let r = Recipe { strategy: Strategy::Lora, lora_rank: 4, lora_alpha: 8.0, lora_dropout: 0.1, lora_targets: targets.clone(), ..recipe() };
    let mut s = session(r.clone());
    let before = model(&s);
    // B starts at zero: the adapted model computes exactly what the base model does.
    let mut ckpt = tiny();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let (base, _) = burnish::infer::classify::build_classifier(&ckpt, &labels, r.seed, &Device::flex()).unwrap();
    let rows = vec![ckpt.tokenizer.encode("the film was good", 16).unwrap()];
    let input = burnish::models::bert::BertInput::from_rows(&rows, ckpt.tokenizer.pad_id, &Device::flex());
    let (y0, y1) = (pollster::block_on(read_f32(base.forward(&input))).unwrap(), pollster::block_on(read_f32(before.forward(&input))).unwrap());
    assert_eq!(y0, y1);

    // Trainable: the head plus r·(in + out) per adapted linear, in each of the 2 layers.
    let (h, i) = (ckpt.config.hidden_size, ckpt.config.intermediate_size);
    let head = h * h + h + 2 * h + 2;
    let adapters = 2 * 4 * ((h + h) + (h + h) + (i + h));
    let t = s.trainable();
    assert_eq!(t.trainable_parameters, head + adapters);
    assert_eq!(planned_parameters(&ckpt.config, &r, 2), (t.total_parameters, t.trainable_parameters));

    steps(&mut s, 3);
    let after = model(&s);
    let (a, b) = (values(&before), values(&after));
    let lora = adapter_ids(&before, &targets);
    assert_eq!(lora, adapter_ids(&after, &targets), "adapter ids are stable");
    let mut head_ids = param_ids(&before.classifier);
    head_ids.extend(param_ids(&before.bert.pooler));
    for (id, x) in &a {
        let moved = x != &b[id];
        if lora.contains(id) || head_ids.contains(id) {
            assert!(moved, "a trainable tensor did not move");
        } else {
            assert!(!moved, "a frozen pretrained tensor changed");
        }
    }

    // The merged export is base + (alpha/rank)·A·B, in HF's [out, in] layout.
    let files: HashMap<String, Vec<u8>> = pollster::block_on(s.export(&ckpt, "tiny-bert")).unwrap().into_iter().collect();
    let scale = 8.0 / 4.0;
    for (li, layer) in before.bert.layers.iter().enumerate() {
        for t in &targets {
            let lin = layer.linear(*t);
            let w0 = pollster::block_on(read_f32(lin.weight.base())).unwrap(); // [in, out]
            let [d_in, d_out] = lin.weight.base().dims();
            let ad = after.bert.layers[li].linear(*t).weight.adapter().unwrap().clone();
            let (av, bv) = (pollster::block_on(read_f32(ad.a.val())).unwrap(), pollster::block_on(read_f32(ad.b.val())).unwrap());
            let name = format!("bert.encoder.layer.{li}.{}", burnish::hf::config::EncoderArch::Bert.module(t.part()));
            let (shape, merged) = safetensors_f32(&files["model.safetensors"], &format!("{name}.weight"));
            assert_eq!(shape, vec![d_out, d_in]);
            let mut worst = 0f32;
            for o in 0..d_out {
                for k in 0..d_in {
                    let delta: f32 = (0..4).map(|j| av[k * 4 + j] * bv[j * d_out + o]).sum::<f32>() * scale;
                    worst = worst.max((merged[o * d_in + k] - (w0[k * d_out + o] + delta)).abs());
                }
            }
            assert!(worst < 1e-5, "{name}: merged differs from base + scale·A·B by {worst}");
            // The PEFT tensors are the factors, transposed to PEFT's layout.
            let (sa, pa) = safetensors_f32(&files["peft/adapter_model.safetensors"], &format!("base_model.model.{name}.lora_A.weight"));
            let (sb, pb) = safetensors_f32(&files["peft/adapter_model.safetensors"], &format!("base_model.model.{name}.lora_B.weight"));
            assert_eq!((sa, sb), (vec![4, d_in], vec![d_out, 4]));
            assert_eq!(pa[3 * d_in + 1], av[4 + 3]);
            assert_eq!(pb[2 * 4 + 1], bv[d_out + 2]);
            assert!(pb.iter().any(|&x| x != 0.0), "B was trained");
        }
    }
    let st = safetensors::SafeTensors::deserialize(&files["peft/adapter_model.safetensors"]).unwrap();
    assert_eq!(st.len(), 2 * 3 * 2 + 4, "12 factors + pooler and classifier weight/bias");
    let cfg: serde_json::Value = serde_json::from_slice(&files["peft/adapter_config.json"]).unwrap();
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["target_modules"], r".*\.layer\.\d+\.(attention\.self\.query|attention\.self\.value|output\.dense)");
}

#[test]
fn planned_parameter_counts_match_the_built_model() {
    let cases = [
        Recipe { strategy: Strategy::Head, ..recipe() },
        Recipe { strategy: Strategy::Top, top_layers: 1, ..recipe() },
        Recipe { freeze_embeddings: true, ..recipe() },
        recipe(),
        Recipe { strategy: Strategy::Lora, lora_targets: LoraTarget::ALL.to_vec(), ..recipe() },
    ];
    let cfg = tiny().config;
    for r in cases {
        let t = session(r.clone()).trainable();
        assert_eq!(planned_parameters(&cfg, &r, 2), (t.total_parameters, t.trainable_parameters), "{:?}", r.strategy);
    }
}

#[test]
fn lora_recipe_errors_are_specific() {
    let mut ckpt = tiny();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let mut err = |r: Recipe| TrainSession::new(&mut ckpt, &data(8, 0), &[], labels.clone(), r, &Device::flex()).err().unwrap().to_string();
    let lora = Recipe { strategy: Strategy::Lora, ..recipe() };
    assert!(err(Recipe { lora_rank: 0, ..lora.clone() }).contains("LoRA rank must be between 1 and 256 (got 0)"));
    assert!(err(Recipe { lora_targets: vec![], ..lora.clone() }).contains("LoRA needs at least one target module"));
    assert!(err(Recipe { gradual_unfreeze: true, ..lora.clone() }).contains("gradual unfreezing does not apply to LoRA"));
    assert!(err(Recipe { lora_dropout: 1.0, ..lora }).contains("LoRA dropout must be in [0, 1)"));
}
