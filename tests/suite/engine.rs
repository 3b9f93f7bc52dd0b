//! The engine's one step loop gives every objective the same loop features: gradient
//! accumulation, checkpoint/resume (bit for bit on the CPU backend), early stopping with the best
//! weights restored, and progress. The classifier's own cases live in resume.rs and
//! strategies.rs; here the masked-LM, causal-LM and multi-task objectives get the same checks, and
//! the recipe's one schema is held against its validation.

use burn::tensor::Device;
use burnish::engine::causal_lm::LmSession;
use burnish::engine::masked_lm::MlmSession;
use burnish::engine::multitask::{MultiTaskSession, TaskData};
use burnish::engine::{Objective, Run, Stepper};
use burnish::data::text::pack_texts;
use burnish::recipe::{EvalMetric, FIELDS, Kind, Recipe, Task, schema};

use super::causal::load_causal;
use super::common::*;

fn domain_lines() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("tests/data/domain-reviews.txt")).unwrap();
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn finish<O: Objective>(s: &mut Run<O>) {
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
}

/// Runs `make()` to the end, and again interrupted after `cut` steps, checkpointed and resumed
/// by `resume`; the two curves and evaluations must be equal to the bit.
fn resumes_bit_for_bit<O: Objective>(make: impl Fn() -> Run<O>, resume: impl Fn(&[u8]) -> Run<O>, cut: usize) -> (Run<O>, Run<O>) {
    let mut whole = make();
    finish(&mut whole);
    assert!(whole.total_steps > cut, "{} steps", whole.total_steps);
    let mut first = make();
    for _ in 0..cut {
        pollster::block_on(first.step()).unwrap();
    }
    let bytes = pollster::block_on(first.checkpoint()).unwrap();
    drop(first);
    let mut second = resume(&bytes);
    assert_eq!(second.step, cut);
    finish(&mut second);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&second.losses), bits(&whole.losses), "the same curve, bit for bit");
    let evals = |s: &Run<O>| serde_json::to_string(&s.evaluations()).unwrap();
    assert_eq!(evals(&second), evals(&whole), "the same held-out scores");
    (whole, second)
}

#[test]
fn a_masked_lm_run_accumulates_and_resumes_bit_for_bit() {
    let lines = domain_lines();
    let (train, eval) = burnish::data::text::split_texts(&lines, 0.25, 7);
    let r = Recipe { batch_size: 4, grad_accum: 2, max_len: 32, warmup_ratio: 0.2, ..Recipe::default() };
    let make = || MlmSession::new(&mut tiny(), &train, &eval, &r, 2, 5e-3, &Device::flex()).unwrap();
    let s = make();
    assert_eq!(s.total_steps, 2 * train.len().div_ceil(4).div_ceil(2), "two micro-batches per step");
    let (whole, _) = resumes_bit_for_bit(make, |b| MlmSession::resume(&mut tiny(), &train, &eval, b, &Device::flex()).unwrap(), 3);
    let evals = whole.evaluations();
    assert_eq!(evals.len(), 3, "before training and after each epoch");
    assert!(evals[2].loss < evals[0].loss, "{evals:?}");
    // Other text is refused.
    let e = MlmSession::resume(&mut tiny(), &train[1..], &eval, &pollster::block_on(make().checkpoint()).unwrap(), &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("not the data this checkpoint was trained on"), "{e}");
}

#[test]
fn a_multitask_run_accumulates_across_tasks_and_resumes_bit_for_bit() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let tasks = vec![
        TaskData { name: "a".into(), train: reviews(20, 0, false), eval: reviews(8, 500, false), labels: s(&["negative", "positive"]) },
        TaskData { name: "b".into(), train: reviews(12, 50, true), eval: reviews(8, 600, true), labels: s(&["negative", "positive"]) },
    ];
    // 5 + 3 batches of 4 per epoch; two per step: 4 steps per epoch.
    let r = Recipe { epochs: 2, lr: 1e-3, batch_size: 4, grad_accum: 2, max_len: 24, warmup_ratio: 0.0, ..Recipe::default() };
    let make = || MultiTaskSession::new(&mut tiny(), &tasks, r.clone(), &Device::flex()).unwrap();
    assert_eq!(make().total_steps, 8);
    let (whole, resumed) = resumes_bit_for_bit(make, |b| MultiTaskSession::resume(&mut tiny(), &tasks, b, &Device::flex()).unwrap(), 5);
    assert_eq!(whole.drawn, vec![10, 6], "every task's batches once per epoch");
    assert_eq!(resumed.drawn, whole.drawn);
    assert_eq!(whole.history.len(), 2);
}

#[test]
fn a_decoder_run_stops_early_and_keeps_its_best_weights() {
    let cm = load_causal(fixture("tiny-gpt2"));
    let rows = pack_texts(&cm.tokenizer, &domain_lines(), 16, Some(0)).unwrap();
    let (train, eval, _) = burnish::data::text::split_rows(&rows, 0.25, 3);
    // A rate far too high: the held-out loss gets worse, and patience 1 ends the run.
    let r = Recipe {
        task: Task::CausalLm,
        epochs: 6,
        lr: 0.3,
        batch_size: 4,
        max_len: 16,
        warmup_ratio: 0.0,
        eval_every: 2,
        early_stopping_patience: 1,
        early_stopping_metric: EvalMetric::Loss,
        ..Recipe::default()
    };
    let mut s = LmSession::new(&cm, train.clone(), eval.clone(), r.clone(), &Device::flex()).unwrap();
    let mut reports = Vec::new();
    while !s.finished() {
        reports.extend(pollster::block_on(s.run_for(1e9)).unwrap());
    }
    let stop = s.early_stop.clone().expect("early stopping ended the run");
    assert!(stop.best_step <= stop.stopped_at && stop.stopped_at <= s.total_steps);
    assert!(stop.early, "stopped before the planned {} steps (at {})", s.total_steps, stop.stopped_at);
    assert_eq!(reports.last().unwrap().early_stop.as_ref().map(|e| e.best_step), Some(stop.best_step));
    // The weights kept are the best evaluation's: scoring them again gives its loss.
    let now = pollster::block_on(s.evaluate()).unwrap();
    assert!((now.loss - stop.best_value).abs() < 1e-9, "{} vs {}", now.loss, stop.best_value);
    let evaluated: Vec<f64> = reports.iter().filter_map(|r| r.eval.as_ref().map(|e| e.loss)).collect();
    assert!(evaluated.iter().all(|&l| l >= stop.best_value), "{evaluated:?}");
    // A decoder has no classification metric to watch.
    let e = LmSession::new(&cm, train, eval, Recipe { early_stopping_metric: EvalMetric::MacroF1, ..r }, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("watches the held-out loss"), "{e}");
}

#[test]
fn the_schema_lists_every_recipe_field_and_validation_enforces_its_limits() {
    let defaults = serde_json::to_value(Recipe::default()).unwrap();
    let keys: Vec<&str> = defaults.as_object().unwrap().keys().map(String::as_str).collect();
    let listed: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    let (mut a, mut b) = (keys.clone(), listed.clone());
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "FIELDS and Recipe have the same fields");
    let sch = schema();
    assert_eq!(sch["fields"].as_array().unwrap().len(), FIELDS.len());
    assert_eq!(sch["fields"][0]["choices"], serde_json::json!(["text-classification", "masked-lm", "causal-lm", "instruct"]));
    // For every numeric limit: the bound itself passes when inclusive, a step beyond fails with
    // the field's name and the range in words.
    let with = |name: &str, v: f64| -> Result<(), String> {
        let mut j = defaults.clone();
        j[name] = if FIELDS.iter().find(|f| f.name == name).unwrap().kind == Kind::Integer { serde_json::json!(v as u64) } else { serde_json::json!(v) };
        let r: Recipe = serde_json::from_value(j).map_err(|e| e.to_string())?;
        r.validate(512).map_err(|e| e.to_string())
    };
    let mut checked = 0;
    for f in FIELDS.iter().filter(|f| matches!(f.kind, Kind::Integer | Kind::Number)) {
        let step = if f.kind == Kind::Integer { 1.0 } else { 1e-3 };
        for (bound, below) in [(f.min, true), (f.max, false)] {
            let (x, inclusive) = match bound {
                burnish::recipe::Bound::Incl(x) => (x, true),
                burnish::recipe::Bound::Excl(x) => (x, false),
                burnish::recipe::Bound::None => continue,
            };
            let outside = if below { x - step } else { x + step };
            if f.kind == Kind::Integer && outside < 0.0 {
                continue; // an unsigned field cannot hold it
            }
            let e = with(f.name, outside).expect_err(&format!("{} = {outside} passed", f.name));
            assert!(e.contains(f.label) && e.contains(&f.range()), "{}: {e}", f.name);
            if inclusive && f.name != "max_len" {
                with(f.name, x).unwrap_or_else(|e| panic!("{} = {x} refused: {e}", f.name));
            } else if !inclusive {
                assert!(with(f.name, x).is_err(), "{} = {x} (exclusive) passed", f.name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} limits checked");
}

#[test]
fn recipes_of_every_task_round_trip_through_json() {
    for task in Task::ALL {
        let r = Recipe { task, epochs: 2, lr: 1e-3, prompt_template: "Q: {prompt}\nA: ".into(), ..Recipe::default() };
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert!(text.contains(&format!("\"task\": \"{}\"", task.name())), "{text}");
        assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), r);
    }
    let e = serde_json::from_str::<Recipe>(r#"{"task": "translation"}"#).unwrap_err().to_string();
    assert!(e.contains("task \"translation\" is not supported (supported: text-classification, masked-lm, causal-lm, instruct)"), "{e}");
}

/// The CLI checkpoints and resumes every kind of run the same way (src/bin/burnish/runner.rs):
/// a masked-LM run and a multi-task run stopped after a few steps and resumed write the model
/// the uninterrupted run writes, to the byte.
#[test]
fn cli_masked_lm_and_multitask_runs_stop_and_resume_to_the_same_model() {
    let dir = std::env::temp_dir().join(format!("burnish-engine-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = fixture("tiny-bert");
    let a = dir.join("a.csv");
    let b = dir.join("b.csv");
    for (path, flip) in [(&a, false), (&b, true)] {
        let mut text = String::from("text,label\n");
        for e in reviews(24, if flip { 40 } else { 0 }, flip) {
            text += &format!("{},{}\n", e.text, e.label);
        }
        std::fs::write(path, text).unwrap();
    }
    let domain = root().join("tests/data/domain-reviews.txt");
    let cases: [(&str, Vec<String>, &str); 2] = [
        ("masked-lm", ["train", "--task", "masked-lm", "--train", domain.to_str().unwrap(), "--epochs", "2", "--lr", "5e-3", "--batch-size", "8", "--grad-accum", "2"].map(String::from).to_vec(), "model.safetensors"),
        (
            "multitask",
            ["multitask", "--task", &format!("a={}", a.display()), "--task", &format!("b={}", b.display()), "--epochs", "2", "--lr", "1e-3", "--batch-size", "4", "--grad-accum", "2"].map(String::from).to_vec(),
            "b/model.safetensors",
        ),
    ];
    for (name, base, file) in cases {
        let run = |extra: &[&str], out: &str| {
            let out = dir.join(format!("{name}-{out}"));
            let mut args: Vec<String> = base.clone();
            args.extend(["--model", model.to_str().unwrap(), "--max-len", "24"].map(String::from));
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(["--out".to_string(), out.display().to_string()]);
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_burnish")).args(&args).output().unwrap();
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
            (std::fs::read(out.join(file)).unwrap(), String::from_utf8_lossy(&o.stderr).to_string())
        };
        let ck = dir.join(format!("{name}.ckpt"));
        let (whole, _) = run(&[], "whole");
        let (part, log) = run(&["--checkpoint", ck.to_str().unwrap(), "--checkpoint-every", "2", "--stop-after", "3"], "part");
        assert!(log.contains("stopped after step 3 of"), "{name}: {log}");
        assert!(part != whole, "{name}: three steps are not the whole run");
        let (resumed, log) = run(&["--resume", ck.to_str().unwrap()], "resumed");
        assert!(log.contains("after step 3 with its recipe"), "{name}: {log}");
        assert!(resumed == whole, "{name}: the resumed run's model equals the uninterrupted run's");
    }
    std::fs::remove_dir_all(&dir).ok();
}
