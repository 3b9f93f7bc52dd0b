//! CLI smoke tests: train → predict → eval on the tiny model through the real binary, plus
//! embed, bench, and error messages on bad input (exit code 1, message on stderr).



use std::path::Path;
use std::process::Command;

use super::common::*;

fn burnish(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_burnish")).args(args).output().expect("run burnish");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn write_csv(path: &Path, n: usize, offset: usize) {
    let pos = ["good", "great", "excellent", "wonderful"];
    let neg = ["bad", "awful", "terrible", "boring"];
    let mut s = String::from("review,sentiment\n");
    for i in offset..offset + n {
        let p = i % 2 == 0;
        let w = if p { pos[(i / 2) % 4] } else { neg[(i / 2) % 4] };
        s += &format!("\"the film, honestly, was {w}\",{}\n", if p { "pos" } else { "neg" });
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn train_predict_eval_round_trip() {
    let dir = std::env::temp_dir().join(format!("burnish-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    write_csv(&train, 48, 0);
    write_csv(&test, 16, 100);
    let out = dir.join("model");
    let model = fixture("tiny-bert");
    let (ok, stdout, stderr) = burnish(&[
        "train", "--model", model.to_str().unwrap(), "--train", train.to_str().unwrap(), "--eval", test.to_str().unwrap(),
        "--text-column", "review", "--label-column", "sentiment", "--epochs", "20", "--lr", "3e-3", "--batch-size", "8",
        "--max-len", "32", "--out", out.to_str().unwrap(),
    ]);
    assert!(ok, "train failed: {stderr}");
    assert!(stderr.contains("step 120/120"), "progress on stderr: {stderr}");
    let metrics: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(metrics["history"].as_array().unwrap().len(), 20);
    assert!(metrics["accuracy"].as_f64().unwrap() >= 0.9, "{metrics}");
    assert_eq!(metrics["labels"], serde_json::json!(["neg", "pos"]));
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "model.safetensors", "metrics.json", "recipe.json"] {
        assert!(out.join(f).exists(), "{f} not written");
    }

    let (ok, stdout, stderr) = burnish(&["predict", "--model", out.to_str().unwrap(), "--text", "the film was great", "--text", "the film was awful"]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "pos");
    assert_eq!(lines[1]["label"], "neg");
    assert_eq!(lines[0]["probabilities"].as_array().unwrap().len(), 2);

    let (ok, stdout, stderr) = burnish(&["eval", "--model", out.to_str().unwrap(), "--data", test.to_str().unwrap(), "--text-column", "review", "--label-column", "sentiment"]);
    assert!(ok, "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(m["accuracy"], metrics["accuracy"]);

    // The recipe written by train is accepted back with --recipe.
    let (ok, _, stderr) = burnish(&[
        "train", "--model", model.to_str().unwrap(), "--train", train.to_str().unwrap(), "--recipe",
        out.join("recipe.json").to_str().unwrap(), "--epochs", "1", "--out", dir.join("again").to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn embed_and_bench_print_json() {
    let model = fixture("tiny-bert");
    let (ok, stdout, stderr) = burnish(&["embed", "--model", model.to_str().unwrap(), "--text", "hello there", "--text", "好"]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let v: Vec<f64> = lines[0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(v.len(), 32);
    assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-4, "L2-normalised");

    let (ok, stdout, stderr) = burnish(&["bench", "--model", model.to_str().unwrap(), "--steps", "3", "--batch-size", "4", "--max-len", "16"]);
    assert!(ok, "{stderr}");
    let b: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(b["steps"], 3);
    assert!(b["median_step_s"].as_f64().unwrap() > 0.0);
    assert!(b["tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_input_gets_specific_messages() {
    let model = fixture("tiny-bert");
    let m = model.to_str().unwrap();
    let data = root().join("tests/data");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["train".into(), "--model".into(), m.into(), "--train".into(), data.join("ints.tsv").display().to_string(), "--out".into(), "/tmp/x".into()],
         "no text column \"text\"; columns found: \"sentence\", \"sentiment\""),
        (vec!["train".into(), "--model".into(), m.into(), "--train".into(), data.join("one_class.csv").display().to_string(), "--out".into(), "/tmp/x".into()],
         "only one class"),
        (vec!["train".into(), "--model".into(), m.into(), "--train".into(), data.join("bad_utf8.csv").display().to_string(), "--out".into(), "/tmp/x".into()],
         "invalid UTF-8 on line 3"),
        (vec!["train".into(), "--model".into(), "/nonexistent".into(), "--train".into(), "x.csv".into(), "--out".into(), "/tmp/x".into()],
         "not a folder"),
        (vec!["predict".into(), "--model".into(), m.into()], "give texts with --text"),
        (vec!["train".into(), "--model".into(), m.into(), "--train".into(), data.join("ints.tsv").display().to_string(), "--lr".into(), "5".into(), "--out".into(), "/tmp/x".into()],
         "learning rate must be a positive number below 1"),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (ok, _, stderr) = burnish(&a);
        assert!(!ok, "should fail: {a:?}");
        assert!(stderr.contains(want), "for {a:?} expected {want:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn check_reports_data_problems_as_json() {
    let data = root().join("tests/data");
    let (ok, stdout, stderr) = burnish(&[
        "check", "--train", data.join("checks.csv").to_str().unwrap(), "--eval", data.join("checks_eval.csv").to_str().unwrap(),
        "--model", fixture("tiny-bert").to_str().unwrap(), "--max-len", "12",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["rows"], 9);
    assert_eq!(v["duplicates"], 2);
    assert_eq!(v["eval"]["unseen_labels"][0]["label"], "other");
    assert!(v["tokens"]["truncated"].as_u64().unwrap() >= 1);
    let (ok, _, stderr) = burnish(&["check", "--train", data.join("ints.tsv").to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("no text column \"text\""), "{stderr}");
}

#[test]
fn masked_lm_task_and_two_stage_recipe() {
    let dir = std::env::temp_dir().join(format!("burnish-cli-mlm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let domain = dir.join("domain.txt");
    let lines: Vec<String> = (0..40).map(|i| format!("the film, honestly, was {} and the plot was {}", ["slow", "long", "clever", "loud"][i % 4], ["thin", "fine", "odd"][i % 3])).collect();
    std::fs::write(&domain, lines.join("\n")).unwrap();
    let model = fixture("tiny-bert");

    // Masked-LM only: a BertForMaskedLM folder with the held-out scores before and after.
    let out = dir.join("mlm");
    let (ok, stdout, stderr) = burnish(&[
        "train", "--task", "masked-lm", "--model", model.to_str().unwrap(), "--train", domain.to_str().unwrap(),
        "--epochs", "3", "--lr", "5e-3", "--batch-size", "8", "--max-len", "24", "--out", out.to_str().unwrap(),
    ]);
    assert!(ok, "masked-lm failed: {stderr}");
    assert!(stderr.contains("masked-LM adaptation: 32 training and 8 held-out texts"), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let history = m["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "before + 3 epochs: {m}");
    assert!(history[3]["loss"].as_f64().unwrap() < history[0]["loss"].as_f64().unwrap(), "{m}");
    assert!(m["perplexity"].as_f64().unwrap() > 1.0 && m["masked_accuracy"].as_f64().is_some());
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["BertForMaskedLM"]));

    // Fill-mask with the adapted folder: top-k tokens with falling probabilities per [MASK].
    let (ok, stdout, stderr) = burnish(&["fill-mask", "--model", out.to_str().unwrap(), "--top-k", "3", "--text", "the film was [MASK] and the plot was [MASK]"]);
    assert!(ok, "fill-mask failed: {stderr}");
    let row: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let masks = row["masks"].as_array().unwrap();
    assert_eq!(masks.len(), 2);
    for m in masks {
        let scores: Vec<f64> = m["candidates"].as_array().unwrap().iter().map(|c| c["score"].as_f64().unwrap()).collect();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] <= 1.0 && scores[2] > 0.0, "{scores:?}");
    }
    let (ok, _, stderr) = burnish(&["fill-mask", "--model", out.to_str().unwrap(), "--text", "no mask here"]);
    assert!(!ok && stderr.contains("write [MASK] where the model should guess a word"), "{stderr}");

    // The adapted folder is a model like any other: fine-tune a classifier from it …
    let train = dir.join("train.csv");
    write_csv(&train, 32, 0);
    let clf = dir.join("clf");
    let (ok, _, stderr) = burnish(&[
        "train", "--model", out.to_str().unwrap(), "--train", train.to_str().unwrap(), "--text-column", "review",
        "--label-column", "sentiment", "--epochs", "1", "--max-len", "24", "--out", clf.to_str().unwrap(),
    ]);
    assert!(ok, "classifier from the adapted folder failed: {stderr}");

    // … or run both stages as one recipe.
    let two = dir.join("two-stage");
    let (ok, stdout, stderr) = burnish(&[
        "train", "--model", model.to_str().unwrap(), "--train", train.to_str().unwrap(), "--text-column", "review",
        "--label-column", "sentiment", "--domain", domain.to_str().unwrap(), "--mlm-epochs", "2", "--mlm-lr", "5e-3",
        "--epochs", "2", "--lr", "3e-3", "--batch-size", "8", "--max-len", "24", "--out", two.to_str().unwrap(),
    ]);
    assert!(ok, "two-stage failed: {stderr}");
    assert!(stderr.contains("stage 2: fine-tuning the classifier from the adapted encoder"), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(m["domain_adaptation"]["history"].as_array().unwrap().len(), 3, "{m}");
    assert_eq!(m["recipe"]["mlm_epochs"], 2);
    assert!(m["accuracy"].as_f64().is_some());
    assert!(two.join("domain-adapted/model.safetensors").exists() && two.join("model.safetensors").exists());

    // A domain file without the column, or mlm_epochs without domain text, is refused clearly.
    let (ok, _, stderr) = burnish(&[
        "train", "--model", model.to_str().unwrap(), "--train", train.to_str().unwrap(), "--text-column", "review",
        "--label-column", "sentiment", "--domain", train.to_str().unwrap(), "--out", two.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("no text column \"text\" for domain adaptation"), "{stderr}");
    let (ok, _, stderr) = burnish(&[
        "train", "--model", model.to_str().unwrap(), "--train", train.to_str().unwrap(), "--text-column", "review",
        "--label-column", "sentiment", "--mlm-epochs", "1", "--out", two.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("give --domain FILE"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn multitask_writes_one_folder_per_task() {
    let dir = std::env::temp_dir().join(format!("burnish-cli-mt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sentiment = dir.join("sentiment.csv");
    write_csv(&sentiment, 32, 0);
    let topic = dir.join("topic.tsv");
    let mut t = String::from("sentence\tkind\n");
    for i in 0..48 {
        let (kind, noun) = [("film", "movie"), ("music", "song"), ("sport", "match")][i % 3];
        t += &format!("a {} {noun}\t{kind}\n", ["long", "new", "short", "late"][(i / 3) % 4]);
    }
    std::fs::write(&topic, t).unwrap();
    let out = dir.join("mt");
    let (ok, stdout, stderr) = burnish(&[
        "multitask", "--model", fixture("tiny-bert").to_str().unwrap(),
        "--task", &format!("reviews={}:review:sentiment", sentiment.display()),
        "--task", &format!("{}:sentence:kind", topic.display()),
        "--sampling", "round-robin", "--epochs", "2", "--batch-size", "8", "--max-len", "24", "--out", out.to_str().unwrap(),
    ]);
    assert!(ok, "multitask failed: {stderr}");
    assert!(stderr.contains("task reviews: 26 training and 6 evaluation rows, labels neg, pos"), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let tasks = m["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["name"], "topic");
    assert_eq!(tasks[1]["labels"], serde_json::json!(["film", "music", "sport"]));
    assert!(tasks.iter().all(|t| t["accuracy"].as_f64().is_some()));
    let drawn: Vec<u64> = m["drawn"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(drawn.iter().sum::<u64>(), m["steps"].as_u64().unwrap());
    assert!(drawn[0].abs_diff(drawn[1]) <= 1, "round-robin: {drawn:?}");
    for task in ["reviews", "topic"] {
        let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(task).join("config.json")).unwrap()).unwrap();
        assert_eq!(config["architectures"], serde_json::json!(["BertForSequenceClassification"]));
    }
    // A task folder is a model like any other.
    let (ok, stdout, stderr) = burnish(&["predict", "--model", out.join("topic").to_str().unwrap(), "--text", "a new song"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("\"probabilities\""));
    let (ok, _, stderr) = burnish(&["multitask", "--model", fixture("tiny-bert").to_str().unwrap(), "--task", &format!("only={}:review:sentiment", sentiment.display()), "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("at least two tasks"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn generate_and_decoder_training_on_the_command_line() {
    let reference = read_json(fixture("decoder_reference.json"));
    // Greedy generation: transformers' tokens, for GPT-2 and for sharded Llama weights.
    for name in ["tiny-gpt2", "tiny-llama"] {
        let model = fixture(name);
        let prompt = reference[name]["prompts"][0].as_str().unwrap();
        let (ok, stdout, stderr) = burnish(&["generate", "--model", model.to_str().unwrap(), "--prompt", prompt, "--max-new-tokens", "10", "--json"]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["ids"], reference[name]["greedy"][0], "{name}");
        assert_eq!(v["prompt_ids"], reference[name]["ids"][0]);
        assert_eq!(v["stopped"], "max_tokens");
        // Streaming text mode prints the same continuation.
        let (ok, text, _) = burnish(&["generate", "--model", model.to_str().unwrap(), "--prompt", prompt, "--max-new-tokens", "10"]);
        assert!(ok);
        assert_eq!(text.trim_end_matches('\n'), v["text"].as_str().unwrap());
    }

    // A GGUF file as --model: SmolLM2 answers as transformers' dequantized model does.
    let g = read_json(fixture("gguf_reference.json"));
    let p = &g["smollm2"]["prompts"][0];
    let gguf = root().join("www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (ok, stdout, stderr) = burnish(&["generate", "--model", gguf.to_str().unwrap(), "--prompt", p["text"].as_str().unwrap(), "--max-new-tokens", "8", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ids"], p["greedy"]);
    assert_eq!(v["text"], "The capital of France is Paris.");
    assert_eq!(v["stopped"], "eos");

    // Instruction tuning writes an HF folder whose held-out loss fell.
    let dir = std::env::temp_dir().join(format!("burnish-cli-lm-{}", std::process::id()));
    let out = dir.join("instruct");
    let (ok, stdout, stderr) = burnish(&[
        "train", "--task", "instruct", "--model", fixture("tiny-qwen2").to_str().unwrap(), "--train",
        root().join("tests/data/instruct-pairs.jsonl").to_str().unwrap(), "--prompt-template", "question-answering",
        "--epochs", "8", "--lr", "1e-2", "--batch-size", "4", "--max-len", "48", "--out", out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(m["architecture"], "Qwen2ForCausalLM");
    assert_eq!((m["train_rows"].as_u64(), m["eval_rows"].as_u64()), (Some(10), Some(2)));
    let h = m["history"].as_array().unwrap();
    assert_eq!(h.len(), 9);
    assert!(h[8]["loss"].as_f64().unwrap() < h[0]["loss"].as_f64().unwrap());
    assert_eq!(m["recipe"]["prompt_template"], "Question: {prompt}\nAnswer: ");
    for f in ["config.json", "tokenizer.json", "model.safetensors", "metrics.json", "recipe.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let (ok, _, stderr) = burnish(&["generate", "--model", out.to_str().unwrap(), "--prompt", "Question: Say hello.\nAnswer: ", "--max-new-tokens", "5"]);
    assert!(ok, "{stderr}");

    // Bad input: an encoder for generation, a missing column, options out of range.
    let (ok, _, err) = burnish(&["generate", "--model", fixture("tiny-bert").to_str().unwrap(), "--prompt", "hi"]);
    assert!(!ok && err.contains("BERT is an encoder"), "{err}");
    let (ok, _, err) = burnish(&["generate", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--prompt", "hi", "--top-p", "0"]);
    assert!(!ok && err.contains("top_p must be in (0, 1]"), "{err}");
    let (ok, _, err) = burnish(&[
        "train", "--task", "instruct", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--train",
        root().join("tests/data/domain-reviews.txt").to_str().unwrap(), "--out", dir.join("x").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("no prompt column \"prompt\""), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn decoder_lora_training_eval_and_bench_on_the_command_line() {
    let dir = std::env::temp_dir().join(format!("burnish-cli-lora-{}", std::process::id()));
    let out = dir.join("lora");
    let pairs = root().join("tests/data/instruct-pairs.jsonl");
    let llama = fixture("tiny-llama");
    let (ok, stdout, stderr) = burnish(&[
        "train", "--task", "instruct", "--model", llama.to_str().unwrap(), "--train", pairs.to_str().unwrap(),
        "--prompt-template", "question-answering", "--strategy", "lora", "--lora-rank", "4", "--lora-targets", "query,value,intermediate",
        "--epochs", "10", "--lr", "3e-2", "--batch-size", "4", "--max-len", "48", "--out", out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("training LoRA adapters (rank 4) on self_attn.q_proj, self_attn.v_proj, mlp.gate_proj, mlp.up_proj"), "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(m["trainable_parameters"].as_u64().unwrap() < 42_848);
    assert_eq!(m["lora_modules"].as_array().unwrap().len(), 4);
    let adapter: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("peft/adapter_config.json")).unwrap()).unwrap();
    assert_eq!((adapter["task_type"].as_str(), adapter["r"].as_u64()), (Some("CAUSAL_LM"), Some(4)));
    assert!(out.join("peft/adapter_model.safetensors").exists());

    // eval: completion perplexity and greedy answers against the references, before and after.
    let eval = |model: &Path| {
        let (ok, stdout, stderr) =
            burnish(&["eval", "--model", model.to_str().unwrap(), "--data", pairs.to_str().unwrap(), "--prompt-template", "question-answering", "--max-new-tokens", "16"]);
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let (before, after) = (eval(&llama), eval(&out));
    assert_eq!(after["data"], "prompt/completion pairs (completion tokens scored)");
    assert_eq!((after["rows"].as_u64(), after["generation"]["count"].as_u64()), (Some(12), Some(12)));
    let loss = |v: &serde_json::Value| v["loss"].as_f64().unwrap();
    assert!(loss(&after) < loss(&before), "completion loss {} → {}", loss(&before), loss(&after));
    assert!((after["perplexity"].as_f64().unwrap() - loss(&after).exp()).abs() < 1e-9 * loss(&after).exp());
    let chrf = |v: &serde_json::Value| v["generation"]["chrf"].as_f64().unwrap();
    assert!(chrf(&after) > chrf(&before), "chrF {} → {}", chrf(&before), chrf(&after));
    assert_eq!(after["predictions"].as_array().unwrap().len(), 12);
    // Plain text: every token scored.
    let (ok, stdout, stderr) = burnish(&["eval", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--data", root().join("tests/data/domain-reviews.txt").to_str().unwrap(), "--max-len", "32"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["data"], "plain text (every token scored)");
    assert!(v["generation"].is_null() && v["tokens"].as_u64().unwrap() > 100);

    // bench: training steps and generation speed.
    let (ok, stdout, stderr) = burnish(&[
        "bench", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--strategy", "lora", "--steps", "2", "--warmup", "1", "--batch-size", "2", "--max-len", "16",
        "--gen-tokens", "8", "--device", "cpu",
    ]);
    assert!(ok, "{stderr}");
    let b: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((b["generated_tokens"].as_u64(), b["training"]["steps"].as_u64(), b["strategy"].as_str()), (Some(8), Some(2), Some("lora")));
    assert!(b["generation_tokens_per_s"].as_f64().unwrap() > 0.0 && b["training"]["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(b["architecture"], "GPT2LMHeadModel");
    let (ok, _, err) = burnish(&["bench", "--model", fixture("tiny-gpt2").to_str().unwrap(), "--strategy", "head", "--steps", "1"]);
    assert!(!ok && err.contains("\"head\" is for classifiers"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn decoder_runs_checkpoint_and_resume_on_the_command_line() {
    let dir = std::env::temp_dir().join(format!("burnish-cli-lm-resume-{}", std::process::id()));
    let ckpt = dir.join("run.ckpt");
    let pairs = root().join("tests/data/instruct-pairs.jsonl");
    let args_with = |out: &Path, data: &Path| -> Vec<String> {
        [
            "train", "--task", "instruct", "--model", fixture("tiny-qwen2").to_str().unwrap(), "--train", data.to_str().unwrap(),
            "--prompt-template", "question-answering", "--strategy", "lora", "--epochs", "3", "--lr", "1e-2", "--batch-size", "4",
            "--max-len", "48", "--out", out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = |out: &Path| -> Vec<String> { args_with(out, &pairs) };
    let run = |extra: &[&str], out: &Path| {
        let mut a = args(out);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = burnish(&a);
        assert!(ok, "{stderr}");
        (serde_json::from_str::<serde_json::Value>(&stdout).unwrap(), stderr)
    };
    let (whole, _) = run(&[], &dir.join("whole"));
    let (_, err) = run(&["--checkpoint", ckpt.to_str().unwrap(), "--stop-after", "4"], &dir.join("part"));
    assert!(err.contains("stopped after step 4 of 9; continue with --resume"), "{err}");
    let (resumed, err) = run(&["--resume", ckpt.to_str().unwrap()], &dir.join("resumed"));
    assert!(err.contains("resuming at step 4 of 9") && err.contains("after step 4 with its recipe"), "{err}");
    assert_eq!(resumed["train_losses"], whole["train_losses"], "the resumed curve is the uninterrupted one");
    assert_eq!(resumed["history"], whole["history"]);
    // Other rows are not the checkpoint's data.
    let fewer = dir.join("fewer.jsonl");
    let text = std::fs::read_to_string(&pairs).unwrap();
    std::fs::write(&fewer, text.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let mut other = args_with(&dir.join("x"), &fewer);
    other.extend(["--resume", ckpt.to_str().unwrap()].iter().map(|s| s.to_string()));
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let (ok, _, err) = burnish(&other);
    assert!(!ok && err.contains("not the data this checkpoint was trained on"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
