//! Data mixing: several training files drawn with configured weights (or size^(1/T)). The
//! batches' observed proportions match the configuration, a file with weight 0 is never drawn,
//! the mixture really steers what is learned (two files with opposite labels: the weights decide
//! which one the model follows), a mixed run resumes bit for bit, and the CLI mixes --train files.

use std::process::Command;

use burn::tensor::Device;
use burnish::data::{Example, Source};

use burnish::engine::classifier::{TrainSession, mixture};
use burnish::recipe::Recipe;

use super::common::*;

fn labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

fn sources(a: usize, b: usize, flip_b: bool) -> Vec<Source> {
    vec![
        Source { name: "a.csv".into(), examples: reviews(a, 0, false) },
        Source { name: "b.csv".into(), examples: reviews(b, 500, flip_b) },
    ]
}

fn session(src: &[Source], r: Recipe) -> TrainSession {
    TrainSession::with_sources(&mut tiny(), src, &reviews(32, 1000, false), labels(), r, &Device::flex()).unwrap()
}

fn finish(s: &mut TrainSession) {
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
}

#[test]
fn mixture_probabilities_follow_weights_or_temperature() {
    let files = vec![("big.csv".to_string(), 900), ("small.csv".to_string(), 100)];
    let p = |r: Recipe| mixture(&files, &r).unwrap().iter().map(|m| m.probability).collect::<Vec<_>>();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    // T = 1: by size. T = 2: ∝ √rows = 30 : 10. Weights: normalised.
    assert!(close(&p(Recipe::default()), &[0.9, 0.1]));
    assert!(close(&p(Recipe { mix_temperature: 2.0, ..Recipe::default() }), &[0.75, 0.25]));
    assert!(close(&p(Recipe { mix_weights: vec![1.0, 3.0], ..Recipe::default() }), &[0.25, 0.75]));
    let m = mixture(&files, &Recipe { mix_weights: vec![1.0, 1.0], ..Recipe::default() }).unwrap();
    // An epoch is 1000 examples: 500 from each; the small file's rows are seen 5 times.
    assert!((m[1].per_epoch - 500.0).abs() < 1e-9 && (m[1].passes - 5.0).abs() < 1e-9 && (m[0].passes - 500.0 / 900.0).abs() < 1e-9);
    let e = mixture(&files, &Recipe { mix_weights: vec![1.0], ..Recipe::default() }).unwrap_err().to_string();
    assert!(e.contains("1 mixing weights for 2 training files") && e.contains("big.csv, small.csv"), "{e}");
    let e = Recipe { mix_weights: vec![1.0, -1.0], ..Recipe::default() }.validate(512).unwrap_err().to_string();
    assert!(e.contains("mixing weights must be numbers ≥ 0"), "{e}");
    let e = Recipe { mix_temperature: 0.0, ..Recipe::default() }.validate(512).unwrap_err().to_string();
    assert!(e.contains("mixing temperature"), "{e}");
}

#[test]
fn observed_batch_proportions_match_the_configuration() {
    // 90 + 30 rows, 4 epochs of 120 examples = 480 draws.
    let base = Recipe { epochs: 4, lr: 1e-4, batch_size: 8, max_len: 16, seed: 5, ..Recipe::default() };
    let cases: [(Recipe, f64); 4] = [
        (base.clone(), 0.25),                                                     // by size: 30 / 120
        (Recipe { mix_weights: vec![1.0, 1.0], ..base.clone() }, 0.5),            // equal weights
        (Recipe { mix_weights: vec![1.0, 3.0], ..base.clone() }, 0.75),           // the small file up-sampled
        (Recipe { mix_temperature: 100.0, ..base.clone() }, 30f64.powf(0.01) / (90f64.powf(0.01) + 30f64.powf(0.01))),
    ];
    for (r, want) in cases {
        let mut s = session(&sources(90, 30, false), r.clone());
        finish(&mut s);
        let total: usize = s.drawn.iter().sum();
        assert_eq!(total, 480, "every example of every step is counted once");
        let got = s.drawn[1] as f64 / total as f64;
        // Binomial standard deviation for 480 draws is at most 0.023: allow 4 of them.
        eprintln!("weights {:?} T {}: b.csv share {got:.3} (configured {want:.3})", r.mix_weights, r.mix_temperature);
        assert!((got - want).abs() < 0.09, "share of b.csv {got} vs configured {want} ({:?})", s.drawn);
        assert!((s.mixture()[1].probability - want).abs() < 1e-12);
    }
    // Weight 0: never drawn.
    let mut s = session(&sources(90, 30, false), Recipe { mix_weights: vec![1.0, 0.0], ..base.clone() });
    finish(&mut s);
    assert_eq!(s.drawn, vec![480, 0]);
}

#[test]
fn the_weights_decide_which_file_the_model_learns() {
    // b.csv says the opposite of a.csv for the same words: the model follows whichever file
    // the mixture draws from.
    let r = Recipe { epochs: 8, lr: 3e-3, batch_size: 8, max_len: 32, warmup_ratio: 0.1, seed: 3, ..Recipe::default() };
    let mut follow_a = session(&sources(64, 64, true), Recipe { mix_weights: vec![1.0, 0.0], ..r.clone() });
    finish(&mut follow_a);
    let mut follow_b = session(&sources(64, 64, true), Recipe { mix_weights: vec![0.0, 1.0], ..r.clone() });
    finish(&mut follow_b);
    let acc_a = pollster::block_on(follow_a.evaluate()).unwrap().accuracy;
    let acc_b = pollster::block_on(follow_b.evaluate()).unwrap().accuracy;
    eprintln!("accuracy on a.csv's labelling: weights [1, 0] {acc_a:.3}, weights [0, 1] {acc_b:.3}");
    assert!(acc_a >= 0.9, "following a.csv: {acc_a}");
    assert!(acc_b <= 0.1, "following b.csv (flipped labels): {acc_b}");
}

#[test]
fn a_mixed_run_resumes_bit_for_bit() {
    let r = Recipe { epochs: 2, lr: 1e-3, batch_size: 4, max_len: 16, seed: 9, mix_weights: vec![1.0, 2.0], eval_every: 7, ..Recipe::default() };
    let src = sources(20, 10, false);
    let mut whole = session(&src, r.clone());
    finish(&mut whole);
    let mut first = session(&src, r.clone());
    for _ in 0..5 {
        pollster::block_on(first.step()).unwrap();
    }
    let bytes = pollster::block_on(first.checkpoint()).unwrap();
    drop(first);
    let eval = reviews(32, 1000, false);
    let mut resumed = TrainSession::resume_sources(&mut tiny(), &src, &eval, &bytes, &Device::flex()).unwrap();
    finish(&mut resumed);
    assert_eq!(resumed.losses.len(), whole.losses.len());
    assert!(resumed.losses.iter().zip(&whole.losses).all(|(a, b)| a.to_bits() == b.to_bits()), "{:?} vs {:?}", resumed.losses, whole.losses);
    assert_eq!(resumed.drawn, whole.drawn);
    // Resuming with the files in another split is refused.
    let other = sources(22, 8, false);
    let e = TrainSession::resume_sources(&mut tiny(), &other, &eval, &bytes, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("not the data this checkpoint was trained on"), "{e}");
}

#[test]
fn cli_mixes_training_files() {
    let dir = std::env::temp_dir().join(format!("burnish-mix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, rows: Vec<Example>| {
        let mut s = String::from("text,label\n");
        for e in rows {
            s += &format!("{},{}\n", e.text, e.label);
        }
        std::fs::write(dir.join(name), s).unwrap();
        dir.join(name).to_str().unwrap().to_string()
    };
    let a = write("a.csv", reviews(40, 0, false));
    let b = write("b.csv", reviews(20, 500, false));
    let eval = write("eval.csv", reviews(16, 1000, false));
    let model = fixture("tiny-bert");
    let out = dir.join("out");
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "--model", model.to_str().unwrap(), "--train", &a, "--train", &b, "--eval", &eval, "--epochs", "3", "--batch-size", "4", "--max-len", "16", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_burnish")).args(&args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (ok, stdout, stderr) = run(&["--mix-weights", "1,3"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("mixture: b.csv (20 rows): p = 0.750"), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(m["train_examples"], 60);
    let files = m["mixture"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1]["name"], "b.csv");
    let drawn: Vec<u64> = m["mixture"]["drawn"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(drawn.iter().sum::<u64>(), 180);
    let share = drawn[1] as f64 / 180.0;
    assert!((share - 0.75).abs() < 0.13, "b.csv share {share}");
    // The recipe written records the weights; the wrong number of weights is refused by name.
    let recipe: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("recipe.json")).unwrap()).unwrap();
    assert_eq!(recipe["mix_weights"], serde_json::json!([1.0, 3.0]));
    let (ok, _, stderr) = run(&["--mix-weights", "1,2,3"]);
    assert!(!ok);
    assert!(stderr.contains("3 mixing weights for 2 training files"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cli_compare_writes_the_strategy_table() {
    let dir = std::env::temp_dir().join(format!("burnish-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("text,label\n");
    for e in reviews(40, 0, false) {
        csv += &format!("{},{}\n", e.text, e.label);
    }
    std::fs::write(dir.join("train.csv"), csv).unwrap();
    let out = dir.join("cmp");
    let model = fixture("tiny-bert");
    let compare = |strategies: &str| {
        Command::new(env!("CARGO_BIN_EXE_burnish"))
            .args(["compare", "--model", model.to_str().unwrap(), "--train", dir.join("train.csv").to_str().unwrap(), "--epochs", "2", "--batch-size", "8", "--max-len", "16"])
            .args(["--strategies", strategies, "--title", "tiny reviews", "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = compare("full,head,lora,gradual");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), md);
    assert!(md.starts_with("### tiny reviews"), "{md}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    let get = |name: &str| results.iter().find(|r| r["strategy"] == name).unwrap_or_else(|| panic!("no {name} row"));
    // hidden 32, 2 layers, 2 labels: the head is the pooler (32·32 + 32) and classifier (32·2 + 2);
    // LoRA rank 8 on query and value adds 2 · 2 layers · 8 · (32 + 32).
    let head = 32 * 32 + 32 + 32 * 2 + 2;
    assert_eq!(get("head")["trainable_parameters"], head);
    assert_eq!(get("lora")["trainable_parameters"], head + 2 * 2 * 8 * 64);
    assert_eq!(get("full")["trainable_parameters"], get("full")["total_parameters"]);
    // Gradual unfreezing starts with the head and ends with everything.
    assert_eq!(get("gradual")["trainable_parameters_at_start"], head);
    assert_eq!(get("gradual")["trainable_parameters"], get("full")["total_parameters"]);
    for r in results {
        let acc = r["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert_eq!(r["steps"], 8, "the same budget for every strategy");
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "measured peak memory: {r}");
        assert!(r["seconds_per_step"].as_f64().unwrap() > 0.0);
        let row = format!("| {} |", r["strategy"].as_str().unwrap());
        assert!(md.contains(&row), "{row} missing from {md}");
    }
    let o = compare("full,everything");
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("unknown strategy preset \"everything\" (known: full, head, top2, gradual, discriminative, lora)"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
