//! Fine-tuning decoders: packing plain text into blocks, prompt masking for prompt → completion
//! pairs (the loss counts completion tokens only, checked against a loss computed by hand from
//! the logits), continued pre-training lowers held-out loss, instruction tuning moves the model
//! to the training completions, and the exported folder reloads with the same logits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::causal::{CausalModel, GenerateOptions, Generation, next_token_loss};
use burnish::lm::{LmSession, instruction_rows, pack_texts};
use burnish::train::Recipe;
use burnish::weights::read_f32;

use super::causal::load_causal;
use super::common::*;

fn lines(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("tests/data/domain-reviews.txt")).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).take(n).map(String::from).collect()
}

fn pairs() -> Vec<(String, String)> {
    [
        ("What colour is the sky?", "Blue."),
        ("What do cows drink?", "Water."),
        ("Name a fruit.", "An apple."),
        ("Say hello.", "Hello there!"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect()
}

#[test]
fn plain_text_is_packed_into_blocks() {
    let cm = load_causal(fixture("tiny-gpt2"));
    let texts = lines(5);
    let rows = pack_texts(&cm.tokenizer, &texts, 16, Some(0)).unwrap();
    let stream: Vec<u32> = texts.iter().flat_map(|t| cm.tokenizer.encode_all(t).unwrap().into_iter().chain([0])).collect();
    assert_eq!(rows.iter().flat_map(|r| r.ids.clone()).collect::<Vec<_>>(), stream[..rows.iter().map(|r| r.ids.len()).sum::<usize>()]);
    assert!(rows[..rows.len() - 1].iter().all(|r| r.ids.len() == 16));
    assert!(rows.iter().all(|r| r.weights.iter().all(|&w| w == 1.0)));
    assert!(pack_texts(&cm.tokenizer, &[], 16, Some(0)).is_err());
}

#[test]
fn only_completion_tokens_are_learnt() {
    let cm = load_causal(fixture("tiny-qwen2"));
    let template = "Question: {prompt}\nAnswer: ";
    let rows = instruction_rows(&cm.tokenizer, &pairs(), template, 64, Some(0)).unwrap();
    for (r, (p, c)) in rows.iter().zip(pairs()) {
        let context = cm.tokenizer.encode_all(&template.replace("{prompt}", &p)).unwrap();
        let answer = cm.tokenizer.encode_plain(&c).unwrap();
        assert_eq!(r.ids, [context.clone(), answer.clone(), vec![0]].concat());
        assert_eq!(r.weights, [vec![0.0; context.len()], vec![1.0; answer.len() + 1]].concat());
    }
    // The masked loss, recomputed by hand from the logits: mean −log p over completion targets.
    let device = Device::flex();
    let (model, _) = cm.load(0, &device).unwrap();
    let r = &rows[0];
    let n = r.ids.len();
    let input = Tensor::<2, Int>::from_data(TensorData::new(r.ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device);
    let logits = model.forward(input, None);
    let vocab = logits.dims()[2];
    let host = pollster::block_on(read_f32(logits.clone())).unwrap();
    let (mut sum, mut count) = (0f64, 0f64);
    for t in 0..n - 1 {
        if r.weights[t + 1] == 0.0 {
            continue;
        }
        let row = &host[t * vocab..(t + 1) * vocab];
        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        sum += lse - row[r.ids[t + 1] as usize] as f64;
        count += 1.0;
    }
    let loss = pollster::block_on(read_f32(next_token_loss(logits, &[r.ids.clone()], &[r.weights.clone()]).unwrap())).unwrap()[0] as f64;
    assert!((loss - sum / count).abs() < 1e-4, "masked loss {loss} vs by hand {}", sum / count);
    let all = pollster::block_on(read_f32(next_token_loss(model.forward(Tensor::<2, Int>::from_data(TensorData::new(r.ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]), &device), None), &[r.ids.clone()], &[vec![1.0; n]]).unwrap())).unwrap()[0] as f64;
    assert!((all - loss).abs() > 1e-3, "counting the prompt too gives another loss");
    // A prompt that leaves no room for the completion is refused with its row.
    let long = vec![("word ".repeat(40), "x".to_string())];
    let e = instruction_rows(&cm.tokenizer, &long, template, 16, Some(0)).err().unwrap().to_string();
    assert!(e.contains("row 1") && e.contains("no room for the completion"), "{e}");
    assert!(instruction_rows(&cm.tokenizer, &pairs(), "no placeholder", 64, Some(0)).is_err());
}

fn recipe(task: &str, epochs: usize, lr: f64) -> Recipe {
    Recipe { task: task.into(), epochs, lr, batch_size: 4, max_len: 32, warmup_ratio: 0.0, seed: 5, weight_decay: 0.0, ..Recipe::default() }
}

#[test]
fn continued_pretraining_lowers_held_out_loss() {
    let cm = load_causal(fixture("tiny-gpt2"));
    let texts = lines(40);
    let (train, eval) = texts.split_at(32);
    let r = recipe("causal-lm", 4, 3e-3);
    let train = pack_texts(&cm.tokenizer, train, r.max_len, Some(0)).unwrap();
    let eval = pack_texts(&cm.tokenizer, eval, r.max_len, Some(0)).unwrap();
    let mut s = LmSession::new(&cm, train, eval, r, &Device::flex()).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let (first, last) = (&s.history[0], s.history.last().unwrap());
    assert_eq!(s.history.len(), 5, "held-out scores before and after each epoch");
    assert!(last.loss < first.loss - 1.0, "held-out loss {} → {}", first.loss, last.loss);
    assert!((last.perplexity - last.loss.exp()).abs() < 1e-6 * last.perplexity);
    assert!(s.losses.iter().all(|l| l.is_finite()));
}

#[test]
fn instruction_tuning_moves_the_model_to_the_completions_and_exports() {
    let cm = load_causal(fixture("tiny-llama"));
    let r = Recipe { prompt_template: "Question: {prompt}\nAnswer: ".into(), max_len: 64, ..recipe("instruct", 30, 1e-2) };
    let rows = instruction_rows(&cm.tokenizer, &pairs(), &r.prompt_template, r.max_len, Some(0)).unwrap();
    assert!(rows.iter().all(|row| row.ids.last() == Some(&0)), "every row ends with EOS within max_len");
    let mut s = LmSession::new(&cm, rows.clone(), rows.clone(), r.clone(), &Device::flex()).unwrap();
    let before = pollster::block_on(s.score(&rows)).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.score(&rows)).unwrap();
    assert!(after.loss < before.loss * 0.2, "completion loss {} → {}", before.loss, after.loss);
    // Greedy answers now are the training completions.
    let model = s.inference_model().unwrap();
    for (p, c) in pairs() {
        let prompt = cm.tokenizer.encode_all(&r.prompt_template.replace("{prompt}", &p)).unwrap();
        let mut g = Generation::new(&model, prompt, GenerateOptions { max_new_tokens: 12, ..Default::default() }, cm.eos.clone(), 128).unwrap();
        while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        assert_eq!(g.text(&cm.tokenizer).unwrap(), c, "answer to {p:?}");
    }
    // The exported folder reloads with the same logits.
    let files = pollster::block_on(s.export(&cm)).unwrap();
    let get = |n: &str| files.iter().find(|f| f.0 == n).unwrap().1.clone();
    let back = CausalModel::from_bytes(&get("config.json"), &get("tokenizer.json"), vec![get("model.safetensors")]).unwrap();
    let (reloaded, report) = back.load(0, &Device::flex()).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty());
    let ids = Tensor::<2, Int>::from_data(TensorData::new(rows[0].ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, rows[0].ids.len()]), &Device::flex());
    let a = pollster::block_on(read_f32(model.forward(ids.clone(), None))).unwrap();
    let b = pollster::block_on(read_f32(reloaded.forward(ids, None))).unwrap();
    assert_eq!(a, b);
}

