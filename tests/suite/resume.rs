//! Checkpoint and resume: a run interrupted, saved, and resumed in a fresh session (new model,
//! new optimizer, new ids) continues bit for bit like the run that never stopped, on the CPU
//! backend, with dropout on, across an epoch boundary; for full fine-tuning with gradual
//! unfreezing, discriminative rates and gradient accumulation, for LoRA, and with early stopping.
//! The CLI does the same with --checkpoint / --stop-after / --resume.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use burnish::data::Example;
use burnish::models::bert::SequenceClassifier;
use burnish::engine::classifier::TrainSession;
use burnish::recipe::{EvalMetric, Recipe, Strategy};
use burnish::backend::read_f32;

use super::common::*;

fn data(n: usize, offset: usize) -> Vec<Example> {
    let words = [("good", "positive"), ("awful", "negative"), ("great", "positive"), ("dull", "negative"), ("fun", "positive"), ("bad", "negative")];
    (offset..offset + n)
        .map(|i| {
            let (w, l) = words[i % 6];
            Example { text: format!("the film number {i} was {w}"), label: l.into() }
        })
        .collect()
}

fn labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

/// Every float parameter's values in visiting order (ids differ between sessions).
fn weights(m: &SequenceClassifier) -> Vec<Vec<f32>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().flatten(0, D - 1));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0.into_iter().map(|t| pollster::block_on(read_f32(t)).unwrap()).collect()
}

fn run(r: &Recipe, interrupt_after: Option<usize>) -> (Vec<f64>, Vec<Vec<f32>>, usize) {
    let (train, eval) = (data(30, 0), data(8, 100));
    let dev = Device::flex();
    let mut s = TrainSession::new(&mut tiny(), &train, &eval, labels(), r.clone(), &dev).unwrap();
    if let Some(n) = interrupt_after {
        for _ in 0..n {
            pollster::block_on(s.step()).unwrap();
        }
        let bytes = pollster::block_on(s.checkpoint()).unwrap();
        drop(s);
        s = TrainSession::resume(&mut tiny(), &train, &eval, &bytes, &dev).unwrap();
        assert_eq!(s.step, n);
    }
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let m = s.classifier().unwrap().model;
    (s.losses.clone(), weights(&m), s.step)
}

fn base() -> Recipe {
    Recipe { epochs: 2, lr: 5e-3, batch_size: 4, max_len: 16, warmup_ratio: 0.2, seed: 11, eval_every: 2, ..Recipe::default() }
}

#[test]
fn a_resumed_run_matches_the_uninterrupted_one_bit_for_bit() {
    let cases = [
        ("full + gradual unfreezing + layer decay + accumulation", Recipe { gradual_unfreeze: true, unfreeze_every: 2, layer_lr_decay: 0.7, grad_accum: 2, ..base() }),
        ("lora", Recipe { strategy: Strategy::Lora, lora_rank: 4, lora_dropout: 0.2, ..base() }),
        ("early stopping", Recipe { early_stopping_patience: 2, early_stopping_metric: EvalMetric::Loss, lr: 2e-2, ..base() }),
    ];
    for (name, r) in cases {
        let (losses, w, steps) = run(&r, None);
        // Interrupted inside the first epoch, and again right at the epoch boundary.
        let per_epoch = 30usize.div_ceil(r.batch_size).div_ceil(r.grad_accum);
        for at in [3, per_epoch] {
            if at >= steps {
                continue;
            }
            let (l2, w2, s2) = run(&r, Some(at));
            assert_eq!(s2, steps, "{name}: same number of steps");
            assert_eq!(l2, losses, "{name}: interrupted at {at}, the loss curve continues identically");
            assert!(w2 == w, "{name}: interrupted at {at}, the final weights are bit-identical");
        }
    }
}

#[test]
fn resume_refuses_other_data_and_broken_files() {
    let (train, eval) = (data(30, 0), data(8, 100));
    let dev = Device::flex();
    let mut s = TrainSession::new(&mut tiny(), &train, &eval, labels(), base(), &dev).unwrap();
    pollster::block_on(s.step()).unwrap();
    let bytes = pollster::block_on(s.checkpoint()).unwrap();
    let err = |b: &[u8], t: &[Example]| TrainSession::resume(&mut tiny(), t, &eval, b, &dev).err().unwrap().to_string();
    assert!(err(&bytes, &data(30, 1)).contains("the training data is not the data this checkpoint was trained on"));
    assert!(err(&bytes[..bytes.len() / 2], &train).contains("cut short"));
    assert!(err(b"hello", &train).contains("not a Burnish training checkpoint"));
}

#[test]
fn cli_stop_and_resume_gives_the_same_model() {
    let dir = std::env::temp_dir().join(format!("burnish-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("train.csv");
    let mut text = String::from("text,label\n");
    for e in data(40, 0) {
        text += &format!("{},{}\n", e.text, e.label);
    }
    std::fs::write(&csv, text).unwrap();
    let model = fixture("tiny-bert");
    let run = |extra: &[&str], out: &str| {
        let mut args = vec!["train", "--model", model.to_str().unwrap(), "--train", csv.to_str().unwrap(), "--epochs", "2", "--batch-size", "4", "--max-len", "16", "--lr", "5e-3"];
        let out = dir.join(out);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_burnish")).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (std::fs::read(out.join("model.safetensors")).unwrap(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let ck = dir.join("run.ckpt");
    let (whole, _) = run(&[], "whole");
    let (part, log) = run(&["--checkpoint", ck.to_str().unwrap(), "--checkpoint-every", "2", "--stop-after", "5"], "part");
    assert!(log.contains("stopped after step 5 of 16; continue with --resume"), "{log}");
    assert_ne!(part, whole);
    let (resumed, log) = run(&["--resume", ck.to_str().unwrap(), "--checkpoint", ck.to_str().unwrap()], "resumed");
    assert!(log.contains("after step 5 with its recipe"), "{log}");
    assert!(resumed == whole, "the resumed run's model equals the uninterrupted run's");
    std::fs::remove_dir_all(&dir).ok();
}

/// The checkpoint's records are written from asynchronously read tensors (WebGPU in a browser
/// allows no other reads): the module record must be byte for byte what burn's own synchronous
/// writer gives (a LoRA classifier: base weights, adapters, head), and AdamW's state, written and
/// loaded back, must continue exactly as the optimizer it came from.
#[test]
fn asynchronously_written_records_equal_burns_own() {
    use burn::optim::GradientsParams;
    use burn::tensor::{Int, TensorData};
    use burnish::engine::adamw::{AdamW, AdamWConfig};
    use burnish::engine::classifier::with_lora;
    use burnish::engine::codec::module_record_bytes;
    use burnish::engine::cross_entropy;
    use burnish::infer::classify::build_classifier;
    use burnish::models::bert::BertInput;

    let dev = Device::flex().autodiff();
    let ckpt = tiny();
    let r = Recipe { strategy: Strategy::Lora, lora_rank: 4, ..base() };
    let (model, _) = build_classifier(&ckpt, &labels(), 3, &dev).unwrap();
    let mut model = with_lora(model, &r);
    let mut optim = AdamW::new(AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() });
    let rows: Vec<Vec<u32>> = (0..4).map(|i| (0..10).map(|j| 5 + ((i * 7 + j * 3) % 90) as u32).collect()).collect();
    let step = |model: SequenceClassifier, optim: &mut AdamW| {
        dev.seed(99); // the same dropout masks for every step compared
        let input = BertInput::from_rows(&rows, ckpt.tokenizer.pad_id, &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 1, 0], [4]), &dev);
        let loss = cross_entropy(model.forward(&input), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-2, model, grads)
    };
    for _ in 0..3 {
        model = step(model, &mut optim);
    }
    let sync_model = model.clone().into_record().into_bytes().unwrap().to_vec();
    let async_model = pollster::block_on(module_record_bytes(&model)).unwrap();
    assert!(sync_model.len() > 10_000);
    assert!(async_model == sync_model, "module record: {} vs {} bytes", async_model.len(), sync_model.len());
    let saved = pollster::block_on(optim.to_bytes()).unwrap();
    let mut loaded = AdamW::new(optim.config);
    loaded.load_bytes(&saved, &Device::flex()).unwrap();
    assert!(optim.len() >= 8 && loaded.len() == optim.len(), "{} states, {} loaded", optim.len(), loaded.len());
    // Written again, it holds the same tensors and step counts (the header's order may differ).
    let again = pollster::block_on(loaded.to_bytes()).unwrap();
    let (x, y) = (safetensors::SafeTensors::deserialize(&saved).unwrap(), safetensors::SafeTensors::deserialize(&again).unwrap());
    let mut names = x.names();
    names.sort();
    assert!(names.len() == 2 * optim.len() && names == { let mut n = y.names(); n.sort(); n });
    assert!(names.iter().all(|n| x.tensor(n).unwrap().data() == y.tensor(n).unwrap().data()), "the same moments");
    let meta = |b: &[u8]| safetensors::SafeTensors::read_metadata(b).unwrap().1.metadata().clone();
    assert!(meta(&saved) == meta(&again), "the same step counts");
    let (a, b) = (step(model.clone(), &mut optim), step(model, &mut loaded));
    assert!(weights(&a) == weights(&b), "the loaded state steps exactly as the original");
    assert!(loaded.load_bytes(b"nonsense", &Device::flex()).is_err());
}
