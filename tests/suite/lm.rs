//! Fine-tuning decoders: packing plain text into blocks, prompt masking for prompt → completion
//! pairs (the loss counts completion tokens only, checked against a loss computed by hand from
//! the logits), continued pre-training lowers held-out loss, instruction tuning moves the model
//! to the training completions, and the exported folder reloads with the same logits. LoRA:
//! only the adapters train, the merged export and the PEFT adapter agree with the base weights
//! plus (alpha/r)·B·A, and a short LoRA run moves SmolLM2 towards the training completions.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burnish::models::causal::{CausalModel, next_token_loss};
use burnish::infer::generate::{GenerateOptions, Generation};
use burnish::backend::BackendInfo;
use burnish::engine::causal_lm::LmSession;
use burnish::engine::memory::estimate_decoder_memory;
use burnish::data::text::{instruction_rows, pack_texts, split_rows};
use burnish::recipe::{LoraTarget, Recipe, Strategy};
use burnish::backend::read_f32;

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
    Recipe { task: task.parse().unwrap(), epochs, lr, batch_size: 4, max_len: 32, warmup_ratio: 0.0, seed: 5, weight_decay: 0.0, ..Recipe::default() }
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
    let evals = s.evaluations();
    let (first, last) = (&evals[0], evals.last().unwrap());
    assert_eq!(s.evaluations().len(), 5, "held-out scores before and after each epoch");
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
    let files = pollster::block_on(s.export(&cm, "tiny-llama")).unwrap();
    assert!(files.iter().all(|f| !f.0.starts_with("peft/")), "no PEFT adapter after full fine-tuning");
    let get = |n: &str| files.iter().find(|f| f.0 == n).unwrap().1.clone();
    let back = CausalModel::from_bytes(&get("config.json"), &get("tokenizer.json"), vec![get("model.safetensors")]).unwrap();
    let (reloaded, report) = back.load(0, &Device::flex()).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty());
    let ids = Tensor::<2, Int>::from_data(TensorData::new(rows[0].ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, rows[0].ids.len()]), &Device::flex());
    let a = pollster::block_on(read_f32(model.forward(ids.clone(), None))).unwrap();
    let b = pollster::block_on(read_f32(reloaded.forward(ids, None))).unwrap();
    assert_eq!(a, b);
}


fn tensors(bytes: &[u8]) -> std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.shape().to_vec(), v.data().chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())))
        .collect()
}

fn logits(model: &burnish::models::causal::CausalLm, ids: &[u32]) -> Vec<f32> {
    let t = Tensor::<2, Int>::from_data(TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, ids.len()]), &Device::flex());
    pollster::block_on(read_f32(model.forward(t, None))).unwrap()
}

#[test]
fn lora_trains_only_the_adapters_and_exports_merged_weights_and_a_peft_adapter() {
    let cm = load_causal(fixture("tiny-llama"));
    let targets = vec![LoraTarget::Query, LoraTarget::Value, LoraTarget::Intermediate];
    let r = Recipe {
        prompt_template: "Question: {prompt}\nAnswer: ".into(),
        max_len: 64,
        strategy: Strategy::Lora,
        lora_rank: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.1,
        lora_targets: targets,
        ..recipe("instruct", 30, 2e-2)
    };
    let rows = instruction_rows(&cm.tokenizer, &pairs(), &r.prompt_template, r.max_len, Some(0)).unwrap();
    let (base, _) = cm.load(0, &Device::flex()).unwrap();
    let mut s = LmSession::new(&cm, rows.clone(), rows.clone(), r.clone(), &Device::flex()).unwrap();
    assert_eq!(s.objective.lora_modules, vec!["self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"]);
    // Trainable: rank·(in + out) per adapted linear, nothing else; the estimate agrees.
    let want: usize = base.lora_linears(&s.objective.lora_modules).iter().map(|(_, l)| 4 * l.weight.dims().iter().sum::<usize>()).sum();
    assert_eq!(base.lora_linears(&s.objective.lora_modules).len(), 2 * 4, "2 layers × 4 projections");
    assert_eq!(s.objective.trainable, want);
    let est = estimate_decoder_memory(&cm.config, &r, 4, 64);
    assert_eq!((est.trainable, est.parameters), (want, base.num_params()));
    // B starts at zero: the adapted model answers exactly like the base model.
    assert_eq!(logits(&s.inference_model().unwrap(), &rows[0].ids), logits(&base, &rows[0].ids));
    let before = pollster::block_on(s.score(&rows)).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.score(&rows)).unwrap();
    assert!(after.loss < before.loss * 0.5, "completion loss {} → {}", before.loss, after.loss);

    let files = pollster::block_on(s.export(&cm, "tests/fixtures/tiny-llama")).unwrap();
    let get = |n: &str| files.iter().find(|f| f.0 == n).unwrap_or_else(|| panic!("{n} exported")).1.clone();
    // The merged folder reloads with the tuned model's logits.
    let back = CausalModel::from_bytes(&get("config.json"), &get("tokenizer.json"), vec![get("model.safetensors")]).unwrap();
    let (merged, report) = back.load(0, &Device::flex()).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty());
    let tuned = logits(&s.inference_model().unwrap(), &rows[1].ids);
    assert!(max_abs_diff(&logits(&merged, &rows[1].ids), &tuned) < 1e-5);
    // The PEFT adapter: every pretrained weight is unchanged, and each adapted weight is the base
    // weight plus (alpha / r)·B·A, in HF's [out, in] layout.
    let config: serde_json::Value = serde_json::from_slice(&get("peft/adapter_config.json")).unwrap();
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["target_modules"], r".*\.layers\.\d+\.(self_attn\.q_proj|self_attn\.v_proj|mlp\.gate_proj|mlp\.up_proj)");
    assert_eq!((config["r"].as_u64(), config["lora_alpha"].as_f64(), config["fan_in_fan_out"].as_bool()), (Some(4), Some(8.0), Some(false)));
    let adapter = tensors(&get("peft/adapter_model.safetensors"));
    assert_eq!(adapter.len(), 2 * 8);
    let merged_w = tensors(&get("model.safetensors"));
    let mut base_w = std::collections::HashMap::new();
    for shard in ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"] {
        base_w.extend(tensors(&std::fs::read(fixture("tiny-llama").join(shard)).unwrap()));
    }
    let mut adapted = 0;
    for (name, (shape, w)) in &merged_w {
        let module = name.trim_end_matches(".weight");
        let (bshape, b) = &base_w[name];
        assert_eq!(shape, bshape, "{name}");
        match (adapter.get(&format!("base_model.model.{module}.lora_A.weight")), adapter.get(&format!("base_model.model.{module}.lora_B.weight"))) {
            (Some((ash, a)), Some((bsh, bb))) => {
                let (out, inp) = (shape[0], shape[1]);
                assert_eq!((ash.clone(), bsh.clone()), (vec![4, inp], vec![out, 4]), "{name}");
                let mut moved = 0.0f32;
                for o in 0..out {
                    for i in 0..inp {
                        let delta: f32 = (0..4).map(|k| bb[o * 4 + k] * a[k * inp + i]).sum::<f32>() * 2.0;
                        assert!((b[o * inp + i] + delta - w[o * inp + i]).abs() < 1e-5, "{name}[{o}, {i}]");
                        moved = moved.max(delta.abs());
                    }
                }
                assert!(moved > 1e-3, "{name}: the adapter learnt something");
                adapted += 1;
            }
            _ => assert_eq!(w, b, "{name} is frozen under LoRA"),
        }
    }
    assert_eq!(adapted, 8);
}

#[test]
fn decoders_refuse_classifier_strategies_and_estimate_memory() {
    let cm = load_causal(fixture("tiny-gpt2"));
    let rows = pack_texts(&cm.tokenizer, &lines(8), 32, Some(0)).unwrap();
    let head = Recipe { strategy: Strategy::Head, ..recipe("causal-lm", 1, 1e-3) };
    let e = LmSession::new(&cm, rows.clone(), Vec::new(), head, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("\"head\" is for classifiers"), "{e}");
    // GPT-2 fuses q/k/v: any of them adapts c_attn; the PEFT config says fan_in_fan_out.
    let lora = Recipe { strategy: Strategy::Lora, lora_targets: vec![LoraTarget::Query, LoraTarget::Key, LoraTarget::Output], ..recipe("causal-lm", 1, 1e-3) };
    let s = LmSession::new(&cm, rows.clone(), Vec::new(), lora.clone(), &Device::flex()).unwrap();
    assert_eq!(s.objective.lora_modules, vec!["attn.c_attn", "mlp.c_proj"]);
    let files = pollster::block_on(s.export(&cm, "gpt2")).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&files.iter().find(|f| f.0 == "peft/adapter_config.json").unwrap().1).unwrap();
    assert_eq!(config["fan_in_fan_out"], true);
    assert_eq!(config["target_modules"], r".*\.h\.\d+\.(attn\.c_attn|mlp\.c_proj)");
    // Full fine-tuning trains every parameter; LoRA a small share and keeps merged weights.
    let (base, _) = cm.load(0, &Device::flex()).unwrap();
    let full = estimate_decoder_memory(&cm.config, &recipe("causal-lm", 1, 1e-3), 4, 32);
    // From the config alone: the parameters the built model has.
    assert_eq!(full.parameters, base.num_params());
    let small = estimate_decoder_memory(&cm.config, &lora, 4, 32);
    assert_eq!(full.trainable, full.parameters);
    assert_eq!(small.trainable, s.objective.trainable);
    assert!(small.gradients < full.gradients / 4 && small.total < full.total);
    assert_eq!(full.total, full.weights + full.gradients + full.optimizer + full.activations);
    let vocab = cm.config.vocab_size() as u64;
    assert!(full.largest_tensor >= 4 * 4 * 32 * vocab, "the logits of a batch are one tensor");
    // What a backend with limits says: the wasm CPU's 4 GiB, a GPU's buffer size.
    let cpu = BackendInfo { kind: "cpu".into(), adapter: "wasm".into(), note: None, max_buffer_bytes: None, max_binding_bytes: None, memory_limit_bytes: Some(full.total - 1), software: false, threads: 1 };
    assert!(cpu.memory_warnings(full.total, full.largest_tensor)[0].contains("exceeds"));
    assert!(cpu.memory_warnings(full.total - 1, full.largest_tensor).is_empty());
    let gpu = BackendInfo { kind: "webgpu".into(), adapter: "x".into(), note: None, max_buffer_bytes: Some(1 << 30), max_binding_bytes: Some(full.largest_tensor - 1), memory_limit_bytes: None, software: false, threads: 1 };
    let w = gpu.memory_warnings(full.total, full.largest_tensor);
    assert!(w.len() == 1 && w[0].contains("buffer limit"), "{w:?}");
}

#[test]
fn the_held_out_split_is_seeded_and_never_empty_or_everything() {
    let cm = load_causal(fixture("tiny-gpt2"));
    let rows = pack_texts(&cm.tokenizer, &lines(20), 16, Some(0)).unwrap();
    let (train, eval, idx) = split_rows(&rows, 0.25, 3);
    assert_eq!((train.len() + eval.len(), eval.len()), (rows.len(), (rows.len() as f64 * 0.25).round() as usize));
    assert_eq!(split_rows(&rows, 0.25, 3).2, idx);
    assert!(idx.iter().zip(&eval).all(|(&i, r)| &rows[i] == r));
    assert_eq!(split_rows(&rows[..2], 0.01, 3).1.len(), 1);
    assert_eq!(split_rows(&rows[..2], 0.99, 3).0.len(), 1);
}

#[test]
fn a_resumed_decoder_run_equals_the_uninterrupted_one() {
    let cm = load_causal(fixture("tiny-llama"));
    let r = Recipe {
        prompt_template: "Question: {prompt}\nAnswer: ".into(),
        max_len: 64,
        batch_size: 2,
        warmup_ratio: 0.2,
        strategy: Strategy::Lora,
        lora_targets: vec![LoraTarget::Query, LoraTarget::Value, LoraTarget::Output],
        lora_dropout: 0.1,
        ..recipe("instruct", 3, 1e-2)
    };
    let rows = instruction_rows(&cm.tokenizer, &pairs(), &r.prompt_template, r.max_len, Some(0)).unwrap();
    let (train, eval) = (rows.clone(), rows[..2].to_vec());
    let run = |s: &mut LmSession, n: usize| {
        for _ in 0..n {
            pollster::block_on(s.step()).unwrap();
        }
    };
    let mut whole = LmSession::new(&cm, train.clone(), eval.clone(), r.clone(), &Device::flex()).unwrap();
    let total = whole.total_steps;
    run(&mut whole, total);
    // Interrupted after 3 of 6 steps (mid-epoch: epoch 2 of 3), checkpointed, resumed.
    let mut first = LmSession::new(&cm, train.clone(), eval.clone(), r.clone(), &Device::flex()).unwrap();
    run(&mut first, 3);
    let bytes = pollster::block_on(first.checkpoint()).unwrap();
    drop(first);
    let mut second = LmSession::resume(&cm, train.clone(), eval.clone(), &bytes, &Device::flex()).unwrap();
    assert_eq!((second.step, second.objective.lora_modules.len()), (3, 3));
    run(&mut second, total - 3);
    assert!(second.is_done());
    assert_eq!(second.losses, whole.losses, "the same curve, bit for bit");
    assert_eq!(second.evaluations().iter().map(|e| e.loss.to_bits()).collect::<Vec<_>>(), whole.evaluations().iter().map(|e| e.loss.to_bits()).collect::<Vec<_>>());
    assert_eq!(logits(&second.inference_model().unwrap(), &rows[0].ids), logits(&whole.inference_model().unwrap(), &rows[0].ids));
    // Other data is refused, and so is something that is not a checkpoint.
    let e = LmSession::resume(&cm, train[1..].to_vec(), eval.clone(), &bytes, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("not the data this checkpoint was trained on"), "{e}");
    assert!(LmSession::resume(&cm, train, eval, b"nonsense", &Device::flex()).is_err());
}

/// The decoder gallery sizes a model from its config.json alone (`decoder_shapes`): for every
/// architecture, the count and the LoRA factors are those of the model as built.
#[test]
fn decoder_memory_from_the_config_alone_matches_the_built_models() {
    use burnish::models::causal::lora_modules;
    let all = vec![LoraTarget::Query, LoraTarget::Key, LoraTarget::Value, LoraTarget::AttentionOutput, LoraTarget::Intermediate, LoraTarget::Output];
    for name in ["tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-qwen3"] {
        let cm = load_causal(fixture(name));
        let (base, _) = cm.load(0, &Device::flex()).unwrap();
        let full = estimate_decoder_memory(&cm.config, &Recipe { task: burnish::recipe::Task::CausalLm, ..Recipe::default() }, 2, 16);
        assert_eq!(full.parameters, base.num_params(), "{name}: parameters");
        let lora = Recipe { task: burnish::recipe::Task::CausalLm, strategy: Strategy::Lora, lora_rank: 3, lora_targets: all.clone(), ..Recipe::default() };
        let est = estimate_decoder_memory(&cm.config, &lora, 2, 16);
        let modules = lora_modules(&cm.config, &all);
        let want: usize = base.lora_linears(&modules).iter().map(|(_, l)| 3 * l.weight.dims().iter().sum::<usize>()).sum();
        assert_eq!(est.trainable, want, "{name}: LoRA factors");
    }
}

/// Qwen3 (q_norm / k_norm over each head, head_dim ≠ hidden / heads): fine-tuning trains the norms
/// too, and the exported folder carries them under transformers' names and reloads identically.
/// (scripts/test.sh also loads a LoRA run's merged folder and PEFT adapter in transformers.)
#[test]
fn qwen3_fine_tunes_and_exports_its_query_and_key_norms() {
    let cm = load_causal(fixture("tiny-qwen3"));
    assert_eq!(cm.config.architecture(), "Qwen3ForCausalLM");
    let r = Recipe { prompt_template: "Question: {prompt}\nAnswer: ".into(), max_len: 64, ..recipe("instruct", 20, 1e-2) };
    let rows = instruction_rows(&cm.tokenizer, &pairs(), &r.prompt_template, r.max_len, Some(0)).unwrap();
    let mut s = LmSession::new(&cm, rows.clone(), rows.clone(), r.clone(), &Device::flex()).unwrap();
    let before = pollster::block_on(s.score(&rows)).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.score(&rows)).unwrap();
    assert!(after.loss < before.loss * 0.5, "completion loss {} → {}", before.loss, after.loss);
    let files = pollster::block_on(s.export(&cm, "tiny-qwen3")).unwrap();
    let get = |n: &str| files.iter().find(|f| f.0 == n).unwrap().1.clone();
    let exported = tensors(&get("model.safetensors"));
    let original = tensors(&std::fs::read(fixture("tiny-qwen3").join("model.safetensors")).unwrap());
    for name in ["model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight"] {
        assert_eq!(exported[name].0, vec![16], "{name}: one gain per head dimension");
        assert_ne!(exported[name].1, original[name].1, "{name} trained");
    }
    assert_eq!(exported.len(), original.len(), "the same tensors as the checkpoint");
    let back = CausalModel::from_bytes(&get("config.json"), &get("tokenizer.json"), vec![get("model.safetensors")]).unwrap();
    let (reloaded, report) = back.load(0, &Device::flex()).unwrap();
    assert!(report.initialized.is_empty() && report.unexpected.is_empty(), "{report:?}");
    let model = s.inference_model().unwrap();
    assert_eq!(logits(&model, &rows[0].ids), logits(&reloaded, &rows[0].ids));
}
